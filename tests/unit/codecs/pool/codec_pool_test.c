/* The codec pool: round trips through the actors, malformed input, per-key ordering
 * across actors and threads, admission and deadlines, and shutdown with work pending
 * (the pool's own free, and the runtime's). No sockets, no sleeps. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <tether/tether.h>

#include "tt_scale.h"
#include "tt_test.h"

static const char k_telemetry[] =
    "{\"temperature\":21.5,\"humidity\":45.2,\"pressure\":1013.25,\"battery\":87,"
    "\"rssi\":-67,\"active\":true,\"firmware\":\"1.4.2\",\"errors\":0,"
    "\"uptime\":1234567,\"location\":\"hall-3\"}";

static tt_runtime *new_runtime(uint32_t pool_threads) {
    tt_runtime *rt = NULL;
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.loop_threads = 1;
    o.pool_threads = pool_threads;
    return tt_runtime_new(&rt, &o) == TT_OK ? rt : NULL;
}

static tt_codec_pool *new_pool(tt_runtime *rt, uint32_t actors, uint32_t max_queued) {
    tt_codec_pool *p = NULL;
    tt_codec_pool_opts o = TT_OPTS_INIT(tt_codec_pool_opts);
    o.actors = actors;
    o.max_queued = max_queued;
    return tt_codec_pool_new(rt, &o, &p) == TT_OK ? p : NULL;
}

/* Waits without sleeping a fixed time: continuations signal when the last one ran. */
typedef struct latch {
    pthread_mutex_t m;
    pthread_cond_t c;
    int left;
} latch;

static void latch_init(latch *l, int n) {
    pthread_mutex_init(&l->m, NULL);
    pthread_cond_init(&l->c, NULL);
    l->left = n;
}
static void latch_down(latch *l) {
    pthread_mutex_lock(&l->m);
    if (--l->left == 0) pthread_cond_broadcast(&l->c);
    pthread_mutex_unlock(&l->m);
}
static void latch_wait(latch *l) {
    pthread_mutex_lock(&l->m);
    while (l->left > 0) pthread_cond_wait(&l->c, &l->m);
    pthread_mutex_unlock(&l->m);
}
static void latch_fini(latch *l) {
    pthread_cond_destroy(&l->c);
    pthread_mutex_destroy(&l->m);
}

/* ---- round trips ---------------------------------------------------------------- */

static void round_trip_with(tt_codec_pool *p, const char *name, json_t *v) {
    const tt_codec *c = tt_codec_find(name);
    TT_REQUIRE(c != NULL);
    tt_future *e = tt_codec_pool_encode(p, c, 7, json_incref(v), NULL);
    TT_CHECK_EQ_INT(tt_future_wait(e, 10000), TT_OK);
    size_t len = 0;
    const void *bytes = tt_future_get_bytes(e, &len);
    TT_REQUIRE(bytes != NULL && len > 0);
    TT_CHECK_EQ_INT(tt_future_get_i64(e), (int64_t)len);
    TT_CHECK(tt_future_get_json(e) == NULL);                 /* not a decode future */
    const tt_buf *b = tt_future_get_ptr(e);
    TT_CHECK(b && b->data == bytes && b->len == len);

    tt_future *d = tt_codec_pool_decode(p, c, 7, bytes, len, NULL);
    TT_CHECK_EQ_INT(tt_future_wait(d, 10000), TT_OK);
    json_t *back = tt_future_get_json(d);
    TT_CHECK(back != NULL && json_equal(back, v));
    TT_CHECK(tt_future_get_ptr(d) == back);
    TT_CHECK(tt_future_get_bytes(d, &len) == NULL && len == 0);
    tt_future_free(d);
    tt_future_free(e);
}

static void test_round_trip(void) {
    tt_runtime *rt = new_runtime(2);
    TT_REQUIRE(rt != NULL);
    tt_codec_pool *p = new_pool(rt, 2, 0);
    TT_REQUIRE(p != NULL);
    TT_CHECK_EQ_INT(tt_codec_pool_size(p), 2);
    json_t *v = json_loads(k_telemetry, 0, NULL);
    TT_REQUIRE(v != NULL);

    /* Decode straight from text: the input is copied, so a stack buffer is fine. */
    char text[sizeof k_telemetry];
    memcpy(text, k_telemetry, sizeof text);
    tt_future *d = tt_codec_pool_decode(p, tt_codec_find("json"), 1, text, strlen(text), NULL);
    memset(text, 'x', sizeof text - 1);                     /* the caller's again */
    TT_CHECK_EQ_INT(tt_future_wait(d, 10000), TT_OK);
    TT_CHECK(json_equal(tt_future_get_json(d), v));
    tt_future_free(d);

    round_trip_with(p, "json", v);
    if (tt_codec_find("msgpack")) round_trip_with(p, "msgpack", v);
    json_t *s = json_string("plain text");
    round_trip_with(p, "text", s);
    json_decref(s);

    /* Zero-copy: the pool frees the buffer with the given function. */
    char *owned = strdup(k_telemetry);
    d = tt_codec_pool_decode_owned(p, tt_codec_find("json"), 2, owned, strlen(owned), free, NULL);
    TT_CHECK_EQ_INT(tt_future_wait(d, 10000), TT_OK);
    TT_CHECK(json_equal(tt_future_get_json(d), v));
    tt_future_free(d);
    /* Borrowed: no free function, the buffer stays the caller's until completion. */
    d = tt_codec_pool_decode_owned(p, tt_codec_find("json"), 2, (void *)(uintptr_t)k_telemetry,
                                   strlen(k_telemetry), NULL, NULL);
    TT_CHECK_EQ_INT(tt_future_wait(d, 10000), TT_OK);
    TT_CHECK(json_equal(tt_future_get_json(d), v));
    tt_future_free(d);

    /* The value outlives nothing it should not: keep it past the future with incref. */
    d = tt_codec_pool_decode(p, tt_codec_find("json"), 3, "[1,2,3]", 7, NULL);
    TT_CHECK_EQ_INT(tt_future_wait(d, 10000), TT_OK);
    json_t *kept = json_incref(tt_future_get_json(d));
    tt_future_free(d);
    TT_CHECK_EQ_INT(json_array_size(kept), 3);
    json_decref(kept);

    /* An empty encoding is a success with a non-NULL pointer and length 0. */
    tt_future *e = tt_codec_pool_encode(p, tt_codec_find("text"), 4, json_string(""), NULL);
    TT_CHECK_EQ_INT(tt_future_wait(e, 10000), TT_OK);
    size_t len = 99;
    TT_CHECK(tt_future_get_bytes(e, &len) != NULL && len == 0);
    tt_future_free(e);

    json_decref(v);
    tt_codec_pool_free(p);
    tt_runtime_free(rt);
}

/* ---- errors ----------------------------------------------------------------------- */

static void test_errors(void) {
    tt_runtime *rt = new_runtime(1);
    TT_REQUIRE(rt != NULL);
    tt_codec_pool *p = new_pool(rt, 2, 0);
    TT_REQUIRE(p != NULL);
    const tt_codec *json = tt_codec_find("json");

    /* Malformed JSON: TT_EPROTO, the offset as the detail, the reason as the text. */
    static const char bad[] = "{\"a\":1,\"b\":[true,fals]}";
    tt_codec_error want;
    json_t *none = NULL;
    TT_CHECK_EQ_INT(tt_codec_decode(json, bad, strlen(bad), &none, &want), TT_EPROTO);
    tt_future *d = tt_codec_pool_decode(p, json, 5, bad, strlen(bad), NULL);
    TT_CHECK_EQ_INT(tt_future_wait(d, 10000), TT_EPROTO);
    const char *why = NULL;
    int at = tt_future_detail(d, &why);
    TT_CHECK(at > 0);
    TT_CHECK_EQ_INT(at, (long long)want.offset);
    char expect[64];
    snprintf(expect, sizeof expect, "(at byte %zu)", want.offset);
    TT_CHECK_MSG(why && strstr(why, want.reason) && strstr(why, expect), "detail text: %s",
                 why ? why : "(null)");
    TT_CHECK(tt_future_get_json(d) == NULL);
    tt_future_free(d);

    if (tt_codec_find("msgpack")) {   /* a map header promising more than there is */
        static const unsigned char mp[] = { 0x82, 0xa1, 'a', 0x01 };
        d = tt_codec_pool_decode(p, tt_codec_find("msgpack"), 5, mp, sizeof mp, NULL);
        TT_CHECK_EQ_INT(tt_future_wait(d, 10000), TT_EPROTO);
        TT_CHECK(tt_future_detail(d, &why) >= 0 && why[0] != '\0');
        tt_future_free(d);
    }

    /* A value the codec cannot represent. */
    tt_future *e = tt_codec_pool_encode(p, tt_codec_find("text"), 5, json_integer(3), NULL);
    TT_CHECK_EQ_INT(tt_future_wait(e, 10000), TT_EINVAL);
    TT_CHECK(tt_future_get_bytes(e, NULL) == NULL);
    tt_future_free(e);

    /* Bad arguments fail at once; ownership still passes. */
    e = tt_codec_pool_encode(p, NULL, 1, json_string("x"), NULL);
    TT_CHECK_EQ_INT(tt_future_result(e), TT_EINVAL);
    tt_future_free(e);
    e = tt_codec_pool_encode(NULL, json, 1, json_string("x"), NULL);
    TT_CHECK_EQ_INT(tt_future_result(e), TT_EINVAL);
    tt_future_free(e);
    e = tt_codec_pool_encode(p, json, 1, NULL, NULL);
    TT_CHECK_EQ_INT(tt_future_result(e), TT_EINVAL);
    tt_future_free(e);
    d = tt_codec_pool_decode(p, json, 1, NULL, 3, NULL);
    TT_CHECK_EQ_INT(tt_future_result(d), TT_EINVAL);
    tt_future_free(d);
    d = tt_codec_pool_decode_owned(p, NULL, 1, strdup("{}"), 2, free, NULL);
    TT_CHECK_EQ_INT(tt_future_result(d), TT_EINVAL);
    tt_future_free(d);

    tt_codec_pool *q = NULL;
    tt_codec_pool_opts o = TT_OPTS_INIT(tt_codec_pool_opts);
    o.actors = 2000;
    TT_CHECK_EQ_INT(tt_codec_pool_new(rt, &o, &q), TT_EINVAL);
    TT_CHECK_EQ_INT(tt_codec_pool_new(NULL, NULL, &q), TT_EINVAL);
    TT_CHECK_EQ_INT(tt_codec_pool_new(rt, NULL, &q), TT_OK);   /* one per I/O loop */
    TT_CHECK_EQ_INT(tt_codec_pool_size(q), tt_runtime_loop_count(rt));
    tt_codec_pool_free(q);

    tt_codec_pool_free(p);
    tt_runtime_free(rt);
}

/* ---- ordering ----------------------------------------------------------------------- */

#define NKEYS 64
#define NSUBMITTERS 2

typedef struct key_state {
    pthread_t decoded_on;             /* written on the key's codec thread only */
    atomic_int decoded_on_set;
    int64_t last_seq;                 /* written by the key's continuations only */
    int out_of_order;
    int wrong_thread;
    int failed;
} key_state;

static key_state g_keys[NKEYS];
static latch g_ordered;

/* "pool-seq": 16 bytes = key, seq (host order). Records the decoding thread per key
 * and gives back the sequence number. */
static tt_err seq_decode(void *arg, const void *data, size_t len, json_t **out,
                         tt_codec_error *err) {
    (void)arg;
    uint64_t kv[2];
    if (len != sizeof kv) {
        err->offset = 0;
        snprintf(err->reason, sizeof err->reason, "want 16 bytes");
        return TT_EPROTO;
    }
    memcpy(kv, data, sizeof kv);
    key_state *k = &g_keys[kv[0]];
    if (!atomic_load_explicit(&k->decoded_on_set, memory_order_relaxed)) {
        k->decoded_on = pthread_self();
        atomic_store_explicit(&k->decoded_on_set, 1, memory_order_release);
    } else if (!pthread_equal(k->decoded_on, pthread_self())) {
        k->wrong_thread++;
    }
    *out = json_integer((json_int_t)kv[1]);
    return *out ? TT_OK : TT_ENOMEM;
}

static void seq_then(tt_future *f, void *arg) {
    key_state *k = arg;
    json_t *v = tt_future_get_json(f);
    if (tt_future_result(f) != TT_OK || !v) {
        k->failed++;
    } else {
        int64_t seq = (int64_t)json_integer_value(v);
        if (seq != k->last_seq + 1) k->out_of_order++;
        k->last_seq = seq;
    }
    tt_future_free(f);
    latch_down(&g_ordered);
}

typedef struct submitter {
    tt_codec_pool *pool;
    const tt_codec *codec;
    int first_key;                    /* keys first_key, first_key + NSUBMITTERS, ... */
    int per_key;
    int then_failed;
} submitter;

static void *submit_main(void *arg) {
    submitter *s = arg;
    for (int seq = 1; seq <= s->per_key; seq++) {
        for (int key = s->first_key; key < NKEYS; key += NSUBMITTERS) {
            uint64_t kv[2] = { (uint64_t)key, (uint64_t)seq };
            tt_future *f = tt_codec_pool_decode(s->pool, s->codec, (uint64_t)key, kv, sizeof kv, NULL);
            if (tt_future_then(f, seq_then, &g_keys[key]) != TT_OK) {
                s->then_failed++;
                tt_future_free(f);
                latch_down(&g_ordered);
            }
        }
    }
    return NULL;
}

static void test_per_key_order(void) {
    static const tt_codec_ops ops = { sizeof(tt_codec_ops), NULL, seq_decode };
    tt_err reg = tt_codec_register("pool-seq", &ops, NULL);
    TT_REQUIRE(reg == TT_OK || reg == TT_EBUSY);
    const tt_codec *codec = tt_codec_find("pool-seq");
    memset(g_keys, 0, sizeof g_keys);

    tt_runtime *rt = new_runtime(2);
    TT_REQUIRE(rt != NULL);
    tt_codec_pool *p = new_pool(rt, 4, 0);
    TT_REQUIRE(p != NULL);
    const int per_key = TT_SCALED(2000);
    latch_init(&g_ordered, per_key * NKEYS);

    pthread_t th[NSUBMITTERS];
    submitter sub[NSUBMITTERS];
    for (int i = 0; i < NSUBMITTERS; i++) {
        sub[i] = (submitter){ p, codec, i, per_key, 0 };
        TT_REQUIRE(pthread_create(&th[i], NULL, submit_main, &sub[i]) == 0);
    }
    for (int i = 0; i < NSUBMITTERS; i++) {
        pthread_join(th[i], NULL);
        TT_CHECK_EQ_INT(sub[i].then_failed, 0);
    }
    latch_wait(&g_ordered);

    /* Each key: every continuation ran, in order, and all its work ran on one thread:
     * the thread of its actor. The four actors ran on four different threads. */
    pthread_t actor_thread[4];
    int actor_seen[4] = { 0 };
    int keys_per_actor[4] = { 0 };
    for (int key = 0; key < NKEYS; key++) {
        key_state *k = &g_keys[key];
        TT_CHECK_EQ_INT(k->failed, 0);
        TT_CHECK_EQ_INT(k->out_of_order, 0);
        TT_CHECK_EQ_INT(k->last_seq, per_key);
        TT_CHECK_EQ_INT(k->wrong_thread, 0);
        TT_REQUIRE(atomic_load_explicit(&k->decoded_on_set, memory_order_acquire));
        TT_CHECK(!pthread_equal(k->decoded_on, pthread_self()));
        uint32_t a = tt_codec_pool_actor(p, (uint64_t)key);
        TT_REQUIRE(a < 4);
        keys_per_actor[a]++;
        if (!actor_seen[a]) {
            actor_thread[a] = k->decoded_on;
            actor_seen[a] = 1;
        } else {
            TT_CHECK(pthread_equal(actor_thread[a], k->decoded_on));
        }
    }
    for (int a = 0; a < 4; a++) {
        TT_CHECK_MSG(keys_per_actor[a] > 0, "actor %d got no key", a);
        for (int b = 0; b < a; b++)
            if (actor_seen[a] && actor_seen[b])
                TT_CHECK_MSG(!pthread_equal(actor_thread[a], actor_thread[b]),
                             "actors %d and %d share a thread", a, b);
    }
    latch_fini(&g_ordered);
    tt_codec_pool_free(p);
    tt_runtime_free(rt);
}

/* ---- admission and deadlines: a codec that blocks until the test opens a gate -------- */

static pthread_mutex_t g_gate_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_gate_c = PTHREAD_COND_INITIALIZER;
static int g_gate_open, g_gate_entered;

static tt_err gate_decode(void *arg, const void *data, size_t len, json_t **out,
                          tt_codec_error *err) {
    (void)arg;
    (void)data;
    (void)err;
    pthread_mutex_lock(&g_gate_m);
    g_gate_entered++;
    pthread_cond_broadcast(&g_gate_c);
    while (!g_gate_open) pthread_cond_wait(&g_gate_c, &g_gate_m);
    pthread_mutex_unlock(&g_gate_m);
    *out = json_integer((json_int_t)len);
    return TT_OK;
}

static void test_admission_and_deadline(void) {
    static const tt_codec_ops ops = { sizeof(tt_codec_ops), NULL, gate_decode };
    tt_err reg = tt_codec_register("pool-gate", &ops, NULL);
    TT_REQUIRE(reg == TT_OK || reg == TT_EBUSY);
    const tt_codec *gate = tt_codec_find("pool-gate");
    g_gate_open = 0;
    g_gate_entered = 0;

    tt_runtime *rt = new_runtime(1);
    TT_REQUIRE(rt != NULL);
    tt_codec_pool *p = new_pool(rt, 1, 4);
    TT_REQUIRE(p != NULL);

    tt_future *first = tt_codec_pool_decode(p, gate, 1, "x", 1, NULL);
    pthread_mutex_lock(&g_gate_m);   /* the actor is inside the codec: the queue is empty */
    while (g_gate_entered == 0) pthread_cond_wait(&g_gate_c, &g_gate_m);
    pthread_mutex_unlock(&g_gate_m);

    tt_call_opts co = TT_OPTS_INIT(tt_call_opts);
    co.timeout_ms = 1;
    tt_future *late = tt_codec_pool_decode(p, gate, 1, "xx", 2, &co);
    tt_future *queued[3];
    for (int i = 0; i < 3; i++) queued[i] = tt_codec_pool_decode(p, gate, 1, "xyz", 3, NULL);
    tt_future *over = tt_codec_pool_decode(p, gate, 1, "x", 1, NULL);
    TT_CHECK_EQ_INT(tt_future_result(over), TT_EAGAIN);
    tt_future_free(over);
    /* The wait expires (the codec thread is busy), and so does the 1 ms deadline. */
    TT_CHECK_EQ_INT(tt_future_wait(late, 20), TT_ETIMEDOUT);
    tt_future_cancel(queued[2]);
    TT_CHECK_EQ_INT(tt_future_result(queued[2]), TT_ECANCELED);

    pthread_mutex_lock(&g_gate_m);
    g_gate_open = 1;
    pthread_cond_broadcast(&g_gate_c);
    pthread_mutex_unlock(&g_gate_m);
    TT_CHECK_EQ_INT(tt_future_wait(first, 10000), TT_OK);
    TT_CHECK_EQ_INT(json_integer_value(tt_future_get_json(first)), 1);
    tt_future_free(first);
    TT_CHECK_EQ_INT(tt_future_wait(late, 10000), TT_ETIMEDOUT);
    TT_CHECK(tt_future_done(late));
    TT_CHECK_EQ_INT(tt_future_result(late), TT_ETIMEDOUT);
    tt_future_free(late);
    for (int i = 0; i < 2; i++) {
        TT_CHECK_EQ_INT(tt_future_wait(queued[i], 10000), TT_OK);
        TT_CHECK_EQ_INT(json_integer_value(tt_future_get_json(queued[i])), 3);
        tt_future_free(queued[i]);
    }
    tt_future_free(queued[2]);
    pthread_mutex_lock(&g_gate_m);   /* the cancelled and the late call never ran */
    TT_CHECK_EQ_INT(g_gate_entered, 3);
    pthread_mutex_unlock(&g_gate_m);
    /* The queue drained (but for the cancelled call, perhaps), so calls are admitted. */
    tt_future *again[3];
    for (int i = 0; i < 3; i++) again[i] = tt_codec_pool_decode(p, gate, 1, "x", 1, NULL);
    for (int i = 0; i < 3; i++) {
        TT_CHECK_EQ_INT(tt_future_wait(again[i], 10000), TT_OK);
        tt_future_free(again[i]);
    }
    tt_codec_pool_free(p);
    tt_runtime_free(rt);
}

/* ---- shutdown ------------------------------------------------------------------------- */

typedef struct tally {
    atomic_int ok, closed, other;
    latch done;
} tally;

static void count(tt_future *f, void *arg) {
    tally *t = arg;
    tt_err rc = tt_future_result(f);
    if (rc == TT_OK && tt_future_get_json(f)) atomic_fetch_add(&t->ok, 1);
    else if (rc == TT_OK && tt_future_get_bytes(f, NULL)) atomic_fetch_add(&t->ok, 1);
    else if (rc == TT_ECLOSED) atomic_fetch_add(&t->closed, 1);
    else atomic_fetch_add(&t->other, 1);
    tt_future_free(f);
    latch_down(&t->done);
}

/* Queue decodes and encodes with continuations, plus some futures the caller keeps.
 * All encodes share `v`. jansson's json_incref reads the count without atomics, so
 * every reference is taken before the first call, and the caller releases its own
 * only once the pool is done with the value. */
static void submit_mix(tt_codec_pool *p, int n, tally *t, tt_future **kept, int nkept,
                       json_t *v) {
    const tt_codec *json = tt_codec_find("json");
    for (int i = 0; i < n; i += 3) json_incref(v);
    for (int i = 0; i < n; i++) {
        tt_future *f = i % 3 == 0
            ? tt_codec_pool_encode(p, json, (uint64_t)i, v, NULL)
            : tt_codec_pool_decode(p, json, (uint64_t)i, k_telemetry, sizeof k_telemetry - 1, NULL);
        if (tt_future_then(f, count, t) != TT_OK) {
            tt_future_free(f);
            atomic_fetch_add(&t->other, 1);
            latch_down(&t->done);
        }
    }
    for (int i = 0; i < nkept; i++)
        kept[i] = tt_codec_pool_decode(p, json, (uint64_t)i, k_telemetry, sizeof k_telemetry - 1, NULL);
}

static void test_pool_free_with_work_pending(void) {
    tt_runtime *rt = new_runtime(2);
    TT_REQUIRE(rt != NULL);
    tt_codec_pool *p = new_pool(rt, 2, 0);
    TT_REQUIRE(p != NULL);
    const int n = TT_SCALED(20000);
    tally t = { 0 };
    latch_init(&t.done, n);
    tt_future *kept[16];
    json_t *v = json_loads(k_telemetry, 0, NULL);
    submit_mix(p, n, &t, kept, 16, v);
    tt_codec_pool_free(p);           /* queued work still runs, then the threads join */
    json_decref(v);

    for (int i = 0; i < 16; i++) {    /* already complete when free returns */
        TT_CHECK(tt_future_done(kept[i]));
        TT_CHECK_EQ_INT(tt_future_result(kept[i]), TT_OK);
        TT_CHECK(tt_future_get_json(kept[i]) != NULL);
        tt_future_free(kept[i]);
    }
    latch_wait(&t.done);             /* continuations run on the pool in their own time */
    TT_CHECK_EQ_INT(atomic_load(&t.ok), n);
    TT_CHECK_EQ_INT(atomic_load(&t.other), 0);
    latch_fini(&t.done);
    tt_runtime_free(rt);
}

static void test_runtime_free_with_work_pending(void) {
    tt_runtime *rt = new_runtime(2);
    TT_REQUIRE(rt != NULL);
    tt_codec_pool *p = new_pool(rt, 2, 0);
    TT_REQUIRE(p != NULL);
    const int n = TT_SCALED(20000);
    tally t = { 0 };
    latch_init(&t.done, n);
    tt_future *kept[16];
    json_t *v = json_loads(k_telemetry, 0, NULL);
    submit_mix(p, n, &t, kept, 16, v);
    tt_runtime_free(rt);             /* queued work fails; every continuation has run */
    json_decref(v);

    TT_CHECK_EQ_INT(atomic_load(&t.ok) + atomic_load(&t.closed), n);
    TT_CHECK_EQ_INT(atomic_load(&t.other), 0);
    for (int i = 0; i < 16; i++) {
        TT_CHECK(tt_future_done(kept[i]));
        tt_err rc = tt_future_result(kept[i]);
        TT_CHECK(rc == TT_OK || rc == TT_ECLOSED);
        tt_future_free(kept[i]);
    }
    /* The pool refuses work now; a stolen reference or buffer is still released. */
    tt_future *f = tt_codec_pool_encode(p, tt_codec_find("json"), 1, json_integer(1), NULL);
    TT_CHECK_EQ_INT(tt_future_result(f), TT_ECLOSED);
    tt_future_free(f);
    f = tt_codec_pool_decode_owned(p, tt_codec_find("json"), 1, strdup("1"), 1, free, NULL);
    TT_CHECK_EQ_INT(tt_future_result(f), TT_ECLOSED);
    tt_future_free(f);
    tt_codec_pool_free(p);           /* only memory is left to release */
    latch_wait(&t.done);
    latch_fini(&t.done);
}

/* Many short-lived pools: threads and strands come and go without leaks. */
static void test_pool_churn(void) {
    tt_runtime *rt = new_runtime(1);
    TT_REQUIRE(rt != NULL);
    for (int i = 0; i < 20; i++) {
        tt_codec_pool *p = new_pool(rt, (uint32_t)(1 + i % 3), 0);
        TT_REQUIRE(p != NULL);
        tt_future *f = tt_codec_pool_decode(p, tt_codec_find("json"), (uint64_t)i, "[1]", 3, NULL);
        if (i % 2) TT_CHECK_EQ_INT(tt_future_wait(f, 10000), TT_OK);
        tt_codec_pool_free(p);
        TT_CHECK_EQ_INT(tt_future_result(f), TT_OK);
        tt_future_free(f);
    }
    tt_runtime_free(rt);
}

TT_TEST_LIST = {
    { "round_trip", test_round_trip },
    { "errors", test_errors },
    { "per_key_order", test_per_key_order },
    { "admission_and_deadline", test_admission_and_deadline },
    { "pool_free_with_work_pending", test_pool_free_with_work_pending },
    { "runtime_free_with_work_pending", test_runtime_free_with_work_pending },
    { "pool_churn", test_pool_churn },
    { NULL, NULL },
};
