/* Topic matching with 10 000 subscriptions: the session's trie against a
 * linear scan that tests every filter with a straightforward level-by-level
 * matcher (what a client without an index does). Same filters, same topics,
 * same match counts (checked). Prints topics/s and the ratio trie / scan.
 *
 *   trie_bench [-s seconds-per-row] [-n filters]
 *
 * Filters: devices/<id>/telemetry (exact, half of them), site/<s>/room/<r>/temp
 * (exact, deeper), fleet/<id>/# , alerts/+/level<k>, devices/+/status, $SYS/#.
 * Topics: hits on each kind, and misses. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/session/trie.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x2545f4914f6cdd1du;
static uint32_t rnd(uint32_t n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

/* ---- The baseline: test each filter in turn ----------------------------------- */

static bool simple_match(const char *f, size_t fl, const char *t, size_t tl) {
    if (tl > 0 && t[0] == '$' && fl > 0 && (f[0] == '+' || f[0] == '#')) return false;
    size_t i = 0, j = 0;
    for (;;) {
        /* one filter level [i, fe), one topic level [j, te) */
        size_t fe = i, te = j;
        while (fe < fl && f[fe] != '/') fe++;
        if (fe - i == 1 && f[i] == '#') return true;
        if (j > tl) return false; /* topic used up, the filter goes on */
        while (te < tl && t[te] != '/') te++;
        if (!(fe - i == 1 && f[i] == '+') &&
            (fe - i != te - j || memcmp(f + i, t + j, fe - i) != 0))
            return false;
        i = fe + 1;
        j = te + 1;
        if (i > fl) return j > tl; /* filter used up: so must the topic be */
    }
}

typedef struct filt {
    char s[64];
    size_t len;
} filt;

static size_t scan_match(const filt *fs, size_t n, const char *t, size_t tl) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += simple_match(fs[i].s, fs[i].len, t, tl);
    return k;
}

static void count_cb(const char *filter, size_t len, void *value, void *arg) {
    (void)filter; (void)len; (void)value;
    ++*(size_t *)arg;
}

/* ---- Workload -------------------------------------------------------------------- */

static size_t make_filters(filt *fs, size_t n) {
    size_t k = 0;
    size_t exact = n / 2, site = n / 5, fleet = n * 3 / 20;
    for (size_t i = 0; i < exact && k < n; i++)
        snprintf(fs[k++].s, sizeof fs[0].s, "devices/%zu/telemetry", i);
    for (size_t i = 0; i < site && k < n; i++)
        snprintf(fs[k++].s, sizeof fs[0].s, "site/%zu/room/%zu/temp", i % 100, i);
    for (size_t i = 0; i < fleet && k < n; i++)
        snprintf(fs[k++].s, sizeof fs[0].s, "fleet/%zu/#", i);
    if (k < n) snprintf(fs[k++].s, sizeof fs[0].s, "devices/+/status");
    if (k < n) snprintf(fs[k++].s, sizeof fs[0].s, "$SYS/#");
    for (size_t i = 0; k < n; i++)
        snprintf(fs[k++].s, sizeof fs[0].s, "alerts/+/level%zu", i);
    for (size_t i = 0; i < k; i++) fs[i].len = strlen(fs[i].s);
    return k;
}

#define NTOPICS 4096

static void make_topics(char (*ts)[64], size_t nf) {
    for (size_t i = 0; i < NTOPICS; i++) {
        uint32_t id = rnd((uint32_t)nf);
        switch (rnd(7)) {
        case 0: case 1: snprintf(ts[i], 64, "devices/%u/telemetry", id); break;
        case 2: snprintf(ts[i], 64, "devices/%u/status", id); break;
        case 3: snprintf(ts[i], 64, "site/%u/room/%u/temp", id % 100, id / 5); break;
        case 4: snprintf(ts[i], 64, "fleet/%u/gps/fix", id / 4); break;
        case 5: snprintf(ts[i], 64, "alerts/gw%u/level%u", id % 7, id / 8); break;
        default: snprintf(ts[i], 64, "other/%u/x", id); break; /* no match */
        }
    }
}

int main(int argc, char **argv) {
    double secs = 1.0;
    size_t nf = 10000;
    int opt;
    while ((opt = getopt(argc, argv, "s:n:")) != -1) {
        if (opt == 's') secs = atof(optarg);
        else if (opt == 'n') nf = (size_t)strtoul(optarg, NULL, 10);
        else {
            fprintf(stderr, "usage: %s [-s seconds] [-n filters]\n", argv[0]);
            return 2;
        }
    }
    if (nf < 10) nf = 10;
    filt *fs = calloc(nf, sizeof *fs);
    char (*ts)[64] = calloc(NTOPICS, sizeof *ts);
    size_t *tl = calloc(NTOPICS, sizeof *tl);
    if (!fs || !ts || !tl) return 1;
    nf = make_filters(fs, nf);
    make_topics(ts, nf);
    for (size_t i = 0; i < NTOPICS; i++) tl[i] = strlen(ts[i]);

    tti_trie t;
    tti_trie_init(&t);
    double t0 = now_s();
    for (size_t i = 0; i < nf; i++)
        if (tti_trie_insert(&t, fs[i].s, fs[i].len, (void *)(uintptr_t)(i + 1), NULL) != 0) {
            fprintf(stderr, "insert %s failed\n", fs[i].s);
            return 1;
        }
    double t_ins = now_s() - t0;

    /* Same answers first. */
    size_t m_trie = 0;
    for (size_t i = 0; i < NTOPICS; i++) {
        size_t a = 0;
        (void)tti_trie_match(&t, ts[i], tl[i], count_cb, &a);
        size_t b = scan_match(fs, nf, ts[i], tl[i]);
        if (a != b) {
            fprintf(stderr, "mismatch on %s: trie %zu, scan %zu\n", ts[i], a, b);
            return 1;
        }
        m_trie += a;
    }

    /* Timed rows: whole passes over the topic set until `secs` have passed. */
    size_t n_trie = 0, sink = 0;
    t0 = now_s();
    double el;
    do {
        for (size_t i = 0; i < NTOPICS; i++) (void)tti_trie_match(&t, ts[i], tl[i], count_cb, &sink);
        n_trie += NTOPICS;
    } while ((el = now_s() - t0) < secs);
    double r_trie = (double)n_trie / el;

    size_t n_scan = 0;
    t0 = now_s();
    do {
        for (size_t i = 0; i < NTOPICS && (i % 64 != 63 || now_s() - t0 < secs); i++) {
            sink += scan_match(fs, nf, ts[i], tl[i]);
            n_scan++;
        }
    } while ((el = now_s() - t0) < secs);
    double r_scan = (double)n_scan / el;

    printf("trie_bench: %zu filters, %d distinct topics, %.2f matches/topic, one core\n", nf,
           NTOPICS, (double)m_trie / NTOPICS);
    printf("(%zu filters inserted in %.1f ms; %zu matches counted)\n", nf, t_ins * 1e3, sink);
    printf("%-28s %14s %12s %10s\n", "matcher", "topics/s", "ns/topic", "ratio");
    printf("%-28s %14.0f %12.1f %9.1fx\n", "trie (tti_trie_match)", r_trie, 1e9 / r_trie,
           r_trie / r_scan);
    printf("%-28s %14.0f %12.1f %9.1fx\n", "linear scan", r_scan, 1e9 / r_scan, 1.0);
    tti_trie_fini(&t, NULL, NULL);
    free(fs);
    free(ts);
    free(tl);
    return 0;
}
