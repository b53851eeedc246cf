if(TT_WITH_PROTOBUF)
  tt_add_test(codec_pb_wirepas_test LABEL unit SOURCES ${CMAKE_CURRENT_LIST_DIR}/pb_wirepas_test.c)
  add_dependencies(codec_pb_wirepas_test tt_wirepas_proto)
  target_compile_definitions(codec_pb_wirepas_test PRIVATE
    TT_CODEC_CORPUS="${CMAKE_CURRENT_LIST_DIR}/../corpus")
endif()
