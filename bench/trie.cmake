# Topic-filter trie against a linear scan of the same filters, on one core.
# The trie is compiled in here until actors/CMakeLists.txt lists session/trie.c.
get_target_property(_tt_actor_srcs tt_actors SOURCES)
list(FILTER _tt_actor_srcs INCLUDE REGEX "(^|/)session/trie\\.c$")
set(_tt_trie_src)
if(NOT _tt_actor_srcs)
  set(_tt_trie_src ${PROJECT_SOURCE_DIR}/actors/session/trie.c)
endif()
tt_add_bench(trie_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/trie_bench.c ${_tt_trie_src})
