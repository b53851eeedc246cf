/* Futures: see actors/future.h and <tether/future.h>. */
#include "actors/future.h"

#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "actors/core/alloc.h"
#include "actors/core/log.h"
#include "actors/runtime.h"

#define FS_DONE      1u
#define FS_THEN_LOCK 2u   /* a then() call owns the continuation slot */
#define FS_THEN      4u   /* continuation written: post it on completion */
#define FS_WAITERS   8u
#define FS_STATIC    16u

#define CLAIM_OPEN      0
#define CLAIM_COMMITTED 1
#define CLAIM_TAKEN     2

/* ---- Sleeping on the state word ---------------------------------------- */
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

static void state_wait(atomic_uint *w, unsigned seen, int64_t ns) {
    struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };
    syscall(SYS_futex, (uint32_t *)(void *)w, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
}
static void state_wake_all(atomic_uint *w) {
    syscall(SYS_futex, (uint32_t *)(void *)w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
#else
#include <pthread.h>
/* Portable fallback: a small table of condition variables keyed by address. */
#define LOT_SIZE 64
static struct { pthread_mutex_t m; pthread_cond_t c; } g_lot[LOT_SIZE];
static pthread_once_t g_lot_once = PTHREAD_ONCE_INIT;
static void lot_init(void) {
    for (int i = 0; i < LOT_SIZE; i++) {
        pthread_mutex_init(&g_lot[i].m, NULL);
        pthread_cond_init(&g_lot[i].c, NULL);
    }
}
static size_t lot_slot(const void *p) { return ((uintptr_t)p >> 6) % LOT_SIZE; }
static void state_wait(atomic_uint *w, unsigned seen, int64_t ns) {
    pthread_once(&g_lot_once, lot_init);
    size_t i = lot_slot(w);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t t = (int64_t)ts.tv_nsec + ns;
    ts.tv_sec += (time_t)(t / 1000000000);
    ts.tv_nsec = (long)(t % 1000000000);
    pthread_mutex_lock(&g_lot[i].m);
    if (atomic_load(w) == seen) pthread_cond_timedwait(&g_lot[i].c, &g_lot[i].m, &ts);
    pthread_mutex_unlock(&g_lot[i].m);
}
static void state_wake_all(atomic_uint *w) {
    pthread_once(&g_lot_once, lot_init);
    size_t i = lot_slot(w);
    pthread_mutex_lock(&g_lot[i].m);
    pthread_cond_broadcast(&g_lot[i].c);
    pthread_mutex_unlock(&g_lot[i].m);
}
#endif

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- Creation and references -------------------------------------------- */

static tt_future g_enomem = {
    .state = FS_DONE | FS_STATIC | FS_THEN_LOCK,
    .claim = CLAIM_TAKEN,
    .refs = 1,
    .rc = TT_ENOMEM,
};

tt_future *tti_future_enomem(void) { return &g_enomem; }

static void run_then(tti_cb *cb) {
    tt_future *f = TTI_CONTAINER_OF(cb, tt_future, cb);
    f->then_fn(f, f->then_arg);      /* owns the caller's reference now */
}

tt_future *tti_future_new(tti_actor *strand, size_t extra) {
    tt_future *f = tti_blk_alloc(sizeof *f + extra);
    if (!f) return NULL;
    memset(f, 0, sizeof *f);
    atomic_init(&f->state, 0);
    atomic_init(&f->claim, CLAIM_OPEN);
    atomic_init(&f->refs, 2);
    atomic_init(&f->deadline, NULL);
    f->cb.msg.type = 1;
    f->cb.run = run_then;
    f->strand = strand;
    if (strand) tti_actor_retain(strand);
    return f;
}

void tti_future_retain(tt_future *f) {
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void tti_future_release(tt_future *f) {
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1) return;
    if (f->has_value && f->val_dtor) f->val_dtor(f->val_ptr);
    tti_free(f->reason);
    if (f->strand) tti_actor_release(f->strand);
    tti_blk_free(f);
}

/* ---- Completion ----------------------------------------------------------- */

static bool claim(tt_future *f, bool producer) {
    int expect = CLAIM_OPEN;
    if (atomic_compare_exchange_strong_explicit(&f->claim, &expect, CLAIM_TAKEN,
                                                memory_order_acq_rel, memory_order_acquire))
        return true;
    if (!producer || expect != CLAIM_COMMITTED) return false;
    return atomic_compare_exchange_strong_explicit(&f->claim, &expect, CLAIM_TAKEN,
                                                   memory_order_acq_rel, memory_order_acquire);
}

static void drop_deadline(tt_future *f) {
    struct event *ev = atomic_exchange_explicit(&f->deadline, NULL, memory_order_acq_rel);
    if (!ev) return;
    /* Waits if the timer's callback is running on its loop right now; that
     * callback finds the slot empty and returns at once. */
    event_free(ev);
    tti_future_release(f);           /* the timer's reference */
}

/* The winner publishes: result first, then DONE, then wake-ups. */
static void publish(tt_future *f) {
    unsigned old = atomic_fetch_or_explicit(&f->state, FS_DONE, memory_order_acq_rel);
    if (old & FS_WAITERS) state_wake_all(&f->state);
    if (old & FS_THEN) tti_strand_post(f->strand, &f->cb);
}

__attribute__((format(printf, 2, 0)))
static void set_reason(tt_future *f, const char *fmt, va_list ap) {
    if (!fmt || !*fmt) return;
    char buf[256];
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    if (n > 0) f->reason = tti_strdup(buf);
}

static void set_reason_s(tt_future *f, const char *reason) {
    if (reason && *reason) f->reason = tti_strdup(reason);
}

bool tti_future_try_complete(tt_future *f, tt_err rc, int detail, const char *reason) {
    if (!claim(f, false)) return false;
    f->rc = rc;
    f->detail = detail;
    set_reason_s(f, reason);
    drop_deadline(f);
    publish(f);
    return true;
}

tt_future *tti_future_failed(tti_actor *strand, tt_err rc, const char *reason) {
    tt_future *f = tti_future_new(strand, 0);
    if (!f) return tti_future_enomem();
    (void)tt_promise_complete(tti_future_promise(f), rc, 0, reason ? "%s" : NULL, reason);
    return f;
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg) {
    tt_future *f = arg;
    (void)fd;
    (void)what;
    struct event *ev = atomic_exchange_explicit(&f->deadline, NULL, memory_order_acq_rel);
    if (!ev) return;                 /* a completer owns the timer now */
    event_free(ev);
    if (claim(f, false)) {
        f->rc = TT_ETIMEDOUT;
        f->reason = tti_strdup("deadline passed");
        publish(f);
    }
    tti_future_release(f);           /* the timer's reference */
}

void tti_future_set_deadline(tt_future *f, struct event_base *base, uint32_t deadline_ms) {
    if (!deadline_ms || f == &g_enomem || tt_future_done(f)) return;
    struct event *ev = event_new(base, -1, 0, deadline_cb, f);
    if (!ev) {
        TTI_LOG(WARN, "future", "no memory for a deadline timer; the call has none");
        return;
    }
    tti_future_retain(f);
    atomic_store_explicit(&f->deadline, ev, memory_order_release);
    struct timeval tv = { (time_t)(deadline_ms / 1000), (suseconds_t)((deadline_ms % 1000) * 1000) };
    event_add(ev, &tv);
}

bool tti_promise_commit(tt_promise *p) {
    tt_future *f = tti_promise_future(p);
    int expect = CLAIM_OPEN;
    return atomic_compare_exchange_strong_explicit(&f->claim, &expect, CLAIM_COMMITTED,
                                                   memory_order_acq_rel, memory_order_acquire) ||
           expect == CLAIM_COMMITTED;
}

void tt_promise_set_value(tt_promise *p, void *ptr, tt_free_fn dtor, int64_t i64) {
    tt_future *f = tti_promise_future(p);
    if (f->val_ptr && f->val_dtor) f->val_dtor(f->val_ptr);
    f->val_ptr = ptr;
    f->val_dtor = dtor;
    f->val_i64 = i64;
}

bool tt_promise_complete(tt_promise *p, tt_err rc, int detail, const char *reason_fmt, ...) {
    tt_future *f = tti_promise_future(p);
    bool won = claim(f, true);
    if (won) {
        f->rc = rc;
        f->detail = detail;
        f->has_value = f->val_ptr != NULL || f->val_i64 != 0;
        va_list ap;
        va_start(ap, reason_fmt);
        set_reason(f, reason_fmt, ap);
        va_end(ap);
        drop_deadline(f);
        publish(f);
    } else if (f->val_ptr && f->val_dtor) {
        f->val_dtor(f->val_ptr);     /* nobody will read it */
        f->val_ptr = NULL;
    }
    tti_future_release(f);           /* the producer's reference */
    return won;
}

bool tt_promise_abandoned(const tt_promise *p) {
    const tt_future *f = (const tt_future *)(const void *)p;
    return atomic_load_explicit(&f->state, memory_order_acquire) & FS_DONE;
}

/* ---- The caller's side ------------------------------------------------- */

bool tt_future_done(const tt_future *f) {
    return atomic_load_explicit(&((tt_future *)f)->state, memory_order_acquire) & FS_DONE;
}

tt_err tt_future_result(const tt_future *f) { return tt_future_done(f) ? f->rc : TT_EBUSY; }

int tt_future_detail(const tt_future *f, const char **text) {
    bool done = tt_future_done(f);
    if (text) *text = done && f->reason ? f->reason : "";
    return done ? f->detail : 0;
}

void *tt_future_get_ptr(const tt_future *f) {
    return tt_future_done(f) && f->has_value ? f->val_ptr : NULL;
}

int64_t tt_future_get_i64(const tt_future *f) {
    return tt_future_done(f) && f->has_value ? f->val_i64 : 0;
}

tt_err tt_future_wait(tt_future *f, int32_t timeout_ms) {
    unsigned s = atomic_load_explicit(&f->state, memory_order_acquire);
    if (s & FS_DONE) return f->rc;
    if (timeout_ms == 0) return TT_ETIMEDOUT;
    if (tti_on_library_thread()) return TT_EDEADLK;
    int64_t end = timeout_ms < 0 ? INT64_MAX : now_ns() + (int64_t)timeout_ms * 1000000;
    /* On the host thread of a wait_runs_base runtime, run its base until the
     * future completes. Turns are bounded so that a completion from another
     * thread (a cancel, another runtime's future) is seen within 100 ms, or
     * 10 ms for a future that names no runtime. */
    const tti_runtime *own = f->strand ? f->strand->loop->rt : NULL;
    while (tti_hosting()) {
        if (atomic_load_explicit(&f->state, memory_order_acquire) & FS_DONE) return f->rc;
        int64_t left = end == INT64_MAX ? INT64_MAX : end - now_ns();
        if (left <= 0) return TT_ETIMEDOUT;
        int64_t cap = own ? 100000000 : 10000000;
        int r = tti_host_turn(own, left < cap ? left : cap);
        if (r < 0) return TT_EDEADLK;
        if (r == 0) break;
    }
    atomic_fetch_or_explicit(&f->state, FS_WAITERS, memory_order_acq_rel);
    for (;;) {
        s = atomic_load_explicit(&f->state, memory_order_acquire);
        if (s & FS_DONE) return f->rc;
        int64_t left = end == INT64_MAX ? (int64_t)3600 * 1000000000 : end - now_ns();
        if (left <= 0) return TT_ETIMEDOUT;
        state_wait(&f->state, s, left);
    }
}

tt_err tt_future_then(tt_future *f, tt_future_fn fn, void *arg) {
    if (f == &g_enomem) return TT_ENOMEM;
    if (!fn) return TT_EINVAL;
    unsigned old = atomic_fetch_or_explicit(&f->state, FS_THEN_LOCK, memory_order_acq_rel);
    if (old & FS_THEN_LOCK) return TT_EBUSY;
    f->then_fn = fn;
    f->then_arg = arg;
    old = atomic_fetch_or_explicit(&f->state, FS_THEN, memory_order_acq_rel);
    if (old & FS_DONE) tti_strand_post(f->strand, &f->cb);   /* never inline */
    return TT_OK;
}

void tt_future_cancel(tt_future *f) {
    if (!f || f == &g_enomem) return;
    (void)tti_future_try_complete(f, TT_ECANCELED, 0, "canceled by the caller");
}

void tt_future_free(tt_future *f) {
    if (!f || f == &g_enomem) return;
    tti_future_release(f);
}
