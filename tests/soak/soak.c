/* The soak run (not in CI): `tools/run soak [minutes]`, or directly
 *
 *   tt_soak [minutes (10)] [clients (200)]
 *
 * A private mosquitto behind the fault proxy (tests/support/proxy.c); N
 * clients publish through it, even-numbered ones at QoS 1 and odd-numbered
 * ones at QoS 2, about ten messages a second each, while random faults hit
 * the connections: cuts of every connection, cuts inside a packet, stalls,
 * delays, and broker restarts (SIGTERM, persistence on). One subscriber,
 * also behind the proxy, records every (client, sequence) it receives.
 *
 * Every 10 s it prints RSS, open descriptors, message counts and faults.
 * At the end the faults stop, the clients drain, and the verdict is PASS
 * when every message the broker acknowledged reached the subscriber, no
 * publish failed, the descriptors are back where they started once the
 * clients are gone, and RSS did not keep growing (final RSS at most twice
 * the first sample plus 32 MiB). QoS 1 may arrive more than once; QoS 2
 * duplicates are counted (mosquitto 2.0.11 redelivers some across a
 * restart, see tests/integration/fault_test.c). Exit code 0 on PASS. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/tether.h>
#include <tether/mqtt.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "live_alloc.h"
#include "proxy.h"

#define RATE_PER_CLIENT 10           /* messages per second */
#define MAX_OUTSTANDING 50           /* per client: calls not yet acknowledged */

typedef struct pubc {
    tt_client *c;
    uint32_t idx;
    uint32_t next_seq;               /* driver thread only */
    atomic_uint outstanding;
    uint8_t *acked;                  /* per sequence: written by the client's strand */
    uint8_t *seen;                   /* per sequence: arrivals, written by the subscriber's strand */
} pubc;

typedef struct pubctx {
    pubc *p;
    uint32_t seq;
} pubctx;

static pubc *g_pubs;
static uint32_t g_n, g_cap;
static atomic_ulong g_published, g_acked, g_failed, g_arrivals, g_distinct, g_dups1, g_dups2, g_foreign;
static atomic_uint g_connects;
static atomic_bool g_stop_pub;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long size = 0, res = -1;
    if (fscanf(f, "%ld %ld", &size, &res) != 2) res = -1;
    fclose(f);
    return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

static uint32_t rnd(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void on_event(tt_client *c, const tt_client_event *ev, void *arg) {
    (void)c;
    (void)arg;
    if (ev->kind == TT_EV_CONNECTED) atomic_fetch_add(&g_connects, 1);
}

static void on_msg(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    (void)arg;
    size_t len;
    const uint8_t *p = tt_msg_payload(m, &len);
    uint32_t hdr[2];
    atomic_fetch_add(&g_arrivals, 1);
    if (len < sizeof hdr) {
        atomic_fetch_add(&g_foreign, 1);
        return;
    }
    memcpy(hdr, p, sizeof hdr);
    if (hdr[0] >= g_n || hdr[1] >= g_cap) {
        atomic_fetch_add(&g_foreign, 1);
        return;
    }
    uint8_t *s = &g_pubs[hdr[0]].seen[hdr[1]];
    if (*s == 0) atomic_fetch_add(&g_distinct, 1);
    else atomic_fetch_add(tt_msg_qos(m) == TT_QOS2 ? &g_dups2 : &g_dups1, 1);
    if (*s < 255) (*s)++;
}

static void on_pub_done(tt_future *f, void *arg) {
    pubctx *x = arg;
    if (tt_future_result(f) == TT_OK) {
        x->p->acked[x->seq] = 1;
        atomic_fetch_add(&g_acked, 1);
    } else {
        atomic_fetch_add(&g_failed, 1);
        const char *why = NULL;
        tt_future_detail(f, &why);
        fprintf(stderr, "  publish %u/%u failed: %s (%s)\n", x->p->idx, x->seq, tt_err_name(tt_future_result(f)),
                why ? why : "");
    }
    atomic_fetch_sub(&x->p->outstanding, 1);
    free(x);
    tt_future_free(f);
}

/* Publishes at RATE_PER_CLIENT per client, in 20 ms steps. */
static void *driver(void *arg) {
    (void)arg;
    static uint8_t pad[256];
    uint32_t seed = 0x12345u;
    double t0 = now_s();
    uint64_t step = 0;
    while (!atomic_load(&g_stop_pub)) {
        step++;
        for (uint32_t i = 0; i < g_n; i++) {
            pubc *p = &g_pubs[i];
            /* this step's share of the rate, spread over the clients */
            uint64_t due = (step * RATE_PER_CLIENT + i * 50u / g_n) / 50u;
            while (p->next_seq < due && p->next_seq < g_cap &&
                   atomic_load(&p->outstanding) < MAX_OUTSTANDING) {
                uint8_t buf[8 + sizeof pad];
                uint32_t hdr[2] = { i, p->next_seq };
                memcpy(buf, hdr, sizeof hdr);
                size_t len = sizeof hdr + rnd(&seed) % sizeof pad;
                memcpy(buf + sizeof hdr, pad, len - sizeof hdr);
                char topic[32];
                snprintf(topic, sizeof topic, "soak/%u", i);
                pubctx *x = malloc(sizeof *x);
                if (!x) break;
                x->p = p;
                x->seq = p->next_seq++;
                atomic_fetch_add(&p->outstanding, 1);
                atomic_fetch_add(&g_published, 1);
                if (tt_future_then(tt_client_pub(p->c, topic, buf, len, (i & 1) ? TT_QOS2 : TT_QOS1, false),
                                   on_pub_done, x) != TT_OK) {
                    fprintf(stderr, "  tt_future_then failed\n");
                    abort();
                }
            }
        }
        double next = t0 + (double)step * 0.02, dt = next - now_s();
        if (dt > 0) usleep((useconds_t)(dt * 1e6));
    }
    return NULL;
}

static tt_client *make_client(tt_runtime *rt, int port, const char *id, bool sub) {
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", port);
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.url = url;
    o.client_id = id;
    o.persistent_session = true;
    o.keepalive_s = 10;
    o.backoff_min_ms = 50;
    o.backoff_max_ms = 2000;
    o.max_inflight = 20;             /* mosquitto's QoS 2 limit; 3.1.1 cannot learn it */
    o.on_event = on_event;
    if (sub) o.on_message = on_msg;
    tt_client *c = NULL;
    tt_err rc = tt_client_new(rt, &o, &c);
    if (rc != TT_OK) {
        fprintf(stderr, "tt_client_new: %s\n", tt_strerror(rc));
        return NULL;
    }
    return c;
}

static tt_err wait_free(tt_future *f, int32_t ms) {
    tt_err rc = tt_future_wait(f, ms);
    tt_future_free(f);
    return rc;
}

int main(int argc, char **argv) {
    double minutes = argc > 1 ? atof(argv[1]) : 10.0;
    g_n = argc > 2 ? (uint32_t)atoi(argv[2]) : 200;
    if (minutes <= 0 || g_n == 0 || g_n > 400) {
        fprintf(stderr, "usage: %s [minutes (10)] [clients (1-400, 200)]\n", argv[0]);
        return 2;
    }
    g_cap = (uint32_t)(minutes * 60.0 * RATE_PER_CLIENT) + 1000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int fds_start = tt_open_fds();

    tt_broker_opts bo = { .persistence = true, .max_queued_messages = TT_BROKER_UNLIMITED, .tcp_nodelay = true };
    tt_broker b;
    if (tt_broker_start(&b, &bo) != 0) {
        tt_broker_dump_log(&b, stderr);
        return 1;
    }
    tt_proxy *px;
    if (tt_proxy_start(&px, b.port) != 0) return 1;
    tt_runtime *rt;
    tt_runtime_opts ro = TT_OPTS_INIT(tt_runtime_opts);
    ro.loop_threads = 2;
    if (tt_runtime_new(&rt, &ro) != TT_OK) return 1;

    tt_client *sub = make_client(rt, tt_proxy_port(px), "soak-sub", true);
    if (!sub || wait_free(tt_client_connect(sub), 10000) != TT_OK) return 1;
    tt_sub sb = { .filter = "soak/#", .qos = TT_QOS2 };
    if (wait_free(tt_client_subscribe(sub, &sb, 1, NULL), 10000) != TT_OK) return 1;

    g_pubs = calloc(g_n, sizeof *g_pubs);
    if (!g_pubs) return 1;
    for (uint32_t i = 0; i < g_n; i++) {
        char id[32];
        snprintf(id, sizeof id, "soak-pub-%u", i);
        g_pubs[i].idx = i;
        g_pubs[i].acked = calloc(g_cap, 1);
        g_pubs[i].seen = calloc(g_cap, 1);
        g_pubs[i].c = make_client(rt, tt_proxy_port(px), id, false);
        if (!g_pubs[i].acked || !g_pubs[i].seen || !g_pubs[i].c) return 1;
        tt_future_free(tt_client_connect(g_pubs[i].c));   /* comes up in the background */
    }
    printf("soak: %u clients (QoS 1 and 2, %d msg/s each) for %.1f min through the fault proxy; "
           "broker port %d, proxy port %d\n", g_n, RATE_PER_CLIENT, minutes, b.port, tt_proxy_port(px));

    pthread_t th;
    if (pthread_create(&th, NULL, driver, NULL) != 0) return 1;
    double t0 = now_s(), end = t0 + minutes * 60.0, next_report = t0 + 10.0;
    double stall_until = 0, delay_until = 0, next_restart = t0 + 60.0;
    uint32_t seed = (uint32_t)time(NULL) | 1u;
    int cuts = 0, mids = 0, stalls = 0, delays = 0, restarts = 0, restart_failures = 0;
    long rss_first = -1, rss_last = 0;
    while (now_s() < end) {
        usleep(500000);
        double t = now_s();
        if (stall_until && t >= stall_until) {
            tt_proxy_stall(px, false);
            stall_until = 0;
        }
        if (delay_until && t >= delay_until) {
            tt_proxy_set_delay_ms(px, 0);
            delay_until = 0;
        }
        uint32_t roll = rnd(&seed) % 1000;
        if (t >= next_restart) {
            if (tt_broker_restart(&b) != 0) restart_failures++;
            restarts++;
            next_restart = t + 45.0 + rnd(&seed) % 60;
        } else if (roll < 60) {
            tt_proxy_cut_all(px);
            cuts++;
        } else if (roll < 100) {
            if (tt_proxy_cut_mid_packet(px, (roll & 1) ? TT_PROXY_UP : TT_PROXY_DOWN, 1 + rnd(&seed) % 6, 200))
                mids++;
        } else if (roll < 115 && !stall_until) {
            tt_proxy_stall(px, true);
            stall_until = t + 1.0 + rnd(&seed) % 3;   /* below the 10 s keepalive, mostly */
            stalls++;
        } else if (roll < 135 && !delay_until) {
            tt_proxy_set_delay_ms(px, 20 + rnd(&seed) % 80);
            delay_until = t + 2.0 + rnd(&seed) % 4;
            delays++;
        }
        if (t >= next_report) {
            next_report += 10.0;
            rss_last = rss_kib();
            if (rss_first < 0) rss_first = rss_last;
            printf("[%5.0f s] rss %6ld KiB  fds %4d  published %8lu  acked %8lu  failed %lu  received %8lu "
                   "(distinct %8lu, dups QoS 1 %lu, QoS 2 %lu)  connects %u  faults: %d cuts, %d mid-packet, "
                   "%d stalls, %d delays, %d restarts\n",
                   t - t0, rss_last, tt_open_fds(), atomic_load(&g_published), atomic_load(&g_acked),
                   atomic_load(&g_failed), atomic_load(&g_arrivals), atomic_load(&g_distinct),
                   atomic_load(&g_dups1), atomic_load(&g_dups2), atomic_load(&g_connects), cuts, mids,
                   stalls, delays, restarts);
        }
    }
    /* Faults off, publishing off; let everything drain (at most 120 s). */
    tt_proxy_stall(px, false);
    tt_proxy_set_delay_ms(px, 0);
    atomic_store(&g_stop_pub, true);
    pthread_join(th, NULL);
    double drain0 = now_s();
    uint64_t lost = 0, pending = 0;
    for (;;) {
        pending = atomic_load(&g_published) - atomic_load(&g_acked) - atomic_load(&g_failed);
        lost = 0;
        for (uint32_t i = 0; i < g_n; i++)
            for (uint32_t s = 0; s < g_pubs[i].next_seq; s++)
                if (g_pubs[i].acked[s] && !g_pubs[i].seen[s]) lost++;
        if ((pending == 0 && lost == 0) || now_s() - drain0 > 120.0) break;
        usleep(500000);
    }
    printf("drained in %.1f s: %lu published, %lu acknowledged, %lu failed, %lu still pending; "
           "%lu received (%lu distinct), duplicates QoS 1 %lu, QoS 2 %lu; %lu foreign\n",
           now_s() - drain0, atomic_load(&g_published), atomic_load(&g_acked), atomic_load(&g_failed),
           (unsigned long)pending, atomic_load(&g_arrivals), atomic_load(&g_distinct), atomic_load(&g_dups1),
           atomic_load(&g_dups2), atomic_load(&g_foreign));

    long rss_end = rss_kib();
    for (uint32_t i = 0; i < g_n; i++) {
        tt_future *f = tt_client_close(g_pubs[i].c);
        (void)wait_free(f, 10000);
        tt_client_free(g_pubs[i].c);
    }
    (void)wait_free(tt_client_close(sub), 10000);
    tt_client_free(sub);
    tt_runtime_free(rt);
    tt_proxy_free(px);
    tt_broker_free(&b);
    int fds_end = tt_open_fds();

    bool ok = true;
    printf("verdict:\n");
#define VERDICT(cond, ...)                                  \
    do {                                                    \
        bool v_ = (cond);                                   \
        ok = ok && v_;                                      \
        printf("  %s  ", v_ ? "ok  " : "FAIL");             \
        printf(__VA_ARGS__);                                \
        putchar('\n');                                      \
    } while (0)
    VERDICT(lost == 0, "%lu acknowledged messages never arrived", (unsigned long)lost);
    VERDICT(atomic_load(&g_failed) == 0 && pending == 0, "%lu publishes failed, %lu never completed",
            atomic_load(&g_failed), (unsigned long)pending);
    VERDICT(fds_end == fds_start, "descriptors %d at start, %d after everything closed", fds_start, fds_end);
    VERDICT(rss_first < 0 || rss_end <= 2 * rss_first + 32 * 1024,
            "RSS %ld KiB at 10 s, %ld KiB at the end (bound: twice the first + 32 MiB)", rss_first, rss_end);
    VERDICT(restart_failures == 0, "%d broker restarts failed", restart_failures);
    printf("%s\n", ok ? "PASS" : "FAIL");
    for (uint32_t i = 0; i < g_n; i++) {
        free(g_pubs[i].acked);
        free(g_pubs[i].seen);
    }
    free(g_pubs);
    return ok ? 0 : 1;
}
