/* The "json" and "json-iotf" codecs: exact output, round trips, limits, bad input. */
#include <math.h>
#include <tether/codec.h>

#include "tt_test.h"
#include "../codec_test_util.h"

static const tt_codec *json_codec(void) { return tt_codec_find("json"); }

/* Encode and compare the text exactly. */
static int encodes_as(json_t *v, const char *want) {
    tt_buf b = TT_BUF_INIT;
    int ok = tt_codec_encode(json_codec(), v, &b) == TT_OK && b.len == strlen(want) &&
             memcmp(b.data, want, b.len) == 0;
    if (!ok) fprintf(stderr, "  got \"%.*s\", want \"%s\"\n", (int)b.len, (char *)b.data, want);
    tt_buf_free(&b);
    json_decref(v);
    return ok;
}

static void test_compact_output(void) {
    TT_CHECK(encodes_as(json_pack("{s:i,s:[b,n],s:s}", "a", 1, "b", 1, "c", "x\"y\\z"),
                        "{\"a\":1,\"b\":[true,null],\"c\":\"x\\\"y\\\\z\"}"));
    TT_CHECK(encodes_as(json_object(), "{}"));
    TT_CHECK(encodes_as(json_array(), "[]"));
    TT_CHECK(encodes_as(json_string(""), "\"\""));
    TT_CHECK(encodes_as(json_string("\n\t\x01\x1f/\xc3\xa9"), "\"\\n\\t\\u0001\\u001f/\xc3\xa9\""));
    TT_CHECK(encodes_as(json_stringn("a\0b", 3), "\"a\\u0000b\""));
    TT_CHECK(encodes_as(json_integer(INT64_MIN), "-9223372036854775808"));
    TT_CHECK(encodes_as(json_integer(INT64_MAX), "9223372036854775807"));
    TT_CHECK(encodes_as(json_real(0.1), "0.1"));
    TT_CHECK(encodes_as(json_real(1.0), "1.0"));
    TT_CHECK(encodes_as(json_real(-2.5), "-2.5"));
    TT_CHECK(encodes_as(json_real(1e300), "1e+300"));
    TT_CHECK(encodes_as(json_real(1.0 / 3.0), "0.3333333333333333"));
}

static void test_scalars_round_trip(void) {
    const double reals[] = { 0.0, -0.0, 0.1, 1.0 / 3.0, 1e300, -1e-300, 5e-324,
                             2.2250738585072014e-308, 1.7976931348623157e308,
                             123456789.123456789, 9007199254740993.0 };
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        json_t *v = json_real(reals[i]);
        TT_CHECK_MSG(ct_round_trip("json", v), "real %.17g", reals[i]);
        /* jansson compares reals with ==; check the bits too. */
        tt_buf b = TT_BUF_INIT;
        json_t *back = NULL;
        TT_CHECK(tt_codec_encode(json_codec(), v, &b) == TT_OK);
        TT_CHECK(tt_codec_decode(json_codec(), b.data, b.len, &back, NULL) == TT_OK);
        TT_CHECK(json_is_real(back) && memcmp(&reals[i], &(double){ json_real_value(back) },
                                              sizeof(double)) == 0);
        json_decref(back);
        tt_buf_free(&b);
        json_decref(v);
    }
    const json_int_t ints[] = { 0, 1, -1, 127, -128, 65535, INT32_MIN, UINT32_MAX,
                                INT64_MIN, INT64_MAX, INT64_MIN + 1, INT64_MAX - 1 };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        json_t *v = json_integer(ints[i]);
        TT_CHECK_MSG(ct_round_trip("json", v), "int %lld", (long long)ints[i]);
        json_decref(v);
    }
    json_t *s[] = { json_string(""), json_string("h\xc3\xa9llo \xf0\x9f\x98\x80"),
                    json_stringn("\0\0", 2), json_string("\"\\/\b\f\n\r\t"), json_true(),
                    json_false(), json_null(), json_object(), json_array() };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        TT_CHECK_MSG(ct_round_trip("json", s[i]), "value %zu", i);
        json_decref(s[i]);
    }
}

static void test_no_terminator_needed(void) {
    const char text[] = "[1,2]garbage";
    json_t *v = NULL;
    TT_REQUIRE(tt_codec_decode(json_codec(), text, 5, &v, NULL) == TT_OK);
    TT_CHECK(json_array_size(v) == 2);
    json_decref(v);
    /* Top-level scalars are accepted. */
    TT_REQUIRE(tt_codec_decode(json_codec(), "42", 2, &v, NULL) == TT_OK);
    TT_CHECK(json_integer_value(v) == 42);
    json_decref(v);
}

static void test_depth_limit(void) {
    json_t *ok = ct_nested(TT_CODEC_MAX_DEPTH);
    json_t *deep = ct_nested(TT_CODEC_MAX_DEPTH + 1);
    tt_buf b = TT_BUF_INIT;
    TT_CHECK(ct_round_trip("json", ok));
    TT_CHECK_EQ_INT(tt_codec_encode(json_codec(), deep, &b), TT_EINVAL);
    TT_CHECK_EQ_INT(b.len, 0);

    /* The same nesting as text: refused before jansson recurses, at the bracket. */
    char text[2 * (TT_CODEC_MAX_DEPTH + 1)];
    size_t n = 0;
    json_t *v = NULL;
    tt_codec_error err;
    for (int i = 0; i < TT_CODEC_MAX_DEPTH + 1; i++) text[n++] = i % 2 ? '[' : '{';
    for (int i = TT_CODEC_MAX_DEPTH; i >= 0; i--) text[n++] = i % 2 ? ']' : '}';
    TT_CHECK_EQ_INT(tt_codec_decode(json_codec(), text, n, &v, &err), TT_EPROTO);
    TT_CHECK_EQ_INT(err.offset, TT_CODEC_MAX_DEPTH);
    TT_CHECK(v == NULL);
    /* Brackets inside strings do not count. */
    const char quoted[] = "[\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"]";
    TT_CHECK_EQ_INT(tt_codec_decode(json_codec(), quoted, sizeof quoted - 1, &v, &err), TT_OK);
    json_decref(v);
    json_decref(ok);
    json_decref(deep);
    tt_buf_free(&b);
}

static void test_huge_array(void) {
    json_t *a = json_array();
    for (int i = 0; i < 100000; i++)
        json_array_append_new(a, i % 3 ? json_integer(i) : json_real(i + 0.5));
    TT_CHECK(ct_round_trip("json", a));
    json_t *o = json_object();
    json_object_set_new(o, "values", a);
    TT_CHECK(ct_round_trip("json", o));
    json_decref(o);
}

static void test_nan_inf_refused(void) {
    /* jansson cannot even hold them... */
    TT_CHECK(json_real(NAN) == NULL);
    TT_CHECK(json_real(INFINITY) == NULL);
    json_t *r = json_real(1.0);
    TT_CHECK(json_real_set(r, -INFINITY) == -1);
    json_decref(r);
    /* ...and the text forms are not JSON. */
    const char *bad[] = { "NaN", "[Infinity]", "-Infinity", "[1e400]" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *v = NULL;
        TT_CHECK_MSG(tt_codec_decode(json_codec(), bad[i], strlen(bad[i]), &v, NULL) ==
                         TT_EPROTO, "%s", bad[i]);
    }
}

static void test_utf8(void) {
    json_t *v = NULL;
    tt_codec_error err;
    const char bad[] = "[\"ab\xff\"]";
    TT_CHECK_EQ_INT(tt_codec_decode(json_codec(), bad, sizeof bad - 1, &v, &err), TT_EPROTO);
    TT_CHECK(err.offset <= sizeof bad - 1 && err.offset >= 3);
    const char surrogate[] = "\"\xed\xa0\x80\"";
    TT_CHECK_EQ_INT(tt_codec_decode(json_codec(), surrogate, 5, &v, &err), TT_EPROTO);
    /* A value built without jansson's check is refused on encode. */
    json_t *s = json_stringn_nocheck("\xc0\xaf", 2);
    tt_buf b = TT_BUF_INIT;
    TT_CHECK_EQ_INT(tt_codec_encode(json_codec(), s, &b), TT_EINVAL);
    json_decref(s);
    json_t *o = json_object();
    json_object_set_new_nocheck(o, "\xff", json_true());
    TT_CHECK_EQ_INT(tt_codec_encode(json_codec(), o, &b), TT_EINVAL);
    json_decref(o);
    tt_buf_free(&b);
}

static void test_empty_and_errors(void) {
    json_t *v = NULL;
    tt_codec_error err;
    TT_CHECK_EQ_INT(tt_codec_decode(json_codec(), NULL, 0, &v, &err), TT_EPROTO);
    TT_CHECK_EQ_INT(err.offset, 0);
    TT_CHECK(err.reason[0] != '\0');
    TT_CHECK_EQ_INT(tt_codec_decode(json_codec(), "  ", 2, &v, &err), TT_EPROTO);
    TT_CHECK_EQ_INT(tt_codec_decode(json_codec(), "[1,]", 4, &v, &err), TT_EPROTO);
    TT_CHECK_EQ_INT(err.offset, 3);
    TT_CHECK_EQ_INT(tt_codec_decode(json_codec(), "[1,2", 4, &v, &err), TT_EPROTO);
    TT_CHECK_EQ_INT(err.offset, 4);
    TT_CHECK_EQ_INT(tt_codec_decode(json_codec(), "[1] x", 5, &v, &err), TT_EPROTO);
    TT_CHECK_EQ_INT(err.offset, 4);
    TT_CHECK_EQ_INT(tt_codec_decode(json_codec(), NULL, 3, &v, &err), TT_EINVAL);
    TT_CHECK_EQ_INT(tt_codec_decode(NULL, "1", 1, &v, &err), TT_EINVAL);
    TT_CHECK(v == NULL);
    tt_buf b = TT_BUF_INIT;
    TT_CHECK_EQ_INT(tt_codec_encode(json_codec(), NULL, &b), TT_EINVAL);
    TT_CHECK_EQ_INT(tt_codec_encode(json_codec(), json_null(), NULL), TT_EINVAL);
}

static void corpus_case(const char *name, const unsigned char *data, size_t len, long want,
                        void *arg) {
    json_t *v = NULL;
    tt_codec_error err = { 99999, "" };
    int *count = arg;
    tt_err rc = tt_codec_decode(json_codec(), data, len, &v, &err);
    TT_CHECK_MSG(rc == TT_EPROTO, "%s: %s", name, tt_err_name(rc));
    TT_CHECK_MSG(err.offset <= len, "%s: offset %zu > %zu", name, err.offset, len);
    if (want >= 0) TT_CHECK_MSG((long)err.offset == want, "%s: offset %zu (%s)", name, err.offset, err.reason);
    TT_CHECK_MSG(err.reason[0], "%s: no reason", name);
    json_decref(v);
    (*count)++;
}

static void test_malformed_corpus(void) {
    int count = 0;
    TT_REQUIRE(ct_for_corpus(TT_CODEC_CORPUS "/json", corpus_case, &count) > 0);
    TT_CHECK(count >= 10);
}

static void test_buffer_reuse(void) {
    tt_buf b = TT_BUF_INIT;
    json_t *v = json_pack("{s:i,s:s}", "temperature", 21, "unit", "C");
    TT_REQUIRE(tt_codec_encode(json_codec(), v, &b) == TT_OK);
    uint8_t *data = b.data;
    size_t cap = b.cap;
    for (int i = 0; i < 1000; i++) TT_CHECK(tt_codec_encode(json_codec(), v, &b) == TT_OK);
    TT_CHECK(b.data == data && b.cap == cap);   /* no growth in steady state */
    TT_CHECK_EQ_INT(b.len, strlen("{\"temperature\":21,\"unit\":\"C\"}"));
    tt_buf_reset(&b);
    TT_CHECK_EQ_INT(b.len, 0);
    TT_CHECK(tt_buf_append(&b, "ab", 2) == TT_OK && b.len == 2);
    tt_buf_free(&b);
    TT_CHECK(b.data == NULL && b.cap == 0);
    json_decref(v);
}

static void test_iotf(void) {
    const tt_codec *c = tt_codec_find("json-iotf");
    TT_REQUIRE(c != NULL);
    tt_buf b = TT_BUF_INIT;
    json_t *d = json_pack("{s:f}", "t", 21.5);
    TT_REQUIRE(tt_codec_iotf_encode(d, INT64_C(1700000000123), &b) == TT_OK);
    const char want[] = "{\"d\":{\"t\":21.5},\"ts\":\"2023-11-14T22:13:20.123Z\"}";
    TT_CHECK(b.len == sizeof want - 1 && memcmp(b.data, want, b.len) == 0);

    json_t *back = NULL;
    int64_t ts = 0;
    TT_REQUIRE(tt_codec_iotf_decode(b.data, b.len, &back, &ts, NULL) == TT_OK);
    TT_CHECK(json_equal(back, d));
    TT_CHECK_EQ_INT(ts, INT64_C(1700000000123));
    json_decref(back);

    /* The registry's codec wraps with the current time and unwraps "d". */
    TT_REQUIRE(tt_codec_encode(c, d, &b) == TT_OK);
    TT_REQUIRE(tt_codec_iotf_decode(b.data, b.len, &back, &ts, NULL) == TT_OK);
    int64_t now = (int64_t)time(NULL) * 1000;
    TT_CHECK(ts > now - 5000 && ts < now + 5000);
    json_decref(back);
    TT_REQUIRE(tt_codec_decode(c, b.data, b.len, &back, NULL) == TT_OK);
    TT_CHECK(json_equal(back, d));
    json_decref(back);

    /* Python isoformat() timestamps with an offset, and no "ts" at all. */
    const char py[] = "{\"d\":[1],\"ts\":\"2018-01-01T12:00:00.123456+02:00\"}";
    TT_REQUIRE(tt_codec_iotf_decode(py, sizeof py - 1, &back, &ts, NULL) == TT_OK);
    TT_CHECK_EQ_INT(ts, INT64_C(1514800800123));
    json_decref(back);
    const char nots[] = "{\"d\":null}";
    TT_REQUIRE(tt_codec_iotf_decode(nots, sizeof nots - 1, &back, &ts, NULL) == TT_OK);
    TT_CHECK(json_is_null(back) && ts > now - 5000);
    json_decref(back);

    tt_codec_error err;
    const char nod[] = "{\"x\":1}";
    TT_CHECK_EQ_INT(tt_codec_decode(c, nod, sizeof nod - 1, &back, &err), TT_EPROTO);
    TT_CHECK_EQ_INT(tt_codec_decode(c, "[1]", 3, &back, &err), TT_EPROTO);
    TT_CHECK_EQ_INT(tt_codec_decode(c, "{\"d\":", 5, &back, &err), TT_EPROTO);
    TT_CHECK_EQ_INT(err.offset, 5);

    /* The envelope takes one level: the payload may nest one level less. */
    json_t *deep = ct_nested(TT_CODEC_MAX_DEPTH);
    TT_CHECK_EQ_INT(tt_codec_encode(c, deep, &b), TT_EINVAL);
    json_decref(deep);
    json_decref(d);
    tt_buf_free(&b);
}

TT_TEST_LIST = {
    { "compact_output", test_compact_output },
    { "scalars_round_trip", test_scalars_round_trip },
    { "no_terminator_needed", test_no_terminator_needed },
    { "depth_limit", test_depth_limit },
    { "huge_array", test_huge_array },
    { "nan_inf_refused", test_nan_inf_refused },
    { "utf8", test_utf8 },
    { "empty_and_errors", test_empty_and_errors },
    { "malformed_corpus", test_malformed_corpus },
    { "buffer_reuse", test_buffer_reuse },
    { "iotf", test_iotf },
    { NULL, NULL },
};
