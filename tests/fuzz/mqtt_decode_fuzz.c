/* libFuzzer target: the MQTT packet decoder on arbitrary bytes, for 3.1.1 and 5.0.
 * Where a decode succeeds the packet is encoded again and decoded again; the two
 * decodes must be equal. Traps on any inconsistency. */
#include <stdint.h>
#include <stdlib.h>

#include "codecs/mqtt/mqtt_codec.h"
#include "tests/unit/codecs/mqtt/mqtt_test_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_version(const uint8_t *data, size_t size, uint8_t ver) {
    tti_mqtt_pkt a, b;
    const char *why = NULL;
    int n = tti_mqtt_decode(data, size, ver, 0, &a, &why);
    if (n > (int)size) __builtin_trap();                /* claimed past the input */
    if (n < 0 && !why) __builtin_trap(); /* rejected without a reason */
    if (n < 0 && n != TT_EPROTO && !(ver == 0 && n == TT_EINVAL)) __builtin_trap();
    if (n == 0) {
        if (a.len != 0 && a.len <= size) __builtin_trap(); /* "incomplete" yet all there */
        return;
    }
    if (n < 0) return;
    if (a.len != (size_t)n) __builtin_trap();
    /* Any proper prefix is incomplete. */
    if (tti_mqtt_decode(data, (size_t)n - 1, ver, 0, &b, NULL) != 0) __builtin_trap();
    /* The fixed header alone agrees. */
    tti_mqtt_fixed fh;
    int hl = tti_mqtt_decode_fixed(data, size, ver, 0, &fh, NULL);
    if (hl <= 0 || fh.total != (size_t)n || fh.type != a.type) __builtin_trap();
    if (ver == 0) return; /* CONNECT detection only; the level decides the encoding */

    /* Re-encode, decode again, compare. */
    int len = tti_mqtt_encoded_len(&a, ver, &why);
    if (len <= 0) __builtin_trap();
    uint8_t *buf = malloc((size_t)len);
    if (!buf) return;
    int m = tti_mqtt_encode(&a, ver, buf, (size_t)len, &why);
    if (m != len) __builtin_trap();
    int k = tti_mqtt_decode(buf, (size_t)m, ver, 0, &b, &why);
    if (k != m) __builtin_trap();
    if (!tt_mqtt_pkt_eq(&a, &b)) __builtin_trap();
    /* The PUBLISH header path writes the same leading bytes. */
    if (a.type == TTI_MQTT_PUBLISH) {
        size_t want = (size_t)m - a.u.publish.payload.len;
        uint8_t *hdr = malloc(want ? want : 1);
        if (hdr) {
            int h = tti_mqtt_encode_publish_header(&a, ver, hdr, want, NULL);
            if (h != (int)want || memcmp(hdr, buf, want) != 0) __builtin_trap();
            free(hdr);
        }
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_version(data, size, TTI_MQTT_V311);
    check_version(data, size, TTI_MQTT_V5);
    check_version(data, size, 0);
    return 0;
}
