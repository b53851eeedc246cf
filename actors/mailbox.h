/* Intrusive multi-producer / single-consumer queue (Vyukov's design).
 *
 * Any thread may push; only the owning consumer pops. Push is wait-free and
 * never allocates: the node lives inside the message. Pop may return NULL
 * while a producer is between its two steps (node published, link not yet
 * written); the actor's wake protocol (see actor.c) guarantees that producer
 * wakes the consumer again, so nothing is stranded. */
#ifndef TTI_MAILBOX_H
#define TTI_MAILBOX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct tti_mpsc_node {
    _Atomic(struct tti_mpsc_node *) next;
} tti_mpsc_node;

/* Compact (24 bytes): every client has one, and thousands of idle clients
 * pay for padding; producers and the consumer meet once per batch, not per
 * message, so sharing a cache line costs little. */
typedef struct tti_mpsc {
    _Atomic(tti_mpsc_node *) head;    /* producers swap here */
    tti_mpsc_node *tail;              /* consumer only */
    tti_mpsc_node stub;
} tti_mpsc;

void tti_mpsc_init(tti_mpsc *q);

/* Wait-free; returns true if the queue looked empty before this push
 * (a hint only: the consumer may be mid-drain). */
static inline bool tti_mpsc_push(tti_mpsc *q, tti_mpsc_node *n) {
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    tti_mpsc_node *prev = atomic_exchange_explicit(&q->head, n, memory_order_seq_cst);
    atomic_store_explicit(&prev->next, n, memory_order_release);
    return prev == &q->stub;
}

/* Consumer only. NULL when empty or when a push is half-done. */
tti_mpsc_node *tti_mpsc_pop(tti_mpsc *q);

/* Consumer only: true when nothing is queued or being queued. */
static inline bool tti_mpsc_empty(tti_mpsc *q) {
    return q->tail == &q->stub &&
           atomic_load_explicit(&q->head, memory_order_seq_cst) == &q->stub;
}

#endif
