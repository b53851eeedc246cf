/* Futures: exactly-once completion with wait / then / cancel / deadline racing
 * the producer, 10,000 rounds each; the ownership and thread rules. */
#include <pthread.h>
#include <stdatomic.h>
#include <tether/tether.h>

#include "actors/future.h"
#include "actors/runtime.h"
#include "tt_scale.h"
#include "tt_test.h"

#define ROUNDS TT_SCALED(10000)

static tt_runtime *g_rt;
static tti_actor *g_strand;

static void setup(void) {
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.loop_threads = 2;
    o.pool_threads = 2;
    if (tt_runtime_new(&g_rt, &o) != TT_OK) abort();
    g_strand = tti_strand_new(g_rt);
}
static void teardown(void) {
    tti_strand_free(g_strand);
    tt_runtime_free(g_rt);
}

/* A thread that completes a promise when released by the main thread. */
typedef struct racer {
    tt_promise *p;
    atomic_int go;
    bool won;
    tt_err rc;
} racer;

static void *complete_main(void *arg) {
    racer *r = arg;
    while (!atomic_load_explicit(&r->go, memory_order_acquire)) {
    }
    r->won = tt_promise_complete(r->p, r->rc, 7, r->rc == TT_OK ? NULL : "reason %d", 7);
    return NULL;
}

static void test_wait_races_completion(void) {
    setup();
    for (int i = 0; i < ROUNDS; i++) {
        tt_future *f = tti_future_new(g_strand, 0);
        racer r = { .p = tti_future_promise(f), .rc = TT_OK };
        pthread_t th;
        pthread_create(&th, NULL, complete_main, &r);
        atomic_store_explicit(&r.go, 1, memory_order_release);
        TT_CHECK_EQ_INT(tt_future_wait(f, TT_FOREVER), TT_OK);
        TT_CHECK(tt_future_done(f));
        pthread_join(th, NULL);
        TT_CHECK(r.won);
        tt_future_free(f);
    }
    teardown();
}

typedef struct then_count {
    atomic_int runs;
    atomic_int ok;
    atomic_int canceled;
    atomic_int timedout;
} then_count;

static void count_then(tt_future *f, void *arg) {
    then_count *c = arg;
    switch (tt_future_result(f)) {
    case TT_OK: atomic_fetch_add(&c->ok, 1); break;
    case TT_ECANCELED: atomic_fetch_add(&c->canceled, 1); break;
    case TT_ETIMEDOUT: atomic_fetch_add(&c->timedout, 1); break;
    default: break;
    }
    tt_future_free(f);
    atomic_fetch_add(&c->runs, 1);   /* last: the test reads the tallies once runs is reached */
}

static void wait_runs(then_count *c, int n) {
    while (atomic_load(&c->runs) < n) {
    }
}

static void test_then_races_completion(void) {
    setup();
    then_count c = { 0 };
    for (int i = 0; i < ROUNDS; i++) {
        tt_future *f = tti_future_new(g_strand, 0);
        racer r = { .p = tti_future_promise(f), .rc = TT_OK };
        pthread_t th;
        pthread_create(&th, NULL, complete_main, &r);
        atomic_store_explicit(&r.go, 1, memory_order_release);
        TT_CHECK_EQ_INT(tt_future_then(f, count_then, &c), TT_OK);
        pthread_join(th, NULL);
    }
    wait_runs(&c, ROUNDS);
    TT_CHECK_EQ_INT(atomic_load(&c.runs), ROUNDS);
    TT_CHECK_EQ_INT(atomic_load(&c.ok), ROUNDS);
    teardown();
}

static void test_cancel_races_completion(void) {
    setup();
    then_count c = { 0 };
    int producer_won = 0;
    for (int i = 0; i < ROUNDS; i++) {
        tt_future *f = tti_future_new(g_strand, 0);
        racer r = { .p = tti_future_promise(f), .rc = TT_OK };
        pthread_t th;
        pthread_create(&th, NULL, complete_main, &r);
        tti_future_retain(f);                /* keep it to inspect after `then` */
        TT_CHECK_EQ_INT(tt_future_then(f, count_then, &c), TT_OK);
        atomic_store_explicit(&r.go, 1, memory_order_release);
        tt_future_cancel(f);
        tt_future_cancel(f);                 /* idempotent */
        pthread_join(th, NULL);
        tt_err rc = tt_future_result(f);
        TT_CHECK(rc == TT_OK || rc == TT_ECANCELED);
        TT_CHECK(r.won == (rc == TT_OK));    /* the producer knows whether it won */
        producer_won += r.won;
        tti_future_release(f);
    }
    wait_runs(&c, ROUNDS);
    TT_CHECK_EQ_INT(atomic_load(&c.runs), ROUNDS);
    TT_CHECK_EQ_INT(atomic_load(&c.ok), producer_won);
    TT_CHECK_EQ_INT(atomic_load(&c.canceled), ROUNDS - producer_won);
    teardown();
}

static void test_deadline_races_completion(void) {
    setup();
    then_count c = { 0 };
    int producer_won = 0;
    tti_loop *loop = tti_runtime_pick_io(g_rt);
    for (int i = 0; i < ROUNDS; i++) {
        tt_future *f = tti_future_new(g_strand, 0);
        tti_future_set_deadline(f, loop->base, 1);
        racer r = { .p = tti_future_promise(f), .rc = TT_OK };
        pthread_t th;
        pthread_create(&th, NULL, complete_main, &r);
        tti_future_retain(f);
        TT_CHECK_EQ_INT(tt_future_then(f, count_then, &c), TT_OK);
        /* Give the 1 ms timer a chance to win about half the time. */
        if (i % 2) {
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);
        }
        atomic_store_explicit(&r.go, 1, memory_order_release);
        pthread_join(th, NULL);
        /* A losing producer may return before the timer publishes: wait. */
        tt_err rc = tt_future_wait(f, TT_FOREVER);
        TT_CHECK(rc == TT_OK || rc == TT_ETIMEDOUT);
        TT_CHECK(r.won == (rc == TT_OK));
        producer_won += r.won;
        tti_future_release(f);
    }
    wait_runs(&c, ROUNDS);
    TT_CHECK_EQ_INT(atomic_load(&c.runs), ROUNDS);
    TT_CHECK_EQ_INT(atomic_load(&c.ok), producer_won);
    TT_CHECK_EQ_INT(atomic_load(&c.timedout), ROUNDS - producer_won);
    TT_CHECK(producer_won > 0);
    teardown();
}

static void test_wait_timeout_then_complete(void) {
    setup();
    tt_future *f = tti_future_new(g_strand, 0);
    TT_CHECK_EQ_INT(tt_future_wait(f, 0), TT_ETIMEDOUT);
    TT_CHECK_EQ_INT(tt_future_wait(f, 20), TT_ETIMEDOUT);   /* the wait expired... */
    TT_CHECK(!tt_future_done(f));                           /* ...the operation goes on */
    TT_CHECK_EQ_INT(tt_future_result(f), TT_EBUSY);
    TT_CHECK(tt_promise_complete(tti_future_promise(f), TT_EREFUSED, 0x87, "not authorized (%s)",
                                 "bad token"));
    TT_CHECK_EQ_INT(tt_future_wait(f, 0), TT_EREFUSED);
    const char *why = NULL;
    TT_CHECK_EQ_INT(tt_future_detail(f, &why), 0x87);
    TT_CHECK_EQ_STR(why, "not authorized (bad token)");
    tt_future_free(f);
    teardown();
}

static void test_value_and_ownership(void) {
    setup();
    tt_future *f = tti_future_new(g_strand, 0);
    char *s = strdup("value");
    tt_promise_set_value(tti_future_promise(f), s, free, 42);
    TT_CHECK(tt_future_get_ptr(f) == NULL);                 /* pending: nothing yet */
    TT_CHECK(tt_promise_complete(tti_future_promise(f), TT_OK, 0, NULL));
    TT_CHECK_EQ_STR((const char *)tt_future_get_ptr(f), "value");
    TT_CHECK_EQ_INT(tt_future_get_i64(f), 42);
    const char *why = "x";
    TT_CHECK_EQ_INT(tt_future_detail(f, &why), 0);
    TT_CHECK_EQ_STR(why, "");
    tt_future_free(f);                                      /* frees the value (ASan) */

    /* A value set by a producer that lost the race is freed by the producer. */
    f = tti_future_new(g_strand, 0);
    tt_future_cancel(f);
    TT_CHECK(tt_promise_abandoned(tti_future_promise(f)));
    tt_promise_set_value(tti_future_promise(f), strdup("lost"), free, 1);
    TT_CHECK(!tt_promise_complete(tti_future_promise(f), TT_OK, 0, NULL));
    TT_CHECK_EQ_INT(tt_future_result(f), TT_ECANCELED);
    TT_CHECK(tt_future_get_ptr(f) == NULL);
    tt_future_free(f);

    /* Commit: after the point of no return, cancel no longer wins. */
    f = tti_future_new(g_strand, 0);
    TT_CHECK(tti_promise_commit(tti_future_promise(f)));
    tt_future_cancel(f);
    TT_CHECK(!tt_future_done(f));
    TT_CHECK(tt_promise_complete(tti_future_promise(f), TT_OK, 0, NULL));
    TT_CHECK_EQ_INT(tt_future_result(f), TT_OK);
    tt_future_free(f);

    /* Freeing early drops interest but does not cancel. */
    f = tti_future_new(g_strand, 0);
    tt_future_free(f);
    TT_CHECK(tt_promise_complete(tti_future_promise(f), TT_OK, 0, NULL));
    teardown();
}

static void test_then_rules(void) {
    setup();
    then_count c = { 0 };
    tt_future *f = tti_future_new(g_strand, 0);
    TT_CHECK_EQ_INT(tt_future_then(f, NULL, NULL), TT_EINVAL);
    TT_CHECK_EQ_INT(tt_future_then(f, count_then, &c), TT_OK);
    TT_CHECK_EQ_INT(tt_future_then(f, count_then, &c), TT_EBUSY);   /* one per future */
    TT_CHECK(tt_promise_complete(tti_future_promise(f), TT_OK, 0, NULL));
    wait_runs(&c, 1);

    /* then() on a completed future still runs the callback, once, later. */
    f = tti_future_failed(g_strand, TT_EINVAL, "bad argument");
    TT_CHECK_EQ_INT(tt_future_result(f), TT_EINVAL);
    TT_CHECK_EQ_INT(tt_future_then(f, count_then, &c), TT_OK);
    wait_runs(&c, 2);
    TT_CHECK_EQ_INT(atomic_load(&c.runs), 2);

    /* The shared out-of-memory future. */
    tt_future *oom = tti_future_enomem();
    TT_CHECK_EQ_INT(tt_future_result(oom), TT_ENOMEM);
    TT_CHECK_EQ_INT(tt_future_wait(oom, TT_FOREVER), TT_ENOMEM);
    TT_CHECK_EQ_INT(tt_future_then(oom, count_then, &c), TT_ENOMEM);
    tt_future_cancel(oom);
    tt_future_free(oom);
    tt_future_free(oom);                                            /* no-op, twice */
    TT_CHECK_EQ_INT(tt_future_result(oom), TT_ENOMEM);
    teardown();
}

/* ---- Waiting on library threads -------------------------------------------- */

typedef struct deadlk {
    tt_future *other;
    atomic_int rc_in_work;
    atomic_int rc_in_then;
    atomic_int runs;
} deadlk;

static void work_waits(tt_promise *p, void *arg) {
    deadlk *d = arg;
    atomic_store(&d->rc_in_work, tt_future_wait(d->other, 1000));
    tt_promise_complete(p, TT_OK, 0, NULL);
}

static void then_waits(tt_future *f, void *arg) {
    deadlk *d = arg;
    atomic_store(&d->rc_in_then, tt_future_wait(d->other, TT_FOREVER));
    tt_future_free(f);
    atomic_fetch_add(&d->runs, 1);
}

static void test_wait_on_library_thread_deadlk(void) {
    setup();
    deadlk d = { .other = tti_future_new(g_strand, 0) };
    tt_actor *a;
    TT_REQUIRE(tt_actor_new(g_rt, &a) == TT_OK);
    tt_future *f = tt_actor_call(a, work_waits, &d, NULL);
    TT_CHECK_EQ_INT(tt_future_then(f, then_waits, &d), TT_OK);
    while (atomic_load(&d.runs) < 1) {
    }
    TT_CHECK_EQ_INT(atomic_load(&d.rc_in_work), TT_EDEADLK);   /* loop thread */
    TT_CHECK_EQ_INT(atomic_load(&d.rc_in_then), TT_EDEADLK);   /* pool thread */
    tt_promise_complete(tti_future_promise(d.other), TT_OK, 0, NULL);
    tt_future_free(d.other);
    tt_actor_free(a);
    teardown();
}

TT_TEST_LIST = {
    { "wait_races_completion", test_wait_races_completion },
    { "then_races_completion", test_then_races_completion },
    { "cancel_races_completion", test_cancel_races_completion },
    { "deadline_races_completion", test_deadline_races_completion },
    { "wait_timeout_then_complete", test_wait_timeout_then_complete },
    { "value_and_ownership", test_value_and_ownership },
    { "then_rules", test_then_rules },
    { "wait_on_library_thread_deadlk", test_wait_on_library_thread_deadlk },
    { NULL, NULL },
};
