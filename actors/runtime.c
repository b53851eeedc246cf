/* The runtime (loops, placement, shutdown) and user actors. */
#include "actors/runtime.h"

#include <event2/event.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <tether/log.h>
#include <time.h>
#include <unistd.h>

#include "actors/core/alloc.h"
#include "actors/core/log.h"
#include "actors/future.h"
#include "actors/pool.h"

/* ---- Placement ------------------------------------------------------------ */

static tti_loop *pick(tti_runtime *rt, tti_loop *loops, uint32_t n) {
    if (atomic_load_explicit(&rt->closing, memory_order_acquire)) return NULL;
    uint32_t start = atomic_fetch_add_explicit(&rt->next_pick, 1, memory_order_relaxed) % n;
    tti_loop *best = &loops[start];
    unsigned best_n = atomic_load_explicit(&best->nactors, memory_order_relaxed);
    for (uint32_t i = 1; i < n; i++) {
        tti_loop *l = &loops[(start + i) % n];
        unsigned c = atomic_load_explicit(&l->nactors, memory_order_relaxed);
        if (c < best_n) {
            best = l;
            best_n = c;
        }
    }
    return best;
}

tti_loop *tti_runtime_pick_io(tti_runtime *rt) { return pick(rt, rt->io, rt->nio); }
tti_loop *tti_runtime_pick_pool(tti_runtime *rt) { return pick(rt, rt->pool, rt->npool); }
tti_actor *tti_runtime_fallback_strand(tti_runtime *rt) { return rt->fallback; }

uint32_t tt_runtime_loop_count(const tt_runtime *rt) { return rt ? rt->nio : 0; }

/* ---- Shutdown bookkeeping ------------------------------------------------- */

void tti_runtime_actor_died(tti_runtime *rt) {
    if (!atomic_load_explicit(&rt->closing, memory_order_acquire)) return;
    pthread_mutex_lock(&rt->lock);
    pthread_cond_broadcast(&rt->cond);
    pthread_mutex_unlock(&rt->lock);
}

int tti_runtime_add_member(tti_runtime *rt, tti_member *m) {
    pthread_mutex_lock(&rt->lock);
    if (atomic_load(&rt->closing)) {
        pthread_mutex_unlock(&rt->lock);
        return TT_ECLOSED;
    }
    m->rt = rt;
    m->next = rt->members.next;
    m->prev = &rt->members;
    m->next->prev = m;
    rt->members.next = m;
    pthread_mutex_unlock(&rt->lock);
    return TT_OK;
}

/* m->rt is written under the runtime's lock and read here first without
 * it: the runtime outlives every call that can still see it set. */
void tti_runtime_remove_member(tti_member *m) {
    tti_runtime *rt = __atomic_load_n(&m->rt, __ATOMIC_ACQUIRE);
    if (!rt) return;
    pthread_mutex_lock(&rt->lock);
    if (m->rt) {
        m->prev->next = m->next;
        m->next->prev = m->prev;
        __atomic_store_n(&m->rt, NULL, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&rt->lock);
}

static unsigned live_on(const tti_loop *loops, uint32_t n) {
    unsigned sum = 0;
    for (uint32_t i = 0; i < n; i++)
        sum += atomic_load_explicit(&loops[i].nactors, memory_order_acquire);
    return sum;
}

/* Sleep on rt->cond (held) until an actor dies or 50 ms pass. */
static void wait_a_little(tti_runtime *rt) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&rt->cond, &rt->lock, &ts);
}

/* Wait until every actor on `loops` handled its stop message. */
static void wait_quiet(tti_runtime *rt, const tti_loop *loops, uint32_t n) {
    if (rt->embedded) {
        while (live_on(loops, n) > 0) event_base_loop(rt->io[0].base, EVLOOP_ONCE);
        return;
    }
    pthread_mutex_lock(&rt->lock);
    while (live_on(loops, n) > 0) wait_a_little(rt);
    pthread_mutex_unlock(&rt->lock);
}

/* The same for the extra loop groups, which always have threads of their own. */
static unsigned live_in_groups(const tti_runtime *rt) {   /* rt->lock held */
    unsigned sum = 0;
    for (const tti_loop_group *g = rt->groups.next; g != &rt->groups; g = g->next)
        sum += live_on(g->loops, g->n);
    return sum;
}

static void wait_groups_quiet(tti_runtime *rt) {
    pthread_mutex_lock(&rt->lock);
    while (live_in_groups(rt) > 0) wait_a_little(rt);
    pthread_mutex_unlock(&rt->lock);
}

/* ---- Creation and teardown ------------------------------------------------ */

static void free_loops(tti_loop *loops, uint32_t n) {
    if (!loops) return;
    for (uint32_t i = 0; i < n; i++) tti_loop_stop_join(&loops[i]);
    for (uint32_t i = 0; i < n; i++) tti_loop_fini(&loops[i]);
    tti_free(loops);
}

static tt_err make_loops(tti_runtime *rt, tti_loop **out, uint32_t n, struct event_base *base,
                         const char *name) {
    tti_loop *loops = tti_calloc(n, sizeof *loops);
    if (!loops) return TT_ENOMEM;
    uint32_t made = 0;
    tt_err rc = TT_OK;
    for (; made < n; made++) {
        rc = (tt_err)tti_loop_init(&loops[made], rt, base, name, made);
        if (rc != TT_OK) break;
        if (!base && (rc = (tt_err)tti_loop_start(&loops[made])) != TT_OK) {
            tti_loop_fini(&loops[made]);
            break;
        }
    }
    if (rc != TT_OK) {
        free_loops(loops, made);
        return rc;
    }
    *out = loops;
    return TT_OK;
}

int tti_runtime_loops_new(tti_runtime *rt, uint32_t n, const char *name, tti_loop_group **out) {
    if (!rt || !out || n == 0 || n > 1024) return TT_EINVAL;
    *out = NULL;
    if (atomic_load_explicit(&rt->closing, memory_order_acquire)) return TT_ECLOSED;
    tti_loop_group *g = tti_calloc(1, sizeof *g);
    if (!g) return TT_ENOMEM;
    tt_err rc = make_loops(rt, &g->loops, n, NULL, name);
    if (rc != TT_OK) {
        tti_free(g);
        return rc;
    }
    g->n = n;
    pthread_mutex_lock(&rt->lock);
    if (atomic_load(&rt->closing)) {
        pthread_mutex_unlock(&rt->lock);
        free_loops(g->loops, g->n);
        tti_free(g);
        return TT_ECLOSED;
    }
    g->rt = rt;
    g->next = rt->groups.next;
    g->prev = &rt->groups;
    g->next->prev = g;
    rt->groups.next = g;
    pthread_mutex_unlock(&rt->lock);
    *out = g;
    return TT_OK;
}

void tti_runtime_loops_free(tti_loop_group *g) {
    if (!g) return;
    tti_runtime *rt = g->rt;
    if (rt) {
        pthread_mutex_lock(&rt->lock);
        if (g->rt) {
            g->prev->next = g->next;
            g->next->prev = g->prev;
            g->rt = NULL;
        }
        pthread_mutex_unlock(&rt->lock);
    }
    free_loops(g->loops, g->n);      /* threads the runtime joined are skipped */
    tti_free(g);
}

/* Grow the descriptor table once, before the loop threads exist: a
 * descriptor numbered n - 1, duplicated and closed again, leaves room for n.
 * Best effort; a failure only means the table grows later. */
static void reserve_fd_table(uint32_t n) {
    struct rlimit rl;
    if (n < 2 || getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    rlim_t top = n;
    if (rl.rlim_cur != RLIM_INFINITY && top > rl.rlim_cur) top = rl.rlim_cur;
    if (top < 2 || top > INT32_MAX) return;
    int tmp = eventfd(0, EFD_CLOEXEC);
    if (tmp < 0) return;
    int high = fcntl(tmp, F_DUPFD_CLOEXEC, (int)top - 1);
    if (high >= 0) close(high);
    close(tmp);
}

/* The wait_runs_base runtime this thread hosts, if any. */
static _Thread_local tti_runtime *t_host;

bool tti_hosting(void) { return t_host != NULL; }

static void turn_over(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    (void)arg;
}

int tti_host_turn(const tti_runtime *want, int64_t max_ns) {
    tti_runtime *rt = t_host;
    if (!rt || (want && want != rt) || tti_on_library_thread()) return 0;
    if (max_ns < 0) max_ns = 0;
    struct timeval tv = { .tv_sec = (time_t)(max_ns / 1000000000),
                          .tv_usec = (suseconds_t)(max_ns % 1000000000 / 1000) };
    event_add(rt->turn_ev, &tv);     /* the turn ends by this time at the latest */
    int r = event_base_loop(rt->io[0].base, EVLOOP_ONCE);
    event_del(rt->turn_ev);
    return r < 0 ? -1 : 1;
}

tt_err tt_runtime_new(tt_runtime **out, const tt_runtime_opts *user_opts) {
    if (!out) return TT_EINVAL;
    *out = NULL;
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    if (user_opts) {
        if (user_opts->size < offsetof(tt_runtime_opts, pool_threads) + sizeof(uint32_t))
            return TT_EINVAL;
        memcpy(&o, user_opts, user_opts->size < sizeof o ? user_opts->size : sizeof o);
        o.size = sizeof o;
    }
    bool drives = o.wait_runs_base && o.base;
    if (drives && t_host) return TT_EINVAL;   /* one per host thread */
    tt_err rc = (tt_err)tt_init();
    if (rc != TT_OK) return rc;
    reserve_fd_table(o.reserve_fds);

    tti_runtime *rt = tti_calloc(1, sizeof *rt);
    if (!rt) return TT_ENOMEM;
    pthread_mutex_init(&rt->lock, NULL);
    pthread_cond_init(&rt->cond, NULL);
    rt->members.next = rt->members.prev = &rt->members;
    rt->groups.next = rt->groups.prev = &rt->groups;
    rt->default_timeout_ms = o.default_timeout_ms;
    rt->embedded = o.base != NULL;
    if (rt->embedded) {
        rt->nio = rt->npool = 1;
    } else {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        rt->nio = o.loop_threads ? o.loop_threads : (cores > 0 ? (uint32_t)cores : 1);
        rt->npool = o.pool_threads ? o.pool_threads : 1;
        if (rt->nio > 1024 || rt->npool > 1024) {
            rc = TT_EINVAL;
            goto fail;
        }
    }
    if ((rc = make_loops(rt, &rt->io, rt->nio, o.base, "io")) != TT_OK) goto fail;
    if ((rc = make_loops(rt, &rt->pool, rt->npool, o.base, "pool")) != TT_OK) goto fail;
    if (drives && !(rt->turn_ev = event_new(o.base, -1, 0, turn_over, NULL))) {
        rc = TT_ENOMEM;
        goto fail;
    }
    rt->fallback = tti_strand_new(rt);
    if (!rt->fallback) {
        rc = TT_ENOMEM;
        goto fail;
    }
    if (drives) {
        rt->drives = true;
        rt->host = pthread_self();
        t_host = rt;
    }
    TTI_LOG(DEBUG, "runtime", "started: %u loops, %u pool threads%s", rt->nio, rt->npool,
            rt->embedded ? " (embedded)" : "");
    *out = rt;
    return TT_OK;
fail:
    if (rt->turn_ev) event_free(rt->turn_ev);
    free_loops(rt->pool, rt->pool ? rt->npool : 0);
    free_loops(rt->io, rt->io ? rt->nio : 0);
    pthread_cond_destroy(&rt->cond);
    pthread_mutex_destroy(&rt->lock);
    tti_free(rt);
    return rc;
}

void tt_runtime_free(tt_runtime *rt) {
    if (!rt) return;
    if (tti_on_library_thread()) {
        TTI_LOG(ERROR, "runtime", "tt_runtime_free called on a library thread; ignored");
        return;
    }
    if (rt->drives && !pthread_equal(pthread_self(), rt->host)) {
        TTI_LOG(ERROR, "runtime", "tt_runtime_free called off the host thread of a wait_runs_base runtime; ignored");
        return;
    }
    atomic_store_explicit(&rt->closing, true, memory_order_release);

    /* 1. Abort every member's I/O actors; their pending work fails with
     *    TT_ECLOSED and the continuations are queued on the strands. */
    pthread_mutex_lock(&rt->lock);
    for (tti_member *m = rt->members.next; m != &rt->members; m = m->next)
        if (m->ops && m->ops->abort_io) m->ops->abort_io(m);
    pthread_mutex_unlock(&rt->lock);
    wait_quiet(rt, rt->io, rt->nio);
    wait_groups_quiet(rt);

    /* 2. Stop the strands behind the queued callbacks, which still run. */
    pthread_mutex_lock(&rt->lock);
    for (tti_member *m = rt->members.next; m != &rt->members; m = m->next)
        if (m->ops && m->ops->stop_strands) m->ops->stop_strands(m);
    while (rt->members.next != &rt->members) {
        tti_member *m = rt->members.next;
        rt->members.next = m->next;
        __atomic_store_n(&m->rt, NULL, __ATOMIC_RELEASE);
    }
    rt->members.prev = &rt->members;
    pthread_mutex_unlock(&rt->lock);
    tti_actor_stop(rt->fallback);
    wait_quiet(rt, rt->pool, rt->npool);

    /* 3. Join the threads; nothing runs any more. Extra loop groups are
     *    unlinked and their threads joined; their owners free the rest. */
    pthread_mutex_lock(&rt->lock);
    tti_loop_group *groups = rt->groups.next == &rt->groups ? NULL : rt->groups.next;
    rt->groups.prev->next = NULL;     /* the unlinked groups, chained through next */
    rt->groups.next = rt->groups.prev = &rt->groups;
    for (tti_loop_group *g = groups; g; g = g->next) g->rt = NULL;
    pthread_mutex_unlock(&rt->lock);
    /* Outside the lock: a loop thread may still be leaving the handler of the
     * stop it just counted (tti_runtime_actor_died takes the lock). */
    for (tti_loop_group *g = groups; g; g = g->next)
        for (uint32_t i = 0; i < g->n; i++) tti_loop_stop_join(&g->loops[i]);
    free_loops(rt->io, rt->nio);
    free_loops(rt->pool, rt->npool);
    tti_actor_release(rt->fallback);
    if (rt->drives) {
        event_free(rt->turn_ev);
        t_host = NULL;
    }
    pthread_cond_destroy(&rt->cond);
    pthread_mutex_destroy(&rt->lock);
    TTI_LOG(DEBUG, "runtime", "stopped");
    tti_free(rt);
}

/* ---- User actors ------------------------------------------------------------ */

struct tt_actor {
    tti_actor core;                   /* its references own this struct */
    tti_actor *strand;
    tti_member member;
    uint32_t default_timeout_ms;
    /* Calls whose work kept the promise past its return (loop thread only).
     * Each entry holds a reference; completed entries are swept lazily. */
    tt_future *running;
    size_t nrunning;
    size_t sweep_at;
};

typedef struct call_msg {
    tti_msg msg;
    tt_work_fn fn;
    void *arg;
    tt_future *f;
} call_msg;

static void sweep_running(tt_actor *a) {
    tt_future **pp = &a->running;
    while (*pp) {
        tt_future *f = *pp;
        if (tt_future_done(f)) {
            *pp = f->next;
            a->nrunning--;
            tti_future_release(f);
        } else {
            pp = &f->next;
        }
    }
    a->sweep_at = a->nrunning * 2 > 64 ? a->nrunning * 2 : 64;
}

static void actor_handle(tti_actor *core, tti_msg *m) {
    tt_actor *a = TTI_CONTAINER_OF(core, tt_actor, core);
    call_msg *cm = TTI_CONTAINER_OF(m, call_msg, msg);
    tt_future *f = cm->f;
    tt_promise *p = tti_future_promise(f);
    if (tt_promise_abandoned(p)) {   /* cancelled or timed out while queued */
        (void)tt_promise_complete(p, TT_ECANCELED, 0, NULL);
        return;
    }
    tti_future_retain(f);            /* f stays readable after the work */
    cm->fn(p, cm->arg);              /* may complete p: don't touch cm after */
    if (tt_future_done(f)) {
        tti_future_release(f);
        return;
    }
    /* The work kept the promise: remember it so a stop can fail it. */
    f->next = a->running;
    a->running = f;
    if (++a->nrunning >= a->sweep_at) sweep_running(a);
}

static void actor_drop(tti_actor *core, tti_msg *m) {
    (void)core;
    call_msg *cm = TTI_CONTAINER_OF(m, call_msg, msg);
    (void)tt_promise_complete(tti_future_promise(cm->f), TT_ECLOSED, 0, "actor stopped");
}

static void actor_stopped(tti_actor *core) {
    tt_actor *a = TTI_CONTAINER_OF(core, tt_actor, core);
    /* Calls whose work still holds the promise complete now; their holders'
     * later tt_promise_complete() returns false. */
    while (a->running) {
        tt_future *f = a->running;
        a->running = f->next;
        (void)tti_future_try_complete(f, TT_ECLOSED, 0, "actor stopped");
        tti_future_release(f);
    }
    a->nrunning = 0;
    /* Continuations queued so far run first; later ones use the fallback. */
    tti_actor_stop(a->strand);
}

static void actor_destroy(tti_actor *core) {
    tt_actor *a = TTI_CONTAINER_OF(core, tt_actor, core);
    tti_actor_release(a->strand);
    tti_free(a);
}

static const tti_actor_ops actor_ops = {
    .handle = actor_handle,
    .drop = actor_drop,
    .stopped = actor_stopped,
    .destroy = actor_destroy,
};

static void actor_abort_io(tti_member *m) {
    tt_actor *a = TTI_CONTAINER_OF(m, tt_actor, member);
    tti_actor_abort(&a->core);
}

tt_err tt_actor_new(tt_runtime *rt, tt_actor **out) {
    if (!rt || !out) return TT_EINVAL;
    *out = NULL;
    tti_loop *l = tti_runtime_pick_io(rt);
    if (!l) return TT_ECLOSED;
    tt_actor *a = tti_calloc(1, sizeof *a);
    if (!a) return TT_ENOMEM;
    a->strand = tti_strand_new(rt);
    if (!a->strand) {
        tti_free(a);
        return atomic_load(&rt->closing) ? TT_ECLOSED : TT_ENOMEM;
    }
    a->sweep_at = 64;
    a->default_timeout_ms = rt->default_timeout_ms;
    static const tti_member_ops member_ops = { .abort_io = actor_abort_io };
    a->member.ops = &member_ops;
    tti_actor_init(&a->core, l, &actor_ops);
    if (tti_runtime_add_member(rt, &a->member) != TT_OK) {
        tti_actor_stop(&a->core);
        tti_actor_release(&a->core);
        return TT_ECLOSED;
    }
    *out = a;
    return TT_OK;
}

tt_future *tt_actor_call(tt_actor *a, tt_work_fn fn, void *arg, const tt_call_opts *opts) {
    if (!a) return tti_future_failed(NULL, TT_EINVAL, "no actor");
    if (!fn) return tti_future_failed(a->strand, TT_EINVAL, "no work function");
    tt_future *f = tti_future_new(a->strand, sizeof(call_msg));
    if (!f) return tti_future_enomem();
    uint32_t timeout = a->default_timeout_ms;
    if (opts && opts->size >= offsetof(tt_call_opts, timeout_ms) + sizeof(uint32_t) &&
        opts->timeout_ms)
        timeout = opts->timeout_ms;
    call_msg *cm = tti_future_extra(f);
    cm->msg.type = 1;
    cm->fn = fn;
    cm->arg = arg;
    cm->f = f;
    tti_future_set_deadline(f, a->core.loop->base, timeout);  /* before anyone else sees f */
    if (tti_actor_send(&a->core, &cm->msg) != TT_OK) {
        (void)tt_promise_complete(tti_future_promise(f), TT_ECLOSED, 0, "actor stopped");
        return f;
    }
    return f;
}

void tt_actor_free(tt_actor *a) {
    if (!a) return;
    tti_runtime_remove_member(&a->member);
    tti_actor_stop(&a->core);
    tti_actor_release(&a->core);
}
