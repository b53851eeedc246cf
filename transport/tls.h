/* TLS engine over memory buffers (wolfSSL with custom I/O callbacks).
 *
 * The engine never touches a socket or an event loop. The owner of the connection
 * feeds it ciphertext read from the network (`cipher_in`) and writes out whatever it
 * appends to `cipher_out`; plaintext goes in and out through other evbuffers:
 *
 *   socket --read--> cipher_in --tti_tls_read--> plain_out --> MQTT session
 *   MQTT session --> plain_in --tti_tls_write--> cipher_out --write--> socket
 *
 * Every call may append to cipher_out (handshake flights, alerts, TLS 1.3 key update
 * replies), so after any call the owner flushes cipher_out to the socket.
 *
 * Threads: a tti_tls_ctx is immutable once made and may be shared by any number of
 * connections on any threads; tti_tls_ctx_ref/unref are thread-safe. A tti_tls
 * belongs to one thread (its connection's loop thread) and is not thread-safe.
 *
 * wolfSSL must be initialised first (tt_init(), or tti_tls_global_init()).
 *
 * Errors are tt_err values; on TT_ETLS, tti_tls_error() gives the reason text and the
 * wolfSSL error code, e.g. "certificate verify failed: certificate has expired". */
#ifndef TTI_TRANSPORT_TLS_H
#define TTI_TRANSPORT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <tether/err.h>
#include <tether/mqtt.h>

struct evbuffer;

typedef struct tti_tls_ctx tti_tls_ctx;
typedef struct tti_tls tti_tls;

/* Flags for tti_tls_ctx_new(). 0 is a client speaking TLS 1.2 or 1.3. */
enum {
    TTI_TLS_SERVER  = 1u << 0,  /* server side (tests): needs opts cert_file + key_file */
    TTI_TLS_ONLY_12 = 1u << 1,  /* TLS 1.2 only */
    TTI_TLS_ONLY_13 = 1u << 2   /* TLS 1.3 only */
};

/* Longest reason text kept by tti_tls_error() (including the NUL). */
#define TTI_TLS_REASON_MAX 192

/**
 * Make a context shared by many connections.
 *
 * Client (flags without TTI_TLS_SERVER):
 *   trust: opts->ca_file and/or opts->ca_dir (PEM; unparsable files in ca_dir are
 *   skipped); with neither, the system store. Peer verification is on unless
 *   opts->insecure, which turns off certificate and host-name checks altogether.
 *   opts->cert_file + opts->key_file: client certificate (PEM chain) and key.
 * Server (TTI_TLS_SERVER, for tests): cert_file + key_file are the server's; with
 *   ca_file or ca_dir set (and not insecure) a client certificate signed by them is
 *   required, otherwise none is asked for.
 * Versions: TLS 1.2 and 1.3; TTI_TLS_ONLY_12 or TTI_TLS_ONLY_13 pins one.
 * opts->sni and opts->alpn are per connection: pass them to tti_tls_new().
 *
 * Ownership: opts is read during the call only. The result holds one reference.
 * Thread:    any.
 * Errors:    NULL, with *err set (err may be NULL) to TT_EINVAL (bad opts: key without
 *            certificate, server without certificate, both version flags), TT_ENOMEM,
 *            or TT_ETLS (a file cannot be loaded, key does not match certificate, no
 *            usable system store); `why` (may be NULL) receives a readable reason.
 */
tti_tls_ctx *tti_tls_ctx_new(const tt_tls_opts *opts, unsigned flags, tt_err *err,
                             char *why, size_t whylen);

/** Take another reference. Thread: any. Returns ctx. */
tti_tls_ctx *tti_tls_ctx_ref(tti_tls_ctx *ctx);

/** Drop a reference; the last one frees the context. NULL is a no-op. Thread: any. */
void tti_tls_ctx_unref(tti_tls_ctx *ctx);

/**
 * Start one connection.
 *
 * host: the name or address connected to; sni: the name to send and verify instead
 *   (NULL: host). The name verified is sni or host; an IP literal (IPv4 or IPv6,
 *   without brackets) is checked against the certificate's IP addresses and is never
 *   sent as SNI. Verification is skipped only for an insecure context. host may be
 *   NULL only for a server or an insecure client.
 * alpn: comma-separated protocol list ("mqtt", "x-amzn-mqtt-ca"), or NULL. A client
 *   offers it; a server that selects none of ours (or ignores ALPN) does NOT fail the
 *   handshake: many MQTT brokers ignore ALPN. Check tti_tls_alpn() if it matters.
 *   A server (tests) accepts one of these protocols and fails a client that offers
 *   ALPN without any of them.
 *
 * Ownership: strings are copied. The connection holds a reference on ctx.
 * Thread:    the connection's owning thread.
 * Errors:    NULL, with *err (may be NULL) set to TT_ENOMEM, TT_EINVAL (no host for a
 *            verifying client, empty or too long ALPN list) or TT_ETLS.
 */
tti_tls *tti_tls_new(tti_tls_ctx *ctx, const char *host, const char *sni, const char *alpn,
                     tt_err *err);

/**
 * Advance the handshake: consume what it can from cipher_in, append its flights to
 * cipher_out.
 * Returns TT_OK when done (and on every later call), TT_EAGAIN when it needs more
 * input from the peer, TT_ETLS on failure (reason in tti_tls_error(); cipher_out may
 * hold an alert worth sending before closing), TT_ECONNRESET if the peer closed.
 * After TT_OK call tti_tls_read() at once: wolfSSL may already hold application
 * records that arrived with the last handshake flight.
 * Thread: owning thread.
 */
int tti_tls_handshake(tti_tls *t, struct evbuffer *cipher_in, struct evbuffer *cipher_out);

/**
 * Decrypt every complete record in cipher_in (partial records stay inside wolfSSL
 * until the rest arrives) and append the plaintext to plain_out. May append to
 * cipher_out (TLS 1.3 key update replies). Handshake must be done.
 * Returns the number of plaintext bytes appended (0 is normal: need more input),
 * TT_ECONNRESET when the peer sent close_notify (plaintext that came before it is
 * already in plain_out: consume it first), TT_ETLS on error, TT_ENOMEM.
 * Thread: owning thread.
 */
int tti_tls_read(tti_tls *t, struct evbuffer *cipher_in, struct evbuffer *plain_out,
                 struct evbuffer *cipher_out);

/**
 * Encrypt all of plain_in (drained) into records of at most 16 KiB appended to
 * cipher_out. Handshake must be done.
 * Returns TT_OK, TT_ETLS (reason in tti_tls_error()), TT_ENOMEM, or TT_ECLOSED after
 * tti_tls_close(). On error, plain_in keeps what was not encrypted.
 * Thread: owning thread.
 */
int tti_tls_write(tti_tls *t, struct evbuffer *plain_in, struct evbuffer *cipher_out);

/**
 * Append a close_notify alert to cipher_out (once; later writes fail with
 * TT_ECLOSED). Does not wait for the peer's. Returns TT_OK or TT_ETLS.
 * Thread: owning thread.
 */
int tti_tls_close(tti_tls *t, struct evbuffer *cipher_out);

/**
 * TLS 1.3: append a KeyUpdate asking the peer to update its keys too (long-lived
 * connections). The peer's reply arrives through tti_tls_read().
 * Returns TT_OK, TT_ENOTSUP (TLS 1.2), TT_EINVAL (handshake not done), TT_ECLOSED,
 * TT_ETLS. Thread: owning thread.
 */
int tti_tls_key_update(tti_tls *t, struct evbuffer *cipher_out);

/** True once the handshake completed. */
bool tti_tls_is_done(const tti_tls *t);

/** The ALPN protocol the server selected, or NULL (none, or handshake not done).
 * Borrowed until tti_tls_free(). */
const char *tti_tls_alpn(tti_tls *t);

/** The negotiated version ("TLSv1.2", "TLSv1.3"). Static string. */
const char *tti_tls_version(const tti_tls *t);

/**
 * The reason of the last TT_ETLS (or TT_ECONNRESET), "" if none. *code (may be NULL)
 * receives the wolfSSL error code (negative) or 0. Borrowed until the next call on t.
 */
const char *tti_tls_error(const tti_tls *t, int *code);

/** Free the connection (sends nothing; see tti_tls_close) and drop its context
 * reference. NULL is a no-op. Thread: owning thread. */
void tti_tls_free(tti_tls *t);

/**
 * Free this thread's wolfSSL state: the fixed-point ECC cache (FP_ECC) that this
 * wolfSSL build keeps per thread, several MB once a thread has done ECDSA/ECDHE.
 * Every thread that ran TLS calls it before it exits (loop threads at teardown);
 * the thread that calls wolfSSL_Cleanup() need not. Thread: the exiting thread.
 */
void tti_tls_thread_done(void);

#endif /* TTI_TRANSPORT_TLS_H */
