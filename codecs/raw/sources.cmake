# Pass-through codecs: "raw" (bytes) and "text"/"utf8" (UTF-8 checked).
list(APPEND TT_CODEC_SOURCES ${CMAKE_CURRENT_LIST_DIR}/raw.c)
