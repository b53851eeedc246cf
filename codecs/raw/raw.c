/* The "raw" and "text" codecs: bytes passed through, and UTF-8 text as one string. */
#include "codecs/registry/codec_internal.h"

/* raw: {"$bin": base64} <-> bytes; a plain string is also accepted on encode. */
static tt_err raw_encode_cb(void *arg, const json_t *value, tt_buf *out) {
    const json_t *payload;
    (void)arg;
    if (json_is_string(value))
        return tti_buf_put(out, json_string_value(value), json_string_length(value));
    if (json_is_object(value) && tti_tag_of(value, &payload) == TTI_TAG_IS_BIN)
        return tti_b64_decode(json_string_value(payload), json_string_length(payload), out);
    return TT_EINVAL;
}

static tt_err raw_decode_cb(void *arg, const void *data, size_t len, json_t **out,
                            tt_codec_error *err) {
    (void)arg;
    json_t *v = tti_tag_bin(data, len);
    if (!v) return tti_codec_fail(err, TT_ENOMEM, 0, "out of memory");
    *out = v;
    return TT_OK;
}

const tt_codec tti_codec_raw = {
    "raw", { sizeof(tt_codec_ops), raw_encode_cb, raw_decode_cb }, NULL
};

/* text: a JSON string <-> its UTF-8 bytes (NUL bytes included). */
static tt_err text_encode_cb(void *arg, const json_t *value, tt_buf *out) {
    (void)arg;
    if (!json_is_string(value)) return TT_EINVAL;
    const char *s = json_string_value(value);
    size_t n = json_string_length(value);
    if (!tti_utf8_valid((const uint8_t *)s, n, NULL)) return TT_EINVAL;
    return tti_buf_put(out, s, n);
}

static tt_err text_decode_cb(void *arg, const void *data, size_t len, json_t **out,
                             tt_codec_error *err) {
    size_t bad;
    (void)arg;
    if (!tti_utf8_valid(data, len, &bad))
        return tti_codec_fail(err, TT_EPROTO, bad, "invalid UTF-8");
    json_t *v = json_stringn_nocheck(data, len);
    if (!v) return tti_codec_fail(err, TT_ENOMEM, 0, "out of memory");
    *out = v;
    return TT_OK;
}

const tt_codec tti_codec_text = {
    "text", { sizeof(tt_codec_ops), text_encode_cb, text_decode_cb }, NULL
};

/* Watson IoT calls the same format "utf8". */
const tt_codec tti_codec_utf8 = {
    "utf8", { sizeof(tt_codec_ops), text_encode_cb, text_decode_cb }, NULL
};
