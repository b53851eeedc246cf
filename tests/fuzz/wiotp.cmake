# The Watson IoT device, gateway and application fed arbitrary platform
# publishes (commands, events, status, management requests and answers) over
# loopback TCP (the fuzzer plays the broker).
tt_add_fuzz(wiotp_inbound_fuzz ${CMAKE_CURRENT_LIST_DIR}/wiotp_inbound_fuzz.c)
