/* tether — command-line program. Subcommands grow with the library:
 *   tether version
 *   tether demo [-a actors] [-n calls] [-l loops] [-p pool]   runtime demo
 *   tether pub ...   publish, flags after mosquitto_pub   (cmd_pub.c)
 *   tether sub ...   subscribe, flags after mosquitto_sub (cmd_sub.c)
 *   tether rr ...    request and answer, after mosquitto_rr (cmd_rr.c)
 *   tether tb ...    ThingsBoard device API by hand      (cmd_tb.c)
 *   tether watson .. Watson IoT clients by hand          (cmd_watson.c)
 *   tether sim ...   fleet simulator                     (cmd_sim.c) */
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/tether.h>
#include <time.h>

#include "cli_common.h"

int cmd_tb(int argc, char **argv);    /* cmd_tb.c */
int cmd_watson(int argc, char **argv); /* cmd_watson.c */
int cmd_sim(int argc, char **argv);   /* cmd_sim.c */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct demo {
    atomic_long done;
    atomic_long failed;
    long total;
} demo;

static void add_one(tt_promise *p, void *arg) {     /* actor loop thread */
    (void)arg;
    tt_promise_set_value(p, NULL, NULL, 1);
    tt_promise_complete(p, TT_OK, 0, NULL);
}

static void on_done(tt_future *f, void *arg) {      /* callback-pool thread */
    demo *d = arg;
    if (tt_future_result(f) != TT_OK || tt_future_get_i64(f) != 1) atomic_fetch_add(&d->failed, 1);
    atomic_fetch_add(&d->done, 1);
    tt_future_free(f);
}

static int cmd_demo(int argc, char **argv) {
    long actors = 64, calls = 20000;
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    for (int i = 0; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "-a") && v) actors = atol(argv[++i]);
        else if (!strcmp(argv[i], "-n") && v) calls = atol(argv[++i]);
        else if (!strcmp(argv[i], "-l") && v) o.loop_threads = (uint32_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "-p") && v) o.pool_threads = (uint32_t)atol(argv[++i]);
        else {
            fprintf(stderr, "usage: tether demo [-a actors] [-n calls per actor] [-l loops] [-p pool]\n");
            return 2;
        }
    }
    if (actors < 1 || calls < 1) return 2;
    tt_runtime *rt;
    tt_err rc = tt_runtime_new(&rt, &o);
    if (rc != TT_OK) {
        fprintf(stderr, "tether: runtime: %s\n", tt_strerror(rc));
        return 1;
    }
    tt_actor **as = calloc((size_t)actors, sizeof *as);
    demo d = { .total = actors * calls };
    for (long i = 0; i < actors; i++)
        if (tt_actor_new(rt, &as[i]) != TT_OK) return 1;
    printf("tether %s demo: %ld actors x %ld calls on %u loop threads\n", tt_version(), actors,
           calls, tt_runtime_loop_count(rt));
    double t0 = now_s(), last = t0;
    for (long c = 0; c < calls; c++) {
        for (long i = 0; i < actors; i++) {
            tt_future *f = tt_actor_call(as[i], add_one, NULL, NULL);
            if (tt_future_then(f, on_done, &d) != TT_OK) tt_future_free(f);
        }
        /* Keep at most ~100k calls in flight. */
        while ((c + 1) * actors - atomic_load(&d.done) > 100000) {
            struct timespec ts = { 0, 100000 };
            nanosleep(&ts, NULL);
        }
        double t = now_s();
        if (t - last >= 0.5) {
            printf("\r  %ld / %ld calls completed", (long)atomic_load(&d.done), d.total);
            fflush(stdout);
            last = t;
        }
    }
    while (atomic_load(&d.done) < d.total) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    double dt = now_s() - t0;
    printf("\r  %ld / %ld calls completed, %ld failed, in %.2f s: %.0f calls/s\n",
           (long)atomic_load(&d.done), d.total, (long)atomic_load(&d.failed), dt,
           (double)d.total / dt);
    for (long i = 0; i < actors; i++) tt_actor_free(as[i]);
    free(as);
    tt_runtime_free(rt);
    return atomic_load(&d.failed) ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        printf("usage: tether <command> [options]\n"
               "  version       print the library version\n"
               "  demo          run calls through actors and futures, and report the rate\n"
               "  pub           publish MQTT messages (flags after mosquitto_pub; pub --help)\n"
               "  sub           subscribe and print MQTT messages (flags after mosquitto_sub;\n"
               "                sub --help)\n"
               "  rr            one MQTT 5 request and its answer (flags after mosquitto_rr;\n"
               "                rr --help)\n"
               "  tb            ThingsBoard device: telemetry, attributes, rpc-serve, rpc-call,\n"
               "                provision, claim, fw (tb --help)\n"
               "  watson        Watson IoT device, gateway and application: event, commands,\n"
               "                watch, command (watson --help)\n"
               "  sim           simulate a fleet of devices and measure it (sim --help)\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "version")) {
        printf("tether %s\n", tt_version());
        return 0;
    }
    if (!strcmp(argv[1], "demo")) return cmd_demo(argc - 2, argv + 2);
    if (!strcmp(argv[1], "pub") || !strcmp(argv[1], "sub") || !strcmp(argv[1], "rr")) {
        /* A broker that goes away must give an error line, not a silent SIGPIPE death. */
        signal(SIGPIPE, SIG_IGN);
        if (argv[1][0] == 'r') return cmd_rr(argc - 2, argv + 2);
        return argv[1][0] == 'p' ? cmd_pub(argc - 2, argv + 2) : cmd_sub(argc - 2, argv + 2);
    }
    if (!strcmp(argv[1], "tb")) {
        signal(SIGPIPE, SIG_IGN);
        return cmd_tb(argc - 2, argv + 2);
    }
    if (!strcmp(argv[1], "watson")) {
        signal(SIGPIPE, SIG_IGN);
        return cmd_watson(argc - 2, argv + 2);
    }
    if (!strcmp(argv[1], "sim")) return cmd_sim(argc - 2, argv + 2);
    fprintf(stderr, "tether: unknown command '%s'\n", argv[1]);
    return 2;
}
