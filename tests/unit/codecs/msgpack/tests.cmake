if(TT_WITH_MSGPACK)
  tt_add_test(codec_msgpack_test LABEL unit SOURCES ${CMAKE_CURRENT_LIST_DIR}/msgpack_codec_test.c)
  target_compile_definitions(codec_msgpack_test PRIVATE
    TT_CODEC_CORPUS="${CMAKE_CURRENT_LIST_DIR}/../corpus")
endif()
