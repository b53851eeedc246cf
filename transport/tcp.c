/* TCP transport over a libevent bufferevent, with async DNS, TCP_NODELAY and
 * write back-pressure; TLS (transport/tls.h) and WebSocket framing
 * (transport/ws.h) stack inside it:
 *
 *   session <-> [WebSocket: ws_in / ws_out] <-> [TLS: plain_in / plain_out] <-> socket
 *
 * Plain TCP hands the session the socket's own buffers: no layer, no copy. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "actors/core/alloc.h"
#include "actors/core/log.h"
#include "transport/proxy.h"
#include "transport/tls.h"
#include "transport/transport.h"
#include "transport/ws.h"

/* Payload bytes per outgoing WebSocket frame (a 16-bit length: 8-byte header). */
#define WS_FRAME_MAX 65535u

struct tti_transport {
    struct event_base *base;
    struct bufferevent *bev;
    struct evdns_getaddrinfo_request *dns_req;
    struct event *err_ev;             /* delivers errors outside any call */
    tt_err err;
    int err_detail;
    char err_reason[160];
    tti_transport_cbs cbs;
    void *ctx;
    char *source_addr;
    uint16_t port;
    size_t high_water;
    bool congested;
    bool connected;
    bool dead;                        /* freed while DNS was pending */
    unsigned busy;                    /* inside a session callback that may free us */
    bool freed;                       /* ...and it did: release on the way out */
    /* TLS: the session reads plain_in and writes plain_out. */
    tti_tls_ctx *tls_ctx;
    tti_tls *tls;
    struct evbuffer *plain_in, *plain_out;
    char *host, *sni, *alpn;
    bool tls_up;
    /* WebSocket: the session reads ws_in and writes ws_out. */
    bool ws, ws_up;
    char *ws_req;                     /* the upgrade request, until sent */
    tti_ws_handshake *ws_hs;          /* until the upgrade is accepted */
    struct evbuffer *ws_in, *ws_out;
    tti_ws_rx ws_rx;
    tti_ws_tx ws_tx;
    /* Proxy: TCP goes to the proxy, which is asked for host:port first. */
    tti_proxy px;
    bool px_open;
};

static void release(tti_transport *t) {
    tti_proxy_fini(&t->px);
    if (t->tls) tti_tls_free(t->tls);
    if (t->tls_ctx) tti_tls_ctx_unref(t->tls_ctx);
    if (t->plain_in) evbuffer_free(t->plain_in);
    if (t->plain_out) evbuffer_free(t->plain_out);
    if (t->ws_in) evbuffer_free(t->ws_in);
    if (t->ws_out) evbuffer_free(t->ws_out);
    tti_free(t->ws_req);
    tti_free(t->ws_hs);
    tti_free(t->host);
    tti_free(t->sni);
    tti_free(t->alpn);
    event_free(t->err_ev);
    tti_free(t->source_addr);
    tti_free(t);
}

static void err_cb(evutil_socket_t fd, short what, void *arg) {
    tti_transport *t = arg;
    (void)fd;
    (void)what;
    t->cbs.on_error(t->ctx, t->err, t->err_detail, t->err_reason);
}

/* Errors reach the session on a later turn, never inside one of its calls. */
static void fail(tti_transport *t, tt_err err, int detail, const char *reason) {
    if (t->bev) bufferevent_disable(t->bev, EV_READ | EV_WRITE);
    if (t->err != TT_OK) return;     /* the first error is the one reported */
    t->err = err;
    t->err_detail = detail;
    snprintf(t->err_reason, sizeof t->err_reason, "%s", reason);
    event_active(t->err_ev, EV_TIMEOUT, 0);
}

/* After a session callback: false when the session freed the transport inside
 * it (tti_transport_free() leaves the memory to the outermost caller). */
static bool leave(tti_transport *t) {
    t->busy--;
    if (!t->freed) return true;
    if (t->busy == 0) release(t);
    return false;
}

static bool call_connected(tti_transport *t) {
    t->busy++;
    t->cbs.on_connected(t->ctx);
    return leave(t);
}

static bool call_read(tti_transport *t, struct evbuffer *in) {
    t->busy++;
    t->cbs.on_read(t->ctx, in);
    return leave(t);
}

static void tls_fail(tti_transport *t, int rc) {
    int code = 0;
    const char *why = tti_tls_error(t->tls, &code);
    if (rc == TT_ECONNRESET) fail(t, TT_ECONNRESET, 0, "TLS connection closed by the peer");
    else fail(t, TT_ETLS, code, why && *why ? why : "TLS failure");
}

/* TLS: encrypt what waits in plain_out. False after a failure. */
static bool tls_push(tti_transport *t) {
    if (!t->tls_up || evbuffer_get_length(t->plain_out) == 0) return true;
    int rc = tti_tls_write(t->tls, t->plain_out, bufferevent_get_output(t->bev));
    if (rc < 0) {
        tls_fail(t, rc);
        return false;
    }
    return true;
}

/* ---- WebSocket ------------------------------------------------------------- */

/* Where frames go: TLS's plaintext input, or the socket. */
static struct evbuffer *ws_lower(tti_transport *t) {
    return t->tls ? t->plain_out : bufferevent_get_output(t->bev);
}

/* The connection is up (TLS too): send the upgrade request. */
static void ws_start(tti_transport *t) {
    evbuffer_add(ws_lower(t), t->ws_req, strlen(t->ws_req));
    tti_free(t->ws_req);
    t->ws_req = NULL;
    if (t->tls) (void)tls_push(t);
}

/* Wrap everything in ws_out into binary frames, masking while copying straight
 * into the lower buffer. */
static bool ws_frame_out(tti_transport *t) {
    struct evbuffer *src = t->ws_out, *dst = ws_lower(t);
    size_t left = evbuffer_get_length(src);
    while (left > 0) {
        size_t n = left < WS_FRAME_MAX ? left : WS_FRAME_MAX;
        uint8_t hdr[TTI_WS_MAX_FRAME_HDR], mask[4];
        int hn = tti_ws_tx_header(&t->ws_tx, TTI_WS_OP_BINARY, true, n, hdr, mask);
        if (hn < 0) {
            fail(t, TT_EINTERNAL, 0, "no randomness for WebSocket masks");
            return false;
        }
        struct evbuffer_iovec w;
        if (evbuffer_reserve_space(dst, (ev_ssize_t)((size_t)hn + n), &w, 1) != 1) {
            fail(t, TT_ENOMEM, 0, "no memory for a WebSocket frame");
            return false;
        }
        uint8_t *p = w.iov_base;
        memcpy(p, hdr, (size_t)hn);
        p += hn;
        size_t done = 0;
        while (done < n) {
            struct evbuffer_iovec v[16];
            int k = evbuffer_peek(src, (ev_ssize_t)(n - done), NULL, v, 16);
            size_t got = 0;
            for (int i = 0; i < k && i < 16; i++) {
                size_t m = v[i].iov_len < n - done - got ? v[i].iov_len : n - done - got;
                tti_ws_mask(p + done + got, v[i].iov_base, m, mask, done + got);
                got += m;
            }
            evbuffer_drain(src, got);
            done += got;
        }
        w.iov_len = (size_t)hn + n;
        evbuffer_commit_space(dst, &w, 1);
        left -= n;
    }
    return true;
}

/* The server's upgrade response: 1 once accepted and the session told, 0 not
 * yet (or failed), -1 the session freed the transport meanwhile. */
static int ws_handshake_input(tti_transport *t, struct evbuffer *in) {
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1) break;
        size_t used = 0;
        int rc = tti_ws_handshake_feed(t->ws_hs, v.iov_base, v.iov_len, &used);
        /* Not HTTP at all (an MQTT port, say): no line end may ever come. */
        static const char http[] = "HTTP/";
        size_t seen = t->ws_hs->total, start = seen - used;
        for (size_t i = start; rc == 0 && i < seen && i < sizeof http - 1; i++)
            if (((const char *)v.iov_base)[i - start] != http[i]) rc = TT_EPROTO;
        evbuffer_drain(in, used);
        if (rc < 0) {
            const char *why = t->ws_hs->err ? t->ws_hs->why : "not an HTTP response";
            if (!why) why = "bad response";
            char reason[160];
            int status = strncmp(why, "HTTP ", 5) == 0 ? atoi(why + 5) : 0;
            snprintf(reason, sizeof reason, "WebSocket upgrade failed: %s", why);
            fail(t, TT_EPROTO, status, reason);
            return 0;
        }
        if (rc == 1) {
            tti_free(t->ws_hs);
            t->ws_hs = NULL;
            t->ws_up = true;
            if (!call_connected(t)) return -1;
            return t->err == TT_OK && t->bev ? 1 : 0;
        }
    }
    return 0;
}

/* Frames in: data to ws_in, pings answered. TT_OK, or the decoder's error
 * (whatever came before it is in ws_in). */
static int ws_decode(tti_transport *t, struct evbuffer *in) {
    bool pong = false;
    int rc = TTI_WS_MORE;
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1) break;
        if (v.iov_len == 0) {
            (void)evbuffer_pullup(in, 1);
            continue;
        }
        size_t used = 0, dlen = 0;
        const uint8_t *data;
        rc = tti_ws_rx_feed(&t->ws_rx, v.iov_base, v.iov_len, &used, &data, &dlen);
        if (rc == TTI_WS_DATA) {
            /* Payload moves without a copy where it fills whole chunks. */
            evbuffer_drain(in, used - dlen);
            evbuffer_remove_buffer(in, t->ws_in, dlen);
        } else {
            evbuffer_drain(in, used);
        }
        if (rc == TTI_WS_PING) {
            uint8_t f[TTI_WS_MAX_FRAME_HDR + TTI_WS_MAX_CONTROL];
            int n = tti_ws_tx_pong(&t->ws_tx, t->ws_rx.ctl, t->ws_rx.ctl_len, f, sizeof f);
            if (n > 0) {
                evbuffer_add(ws_lower(t), f, (size_t)n);
                pong = true;
            }
        } else if (rc < 0) {
            break;
        }
    }
    if (pong && t->tls) (void)tls_push(t);
    return rc < 0 ? rc : TT_OK;
}

static void ws_fail(tti_transport *t, int rc) {
    char reason[160];
    if (rc == TT_ECONNRESET) {
        const tti_ws_rx *rx = &t->ws_rx;
        snprintf(reason, sizeof reason, "WebSocket closed by the peer: %u%s%s", (unsigned)rx->close_code,
                 rx->close_reason[0] ? " " : "", rx->close_reason);
        fail(t, TT_ECONNRESET, rx->close_code, reason);
    } else {
        snprintf(reason, sizeof reason, "WebSocket protocol error: %s",
                 t->ws_rx.why ? t->ws_rx.why : "?");
        fail(t, TT_EPROTO, 0, reason);
    }
}

/* Bytes from the layer below (socket or TLS). False when the transport is
 * gone. */
static bool ws_input(tti_transport *t, struct evbuffer *in) {
    if (!t->ws_up) {
        int up = ws_handshake_input(t, in);
        if (up <= 0) return up == 0;
    }
    size_t before = evbuffer_get_length(t->ws_in);
    int rc = ws_decode(t, in);
    if (evbuffer_get_length(t->ws_in) > before && !call_read(t, t->ws_in)) return false;
    if (rc < 0 && t->err == TT_OK) ws_fail(t, rc);
    return true;
}

/* ---- TLS ------------------------------------------------------------------- */

/* Ciphertext arrived: finish the handshake, or decrypt for the session. */
static void tls_input(tti_transport *t) {
    struct evbuffer *in = bufferevent_get_input(t->bev), *out = bufferevent_get_output(t->bev);
    if (!t->tls_up) {
        int rc = tti_tls_handshake(t->tls, in, out);
        if (rc == TT_EAGAIN) return;
        if (rc != TT_OK) {
            tls_fail(t, rc);
            return;
        }
        t->tls_up = true;
        if (t->ws) ws_start(t);
        else if (!call_connected(t)) return;
        if (t->err != TT_OK || !t->bev) return;
    }
    int n = tti_tls_read(t->tls, in, t->plain_in, out);
    if (evbuffer_get_length(t->plain_in) > 0) {
        if (t->ws ? !ws_input(t, t->plain_in) : !call_read(t, t->plain_in)) return;
    }
    if (n < 0 && t->err == TT_OK) tls_fail(t, n);
}

/* TCP is up (through the proxy, if any): start TLS or WebSocket, or tell
 * the session. False when the session freed the transport meanwhile. */
static bool tunnel_up(tti_transport *t) {
    if (!t->tls_ctx) {
        if (t->ws) ws_start(t);
        else return call_connected(t);
        return true;
    }
    tt_err err = TT_OK;
    t->tls = tti_tls_new(t->tls_ctx, t->host, t->sni, t->alpn, &err);
    t->plain_in = evbuffer_new();
    t->plain_out = evbuffer_new();
    if (!t->tls || !t->plain_in || !t->plain_out) {
        fail(t, err != TT_OK ? err : TT_ENOMEM, 0, "cannot start TLS");
        return true;
    }
    tls_input(t);                    /* sends the ClientHello */
    return true;
}

static void read_cb(struct bufferevent *bev, void *arg) {
    tti_transport *t = arg;
    if (t->px.kind && !t->px_open) {
        struct evbuffer *in = bufferevent_get_input(bev);
        int r = tti_proxy_input(&t->px, in, bufferevent_get_output(bev));
        if (r < 0) fail(t, t->px.err, t->px.detail, t->px.reason);
        if (r <= 0) return;
        t->px_open = true;
        TTI_LOG(DEBUG, "transport", "proxy tunnel to port %u open", (unsigned)t->px.port);
        if (!tunnel_up(t) || t->err != TT_OK || !t->bev || evbuffer_get_length(in) == 0) return;
    }
    if (t->tls) tls_input(t);
    else if (t->ws) (void)ws_input(t, bufferevent_get_input(bev));
    else t->cbs.on_read(t->ctx, bufferevent_get_input(bev));
}

static void write_cb(struct bufferevent *bev, void *arg) {
    tti_transport *t = arg;
    (void)bev;
    if (t->congested) {
        t->congested = false;
        t->cbs.on_drained(t->ctx);
    }
}

static void event_cb(struct bufferevent *bev, short what, void *arg) {
    tti_transport *t = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        t->connected = true;
        int one = 1;
        evutil_socket_t fd = bufferevent_getfd(t->bev);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        bufferevent_enable(t->bev, EV_READ | EV_WRITE);
        if (t->px.kind) (void)tti_proxy_begin(&t->px, bufferevent_get_output(t->bev));
        else (void)tunnel_up(t);
        return;
    }
    int err = EVUTIL_SOCKET_ERROR();
    char reason[160];
    if (what & BEV_EVENT_EOF) {
        fail(t, TT_ECONNRESET, 0,
             t->px.kind && !t->px_open ? "proxy closed the connection" : "connection closed by the peer");
    } else if (!t->connected) {
        snprintf(reason, sizeof reason, "connect to %sport %u failed: %s", t->px.kind ? "proxy " : "",
                 (unsigned)t->port, evutil_socket_error_to_string(err));
        fail(t, err == ECONNREFUSED ? TT_ECONNREFUSED : TT_ECONNRESET, err, reason);
    } else {
        snprintf(reason, sizeof reason, "connection lost: %s", evutil_socket_error_to_string(err));
        fail(t, TT_ECONNRESET, err, reason);
    }
}

static void start_tcp(tti_transport *t, const struct sockaddr *sa, socklen_t salen) {
    evutil_socket_t fd = socket(sa->sa_family, SOCK_STREAM, 0);
    if (fd < 0) {
        fail(t, TT_ECONNRESET, errno, "socket() failed");
        return;
    }
    evutil_make_socket_nonblocking(fd);
    evutil_make_socket_closeonexec(fd);
    if (t->source_addr) {
        /* A bare IPv4 or IPv6 address, any port (libevent's "host:port"
         * parser refuses port 0). */
        struct sockaddr_storage src;
        struct sockaddr_in *s4 = (struct sockaddr_in *)&src;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&src;
        socklen_t srclen = 0;
        memset(&src, 0, sizeof src);
        errno = 0;
        if (evutil_inet_pton(AF_INET, t->source_addr, &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
            srclen = sizeof *s4;
        } else if (evutil_inet_pton(AF_INET6, t->source_addr, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
            srclen = sizeof *s6;
        }
        if (srclen == 0 || bind(fd, (struct sockaddr *)&src, srclen) != 0) {
            int e = errno;
            evutil_closesocket(fd);
            fail(t, TT_EINVAL, e, "cannot bind the source address");
            return;
        }
    }
    t->bev = bufferevent_socket_new(t->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!t->bev) {
        evutil_closesocket(fd);
        fail(t, TT_ENOMEM, 0, "no memory for the connection");
        return;
    }
    bufferevent_setcb(t->bev, read_cb, write_cb, event_cb, t);
    bufferevent_setwatermark(t->bev, EV_WRITE, t->high_water / 2, 0);
    if (bufferevent_socket_connect(t->bev, sa, (int)salen) != 0) {
        int e = EVUTIL_SOCKET_ERROR();
        fail(t, e == ECONNREFUSED ? TT_ECONNREFUSED : TT_ECONNRESET, e,
             evutil_socket_error_to_string(e));
    }
}

static void dns_cb(int result, struct evutil_addrinfo *res, void *arg) {
    tti_transport *t = arg;
    t->dns_req = NULL;
    if (t->dead) {                   /* freed while resolving */
        if (res) evutil_freeaddrinfo(res);
        release(t);
        return;
    }
    if (result != 0 || !res) {
        char reason[160];
        snprintf(reason, sizeof reason, "cannot resolve host: %s", evutil_gai_strerror(result));
        fail(t, TT_ENOTFOUND, result, reason);
        return;
    }
    start_tcp(t, res->ai_addr, (socklen_t)res->ai_addrlen);
    evutil_freeaddrinfo(res);
}

/* The upgrade request (with a fresh key) and the frame state, made up front so
 * a bad path or host fails the call. */
static tt_err ws_prepare(tti_transport *t, const tti_transport_opts *o) {
    const char *host = o->ws_host ? o->ws_host : o->host;
    const char *path = o->ws_path && *o->ws_path ? o->ws_path : "/mqtt";
    size_t cap = strlen(host) + strlen(path) + 256;
    t->ws = true;
    t->ws_hs = tti_malloc(sizeof *t->ws_hs);
    t->ws_req = tti_malloc(cap);
    t->ws_in = evbuffer_new();
    t->ws_out = evbuffer_new();
    if (!t->ws_hs || !t->ws_req || !t->ws_in || !t->ws_out) return TT_ENOMEM;
    if (tti_ws_handshake_init(t->ws_hs) != TT_OK) return TT_EINTERNAL;
    int n = tti_ws_handshake_request(t->ws_hs, host, o->ws_port ? o->ws_port : o->port, o->tls,
                                     path, t->ws_req, cap);
    if (n < 0) return n == TT_ENOMEM ? TT_ENOMEM : TT_EINVAL;
    tti_ws_rx_init(&t->ws_rx, 0);
    tti_ws_tx_init(&t->ws_tx);
    return TT_OK;
}

tt_err tti_transport_connect(struct event_base *base, const tti_transport_opts *o,
                             const tti_transport_cbs *cbs, void *ctx, tti_transport **out) {
    if (o->tls && !o->tls_ctx) return TT_EINVAL;
    tti_transport *t = tti_calloc(1, sizeof *t);
    if (!t) return TT_ENOMEM;
    t->err_ev = event_new(base, -1, 0, err_cb, t);
    if (!t->err_ev) {
        tti_free(t);
        return TT_ENOMEM;
    }
    if (o->tls) {
        t->tls_ctx = tti_tls_ctx_ref(o->tls_ctx);
        t->host = tti_strdup(o->host);
        t->sni = o->tls_opts && o->tls_opts->sni ? tti_strdup(o->tls_opts->sni) : NULL;
        t->alpn = o->tls_opts && o->tls_opts->alpn ? tti_strdup(o->tls_opts->alpn) : NULL;
        if (!t->host) {
            release(t);
            return TT_ENOMEM;
        }
    }
    t->base = base;
    t->cbs = *cbs;
    t->ctx = ctx;
    t->port = o->port;
    t->high_water = o->high_water ? o->high_water : 4u << 20;
    if (o->ws) {
        tt_err err = ws_prepare(t, o);
        if (err != TT_OK) {
            release(t);
            return err;
        }
    }
    if (o->source_addr && !(t->source_addr = tti_strdup(o->source_addr))) {
        release(t);
        return TT_ENOMEM;
    }
    const char *host = o->host;
    uint16_t port = o->port;
    if (o->proxy) {
        tt_err err = tti_proxy_init(&t->px, o->proxy, o->host, o->port, o->proxy_user, o->proxy_pass);
        if (err != TT_OK) {
            release(t);
            return err;
        }
        host = o->proxy_host;
        port = o->proxy_port;
        t->port = port;
    }
    *out = t;
    /* Numeric addresses skip the resolver. */
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    char spec[300];
    bool v6 = strchr(host, ':') != NULL;
    snprintf(spec, sizeof spec, v6 ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
    if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&ss, &sslen) == 0) {
        start_tcp(t, (struct sockaddr *)&ss, (socklen_t)sslen);
        return TT_OK;
    }
    if (!o->dns) {
        fail(t, TT_ENOTFOUND, 0, "no resolver for a host name");
        return TT_OK;
    }
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
    char pstr[8];
    snprintf(pstr, sizeof pstr, "%u", (unsigned)port);
    /* The callback may run inside this call (cached or /etc/hosts answers). */
    t->dns_req = evdns_getaddrinfo(o->dns, host, pstr, &hints, dns_cb, t);
    return TT_OK;
}

struct evbuffer *tti_transport_out(tti_transport *t) {
    if (t->ws) return t->ws_out;
    if (t->tls) return t->plain_out;
    return t->bev ? bufferevent_get_output(t->bev) : NULL;
}

void tti_transport_flush(tti_transport *t) {
    if (!t->bev) return;
    if (t->ws && t->ws_up && evbuffer_get_length(t->ws_out) > 0 && !ws_frame_out(t)) return;
    if (t->tls && !tls_push(t)) return;
    if (!t->congested && evbuffer_get_length(bufferevent_get_output(t->bev)) > t->high_water)
        t->congested = true;
}

size_t tti_transport_pending(tti_transport *t) {
    return t->bev ? evbuffer_get_length(bufferevent_get_output(t->bev)) : 0;
}

bool tti_transport_congested(tti_transport *t) {
    tti_transport_flush(t);
    return t->congested;
}

void tti_transport_free(tti_transport *t) {
    if (!t) return;
    event_del(t->err_ev);
    if (t->bev) {
        bufferevent_free(t->bev);
        t->bev = NULL;
    }
    if (t->dns_req) {
        /* The resolver calls back with a cancel result and frees us there. */
        t->dead = true;
        struct evdns_getaddrinfo_request *r = t->dns_req;
        evdns_getaddrinfo_cancel(r);
        return;
    }
    if (t->busy) {                   /* inside one of our calls to the session */
        t->freed = true;
        return;
    }
    release(t);
}
