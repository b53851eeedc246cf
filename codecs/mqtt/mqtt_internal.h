/* Shared pieces of the MQTT codec: byte readers and writers, Variable Byte
 * Integers, and the property block coder (mqtt_props.c). Not for other folders. */
#ifndef TTI_CODECS_MQTT_INTERNAL_H
#define TTI_CODECS_MQTT_INTERNAL_H

#include <string.h>

#include "codecs/mqtt/mqtt_codec.h"

/* Property contexts: a packet type (1..15), or 0 for the will properties of CONNECT. */
#define TTI_MQTT_CTX_WILL 0u

/* Set *why (when wanted) and return `err`. */
static inline int tti_mqtt_fail(const char **why, int err, const char *msg) {
    if (why) *why = msg;
    return err;
}

static inline uint16_t tti_mqtt_get_u16(const uint8_t *p) {
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t tti_mqtt_get_u32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint8_t *tti_mqtt_put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static inline uint8_t *tti_mqtt_put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

/* A two-byte length followed by that many bytes. */
static inline uint8_t *tti_mqtt_put_lstr(uint8_t *p, const void *s, size_t n) {
    p = tti_mqtt_put_u16(p, (uint16_t)n);
    if (n) memcpy(p, s, n);
    return p + n;
}

/* Decode a Variable Byte Integer of at most 4 bytes (non-minimal forms allowed).
 * Returns the bytes used (1..4), 0 if `avail` ends inside it, -1 if malformed. */
static inline int tti_mqtt_vbi_get(const uint8_t *p, size_t avail, uint32_t *val) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        if ((size_t)i >= avail) return 0;
        v |= (uint32_t)(p[i] & 0x7F) << (7 * i);
        if (!(p[i] & 0x80)) {
            *val = v;
            return i + 1;
        }
    }
    return -1;
}

static inline size_t tti_mqtt_vbi_len(uint32_t v) {
    return v < 128u ? 1 : v < 16384u ? 2 : v < 2097152u ? 3 : 4;
}

static inline uint8_t *tti_mqtt_vbi_put(uint8_t *p, uint32_t v) {
    do {
        uint8_t b = (uint8_t)(v & 0x7F);
        v >>= 7;
        *p++ = v ? (uint8_t)(b | 0x80) : b;
    } while (v);
    return p;
}

/* Decode a property block (Property Length, then properties) at p[0..avail)
 * for context `ctx` into `out`, which the caller has zeroed.
 * Returns the bytes used, or TT_EPROTO. */
int tti_mqtt_props_decode(const uint8_t *p, size_t avail, uint8_t ctx, tti_mqtt_props *out,
                          const char **why);

/* Size of the properties (without the Property Length) after checking that
 * every present property is allowed in `ctx` and has a legal value.
 * Returns TT_OK or TT_EINVAL. */
int tti_mqtt_props_size(const tti_mqtt_props *props, uint8_t ctx, size_t *size,
                        const char **why);

/* Write Property Length + properties; `size` comes from tti_mqtt_props_size(). */
uint8_t *tti_mqtt_props_put(uint8_t *p, const tti_mqtt_props *props, size_t size);

/* Topic rules with the reason: NULL when valid, else a static English reason. */
const char *tti_mqtt_topic_check(const char *s, size_t len);
const char *tti_mqtt_filter_check(const char *s, size_t len, uint8_t version);

/* Whether a (valid) MQTT 5 topic filter is a shared subscription "$share/...". */
bool tti_mqtt_shared_filter(const char *s, size_t len);

#endif /* TTI_CODECS_MQTT_INTERNAL_H */
