/* tether — shared definitions for every public header. */
#ifndef TETHER_COMMON_H
#define TETHER_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(TT_STATIC)
#  define TT_API
#elif defined(_WIN32)
#  ifdef TT_BUILDING
#    define TT_API __declspec(dllexport)
#  else
#    define TT_API __declspec(dllimport)
#  endif
#else
#  define TT_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
#  define TT_BEGIN_DECLS extern "C" {
#  define TT_END_DECLS }
#else
#  define TT_BEGIN_DECLS
#  define TT_END_DECLS
#endif

/* Option structs start with `uint32_t size`; TT_OPTS_INIT(type) fills it in so
 * that a struct compiled against an older header is still read correctly. */
#define TT_OPTS_INIT(type) ((type){ .size = (uint32_t)sizeof(type) })

/* Timeouts are in milliseconds; TT_FOREVER waits without a limit. */
#define TT_FOREVER (-1)

#endif /* TETHER_COMMON_H */
