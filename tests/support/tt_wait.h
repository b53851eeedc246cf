/* Waiting in integration tests: on futures, and on counters that callbacks
 * bump on other threads. */
#ifndef TT_WAIT_H
#define TT_WAIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <tether/tether.h>
#include <unistd.h>

/* How long a test waits for anything that should happen at once. */
#ifndef TT_WAIT_MS
#define TT_WAIT_MS 10000
#endif

/* Waits up to `ms` for `f`, says on stderr why it failed, and frees it. */
static inline tt_err tt_wait_free_ms(tt_future *f, int32_t ms) {
    tt_err rc = tt_future_wait(f, ms);
    if (rc != TT_OK) {
        const char *why = NULL;
        int detail = tt_future_detail(f, &why);
        fprintf(stderr, "  future failed: %s (detail %d, %s)\n", tt_err_name(rc), detail, why ? why : "");
    }
    tt_future_free(f);
    return rc;
}

static inline tt_err tt_wait_free(tt_future *f) { return tt_wait_free_ms(f, TT_WAIT_MS); }

/* `*v`, read under `lock`. */
static inline int tt_locked_int(pthread_mutex_t *lock, const int *v) {
    pthread_mutex_lock(lock);
    int n = *v;
    pthread_mutex_unlock(lock);
    return n;
}

/* Polls `*v` (under `lock`) every 5 ms until it reaches `n`; false when it
 * has not after TT_WAIT_MS. */
static inline bool tt_wait_count(pthread_mutex_t *lock, const int *v, int n) {
    for (int i = 0; i < TT_WAIT_MS / 5 && tt_locked_int(lock, v) < n; i++) usleep(5000);
    return tt_locked_int(lock, v) >= n;
}

#endif
