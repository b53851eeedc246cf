# MQTT client against a real mosquitto started by each test.
tt_add_test(mqtt_client_test LABEL integration TIMEOUT 300
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/mqtt_client_test.c ${PROJECT_SOURCE_DIR}/tests/support/broker.c
          ${PROJECT_SOURCE_DIR}/tests/support/live_alloc.c)
tt_add_test(mqtt_tls_test LABEL integration TIMEOUT 300
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/mqtt_tls_test.c ${PROJECT_SOURCE_DIR}/tests/support/broker.c
          ${PROJECT_SOURCE_DIR}/tests/support/certs.c)
tt_add_test(mqtt_v5_test LABEL integration TIMEOUT 120
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/mqtt_v5_test.c ${PROJECT_SOURCE_DIR}/tests/support/broker.c)
# Through real proxies (microsocks, tinyproxy) in front of mosquitto.
tt_add_test(mqtt_proxy_test LABEL integration TIMEOUT 120
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/mqtt_proxy_test.c ${PROJECT_SOURCE_DIR}/tests/support/broker.c
          ${PROJECT_SOURCE_DIR}/tests/support/certs.c)
# The offline queue's file: restarts, a crashed process, a torn record.
tt_add_test(mqtt_spool_test LABEL integration TIMEOUT 120
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/mqtt_spool_test.c ${PROJECT_SOURCE_DIR}/tests/support/broker.c)
