/* Futures and promises inside the library (the public half is
 * <tether/future.h>). A promise is the producer's view of a future: the same
 * object, holding the producer's reference until tt_promise_complete().
 *
 * Completion is first-wins: the producer, tt_future_cancel() and the deadline
 * timer race to claim the future; the winner writes the result, frees the
 * deadline timer, publishes DONE, wakes waiters and posts the continuation.
 * A producer may commit (tti_promise_commit) to pass its point of no return,
 * after which only it can complete the future. */
#ifndef TTI_FUTURE_H
#define TTI_FUTURE_H

#include <stdatomic.h>
#include <tether/future.h>

#include "actors/pool.h"

struct event;

struct tt_future {
    tti_cb cb;                        /* the continuation, posted to `strand` */
    atomic_uint state;                /* TTI_FS_* bits; waiters sleep on it */
    atomic_int claim;                 /* TTI_CLAIM_* */
    atomic_int refs;
    tt_err rc;
    int detail;
    char *reason;                     /* owned; NULL = "" */
    bool has_value;
    void *val_ptr;
    tt_free_fn val_dtor;
    int64_t val_i64;
    tt_future_fn then_fn;
    void *then_arg;
    tti_actor *strand;                /* referenced */
    _Atomic(struct event *) deadline; /* owned by whoever swaps it out */
    struct tt_future *next;           /* free for the producer's bookkeeping */
};

/* A pending future with two references (caller and producer). Its
 * continuation runs on `strand` (referenced; NULL = calling thread).
 * `extra` bytes follow the struct, aligned, for the producer's message. */
tt_future *tti_future_new(tti_actor *strand, size_t extra);
static inline void *tti_future_extra(tt_future *f) { return (void *)(f + 1); }

/* An already-failed future for a call that could not start. */
tt_future *tti_future_failed(tti_actor *strand, tt_err rc, const char *reason);

/* The shared failed future returned when memory runs out. */
tt_future *tti_future_enomem(void);

/* Fail the future `deadline_ms` from now, through a timer on `base`. */
void tti_future_set_deadline(tt_future *f, struct event_base *base, uint32_t deadline_ms);

/* Try to complete without giving up a reference (shutdown paths). */
bool tti_future_try_complete(tt_future *f, tt_err rc, int detail, const char *reason);

/* Pass the point of no return: false if cancellation or the deadline won. */
bool tti_promise_commit(tt_promise *p);

void tti_future_retain(tt_future *f);
void tti_future_release(tt_future *f);

static inline tt_future *tti_promise_future(tt_promise *p) { return (tt_future *)(void *)p; }
static inline tt_promise *tti_future_promise(tt_future *f) { return (tt_promise *)(void *)f; }

#endif
