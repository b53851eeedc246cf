/* A fake MQTT broker for the fuzz targets that drive a tether client over
 * loopback TCP (tb_inbound_fuzz, wiotp_inbound_fuzz). Header only: every
 * function is static inline, so a target uses what it needs.
 *
 * Everything runs on one thread: fb_init() makes an event_base and a tether
 * runtime embedded in it (tt_runtime_opts.base), so the client's actors and
 * handlers run inside fb_turn(), one non-blocking loop turn at a time, and a
 * run is deterministic.
 *
 *   LLVMFuzzerInitialize: fb_init(&fb)   tt_init, the base, fb.rt, and a socket
 *                                        listening on 127.0.0.1:fb.port
 *   each run:  point a client at 127.0.0.1:fb.port and start its connect
 *              fb.v5 = ...; fb.answer = ...; fb.on_publish = ...;
 *              fb_accept(&fb)            turn until the client connects (else trap)
 *              fb_spin(&fb, n)           n turns, each reading what the client sent
 *              fb_connack(&fb, 0)        accept the session
 *              fb_publish(&fb, ...)      deliver a PUBLISH (QoS 0-2, retain)
 *              ... free the client ...
 *              fb_finish(&fb, fs, n)     close the connection, turn until every
 *                                        future is done (else trap), free them
 *
 * What the client sends is read by fb_pump(). Without `answer` and
 * `on_publish` the bytes are dropped unread. Otherwise they are split into
 * packets: a PUBLISH goes to on_publish (topic, payload); with `answer` the
 * broker acknowledges as a broker would: SUBACK (each filter granted the QoS
 * it asked for, or 0x80 for every filter of the `refuse_sub`-th SUBSCRIBE
 * of the connection), UNSUBACK, PUBACK or PUBREC for a client PUBLISH,
 * PUBREL for a PUBREC, PUBCOMP for a PUBREL, PINGRESP. A packet larger than
 * the receive buffer is skipped. */
#ifndef TT_FUZZ_FAKE_BROKER_H
#define TT_FUZZ_FAKE_BROKER_H

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <tether/tether.h>
#include <unistd.h>

#define FB_TURNS_MAX 20000
#define FB_RX_MAX 65536
#define FB_TX_MAX (2 * 65536 + 16)

/* A PUBLISH the client sent: topic and payload, borrowed for the call. */
typedef void (*fb_publish_fn)(void *arg, const char *topic, size_t tl, const uint8_t *payload,
                              size_t len);

typedef struct fb_broker {
    struct event_base *base;
    tt_runtime *rt;
    int lfd, sfd;
    uint16_t port;
    /* Set by the target for each connection. */
    bool v5;                          /* packets in MQTT 5 form (else 3.1.1) */
    bool answer;                      /* acknowledge what the client sends */
    bool nodelay;                     /* TCP_NODELAY on the connection (see fb_accept) */
    unsigned refuse_sub;              /* 1-based SUBSCRIBE to refuse; 0 = none */
    fb_publish_fn on_publish;
    void *arg;
    /* Per connection, reset by fb_accept(). */
    unsigned nsub;
    uint16_t next_pid;
    size_t rxlen, skip;
    uint8_t rx[FB_RX_MAX];
    uint8_t tx[FB_TX_MAX];
} fb_broker;

static inline void fb_init(fb_broker *fb) {
    memset(fb, 0, sizeof *fb);
    fb->lfd = fb->sfd = -1;
    if (tt_init() != TT_OK) abort();
    fb->base = event_base_new();
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.base = fb->base;
    if (!fb->base || tt_runtime_new(&fb->rt, &o) != TT_OK) abort();
    fb->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    if (fb->lfd < 0 || bind(fb->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(fb->lfd, 16) != 0 || getsockname(fb->lfd, (struct sockaddr *)&a, &al) != 0)
        abort();
    fb->port = ntohs(a.sin_port);
}

static inline void fb_turn(fb_broker *fb) { event_base_loop(fb->base, EVLOOP_NONBLOCK); }

/* Write all of p, turning the loop while the socket is full; false once the
 * connection is gone. */
static inline bool fb_send(fb_broker *fb, const void *p, size_t n) {
    const uint8_t *b = p;
    for (int turns = 0; n > 0 && turns < FB_TURNS_MAX;) {
        ssize_t k = send(fb->sfd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            b += k;
            n -= (size_t)k;
        } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            fb_turn(fb);
            turns++;
        } else {
            return false;
        }
    }
    return n == 0;
}

/* An acknowledgement: type byte, packet id. */
static inline void fb_ack(fb_broker *fb, uint8_t type, uint16_t pid) {
    uint8_t a[4] = { type, 2, (uint8_t)(pid >> 8), (uint8_t)pid };
    (void)fb_send(fb, a, sizeof a);
}

/* A variable byte integer at p (n bytes there): its length, or 0 if
 * incomplete, or -1 if malformed. */
static inline int fb_varint(const uint8_t *p, size_t n, size_t *val) {
    size_t v = 0;
    for (int i = 0; i < 4; i++) {
        if ((size_t)i >= n) return 0;
        v |= (size_t)(p[i] & 0x7F) << (7 * i);
        if (!(p[i] & 0x80)) {
            *val = v;
            return i + 1;
        }
    }
    return -1;
}

static inline size_t fb_put_varint(uint8_t *out, size_t v) {
    size_t n = 0;
    do {
        uint8_t b = v & 0x7F;
        v >>= 7;
        out[n++] = v ? (uint8_t)(b | 0x80) : b;
    } while (v);
    return n;
}

/* SUBSCRIBE or UNSUBSCRIBE body b (n bytes): answer with one code per filter. */
static inline void fb_on_sub(fb_broker *fb, bool unsub, const uint8_t *b, size_t n) {
    if (n < 2) return;
    uint16_t pid = (uint16_t)(b[0] << 8 | b[1]);
    size_t off = 2, plen = 0;
    if (fb->v5) {
        int k = fb_varint(b + off, n - off, &plen);
        if (k <= 0 || plen > n - off - (size_t)k) return;
        off += (size_t)k + plen;
    }
    bool refuse = !unsub && ++fb->nsub == fb->refuse_sub;
    uint8_t codes[256];
    size_t nc = 0;
    while (off + 2 <= n && nc < sizeof codes) {
        size_t fl = (size_t)b[off] << 8 | b[off + 1];
        off += 2 + fl;
        if (off > n || (!unsub && off >= n)) return;       /* truncated: no answer */
        codes[nc++] = unsub ? 0 : refuse ? 0x80 : (uint8_t)(b[off] & 3);
        if (!unsub) off++;
    }
    if (unsub && !fb->v5) {
        fb_ack(fb, 0xB0, pid);
        return;
    }
    uint8_t *o = fb->tx;
    size_t k = 0;
    o[k++] = unsub ? 0xB0 : 0x90;
    k += fb_put_varint(o + k, 2 + (fb->v5 ? 1 : 0) + nc);
    o[k++] = (uint8_t)(pid >> 8);
    o[k++] = (uint8_t)pid;
    if (fb->v5) o[k++] = 0;
    memcpy(o + k, codes, nc);
    (void)fb_send(fb, o, k + nc);
}

/* One whole packet from the client: first byte h, body b (n bytes). */
static inline void fb_on_packet(fb_broker *fb, uint8_t h, const uint8_t *b, size_t n) {
    uint16_t pid = n >= 2 ? (uint16_t)(b[0] << 8 | b[1]) : 0;
    switch (h >> 4) {
    case 3: {                                               /* PUBLISH */
        unsigned qos = (h >> 1) & 3;
        if (n < 2) return;
        size_t tl = (size_t)b[0] << 8 | b[1], off = 2 + tl;
        if (off > n || (qos && off + 2 > n)) return;
        if (qos) {
            pid = (uint16_t)(b[off] << 8 | b[off + 1]);
            off += 2;
        }
        if (fb->v5) {
            size_t plen = 0;
            int k = fb_varint(b + off, n - off, &plen);
            if (k <= 0 || plen > n - off - (size_t)k) return;
            off += (size_t)k + plen;
        }
        if (fb->on_publish) fb->on_publish(fb->arg, (const char *)b + 2, tl, b + off, n - off);
        if (fb->answer && qos == 1) fb_ack(fb, 0x40, pid);
        else if (fb->answer && qos == 2) fb_ack(fb, 0x50, pid);
        return;
    }
    case 5:                                                 /* PUBREC */
        if (fb->answer && n >= 2) fb_ack(fb, 0x62, pid);
        return;
    case 6:                                                 /* PUBREL */
        if (fb->answer && n >= 2) fb_ack(fb, 0x70, pid);
        return;
    case 8:                                                 /* SUBSCRIBE */
    case 10:                                                /* UNSUBSCRIBE */
        if (fb->answer) fb_on_sub(fb, (h >> 4) == 10, b, n);
        return;
    case 12: {                                              /* PINGREQ */
        static const uint8_t pong[] = { 0xD0, 0x00 };
        if (fb->answer) (void)fb_send(fb, pong, sizeof pong);
        return;
    }
    default:
        return;
    }
}

/* Split the receive buffer into packets and handle the whole ones. */
static inline void fb_parse(fb_broker *fb) {
    for (;;) {
        if (fb->skip) {
            size_t k = fb->skip < fb->rxlen ? fb->skip : fb->rxlen;
            fb->skip -= k;
            memmove(fb->rx, fb->rx + k, fb->rxlen - k);
            fb->rxlen -= k;
        }
        if (fb->skip || fb->rxlen < 2) return;
        size_t rl = 0;
        int k = fb_varint(fb->rx + 1, fb->rxlen - 1, &rl);
        if (k == 0) return;
        if (k < 0) {                                        /* not MQTT: drop it all */
            fb->rxlen = 0;
            return;
        }
        size_t total = 1 + (size_t)k + rl;
        if (total > sizeof fb->rx) {
            fb->skip = total;
            continue;
        }
        if (total > fb->rxlen) return;
        fb_on_packet(fb, fb->rx[0], fb->rx + 1 + k, rl);
        memmove(fb->rx, fb->rx + total, fb->rxlen - total);
        fb->rxlen -= total;
    }
}

/* Read everything the client sent so far; false once the connection is
 * closed or broken. */
static inline bool fb_pump(fb_broker *fb) {
    for (;;) {
        ssize_t n = recv(fb->sfd, fb->rx + fb->rxlen, sizeof fb->rx - fb->rxlen, MSG_DONTWAIT);
        if (n > 0) {
            if (!fb->answer && !fb->on_publish) continue;   /* dropped unread */
            fb->rxlen += (size_t)n;
            fb_parse(fb);
            continue;
        }
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
    }
}

/* n loop turns, each followed by fb_pump(); the last fb_pump()'s answer. */
static inline bool fb_spin(fb_broker *fb, int n) {
    bool open = true;
    for (int i = 0; i < n; i++) {
        fb_turn(fb);
        open = fb_pump(fb);
    }
    return open;
}

/* Turn until the client connects, then take the connection (trap if it
 * never comes). An abortive close (linger 0) frees the port at once. With
 * `nodelay` every write leaves at once; without it the kernel may hold a
 * small write back until the client acknowledges the one before (Nagle),
 * and a client that sends nothing meanwhile acknowledges late (delayed ACK,
 * tens of ms): the packet then reaches it after the run's turns, or in the
 * next packet's turns. */
static inline void fb_accept(fb_broker *fb) {
    fb->sfd = -1;
    for (int i = 0; i < FB_TURNS_MAX && fb->sfd < 0; i++) {
        fb_turn(fb);
        fb->sfd = accept4(fb->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    if (fb->sfd < 0) __builtin_trap();
    struct linger lg = { 1, 0 };
    (void)setsockopt(fb->sfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    int one = 1;
    if (fb->nodelay) (void)setsockopt(fb->sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fb->nsub = 0;
    fb->next_pid = 0;
    fb->rxlen = fb->skip = 0;
}

/* CONNACK with return (3.1.1) or reason (5) code `code`. */
static inline bool fb_connack(fb_broker *fb, uint8_t code) {
    const uint8_t ack4[] = { 0x20, 0x02, 0x00, code }, ack5[] = { 0x20, 0x03, 0x00, code, 0x00 };
    return fb->v5 ? fb_send(fb, ack5, sizeof ack5) : fb_send(fb, ack4, sizeof ack4);
}

/* PUBLISH `payload` on `topic` (tl bytes) at `qos` (a fresh packet id
 * above 0), retained or not; no properties in MQTT 5. */
static inline bool fb_publish(fb_broker *fb, const char *topic, size_t tl, unsigned qos,
                              bool retain, const uint8_t *payload, size_t plen) {
    if (tl > 0xFFFF || plen > 0xFFFF) return false;
    uint8_t *o = fb->tx;
    size_t n = 0;
    o[n++] = (uint8_t)(0x30 | (qos & 3) << 1 | (retain ? 1 : 0));
    n += fb_put_varint(o + n, 2 + tl + (qos ? 2 : 0) + (fb->v5 ? 1 : 0) + plen);
    o[n++] = (uint8_t)(tl >> 8);
    o[n++] = (uint8_t)tl;
    memcpy(o + n, topic, tl);
    n += tl;
    if (qos) {
        if (++fb->next_pid == 0) fb->next_pid = 1;
        o[n++] = (uint8_t)(fb->next_pid >> 8);
        o[n++] = (uint8_t)fb->next_pid;
    }
    if (fb->v5) o[n++] = 0;
    if (plen) memcpy(o + n, payload, plen);
    return fb_send(fb, o, n + plen);
}

/* End of a run, the client already freed: close the connection, turn until
 * every future in fs is done (trap if one never is), free them. */
static inline void fb_finish(fb_broker *fb, tt_future **fs, size_t nf) {
    close(fb->sfd);
    fb->sfd = -1;
    for (int i = 0; i < FB_TURNS_MAX; i++) {
        bool all = true;
        for (size_t k = 0; k < nf; k++) all = all && tt_future_done(fs[k]);
        if (all) break;
        fb_turn(fb);
    }
    for (size_t k = 0; k < nf; k++) {
        if (!tt_future_done(fs[k])) __builtin_trap();
        tt_future_free(fs[k]);
    }
    for (int i = 0; i < 16; i++) fb_turn(fb);
}

#endif /* TT_FUZZ_FAKE_BROKER_H */
