# `tether pub` / `tether sub` against mosquitto, mosquitto_pub and mosquitto_sub.
# The test runs the built program, whose path is compiled in (the harness
# takes its command-line arguments as test names).
if(TARGET tether_cli)
  tt_add_test(cli_test LABEL integration TIMEOUT 300
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/cli_test.c ${PROJECT_SOURCE_DIR}/tests/support/broker.c
            ${PROJECT_SOURCE_DIR}/tests/support/certs.c)
  target_compile_definitions(cli_test PRIVATE TT_CLI_PATH="$<TARGET_FILE:tether_cli>")
  add_dependencies(cli_test tether_cli)
endif()
