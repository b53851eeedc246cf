# The fleet simulator's pieces without sockets (label unit): the histogram
# against sorted arrays, the profiles' payloads, the report's JSON and merge.
tt_add_test(sim_test LABEL unit SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim_test.c)
