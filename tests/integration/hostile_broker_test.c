/* The MQTT client against a broker that lies: malformed and adversarial
 * packets from a scripted server (tests/support/hostile.c). Every case must
 * end in a specific tt_err with a reason, never a crash, never an allocation
 * sized by what the peer merely declared, and a client that frees cleanly
 * (the allocation hooks count live blocks; ASan/LSan watch the rest). */
#include <pthread.h>
#include <stdatomic.h>
#include <tether/tether.h>
#include <tether/mqtt.h>
#include <unistd.h>

#include "hostile.h"
#include "live_alloc.h"
#include "tt_test.h"
#include "tt_wait.h"


static tt_runtime *g_rt;
static long g_live_base;

static void rt_up(void) { g_rt = tt_live_runtime(1, TT_LOG_DEBUG, &g_live_base); }

/* Every block tether made for the runtime and its clients is freed with it. */
static void rt_down(void) {
    long left = tt_live_runtime_free(g_rt, g_live_base);
    g_rt = NULL;
    TT_CHECK_MSG(left == 0, "%ld blocks still live", left);
}

/* ---- A client against one hostile script ------------------------------------ */

typedef struct rig {
    tt_hostile *h;
    tt_client *c;
    pthread_mutex_t lock;
    int connected, disconnected;
    tt_err ev_err;
    int ev_detail;
    char ev_reason[200];
} rig;

static void on_ev(tt_client *c, const tt_client_event *ev, void *arg) {
    (void)c;
    rig *r = arg;
    pthread_mutex_lock(&r->lock);
    if (ev->kind == TT_EV_CONNECTED) r->connected++;
    if (ev->kind == TT_EV_DISCONNECTED) {
        if (!r->disconnected++) {
            r->ev_err = ev->err;
            r->ev_detail = ev->detail;
            snprintf(r->ev_reason, sizeof r->ev_reason, "%s", ev->reason ? ev->reason : "");
        }
    }
    pthread_mutex_unlock(&r->lock);
}

static int disconnected(rig *r) { return tt_locked_int(&r->lock, &r->disconnected); }

static bool wait_disconnected(rig *r, int ms) {
    for (int i = 0; i < ms / 5 && !disconnected(r); i++) usleep(5000);
    return disconnected(r) > 0;
}

/* Start the script and a client for it; o may set version and limits. */
static bool rig_up(rig *r, const tt_hostile_step *steps, size_t n, tt_client_opts *o) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    if (tt_hostile_start(&r->h, steps, n) != 0) return false;
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", tt_hostile_port(r->h));
    o->url = url;
    o->on_event = on_ev;
    o->on_event_arg = r;
    if (!o->connect_timeout_ms) o->connect_timeout_ms = 5000;
    tt_err rc = tt_client_new(g_rt, o, &r->c);
    if (rc != TT_OK) fprintf(stderr, "tt_client_new: %s\n", tt_strerror(rc));
    return rc == TT_OK;
}

/* rig_up with a client of MQTT version `v` (4 or 5) that does not reconnect. */
static bool rig_up_v(rig *r, const tt_hostile_step *steps, size_t n, int v) {
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.version = (tt_mqtt_version)v;
    o.no_reconnect = true;
    return rig_up(r, steps, n, &o);
}

static void rig_down(rig *r) {
    if (r->c) {
        tt_future *f = tt_client_close(r->c);
        TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
        tt_future_free(f);
        tt_client_free(r->c);
    }
    tt_hostile_free(r->h);
    pthread_mutex_destroy(&r->lock);
}

typedef struct outcome {
    bool connected;                   /* the connect future succeeded */
    tt_err err;                       /* then: the first TT_EV_DISCONNECTED; else the future's */
    int detail;
    char reason[200];
} outcome;

/* Connect, and take whichever failure comes: the connect future's or, once
 * connected, the first disconnect event's. */
static void connect_outcome(rig *r, outcome *out) {
    memset(out, 0, sizeof *out);
    tt_future *f = tt_client_connect(r->c);
    tt_err rc = tt_future_wait(f, TT_WAIT_MS);
    if (rc != TT_OK) {
        const char *why = NULL;
        out->err = rc;
        out->detail = tt_future_detail(f, &why);
        snprintf(out->reason, sizeof out->reason, "%s", why ? why : "");
    } else {
        out->connected = true;
        if (wait_disconnected(r, TT_WAIT_MS)) {
            pthread_mutex_lock(&r->lock);
            out->err = r->ev_err;
            out->detail = r->ev_detail;
            snprintf(out->reason, sizeof out->reason, "%s", r->ev_reason);
            pthread_mutex_unlock(&r->lock);
        } else {
            out->err = TT_OK;
        }
    }
    tt_future_free(f);
}

/* One script, one expectation: `after_connack` says whether the failure must
 * come as a disconnect event (true) or from the connect future (false). */
static void expect_case(const char *name, const tt_hostile_step *steps, size_t n, int version,
                        bool after_connack, tt_err want) {
    rig r;
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.version = (tt_mqtt_version)version;
    o.no_reconnect = true;
    TT_REQUIRE(rig_up(&r, steps, n, &o));
    outcome out;
    connect_outcome(&r, &out);
    fprintf(stderr, "  %-28s v%d: %s, detail %d, \"%s\"\n", name, version, tt_err_name(out.err),
            out.detail, out.reason);
    TT_CHECK_MSG(out.connected == after_connack, "%s: connected %d", name, out.connected);
    TT_CHECK_MSG(out.err == want, "%s: %s, wanted %s", name, tt_err_name(out.err), tt_err_name(want));
    TT_CHECK_MSG(out.reason[0] != 0, "%s: no reason", name);
    rig_down(&r);
}

#define NSTEPS(a) (sizeof(a) / sizeof((a)[0]))
#define CONNACK_OK_311 { 0x20, 0x02, 0x00, 0x00 }
#define CONNACK_OK_5 { 0x20, 0x03, 0x00, 0x00, 0x00 }

static const uint8_t connack4[] = CONNACK_OK_311;
static const uint8_t connack5[] = CONNACK_OK_5;

/* CONNECT → CONNACK accepted → `bad` → hold the socket open. */
static void after_connack(const char *name, const uint8_t *bad, size_t len, int version, tt_err want) {
    tt_hostile_step s[] = {
        TT_HOSTILE_EXPECT(1),
        version == 5 ? (tt_hostile_step)TT_HOSTILE_SEND(connack5) : (tt_hostile_step)TT_HOSTILE_SEND(connack4),
        { .op = TT_HOSTILE_OP_SEND, .bytes = bad, .len = len },
        TT_HOSTILE_HOLD(),
    };
    expect_case(name, s, NSTEPS(s), version, true, want);
}

/* CONNECT → `bad` instead of a CONNACK → hold. */
static void instead_of_connack(const char *name, const uint8_t *bad, size_t len, int version, tt_err want) {
    tt_hostile_step s[] = {
        TT_HOSTILE_EXPECT(1),
        { .op = TT_HOSTILE_OP_SEND, .bytes = bad, .len = len },
        TT_HOSTILE_HOLD(),
    };
    expect_case(name, s, NSTEPS(s), version, false, want);
}

/* ---- Cases ------------------------------------------------------------------------- */

static void test_wrong_lengths(void) {
    rt_up();
    static const uint8_t connack_long[] = { 0x20, 0x03, 0x00, 0x00, 0x00 };   /* 3.1.1: must be 2 */
    static const uint8_t connack_short[] = { 0x20, 0x01, 0x00 };
    static const uint8_t puback_empty[] = { 0x40, 0x00 };
    static const uint8_t puback_long[] = { 0x40, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00 };
    static const uint8_t pingresp_long[] = { 0xD0, 0x01, 0x00 };
    static const uint8_t topic_past_end[] = { 0x30, 0x04, 0x00, 0x10, 'a', 'b' };
    static const uint8_t suback_no_codes[] = { 0x90, 0x02, 0x00, 0x01 };
    instead_of_connack("CONNACK length 3", connack_long, sizeof connack_long, 4, TT_EPROTO);
    instead_of_connack("CONNACK length 1", connack_short, sizeof connack_short, 4, TT_EPROTO);
    instead_of_connack("CONNACK length 1", connack_short, sizeof connack_short, 5, TT_EPROTO);
    after_connack("PUBACK length 0", puback_empty, sizeof puback_empty, 4, TT_EPROTO);
    after_connack("PUBACK length 5", puback_long, sizeof puback_long, 4, TT_EPROTO);
    after_connack("PINGRESP length 1", pingresp_long, sizeof pingresp_long, 4, TT_EPROTO);
    after_connack("topic longer than packet", topic_past_end, sizeof topic_past_end, 4, TT_EPROTO);
    after_connack("topic longer than packet", topic_past_end, sizeof topic_past_end, 5, TT_EPROTO);
    after_connack("SUBACK without codes", suback_no_codes, sizeof suback_no_codes, 4, TT_EPROTO);
    rt_down();
}

static void test_five_byte_length(void) {
    rt_up();
    static const uint8_t five[] = { 0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x00, 0x01, 'a' };
    static const uint8_t five_ack[] = { 0x20, 0x82, 0x80, 0x80, 0x80, 0x00 };
    for (int v = 4; v <= 5; v++) {
        after_connack("5-byte remaining length", five, sizeof five, v, TT_EPROTO);
        instead_of_connack("5-byte CONNACK length", five_ack, sizeof five_ack, v, TT_EPROTO);
    }
    rt_down();
}

static void test_invalid_utf8_topic(void) {
    rt_up();
    static const uint8_t bad_byte[] = { 0x30, 0x05, 0x00, 0x03, 'a', 0xFF, 'b' };
    static const uint8_t overlong[] = { 0x30, 0x05, 0x00, 0x03, 'a', 0xC0, 0xAF };   /* "/" overlong */
    static const uint8_t surrogate[] = { 0x30, 0x05, 0x00, 0x03, 0xED, 0xA0, 0x80 }; /* U+D800 */
    static const uint8_t nul[] = { 0x30, 0x05, 0x00, 0x03, 'a', 0x00, 'b' };
    static const uint8_t truncated[] = { 0x30, 0x04, 0x00, 0x02, 'a', 0xE2 };
    for (int v = 4; v <= 5; v++) {
        after_connack("topic byte 0xFF", bad_byte, sizeof bad_byte, v, TT_EPROTO);
        after_connack("topic overlong UTF-8", overlong, sizeof overlong, v, TT_EPROTO);
        after_connack("topic UTF-16 surrogate", surrogate, sizeof surrogate, v, TT_EPROTO);
        after_connack("topic with U+0000", nul, sizeof nul, v, TT_EPROTO);
        after_connack("topic cut mid-character", truncated, sizeof truncated, v, TT_EPROTO);
    }
    rt_down();
}

static void test_unknown_packet_type(void) {
    rt_up();
    static const uint8_t type0[] = { 0x00, 0x00 };
    static const uint8_t type15[] = { 0xF0, 0x00 };
    for (int v = 4; v <= 5; v++) {
        after_connack("packet type 0", type0, sizeof type0, v, TT_EPROTO);
        after_connack("packet type 15", type15, sizeof type15, v, TT_EPROTO);
        instead_of_connack("packet type 0 first", type0, sizeof type0, v, TT_EPROTO);
        instead_of_connack("packet type 15 first", type15, sizeof type15, v, TT_EPROTO);
    }
    rt_down();
}

/* A well-formed AUTH challenge to a client that named no authentication
 * method, after or instead of the CONNACK: a protocol error, not a call of
 * a handler that does not exist. */
static void test_unasked_auth(void) {
    rt_up();
    static const uint8_t auth[] = { 0xF0, 0x0F, 0x18, 0x0D, 0x15, 0x00, 0x0A,
                                    't',  'e',  't',  'h',  'e',  'r',  '-', 'x', 'y', 'z' };
    after_connack("AUTH after CONNACK", auth, sizeof auth, 5, TT_EPROTO);
    instead_of_connack("AUTH instead of CONNACK", auth, sizeof auth, 5, TT_EPROTO);
    rt_down();
}

/* "Use another server" in a CONNACK or a DISCONNECT: the reason names the
 * server the broker points to. */
static void test_server_reference(void) {
    rt_up();
    static const uint8_t refused[] = { 0x20, 0x10, 0x00, 0x9C, 0x0D, 0x1C, 0x00, 0x0A,
                                       'o',  't',  'h',  'e',  'r',  ':',  '1',  '8', '8', '3' };
    static const uint8_t moved[] = { 0xE0, 0x0F, 0x9D, 0x0D, 0x1C, 0x00, 0x0A, 'o', 't',
                                     'h',  'e',  'r',  ':',  '1',  '8',  '8',  '3' };
    for (int k = 0; k < 2; k++) {
        tt_hostile_step conn_refused[] = { TT_HOSTILE_EXPECT(1), TT_HOSTILE_SEND(refused), TT_HOSTILE_HOLD() };
        tt_hostile_step disc_moved[] = { TT_HOSTILE_EXPECT(1), TT_HOSTILE_SEND(connack5), TT_HOSTILE_SEND(moved),
                                         TT_HOSTILE_HOLD() };
        rig r;
        TT_REQUIRE(k == 0 ? rig_up_v(&r, conn_refused, NSTEPS(conn_refused), 5)
                          : rig_up_v(&r, disc_moved, NSTEPS(disc_moved), 5));
        outcome out;
        connect_outcome(&r, &out);
        TT_CHECK_EQ_INT(out.connected, k == 1);
        TT_CHECK_EQ_INT(out.detail, k == 0 ? 0x9C : 0x9D);
        TT_CHECK_MSG(strstr(out.reason, "server reference: other:1883"), "reason: %s", out.reason);
        rig_down(&r);
    }
    rt_down();
}

static void test_duplicate_properties(void) {
    rt_up();
    /* Receive Maximum twice. */
    static const uint8_t dup_rm[] = { 0x20, 0x09, 0x00, 0x00, 0x06, 0x21, 0x00, 0x0A, 0x21, 0x00, 0x0A };
    /* Reason String twice on a refusal. */
    static const uint8_t dup_rs[] = { 0x20, 0x0B, 0x00, 0x87, 0x08, 0x1F, 0x00, 0x01, 'a',
                                      0x1F, 0x00, 0x01, 'b' };
    /* Session Expiry Interval twice on a DISCONNECT. */
    static const uint8_t dup_disc[] = { 0xE0, 0x0C, 0x80, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x01,
                                        0x11, 0x00, 0x00, 0x00, 0x01 };
    instead_of_connack("CONNACK Receive Maximum x2", dup_rm, sizeof dup_rm, 5, TT_EPROTO);
    instead_of_connack("CONNACK Reason String x2", dup_rs, sizeof dup_rs, 5, TT_EPROTO);
    after_connack("DISCONNECT Session Expiry x2", dup_disc, sizeof dup_disc, 5, TT_EPROTO);
    rt_down();
}

static void test_connack_twice(void) {
    rt_up();
    for (int v = 4; v <= 5; v++) {
        if (v == 4) after_connack("CONNACK twice", connack4, sizeof connack4, v, TT_EPROTO);
        else after_connack("CONNACK twice", connack5, sizeof connack5, v, TT_EPROTO);
    }
    rt_down();
}

/* Acknowledgements for ids never used are logged and ignored: the connection
 * stays, and a ping still gets through it. */
static void test_ack_for_unknown_id(void) {
    rt_up();
    /* CONNACK and the stray acknowledgements in one write, so they arrive in
     * the read that completes the connect: the PUBREL the client owes leaves
     * before the test's PINGREQ can (separate writes raced it under load). */
    static const uint8_t stray4[] = { 0x20, 0x02, 0x00, 0x00,             /* CONNACK */
                                      0x40, 0x02, 0x12, 0x34,             /* PUBACK */
                                      0x50, 0x02, 0x23, 0x45,             /* PUBREC */
                                      0x70, 0x02, 0x34, 0x56,             /* PUBCOMP */
                                      0xB0, 0x02, 0x45, 0x67 };           /* UNSUBACK */
    static const uint8_t stray5[] = { 0x20, 0x03, 0x00, 0x00, 0x00,
                                      0x40, 0x02, 0x12, 0x34,
                                      0x50, 0x02, 0x23, 0x45,
                                      0x70, 0x02, 0x34, 0x56,
                                      0xB0, 0x04, 0x45, 0x67, 0x00, 0x00 };
    static const uint8_t pingresp[] = { 0xD0, 0x00 };
    for (int v = 4; v <= 5; v++) {
        tt_hostile_step s[] = {
            TT_HOSTILE_EXPECT(1),
            v == 5 ? (tt_hostile_step)TT_HOSTILE_SEND(stray5) : (tt_hostile_step)TT_HOSTILE_SEND(stray4),
            TT_HOSTILE_EXPECT(6),            /* the client still answers PUBREC with PUBREL */
            TT_HOSTILE_EXPECT(12),           /* PINGREQ */
            TT_HOSTILE_SEND(pingresp),
            TT_HOSTILE_HOLD(),
        };
        rig r;
        TT_REQUIRE(rig_up_v(&r, s, NSTEPS(s), v));
        tt_future *f = tt_client_connect(r.c);
        TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
        tt_future_free(f);
        f = tt_client_ping(r.c);
        TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
        tt_future_free(f);
        usleep(100000);
        TT_CHECK_EQ_INT(disconnected(&r), 0);
        rig_down(&r);
    }
    rt_down();
}

/* A PUBLISH that declares 256 MiB and sends nothing more: refused from its
 * fixed header (above max_packet_size), and even with the limit raised the
 * client only ever holds what actually arrived. */
static void test_huge_declared_length(void) {
    rt_up();
    static const uint8_t huge[] = { 0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x03, 'a', '/', 'b' };
    tt_live_largest_reset();
    for (int v = 4; v <= 5; v++)
        after_connack("PUBLISH of 256 MiB", huge, sizeof huge, v, TT_EPROTO);
    instead_of_connack("PUBLISH of 256 MiB first", huge, sizeof huge, 4, TT_EPROTO);
    size_t largest = tt_live_largest();
    fprintf(stderr, "  largest single allocation: %zu bytes\n", largest);
    TT_CHECK_MSG(largest < (1u << 20), "%zu bytes", largest);

    /* The limit raised to the protocol's maximum: the client waits for the
     * rest, holding only the bytes sent, until the peer goes away. */
    tt_live_largest_reset();
    static const uint8_t chunk[4096] = { 0 };
    tt_hostile_step s[] = {
        TT_HOSTILE_EXPECT(1), TT_HOSTILE_SEND(connack4), TT_HOSTILE_SEND(huge),
        TT_HOSTILE_SEND(chunk), TT_HOSTILE_SEND(chunk), TT_HOSTILE_SEND(chunk),
        TT_HOSTILE_SLEEP(300), TT_HOSTILE_CLOSE(),
    };
    rig r;
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.no_reconnect = true;
    o.max_packet_size = UINT32_MAX;
    TT_REQUIRE(rig_up(&r, s, NSTEPS(s), &o));
    outcome out;
    connect_outcome(&r, &out);
    fprintf(stderr, "  %-28s v4: %s, \"%s\"\n", "256 MiB, limit raised", tt_err_name(out.err), out.reason);
    TT_CHECK(out.connected);
    TT_CHECK_EQ_INT(out.err, TT_ECONNRESET);
    TT_CHECK(out.reason[0] != 0);
    rig_down(&r);
    largest = tt_live_largest();
    fprintf(stderr, "  largest single allocation (limit raised): %zu bytes\n", largest);
    TT_CHECK_MSG(largest < (1u << 20), "%zu bytes", largest);
    rt_down();
}

/* A subscription the broker refuses (umqtt raises MQTTException on SUBACK
 * 0x80): the future fails with TT_EREFUSED, the detail is the code, and the
 * client stays connected. */
static void test_suback_refused(void) {
    rt_up();
    static const uint8_t suback4[] = { 0x90, 0x03, 0x00, 0x00, 0x80 };
    static const uint8_t suback5[] = { 0x90, 0x04, 0x00, 0x00, 0x00, 0x87 };
    static const uint8_t pingresp[] = { 0xD0, 0x00 };
    for (int v = 4; v <= 5; v++) {
        tt_hostile_step s[] = {
            TT_HOSTILE_EXPECT(1),
            v == 5 ? (tt_hostile_step)TT_HOSTILE_SEND(connack5) : (tt_hostile_step)TT_HOSTILE_SEND(connack4),
            TT_HOSTILE_EXPECT(8),
            v == 5 ? (tt_hostile_step)TT_HOSTILE_SEND_PID(suback5, 2)
                   : (tt_hostile_step)TT_HOSTILE_SEND_PID(suback4, 2),
            TT_HOSTILE_EXPECT(12),
            TT_HOSTILE_SEND(pingresp),
            TT_HOSTILE_HOLD(),
        };
        rig r;
        TT_REQUIRE(rig_up_v(&r, s, NSTEPS(s), v));
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_connect(r.c)), TT_OK);
        tt_sub sub = { .filter = "not/mine", .qos = TT_QOS1 };
        tt_future *f = tt_client_subscribe(r.c, &sub, 1, NULL);
        TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_EREFUSED);
        TT_CHECK_EQ_INT(tt_future_detail(f, NULL), v == 5 ? 0x87 : 0x80);
        tt_future_free(f);
        /* Still connected: a ping gets its answer. */
        TT_CHECK_EQ_INT(tt_wait_free(tt_client_ping(r.c)), TT_OK);
        rig_down(&r);
    }
    rt_down();
}

/* A SUBACK carrying two codes for one filter. */
static void test_suback_wrong_count(void) {
    rt_up();
    static const uint8_t suback4[] = { 0x90, 0x04, 0x00, 0x00, 0x01, 0x01 };
    static const uint8_t suback5[] = { 0x90, 0x05, 0x00, 0x00, 0x00, 0x01, 0x01 };
    for (int v = 4; v <= 5; v++) {
        tt_hostile_step s[] = {
            TT_HOSTILE_EXPECT(1),
            v == 5 ? (tt_hostile_step)TT_HOSTILE_SEND(connack5) : (tt_hostile_step)TT_HOSTILE_SEND(connack4),
            TT_HOSTILE_EXPECT(8),
            v == 5 ? (tt_hostile_step)TT_HOSTILE_SEND_PID(suback5, 2)
                   : (tt_hostile_step)TT_HOSTILE_SEND_PID(suback4, 2),
            TT_HOSTILE_HOLD(),
        };
        rig r;
        TT_REQUIRE(rig_up_v(&r, s, NSTEPS(s), v));
        tt_future *f = tt_client_connect(r.c);
        TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
        tt_future_free(f);
        tt_sub sub = { .filter = "a/b", .qos = TT_QOS1 };
        f = tt_client_subscribe(r.c, &sub, 1, NULL);
        tt_err rc = tt_future_wait(f, 3000);
        const char *why = NULL;
        (void)tt_future_detail(f, &why);
        fprintf(stderr, "  %-28s v%d: subscribe %s \"%s\"\n", "SUBACK with 2 codes for 1", v,
                tt_err_name(rc), why ? why : "");
        TT_CHECK_MSG(rc == TT_EPROTO || rc == TT_ECONNRESET, "subscribe: %s", tt_err_name(rc));
        tt_future_free(f);
        TT_CHECK(wait_disconnected(&r, TT_WAIT_MS));
        TT_CHECK_EQ_INT(r.ev_err, TT_EPROTO);
        TT_CHECK(r.ev_reason[0] != 0);
        rig_down(&r);
    }
    rt_down();
}

/* CONNACK refusals: the kind, the code in detail, the broker's text. */
static void test_connack_refused(void) {
    rt_up();
    for (uint8_t code = 1; code <= 5; code++) {
        uint8_t ack[] = { 0x20, 0x02, 0x00, code };
        tt_hostile_step s[] = { TT_HOSTILE_EXPECT(1), TT_HOSTILE_SEND(ack), TT_HOSTILE_HOLD() };
        rig r;
        tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
        o.no_reconnect = true;
        TT_REQUIRE(rig_up(&r, s, NSTEPS(s), &o));
        outcome out;
        connect_outcome(&r, &out);
        fprintf(stderr, "  CONNACK 3.1.1 code %u: %s, detail %d, \"%s\"\n", code, tt_err_name(out.err),
                out.detail, out.reason);
        TT_CHECK(!out.connected);
        TT_CHECK_EQ_INT(out.err, code >= 4 ? TT_EAUTH : TT_EREFUSED);
        TT_CHECK_EQ_INT(out.detail, code);
        TT_CHECK(out.reason[0] != 0);
        rig_down(&r);
    }
    static const char text[] = "go away, says the hostile broker";
    static const uint8_t v5codes[] = { 0x80, 0x84, 0x86, 0x87, 0x8A, 0x95, 0x9C };
    for (size_t i = 0; i < sizeof v5codes; i++) {
        uint8_t ack[64];
        size_t tl = sizeof text - 1;
        ack[0] = 0x20;
        ack[1] = (uint8_t)(2 + 1 + 3 + tl);
        ack[2] = 0x00;
        ack[3] = v5codes[i];
        ack[4] = (uint8_t)(3 + tl);
        ack[5] = 0x1F;
        ack[6] = 0x00;
        ack[7] = (uint8_t)tl;
        memcpy(ack + 8, text, tl);
        tt_hostile_step s[] = {
            TT_HOSTILE_EXPECT(1),
            { .op = TT_HOSTILE_OP_SEND, .bytes = ack, .len = 8 + tl },
            TT_HOSTILE_HOLD(),
        };
        rig r;
        tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
        o.version = TT_MQTT_5;
        o.no_reconnect = true;
        TT_REQUIRE(rig_up(&r, s, NSTEPS(s), &o));
        outcome out;
        connect_outcome(&r, &out);
        fprintf(stderr, "  CONNACK v5 0x%02x: %s, detail %d, \"%s\"\n", v5codes[i], tt_err_name(out.err),
                out.detail, out.reason);
        TT_CHECK(!out.connected);
        TT_CHECK_EQ_INT(out.err, v5codes[i] == 0x86 || v5codes[i] == 0x87 ? TT_EAUTH : TT_EREFUSED);
        TT_CHECK_EQ_INT(out.detail, v5codes[i]);
        TT_CHECK_MSG(strstr(out.reason, text) != NULL, "reason \"%s\"", out.reason);
        rig_down(&r);
    }
    rt_down();
}

/* A server that accepts and then says nothing: the connect deadline. */
static void test_silent_server(void) {
    rt_up();
    tt_hostile_step silent[] = { TT_HOSTILE_HOLD() };
    tt_hostile_step no_connack[] = { TT_HOSTILE_EXPECT(1), TT_HOSTILE_HOLD() };
    const tt_hostile_step *scripts[] = { silent, no_connack };
    size_t lens[] = { NSTEPS(silent), NSTEPS(no_connack) };
    for (int i = 0; i < 2; i++) {
        rig r;
        tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
        o.no_reconnect = true;
        o.connect_timeout_ms = 400;
        TT_REQUIRE(rig_up(&r, scripts[i], lens[i], &o));
        double t0 = tt_test_now_();
        outcome out;
        connect_outcome(&r, &out);
        double dt = tt_test_now_() - t0;
        fprintf(stderr, "  silent server %d: %s after %.3f s, \"%s\"\n", i, tt_err_name(out.err), dt,
                out.reason);
        TT_CHECK(!out.connected);
        TT_CHECK_EQ_INT(out.err, TT_ETIMEDOUT);
        TT_CHECK(out.reason[0] != 0);
        TT_CHECK_MSG(dt >= 0.35 && dt < 3.0, "%.3f s", dt);
        rig_down(&r);
    }
    rt_down();
}

/* A server that closes at once, before or after reading CONNECT. */
static void test_closing_server(void) {
    rt_up();
    tt_hostile_step at_once[] = { TT_HOSTILE_CLOSE() };
    tt_hostile_step after_connect[] = { TT_HOSTILE_EXPECT(1), TT_HOSTILE_CLOSE() };
    tt_hostile_step after_connack[] = { TT_HOSTILE_EXPECT(1), TT_HOSTILE_SEND(connack4), TT_HOSTILE_CLOSE() };
    expect_case("close at once", at_once, NSTEPS(at_once), 4, false, TT_ECONNRESET);
    expect_case("close after CONNECT", after_connect, NSTEPS(after_connect), 4, false, TT_ECONNRESET);
    expect_case("close after CONNACK", after_connack, NSTEPS(after_connack), 4, true, TT_ECONNRESET);
    rt_down();
}

/* With reconnect on, a broker that sends garbage every time makes the client
 * retry (backing off), and the client still closes and frees cleanly. */
static void test_reconnect_into_garbage(void) {
    rt_up();
    static const uint8_t garbage[] = { 0x00, 0x00 };
    tt_hostile_step s[] = {
        TT_HOSTILE_EXPECT(1), TT_HOSTILE_SEND(connack4), TT_HOSTILE_SEND(garbage), TT_HOSTILE_HOLD(),
    };
    rig r;
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.backoff_min_ms = 10;
    o.backoff_max_ms = 40;
    TT_REQUIRE(rig_up(&r, s, NSTEPS(s), &o));
    tt_future *f = tt_client_connect(r.c);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
    tt_future_free(f);
    /* Publishes queued meanwhile stay pending until the client goes. */
    tt_future *pf = tt_client_pub(r.c, "a/b", "x", 1, TT_QOS1, false);
    for (int i = 0; i < 400 && tt_hostile_accepted(r.h) < 5; i++) usleep(10000);
    TT_CHECK_MSG(tt_hostile_accepted(r.h) >= 5, "%d connections", tt_hostile_accepted(r.h));
    pthread_mutex_lock(&r.lock);
    tt_err first = r.ev_err;
    pthread_mutex_unlock(&r.lock);
    TT_CHECK_EQ_INT(first, TT_EPROTO);
    rig_down(&r);
    TT_CHECK_EQ_INT(tt_future_wait(pf, TT_WAIT_MS), TT_ECLOSED);
    tt_future_free(pf);
    rt_down();
}

/* ---- QoS 2 receive rules ------------------------------------------------------ */

typedef struct inbox {
    pthread_mutex_t lock;
    int n;
    char got[8];
} inbox;

static void on_q2_msg(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    inbox *in = arg;
    size_t len;
    const char *p = tt_msg_payload(m, &len);
    pthread_mutex_lock(&in->lock);
    if (in->n < (int)sizeof in->got) in->got[in->n] = len == 1 ? p[0] : '?';
    in->n++;
    pthread_mutex_unlock(&in->lock);
}

/* While the client holds a QoS 2 id (PUBREC sent, no PUBREL yet) every
 * PUBLISH with that id is the message it already has, with or without DUP;
 * once PUBREL released the id, a PUBLISH with it is a new message even when
 * it carries DUP. "a" arrives three times before PUBREL and is delivered
 * once; "b" reuses the id after PUBCOMP and is delivered. */
static void test_qos2_receive_rules(void) {
    rt_up();
    static const uint8_t a4[] = { 0x34, 0x08, 0x00, 0x03, 'q', '/', '2', 0x00, 0x07, 'a' };
    static const uint8_t a4dup[] = { 0x3C, 0x08, 0x00, 0x03, 'q', '/', '2', 0x00, 0x07, 'a' };
    static const uint8_t b4dup[] = { 0x3C, 0x08, 0x00, 0x03, 'q', '/', '2', 0x00, 0x07, 'b' };
    static const uint8_t a5[] = { 0x34, 0x09, 0x00, 0x03, 'q', '/', '2', 0x00, 0x07, 0x00, 'a' };
    static const uint8_t a5dup[] = { 0x3C, 0x09, 0x00, 0x03, 'q', '/', '2', 0x00, 0x07, 0x00, 'a' };
    static const uint8_t b5dup[] = { 0x3C, 0x09, 0x00, 0x03, 'q', '/', '2', 0x00, 0x07, 0x00, 'b' };
    static const uint8_t pubrel[] = { 0x62, 0x02, 0x00, 0x07 };
    for (int v = 4; v <= 5; v++) {
        bool v5 = v == 5;
        tt_hostile_step s[] = {
            TT_HOSTILE_EXPECT(1),
            v5 ? (tt_hostile_step)TT_HOSTILE_SEND(connack5) : (tt_hostile_step)TT_HOSTILE_SEND(connack4),
            v5 ? (tt_hostile_step)TT_HOSTILE_SEND(a5) : (tt_hostile_step)TT_HOSTILE_SEND(a4),
            TT_HOSTILE_EXPECT(5),            /* PUBREC */
            v5 ? (tt_hostile_step)TT_HOSTILE_SEND(a5) : (tt_hostile_step)TT_HOSTILE_SEND(a4),
            TT_HOSTILE_EXPECT(5),            /* the same message again, no DUP */
            v5 ? (tt_hostile_step)TT_HOSTILE_SEND(a5dup) : (tt_hostile_step)TT_HOSTILE_SEND(a4dup),
            TT_HOSTILE_EXPECT(5),            /* and with DUP */
            TT_HOSTILE_SEND(pubrel),
            TT_HOSTILE_EXPECT(7),            /* PUBCOMP: the id is free */
            v5 ? (tt_hostile_step)TT_HOSTILE_SEND(b5dup) : (tt_hostile_step)TT_HOSTILE_SEND(b4dup),
            TT_HOSTILE_EXPECT(5),
            TT_HOSTILE_SEND(pubrel),
            TT_HOSTILE_EXPECT(7),
            TT_HOSTILE_HOLD(),
        };
        inbox in = { .lock = PTHREAD_MUTEX_INITIALIZER };
        rig r;
        tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
        o.version = (tt_mqtt_version)v;
        o.no_reconnect = true;
        o.on_message = on_q2_msg;
        o.on_message_arg = &in;
        TT_REQUIRE(rig_up(&r, s, NSTEPS(s), &o));
        tt_future *f = tt_client_connect(r.c);
        TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
        tt_future_free(f);
        /* "b" comes last: once it is in, everything before it was handled. */
        bool got_b = false;
        for (int i = 0; i < 1000 && !got_b; i++) {
            usleep(5000);
            pthread_mutex_lock(&in.lock);
            got_b = in.n > 0 && in.n <= (int)sizeof in.got && in.got[in.n - 1] == 'b';
            pthread_mutex_unlock(&in.lock);
        }
        usleep(50000);
        pthread_mutex_lock(&in.lock);
        fprintf(stderr, "  v%d: %d deliveries (%.*s)\n", v, in.n, in.n < 8 ? in.n : 8, in.got);
        TT_CHECK_EQ_INT(in.n, 2);
        TT_CHECK(in.got[0] == 'a' && in.got[1] == 'b');
        pthread_mutex_unlock(&in.lock);
        TT_CHECK_EQ_INT(disconnected(&r), 0);
        rig_down(&r);
    }
    rt_down();
}

/* A v5 broker without wildcard or shared subscriptions says so in CONNACK:
 * such a subscribe fails with TT_ENOTSUP and the code the broker would use,
 * nothing is sent for it (the script would answer a SUBSCRIBE), and a plain
 * filter still goes. */
static void test_connack_no_wildcards(void) {
    rt_up();
    static const uint8_t connack[] = { 0x20, 0x07, 0x00, 0x00, 0x04, 0x28, 0x00, 0x2A, 0x00 };
    static const uint8_t suback[] = { 0x90, 0x04, 0x00, 0x00, 0x00, 0x01 };
    tt_hostile_step s[] = {
        TT_HOSTILE_EXPECT(1),
        TT_HOSTILE_SEND(connack),
        TT_HOSTILE_EXPECT(8),
        TT_HOSTILE_SEND_PID(suback, 2),
        TT_HOSTILE_HOLD(),
    };
    rig r;
    TT_REQUIRE(rig_up_v(&r, s, NSTEPS(s), 5));
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_connect(r.c)), TT_OK);
    static const struct { const char *filter; int code; } refused[] = {
        { "a/+", 0xA2 }, { "a/#", 0xA2 }, { "$share/g/a", 0x9E }, { "$share/g/a/+", 0x9E },
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        tt_sub sub = { .filter = refused[i].filter, .qos = TT_QOS1 };
        tt_future *f = tt_client_subscribe(r.c, &sub, 1, NULL);
        const char *why = NULL;
        TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_ENOTSUP);
        TT_CHECK_MSG(tt_future_detail(f, &why) == refused[i].code, "%s: detail 0x%x (%s)",
                     refused[i].filter, tt_future_detail(f, NULL), why ? why : "");
        tt_future_free(f);
    }
    /* A list with one refused filter sends none of it. */
    tt_sub two[2] = { { .filter = "ok/1", .qos = TT_QOS1 }, { .filter = "no/+", .qos = TT_QOS1 } };
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_subscribe(r.c, two, 2, NULL)), TT_ENOTSUP);
    tt_sub plain = { .filter = "a/b", .qos = TT_QOS1 };
    tt_future *f = tt_client_subscribe(r.c, &plain, 1, NULL);
    TT_CHECK_EQ_INT(tt_future_wait(f, TT_WAIT_MS), TT_OK);
    const uint8_t *codes = NULL;
    size_t n = 0;
    TT_CHECK(tt_future_get_suback(f, &codes, &n) == TT_OK && n == 1 && codes[0] == 1);
    tt_future_free(f);
    TT_CHECK_EQ_INT(disconnected(&r), 0);
    rig_down(&r);
    rt_down();
}

/* ---- Inbound topic aliases (MQTT 5) -------------------------------------------------- */

typedef struct topics {
    pthread_mutex_t lock;
    int n;
    char t[4][16];
} topics;

static void on_alias_msg(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    topics *tp = arg;
    size_t tl, pl;
    const char *t = tt_msg_topic(m, &tl);
    const char *p = tt_msg_payload(m, &pl);
    pthread_mutex_lock(&tp->lock);
    if (tp->n < 4) snprintf(tp->t[tp->n], sizeof tp->t[0], "%.*s=%.*s", (int)tl, t, (int)pl, p);
    tp->n++;
    pthread_mutex_unlock(&tp->lock);
}

/* A broker may send a topic once with an alias and then the alias alone:
 * the client hands every message over with its full topic, and an alias
 * past the maximum it announced, or an unknown one, is a protocol error. */
static void test_inbound_topic_alias(void) {
    rt_up();
    /* "al/t" with alias 1; then alias 1 alone; then "al/u" re-mapping alias 1. */
    static const uint8_t set1[] = { 0x30, 0x0B, 0x00, 0x04, 'a', 'l', '/', 't', 0x03, 0x23, 0x00, 0x01, 'a' };
    static const uint8_t use1[] = { 0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01, 'b' };
    static const uint8_t remap1[] = { 0x30, 0x0B, 0x00, 0x04, 'a', 'l', '/', 'u', 0x03, 0x23, 0x00, 0x01, 'c' };
    static const uint8_t use1b[] = { 0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01, 'd' };
    tt_hostile_step s[] = {
        TT_HOSTILE_EXPECT(1), TT_HOSTILE_SEND(connack5), TT_HOSTILE_SEND(set1), TT_HOSTILE_SEND(use1),
        TT_HOSTILE_SEND(remap1), TT_HOSTILE_SEND(use1b), TT_HOSTILE_HOLD(),
    };
    topics tp = { .lock = PTHREAD_MUTEX_INITIALIZER };
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.version = TT_MQTT_5;
    o.no_reconnect = true;
    o.topic_alias_maximum = 2;
    o.on_message = on_alias_msg;
    o.on_message_arg = &tp;
    rig r;
    TT_REQUIRE(rig_up(&r, s, NSTEPS(s), &o));
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_connect(r.c)), TT_OK);
    TT_CHECK(tt_wait_count(&tp.lock, &tp.n, 4));
    pthread_mutex_lock(&tp.lock);
    TT_CHECK_EQ_STR(tp.t[0], "al/t=a");
    TT_CHECK_EQ_STR(tp.t[1], "al/t=b");
    TT_CHECK_EQ_STR(tp.t[2], "al/u=c");
    TT_CHECK_EQ_STR(tp.t[3], "al/u=d");
    pthread_mutex_unlock(&tp.lock);
    TT_CHECK_EQ_INT(disconnected(&r), 0);
    rig_down(&r);

    /* Alias 3 when the client allows 2; alias 2 never set. */
    static const uint8_t over[] = { 0x30, 0x0B, 0x00, 0x04, 'a', 'l', '/', 't', 0x03, 0x23, 0x00, 0x03, 'x' };
    static const uint8_t unknown[] = { 0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x02, 'y' };
    const uint8_t *bad[] = { over, unknown };
    size_t badlen[] = { sizeof over, sizeof unknown };
    for (int i = 0; i < 2; i++) {
        tt_hostile_step sb[] = {
            TT_HOSTILE_EXPECT(1), TT_HOSTILE_SEND(connack5), { .op = TT_HOSTILE_OP_SEND, .bytes = bad[i], .len = badlen[i] },
            TT_HOSTILE_HOLD(),
        };
        tt_client_opts ob = TT_OPTS_INIT(tt_client_opts);
        ob.version = TT_MQTT_5;
        ob.no_reconnect = true;
        ob.topic_alias_maximum = 2;
        TT_REQUIRE(rig_up(&r, sb, NSTEPS(sb), &ob));
        outcome out;
        connect_outcome(&r, &out);
        TT_CHECK_MSG(out.connected && out.err == TT_EPROTO, "%s alias: %s (%s)", i ? "unknown" : "too large",
                     tt_err_name(out.err), out.reason);
        rig_down(&r);
    }
    rt_down();
}

TT_TEST_LIST = {
    { "connack_no_wildcards", test_connack_no_wildcards },
    { "unasked_auth", test_unasked_auth },
    { "server_reference", test_server_reference },
    { "inbound_topic_alias", test_inbound_topic_alias },
    { "wrong_lengths", test_wrong_lengths },
    { "five_byte_length", test_five_byte_length },
    { "invalid_utf8_topic", test_invalid_utf8_topic },
    { "unknown_packet_type", test_unknown_packet_type },
    { "duplicate_properties", test_duplicate_properties },
    { "connack_twice", test_connack_twice },
    { "ack_for_unknown_id", test_ack_for_unknown_id },
    { "huge_declared_length", test_huge_declared_length },
    { "suback_wrong_count", test_suback_wrong_count },
    { "suback_refused", test_suback_refused },
    { "connack_refused", test_connack_refused },
    { "silent_server", test_silent_server },
    { "closing_server", test_closing_server },
    { "reconnect_into_garbage", test_reconnect_into_garbage },
    { "qos2_receive_rules", test_qos2_receive_rules },
    { NULL, NULL },
};
