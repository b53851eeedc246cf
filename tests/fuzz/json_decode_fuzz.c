/* Fuzz the "json" and "json-iotf" decoders. A value that decodes must encode, decode
 * back equal, and survive msgpack (when built) unchanged too. */
#include <tether/codec.h>

static void same_after(const char *name, const json_t *v) {
    const tt_codec *c = tt_codec_find(name);
    if (!c) return;
    tt_buf b = TT_BUF_INIT;
    json_t *w = NULL;
    tt_codec_error err;
    tt_err rc = tt_codec_encode(c, v, &b);
    if (rc != TT_OK) __builtin_trap();
    if (tt_codec_decode(c, b.data, b.len, &w, &err) != TT_OK) __builtin_trap();
    if (!json_equal(v, w)) __builtin_trap();
    json_decref(w);
    tt_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_t *v = NULL;
    tt_codec_error err;
    tt_err rc = tt_codec_decode(tt_codec_find("json"), data, size, &v, &err);
    if (rc != TT_OK) {
        if (rc != TT_EPROTO || err.offset > size || !err.reason[0]) __builtin_trap();
    } else {
        same_after("json", v);
        same_after("msgpack", v);
        json_decref(v);
    }
    int64_t ts;
    if (tt_codec_iotf_decode(data, size, &v, &ts, &err) == TT_OK) json_decref(v);
    return 0;
}
