/* The ThingsBoard emulator (tests/emulators/thingsboard) through a real
 * mosquitto with token logins and ACLs, driven by tether's plain MQTT client
 * speaking the raw ThingsBoard topics. One test per item of the emulator
 * checklist (fact sheet section 7). */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tether/tether.h>
#include <tether/mqtt.h>

#include "broker.h"
#include "tb_broker.h"
#include "tb_checksum.h"
#include "tb_emu.h"
#include "tt_test.h"
#include "tt_wait.h"

#define DEV_TOKEN "A1_TEST_TOKEN"
#define DEV2_TOKEN "B2_OTHER_TOKEN"
#define GW_TOKEN "GW_TEST_TOKEN"

static tt_runtime *g_rt;
static tb_broker g_tb;

/* A broker with two device tokens and one gateway token, and the runtime. */
static bool setup(void) {
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.loop_threads = 2;
    if (tt_runtime_new(&g_rt, &o) != TT_OK) return false;
    const char *devices[] = { DEV_TOKEN, DEV2_TOKEN }, *gateways[] = { GW_TOKEN };
    tb_broker_opts bo = { .device_tokens = devices, .ndevices = 2, .gateway_tokens = gateways,
                          .ngateways = 1 };
    if (tb_broker_start(&g_tb, &bo) != 0) {
        tt_broker_dump_log(&g_tb.b, stderr);
        tb_broker_free(&g_tb);
        tt_runtime_free(g_rt);
        return false;
    }
    return true;
}

static void teardown(void) {
    tb_broker_free(&g_tb);
    tt_runtime_free(g_rt);
}

static tb_emu *emu(tb_emu_mode mode) {
    tb_emu_opts o = { .host = "127.0.0.1", .port = (uint16_t)g_tb.b.port,
                      .user = TB_BROKER_SERVER_USER, .password = TB_BROKER_SERVER_PASSWORD,
                      .mode = mode };
    return tb_emu_start(g_rt, &o);
}

/* ---- A device: a plain client and what it received ---------------------------------------- */

typedef struct rx {
    char *topic;
    void *payload;
    size_t len;
} rx;

typedef struct dev {
    tt_client *c;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    rx msgs[256];
    size_t n;
} dev;

static void on_msg(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    dev *d = arg;
    size_t tl, pl;
    const char *t = tt_msg_topic(m, &tl);
    const void *p = tt_msg_payload(m, &pl);
    pthread_mutex_lock(&d->lock);
    if (d->n < sizeof d->msgs / sizeof d->msgs[0]) {
        rx *r = &d->msgs[d->n++];
        r->topic = strndup(t, tl);
        r->payload = malloc(pl + 1);
        if (r->payload) {
            if (pl) memcpy(r->payload, p, pl);
            ((char *)r->payload)[pl] = '\0';
        }
        r->len = pl;
    }
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

/* Connect with `user` (NULL: none) and `pass`; TT_OK or the connect error. */
static tt_err dev_open(dev *d, const char *user, const char *pass, tt_mqtt_version v, int *detail) {
    memset(d, 0, sizeof *d);
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->cond, NULL);
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", g_tb.b.port);
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.url = url;
    o.username = user;
    o.password = pass;
    o.version = v;
    o.no_reconnect = true;
    o.on_message = on_msg;
    o.on_message_arg = d;
    if (tt_client_new(g_rt, &o, &d->c) != TT_OK) return TT_EINTERNAL;
    tt_future *f = tt_client_connect(d->c);
    tt_err rc = tt_future_wait(f, TT_WAIT_MS);
    if (detail) *detail = tt_future_detail(f, NULL);
    tt_future_free(f);
    return rc;
}

static void dev_close(dev *d) {
    if (d->c) {
        tt_future *f = tt_client_close(d->c);
        (void)tt_future_wait(f, TT_WAIT_MS);
        tt_future_free(f);
        tt_client_free(d->c);
        d->c = NULL;
    }
    for (size_t i = 0; i < d->n; i++) {
        free(d->msgs[i].topic);
        free(d->msgs[i].payload);
    }
    d->n = 0;
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->lock);
}

static tt_err dev_sub(dev *d, const char *filter) {
    tt_sub s = { .filter = filter, .qos = TT_QOS1, .handler = on_msg, .arg = d };
    return tt_wait_free(tt_client_subscribe(d->c, &s, 1, NULL));
}

static tt_err dev_pub(dev *d, const char *topic, const char *text) {
    return tt_wait_free(tt_client_pub(d->c, topic, text, strlen(text), TT_QOS1, false));
}

static tt_err dev_pub_json(dev *d, const char *topic, json_t *v) {
    char *s = json_dumps(v, JSON_COMPACT);
    tt_err rc = s ? dev_pub(d, topic, s) : TT_ENOMEM;
    free(s);
    json_decref(v);
    return rc;
}

static bool topic_match(const char *filter, const char *topic) {
    size_t n = strlen(filter);
    if (n && filter[n - 1] == '*') return strncmp(filter, topic, n - 1) == 0;
    return strcmp(filter, topic) == 0;
}

/* The i-th message whose topic matches `filter` ("prefix*" allowed), waiting
 * for it up to TT_WAIT_MS. The payload stays the device's; NULL on timeout. */
static const rx *dev_nth(dev *d, const char *filter, size_t nth) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += TT_WAIT_MS / 1000;
    const rx *found = NULL;
    pthread_mutex_lock(&d->lock);
    for (;;) {
        size_t seen = 0;
        for (size_t i = 0; i < d->n && !found; i++)
            if (topic_match(filter, d->msgs[i].topic) && seen++ == nth) found = &d->msgs[i];
        if (found || pthread_cond_timedwait(&d->cond, &d->lock, &dl) != 0) break;
    }
    pthread_mutex_unlock(&d->lock);
    return found;
}

static size_t dev_count(dev *d, const char *filter) {
    size_t n = 0;
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < d->n; i++) n += topic_match(filter, d->msgs[i].topic);
    pthread_mutex_unlock(&d->lock);
    return n;
}

/* The i-th matching message parsed as JSON (new reference, NULL on timeout). */
static json_t *dev_json(dev *d, const char *filter, size_t nth) {
    const rx *r = dev_nth(d, filter, nth);
    if (!r) {
        fprintf(stderr, "  no message %zu on %s\n", nth, filter);
        return NULL;
    }
    json_error_t err;
    json_t *v = json_loadb(r->payload, r->len, JSON_DECODE_ANY, &err);
    if (!v) fprintf(stderr, "  %s: not JSON: %.*s\n", r->topic, (int)r->len, (const char *)r->payload);
    return v;
}

/* A device of the emulator's, connected with its token and subscribed the way
 * the SDKs do. */
static bool dev_up(dev *d, const char *token, tt_mqtt_version v) {
    if (dev_open(d, token, TB_BROKER_TOKEN_PASSWORD, v, NULL) != TT_OK) return false;
    return dev_sub(d, "v1/devices/me/attributes") == TT_OK &&
           dev_sub(d, "v1/devices/me/attributes/response/+") == TT_OK &&
           dev_sub(d, "v1/devices/me/rpc/request/+") == TT_OK &&
           dev_sub(d, "v1/devices/me/rpc/response/+") == TT_OK;
}

static bool json_eq_text(const json_t *v, const char *text) {
    json_error_t err;
    json_t *want = json_loads(text, JSON_DECODE_ANY, &err);
    bool eq = want && json_equal(v, want);
    if (!eq) {
        char *got = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
        fprintf(stderr, "  got %s, want %s\n", got ? got : "(null)", text);
        free(got);
    }
    json_decref(want);
    return eq;
}

#define CHECK_JSON(v, text) TT_CHECK(json_eq_text((v), (text)))

/* ---- 7.1 / 7.2: logins and ACLs ------------------------------------------------------------- */

static void test_auth(void) {
    TT_REQUIRE(setup());
    for (int v = 4; v <= 5; v++) {
        struct {
            const char *user, *pass;
        } bad[] = { { "", TB_BROKER_TOKEN_PASSWORD },          /* empty token */
                    { "NO_SUCH_TOKEN", TB_BROKER_TOKEN_PASSWORD }, /* unknown token */
                    { NULL, NULL },                            /* anonymous */
                    { DEV_TOKEN, NULL },                       /* a token without the password */
                    { DEV_TOKEN, "wrong" } };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            dev d;
            int detail = 0;
            tt_err rc = dev_open(&d, bad[i].user, bad[i].pass, (tt_mqtt_version)v, &detail);
            TT_CHECK_MSG(rc == TT_EAUTH, "v%d login %zu: %s", v, i, tt_err_name(rc));
            TT_CHECK_MSG(v == 4 ? (detail == 4 || detail == 5) : (detail == 0x86 || detail == 0x87),
                         "v%d login %zu: CONNACK %d", v, i, detail);
            dev_close(&d);
        }
        const char *good[] = { DEV_TOKEN, GW_TOKEN, TB_BROKER_PROVISION_USER };
        for (size_t i = 0; i < 3; i++) {
            dev d;
            TT_CHECK_EQ_INT(dev_open(&d, good[i], TB_BROKER_TOKEN_PASSWORD, (tt_mqtt_version)v, NULL),
                            TT_OK);
            dev_close(&d);
        }
    }
    teardown();
}

static void test_acl(void) {
    TT_REQUIRE(setup());
    dev d, g, p;
    TT_REQUIRE(dev_open(&d, DEV_TOKEN, TB_BROKER_TOKEN_PASSWORD, TT_MQTT_311, NULL) == TT_OK);
    TT_REQUIRE(dev_open(&g, GW_TOKEN, TB_BROKER_TOKEN_PASSWORD, TT_MQTT_311, NULL) == TT_OK);
    TT_REQUIRE(dev_open(&p, TB_BROKER_PROVISION_USER, TB_BROKER_TOKEN_PASSWORD, TT_MQTT_311, NULL) ==
               TT_OK);
    /* mosquitto 2.0 grants every subscription and filters what it delivers by
     * the reader's ACL: the device and the provisioning login subscribe to
     * everything and get only their own topics. */
    TT_CHECK_EQ_INT(dev_sub(&d, "#"), TT_OK);
    TT_CHECK_EQ_INT(dev_sub(&p, "#"), TT_OK);
    TT_CHECK_EQ_INT(dev_sub(&g, "v1/gateway/rpc"), TT_OK);
    TT_CHECK_EQ_INT(dev_sub(&g, "v1/devices/me/attributes"), TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&g, "v1/gateway/rpc", "{\"device\":\"y\",\"id\":2,\"data\":{}}"), TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&g, "/provision/response", "{\"status\":\"x\"}"), TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&p, "/provision/response", "{\"status\":\"y\"}"), TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&g, "v1/devices/me/attributes", "{\"a\":1}"), TT_OK);
    /* The last message reaches the device: everything before it was decided. */
    TT_CHECK(dev_nth(&d, "v1/devices/me/attributes", 0) != NULL);
    TT_CHECK_EQ_INT(dev_pub(&p, "/provision/response", "{\"status\":\"z\"}"), TT_OK);
    TT_CHECK(dev_nth(&p, "/provision/response", 1) != NULL);
    TT_CHECK_EQ_INT(dev_count(&d, "v1/gateway/rpc"), 0);
    TT_CHECK_EQ_INT(dev_count(&d, "/provision/response"), 0);
    TT_CHECK_EQ_INT(dev_count(&p, "v1/devices/me/attributes"), 0);
    TT_CHECK_EQ_INT(dev_count(&p, "/provision/response"), 2);
    /* The gateway's and the provisioning login's own publications outside
     * their ACL are dropped: the gateway's /provision/response never arrives. */
    json_t *only = dev_json(&p, "/provision/response", 0);
    CHECK_JSON(only, "{\"status\":\"y\"}");
    json_decref(only);
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/gateway/rpc", "{\"device\":\"x\",\"id\":1,\"data\":{}}"), TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&g, "v1/gateway/rpc", "{\"device\":\"z\",\"id\":3,\"data\":{}}"), TT_OK);
    json_t *second = dev_json(&g, "v1/gateway/rpc", 1);
    TT_CHECK_EQ_STR(json_string_value(json_object_get(second, "device")), "z");
    json_decref(second);
    TT_CHECK_EQ_INT(dev_count(&g, "v1/gateway/rpc"), 2);
    dev_close(&p);
    dev_close(&g);
    dev_close(&d);
    teardown();
}

/* ---- Telemetry and client attributes in every payload form ----------------------------------- */

static void test_telemetry_forms(void) {
    TT_REQUIRE(setup());
    tb_emu *e = emu(TB_EMU_DEVICE);
    TT_REQUIRE(e);
    dev d;
    TT_REQUIRE(dev_up(&d, DEV_TOKEN, TT_MQTT_311));
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/telemetry", "{\"t\":21.5,\"obj\":{\"a\":1}}"), TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/telemetry", "{\"ts\":1700000000000,\"values\":{\"t\":22}}"),
                    TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/telemetry", "[{\"t\":1},{\"t\":2}]"), TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/telemetry",
                            "[{\"ts\":1,\"values\":{\"t\":3}},{\"ts\":2,\"values\":{\"t\":4}}]"),
                    TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/telemetry", "not json"), TT_OK);   /* ignored */
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/attributes", "{\"model\":\"X1\",\"fw\":\"1.0\"}"), TT_OK);
    TT_CHECK_EQ_INT(tb_emu_wait(e, "telemetry", NULL, 6, TT_WAIT_MS), 0);
    TT_CHECK_EQ_INT(tb_emu_wait(e, "attributes", NULL, 1, TT_WAIT_MS), 0);
    json_t *t = tb_emu_telemetry(e, NULL);
    CHECK_JSON(t, "[{\"t\":21.5,\"obj\":{\"a\":1}},{\"ts\":1700000000000,\"values\":{\"t\":22}},"
                  "{\"t\":1},{\"t\":2},{\"ts\":1,\"values\":{\"t\":3}},{\"ts\":2,\"values\":{\"t\":4}}]");
    json_decref(t);
    json_t *a = tb_emu_attributes(e, NULL);
    CHECK_JSON(a, "[{\"model\":\"X1\",\"fw\":\"1.0\"}]");
    json_decref(a);
    TT_CHECK_EQ_INT(tb_emu_wait(e, "telemetry", NULL, 7, 200), -1);   /* no seventh entry */
    dev_close(&d);
    tb_emu_free(e);
    teardown();
}

/* ---- 7.4 Attribute requests ----------------------------------------------------------------- */

static void test_attribute_request(void) {
    TT_REQUIRE(setup());
    tb_emu *e = emu(TB_EMU_DEVICE);
    TT_REQUIRE(e);
    json_t *shared = json_pack("{sisssb}", "interval", 30, "mode", "eco", "led", true);
    json_t *client = json_pack("{ss}", "serial", "SN-1");
    tb_emu_set_shared_attrs(e, NULL, shared);
    tb_emu_set_client_attrs(e, NULL, client);
    json_decref(shared);
    json_decref(client);
    dev d;
    TT_REQUIRE(dev_up(&d, DEV_TOKEN, TT_MQTT_5));
    /* Client attributes published by the device join the server's state. */
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/attributes", "{\"hw\":\"rev2\"}"), TT_OK);
    TT_CHECK_EQ_INT(tb_emu_wait(e, "attributes", NULL, 1, TT_WAIT_MS), 0);

    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/attributes/request/1",
                            "{\"clientKeys\":\"serial,hw,nope\",\"sharedKeys\":\"interval, led\"}"),
                    TT_OK);
    json_t *r = dev_json(&d, "v1/devices/me/attributes/response/1", 0);
    CHECK_JSON(r, "{\"client\":{\"serial\":\"SN-1\",\"hw\":\"rev2\"},\"shared\":{\"interval\":30,\"led\":true}}");
    json_decref(r);
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/attributes/request/2", "{\"sharedKeys\":\"mode\"}"), TT_OK);
    r = dev_json(&d, "v1/devices/me/attributes/response/2", 0);
    CHECK_JSON(r, "{\"shared\":{\"mode\":\"eco\"}}");
    json_decref(r);
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/attributes/request/3", "{\"sharedKeys\":\"absent\"}"), TT_OK);
    r = dev_json(&d, "v1/devices/me/attributes/response/3", 0);
    CHECK_JSON(r, "{}");
    json_decref(r);
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/attributes/request/4", "{}"), TT_OK);
    r = dev_json(&d, "v1/devices/me/attributes/response/4", 0);
    CHECK_JSON(r, "{\"client\":{\"serial\":\"SN-1\",\"hw\":\"rev2\"},"
                  "\"shared\":{\"interval\":30,\"mode\":\"eco\",\"led\":true}}");
    json_decref(r);
    /* Each answer went to its own id, once. */
    TT_CHECK_EQ_INT(dev_count(&d, "v1/devices/me/attributes/response/*"), 4);
    dev_close(&d);
    tb_emu_free(e);
    teardown();
}

/* ---- 7.5 Server-side RPC ---------------------------------------------------------------------- */

static void test_server_rpc(void) {
    TT_REQUIRE(setup());
    tb_emu *e = emu(TB_EMU_DEVICE);
    TT_REQUIRE(e);
    dev d;
    TT_REQUIRE(dev_up(&d, DEV_TOKEN, TT_MQTT_311));
    json_t *params = json_pack("{si}", "pin", 4);
    tt_future *f = tb_emu_rpc(e, NULL, "setGpio", params, TT_WAIT_MS);
    json_decref(params);
    const rx *req = dev_nth(&d, "v1/devices/me/rpc/request/*", 0);
    TT_REQUIRE(req);
    json_t *body = dev_json(&d, "v1/devices/me/rpc/request/*", 0);
    CHECK_JSON(body, "{\"method\":\"setGpio\",\"params\":{\"pin\":4}}");
    json_decref(body);
    const char *id = req->topic + strlen("v1/devices/me/rpc/request/");
    char t[128];
    snprintf(t, sizeof t, "v1/devices/me/rpc/response/%s", id);
    TT_CHECK_EQ_INT(dev_pub(&d, t, "{\"pin\":4,\"value\":1}"), TT_OK);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
    CHECK_JSON(tt_future_get_ptr(f), "{\"pin\":4,\"value\":1}");
    tt_future_free(f);

    /* No reply: the future fails with TT_ETIMEDOUT; a late reply is recorded unmatched. */
    f = tb_emu_rpc(e, NULL, "reboot", NULL, 1500);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_ETIMEDOUT);
    tt_future_free(f);
    const rx *req2 = dev_nth(&d, "v1/devices/me/rpc/request/*", 1);
    TT_REQUIRE(req2);
    body = dev_json(&d, "v1/devices/me/rpc/request/*", 1);
    CHECK_JSON(body, "{\"method\":\"reboot\",\"params\":{}}");
    json_decref(body);
    snprintf(t, sizeof t, "v1/devices/me/rpc/response/%s", req2->topic + strlen("v1/devices/me/rpc/request/"));
    TT_CHECK_EQ_INT(dev_pub(&d, t, "\"late\""), TT_OK);
    TT_CHECK_EQ_INT(tb_emu_wait(e, "rpc_replies", NULL, 2, TT_WAIT_MS), 0);
    json_t *rep = tb_emu_rpc_replies(e);
    TT_CHECK(json_is_true(json_object_get(json_array_get(rep, 0), "matched")));
    TT_CHECK(json_is_false(json_object_get(json_array_get(rep, 1), "matched")));
    CHECK_JSON(json_object_get(json_array_get(rep, 1), "data"), "\"late\"");
    json_decref(rep);
    /* A sub-device in device mode is a bad argument. */
    f = tb_emu_rpc(e, "Sub A", "x", NULL, 100);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_EINVAL);
    tt_future_free(f);
    /* A request still waiting when the emulator goes fails with TT_ECLOSED. */
    f = tb_emu_rpc(e, NULL, "never", NULL, 60000);
    TT_CHECK(dev_nth(&d, "v1/devices/me/rpc/request/*", 2) != NULL);
    dev_close(&d);
    tb_emu_free(e);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_ECLOSED);
    tt_future_free(f);
    teardown();
}

/* ---- 7.6 Client-side RPC and getSessionLimits -------------------------------------------------- */

static void test_client_rpc(void) {
    TT_REQUIRE(setup());
    tb_emu *e = emu(TB_EMU_DEVICE);
    TT_REQUIRE(e);
    json_t *res = json_pack("{sI}", "time", (json_int_t)1700000000123);
    tb_emu_set_rpc_result(e, "getCurrentTime", res);
    json_decref(res);
    dev d;
    TT_REQUIRE(dev_up(&d, DEV_TOKEN, TT_MQTT_311));
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/rpc/request/1",
                            "{\"method\":\"getSessionLimits\",\"params\":{\"timeout\":5000}}"), TT_OK);
    json_t *r = dev_json(&d, "v1/devices/me/rpc/response/1", 0);
    TT_CHECK_EQ_INT(json_integer_value(json_object_get(r, "maxPayloadSize")), 65536);
    TT_CHECK_EQ_INT(json_integer_value(json_object_get(r, "maxInflightMessages")), 100);
    TT_CHECK(json_is_string(json_object_get(json_object_get(r, "rateLimits"), "messages")));
    TT_CHECK(json_object_get(r, "gatewayRateLimits") == NULL);     /* device mode */
    json_decref(r);
    /* No answer configured: nothing comes back; the next request is answered. */
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/rpc/request/2", "{\"method\":\"unknownMethod\",\"params\":{}}"),
                    TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/rpc/request/3", "{\"method\":\"getCurrentTime\",\"params\":{}}"),
                    TT_OK);
    r = dev_json(&d, "v1/devices/me/rpc/response/3", 0);
    CHECK_JSON(r, "{\"time\":1700000000123}");
    json_decref(r);
    TT_CHECK_EQ_INT(dev_count(&d, "v1/devices/me/rpc/response/2"), 0);
    /* Limits replaced. */
    json_t *lim = json_pack("{si}", "maxPayloadSize", 1024);
    tb_emu_set_session_limits(e, lim);
    json_decref(lim);
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/rpc/request/4", "{\"method\":\"getSessionLimits\",\"params\":{}}"),
                    TT_OK);
    r = dev_json(&d, "v1/devices/me/rpc/response/4", 0);
    CHECK_JSON(r, "{\"maxPayloadSize\":1024}");
    json_decref(r);
    json_t *reqs = tb_emu_client_rpcs(e);
    TT_CHECK_EQ_INT(json_array_size(reqs), 4);
    CHECK_JSON(json_array_get(reqs, 1), "{\"id\":2,\"method\":\"unknownMethod\",\"params\":{}}");
    json_decref(reqs);
    dev_close(&d);
    tb_emu_free(e);

    /* Gateway mode: gatewayRateLimits too. */
    e = emu(TB_EMU_GATEWAY);
    TT_REQUIRE(e);
    TT_REQUIRE(dev_up(&d, GW_TOKEN, TT_MQTT_5));
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/rpc/request/7", "{\"method\":\"getSessionLimits\",\"params\":{}}"),
                    TT_OK);
    r = dev_json(&d, "v1/devices/me/rpc/response/7", 0);
    TT_CHECK(json_is_object(json_object_get(r, "gatewayRateLimits")));
    TT_CHECK(json_is_object(json_object_get(r, "rateLimits")));
    json_decref(r);
    dev_close(&d);
    tb_emu_free(e);
    teardown();
}

/* ---- 7.7 Shared-attribute push and deletion ---------------------------------------------------- */

static void test_shared_push(void) {
    TT_REQUIRE(setup());
    tb_emu *e = emu(TB_EMU_DEVICE);
    TT_REQUIRE(e);
    dev d;
    TT_REQUIRE(dev_up(&d, DEV_TOKEN, TT_MQTT_311));
    json_t *upd = json_pack("{sisn}", "interval", 10, "target", "x");
    TT_CHECK_EQ_INT(tb_emu_push_shared(e, NULL, upd), 0);
    json_decref(upd);
    json_t *r = dev_json(&d, "v1/devices/me/attributes", 0);
    CHECK_JSON(r, "{\"interval\":10,\"target\":null}");
    json_decref(r);
    const char *keys[] = { "interval", "gone" };
    TT_CHECK_EQ_INT(tb_emu_delete_shared(e, NULL, keys, 2), 0);
    r = dev_json(&d, "v1/devices/me/attributes", 1);
    CHECK_JSON(r, "{\"deleted\":[\"interval\",\"gone\"]}");
    json_decref(r);
    /* The state follows: interval is gone from an attribute request's answer. */
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/attributes/request/9", "{\"sharedKeys\":\"interval,target\"}"),
                    TT_OK);
    r = dev_json(&d, "v1/devices/me/attributes/response/9", 0);
    CHECK_JSON(r, "{\"shared\":{\"target\":null}}");
    json_decref(r);
    /* The emulator did not take its own pushes for client attributes. */
    json_t *a = tb_emu_attributes(e, NULL);
    TT_CHECK_EQ_INT(json_array_size(a), 0);
    json_decref(a);
    dev_close(&d);
    tb_emu_free(e);
    teardown();
}

/* ---- 7.8 Provisioning -------------------------------------------------------------------------- */

static json_t *provision(const char *request) {
    dev p;
    json_t *r = NULL;
    if (dev_open(&p, TB_BROKER_PROVISION_USER, TB_BROKER_TOKEN_PASSWORD, TT_MQTT_311, NULL) == TT_OK &&
        dev_sub(&p, "/provision/response") == TT_OK && dev_pub(&p, "/provision/request", request) == TT_OK)
        r = dev_json(&p, "/provision/response", 0);
    dev_close(&p);
    return r;
}

static void test_provisioning(void) {
    TT_REQUIRE(setup());
    tb_emu *e = emu(TB_EMU_DEVICE);
    TT_REQUIRE(e);
    json_t *tok = json_string(DEV2_TOKEN);
    tb_emu_add_provision(e, "key-new", "secret-new", 0, tok);
    tb_emu_add_provision(e, "key-old", "secret-old", 1, tok);
    json_decref(tok);
    json_t *basic = json_pack("{ssssss}", "clientId", "c1", "userName", "u1", "password", "p1");
    tb_emu_add_provision(e, "key-basic", "secret-basic", 0, basic);
    tb_emu_add_provision(e, "key-basic-old", "secret-basic-old", 1, basic);
    json_decref(basic);

    json_t *r = provision("{\"provisionDeviceKey\":\"key-new\",\"provisionDeviceSecret\":\"secret-new\","
                          "\"deviceName\":\"dev-1\"}");
    CHECK_JSON(r, "{\"status\":\"SUCCESS\",\"credentialsType\":\"ACCESS_TOKEN\",\"credentialsValue\":\""
                  DEV2_TOKEN "\"}");
    /* The token handed out logs in. */
    dev d;
    TT_CHECK_EQ_INT(dev_open(&d, json_string_value(json_object_get(r, "credentialsValue")),
                             TB_BROKER_TOKEN_PASSWORD, TT_MQTT_311, NULL), TT_OK);
    dev_close(&d);
    json_decref(r);
    r = provision("{\"provisionDeviceKey\":\"key-old\",\"provisionDeviceSecret\":\"secret-old\"}");
    CHECK_JSON(r, "{\"provisionDeviceStatus\":\"SUCCESS\",\"credentialsType\":\"ACCESS_TOKEN\","
                  "\"accessToken\":\"" DEV2_TOKEN "\"}");
    json_decref(r);
    r = provision("{\"provisionDeviceKey\":\"key-basic\",\"provisionDeviceSecret\":\"secret-basic\"}");
    CHECK_JSON(r, "{\"status\":\"SUCCESS\",\"credentialsType\":\"MQTT_BASIC\",\"credentialsValue\":"
                  "{\"clientId\":\"c1\",\"userName\":\"u1\",\"password\":\"p1\"}}");
    json_decref(r);
    r = provision("{\"provisionDeviceKey\":\"key-basic-old\",\"provisionDeviceSecret\":\"secret-basic-old\"}");
    TT_CHECK_EQ_STR(json_string_value(json_object_get(r, "provisionDeviceStatus")), "SUCCESS");
    json_error_t err;
    json_t *inner = json_loads(json_string_value(json_object_get(r, "credentialsValue")), 0, &err);
    CHECK_JSON(inner, "{\"clientId\":\"c1\",\"userName\":\"u1\",\"password\":\"p1\"}");
    json_decref(inner);
    json_decref(r);
    /* Credentials chosen by the device come back. */
    r = provision("{\"provisionDeviceKey\":\"key-new\",\"provisionDeviceSecret\":\"secret-new\","
                  "\"credentialsType\":\"ACCESS_TOKEN\",\"token\":\"MY_OWN\"}");
    CHECK_JSON(r, "{\"status\":\"SUCCESS\",\"credentialsType\":\"ACCESS_TOKEN\",\"credentialsValue\":\"MY_OWN\"}");
    json_decref(r);
    r = provision("{\"provisionDeviceKey\":\"key-old\",\"provisionDeviceSecret\":\"secret-old\","
                  "\"credentialsType\":\"MQTT_BASIC\",\"clientId\":\"cid\",\"username\":\"un\",\"password\":\"pw\"}");
    TT_CHECK_EQ_STR(json_string_value(json_object_get(r, "credentialsType")), "MQTT_BASIC");
    inner = json_loads(json_string_value(json_object_get(r, "credentialsValue")), 0, &err);
    CHECK_JSON(inner, "{\"clientId\":\"cid\",\"userName\":\"un\",\"password\":\"pw\"}");
    json_decref(inner);
    json_decref(r);
    /* Wrong secret, unknown key: NOT_FOUND. */
    const char *bad[] = { "{\"provisionDeviceKey\":\"key-new\",\"provisionDeviceSecret\":\"nope\"}",
                          "{\"provisionDeviceKey\":\"nope\",\"provisionDeviceSecret\":\"secret-new\"}",
                          "{}" };
    for (size_t i = 0; i < 3; i++) {
        r = provision(bad[i]);
        CHECK_JSON(r, "{\"status\":\"NOT_FOUND\",\"errorMsg\":\"Provision data was not found!\"}");
        json_decref(r);
    }
    json_t *reqs = tb_emu_provisions(e);
    TT_CHECK_EQ_INT(json_array_size(reqs), 9);
    TT_CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(reqs, 0), "deviceName")), "dev-1");
    json_decref(reqs);
    tb_emu_free(e);
    teardown();
}

/* ---- 7.9 Firmware ------------------------------------------------------------------------------ */

/* Digests computed apart from tb_checksum.c: coreutils for SHA and MD5, a
 * bitwise CRC-32 here, and published vectors for MurmurHash3 (Guava's). */
static bool coreutils_digest(const char *prog, const void *data, size_t len, char *out, size_t cap) {
    char exe[512];
    const char *tmp = getenv("TMPDIR");
    char base[300];
    snprintf(base, sizeof base, "%s/tt-tbsum-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!tt_broker_find_program(prog, exe, sizeof exe) || !mkdtemp(base)) return false;
    char in[400], res[400];
    snprintf(in, sizeof in, "%s/image", base);
    snprintf(res, sizeof res, "%s/sum", base);
    FILE *f = fopen(in, "wb");
    bool ok = f && fwrite(data, 1, len, f) == len;
    if (f) fclose(f);
    char *argv[] = { exe, in, NULL };
    ok = ok && tt_broker_run(argv, res, TT_WAIT_MS) == 0;
    f = ok ? fopen(res, "r") : NULL;
    ok = f && fscanf(f, "%128s", out) == 1 && strlen(out) < cap;
    if (f) fclose(f);
    remove(in);
    remove(res);
    rmdir(base);
    return ok;
}

static uint32_t crc32_bitwise(const uint8_t *p, size_t len) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static void test_checksum_vectors(void) {
    char h[TB_CHECKSUM_HEX_MAX];
    const char *fox = "The quick brown fox jumps over the lazy dog";
    TT_CHECK_EQ_INT(tb_crc32("123456789", 9), 0xCBF43926u);
    TT_CHECK_EQ_INT(tb_checksum_hex("CRC32", "123456789", 9, h), 0);
    TT_CHECK_EQ_STR(h, "2639f4cb");
    TT_CHECK_EQ_INT(tb_murmur3_32("", 0, 0), 0);
    TT_CHECK_EQ_INT(tb_murmur3_32("", 0, 1), 0x514E28B7u);
    TT_CHECK_EQ_INT(tb_murmur3_32("hello", 5, 0), 0x248bfa47u);
    TT_CHECK_EQ_INT(tb_murmur3_32(fox, strlen(fox), 0), 0x2e4ff723u);
    TT_CHECK_EQ_INT(tb_checksum_hex("MURMUR3_32", fox, strlen(fox), h), 0);
    TT_CHECK_EQ_STR(h, "23f74f2e");
    TT_CHECK_EQ_INT(tb_checksum_hex("murmur3_128", fox, strlen(fox), h), 0);
    TT_CHECK_EQ_STR(h, "6c1b07bc7bbc4be347939ac4a93c437a");
    TT_CHECK_EQ_INT(tb_checksum_hex("MURMUR3_128", "", 0, h), 0);
    TT_CHECK_EQ_STR(h, "00000000000000000000000000000000");
    TT_CHECK_EQ_INT(tb_checksum_hex("SHA256", "abc", 3, h), 0);
    TT_CHECK_EQ_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    TT_CHECK_EQ_INT(tb_checksum_hex("MD5", "", 0, h), 0);
    TT_CHECK_EQ_STR(h, "d41d8cd98f00b204e9800998ecf8427e");
    TT_CHECK_EQ_INT(tb_checksum_hex("SHA1", "abc", 3, h), -1);
    TT_CHECK(!tb_checksum_known("SHA1") && tb_checksum_known("sha512"));
}

/* Fetch the whole image through v2/fw/request/<rid>/chunk/<n> with chunks of
 * `size` bytes ("" = ask for the whole image). */
static uint8_t *fetch(dev *d, int rid, const char *size, size_t total, size_t *got, size_t *chunks) {
    uint8_t *img = malloc(total + 1);
    *got = 0;
    *chunks = 0;
    for (int n = 0; img && *got < total && n < 100000; n++) {
        char t[96], resp[96];
        snprintf(t, sizeof t, "v2/fw/request/%d/chunk/%d", rid, n);
        snprintf(resp, sizeof resp, "v2/fw/response/%d/chunk/%d", rid, n);
        if (dev_pub(d, t, size) != TT_OK) break;
        const rx *r = dev_nth(d, resp, 0);
        if (!r || r->len == 0 || *got + r->len > total) break;
        memcpy(img + *got, r->payload, r->len);
        *got += r->len;
        (*chunks)++;
    }
    return img;
}

static void test_firmware(void) {
    TT_REQUIRE(setup());
    tb_emu *e = emu(TB_EMU_DEVICE);
    TT_REQUIRE(e);
    dev d;
    TT_REQUIRE(dev_up(&d, DEV_TOKEN, TT_MQTT_311));
    TT_REQUIRE(dev_sub(&d, "v2/fw/response/+/chunk/+") == TT_OK);
    TT_REQUIRE(dev_sub(&d, "v2/fw/error") == TT_OK);
    /* No image yet: an error line. */
    TT_CHECK_EQ_INT(dev_pub(&d, "v2/fw/request/1/chunk/0", "1024"), TT_OK);
    TT_CHECK(dev_nth(&d, "v2/fw/error", 0) != NULL);

    /* 10,000 bytes with zero bytes in them: 9 chunks of 1024 and a last one of 784. */
    size_t len = 10000;
    uint8_t *img = malloc(len);
    TT_REQUIRE(img);
    uint32_t x = 12345;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        img[i] = i % 7 == 0 ? 0 : (uint8_t)(x >> 16);
    }
    static const char *const algos[] = { "SHA256", "SHA384", "SHA512", "MD5", "CRC32",
                                         "MURMUR3_32", "MURMUR3_128" };
    int rid = 10;
    for (size_t a = 0; a < sizeof algos / sizeof algos[0]; a++) {
        size_t pushes = dev_count(&d, "v1/devices/me/attributes");
        char version[16];
        snprintf(version, sizeof version, "2.%zu", a);
        TT_CHECK_EQ_INT(tb_emu_set_firmware(e, "app", version, img, len, algos[a], false, true), 0);
        json_t *push = dev_json(&d, "v1/devices/me/attributes", pushes);
        TT_CHECK_EQ_STR(json_string_value(json_object_get(push, "fw_title")), "app");
        TT_CHECK_EQ_STR(json_string_value(json_object_get(push, "fw_version")), version);
        TT_CHECK_EQ_INT(json_integer_value(json_object_get(push, "fw_size")), (long long)len);
        TT_CHECK_EQ_STR(json_string_value(json_object_get(push, "fw_checksum_algorithm")), algos[a]);
        json_decref(push);
        /* The SDK's way: ask for the fw_ attributes, then download. */
        char t[96];
        snprintf(t, sizeof t, "v1/devices/me/attributes/request/%zu", 100 + a);
        TT_CHECK_EQ_INT(dev_pub(&d, t, "{\"sharedKeys\":\"fw_checksum,fw_checksum_algorithm,fw_size,"
                                       "fw_title,fw_version\"}"), TT_OK);
        snprintf(t, sizeof t, "v1/devices/me/attributes/response/%zu", 100 + a);
        json_t *r = dev_json(&d, t, 0);
        json_t *sh = json_object_get(r, "shared");
        TT_CHECK_EQ_INT(json_object_size(sh), 5);
        const char *sum = json_string_value(json_object_get(sh, "fw_checksum"));
        size_t total = (size_t)json_integer_value(json_object_get(sh, "fw_size"));
        TT_CHECK_EQ_INT(total, len);
        size_t got, chunks;
        uint8_t *back = fetch(&d, ++rid, "1024", total, &got, &chunks);
        TT_CHECK_EQ_INT(got, len);
        TT_CHECK_EQ_INT(chunks, 10);
        TT_CHECK(back && memcmp(back, img, len) == 0);
        char want[TB_CHECKSUM_HEX_MAX] = "";
        if (strncmp(algos[a], "SHA", 3) == 0 || strcmp(algos[a], "MD5") == 0) {
            char prog[16];
            snprintf(prog, sizeof prog, "%s", strcmp(algos[a], "MD5") == 0 ? "md5sum"
                                              : strcmp(algos[a], "SHA256") == 0 ? "sha256sum"
                                              : strcmp(algos[a], "SHA384") == 0 ? "sha384sum"
                                                                                : "sha512sum");
            TT_CHECK_MSG(coreutils_digest(prog, back, got, want, sizeof want), "%s", prog);
        } else if (strcmp(algos[a], "CRC32") == 0) {
            uint32_t c = crc32_bitwise(back, got);
            snprintf(want, sizeof want, "%02x%02x%02x%02x", c & 0xff, (c >> 8) & 0xff, (c >> 16) & 0xff,
                     c >> 24);
        } else {
            /* MurmurHash3 is pinned to published vectors in checksum_vectors. */
            TT_CHECK_EQ_INT(tb_checksum_hex(algos[a], back, got, want), 0);
        }
        TT_CHECK_MSG(sum && strcmp(sum, want) == 0, "%s: %s vs %s", algos[a], sum ? sum : "(null)", want);
        free(back);
        json_decref(r);
    }
    /* The whole image in one chunk (empty size), and past the end: empty. */
    size_t got, chunks;
    uint8_t *back = fetch(&d, ++rid, "", len, &got, &chunks);
    TT_CHECK_EQ_INT(got, len);
    TT_CHECK_EQ_INT(chunks, 1);
    TT_CHECK(back && memcmp(back, img, len) == 0);
    free(back);
    TT_CHECK_EQ_INT(dev_pub(&d, "v2/fw/request/77/chunk/10", "1024"), TT_OK);
    const rx *end = dev_nth(&d, "v2/fw/response/77/chunk/10", 0);
    TT_CHECK(end && end->len == 0);
    /* A size that is not a number: an error line. */
    size_t errors = dev_count(&d, "v2/fw/error");
    TT_CHECK_EQ_INT(dev_pub(&d, "v2/fw/request/78/chunk/0", "abc"), TT_OK);
    TT_CHECK(dev_nth(&d, "v2/fw/error", errors) != NULL);
    json_t *reqs = tb_emu_fw_requests(e);
    json_t *last = json_array_get(reqs, json_array_size(reqs) - 1);
    TT_CHECK_EQ_INT(json_integer_value(json_object_get(last, "sent")), -1);
    json_decref(reqs);

    /* corrupt: the checksum does not match the image. */
    size_t pushes = dev_count(&d, "v1/devices/me/attributes");
    TT_CHECK_EQ_INT(tb_emu_set_firmware(e, "app", "3.0", img, len, "SHA256", true, true), 0);
    json_t *push = dev_json(&d, "v1/devices/me/attributes", pushes);
    char good[TB_CHECKSUM_HEX_MAX];
    TT_CHECK_EQ_INT(tb_checksum_hex("SHA256", img, len, good), 0);
    const char *bad = json_string_value(json_object_get(push, "fw_checksum"));
    TT_CHECK(bad && strlen(bad) == 64 && strcmp(bad, good) != 0);
    json_decref(push);
    TT_CHECK_EQ_INT(tb_emu_set_firmware(e, "app", "3.0", img, len, "SHA1", false, false), -1);

    /* fw_state reports, in every telemetry form. */
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/telemetry", "{\"fw_state\":\"DOWNLOADING\"}"), TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/telemetry",
                            "[{\"fw_state\":\"DOWNLOADED\"},{\"ts\":5,\"values\":{\"fw_state\":\"VERIFIED\"}}]"),
                    TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/telemetry",
                            "{\"current_fw_title\":\"app\",\"current_fw_version\":\"3.0\",\"fw_state\":\"UPDATED\"}"),
                    TT_OK);
    TT_CHECK_EQ_INT(tb_emu_wait(e, "fw_states", NULL, 4, TT_WAIT_MS), 0);
    json_t *st = tb_emu_fw_states(e);
    CHECK_JSON(st, "[\"DOWNLOADING\",\"DOWNLOADED\",\"VERIFIED\",\"UPDATED\"]");
    json_decref(st);
    /* The broker saw the subscription that matches chunk topics; never the one that does not. */
    TT_CHECK(tb_broker_saw_subscription(&g_tb, "v2/fw/response/+/chunk/+"));
    TT_CHECK(!tb_broker_saw_subscription(&g_tb, "v2/fw/response/+"));
    free(img);
    dev_close(&d);
    tb_emu_free(e);
    teardown();
}

/* ---- 7.10 Gateway ------------------------------------------------------------------------------- */

static void test_gateway(void) {
    TT_REQUIRE(setup());
    tb_emu *e = emu(TB_EMU_GATEWAY);
    TT_REQUIRE(e);
    dev g;
    TT_REQUIRE(dev_up(&g, GW_TOKEN, TT_MQTT_5));
    TT_REQUIRE(dev_sub(&g, "v1/gateway/attributes") == TT_OK);
    TT_REQUIRE(dev_sub(&g, "v1/gateway/attributes/response") == TT_OK);
    TT_REQUIRE(dev_sub(&g, "v1/gateway/rpc") == TT_OK);
    TT_REQUIRE(dev_sub(&g, "v1/gateway/disconnect") == TT_OK);

    /* Not connected yet: nothing is routed to the sub-device. */
    json_t *upd = json_pack("{si}", "rate", 5);
    TT_CHECK_EQ_INT(tb_emu_push_shared(e, "Sensor A", upd), -1);
    tt_future *f = tb_emu_rpc(e, "Sensor A", "ping", NULL, 1000);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_ENOTFOUND);
    tt_future_free(f);

    TT_CHECK_EQ_INT(dev_pub(&g, "v1/gateway/connect", "{\"device\":\"Sensor A\",\"type\":\"thermo\"}"), TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&g, "v1/gateway/connect", "{\"device\":\"Sensor B\"}"), TT_OK);
    TT_CHECK_EQ_INT(tb_emu_wait(e, "gateway_events", NULL, 2, TT_WAIT_MS), 0);
    TT_CHECK(tb_emu_connected(e, "Sensor A") && tb_emu_connected(e, "Sensor B"));
    TT_CHECK_EQ_INT(dev_pub(&g, "v1/gateway/telemetry",
                            "{\"Sensor A\":[{\"ts\":1,\"values\":{\"t\":20}},{\"ts\":2,\"values\":{\"t\":21}}],"
                            "\"Sensor B\":[{\"ts\":3,\"values\":{\"h\":40}}]}"), TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&g, "v1/gateway/attributes", "{\"Sensor A\":{\"model\":\"T1\"},\"Sensor C\":{\"x\":1}}"),
                    TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&g, "v1/devices/me/telemetry", "{\"gw_load\":0.5}"), TT_OK);   /* its own */
    TT_CHECK_EQ_INT(tb_emu_wait(e, "telemetry", "Sensor A", 2, TT_WAIT_MS), 0);
    TT_CHECK_EQ_INT(tb_emu_wait(e, "telemetry", "Sensor B", 1, TT_WAIT_MS), 0);
    TT_CHECK_EQ_INT(tb_emu_wait(e, "attributes", "Sensor C", 1, TT_WAIT_MS), 0);
    TT_CHECK_EQ_INT(tb_emu_wait(e, "telemetry", NULL, 1, TT_WAIT_MS), 0);
    json_t *t = tb_emu_telemetry(e, "Sensor A");
    CHECK_JSON(t, "[{\"ts\":1,\"values\":{\"t\":20}},{\"ts\":2,\"values\":{\"t\":21}}]");
    json_decref(t);
    t = tb_emu_telemetry(e, NULL);
    CHECK_JSON(t, "[{\"gw_load\":0.5}]");
    json_decref(t);
    json_t *a = tb_emu_attributes(e, "Sensor A");
    CHECK_JSON(a, "[{\"model\":\"T1\"}]");
    json_decref(a);
    TT_CHECK(tb_emu_connected(e, "Sensor C"));      /* auto-created by its attributes */

    /* Attribute requests: value for one key, values for several. */
    json_t *sh = json_pack("{sisi}", "rate", 1, "limit", 9);
    tb_emu_set_shared_attrs(e, "Sensor A", sh);
    json_decref(sh);
    TT_CHECK_EQ_INT(dev_pub(&g, "v1/gateway/attributes/request",
                            "{\"id\":1,\"device\":\"Sensor A\",\"client\":false,\"key\":\"rate\"}"), TT_OK);
    json_t *r = dev_json(&g, "v1/gateway/attributes/response", 0);
    CHECK_JSON(r, "{\"id\":1,\"device\":\"Sensor A\",\"value\":1}");
    json_decref(r);
    TT_CHECK_EQ_INT(dev_pub(&g, "v1/gateway/attributes/request",
                            "{\"id\":2,\"device\":\"Sensor A\",\"client\":false,\"keys\":[\"rate\",\"limit\",\"no\"]}"),
                    TT_OK);
    r = dev_json(&g, "v1/gateway/attributes/response", 1);
    CHECK_JSON(r, "{\"id\":2,\"device\":\"Sensor A\",\"values\":{\"rate\":1,\"limit\":9}}");
    json_decref(r);
    TT_CHECK_EQ_INT(dev_pub(&g, "v1/gateway/attributes/request",
                            "{\"id\":3,\"device\":\"Sensor A\",\"client\":true,\"key\":\"model\"}"), TT_OK);
    r = dev_json(&g, "v1/gateway/attributes/response", 2);
    CHECK_JSON(r, "{\"id\":3,\"device\":\"Sensor A\",\"value\":\"T1\"}");
    json_decref(r);
    /* Without "client" the server does not answer; the next request is answered. */
    TT_CHECK_EQ_INT(dev_pub(&g, "v1/gateway/attributes/request", "{\"id\":4,\"device\":\"Sensor A\",\"key\":\"rate\"}"),
                    TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&g, "v1/gateway/attributes/request",
                            "{\"id\":5,\"device\":\"Sensor A\",\"client\":false,\"key\":\"none\"}"), TT_OK);
    r = dev_json(&g, "v1/gateway/attributes/response", 3);
    CHECK_JSON(r, "{\"id\":5,\"device\":\"Sensor A\"}");
    json_decref(r);

    /* Shared push to a sub-device. */
    TT_CHECK_EQ_INT(tb_emu_push_shared(e, "Sensor A", upd), 0);
    r = dev_json(&g, "v1/gateway/attributes", 1);      /* [0]: its own attributes, echoed */
    CHECK_JSON(r, "{\"device\":\"Sensor A\",\"data\":{\"rate\":5}}");
    json_decref(r);
    json_decref(upd);
    const char *keys[] = { "limit" };
    TT_CHECK_EQ_INT(tb_emu_delete_shared(e, "Sensor A", keys, 1), 0);
    r = dev_json(&g, "v1/gateway/attributes", 2);
    CHECK_JSON(r, "{\"device\":\"Sensor A\",\"data\":{\"deleted\":[\"limit\"]}}");
    json_decref(r);
    /* ...and to the gateway itself, on the device topic. */
    upd = json_pack("{ss}", "gwcfg", "on");
    TT_CHECK_EQ_INT(tb_emu_push_shared(e, NULL, upd), 0);
    json_decref(upd);
    r = dev_json(&g, "v1/devices/me/attributes", 0);
    CHECK_JSON(r, "{\"gwcfg\":\"on\"}");
    json_decref(r);

    /* Server-side RPC through the gateway; replies share the topic with requests. */
    json_t *params = json_pack("{sb}", "on", true);
    f = tb_emu_rpc(e, "Sensor B", "setRelay", params, TT_WAIT_MS);
    json_decref(params);
    json_t *req = dev_json(&g, "v1/gateway/rpc", 0);
    TT_CHECK_EQ_STR(json_string_value(json_object_get(req, "device")), "Sensor B");
    json_t *data = json_object_get(req, "data");
    TT_CHECK_EQ_STR(json_string_value(json_object_get(data, "method")), "setRelay");
    CHECK_JSON(json_object_get(data, "params"), "{\"on\":true}");
    json_int_t id = json_integer_value(json_object_get(data, "id"));
    TT_CHECK(id > 0);
    json_decref(req);
    TT_CHECK_EQ_INT(dev_pub_json(&g, "v1/gateway/rpc",
                                 json_pack("{sssIs{sb}}", "device", "Sensor B", "id", id, "data", "on", true)),
                    TT_OK);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
    CHECK_JSON(tt_future_get_ptr(f), "{\"on\":true}");
    tt_future_free(f);
    /* The older reply form {"device","data":{"id","result"}}. */
    f = tb_emu_rpc(e, "Sensor B", "getState", NULL, TT_WAIT_MS);
    req = dev_json(&g, "v1/gateway/rpc", 2);     /* [1] is the gateway's own reply, echoed */
    id = json_integer_value(json_object_get(json_object_get(req, "data"), "id"));
    json_decref(req);
    TT_CHECK_EQ_INT(dev_pub_json(&g, "v1/gateway/rpc",
                                 json_pack("{sss{sIss}}", "device", "Sensor B", "data", "id", id, "result", "idle")),
                    TT_OK);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
    CHECK_JSON(tt_future_get_ptr(f), "\"idle\"");
    tt_future_free(f);
    /* A request-shaped message on v1/gateway/rpc is not taken for a reply. */
    f = tb_emu_rpc(e, "Sensor B", "slow", NULL, 1500);
    TT_CHECK(dev_nth(&g, "v1/gateway/rpc", 4) != NULL);
    TT_CHECK_EQ_INT(dev_pub(&g, "v1/gateway/rpc", "{\"device\":\"Sensor B\",\"data\":{\"method\":\"slow\"}}"), TT_OK);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_ETIMEDOUT);
    tt_future_free(f);
    /* Handled in order: once this telemetry is in, so was the message before it. */
    TT_CHECK_EQ_INT(dev_pub(&g, "v1/gateway/telemetry", "{\"Sensor B\":{\"mark\":1}}"), TT_OK);
    TT_CHECK_EQ_INT(tb_emu_wait(e, "telemetry", "Sensor B", 2, TT_WAIT_MS), 0);
    json_t *rep = tb_emu_rpc_replies(e);
    TT_CHECK_EQ_INT(json_array_size(rep), 2);
    TT_CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(rep, 0), "device")), "Sensor B");
    json_decref(rep);

    /* Claims, disconnect, and the server's own disconnect notice. */
    TT_CHECK_EQ_INT(dev_pub(&g, "v1/gateway/claim", "{\"Sensor A\":{\"secretKey\":\"s1\",\"durationMs\":60000}}"),
                    TT_OK);
    TT_CHECK_EQ_INT(tb_emu_wait(e, "claims", "Sensor A", 1, TT_WAIT_MS), 0);
    json_t *cl = tb_emu_claims(e, "Sensor A");
    CHECK_JSON(cl, "[{\"secretKey\":\"s1\",\"durationMs\":60000}]");
    json_decref(cl);
    TT_CHECK_EQ_INT(dev_pub(&g, "v1/gateway/disconnect", "{\"device\":\"Sensor B\"}"), TT_OK);
    TT_CHECK_EQ_INT(tb_emu_wait(e, "gateway_events", NULL, 3, TT_WAIT_MS), 0);
    TT_CHECK(!tb_emu_connected(e, "Sensor B"));
    TT_CHECK_EQ_INT(tb_emu_kick_device(e, "Sensor A", 150), 0);
    r = dev_json(&g, "v1/gateway/disconnect", 1);      /* [0]: its own disconnect, echoed */
    CHECK_JSON(r, "{\"device\":\"Sensor A\",\"reason\":150}");
    json_decref(r);
    TT_CHECK(!tb_emu_connected(e, "Sensor A"));
    json_t *ev = tb_emu_gateway_events(e);
    CHECK_JSON(ev, "[{\"event\":\"connect\",\"device\":\"Sensor A\",\"type\":\"thermo\"},"
                   "{\"event\":\"connect\",\"device\":\"Sensor B\"},"
                   "{\"event\":\"disconnect\",\"device\":\"Sensor B\"}]");
    json_decref(ev);
    dev_close(&g);
    tb_emu_free(e);
    teardown();
}

/* ---- 7.11 Claims ---------------------------------------------------------------------------------- */

static void test_claims(void) {
    TT_REQUIRE(setup());
    tb_emu *e = emu(TB_EMU_DEVICE);
    TT_REQUIRE(e);
    dev d;
    TT_REQUIRE(dev_up(&d, DEV_TOKEN, TT_MQTT_311));
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/claim", "{\"secretKey\":\"abc\",\"durationMs\":30000}"), TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/claim", "{}"), TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/claim", ""), TT_OK);
    TT_CHECK_EQ_INT(tb_emu_wait(e, "claims", NULL, 3, TT_WAIT_MS), 0);
    json_t *cl = tb_emu_claims(e, NULL);
    CHECK_JSON(cl, "[{\"secretKey\":\"abc\",\"durationMs\":30000},{},{}]");
    json_decref(cl);
    dev_close(&d);
    tb_emu_free(e);
    teardown();
}

/* ---- 7.12 Silent mode --------------------------------------------------------------------------- */

static void test_silent(void) {
    TT_REQUIRE(setup());
    tb_emu *e = emu(TB_EMU_DEVICE);
    TT_REQUIRE(e);
    json_t *tok = json_string(DEV2_TOKEN);
    tb_emu_add_provision(e, "k", "s", 0, tok);
    json_decref(tok);
    static const uint8_t img[] = { 1, 0, 2, 0, 3 };
    TT_REQUIRE(tb_emu_set_firmware(e, "t", "1", img, sizeof img, "CRC32", false, false) == 0);
    dev d, p;
    TT_REQUIRE(dev_up(&d, DEV_TOKEN, TT_MQTT_311));
    TT_REQUIRE(dev_sub(&d, "v2/fw/response/+/chunk/+") == TT_OK);
    TT_REQUIRE(dev_open(&p, TB_BROKER_PROVISION_USER, TB_BROKER_TOKEN_PASSWORD, TT_MQTT_311, NULL) == TT_OK);
    TT_REQUIRE(dev_sub(&p, "/provision/response") == TT_OK);

    tb_emu_set_silent(e, true);
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/attributes/request/1", "{}"), TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/rpc/request/1", "{\"method\":\"getSessionLimits\",\"params\":{}}"),
                    TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&d, "v2/fw/request/1/chunk/0", ""), TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&p, "/provision/request", "{\"provisionDeviceKey\":\"k\",\"provisionDeviceSecret\":\"s\"}"),
                    TT_OK);
    /* Recorded all the same: once they are, the emulator has handled them. */
    TT_CHECK_EQ_INT(tb_emu_wait(e, "client_rpcs", NULL, 1, TT_WAIT_MS), 0);
    TT_CHECK_EQ_INT(tb_emu_wait(e, "fw_requests", NULL, 1, TT_WAIT_MS), 0);
    TT_CHECK_EQ_INT(tb_emu_wait(e, "provisions", NULL, 1, TT_WAIT_MS), 0);
    /* Telemetry is still taken in. */
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/telemetry", "{\"t\":1}"), TT_OK);
    TT_CHECK_EQ_INT(tb_emu_wait(e, "telemetry", NULL, 1, TT_WAIT_MS), 0);

    tb_emu_set_silent(e, false);
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/attributes/request/2", "{}"), TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/rpc/request/2", "{\"method\":\"getSessionLimits\",\"params\":{}}"),
                    TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&d, "v2/fw/request/2/chunk/0", ""), TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&p, "/provision/request", "{\"provisionDeviceKey\":\"k\",\"provisionDeviceSecret\":\"s\"}"),
                    TT_OK);
    /* The answers to the second round arrive; the first round never got any
     * (the emulator handles messages in order, so it would have come first). */
    TT_CHECK(dev_nth(&d, "v1/devices/me/attributes/response/2", 0) != NULL);
    TT_CHECK(dev_nth(&d, "v1/devices/me/rpc/response/2", 0) != NULL);
    const rx *c = dev_nth(&d, "v2/fw/response/2/chunk/0", 0);
    TT_CHECK(c && c->len == sizeof img && memcmp(c->payload, img, sizeof img) == 0);
    TT_CHECK(dev_nth(&p, "/provision/response", 0) != NULL);
    TT_CHECK_EQ_INT(dev_count(&d, "v1/devices/me/attributes/response/1"), 0);
    TT_CHECK_EQ_INT(dev_count(&d, "v1/devices/me/rpc/response/1"), 0);
    TT_CHECK_EQ_INT(dev_count(&d, "v2/fw/response/1/*"), 0);
    TT_CHECK_EQ_INT(dev_count(&p, "/provision/response"), 1);
    dev_close(&p);
    dev_close(&d);
    tb_emu_free(e);
    teardown();
}

/* ---- Bad input: never a crash, and the emulator keeps answering ------------------------------- */

static void test_bad_input(void) {
    TT_REQUIRE(setup());
    tb_emu *e = emu(TB_EMU_GATEWAY);
    TT_REQUIRE(e);
    static const uint8_t fw[] = { 0, 1, 2 };
    TT_REQUIRE(tb_emu_set_firmware(e, "t", "1", fw, sizeof fw, "MD5", false, false) == 0);
    dev g;
    TT_REQUIRE(dev_up(&g, GW_TOKEN, TT_MQTT_311));
    static const char *const topics[] = {
        "v1/devices/me/telemetry", "v1/devices/me/attributes", "v1/devices/me/attributes/request/1",
        "v1/devices/me/attributes/request/x", "v1/devices/me/attributes/request/99999999999999999999",
        "v1/devices/me/rpc/request/2", "v1/devices/me/rpc/request/-1", "v1/devices/me/rpc/response/3",
        "v1/devices/me/rpc/response/abc", "v1/devices/me/claim", "v2/fw/request/1/chunk/x",
        "v2/fw/request/x/chunk/1", "v2/fw/request/1/chunk/99999999999999999999", "v2/fw/request/1/chunk/0",
        "v2/fw/request/1/chunk/18446744073709551615", "v2/fw/request/-1/chunk/0", "v2/fw/request/1/chunk/-2",
        "v2/fw/request/ 1/chunk/0", "v1/gateway/connect", "v1/gateway/disconnect",
        "v1/gateway/telemetry", "v1/gateway/attributes", "v1/gateway/attributes/request",
        "v1/gateway/rpc", "v1/gateway/claim",
    };
    static const char *const payloads[] = {
        "", "not json", "[]", "{}", "null", "42", "\"text\"", "[1,2,{\"a\":[]}]", "{\"a\":",
        "{\"method\":7,\"params\":[]}", "{\"device\":[],\"type\":{}}", "{\"id\":\"1\",\"device\":5}",
        "{\"id\":1,\"device\":\"d\",\"client\":[1,2],\"shared\":\"x\"}",
        "{\"id\":1,\"device\":\"d\",\"client\":true,\"keys\":\"a,b\"}",
        "{\"device\":\"d\",\"data\":{\"id\":\"x\"}}", "{\"clientKeys\":5,\"sharedKeys\":[1,null]}",
        "{\"d\":[1,\"x\",null]}", "18446744073709551616", "-5",
    };
    for (size_t t = 0; t < sizeof topics / sizeof topics[0]; t++)
        for (size_t p = 0; p < sizeof payloads / sizeof payloads[0]; p++)
            TT_CHECK_EQ_INT(dev_pub(&g, topics[t], payloads[p]), TT_OK);
    char bin[300];
    for (size_t i = 0; i < sizeof bin; i++) bin[i] = (char)(i * 7);
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(g.c, "v1/gateway/rpc", bin, sizeof bin, TT_QOS1, false)), TT_OK);
    /* Still answering. */
    TT_CHECK_EQ_INT(dev_pub(&g, "v1/devices/me/rpc/request/500", "{\"method\":\"getSessionLimits\"}"), TT_OK);
    json_t *r = dev_json(&g, "v1/devices/me/rpc/response/500", 0);
    TT_CHECK(json_is_object(json_object_get(r, "rateLimits")));
    json_decref(r);
    /* Only well-formed chunk requests were answered. The emulator takes its
     * messages in order, so with the answer above it has seen them all. */
    json_t *fr = tb_emu_fw_requests(e);
    size_t i;
    json_t *x;
    json_array_foreach(fr, i, x) {
        TT_CHECK_EQ_INT(json_integer_value(json_object_get(x, "request_id")), 1);
        json_int_t chunk = json_integer_value(json_object_get(x, "chunk"));
        TT_CHECK(chunk == 0 || chunk == (json_int_t)-1);   /* 2^64-1 reads back as -1 */
    }
    TT_CHECK(json_array_size(fr) > 0);
    json_decref(fr);
    dev_close(&g);
    tb_emu_free(e);
    teardown();
}

/* ---- The standalone program ---------------------------------------------------------------------- */

#ifdef TB_EMULATOR_PATH
static bool file_has(const char *path, const char *text) {
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

static void test_program(void) {
    TT_REQUIRE(setup());
    char dir[300], fw[340], out[340], port[16];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/tt-tbprog-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    TT_REQUIRE(mkdtemp(dir));
    snprintf(fw, sizeof fw, "%s/fw.bin", dir);
    snprintf(out, sizeof out, "%s/out.txt", dir);
    snprintf(port, sizeof port, "%d", g_tb.b.port);
    static const uint8_t img[] = { 0xde, 0xad, 0, 0, 0xbe, 0xef, 0, 1, 2 };
    FILE *f = fopen(fw, "wb");
    TT_REQUIRE(f);
    TT_REQUIRE(fwrite(img, 1, sizeof img, f) == sizeof img);
    fclose(f);
    char *argv[] = { (char *)TB_EMULATOR_PATH, (char *)"-h", (char *)"127.0.0.1", (char *)"-p", port,
                     (char *)"--user", (char *)TB_BROKER_SERVER_USER, (char *)"-P",
                     (char *)TB_BROKER_SERVER_PASSWORD, (char *)"--firmware", fw, (char *)"--fw-title",
                     (char *)"app", (char *)"--fw-version", (char *)"9.9", (char *)"--fw-algo",
                     (char *)"CRC32", (char *)"--shared", (char *)"{\"mode\":\"eco\"}", (char *)"--rpc",
                     (char *)"getTime={\"t\":1}", NULL };
    pid_t pid = tt_broker_spawn(argv, out);
    TT_REQUIRE(pid > 0);
    bool ready = false;
    for (int i = 0; i < TT_WAIT_MS / 20 && !ready; i++) {
        ready = file_has(out, "serving a device");
        if (!ready) usleep(20000);
    }
    TT_CHECK_MSG(ready, "no 'serving' line in %s", out);
    dev d;
    TT_CHECK(dev_up(&d, DEV_TOKEN, TT_MQTT_311));
    TT_CHECK_EQ_INT(dev_sub(&d, "v2/fw/response/+/chunk/+"), TT_OK);
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/attributes/request/1",
                            "{\"sharedKeys\":\"mode,fw_title,fw_version,fw_size,fw_checksum\"}"), TT_OK);
    json_t *r = dev_json(&d, "v1/devices/me/attributes/response/1", 0);
    char sum[TB_CHECKSUM_HEX_MAX];
    uint32_t c = crc32_bitwise(img, sizeof img);
    snprintf(sum, sizeof sum, "%02x%02x%02x%02x", c & 0xff, (c >> 8) & 0xff, (c >> 16) & 0xff, c >> 24);
    json_t *want = json_pack("{s{sssssssiss}}", "shared", "mode", "eco", "fw_title", "app", "fw_version",
                             "9.9", "fw_size", (int)sizeof img, "fw_checksum", sum);
    TT_CHECK(json_equal(r, want));
    json_decref(want);
    json_decref(r);
    TT_CHECK_EQ_INT(dev_pub(&d, "v1/devices/me/rpc/request/2", "{\"method\":\"getTime\",\"params\":{}}"), TT_OK);
    r = dev_json(&d, "v1/devices/me/rpc/response/2", 0);
    CHECK_JSON(r, "{\"t\":1}");
    json_decref(r);
    TT_CHECK_EQ_INT(dev_pub(&d, "v2/fw/request/1/chunk/1", "4"), TT_OK);
    const rx *chunk = dev_nth(&d, "v2/fw/response/1/chunk/1", 0);
    TT_CHECK(chunk && chunk->len == 4 && memcmp(chunk->payload, img + 4, 4) == 0);
    dev_close(&d);
    TT_CHECK_EQ_INT(kill(pid, SIGINT), 0);
    TT_CHECK_EQ_INT(tt_broker_waitpid(pid, TT_WAIT_MS), 0);
    TT_CHECK(file_has(out, "attribute request 1"));
    TT_CHECK(file_has(out, "client RPC 2 getTime answered"));
    TT_CHECK(file_has(out, "firmware request 1 chunk 1: 4 bytes"));
    /* A bad option is a usage error. */
    char *bad[] = { (char *)TB_EMULATOR_PATH, (char *)"--nope", NULL };
    TT_CHECK_EQ_INT(tt_broker_run(bad, NULL, TT_WAIT_MS), 2);
    remove(fw);
    remove(out);
    rmdir(dir);
    teardown();
}
#endif

TT_TEST_LIST = {
    { "checksum_vectors", test_checksum_vectors },
    { "auth", test_auth },
    { "acl", test_acl },
    { "telemetry_forms", test_telemetry_forms },
    { "attribute_request", test_attribute_request },
    { "server_rpc", test_server_rpc },
    { "client_rpc", test_client_rpc },
    { "shared_push", test_shared_push },
    { "provisioning", test_provisioning },
    { "firmware", test_firmware },
    { "gateway", test_gateway },
    { "claims", test_claims },
    { "silent", test_silent },
    { "bad_input", test_bad_input },
#ifdef TB_EMULATOR_PATH
    { "program", test_program },
#endif
    { NULL, NULL },
};
