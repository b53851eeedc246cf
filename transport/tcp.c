/* TCP transport over a libevent bufferevent, with async DNS, TCP_NODELAY and
 * write back-pressure. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "actors/core/alloc.h"
#include "actors/core/log.h"
#include "transport/tls.h"
#include "transport/transport.h"

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
    /* TLS: the session reads plain_in and writes plain_out. */
    tti_tls_ctx *tls_ctx;
    tti_tls *tls;
    struct evbuffer *plain_in, *plain_out;
    char *host, *sni, *alpn;
    bool tls_up;
};

static void release(tti_transport *t) {
    if (t->tls) tti_tls_free(t->tls);
    if (t->tls_ctx) tti_tls_ctx_unref(t->tls_ctx);
    if (t->plain_in) evbuffer_free(t->plain_in);
    if (t->plain_out) evbuffer_free(t->plain_out);
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

static void tls_fail(tti_transport *t, int rc) {
    int code = 0;
    const char *why = tti_tls_error(t->tls, &code);
    if (rc == TT_ECONNRESET) fail(t, TT_ECONNRESET, 0, "TLS connection closed by the peer");
    else fail(t, TT_ETLS, code, why && *why ? why : "TLS failure");
}

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
        t->cbs.on_connected(t->ctx);
        if (t->err != TT_OK || !t->bev) return;
    }
    int n = tti_tls_read(t->tls, in, t->plain_in, out);
    if (evbuffer_get_length(t->plain_in) > 0) t->cbs.on_read(t->ctx, t->plain_in);
    if (n < 0 && t->err == TT_OK) tls_fail(t, n);
}

static void read_cb(struct bufferevent *bev, void *arg) {
    tti_transport *t = arg;
    if (t->tls) tls_input(t);
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
        if (!t->tls_ctx) {
            t->cbs.on_connected(t->ctx);
            return;
        }
        tt_err err = TT_OK;
        t->tls = tti_tls_new(t->tls_ctx, t->host, t->sni, t->alpn, &err);
        t->plain_in = evbuffer_new();
        t->plain_out = evbuffer_new();
        if (!t->tls || !t->plain_in || !t->plain_out) {
            fail(t, err != TT_OK ? err : TT_ENOMEM, 0, "cannot start TLS");
            return;
        }
        tls_input(t);                /* sends the ClientHello */
        return;
    }
    int err = EVUTIL_SOCKET_ERROR();
    char reason[160];
    if (what & BEV_EVENT_EOF) {
        fail(t, TT_ECONNRESET, 0, "connection closed by the peer");
    } else if (!t->connected) {
        snprintf(reason, sizeof reason, "connect to port %u failed: %s", (unsigned)t->port,
                 evutil_socket_error_to_string(err));
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
        struct sockaddr_storage src;
        int srclen = sizeof src;
        char spec[80];
        snprintf(spec, sizeof spec, "%s:0", t->source_addr);
        if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&src, &srclen) != 0 ||
            bind(fd, (struct sockaddr *)&src, (socklen_t)srclen) != 0) {
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
    if (o->source_addr && !(t->source_addr = tti_strdup(o->source_addr))) {
        release(t);
        return TT_ENOMEM;
    }
    *out = t;
    /* Numeric addresses skip the resolver. */
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    char spec[300];
    bool v6 = strchr(o->host, ':') != NULL;
    snprintf(spec, sizeof spec, v6 ? "[%s]:%u" : "%s:%u", o->host, (unsigned)o->port);
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
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)o->port);
    /* The callback may run inside this call (cached or /etc/hosts answers). */
    t->dns_req = evdns_getaddrinfo(o->dns, o->host, port, &hints, dns_cb, t);
    return TT_OK;
}

struct evbuffer *tti_transport_out(tti_transport *t) {
    if (t->tls) return t->plain_out;
    return t->bev ? bufferevent_get_output(t->bev) : NULL;
}

void tti_transport_flush(tti_transport *t) {
    if (!t->bev) return;
    if (t->tls && t->tls_up && evbuffer_get_length(t->plain_out) > 0) {
        int rc = tti_tls_write(t->tls, t->plain_out, bufferevent_get_output(t->bev));
        if (rc < 0) {
            tls_fail(t, rc);
            return;
        }
    }
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
    release(t);
}
