# Robustness: a scripted hostile broker, and faults injected between the
# client and a real mosquitto by a TCP proxy.
tt_add_test(hostile_broker_test LABEL integration TIMEOUT 300
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/hostile_broker_test.c ${PROJECT_SOURCE_DIR}/tests/support/hostile.c
          ${PROJECT_SOURCE_DIR}/tests/support/live_alloc.c)
# Keepalive, split/delayed forwarding, leak-free reconnect cycles and flat
# memory with the broker gone; the
# long streams through cuts and restarts run as their own test.
tt_add_test(fault_test LABEL integration TIMEOUT 300
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fault_test.c ${PROJECT_SOURCE_DIR}/tests/support/proxy.c
          ${PROJECT_SOURCE_DIR}/tests/support/broker.c ${PROJECT_SOURCE_DIR}/tests/support/live_alloc.c
  ARGS keepalive_stall split_and_delay reconnect_cycles rss_flat_with_broker_gone)
tt_add_test(fault_stream_test LABEL integration TIMEOUT 300
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fault_test.c ${PROJECT_SOURCE_DIR}/tests/support/proxy.c
          ${PROJECT_SOURCE_DIR}/tests/support/broker.c ${PROJECT_SOURCE_DIR}/tests/support/live_alloc.c
  ARGS qos1_stream qos2_stream)
# QoS 2 through cuts alone (exactly once, in order, MQTT 5) and QoS 1 through
# broker SIGKILLs.
tt_add_test(fault_kill_test LABEL integration TIMEOUT 300
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fault_test.c ${PROJECT_SOURCE_DIR}/tests/support/proxy.c
          ${PROJECT_SOURCE_DIR}/tests/support/broker.c ${PROJECT_SOURCE_DIR}/tests/support/live_alloc.c
  ARGS qos2_cuts_stream qos1_kill_stream)
