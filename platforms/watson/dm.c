/* Watson IoT device management (include/tether/watson.h, opts.managed): the
 * device's requests on iotdevice-1/... and their answers on
 * iotdm-1/response, matched by reqId; the platform's own requests on
 * iotdm-1/..., answered at once or through on_dm; and the renewal of a
 * manage request before its lifetime runs out. A gateway uses the templated
 * topics (iotdevice-1/type/T/id/D/..., iotdm-1/type/T/id/D/...) for itself.
 * Management is a rare thing next to events: requests wait in a list under
 * one mutex, and their payloads are built as text. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/codec.h>

#include "actors/core/alloc.h"
#include "actors/core/clock.h"
#include "actors/core/log.h"
#include "actors/session/session.h"
#include "platforms/watson/wiotp_internal.h"

#define RENEW_MARGIN_S 120u
#define MIN_LIFETIME_S 3600u

atomic_uint tti_wiotp_ms_per_lifetime_s = 1000;

/* ---- Topics ----------------------------------------------------------------- */

/* "<root>/<rest>" for a device, "<root>/type/T/id/D/<rest>" for a gateway. */
static int dm_topic(const tt_wiotp *w, const char *root, const char *rest, char *buf, size_t cap) {
    int n = w->role == TT_WIOTP_GATEWAY
                ? snprintf(buf, cap, "%s/type/%s/id/%s/%s", root, w->type_id, w->device_id, rest)
                : snprintf(buf, cap, "%s/%s", root, rest);
    return n > 0 && (size_t)n < cap ? n : -1;
}

int tti_wiotp_dm_filter(const tt_wiotp *w, char *buf, size_t cap) {
    return dm_topic(w, "iotdm-1", "#", buf, cap);
}

/* ---- JSON text ---------------------------------------------------------------- */

/* JSON text under construction: a tt_buf, with `failed` once an allocation
 * failed and `invalid` once a string given was not UTF-8. */
typedef struct sbuf {
    tt_buf b;
    bool failed, invalid;
} sbuf;

static void sb_put(sbuf *b, const char *p, size_t n) {
    if (!b->failed && tt_buf_append(&b->b, p, n) != TT_OK) b->failed = true;
}

/* The text, NUL-terminated and the caller's (tti_free), or NULL with *rc
 * saying what went wrong building it. */
static char *sb_take(sbuf *b, tt_err *rc) {
    sb_put(b, "", 1);
    *rc = b->invalid ? TT_EINVAL : b->failed ? TT_ENOMEM : TT_OK;
    if (*rc != TT_OK) {
        tt_buf_free(&b->b);
        return NULL;
    }
    return (char *)b->b.data;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* A JSON string literal (quotes and escapes) of `s`. */
static void sb_json_str(sbuf *b, const char *s) {
    json_t *j = json_string(s);
    if (!j) {
        b->invalid = true;            /* not UTF-8 (or out of memory: said as such below) */
        return;
    }
    char *t = json_dumps(j, JSON_ENCODE_ANY);
    if (t) sb_str(b, t);
    else b->failed = true;
    free(t);
    json_decref(j);
}

static void sb_json(sbuf *b, const json_t *v) {
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (t) sb_str(b, t);
    else b->failed = true;
    free(t);
}

static void sb_num(sbuf *b, double v) {
    char t[40];
    snprintf(t, sizeof t, "%.17g", v);
    sb_str(b, t);
}

/* ---- Waiting requests --------------------------------------------------------- */

/* Drop the requests whose futures ended (deadline, cancel); dm_lock held. */
static void sweep(tt_wiotp *w) {
    for (wiotp_pending **pp = &w->pending; *pp;) {
        wiotp_pending *e = *pp;
        if (tt_future_done(tti_promise_future(e->p))) {
            *pp = e->next;
            (void)tt_promise_complete(e->p, TT_ETIMEDOUT, 0, NULL);
            tti_free(e);
            w->npending--;
        } else {
            pp = &e->next;
        }
    }
}

static wiotp_pending *take(tt_wiotp *w, const char *req_id) {
    wiotp_pending *out = NULL;
    pthread_mutex_lock(&w->dm_lock);
    for (wiotp_pending **pp = &w->pending; *pp; pp = &(*pp)->next) {
        if (!strcmp((*pp)->req_id, req_id)) {
            out = *pp;
            *pp = out->next;
            w->npending--;
            break;
        }
    }
    pthread_mutex_unlock(&w->dm_lock);
    return out;
}

typedef struct sent_ctx {
    tt_wiotp *w;
    char req_id[40];
} sent_ctx;

/* The request's PUBLISH finished: if it failed, so does the request. */
static void on_sent(tt_future *f, void *arg) {
    sent_ctx *x = arg;
    if (tt_future_result(f) != TT_OK) {
        wiotp_pending *e = take(x->w, x->req_id);
        if (e) {
            const char *why = NULL;
            int detail = tt_future_detail(f, &why);
            tt_err rc = tt_future_result(f);
            (void)tt_promise_complete(e->p, rc, detail, "%s", why && *why ? why : tt_strerror(rc));
            tti_free(e);
        }
    }
    tt_future_free(f);
    tti_wiotp_unref(x->w);
    tti_free(x);
}

static tt_future *dm_failed(tt_wiotp *w, tt_err rc, const char *why) {
    return tti_future_failed(w ? &w->c->strand : NULL, rc, why);
}

/* A call whose payload could not be built (sb_take's error). */
static tt_future *sb_failed(tt_wiotp *w, tt_err rc) {
    return dm_failed(w, rc, rc == TT_EINVAL ? "a string is not UTF-8" : NULL);
}

/* Send {"d":<d>,"reqId":"<new id>"} (d NULL: no "d") on iotdevice-1/<rest>
 * and wait for the answer. */
static tt_future *dm_request(tt_wiotp *w, const char *rest, const char *d) {
    if (!w) return dm_failed(NULL, TT_EINVAL, "no client");
    if (!w->managed)
        return dm_failed(w, TT_ENOTSUP, "not a managed device or gateway (tt_wiotp_opts.managed)");
    if (atomic_load(&w->closing)) return dm_failed(w, TT_ECLOSED, "client closed");
    char topic[WIOTP_TOPIC_MAX];
    if (dm_topic(w, "iotdevice-1", rest, topic, sizeof topic) < 0)
        return dm_failed(w, TT_EINVAL, "topic too long");
    wiotp_pending *e = tti_calloc(1, sizeof *e);
    sent_ctx *x = tti_malloc(sizeof *x);
    tt_future *out = e && x ? tti_future_new(&w->c->strand, 0) : NULL;
    if (!out) {
        tti_free(e);
        tti_free(x);
        return tti_future_enomem();
    }
    tti_wiotp_uuid(e->req_id);
    e->p = tti_future_promise(out);
    tti_future_set_deadline(out, w->c->actor.loop->base, w->req_timeout_ms);
    sbuf b = { 0 };
    sb_str(&b, "{");
    if (d) {
        sb_str(&b, "\"d\":");
        sb_str(&b, d);
        sb_str(&b, ",");
    }
    sb_str(&b, "\"reqId\":\"");
    sb_str(&b, e->req_id);
    sb_str(&b, "\"}");
    tt_err brc;
    char *text = sb_take(&b, &brc);
    if (!text) {
        tti_free(x);
        (void)tt_promise_complete(e->p, TT_ENOMEM, 0, NULL);
        tti_free(e);
        return out;
    }
    pthread_mutex_lock(&w->dm_lock);
    if (w->npending >= 64) sweep(w);
    e->next = w->pending;
    w->pending = e;
    w->npending++;
    pthread_mutex_unlock(&w->dm_lock);
    x->w = w;
    memcpy(x->req_id, e->req_id, sizeof x->req_id);
    tti_wiotp_ref(w);
    tt_future *pf = tt_client_pub(w->c, topic, text, strlen(text), TT_QOS1, false);
    tti_free(text);
    if (tt_future_then(pf, on_sent, x) != TT_OK) on_sent(pf, x);
    return out;
}

/* The renewal timer: w->renew holds a reference of its own (retained when
 * armed); whoever takes the timer out of w->renew releases it, and the
 * timer's continuation releases the rest. dm_lock held. */
static tt_future *take_renewal(tt_wiotp *w) {
    tt_future *t = w->renew;
    w->renew = NULL;
    return t;
}

/* Cancel a timer taken out of w->renew (outside dm_lock: the cancel runs
 * the continuation, which takes the lock) and drop its reference. */
static void stop_renewal(tt_future *t) {
    if (!t) return;
    tt_future_cancel(t);
    tti_future_release(t);
}

void tti_wiotp_dm_close(tt_wiotp *w) {
    pthread_mutex_lock(&w->dm_lock);
    wiotp_pending *e = w->pending;
    w->pending = NULL;
    w->npending = 0;
    tt_future *r = take_renewal(w);
    pthread_mutex_unlock(&w->dm_lock);
    stop_renewal(r);
    while (e) {
        wiotp_pending *next = e->next;
        (void)tt_promise_complete(e->p, TT_ECLOSED, 0, "client closed");
        tti_free(e);
        e = next;
    }
}

/* ---- Manage and its renewal -------------------------------------------------- */

static void arm_renewal(tt_wiotp *w);

typedef struct manage_ctx {
    tt_wiotp *w;
    tt_promise *p;                    /* the caller's future; NULL for a renewal */
    uint32_t lifetime_s;
} manage_ctx;

static void managed_cb(tt_future *f, void *arg) {
    manage_ctx *x = arg;
    tt_err rc = tt_future_result(f);
    if (rc == TT_OK && x->lifetime_s) arm_renewal(x->w);
    if (!x->p && rc != TT_OK)
        TTI_LOG(WARN, "wiotp", "%s: renewing the manage request failed: %s",
                tt_client_id(x->w->c), tt_strerror(rc));
    if (x->p) {
        if (rc == TT_OK) {
            tt_promise_set_value(x->p, NULL, NULL, tt_future_get_i64(f));
            (void)tt_promise_complete(x->p, TT_OK, 0, NULL);
        } else {
            const char *why = NULL;
            int detail = tt_future_detail(f, &why);
            (void)tt_promise_complete(x->p, rc, detail, "%s", why && *why ? why : tt_strerror(rc));
        }
    }
    tt_future_free(f);
    tti_wiotp_unref(x->w);
    tti_free(x);
}

/* Send the stored manage request; p (may be NULL) gets the outcome. */
static void send_manage(tt_wiotp *w, tt_promise *p) {
    pthread_mutex_lock(&w->dm_lock);
    char *d = w->manage_d ? tti_strdup(w->manage_d) : NULL;
    uint32_t lifetime = w->lifetime_s;
    pthread_mutex_unlock(&w->dm_lock);
    manage_ctx *x = d ? tti_malloc(sizeof *x) : NULL;
    if (!x) {
        tti_free(d);
        if (p) (void)tt_promise_complete(p, TT_ENOMEM, 0, NULL);
        return;
    }
    x->w = w;
    x->p = p;
    x->lifetime_s = lifetime;
    tti_wiotp_ref(w);
    tt_future *f = dm_request(w, "mgmt/manage", d);
    tti_free(d);
    if (tt_future_then(f, managed_cb, x) != TT_OK) managed_cb(f, x);
}

static void renew_cb(tt_future *f, void *arg) {
    tt_wiotp *w = arg;
    pthread_mutex_lock(&w->dm_lock);
    bool mine = w->renew == f;
    if (mine) w->renew = NULL;
    pthread_mutex_unlock(&w->dm_lock);
    bool due = mine && tt_future_result(f) == TT_ETIMEDOUT;
    if (mine) tti_future_release(f);  /* the handle w->renew held */
    /* The timer's promise: it already ended (deadline or cancel); release it. */
    (void)tt_promise_complete(tti_future_promise(f), TT_OK, 0, NULL);
    tt_future_free(f);
    if (due && !atomic_load(&w->closing)) send_manage(w, NULL);
    tti_wiotp_unref(w);
}

/* A timer for RENEW_MARGIN_S before the lifetime ends: a future with a
 * deadline on the client's loop. */
static void arm_renewal(tt_wiotp *w) {
    pthread_mutex_lock(&w->dm_lock);
    uint32_t life = w->lifetime_s;
    tt_future *old = take_renewal(w), *t = NULL;
    if (life && w->manage_d && !atomic_load(&w->closing) && (t = tti_future_new(&w->c->strand, 0))) {
        uint64_t ms = (uint64_t)(life - RENEW_MARGIN_S) * atomic_load(&tti_wiotp_ms_per_lifetime_s);
        tti_future_set_deadline(t, w->c->actor.loop->base, ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms);
        tti_wiotp_ref(w);
        tti_future_retain(t);         /* the handle in w->renew; the continuation owns the other */
        w->renew = t;
        if (tt_future_then(t, renew_cb, w) != TT_OK) {   /* only out of memory */
            w->renew = NULL;
            tti_future_release(t);
            tt_future_free(t);
            tti_wiotp_unref(w);
        }
    }
    pthread_mutex_unlock(&w->dm_lock);
    stop_renewal(old);
}

static void sb_member(sbuf *b, bool *first, const char *key) {
    sb_str(b, *first ? "" : ",");
    *first = false;
    sb_json_str(b, key);
    sb_str(b, ":");
}

tt_future *tt_wiotp_manage(tt_wiotp *w, const tt_wiotp_manage_opts *o) {
    if (!w) return dm_failed(NULL, TT_EINVAL, "no client");
    if (!w->managed)
        return dm_failed(w, TT_ENOTSUP, "not a managed device or gateway (tt_wiotp_opts.managed)");
    tt_wiotp_manage_opts mo = TT_OPTS_INIT(tt_wiotp_manage_opts);
    if (o) {
        if (o->size < sizeof(uint32_t)) return dm_failed(w, TT_EINVAL, "bad options");
        memcpy(&mo, o, o->size < sizeof mo ? o->size : sizeof mo);
    }
    if (mo.metadata && !json_is_object(mo.metadata))
        return dm_failed(w, TT_EINVAL, "metadata must be a JSON object");
    uint32_t life = mo.lifetime_s < MIN_LIFETIME_S ? 0 : mo.lifetime_s;
    sbuf b = { 0 };
    char num[24];
    snprintf(num, sizeof num, "%" PRIu32, life);
    sb_str(&b, "{\"lifetime\":");
    sb_str(&b, num);
    sb_str(&b, ",\"supports\":{\"deviceActions\":");
    sb_str(&b, mo.device_actions ? "true" : "false");
    sb_str(&b, ",\"firmwareActions\":");
    sb_str(&b, mo.firmware_actions ? "true" : "false");
    for (size_t i = 0; i < mo.nbundles && mo.bundles; i++) {
        if (!mo.bundles[i] || !*mo.bundles[i]) continue;
        sb_str(&b, ",");
        sb_json_str(&b, mo.bundles[i]);
        sb_str(&b, ":true");
    }
    sb_str(&b, "}");
    if (mo.info) {
        const tt_wiotp_device_info *in = mo.info;
        const struct { const char *k, *v; } f[] = {
            { "serialNumber", in->serial_number }, { "manufacturer", in->manufacturer },
            { "model", in->model }, { "deviceClass", in->device_class },
            { "description", in->description }, { "fwVersion", in->fw_version },
            { "hwVersion", in->hw_version }, { "descriptiveLocation", in->descriptive_location },
        };
        sb_str(&b, ",\"deviceInfo\":{");
        bool first = true;
        for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
            if (!f[i].v) continue;
            sb_member(&b, &first, f[i].k);
            sb_json_str(&b, f[i].v);
        }
        sb_str(&b, "}");
    }
    if (mo.metadata) {
        sb_str(&b, ",\"metadata\":");
        sb_json(&b, mo.metadata);
    }
    sb_str(&b, "}");
    tt_err brc;
    char *d = sb_take(&b, &brc);
    if (!d) return sb_failed(w, brc);
    tt_future *out = tti_future_new(&w->c->strand, 0);
    if (!out) {
        tti_free(d);
        return tti_future_enomem();
    }
    pthread_mutex_lock(&w->dm_lock);
    tti_free(w->manage_d);
    w->manage_d = d;
    w->lifetime_s = life;
    tt_future *old = take_renewal(w);   /* the new request restarts the clock */
    pthread_mutex_unlock(&w->dm_lock);
    stop_renewal(old);
    send_manage(w, tti_future_promise(out));
    return out;
}

tt_future *tt_wiotp_unmanage(tt_wiotp *w) {
    if (w && w->managed) {
        pthread_mutex_lock(&w->dm_lock);
        tti_free(w->manage_d);
        w->manage_d = NULL;
        w->lifetime_s = 0;
        tt_future *old = take_renewal(w);
        pthread_mutex_unlock(&w->dm_lock);
        stop_renewal(old);
    }
    return dm_request(w, "mgmt/unmanage", NULL);
}

/* ---- Diagnostics and fields ------------------------------------------------------ */

static tt_future *request_text(tt_wiotp *w, const char *rest, sbuf *b) {
    tt_err rc;
    char *d = sb_take(b, &rc);
    if (!d) return sb_failed(w, rc);
    tt_future *f = dm_request(w, rest, d);
    tti_free(d);
    return f;
}

tt_future *tt_wiotp_set_location(tt_wiotp *w, double longitude, double latitude,
                                 const double *elevation, const double *accuracy) {
    if (!isfinite(longitude) || !isfinite(latitude) || longitude < -180 || longitude > 180 ||
        latitude < -90 || latitude > 90 || (elevation && !isfinite(*elevation)) ||
        (accuracy && (!isfinite(*accuracy) || *accuracy < 0)))
        return dm_failed(w, TT_EINVAL, "longitude -180..180, latitude -90..90, finite values");
    char when[TTI_UTC_ISO8601_SIZE];
    tti_utc_iso8601(tti_now_ms(), when);
    sbuf b = { 0 };
    sb_str(&b, "{\"longitude\":");
    sb_num(&b, longitude);
    sb_str(&b, ",\"latitude\":");
    sb_num(&b, latitude);
    if (elevation) {
        sb_str(&b, ",\"elevation\":");
        sb_num(&b, *elevation);
    }
    if (accuracy) {
        sb_str(&b, ",\"accuracy\":");
        sb_num(&b, *accuracy);
    }
    sb_str(&b, ",\"measuredDateTime\":\"");
    sb_str(&b, when);
    sb_str(&b, "\"}");
    return request_text(w, "device/update/location", &b);
}

tt_future *tt_wiotp_add_error_code(tt_wiotp *w, int code) {
    char d[40];
    snprintf(d, sizeof d, "{\"errorCode\":%d}", code);
    return dm_request(w, "add/diag/errorCodes", d);
}

tt_future *tt_wiotp_clear_error_codes(tt_wiotp *w) {
    return dm_request(w, "clear/diag/errorCodes", NULL);
}

tt_future *tt_wiotp_add_log(tt_wiotp *w, const char *message, const char *data, int severity) {
    if (severity < 0 || severity > 2) return dm_failed(w, TT_EINVAL, "severity 0, 1 or 2");
    char when[TTI_UTC_ISO8601_SIZE], sev[8];
    tti_utc_iso8601(tti_now_ms(), when);
    snprintf(sev, sizeof sev, "%d", severity);
    sbuf b = { 0 };
    sb_str(&b, "{\"message\":");
    sb_json_str(&b, message ? message : "");
    sb_str(&b, ",\"timestamp\":\"");
    sb_str(&b, when);
    sb_str(&b, "\",\"data\":");
    sb_json_str(&b, data ? data : "");
    sb_str(&b, ",\"severity\":");
    sb_str(&b, sev);
    sb_str(&b, "}");
    return request_text(w, "add/diag/log", &b);
}

tt_future *tt_wiotp_clear_log(tt_wiotp *w) { return dm_request(w, "clear/diag/log", NULL); }

tt_future *tt_wiotp_notify_field(tt_wiotp *w, const char *field, const json_t *value) {
    if (!field || !*field || !value) return dm_failed(w, TT_EINVAL, "a field and a value");
    sbuf b = { 0 };
    sb_str(&b, "{\"field\":");
    sb_json_str(&b, field);
    sb_str(&b, ",\"value\":");
    sb_json(&b, value);
    sb_str(&b, "}");
    return request_text(w, "notify", &b);
}

tt_future *tt_wiotp_dm_respond(tt_wiotp *w, const char *req_id, int rc, const char *message) {
    if (!w) return dm_failed(NULL, TT_EINVAL, "no client");
    if (!w->managed)
        return dm_failed(w, TT_ENOTSUP, "not a managed device or gateway (tt_wiotp_opts.managed)");
    if (!req_id) return dm_failed(w, TT_EINVAL, "no request id");
    char topic[WIOTP_TOPIC_MAX], num[16];
    if (dm_topic(w, "iotdevice-1", "response", topic, sizeof topic) < 0)
        return dm_failed(w, TT_EINVAL, "topic too long");
    snprintf(num, sizeof num, "%d", rc);
    sbuf b = { 0 };
    sb_str(&b, "{\"rc\":");
    sb_str(&b, num);
    if (message) {
        sb_str(&b, ",\"message\":");
        sb_json_str(&b, message);
    }
    sb_str(&b, ",\"reqId\":");
    sb_json_str(&b, req_id);
    sb_str(&b, "}");
    tt_err brc;
    char *text = sb_take(&b, &brc);
    if (!text) return sb_failed(w, brc);
    tt_future *f = tt_client_pub(w->c, topic, text, strlen(text), TT_QOS1, false);
    tti_free(text);
    return f;
}

/* ---- What the platform sends ---------------------------------------------------- */

static void answer(tt_wiotp *w, const char *req_id, int rc, const char *message) {
    tt_future_free(tt_wiotp_dm_respond(w, req_id, rc, message));
}

/* iotdm-1/response {"rc":..,"reqId":..,"message"?}. */
static void on_response(tt_wiotp *w, json_t *j) {
    json_t *id = json_object_get(j, "reqId"), *rc = json_object_get(j, "rc");
    if (!json_is_string(id)) return;
    wiotp_pending *e = take(w, json_string_value(id));
    if (!e) return;
    if (!json_is_integer(rc)) {
        (void)tt_promise_complete(e->p, TT_EPROTO, 0, "an answer without rc");
    } else if (json_integer_value(rc) != 200) {
        json_t *msg = json_object_get(j, "message");
        json_int_t v = json_integer_value(rc);
        (void)tt_promise_complete(e->p, TT_EREFUSED, v > INT32_MAX || v < INT32_MIN ? -1 : (int)v,
                                  "the platform answered rc %" JSON_INTEGER_FORMAT "%s%s",
                                  json_integer_value(rc), json_is_string(msg) ? ": " : "",
                                  json_is_string(msg) ? json_string_value(msg) : "");
    } else if (tti_promise_commit(e->p)) {
        tt_promise_set_value(e->p, NULL, NULL, 200);
        (void)tt_promise_complete(e->p, TT_OK, 0, NULL);
    } else {
        (void)tt_promise_complete(e->p, TT_ETIMEDOUT, 0, NULL);   /* it ended meanwhile */
    }
    tti_free(e);
}

void tti_wiotp_dm_on_msg(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    tt_wiotp *w = arg;
    size_t tl, n;
    const char *topic = tt_msg_topic(m, &tl);
    const char *p = tt_msg_payload(m, &n);
    char prefix[WIOTP_TOPIC_MAX];
    int pl = dm_topic(w, "iotdm-1", "", prefix, sizeof prefix);
    if (pl < 0 || tl <= (size_t)pl || memcmp(topic, prefix, (size_t)pl) != 0) return;
    char rest[WIOTP_TOPIC_MAX];
    size_t rl = tl - (size_t)pl;
    if (rl >= sizeof rest) return;
    memcpy(rest, topic + pl, rl);
    rest[rl] = '\0';
    json_t *j = p && n ? json_loadb(p, n, 0, NULL) : NULL;
    if (!strcmp(rest, "response")) {
        on_response(w, j);
        json_decref(j);
        return;
    }
    json_t *jid = json_object_get(j, "reqId");
    const char *req_id = json_is_string(jid) ? json_string_value(jid) : NULL;
    if (!req_id) {
        TTI_LOG(WARN, "wiotp", "%s: a management request on %s without reqId, ignored",
                tt_client_id(w->c), rest);
        json_decref(j);
        return;
    }
    tt_wiotp_dm_request r = { .req_id = req_id, .action = "", .topic = rest,
                              .data = json_object_get(j, "d") };
    if (!strcmp(rest, "observe") || !strcmp(rest, "cancel")) {
        answer(w, req_id, 200, NULL);
    } else if (!strcmp(rest, "device/update")) {
        answer(w, req_id, 204, NULL);
        r.kind = TT_WIOTP_DM_FIELD_UPDATE;
    } else if (!strcmp(rest, "mgmt/initiate/device/reboot")) {
        r.kind = TT_WIOTP_DM_REBOOT;
    } else if (!strcmp(rest, "mgmt/initiate/device/factory_reset")) {
        r.kind = TT_WIOTP_DM_FACTORY_RESET;
    } else if (!strcmp(rest, "mgmt/initiate/firmware/download")) {
        r.kind = TT_WIOTP_DM_FW_DOWNLOAD;
    } else if (!strcmp(rest, "mgmt/initiate/firmware/update")) {
        r.kind = TT_WIOTP_DM_FW_UPDATE;
    } else if (!strncmp(rest, "mgmt/custom/", 12) && rest[12]) {
        r.kind = TT_WIOTP_DM_CUSTOM;
        r.action = rest + 12;
    } else {
        answer(w, req_id, 501, "unknown request");
    }
    if (r.kind) {
        if (w->on_dm) w->on_dm(w, &r, w->on_dm_arg);
        else if (r.kind != TT_WIOTP_DM_FIELD_UPDATE) answer(w, req_id, 501, "not supported");
    }
    json_decref(j);
}
