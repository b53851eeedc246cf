/* The plain-TCP transport against a real peer on loopback, driven on a private
 * event base (no runtime): refused connects, bytes both ways, partial packets
 * kept and shown again, a large packet gathered whole, back-pressure and its
 * release, the peer closing or resetting, frees from inside every callback,
 * two connections sharing the loop's buffers, source addresses, host names
 * through the resolver (a local fake name server for the failures and for
 * names with several addresses) and IPv6.
 *
 * The peer is a socket of the test's own, listening on a port the kernel
 * picks, accepted and driven from the same event base. Every wait ends after
 * WAIT_MS, so a transport that never calls back fails instead of hanging. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "actors/loop.h"
#include "transport/transport.h"
#include "tt_test.h"

#define WAIT_MS 5000                  /* the longest any one wait may take */
#define LARGE (1u << 20)              /* body of the large packet: over TTI_IO_RX_CAP / 2 */

/* The byte at offset i of every test stream: not periodic below 2^32 bytes,
 * so a lost, doubled or reordered piece shows at its offset. */
static uint8_t pat(size_t i) { return (uint8_t)(i ^ (i >> 8) ^ (i >> 16) ^ (i >> 24)); }

static void fill(uint8_t *p, size_t n, size_t from) {
    for (size_t i = 0; i < n; i++) p[i] = pat(from + i);
}

/* Test packets: a 4-byte big-endian body length, then the body. */
static size_t put_packet(uint8_t *out, size_t body, size_t seed) {
    out[0] = (uint8_t)(body >> 24);
    out[1] = (uint8_t)(body >> 16);
    out[2] = (uint8_t)(body >> 8);
    out[3] = (uint8_t)body;
    fill(out + 4, body, seed);
    return 4 + body;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- The event base and the loop's shared buffers -------------------------------- */

typedef struct env {
    struct event_base *base;
    tti_io_scratch *io;
    struct event *deadline;           /* ends a loop turn when a wait runs out */
} env;

static void deadline_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    (void)arg;
}

static void env_fini(env *e) {
    if (e->deadline) event_free(e->deadline);
    if (e->base) event_base_free(e->base);
    free(e->io);
    memset(e, 0, sizeof *e);
}

static bool env_init(env *e) {
    /* The peer's bufferevents write without MSG_NOSIGNAL: a write into a
     * connection the transport reset must not kill the test. */
    signal(SIGPIPE, SIG_IGN);
    memset(e, 0, sizeof *e);
    e->base = event_base_new();
    e->io = calloc(1, sizeof *e->io);
    e->deadline = e->base ? evtimer_new(e->base, deadline_cb, NULL) : NULL;
    if (e->base && e->io && e->deadline) return true;
    env_fini(e);
    return false;
}

/* One loop turn, cut short at `end`; false once `end` has passed. A timer of
 * our own rather than event_base_loopexit(): an exit left armed by a wait that
 * ended early would cut a later wait short. */
static bool turn(env *e, int64_t end) {
    int64_t left = end - now_ms();
    if (left <= 0) return false;
    struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000 * 1000) };
    evtimer_add(e->deadline, &tv);
    event_base_loop(e->base, EVLOOP_ONCE);
    evtimer_del(e->deadline);
    return true;
}

/* Run the loop until `cond` holds; after WAIT_MS, a failed check and on to
 * the test's clean-up at `out`. */
#define AWAIT(e, cond)                                                        \
    do {                                                                      \
        int64_t tt_end_ = now_ms() + WAIT_MS;                                 \
        while (!(cond) && turn((e), tt_end_)) {                               \
        }                                                                     \
        if (!(cond)) {                                                        \
            TT_CHECK_MSG(cond, "not within %d ms", WAIT_MS);                  \
            goto out;                                                         \
        }                                                                     \
    } while (0)

/* Let whatever is due run, without waiting: after a free, a callback that
 * should never come would come here. */
static void settle(env *e) {
    for (int i = 0; i < 8; i++) event_base_loop(e->base, EVLOOP_NONBLOCK);
}

/* ---- Addresses ----------------------------------------------------------------- */

static socklen_t sockaddr_of(int family, const char *ip, uint16_t port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        if (inet_pton(AF_INET, ip, &s4->sin_addr) != 1) return 0;
        return sizeof *s4;
    }
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1) return 0;
    return sizeof *s6;
}

static uint16_t port_of(const struct sockaddr_storage *ss) {
    if (ss->ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static const char *ip_of(const struct sockaddr_storage *ss, char *buf, size_t n) {
    const void *a = ss->ss_family == AF_INET ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                                             : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (!inet_ntop(ss->ss_family, a, buf, (socklen_t)n)) snprintf(buf, n, "?");
    return buf;
}

/* A socket bound to ip:port (0: any free port), or -1. */
static evutil_socket_t bound_socket(int family, int type, const char *ip, uint16_t port) {
    struct sockaddr_storage ss;
    socklen_t len = sockaddr_of(family, ip, port, &ss);
    if (len == 0) return -1;
    evutil_socket_t fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (family == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
        evutil_closesocket(fd);
        return -1;
    }
    return fd;
}

static uint16_t local_port(evutil_socket_t fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return 0;
    return port_of(&ss);
}

/* A loopback port nothing listens on: bound, read back, closed. */
static uint16_t closed_port(void) {
    evutil_socket_t fd = bound_socket(AF_INET, SOCK_STREAM, "127.0.0.1", 0);
    if (fd < 0) return 0;
    uint16_t port = local_port(fd);
    evutil_closesocket(fd);
    return port;
}

static bool can_bind(int family, const char *ip) {
    evutil_socket_t fd = bound_socket(family, SOCK_STREAM, ip, 0);
    if (fd < 0) return false;
    evutil_closesocket(fd);
    return true;
}

/* ---- The peer: a listening socket and the one connection it accepts ---------------- */

typedef struct peer {
    env *e;
    evutil_socket_t lfd[2];           /* IPv4 and IPv6 listeners, same port */
    struct event *lev[2];
    uint16_t port;
    bool reading;                     /* read as soon as accepted (default) */
    bool pattern;                     /* check input against pat() and drop it, not keep it */
    int accepted;
    struct bufferevent *bev;
    struct sockaddr_storage from;     /* the transport's address as the peer sees it */
    bool closed;                      /* end of stream or error seen */
    uint8_t *in;                      /* what arrived (unless `pattern`) */
    size_t got, in_cap;
    size_t bad_at;                    /* `pattern`: first wrong offset, SIZE_MAX if none */
} peer;

static void peer_read_cb(struct bufferevent *bev, void *arg) {
    peer *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    uint8_t chunk[16384];
    int n;
    while ((n = evbuffer_remove(in, chunk, sizeof chunk)) > 0) {
        if (p->pattern) {
            for (int i = 0; i < n && p->bad_at == SIZE_MAX; i++)
                if (chunk[i] != pat(p->got + (size_t)i)) p->bad_at = p->got + (size_t)i;
        } else {
            if (p->got + (size_t)n > p->in_cap) {
                size_t cap = p->in_cap ? p->in_cap : 4096;
                while (cap < p->got + (size_t)n) cap *= 2;
                uint8_t *b = realloc(p->in, cap);
                if (!b) abort();
                p->in = b;
                p->in_cap = cap;
            }
            memcpy(p->in + p->got, chunk, (size_t)n);
        }
        p->got += (size_t)n;
    }
}

static void peer_event_cb(struct bufferevent *bev, short what, void *arg) {
    peer *p = arg;
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) p->closed = true;
}

static void peer_accept_cb(evutil_socket_t fd, short what, void *arg) {
    peer *p = arg;
    (void)what;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    evutil_socket_t s = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (s < 0) return;
    p->accepted++;
    if (p->bev) {                     /* one connection per peer: a second one is counted */
        evutil_closesocket(s);
        return;
    }
    p->from = ss;
    int one = 1;                      /* pieces sent apart must leave apart */
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    p->bev = bufferevent_socket_new(p->e->base, s, BEV_OPT_CLOSE_ON_FREE);
    if (!p->bev) {
        evutil_closesocket(s);
        return;
    }
    bufferevent_setcb(p->bev, peer_read_cb, NULL, peer_event_cb, p);
    if (p->reading) bufferevent_enable(p->bev, EV_READ);
}

enum { V4 = 1, V6 = 2 };

/* Listen on 127.0.0.1 and/or ::1. With both, IPv6 is taken when the same port
 * is free there too. */
static bool peer_listen(peer *p, env *e, int families) {
    memset(p, 0, sizeof *p);
    p->e = e;
    p->lfd[0] = p->lfd[1] = -1;
    p->reading = true;
    p->bad_at = SIZE_MAX;
    if (families & V4) {
        p->lfd[0] = bound_socket(AF_INET, SOCK_STREAM, "127.0.0.1", 0);
        if (p->lfd[0] < 0 || listen(p->lfd[0], 8) != 0) return false;
        p->port = local_port(p->lfd[0]);
    }
    if (families & V6) {
        p->lfd[1] = bound_socket(AF_INET6, SOCK_STREAM, "::1", p->port);
        if (p->lfd[1] >= 0 && listen(p->lfd[1], 8) != 0) {
            evutil_closesocket(p->lfd[1]);
            p->lfd[1] = -1;
        }
        if (p->lfd[1] < 0 && !(families & V4)) return false;
        if (!p->port) p->port = local_port(p->lfd[1]);
    }
    for (int i = 0; i < 2; i++) {
        if (p->lfd[i] < 0) continue;
        p->lev[i] = event_new(e->base, p->lfd[i], EV_READ | EV_PERSIST, peer_accept_cb, p);
        if (!p->lev[i] || event_add(p->lev[i], NULL) != 0) return false;
    }
    return p->port != 0;
}

/* peer_listen() as a checked step of a test. */
static bool listening(peer *p, env *e, int families) {
    bool ok = peer_listen(p, e, families);
    TT_CHECK_MSG(ok, "cannot listen on loopback");
    return ok;
}

static void peer_send(peer *p, const void *d, size_t n) { bufferevent_write(p->bev, d, n); }

static size_t peer_unsent(const peer *p) { return evbuffer_get_length(bufferevent_get_output(p->bev)); }

/* Close the accepted connection: a FIN, or with `reset` an RST. */
static void peer_drop(peer *p, bool reset) {
    if (!p->bev) return;
    if (reset) {
        struct linger lg = { 1, 0 };
        setsockopt(bufferevent_getfd(p->bev), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    bufferevent_free(p->bev);
    p->bev = NULL;
}

static void peer_fini(peer *p) {
    peer_drop(p, false);
    for (int i = 0; i < 2; i++) {
        if (p->lev[i]) event_free(p->lev[i]);
        if (p->lfd[i] >= 0) evutil_closesocket(p->lfd[i]);
        p->lev[i] = NULL;
        p->lfd[i] = -1;
    }
    free(p->in);
    p->in = NULL;
}

/* The transport's socket, found by its two ends as the peer saw them: -1 if
 * none. Only to fill its send buffer behind the transport's back. */
static evutil_socket_t transport_fd(const peer *p) {
    for (evutil_socket_t fd = 3; fd < 1024; fd++) {
        struct sockaddr_storage a, b;
        socklen_t al = sizeof a, bl = sizeof b;
        if (getsockname(fd, (struct sockaddr *)&a, &al) != 0 || getpeername(fd, (struct sockaddr *)&b, &bl) != 0)
            continue;
        if (a.ss_family == p->from.ss_family && memcmp(&a, &p->from, al) == 0 && port_of(&b) == p->port)
            return fd;
    }
    return -1;
}

/* ---- The transport's user ---------------------------------------------------------- */

enum { FREE_NEVER, FREE_IN_CONNECTED, FREE_IN_READ, FREE_IN_DRAINED, FREE_IN_ERROR };

typedef struct conn {
    tti_transport *t;
    bool inside;                      /* in a call into the transport */
    bool gone;                        /* freed by us */
    int free_in;                      /* free the transport inside this callback */
    const char *hello;                /* written and flushed inside on_connected */
    int connected, reads, drained, errors;
    int misplaced;                    /* callbacks inside a call, after on_error or after the free */
    tt_err err;
    int detail;
    char reason[256];
    /* on_read: with `frame`, consumes whole packets only and sets *need;
     * otherwise everything. With `expect`, what it is shown must be that
     * stream from the first unconsumed byte on. */
    bool frame;
    const uint8_t *expect;
    size_t expect_len;
    size_t used;                      /* bytes consumed so far */
    size_t shown;                     /* stream offset where the last call's data ended */
    int mismatch;                     /* calls shown anything else */
    int packets;
    size_t need, max_need;            /* *need of the last call, and the largest */
    int short_calls;                  /* calls shown less of a large packet than *need asked for */
    size_t largest_call;
    size_t pending_at_drain;
    bool congested_at_drain;
} conn;

static void conn_init(conn *c) { memset(c, 0, sizeof *c); }

static void conn_free(conn *c) {
    if (!c->t) return;
    bool was = c->inside;
    c->inside = true;
    tti_transport_free(c->t);
    c->inside = was;
    c->t = NULL;
    c->gone = true;
}

/* The end of a case: free, let the loop run out, and no callback may have
 * come where it must not (inside a call, after an error or after the free). */
static void conn_end(conn *c, env *e) {
    conn_free(c);
    settle(e);
    TT_CHECK_MSG(c->misplaced == 0, "%d callbacks out of place", (int)c->misplaced);
}

static void conn_write(conn *c, const void *p, size_t n) {
    c->inside = true;
    tti_transport_write(c->t, p, n);
    c->inside = false;
}

static void conn_flush(conn *c) {
    c->inside = true;
    tti_transport_flush(c->t);
    c->inside = false;
}

static size_t conn_pending(conn *c) {
    c->inside = true;
    size_t n = tti_transport_pending(c->t);
    c->inside = false;
    return n;
}

static bool conn_congested(conn *c) {
    c->inside = true;
    bool b = tti_transport_congested(c->t);
    c->inside = false;
    return b;
}

/* Every callback: never inside a call into the transport, never after its
 * on_error, never after it was freed. */
static void note_call(conn *c) {
    if (c->inside || c->errors || c->gone) c->misplaced++;
}

static void on_connected(void *ctx) {
    conn *c = ctx;
    note_call(c);
    c->connected++;
    if (c->hello) {
        conn_write(c, c->hello, strlen(c->hello));
        conn_flush(c);
    }
    if (c->free_in == FREE_IN_CONNECTED) conn_free(c);
}

static size_t on_read(void *ctx, const uint8_t *data, size_t len, size_t *need) {
    conn *c = ctx;
    note_call(c);
    c->reads++;
    if (len > c->largest_call) c->largest_call = len;
    if (c->expect && (len > c->expect_len - c->used || memcmp(data, c->expect + c->used, len) != 0))
        c->mismatch++;
    c->shown = c->used + len;
    /* A large packet asked for must come whole (the transport gathers it). */
    if (c->need > TTI_IO_RX_CAP / 2 && len < c->need) c->short_calls++;
    size_t used = len;
    *need = 0;
    if (c->frame) {
        used = 0;
        while (len - used >= 4) {
            const uint8_t *h = data + used;
            size_t plen = 4 + ((size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3]);
            if (len - used < plen) {
                *need = plen;
                break;
            }
            used += plen;
            c->packets++;
        }
    }
    c->need = *need;
    if (*need > c->max_need) c->max_need = *need;
    c->used += used;
    if (c->free_in == FREE_IN_READ) {
        conn_free(c);
        return len / 2;               /* ignored: the transport is gone */
    }
    return used;
}

static void on_drained(void *ctx) {
    conn *c = ctx;
    note_call(c);
    c->drained++;
    c->pending_at_drain = conn_pending(c);
    c->congested_at_drain = conn_congested(c);
    if (c->free_in == FREE_IN_DRAINED) conn_free(c);
}

static void on_error(void *ctx, tt_err err, int detail, const char *reason) {
    conn *c = ctx;
    note_call(c);
    c->errors++;
    c->err = err;
    c->detail = detail;
    snprintf(c->reason, sizeof c->reason, "%s", reason ? reason : "(null)");
    if (c->free_in == FREE_IN_ERROR) conn_free(c);
}

static const tti_transport_cbs conn_cbs = { on_connected, on_read, on_drained, on_error };

static tt_err conn_connect(conn *c, env *e, const char *host, uint16_t port, const char *source,
                           struct evdns_base *dns, size_t high_water) {
    tti_transport_opts o;
    memset(&o, 0, sizeof o);
    o.io = e->io;
    o.host = host;
    o.port = port;
    o.source_addr = source;
    o.dns = dns;
    o.high_water = high_water;
    c->inside = true;
    tt_err rc = tti_transport_connect(e->base, &o, &conn_cbs, c, &c->t);
    c->inside = false;
    if (rc != TT_OK) c->t = NULL;
    return rc;
}

/* The transport connected to the peer on 127.0.0.1, and the peer's side
 * accepted; false after a failed check. */
static bool connected_to(conn *c, env *e, peer *p, size_t high_water) {
    TT_CHECK_EQ_INT(conn_connect(c, e, "127.0.0.1", p->port, NULL, NULL, high_water), TT_OK);
    if (!c->t) return false;
    AWAIT(e, c->connected && p->bev);
    return true;
out:
    return false;
}

static bool starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* ---- 1. Refused --------------------------------------------------------------------- */

static void refused_once(const char *hello) {
    env e;
    conn c;
    conn_init(&c);
    TT_REQUIRE(env_init(&e));
    uint16_t port = closed_port();
    TT_CHECK(port != 0);
    if (!port) goto out;
    c.hello = hello;
    TT_CHECK_EQ_INT(conn_connect(&c, &e, "127.0.0.1", port, NULL, NULL, 0), TT_OK);
    if (!c.t) goto out;
    AWAIT(&e, c.errors > 0);
    char want[64];
    snprintf(want, sizeof want, "connect to port %u failed", (unsigned)port);
    TT_CHECK_EQ_INT(c.err, TT_ECONNREFUSED);
    TT_CHECK_EQ_INT(c.detail, ECONNREFUSED);
    TT_CHECK_MSG(starts_with(c.reason, want), "reason \"%s\"", c.reason);
    /* Writes after the failure are ignored. */
    conn_write(&c, "late", 4);
    conn_flush(&c);
    settle(&e);
    TT_CHECK_EQ_INT(c.errors, 1);
    TT_CHECK_EQ_INT(c.reads, 0);
out:
    conn_end(&c, &e);
    env_fini(&e);
}

static void test_refused(void) {
    refused_once(NULL);
    refused_once("CONNECT");          /* written on the turn after connect(), as the session does */
}

/* ---- 2. Round trip ------------------------------------------------------------------- */

static void test_round_trip(void) {
    /* 70000: more than the loop's shared buffer holds, so it passes staging. */
    static const size_t sizes[] = { 4, 1, 3000, 70000, 10 };
    env e;
    peer p;
    conn c;
    uint8_t *out = NULL, *back = NULL;
    size_t total = 0, back_len = 5000;
    conn_init(&c);
    TT_REQUIRE(env_init(&e));
    if (!listening(&p, &e, V4)) goto out;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total += sizes[i];
    out = malloc(total);
    back = malloc(back_len);
    TT_CHECK(out && back);
    if (!out || !back) goto out;
    fill(out, total, 0);
    fill(back, back_len, 12345);
    if (!connected_to(&c, &e, &p, 0)) goto out;
    size_t off = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        conn_write(&c, out + off, sizes[i]);
        off += sizes[i];
    }
    conn_flush(&c);
    AWAIT(&e, p.got >= total);
    TT_CHECK_EQ_INT(p.got, total);
    TT_CHECK(memcmp(p.in, out, total) == 0);
    c.expect = back;
    c.expect_len = back_len;
    peer_send(&p, back, back_len);
    AWAIT(&e, c.used >= back_len);
    TT_CHECK_EQ_INT(c.used, back_len);
    TT_CHECK_EQ_INT(c.mismatch, 0);
    TT_CHECK_EQ_INT(c.connected, 1);
    /* Nothing else went out: after the free the peer sees the end, no more bytes. */
    conn_free(&c);
    AWAIT(&e, p.closed);
    TT_CHECK_EQ_INT(p.got, total);
    TT_CHECK_EQ_INT(c.errors, 0);
out:
    conn_end(&c, &e);
    peer_fini(&p);
    env_fini(&e);
    free(out);
    free(back);
}

/* ---- 3. Partial consumption ---------------------------------------------------------- */

static void test_partial_packets(void) {
    env e;
    peer p;
    conn c;
    uint8_t stream[512];
    conn_init(&c);
    TT_REQUIRE(env_init(&e));
    if (!listening(&p, &e, V4)) goto out;
    size_t n = 0;
    n += put_packet(stream + n, 10, 0);       /* bytes 0..14 */
    n += put_packet(stream + n, 300, 1000);   /* 14..318 */
    n += put_packet(stream + n, 7, 2000);     /* 318..329 */
    /* Pieces ending inside a header, inside a body, just after a header. */
    const size_t cuts[] = { 2, 20, 320, n };
    c.frame = true;
    c.expect = stream;
    c.expect_len = n;
    if (!connected_to(&c, &e, &p, 0)) goto out;
    size_t sent = 0;
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        size_t before = c.used;
        peer_send(&p, stream + sent, cuts[i] - sent);
        sent = cuts[i];
        /* Shown everything so far: the kept tail first, then the new bytes. */
        AWAIT(&e, c.shown == sent);
        TT_CHECK_EQ_INT(c.mismatch, 0);
        if (i == 0) TT_CHECK_EQ_INT(c.used, before);      /* not even a header yet */
    }
    TT_CHECK_EQ_INT(c.packets, 3);
    TT_CHECK_EQ_INT(c.used, n);
    TT_CHECK(c.reads >= 4);
    TT_CHECK_EQ_INT(c.errors, 0);
out:
    conn_end(&c, &e);
    peer_fini(&p);
    env_fini(&e);
}

/* ---- 4. A large packet, gathered ----------------------------------------------------- */

static void test_large_packet(void) {
    env e;
    peer p;
    conn c;
    uint8_t *stream = NULL;
    conn_init(&c);
    TT_REQUIRE(env_init(&e));
    if (!listening(&p, &e, V4)) goto out;
    size_t n = 0;
    stream = malloc(4 + LARGE + 4 + 5);
    TT_CHECK(stream != NULL);
    if (!stream) goto out;
    n += put_packet(stream, LARGE, 7);
    n += put_packet(stream + n, 5, 99);       /* and a small one right behind it */
    c.frame = true;
    c.expect = stream;
    c.expect_len = n;
    if (!connected_to(&c, &e, &p, 0)) goto out;
    peer_send(&p, stream, n);
    AWAIT(&e, c.used == n || c.mismatch || c.errors);
    TT_CHECK_EQ_INT(c.max_need, 4 + LARGE);
    TT_CHECK_EQ_INT(c.short_calls, 0);
    TT_CHECK(c.largest_call >= 4 + LARGE);
    TT_CHECK_EQ_INT(c.mismatch, 0);
    TT_CHECK_EQ_INT(c.packets, 2);
    TT_CHECK_EQ_INT(c.used, n);
    TT_CHECK_EQ_INT(c.errors, 0);
out:
    conn_end(&c, &e);
    peer_fini(&p);
    env_fini(&e);
    free(stream);
}

/* ---- 5. Back-pressure ---------------------------------------------------------------- */

#define HIGH_WATER (64u * 1024u)
#define MAX_STUFF (64u << 20)             /* give up filling the socket after this */

/* Write pattern bytes from `*total` on in pieces of the given sizes, flush. */
static void write_batch(conn *c, const size_t *sizes, size_t n, size_t *total, uint8_t *buf) {
    for (size_t i = 0; i < n; i++) {
        fill(buf, sizes[i], *total);
        conn_write(c, buf, sizes[i]);
        *total += sizes[i];
    }
    conn_flush(c);
}

static void backpressure_once(int free_in) {
    /* A mix of sizes: some gather in the shared buffer, one passes it. */
    static const size_t sizes[] = { 7001, 100, 40000, 1 };
    env e;
    peer p;
    conn c;
    uint8_t *buf = NULL;
    size_t total = 0;
    conn_init(&c);
    TT_REQUIRE(env_init(&e));
    if (!listening(&p, &e, V4)) goto out;
    p.reading = false;                /* until the transport is congested */
    p.pattern = true;
    c.free_in = free_in;
    buf = malloc(40000);
    TT_CHECK(buf != NULL);
    if (!buf) goto out;
    if (!connected_to(&c, &e, &p, HIGH_WATER)) goto out;
    TT_CHECK(!conn_congested(&c));
    while (!conn_congested(&c) && total < MAX_STUFF && !c.errors)
        write_batch(&c, sizes, sizeof sizes / sizeof sizes[0], &total, buf);
    TT_CHECK_MSG(conn_congested(&c), "not congested after %zu bytes", total);
    TT_CHECK(conn_pending(&c) > HIGH_WATER);
    /* The session may still write what it has in hand: it queues behind. */
    write_batch(&c, sizes, sizeof sizes / sizeof sizes[0], &total, buf);
    TT_CHECK(conn_congested(&c));
    TT_CHECK_EQ_INT(c.drained, 0);
    bufferevent_enable(p.bev, EV_READ);
    if (free_in == FREE_IN_DRAINED) {
        /* What the transport still held dies with it; what the socket had
         * arrives, then the end. */
        AWAIT(&e, p.closed);
        TT_CHECK_EQ_INT(c.drained, 1);
        TT_CHECK_EQ_INT(p.got, total - c.pending_at_drain);
        TT_CHECK(p.bad_at == SIZE_MAX);
        goto out;
    }
    AWAIT(&e, (c.drained && p.got == total && conn_pending(&c) == 0) || c.errors || p.bad_at != SIZE_MAX);
    TT_CHECK_EQ_INT(c.drained, 1);
    TT_CHECK_MSG(c.pending_at_drain <= HIGH_WATER / 2, "%zu pending at on_drained", c.pending_at_drain);
    TT_CHECK(!c.congested_at_drain);
    TT_CHECK(!conn_congested(&c));
    TT_CHECK_EQ_INT(p.got, total);
    TT_CHECK_MSG(p.bad_at == SIZE_MAX, "byte %zu of %zu wrong", p.bad_at, total);
    TT_CHECK_EQ_INT(c.errors, 0);
out:
    conn_end(&c, &e);
    peer_fini(&p);
    env_fini(&e);
    free(buf);
}

static void test_backpressure(void) { backpressure_once(FREE_NEVER); }

/* The socket has little room when a batch overflows the shared buffer: the
 * staged bytes go partly out, the rest is kept, and the newest bytes are
 * staged again. Later writes must still leave after them. The socket is
 * filled from here, with the stream's own next bytes. */
static void test_order_when_socket_fills(void) {
    env e;
    peer p;
    conn c;
    uint8_t *buf = NULL;
    size_t total = 0;
    evutil_socket_t fd = -1;
    conn_init(&c);
    TT_REQUIRE(env_init(&e));
    if (!listening(&p, &e, V4)) goto out;
    p.reading = false;
    p.pattern = true;
    buf = malloc(65536);
    TT_CHECK(buf != NULL);
    if (!buf) goto out;
    if (!connected_to(&c, &e, &p, 0)) goto out;
    fd = transport_fd(&p);
    TT_CHECK(fd >= 0);
    if (fd < 0) goto out;
    for (;;) {                        /* fill the socket */
        fill(buf, 65536, total);
        ssize_t w = send(fd, buf, 65536, MSG_NOSIGNAL);
        if (w <= 0) break;
        total += (size_t)w;
        if (total > MAX_STUFF) break;
    }
    TT_CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
    static const size_t a[] = { 40000, 30000 };    /* the second overflows the shared buffer */
    static const size_t b[] = { 100 };
    for (size_t i = 0; i < 2; i++) {
        fill(buf, a[i], total);
        conn_write(&c, buf, a[i]);
        total += a[i];
    }
    write_batch(&c, b, 1, &total, buf);
    TT_CHECK_EQ_INT(conn_pending(&c), 70100);
    bufferevent_enable(p.bev, EV_READ);
    AWAIT(&e, (p.got == total && conn_pending(&c) == 0) || p.bad_at != SIZE_MAX || c.errors);
    TT_CHECK_MSG(p.bad_at == SIZE_MAX, "byte %zu of %zu wrong (the last 70100 came from the transport)",
                 p.bad_at, total);
    TT_CHECK_EQ_INT(c.errors, 0);
out:
    conn_end(&c, &e);
    peer_fini(&p);
    env_fini(&e);
    free(buf);
}

/* Congested while the bytes still sit in the shared buffer (a high-water mark
 * below its size), then the flush finds room for all of them. A session stops
 * writing while congested and resumes only on on_drained: it must come, and
 * congested() must then say false. */
static void test_congested_then_flushed(void) {
    env e;
    peer p;
    conn c;
    uint8_t buf[32768];
    conn_init(&c);
    TT_REQUIRE(env_init(&e));
    if (!listening(&p, &e, V4)) goto out;
    if (!connected_to(&c, &e, &p, 16384)) goto out;
    fill(buf, sizeof buf, 0);
    conn_write(&c, buf, sizeof buf);
    TT_CHECK(conn_congested(&c));     /* 32 KiB pending over a 16 KiB mark */
    conn_flush(&c);
    AWAIT(&e, p.got == sizeof buf);
    TT_CHECK_EQ_INT(conn_pending(&c), 0);
    AWAIT(&e, c.drained > 0);
    TT_CHECK_EQ_INT(c.drained, 1);
    TT_CHECK(!conn_congested(&c));
    TT_CHECK_EQ_INT(c.errors, 0);
out:
    conn_end(&c, &e);
    peer_fini(&p);
    env_fini(&e);
}

/* ---- 6. The peer closes; 7. the peer resets ------------------------------------------ */

static void peer_closes_once(bool say_bye) {
    env e;
    peer p;
    conn c;
    conn_init(&c);
    TT_REQUIRE(env_init(&e));
    if (!listening(&p, &e, V4)) goto out;
    c.expect = (const uint8_t *)"bye";
    c.expect_len = 3;
    if (!connected_to(&c, &e, &p, 0)) goto out;
    if (say_bye) {
        peer_send(&p, "bye", 3);
        AWAIT(&e, peer_unsent(&p) == 0);
    }
    peer_drop(&p, false);
    AWAIT(&e, c.errors > 0);
    TT_CHECK_EQ_INT(c.err, TT_ECONNRESET);
    TT_CHECK_EQ_STR(c.reason, "connection closed by the peer");
    TT_CHECK_EQ_INT(c.used, say_bye ? 3 : 0);      /* the last bytes came before the error */
    TT_CHECK_EQ_INT(c.mismatch, 0);
    conn_write(&c, "late", 4);
    conn_flush(&c);
    settle(&e);
    TT_CHECK_EQ_INT(c.errors, 1);
out:
    conn_end(&c, &e);
    peer_fini(&p);
    env_fini(&e);
}

static void test_peer_closes(void) {
    peer_closes_once(false);
    peer_closes_once(true);
}

enum { RESET_SILENT, RESET_AFTER_DATA, RESET_WHILE_WRITING };

static void peer_resets_once(int how) {
    env e;
    peer p;
    conn c;
    conn_init(&c);
    TT_REQUIRE(env_init(&e));
    if (!listening(&p, &e, V4)) goto out;
    c.expect = (const uint8_t *)"hi";
    c.expect_len = 2;
    if (!connected_to(&c, &e, &p, 0)) goto out;
    if (how == RESET_AFTER_DATA) {
        peer_send(&p, "hi", 2);
        AWAIT(&e, c.used == 2);
    }
    peer_drop(&p, true);
    if (how == RESET_WHILE_WRITING) {
        conn_write(&c, "more", 4);
        conn_flush(&c);
    }
    AWAIT(&e, c.errors > 0);
    TT_CHECK_EQ_INT(c.err, TT_ECONNRESET);
    if (how != RESET_WHILE_WRITING) TT_CHECK_EQ_INT(c.detail, ECONNRESET);   /* writing: EPIPE too */
    TT_CHECK(c.reason[0] != 0);
    TT_CHECK_MSG(starts_with(c.reason, "connection lost"), "reason \"%s\"", c.reason);   /* accepted, then reset: not a failed connect */
    fprintf(stderr, "  reset %s: detail %d, \"%s\"\n",
            how == RESET_SILENT ? "before any byte in" : how == RESET_AFTER_DATA ? "after bytes in" : "while writing",
            c.detail, c.reason);
out:
    conn_end(&c, &e);
    peer_fini(&p);
    env_fini(&e);
}

static void test_peer_resets(void) {
    peer_resets_once(RESET_SILENT);
    peer_resets_once(RESET_AFTER_DATA);
    peer_resets_once(RESET_WHILE_WRITING);
}

/* ---- 8. Frees from inside callbacks -------------------------------------------------- */

static void free_in_connected_or_read(int free_in) {
    env e;
    peer p;
    conn c;
    uint8_t *data = NULL;
    const size_t n = 200000;          /* several reads' worth: the read loop would go on */
    conn_init(&c);
    TT_REQUIRE(env_init(&e));
    if (!listening(&p, &e, V4)) goto out;
    c.free_in = free_in;
    TT_CHECK_EQ_INT(conn_connect(&c, &e, "127.0.0.1", p.port, NULL, NULL, 0), TT_OK);
    if (!c.t) goto out;
    if (free_in == FREE_IN_CONNECTED) {
        AWAIT(&e, c.connected);
        TT_CHECK(c.t == NULL);
        AWAIT(&e, p.closed);          /* accepted, then the end of the stream */
    } else {
        AWAIT(&e, c.connected && p.bev);
        data = malloc(n);
        TT_CHECK(data != NULL);
        if (!data) goto out;
        fill(data, n, 0);
        peer_send(&p, data, n);
        AWAIT(&e, c.reads > 0);
        TT_CHECK(c.t == NULL);
        AWAIT(&e, p.closed);
    }
    settle(&e);
    TT_CHECK_EQ_INT(c.connected, 1);
    TT_CHECK_EQ_INT(c.reads, free_in == FREE_IN_READ ? 1 : 0);
    TT_CHECK_EQ_INT(c.errors, 0);
out:
    conn_end(&c, &e);
    peer_fini(&p);
    env_fini(&e);
    free(data);
}

static void free_in_error(void) {
    env e;
    conn c;
    conn_init(&c);
    TT_REQUIRE(env_init(&e));
    uint16_t port = closed_port();
    TT_CHECK(port != 0);
    if (!port) goto out;
    c.free_in = FREE_IN_ERROR;
    TT_CHECK_EQ_INT(conn_connect(&c, &e, "127.0.0.1", port, NULL, NULL, 0), TT_OK);
    if (!c.t) goto out;
    AWAIT(&e, c.errors > 0);
    TT_CHECK(c.t == NULL);
    settle(&e);
    TT_CHECK_EQ_INT(c.errors, 1);
out:
    conn_end(&c, &e);
    env_fini(&e);
}

static void test_free_in_callbacks(void) {
    free_in_connected_or_read(FREE_IN_CONNECTED);
    free_in_connected_or_read(FREE_IN_READ);
    free_in_error();
    backpressure_once(FREE_IN_DRAINED);
}

/* ---- Two connections on one loop's shared buffers ------------------------------------ */

static void test_shared_buffers(void) {
    env e;
    peer pa, pb;
    conn a, b;
    uint8_t buf[3000];
    conn_init(&a);
    conn_init(&b);
    TT_REQUIRE(env_init(&e));
    bool ok_a = peer_listen(&pa, &e, V4), ok_b = peer_listen(&pb, &e, V4);
    TT_CHECK(ok_a && ok_b);
    if (!ok_a || !ok_b) goto out;
    pa.pattern = pb.pattern = true;
    TT_CHECK_EQ_INT(conn_connect(&a, &e, "127.0.0.1", pa.port, NULL, NULL, 0), TT_OK);
    TT_CHECK_EQ_INT(conn_connect(&b, &e, "127.0.0.1", pb.port, NULL, NULL, 0), TT_OK);
    if (!a.t || !b.t) goto out;
    AWAIT(&e, a.connected && b.connected && pa.bev && pb.bev);
    /* A's batch is staged when B writes: it leaves first, and to A's peer. */
    fill(buf, 1000, 0);
    conn_write(&a, buf, 1000);
    fill(buf, 2000, 0);
    conn_write(&b, buf, 2000);
    conn_flush(&b);
    conn_flush(&a);
    AWAIT(&e, pa.got == 1000 && pb.got == 2000);
    /* A's unflushed bytes die with it; B goes on. */
    fill(buf, 500, 1000);
    conn_write(&a, buf, 500);
    conn_free(&a);
    fill(buf, 300, 2000);
    conn_write(&b, buf, 300);
    conn_flush(&b);
    AWAIT(&e, pa.closed && pb.got == 2300);
    TT_CHECK_EQ_INT(pa.got, 1000);
    TT_CHECK(pa.bad_at == SIZE_MAX && pb.bad_at == SIZE_MAX);
    TT_CHECK_EQ_INT(a.errors + b.errors, 0);
out:
    conn_free(&a);
    conn_free(&b);
    settle(&e);
    TT_CHECK_EQ_INT(a.misplaced + b.misplaced, 0);
    peer_fini(&pa);
    peer_fini(&pb);
    env_fini(&e);
}

/* ---- 9. Source address --------------------------------------------------------------- */

/* `from`: the address the peer must see; NULL: the connect must fail with
 * TT_EINVAL (and `detail`, unless 0). */
static void source_once(const char *source, const char *from, int detail) {
    env e;
    peer p;
    conn c;
    char seen[INET6_ADDRSTRLEN];
    conn_init(&c);
    TT_REQUIRE(env_init(&e));
    if (!listening(&p, &e, V4)) goto out;
    TT_CHECK_EQ_INT(conn_connect(&c, &e, "127.0.0.1", p.port, source, NULL, 0), TT_OK);
    if (!c.t) goto out;
    if (from) {
        AWAIT(&e, c.connected && p.bev);
        TT_CHECK_EQ_STR(ip_of(&p.from, seen, sizeof seen), from);
        conn_write(&c, "x", 1);
        conn_flush(&c);
        AWAIT(&e, p.got == 1);
        TT_CHECK_EQ_INT(c.errors, 0);
    } else {
        AWAIT(&e, c.errors > 0);
        TT_CHECK_MSG(c.err == TT_EINVAL, "source %s: %s (%s)", source, tt_err_name(c.err), c.reason);
        if (detail) TT_CHECK_EQ_INT(c.detail, detail);
        TT_CHECK_EQ_INT(c.connected, 0);
    }
out:
    conn_end(&c, &e);
    peer_fini(&p);
    env_fini(&e);
}

static void test_source_address(void) {
    source_once("127.0.0.1", "127.0.0.1", 0);
    /* Another loopback address, where it can be bound (Linux: all of 127/8),
     * so that the peer seeing it proves the bind happened. */
    if (can_bind(AF_INET, "127.0.0.2")) source_once("127.0.0.2", "127.0.0.2", 0);
    else fprintf(stderr, "  note: 127.0.0.2 cannot be bound here; that part is skipped\n");
    source_once("not-an-address", NULL, 0);
    source_once("::1", NULL, 0);                      /* an IPv6 source for an IPv4 peer */
    /* A well-formed address this host does not have (TEST-NET-1). */
    if (!can_bind(AF_INET, "192.0.2.1")) source_once("192.0.2.1", NULL, EADDRNOTAVAIL);
}

/* ---- 10. Host names ------------------------------------------------------------------ */

static bool hosts_has_localhost(void) {
    FILE *f = fopen("/etc/hosts", "r");
    if (!f) return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *save = NULL;
        char *tok = strtok_r(line, " \t\r\n", &save);            /* the address */
        while (tok && (tok = strtok_r(NULL, " \t\r\n", &save)) != NULL)
            if (strcmp(tok, "localhost") == 0) found = true;
    }
    fclose(f);
    return found;
}

static void test_host_name(void) {
    if (!hosts_has_localhost()) {
        fprintf(stderr, "  skipped: /etc/hosts has no localhost entry\n");
        return;
    }
    env e;
    peer p;
    conn c;
    struct evdns_base *dns = NULL;
    char seen[INET6_ADDRSTRLEN];
    conn_init(&c);
    TT_REQUIRE(env_init(&e));
    bool ok = peer_listen(&p, &e, V4 | V6);   /* localhost may be either */
    TT_CHECK(ok);
    if (!ok) goto out;
    /* As tti_loop_dns() makes it: resolv.conf and /etc/hosts. */
    dns = evdns_base_new(e.base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    TT_CHECK(dns != NULL);
    if (!dns) goto out;
    TT_CHECK_EQ_INT(conn_connect(&c, &e, "localhost", p.port, NULL, dns, 0), TT_OK);
    if (!c.t) goto out;
    AWAIT(&e, (c.connected && p.bev) || c.errors);
    TT_CHECK_MSG(c.errors == 0, "%s: %s", tt_err_name(c.err), c.reason);
    ip_of(&p.from, seen, sizeof seen);
    TT_CHECK_MSG(!strcmp(seen, "127.0.0.1") || !strcmp(seen, "::1"), "from %s", seen);
    conn_write(&c, "ping", 4);
    conn_flush(&c);
    AWAIT(&e, p.got == 4);
    TT_CHECK(memcmp(p.in, "ping", 4) == 0);
out:
    conn_end(&c, &e);
    peer_fini(&p);
    if (dns) evdns_base_free(dns, 0);
    env_fini(&e);
}

/* A name server on loopback. With no addresses it answers every query "no
 * such name"; with some, it gives them as the A records of any name (and no
 * AAAA records). */
typedef struct fake_ns {
    evutil_socket_t fd;
    struct event *ev;
    uint16_t port;
    int queries;
    const char *a[4];                 /* IPv4 addresses to answer with, in order */
} fake_ns;

static size_t put_a_records(const fake_ns *ns, uint8_t *q, size_t n, size_t cap) {
    size_t at = 12, count = 0;
    while (at < n && q[at] != 0) at += 1u + q[at];            /* the question's name */
    if (at + 5 > n || q[at + 1] != 0 || q[at + 2] != 1) return at + 5 <= n ? at + 5 : n;   /* not type A */
    at += 5;
    for (size_t i = 0; i < sizeof ns->a / sizeof ns->a[0] && ns->a[i] && at + 16 <= cap; i++) {
        static const uint8_t rr[] = { 0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4 };   /* name at 12, A, IN, TTL 60 */
        memcpy(q + at, rr, sizeof rr);
        if (inet_pton(AF_INET, ns->a[i], q + at + sizeof rr) != 1) break;
        at += sizeof rr + 4;
        count++;
    }
    q[6] = 0;
    q[7] = (uint8_t)count;
    return at;
}

static void fake_ns_cb(evutil_socket_t fd, short what, void *arg) {
    fake_ns *ns = arg;
    (void)what;
    uint8_t q[1500];
    struct sockaddr_storage from;
    socklen_t flen = sizeof from;
    ssize_t n = recvfrom(fd, q, 512, 0, (struct sockaddr *)&from, &flen);
    if (n < 12) return;
    ns->queries++;
    q[2] = 0x81;                      /* a response, recursion desired */
    q[3] = ns->a[0] ? 0x80 : 0x83;    /* recursion available; no error, or NXDOMAIN */
    size_t len = ns->a[0] ? put_a_records(ns, q, (size_t)n, sizeof q) : (size_t)n;
    (void)sendto(fd, q, len, 0, (struct sockaddr *)&from, flen);
}

static bool fake_ns_start(fake_ns *ns, env *e, struct evdns_base **dns) {
    char addr[32];
    ns->queries = 0;
    ns->fd = bound_socket(AF_INET, SOCK_DGRAM, "127.0.0.1", 0);
    if (ns->fd < 0) return false;
    ns->port = local_port(ns->fd);
    ns->ev = event_new(e->base, ns->fd, EV_READ | EV_PERSIST, fake_ns_cb, ns);
    if (!ns->ev || event_add(ns->ev, NULL) != 0) return false;
    /* No resolv.conf, no /etc/hosts: only this server. */
    *dns = evdns_base_new(e->base, 0);
    if (!*dns) return false;
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)ns->port);
    return evdns_base_nameserver_ip_add(*dns, addr) == 0;
}

static void fake_ns_stop(fake_ns *ns) {
    if (ns->ev) event_free(ns->ev);
    if (ns->fd >= 0) evutil_closesocket(ns->fd);
    ns->ev = NULL;
    ns->fd = -1;
}

static void test_host_not_found(void) {
    env e;
    conn c;
    fake_ns ns;
    struct evdns_base *dns = NULL;
    conn_init(&c);
    memset(&ns, 0, sizeof ns);
    ns.fd = -1;
    TT_REQUIRE(env_init(&e));
    bool ok = fake_ns_start(&ns, &e, &dns);
    TT_CHECK(ok);
    if (!ok) goto out;
    TT_CHECK_EQ_INT(conn_connect(&c, &e, "no-such-host.invalid", 1883, NULL, dns, 0), TT_OK);
    if (!c.t) goto out;
    AWAIT(&e, c.errors > 0);
    TT_CHECK_EQ_INT(c.err, TT_ENOTFOUND);
    TT_CHECK_MSG(starts_with(c.reason, "cannot resolve host"), "reason \"%s\"", c.reason);
    TT_CHECK_EQ_INT(c.connected, 0);
    TT_CHECK(ns.queries > 0);         /* it asked our server */
out:
    conn_end(&c, &e);
    if (dns) evdns_base_free(dns, 0);
    fake_ns_stop(&ns);
    env_fini(&e);
}

/* Freed while its name is being resolved: the answer must find nothing. */
static void test_free_while_resolving(void) {
    env e;
    conn c;
    fake_ns ns;
    struct evdns_base *dns = NULL;
    conn_init(&c);
    memset(&ns, 0, sizeof ns);
    ns.fd = -1;
    TT_REQUIRE(env_init(&e));
    bool ok = fake_ns_start(&ns, &e, &dns);
    TT_CHECK(ok);
    if (!ok) goto out;
    TT_CHECK_EQ_INT(conn_connect(&c, &e, "no-such-host.invalid", 1883, NULL, dns, 0), TT_OK);
    if (!c.t) goto out;
    conn_free(&c);
    /* The query left inside the call; its answer comes on a later turn. */
    int64_t end = now_ms() + WAIT_MS;
    while (ns.queries == 0 && turn(&e, end)) {
    }
    settle(&e);
    TT_CHECK_EQ_INT(c.errors + c.connected, 0);
out:
    conn_end(&c, &e);
    if (dns) evdns_base_free(dns, 1);
    fake_ns_stop(&ns);
    env_fini(&e);
}

/* ---- 11. A name with several addresses -------------------------------------------- */

/* How long the transport gives one of several addresses (transport/tcp.c). */
#define ATTEMPT_MS 2000

/* "broker.test" resolves to `first` then 127.0.0.1, where the peer listens.
 * `silent`: a listener on `first` whose queue is full, so the connect gets no
 * answer at all and the transport must give up on it by itself. The peer
 * must get the hello, from 127.0.0.1. */
static void next_address_once(const char *first, bool silent) {
    env e;
    peer p;
    conn c;
    fake_ns ns;
    struct evdns_base *dns = NULL;
    evutil_socket_t hole = -1, fillers[3] = { -1, -1, -1 };
    char seen[INET6_ADDRSTRLEN];
    conn_init(&c);
    memset(&ns, 0, sizeof ns);
    ns.fd = -1;
    ns.a[0] = first;
    ns.a[1] = "127.0.0.1";
    TT_REQUIRE(env_init(&e));
    bool ok = peer_listen(&p, &e, V4) && fake_ns_start(&ns, &e, &dns);
    TT_CHECK(ok);
    if (!ok) goto out;
    if (silent) {
        /* listen(0) queues one connection; later SYNs are dropped unanswered. */
        hole = bound_socket(AF_INET, SOCK_STREAM, first, p.port);
        TT_CHECK(hole >= 0 && listen(hole, 0) == 0);
        struct sockaddr_storage ss;
        socklen_t len = sockaddr_of(AF_INET, first, p.port, &ss);
        for (size_t i = 0; i < 3; i++) {
            fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fillers[i] >= 0) (void)connect(fillers[i], (struct sockaddr *)&ss, len);
        }
    }
    c.hello = "ping";
    int64_t t0 = now_ms();
    TT_CHECK_EQ_INT(conn_connect(&c, &e, "broker.test", p.port, NULL, dns, 0), TT_OK);
    if (!c.t) goto out;
    AWAIT(&e, p.got == 4 || c.errors);
    int64_t took = now_ms() - t0;
    TT_CHECK_MSG(c.errors == 0, "%s: %s", tt_err_name(c.err), c.reason);
    TT_CHECK_EQ_INT(c.connected, 1);
    TT_CHECK_EQ_INT(p.accepted, 1);
    TT_CHECK(p.got == 4 && memcmp(p.in, "ping", 4) == 0);
    TT_CHECK_EQ_STR(ip_of(&p.from, seen, sizeof seen), "127.0.0.1");
    if (silent) TT_CHECK_MSG(took >= ATTEMPT_MS - 100, "moved on after %lld ms", (long long)took);
    else TT_CHECK_MSG(took < ATTEMPT_MS / 2, "moved on after %lld ms", (long long)took);
out:
    conn_end(&c, &e);
    for (size_t i = 0; i < 3; i++)
        if (fillers[i] >= 0) evutil_closesocket(fillers[i]);
    if (hole >= 0) evutil_closesocket(hole);
    if (dns) evdns_base_free(dns, 0);
    fake_ns_stop(&ns);
    peer_fini(&p);
    env_fini(&e);
}

static void test_next_address(void) {
    next_address_once("127.0.0.2", false);    /* refused: on at once */
    next_address_once("127.0.0.2", true);     /* unanswered: on after ATTEMPT_MS */
}

/* Every address refuses: one error, the last one, saying how many were tried. */
static void test_every_address_refused(void) {
    env e;
    conn c;
    fake_ns ns;
    struct evdns_base *dns = NULL;
    conn_init(&c);
    memset(&ns, 0, sizeof ns);
    ns.fd = -1;
    ns.a[0] = "127.0.0.2";
    ns.a[1] = "127.0.0.3";
    TT_REQUIRE(env_init(&e));
    uint16_t port = closed_port();
    bool ok = port != 0 && fake_ns_start(&ns, &e, &dns);
    TT_CHECK(ok);
    if (!ok) goto out;
    c.hello = "CONNECT";
    TT_CHECK_EQ_INT(conn_connect(&c, &e, "broker.test", port, NULL, dns, 0), TT_OK);
    if (!c.t) goto out;
    AWAIT(&e, c.errors > 0);
    settle(&e);
    TT_CHECK_EQ_INT(c.errors, 1);
    TT_CHECK_EQ_INT(c.connected, 0);  /* nothing was written to a socket that failed */
    TT_CHECK_EQ_INT(c.err, TT_ECONNREFUSED);
    TT_CHECK_EQ_INT(c.detail, ECONNREFUSED);
    TT_CHECK_MSG(strstr(c.reason, "(2 addresses tried)") != NULL, "reason \"%s\"", c.reason);
out:
    conn_end(&c, &e);
    if (dns) evdns_base_free(dns, 0);
    fake_ns_stop(&ns);
    env_fini(&e);
}

/* ---- 12. IPv6 loopback --------------------------------------------------------------- */

static void test_ipv6(void) {
    if (!can_bind(AF_INET6, "::1")) {
        fprintf(stderr, "  skipped: no IPv6 loopback here\n");
        return;
    }
    env e;
    peer p;
    conn c;
    char seen[INET6_ADDRSTRLEN];
    static const uint8_t back[] = "pong";
    conn_init(&c);
    TT_REQUIRE(env_init(&e));
    bool ok = peer_listen(&p, &e, V6);
    TT_CHECK(ok);
    if (!ok) goto out;
    c.expect = back;
    c.expect_len = 4;
    TT_CHECK_EQ_INT(conn_connect(&c, &e, "::1", p.port, NULL, NULL, 0), TT_OK);
    if (!c.t) goto out;
    AWAIT(&e, (c.connected && p.bev) || c.errors);
    TT_CHECK_MSG(c.errors == 0, "%s: %s", tt_err_name(c.err), c.reason);
    TT_CHECK_EQ_STR(ip_of(&p.from, seen, sizeof seen), "::1");
    conn_write(&c, "ping", 4);
    conn_flush(&c);
    AWAIT(&e, p.got == 4);
    TT_CHECK(memcmp(p.in, "ping", 4) == 0);
    peer_send(&p, back, 4);
    AWAIT(&e, c.used == 4);
    TT_CHECK_EQ_INT(c.mismatch, 0);
out:
    conn_end(&c, &e);
    peer_fini(&p);
    env_fini(&e);
}

TT_TEST_LIST = {
    { "refused", test_refused },
    { "round_trip", test_round_trip },
    { "partial_packets", test_partial_packets },
    { "large_packet", test_large_packet },
    { "backpressure", test_backpressure },
    { "order_when_socket_fills", test_order_when_socket_fills },
    { "congested_then_flushed", test_congested_then_flushed },
    { "peer_closes", test_peer_closes },
    { "peer_resets", test_peer_resets },
    { "free_in_callbacks", test_free_in_callbacks },
    { "shared_buffers", test_shared_buffers },
    { "source_address", test_source_address },
    { "next_address", test_next_address },
    { "every_address_refused", test_every_address_refused },
    { "host_name", test_host_name },
    { "host_not_found", test_host_not_found },
    { "free_while_resolving", test_free_while_resolving },
    { "ipv6", test_ipv6 },
    { NULL, NULL },
};
