/* A Watson IoT application ingesting device events: a gateway publishes N
 * JSON events (QoS 1) for many devices through a local mosquitto, and one
 * consumer receives them. Two consumers, one run each, side by side:
 *
 *   wiotp   a tt_wiotp application subscribed to every event: the adapter
 *           reads the topic (type, device, event, format) and decodes the
 *           JSON before the handler runs
 *   plain   a plain tt_client on iot-2/type/+/id/+/evt/+/fmt/+ whose handler
 *           splits the topic and decodes the JSON by hand (jansson), the
 *           same work without the adapter
 *
 * Each reports messages/s received and the CPU time of the thread that runs
 * the handlers (the client's strand: parse, decode, handler) per message.
 * The ratio wiotp/plain is the cost of the adapter.
 *
 *   wiotp_app_bench [-n events] [-d devices]
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/tether.h>
#include <tether/watson.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What the consumer saw; written by its strand only, read after `done`. */
typedef struct rx {
    long want, n, bad;
    long long seq_sum;
    double t_first, t_last, cpu_first, cpu_last;
    atomic_bool done;
} rx;

static void count(rx *r, const json_t *data) {
    json_t *seq = json_object_get(data, "seq");
    if (!json_is_integer(seq)) r->bad++;
    else r->seq_sum += json_integer_value(seq);
    if (r->n++ == 0) {
        r->t_first = now_s();
        r->cpu_first = thread_cpu_s();
    }
    if (r->n == r->want) {
        r->t_last = now_s();
        r->cpu_last = thread_cpu_s();
        atomic_store(&r->done, true);
    }
}

static void on_wiotp(tt_wiotp *w, const tt_wiotp_msg *m, void *arg) {
    (void)w;
    if (m->kind != TT_WIOTP_EVENT || strcmp(m->format, "json") != 0 || !*m->device_id) {
        ((rx *)arg)->bad++;
        return;
    }
    count(arg, m->data);
}

/* The same by hand: split iot-2/type/T/id/D/evt/E/fmt/F, decode the JSON. */
static void on_plain(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    size_t tl, n;
    const char *t = tt_msg_topic(m, &tl);
    const char *p = tt_msg_payload(m, &n);
    char buf[256];
    const char *lv[10];
    int k = 0;
    if (tl >= sizeof buf) {
        ((rx *)arg)->bad++;
        return;
    }
    memcpy(buf, t, tl);
    buf[tl] = '\0';
    for (char *s = buf; k < 10;) {
        lv[k++] = s;
        char *e = strchr(s, '/');
        if (!e) break;
        *e = '\0';
        s = e + 1;
    }
    if (k != 9 || strcmp(lv[5], "evt") != 0 || strcmp(lv[8], "json") != 0) {
        ((rx *)arg)->bad++;
        return;
    }
    json_t *j = json_loadb(p, n, 0, NULL);
    count(arg, j);
    json_decref(j);
}

/* Wait for f and free it. */
static bool ok(tt_future *f) {
    tt_err rc = tt_future_wait(f, 10000);
    tt_future_free(f);
    return rc == TT_OK;
}

static int run(const char *mode, int port, long events, long devices) {
    tt_runtime_opts ro = TT_OPTS_INIT(tt_runtime_opts);
    ro.loop_threads = 1;
    ro.pool_threads = 1;
    tt_runtime *prt, *crt;                   /* publisher and consumer apart */
    if (tt_runtime_new(&prt, &ro) != TT_OK || tt_runtime_new(&crt, &ro) != TT_OK) return 1;
    rx r;
    memset(&r, 0, sizeof r);
    r.want = events;
    tt_wiotp *app = NULL;
    tt_client *plain = NULL;
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", port);
    if (!strcmp(mode, "wiotp")) {
        tt_wiotp_opts o = TT_OPTS_INIT(tt_wiotp_opts);
        o.role = TT_WIOTP_APP;
        o.api_key = "a-bench1-key";
        o.token = "t";
        o.app_id = "ingest";
        o.host = "127.0.0.1";
        o.port = (uint16_t)port;
        o.tls = TT_WIOTP_TLS_OFF;
        o.on_message = on_wiotp;
        o.on_message_arg = &r;
        if (tt_wiotp_new(crt, &o, &app) != TT_OK) return 1;
        if (!ok(tt_wiotp_connect(app))) return 1;
        tt_wiotp_filter f = TT_OPTS_INIT(tt_wiotp_filter);
        f.kind = TT_WIOTP_EVENT;
        f.qos = TT_QOS1;
        if (!ok(tt_wiotp_subscribe(app, &f))) return 1;
    } else {
        tt_client_opts co = TT_OPTS_INIT(tt_client_opts);
        co.url = url;
        co.client_id = "a:bench1:ingest";
        if (tt_client_new(crt, &co, &plain) != TT_OK) return 1;
        if (!ok(tt_client_connect(plain))) return 1;
        tt_sub s = { .filter = "iot-2/type/+/id/+/evt/+/fmt/+", .qos = TT_QOS1, .handler = on_plain,
                     .arg = &r };
        if (!ok(tt_client_subscribe(plain, &s, 1, NULL))) return 1;
    }
    /* The publisher: a gateway speaking for `devices` devices. */
    tt_client_opts gco = TT_OPTS_INIT(tt_client_opts);
    gco.max_inflight = 1000;
    gco.offline_queue_bytes = (size_t)events * 200;   /* every publish queued at once */
    tt_wiotp_opts g = TT_OPTS_INIT(tt_wiotp_opts);
    g.role = TT_WIOTP_GATEWAY;
    g.org = "bench1";
    g.type_id = "gw";
    g.device_id = "g1";
    g.token = "t";
    g.host = "127.0.0.1";
    g.port = (uint16_t)port;
    g.tls = TT_WIOTP_TLS_OFF;
    g.mqtt = &gco;
    tt_wiotp *gw = NULL;
    if (tt_wiotp_new(prt, &g, &gw) != TT_OK) return 1;
    if (!ok(tt_wiotp_connect(gw))) return 1;
    char dev[32];
    tt_future **fs = calloc((size_t)events, sizeof *fs);
    for (long i = 0; i < events; i++) {
        char payload[96];
        int n = snprintf(payload, sizeof payload, "{\"seq\":%ld,\"temp\":%.1f,\"unit\":\"C\",\"ok\":true}",
                         i, 20.0 + (double)(i % 50) / 10.0);
        snprintf(dev, sizeof dev, "s%ld", i % devices);
        fs[i] = tt_wiotp_publish_event_raw(gw, "sensor", dev, "reading", "json", payload, (size_t)n,
                                           TT_QOS1);
    }
    long failed = 0;
    for (long i = 0; i < events; i++) {
        if (tt_future_wait(fs[i], 60000) != TT_OK) failed++;
        tt_future_free(fs[i]);
    }
    free(fs);
    for (int i = 0; i < 6000 && !atomic_load(&r.done); i++) usleep(10000);
    bool done = atomic_load(&r.done);
    double secs = r.t_last - r.t_first, cpu = r.cpu_last - r.cpu_first;
    long long want_sum = (long long)events * (events - 1) / 2;
    printf("  %-6s received %ld of %ld%s: %.0f msg/s, consumer strand CPU %.2f us/msg%s\n", mode, r.n,
           events, failed ? " (sends failed)" : "", done && secs > 0 ? (double)(events - 1) / secs : 0.0,
           done ? cpu * 1e6 / (double)(events - 1) : 0.0,
           r.bad || (done && r.seq_sum != want_sum) ? "  (BAD MESSAGES)" : "");
    tt_wiotp_free(gw);
    tt_wiotp_free(app);
    tt_client_free(plain);
    tt_runtime_free(prt);
    tt_runtime_free(crt);
    return done && !failed && !r.bad && r.seq_sum == want_sum ? 0 : 1;
}

int main(int argc, char **argv) {
    long events = 200000, devices = 1000;
    int opt;
    while ((opt = getopt(argc, argv, "n:d:")) != -1) {
        if (opt == 'n') events = atol(optarg);
        else if (opt == 'd') devices = atol(optarg);
        else return fprintf(stderr, "usage: wiotp_app_bench [-n events] [-d devices]\n"), 2;
    }
    if (events < 2 || devices < 1) return 2;
    tt_broker b;
    tt_broker_opts bo = { .max_queued_messages = TT_BROKER_UNLIMITED,
                          .max_inflight_messages = 1000 };
    if (tt_broker_start(&b, &bo) != 0) {
        tt_broker_dump_log(&b, stderr);
        return 1;
    }
    printf("wiotp_app_bench: %ld JSON events from %ld devices (one gateway, QoS 1) into one application\n",
           events, devices);
    int rc = run("plain", b.port, events, devices);
    rc |= run("wiotp", b.port, events, devices);
    rc |= run("plain", b.port, events, devices);
    rc |= run("wiotp", b.port, events, devices);
    tt_broker_free(&b);
    return rc;
}
