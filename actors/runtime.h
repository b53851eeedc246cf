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
typedef struct tti_member_ops {
    /* Stage 1: abort the member's I/O actors (their pending work fails with
     * TT_ECLOSED). Stage 2: stop its strands (queued callbacks still run).
     * Both run on the thread that frees the runtime, outside rt->lock; either
     * may be NULL. */
    void (*abort_io)(tti_member *m);
    void (*stop_strands)(tti_member *m);
} tti_member_ops;
struct tti_member {
    tti_member *prev, *next;
    const tti_member_ops *ops;        /* shared by every member of a kind */
    tti_runtime *rt;                  /* NULL once the runtime is gone */
};

/* Extra loops with threads of their own, made for one member whose actors
 * must stay off the I/O loops (CPU-bound work such as the codec pool).
 * tt_runtime_free waits for their actors together with the I/O actors
 * (stage 1) and joins their threads (stage 3); the creator releases the
 * group with tti_runtime_loops_free(), before or after the runtime. */
typedef struct tti_loop_group tti_loop_group;
struct tti_loop_group {
    tti_loop_group *prev, *next;      /* linked under rt->lock */
    tti_loop *loops;
    uint32_t n;
    tti_runtime *rt;                  /* NULL once unlinked */
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
    tti_loop_group groups;            /* list head of extra loop groups */
    bool drives;                      /* wait_runs_base: waits on `host` run the base */
    pthread_t host;
    struct event *turn_ev;            /* bounds one turn of a waiting host */
};

/* A wait on this thread: when it hosts a wait_runs_base runtime (`want`, or
 * any when `want` is NULL), run one turn of its base for at most `max_ns`.
 * 1: a turn ran; 0: nothing to run here (wait as usual); -1: the base is
 * already running on this thread (waiting inside one of its callbacks). */
int tti_host_turn(const tti_runtime *want, int64_t max_ns);
/* Whether this thread hosts a wait_runs_base runtime. */
bool tti_hosting(void);

tti_loop *tti_runtime_pick_io(tti_runtime *rt);
tti_loop *tti_runtime_pick_pool(tti_runtime *rt);
tti_actor *tti_runtime_fallback_strand(tti_runtime *rt);

void tti_runtime_actor_died(tti_runtime *rt);

/* Link / unlink a member. add fails with TT_ECLOSED while the runtime closes. */
int tti_runtime_add_member(tti_runtime *rt, tti_member *m);
void tti_runtime_remove_member(tti_member *m);

/* Start `n` loops named `name`, each on a thread of its own (also when the
 * runtime is embedded), and link them to `rt`. Errors: TT_EINVAL, TT_ENOMEM,
 * TT_EINTERNAL, TT_ECLOSED (runtime closing). Every actor placed on them must
 * be stopped by the member's abort_io hook, or tt_runtime_free waits forever. */
int tti_runtime_loops_new(tti_runtime *rt, uint32_t n, const char *name, tti_loop_group **out);
/* Unlink (if the runtime still lives), stop and join the threads, free the
 * loops. Their actors must have stopped. Not on one of the group's threads. */
void tti_runtime_loops_free(tti_loop_group *g);

#endif
