/* Payload codec rates on one core: decode and encode of a typical ThingsBoard telemetry
 * message (10 keys) as JSON and as MessagePack, and of a Wirepas received-data event
 * (protobuf) to the protobuf-c struct and to JSON. Reference rows show jansson's own
 * json_dumps and msgpack-c's unpacker on the same input.
 *
 * Then the codec pool: the same telemetry decoded through tt_codec_pool_decode() with
 * 1 and 2 codec actors, one submitting thread, 4096 keys, a continuation per message
 * that counts it (on one callback-pool thread), and the 1 -> 2 scaling. The CPU columns
 * say where the time goes: all threads' CPU per message, and the submitting thread's.
 * Most of the difference from the one-core row is the allocator: each decoded json_t
 * (about 25 blocks for 10 keys) is allocated on a codec thread and freed where the
 * continuation frees its future, which glibc serves from locked arena paths (compare
 * GLIBC_TUNABLES=glibc.malloc.tcache_count=4096). On a machine with as many cores as
 * threads here (submitter, codec actors, callback thread) the pool scales further.
 *
 *   codec_bench [seconds-per-row [pool]]   (default 0.5; pool rows run twice as long;
 *                                           "pool": only the pool rows) */
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/codec.h>
#include <tether/codec_pool.h>
#include <tether/runtime.h>
#include <time.h>
#include <unistd.h>

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

/* ---- the codec pool ----------------------------------------------------------------- */

#define POOL_KEYS  4096
#define POOL_BATCH 1024               /* in flight: at most two batches */

typedef struct pool_result {
    double rate;                      /* messages/s */
    double cpu_ns;                    /* CPU of all threads per message */
    double submit_ns;                 /* CPU of the submitting thread per message */
    long failed;
} pool_result;

static atomic_long g_pool_done, g_pool_failed;

static void pool_count(tt_future *f, void *arg) {
    (void)arg;
    if (tt_future_result(f) != TT_OK || !tt_future_get_json(f))
        atomic_fetch_add_explicit(&g_pool_failed, 1, memory_order_relaxed);
    tt_future_free(f);
    atomic_fetch_add_explicit(&g_pool_done, 1, memory_order_release);
}

static double cpu_now(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Submit batches of decodes for `secs`. The last call of a batch on each actor is a
 * checkpoint the submitter keeps and waits for one batch later (blocking, not
 * spinning), which bounds the queue; every other call gets a counting continuation. */
static pool_result pool_run(tt_runtime *rt, uint32_t actors, const tt_codec *codec,
                            const void *data, size_t len, double secs) {
    pool_result r = { 0, 0, 0, 0 };
    if (actors < 1 || actors > 8) {
        r.failed = -1;
        return r;
    }
    tt_codec_pool *p;
    tt_codec_pool_opts o = TT_OPTS_INIT(tt_codec_pool_opts);
    o.actors = actors;
    if (tt_codec_pool_new(rt, &o, &p) != TT_OK) {
        r.failed = -1;
        return r;
    }
    uint32_t actor_of[POOL_KEYS];
    for (uint32_t k = 0; k < POOL_KEYS; k++) actor_of[k] = tt_codec_pool_actor(p, k);
    tt_future *cp[2][8];              /* checkpoints of the previous and current batch */
    int ncp[2] = { 0, 0 };
    atomic_store(&g_pool_done, 0);
    atomic_store(&g_pool_failed, 0);
    long submitted = 0, checked = 0;
    uint64_t key = 0;
    double t0 = now(), c0 = cpu_now(CLOCK_PROCESS_CPUTIME_ID),
           s0 = cpu_now(CLOCK_THREAD_CPUTIME_ID);
    for (int b = 0;; b ^= 1) {
        int last[8];                  /* index in the batch of each actor's last call */
        for (uint32_t a = 0; a < actors; a++) last[a] = -1;
        for (int i = POOL_BATCH - 1; i >= 0; i--) {
            uint32_t a = actor_of[(key + (uint64_t)i) % POOL_KEYS];
            if (last[a] < 0) last[a] = i;
        }
        ncp[b] = 0;
        for (int i = 0; i < POOL_BATCH; i++, key++) {
            uint64_t k = key % POOL_KEYS;
            tt_future *f = tt_codec_pool_decode(p, codec, k, data, len, NULL);
            if (i == last[actor_of[k]])
                cp[b][ncp[b]++] = f;
            else if (tt_future_then(f, pool_count, NULL) != TT_OK)
                r.failed++;
        }
        submitted += POOL_BATCH;
        for (int i = 0; i < ncp[b ^ 1]; i++) {    /* the previous batch's */
            tt_future *f = cp[b ^ 1][i];
            if (tt_future_wait(f, TT_FOREVER) != TT_OK) r.failed++;
            tt_future_free(f);
            checked++;
        }
        ncp[b ^ 1] = 0;
        if (now() - t0 >= secs) {
            for (int i = 0; i < ncp[b]; i++) {
                if (tt_future_wait(cp[b][i], TT_FOREVER) != TT_OK) r.failed++;
                tt_future_free(cp[b][i]);
                checked++;
            }
            break;
        }
    }
    while (atomic_load_explicit(&g_pool_done, memory_order_acquire) + checked < submitted)
        sched_yield();                /* the last continuations */
    double t = now() - t0;
    r.rate = (double)submitted / t;
    r.cpu_ns = (cpu_now(CLOCK_PROCESS_CPUTIME_ID) - c0) * 1e9 / (double)submitted;
    r.submit_ns = (cpu_now(CLOCK_THREAD_CPUTIME_ID) - s0) * 1e9 / (double)submitted;
    r.failed += atomic_load(&g_pool_failed);
    tt_codec_pool_free(p);
    return r;
}

static void pool_rows(tt_runtime *rt, const char *name, const tt_codec *codec, const void *data,
                      size_t len) {
    pool_result one = pool_run(rt, 1, codec, data, len, 2 * g_secs);
    pool_result two = pool_run(rt, 2, codec, data, len, 2 * g_secs);
    const pool_result *rs[2] = { &one, &two };
    for (int i = 0; i < 2; i++) {
        const pool_result *r = rs[i];
        if (r->failed) {
            printf("%-30s %6d  FAILED (%ld)\n", name, i + 1, r->failed);
            continue;
        }
        char scale[16] = "";
        if (i == 1 && one.rate > 0) snprintf(scale, sizeof scale, "%.2fx", r->rate / one.rate);
        printf("%-30s %6d %12.0f %8s %12.0f %12.0f\n", name, i + 1, r->rate, scale, r->cpu_ns,
               r->submit_ns);
    }
}

int main(int argc, char **argv) {
    if (argc > 1) g_secs = atof(argv[1]);
    bool pool_only = argc > 2 && strcmp(argv[2], "pool") == 0;
    const tt_codec *json = tt_codec_find("json");
    json_t *telemetry = json_loads(k_telemetry, 0, NULL);
    if (!json || !telemetry) return 1;
    if (pool_only) goto pool;

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

pool:;
    /* The codec pool. One I/O loop (idle here), one callback-pool thread. */
    tt_runtime *rt;
    tt_runtime_opts ro = TT_OPTS_INIT(tt_runtime_opts);
    ro.loop_threads = 1;
    ro.pool_threads = 1;
    if (tt_runtime_new(&rt, &ro) != TT_OK) return 1;
    double load[1] = { -1 };
    (void)getloadavg(load, 1);
    printf("\ncodec pool: decode through tt_codec_pool_decode, %d keys, one submitting thread,\n"
           "continuations counting on one callback-pool thread, %.1f s per row, %ld cores,\n"
           "load average %.2f at start\n",
           POOL_KEYS, 2 * g_secs, sysconf(_SC_NPROCESSORS_ONLN), load[0]);
    printf("%-30s %6s %12s %8s %12s %12s\n", "payload", "actors", "msg/s", "1->2", "cpu ns/msg",
           "submit ns/msg");
    pool_rows(rt, "json telemetry (10 keys)", json, k_telemetry, strlen(k_telemetry));
#ifdef TT_BENCH_HAVE_MSGPACK
    tt_buf mpb = TT_BUF_INIT;
    if (tt_codec_encode(tt_codec_find("msgpack"), telemetry, &mpb) != TT_OK) return 1;
    pool_rows(rt, "msgpack telemetry", tt_codec_find("msgpack"), mpb.data, mpb.len);
    tt_buf_free(&mpb);
#endif
    tt_runtime_free(rt);
    json_decref(telemetry);
    return 0;
}
