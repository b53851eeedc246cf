/* Internals shared by the protobuf codec files. */
#ifndef TTI_CODECS_PROTOBUF_PB_INTERNAL_H
#define TTI_CODECS_PROTOBUF_PB_INTERNAL_H

#include <protobuf-c/protobuf-c.h>
#include <tether/codec_pb.h>

#include "codecs/registry/codec_internal.h"

/* tti_malloc/tti_free for protobuf-c; messages from tt_codec_pb_unpack/from_json use it. */
extern ProtobufCAllocator tti_pb_allocator;

/* Serialize `msg` after the current contents of `out`. */
tt_err tti_pb_pack_append(const ProtobufCMessage *msg, tt_buf *out);

#endif
