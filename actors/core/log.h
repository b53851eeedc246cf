/* Internal logging. TTI_LOG(WARN, "session", "keepalive missed (%u ms)", ms);
 * Log ids, sizes and reason codes — never payloads, passwords, tokens or keys. */
#ifndef TTI_CORE_LOG_H
#define TTI_CORE_LOG_H

#include <stdatomic.h>
#include <tether/log.h>

#ifndef TT_LOG_COMPILE_MIN
#define TT_LOG_COMPILE_MIN TT_LOG_TRACE
/* One process-wide hook run by every tether thread as it ends (the TLS layer
 * frees per-thread caches there). Set once, from tt_init(). */
void tti_set_thread_exit_hook(void (*fn)(void));
void tti_run_thread_exit_hook(void);

#endif

extern atomic_int tti_log_min_level;

void tti_log_write(tt_log_level level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define TTI_LOG(level, tag, ...)                                                   \
    do {                                                                           \
        if (TT_LOG_##level >= TT_LOG_COMPILE_MIN &&                                \
            TT_LOG_##level >= atomic_load_explicit(&tti_log_min_level,             \
                                                   memory_order_relaxed))          \
            tti_log_write(TT_LOG_##level, tag, __VA_ARGS__);                       \
    } while (0)

/* One process-wide hook run by every tether thread as it ends (the TLS layer
 * frees per-thread caches there). Set once, from tt_init(). */
void tti_set_thread_exit_hook(void (*fn)(void));
void tti_run_thread_exit_hook(void);

#endif
