/* MQTT packet decoder: validates a whole packet in place and fills a
 * tti_mqtt_pkt with views into the input. No allocation, no copies. */
#include <stddef.h>

#include "codecs/mqtt/mqtt_internal.h"

#define EPROTO_(why, msg) tti_mqtt_fail(why, TT_EPROTO, msg)

/* A bounded reader over the variable header and payload. */
typedef struct rd {
    const uint8_t *p, *end;
} rd;

static inline size_t rd_left(const rd *r) {
    return (size_t)(r->end - r->p);
}

static inline bool rd_u8(rd *r, uint8_t *v) {
    if (r->p >= r->end) return false;
    *v = *r->p++;
    return true;
}

static inline bool rd_u16(rd *r, uint16_t *v) {
    if (rd_left(r) < 2) return false;
    *v = tti_mqtt_get_u16(r->p);
    r->p += 2;
    return true;
}

static inline bool rd_bin(rd *r, tti_mqtt_bin *b) {
    if (rd_left(r) < 2) return false;
    size_t n = tti_mqtt_get_u16(r->p);
    if (rd_left(r) - 2 < n) return false;
    b->ptr = r->p + 2;
    b->len = n;
    r->p += 2 + n;
    return true;
}

static inline bool rd_str(rd *r, tti_mqtt_str *s) {
    tti_mqtt_bin b;
    if (!rd_bin(r, &b)) return false;
    s->ptr = (const char *)b.ptr;
    s->len = b.len;
    return true;
}

static int rd_props(rd *r, uint8_t ctx, tti_mqtt_props *props, const char **why) {
    int n = tti_mqtt_props_decode(r->p, rd_left(r), ctx, props, why);
    if (n < 0) return n;
    r->p += n;
    return TT_OK;
}

static int rd_packet_id(rd *r, uint16_t *id, const char **why) {
    if (!rd_u16(r, id)) return EPROTO_(why, "packet too short for its packet identifier");
    if (*id == 0) return EPROTO_(why, "packet identifier is 0");
    return TT_OK;
}

static int rd_done(const rd *r, const char **why) {
    return r->p == r->end ? TT_OK : EPROTO_(why, "unexpected bytes at the end of the packet");
}

/* ---- Fixed header ------------------------------------------------------- */

/* Flags and fixed Remaining Lengths that the first byte alone decides. */
static int check_type_flags(uint8_t type, uint8_t flags, uint8_t version, const char **why) {
    switch (type) {
    case 0: return EPROTO_(why, "reserved packet type 0");
    case TTI_MQTT_PUBLISH:
        if ((flags & 0x6) == 0x6) return EPROTO_(why, "PUBLISH with QoS 3");
        if ((flags & 0x8) && !(flags & 0x6)) return EPROTO_(why, "PUBLISH QoS 0 with DUP set");
        return TT_OK;
    case TTI_MQTT_PUBREL:
    case TTI_MQTT_SUBSCRIBE:
    case TTI_MQTT_UNSUBSCRIBE:
        return flags == 0x2 ? TT_OK : EPROTO_(why, "reserved fixed-header flags must be 0010");
    case TTI_MQTT_AUTH:
        if (version == TTI_MQTT_V311) return EPROTO_(why, "AUTH packet in MQTT 3.1.1");
        return flags == 0 ? TT_OK : EPROTO_(why, "reserved fixed-header flags must be 0000");
    default:
        return flags == 0 ? TT_OK : EPROTO_(why, "reserved fixed-header flags must be 0000");
    }
}

/* Remaining Lengths fixed by the packet type (checked before waiting for the body). */
static int check_remaining(uint8_t type, uint32_t rem, uint8_t version, const char **why) {
    switch (type) {
    case TTI_MQTT_PINGREQ:
    case TTI_MQTT_PINGRESP:
        return rem == 0 ? TT_OK : EPROTO_(why, "PINGREQ/PINGRESP with a non-zero length");
    case TTI_MQTT_CONNACK:
        if (version == TTI_MQTT_V311 && rem != 2) return EPROTO_(why, "CONNACK length is not 2");
        if (rem < 2) return EPROTO_(why, "CONNACK too short");
        return TT_OK;
    case TTI_MQTT_PUBACK:
    case TTI_MQTT_PUBREC:
    case TTI_MQTT_PUBREL:
    case TTI_MQTT_PUBCOMP:
        if (version == TTI_MQTT_V311 && rem != 2) return EPROTO_(why, "acknowledgement length is not 2");
        if (rem < 2) return EPROTO_(why, "acknowledgement too short");
        return TT_OK;
    case TTI_MQTT_UNSUBACK:
        if (version == TTI_MQTT_V311 && rem != 2) return EPROTO_(why, "UNSUBACK length is not 2");
        if (rem < 2) return EPROTO_(why, "UNSUBACK too short");
        return TT_OK;
    case TTI_MQTT_DISCONNECT:
        if (version == TTI_MQTT_V311 && rem != 0)
            return EPROTO_(why, "DISCONNECT with a non-zero length in MQTT 3.1.1");
        return TT_OK;
    default:
        return TT_OK;
    }
}

int tti_mqtt_decode_fixed(const uint8_t *data, size_t size, uint8_t version,
                          uint32_t max_packet_size, tti_mqtt_fixed *out, const char **why) {
    if ((!data && size) || !out) return tti_mqtt_fail(why, TT_EINVAL, "NULL argument");
    if (version != 0 && version != TTI_MQTT_V311 && version != TTI_MQTT_V5)
        return tti_mqtt_fail(why, TT_EINVAL, "unsupported protocol version");
    if (size == 0) return 0;
    uint8_t type = data[0] >> 4, flags = data[0] & 0x0F;
    int rc = check_type_flags(type, flags, version, why);
    if (rc) return rc;
    uint32_t rem;
    int n = tti_mqtt_vbi_get(data + 1, size - 1, &rem);
    if (n == 0) return 0;
    if (n < 0) return EPROTO_(why, "remaining length longer than 4 bytes");
    size_t total = 1u + (size_t)n + rem;
    if (max_packet_size && total > max_packet_size)
        return EPROTO_(why, "packet exceeds the maximum packet size");
    rc = check_remaining(type, rem, version, why);
    if (rc) return rc;
    out->type = type;
    out->flags = flags;
    out->header_len = (uint8_t)(1 + n);
    out->remaining = rem;
    out->total = total;
    return 1 + n;
}

/* ---- Packet bodies ------------------------------------------------------- */

static int dec_connect(rd *r, uint8_t version, tti_mqtt_pkt *pkt, const char **why) {
    tti_mqtt_connect *c = &pkt->u.connect;
    tti_mqtt_str name;
    uint8_t level, flags;
    if (!rd_str(r, &name)) return EPROTO_(why, "CONNECT too short for the protocol name");
    if (name.len != 4 || memcmp(name.ptr, "MQTT", 4) != 0)
        return EPROTO_(why, "CONNECT protocol name is not \"MQTT\"");
    if (!rd_u8(r, &level)) return EPROTO_(why, "CONNECT too short for the protocol level");
    if (level != TTI_MQTT_V311 && level != TTI_MQTT_V5)
        return EPROTO_(why, "CONNECT with an unsupported protocol level");
    if (version && level != version)
        return EPROTO_(why, "CONNECT protocol level differs from the expected version");
    if (!rd_u8(r, &flags)) return EPROTO_(why, "CONNECT too short for its flags");
    if (flags & 0x01) return EPROTO_(why, "CONNECT reserved flag is set");
    c->level = level;
    c->clean_start = (flags >> 1) & 1u;
    c->will = (flags >> 2) & 1u;
    c->will_qos = (flags >> 3) & 3u;
    c->will_retain = (flags >> 5) & 1u;
    c->has_password = (flags >> 6) & 1u;
    c->has_username = (flags >> 7) & 1u;
    if (!c->will && (c->will_qos || c->will_retain))
        return EPROTO_(why, "CONNECT will QoS or retain set without the will flag");
    if (c->will_qos == 3) return EPROTO_(why, "CONNECT will QoS 3");
    if (level == TTI_MQTT_V311 && c->has_password && !c->has_username)
        return EPROTO_(why, "CONNECT password flag without the user name flag");
    if (!rd_u16(r, &c->keep_alive)) return EPROTO_(why, "CONNECT too short for keep alive");
    int rc;
    if (level == TTI_MQTT_V5 && (rc = rd_props(r, TTI_MQTT_CONNECT, &pkt->props, why)) != 0)
        return rc;
    if (!rd_str(r, &c->client_id)) return EPROTO_(why, "CONNECT client identifier truncated");
    if (!tti_mqtt_utf8_valid(c->client_id.ptr, c->client_id.len))
        return EPROTO_(why, "CONNECT client identifier is not valid UTF-8");
    if (c->will) {
        if (level == TTI_MQTT_V5 &&
            (rc = rd_props(r, TTI_MQTT_CTX_WILL, &c->will_props, why)) != 0)
            return rc;
        if (!rd_str(r, &c->will_topic)) return EPROTO_(why, "CONNECT will topic truncated");
        const char *bad = tti_mqtt_topic_check(c->will_topic.ptr, c->will_topic.len);
        if (bad) return EPROTO_(why, bad);
        if (!rd_bin(r, &c->will_payload)) return EPROTO_(why, "CONNECT will payload truncated");
    }
    if (c->has_username) {
        if (!rd_str(r, &c->username)) return EPROTO_(why, "CONNECT user name truncated");
        if (!tti_mqtt_utf8_valid(c->username.ptr, c->username.len))
            return EPROTO_(why, "CONNECT user name is not valid UTF-8");
    }
    if (c->has_password && !rd_bin(r, &c->password))
        return EPROTO_(why, "CONNECT password truncated");
    return rd_done(r, why);
}

static int dec_connack(rd *r, uint8_t version, tti_mqtt_pkt *pkt, const char **why) {
    /* The length (>= 2) was checked with the fixed header. */
    uint8_t flags = r->p[0], code = r->p[1];
    r->p += 2;
    if (flags & 0xFE) return EPROTO_(why, "CONNACK reserved flags are set");
    if (!tti_mqtt_reason_allowed(TTI_MQTT_CONNACK, version, code))
        return EPROTO_(why, version == TTI_MQTT_V5 ? "CONNACK reason code not allowed"
                                                   : "CONNACK return code is reserved");
    pkt->u.connack.session_present = flags & 1u;
    pkt->reason = code;
    if (pkt->u.connack.session_present && code != 0)
        return EPROTO_(why, "CONNACK session present with a failure code");
    if (version == TTI_MQTT_V5) {
        int rc = rd_props(r, TTI_MQTT_CONNACK, &pkt->props, why);
        if (rc) return rc;
    }
    return rd_done(r, why);
}

static int dec_publish(rd *r, uint8_t version, tti_mqtt_pkt *pkt, const char **why) {
    tti_mqtt_publish *pb = &pkt->u.publish;
    pb->dup = (pkt->flags >> 3) & 1u;
    pb->qos = (pkt->flags >> 1) & 3u;
    pb->retain = pkt->flags & 1u;
    if (!rd_str(r, &pb->topic)) return EPROTO_(why, "PUBLISH topic truncated");
    if (pb->topic.len == 0) {
        if (version != TTI_MQTT_V5) return EPROTO_(why, "PUBLISH with an empty topic");
    } else {
        const char *bad = tti_mqtt_topic_check(pb->topic.ptr, pb->topic.len);
        if (bad) return EPROTO_(why, bad);
    }
    int rc;
    if (pb->qos && (rc = rd_packet_id(r, &pkt->packet_id, why)) != 0) return rc;
    if (version == TTI_MQTT_V5) {
        if ((rc = rd_props(r, TTI_MQTT_PUBLISH, &pkt->props, why)) != 0) return rc;
        if (pb->topic.len == 0 && !(pkt->props.present & TTI_MQTT_PBIT(TTI_MQTT_PROP_TOPIC_ALIAS)))
            return EPROTO_(why, "PUBLISH with an empty topic and no topic alias");
    }
    pb->payload.ptr = r->p;
    pb->payload.len = rd_left(r);
    r->p = r->end;
    return TT_OK;
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP. */
static int dec_ack(rd *r, uint8_t version, tti_mqtt_pkt *pkt, const char **why) {
    int rc = rd_packet_id(r, &pkt->packet_id, why);
    if (rc) return rc;
    if (version == TTI_MQTT_V5 && rd_left(r) > 0) {
        (void)rd_u8(r, &pkt->reason);
        if (!tti_mqtt_reason_allowed(pkt->type, version, pkt->reason))
            return EPROTO_(why, "reason code not allowed in this acknowledgement");
        if (rd_left(r) > 0 && (rc = rd_props(r, pkt->type, &pkt->props, why)) != 0) return rc;
    }
    return rd_done(r, why);
}

/* SUBSCRIBE and UNSUBSCRIBE. */
static int dec_subscribe(rd *r, uint8_t version, tti_mqtt_pkt *pkt, const char **why) {
    tti_mqtt_subscribe *s = &pkt->u.subscribe;
    bool opts = pkt->type == TTI_MQTT_SUBSCRIBE;
    int rc = rd_packet_id(r, &pkt->packet_id, why);
    if (rc) return rc;
    if (version == TTI_MQTT_V5 && (rc = rd_props(r, pkt->type, &pkt->props, why)) != 0) return rc;
    if (rd_left(r) == 0) return EPROTO_(why, "no topic filter in the payload");
    s->raw.ptr = r->p;
    s->raw.len = rd_left(r);
    while (rd_left(r) > 0) {
        tti_mqtt_str f;
        if (!rd_str(r, &f)) return EPROTO_(why, "topic filter truncated");
        const char *bad = tti_mqtt_filter_check(f.ptr, f.len, version);
        if (bad) return EPROTO_(why, bad);
        if (opts) {
            uint8_t o;
            if (!rd_u8(r, &o)) return EPROTO_(why, "subscription options missing");
            if ((o & 3u) == 3u) return EPROTO_(why, "subscription with QoS 3");
            if (version == TTI_MQTT_V5) {
                if (o & 0xC0) return EPROTO_(why, "subscription options reserved bits set");
                if (((o >> 4) & 3u) == 3u) return EPROTO_(why, "retain handling 3");
                if ((o & 0x04) && tti_mqtt_shared_filter(f.ptr, f.len))
                    return EPROTO_(why, "no local on a shared subscription");
            } else if (o & 0xFC) {
                return EPROTO_(why, "subscription options reserved bits set");
            }
        }
        s->count++;
    }
    return TT_OK;
}

/* SUBACK and UNSUBACK. */
static int dec_suback(rd *r, uint8_t version, tti_mqtt_pkt *pkt, const char **why) {
    int rc = rd_packet_id(r, &pkt->packet_id, why);
    if (rc) return rc;
    if (pkt->type == TTI_MQTT_UNSUBACK && version != TTI_MQTT_V5) return rd_done(r, why);
    if (version == TTI_MQTT_V5 && (rc = rd_props(r, pkt->type, &pkt->props, why)) != 0) return rc;
    size_t n = rd_left(r);
    if (n == 0) return EPROTO_(why, "no reason codes in the payload");
    for (size_t i = 0; i < n; i++)
        if (!tti_mqtt_reason_allowed(pkt->type, version, r->p[i]))
            return EPROTO_(why, "reason code not allowed in this acknowledgement");
    pkt->u.suback.codes = r->p;
    pkt->u.suback.count = n;
    r->p = r->end;
    return TT_OK;
}

/* DISCONNECT and AUTH (MQTT 5; the 3.1.1 DISCONNECT is empty). */
static int dec_disconnect(rd *r, uint8_t version, tti_mqtt_pkt *pkt, const char **why) {
    if (version != TTI_MQTT_V5 || rd_left(r) == 0) return rd_done(r, why);
    (void)rd_u8(r, &pkt->reason);
    if (!tti_mqtt_reason_allowed(pkt->type, version, pkt->reason))
        return pkt->type == TTI_MQTT_AUTH ? EPROTO_(why, "AUTH reason code not allowed")
                                          : EPROTO_(why, "DISCONNECT reason code not allowed");
    int rc;
    if (rd_left(r) > 0 && (rc = rd_props(r, pkt->type, &pkt->props, why)) != 0) return rc;
    if (pkt->type == TTI_MQTT_AUTH && pkt->reason != 0 &&
        !(pkt->props.present & TTI_MQTT_PBIT(TTI_MQTT_PROP_AUTH_METHOD)))
        return EPROTO_(why, "AUTH without an authentication method");
    return rd_done(r, why);
}

int tti_mqtt_decode(const uint8_t *data, size_t size, uint8_t version,
                    uint32_t max_packet_size, tti_mqtt_pkt *out, const char **why) {
    if (!out) return tti_mqtt_fail(why, TT_EINVAL, "NULL argument");
    /* Zero the common part; the body decoders zero their union member. */
    memset(out, 0, offsetof(tti_mqtt_pkt, u));
    tti_mqtt_fixed fh;
    int hl = tti_mqtt_decode_fixed(data, size, version, max_packet_size, &fh, why);
    if (hl <= 0) return hl;
    if (version == 0 && fh.type != TTI_MQTT_CONNECT)
        return tti_mqtt_fail(why, TT_EINVAL, "protocol version 0 is only for CONNECT");
    out->len = fh.total;
    if (size < fh.total) return 0;
    out->type = fh.type;
    out->flags = fh.flags;
    switch (fh.type) { /* the union member the body decoder fills */
    case TTI_MQTT_CONNECT: memset(&out->u.connect, 0, sizeof out->u.connect); break;
    case TTI_MQTT_CONNACK: memset(&out->u.connack, 0, sizeof out->u.connack); break;
    case TTI_MQTT_PUBLISH: memset(&out->u.publish, 0, sizeof out->u.publish); break;
    case TTI_MQTT_SUBSCRIBE:
    case TTI_MQTT_UNSUBSCRIBE: memset(&out->u.subscribe, 0, sizeof out->u.subscribe); break;
    default: memset(&out->u.suback, 0, sizeof out->u.suback); break;
    }
    rd r = { data + hl, data + fh.total };
    int rc;
    switch (fh.type) {
    case TTI_MQTT_CONNECT: rc = dec_connect(&r, version, out, why); break;
    case TTI_MQTT_CONNACK: rc = dec_connack(&r, version, out, why); break;
    case TTI_MQTT_PUBLISH: rc = dec_publish(&r, version, out, why); break;
    case TTI_MQTT_PUBACK:
    case TTI_MQTT_PUBREC:
    case TTI_MQTT_PUBREL:
    case TTI_MQTT_PUBCOMP: rc = dec_ack(&r, version, out, why); break;
    case TTI_MQTT_SUBSCRIBE:
    case TTI_MQTT_UNSUBSCRIBE: rc = dec_subscribe(&r, version, out, why); break;
    case TTI_MQTT_SUBACK:
    case TTI_MQTT_UNSUBACK: rc = dec_suback(&r, version, out, why); break;
    case TTI_MQTT_PINGREQ:
    case TTI_MQTT_PINGRESP: rc = TT_OK; break;
    default: rc = dec_disconnect(&r, version, out, why); break; /* DISCONNECT, AUTH */
    }
    return rc ? rc : (int)fh.total;
}
