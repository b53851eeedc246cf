/* tether — protobuf messages as JSON values, and the Wirepas schema.
 *
 * Optional header: it needs protobuf-c's headers (<protobuf-c/protobuf-c.h>), so it is
 * not part of <tether/tether.h>; include it beside that when you work with protobuf-c
 * messages directly. The "wirepas" codec in the registry (see <tether/codec.h>) gives
 * the same mapping without this header.
 *
 * Mapping between a message and a JSON object, driven by the message descriptor:
 *   - keys are the field names of the .proto file ("source_endpoint");
 *   - absent optional fields are left out; a JSON null is the same as absent;
 *   - int32/uint32 (all encodings) are JSON integers;
 *   - int64/uint64 (all encodings) are JSON integers when they fit int64; a uint64
 *     above INT64_MAX is a string of decimal digits. Input accepts an integer or a
 *     decimal string for any 64-bit field, so values are always exact;
 *   - float/double are JSON reals; NaN and infinities are the strings "NaN",
 *     "Infinity", "-Infinity" (accepted back as such);
 *   - bool is true/false; enums are value names ("ON"), or the number when the value
 *     has no name; input accepts a name or any int32 number;
 *   - string is a JSON string (UTF-8; no NUL byte); bytes are standard base64 text;
 *   - messages are objects; repeated fields are arrays;
 *   - a oneof member appears under its own field name; setting two members of one
 *     oneof is TT_EINVAL;
 *   - unknown fields kept by protobuf-c are not shown;
 *   - a JSON key that names no field is TT_EINVAL, and the reason names the key;
 *     a missing required field is TT_EINVAL naming the field.
 */
#ifndef TETHER_CODEC_PB_H
#define TETHER_CODEC_PB_H

#include <protobuf-c/protobuf-c.h>
#include <tether/codec.h>

TT_BEGIN_DECLS

/**
 * Map a protobuf-c message to a new JSON object.
 * Ownership: `msg` is only read; `*out` is the caller's (json_decref).
 * Thread:    any.
 * Errors:    TT_EINVAL (NULL argument, messages nested deeper than TT_CODEC_MAX_DEPTH),
 *            TT_EPROTO (a string field that is not UTF-8), TT_ENOMEM. `err` (may be
 *            NULL) names the field.
 */
TT_API tt_err tt_codec_pb_to_json(const ProtobufCMessage *msg, json_t **out,
                                  tt_codec_error *err);

/**
 * Build a message of type `desc` from a JSON object.
 * Ownership: `value` is only read; `*out` is the caller's, freed with tt_codec_pb_free().
 * Thread:    any.
 * Errors:    TT_EINVAL (not an object, unknown key, wrong JSON type, number out of
 *            range, unknown enum name, bad base64, missing required field, two members
 *            of a oneof, nesting deeper than TT_CODEC_MAX_DEPTH; `err` says which),
 *            TT_ENOMEM.
 */
TT_API tt_err tt_codec_pb_from_json(const ProtobufCMessageDescriptor *desc, const json_t *value,
                                    ProtobufCMessage **out, tt_codec_error *err);

/**
 * Serialize `msg` into `out` (emptied first).
 * Ownership: `msg` is only read. Thread: any.
 * Errors:    TT_EINVAL (NULL argument), TT_ENOMEM.
 */
TT_API tt_err tt_codec_pb_pack(const ProtobufCMessage *msg, tt_buf *out);

/**
 * Parse `len` bytes as a message of type `desc`.
 * Ownership: `data` is only read; `*out` is the caller's, freed with tt_codec_pb_free().
 * Thread:    any.
 * Errors:    TT_EPROTO (malformed, or a required field missing: `err` gets the offset of
 *            the first broken top-level field when one is found, else 0), TT_EINVAL.
 */
TT_API tt_err tt_codec_pb_unpack(const ProtobufCMessageDescriptor *desc, const void *data,
                                 size_t len, ProtobufCMessage **out, tt_codec_error *err);

/**
 * Free a message returned by tt_codec_pb_from_json() or tt_codec_pb_unpack().
 * NULL is ignored. Thread: any.
 */
TT_API void tt_codec_pb_free(ProtobufCMessage *msg);

/**
 * The descriptor of the Wirepas root message (wirepas.proto.gateway_api.GenericMessage),
 * for tt_codec_pb_unpack() / tt_codec_pb_from_json() without the generated headers.
 * Thread: any. Exists only when tether was built with protobuf support.
 */
TT_API const ProtobufCMessageDescriptor *tt_codec_wirepas_descriptor(void);

TT_END_DECLS

#endif /* TETHER_CODEC_PB_H */
