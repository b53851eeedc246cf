/* The callback pool: strands on pool loops.
 *
 * A strand is an actor on a pool loop whose messages are callbacks; callbacks
 * posted to one strand run one at a time, in order. Each client (and each
 * user actor) has its own strand, so its callbacks are ordered while
 * different clients run in parallel on different pool threads. */
#ifndef TTI_POOL_H
#define TTI_POOL_H

#include "actors/actor.h"

typedef struct tti_cb tti_cb;
struct tti_cb {
    tti_msg msg;
    void (*run)(tti_cb *cb);          /* runs once, owns whatever cb belongs to */
};

/* A new strand on the least-loaded pool loop; the caller holds one reference.
 * NULL when out of memory or when the runtime is closing. */
tti_actor *tti_strand_new(tti_runtime *rt);

/* A strand inside its owner's struct, so an owner and its strand are one
 * allocation: `ops` uses tti_strand_handle for handle and drop, and its
 * destroy (the strand's last reference gone) frees the owner. The caller
 * holds one reference. False when the runtime is closing. */
bool tti_strand_init(tti_actor *a, tti_runtime *rt, const tti_actor_ops *ops);
void tti_strand_handle(tti_actor *a, tti_msg *m);

/* Post `cb` to run on `strand`. Never fails: if the strand was stopped, the
 * runtime's fallback strand runs it, and after the runtime stopped, the
 * calling thread runs it at once. Any thread. */
void tti_strand_post(tti_actor *strand, tti_cb *cb);

/* Stop (queued callbacks still run) and drop the caller's reference. */
void tti_strand_free(tti_actor *strand);

#endif
