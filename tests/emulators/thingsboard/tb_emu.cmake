# The ThingsBoard server emulator (static library tt_tb_emu) and the
# standalone tb_emulator program. Included by the test fragments that need it;
# including it again is harmless.
#
#   include(${PROJECT_SOURCE_DIR}/tests/emulators/thingsboard/tb_emu.cmake)
#   tt_add_test(my_test LABEL integration SOURCES my_test.c ${PROJECT_SOURCE_DIR}/tests/support/broker.c)
#   target_link_libraries(my_test PRIVATE tt_tb_emu)
#
# tt_tb_emu is built on tether's public API only; it does not link tether
# itself (tests bring the object libraries, the program links libtether).
# tb_broker.c in it needs tests/support/broker.c from the test's sources.
if(NOT TARGET tt_tb_emu)
  set(_tt_tb_dir ${CMAKE_CURRENT_LIST_DIR})
  add_library(tt_tb_emu STATIC
    ${_tt_tb_dir}/tb_emu.c ${_tt_tb_dir}/tb_checksum.c ${_tt_tb_dir}/tb_broker.c)
  target_include_directories(tt_tb_emu PUBLIC ${_tt_tb_dir} ${PROJECT_SOURCE_DIR}/tests/support
    ${PROJECT_SOURCE_DIR}/include ${PROJECT_BINARY_DIR}/include)
  target_include_directories(tt_tb_emu SYSTEM PRIVATE ${TT_DEP_INCLUDES})
  target_compile_options(tt_tb_emu PRIVATE ${TT_WARN_FLAGS})
  target_compile_definitions(tt_tb_emu PRIVATE _GNU_SOURCE)
  target_link_libraries(tt_tb_emu PUBLIC ${TT_DEP_LIBS} Threads::Threads)

  # For trying things by hand: tb_emulator -h HOST -p PORT [--gateway] ...
  add_executable(tb_emulator ${_tt_tb_dir}/tb_emulator.c)
  target_compile_options(tb_emulator PRIVATE ${TT_WARN_FLAGS})
  target_compile_definitions(tb_emulator PRIVATE _GNU_SOURCE)
  target_link_libraries(tb_emulator PRIVATE tt_tb_emu tether::tether)
endif()
