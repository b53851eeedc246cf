/* tt_init: once per process, before any event base exists. */
#include <event2/thread.h>
#include <pthread.h>
#include <signal.h>
#include <tether/err.h>
#include <tether/log.h>
#include <tether/version.h>

#include "actors/core/alloc.h"
#include "actors/core/log.h"
#include "transport/tls_init.h"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void (*_Atomic g_thread_exit)(void);

void tti_set_thread_exit_hook(void (*fn)(void)) { g_thread_exit = fn; }

void tti_run_thread_exit_hook(void) {
    void (*fn)(void) = g_thread_exit;
    if (fn) fn();
}
static int g_init_rc = TT_OK;

static void init_once(void) {
    tti_alloc_freeze();
    /* Sockets are written through libevent's writev, which raises SIGPIPE when
     * the peer is gone: a dead broker must be an error code, not the end of
     * the process. Only the default disposition is changed. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL && !(sa.sa_flags & SA_SIGINFO)) {
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }
    tti_alloc_install_libevent();
    if (evthread_use_pthreads() != 0) {
        TTI_LOG(ERROR, "init", "evthread_use_pthreads failed");
        g_init_rc = TT_EINTERNAL;
        return;
    }
    g_init_rc = tti_tls_global_init();
}

int tt_init(void) {
    pthread_once(&g_once, init_once);
    return g_init_rc;
}

const char *tt_version(void) { return TT_VERSION_STRING; }
