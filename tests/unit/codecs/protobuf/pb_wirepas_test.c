/* The Wirepas schema and the protobuf <-> JSON mapping: exact wire bytes built by hand
 * from the field numbers, every message through JSON and back, and bad input. */
#include <tether/codec_pb.h>

#include "codecs/protobuf/wirepas.h"
#include "tt_test.h"
#include "../codec_test_util.h"

/* GenericMessage{wirepas{send_packet_req{header{req_id 300, sink_id "sink0"},
 * destination_address 0xFFFFFFFF, source_endpoint 1, destination_endpoint 2, qos 0,
 * payload 01 02}}}, written out field by field (tag = number << 3 | wire type). */
static const uint8_t k_send_packet_req[] = {
    0x0a, 0x1e,                               /* GenericMessage.wirepas (1, LEN) 30 */
    0x32, 0x1c,                               /* WirepasMessage.send_packet_req (6, LEN) 28 */
    0x0a, 0x0a,                               /* SendPacketReq.header (1, LEN) 10 */
    0x08, 0xac, 0x02,                         /*   RequestHeader.req_id (1, VARINT) 300 */
    0x12, 0x05, 's', 'i', 'n', 'k', '0',      /*   RequestHeader.sink_id (2, LEN) */
    0x10, 0xff, 0xff, 0xff, 0xff, 0x0f,       /* destination_address (2) 0xFFFFFFFF */
    0x18, 0x01,                               /* source_endpoint (3) 1 */
    0x20, 0x02,                               /* destination_endpoint (4) 2 */
    0x28, 0x00,                               /* qos (5) 0 */
    0x32, 0x02, 0x01, 0x02,                   /* payload (6, LEN) */
};

/* GenericMessage{wirepas{packet_received_event{header{gw_id "gw1", sink_id "sink1",
 * event_id 2^64-1}, source_address 0x123456, destination_address 1, source_endpoint 10,
 * destination_endpoint 20, travel_time_ms 25, rx_time_ms_epoch 1700000000000, qos 1,
 * payload "hi", hop_count 3}}} — no network_address, no payload_size. */
static const uint8_t k_packet_received[] = {
    0x0a, 0x36, 0x42, 0x34,                   /* wirepas (1); packet_received_event (8) */
    0x0a, 0x17,                               /* header (1, LEN) 23 */
    0x0a, 0x03, 'g', 'w', '1',                /*   gw_id (1) */
    0x12, 0x05, 's', 'i', 'n', 'k', '1',      /*   sink_id (2) */
    0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, /* event_id (3) */
    0x10, 0xd6, 0xe8, 0x48,                   /* source_address (2) 0x123456 */
    0x18, 0x01,                               /* destination_address (3) */
    0x20, 0x0a,                               /* source_endpoint (4) */
    0x28, 0x14,                               /* destination_endpoint (5) */
    0x30, 0x19,                               /* travel_time_ms (6) */
    0x38, 0x80, 0xd0, 0x95, 0xff, 0xbc, 0x31, /* rx_time_ms_epoch (7) 1700000000000 */
    0x40, 0x01,                               /* qos (8) */
    0x4a, 0x02, 'h', 'i',                     /* payload (9) */
    0x58, 0x03,                               /* hop_count (11) */
};

static void test_send_packet_req_exact_bytes(void) {
    Wirepas__Proto__GatewayApi__RequestHeader hdr = WIREPAS__PROTO__GATEWAY_API__REQUEST_HEADER__INIT;
    hdr.req_id = 300;
    hdr.sink_id = "sink0";
    Wirepas__Proto__GatewayApi__SendPacketReq req = WIREPAS__PROTO__GATEWAY_API__SEND_PACKET_REQ__INIT;
    uint8_t payload[] = { 1, 2 };
    req.header = &hdr;
    req.destination_address = 0xffffffffu;
    req.source_endpoint = 1;
    req.destination_endpoint = 2;
    req.qos = 0;
    req.payload.len = 2;
    req.payload.data = payload;
    tt_buf b = TT_BUF_INIT;
    TT_REQUIRE(tti_wirepas_pack_one(TTI_WP_SEND_PACKET_REQ, &req.base, &b) == TT_OK);
    TT_CHECK(b.len == sizeof k_send_packet_req && memcmp(b.data, k_send_packet_req, b.len) == 0);

    /* The same message from its JSON form through the "wirepas" codec. */
    const char *text =
        "{\"wirepas\":{\"send_packet_req\":{\"header\":{\"req_id\":300,\"sink_id\":\"sink0\"},"
        "\"destination_address\":4294967295,\"source_endpoint\":1,\"destination_endpoint\":2,"
        "\"qos\":0,\"payload\":\"AQI=\"}}}";
    json_t *v = json_loads(text, 0, NULL);
    TT_REQUIRE(v != NULL);
    TT_REQUIRE(tt_codec_encode(tt_codec_find("wirepas"), v, &b) == TT_OK);
    TT_CHECK(b.len == sizeof k_send_packet_req && memcmp(b.data, k_send_packet_req, b.len) == 0);
    json_t *back = NULL;
    TT_REQUIRE(tt_codec_decode(tt_codec_find("wirepas"), b.data, b.len, &back, NULL) == TT_OK);
    TT_CHECK(json_equal(v, back));
    json_decref(back);
    json_decref(v);

    /* A message of the wrong type for the slot is refused. */
    TT_CHECK_EQ_INT(tti_wirepas_pack_one(TTI_WP_SEND_PACKET_RESP, &req.base, &b), TT_EINVAL);
    TT_CHECK_EQ_INT(tti_wirepas_pack_one((tti_wp_kind)99, &req.base, &b), TT_EINVAL);
    tt_buf_free(&b);
}

static void test_received_event_decode(void) {
    tti_wp_generic *gm = NULL;
    TT_REQUIRE(tti_wirepas_unpack(k_packet_received, sizeof k_packet_received, &gm, NULL) == TT_OK);
    tti_wp_kind kind;
    const ProtobufCMessage *m = tti_wirepas_payload(gm, &kind);
    TT_REQUIRE(m != NULL && kind == TTI_WP_PACKET_RECEIVED_EVENT);
    const Wirepas__Proto__GatewayApi__PacketReceivedEvent *ev = (const void *)m;
    TT_CHECK_EQ_STR(ev->header->gw_id, "gw1");
    TT_CHECK_EQ_STR(ev->header->sink_id, "sink1");
    TT_CHECK(ev->header->event_id == UINT64_MAX);
    TT_CHECK(!ev->header->has_time_ms_epoch);
    TT_CHECK_EQ_INT(ev->source_address, 0x123456);
    TT_CHECK_EQ_INT(ev->destination_address, 1);
    TT_CHECK_EQ_INT(ev->source_endpoint, 10);
    TT_CHECK_EQ_INT(ev->destination_endpoint, 20);
    TT_CHECK_EQ_INT(ev->travel_time_ms, 25);
    TT_CHECK(ev->rx_time_ms_epoch == UINT64_C(1700000000000));
    TT_CHECK_EQ_INT(ev->qos, 1);
    TT_CHECK(ev->has_payload && ev->payload.len == 2 && memcmp(ev->payload.data, "hi", 2) == 0);
    TT_CHECK(!ev->has_payload_size);
    TT_CHECK(ev->has_hop_count && ev->hop_count == 3);
    TT_CHECK(!ev->has_network_address);

    json_t *v = NULL;
    TT_REQUIRE(tt_codec_pb_to_json(&gm->base, &v, NULL) == TT_OK);
    json_t *want = json_loads(
        "{\"wirepas\":{\"packet_received_event\":{\"header\":{\"gw_id\":\"gw1\","
        "\"sink_id\":\"sink1\",\"event_id\":\"18446744073709551615\"},"
        "\"source_address\":1193046,\"destination_address\":1,\"source_endpoint\":10,"
        "\"destination_endpoint\":20,\"travel_time_ms\":25,\"rx_time_ms_epoch\":1700000000000,"
        "\"qos\":1,\"payload\":\"aGk=\",\"hop_count\":3}}}", 0, NULL);
    TT_CHECK(want && json_equal(v, want));
    json_decref(want);

    /* JSON -> protobuf -> the same bytes. */
    tt_buf b = TT_BUF_INIT;
    TT_REQUIRE(tt_codec_encode(tt_codec_find("wirepas"), v, &b) == TT_OK);
    TT_CHECK(b.len == sizeof k_packet_received && memcmp(b.data, k_packet_received, b.len) == 0);
    tt_buf_free(&b);
    json_decref(v);
    tti_wirepas_free(gm);
}

/* Field numbers from the gateway API fact sheet, checked against the compiled schema. */
static void test_field_numbers(void) {
    static const struct { const ProtobufCMessageDescriptor *d; const char *field; unsigned id; } k[] = {
        { &wirepas__proto__gateway_api__generic_message__descriptor, "wirepas", 1 },
        { &wirepas__proto__gateway_api__generic_message__descriptor, "customer", 2 },
        { &wirepas__proto__gateway_api__wirepas_message__descriptor, "status_event", 1 },
        { &wirepas__proto__gateway_api__wirepas_message__descriptor, "send_packet_req", 6 },
        { &wirepas__proto__gateway_api__wirepas_message__descriptor, "packet_received_event", 8 },
        { &wirepas__proto__gateway_api__wirepas_message__descriptor, "get_gateway_info_req", 15 },
        { &wirepas__proto__gateway_api__wirepas_message__descriptor,
          "get_configuration_data_item_resp", 22 },
        { &wirepas__proto__gateway_api__response_header__descriptor, "res", 4 },
        { &wirepas__proto__gateway_api__response_header__descriptor, "time_ms_epoch", 5 },
        { &wirepas__proto__gateway_api__event_header__descriptor, "event_id", 3 },
        { &wirepas__proto__gateway_api__target_scratchpad_and_action__descriptor, "delay", 4 },
        { &wirepas__proto__gateway_api__target_scratchpad_and_action__descriptor, "raw", 5 },
        { &wirepas__proto__gateway_api__sink_read_config__descriptor, "configuration_data_content", 24 },
        { &wirepas__proto__gateway_api__sink_new_config__descriptor, "management_keys", 12 },
        { &wirepas__proto__gateway_api__send_packet_req__descriptor, "hop_limit", 9 },
        { &wirepas__proto__gateway_api__packet_received_event__descriptor, "network_address", 12 },
        { &wirepas__proto__gateway_api__upload_scratchpad_req__descriptor, "chunk_info", 4 },
        { &wirepas__proto__gateway_api__upload_scratchpad_req__chunk_info__descriptor, "start_offset", 2 },
        { &wirepas__proto__gateway_api__status_event__descriptor, "gw_features", 8 },
        { &wirepas__proto__gateway_api__gateway_info__descriptor, "gw_features", 6 },
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(k[i].d, k[i].field);
        TT_CHECK_MSG(f && f->id == k[i].id, "%s.%s", k[i].d->short_name, k[i].field);
    }
    TT_CHECK_EQ_INT(wirepas__proto__gateway_api__wirepas_message__descriptor.n_fields, 22);
    TT_CHECK_EQ_INT(WIREPAS__PROTO__GATEWAY_API__ERROR_CODE__UNKNOWN_ERROR_CODE, -1);
    TT_CHECK_EQ_INT(WIREPAS__PROTO__GATEWAY_API__ERROR_CODE__INVLAID_SEQUENCE_NUMBER, 17);
    TT_CHECK_EQ_INT(WIREPAS__PROTO__GATEWAY_API__ERROR_CODE__INVALID_SCRATCHPAD_CHUNK_SIZE, 29);
    TT_CHECK_EQ_INT(WIREPAS__PROTO__GATEWAY_API__GATEWAY_FEATURE__VIRTUAL_NODE_V1, 4);
    TT_CHECK_EQ_INT(WIREPAS__PROTO__GATEWAY_API__ON_OFF_STATE__OFF, 2);
    TT_CHECK_EQ_INT(WIREPAS__PROTO__GATEWAY_API__PROCESSING_DELAY__FIVE_DAYS, 7);
}

/* A JSON sample of `d` with every field set (the first member of each oneof). */
static json_t *sample(const ProtobufCMessageDescriptor *d, unsigned seed) {
    json_t *o = json_object();
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && i > 0 &&
            (d->fields[i - 1].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            d->fields[i - 1].quantifier_offset == f->quantifier_offset)
            continue;
        unsigned s = seed * 31 + f->id;
        json_t *v = NULL;
        switch (f->type) {
        case PROTOBUF_C_TYPE_UINT32: v = json_integer(s % 2 ? 4294967295u : s); break;
        case PROTOBUF_C_TYPE_UINT64:
            v = s % 2 ? json_string("18446744073709551615") : json_integer(INT64_MAX);
            break;
        case PROTOBUF_C_TYPE_BOOL: v = json_boolean(s % 2); break;
        case PROTOBUF_C_TYPE_STRING: v = json_string(s % 2 ? "" : "gw-\xc3\xa9"); break;
        case PROTOBUF_C_TYPE_BYTES: v = json_string(s % 2 ? "" : "AAEC/w=="); break;
        case PROTOBUF_C_TYPE_ENUM: {
            const ProtobufCEnumDescriptor *e = f->descriptor;
            v = json_string(e->values[s % e->n_values].name);
            break;
        }
        case PROTOBUF_C_TYPE_MESSAGE: v = sample(f->descriptor, s); break;
        default: v = json_integer(s); break;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            json_t *a = json_array();
            json_array_append_new(a, v);
            if (f->type == PROTOBUF_C_TYPE_MESSAGE) json_array_append_new(a, sample(f->descriptor, s + 1));
            else json_array_append(a, v);
            v = a;
        }
        json_object_set_new(o, f->name, v);
    }
    return o;
}

static void test_every_message_round_trip(void) {
    const ProtobufCMessageDescriptor *wm = &wirepas__proto__gateway_api__wirepas_message__descriptor;
    tt_buf b = TT_BUF_INIT;
    for (unsigned i = 0; i < wm->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &wm->fields[i];
        for (unsigned seed = 0; seed < 3; seed++) {
            json_t *inner = sample(f->descriptor, seed);
            json_t *v = json_pack("{s:{s:o}}", "wirepas", f->name, inner);
            ProtobufCMessage *m = NULL;
            tt_codec_error err = { 0, "" };
            TT_CHECK_MSG(tt_codec_pb_from_json(tt_codec_wirepas_descriptor(), v, &m, &err) == TT_OK,
                         "%s: %s", f->name, err.reason);
            TT_CHECK(m && tt_codec_pb_pack(m, &b) == TT_OK);
            tt_codec_pb_free(m);
            json_t *back = NULL;
            TT_CHECK_MSG(tt_codec_decode(tt_codec_find("wirepas"), b.data, b.len, &back, &err) == TT_OK,
                         "%s: %s", f->name, err.reason);
            TT_CHECK_MSG(json_equal(v, back), "%s seed %u", f->name, seed);
            tti_wp_generic *gm = NULL;
            tti_wp_kind kind;
            TT_CHECK(tti_wirepas_unpack(b.data, b.len, &gm, NULL) == TT_OK &&
                     tti_wirepas_payload(gm, &kind) && kind == (tti_wp_kind)f->id);
            tti_wirepas_free(gm);
            json_decref(back);
            json_decref(v);
        }
    }
    tt_buf_free(&b);
}

static void test_from_json_errors(void) {
    const ProtobufCMessageDescriptor *d = &wirepas__proto__gateway_api__send_packet_req__descriptor;
    const char *base = "{\"header\":{\"req_id\":1},\"destination_address\":1,"
                       "\"source_endpoint\":1,\"destination_endpoint\":1,\"qos\":0,\"payload\":\"\"";
    struct { const char *extra; tt_err rc; const char *reason_has; } cases[] = {
        { "", TT_OK, NULL },
        { ",\"hop_limt\":3", TT_EINVAL, "hop_limt" },
        { ",\"hop_limit\":-1", TT_EINVAL, "hop_limit" },
        { ",\"hop_limit\":4294967296", TT_EINVAL, "hop_limit" },
        { ",\"hop_limit\":1.5", TT_EINVAL, "hop_limit" },
        { ",\"hop_limit\":null", TT_OK, NULL },
        { ",\"is_unack_csma_ca\":1", TT_EINVAL, "is_unack_csma_ca" },
        { ",\"payload\":\"AQ\"", TT_EINVAL, "payload" },
    };
    char text[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* A later duplicate key replaces the first one in jansson. */
        snprintf(text, sizeof text, "%s%s}", base, cases[i].extra);
        json_t *v = json_loads(text, 0, NULL);
        TT_REQUIRE(v != NULL);
        ProtobufCMessage *m = NULL;
        tt_codec_error err = { 0, "" };
        tt_err rc = tt_codec_pb_from_json(d, v, &m, &err);
        TT_CHECK_MSG(rc == cases[i].rc, "case %zu: %s (%s)", i, tt_err_name(rc), err.reason);
        if (cases[i].reason_has)
            TT_CHECK_MSG(strstr(err.reason, cases[i].reason_has) != NULL, "%s", err.reason);
        tt_codec_pb_free(m);
        json_decref(v);
    }
    /* Missing required fields are named, nested ones too. */
    const struct { const char *json; const char *reason_has; } req[] = {
        { "{\"destination_address\":1}", "header" },
        { "{\"header\":{},\"destination_address\":1,\"source_endpoint\":1,"
          "\"destination_endpoint\":1,\"qos\":0,\"payload\":\"\"}", "req_id" },
    };
    for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
        json_t *v = json_loads(req[i].json, 0, NULL);
        ProtobufCMessage *m = NULL;
        tt_codec_error err = { 0, "" };
        TT_CHECK_EQ_INT(tt_codec_pb_from_json(d, v, &m, &err), TT_EINVAL);
        TT_CHECK_MSG(strstr(err.reason, req[i].reason_has) != NULL, "%s", err.reason);
        json_decref(v);
    }
    /* Enums by name (either spelling of an alias) or number; 64-bit as strings. */
    const ProtobufCMessageDescriptor *rh = &wirepas__proto__gateway_api__response_header__descriptor;
    const char *ok[] = {
        "{\"req_id\":\"18446744073709551615\",\"gw_id\":\"g\",\"res\":\"INVLAID_SEQUENCE_NUMBER\"}",
        "{\"req_id\":0,\"gw_id\":\"g\",\"res\":17}",
        "{\"req_id\":\"42\",\"gw_id\":\"g\",\"res\":-1}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        json_t *v = json_loads(ok[i], 0, NULL), *back = NULL;
        ProtobufCMessage *m = NULL;
        TT_REQUIRE(tt_codec_pb_from_json(rh, v, &m, NULL) == TT_OK);
        TT_CHECK(tt_codec_pb_to_json(m, &back, NULL) == TT_OK);
        const Wirepas__Proto__GatewayApi__ResponseHeader *h = (const void *)m;
        if (i == 0) {
            TT_CHECK(h->req_id == UINT64_MAX && h->res == 17);
            TT_CHECK_EQ_STR(json_string_value(json_object_get(back, "res")), "INVALID_SEQUENCE_NUMBER");
            TT_CHECK_EQ_STR(json_string_value(json_object_get(back, "req_id")), "18446744073709551615");
        }
        if (i == 2) TT_CHECK_EQ_STR(json_string_value(json_object_get(back, "res")), "UNKNOWN_ERROR_CODE");
        json_decref(back);
        tt_codec_pb_free(m);
        json_decref(v);
    }
    const char *bad[] = {
        "{\"req_id\":-1,\"gw_id\":\"g\",\"res\":0}",
        "{\"req_id\":\"18446744073709551616\",\"gw_id\":\"g\",\"res\":0}",
        "{\"req_id\":1,\"gw_id\":\"g\",\"res\":\"NOPE\"}",
        "{\"req_id\":1,\"gw_id\":\"g\\u0000x\",\"res\":0}",
        "{\"req_id\":1,\"gw_id\":7,\"res\":0}",
        "[1]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *v = json_loads(bad[i], JSON_ALLOW_NUL, NULL);
        ProtobufCMessage *m = NULL;
        TT_CHECK_MSG(tt_codec_pb_from_json(rh, v, &m, NULL) == TT_EINVAL, "%s", bad[i]);
        json_decref(v);
    }
    /* Two members of one oneof. */
    const ProtobufCMessageDescriptor *ta =
        &wirepas__proto__gateway_api__target_scratchpad_and_action__descriptor;
    json_t *v = json_loads("{\"action\":\"PROPAGATE_AND_PROCESS_WITH_DELAY\",\"delay\":\"ONE_DAY\",\"raw\":5}", 0, NULL);
    ProtobufCMessage *m = NULL;
    tt_codec_error err = { 0, "" };
    TT_CHECK_EQ_INT(tt_codec_pb_from_json(ta, v, &m, &err), TT_EINVAL);
    TT_CHECK(strstr(err.reason, "oneof") != NULL);
    json_decref(v);
    v = json_loads("{\"action\":4,\"raw\":5}", 0, NULL);
    TT_REQUIRE(tt_codec_pb_from_json(ta, v, &m, NULL) == TT_OK);
    const Wirepas__Proto__GatewayApi__TargetScratchpadAndAction *t = (const void *)m;
    TT_CHECK(t->param_case == WIREPAS__PROTO__GATEWAY_API__TARGET_SCRATCHPAD_AND_ACTION__PARAM_RAW && t->raw == 5);
    json_t *back = NULL;
    TT_CHECK(tt_codec_pb_to_json(m, &back, NULL) == TT_OK);
    TT_CHECK_EQ_STR(json_string_value(json_object_get(back, "action")), "PROPAGATE_AND_PROCESS_WITH_DELAY");
    TT_CHECK(json_integer_value(json_object_get(back, "raw")) == 5 && !json_object_get(back, "delay"));
    json_decref(back);
    tt_codec_pb_free(m);
    json_decref(v);
}

static void pb_corpus_case(const char *name, const unsigned char *data, size_t len, long want,
                           void *arg) {
    json_t *v = NULL;
    tt_codec_error err = { 99999, "" };
    (void)arg;
    tt_err rc = tt_codec_decode(tt_codec_find("wirepas"), data, len, &v, &err);
    TT_CHECK_MSG(rc == TT_EPROTO, "%s: %s", name, tt_err_name(rc));
    TT_CHECK_MSG(err.offset <= len, "%s: offset %zu", name, err.offset);
    if (want >= 0) TT_CHECK_MSG((long)err.offset == want, "%s: offset %zu (%s)", name, err.offset, err.reason);
    TT_CHECK_MSG(err.reason[0], "%s", name);
    json_decref(v);
}

static void test_malformed_corpus(void) {
    TT_CHECK(ct_for_corpus(TT_CODEC_CORPUS "/pb", pb_corpus_case, NULL) >= 6);
    /* Every truncation of a valid message fails cleanly or decodes (optional tails). */
    for (size_t n = 0; n < sizeof k_packet_received; n++) {
        json_t *v = NULL;
        tt_codec_error err;
        tt_err rc = tt_codec_decode(tt_codec_find("wirepas"), k_packet_received, n, &v, &err);
        TT_CHECK(rc == TT_OK || (rc == TT_EPROTO && err.offset <= n));
        json_decref(v);
    }
}

static void test_empty(void) {
    json_t *v = NULL;
    tt_buf b = TT_BUF_INIT;
    /* An empty payload is a GenericMessage with nothing set. */
    TT_REQUIRE(tt_codec_decode(tt_codec_find("wirepas"), NULL, 0, &v, NULL) == TT_OK);
    TT_CHECK(json_is_object(v) && json_object_size(v) == 0);
    TT_CHECK(tt_codec_encode(tt_codec_find("wirepas"), v, &b) == TT_OK && b.len == 0);
    json_decref(v);
    tti_wp_generic *gm = NULL;
    tti_wp_kind kind = TTI_WP_STATUS_EVENT;
    TT_REQUIRE(tti_wirepas_unpack(NULL, 0, &gm, NULL) == TT_OK);
    TT_CHECK(tti_wirepas_payload(gm, &kind) == NULL && kind == TTI_WP_NONE);
    tti_wirepas_free(gm);
    tt_buf_free(&b);
}

TT_TEST_LIST = {
    { "send_packet_req_exact_bytes", test_send_packet_req_exact_bytes },
    { "received_event_decode", test_received_event_decode },
    { "field_numbers", test_field_numbers },
    { "every_message_round_trip", test_every_message_round_trip },
    { "from_json_errors", test_from_json_errors },
    { "malformed_corpus", test_malformed_corpus },
    { "empty", test_empty },
    { NULL, NULL },
};
