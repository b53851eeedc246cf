/* MQTT packet encoder: checks a tti_mqtt_pkt, sizes it, then writes it into a
 * caller buffer in one pass. A packet the encoder accepts always decodes. */
#include "codecs/mqtt/mqtt_internal.h"

#define EINVAL_(why, msg) tti_mqtt_fail(why, TT_EINVAL, msg)

/* Sizes worked out by plan(): Remaining Length and the property blocks. */
typedef struct plan {
    size_t  rem;      /* whole Remaining Length (payload included) */
    size_t  payload;  /* PUBLISH payload bytes inside rem */
    size_t  props;    /* property bytes, without their length */
    size_t  wprops;   /* CONNECT will properties */
    uint8_t form;     /* acks/DISCONNECT/AUTH: 0 short, 1 reason only, 2 reason + props */
    uint8_t flags;    /* fixed-header low nibble */
} plan;

static bool str_ok(const tti_mqtt_str *s) {
    return s->len <= 65535 && tti_mqtt_utf8_valid(s->ptr, s->len);
}

static int plan_props(const tti_mqtt_props *props, uint8_t ctx, size_t *size, size_t *total,
                      const char **why) {
    int rc = tti_mqtt_props_size(props, ctx, size, why);
    if (rc) return rc;
    *total += tti_mqtt_vbi_len((uint32_t)*size) + *size;
    return TT_OK;
}

static int plan_connect(const tti_mqtt_pkt *pkt, uint8_t v, plan *pl, const char **why) {
    const tti_mqtt_connect *c = &pkt->u.connect;
    size_t n = 10; /* protocol name, level, flags, keep alive */
    int rc;
    if (v == TTI_MQTT_V5 && (rc = plan_props(&pkt->props, TTI_MQTT_CONNECT, &pl->props, &n, why)))
        return rc;
    if (!str_ok(&c->client_id)) return EINVAL_(why, "client identifier is not a valid string");
    n += 2 + c->client_id.len;
    if (c->will) {
        if (c->will_qos > 2) return EINVAL_(why, "will QoS above 2");
        if (v == TTI_MQTT_V5 &&
            (rc = plan_props(&c->will_props, TTI_MQTT_CTX_WILL, &pl->wprops, &n, why)))
            return rc;
        const char *bad = tti_mqtt_topic_check(c->will_topic.ptr, c->will_topic.len);
        if (bad) return EINVAL_(why, bad);
        if (c->will_payload.len > 65535) return EINVAL_(why, "will payload above 65535 bytes");
        n += 4 + c->will_topic.len + c->will_payload.len;
    } else if (c->will_qos || c->will_retain) {
        return EINVAL_(why, "will QoS or retain without a will");
    }
    if (c->has_username) {
        if (!str_ok(&c->username)) return EINVAL_(why, "user name is not a valid string");
        n += 2 + c->username.len;
    }
    if (c->has_password) {
        if (v == TTI_MQTT_V311 && !c->has_username)
            return EINVAL_(why, "MQTT 3.1.1 needs a user name to send a password");
        if (c->password.len > 65535) return EINVAL_(why, "password above 65535 bytes");
        n += 2 + c->password.len;
    }
    pl->rem = n;
    return TT_OK;
}

static int plan_publish_hdr(const tti_mqtt_pkt *pkt, uint8_t v, plan *pl, const char **why) {
    const tti_mqtt_publish *pb = &pkt->u.publish;
    if (pb->qos > 2) return EINVAL_(why, "PUBLISH QoS above 2");
    if (pb->dup && pb->qos == 0) return EINVAL_(why, "PUBLISH QoS 0 with DUP");
    if (pb->qos && pkt->packet_id == 0) return EINVAL_(why, "packet identifier is 0");
    const char *bad = pb->topic.len ? tti_mqtt_topic_check(pb->topic.ptr, pb->topic.len) : NULL;
    if (bad) return EINVAL_(why, bad);
    size_t n = 2 + pb->topic.len + (pb->qos ? 2u : 0u);
    if (v == TTI_MQTT_V5) {
        int rc = plan_props(&pkt->props, TTI_MQTT_PUBLISH, &pl->props, &n, why);
        if (rc) return rc;
        if (pb->topic.len == 0 &&
            !(pkt->props.present & TTI_MQTT_PBIT(TTI_MQTT_PROP_TOPIC_ALIAS)))
            return EINVAL_(why, "PUBLISH with an empty topic and no topic alias");
    } else if (pb->topic.len == 0) {
        return EINVAL_(why, "PUBLISH with an empty topic");
    }
    if (pb->payload.len > TTI_MQTT_MAX_REMAINING) return EINVAL_(why, "payload too large");
    pl->payload = pb->payload.len;
    pl->rem = n + pb->payload.len;
    pl->flags = (uint8_t)((pb->dup ? 8u : 0u) | (unsigned)pb->qos << 1 | (pb->retain ? 1u : 0u));
    return TT_OK;
}

/* Acknowledgements and DISCONNECT/AUTH in MQTT 5 drop what is implied:
 * no properties, then a Success reason code. */
static int plan_reason_props(const tti_mqtt_pkt *pkt, size_t base, plan *pl, const char **why) {
    size_t n = 0;
    int rc = plan_props(&pkt->props, pkt->type, &pl->props, &n, why);
    if (rc) return rc;
    if (pl->props) {
        pl->form = 2;
        pl->rem = base + 1 + n;
    } else if (pkt->reason) {
        pl->form = 1;
        pl->rem = base + 1;
    } else {
        pl->form = 0;
        pl->rem = base;
    }
    return TT_OK;
}

static int plan_subscribe(const tti_mqtt_pkt *pkt, uint8_t v, plan *pl, const char **why) {
    bool opts = pkt->type == TTI_MQTT_SUBSCRIBE;
    size_t n = 2;
    int rc;
    if (pkt->packet_id == 0) return EINVAL_(why, "packet identifier is 0");
    if (v == TTI_MQTT_V5 && (rc = plan_props(&pkt->props, pkt->type, &pl->props, &n, why)))
        return rc;
    tti_mqtt_iter it;
    tti_mqtt_sub s;
    size_t count = 0;
    tti_mqtt_subs_begin(&it, pkt);
    while (tti_mqtt_subs_next(&it, &s)) {
        const char *bad = tti_mqtt_filter_check(s.filter.ptr, s.filter.len, v);
        if (bad) return EINVAL_(why, bad);
        if (opts) {
            if (s.qos > 2) return EINVAL_(why, "subscription QoS above 2");
            if (v == TTI_MQTT_V5) {
                if (s.retain_handling > 2) return EINVAL_(why, "retain handling above 2");
                if (s.no_local && tti_mqtt_shared_filter(s.filter.ptr, s.filter.len))
                    return EINVAL_(why, "no local on a shared subscription");
            }
        }
        n += 2 + s.filter.len + (opts ? 1u : 0u);
        count++;
        if (n > TTI_MQTT_MAX_REMAINING) break;
    }
    if (count == 0) return EINVAL_(why, "no topic filter");
    pl->rem = n;
    pl->flags = 0x2;
    return TT_OK;
}

static int plan_suback(const tti_mqtt_pkt *pkt, uint8_t v, plan *pl, const char **why) {
    const tti_mqtt_suback *sa = &pkt->u.suback;
    size_t n = 2;
    int rc;
    if (pkt->packet_id == 0) return EINVAL_(why, "packet identifier is 0");
    if (pkt->type == TTI_MQTT_UNSUBACK && v == TTI_MQTT_V311) {
        pl->rem = 2;
        return TT_OK;
    }
    if (v == TTI_MQTT_V5 && (rc = plan_props(&pkt->props, pkt->type, &pl->props, &n, why)))
        return rc;
    if (sa->count == 0 || !sa->codes) return EINVAL_(why, "no reason codes");
    if (sa->count > TTI_MQTT_MAX_REMAINING) return EINVAL_(why, "too many reason codes");
    for (size_t i = 0; i < sa->count; i++)
        if (!tti_mqtt_reason_allowed(pkt->type, v, sa->codes[i]))
            return EINVAL_(why, "reason code not allowed in this acknowledgement");
    pl->rem = n + sa->count;
    return TT_OK;
}

static int plan_packet(const tti_mqtt_pkt *pkt, uint8_t v, bool header_only, plan *pl,
                       const char **why) {
    memset(pl, 0, sizeof *pl);
    if (!pkt) return EINVAL_(why, "NULL packet");
    if (v != TTI_MQTT_V311 && v != TTI_MQTT_V5) return EINVAL_(why, "unsupported protocol version");
    if (header_only && pkt->type != TTI_MQTT_PUBLISH) return EINVAL_(why, "not a PUBLISH packet");
    int rc;
    switch (pkt->type) {
    case TTI_MQTT_CONNECT: rc = plan_connect(pkt, v, pl, why); break;
    case TTI_MQTT_CONNACK:
        if (!tti_mqtt_reason_allowed(TTI_MQTT_CONNACK, v, pkt->reason))
            return EINVAL_(why, "CONNACK code not allowed");
        if (pkt->u.connack.session_present && pkt->reason)
            return EINVAL_(why, "CONNACK session present with a failure code");
        pl->rem = 2;
        rc = v == TTI_MQTT_V5 ? plan_props(&pkt->props, TTI_MQTT_CONNACK, &pl->props, &pl->rem, why)
                              : TT_OK;
        break;
    case TTI_MQTT_PUBLISH: rc = plan_publish_hdr(pkt, v, pl, why); break;
    case TTI_MQTT_PUBACK:
    case TTI_MQTT_PUBREC:
    case TTI_MQTT_PUBREL:
    case TTI_MQTT_PUBCOMP:
        if (pkt->packet_id == 0) return EINVAL_(why, "packet identifier is 0");
        pl->rem = 2;
        pl->flags = pkt->type == TTI_MQTT_PUBREL ? 0x2 : 0;
        if (v == TTI_MQTT_V311) {
            rc = TT_OK;
            break;
        }
        if (!tti_mqtt_reason_allowed(pkt->type, v, pkt->reason))
            return EINVAL_(why, "reason code not allowed in this acknowledgement");
        rc = plan_reason_props(pkt, 2, pl, why);
        break;
    case TTI_MQTT_SUBSCRIBE:
    case TTI_MQTT_UNSUBSCRIBE: rc = plan_subscribe(pkt, v, pl, why); break;
    case TTI_MQTT_SUBACK:
    case TTI_MQTT_UNSUBACK: rc = plan_suback(pkt, v, pl, why); break;
    case TTI_MQTT_PINGREQ:
    case TTI_MQTT_PINGRESP: rc = TT_OK; break;
    case TTI_MQTT_DISCONNECT:
    case TTI_MQTT_AUTH:
        if (v == TTI_MQTT_V311) {
            if (pkt->type == TTI_MQTT_AUTH) return EINVAL_(why, "AUTH needs MQTT 5");
            rc = TT_OK;
            break;
        }
        if (!tti_mqtt_reason_allowed(pkt->type, v, pkt->reason))
            return EINVAL_(why, "reason code not allowed in this packet");
        if (pkt->type == TTI_MQTT_AUTH && pkt->reason != 0 &&
            !(pkt->props.present & TTI_MQTT_PBIT(TTI_MQTT_PROP_AUTH_METHOD)))
            return EINVAL_(why, "AUTH without an authentication method");
        rc = plan_reason_props(pkt, 0, pl, why);
        break;
    default: return EINVAL_(why, "unknown packet type");
    }
    if (rc) return rc;
    if (pl->rem > TTI_MQTT_MAX_REMAINING) return EINVAL_(why, "packet too large");
    return TT_OK;
}

static size_t header_size(const plan *pl) {
    return 1 + tti_mqtt_vbi_len((uint32_t)pl->rem);
}

int tti_mqtt_encoded_len(const tti_mqtt_pkt *pkt, uint8_t version, const char **why) {
    plan pl;
    int rc = plan_packet(pkt, version, false, &pl, why);
    if (rc) return rc;
    return (int)(header_size(&pl) + pl.rem);
}

/* Write everything but a PUBLISH payload; returns the end. */
static uint8_t *put_packet(uint8_t *p, const tti_mqtt_pkt *pkt, uint8_t v, const plan *pl) {
    *p++ = (uint8_t)(pkt->type << 4 | pl->flags);
    p = tti_mqtt_vbi_put(p, (uint32_t)pl->rem);
    switch (pkt->type) {
    case TTI_MQTT_CONNECT: {
        const tti_mqtt_connect *c = &pkt->u.connect;
        p = tti_mqtt_put_lstr(p, "MQTT", 4);
        *p++ = v;
        *p++ = (uint8_t)((c->has_username ? 0x80u : 0u) | (c->has_password ? 0x40u : 0u) |
                         (c->will && c->will_retain ? 0x20u : 0u) |
                         (c->will ? (unsigned)c->will_qos << 3 | 0x04u : 0u) |
                         (c->clean_start ? 0x02u : 0u));
        p = tti_mqtt_put_u16(p, c->keep_alive);
        if (v == TTI_MQTT_V5) p = tti_mqtt_props_put(p, &pkt->props, pl->props);
        p = tti_mqtt_put_lstr(p, c->client_id.ptr, c->client_id.len);
        if (c->will) {
            if (v == TTI_MQTT_V5) p = tti_mqtt_props_put(p, &c->will_props, pl->wprops);
            p = tti_mqtt_put_lstr(p, c->will_topic.ptr, c->will_topic.len);
            p = tti_mqtt_put_lstr(p, c->will_payload.ptr, c->will_payload.len);
        }
        if (c->has_username) p = tti_mqtt_put_lstr(p, c->username.ptr, c->username.len);
        if (c->has_password) p = tti_mqtt_put_lstr(p, c->password.ptr, c->password.len);
        break;
    }
    case TTI_MQTT_CONNACK:
        *p++ = pkt->u.connack.session_present ? 1u : 0u;
        *p++ = pkt->reason;
        if (v == TTI_MQTT_V5) p = tti_mqtt_props_put(p, &pkt->props, pl->props);
        break;
    case TTI_MQTT_PUBLISH:
        p = tti_mqtt_put_lstr(p, pkt->u.publish.topic.ptr, pkt->u.publish.topic.len);
        if (pkt->u.publish.qos) p = tti_mqtt_put_u16(p, pkt->packet_id);
        if (v == TTI_MQTT_V5) p = tti_mqtt_props_put(p, &pkt->props, pl->props);
        break;
    case TTI_MQTT_PUBACK:
    case TTI_MQTT_PUBREC:
    case TTI_MQTT_PUBREL:
    case TTI_MQTT_PUBCOMP:
    case TTI_MQTT_DISCONNECT:
    case TTI_MQTT_AUTH:
        if (pkt->type < TTI_MQTT_DISCONNECT) p = tti_mqtt_put_u16(p, pkt->packet_id);
        if (pl->form >= 1) *p++ = pkt->reason;
        if (pl->form == 2) p = tti_mqtt_props_put(p, &pkt->props, pl->props);
        break;
    case TTI_MQTT_SUBSCRIBE:
    case TTI_MQTT_UNSUBSCRIBE: {
        p = tti_mqtt_put_u16(p, pkt->packet_id);
        if (v == TTI_MQTT_V5) p = tti_mqtt_props_put(p, &pkt->props, pl->props);
        tti_mqtt_iter it;
        tti_mqtt_sub s;
        tti_mqtt_subs_begin(&it, pkt);
        while (tti_mqtt_subs_next(&it, &s)) {
            p = tti_mqtt_put_lstr(p, s.filter.ptr, s.filter.len);
            if (pkt->type != TTI_MQTT_SUBSCRIBE) continue;
            uint8_t o = s.qos;
            if (v == TTI_MQTT_V5)
                o = (uint8_t)(o | (s.no_local ? 0x04u : 0u) | (s.retain_as_published ? 0x08u : 0u) |
                              (unsigned)s.retain_handling << 4);
            *p++ = o;
        }
        break;
    }
    case TTI_MQTT_SUBACK:
    case TTI_MQTT_UNSUBACK:
        p = tti_mqtt_put_u16(p, pkt->packet_id);
        if (pkt->type == TTI_MQTT_UNSUBACK && v == TTI_MQTT_V311) break;
        if (v == TTI_MQTT_V5) p = tti_mqtt_props_put(p, &pkt->props, pl->props);
        memcpy(p, pkt->u.suback.codes, pkt->u.suback.count);
        p += pkt->u.suback.count;
        break;
    default: /* PINGREQ, PINGRESP */
        break;
    }
    return p;
}

int tti_mqtt_encode(const tti_mqtt_pkt *pkt, uint8_t version, uint8_t *out, size_t cap,
                    const char **why) {
    plan pl;
    int rc = plan_packet(pkt, version, false, &pl, why);
    if (rc) return rc;
    size_t total = header_size(&pl) + pl.rem;
    if (!out || cap < total) return tti_mqtt_fail(why, TT_ENOMEM, "output buffer too small");
    uint8_t *p = put_packet(out, pkt, version, &pl);
    if (pl.payload) {
        memcpy(p, pkt->u.publish.payload.ptr, pl.payload);
        p += pl.payload;
    }
    return (int)(p - out);
}

int tti_mqtt_encode_publish_header(const tti_mqtt_pkt *pkt, uint8_t version, uint8_t *out,
                                   size_t cap, const char **why) {
    plan pl;
    int rc = plan_packet(pkt, version, true, &pl, why);
    if (rc) return rc;
    size_t hdr = header_size(&pl) + pl.rem - pl.payload;
    if (!out || cap < hdr) return tti_mqtt_fail(why, TT_ENOMEM, "output buffer too small");
    return (int)(put_packet(out, pkt, version, &pl) - out);
}
