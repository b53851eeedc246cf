# MQTT packet decoder (3.1.1 and 5.0): decode, re-encode, decode again.
tt_add_fuzz(mqtt_decode_fuzz ${CMAKE_CURRENT_LIST_DIR}/mqtt_decode_fuzz.c)
