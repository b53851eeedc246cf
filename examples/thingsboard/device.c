/* A ThingsBoard device: sends a temperature reading every second and answers
 * server-side RPC ("getTemperature", "setInterval"; anything else gets an
 * error). Runs until interrupted or for the number of seconds given.
 *
 *   tb_device HOST TOKEN [PORT] [SECONDS]
 *
 * With the emulator: tb_emulator prints a host, port and token to use. */
#define _POSIX_C_SOURCE 200809L   /* nanosleep */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/tether.h>
#include <time.h>

static atomic_bool g_stop;
static atomic_int g_interval_ms = 1000;
static _Atomic double g_temp = 21.0;

static void on_signal(int sig) {
    (void)sig;
    atomic_store(&g_stop, true);
}

/* Runs on the device's callback strand (a pool thread): one at a time. */
static void on_rpc(tt_tb_device *d, int64_t id, const char *method, const json_t *params, void *arg) {
    (void)arg;
    json_t *result;
    if (!strcmp(method, "getTemperature")) {
        result = json_pack("{s:f}", "temperature", atomic_load(&g_temp));
    } else if (!strcmp(method, "setInterval") && json_is_integer(json_object_get(params, "ms"))) {
        int ms = (int)json_integer_value(json_object_get(params, "ms"));
        atomic_store(&g_interval_ms, ms < 100 ? 100 : ms);
        result = json_pack("{s:i}", "interval_ms", atomic_load(&g_interval_ms));
    } else {
        result = json_pack("{s:s}", "error", "unknown method");
    }
    printf("rpc %lld %s\n", (long long)id, method);
    tt_future_free(tt_tb_device_rpc_reply(d, id, result));   /* no need to wait */
    json_decref(result);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s HOST TOKEN [PORT] [SECONDS]\n", argv[0]);
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
    o.password = getenv("TB_PASSWORD");          /* only if the broker wants one */
    tt_tb_device *d;
    if (tt_tb_device_new(rt, &o, &d) != TT_OK) return 1;
    tt_tb_device_on_rpc(d, on_rpc, NULL);
    tt_future *f = tt_tb_device_connect(d);
    tt_err rc = tt_future_wait(f, 10000);
    if (rc != TT_OK) {
        const char *why;
        tt_future_detail(f, &why);
        fprintf(stderr, "connect: %s (%s)\n", tt_strerror(rc), why);
        tt_future_free(f);
        tt_tb_device_free(d);
        tt_runtime_free(rt);
        return 1;
    }
    tt_future_free(f);
    printf("connected; sending telemetry\n");
    time_t end = seconds ? time(NULL) + seconds : 0;
    unsigned n = 0;
    while (!atomic_load(&g_stop) && (!end || time(NULL) < end)) {
        double t = 21.0 + (double)(n++ % 20) / 10.0;
        atomic_store(&g_temp, t);
        json_t *tele = json_pack("{s:f,s:i}", "temperature", t, "count", n);
        f = tt_tb_device_send_telemetry(d, tele);
        json_decref(tele);
        if ((rc = tt_future_wait(f, 5000)) != TT_OK) fprintf(stderr, "telemetry: %s\n", tt_strerror(rc));
        tt_future_free(f);
        long ms = atomic_load(&g_interval_ms);
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
    tt_tb_device_free(d);
    tt_runtime_free(rt);
    return 0;
}
