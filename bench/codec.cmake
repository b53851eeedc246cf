# Payload codec throughput on one core, and through the codec actor pool (1 and 2 actors).
tt_add_bench(codec_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/codec_bench.c)
if(TT_WITH_MSGPACK)
  target_compile_definitions(codec_bench PRIVATE TT_BENCH_HAVE_MSGPACK)
endif()
if(TT_WITH_PROTOBUF)
  target_compile_definitions(codec_bench PRIVATE TT_BENCH_HAVE_PROTOBUF)
endif()
