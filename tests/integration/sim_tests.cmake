# The fleet simulator against a real mosquitto: exact counts, zero loss at
# QoS 1 through a broker restart, the ThingsBoard profiles, a separate
# consumer with merged reports, and the `tether sim` command.
tt_add_test(sim_fleet_test LABEL integration TIMEOUT 400
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim_fleet_test.c ${PROJECT_SOURCE_DIR}/tests/support/broker.c)
if(TARGET tether_cli)
  target_compile_definitions(sim_fleet_test PRIVATE TT_CLI_PATH="$<TARGET_FILE:tether_cli>")
  add_dependencies(sim_fleet_test tether_cli)
endif()
