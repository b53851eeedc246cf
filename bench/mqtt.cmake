# MQTT side by side: the same scenarios with tether, libmosquitto and Paho MQTT C
# against one local mosquitto. bench/mqtt_bench.sh builds these and prints the table.

# The peers: Debian's libmosquitto-dev (pkg-config libmosquitto) and
# libpaho-mqtt-dev (no pkg-config file: found by header and library name).
pkg_check_modules(TT_BENCH_MOSQ QUIET IMPORTED_TARGET libmosquitto)
find_path(TT_BENCH_PAHO_INCLUDE MQTTAsync.h)
find_library(TT_BENCH_PAHO_LIB NAMES paho-mqtt3a paho-mqtt3as)

# Peer programs use only their own library, no tether objects.
function(tt_add_peer_bench name src)
  add_executable(${name} ${src})
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_LIST_DIR}/peers)
  target_compile_definitions(${name} PRIVATE _GNU_SOURCE)
  target_compile_options(${name} PRIVATE ${TT_WARN_FLAGS} -Wno-missing-prototypes)
  target_link_libraries(${name} PRIVATE ${ARGN} Threads::Threads)
endfunction()

if(TT_BENCH_MOSQ_FOUND)
  tt_add_peer_bench(mosq_bench ${CMAKE_CURRENT_LIST_DIR}/peers/mosq_bench.c PkgConfig::TT_BENCH_MOSQ)
else()
  message(STATUS "bench: libmosquitto not found (Debian: libmosquitto-dev): no mosq_bench")
endif()

if(TT_BENCH_PAHO_INCLUDE AND TT_BENCH_PAHO_LIB)
  tt_add_peer_bench(paho_bench ${CMAKE_CURRENT_LIST_DIR}/peers/paho_bench.c ${TT_BENCH_PAHO_LIB})
  target_include_directories(paho_bench SYSTEM PRIVATE ${TT_BENCH_PAHO_INCLUDE})
else()
  message(STATUS "bench: Paho MQTT C not found (Debian: libpaho-mqtt-dev): no paho_bench")
endif()

# tether's own program needs the client (platforms/mqtt/); until it is in the
# tree the peers still build and the table shows n/a for tether.
option(TT_BENCH_MQTT_TETHER "Build bench/mqtt_bench.c (needs the MQTT client)" ON)
if(TT_BENCH_MQTT_TETHER AND TARGET tt_platforms
   AND EXISTS ${PROJECT_SOURCE_DIR}/platforms/mqtt/client.c
   AND EXISTS ${CMAKE_CURRENT_LIST_DIR}/mqtt_bench.c)
  tt_add_bench(mqtt_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/mqtt_bench.c)
  target_include_directories(mqtt_bench PRIVATE ${CMAKE_CURRENT_LIST_DIR}/peers)
endif()
