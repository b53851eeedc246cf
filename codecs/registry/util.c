/* Byte buffers, error reports, UTF-8 and base64 checks, tagged values: the small
 * pieces every payload codec shares. */
#include "codecs/registry/codec_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "actors/core/alloc.h"

/* ---- tt_buf ------------------------------------------------------------------------ */

void tt_buf_init(tt_buf *b) {
    if (b) *b = (tt_buf)TT_BUF_INIT;
}

void tt_buf_reset(tt_buf *b) {
    if (b) b->len = 0;
}

void tt_buf_free(tt_buf *b) {
    if (!b) return;
    tti_free(b->data);
    *b = (tt_buf)TT_BUF_INIT;
}

tt_err tt_buf_reserve(tt_buf *b, size_t extra) {
    if (!b) return TT_EINVAL;
    if (b->cap - b->len >= extra) return TT_OK;
    if (extra > SIZE_MAX / 2 - b->len) return TT_ENOMEM;
    size_t want = b->len + extra;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < want) cap *= 2;
    uint8_t *p = tti_realloc(b->data, cap);
    if (!p) return TT_ENOMEM;
    b->data = p;
    b->cap = cap;
    return TT_OK;
}

tt_err tt_buf_append(tt_buf *b, const void *data, size_t len) {
    if (!b || (!data && len)) return TT_EINVAL;
    return tti_buf_put(b, data, len);
}

/* ---- errors ------------------------------------------------------------------------ */

tt_err tti_codec_fail(tt_codec_error *err, tt_err rc, size_t offset, const char *fmt, ...) {
    if (!err) return rc;
    err->offset = offset;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->reason, sizeof err->reason, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- UTF-8 ------------------------------------------------------------------------- */

bool tti_utf8_valid(const uint8_t *s, size_t n, size_t *bad) {
    size_t i = 0;
    while (i < n) {
        /* ASCII runs, eight bytes at a time. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & UINT64_C(0x8080808080808080)) break;
            i += 8;
        }
        if (i >= n) break;
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1fu;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0fu;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07u;
        } else {
            goto fail;
        }
        if (n - i <= need) goto fail;
        for (size_t k = 1; k <= need; k++) {
            uint8_t cc = s[i + k];
            if ((cc & 0xc0) != 0x80) goto fail;
            cp = (cp << 6) | (cc & 0x3fu);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            goto fail;
        i += need + 1;
    }
    return true;
fail:
    if (bad) *bad = i;
    return false;
}

/* ---- base64 ------------------------------------------------------------------------ */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

tt_err tti_b64_encode(const uint8_t *in, size_t n, tt_buf *out) {
    size_t outlen = (n + 2) / 3 * 4;
    if (n == 0) return TT_OK;
    if (n > SIZE_MAX / 2 || tt_buf_reserve(out, outlen) != TT_OK) return TT_ENOMEM;
    uint8_t *o = out->data + out->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = (uint8_t)b64_alphabet[v >> 18];
        *o++ = (uint8_t)b64_alphabet[(v >> 12) & 63];
        *o++ = (uint8_t)b64_alphabet[(v >> 6) & 63];
        *o++ = (uint8_t)b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *o++ = (uint8_t)b64_alphabet[v >> 18];
        *o++ = (uint8_t)b64_alphabet[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *o++ = (uint8_t)b64_alphabet[v >> 18];
        *o++ = (uint8_t)b64_alphabet[(v >> 12) & 63];
        *o++ = (uint8_t)b64_alphabet[(v >> 6) & 63];
        *o++ = '=';
    }
    out->len += outlen;
    return TT_OK;
}

static int b64_val(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

tt_err tti_b64_decode(const char *in, size_t n, tt_buf *out) {
    if (n % 4) return TT_EINVAL;
    if (n == 0) return TT_OK;
    if (tt_buf_reserve(out, n / 4 * 3) != TT_OK) return TT_ENOMEM;
    uint8_t *o = out->data + out->len;
    for (size_t i = 0; i < n; i += 4) {
        bool last = i + 4 == n;
        int a = b64_val(in[i]), b = b64_val(in[i + 1]);
        int c = b64_val(in[i + 2]), d = b64_val(in[i + 3]);
        if (a < 0 || b < 0) return TT_EINVAL;
        if (last && in[i + 2] == '=' && in[i + 3] == '=') {
            if (b & 15) return TT_EINVAL;
            *o++ = (uint8_t)(a << 2 | b >> 4);
            break;
        }
        if (c < 0) return TT_EINVAL;
        if (last && in[i + 3] == '=') {
            if (c & 3) return TT_EINVAL;
            *o++ = (uint8_t)(a << 2 | b >> 4);
            *o++ = (uint8_t)((b & 15) << 4 | c >> 2);
            break;
        }
        if (d < 0) return TT_EINVAL;
        *o++ = (uint8_t)(a << 2 | b >> 4);
        *o++ = (uint8_t)((b & 15) << 4 | c >> 2);
        *o++ = (uint8_t)((c & 3) << 6 | d);
    }
    out->len = (size_t)(o - out->data);
    return TT_OK;
}

json_t *tti_b64_json(const uint8_t *in, size_t n) {
    char small[256];
    tt_buf b = TT_BUF_INIT;
    json_t *s;
    if ((n + 2) / 3 * 4 <= sizeof small) {
        b.data = (uint8_t *)small;
        b.cap = sizeof small;
        if (tti_b64_encode(in, n, &b) != TT_OK) return NULL;
        return json_stringn_nocheck(small, b.len);
    }
    if (tti_b64_encode(in, n, &b) != TT_OK) {
        tt_buf_free(&b);
        return NULL;
    }
    s = json_stringn_nocheck((const char *)b.data, b.len);
    tt_buf_free(&b);
    return s;
}

/* ---- tagged values ----------------------------------------------------------------- */

tti_tag tti_tag_of(const json_t *obj, const json_t **payload) {
    if (json_object_size(obj) != 1) return TTI_TAG_NONE;
    const char *key;
    json_t *val;
    void *it = json_object_iter((json_t *)obj);
    key = json_object_iter_key(it);
    val = json_object_iter_value(it);
    if (!json_is_string(val) || key[0] != '$') return TTI_TAG_NONE;
    *payload = val;
    if (strcmp(key, TTI_TAG_BIN) == 0 && json_object_iter_key_len(it) == 4) return TTI_TAG_IS_BIN;
    if (strcmp(key, TTI_TAG_U64) == 0 && json_object_iter_key_len(it) == 4) return TTI_TAG_IS_U64;
    return TTI_TAG_NONE;
}

json_t *tti_tag_bin(const uint8_t *p, size_t n) {
    json_t *s = tti_b64_json(p, n);
    if (!s) return NULL;
    json_t *o = json_object();
    if (!o || json_object_set_new_nocheck(o, TTI_TAG_BIN, s) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *tti_tag_u64(uint64_t v) {
    char digits[24];
    int len = snprintf(digits, sizeof digits, "%" PRIu64, v);
    json_t *o = json_object();
    if (!o || json_object_set_new_nocheck(o, TTI_TAG_U64,
                                          json_stringn_nocheck(digits, (size_t)len)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

bool tti_parse_u64(const char *s, size_t n, uint64_t *out) {
    if (n == 0 || n > 20) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool tti_parse_i64(const char *s, size_t n, int64_t *out) {
    bool neg = n > 0 && s[0] == '-';
    uint64_t mag;
    if (!tti_parse_u64(s + neg, n - neg, &mag)) return false;
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1) return false;
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)mag;
    }
    return true;
}

