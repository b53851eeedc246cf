# The ThingsBoard server emulator (tests/emulators/thingsboard) driven by
# tether's plain MQTT client speaking the raw ThingsBoard topics, through a
# mosquitto with token logins and ACLs.
include(${PROJECT_SOURCE_DIR}/tests/emulators/thingsboard/tb_emu.cmake)
tt_add_test(tb_emu_test LABEL integration TIMEOUT 300
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tb_emu_test.c ${PROJECT_SOURCE_DIR}/tests/support/broker.c)
target_link_libraries(tb_emu_test PRIVATE tt_tb_emu)
# The test runs the standalone program too; its path is compiled in.
target_compile_definitions(tb_emu_test PRIVATE TB_EMULATOR_PATH="$<TARGET_FILE:tb_emulator>")
add_dependencies(tb_emu_test tb_emulator)
