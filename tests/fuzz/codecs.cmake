# Payload codec fuzz targets: decode, and where decoding succeeds, encode and decode
# again and require the same value.
tt_add_fuzz(json_decode_fuzz ${CMAKE_CURRENT_LIST_DIR}/json_decode_fuzz.c)
if(TT_WITH_MSGPACK)
  tt_add_fuzz(msgpack_decode_fuzz ${CMAKE_CURRENT_LIST_DIR}/msgpack_decode_fuzz.c)
endif()
if(TT_WITH_PROTOBUF)
  tt_add_fuzz(pb_wirepas_fuzz ${CMAKE_CURRENT_LIST_DIR}/pb_wirepas_fuzz.c)
endif()
