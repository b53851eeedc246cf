# JSON codecs: "json" (jansson) and Watson's "json-iotf" envelope.
list(APPEND TT_CODEC_SOURCES ${CMAKE_CURRENT_LIST_DIR}/json.c)
