/* The runtime's internals: loops, placement, shutdown bookkeeping. */
#ifndef TTI_RUNTIME_H
#define TTI_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <tether/runtime.h>

#include "actors/actor.h"
#include "actors/loop.h"

/* Something that lives on the runtime and must be shut down with it
 * (user actors now; clients later). Linked under rt->lock. */
typedef struct tti_member tti_member;
struct tti_member {
    tti_member *prev, *next;
    /* Stage 1: abort the member's I/O actors (their pending work fails with
     * TT_ECLOSED). Stage 2: stop its strands (queued callbacks still run).
     * Both run on the thread that frees the runtime, outside rt->lock. */
    void (*abort_io)(tti_member *m);
    void (*stop_strands)(tti_member *m);
    tti_runtime *rt;                  /* NULL once the runtime is gone */
};

struct tt_runtime {
    tti_loop *io;
    uint32_t nio;
    tti_loop *pool;
    uint32_t npool;
    bool embedded;
    uint32_t default_timeout_ms;
    tti_actor *fallback;              /* strand for callbacks whose own strand stopped */
    atomic_bool closing;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    tti_member members;               /* list head */
    atomic_uint next_pick;
};

tti_loop *tti_runtime_pick_io(tti_runtime *rt);
tti_loop *tti_runtime_pick_pool(tti_runtime *rt);
tti_actor *tti_runtime_fallback_strand(tti_runtime *rt);

void tti_runtime_actor_died(tti_runtime *rt);

/* Link / unlink a member. add fails with TT_ECLOSED while the runtime closes. */
int tti_runtime_add_member(tti_runtime *rt, tti_member *m);
void tti_runtime_remove_member(tti_member *m);

#endif
