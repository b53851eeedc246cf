# The session actor fed arbitrary broker byte streams over loopback TCP, on a
# runtime embedded in the fuzzer's thread (the fuzzer plays the broker).
tt_add_fuzz(session_fuzz ${CMAKE_CURRENT_LIST_DIR}/session_fuzz.c)
