/* libFuzzer target: the fuzzer plays the broker. The input is what a broker
 * sends to a connected tether client; the real session actor reads it through
 * its real TCP transport from a loopback socket, on a runtime embedded in this
 * thread's event base, so a run is deterministic and needs no thread.
 *
 * Input layout:
 *   byte 0   flags: bit 0 MQTT 5 (else 3.1.1); bit 1 a valid CONNACK is sent
 *            first (else the stream must bring its own); bit 2 persistent
 *            session; bit 3 pull mode (messages queued for tt_client_poll);
 *            bit 4 topic aliases accepted (MQTT 5); bit 5 a small
 *            max_packet_size; bits 6-7 how many requests the client makes
 *            once connected (0-3 of: SUBSCRIBE "f/#" QoS 2, PUBLISH QoS 1,
 *            PUBLISH QoS 2; packet ids 1, 2, 3 in that order)
 *   byte 1   bits 0-5 chunking: 0 = one write, else writes of 1..n bytes;
 *            bit 6 an inbound bound of 1 KiB (reading pauses and resumes);
 *            bit 7 (MQTT 5) enhanced authentication with method "fz" (its
 *            handler answers every challenge with the challenge's first
 *            bytes and refuses final data of one byte), a response topic
 *            "r/fuzz" with one request to "q/1", and a re-authentication
 *            (not with pull mode, which requests do not go with)
 *   rest     the broker's byte stream
 *
 * TT_FUZZ_LOG=1 prints the library log, events and messages (to read a crash).
 *
 * Each run ends with the client closed and freed: every future it returned
 * must have completed, the close future included, within a bounded number of
 * loop turns; LeakSanitizer checks that nothing outlives the run. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <tether/tether.h>
#include <tether/mqtt.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TURNS_MAX 20000               /* loop turns a run may take to settle */

static struct event_base *g_base;
static tt_runtime *g_rt;
static int g_lfd = -1;
static char g_url[64];
static size_t g_seen;                 /* bytes read through the message accessors */
static bool g_verbose;                /* TT_FUZZ_LOG set: log and trace what happens */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    if (tt_init() != TT_OK) abort();
    g_verbose = getenv("TT_FUZZ_LOG") != NULL;
    if (g_verbose) tt_log_set_handler(tt_log_stderr, NULL, TT_LOG_TRACE);
    g_base = event_base_new();
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.base = g_base;
    if (!g_base || tt_runtime_new(&g_rt, &o) != TT_OK) abort();
    g_lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (g_lfd < 0 || bind(g_lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(g_lfd, 16) != 0 ||
        getsockname(g_lfd, (struct sockaddr *)&a, &al) != 0)
        abort();
    snprintf(g_url, sizeof g_url, "mqtt://127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    return 0;
}

static void turn(void) { event_base_loop(g_base, EVLOOP_NONBLOCK); }

/* Read and drop what the client wrote; false once it closed its end. */
static bool drain(int fd) {
    uint8_t buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
    }
}

/* Everything a handler may read, read: the accessors must hold on any input. */
static void touch(const tt_msg *m) {
    size_t n = 0;
    const char *t = tt_msg_topic(m, &n);
    if (n) g_seen += (uint8_t)t[n - 1];
    const uint8_t *p = tt_msg_payload(m, &n);
    if (n) g_seen += p[0] + p[n - 1];
    g_seen += (size_t)tt_msg_qos(m) + tt_msg_is_retained(m) + tt_msg_is_dup(m) + tt_msg_payload_utf8(m);
    uint32_t s = 0;
    if (tt_msg_expiry(m, &s)) g_seen += s;
    const char *v = tt_msg_content_type(m, &n);
    if (v && n) g_seen += (uint8_t)v[n - 1];
    v = tt_msg_response_topic(m, &n);
    if (v && n) g_seen += (uint8_t)v[n - 1];
    const uint8_t *cd = tt_msg_correlation(m, &n);
    if (cd && n) g_seen += cd[n - 1];
    size_t np = tt_msg_user_prop_count(m);
    for (size_t i = 0; i < np + 1; i++) {        /* one past the end must say no */
        const char *k, *val;
        size_t kl, vl;
        bool ok = tt_msg_user_prop(m, i, &k, &kl, &val, &vl);
        if (ok != (i < np)) __builtin_trap();
        if (ok && kl) g_seen += (uint8_t)k[kl - 1];
        if (ok && vl) g_seen += (uint8_t)val[vl - 1];
    }
    uint32_t ids[8];
    size_t nid = tt_msg_sub_ids(m, ids, 8);
    for (size_t i = 0; i < nid && i < 8; i++) g_seen += ids[i];
}

static void on_msg(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    (void)arg;
    if (g_verbose) fprintf(stderr, "message on %s\n", tt_msg_topic(m, NULL));
    touch(m);
}

static void on_event(tt_client *c, const tt_client_event *ev, void *arg) {
    (void)c;
    (void)arg;
    if (ev->reason) g_seen += strlen(ev->reason);
    if (g_verbose) fprintf(stderr, "event %d %s %s\n", ev->kind, tt_err_name(ev->err), ev->reason);
}

static tt_err fz_auth(tt_client *c, tt_auth_step *st, void *arg) {
    (void)c;
    (void)arg;
    static uint8_t reply[16];
    if (st->data && st->len) g_seen += ((const uint8_t *)st->data)[st->len - 1];
    if (st->stage == TT_AUTH_START) {
        st->reply = "a";
        st->reply_len = 1;
    } else if (st->stage == TT_AUTH_CHALLENGE) {
        size_t n = st->len < sizeof reply ? st->len : sizeof reply;
        if (n) memcpy(reply, st->data, n);
        st->reply = n ? reply : NULL;
        st->reply_len = n;
    } else if (st->len == 1) {
        return TT_EAUTH;
    }
    return TT_OK;
}

static uint32_t next_rand(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    uint8_t flags = data[0], chunking = data[1] & 0x3f;
    bool bounded = data[1] & 0x40;
    bool v5 = flags & 1, extras = v5 && (data[1] & 0x80) && !(flags & 8);   /* requests need push mode */
    data += 2;
    size -= 2;

    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.url = g_url;
    o.client_id = "fuzz";
    o.version = v5 ? TT_MQTT_5 : TT_MQTT_311;
    o.keepalive_s = TT_KEEPALIVE_OFF;
    o.no_reconnect = true;
    o.persistent_session = flags & 4;
    o.pull = flags & 8;
    o.topic_alias_maximum = v5 && (flags & 16) ? 4 : 0;
    o.max_packet_size = (flags & 32) ? 64 : 0;
    o.receive_maximum = v5 ? 8 : 0;
    o.on_message = on_msg;
    o.on_event = on_event;
    o.inbound_queue_bytes = bounded ? 1024 : 0;
    if (extras) {
        o.auth_method = "fz";
        o.on_auth = fz_auth;
        o.response_topic = "r/fuzz";
    }
    tt_client *c = NULL;
    tt_err rc = tt_client_new(g_rt, &o, &c);
    if (rc != TT_OK) {
        fprintf(stderr, "tt_client_new: %s\n", tt_strerror(rc));
        abort();
    }

    tt_future *fs[7];
    size_t nf = 0;
    fs[nf++] = tt_client_connect(c);
    int sfd = -1;
    for (int i = 0; i < TURNS_MAX && sfd < 0; i++) {
        turn();
        sfd = accept4(g_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    if (sfd < 0) __builtin_trap();                  /* the client never connected */
    /* Close with a reset: no TIME_WAIT piles up over millions of runs. */
    struct linger lg = { 1, 0 };
    (void)setsockopt(sfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    for (int i = 0; i < 8; i++) {                   /* the CONNECT */
        turn();
        (void)drain(sfd);
    }
    if (flags & 2) {
        static const uint8_t ack4[] = { 0x20, 0x02, 0x00, 0x00 }, ack5[] = { 0x20, 0x03, 0x00, 0x00, 0x00 };
        (void)send(sfd, v5 ? ack5 : ack4, v5 ? sizeof ack5 : sizeof ack4, MSG_NOSIGNAL);
        for (int i = 0; i < 8; i++) turn();
    }
    unsigned nreq = flags >> 6;
    if (nreq >= 1) {
        tt_sub sub = { .filter = "f/#", .qos = TT_QOS2, .handler = on_msg };
        fs[nf++] = tt_client_subscribe(c, &sub, 1, NULL);
    }
    if (nreq >= 2) fs[nf++] = tt_client_pub(c, "f/1", "one", 3, TT_QOS1, false);
    if (nreq >= 3) fs[nf++] = tt_client_pub(c, "f/2", "two", 3, TT_QOS2, false);
    if (extras) {
        tt_pub q = TT_OPTS_INIT(tt_pub);
        q.topic = "q/1";
        q.payload = "?";
        q.payload_len = 1;
        q.qos = TT_QOS1;
        fs[nf++] = tt_client_request(c, &q, NULL);
        fs[nf++] = tt_client_reauth(c);
    }
    for (int i = 0; i < 8; i++) turn();

    /* The broker's stream, in chunks, the client's loop turning between them. */
    uint32_t seed = 0x2545f491u ^ chunking;
    size_t off = 0;
    bool open = true;
    while (off < size && open) {
        size_t n = chunking ? 1 + next_rand(&seed) % chunking : size - off;
        if (n > size - off) n = size - off;
        ssize_t w = send(sfd, data + off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) break;
        if (w > 0) off += (size_t)w;
        for (int i = 0; i < 3; i++) {
            turn();
            open = drain(sfd);
        }
    }
    for (int i = 0; i < 8; i++) {
        turn();
        (void)drain(sfd);
    }
    if (flags & 8) {                                /* pull mode: take what arrived */
        tt_msg *m = NULL;
        while (tt_client_poll(c, 0, &m) == TT_OK && m) {
            touch(m);
            tt_msg_unref(m);
            m = NULL;
        }
    }

    /* Close: every future completes, the close future last. */
    tt_future *cf = tt_client_close(c);
    close(sfd);
    for (int i = 0; i < TURNS_MAX && !tt_future_done(cf); i++) turn();
    if (!tt_future_done(cf)) __builtin_trap();     /* close never completed */
    if (tt_future_result(cf) != TT_OK) __builtin_trap();
    for (size_t i = 0; i < nf; i++) {
        if (!tt_future_done(fs[i])) __builtin_trap();   /* left pending after close */
        tt_future_free(fs[i]);
    }
    tt_future_free(cf);
    tt_client_free(c);
    for (int i = 0; i < 8; i++) turn();            /* the client's last references go */
    return 0;
}
