/* tether sim — a fleet of simulated devices or gateways against a broker,
 * with a consumer measuring end-to-end latency and loss in the same run (or
 * in a separate `tether sim --consume` process), a live progress line, and a
 * report written as JSON and as an HTML page. A thin shell over
 * <tether/sim.h>; `--merge` combines reports of several processes or hosts. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <tether/sim.h>
#include <unistd.h>

#include "cli_common.h"

#define SIM_MAX_SRC 256

int cmd_sim(int argc, char **argv);   /* called by tether.c */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

static void sim_help(FILE *out) {
    fprintf(out,
        "usage: tether sim [options]\n"
        "A fleet of simulated devices publishing through a broker, measured end to end.\n"
        "  -h HOST, -p PORT       broker (default localhost:1883); --url mqtt://host:port\n"
        "  -u USER, -P PASS       credentials (mqtt profile and the consumer)\n"
        "  -n, --devices N        connections: devices, or gateways (default 100)\n"
        "  --profile NAME         mqtt (default), thingsboard-device, thingsboard-gateway,\n"
        "                         watson-device\n"
        "  --sub-devices M        devices behind each gateway (thingsboard-gateway, default 10)\n"
        "  --connect-rate R       new connections per second (default 1000; 0 = no limit)\n"
        "  --handshakes H         connects in progress at once (default 512)\n"
        "  --rate R               messages per second per connection (default 1; 0 = as fast\n"
        "                         as the window of unacknowledged publishes allows)\n"
        "  --count M              messages per connection, then stop\n"
        "  --duration S           run length in seconds from the first connect (default 10\n"
        "                         without --count)\n"
        "  -s, --size BYTES       payload size (default 64; the header needs 28 for mqtt)\n"
        "  -q QOS, -r             QoS 0/1/2 (default 1), retain\n"
        "  -t PATTERN             topic, {id} = device id (default sim/{id}/telemetry)\n"
        "  --token PATTERN        ThingsBoard access token (username), Watson IoT device token\n"
        "                         (password); default sim-token-{id}\n"
        "  --client-id PATTERN    watson-device client ids (default d:quickstart:tether-sim:sim-{id});\n"
        "                         the consumer is an application: --consumer-id a:ORG:APP\n"
        "                         with -u API-KEY -P API-TOKEN\n"
        "  --window W             unacknowledged publishes per connection (default 16)\n"
        "  --id-offset K          first device id (runs on several hosts use disjoint ranges)\n"
        "  --source-addr LIST     local addresses to spread connections over, e.g.\n"
        "                         127.0.0.2-127.0.0.9 or 10.0.0.5,10.0.0.6\n"
        "  --consume              consumer only (another process publishes), until --duration\n"
        "                         or Ctrl-C\n"
        "  --no-consume           publish only\n"
        "  --consumer-id ID       client id of the consumer; --persistent keeps its session\n"
        "  --drain S              after publishing, wait at most S s for the rest (default 10)\n"
        "  --loops N              I/O threads (default: one per core)\n"
        "  -o, --report PREFIX    write PREFIX.json and PREFIX.html (default tether-sim)\n"
        "  --merge FILE...        merge JSON reports (e.g. from several hosts) into -o PREFIX\n"
        "  --interval S           seconds between progress lines (default 1)\n"
        "  --quiet                no progress line\n"
        "Latency is measured from a CLOCK_REALTIME timestamp in each payload: across hosts\n"
        "it is as good as their clock synchronisation.\n");
}

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "tether sim: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(tether sim --help lists the options)\n");
    return CLI_EXIT_USAGE;
}

static bool parse_double(const char *s, double lo, double hi, double *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

/* "a.b.c.d-a.b.c.e" and/or comma lists into dotted strings (heap). */
static int parse_sources(const char *spec, char **out, size_t max, size_t *n) {
    char *copy = strdup(spec);
    if (!copy) return -1;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(tok, '-');
        struct in_addr a, b;
        if (dash) *dash = '\0';
        if (inet_pton(AF_INET, tok, &a) != 1 || (dash && inet_pton(AF_INET, dash + 1, &b) != 1)) {
            /* Not an IPv4 range: take it as one address (IPv6 or a name). */
            if (dash) *dash = '-';
            if (*n == max) break;
            out[(*n)++] = strdup(tok);
            continue;
        }
        uint32_t lo = ntohl(a.s_addr), hi = dash ? ntohl(b.s_addr) : lo;
        if (hi < lo) {
            free(copy);
            return -1;
        }
        for (uint64_t v = lo; v <= hi && *n < max; v++) {
            struct in_addr x = { htonl((uint32_t)v) };
            char buf[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &x, buf, sizeof buf);
            out[(*n)++] = strdup(buf);
        }
    }
    free(copy);
    return *n ? 0 : -1;
}

/* A field of /proc/self/status in KiB ("VmRSS", "VmHWM"); -1 if unknown. */
static long status_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    size_t n = strlen(field);
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':') {
            kib = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

static long raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    (void)getrlimit(RLIMIT_NOFILE, &rl);
    return (long)rl.rlim_cur;
}

static const char *us_text(uint64_t us, char *buf, size_t cap) {
    if (us < 1000) snprintf(buf, cap, "%" PRIu64 "us", us);
    else if (us < 1000000) snprintf(buf, cap, "%.2fms", (double)us / 1000);
    else snprintf(buf, cap, "%.2fs", (double)us / 1e6);
    return buf;
}

static void progress_line(const tt_sim_progress *p, bool tty) {
    char a[32], b[32];
    printf("%s[%6.1fs] conn %" PRIu64 "/%" PRIu64 "  out %.0f/s  in %.0f/s  sent %" PRIu64
           "  recv %" PRIu64 "  p50 %s  p99 %s  errors %" PRIu64 "%s%s",
           tty ? "\r" : "", p->elapsed_s, p->connected, p->target, p->out_per_s, p->in_per_s, p->sent,
           p->received, us_text(p->p50_us, a, sizeof a), us_text(p->p99_us, b, sizeof b), p->errors,
           p->draining ? "  draining" : "", tty ? "\033[K" : "\n");
    fflush(stdout);
}

static void print_summary(const tt_sim_report *r) {
    tt_sim_summary s = TT_OPTS_INIT(tt_sim_summary);
    char a[32], b[32], c[32], d[32], e[32];
    (void)tt_sim_report_summary(r, &s);
    printf("connections  %" PRIu64 "/%" PRIu64 " up, %" PRIu64 " failed, %.2f s ramp: %.0f/s;"
           " connect p50 %s p99 %s max %s\n",
           s.connected, s.target, s.connect_failed, s.connect_s, s.connects_per_s,
           us_text(s.connect_p50_us, a, 32), us_text(s.connect_p99_us, b, 32), us_text(s.connect_max_us, c, 32));
    printf("messages     %" PRIu64 " sent (%" PRIu64 " records) in %.2f s: %.0f/s out, %.0f/s in;"
           " %" PRIu64 " failed\n",
           s.sent, s.records_sent, s.duration_s, s.out_per_s, s.in_per_s, s.publish_failed);
    printf("received     %" PRIu64 " records: %" PRIu64 " lost, %" PRIu64 " duplicates, %" PRIu64
           " out of order\n",
           s.received, s.lost, s.duplicates, s.out_of_order);
    printf("latency      p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (%" PRIu64 " measured)\n",
           us_text(s.p50_us, a, 32), us_text(s.p90_us, b, 32), us_text(s.p99_us, c, 32),
           us_text(s.p999_us, d, 32), us_text(s.max_us, e, 32), s.latency_count);
    const char *kind;
    uint64_t n;
    printf("errors       %" PRIu64 "%s", s.errors, s.errors ? ":" : "");
    for (size_t i = 0; tt_sim_report_error(r, i, &kind, &n); i++) printf(" %s=%" PRIu64, kind, n);
    printf("\n");
}

static int write_reports(const tt_sim_report *r, const char *prefix) {
    size_t n = strlen(prefix) + 8;
    char *json = malloc(n), *html = malloc(n);
    int rc = CLI_EXIT_OK;
    if (!json || !html) rc = CLI_EXIT_FAIL;
    if (rc == CLI_EXIT_OK) {
        snprintf(json, n, "%s.json", prefix);
        snprintf(html, n, "%s.html", prefix);
        tt_err e = tt_sim_report_write_json(r, json);
        if (e == TT_OK) e = tt_sim_report_write_html(r, html);
        if (e != TT_OK) {
            fprintf(stderr, "tether sim: cannot write %s.{json,html}: %s\n", prefix, tt_strerror(e));
            rc = CLI_EXIT_FAIL;
        } else {
            printf("report       %s  %s\n", json, html);
        }
    }
    free(json);
    free(html);
    return rc;
}

static int merge_reports(char **files, int n, const char *prefix) {
    tt_sim_report *all = NULL;
    for (int i = 0; i < n; i++) {
        FILE *f = fopen(files[i], "r");
        char *text = NULL;
        size_t len = 0;
        if (!f) {
            fprintf(stderr, "tether sim: %s: %s\n", files[i], strerror(errno));
            tt_sim_report_free(all);
            return CLI_EXIT_FAIL;
        }
        bool ok = cli_read_all(f, files[i], &text, &len);
        fclose(f);
        tt_sim_report *r = NULL;
        tt_err e = ok ? tt_sim_report_parse(text, len, &r) : TT_EINVAL;
        free(text);
        if (e != TT_OK) {
            fprintf(stderr, "tether sim: %s: not a tether sim report (%s)\n", files[i], tt_strerror(e));
            tt_sim_report_free(all);
            return CLI_EXIT_FAIL;
        }
        if (!all) all = r;
        else {
            (void)tt_sim_report_merge(all, r);
            tt_sim_report_free(r);
        }
    }
    print_summary(all);
    int rc = write_reports(all, prefix);
    tt_sim_report_free(all);
    return rc;
}

int cmd_sim(int argc, char **argv) {
    tt_sim_opts o = TT_OPTS_INIT(tt_sim_opts);
    const char *host = "localhost", *url = NULL, *prefix = "tether-sim", *profile = "mqtt";
    long port = 1883, loops = 0;
    double interval = 1;
    bool quiet = false, count_given = false;
    char *srcs[SIM_MAX_SRC];
    size_t nsrc = 0;
    int merge_at = -1;
    o.devices = 100;
    o.rate = 1;
    o.connect_rate = 1000;
    o.qos = TT_QOS1;
    o.sub_devices = 10;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long l;
#define NEED_VALUE()                                                 \
    do {                                                             \
        if (!v) return usage("%s needs a value", a);                 \
        i++;                                                         \
    } while (0)
        if (!strcmp(a, "--help")) {
            sim_help(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "-h")) {
            NEED_VALUE();
            host = v;
        } else if (!strcmp(a, "-p")) {
            NEED_VALUE();
            if (!cli_parse_long(v, 1, 65535, &port)) return usage("bad port '%s'", v);
        } else if (!strcmp(a, "--url")) {
            NEED_VALUE();
            url = v;
        } else if (!strcmp(a, "-u")) {
            NEED_VALUE();
            o.username = v;
        } else if (!strcmp(a, "-P")) {
            NEED_VALUE();
            o.password = v;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--devices")) {
            NEED_VALUE();
            if (!cli_parse_long(v, 1, 10000000, &l)) return usage("bad device count '%s'", v);
            o.devices = (uint32_t)l;
        } else if (!strcmp(a, "--profile")) {
            NEED_VALUE();
            profile = v;
        } else if (!strcmp(a, "--sub-devices")) {
            NEED_VALUE();
            if (!cli_parse_long(v, 1, 100000, &l)) return usage("bad sub-device count '%s'", v);
            o.sub_devices = (uint32_t)l;
        } else if (!strcmp(a, "--connect-rate")) {
            NEED_VALUE();
            if (!parse_double(v, 0, 1e9, &o.connect_rate)) return usage("bad connect rate '%s'", v);
        } else if (!strcmp(a, "--handshakes")) {
            NEED_VALUE();
            if (!cli_parse_long(v, 1, 1000000, &l)) return usage("bad handshake count '%s'", v);
            o.max_handshakes = (uint32_t)l;
        } else if (!strcmp(a, "--rate")) {
            NEED_VALUE();
            if (!parse_double(v, 0, 1e9, &o.rate)) return usage("bad rate '%s'", v);
        } else if (!strcmp(a, "--count")) {
            NEED_VALUE();
            if (!cli_parse_long(v, 1, LONG_MAX, &l)) return usage("bad count '%s'", v);
            o.count = (uint64_t)l;
            count_given = true;
        } else if (!strcmp(a, "--duration")) {
            NEED_VALUE();
            if (!parse_double(v, 0.001, 1e9, &o.duration_s)) return usage("bad duration '%s'", v);
        } else if (!strcmp(a, "-s") || !strcmp(a, "--size")) {
            NEED_VALUE();
            if (!cli_parse_long(v, 0, 256L * 1024 * 1024, &l)) return usage("bad size '%s'", v);
            o.payload_size = (size_t)l;
        } else if (!strcmp(a, "-q")) {
            NEED_VALUE();
            if (!cli_parse_long(v, 0, 2, &l)) return usage("bad QoS '%s'", v);
            o.qos = (tt_qos)l;
        } else if (!strcmp(a, "-r")) {
            o.retain = true;
        } else if (!strcmp(a, "-t")) {
            NEED_VALUE();
            o.topic = v;
        } else if (!strcmp(a, "--token")) {
            NEED_VALUE();
            o.token = v;
        } else if (!strcmp(a, "--client-id")) {
            NEED_VALUE();
            o.client_id = v;
        } else if (!strcmp(a, "--window")) {
            NEED_VALUE();
            if (!cli_parse_long(v, 1, 65535, &l)) return usage("bad window '%s'", v);
            o.window = (uint32_t)l;
        } else if (!strcmp(a, "--id-offset")) {
            NEED_VALUE();
            if (!cli_parse_long(v, 0, LONG_MAX, &l)) return usage("bad id offset '%s'", v);
            o.id_offset = (uint64_t)l;
        } else if (!strcmp(a, "--source-addr")) {
            NEED_VALUE();
            if (parse_sources(v, srcs, SIM_MAX_SRC, &nsrc) != 0) return usage("bad address list '%s'", v);
        } else if (!strcmp(a, "--consume")) {
            o.consume_only = true;
        } else if (!strcmp(a, "--no-consume")) {
            o.no_consumer = true;
        } else if (!strcmp(a, "--consumer-id")) {
            NEED_VALUE();
            o.consumer_id = v;
        } else if (!strcmp(a, "--persistent")) {
            o.consumer_persistent = true;
        } else if (!strcmp(a, "--drain")) {
            NEED_VALUE();
            if (!parse_double(v, 0.001, 1e6, &o.drain_s)) return usage("bad drain time '%s'", v);
        } else if (!strcmp(a, "--loops")) {
            NEED_VALUE();
            if (!cli_parse_long(v, 1, 256, &loops)) return usage("bad loop count '%s'", v);
        } else if (!strcmp(a, "-o") || !strcmp(a, "--report")) {
            NEED_VALUE();
            prefix = v;
        } else if (!strcmp(a, "--interval")) {
            NEED_VALUE();
            if (!parse_double(v, 0.1, 3600, &interval)) return usage("bad interval '%s'", v);
        } else if (!strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "--merge")) {
            merge_at = i + 1;
            /* Files run up to the next option. */
            while (i + 1 < argc && argv[i + 1][0] != '-') i++;
            if (i + 1 == merge_at) return usage("%s needs report files", a);
        } else {
            return usage("unknown option '%s'", a);
        }
#undef NEED_VALUE
    }
    if (merge_at >= 0) {
        int n = 0;
        while (merge_at + n < argc && argv[merge_at + n][0] != '-') n++;
        return merge_reports(argv + merge_at, n, prefix);
    }
    if (!count_given && o.duration_s == 0) o.duration_s = 10;
    o.profile = tt_sim_profile_find(profile);
    if (!o.profile) return usage("unknown profile '%s' (mqtt, thingsboard-device, thingsboard-gateway, watson-device)",
                                    profile);
    if (o.consume_only && o.no_consumer) return usage("%s", "--consume and --no-consume exclude each other");
    char urlbuf[300];
    if (!url) {
        snprintf(urlbuf, sizeof urlbuf, "mqtt://%s:%ld", host, port);
        url = urlbuf;
    }
    o.url = url;
    o.source_addrs = (const char *const *)srcs;
    o.nsource_addrs = nsrc;

    long nofile = raise_nofile();
    if (!o.consume_only && nofile > 0 && (long)o.devices + 64 > nofile)
        fprintf(stderr, "tether sim: warning: %u connections need more descriptors than the limit (%ld)\n",
                o.devices, nofile);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    tt_runtime_opts ro = TT_OPTS_INIT(tt_runtime_opts);
    ro.loop_threads = (uint32_t)loops;
    ro.reserve_fds = o.consume_only ? 0 : o.devices + 64;  /* no table growth mid-ramp */
    tt_runtime *rt;
    tt_err e = tt_runtime_new(&rt, &ro);
    if (e != TT_OK) {
        fprintf(stderr, "tether sim: runtime: %s\n", tt_strerror(e));
        return CLI_EXIT_FAIL;
    }
    tt_sim *sim;
    e = tt_sim_new(rt, &o, &sim);
    if (e != TT_OK) {
        fprintf(stderr, "tether sim: %s (check the options: a count or a duration, a payload size that\n"
                        "fits the profile's header, a topic pattern)\n",
                tt_strerror(e));
        tt_runtime_free(rt);
        for (size_t i = 0; i < nsrc; i++) free(srcs[i]);
        return CLI_EXIT_USAGE;
    }
    bool tty = isatty(STDOUT_FILENO);
    if (o.consume_only)
        printf("tether sim: consuming %s messages from %s\n", o.profile->name, url);
    else
        printf("tether sim: %u %s connection%s to %s, %.0f/s connect rate, %s per connection%s\n", o.devices,
               o.profile->name, o.devices == 1 ? "" : "s", url, o.connect_rate,
               o.rate > 0 ? "rate-limited" : "as fast as possible", nsrc ? ", several source addresses" : "");
    long rss0 = status_kib("VmRSS");
    tt_future *f = tt_sim_run(sim);
    double next = cli_now() + interval;
    bool stopped = false;
    for (;;) {
        tt_err w = tt_future_wait(f, 100);
        if (w != TT_ETIMEDOUT) break;
        if (interrupted && !stopped) {
            tt_sim_stop(sim);
            stopped = true;
        }
        if (!quiet && cli_now() >= next) {
            tt_sim_progress p = TT_OPTS_INIT(tt_sim_progress);
            if (tt_sim_progress_get(sim, &p) == TT_OK) progress_line(&p, tty);
            next += interval;
        }
    }
    if (!quiet) {                      /* the last counters, then the report */
        tt_sim_progress p = TT_OPTS_INIT(tt_sim_progress);
        if (tt_sim_progress_get(sim, &p) == TT_OK) progress_line(&p, tty);
        if (tty) printf("\n");
    }
    int rc = CLI_EXIT_OK;
    if (tt_future_result(f) != TT_OK) {
        cli_report("sim", f);
        rc = CLI_EXIT_FAIL;
    }
    tt_future_free(f);
    tt_sim_report *r;
    if (tt_sim_report_get(sim, &r) == TT_OK) {
        print_summary(r);
        tt_sim_summary sm = TT_OPTS_INIT(tt_sim_summary);
        long hwm = status_kib("VmHWM");
        if (rss0 > 0 && hwm > 0 && tt_sim_report_summary(r, &sm) == TT_OK && sm.connected > 0)
            printf("memory       %.1f MiB before the run, %.1f MiB at the peak: %.2f KiB per connection\n",
                   (double)rss0 / 1024, (double)hwm / 1024, (double)(hwm - rss0) / (double)sm.connected);
        if (write_reports(r, prefix) != CLI_EXIT_OK) rc = CLI_EXIT_FAIL;
        tt_sim_report_free(r);
    } else {
        rc = CLI_EXIT_FAIL;
    }
    tt_sim_free(sim);
    tt_runtime_free(rt);
    for (size_t i = 0; i < nsrc; i++) free(srcs[i]);
    return rc;
}
