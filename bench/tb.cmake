# ThingsBoard gateway: 1,000 sub-devices x 10 telemetry msgs/s through one
# connection to a local mosquitto, publish-to-receive latency percentiles.
if(TARGET tt_platforms AND EXISTS ${PROJECT_SOURCE_DIR}/platforms/thingsboard/device.c)
  tt_add_bench(tb_gateway_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/tb_gateway_bench.c
    ${PROJECT_SOURCE_DIR}/tests/support/broker.c)
  target_include_directories(tb_gateway_bench PRIVATE ${PROJECT_SOURCE_DIR}/tests/support)
endif()
