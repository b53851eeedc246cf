# MessagePack codec (msgpack-c), only with TT_WITH_MSGPACK.
if(TT_WITH_MSGPACK)
  list(APPEND TT_CODEC_SOURCES ${CMAKE_CURRENT_LIST_DIR}/msgpack.c)
endif()
