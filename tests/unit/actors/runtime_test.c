/* Runtime lifecycle: shutdown with work pending, freeing from callbacks,
 * deadlines, a runtime embedded in the caller's event_base, and the
 * descriptor table sized up front. */
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>
#include <tether/tether.h>

#include "tt_scale.h"
#include "tt_test.h"

typedef struct tally {
    atomic_int runs, ok, closed, canceled, timedout, other;
} tally;

static void count(tt_future *f, void *arg) {
    tally *t = arg;
    switch (tt_future_result(f)) {
    case TT_OK: atomic_fetch_add(&t->ok, 1); break;
    case TT_ECLOSED: atomic_fetch_add(&t->closed, 1); break;
    case TT_ECANCELED: atomic_fetch_add(&t->canceled, 1); break;
    case TT_ETIMEDOUT: atomic_fetch_add(&t->timedout, 1); break;
    default: atomic_fetch_add(&t->other, 1); break;
    }
    tt_future_free(f);
    atomic_fetch_add_explicit(&t->runs, 1, memory_order_release);
}

#define HELD 64
static tt_promise *g_held[HELD + 1];    /* + the call that may start before its cancel */
static atomic_int g_nheld;

static void hold(tt_promise *p, void *arg) {   /* keeps the promise, completes nothing */
    (void)arg;
    g_held[atomic_fetch_add(&g_nheld, 1)] = p;
}

static void finish_ok(tt_promise *p, void *arg) {
    (void)arg;
    tt_promise_complete(p, TT_OK, 0, NULL);
}

static void test_shutdown_with_futures_pending(void) {
    tt_runtime *rt;
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.loop_threads = 2;
    o.pool_threads = 2;
    TT_REQUIRE(tt_runtime_new(&rt, &o) == TT_OK);
    tt_actor *holder, *busy;
    TT_REQUIRE(tt_actor_new(rt, &holder) == TT_OK);
    TT_REQUIRE(tt_actor_new(rt, &busy) == TT_OK);
    tally t = { 0 };
    atomic_store(&g_nheld, 0);

    /* Work that holds its promise: pending until shutdown. */
    tt_future *waited[HELD];
    for (int i = 0; i < HELD; i++) {
        tt_call_opts co = TT_OPTS_INIT(tt_call_opts);
        co.timeout_ms = 60000;                 /* a deadline timer that must be freed */
        waited[i] = tt_actor_call(holder, hold, NULL, i % 2 ? &co : NULL);
    }
    /* One cancelled by its caller. */
    tt_future *cancelled = tt_actor_call(holder, hold, NULL, NULL);
    tt_future_cancel(cancelled);
    /* Many queued calls racing the shutdown: some run, the rest are dropped. */
    const int queued = TT_SCALED(20000);
    for (int i = 0; i < queued; i++)
        TT_CHECK_EQ_INT(tt_future_then(tt_actor_call(busy, finish_ok, NULL, NULL), count, &t), TT_OK);
    while (atomic_load(&g_nheld) < HELD) {    /* the held work has started */
    }
    tt_runtime_free(rt);

    /* Every future completed and every continuation ran before free returned. */
    TT_CHECK_EQ_INT(atomic_load(&t.runs), queued);
    TT_CHECK_EQ_INT(atomic_load(&t.ok) + atomic_load(&t.closed), queued);
    TT_CHECK_EQ_INT(atomic_load(&t.other), 0);
    for (int i = 0; i < HELD; i++) {
        TT_CHECK(tt_future_done(waited[i]));
        TT_CHECK_EQ_INT(tt_future_result(waited[i]), TT_ECLOSED);
        tt_future_free(waited[i]);
    }
    TT_CHECK_EQ_INT(tt_future_result(cancelled), TT_ECANCELED);
    tt_future_free(cancelled);
    /* The work's late completions lose, and release what they hold. */
    int n = atomic_load(&g_nheld);
    for (int i = 0; i < n; i++) TT_CHECK(!tt_promise_complete(g_held[i], TT_OK, 0, NULL));
    /* Handles outlive the runtime only to be freed. */
    tt_actor_free(holder);
    tt_actor_free(busy);
}

/* ---- Freeing from callbacks --------------------------------------------- */

typedef struct self_free {
    tt_actor *a;
    tally t;
    atomic_int freed;
} self_free;

static void free_in_callback(tt_future *f, void *arg) {
    self_free *s = arg;
    tt_actor_free(s->a);                      /* the object the callback belongs to */
    tt_future_free(f);
    atomic_store_explicit(&s->freed, 1, memory_order_release);
}

static void free_in_work(tt_promise *p, void *arg) {
    self_free *s = arg;
    tt_actor_free(s->a);
    tt_promise_complete(p, TT_OK, 0, NULL);
}

static void test_free_from_own_callbacks(void) {
    tt_runtime *rt;
    TT_REQUIRE(tt_runtime_new(&rt, NULL) == TT_OK);
    for (int round = 0; round < TT_SCALED(1000); round++) {
        self_free s = { 0 };
        TT_REQUIRE(tt_actor_new(rt, &s.a) == TT_OK);
        tt_future *f = tt_actor_call(s.a, finish_ok, NULL, NULL);
        TT_CHECK_EQ_INT(tt_future_then(f, free_in_callback, &s), TT_OK);
        while (!atomic_load_explicit(&s.freed, memory_order_acquire)) {
        }
        self_free w = { 0 };
        TT_REQUIRE(tt_actor_new(rt, &w.a) == TT_OK);
        f = tt_actor_call(w.a, free_in_work, &w, NULL);
        TT_CHECK_EQ_INT(tt_future_wait(f, 5000), TT_OK);
        tt_future_free(f);
    }
    tt_runtime_free(rt);
}

/* ---- Deadlines ------------------------------------------------------------- */

static void test_call_deadline(void) {
    tt_runtime *rt;
    TT_REQUIRE(tt_runtime_new(&rt, NULL) == TT_OK);
    tt_actor *a;
    TT_REQUIRE(tt_actor_new(rt, &a) == TT_OK);
    atomic_store(&g_nheld, 0);
    tt_call_opts co = TT_OPTS_INIT(tt_call_opts);
    co.timeout_ms = 20;
    tt_future *f = tt_actor_call(a, hold, NULL, &co);
    TT_CHECK_EQ_INT(tt_future_wait(f, 5000), TT_ETIMEDOUT);
    TT_CHECK(tt_future_done(f));                   /* the operation's deadline, not the wait's */
    const char *why;
    tt_future_detail(f, &why);
    TT_CHECK_EQ_STR(why, "deadline passed");
    TT_CHECK(tt_promise_abandoned(g_held[0]));
    TT_CHECK(!tt_promise_complete(g_held[0], TT_OK, 0, NULL));
    tt_future_free(f);
    /* A call with no work function fails at once, through its future. */
    f = tt_actor_call(a, NULL, NULL, NULL);
    TT_CHECK_EQ_INT(tt_future_wait(f, 0), TT_EINVAL);
    tt_future_free(f);
    tt_actor_free(a);
    tt_runtime_free(rt);
}

/* ---- Embedded in the caller's event_base --------------------------------- */

typedef struct embed {
    pthread_t host;
    atomic_int on_host;
    atomic_int runs;
} embed;

static void embed_work(tt_promise *p, void *arg) {
    embed *e = arg;
    if (pthread_equal(pthread_self(), e->host)) atomic_fetch_add(&e->on_host, 1);
    tt_promise_complete(p, TT_OK, 0, NULL);
}

static void embed_then(tt_future *f, void *arg) {
    embed *e = arg;
    if (pthread_equal(pthread_self(), e->host)) atomic_fetch_add(&e->on_host, 1);
    if (tt_future_result(f) == TT_OK) atomic_fetch_add(&e->runs, 1);
    tt_future_free(f);
}

static void test_embedded_runtime(void) {
    TT_REQUIRE(tt_init() == TT_OK);            /* before the host creates its base */
    struct event_base *base = event_base_new();
    TT_REQUIRE(base);
    tt_runtime *rt;
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.base = base;
    o.loop_threads = 8;                        /* ignored: no thread is started */
    TT_REQUIRE(tt_runtime_new(&rt, &o) == TT_OK);
    TT_CHECK_EQ_INT(tt_runtime_loop_count(rt), 1);
    tt_actor *a;
    TT_REQUIRE(tt_actor_new(rt, &a) == TT_OK);
    embed e = { .host = pthread_self() };
    const int calls = 100;
    tt_future *pending = tt_actor_call(a, embed_work, &e, NULL);
    for (int i = 1; i < calls; i++)
        TT_CHECK_EQ_INT(tt_future_then(tt_actor_call(a, embed_work, &e, NULL), embed_then, &e), TT_OK);
    /* Nothing runs until the host runs its loop. */
    TT_CHECK(!tt_future_done(pending));
    while (atomic_load(&e.runs) < calls - 1) event_base_loop(base, EVLOOP_ONCE);
    TT_CHECK(tt_future_done(pending));
    TT_CHECK_EQ_INT(atomic_load(&e.on_host), 2 * calls - 1);
    tt_future_free(pending);
    /* Shutdown with a call still queued: free drives the base itself. */
    tt_future *late = tt_actor_call(a, embed_work, &e, NULL);
    tt_actor_free(a);
    tt_runtime_free(rt);
    TT_CHECK(tt_future_done(late));
    TT_CHECK(tt_future_result(late) == TT_OK || tt_future_result(late) == TT_ECLOSED);
    tt_future_free(late);
    event_base_free(base);
}

/* A wait inside one of the base's own callbacks: the base cannot turn. */
typedef struct nested {
    tt_future *f;
    tt_err rc;
    double secs;
} nested;

static void wait_inside(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    nested *n = arg;
    double t0 = tt_test_now_();
    n->rc = tt_future_wait(n->f, 2000);
    n->secs = tt_test_now_() - t0;
}

static void *free_elsewhere(void *arg) {
    tt_runtime_free(arg);            /* refused: not the host thread */
    return NULL;
}

static void test_embedded_wait_runs_base(void) {
    TT_REQUIRE(tt_init() == TT_OK);
    struct event_base *base = event_base_new();
    TT_REQUIRE(base);
    tt_runtime *rt;
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.base = base;
    o.wait_runs_base = true;
    TT_REQUIRE(tt_runtime_new(&rt, &o) == TT_OK);
    /* One such runtime per host thread. */
    tt_runtime *second = NULL;
    TT_CHECK_EQ_INT(tt_runtime_new(&second, &o), TT_EINVAL);
    tt_actor *a;
    TT_REQUIRE(tt_actor_new(rt, &a) == TT_OK);
    embed e = { .host = pthread_self() };
    /* Call, then wait, with nobody running the loop: the wait runs it. */
    for (int i = 0; i < 10; i++) {
        tt_future *f = tt_actor_call(a, embed_work, &e, NULL);
        TT_CHECK_EQ_INT(tt_future_wait(f, 2000), TT_OK);
        tt_future_free(f);
    }
    TT_CHECK_EQ_INT(atomic_load(&e.on_host), 10);
    /* A future that never completes still times out on time. */
    atomic_store(&g_nheld, 0);
    tt_future *f = tt_actor_call(a, hold, NULL, NULL);
    double t0 = tt_test_now_();
    TT_CHECK_EQ_INT(tt_future_wait(f, 150), TT_ETIMEDOUT);
    double waited = tt_test_now_() - t0;
    TT_CHECK_MSG(waited >= 0.14 && waited < 1.0, "waited %.3f s", waited);
    /* Waiting inside the base's own callback cannot work: TT_EDEADLK at once. */
    nested n = { .f = f, .rc = TT_OK };
    struct event *ev = event_new(base, -1, 0, wait_inside, &n);
    TT_REQUIRE(ev);
    event_active(ev, EV_TIMEOUT, 0);
    event_base_loop(base, EVLOOP_ONCE);
    TT_CHECK_EQ_INT(n.rc, TT_EDEADLK);
    TT_CHECK_MSG(n.secs < 0.5, "took %.3f s", n.secs);
    event_free(ev);
    /* Freeing off the host thread is refused; the runtime still works. */
    pthread_t th;
    TT_REQUIRE(pthread_create(&th, NULL, free_elsewhere, rt) == 0);
    pthread_join(th, NULL);
    tt_future *g = tt_actor_call(a, embed_work, &e, NULL);
    TT_CHECK_EQ_INT(tt_future_wait(g, 2000), TT_OK);
    tt_future_free(g);
    tt_actor_free(a);
    tt_runtime_free(rt);
    TT_CHECK_EQ_INT(tt_future_result(f), TT_ECLOSED);    /* completed by the shutdown */
    tt_future_free(f);
    TT_CHECK_EQ_INT(atomic_load(&g_nheld), 1);
    TT_CHECK(!tt_promise_complete(g_held[0], TT_OK, 0, NULL));   /* lost; releases it */
    /* Freed: the thread may host another. */
    TT_CHECK_EQ_INT(tt_runtime_new(&second, &o), TT_OK);
    tt_runtime_free(second);
    event_base_free(base);
}

/* Slots in this process's descriptor table (FDSize in /proc/self/status). */
static long fd_table_size(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "FDSize: %ld", &n) == 1) break;
    fclose(f);
    return n;
}

static void test_reserve_fds(void) {
    const long want = 4096;
    struct rlimit rl;
    TT_REQUIRE(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_max != RLIM_INFINITY && (long)rl.rlim_max < want) rl.rlim_max = (rlim_t)want;
    rl.rlim_cur = (rlim_t)want;
    TT_REQUIRE(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    long before = fd_table_size();
    TT_REQUIRE(before > 0 && before < want);   /* this process opened few */
    /* Without the option the table stays as it is. */
    tt_runtime *rt;
    TT_REQUIRE(tt_runtime_new(&rt, NULL) == TT_OK);
    TT_CHECK(fd_table_size() < want);
    tt_runtime_free(rt);
    /* With it, the table holds `want` before any connection is made. */
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.loop_threads = 1;
    o.reserve_fds = (uint32_t)want;
    TT_REQUIRE(tt_runtime_new(&rt, &o) == TT_OK);
    long after = fd_table_size();
    TT_CHECK_MSG(after >= want, "FDSize %ld, asked for %ld", after, want);
    tt_runtime_free(rt);
    /* Asking past the limit is capped at the limit, not an error. */
    o.reserve_fds = (uint32_t)want * 4;
    TT_REQUIRE(tt_runtime_new(&rt, &o) == TT_OK);
    TT_CHECK(fd_table_size() < want * 4);
    tt_runtime_free(rt);
}

TT_TEST_LIST = {
    { "reserve_fds", test_reserve_fds },
    { "shutdown_with_futures_pending", test_shutdown_with_futures_pending },
    { "free_from_own_callbacks", test_free_from_own_callbacks },
    { "call_deadline", test_call_deadline },
    { "embedded_runtime", test_embedded_runtime },
    { "embedded_wait_runs_base", test_embedded_wait_runs_base },
    { NULL, NULL },
};
