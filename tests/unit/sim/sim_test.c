/* The simulator's histogram, profiles and reports, without a broker. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <tether/sim.h>

#include "platforms/sim/sim_internal.h"
#include "tt_test.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void) {                    /* xorshift64*: reproducible */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The exact percentile by the histogram's definition: rank ceil(p/100 n), at least 1. */
static uint64_t exact_pct(const uint64_t *sorted, size_t n, double p) {
    double r = tti_sim_ceil(p / 100.0 * (double)n);
    size_t rank = r < 1 ? 1 : (size_t)r;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

/* Within the stated precision: at or above the true value, by at most 1/1024 of it. */
static bool within(uint64_t got, uint64_t want) {
    return got >= want && got - want <= want / 1024;
}

static void check_random(uint64_t (*gen)(void), size_t n) {
    uint64_t *v = malloc(n * sizeof *v);
    tt_hist *h;
    TT_REQUIRE(v && tt_hist_new(TTI_SIM_HIST_MAX_US, &h) == TT_OK);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = gen();
        tt_hist_record(h, v[i]);
        sum += (double)v[i];
    }
    qsort(v, n, sizeof *v, cmp_u64);
    TT_CHECK_EQ_INT(tt_hist_count(h), n);
    TT_CHECK_EQ_INT(tt_hist_min(h), v[0]);
    TT_CHECK_EQ_INT(tt_hist_max(h), v[n - 1]);
    double mean = tt_hist_mean(h), want = sum / (double)n;
    TT_CHECK_MSG(mean > want * 0.999999 && mean < want * 1.000001, "mean %f vs %f", mean, want);
    static const double ps[] = { 0, 0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 99.999, 100 };
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        uint64_t got = tt_hist_percentile(h, ps[i]), e = exact_pct(v, n, ps[i]);
        TT_CHECK_MSG(within(got, e), "p%g: %llu vs exact %llu", ps[i], (unsigned long long)got,
                     (unsigned long long)e);
    }
    /* Every rank, on a smaller sample, at 1000 evenly spaced percentiles. */
    for (int k = 0; k <= 1000; k++) {
        double p = k / 10.0;
        uint64_t got = tt_hist_percentile(h, p), e = exact_pct(v, n, p);
        if (!within(got, e)) {
            TT_CHECK_MSG(0, "p%g: %llu vs exact %llu", p, (unsigned long long)got, (unsigned long long)e);
            break;
        }
    }
    tt_hist_free(h);
    free(v);
}

static uint64_t gen_uniform(void) { return rnd() % 5000000; }
static uint64_t gen_small(void) { return rnd() % 3000; }
/* Log-uniform over 1 us .. ~1 h: every bucket scale gets samples. */
static uint64_t gen_wide(void) {
    unsigned e = (unsigned)(rnd() % 31);
    return ((uint64_t)1 << e) + rnd() % ((uint64_t)1 << e);
}
/* A latency-like shape: mostly around 300 us, a long tail. */
static uint64_t gen_tail(void) {
    uint64_t r = rnd() % 1000;
    return r < 990 ? 200 + rnd() % 300 : 10000 + rnd() % 2000000;
}

static void test_hist_uniform(void) { check_random(gen_uniform, 200000); }
static void test_hist_small_exact(void) {
    /* Below 2048 every value has its own bucket: percentiles are exact. */
    uint64_t v[4000];
    tt_hist *h;
    TT_REQUIRE(tt_hist_new(1u << 20, &h) == TT_OK);
    for (size_t i = 0; i < 4000; i++) {
        v[i] = gen_small() % 2048;
        tt_hist_record(h, v[i]);
    }
    qsort(v, 4000, sizeof v[0], cmp_u64);
    for (int k = 0; k <= 100; k++) TT_CHECK_EQ_INT(tt_hist_percentile(h, k), exact_pct(v, 4000, k));
    tt_hist_free(h);
}
static void test_hist_wide(void) { check_random(gen_wide, 300000); }
static void test_hist_tail(void) { check_random(gen_tail, 300000); }

static void test_hist_edges(void) {
    tt_hist *h;
    TT_CHECK(tt_hist_new(100, &h) == TT_EINVAL);
    TT_CHECK(tt_hist_new(TTI_SIM_HIST_MAX_US, NULL) == TT_EINVAL);
    TT_REQUIRE(tt_hist_new(10000, &h) == TT_OK);
    TT_CHECK_EQ_INT(tt_hist_percentile(h, 50), 0);
    TT_CHECK_EQ_INT(tt_hist_count(h), 0);
    tt_hist_record(h, 123456789);               /* above highest: counted as highest */
    TT_CHECK_EQ_INT(tt_hist_max(h), 10000);
    TT_CHECK_EQ_INT(tt_hist_percentile(h, 100), 10000);
    TT_CHECK_EQ_INT(tt_hist_percentile(h, -5), 10000);
    tt_hist_record_n(h, 7, 3);
    TT_CHECK_EQ_INT(tt_hist_count(h), 4);
    TT_CHECK_EQ_INT(tt_hist_percentile(h, 75), 7);
    TT_CHECK_EQ_INT(tt_hist_percentile(h, 76), 10000);
    tt_hist_reset(h);
    TT_CHECK_EQ_INT(tt_hist_count(h), 0);
    /* Buckets cover 0..highest without gaps or overlaps. */
    uint64_t lo, hi, c, next = 0;
    size_t i = 0;
    for (; tt_hist_bucket(h, i, &lo, &hi, &c); i++) {
        TT_CHECK_EQ_INT(lo, next);
        TT_CHECK(hi >= lo && (lo < 2048 || hi - lo + 1 <= lo / 1024));
        next = hi + 1;
    }
    TT_CHECK(next > 10000);
    tt_hist_free(h);
}

static void test_hist_merge(void) {
    tt_hist *a, *b, *all;
    TT_REQUIRE(tt_hist_new(TTI_SIM_HIST_MAX_US, &a) == TT_OK);
    TT_REQUIRE(tt_hist_new(1u << 24, &b) == TT_OK);
    TT_REQUIRE(tt_hist_new(TTI_SIM_HIST_MAX_US, &all) == TT_OK);
    for (int i = 0; i < 100000; i++) {
        uint64_t v = gen_tail() % (1u << 24);
        tt_hist_record(i % 3 ? a : b, v);
        tt_hist_record(all, v);
    }
    tt_hist_merge(a, b);
    TT_CHECK_EQ_INT(tt_hist_count(a), tt_hist_count(all));
    TT_CHECK_EQ_INT(tt_hist_min(a), tt_hist_min(all));
    TT_CHECK_EQ_INT(tt_hist_max(a), tt_hist_max(all));
    for (int k = 0; k <= 100; k++)
        TT_CHECK_EQ_INT(tt_hist_percentile(a, k), tt_hist_percentile(all, k));
    tt_hist_free(a);
    tt_hist_free(b);
    tt_hist_free(all);
}

/* ---- profiles ----------------------------------------------------------- */

typedef struct got {
    uint64_t dev[64], seq[64], us[64];
    int n;
} got;

static void collect(void *arg, uint64_t dev, uint64_t seq, uint64_t us) {
    got *g = arg;
    if (g->n < 64) {
        g->dev[g->n] = dev;
        g->seq[g->n] = seq;
        g->us[g->n] = us;
    }
    g->n++;
}

static void roundtrip(const char *name, uint32_t sub, size_t size, const char *want_topic) {
    const tt_sim_profile *p = tt_sim_profile_find(name);
    TT_REQUIRE(p);
    tt_sim_opts o = TT_OPTS_INIT(tt_sim_opts);
    o.sub_devices = sub;
    o.payload_size = size;
    char topic[256];
    uint8_t buf[8192];
    tt_sim_msg m = { topic, sizeof topic, buf, sizeof buf, 0 };
    TT_REQUIRE(p->telemetry(&o, 42, 7, 1700000000123456ull, &m) == TT_OK);
    TT_CHECK_EQ_STR(topic, want_topic);
    TT_CHECK(m.payload_len >= size);
    if (size > 200) TT_CHECK_EQ_INT(m.payload_len, size);
    got g = { .n = 0 };
    int n = p->decode(&o, topic, strlen(topic), buf, m.payload_len, collect, &g);
    TT_CHECK_EQ_INT(n, p->records_per_msg(&o));
    TT_CHECK_EQ_INT(g.n, n);
    for (int i = 0; i < g.n && i < 64; i++) {
        TT_CHECK_EQ_INT(g.dev[i], (n > 1 || sub > 1) ? 42u * sub + (uint64_t)i : 42u);
        TT_CHECK_EQ_INT(g.seq[i], 7);
        TT_CHECK_EQ_INT(g.us[i], 1700000000123456ull);
    }
    /* The consumer's filter matches the topic (here: same levels, + for {id}). */
    const char *f[4];
    TT_CHECK_EQ_INT(p->filters(&o, f, 4), 1);
    /* Not ours: refused, not crashed. */
    TT_CHECK(p->decode(&o, topic, strlen(topic), "{\"a\":1}", 7, collect, &g) < 0);
    TT_CHECK(p->decode(&o, topic, strlen(topic), "", 0, collect, &g) < 0);
}

static void test_profiles(void) {
    roundtrip("mqtt", 1, 64, "sim/42/telemetry");
    roundtrip("mqtt", 1, 1000, "sim/42/telemetry");
    roundtrip("thingsboard-device", 1, 0, "v1/devices/me/telemetry");
    roundtrip("thingsboard-device", 1, 500, "v1/devices/me/telemetry");
    roundtrip("thingsboard-gateway", 5, 0, "v1/gateway/telemetry");
    roundtrip("thingsboard-gateway", 3, 2000, "v1/gateway/telemetry");
    TT_CHECK(tt_sim_profile_find("nope") == NULL);
    /* Topic pattern and its filter. */
    const tt_sim_profile *p = tt_sim_profile_find("mqtt");
    tt_sim_opts o = TT_OPTS_INIT(tt_sim_opts);
    o.topic = "fleet/a{id}/x/{id}/t";
    const char *f[2];
    TT_REQUIRE(p->filters(&o, f, 2) == 1);
    TT_CHECK_EQ_STR(f[0], "fleet/+/x/+/t");
    char topic[64];
    uint8_t buf[64];
    tt_sim_msg m = { topic, sizeof topic, buf, sizeof buf, 0 };
    TT_CHECK(p->telemetry(&o, 9, 0, 1, &m) == TT_OK);
    TT_CHECK_EQ_STR(topic, "fleet/a9/x/9/t");
    /* The gateway's connect notices, one per sub-device. */
    const tt_sim_profile *g = tt_sim_profile_find("thingsboard-gateway");
    o.sub_devices = 2;
    char pl[256];
    tt_sim_msg h = { topic, sizeof topic, (uint8_t *)pl, sizeof pl - 1, 0 };
    TT_CHECK_EQ_INT(g->hello(&o, 3, 0, &h), 1);
    pl[h.payload_len] = '\0';
    TT_CHECK_EQ_STR(topic, "v1/gateway/connect");
    TT_CHECK_EQ_STR(pl, "{\"device\":\"sim-dev-6\",\"type\":\"tether-sim\"}");
    TT_CHECK_EQ_INT(g->hello(&o, 3, 1, &h), 1);
    TT_CHECK_EQ_INT(g->hello(&o, 3, 2, &h), 0);
    char id[64], user[64];
    TT_CHECK(g->identity(&o, 3, id, sizeof id, user, sizeof user) == TT_OK);
    TT_CHECK_EQ_STR(user, "sim-token-3");
}

/* ---- reports ------------------------------------------------------------ */

static tt_sim_report *sample_report(uint64_t base, size_t steps) {
    tt_sim_report *r;
    if (tti_sim_report_alloc(&r) != TT_OK) return NULL;
    snprintf(r->profile, sizeof r->profile, "mqtt");
    r->target = 100 + base;
    r->connected = 99 + base;
    r->connect_failed = 1;
    r->connect_s = 0.5 + (double)base;
    r->sent = 1000 + base;
    r->records_sent = 1000 + base;
    r->received = 998 + base;
    r->lost = 2;
    r->duplicates = 3;
    r->out_of_order = 4;
    r->duration_s = 10 + (double)base;
    r->started_ms = 1700000000000 + (int64_t)base;
    r->qos = 1;
    r->payload_size = 64;
    r->rate = 1;
    for (int i = 0; i < 5000; i++) {
        tt_hist_record(r->latency_us, base + gen_tail());
        if (i < 100) tt_hist_record(r->connect_us, 500 + gen_small());
    }
    for (size_t i = 0; i < steps; i++) tti_sim_report_step(r, (i + 1) * 100, (i + 1) * 99, 99);
    tti_sim_report_add_error(r, "connect TT_ECONNREFUSED", 1);
    return r;
}

static void test_report_roundtrip(void) {
    tt_sim_report *r = sample_report(0, 12), *back = NULL;
    TT_REQUIRE(r);
    char *json = tt_sim_report_json(r);
    TT_REQUIRE(json);
    TT_REQUIRE(tt_sim_report_parse(json, strlen(json), &back) == TT_OK);
    char *again = tt_sim_report_json(back);
    TT_REQUIRE(again);
    TT_CHECK_EQ_STR(again, json);               /* byte for byte */
    tt_sim_summary a = TT_OPTS_INIT(tt_sim_summary), b = TT_OPTS_INIT(tt_sim_summary);
    TT_CHECK(tt_sim_report_summary(r, &a) == TT_OK && tt_sim_report_summary(back, &b) == TT_OK);
    TT_CHECK_EQ_INT(a.p99_us, b.p99_us);
    TT_CHECK_EQ_INT(a.lost, 2);
    TT_CHECK_EQ_INT(b.errors, 1);
    /* Garbage is refused. */
    tt_sim_report *x = NULL;
    TT_CHECK(tt_sim_report_parse("{}", 2, &x) == TT_EINVAL && x == NULL);
    TT_CHECK(tt_sim_report_parse("not json", 8, &x) == TT_EINVAL);
    TT_CHECK(tt_sim_report_parse(json, strlen(json) / 2, &x) == TT_EINVAL);
    free(json);
    free(again);
    tt_sim_report_free(r);
    tt_sim_report_free(back);
}

static void test_report_merge(void) {
    tt_sim_report *a = sample_report(0, 10), *b = sample_report(1000, 15);
    TT_REQUIRE(a && b);
    tt_hist *both;
    TT_REQUIRE(tt_hist_new(TTI_SIM_HIST_MAX_US, &both) == TT_OK);
    tt_hist_merge(both, a->latency_us);
    tt_hist_merge(both, b->latency_us);
    TT_REQUIRE(tt_sim_report_merge(a, b) == TT_OK);
    tt_sim_summary s = TT_OPTS_INIT(tt_sim_summary);
    TT_REQUIRE(tt_sim_report_summary(a, &s) == TT_OK);
    TT_CHECK_EQ_INT(s.processes, 2);
    TT_CHECK_EQ_INT(s.target, 1200);
    TT_CHECK_EQ_INT(s.sent, 3000);
    TT_CHECK_EQ_INT(s.received, 2996);
    TT_CHECK_EQ_INT(s.lost, 4);
    TT_CHECK_EQ_INT(s.duplicates, 6);
    TT_CHECK_EQ_INT(s.errors, 2);
    TT_CHECK(s.duration_s == 1010);
    TT_CHECK_EQ_INT(s.latency_count, 10000);
    TT_CHECK_EQ_INT(s.p99_us, tt_hist_percentile(both, 99));
    TT_CHECK_EQ_INT(s.max_us, tt_hist_max(both));
    /* Timeline: 15 steps; a's totals carry on after its 10th second. */
    TT_CHECK_EQ_INT(a->nsteps, 15);
    TT_CHECK_EQ_INT(a->t_sent[0], 200);
    TT_CHECK_EQ_INT(a->t_sent[14], 1000 + 1500);
    TT_CHECK_EQ_INT(a->t_connected[14], 99);
    TT_CHECK_EQ_INT(a->t_connected[9], 198);
    /* The merged report round-trips too. */
    char *json = tt_sim_report_json(a);
    tt_sim_report *back = NULL;
    TT_REQUIRE(json && tt_sim_report_parse(json, strlen(json), &back) == TT_OK);
    tt_sim_summary s2 = TT_OPTS_INIT(tt_sim_summary);
    TT_CHECK(tt_sim_report_summary(back, &s2) == TT_OK);
    TT_CHECK_EQ_INT(s2.processes, 2);
    TT_CHECK_EQ_INT(s2.p999_us, s.p999_us);
    TT_CHECK(tt_sim_report_merge(a, a) == TT_EINVAL);
    free(json);
    tt_hist_free(both);
    tt_sim_report_free(back);
    tt_sim_report_free(a);
    tt_sim_report_free(b);
}

static void test_report_html(void) {
    tt_sim_report *r = sample_report(0, 30);
    TT_REQUIRE(r);
    char path[] = "/tmp/tt-sim-html-XXXXXX";
    int fd = mkstemp(path);
    TT_REQUIRE(fd >= 0);
    close(fd);
    TT_CHECK(tt_sim_report_write_html(r, path) == TT_OK);
    FILE *f = fopen(path, "r");
    TT_REQUIRE(f);
    static char page[1 << 20];
    size_t n = fread(page, 1, sizeof page - 1, f);
    fclose(f);
    page[n] = '\0';
    TT_CHECK(strstr(page, "<!DOCTYPE html>") == page);
    TT_CHECK(strstr(page, "</html>") != NULL);
    int svgs = 0;
    for (const char *p = page; (p = strstr(p, "<svg")) != NULL; p++) svgs++;
    TT_CHECK_EQ_INT(svgs, 3);
    TT_CHECK(strstr(page, "<polyline") != NULL);
    TT_CHECK(strstr(page, "http://") == strstr(page, "http://www.w3.org/2000/svg"));   /* no fetches */
    TT_CHECK(strstr(page, "<script") == NULL);
    /* An empty report still makes a page. */
    tt_sim_report *e;
    TT_REQUIRE(tti_sim_report_alloc(&e) == TT_OK);
    TT_CHECK(tt_sim_report_write_html(e, path) == TT_OK);
    TT_CHECK(tt_sim_report_write_html(e, "/nonexistent-dir/x.html") == TT_EINTERNAL);
    tt_sim_report_free(e);
    unlink(path);
    tt_sim_report_free(r);
}

static void test_math(void) {
    for (double x = 0.001; x < 1e9; x *= 3.7) {
        double l = tti_sim_log10(x), back = tti_sim_pow10(l);
        TT_CHECK_MSG(back > x * 0.999999 && back < x * 1.000001, "%g -> %g -> %g", x, l, back);
    }
    TT_CHECK(tti_sim_floor(-1.5) == -2 && tti_sim_floor(2.0) == 2 && tti_sim_ceil(2.1) == 3);
}

TT_TEST_LIST = {
    { "hist_uniform", test_hist_uniform },
    { "hist_small_exact", test_hist_small_exact },
    { "hist_wide", test_hist_wide },
    { "hist_tail", test_hist_tail },
    { "hist_edges", test_hist_edges },
    { "hist_merge", test_hist_merge },
    { "profiles", test_profiles },
    { "report_roundtrip", test_report_roundtrip },
    { "report_merge", test_report_merge },
    { "report_html", test_report_html },
    { "math", test_math },
    { NULL, NULL },
};
