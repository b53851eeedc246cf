/* Fuzz the "msgpack" decoder. A value that decodes must encode, decode back equal,
 * and, when JSON can hold it (depth), come back unchanged through "json" too. */
#include <tether/codec.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const tt_codec *mp = tt_codec_find("msgpack"), *js = tt_codec_find("json");
    json_t *v = NULL, *w = NULL;
    tt_codec_error err;
    tt_err rc = tt_codec_decode(mp, data, size, &v, &err);
    if (rc != TT_OK) {
        if ((rc != TT_EPROTO && rc != TT_ENOTSUP) || err.offset > size) __builtin_trap();
        return 0;
    }
    tt_buf b = TT_BUF_INIT;
    if (tt_codec_encode(mp, v, &b) != TT_OK) __builtin_trap();
    if (tt_codec_decode(mp, b.data, b.len, &w, &err) != TT_OK) __builtin_trap();
    if (!json_equal(v, w)) __builtin_trap();
    json_decref(w);
    w = NULL;
    /* Tags add an object level in JSON, so only "too deep" may refuse. */
    rc = tt_codec_encode(js, v, &b);
    if (rc == TT_OK) {
        if (tt_codec_decode(js, b.data, b.len, &w, &err) != TT_OK) __builtin_trap();
        if (!json_equal(v, w)) __builtin_trap();
        json_decref(w);
    } else if (rc != TT_EINVAL) {
        __builtin_trap();
    }
    tt_buf_free(&b);
    json_decref(v);
    return 0;
}
