/* A ThingsBoard gateway with 100 sub-devices on one connection: connects
 * them, sends each one's reading every second, and answers RPCs addressed to
 * any of them ("getValue"). Runs until interrupted or for SECONDS.
 *
 *   tb_gateway HOST GATEWAY_TOKEN [PORT] [SECONDS] */
#define _POSIX_C_SOURCE 200809L   /* nanosleep */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/tether.h>
#include <time.h>

#define NDEV 100

static atomic_bool g_stop;
static atomic_long g_failed;

static void on_signal(int sig) {
    (void)sig;
    atomic_store(&g_stop, true);
}

/* Continuation for sends we do not wait for: count failures. Pool thread. */
static void on_sent(tt_future *f, void *arg) {
    (void)arg;
    if (tt_future_result(f) != TT_OK) atomic_fetch_add(&g_failed, 1);
    tt_future_free(f);
}

static void on_rpc(tt_tb_gateway *g, const char *device, int64_t id, const char *method,
                   const json_t *params, void *arg) {
    (void)params;
    (void)arg;
    json_t *r = !strcmp(method, "getValue") ? json_pack("{s:s,s:i}", "device", device, "value", 42)
                                            : json_pack("{s:s}", "error", "unknown method");
    tt_future_then(tt_tb_gateway_rpc_reply(g, device, id, r), on_sent, NULL);
    json_decref(r);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s HOST GATEWAY_TOKEN [PORT] [SECONDS]\n", argv[0]);
        return 2;
    }
    long seconds = argc > 4 ? atol(argv[4]) : 0;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    tt_runtime *rt;
    if (tt_runtime_new(&rt, NULL) != TT_OK) return 1;
    tt_tb_opts o = TT_OPTS_INIT(tt_tb_opts);
    o.host = argv[1];
    o.token = argv[2];
    o.port = (uint16_t)(argc > 3 ? atoi(argv[3]) : 0);
    o.password = getenv("TB_PASSWORD");
    tt_tb_gateway *g;
    if (tt_tb_gateway_new(rt, &o, &g) != TT_OK) return 1;
    tt_tb_gateway_on_rpc(g, on_rpc, NULL);
    tt_future *f = tt_tb_gateway_connect(g);
    tt_err rc = tt_future_wait(f, 10000);
    tt_future_free(f);
    if (rc != TT_OK) {
        fprintf(stderr, "connect: %s\n", tt_strerror(rc));
        tt_tb_gateway_free(g);
        tt_runtime_free(rt);
        return 1;
    }
    char names[NDEV][32];
    for (int i = 0; i < NDEV; i++) {
        snprintf(names[i], sizeof names[i], "example-sensor-%03d", i);
        tt_future_then(tt_tb_gateway_connect_device(g, names[i], "example-sensor"), on_sent, NULL);
    }
    printf("gateway up with %d sub-devices\n", NDEV);
    time_t end = seconds ? time(NULL) + seconds : 0;
    long round = 0;
    while (!atomic_load(&g_stop) && (!end || time(NULL) < end)) {
        for (int i = 0; i < NDEV; i++) {
            json_t *v = json_pack("{s:f,s:I}", "temperature", 20.0 + i % 10, "round", (json_int_t)round);
            tt_future_then(tt_tb_gateway_send_telemetry(g, names[i], v), on_sent, NULL);
            json_decref(v);
        }
        round++;
        struct timespec ts = { 1, 0 };
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < NDEV; i++) {
        f = tt_tb_gateway_disconnect_device(g, names[i]);
        (void)tt_future_wait(f, 5000);
        tt_future_free(f);
    }
    printf("%ld rounds, %ld failed sends\n", round, atomic_load(&g_failed));
    tt_tb_gateway_free(g);
    tt_runtime_free(rt);
    return atomic_load(&g_failed) ? 1 : 0;
}
