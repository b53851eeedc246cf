/* The codec registry (lookups, user codecs, concurrency) and the "raw"/"text" codecs. */
#include <pthread.h>
#include <stdatomic.h>
#include <tether/codec.h>

#include "tt_test.h"
#include "../codec_test_util.h"

static void test_builtins(void) {
    const char *names[] = { "json", "json-iotf", "raw", "text", "utf8",
#ifdef TT_TEST_HAVE_MSGPACK
                            "msgpack",
#endif
#ifdef TT_TEST_HAVE_PROTOBUF
                            "wirepas",
#endif
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const tt_codec *c = NULL;
        TT_CHECK_MSG(tt_codec_lookup(names[i], &c) == TT_OK, "%s", names[i]);
        TT_CHECK(c != NULL && c == tt_codec_find(names[i]));
        TT_CHECK_EQ_STR(tt_codec_name(c), names[i]);
    }
}

static void test_unknown(void) {
    const tt_codec *c = (const tt_codec *)&c;
    TT_CHECK_EQ_INT(tt_codec_lookup("xml", &c), TT_ENOTFOUND);
    TT_CHECK(c == NULL);
    TT_CHECK(tt_codec_find("JSON") == NULL);   /* names are case-sensitive */
    TT_CHECK(tt_codec_find("") == NULL);
    TT_CHECK(tt_codec_find(NULL) == NULL);
    TT_CHECK_EQ_INT(tt_codec_lookup(NULL, &c), TT_EINVAL);
    TT_CHECK_EQ_INT(tt_codec_lookup("json", NULL), TT_EINVAL);
}

/* A user codec: "x:" + JSON text of the value, and back. */
static atomic_int g_calls;
static tt_err prefix_encode(void *arg, const json_t *v, tt_buf *out) {
    atomic_fetch_add(&g_calls, 1);
    const char *prefix = arg;
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) return TT_ENOMEM;
    tt_err rc = tt_buf_append(out, prefix, strlen(prefix));
    if (rc == TT_OK) rc = tt_buf_append(out, text, strlen(text));
    free(text);
    return rc;
}
static tt_err prefix_decode(void *arg, const void *data, size_t len, json_t **out,
                            tt_codec_error *err) {
    const char *prefix = arg;
    size_t pl = strlen(prefix);
    atomic_fetch_add(&g_calls, 1);
    if (len < pl || memcmp(data, prefix, pl) != 0) {
        err->offset = 0;
        snprintf(err->reason, sizeof err->reason, "no prefix");
        return TT_EPROTO;
    }
    json_t *v = json_loadb((const char *)data + pl, len - pl, JSON_DECODE_ANY, NULL);
    if (!v) return TT_EPROTO;
    *out = v;
    return TT_OK;
}

static void test_user_codec(void) {
    tt_codec_ops ops = TT_OPTS_INIT(tt_codec_ops);
    ops.encode = prefix_encode;
    ops.decode = prefix_decode;
    static char prefix[] = "x:";
    TT_REQUIRE(tt_codec_register("x-prefixed", &ops, prefix) == TT_OK);
    const tt_codec *c = tt_codec_find("x-prefixed");
    TT_REQUIRE(c != NULL);
    json_t *v = json_pack("{s:i}", "a", 1);
    tt_buf b = TT_BUF_INIT;
    TT_REQUIRE(tt_codec_encode(c, v, &b) == TT_OK);
    TT_CHECK(b.len == 9 && memcmp(b.data, "x:{\"a\":1}", 9) == 0);
    json_t *back = NULL;
    TT_CHECK(tt_codec_decode(c, b.data, b.len, &back, NULL) == TT_OK && json_equal(v, back));
    json_decref(back);
    tt_codec_error err;
    TT_CHECK_EQ_INT(tt_codec_decode(c, "{}", 2, &back, &err), TT_EPROTO);
    TT_CHECK_EQ_STR(err.reason, "no prefix");
    TT_CHECK(atomic_load(&g_calls) == 3);

    /* Duplicates, including built-in names, are refused. */
    TT_CHECK_EQ_INT(tt_codec_register("x-prefixed", &ops, prefix), TT_EBUSY);
    TT_CHECK_EQ_INT(tt_codec_register("json", &ops, NULL), TT_EBUSY);
    TT_CHECK(tt_codec_find("x-prefixed") == c);

    /* Bad names and ops. */
    TT_CHECK_EQ_INT(tt_codec_register("", &ops, NULL), TT_EINVAL);
    TT_CHECK_EQ_INT(tt_codec_register("a/b", &ops, NULL), TT_EINVAL);
    TT_CHECK_EQ_INT(tt_codec_register("a+", &ops, NULL), TT_EINVAL);
    TT_CHECK_EQ_INT(tt_codec_register("a b", &ops, NULL), TT_EINVAL);
    TT_CHECK_EQ_INT(tt_codec_register(NULL, &ops, NULL), TT_EINVAL);
    TT_CHECK_EQ_INT(tt_codec_register("ok", NULL, NULL), TT_EINVAL);
    char longname[80];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    TT_CHECK_EQ_INT(tt_codec_register(longname, &ops, NULL), TT_EINVAL);
    tt_codec_ops none = TT_OPTS_INIT(tt_codec_ops);
    TT_CHECK_EQ_INT(tt_codec_register("none", &none, NULL), TT_EINVAL);
    tt_codec_ops small = ops;
    small.size = 4;
    TT_CHECK_EQ_INT(tt_codec_register("small", &small, NULL), TT_EINVAL);

    /* One-way codecs. */
    tt_codec_ops enc_only = TT_OPTS_INIT(tt_codec_ops);
    enc_only.encode = prefix_encode;
    TT_REQUIRE(tt_codec_register("enc-only", &enc_only, prefix) == TT_OK);
    TT_CHECK_EQ_INT(tt_codec_decode(tt_codec_find("enc-only"), "x:1", 3, &back, NULL),
                    TT_ENOTSUP);
    json_decref(v);
    tt_buf_free(&b);
}

/* Four threads look up built-in and user names while the main thread registers. */
enum { N_REG = 200 };
static atomic_int g_registered;
static atomic_bool g_stop;

static void *lookup_thread(void *arg) {
    long found = 0;
    char name[32];
    (void)arg;
    while (!atomic_load(&g_stop)) {
        int n = atomic_load(&g_registered);
        for (int i = 0; i < n; i++) {
            snprintf(name, sizeof name, "conc-%d", i);
            const tt_codec *c = tt_codec_find(name);
            if (!c || strcmp(tt_codec_name(c), name) != 0) return (void *)-1L;
            found++;
        }
        const tt_codec *j = tt_codec_find("json");
        json_t *v = NULL;
        if (!j || tt_codec_decode(j, "[1]", 3, &v, NULL) != TT_OK) return (void *)-1L;
        json_decref(v);
        if (tt_codec_find("conc-never")) return (void *)-1L;
    }
    return (void *)found;
}

static void test_concurrent_lookups(void) {
    pthread_t th[4];
    for (int i = 0; i < 4; i++) TT_REQUIRE(pthread_create(&th[i], NULL, lookup_thread, NULL) == 0);
    tt_codec_ops ops = TT_OPTS_INIT(tt_codec_ops);
    ops.encode = prefix_encode;
    static char prefix[] = "c:";
    char name[32];
    for (int i = 0; i < N_REG; i++) {
        snprintf(name, sizeof name, "conc-%d", i);
        TT_CHECK(tt_codec_register(name, &ops, prefix) == TT_OK);
        atomic_store(&g_registered, i + 1);
    }
    atomic_store(&g_stop, true);
    for (int i = 0; i < 4; i++) {
        void *res;
        pthread_join(th[i], &res);
        TT_CHECK(res != (void *)-1L);
    }
    TT_CHECK(tt_codec_find("conc-0") && tt_codec_find("conc-199"));
}

static void test_raw(void) {
    const tt_codec *c = tt_codec_find("raw");
    const unsigned char bytes[] = { 0, 1, 2, 0xff, 0xfe, 'a' };
    json_t *v = NULL;
    TT_REQUIRE(tt_codec_decode(c, bytes, sizeof bytes, &v, NULL) == TT_OK);
    TT_CHECK_EQ_STR(json_string_value(json_object_get(v, "$bin")), "AAEC//5h");
    tt_buf b = TT_BUF_INIT;
    TT_REQUIRE(tt_codec_encode(c, v, &b) == TT_OK);
    TT_CHECK(b.len == sizeof bytes && memcmp(b.data, bytes, b.len) == 0);
    json_decref(v);
    /* Empty payload. */
    TT_REQUIRE(tt_codec_decode(c, NULL, 0, &v, NULL) == TT_OK);
    TT_CHECK_EQ_STR(json_string_value(json_object_get(v, "$bin")), "");
    TT_CHECK(tt_codec_encode(c, v, &b) == TT_OK && b.len == 0);
    json_decref(v);
    /* A string goes out byte for byte. */
    v = json_stringn("a\0b", 3);
    TT_CHECK(tt_codec_encode(c, v, &b) == TT_OK && b.len == 3 && memcmp(b.data, "a\0b", 3) == 0);
    json_decref(v);
    /* Anything else, or bad base64, is refused. */
    v = json_integer(1);
    TT_CHECK_EQ_INT(tt_codec_encode(c, v, &b), TT_EINVAL);
    json_decref(v);
    const char *bad64[] = { "A", "AA=", "AB==", "AAB=", "A===", "AA AA", "****" };
    for (size_t i = 0; i < sizeof bad64 / sizeof bad64[0]; i++) {
        v = json_pack("{s:s}", "$bin", bad64[i]);
        TT_CHECK_MSG(tt_codec_encode(c, v, &b) == TT_EINVAL, "%s", bad64[i]);
        json_decref(v);
    }
    /* Every length 0..64 round-trips. */
    unsigned char all[64];
    for (int i = 0; i < 64; i++) all[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof all; n++) {
        TT_REQUIRE(tt_codec_decode(c, all, n, &v, NULL) == TT_OK);
        TT_CHECK(tt_codec_encode(c, v, &b) == TT_OK && b.len == n &&
                 (n == 0 || memcmp(b.data, all, n) == 0));
        json_decref(v);
    }
    tt_buf_free(&b);
}

static void test_text(void) {
    const tt_codec *c = tt_codec_find("text");
    json_t *v = NULL;
    tt_codec_error err;
    const char hello[] = "h\xc3\xa9llo \xe2\x82\xac";
    TT_REQUIRE(tt_codec_decode(c, hello, sizeof hello - 1, &v, NULL) == TT_OK);
    TT_CHECK_EQ_STR(json_string_value(v), hello);
    TT_CHECK(ct_round_trip("text", v));
    TT_CHECK(ct_round_trip("utf8", v));
    json_decref(v);
    TT_REQUIRE(tt_codec_decode(c, "", 0, &v, NULL) == TT_OK);
    TT_CHECK(json_string_length(v) == 0);
    json_decref(v);
    const char bad[] = "abc\xe2\x82";        /* truncated euro sign */
    TT_CHECK_EQ_INT(tt_codec_decode(c, bad, sizeof bad - 1, &v, &err), TT_EPROTO);
    TT_CHECK_EQ_INT(err.offset, 3);
    const char *invalid[] = { "\x80", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                              "\xf5\x80\x80\x80", "\xe0\x80\x80", "ok\xff" };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        TT_CHECK_MSG(tt_codec_decode(c, invalid[i], strlen(invalid[i]), &v, &err) == TT_EPROTO,
                     "case %zu", i);
    tt_buf b = TT_BUF_INIT;
    v = json_pack("[s]", "x");
    TT_CHECK_EQ_INT(tt_codec_encode(c, v, &b), TT_EINVAL);
    json_decref(v);
    tt_buf_free(&b);
}

TT_TEST_LIST = {
    { "builtins", test_builtins },
    { "unknown", test_unknown },
    { "user_codec", test_user_codec },
    { "concurrent_lookups", test_concurrent_lookups },
    { "raw", test_raw },
    { "text", test_text },
    { NULL, NULL },
};
