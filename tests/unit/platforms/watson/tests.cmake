# Watson IoT adapter: configuration from YAML, environment and INI; reading topics (label unit).
tt_add_test(wiotp_config_test LABEL unit SOURCES ${CMAKE_CURRENT_LIST_DIR}/wiotp_config_test.c)
tt_add_test(wiotp_topic_test LABEL unit SOURCES ${CMAKE_CURRENT_LIST_DIR}/wiotp_topic_test.c)
