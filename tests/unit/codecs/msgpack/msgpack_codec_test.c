/* The "msgpack" codec: exact bytes, every type, 64-bit integers, limits, bad input. */
#include <math.h>
#include <tether/codec.h>

#include "tt_test.h"
#include "../codec_test_util.h"

static const tt_codec *mp(void) { return tt_codec_find("msgpack"); }

static int encodes_as(json_t *v, const unsigned char *want, size_t n) {
    tt_buf b = TT_BUF_INIT;
    int ok = tt_codec_encode(mp(), v, &b) == TT_OK && b.len == n && memcmp(b.data, want, n) == 0;
    if (!ok) {
        fprintf(stderr, "  got");
        for (size_t i = 0; i < b.len; i++) fprintf(stderr, " %02x", b.data[i]);
        fputc('\n', stderr);
    }
    tt_buf_free(&b);
    json_decref(v);
    return ok;
}

/* Decode `n` bytes and compare with the JSON text `want`. */
static int decodes_as(const unsigned char *p, size_t n, const char *want) {
    json_t *v = NULL, *w = json_loads(want, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    int ok = tt_codec_decode(mp(), p, n, &v, NULL) == TT_OK && w && json_equal(v, w);
    if (!ok) {
        char *got = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
        fprintf(stderr, "  got %s, want %s\n", got ? got : "(error)", want);
        free(got);
    }
    json_decref(v);
    json_decref(w);
    return ok;
}

static tt_err decode_err(const unsigned char *p, size_t n, size_t *offset) {
    json_t *v = NULL;
    tt_codec_error err = { 12345, "" };
    tt_err rc = tt_codec_decode(mp(), p, n, &v, &err);
    json_decref(v);
    if (offset) *offset = err.offset;
    return rc;
}

#define BYTES(...) ((const unsigned char[]){ __VA_ARGS__ }), sizeof((const unsigned char[]){ __VA_ARGS__ })

static void test_exact_bytes(void) {
    TT_CHECK(encodes_as(json_pack("{s:i}", "a", 1), BYTES(0x81, 0xa1, 'a', 0x01)));
    TT_CHECK(encodes_as(json_pack("[n,b,b]", 1, 0), BYTES(0x93, 0xc0, 0xc3, 0xc2)));
    TT_CHECK(encodes_as(json_integer(-1), BYTES(0xff)));
    TT_CHECK(encodes_as(json_integer(-33), BYTES(0xd0, 0xdf)));
    TT_CHECK(encodes_as(json_integer(200), BYTES(0xcc, 0xc8)));
    TT_CHECK(encodes_as(json_integer(INT64_MIN),
                        BYTES(0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0)));
    TT_CHECK(encodes_as(json_integer(INT64_MAX),
                        BYTES(0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)));
    TT_CHECK(encodes_as(json_pack("{s:s}", "$u64", "18446744073709551615"),
                        BYTES(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)));
    TT_CHECK(encodes_as(json_real(1.5), BYTES(0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0)));
    TT_CHECK(encodes_as(json_string(""), BYTES(0xa0)));
    TT_CHECK(encodes_as(json_object(), BYTES(0x80)));
    TT_CHECK(encodes_as(json_array(), BYTES(0x90)));
    TT_CHECK(encodes_as(json_pack("{s:s}", "$bin", "AQL/"), BYTES(0xc4, 0x03, 0x01, 0x02, 0xff)));
    TT_CHECK(encodes_as(json_pack("{s:s}", "$bin", ""), BYTES(0xc4, 0x00)));
    /* Not a tag: two members, or a non-string member. */
    TT_CHECK(encodes_as(json_pack("{s:i}", "$bin", 1), BYTES(0x81, 0xa4, '$', 'b', 'i', 'n', 0x01)));
}

static void test_every_type_decodes(void) {
    TT_CHECK(decodes_as(BYTES(0x00), "0"));
    TT_CHECK(decodes_as(BYTES(0x7f), "127"));
    TT_CHECK(decodes_as(BYTES(0xe0), "-32"));
    TT_CHECK(decodes_as(BYTES(0xcc, 0xff), "255"));
    TT_CHECK(decodes_as(BYTES(0xcd, 0xff, 0xff), "65535"));
    TT_CHECK(decodes_as(BYTES(0xce, 0xff, 0xff, 0xff, 0xff), "4294967295"));
    TT_CHECK(decodes_as(BYTES(0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
                        "9223372036854775807"));
    TT_CHECK(decodes_as(BYTES(0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0),
                        "{\"$u64\":\"9223372036854775808\"}"));
    TT_CHECK(decodes_as(BYTES(0xd0, 0x80), "-128"));
    TT_CHECK(decodes_as(BYTES(0xd1, 0x80, 0x00), "-32768"));
    TT_CHECK(decodes_as(BYTES(0xd2, 0x80, 0, 0, 0), "-2147483648"));
    TT_CHECK(decodes_as(BYTES(0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0), "-9223372036854775808"));
    TT_CHECK(decodes_as(BYTES(0xca, 0x3f, 0xc0, 0, 0), "1.5"));
    TT_CHECK(decodes_as(BYTES(0xcb, 0xbf, 0xf8, 0, 0, 0, 0, 0, 0), "-1.5"));
    TT_CHECK(decodes_as(BYTES(0xc0), "null"));
    TT_CHECK(decodes_as(BYTES(0xc2), "false"));
    TT_CHECK(decodes_as(BYTES(0xc3), "true"));
    TT_CHECK(decodes_as(BYTES(0xa3, 'a', 'b', 'c'), "\"abc\""));
    TT_CHECK(decodes_as(BYTES(0xd9, 0x01, 'x'), "\"x\""));
    TT_CHECK(decodes_as(BYTES(0xda, 0x00, 0x01, 'x'), "\"x\""));
    TT_CHECK(decodes_as(BYTES(0xdb, 0, 0, 0, 0x01, 'x'), "\"x\""));
    TT_CHECK(decodes_as(BYTES(0xc4, 0x02, 0x00, 0xff), "{\"$bin\":\"AP8=\"}"));
    TT_CHECK(decodes_as(BYTES(0xc5, 0x00, 0x01, 0x41), "{\"$bin\":\"QQ==\"}"));
    TT_CHECK(decodes_as(BYTES(0xc6, 0, 0, 0, 0x00), "{\"$bin\":\"\"}"));
    TT_CHECK(decodes_as(BYTES(0xdc, 0x00, 0x02, 0x01, 0x02), "[1,2]"));
    TT_CHECK(decodes_as(BYTES(0xdd, 0, 0, 0, 0x01, 0xc0), "[null]"));
    TT_CHECK(decodes_as(BYTES(0xde, 0x00, 0x01, 0xa1, 'k', 0x05), "{\"k\":5}"));
    TT_CHECK(decodes_as(BYTES(0xdf, 0, 0, 0, 0x01, 0xa1, 'k', 0x90), "{\"k\":[]}"));
    /* Integer keys become their decimal text. */
    TT_CHECK(decodes_as(BYTES(0x83, 0x01, 0xa1, 'a', 0xff, 0xa1, 'b', 0xd1, 0x01, 0x00, 0xc0),
                        "{\"1\":\"a\",\"-1\":\"b\",\"256\":null}"));
    /* A string with a NUL byte. */
    TT_CHECK(decodes_as(BYTES(0xa3, 'a', 0x00, 'b'), "\"a\\u0000b\""));
}

static void test_int64_exact(void) {
    const json_int_t ints[] = { INT64_MIN, INT64_MIN + 1, INT64_MAX, INT64_MAX - 1, 0, -1, 1,
                                INT32_MIN, (json_int_t)INT32_MIN - 1, UINT32_MAX,
                                (json_int_t)UINT32_MAX + 1, -129, 128, 32767, -32769 };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        json_t *v = json_integer(ints[i]);
        TT_CHECK_MSG(ct_round_trip("msgpack", v), "%lld", (long long)ints[i]);
        json_decref(v);
    }
    const char *u64s[] = { "9223372036854775808", "18446744073709551615", "12345678901234567890" };
    for (size_t i = 0; i < sizeof u64s / sizeof u64s[0]; i++) {
        json_t *v = json_pack("{s:s}", "$u64", u64s[i]);
        TT_CHECK_MSG(ct_round_trip("msgpack", v), "%s", u64s[i]);
        json_decref(v);
    }
    /* Other "$u64" spellings are ordinary maps, so they too come back unchanged. */
    const char *plain[] = { "", "-1", "18446744073709551616", "1x", " 1", "5",
                            "9223372036854775807", "09223372036854775808" };
    tt_buf b = TT_BUF_INIT;
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        json_t *v = json_pack("{s:s}", "$u64", plain[i]);
        TT_CHECK_MSG(tt_codec_encode(mp(), v, &b) == TT_OK && b.data[0] == 0x81, "\"%s\"", plain[i]);
        TT_CHECK_MSG(ct_round_trip("msgpack", v), "\"%s\"", plain[i]);
        json_decref(v);
    }
    tt_buf_free(&b);
}

static void test_same_as_json(void) {
    const char *docs[] = {
        ("{\"ts\":1700000000000,\"values\":{\"temperature\":21.5,\"humidity\":40,"
         "\"active\":true,\"name\":\"sensor-1\",\"tags\":[\"a\",\"b\"],\"none\":null}}"),
        "[1,-1,0.25,\"\",{},[],[[]],{\"\":{}}]",
        "\"just a string \xc3\xa9\"",
        "-9223372036854775808",
    };
    const tt_codec *j = tt_codec_find("json");
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        json_t *v = NULL, *back = NULL;
        tt_buf b = TT_BUF_INIT, t = TT_BUF_INIT;
        TT_REQUIRE(tt_codec_decode(j, docs[i], strlen(docs[i]), &v, NULL) == TT_OK);
        TT_CHECK(tt_codec_encode(mp(), v, &b) == TT_OK);
        TT_CHECK(tt_codec_decode(mp(), b.data, b.len, &back, NULL) == TT_OK);
        TT_CHECK(json_equal(v, back));
        TT_CHECK(tt_codec_encode(j, back, &t) == TT_OK);
        TT_CHECK_MSG(t.len == strlen(docs[i]) && memcmp(t.data, docs[i], t.len) == 0,
                     "%.*s", (int)t.len, (char *)t.data);
        json_decref(v);
        json_decref(back);
        tt_buf_free(&b);
        tt_buf_free(&t);
    }
}

static void test_depth_limit(void) {
    json_t *ok = ct_nested(TT_CODEC_MAX_DEPTH), *deep = ct_nested(TT_CODEC_MAX_DEPTH + 1);
    tt_buf b = TT_BUF_INIT;
    TT_CHECK(ct_round_trip("msgpack", ok));
    TT_CHECK_EQ_INT(tt_codec_encode(mp(), deep, &b), TT_EINVAL);
    unsigned char text[TT_CODEC_MAX_DEPTH + 2];
    /* 65 one-element arrays around 1: refused at the 65th header. */
    memset(text, 0x91, TT_CODEC_MAX_DEPTH + 1);
    text[TT_CODEC_MAX_DEPTH + 1] = 0x01;
    size_t off;
    TT_CHECK_EQ_INT(decode_err(text, sizeof text, &off), TT_EPROTO);
    TT_CHECK_EQ_INT(off, TT_CODEC_MAX_DEPTH);
    TT_CHECK_EQ_INT(decode_err(text + 1, sizeof text - 1, &off), TT_OK);
    json_decref(ok);
    json_decref(deep);
    tt_buf_free(&b);
}

static void test_huge_array(void) {
    json_t *a = json_array();
    for (int i = 0; i < 100000; i++)
        json_array_append_new(a, i % 2 ? json_integer((json_int_t)i * 100003) : json_real(i / 7.0));
    TT_CHECK(ct_round_trip("msgpack", a));
    json_decref(a);
}

static void test_huge_declared_lengths(void) {
    size_t off;
    /* Each claims far more than is present: refused at the header, nothing reserved. */
    TT_CHECK_EQ_INT(decode_err(BYTES(0xdd, 0xff, 0xff, 0xff, 0xff), &off), TT_EPROTO);
    TT_CHECK_EQ_INT(off, 0);
    TT_CHECK_EQ_INT(decode_err(BYTES(0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0), &off), TT_EPROTO);
    TT_CHECK_EQ_INT(off, 0);
    TT_CHECK_EQ_INT(decode_err(BYTES(0xc6, 0xff, 0xff, 0xff, 0xff, 0x00), &off), TT_EPROTO);
    TT_CHECK_EQ_INT(decode_err(BYTES(0xdb, 0xff, 0xff, 0xff, 0xff, 'a'), &off), TT_EPROTO);
    TT_CHECK_EQ_INT(decode_err(BYTES(0x91, 0xdc, 0xff, 0xff, 0x01, 0x02), &off), TT_EPROTO);
    TT_CHECK_EQ_INT(off, 1);
    /* A map of n entries needs 2n bytes. */
    TT_CHECK_EQ_INT(decode_err(BYTES(0x82, 0xa0, 0xc0, 0xa0), &off), TT_EPROTO);
}

static void test_nan_inf_refused(void) {
    size_t off;
    TT_CHECK_EQ_INT(decode_err(BYTES(0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0), &off), TT_EPROTO);
    TT_CHECK_EQ_INT(decode_err(BYTES(0x91, 0xca, 0x7f, 0x80, 0, 0), &off), TT_EPROTO);
    TT_CHECK_EQ_INT(off, 1);
    TT_CHECK_EQ_INT(decode_err(BYTES(0xcb, 0xff, 0xf0, 0, 0, 0, 0, 0, 0), &off), TT_EPROTO);
}

static void test_malformed(void) {
    size_t off;
    TT_CHECK_EQ_INT(decode_err(NULL, 0, &off), TT_EPROTO);
    TT_CHECK_EQ_INT(off, 0);
    TT_CHECK_EQ_INT(decode_err(BYTES(0xc1), &off), TT_EPROTO);
    TT_CHECK_EQ_INT(decode_err(BYTES(0x01, 0x02), &off), TT_EPROTO);   /* trailing */
    TT_CHECK_EQ_INT(off, 1);
    TT_CHECK_EQ_INT(decode_err(BYTES(0xa2, 'a', 0xff), &off), TT_EPROTO);   /* bad UTF-8 */
    TT_CHECK_EQ_INT(off, 2);
    TT_CHECK_EQ_INT(decode_err(BYTES(0x81, 0xc3, 0x01), &off), TT_EPROTO);  /* bool key */
    TT_CHECK_EQ_INT(off, 1);
    TT_CHECK_EQ_INT(decode_err(BYTES(0x81, 0xca, 0, 0, 0, 0, 0x01), &off), TT_EPROTO);
    TT_CHECK_EQ_INT(decode_err(BYTES(0x81, 0x90, 0x01), &off), TT_EPROTO);  /* array key */
    TT_CHECK_EQ_INT(decode_err(BYTES(0xd4, 0x01, 0x00), &off), TT_ENOTSUP);  /* ext */
    TT_CHECK_EQ_INT(decode_err(BYTES(0xc7, 0x00, 0x05), &off), TT_ENOTSUP);
    TT_CHECK_EQ_INT(decode_err(BYTES(0xcd, 0x01), &off), TT_EPROTO);
    TT_CHECK_EQ_INT(off, 0);
}

static void mp_corpus_case(const char *name, const unsigned char *data, size_t len, long want,
                           void *arg) {
    size_t off;
    tt_err rc = decode_err(data, len, &off);
    (void)arg;
    TT_CHECK_MSG(rc == TT_EPROTO, "%s: %s", name, tt_err_name(rc));
    TT_CHECK_MSG(off <= len, "%s: offset %zu > %zu", name, off, len);
    if (want >= 0) TT_CHECK_MSG((long)off == want, "%s: offset %zu", name, off);
}

static void test_malformed_corpus(void) {
    TT_CHECK(ct_for_corpus(TT_CODEC_CORPUS "/msgpack", mp_corpus_case, NULL) >= 10);
}

static void test_invalid_values(void) {
    tt_buf b = TT_BUF_INIT;
    json_t *s = json_stringn_nocheck("\xff", 1);
    TT_CHECK_EQ_INT(tt_codec_encode(mp(), s, &b), TT_EINVAL);
    json_decref(s);
    /* "$bin" that is not canonical base64 stays a map. */
    const char *plain[] = { "not base64!", "AB==", "A", "QQ" };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        json_t *bin = json_pack("{s:s}", "$bin", plain[i]);
        TT_CHECK(tt_codec_encode(mp(), bin, &b) == TT_OK && b.data[0] == 0x81);
        TT_CHECK(ct_round_trip("msgpack", bin));
        json_decref(bin);
    }
    tt_buf_free(&b);
}

TT_TEST_LIST = {
    { "exact_bytes", test_exact_bytes },
    { "every_type_decodes", test_every_type_decodes },
    { "int64_exact", test_int64_exact },
    { "same_as_json", test_same_as_json },
    { "depth_limit", test_depth_limit },
    { "huge_array", test_huge_array },
    { "huge_declared_lengths", test_huge_declared_lengths },
    { "nan_inf_refused", test_nan_inf_refused },
    { "malformed", test_malformed },
    { "malformed_corpus", test_malformed_corpus },
    { "invalid_values", test_invalid_values },
    { NULL, NULL },
};
