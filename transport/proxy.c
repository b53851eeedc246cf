/* SOCKS5 and HTTP CONNECT tunnels (see proxy.h). */
#include "transport/proxy.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/core/alloc.h"
#include "transport/ws.h"

enum { ST_IDLE = 0, ST_GREET, ST_AUTH, ST_CONNECT, ST_HTTP, ST_OPEN, ST_FAILED };

/* Longest HTTP response head we read before calling it a protocol error. */
#define HTTP_HEAD_MAX 8192u

static int failed(tti_proxy *p, tt_err err, int detail, const char *why, const char *more) {
    p->state = ST_FAILED;
    p->err = err;
    p->detail = detail;
    snprintf(p->reason, sizeof p->reason, "%s%s", why, more ? more : "");
    return -1;
}

tt_err tti_proxy_init(tti_proxy *p, tti_proxy_kind kind, const char *host, uint16_t port, const char *user,
                      const char *pass) {
    memset(p, 0, sizeof *p);
    if (kind != TTI_PROXY_SOCKS5 && kind != TTI_PROXY_HTTP) return TT_EINVAL;
    if (!host || !*host || strlen(host) > 255) return TT_EINVAL;
    if ((user && strlen(user) > 255) || (pass && strlen(pass) > 255)) return TT_EINVAL;
    if (kind == TTI_PROXY_HTTP && (strpbrk(host, "\r\n ") || (user && strpbrk(user, "\r\n:"))))
        return TT_EINVAL;
    p->kind = kind;
    p->port = port;
    p->host = tti_strdup(host);
    p->user = user ? tti_strdup(user) : NULL;
    p->pass = user ? tti_strdup(pass ? pass : "") : NULL;
    if (!p->host || (user && (!p->user || !p->pass))) {
        tti_proxy_fini(p);
        return TT_ENOMEM;
    }
    return TT_OK;
}

void tti_proxy_fini(tti_proxy *p) {
    tti_free(p->host);
    if (p->pass) memset(p->pass, 0, strlen(p->pass));
    tti_free(p->user);
    tti_free(p->pass);
    p->host = p->user = p->pass = NULL;
}

/* ---- SOCKS5 ------------------------------------------------------------------ */

static void socks_connect(tti_proxy *p, struct evbuffer *out) {
    uint8_t req[4 + 1 + 255 + 2];
    size_t n = 0;
    req[n++] = 5;                    /* version */
    req[n++] = 1;                    /* CONNECT */
    req[n++] = 0;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, p->host, &a4) == 1) {
        req[n++] = 1;
        memcpy(req + n, &a4, 4);
        n += 4;
    } else if (inet_pton(AF_INET6, p->host, &a6) == 1) {
        req[n++] = 4;
        memcpy(req + n, &a6, 16);
        n += 16;
    } else {
        size_t hl = strlen(p->host);     /* <= 255, checked at init */
        req[n++] = 3;
        req[n++] = (uint8_t)hl;
        memcpy(req + n, p->host, hl);
        n += hl;
    }
    req[n++] = (uint8_t)(p->port >> 8);
    req[n++] = (uint8_t)p->port;
    evbuffer_add(out, req, n);
    p->state = ST_CONNECT;
}

static const char *socks_reply_text(int code) {
    switch (code) {
    case 1: return "general SOCKS server failure";
    case 2: return "connection not allowed by ruleset";
    case 3: return "network unreachable";
    case 4: return "host unreachable";
    case 5: return "connection refused";
    case 6: return "TTL expired";
    case 7: return "command not supported";
    case 8: return "address type not supported";
    default: return "unknown reply";
    }
}

static int socks_input(tti_proxy *p, struct evbuffer *in, struct evbuffer *out) {
    for (;;) {
        size_t have = evbuffer_get_length(in);
        uint8_t b[4 + 1 + 255 + 2];
        switch (p->state) {
        case ST_GREET:
            if (have < 2) return 0;
            evbuffer_remove(in, b, 2);
            if (b[0] != 5) return failed(p, TT_EPROTO, b[0], "not a SOCKS5 proxy", NULL);
            if (b[1] == 0xFF || (b[1] == 2 && !p->user) || (b[1] != 0 && b[1] != 2))
                return failed(p, TT_EAUTH, b[1], "SOCKS5 proxy accepts none of our authentication methods",
                              p->user ? "" : " (it may want a user name and password)");
            if (b[1] == 0) {
                socks_connect(p, out);
                break;
            }
            {
                size_t ul = strlen(p->user), pl = strlen(p->pass), n = 0;
                uint8_t a[3 + 255 + 255];
                a[n++] = 1;
                a[n++] = (uint8_t)ul;
                memcpy(a + n, p->user, ul);
                n += ul;
                a[n++] = (uint8_t)pl;
                memcpy(a + n, p->pass, pl);
                n += pl;
                evbuffer_add(out, a, n);
                memset(a, 0, sizeof a);
            }
            p->state = ST_AUTH;
            break;
        case ST_AUTH:
            if (have < 2) return 0;
            evbuffer_remove(in, b, 2);
            if (b[1] != 0) return failed(p, TT_EAUTH, b[1], "SOCKS5 proxy refused the user name and password", NULL);
            socks_connect(p, out);
            break;
        case ST_CONNECT: {
            if (have < 5) return 0;
            evbuffer_copyout(in, b, 5);
            if (b[0] != 5) return failed(p, TT_EPROTO, b[0], "malformed SOCKS5 reply", NULL);
            size_t addr = b[3] == 1 ? 4 : b[3] == 4 ? 16 : b[3] == 3 ? 1u + b[4] : 0;
            if (!addr) return failed(p, TT_EPROTO, b[3], "SOCKS5 reply with an unknown address type", NULL);
            if (b[1] != 0) {
                char why[120];
                snprintf(why, sizeof why, "SOCKS5 proxy: %s (%d)", socks_reply_text(b[1]), b[1]);
                return failed(p, b[1] == 5 ? TT_ECONNREFUSED : TT_EREFUSED, b[1], why, NULL);
            }
            if (have < 4 + addr + 2) return 0;
            evbuffer_drain(in, 4 + addr + 2);
            p->state = ST_OPEN;
            return 1;
        }
        case ST_OPEN: return 1;
        default: return -1;
        }
    }
}

/* ---- HTTP CONNECT -------------------------------------------------------------- */

static tt_err http_request(tti_proxy *p, struct evbuffer *out) {
    char target[300];
    if (strchr(p->host, ':')) snprintf(target, sizeof target, "[%s]:%u", p->host, (unsigned)p->port);
    else snprintf(target, sizeof target, "%s:%u", p->host, (unsigned)p->port);
    evbuffer_add_printf(out, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", target, target);
    if (p->user) {
        size_t ul = strlen(p->user), pl = strlen(p->pass);
        char cred[512], b64[700];
        memcpy(cred, p->user, ul);
        cred[ul] = ':';
        memcpy(cred + ul + 1, p->pass, pl);
        tti_base64_encode((const uint8_t *)cred, ul + 1 + pl, b64);
        evbuffer_add_printf(out, "Proxy-Authorization: Basic %s\r\n", b64);
        memset(cred, 0, sizeof cred);
        memset(b64, 0, sizeof b64);
    }
    evbuffer_add(out, "\r\n", 2);
    p->state = ST_HTTP;
    return TT_OK;
}

static int http_input(tti_proxy *p, struct evbuffer *in) {
    size_t have = evbuffer_get_length(in);
    size_t look = have < HTTP_HEAD_MAX ? have : HTTP_HEAD_MAX;
    /* The head ends at the first blank line; search only what is new. */
    size_t from = p->scanned > 3 ? p->scanned - 3 : 0;
    if (look < 4 || from >= look) {
        p->scanned = look;
        return have >= HTTP_HEAD_MAX ? failed(p, TT_EPROTO, 0, "HTTP proxy response head too long", NULL) : 0;
    }
    const char *head = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);
    if (look >= 5 && memcmp(head, "HTTP/", 5) != 0)
        return failed(p, TT_EPROTO, 0, "not an HTTP proxy (response does not start with HTTP/)", NULL);
    size_t end = 0;
    for (size_t i = from; i + 4 <= look; i++) {
        if (head[i] == '\r' && head[i + 1] == '\n' && head[i + 2] == '\r' && head[i + 3] == '\n') {
            end = i + 4;
            break;
        }
    }
    if (!end) {
        p->scanned = look;
        return look >= HTTP_HEAD_MAX ? failed(p, TT_EPROTO, 0, "HTTP proxy response head too long", NULL) : 0;
    }
    /* "HTTP/1.1 200 Connection established" */
    const char *sp = memchr(head, ' ', end);
    int status = 0;
    if (sp && sp + 4 < head + end && sp[1] >= '1' && sp[1] <= '5' && sp[2] >= '0' && sp[2] <= '9' &&
        sp[3] >= '0' && sp[3] <= '9')
        status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
    if (!status) return failed(p, TT_EPROTO, 0, "malformed HTTP proxy status line", NULL);
    if (status / 100 != 2) {
        const char *eol = memchr(head, '\r', end);
        char line[120];
        snprintf(line, sizeof line, "HTTP proxy refused the tunnel: %.*s", (int)(eol ? eol - head : 0), head);
        evbuffer_drain(in, end);
        return failed(p, status == 407 || status == 401 ? TT_EAUTH : TT_EREFUSED, status, line, NULL);
    }
    evbuffer_drain(in, end);
    p->state = ST_OPEN;
    return 1;
}

/* ---- Both ------------------------------------------------------------------------ */

tt_err tti_proxy_begin(tti_proxy *p, struct evbuffer *out) {
    if (p->kind == TTI_PROXY_HTTP) return http_request(p, out);
    uint8_t g[4] = { 5, 1, 0, 0 };
    if (p->user) {
        g[1] = 2;
        g[3] = 2;                    /* no authentication, or user/password */
    }
    evbuffer_add(out, g, p->user ? 4 : 3);
    p->state = ST_GREET;
    return TT_OK;
}

int tti_proxy_input(tti_proxy *p, struct evbuffer *in, struct evbuffer *out) {
    if (p->state == ST_FAILED) return -1;
    if (p->state == ST_OPEN) return 1;
    return p->kind == TTI_PROXY_HTTP ? http_input(p, in) : socks_input(p, in, out);
}

/* ---- URL ----------------------------------------------------------------------- */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static char *unescape(const char *s, size_t n) {
    char *o = tti_malloc(n + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            o[k++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = 0;
    return o;
}

tt_err tti_proxy_parse_url(const char *url, tti_proxy_kind *kind, char **host, uint16_t *port, char **user,
                           char **pass) {
    *host = *user = *pass = NULL;
    const char *r;
    if (!url) return TT_EINVAL;
    if (!strncmp(url, "socks5://", 9) || !strncmp(url, "socks5h://", 10)) {
        *kind = TTI_PROXY_SOCKS5;
        *port = 1080;
        r = strstr(url, "://") + 3;
    } else if (!strncmp(url, "http://", 7)) {
        *kind = TTI_PROXY_HTTP;
        *port = 8080;
        r = url + 7;
    } else {
        return TT_EINVAL;
    }
    const char *end = r + strcspn(r, "/?#");
    const char *at = NULL;
    for (const char *q = r; q < end; q++)
        if (*q == '@') at = q;
    if (at) {
        const char *colon = memchr(r, ':', (size_t)(at - r));
        *user = unescape(r, (size_t)((colon ? colon : at) - r));
        *pass = colon ? unescape(colon + 1, (size_t)(at - colon - 1)) : NULL;
        if (!*user || (colon && !*pass)) goto nomem;
        r = at + 1;
    }
    const char *hs = r, *he;
    if (*r == '[') {
        he = memchr(r, ']', (size_t)(end - r));
        if (!he) goto bad;
        hs = r + 1;
        r = he + 1;
    } else {
        he = memchr(r, ':', (size_t)(end - r));
        if (!he) he = end;
        r = he;
    }
    if (he == hs) goto bad;
    if (r < end) {
        if (*r != ':') goto bad;
        char *e = NULL;
        long v = strtol(r + 1, &e, 10);
        if (e != end || v < 1 || v > 65535) goto bad;
        *port = (uint16_t)v;
    }
    *host = tti_strndup(hs, (size_t)(he - hs));
    if (!*host) goto nomem;
    return TT_OK;
bad:
    tti_free(*user);
    tti_free(*pass);
    *user = *pass = NULL;
    return TT_EINVAL;
nomem:
    tti_free(*user);
    tti_free(*pass);
    *user = *pass = NULL;
    return TT_ENOMEM;
}
