# ThingsBoard adapter: checksums, payload splitting, rate-limit windows (label unit).
tt_add_test(tb_unit_test LABEL unit SOURCES ${CMAKE_CURRENT_LIST_DIR}/tb_unit_test.c)
