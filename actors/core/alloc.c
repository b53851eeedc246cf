/* Allocation hooks. The hooks are fixed before tt_init(), so reading them needs no lock. */
#include "actors/core/alloc.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
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

/* ---- Recycled blocks ------------------------------------------------------ */

#if defined(__SANITIZE_ADDRESS__) || defined(TT_NO_BLOCK_CACHE)
#define BLK_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BLK_CACHE 0
#endif
#endif
#ifndef BLK_CACHE
#define BLK_CACHE 1
#endif

#if BLK_CACHE

#define BLK_CLASSES 4                /* 128, 256, 512, 1024 bytes with the header */
#define BLK_BATCH 64
#define BLK_DEPOT_MAX 64             /* batches kept per class; beyond, memory goes back */
#define BLK_HDR 16                   /* keeps the block 16-byte aligned */

typedef struct blk {
    struct blk *next;                /* while cached */
    uint32_t cls;                    /* BLK_CLASSES: not cached */
} blk;

typedef struct batch {
    blk *head;
} batch;

static struct {
    pthread_mutex_t lock;
    batch b[BLK_CLASSES][BLK_DEPOT_MAX];
    unsigned n[BLK_CLASSES];
} g_depot = { .lock = PTHREAD_MUTEX_INITIALIZER };

typedef struct blk_cache {
    blk *head[BLK_CLASSES];
    unsigned n[BLK_CLASSES];
    bool registered;
} blk_cache;

static _Thread_local blk_cache t_cache;
static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;

static void free_list(blk *b) {
    while (b) {
        blk *next = b->next;
        tti_free(b);
        b = next;
    }
}

/* A batch to the depot, or back to the allocator when the depot is full. */
static void depot_put(unsigned cls, blk *head) {
    pthread_mutex_lock(&g_depot.lock);
    if (g_depot.n[cls] < BLK_DEPOT_MAX) {
        g_depot.b[cls][g_depot.n[cls]++].head = head;
        head = NULL;
    }
    pthread_mutex_unlock(&g_depot.lock);
    free_list(head);
}

static blk *depot_take(unsigned cls) {
    blk *head = NULL;
    pthread_mutex_lock(&g_depot.lock);
    if (g_depot.n[cls] > 0) head = g_depot.b[cls][--g_depot.n[cls]].head;
    pthread_mutex_unlock(&g_depot.lock);
    return head;
}

/* A thread that ends hands its cache to the depot. */
static void cache_exit(void *arg) {
    blk_cache *c = arg;
    for (unsigned k = 0; k < BLK_CLASSES; k++) {
        if (c->head[k]) depot_put(k, c->head[k]);
        c->head[k] = NULL;
        c->n[k] = 0;
    }
}

static void key_make(void) { (void)pthread_key_create(&g_key, cache_exit); }

static blk_cache *cache(void) {
    blk_cache *c = &t_cache;
    if (!c->registered) {
        c->registered = true;
        pthread_once(&g_key_once, key_make);
        (void)pthread_setspecific(g_key, c);
    }
    return c;
}

static unsigned cls_of(size_t total) {
    if (total <= 128) return 0;
    if (total <= 256) return 1;
    if (total <= 512) return 2;
    if (total <= 1024) return 3;
    return BLK_CLASSES;
}

void *tti_blk_alloc(size_t n) {
    if (n > SIZE_MAX - BLK_HDR) return NULL;
    /* A caller's own allocator sees every block come and go: no cache. */
    unsigned k = g_alloc.malloc_fn == sys_malloc ? cls_of(n + BLK_HDR) : BLK_CLASSES;
    blk *b = NULL;
    if (k < BLK_CLASSES) {
        blk_cache *c = cache();
        if (!c->head[k]) {
            c->head[k] = depot_take(k);
            for (blk *x = c->head[k]; x; x = x->next) c->n[k]++;
        }
        if ((b = c->head[k]) != NULL) {
            c->head[k] = b->next;
            c->n[k]--;
        }
    }
    if (!b) {
        b = tti_malloc(k < BLK_CLASSES ? (size_t)128 << k : n + BLK_HDR);
        if (!b) return NULL;
        b->cls = k;
    }
    return (char *)b + BLK_HDR;
}

void tti_blk_free(void *p) {
    if (!p) return;
    blk *b = (blk *)(void *)((char *)p - BLK_HDR);
    unsigned k = b->cls;
    if (k >= BLK_CLASSES) {
        tti_free(b);
        return;
    }
    blk_cache *c = cache();
    if (c->n[k] >= 2 * BLK_BATCH) {
        /* Keep one batch here, send the other to the depot. */
        blk *give = c->head[k], *x = give;
        for (unsigned i = 1; i < BLK_BATCH; i++) x = x->next;
        c->head[k] = x->next;
        x->next = NULL;
        c->n[k] -= BLK_BATCH;
        depot_put(k, give);
    }
    b->next = c->head[k];
    c->head[k] = b;
    c->n[k]++;
}

#else

void *tti_blk_alloc(size_t n) { return tti_malloc(n); }
void tti_blk_free(void *p) { tti_free(p); }

#endif
