/* Wirepas GenericMessage wrapping and unwrapping, and the "wirepas" registry codec
 * (payload bytes <-> the JSON form of GenericMessage, see include/tether/codec_pb.h). */
#include "codecs/protobuf/wirepas.h"

#include "codecs/protobuf/pb_internal.h"

#define WP_GENERIC_DESC wirepas__proto__gateway_api__generic_message__descriptor
#define WP_MESSAGE_DESC wirepas__proto__gateway_api__wirepas_message__descriptor

const ProtobufCMessageDescriptor *tt_codec_wirepas_descriptor(void) { return &WP_GENERIC_DESC; }

tt_err tti_wirepas_pack(const tti_wp_message *wm, tt_buf *out) {
    if (!out) return TT_EINVAL;
    out->len = 0;
    if (!wm) return TT_EINVAL;
    tti_wp_generic gm = WIREPAS__PROTO__GATEWAY_API__GENERIC_MESSAGE__INIT;
    gm.wirepas = (tti_wp_message *)wm;
    return tti_pb_pack_append(&gm.base, out);
}

tt_err tti_wirepas_pack_one(tti_wp_kind kind, const ProtobufCMessage *inner, tt_buf *out) {
    if (!out) return TT_EINVAL;
    out->len = 0;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&WP_MESSAGE_DESC, (unsigned)kind);
    if (!inner || !f || f->descriptor != inner->descriptor) return TT_EINVAL;
    tti_wp_message wm = WIREPAS__PROTO__GATEWAY_API__WIREPAS_MESSAGE__INIT;
    *(const ProtobufCMessage **)(void *)((char *)&wm + f->offset) = inner;
    return tti_wirepas_pack(&wm, out);
}

tt_err tti_wirepas_unpack(const void *data, size_t len, tti_wp_generic **out,
                          tt_codec_error *err) {
    ProtobufCMessage *m = NULL;
    tt_err rc = tt_codec_pb_unpack(&WP_GENERIC_DESC, data, len, &m, err);
    if (rc == TT_OK) *out = (tti_wp_generic *)m;
    return rc;
}

void tti_wirepas_free(tti_wp_generic *gm) { tt_codec_pb_free(gm ? &gm->base : NULL); }

const ProtobufCMessage *tti_wirepas_payload(const tti_wp_generic *gm, tti_wp_kind *kind) {
    if (kind) *kind = TTI_WP_NONE;
    if (!gm || !gm->wirepas) return NULL;
    const ProtobufCMessageDescriptor *d = &WP_MESSAGE_DESC;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const ProtobufCMessage *m =
            *(const ProtobufCMessage *const *)(const void *)((const char *)gm->wirepas + f->offset);
        if (m) {
            if (kind) *kind = (tti_wp_kind)f->id;
            return m;
        }
    }
    return NULL;
}

/* ---- the "wirepas" codec ---------------------------------------------------------- */

static tt_err wp_encode_cb(void *arg, const json_t *value, tt_buf *out) {
    ProtobufCMessage *m = NULL;
    (void)arg;
    tt_err rc = tt_codec_pb_from_json(&WP_GENERIC_DESC, value, &m, NULL);
    if (rc != TT_OK) return rc;
    rc = tti_pb_pack_append(m, out);
    tt_codec_pb_free(m);
    return rc;
}

static tt_err wp_decode_cb(void *arg, const void *data, size_t len, json_t **out,
                           tt_codec_error *err) {
    ProtobufCMessage *m = NULL;
    (void)arg;
    tt_err rc = tt_codec_pb_unpack(&WP_GENERIC_DESC, data, len, &m, err);
    if (rc != TT_OK) return rc;
    rc = tt_codec_pb_to_json(m, out, err);
    tt_codec_pb_free(m);
    return rc;
}

const tt_codec tti_codec_wirepas = {
    "wirepas", { sizeof(tt_codec_ops), wp_encode_cb, wp_decode_cb }, NULL
};
