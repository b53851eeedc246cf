/* MQTT codec: spec byte vectors, every rejection rule, incomplete input,
 * round trips of every packet type in 3.1.1 and 5.0, encoder checks.
 *
 * `TT_MQTT_CORPUS_DIR=dir mqtt_codec_test write_corpus` writes the fuzz seed corpus. */
#include <stdio.h>

#include "tt_test.h"
#include "codecs/mqtt/mqtt_codec.h"
#include "tests/unit/codecs/mqtt/mqtt_test_util.h"

#define V4 TTI_MQTT_V311
#define V5 TTI_MQTT_V5
#define MAXP (1u << 20) /* 1 MiB packet limit used by most tests */

#define S(lit) ((tti_mqtt_str){ (lit), sizeof(lit) - 1 })
#define B(lit) ((tti_mqtt_bin){ (const uint8_t *)(lit), sizeof(lit) - 1 })
#define PBIT(id) TTI_MQTT_PBIT(TTI_MQTT_PROP_##id)

static int decode(const uint8_t *d, size_t n, uint8_t v, tti_mqtt_pkt *pkt, const char **why) {
    return tti_mqtt_decode(d, n, v, MAXP, pkt, why);
}

/* Decode must refuse `d` with TT_EPROTO and say why. */
static void expect_reject_(const uint8_t *d, size_t n, uint8_t v, const char *what, int line) {
    tti_mqtt_pkt pkt;
    const char *why = NULL;
    int rc = decode(d, n, v, &pkt, &why);
    if (getenv("TT_MQTT_VERBOSE")) fprintf(stderr, "  %-45s -> %s\n", what, why ? why : "");
    TT_CHECK_MSG(rc == TT_EPROTO, "line %d (%s): rc %d", line, what, rc);
    TT_CHECK_MSG(why && *why, "line %d (%s): no reason", line, what);
}
#define REJECT(v, what, ...)                                                           \
    do {                                                                               \
        static const uint8_t d_[] = { __VA_ARGS__ };                                   \
        expect_reject_(d_, sizeof d_, v, what, __LINE__);                              \
    } while (0)

static void expect_accept_(const uint8_t *d, size_t n, uint8_t v, const char *what, int line) {
    tti_mqtt_pkt pkt;
    const char *why = "";
    int rc = decode(d, n, v, &pkt, &why);
    TT_CHECK_MSG(rc == (int)n, "line %d (%s): rc %d (%s)", line, what, rc, rc < 0 ? why : "");
}
#define ACCEPT(v, what, ...)                                                           \
    do {                                                                               \
        static const uint8_t d_[] = { __VA_ARGS__ };                                   \
        expect_accept_(d_, sizeof d_, v, what, __LINE__);                              \
    } while (0)

/* Every proper prefix is incomplete (0), the whole is accepted, and a
 * following packet in the buffer is left alone. */
static void check_prefixes(const uint8_t *d, size_t n, uint8_t v) {
    tti_mqtt_pkt pkt;
    for (size_t i = 0; i < n; i++) {
        int rc = decode(d, i, v, &pkt, NULL);
        TT_CHECK_MSG(rc == 0, "prefix %zu of %zu: rc %d", i, n, rc);
        if (i >= 5 && rc == 0) TT_CHECK_MSG(pkt.len == n, "prefix %zu: len %zu", i, pkt.len);
    }
    uint8_t buf[512];
    TT_REQUIRE(n + 2 <= sizeof buf);
    memcpy(buf, d, n);
    buf[n] = 0xC0; /* PINGREQ */
    buf[n + 1] = 0x00;
    TT_CHECK_EQ_INT(decode(buf, n + 2, v, &pkt, NULL), n);
}

/* ---- Spec vectors --------------------------------------------------------- */

/* MQTT 3.1.1 CONNECT with will, user name and password (section 3.1 layout). */
static const uint8_t v4_connect[] = {
    0x10, 37,                                 /* CONNECT, remaining length */
    0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,     /* protocol name, level 4 */
    0xEE,                                     /* user, password, will retain, will QoS 1, will, clean */
    0x00, 0x3C,                               /* keep alive 60 */
    0x00, 0x03, 'c', 'i', 'd',                /* client id */
    0x00, 0x05, 'w', '/', 't', 'o', 'p',      /* will topic */
    0x00, 0x03, 'b', 'y', 'e',                /* will message */
    0x00, 0x04, 'u', 's', 'e', 'r',           /* user name */
    0x00, 0x02, 'p', 'w',                     /* password */
};

static void test_v4_connect_vector(void) {
    tti_mqtt_pkt p;
    const char *why = NULL;
    TT_REQUIRE(decode(v4_connect, sizeof v4_connect, V4, &p, &why) == (int)sizeof v4_connect);
    TT_CHECK_EQ_INT(p.type, TTI_MQTT_CONNECT);
    const tti_mqtt_connect *c = &p.u.connect;
    TT_CHECK_EQ_INT(c->level, 4);
    TT_CHECK(c->clean_start && c->will && c->will_retain && c->has_username && c->has_password);
    TT_CHECK_EQ_INT(c->will_qos, 1);
    TT_CHECK_EQ_INT(c->keep_alive, 60);
    TT_CHECK(TT_MQTT_STR_EQ(c->client_id, S("cid")));
    TT_CHECK(TT_MQTT_STR_EQ(c->will_topic, S("w/top")));
    TT_CHECK(TT_MQTT_STR_EQ(c->will_payload, S("bye")));
    TT_CHECK(TT_MQTT_STR_EQ(c->username, S("user")));
    TT_CHECK(TT_MQTT_STR_EQ(c->password, S("pw")));
    /* Views point into the input: nothing was copied. */
    TT_CHECK(c->client_id.ptr == (const char *)v4_connect + 14);
    check_prefixes(v4_connect, sizeof v4_connect, V4);
    /* Version 0 detects the level of a CONNECT. */
    TT_CHECK_EQ_INT(tti_mqtt_decode(v4_connect, sizeof v4_connect, 0, 0, &p, NULL),
                    sizeof v4_connect);
    TT_CHECK_EQ_INT(p.u.connect.level, 4);
    /* The encoder writes exactly these bytes back. */
    uint8_t out[64];
    TT_CHECK_EQ_INT(tti_mqtt_encode(&p, V4, out, sizeof out, NULL), sizeof v4_connect);
    TT_CHECK(memcmp(out, v4_connect, sizeof v4_connect) == 0);
}

/* MQTT 5 CONNACK with properties (section 3.2). */
static const uint8_t v5_connack[] = {
    0x20, 33,
    0x01, 0x00,                               /* session present, Success */
    30,                                       /* property length */
    0x11, 0x00, 0x00, 0x00, 0x78,             /* Session Expiry Interval 120 */
    0x21, 0x00, 0x0A,                         /* Receive Maximum 10 */
    0x24, 0x01,                               /* Maximum QoS 1 */
    0x12, 0x00, 0x03, 'a', 'b', 'c',          /* Assigned Client Identifier */
    0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v',   /* User Property k=v */
    0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'w',   /* User Property k=w (repeatable) */
};

static void test_v5_connack_vector(void) {
    tti_mqtt_pkt p;
    TT_REQUIRE(decode(v5_connack, sizeof v5_connack, V5, &p, NULL) == (int)sizeof v5_connack);
    TT_CHECK_EQ_INT(p.type, TTI_MQTT_CONNACK);
    TT_CHECK(p.u.connack.session_present);
    TT_CHECK_EQ_INT(p.reason, 0);
    const tti_mqtt_props *pr = &p.props;
    TT_CHECK(pr->present == (PBIT(SESSION_EXPIRY) | PBIT(RECEIVE_MAX) | PBIT(MAX_QOS) |
                             PBIT(ASSIGNED_CLIENT_ID) | PBIT(USER_PROPERTY)));
    TT_CHECK_EQ_INT(pr->session_expiry, 120);
    TT_CHECK_EQ_INT(pr->receive_max, 10);
    TT_CHECK_EQ_INT(pr->max_qos, 1);
    TT_CHECK(TT_MQTT_STR_EQ(pr->assigned_client_id, S("abc")));
    TT_CHECK_EQ_INT(pr->user_prop_count, 2);
    tti_mqtt_iter it;
    tti_mqtt_user_prop up;
    tti_mqtt_user_props_begin(&it, pr);
    TT_CHECK(tti_mqtt_user_props_next(&it, &up) && TT_MQTT_STR_EQ(up.key, S("k")) &&
             TT_MQTT_STR_EQ(up.value, S("v")));
    TT_CHECK(tti_mqtt_user_props_next(&it, &up) && TT_MQTT_STR_EQ(up.value, S("w")));
    TT_CHECK(!tti_mqtt_user_props_next(&it, &up));
    check_prefixes(v5_connack, sizeof v5_connack, V5);
    /* The same bytes are not a 3.1.1 CONNACK (length must be 2). */
    expect_reject_(v5_connack, sizeof v5_connack, V4, "v5 connack as v4", __LINE__);
}

/* MQTT 5 SUBSCRIBE with a subscription identifier and options (section 3.8). */
static const uint8_t v5_subscribe[] = {
    0x82, 17,
    0x00, 0x0A,                               /* packet id 10 */
    0x02, 0x0B, 0x05,                         /* properties: Subscription Identifier 5 */
    0x00, 0x03, 'a', '/', '#', 0x1D,          /* QoS 1, no local, RAP, retain handling 1 */
    0x00, 0x03, '+', '/', 'b', 0x22,          /* QoS 2, retain handling 2 */
};

static void test_v5_subscribe_vector(void) {
    tti_mqtt_pkt p;
    TT_REQUIRE(decode(v5_subscribe, sizeof v5_subscribe, V5, &p, NULL) == (int)sizeof v5_subscribe);
    TT_CHECK_EQ_INT(p.packet_id, 10);
    TT_CHECK_EQ_INT(p.props.sub_id, 5);
    TT_CHECK_EQ_INT(p.u.subscribe.count, 2);
    tti_mqtt_iter it;
    tti_mqtt_sub s;
    tti_mqtt_subs_begin(&it, &p);
    TT_REQUIRE(tti_mqtt_subs_next(&it, &s));
    TT_CHECK(TT_MQTT_STR_EQ(s.filter, S("a/#")));
    TT_CHECK(s.qos == 1 && s.no_local && s.retain_as_published && s.retain_handling == 1);
    TT_REQUIRE(tti_mqtt_subs_next(&it, &s));
    TT_CHECK(TT_MQTT_STR_EQ(s.filter, S("+/b")));
    TT_CHECK(s.qos == 2 && !s.no_local && !s.retain_as_published && s.retain_handling == 2);
    TT_CHECK(!tti_mqtt_subs_next(&it, &s));
    check_prefixes(v5_subscribe, sizeof v5_subscribe, V5);
}

/* MQTT 5 PUBLISH QoS 1, DUP, retain, with publication properties (section 3.3). */
static const uint8_t v5_publish[] = {
    0x3B, 43,
    0x00, 0x03, 'a', '/', 'b',                /* topic */
    0x00, 0x07,                               /* packet id 7 */
    33,                                       /* property length */
    0x01, 0x01,                               /* Payload Format Indicator: UTF-8 */
    0x02, 0x00, 0x00, 0x00, 0x3C,             /* Message Expiry Interval 60 */
    0x23, 0x00, 0x05,                         /* Topic Alias 5 */
    0x08, 0x00, 0x03, 'r', '/', 'x',          /* Response Topic */
    0x09, 0x00, 0x02, 0x01, 0x02,             /* Correlation Data */
    0x0B, 0x03,                               /* Subscription Identifier 3 */
    0x0B, 0x81, 0x01,                         /* Subscription Identifier 129 */
    0x03, 0x00, 0x04, 'j', 's', 'o', 'n',     /* Content Type */
    'h', 'i',                                 /* payload */
};

static void test_v5_publish_vector(void) {
    tti_mqtt_pkt p;
    TT_REQUIRE(decode(v5_publish, sizeof v5_publish, V5, &p, NULL) == (int)sizeof v5_publish);
    const tti_mqtt_publish *pb = &p.u.publish;
    TT_CHECK(pb->qos == 1 && pb->dup && pb->retain);
    TT_CHECK(TT_MQTT_STR_EQ(pb->topic, S("a/b")));
    TT_CHECK(TT_MQTT_STR_EQ(pb->payload, S("hi")));
    TT_CHECK_EQ_INT(p.packet_id, 7);
    TT_CHECK_EQ_INT(p.props.payload_format, 1);
    TT_CHECK_EQ_INT(p.props.message_expiry, 60);
    TT_CHECK_EQ_INT(p.props.topic_alias, 5);
    TT_CHECK(TT_MQTT_STR_EQ(p.props.response_topic, S("r/x")));
    TT_CHECK(TT_MQTT_STR_EQ(p.props.correlation_data, B("\x01\x02")));
    TT_CHECK(TT_MQTT_STR_EQ(p.props.content_type, S("json")));
    TT_CHECK_EQ_INT(p.props.sub_id_count, 2);
    tti_mqtt_iter it;
    uint32_t id;
    tti_mqtt_sub_ids_begin(&it, &p.props);
    TT_CHECK(tti_mqtt_sub_ids_next(&it, &id) && id == 3);
    TT_CHECK(tti_mqtt_sub_ids_next(&it, &id) && id == 129);
    TT_CHECK(!tti_mqtt_sub_ids_next(&it, &id));
    check_prefixes(v5_publish, sizeof v5_publish, V5);
}

/* Small vectors of every other shape, accepted and incomplete-safe. */
static void test_small_vectors(void) {
    static const uint8_t v4_pub0[] = { 0x30, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i' };
    static const uint8_t v4_sub[] = { 0x82, 0x08, 0x00, 0x01, 0x00, 0x03, 'a', '/', 'b', 0x01 };
    static const uint8_t v4_suback[] = { 0x90, 0x03, 0x00, 0x01, 0x80 };
    static const uint8_t v4_unsub[] = { 0xA2, 0x07, 0x00, 0x02, 0x00, 0x03, 'a', '/', '+' };
    static const uint8_t v4_unsuback[] = { 0xB0, 0x02, 0x00, 0x02 };
    static const uint8_t v4_connack[] = { 0x20, 0x02, 0x00, 0x05 };
    static const uint8_t v4_puback[] = { 0x40, 0x02, 0x12, 0x34 };
    static const uint8_t v4_pubrel[] = { 0x62, 0x02, 0x12, 0x34 };
    static const uint8_t v4_disc[] = { 0xE0, 0x00 };
    static const uint8_t ping[] = { 0xC0, 0x00 };
    static const uint8_t pong[] = { 0xD0, 0x00 };
    static const uint8_t v5_puback_rc[] = { 0x40, 0x03, 0x00, 0x01, 0x10 };
    static const uint8_t v5_pubrec_props[] = { 0x50, 0x08, 0x00, 0x01, 0x80, 0x04,
                                               0x1F, 0x00, 0x01, 'x' };
    static const uint8_t v5_disc_rc[] = { 0xE0, 0x01, 0x04 };
    static const uint8_t v5_disc_props[] = { 0xE0, 0x07, 0x8E, 0x05, 0x11, 0, 0, 0, 0 };
    static const uint8_t v5_auth[] = { 0xF0, 0x08, 0x18, 0x06, 0x15, 0x00, 0x03, 'S', 'C', 'R' };
    static const uint8_t v5_auth_empty[] = { 0xF0, 0x00 };
    static const uint8_t v5_unsuback[] = { 0xB0, 0x05, 0x00, 0x02, 0x00, 0x00, 0x11 };
    static const uint8_t v5_suback[] = { 0x90, 0x06, 0x00, 0x02, 0x00, 0x00, 0x01, 0xA2 };
    static const uint8_t v5_pub_alias[] = { 0x30, 0x06, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01 };
    static const uint8_t v5_sub_shared[] = { 0x82, 0x12, 0x00, 0x01, 0x00, 0x00, 0x0C, '$', 's',
                                             'h', 'a', 'r', 'e', '/', 'g', '/', 'a', '/', '#',
                                             0x01 };
    static const uint8_t v5_connect_min[] = { 0x10, 0x0D, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05,
                                              0x02, 0x00, 0x00, 0x00, 0x00, 0x00 };
    static const uint8_t v5_connect_pw_only[] = { 0x10, 0x11, 0x00, 0x04, 'M', 'Q', 'T', 'T',
                                                  0x05, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
                                                  0x00, 0x02, 'p', 'w' };
    /* Non-minimal Remaining Length (2 bytes for 2) is legal. */
    static const uint8_t v4_puback_long_len[] = { 0x40, 0x82, 0x00, 0x12, 0x34 };
    /* UTF-8: 2-, 3- and 4-byte sequences in a topic. */
    static const uint8_t v4_pub_utf8[] = { 0x30, 0x0B, 0x00, 0x09, 0xC3, 0xA9, 0xE2, 0x82, 0xAC,
                                           0xF0, 0x9F, 0x98, 0x80 };
    struct {
        const uint8_t *d;
        size_t n;
        uint8_t v;
    } vs[] = {
#define VEC(a, v) { a, sizeof a, v }
        VEC(v4_pub0, V4),         VEC(v4_sub, V4),          VEC(v4_suback, V4),
        VEC(v4_unsub, V4),        VEC(v4_unsuback, V4),     VEC(v4_connack, V4),
        VEC(v4_puback, V4),       VEC(v4_pubrel, V4),       VEC(v4_disc, V4),
        VEC(ping, V4),            VEC(pong, V4),            VEC(ping, V5),
        VEC(pong, V5),            VEC(v4_puback, V5),       VEC(v4_disc, V5),
        VEC(v5_puback_rc, V5),    VEC(v5_pubrec_props, V5), VEC(v5_disc_rc, V5),
        VEC(v5_disc_props, V5),   VEC(v5_auth, V5),         VEC(v5_auth_empty, V5),
        VEC(v5_unsuback, V5),     VEC(v5_suback, V5),       VEC(v5_pub_alias, V5),
        VEC(v5_sub_shared, V5),   VEC(v5_connect_min, V5),  VEC(v5_connect_pw_only, V5),
        VEC(v4_puback_long_len, V4), VEC(v4_pub_utf8, V4),
#undef VEC
    };
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        expect_accept_(vs[i].d, vs[i].n, vs[i].v, "small vector", (int)i);
        check_prefixes(vs[i].d, vs[i].n, vs[i].v);
    }
    tti_mqtt_pkt p;
    TT_CHECK_EQ_INT(decode(v5_pubrec_props, sizeof v5_pubrec_props, V5, &p, NULL), 10);
    TT_CHECK(p.reason == 0x80 && TT_MQTT_STR_EQ(p.props.reason_string, S("x")));
    TT_CHECK_EQ_INT(decode(v4_suback, sizeof v4_suback, V4, &p, NULL), 5);
    TT_CHECK(p.u.suback.count == 1 && p.u.suback.codes[0] == 0x80);
    TT_CHECK_EQ_INT(decode(v4_connack, sizeof v4_connack, V4, &p, NULL), 4);
    TT_CHECK_EQ_INT(p.reason, TTI_MQTT_CONNACK_NOT_AUTHORIZED);
}

/* ---- Rejections ----------------------------------------------------------- */

static void test_reject_fixed_header(void) {
    REJECT(V4, "remaining length of 5 bytes", 0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01);
    REJECT(V4, "type 0", 0x00, 0x00);
    REJECT(V4, "PUBACK flags", 0x41, 0x02, 0x00, 0x01);
    REJECT(V4, "PUBREL flags 0000", 0x60, 0x02, 0x00, 0x01);
    REJECT(V4, "SUBSCRIBE flags 0000", 0x80, 0x08, 0x00, 0x01, 0x00, 0x03, 'a', '/', 'b', 0x01);
    REJECT(V4, "UNSUBSCRIBE flags 0011", 0xA3, 0x05, 0x00, 0x01, 0x00, 0x01, 'a');
    REJECT(V4, "PINGREQ flags", 0xC1, 0x00);
    REJECT(V5, "DISCONNECT flags", 0xE8, 0x00);
    REJECT(V4, "CONNECT flags", 0x12, 0x00);
    REJECT(V4, "PUBLISH QoS 3", 0x36, 0x07, 0x00, 0x01, 'a', 0x00, 0x01, 'x', 'y');
    REJECT(V4, "PUBLISH QoS 0 DUP", 0x38, 0x04, 0x00, 0x01, 'a', 'x');
    REJECT(V4, "AUTH in 3.1.1", 0xF0, 0x00);
    REJECT(V4, "PINGREQ with length", 0xC0, 0x01, 0x00);
    REJECT(V5, "PINGRESP with length", 0xD0, 0x01, 0x00);
    REJECT(V4, "3.1.1 DISCONNECT with length", 0xE0, 0x01, 0x00);
    REJECT(V4, "3.1.1 PUBACK length 3", 0x40, 0x03, 0x00, 0x01, 0x00);
    REJECT(V5, "PUBACK length 1", 0x40, 0x01, 0x01);
    REJECT(V4, "3.1.1 UNSUBACK length 3", 0xB0, 0x03, 0x00, 0x01, 0x00);
    REJECT(V4, "3.1.1 CONNACK length 3", 0x20, 0x03, 0x00, 0x00, 0x00);
    /* Flags are refused from the first byte alone, before the length arrives. */
    static const uint8_t one[] = { 0x41 };
    tti_mqtt_pkt p;
    TT_CHECK_EQ_INT(decode(one, 1, V4, &p, NULL), TT_EPROTO);
    /* Bad arguments. */
    TT_CHECK_EQ_INT(tti_mqtt_decode(one, 1, 3, 0, &p, NULL), TT_EINVAL);
    TT_CHECK_EQ_INT(tti_mqtt_decode(one, 1, V4, 0, NULL, NULL), TT_EINVAL);
    static const uint8_t ack[] = { 0x40, 0x02, 0x00, 0x01 };
    TT_CHECK_EQ_INT(tti_mqtt_decode(ack, sizeof ack, 0, 0, &p, NULL), TT_EINVAL);
}

static void test_reject_max_packet_size(void) {
    /* 256 MiB declared (0xFF 0xFF 0xFF 0x7F = 268435455) with only 10 bytes present. */
    static const uint8_t big[10] = { 0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x01, 'a', 'x', 'y' };
    tti_mqtt_pkt p;
    const char *why = NULL;
    TT_CHECK_EQ_INT(tti_mqtt_decode(big, sizeof big, V4, MAXP, &p, &why), TT_EPROTO);
    TT_CHECK(why && strstr(why, "maximum packet size"));
    /* Refused as soon as the length bytes are in. */
    TT_CHECK_EQ_INT(tti_mqtt_decode(big, 5, V4, MAXP, &p, NULL), TT_EPROTO);
    TT_CHECK_EQ_INT(tti_mqtt_decode(big, 4, V4, MAXP, &p, NULL), 0);
    tti_mqtt_fixed fh;
    TT_CHECK_EQ_INT(tti_mqtt_decode_fixed(big, sizeof big, V4, MAXP, &fh, NULL), TT_EPROTO);
    /* Without a limit it is only incomplete, and the size is known. */
    TT_CHECK_EQ_INT(tti_mqtt_decode(big, sizeof big, V4, 0, &p, NULL), 0);
    TT_CHECK_EQ_INT(p.len, 268435455u + 5u);
    TT_CHECK_EQ_INT(tti_mqtt_decode_fixed(big, sizeof big, V4, 0, &fh, NULL), 5);
    TT_CHECK_EQ_INT(fh.remaining, 268435455u);
    TT_CHECK_EQ_INT(fh.total, 268435460u);
    /* The limit counts the whole packet: 4 bytes fit in 4, not in 3. */
    static const uint8_t ack[] = { 0x40, 0x02, 0x00, 0x01 };
    TT_CHECK_EQ_INT(tti_mqtt_decode(ack, sizeof ack, V4, 4, &p, NULL), 4);
    TT_CHECK_EQ_INT(tti_mqtt_decode(ack, sizeof ack, V4, 3, &p, NULL), TT_EPROTO);
}

static void test_reject_packet_ids(void) {
    REJECT(V4, "PUBACK id 0", 0x40, 0x02, 0x00, 0x00);
    REJECT(V5, "PUBCOMP id 0", 0x70, 0x02, 0x00, 0x00);
    REJECT(V4, "PUBLISH QoS 1 id 0", 0x32, 0x05, 0x00, 0x01, 'a', 0x00, 0x00);
    REJECT(V4, "SUBSCRIBE id 0", 0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 'a', 0x00);
    REJECT(V4, "UNSUBSCRIBE id 0", 0xA2, 0x05, 0x00, 0x00, 0x00, 0x01, 'a');
    REJECT(V4, "SUBACK id 0", 0x90, 0x03, 0x00, 0x00, 0x00);
    REJECT(V4, "UNSUBACK id 0", 0xB0, 0x02, 0x00, 0x00);
}

static void test_reject_utf8(void) {
    /* PUBLISH 3.1.1 QoS 0, topic = the bytes after the length. */
    REJECT(V4, "overlong NUL", 0x30, 0x04, 0x00, 0x02, 0xC0, 0x80);
    REJECT(V4, "U+0000", 0x30, 0x04, 0x00, 0x02, 'a', 0x00);
    REJECT(V4, "surrogate U+D800", 0x30, 0x05, 0x00, 0x03, 0xED, 0xA0, 0x80);
    REJECT(V4, "above U+10FFFF", 0x30, 0x06, 0x00, 0x04, 0xF4, 0x90, 0x80, 0x80);
    REJECT(V4, "overlong 3-byte", 0x30, 0x05, 0x00, 0x03, 0xE0, 0x80, 0xAF);
    REJECT(V4, "overlong 4-byte", 0x30, 0x06, 0x00, 0x04, 0xF0, 0x80, 0x80, 0xAF);
    REJECT(V4, "stray continuation", 0x30, 0x03, 0x00, 0x01, 0x80);
    REJECT(V4, "truncated sequence", 0x30, 0x04, 0x00, 0x02, 'a', 0xE2);
    REJECT(V4, "bad continuation", 0x30, 0x05, 0x00, 0x03, 0xE2, 0x28, 0xA1);
    REJECT(V4, "byte 0xFF", 0x30, 0x03, 0x00, 0x01, 0xFF);
    /* Client id, user name and property strings follow the same rules. */
    REJECT(V4, "client id U+0000", 0x10, 0x0D, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00,
           0x00, 0x00, 0x01, 0x00);
    REJECT(V5, "reason string surrogate", 0x40, 0x09, 0x00, 0x01, 0x80, 0x05, 0x1F, 0x00, 0x02,
           0xED, 0xBF);
    REJECT(V5, "user property key U+0000", 0x40, 0x0B, 0x00, 0x01, 0x80, 0x07, 0x26, 0x00, 0x01,
           0x00, 0x00, 0x01, 'v');
    /* String length beyond the packet. */
    REJECT(V4, "topic runs past the packet", 0x30, 0x03, 0x00, 0x05, 'a');
}

static void test_reject_topics(void) {
    REJECT(V4, "PUBLISH topic with +", 0x30, 0x05, 0x00, 0x03, 'a', '/', '+');
    REJECT(V4, "PUBLISH topic with #", 0x30, 0x05, 0x00, 0x03, 'a', '/', '#');
    REJECT(V5, "PUBLISH topic with # (v5)", 0x30, 0x04, 0x00, 0x01, '#', 0x00);
    REJECT(V4, "PUBLISH empty topic (3.1.1)", 0x30, 0x02, 0x00, 0x00);
    REJECT(V5, "PUBLISH empty topic without alias", 0x30, 0x03, 0x00, 0x00, 0x00);
    REJECT(V5, "response topic with wildcard", 0x30, 0x0A, 0x00, 0x01, 'a', 0x06, 0x08, 0x00,
           0x03, 'r', '/', '+');
    REJECT(V4, "will topic with wildcard", 0x10, 0x14, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x06,
           0x00, 0x00, 0x00, 0x01, 'c', 0x00, 0x01, '#', 0x00, 0x01, 'x', 0x00);
    /* Filters: SUBSCRIBE 3.1.1 with one filter and QoS 0. */
#define SUB1(v, what, ...)                                                             \
    do {                                                                               \
        static const uint8_t f_[] = { __VA_ARGS__ };                                   \
        size_t o_ = (v) == V5 ? 1u : 0u; /* property length byte */                    \
        uint8_t d_[64] = { 0x82, (uint8_t)(5 + o_ + sizeof f_), 0x00, 0x01, 0x00 };    \
        d_[4 + o_] = 0x00;                                                             \
        d_[5 + o_] = (uint8_t)sizeof f_;                                               \
        memcpy(d_ + 6 + o_, f_, sizeof f_);                                            \
        d_[6 + o_ + sizeof f_] = 0x00;                                                 \
        expect_reject_(d_, 7 + o_ + sizeof f_, v, what, __LINE__);                     \
    } while (0)
    SUB1(V4, "# not last", 'a', '/', '#', '/', 'b');
    SUB1(V4, "# not alone in level", 'a', '#');
    SUB1(V4, "# after text", 'a', '/', 'b', '#');
    SUB1(V4, "+ with text after", '+', 'a');
    SUB1(V4, "+ with text before", 'a', '+', '/', 'b');
    SUB1(V4, "++", '+', '+');
    SUB1(V5, "share without filter", '$', 's', 'h', 'a', 'r', 'e', '/', 'g');
    SUB1(V5, "share with empty filter", '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/');
    SUB1(V5, "share with empty name", '$', 's', 'h', 'a', 'r', 'e', '/', '/', 'a');
    SUB1(V5, "share name with +", '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '+', '/', 'a');
    SUB1(V5, "share with bad filter", '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 'a', '#');
    SUB1(V4, "surrogate in filter", 0xED, 0xA0, 0x80);
#undef SUB1
    REJECT(V4, "empty filter", 0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00);
    REJECT(V4, "UNSUBSCRIBE bad filter", 0xA2, 0x06, 0x00, 0x01, 0x00, 0x02, '#', '/');
    /* Accepted filters. */
    ACCEPT(V4, "#", 0x82, 0x06, 0x00, 0x01, 0x00, 0x01, '#', 0x00);
    ACCEPT(V4, "+", 0x82, 0x06, 0x00, 0x01, 0x00, 0x01, '+', 0x00);
    ACCEPT(V4, "+/+/#", 0x82, 0x0A, 0x00, 0x01, 0x00, 0x05, '+', '/', '+', '/', '#', 0x00);
    ACCEPT(V4, "/ only", 0x82, 0x06, 0x00, 0x01, 0x00, 0x01, '/', 0x00);
    ACCEPT(V4, "$share is plain in 3.1.1", 0x82, 0x0D, 0x00, 0x01, 0x00, 0x08, '$', 's', 'h',
           'a', 'r', 'e', '/', 'g', 0x00);
    TT_CHECK(tti_mqtt_filter_valid("a/+/b/#", 7, V4));
    TT_CHECK(!tti_mqtt_filter_valid("a/b#", 4, V4));
    TT_CHECK(tti_mqtt_topic_valid("a//b/", 5));
    TT_CHECK(!tti_mqtt_topic_valid("", 0));
}

static void test_reject_subscribe(void) {
    REJECT(V4, "SUBSCRIBE without filters", 0x82, 0x02, 0x00, 0x01);
    REJECT(V5, "SUBSCRIBE v5 without filters", 0x82, 0x03, 0x00, 0x01, 0x00);
    REJECT(V4, "UNSUBSCRIBE without filters", 0xA2, 0x02, 0x00, 0x01);
    REJECT(V4, "options missing", 0x82, 0x05, 0x00, 0x01, 0x00, 0x01, 'a');
    REJECT(V4, "3.1.1 options bit 2", 0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x04);
    REJECT(V4, "3.1.1 options bit 7", 0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x80);
    REJECT(V4, "QoS 3", 0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x03);
    REJECT(V5, "v5 QoS 3", 0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x03);
    REJECT(V5, "v5 options bit 6", 0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x40);
    REJECT(V5, "v5 options bit 7", 0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x80);
    REJECT(V5, "retain handling 3", 0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x30);
    REJECT(V5, "no local on shared", 0x82, 0x10, 0x00, 0x01, 0x00, 0x00, 0x0A, '$', 's', 'h', 'a',
           'r', 'e', '/', 'g', '/', 'a', 0x04);
    REJECT(V4, "second entry truncated", 0x82, 0x08, 0x00, 0x01, 0x00, 0x01, 'a', 0x00, 0x00,
           0x05);
    /* Acknowledgements. */
    REJECT(V4, "SUBACK without codes", 0x90, 0x02, 0x00, 0x01);
    REJECT(V5, "v5 SUBACK without codes", 0x90, 0x03, 0x00, 0x01, 0x00);
    REJECT(V4, "3.1.1 SUBACK code 3", 0x90, 0x03, 0x00, 0x01, 0x03);
    REJECT(V4, "3.1.1 SUBACK code 0x87", 0x90, 0x03, 0x00, 0x01, 0x87);
    REJECT(V5, "v5 SUBACK code 0x05", 0x90, 0x04, 0x00, 0x01, 0x00, 0x05);
    REJECT(V5, "v5 UNSUBACK without codes", 0xB0, 0x03, 0x00, 0x01, 0x00);
    REJECT(V5, "v5 UNSUBACK code 0x01", 0xB0, 0x04, 0x00, 0x01, 0x00, 0x01);
}

static void test_reject_connect(void) {
#define CONNECT_HDR(len) 0x10, len, 0x00, 0x04
    REJECT(V4, "protocol name MQIsdp", 0x10, 0x0F, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03,
           0x02, 0x00, 0x00, 0x00, 0x01, 'c');
    REJECT(V4, "protocol name mqtt", CONNECT_HDR(0x0D), 'm', 'q', 't', 't', 0x04, 0x02, 0x00,
           0x00, 0x00, 0x01, 'c');
    REJECT(V4, "level 3", CONNECT_HDR(0x0D), 'M', 'Q', 'T', 'T', 0x03, 0x02, 0x00, 0x00, 0x00,
           0x01, 'c');
    REJECT(V4, "level 6", CONNECT_HDR(0x0D), 'M', 'Q', 'T', 'T', 0x06, 0x02, 0x00, 0x00, 0x00,
           0x01, 'c');
    REJECT(V4, "level 5 on a 3.1.1 decoder", CONNECT_HDR(0x0E), 'M', 'Q', 'T', 'T', 0x05, 0x02,
           0x00, 0x00, 0x00, 0x00, 0x01, 'c');
    REJECT(V5, "level 4 on a v5 decoder", CONNECT_HDR(0x0D), 'M', 'Q', 'T', 'T', 0x04, 0x02,
           0x00, 0x00, 0x00, 0x01, 'c');
    REJECT(V4, "reserved flag", CONNECT_HDR(0x0D), 'M', 'Q', 'T', 'T', 0x04, 0x03, 0x00, 0x00,
           0x00, 0x01, 'c');
    REJECT(V4, "will QoS without will", CONNECT_HDR(0x0D), 'M', 'Q', 'T', 'T', 0x04, 0x0A, 0x00,
           0x00, 0x00, 0x01, 'c');
    REJECT(V4, "will retain without will", CONNECT_HDR(0x0D), 'M', 'Q', 'T', 'T', 0x04, 0x22,
           0x00, 0x00, 0x00, 0x01, 'c');
    REJECT(V4, "will QoS 3", CONNECT_HDR(0x12), 'M', 'Q', 'T', 'T', 0x04, 0x1E, 0x00, 0x00, 0x00,
           0x01, 'c', 0x00, 0x01, 't', 0x00, 0x00);
    REJECT(V4, "3.1.1 password without user", CONNECT_HDR(0x11), 'M', 'Q', 'T', 'T', 0x04, 0x42,
           0x00, 0x00, 0x00, 0x01, 'c', 0x00, 0x02, 'p', 'w');
    REJECT(V4, "user name missing", CONNECT_HDR(0x0D), 'M', 'Q', 'T', 'T', 0x04, 0x82, 0x00,
           0x00, 0x00, 0x01, 'c');
    REJECT(V4, "trailing byte", CONNECT_HDR(0x0E), 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x00,
           0x00, 0x01, 'c', 0x00);
    REJECT(V4, "truncated header", 0x10, 0x05, 0x00, 0x04, 'M', 'Q', 'T');
    REJECT(V5, "will property in CONNECT properties", CONNECT_HDR(0x12), 'M', 'Q', 'T', 'T', 0x05,
           0x02, 0x00, 0x00, 0x05, 0x18, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00);
    REJECT(V5, "CONNECT property in will properties", CONNECT_HDR(0x18), 'M', 'Q', 'T', 'T',
           0x05, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x01, 0x00,
           0x01, 't', 0x00, 0x00);
#undef CONNECT_HDR
    /* CONNACK */
    REJECT(V4, "CONNACK reserved flags", 0x20, 0x02, 0x02, 0x00);
    REJECT(V4, "CONNACK return code 6", 0x20, 0x02, 0x00, 0x06);
    REJECT(V4, "CONNACK session present with error", 0x20, 0x02, 0x01, 0x05);
    REJECT(V5, "v5 CONNACK session present with error", 0x20, 0x03, 0x01, 0x87, 0x00);
    REJECT(V5, "v5 CONNACK code 0x01", 0x20, 0x03, 0x00, 0x01, 0x00);
    REJECT(V5, "v5 CONNACK without property length", 0x20, 0x02, 0x00, 0x00);
}

static void test_reject_properties(void) {
    /* PUBLISH 'a' QoS 0 with a property block: 0x30, len, 0x00, 0x01, 'a', plen, props... */
    REJECT(V5, "duplicate payload format", 0x30, 0x08, 0x00, 0x01, 'a', 0x04, 0x01, 0x00, 0x01,
           0x00);
    REJECT(V5, "duplicate topic alias", 0x30, 0x0A, 0x00, 0x01, 'a', 0x06, 0x23, 0x00, 0x01, 0x23,
           0x00, 0x02);
    REJECT(V5, "session expiry in PUBLISH", 0x30, 0x09, 0x00, 0x01, 'a', 0x05, 0x11, 0x00, 0x00,
           0x00, 0x01);
    REJECT(V5, "reason string in PUBLISH", 0x30, 0x08, 0x00, 0x01, 'a', 0x04, 0x1F, 0x00, 0x01,
           'x');
    REJECT(V5, "unknown property 0x05", 0x30, 0x06, 0x00, 0x01, 'a', 0x02, 0x05, 0x00);
    REJECT(V5, "unknown property 0x80", 0x30, 0x06, 0x00, 0x01, 'a', 0x02, 0x80, 0x01);
    REJECT(V5, "property length past packet", 0x30, 0x06, 0x00, 0x01, 'a', 0x05, 0x01, 0x00);
    REJECT(V5, "value past property length", 0x30, 0x08, 0x00, 0x01, 'a', 0x02, 0x23, 0x00,
           0x01, 'x');
    REJECT(V5, "string past property length", 0x30, 0x0A, 0x00, 0x01, 'a', 0x03, 0x03, 0x00,
           0x04, 'j', 's', 'o');
    REJECT(V5, "property length of 5 bytes", 0x30, 0x09, 0x00, 0x01, 'a', 0x80, 0x80, 0x80, 0x80,
           0x00, 0x00);
    REJECT(V5, "malformed subscription identifier", 0x30, 0x0A, 0x00, 0x01, 'a', 0x06, 0x0B, 0x80,
           0x80, 0x80, 0x80, 0x01);
    REJECT(V5, "subscription identifier 0", 0x30, 0x06, 0x00, 0x01, 'a', 0x02, 0x0B, 0x00);
    REJECT(V5, "topic alias 0", 0x30, 0x07, 0x00, 0x01, 'a', 0x03, 0x23, 0x00, 0x00);
    REJECT(V5, "payload format 2", 0x30, 0x06, 0x00, 0x01, 'a', 0x02, 0x01, 0x02);
    REJECT(V5, "correlation data truncated", 0x30, 0x07, 0x00, 0x01, 'a', 0x03, 0x09, 0x00, 0x05);
    REJECT(V5, "user property without value", 0x30, 0x08, 0x00, 0x01, 'a', 0x04, 0x26, 0x00,
           0x01, 'k');
    ACCEPT(V5, "repeated subscription identifier in PUBLISH", 0x30, 0x08, 0x00, 0x01, 'a', 0x04,
           0x0B, 0x01, 0x0B, 0x02);
    ACCEPT(V5, "repeated user property", 0x30, 0x11, 0x00, 0x01, 'a', 0x0D, 0x26, 0x00, 0x01, 'k',
           0x00, 0x00, 0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v');
    /* SUBSCRIBE: one subscription identifier only. */
    REJECT(V5, "duplicate subscription identifier in SUBSCRIBE", 0x82, 0x0B, 0x00, 0x01, 0x04,
           0x0B, 0x01, 0x0B, 0x02, 0x00, 0x01, 'a', 0x00);
    REJECT(V5, "topic alias in SUBSCRIBE", 0x82, 0x0A, 0x00, 0x01, 0x03, 0x23, 0x00, 0x01, 0x00,
           0x01, 'a', 0x00);
    /* CONNECT / CONNACK values. */
    REJECT(V5, "receive maximum 0", 0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x00);
    REJECT(V5, "maximum packet size 0", 0x20, 0x08, 0x00, 0x00, 0x05, 0x27, 0x00, 0x00, 0x00,
           0x00);
    REJECT(V5, "maximum QoS 2", 0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02);
    REJECT(V5, "retain available 2", 0x20, 0x05, 0x00, 0x00, 0x02, 0x25, 0x02);
    REJECT(V5, "shared sub available 7", 0x20, 0x05, 0x00, 0x00, 0x02, 0x2A, 0x07);
    REJECT(V5, "auth data without method", 0x20, 0x07, 0x00, 0x00, 0x04, 0x16, 0x00, 0x01, 0x01);
    REJECT(V5, "duplicate session expiry", 0x20, 0x0D, 0x00, 0x00, 0x0A, 0x11, 0, 0, 0, 1, 0x11, 0,
           0, 0, 2);
    REJECT(V5, "will delay in CONNACK", 0x20, 0x08, 0x00, 0x00, 0x05, 0x18, 0, 0, 0, 1);
    REJECT(V5, "request problem info 2 in CONNECT", 0x10, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T',
           0x05, 0x02, 0x00, 0x00, 0x02, 0x17, 0x02, 0x00, 0x01, 'c');
    /* Acknowledgements, DISCONNECT and AUTH. */
    REJECT(V5, "PUBACK reason 0x92", 0x40, 0x03, 0x00, 0x01, 0x92);
    REJECT(V5, "PUBREL reason 0x10", 0x62, 0x03, 0x00, 0x01, 0x10);
    REJECT(V5, "PUBACK property length past the end", 0x40, 0x05, 0x00,
           0x01, 0x00, 0x05, 0x1F);
    REJECT(V5, "server reference in PUBACK", 0x40, 0x08, 0x00, 0x01, 0x00, 0x04, 0x1C, 0x00, 0x01,
           's');
    REJECT(V5, "DISCONNECT reason 0x01", 0xE0, 0x01, 0x01);
    REJECT(V5, "DISCONNECT reason 0x91", 0xE0, 0x01, 0x91);
    ACCEPT(V5, "DISCONNECT shared subscriptions not supported", 0xE0, 0x01, 0x9E);
    ACCEPT(V5, "DISCONNECT bad authentication method", 0xE0, 0x01, 0x8C);
    REJECT(V5, "DISCONNECT with topic alias", 0xE0, 0x05, 0x00, 0x03, 0x23, 0x00, 0x01);
    REJECT(V5, "AUTH reason 0x80", 0xF0, 0x02, 0x80, 0x00);
    REJECT(V5, "AUTH continue without method", 0xF0, 0x02, 0x18, 0x00);
    REJECT(V5, "AUTH trailing byte", 0xF0, 0x0A, 0x18, 0x06, 0x15, 0x00, 0x03, 'S', 'C', 'R',
           0x00, 0x00);
}

/* ---- Round trips ----------------------------------------------------------- */

static const tti_mqtt_user_prop ups[] = { { { "k1", 2 }, { "v1", 2 } },
                                          { { "k2", 2 }, { "", 0 } } };
static const uint32_t sub_ids[] = { 1, 300, 268435455 };
static const tti_mqtt_sub subs[] = {
    { { "a/b", 3 }, 0, false, false, 0 },
    { { "a/+/c", 5 }, 1, true, false, 1 },
    { { "x/#", 3 }, 2, false, true, 2 },
    { { "$share/grp/t/#", 14 }, 1, false, false, 0 },
};
static const tti_mqtt_sub subs_v4[] = {
    { { "a/b", 3 }, 0, false, false, 0 },
    { { "a/+/c", 5 }, 1, false, false, 0 },
    { { "x/#", 3 }, 2, false, false, 0 },
};
static const uint8_t suback_codes[] = { 0x00, 0x01, 0x02, 0x80 };
static const uint8_t unsuback_codes[] = { 0x00, 0x11, 0x8F };

static tti_mqtt_props full_publish_props(void) {
    tti_mqtt_props pr;
    memset(&pr, 0, sizeof pr);
    pr.present = PBIT(PAYLOAD_FORMAT) | PBIT(MESSAGE_EXPIRY) | PBIT(CONTENT_TYPE) |
                 PBIT(RESPONSE_TOPIC) | PBIT(CORRELATION_DATA) | PBIT(TOPIC_ALIAS) |
                 PBIT(SUBSCRIPTION_ID) | PBIT(USER_PROPERTY);
    pr.payload_format = 1;
    pr.message_expiry = 3600;
    pr.content_type = S("application/json");
    pr.response_topic = S("reply/here");
    pr.correlation_data = B("\x00\x01\x02");
    pr.topic_alias = 7;
    pr.sub_ids = sub_ids;
    pr.sub_id_count = 3;
    pr.user_props = ups;
    pr.user_prop_count = 2;
    return pr;
}

/* Build packet number `i` of the round-trip set for `v`; false past the end. */
static bool make_packet(int i, uint8_t v, tti_mqtt_pkt *p) {
    memset(p, 0, sizeof *p);
    bool v5 = v == V5;
    switch (i) {
    case 0: /* CONNECT, everything */
        p->type = TTI_MQTT_CONNECT;
        p->u.connect.level = v;
        p->u.connect.clean_start = true;
        p->u.connect.keep_alive = 30;
        p->u.connect.client_id = S("client-1");
        p->u.connect.will = true;
        p->u.connect.will_qos = 2;
        p->u.connect.will_retain = true;
        p->u.connect.will_topic = S("dev/1/status");
        p->u.connect.will_payload = B("offline");
        p->u.connect.has_username = p->u.connect.has_password = true;
        p->u.connect.username = S("user");
        p->u.connect.password = B("se\0cret");
        if (v5) {
            p->props.present = PBIT(SESSION_EXPIRY) | PBIT(RECEIVE_MAX) | PBIT(MAX_PACKET_SIZE) |
                               PBIT(TOPIC_ALIAS_MAX) | PBIT(REQUEST_RESPONSE_INFO) |
                               PBIT(REQUEST_PROBLEM_INFO) | PBIT(AUTH_METHOD) | PBIT(AUTH_DATA) |
                               PBIT(USER_PROPERTY);
            p->props.session_expiry = 0xFFFFFFFFu;
            p->props.receive_max = 20;
            p->props.max_packet_size = 65536;
            p->props.topic_alias_max = 10;
            p->props.request_response_info = 1;
            p->props.request_problem_info = 0;
            p->props.auth_method = S("SCRAM-SHA-1");
            p->props.auth_data = B("\x01\x02");
            p->props.user_props = ups;
            p->props.user_prop_count = 2;
            p->u.connect.will_props = full_publish_props();
            p->u.connect.will_props.present &=
                ~(PBIT(TOPIC_ALIAS) | PBIT(SUBSCRIPTION_ID));
            p->u.connect.will_props.sub_ids = NULL;
            p->u.connect.will_props.sub_id_count = 0;
            p->u.connect.will_props.present |= PBIT(WILL_DELAY);
            p->u.connect.will_props.will_delay = 5;
        }
        return true;
    case 1: /* CONNECT, minimal */
        p->type = TTI_MQTT_CONNECT;
        p->u.connect.level = v;
        return true;
    case 2: /* CONNACK */
        p->type = TTI_MQTT_CONNACK;
        p->u.connack.session_present = true;
        if (v5) {
            p->props.present = PBIT(SESSION_EXPIRY) | PBIT(ASSIGNED_CLIENT_ID) |
                               PBIT(SERVER_KEEP_ALIVE) | PBIT(RESPONSE_INFO) |
                               PBIT(SERVER_REFERENCE) | PBIT(REASON_STRING) | PBIT(RECEIVE_MAX) |
                               PBIT(TOPIC_ALIAS_MAX) | PBIT(MAX_QOS) | PBIT(RETAIN_AVAILABLE) |
                               PBIT(MAX_PACKET_SIZE) | PBIT(WILDCARD_SUB_AVAILABLE) |
                               PBIT(SUB_ID_AVAILABLE) | PBIT(SHARED_SUB_AVAILABLE) |
                               PBIT(AUTH_METHOD) | PBIT(AUTH_DATA);
            p->props.session_expiry = 60;
            p->props.assigned_client_id = S("auto-1234");
            p->props.server_keep_alive = 120;
            p->props.response_info = S("resp/");
            p->props.server_reference = S("other:1883");
            p->props.reason_string = S("welcome");
            p->props.receive_max = 100;
            p->props.topic_alias_max = 5;
            p->props.max_qos = 1;
            p->props.retain_available = 0;
            p->props.max_packet_size = 1000;
            p->props.wildcard_sub_available = 1;
            p->props.sub_id_available = 1;
            p->props.shared_sub_available = 0;
            p->props.auth_method = S("m");
            p->props.auth_data = B("d");
        }
        return true;
    case 3: /* CONNACK refused */
        p->type = TTI_MQTT_CONNACK;
        p->reason = v5 ? TTI_MQTT_RC_BAD_USERNAME_PASSWORD : TTI_MQTT_CONNACK_BAD_USERNAME_PASSWORD;
        return true;
    case 4: /* PUBLISH QoS 2 with everything */
        p->type = TTI_MQTT_PUBLISH;
        p->packet_id = 0xFFFF;
        p->u.publish.qos = 2;
        p->u.publish.dup = true;
        p->u.publish.retain = true;
        p->u.publish.topic = S("t/\xc3\xa9/x");
        p->u.publish.payload = B("payload \x00 bytes");
        if (v5) p->props = full_publish_props();
        return true;
    case 5: /* PUBLISH QoS 0, empty payload */
        p->type = TTI_MQTT_PUBLISH;
        p->u.publish.topic = S("a");
        return true;
    case 6: case 7: case 8: case 9: /* PUBACK..PUBCOMP */
        p->type = (uint8_t)(TTI_MQTT_PUBACK + (i - 6));
        p->packet_id = (uint16_t)(100 + i);
        if (v5 && i == 6) p->reason = TTI_MQTT_RC_NO_MATCHING_SUBSCRIBERS;
        if (v5 && i == 7) {
            p->reason = TTI_MQTT_RC_QUOTA_EXCEEDED;
            p->props.present = PBIT(REASON_STRING) | PBIT(USER_PROPERTY);
            p->props.reason_string = S("full");
            p->props.user_props = ups;
            p->props.user_prop_count = 1;
        }
        if (v5 && i == 8) p->reason = TTI_MQTT_RC_PACKET_ID_NOT_FOUND;
        return true;
    case 10: /* SUBSCRIBE */
        p->type = TTI_MQTT_SUBSCRIBE;
        p->packet_id = 1;
        p->u.subscribe.subs = v5 ? subs : subs_v4;
        p->u.subscribe.count = v5 ? 4 : 3;
        if (v5) {
            p->props.present = PBIT(SUBSCRIPTION_ID) | PBIT(USER_PROPERTY);
            p->props.sub_id = 42;
            p->props.user_props = ups;
            p->props.user_prop_count = 2;
        }
        return true;
    case 11: /* SUBACK */
        p->type = TTI_MQTT_SUBACK;
        p->packet_id = 1;
        p->u.suback.codes = suback_codes;
        p->u.suback.count = sizeof suback_codes;
        if (v5) {
            p->props.present = PBIT(REASON_STRING);
            p->props.reason_string = S("ok");
        }
        return true;
    case 12: /* UNSUBSCRIBE */
        p->type = TTI_MQTT_UNSUBSCRIBE;
        p->packet_id = 2;
        p->u.subscribe.subs = subs;
        p->u.subscribe.count = 3;
        if (v5) {
            p->props.present = PBIT(USER_PROPERTY);
            p->props.user_props = ups;
            p->props.user_prop_count = 1;
        }
        return true;
    case 13: /* UNSUBACK */
        p->type = TTI_MQTT_UNSUBACK;
        p->packet_id = 2;
        if (v5) {
            p->u.suback.codes = unsuback_codes;
            p->u.suback.count = sizeof unsuback_codes;
        }
        return true;
    case 14: p->type = TTI_MQTT_PINGREQ; return true;
    case 15: p->type = TTI_MQTT_PINGRESP; return true;
    case 16: /* DISCONNECT */
        p->type = TTI_MQTT_DISCONNECT;
        if (v5) {
            p->reason = TTI_MQTT_RC_SERVER_MOVED;
            p->props.present = PBIT(SESSION_EXPIRY) | PBIT(SERVER_REFERENCE) | PBIT(REASON_STRING);
            p->props.session_expiry = 0;
            p->props.server_reference = S("elsewhere");
            p->props.reason_string = S("bye");
        }
        return true;
    case 17: /* DISCONNECT with will */
        p->type = TTI_MQTT_DISCONNECT;
        if (v5) p->reason = TTI_MQTT_RC_DISCONNECT_WITH_WILL;
        return true;
    case 18: /* AUTH (v5) */
        if (!v5) return true;
        p->type = TTI_MQTT_AUTH;
        p->reason = TTI_MQTT_RC_CONTINUE_AUTH;
        p->props.present = PBIT(AUTH_METHOD) | PBIT(AUTH_DATA) | PBIT(REASON_STRING);
        p->props.auth_method = S("SCRAM-SHA-1");
        p->props.auth_data = B("challenge");
        p->props.reason_string = S("more");
        return true;
    case 19: /* PUBLISH v5 via topic alias only, single subscription id */
        p->type = TTI_MQTT_PUBLISH;
        p->u.publish.qos = 1;
        p->packet_id = 9;
        if (v5) {
            p->props.present = PBIT(TOPIC_ALIAS) | PBIT(SUBSCRIPTION_ID);
            p->props.topic_alias = 3;
            p->props.sub_id = 77;
        } else {
            p->u.publish.topic = S("x");
        }
        return true;
    default: return false;
    }
}

static void test_round_trip(void) {
    for (uint8_t v = V4; v <= V5; v++) {
        tti_mqtt_pkt in;
        for (int i = 0; make_packet(i, v, &in); i++) {
            if (in.type == 0) continue; /* AUTH in 3.1.1 */
            uint8_t buf[1024], buf2[1024];
            const char *why = "";
            int len = tti_mqtt_encoded_len(&in, v, &why);
            TT_CHECK_MSG(len > 0, "v%u packet %d: len %d (%s)", v, i, len, why);
            if (len <= 0) continue;
            int n = tti_mqtt_encode(&in, v, buf, sizeof buf, &why);
            TT_CHECK_MSG(n == len, "v%u packet %d: encode %d != %d", v, i, n, len);
            tti_mqtt_pkt out;
            int m = tti_mqtt_decode(buf, (size_t)n, v, 0, &out, &why);
            TT_CHECK_MSG(m == n, "v%u packet %d (%s): decode %d (%s)", v, i,
                         tti_mqtt_type_str(in.type), m, m < 0 ? why : "");
            if (m != n) continue;
            /* Flags are derived by the encoder; the rest must survive. */
            in.flags = out.flags;
            TT_CHECK_MSG(tt_mqtt_pkt_eq(&in, &out), "v%u packet %d (%s) differs", v, i,
                         tti_mqtt_type_str(in.type));
            /* The decoded packet encodes to the same bytes. */
            int n2 = tti_mqtt_encode(&out, v, buf2, sizeof buf2, &why);
            TT_CHECK_MSG(n2 == n && memcmp(buf, buf2, (size_t)n) == 0, "v%u packet %d re-encode",
                         v, i);
            check_prefixes(buf, (size_t)n, v);
            /* Too small a buffer is refused. */
            TT_CHECK_EQ_INT(tti_mqtt_encode(&in, v, buf2, (size_t)n - 1, NULL), TT_ENOMEM);
        }
    }
}

static void test_publish_header(void) {
    for (uint8_t v = V4; v <= V5; v++) {
        tti_mqtt_pkt p;
        make_packet(4, v, &p);
        static uint8_t big[70000];
        memset(big, 'z', sizeof big);
        p.u.publish.payload.ptr = big;
        p.u.publish.payload.len = sizeof big;
        static uint8_t full[71000];
        int n = tti_mqtt_encode(&p, v, full, sizeof full, NULL);
        TT_REQUIRE(n > (int)sizeof big);
        uint8_t hdr[256];
        int h = tti_mqtt_encode_publish_header(&p, v, hdr, sizeof hdr, NULL);
        TT_CHECK_EQ_INT(h, n - (int)sizeof big);
        TT_CHECK(h > 0 && memcmp(hdr, full, (size_t)h) == 0);
        TT_CHECK_EQ_INT(tti_mqtt_encode_publish_header(&p, v, hdr, (size_t)h - 1, NULL),
                        TT_ENOMEM);
        tti_mqtt_pkt d;
        TT_CHECK_EQ_INT(tti_mqtt_decode(full, (size_t)n, v, 0, &d, NULL), n);
        TT_CHECK(d.u.publish.payload.len == sizeof big);
        p.type = TTI_MQTT_PUBACK;
        TT_CHECK_EQ_INT(tti_mqtt_encode_publish_header(&p, v, hdr, sizeof hdr, NULL), TT_EINVAL);
    }
}

/* A caller-side struct with one problem each: the encoder refuses it. */
static void test_encode_rejects(void) {
    tti_mqtt_pkt p;
    uint8_t buf[256];
    const char *why;
#define ENC_BAD(v, what)                                                              \
    do {                                                                              \
        why = NULL;                                                                   \
        int rc_ = tti_mqtt_encode(&p, v, buf, sizeof buf, &why);                      \
        TT_CHECK_MSG(rc_ == TT_EINVAL && why, "%s: rc %d", what, rc_);                \
    } while (0)
    make_packet(5, V4, &p);
    p.u.publish.qos = 3;
    ENC_BAD(V4, "QoS 3");
    make_packet(5, V4, &p);
    p.u.publish.dup = true;
    ENC_BAD(V4, "QoS 0 DUP");
    make_packet(5, V4, &p);
    p.u.publish.qos = 1;
    ENC_BAD(V4, "QoS 1 without packet id");
    make_packet(5, V4, &p);
    p.u.publish.topic = S("a/+");
    ENC_BAD(V4, "wildcard topic");
    p.u.publish.topic = S("");
    ENC_BAD(V4, "empty topic 3.1.1");
    ENC_BAD(V5, "empty topic without alias");
    make_packet(5, V5, &p);
    p.props.present = PBIT(SESSION_EXPIRY);
    ENC_BAD(V5, "session expiry in PUBLISH");
    p.props.present = PBIT(TOPIC_ALIAS);
    ENC_BAD(V5, "topic alias 0");
    p.props.present = PBIT(PAYLOAD_FORMAT);
    p.props.payload_format = 2;
    ENC_BAD(V5, "payload format 2");
    p.props.present = TTI_MQTT_PBIT(0x05);
    ENC_BAD(V5, "unknown property");
    p.props.present = PBIT(AUTH_DATA);
    ENC_BAD(V5, "auth data in PUBLISH");
    p.props.present = PBIT(RESPONSE_TOPIC);
    p.props.response_topic = S("r/#");
    ENC_BAD(V5, "wildcard response topic");
    p.props.present = PBIT(CONTENT_TYPE);
    p.props.content_type = (tti_mqtt_str){ "a\0b", 3 };
    ENC_BAD(V5, "NUL in content type");
    p.props.present = PBIT(SUBSCRIPTION_ID);
    p.props.sub_id = TTI_MQTT_MAX_SUB_ID + 1;
    ENC_BAD(V5, "subscription id too big");
    make_packet(10, V5, &p);
    p.props.sub_ids = sub_ids;
    p.props.sub_id_count = 2;
    ENC_BAD(V5, "two subscription ids in SUBSCRIBE");
    make_packet(10, V5, &p);
    p.u.subscribe.count = 0;
    ENC_BAD(V5, "no filters");
    tti_mqtt_sub bad[1] = { { S("a/#/b"), 0, false, false, 0 } };
    make_packet(10, V4, &p);
    p.u.subscribe.subs = bad;
    p.u.subscribe.count = 1;
    ENC_BAD(V4, "bad filter");
    bad[0].filter = S("a");
    bad[0].qos = 3;
    ENC_BAD(V4, "subscription QoS 3");
    bad[0].qos = 0;
    bad[0].retain_handling = 3;
    ENC_BAD(V5, "retain handling 3");
    bad[0].retain_handling = 0;
    bad[0].filter = S("$share/g/a");
    bad[0].no_local = true;
    ENC_BAD(V5, "no local on shared");
    p.packet_id = 0;
    ENC_BAD(V4, "SUBSCRIBE id 0");
    make_packet(0, V4, &p);
    p.u.connect.has_username = false;
    ENC_BAD(V4, "3.1.1 password without user name");
    make_packet(0, V4, &p);
    p.u.connect.will_qos = 3;
    ENC_BAD(V4, "will QoS 3");
    make_packet(0, V4, &p);
    p.u.connect.will_topic = S("w/#");
    ENC_BAD(V4, "will topic wildcard");
    make_packet(0, V5, &p);
    p.props.receive_max = 0;
    ENC_BAD(V5, "receive maximum 0");
    make_packet(0, V5, &p);
    p.u.connect.will_props.present |= PBIT(SESSION_EXPIRY);
    ENC_BAD(V5, "session expiry in will properties");
    make_packet(2, V5, &p);
    p.reason = TTI_MQTT_RC_NOT_AUTHORIZED;
    ENC_BAD(V5, "session present with failure");
    make_packet(3, V4, &p);
    p.reason = 6;
    ENC_BAD(V4, "CONNACK code 6");
    make_packet(6, V5, &p);
    p.reason = TTI_MQTT_RC_PACKET_ID_NOT_FOUND;
    ENC_BAD(V5, "PUBACK reason 0x92");
    p.packet_id = 0;
    ENC_BAD(V4, "PUBACK id 0");
    make_packet(11, V4, &p);
    static const uint8_t v5_only[] = { 0x87 };
    p.u.suback.codes = v5_only;
    p.u.suback.count = 1;
    ENC_BAD(V4, "3.1.1 SUBACK code 0x87");
#undef ENC_BAD
}

static void test_encode_rejects_more(void) {
    tti_mqtt_pkt p;
    uint8_t buf[256];
    const char *why = NULL;
    make_packet(11, V5, &p);
    static const uint8_t bad_codes[] = { 0x00, 0x05 };
    p.u.suback.codes = bad_codes;
    p.u.suback.count = 2;
    TT_CHECK_EQ_INT(tti_mqtt_encode(&p, V5, buf, sizeof buf, &why), TT_EINVAL);
    p.u.suback.count = 0;
    TT_CHECK_EQ_INT(tti_mqtt_encode(&p, V5, buf, sizeof buf, &why), TT_EINVAL);
    make_packet(18, V5, &p);
    TT_CHECK_EQ_INT(tti_mqtt_encode(&p, V4, buf, sizeof buf, &why), TT_EINVAL);
    p.props.present = 0;
    TT_CHECK_EQ_INT(tti_mqtt_encode(&p, V5, buf, sizeof buf, &why), TT_EINVAL);
    make_packet(16, V5, &p);
    p.reason = 0x01;
    TT_CHECK_EQ_INT(tti_mqtt_encode(&p, V5, buf, sizeof buf, &why), TT_EINVAL);
    p.type = 0;
    TT_CHECK_EQ_INT(tti_mqtt_encode(&p, V5, buf, sizeof buf, &why), TT_EINVAL);
    make_packet(14, V5, &p);
    TT_CHECK_EQ_INT(tti_mqtt_encode(&p, 3, buf, sizeof buf, &why), TT_EINVAL);
    TT_CHECK_EQ_INT(tti_mqtt_encode(NULL, V5, buf, sizeof buf, &why), TT_EINVAL);
    TT_CHECK_EQ_INT(tti_mqtt_encode(&p, V5, buf, 1, &why), TT_ENOMEM);
    /* The short forms: Success without properties drops the reason byte. */
    make_packet(6, V5, &p);
    p.reason = 0;
    TT_CHECK_EQ_INT(tti_mqtt_encode(&p, V5, buf, sizeof buf, NULL), 4);
    make_packet(17, V5, &p);
    TT_CHECK_EQ_INT(tti_mqtt_encode(&p, V5, buf, sizeof buf, NULL), 3);
    p.reason = 0;
    TT_CHECK_EQ_INT(tti_mqtt_encode(&p, V5, buf, sizeof buf, NULL), 2);
}

static void test_reason_strings(void) {
    TT_CHECK_EQ_STR(tti_mqtt_reason_str(0x87), "Not authorized");
    TT_CHECK_EQ_STR(tti_mqtt_reason_str(0x00), "Success");
    TT_CHECK_EQ_STR(tti_mqtt_reason_str(0xA2), "Wildcard Subscriptions not supported");
    TT_CHECK_EQ_STR(tti_mqtt_reason_str(0x03), "Unknown reason code");
    TT_CHECK(strstr(tti_mqtt_connack_rc_str(4), "bad user name or password") != NULL);
    TT_CHECK_EQ_STR(tti_mqtt_type_str(TTI_MQTT_AUTH), "AUTH");
    TT_CHECK_EQ_STR(tti_mqtt_type_str(99), "?");
    /* Every code that some packet allows has a name. */
    for (int c = 0; c < 256; c++) {
        bool any = false;
        for (uint8_t t = 1; t <= 15; t++) any |= tti_mqtt_reason_allowed(t, V5, (uint8_t)c);
        if (any) TT_CHECK_MSG(strcmp(tti_mqtt_reason_str((uint8_t)c), "Unknown reason code") != 0,
                              "code 0x%02x", c);
    }
}

/* Decoding leaves the input alone and never reads past `size`: run every
 * vector from a heap copy of exactly its size (ASan catches overreads). */
static void test_exact_buffers(void) {
    const struct { const uint8_t *d; size_t n; uint8_t v; } vs[] = {
        { v4_connect, sizeof v4_connect, V4 }, { v5_connack, sizeof v5_connack, V5 },
        { v5_subscribe, sizeof v5_subscribe, V5 }, { v5_publish, sizeof v5_publish, V5 },
    };
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        for (size_t n = 0; n <= vs[i].n; n++) {
            uint8_t *copy = malloc(n ? n : 1);
            TT_REQUIRE(copy);
            memcpy(copy, vs[i].d, n);
            tti_mqtt_pkt p;
            int rc = tti_mqtt_decode(copy, n, vs[i].v, 0, &p, NULL);
            TT_CHECK(rc == (n == vs[i].n ? (int)n : 0));
            free(copy);
        }
    }
}

/* Writes the fuzz seed corpus when TT_MQTT_CORPUS_DIR is set; a no-op otherwise. */
static void write_seed(const char *dir, const char *name, const uint8_t *d, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    TT_REQUIRE(f);
    TT_CHECK(fwrite(d, 1, n, f) == n);
    fclose(f);
}

static void test_write_corpus(void) {
    const char *dir = getenv("TT_MQTT_CORPUS_DIR");
    if (!dir) return;
    write_seed(dir, "v4_connect_will_user_pw", v4_connect, sizeof v4_connect);
    write_seed(dir, "v5_connack_props", v5_connack, sizeof v5_connack);
    write_seed(dir, "v5_subscribe_options", v5_subscribe, sizeof v5_subscribe);
    write_seed(dir, "v5_publish_props", v5_publish, sizeof v5_publish);
    for (uint8_t v = V4; v <= V5; v++) {
        tti_mqtt_pkt p;
        for (int i = 0; make_packet(i, v, &p); i++) {
            if (p.type == 0) continue;
            uint8_t buf[1024];
            int n = tti_mqtt_encode(&p, v, buf, sizeof buf, NULL);
            TT_REQUIRE(n > 0);
            char name[64];
            snprintf(name, sizeof name, "v%u_%02d_%s", v, i, tti_mqtt_type_str(p.type));
            for (char *c = name; *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
            write_seed(dir, name, buf, (size_t)n);
        }
    }
}

TT_TEST_LIST = {
    { "v4_connect_vector", test_v4_connect_vector },
    { "v5_connack_vector", test_v5_connack_vector },
    { "v5_subscribe_vector", test_v5_subscribe_vector },
    { "v5_publish_vector", test_v5_publish_vector },
    { "small_vectors", test_small_vectors },
    { "reject_fixed_header", test_reject_fixed_header },
    { "reject_max_packet_size", test_reject_max_packet_size },
    { "reject_packet_ids", test_reject_packet_ids },
    { "reject_utf8", test_reject_utf8 },
    { "reject_topics", test_reject_topics },
    { "reject_subscribe", test_reject_subscribe },
    { "reject_connect", test_reject_connect },
    { "reject_properties", test_reject_properties },
    { "round_trip", test_round_trip },
    { "publish_header", test_publish_header },
    { "encode_rejects", test_encode_rejects },
    { "encode_rejects_more", test_encode_rejects_more },
    { "reason_strings", test_reason_strings },
    { "exact_buffers", test_exact_buffers },
    { "write_corpus", test_write_corpus },
    { NULL, NULL },
};
