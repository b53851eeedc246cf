# TLS engine over memory buffers: a client and a server engine pump evbuffers between
# each other, no sockets. Certificates come from the openssl tool at test time.
tt_add_test(tls_test LABEL unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tls_test.c ${PROJECT_SOURCE_DIR}/tests/support/certs.c)
# Proxy tunnels (SOCKS5, HTTP CONNECT) as state machines over evbuffers.
tt_add_test(proxy_test LABEL unit SOURCES ${CMAKE_CURRENT_LIST_DIR}/proxy_test.c)
# Plain TCP against a peer socket of the test's own on loopback, on a private
# event base; no fixed ports, every wait bounded. Sockets, so not `unit`.
tt_add_test(tcp_test LABEL integration SOURCES ${CMAKE_CURRENT_LIST_DIR}/tcp_test.c)
