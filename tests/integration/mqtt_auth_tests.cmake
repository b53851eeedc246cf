# MQTT 5 enhanced authentication against mosquitto with a test plugin. The
# plugin needs mosquitto's plugin headers (Debian package mosquitto-dev); it
# runs inside the broker, so it is built without the sanitizers.
include(CheckIncludeFiles)
check_include_files("mosquitto.h;mosquitto_broker.h;mosquitto_plugin.h" TT_HAVE_MOSQUITTO_PLUGIN_H)
if(TT_HAVE_MOSQUITTO_PLUGIN_H)
  add_library(tt_auth_plugin MODULE ${PROJECT_SOURCE_DIR}/tests/support/auth_plugin.c)
  set_target_properties(tt_auth_plugin PROPERTIES PREFIX "")
  target_compile_options(tt_auth_plugin PRIVATE -fno-sanitize=all -fvisibility=default)
  target_link_options(tt_auth_plugin PRIVATE -fno-sanitize=all)
  tt_add_test(mqtt_auth_test LABEL integration TIMEOUT 120
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/mqtt_auth_test.c ${PROJECT_SOURCE_DIR}/tests/support/broker.c)
  target_compile_definitions(mqtt_auth_test PRIVATE TT_AUTH_PLUGIN_PATH="$<TARGET_FILE:tt_auth_plugin>")
  add_dependencies(mqtt_auth_test tt_auth_plugin)
else()
  message(STATUS "mosquitto_plugin.h not found (mosquitto-dev): mqtt_auth_test is not built")
endif()
