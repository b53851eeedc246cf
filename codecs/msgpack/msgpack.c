/* The "msgpack" codec. Encoding goes through msgpack-c's packer into the caller's
 * tt_buf. Decoding is a bounded reader over the input bytes that builds the json_t
 * directly: msgpack-c's unpacker reserves room for every declared array/map element
 * before reading them (a 5-byte input can ask for gigabytes), and it reports no offset.
 * Here an array or map count larger than the bytes left is refused at once (every
 * element takes at least one byte), and nothing is allocated ahead of the input.
 *
 * Mapping (see include/tether/codec.h): nil/bool/int/float/str/array/map as in JSON;
 * bin <-> {"$bin": base64}; uint64 above INT64_MAX <-> {"$u64": "digits"} (only the
 * canonical spellings are read as tags, so every JSON value survives a trip through
 * msgpack unchanged); float32 is
 * widened to a real; NaN/infinity are TT_EPROTO (JSON has no such numbers); map keys
 * must be strings without NUL bytes, or integers (integers become their decimal text, so
 * a later equal key replaces an earlier one); extension types are TT_ENOTSUP. */
#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>

#include "codecs/registry/codec_internal.h"

/* ---- encoder ---------------------------------------------------------------------- */

static int pk_write(void *data, const char *buf, size_t len) {
    return tti_buf_put(data, buf, len) == TT_OK ? 0 : -1;
}

#define PK(call) \
    do { if ((call) != 0) return TT_ENOMEM; } while (0)

static tt_err pack_str(msgpack_packer *pk, const char *s, size_t n) {
    if (!tti_utf8_valid((const uint8_t *)s, n, NULL)) return TT_EINVAL;
    PK(msgpack_pack_str_with_body(pk, s, n));
    return TT_OK;
}

/* {"$bin": base64} as bin. False (nothing written) if the text is not canonical base64:
 * the object is then an ordinary map. */
static bool pack_bin_b64(msgpack_packer *pk, const json_t *b64, tt_err *rc) {
    const char *s = json_string_value(b64);
    size_t n = json_string_length(b64);
    if (n % 4) return false;
    size_t bytes = n / 4 * 3 - (n && s[n - 1] == '=') - (n > 1 && s[n - 2] == '=');
    if (bytes > UINT32_MAX) return false;
    tt_buf *out = pk->data;
    size_t mark = out->len;
    *rc = TT_OK;
    if (msgpack_pack_bin(pk, bytes) != 0) {
        *rc = TT_ENOMEM;
        return true;
    }
    size_t body = out->len;
    tt_err drc = tti_b64_decode(s, n, out);
    if (drc == TT_ENOMEM) {
        *rc = drc;
        return true;
    }
    if (drc != TT_OK || out->len - body != bytes) {
        out->len = mark;
        return false;
    }
    return true;
}

/* {"$u64": digits} as uint 64, only for the canonical spelling of a value above
 * INT64_MAX (what the decoder produces); anything else is an ordinary map. */
static bool tag_u64(const json_t *digits, uint64_t *u) {
    const char *s = json_string_value(digits);
    return s[0] != '0' && tti_parse_u64(s, json_string_length(digits), u) &&
           *u > (uint64_t)INT64_MAX;
}

static tt_err pack_value(msgpack_packer *pk, const json_t *v, int depth) {
    tt_err rc;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const json_t *payload;
        uint64_t u;
        switch (tti_tag_of(v, &payload)) {
        case TTI_TAG_IS_BIN:
            if (pack_bin_b64(pk, payload, &rc)) return rc;
            break;
        case TTI_TAG_IS_U64:
            if (tag_u64(payload, &u)) {
                PK(msgpack_pack_uint64(pk, u));
                return TT_OK;
            }
            break;
        case TTI_TAG_NONE:
            break;
        }
        if (depth >= TT_CODEC_MAX_DEPTH) return TT_EINVAL;
        PK(msgpack_pack_map(pk, json_object_size(v)));
        for (void *it = json_object_iter((json_t *)v); it;
             it = json_object_iter_next((json_t *)v, it)) {
            if ((rc = pack_str(pk, json_object_iter_key(it), json_object_iter_key_len(it))) !=
                    TT_OK ||
                (rc = pack_value(pk, json_object_iter_value(it), depth + 1)) != TT_OK)
                return rc;
        }
        return TT_OK;
    }
    case JSON_ARRAY: {
        if (depth >= TT_CODEC_MAX_DEPTH) return TT_EINVAL;
        size_t n = json_array_size(v);
        PK(msgpack_pack_array(pk, n));
        for (size_t i = 0; i < n; i++)
            if ((rc = pack_value(pk, json_array_get(v, i), depth + 1)) != TT_OK) return rc;
        return TT_OK;
    }
    case JSON_STRING:
        return pack_str(pk, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        PK(msgpack_pack_int64(pk, json_integer_value(v)));
        return TT_OK;
    case JSON_REAL:
        if (!isfinite(json_real_value(v))) return TT_EINVAL;
        PK(msgpack_pack_double(pk, json_real_value(v)));
        return TT_OK;
    case JSON_TRUE:
        PK(msgpack_pack_true(pk));
        return TT_OK;
    case JSON_FALSE:
        PK(msgpack_pack_false(pk));
        return TT_OK;
    case JSON_NULL:
        PK(msgpack_pack_nil(pk));
        return TT_OK;
    }
    return TT_EINVAL;
}

static tt_err mp_encode_cb(void *arg, const json_t *value, tt_buf *out) {
    msgpack_packer pk;
    (void)arg;
    msgpack_packer_init(&pk, out, pk_write);
    return pack_value(&pk, value, 0);
}

/* ---- decoder ---------------------------------------------------------------------- */

typedef struct mp_reader {
    const uint8_t  *p;
    size_t          n;
    size_t          pos;
    tt_codec_error *err;
} mp_reader;

static tt_err truncated(mp_reader *r, size_t at) {
    return tti_codec_fail(r->err, TT_EPROTO, at, "truncated input");
}

static uint64_t be(const uint8_t *p, size_t k) {
    uint64_t v = 0;
    for (size_t i = 0; i < k; i++) v = v << 8 | p[i];
    return v;
}

/* Read a k-byte big-endian length/number after the type byte at `at`. */
static tt_err read_be(mp_reader *r, size_t at, size_t k, uint64_t *v) {
    if (r->n - r->pos < k) return truncated(r, at);
    *v = be(r->p + r->pos, k);
    r->pos += k;
    return TT_OK;
}

static tt_err nomem(mp_reader *r) { return tti_codec_fail(r->err, TT_ENOMEM, r->pos, "out of memory"); }

/* String body of `len` bytes at r->pos, UTF-8 checked. */
static tt_err read_str_body(mp_reader *r, size_t at, uint64_t len, const char **s) {
    size_t bad;
    if (r->n - r->pos < len) return truncated(r, at);
    const uint8_t *p = r->p + r->pos;
    if (!tti_utf8_valid(p, (size_t)len, &bad))
        return tti_codec_fail(r->err, TT_EPROTO, r->pos + bad, "invalid UTF-8 in a string");
    *s = (const char *)p;
    r->pos += (size_t)len;
    return TT_OK;
}

/* Decode the header of a string at r->pos, if it is one. */
static bool str_header(mp_reader *r, uint8_t t, size_t at, uint64_t *len, tt_err *rc) {
    *rc = TT_OK;
    if (t >= 0xa0 && t <= 0xbf) {
        *len = t & 0x1fu;
        return true;
    }
    if (t >= 0xd9 && t <= 0xdb) {
        *rc = read_be(r, at, (size_t)1 << (t - 0xd9), len);
        return true;
    }
    return false;
}

static tt_err mp_value(mp_reader *r, int depth, json_t **out);

/* A map key: a string, or an integer written as its decimal text. */
static tt_err mp_key(mp_reader *r, char tmp[24], const char **k, size_t *klen) {
    size_t at = r->pos;
    if (at >= r->n) return truncated(r, at);
    uint8_t t = r->p[r->pos++];
    uint64_t len = 0;
    tt_err rc;
    if (str_header(r, t, at, &len, &rc)) {
        if (rc == TT_OK) rc = read_str_body(r, at, len, k);
        if (rc == TT_OK && memchr(*k, '\0', (size_t)len))   /* jansson keys cannot hold NUL */
            rc = tti_codec_fail(r->err, TT_EPROTO, at, "NUL byte in a map key");
        *klen = (size_t)len;
        return rc;
    }
    int n;
    if (t <= 0x7f) {
        n = snprintf(tmp, 24, "%u", (unsigned)t);
    } else if (t >= 0xe0) {
        n = snprintf(tmp, 24, "%d", (int)(int8_t)t);
    } else if (t >= 0xcc && t <= 0xcf) {
        if ((rc = read_be(r, at, (size_t)1 << (t - 0xcc), &len)) != TT_OK) return rc;
        n = snprintf(tmp, 24, "%" PRIu64, len);
    } else if (t >= 0xd0 && t <= 0xd3) {
        size_t k2 = (size_t)1 << (t - 0xd0);
        if ((rc = read_be(r, at, k2, &len)) != TT_OK) return rc;
        int64_t sv = k2 == 1 ? (int8_t)len : k2 == 2 ? (int16_t)len
                   : k2 == 4 ? (int32_t)len : (int64_t)len;
        n = snprintf(tmp, 24, "%" PRId64, sv);
    } else {
        return tti_codec_fail(r->err, TT_EPROTO, at, "map key type 0x%02x not supported", t);
    }
    *k = tmp;
    *klen = (size_t)n;
    return TT_OK;
}

static tt_err mp_array(mp_reader *r, size_t at, uint64_t count, int depth, json_t **out) {
    if (depth >= TT_CODEC_MAX_DEPTH)
        return tti_codec_fail(r->err, TT_EPROTO, at, "nesting deeper than %d levels",
                              TT_CODEC_MAX_DEPTH);
    if (count > r->n - r->pos) return truncated(r, at);
    json_t *a = json_array();
    if (!a) return nomem(r);
    for (uint64_t i = 0; i < count; i++) {
        json_t *item;
        tt_err rc = mp_value(r, depth + 1, &item);
        if (rc == TT_OK && json_array_append_new(a, item) != 0) rc = nomem(r);
        if (rc != TT_OK) {
            json_decref(a);
            return rc;
        }
    }
    *out = a;
    return TT_OK;
}

static tt_err mp_map(mp_reader *r, size_t at, uint64_t count, int depth, json_t **out) {
    if (depth >= TT_CODEC_MAX_DEPTH)
        return tti_codec_fail(r->err, TT_EPROTO, at, "nesting deeper than %d levels",
                              TT_CODEC_MAX_DEPTH);
    if (count > (r->n - r->pos) / 2) return truncated(r, at);
    json_t *o = json_object();
    if (!o) return nomem(r);
    for (uint64_t i = 0; i < count; i++) {
        char tmp[24];
        const char *k = NULL;
        size_t klen = 0;
        json_t *item = NULL;
        tt_err rc = mp_key(r, tmp, &k, &klen);
        if (rc == TT_OK) rc = mp_value(r, depth + 1, &item);
        if (rc == TT_OK && json_object_setn_new_nocheck(o, k, klen, item) != 0) rc = nomem(r);
        if (rc != TT_OK) {
            json_decref(o);
            return rc;
        }
    }
    *out = o;
    return TT_OK;
}

static tt_err mp_value(mp_reader *r, int depth, json_t **out) {
    size_t at = r->pos;
    if (at >= r->n) return truncated(r, at);
    uint8_t t = r->p[r->pos++];
    uint64_t u = 0;
    tt_err rc;
    json_t *v = NULL;

    if (t <= 0x7f) {
        v = json_integer(t);
    } else if (t >= 0xe0) {
        v = json_integer((int8_t)t);
    } else if (t <= 0x8f) {
        return mp_map(r, at, t & 0x0fu, depth, out);
    } else if (t <= 0x9f) {
        return mp_array(r, at, t & 0x0fu, depth, out);
    } else if (str_header(r, t, at, &u, &rc)) {
        const char *s = NULL;
        if (rc != TT_OK || (rc = read_str_body(r, at, u, &s)) != TT_OK) return rc;
        v = json_stringn_nocheck(s, (size_t)u);
    } else {
        switch (t) {
        case 0xc0: v = json_null(); break;
        case 0xc2: v = json_false(); break;
        case 0xc3: v = json_true(); break;
        case 0xc4: case 0xc5: case 0xc6:       /* bin 8/16/32 */
            if ((rc = read_be(r, at, (size_t)1 << (t - 0xc4), &u)) != TT_OK) return rc;
            if (r->n - r->pos < u) return truncated(r, at);
            v = tti_tag_bin(r->p + r->pos, (size_t)u);
            r->pos += (size_t)u;
            break;
        case 0xc7: case 0xc8: case 0xc9:       /* ext 8/16/32 */
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
            return tti_codec_fail(r->err, TT_ENOTSUP, at, "extension types not supported");
        case 0xca: {                           /* float 32 */
            if ((rc = read_be(r, at, 4, &u)) != TT_OK) return rc;
            uint32_t bits = (uint32_t)u;
            float f;
            memcpy(&f, &bits, 4);
            if (!isfinite(f))
                return tti_codec_fail(r->err, TT_EPROTO, at, "NaN or infinity");
            v = json_real((double)f);
            break;
        }
        case 0xcb: {                           /* float 64 */
            if ((rc = read_be(r, at, 8, &u)) != TT_OK) return rc;
            double d;
            memcpy(&d, &u, 8);
            if (!isfinite(d))
                return tti_codec_fail(r->err, TT_EPROTO, at, "NaN or infinity");
            v = json_real(d);
            break;
        }
        case 0xcc: case 0xcd: case 0xce: case 0xcf:   /* uint 8..64 */
            if ((rc = read_be(r, at, (size_t)1 << (t - 0xcc), &u)) != TT_OK) return rc;
            v = u > (uint64_t)INT64_MAX ? tti_tag_u64(u) : json_integer((json_int_t)u);
            break;
        case 0xd0: case 0xd1: case 0xd2: case 0xd3: { /* int 8..64 */
            size_t k = (size_t)1 << (t - 0xd0);
            if ((rc = read_be(r, at, k, &u)) != TT_OK) return rc;
            int64_t sv = k == 1 ? (int8_t)u : k == 2 ? (int16_t)u
                       : k == 4 ? (int32_t)u : (int64_t)u;
            v = json_integer(sv);
            break;
        }
        case 0xdc: case 0xdd:                  /* array 16/32 */
            if ((rc = read_be(r, at, t == 0xdc ? 2 : 4, &u)) != TT_OK) return rc;
            return mp_array(r, at, u, depth, out);
        case 0xde: case 0xdf:                  /* map 16/32 */
            if ((rc = read_be(r, at, t == 0xde ? 2 : 4, &u)) != TT_OK) return rc;
            return mp_map(r, at, u, depth, out);
        default:                               /* 0xc1 */
            return tti_codec_fail(r->err, TT_EPROTO, at, "reserved type byte 0x%02x", t);
        }
    }
    if (!v) return nomem(r);
    *out = v;
    return TT_OK;
}

static tt_err mp_decode_cb(void *arg, const void *data, size_t len, json_t **out,
                           tt_codec_error *err) {
    mp_reader r = { data, len, 0, err };
    json_t *v;
    (void)arg;
    tt_err rc = mp_value(&r, 0, &v);
    if (rc != TT_OK) return rc;
    if (r.pos != len) {
        json_decref(v);
        return tti_codec_fail(err, TT_EPROTO, r.pos, "trailing bytes after the value");
    }
    *out = v;
    return TT_OK;
}

const tt_codec tti_codec_msgpack = {
    "msgpack", { sizeof(tt_codec_ops), mp_encode_cb, mp_decode_cb }, NULL
};
