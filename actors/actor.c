/* Actors: see actor.h. */
#include "actors/actor.h"

#include <tether/err.h>

#include "actors/core/alloc.h"
#include "actors/runtime.h"

void tti_actor_init(tti_actor *a, tti_loop *loop, const tti_actor_ops *ops) {
    tti_mpsc_init(&a->mbox);
    atomic_init(&a->scheduled, false);
    atomic_init(&a->closed, false);
    atomic_init(&a->aborting, false);
    atomic_init(&a->refs, 2);        /* the owner's, and the running actor's */
    atomic_store_explicit(&a->ready_node.next, NULL, memory_order_relaxed);
    a->loop = loop;
    a->ops = ops;
    a->stop_msg.type = TTI_MSG_STOP;
    a->dead = false;
    atomic_fetch_add_explicit(&loop->nactors, 1, memory_order_relaxed);
}

void tti_actor_retain(tti_actor *a) {
    atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
}

static void drop_all(tti_actor *a) {
    tti_mpsc_node *n;
    while ((n = tti_mpsc_pop(&a->mbox)) != NULL) {
        tti_msg *m = TTI_CONTAINER_OF(n, tti_msg, node);
        if (m != &a->stop_msg) a->ops->drop(a, m);
    }
}

void tti_actor_release(tti_actor *a) {
    if (atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1) return;
    /* Nobody can send any more: whatever is left was pushed after stop. */
    drop_all(a);
    a->ops->destroy(a);
}

/* The load skips the read-modify-write while the actor is already queued
 * (the common case under load). It is safe with tti_actor_run's end-of-turn
 * check: the push's exchange on the queue head and this load are ordered
 * against the consumer's exchange of `scheduled` and its seq_cst look at the
 * head, so either this sender sees the flag cleared and schedules, or the
 * consumer sees the message and runs again. */
static void schedule(tti_actor *a) {
    if (atomic_load_explicit(&a->scheduled, memory_order_seq_cst)) return;
    if (!atomic_exchange_explicit(&a->scheduled, true, memory_order_seq_cst)) {
        tti_actor_retain(a);         /* held by the ready queue until the turn ends */
        tti_mpsc_push(&a->loop->ready, &a->ready_node);
        tti_loop_wake(a->loop);
    }
}

int tti_actor_send(tti_actor *a, tti_msg *m) {
    if (atomic_load_explicit(&a->closed, memory_order_acquire)) return TT_ECLOSED;
    tti_mpsc_push(&a->mbox, &m->node);
    schedule(a);
    return TT_OK;
}

void tti_actor_stop(tti_actor *a) {
    if (atomic_exchange_explicit(&a->closed, true, memory_order_acq_rel)) return;
    tti_mpsc_push(&a->mbox, &a->stop_msg.node);
    schedule(a);
}

void tti_actor_abort(tti_actor *a) {
    atomic_store_explicit(&a->aborting, true, memory_order_release);
    tti_actor_stop(a);
}

static void handle_stop(tti_actor *a) {
    a->dead = true;
    if (a->ops->stopped) a->ops->stopped(a);
    atomic_fetch_sub_explicit(&a->loop->nactors, 1, memory_order_relaxed);
    tti_runtime *rt = a->loop->rt;
    tti_actor_release(a);            /* the running actor's reference */
    tti_runtime_actor_died(rt);
}

void tti_actor_run(tti_actor *a) {
    /* Popped from the ready queue first, then the flag is cleared: a sender
     * that flips it again re-queues the (now free) ready node. */
    (void)atomic_exchange_explicit(&a->scheduled, false, memory_order_seq_cst);
    int budget = TTI_DRAIN_BUDGET;
    tti_mpsc_node *n;
    while (budget > 0 && (n = tti_mpsc_pop(&a->mbox)) != NULL) {
        tti_msg *m = TTI_CONTAINER_OF(n, tti_msg, node);
        budget--;
        if (m == &a->stop_msg)
            handle_stop(a);          /* our ready-queue reference keeps `a` alive */
        else if (a->dead || atomic_load_explicit(&a->aborting, memory_order_acquire))
            a->ops->drop(a, m);
        else
            a->ops->handle(a, m);
    }
    if (budget < TTI_DRAIN_BUDGET && a->ops->turn_end && !a->dead) a->ops->turn_end(a);
    /* Budget spent, or a push seen half-done, or one that raced the flag:
     * run again after the loop's other actors. */
    if (!tti_mpsc_empty(&a->mbox)) {
        if (!atomic_exchange_explicit(&a->scheduled, true, memory_order_seq_cst)) {
            /* Keep our reference for the next turn, behind the other actors. */
            tti_mpsc_push(&a->loop->ready, &a->ready_node);
            tti_loop_wake(a->loop);
            return;
        }
    }
    tti_actor_release(a);
}
