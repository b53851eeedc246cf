/* wolfSSL global initialisation. */
#include "transport/tls_init.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <tether/err.h>

#include "actors/core/log.h"
#include "transport/tls.h"

int tti_tls_global_init(void) {
    int rc = wolfSSL_Init();
    if (rc != WOLFSSL_SUCCESS) {
        TTI_LOG(ERROR, "tls", "wolfSSL_Init failed (%d)", rc);
        return TT_ETLS;
    }
    tti_set_thread_exit_hook(tti_tls_thread_done);
    return TT_OK;
}
