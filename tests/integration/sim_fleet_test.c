/* The fleet simulator through a private mosquitto. Every check is on counts
 * and contents, never on speed: the numbers a run reports must be exact. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tether/sim.h>
#include <unistd.h>

#include "broker.h"
#include "tt_scale.h"
#include "tt_test.h"

static tt_runtime *rt_new(void) {
    tt_runtime *rt = NULL;
    tt_runtime_opts ro = TT_OPTS_INIT(tt_runtime_opts);
    ro.loop_threads = 2;
    if (tt_runtime_new(&rt, &ro) != TT_OK) return NULL;
    return rt;
}

static bool start_broker(tt_broker *b, bool persistence) {
    tt_broker_opts bo = { .persistence = persistence,
                          .max_queued_messages = TT_BROKER_UNLIMITED,
                          .max_inflight_messages = TT_BROKER_UNLIMITED,
                          .tcp_nodelay = true };
    if (tt_broker_start(b, &bo) != 0) {
        tt_broker_dump_log(b, stderr);
        return false;
    }
    return true;
}

static void url_of(const tt_broker *b, char *buf, size_t cap) {
    snprintf(buf, cap, "mqtt://127.0.0.1:%d", b->port);
}

/* Run to completion (bounded), then return the report. */
static tt_sim_report *run(tt_sim *s, int timeout_ms, tt_err *result) {
    tt_future *f = tt_sim_run(s);
    *result = tt_future_wait(f, timeout_ms);             /* the run's result, or TT_ETIMEDOUT */
    tt_future_free(f);
    tt_sim_report *r = NULL;
    if (tt_sim_report_get(s, &r) != TT_OK) return NULL;
    return r;
}

static void print_errors(const tt_sim_report *r) {
    const char *k;
    uint64_t n;
    for (size_t i = 0; tt_sim_report_error(r, i, &k, &n); i++) fprintf(stderr, "  error %s: %llu\n", k,
                                                                        (unsigned long long)n);
}

/* N devices x M messages at QoS 1, as fast as the window allows: exactly
 * N*M sent (acknowledged), received, measured; nothing lost or repeated. */
static void test_exact_counts(void) {
    tt_broker b;
    TT_REQUIRE(start_broker(&b, false));
    tt_runtime *rt = rt_new();
    TT_REQUIRE(rt);
    char url[64];
    url_of(&b, url, sizeof url);
    const uint32_t n = 50;
    const uint64_t m = (uint64_t)TT_SCALED(400);
    tt_sim_opts o = TT_OPTS_INIT(tt_sim_opts);
    o.url = url;
    o.devices = n;
    o.count = m;
    o.rate = 0;
    o.qos = TT_QOS1;
    o.payload_size = 100;
    o.drain_s = 60;
    tt_sim *s;
    TT_REQUIRE(tt_sim_new(rt, &o, &s) == TT_OK);
    tt_err rc;
    tt_sim_report *r = run(s, 200000, &rc);
    TT_CHECK_EQ_INT(rc, TT_OK);
    TT_REQUIRE(r);
    tt_sim_summary x = TT_OPTS_INIT(tt_sim_summary);
    TT_REQUIRE(tt_sim_report_summary(r, &x) == TT_OK);
    print_errors(r);
    TT_CHECK_EQ_INT(x.target, n);
    TT_CHECK_EQ_INT(x.connected, n);
    TT_CHECK_EQ_INT(x.sent, n * m);
    TT_CHECK_EQ_INT(x.records_sent, n * m);
    TT_CHECK_EQ_INT(x.received, n * m);
    TT_CHECK_EQ_INT(x.latency_count, n * m);
    TT_CHECK_EQ_INT(x.lost, 0);
    TT_CHECK_EQ_INT(x.duplicates, 0);
    TT_CHECK_EQ_INT(x.out_of_order, 0);
    TT_CHECK_EQ_INT(x.publish_failed, 0);
    TT_CHECK_EQ_INT(x.errors, 0);
    TT_CHECK(x.p50_us <= x.p99_us && x.p99_us <= x.max_us);
    tt_sim_progress p = TT_OPTS_INIT(tt_sim_progress);
    TT_CHECK(tt_sim_progress_get(s, &p) == TT_OK && p.done && p.sent == n * m);
    /* A second run of the same simulator is refused. */
    tt_future *again = tt_sim_run(s);
    TT_CHECK_EQ_INT(tt_future_wait(again, 5000), TT_EBUSY);
    tt_future_free(again);
    tt_sim_report_free(r);
    tt_sim_free(s);
    tt_runtime_free(rt);
    tt_broker_free(&b);
}

/* QoS 1 with a broker restart in the middle: the devices' unacknowledged
 * publishes are resent, the broker keeps the consumer's queue in its
 * persistence file, and every message arrives (duplicates are allowed). */
static void test_zero_loss_restart(void) {
    tt_broker b;
    TT_REQUIRE(start_broker(&b, true));
    tt_runtime *rt = rt_new();
    TT_REQUIRE(rt);
    char url[64];
    url_of(&b, url, sizeof url);
    const uint32_t n = 20;
    const uint64_t m = 300;
    tt_sim_opts o = TT_OPTS_INIT(tt_sim_opts);
    o.url = url;
    o.devices = n;
    o.count = m;
    o.rate = 50;                       /* 6 s of publishing */
    o.qos = TT_QOS1;
    o.consumer_id = "sim-restart-consumer";
    o.consumer_persistent = true;
    o.drain_s = 90;
    tt_sim *s;
    TT_REQUIRE(tt_sim_new(rt, &o, &s) == TT_OK);
    /* The restart comes from this thread: the broker dies with the thread
     * that started it. */
    tt_future *f = tt_sim_run(s);
    int restarted = -1;
    for (int i = 0; i < 12000; i++) {
        tt_sim_progress p = TT_OPTS_INIT(tt_sim_progress);
        if (tt_sim_progress_get(s, &p) == TT_OK && p.sent >= n * m / 3) {
            restarted = tt_broker_restart(&b);
            break;
        }
        usleep(5000);
    }
    TT_CHECK_EQ_INT(restarted, 0);
    TT_CHECK_EQ_INT(tt_future_wait(f, 300000), TT_OK);
    tt_future_free(f);
    tt_sim_report *r = NULL;
    TT_REQUIRE(tt_sim_report_get(s, &r) == TT_OK);
    tt_sim_summary y = TT_OPTS_INIT(tt_sim_summary);
    TT_REQUIRE(tt_sim_report_summary(r, &y) == TT_OK);
    print_errors(r);
    fprintf(stderr, "  sent %llu received %llu dups %llu ooo %llu errors %llu\n",
            (unsigned long long)y.sent, (unsigned long long)y.received, (unsigned long long)y.duplicates,
            (unsigned long long)y.out_of_order, (unsigned long long)y.errors);
    TT_CHECK_EQ_INT(y.sent, n * m);
    TT_CHECK_EQ_INT(y.publish_failed, 0);
    TT_CHECK_EQ_INT(y.lost, 0);
    TT_CHECK_EQ_INT(y.received - y.duplicates, n * m);
    TT_CHECK(y.errors > 0);            /* the restart was seen: disconnections counted */
    tt_sim_report_free(r);
    tt_sim_free(s);
    tt_runtime_free(rt);
    tt_broker_free(&b);
}

/* The ThingsBoard profiles over the plain broker: device records, and
 * gateways whose every message carries all their sub-devices. */
static void test_thingsboard_profiles(void) {
    tt_broker b;
    TT_REQUIRE(start_broker(&b, false));
    tt_runtime *rt = rt_new();
    TT_REQUIRE(rt);
    char url[64];
    url_of(&b, url, sizeof url);
    tt_sim_opts o = TT_OPTS_INIT(tt_sim_opts);
    o.url = url;
    o.profile = tt_sim_profile_find("thingsboard-gateway");
    o.devices = 5;
    o.sub_devices = 4;
    o.count = 50;
    o.qos = TT_QOS1;
    o.payload_size = 300;
    o.drain_s = 60;
    tt_sim *s;
    TT_REQUIRE(tt_sim_new(rt, &o, &s) == TT_OK);
    tt_err rc;
    tt_sim_report *r = run(s, 120000, &rc);
    TT_CHECK_EQ_INT(rc, TT_OK);
    TT_REQUIRE(r);
    tt_sim_summary x = TT_OPTS_INIT(tt_sim_summary);
    TT_REQUIRE(tt_sim_report_summary(r, &x) == TT_OK);
    TT_CHECK_EQ_INT(x.sent, 5 * 50);
    TT_CHECK_EQ_INT(x.records_sent, 5 * 4 * 50);
    TT_CHECK_EQ_INT(x.received, 5 * 4 * 50);
    TT_CHECK_EQ_INT(x.lost, 0);
    TT_CHECK_EQ_INT(x.errors, 0);
    tt_sim_report_free(r);
    tt_sim_free(s);

    o.profile = tt_sim_profile_find("thingsboard-device");
    o.devices = 10;
    o.count = 40;
    TT_REQUIRE(tt_sim_new(rt, &o, &s) == TT_OK);
    r = run(s, 120000, &rc);
    TT_CHECK_EQ_INT(rc, TT_OK);
    TT_REQUIRE(r);
    TT_REQUIRE(tt_sim_report_summary(r, &x) == TT_OK);
    TT_CHECK_EQ_INT(x.sent, 400);
    TT_CHECK_EQ_INT(x.received, 400);
    TT_CHECK_EQ_INT(x.lost, 0);
    tt_sim_report_free(r);
    tt_sim_free(s);
    tt_runtime_free(rt);
    tt_broker_free(&b);
}

/* A consumer-only simulator and a publish-only one (as two processes would
 * run them), their reports through JSON files, merged: the totals match. */
static void test_separate_consumer_merge(void) {
    tt_broker b;
    TT_REQUIRE(start_broker(&b, false));
    tt_runtime *rt = rt_new();
    TT_REQUIRE(rt);
    char url[64];
    url_of(&b, url, sizeof url);
    tt_sim_opts c = TT_OPTS_INIT(tt_sim_opts);
    c.url = url;
    c.consume_only = true;
    c.qos = TT_QOS1;
    tt_sim *cs;
    TT_REQUIRE(tt_sim_new(rt, &c, &cs) == TT_OK);
    tt_future *cf = tt_sim_run(cs);
    /* The consumer is subscribed once its clock starts. */
    tt_sim_progress p = TT_OPTS_INIT(tt_sim_progress);
    for (int i = 0; i < 3000 && (tt_sim_progress_get(cs, &p) != TT_OK || p.elapsed_s <= 0); i++) usleep(10000);
    TT_REQUIRE(p.elapsed_s > 0);

    tt_sim_opts o = TT_OPTS_INIT(tt_sim_opts);
    o.url = url;
    o.devices = 10;
    o.id_offset = 1000;
    o.count = 100;
    o.qos = TT_QOS1;
    o.rate = 0;
    o.no_consumer = true;
    tt_sim *ps;
    TT_REQUIRE(tt_sim_new(rt, &o, &ps) == TT_OK);
    tt_err rc;
    tt_sim_report *pr = run(ps, 120000, &rc);
    TT_CHECK_EQ_INT(rc, TT_OK);
    TT_REQUIRE(pr);
    for (int i = 0; i < 3000 && (tt_sim_progress_get(cs, &p) != TT_OK || p.received < 1000); i++) usleep(10000);
    tt_sim_stop(cs);
    TT_CHECK_EQ_INT(tt_future_wait(cf, 60000), TT_OK);
    tt_future_free(cf);
    tt_sim_report *cr;
    TT_REQUIRE(tt_sim_report_get(cs, &cr) == TT_OK);

    /* Through files, as `tether sim --merge` reads them. */
    char dir[] = "/tmp/tt-sim-merge-XXXXXX";
    TT_REQUIRE(mkdtemp(dir));
    char f1[128], f2[128];
    snprintf(f1, sizeof f1, "%s/p.json", dir);
    snprintf(f2, sizeof f2, "%s/c.json", dir);
    TT_CHECK(tt_sim_report_write_json(pr, f1) == TT_OK);
    TT_CHECK(tt_sim_report_write_json(cr, f2) == TT_OK);
    tt_sim_report *a = NULL, *c2 = NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *f = fopen(f1, "r");
    TT_REQUIRE(f);
    text = malloc(1 << 22);
    len = fread(text, 1, 1 << 22, f);
    fclose(f);
    TT_CHECK(tt_sim_report_parse(text, len, &a) == TT_OK);
    f = fopen(f2, "r");
    TT_REQUIRE(f);
    len = fread(text, 1, 1 << 22, f);
    fclose(f);
    TT_CHECK(tt_sim_report_parse(text, len, &c2) == TT_OK);
    free(text);
    TT_REQUIRE(a && c2);
    TT_REQUIRE(tt_sim_report_merge(a, c2) == TT_OK);
    tt_sim_summary x = TT_OPTS_INIT(tt_sim_summary);
    TT_REQUIRE(tt_sim_report_summary(a, &x) == TT_OK);
    TT_CHECK_EQ_INT(x.processes, 2);
    TT_CHECK_EQ_INT(x.target, 10);
    TT_CHECK_EQ_INT(x.sent, 1000);
    TT_CHECK_EQ_INT(x.received, 1000);
    TT_CHECK_EQ_INT(x.latency_count, 1000);
    TT_CHECK_EQ_INT(x.lost, 0);                /* no gaps in any device's sequence */
    unlink(f1);
    unlink(f2);
    rmdir(dir);
    tt_sim_report_free(a);
    tt_sim_report_free(c2);
    tt_sim_report_free(pr);
    tt_sim_report_free(cr);
    tt_sim_free(ps);
    tt_sim_free(cs);
    tt_runtime_free(rt);
    tt_broker_free(&b);
}

/* Connections spread over local source addresses (tt_client_opts.source_addr):
 * every one connects, and the broker saw each address. */
static void test_source_addrs(void) {
    tt_broker b;
    TT_REQUIRE(start_broker(&b, false));
    tt_runtime *rt = rt_new();
    TT_REQUIRE(rt);
    char url[64];
    url_of(&b, url, sizeof url);
    const char *srcs[] = { "127.0.0.2", "127.0.0.3", "127.0.0.4" };
    tt_sim_opts o = TT_OPTS_INIT(tt_sim_opts);
    o.url = url;
    o.devices = 30;
    o.count = 10;
    o.rate = 0;
    o.qos = TT_QOS1;
    o.source_addrs = srcs;
    o.nsource_addrs = 3;
    tt_sim *s;
    TT_REQUIRE(tt_sim_new(rt, &o, &s) == TT_OK);
    tt_err rc;
    tt_sim_report *r = run(s, 120000, &rc);
    TT_CHECK_EQ_INT(rc, TT_OK);
    TT_REQUIRE(r);
    tt_sim_summary x = TT_OPTS_INIT(tt_sim_summary);
    TT_REQUIRE(tt_sim_report_summary(r, &x) == TT_OK);
    print_errors(r);
    TT_CHECK_EQ_INT(x.connected, 30);
    TT_CHECK_EQ_INT(x.received, 300);
    FILE *f = fopen(b.log, "r");
    TT_REQUIRE(f);
    static char log[1 << 20];
    size_t n = fread(log, 1, sizeof log - 1, f);
    fclose(f);
    log[n] = '\0';
    for (int i = 0; i < 3; i++) {
        char want[32];
        snprintf(want, sizeof want, "from %s:", srcs[i]);
        TT_CHECK_MSG(strstr(log, want) != NULL, "no connection %s in the broker's log", want);
    }
    /* An address that cannot be bound fails the connects, with its kind counted. */
    tt_sim_report_free(r);
    tt_sim_free(s);
    const char *bad[] = { "not-an-address" };
    o.source_addrs = bad;
    o.nsource_addrs = 1;
    o.devices = 2;
    o.no_consumer = true;
    o.drain_s = 1;
    TT_REQUIRE(tt_sim_new(rt, &o, &s) == TT_OK);
    r = run(s, 60000, &rc);
    TT_REQUIRE(r);
    TT_REQUIRE(tt_sim_report_summary(r, &x) == TT_OK);
    TT_CHECK_EQ_INT(x.connect_failed, 2);
    const char *kind = NULL;
    uint64_t k = 0;
    TT_CHECK(tt_sim_report_error(r, 0, &kind, &k) && strcmp(kind, "connect TT_EINVAL") == 0 && k == 2);
    tt_sim_report_free(r);
    tt_sim_free(s);
    tt_runtime_free(rt);
    tt_broker_free(&b);
}

static void test_bad_options(void) {
    tt_runtime *rt = rt_new();
    TT_REQUIRE(rt);
    tt_sim *s = (tt_sim *)1;
    tt_sim_opts o = TT_OPTS_INIT(tt_sim_opts);
    TT_CHECK(tt_sim_new(rt, &o, &s) == TT_EINVAL && s == NULL);    /* no url */
    o.url = "mqtt://127.0.0.1:1";
    TT_CHECK(tt_sim_new(rt, &o, &s) == TT_EINVAL);                 /* no devices */
    o.devices = 1;
    TT_CHECK(tt_sim_new(rt, &o, &s) == TT_EINVAL);                 /* no count, no duration */
    o.count = 1;
    o.topic = "a/{id}/#";
    o.qos = (tt_qos)3;
    TT_CHECK(tt_sim_new(rt, &o, &s) == TT_EINVAL);
    o.qos = TT_QOS0;
    o.topic = NULL;
    /* Nothing listens: the consumer cannot start, and the run says so. */
    o.drain_s = 1;
    TT_REQUIRE(tt_sim_new(rt, &o, &s) == TT_OK);
    tt_future *f = tt_sim_run(s);
    tt_err rc = tt_future_wait(f, 60000);
    TT_CHECK(rc != TT_OK && rc != TT_ETIMEDOUT);
    TT_CHECK(tt_future_result(f) == rc);
    tt_future_free(f);
    tt_sim_free(s);
    tt_runtime_free(rt);
}

#ifdef TT_CLI_PATH
/* `tether sim` end to end: its JSON says what the run did, the HTML exists,
 * and --merge adds two reports up. */
static void test_cli(void) {
    tt_broker b;
    TT_REQUIRE(start_broker(&b, false));
    char dir[] = "/tmp/tt-sim-cli-XXXXXX";
    TT_REQUIRE(mkdtemp(dir));
    char port[16], prefix[128], out[160], json[160], html[160], merged[128], mjson[160];
    snprintf(port, sizeof port, "%d", b.port);
    snprintf(prefix, sizeof prefix, "%s/run", dir);
    snprintf(out, sizeof out, "%s/out.txt", dir);
    snprintf(json, sizeof json, "%s.json", prefix);
    snprintf(html, sizeof html, "%s.html", prefix);
    snprintf(merged, sizeof merged, "%s/merged", dir);
    snprintf(mjson, sizeof mjson, "%s.json", merged);
    char *argv[] = { TT_CLI_PATH, "sim", "-h", "127.0.0.1", "-p", port, "-n", "20", "--count", "50",
                     "--rate", "0", "-q", "1", "-o", prefix, NULL };
    TT_CHECK_EQ_INT(tt_broker_run(argv, out, 120000), 0);
    FILE *f = fopen(out, "r");
    TT_REQUIRE(f);
    static char text[1 << 22];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    TT_CHECK(strstr(text, "conn ") != NULL);           /* progress lines (not a terminal) */
    TT_CHECK(strstr(text, "received     1000 records: 0 lost") != NULL);
    TT_CHECK(strstr(text, json) != NULL);
    struct stat st;
    TT_CHECK(stat(html, &st) == 0 && st.st_size > 1000);
    char *margv[] = { TT_CLI_PATH, "sim", "--merge", json, json, "-o", merged, NULL };
    TT_CHECK_EQ_INT(tt_broker_run(margv, out, 60000), 0);
    f = fopen(mjson, "r");
    TT_REQUIRE(f);
    n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    tt_sim_report *r = NULL;
    TT_REQUIRE(tt_sim_report_parse(text, n, &r) == TT_OK);
    tt_sim_summary x = TT_OPTS_INIT(tt_sim_summary);
    TT_CHECK(tt_sim_report_summary(r, &x) == TT_OK);
    TT_CHECK_EQ_INT(x.processes, 2);
    TT_CHECK_EQ_INT(x.sent, 2000);
    TT_CHECK_EQ_INT(x.received, 2000);
    tt_sim_report_free(r);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    TT_CHECK(system(cmd) == 0);
    tt_broker_free(&b);
}
#endif

TT_TEST_LIST = {
    { "exact_counts", test_exact_counts },
    { "zero_loss_restart", test_zero_loss_restart },
    { "thingsboard_profiles", test_thingsboard_profiles },
    { "separate_consumer_merge", test_separate_consumer_merge },
    { "source_addrs", test_source_addrs },
    { "bad_options", test_bad_options },
#ifdef TT_CLI_PATH
    { "cli", test_cli },
#endif
    { NULL, NULL },
};
