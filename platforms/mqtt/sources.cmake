# The plain MQTT client API (include/tether/mqtt.h).
list(APPEND TT_PLATFORM_SOURCES ${CMAKE_CURRENT_LIST_DIR}/client.c ${CMAKE_CURRENT_LIST_DIR}/request.c)
