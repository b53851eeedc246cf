# Codec registry and the small pieces every payload codec shares. The registry lists the
# optional built-in codecs only when their dependency is enabled.
list(APPEND TT_CODEC_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/registry.c
  ${CMAKE_CURRENT_LIST_DIR}/util.c)
if(TT_WITH_MSGPACK)
  set_property(SOURCE ${CMAKE_CURRENT_LIST_DIR}/registry.c APPEND PROPERTY
               COMPILE_DEFINITIONS TTI_CODEC_HAVE_MSGPACK)
endif()
if(TT_WITH_PROTOBUF)
  set_property(SOURCE ${CMAKE_CURRENT_LIST_DIR}/registry.c APPEND PROPERTY
               COMPILE_DEFINITIONS TTI_CODEC_HAVE_PROTOBUF)
endif()
