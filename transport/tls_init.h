/* Process-wide TLS library setup (wolfSSL). */
#ifndef TTI_TRANSPORT_TLS_INIT_H
#define TTI_TRANSPORT_TLS_INIT_H

/* Initialise wolfSSL once; returns TT_OK or TT_ETLS. Called by tt_init(). */
int tti_tls_global_init(void);

#endif
