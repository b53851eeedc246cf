# The soak run: built with the tests, never registered with ctest (it runs
# for minutes). tools/run soak [minutes] builds and runs it.
add_executable(tt_soak ${CMAKE_CURRENT_LIST_DIR}/soak.c
  ${PROJECT_SOURCE_DIR}/tests/support/broker.c ${PROJECT_SOURCE_DIR}/tests/support/proxy.c
  ${PROJECT_SOURCE_DIR}/tests/support/live_alloc.c)
foreach(lib IN LISTS TT_OBJECT_LIBS)
  target_sources(tt_soak PRIVATE $<TARGET_OBJECTS:${lib}>)
endforeach()
target_include_directories(tt_soak PRIVATE
  ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/include ${PROJECT_BINARY_DIR}/include
  ${PROJECT_SOURCE_DIR}/tests/support ${PROJECT_BINARY_DIR})
target_include_directories(tt_soak SYSTEM PRIVATE ${TT_DEP_INCLUDES})
target_compile_definitions(tt_soak PRIVATE TT_STATIC _GNU_SOURCE)
target_compile_options(tt_soak PRIVATE ${TT_WARN_FLAGS} -Wno-missing-prototypes)
target_link_libraries(tt_soak PRIVATE ${TT_TEST_LINK})
