/* The MQTT client against a real mosquitto on a free loopback port. */
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <tether/tether.h>
#include <tether/mqtt.h>
#include <malloc.h>
#include <unistd.h>

#include "broker.h"
#include "tt_scale.h"
#include "live_alloc.h"
#include "tt_test.h"
#include "tt_wait.h"


static tt_runtime *g_rt;

static void rt_up(void) {
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.loop_threads = 2;
    if (tt_runtime_new(&g_rt, &o) != TT_OK) abort();
}

static tt_client *make(const tt_broker *b, tt_client_opts *o) {
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", b->port);
    o->url = url;
    tt_client *c = NULL;
    tt_err rc = tt_client_new(g_rt, o, &c);
    if (rc != TT_OK) fprintf(stderr, "tt_client_new: %s\n", tt_strerror(rc));
    return c;
}

/* Collects messages. */
typedef struct inbox {
    pthread_mutex_t lock;
    int count;
    int by_qos[3];
    char last_topic[128];
    char last_payload[256];
    bool last_retained;
    uint32_t *seqs;                  /* for streams: sequence numbers seen */
    int nseqs, cap;
    char prop_key[64], prop_val[64];
} inbox;

static void on_msg(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    inbox *in = arg;
    size_t tl, pl;
    const char *t = tt_msg_topic(m, &tl);
    const char *p = tt_msg_payload(m, &pl);
    pthread_mutex_lock(&in->lock);
    in->count++;
    in->by_qos[tt_msg_qos(m)]++;
    snprintf(in->last_topic, sizeof in->last_topic, "%.*s", (int)tl, t);
    snprintf(in->last_payload, sizeof in->last_payload, "%.*s", (int)pl, p);
    in->last_retained = tt_msg_is_retained(m);
    if (in->seqs && pl >= 4 && in->nseqs < in->cap) {
        uint32_t s;
        memcpy(&s, p, 4);
        in->seqs[in->nseqs++] = s;
    }
    const char *k, *v;
    size_t kl, vl;
    if (tt_msg_user_prop(m, 0, &k, &kl, &v, &vl)) {
        snprintf(in->prop_key, sizeof in->prop_key, "%.*s", (int)kl, k);
        snprintf(in->prop_val, sizeof in->prop_val, "%.*s", (int)vl, v);
    }
    pthread_mutex_unlock(&in->lock);
}

static int inbox_count(inbox *in) { return tt_locked_int(&in->lock, &in->count); }

static bool wait_count(inbox *in, int n, int ms) {
    for (int i = 0; i < ms / 5; i++) {
        if (inbox_count(in) >= n) return true;
        usleep(5000);
    }
    return inbox_count(in) >= n;
}

static void test_pubsub_qos012(void) {
    rt_up();
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    for (int v = 4; v <= 5; v++) {
        inbox in = { .lock = PTHREAD_MUTEX_INITIALIZER };
        tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
        o.version = (tt_mqtt_version)v;
        tt_client *c = make(&b, &o);
        TT_REQUIRE(c);
        tt_future *f = tt_client_connect(c);
        TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
        TT_CHECK_EQ_INT(tt_future_get_i64(f), 0);          /* clean: no session present */
        tt_future_free(f);
        tt_sub s = { .filter = "t/+/x", .qos = TT_QOS2, .handler = on_msg, .arg = &in };
        f = tt_client_subscribe(c, &s, 1, NULL);
        TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
        const uint8_t *codes;
        size_t n;
        TT_CHECK_EQ_INT(tt_future_get_suback(f, &codes, &n), TT_OK);
        TT_CHECK_EQ_INT(n, 1);
        TT_CHECK_EQ_INT(codes[0], 2);
        tt_future_free(f);
        for (int q = 0; q <= 2; q++) {
            char pl[32];
            snprintf(pl, sizeof pl, "hello %d", q);
            TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(c, "t/a/x", pl, strlen(pl), (tt_qos)q, false)), TT_OK);
        }
        TT_CHECK(wait_count(&in, 3, TT_WAIT_MS));
        TT_CHECK_EQ_INT(in.by_qos[0], 1);
        TT_CHECK_EQ_INT(in.by_qos[1], 1);
        TT_CHECK_EQ_INT(in.by_qos[2], 1);
        TT_CHECK_EQ_STR(in.last_topic, "t/a/x");
        /* Not matching the filter: not delivered. */
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(c, "t/a/y", "no", 2, TT_QOS1, false)), TT_OK);
        f = tt_client_ping(c);
        TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
        TT_CHECK(tt_future_get_i64(f) > 0);
        tt_future_free(f);
        TT_CHECK_EQ_INT(inbox_count(&in), 3);
        const char *filters[] = { "t/+/x" };
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_unsubscribe(c, filters, 1, NULL)), TT_OK);
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(c, "t/a/x", "gone", 4, TT_QOS1, false)), TT_OK);
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_disconnect(c)), TT_OK);
        TT_CHECK_EQ_INT(inbox_count(&in), 3);
        tt_client_free(c);
    }
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

/* ---- Events --------------------------------------------------------------- */

typedef struct events {
    pthread_mutex_t lock;
    int connected, disconnected, reconnecting;
    tt_err last_err;
    char last_reason[160];
} events;

static void on_ev(tt_client *c, const tt_client_event *ev, void *arg) {
    (void)c;
    events *e = arg;
    pthread_mutex_lock(&e->lock);
    if (ev->kind == TT_EV_CONNECTED) e->connected++;
    if (ev->kind == TT_EV_DISCONNECTED) {
        e->disconnected++;
        e->last_err = ev->err;
        snprintf(e->last_reason, sizeof e->last_reason, "%s", ev->reason);
    }
    if (ev->kind == TT_EV_RECONNECTING) e->reconnecting++;
    pthread_mutex_unlock(&e->lock);
}

static int ev_get(events *e, int *field) {
    pthread_mutex_lock(&e->lock);
    int v = *field;
    pthread_mutex_unlock(&e->lock);
    return v;
}

static tt_client *connected(const tt_broker *b, tt_client_opts *o) {
    tt_client *c = make(b, o);
    if (c && tt_wait_free(tt_client_connect(c)) != TT_OK) {
        tt_client_free(c);
        return NULL;
    }
    return c;
}

static tt_err subscribe1(tt_client *c, const char *filter, tt_qos q, inbox *in) {
    tt_sub s = { .filter = filter, .qos = q, .handler = on_msg, .arg = in };
    return tt_wait_free(tt_client_subscribe(c, &s, 1, NULL));
}

/* ---- Retained messages and wills ------------------------------------------------ */

static void test_retained_and_will(void) {
    rt_up();
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    tt_client *p = connected(&b, &o);
    TT_REQUIRE(p);
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(p, "r/state", "on", 2, TT_QOS1, true)), TT_OK);
    inbox in = { .lock = PTHREAD_MUTEX_INITIALIZER };
    tt_client_opts so = TT_OPTS_INIT(tt_client_opts);
    tt_client *s = connected(&b, &so);
    TT_REQUIRE(s);
    TT_CHECK_EQ_INT(subscribe1(s, "r/#", TT_QOS1, &in), TT_OK);
    TT_CHECK(wait_count(&in, 1, TT_WAIT_MS));
    TT_CHECK_EQ_STR(in.last_payload, "on");
    TT_CHECK(in.last_retained);

    /* A will: sent when the connection dies, not after a DISCONNECT. */
    for (int abrupt = 0; abrupt <= 1; abrupt++) {
        tt_will w = TT_OPTS_INIT(tt_will);
        w.topic = "r/will";
        w.payload = abrupt ? "gone" : "never";
        w.payload_len = strlen(w.payload);
        w.qos = TT_QOS1;
        tt_client_opts wo = TT_OPTS_INIT(tt_client_opts);
        wo.will = &w;
        wo.no_reconnect = true;
        tt_client *wc = connected(&b, &wo);
        TT_REQUIRE(wc);
        int before = inbox_count(&in);
        if (abrupt) {
            tt_client_free(wc);               /* closes without DISCONNECT */
            TT_CHECK(wait_count(&in, before + 1, TT_WAIT_MS));
            TT_CHECK_EQ_STR(in.last_topic, "r/will");
            TT_CHECK_EQ_STR(in.last_payload, "gone");
        } else {
            TT_CHECK_EQ_INT(tt_wait_free(tt_client_disconnect(wc)), TT_OK);
            tt_client_free(wc);
            /* A round trip through the broker: anything sent before it has arrived. */
            TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(p, "r/sync", "s", 1, TT_QOS1, false)), TT_OK);
            TT_CHECK(wait_count(&in, before + 1, TT_WAIT_MS));
            TT_CHECK_EQ_STR(in.last_topic, "r/sync");
        }
    }
    tt_client_free(p);
    tt_client_free(s);
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

/* ---- Persistent session ----------------------------------------------------------- */

static void test_persistent_session(void) {
    rt_up();
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    for (int v = 4; v <= 5; v++) {
        char id[32];
        snprintf(id, sizeof id, "persist-%d", v);
        inbox in = { .lock = PTHREAD_MUTEX_INITIALIZER };
        tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
        o.client_id = id;
        o.persistent_session = true;
        o.version = (tt_mqtt_version)v;
        tt_client *s = connected(&b, &o);
        TT_REQUIRE(s);
        TT_CHECK_EQ_INT(subscribe1(s, "p/x", TT_QOS1, &in), TT_OK);
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_disconnect(s)), TT_OK);
        tt_client_free(s);
        tt_client_opts po = TT_OPTS_INIT(tt_client_opts);
        tt_client *p = connected(&b, &po);
        TT_REQUIRE(p);
        for (int i = 0; i < 5; i++)
            TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(p, "p/x", "while away", 10, TT_QOS1, false)), TT_OK);
        tt_client_free(p);
        /* Back with the same id: the session is there, and so are the messages.
         * The handler comes from the catch-all: subscriptions of the old
         * handle are gone with it. */
        o.on_message = on_msg;
        o.on_message_arg = &in;
        s = make(&b, &o);
        TT_REQUIRE(s);
        tt_future *f = tt_client_connect(s);
        TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
        TT_CHECK_EQ_INT(tt_future_get_i64(f), 1);          /* session present */
        tt_future_free(f);
        TT_CHECK(wait_count(&in, 5, TT_WAIT_MS));
        TT_CHECK_EQ_STR(in.last_payload, "while away");
        tt_client_free(s);
    }
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

/* ---- Broker restarts mid-stream ------------------------------------------------------ */

static void test_broker_restart_midstream(void) {
    rt_up();
    tt_broker_opts bo = { .persistence = true, .max_queued_messages = TT_BROKER_UNLIMITED };
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, &bo) == 0);
    const int n = TT_SCALED(4000);
    for (int q = 1; q <= 2; q++) {
        inbox in = { .lock = PTHREAD_MUTEX_INITIALIZER };
        in.seqs = calloc((size_t)n * 2, sizeof(uint32_t));
        in.cap = n * 2;
        char sid[32], pid[32], topic[32];
        snprintf(sid, sizeof sid, "restart-sub-%d", q);
        snprintf(pid, sizeof pid, "restart-pub-%d", q);
        snprintf(topic, sizeof topic, "stream/%d", q);
        events ev = { .lock = PTHREAD_MUTEX_INITIALIZER };
        tt_client_opts so = TT_OPTS_INIT(tt_client_opts);
        so.client_id = sid;
        so.persistent_session = true;
        so.backoff_min_ms = 50;
        so.backoff_max_ms = 200;
        so.on_message = on_msg;
        so.on_message_arg = &in;
        tt_client *s = connected(&b, &so);
        TT_REQUIRE(s);
        TT_CHECK_EQ_INT(subscribe1(s, topic, (tt_qos)q, &in), TT_OK);
        tt_client_opts po = TT_OPTS_INIT(tt_client_opts);
        po.client_id = pid;
        po.persistent_session = true;
        po.backoff_min_ms = 50;
        po.backoff_max_ms = 200;
        po.max_inflight = 20;                   /* mosquitto's default receive maximum */
        po.offline_queue_bytes = 16u << 20;
        po.on_event = on_ev;
        po.on_event_arg = &ev;
        tt_client *p = connected(&b, &po);
        TT_REQUIRE(p);
        tt_future **fs = calloc((size_t)n, sizeof *fs);
        for (int i = 0; i < n; i++) {
            uint32_t seq = (uint32_t)i;
            fs[i] = tt_client_pub(p, topic, &seq, sizeof seq, (tt_qos)q, false);
            if (i == n / 2) TT_CHECK_EQ_INT(tt_broker_restart(&b), 0);
        }
        int ok = 0;
        for (int i = 0; i < n; i++) {
            tt_err frc = tt_future_wait(fs[i], 30000);
            if (frc == TT_OK) ok++;
            else if (ok + 1 == i || i == n - 1) {
                const char *why;
                tt_future_detail(fs[i], &why);
                fprintf(stderr, "  publish %d at QoS %d: %s (%s)\n", i, q, tt_err_name(frc), why);
            }
            tt_future_free(fs[i]);
        }
        free(fs);
        TT_CHECK_EQ_INT(ok, n);                          /* every publish acknowledged */
        if (ok != n && getenv("TT_DUMP_BROKER")) tt_broker_dump_log(&b, stderr);
        TT_CHECK(ev_get(&ev, &ev.disconnected) >= 1);    /* the restart was seen */
        /* Every sequence number arrives; at QoS 2 exactly once. The wait is
         * for distinct numbers: QoS 1 duplicates make the count reach n
         * before the last of them is in. */
        char *seen = calloc((size_t)n, 1);
        int dups = 0, missing = n;
        for (int t = 0; t < 3000 && missing; t++) {
            if (t) usleep(10000);
            memset(seen, 0, (size_t)n);
            dups = 0;
            missing = 0;
            pthread_mutex_lock(&in.lock);
            for (int i = 0; i < in.nseqs; i++) {
                if (in.seqs[i] < (uint32_t)n && seen[in.seqs[i]]++) dups++;
            }
            pthread_mutex_unlock(&in.lock);
            for (int i = 0; i < n; i++) missing += !seen[i];
        }
        TT_CHECK_MSG(missing == 0, "QoS %d: %d of %d missing", q, missing, n);
        if (q == 2) TT_CHECK_MSG(dups == 0, "QoS 2: %d duplicates", dups);
        free(seen);
        tt_client_free(p);
        tt_client_free(s);
        free(in.seqs);
    }
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

/* ---- Keepalive ------------------------------------------------------------------------- */

static void test_keepalive_detects_stalled_broker(void) {
    rt_up();
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    events ev = { .lock = PTHREAD_MUTEX_INITIALIZER };
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.keepalive_s = 2;
    o.on_event = on_ev;
    o.on_event_arg = &ev;
    o.backoff_min_ms = 60000;                 /* no reconnect during the test */
    o.backoff_max_ms = 60000;
    tt_client *c = connected(&b, &o);
    TT_REQUIRE(c);
    usleep(3000 * 1000);                      /* pings keep it alive past one keepalive */
    TT_CHECK_EQ_INT(ev_get(&ev, &ev.disconnected), 0);
    TT_REQUIRE(tt_broker_pause(&b) == 0);
    double t0 = tt_test_now_();
    while (ev_get(&ev, &ev.disconnected) == 0 && tt_test_now_() - t0 < 10) usleep(10000);
    double dt = tt_test_now_() - t0;
    TT_CHECK_EQ_INT(ev_get(&ev, &ev.disconnected), 1);
    TT_CHECK_EQ_INT(ev.last_err, TT_ETIMEDOUT);
    TT_CHECK_MSG(dt <= 1.5 * 2 + 0.1, "detected after %.2f s", dt);
    tt_broker_resume(&b);
    tt_client_free(c);
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

/* ---- Specific errors --------------------------------------------------------------------- */

static void test_specific_errors(void) {
    rt_up();
    tt_broker_user users[] = { { "alice", "secret" } };
    tt_broker_opts bo = { .deny_anonymous = true, .users = users, .nusers = 1, .max_packet_size = 1000 };
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, &bo) == 0);
    for (int v = 4; v <= 5; v++) {
        tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
        o.version = (tt_mqtt_version)v;
        o.username = "alice";
        o.password = "wrong";
        tt_client *c = make(&b, &o);
        TT_REQUIRE(c);
        tt_future *f = tt_client_connect(c);
        TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_EAUTH);
        const char *why;
        int detail = tt_future_detail(f, &why);
        TT_CHECK_MSG(v == 4 ? (detail == 4 || detail == 5) : (detail == 0x86 || detail == 0x87),
                     "detail %d (%s)", detail, why);
        TT_CHECK(strlen(why) > 0);
        tt_future_free(f);
        tt_client_free(c);

        o.password = "secret";
        o.backoff_min_ms = 20;
        o.backoff_max_ms = 40;
        c = connected(&b, &o);
        TT_REQUIRE(c);
        /* Bigger than the broker's maximum packet size. */
        char big[2000];
        memset(big, 'x', sizeof big);
        f = tt_client_pub(c, "big", big, sizeof big, TT_QOS1, false);
        tt_err rc = tt_future_wait(f, TT_WAIT_MS);
        if (v == 5) {
            TT_CHECK_EQ_INT(rc, TT_EINVAL);              /* refused before sending */
            tt_future_detail(f, &why);
            TT_CHECK(strstr(why, "maximum") != NULL);
        } else {
            /* 3.1.1 has no way to learn the limit: the broker drops the
             * connection each time, and after a few tries the call fails. */
            TT_CHECK_EQ_INT(rc, TT_EPROTO);
        }
        tt_future_free(f);
        tt_client_free(c);
    }
    /* Nobody listening. */
    tt_broker_stop(&b);
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.no_reconnect = true;
    tt_client *c = make(&b, &o);
    TT_REQUIRE(c);
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_connect(c)), TT_ECONNREFUSED);
    tt_client_free(c);
    /* Bad arguments fail at once, through the future. */
    o.url = "mqtt://";
    TT_CHECK_EQ_INT(tt_client_new(g_rt, &o, &c), TT_EINVAL);
    o.url = "http://example";
    TT_CHECK_EQ_INT(tt_client_new(g_rt, &o, &c), TT_EINVAL);
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

/* ---- Offline queue --------------------------------------------------------------------- */

static void test_offline_queue_bound(void) {
    rt_up();
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    for (int policy = 0; policy <= 1; policy++) {
        tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
        o.offline_queue_bytes = 10000;
        o.overflow = (tt_overflow)policy;
        o.backoff_min_ms = 60000;
        o.backoff_max_ms = 60000;
        tt_client *c = connected(&b, &o);
        TT_REQUIRE(c);
        TT_REQUIRE(tt_broker_stop(&b) == 0);
        /* Wait until the client noticed. */
        tt_future *f = NULL;
        for (int i = 0; i < 500; i++) {
            f = tt_client_ping(c);
            if (tt_future_wait(f, TT_WAIT_MS) == TT_ECLOSED) break;
            tt_future_free(f);
            f = NULL;
            usleep(10000);
        }
        tt_future_free(f);
        char pl[100] = { 0 };
        tt_future *fs[200];
        for (int i = 0; i < 200; i++) fs[i] = tt_client_pub(c, "q", pl, sizeof pl, TT_QOS1, false);
        /* ~107 bytes each: about 93 fit in 10000. */
        /* The last call has been handled once a later ping comes back. */
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_ping(c)), TT_ECLOSED);
        int eagain = 0, pending = 0;
        for (int i = 0; i < 200; i++) {
            tt_err rc = tt_future_result(fs[i]);
            if (rc == TT_EAGAIN) eagain++;
            else if (rc == TT_EBUSY) pending++;
        }
        TT_CHECK(pending > 80 && pending < 100);
        TT_CHECK_EQ_INT(eagain + pending, 200);
        if (policy == TT_OVERFLOW_FAIL) {
            TT_CHECK_EQ_INT(tt_future_result(fs[0]), TT_EBUSY);      /* the oldest wait */
            TT_CHECK_EQ_INT(tt_future_result(fs[199]), TT_EAGAIN);   /* the newest failed */
        } else {
            TT_CHECK_EQ_INT(tt_future_result(fs[0]), TT_EAGAIN);     /* the oldest dropped */
            TT_CHECK_EQ_INT(tt_future_result(fs[199]), TT_EBUSY);
        }
        for (int i = 0; i < 200; i++) tt_future_free(fs[i]);
        tt_client_free(c);
        TT_REQUIRE(tt_broker_restart(&b) == 0);
    }
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

/* ---- Publishes right before a disconnect ------------------------------------------------ */

/* Publishes made just before tt_client_disconnect() go out before the
 * DISCONNECT: every QoS 0 publish reported written reaches the subscriber. */
static void test_publish_then_disconnect(void) {
    rt_up();
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    inbox in = { .lock = PTHREAD_MUTEX_INITIALIZER };
    tt_client_opts so = TT_OPTS_INIT(tt_client_opts);
    tt_client *sub = connected(&b, &so);
    TT_REQUIRE(sub);
    TT_REQUIRE(subscribe1(sub, "bye/#", TT_QOS0, &in) == TT_OK);
    int written = 0, rounds = 20;
    for (int r = 0; r < rounds; r++) {
        tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
        tt_client *c = connected(&b, &o);
        TT_REQUIRE(c);
        tt_future *fs[40];
        for (int i = 0; i < 40; i++) fs[i] = tt_client_pub(c, "bye/now", "x", 1, TT_QOS0, false);
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_disconnect(c)), TT_OK);
        for (int i = 0; i < 40; i++) {
            if (tt_future_wait(fs[i], TT_WAIT_MS) == TT_OK) written++;
            tt_future_free(fs[i]);
        }
        tt_client_free(c);
    }
    TT_CHECK(wait_count(&in, written, TT_WAIT_MS));
    usleep(100000);
    fprintf(stderr, "  %d of %d publishes reported written; %d received\n", written, rounds * 40,
            inbox_count(&in));
    TT_CHECK_EQ_INT(inbox_count(&in), written);
    TT_CHECK(written > 0);
    tt_client_free(sub);
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

/* ---- Changing the window on a live connection ------------------------------------------- */

static uint64_t pubs_out(tt_client *c) {
    tt_client_stats st;
    tt_client_stats_get(c, &st);
    return st.publishes_out;
}

static bool wait_pubs_out(tt_client *c, uint64_t n) {
    for (int i = 0; i < 400 && pubs_out(c) < n; i++) usleep(5000);
    return pubs_out(c) >= n;
}

/* With the broker stopped (SIGSTOP: the connection stays, nothing is
 * acknowledged) the window is exactly what gets written. */
static void test_set_max_inflight(void) {
    rt_up();
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.max_inflight = 3;
    tt_client *c = connected(&b, &o);
    TT_REQUIRE(c);
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_set_max_inflight(c, 0)), TT_EINVAL);
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_set_max_inflight(c, 1)), TT_OK);
    uint64_t base = pubs_out(c);
    TT_REQUIRE(tt_broker_pause(&b) == 0);
    tt_future *fs[10];
    for (int i = 0; i < 10; i++) fs[i] = tt_client_pub(c, "win/t", "x", 1, TT_QOS1, false);
    TT_CHECK(wait_pubs_out(c, base + 1));
    usleep(100000);
    TT_CHECK_EQ_INT((int)(pubs_out(c) - base), 1);          /* window 1: one written */
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_set_max_inflight(c, 6)), TT_OK);
    TT_CHECK(wait_pubs_out(c, base + 6));
    usleep(100000);
    TT_CHECK_EQ_INT((int)(pubs_out(c) - base), 6);          /* 6 now, not 10 */
    TT_REQUIRE(tt_broker_resume(&b) == 0);
    for (int i = 0; i < 10; i++) TT_CHECK_EQ_INT(tt_wait_free(fs[i]), TT_OK);
    TT_CHECK_EQ_INT((int)(pubs_out(c) - base), 10);
    tt_client_free(c);
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

/* ---- Many clients in one process --------------------------------------------------------- */

static void test_thousand_clients(void) {
    rt_up();
    tt_broker_opts bo = { .extra_conf = "max_connections -1\n" };
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, &bo) == 0);
    const int n = TT_SCALED(1000) < 200 ? 200 : TT_SCALED(1000);
    tt_client **cs = calloc((size_t)n, sizeof *cs);
    tt_future **fs = calloc((size_t)n, sizeof *fs);
    int fds0 = tt_open_fds();
    for (int i = 0; i < n; i++) {
        tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
        cs[i] = make(&b, &o);
        TT_REQUIRE(cs[i]);
        fs[i] = tt_client_connect(cs[i]);
    }
    int ok = 0;
    for (int i = 0; i < n; i++) {
        ok += tt_future_wait(fs[i], 60000) == TT_OK;
        tt_future_free(fs[i]);
        fs[i] = tt_client_pub(cs[i], "many", "x", 1, TT_QOS1, false);
    }
    TT_CHECK_EQ_INT(ok, n);
    /* One descriptor per connection and nothing else: numeric hosts make no
     * resolver (whose socket would be one more per loop). */
    TT_CHECK_EQ_INT(tt_open_fds() - fds0, n);
    ok = 0;
    for (int i = 0; i < n; i++) {
        ok += tt_future_wait(fs[i], 60000) == TT_OK;
        tt_future_free(fs[i]);
        tt_client_free(cs[i]);
    }
    TT_CHECK_EQ_INT(ok, n);
    free(cs);
    free(fs);
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

/* ---- Pull mode, MQTT 5 properties, freeing from a callback ------------------------------- */

static void free_me(tt_client *c, const tt_msg *m, void *arg) {
    (void)m;
    tt_client_free(c);
    atomic_store((atomic_int *)arg, 1);
}

static void test_pull_props_and_self_free(void) {
    rt_up();
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.version = TT_MQTT_5;
    o.pull = true;
    tt_client *c = connected(&b, &o);
    TT_REQUIRE(c);
    TT_CHECK_EQ_INT(subscribe1(c, "pull/#", TT_QOS1, NULL), TT_OK);
    tt_msg *m = NULL;
    TT_CHECK_EQ_INT(tt_client_poll(c, 0, &m), TT_ETIMEDOUT);
    tt_user_prop props[] = { { "k1", "v1" }, { "k2", "v2" } };
    tt_pub pm = TT_OPTS_INIT(tt_pub);
    pm.topic = "pull/a";
    pm.payload = "body";
    pm.payload_len = 4;
    pm.qos = TT_QOS1;
    pm.props = props;
    pm.nprops = 2;
    pm.content_type = "text/plain";
    pm.correlation = "id-7";
    pm.correlation_len = 4;
    pm.response_topic = "pull/reply";
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_publish(c, &pm, NULL)), TT_OK);
    TT_CHECK_EQ_INT(tt_client_poll(c, TT_WAIT_MS, &m), TT_OK);
    TT_REQUIRE(m);
    size_t l;
    TT_CHECK(!memcmp(tt_msg_payload(m, &l), "body", 4) && l == 4);
    TT_CHECK_EQ_INT(tt_msg_user_prop_count(m), 2);
    const char *k, *v;
    size_t kl, vl;
    TT_CHECK(tt_msg_user_prop(m, 1, &k, &kl, &v, &vl) && kl == 2 && !memcmp(k, "k2", 2) && !memcmp(v, "v2", 2));
    TT_CHECK(!tt_msg_user_prop(m, 2, &k, &kl, &v, &vl));
    const char *ct = tt_msg_content_type(m, &l);
    TT_CHECK(ct && l == 10 && !memcmp(ct, "text/plain", 10));
    const char *rt = tt_msg_response_topic(m, &l);
    TT_CHECK(rt && l == 10 && !memcmp(rt, "pull/reply", 10));
    const void *cd = tt_msg_correlation(m, &l);
    TT_CHECK(cd && l == 4 && !memcmp(cd, "id-7", 4));
    tt_msg_unref(m);
    /* MQTT 5 fields on a 3.1.1 client are refused. */
    tt_client_opts o3 = TT_OPTS_INIT(tt_client_opts);
    tt_client *c3 = make(&b, &o3);
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_publish(c3, &pm, NULL)), TT_EINVAL);
    tt_client_free(c3);
    tt_client_free(c);

    /* A handler that frees its own client. */
    atomic_int freed = 0;
    tt_client_opts fo = TT_OPTS_INIT(tt_client_opts);
    fo.on_message = free_me;
    fo.on_message_arg = &freed;
    c = connected(&b, &fo);
    TT_REQUIRE(c);
    tt_sub s = { .filter = "self", .qos = TT_QOS0 };
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_subscribe(c, &s, 1, NULL)), TT_OK);
    tt_future_free(tt_client_pub(c, "self", "x", 1, TT_QOS0, false));
    for (int i = 0; i < 1000 && !atomic_load(&freed); i++) usleep(5000);
    TT_CHECK(atomic_load(&freed));
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

/* ---- One thread, as umqtt: waits and polls run the loop themselves ---------- */

static void test_pull_one_thread(void) {
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    TT_REQUIRE(tt_init() == TT_OK);              /* before the base: libevent locking */
    struct event_base *base = event_base_new();
    TT_REQUIRE(base);
    tt_runtime_opts ro = TT_OPTS_INIT(tt_runtime_opts);
    ro.base = base;
    ro.wait_runs_base = true;
    TT_REQUIRE(tt_runtime_new(&g_rt, &ro) == TT_OK);
    /* Nobody runs the base but the waits and polls below. */
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.pull = true;
    tt_client *c = connected(&b, &o);
    TT_REQUIRE(c);
    TT_CHECK_EQ_INT(subscribe1(c, "one/#", TT_QOS1, NULL), TT_OK);
    tt_msg *m = NULL;
    double t0 = tt_test_now_();
    TT_CHECK_EQ_INT(tt_client_poll(c, 100, &m), TT_ETIMEDOUT);
    TT_CHECK(tt_test_now_() - t0 >= 0.09);
    for (int i = 0; i < 50; i++) {
        char pl[16];
        snprintf(pl, sizeof pl, "m%d", i);
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(c, "one/x", pl, strlen(pl), (tt_qos)(i % 2), false)), TT_OK);
        TT_CHECK_EQ_INT(tt_client_poll(c, TT_WAIT_MS, &m), TT_OK);
        TT_REQUIRE(m);
        size_t l;
        const char *p = tt_msg_payload(m, &l);
        TT_CHECK(l == strlen(pl) && !memcmp(p, pl, l));
        tt_msg_unref(m);
    }
    /* A client on a threaded runtime: its futures are waited for as usual,
     * and what it sends arrives at the polling thread. */
    tt_runtime *rt2;
    tt_runtime_opts ro2 = TT_OPTS_INIT(tt_runtime_opts);
    ro2.loop_threads = 1;
    TT_REQUIRE(tt_runtime_new(&rt2, &ro2) == TT_OK);
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", b.port);
    tt_client_opts po = TT_OPTS_INIT(tt_client_opts);
    po.url = url;
    tt_client *pub = NULL;
    TT_REQUIRE(tt_client_new(rt2, &po, &pub) == TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_connect(pub)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(pub, "one/y", "from afar", 9, TT_QOS1, false)), TT_OK);
    TT_CHECK_EQ_INT(tt_client_poll(c, TT_WAIT_MS, &m), TT_OK);
    TT_REQUIRE(m);
    size_t tl;
    const char *t = tt_msg_topic(m, &tl);
    TT_CHECK(tl == 5 && !memcmp(t, "one/y", 5));
    tt_msg_unref(m);
    tt_client_free(pub);
    tt_runtime_free(rt2);
    tt_future *f = tt_client_ping(c);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
    TT_CHECK(tt_future_get_i64(f) > 0);
    tt_future_free(f);
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_disconnect(c)), TT_OK);
    f = tt_client_close(c);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
    tt_future_free(f);
    TT_CHECK_EQ_INT(tt_client_poll(c, 50, &m), TT_ECLOSED);
    tt_client_free(c);
    tt_runtime_free(g_rt);
    event_base_free(base);
    tt_broker_free(&b);
}

/* ---- Nothing secret in the logs; memory stays within the bound -------------- */

static char g_logbuf[1 << 20];
static size_t g_loglen;
static pthread_mutex_t g_loglock = PTHREAD_MUTEX_INITIALIZER;

static void capture_log(tt_log_level level, const char *tag, const char *msg, void *arg) {
    (void)level;
    (void)arg;
    pthread_mutex_lock(&g_loglock);
    int n = snprintf(g_logbuf + g_loglen, sizeof g_logbuf - g_loglen, "%s: %s\n", tag, msg);
    if (n > 0 && g_loglen + (size_t)n < sizeof g_logbuf) g_loglen += (size_t)n;
    pthread_mutex_unlock(&g_loglock);
}

static void test_no_secrets_in_logs(void) {
    rt_up();
    tt_broker_user users[] = { { "alice", "pa55-SECRET-word" } };
    tt_broker_opts bo = { .deny_anonymous = true, .users = users, .nusers = 1 };
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, &bo) == 0);
    g_loglen = 0;
    tt_log_set_handler(capture_log, NULL, TT_LOG_TRACE);
    for (int v = 4; v <= 5; v++) {
        inbox in = { .lock = PTHREAD_MUTEX_INITIALIZER };
        tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
        o.version = (tt_mqtt_version)v;
        o.username = "alice";
        o.password = "wrong-SECRET-guess";
        tt_client *c = make(&b, &o);
        TT_REQUIRE(c);
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_connect(c)), TT_EAUTH);
        tt_client_free(c);
        o.password = "pa55-SECRET-word";
        c = connected(&b, &o);
        TT_REQUIRE(c);
        TT_CHECK_EQ_INT(subscribe1(c, "s/#", TT_QOS1, &in), TT_OK);
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(c, "s/x", "PAYLOAD-SECRET", 14, TT_QOS1, false)), TT_OK);
        TT_CHECK(wait_count(&in, 1, TT_WAIT_MS));
        tt_client_free(c);
    }
    tt_log_set_handler(NULL, NULL, TT_LOG_OFF);
    pthread_mutex_lock(&g_loglock);
    g_logbuf[g_loglen] = 0;
    TT_CHECK(g_loglen > 0);                                    /* the log did run */
    TT_CHECK(strstr(g_logbuf, "SECRET") == NULL);              /* no password, no payload */
    pthread_mutex_unlock(&g_loglock);
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

static size_t heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void test_memory_bound_with_broker_gone(void) {
    rt_up();
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.offline_queue_bytes = 256u << 10;
    o.backoff_min_ms = 60000;
    o.backoff_max_ms = 60000;
    tt_client *c = connected(&b, &o);
    TT_REQUIRE(c);
    TT_REQUIRE(tt_broker_stop(&b) == 0);
    for (int i = 0; i < 500; i++) {                             /* until the client noticed */
        tt_future *f = tt_client_ping(c);
        tt_err rc = tt_future_wait(f, TT_WAIT_MS);
        tt_future_free(f);
        if (rc == TT_ECLOSED) break;
        usleep(10000);
    }
    static char payload[1024];
    size_t before = heap_in_use();
    int queued = 0, refused = 0;
    for (int i = 0; i < 20000; i++) {                           /* 20 MB offered */
        tt_future *f = tt_client_pub(c, "gone", payload, sizeof payload, TT_QOS1, false);
        if (tt_future_done(f) && tt_future_result(f) == TT_EAGAIN) refused++;
        else queued++;
        tt_future_free(f);
    }
    size_t grown = heap_in_use() - before;
    TT_CHECK_MSG(grown < (1u << 20), "heap grew %zu bytes for a 256 KiB bound", grown);
    TT_CHECK(queued > 200 && queued < 300);                     /* ~1.1 KiB each in 256 KiB */
    TT_CHECK_EQ_INT(queued + refused, 20000);
    tt_client_free(c);
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

/* ---- Flush: waiting for the publishes --------------------------------------------------- */

/* tt_client_flush() completes when every publish is over: not while the
 * broker holds their acknowledgements, not failed by a reconnect in between,
 * and with the first failure when publishes fail. */
static void test_flush(void) {
    rt_up();
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.backoff_min_ms = 20;
    o.backoff_max_ms = 100;
    tt_client *c = connected(&b, &o);
    TT_REQUIRE(c);
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_flush(c)), TT_OK);     /* nothing pending */

    enum { N = 50 };
    tt_future *fs[N];
    uint64_t base = pubs_out(c);
    TT_REQUIRE(tt_broker_pause(&b) == 0);
    for (int i = 0; i < N; i++) fs[i] = tt_client_pub(c, "flush/t", "x", 1, i % 2 ? TT_QOS2 : TT_QOS1, false);
    tt_future *fl = tt_client_flush(c);
    TT_CHECK(wait_pubs_out(c, base + N));
    usleep(100000);
    TT_CHECK(!tt_future_done(fl));                              /* acknowledgements held */
    /* The broker goes and comes back: the client reconnects and resends;
     * the flush waits through it. */
    TT_REQUIRE(tt_broker_kill(&b) == 0);
    TT_REQUIRE(tt_broker_restart(&b) == 0);
    TT_CHECK_EQ_INT(tt_future_wait(fl, TT_WAIT_MS), TT_OK);
    for (int i = 0; i < N; i++) {
        TT_CHECK(tt_future_done(fs[i]));                        /* all over before the flush */
        TT_CHECK_EQ_INT(tt_future_result(fs[i]), TT_OK);
        tt_future_free(fs[i]);
    }
    tt_future_free(fl);
    tt_client_free(c);

    /* Reconnect off: the publishes fail with the connection, so does the flush. */
    tt_client_opts no = TT_OPTS_INIT(tt_client_opts);
    no.no_reconnect = true;
    c = connected(&b, &no);
    TT_REQUIRE(c);
    TT_REQUIRE(tt_broker_pause(&b) == 0);
    for (int i = 0; i < 3; i++) fs[i] = tt_client_pub(c, "flush/t", "x", 1, TT_QOS1, false);
    fl = tt_client_flush(c);
    usleep(50000);
    TT_REQUIRE(tt_broker_kill(&b) == 0);
    const char *why = NULL;
    tt_err rc = tt_future_wait(fl, TT_WAIT_MS);
    TT_CHECK_MSG(rc == TT_ECONNRESET || rc == TT_ECLOSED, "flush: %s", tt_err_name(rc));
    TT_CHECK_EQ_INT(tt_future_detail(fl, &why), 3);
    TT_CHECK_MSG(why && strstr(why, "3 publishes failed"), "reason: %s", why ? why : "(none)");
    tt_future_free(fl);
    for (int i = 0; i < 3; i++) TT_CHECK(tt_wait_free(fs[i]) != TT_OK);

    /* Closing the client fails a flush still waiting. */
    tt_client_opts ro = TT_OPTS_INIT(tt_client_opts);
    TT_REQUIRE(tt_broker_restart(&b) == 0);
    tt_client *c2 = connected(&b, &ro);
    TT_REQUIRE(c2);
    TT_REQUIRE(tt_broker_pause(&b) == 0);
    tt_future *p2 = tt_client_pub(c2, "flush/t", "x", 1, TT_QOS1, false);
    /* Flushes given up on (cancelled here; timed out alike) do not pile up
     * while nothing can finish. */
    size_t rounds[5];
    for (int k = 0; k < 5; k++) {    /* the first round fills the allocator's caches */
        for (int i = 0; i < 5000; i++) {
            tt_future *g = tt_client_flush(c2);
            tt_future_cancel(g);
            tt_future_free(g);
        }
        /* Completes once the loop has taken every call before it. */
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_set_max_inflight(c2, 65535)), TT_OK);
        rounds[k] = heap_in_use();
    }
    /* Kept, 15,000 more would hold about 8 MB; the allocator's depot keeps
     * up to 4,096 freed blocks per size, so allow 2 MiB of slack. */
    TT_CHECK_MSG(rounds[4] < rounds[1] + 2 * 1024 * 1024, "heap grew %zu bytes over 15000 more abandoned flushes",
                 rounds[4] - rounds[1]);
    fl = tt_client_flush(c2);
    usleep(50000);
    TT_CHECK(!tt_future_done(fl));
    tt_future *cf = tt_client_close(c2);
    TT_CHECK_EQ_INT(tt_future_wait(fl, TT_WAIT_MS), TT_ECLOSED);
    TT_CHECK_EQ_INT(tt_wait_free(p2), TT_ECLOSED);
    TT_CHECK_EQ_INT(tt_wait_free(cf), TT_OK);
    tt_future_free(fl);
    tt_client_free(c2);
    tt_client_free(c);
    TT_REQUIRE(tt_broker_resume(&b) == 0);
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

/* ---- Inbound bound ------------------------------------------------------------------------ */

typedef struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
    int count;
    uint32_t next;                    /* the sequence number expected next */
    int out_of_order;
} gate;

/* Blocks the client's strand until the gate opens: a handler that cannot keep up. */
static void on_gated(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    gate *g = arg;
    size_t n;
    const char *p = tt_msg_payload(m, &n);
    uint32_t seq = 0;
    if (n >= 4) memcpy(&seq, p, 4);
    pthread_mutex_lock(&g->lock);
    while (!g->open) pthread_cond_wait(&g->cond, &g->lock);
    if (seq != g->next) g->out_of_order++;
    g->next = seq + 1;
    g->count++;
    pthread_mutex_unlock(&g->lock);
}

static uint64_t bytes_in(tt_client *c) {
    tt_client_stats st;
    tt_client_stats_get(c, &st);
    return st.bytes_in;
}

/* With inbound_queue_bytes, a handler that stalls stops the reading: what
 * the client holds stays near the bound while the broker keeps the rest;
 * the keepalive does not mistake the pause for a dead broker; and once the
 * handler goes on, every message arrives, in order. */
static void test_inbound_bound(void) {
    rt_up();
    tt_broker_opts bo = { .max_queued_messages = TT_BROKER_UNLIMITED };
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, &bo) == 0);
    gate g = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
    tt_client_opts so = TT_OPTS_INIT(tt_client_opts);
    so.inbound_queue_bytes = 64 * 1024;
    so.keepalive_s = 1;
    tt_client *sub = connected(&b, &so);
    TT_REQUIRE(sub);
    tt_sub s = { .filter = "in/t", .qos = TT_QOS1, .handler = on_gated, .arg = &g };
    TT_REQUIRE(tt_wait_free(tt_client_subscribe(sub, &s, 1, NULL)) == TT_OK);

    tt_client_opts po = TT_OPTS_INIT(tt_client_opts);
    po.offline_queue_bytes = 8u << 20;              /* all of it may wait for the socket */
    tt_client *pub = connected(&b, &po);
    TT_REQUIRE(pub);
    enum { N = 3000 };
    static uint8_t payload[1024];
    static tt_future *fs[N];
    for (uint32_t i = 0; i < N; i++) {
        memcpy(payload, &i, 4);
        fs[i] = tt_client_pub(pub, "in/t", payload, sizeof payload, TT_QOS1, false);
    }
    int pub_ok = 0;
    for (int i = 0; i < N; i++) {                                 /* all with the broker */
        if (tt_future_wait(fs[i], TT_WAIT_MS) == TT_OK) pub_ok++;
        tt_future_free(fs[i]);
    }
    TT_CHECK_EQ_INT(pub_ok, N);
    usleep(2500000);                 /* 2.5 keepalives with the handler stuck */
    uint64_t held = bytes_in(sub);
    TT_CHECK_MSG(held < 512 * 1024, "read %llu bytes of %d KiB with the handler stuck",
                 (unsigned long long)held, N);
    tt_client_stats st;
    tt_client_stats_get(sub, &st);
    TT_CHECK_EQ_INT((int)st.connects, 1);                        /* never taken for dead */

    pthread_mutex_lock(&g.lock);
    g.open = true;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
    TT_CHECK(tt_wait_count(&g.lock, &g.count, N));
    pthread_mutex_lock(&g.lock);
    TT_CHECK_EQ_INT(g.count, N);
    TT_CHECK_EQ_INT(g.out_of_order, 0);
    pthread_mutex_unlock(&g.lock);
    tt_client_stats_get(sub, &st);
    TT_CHECK_EQ_INT((int)st.connects, 1);

    /* Pull mode: messages not yet taken by tt_client_poll count the same. */
    tt_client_opts lo = TT_OPTS_INIT(tt_client_opts);
    lo.inbound_queue_bytes = 64 * 1024;
    lo.pull = true;
    tt_client *puller = connected(&b, &lo);
    TT_REQUIRE(puller);
    tt_sub ps = { .filter = "in/p", .qos = TT_QOS1 };
    TT_REQUIRE(tt_wait_free(tt_client_subscribe(puller, &ps, 1, NULL)) == TT_OK);
    for (uint32_t i = 0; i < 1000; i++) {
        memcpy(payload, &i, 4);
        fs[i] = tt_client_pub(pub, "in/p", payload, sizeof payload, TT_QOS1, false);
    }
    for (int i = 0; i < 1000; i++) TT_CHECK_EQ_INT(tt_wait_free(fs[i]), TT_OK);
    usleep(300000);
    held = bytes_in(puller);
    TT_CHECK_MSG(held < 512 * 1024, "read %llu bytes with nothing polled", (unsigned long long)held);
    int polled = 0, in_order = 0;
    tt_msg *m = NULL;
    while (polled < 1000 && tt_client_poll(puller, TT_WAIT_MS, &m) == TT_OK) {
        size_t n;
        uint32_t seq = 0;
        const void *p = tt_msg_payload(m, &n);
        if (n >= 4) memcpy(&seq, p, 4);
        in_order += seq == (uint32_t)polled;
        polled++;
        tt_msg_unref(m);
    }
    TT_CHECK_EQ_INT(polled, 1000);
    TT_CHECK_EQ_INT(in_order, 1000);
    tt_client_free(puller);
    tt_client_free(pub);
    tt_client_free(sub);
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

TT_TEST_LIST = {
    { "pubsub_qos012", test_pubsub_qos012 },
    { "retained_and_will", test_retained_and_will },
    { "persistent_session", test_persistent_session },
    { "broker_restart_midstream", test_broker_restart_midstream },
    { "keepalive_detects_stalled_broker", test_keepalive_detects_stalled_broker },
    { "specific_errors", test_specific_errors },
    { "offline_queue_bound", test_offline_queue_bound },
    { "publish_then_disconnect", test_publish_then_disconnect },
    { "set_max_inflight", test_set_max_inflight },
    { "thousand_clients", test_thousand_clients },
    { "pull_props_and_self_free", test_pull_props_and_self_free },
    { "pull_one_thread", test_pull_one_thread },
    { "no_secrets_in_logs", test_no_secrets_in_logs },
    { "memory_bound_with_broker_gone", test_memory_bound_with_broker_gone },
    { "flush", test_flush },
    { "inbound_bound", test_inbound_bound },
    { NULL, NULL },
};
