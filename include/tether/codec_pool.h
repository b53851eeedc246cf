/* tether — a pool of codec actors: decode and encode payloads off the I/O loops.
 *
 * A backend that receives a fleet's traffic spends most of its CPU turning payloads
 * into values. A codec pool runs that work on N codec actors, each on a thread of its
 * own (not the runtime's I/O loops, which stay free for sockets), so all cores work:
 *
 *     tt_codec_pool *pool;
 *     tt_codec_pool_new(rt, NULL, &pool);                       // one actor per I/O loop
 *     const tt_codec *json = tt_codec_find("json");
 *     tt_future_then(tt_codec_pool_decode(pool, json, device_id, payload, len, NULL),
 *                    on_value, app);                             // on_value: tt_future_get_json()
 *
 * Ordering. Every call names a `key` (a device or client id, say). All work for one key
 * runs on one codec actor, one item at a time, in the order the calls were made, and
 * the continuations of its futures run on that actor's strand in the same order, while
 * other keys run in parallel on the other actors. (Order of calls means: as the calls
 * were made from one thread, or as they were serialized between threads. A continuation
 * keeps its place when tt_future_then() is attached before the next call for the key,
 * as in the one-line form above. A future cancelled or past its deadline completes at
 * once, out of turn.) Keys are spread over the actors by a hash; a key keeps its actor
 * for the pool's life (tt_codec_pool_actor()).
 *
 * Deadlines (tt_call_opts.timeout_ms, else the runtime default): a call still queued
 * when its deadline passes fails with TT_ETIMEDOUT and is skipped. The timer runs on
 * the actor's thread, so while that thread is inside one long job the deadline is
 * noticed when the job ends; a job already running is never interrupted.
 *
 * Codecs are stateless (see <tether/codec.h>), so any codec, user-registered ones
 * included, may be used on any actor; a user codec's callbacks run on codec threads.
 */
#ifndef TETHER_CODEC_POOL_H
#define TETHER_CODEC_POOL_H

#include <tether/codec.h>
#include <tether/common.h>
#include <tether/err.h>
#include <tether/future.h>
#include <tether/runtime.h>

TT_BEGIN_DECLS

typedef struct tt_codec_pool tt_codec_pool;

typedef struct tt_codec_pool_opts {
    uint32_t size;             /* TT_OPTS_INIT(tt_codec_pool_opts) */
    /* Codec actors, each with a thread of its own; 0 = tt_runtime_loop_count(rt). */
    uint32_t actors;
    /* Calls queued on one actor before further calls for it fail at once with
     * TT_EAGAIN; 0 = no limit. */
    uint32_t max_queued;
} tt_codec_pool_opts;

/**
 * Create a pool of codec actors on `rt`, with their threads.
 * Ownership: the caller owns the pool and frees it with tt_codec_pool_free(), before
 *            or after tt_runtime_free(rt). opts may be NULL for the defaults.
 * Thread:    any that is not a codec thread.
 * Errors:    TT_EINVAL (rt or out NULL, bad opts, more than 1024 actors), TT_ENOMEM,
 *            TT_EINTERNAL (thread or libevent failure), TT_ECLOSED (runtime stopping).
 */
TT_API tt_err tt_codec_pool_new(tt_runtime *rt, const tt_codec_pool_opts *opts,
                                tt_codec_pool **out);

/**
 * Stop the pool and release it. Work already queued still runs to completion (its
 * futures complete normally, their continuations still run on the callback pool);
 * then the codec threads are joined. Blocks until then: with a deep queue that takes
 * as long as the queue's work. No call on the pool may race this one or follow it.
 * If tt_runtime_free() came first, queued work has already failed with TT_ECLOSED
 * and this only releases memory. NULL is ignored.
 * Thread: any that is not a codec thread (from a codec thread it logs an error and
 *         returns without doing anything); continuations may call it.
 */
TT_API void tt_codec_pool_free(tt_codec_pool *p);

/** Number of codec actors. Thread: any. */
TT_API uint32_t tt_codec_pool_size(const tt_codec_pool *p);

/** The actor (0 .. size-1) that runs work for `key`: keys with equal answers share one
 * thread and one strand. Thread: any. */
TT_API uint32_t tt_codec_pool_actor(const tt_codec_pool *p, uint64_t key);

/**
 * Decode `len` bytes with `codec` on the actor of `key`.
 * Ownership: `data` is copied before this returns; the buffer is the caller's again.
 *            On success the future's value is a json_t that the future owns (it is
 *            released when the future is freed): read it with tt_future_get_json()
 *            (or tt_future_get_ptr()), borrowed; json_incref() it to keep it longer.
 * Thread:    any.
 * Completes: when the actor has decoded the bytes, in key order (see the top of this
 *            file), or at the deadline (opts->timeout_ms, else the runtime default).
 * Errors:    TT_EPROTO (malformed input: tt_future_detail() gives the byte offset where
 *            the problem was seen as its number and "<reason> (at byte N)" as its text),
 *            TT_EINVAL (p, codec NULL; data NULL with len > 0), TT_ENOTSUP, TT_ENOMEM,
 *            TT_EAGAIN (max_queued reached), TT_ECLOSED (runtime stopping: queued work
 *            fails), TT_ETIMEDOUT, TT_ECANCELED, or a user codec's own error.
 */
TT_API tt_future *tt_codec_pool_decode(tt_codec_pool *p, const tt_codec *codec, uint64_t key,
                                       const void *data, size_t len, const tt_call_opts *opts);

/**
 * As tt_codec_pool_decode(), without the copy: the pool takes `data` as it is.
 * Ownership: with `free_fn`, the buffer belongs to the pool from this call on, even
 *            when the call fails at once: free_fn(data) runs exactly once, on any thread,
 *            as soon as the bytes are no longer needed (right after decoding). With
 *            free_fn NULL the caller keeps the buffer and must leave it valid and
 *            unchanged until the future completes.
 * Thread, Completes, Errors: as tt_codec_pool_decode().
 */
TT_API tt_future *tt_codec_pool_decode_owned(tt_codec_pool *p, const tt_codec *codec,
                                             uint64_t key, void *data, size_t len,
                                             tt_free_fn free_fn, const tt_call_opts *opts);

/**
 * Encode `value` with `codec` on the actor of `key`.
 * Ownership: the call takes over the caller's reference to `value` (like jansson's
 *            json_object_set_new), in every case, failures included. To keep using the
 *            value, json_incref() it first and do not modify it until the future
 *            completes. One value may go to several calls at once, with one reference
 *            each, taken before the first call: jansson's json_incref() reads the count
 *            without atomics, so it must not run while the pool may release the value;
 *            and jansson's json_decref() does not order a free after other threads'
 *            reads, so release your own reference once the futures completed (the
 *            pool's own releases are ordered). On success the future owns the encoded bytes: read them with
 *            tt_future_get_bytes() (or tt_future_get_ptr(), a const tt_buf *, and
 *            tt_future_get_i64(), the length), borrowed until the future is freed.
 * Thread:    any.
 * Completes: as tt_codec_pool_decode().
 * Errors:    TT_EINVAL (p, codec or value NULL, or a value the codec cannot represent),
 *            TT_ENOTSUP, TT_ENOMEM, TT_EAGAIN, TT_ECLOSED, TT_ETIMEDOUT, TT_ECANCELED,
 *            or a user codec's own error.
 */
TT_API tt_future *tt_codec_pool_encode(tt_codec_pool *p, const tt_codec *codec, uint64_t key,
                                       json_t *value, const tt_call_opts *opts);

/** The value of a completed tt_codec_pool_decode() future, borrowed until the future is
 * freed; NULL if pending, failed, or not a decode future. Thread: any. */
TT_API json_t *tt_future_get_json(const tt_future *f);

/** The bytes of a completed tt_codec_pool_encode() future and, through `len` (may be
 * NULL), their count; borrowed until the future is freed. NULL (and 0) if pending,
 * failed, or not an encode future; a successful empty encoding gives a non-NULL
 * pointer and 0. Thread: any. */
TT_API const void *tt_future_get_bytes(const tt_future *f, size_t *len);

TT_END_DECLS

#endif /* TETHER_CODEC_POOL_H */
