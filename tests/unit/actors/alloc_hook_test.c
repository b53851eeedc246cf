/* Allocation hooks: every allocation of a runtime's life goes through them,
 * and every one is given back. */
#include <stdatomic.h>
#include <stdlib.h>
#include <tether/tether.h>

#include "tt_test.h"

static atomic_long g_live, g_total;

static void *my_malloc(size_t n, void *arg) {
    (void)arg;
    atomic_fetch_add(&g_live, 1);
    atomic_fetch_add(&g_total, 1);
    return malloc(n);
}
static void *my_realloc(void *p, size_t n, void *arg) {
    (void)arg;
    if (!p) {
        atomic_fetch_add(&g_live, 1);
        atomic_fetch_add(&g_total, 1);
    }
    return realloc(p, n);
}
static void my_free(void *p, void *arg) {
    (void)arg;
    if (p) atomic_fetch_sub(&g_live, 1);
    free(p);
}

static void work(tt_promise *p, void *arg) {
    (void)arg;
    tt_promise_complete(p, TT_EREFUSED, 5, "refused: %s", "test");  /* reason text allocates */
}

static void test_hooks_see_everything(void) {
    tt_allocator bad = TT_OPTS_INIT(tt_allocator);
    TT_CHECK_EQ_INT(tt_set_allocator(&bad), TT_EINVAL);
    tt_allocator a = TT_OPTS_INIT(tt_allocator);
    a.malloc_fn = my_malloc;
    a.realloc_fn = my_realloc;
    a.free_fn = my_free;
    TT_REQUIRE(tt_set_allocator(&a) == TT_OK);
    /* libevent keeps a few process-wide locks from tt_init() on. */
    TT_REQUIRE(tt_init() == TT_OK);
    long baseline = atomic_load(&g_live);
    tt_runtime *rt;
    TT_REQUIRE(tt_runtime_new(&rt, NULL) == TT_OK);
    tt_actor *actor;
    TT_REQUIRE(tt_actor_new(rt, &actor) == TT_OK);
    for (int i = 0; i < 100; i++) {
        tt_future *f = tt_actor_call(actor, work, NULL, NULL);
        TT_CHECK_EQ_INT(tt_future_wait(f, 5000), TT_EREFUSED);
        tt_future_free(f);
    }
    tt_actor_free(actor);
    tt_runtime_free(rt);
    TT_CHECK(atomic_load(&g_total) > 100);    /* libevent's and ours */
    TT_CHECK_EQ_INT(atomic_load(&g_live), baseline);
}

TT_TEST_LIST = {
    { "hooks_see_everything", test_hooks_see_everything },
    { NULL, NULL },
};
