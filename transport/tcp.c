/* TCP transport on a libevent event, with async DNS, TCP_NODELAY and write
 * back-pressure; TLS (transport/tls.h), WebSocket framing (transport/ws.h)
 * and a proxy tunnel (transport/proxy.h) stack inside it:
 *
 *   session <-> [WebSocket: ws_in / ws_out] <-> [TLS: plain_in / plain_out]
 *           <-> [sock_in / sock_out] <-> socket
 *
 * Plain TCP has no layer and no buffer of its own: reads land in the loop's
 * shared buffer and are parsed there; writes gather in the loop's shared
 * buffer and leave with one send() at the flush. Only a partial packet or
 * bytes the socket would not take are kept per connection, so an idle
 * connection costs this struct and its socket. The layers keep their state in
 * a separate block, made only when a connection uses one. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/event_struct.h>
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
#include "actors/loop.h"
#include "transport/proxy.h"
#include "transport/tls.h"
#include "transport/transport.h"
#include "transport/ws.h"

/* Payload bytes per outgoing WebSocket frame (a 16-bit length: 8-byte header). */
#define WS_FRAME_MAX 65535u
/* Reads per wake-up before the loop gets a turn for other connections. */
#define READS_PER_WAKE 4
/* Layered reads take at most this much from the socket at a time. */
#define LAYER_READ_MAX 65536
/* A name with several addresses: an attempt still unanswered after this long
 * gives way to the next address (the last one waits for the session's
 * connect timeout). Refusals move on at once. */
#define ATTEMPT_MS 2000

/* TLS, WebSocket and proxy state: only for connections that use them. */
typedef struct layers {
    struct evbuffer *sock_in, *sock_out;  /* bytes as they are on the socket */
    size_t need;                      /* the session waits for this much input */
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
} layers;

/* What a connection needs only at times: while it connects, while a partial
 * packet or output the socket would not take is kept (plain TCP), and once it
 * failed. Made on first need and freed once none of it is used, so an idle
 * connection holds none. */
typedef struct aside {
    /* Until the TCP connect finished. */
    struct evdns_getaddrinfo_request *dns_req;
    struct evutil_addrinfo *ai_head;  /* a name with several addresses: all of them, */
    struct evutil_addrinfo *ai_next;  /* and the one to try after the current attempt */
    const char *source_addr;          /* the caller's */
    uint16_t port;                    /* for the messages of a failed connect */
    uint16_t tried;                   /* addresses tried, for the message */
    /* The failure, for on_error. */
    int err_detail;
    char *err_reason;
    /* Connected plain TCP. */
    uint8_t *rx;                      /* unparsed input kept between reads */
    uint8_t *tx;                      /* output the socket has not taken yet */
    uint32_t rx_len, rx_cap, rx_need;
    uint32_t tx_off, tx_len, tx_cap;
} aside;

struct tti_transport {
    /* The socket: connect completion, then reads (and writes while the socket
     * is full). After a failure it carries the error to the session instead. */
    struct event ev;                  /* assigned from the start, so it holds the base */
    tti_io_scratch *io;
    const tti_transport_cbs *cbs;
    void *ctx;
    layers *x;                        /* NULL for plain TCP */
    aside *a;                         /* NULL when none of it is needed */
    uint32_t high_water;
    evutil_socket_t fd;
    tt_err err;                       /* its detail and text are in the block */
    uint8_t busy;                     /* inside a session callback that may free us */
    /* Bits: as bytes they would push the struct into a larger malloc chunk. */
    bool connected : 1;
    bool early : 1;                   /* plain TCP written to before its connect is known to have
                                       * finished: until the first byte in, a failure is the connect's */
    bool want_write : 1;              /* ev also waits for EV_WRITE */
    bool read_paused : 1;             /* ev does not wait for EV_READ (tti_transport_pause_read) */
    bool congested : 1;
    bool dead : 1;                    /* freed while DNS was pending */
    bool freed : 1;                   /* freed inside a session callback */
};
/* One per connection, thousands of them idle: 184 bytes on 64-bit Linux, a
 * 192-byte glibc chunk. */
_Static_assert(sizeof(struct tti_transport) <= sizeof(struct event) + 56, "struct tti_transport grew");

static void release(tti_transport *t) {
    if (t->io && t->io->tx_owner == t) {
        t->io->tx_owner = NULL;
        t->io->tx_n = 0;
    }
    event_del(&t->ev);
    if (t->fd >= 0) evutil_closesocket(t->fd);
    layers *x = t->x;
    if (x) {
        tti_proxy_fini(&x->px);
        if (x->tls) tti_tls_free(x->tls);
        if (x->tls_ctx) tti_tls_ctx_unref(x->tls_ctx);
        struct evbuffer *bufs[] = { x->sock_in, x->sock_out, x->plain_in, x->plain_out, x->ws_in, x->ws_out };
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
            if (bufs[i]) evbuffer_free(bufs[i]);
        tti_free(x->ws_req);
        tti_free(x->ws_hs);
        tti_free(x->host);
        tti_free(x->sni);
        tti_free(x->alpn);
        tti_free(x);
    }
    if (t->a) {
        if (t->a->ai_head) evutil_freeaddrinfo(t->a->ai_head);
        tti_free(t->a->rx);
        tti_free(t->a->tx);
        tti_free(t->a->err_reason);
        tti_free(t->a);
    }
    tti_free(t);
}

/* The block, made on first need. NULL without memory. */
static aside *aside_get(tti_transport *t) {
    if (!t->a) t->a = tti_calloc(1, sizeof *t->a);
    return t->a;
}

/* Free the block once nothing in it is used: connected, nothing kept, no
 * failure to report. */
static void aside_trim(tti_transport *t) {
    aside *a = t->a;
    if (a && t->connected && !t->early && !a->rx && !a->tx && t->err == TT_OK) {
        tti_free(a);
        t->a = NULL;
    }
}

/* Output the socket would not take yet (plain TCP). */
static size_t tx_kept(const tti_transport *t) { return t->a ? t->a->tx_len - t->a->tx_off : 0; }

static void err_cb(evutil_socket_t fd, short what, void *arg) {
    tti_transport *t = arg;
    (void)fd;
    (void)what;
    const aside *a = t->a;
    t->cbs->on_error(t->ctx, t->err, a ? a->err_detail : 0,
                     a && a->err_reason ? a->err_reason : "connection failed");
}

/* Errors reach the session on a later turn, never inside one of its calls:
 * the socket's event is turned into a one-shot that carries it. */
static void fail(tti_transport *t, tt_err err, int detail, const char *reason) {
    if (t->err != TT_OK) return;     /* the first error is the one reported */
    t->err = err;
    aside *a = aside_get(t);         /* without memory the code still goes out */
    if (a) {
        a->err_detail = detail;
        a->err_reason = tti_strdup(reason);
    }
    event_del(&t->ev);
    event_assign(&t->ev, event_get_base(&t->ev), -1, 0, err_cb, t);
    event_active(&t->ev, EV_TIMEOUT, 0);
}

static void start_tcp(tti_transport *t, const struct sockaddr *sa, socklen_t salen);

/* connect() failed, at once or later. A name with more addresses goes on to
 * the next one; the last failure is the one reported. */
static void connect_failed(tti_transport *t, int e) {
    aside *a = t->a;
    if (!t->connected && a->ai_next) {
        struct evutil_addrinfo *ai = a->ai_next;
        a->ai_next = ai->ai_next;
        TTI_LOG(DEBUG, "transport", "connect to port %u failed (%s), trying the next address",
                (unsigned)a->port, evutil_socket_error_to_string(e));
        event_del(&t->ev);
        evutil_closesocket(t->fd);
        t->fd = -1;
        start_tcp(t, ai->ai_addr, (socklen_t)ai->ai_addrlen);
        return;
    }
    char reason[200], tried[40] = "";
    if (a->tried > 1) snprintf(tried, sizeof tried, " (%u addresses tried)", (unsigned)a->tried);
    snprintf(reason, sizeof reason, "connect to %sport %u failed: %s%s",
             t->x && t->x->px.kind ? "proxy " : "", (unsigned)a->port, evutil_socket_error_to_string(e), tried);
    fail(t, e == ECONNREFUSED ? TT_ECONNREFUSED : e == ETIMEDOUT ? TT_ETIMEDOUT : TT_ECONNRESET, e, reason);
}

static void fail_errno(tti_transport *t, int e, const char *what) {
    /* Before the first byte in, the socket's first error is its connect's,
     * unless it says a connection existed (the peer accepted, then reset). */
    if (t->early && e != ECONNRESET && e != EPIPE) {
        connect_failed(t, e);
        return;
    }
    char reason[160];
    snprintf(reason, sizeof reason, "%s: %s", what, evutil_socket_error_to_string(e));
    fail(t, e == ECONNREFUSED ? TT_ECONNREFUSED : TT_ECONNRESET, e, reason);
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
    t->cbs->on_connected(t->ctx);
    return leave(t);
}

static bool call_read(tti_transport *t, const uint8_t *p, size_t n, size_t *used, size_t *need) {
    t->busy++;
    *need = 0;
    *used = t->cbs->on_read(t->ctx, p, n, need);
    if (*used > n) *used = n;
    return leave(t);
}

static void sock_cb(evutil_socket_t fd, short what, void *arg);

/* Read interest unless paused; write interest only while output waits. */
static void rearm(tti_transport *t) {
    event_del(&t->ev);
    short what = (short)((t->read_paused ? 0 : EV_READ) | (t->want_write ? EV_WRITE : 0));
    event_assign(&t->ev, event_get_base(&t->ev), t->fd, (short)(what | EV_PERSIST), sock_cb, t);
    if (what) event_add(&t->ev, NULL);
}

static void set_want_write(tti_transport *t, bool on) {
    if (t->want_write == on || t->err != TT_OK) return;
    t->want_write = on;
    rearm(t);
}

void tti_transport_pause_read(tti_transport *t, bool paused) {
    if (!t || t->read_paused == paused) return;
    t->read_paused = paused;
    if (t->connected && t->err == TT_OK) rearm(t);
}

static size_t pending(const tti_transport *t) {
    size_t n = tx_kept(t);
    if (t->io && t->io->tx_owner == t) n += t->io->tx_n;
    if (t->x) n += evbuffer_get_length(t->x->sock_out);
    return n;
}

static void note_pending(tti_transport *t) {
    size_t n = pending(t);
    if (!t->congested) {
        if (n > t->high_water) t->congested = true;
    } else if (n <= t->high_water / 2 && !t->want_write && t->err == TT_OK) {
        /* Congested while the bytes were still staged, and the flush found
         * room for them: no EV_WRITE is awaited to report the drain, so one
         * is made up; on_drained comes on the next turn. */
        event_active(&t->ev, EV_WRITE, 1);
    }
}

/* ---- Plain TCP output ------------------------------------------------------ */

static bool tx_keep(tti_transport *t, const uint8_t *p, size_t n) {
    aside *a = aside_get(t);
    if (!a) {
        fail(t, TT_ENOMEM, 0, "no memory for output");
        return false;
    }
    if (a->tx_off && a->tx_off == a->tx_len) a->tx_off = a->tx_len = 0;
    size_t want = (size_t)a->tx_len + n;
    if (want > UINT32_MAX) {
        fail(t, TT_ENOMEM, 0, "output too large");
        return false;
    }
    if (want > a->tx_cap) {
        if (a->tx_off) {             /* slide the unsent part to the front first */
            memmove(a->tx, a->tx + a->tx_off, a->tx_len - a->tx_off);
            a->tx_len -= a->tx_off;
            a->tx_off = 0;
            want = (size_t)a->tx_len + n;
        }
        size_t cap = a->tx_cap ? a->tx_cap : 4096;
        while (cap < want) cap *= 2;
        uint8_t *b = want > a->tx_cap ? tti_realloc(a->tx, cap) : a->tx;
        if (!b) {
            fail(t, TT_ENOMEM, 0, "no memory for output");
            return false;
        }
        if (b != a->tx || cap > a->tx_cap) a->tx_cap = (uint32_t)cap;
        a->tx = b;
    }
    memcpy(a->tx + a->tx_len, p, n);
    a->tx_len += (uint32_t)n;
    return true;
}

/* Send now what the socket takes; keep the rest and wait for EV_WRITE. */
static void raw_send(tti_transport *t, const uint8_t *p, size_t n) {
    if (tx_kept(t)) {                /* older bytes wait: keep the order */
        (void)tx_keep(t, p, n);
        return;
    }
    ssize_t w = send(t->fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
        int e = errno;
        if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR) {
            fail_errno(t, e, "connection lost");
            return;
        }
        w = 0;
    }
    if ((size_t)w < n && tx_keep(t, p + w, n - (size_t)w)) set_want_write(t, true);
}

/* Where the session's bytes go on a layered connection. */
static struct evbuffer *top_out(tti_transport *t) {
    layers *x = t->x;
    return x->ws ? x->ws_out : x->tls ? x->plain_out : x->sock_out;
}

/* Bytes of `t` leave the loop's shared buffer: to the socket (plain TCP), or
 * into the top layer (framed or encrypted at the flush). */
static void pass_on(tti_transport *t, const uint8_t *p, size_t n) {
    if (t->x) evbuffer_add(top_out(t), p, n);
    else raw_send(t, p, n);
}

static void stage_flush(tti_transport *t) {
    tti_io_scratch *io = t->io;
    if (io->tx_owner != t) return;
    size_t n = io->tx_n;
    io->tx_n = 0;
    io->tx_owner = NULL;
    if (n && t->err == TT_OK) pass_on(t, io->tx, n);
}

/* The socket has room again. False when the transport failed. */
static bool raw_writable(tti_transport *t) {
    aside *a = t->a;
    while (a && a->tx_len > a->tx_off) {
        ssize_t w = send(t->fd, a->tx + a->tx_off, a->tx_len - a->tx_off, MSG_NOSIGNAL);
        if (w < 0) {
            int e = errno;
            if (e == EINTR) continue;
            if (e == EAGAIN || e == EWOULDBLOCK) return true;
            fail_errno(t, e, "connection lost");
            return false;
        }
        a->tx_off += (uint32_t)w;
    }
    /* All out: give the memory back (it was only needed while the peer was slow). */
    if (a) {
        tti_free(a->tx);
        a->tx = NULL;
        a->tx_off = a->tx_len = a->tx_cap = 0;
        aside_trim(t);
    }
    set_want_write(t, false);
    return true;
}

/* ---- Plain TCP input ------------------------------------------------------- */

/* Keep the unparsed tail (which may already sit in the kept buffer) for the
 * next read, and the size of the packet it starts when known. The buffer grows
 * with what arrives, never to a size a peer merely declares. */
static bool rx_keep(tti_transport *t, const uint8_t *tail, size_t n, size_t need) {
    aside *a = t->a;
    if (n == 0) {                    /* the read ended on a packet boundary */
        if (a && a->rx) {
            tti_free(a->rx);
            a->rx = NULL;
            a->rx_len = a->rx_cap = a->rx_need = 0;
            aside_trim(t);
        }
        return true;
    }
    if (!(a = aside_get(t))) {
        fail(t, TT_ENOMEM, 0, "no memory for input");
        return false;
    }
    a->rx_need = (uint32_t)need;
    if (a->rx && tail >= a->rx && tail < a->rx + a->rx_cap) {
        if (tail != a->rx) memmove(a->rx, tail, n);
        a->rx_len = (uint32_t)n;
        return true;
    }
    if (n > a->rx_cap || n < a->rx_cap / 4) {
        size_t cap = n < 256 ? 256 : n;
        uint8_t *b = tti_malloc(cap);
        if (!b) {
            fail(t, TT_ENOMEM, 0, "no memory for input");
            return false;
        }
        tti_free(a->rx);
        a->rx = b;
        a->rx_cap = (uint32_t)cap;
    }
    memcpy(a->rx, tail, n);
    a->rx_len = (uint32_t)n;
    return true;
}

static void raw_readable(tti_transport *t) {
    tti_io_scratch *io = t->io;
    for (int round = 0; round < READS_PER_WAKE; round++) {
        /* A packet larger than half the loop's buffer gathers in its own;
         * everything else is read behind the kept bytes in the shared one. */
        aside *a = t->a;             /* NULL: nothing kept */
        bool own = a && (a->rx_need > TTI_IO_RX_CAP / 2 || a->rx_len > TTI_IO_RX_CAP / 2);
        uint8_t *buf;
        size_t have = a ? a->rx_len : 0, cap;
        if (own) {
            if (a->rx_cap - a->rx_len < 4096) {
                /* Double, up to the packet's size. */
                size_t ncap = (size_t)a->rx_cap * 2 < TTI_IO_RX_CAP ? TTI_IO_RX_CAP : (size_t)a->rx_cap * 2;
                if (a->rx_need > a->rx_len && ncap > a->rx_need) ncap = a->rx_need;
                if (ncap < (size_t)a->rx_len + 4096) ncap = (size_t)a->rx_len + 4096;
                uint8_t *b = ncap <= UINT32_MAX ? tti_realloc(a->rx, ncap) : NULL;
                if (!b) {
                    fail(t, TT_ENOMEM, 0, "no memory for input");
                    return;
                }
                a->rx = b;
                a->rx_cap = (uint32_t)ncap;
            }
            buf = a->rx;
            cap = a->rx_cap;
        } else {
            buf = io->rx;
            cap = TTI_IO_RX_CAP;
            if (have) memcpy(buf, a->rx, have);
        }
        size_t room = cap - have;
        ssize_t n = recv(t->fd, buf + have, room, 0);
        if (n == 0) {
            fail(t, TT_ECONNRESET, 0, "connection closed by the peer");
            return;
        }
        if (n < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR) return;   /* the tail is still kept */
            fail_errno(t, e, "connection lost");
            return;
        }
        if (t->early) {              /* bytes came back: the connect surely worked */
            t->early = false;
            aside_trim(t);
            a = t->a;
        }
        have += (size_t)n;
        if (own && have < a->rx_need) {
            a->rx_len = (uint32_t)have;
            if ((size_t)n < room) return;
            continue;
        }
        size_t used = 0, need = 0;
        if (!call_read(t, buf, have, &used, &need)) return;
        if (t->err != TT_OK || t->fd < 0) return;
        if (!rx_keep(t, buf + used, have - used, need)) return;
        if ((size_t)n < room) return;    /* the socket is empty */
    }
}

/* ---- Layers: TLS, WebSocket, proxy ----------------------------------------- */

/* Write what waits in sock_out; wait for EV_WRITE if the socket is full. */
static void sock_flush(tti_transport *t) {
    layers *x = t->x;
    if (t->err != TT_OK || !t->connected || t->want_write) return;
    while (evbuffer_get_length(x->sock_out) > 0) {
        int w = evbuffer_write(x->sock_out, t->fd);
        if (w < 0) {
            int e = EVUTIL_SOCKET_ERROR();
            if (e == EINTR) continue;
            if (e == EAGAIN || e == EWOULDBLOCK) break;
            fail_errno(t, e, "connection lost");
            return;
        }
        if (w == 0) break;
    }
    if (evbuffer_get_length(x->sock_out) > 0) set_want_write(t, true);
}

static bool sock_writable(tti_transport *t) {
    layers *x = t->x;
    while (evbuffer_get_length(x->sock_out) > 0) {
        int w = evbuffer_write(x->sock_out, t->fd);
        if (w < 0) {
            int e = EVUTIL_SOCKET_ERROR();
            if (e == EINTR) continue;
            if (e == EAGAIN || e == EWOULDBLOCK) return true;
            fail_errno(t, e, "connection lost");
            return false;
        }
        if (w == 0) return true;
    }
    set_want_write(t, false);
    return true;
}

/* Hand the session what a layer decoded; keep what it did not use. False
 * when the session freed the transport. */
static bool layer_deliver(tti_transport *t, struct evbuffer *in) {
    layers *x = t->x;
    size_t len = evbuffer_get_length(in);
    if (len == 0 || len < x->need) return true;
    const uint8_t *p = evbuffer_pullup(in, -1);
    if (!p) {
        fail(t, TT_ENOMEM, 0, "no memory for input");
        return true;
    }
    size_t used = 0, need = 0;
    if (!call_read(t, p, len, &used, &need)) return false;
    if (t->err == TT_OK) {
        evbuffer_drain(in, used);
        x->need = need;
    }
    return true;
}

static void tls_fail(tti_transport *t, int rc) {
    int code = 0;
    const char *why = tti_tls_error(t->x->tls, &code);
    if (rc == TT_ECONNRESET) fail(t, TT_ECONNRESET, 0, "TLS connection closed by the peer");
    else fail(t, TT_ETLS, code, why && *why ? why : "TLS failure");
}

/* TLS: encrypt what waits in plain_out. False after a failure. */
static bool tls_push(tti_transport *t) {
    layers *x = t->x;
    if (!x->tls_up || evbuffer_get_length(x->plain_out) == 0) return true;
    int rc = tti_tls_write(x->tls, x->plain_out, x->sock_out);
    if (rc < 0) {
        tls_fail(t, rc);
        return false;
    }
    return true;
}

/* Where frames go: TLS's plaintext input, or the socket. */
static struct evbuffer *ws_lower(tti_transport *t) { return t->x->tls ? t->x->plain_out : t->x->sock_out; }

/* The connection is up (TLS too): send the upgrade request. */
static void ws_start(tti_transport *t) {
    layers *x = t->x;
    evbuffer_add(ws_lower(t), x->ws_req, strlen(x->ws_req));
    tti_free(x->ws_req);
    x->ws_req = NULL;
    if (x->tls) (void)tls_push(t);
}

/* Wrap everything in ws_out into binary frames, masking while copying straight
 * into the lower buffer. */
static bool ws_frame_out(tti_transport *t) {
    layers *x = t->x;
    struct evbuffer *src = x->ws_out, *dst = ws_lower(t);
    size_t left = evbuffer_get_length(src);
    while (left > 0) {
        size_t n = left < WS_FRAME_MAX ? left : WS_FRAME_MAX;
        uint8_t hdr[TTI_WS_MAX_FRAME_HDR], mask[4];
        int hn = tti_ws_tx_header(&x->ws_tx, TTI_WS_OP_BINARY, true, n, hdr, mask);
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
    layers *x = t->x;
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1) break;
        size_t used = 0;
        int rc = tti_ws_handshake_feed(x->ws_hs, v.iov_base, v.iov_len, &used);
        /* Not HTTP at all (an MQTT port, say): no line end may ever come. */
        static const char http[] = "HTTP/";
        size_t seen = x->ws_hs->total, start = seen - used;
        for (size_t i = start; rc == 0 && i < seen && i < sizeof http - 1; i++)
            if (((const char *)v.iov_base)[i - start] != http[i]) rc = TT_EPROTO;
        evbuffer_drain(in, used);
        if (rc < 0) {
            const char *why = x->ws_hs->err ? x->ws_hs->why : "not an HTTP response";
            if (!why) why = "bad response";
            char reason[160];
            int status = strncmp(why, "HTTP ", 5) == 0 ? atoi(why + 5) : 0;
            snprintf(reason, sizeof reason, "WebSocket upgrade failed: %s", why);
            fail(t, TT_EPROTO, status, reason);
            return 0;
        }
        if (rc == 1) {
            tti_free(x->ws_hs);
            x->ws_hs = NULL;
            x->ws_up = true;
            if (!call_connected(t)) return -1;
            return t->err == TT_OK ? 1 : 0;
        }
    }
    return 0;
}

/* Frames in: data to ws_in, pings answered. TT_OK, or the decoder's error
 * (whatever came before it is in ws_in). */
static int ws_decode(tti_transport *t, struct evbuffer *in) {
    layers *x = t->x;
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
        rc = tti_ws_rx_feed(&x->ws_rx, v.iov_base, v.iov_len, &used, &data, &dlen);
        if (rc == TTI_WS_DATA) {
            /* Payload moves without a copy where it fills whole chunks. */
            evbuffer_drain(in, used - dlen);
            evbuffer_remove_buffer(in, x->ws_in, dlen);
        } else {
            evbuffer_drain(in, used);
        }
        if (rc == TTI_WS_PING) {
            uint8_t f[TTI_WS_MAX_FRAME_HDR + TTI_WS_MAX_CONTROL];
            int n = tti_ws_tx_pong(&x->ws_tx, x->ws_rx.ctl, x->ws_rx.ctl_len, f, sizeof f);
            if (n > 0) {
                evbuffer_add(ws_lower(t), f, (size_t)n);
                pong = true;
            }
        } else if (rc < 0) {
            break;
        }
    }
    if (pong && x->tls) (void)tls_push(t);
    return rc < 0 ? rc : TT_OK;
}

static void ws_fail(tti_transport *t, int rc) {
    const tti_ws_rx *rx = &t->x->ws_rx;
    char reason[160];
    if (rc == TT_ECONNRESET) {
        snprintf(reason, sizeof reason, "WebSocket closed by the peer: %u%s%s", (unsigned)rx->close_code,
                 rx->close_reason[0] ? " " : "", rx->close_reason);
        fail(t, TT_ECONNRESET, rx->close_code, reason);
    } else {
        snprintf(reason, sizeof reason, "WebSocket protocol error: %s", rx->why ? rx->why : "?");
        fail(t, TT_EPROTO, 0, reason);
    }
}

/* Bytes from the layer below (socket or TLS). False when the transport is
 * gone. */
static bool ws_input(tti_transport *t, struct evbuffer *in) {
    layers *x = t->x;
    if (!x->ws_up) {
        int up = ws_handshake_input(t, in);
        if (up <= 0) return up == 0;
    }
    int rc = ws_decode(t, in);
    if (!layer_deliver(t, x->ws_in)) return false;
    if (rc < 0 && t->err == TT_OK) ws_fail(t, rc);
    return true;
}

/* Ciphertext arrived: finish the handshake, or decrypt for the session.
 * False when the transport is gone. */
static bool tls_input(tti_transport *t) {
    layers *x = t->x;
    if (!x->tls_up) {
        int rc = tti_tls_handshake(x->tls, x->sock_in, x->sock_out);
        if (rc == TT_EAGAIN) return true;
        if (rc != TT_OK) {
            tls_fail(t, rc);
            return true;
        }
        x->tls_up = true;
        if (x->ws) ws_start(t);
        else if (!call_connected(t)) return false;
        if (t->err != TT_OK) return true;
    }
    int n = tti_tls_read(x->tls, x->sock_in, x->plain_in, x->sock_out);
    if (evbuffer_get_length(x->plain_in) > 0) {
        if (x->ws ? !ws_input(t, x->plain_in) : !layer_deliver(t, x->plain_in)) return false;
    }
    if (n < 0 && t->err == TT_OK) tls_fail(t, n);
    return true;
}

/* TCP is up (through the proxy, if any): start TLS or WebSocket, or tell
 * the session. False when the session freed the transport meanwhile. */
static bool tunnel_up(tti_transport *t) {
    layers *x = t->x;
    if (!x || !x->tls_ctx) {
        if (x && x->ws) ws_start(t);
        else return call_connected(t);
        return true;
    }
    tt_err err = TT_OK;
    x->tls = tti_tls_new(x->tls_ctx, x->host, x->sni, x->alpn, &err);
    x->plain_in = evbuffer_new();
    x->plain_out = evbuffer_new();
    if (!x->tls || !x->plain_in || !x->plain_out) {
        fail(t, err != TT_OK ? err : TT_ENOMEM, 0, "cannot start TLS");
        return true;
    }
    return tls_input(t);             /* sends the ClientHello */
}

/* Socket input for a layered connection. False when the transport is gone. */
static bool layered_readable(tti_transport *t) {
    layers *x = t->x;
    int n = evbuffer_read(x->sock_in, t->fd, LAYER_READ_MAX);
    if (n == 0) {
        fail(t, TT_ECONNRESET, 0,
             x->px.kind && !x->px_open ? "proxy closed the connection" : "connection closed by the peer");
        return true;
    }
    if (n < 0) {
        int e = EVUTIL_SOCKET_ERROR();
        if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR) fail_errno(t, e, "connection lost");
        return true;
    }
    if (x->px.kind && !x->px_open) {
        int r = tti_proxy_input(&x->px, x->sock_in, x->sock_out);
        if (r < 0) fail(t, x->px.err, x->px.detail, x->px.reason);
        if (r <= 0) return true;
        x->px_open = true;
        TTI_LOG(DEBUG, "transport", "proxy tunnel to port %u open", (unsigned)x->px.port);
        if (!tunnel_up(t)) return false;
        if (t->err != TT_OK || evbuffer_get_length(x->sock_in) == 0) return true;
    }
    if (x->tls) return tls_input(t);
    if (x->ws) return ws_input(t, x->sock_in);
    return layer_deliver(t, x->sock_in);
}

/* ---- The socket ------------------------------------------------------------ */

/* The non-blocking connect finished (the socket became writable); or, for
 * plain TCP, the turn after connect() (see start_tcp). */
static void connect_done(tti_transport *t) {
    aside *a = t->a;
    if (!t->x && !a->ai_head) {
        t->connected = true;
        t->early = true;
        (void)call_connected(t);
        return;
    }
    int e = 0;
    socklen_t elen = sizeof e;
    if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &e, &elen) != 0) e = errno;
    if (e != 0) {
        connect_failed(t, e);
        return;
    }
    t->connected = true;
    if (a->ai_head) {
        evutil_freeaddrinfo(a->ai_head);
        a->ai_head = a->ai_next = NULL;
    }
    aside_trim(t);                   /* the connect's state is done with */
    rearm(t);
    if (t->x && t->x->px.kind) (void)tti_proxy_begin(&t->x->px, t->x->sock_out);
    else if (!tunnel_up(t)) return;
    if (t->x) sock_flush(t);
}

static void sock_cb(evutil_socket_t fd, short what, void *arg) {
    tti_transport *t = arg;
    (void)fd;
    if (!t->connected) {
        if (what & EV_TIMEOUT) connect_failed(t, ETIMEDOUT);   /* only while addresses remain */
        else connect_done(t);
        return;
    }
    if (what & EV_WRITE) {
        bool ok = t->x ? sock_writable(t) : raw_writable(t);
        if (!ok) return;
        if (t->congested && pending(t) <= t->high_water / 2) {
            t->congested = false;
            t->busy++;
            t->cbs->on_drained(t->ctx);
            if (!leave(t) || t->err != TT_OK) return;
        }
    }
    if (!(what & EV_READ)) return;
    if (!t->x) {
        raw_readable(t);
        return;
    }
    if (!layered_readable(t)) return;
    if (t->err == TT_OK) sock_flush(t);
}

/* `ip` as an IPv4 or IPv6 address with `port` (0: any): its length, or 0 if
 * it is not a numeric address. libc's inet_pton, not libevent's (which
 * parses IPv4 with sscanf, a visible cost per connection). */
static socklen_t numeric_addr(const char *ip, uint16_t port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        return sizeof *s4;
    }
    if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        return sizeof *s6;
    }
    return 0;
}

static void start_tcp(tti_transport *t, const struct sockaddr *sa, socklen_t salen) {
    /* Non-blocking and close-on-exec from the start: four fcntl() calls
     * fewer per connection. */
    evutil_socket_t fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail_errno(t, errno, "socket() failed");
        return;
    }
    t->fd = fd;
    t->a->tried++;
    int one = 1;                     /* set before connect(): it holds once connected */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const char *source = t->a->source_addr;
    if (source) {
        /* A bare IPv4 or IPv6 address, any port. */
        struct sockaddr_storage src;
        socklen_t srclen = numeric_addr(source, 0, &src);
        errno = 0;
#ifdef IP_BIND_ADDRESS_NO_PORT
        /* The port is then picked by connect(), unique per destination
         * rather than per source address: thousands of connections from one
         * address to different brokers (or ports) do not exhaust the ports. */
        if (srclen) setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
        if (srclen == 0 || bind(fd, (struct sockaddr *)&src, srclen) != 0) {
            fail(t, TT_EINVAL, errno, "cannot bind the source address");
            return;
        }
    }
    if (connect(fd, sa, salen) != 0 && errno != EINPROGRESS) {
        connect_failed(t, errno);
        return;
    }
    if (!t->x && !t->a->ai_head) {
        /* Plain TCP does not wait to learn that the connect finished: the
         * session writes on the next turn. On loopback and fast links the
         * handshake is already done, so CONNECT leaves at once; otherwise
         * send() says EAGAIN and the bytes wait for EV_WRITE like any others.
         * A failed connect shows as the first send or receive error. That
         * saves, per connection, a wait for writability, a getsockopt() and
         * two epoll_ctl() calls. (A name with several addresses waits, so
         * that a failure can move on to the next address before the session
         * has written anything.) */
        event_assign(&t->ev, event_get_base(&t->ev), fd, EV_READ | EV_PERSIST, sock_cb, t);
        event_add(&t->ev, NULL);
        event_active(&t->ev, EV_WRITE, 1);
        return;
    }
    /* Writable once connected (or failed), even when connect() finished at
     * once. While other addresses remain, an attempt gets ATTEMPT_MS. */
    static const struct timeval attempt = { ATTEMPT_MS / 1000, (ATTEMPT_MS % 1000) * 1000 };
    event_assign(&t->ev, event_get_base(&t->ev), fd, EV_WRITE, sock_cb, t);
    event_add(&t->ev, t->a->ai_next ? &attempt : NULL);
}

static void dns_cb(int result, struct evutil_addrinfo *res, void *arg) {
    tti_transport *t = arg;
    t->a->dns_req = NULL;
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
    if (res->ai_next) {
        /* Several addresses: kept until one of them answers. */
        t->a->ai_head = res;
        t->a->ai_next = res->ai_next;
        start_tcp(t, res->ai_addr, (socklen_t)res->ai_addrlen);
        return;
    }
    start_tcp(t, res->ai_addr, (socklen_t)res->ai_addrlen);
    evutil_freeaddrinfo(res);
}

/* The upgrade request (with a fresh key) and the frame state, made up front so
 * a bad path or host fails the call. */
static tt_err ws_prepare(layers *x, const tti_transport_opts *o) {
    const char *host = o->ws_host ? o->ws_host : o->host;
    const char *path = o->ws_path && *o->ws_path ? o->ws_path : "/mqtt";
    size_t cap = strlen(host) + strlen(path) + 256;
    x->ws = true;
    x->ws_hs = tti_malloc(sizeof *x->ws_hs);
    x->ws_req = tti_malloc(cap);
    x->ws_in = evbuffer_new();
    x->ws_out = evbuffer_new();
    if (!x->ws_hs || !x->ws_req || !x->ws_in || !x->ws_out) return TT_ENOMEM;
    if (tti_ws_handshake_init(x->ws_hs) != TT_OK) return TT_EINTERNAL;
    int n = tti_ws_handshake_request(x->ws_hs, host, o->ws_port ? o->ws_port : o->port, o->tls,
                                     path, x->ws_req, cap);
    if (n < 0) return n == TT_ENOMEM ? TT_ENOMEM : TT_EINVAL;
    tti_ws_rx_init(&x->ws_rx, 0);
    tti_ws_tx_init(&x->ws_tx);
    return TT_OK;
}

static tt_err layers_new(tti_transport *t, const tti_transport_opts *o) {
    layers *x = tti_calloc(1, sizeof *x);
    if (!x) return TT_ENOMEM;
    t->x = x;
    x->sock_in = evbuffer_new();
    x->sock_out = evbuffer_new();
    if (!x->sock_in || !x->sock_out) return TT_ENOMEM;
    if (o->tls) {
        x->tls_ctx = tti_tls_ctx_ref(o->tls_ctx);
        x->host = tti_strdup(o->host);
        x->sni = o->tls_opts && o->tls_opts->sni ? tti_strdup(o->tls_opts->sni) : NULL;
        x->alpn = o->tls_opts && o->tls_opts->alpn ? tti_strdup(o->tls_opts->alpn) : NULL;
        if (!x->host) return TT_ENOMEM;
    }
    if (o->ws) {
        tt_err err = ws_prepare(x, o);
        if (err != TT_OK) return err;
    }
    if (o->proxy) return tti_proxy_init(&x->px, o->proxy, o->host, o->port, o->proxy_user, o->proxy_pass);
    return TT_OK;
}

tt_err tti_transport_connect(struct event_base *base, const tti_transport_opts *o,
                             const tti_transport_cbs *cbs, void *ctx, tti_transport **out) {
    if ((o->tls && !o->tls_ctx) || !o->io) return TT_EINVAL;
    tti_transport *t = tti_calloc(1, sizeof *t);
    if (!t) return TT_ENOMEM;
    t->fd = -1;
    event_assign(&t->ev, base, -1, 0, err_cb, t);   /* fires only once fail() activates it */
    t->io = o->io;
    t->cbs = cbs;
    t->ctx = ctx;
    size_t hw = o->high_water ? o->high_water : 4u << 20;
    t->high_water = hw > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)hw;
    t->a = tti_calloc(1, sizeof *t->a);
    tt_err err = t->a ? TT_OK : TT_ENOMEM;
    if (err == TT_OK && (o->tls || o->ws || o->proxy)) err = layers_new(t, o);
    if (err != TT_OK) {
        t->io = NULL;
        release(t);
        return err;
    }
    const char *host = o->host;
    uint16_t port = o->port;
    if (o->proxy) {
        host = o->proxy_host;
        port = o->proxy_port;
    }
    t->a->port = port;
    t->a->source_addr = o->source_addr;
    *out = t;
    /* Numeric addresses skip the resolver. */
    struct sockaddr_storage ss;
    socklen_t sslen = numeric_addr(host, port, &ss);
    if (sslen) {
        start_tcp(t, (struct sockaddr *)&ss, sslen);
        return TT_OK;
    }
    struct evdns_base *dns = o->dns ? o->dns : o->loop ? tti_loop_dns(o->loop) : NULL;
    if (!dns) {
        fail(t, TT_ENOTFOUND, 0, "no resolver for a host name");
        return TT_OK;
    }
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    if (o->source_addr) {            /* only addresses the source can reach */
        struct sockaddr_storage src;
        if (numeric_addr(o->source_addr, 0, &src)) hints.ai_family = src.ss_family;
    }
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
    char pstr[8];
    snprintf(pstr, sizeof pstr, "%u", (unsigned)port);
    /* The callback may run inside this call (cached or /etc/hosts answers). */
    t->a->dns_req = evdns_getaddrinfo(dns, host, pstr, &hints, dns_cb, t);
    return TT_OK;
}

void tti_transport_write(tti_transport *t, const void *p, size_t n) {
    if (t->err != TT_OK || !t->connected || n == 0) return;
    if (tx_kept(t)) {                /* plain TCP, the socket is behind: join the queue */
        (void)tx_keep(t, p, n);
        return;
    }
    tti_io_scratch *io = t->io;
    if (io->tx_owner != t) {
        /* Another connection's batch is still staged (it missed its flush). */
        if (io->tx_owner) stage_flush(io->tx_owner);
        io->tx_owner = t;
    }
    if (io->tx_n + n > TTI_IO_TX_CAP) {
        stage_flush(t);
        if (t->err != TT_OK) return;
        /* Large, or the socket did not take all of the batch just sent: these
         * bytes go straight behind it. Staged, they would leave after any
         * write that comes before the flush, which joins the kept bytes. */
        if (n > TTI_IO_TX_CAP / 2 || tx_kept(t)) {
            pass_on(t, p, n);
            return;
        }
        io->tx_owner = t;
    }
    memcpy(io->tx + io->tx_n, p, n);
    io->tx_n += n;
}

void tti_transport_flush(tti_transport *t) {
    if (t->err != TT_OK || !t->connected) return;
    stage_flush(t);
    layers *x = t->x;
    if (x) {
        if (x->ws && x->ws_up && evbuffer_get_length(x->ws_out) > 0 && !ws_frame_out(t)) return;
        if (x->tls && !tls_push(t)) return;
        sock_flush(t);
    }
    note_pending(t);
}

size_t tti_transport_pending(tti_transport *t) { return pending(t); }

bool tti_transport_congested(tti_transport *t) {
    note_pending(t);
    return t->congested;
}

void tti_transport_free(tti_transport *t) {
    if (!t) return;
    if (t->io && t->io->tx_owner == t) {     /* unflushed bytes die with the connection */
        t->io->tx_owner = NULL;
        t->io->tx_n = 0;
    }
    event_del(&t->ev);
    if (t->fd >= 0) {
        evutil_closesocket(t->fd);
        t->fd = -1;
    }
    t->err = t->err != TT_OK ? t->err : TT_ECLOSED;   /* no more writes */
    if (t->a && t->a->dns_req) {
        /* The resolver calls back with a cancel result and frees us there. */
        t->dead = true;
        struct evdns_getaddrinfo_request *r = t->a->dns_req;
        evdns_getaddrinfo_cancel(r);
        return;
    }
    if (t->busy) {                   /* inside one of our calls to the session */
        t->freed = true;
        return;
    }
    release(t);
}
