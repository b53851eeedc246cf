/* MQTT 5 features that change what goes on the wire: outbound topic aliases,
 * subscription identifiers (also across a reconnect), the limits a broker's
 * CONNACK sets, request/response, the subscription options and shared
 * subscriptions, and the client's counters that show them. Against a real
 * mosquitto on a free port. */
#include <pthread.h>
#include <stdatomic.h>
#include <tether/tether.h>
#include <tether/mqtt.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "tt_test.h"
#include "tt_wait.h"


static tt_runtime *g_rt;

static void rt_up(void) {
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.loop_threads = 2;
    if (tt_runtime_new(&g_rt, &o) != TT_OK) abort();
}

static tt_client *connected(const tt_broker *b, tt_client_opts *o) {
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", b->port);
    o->url = url;
    tt_client *c = NULL;
    if (tt_client_new(g_rt, o, &c) != TT_OK) return NULL;
    if (tt_wait_free(tt_client_connect(c)) != TT_OK) {
        tt_client_free(c);
        return NULL;
    }
    return c;
}

/* What a subscriber saw: per topic index, the count and payload checks. */
#define NTOPICS 40
typedef struct seen {
    pthread_mutex_t lock;
    int total, bad;
    int per_topic[NTOPICS];
    uint32_t ids_union;              /* bit i: subscription identifier i (< 32) seen */
    int with_ids;
} seen;

static void on_msg(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    seen *s = arg;
    size_t tl, pl;
    const char *t = tt_msg_topic(m, &tl);
    const char *p = tt_msg_payload(m, &pl);
    uint32_t ids[8];
    size_t nids = tt_msg_sub_ids(m, ids, 8);
    pthread_mutex_lock(&s->lock);
    s->total++;
    /* Payload names its topic, so a topic restored from the wrong alias shows. */
    int idx = -1;
    if (sscanf(p, "for %d", &idx) != 1 || idx < 0 || idx >= NTOPICS) {
        s->bad++;
    } else {
        char want[160];
        snprintf(want, sizeof want, "v5/a-rather-long-topic-name-that-an-alias-saves-bytes-on/%d", idx);
        if (tl != strlen(want) || memcmp(t, want, tl) != 0 || pl > 32) s->bad++;
        else s->per_topic[idx]++;
    }
    if (nids) s->with_ids++;
    for (size_t i = 0; i < nids && i < 8; i++)
        if (ids[i] < 32) s->ids_union |= 1u << ids[i];
    pthread_mutex_unlock(&s->lock);
}

static int seen_total(seen *s) { return tt_locked_int(&s->lock, &s->total); }
static bool wait_total(seen *s, int n) { return tt_wait_count(&s->lock, &s->total, n); }

/* Publishes `rounds` messages to each of `ntopics` topics at QoS 1. */
static bool publish_rounds(tt_client *c, int ntopics, int rounds) {
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < ntopics; i++) {
            char topic[160], payload[32];
            snprintf(topic, sizeof topic, "v5/a-rather-long-topic-name-that-an-alias-saves-bytes-on/%d", i);
            int n = snprintf(payload, sizeof payload, "for %d", i);
            if (tt_wait_free(tt_client_pub(c, topic, payload, (size_t)n + 1, TT_QOS1, false)) != TT_OK) return false;
        }
    }
    return true;
}

/* Until the client has been accepted `n` times (reconnected after a restart). */
static bool wait_connects(tt_client *c, uint64_t n) {
    tt_client_stats st;
    for (int i = 0; i < TT_WAIT_MS / 25; i++) {
        tt_client_stats_get(c, &st);
        if (st.connects >= n) return true;
        usleep(25000);
    }
    return false;
}

/* ---- Outbound topic aliases ----------------------------------------------- */

static void test_outbound_topic_aliases(void) {
    rt_up();
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
    tt_client_opts so = TT_OPTS_INIT(tt_client_opts);
    so.version = TT_MQTT_5;
    tt_client *sub = connected(&b, &so);
    TT_REQUIRE(sub);
    tt_sub f = { .filter = "v5/#", .qos = TT_QOS1, .handler = on_msg, .arg = &s };
    TT_REQUIRE(tt_wait_free(tt_client_subscribe(sub, &f, 1, NULL)) == TT_OK);

    /* The same traffic with and without aliases. mosquitto allows 10 aliases
     * per connection: 5 topics all get one. */
    tt_client_opts po = TT_OPTS_INIT(tt_client_opts);
    po.version = TT_MQTT_5;
    po.outbound_topic_aliases = true;
    tt_client *pa = connected(&b, &po);
    po.outbound_topic_aliases = false;
    tt_client *pf = connected(&b, &po);
    TT_REQUIRE(pa && pf);
    tt_client_stats a0, f0, a1, f1;
    tt_client_stats_get(pa, &a0);
    tt_client_stats_get(pf, &f0);
    TT_REQUIRE(publish_rounds(pa, 5, 40));
    TT_REQUIRE(publish_rounds(pf, 5, 40));
    TT_CHECK(wait_total(&s, 400));
    tt_client_stats_get(pa, &a1);
    tt_client_stats_get(pf, &f1);
    uint64_t with = a1.bytes_out - a0.bytes_out, without = f1.bytes_out - f0.bytes_out;
    printf("  200 publishes to 5 topics: %llu bytes with aliases, %llu without; %llu aliased\n",
           (unsigned long long)with, (unsigned long long)without, (unsigned long long)(a1.aliased_out - a0.aliased_out));
    TT_CHECK_EQ_INT(a1.publishes_out - a0.publishes_out, 200);
    TT_CHECK_EQ_INT(a1.aliased_out - a0.aliased_out, 195);     /* all but each topic's first */
    TT_CHECK_EQ_INT(f1.aliased_out - f0.aliased_out, 0);
    /* Each aliased PUBLISH drops the 60-byte topic and adds 3 bytes of alias. */
    TT_CHECK(with + 195u * 50u < without);
    pthread_mutex_lock(&s.lock);
    TT_CHECK_EQ_INT(s.bad, 0);
    for (int i = 0; i < 5; i++) TT_CHECK_EQ_INT(s.per_topic[i], 80);
    pthread_mutex_unlock(&s.lock);

    /* More topics than the broker's aliases: the rest go in full, and every
     * message still arrives under its own topic. */
    tt_client_stats_get(pa, &a0);
    TT_REQUIRE(publish_rounds(pa, NTOPICS, 3));
    TT_CHECK(wait_total(&s, 400 + 3 * NTOPICS));
    tt_client_stats_get(pa, &a1);
    /* 10 aliases in all on this connection, 5 of them already known. */
    TT_CHECK_EQ_INT(a1.aliased_out - a0.aliased_out, 5 * 3 + 5 * 2);
    pthread_mutex_lock(&s.lock);
    TT_CHECK_EQ_INT(s.bad, 0);
    for (int i = 5; i < NTOPICS; i++) TT_CHECK_EQ_INT(s.per_topic[i], 3);
    pthread_mutex_unlock(&s.lock);

    /* A new connection starts with no aliases: after a broker restart the
     * first message of a topic carries it again (else the broker would
     * drop us for an unknown alias and nothing would arrive). */
    TT_REQUIRE(tt_broker_restart(&b) == 0);
    int before = seen_total(&s);
    TT_CHECK(wait_connects(pa, 2) && wait_connects(sub, 2));
    usleep(200000);                 /* the subscriber's resubscribe reaches the broker */
    TT_REQUIRE(publish_rounds(pa, 5, 4));
    TT_CHECK(wait_total(&s, before + 20));
    pthread_mutex_lock(&s.lock);
    TT_CHECK_EQ_INT(s.bad, 0);
    pthread_mutex_unlock(&s.lock);
    tt_client_stats_get(pa, &a1);
    TT_CHECK_EQ_INT(a1.connects, 2);                          /* never dropped for a bad alias */

    /* On 3.1.1 the option is ignored. */
    tt_client_opts o3 = TT_OPTS_INIT(tt_client_opts);
    o3.outbound_topic_aliases = true;
    tt_client *c3 = connected(&b, &o3);
    TT_REQUIRE(c3);
    TT_REQUIRE(publish_rounds(c3, 2, 5));
    tt_client_stats_get(c3, &a1);
    TT_CHECK_EQ_INT(a1.aliased_out, 0);
    TT_CHECK_EQ_INT(a1.publishes_out, 10);
    tt_client_free(c3);
    tt_client_free(pa);
    tt_client_free(pf);
    tt_client_free(sub);
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

/* ---- Subscription identifiers ----------------------------------------------- */

static void test_subscription_identifiers(void) {
    rt_up();
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.version = TT_MQTT_5;
    tt_client *c = connected(&b, &o);
    TT_REQUIRE(c);
    /* Two overlapping subscriptions with different identifiers, one without. */
    tt_sub s7 = { .filter = "v5/#", .qos = TT_QOS1, .handler = on_msg, .arg = &s, .sub_id = 7 };
    tt_sub s9[2] = { { .filter = "v5/+/3", .qos = TT_QOS1, .handler = on_msg, .arg = &s, .sub_id = 9 },
                     { .filter = "v5/+/4", .qos = TT_QOS1, .handler = on_msg, .arg = &s, .sub_id = 9 } };
    tt_sub none = { .filter = "other/#", .qos = TT_QOS1, .handler = on_msg, .arg = &s };
    TT_REQUIRE(tt_wait_free(tt_client_subscribe(c, &s7, 1, NULL)) == TT_OK);
    TT_REQUIRE(tt_wait_free(tt_client_subscribe(c, s9, 2, NULL)) == TT_OK);
    TT_REQUIRE(tt_wait_free(tt_client_subscribe(c, &none, 1, NULL)) == TT_OK);

    /* Different identifiers in one call, an identifier out of range, or one
     * on 3.1.1 are refused before anything is sent. */
    tt_sub mixed[2] = { s7, s9[0] };
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_subscribe(c, mixed, 2, NULL)), TT_EINVAL);
    tt_sub big = s7;
    big.sub_id = 268435456u;
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_subscribe(c, &big, 1, NULL)), TT_EINVAL);
    tt_client_opts o3 = TT_OPTS_INIT(tt_client_opts);
    tt_client *c3 = connected(&b, &o3);
    TT_REQUIRE(c3);
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_subscribe(c3, &s7, 1, NULL)), TT_EINVAL);

    tt_client_opts po = TT_OPTS_INIT(tt_client_opts);
    po.version = TT_MQTT_5;
    tt_client *p = connected(&b, &po);
    TT_REQUIRE(p);
    TT_REQUIRE(publish_rounds(p, 5, 1));    /* topics 0..4: 3 and 4 match both */
    TT_CHECK(wait_total(&s, 5));
    usleep(100000);
    pthread_mutex_lock(&s.lock);
    TT_CHECK_EQ_INT(s.bad, 0);
    TT_CHECK_EQ_INT(s.ids_union, (1u << 7) | (1u << 9));
    TT_CHECK_EQ_INT(s.with_ids, s.total);   /* every copy names its subscription */
    memset(s.per_topic, 0, sizeof s.per_topic);
    s.ids_union = 0;
    s.total = s.with_ids = 0;
    pthread_mutex_unlock(&s.lock);

    /* After a broker restart without persistence, the client subscribes
     * again with the same identifiers (one SUBSCRIBE per identifier). */
    TT_REQUIRE(tt_broker_restart(&b) == 0);
    TT_CHECK(wait_connects(c, 2) && wait_connects(p, 2));
    usleep(300000);
    TT_REQUIRE(publish_rounds(p, 5, 1));
    TT_CHECK(wait_total(&s, 5));
    usleep(100000);
    pthread_mutex_lock(&s.lock);
    TT_CHECK_EQ_INT(s.bad, 0);
    TT_CHECK_EQ_INT(s.ids_union, (1u << 7) | (1u << 9));
    TT_CHECK_EQ_INT(s.with_ids, s.total);
    for (int i = 0; i < 5; i++) TT_CHECK(s.per_topic[i] >= 1);
    pthread_mutex_unlock(&s.lock);
    tt_client_free(p);
    tt_client_free(c3);
    tt_client_free(c);
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

/* ---- Freeing clients from callbacks while the runtime shuts down ---------- */

static atomic_int g_freed;

static void free_on_done(tt_future *f, void *arg) {
    tt_client *c = arg;
    if (tt_future_result(f) == TT_ECLOSED) atomic_fetch_add(&g_freed, 1);
    tt_future_free(f);
    tt_client_free(c);               /* the client is still on the runtime's list */
}

static void test_free_in_callback_during_shutdown(void) {
    rt_up();
    /* A listener that never answers: the clients' connect futures wait for a
     * CONNACK when the runtime goes, and their continuations free them. */
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    TT_REQUIRE(ls >= 0 && bind(ls, (struct sockaddr *)&a, sizeof a) == 0 && listen(ls, 512) == 0 &&
               getsockname(ls, (struct sockaddr *)&a, &al) == 0);
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", ntohs(a.sin_port));
    enum { N = 200 };
    for (int i = 0; i < N; i++) {
        tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
        o.url = url;
        tt_client *c = NULL;
        TT_REQUIRE(tt_client_new(g_rt, &o, &c) == TT_OK);
        TT_REQUIRE(tt_future_then(tt_client_connect(c), free_on_done, c) == TT_OK);
    }
    usleep(50000);
    tt_runtime_free(g_rt);           /* ASan/TSan see any use of a freed client here */
    TT_CHECK_EQ_INT(atomic_load(&g_freed), N);
    close(ls);
}

/* ---- What the broker's CONNACK allows -------------------------------------- */

static void on_any(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    (void)m;
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* A broker that takes QoS 1 at most and no retained messages says so in its
 * CONNACK; a publish past either fails with TT_ENOTSUP and the reason code
 * instead of costing the connection (the spec makes it a protocol error).
 * One queued while the connection was being made fails the same way once
 * the CONNACK is in. */
static void test_broker_limits(void) {
    rt_up();
    tt_broker_opts bo = { .extra_conf = "retain_available false\n", .listener_conf = "max_qos 1\n" };
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, &bo) == 0);
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", b.port);
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.url = url;
    o.version = TT_MQTT_5;
    tt_client *c = NULL;
    TT_REQUIRE(tt_client_new(g_rt, &o, &c) == TT_OK);
    tt_future *cf = tt_client_connect(c);
    tt_future *early = tt_client_pub(c, "lim/t", "q2", 2, TT_QOS2, false);   /* queued */
    TT_REQUIRE(tt_wait_free(cf) == TT_OK);
    TT_CHECK_EQ_INT(tt_future_wait(early, TT_WAIT_MS), TT_ENOTSUP);
    TT_CHECK_EQ_INT(tt_future_detail(early, NULL), 0x9B);
    tt_future_free(early);

    atomic_int got = 0;
    tt_client_opts so = TT_OPTS_INIT(tt_client_opts);
    so.version = TT_MQTT_5;
    tt_client *sub = connected(&b, &so);
    TT_REQUIRE(sub);
    tt_sub sf = { .filter = "lim/#", .qos = TT_QOS1, .handler = on_any, .arg = &got };
    TT_REQUIRE(tt_wait_free(tt_client_subscribe(sub, &sf, 1, NULL)) == TT_OK);

    tt_future *f = tt_client_pub(c, "lim/t", "q2", 2, TT_QOS2, false);
    const char *why = NULL;
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_ENOTSUP);
    TT_CHECK_EQ_INT(tt_future_detail(f, &why), 0x9B);
    TT_CHECK_MSG(why && strstr(why, "Maximum QoS of 1"), "reason: %s", why ? why : "(none)");
    tt_future_free(f);
    f = tt_client_pub(c, "lim/t", "r", 1, TT_QOS0, true);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_ENOTSUP);
    TT_CHECK_EQ_INT(tt_future_detail(f, NULL), 0x9A);
    tt_future_free(f);
    /* What the broker allows still goes, on the same connection. */
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(c, "lim/t", "q1", 2, TT_QOS1, false)), TT_OK);
    for (int i = 0; i < TT_WAIT_MS / 10 && atomic_load(&got) < 1; i++) usleep(10000);
    usleep(100000);
    TT_CHECK_EQ_INT(atomic_load(&got), 1);
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_ping(c)), TT_OK);
    tt_client_stats st;
    tt_client_stats_get(c, &st);
    TT_CHECK_EQ_INT((int)st.connects, 1);
    tt_client_free(sub);
    tt_client_free(c);
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

/* ---- Request/response --------------------------------------------------------- */

/* The responder: answers every request with its payload reversed. */
static void on_echo(tt_client *c, const tt_msg *m, void *arg) {
    (void)arg;
    size_t n;
    const char *p = tt_msg_payload(m, &n);
    char out[64];
    if (n > sizeof out) n = sizeof out;
    for (size_t i = 0; i < n; i++) out[i] = p[n - 1 - i];
    tt_future_free(tt_client_respond(c, m, out, n, TT_QOS1));
}

static tt_client *requester(const tt_broker *b, const char *id) {
    char rt[64];
    snprintf(rt, sizeof rt, "replies/%s", id);
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.version = TT_MQTT_5;
    o.client_id = id;
    o.response_topic = rt;
    o.backoff_min_ms = 20;
    o.backoff_max_ms = 100;
    return connected(b, &o);
}

/* Each answer reaches the request it answers (the payloads say which),
 * across many at once, after a reconnect, and with timeouts in between. */
static void test_request_response(void) {
    rt_up();
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    tt_client_opts so = TT_OPTS_INIT(tt_client_opts);
    so.version = TT_MQTT_5;
    so.backoff_min_ms = 20;
    so.backoff_max_ms = 100;
    tt_client *svc = connected(&b, &so);
    TT_REQUIRE(svc);
    tt_sub es = { .filter = "svc/echo", .qos = TT_QOS1, .handler = on_echo };
    TT_REQUIRE(tt_wait_free(tt_client_subscribe(svc, &es, 1, NULL)) == TT_OK);
    tt_client *c = requester(&b, "rr-client");
    TT_REQUIRE(c);

    enum { N = 300 };
    tt_future *fs[N];
    char want[N][16];
    for (int i = 0; i < N; i++) {
        char body[16];
        int n = snprintf(body, sizeof body, "req-%d", i);
        for (int k = 0; k < n; k++) want[i][k] = body[n - 1 - k];
        want[i][n] = '\0';
        tt_pub m = TT_OPTS_INIT(tt_pub);
        m.topic = "svc/echo";
        m.payload = body;
        m.payload_len = (size_t)n;
        m.qos = i % 2 ? TT_QOS1 : TT_QOS0;
        fs[i] = tt_client_request(c, &m, NULL);
    }
    int ok = 0;
    for (int i = 0; i < N; i++) {
        if (tt_future_wait(fs[i], TT_WAIT_MS) == TT_OK) {
            const tt_msg *ans = tt_future_get_msg(fs[i]);
            size_t n = 0;
            const char *p = ans ? tt_msg_payload(ans, &n) : "";
            if (n == strlen(want[i]) && !memcmp(p, want[i], n)) ok++;
            else fprintf(stderr, "  request %d got '%.*s'\n", i, (int)n, p);
        }
        tt_future_free(fs[i]);
    }
    TT_CHECK_EQ_INT(ok, N);

    /* Nobody answers: the deadline. Many of them, so the table sweeps. */
    tt_call_opts short_wait = TT_OPTS_INIT(tt_call_opts);
    short_wait.timeout_ms = 100;
    tt_pub none = TT_OPTS_INIT(tt_pub);
    none.topic = "svc/nobody";
    none.payload = "x";
    none.payload_len = 1;
    tt_future *lost[40];
    for (int i = 0; i < 40; i++) lost[i] = tt_client_request(c, &none, &short_wait);
    for (int i = 0; i < 40; i++) {
        TT_CHECK_EQ_INT(tt_future_wait(lost[i], TT_WAIT_MS), TT_ETIMEDOUT);
        tt_future_free(lost[i]);
    }
    /* A stray message on the response topic answers nothing and harms nothing. */
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(svc, "replies/rr-client", "stray", 5, TT_QOS1, false)), TT_OK);

    /* After the broker comes back the response topic is subscribed again. */
    TT_REQUIRE(tt_broker_restart(&b) == 0);
    TT_CHECK(wait_connects(c, 2) && wait_connects(svc, 2));
    tt_pub again = TT_OPTS_INIT(tt_pub);
    again.topic = "svc/echo";
    again.payload = "abc";
    again.payload_len = 3;
    again.qos = TT_QOS1;
    tt_future *f = tt_client_request(c, &again, NULL);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
    size_t n = 0;
    const tt_msg *ans = tt_future_get_msg(f);
    TT_CHECK(ans && !memcmp(tt_msg_payload(ans, &n), "cba", 3) && n == 3);
    tt_future_free(f);

    /* Misuse is refused at once. */
    tt_pub own = again;
    own.response_topic = "elsewhere";
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_request(c, &own, NULL)), TT_EINVAL);
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_request(svc, &again, NULL)), TT_EINVAL);   /* no response_topic */
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", b.port);
    tt_client_opts v3 = TT_OPTS_INIT(tt_client_opts);
    v3.url = url;
    v3.response_topic = "replies/x";
    tt_client *bad = NULL;
    TT_CHECK_EQ_INT(tt_client_new(g_rt, &v3, &bad), TT_EINVAL);
    v3.version = TT_MQTT_5;
    v3.response_topic = "replies/+";
    TT_CHECK_EQ_INT(tt_client_new(g_rt, &v3, &bad), TT_EINVAL);
    v3.response_topic = "replies/x";
    v3.pull = true;
    TT_CHECK_EQ_INT(tt_client_new(g_rt, &v3, &bad), TT_EINVAL);

    /* Closing the client fails what still waits. */
    tt_future *pending = tt_client_request(c, &none, NULL);
    tt_future *cf = tt_client_close(c);
    TT_CHECK_EQ_INT(tt_future_wait(pending, TT_WAIT_MS), TT_ECLOSED);
    TT_CHECK_EQ_INT(tt_wait_free(cf), TT_OK);
    tt_future_free(pending);
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_request(c, &again, NULL)), TT_ECLOSED);
    tt_client_free(c);
    tt_client_free(svc);
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

/* ---- Subscription options and shared subscriptions ------------------------------ */

typedef struct tally {
    pthread_mutex_t lock;
    int n, retained;
    uint8_t seen[128];               /* by first payload byte, for the shared case */
    bool utf8;
    uint32_t expiry;
    bool has_expiry;
} tally;

static void on_tally(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    tally *t = arg;
    size_t n;
    const uint8_t *p = tt_msg_payload(m, &n);
    pthread_mutex_lock(&t->lock);
    t->n++;
    t->retained += tt_msg_is_retained(m);
    if (n) t->seen[p[0] & 127]++;
    t->utf8 = tt_msg_payload_utf8(m);
    t->has_expiry = tt_msg_expiry(m, &t->expiry);
    pthread_mutex_unlock(&t->lock);
}

static int tally_n(tally *t) { return tt_locked_int(&t->lock, &t->n); }
static int tally_retained(tally *t) { return tt_locked_int(&t->lock, &t->retained); }

static tt_client *v5_client(const tt_broker *b) {
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.version = TT_MQTT_5;
    return connected(b, &o);
}

static tt_err sub_with(tt_client *c, tt_sub s, tally *t) {
    s.handler = on_tally;
    s.arg = t;
    return tt_wait_free(tt_client_subscribe(c, &s, 1, NULL));
}

/* What the broker does with each MQTT 5 subscription option, seen from the
 * receiving side: shared groups split a stream, no-local keeps one's own
 * messages away, retain handling and retain-as-published govern the retain
 * flag, and expiry and the payload format indicator arrive as sent. */
static void test_subscription_options_and_shared(void) {
    rt_up();
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    tt_client *pub = v5_client(&b);
    TT_REQUIRE(pub);

    /* Shared: each message to exactly one member of the group. */
    tally ta = { .lock = PTHREAD_MUTEX_INITIALIZER }, tb = { .lock = PTHREAD_MUTEX_INITIALIZER };
    tt_client *a = v5_client(&b), *bb = v5_client(&b);
    TT_REQUIRE(a && bb);
    tt_sub sh = { .filter = "$share/g/sh/t", .qos = TT_QOS1 };
    TT_REQUIRE(sub_with(a, sh, &ta) == TT_OK && sub_with(bb, sh, &tb) == TT_OK);
    for (int i = 0; i < 100; i++) {
        uint8_t body = (uint8_t)i;
        TT_REQUIRE(tt_wait_free(tt_client_pub(pub, "sh/t", &body, 1, TT_QOS1, false)) == TT_OK);
    }
    for (int i = 0; i < TT_WAIT_MS / 10 && tally_n(&ta) + tally_n(&tb) < 100; i++) usleep(10000);
    usleep(100000);
    TT_CHECK_EQ_INT(tally_n(&ta) + tally_n(&tb), 100);
    TT_CHECK_MSG(tally_n(&ta) > 0 && tally_n(&tb) > 0, "split %d / %d", tally_n(&ta), tally_n(&tb));
    int once = 0;
    for (int i = 0; i < 100; i++) once += ta.seen[i] + tb.seen[i] == 1;
    TT_CHECK_EQ_INT(once, 100);

    /* No local: a client does not get its own publish back; without it, it does. */
    tally nl = { .lock = PTHREAD_MUTEX_INITIALIZER }, plain = { .lock = PTHREAD_MUTEX_INITIALIZER },
          other = { .lock = PTHREAD_MUTEX_INITIALIZER };
    tt_sub nls = { .filter = "nl/t", .qos = TT_QOS1, .no_local = true };
    tt_sub pls = { .filter = "nl/u", .qos = TT_QOS1 };
    tt_sub oth = { .filter = "nl/#", .qos = TT_QOS1 };
    TT_REQUIRE(sub_with(a, nls, &nl) == TT_OK && sub_with(a, pls, &plain) == TT_OK &&
               sub_with(bb, oth, &other) == TT_OK);
    TT_REQUIRE(tt_wait_free(tt_client_pub(a, "nl/t", "x", 1, TT_QOS1, false)) == TT_OK);
    TT_REQUIRE(tt_wait_free(tt_client_pub(a, "nl/u", "y", 1, TT_QOS1, false)) == TT_OK);
    for (int i = 0; i < TT_WAIT_MS / 10 && (tally_n(&other) < 2 || tally_n(&plain) < 1); i++) usleep(10000);
    usleep(100000);
    TT_CHECK_EQ_INT(tally_n(&other), 2);
    TT_CHECK_EQ_INT(tally_n(&plain), 1);
    TT_CHECK_EQ_INT(tally_n(&nl), 0);

    /* Retain handling: 0 sends the retained message, 2 never, 1 only to a
     * new subscription. */
    TT_REQUIRE(tt_wait_free(tt_client_pub(pub, "rh/t", "kept", 4, TT_QOS1, true)) == TT_OK);
    tally r0 = { .lock = PTHREAD_MUTEX_INITIALIZER }, r1 = { .lock = PTHREAD_MUTEX_INITIALIZER },
          r2 = { .lock = PTHREAD_MUTEX_INITIALIZER };
    tt_sub s0 = { .filter = "rh/t", .qos = TT_QOS1, .retain_handling = 0 };
    tt_sub s1 = { .filter = "rh/t", .qos = TT_QOS1, .retain_handling = 1 };
    tt_sub s2 = { .filter = "rh/t", .qos = TT_QOS1, .retain_handling = 2 };
    tt_client *c0 = v5_client(&b), *c1 = v5_client(&b), *c2 = v5_client(&b);
    TT_REQUIRE(c0 && c1 && c2);
    TT_REQUIRE(sub_with(c0, s0, &r0) == TT_OK && sub_with(c1, s1, &r1) == TT_OK && sub_with(c2, s2, &r2) == TT_OK);
    TT_REQUIRE(sub_with(c1, s1, &r1) == TT_OK);                 /* again: not new, nothing sent */
    usleep(300000);
    TT_CHECK_EQ_INT(tally_retained(&r0), 1);
    TT_CHECK_EQ_INT(tally_retained(&r1), 1);
    TT_CHECK_EQ_INT(tally_n(&r2), 0);

    /* Retain as published: a live message published with retain keeps the
     * flag only for the subscription that asked for it. */
    tally rap = { .lock = PTHREAD_MUTEX_INITIALIZER }, norap = { .lock = PTHREAD_MUTEX_INITIALIZER };
    tt_sub sr = { .filter = "rap/t", .qos = TT_QOS1, .retain_as_published = true, .retain_handling = 2 };
    tt_sub sn = { .filter = "rap/t", .qos = TT_QOS1, .retain_handling = 2 };
    TT_REQUIRE(sub_with(c0, sr, &rap) == TT_OK && sub_with(c2, sn, &norap) == TT_OK);
    TT_REQUIRE(tt_wait_free(tt_client_pub(pub, "rap/t", "live", 4, TT_QOS1, true)) == TT_OK);
    for (int i = 0; i < TT_WAIT_MS / 10 && (tally_n(&rap) < 1 || tally_n(&norap) < 1); i++) usleep(10000);
    TT_CHECK_EQ_INT(tally_retained(&rap), 1);
    TT_CHECK_EQ_INT(tally_n(&norap), 1);
    TT_CHECK_EQ_INT(tally_retained(&norap), 0);

    /* Message expiry and the payload format indicator arrive as sent. */
    tally ex = { .lock = PTHREAD_MUTEX_INITIALIZER };
    tt_sub se = { .filter = "ex/t", .qos = TT_QOS1 };
    TT_REQUIRE(sub_with(c0, se, &ex) == TT_OK);
    tt_pub pe = TT_OPTS_INIT(tt_pub);
    pe.topic = "ex/t";
    pe.payload = "text";
    pe.payload_len = 4;
    pe.qos = TT_QOS1;
    pe.expiry_s = 60;
    pe.payload_utf8 = true;
    TT_REQUIRE(tt_wait_free(tt_client_publish(pub, &pe, NULL)) == TT_OK);
    for (int i = 0; i < TT_WAIT_MS / 10 && tally_n(&ex) < 1; i++) usleep(10000);
    pthread_mutex_lock(&ex.lock);
    TT_CHECK(ex.has_expiry && ex.expiry > 0 && ex.expiry <= 60);
    TT_CHECK(ex.utf8);
    pthread_mutex_unlock(&ex.lock);

    tt_client_free(c0);
    tt_client_free(c1);
    tt_client_free(c2);
    tt_client_free(a);
    tt_client_free(bb);
    tt_client_free(pub);
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

TT_TEST_LIST = {
    { "outbound_topic_aliases", test_outbound_topic_aliases },
    { "subscription_identifiers", test_subscription_identifiers },
    { "free_in_callback_during_shutdown", test_free_in_callback_during_shutdown },
    { "broker_limits", test_broker_limits },
    { "request_response", test_request_response },
    { "subscription_options_and_shared", test_subscription_options_and_shared },
    { NULL, NULL },
};
