# Robustness: a scripted hostile broker, and faults injected between the
# client and a real mosquitto by a TCP proxy.
tt_add_test(hostile_broker_test LABEL integration TIMEOUT 300
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/hostile_broker_test.c ${PROJECT_SOURCE_DIR}/tests/support/hostile.c)
