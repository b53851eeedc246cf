/* Errors, logging and version. */
#include <pthread.h>
#include <signal.h>
#include <tether/tether.h>

#include "actors/core/log.h"
#include "tt_test.h"

static void test_error_table(void) {
    static const int codes[] = {
#define X_(name, value, text) value,
        TT_ERR_TABLE(X_)
#undef X_
    };
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        TT_CHECK(codes[i] <= 0);
        TT_CHECK(strncmp(tt_err_name(codes[i]), "TT_", 3) == 0);
        TT_CHECK(strcmp(tt_strerror(codes[i]), "unknown error") != 0);
        for (size_t j = i + 1; j < n; j++) {
            TT_CHECK(codes[i] != codes[j]);
            TT_CHECK(strcmp(tt_err_name(codes[i]), tt_err_name(codes[j])) != 0);
        }
    }
    TT_CHECK_EQ_STR(tt_err_name(TT_ETIMEDOUT), "TT_ETIMEDOUT");
    TT_CHECK_EQ_STR(tt_strerror(TT_ETIMEDOUT), "timed out");
    TT_CHECK_EQ_STR(tt_strerror(12345), "unknown error");
    TT_CHECK_EQ_STR(tt_err_name(-777), "TT_E?");
}

typedef struct seen {
    int calls;
    tt_log_level level;
    char tag[32];
    char msg[128];
} seen;

static void capture(tt_log_level level, const char *tag, const char *msg, void *arg) {
    seen *s = arg;
    s->calls++;
    s->level = level;
    snprintf(s->tag, sizeof s->tag, "%s", tag);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
}

static void test_log_hook(void) {
    seen s = { 0 };
    TTI_LOG(ERROR, "test", "silent by default %d", 1);      /* no handler: nothing */
    tt_log_set_handler(capture, &s, TT_LOG_WARN);
    TTI_LOG(DEBUG, "test", "below the level");
    TT_CHECK_EQ_INT(s.calls, 0);
    TTI_LOG(WARN, "session", "keepalive missed (%u ms)", 1500u);
    TT_CHECK_EQ_INT(s.calls, 1);
    TT_CHECK_EQ_INT(s.level, TT_LOG_WARN);
    TT_CHECK_EQ_STR(s.tag, "session");
    TT_CHECK_EQ_STR(s.msg, "keepalive missed (1500 ms)");
    tt_log_set_handler(NULL, NULL, TT_LOG_TRACE);          /* silenced again */
    TTI_LOG(ERROR, "test", "after reset");
    TT_CHECK_EQ_INT(s.calls, 1);
}

static void test_version(void) {
    TT_CHECK_EQ_STR(tt_version(), TT_VERSION_STRING);
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", TT_VERSION_MAJOR, TT_VERSION_MINOR, TT_VERSION_PATCH);
    TT_CHECK_EQ_STR(tt_version(), buf);
}

static void test_init_idempotent(void) {
    TT_CHECK_EQ_INT(tt_init(), TT_OK);
    TT_CHECK_EQ_INT(tt_init(), TT_OK);
    struct sigaction sa;                                    /* a dead peer is not fatal */
    TT_CHECK(sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN);
    tt_allocator a = TT_OPTS_INIT(tt_allocator);
    TT_CHECK_EQ_INT(tt_set_allocator(&a), TT_EBUSY);       /* too late after init */
}

static void test_runtime_opts_checked(void) {
    tt_runtime *rt = (tt_runtime *)1;
    TT_CHECK_EQ_INT(tt_runtime_new(NULL, NULL), TT_EINVAL);
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.size = 2;                                             /* not a real struct */
    TT_CHECK_EQ_INT(tt_runtime_new(&rt, &o), TT_EINVAL);
    TT_CHECK(rt == NULL);
    o = TT_OPTS_INIT(tt_runtime_opts);
    o.loop_threads = 100000;
    TT_CHECK_EQ_INT(tt_runtime_new(&rt, &o), TT_EINVAL);
    tt_actor *a = (tt_actor *)1;
    TT_CHECK_EQ_INT(tt_actor_new(NULL, &a), TT_EINVAL);
    tt_future *f = tt_actor_call(NULL, NULL, NULL, NULL);
    TT_CHECK_EQ_INT(tt_future_result(f), TT_EINVAL);
    tt_future_free(f);
}

TT_TEST_LIST = {
    { "error_table", test_error_table },
    { "log_hook", test_log_hook },
    { "version", test_version },
    { "init_idempotent", test_init_idempotent },
    { "runtime_opts_checked", test_runtime_opts_checked },
    { NULL, NULL },
};
