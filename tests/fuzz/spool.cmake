# The offline queue's file reader on arbitrary file contents.
tt_add_fuzz(spool_fuzz ${CMAKE_CURRENT_LIST_DIR}/spool_fuzz.c)
