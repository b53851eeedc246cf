/* The ThingsBoard device client against mosquitto (set up like ThingsBoard's
 * MQTT front door: tokens as logins, ACLs) and the ThingsBoard emulator. One
 * broker, one emulator and one device per test. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <tether/tether.h>
#include <tether/mqtt.h>
#include <tether/thingsboard.h>
#include <unistd.h>

#include "broker.h"
#include "certs.h"
#include "tb_broker.h"
#include "tb_emu.h"
#include "tt_test.h"
#include "tt_wait.h"

#define TOKEN "A1_TEST_TOKEN"

static tt_runtime *g_rt;
/* {}: the parameters of RPCs that need none */
static json_t *g_empty;

typedef struct fixture {
    tb_broker tb;
    tb_emu *emu;
    tt_tb_device *dev;
} fixture;

static void dev_opts(const fixture *fx, tt_tb_opts *o, const char *token) {
    *o = TT_OPTS_INIT(tt_tb_opts);
    o->host = "127.0.0.1";
    o->port = (uint16_t)fx->tb.b.port;
    o->token = token;
    o->password = TB_BROKER_TOKEN_PASSWORD;
}

/* Broker + emulator; with `connect`, a device logged in with TOKEN. */
static void rt_up(void);

static bool setup(fixture *fx, bool connect) {
    if (!g_empty) g_empty = json_object();
    if (!g_rt) rt_up();
    memset(fx, 0, sizeof *fx);
    const char *devices[] = { TOKEN };
    tb_broker_opts bo = { .device_tokens = devices, .ndevices = 1 };
    if (tb_broker_start(&fx->tb, &bo) != 0) {
        tt_broker_dump_log(&fx->tb.b, stderr);
        return false;
    }
    tb_emu_opts eo = { .host = "127.0.0.1", .port = (uint16_t)fx->tb.b.port, .user = TB_BROKER_SERVER_USER,
                       .password = TB_BROKER_SERVER_PASSWORD, .mode = TB_EMU_DEVICE };
    fx->emu = tb_emu_start(g_rt, &eo);
    if (!fx->emu) return false;
    if (!connect) return true;
    tt_tb_opts o;
    dev_opts(fx, &o, TOKEN);
    if (tt_tb_device_new(g_rt, &o, &fx->dev) != TT_OK) return false;
    return tt_wait_free(tt_tb_device_connect(fx->dev)) == TT_OK;
}

static void teardown(fixture *fx) {
    tt_tb_device_free(fx->dev);
    tb_emu_free(fx->emu);
    tb_broker_free(&fx->tb);
}

/* ---- Connection ----------------------------------------------------------- */

static void test_refused_token(void) {
    fixture fx;
    TT_REQUIRE(setup(&fx, false));
    tt_tb_opts o;
    dev_opts(&fx, &o, "WRONG_TOKEN");
    tt_tb_device *d;
    TT_REQUIRE(tt_tb_device_new(g_rt, &o, &d) == TT_OK);
    tt_future *f = tt_tb_device_connect(d);
    tt_err rc = tt_future_wait(f, TT_WAIT_MS);
    TT_CHECK_MSG(rc == TT_EAUTH || rc == TT_EREFUSED, "got %s", tt_err_name(rc));
    TT_CHECK(tt_future_detail(f, NULL) != 0);   /* the CONNACK code */
    tt_future_free(f);
    TT_CHECK(!tt_tb_device_connected(d));
    tt_tb_device_free(d);
    teardown(&fx);
}

/* Basic MQTT credentials: user name + password + client id instead of a token. */
static void test_basic_credentials(void) {
    fixture fx;
    TT_REQUIRE(setup(&fx, false));
    tt_tb_opts o = TT_OPTS_INIT(tt_tb_opts);
    o.host = "127.0.0.1";
    o.port = (uint16_t)fx.tb.b.port;
    o.client_id = "basic-client-1";
    o.username = TOKEN;
    o.password = TB_BROKER_TOKEN_PASSWORD;
    TT_REQUIRE(tt_tb_device_new(g_rt, &o, &fx.dev) == TT_OK);
    TT_REQUIRE(tt_wait_free(tt_tb_device_connect(fx.dev)) == TT_OK);
    TT_CHECK(tt_tb_device_connected(fx.dev));
    TT_CHECK_EQ_STR(tt_client_id(tt_tb_device_client(fx.dev)), "basic-client-1");
    json_t *t = json_pack("{s:i}", "basic", 1);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_send_telemetry(fx.dev, t)), TT_OK);
    json_decref(t);
    TT_CHECK_EQ_INT(tb_emu_wait(fx.emu, "telemetry", NULL, 1, TT_WAIT_MS), 0);
    /* a wrong password is refused */
    o.password = "nope";
    tt_tb_device *bad;
    TT_REQUIRE(tt_tb_device_new(g_rt, &o, &bad) == TT_OK);
    tt_err rc = tt_wait_free(tt_tb_device_connect(bad));
    TT_CHECK_MSG(rc == TT_EAUTH || rc == TT_EREFUSED, "got %s", tt_err_name(rc));
    tt_tb_device_free(bad);
    teardown(&fx);
}

/* ---- Telemetry and attributes ------------------------------------------------ */

static void test_telemetry(void) {
    fixture fx;
    TT_REQUIRE(setup(&fx, true));
    json_t *obj = json_pack("{s:f,s:s,s:{s:i}}", "temp", 21.5, "mode", "eco", "nested", "a", 1);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_send_telemetry(fx.dev, obj)), TT_OK);
    json_t *vals = json_pack("{s:i}", "hum", 40);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_send_telemetry_ts(fx.dev, 1700000000000, vals)), TT_OK);
    json_t *batch = json_pack("[{s:I,s:{s:i}},{s:I,s:{s:i}}]", "ts", (json_int_t)1700000001000, "values",
                              "n", 1, "ts", (json_int_t)1700000002000, "values", "n", 2);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_send_telemetry(fx.dev, batch)), TT_OK);
    TT_REQUIRE(tb_emu_wait(fx.emu, "telemetry", NULL, 4, TT_WAIT_MS) == 0);
    json_t *got = tb_emu_telemetry(fx.emu, NULL);
    TT_CHECK_EQ_INT(json_array_size(got), 4);
    TT_CHECK(json_equal(json_array_get(got, 0), obj));
    TT_CHECK_EQ_INT(json_integer_value(json_object_get(json_array_get(got, 1), "ts")), 1700000000000);
    TT_CHECK(json_equal(json_object_get(json_array_get(got, 1), "values"), vals));
    TT_CHECK(json_equal(json_array_get(got, 2), json_array_get(batch, 0)));
    TT_CHECK(json_equal(json_array_get(got, 3), json_array_get(batch, 1)));
    json_decref(got);
    /* bad input fails at once */
    json_t *s = json_string("x");
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_send_telemetry(fx.dev, s)), TT_EINVAL);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_send_telemetry(fx.dev, NULL)), TT_EINVAL);
    json_decref(s);
    json_decref(obj);
    json_decref(vals);
    json_decref(batch);
    teardown(&fx);
}

static void test_attributes_and_claim(void) {
    fixture fx;
    TT_REQUIRE(setup(&fx, true));
    json_t *a = json_pack("{s:s,s:b}", "firmware", "1.0", "online", 1);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_send_attributes(fx.dev, a)), TT_OK);
    TT_REQUIRE(tb_emu_wait(fx.emu, "attributes", NULL, 1, TT_WAIT_MS) == 0);
    json_t *got = tb_emu_attributes(fx.emu, NULL);
    TT_CHECK(json_equal(json_array_get(got, 0), a));
    json_decref(got);
    json_decref(a);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_claim(fx.dev, "s3cret", 60000)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_claim(fx.dev, NULL, 0)), TT_OK);
    TT_REQUIRE(tb_emu_wait(fx.emu, "claims", NULL, 2, TT_WAIT_MS) == 0);
    got = tb_emu_claims(fx.emu, NULL);
    TT_CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(got, 0), "secretKey")), "s3cret");
    TT_CHECK_EQ_INT(json_integer_value(json_object_get(json_array_get(got, 0), "durationMs")), 60000);
    TT_CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(got, 1), "secretKey")), "");
    TT_CHECK(json_object_get(json_array_get(got, 1), "durationMs") == NULL);
    json_decref(got);
    teardown(&fx);
}

/* ---- Attribute requests --------------------------------------------------------- */

static void test_request_attributes(void) {
    fixture fx;
    TT_REQUIRE(setup(&fx, true));
    json_t *ca = json_pack("{s:i,s:s}", "c1", 1, "c2", "two");
    json_t *sa = json_pack("{s:b,s:f}", "s1", 1, "s2", 2.5);
    tb_emu_set_client_attrs(fx.emu, NULL, ca);
    tb_emu_set_shared_attrs(fx.emu, NULL, sa);
    tt_future *f = tt_tb_device_request_attributes(fx.dev, "c1,c2", "s2", NULL);
    TT_REQUIRE(tt_future_wait(f, TT_WAIT_MS) == TT_OK);
    json_t *r = tt_future_get_ptr(f);
    TT_CHECK(json_equal(json_object_get(r, "client"), ca));
    TT_CHECK(json_real_value(json_object_get(json_object_get(r, "shared"), "s2")) == 2.5);
    TT_CHECK(json_object_get(json_object_get(r, "shared"), "s1") == NULL);
    tt_future_free(f);
    /* shared only */
    f = tt_tb_device_request_attributes(fx.dev, NULL, "s1", NULL);
    TT_REQUIRE(tt_future_wait(f, TT_WAIT_MS) == TT_OK);
    TT_CHECK(json_is_true(json_object_get(json_object_get(tt_future_get_ptr(f), "shared"), "s1")));
    tt_future_free(f);
    /* several in flight at once, answered to the right caller */
    tt_future *fs[20];
    for (int i = 0; i < 20; i++)
        fs[i] = tt_tb_device_request_attributes(fx.dev, i % 2 ? "c1" : NULL, i % 2 ? NULL : "s1", NULL);
    for (int i = 0; i < 20; i++) {
        TT_CHECK_EQ_INT(tt_future_wait(fs[i], TT_WAIT_MS), TT_OK);
        json_t *x = tt_future_get_ptr(fs[i]);
        if (i % 2) TT_CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(x, "client"), "c1")), 1);
        else TT_CHECK(json_is_true(json_object_get(json_object_get(x, "shared"), "s1")));
        tt_future_free(fs[i]);
    }
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_request_attributes(fx.dev, NULL, NULL, NULL)), TT_EINVAL);
    json_decref(ca);
    json_decref(sa);
    teardown(&fx);
}

static void test_request_timeout(void) {
    fixture fx;
    TT_REQUIRE(setup(&fx, true));
    tb_emu_set_silent(fx.emu, true);
    tt_call_opts co = TT_OPTS_INIT(tt_call_opts);
    co.timeout_ms = 500;
    tt_future *f = tt_tb_device_request_attributes(fx.dev, "c1", NULL, &co);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_ETIMEDOUT);
    TT_CHECK(tt_future_done(f));
    tt_future_free(f);
    f = tt_tb_device_rpc_call(fx.dev, "getTime", NULL, &co);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_ETIMEDOUT);
    TT_CHECK(tt_future_done(f));
    tt_future_free(f);
    /* and the device still works afterwards */
    tb_emu_set_silent(fx.emu, false);
    json_t *sa = json_pack("{s:i}", "s1", 7);
    tb_emu_set_shared_attrs(fx.emu, NULL, sa);
    json_decref(sa);
    f = tt_tb_device_request_attributes(fx.dev, NULL, "s1", NULL);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
    tt_future_free(f);
    teardown(&fx);
}

/* ---- Shared-attribute subscriptions ------------------------------------------------ */

typedef struct attr_log {
    pthread_mutex_t lock;
    int calls, deletions;
    char keys[32][32];
    int nkeys;
    long long last_a;
} attr_log;

static void on_attr(tt_tb_device *d, const char *key, const json_t *value, void *arg) {
    (void)d;
    attr_log *l = arg;
    pthread_mutex_lock(&l->lock);
    l->calls++;
    if (!value) l->deletions++;
    if (l->nkeys < 32) snprintf(l->keys[l->nkeys++], 32, "%s", key);
    if (value && !strcmp(key, "a")) l->last_a = json_integer_value(value);
    pthread_mutex_unlock(&l->lock);
}

static int log_calls(attr_log *l) { return tt_locked_int(&l->lock, &l->calls); }
static bool wait_calls(attr_log *l, int n) { return tt_wait_count(&l->lock, &l->calls, n); }

static void test_subscriptions(void) {
    fixture fx;
    TT_REQUIRE(setup(&fx, true));
    attr_log one = { .lock = PTHREAD_MUTEX_INITIALIZER }, all = { .lock = PTHREAD_MUTEX_INITIALIZER };
    uint32_t id_one, id_all;
    TT_REQUIRE(tt_tb_device_subscribe_attribute(fx.dev, "a", on_attr, &one, &id_one) == TT_OK);
    TT_REQUIRE(tt_tb_device_subscribe_attribute(fx.dev, NULL, on_attr, &all, &id_all) == TT_OK);
    TT_CHECK(id_one != 0 && id_all != 0 && id_one != id_all);
    json_t *u = json_pack("{s:i,s:i}", "a", 5, "b", 6);
    TT_REQUIRE(tb_emu_push_shared(fx.emu, NULL, u) == 0);
    json_decref(u);
    TT_CHECK(wait_calls(&all, 2));
    TT_CHECK(wait_calls(&one, 1));
    TT_CHECK_EQ_INT(one.last_a, 5);
    /* deletion reaches both the key's handler and the catch-all with a NULL value */
    const char *keys[] = { "a" };
    TT_REQUIRE(tb_emu_delete_shared(fx.emu, NULL, keys, 1) == 0);
    TT_CHECK(wait_calls(&all, 3));
    TT_CHECK(wait_calls(&one, 2));
    TT_CHECK_EQ_INT(one.deletions, 1);
    TT_CHECK_EQ_INT(all.deletions, 1);
    /* after unsubscribing the key, only the catch-all hears */
    TT_CHECK_EQ_INT(tt_tb_device_unsubscribe_attribute(fx.dev, id_one), TT_OK);
    TT_CHECK_EQ_INT(tt_tb_device_unsubscribe_attribute(fx.dev, id_one), TT_ENOTFOUND);
    u = json_pack("{s:i}", "a", 9);
    TT_REQUIRE(tb_emu_push_shared(fx.emu, NULL, u) == 0);
    TT_CHECK(wait_calls(&all, 4));
    TT_CHECK_EQ_INT(all.last_a, 9);
    TT_CHECK_EQ_INT(log_calls(&one), 2);
    /* unsubscribe all: a later push is heard by nobody (checked after a
     * message that follows it on the same connection) */
    TT_CHECK_EQ_INT(tt_tb_device_unsubscribe_attribute(fx.dev, 0), TT_OK);
    TT_REQUIRE(tb_emu_push_shared(fx.emu, NULL, u) == 0);
    json_decref(u);
    tt_future *f = tt_tb_device_request_attributes(fx.dev, NULL, "a", NULL);
    TT_CHECK_EQ_INT(tt_wait_free(f), TT_OK);
    TT_CHECK_EQ_INT(log_calls(&all), 4);
    /* our own client attributes are not echoed to us as updates */
    attr_log echo = { .lock = PTHREAD_MUTEX_INITIALIZER };
    TT_REQUIRE(tt_tb_device_subscribe_attribute(fx.dev, NULL, on_attr, &echo, NULL) == TT_OK);
    json_t *ca = json_pack("{s:i}", "mine", 1);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_send_attributes(fx.dev, ca)), TT_OK);
    json_decref(ca);
    TT_REQUIRE(tb_emu_wait(fx.emu, "attributes", NULL, 1, TT_WAIT_MS) == 0);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_request_attributes(fx.dev, NULL, "a", NULL)), TT_OK);
    TT_CHECK_EQ_INT(log_calls(&echo), 0);
    teardown(&fx);
}

/* ---- RPC ---------------------------------------------------------------------------- */

typedef struct rpc_srv {
    pthread_mutex_t lock;
    int calls;
    int64_t later_id;                 /* answered from the test thread */
    bool have_later;
} rpc_srv;

static void on_rpc(tt_tb_device *d, int64_t id, const char *method, const json_t *params, void *arg) {
    rpc_srv *s = arg;
    pthread_mutex_lock(&s->lock);
    s->calls++;
    pthread_mutex_unlock(&s->lock);
    if (!strcmp(method, "echo")) {
        json_t *r = json_pack("{s:O?,s:s}", "params", (json_t *)params, "method", method);
        tt_future_free(tt_tb_device_rpc_reply(d, id, r));
        json_decref(r);
    } else if (!strcmp(method, "later")) {
        pthread_mutex_lock(&s->lock);
        s->later_id = id;
        s->have_later = true;
        pthread_mutex_unlock(&s->lock);
    }
}

static void test_server_rpc(void) {
    fixture fx;
    TT_REQUIRE(setup(&fx, true));
    /* without a handler the device answers an error rather than staying silent */
    tt_future *f = tb_emu_rpc(fx.emu, NULL, "echo", g_empty, TT_WAIT_MS);
    TT_REQUIRE(tt_future_wait(f, TT_WAIT_MS) == TT_OK);
    TT_CHECK(json_object_get(tt_future_get_ptr(f), "error") != NULL);
    tt_future_free(f);
    rpc_srv s = { .lock = PTHREAD_MUTEX_INITIALIZER };
    TT_REQUIRE(tt_tb_device_on_rpc(fx.dev, on_rpc, &s) == TT_OK);
    json_t *p = json_pack("{s:i}", "x", 42);
    f = tb_emu_rpc(fx.emu, NULL, "echo", p, TT_WAIT_MS);
    TT_REQUIRE(tt_future_wait(f, TT_WAIT_MS) == TT_OK);
    json_t *r = tt_future_get_ptr(f);
    TT_CHECK(json_equal(json_object_get(r, "params"), p));
    TT_CHECK_EQ_STR(json_string_value(json_object_get(r, "method")), "echo");
    tt_future_free(f);
    json_decref(p);
    /* answered later, from this thread */
    f = tb_emu_rpc(fx.emu, NULL, "later", g_empty, TT_WAIT_MS);
    bool have = false;
    int64_t id = -1;
    for (int i = 0; i < TT_WAIT_MS / 10 && !have; i++) {
        pthread_mutex_lock(&s.lock);
        have = s.have_later;
        id = s.later_id;
        pthread_mutex_unlock(&s.lock);
        if (!have) usleep(10000);
    }
    TT_REQUIRE(have);
    TT_CHECK(!tt_future_done(f));
    json_t *ans = json_pack("{s:s}", "done", "yes");
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_rpc_reply(fx.dev, id, ans)), TT_OK);
    json_decref(ans);
    TT_REQUIRE(tt_future_wait(f, TT_WAIT_MS) == TT_OK);
    TT_CHECK_EQ_STR(json_string_value(json_object_get(tt_future_get_ptr(f), "done")), "yes");
    tt_future_free(f);
    TT_CHECK_EQ_INT(s.calls, 2);
    teardown(&fx);
}

static void test_client_rpc(void) {
    fixture fx;
    TT_REQUIRE(setup(&fx, true));
    json_t *res = json_pack("{s:I}", "time", (json_int_t)1700000000000);
    tb_emu_set_rpc_result(fx.emu, "getTime", res);
    json_t *p = json_pack("{s:s}", "tz", "UTC");
    tt_future *f = tt_tb_device_rpc_call(fx.dev, "getTime", p, NULL);
    TT_REQUIRE(tt_future_wait(f, TT_WAIT_MS) == TT_OK);
    TT_CHECK(json_equal(tt_future_get_ptr(f), res));
    tt_future_free(f);
    TT_REQUIRE(tb_emu_wait(fx.emu, "client_rpcs", NULL, 1, TT_WAIT_MS) == 0);
    json_t *reqs = tb_emu_client_rpcs(fx.emu);
    TT_CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(reqs, 0), "method")), "getTime");
    TT_CHECK(json_equal(json_object_get(json_array_get(reqs, 0), "params"), p));
    json_decref(reqs);
    /* a method nobody answers times out at the per-call deadline */
    tt_call_opts co = TT_OPTS_INIT(tt_call_opts);
    co.timeout_ms = 400;
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_rpc_call(fx.dev, "noSuchMethod", NULL, &co)), TT_ETIMEDOUT);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_rpc_call(fx.dev, "", NULL, NULL)), TT_EINVAL);
    json_decref(p);
    json_decref(res);
    teardown(&fx);
}

/* ---- Provisioning ------------------------------------------------------------------------ */

static tt_tb_provision_opts prov_opts(const fixture *fx, const char *key, const char *secret) {
    tt_tb_provision_opts o = TT_OPTS_INIT(tt_tb_provision_opts);
    o.host = "127.0.0.1";
    o.port = (uint16_t)fx->tb.b.port;
    o.key = key;
    o.secret = secret;
    o.device_name = "new-device";
    o.login_password = TB_BROKER_TOKEN_PASSWORD;
    return o;
}

static void test_provision(void) {
    fixture fx;
    TT_REQUIRE(setup(&fx, false));
    json_t *tok = json_string("NEW_TOKEN_0");
    json_t *tok1 = json_string("NEW_TOKEN_1");
    json_t *basic = json_pack("{s:s,s:s,s:s}", "clientId", "cid", "userName", "usr", "password", "pwd");
    tb_emu_add_provision(fx.emu, "k0", "s0", 0, tok);
    tb_emu_add_provision(fx.emu, "k1", "s1", 1, tok1);
    tb_emu_add_provision(fx.emu, "kb0", "sb0", 0, basic);
    tb_emu_add_provision(fx.emu, "kb1", "sb1", 1, basic);
    /* style 0: status / credentialsValue */
    tt_tb_provision_opts o = prov_opts(&fx, "k0", "s0");
    tt_future *f = tt_tb_provision(g_rt, &o);
    TT_REQUIRE(tt_future_wait(f, TT_WAIT_MS) == TT_OK);
    const tt_tb_credentials *c = tt_future_get_ptr(f);
    TT_REQUIRE(c);
    TT_CHECK_EQ_INT(c->type, TT_TB_CRED_ACCESS_TOKEN);
    TT_CHECK_EQ_STR(c->token, "NEW_TOKEN_0");
    tt_future_free(f);
    /* style 1: provisionDeviceStatus / accessToken */
    o = prov_opts(&fx, "k1", "s1");
    f = tt_tb_provision(g_rt, &o);
    TT_REQUIRE(tt_future_wait(f, TT_WAIT_MS) == TT_OK);
    c = tt_future_get_ptr(f);
    TT_CHECK_EQ_STR(c->token, "NEW_TOKEN_1");
    tt_future_free(f);
    /* MQTT_BASIC in both shapes (object, and JSON text) */
    for (int style = 0; style < 2; style++) {
        o = prov_opts(&fx, style ? "kb1" : "kb0", style ? "sb1" : "sb0");
        f = tt_tb_provision(g_rt, &o);
        TT_REQUIRE(tt_future_wait(f, TT_WAIT_MS) == TT_OK);
        c = tt_future_get_ptr(f);
        TT_CHECK_EQ_INT(c->type, TT_TB_CRED_MQTT_BASIC);
        TT_CHECK_EQ_STR(c->client_id, "cid");
        TT_CHECK_EQ_STR(c->username, "usr");
        TT_CHECK_EQ_STR(c->password, "pwd");
        tt_future_free(f);
    }
    /* the device brings its own token */
    o = prov_opts(&fx, "k0", "s0");
    o.type = TT_TB_CRED_ACCESS_TOKEN;
    o.token = "MY_OWN_TOKEN";
    f = tt_tb_provision(g_rt, &o);
    TT_REQUIRE(tt_future_wait(f, TT_WAIT_MS) == TT_OK);
    TT_CHECK_EQ_STR(((const tt_tb_credentials *)tt_future_get_ptr(f))->token, "MY_OWN_TOKEN");
    tt_future_free(f);
    TT_REQUIRE(tb_emu_wait(fx.emu, "provisions", NULL, 5, TT_WAIT_MS) == 0);
    json_t *reqs = tb_emu_provisions(fx.emu);
    json_t *last = json_array_get(reqs, 4);
    TT_CHECK_EQ_STR(json_string_value(json_object_get(last, "provisionDeviceKey")), "k0");
    TT_CHECK_EQ_STR(json_string_value(json_object_get(last, "deviceName")), "new-device");
    TT_CHECK_EQ_STR(json_string_value(json_object_get(last, "credentialsType")), "ACCESS_TOKEN");
    json_decref(reqs);
    /* unknown key: NOT_FOUND with the server's message */
    o = prov_opts(&fx, "nokey", "nosecret");
    f = tt_tb_provision(g_rt, &o);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_ENOTFOUND);
    const char *why;
    tt_future_detail(f, &why);
    TT_CHECK_MSG(strstr(why, "not found") != NULL, "reason: %s", why);
    tt_future_free(f);
    /* no answer: the deadline */
    tb_emu_set_silent(fx.emu, true);
    o = prov_opts(&fx, "k0", "s0");
    o.timeout_ms = 500;
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_provision(g_rt, &o)), TT_ETIMEDOUT);
    tb_emu_set_silent(fx.emu, false);
    /* bad arguments */
    o = prov_opts(&fx, NULL, "s0");
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_provision(g_rt, &o)), TT_EINVAL);
    json_decref(tok);
    json_decref(tok1);
    json_decref(basic);
    teardown(&fx);
}

/* ---- Firmware ------------------------------------------------------------------------------- */

static unsigned char *make_image(size_t len, uint32_t seed) {
    unsigned char *img = malloc(len);
    uint32_t x = seed;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        img[i] = (unsigned char)(x >> 16);
        if (i % 7 == 0) img[i] = 0;   /* plenty of NUL bytes */
    }
    return img;
}

static void test_firmware(void) {
    fixture fx;
    TT_REQUIRE(setup(&fx, true));
    const char *algos[] = { "SHA256", "SHA384", "SHA512", "MD5", "CRC32", "MURMUR3_32", "MURMUR3_128" };
    for (size_t a = 0; a < sizeof algos / sizeof *algos; a++) {
        size_t len = 10000 + a * 777;
        unsigned char *img = make_image(len, (uint32_t)a + 1);
        char version[16];
        snprintf(version, sizeof version, "1.%zu", a);
        TT_REQUIRE(tb_emu_set_firmware(fx.emu, "fw-app", version, img, len, algos[a], false, false) == 0);
        tt_tb_fw_opts fo = TT_OPTS_INIT(tt_tb_fw_opts);
        fo.current_title = "fw-app";
        fo.current_version = "0.9";
        fo.chunk_size = 1000;
        tt_future *f = tt_tb_device_fw_update(fx.dev, &fo);
        tt_err rc = tt_future_wait(f, TT_WAIT_MS * 3);
        TT_CHECK_MSG(rc == TT_OK, "%s: %s", algos[a], tt_err_name(rc));
        if (rc == TT_OK) {
            TT_CHECK_EQ_INT(tt_future_get_i64(f), (long long)len);
            TT_CHECK_MSG(tt_future_get_ptr(f) && memcmp(tt_future_get_ptr(f), img, len) == 0,
                         "%s: image differs", algos[a]);
            TT_CHECK_EQ_STR(tt_tb_fw_title(f), "fw-app");
            TT_CHECK_EQ_STR(tt_tb_fw_version(f), version);
        }
        tt_future_free(f);
        free(img);
    }
    /* the states, in order, for the first update */
    TT_REQUIRE(tb_emu_wait(fx.emu, "fw_states", NULL, 21, TT_WAIT_MS) == 0);
    json_t *st = tb_emu_fw_states(fx.emu);
    TT_CHECK_EQ_STR(json_string_value(json_array_get(st, 0)), "DOWNLOADING");
    TT_CHECK_EQ_STR(json_string_value(json_array_get(st, 1)), "DOWNLOADED");
    TT_CHECK_EQ_STR(json_string_value(json_array_get(st, 2)), "VERIFIED");
    json_decref(st);
    /* the chunks were asked for at the size chosen: 10000 bytes / 1000 */
    json_t *reqs = tb_emu_fw_requests(fx.emu);
    TT_CHECK(json_array_size(reqs) >= 10);
    TT_CHECK_EQ_INT(json_integer_value(json_object_get(json_array_get(reqs, 0), "size")), 1000);
    TT_CHECK_EQ_INT(json_integer_value(json_object_get(json_array_get(reqs, 9), "chunk")), 9);
    json_decref(reqs);
    TT_CHECK(tb_broker_saw_subscription(&fx.tb, "v2/fw/response/+/chunk/+"));
    /* the user reports the rest */
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_fw_report(fx.dev, TT_TB_FW_UPDATED, "fw-app", "1.6", NULL)), TT_OK);
    TT_REQUIRE(tb_emu_wait(fx.emu, "fw_states", NULL, 22, TT_WAIT_MS) == 0);
    st = tb_emu_fw_states(fx.emu);
    TT_CHECK_EQ_STR(json_string_value(json_array_get(st, 21)), "UPDATED");
    json_decref(st);
    /* already current: nothing to do */
    tt_tb_fw_opts fo = TT_OPTS_INIT(tt_tb_fw_opts);
    fo.current_title = "fw-app";
    fo.current_version = "1.6";
    tt_future *f = tt_tb_device_fw_update(fx.dev, &fo);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
    TT_CHECK(tt_future_get_ptr(f) == NULL);
    tt_future_free(f);
    teardown(&fx);
}

static void test_firmware_errors(void) {
    fixture fx;
    TT_REQUIRE(setup(&fx, true));
    /* nothing assigned */
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_fw_update(fx.dev, NULL)), TT_ENOTFOUND);
    /* a checksum that does not match: FAILED and TT_EPROTO */
    unsigned char *img = make_image(5000, 9);
    TT_REQUIRE(tb_emu_set_firmware(fx.emu, "fw-app", "2.0", img, 5000, "SHA256", true, false) == 0);
    tt_future *f = tt_tb_device_fw_update(fx.dev, NULL);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS * 2), TT_EPROTO);
    const char *why;
    tt_future_detail(f, &why);
    TT_CHECK_MSG(strstr(why, "checksum") != NULL, "reason: %s", why);
    tt_future_free(f);
    TT_REQUIRE(tb_emu_wait(fx.emu, "fw_states", NULL, 3, TT_WAIT_MS) == 0);
    json_t *st = tb_emu_fw_states(fx.emu);
    TT_CHECK_EQ_STR(json_string_value(json_array_get(st, 0)), "DOWNLOADING");
    TT_CHECK_EQ_STR(json_string_value(json_array_get(st, json_array_size(st) - 1)), "FAILED");
    json_decref(st);
    /* a chunk that never comes: TT_ETIMEDOUT (request_timeout_ms of the device) */
    TT_REQUIRE(tb_emu_set_firmware(fx.emu, "fw-app", "2.1", img, 5000, "MD5", false, false) == 0);
    tt_tb_device_free(fx.dev);
    tt_tb_opts o;
    dev_opts(&fx, &o, TOKEN);
    o.request_timeout_ms = 600;
    TT_REQUIRE(tt_tb_device_new(g_rt, &o, &fx.dev) == TT_OK);
    TT_REQUIRE(tt_wait_free(tt_tb_device_connect(fx.dev)) == TT_OK);
    tt_future *busy;
    f = tt_tb_device_fw_update(fx.dev, NULL);
    busy = tt_tb_device_fw_update(fx.dev, NULL);
    TT_CHECK_EQ_INT(tt_future_wait(busy, TT_WAIT_MS), TT_EBUSY);
    tt_future_free(busy);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);   /* the emulator answers this one */
    tt_future_free(f);
    /* silent: the attribute request times out; then chunks alone (whole image, size 0) */
    tb_emu_set_silent(fx.emu, true);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_fw_update(fx.dev, NULL)), TT_ETIMEDOUT);
    tb_emu_set_silent(fx.emu, false);
    free(img);
    teardown(&fx);
}

/* ---- Session limits ---------------------------------------------------------------------------- */

typedef struct sizes {
    pthread_mutex_t lock;
    int count;
    size_t max;
} sizes;

static void on_size(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    sizes *s = arg;
    size_t n;
    tt_msg_payload(m, &n);
    pthread_mutex_lock(&s->lock);
    s->count++;
    if (n > s->max) s->max = n;
    pthread_mutex_unlock(&s->lock);
}

static void test_session_limits(void) {
    fixture fx;
    TT_REQUIRE(setup(&fx, true));
    /* the default answer applies */
    tt_future *f = tt_tb_device_apply_session_limits(fx.dev, NULL);
    TT_REQUIRE(tt_future_wait(f, TT_WAIT_MS) == TT_OK);
    TT_CHECK(json_integer_value(json_object_get(tt_future_get_ptr(f), "maxPayloadSize")) > 0);
    tt_future_free(f);
    /* small limits: 1024-byte payloads, 10 messages a second */
    json_t *lim = json_pack("{s:i,s:i,s:{s:s,s:s,s:s}}", "maxPayloadSize", 1024, "maxInflightMessages", 100,
                            "rateLimits", "messages", "10:1,300:60", "telemetryMessages", "10:1",
                            "telemetryDataPoints", "1000:1");
    tb_emu_set_session_limits(fx.emu, lim);
    f = tt_tb_device_apply_session_limits(fx.dev, NULL);
    TT_REQUIRE(tt_future_wait(f, TT_WAIT_MS) == TT_OK);
    TT_CHECK(json_equal(tt_future_get_ptr(f), lim));
    tt_future_free(f);
    json_decref(lim);
    /* maxInflightMessages must be a positive count; a bad one changes nothing */
    json_t *bad = json_pack("{s:i}", "maxInflightMessages", 0);
    TT_CHECK_EQ_INT(tt_tb_device_set_session_limits(fx.dev, bad), TT_EINVAL);
    json_decref(bad);
    bad = json_pack("{s:s}", "maxInflightMessages", "many");
    TT_CHECK_EQ_INT(tt_tb_device_set_session_limits(fx.dev, bad), TT_EINVAL);
    json_decref(bad);
    /* a watcher measures every telemetry message */
    tt_client_opts co = TT_OPTS_INIT(tt_client_opts);
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", fx.tb.b.port);
    co.url = url;
    co.username = TB_BROKER_SERVER_USER;
    co.password = TB_BROKER_SERVER_PASSWORD;
    tt_client *w;
    TT_REQUIRE(tt_client_new(g_rt, &co, &w) == TT_OK);
    TT_REQUIRE(tt_wait_free(tt_client_connect(w)) == TT_OK);
    sizes sz = { .lock = PTHREAD_MUTEX_INITIALIZER };
    tt_sub s = { .filter = "v1/devices/me/telemetry", .qos = TT_QOS1, .handler = on_size, .arg = &sz };
    TT_REQUIRE(tt_wait_free(tt_client_subscribe(w, &s, 1, NULL)) == TT_OK);
    /* 200 entries (~50 bytes each): about 10 messages, none above 1024 bytes */
    json_t *batch = json_array();
    for (int i = 0; i < 200; i++)
        json_array_append_new(batch, json_pack("{s:I,s:{s:i,s:i}}", "ts", (json_int_t)1700000000000 + i,
                                               "values", "seq", i, "v", i * 3));
    double t0 = tt_test_now_();
    f = tt_tb_device_send_telemetry(fx.dev, batch);
    /* and 20 more single messages behind it */
    tt_future *more[20];
    for (int i = 0; i < 20; i++) {
        json_t *one = json_pack("{s:i}", "single", i);
        more[i] = tt_tb_device_send_telemetry(fx.dev, one);
        json_decref(one);
    }
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS * 2), TT_OK);
    tt_future_free(f);
    for (int i = 0; i < 20; i++) TT_CHECK_EQ_INT(tt_wait_free(more[i]), TT_OK);
    double dt = tt_test_now_() - t0;
    TT_REQUIRE(tb_emu_wait(fx.emu, "telemetry", NULL, 220, TT_WAIT_MS) == 0);
    json_t *got = tb_emu_telemetry(fx.emu, NULL);
    TT_CHECK_EQ_INT(json_array_size(got), 220);
    for (int i = 0; i < 200; i++)
        TT_CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(json_array_get(got, (size_t)i), "values"), "seq")), i);
    json_decref(got);
    pthread_mutex_lock(&sz.lock);
    TT_CHECK_MSG(sz.max <= 1024, "largest message %zu bytes", sz.max);
    TT_CHECK(sz.count >= 25);
    int msgs = sz.count;
    pthread_mutex_unlock(&sz.lock);
    /* 10 tokens at the start, then 10 a second: the rest cannot go faster */
    double floor_s = (msgs - 10) / 10.0 - 0.5;
    TT_CHECK_MSG(dt >= floor_s, "%d messages in %.2f s, limit 10/s", msgs, dt);
    fprintf(stderr, "  %d messages (largest %zu bytes) in %.2f s under 10 msg/s\n", msgs, sz.max, dt);
    json_decref(batch);
    tt_client_free(w);
    teardown(&fx);
}

/* ---- X.509 over TLS --------------------------------------------------------------------------- */

typedef struct one_msg {
    pthread_mutex_t lock;
    int n;
} one_msg;

static void on_one(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    (void)m;
    one_msg *o = arg;
    pthread_mutex_lock(&o->lock);
    o->n++;
    pthread_mutex_unlock(&o->lock);
}

static void test_x509(void) {
    if (!g_rt) rt_up();
    tt_certs certs;
    TT_REQUIRE(tt_certs_make(&certs) == 0);
    tt_broker b;
    tt_broker_opts bo = { .tls_ca = certs.ca, .tls_cert = certs.server_cert, .tls_key = certs.server_key,
                          .tls_require_certificate = true };
    if (tt_broker_start(&b, &bo) != 0) {
        tt_broker_dump_log(&b, stderr);
        TT_CHECK(false);
        tt_certs_remove(&certs);
        return;
    }
    /* a watcher on the plain port */
    tt_client_opts co = TT_OPTS_INIT(tt_client_opts);
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", b.port);
    co.url = url;
    tt_client *w;
    TT_REQUIRE(tt_client_new(g_rt, &co, &w) == TT_OK);
    TT_REQUIRE(tt_wait_free(tt_client_connect(w)) == TT_OK);
    one_msg got = { .lock = PTHREAD_MUTEX_INITIALIZER };
    tt_sub s = { .filter = "v1/devices/me/telemetry", .qos = TT_QOS1, .handler = on_one, .arg = &got };
    TT_REQUIRE(tt_wait_free(tt_client_subscribe(w, &s, 1, NULL)) == TT_OK);
    tt_tls_opts tls = TT_OPTS_INIT(tt_tls_opts);
    tls.ca_file = certs.ca;
    tls.cert_file = certs.client_cert;
    tls.key_file = certs.client_key;
    tt_tb_opts o = TT_OPTS_INIT(tt_tb_opts);
    o.host = "127.0.0.1";
    o.port = (uint16_t)b.tls_port;
    o.tls = &tls;
    tt_tb_device *d;
    TT_REQUIRE(tt_tb_device_new(g_rt, &o, &d) == TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_connect(d)), TT_OK);
    json_t *t = json_pack("{s:s}", "auth", "x509");
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_send_telemetry(d, t)), TT_OK);
    for (int i = 0; i < TT_WAIT_MS / 10; i++) {
        pthread_mutex_lock(&got.lock);
        int n = got.n;
        pthread_mutex_unlock(&got.lock);
        if (n) break;
        usleep(10000);
    }
    TT_CHECK_EQ_INT(got.n, 1);
    tt_tb_device_free(d);
    /* without the client certificate the handshake is refused */
    tls.cert_file = tls.key_file = NULL;
    o.mqtt = NULL;
    tt_client_opts nr = TT_OPTS_INIT(tt_client_opts);
    nr.no_reconnect = true;
    o.mqtt = &nr;
    TT_REQUIRE(tt_tb_device_new(g_rt, &o, &d) == TT_OK);
    TT_CHECK(tt_wait_free(tt_tb_device_connect(d)) != TT_OK);
    tt_tb_device_free(d);
    json_decref(t);
    tt_client_free(w);
    tt_broker_free(&b);
    tt_certs_remove(&certs);
}


/* ---- MQTT settings, QoS 0, disconnect -------------------------------------------------------- */

typedef struct ev_count {
    atomic_int up, down;
} ev_count;

static void on_ev(tt_client *c, const tt_client_event *ev, void *arg) {
    (void)c;
    ev_count *e = arg;
    if (ev->kind == TT_EV_CONNECTED) atomic_fetch_add(&e->up, 1);
    if (ev->kind == TT_EV_DISCONNECTED) atomic_fetch_add(&e->down, 1);
}

static void test_mqtt_options(void) {
    fixture fx;
    TT_REQUIRE(setup(&fx, false));
    ev_count ev = { 0 };
    tt_client_opts mo = TT_OPTS_INIT(tt_client_opts);
    mo.max_inflight = 1;              /* max_inflight_messages_set */
    mo.offline_queue_bytes = 4096;    /* max_queued_messages_set */
    mo.backoff_min_ms = 100;          /* reconnect_delay_set */
    mo.backoff_max_ms = 2000;
    mo.keepalive_s = 120;
    mo.on_event = on_ev;
    mo.on_event_arg = &ev;
    tt_tb_opts o;
    dev_opts(&fx, &o, TOKEN);
    o.mqtt = &mo;
    o.qos0 = true;                    /* the MicroPython SDK's telemetry QoS */
    TT_REQUIRE(tt_tb_device_new(g_rt, &o, &fx.dev) == TT_OK);
    TT_CHECK(!tt_tb_device_connected(fx.dev));
    TT_REQUIRE(tt_wait_free(tt_tb_device_connect(fx.dev)) == TT_OK);
    TT_CHECK(tt_tb_device_connected(fx.dev));
    tt_future *fs[20];
    for (int i = 0; i < 20; i++) {
        json_t *t = json_pack("{s:i}", "q0", i);
        fs[i] = tt_tb_device_send_telemetry(fx.dev, t);
        json_decref(t);
    }
    for (int i = 0; i < 20; i++) TT_CHECK_EQ_INT(tt_wait_free(fs[i]), TT_OK);
    TT_REQUIRE(tb_emu_wait(fx.emu, "telemetry", NULL, 20, TT_WAIT_MS) == 0);
    json_t *got = tb_emu_telemetry(fx.emu, NULL);
    for (int i = 0; i < 20; i++)
        TT_CHECK_EQ_INT(json_integer_value(json_object_get(json_array_get(got, (size_t)i), "q0")), i);
    json_decref(got);
    TT_CHECK_EQ_INT(atomic_load(&ev.up), 1);
    TT_CHECK_EQ_INT(tt_wait_free(tt_tb_device_disconnect(fx.dev)), TT_OK);
    TT_CHECK(!tt_tb_device_connected(fx.dev));
    for (int i = 0; i < TT_WAIT_MS / 10 && !atomic_load(&ev.down); i++) usleep(10000);
    TT_CHECK_EQ_INT(atomic_load(&ev.down), 1);
    /* and back */
    TT_REQUIRE(tt_wait_free(tt_tb_device_connect(fx.dev)) == TT_OK);
    TT_CHECK(tt_tb_device_connected(fx.dev));
    TT_CHECK_EQ_INT(atomic_load(&ev.up), 2);
    teardown(&fx);
}

/* Firmware announced by a shared-attribute push: the handler starts the update. */
typedef struct fw_watch {
    pthread_mutex_t lock;
    tt_future *f;
} fw_watch;

static void on_fw_attr(tt_tb_device *d, const char *key, const json_t *value, void *arg) {
    (void)key;
    fw_watch *w = arg;
    if (!value) return;
    pthread_mutex_lock(&w->lock);
    if (!w->f) {
        tt_tb_fw_opts fo = TT_OPTS_INIT(tt_tb_fw_opts);
        fo.current_title = "pushed";
        fo.current_version = "0";
        fo.chunk_size = 700;
        w->f = tt_tb_device_fw_update(d, &fo);
    }
    pthread_mutex_unlock(&w->lock);
}

static void test_firmware_push(void) {
    fixture fx;
    TT_REQUIRE(setup(&fx, true));
    fw_watch w = { .lock = PTHREAD_MUTEX_INITIALIZER };
    TT_REQUIRE(tt_tb_device_subscribe_attribute(fx.dev, "fw_version", on_fw_attr, &w, NULL) == TT_OK);
    unsigned char *img = make_image(4321, 77);
    TT_REQUIRE(tb_emu_set_firmware(fx.emu, "pushed", "1", img, 4321, "SHA256", false, true) == 0);
    tt_future *f = NULL;
    for (int i = 0; i < TT_WAIT_MS / 10 && !f; i++) {
        pthread_mutex_lock(&w.lock);
        f = w.f;
        pthread_mutex_unlock(&w.lock);
        if (!f) usleep(10000);
    }
    TT_REQUIRE(f);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS * 2), TT_OK);
    TT_CHECK_EQ_INT(tt_future_get_i64(f), 4321);
    TT_CHECK(tt_future_get_ptr(f) && memcmp(tt_future_get_ptr(f), img, 4321) == 0);
    tt_future_free(f);
    free(img);
    teardown(&fx);
}

/* ---- Lifetime ---------------------------------------------------------------------------------- */

static void free_in_handler(tt_tb_device *d, int64_t id, const char *method, const json_t *params, void *arg) {
    (void)id;
    (void)method;
    (void)params;
    atomic_int *n = arg;
    tt_tb_device_free(d);
    atomic_fetch_add(n, 1);
}

static void test_free_with_pending(void) {
    fixture fx;
    TT_REQUIRE(setup(&fx, true));
    tb_emu_set_silent(fx.emu, true);
    tt_future *f = tt_tb_device_request_attributes(fx.dev, "x", NULL, NULL);
    tt_future *g = tt_tb_device_rpc_call(fx.dev, "m", NULL, NULL);
    tt_tb_device_free(fx.dev);
    fx.dev = NULL;
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_ECLOSED);
    TT_CHECK_EQ_INT(tt_future_wait(g, TT_WAIT_MS), TT_ECLOSED);
    tt_future_free(f);
    tt_future_free(g);
    /* a device freed inside its own RPC handler */
    tt_tb_opts o;
    dev_opts(&fx, &o, TOKEN);
    tt_tb_device *d;
    TT_REQUIRE(tt_tb_device_new(g_rt, &o, &d) == TT_OK);
    TT_REQUIRE(tt_wait_free(tt_tb_device_connect(d)) == TT_OK);
    atomic_int n = 0;
    tt_tb_device_on_rpc(d, free_in_handler, &n);
    tb_emu_set_silent(fx.emu, false);
    tt_future *r = tb_emu_rpc(fx.emu, NULL, "bye", g_empty, 1000);
    TT_CHECK_EQ_INT(tt_future_wait(r, TT_WAIT_MS), TT_ETIMEDOUT);
    tt_future_free(r);
    TT_CHECK_EQ_INT(atomic_load(&n), 1);
    teardown(&fx);
}

static void rt_up(void) {
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.loop_threads = 2;
    o.pool_threads = 2;
    if (tt_runtime_new(&g_rt, &o) != TT_OK) abort();
}

static void test_done(void) {
    json_decref(g_empty);
    g_empty = NULL;
    if (g_rt) tt_runtime_free(g_rt);
    g_rt = NULL;
}

TT_TEST_LIST = {
    { "refused_token", test_refused_token },
    { "basic_credentials", test_basic_credentials },
    { "telemetry", test_telemetry },
    { "attributes_and_claim", test_attributes_and_claim },
    { "request_attributes", test_request_attributes },
    { "request_timeout", test_request_timeout },
    { "subscriptions", test_subscriptions },
    { "server_rpc", test_server_rpc },
    { "client_rpc", test_client_rpc },
    { "provision", test_provision },
    { "firmware", test_firmware },
    { "firmware_errors", test_firmware_errors },
    { "firmware_push", test_firmware_push },
    { "mqtt_options", test_mqtt_options },
    { "session_limits", test_session_limits },
    { "x509", test_x509 },
    { "free_with_pending", test_free_with_pending },
    { "done", test_done },
    { NULL, NULL },
};
