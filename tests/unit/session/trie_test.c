/* Topic-filter trie: the examples of MQTT section 4.7, replace/remove/foreach,
 * shared subscriptions, empty levels, deep topics, and a randomized comparison
 * with a brute-force matcher (before and after removing half the filters). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tt_test.h"
#include "actors/session/trie.h"
#include <tether/err.h>

/* ---- Helpers --------------------------------------------------------------- */

#define MAXHITS 64

typedef struct hits {
    int n;
    char f[MAXHITS][128];
    void *v[MAXHITS];
} hits;

static void on_hit(const char *filter, size_t len, void *value, void *arg) {
    hits *h = arg;
    if (h->n < MAXHITS && len < sizeof h->f[0]) {
        memcpy(h->f[h->n], filter, len);
        h->f[h->n][len] = '\0';
        h->v[h->n] = value;
    }
    h->n++;
}

static int ins(tti_trie *t, const char *f, void *v) {
    return tti_trie_insert(t, f, strlen(f), v, NULL);
}

static hits match(const tti_trie *t, const char *topic) {
    hits h;
    memset(&h, 0, sizeof h);
    int rc = tti_trie_match(t, topic, strlen(topic), on_hit, &h);
    TT_CHECK_EQ_INT(rc, h.n);
    return h;
}

static bool has(const hits *h, const char *filter) {
    for (int i = 0; i < h->n && i < MAXHITS; i++)
        if (strcmp(h->f[i], filter) == 0) return true;
    return false;
}

/* Whether `filter` (stored alone in a fresh trie) matches `topic`. */
static bool one(const char *filter, const char *topic) {
    tti_trie t;
    tti_trie_init(&t);
    TT_CHECK_EQ_INT(ins(&t, filter, (void *)1), 0);
    hits h = match(&t, topic);
    TT_CHECK(h.n <= 1);
    tti_trie_fini(&t, NULL, NULL);
    return h.n == 1;
}

/* ---- The spec's examples ----------------------------------------------------- */

static void test_spec_examples(void) {
    /* 4.7.1.2: multi-level wildcard */
    TT_CHECK(one("sport/tennis/player1/#", "sport/tennis/player1"));
    TT_CHECK(one("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
    TT_CHECK(one("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"));
    TT_CHECK(one("sport/#", "sport"));
    TT_CHECK(one("#", "sport/tennis"));
    TT_CHECK(!one("sport/tennis/player1/#", "sport/tennis/player2"));
    /* 4.7.1.3: single-level wildcard */
    TT_CHECK(one("sport/tennis/+", "sport/tennis/player1"));
    TT_CHECK(one("sport/tennis/+", "sport/tennis/player2"));
    TT_CHECK(!one("sport/tennis/+", "sport/tennis/player1/ranking"));
    TT_CHECK(!one("sport/+", "sport"));
    TT_CHECK(one("sport/+", "sport/"));
    TT_CHECK(!one("sport/+", "sport/tennis/player1"));
    TT_CHECK(one("+/+", "/finance"));
    TT_CHECK(one("/+", "/finance"));
    TT_CHECK(!one("+", "/finance"));
    TT_CHECK(one("+/tennis/#", "sport/tennis/x"));
    /* 4.7.2: topics beginning with $ */
    TT_CHECK(!one("#", "$SYS/x"));
    TT_CHECK(!one("#", "$SYS"));
    TT_CHECK(!one("+", "$SYS"));
    TT_CHECK(!one("+/monitor/Clients", "$SYS/monitor/Clients"));
    TT_CHECK(one("$SYS/#", "$SYS/x"));
    TT_CHECK(one("$SYS/#", "$SYS"));
    TT_CHECK(one("$SYS/monitor/+", "$SYS/monitor/Clients"));
    TT_CHECK(one("a/+", "a/$b"));  /* the rule is for the first level only */
    TT_CHECK(one("a/#", "a/$b/c"));
    /* exact */
    TT_CHECK(one("a/b", "a/b"));
    TT_CHECK(!one("a/b", "a/b/c"));
    TT_CHECK(!one("a/b", "a"));
    TT_CHECK(!one("a/b", "A/b"));
}

static void test_empty_levels(void) {
    TT_CHECK(one("a//b", "a//b"));
    TT_CHECK(!one("a//b", "a/b"));
    TT_CHECK(one("a/+/b", "a//b"));
    TT_CHECK(one("/", "/"));
    TT_CHECK(!one("/", "a/"));
    TT_CHECK(one("+/+", "/"));
    TT_CHECK(!one("+", "/"));
    TT_CHECK(one("a/", "a/"));
    TT_CHECK(!one("a/", "a"));
    TT_CHECK(one("a/#", "a/"));
    TT_CHECK(one("#", "/"));
    TT_CHECK(one("//#", "//"));
    TT_CHECK(one("+/+/+", "//"));
    /* wildcard characters inside a topic are plain characters */
    TT_CHECK(one("a/+", "a/+"));
    TT_CHECK(!one("a/b", "a/+"));
}

/* A topic reaches a filter through '+' and through '#' at once: reported once. */
static void test_reported_once(void) {
    tti_trie t;
    tti_trie_init(&t);
    const char *filters[] = { "#", "a/#", "a/+", "+/#", "+/+", "a/b", "a/b/#", "+/b/#", "+/+/#" };
    for (size_t i = 0; i < sizeof filters / sizeof *filters; i++)
        TT_CHECK_EQ_INT(ins(&t, filters[i], (void *)(i + 1)), 0);
    hits h = match(&t, "a/b");
    TT_CHECK_EQ_INT(h.n, 9);
    for (size_t i = 0; i < sizeof filters / sizeof *filters; i++)
        TT_CHECK_MSG(has(&h, filters[i]), "%s", filters[i]);
    for (int i = 0; i < h.n; i++)
        for (int j = i + 1; j < h.n; j++) TT_CHECK(strcmp(h.f[i], h.f[j]) != 0);
    h = match(&t, "a");
    TT_CHECK_EQ_INT(h.n, 3); /* #, a/#, +/# */
    TT_CHECK(has(&h, "#") && has(&h, "a/#") && has(&h, "+/#"));
    tti_trie_fini(&t, NULL, NULL);
}

static void test_replace_remove_lookup(void) {
    tti_trie t;
    tti_trie_init(&t);
    int a = 1, b = 2;
    void *old = (void *)&t;
    TT_CHECK_EQ_INT(tti_trie_insert(&t, "x/y", 3, &a, &old), 0);
    TT_CHECK(old == NULL);
    TT_CHECK_EQ_INT(tti_trie_insert(&t, "x/y", 3, &b, &old), 1);
    TT_CHECK(old == &a);
    TT_CHECK_EQ_INT(tti_trie_count(&t), 1);
    void *v = NULL;
    TT_CHECK(tti_trie_lookup(&t, "x/y", 3, &v) && v == &b);
    TT_CHECK(!tti_trie_lookup(&t, "x", 1, &v));
    TT_CHECK(!tti_trie_lookup(&t, "x/+", 3, &v));
    hits h = match(&t, "x/y");
    TT_CHECK(h.n == 1 && h.v[0] == &b);

    /* NULL values are values */
    TT_CHECK_EQ_INT(ins(&t, "x/+", NULL), 0);
    v = &a;
    TT_CHECK(tti_trie_lookup(&t, "x/+", 3, &v) && v == NULL);
    TT_CHECK_EQ_INT(match(&t, "x/y").n, 2);

    /* invalid filters */
    TT_CHECK_EQ_INT(ins(&t, "", &a), TT_EINVAL);
    TT_CHECK_EQ_INT(ins(&t, "a/#/b", &a), TT_EINVAL);
    TT_CHECK_EQ_INT(ins(&t, "a+", &a), TT_EINVAL);
    TT_CHECK_EQ_INT(ins(&t, "a/b#", &a), TT_EINVAL);
    TT_CHECK_EQ_INT(ins(&t, "$share/g", &a), TT_EINVAL);
    TT_CHECK_EQ_INT(ins(&t, "$share//a", &a), TT_EINVAL);
    TT_CHECK_EQ_INT(ins(&t, "$share/g/", &a), TT_EINVAL);
    TT_CHECK_EQ_INT(tti_trie_insert(&t, "a\0b", 3, &a, NULL), TT_EINVAL);
    TT_CHECK_EQ_INT(tti_trie_count(&t), 2);

    /* remove */
    TT_CHECK_EQ_INT(tti_trie_remove(&t, "x", 1, &v), TT_ENOTFOUND);
    TT_CHECK_EQ_INT(tti_trie_remove(&t, "x/y/z", 5, &v), TT_ENOTFOUND);
    TT_CHECK_EQ_INT(tti_trie_remove(&t, "x/#", 3, &v), TT_ENOTFOUND);
    TT_CHECK_EQ_INT(tti_trie_remove(&t, "x/y", 3, &v), TT_OK);
    TT_CHECK(v == &b);
    TT_CHECK_EQ_INT(tti_trie_remove(&t, "x/y", 3, &v), TT_ENOTFOUND);
    TT_CHECK_EQ_INT(match(&t, "x/y").n, 1);
    TT_CHECK_EQ_INT(tti_trie_remove(&t, "x/+", 3, NULL), TT_OK);
    TT_CHECK_EQ_INT(tti_trie_count(&t), 0);
    TT_CHECK(t.root == NULL); /* every node went with the last filter */
    TT_CHECK_EQ_INT(match(&t, "x/y").n, 0);

    /* a prefix filter survives removal of a longer one, and vice versa */
    TT_CHECK_EQ_INT(ins(&t, "p", &a), 0);
    TT_CHECK_EQ_INT(ins(&t, "p/q/r", &b), 0);
    TT_CHECK_EQ_INT(tti_trie_remove(&t, "p/q/r", 5, NULL), TT_OK);
    TT_CHECK(t.root != NULL);
    TT_CHECK_EQ_INT(match(&t, "p").n, 1);
    TT_CHECK_EQ_INT(ins(&t, "p/q/r", &b), 0);
    TT_CHECK_EQ_INT(tti_trie_remove(&t, "p", 1, NULL), TT_OK);
    TT_CHECK_EQ_INT(match(&t, "p/q/r").n, 1);
    TT_CHECK_EQ_INT(match(&t, "p").n, 0);
    TT_CHECK_EQ_INT(tti_trie_remove(&t, "p/q/r", 5, NULL), TT_OK);
    TT_CHECK(t.root == NULL);
    tti_trie_fini(&t, NULL, NULL);
}

static void test_shared(void) {
    tti_trie t;
    tti_trie_init(&t);
    int a = 1, g = 2, h2 = 3, w = 4;
    TT_CHECK_EQ_INT(ins(&t, "a/b", &a), 0);
    TT_CHECK_EQ_INT(ins(&t, "$share/g/a/b", &g), 0);
    TT_CHECK_EQ_INT(ins(&t, "$share/h/a/b", &h2), 0);
    TT_CHECK_EQ_INT(ins(&t, "$share/g/#", &w), 0);
    TT_CHECK_EQ_INT(ins(&t, "$share/g/a/b", &g), 1);
    TT_CHECK_EQ_INT(tti_trie_count(&t), 4);
    hits h = match(&t, "a/b");
    TT_CHECK_EQ_INT(h.n, 4);
    TT_CHECK(has(&h, "a/b") && has(&h, "$share/g/a/b") && has(&h, "$share/h/a/b") &&
             has(&h, "$share/g/#"));
    /* "$share/g/#" is '#' underneath: not for '$' topics */
    TT_CHECK_EQ_INT(match(&t, "$SYS/x").n, 0);
    /* the prefix itself is not a topic level */
    TT_CHECK_EQ_INT(match(&t, "$share/g/a/b").n, 0);
    void *v;
    TT_CHECK(tti_trie_lookup(&t, "$share/h/a/b", 12, &v) && v == &h2);
    TT_CHECK(!tti_trie_lookup(&t, "$share/x/a/b", 12, &v));
    TT_CHECK_EQ_INT(tti_trie_remove(&t, "$share/x/a/b", 12, NULL), TT_ENOTFOUND);
    TT_CHECK_EQ_INT(tti_trie_remove(&t, "a/b", 3, &v), TT_OK);
    TT_CHECK(v == &a);
    h = match(&t, "a/b");
    TT_CHECK_EQ_INT(h.n, 3);
    TT_CHECK(!has(&h, "a/b"));
    /* "$sharex/..." and "$share" as a plain first level are ordinary filters */
    TT_CHECK_EQ_INT(ins(&t, "$sharex/a", &a), 0);
    TT_CHECK_EQ_INT(match(&t, "$sharex/a").n, 1);
    tti_trie_fini(&t, NULL, NULL);
}

static void count_cb(const char *filter, size_t len, void *value, void *arg) {
    (void)filter; (void)len;
    size_t *sum = arg;
    *sum += (size_t)(uintptr_t)value;
}

static void free_cb(void *value, void *arg) {
    size_t *sum = arg;
    *sum += (size_t)(uintptr_t)value;
}

static void test_foreach_fini(void) {
    tti_trie t;
    tti_trie_init(&t);
    size_t sum = 0;
    tti_trie_foreach(&t, count_cb, &sum);
    TT_CHECK_EQ_INT(sum, 0);
    const char *filters[] = { "a", "a/b", "a/+", "a/#", "#", "+", "/", "//", "$share/g/a",
                              "b/c/d/e", "b/c/x", "$SYS/#" };
    size_t n = sizeof filters / sizeof *filters, want = 0;
    for (size_t i = 0; i < n; i++) {
        TT_CHECK_EQ_INT(ins(&t, filters[i], (void *)(uintptr_t)(1u << i)), 0);
        want += 1u << i;
    }
    tti_trie_foreach(&t, count_cb, &sum);
    TT_CHECK_EQ_INT(sum, want); /* every filter exactly once */
    /* many siblings: table growth and iteration across it */
    char buf[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(buf, sizeof buf, "dev/%d/t", i);
        TT_CHECK_EQ_INT(ins(&t, buf, (void *)1), 0);
    }
    sum = 0;
    tti_trie_foreach(&t, count_cb, &sum);
    TT_CHECK_EQ_INT(sum, want + 1000);
    for (int i = 0; i < 1000; i += 2) {
        snprintf(buf, sizeof buf, "dev/%d/t", i);
        TT_CHECK_EQ_INT(tti_trie_remove(&t, buf, strlen(buf), NULL), TT_OK);
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(buf, sizeof buf, "dev/%d/t", i);
        TT_CHECK_EQ_INT(match(&t, buf).n, (i % 2) ? 2 : 1); /* #, and dev/i/t if kept */
    }
    sum = 0;
    tti_trie_fini(&t, free_cb, &sum);
    TT_CHECK_EQ_INT(sum, want + 500);
    TT_CHECK_EQ_INT(tti_trie_count(&t), 0);
    TT_CHECK(t.root == NULL);
    /* reusable after fini */
    TT_CHECK_EQ_INT(ins(&t, "z", (void *)1), 0);
    TT_CHECK_EQ_INT(match(&t, "z").n, 1);
    tti_trie_fini(&t, NULL, NULL);
}

/* Deeper than the walk's on-stack frames (64 levels). */
static void test_deep(void) {
    enum { LEVELS = 300 };
    char filter[2 * LEVELS + 1], topic[2 * LEVELS + 1];
    for (int i = 0; i < LEVELS; i++) {
        filter[2 * i] = '+';
        filter[2 * i + 1] = '/';
        topic[2 * i] = 'x';
        topic[2 * i + 1] = '/';
    }
    filter[2 * LEVELS - 1] = '\0';
    topic[2 * LEVELS - 1] = '\0';
    tti_trie t;
    tti_trie_init(&t);
    TT_CHECK_EQ_INT(ins(&t, filter, (void *)1), 0);
    filter[2 * LEVELS - 2] = '#';
    TT_CHECK_EQ_INT(ins(&t, filter, (void *)2), 0);
    TT_CHECK_EQ_INT(ins(&t, topic, (void *)3), 0);
    TT_CHECK_EQ_INT(ins(&t, "#", (void *)4), 0);
    TT_CHECK_EQ_INT(match(&t, topic).n, 4);
    TT_CHECK_EQ_INT(tti_trie_remove(&t, topic, strlen(topic), NULL), TT_OK);
    TT_CHECK_EQ_INT(match(&t, topic).n, 3);
    tti_trie_fini(&t, NULL, NULL);
}

/* ---- Randomized comparison with a brute-force matcher ------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint32_t rnd(uint32_t n) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* One level of `s` starting at *pos; *pos moves past the '/' (or to len + 1). */
static void next_level(const char *s, size_t len, size_t *pos, const char **lvl, size_t *ll) {
    const char *p = s + *pos;
    const char *slash = memchr(p, '/', len - *pos);
    *ll = slash ? (size_t)(slash - p) : len - *pos;
    *lvl = p;
    *pos += *ll + 1;
}

/* Straight from the spec, level by level. */
static bool brute_match(const char *filter, const char *topic) {
    size_t fl = strlen(filter), tl = strlen(topic);
    if (strncmp(filter, "$share/", 7) == 0) {
        const char *s = strchr(filter + 7, '/');
        filter = s + 1;
        fl = strlen(filter);
    }
    if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#')) return false;
    size_t fp = 0, tp = 0;
    while (fp <= fl) {
        const char *f, *t;
        size_t fn, tn;
        next_level(filter, fl, &fp, &f, &fn);
        if (fn == 1 && f[0] == '#') return true;
        if (tp > tl) return false; /* topic used up, filter goes on */
        next_level(topic, tl, &tp, &t, &tn);
        if (!(fn == 1 && f[0] == '+') && (fn != tn || memcmp(f, t, fn) != 0)) return false;
    }
    return tp > tl;
}

#define NFILTERS 4000
#define NTOPICS  1000 /* x filters x 2 rounds: 4.4M brute-force matches */

static const char *const levels[] = { "a", "b", "c", "", "dev", "$x", "long-level-name" };

static void rand_topic(char *buf, size_t cap) {
    size_t n = 1 + rnd(5), o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *l = levels[rnd(sizeof levels / sizeof *levels)];
        if (i > 0 && strcmp(l, "$x") == 0) l = "x";
        if (n == 1 && !*l) l = "a"; /* topics are not empty */
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? "/" : "", l);
    }
}

static void rand_filter(char *buf, size_t cap) {
    size_t o = 0;
    if (rnd(8) == 0) o += (size_t)snprintf(buf, cap, "$share/g%u/", rnd(3));
    size_t n = 1 + rnd(5);
    for (size_t i = 0; i < n; i++) {
        uint32_t k = rnd(10);
        const char *l = k < 2 ? "+" : (k == 2 && i == n - 1) ? "#"
                                    : levels[rnd(sizeof levels / sizeof *levels)];
        if (n == 1 && !*l) l = "a"; /* neither are filters */
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? "/" : "", l);
    }
}

typedef struct diff_ctx {
    char (*filters)[96];
    bool *live;
    int *seen;
} diff_ctx;

static void diff_cb(const char *filter, size_t len, void *value, void *arg) {
    diff_ctx *d = arg;
    size_t i = (size_t)(uintptr_t)value;
    TT_CHECK(strlen(d->filters[i]) == len && memcmp(d->filters[i], filter, len) == 0);
    d->seen[i]++;
}

static void compare_all(tti_trie *t, diff_ctx *d, size_t nf) {
    char topic[96];
    size_t total = 0;
    for (int k = 0; k < NTOPICS; k++) {
        rand_topic(topic, sizeof topic);
        memset(d->seen, 0, nf * sizeof *d->seen);
        int rc = tti_trie_match(t, topic, strlen(topic), diff_cb, d);
        int want = 0;
        for (size_t i = 0; i < nf; i++) {
            bool m = d->live[i] && brute_match(d->filters[i], topic);
            want += m;
            if (d->seen[i] != (int)m)
                TT_CHECK_MSG(0, "topic \"%s\" filter \"%s\": seen %d, want %d", topic,
                             d->filters[i], d->seen[i], (int)m);
        }
        TT_CHECK_EQ_INT(rc, want);
        total += (size_t)want;
    }
    TT_CHECK(total > 0);
}

static void test_random_vs_brute(void) {
    static char filters[NFILTERS][96];
    static bool live[NFILTERS];
    static int seen[NFILTERS];
    diff_ctx d = { filters, live, seen };
    tti_trie t;
    tti_trie_init(&t);
    size_t nf = 0;
    for (int k = 0; k < NFILTERS; k++) {
        rand_filter(filters[nf], sizeof filters[nf]);
        /* duplicates replace: keep only the first index */
        void *old;
        int rc = tti_trie_insert(&t, filters[nf], strlen(filters[nf]), (void *)(uintptr_t)nf,
                                 &old);
        TT_CHECK_MSG(rc >= 0, "%s: %d", filters[nf], rc);
        if (rc < 0) return;
        if (rc == 1) { /* put the original index back */
            TT_CHECK_EQ_INT(tti_trie_insert(&t, filters[nf], strlen(filters[nf]), old, NULL), 1);
            continue;
        }
        live[nf++] = true;
    }
    TT_CHECK_EQ_INT(tti_trie_count(&t), nf);
    fprintf(stderr, "  %zu distinct filters\n", nf);
    compare_all(&t, &d, nf);

    /* remove half, compare again */
    size_t removed = 0;
    for (size_t i = 0; i < nf; i++) {
        if (rnd(2)) continue;
        void *v;
        TT_CHECK_EQ_INT(tti_trie_remove(&t, filters[i], strlen(filters[i]), &v), TT_OK);
        TT_CHECK((size_t)(uintptr_t)v == i);
        live[i] = false;
        removed++;
    }
    TT_CHECK_EQ_INT(tti_trie_count(&t), nf - removed);
    compare_all(&t, &d, nf);

    /* foreach sees exactly the live ones */
    memset(seen, 0, sizeof seen);
    tti_trie_foreach(&t, diff_cb, &d);
    for (size_t i = 0; i < nf; i++) TT_CHECK_EQ_INT(seen[i], live[i]);

    /* remove the rest: nothing left behind */
    for (size_t i = 0; i < nf; i++)
        if (live[i]) TT_CHECK_EQ_INT(tti_trie_remove(&t, filters[i], strlen(filters[i]), NULL), TT_OK);
    TT_CHECK(t.root == NULL);
    tti_trie_fini(&t, NULL, NULL);
}

TT_TEST_LIST = {
    { "spec_examples", test_spec_examples },
    { "empty_levels", test_empty_levels },
    { "reported_once", test_reported_once },
    { "replace_remove_lookup", test_replace_remove_lookup },
    { "shared", test_shared },
    { "foreach_fini", test_foreach_fini },
    { "deep", test_deep },
    { "random_vs_brute", test_random_vs_brute },
    { NULL, NULL },
};
