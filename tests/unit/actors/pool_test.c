/* The callback pool: callbacks of one actor run one at a time and in order,
 * different actors run in parallel, on a pool of 4 threads. */
#include <pthread.h>
#include <stdatomic.h>
#include <tether/tether.h>

#include "tt_scale.h"
#include "tt_test.h"

#define ACTORS 8
#define CALLS TT_SCALED(20000)

typedef struct client {
    tt_actor *actor;
    atomic_int inside;               /* callbacks of this client running now */
    int next_expected;               /* touched only by this client's callbacks */
    atomic_int order_errors;
    atomic_int overlap_errors;
    atomic_int done;
    int seq[CALLS];
} client;

typedef struct call_arg {
    client *c;
    int n;
} call_arg;

static atomic_int g_max_parallel;
static atomic_int g_running;
/* Pool threads that ran callbacks: distinct ids, set once each. */
static _Atomic(unsigned long) g_threads[4];

static void work(tt_promise *p, void *arg) {
    call_arg *ca = arg;
    tt_promise_set_value(p, NULL, NULL, ca->n);
    tt_promise_complete(p, TT_OK, 0, NULL);
}

static void on_done(tt_future *f, void *arg) {
    client *c = arg;
    unsigned long self = (unsigned long)pthread_self();
    for (int i = 0; i < 4; i++) {
        unsigned long t = atomic_load(&g_threads[i]);
        if (t == self) break;
        if (t == 0 && atomic_compare_exchange_strong(&g_threads[i], &t, self)) break;
        if (t == self) break;
    }
    int now = atomic_fetch_add(&g_running, 1) + 1;
    int m = atomic_load(&g_max_parallel);
    while (now > m && !atomic_compare_exchange_weak(&g_max_parallel, &m, now)) {
    }
    if (atomic_fetch_add(&c->inside, 1) != 0) atomic_fetch_add(&c->overlap_errors, 1);
    int n = (int)tt_future_get_i64(f);
    if (n != c->next_expected) atomic_fetch_add(&c->order_errors, 1);
    c->next_expected = n + 1;
    for (volatile int spin = 0; spin < 200; spin++) {
    }
    atomic_fetch_sub(&c->inside, 1);
    atomic_fetch_sub(&g_running, 1);
    tt_future_free(f);
    atomic_fetch_add_explicit(&c->done, 1, memory_order_release);
}

static void test_per_client_order_on_four_threads(void) {
    tt_runtime *rt;
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.loop_threads = 2;
    o.pool_threads = 4;
    TT_REQUIRE(tt_runtime_new(&rt, &o) == TT_OK);
    static client cl[ACTORS];
    static call_arg args[ACTORS][CALLS];
    for (int i = 0; i < ACTORS; i++) {
        memset(&cl[i], 0, sizeof cl[i]);
        TT_REQUIRE(tt_actor_new(rt, &cl[i].actor) == TT_OK);
    }
    for (int n = 0; n < CALLS; n++)
        for (int i = 0; i < ACTORS; i++) {
            args[i][n] = (call_arg){ &cl[i], n };
            tt_future *f = tt_actor_call(cl[i].actor, work, &args[i][n], NULL);
            TT_CHECK_EQ_INT(tt_future_then(f, on_done, &cl[i]), TT_OK);
        }
    for (int i = 0; i < ACTORS; i++)
        while (atomic_load_explicit(&cl[i].done, memory_order_acquire) < CALLS) {
        }
    for (int i = 0; i < ACTORS; i++) {
        TT_CHECK_EQ_INT(atomic_load(&cl[i].order_errors), 0);
        TT_CHECK_EQ_INT(atomic_load(&cl[i].overlap_errors), 0);
        TT_CHECK_EQ_INT(cl[i].next_expected, CALLS);
        tt_actor_free(cl[i].actor);
    }
    /* Different clients did run at the same time on different threads. */
    /* Different clients are spread over the pool's threads (whether two ran
     * at the same instant depends on the scheduler of a loaded 2-core box,
     * so that is reported, not asserted). */
    int threads = 0;
    for (int i = 0; i < 4; i++) threads += atomic_load(&g_threads[i]) != 0;
    TT_CHECK_MSG(threads >= 2, "callbacks ran on %d pool thread(s)", threads);
    fprintf(stderr, "  %d pool threads ran callbacks; at most %d at once\n", threads,
            atomic_load(&g_max_parallel));
    tt_runtime_free(rt);
}

TT_TEST_LIST = {
    { "per_client_order_on_four_threads", test_per_client_order_on_four_threads },
    { NULL, NULL },
};
