# WebSocket framing (label unit). ws.c is compiled in here until
# transport/CMakeLists.txt lists it; once it does, this adds nothing.
get_target_property(_tt_transport_srcs tt_transport SOURCES)
list(FILTER _tt_transport_srcs INCLUDE REGEX "(^|/)ws\\.c$")
set(_tt_ws_src)
if(NOT _tt_transport_srcs)
  set(_tt_ws_src ${PROJECT_SOURCE_DIR}/transport/ws.c)
endif()
tt_add_test(ws_test LABEL unit SOURCES ${CMAKE_CURRENT_LIST_DIR}/ws_test.c ${_tt_ws_src})
