# IBM Watson IoT Platform clients (include/tether/watson.h).
list(APPEND TT_PLATFORM_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/client.c
  ${CMAKE_CURRENT_LIST_DIR}/dm.c
  ${CMAKE_CURRENT_LIST_DIR}/config.c)
