/* The IBM Watson IoT Platform emulator (tests/emulators/watson: a mosquitto
 * plugin) through tether's plain MQTT 3.1.1 client speaking the raw platform
 * topics: logins, the ACL, topic rewriting, status messages, device
 * management and the control topics. Each test starts its own broker.
 *
 * "Not delivered" is checked with a sentinel: a message that must arrive
 * after the one that must not, on the same path, so the check waits for
 * something instead of for time. */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tether/tether.h>
#include <tether/mqtt.h>

#include "broker.h"
#include "tt_test.h"
#include "tt_wait.h"
#include "wiotp_emu.h"

#define ORG "myorg1"
#define CREDENTIALS                                                                                  \
    "# credentials of the emulated organization\n"                                                    \
    "device  " ORG " sensor dev1 tok-dev1\n"                                                         \
    "device  " ORG " sensor dev2 tok-dev2\n"                                                         \
    "gateway " ORG " gwtype gw1 tok-gw1\n"                                                           \
    "apikey  a-" ORG "-key1 tok-app1\n"                                                              \
    "apikey  a-other2-key2 tok-app2   # an API key of another organization\n"

#define MAX_PAYLOAD 131072

static tt_runtime *g_rt;
static tt_broker g_b;

static bool setup(void) {
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.loop_threads = 2;
    if (tt_runtime_new(&g_rt, &o) != TT_OK) return false;
    if (tt_wiotp_emu_start(&g_b, CREDENTIALS) != 0) {
        tt_broker_dump_log(&g_b, stderr);
        tt_broker_free(&g_b);
        tt_runtime_free(g_rt);
        return false;
    }
    return true;
}

static void close_all(void);

/* Closes what a test left open (a failed TT_REQUIRE returns early), then
 * the broker; its log goes to stderr when the test failed. */
static void teardown(bool dump) {
    close_all();
    if (dump) tt_broker_dump_log(&g_b, stderr);
    tt_broker_free(&g_b);
    tt_runtime_free(g_rt);
}

/* A test body between setup() and teardown(). */
#define EMU_TEST(name)                                                                               \
    static void name##_body(void);                                                                   \
    static void test_##name(void) {                                                                  \
        if (!setup()) {                                                                              \
            TT_CHECK_MSG(false, "%s", "the emulator did not start");                                 \
            return;                                                                                  \
        }                                                                                            \
        int failures_before = tt_test_failures_;                                                     \
        name##_body();                                                                               \
        teardown(tt_test_failures_ != failures_before);                                              \
    }                                                                                                \
    static void name##_body(void)

/* ---- Received messages ------------------------------------------------------------------ */

typedef struct rx {
    char *topic;
    char *payload;                     /* NUL-terminated copy; len is the real length */
    size_t len;
    bool retained;
} rx;

typedef struct box {
    pthread_mutex_t lock;
    rx m[64];
    int n;
} box;

static void box_init(box *b) {
    memset(b, 0, sizeof *b);
    pthread_mutex_init(&b->lock, NULL);
}

static void box_fini(box *b) {
    for (int i = 0; i < b->n; i++) {
        free(b->m[i].topic);
        free(b->m[i].payload);
    }
    b->n = 0;
    pthread_mutex_destroy(&b->lock);
}

static void on_msg(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    box *b = arg;
    size_t tl, pl;
    const char *t = tt_msg_topic(m, &tl);
    const void *p = tt_msg_payload(m, &pl);
    pthread_mutex_lock(&b->lock);
    if (b->n < (int)(sizeof b->m / sizeof b->m[0])) {
        rx *r = &b->m[b->n];
        r->topic = strndup(t, tl);
        r->payload = malloc(pl + 1);
        if (r->topic && r->payload) {
            if (pl) memcpy(r->payload, p, pl);
            r->payload[pl] = '\0';
            r->len = pl;
            r->retained = tt_msg_is_retained(m);
            b->n++;
        } else {
            free(r->topic);
            free(r->payload);
        }
    }
    pthread_mutex_unlock(&b->lock);
}

static int box_count(box *b) { return tt_locked_int(&b->lock, &b->n); }

static bool box_wait(box *b, int n) {
    for (int i = 0; i < TT_WAIT_MS / 5 && box_count(b) < n; i++) usleep(5000);
    return box_count(b) >= n;
}

/* Message i (a copy of the entry; its strings live as long as the box). */
static rx box_get(box *b, int i) {
    rx r = { NULL, NULL, 0, false };
    pthread_mutex_lock(&b->lock);
    if (i >= 0 && i < b->n) r = b->m[i];
    pthread_mutex_unlock(&b->lock);
    return r;
}

static const char *box_topic(box *b, int i) {
    rx r = box_get(b, i);
    return r.topic ? r.topic : "(none)";
}

static const char *box_payload(box *b, int i) {
    rx r = box_get(b, i);
    return r.payload ? r.payload : "(none)";
}

/* ---- Clients ------------------------------------------------------------------------------- */

typedef struct cl {
    tt_client *c;
    box in;                            /* the catch-all: messages no subscription took */
    pthread_mutex_t lock;
    int disconnects;
} cl;

/* Everything a test opened, closed by teardown() if the test did not. */
#define MAX_OPEN 32
static cl *g_clients[MAX_OPEN];
static box *g_boxes[MAX_OPEN];

static void on_ev(tt_client *c, const tt_client_event *ev, void *arg) {
    (void)c;
    cl *x = arg;
    if (ev->kind != TT_EV_DISCONNECTED) return;
    pthread_mutex_lock(&x->lock);
    x->disconnects++;
    pthread_mutex_unlock(&x->lock);
}

/* A box for a subscription's messages, freed by teardown(). */
static box *box_new(void) {
    for (int i = 0; i < MAX_OPEN; i++) {
        if (g_boxes[i]) continue;
        box *b = malloc(sizeof *b);
        if (!b) return NULL;
        box_init(b);
        g_boxes[i] = b;
        return b;
    }
    return NULL;
}

static void cl_close(cl *x) {
    if (!x) return;
    for (int i = 0; i < MAX_OPEN; i++)
        if (g_clients[i] == x) g_clients[i] = NULL;
    if (x->c) {
        tt_future *f = tt_client_close(x->c);   /* no callback runs after it completes */
        (void)tt_future_wait(f, TT_WAIT_MS);
        tt_future_free(f);
        tt_client_free(x->c);
    }
    box_fini(&x->in);
    pthread_mutex_destroy(&x->lock);
    free(x);
}

static void close_all(void) {
    for (int i = 0; i < MAX_OPEN; i++) cl_close(g_clients[i]);
    for (int i = 0; i < MAX_OPEN; i++) {
        if (!g_boxes[i]) continue;
        box_fini(g_boxes[i]);
        free(g_boxes[i]);
        g_boxes[i] = NULL;
    }
}

/* Connect as `cid` with `user`/`pass` (NULL: none). The client (NULL only
 * out of memory), open even when the connect failed; *rc is the connect's
 * result and *detail its detail (the CONNACK return code). */
static cl *cl_open_ex(const char *cid, const char *user, const char *pass, bool persistent, tt_err *rc, int *detail) {
    *rc = TT_EINTERNAL;
    int slot = -1;
    for (int i = 0; i < MAX_OPEN && slot < 0; i++)
        if (!g_clients[i]) slot = i;
    cl *x = slot < 0 ? NULL : calloc(1, sizeof *x);
    if (!x) return NULL;
    box_init(&x->in);
    pthread_mutex_init(&x->lock, NULL);
    g_clients[slot] = x;
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", g_b.port);
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.url = url;
    o.client_id = cid;
    o.username = user;
    o.password = pass;
    o.persistent_session = persistent;
    o.no_reconnect = true;
    o.on_message = on_msg;
    o.on_message_arg = &x->in;
    o.on_event = on_ev;
    o.on_event_arg = x;
    if (tt_client_new(g_rt, &o, &x->c) != TT_OK) return x;
    tt_future *f = tt_client_connect(x->c);
    *rc = tt_future_wait(f, TT_WAIT_MS);
    if (detail) *detail = tt_future_detail(f, NULL);
    tt_future_free(f);
    return x;
}

/* A connected client, or NULL (and the reason on stderr). */
static cl *cl_open_persistent(const char *cid, const char *user, const char *pass, bool persistent) {
    tt_err rc;
    cl *x = cl_open_ex(cid, user, pass, persistent, &rc, NULL);
    if (x && rc == TT_OK) return x;
    fprintf(stderr, "  %s: connect failed: %s\n", cid, tt_err_name(rc));
    cl_close(x);
    return NULL;
}

static cl *cl_open(const char *cid, const char *user, const char *pass) {
    return cl_open_persistent(cid, user, pass, false);
}

/* A clean DISCONNECT; the client stays allocated until cl_close. */
static tt_err cl_disconnect(cl *x) { return tt_wait_free(tt_client_disconnect(x->c)); }

static int cl_disconnects(cl *x) { return tt_locked_int(&x->lock, &x->disconnects); }

/* Subscribe one filter into `b` (NULL: the catch-all). The SUBACK code:
 * the granted QoS or 0x80; -1 if the call failed otherwise. */
static int cl_sub(cl *x, const char *filter, tt_qos q, box *b) {
    tt_sub s = { .filter = filter, .qos = q, .handler = on_msg, .arg = b ? b : &x->in };
    tt_future *f = tt_client_subscribe(x->c, &s, 1, NULL);
    tt_err rc = tt_future_wait(f, TT_WAIT_MS);
    int code = -1;
    const uint8_t *codes;
    size_t n;
    if ((rc == TT_OK || rc == TT_EREFUSED) && tt_future_get_suback(f, &codes, &n) == TT_OK && n == 1) code = codes[0];
    tt_future_free(f);
    return code;
}

static tt_err cl_unsub(cl *x, const char *filter) {
    const char *fs[] = { filter };
    return tt_wait_free(tt_client_unsubscribe(x->c, fs, 1, NULL));
}

static tt_err cl_pub_ex(cl *x, const char *topic, const void *p, size_t len, tt_qos q, bool retain) {
    return tt_wait_free(tt_client_pub(x->c, topic, p, len, q, retain));
}

static tt_err cl_pub(cl *x, const char *topic, const char *text) {
    return cl_pub_ex(x, topic, text, strlen(text), TT_QOS1, false);
}

/* A round trip with the broker, then a moment for the callbacks: whatever
 * the broker had queued for this client before has been handled. */
static void cl_quiesce(cl *x) {
    tt_future *f = tt_client_ping(x->c);
    (void)tt_future_wait(f, TT_WAIT_MS);
    tt_future_free(f);
    usleep(100000);
}

/* ---- JSON of a received message ------------------------------------------------------------- */

static json_t *box_json(box *b, int i) {
    rx r = box_get(b, i);
    if (!r.payload) return NULL;
    return json_loadb(r.payload, r.len, 0, NULL);
}

static const char *jstr(json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "(missing)";
}

/* 2024-05-06T07:08:09.123Z */
static bool iso_ms_utc(const char *s) {
    if (strlen(s) != 24) return false;
    for (int i = 0; i < 24; i++) {
        char c = s[i];
        bool ok = i == 4 || i == 7    ? c == '-'
                  : i == 10           ? c == 'T'
                  : i == 13 || i == 16 ? c == ':'
                  : i == 19           ? c == '.'
                  : i == 23           ? c == 'Z'
                                      : (c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

/* ---- Tests ------------------------------------------------------------------------------------ */

#define EVT_FILTER "iot-2/type/+/id/+/evt/+/fmt/+"
#define CMD_FILTER "iot-2/type/+/id/+/cmd/+/fmt/+"
#define APP1 "a:" ORG ":app1", "a-" ORG "-key1", "tok-app1"
#define DEV1 "d:" ORG ":sensor:dev1", "use-token-auth", "tok-dev1"
#define DEV2 "d:" ORG ":sensor:dev2", "use-token-auth", "tok-dev2"
#define GW1 "g:" ORG ":gwtype:gw1", "use-token-auth", "tok-gw1"

/* A device's event reaches applications on the rewritten topic, byte for byte. */
EMU_TEST(device_event_rewritten) {
    cl *app = cl_open(APP1);
    TT_REQUIRE(app);
    TT_CHECK_EQ_INT(cl_sub(app, EVT_FILTER, TT_QOS1, NULL), 1);
    cl *dev = cl_open(DEV1);
    TT_REQUIRE(dev);

    TT_CHECK_EQ_INT(cl_pub(dev, "iot-2/evt/temp/fmt/json", "{\"t\":21.5}"), TT_OK);
    static const unsigned char bin[] = { 0x00, 0xff, 0x7b, 0x22, 0x00, 0x80 };
    TT_CHECK_EQ_INT(cl_pub_ex(dev, "iot-2/evt/raw/fmt/bin", bin, sizeof bin, TT_QOS0, false), TT_OK);
    TT_REQUIRE(box_wait(&app->in, 2));
    TT_CHECK_EQ_STR(box_topic(&app->in, 0), "iot-2/type/sensor/id/dev1/evt/temp/fmt/json");
    TT_CHECK_EQ_STR(box_payload(&app->in, 0), "{\"t\":21.5}");
    TT_CHECK(!box_get(&app->in, 0).retained);
    TT_CHECK_EQ_STR(box_topic(&app->in, 1), "iot-2/type/sensor/id/dev1/evt/raw/fmt/bin");
    rx r = box_get(&app->in, 1);
    TT_CHECK(r.len == sizeof bin && r.payload && memcmp(r.payload, bin, sizeof bin) == 0);
}

/* An application's command reaches the device it names, in the device's
 * view, and no other device; a gateway sees it on the full topic; a device
 * without a matching subscription gets nothing. */
EMU_TEST(command_routing) {
    cl *app = cl_open(APP1), *d1 = cl_open(DEV1), *d2 = cl_open(DEV2), *gw = cl_open(GW1);
    TT_REQUIRE(app && d1 && d2 && gw);
    TT_CHECK_EQ_INT(cl_sub(d1, "iot-2/cmd/+/fmt/+", TT_QOS1, NULL), 1);
    TT_CHECK_EQ_INT(cl_sub(d2, "iot-2/cmd/+/fmt/+", TT_QOS1, NULL), 1);
    TT_CHECK_EQ_INT(cl_sub(gw, CMD_FILTER, TT_QOS1, NULL), 1);

    TT_CHECK_EQ_INT(cl_pub(app, "iot-2/type/sensor/id/dev1/cmd/reboot/fmt/json", "{\"delay\":5}"), TT_OK);
    TT_REQUIRE(box_wait(&d1->in, 1));
    TT_CHECK_EQ_STR(box_topic(&d1->in, 0), "iot-2/cmd/reboot/fmt/json");
    TT_CHECK_EQ_STR(box_payload(&d1->in, 0), "{\"delay\":5}");
    TT_REQUIRE(box_wait(&gw->in, 1));
    TT_CHECK_EQ_STR(box_topic(&gw->in, 0), "iot-2/type/sensor/id/dev1/cmd/reboot/fmt/json");

    /* Sentinel for dev2: its own command must be the first thing it gets. */
    TT_CHECK_EQ_INT(cl_pub(app, "iot-2/type/sensor/id/dev2/cmd/ping/fmt/txt", "2"), TT_OK);
    TT_REQUIRE(box_wait(&d2->in, 1));
    TT_CHECK_EQ_STR(box_topic(&d2->in, 0), "iot-2/cmd/ping/fmt/txt");
    TT_CHECK_EQ_STR(box_payload(&d2->in, 0), "2");
    cl_quiesce(d2);
    cl_quiesce(d1);
    TT_CHECK_EQ_INT(box_count(&d2->in), 1);
    TT_CHECK_EQ_INT(box_count(&d1->in), 1);

    /* Commands go to the device of the sender's organization: one from
     * another organization's application is not dev1's (the sentinel is). */
    cl *other = cl_open("a:other2:app9", "a-other2-key2", "tok-app2");
    TT_REQUIRE(other);
    TT_CHECK_EQ_INT(cl_pub(other, "iot-2/type/sensor/id/dev1/cmd/reboot/fmt/json", "{\"org\":2}"), TT_OK);
    TT_CHECK_EQ_INT(cl_pub(app, "iot-2/type/sensor/id/dev1/cmd/after/fmt/txt", "s"), TT_OK);
    TT_REQUIRE(box_wait(&d1->in, 2));
    TT_CHECK_EQ_STR(box_topic(&d1->in, 1), "iot-2/cmd/after/fmt/txt");

    /* Unsubscribed: the command for dev1 is dropped, the next for dev2 arrives. */
    TT_CHECK_EQ_INT(cl_unsub(d1, "iot-2/cmd/+/fmt/+"), TT_OK);
    TT_CHECK_EQ_INT(cl_pub(app, "iot-2/type/sensor/id/dev1/cmd/reboot/fmt/json", "{}"), TT_OK);
    TT_CHECK_EQ_INT(cl_pub(app, "iot-2/type/sensor/id/dev2/cmd/ping/fmt/txt", "3"), TT_OK);
    TT_REQUIRE(box_wait(&d2->in, 2));
    cl_quiesce(d1);
    TT_CHECK_EQ_INT(box_count(&d1->in), 2);
    /* The gateway saw every command on the full topic (the other
     * organization's too: topics carry no organization, see README.md). */
    TT_CHECK(box_wait(&gw->in, 6));
}

typedef struct login {
    const char *cid, *user, *pass;
} login;

/* Wrong or missing credentials and malformed client ids are refused with
 * CONNACK 5 (TT_EAUTH); the right ones, in every client id form, accepted. */
EMU_TEST(logins) {
    static const login refused[] = {
        { "d:" ORG ":sensor:dev1", "use-token-auth", "wrong" },          /* wrong token */
        { "d:" ORG ":sensor:dev1", "use-auth-token", "tok-dev1" },       /* wrong user name */
        { "d:" ORG ":sensor:dev1", NULL, NULL },                         /* no credentials */
        { "d:" ORG ":sensor:dev1", "use-token-auth", NULL },             /* no password */
        { "d:" ORG ":sensor:nope", "use-token-auth", "tok-dev1" },        /* unknown device */
        { "d:other2:sensor:dev1", "use-token-auth", "tok-dev1" },         /* other organization */
        { "d:" ORG ":gwtype:gw1", "use-token-auth", "tok-gw1" },         /* a gateway's entry as a device */
        { "g:" ORG ":sensor:dev1", "use-token-auth", "tok-dev1" },       /* a device's entry as a gateway */
        { "g:" ORG ":gwtype:gw1", "use-token-auth", "wrong" },
        { "a:" ORG ":app1", "a-" ORG "-key1", "wrong" },
        { "a:" ORG ":app1", "a-other2-key2", "tok-app2" },               /* key of another org */
        { "a:" ORG ":app1", "a-" ORG "-nokey", "tok-app1" },             /* unknown key */
        { "a:" ORG ":app1", NULL, NULL },
        { "x:" ORG ":sensor:dev1", "use-token-auth", "tok-dev1" },       /* malformed ids */
        { "d:" ORG ":sensor", "use-token-auth", "tok-dev1" },
        { "d:" ORG ":sensor:dev1:x", "use-token-auth", "tok-dev1" },
        { "d:" ORG "::dev1", "use-token-auth", "tok-dev1" },
        { "d:" ORG ":sen+sor:dev1", "use-token-auth", "tok-dev1" },
        { "d:" ORG ":sensor:dev/1", "use-token-auth", "tok-dev1" },
        { "a:" ORG ":app1:inst", "a-" ORG "-key1", "tok-app1" },         /* 4 parts: A: only */
        { "plain-client", NULL, NULL },
        { "g:quickstart:gwtype:gw1", NULL, NULL },                       /* Quickstart: d: and a: only */
        { "A:quickstart:app", NULL, NULL },
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        tt_err rc;
        int detail = -1;
        cl *x = cl_open_ex(refused[i].cid, refused[i].user, refused[i].pass, false, &rc, &detail);
        TT_CHECK_MSG(rc == TT_EAUTH && detail == 5, "%s / %s: %s, detail %d", refused[i].cid,
                     refused[i].user ? refused[i].user : "(none)", tt_err_name(rc), detail);
        cl_close(x);
    }
    static const login accepted[] = {
        { DEV1 },
        { GW1 },
        { APP1 },
        { "A:" ORG ":app1", "a-" ORG "-key1", "tok-app1" },
        { "A:" ORG ":app1:instance-2", "a-" ORG "-key1", "tok-app1" },
    };
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        cl *x = cl_open(accepted[i].cid, accepted[i].user, accepted[i].pass);
        TT_CHECK_MSG(x != NULL, "%s refused", accepted[i].cid);
        cl_close(x);
    }
}

/* Quickstart: no credentials; devices publish events only; applications
 * follow named devices only and send no commands. */
EMU_TEST(quickstart) {
    cl *qd = cl_open("d:quickstart:qtype:qdev1", NULL, NULL);
    cl *qd2 = cl_open("d:quickstart:qtype:qdev2", "anything", "ignored");
    cl *qa = cl_open("a:quickstart:qapp", NULL, NULL);
    cl *obs = cl_open("a:" ORG ":observer", "a-" ORG "-key1", "tok-app1");
    box *cmds = box_new();
    TT_REQUIRE(qd && qd2 && qa && obs && cmds);
    TT_CHECK_EQ_INT(cl_sub(obs, EVT_FILTER, TT_QOS1, NULL), 1);
    TT_CHECK_EQ_INT(cl_sub(obs, CMD_FILTER, TT_QOS1, cmds), 1);

    TT_CHECK_EQ_INT(cl_sub(qa, EVT_FILTER, TT_QOS0, NULL), 0x80);
    TT_CHECK_EQ_INT(cl_sub(qa, "iot-2/type/qtype/id/+/evt/+/fmt/+", TT_QOS0, NULL), 0x80);
    TT_CHECK_EQ_INT(cl_sub(qa, "iot-2/#", TT_QOS0, NULL), 0x80);
    TT_CHECK_EQ_INT(cl_sub(qa, CMD_FILTER, TT_QOS0, NULL), 0x80);
    TT_CHECK_EQ_INT(cl_sub(qa, "iot-2/type/qtype/id/qdev1/evt/+/fmt/+", TT_QOS1, NULL), 1);
    TT_CHECK_EQ_INT(cl_sub(qd, "iot-2/cmd/+/fmt/+", TT_QOS1, NULL), 0x80);
    TT_CHECK_EQ_INT(cl_sub(qd, "iotdm-1/response", TT_QOS1, NULL), 0x80);

    TT_CHECK_EQ_INT(cl_pub(qd, "iot-2/evt/status/fmt/json", "{\"q\":1}"), TT_OK);
    TT_REQUIRE(box_wait(&qa->in, 1));
    TT_CHECK_EQ_STR(box_topic(&qa->in, 0), "iot-2/type/qtype/id/qdev1/evt/status/fmt/json");
    TT_REQUIRE(box_wait(&obs->in, 1));

    /* Not sent: a Quickstart command, a Quickstart device's management request. */
    TT_CHECK_EQ_INT(cl_pub(qa, "iot-2/type/qtype/id/qdev1/cmd/x/fmt/json", "{}"), TT_OK);
    TT_CHECK_EQ_INT(cl_pub(qd, "iotdevice-1/mgmt/manage", "{\"reqId\":\"q\"}"), TT_OK);
    /* Sentinel: an event qdev2 sends. */
    TT_CHECK_EQ_INT(cl_pub(qd2, "iot-2/evt/s/fmt/txt", "s"), TT_OK);
    TT_REQUIRE(box_wait(&obs->in, 2));
    TT_CHECK_EQ_STR(box_topic(&obs->in, 1), "iot-2/type/qtype/id/qdev2/evt/s/fmt/txt");
    cl_quiesce(obs);
    TT_CHECK_EQ_INT(box_count(cmds), 0);
    TT_CHECK_EQ_INT(box_count(&qa->in), 1);                /* qdev2 is not followed */
}

/* Status: Connect and Disconnect JSON on .../mon (retained) for devices and
 * applications; a refused login is no connect; a takeover and a clean end. */
EMU_TEST(status) {
    cl *app = cl_open(APP1);
    box *mon = box_new();
    TT_REQUIRE(app && mon);
    TT_CHECK_EQ_INT(cl_sub(app, "iot-2/type/+/id/+/mon", TT_QOS1, mon), 1);

    cl *dev = cl_open(DEV1);
    TT_REQUIRE(dev);
    TT_REQUIRE(box_wait(mon, 1));
    TT_CHECK_EQ_STR(box_topic(mon, 0), "iot-2/type/sensor/id/dev1/mon");
    json_t *j = box_json(mon, 0);
    TT_REQUIRE(j);
    TT_CHECK_EQ_STR(jstr(j, "Action"), "Connect");
    TT_CHECK_EQ_STR(jstr(j, "ClientID"), "d:" ORG ":sensor:dev1");
    TT_CHECK_EQ_STR(jstr(j, "Protocol"), "mqtt-tcp");
    TT_CHECK_EQ_STR(jstr(j, "User"), "use-token-auth");
    TT_CHECK_EQ_STR(jstr(j, "ClientAddr"), "127.0.0.1");
    TT_CHECK_MSG(iso_ms_utc(jstr(j, "Time")), "Time %s", jstr(j, "Time"));
    TT_CHECK_MSG(iso_ms_utc(jstr(j, "ConnectTime")), "ConnectTime %s", jstr(j, "ConnectTime"));
    TT_CHECK(json_is_integer(json_object_get(j, "Port")));
    TT_CHECK(json_object_get(j, "Reason") == NULL);
    char connect_time[32];
    snprintf(connect_time, sizeof connect_time, "%s", jstr(j, "ConnectTime"));
    json_decref(j);

    TT_CHECK_EQ_INT(cl_pub(dev, "iot-2/evt/a/fmt/txt", "12345"), TT_OK);
    TT_CHECK_EQ_INT(cl_pub(dev, "iot-2/evt/b/fmt/txt", "678"), TT_OK);
    TT_CHECK_EQ_INT(cl_disconnect(dev), TT_OK);
    TT_REQUIRE(box_wait(mon, 2));
    TT_CHECK_EQ_STR(box_topic(mon, 1), "iot-2/type/sensor/id/dev1/mon");
    j = box_json(mon, 1);
    TT_REQUIRE(j);
    TT_CHECK_EQ_STR(jstr(j, "Action"), "Disconnect");
    TT_CHECK_EQ_STR(jstr(j, "ClientID"), "d:" ORG ":sensor:dev1");
    TT_CHECK_EQ_STR(jstr(j, "ConnectTime"), connect_time);
    TT_CHECK(strcmp(jstr(j, "Reason"), "(missing)") != 0);
    TT_CHECK_EQ_INT(json_integer_value(json_object_get(j, "CloseCode")), 0);
    TT_CHECK_EQ_INT(json_integer_value(json_object_get(j, "ReadMsg")), 2);
    TT_CHECK_EQ_INT(json_integer_value(json_object_get(j, "ReadBytes")), 8);
    TT_CHECK(json_is_integer(json_object_get(j, "WriteMsg")));
    TT_CHECK(json_is_integer(json_object_get(j, "WriteBytes")));
    json_decref(j);
    cl_close(dev);

    /* A refused login is not a connect: the next status is dev2's. */
    tt_err rc;
    cl_close(cl_open_ex("d:" ORG ":sensor:dev1", "use-token-auth", "wrong", false, &rc, NULL));
    TT_CHECK_EQ_INT(rc, TT_EAUTH);
    cl *d2 = cl_open(DEV2);
    TT_REQUIRE(d2);
    TT_REQUIRE(box_wait(mon, 3));
    TT_CHECK_EQ_STR(box_topic(mon, 2), "iot-2/type/sensor/id/dev2/mon");

    /* Takeover: the same id again ends the first connection. */
    cl *d2b = cl_open(DEV2);
    TT_REQUIRE(d2b);
    TT_REQUIRE(box_wait(mon, 5));
    j = box_json(mon, 3);
    TT_CHECK_EQ_STR(jstr(j, "Action"), "Disconnect");
    TT_CHECK_EQ_INT(json_integer_value(json_object_get(j, "CloseCode")), 142);
    json_decref(j);
    j = box_json(mon, 4);
    TT_CHECK_EQ_STR(jstr(j, "Action"), "Connect");
    json_decref(j);

    /* Retained: a later application gets the last status of each device,
     * and the applications' own. */
    cl *late = cl_open("a:" ORG ":late", "a-" ORG "-key1", "tok-app1");
    box *lmon = box_new(), *amon = box_new();
    TT_REQUIRE(late && lmon && amon);
    TT_CHECK_EQ_INT(cl_sub(late, "iot-2/type/+/id/+/mon", TT_QOS1, lmon), 1);
    TT_CHECK_EQ_INT(cl_sub(late, "iot-2/app/+/mon", TT_QOS1, amon), 1);
    TT_REQUIRE(box_wait(lmon, 2));
    TT_REQUIRE(box_wait(amon, 2));
    cl_quiesce(late);
    TT_CHECK_EQ_INT(box_count(lmon), 2);
    bool dev1_seen = false, app1_seen = false;
    for (int i = 0; i < box_count(lmon); i++) {
        TT_CHECK(box_get(lmon, i).retained);
        if (strcmp(box_topic(lmon, i), "iot-2/type/sensor/id/dev1/mon") != 0) continue;
        j = box_json(lmon, i);
        TT_CHECK_EQ_STR(jstr(j, "Action"), "Disconnect");
        json_decref(j);
        dev1_seen = true;
    }
    for (int i = 0; i < box_count(amon); i++) {
        if (strcmp(box_topic(amon, i), "iot-2/app/app1/mon") != 0) continue;
        j = box_json(amon, i);
        TT_CHECK_EQ_STR(jstr(j, "Action"), "Connect");
        TT_CHECK_EQ_STR(jstr(j, "ClientID"), "a:" ORG ":app1");
        TT_CHECK_EQ_STR(jstr(j, "User"), "a-" ORG "-key1");
        json_decref(j);
        app1_seen = true;
    }
    TT_CHECK(dev1_seen);
    TT_CHECK(app1_seen);
}

/* The retain flag is ignored: nothing is kept for later subscribers. */
EMU_TEST(retain_cleared) {
    cl *app = cl_open(APP1), *dev = cl_open(DEV1);
    TT_REQUIRE(app && dev);
    TT_CHECK_EQ_INT(cl_sub(app, EVT_FILTER, TT_QOS1, NULL), 1);
    TT_CHECK_EQ_INT(cl_sub(dev, "iot-2/cmd/+/fmt/+", TT_QOS1, NULL), 1);
    TT_CHECK_EQ_INT(cl_pub_ex(dev, "iot-2/evt/r/fmt/txt", "kept?", 5, TT_QOS1, true), TT_OK);
    TT_CHECK_EQ_INT(cl_pub_ex(app, "iot-2/type/sensor/id/dev1/cmd/c/fmt/txt", "kept?", 5, TT_QOS1, true), TT_OK);
    TT_REQUIRE(box_wait(&app->in, 1));
    TT_REQUIRE(box_wait(&dev->in, 1));
    TT_CHECK(!box_get(&app->in, 0).retained);
    TT_CHECK(!box_get(&dev->in, 0).retained);

    /* New subscribers: the first message each gets is the live sentinel. */
    cl *app2 = cl_open("a:" ORG ":app2", "a-" ORG "-key1", "tok-app1"), *gw = cl_open(GW1);
    TT_REQUIRE(app2 && gw);
    TT_CHECK_EQ_INT(cl_sub(app2, EVT_FILTER, TT_QOS1, NULL), 1);
    TT_CHECK_EQ_INT(cl_sub(gw, CMD_FILTER, TT_QOS1, NULL), 1);
    TT_CHECK_EQ_INT(cl_pub(dev, "iot-2/evt/s/fmt/txt", "live"), TT_OK);
    TT_CHECK_EQ_INT(cl_pub(app, "iot-2/type/sensor/id/dev9/cmd/s/fmt/txt", "live"), TT_OK);
    TT_REQUIRE(box_wait(&app2->in, 1));
    TT_REQUIRE(box_wait(&gw->in, 1));
    TT_CHECK_EQ_STR(box_topic(&app2->in, 0), "iot-2/type/sensor/id/dev1/evt/s/fmt/txt");
    TT_CHECK_EQ_STR(box_topic(&gw->in, 0), "iot-2/type/sensor/id/dev9/cmd/s/fmt/txt");
}

/* Payloads: 131072 bytes pass; one more drops the message and disconnects
 * the device (status CloseCode 149). */
EMU_TEST(payload_limit) {
    cl *app = cl_open(APP1);
    box *mon = box_new();
    TT_REQUIRE(app && mon);
    TT_CHECK_EQ_INT(cl_sub(app, EVT_FILTER, TT_QOS1, NULL), 1);
    TT_CHECK_EQ_INT(cl_sub(app, "iot-2/type/sensor/id/dev1/mon", TT_QOS1, mon), 1);
    cl *dev = cl_open(DEV1), *d2 = cl_open(DEV2);
    TT_REQUIRE(dev && d2);
    TT_REQUIRE(box_wait(mon, 1));
    static char big[MAX_PAYLOAD + 1];
    memset(big, 'x', sizeof big);

    TT_CHECK_EQ_INT(cl_pub_ex(dev, "iot-2/evt/big/fmt/bin", big, MAX_PAYLOAD, TT_QOS1, false), TT_OK);
    TT_REQUIRE(box_wait(&app->in, 1));
    TT_CHECK_EQ_INT(box_get(&app->in, 0).len, MAX_PAYLOAD);

    tt_future *f = tt_client_pub(dev->c, "iot-2/evt/bigger/fmt/bin", big, MAX_PAYLOAD + 1, TT_QOS1, false);
    TT_CHECK(tt_future_wait(f, 3000) != TT_OK);
    tt_future_free(f);
    for (int i = 0; i < TT_WAIT_MS / 5 && cl_disconnects(dev) == 0; i++) usleep(5000);
    TT_CHECK_EQ_INT(cl_disconnects(dev), 1);
    TT_REQUIRE(box_wait(mon, 2));
    json_t *j = box_json(mon, 1);
    TT_CHECK_EQ_STR(jstr(j, "Action"), "Disconnect");
    TT_CHECK_EQ_INT(json_integer_value(json_object_get(j, "CloseCode")), 149);
    json_decref(j);

    /* Sentinel: the next event the application gets is dev2's. */
    TT_CHECK_EQ_INT(cl_pub(d2, "iot-2/evt/after/fmt/txt", "ok"), TT_OK);
    TT_REQUIRE(box_wait(&app->in, 2));
    TT_CHECK_EQ_STR(box_topic(&app->in, 1), "iot-2/type/sensor/id/dev2/evt/after/fmt/txt");
}

/* A device speaks for itself only: it cannot publish another device's
 * events or commands, nor subscribe to other devices' topics. */
EMU_TEST(no_impersonation) {
    cl *app = cl_open(APP1), *d1 = cl_open(DEV1), *d2 = cl_open(DEV2);
    TT_REQUIRE(app && d1 && d2);
    TT_CHECK_EQ_INT(cl_sub(app, "iot-2/type/+/id/+/evt/#", TT_QOS1, NULL), 1);
    TT_CHECK_EQ_INT(cl_sub(app, "iot-2/type/+/id/+/cmd/#", TT_QOS1, NULL), 1);
    TT_CHECK_EQ_INT(cl_sub(d2, "iot-2/cmd/+/fmt/+", TT_QOS1, NULL), 1);

    TT_CHECK_EQ_INT(cl_sub(d1, EVT_FILTER, TT_QOS1, NULL), 0x80);
    TT_CHECK_EQ_INT(cl_sub(d1, "iot-2/type/sensor/id/dev2/cmd/+/fmt/+", TT_QOS1, NULL), 0x80);
    TT_CHECK_EQ_INT(cl_sub(d1, "#", TT_QOS1, NULL), 0x80);
    TT_CHECK_EQ_INT(cl_sub(d1, "iot-2/evt/+/fmt/+", TT_QOS1, NULL), 0x80);
    TT_CHECK_EQ_INT(cl_sub(d1, "emu/dm/#", TT_QOS1, NULL), 0x80);

    TT_CHECK_EQ_INT(cl_pub(d1, "iot-2/type/sensor/id/dev2/evt/temp/fmt/json", "{\"fake\":1}"), TT_OK);
    TT_CHECK_EQ_INT(cl_pub(d1, "iot-2/type/sensor/id/dev2/cmd/reboot/fmt/json", "{}"), TT_OK);
    TT_CHECK_EQ_INT(cl_pub(d1, "iot-2/cmd/reboot/fmt/json", "{}"), TT_OK);
    TT_CHECK_EQ_INT(cl_pub(d1, "iotdm-1/response", "{\"rc\":200}"), TT_OK);
    TT_CHECK_EQ_INT(cl_pub(d1, "other/topic", "x"), TT_OK);
    /* Sentinels: dev1's own event for the application, a real command for dev2. */
    TT_CHECK_EQ_INT(cl_pub(d1, "iot-2/evt/ok/fmt/txt", "own"), TT_OK);
    TT_CHECK_EQ_INT(cl_pub(app, "iot-2/type/sensor/id/dev2/cmd/real/fmt/txt", "real"), TT_OK);
    TT_REQUIRE(box_wait(&app->in, 2));
    TT_CHECK_EQ_STR(box_topic(&app->in, 0), "iot-2/type/sensor/id/dev1/evt/ok/fmt/txt");
    TT_CHECK_EQ_STR(box_topic(&app->in, 1), "iot-2/type/sensor/id/dev2/cmd/real/fmt/txt");
    TT_REQUIRE(box_wait(&d2->in, 1));
    TT_CHECK_EQ_STR(box_topic(&d2->in, 0), "iot-2/cmd/real/fmt/txt");
    cl_quiesce(d2);
    cl_quiesce(app);
    TT_CHECK_EQ_INT(box_count(&d2->in), 1);
    TT_CHECK_EQ_INT(box_count(&app->in), 2);
    TT_CHECK_EQ_INT(box_count(&d1->in), 0);
}

/* Device management: every request is answered to its device alone with
 * rc 200 and its reqId (400 and "" without a string reqId), and every
 * iotdevice-1 message is mirrored on emu/dm/<T>/<D>/... */
EMU_TEST(dm_requests) {
    cl *app = cl_open(APP1), *d1 = cl_open(DEV1), *d2 = cl_open(DEV2);
    box *mirror = box_new();
    TT_REQUIRE(app && d1 && d2 && mirror);
    TT_CHECK_EQ_INT(cl_sub(app, "emu/dm/#", TT_QOS1, mirror), 1);
    TT_CHECK_EQ_INT(cl_sub(d1, "iotdm-1/response", TT_QOS1, NULL), 1);
    TT_CHECK_EQ_INT(cl_sub(d2, "iotdm-1/response", TT_QOS1, NULL), 1);

    const char *manage = "{\"d\":{\"lifetime\":3600,\"supports\":{\"deviceActions\":true}},\"reqId\":\"0b3c-11\"}";
    TT_CHECK_EQ_INT(cl_pub(d1, "iotdevice-1/mgmt/manage", manage), TT_OK);
    TT_REQUIRE(box_wait(&d1->in, 1));
    TT_CHECK_EQ_STR(box_topic(&d1->in, 0), "iotdm-1/response");
    TT_CHECK_EQ_STR(box_payload(&d1->in, 0), "{\"rc\":200,\"reqId\":\"0b3c-11\"}");
    TT_REQUIRE(box_wait(mirror, 1));
    TT_CHECK_EQ_STR(box_topic(mirror, 0), "emu/dm/sensor/dev1/mgmt/manage");
    TT_CHECK_EQ_STR(box_payload(mirror, 0), manage);

    /* Every other request topic, in order. */
    static const char *const requests[] = { "mgmt/unmanage",         "device/update/location", "add/diag/errorCodes",
                                            "clear/diag/errorCodes", "add/diag/log",           "clear/diag/log",
                                            "notify" };
    int n = 1;
    for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
        char topic[96], body[80], want[96];
        snprintf(topic, sizeof topic, "iotdevice-1/%s", requests[i]);
        snprintf(body, sizeof body, "{ \"d\" : [1, -2.5e3, null, false, {}], \"reqId\" : \"r%zu\" }", i);
        snprintf(want, sizeof want, "{\"rc\":200,\"reqId\":\"r%zu\"}", i);
        TT_CHECK_EQ_INT(cl_pub(d1, topic, body), TT_OK);
        n++;
        TT_REQUIRE(box_wait(&d1->in, n));
        TT_CHECK_MSG(strcmp(box_payload(&d1->in, n - 1), want) == 0, "%s: %s", requests[i],
                     box_payload(&d1->in, n - 1));
    }

    /* Malformed: rc 400 and an empty reqId. */
    static const char *const bad[] = { "not json", "{\"reqId\":5}", "{\"d\":{\"reqId\":\"nested\"}}",
                                       "{\"reqId\":\"x\"} trailing", "{\"reqId\":\"unterminated}", "",
                                       "[\"reqId\",\"x\"]", "{\"reqId\":\"ctl\x01\"}" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        TT_CHECK_EQ_INT(cl_pub(d1, "iotdevice-1/add/diag/log", bad[i]), TT_OK);
        n++;
        TT_REQUIRE(box_wait(&d1->in, n));
        TT_CHECK_MSG(strcmp(box_payload(&d1->in, n - 1), "{\"rc\":400,\"reqId\":\"\"}") == 0, "%s: %s", bad[i],
                     box_payload(&d1->in, n - 1));
    }
    /* Escapes are kept as they are, so the answer carries the same string. */
    TT_CHECK_EQ_INT(cl_pub(d1, "iotdevice-1/notify", "{\"reqId\":\"a\\\"b\\u0041\"}"), TT_OK);
    n++;
    TT_REQUIRE(box_wait(&d1->in, n));
    json_t *j = box_json(&d1->in, n - 1);
    TT_CHECK_EQ_STR(jstr(j, "reqId"), "a\"bA");
    TT_CHECK_EQ_INT(json_integer_value(json_object_get(j, "rc")), 200);
    json_decref(j);

    /* The device's answer to a platform action is mirrored, not answered:
     * the next answer is for the request after it. */
    TT_CHECK_EQ_INT(cl_pub(d1, "iotdevice-1/response", "{\"rc\":202,\"reqId\":\"act-1\"}"), TT_OK);
    TT_CHECK_EQ_INT(cl_pub(d1, "iotdevice-1/mgmt/unmanage", "{\"reqId\":\"u1\"}"), TT_OK);
    n++;
    TT_REQUIRE(box_wait(&d1->in, n));
    TT_CHECK_EQ_STR(box_payload(&d1->in, n - 1), "{\"rc\":200,\"reqId\":\"u1\"}");
    int mirrored = 1 + (int)(sizeof requests / sizeof requests[0]) + (int)(sizeof bad / sizeof bad[0]) + 3;
    TT_REQUIRE(box_wait(mirror, mirrored));
    TT_CHECK_EQ_STR(box_topic(mirror, mirrored - 2), "emu/dm/sensor/dev1/response");
    TT_CHECK_EQ_STR(box_payload(mirror, mirrored - 2), "{\"rc\":202,\"reqId\":\"act-1\"}");

    /* dev2 saw none of dev1's answers; its own request is answered to it. */
    TT_CHECK_EQ_INT(cl_pub(d2, "iotdevice-1/mgmt/manage", "{\"reqId\":\"d2\"}"), TT_OK);
    TT_REQUIRE(box_wait(&d2->in, 1));
    TT_CHECK_EQ_STR(box_payload(&d2->in, 0), "{\"rc\":200,\"reqId\":\"d2\"}");
    TT_REQUIRE(box_wait(mirror, mirrored + 1));
    TT_CHECK_EQ_STR(box_topic(mirror, mirrored), "emu/dm/sensor/dev2/mgmt/manage");
    cl_quiesce(d2);
    cl_quiesce(d1);
    TT_CHECK_EQ_INT(box_count(&d2->in), 1);
    TT_CHECK_EQ_INT(box_count(&d1->in), n);

    /* Without a subscription to iotdm-1/response there is no answer. */
    TT_CHECK_EQ_INT(cl_unsub(d2, "iotdm-1/response"), TT_OK);
    TT_CHECK_EQ_INT(cl_pub(d2, "iotdevice-1/mgmt/manage", "{\"reqId\":\"d2b\"}"), TT_OK);
    TT_REQUIRE(box_wait(mirror, mirrored + 2));
    cl_quiesce(d2);
    TT_CHECK_EQ_INT(box_count(&d2->in), 1);
}

/* emu/dm-initiate reaches the named device alone, as iotdm-1/...; only
 * applications may use it, and nobody sees the control message itself. */
EMU_TEST(dm_initiate) {
    cl *app = cl_open(APP1), *obs = cl_open("a:" ORG ":observer", "a-" ORG "-key1", "tok-app1");
    cl *d1 = cl_open(DEV1), *d2 = cl_open(DEV2);
    TT_REQUIRE(app && obs && d1 && d2);
    TT_CHECK_EQ_INT(cl_sub(obs, "emu/dm-initiate/#", TT_QOS1, NULL), 0x80);
    TT_CHECK_EQ_INT(cl_sub(obs, "emu/#", TT_QOS1, NULL), 0x80);
    TT_CHECK_EQ_INT(cl_sub(obs, "emu/dm/#", TT_QOS1, NULL), 1);
    TT_CHECK_EQ_INT(cl_sub(obs, "iot-2/#", TT_QOS1, NULL), 1);
    TT_CHECK_EQ_INT(cl_sub(d1, "iotdm-1/mgmt/initiate/device/reboot", TT_QOS1, NULL), 1);
    TT_CHECK_EQ_INT(cl_sub(d2, "iotdm-1/mgmt/initiate/device/reboot", TT_QOS1, NULL), 1);
    cl_quiesce(obs);
    int obs_before = box_count(&obs->in);  /* the retained status messages */

    TT_CHECK_EQ_INT(cl_pub(app, "emu/dm-initiate/sensor/dev1/mgmt/initiate/device/reboot", "{\"reqId\":\"rb-1\"}"),
                    TT_OK);
    TT_REQUIRE(box_wait(&d1->in, 1));
    TT_CHECK_EQ_STR(box_topic(&d1->in, 0), "iotdm-1/mgmt/initiate/device/reboot");
    TT_CHECK_EQ_STR(box_payload(&d1->in, 0), "{\"reqId\":\"rb-1\"}");

    /* A device may not use the control topic. */
    TT_CHECK_EQ_INT(cl_pub(d2, "emu/dm-initiate/sensor/dev1/mgmt/initiate/device/reboot", "{\"reqId\":\"evil\"}"),
                    TT_OK);
    /* Sentinels: one initiate for each device. */
    TT_CHECK_EQ_INT(cl_pub(app, "emu/dm-initiate/sensor/dev2/mgmt/initiate/device/reboot", "{\"reqId\":\"rb-2\"}"),
                    TT_OK);
    TT_CHECK_EQ_INT(cl_pub(app, "emu/dm-initiate/sensor/dev1/mgmt/initiate/device/reboot", "{\"reqId\":\"rb-3\"}"),
                    TT_OK);
    TT_REQUIRE(box_wait(&d2->in, 1));
    TT_REQUIRE(box_wait(&d1->in, 2));
    TT_CHECK_EQ_STR(box_payload(&d2->in, 0), "{\"reqId\":\"rb-2\"}");
    TT_CHECK_EQ_STR(box_payload(&d1->in, 1), "{\"reqId\":\"rb-3\"}");

    /* The device answers; the observer sees the mirror and nothing else. */
    TT_CHECK_EQ_INT(cl_pub(d1, "iotdevice-1/response", "{\"rc\":202,\"reqId\":\"rb-1\"}"), TT_OK);
    TT_REQUIRE(box_wait(&obs->in, obs_before + 1));
    cl_quiesce(obs);
    cl_quiesce(d1);
    cl_quiesce(d2);
    TT_CHECK_EQ_INT(box_count(&obs->in), obs_before + 1);
    TT_CHECK_EQ_STR(box_topic(&obs->in, obs_before), "emu/dm/sensor/dev1/response");
    TT_CHECK_EQ_INT(box_count(&d1->in), 2);
    TT_CHECK_EQ_INT(box_count(&d2->in), 1);
}

/* Gateways: notifications (emu/notify), events for any device, commands on
 * the full topic, and the templated device management topics. */
EMU_TEST(gateway) {
    cl *app = cl_open(APP1), *gw = cl_open(GW1);
    box *notes = box_new(), *dm = box_new(), *mirror = box_new();
    TT_REQUIRE(app && gw && notes && dm && mirror);
    TT_CHECK_EQ_INT(cl_sub(app, EVT_FILTER, TT_QOS1, NULL), 1);
    TT_CHECK_EQ_INT(cl_sub(app, "emu/dm/#", TT_QOS1, mirror), 1);
    TT_CHECK_EQ_INT(cl_sub(gw, "iot-2/type/gwtype/id/gw1/notify", TT_QOS0, notes), 0);
    TT_CHECK_EQ_INT(cl_sub(gw, "iot-2/type/gwtype/id/other/notify", TT_QOS0, NULL), 0x80);
    TT_CHECK_EQ_INT(cl_sub(gw, EVT_FILTER, TT_QOS0, NULL), 0x80);
    TT_CHECK_EQ_INT(cl_sub(gw, "iot-2/cmd/+/fmt/+", TT_QOS0, NULL), 0x80);
    TT_CHECK_EQ_INT(cl_sub(gw, "iot-2/type/sensor/id/dev7/cmd/+/fmt/json", TT_QOS1, NULL), 1);
    TT_CHECK_EQ_INT(cl_sub(gw, "iotdm-1/type/+/id/+/#", TT_QOS1, dm), 1);

    /* A notification, and another gateway's, which it must not get. */
    TT_CHECK_EQ_INT(cl_pub(app, "emu/notify/gwtype/other", "{\"n\":0}"), TT_OK);
    TT_CHECK_EQ_INT(cl_pub(app, "emu/notify/gwtype/gw1", "{\"n\":1}"), TT_OK);
    TT_REQUIRE(box_wait(notes, 1));
    TT_CHECK_EQ_STR(box_topic(notes, 0), "iot-2/type/gwtype/id/gw1/notify");
    TT_CHECK_EQ_STR(box_payload(notes, 0), "{\"n\":1}");

    /* Events: for an attached device and itself pass as they are; the
     * device view is not a gateway's. */
    TT_CHECK_EQ_INT(cl_pub(gw, "iot-2/evt/x/fmt/json", "{}"), TT_OK);
    TT_CHECK_EQ_INT(cl_pub(gw, "iot-2/type/sensor/id/dev7/evt/temp/fmt/json", "{\"t\":1}"), TT_OK);
    TT_CHECK_EQ_INT(cl_pub(gw, "iot-2/type/gwtype/id/gw1/evt/up/fmt/json", "{\"u\":1}"), TT_OK);
    TT_REQUIRE(box_wait(&app->in, 2));
    TT_CHECK_EQ_STR(box_topic(&app->in, 0), "iot-2/type/sensor/id/dev7/evt/temp/fmt/json");
    TT_CHECK_EQ_STR(box_topic(&app->in, 1), "iot-2/type/gwtype/id/gw1/evt/up/fmt/json");

    /* A command for the attached device. */
    TT_CHECK_EQ_INT(cl_pub(app, "iot-2/type/sensor/id/dev7/cmd/blink/fmt/json", "{\"b\":2}"), TT_OK);
    TT_REQUIRE(box_wait(&gw->in, 1));
    TT_CHECK_EQ_STR(box_topic(&gw->in, 0), "iot-2/type/sensor/id/dev7/cmd/blink/fmt/json");

    /* Templated device management: answered to the gateway, mirrored. */
    TT_CHECK_EQ_INT(cl_pub(gw, "iotdevice-1/type/sensor/id/dev7/mgmt/manage", "{\"reqId\":\"g1\"}"), TT_OK);
    TT_REQUIRE(box_wait(dm, 1));
    TT_CHECK_EQ_STR(box_topic(dm, 0), "iotdm-1/type/sensor/id/dev7/response");
    TT_CHECK_EQ_STR(box_payload(dm, 0), "{\"rc\":200,\"reqId\":\"g1\"}");
    TT_REQUIRE(box_wait(mirror, 1));
    TT_CHECK_EQ_STR(box_topic(mirror, 0), "emu/dm/sensor/dev7/mgmt/manage");
    TT_CHECK_EQ_INT(cl_pub(app, "emu/gw-dm-initiate/gwtype/gw1/sensor/dev7/mgmt/initiate/device/reboot",
                           "{\"reqId\":\"g2\"}"),
                    TT_OK);
    TT_REQUIRE(box_wait(dm, 2));
    TT_CHECK_EQ_STR(box_topic(dm, 1), "iotdm-1/type/sensor/id/dev7/mgmt/initiate/device/reboot");

    cl_quiesce(gw);
    TT_CHECK_EQ_INT(box_count(notes), 1);
    TT_CHECK_EQ_INT(box_count(&gw->in), 1);
}

/* A persistent session keeps its command subscription: a command sent
 * while the device is away arrives when it comes back; a clean session
 * drops it. */
EMU_TEST(persistent_session) {
    cl *app = cl_open(APP1), *dev = cl_open_persistent(DEV1, true);
    TT_REQUIRE(app && dev);
    TT_CHECK_EQ_INT(cl_sub(dev, "iot-2/cmd/+/fmt/+", TT_QOS1, NULL), 1);
    TT_CHECK_EQ_INT(cl_disconnect(dev), TT_OK);
    cl_close(dev);

    TT_CHECK_EQ_INT(cl_pub(app, "iot-2/type/sensor/id/dev1/cmd/later/fmt/txt", "queued"), TT_OK);
    dev = cl_open_persistent(DEV1, true);
    TT_REQUIRE(dev);
    TT_REQUIRE(box_wait(&dev->in, 1));
    TT_CHECK_EQ_STR(box_topic(&dev->in, 0), "iot-2/cmd/later/fmt/txt");
    TT_CHECK_EQ_STR(box_payload(&dev->in, 0), "queued");
    TT_CHECK_EQ_INT(cl_disconnect(dev), TT_OK);
    cl_close(dev);

    /* Clean session: no subscription left, so no command. */
    dev = cl_open(DEV1);
    TT_REQUIRE(dev);
    TT_CHECK_EQ_INT(cl_pub(app, "iot-2/type/sensor/id/dev1/cmd/none/fmt/txt", "dropped"), TT_OK);
    cl_quiesce(app);
    cl_quiesce(dev);
    TT_CHECK_EQ_INT(box_count(&dev->in), 0);
}

TT_TEST_LIST = {
    { "device_event_rewritten", test_device_event_rewritten },
    { "command_routing", test_command_routing },
    { "logins", test_logins },
    { "quickstart", test_quickstart },
    { "status", test_status },
    { "retain_cleared", test_retain_cleared },
    { "payload_limit", test_payload_limit },
    { "no_impersonation", test_no_impersonation },
    { "dm_requests", test_dm_requests },
    { "dm_initiate", test_dm_initiate },
    { "gateway", test_gateway },
    { "persistent_session", test_persistent_session },
    { NULL, NULL },
};
