/* Tunnels through a proxy before anything else is said on a connection:
 * SOCKS5 (RFC 1928, with RFC 1929 user/password) and HTTP CONNECT (with
 * Basic proxy authorization). The destination host name goes to the proxy
 * unresolved, so the proxy's resolver is the one that counts.
 *
 * A pure state machine over two evbuffers: tti_proxy_begin() writes the first
 * request, tti_proxy_input() consumes the proxy's answers (and may write the
 * next request) until the tunnel is open. It consumes nothing past the
 * proxy's last answer, so bytes the far end sends early stay in the buffer.
 * Runs on the connection's loop thread. */
#ifndef TTI_PROXY_H
#define TTI_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <tether/err.h>

struct evbuffer;

typedef enum tti_proxy_kind { TTI_PROXY_NONE = 0, TTI_PROXY_SOCKS5, TTI_PROXY_HTTP } tti_proxy_kind;

typedef struct tti_proxy {
    tti_proxy_kind kind;
    int state;
    char *host;                       /* destination, owned */
    uint16_t port;
    char *user, *pass;                /* owned; NULL: no authentication */
    size_t scanned;                   /* HTTP: response bytes already searched */
    tt_err err;                       /* after a failure */
    int detail;                       /* SOCKS5 reply code or HTTP status */
    char reason[160];
} tti_proxy;

/* Copies the strings. TT_EINVAL for a host SOCKS5 cannot carry (over 255
 * bytes) or credentials over 255 bytes. */
tt_err tti_proxy_init(tti_proxy *p, tti_proxy_kind kind, const char *host, uint16_t port, const char *user,
                      const char *pass);
void tti_proxy_fini(tti_proxy *p);

/* The first request, once TCP to the proxy is up. */
tt_err tti_proxy_begin(tti_proxy *p, struct evbuffer *out);

/* 1: the tunnel is open; 0: more input needed; < 0: failed (p->err,
 * p->detail and p->reason say why: TT_EAUTH for refused credentials,
 * (SOCKS5 user/password, HTTP 407 or 401), TT_ECONNREFUSED when the destination refused, TT_EREFUSED for other
 * refusals, TT_EPROTO for a reply that is not the protocol). */
int tti_proxy_input(tti_proxy *p, struct evbuffer *in, struct evbuffer *out);

/* Parses "socks5://[user[:pass]@]host[:port]" or "http://..." (default
 * ports 1080 and 8080); percent-escapes in user and pass are decoded.
 * Fills the out-parameters with allocated strings (user/pass NULL when
 * absent). TT_EINVAL for anything else. */
tt_err tti_proxy_parse_url(const char *url, tti_proxy_kind *kind, char **host, uint16_t *port, char **user,
                           char **pass);

#endif
