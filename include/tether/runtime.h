/* tether — runtime: loop threads, the callback pool, and user actors. */
#ifndef TETHER_RUNTIME_H
#define TETHER_RUNTIME_H

#include <tether/common.h>
#include <tether/err.h>
#include <tether/future.h>

struct event_base;

TT_BEGIN_DECLS

/**
 * A runtime owns the I/O loop threads that drive actors and the pool that
 * runs user callbacks. Any number of clients and actors share one runtime.
 */
typedef struct tt_runtime tt_runtime;

typedef struct tt_runtime_opts {
    uint32_t size;             /* TT_OPTS_INIT(tt_runtime_opts) */
    /* I/O loop threads; 0 = one per online core. Ignored when embedded. */
    uint32_t loop_threads;
    /* Callback-pool threads; 0 = 1. Ignored when embedded. */
    uint32_t pool_threads;
    /* Embed in the caller's libevent base: no thread is started, actors and
     * user callbacks run on the thread that runs `base`. The base must have
     * been created after tt_init() (libevent locking must be on) and must
     * outlive the runtime. */
    struct event_base *base;
    /* Default deadline for operations without their own, in ms; 0 = none. */
    uint32_t default_timeout_ms;
    /* Size the process's descriptor table for this many descriptors now
     * (capped at RLIMIT_NOFILE); 0 = leave it. Linux grows the table by
     * doubling as descriptors are opened, and in a process with more than
     * one thread each growth waits for an RCU grace period (several ms) on
     * the thread that opened the descriptor: a loop opening thousands of
     * connections stalls ten times or so. Set it to the connections
     * expected. */
    uint32_t reserve_fds;
    /* Embedded only: the thread that creates the runtime is its host, and
     * there tt_future_wait() (on this runtime's futures) and tt_client_poll()
     * run `base` themselves, one EVLOOP_ONCE turn at a time, until they
     * return: a program on one thread can call and wait in sequence, and
     * pull mode reads the socket on the caller's thread. The host must be
     * the thread that runs the base, must not wait from inside the base's
     * own callbacks (TT_EDEADLK), must free the runtime itself, and hosts
     * one such runtime at a time (TT_EINVAL). */
    bool wait_runs_base;
} tt_runtime_opts;

/**
 * Create a runtime (calls tt_init()). opts may be NULL for the defaults.
 * Thread: any. Loop and pool threads start before this returns.
 * Errors: TT_EINVAL (bad opts), TT_ENOMEM, TT_EINTERNAL (thread or libevent
 * failure).
 */
TT_API tt_err tt_runtime_new(tt_runtime **out, const tt_runtime_opts *opts);

/**
 * Stop everything and release the runtime. Every pending future completes
 * (TT_ECLOSED, or TT_ECANCELED if cancelled first) and its continuation runs
 * before this returns; then the threads are joined. Objects made on the
 * runtime must not be used afterwards.
 * Thread: any thread but the runtime's own (from a loop or pool thread it
 * returns without doing anything and logs an error; likewise off the host
 * thread of a wait_runs_base runtime). When embedded, the
 * host must not be running `base` on another thread concurrently, and this
 * call runs the base itself until the runtime's work has drained.
 */
TT_API void tt_runtime_free(tt_runtime *rt);

/** Number of I/O loops (1 when embedded). Thread: any. */
TT_API uint32_t tt_runtime_loop_count(const tt_runtime *rt);

/* ---- User actors -------------------------------------------------------- */

/** An actor: a mailbox and a handler bound to one loop thread. Work sent to
 * one actor runs one item at a time, in the order it was sent. */
typedef struct tt_actor tt_actor;

/**
 * Work run on the actor's loop thread. It owns `p` and completes it now or
 * later (from any thread), exactly once, with tt_promise_complete(). It must
 * not block: it shares the loop with other actors.
 */
typedef void (*tt_work_fn)(tt_promise *p, void *arg);

/** Per-call options; NULL means the defaults. */
typedef struct tt_call_opts {
    uint32_t size;             /* TT_OPTS_INIT(tt_call_opts) */
    /* Deadline in ms after which the future fails with TT_ETIMEDOUT;
     * 0 = the runtime default. */
    uint32_t timeout_ms;
} tt_call_opts;

/**
 * Create an actor on the least-loaded loop of `rt`.
 * Thread: any. Errors: TT_ENOMEM, TT_ECLOSED (runtime stopping).
 */
TT_API tt_err tt_actor_new(tt_runtime *rt, tt_actor **out);

/**
 * Queue `fn(promise, arg)` on the actor. The returned future completes when
 * the work completes its promise, when the deadline passes (TT_ETIMEDOUT) or
 * with TT_ECLOSED if the actor stops first. Its continuation runs on the pool,
 * in order with the other continuations of this actor's futures.
 * Ownership: `arg` stays the caller's; tether never frees it.
 * Thread: any, including inside work and callbacks.
 * Errors (through the future): TT_EINVAL, TT_ECLOSED, TT_ETIMEDOUT, TT_ENOMEM.
 */
TT_API tt_future *tt_actor_call(tt_actor *a, tt_work_fn fn, void *arg, const tt_call_opts *opts);

/**
 * Stop the actor and release the caller's handle. Work already queued still
 * runs; calls made afterwards fail with TT_ECLOSED. Never blocks; legal inside
 * the actor's own work and inside callbacks.
 */
TT_API void tt_actor_free(tt_actor *a);

TT_END_DECLS

#endif /* TETHER_RUNTIME_H */
