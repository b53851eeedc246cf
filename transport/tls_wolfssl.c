/* TLS engine over evbuffers: wolfSSL with custom I/O callbacks (see tls.h).
 *
 * The I/O callbacks read from and write to the evbuffers of the call in progress:
 * t->in / t->out are set on entry to each engine call and cleared on return, so
 * wolfSSL only ever touches them inside a call, on the owning thread. A missing
 * buffer reads as "would block". */
#include "transport/tls.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include <event2/buffer.h>

#include "actors/core/alloc.h"
#include "actors/core/log.h"

#define TLS_RECORD_MAX   16384u   /* plaintext bytes per TLS record */
#define TLS_DIRECT_MIN   2048u    /* contiguous plaintext worth a record of its own */
#define TLS_READ_MAX     (1 << 30) /* stop a read call after this much plaintext */
#define TLS_ALPN_MAX     255

struct tti_tls_ctx {
    atomic_int refs;
    WOLFSSL_CTX *wctx;
    bool server;
    bool verify;                  /* client: verify the peer (not insecure) */
};

struct tti_tls {
    tti_tls_ctx *ctx;
    WOLFSSL *ssl;
    struct evbuffer *in;          /* set only during an engine call */
    struct evbuffer *out;
    bool done;                    /* handshake completed */
    bool closed;                  /* close_notify sent */
    int code;                     /* last wolfSSL error code, 0 if none */
    char *name;                   /* the name or address verified, for messages */
    char alpn[TLS_ALPN_MAX + 1];  /* selected protocol, filled by tti_tls_alpn */
    char reason[TTI_TLS_REASON_MAX];
};

/* ---- helpers -------------------------------------------------------------------- */

static void tls_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void tls_why(char *why, size_t whylen, const char *fmt, ...) {
    if (!why || whylen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* wolfSSL's own text for an error code ("ASN no signer error to confirm failure"). */
static const char *tls_code_text(int code, char *buf, size_t len) {
    wolfSSL_ERR_error_string_n((unsigned long)(long)code, buf, len);
    /* The text is "error:<code>:...:<reason>" or just the reason: keep the reason. */
    const char *p = strrchr(buf, ':');
    return (p && p[1]) ? p + 1 : buf;
}

/* If s is an IP literal, write into out the form wolfSSL gives the certificate's IP
 * SAN entries (it compares text): dotted quad, or eight 4-digit upper-case hex groups
 * for IPv6 ("0000:...:0001" for "::1"). Returns false for anything else. */
static bool tls_ip_text(const char *s, char out[40]) {
    unsigned char a[16];
    if (inet_pton(AF_INET, s, a) == 1) {
        snprintf(out, 40, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
        return true;
    }
    if (inet_pton(AF_INET6, s, a) != 1) return false;
    char *p = out;
    for (int i = 0; i < 16; i += 2, p += 5)
        snprintf(p, 6, "%02X%02X%s", a[i], a[i + 1], i < 14 ? ":" : "");
    return true;
}

/* ---- I/O callbacks -------------------------------------------------------------- */

static int tls_recv_cb(WOLFSSL *ssl, char *buf, int sz, void *arg) {
    tti_tls *t = arg;
    (void)ssl;
    if (!t->in || sz <= 0) return WOLFSSL_CBIO_ERR_WANT_READ;
    int n = evbuffer_remove(t->in, buf, (size_t)sz);
    if (n < 0) return WOLFSSL_CBIO_ERR_GENERAL;
    if (n == 0) return WOLFSSL_CBIO_ERR_WANT_READ;
    return n;
}

static int tls_send_cb(WOLFSSL *ssl, char *buf, int sz, void *arg) {
    tti_tls *t = arg;
    (void)ssl;
    if (!t->out) return WOLFSSL_CBIO_ERR_WANT_WRITE;   /* kept by wolfSSL for later */
    if (sz <= 0) return 0;
    if (evbuffer_add(t->out, buf, (size_t)sz) != 0) return WOLFSSL_CBIO_ERR_GENERAL;
    return sz;
}

/* ---- context -------------------------------------------------------------------- */

static WOLFSSL_METHOD *tls_method(unsigned flags) {
    bool server = (flags & TTI_TLS_SERVER) != 0;
    if (flags & TTI_TLS_ONLY_12)
        return server ? wolfTLSv1_2_server_method() : wolfTLSv1_2_client_method();
    if (flags & TTI_TLS_ONLY_13)
        return server ? wolfTLSv1_3_server_method() : wolfTLSv1_3_client_method();
    return server ? wolfSSLv23_server_method() : wolfSSLv23_client_method();
}

/* Load the trust anchors; returns TT_OK or TT_ETLS with `why` filled. */
static int tls_load_trust(WOLFSSL_CTX *w, const tt_tls_opts *o, bool server, char *why,
                          size_t whylen) {
    char eb[WOLFSSL_MAX_ERROR_SZ];
    int rc;
    if (o->ca_file) {
        rc = wolfSSL_CTX_load_verify_locations(w, o->ca_file, NULL);
        if (rc != WOLFSSL_SUCCESS) {
            tls_why(why, whylen, "cannot load CA file %s: %s", o->ca_file,
                    tls_code_text(rc, eb, sizeof eb));
            return TT_ETLS;
        }
    }
    if (o->ca_dir) {
        /* Skip files that are not certificates (CRLs, READMEs) instead of failing. */
        rc = wolfSSL_CTX_load_verify_locations_ex(w, NULL, o->ca_dir,
                                                  WOLFSSL_LOAD_FLAG_IGNORE_ERR);
        if (rc != WOLFSSL_SUCCESS) {
            tls_why(why, whylen, "cannot load CA directory %s: %s", o->ca_dir,
                    tls_code_text(rc, eb, sizeof eb));
            return TT_ETLS;
        }
    }
    if (!o->ca_file && !o->ca_dir && !server) {
        rc = wolfSSL_CTX_load_system_CA_certs(w);
        if (rc != WOLFSSL_SUCCESS)
            rc = wolfSSL_CTX_load_verify_locations_ex(w, NULL, "/etc/ssl/certs",
                                                      WOLFSSL_LOAD_FLAG_IGNORE_ERR);
        if (rc != WOLFSSL_SUCCESS) {
            tls_why(why, whylen, "no usable system CA store (set ca_file or ca_dir)");
            return TT_ETLS;
        }
    }
    return TT_OK;
}

tti_tls_ctx *tti_tls_ctx_new(const tt_tls_opts *o, unsigned flags, tt_err *err, char *why,
                             size_t whylen) {
    static const tt_tls_opts none = { .size = sizeof(tt_tls_opts) };
    bool server = (flags & TTI_TLS_SERVER) != 0;
    char eb[WOLFSSL_MAX_ERROR_SZ];
    tt_err rc = TT_ETLS;
    WOLFSSL_CTX *w = NULL;
    tti_tls_ctx *c = NULL;

    tls_why(why, whylen, "%s", "");
    if (!o) o = &none;
    if ((flags & TTI_TLS_ONLY_12) && (flags & TTI_TLS_ONLY_13)) {
        tls_why(why, whylen, "TLS 1.2 only and TLS 1.3 only together");
        rc = TT_EINVAL;
        goto fail;
    }
    if (!o->cert_file != !o->key_file || (server && !o->cert_file)) {
        tls_why(why, whylen, "%s",
                server ? "a server needs a certificate and its key"
                       : "cert_file and key_file go together");
        rc = TT_EINVAL;
        goto fail;
    }
    c = tti_calloc(1, sizeof *c);
    w = wolfSSL_CTX_new(tls_method(flags));
    if (!c || !w) {
        tls_why(why, whylen, "out of memory");
        rc = TT_ENOMEM;
        goto fail;
    }
    if (!(flags & (TTI_TLS_ONLY_12 | TTI_TLS_ONLY_13)) &&
        wolfSSL_CTX_SetMinVersion(w, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS) {
        tls_why(why, whylen, "cannot set TLS 1.2 as the minimum version");
        goto fail;
    }
    wolfSSL_CTX_SetIORecv(w, tls_recv_cb);
    wolfSSL_CTX_SetIOSend(w, tls_send_cb);

    bool want_trust = !o->insecure && (!server || o->ca_file || o->ca_dir);
    if (want_trust && (rc = (tt_err)tls_load_trust(w, o, server, why, whylen)) != TT_OK)
        goto fail;
    rc = TT_ETLS;
    if (!want_trust)
        wolfSSL_CTX_set_verify(w, WOLFSSL_VERIFY_NONE, NULL);
    else if (server)
        wolfSSL_CTX_set_verify(w, WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                               NULL);
    else
        wolfSSL_CTX_set_verify(w, WOLFSSL_VERIFY_PEER, NULL);

    if (o->cert_file) {
        int r = wolfSSL_CTX_use_certificate_chain_file(w, o->cert_file);
        if (r != WOLFSSL_SUCCESS) {
            tls_why(why, whylen, "cannot load certificate %s: %s", o->cert_file,
                    tls_code_text(r, eb, sizeof eb));
            goto fail;
        }
        r = wolfSSL_CTX_use_PrivateKey_file(w, o->key_file, WOLFSSL_FILETYPE_PEM);
        if (r != WOLFSSL_SUCCESS) {
            tls_why(why, whylen, "cannot load private key %s: %s", o->key_file,
                    tls_code_text(r, eb, sizeof eb));
            goto fail;
        }
        if (wolfSSL_CTX_check_private_key(w) != WOLFSSL_SUCCESS) {
            tls_why(why, whylen, "private key %s does not match certificate %s",
                    o->key_file, o->cert_file);
            goto fail;
        }
    }

    atomic_init(&c->refs, 1);
    c->wctx = w;
    c->server = server;
    c->verify = want_trust && !server;
    if (err) *err = TT_OK;
    return c;

fail:
    if (w) wolfSSL_CTX_free(w);
    tti_free(c);
    if (err) *err = rc;
    TTI_LOG(WARN, "tls", "context: %s (%s)", tt_err_name(rc), why ? why : "");
    return NULL;
}

tti_tls_ctx *tti_tls_ctx_ref(tti_tls_ctx *ctx) {
    atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
    return ctx;
}

void tti_tls_ctx_unref(tti_tls_ctx *ctx) {
    if (!ctx) return;
    if (atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1) return;
    wolfSSL_CTX_free(ctx->wctx);
    tti_free(ctx);
}

/* ---- connection ----------------------------------------------------------------- */

tti_tls *tti_tls_new(tti_tls_ctx *ctx, const char *host, const char *sni, const char *alpn,
                     tt_err *err) {
    tt_err rc = TT_ENOMEM;
    const char *name = (sni && *sni) ? sni : host;
    if (name && !*name) name = NULL;
    tti_tls *t = NULL;

    if (!ctx || (ctx->verify && !name) ||
        (alpn && (!*alpn || strlen(alpn) > TLS_ALPN_MAX))) {
        rc = TT_EINVAL;
        goto fail;
    }
    t = tti_calloc(1, sizeof *t);
    if (!t) goto fail;
    t->ssl = wolfSSL_new(ctx->wctx);
    if (!t->ssl) goto fail;
    t->ctx = tti_tls_ctx_ref(ctx);
    wolfSSL_SetIOReadCtx(t->ssl, t);
    wolfSSL_SetIOWriteCtx(t->ssl, t);

    rc = TT_ETLS;
    if (name && !ctx->server) {
        t->name = tti_strdup(name);
        if (!t->name) {
            rc = TT_ENOMEM;
            goto fail;
        }
        char iptext[40];
        bool ip = tls_ip_text(name, iptext);
        /* RFC 6066: literal addresses are not sent as SNI. */
        if (!ip && wolfSSL_UseSNI(t->ssl, WOLFSSL_SNI_HOST_NAME, name,
                                  (unsigned short)strlen(name)) != WOLFSSL_SUCCESS)
            goto fail;
        if (ctx->verify) {
            /* Host names go through wolfSSL's DNS SAN / CN match; addresses through the
             * verify parameters, which compare with the IP SAN entries. */
            int r = ip ? wolfSSL_X509_VERIFY_PARAM_set1_ip_asc(wolfSSL_get0_param(t->ssl),
                                                                iptext)
                       : wolfSSL_check_domain_name(t->ssl, name);
            if (r != WOLFSSL_SUCCESS) goto fail;
        }
    }
    if (alpn) {
        /* wolfSSL parses its argument in place: give it a private copy. */
        char list[TLS_ALPN_MAX + 1];
        size_t n = strlen(alpn);
        memcpy(list, alpn, n + 1);
        int opt = ctx->server ? WOLFSSL_ALPN_FAILED_ON_MISMATCH
                              : WOLFSSL_ALPN_CONTINUE_ON_MISMATCH;
        int r = wolfSSL_UseALPN(t->ssl, list, (unsigned)n, (unsigned char)opt);
        if (r != WOLFSSL_SUCCESS) {
            rc = r == MEMORY_E ? TT_ENOMEM : TT_EINVAL;
            goto fail;
        }
    }
    if (err) *err = TT_OK;
    return t;

fail:
    tti_tls_free(t);
    if (err) *err = rc;
    return NULL;
}

void tti_tls_free(tti_tls *t) {
    if (!t) return;
    if (t->ssl) wolfSSL_free(t->ssl);
    tti_tls_ctx_unref(t->ctx);
    tti_free(t->name);
    tti_free(t);
}

/* Record the reason of a failure with wolfSSL error `code`; returns the tt_err. */
static int tls_fail(tti_tls *t, int code) {
    char eb[WOLFSSL_MAX_ERROR_SZ];
    t->code = code;
    if (code == WOLFSSL_ERROR_ZERO_RETURN || code == ZERO_RETURN ||
        code == SOCKET_PEER_CLOSED_E) {
        snprintf(t->reason, sizeof t->reason, "peer closed the TLS connection");
        return TT_ECONNRESET;
    }
    long v = wolfSSL_get_verify_result(t->ssl);
    const char *what = NULL;
    switch (code) {
    case ASN_NO_SIGNER_E:       what = "unknown CA (no trusted issuer)"; break;
    case ASN_AFTER_DATE_E:      what = "certificate has expired"; break;
    case ASN_BEFORE_DATE_E:     what = "certificate is not yet valid"; break;
    case ASN_SIG_CONFIRM_E:     what = "certificate signature failure"; break;
    case DOMAIN_NAME_MISMATCH:  what = "host name mismatch"; break;
    case IPADDR_MISMATCH:       what = "IP address mismatch"; break;
    default: break;
    }
    if (what && (code == DOMAIN_NAME_MISMATCH || code == IPADDR_MISMATCH)) {
        snprintf(t->reason, sizeof t->reason, "certificate verify failed: %s (wanted %s)",
                 what, t->name ? t->name : "?");
    } else if (what) {
        snprintf(t->reason, sizeof t->reason, "certificate verify failed: %s", what);
    } else if (v != X509_V_OK && !t->done) {
        snprintf(t->reason, sizeof t->reason, "certificate verify failed: %s",
                 wolfSSL_X509_verify_cert_error_string(v));
    } else if (code == FATAL_ERROR) {
        WOLFSSL_ALERT_HISTORY h;
        memset(&h, 0, sizeof h);
        wolfSSL_get_alert_history(t->ssl, &h);
        snprintf(t->reason, sizeof t->reason, "peer sent alert: %s",
                 wolfSSL_alert_desc_string_long(h.last_rx.code));
    } else {
        snprintf(t->reason, sizeof t->reason, "%s (%d)", tls_code_text(code, eb, sizeof eb),
                 code);
    }
    TTI_LOG(DEBUG, "tls", "%s", t->reason);
    return TT_ETLS;
}

int tti_tls_handshake(tti_tls *t, struct evbuffer *cipher_in, struct evbuffer *cipher_out) {
    if (t->done) return TT_OK;
    t->in = cipher_in;
    t->out = cipher_out;
    int r = t->ctx->server ? wolfSSL_accept(t->ssl) : wolfSSL_connect(t->ssl);
    int rc = TT_OK;
    if (r == WOLFSSL_SUCCESS) {
        t->done = true;
        TTI_LOG(DEBUG, "tls", "handshake done: %s %s", wolfSSL_get_version(t->ssl),
                wolfSSL_get_cipher_name(t->ssl));
    } else {
        int e = wolfSSL_get_error(t->ssl, r);
        rc = (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE) ? TT_EAGAIN
                                                                            : tls_fail(t, e);
    }
    t->in = t->out = NULL;
    return rc;
}

int tti_tls_read(tti_tls *t, struct evbuffer *cipher_in, struct evbuffer *plain_out,
                 struct evbuffer *cipher_out) {
    if (!t->done) return TT_EINVAL;
    t->in = cipher_in;
    t->out = cipher_out;
    int total = 0, rc = 0, stop = 0;
    while (!stop && total < TLS_READ_MAX) {
        /* Decrypt straight into the evbuffer's free space: two extents so the tail of
         * the last chain is used before a new one. */
        struct evbuffer_iovec v[2];
        int nv = evbuffer_reserve_space(plain_out, TLS_RECORD_MAX, v, 2);
        if (nv < 1) {
            rc = TT_ENOMEM;
            break;
        }
        size_t used[2] = { 0, 0 };
        for (int i = 0; i < nv && !stop; i++) {
            while (used[i] < v[i].iov_len) {
                size_t room = v[i].iov_len - used[i];
                int n = wolfSSL_read(t->ssl, (char *)v[i].iov_base + used[i],
                                     room > INT_MAX ? INT_MAX : (int)room);
                if (n > 0) {
                    used[i] += (size_t)n;
                    continue;
                }
                stop = wolfSSL_get_error(t->ssl, n);
                if (stop == 0) stop = WOLFSSL_ERROR_SYSCALL;
                break;
            }
        }
        int keep = 0;
        for (int i = 0; i < nv && used[i] > 0; i++) {
            v[i].iov_len = used[i];
            keep++;
            total += (int)used[i];
        }
        if (evbuffer_commit_space(plain_out, v, keep) != 0) {
            rc = TT_EINTERNAL;
            break;
        }
    }
    if (stop && stop != WOLFSSL_ERROR_WANT_READ && stop != WOLFSSL_ERROR_WANT_WRITE)
        rc = tls_fail(t, stop);
    t->in = t->out = NULL;
    return rc ? rc : total;
}

int tti_tls_write(tti_tls *t, struct evbuffer *plain_in, struct evbuffer *cipher_out) {
    if (t->closed) return TT_ECLOSED;
    if (!t->done) return TT_EINVAL;
    char scratch[TLS_RECORD_MAX];
    int rc = TT_OK;
    size_t len;
    t->out = cipher_out;
    while ((len = evbuffer_get_length(plain_in)) > 0) {
        size_t want = len < TLS_RECORD_MAX ? len : TLS_RECORD_MAX;
        struct evbuffer_iovec v;
        const void *p;
        size_t n;
        if (evbuffer_peek(plain_in, (ev_ssize_t)want, NULL, &v, 1) >= 1 &&
            (v.iov_len >= want || v.iov_len >= TLS_DIRECT_MIN)) {
            p = v.iov_base;                /* contiguous: no copy */
            n = v.iov_len < want ? v.iov_len : want;
        } else {
            /* Small fragments: gather one full record on the stack rather than
             * sending tiny records or making the evbuffer allocate for a pullup. */
            if (evbuffer_copyout(plain_in, scratch, want) != (ev_ssize_t)want) {
                rc = TT_EINTERNAL;
                break;
            }
            p = scratch;
            n = want;
        }
        int w = wolfSSL_write(t->ssl, p, (int)n);
        if (w <= 0) {
            int e = wolfSSL_get_error(t->ssl, w);
            rc = e == MEMORY_E ? TT_ENOMEM : tls_fail(t, e);
            break;
        }
        evbuffer_drain(plain_in, (size_t)w);
    }
    t->out = NULL;
    return rc;
}

int tti_tls_close(tti_tls *t, struct evbuffer *cipher_out) {
    if (t->closed) return TT_OK;
    t->closed = true;
    if (!t->done) return TT_OK;
    t->out = cipher_out;
    int r = wolfSSL_shutdown(t->ssl);
    t->out = NULL;
    if (r == WOLFSSL_SUCCESS || r == WOLFSSL_SHUTDOWN_NOT_DONE) return TT_OK;
    return tls_fail(t, wolfSSL_get_error(t->ssl, r));
}

int tti_tls_key_update(tti_tls *t, struct evbuffer *cipher_out) {
    if (t->closed) return TT_ECLOSED;
    if (!t->done) return TT_EINVAL;
    if (wolfSSL_version(t->ssl) != TLS1_3_VERSION) return TT_ENOTSUP;
    t->out = cipher_out;
    int r = wolfSSL_update_keys(t->ssl);
    t->out = NULL;
    return r == WOLFSSL_SUCCESS ? TT_OK : tls_fail(t, wolfSSL_get_error(t->ssl, r));
}

bool tti_tls_is_done(const tti_tls *t) { return t->done; }

const char *tti_tls_alpn(tti_tls *t) {
    if (!t->done) return NULL;
    if (!t->alpn[0]) {
        char *p = NULL;
        unsigned short n = 0;
        if (wolfSSL_ALPN_GetProtocol(t->ssl, &p, &n) != WOLFSSL_SUCCESS || !p || n == 0)
            return NULL;
        if (n > TLS_ALPN_MAX) n = TLS_ALPN_MAX;
        memcpy(t->alpn, p, n);
        t->alpn[n] = '\0';
    }
    return t->alpn;
}

const char *tti_tls_version(const tti_tls *t) {
    return wolfSSL_get_version(t->ssl);
}

const char *tti_tls_error(const tti_tls *t, int *code) {
    if (code) *code = t->code;
    return t->reason;
}

void tti_tls_thread_done(void) {
#if defined(HAVE_ECC) && defined(FP_ECC)
    wc_ecc_fp_free();
#endif
}
