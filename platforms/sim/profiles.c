/* The built-in simulator profiles (include/tether/sim.h):
 *   mqtt                 topic pattern "sim/{id}/telemetry", a binary header
 *   thingsboard-device   v1/devices/me/telemetry, token as username, JSON
 *   thingsboard-gateway  v1/gateway/connect per sub-device, then
 *                        v1/gateway/telemetry {"<device>":[{"ts":..,"values":{..}}],..}
 *   watson-device        Watson IoT devices: client id pattern (d:org:type:sim-{id}),
 *                        use-token-auth and a token pattern, events on
 *                        iot-2/evt/sim/fmt/json; the consumer is an application
 *                        on iot-2/type/+/id/+/evt/sim/fmt/json
 * Every payload carries the (sub-)device id, its sequence number and the
 * CLOCK_REALTIME microseconds at which it was published. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/sim.h>

#include "platforms/sim/sim_internal.h"

/* ---- helpers ------------------------------------------------------------- */

/* `pattern` with every "{id}" replaced by `id`; false if it does not fit. */
static bool expand(const char *pattern, uint64_t id, char *out, size_t cap) {
    size_t n = 0;
    for (const char *p = pattern; *p;) {
        if (!strncmp(p, "{id}", 4)) {
            int w = snprintf(out + n, cap - n, "%" PRIu64, id);
            if (w < 0 || (size_t)w >= cap - n) return false;
            n += (size_t)w;
            p += 4;
        } else {
            if (n + 1 >= cap) return false;
            out[n++] = *p++;
        }
    }
    if (n >= cap) return false;
    out[n] = '\0';
    return true;
}

static void put_be64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

static uint32_t one_record(const tt_sim_opts *o) {
    (void)o;
    return 1;
}

static uint32_t gw_records(const tt_sim_opts *o) { return o->sub_devices ? o->sub_devices : 1; }

static tt_err put_topic(tt_sim_msg *out, const char *t) {
    size_t n = strlen(t);
    if (n + 1 > out->topic_cap) return TT_EINVAL;
    memcpy(out->topic, t, n + 1);
    return TT_OK;
}

/* ---- mqtt: <magic "TTS1"> <device u64> <seq u64> <sent_us u64>, big-endian, then padding -- */

#define MQTT_HDR 28

static tt_err mqtt_identity(const tt_sim_opts *o, uint64_t conn, char *id, size_t id_cap, char *user,
                            size_t user_cap) {
    int w = snprintf(id, id_cap, "tt-sim-%" PRIu64, conn);
    if (w < 0 || (size_t)w >= id_cap) return TT_EINVAL;
    w = snprintf(user, user_cap, "%s", o->username ? o->username : "");
    return w < 0 || (size_t)w >= user_cap ? TT_EINVAL : TT_OK;
}

static tt_err mqtt_telemetry(const tt_sim_opts *o, uint64_t conn, uint64_t seq, uint64_t now_us,
                             tt_sim_msg *out) {
    if (!expand(o->topic ? o->topic : "sim/{id}/telemetry", conn, out->topic, out->topic_cap))
        return TT_EINVAL;
    size_t n = o->payload_size < MQTT_HDR ? MQTT_HDR : o->payload_size;
    if (n > out->payload_cap) return TT_EINVAL;
    memcpy(out->payload, "TTS1", 4);
    put_be64(out->payload + 4, conn);
    put_be64(out->payload + 12, seq);
    put_be64(out->payload + 20, now_us);
    memset(out->payload + MQTT_HDR, 'x', n - MQTT_HDR);
    out->payload_len = n;
    return TT_OK;
}

/* The filter for a pattern: every level holding "{id}" becomes "+". Kept in
 * a per-thread buffer: the caller subscribes before building another. */
static size_t mqtt_filters(const tt_sim_opts *o, const char **out, size_t max) {
    static _Thread_local char buf[512];
    const char *pat = o->topic ? o->topic : "sim/{id}/telemetry";
    size_t n = 0;
    const char *lvl = pat;
    while (max > 0) {
        const char *end = strchr(lvl, '/');
        size_t len = end ? (size_t)(end - lvl) : strlen(lvl);
        const char *id = strstr(lvl, "{id}");
        bool var = id && id < lvl + len;
        size_t need = var ? 1 : len;
        if (n + need + 2 > sizeof buf) return 0;
        if (var) buf[n++] = '+';
        else {
            memcpy(buf + n, lvl, len);
            n += len;
        }
        if (!end) break;
        buf[n++] = '/';
        lvl = end + 1;
    }
    buf[n] = '\0';
    if (max == 0) return 0;
    out[0] = buf;
    return 1;
}

static int mqtt_decode(const tt_sim_opts *o, const char *topic, size_t tlen, const void *payload,
                       size_t len, tt_sim_record_fn emit, void *arg) {
    const uint8_t *p = payload;
    (void)o;
    (void)topic;
    (void)tlen;
    if (len < MQTT_HDR || memcmp(p, "TTS1", 4) != 0) return TT_EPROTO;
    emit(arg, get_be64(p + 4), get_be64(p + 12), get_be64(p + 20));
    return 1;
}

/* ---- ThingsBoard, shared ------------------------------------------------- */

static tt_err tb_identity(const tt_sim_opts *o, uint64_t conn, char *id, size_t id_cap, char *user,
                          size_t user_cap) {
    int w = snprintf(id, id_cap, "tt-sim-%" PRIu64, conn);
    if (w < 0 || (size_t)w >= id_cap) return TT_EINVAL;
    return expand(o->token ? o->token : "sim-token-{id}", conn, user, user_cap) ? TT_OK : TT_EINVAL;
}

/* Appends `,"pad":"xxx"` so that the payload reaches `want` bytes (with the
 * closing text of `tail` bytes still to come). */
static bool pad_field(char *buf, size_t *n, size_t cap, size_t want, size_t tail) {
    const size_t overhead = 9;                 /* ,"pad":"" */
    if (*n + tail + overhead >= want) return true;
    size_t k = want - *n - tail - overhead;
    if (*n + overhead + k + tail >= cap) return false;
    memcpy(buf + *n, ",\"pad\":\"", 8);
    *n += 8;
    memset(buf + *n, 'x', k);
    *n += k;
    buf[(*n)++] = '"';
    return true;
}

static bool json_u64(const json_t *o, const char *key, uint64_t *v) {
    json_t *j = json_object_get(o, key);
    if (!json_is_integer(j) || json_integer_value(j) < 0) return false;
    *v = (uint64_t)json_integer_value(j);
    return true;
}

/* ---- thingsboard-device: {"ts":ms,"values":{"sim_dev":id,"sim_seq":n,"sim_us":t[,"pad":".."]}} -- */

static tt_err tbd_telemetry(const tt_sim_opts *o, uint64_t conn, uint64_t seq, uint64_t now_us,
                            tt_sim_msg *out) {
    if (put_topic(out, "v1/devices/me/telemetry") != TT_OK) return TT_EINVAL;
    char *b = (char *)out->payload;
    int w = snprintf(b, out->payload_cap,
                     "{\"ts\":%" PRIu64 ",\"values\":{\"sim_dev\":%" PRIu64 ",\"sim_seq\":%" PRIu64
                     ",\"sim_us\":%" PRIu64,
                     now_us / 1000, conn, seq, now_us);
    if (w < 0 || (size_t)w >= out->payload_cap) return TT_EINVAL;
    size_t n = (size_t)w;
    if (!pad_field(b, &n, out->payload_cap, o->payload_size, 2) || n + 2 >= out->payload_cap)
        return TT_EINVAL;
    memcpy(b + n, "}}", 2);
    out->payload_len = n + 2;
    return TT_OK;
}

static size_t tbd_filters(const tt_sim_opts *o, const char **out, size_t max) {
    (void)o;
    if (max == 0) return 0;
    out[0] = "v1/devices/me/telemetry";
    return 1;
}

static int tbd_decode(const tt_sim_opts *o, const char *topic, size_t tlen, const void *payload,
                      size_t len, tt_sim_record_fn emit, void *arg) {
    (void)o;
    (void)topic;
    (void)tlen;
    json_t *j = json_loadb(payload, len, 0, NULL);
    json_t *v = json_object_get(j, "values");
    uint64_t dev, seq, us;
    int rc = TT_EPROTO;
    if (json_u64(v, "sim_dev", &dev) && json_u64(v, "sim_seq", &seq) && json_u64(v, "sim_us", &us)) {
        emit(arg, dev, seq, us);
        rc = 1;
    }
    json_decref(j);
    return rc;
}

/* ---- thingsboard-gateway ------------------------------------------------- */
/* Sub-device j of gateway g is "sim-dev-<g * M + j>" (M sub-devices each). */

static int tbg_hello(const tt_sim_opts *o, uint64_t conn, uint32_t k, tt_sim_msg *out) {
    if (k >= gw_records(o)) return 0;
    if (put_topic(out, "v1/gateway/connect") != TT_OK) return TT_EINVAL;
    int w = snprintf((char *)out->payload, out->payload_cap,
                     "{\"device\":\"sim-dev-%" PRIu64 "\",\"type\":\"tether-sim\"}",
                     conn * gw_records(o) + k);
    if (w < 0 || (size_t)w >= out->payload_cap) return TT_EINVAL;
    out->payload_len = (size_t)w;
    return 1;
}

static tt_err tbg_telemetry(const tt_sim_opts *o, uint64_t conn, uint64_t seq, uint64_t now_us,
                            tt_sim_msg *out) {
    if (put_topic(out, "v1/gateway/telemetry") != TT_OK) return TT_EINVAL;
    char *b = (char *)out->payload;
    size_t n = 0, cap = out->payload_cap;
    uint32_t m = gw_records(o);
    for (uint32_t j = 0; j < m; j++) {
        int w = snprintf(b + n, cap - n,
                         "%s\"sim-dev-%" PRIu64 "\":[{\"ts\":%" PRIu64 ",\"values\":{\"sim_seq\":%" PRIu64
                         ",\"sim_us\":%" PRIu64,
                         j ? "," : "{", conn * m + j, now_us / 1000, seq, now_us);
        if (w < 0 || (size_t)w >= cap - n) return TT_EINVAL;
        n += (size_t)w;
        /* Padding goes into the last entry, up to the payload size asked. */
        if (j + 1 == m && !pad_field(b, &n, cap, o->payload_size, 4)) return TT_EINVAL;
        if (n + 3 >= cap) return TT_EINVAL;
        memcpy(b + n, "}}]", 3);
        n += 3;
    }
    if (n + 1 >= cap) return TT_EINVAL;
    b[n++] = '}';
    out->payload_len = n;
    return TT_OK;
}

static size_t tbg_filters(const tt_sim_opts *o, const char **out, size_t max) {
    (void)o;
    if (max == 0) return 0;
    out[0] = "v1/gateway/telemetry";
    return 1;
}

static int tbg_decode(const tt_sim_opts *o, const char *topic, size_t tlen, const void *payload,
                      size_t len, tt_sim_record_fn emit, void *arg) {
    (void)o;
    (void)topic;
    (void)tlen;
    json_t *j = json_loadb(payload, len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return TT_EPROTO;
    }
    int n = 0;
    const char *name;
    json_t *list;
    json_object_foreach(j, name, list) {
        char *end;
        if (strncmp(name, "sim-dev-", 8) != 0) continue;
        uint64_t dev = strtoull(name + 8, &end, 10);
        if (*end) continue;
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e) {
            json_t *v = json_object_get(e, "values");
            uint64_t seq, us;
            if (json_u64(v, "sim_seq", &seq) && json_u64(v, "sim_us", &us)) {
                emit(arg, dev, seq, us);
                n++;
            }
        }
    }
    json_decref(j);
    return n ? n : TT_EPROTO;
}

/* ---- watson-device: {"sim_dev":id,"sim_seq":n,"sim_us":t[,"pad":".."]} on iot-2/evt/sim/fmt/json -- */

static tt_err wd_identity(const tt_sim_opts *o, uint64_t conn, char *id, size_t id_cap, char *user,
                          size_t user_cap) {
    if (!expand(o->client_id ? o->client_id : "d:quickstart:tether-sim:sim-{id}", conn, id, id_cap))
        return TT_EINVAL;
    /* Quickstart devices log in without credentials */
    int w = snprintf(user, user_cap, "%s", strncmp(id, "d:quickstart:", 13) ? "use-token-auth" : "");
    return w < 0 || (size_t)w >= user_cap ? TT_EINVAL : TT_OK;
}

static tt_err wd_password(const tt_sim_opts *o, uint64_t conn, char *out, size_t cap) {
    return expand(o->token ? o->token : "sim-token-{id}", conn, out, cap) ? TT_OK : TT_EINVAL;
}

static tt_err wd_telemetry(const tt_sim_opts *o, uint64_t conn, uint64_t seq, uint64_t now_us,
                           tt_sim_msg *out) {
    if (put_topic(out, "iot-2/evt/sim/fmt/json") != TT_OK) return TT_EINVAL;
    char *b = (char *)out->payload;
    int w = snprintf(b, out->payload_cap,
                     "{\"sim_dev\":%" PRIu64 ",\"sim_seq\":%" PRIu64 ",\"sim_us\":%" PRIu64, conn, seq,
                     now_us);
    if (w < 0 || (size_t)w >= out->payload_cap) return TT_EINVAL;
    size_t n = (size_t)w;
    if (!pad_field(b, &n, out->payload_cap, o->payload_size, 1) || n + 1 >= out->payload_cap)
        return TT_EINVAL;
    b[n++] = '}';
    out->payload_len = n;
    return TT_OK;
}

static size_t wd_filters(const tt_sim_opts *o, const char **out, size_t max) {
    (void)o;
    if (max == 0) return 0;
    out[0] = "iot-2/type/+/id/+/evt/sim/fmt/json";
    return 1;
}

static int wd_decode(const tt_sim_opts *o, const char *topic, size_t tlen, const void *payload,
                     size_t len, tt_sim_record_fn emit, void *arg) {
    (void)o;
    (void)topic;
    (void)tlen;
    json_t *j = json_loadb(payload, len, 0, NULL);
    uint64_t dev, seq, us;
    int rc = TT_EPROTO;
    if (json_u64(j, "sim_dev", &dev) && json_u64(j, "sim_seq", &seq) && json_u64(j, "sim_us", &us)) {
        emit(arg, dev, seq, us);
        rc = 1;
    }
    json_decref(j);
    return rc;
}

/* ---- the table ----------------------------------------------------------- */

static const tt_sim_profile profiles[] = {
    { "mqtt", one_record, mqtt_identity, NULL, mqtt_telemetry, mqtt_filters, mqtt_decode, NULL },
    { "thingsboard-device", one_record, tb_identity, NULL, tbd_telemetry, tbd_filters, tbd_decode, NULL },
    { "thingsboard-gateway", gw_records, tb_identity, tbg_hello, tbg_telemetry, tbg_filters, tbg_decode,
      NULL },
    { "watson-device", one_record, wd_identity, NULL, wd_telemetry, wd_filters, wd_decode, wd_password },
};

const tt_sim_profile *tt_sim_profile_find(const char *name) {
    if (!name) return &profiles[0];
    for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++)
        if (!strcmp(profiles[i].name, name)) return &profiles[i];
    return NULL;
}
