/* Internal allocation entry points; every tether allocation goes through these. */
#ifndef TTI_CORE_ALLOC_H
#define TTI_CORE_ALLOC_H

#include <stddef.h>

void *tti_malloc(size_t n);
void *tti_calloc(size_t count, size_t n);   /* zeroed; overflow-checked */
void *tti_realloc(void *p, size_t n);
void  tti_free(void *p);
char *tti_strdup(const char *s);
char *tti_strndup(const char *s, size_t n);
void *tti_memdup(const void *p, size_t n);

/* Blocks for the per-message path (futures with their request, incoming
 * messages): allocated on one thread and often freed on another, which
 * defeats malloc's thread caches. Small blocks are recycled through a
 * per-thread cache, refilled and drained in batches of 64 from a shared
 * depot (one lock per batch). Larger blocks go to tti_malloc. Any thread.
 * With a caller's allocator (tt_set_allocator) nothing is cached, so it sees
 * every block; sanitizer builds have no cache either. */
void *tti_blk_alloc(size_t n);
void tti_blk_free(void *p);

/* Install the hooks into libevent (called once by tt_init). */
void tti_alloc_install_libevent(void);
/* True once tt_init() ran; the allocator can no longer change. */
void tti_alloc_freeze(void);

#define TTI_CONTAINER_OF(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
