# The ThingsBoard adapter against mosquitto and the ThingsBoard emulator
# (tests/emulators/thingsboard); built once the emulator is in the tree.
if(EXISTS ${PROJECT_SOURCE_DIR}/tests/emulators/thingsboard/tb_emu.cmake)
  include(${PROJECT_SOURCE_DIR}/tests/emulators/thingsboard/tb_emu.cmake)
  tt_add_test(tb_device_test LABEL integration TIMEOUT 400
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/tb_device_test.c ${PROJECT_SOURCE_DIR}/tests/support/broker.c
            ${PROJECT_SOURCE_DIR}/tests/support/certs.c)
  target_link_libraries(tb_device_test PRIVATE tt_tb_emu)
  tt_add_test(tb_gateway_test LABEL integration TIMEOUT 300
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/tb_gateway_test.c ${PROJECT_SOURCE_DIR}/tests/support/broker.c)
  target_link_libraries(tb_gateway_test PRIVATE tt_tb_emu)
endif()
if(EXISTS ${PROJECT_SOURCE_DIR}/tests/emulators/thingsboard/tb_emu.cmake AND TARGET tether_cli)
  tt_add_test(tb_cli_test LABEL integration TIMEOUT 300
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/tb_cli_test.c ${PROJECT_SOURCE_DIR}/tests/support/broker.c)
  target_link_libraries(tb_cli_test PRIVATE tt_tb_emu)
  target_compile_definitions(tb_cli_test PRIVATE TT_CLI_PATH="$<TARGET_FILE:tether_cli>")
  add_dependencies(tb_cli_test tether_cli)
endif()
