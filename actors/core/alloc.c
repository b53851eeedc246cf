/* Allocation hooks. The hooks are fixed before tt_init(), so reading them needs no lock. */
#include "actors/core/alloc.h"

#include <event2/event.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <tether/err.h>
#include <tether/log.h>

static void *sys_malloc(size_t n, void *arg) { (void)arg; return malloc(n); }
static void *sys_realloc(void *p, size_t n, void *arg) { (void)arg; return realloc(p, n); }
static void sys_free(void *p, void *arg) { (void)arg; free(p); }

static tt_allocator g_alloc = { sizeof(tt_allocator), sys_malloc, sys_realloc, sys_free, NULL };
static atomic_bool g_frozen;

int tt_set_allocator(const tt_allocator *a) {
    if (atomic_load(&g_frozen)) return TT_EBUSY;
    if (!a) {
        g_alloc = (tt_allocator){ sizeof(tt_allocator), sys_malloc, sys_realloc, sys_free, NULL };
        return TT_OK;
    }
    if (a->size < sizeof(tt_allocator) || !a->malloc_fn || !a->realloc_fn || !a->free_fn)
        return TT_EINVAL;
    g_alloc = *a;
    return TT_OK;
}

void tti_alloc_freeze(void) { atomic_store(&g_frozen, true); }

void *tti_malloc(size_t n) { return g_alloc.malloc_fn(n ? n : 1, g_alloc.arg); }

void *tti_calloc(size_t count, size_t n) {
    if (n && count > SIZE_MAX / n) return NULL;
    size_t total = count * n;
    void *p = tti_malloc(total);
    if (p) memset(p, 0, total);
    return p;
}

void *tti_realloc(void *p, size_t n) { return g_alloc.realloc_fn(p, n ? n : 1, g_alloc.arg); }

void tti_free(void *p) {
    if (p) g_alloc.free_fn(p, g_alloc.arg);
}

void *tti_memdup(const void *p, size_t n) {
    void *q = tti_malloc(n);
    if (q && n) memcpy(q, p, n);
    return q;
}

char *tti_strndup(const char *s, size_t n) {
    char *q = tti_malloc(n + 1);
    if (!q) return NULL;
    memcpy(q, s, n);
    q[n] = '\0';
    return q;
}

char *tti_strdup(const char *s) { return tti_strndup(s, strlen(s)); }

static void *ev_malloc(size_t n) { return tti_malloc(n); }
static void *ev_realloc(void *p, size_t n) { return tti_realloc(p, n); }
static void ev_free(void *p) { tti_free(p); }

void tti_alloc_install_libevent(void) {
    if (g_alloc.malloc_fn != sys_malloc)
        event_set_mem_functions(ev_malloc, ev_realloc, ev_free);
}
