# MQTT 3.1.1 + 5.0 packet codec (no I/O, no allocation while decoding).
list(APPEND TT_CODEC_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/mqtt_decode.c
  ${CMAKE_CURRENT_LIST_DIR}/mqtt_encode.c
  ${CMAKE_CURRENT_LIST_DIR}/mqtt_props.c
  ${CMAKE_CURRENT_LIST_DIR}/mqtt_util.c)
