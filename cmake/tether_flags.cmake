# Warnings, sanitizers and the helper every folder uses to declare its object library.
set(TT_WARN_FLAGS -Wall -Wextra -Wshadow -Wconversion -Wno-sign-conversion
    -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wformat=2)
if(TT_WERROR)
  list(APPEND TT_WARN_FLAGS -Werror)
endif()

if(TT_SANITIZE)
  string(REPLACE ";" "," _tt_san "${TT_SANITIZE}")
  add_compile_options(-fsanitize=${_tt_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_tt_san})
endif()

# tt_object_library(name src...) — one object library per folder.
function(tt_object_library name)
  add_library(${name} OBJECT ${ARGN})
  target_include_directories(${name}
    PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_BINARY_DIR}/include
    PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_include_directories(${name} SYSTEM PRIVATE ${TT_DEP_INCLUDES})
  target_compile_options(${name} PRIVATE ${TT_WARN_FLAGS})
  target_compile_definitions(${name} PRIVATE TT_BUILDING _GNU_SOURCE)
endfunction()
