tt_add_test(codec_json_test LABEL unit SOURCES ${CMAKE_CURRENT_LIST_DIR}/json_codec_test.c)
target_compile_definitions(codec_json_test PRIVATE
  TT_CODEC_CORPUS="${CMAKE_CURRENT_LIST_DIR}/../corpus")
