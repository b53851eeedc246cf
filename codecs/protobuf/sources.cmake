# Protobuf: the Wirepas gateway-to-backend schema, compiled by protoc-c at build time,
# plus the generic protobuf <-> JSON mapping. Only with TT_WITH_PROTOBUF.
#
# Generated files go to ${PROJECT_BINARY_DIR}/codecs/protobuf/wirepas/, which every
# target already has on its include path through ${PROJECT_BINARY_DIR}; include them
# as "codecs/protobuf/wirepas/<name>.pb-c.h".
if(TT_WITH_PROTOBUF)
  set(_tt_pb_src ${CMAKE_CURRENT_LIST_DIR}/wirepas)
  set(_tt_pb_out ${PROJECT_BINARY_DIR}/codecs/protobuf/wirepas)
  set(_tt_pb_names wp_global error config_message data_message otap_message generic_message)
  set(_tt_pb_protos)
  set(_tt_pb_outputs)
  set(_tt_pb_sources)
  foreach(n IN LISTS _tt_pb_names)
    list(APPEND _tt_pb_protos ${_tt_pb_src}/${n}.proto)
    list(APPEND _tt_pb_outputs ${_tt_pb_out}/${n}.pb-c.c ${_tt_pb_out}/${n}.pb-c.h)
    list(APPEND _tt_pb_sources ${_tt_pb_out}/${n}.pb-c.c)
  endforeach()
  file(MAKE_DIRECTORY ${_tt_pb_out})
  add_custom_command(
    OUTPUT ${_tt_pb_outputs}
    COMMAND ${TT_PROTOC_C} --c_out=${_tt_pb_out} --proto_path=${_tt_pb_src} ${_tt_pb_protos}
    DEPENDS ${_tt_pb_protos}
    COMMENT "protoc-c: Wirepas gateway API schema"
    VERBATIM)
  # A target of its own, so that tests, fuzzers and benchmarks that include the
  # generated headers can wait for them (add_dependencies(<target> tt_wirepas_proto)).
  add_custom_target(tt_wirepas_proto DEPENDS ${_tt_pb_outputs})
  # Generated code is not ours to keep warning-free.
  set_source_files_properties(${_tt_pb_sources} PROPERTIES COMPILE_OPTIONS "-w")
  list(APPEND TT_CODEC_SOURCES ${_tt_pb_sources}
    ${CMAKE_CURRENT_LIST_DIR}/pb_json.c
    ${CMAKE_CURRENT_LIST_DIR}/wirepas.c)
endif()
