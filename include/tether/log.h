/* tether — logging hook and allocation hooks. */
#ifndef TETHER_LOG_H
#define TETHER_LOG_H

#include <tether/common.h>

TT_BEGIN_DECLS

typedef enum tt_log_level {
    TT_LOG_TRACE = 0,
    TT_LOG_DEBUG = 1,
    TT_LOG_INFO  = 2,
    TT_LOG_WARN  = 3,
    TT_LOG_ERROR = 4,
    TT_LOG_OFF   = 5
} tt_log_level;

/**
 * Receives one log record. `tag` names the component ("actor", "session"),
 * `msg` is the formatted text without a trailing newline. Both are borrowed
 * for the duration of the call. Records never contain payloads, passwords,
 * tokens or keys: only ids, sizes and reason codes.
 * Thread: any library thread, possibly several at once; keep it quick.
 */
typedef void (*tt_log_fn)(tt_log_level level, const char *tag, const char *msg, void *arg);

/**
 * Install the log handler and the lowest level it receives. Logging is
 * silent until this is called; fn == NULL or TT_LOG_OFF silences it again.
 * Thread: any; records already being formatted may still reach the old
 * handler for the duration of its current call.
 */
TT_API void tt_log_set_handler(tt_log_fn fn, void *arg, tt_log_level min_level);

/** A handler that writes "level tag: msg" lines to stderr (arg unused). */
TT_API void tt_log_stderr(tt_log_level level, const char *tag, const char *msg, void *arg);

/** Allocation hooks. All three must be set; they must be thread-safe. */
typedef struct tt_allocator {
    uint32_t size;                              /* TT_OPTS_INIT(tt_allocator) */
    void *(*malloc_fn)(size_t n, void *arg);
    void *(*realloc_fn)(void *p, size_t n, void *arg);
    void  (*free_fn)(void *p, void *arg);
    void   *arg;
} tt_allocator;

/**
 * Route every allocation of tether (and of libevent, when called before any
 * libevent use in the process) through `a`. NULL restores malloc/free.
 * Thread: call once, before tt_init() and before any other tether call.
 * Errors: TT_EBUSY after tt_init(); TT_EINVAL for a missing function.
 */
TT_API int tt_set_allocator(const tt_allocator *a);

/**
 * One-time process setup: enables libevent's pthreads locking (before any
 * event base exists), initialises wolfSSL, and sets SIGPIPE to ignored if it
 * still has its default action (a closed connection is then an error code,
 * not a killed process). Idempotent and thread-safe; tt_runtime_new() calls
 * it, so calling it yourself is optional.
 * Returns TT_OK or TT_EINTERNAL (detail in the log).
 */
TT_API int tt_init(void);

TT_END_DECLS

#endif /* TETHER_LOG_H */
