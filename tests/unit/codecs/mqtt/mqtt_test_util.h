/* Semantic equality of two tti_mqtt_pkt values (lists compared through their
 * iterators, so a decoded packet equals the arrays it was encoded from).
 * Shared by the unit tests and the decode fuzz target. */
#ifndef TT_MQTT_TEST_UTIL_H
#define TT_MQTT_TEST_UTIL_H

#include <stdbool.h>
#include <string.h>

#include "codecs/mqtt/mqtt_codec.h"

static inline bool tt_mqtt_view_eq(const void *a, size_t al, const void *b, size_t bl) {
    return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

#define TT_MQTT_STR_EQ(x, y) tt_mqtt_view_eq((x).ptr, (x).len, (y).ptr, (y).len)

static inline bool tt_mqtt_props_eq(const tti_mqtt_props *a, const tti_mqtt_props *b) {
    if (a->present != b->present) return false;
#define TT_MQTT_HAS(id) (a->present & TTI_MQTT_PBIT(TTI_MQTT_PROP_##id))
#define TT_MQTT_NUM(id, f) \
    if (TT_MQTT_HAS(id) && a->f != b->f) return false
#define TT_MQTT_VIEW(id, f) \
    if (TT_MQTT_HAS(id) && !TT_MQTT_STR_EQ(a->f, b->f)) return false
    TT_MQTT_NUM(PAYLOAD_FORMAT, payload_format);
    TT_MQTT_NUM(MESSAGE_EXPIRY, message_expiry);
    TT_MQTT_VIEW(CONTENT_TYPE, content_type);
    TT_MQTT_VIEW(RESPONSE_TOPIC, response_topic);
    TT_MQTT_VIEW(CORRELATION_DATA, correlation_data);
    TT_MQTT_NUM(SESSION_EXPIRY, session_expiry);
    TT_MQTT_VIEW(ASSIGNED_CLIENT_ID, assigned_client_id);
    TT_MQTT_NUM(SERVER_KEEP_ALIVE, server_keep_alive);
    TT_MQTT_VIEW(AUTH_METHOD, auth_method);
    TT_MQTT_VIEW(AUTH_DATA, auth_data);
    TT_MQTT_NUM(REQUEST_PROBLEM_INFO, request_problem_info);
    TT_MQTT_NUM(WILL_DELAY, will_delay);
    TT_MQTT_NUM(REQUEST_RESPONSE_INFO, request_response_info);
    TT_MQTT_VIEW(RESPONSE_INFO, response_info);
    TT_MQTT_VIEW(SERVER_REFERENCE, server_reference);
    TT_MQTT_VIEW(REASON_STRING, reason_string);
    TT_MQTT_NUM(RECEIVE_MAX, receive_max);
    TT_MQTT_NUM(TOPIC_ALIAS_MAX, topic_alias_max);
    TT_MQTT_NUM(TOPIC_ALIAS, topic_alias);
    TT_MQTT_NUM(MAX_QOS, max_qos);
    TT_MQTT_NUM(RETAIN_AVAILABLE, retain_available);
    TT_MQTT_NUM(MAX_PACKET_SIZE, max_packet_size);
    TT_MQTT_NUM(WILDCARD_SUB_AVAILABLE, wildcard_sub_available);
    TT_MQTT_NUM(SUB_ID_AVAILABLE, sub_id_available);
    TT_MQTT_NUM(SHARED_SUB_AVAILABLE, shared_sub_available);
#undef TT_MQTT_HAS
#undef TT_MQTT_NUM
#undef TT_MQTT_VIEW
    tti_mqtt_iter ia, ib;
    uint32_t sa, sb;
    tti_mqtt_sub_ids_begin(&ia, a);
    tti_mqtt_sub_ids_begin(&ib, b);
    for (;;) {
        bool ha = tti_mqtt_sub_ids_next(&ia, &sa), hb = tti_mqtt_sub_ids_next(&ib, &sb);
        if (ha != hb) return false;
        if (!ha) break;
        if (sa != sb) return false;
    }
    tti_mqtt_user_prop ua, ub;
    tti_mqtt_user_props_begin(&ia, a);
    tti_mqtt_user_props_begin(&ib, b);
    for (;;) {
        bool ha = tti_mqtt_user_props_next(&ia, &ua), hb = tti_mqtt_user_props_next(&ib, &ub);
        if (ha != hb) return false;
        if (!ha) break;
        if (!TT_MQTT_STR_EQ(ua.key, ub.key) || !TT_MQTT_STR_EQ(ua.value, ub.value)) return false;
    }
    return true;
}

static inline bool tt_mqtt_pkt_eq(const tti_mqtt_pkt *a, const tti_mqtt_pkt *b) {
    if (a->type != b->type || a->flags != b->flags || a->reason != b->reason ||
        a->packet_id != b->packet_id || !tt_mqtt_props_eq(&a->props, &b->props))
        return false;
    switch (a->type) {
    case TTI_MQTT_CONNECT: {
        const tti_mqtt_connect *x = &a->u.connect, *y = &b->u.connect;
        if (x->level != y->level || x->clean_start != y->clean_start ||
            x->keep_alive != y->keep_alive || !TT_MQTT_STR_EQ(x->client_id, y->client_id) ||
            x->will != y->will || x->has_username != y->has_username ||
            x->has_password != y->has_password)
            return false;
        if (x->will && (x->will_qos != y->will_qos || x->will_retain != y->will_retain ||
                        !TT_MQTT_STR_EQ(x->will_topic, y->will_topic) ||
                        !TT_MQTT_STR_EQ(x->will_payload, y->will_payload) ||
                        !tt_mqtt_props_eq(&x->will_props, &y->will_props)))
            return false;
        if (x->has_username && !TT_MQTT_STR_EQ(x->username, y->username)) return false;
        if (x->has_password && !TT_MQTT_STR_EQ(x->password, y->password)) return false;
        return true;
    }
    case TTI_MQTT_CONNACK:
        return a->u.connack.session_present == b->u.connack.session_present;
    case TTI_MQTT_PUBLISH: {
        const tti_mqtt_publish *x = &a->u.publish, *y = &b->u.publish;
        return x->qos == y->qos && x->retain == y->retain && x->dup == y->dup &&
               TT_MQTT_STR_EQ(x->topic, y->topic) && TT_MQTT_STR_EQ(x->payload, y->payload);
    }
    case TTI_MQTT_SUBSCRIBE:
    case TTI_MQTT_UNSUBSCRIBE: {
        tti_mqtt_iter ia, ib;
        tti_mqtt_sub sa, sb;
        tti_mqtt_subs_begin(&ia, a);
        tti_mqtt_subs_begin(&ib, b);
        for (;;) {
            bool ha = tti_mqtt_subs_next(&ia, &sa), hb = tti_mqtt_subs_next(&ib, &sb);
            if (ha != hb) return false;
            if (!ha) return true;
            if (!TT_MQTT_STR_EQ(sa.filter, sb.filter)) return false;
            if (a->type == TTI_MQTT_SUBSCRIBE &&
                (sa.qos != sb.qos || sa.no_local != sb.no_local ||
                 sa.retain_as_published != sb.retain_as_published ||
                 sa.retain_handling != sb.retain_handling))
                return false;
        }
    }
    case TTI_MQTT_SUBACK:
    case TTI_MQTT_UNSUBACK:
        return tt_mqtt_view_eq(a->u.suback.codes, a->u.suback.count, b->u.suback.codes,
                               b->u.suback.count);
    default:
        return true;
    }
}

#endif /* TT_MQTT_TEST_UTIL_H */
