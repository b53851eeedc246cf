# Runtime unit tests: no sockets, no sleeps.
foreach(t mailbox_test future_test pool_test runtime_test core_test)
  tt_add_test(${t} LABEL unit SOURCES ${CMAKE_CURRENT_LIST_DIR}/${t}.c)
endforeach()
# The allocator can only be set before tt_init(), so it gets a process of its own.
tt_add_test(alloc_hook_test LABEL unit SOURCES ${CMAKE_CURRENT_LIST_DIR}/alloc_hook_test.c)
