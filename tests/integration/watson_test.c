/* The Watson IoT clients (device, gateway, application) against mosquitto
 * with the Watson IoT emulator plugin (tests/emulators/watson): the
 * platform's credentials, topic rewriting between the device and
 * application views, status messages and payload limit. One broker per
 * test. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/codec.h>
#include <tether/tether.h>
#include <tether/sim.h>
#include <tether/watson.h>
#include <unistd.h>

#include "broker.h"
#include "tt_test.h"
#include "tt_wait.h"
#include "platforms/watson/wiotp_internal.h"
#include "wiotp_emu.h"

#define ORG "myorg1"
#define KEY "a-myorg1-k3y"
#define CREDS                                                                      \
    "device " ORG " sensor s1 tok-s1\n"                                            \
    "device " ORG " sensor s2 tok-s2\n"                                            \
    "gateway " ORG " gw g1 tok-g1\n"                                               \
    "apikey " KEY " tok-app\n"

static tt_runtime *g_rt;

/* ---- What a client received ------------------------------------------------- */

#define MAX_SEEN 256
typedef struct seen_msg {
    tt_wiotp_kind kind;
    char type[64], device[64], id[64], format[32], topic[256];
    char payload[512];                /* NUL-terminated copy (truncated) */
    size_t len;
    char data[512];                   /* compact JSON of data, "" when NULL */
    tt_err decode_err;
    bool retained;
    int64_t ts_ms;
} seen_msg;

typedef struct recorder {
    pthread_mutex_t lock;
    int n;
    seen_msg m[MAX_SEEN];
} recorder;

static void rec_init(recorder *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
}

static void on_msg(tt_wiotp *w, const tt_wiotp_msg *m, void *arg) {
    (void)w;
    recorder *r = arg;
    char *j = m->data ? json_dumps(m->data, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS) : NULL;
    pthread_mutex_lock(&r->lock);
    if (r->n < MAX_SEEN) {
        seen_msg *s = &r->m[r->n++];
        s->kind = m->kind;
        snprintf(s->type, sizeof s->type, "%s", m->type_id);
        snprintf(s->device, sizeof s->device, "%s", m->device_id);
        snprintf(s->id, sizeof s->id, "%s", m->id);
        snprintf(s->format, sizeof s->format, "%s", m->format);
        snprintf(s->topic, sizeof s->topic, "%s", m->topic);
        size_t n = m->len < sizeof s->payload - 1 ? m->len : sizeof s->payload - 1;
        memcpy(s->payload, m->payload, n);
        s->payload[n] = '\0';
        s->len = m->len;
        snprintf(s->data, sizeof s->data, "%s", j ? j : "");
        s->decode_err = m->decode_err;
        s->retained = m->retained;
        s->ts_ms = m->ts_ms;
    }
    pthread_mutex_unlock(&r->lock);
    free(j);
}

static bool rec_wait(recorder *r, int n) { return tt_wait_count(&r->lock, &r->n, n); }

/* The first message of `kind` whose id is `id` (NULL: any), or NULL. */
static const seen_msg *rec_find(recorder *r, tt_wiotp_kind kind, const char *device,
                                const char *id) {
    const seen_msg *out = NULL;
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < r->n && !out; i++)
        if (r->m[i].kind == kind && (!device || !strcmp(r->m[i].device, device)) &&
            (!id || !strcmp(r->m[i].id, id)))
            out = &r->m[i];
    pthread_mutex_unlock(&r->lock);
    return out;
}

static const seen_msg *rec_wait_find(recorder *r, tt_wiotp_kind kind, const char *device,
                                     const char *id) {
    const seen_msg *s = NULL;
    for (int i = 0; i < TT_WAIT_MS / 5 && !(s = rec_find(r, kind, device, id)); i++) usleep(5000);
    return s;
}

/* ---- Clients ------------------------------------------------------------------ */

static tt_broker g_b;

static void base_opts(tt_wiotp_opts *o, tt_wiotp_role role, recorder *r) {
    *o = TT_OPTS_INIT(tt_wiotp_opts);
    o->role = role;
    o->host = "127.0.0.1";
    o->port = (uint16_t)g_b.port;
    o->tls = TT_WIOTP_TLS_OFF;
    o->on_message = on_msg;
    o->on_message_arg = r;
}

static tt_wiotp *dev_new(const char *type, const char *id, const char *token, recorder *r) {
    tt_wiotp_opts o;
    base_opts(&o, TT_WIOTP_DEVICE, r);
    o.org = ORG;
    o.type_id = type;
    o.device_id = id;
    o.token = token;
    tt_wiotp *w = NULL;
    TT_CHECK_EQ_INT(tt_wiotp_new(g_rt, &o, &w), TT_OK);
    return w;
}

static tt_wiotp *gw_new(recorder *r) {
    tt_wiotp_opts o;
    base_opts(&o, TT_WIOTP_GATEWAY, r);
    o.org = ORG;
    o.type_id = "gw";
    o.device_id = "g1";
    o.token = "tok-g1";
    tt_wiotp *w = NULL;
    TT_CHECK_EQ_INT(tt_wiotp_new(g_rt, &o, &w), TT_OK);
    return w;
}

static tt_wiotp *app_new(const char *app_id, recorder *r) {
    tt_wiotp_opts o;
    base_opts(&o, TT_WIOTP_APP, r);
    o.api_key = KEY;
    o.token = "tok-app";
    o.app_id = app_id;
    tt_wiotp *w = NULL;
    TT_CHECK_EQ_INT(tt_wiotp_new(g_rt, &o, &w), TT_OK);
    return w;
}

static bool up(void) {
    if (!g_rt && tt_runtime_new(&g_rt, NULL) != TT_OK) return false;
    if (tt_wiotp_emu_start(&g_b, CREDS) != 0) {
        tt_broker_dump_log(&g_b, stderr);
        return false;
    }
    return true;
}

static void down(void) { tt_broker_free(&g_b); }

static tt_err sub(tt_wiotp *w, tt_wiotp_kind kind, const char *type, const char *dev,
                  const char *id) {
    tt_wiotp_filter f = TT_OPTS_INIT(tt_wiotp_filter);
    f.kind = kind;
    f.type_id = type;
    f.device_id = dev;
    f.id = id;
    f.qos = TT_QOS1;
    return tt_wait_free(tt_wiotp_subscribe(w, &f));
}

/* ---- Tests ------------------------------------------------------------------------ */

/* A device's events in each built-in format reach an application as
 * iot-2/type/T/id/D/evt/E/fmt/F, decoded by the format. */
static void test_device_events(void) {
    TT_REQUIRE(up());
    recorder rd, ra;
    rec_init(&rd);
    rec_init(&ra);
    tt_wiotp *d = dev_new("sensor", "s1", "tok-s1", &rd), *a = app_new("app1", &ra);
    TT_REQUIRE(d && a);
    TT_CHECK_EQ_STR(tt_wiotp_client_id(d), "d:" ORG ":sensor:s1");
    TT_CHECK_EQ_STR(tt_wiotp_client_id(a), "a:" ORG ":app1");
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(a)) == TT_OK);
    TT_REQUIRE(sub(a, TT_WIOTP_EVENT, NULL, NULL, NULL) == TT_OK);
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(d)) == TT_OK);
    TT_CHECK(tt_wiotp_connected(d));

    json_t *v = json_pack("{s:f,s:s}", "temp", 21.5, "unit", "C");
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_event(d, NULL, NULL, "reading", "json", v, TT_QOS1)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_event(d, NULL, NULL, "legacy", "json-iotf", v, TT_QOS1)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_event(d, NULL, NULL, "packed", "msgpack", v, TT_QOS0)), TT_OK);
    json_t *txt = json_string("héllo");
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_event(d, NULL, NULL, "note", "utf8", txt, TT_QOS1)), TT_OK);
    static const uint8_t bin[] = { 0, 1, 2, 0xff, 0x80 };
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_event_raw(d, NULL, NULL, "blob", "raw", bin, sizeof bin, TT_QOS1)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_event_raw(d, NULL, NULL, "odd", "weird", "xyz", 3, TT_QOS1)), TT_OK);
    TT_REQUIRE(rec_wait(&ra, 6));

    const seen_msg *s = rec_find(&ra, TT_WIOTP_EVENT, "s1", "reading");
    TT_REQUIRE(s);
    TT_CHECK_EQ_STR(s->topic, "iot-2/type/sensor/id/s1/evt/reading/fmt/json");
    TT_CHECK_EQ_STR(s->type, "sensor");
    TT_CHECK_EQ_STR(s->format, "json");
    TT_CHECK_EQ_STR(s->data, "{\"temp\":21.5,\"unit\":\"C\"}");
    TT_CHECK_EQ_INT(s->decode_err, TT_OK);
    TT_CHECK(!s->retained);
    s = rec_find(&ra, TT_WIOTP_EVENT, "s1", "legacy");
    TT_REQUIRE(s);
    TT_CHECK_EQ_STR(s->data, "{\"temp\":21.5,\"unit\":\"C\"}");   /* the envelope's "d" */
    TT_CHECK(strstr(s->payload, "\"ts\":") != NULL);
    s = rec_find(&ra, TT_WIOTP_EVENT, "s1", "packed");
    TT_REQUIRE(s);
    TT_CHECK_EQ_STR(s->data, "{\"temp\":21.5,\"unit\":\"C\"}");
    TT_CHECK(s->payload[0] != '{');                                /* MessagePack on the wire */
    s = rec_find(&ra, TT_WIOTP_EVENT, "s1", "note");
    TT_REQUIRE(s);
    TT_CHECK_EQ_STR(s->payload, "héllo");
    TT_CHECK_EQ_STR(s->data, "\"héllo\"");
    s = rec_find(&ra, TT_WIOTP_EVENT, "s1", "blob");
    TT_REQUIRE(s);
    TT_CHECK_EQ_INT(s->len, sizeof bin);
    TT_CHECK(memcmp(s->payload, bin, sizeof bin) == 0);
    s = rec_find(&ra, TT_WIOTP_EVENT, "s1", "odd");   /* no codec: bytes kept, no data */
    TT_REQUIRE(s);
    TT_CHECK_EQ_INT(s->decode_err, TT_ENOTFOUND);
    TT_CHECK_EQ_STR(s->data, "");
    TT_CHECK_EQ_STR(s->payload, "xyz");

    json_decref(v);
    json_decref(txt);
    tt_wiotp_free(d);
    tt_wiotp_free(a);
    down();
}

/* An application's command reaches the one device it names, in the device
 * view (iot-2/cmd/C/fmt/F), with the device's own type and id. */
static void test_commands_to_device(void) {
    TT_REQUIRE(up());
    recorder r1, r2, ra;
    rec_init(&r1);
    rec_init(&r2);
    rec_init(&ra);
    tt_wiotp *d1 = dev_new("sensor", "s1", "tok-s1", &r1), *d2 = dev_new("sensor", "s2", "tok-s2", &r2);
    tt_wiotp *a = app_new("app1", &ra);
    TT_REQUIRE(d1 && d2 && a);
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(d1)) == TT_OK);
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(d2)) == TT_OK);
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(a)) == TT_OK);
    json_t *v = json_pack("{s:i}", "interval", 5);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_command(a, "sensor", "s1", "setInterval", "json", v, TT_QOS1)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_command_raw(a, "sensor", "s1", "reboot", "text", "now", 3, TT_QOS1)), TT_OK);
    TT_REQUIRE(rec_wait(&r1, 2));
    const seen_msg *s = rec_find(&r1, TT_WIOTP_COMMAND, NULL, "setInterval");
    TT_REQUIRE(s);
    TT_CHECK_EQ_STR(s->topic, "iot-2/cmd/setInterval/fmt/json");
    TT_CHECK_EQ_STR(s->type, "sensor");
    TT_CHECK_EQ_STR(s->device, "s1");
    TT_CHECK_EQ_STR(s->data, "{\"interval\":5}");
    s = rec_find(&r1, TT_WIOTP_COMMAND, NULL, "reboot");
    TT_REQUIRE(s);
    TT_CHECK_EQ_STR(s->format, "text");
    TT_CHECK_EQ_STR(s->data, "\"now\"");
    usleep(200000);
    TT_CHECK_EQ_INT(tt_locked_int(&r2.lock, &r2.n), 0);     /* not the other device */

    /* devices send no commands; applications only do */
    tt_future *f = tt_wiotp_publish_command(d1, "sensor", "s2", "x", "json", v, TT_QOS0);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_ENOTSUP);
    tt_future_free(f);
    json_decref(v);
    tt_wiotp_free(d1);
    tt_wiotp_free(d2);
    tt_wiotp_free(a);
    down();
}

/* A gateway publishes for itself and for devices behind it, receives their
 * commands on the full topic once subscribed, and its notifications. */
static void test_gateway(void) {
    TT_REQUIRE(up());
    recorder rg, ra;
    rec_init(&rg);
    rec_init(&ra);
    tt_wiotp *g = gw_new(&rg), *a = app_new("app1", &ra);
    TT_REQUIRE(g && a);
    TT_CHECK_EQ_STR(tt_wiotp_client_id(g), "g:" ORG ":gw:g1");
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(a)) == TT_OK);
    TT_REQUIRE(sub(a, TT_WIOTP_EVENT, NULL, NULL, NULL) == TT_OK);
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(g)) == TT_OK);
    TT_CHECK_EQ_INT(sub(g, TT_WIOTP_COMMAND, NULL, NULL, NULL), TT_OK);          /* its own */
    TT_CHECK_EQ_INT(sub(g, TT_WIOTP_COMMAND, "plc", "p7", NULL), TT_OK);          /* a device's */
    TT_CHECK_EQ_INT(sub(g, TT_WIOTP_NOTIFICATION, NULL, NULL, NULL), TT_OK);
    TT_CHECK_EQ_INT(sub(g, TT_WIOTP_EVENT, NULL, NULL, NULL), TT_ENOTSUP);

    json_t *v = json_pack("{s:i}", "n", 1);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_event(g, NULL, NULL, "hb", "json", v, TT_QOS1)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_event(g, "plc", "p7", "level", "json", v, TT_QOS1)), TT_OK);
    TT_REQUIRE(rec_wait(&ra, 2));
    const seen_msg *s = rec_find(&ra, TT_WIOTP_EVENT, "g1", "hb");
    TT_REQUIRE(s);
    TT_CHECK_EQ_STR(s->type, "gw");
    s = rec_find(&ra, TT_WIOTP_EVENT, "p7", "level");
    TT_REQUIRE(s);
    TT_CHECK_EQ_STR(s->topic, "iot-2/type/plc/id/p7/evt/level/fmt/json");

    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_command(a, "plc", "p7", "open", "json", v, TT_QOS1)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_command(a, "gw", "g1", "restart", "json", v, TT_QOS1)), TT_OK);
    /* not subscribed: another device's commands, and a non-json own command */
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_command(a, "plc", "p8", "open", "json", v, TT_QOS1)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_command_raw(a, "gw", "g1", "bin", "raw", "x", 1, TT_QOS1)), TT_OK);
    s = rec_wait_find(&rg, TT_WIOTP_COMMAND, "p7", "open");
    TT_REQUIRE(s);
    TT_CHECK_EQ_STR(s->type, "plc");
    TT_CHECK_EQ_STR(s->data, "{\"n\":1}");
    s = rec_wait_find(&rg, TT_WIOTP_COMMAND, "g1", "restart");
    TT_REQUIRE(s);
    TT_CHECK_EQ_STR(s->type, "gw");

    /* a notification from the platform (the emulator's control topic) */
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(tt_wiotp_client(a), "emu/notify/gw/g1",
                                               "{\"Action\":\"Disconnect\"}", 23, TT_QOS1, false)), TT_OK);
    s = rec_wait_find(&rg, TT_WIOTP_NOTIFICATION, "g1", NULL);
    TT_REQUIRE(s);
    TT_CHECK_EQ_STR(s->data, "{\"Action\":\"Disconnect\"}");
    usleep(200000);
    TT_CHECK(rec_find(&rg, TT_WIOTP_COMMAND, "p8", NULL) == NULL);
    TT_CHECK(rec_find(&rg, TT_WIOTP_COMMAND, "g1", "bin") == NULL);
    json_decref(v);
    tt_wiotp_free(g);
    tt_wiotp_free(a);
    down();
}

/* Connect and disconnect status of devices, as JSON on .../mon. */
static void test_device_status(void) {
    TT_REQUIRE(up());
    recorder rd, ra;
    rec_init(&rd);
    rec_init(&ra);
    tt_wiotp *a = app_new("watcher", &ra);
    TT_REQUIRE(a);
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(a)) == TT_OK);
    TT_REQUIRE(sub(a, TT_WIOTP_DEVICE_STATUS, "sensor", NULL, NULL) == TT_OK);
    tt_wiotp *d = dev_new("sensor", "s2", "tok-s2", &rd);
    TT_REQUIRE(d);
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(d)) == TT_OK);
    const seen_msg *s = rec_wait_find(&ra, TT_WIOTP_DEVICE_STATUS, "s2", NULL);
    TT_REQUIRE(s);
    TT_CHECK(strstr(s->data, "\"Action\":\"Connect\"") != NULL);
    TT_CHECK(strstr(s->data, "\"ClientID\":\"d:" ORG ":sensor:s2\"") != NULL);
    TT_CHECK_EQ_STR(s->type, "sensor");
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_disconnect(d)), TT_OK);
    TT_CHECK(!tt_wiotp_connected(d));
    TT_REQUIRE(rec_wait(&ra, 2));
    pthread_mutex_lock(&ra.lock);
    TT_CHECK(strstr(ra.m[1].data, "\"Action\":\"Disconnect\"") != NULL);
    pthread_mutex_unlock(&ra.lock);
    tt_wiotp_free(d);
    tt_wiotp_free(a);
    down();
}

/* Wrong credentials are refused with TT_EAUTH; identities that cannot be
 * right are refused before any connection. */
static void test_refusals(void) {
    TT_REQUIRE(up());
    recorder r;
    rec_init(&r);
    tt_wiotp *d = dev_new("sensor", "s1", "wrong-token", &r);
    TT_REQUIRE(d);
    tt_future *f = tt_wiotp_connect(d);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_EAUTH);
    tt_future_free(f);
    tt_wiotp_free(d);
    d = dev_new("sensor", "nobody", "tok-s1", &r);   /* a token for another device */
    TT_REQUIRE(d);
    f = tt_wiotp_connect(d);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_EAUTH);
    tt_future_free(f);
    tt_wiotp_free(d);

    tt_wiotp_opts o;
    tt_wiotp *w = NULL;
    base_opts(&o, TT_WIOTP_APP, &r);
    o.api_key = KEY;
    o.token = "bad";
    TT_REQUIRE(tt_wiotp_new(g_rt, &o, &w) == TT_OK);
    f = tt_wiotp_connect(w);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_EAUTH);
    tt_future_free(f);
    tt_wiotp_free(w);

    /* before any connection */
    base_opts(&o, TT_WIOTP_DEVICE, &r);
    o.org = ORG;
    o.type_id = "sensor";
    TT_CHECK_EQ_INT(tt_wiotp_new(g_rt, &o, &w), TT_EINVAL);          /* no device id */
    o.device_id = "a/b";
    o.token = "t";
    TT_CHECK_EQ_INT(tt_wiotp_new(g_rt, &o, &w), TT_EINVAL);          /* '/' in an id */
    o.device_id = "s1";
    o.token = NULL;
    TT_CHECK_EQ_INT(tt_wiotp_new(g_rt, &o, &w), TT_EINVAL);          /* no token */
    o.token = "t";
    o.host = NULL;
    o.port = 1234;
    TT_CHECK_EQ_INT(tt_wiotp_new(g_rt, &o, &w), TT_EINVAL);          /* a port the platform has not */
    o.port = 443;
    TT_CHECK_EQ_INT(tt_wiotp_new(g_rt, &o, &w), TT_OK);
    tt_wiotp_free(w);
    base_opts(&o, TT_WIOTP_APP, &r);
    o.api_key = "a-otherorg-k";
    o.org = ORG;
    o.token = "t";
    TT_CHECK_EQ_INT(tt_wiotp_new(g_rt, &o, &w), TT_EINVAL);          /* key of another org */
    o.api_key = "not-a-key";
    o.org = NULL;
    TT_CHECK_EQ_INT(tt_wiotp_new(g_rt, &o, &w), TT_EINVAL);
    o.api_key = KEY;
    o.token = NULL;
    TT_CHECK_EQ_INT(tt_wiotp_new(g_rt, &o, &w), TT_EINVAL);          /* key without token */
    down();
}

/* Calls a role cannot make, formats without a codec, payloads above the
 * platform's limit: refused at once, the connection kept. */
static void test_misuse(void) {
    TT_REQUIRE(up());
    recorder rd, ra;
    rec_init(&rd);
    rec_init(&ra);
    tt_wiotp *d = dev_new("sensor", "s1", "tok-s1", &rd), *a = app_new("app1", &ra);
    TT_REQUIRE(d && a);
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(d)) == TT_OK);
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(a)) == TT_OK);
    json_t *v = json_pack("{s:i}", "x", 1);
    struct { tt_future *f; tt_err want; } c[] = {
        { tt_wiotp_publish_event(d, NULL, NULL, "e", "no-such-format", v, TT_QOS0), TT_ENOTFOUND },
        { tt_wiotp_publish_event(d, "sensor", "s2", "e", "json", v, TT_QOS0), TT_EINVAL },
        { tt_wiotp_publish_event(d, NULL, NULL, "a/b", "json", v, TT_QOS0), TT_EINVAL },
        { tt_wiotp_publish_event(d, NULL, NULL, "e", "+", v, TT_QOS0), TT_EINVAL },
        { tt_wiotp_publish_event(a, NULL, NULL, "e", "json", v, TT_QOS0), TT_EINVAL },
        { tt_wiotp_publish_event(d, NULL, NULL, "e", "text", v, TT_QOS0), TT_EINVAL },  /* not a string */
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        TT_CHECK_MSG(tt_future_wait(c[i].f, TT_WAIT_MS) == c[i].want, "case %zu: %s", i,
                     tt_err_name(tt_future_result(c[i].f)));
        tt_future_free(c[i].f);
    }
    size_t big = TT_WIOTP_MAX_PAYLOAD + 1;
    char *p = calloc(1, big);
    tt_future *f = tt_wiotp_publish_event_raw(d, NULL, NULL, "e", "raw", p, big, TT_QOS1);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_EINVAL);
    tt_future_free(f);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_event_raw(d, NULL, NULL, "e", "raw", p, big - 1, TT_QOS1)), TT_OK);
    free(p);
    TT_CHECK_EQ_INT(sub(d, TT_WIOTP_COMMAND, NULL, NULL, NULL), TT_ENOTSUP);   /* devices: automatic */
    TT_CHECK_EQ_INT(sub(a, TT_WIOTP_NOTIFICATION, NULL, NULL, NULL), TT_ENOTSUP);
    TT_CHECK_EQ_INT(sub(a, TT_WIOTP_EVENT, "a/b", NULL, NULL), TT_EINVAL);
    TT_CHECK(tt_wiotp_connected(d));
    json_decref(v);
    tt_wiotp_free(d);
    tt_wiotp_free(a);
    down();
}

/* The filters each kind stands for. */
static void test_filter_topics(void) {
    TT_REQUIRE(up());
    recorder r;
    rec_init(&r);
    tt_wiotp *a = app_new("app1", &r), *g = gw_new(&r);
    TT_REQUIRE(a && g);
    char buf[256];
    tt_wiotp_filter f = TT_OPTS_INIT(tt_wiotp_filter);
    static const struct { tt_wiotp_kind k; const char *want; } cases[] = {
        { TT_WIOTP_EVENT, "iot-2/type/+/id/+/evt/+/fmt/+" },
        { TT_WIOTP_COMMAND, "iot-2/type/+/id/+/cmd/+/fmt/+" },
        { TT_WIOTP_DEVICE_STATUS, "iot-2/type/+/id/+/mon" },
        { TT_WIOTP_APP_STATUS, "iot-2/app/+/mon" },
        { TT_WIOTP_DEVICE_STATE, "iot-2/type/+/id/+/intf/+/evt/state" },
        { TT_WIOTP_THING_STATE, "iot-2/thing/type/+/id/+/intf/+/evt/state" },
        { TT_WIOTP_DEVICE_ERROR, "iot-2/type/+/id/+/err/data" },
        { TT_WIOTP_THING_ERROR, "iot-2/thing/type/+/id/+/err/data" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        f.kind = cases[i].k;
        TT_CHECK_EQ_INT(tt_wiotp_filter_topic(a, &f, buf, sizeof buf), (int)strlen(cases[i].want));
        TT_CHECK_EQ_STR(buf, cases[i].want);
    }
    f.kind = TT_WIOTP_EVENT;
    f.type_id = "t";
    f.device_id = "d";
    f.id = "e";
    f.format = "json";
    TT_CHECK(tt_wiotp_filter_topic(a, &f, buf, sizeof buf) > 0);
    TT_CHECK_EQ_STR(buf, "iot-2/type/t/id/d/evt/e/fmt/json");
    TT_CHECK_EQ_INT(tt_wiotp_filter_topic(a, &f, buf, 10), -1);
    f = TT_OPTS_INIT(tt_wiotp_filter);
    f.kind = TT_WIOTP_COMMAND;
    TT_CHECK(tt_wiotp_filter_topic(g, &f, buf, sizeof buf) > 0);
    TT_CHECK_EQ_STR(buf, "iot-2/type/gw/id/g1/cmd/+/fmt/json");
    f.kind = TT_WIOTP_NOTIFICATION;
    TT_CHECK(tt_wiotp_filter_topic(g, &f, buf, sizeof buf) > 0);
    TT_CHECK_EQ_STR(buf, "iot-2/type/gw/id/g1/notify");
    f.type_id = "other";
    f.device_id = "x";
    TT_CHECK_EQ_INT(tt_wiotp_filter_topic(g, &f, buf, sizeof buf), -1);
    tt_wiotp_free(a);
    tt_wiotp_free(g);
    down();
}

/* Quickstart: no credentials; devices publish events only; applications
 * watch one named device and send no commands. */
static void test_quickstart(void) {
    TT_REQUIRE(up());
    recorder rd, ra;
    rec_init(&rd);
    rec_init(&ra);
    tt_wiotp_opts o;
    base_opts(&o, TT_WIOTP_DEVICE, &rd);
    o.org = "quickstart";
    o.type_id = "demo";
    o.device_id = "qs1";
    tt_wiotp *d = NULL, *a = NULL;
    TT_REQUIRE(tt_wiotp_new(g_rt, &o, &d) == TT_OK);
    base_opts(&o, TT_WIOTP_APP, &ra);
    o.app_id = "qsapp";
    TT_REQUIRE(tt_wiotp_new(g_rt, &o, &a) == TT_OK);
    TT_CHECK_EQ_STR(tt_wiotp_client_id(a), "a:quickstart:qsapp");
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(d)) == TT_OK);
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(a)) == TT_OK);
    TT_CHECK_EQ_INT(sub(a, TT_WIOTP_EVENT, NULL, NULL, NULL), TT_ENOTSUP);     /* no '+' device */
    TT_CHECK_EQ_INT(sub(a, TT_WIOTP_DEVICE_ERROR, "demo", "qs1", NULL), TT_ENOTSUP);
    TT_REQUIRE(sub(a, TT_WIOTP_EVENT, "demo", "qs1", NULL) == TT_OK);
    json_t *v = json_pack("{s:i}", "q", 7);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_event(d, NULL, NULL, "status", "json", v, TT_QOS0)), TT_OK);
    const seen_msg *s = rec_wait_find(&ra, TT_WIOTP_EVENT, "qs1", "status");
    TT_REQUIRE(s);
    TT_CHECK_EQ_STR(s->data, "{\"q\":7}");
    tt_future *f = tt_wiotp_publish_command(a, "demo", "qs1", "c", "json", v, TT_QOS0);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_ENOTSUP);
    tt_future_free(f);
    base_opts(&o, TT_WIOTP_GATEWAY, &rd);
    o.org = "quickstart";
    o.type_id = "gw";
    o.device_id = "g";
    tt_wiotp *g = NULL;
    TT_CHECK_EQ_INT(tt_wiotp_new(g_rt, &o, &g), TT_EINVAL);                   /* no Quickstart gateways */
    json_decref(v);
    tt_wiotp_free(d);
    tt_wiotp_free(a);
    down();
}

/* Every subscription comes back after the broker restarts: the device's
 * commands and a gateway's extra subscriptions alike. */
static void test_resubscribe_after_restart(void) {
    TT_REQUIRE(up());
    recorder rd, rg, ra;
    rec_init(&rd);
    rec_init(&rg);
    rec_init(&ra);
    tt_client_opts co = TT_OPTS_INIT(tt_client_opts);
    co.backoff_min_ms = 50;
    co.backoff_max_ms = 200;
    tt_wiotp_opts o;
    base_opts(&o, TT_WIOTP_DEVICE, &rd);
    o.org = ORG;
    o.type_id = "sensor";
    o.device_id = "s1";
    o.token = "tok-s1";
    o.mqtt = &co;
    tt_wiotp *d = NULL;
    TT_REQUIRE(tt_wiotp_new(g_rt, &o, &d) == TT_OK);
    base_opts(&o, TT_WIOTP_GATEWAY, &rg);
    o.org = ORG;
    o.type_id = "gw";
    o.device_id = "g1";
    o.token = "tok-g1";
    o.mqtt = &co;
    tt_wiotp *g = NULL;
    TT_REQUIRE(tt_wiotp_new(g_rt, &o, &g) == TT_OK);
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(d)) == TT_OK);
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(g)) == TT_OK);
    TT_REQUIRE(sub(g, TT_WIOTP_COMMAND, "plc", "p7", NULL) == TT_OK);
    TT_REQUIRE(tt_broker_restart(&g_b) == 0);
    for (int i = 0; i < TT_WAIT_MS / 10 && !(tt_wiotp_connected(d) && tt_wiotp_connected(g)); i++)
        usleep(10000);
    TT_REQUIRE(tt_wiotp_connected(d) && tt_wiotp_connected(g));
    tt_wiotp *a = app_new("app1", &ra);
    TT_REQUIRE(a);
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(a)) == TT_OK);
    /* resubscriptions go out right after CONNACK: retry until they land */
    const seen_msg *sd = NULL, *sg = NULL;
    for (int i = 0; i < 50 && !(sd && sg); i++) {
        if (!sd) tt_future_free(tt_wiotp_publish_command(a, "sensor", "s1", "ping", "json", NULL, TT_QOS1));
        if (!sg) tt_future_free(tt_wiotp_publish_command(a, "plc", "p7", "ping", "json", NULL, TT_QOS1));
        usleep(100000);
        sd = rec_find(&rd, TT_WIOTP_COMMAND, "s1", "ping");
        sg = rec_find(&rg, TT_WIOTP_COMMAND, "p7", "ping");
    }
    TT_CHECK(sd != NULL);
    TT_CHECK(sg != NULL);
    if (sd) TT_CHECK_EQ_INT(sd->len, 0);      /* no data: an empty payload */
    if (sd) TT_CHECK_EQ_STR(sd->data, "");
    tt_wiotp_free(d);
    tt_wiotp_free(g);
    tt_wiotp_free(a);
    down();
}

/* A YAML file of the wiotp SDK, pointed at the emulator, connects. */
static void test_config_file(void) {
    TT_REQUIRE(up());
    char path[300];
    snprintf(path, sizeof path, "%s/device.yaml", g_b.dir);
    FILE *fp = fopen(path, "w");
    TT_REQUIRE(fp);
    fprintf(fp, "identity:\n  orgId: %s\n  typeId: sensor\n  deviceId: s1\n"
                "auth:\n  token: tok-s1\n"
                "options:\n  mqtt:\n    port: %d\n    keepAlive: 30\n    cleanStart: false\n",
            ORG, g_b.port);
    fclose(fp);
    tt_wiotp_config *cfg = NULL;
    char why[200] = "";
    TT_REQUIRE(tt_wiotp_config_load_yaml(path, TT_WIOTP_DEVICE, &cfg, why, sizeof why) == TT_OK);
    tt_wiotp_opts o = *tt_wiotp_config_opts(cfg);
    TT_CHECK_EQ_INT(o.port, g_b.port);
    TT_CHECK_EQ_INT(o.keepalive_s, 30);
    recorder r;
    rec_init(&r);
    o.host = "127.0.0.1";
    o.tls = TT_WIOTP_TLS_OFF;
    o.on_message = on_msg;
    o.on_message_arg = &r;
    tt_wiotp *d = NULL;
    TT_REQUIRE(tt_wiotp_new(g_rt, &o, &d) == TT_OK);
    tt_wiotp_config_free(cfg);                   /* the client copied what it needs */
    TT_CHECK_EQ_STR(tt_wiotp_client_id(d), "d:" ORG ":sensor:s1");
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_connect(d)), TT_OK);
    tt_wiotp_free(d);
    down();
}

/* A user codec registered under a format name carries events both ways
 * (the SDK's setMessageCodec); a subscription's future gives the granted QoS. */
static tt_err csv_encode(void *arg, const json_t *v, tt_buf *out) {
    (void)arg;
    if (!json_is_array(v)) return TT_EINVAL;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        char num[32];
        int n = snprintf(num, sizeof num, "%s%" JSON_INTEGER_FORMAT, i ? "," : "", json_integer_value(x));
        if (tt_buf_append(out, num, (size_t)n) != TT_OK) return TT_ENOMEM;
    }
    return TT_OK;
}

static tt_err csv_decode(void *arg, const void *data, size_t len, json_t **out, tt_codec_error *err) {
    (void)arg;
    json_t *a = json_array();
    const char *p = data, *end = p + len;
    while (p < end) {
        char *e;
        char tmp[32];
        size_t k = 0;
        while (p + k < end && p[k] != ',' && k < sizeof tmp - 1) k++;
        memcpy(tmp, p, k);
        tmp[k] = '\0';
        long long v = strtoll(tmp, &e, 10);
        if (e == tmp || *e) {
            json_decref(a);
            err->offset = (size_t)(p - (const char *)data);
            snprintf(err->reason, sizeof err->reason, "not a number");
            return TT_EPROTO;
        }
        json_array_append_new(a, json_integer(v));
        p += k + 1;
    }
    *out = a;
    return TT_OK;
}

static void test_user_codec(void) {
    TT_REQUIRE(up());
    tt_codec_ops ops = TT_OPTS_INIT(tt_codec_ops);
    ops.encode = csv_encode;
    ops.decode = csv_decode;
    tt_err rc = tt_codec_register("csv-ints", &ops, NULL);
    TT_CHECK(rc == TT_OK || rc == TT_EBUSY);        /* once per process */
    recorder rd, ra;
    rec_init(&rd);
    rec_init(&ra);
    tt_wiotp *d = dev_new("sensor", "s1", "tok-s1", &rd), *a = app_new("app1", &ra);
    TT_REQUIRE(d && a);
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(a)) == TT_OK);
    tt_wiotp_filter f = TT_OPTS_INIT(tt_wiotp_filter);
    f.kind = TT_WIOTP_EVENT;
    f.format = "csv-ints";
    f.qos = TT_QOS2;
    tt_future *sf = tt_wiotp_subscribe(a, &f);
    TT_CHECK_EQ_INT(tt_future_wait(sf, TT_WAIT_MS), TT_OK);
    TT_CHECK_EQ_INT(tt_future_get_i64(sf), 2);       /* granted QoS */
    tt_future_free(sf);
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(d)) == TT_OK);
    json_t *v = json_pack("[i,i,i]", 3, -1, 40);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_event(d, NULL, NULL, "nums", "csv-ints", v, TT_QOS1)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_event_raw(d, NULL, NULL, "bad", "csv-ints", "1,x", 3, TT_QOS1)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_event(d, NULL, NULL, "json", "json", v, TT_QOS1)), TT_OK);
    const seen_msg *s = rec_wait_find(&ra, TT_WIOTP_EVENT, "s1", "nums");
    TT_REQUIRE(s);
    TT_CHECK_EQ_STR(s->payload, "3,-1,40");
    TT_CHECK_EQ_STR(s->data, "[3,-1,40]");
    s = rec_wait_find(&ra, TT_WIOTP_EVENT, "s1", "bad");
    TT_REQUIRE(s);
    TT_CHECK_EQ_INT(s->decode_err, TT_EPROTO);
    TT_CHECK_EQ_STR(s->data, "");
    usleep(100000);
    TT_CHECK(rec_find(&ra, TT_WIOTP_EVENT, "s1", "json") == NULL);   /* other formats: not subscribed */
    json_t *obj = json_object();
    tt_future *pf = tt_wiotp_publish_event(d, NULL, NULL, "x", "csv-ints", obj, TT_QOS0);
    TT_CHECK_EQ_INT(tt_future_wait(pf, TT_WAIT_MS), TT_EINVAL);      /* the codec's refusal */
    tt_future_free(pf);
    json_decref(obj);
    json_decref(v);
    tt_wiotp_free(d);
    tt_wiotp_free(a);
    down();
}

/* Applications see each other's status; shared-subscription identities
 * ("A:org:app", "A:org:app:instance") are accepted. */
static void test_app_identities(void) {
    TT_REQUIRE(up());
    recorder r1, r2, r3;
    rec_init(&r1);
    rec_init(&r2);
    rec_init(&r3);
    tt_wiotp *watcher = app_new("watcher", &r1);
    TT_REQUIRE(watcher);
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(watcher)) == TT_OK);
    TT_REQUIRE(sub(watcher, TT_WIOTP_APP_STATUS, NULL, NULL, NULL) == TT_OK);
    tt_wiotp_opts o;
    base_opts(&o, TT_WIOTP_APP, &r2);
    o.api_key = KEY;
    o.token = "tok-app";
    o.app_id = "workers";
    o.shared = true;
    tt_wiotp *shared = NULL, *inst = NULL, *anon = NULL;
    TT_REQUIRE(tt_wiotp_new(g_rt, &o, &shared) == TT_OK);
    TT_CHECK_EQ_STR(tt_wiotp_client_id(shared), "A:" ORG ":workers");
    o.instance_id = "i7";
    TT_REQUIRE(tt_wiotp_new(g_rt, &o, &inst) == TT_OK);
    TT_CHECK_EQ_STR(tt_wiotp_client_id(inst), "A:" ORG ":workers:i7");
    o.instance_id = NULL;
    o.shared = false;
    o.app_id = NULL;
    TT_REQUIRE(tt_wiotp_new(g_rt, &o, &anon) == TT_OK);
    const char *cid = tt_wiotp_client_id(anon);            /* a:org:<random UUID> */
    TT_CHECK(strncmp(cid, "a:" ORG ":", strlen("a:" ORG ":")) == 0 && strlen(cid) == strlen("a:" ORG ":") + 36);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_connect(shared)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_connect(inst)), TT_OK);
    const seen_msg *s = rec_wait_find(&r1, TT_WIOTP_APP_STATUS, "workers", NULL);
    TT_REQUIRE(s);
    TT_CHECK_EQ_STR(s->topic, "iot-2/app/workers/mon");
    TT_CHECK(strstr(s->data, "\"Action\":\"Connect\"") != NULL);
    tt_wiotp_free(shared);
    tt_wiotp_free(inst);
    tt_wiotp_free(anon);
    tt_wiotp_free(watcher);
    down();
}

/* MQTT over WebSocket (the SDK's transport: websockets). */
static void test_websockets(void) {
    if (!g_rt) TT_REQUIRE(tt_runtime_new(&g_rt, NULL) == TT_OK);
    tt_broker_opts bo = { .websockets = true };
    if (tt_wiotp_emu_start_opts(&g_b, CREDS, &bo) != 0) {
        tt_broker_dump_log(&g_b, stderr);
        TT_REQUIRE(0);
    }
    recorder rd, ra;
    rec_init(&rd);
    rec_init(&ra);
    tt_wiotp *a = app_new("app1", &ra);
    TT_REQUIRE(a);
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(a)) == TT_OK);
    TT_REQUIRE(sub(a, TT_WIOTP_EVENT, NULL, NULL, NULL) == TT_OK);
    tt_wiotp_opts o;
    base_opts(&o, TT_WIOTP_DEVICE, &rd);
    o.org = ORG;
    o.type_id = "sensor";
    o.device_id = "s1";
    o.token = "tok-s1";
    o.port = (uint16_t)g_b.ws_port;
    o.websockets = true;
    tt_wiotp *d = NULL;
    TT_REQUIRE(tt_wiotp_new(g_rt, &o, &d) == TT_OK);
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(d)) == TT_OK);
    json_t *v = json_pack("{s:b}", "ws", 1);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_event(d, NULL, NULL, "viaws", "json", v, TT_QOS1)), TT_OK);
    json_decref(v);
    const seen_msg *s = rec_wait_find(&ra, TT_WIOTP_EVENT, "s1", "viaws");
    TT_REQUIRE(s);
    TT_CHECK_EQ_STR(s->data, "{\"ws\":true}");
    tt_wiotp_free(d);
    tt_wiotp_free(a);
    down();
}

/* tether sim's watson-device profile: devices with their own tokens publish
 * through the emulator's rewriting to an application consumer; every event
 * arrives once. */
static void test_sim_profile(void) {
    if (!g_rt) TT_REQUIRE(tt_runtime_new(&g_rt, NULL) == TT_OK);
    enum { N = 40, M = 25 };
    char creds[N * 64 + 128];
    size_t o = 0;
    for (int i = 0; i < N; i++)
        o += (size_t)snprintf(creds + o, sizeof creds - o, "device " ORG " simtype sim-%d tok-%d\n", i, i);
    snprintf(creds + o, sizeof creds - o, "apikey " KEY " tok-app\n");
    if (tt_wiotp_emu_start(&g_b, creds) != 0) {
        tt_broker_dump_log(&g_b, stderr);
        TT_REQUIRE(0);
    }
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", g_b.port);
    tt_sim_opts so = TT_OPTS_INIT(tt_sim_opts);
    so.url = url;
    so.profile = tt_sim_profile_find("watson-device");
    TT_REQUIRE(so.profile);
    so.devices = N;
    so.count = M;
    so.qos = TT_QOS1;
    so.client_id = "d:" ORG ":simtype:sim-{id}";
    so.token = "tok-{id}";
    so.consumer_id = "a:" ORG ":simconsumer";
    so.username = KEY;
    so.password = "tok-app";
    so.drain_s = 30;
    tt_sim *sim = NULL;
    TT_REQUIRE(tt_sim_new(g_rt, &so, &sim) == TT_OK);
    tt_future *f = tt_sim_run(sim);
    TT_CHECK_EQ_INT(tt_future_wait(f, 120000), TT_OK);
    tt_future_free(f);
    tt_sim_report *r = NULL;
    TT_REQUIRE(tt_sim_report_get(sim, &r) == TT_OK);
    tt_sim_summary x = TT_OPTS_INIT(tt_sim_summary);
    TT_REQUIRE(tt_sim_report_summary(r, &x) == TT_OK);
    TT_CHECK_EQ_INT(x.connected, N);
    TT_CHECK_EQ_INT(x.connect_failed, 0);
    TT_CHECK_EQ_INT(x.sent, N * M);
    TT_CHECK_EQ_INT(x.received, N * M);
    TT_CHECK_EQ_INT(x.lost, 0);
    TT_CHECK_EQ_INT(x.duplicates, 0);
    TT_CHECK_EQ_INT(x.errors, 0);
    tt_sim_report_free(r);
    tt_sim_free(sim);
    /* a wrong token pattern: every device refused, nothing sent */
    so.token = "nope-{id}";
    so.count = 2;
    so.devices = 3;
    so.drain_s = 1;
    TT_REQUIRE(tt_sim_new(g_rt, &so, &sim) == TT_OK);
    f = tt_sim_run(sim);
    TT_CHECK_EQ_INT(tt_future_wait(f, 60000), TT_OK);
    tt_future_free(f);
    TT_REQUIRE(tt_sim_report_get(sim, &r) == TT_OK);
    TT_REQUIRE(tt_sim_report_summary(r, &x) == TT_OK);
    TT_CHECK_EQ_INT(x.connected, 0);
    TT_CHECK_EQ_INT(x.connect_failed, 3);
    TT_CHECK_EQ_INT(x.sent, 0);
    tt_sim_report_free(r);
    tt_sim_free(sim);
    down();
}

/* ---- Device management ---------------------------------------------------------- */

/* Raw messages on the emulator's mirror of management traffic (emu/dm/T/D/...). */
typedef struct raw_rec {
    pthread_mutex_t lock;
    int n;
    char topic[64][128];
    char payload[64][768];
} raw_rec;

static void on_raw(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    raw_rec *r = arg;
    size_t tl, n;
    const char *t = tt_msg_topic(m, &tl);
    const char *p = tt_msg_payload(m, &n);
    pthread_mutex_lock(&r->lock);
    if (r->n < 64) {
        snprintf(r->topic[r->n], sizeof r->topic[0], "%.*s", (int)tl, t);
        snprintf(r->payload[r->n], sizeof r->payload[0], "%.*s", (int)n, p ? p : "");
        r->n++;
    }
    pthread_mutex_unlock(&r->lock);
}

/* How many mirrored messages end in `suffix`; the payload of the last one into `out`. */
static int raw_count(raw_rec *r, const char *suffix, char *out, size_t cap) {
    int k = 0;
    size_t sl = strlen(suffix);
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < r->n; i++) {
        size_t tl = strlen(r->topic[i]);
        if (tl >= sl && !strcmp(r->topic[i] + tl - sl, suffix)) {
            k++;
            if (out) snprintf(out, cap, "%s", r->payload[i]);
        }
    }
    pthread_mutex_unlock(&r->lock);
    return k;
}

static bool raw_wait(raw_rec *r, const char *suffix, int n, char *out, size_t cap) {
    for (int i = 0; i < TT_WAIT_MS / 5; i++) {
        if (raw_count(r, suffix, out, cap) >= n) return true;
        usleep(5000);
    }
    return false;
}

/* What the management handler saw; it answers 202 (CUSTOM "b1/fail": 500). */
typedef struct dm_seen {
    pthread_mutex_t lock;
    int n;
    tt_wiotp_dm_kind kind[16];
    char req_id[16][40], action[16][64], data[16][256];
} dm_seen;

static void on_dm(tt_wiotp *w, const tt_wiotp_dm_request *r, void *arg) {
    dm_seen *s = arg;
    char *j = r->data ? json_dumps(r->data, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    pthread_mutex_lock(&s->lock);
    if (s->n < 16) {
        s->kind[s->n] = r->kind;
        snprintf(s->req_id[s->n], 40, "%s", r->req_id);
        snprintf(s->action[s->n], 64, "%s", r->action);
        snprintf(s->data[s->n], 256, "%s", j ? j : "");
        s->n++;
    }
    pthread_mutex_unlock(&s->lock);
    free(j);
    if (r->kind != TT_WIOTP_DM_FIELD_UPDATE)
        tt_future_free(tt_wiotp_dm_respond(w, r->req_id, strcmp(r->action, "b1/fail") ? 202 : 500, "ok"));
}

typedef struct dm_fixture {
    recorder rd, ra;
    raw_rec raw;
    dm_seen seen;
    tt_wiotp *d, *a;
} dm_fixture;

static bool dm_setup(dm_fixture *fx, bool handler, tt_wiotp_role role) {
    if (!up()) return false;
    memset(fx, 0, sizeof *fx);
    rec_init(&fx->rd);
    rec_init(&fx->ra);
    pthread_mutex_init(&fx->raw.lock, NULL);
    pthread_mutex_init(&fx->seen.lock, NULL);
    tt_wiotp_opts o;
    base_opts(&o, role, &fx->rd);
    o.org = ORG;
    o.type_id = role == TT_WIOTP_GATEWAY ? "gw" : "sensor";
    o.device_id = role == TT_WIOTP_GATEWAY ? "g1" : "s1";
    o.token = role == TT_WIOTP_GATEWAY ? "tok-g1" : "tok-s1";
    o.managed = true;
    o.on_dm = handler ? on_dm : NULL;
    o.on_dm_arg = &fx->seen;
    o.request_timeout_ms = 300;
    if (tt_wiotp_new(g_rt, &o, &fx->d) != TT_OK) return false;
    fx->a = app_new("dmapp", &fx->ra);
    if (!fx->a || tt_wait_free(tt_wiotp_connect(fx->a)) != TT_OK) return false;
    tt_sub s = { .filter = "emu/dm/#", .qos = TT_QOS1, .handler = on_raw, .arg = &fx->raw };
    if (tt_wait_free(tt_client_subscribe(tt_wiotp_client(fx->a), &s, 1, NULL)) != TT_OK) return false;
    return tt_wait_free(tt_wiotp_connect(fx->d)) == TT_OK;
}

static void dm_teardown(dm_fixture *fx) {
    tt_wiotp_free(fx->d);
    tt_wiotp_free(fx->a);
    down();
}

/* Send a platform request to the managed client (the emulator's control topic). */
static void initiate(dm_fixture *fx, const char *rest, const char *payload) {
    char t[256];
    snprintf(t, sizeof t, "emu/dm-initiate/sensor/s1/%s", rest);
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(tt_wiotp_client(fx->a), t, payload, strlen(payload),
                                               TT_QOS1, false)), TT_OK);
}

/* manage and every diagnostic call: the platform's answer completes each,
 * and what went out is what the platform reads. */
static void test_dm_requests(void) {
    dm_fixture fx;
    TT_REQUIRE(dm_setup(&fx, true, TT_WIOTP_DEVICE));
    tt_wiotp_device_info info = { .serial_number = "SN-1", .model = "m\"2" };
    json_t *meta = json_pack("{s:i}", "rack", 4);
    const char *bundles[] = { "b1" };
    tt_wiotp_manage_opts mo = TT_OPTS_INIT(tt_wiotp_manage_opts);
    mo.lifetime_s = 7200;
    mo.device_actions = true;
    mo.bundles = bundles;
    mo.nbundles = 1;
    mo.info = &info;
    mo.metadata = meta;
    tt_future *f = tt_wiotp_manage(fx.d, &mo);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
    TT_CHECK_EQ_INT(tt_future_get_i64(f), 200);
    tt_future_free(f);
    char got[768];
    TT_REQUIRE(raw_wait(&fx.raw, "/mgmt/manage", 1, got, sizeof got));
    json_t *j = json_loads(got, 0, NULL);
    TT_REQUIRE(j);
    json_t *d = json_object_get(j, "d");
    TT_CHECK_EQ_INT(json_integer_value(json_object_get(d, "lifetime")), 7200);
    TT_CHECK(json_is_true(json_object_get(json_object_get(d, "supports"), "deviceActions")));
    TT_CHECK(json_is_false(json_object_get(json_object_get(d, "supports"), "firmwareActions")));
    TT_CHECK(json_is_true(json_object_get(json_object_get(d, "supports"), "b1")));
    TT_CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(d, "deviceInfo"), "model")), "m\"2");
    TT_CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(d, "metadata"), "rack")), 4);
    TT_CHECK_EQ_INT(json_string_length(json_object_get(j, "reqId")), 36);
    json_decref(j);

    double elev = 12.5;
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_set_location(fx.d, 8.5, 47.25, &elev, NULL)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_add_error_code(fx.d, 7)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_clear_error_codes(fx.d)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_add_log(fx.d, "disk \"low\"", NULL, 1)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_clear_log(fx.d)), TT_OK);
    json_t *fw = json_pack("{s:s,s:i}", "version", "1.2", "state", 0);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_notify_field(fx.d, "mgmt.firmware", fw)), TT_OK);
    TT_REQUIRE(raw_wait(&fx.raw, "/device/update/location", 1, got, sizeof got));
    j = json_loads(got, 0, NULL);
    d = json_object_get(j, "d");
    TT_CHECK(json_real_value(json_object_get(d, "longitude")) == 8.5);
    TT_CHECK(json_real_value(json_object_get(d, "elevation")) == 12.5);
    TT_CHECK(json_object_get(d, "accuracy") == NULL);
    TT_CHECK(json_is_string(json_object_get(d, "measuredDateTime")));
    json_decref(j);
    TT_REQUIRE(raw_wait(&fx.raw, "/add/diag/errorCodes", 1, got, sizeof got));
    TT_CHECK(strstr(got, "\"errorCode\":7") != NULL);
    TT_REQUIRE(raw_wait(&fx.raw, "/add/diag/log", 1, got, sizeof got));
    j = json_loads(got, 0, NULL);
    TT_CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(j, "d"), "message")), "disk \"low\"");
    TT_CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(j, "d"), "severity")), 1);
    json_decref(j);
    TT_REQUIRE(raw_wait(&fx.raw, "/notify", 1, got, sizeof got));
    TT_CHECK(strstr(got, "\"field\":\"mgmt.firmware\"") && strstr(got, "\"version\":\"1.2\""));
    TT_CHECK_EQ_INT(raw_count(&fx.raw, "/clear/diag/errorCodes", NULL, 0), 1);
    TT_CHECK_EQ_INT(raw_count(&fx.raw, "/clear/diag/log", NULL, 0), 1);

    /* bad input, refused at once */
    f = tt_wiotp_set_location(fx.d, 200, 0, NULL, NULL);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_EINVAL);
    tt_future_free(f);
    f = tt_wiotp_add_log(fx.d, "x", NULL, 3);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_EINVAL);
    tt_future_free(f);
    f = tt_wiotp_add_log(fx.d, "bad \xff utf-8", NULL, 0);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_EINVAL);
    tt_future_free(f);
    tt_wiotp_device_info bad = { .model = "\xc3(" };
    mo.info = &bad;
    f = tt_wiotp_manage(fx.d, &mo);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_EINVAL);
    tt_future_free(f);

    /* no answer: the deadline (300 ms here) */
    TT_REQUIRE(tt_broker_pause(&g_b) == 0);
    f = tt_wiotp_add_error_code(fx.d, 1);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_ETIMEDOUT);
    tt_future_free(f);
    TT_REQUIRE(tt_broker_resume(&g_b) == 0);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_unmanage(fx.d)), TT_OK);
    TT_CHECK(raw_wait(&fx.raw, "/mgmt/unmanage", 1, NULL, 0));

    /* not a managed client */
    recorder r;
    rec_init(&r);
    tt_wiotp *plain = dev_new("sensor", "s2", "tok-s2", &r);
    f = tt_wiotp_manage(plain, NULL);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_ENOTSUP);
    tt_future_free(f);
    tt_wiotp_free(plain);
    json_decref(fw);
    json_decref(meta);
    dm_teardown(&fx);
}

/* The platform's requests: observe and cancel answered 200 and field
 * updates 204 by the client, actions through the handler. */
static void test_dm_platform_requests(void) {
    dm_fixture fx;
    TT_REQUIRE(dm_setup(&fx, true, TT_WIOTP_DEVICE));
    initiate(&fx, "mgmt/initiate/device/reboot", "{\"reqId\":\"r-boot\"}");
    initiate(&fx, "mgmt/initiate/firmware/download", "{\"reqId\":\"r-dl\"}");
    initiate(&fx, "mgmt/custom/b1/fail", "{\"reqId\":\"r-c\",\"d\":{\"x\":1}}");
    initiate(&fx, "observe", "{\"reqId\":\"r-obs\",\"d\":{\"fields\":[{\"field\":\"mgmt.firmware\"}]}}");
    initiate(&fx, "device/update", "{\"reqId\":\"r-up\",\"d\":{\"fields\":[{\"field\":\"mgmt.firmware\",\"value\":{\"version\":\"2\"}}]}}");
    initiate(&fx, "mgmt/initiate/device/reboot", "{\"noReqId\":1}");          /* ignored */
    TT_REQUIRE(raw_wait(&fx.raw, "/response", 5, NULL, 0));
    pthread_mutex_lock(&fx.raw.lock);
    int boot = -1, dl = -1, c = -1, obs = -1, up = -1;
    for (int i = 0; i < fx.raw.n; i++) {
        json_t *j = json_loads(fx.raw.payload[i], 0, NULL);
        const char *id = json_string_value(json_object_get(j, "reqId"));
        int rc = (int)json_integer_value(json_object_get(j, "rc"));
        if (id && !strcmp(id, "r-boot")) boot = rc;
        if (id && !strcmp(id, "r-dl")) dl = rc;
        if (id && !strcmp(id, "r-c")) c = rc;
        if (id && !strcmp(id, "r-obs")) obs = rc;
        if (id && !strcmp(id, "r-up")) up = rc;
        json_decref(j);
    }
    pthread_mutex_unlock(&fx.raw.lock);
    TT_CHECK_EQ_INT(boot, 202);
    TT_CHECK_EQ_INT(dl, 202);
    TT_CHECK_EQ_INT(c, 500);
    TT_CHECK_EQ_INT(obs, 200);
    TT_CHECK_EQ_INT(up, 204);
    pthread_mutex_lock(&fx.seen.lock);
    TT_CHECK_EQ_INT(fx.seen.n, 4);                 /* reboot, download, custom, update */
    TT_CHECK_EQ_INT(fx.seen.kind[0], TT_WIOTP_DM_REBOOT);
    TT_CHECK_EQ_STR(fx.seen.req_id[0], "r-boot");
    TT_CHECK_EQ_INT(fx.seen.kind[1], TT_WIOTP_DM_FW_DOWNLOAD);
    TT_CHECK_EQ_INT(fx.seen.kind[2], TT_WIOTP_DM_CUSTOM);
    TT_CHECK_EQ_STR(fx.seen.action[2], "b1/fail");
    TT_CHECK_EQ_STR(fx.seen.data[2], "{\"x\":1}");
    TT_CHECK_EQ_INT(fx.seen.kind[3], TT_WIOTP_DM_FIELD_UPDATE);
    TT_CHECK(strstr(fx.seen.data[3], "\"version\":\"2\"") != NULL);
    pthread_mutex_unlock(&fx.seen.lock);
    dm_teardown(&fx);

    /* no handler: actions are answered 501 */
    TT_REQUIRE(dm_setup(&fx, false, TT_WIOTP_DEVICE));
    initiate(&fx, "mgmt/initiate/device/factory_reset", "{\"reqId\":\"r-fr\"}");
    char got[768];
    TT_REQUIRE(raw_wait(&fx.raw, "/response", 1, got, sizeof got));
    TT_CHECK(strstr(got, "\"rc\":501") && strstr(got, "\"reqId\":\"r-fr\""));
    dm_teardown(&fx);
}

/* A manage lifetime is renewed before it runs out (time scaled down: one
 * lifetime second is a millisecond here, so 3600 s renews after 3.48 s). */
static void test_dm_renewal(void) {
    dm_fixture fx;
    TT_REQUIRE(dm_setup(&fx, true, TT_WIOTP_DEVICE));
    atomic_store(&tti_wiotp_ms_per_lifetime_s, 1);
    tt_wiotp_manage_opts mo = TT_OPTS_INIT(tt_wiotp_manage_opts);
    mo.lifetime_s = 3600;
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_manage(fx.d, &mo)), TT_OK);
    usleep(2000000);
    TT_CHECK_EQ_INT(raw_count(&fx.raw, "/mgmt/manage", NULL, 0), 1);   /* not yet */
    TT_CHECK(raw_wait(&fx.raw, "/mgmt/manage", 3, NULL, 0));          /* then every 3.48 s */
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_unmanage(fx.d)), TT_OK);
    int n = raw_count(&fx.raw, "/mgmt/manage", NULL, 0);
    usleep(4000000);
    TT_CHECK_EQ_INT(raw_count(&fx.raw, "/mgmt/manage", NULL, 0), n);   /* stopped */
    /* below 3600 s: no expiry, no renewal */
    mo.lifetime_s = 60;
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_manage(fx.d, &mo)), TT_OK);
    char got[768];
    TT_REQUIRE(raw_wait(&fx.raw, "/mgmt/manage", n + 1, got, sizeof got));
    TT_CHECK(strstr(got, "\"lifetime\":0") != NULL);
    atomic_store(&tti_wiotp_ms_per_lifetime_s, 1000);
    dm_teardown(&fx);
}

/* A gateway manages itself on the templated topics. */
static void test_dm_gateway(void) {
    dm_fixture fx;
    TT_REQUIRE(dm_setup(&fx, true, TT_WIOTP_GATEWAY));
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_manage(fx.d, NULL)), TT_OK);
    TT_CHECK(raw_wait(&fx.raw, "emu/dm/gw/g1/mgmt/manage", 1, NULL, 0));
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_add_error_code(fx.d, 3)), TT_OK);
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_pub(tt_wiotp_client(fx.a), "emu/gw-dm-initiate/gw/g1/gw/g1/mgmt/initiate/device/reboot",
                                               "{\"reqId\":\"g-r\"}", 15, TT_QOS1, false)), TT_OK);
    char got[768];
    TT_REQUIRE(raw_wait(&fx.raw, "emu/dm/gw/g1/response", 1, got, sizeof got));
    TT_CHECK(strstr(got, "\"rc\":202") && strstr(got, "\"reqId\":\"g-r\""));
    dm_teardown(&fx);
}

#ifdef TT_EXAMPLE_WIOTP
/* examples/watson/device.c against the emulator: its events reach an
 * application, and it obeys setInterval. */
static void test_example(void) {
    TT_REQUIRE(up());
    char yaml[300], out[300], port[16];
    snprintf(yaml, sizeof yaml, "%s/ex.yaml", g_b.dir);
    snprintf(out, sizeof out, "%s/ex.out", g_b.dir);
    snprintf(port, sizeof port, "%d", g_b.port);
    FILE *fp = fopen(yaml, "w");
    TT_REQUIRE(fp);
    fprintf(fp, "identity: {orgId: %s, typeId: sensor, deviceId: s1}\nauth: {token: tok-s1}\n", ORG);
    fclose(fp);
    recorder ra;
    rec_init(&ra);
    tt_wiotp *a = app_new("exapp", &ra);
    TT_REQUIRE(a);
    TT_REQUIRE(tt_wait_free(tt_wiotp_connect(a)) == TT_OK);
    TT_REQUIRE(sub(a, TT_WIOTP_EVENT, "sensor", "s1", "reading") == TT_OK);
    char *argv[] = { (char *)TT_EXAMPLE_WIOTP, yaml, (char *)"5", (char *)"127.0.0.1", port, NULL };
    pid_t pid = tt_broker_spawn(argv, out);
    TT_REQUIRE(pid > 0);
    TT_REQUIRE(rec_wait(&ra, 1));                  /* the first event: connected */
    json_t *v = json_pack("{s:i}", "ms", 100);
    TT_CHECK_EQ_INT(tt_wait_free(tt_wiotp_publish_command(a, "sensor", "s1", "setInterval", "json", v, TT_QOS1)), TT_OK);
    json_decref(v);
    TT_CHECK(rec_wait(&ra, 15));                   /* 10 a second from now on */
    TT_CHECK_EQ_INT(tt_broker_waitpid(pid, 20000), 0);
    const seen_msg *s = rec_find(&ra, TT_WIOTP_EVENT, "s1", "reading");
    TT_REQUIRE(s);
    TT_CHECK(strstr(s->data, "\"temperature\":") != NULL);
    FILE *f = fopen(out, "r");
    char buf[4096] = "";
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    TT_CHECK_MSG(strstr(buf, "command setInterval: every 100 ms") != NULL, "output: %s", buf);
    tt_wiotp_free(a);
    down();
}
#endif

#ifdef TT_CLI_PATH
/* ---- tether watson ------------------------------------------------------------ */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = calloc(1, n > 0 ? (size_t)n + 1 : 1);
    if (n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) b[0] = 0;
    fclose(f);
    return b;
}

/* argv: tether watson ACTION -h 127.0.0.1 -p PORT extra... */
static void cli_argv(char **argv, char *port, const char *action, const char *const *extra) {
    int n = 0;
    argv[n++] = (char *)TT_CLI_PATH;
    argv[n++] = (char *)"watson";
    argv[n++] = (char *)action;
    argv[n++] = (char *)"-h";
    argv[n++] = (char *)"127.0.0.1";
    argv[n++] = (char *)"-p";
    argv[n++] = port;
    for (; extra && *extra && n < 38; extra++) argv[n++] = (char *)*extra;
    argv[n] = NULL;
}

/* Until `path` holds `text` (up to TT_WAIT_MS). */
static bool wait_output(const char *path, const char *text) {
    for (int i = 0; i < TT_WAIT_MS / 20; i++) {
        char *s = slurp(path);
        bool found = strstr(s, text) != NULL;
        free(s);
        if (found) return true;
        usleep(20000);
    }
    return false;
}

/* watch prints a device's status and events; event and command publish;
 * commands prints what a device receives; bad input is a usage error and a
 * refused token a failure. */
static void test_cli(void) {
    TT_REQUIRE(up());
    char port[16], watch_out[300], cmd_out[300], out[300];
    snprintf(port, sizeof port, "%d", g_b.port);
    snprintf(watch_out, sizeof watch_out, "%s/watch.out", g_b.dir);
    snprintf(cmd_out, sizeof cmd_out, "%s/commands.out", g_b.dir);
    snprintf(out, sizeof out, "%s/run.out", g_b.dir);
    char *argv[40];

    const char *w[] = { "--api-key", KEY, "-t", "tok-app", "--app-id", "cli", "--dev-type", "sensor",
                        "--status", "-n", "2", "-W", "20", NULL };
    cli_argv(argv, port, "watch", w);
    pid_t watcher = tt_broker_spawn(argv, watch_out);
    TT_REQUIRE(watcher > 0);
    TT_REQUIRE(wait_output(watch_out, "watching as a:" ORG ":cli"));
    const char *e[] = { "--org", ORG, "--type", "sensor", "--id", "s1", "-t", "tok-s1", "-e", "reading",
                        "-m", "{\"t\":21.5}", "-q", "1", NULL };
    cli_argv(argv, port, "event", e);
    TT_CHECK_EQ_INT(tt_broker_run(argv, out, TT_WAIT_MS), 0);
    TT_CHECK_EQ_INT(tt_broker_waitpid(watcher, TT_WAIT_MS), 0);   /* -n 2: status and event */
    char *s = slurp(watch_out);
    TT_CHECK_MSG(strstr(s, "status sensor s1 - json {") && strstr(s, "\"Action\":\"Connect\""),
                 "output: %s", s);
    TT_CHECK_MSG(strstr(s, "event sensor s1 reading json {\"t\":21.5}") != NULL, "output: %s", s);
    free(s);

    const char *c[] = { "--org", ORG, "--type", "sensor", "--id", "s2", "-t", "tok-s2", "-n", "1",
                        "-W", "20", NULL };
    cli_argv(argv, port, "commands", c);
    pid_t dev = tt_broker_spawn(argv, cmd_out);
    TT_REQUIRE(dev > 0);
    TT_REQUIRE(wait_output(cmd_out, "waiting for commands as d:" ORG ":sensor:s2"));
    const char *k[] = { "--api-key", KEY, "-t", "tok-app", "--dev-type", "sensor", "--dev-id", "s2",
                        "--cmd", "setInterval", "-m", "{\"s\":5}", "-q", "1", NULL };
    cli_argv(argv, port, "command", k);
    TT_CHECK_EQ_INT(tt_broker_run(argv, out, TT_WAIT_MS), 0);
    TT_CHECK_EQ_INT(tt_broker_waitpid(dev, TT_WAIT_MS), 0);
    s = slurp(cmd_out);
    TT_CHECK_MSG(strstr(s, "command sensor s2 setInterval json {\"s\":5}") != NULL, "output: %s", s);
    free(s);

    /* identity from a YAML file */
    char yaml[300];
    snprintf(yaml, sizeof yaml, "%s/dev.yaml", g_b.dir);
    FILE *fp = fopen(yaml, "w");
    TT_REQUIRE(fp);
    fprintf(fp, "identity: {orgId: %s, typeId: sensor, deviceId: s1}\nauth: {token: tok-s1}\n", ORG);
    fclose(fp);
    const char *y[] = { "--config", yaml, "-e", "e", "-f", "text", "-m", "plain words", NULL };
    cli_argv(argv, port, "event", y);
    TT_CHECK_EQ_INT(tt_broker_run(argv, out, TT_WAIT_MS), 0);

    const char *bad[] = { "--org", ORG, "--type", "sensor", "--id", "s1", "-t", "tok-s1", NULL };
    cli_argv(argv, port, "event", bad);                            /* no -e, no -m */
    TT_CHECK_EQ_INT(tt_broker_run(argv, out, TT_WAIT_MS), 2);
    const char *notjson[] = { "--org", ORG, "--type", "sensor", "--id", "s1", "-t", "tok-s1", "-e", "x",
                              "-m", "{oops", NULL };
    cli_argv(argv, port, "event", notjson);
    TT_CHECK_EQ_INT(tt_broker_run(argv, out, TT_WAIT_MS), 2);
    const char *wrong[] = { "--org", ORG, "--type", "sensor", "--id", "s1", "-t", "nope", "-e", "x",
                            "-m", "1", NULL };
    cli_argv(argv, port, "event", wrong);
    TT_CHECK_EQ_INT(tt_broker_run(argv, out, TT_WAIT_MS), 1);
    s = slurp(out);
    TT_CHECK_MSG(strstr(s, "not authorized") != NULL, "output: %s", s);
    free(s);
    down();
}
#endif

static void test_teardown(void) {
    tt_runtime_free(g_rt);
    g_rt = NULL;
}

TT_TEST_LIST = {
    { "device_events", test_device_events },
    { "commands_to_device", test_commands_to_device },
    { "gateway", test_gateway },
    { "device_status", test_device_status },
    { "refusals", test_refusals },
    { "misuse", test_misuse },
    { "filter_topics", test_filter_topics },
    { "quickstart", test_quickstart },
    { "resubscribe_after_restart", test_resubscribe_after_restart },
    { "config_file", test_config_file },
    { "user_codec", test_user_codec },
    { "app_identities", test_app_identities },
    { "websockets", test_websockets },
    { "sim_profile", test_sim_profile },
    { "dm_requests", test_dm_requests },
    { "dm_platform_requests", test_dm_platform_requests },
    { "dm_renewal", test_dm_renewal },
    { "dm_gateway", test_dm_gateway },
#ifdef TT_EXAMPLE_WIOTP
    { "example", test_example },
#endif
#ifdef TT_CLI_PATH
    { "cli", test_cli },
#endif
    { "teardown", test_teardown },
    { NULL, NULL },
};
