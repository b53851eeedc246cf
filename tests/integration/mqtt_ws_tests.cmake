# MQTT over WebSocket (ws:// and wss://) against mosquitto's websockets listener.
tt_add_test(mqtt_ws_test LABEL integration TIMEOUT 300 SOURCES ${CMAKE_CURRENT_LIST_DIR}/mqtt_ws_test.c ${PROJECT_SOURCE_DIR}/tests/support/broker.c ${PROJECT_SOURCE_DIR}/tests/support/certs.c)
