# ThingsBoard device and gateway clients (include/tether/thingsboard.h).
list(APPEND TT_PLATFORM_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/device.c
  ${CMAKE_CURRENT_LIST_DIR}/pack.c
  ${CMAKE_CURRENT_LIST_DIR}/limits.c
  ${CMAKE_CURRENT_LIST_DIR}/fw.c
  ${CMAKE_CURRENT_LIST_DIR}/checksum.c
  ${CMAKE_CURRENT_LIST_DIR}/provision.c)
