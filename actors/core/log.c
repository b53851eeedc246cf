/* The log hook: silent by default; the level check is one relaxed load. */
#include "actors/core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

atomic_int tti_log_min_level = TT_LOG_OFF;

/* fn and arg change together, so readers take the read side of this lock; it is
 * only reached when a record passes the level check, never on a silent path. */
static pthread_rwlock_t g_log_lock = PTHREAD_RWLOCK_INITIALIZER;
static tt_log_fn g_log_fn;
static void *g_log_arg;

void tt_log_set_handler(tt_log_fn fn, void *arg, tt_log_level min_level) {
    pthread_rwlock_wrlock(&g_log_lock);
    g_log_fn = fn;
    g_log_arg = arg;
    atomic_store(&tti_log_min_level, fn ? (int)min_level : (int)TT_LOG_OFF);
    pthread_rwlock_unlock(&g_log_lock);
}

void tti_log_write(tt_log_level level, const char *tag, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pthread_rwlock_rdlock(&g_log_lock);
    if (g_log_fn) g_log_fn(level, tag, buf, g_log_arg);
    pthread_rwlock_unlock(&g_log_lock);
}

void tt_log_stderr(tt_log_level level, const char *tag, const char *msg, void *arg) {
    static const char *const names[] = { "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF" };
    (void)arg;
    fprintf(stderr, "%-5s %s: %s\n", names[level <= TT_LOG_OFF ? level : TT_LOG_OFF], tag, msg);
}
