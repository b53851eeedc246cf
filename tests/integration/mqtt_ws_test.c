/* MQTT over WebSocket (ws:// and wss://) against mosquitto's websockets
 * listener, and the failure cases against a small WebSocket server in the test
 * (mosquitto upgrades any path, so it cannot answer 404). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <tether/mqtt.h>
#include <tether/tether.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "certs.h"
#include "transport/ws.h"
#include "tt_test.h"
#include "tt_wait.h"

#define BIG (1u << 20)
#define MID (100u << 10)
/* mosquitto 2.0.11 writes to WebSocket clients about 4 KiB per turn of its
 * 100 ms loop (eclipse-mosquitto/mosquitto#2252): 1 MiB takes up to ~30 s. */
#define SLOW_MS 90000

static tt_runtime *g_rt;

static void log_line(tt_log_level level, const char *tag, const char *msg, void *arg) {
    (void)arg;
    fprintf(stderr, "  [%d %s] %s\n", (int)level, tag, msg);
}

static void rt_up(void) {
    if (getenv("TT_TEST_LOG")) tt_log_set_handler(log_line, NULL, TT_LOG_DEBUG);
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.loop_threads = 2;
    if (tt_runtime_new(&g_rt, &o) != TT_OK) abort();
}

static tt_client *make(const char *url, tt_mqtt_version v, const tt_tls_opts *tls) {
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.url = url;
    o.version = v;
    o.tls = tls;
    o.no_reconnect = true;
    o.offline_queue_bytes = 8u << 20;  /* room for the 1 MiB messages */
    tt_client *c = NULL;
    tt_err rc = tt_client_new(g_rt, &o, &c);
    if (rc != TT_OK) fprintf(stderr, "tt_client_new(%s): %s\n", url, tt_strerror(rc));
    return c;
}

static tt_client *connected(const char *url, tt_mqtt_version v, const tt_tls_opts *tls) {
    tt_client *c = make(url, v, tls);
    if (c && tt_wait_free(tt_client_connect(c)) != TT_OK) {
        tt_client_free(c);
        return NULL;
    }
    return c;
}

static void close_free(tt_client *c) {
    if (!c) return;
    tt_future *f = tt_client_close(c);
    (void)tt_future_wait(f, TT_WAIT_MS);
    tt_future_free(f);
    tt_client_free(c);
}

/* ---- Collecting messages --------------------------------------------------- */

typedef struct inbox {
    pthread_mutex_t lock;
    int count;
    int by_qos[3];
    char last_payload[128];
    size_t big_len;                   /* length of the last message over 1 KiB */
    bool big_ok;                      /* ...and whether its bytes were the pattern */
} inbox;

static uint8_t pattern(size_t i) { return (uint8_t)(i * 7u + (i >> 11)); }

static void on_msg(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    inbox *in = arg;
    size_t pl;
    const char *p = tt_msg_payload(m, &pl);
    pthread_mutex_lock(&in->lock);
    in->count++;
    in->by_qos[tt_msg_qos(m)]++;
    if (pl > 1024) {            /* big ones carry the pattern */
        in->big_len = pl;
        in->big_ok = true;
        for (size_t i = 0; i < pl; i++)
            if ((uint8_t)p[i] != pattern(i)) {
                in->big_ok = false;
                break;
            }
    } else {
        snprintf(in->last_payload, sizeof in->last_payload, "%.*s", (int)pl, p);
    }
    pthread_mutex_unlock(&in->lock);
}

static int inbox_count(inbox *in) { return tt_locked_int(&in->lock, &in->count); }

static bool wait_count_ms(inbox *in, int n, int ms) {
    for (int i = 0; i < ms / 5 && inbox_count(in) < n; i++) usleep(5000);
    return inbox_count(in) >= n;
}

static bool wait_count(inbox *in, int n) {
    for (int i = 0; i < TT_WAIT_MS / 5 && inbox_count(in) < n; i++) usleep(5000);
    return inbox_count(in) >= n;
}

static tt_err subscribe1(tt_client *c, const char *filter, tt_qos q, inbox *in) {
    tt_sub s = { .filter = filter, .qos = q, .handler = on_msg, .arg = in };
    return tt_wait_free(tt_client_subscribe(c, &s, 1, NULL));
}

static uint8_t *big_payload(void) {
    uint8_t *b = malloc(BIG);
    if (b)
        for (size_t i = 0; i < BIG; i++) b[i] = pattern(i);
    return b;
}

/* ---- ws:// against mosquitto --------------------------------------------------- */

static void test_ws_pubsub_qos012(void) {
    rt_up();
    tt_broker b;
    tt_broker_opts bo = { .websockets = true, .tcp_nodelay = true };
    TT_REQUIRE(tt_broker_start(&b, &bo) == 0);
    char url[96];
    for (int v = 4; v <= 5; v++) {
        /* The default path ("/mqtt") and an explicit one. */
        snprintf(url, sizeof url, v == 4 ? "ws://127.0.0.1:%d" : "ws://127.0.0.1:%d/mqtt", b.ws_port);
        inbox in = { .lock = PTHREAD_MUTEX_INITIALIZER };
        tt_client *c = connected(url, (tt_mqtt_version)v, NULL);
        TT_REQUIRE(c);
        TT_CHECK_EQ_INT(subscribe1(c, "ws/+/x", TT_QOS2, &in), TT_OK);
        for (int q = 0; q <= 2; q++) {
            char pl[32];
            snprintf(pl, sizeof pl, "hello %d", q);
            TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(c, "ws/a/x", pl, strlen(pl), (tt_qos)q, false)),
                            TT_OK);
        }
        TT_CHECK(wait_count(&in, 3));
        TT_CHECK_EQ_INT(in.by_qos[0], 1);
        TT_CHECK_EQ_INT(in.by_qos[1], 1);
        TT_CHECK_EQ_INT(in.by_qos[2], 1);
        TT_CHECK_EQ_STR(in.last_payload, "hello 2");
        tt_future *f = tt_client_ping(c);
        TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
        tt_future_free(f);
        /* A burst: many packets leave in few frames. */
        for (int i = 0; i < 500; i++) tt_future_free(tt_client_pub(c, "ws/b/x", "burst", 5, TT_QOS0, false));
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(c, "ws/b/x", "last", 4, TT_QOS1, false)), TT_OK);
        TT_CHECK(wait_count(&in, 504));
        TT_CHECK_EQ_STR(in.last_payload, "last");
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_disconnect(c)), TT_OK);
        tt_client_free(c);
    }
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

/* Large messages: the client sends 1 MiB in 64 KiB frames; mosquitto
 * answers in its own (4 KiB) frames, read across many socket reads. */
static void test_ws_big_and_plain_peer(void) {
    rt_up();
    tt_broker b;
    tt_broker_opts bo = { .websockets = true, .tcp_nodelay = true };
    TT_REQUIRE(tt_broker_start(&b, &bo) == 0);
    char ws_url[64], tcp_url[64];
    snprintf(ws_url, sizeof ws_url, "ws://127.0.0.1:%d/mqtt", b.ws_port);
    snprintf(tcp_url, sizeof tcp_url, "mqtt://127.0.0.1:%d", b.port);
    uint8_t *big = big_payload();
    TT_REQUIRE(big);
    for (int v = 4; v <= 5; v++) {
        inbox win = { .lock = PTHREAD_MUTEX_INITIALIZER }, tin = { .lock = PTHREAD_MUTEX_INITIALIZER };
        tt_client *w = connected(ws_url, (tt_mqtt_version)v, NULL);
        tt_client *t = connected(tcp_url, (tt_mqtt_version)v, NULL);
        TT_REQUIRE(w && t);
        TT_CHECK_EQ_INT(subscribe1(w, "to/ws", TT_QOS1, &win), TT_OK);
        TT_CHECK_EQ_INT(subscribe1(t, "to/tcp", TT_QOS1, &tin), TT_OK);
        /* Plain -> WebSocket and back, small and 1 MiB, QoS 0/1/2. */
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(t, "to/ws", "from tcp", 8, TT_QOS2, false)), TT_OK);
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(w, "to/tcp", "from ws", 7, TT_QOS2, false)), TT_OK);
        TT_CHECK(wait_count(&win, 1));
        TT_CHECK(wait_count(&tin, 1));
        TT_CHECK_EQ_STR(win.last_payload, "from tcp");
        TT_CHECK_EQ_STR(tin.last_payload, "from ws");
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(t, "to/ws", big, MID, TT_QOS1, false)), TT_OK);
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(w, "to/tcp", big, BIG, TT_QOS0, false)), TT_OK);
        TT_CHECK(wait_count(&win, 2));
        TT_CHECK(wait_count(&tin, 2));
        TT_CHECK_EQ_INT(win.big_len, MID);
        TT_CHECK(win.big_ok);
        TT_CHECK_EQ_INT(tin.big_len, BIG);
        TT_CHECK(tin.big_ok);
        if (v == 5) {
            /* WebSocket to WebSocket, 1 MiB, with small messages on both sides. */
            TT_CHECK_EQ_INT(subscribe1(w, "ws/self", TT_QOS2, &win), TT_OK);
            tt_future_free(tt_client_pub(w, "ws/self", "before", 6, TT_QOS1, false));
            tt_future_free(tt_client_pub(w, "ws/self", big, BIG, TT_QOS2, false));
            /* Its PUBACK may queue behind the 1 MiB going out to this same client. */
            TT_CHECK_EQ_INT(tt_wait_free_ms(tt_client_pub(w, "ws/self", "after", 5, TT_QOS1, false), SLOW_MS),
                            TT_OK);
            TT_CHECK(wait_count_ms(&win, 5, SLOW_MS));
            TT_CHECK_EQ_STR(win.last_payload, "after");
            TT_CHECK_EQ_INT(win.big_len, BIG);
            TT_CHECK(win.big_ok);
        }
        close_free(w);
        close_free(t);
    }
    free(big);
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

/* ---- A small WebSocket server for the failure cases ----------------------------- */

enum { FAKE_404, FAKE_NO_PROTOCOL, FAKE_GARBAGE, FAKE_CLOSE, FAKE_PING, FAKE_TEXT };

typedef struct fake {
    int mode;
    int lfd;
    int port;
    pthread_t th;
    char request_line[128];
    char host[128];
    atomic_bool pong_ok;              /* FAKE_PING: the client echoed the ping */
    atomic_bool connect_seen;         /* a masked binary frame carried CONNECT */
} fake;

static bool send_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0) return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

static bool recv_all(int fd, void *p, size_t n) {
    char *c = p;
    while (n > 0) {
        ssize_t r = recv(fd, c, n, 0);
        if (r <= 0) return false;
        c += r;
        n -= (size_t)r;
    }
    return true;
}

/* One client frame (masked): opcode and unmasked payload (up to cap bytes kept). */
static bool read_frame(int fd, uint8_t *op, uint8_t *buf, size_t cap, size_t *len) {
    uint8_t h[2], ext[8], mask[4];
    if (!recv_all(fd, h, 2)) return false;
    uint64_t n = h[1] & 0x7F;
    if (n == 126 || n == 127) {
        unsigned k = n == 126 ? 2 : 8;
        if (!recv_all(fd, ext, k)) return false;
        n = 0;
        for (unsigned i = 0; i < k; i++) n = n << 8 | ext[i];
    }
    if (!(h[1] & 0x80) || !recv_all(fd, mask, 4)) return false;
    *op = h[0] & 0x0F;
    *len = (size_t)n;
    for (uint64_t i = 0; i < n; i++) {
        uint8_t x;
        if (!recv_all(fd, &x, 1)) return false;
        if (i < cap) buf[i] = x ^ mask[i & 3];
    }
    return true;
}

static void *fake_main(void *arg) {
    fake *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0) return NULL;
    struct timeval tv = { 5, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[4096];
    size_t n = 0;
    while (n + 1 < sizeof req && (n < 4 || memcmp(req + n - 4, "\r\n\r\n", 4) != 0)) {
        ssize_t r = recv(fd, req + n, 1, 0);
        if (r <= 0) break;
        n++;
    }
    req[n] = '\0';
    sscanf(req, "%127[^\r]", s->request_line);
    const char *h = strstr(req, "\r\nHost: ");
    if (h) sscanf(h + 8, "%127[^\r]", s->host);
    const char *k = strstr(req, "\r\nSec-WebSocket-Key: ");
    char key[64] = "", accept_key[TTI_WS_ACCEPT_LEN + 1] = "";
    if (k) sscanf(k + 21, "%63[^\r]", key);
    tti_ws_accept_for_key(key, strlen(key), accept_key);
    char resp[512];
    bool served = strncmp(s->request_line, "GET /mqtt ", 10) == 0;
    size_t rlen = 0;
    if (s->mode == FAKE_GARBAGE) {
        memcpy(resp, "\x20\x02\x00\x05", 4);          /* a CONNACK, refused, no line end */
        rlen = 4;
    } else if (!served || s->mode == FAKE_404) {
        snprintf(resp, sizeof resp, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    } else {
        snprintf(resp, sizeof resp,
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                 accept_key, s->mode == FAKE_NO_PROTOCOL ? "" : "Sec-WebSocket-Protocol: mqtt\r\n");
    }
    send_all(fd, resp, rlen ? rlen : strlen(resp));
    if (served && s->mode >= FAKE_CLOSE) {
        uint8_t op, buf[256];
        size_t len;
        /* The client sends CONNECT as soon as the upgrade is accepted. */
        if (read_frame(fd, &op, buf, sizeof buf, &len) && op == TTI_WS_OP_BINARY && len >= 2 &&
            buf[0] == 0x10)
            atomic_store(&s->connect_seen, true);
        if (s->mode == FAKE_PING) {
            static const uint8_t ping[] = { 0x89, 0x03, 'a', 'b', 'c' };
            send_all(fd, ping, sizeof ping);
            if (read_frame(fd, &op, buf, sizeof buf, &len) && op == TTI_WS_OP_PONG && len == 3 &&
                memcmp(buf, "abc", 3) == 0)
                atomic_store(&s->pong_ok, true);
        }
        if (s->mode == FAKE_TEXT) {
            static const uint8_t text[] = { 0x81, 0x02, 'h', 'i' };
            send_all(fd, text, sizeof text);
        } else {
            static const uint8_t close_frame[] = { 0x88, 0x06, 0x03, 0xF0, 'b', 'y', 'e', '!' };
            send_all(fd, close_frame, sizeof close_frame);             /* 1008 "bye!" */
        }
    }
    /* Wait for the client to hang up. */
    char sink[512];
    while (recv(fd, sink, sizeof sink, 0) > 0) {
    }
    close(fd);
    return NULL;
}

static bool fake_start(fake *s, int mode) {
    memset(s, 0, sizeof *s);
    s->mode = mode;
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->lfd, 4) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &alen) != 0)
        return false;
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->th, NULL, fake_main, s) == 0;
}

static void fake_stop(fake *s) {
    pthread_join(s->th, NULL);
    close(s->lfd);
}

/* Connect once; the result, its detail and reason. */
static tt_err try_connect(const char *url, int *detail, char *why, size_t whylen) {
    tt_client *c = make(url, TT_MQTT_5, NULL);
    if (!c) return TT_EINTERNAL;
    tt_future *f = tt_client_connect(c);
    tt_err rc = tt_future_wait(f, TT_WAIT_MS);
    const char *w = "";
    *detail = tt_future_detail(f, &w);
    snprintf(why, whylen, "%s", w ? w : "");
    tt_future_free(f);
    close_free(c);
    return rc;
}

static void test_ws_failures(void) {
    rt_up();
    char url[128], why[256];
    int detail;
    fake s;

    /* A path the server does not serve: 404, and the request as sent. */
    TT_REQUIRE(fake_start(&s, FAKE_CLOSE));
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/nope?x=1", s.port);
    TT_CHECK_EQ_INT(try_connect(url, &detail, why, sizeof why), TT_EPROTO);
    fake_stop(&s);
    TT_CHECK_MSG(strstr(why, "HTTP 404 Not Found") != NULL, "%s", why);
    TT_CHECK_EQ_INT(detail, 404);
    TT_CHECK_EQ_STR(s.request_line, "GET /nope?x=1 HTTP/1.1");
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", s.port);
    TT_CHECK_EQ_STR(s.host, host);

    /* Upgraded without the mqtt subprotocol. */
    TT_REQUIRE(fake_start(&s, FAKE_NO_PROTOCOL));
    snprintf(url, sizeof url, "ws://127.0.0.1:%d", s.port);
    TT_CHECK_EQ_INT(try_connect(url, &detail, why, sizeof why), TT_EPROTO);
    fake_stop(&s);
    TT_CHECK_MSG(strstr(why, "no mqtt subprotocol") != NULL, "%s", why);

    /* Not HTTP at all. */
    TT_REQUIRE(fake_start(&s, FAKE_GARBAGE));
    snprintf(url, sizeof url, "ws://127.0.0.1:%d", s.port);
    TT_CHECK_EQ_INT(try_connect(url, &detail, why, sizeof why), TT_EPROTO);
    fake_stop(&s);
    TT_CHECK_MSG(strstr(why, "not an HTTP response") != NULL, "%s", why);

    /* A close frame: TT_ECONNRESET with its code and reason. */
    TT_REQUIRE(fake_start(&s, FAKE_CLOSE));
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/mqtt", s.port);
    TT_CHECK_EQ_INT(try_connect(url, &detail, why, sizeof why), TT_ECONNRESET);
    fake_stop(&s);
    TT_CHECK(atomic_load(&s.connect_seen));
    TT_CHECK_EQ_INT(detail, 1008);
    TT_CHECK_MSG(strstr(why, "1008 bye!") != NULL, "%s", why);

    /* A ping is answered with the same payload, masked. */
    TT_REQUIRE(fake_start(&s, FAKE_PING));
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/mqtt", s.port);
    TT_CHECK_EQ_INT(try_connect(url, &detail, why, sizeof why), TT_ECONNRESET);
    fake_stop(&s);
    TT_CHECK(atomic_load(&s.pong_ok));

    /* A text frame breaks MQTT over WebSocket. */
    TT_REQUIRE(fake_start(&s, FAKE_TEXT));
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/mqtt", s.port);
    TT_CHECK_EQ_INT(try_connect(url, &detail, why, sizeof why), TT_EPROTO);
    fake_stop(&s);
    TT_CHECK_MSG(strstr(why, "text frame") != NULL, "%s", why);

    /* ws:// to mosquitto's plain MQTT port: it drops the "GET" at once. */
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/mqtt", b.port);
    tt_err rc = try_connect(url, &detail, why, sizeof why);
    TT_CHECK_MSG(rc == TT_ECONNRESET || rc == TT_EPROTO, "%s: %s", tt_err_name(rc), why);
    tt_broker_free(&b);

    /* A path that cannot go into a request line fails at connect. */
    TT_CHECK_EQ_INT(try_connect("ws://127.0.0.1:1/a b", &detail, why, sizeof why), TT_EINVAL);
    tt_runtime_free(g_rt);
}

/* ---- wss:// against a TLS websockets listener ------------------------------------- */

static void test_wss(void) {
    tt_certs certs;
    TT_REQUIRE(tt_certs_make(&certs) == 0);
    rt_up();
    /* tt_broker_opts has no TLS websockets listener: add one by hand. */
    tt_broker b;
    int port = -1;
    for (int attempt = 0; attempt < 5 && port < 0; attempt++) {
        int p = tt_broker_free_port();
        TT_REQUIRE(p > 0);
        char conf[2048];
        snprintf(conf, sizeof conf,
                 "listener %d 127.0.0.1\nprotocol websockets\ncertfile %s\nkeyfile %s\n", p,
                 certs.server_cert, certs.server_key);
        tt_broker_opts bo = { .extra_conf = conf };
        TT_REQUIRE(tt_broker_start(&b, &bo) == 0);
        for (int i = 0; i < 500 && !tt_broker_port_accepts(p); i++) usleep(10000);
        if (tt_broker_port_accepts(p)) port = p;
        else tt_broker_free(&b);
    }
    TT_REQUIRE(port > 0);
    tt_tls_opts tls = TT_OPTS_INIT(tt_tls_opts);
    tls.ca_file = certs.ca;
    char url[96], tcp_url[64];
    uint8_t *big = big_payload();
    TT_REQUIRE(big);
    snprintf(tcp_url, sizeof tcp_url, "mqtt://127.0.0.1:%d", b.port);
    for (int v = 4; v <= 5; v++) {
        snprintf(url, sizeof url, v == 4 ? "wss://127.0.0.1:%d" : "wss://localhost:%d/mqtt", port);
        inbox in = { .lock = PTHREAD_MUTEX_INITIALIZER }, tin = { .lock = PTHREAD_MUTEX_INITIALIZER };
        tt_client *c = connected(url, (tt_mqtt_version)v, &tls);
        tt_client *t = connected(tcp_url, (tt_mqtt_version)v, NULL);
        TT_REQUIRE(c && t);
        TT_CHECK_EQ_INT(subscribe1(c, "in/+", TT_QOS2, &in), TT_OK);
        TT_CHECK_EQ_INT(subscribe1(t, "out/+", TT_QOS1, &tin), TT_OK);
        for (int q = 0; q <= 2; q++) {
            char pl[32];
            snprintf(pl, sizeof pl, "secret %d", q);
            TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(c, "in/a", pl, strlen(pl), (tt_qos)q, false)),
                            TT_OK);
        }
        TT_CHECK(wait_count(&in, 3));
        TT_CHECK_EQ_STR(in.last_payload, "secret 2");
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(c, "out/big", big, BIG, TT_QOS1, false)), TT_OK);
        TT_CHECK(wait_count(&tin, 1));
        TT_CHECK_EQ_INT(tin.big_len, BIG);
        TT_CHECK(tin.big_ok);
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(t, "in/mid", big, MID, TT_QOS1, false)), TT_OK);
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(t, "in/tcp", "from tcp", 8, TT_QOS1, false)), TT_OK);
        TT_CHECK(wait_count_ms(&in, 5, SLOW_MS));
        TT_CHECK_EQ_INT(in.big_len, MID);
        TT_CHECK(in.big_ok);
        TT_CHECK_EQ_STR(in.last_payload, "from tcp");
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_disconnect(c)), TT_OK);
        tt_client_free(c);
        close_free(t);
    }
    /* Verification still applies under WebSocket. */
    tt_tls_opts wrong = TT_OPTS_INIT(tt_tls_opts);
    wrong.ca_file = certs.wrong_ca;
    snprintf(url, sizeof url, "wss://127.0.0.1:%d/mqtt", port);
    tt_client *c = make(url, TT_MQTT_5, &wrong);
    TT_REQUIRE(c);
    tt_future *f = tt_client_connect(c);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_ETLS);
    tt_future_free(f);
    close_free(c);
    free(big);
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
    tt_certs_remove(&certs);
}

TT_TEST_LIST = {
    { "ws_pubsub_qos012", test_ws_pubsub_qos012 },
    { "ws_big_and_plain_peer", test_ws_big_and_plain_peer },
    { "ws_failures", test_ws_failures },
    { "wss", test_wss },
    { NULL, NULL },
};
