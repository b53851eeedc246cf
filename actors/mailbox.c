/* Intrusive MPSC queue: see mailbox.h. */
#include "actors/mailbox.h"

#include <stddef.h>

void tti_mpsc_init(tti_mpsc *q) {
    atomic_store_explicit(&q->stub.next, NULL, memory_order_relaxed);
    atomic_store_explicit(&q->head, &q->stub, memory_order_relaxed);
    q->tail = &q->stub;
}

tti_mpsc_node *tti_mpsc_pop(tti_mpsc *q) {
    tti_mpsc_node *tail = q->tail;
    tti_mpsc_node *next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (tail == &q->stub) {                   /* skip the stub */
        if (!next) return NULL;
        q->tail = next;
        tail = next;
        next = atomic_load_explicit(&next->next, memory_order_acquire);
    }
    if (next) {
        q->tail = next;
        return tail;
    }
    /* tail is the last linked node. If head moved past it, a producer has
     * swapped head but not linked yet: report empty, it will wake us. */
    if (tail != atomic_load_explicit(&q->head, memory_order_acquire)) return NULL;
    /* Re-insert the stub behind tail so tail can be handed out. */
    tti_mpsc_push(q, &q->stub);
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next) {
        q->tail = next;
        return tail;
    }
    return NULL;
}
