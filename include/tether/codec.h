/* tether — payload codecs and the codec registry.
 *
 * A codec turns a jansson value (json_t) into bytes and bytes back into a value.
 * Built-in codecs, found by name:
 *
 *   "json"      compact JSON text (jansson). Integers are exact 64-bit, reals are
 *               written with the fewest digits that read back to the same double.
 *   "json-iotf" the Watson IoT envelope {"d": <value>, "ts": "<ISO 8601 UTC>"}:
 *               encode wraps the value with the current time, decode returns "d".
 *   "msgpack"   MessagePack (msgpack-c). See "Values outside JSON" below.
 *   "raw"       bytes untouched: decode gives {"$bin": "<base64>"}; encode takes
 *               that object (bad base64 is TT_EINVAL), or a string whose bytes are
 *               sent as they are.
 *   "text"      UTF-8 text: decode gives a JSON string (invalid UTF-8 is TT_EPROTO);
 *               encode takes a string. "utf8" is the same codec (Watson's name).
 *   "wirepas"   a Wirepas GenericMessage (protobuf) mapped to and from JSON by field
 *               name, as tt_codec_pb_to_json() describes (only with protobuf support).
 *
 * Values outside JSON (used by "msgpack" and "raw", never by "json"):
 *   binary data              {"$bin": "<standard base64 with padding>"}
 *   unsigned > INT64_MAX     {"$u64": "<decimal digits>"}
 *   When encoding, an object whose only member is "$bin" holding canonical base64, or
 *   "$u64" holding the digits (no leading zero) of a number above INT64_MAX, is read
 *   as the tagged value; any other object, "$bin" with bad base64 included, is an
 *   ordinary map. So every JSON value round-trips through "msgpack" unchanged.
 *
 * Limits common to every built-in codec:
 *   Containers nest at most TT_CODEC_MAX_DEPTH levels ("[[1]]" is 2 levels). Deeper
 *   input is TT_EPROTO on decode; a deeper value is TT_EINVAL on encode.
 *   Strings are UTF-8; NaN and infinities have no JSON form and are refused.
 *
 * Codecs hold no state: one codec may be used from any number of threads at once.
 */
#ifndef TETHER_CODEC_H
#define TETHER_CODEC_H

#include <jansson.h>
#include <tether/common.h>
#include <tether/err.h>

TT_BEGIN_DECLS

/* Deepest nesting of arrays/objects/maps any built-in codec accepts. */
#define TT_CODEC_MAX_DEPTH 64

/* ---- growable byte buffer ------------------------------------------------------- */

/* A byte buffer owned by the caller. Encoders write into it; reusing one buffer
 * across messages costs no allocation once it has grown to the largest message.
 * `data` holds `len` valid bytes out of `cap` allocated. Zero-filled is valid. */
typedef struct tt_buf {
    uint8_t *data;
    size_t   len;
    size_t   cap;
} tt_buf;

#define TT_BUF_INIT { NULL, 0, 0 }

/**
 * Make `b` an empty buffer with no storage.
 * Ownership: the caller owns `b`; release storage with tt_buf_free().
 * Thread:    any (no shared state).
 */
TT_API void tt_buf_init(tt_buf *b);

/**
 * Forget the contents (len = 0) but keep the storage for reuse.
 * Thread: any (no shared state).
 */
TT_API void tt_buf_reset(tt_buf *b);

/**
 * Release the storage and make `b` empty again. NULL is ignored.
 * Thread: any (no shared state).
 */
TT_API void tt_buf_free(tt_buf *b);

/**
 * Make room for at least `extra` more bytes after `len`.
 * Thread: any (no shared state).
 * Errors: TT_ENOMEM (contents unchanged).
 */
TT_API tt_err tt_buf_reserve(tt_buf *b, size_t extra);

/**
 * Append `len` bytes (copied).
 * Thread: any (no shared state).
 * Errors: TT_ENOMEM (contents unchanged).
 */
TT_API tt_err tt_buf_append(tt_buf *b, const void *data, size_t len);

/* ---- codecs ---------------------------------------------------------------------- */

/* Why a decode failed: the byte offset in the input where the problem was seen
 * (0 when unknown) and a short English reason. Never contains payload bytes. */
typedef struct tt_codec_error {
    size_t offset;
    char   reason[128];
} tt_codec_error;

typedef struct tt_codec tt_codec;   /* opaque; lives until the process exits */

/* Encode `value` by appending to `out` (which arrives empty). Return TT_OK or an error;
 * on error the registry empties `out`. Must not keep `value` or `out`. */
typedef tt_err (*tt_codec_encode_fn)(void *arg, const json_t *value, tt_buf *out);

/* Decode `len` bytes at `data` (not NUL-terminated) into a new value in `*out`.
 * On failure leave `*out` alone and fill `err` (never NULL here) with offset and reason. */
typedef tt_err (*tt_codec_decode_fn)(void *arg, const void *data, size_t len, json_t **out,
                                     tt_codec_error *err);

/* A user codec: either callback may be NULL (that direction is TT_ENOTSUP). */
typedef struct tt_codec_ops {
    uint32_t           size;     /* TT_OPTS_INIT(tt_codec_ops) */
    tt_codec_encode_fn encode;
    tt_codec_decode_fn decode;
} tt_codec_ops;

/**
 * Find a codec by its exact (case-sensitive) name.
 * Ownership: the codec is owned by the library and valid until the process exits.
 * Thread:    any; lock-free, safe while another thread registers codecs.
 * Returns:   the codec, or NULL if no codec has that name.
 */
TT_API const tt_codec *tt_codec_find(const char *name);

/**
 * Like tt_codec_find(), with an error code.
 * Thread: any; lock-free.
 * Errors: TT_EINVAL (name or out NULL), TT_ENOTFOUND (no codec has that name;
 *         *out is set to NULL).
 */
TT_API tt_err tt_codec_lookup(const char *name, const tt_codec **out);

/**
 * The codec's registered name.
 * Ownership: borrowed, valid as long as the codec (the process lifetime).
 * Thread:    any.
 */
TT_API const char *tt_codec_name(const tt_codec *c);

/**
 * Register a user codec under `name` (1–64 printable ASCII characters other than
 * space, '/', '+' and '#', so that it can be an MQTT topic level such as Watson's
 * format). Codecs cannot be unregistered.
 * Ownership: `name` and `ops` are copied; `arg` is passed to every callback and must
 *            stay valid for the rest of the process. Callbacks may run on any thread,
 *            concurrently.
 * Thread:    any; registrations are serialized, lookups never wait for them.
 * Errors:    TT_EINVAL (bad name, ops NULL, ops->size too small, both callbacks NULL),
 *            TT_EBUSY (a codec, built-in or user, already has that name), TT_ENOMEM.
 */
TT_API tt_err tt_codec_register(const char *name, const tt_codec_ops *ops, void *arg);

/**
 * Encode `value` with codec `c`. `out` is emptied first (its storage is reused), then
 * holds exactly the encoded bytes.
 * Ownership: `value` is only read; the caller keeps it and owns `out`.
 * Thread:    any; built-in codecs may run concurrently on different buffers.
 * Errors:    TT_EINVAL (a value the codec cannot represent: wrong type for "text"/"raw",
 *            nesting deeper than TT_CODEC_MAX_DEPTH, invalid UTF-8, bad "$bin"
 *            base64...), TT_ENOTSUP (user codec without encode), TT_ENOMEM, or a user
 *            codec's own error. On error out->len is 0.
 */
TT_API tt_err tt_codec_encode(const tt_codec *c, const json_t *value, tt_buf *out);

/**
 * Decode `len` bytes (no terminator needed) with codec `c`.
 * Ownership: `data` is only read during the call. On success `*out` is a new reference
 *            the caller releases with json_decref().
 * Thread:    any; built-in codecs may run concurrently.
 * Errors:    TT_EPROTO (malformed input: `err`, if not NULL, gets the byte offset and a
 *            reason), TT_EINVAL (c, data with len > 0, or out NULL), TT_ENOTSUP
 *            (user codec without decode, or a MessagePack extension type), TT_ENOMEM.
 *            `*out` is unchanged on error.
 */
TT_API tt_err tt_codec_decode(const tt_codec *c, const void *data, size_t len, json_t **out,
                              tt_codec_error *err);

/* ---- Watson IoT "json-iotf" envelope, with an explicit timestamp ----------------- */

/**
 * Encode {"d": d, "ts": "YYYY-MM-DDThh:mm:ss.sssZ"} into `out` (emptied first).
 * `ts_ms` is milliseconds since the Unix epoch (UTC); a negative value means now.
 * Ownership: `d` is only read. Thread: any.
 * Errors:    as tt_codec_encode() for the "json" codec.
 */
TT_API tt_err tt_codec_iotf_encode(const json_t *d, int64_t ts_ms, tt_buf *out);

/**
 * Decode a json-iotf envelope: `*d` receives a new reference to the "d" member and,
 * if `ts_ms` is not NULL, `*ts_ms` the "ts" time in ms since the epoch, or the current
 * time when "ts" is absent or not an ISO 8601 date-time (as the legacy SDK did).
 * Ownership: `*d` is the caller's (json_decref). Thread: any.
 * Errors:    TT_EPROTO (not JSON, not an object, or no "d" member; see `err`),
 *            TT_EINVAL, TT_ENOMEM.
 */
TT_API tt_err tt_codec_iotf_decode(const void *data, size_t len, json_t **d, int64_t *ts_ms,
                                   tt_codec_error *err);

TT_END_DECLS

#endif /* TETHER_CODEC_H */
