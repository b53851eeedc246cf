/* The MQTT client against a real mosquitto on a free loopback port. */
#include <pthread.h>
#include <stdatomic.h>
#include <tether/tether.h>
#include <tether/mqtt.h>
#include <unistd.h>

#include "broker.h"
#include "tt_scale.h"
#include "tt_test.h"

#define WAIT_MS 10000

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

static tt_err wait_free(tt_future *f) {
    tt_err rc = tt_future_wait(f, WAIT_MS);
    if (rc != TT_OK) {
        const char *why;
        tt_future_detail(f, &why);
        fprintf(stderr, "  future failed: %s (%s)\n", tt_err_name(rc), why);
    }
    tt_future_free(f);
    return rc;
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

static int inbox_count(inbox *in) {
    pthread_mutex_lock(&in->lock);
    int n = in->count;
    pthread_mutex_unlock(&in->lock);
    return n;
}

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
        TT_CHECK_EQ_INT(tt_future_wait(f, WAIT_MS), TT_OK);
        TT_CHECK_EQ_INT(tt_future_get_i64(f), 0);          /* clean: no session present */
        tt_future_free(f);
        tt_sub s = { .filter = "t/+/x", .qos = TT_QOS2, .handler = on_msg, .arg = &in };
        f = tt_client_subscribe(c, &s, 1, NULL);
        TT_CHECK_EQ_INT(tt_future_wait(f, WAIT_MS), TT_OK);
        const uint8_t *codes;
        size_t n;
        TT_CHECK_EQ_INT(tt_future_get_suback(f, &codes, &n), TT_OK);
        TT_CHECK_EQ_INT(n, 1);
        TT_CHECK_EQ_INT(codes[0], 2);
        tt_future_free(f);
        for (int q = 0; q <= 2; q++) {
            char pl[32];
            snprintf(pl, sizeof pl, "hello %d", q);
            TT_CHECK_EQ_INT(wait_free(tt_client_pub(c, "t/a/x", pl, strlen(pl), (tt_qos)q, false)), TT_OK);
        }
        TT_CHECK(wait_count(&in, 3, WAIT_MS));
        TT_CHECK_EQ_INT(in.by_qos[0], 1);
        TT_CHECK_EQ_INT(in.by_qos[1], 1);
        TT_CHECK_EQ_INT(in.by_qos[2], 1);
        TT_CHECK_EQ_STR(in.last_topic, "t/a/x");
        /* Not matching the filter: not delivered. */
        TT_CHECK_EQ_INT(wait_free(tt_client_pub(c, "t/a/y", "no", 2, TT_QOS1, false)), TT_OK);
        f = tt_client_ping(c);
        TT_CHECK_EQ_INT(tt_future_wait(f, WAIT_MS), TT_OK);
        TT_CHECK(tt_future_get_i64(f) > 0);
        tt_future_free(f);
        TT_CHECK_EQ_INT(inbox_count(&in), 3);
        const char *filters[] = { "t/+/x" };
        TT_CHECK_EQ_INT(wait_free(tt_client_unsubscribe(c, filters, 1, NULL)), TT_OK);
        TT_CHECK_EQ_INT(wait_free(tt_client_pub(c, "t/a/x", "gone", 4, TT_QOS1, false)), TT_OK);
        TT_CHECK_EQ_INT(wait_free(tt_client_disconnect(c)), TT_OK);
        TT_CHECK_EQ_INT(inbox_count(&in), 3);
        tt_client_free(c);
    }
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

TT_TEST_LIST = {
    { "pubsub_qos012", test_pubsub_qos012 },
    { NULL, NULL },
};
