# Watson IoT: an application ingesting JSON device events, against a plain
# MQTT client doing the same parsing by hand.
tt_add_bench(wiotp_app_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/wiotp_app_bench.c
  ${PROJECT_SOURCE_DIR}/tests/support/broker.c)
target_include_directories(wiotp_app_bench PRIVATE ${PROJECT_SOURCE_DIR}/tests/support)
