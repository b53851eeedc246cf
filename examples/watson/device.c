/* A Watson IoT device: reads its identity from a wiotp YAML file, sends a
 * "reading" event every second (JSON), and obeys the "setInterval" command
 * ({"ms": N}); other commands are printed. Runs until interrupted or for the
 * number of seconds given.
 *
 *   wiotp_device device.yaml [SECONDS] [HOST PORT]
 *
 * device.yaml, as the wiotp SDK writes it:
 *   identity: {orgId: myorg1, typeId: sensor, deviceId: s1}
 *   auth: {token: TOKEN}
 * HOST and PORT point at a private platform (plain MQTT), such as the test
 * emulator; without them the device connects to <org>.messaging.<domain>:8883. */
#define _DEFAULT_SOURCE   /* usleep */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/tether.h>
#include <time.h>
#include <unistd.h>

static atomic_bool g_stop;
static atomic_int g_interval_ms = 1000;

static void on_signal(int sig) {
    (void)sig;
    atomic_store(&g_stop, true);
}

/* Runs on the device's callback strand (a pool thread): one at a time. */
static void on_command(tt_wiotp *w, const tt_wiotp_msg *m, void *arg) {
    (void)w;
    (void)arg;
    if (m->kind != TT_WIOTP_COMMAND) return;
    json_t *ms = json_object_get(m->data, "ms");
    if (!strcmp(m->id, "setInterval") && json_is_integer(ms)) {
        int v = (int)json_integer_value(ms);
        atomic_store(&g_interval_ms, v < 100 ? 100 : v);
        printf("command setInterval: every %d ms\n", atomic_load(&g_interval_ms));
    } else {
        printf("command %s (%s, %zu bytes)\n", m->id, m->format, m->len);
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s device.yaml [SECONDS] [HOST PORT]\n", argv[0]);
        return 2;
    }
    long seconds = argc > 2 ? atol(argv[2]) : 0;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    tt_wiotp_config *cfg;
    char why[256];
    tt_err rc = tt_wiotp_config_load_yaml(argv[1], TT_WIOTP_DEVICE, &cfg, why, sizeof why);
    if (rc != TT_OK) {
        fprintf(stderr, "%s: %s: %s\n", argv[1], tt_strerror(rc), why);
        return 2;
    }
    tt_wiotp_opts o = *tt_wiotp_config_opts(cfg);
    o.on_message = on_command;
    if (argc > 4) {
        o.host = argv[3];
        o.port = (uint16_t)atoi(argv[4]);
        o.tls = TT_WIOTP_TLS_OFF;
    }
    tt_runtime *rt;
    if (tt_runtime_new(&rt, NULL) != TT_OK) return 1;
    tt_wiotp *w;
    rc = tt_wiotp_new(rt, &o, &w);
    tt_wiotp_config_free(cfg);                     /* the client copied what it needs */
    if (rc != TT_OK) {
        fprintf(stderr, "device: %s\n", tt_strerror(rc));
        tt_runtime_free(rt);
        return 1;
    }
    tt_future *f = tt_wiotp_connect(w);
    rc = tt_future_wait(f, 10000);
    if (rc != TT_OK) {
        const char *reason;
        tt_future_detail(f, &reason);
        fprintf(stderr, "connect: %s (%s)\n", tt_strerror(rc), reason);
        tt_future_free(f);
        tt_wiotp_free(w);
        tt_runtime_free(rt);
        return 1;
    }
    tt_future_free(f);
    printf("connected as %s; sending events\n", tt_wiotp_client_id(w));
    fflush(stdout);
    time_t end = seconds ? time(NULL) + seconds : 0;
    unsigned n = 0;
    while (!atomic_load(&g_stop) && (!end || time(NULL) < end)) {
        json_t *v = json_pack("{s:f,s:i}", "temperature", 21.0 + (double)(n % 20) / 10.0, "count", n);
        n++;
        /* QoS 0, as the SDK's default; the future is not needed */
        tt_future_free(tt_wiotp_publish_event(w, NULL, NULL, "reading", "json", v, TT_QOS0));
        json_decref(v);
        for (int slept = 0; slept < atomic_load(&g_interval_ms) && !atomic_load(&g_stop); slept += 20)
            usleep(20000);
    }
    printf("sent %u events\n", n);
    f = tt_wiotp_disconnect(w);
    (void)tt_future_wait(f, 5000);
    tt_future_free(f);
    tt_wiotp_free(w);
    tt_runtime_free(rt);
    return 0;
}
