# Codec actor pool: round trips, per-key order across actors, admission, shutdown (unit).
tt_add_test(codec_pool_test LABEL unit SOURCES ${CMAKE_CURRENT_LIST_DIR}/codec_pool_test.c)
