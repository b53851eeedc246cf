# The IBM Watson IoT Platform emulator (tests/emulators/watson): a mosquitto
# plugin, and the test of the emulator itself through tether's plain MQTT
# client. The plugin needs mosquitto's plugin headers (Debian package
# mosquitto-dev); it runs inside the broker, so it is built without the
# sanitizers.
#
# Other fragments that use the emulator include this file first (it is
# guarded, and fragments are included in name order), then check
# if(TARGET tt_wiotp_plugin): see tests/emulators/watson/wiotp_emu.h.
include_guard(GLOBAL)
include(CheckIncludeFiles)
check_include_files("mosquitto.h;mosquitto_broker.h;mosquitto_plugin.h" TT_WIOTP_HAVE_PLUGIN_HEADERS)
if(TT_WIOTP_HAVE_PLUGIN_HEADERS)
  add_library(tt_wiotp_plugin MODULE ${PROJECT_SOURCE_DIR}/tests/emulators/watson/wiotp_plugin.c)
  set_target_properties(tt_wiotp_plugin PROPERTIES PREFIX "" C_VISIBILITY_PRESET default)
  target_compile_definitions(tt_wiotp_plugin PRIVATE _GNU_SOURCE)
  target_compile_options(tt_wiotp_plugin PRIVATE ${TT_WARN_FLAGS} -fno-sanitize=all)
  target_link_options(tt_wiotp_plugin PRIVATE -fno-sanitize=all)

  tt_add_test(wiotp_emu_test LABEL integration TIMEOUT 120
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/wiotp_emu_test.c ${PROJECT_SOURCE_DIR}/tests/support/broker.c)
  target_include_directories(wiotp_emu_test PRIVATE ${PROJECT_SOURCE_DIR}/tests/emulators/watson)
  target_compile_definitions(wiotp_emu_test PRIVATE TT_WIOTP_PLUGIN_PATH="$<TARGET_FILE:tt_wiotp_plugin>")
  add_dependencies(wiotp_emu_test tt_wiotp_plugin)
else()
  message(STATUS "mosquitto_plugin.h not found (mosquitto-dev): the Watson IoT emulator and wiotp_emu_test are not built")
endif()
