/* Watson IoT Platform clients (include/tether/watson.h): identities, the
 * topics of the device, gateway and application views, and payloads coded
 * by the format named in the topic. A tt_wiotp wraps one tt_client; every
 * handler and continuation runs on that client's strand. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/codec.h>
#include <tether/watson.h>

#include "actors/core/alloc.h"
#include "actors/core/clock.h"
#include "actors/core/log.h"
#include "actors/core/random.h"
#include "actors/future.h"
#include "actors/session/session.h"
#include "platforms/watson/wiotp_internal.h"

#define WIOTP_DOMAIN "internetofthings.ibmcloud.com"
#define WIOTP_MAX_LEVELS 10           /* iot-2/thing/type/T/id/D/intf/I/evt/state */


/* ---- References and futures ---------------------------------------------- */

void tti_wiotp_ref(tt_wiotp *w) { atomic_fetch_add(&w->refs, 1); }

void tti_wiotp_unref(tt_wiotp *w) {
    if (atomic_fetch_sub(&w->refs, 1) != 1) return;
    tti_wiotp_dm_close(w);            /* normally done at close already */
    tt_client_free(w->c);
    pthread_mutex_destroy(&w->dm_lock);
    tti_free(w->manage_d);
    tti_free(w->org);
    tti_free(w);
}

#define w_ref tti_wiotp_ref
#define w_unref tti_wiotp_unref

static tt_future *w_failed(const tt_wiotp *w, tt_err rc, const char *reason) {
    return tti_future_failed(w ? &w->c->strand : NULL, rc, reason);
}

/* ---- Names ------------------------------------------------------------------- */

/* One topic level given by the caller: not empty, no separator or wildcard. */
static bool level_ok(const char *s) {
    if (!s || !*s) return false;
    for (; *s; s++)
        if (*s == '/' || *s == '+' || *s == '#' || (unsigned char)*s < 0x20) return false;
    return true;
}

/* Part of a client id: a topic level without ':' either. */
static bool ident_ok(const char *s) { return level_ok(s) && !strchr(s, ':'); }

/* A filter level: NULL = "+". */
static const char *any(const char *s) { return s ? s : "+"; }

static bool any_ok(const char *s) { return !s || level_ok(s); }

void tti_wiotp_uuid(char out[37]) {
    uint8_t b[16];
    if (!tti_random_fill(b, sizeof b)) {   /* no kernel randomness: time, counter, address */
        static atomic_uint_fast64_t n;
        uint64_t x = (uint64_t)tti_now_ms() * 0x9E3779B97F4A7C15u ^ atomic_fetch_add(&n, 1) ^
                     (uint64_t)(uintptr_t)out;
        for (int i = 0; i < 16; i++) b[i] = (uint8_t)(x >> (8 * (i % 8))) ^ (uint8_t)(i * 37);
    }
    b[6] = (uint8_t)((b[6] & 0x0F) | 0x40);   /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3F) | 0x80);   /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

/* "a-<org>-<x>" -> org into out. */
static bool org_from_key(const char *key, char *out, size_t cap) {
    if (!key || strncmp(key, "a-", 2) != 0) return false;
    const char *s = key + 2, *e = strchr(s, '-');
    if (!e || e == s || !e[1] || (size_t)(e - s) >= cap) return false;
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = '\0';
    return ident_ok(out);
}

/* ---- Incoming messages -------------------------------------------------------- */

/* Fill m's kind and names from the topic's levels; false for a topic that is
 * none of the platform's. */
static bool classify(const tt_wiotp *w, char **lv, int n, tt_wiotp_msg *m) {
    if (n < 2 || strcmp(lv[0], "iot-2") != 0) return false;
    m->id = "";
    m->format = "json";
    if (n == 5 && !strcmp(lv[1], "cmd") && !strcmp(lv[3], "fmt")) {        /* device view */
        m->kind = TT_WIOTP_COMMAND;
        m->type_id = w->type_id;
        m->device_id = w->device_id;
        m->id = lv[2];
        m->format = lv[4];
        return true;
    }
    if (n == 4 && !strcmp(lv[1], "app") && !strcmp(lv[3], "mon")) {
        m->kind = TT_WIOTP_APP_STATUS;
        m->type_id = "";
        m->device_id = lv[2];
        return true;
    }
    int o = 0;
    bool thing = false;
    if (!strcmp(lv[1], "thing")) {
        thing = true;
        o = 1;
    }
    if (n < 6 + o || strcmp(lv[1 + o], "type") != 0 || strcmp(lv[3 + o], "id") != 0) return false;
    m->type_id = lv[2 + o];
    m->device_id = lv[4 + o];
    const char *what = lv[5 + o];
    int rest = n - 6 - o;
    if (!thing && rest == 3 && (!strcmp(what, "evt") || !strcmp(what, "cmd")) &&
        !strcmp(lv[7], "fmt")) {
        m->kind = what[0] == 'e' ? TT_WIOTP_EVENT : TT_WIOTP_COMMAND;
        m->id = lv[6];
        m->format = lv[8];
        return true;
    }
    if (!thing && rest == 0 && !strcmp(what, "mon")) {
        m->kind = TT_WIOTP_DEVICE_STATUS;
        return true;
    }
    if (!thing && rest == 0 && !strcmp(what, "notify")) {
        m->kind = TT_WIOTP_NOTIFICATION;
        return true;
    }
    if (rest == 3 && !strcmp(what, "intf") && !strcmp(lv[7 + o], "evt") &&
        !strcmp(lv[8 + o], "state")) {
        m->kind = thing ? TT_WIOTP_THING_STATE : TT_WIOTP_DEVICE_STATE;
        m->id = lv[6 + o];
        return true;
    }
    if (rest == 1 && !strcmp(what, "err") && !strcmp(lv[6 + o], "data")) {
        m->kind = thing ? TT_WIOTP_THING_ERROR : TT_WIOTP_DEVICE_ERROR;
        return true;
    }
    return false;
}

/* Decode the payload by its format: the codec of that name, with the
 * json-iotf envelope's time kept. Empty payloads carry no data. */
static json_t *decode(const tt_wiotp_msg *m, tt_err *err, int64_t *ts) {
    *err = TT_OK;
    if (m->len == 0) return NULL;
    json_t *v = NULL;
    if (!strcmp(m->format, "json-iotf")) {
        *err = tt_codec_iotf_decode(m->payload, m->len, &v, ts, NULL);
        return *err == TT_OK ? v : NULL;
    }
    const tt_codec *c = tt_codec_find(m->format);
    if (!c) {
        *err = TT_ENOTFOUND;
        return NULL;
    }
    *err = tt_codec_decode(c, m->payload, m->len, &v, NULL);
    return *err == TT_OK ? v : NULL;
}

bool tti_wiotp_parse_topic(const tt_wiotp *w, const char *topic, size_t tl, char *buf,
                           tt_wiotp_msg *m) {
    memcpy(buf, topic, tl);
    buf[tl] = '\0';
    char *split = buf + tl + 1;
    memcpy(split, topic, tl);
    split[tl] = '\0';
    char *lv[WIOTP_MAX_LEVELS];
    int n = 0;
    for (char *p = split;;) {
        if (n == WIOTP_MAX_LEVELS) return false;    /* too many levels: none of ours */
        lv[n++] = p;
        char *s = strchr(p, '/');
        if (!s) break;
        *s = '\0';
        p = s + 1;
    }
    memset(m, 0, sizeof *m);
    if (!classify(w, lv, n, m)) return false;
    m->topic = buf;
    return true;
}

static void on_msg(tt_client *c, const tt_msg *msg, void *arg) {
    (void)c;
    tt_wiotp *w = arg;
    size_t tl;
    const char *topic = tt_msg_topic(msg, &tl);
    char stack[2 * WIOTP_TOPIC_MAX];
    char *buf = 2 * (tl + 1) <= sizeof stack ? stack : tti_malloc(2 * (tl + 1));
    if (!buf) return;
    tt_wiotp_msg m;
    if (!tti_wiotp_parse_topic(w, topic, tl, buf, &m)) {
        TTI_LOG(DEBUG, "wiotp", "%s: a message on %.*s, which is none of the platform's topics",
                tt_client_id(w->c), (int)tl, topic);
        if (buf != stack) tti_free(buf);
        return;
    }
    m.payload = tt_msg_payload(msg, &m.len);
    m.retained = tt_msg_is_retained(msg);
    m.ts_ms = -1;
    json_t *data = decode(&m, &m.decode_err, &m.ts_ms);
    if (m.ts_ms < 0) m.ts_ms = tti_now_ms();
    m.data = data;
    if (m.decode_err != TT_OK)
        TTI_LOG(DEBUG, "wiotp", "%s: %s payload on %s not decoded: %s", tt_client_id(w->c),
                m.format, m.topic, tt_strerror(m.decode_err));
    if (w->on_message) w->on_message(w, &m, w->on_message_arg);
    json_decref(data);
    if (buf != stack) tti_free(buf);
}

static void on_event(tt_client *c, const tt_client_event *ev, void *arg) {
    tt_wiotp *w = arg;
    if (ev->kind == TT_EV_CONNECTED) atomic_store(&w->connected, true);
    else if (ev->kind == TT_EV_DISCONNECTED) atomic_store(&w->connected, false);
    if (w->user_event) w->user_event(c, ev, w->user_event_arg);
}

/* ---- Creation ---------------------------------------------------------------- */

tt_err tt_wiotp_new(tt_runtime *rt, const tt_wiotp_opts *o, tt_wiotp **out) {
    if (!out) return TT_EINVAL;
    *out = NULL;
    if (!rt || !o || o->size < offsetof(tt_wiotp_opts, mqtt) + sizeof o->mqtt) return TT_EINVAL;
    if (o->role < TT_WIOTP_DEVICE || o->role > TT_WIOTP_APP) return TT_EINVAL;
    if (o->mqtt && o->mqtt->pull) return TT_EINVAL;
    if (o->managed && o->role == TT_WIOTP_APP) return TT_EINVAL;   /* applications are not managed */

    char org[64], appid[64];
    const char *user = NULL, *pass = NULL;
    bool qs;
    if (o->role == TT_WIOTP_APP) {
        if (o->api_key) {
            if (!org_from_key(o->api_key, org, sizeof org)) return TT_EINVAL;
            if (o->org && strcmp(o->org, org) != 0) return TT_EINVAL;
            user = o->api_key;
            pass = o->token;
            if (!pass) return TT_EINVAL;
        } else {
            if (o->org && strcmp(o->org, "quickstart") != 0) return TT_EINVAL;
            snprintf(org, sizeof org, "quickstart");
        }
        qs = !strcmp(org, "quickstart");
        if (o->app_id) {
            if (!ident_ok(o->app_id) || strlen(o->app_id) >= sizeof appid) return TT_EINVAL;
            snprintf(appid, sizeof appid, "%s", o->app_id);
        } else {
            tti_wiotp_uuid(appid);
        }
        if (o->instance_id && (!ident_ok(o->instance_id) || qs)) return TT_EINVAL;
    } else {
        if (!ident_ok(o->org) || !ident_ok(o->type_id) || !ident_ok(o->device_id) ||
            strlen(o->org) >= sizeof org)
            return TT_EINVAL;
        snprintf(org, sizeof org, "%s", o->org);
        qs = !strcmp(org, "quickstart");
        if (qs && o->role == TT_WIOTP_GATEWAY) return TT_EINVAL;   /* Quickstart has no gateways */
        if (!qs) {
            if (!o->token || !*o->token) return TT_EINVAL;
            user = "use-token-auth";
            pass = o->token;
        }
    }

    /* Where: the org's host unless given, a port the platform serves. */
    uint16_t port = o->port ? o->port : qs ? 1883 : 8883;
    if (!o->host && port != 8883 && port != 443 && port != 1883 && port != 80) return TT_EINVAL;
    bool tls = o->tls == TT_WIOTP_TLS_ON ||
               (o->tls == TT_WIOTP_TLS_AUTO && (port == 8883 || port == 443));
    if (qs) tls = false;
    const char *domain = o->domain && *o->domain ? o->domain : WIOTP_DOMAIN;
    char host[300];
    if (o->host) {
        if (!*o->host || strlen(o->host) >= sizeof host) return TT_EINVAL;
        snprintf(host, sizeof host, "%s", o->host);
    } else if ((size_t)snprintf(host, sizeof host, "%s.messaging.%s", org, domain) >= sizeof host) {
        return TT_EINVAL;
    }
    bool v6 = strchr(host, ':') != NULL;
    char url[340];
    snprintf(url, sizeof url, "%s://%s%s%s:%u",
             o->websockets ? (tls ? "wss" : "ws") : (tls ? "mqtts" : "mqtt"), v6 ? "[" : "", host,
             v6 ? "]" : "", (unsigned)port);

    char cid[256];
    int cn;
    switch (o->role) {
    case TT_WIOTP_DEVICE:
        cn = snprintf(cid, sizeof cid, "d:%s:%s:%s", org, o->type_id, o->device_id);
        break;
    case TT_WIOTP_GATEWAY:
        cn = snprintf(cid, sizeof cid, "g:%s:%s:%s", org, o->type_id, o->device_id);
        break;
    default:
        if (o->instance_id)
            cn = snprintf(cid, sizeof cid, "A:%s:%s:%s", org, appid, o->instance_id);
        else
            cn = snprintf(cid, sizeof cid, "%s:%s:%s", o->shared && !qs ? "A" : "a", org, appid);
        break;
    }
    if (cn < 0 || (size_t)cn >= sizeof cid) return TT_EINVAL;

    tt_tls_opts to = o->tls_opts ? *o->tls_opts : TT_OPTS_INIT(tt_tls_opts);
    to.size = sizeof to;
    if (o->ca_file && strcmp(o->ca_file, "_os_") != 0) to.ca_file = o->ca_file;
    else if (o->ca_file) to.ca_file = NULL;

    tt_wiotp *w = tti_calloc(1, sizeof *w);
    if (!w) return TT_ENOMEM;
    const char *t = o->role == TT_WIOTP_APP ? "" : o->type_id;
    const char *d = o->role == TT_WIOTP_APP ? appid : o->device_id;
    size_t lo = strlen(org) + 1, lt = strlen(t) + 1, ld = strlen(d) + 1;
    w->org = tti_malloc(lo + lt + ld);
    if (!w->org) {
        tti_free(w);
        return TT_ENOMEM;
    }
    memcpy(w->org, org, lo);
    w->type_id = w->org + lo;
    memcpy(w->type_id, t, lt);
    w->device_id = w->type_id + lt;
    memcpy(w->device_id, d, ld);
    atomic_init(&w->refs, 1);
    w->role = o->role;
    w->quickstart = qs;
    w->managed = o->managed && !qs && o->role != TT_WIOTP_APP;
    w->on_dm = o->on_dm;
    w->on_dm_arg = o->on_dm_arg;
    w->req_timeout_ms = o->request_timeout_ms ? o->request_timeout_ms : 10000;
    pthread_mutex_init(&w->dm_lock, NULL);
    w->on_message = o->on_message;
    w->on_message_arg = o->on_message_arg;

    tt_client_opts co = o->mqtt ? *o->mqtt : TT_OPTS_INIT(tt_client_opts);
    co.size = sizeof co;
    co.url = url;
    co.client_id = cid;
    co.username = user;
    co.password = pass;
    co.password_len = 0;
    co.tls = tls ? &to : NULL;
    co.version = TT_MQTT_311;
    co.keepalive_s = o->keepalive_s ? o->keepalive_s : 60;
    co.persistent_session = o->keep_session;
    w->user_event = co.on_event;
    w->user_event_arg = co.on_event_arg;
    co.on_event = on_event;
    co.on_event_arg = w;
    tt_err rc = tt_client_new(rt, &co, &w->c);
    if (rc != TT_OK) {
        pthread_mutex_destroy(&w->dm_lock);
        tti_free(w->org);
        tti_free(w);
        return rc;
    }
    *out = w;
    return TT_OK;
}

/* ---- Connection ------------------------------------------------------------- */

/* A call in progress: the future given to the caller (on the client's
 * strand) and a reference to the client. */
typedef struct w_call {
    tt_wiotp *w;
    tt_promise *p;
} w_call;

/* NULL (and *out the shared out-of-memory future) if out of memory. */
static w_call *call_new(tt_wiotp *w, tt_future **out) {
    w_call *x = tti_malloc(sizeof *x);
    *out = x ? tti_future_new(&w->c->strand, 0) : NULL;
    if (!*out) {
        tti_free(x);
        *out = tti_future_enomem();
        return NULL;
    }
    x->w = w;
    x->p = tti_future_promise(*out);
    w_ref(w);
    return x;
}

static void call_done(w_call *x) {
    w_unref(x->w);
    tti_free(x);
}

/* Continue with fn(f, x) once f completes; takes f. */
static void call_then(w_call *x, tt_future *f, tt_future_fn fn) {
    if (tt_future_then(f, fn, x) != TT_OK) {   /* only the shared out-of-memory future refuses */
        tt_future_free(f);
        (void)tt_promise_complete(x->p, TT_ENOMEM, 0, NULL);
        call_done(x);
    }
}

/* The index of the first refused filter of a SUBACK, or -1; its code in *code. */
static int first_refused(const tt_future *f, uint8_t *code) {
    const uint8_t *codes = NULL;
    size_t n = 0;
    if (tt_future_get_suback(f, &codes, &n) != TT_OK) return -1;
    for (size_t i = 0; i < n; i++) {
        if (codes[i] >= 0x80) {
            *code = codes[i];
            return (int)i;
        }
    }
    return -1;
}

static void relay_fail(tt_promise *p, tt_future *f, const char *what) {
    const char *why = NULL;
    int detail = tt_future_detail(f, &why);
    tt_err rc = tt_future_result(f);
    (void)tt_promise_complete(p, rc, detail, "%s%s", what, why && *why ? why : tt_strerror(rc));
}

static void conn_subscribed(tt_future *f, void *arg) {
    w_call *x = arg;
    if (tt_future_result(f) != TT_OK) {
        relay_fail(x->p, f, "subscribing: ");
    } else {
        uint8_t code = 0;
        int bad = first_refused(f, &code);
        if (bad >= 0)
            (void)tt_promise_complete(x->p, TT_EREFUSED, code,
                                      "the platform refused the %s subscription (0x%02x)",
                                      x->w->role == TT_WIOTP_DEVICE && bad == 0 ? "command"
                                                                               : "device management",
                                      code);
        else
            (void)tt_promise_complete(x->p, TT_OK, 0, NULL);
    }
    tt_future_free(f);
    call_done(x);
}

static void conn_connected(tt_future *f, void *arg) {
    w_call *x = arg;
    tt_wiotp *w = x->w;
    if (tt_future_result(f) != TT_OK) {
        relay_fail(x->p, f, "");
        tt_future_free(f);
        call_done(x);
        return;
    }
    tt_future_free(f);
    atomic_store(&w->connected, true);
    tt_sub subs[2];
    size_t n = 0;
    if (w->role == TT_WIOTP_DEVICE && !w->quickstart)
        subs[n++] = (tt_sub){ .filter = "iot-2/cmd/+/fmt/+", .qos = TT_QOS1, .handler = on_msg, .arg = w };
    char dm[WIOTP_TOPIC_MAX];
    if (w->managed && tti_wiotp_dm_filter(w, dm, sizeof dm) > 0)
        subs[n++] = (tt_sub){ .filter = dm, .qos = TT_QOS1, .handler = tti_wiotp_dm_on_msg, .arg = w };
    if (!n) {
        (void)tt_promise_complete(x->p, TT_OK, 0, NULL);
        call_done(x);
        return;
    }
    call_then(x, tt_client_subscribe(w->c, subs, n, NULL), conn_subscribed);
}

tt_future *tt_wiotp_connect(tt_wiotp *w) {
    if (!w) return w_failed(NULL, TT_EINVAL, "no client");
    if (atomic_load(&w->closing)) return w_failed(w, TT_ECLOSED, "client closed");
    tt_future *out;
    w_call *x = call_new(w, &out);
    if (!x) return out;
    call_then(x, tt_client_connect(w->c), conn_connected);
    return out;
}

tt_future *tt_wiotp_disconnect(tt_wiotp *w) {
    if (!w) return w_failed(NULL, TT_EINVAL, "no client");
    atomic_store(&w->connected, false);
    return tt_client_disconnect(w->c);
}

bool tt_wiotp_connected(const tt_wiotp *w) { return w && atomic_load(&w->connected); }

const char *tt_wiotp_client_id(const tt_wiotp *w) { return w ? tt_client_id(w->c) : NULL; }

tt_client *tt_wiotp_client(tt_wiotp *w) { return w ? w->c : NULL; }

static void closed_cb(tt_future *f, void *arg) {
    tt_future_free(f);
    tti_wiotp_dm_close(arg);
    w_unref(arg);
}

void tt_wiotp_free(tt_wiotp *w) {
    if (!w || atomic_exchange(&w->closing, true)) return;
    atomic_store(&w->connected, false);
    tt_future *f = tt_client_close(w->c);
    if (tt_future_then(f, closed_cb, w) != TT_OK) {
        tt_future_free(f);
        tti_wiotp_dm_close(w);
        w_unref(w);
    }
}

/* ---- Publishing -------------------------------------------------------------- */

/* The topic of an event or command (what = "evt" or "cmd") for this client. */
static tt_err pub_topic(const tt_wiotp *w, const char *what, const char *type_id,
                        const char *device_id, const char *id, const char *format, char *buf,
                        size_t cap) {
    if (!level_ok(id) || !level_ok(format)) return TT_EINVAL;
    int n;
    if (w->role == TT_WIOTP_DEVICE) {
        if (type_id || device_id) return TT_EINVAL;
        n = snprintf(buf, cap, "iot-2/%s/%s/fmt/%s", what, id, format);
    } else {
        if (w->role == TT_WIOTP_GATEWAY && !type_id && !device_id) {
            type_id = w->type_id;
            device_id = w->device_id;
        }
        if (!level_ok(type_id) || !level_ok(device_id)) return TT_EINVAL;
        n = snprintf(buf, cap, "iot-2/type/%s/id/%s/%s/%s/fmt/%s", type_id, device_id, what, id,
                     format);
    }
    return n >= 0 && (size_t)n < cap ? TT_OK : TT_EINVAL;
}

static tt_future *send_bytes(tt_wiotp *w, const char *what, const char *type_id,
                             const char *device_id, const char *id, const char *format,
                             const void *payload, size_t len, tt_qos qos) {
    if (!w) return w_failed(NULL, TT_EINVAL, "no client");
    if (len > TT_WIOTP_MAX_PAYLOAD)
        return w_failed(w, TT_EINVAL, "payload above the platform's 131072 bytes");
    char topic[WIOTP_TOPIC_MAX];
    tt_err rc = pub_topic(w, what, type_id, device_id, id, format, topic, sizeof topic);
    if (rc != TT_OK) return w_failed(w, rc, "bad type, device, event/command id or format");
    return tt_client_pub(w->c, topic, payload, len, qos, false);
}

static tt_future *send_value(tt_wiotp *w, const char *what, const char *type_id,
                             const char *device_id, const char *id, const char *format,
                             const json_t *data, tt_qos qos) {
    if (!w) return w_failed(NULL, TT_EINVAL, "no client");
    if (!data) return send_bytes(w, what, type_id, device_id, id, format, NULL, 0, qos);
    char topic[WIOTP_TOPIC_MAX];
    if (pub_topic(w, what, type_id, device_id, id, format, topic, sizeof topic) != TT_OK)
        return w_failed(w, TT_EINVAL, "bad type, device, event/command id or format");
    const tt_codec *c = tt_codec_find(format);
    if (!c) return w_failed(w, TT_ENOTFOUND, "no codec for this format");
    tt_buf b;
    tt_buf_init(&b);
    tt_err rc = tt_codec_encode(c, data, &b);
    if (rc != TT_OK) {
        tt_buf_free(&b);
        return w_failed(w, rc, "the format's codec cannot encode this value");
    }
    tt_future *f = send_bytes(w, what, type_id, device_id, id, format, b.data, b.len, qos);
    tt_buf_free(&b);
    return f;
}

tt_future *tt_wiotp_publish_event(tt_wiotp *w, const char *type_id, const char *device_id,
                                  const char *event_id, const char *format, const json_t *data,
                                  tt_qos qos) {
    return send_value(w, "evt", type_id, device_id, event_id, format, data, qos);
}

tt_future *tt_wiotp_publish_event_raw(tt_wiotp *w, const char *type_id, const char *device_id,
                                      const char *event_id, const char *format,
                                      const void *payload, size_t len, tt_qos qos) {
    return send_bytes(w, "evt", type_id, device_id, event_id, format, payload, len, qos);
}

static tt_future *command_check(tt_wiotp *w) {
    if (!w) return w_failed(NULL, TT_EINVAL, "no client");
    if (w->role != TT_WIOTP_APP) return w_failed(w, TT_ENOTSUP, "only applications send commands");
    if (w->quickstart) return w_failed(w, TT_ENOTSUP, "Quickstart applications send no commands");
    return NULL;
}

tt_future *tt_wiotp_publish_command(tt_wiotp *w, const char *type_id, const char *device_id,
                                    const char *command_id, const char *format,
                                    const json_t *data, tt_qos qos) {
    tt_future *f = command_check(w);
    return f ? f : send_value(w, "cmd", type_id, device_id, command_id, format, data, qos);
}

tt_future *tt_wiotp_publish_command_raw(tt_wiotp *w, const char *type_id, const char *device_id,
                                        const char *command_id, const char *format,
                                        const void *payload, size_t len, tt_qos qos) {
    tt_future *f = command_check(w);
    return f ? f : send_bytes(w, "cmd", type_id, device_id, command_id, format, payload, len, qos);
}

/* ---- Subscriptions ---------------------------------------------------------- */

/* The filter for `fl`, with the QoS the platform's SDK uses for it. */
static tt_err filter_topic(const tt_wiotp *w, const tt_wiotp_filter *fl, char *buf, size_t cap,
                           tt_qos *qos, const char **why) {
    *why = "bad type, device, id or format";
    if (!fl || fl->size < sizeof(uint32_t)) return TT_EINVAL;
    const char *t = fl->type_id, *d = fl->device_id, *id = fl->id, *fmt = fl->format;
    if (!any_ok(t) || !any_ok(d) || !any_ok(id) || !any_ok(fmt)) return TT_EINVAL;
    *qos = fl->qos;
    int n = -1;
    if (w->role == TT_WIOTP_DEVICE) {
        *why = "devices are subscribed to their commands already, and to nothing else";
        return TT_ENOTSUP;
    }
    if (w->role == TT_WIOTP_GATEWAY) {
        *why = "gateways subscribe to commands and notifications only";
        if (fl->kind != TT_WIOTP_COMMAND && fl->kind != TT_WIOTP_NOTIFICATION) return TT_ENOTSUP;
        if (!t && !d) {
            t = w->type_id;
            d = w->device_id;
        }
        if (fl->kind == TT_WIOTP_NOTIFICATION) {
            *why = "a gateway gets its own notifications only";
            if (strcmp(t, w->type_id) != 0 || !d || strcmp(d, w->device_id) != 0) return TT_ENOTSUP;
            *qos = TT_QOS0;
            n = snprintf(buf, cap, "iot-2/type/%s/id/%s/notify", t, d);
        } else {
            *qos = TT_QOS1;
            n = snprintf(buf, cap, "iot-2/type/%s/id/%s/cmd/%s/fmt/%s", any(t), any(d), any(id),
                         fmt ? fmt : "json");
        }
        return n >= 0 && (size_t)n < cap ? TT_OK : TT_EINVAL;
    }
    if (w->quickstart) {
        *why = "Quickstart applications watch events and status of one named device";
        if ((fl->kind != TT_WIOTP_EVENT && fl->kind != TT_WIOTP_DEVICE_STATUS) || !d)
            return TT_ENOTSUP;
    }
    switch (fl->kind) {
    case TT_WIOTP_EVENT:
    case TT_WIOTP_COMMAND:
        n = snprintf(buf, cap, "iot-2/type/%s/id/%s/%s/%s/fmt/%s", any(t), any(d),
                     fl->kind == TT_WIOTP_EVENT ? "evt" : "cmd", any(id), any(fmt));
        break;
    case TT_WIOTP_DEVICE_STATUS:
        n = snprintf(buf, cap, "iot-2/type/%s/id/%s/mon", any(t), any(d));
        break;
    case TT_WIOTP_APP_STATUS:
        n = snprintf(buf, cap, "iot-2/app/%s/mon", any(d));
        break;
    case TT_WIOTP_DEVICE_STATE:
        n = snprintf(buf, cap, "iot-2/type/%s/id/%s/intf/%s/evt/state", any(t), any(d), any(id));
        break;
    case TT_WIOTP_THING_STATE:
        n = snprintf(buf, cap, "iot-2/thing/type/%s/id/%s/intf/%s/evt/state", any(t), any(d),
                     any(id));
        break;
    case TT_WIOTP_DEVICE_ERROR:
        n = snprintf(buf, cap, "iot-2/type/%s/id/%s/err/data", any(t), any(d));
        break;
    case TT_WIOTP_THING_ERROR:
        n = snprintf(buf, cap, "iot-2/thing/type/%s/id/%s/err/data", any(t), any(d));
        break;
    default:
        *why = "applications get no notifications";
        return TT_ENOTSUP;
    }
    if (*qos > TT_QOS2) return TT_EINVAL;
    return n >= 0 && (size_t)n < cap ? TT_OK : TT_EINVAL;
}

int tt_wiotp_filter_topic(const tt_wiotp *w, const tt_wiotp_filter *fl, char *buf, size_t cap) {
    tt_qos q;
    const char *why;
    if (!w || !buf || filter_topic(w, fl, buf, cap, &q, &why) != TT_OK) return -1;
    return (int)strlen(buf);
}

static void sub_done(tt_future *f, void *arg) {
    w_call *x = arg;
    if (tt_future_result(f) != TT_OK) {
        relay_fail(x->p, f, "");
    } else {
        const uint8_t *codes = NULL;
        size_t n = 0;
        uint8_t code = 0;
        if (first_refused(f, &code) >= 0) {
            (void)tt_promise_complete(x->p, TT_EREFUSED, code,
                                      "the platform refused the subscription (0x%02x)", code);
        } else {
            (void)tt_future_get_suback(f, &codes, &n);
            tt_promise_set_value(x->p, NULL, NULL, n == 1 ? codes[0] : 0);
            (void)tt_promise_complete(x->p, TT_OK, 0, NULL);
        }
    }
    tt_future_free(f);
    call_done(x);
}

/* The topic filter of `fl` into `topic` (WIOTP_TOPIC_MAX bytes); NULL, or
 * the failed future to return. */
static tt_future *filter_or_fail(tt_wiotp *w, const tt_wiotp_filter *fl, char *topic, tt_qos *q) {
    if (!w) return w_failed(NULL, TT_EINVAL, "no client");
    const char *why;
    tt_err rc = filter_topic(w, fl, topic, WIOTP_TOPIC_MAX, q, &why);
    return rc == TT_OK ? NULL : w_failed(w, rc, why);
}

tt_future *tt_wiotp_subscribe(tt_wiotp *w, const tt_wiotp_filter *fl) {
    char topic[WIOTP_TOPIC_MAX];
    tt_qos q;
    tt_future *out = filter_or_fail(w, fl, topic, &q);
    if (out) return out;
    w_call *x = call_new(w, &out);
    if (!x) return out;
    tt_sub s = { .filter = topic, .qos = q, .handler = on_msg, .arg = w };
    call_then(x, tt_client_subscribe(w->c, &s, 1, NULL), sub_done);
    return out;
}

tt_future *tt_wiotp_unsubscribe(tt_wiotp *w, const tt_wiotp_filter *fl) {
    char topic[WIOTP_TOPIC_MAX];
    tt_qos q;
    tt_future *failed = filter_or_fail(w, fl, topic, &q);
    if (failed) return failed;
    const char *f[1] = { topic };
    return tt_client_unsubscribe(w->c, f, 1, NULL);
}
