/* tt_init: once per process, before any event base exists. */
#include <event2/thread.h>
#include <pthread.h>
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
