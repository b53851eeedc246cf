# The MQTT example run against a private mosquitto: it must keep working.
if(TARGET example_mqtt_rpc)
  tt_add_test(example_test LABEL integration TIMEOUT 60
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/example_test.c ${PROJECT_SOURCE_DIR}/tests/support/broker.c)
  target_compile_definitions(example_test PRIVATE TT_EXAMPLE_RPC="$<TARGET_FILE:example_mqtt_rpc>")
  add_dependencies(example_test example_mqtt_rpc)
endif()
