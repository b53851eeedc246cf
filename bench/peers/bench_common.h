/* Shared by the MQTT benchmark programs (tether, libmosquitto, Paho): the
 * command line, clocks, percentiles, RSS and the one RESULT line each prints.
 *
 *   prog -h host -p port -s scenario [-n count] [-w window] [-c connections]
 *        [-z payload_bytes] [-k handshakes] [-T seconds]
 *
 * Scenarios (every one bounded by -T seconds, default 120):
 *   qos0   n QoS 0 messages, publisher -> broker -> subscriber on two
 *          connections of this process; lost = sent - received
 *   qos1   n QoS 1 messages with at most w unacknowledged; counts PUBACKs
 *   pub0   publisher only, n QoS 0 messages (for instruction counts)
 *   rtt0   one message at a time to a topic this client subscribes to,
 *   rtt1   publish -> receive round trip, n samples (QoS 0 / QoS 1)
 *   conns  c connections, CONNECT/CONNACK each: time and RSS per connection,
 *          with at most k handshakes under way (default 100: mosquitto listens
 *          with a backlog of 100, and a dropped SYN is retried a second later)
 * tether only: ertt0, ertt1 and econns are rtt0, rtt1 and conns with tether
 * embedded in the program's own loop, one thread doing everything, as the
 * libmosquitto program does; urtt0 and urtt1 are rtt0 and rtt1 in pull mode
 * on one thread (tt_client_poll() runs the embedded loop). */
#ifndef TT_BENCH_COMMON_H
#define TT_BENCH_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>


typedef struct bench_args {
    const char *host;
    int port;
    const char *scenario;
    long n;                    /* messages or samples */
    long window;               /* unacknowledged (or unwritten) messages allowed */
    long conns;                /* conns: connections to open */
    long payload;              /* bytes per message */
    long handshakes;           /* conns: connections opening at once */
    double limit_s;            /* wall-clock bound of the scenario */
    char topic[96];            /* unique per process, so runs never cross */
} bench_args;

static inline void bench_usage(const char *prog) {
    fprintf(stderr,
            "usage: %s -h host -p port -s qos0|qos1|pub0|rtt0|rtt1|conns [-n count] [-w window]\n"
            "          [-c connections] [-z payload_bytes] [-k handshakes] [-T seconds]\n",
            prog);
    exit(2);
}

static inline long bench_num(const char *s, const char *prog) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0) bench_usage(prog);
    return v;
}

static inline void bench_parse(bench_args *a, int argc, char **argv) {
    memset(a, 0, sizeof *a);
    a->host = "127.0.0.1";
    a->port = 1883;
    a->n = -1;
    a->window = -1;
    a->conns = 1000;
    a->payload = 64;
    a->handshakes = 100;
    a->limit_s = 120;
    int opt;
    while ((opt = getopt(argc, argv, "h:p:s:n:w:c:z:k:T:")) != -1) {
        switch (opt) {
        case 'h': a->host = optarg; break;
        case 'p': a->port = (int)bench_num(optarg, argv[0]); break;
        case 's': a->scenario = optarg; break;
        case 'n': a->n = bench_num(optarg, argv[0]); break;
        case 'w': a->window = bench_num(optarg, argv[0]); break;
        case 'c': a->conns = bench_num(optarg, argv[0]); break;
        case 'z': a->payload = bench_num(optarg, argv[0]); break;
        case 'k': a->handshakes = bench_num(optarg, argv[0]); break;
        case 'T': a->limit_s = (double)bench_num(optarg, argv[0]); break;
        default: bench_usage(argv[0]);
        }
    }
    if (!a->scenario) bench_usage(argv[0]);
    const char *s = a->scenario;
    if (strcmp(s, "qos0") && strcmp(s, "qos1") && strcmp(s, "pub0") && strcmp(s, "rtt0") &&
        strcmp(s, "rtt1") && strcmp(s, "ertt0") && strcmp(s, "ertt1") && strcmp(s, "urtt0") &&
        strcmp(s, "urtt1") && strcmp(s, "conns") && strcmp(s, "econns"))
        bench_usage(argv[0]);
    if (a->n < 0) {
        if (!strcmp(s, "qos0")) a->n = 1000000;
        else if (!strcmp(s, "qos1")) a->n = 200000;
        else if (!strcmp(s, "pub0")) a->n = 100000;
        else a->n = 20000;
    }
    if (a->window <= 0) a->window = !strcmp(s, "qos1") ? 1000 : 10000;
    if (!strcmp(s, "qos1") && a->window > 65535) a->window = 65535;
    if (a->payload < 1 || a->payload > 1 << 20) bench_usage(argv[0]);
    if (a->n < 1 || a->conns < 1 || a->handshakes < 1) bench_usage(argv[0]);
    snprintf(a->topic, sizeof a->topic, "tt/bench/%ld/%s", (long)getpid(), s);
}

static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void bench_sleep_us(long us) {
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The current resident set in KiB (VmRSS of /proc/self/status), or -1. */
static inline long bench_rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

/* Size the descriptor table for n descriptors before the clock starts. In a
 * process with more than one thread, Linux waits for an RCU grace period
 * (several ms) each time the table doubles, which would otherwise land
 * inside the timed phase of a threaded client (Paho; tether sizes it
 * through tt_runtime_opts.reserve_fds). Harmless for a single thread. */
static inline void bench_size_fd_table(long n) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && n > (long)rl.rlim_cur)
        n = (long)rl.rlim_cur;
    if (n < 2) return;
    int fd = fcntl(2, F_DUPFD_CLOEXEC, (int)(n - 1));
    if (fd >= 0) close(fd);
}

/* Raise the open-file limit to the hard limit (beyond it when privileged). */
static inline long bench_raise_nofile(long want) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    if ((long)rl.rlim_max < want) {
        struct rlimit more = { (rlim_t)want, (rlim_t)want };
        if (setrlimit(RLIMIT_NOFILE, &more) == 0) return want;
    }
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    (void)getrlimit(RLIMIT_NOFILE, &rl);
    return (long)rl.rlim_cur;
}

/* Source address for connection i: none chosen (127.0.0.1) for runs of up
 * to 5,000 connections; past that, a new loopback address (127.0.0.2, .3,
 * ...) every 5,000. The kernel looks for a free ephemeral port by walking
 * the ports already in use toward the same destination, so with one source
 * address connect() itself slows as connections pile up (measured: about
 * 190 us of system time per connect at 19,000 against 50 at 5,000), and
 * the ports run out near 28,000. Every client program uses the same
 * addresses. TT_BENCH_SOURCE=N starts at 127.0.0.N whatever the count: the
 * bench script gives each run addresses of its own, so that no run walks
 * past the ports an earlier run left in TIME_WAIT (60 s). */
#define BENCH_CONNS_PER_SOURCE 5000
static inline const char *bench_source_addr(long i, long total, char *buf, size_t cap) {
    static long first = -1;
    if (first < 0) {
        const char *env = getenv("TT_BENCH_SOURCE");
        first = env && *env ? strtol(env, NULL, 10) : 0;
    }
    if (!first && total <= BENCH_CONNS_PER_SOURCE) return NULL;
    snprintf(buf, cap, "127.0.0.%ld", (first ? first : 2) + i / BENCH_CONNS_PER_SOURCE);
    return buf;
}

static inline int bench_cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Percentile p (0..100) of n sorted samples. */
static inline double bench_pct(const double *sorted, long n, double p) {
    if (n <= 0) return 0;
    long i = (long)((p / 100.0) * (double)(n - 1) + 0.5);
    if (i >= n) i = n - 1;
    return sorted[i];
}

static inline void bench_report_rate(const bench_args *a, const char *client, long sent, long got,
                                     double secs, bool timed_out) {
    printf("RESULT client=%s scenario=%s msgs=%ld received=%ld secs=%.3f rate=%.0f lost=%ld%s\n",
           client, a->scenario, sent, got, secs, secs > 0 ? (double)got / secs : 0.0,
           sent > got ? sent - got : 0, timed_out ? " timeout=1" : "");
    fflush(stdout);
}

/* us: round-trip samples in microseconds (sorted here). */
static inline void bench_report_rtt(const bench_args *a, const char *client, double *us, long n,
                                    bool timed_out) {
    qsort(us, (size_t)n, sizeof *us, bench_cmp_double);
    printf("RESULT client=%s scenario=%s samples=%ld p50_us=%.1f p99_us=%.1f p999_us=%.1f%s\n",
           client, a->scenario, n, bench_pct(us, n, 50), bench_pct(us, n, 99),
           bench_pct(us, n, 99.9), timed_out ? " timeout=1" : "");
    fflush(stdout);
}

/* CPU time the broker has used, in ns, from the kernel's scheduler
 * statistics (/proc/PID/schedstat; mosquitto runs on one thread). The bench
 * script passes the broker's pid in TT_BENCH_BROKER_PID; -1 without it. */
static inline long long bench_broker_ns(void) {
    const char *pid = getenv("TT_BENCH_BROKER_PID");
    char path[64];
    long long ns = -1;
    if (!pid || !*pid) return -1;
    snprintf(path, sizeof path, "/proc/%s/schedstat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    if (fscanf(f, "%lld", &ns) != 1) ns = -1;
    fclose(f);
    return ns;
}

static long long bench_broker_ns0 = -1, bench_self_ns0;

/* This process's CPU time (user and system, every thread), ns. */
static inline long long bench_self_ns(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return ((long long)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
           ((long long)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

/* Marks the start of the connections phase for the broker's and this
 * process's CPU shares. */
static inline void bench_conns_begin(void) {
    bench_broker_ns0 = bench_broker_ns();
    bench_self_ns0 = bench_self_ns();
}

/* RSS sampled once half the connections are up. From there to the end is
 * what each further connection costs, without the one-time costs the first
 * ones bring (loop buffers, caches, descriptor tables). */
static long bench_half_rss = -1, bench_half_n;

static inline void bench_conns_half(const bench_args *a, long connected) {
    if (bench_half_rss < 0 && connected >= a->conns / 2 && connected > 0) {
        bench_half_rss = bench_rss_kib();
        bench_half_n = connected;
    }
}

/* The RESULT line of a conns run: `ok` of a->conns connected after `secs`;
 * `why` it stopped short (NULL: "timeout" when short), shown with the
 * open-file limit and without spaces, so the line parses. */
static inline void bench_report_conns(const bench_args *a, const char *client, long ok, double secs,
                                      long rss0, long rss1, const char *why, long limit) {
    long want = a->conns;
    if (!why && ok < want) why = "timeout";
    char reason[128];
    if (why) {
        snprintf(reason, sizeof reason, "%s(nofile=%ld)", why, limit);
        for (char *p = reason; *p; p++)
            if (*p == ' ') *p = '_';
        why = reason;
    }
    double per_us = ok > 0 ? secs * 1e6 / (double)ok : 0;
    double per_kib = ok > 0 ? (double)(rss1 - rss0) / (double)ok : 0;
    /* The broker's CPU for accepting and answering the connections (their
     * close comes later and is not counted). */
    long long bns = bench_broker_ns();
    double self_us = ok > 0 ? (double)(bench_self_ns() - bench_self_ns0) / 1e3 / (double)ok : -1;
    double broker_us = ok > 0 && bns >= 0 && bench_broker_ns0 >= 0 ? (double)(bns - bench_broker_ns0) / 1e3 / (double)ok : -1;
    char marg[32] = "n/a";
    if (bench_half_rss >= 0 && ok > bench_half_n)
        snprintf(marg, sizeof marg, "%.2f", (double)(rss1 - bench_half_rss) / (double)(ok - bench_half_n));
    printf("RESULT client=%s scenario=%s conns=%ld connected=%ld secs=%.3f per_conn_us=%.1f "
           "per_conn_kib=%.2f marginal_kib=%s client_cpu_us=%.1f broker_connect_us=%.1f%s%s\n",
           client, a->scenario, want, ok, secs, per_us, per_kib, marg, self_us, broker_us,
           why ? " stopped=" : "", why ? why : "");
    fflush(stdout);
}

#endif /* TT_BENCH_COMMON_H */
