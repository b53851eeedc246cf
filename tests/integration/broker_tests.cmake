# The broker test support (tests/support/broker.c) against a real mosquitto.
tt_add_test(broker_test LABEL integration
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/broker_test.c ${PROJECT_SOURCE_DIR}/tests/support/broker.c)
