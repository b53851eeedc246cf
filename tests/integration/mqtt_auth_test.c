/* MQTT 5 enhanced authentication against a real mosquitto that loads a test
 * plugin (tests/support/auth_plugin.c): the challenge/response exchange in
 * CONNECT, again on every reconnect, re-authentication on a live
 * connection, and each way it can fail, with its specific error. */
#include <pthread.h>
#include <stdatomic.h>
#include <tether/tether.h>
#include <tether/mqtt.h>
#include <unistd.h>

#include "broker.h"
#include "tt_test.h"
#include "tt_wait.h"

#ifndef TT_AUTH_PLUGIN_PATH
#error "TT_AUTH_PLUGIN_PATH: the test plugin's path"
#endif

static tt_runtime *g_rt;

static void rt_up(void) {
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.loop_threads = 1;
    if (tt_runtime_new(&g_rt, &o) != TT_OK) abort();
}

static bool broker_up(tt_broker *b) {
    tt_broker_opts bo = { .extra_conf = "plugin " TT_AUTH_PLUGIN_PATH "\n" };
    return tt_broker_start(b, &bo) == 0;
}

/* The handler's side of "tether-test". Touched on the loop thread only while
 * a connection is being made; the test reads it after the futures complete. */
typedef struct auth_state {
    pthread_mutex_t lock;
    int starts, reauth_starts, challenges, dones;
    bool wrong_proof;                 /* answer the challenge wrongly */
    bool distrust_server;             /* refuse the broker's final data */
    char nonce[16];
    char reply[64];
    char last_done[64];
} auth_state;

static tt_err on_auth(tt_client *c, tt_auth_step *st, void *arg) {
    (void)c;
    auth_state *a = arg;
    pthread_mutex_lock(&a->lock);
    tt_err rc = TT_OK;
    if (strcmp(st->method, "tether-test")) {
        rc = TT_EINVAL;
    } else if (st->stage == TT_AUTH_START) {
        a->starts++;
        if (st->reauth) a->reauth_starts++;
        st->reply = "hello";
        st->reply_len = 5;
    } else if (st->stage == TT_AUTH_CHALLENGE) {
        a->challenges++;
        if (st->len != 14 || memcmp(st->data, "nonce:", 6)) {
            rc = TT_EPROTO;
        } else {
            memcpy(a->nonce, (const char *)st->data + 6, 8);
            a->nonce[8] = '\0';
            char *r = a->reply;
            memcpy(r, "proof:", 6);
            for (int i = 0; i < 8; i++) r[6 + i] = a->nonce[7 - i];
            if (a->wrong_proof) r[6] ^= 1;
            st->reply = r;
            st->reply_len = 14;
        }
    } else {
        a->dones++;
        snprintf(a->last_done, sizeof a->last_done, "%.*s", (int)st->len, st->data ? (const char *)st->data : "");
        char want[40];
        snprintf(want, sizeof want, "server-proof:%s", a->nonce);
        if (a->distrust_server || strcmp(a->last_done, want)) rc = TT_EAUTH;
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

static tt_client *make(const tt_broker *b, const char *method, auth_state *a, tt_client_opts *o) {
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", b->port);
    o->url = url;
    o->version = TT_MQTT_5;
    o->auth_method = method;
    o->on_auth = a ? on_auth : NULL;
    o->on_auth_arg = a;
    tt_client *c = NULL;
    tt_err rc = tt_client_new(g_rt, o, &c);
    if (rc != TT_OK) fprintf(stderr, "tt_client_new: %s\n", tt_strerror(rc));
    return c;
}

/* A "tether-test" client that reconnects quickly. */
static tt_client *reconnecting(const tt_broker *b, auth_state *a) {
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.backoff_min_ms = 20;
    o.backoff_max_ms = 100;
    return make(b, "tether-test", a, &o);
}

static int get(auth_state *a, int *field) { return tt_locked_int(&a->lock, field); }

static atomic_int g_got;
static void on_msg(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    (void)m;
    (void)arg;
    atomic_fetch_add(&g_got, 1);
}

/* Subscribe to `topic` and publish one message to it: the session works. */
static bool round_trip(tt_client *c, const char *topic) {
    int before = atomic_load(&g_got);
    tt_sub s = { .filter = topic, .qos = TT_QOS1, .handler = on_msg };
    if (tt_wait_free(tt_client_subscribe(c, &s, 1, NULL)) != TT_OK) return false;
    if (tt_wait_free(tt_client_pub(c, topic, "x", 1, TT_QOS1, false)) != TT_OK) return false;
    for (int i = 0; i < TT_WAIT_MS / 5 && atomic_load(&g_got) == before; i++) usleep(5000);
    return atomic_load(&g_got) > before;
}

static uint64_t connects(tt_client *c) {
    tt_client_stats st;
    tt_client_stats_get(c, &st);
    return st.connects;
}

/* The whole exchange at connect, a re-authentication, and a fresh exchange
 * after the broker comes back. */
static void test_exchange_reauth_reconnect(void) {
    rt_up();
    tt_broker b;
    TT_REQUIRE(broker_up(&b));
    auth_state a = { .lock = PTHREAD_MUTEX_INITIALIZER };
    tt_client *c = reconnecting(&b, &a);
    TT_REQUIRE(c);
    tt_err crc = tt_wait_free(tt_client_connect(c));
    if (crc != TT_OK) tt_broker_dump_log(&b, stderr);
    TT_CHECK_EQ_INT(crc, TT_OK);
    TT_CHECK_EQ_INT(get(&a, &a.starts), 1);
    TT_CHECK_EQ_INT(get(&a, &a.challenges), 1);
    TT_CHECK_EQ_INT(get(&a, &a.dones), 1);
    pthread_mutex_lock(&a.lock);
    char want[40];
    snprintf(want, sizeof want, "server-proof:%s", a.nonce);
    TT_CHECK_EQ_STR(a.last_done, want);
    pthread_mutex_unlock(&a.lock);
    TT_CHECK(round_trip(c, "auth/one"));

    /* Re-authentication on the live connection: a new nonce, same socket. */
    char first[16];
    pthread_mutex_lock(&a.lock);
    snprintf(first, sizeof first, "%s", a.nonce);
    pthread_mutex_unlock(&a.lock);
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_reauth(c)), TT_OK);
    TT_CHECK_EQ_INT(get(&a, &a.reauth_starts), 1);
    TT_CHECK_EQ_INT(get(&a, &a.challenges), 2);
    TT_CHECK_EQ_INT(get(&a, &a.dones), 2);
    pthread_mutex_lock(&a.lock);
    TT_CHECK(strcmp(first, a.nonce) != 0);
    pthread_mutex_unlock(&a.lock);
    TT_CHECK_EQ_INT((int)connects(c), 1);
    TT_CHECK(round_trip(c, "auth/two"));

    /* The broker restarts: the reconnect runs the exchange from the start. */
    TT_REQUIRE(tt_broker_restart(&b) == 0);
    for (int i = 0; i < TT_WAIT_MS / 10 && connects(c) < 2; i++) usleep(10000);
    TT_CHECK_EQ_INT((int)connects(c), 2);
    TT_CHECK(get(&a, &a.starts) >= 3);            /* one per attempt, refused ones too */
    TT_CHECK_EQ_INT(get(&a, &a.dones), 3);        /* one per accepted connection */
    TT_CHECK(round_trip(c, "auth/three"));
    tt_client_free(c);

    /* A method without data needs no handler. */
    tt_client_opts no = TT_OPTS_INIT(tt_client_opts);
    c = make(&b, "tether-none", NULL, &no);
    TT_REQUIRE(c);
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_connect(c)), TT_OK);
    TT_CHECK(round_trip(c, "auth/none"));
    tt_client_free(c);
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

static tt_err connect_result(tt_client *c, int *detail, char *why, size_t n) {
    tt_future *f = tt_client_connect(c);
    tt_err rc = tt_future_wait(f, TT_WAIT_MS);
    const char *w = NULL;
    *detail = tt_future_detail(f, &w);
    snprintf(why, n, "%s", w ? w : "");
    tt_future_free(f);
    return rc;
}

/* Each refusal is TT_EAUTH with what refused: the broker (its code), or the
 * handler (its step). None of them retries. */
static void test_refusals(void) {
    rt_up();
    tt_broker b;
    TT_REQUIRE(broker_up(&b));
    int detail;
    char why[200];

    auth_state wrong = { .lock = PTHREAD_MUTEX_INITIALIZER, .wrong_proof = true };
    tt_client_opts o1 = TT_OPTS_INIT(tt_client_opts);
    tt_client *c = make(&b, "tether-test", &wrong, &o1);
    TT_REQUIRE(c);
    TT_CHECK_EQ_INT(connect_result(c, &detail, why, sizeof why), TT_EAUTH);
    TT_CHECK_MSG(detail == 0x87, "detail 0x%x (%s)", detail, why);
    usleep(200000);
    TT_CHECK_EQ_INT(get(&wrong, &wrong.starts), 1);            /* no retry */
    tt_client_free(c);

    auth_state distrust = { .lock = PTHREAD_MUTEX_INITIALIZER, .distrust_server = true };
    tt_client_opts o2 = TT_OPTS_INIT(tt_client_opts);
    c = make(&b, "tether-test", &distrust, &o2);
    TT_REQUIRE(c);
    TT_CHECK_EQ_INT(connect_result(c, &detail, why, sizeof why), TT_EAUTH);
    TT_CHECK_MSG(strstr(why, "on_auth refused the done step"), "reason: %s", why);
    tt_client_free(c);

    tt_client_opts o3 = TT_OPTS_INIT(tt_client_opts);
    c = make(&b, "no-such-method", NULL, &o3);
    TT_REQUIRE(c);
    TT_CHECK_EQ_INT(connect_result(c, &detail, why, sizeof why), TT_EAUTH);
    TT_CHECK_MSG(detail == 0x8C, "detail 0x%x (%s)", detail, why);
    tt_client_free(c);

    /* A challenge and no handler to answer it. */
    tt_client_opts o4 = TT_OPTS_INIT(tt_client_opts);
    c = make(&b, "tether-test", NULL, &o4);
    TT_REQUIRE(c);
    TT_CHECK_EQ_INT(connect_result(c, &detail, why, sizeof why), TT_EAUTH);
    tt_client_free(c);

    /* Options that cannot work are refused at creation, and reauth needs a method. */
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", b.port);
    tt_client_opts bad = TT_OPTS_INIT(tt_client_opts);
    bad.url = url;
    bad.auth_method = "tether-test";                           /* on 3.1.1 */
    TT_CHECK_EQ_INT(tt_client_new(g_rt, &bad, &c), TT_EINVAL);
    bad.version = TT_MQTT_5;
    bad.auth_method = NULL;
    bad.on_auth = on_auth;                                     /* a handler for no method */
    TT_CHECK_EQ_INT(tt_client_new(g_rt, &bad, &c), TT_EINVAL);
    bad.on_auth = NULL;
    TT_REQUIRE(tt_client_new(g_rt, &bad, &c) == TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_connect(c)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_reauth(c)), TT_EINVAL);
    tt_client_free(c);
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

/* A re-authentication the broker refuses ends the connection: the future
 * fails with TT_EAUTH and the broker's code; with reconnect on, the next
 * connection authenticates afresh. */
static void test_reauth_refused(void) {
    rt_up();
    tt_broker b;
    TT_REQUIRE(broker_up(&b));
    auth_state a = { .lock = PTHREAD_MUTEX_INITIALIZER };
    tt_client *c = reconnecting(&b, &a);
    TT_REQUIRE(c);
    TT_REQUIRE(tt_wait_free(tt_client_connect(c)) == TT_OK);
    pthread_mutex_lock(&a.lock);
    a.wrong_proof = true;
    pthread_mutex_unlock(&a.lock);
    tt_future *f = tt_client_reauth(c);
    const char *why = NULL;
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_EAUTH);
    TT_CHECK_MSG(tt_future_detail(f, &why) == 0x87, "detail 0x%x (%s)", tt_future_detail(f, NULL), why ? why : "");
    tt_future_free(f);
    pthread_mutex_lock(&a.lock);
    a.wrong_proof = false;
    pthread_mutex_unlock(&a.lock);
    for (int i = 0; i < TT_WAIT_MS / 10 && connects(c) < 2; i++) usleep(10000);
    TT_CHECK_EQ_INT((int)connects(c), 2);
    TT_CHECK(round_trip(c, "auth/after"));
    tt_client_free(c);
    tt_broker_free(&b);
    tt_runtime_free(g_rt);
}

TT_TEST_LIST = {
    { "exchange_reauth_reconnect", test_exchange_reauth_reconnect },
    { "refusals", test_refusals },
    { "reauth_refused", test_reauth_refused },
    { NULL, NULL },
};
