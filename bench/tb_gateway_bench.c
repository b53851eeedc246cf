/* One ThingsBoard gateway speaking for many sub-devices through one
 * connection to a local mosquitto: by default 1,000 sub-devices x 10
 * telemetry messages/s (10,000 msg/s) for 10 s. A plain tether MQTT client
 * subscribed to v1/gateway/telemetry reads the send time carried in each
 * payload and records the publish-to-receive latency.
 *
 *   tb_gateway_bench [-s seconds] [-d devices] [-r msgs/s per device] [-q 0|1]
 *
 * Prints the rate achieved, latency percentiles (p50, p99, p99.9, max), lost
 * messages (sent and acknowledged but never received) and failed sends. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/tether.h>
#include <tether/mqtt.h>
#include <tether/thingsboard.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

typedef struct rx {
    pthread_mutex_t lock;
    uint64_t *lat;                     /* microseconds, one per message received */
    size_t n, cap;
    size_t bad;                        /* unreadable payloads */
} rx;

/* {"sensor-0001":[{"ts":..,"values":{"seq":n,"t_us":t}}]} without a full JSON
 * parse on the hot path: find "t_us": and read the number. */
static void on_telemetry(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    rx *r = arg;
    uint64_t now = now_us();
    size_t len;
    const char *p = tt_msg_payload(m, &len);
    const char *k = p ? memmem(p, len, "\"t_us\":", 7) : NULL;
    uint64_t t = 0;
    if (k) {
        for (k += 7; k < p + len && *k >= '0' && *k <= '9'; k++) t = t * 10 + (uint64_t)(*k - '0');
    }
    pthread_mutex_lock(&r->lock);
    if (!t || t > now) {
        r->bad++;
    } else {
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 1 << 16;
            uint64_t *nl = realloc(r->lat, cap * sizeof *nl);
            if (nl) r->lat = nl, r->cap = cap;
        }
        if (r->n < r->cap) r->lat[r->n++] = now - t;
    }
    pthread_mutex_unlock(&r->lock);
}

static atomic_long g_acked, g_failed;

static void on_sent(tt_future *f, void *arg) {
    (void)arg;
    if (tt_future_result(f) == TT_OK) atomic_fetch_add(&g_acked, 1);
    else atomic_fetch_add(&g_failed, 1);
    tt_future_free(f);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *v, size_t n, double p) {
    if (!n) return 0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

int main(int argc, char **argv) {
    long secs = 10, devices = 1000, rate = 10, qos = 1;
    int opt;
    while ((opt = getopt(argc, argv, "s:d:r:q:")) != -1) {
        switch (opt) {
        case 's': secs = atol(optarg); break;
        case 'd': devices = atol(optarg); break;
        case 'r': rate = atol(optarg); break;
        case 'q': qos = atol(optarg); break;
        default:
            fprintf(stderr, "usage: tb_gateway_bench [-s seconds] [-d devices] [-r msgs/s per device] [-q 0|1]\n");
            return 2;
        }
    }
    if (secs < 1 || devices < 1 || devices > 1000000 || rate < 1 || (qos != 0 && qos != 1)) return 2;
    tt_broker b;
    tt_broker_opts bo = { .tcp_nodelay = true, .max_inflight_messages = 1000,
                          .max_queued_messages = TT_BROKER_UNLIMITED };
    if (tt_broker_start(&b, &bo) != 0) {
        tt_broker_dump_log(&b, stderr);
        return 1;
    }
    tt_runtime *rt;
    tt_runtime_opts ro = TT_OPTS_INIT(tt_runtime_opts);
    ro.loop_threads = 2;
    if (tt_runtime_new(&rt, &ro) != TT_OK) return 1;

    /* the receiving side: a plain MQTT subscriber */
    rx r = { .lock = PTHREAD_MUTEX_INITIALIZER };
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", b.port);
    tt_client_opts co = TT_OPTS_INIT(tt_client_opts);
    co.url = url;
    tt_client *sub;
    if (tt_client_new(rt, &co, &sub) != TT_OK) return 1;
    tt_future *f = tt_client_connect(sub);
    if (tt_future_wait(f, 10000) != TT_OK) return fprintf(stderr, "subscriber: connect failed\n"), 1;
    tt_future_free(f);
    tt_sub s = { .filter = "v1/gateway/telemetry", .qos = (tt_qos)qos, .handler = on_telemetry, .arg = &r };
    f = tt_client_subscribe(sub, &s, 1, NULL);
    if (tt_future_wait(f, 10000) != TT_OK) return fprintf(stderr, "subscriber: subscribe failed\n"), 1;
    tt_future_free(f);

    /* the gateway */
    tt_client_opts gco = TT_OPTS_INIT(tt_client_opts);
    gco.offline_queue_bytes = 64u << 20;
    tt_tb_opts o = TT_OPTS_INIT(tt_tb_opts);
    o.host = "127.0.0.1";
    o.port = (uint16_t)b.port;
    o.token = "bench-gateway";
    o.qos0 = qos == 0;
    o.mqtt = &gco;
    tt_tb_gateway *g;
    if (tt_tb_gateway_new(rt, &o, &g) != TT_OK) return 1;
    f = tt_tb_gateway_connect(g);
    if (tt_future_wait(f, 10000) != TT_OK) return fprintf(stderr, "gateway: connect failed\n"), 1;
    tt_future_free(f);
    char (*names)[32] = calloc((size_t)devices, sizeof *names);
    for (long i = 0; i < devices; i++) {
        snprintf(names[i], sizeof names[i], "sensor-%04d", (int)i);
        f = tt_tb_gateway_connect_device(g, names[i], "bench-sensor");
        tt_future_then(f, on_sent, NULL);
    }
    while (atomic_load(&g_acked) + atomic_load(&g_failed) < devices) usleep(1000);
    atomic_store(&g_acked, 0);
    atomic_store(&g_failed, 0);

    printf("tb_gateway_bench: %ld sub-devices x %ld msg/s = %ld msg/s for %ld s, QoS %ld, one connection\n",
           devices, rate, devices * rate, secs, qos);
    /* send in 10 ms slices: devices*rate/100 messages each, round robin over devices */
    long total = devices * rate * secs, sent = 0, dev = 0, seq = 0;
    long slices = secs * 100, per_slice = devices * rate / 100;
    if (per_slice < 1) per_slice = 1;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    uint64_t t0 = now_us();
    json_t *vals = json_object();
    for (long sl = 0; sl < slices && sent < total; sl++) {
        for (long k = 0; k < per_slice && sent < total; k++, sent++) {
            json_object_set_new(vals, "seq", json_integer(seq++));
            json_object_set_new(vals, "v", json_real((double)(seq % 1000) / 10.0));
            json_object_set_new(vals, "t_us", json_integer((json_int_t)now_us()));
            f = tt_tb_gateway_send_telemetry(g, names[dev], vals);
            tt_future_then(f, on_sent, NULL);
            if (++dev == devices) dev = 0;
        }
        next.tv_nsec += 10 * 1000 * 1000;
        if (next.tv_nsec >= 1000000000) next.tv_nsec -= 1000000000, next.tv_sec++;
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    uint64_t t_send = now_us() - t0;
    json_decref(vals);
    /* drain: until every send settled and the receiver stopped growing */
    size_t last = (size_t)-1;
    for (int idle = 0; idle < 20;) {
        usleep(100000);
        pthread_mutex_lock(&r.lock);
        size_t n = r.n + r.bad;
        pthread_mutex_unlock(&r.lock);
        bool settled = atomic_load(&g_acked) + atomic_load(&g_failed) >= sent;
        idle = (n == last && settled) ? idle + 1 : 0;
        if (n >= (size_t)sent && settled) break;
        last = n;
    }
    uint64_t t_all = now_us() - t0;
    pthread_mutex_lock(&r.lock);
    size_t got = r.n;
    qsort(r.lat, r.n, sizeof *r.lat, cmp_u64);
    long acked = atomic_load(&g_acked), failed = atomic_load(&g_failed);
    printf("  sent %ld in %.2f s (%.0f msg/s offered); received %zu in %.2f s (%.0f msg/s)\n", sent,
           (double)t_send / 1e6, (double)sent * 1e6 / (double)t_send, got, (double)t_all / 1e6,
           (double)got * 1e6 / (double)t_all);
    printf("  latency publish->receive: p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms\n",
           (double)pct(r.lat, got, 50) / 1000.0, (double)pct(r.lat, got, 99) / 1000.0,
           (double)pct(r.lat, got, 99.9) / 1000.0, got ? (double)r.lat[got - 1] / 1000.0 : 0.0);
    printf("  acknowledged %ld, failed sends %ld, lost %ld (acknowledged, never received), unreadable %zu\n",
           acked, failed, acked > (long)got ? acked - (long)got : 0, r.bad);
    pthread_mutex_unlock(&r.lock);
    tt_tb_gateway_free(g);
    tt_client_free(sub);
    tt_runtime_free(rt);
    tt_broker_free(&b);
    free(r.lat);
    free(names);
    return failed || acked > (long)got ? 1 : 0;
}
