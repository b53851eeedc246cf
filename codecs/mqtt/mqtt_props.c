/* MQTT 5 properties: one table gives each identifier its data type, the packets
 * that allow it and where it lives in tti_mqtt_props; decoding, size checks,
 * writing and the raw-block iterators are all driven by it. */
#include <stddef.h>

#include "codecs/mqtt/mqtt_internal.h"

enum prop_type { PT_NONE, PT_BYTE, PT_U16, PT_U32, PT_VBI, PT_STR, PT_BIN, PT_PAIR };

/* Value rules. */
#define PF_BOOL    0x01u /* 0 or 1 */
#define PF_NONZERO 0x02u /* 0 is a Protocol Error */
#define PF_TOPIC   0x04u /* a Topic Name: no wildcards */

/* Contexts: bit 0 = will properties, bit n = packet type n. */
#define C_WILL        (1u << TTI_MQTT_CTX_WILL)
#define C_CONNECT     (1u << TTI_MQTT_CONNECT)
#define C_CONNACK     (1u << TTI_MQTT_CONNACK)
#define C_PUBLISH     (1u << TTI_MQTT_PUBLISH)
#define C_PUBACK      (1u << TTI_MQTT_PUBACK)
#define C_PUBREC      (1u << TTI_MQTT_PUBREC)
#define C_PUBREL      (1u << TTI_MQTT_PUBREL)
#define C_PUBCOMP     (1u << TTI_MQTT_PUBCOMP)
#define C_SUBSCRIBE   (1u << TTI_MQTT_SUBSCRIBE)
#define C_SUBACK      (1u << TTI_MQTT_SUBACK)
#define C_UNSUBSCRIBE (1u << TTI_MQTT_UNSUBSCRIBE)
#define C_UNSUBACK    (1u << TTI_MQTT_UNSUBACK)
#define C_DISCONNECT  (1u << TTI_MQTT_DISCONNECT)
#define C_AUTH        (1u << TTI_MQTT_AUTH)
#define C_ACKS (C_PUBACK | C_PUBREC | C_PUBREL | C_PUBCOMP | C_SUBACK | C_UNSUBACK)

typedef struct prop_info {
    uint8_t  type;  /* enum prop_type */
    uint8_t  rules; /* PF_* */
    uint16_t ctx;   /* C_* where the property is allowed */
    uint16_t off;   /* field offset in tti_mqtt_props */
    const char *name;
} prop_info;

#define P(id, t, r, c, field, nm) [id] = { t, r, c, (uint16_t)offsetof(tti_mqtt_props, field), nm }

static const prop_info props_tab[TTI_MQTT_PROP_SHARED_SUB_AVAILABLE + 1] = {
    P(0x01, PT_BYTE, PF_BOOL, C_PUBLISH | C_WILL, payload_format, "Payload Format Indicator"),
    P(0x02, PT_U32, 0, C_PUBLISH | C_WILL, message_expiry, "Message Expiry Interval"),
    P(0x03, PT_STR, 0, C_PUBLISH | C_WILL, content_type, "Content Type"),
    P(0x08, PT_STR, PF_TOPIC, C_PUBLISH | C_WILL, response_topic, "Response Topic"),
    P(0x09, PT_BIN, 0, C_PUBLISH | C_WILL, correlation_data, "Correlation Data"),
    P(0x0B, PT_VBI, PF_NONZERO, C_PUBLISH | C_SUBSCRIBE, sub_id, "Subscription Identifier"),
    P(0x11, PT_U32, 0, C_CONNECT | C_CONNACK | C_DISCONNECT, session_expiry,
      "Session Expiry Interval"),
    P(0x12, PT_STR, 0, C_CONNACK, assigned_client_id, "Assigned Client Identifier"),
    P(0x13, PT_U16, 0, C_CONNACK, server_keep_alive, "Server Keep Alive"),
    P(0x15, PT_STR, 0, C_CONNECT | C_CONNACK | C_AUTH, auth_method, "Authentication Method"),
    P(0x16, PT_BIN, 0, C_CONNECT | C_CONNACK | C_AUTH, auth_data, "Authentication Data"),
    P(0x17, PT_BYTE, PF_BOOL, C_CONNECT, request_problem_info, "Request Problem Information"),
    P(0x18, PT_U32, 0, C_WILL, will_delay, "Will Delay Interval"),
    P(0x19, PT_BYTE, PF_BOOL, C_CONNECT, request_response_info,
      "Request Response Information"),
    P(0x1A, PT_STR, 0, C_CONNACK, response_info, "Response Information"),
    P(0x1C, PT_STR, 0, C_CONNACK | C_DISCONNECT, server_reference, "Server Reference"),
    P(0x1F, PT_STR, 0, C_CONNACK | C_ACKS | C_DISCONNECT | C_AUTH, reason_string,
      "Reason String"),
    P(0x21, PT_U16, PF_NONZERO, C_CONNECT | C_CONNACK, receive_max, "Receive Maximum"),
    P(0x22, PT_U16, 0, C_CONNECT | C_CONNACK, topic_alias_max, "Topic Alias Maximum"),
    P(0x23, PT_U16, PF_NONZERO, C_PUBLISH, topic_alias, "Topic Alias"),
    P(0x24, PT_BYTE, PF_BOOL, C_CONNACK, max_qos, "Maximum QoS"),
    P(0x25, PT_BYTE, PF_BOOL, C_CONNACK, retain_available, "Retain Available"),
    P(0x26, PT_PAIR, 0,
      C_CONNECT | C_CONNACK | C_PUBLISH | C_WILL | C_ACKS | C_SUBSCRIBE | C_UNSUBSCRIBE |
          C_DISCONNECT | C_AUTH,
      user_props, "User Property"),
    P(0x27, PT_U32, PF_NONZERO, C_CONNECT | C_CONNACK, max_packet_size, "Maximum Packet Size"),
    P(0x28, PT_BYTE, PF_BOOL, C_CONNACK, wildcard_sub_available,
      "Wildcard Subscription Available"),
    P(0x29, PT_BYTE, PF_BOOL, C_CONNACK, sub_id_available,
      "Subscription Identifier Available"),
    P(0x2A, PT_BYTE, PF_BOOL, C_CONNACK, shared_sub_available, "Shared Subscription Available"),
};

#undef P

#define TTI_REPEATED_BITS \
    (TTI_MQTT_PBIT(TTI_MQTT_PROP_USER_PROPERTY) | TTI_MQTT_PBIT(TTI_MQTT_PROP_SUBSCRIPTION_ID))

static const prop_info *prop_lookup(uint8_t id) {
    if (id >= sizeof props_tab / sizeof props_tab[0] || props_tab[id].type == PT_NONE)
        return NULL;
    return &props_tab[id];
}

#define FIELD(props, info, type) ((type *)(void *)((char *)(props) + (info)->off))
#define CFIELD(props, info, type) \
    ((const type *)(const void *)((const char *)(props) + (info)->off))

/* ---- Decoding ----------------------------------------------------------- */

/* Read a two-byte-length string or binary at *p; advance. */
static bool get_lbytes(const uint8_t **p, const uint8_t *end, const uint8_t **ptr, size_t *len) {
    if (end - *p < 2) return false;
    size_t n = tti_mqtt_get_u16(*p);
    if ((size_t)(end - *p) - 2 < n) return false;
    *ptr = *p + 2;
    *len = n;
    *p += 2 + n;
    return true;
}

int tti_mqtt_props_decode(const uint8_t *p, size_t avail, uint8_t ctx, tti_mqtt_props *out,
                          const char **why) {
    uint32_t plen;
    int vn = tti_mqtt_vbi_get(p, avail, &plen);
    if (vn <= 0) return tti_mqtt_fail(why, TT_EPROTO, "malformed property length");
    if (plen > avail - (size_t)vn)
        return tti_mqtt_fail(why, TT_EPROTO, "property length exceeds the packet");
    const uint8_t *q = p + vn, *end = q + plen;
    out->raw.ptr = q;
    out->raw.len = plen;
    uint16_t ctx_bit = (uint16_t)(1u << ctx);

    while (q < end) {
        uint8_t id = *q++;
        const prop_info *info = prop_lookup(id);
        if (!info) return tti_mqtt_fail(why, TT_EPROTO, "unknown property identifier");
        if (!(info->ctx & ctx_bit))
            return tti_mqtt_fail(why, TT_EPROTO, "property not allowed in this packet");
        uint64_t bit = TTI_MQTT_PBIT(id);
        if (info->type == PT_PAIR) {
            const uint8_t *k, *v;
            size_t kl, vl;
            if (!get_lbytes(&q, end, &k, &kl) || !get_lbytes(&q, end, &v, &vl))
                return tti_mqtt_fail(why, TT_EPROTO, "truncated user property");
            if (!tti_mqtt_utf8_valid((const char *)k, kl) ||
                !tti_mqtt_utf8_valid((const char *)v, vl))
                return tti_mqtt_fail(why, TT_EPROTO, "user property is not valid UTF-8");
            out->user_prop_count++;
            out->present |= bit;
            continue;
        }
        if (info->type == PT_VBI) { /* Subscription Identifier */
            uint32_t v;
            int n = tti_mqtt_vbi_get(q, (size_t)(end - q), &v);
            if (n <= 0) return tti_mqtt_fail(why, TT_EPROTO, "malformed subscription identifier");
            q += n;
            if (v == 0) return tti_mqtt_fail(why, TT_EPROTO, "subscription identifier is 0");
            if ((out->present & bit) && ctx != TTI_MQTT_PUBLISH)
                return tti_mqtt_fail(why, TT_EPROTO, "duplicate subscription identifier");
            if (!(out->present & bit)) out->sub_id = v;
            out->sub_id_count++;
            out->present |= bit;
            continue;
        }
        if (out->present & bit) return tti_mqtt_fail(why, TT_EPROTO, "duplicate property");
        out->present |= bit;
        uint32_t num = 0;
        switch (info->type) {
        case PT_BYTE:
            if (end - q < 1) goto truncated;
            num = *q;
            *FIELD(out, info, uint8_t) = *q++;
            break;
        case PT_U16:
            if (end - q < 2) goto truncated;
            num = tti_mqtt_get_u16(q);
            *FIELD(out, info, uint16_t) = (uint16_t)num;
            q += 2;
            break;
        case PT_U32:
            if (end - q < 4) goto truncated;
            num = tti_mqtt_get_u32(q);
            *FIELD(out, info, uint32_t) = num;
            q += 4;
            break;
        case PT_STR: {
            const uint8_t *s;
            size_t sl;
            if (!get_lbytes(&q, end, &s, &sl)) goto truncated;
            if (!tti_mqtt_utf8_valid((const char *)s, sl))
                return tti_mqtt_fail(why, TT_EPROTO, "string property is not valid UTF-8");
            if ((info->rules & PF_TOPIC) && !tti_mqtt_topic_valid((const char *)s, sl))
                return tti_mqtt_fail(why, TT_EPROTO, "response topic is not a valid topic name");
            FIELD(out, info, tti_mqtt_str)->ptr = (const char *)s;
            FIELD(out, info, tti_mqtt_str)->len = sl;
            break;
        }
        default: { /* PT_BIN */
            const uint8_t *s;
            size_t sl;
            if (!get_lbytes(&q, end, &s, &sl)) goto truncated;
            FIELD(out, info, tti_mqtt_bin)->ptr = s;
            FIELD(out, info, tti_mqtt_bin)->len = sl;
            break;
        }
        }
        if ((info->rules & PF_BOOL) && num > 1)
            return tti_mqtt_fail(why, TT_EPROTO, "property value must be 0 or 1");
        if ((info->rules & PF_NONZERO) && num == 0)
            return tti_mqtt_fail(why, TT_EPROTO, "property value must not be 0");
    }
    if ((out->present & TTI_MQTT_PBIT(TTI_MQTT_PROP_AUTH_DATA)) &&
        !(out->present & TTI_MQTT_PBIT(TTI_MQTT_PROP_AUTH_METHOD)))
        return tti_mqtt_fail(why, TT_EPROTO, "authentication data without a method");
    return vn + (int)plen;

truncated:
    return tti_mqtt_fail(why, TT_EPROTO, "property value runs past the property length");
}

/* ---- Iterators over a raw block ------------------------------------------ */

/* Step over one property at *p; return its identifier, or 0 at the end or on
 * bytes that do not parse (a block from the decoder always parses). */
static uint8_t raw_next(const uint8_t **p, const uint8_t *end, const uint8_t **val) {
    if (*p >= end) return 0;
    uint8_t id = **p;
    const prop_info *info = prop_lookup(id);
    if (!info) return 0;
    const uint8_t *q = *p + 1;
    size_t left = (size_t)(end - q), n;
    switch (info->type) {
    case PT_BYTE: n = 1; break;
    case PT_U16: n = 2; break;
    case PT_U32: n = 4; break;
    case PT_VBI: {
        uint32_t v;
        int r = tti_mqtt_vbi_get(q, left, &v);
        if (r <= 0) return 0;
        n = (size_t)r;
        break;
    }
    case PT_PAIR:
        if (left < 2) return 0;
        n = 2u + tti_mqtt_get_u16(q);
        if (left < n + 2) return 0;
        n += 2u + tti_mqtt_get_u16(q + n);
        break;
    default:
        if (left < 2) return 0;
        n = 2u + tti_mqtt_get_u16(q);
        break;
    }
    if (left < n) return 0;
    *val = q;
    *p = q + n;
    return id;
}

void tti_mqtt_user_props_begin(tti_mqtt_iter *it, const tti_mqtt_props *props) {
    memset(it, 0, sizeof *it);
    it->arr = props->user_props;
    it->n = props->user_prop_count;
    if (!it->arr && props->raw.ptr) {
        it->p = props->raw.ptr;
        it->end = props->raw.ptr + props->raw.len;
    }
}

bool tti_mqtt_user_props_next(tti_mqtt_iter *it, tti_mqtt_user_prop *out) {
    if (it->i >= it->n) return false;
    if (it->arr) {
        *out = ((const tti_mqtt_user_prop *)it->arr)[it->i++];
        return true;
    }
    const uint8_t *v;
    uint8_t id;
    while ((id = raw_next(&it->p, it->end, &v)) != 0) {
        if (id != TTI_MQTT_PROP_USER_PROPERTY) continue;
        size_t kl = tti_mqtt_get_u16(v);
        out->key.ptr = (const char *)v + 2;
        out->key.len = kl;
        out->value.ptr = (const char *)v + 4 + kl;
        out->value.len = tti_mqtt_get_u16(v + 2 + kl);
        it->i++;
        return true;
    }
    it->n = it->i;
    return false;
}

void tti_mqtt_sub_ids_begin(tti_mqtt_iter *it, const tti_mqtt_props *props) {
    memset(it, 0, sizeof *it);
    if (props->sub_ids) {
        it->arr = props->sub_ids;
        it->n = props->sub_id_count;
    } else if (props->sub_id_count > 0) {
        it->n = props->sub_id_count;
        if (props->raw.ptr) {
            it->p = props->raw.ptr;
            it->end = props->raw.ptr + props->raw.len;
        }
    } else if (props->present & TTI_MQTT_PBIT(TTI_MQTT_PROP_SUBSCRIPTION_ID)) {
        it->arr = &props->sub_id;
        it->n = 1;
    }
}

bool tti_mqtt_sub_ids_next(tti_mqtt_iter *it, uint32_t *out) {
    if (it->i >= it->n) return false;
    if (it->arr) {
        *out = ((const uint32_t *)it->arr)[it->i++];
        return true;
    }
    const uint8_t *v;
    uint8_t id;
    while ((id = raw_next(&it->p, it->end, &v)) != 0) {
        if (id != TTI_MQTT_PROP_SUBSCRIPTION_ID) continue;
        (void)tti_mqtt_vbi_get(v, (size_t)(it->end - v), out);
        it->i++;
        return true;
    }
    it->n = it->i;
    return false;
}

/* ---- Encoding ----------------------------------------------------------- */

int tti_mqtt_props_size(const tti_mqtt_props *props, uint8_t ctx, size_t *size,
                        const char **why) {
    uint16_t ctx_bit = (uint16_t)(1u << ctx);
    size_t total = 0;
    for (uint64_t m = props->present & ~TTI_REPEATED_BITS; m; m &= m - 1) {
        uint8_t id = (uint8_t)__builtin_ctzll(m);
        const prop_info *info = prop_lookup(id);
        if (!info) return tti_mqtt_fail(why, TT_EINVAL, "unknown property identifier");
        if (!(info->ctx & ctx_bit))
            return tti_mqtt_fail(why, TT_EINVAL, "property not allowed in this packet");
        uint32_t num = 1;
        switch (info->type) {
        case PT_BYTE:
            num = *CFIELD(props, info, uint8_t);
            total += 2;
            break;
        case PT_U16:
            num = *CFIELD(props, info, uint16_t);
            total += 3;
            break;
        case PT_U32:
            num = *CFIELD(props, info, uint32_t);
            total += 5;
            break;
        case PT_STR: {
            const tti_mqtt_str *s = CFIELD(props, info, tti_mqtt_str);
            if (s->len > 65535) return tti_mqtt_fail(why, TT_EINVAL, "property string too long");
            if (!tti_mqtt_utf8_valid(s->ptr, s->len))
                return tti_mqtt_fail(why, TT_EINVAL, "string property is not valid UTF-8");
            if ((info->rules & PF_TOPIC) && !tti_mqtt_topic_valid(s->ptr, s->len))
                return tti_mqtt_fail(why, TT_EINVAL, "response topic is not a valid topic name");
            total += 3 + s->len;
            break;
        }
        default: { /* PT_BIN */
            const tti_mqtt_bin *b = CFIELD(props, info, tti_mqtt_bin);
            if (b->len > 65535) return tti_mqtt_fail(why, TT_EINVAL, "property data too long");
            total += 3 + b->len;
            break;
        }
        }
        if ((info->rules & PF_BOOL) && num > 1)
            return tti_mqtt_fail(why, TT_EINVAL, "property value must be 0 or 1");
        if ((info->rules & PF_NONZERO) && num == 0)
            return tti_mqtt_fail(why, TT_EINVAL, "property value must not be 0");
    }
    if ((props->present & TTI_MQTT_PBIT(TTI_MQTT_PROP_AUTH_DATA)) &&
        !(props->present & TTI_MQTT_PBIT(TTI_MQTT_PROP_AUTH_METHOD)))
        return tti_mqtt_fail(why, TT_EINVAL, "authentication data without a method");

    tti_mqtt_iter it;
    uint32_t sid;
    size_t nsid = 0;
    tti_mqtt_sub_ids_begin(&it, props);
    while (tti_mqtt_sub_ids_next(&it, &sid)) {
        if (sid == 0 || sid > TTI_MQTT_MAX_SUB_ID)
            return tti_mqtt_fail(why, TT_EINVAL, "subscription identifier out of range");
        total += 1 + tti_mqtt_vbi_len(sid);
        nsid++;
    }
    if (nsid && !(props_tab[TTI_MQTT_PROP_SUBSCRIPTION_ID].ctx & ctx_bit))
        return tti_mqtt_fail(why, TT_EINVAL, "property not allowed in this packet");
    if (nsid > 1 && ctx != TTI_MQTT_PUBLISH)
        return tti_mqtt_fail(why, TT_EINVAL, "only PUBLISH may repeat subscription identifiers");

    tti_mqtt_user_prop up;
    size_t nup = 0;
    tti_mqtt_user_props_begin(&it, props);
    while (tti_mqtt_user_props_next(&it, &up)) {
        if (up.key.len > 65535 || up.value.len > 65535)
            return tti_mqtt_fail(why, TT_EINVAL, "user property too long");
        if (!tti_mqtt_utf8_valid(up.key.ptr, up.key.len) ||
            !tti_mqtt_utf8_valid(up.value.ptr, up.value.len))
            return tti_mqtt_fail(why, TT_EINVAL, "user property is not valid UTF-8");
        total += 5 + up.key.len + up.value.len;
        nup++;
        if (total > TTI_MQTT_MAX_REMAINING) break;
    }
    if (nup && !(props_tab[TTI_MQTT_PROP_USER_PROPERTY].ctx & ctx_bit))
        return tti_mqtt_fail(why, TT_EINVAL, "property not allowed in this packet");
    if (total > TTI_MQTT_MAX_REMAINING)
        return tti_mqtt_fail(why, TT_EINVAL, "properties too large");
    *size = total;
    return TT_OK;
}

uint8_t *tti_mqtt_props_put(uint8_t *p, const tti_mqtt_props *props, size_t size) {
    p = tti_mqtt_vbi_put(p, (uint32_t)size);
    for (uint64_t m = props->present & ~TTI_REPEATED_BITS; m; m &= m - 1) {
        uint8_t id = (uint8_t)__builtin_ctzll(m);
        const prop_info *info = &props_tab[id];
        *p++ = id;
        switch (info->type) {
        case PT_BYTE: *p++ = *CFIELD(props, info, uint8_t); break;
        case PT_U16: p = tti_mqtt_put_u16(p, *CFIELD(props, info, uint16_t)); break;
        case PT_U32: p = tti_mqtt_put_u32(p, *CFIELD(props, info, uint32_t)); break;
        case PT_STR: {
            const tti_mqtt_str *s = CFIELD(props, info, tti_mqtt_str);
            p = tti_mqtt_put_lstr(p, s->ptr, s->len);
            break;
        }
        default: {
            const tti_mqtt_bin *b = CFIELD(props, info, tti_mqtt_bin);
            p = tti_mqtt_put_lstr(p, b->ptr, b->len);
            break;
        }
        }
    }
    tti_mqtt_iter it;
    uint32_t sid;
    tti_mqtt_sub_ids_begin(&it, props);
    while (tti_mqtt_sub_ids_next(&it, &sid)) {
        *p++ = TTI_MQTT_PROP_SUBSCRIPTION_ID;
        p = tti_mqtt_vbi_put(p, sid);
    }
    tti_mqtt_user_prop up;
    tti_mqtt_user_props_begin(&it, props);
    while (tti_mqtt_user_props_next(&it, &up)) {
        *p++ = TTI_MQTT_PROP_USER_PROPERTY;
        p = tti_mqtt_put_lstr(p, up.key.ptr, up.key.len);
        p = tti_mqtt_put_lstr(p, up.value.ptr, up.value.len);
    }
    return p;
}
