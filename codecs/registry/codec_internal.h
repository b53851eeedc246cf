/* Shared internals of the payload codecs: the codec object, error reports, UTF-8,
 * base64, tagged values and the value checks every encoder applies. */
#ifndef TTI_CODECS_REGISTRY_CODEC_INTERNAL_H
#define TTI_CODECS_REGISTRY_CODEC_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <tether/codec.h>

#include "actors/core/clock.h"   /* tti_now_ms, tti_utc_iso8601 (the json-iotf time) */

struct tt_codec {
    const char  *name;
    tt_codec_ops ops;
    void        *arg;
};

/* Built-in codecs (defined next to their implementation). */
extern const tt_codec tti_codec_json;
extern const tt_codec tti_codec_json_iotf;
extern const tt_codec tti_codec_raw;
extern const tt_codec tti_codec_text;
extern const tt_codec tti_codec_utf8;
#ifdef TTI_CODEC_HAVE_MSGPACK
extern const tt_codec tti_codec_msgpack;
#endif
#ifdef TTI_CODEC_HAVE_PROTOBUF
extern const tt_codec tti_codec_wirepas;
#endif

/* Fill `err` (may be NULL) and return `rc`. */
tt_err tti_codec_fail(tt_codec_error *err, tt_err rc, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Append `n` bytes (or one byte), growing the buffer only when it is full. */
static inline tt_err tti_buf_put(tt_buf *b, const void *p, size_t n) {
    if (b->cap - b->len < n && tt_buf_reserve(b, n) != TT_OK) return TT_ENOMEM;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return TT_OK;
}

static inline tt_err tti_buf_putc(tt_buf *b, uint8_t c) {
    if (b->cap == b->len && tt_buf_reserve(b, 1) != TT_OK) return TT_ENOMEM;
    b->data[b->len++] = c;
    return TT_OK;
}

/* Strict UTF-8 (no overlong forms, no surrogates, at most U+10FFFF). On failure
 * `*bad` (if not NULL) is the offset of the first byte of the bad sequence. */
bool tti_utf8_valid(const uint8_t *s, size_t n, size_t *bad);

/* Standard base64 with padding. Encoding appends 4*ceil(n/3) bytes to `out`.
 * Decoding appends the bytes; it refuses whitespace, missing padding and non-zero
 * trailing bits (so every byte string has one spelling): TT_EINVAL. */
tt_err tti_b64_encode(const uint8_t *in, size_t n, tt_buf *out);
tt_err tti_b64_decode(const char *in, size_t n, tt_buf *out);
/* A new json string holding the base64 of `n` bytes (NULL when out of memory). */
json_t *tti_b64_json(const uint8_t *in, size_t n);

/* Tagged values ("$bin", "$u64"); see include/tether/codec.h. */
#define TTI_TAG_BIN "$bin"
#define TTI_TAG_U64 "$u64"
typedef enum { TTI_TAG_NONE, TTI_TAG_IS_BIN, TTI_TAG_IS_U64 } tti_tag;
/* What `obj` (an object) is; for a tag, `*payload` is the string member. */
tti_tag tti_tag_of(const json_t *obj, const json_t **payload);
json_t *tti_tag_bin(const uint8_t *p, size_t n);
json_t *tti_tag_u64(uint64_t v);

/* Parse a whole decimal string; false on any other character or overflow. */
bool tti_parse_u64(const char *s, size_t n, uint64_t *out);
bool tti_parse_i64(const char *s, size_t n, int64_t *out);

/* Compact JSON text of `v` appended to `out` (strict UTF-8, shortest reals,
 * depth <= TT_CODEC_MAX_DEPTH). */
tt_err tti_json_write(const json_t *v, tt_buf *out);

#endif
