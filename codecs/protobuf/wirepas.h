/* Wirepas gateway API messages for the platform adapter: wrap one request in the
 * GenericMessage root, and find the one member set in a received message.
 *
 * The generated types are in "codecs/protobuf/wirepas/<file>.pb-c.h" (package
 * wirepas.proto.gateway_api, C prefix Wirepas__Proto__GatewayApi__). */
#ifndef TTI_CODECS_PROTOBUF_WIREPAS_H
#define TTI_CODECS_PROTOBUF_WIREPAS_H

#include <tether/codec_pb.h>

#include "codecs/protobuf/wirepas/generic_message.pb-c.h"

typedef Wirepas__Proto__GatewayApi__GenericMessage tti_wp_generic;
typedef Wirepas__Proto__GatewayApi__WirepasMessage tti_wp_message;

/* Field numbers of WirepasMessage: which message an MQTT payload carries. */
typedef enum tti_wp_kind {
    TTI_WP_NONE = 0,
    TTI_WP_STATUS_EVENT = 1,
    TTI_WP_GET_CONFIGS_REQ = 2,
    TTI_WP_GET_CONFIGS_RESP = 3,
    TTI_WP_SET_CONFIG_REQ = 4,
    TTI_WP_SET_CONFIG_RESP = 5,
    TTI_WP_SEND_PACKET_REQ = 6,
    TTI_WP_SEND_PACKET_RESP = 7,
    TTI_WP_PACKET_RECEIVED_EVENT = 8,
    TTI_WP_GET_SCRATCHPAD_STATUS_REQ = 9,
    TTI_WP_GET_SCRATCHPAD_STATUS_RESP = 10,
    TTI_WP_UPLOAD_SCRATCHPAD_REQ = 11,
    TTI_WP_UPLOAD_SCRATCHPAD_RESP = 12,
    TTI_WP_PROCESS_SCRATCHPAD_REQ = 13,
    TTI_WP_PROCESS_SCRATCHPAD_RESP = 14,
    TTI_WP_GET_GATEWAY_INFO_REQ = 15,
    TTI_WP_GET_GATEWAY_INFO_RESP = 16,
    TTI_WP_SET_SCRATCHPAD_TARGET_AND_ACTION_REQ = 17,
    TTI_WP_SET_SCRATCHPAD_TARGET_AND_ACTION_RESP = 18,
    TTI_WP_SET_CONFIGURATION_DATA_ITEM_REQ = 19,
    TTI_WP_SET_CONFIGURATION_DATA_ITEM_RESP = 20,
    TTI_WP_GET_CONFIGURATION_DATA_ITEM_REQ = 21,
    TTI_WP_GET_CONFIGURATION_DATA_ITEM_RESP = 22,
} tti_wp_kind;

/* Serialize GenericMessage{wirepas: {<kind>: inner}} into `out` (emptied first).
 * `inner` must be of the type WirepasMessage declares for that field: TT_EINVAL if not.
 * Nothing is copied or allocated besides `out`. */
tt_err tti_wirepas_pack_one(tti_wp_kind kind, const ProtobufCMessage *inner, tt_buf *out);

/* Serialize GenericMessage{wirepas: wm} into `out` (emptied first). */
tt_err tti_wirepas_pack(const tti_wp_message *wm, tt_buf *out);

/* Parse a payload; free with tti_wirepas_free(). TT_EPROTO with `err` when malformed. */
tt_err tti_wirepas_unpack(const void *data, size_t len, tti_wp_generic **out,
                          tt_codec_error *err);
void tti_wirepas_free(tti_wp_generic *gm);

/* The member set in gm->wirepas (the first one, if a sender set several), and which
 * one it is; NULL / TTI_WP_NONE when there is none. Borrowed from `gm`. */
const ProtobufCMessage *tti_wirepas_payload(const tti_wp_generic *gm, tti_wp_kind *kind);

#endif
