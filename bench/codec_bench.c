/* Payload codec rates on one core: decode and encode of a typical ThingsBoard telemetry
 * message (10 keys) as JSON and as MessagePack, and of a Wirepas received-data event
 * (protobuf) to the protobuf-c struct and to JSON. Reference rows show jansson's own
 * json_dumps and msgpack-c's unpacker on the same input.
 *
 *   codec_bench [seconds-per-row]      (default 0.5) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/codec.h>
#include <time.h>

#ifdef TT_BENCH_HAVE_MSGPACK
#include <msgpack.h>
#endif
#ifdef TT_BENCH_HAVE_PROTOBUF
#include <tether/codec_pb.h>
#endif

static const char k_telemetry[] =
    "{\"temperature\":21.5,\"humidity\":45.2,\"pressure\":1013.25,\"battery\":87,"
    "\"rssi\":-67,\"active\":true,\"firmware\":\"1.4.2\",\"errors\":0,"
    "\"uptime\":1234567,\"location\":\"hall-3\"}";

/* Wirepas GenericMessage with a PacketReceivedEvent: header {gw_id, sink_id, event_id,
 * time_ms_epoch}, addresses, endpoints, travel time, rx time, qos, a 20-byte payload,
 * hop count and network address (the fields a real gateway fills in). */
static const char k_wirepas_json[] =
    "{\"wirepas\":{\"packet_received_event\":{\"header\":{\"gw_id\":\"gw-0042\","
    "\"sink_id\":\"sink0\",\"event_id\":\"15372286728091293013\",\"time_ms_epoch\":1700000000123},"
    "\"source_address\":1193046,\"destination_address\":1,\"source_endpoint\":10,"
    "\"destination_endpoint\":20,\"travel_time_ms\":25,\"rx_time_ms_epoch\":1700000000100,"
    "\"qos\":1,\"payload\":\"AAECAwQFBgcICQoLDA0ODxAREhM=\",\"hop_count\":3,"
    "\"network_address\":11259375}}}";

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef int (*op_fn)(void *ctx);

static double g_secs = 0.5;
static volatile size_t g_sink;

static void row(const char *name, op_fn op, void *ctx, size_t bytes) {
    for (int i = 0; i < 1000; i++) op(ctx);   /* warm up */
    long n = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 256; i++) {
            if (op(ctx) != 0) {
                printf("%-44s FAILED\n", name);
                return;
            }
        }
        n += 256;
        t = now() - t0;
    } while (t < g_secs);
    double rate = (double)n / t;
    printf("%-44s %7zu %12.0f %9.1f %9.0f\n", name, bytes, rate, rate * (double)bytes / 1e6,
           1e9 / rate);
}

/* ---- operations ------------------------------------------------------------------- */

typedef struct codec_ctx {
    const tt_codec *codec;
    const void     *data;
    size_t          len;
    json_t         *value;
    tt_buf          buf;
} codec_ctx;

static int op_decode(void *p) {
    codec_ctx *c = p;
    json_t *v;
    if (tt_codec_decode(c->codec, c->data, c->len, &v, NULL) != TT_OK) return -1;
    json_decref(v);
    return 0;
}

static int op_encode(void *p) {
    codec_ctx *c = p;
    if (tt_codec_encode(c->codec, c->value, &c->buf) != TT_OK) return -1;
    g_sink += c->buf.len;
    return 0;
}

static int op_jansson_dumps(void *p) {
    codec_ctx *c = p;
    char *s = json_dumps(c->value, JSON_COMPACT);
    if (!s) return -1;
    g_sink += strlen(s);
    free(s);
    return 0;
}

#ifdef TT_BENCH_HAVE_MSGPACK
static int op_msgpack_c_unpack(void *p) {
    codec_ctx *c = p;
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    int rc = msgpack_unpack_next(&u, c->data, c->len, &off) == MSGPACK_UNPACK_SUCCESS ? 0 : -1;
    msgpack_unpacked_destroy(&u);
    return rc;
}
#endif

#ifdef TT_BENCH_HAVE_PROTOBUF
typedef struct pb_ctx {
    const void       *data;
    size_t            len;
    ProtobufCMessage *msg;
    tt_buf            buf;
} pb_ctx;

static int op_pb_unpack(void *p) {
    pb_ctx *c = p;
    ProtobufCMessage *m;
    if (tt_codec_pb_unpack(tt_codec_wirepas_descriptor(), c->data, c->len, &m, NULL) != TT_OK)
        return -1;
    tt_codec_pb_free(m);
    return 0;
}

static int op_pb_pack(void *p) {
    pb_ctx *c = p;
    if (tt_codec_pb_pack(c->msg, &c->buf) != TT_OK) return -1;
    g_sink += c->buf.len;
    return 0;
}
#endif

int main(int argc, char **argv) {
    if (argc > 1) g_secs = atof(argv[1]);
    const tt_codec *json = tt_codec_find("json");
    json_t *telemetry = json_loads(k_telemetry, 0, NULL);
    if (!json || !telemetry) return 1;

    printf("codec_bench: one core, %.1f s per row\n", g_secs);
    printf("%-44s %7s %12s %9s %9s\n", "operation", "bytes", "msg/s", "MB/s", "ns/msg");

    codec_ctx jd = { json, k_telemetry, strlen(k_telemetry), telemetry, TT_BUF_INIT };
    row("json decode (telemetry, 10 keys)", op_decode, &jd, jd.len);
    row("json encode", op_encode, &jd, jd.len);
    row("  reference: jansson json_dumps", op_jansson_dumps, &jd, jd.len);
    tt_buf_free(&jd.buf);

#ifdef TT_BENCH_HAVE_MSGPACK
    const tt_codec *mp = tt_codec_find("msgpack");
    tt_buf mpbytes = TT_BUF_INIT;
    if (tt_codec_encode(mp, telemetry, &mpbytes) != TT_OK) return 1;
    codec_ctx md = { mp, mpbytes.data, mpbytes.len, telemetry, TT_BUF_INIT };
    row("msgpack decode (same telemetry)", op_decode, &md, md.len);
    row("msgpack encode", op_encode, &md, md.len);
    row("  reference: msgpack-c unpack (no json_t)", op_msgpack_c_unpack, &md, md.len);
    tt_buf_free(&md.buf);
    tt_buf_free(&mpbytes);
#endif

#ifdef TT_BENCH_HAVE_PROTOBUF
    const tt_codec *wp = tt_codec_find("wirepas");
    json_t *wpjson = json_loads(k_wirepas_json, 0, NULL);
    tt_buf wpbytes = TT_BUF_INIT;
    if (!wpjson || tt_codec_encode(wp, wpjson, &wpbytes) != TT_OK) return 1;
    pb_ctx pd = { wpbytes.data, wpbytes.len, NULL, TT_BUF_INIT };
    if (tt_codec_pb_unpack(tt_codec_wirepas_descriptor(), pd.data, pd.len, &pd.msg, NULL) != TT_OK)
        return 1;
    row("wirepas received-data decode -> struct", op_pb_unpack, &pd, pd.len);
    row("wirepas received-data encode <- struct", op_pb_pack, &pd, pd.len);
    codec_ctx wd = { wp, wpbytes.data, wpbytes.len, wpjson, TT_BUF_INIT };
    row("wirepas received-data decode -> json", op_decode, &wd, wd.len);
    row("wirepas received-data encode <- json", op_encode, &wd, wd.len);
    tt_codec_pb_free(pd.msg);
    tt_buf_free(&pd.buf);
    tt_buf_free(&wd.buf);
    tt_buf_free(&wpbytes);
    json_decref(wpjson);
#endif
    json_decref(telemetry);
    return 0;
}
