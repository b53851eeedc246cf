/* MQTT codec utilities: string and topic rules, reason code tables, the
 * subscription iterator. */
#include <string.h>
#include "codecs/mqtt/mqtt_internal.h"

/* ---- Strings and topics ------------------------------------------------- */

bool tti_mqtt_utf8_valid(const char *str, size_t len) {
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c == 0) return false; /* U+0000 is forbidden (MQTT-1.5.4-2) */
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c < 0xC2) {
            return false; /* stray continuation byte or overlong 2-byte form */
        } else if (c < 0xE0) {
            need = 1;
        } else if (c < 0xF0) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;      /* overlong */
            else if (c == 0xED) hi = 0x9F; /* U+D800..U+DFFF surrogates */
        } else if (c < 0xF5) {
            need = 3;
            if (c == 0xF0) lo = 0x90;      /* overlong */
            else if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
        } else {
            return false;
        }
        if (len - i <= need) return false;
        if (s[i + 1] < lo || s[i + 1] > hi) return false;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80) return false;
        i += need + 1;
    }
    return true;
}

const char *tti_mqtt_topic_check(const char *s, size_t len) {
    if (len == 0) return "empty topic name";
    if (len > 65535) return "topic name longer than 65535 bytes";
    /* One pass over the ASCII prefix (the usual whole topic); wildcards are
     * ASCII, so a non-ASCII tail only needs the UTF-8 check and a scan. */
    size_t i = 0;
    /* Eight bytes at a time while none is non-ASCII, NUL, '+' or '#'. */
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, s + i, 8);
        uint64_t plus = v ^ (ones * '+'), hash = v ^ (ones * '#');
        uint64_t zero = ((v - ones) & ~v) | ((plus - ones) & ~plus) | ((hash - ones) & ~hash);
        if ((v | zero) & highs) break;
    }
    if (i < len && len >= 8 && i + 8 > len) {
        /* The tail as one overlapping load: clean means the topic is. */
        uint64_t v;
        memcpy(&v, s + len - 8, 8);
        uint64_t plus = v ^ (ones * '+'), hash = v ^ (ones * '#');
        uint64_t zero = ((v - ones) & ~v) | ((plus - ones) & ~plus) | ((hash - ones) & ~hash);
        if (!((v | zero) & highs)) return NULL;
    }
    for (; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) break;
        if (c == '+' || c == '#') return "wildcard in a topic name";
        if (c == 0) return "topic name is not valid UTF-8";
    }
    if (i < len) {
        if (memchr(s + i, '+', len - i) || memchr(s + i, '#', len - i))
            return "wildcard in a topic name";
        if (!tti_mqtt_utf8_valid(s + i, len - i)) return "topic name is not valid UTF-8";
    }
    return NULL;
}

bool tti_mqtt_topic_valid(const char *s, size_t len) {
    return tti_mqtt_topic_check(s, len) == NULL;
}

/* Wildcard placement only; `s` is non-empty. */
static bool filter_levels_valid(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+') {
            if ((i > 0 && s[i - 1] != '/') || (i + 1 < len && s[i + 1] != '/')) return false;
        } else if (c == '#') {
            if ((i > 0 && s[i - 1] != '/') || i + 1 != len) return false;
        }
    }
    return true;
}

#define TTI_SHARE_PREFIX     "$share/"
#define TTI_SHARE_PREFIX_LEN 7u

bool tti_mqtt_shared_filter(const char *s, size_t len) {
    return len >= TTI_SHARE_PREFIX_LEN && memcmp(s, TTI_SHARE_PREFIX, TTI_SHARE_PREFIX_LEN) == 0;
}

const char *tti_mqtt_filter_check(const char *s, size_t len, uint8_t version) {
    if (len == 0) return "empty topic filter";
    if (len > 65535) return "topic filter longer than 65535 bytes";
    if (!tti_mqtt_utf8_valid(s, len)) return "topic filter is not valid UTF-8";
    if (version == TTI_MQTT_V5 && tti_mqtt_shared_filter(s, len)) {
        /* $share/{ShareName}/{filter}: a non-empty name without '/', '+', '#'. */
        const char *name = s + TTI_SHARE_PREFIX_LEN;
        size_t rest = len - TTI_SHARE_PREFIX_LEN;
        const char *slash = memchr(name, '/', rest);
        if (!slash) return "shared subscription without a topic filter";
        if (slash == name) return "shared subscription without a share name";
        size_t nlen = (size_t)(slash - name);
        if (memchr(name, '+', nlen) || memchr(name, '#', nlen))
            return "wildcard in a share name";
        const char *f = slash + 1;
        size_t flen = rest - nlen - 1;
        if (flen == 0) return "shared subscription without a topic filter";
        s = f;
        len = flen;
    }
    if (!filter_levels_valid(s, len)) return "wildcard not alone in its topic level, or '#' not last";
    return NULL;
}

bool tti_mqtt_filter_valid(const char *s, size_t len, uint8_t version) {
    return tti_mqtt_filter_check(s, len, version) == NULL;
}

/* ---- Reason codes ------------------------------------------------------- */

const char *tti_mqtt_reason_str(uint8_t code) {
    switch (code) {
    case 0x00: return "Success";
    case 0x01: return "Granted QoS 1";
    case 0x02: return "Granted QoS 2";
    case 0x04: return "Disconnect with Will Message";
    case 0x10: return "No matching subscribers";
    case 0x11: return "No subscription existed";
    case 0x18: return "Continue authentication";
    case 0x19: return "Re-authenticate";
    case 0x80: return "Unspecified error";
    case 0x81: return "Malformed Packet";
    case 0x82: return "Protocol Error";
    case 0x83: return "Implementation specific error";
    case 0x84: return "Unsupported Protocol Version";
    case 0x85: return "Client Identifier not valid";
    case 0x86: return "Bad User Name or Password";
    case 0x87: return "Not authorized";
    case 0x88: return "Server unavailable";
    case 0x89: return "Server busy";
    case 0x8A: return "Banned";
    case 0x8B: return "Server shutting down";
    case 0x8C: return "Bad authentication method";
    case 0x8D: return "Keep Alive timeout";
    case 0x8E: return "Session taken over";
    case 0x8F: return "Topic Filter invalid";
    case 0x90: return "Topic Name invalid";
    case 0x91: return "Packet Identifier in use";
    case 0x92: return "Packet Identifier not found";
    case 0x93: return "Receive Maximum exceeded";
    case 0x94: return "Topic Alias invalid";
    case 0x95: return "Packet too large";
    case 0x96: return "Message rate too high";
    case 0x97: return "Quota exceeded";
    case 0x98: return "Administrative action";
    case 0x99: return "Payload format invalid";
    case 0x9A: return "Retain not supported";
    case 0x9B: return "QoS not supported";
    case 0x9C: return "Use another server";
    case 0x9D: return "Server moved";
    case 0x9E: return "Shared Subscriptions not supported";
    case 0x9F: return "Connection rate exceeded";
    case 0xA0: return "Maximum connect time";
    case 0xA1: return "Subscription Identifiers not supported";
    case 0xA2: return "Wildcard Subscriptions not supported";
    default:   return "Unknown reason code";
    }
}

const char *tti_mqtt_connack_rc_str(uint8_t code) {
    switch (code) {
    case 0x00: return "Connection accepted";
    case 0x01: return "Connection refused: unacceptable protocol version";
    case 0x02: return "Connection refused: identifier rejected";
    case 0x03: return "Connection refused: server unavailable";
    case 0x04: return "Connection refused: bad user name or password";
    case 0x05: return "Connection refused: not authorized";
    default:   return "Connection refused: unknown return code";
    }
}

const char *tti_mqtt_type_str(uint8_t type) {
    static const char *const names[16] = {
        "?",         "CONNECT",  "CONNACK",     "PUBLISH", "PUBACK",   "PUBREC",
        "PUBREL",    "PUBCOMP",  "SUBSCRIBE",   "SUBACK",  "UNSUBSCRIBE", "UNSUBACK",
        "PINGREQ",   "PINGRESP", "DISCONNECT",  "AUTH",
    };
    return type < 16 ? names[type] : "?";
}

/* Reason codes each MQTT 5 packet may carry (section 2.4 and each packet's table). */
static const uint8_t rc_connack[] = { 0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
                                      0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A,
                                      0x9B, 0x9C, 0x9D, 0x9F };
static const uint8_t rc_puback[] = { 0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99 };
static const uint8_t rc_pubrel[] = { 0x00, 0x92 };
static const uint8_t rc_suback[] = { 0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97,
                                     0x9E, 0xA1, 0xA2 };
static const uint8_t rc_unsuback[] = { 0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91 };
/* DISCONNECT: the packet's own table plus 0x8C, which section 2.4 also allows. */
static const uint8_t rc_disconnect[] = { 0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B,
                                         0x8C, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96,
                                         0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F,
                                         0xA0, 0xA1, 0xA2 };
static const uint8_t rc_auth[] = { 0x00, 0x18, 0x19 };

static bool rc_in(uint8_t code, const uint8_t *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (list[i] == code) return true;
    return false;
}

#define TTI_RC_IN(code, list) rc_in(code, list, sizeof list)

bool tti_mqtt_reason_allowed(uint8_t type, uint8_t version, uint8_t code) {
    if (version != TTI_MQTT_V5) {
        switch (type) {
        case TTI_MQTT_CONNACK: return code <= TTI_MQTT_CONNACK_NOT_AUTHORIZED;
        case TTI_MQTT_SUBACK: return code <= 2 || code == TTI_MQTT_SUBACK_FAILURE;
        default: return code == 0;
        }
    }
    switch (type) {
    case TTI_MQTT_CONNACK: return TTI_RC_IN(code, rc_connack);
    case TTI_MQTT_PUBACK:
    case TTI_MQTT_PUBREC: return TTI_RC_IN(code, rc_puback);
    case TTI_MQTT_PUBREL:
    case TTI_MQTT_PUBCOMP: return TTI_RC_IN(code, rc_pubrel);
    case TTI_MQTT_SUBACK: return TTI_RC_IN(code, rc_suback);
    case TTI_MQTT_UNSUBACK: return TTI_RC_IN(code, rc_unsuback);
    case TTI_MQTT_DISCONNECT: return TTI_RC_IN(code, rc_disconnect);
    case TTI_MQTT_AUTH: return TTI_RC_IN(code, rc_auth);
    default: return code == 0;
    }
}

/* ---- Subscription iterator ---------------------------------------------- */

void tti_mqtt_subs_begin(tti_mqtt_iter *it, const tti_mqtt_pkt *pkt) {
    const tti_mqtt_subscribe *s = &pkt->u.subscribe;
    memset(it, 0, sizeof *it);
    it->opts = pkt->type == TTI_MQTT_SUBSCRIBE;
    it->arr = s->subs;
    it->n = s->count;
    if (!s->subs && s->raw.ptr) {
        it->p = s->raw.ptr;
        it->end = s->raw.ptr + s->raw.len;
    }
}

bool tti_mqtt_subs_next(tti_mqtt_iter *it, tti_mqtt_sub *out) {
    if (it->i >= it->n) return false;
    if (it->arr) {
        *out = ((const tti_mqtt_sub *)it->arr)[it->i++];
        return true;
    }
    size_t need = it->opts ? 3u : 2u;
    if (!it->p || (size_t)(it->end - it->p) < need) return false;
    size_t len = tti_mqtt_get_u16(it->p);
    if ((size_t)(it->end - it->p) < need + len) return false;
    memset(out, 0, sizeof *out);
    out->filter.ptr = (const char *)it->p + 2;
    out->filter.len = len;
    it->p += 2 + len;
    if (it->opts) {
        uint8_t o = *it->p++;
        out->qos = o & 3u;
        out->no_local = (o >> 2) & 1u;
        out->retain_as_published = (o >> 3) & 1u;
        out->retain_handling = (o >> 4) & 3u;
    }
    it->i++;
    return true;
}
