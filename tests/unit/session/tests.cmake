# MQTT session internals (label unit).
# The trie is compiled in here until actors/CMakeLists.txt lists session/trie.c;
# once it does, the object library provides it and this adds nothing.
get_target_property(_tt_actor_srcs tt_actors SOURCES)
list(FILTER _tt_actor_srcs INCLUDE REGEX "(^|/)session/trie\\.c$")
set(_tt_trie_src)
if(NOT _tt_actor_srcs)
  set(_tt_trie_src ${PROJECT_SOURCE_DIR}/actors/session/trie.c)
endif()
tt_add_test(trie_test LABEL unit SOURCES ${CMAKE_CURRENT_LIST_DIR}/trie_test.c ${_tt_trie_src})
