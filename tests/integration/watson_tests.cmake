# The Watson IoT clients against mosquitto with the Watson IoT emulator plugin
# (tests/emulators/watson; built when mosquitto's plugin headers are there).
include(${PROJECT_SOURCE_DIR}/tests/integration/wiotp_emu_tests.cmake)
if(TARGET tt_wiotp_plugin)
  tt_add_test(watson_test LABEL integration TIMEOUT 120
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/watson_test.c ${PROJECT_SOURCE_DIR}/tests/support/broker.c)
  target_include_directories(watson_test PRIVATE ${PROJECT_SOURCE_DIR}/tests/emulators/watson)
  target_compile_definitions(watson_test PRIVATE TT_WIOTP_PLUGIN_PATH="$<TARGET_FILE:tt_wiotp_plugin>")
  add_dependencies(watson_test tt_wiotp_plugin)
  if(TARGET tether_cli)
    target_compile_definitions(watson_test PRIVATE TT_CLI_PATH="$<TARGET_FILE:tether_cli>")
    add_dependencies(watson_test tether_cli)
  endif()
else()
  message(STATUS "mosquitto_plugin.h not found (mosquitto-dev): watson_test is not built")
endif()
