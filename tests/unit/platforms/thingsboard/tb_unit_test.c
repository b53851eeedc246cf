/* ThingsBoard adapter internals without a broker: checksums against known
 * vectors, splitting telemetry below a payload limit, rate-limit windows. */
#include <stdlib.h>
#include <string.h>
#include <tether/tether.h>

#include "platforms/thingsboard/tb_internal.h"
#include "tt_test.h"

static void check_sum(const char *algo, const char *in, size_t len, const char *want) {
    char hex[130];
    tt_err rc = tt_tb_checksum(algo, in, len, hex, sizeof hex);
    TT_CHECK_EQ_INT(rc, TT_OK);
    TT_CHECK_MSG(rc == TT_OK && strcmp(hex, want) == 0, "%s: %s != %s", algo, hex, want);
}

static void test_checksums(void) {
    check_sum("sha256", "abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check_sum("SHA256", "abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check_sum("sha384", "abc", 3,
              "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7");
    check_sum("sha512", "abc", 3,
              "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
              "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
    check_sum("md5", "abc", 3, "900150983cd24fb0d6963f7d28e17f72");
    check_sum("md5", "", 0, "d41d8cd98f00b204e9800998ecf8427e");
    /* CRC-32 0xCBF43926 printed in little-endian byte order */
    check_sum("crc32", "123456789", 9, "2639f4cb");
    TT_CHECK_EQ_INT(tti_tb_crc32("123456789", 9), 0xCBF43926u);
    /* MurmurHash3 x86_32("foo", 0) = -156908512 (0xF6A5C420) */
    TT_CHECK_EQ_INT(tti_tb_murmur3_32("foo", 3, 0), 0xF6A5C420u);
    TT_CHECK_EQ_INT(tti_tb_murmur3_32("", 0, 0), 0);
    TT_CHECK_EQ_INT(tti_tb_murmur3_32("", 0, 1), 0x514E28B7u);
    check_sum("murmur3_32", "foo", 3, "20c4a5f6");
    /* x64_128("foo", 0): h1 then h2, each little-endian */
    check_sum("murmur3_128", "foo", 3, "6145f501578671e2877dba2be487af7e");
    char hex[130];
    TT_CHECK_EQ_INT(tt_tb_checksum("sha1", "abc", 3, hex, sizeof hex), TT_ENOTSUP);
    TT_CHECK_EQ_INT(tt_tb_checksum("sha256", "abc", 3, hex, 10), TT_EINVAL);
    TT_CHECK_EQ_INT(tt_tb_checksum(NULL, "abc", 3, hex, sizeof hex), TT_EINVAL);
    /* binary input with NUL bytes: the length counts, not the string */
    const char bin[] = { 'a', 0, 'b', 0, 'c' };
    char h1[130], h2[130];
    TT_CHECK_EQ_INT(tt_tb_checksum("sha256", bin, sizeof bin, h1, sizeof h1), TT_OK);
    TT_CHECK_EQ_INT(tt_tb_checksum("sha256", bin, 1, h2, sizeof h2), TT_OK);
    TT_CHECK(strcmp(h1, h2) != 0);
}

static void free_parts(char **parts, uint32_t *pts, size_t n) {
    for (size_t i = 0; i < n; i++) free(parts[i]);
    free(parts);
    free(pts);
}

static void test_pack_fits(void) {
    json_t *t = json_pack("{s:i,s:s}", "temp", 21, "mode", "eco");
    char **parts;
    uint32_t *pts;
    size_t n;
    TT_CHECK_EQ_INT(tti_tb_pack(t, false, NULL, 1000, &parts, &pts, &n), TT_OK);
    TT_REQUIRE(n == 1);
    json_t *back = json_loads(parts[0], 0, NULL);
    TT_CHECK(json_equal(back, t));
    TT_CHECK_EQ_INT(pts[0], 2);
    json_decref(back);
    free_parts(parts, pts, n);
    /* gateway: {name:[object]} */
    TT_CHECK_EQ_INT(tti_tb_pack(t, false, "Dev A", 1000, &parts, &pts, &n), TT_OK);
    TT_REQUIRE(n == 1);
    back = json_loads(parts[0], 0, NULL);
    TT_CHECK(json_is_array(json_object_get(back, "Dev A")));
    TT_CHECK(json_equal(json_array_get(json_object_get(back, "Dev A"), 0), t));
    json_decref(back);
    free_parts(parts, pts, n);
    json_decref(t);
}

/* Every part at most max bytes; the entries' union is the input. */
static void test_pack_split_batch(void) {
    json_t *arr = json_array();
    for (int i = 0; i < 200; i++)
        json_array_append_new(arr, json_pack("{s:I,s:{s:i,s:f}}", "ts", (json_int_t)1700000000000 + i,
                                             "values", "n", i, "x", i * 0.5));
    char **parts;
    uint32_t *pts;
    size_t n;
    const size_t max = 512;
    TT_CHECK_EQ_INT(tti_tb_pack(arr, false, NULL, max, &parts, &pts, &n), TT_OK);
    TT_CHECK(n > 10);
    json_t *all = json_array();
    uint32_t points = 0;
    for (size_t i = 0; i < n; i++) {
        TT_CHECK_MSG(strlen(parts[i]) <= max, "part %zu is %zu bytes", i, strlen(parts[i]));
        json_t *p = json_loads(parts[i], 0, NULL);
        TT_CHECK(json_is_array(p));
        json_array_extend(all, p);
        json_decref(p);
        points += pts[i];
    }
    TT_CHECK(json_equal(all, arr));
    TT_CHECK_EQ_INT(points, 400);
    json_decref(all);
    free_parts(parts, pts, n);
    /* the same through a gateway wrapper */
    TT_CHECK_EQ_INT(tti_tb_pack(arr, false, "gw-sub-1", max, &parts, &pts, &n), TT_OK);
    all = json_array();
    for (size_t i = 0; i < n; i++) {
        TT_CHECK(strlen(parts[i]) <= max);
        json_t *p = json_loads(parts[i], 0, NULL);
        json_array_extend(all, json_object_get(p, "gw-sub-1"));
        json_decref(p);
    }
    TT_CHECK(json_equal(all, arr));
    json_decref(all);
    free_parts(parts, pts, n);
    json_decref(arr);
}

static void test_pack_split_keys(void) {
    json_t *vals = json_object();
    char k[16];
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "key%03d", i);
        json_object_set_new(vals, k, json_integer(i * 1000));
    }
    json_t *entry = json_pack("{s:I,s:O}", "ts", (json_int_t)1700000000123, "values", vals);
    char **parts;
    uint32_t *pts;
    size_t n;
    const size_t max = 300;
    TT_CHECK_EQ_INT(tti_tb_pack(entry, false, NULL, max, &parts, &pts, &n), TT_OK);
    TT_CHECK(n > 5);
    json_t *merged = json_object();
    for (size_t i = 0; i < n; i++) {
        TT_CHECK_MSG(strlen(parts[i]) <= max, "part %zu is %zu bytes", i, strlen(parts[i]));
        json_t *p = json_loads(parts[i], 0, NULL);
        size_t j;
        json_t *e;
        json_array_foreach(p, j, e) {
            TT_CHECK_EQ_INT(json_integer_value(json_object_get(e, "ts")), 1700000000123);
            json_object_update(merged, json_object_get(e, "values"));
        }
        json_decref(p);
    }
    TT_CHECK(json_equal(merged, vals));
    json_decref(merged);
    free_parts(parts, pts, n);
    /* attributes: split by key, each part an object */
    TT_CHECK_EQ_INT(tti_tb_pack(vals, true, NULL, max, &parts, &pts, &n), TT_OK);
    merged = json_object();
    for (size_t i = 0; i < n; i++) {
        TT_CHECK(strlen(parts[i]) <= max);
        json_t *p = json_loads(parts[i], 0, NULL);
        TT_CHECK(json_is_object(p));
        json_object_update(merged, p);
        json_decref(p);
    }
    TT_CHECK(json_equal(merged, vals));
    json_decref(merged);
    free_parts(parts, pts, n);
    /* one value larger than the limit cannot be split */
    char big[400];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    json_object_set_new(vals, "big", json_string(big));
    TT_CHECK_EQ_INT(tti_tb_pack(vals, true, NULL, max, &parts, &pts, &n), TT_EINVAL);
    json_t *s = json_string("x");
    TT_CHECK_EQ_INT(tti_tb_pack(s, false, NULL, max, &parts, &pts, &n), TT_EINVAL);
    json_decref(s);
    json_decref(entry);
    json_decref(vals);
}

static void test_windows(void) {
    tb_bucket b;
    TT_CHECK_EQ_INT(tti_tb_parse_windows("200:1,6000:60,14000:3600", &b), TT_OK);
    TT_CHECK_EQ_INT(b.n, 3);
    TT_CHECK(b.w[0].cap == 200 && b.w[0].rate == 200);
    TT_CHECK(b.w[1].cap == 6000 && b.w[1].rate == 100);
    TT_CHECK_EQ_INT(tti_tb_parse_windows("0:0", &b), TT_OK);
    TT_CHECK_EQ_INT(b.n, 0);
    TT_CHECK_EQ_INT(tti_tb_parse_windows(NULL, &b), TT_OK);
    TT_CHECK_EQ_INT(tti_tb_parse_windows("10", &b), TT_EINVAL);
    TT_CHECK_EQ_INT(tti_tb_parse_windows("10:x", &b), TT_EINVAL);
    TT_CHECK_EQ_INT(tti_tb_parse_windows("1:1,2:2,3:3,4:4,5:5", &b), TT_EINVAL);
}

static void test_topic_id(void) {
    int64_t id;
    TT_CHECK(tti_tb_topic_id("v1/x/7", 6, "v1/x/", &id) && id == 7);
    TT_CHECK(!tti_tb_topic_id("v1/x/", 5, "v1/x/", &id));
    TT_CHECK(!tti_tb_topic_id("v1/x/7a", 7, "v1/x/", &id));
    TT_CHECK(!tti_tb_topic_id("v1/x/99999999999999999999", 25, "v1/x/", &id));
    TT_CHECK_EQ_STR(tt_tb_fw_state_name(TT_TB_FW_VERIFIED), "VERIFIED");
}

TT_TEST_LIST = {
    { "checksums", test_checksums },
    { "pack_fits", test_pack_fits },
    { "pack_split_batch", test_pack_split_batch },
    { "pack_split_keys", test_pack_split_keys },
    { "windows", test_windows },
    { "topic_id", test_topic_id },
    { NULL, NULL },
};
