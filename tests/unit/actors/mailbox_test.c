/* The MPSC mailbox: nothing lost, order kept per producer, under contention;
 * then the same through actors (send, wake, bounded drain). */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include <tether/tether.h>

#include "actors/actor.h"
#include "actors/core/alloc.h"
#include "actors/mailbox.h"
#include "actors/runtime.h"
#include "tt_scale.h"
#include "tt_test.h"

#define PRODUCERS 4

typedef struct item {
    tti_mpsc_node node;
    uint32_t producer;
    uint32_t seq;
} item;

typedef struct prod_arg {
    tti_mpsc *q;
    item *items;
    uint32_t id;
    uint32_t count;
} prod_arg;

static void *producer_main(void *p) {
    prod_arg *a = p;
    for (uint32_t i = 0; i < a->count; i++) {
        a->items[i].producer = a->id;
        a->items[i].seq = i;
        tti_mpsc_push(a->q, &a->items[i].node);
    }
    return NULL;
}

static void test_mpsc_four_producers(void) {
    const uint32_t per = TT_SCALED(1000000);        /* 4 million messages in all */
    tti_mpsc q;
    tti_mpsc_init(&q);
    TT_CHECK(tti_mpsc_empty(&q));
    TT_CHECK(tti_mpsc_pop(&q) == NULL);
    item *items = calloc((size_t)PRODUCERS * per, sizeof *items);
    TT_REQUIRE(items);
    pthread_t th[PRODUCERS];
    prod_arg args[PRODUCERS];
    for (uint32_t p = 0; p < PRODUCERS; p++) {
        args[p] = (prod_arg){ &q, items + (size_t)p * per, p, per };
        pthread_create(&th[p], NULL, producer_main, &args[p]);
    }
    uint32_t next[PRODUCERS] = { 0 };
    uint64_t got = 0, order_errors = 0;
    while (got < (uint64_t)PRODUCERS * per) {
        tti_mpsc_node *n = tti_mpsc_pop(&q);
        if (!n) continue;                           /* empty or a push half-done */
        item *it = TTI_CONTAINER_OF(n, item, node);
        if (it->seq != next[it->producer]) order_errors++;
        next[it->producer] = it->seq + 1;
        got++;
    }
    for (int p = 0; p < PRODUCERS; p++) pthread_join(th[p], NULL);
    TT_CHECK(tti_mpsc_pop(&q) == NULL);
    TT_CHECK(tti_mpsc_empty(&q));
    TT_CHECK_EQ_INT(order_errors, 0);
    for (int p = 0; p < PRODUCERS; p++) TT_CHECK_EQ_INT(next[p], per);
    free(items);
}

static void test_mpsc_reuse_after_empty(void) {
    /* The stub is re-inserted when the queue drains to one node; popping
     * one at a time with pushes in between exercises that path. */
    tti_mpsc q;
    tti_mpsc_init(&q);
    item a = { .seq = 1 }, b = { .seq = 2 };
    for (int round = 0; round < 1000; round++) {
        tti_mpsc_push(&q, &a.node);
        TT_CHECK(!tti_mpsc_empty(&q));
        TT_CHECK(tti_mpsc_pop(&q) == &a.node);
        TT_CHECK(tti_mpsc_empty(&q));
        tti_mpsc_push(&q, &a.node);
        tti_mpsc_push(&q, &b.node);
        TT_CHECK(tti_mpsc_pop(&q) == &a.node);
        TT_CHECK(tti_mpsc_pop(&q) == &b.node);
        TT_CHECK(tti_mpsc_pop(&q) == NULL);
    }
}

/* ---- Through an actor ------------------------------------------------- */

typedef struct counting_actor {
    tti_actor a;
    uint32_t next[PRODUCERS];
    uint64_t handled;
    uint64_t order_errors;
    uint64_t dropped;
    atomic_uint_fast64_t done;
    atomic_bool destroyed;
} counting_actor;

typedef struct amsg {
    tti_msg m;
    uint32_t producer;
    uint32_t seq;
} amsg;

static void ca_handle(tti_actor *a, tti_msg *m) {
    counting_actor *ca = TTI_CONTAINER_OF(a, counting_actor, a);
    amsg *x = TTI_CONTAINER_OF(m, amsg, m);
    if (x->seq != ca->next[x->producer]) ca->order_errors++;
    ca->next[x->producer] = x->seq + 1;
    ca->handled++;
    atomic_store_explicit(&ca->done, ca->handled, memory_order_release);
}
static void ca_drop(tti_actor *a, tti_msg *m) {
    (void)m;
    TTI_CONTAINER_OF(a, counting_actor, a)->dropped++;
}
static void ca_destroy(tti_actor *a) {
    atomic_store(&TTI_CONTAINER_OF(a, counting_actor, a)->destroyed, true);
}
static const tti_actor_ops ca_ops = { ca_handle, ca_drop, NULL, ca_destroy, NULL };

/* A runtime with `loops` I/O loops and a counting actor on one of them. */
static counting_actor *ca_new(tt_runtime **rt, uint32_t loops) {
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.loop_threads = loops;
    if (tt_runtime_new(rt, &o) != TT_OK) abort();
    counting_actor *ca = calloc(1, sizeof *ca);
    if (!ca) abort();
    tti_actor_init(&ca->a, tti_runtime_pick_io(*rt), &ca_ops);
    return ca;
}

typedef struct sender_arg {
    counting_actor *ca;
    amsg *msgs;
    uint32_t id, count;
} sender_arg;

static void *sender_main(void *p) {
    sender_arg *s = p;
    for (uint32_t i = 0; i < s->count; i++) {
        s->msgs[i].producer = s->id;
        s->msgs[i].seq = i;
        s->msgs[i].m.type = 1;
        if (tti_actor_send(&s->ca->a, &s->msgs[i].m) != TT_OK) abort();
    }
    return NULL;
}

static void test_actor_four_senders(void) {
    const uint32_t per = TT_SCALED(500000);          /* 2 million messages */
    tt_runtime *rt;
    counting_actor *ca = ca_new(&rt, 2);
    amsg *msgs = calloc((size_t)PRODUCERS * per, sizeof *msgs);
    TT_REQUIRE(msgs);
    pthread_t th[PRODUCERS];
    sender_arg args[PRODUCERS];
    for (uint32_t p = 0; p < PRODUCERS; p++) {
        args[p] = (sender_arg){ ca, msgs + (size_t)p * per, p, per };
        pthread_create(&th[p], NULL, sender_main, &args[p]);
    }
    for (int p = 0; p < PRODUCERS; p++) pthread_join(th[p], NULL);
    while (atomic_load_explicit(&ca->done, memory_order_acquire) < (uint64_t)PRODUCERS * per) {
    }
    TT_CHECK_EQ_INT(ca->order_errors, 0);
    for (int p = 0; p < PRODUCERS; p++) TT_CHECK_EQ_INT(ca->next[p], per);
    /* After stop: sends fail at once and the caller keeps the message. */
    tti_actor_stop(&ca->a);
    amsg late = { .m.type = 1 };
    TT_CHECK_EQ_INT(tti_actor_send(&ca->a, &late.m), TT_ECLOSED);
    tti_actor_release(&ca->a);
    tt_runtime_free(rt);
    TT_CHECK(atomic_load(&ca->destroyed));
    TT_CHECK_EQ_INT(ca->handled, (uint64_t)PRODUCERS * per);
    TT_CHECK_EQ_INT(ca->dropped, 0);
    free(msgs);
    free(ca);
}

/* Messages queued behind the stop message are dropped (never handled). */
static void test_actor_drop_after_stop(void) {
    tt_runtime *rt;
    counting_actor *ca = ca_new(&rt, 1);
    /* Push directly behind the stop message, as a sender racing stop would. */
    amsg m[3] = { { .m.type = 1, .seq = 0 }, { .m.type = 1, .seq = 1 }, { .m.type = 1, .seq = 2 } };
    TT_CHECK_EQ_INT(tti_actor_send(&ca->a, &m[0].m), TT_OK);
    tti_actor_stop(&ca->a);
    tti_mpsc_push(&ca->a.mbox, &m[1].m.node);
    tti_mpsc_push(&ca->a.mbox, &m[2].m.node);
    tti_actor_release(&ca->a);
    tt_runtime_free(rt);
    TT_CHECK(atomic_load(&ca->destroyed));
    TT_CHECK_EQ_INT(ca->handled, 1);
    TT_CHECK_EQ_INT(ca->dropped, 2);
    free(ca);
}

/* The stop is known by address, not by type: a message whose type field is
 * left as it was in recycled memory (all ones here) is handled like any other,
 * and the actor stays alive for the owner's reference. A callback whose type
 * happened to read as the stop's once ran the stop twice and freed a client's
 * strand under it. */
static void test_actor_any_type_is_a_message(void) {
    tt_runtime *rt;
    counting_actor *ca = ca_new(&rt, 1);
    amsg m[3];
    for (uint32_t i = 0; i < 3; i++) {
        memset(&m[i], 0xFF, sizeof m[i]);
        m[i].producer = 0;
        m[i].seq = i;
    }
    for (uint32_t i = 0; i < 3; i++) TT_CHECK_EQ_INT(tti_actor_send(&ca->a, &m[i].m), TT_OK);
    for (int i = 0; i < 5000 && atomic_load_explicit(&ca->done, memory_order_acquire) < 3; i++) usleep(1000);
    TT_CHECK_EQ_INT(ca->handled, 3);
    TT_CHECK(!atomic_load(&ca->destroyed));     /* the owner's reference still holds it */
    tti_actor_stop(&ca->a);
    tti_actor_release(&ca->a);
    tt_runtime_free(rt);
    TT_CHECK(atomic_load(&ca->destroyed));
    TT_CHECK_EQ_INT(ca->order_errors, 0);
    TT_CHECK_EQ_INT(ca->dropped, 0);
    free(ca);
}

TT_TEST_LIST = {
    { "mpsc_four_producers", test_mpsc_four_producers },
    { "mpsc_reuse_after_empty", test_mpsc_reuse_after_empty },
    { "actor_four_senders", test_actor_four_senders },
    { "actor_drop_after_stop", test_actor_drop_after_stop },
    { "actor_any_type_is_a_message", test_actor_any_type_is_a_message },
    { NULL, NULL },
};
