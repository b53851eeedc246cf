# The ThingsBoard device and gateway fed arbitrary server publishes on the
# platform's topics over loopback TCP (the fuzzer plays the broker).
tt_add_fuzz(tb_inbound_fuzz ${CMAKE_CURRENT_LIST_DIR}/tb_inbound_fuzz.c)
