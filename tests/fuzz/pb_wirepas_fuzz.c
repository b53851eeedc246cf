/* Fuzz the Wirepas GenericMessage parser and the protobuf -> JSON mapping. A message
 * that decodes must map to JSON, back to a message, pack, unpack and map to the
 * same JSON again. */
#include <tether/codec_pb.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const ProtobufCMessageDescriptor *d = tt_codec_wirepas_descriptor();
    ProtobufCMessage *m = NULL, *m2 = NULL, *m3 = NULL;
    json_t *v = NULL, *w = NULL;
    tt_codec_error err;
    tt_err rc = tt_codec_pb_unpack(d, data, size, &m, &err);
    if (rc != TT_OK) {
        if (rc != TT_EPROTO || err.offset > size) __builtin_trap();
        return 0;
    }
    rc = tt_codec_pb_to_json(m, &v, &err);
    tt_codec_pb_free(m);
    if (rc != TT_OK) {
        if (rc != TT_EPROTO) __builtin_trap();   /* only a string that is not UTF-8 */
        return 0;
    }
    tt_buf b = TT_BUF_INIT;
    if (tt_codec_pb_from_json(d, v, &m2, &err) != TT_OK) __builtin_trap();
    if (tt_codec_pb_pack(m2, &b) != TT_OK) __builtin_trap();
    if (tt_codec_pb_unpack(d, b.data, b.len, &m3, &err) != TT_OK) __builtin_trap();
    if (tt_codec_pb_to_json(m3, &w, &err) != TT_OK) __builtin_trap();
    if (!json_equal(v, w)) __builtin_trap();
    /* The registry's codec agrees with the direct path. */
    json_t *x = NULL;
    if (tt_codec_decode(tt_codec_find("wirepas"), data, size, &x, &err) != TT_OK) __builtin_trap();
    if (!json_equal(v, x)) __builtin_trap();
    json_decref(x);
    json_decref(v);
    json_decref(w);
    tt_codec_pb_free(m2);
    tt_codec_pb_free(m3);
    tt_buf_free(&b);
    return 0;
}
