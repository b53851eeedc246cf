/* The ThingsBoard gateway client against mosquitto and the emulator in
 * gateway mode: sub-device connect/disconnect, per-device telemetry and
 * attributes, attribute requests (value / values), subscriptions per device
 * and for all devices, RPC to sub-devices, claiming, server disconnects. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <tether/tether.h>
#include <tether/mqtt.h>
#include <tether/thingsboard.h>
#include <unistd.h>

#include "broker.h"
#include "tb_broker.h"
#include "tb_emu.h"
#include "tt_test.h"
#include "tt_wait.h"

#define GW_TOKEN "GW_TEST_TOKEN"

static tt_runtime *g_rt;
/* {}: the parameters of RPCs that need none */
static json_t *g_empty;

typedef struct fixture {
    tb_broker tb;
    tb_emu *emu;
    tt_tb_gateway *gw;
} fixture;

static bool setup_v(fixture *fx, tt_mqtt_version v) {
    if (!g_rt) {
        tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
        o.loop_threads = 2;
        o.pool_threads = 2;
        if (tt_runtime_new(&g_rt, &o) != TT_OK) return false;
    }
    if (!g_empty) g_empty = json_object();
    memset(fx, 0, sizeof *fx);
    const char *gws[] = { GW_TOKEN };
    tb_broker_opts bo = { .gateway_tokens = gws, .ngateways = 1 };
    if (tb_broker_start(&fx->tb, &bo) != 0) {
        tt_broker_dump_log(&fx->tb.b, stderr);
        return false;
    }
    tb_emu_opts eo = { .host = "127.0.0.1", .port = (uint16_t)fx->tb.b.port, .user = TB_BROKER_SERVER_USER,
                       .password = TB_BROKER_SERVER_PASSWORD, .mode = TB_EMU_GATEWAY };
    fx->emu = tb_emu_start(g_rt, &eo);
    if (!fx->emu) return false;
    tt_tb_opts o = TT_OPTS_INIT(tt_tb_opts);
    o.host = "127.0.0.1";
    o.port = (uint16_t)fx->tb.b.port;
    o.token = GW_TOKEN;
    o.password = TB_BROKER_TOKEN_PASSWORD;
    tt_client_opts mo = TT_OPTS_INIT(tt_client_opts);
    mo.version = v;
    o.mqtt = &mo;
    if (tt_tb_gateway_new(g_rt, &o, &fx->gw) != TT_OK) return false;
    return tt_wait_free(tt_tb_gateway_connect(fx->gw)) == TT_OK;
}

static bool setup(fixture *fx) { return setup_v(fx, TT_MQTT_5); }

static void teardown(fixture *fx) {
    tt_tb_gateway_free(fx->gw);
    tb_emu_free(fx->emu);
    tb_broker_free(&fx->tb);
}

static void test_connect_and_data(void) {
    fixture fx;
    TT_REQUIRE(setup(&fx));
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_gateway_connect_device(fx.gw, "Dev A", "thermo")), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_gateway_connect_device(fx.gw, "Dev B", NULL)), TT_OK);
    TT_REQUIRE(tb_emu_wait(fx.emu, "gateway_events", NULL, 2, TT_WAIT_MS) == 0);
    TT_CHECK(tb_emu_connected(fx.emu, "Dev A") && tb_emu_connected(fx.emu, "Dev B"));
    json_t *t = json_pack("{s:i}", "temp", 20);
    json_t *batch = json_pack("[{s:I,s:{s:i}},{s:I,s:{s:i}}]", "ts", (json_int_t)1700000000000, "values", "n", 1,
                              "ts", (json_int_t)1700000001000, "values", "n", 2);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_gateway_send_telemetry(fx.gw, "Dev A", t)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_gateway_send_telemetry(fx.gw, "Dev B", batch)), TT_OK);
    TT_REQUIRE(tb_emu_wait(fx.emu, "telemetry", "Dev A", 1, TT_WAIT_MS) == 0);
    TT_REQUIRE(tb_emu_wait(fx.emu, "telemetry", "Dev B", 2, TT_WAIT_MS) == 0);
    json_t *ga = tb_emu_telemetry(fx.emu, "Dev A"), *gb = tb_emu_telemetry(fx.emu, "Dev B");
    TT_CHECK(json_equal(json_array_get(ga, 0), t));
    TT_CHECK(json_equal(gb, batch));
    json_decref(ga);
    json_decref(gb);
    json_t *a = json_pack("{s:s}", "model", "X1");
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_gateway_send_attributes(fx.gw, "Dev A", a)), TT_OK);
    TT_REQUIRE(tb_emu_wait(fx.emu, "attributes", "Dev A", 1, TT_WAIT_MS) == 0);
    json_t *at = tb_emu_attributes(fx.emu, "Dev A");
    TT_CHECK(json_equal(json_array_get(at, 0), a));
    json_decref(at);
    /* the gateway's own telemetry, as a device */
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_send_telemetry(tt_tb_gateway_device(fx.gw), t)), TT_OK);
    TT_REQUIRE(tb_emu_wait(fx.emu, "telemetry", NULL, 1, TT_WAIT_MS) == 0);
    /* claim */
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_gateway_claim(fx.gw, "Dev A", "sec", 30000)), TT_OK);
    TT_REQUIRE(tb_emu_wait(fx.emu, "claims", "Dev A", 1, TT_WAIT_MS) == 0);
    json_t *cl = tb_emu_claims(fx.emu, "Dev A");
    TT_CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(cl, 0), "secretKey")), "sec");
    TT_CHECK_EQ_INT(json_integer_value(json_object_get(json_array_get(cl, 0), "durationMs")), 30000);
    json_decref(cl);
    /* disconnect */
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_gateway_disconnect_device(fx.gw, "Dev B")), TT_OK);
    TT_REQUIRE(tb_emu_wait(fx.emu, "gateway_events", NULL, 3, TT_WAIT_MS) == 0);
    json_t *ev = tb_emu_gateway_events(fx.emu);
    TT_CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(ev, 0), "event")), "connect");
    TT_CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(ev, 0), "type")), "thermo");
    TT_CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(ev, 1), "type")), "default");
    TT_CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(ev, 2), "event")), "disconnect");
    TT_CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(ev, 2), "device")), "Dev B");
    json_decref(ev);
    TT_CHECK(!tb_emu_connected(fx.emu, "Dev B"));
    /* bad input */
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_gateway_send_telemetry(fx.gw, NULL, t)), TT_EINVAL);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_gateway_connect_device(fx.gw, "", NULL)), TT_EINVAL);
    json_decref(t);
    json_decref(batch);
    json_decref(a);
    teardown(&fx);
}

static void test_attribute_requests(void) {
    fixture fx;
    TT_REQUIRE(setup(&fx));
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_gateway_connect_device(fx.gw, "Dev A", NULL)), TT_OK);
    json_t *ca = json_pack("{s:i,s:i}", "c1", 1, "c2", 2);
    json_t *sa = json_pack("{s:s,s:s}", "s1", "one", "s2", "two");
    tb_emu_set_client_attrs(fx.emu, "Dev A", ca);
    tb_emu_set_shared_attrs(fx.emu, "Dev A", sa);
    /* one key: the "value" reply */
    tt_future *f = tt_tb_gateway_request_attributes(fx.gw, "Dev A", false, "s1", NULL);
    TT_REQUIRE(tt_future_wait(f, TT_WAIT_MS) == TT_OK);
    TT_CHECK_EQ_STR(json_string_value(json_object_get(tt_future_get_ptr(f), "s1")), "one");
    tt_future_free(f);
    /* several: the "values" reply */
    f = tt_tb_gateway_request_attributes(fx.gw, "Dev A", true, "c1,c2", NULL);
    TT_REQUIRE(tt_future_wait(f, TT_WAIT_MS) == TT_OK);
    TT_CHECK(json_equal(tt_future_get_ptr(f), ca));
    tt_future_free(f);
    /* timeout */
    tb_emu_set_silent(fx.emu, true);
    tt_call_opts co = TT_OPTS_INIT(tt_call_opts);
    co.timeout_ms = 400;
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_gateway_request_attributes(fx.gw, "Dev A", false, "s1", &co)), TT_ETIMEDOUT);
    tb_emu_set_silent(fx.emu, false);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_gateway_request_attributes(fx.gw, "Dev A", false, ",", NULL)), TT_EINVAL);
    json_decref(ca);
    json_decref(sa);
    teardown(&fx);
}

typedef struct gw_log {
    pthread_mutex_t lock;
    int calls, deletions;
    char last_dev[32], last_key[32];
} gw_log;

static void on_gw_attr(tt_tb_gateway *g, const char *device, const char *key, const json_t *value, void *arg) {
    (void)g;
    gw_log *l = arg;
    pthread_mutex_lock(&l->lock);
    l->calls++;
    if (!value) l->deletions++;
    snprintf(l->last_dev, sizeof l->last_dev, "%s", device);
    snprintf(l->last_key, sizeof l->last_key, "%s", key);
    pthread_mutex_unlock(&l->lock);
}

static int calls(gw_log *l) { return tt_locked_int(&l->lock, &l->calls); }
static bool wait_calls(gw_log *l, int n) { return tt_wait_count(&l->lock, &l->calls, n); }

static void test_subscriptions(void) {
    fixture fx;
    TT_REQUIRE(setup(&fx));
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_gateway_connect_device(fx.gw, "Dev A", NULL)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_gateway_connect_device(fx.gw, "Dev B", NULL)), TT_OK);
    TT_REQUIRE(tb_emu_wait(fx.emu, "gateway_events", NULL, 2, TT_WAIT_MS) == 0);
    gw_log key_a = { .lock = PTHREAD_MUTEX_INITIALIZER }, all_a = { .lock = PTHREAD_MUTEX_INITIALIZER },
           all = { .lock = PTHREAD_MUTEX_INITIALIZER };
    uint32_t id_key, id_all_a, id_all;
    TT_REQUIRE(tt_tb_gateway_subscribe_attribute(fx.gw, "Dev A", "k", on_gw_attr, &key_a, &id_key) == TT_OK);
    TT_REQUIRE(tt_tb_gateway_subscribe_attribute(fx.gw, "Dev A", NULL, on_gw_attr, &all_a, &id_all_a) == TT_OK);
    TT_REQUIRE(tt_tb_gateway_subscribe_attribute(fx.gw, NULL, NULL, on_gw_attr, &all, &id_all) == TT_OK);
    json_t *u = json_pack("{s:i,s:i}", "k", 1, "other", 2);
    TT_REQUIRE(tb_emu_push_shared(fx.emu, "Dev A", u) == 0);
    TT_REQUIRE(tb_emu_push_shared(fx.emu, "Dev B", u) == 0);
    json_decref(u);
    TT_CHECK(wait_calls(&all, 4));
    TT_CHECK(wait_calls(&all_a, 2));
    TT_CHECK(wait_calls(&key_a, 1));
    TT_CHECK_EQ_STR(all.last_dev, "Dev B");
    TT_CHECK_EQ_STR(key_a.last_key, "k");
    const char *keys[] = { "k" };
    TT_REQUIRE(tb_emu_delete_shared(fx.emu, "Dev A", keys, 1) == 0);
    TT_CHECK(wait_calls(&key_a, 2));
    TT_CHECK_EQ_INT(key_a.deletions, 1);
    TT_CHECK(wait_calls(&all, 5));
    TT_CHECK_EQ_INT(tt_tb_gateway_unsubscribe_attribute(fx.gw, id_key), TT_OK);
    TT_CHECK_EQ_INT(tt_tb_gateway_unsubscribe_attribute(fx.gw, id_key), TT_ENOTFOUND);
    /* our own client-attribute publishes are not updates */
    json_t *mine = json_pack("{s:i}", "k", 3);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_gateway_send_attributes(fx.gw, "Dev A", mine)), TT_OK);
    json_decref(mine);
    TT_REQUIRE(tb_emu_wait(fx.emu, "attributes", "Dev A", 1, TT_WAIT_MS) == 0);
    u = json_pack("{s:i}", "k", 4);
    TT_REQUIRE(tb_emu_push_shared(fx.emu, "Dev A", u) == 0);
    json_decref(u);
    TT_CHECK(wait_calls(&all, 6));
    TT_CHECK_EQ_INT(calls(&all), 6);
    TT_CHECK_EQ_INT(calls(&key_a), 2);
    teardown(&fx);
}

typedef struct gw_rpc {
    pthread_mutex_t lock;
    int calls;
    char devs[4][32];
} gw_rpc;

static void on_gw_rpc(tt_tb_gateway *g, const char *device, int64_t id, const char *method,
                      const json_t *params, void *arg) {
    gw_rpc *r = arg;
    pthread_mutex_lock(&r->lock);
    if (r->calls < 4) snprintf(r->devs[r->calls], 32, "%s", device);
    r->calls++;
    pthread_mutex_unlock(&r->lock);
    json_t *res = json_pack("{s:s,s:s,s:O?}", "device", device, "method", method, "params", (json_t *)params);
    tt_future_free(tt_tb_gateway_rpc_reply(g, device, id, res));
    json_decref(res);
}

static atomic_int g_kicked;
static char g_kicked_dev[32];

static void on_kick(tt_tb_gateway *g, const char *device, int reason, void *arg) {
    (void)g;
    (void)arg;
    snprintf(g_kicked_dev, sizeof g_kicked_dev, "%s", device);
    atomic_store(&g_kicked, reason);
}

/* MQTT 3.1.1 has no No Local: our replies on v1/gateway/rpc come back to us
 * and must be told apart from requests by their shape. */
static void test_rpc_and_kick(void) {
    fixture fx;
    TT_REQUIRE(setup_v(&fx, TT_MQTT_311));
    gw_rpc r = { .lock = PTHREAD_MUTEX_INITIALIZER };
    TT_REQUIRE(tt_tb_gateway_on_rpc(fx.gw, on_gw_rpc, &r) == TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_gateway_connect_device(fx.gw, "Dev A", NULL)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_gateway_connect_device(fx.gw, "Dev B", NULL)), TT_OK);
    TT_REQUIRE(tb_emu_wait(fx.emu, "gateway_events", NULL, 2, TT_WAIT_MS) == 0);
    json_t *p = json_pack("{s:i}", "level", 3);
    tt_future *fa = tb_emu_rpc(fx.emu, "Dev A", "setLevel", p, TT_WAIT_MS);
    tt_future *fb = tb_emu_rpc(fx.emu, "Dev B", "getState", g_empty, TT_WAIT_MS);
    TT_REQUIRE(tt_future_wait(fa, TT_WAIT_MS) == TT_OK);
    TT_REQUIRE(tt_future_wait(fb, TT_WAIT_MS) == TT_OK);
    json_t *ra = tt_future_get_ptr(fa), *rb = tt_future_get_ptr(fb);
    TT_CHECK_EQ_STR(json_string_value(json_object_get(ra, "device")), "Dev A");
    TT_CHECK_EQ_STR(json_string_value(json_object_get(ra, "method")), "setLevel");
    TT_CHECK(json_equal(json_object_get(ra, "params"), p));
    TT_CHECK_EQ_STR(json_string_value(json_object_get(rb, "device")), "Dev B");
    tt_future_free(fa);
    tt_future_free(fb);
    json_decref(p);
    /* exactly one handler call per request: our replies on v1/gateway/rpc
     * are not taken for requests (checked after a later round trip) */
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_gateway_request_attributes(fx.gw, "Dev A", false, "x", NULL)), TT_OK);
    pthread_mutex_lock(&r.lock);
    TT_CHECK_EQ_INT(r.calls, 2);
    pthread_mutex_unlock(&r.lock);
    json_t *replies = tb_emu_rpc_replies(fx.emu);
    TT_CHECK_EQ_INT(json_array_size(replies), 2);
    TT_CHECK(json_is_true(json_object_get(json_array_get(replies, 0), "matched")));
    json_decref(replies);
    /* the server drops a sub-device */
    TT_REQUIRE(tt_tb_gateway_on_device_disconnect(fx.gw, on_kick, NULL) == TT_OK);
    TT_REQUIRE(tb_emu_kick_device(fx.emu, "Dev B", 150) == 0);
    for (int i = 0; i < TT_WAIT_MS / 10 && !atomic_load(&g_kicked); i++) usleep(10000);
    TT_CHECK_EQ_INT(atomic_load(&g_kicked), 150);
    TT_CHECK_EQ_STR(g_kicked_dev, "Dev B");
    teardown(&fx);
}

/* 100 sub-devices through one connection, 5 messages each. */
static void test_many_devices(void) {
    fixture fx;
    TT_REQUIRE(setup(&fx));
    enum { N = 100, M = 5 };
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "sensor-%03d", i);
        tt_future_free(tt_tb_gateway_connect_device(fx.gw, name, "sensor"));
    }
    tt_future *fs[N * M];
    for (int k = 0; k < M; k++)
        for (int i = 0; i < N; i++) {
            snprintf(name, sizeof name, "sensor-%03d", i);
            json_t *t = json_pack("{s:i,s:i}", "seq", k, "dev", i);
            fs[k * N + i] = tt_tb_gateway_send_telemetry(fx.gw, name, t);
            json_decref(t);
        }
    int ok = 0;
    for (int i = 0; i < N * M; i++) ok += tt_wait_free(fs[i]) == TT_OK;
    TT_CHECK_EQ_INT(ok, N * M);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "sensor-%03d", i);
        TT_CHECK_MSG(tb_emu_wait(fx.emu, "telemetry", name, M, TT_WAIT_MS) == 0, "%s", name);
        json_t *got = tb_emu_telemetry(fx.emu, name);
        for (int k = 0; k < M; k++)
            TT_CHECK_EQ_INT(json_integer_value(json_object_get(json_array_get(got, (size_t)k), "seq")), k);
        json_decref(got);
    }
    TT_CHECK_EQ_INT(tb_emu_wait(fx.emu, "gateway_events", NULL, N, TT_WAIT_MS), 0);
    teardown(&fx);
}

static void test_done(void) {
    json_decref(g_empty);
    g_empty = NULL;
    if (g_rt) tt_runtime_free(g_rt);
    g_rt = NULL;
}

TT_TEST_LIST = {
    { "connect_and_data", test_connect_and_data },
    { "attribute_requests", test_attribute_requests },
    { "subscriptions", test_subscriptions },
    { "rpc_and_kick", test_rpc_and_kick },
    { "many_devices", test_many_devices },
    { "done", test_done },
    { NULL, NULL },
};
