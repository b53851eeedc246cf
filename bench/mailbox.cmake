tt_add_bench(mailbox_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/mailbox_bench.c)
