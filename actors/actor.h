/* Actors: a mailbox and a handler bound to one loop.
 *
 * A message embeds its tti_msg; after a successful send the sender must not
 * touch it. The handler runs on the loop's thread, one message at a time.
 * The actor is scheduled on its loop once per burst (the `scheduled` flag
 * flips false->true for one sender only) and drains at most a budget of
 * messages per turn before yielding to the loop's other actors and I/O.
 *
 * Lifetime: the actor's memory is reference-counted (ops->destroy runs at
 * zero, on any thread). tti_actor_stop() queues the stop message; messages
 * queued before it are handled, messages after it are dropped (ops->drop
 * completes their promises with TT_ECLOSED), and sends after stop fail at
 * once with TT_ECLOSED. */
#ifndef TTI_ACTOR_H
#define TTI_ACTOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "actors/loop.h"
#include "actors/mailbox.h"

#define TTI_DRAIN_BUDGET 64
/* The stop message's type, for debuggers only: the actor knows its stop by
 * address, so a message whose type was never set cannot pass for it. */
#define TTI_MSG_STOP UINT32_MAX

typedef struct tti_actor tti_actor;

typedef struct tti_msg {
    tti_mpsc_node node;
    uint32_t type;                    /* the receiver's to define */
} tti_msg;

typedef struct tti_actor_ops {
    /* Handle one message (never the stop message). Loop thread. */
    void (*handle)(tti_actor *a, tti_msg *m);
    /* A message that arrived after stop, or was queued when the runtime
     * aborted: complete it with TT_ECLOSED and release it. Loop thread, or
     * the thread that drops the last reference. */
    void (*drop)(tti_actor *a, tti_msg *m);
    /* The stop message arrived: fail pending work, free timers. Loop thread.
     * Optional. */
    void (*stopped)(tti_actor *a);
    /* Last reference gone: free the memory around the actor. Any thread. */
    void (*destroy)(tti_actor *a);
    /* After a turn that handled messages: flush work batched during it.
     * Loop thread. Optional. */
    void (*turn_end)(tti_actor *a);
} tti_actor_ops;

struct tti_actor {
    tti_mpsc mbox;
    atomic_bool scheduled;
    atomic_bool closed;               /* stop requested: sends fail */
    atomic_bool aborting;             /* runtime shutdown: drop, don't handle */
    bool dead;                        /* stop handled (loop thread only) */
    atomic_int refs;
    tti_mpsc_node ready_node;         /* link in the loop's ready queue */
    tti_loop *loop;
    const tti_actor_ops *ops;
    tti_msg stop_msg;
};

/* Initialise with one reference (the owner's) and count it on its loop. */
void tti_actor_init(tti_actor *a, tti_loop *loop, const tti_actor_ops *ops);

/* Queue `m`. TT_OK, or TT_ECLOSED if the actor was stopped (the caller keeps
 * `m`). Any thread; the caller must hold a reference. */
int tti_actor_send(tti_actor *a, tti_msg *m);

/* Queue the stop message (idempotent). Any thread. */
void tti_actor_stop(tti_actor *a);
/* As stop, but messages still queued are dropped instead of handled. */
void tti_actor_abort(tti_actor *a);

void tti_actor_retain(tti_actor *a);
void tti_actor_release(tti_actor *a);

/* Run one turn of `a` (loop thread; used by the loop's ready queue). */
void tti_actor_run(tti_actor *a);

#endif
