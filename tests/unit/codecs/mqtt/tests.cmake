# MQTT packet codec: spec vectors, rejection rules, round trips (label unit).
tt_add_test(mqtt_codec_test LABEL unit SOURCES ${CMAKE_CURRENT_LIST_DIR}/mqtt_codec_test.c)
