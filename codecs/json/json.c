/* The "json" and "json-iotf" codecs. Decoding is jansson's parser behind a depth
 * pre-scan; encoding is a direct writer into the caller's tt_buf (no intermediate
 * string, strict UTF-8, shortest round-trip reals, 64-bit integers exact). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/registry/codec_internal.h"

/* ---- encoder ---------------------------------------------------------------------- */

static tt_err write_value(const json_t *v, tt_buf *out, int depth);

static tt_err write_string(const char *s, size_t n, tt_buf *out) {
    static const char hex[] = "0123456789abcdef";
    if (!tti_utf8_valid((const uint8_t *)s, n, NULL)) return TT_EINVAL;
    /* Worst case: every byte becomes \u00XX. Reserve the common case, grow on escapes. */
    if (tt_buf_reserve(out, n + 2) != TT_OK) return TT_ENOMEM;
    out->data[out->len++] = '"';
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (tti_buf_put(out, s + run, i - run) != TT_OK) return TT_ENOMEM;
        run = i + 1;
        char esc[6] = { '\\', 0, 0, 0, 0, 0 };
        size_t elen = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        if (tti_buf_put(out, esc, elen) != TT_OK) return TT_ENOMEM;
    }
    if (tti_buf_put(out, s + run, n - run) != TT_OK) return TT_ENOMEM;
    return tti_buf_putc(out, '"');
}

static tt_err write_int(json_int_t iv, tt_buf *out) {
    char tmp[24];
    char *p = tmp + sizeof tmp;
    uint64_t u = iv < 0 ? (uint64_t)0 - (uint64_t)iv : (uint64_t)iv;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (iv < 0) *--p = '-';
    return tti_buf_put(out, p, (size_t)(tmp + sizeof tmp - p));
}

/* Fewest significant digits (15..17) that read back as the same double; always has
 * a '.' or an exponent so that it reads back as a real, never as an integer. */
static tt_err write_real(double d, tt_buf *out) {
    char tmp[40];
    int n = 0;
    if (!isfinite(d)) return TT_EINVAL;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp - 3, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d) break;
    }
    bool marked = false;
    for (int i = 0; i < n; i++) {
        char c = tmp[i];
        if (c == 'e') {
            marked = true;
        } else if (!(c >= '0' && c <= '9') && c != '-' && c != '+') {
            tmp[i] = '.';   /* the locale's decimal separator */
            marked = true;
        }
    }
    if (!marked) {
        tmp[n++] = '.';
        tmp[n++] = '0';
    }
    return tti_buf_put(out, tmp, (size_t)n);
}

static tt_err write_value(const json_t *v, tt_buf *out, int depth) {
    tt_err rc;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (depth >= TT_CODEC_MAX_DEPTH) return TT_EINVAL;
        if ((rc = tti_buf_putc(out, '{')) != TT_OK) return rc;
        bool first = true;
        for (void *it = json_object_iter((json_t *)v); it;
             it = json_object_iter_next((json_t *)v, it)) {
            if (!first && (rc = tti_buf_putc(out, ',')) != TT_OK) return rc;
            first = false;
            if ((rc = write_string(json_object_iter_key(it), json_object_iter_key_len(it),
                                   out)) != TT_OK ||
                (rc = tti_buf_putc(out, ':')) != TT_OK ||
                (rc = write_value(json_object_iter_value(it), out, depth + 1)) != TT_OK)
                return rc;
        }
        return tti_buf_putc(out, '}');
    }
    case JSON_ARRAY: {
        if (depth >= TT_CODEC_MAX_DEPTH) return TT_EINVAL;
        if ((rc = tti_buf_putc(out, '[')) != TT_OK) return rc;
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) {
            if (i && (rc = tti_buf_putc(out, ',')) != TT_OK) return rc;
            if ((rc = write_value(json_array_get(v, i), out, depth + 1)) != TT_OK) return rc;
        }
        return tti_buf_putc(out, ']');
    }
    case JSON_STRING:
        return write_string(json_string_value(v), json_string_length(v), out);
    case JSON_INTEGER:
        return write_int(json_integer_value(v), out);
    case JSON_REAL:
        return write_real(json_real_value(v), out);
    case JSON_TRUE:
        return tti_buf_put(out, "true", 4);
    case JSON_FALSE:
        return tti_buf_put(out, "false", 5);
    case JSON_NULL:
        return tti_buf_put(out, "null", 4);
    }
    return TT_EINVAL;
}

tt_err tti_json_write(const json_t *v, tt_buf *out) { return write_value(v, out, 0); }

/* ---- decoder ---------------------------------------------------------------------- */

/* jansson allows 2048 levels; refuse deeper than ours before it recurses. */
static bool depth_ok(const uint8_t *p, size_t n, int limit, size_t *where) {
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == '"') {
            for (i++; i < n && p[i] != '"'; i++)
                if (p[i] == '\\') i++;
        } else if (c == '[' || c == '{') {
            if (++depth > limit) {
                *where = i;
                return false;
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return true;
}

static tt_err json_parse(const void *data, size_t len, int limit, json_t **out,
                         tt_codec_error *err) {
    size_t where;
    if (!depth_ok(data, len, limit, &where))
        return tti_codec_fail(err, TT_EPROTO, where, "nesting deeper than %d levels", limit);
    json_error_t jerr;
    json_t *v = json_loadb(data, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!v) {
        enum json_error_code code = json_error_code(&jerr);
        if (code == json_error_out_of_memory)
            return tti_codec_fail(err, TT_ENOMEM, 0, "out of memory");
        /* jansson's position counts the bytes it read, the bad one included. */
        size_t off = jerr.position > 0 ? (size_t)jerr.position : 0;
        if (code != json_error_premature_end_of_input && off > 0) off--;
        if (off > len) off = len;
        return tti_codec_fail(err, TT_EPROTO, off, "%s", jerr.text);
    }
    *out = v;
    return TT_OK;
}

static tt_err json_encode_cb(void *arg, const json_t *value, tt_buf *out) {
    (void)arg;
    return write_value(value, out, 0);
}

static tt_err json_decode_cb(void *arg, const void *data, size_t len, json_t **out,
                             tt_codec_error *err) {
    (void)arg;
    return json_parse(data, len, TT_CODEC_MAX_DEPTH, out, err);
}

const tt_codec tti_codec_json = {
    "json", { sizeof(tt_codec_ops), json_encode_cb, json_decode_cb }, NULL
};

/* ---- json-iotf -------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(const char **p, const char *end, int n, int64_t *out) {
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        if (*p >= end || **p < '0' || **p > '9') return false;
        v = v * 10 + (*(*p)++ - '0');
    }
    *out = v;
    return true;
}

static bool expect(const char **p, const char *end, char c) {
    if (*p >= end || **p != c) return false;
    (*p)++;
    return true;
}

/* YYYY-MM-DD[T ]hh:mm:ss[.fraction][Z|±hh:mm|±hhmm]; no zone means UTC. */
static bool parse_iso8601(const char *s, size_t n, int64_t *ms) {
    const char *p = s, *end = s + n;
    int64_t y, mo, d, h, mi, sec, frac = 0, off = 0;
    if (!digits(&p, end, 4, &y) || !expect(&p, end, '-') || !digits(&p, end, 2, &mo) ||
        !expect(&p, end, '-') || !digits(&p, end, 2, &d))
        return false;
    if (p >= end || (*p != 'T' && *p != 't' && *p != ' ')) return false;
    p++;
    if (!digits(&p, end, 2, &h) || !expect(&p, end, ':') || !digits(&p, end, 2, &mi) ||
        !expect(&p, end, ':') || !digits(&p, end, 2, &sec))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return false;
    if (p < end && (*p == '.' || *p == ',')) {
        p++;
        int nd = 0;
        for (; p < end && *p >= '0' && *p <= '9'; p++, nd++)
            if (nd < 3) frac = frac * 10 + (*p - '0');
        if (nd == 0) return false;
        for (; nd < 3; nd++) frac *= 10;
    }
    if (p < end && (*p == 'Z' || *p == 'z')) {
        p++;
    } else if (p < end && (*p == '+' || *p == '-')) {
        int sign = *p++ == '-' ? -1 : 1;
        int64_t oh, om;
        if (!digits(&p, end, 2, &oh)) return false;
        if (p < end && *p == ':') p++;
        if (!digits(&p, end, 2, &om) || oh > 23 || om > 59) return false;
        off = sign * (oh * 60 + om) * 60;
    }
    if (p != end) return false;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
    *ms = secs * 1000 + frac;
    return true;
}

static tt_err write_iotf(const json_t *d, int64_t ts_ms, tt_buf *out) {
    tt_err rc;
    if (ts_ms < 0) ts_ms = tti_now_ms();
    char ts[TTI_UTC_ISO8601_SIZE];
    size_t n = tti_utc_iso8601(ts_ms, ts);
    if (!n) return TT_EINVAL;
    if ((rc = tti_buf_put(out, "{\"d\":", 5)) != TT_OK ||
        (rc = write_value(d, out, 1)) != TT_OK || (rc = tti_buf_put(out, ",\"ts\":\"", 7)) != TT_OK ||
        (rc = tti_buf_put(out, ts, n)) != TT_OK)
        return rc;
    return tti_buf_put(out, "\"}", 2);
}

static tt_err read_iotf(const void *data, size_t len, json_t **d, int64_t *ts_ms,
                        tt_codec_error *err) {
    json_t *root = NULL;
    tt_err rc = json_parse(data, len, TT_CODEC_MAX_DEPTH, &root, err);
    if (rc != TT_OK) return rc;
    json_t *inner = json_is_object(root) ? json_object_get(root, "d") : NULL;
    if (!inner) {
        json_decref(root);
        return tti_codec_fail(err, TT_EPROTO, 0, "json-iotf: no \"d\" member in an object");
    }
    if (ts_ms) {
        json_t *ts = json_object_get(root, "ts");
        if (!json_is_string(ts) ||
            !parse_iso8601(json_string_value(ts), json_string_length(ts), ts_ms))
            *ts_ms = tti_now_ms();
    }
    *d = json_incref(inner);
    json_decref(root);
    return TT_OK;
}

tt_err tt_codec_iotf_encode(const json_t *d, int64_t ts_ms, tt_buf *out) {
    if (!out) return TT_EINVAL;
    out->len = 0;
    if (!d) return TT_EINVAL;
    tt_err rc = write_iotf(d, ts_ms, out);
    if (rc != TT_OK) out->len = 0;
    return rc;
}

tt_err tt_codec_iotf_decode(const void *data, size_t len, json_t **d, int64_t *ts_ms,
                            tt_codec_error *err) {
    if (!d || (!data && len)) return tti_codec_fail(err, TT_EINVAL, 0, "bad argument");
    return read_iotf(data ? data : "", len, d, ts_ms, err);
}

static tt_err iotf_encode_cb(void *arg, const json_t *value, tt_buf *out) {
    (void)arg;
    return write_iotf(value, -1, out);
}

static tt_err iotf_decode_cb(void *arg, const void *data, size_t len, json_t **out,
                             tt_codec_error *err) {
    (void)arg;
    return read_iotf(data, len, out, NULL, err);
}

const tt_codec tti_codec_json_iotf = {
    "json-iotf", { sizeof(tt_codec_ops), iotf_encode_cb, iotf_decode_cb }, NULL
};
