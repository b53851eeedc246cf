/* tether — futures: the result of every asynchronous call. */
#ifndef TETHER_FUTURE_H
#define TETHER_FUTURE_H

#include <tether/common.h>
#include <tether/err.h>

TT_BEGIN_DECLS

/**
 * A future completes exactly once, with TT_OK (and perhaps a value) or an
 * error plus a detail (errno, TLS or MQTT reason code) and a reason text.
 *
 * Ownership: every asynchronous call returns a non-NULL future owned by the
 * caller. Free it exactly once with tt_future_free(), before or after it
 * completes (freeing early drops interest; it does not cancel), or hand it to
 * tt_future_then(), whose callback then owns it and frees it. Out of memory,
 * calls return a shared failed future (TT_ENOMEM) that is safe to use and to
 * free. All tt_future_* calls are thread-safe.
 */
typedef struct tt_future tt_future;

/** Continuation: runs once, on a callback-pool thread (or the host loop when
 * the runtime is embedded), never under a library lock. It owns `f`. */
typedef void (*tt_future_fn)(tt_future *f, void *arg);

/** Destructor for a value attached to a future. */
typedef void (*tt_free_fn)(void *p);

/**
 * Block until `f` completes or `timeout_ms` passes (TT_FOREVER: no limit;
 * 0: just look).
 * Thread: any thread that is not a tether loop or callback-pool thread.
 * Returns: the future's result once complete; TT_ETIMEDOUT if the *wait*
 *          expired (the operation goes on: see tt_future_done); TT_EDEADLK at
 *          once on a library thread, where waiting could hang the library.
 */
TT_API tt_err tt_future_wait(tt_future *f, int32_t timeout_ms);

/**
 * Attach the continuation. On TT_OK the future belongs to `fn`, which runs
 * exactly once after completion (even if already complete: never inline
 * inside this call) on the callback pool, in order with the other callbacks
 * of the object that made the future.
 * Errors: TT_EBUSY (a continuation is already attached; the caller still owns
 *         f), TT_EINVAL (fn NULL), TT_ENOMEM (f is the shared failed future).
 */
TT_API tt_err tt_future_then(tt_future *f, tt_future_fn fn, void *arg);

/** True once the result is published. Thread: any. */
TT_API bool tt_future_done(const tt_future *f);

/** The result: TT_OK or an error once done; TT_EBUSY while pending. */
TT_API tt_err tt_future_result(const tt_future *f);

/**
 * The detail behind an error: an errno, a wolfSSL code or an MQTT reason code
 * (0 when there is none) and, through `text` (may be NULL), a reason string
 * borrowed until the future is freed ("" when there is none).
 */
TT_API int tt_future_detail(const tt_future *f, const char **text);

/**
 * Request cancellation. Idempotent; any thread. The future completes with
 * TT_ECANCELED unless the operation already completed or passed its point of
 * no return (a PUBLISH already written completes normally).
 */
TT_API void tt_future_cancel(tt_future *f);

/** Release the caller's reference (see Ownership). Never blocks. */
TT_API void tt_future_free(tt_future *f);

/** The pointer value of a completed future, borrowed until it is freed
 * (NULL if none or pending). */
TT_API void *tt_future_get_ptr(const tt_future *f);

/** The integer value of a completed future (0 if none or pending). */
TT_API int64_t tt_future_get_i64(const tt_future *f);

/* ---- Producing futures ---------------------------------------------------
 * A promise is the producer's side of one future. tt_actor_call() hands one to
 * user work; platform code inside the library uses the same type. */
typedef struct tt_promise tt_promise;

/** Attach a value: a pointer freed with `dtor` when the future is freed (or
 * at once, if the future already completed otherwise), and an integer.
 * Call before tt_promise_complete(). Thread: the promise holder's. */
TT_API void tt_promise_set_value(tt_promise *p, void *ptr, tt_free_fn dtor, int64_t i64);

/**
 * Complete the future with `rc` (TT_OK or an error), `detail` and an optional
 * reason (printf-style, copied; NULL for none), and give up the promise: it
 * must not be touched afterwards. Returns true if this call set the result,
 * false if the future had already completed (cancelled or timed out).
 * Thread: any.
 */
TT_API bool tt_promise_complete(tt_promise *p, tt_err rc, int detail, const char *reason_fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** True once the future completed by cancellation or deadline: work for it
 * may stop early (the holder must still call tt_promise_complete()). */
TT_API bool tt_promise_abandoned(const tt_promise *p);

TT_END_DECLS

#endif /* TETHER_FUTURE_H */
