/* Counting allocator and descriptor count for tests (live_alloc.h). */
#include "live_alloc.h"

#include <dirent.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <tether/tether.h>

static atomic_long g_live;
static atomic_size_t g_largest;

static void note_size(size_t n) {
    size_t cur = atomic_load(&g_largest);
    while (n > cur && !atomic_compare_exchange_weak(&g_largest, &cur, n)) {
    }
}

static void *h_malloc(size_t n, void *arg) {
    (void)arg;
    void *p = malloc(n);
    if (p) {
        note_size(n);
        atomic_fetch_add(&g_live, 1);
    }
    return p;
}

static void *h_realloc(void *p, size_t n, void *arg) {
    (void)arg;
    void *q = realloc(p, n);
    if (q) {
        note_size(n);
        if (!p) atomic_fetch_add(&g_live, 1);
    }
    return q;
}

static void h_free(void *p, void *arg) {
    (void)arg;
    if (p) atomic_fetch_sub(&g_live, 1);
    free(p);
}

void tt_live_hook(tt_log_level log_level) {
    static bool hooked;
    if (hooked) return;
    hooked = true;
    tt_allocator a = TT_OPTS_INIT(tt_allocator);
    a.malloc_fn = h_malloc;
    a.realloc_fn = h_realloc;
    a.free_fn = h_free;
    if (tt_set_allocator(&a) != TT_OK) abort();
    if (getenv("TT_TEST_LOG")) tt_log_set_handler(tt_log_stderr, NULL, log_level);
    tt_runtime *rt = NULL;
    if (tt_runtime_new(&rt, NULL) != TT_OK) abort();
    tt_runtime_free(rt);
}

tt_runtime *tt_live_runtime(uint32_t loops, tt_log_level level, long *base) {
    tt_live_hook(level);
    *base = tt_live_blocks();
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.loop_threads = loops;
    tt_runtime *rt = NULL;
    if (tt_runtime_new(&rt, &o) != TT_OK) abort();
    return rt;
}

long tt_live_runtime_free(tt_runtime *rt, long base) {
    tt_runtime_free(rt);
    return tt_live_blocks() - base;
}

long tt_live_blocks(void) { return atomic_load(&g_live); }

size_t tt_live_largest(void) { return atomic_load(&g_largest); }

void tt_live_largest_reset(void) { atomic_store(&g_largest, 0); }

int tt_open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1;                     /* opendir's own descriptor */
}
