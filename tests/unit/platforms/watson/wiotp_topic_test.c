/* How each client reads an incoming topic: the kind of message and the
 * names in it, for every topic the platform sends, and nothing for the rest. */
#include <stdio.h>
#include <string.h>
#include <tether/tether.h>
#include <tether/watson.h>

#include "platforms/watson/wiotp_internal.h"
#include "tt_test.h"

static tt_runtime *g_rt;

static tt_wiotp *make(tt_wiotp_role role) {
    if (!g_rt && tt_runtime_new(&g_rt, NULL) != TT_OK) return NULL;
    tt_wiotp_opts o = TT_OPTS_INIT(tt_wiotp_opts);
    o.role = role;
    o.host = "127.0.0.1";
    o.port = 1;
    if (role == TT_WIOTP_APP) {
        o.api_key = "a-org1-k";
        o.token = "t";
        o.app_id = "app";
    } else {
        o.org = "org1";
        o.type_id = "mytype";
        o.device_id = "me";
        o.token = "t";
    }
    tt_wiotp *w = NULL;
    return tt_wiotp_new(g_rt, &o, &w) == TT_OK ? w : NULL;
}

typedef struct topic_case {
    const char *topic;
    tt_wiotp_kind kind;               /* 0: not one of the platform's */
    const char *type, *device, *id, *format;
} topic_case;

static void check(tt_wiotp *w, const topic_case *c) {
    char buf[1024];
    tt_wiotp_msg m;
    size_t tl = strlen(c->topic);
    bool ok = tti_wiotp_parse_topic(w, c->topic, tl, buf, &m);
    TT_CHECK_MSG(ok == (c->kind != 0), "%s: parsed %d", c->topic, ok);
    if (!ok || !c->kind) return;
    TT_CHECK_MSG(m.kind == c->kind, "%s: kind %d, want %d", c->topic, m.kind, c->kind);
    TT_CHECK_EQ_STR(m.type_id, c->type);
    TT_CHECK_EQ_STR(m.device_id, c->device);
    TT_CHECK_EQ_STR(m.id, c->id);
    TT_CHECK_EQ_STR(m.format, c->format);
    TT_CHECK_EQ_STR(m.topic, c->topic);
}

static const topic_case common[] = {
    { "iot-2/type/T/id/D/evt/E/fmt/json", TT_WIOTP_EVENT, "T", "D", "E", "json" },
    { "iot-2/type/T/id/D/cmd/C/fmt/bin", TT_WIOTP_COMMAND, "T", "D", "C", "bin" },
    { "iot-2/type/T/id/D/mon", TT_WIOTP_DEVICE_STATUS, "T", "D", "", "json" },
    { "iot-2/app/A1/mon", TT_WIOTP_APP_STATUS, "", "A1", "", "json" },
    { "iot-2/type/GT/id/GD/notify", TT_WIOTP_NOTIFICATION, "GT", "GD", "", "json" },
    { "iot-2/type/T/id/D/intf/LI/evt/state", TT_WIOTP_DEVICE_STATE, "T", "D", "LI", "json" },
    { "iot-2/thing/type/T/id/X/intf/LI/evt/state", TT_WIOTP_THING_STATE, "T", "X", "LI", "json" },
    { "iot-2/type/T/id/D/err/data", TT_WIOTP_DEVICE_ERROR, "T", "D", "", "json" },
    { "iot-2/thing/type/T/id/X/err/data", TT_WIOTP_THING_ERROR, "T", "X", "", "json" },
    /* none of the platform's */
    { "iot-2/type/T/id/D/evt/E/fmt", 0, NULL, NULL, NULL, NULL },
    { "iot-2/type/T/id/D/evt/E/xxx/json", 0, NULL, NULL, NULL, NULL },
    { "iot-2/type/T/id/D/evt/E/fmt/json/extra", 0, NULL, NULL, NULL, NULL },
    { "iot-2/thing/type/T/id/D/evt/E/fmt/json", 0, NULL, NULL, NULL, NULL },
    { "iot-2/thing/type/T/id/X/mon", 0, NULL, NULL, NULL, NULL },
    { "iot-2/type/T/id/D/intf/LI/evt/other", 0, NULL, NULL, NULL, NULL },
    { "iot-2/type/T/id/D/err/other", 0, NULL, NULL, NULL, NULL },
    { "iot-2/type/T/ID/D/mon", 0, NULL, NULL, NULL, NULL },
    { "iot-2/app/A1", 0, NULL, NULL, NULL, NULL },
    { "iot-2/cmd/C/fmt", 0, NULL, NULL, NULL, NULL },
    { "iot-3/type/T/id/D/mon", 0, NULL, NULL, NULL, NULL },
    { "iot-2", 0, NULL, NULL, NULL, NULL },
    { "", 0, NULL, NULL, NULL, NULL },
    { "a/b/c/d/e/f/g/h/i/j/k/l", 0, NULL, NULL, NULL, NULL },
    { "iot-2/thing/type/T/id/X/intf/LI/evt/state/x", 0, NULL, NULL, NULL, NULL },
};

/* The application and gateway views: full topics. */
static void test_full_topics(void) {
    tt_wiotp *a = make(TT_WIOTP_APP), *g = make(TT_WIOTP_GATEWAY);
    TT_REQUIRE(a && g);
    for (size_t i = 0; i < sizeof common / sizeof *common; i++) {
        check(a, &common[i]);
        check(g, &common[i]);
    }
    tt_wiotp_free(a);
    tt_wiotp_free(g);
}

/* The device view: iot-2/cmd/C/fmt/F is a command to the device itself. */
static void test_device_view(void) {
    tt_wiotp *d = make(TT_WIOTP_DEVICE);
    TT_REQUIRE(d);
    const topic_case own = { "iot-2/cmd/reboot/fmt/json", TT_WIOTP_COMMAND, "mytype", "me", "reboot", "json" };
    check(d, &own);
    const topic_case evt = { "iot-2/evt/E/fmt/json", 0, NULL, NULL, NULL, NULL };   /* its own publish */
    check(d, &evt);
    for (size_t i = 0; i < sizeof common / sizeof *common; i++) check(d, &common[i]);
    tt_wiotp_free(d);
}

/* The topic given need not end in NUL; a long one is read whole. */
static void test_unterminated_and_long(void) {
    tt_wiotp *a = make(TT_WIOTP_APP);
    TT_REQUIRE(a);
    char src[] = "iot-2/type/T/id/D/mon#garbage";
    char buf[128];
    tt_wiotp_msg m;
    TT_CHECK(tti_wiotp_parse_topic(a, src, strlen("iot-2/type/T/id/D/mon"), buf, &m));
    TT_CHECK_EQ_STR(m.topic, "iot-2/type/T/id/D/mon");
    TT_CHECK_EQ_STR(m.device_id, "D");
    static char longt[3000], big[6100];
    memset(longt, 'x', sizeof longt);
    memcpy(longt, "iot-2/type/T/id/", 16);
    memcpy(longt + 2000, "/evt/E/fmt/json", 15);
    longt[2015] = '\0';
    TT_CHECK(tti_wiotp_parse_topic(a, longt, strlen(longt), big, &m));
    TT_CHECK_EQ_INT(strlen(m.device_id), 2000 - 16);
    TT_CHECK_EQ_STR(m.format, "json");
    tt_wiotp_free(a);
}

static void test_done(void) {
    tt_runtime_free(g_rt);
    g_rt = NULL;
}

TT_TEST_LIST = {
    { "full_topics", test_full_topics },
    { "device_view", test_device_view },
    { "unterminated_and_long", test_unterminated_and_long },
    { "done", test_done },
    { NULL, NULL },
};
