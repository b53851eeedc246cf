# WebSocket handshake parser and frame decoder on arbitrary server bytes.
# ws.c is compiled in here until transport/CMakeLists.txt lists it.
get_target_property(_tt_transport_srcs tt_transport SOURCES)
list(FILTER _tt_transport_srcs INCLUDE REGEX "(^|/)ws\\.c$")
set(_tt_ws_src)
if(NOT _tt_transport_srcs)
  set(_tt_ws_src ${PROJECT_SOURCE_DIR}/transport/ws.c)
endif()
tt_add_fuzz(ws_decode_fuzz ${CMAKE_CURRENT_LIST_DIR}/ws_decode_fuzz.c ${_tt_ws_src})
