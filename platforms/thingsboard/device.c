/* ThingsBoard device and gateway clients (include/tether/thingsboard.h): the
 * topics of the MQTT device API, a table of requests waiting for answers, and
 * local dispatch of shared-attribute updates and RPC requests. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/core/alloc.h"
#include "actors/core/log.h"
#include "actors/session/session.h"
#include "platforms/thingsboard/tb_internal.h"

#define TB_DEFAULT_TIMEOUT_MS 10000u
#define TB_DEFAULT_MAX_PAYLOAD 65536u

/* ---- Helpers ---------------------------------------------------------------- */

char *tti_tb_dumps(const json_t *v) { return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY); }

void tti_tb_json_free(void *v) { json_decref((json_t *)v); }

/* "<prefix><decimal id>" -> id. */
bool tti_tb_topic_id(const char *topic, size_t tlen, const char *prefix, int64_t *id) {
    size_t pl = strlen(prefix);
    if (tlen <= pl || tlen - pl > 19 || memcmp(topic, prefix, pl) != 0) return false;
    int64_t v = 0;
    for (size_t i = pl; i < tlen; i++) {
        if (topic[i] < '0' || topic[i] > '9') return false;
        v = v * 10 + (topic[i] - '0');
    }
    *id = v;
    return true;
}

static json_t *parse(const tt_msg *m) {
    size_t n;
    const char *p = tt_msg_payload(m, &n);
    if (!p) return NULL;
    return json_loadb(p, n, JSON_DECODE_ANY, NULL);
}

/* ---- References and futures ---------------------------------------------- */

void tti_tb_ref(tt_tb_device *d) { atomic_fetch_add(&d->refs, 1); }

static void free_pending(tb_pending *e) {
    tti_free(e->key);
    tti_free(e);
}

void tti_tb_unref(tt_tb_device *d) {
    if (atomic_fetch_sub(&d->refs, 1) != 1) return;
    while (d->subs) {
        tb_sub *s = d->subs;
        d->subs = s->next;
        tti_free(s->device);
        tti_free(s->key);
        tti_free(s);
    }
    while (d->pending) {              /* normally failed at close already */
        tb_pending *e = d->pending;
        d->pending = e->next;
        (void)tt_promise_complete(e->p, TT_ECLOSED, 0, "device freed");
        free_pending(e);
    }
    tt_client_free(d->c);
    pthread_mutex_destroy(&d->lock);
    tti_free(d);
}

tt_future *tti_tb_future(tt_tb_device *d, uint32_t timeout_ms) {
    tt_future *f = tti_future_new(&d->c->strand, 0);
    if (!f) return tti_future_enomem();
    if (timeout_ms) tti_future_set_deadline(f, d->c->actor.loop->base, timeout_ms);
    return f;
}

tt_future *tti_tb_failed(tt_tb_device *d, tt_err rc, const char *reason) {
    return tti_future_failed(d ? &d->c->strand : NULL, rc, reason);
}

void tti_tb_resolve_json(tt_promise *p, json_t *v) {
    if (tti_promise_commit(p)) {
        tt_promise_set_value(p, v, tti_tb_json_free, 0);
        (void)tt_promise_complete(p, TT_OK, 0, NULL);
    } else {
        json_decref(v);
        (void)tt_promise_complete(p, TT_ETIMEDOUT, 0, NULL);
    }
}

static void relay_cb(tt_future *f, void *arg) {
    tt_promise *p = arg;
    const char *why = NULL;
    int detail = tt_future_detail(f, &why);
    tt_err rc = tt_future_result(f);
    if (rc == TT_OK) (void)tt_promise_complete(p, TT_OK, 0, NULL);
    else (void)tt_promise_complete(p, rc, detail, "%s", why && *why ? why : tt_strerror(rc));
    tt_future_free(f);
}

void tti_tb_relay(tt_future *f, tt_promise *p) {
    if (tt_future_then(f, relay_cb, p) != TT_OK) {
        /* only the shared out-of-memory future refuses a continuation */
        (void)tt_promise_complete(p, TT_ENOMEM, 0, NULL);
        tt_future_free(f);
    }
}

/* ---- Sending ------------------------------------------------------------------ */

tt_future *tti_tb_send_json(tt_tb_device *d, const char *topic, const json_t *v) {
    char *s = tti_tb_dumps(v);
    if (!s) return tti_tb_failed(d, TT_ENOMEM, "cannot encode JSON");
    tt_future *f = tti_tb_send(d, topic, s, strlen(s), false, 0);
    free(s);
    return f;
}

/* Several parts behind one future: the first error wins, else TT_OK. */
typedef struct tb_join {
    atomic_int left;
    _Atomic tt_err err;
    tt_promise *p;
} tb_join;

static void join_cb(tt_future *f, void *arg) {
    tb_join *j = arg;
    tt_err rc = tt_future_result(f);
    if (rc != TT_OK) {
        tt_err expect = TT_OK;
        (void)atomic_compare_exchange_strong(&j->err, &expect, rc);
    }
    tt_future_free(f);
    if (atomic_fetch_sub(&j->left, 1) == 1) {
        tt_err e = atomic_load(&j->err);
        if (e == TT_OK) (void)tt_promise_complete(j->p, TT_OK, 0, NULL);
        else (void)tt_promise_complete(j->p, e, 0, "a part failed: %s", tt_strerror(e));
        tti_free(j);
    }
}

tt_future *tti_tb_send_parts(tt_tb_device *d, const char *topic, const json_t *data, bool attrs,
                             const char *wrap) {
    char **parts;
    uint32_t *points;
    size_t n;
    tt_err rc = tti_tb_pack(data, attrs, wrap, atomic_load(&d->max_payload), &parts, &points, &n);
    if (rc != TT_OK)
        return tti_tb_failed(d, rc, rc == TT_EINVAL ? "not a telemetry object or array, or one "
                                                      "value larger than the payload limit"
                                                    : NULL);
    tt_future *out;
    if (n == 1) {
        out = tti_tb_send(d, topic, parts[0], strlen(parts[0]), !attrs, points[0]);
    } else {
        out = tti_tb_future(d, 0);
        tb_join *j = tti_calloc(1, sizeof *j);
        if (!j) {
            (void)tt_promise_complete(tti_future_promise(out), TT_ENOMEM, 0, NULL);
        } else {
            atomic_init(&j->left, (int)n);
            atomic_init(&j->err, TT_OK);
            j->p = tti_future_promise(out);
            for (size_t i = 0; i < n; i++) {
                tt_future *f = tti_tb_send(d, topic, parts[i], strlen(parts[i]), !attrs, points[i]);
                if (tt_future_then(f, join_cb, j) != TT_OK) {
                    tt_future_free(f);
                    /* count it as a failed part */
                    tt_err expect = TT_OK;
                    (void)atomic_compare_exchange_strong(&j->err, &expect, TT_ENOMEM);
                    if (atomic_fetch_sub(&j->left, 1) == 1) {
                        (void)tt_promise_complete(j->p, TT_ENOMEM, 0, NULL);
                        tti_free(j);
                    }
                }
            }
        }
    }
    for (size_t i = 0; i < n; i++) free(parts[i]);
    tti_free(parts);
    tti_free(points);
    return out;
}

/* ---- Pending requests --------------------------------------------------------- */

/* Entries whose future timed out or was cancelled: release them (lock held). */
static void sweep(tt_tb_device *d) {
    tb_pending **pp = &d->pending;
    while (*pp) {
        tb_pending *e = *pp;
        if (tt_promise_abandoned(e->p)) {
            *pp = e->next;
            d->npending--;
            (void)tt_promise_complete(e->p, TT_ETIMEDOUT, 0, NULL);
            free_pending(e);
        } else {
            pp = &e->next;
        }
    }
    d->sweep_at = d->npending * 2 > 64 ? d->npending * 2 : 64;
}

tb_pending *tti_tb_take(tt_tb_device *d, int kind, int64_t id) {
    pthread_mutex_lock(&d->lock);
    tb_pending **pp = &d->pending, *e = NULL;
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id && (*pp)->kind == kind) {
            e = *pp;
            *pp = e->next;
            d->npending--;
            break;
        }
    pthread_mutex_unlock(&d->lock);
    return e;
}

typedef struct req_sent {
    tt_tb_device *d;
    int kind;
    int64_t id;
} req_sent;

/* The request's PUBLISH failed: fail the request now rather than at its deadline. */
static void req_sent_cb(tt_future *f, void *arg) {
    req_sent *r = arg;
    tt_err rc = tt_future_result(f);
    if (rc != TT_OK) {
        tb_pending *e = tti_tb_take(r->d, r->kind, r->id);
        if (e) {
            const char *why = NULL;
            int detail = tt_future_detail(f, &why);
            (void)tt_promise_complete(e->p, rc, detail, "request not sent: %s",
                                      why && *why ? why : tt_strerror(rc));
            free_pending(e);
        }
    }
    tt_future_free(f);
    tti_tb_unref(r->d);
    tti_free(r);
}

tt_future *tti_tb_request(tt_tb_device *d, int kind, int64_t id, const char *key,
                          const char *topic, const json_t *body, uint32_t timeout_ms) {
    if (atomic_load(&d->closing)) return tti_tb_failed(d, TT_ECLOSED, "device closed");
    char *s = tti_tb_dumps(body);
    tb_pending *e = tti_calloc(1, sizeof *e);
    req_sent *r = tti_malloc(sizeof *r);
    if (!s || !e || !r || (key && !(e->key = tti_strdup(key)))) {
        free(s);
        if (e) free_pending(e);
        tti_free(r);
        return tti_tb_failed(d, TT_ENOMEM, NULL);
    }
    tt_future *f = tti_tb_future(d, timeout_ms ? timeout_ms : d->req_timeout_ms);
    e->id = id;
    e->kind = kind;
    e->p = tti_future_promise(f);
    pthread_mutex_lock(&d->lock);
    if (d->npending >= d->sweep_at) sweep(d);
    e->next = d->pending;
    d->pending = e;
    d->npending++;
    pthread_mutex_unlock(&d->lock);
    tt_future *pf = tti_tb_send(d, topic, s, strlen(s), false, 0);
    free(s);
    r->d = d;
    r->kind = kind;
    r->id = id;
    tti_tb_ref(d);
    if (tt_future_then(pf, req_sent_cb, r) != TT_OK) {
        tt_future_free(pf);
        tti_tb_unref(d);
        tti_free(r);
    }
    return f;
}

static void fail_pending(tt_tb_device *d, tt_err rc, const char *why) {
    pthread_mutex_lock(&d->lock);
    tb_pending *e = d->pending;
    d->pending = NULL;
    d->npending = 0;
    pthread_mutex_unlock(&d->lock);
    while (e) {
        tb_pending *next = e->next;
        (void)tt_promise_complete(e->p, rc, 0, "%s", why);
        free_pending(e);
        e = next;
    }
}

/* ---- Incoming --------------------------------------------------------------- */

#define MAX_MATCH 32

typedef struct match {
    void *fn;
    void *arg;
} match;

/* Handlers for (device, key), copied under the lock (at most MAX_MATCH). */
static size_t find_subs(tt_tb_device *d, bool gw, const char *device, const char *key, match *out) {
    size_t n = 0;
    pthread_mutex_lock(&d->lock);
    for (tb_sub *s = d->subs; s && n < MAX_MATCH; s = s->next) {
        if (s->gw != gw) continue;
        if (s->key && strcmp(s->key, key) != 0) continue;
        if (gw && s->device && (!device || strcmp(s->device, device) != 0)) continue;
        out[n].fn = s->fn;
        out[n].arg = s->arg;
        n++;
    }
    pthread_mutex_unlock(&d->lock);
    return n;
}

static void dispatch_attr(tt_tb_device *d, bool gw, const char *device, const char *key,
                          const json_t *v) {
    match m[MAX_MATCH];
    size_t n = find_subs(d, gw, device, key, m);
    for (size_t i = 0; i < n; i++) {
        if (gw) ((tt_tb_gw_attr_fn)m[i].fn)((tt_tb_gateway *)(void *)d, device, key, v, m[i].arg);
        else ((tt_tb_attr_fn)m[i].fn)(d, key, v, m[i].arg);
    }
}

/* {"k":v,...} and/or {"deleted":["k",...]}. */
static void dispatch_update(tt_tb_device *d, bool gw, const char *device, json_t *obj) {
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        if (!strcmp(k, "deleted") && json_is_array(v)) {
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x)
                if (json_is_string(x)) dispatch_attr(d, gw, device, json_string_value(x), NULL);
        } else {
            dispatch_attr(d, gw, device, k, v);
        }
    }
}

static void on_attr_push(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    tt_tb_device *d = arg;
    json_t *j = parse(m);
    if (json_is_object(j)) {
        /* fw_* updates feed a firmware update in progress through the same path */
        dispatch_update(d, false, NULL, j);
    } else {
        TTI_LOG(WARN, "tb", "attribute update that is not a JSON object");
    }
    json_decref(j);
}

static void on_attr_response(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    tt_tb_device *d = arg;
    size_t tl;
    const char *t = tt_msg_topic(m, &tl);
    int64_t id;
    if (!tti_tb_topic_id(t, tl, "v1/devices/me/attributes/response/", &id)) return;
    tb_pending *e = tti_tb_take(d, TB_REQ_ATTR, id);
    if (!e) return;                   /* late (timed out) or not ours */
    json_t *j = parse(m);
    if (json_is_object(j)) {
        tti_tb_resolve_json(e->p, j);
    } else {
        json_decref(j);
        (void)tt_promise_complete(e->p, TT_EPROTO, 0, "attribute response is not a JSON object");
    }
    free_pending(e);
}

static tt_future *rpc_reply_raw(tt_tb_device *d, int64_t id, const json_t *result);

static void on_rpc_request(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    tt_tb_device *d = arg;
    size_t tl;
    const char *t = tt_msg_topic(m, &tl);
    int64_t id;
    if (!tti_tb_topic_id(t, tl, "v1/devices/me/rpc/request/", &id)) return;
    json_t *j = parse(m);
    json_t *method = json_object_get(j, "method");
    pthread_mutex_lock(&d->lock);
    tt_tb_rpc_fn fn = d->rpc_fn;
    void *fa = d->rpc_arg;
    pthread_mutex_unlock(&d->lock);
    if (!json_is_string(method) || !fn) {
        json_t *err = json_pack("{s:s}", "error", json_is_string(method) ? "no handler" : "bad request");
        tt_future_free(rpc_reply_raw(d, id, err));
        json_decref(err);
    } else {
        fn(d, id, json_string_value(method), json_object_get(j, "params"), fa);
    }
    json_decref(j);
}

static void on_rpc_response(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    tt_tb_device *d = arg;
    size_t tl;
    const char *t = tt_msg_topic(m, &tl);
    int64_t id;
    if (!tti_tb_topic_id(t, tl, "v1/devices/me/rpc/response/", &id)) return;
    tb_pending *e = tti_tb_take(d, TB_REQ_RPC, id);
    if (!e) return;
    json_t *j = parse(m);
    if (!j) {                          /* not JSON: hand the text over as a string */
        size_t n;
        const char *p = tt_msg_payload(m, &n);
        j = json_stringn_nocheck(p ? p : "", p ? n : 0);
    }
    if (j) tti_tb_resolve_json(e->p, j);
    else (void)tt_promise_complete(e->p, TT_ENOMEM, 0, NULL);
    free_pending(e);
}

static void on_fw_chunk(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    size_t tl, n;
    const char *t = tt_msg_topic(m, &tl);
    const void *p = tt_msg_payload(m, &n);
    tti_tb_fw_chunk(arg, t, tl, p, n);
}

/* v1/gateway/attributes: {"device":..,"data":{..}}. */
static void on_gw_attr_push(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    tt_tb_device *d = arg;
    json_t *j = parse(m);
    json_t *dev = json_object_get(j, "device"), *data = json_object_get(j, "data");
    if (json_is_string(dev) && json_is_object(data))
        dispatch_update(d, true, json_string_value(dev), data);
    json_decref(j);
}

/* v1/gateway/attributes/response: {"id","device","value"} or {"id","device","values"}. */
static void on_gw_attr_response(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    tt_tb_device *d = arg;
    json_t *j = parse(m);
    json_t *id = json_object_get(j, "id");
    if (!json_is_integer(id)) {
        json_decref(j);
        return;
    }
    tb_pending *e = tti_tb_take(d, TB_REQ_GW_ATTR, json_integer_value(id));
    if (!e) {
        json_decref(j);
        return;
    }
    json_t *values = json_object_get(j, "values"), *value = json_object_get(j, "value");
    json_t *out = NULL;
    /* copies, not references: the caller frees the answer on its own thread
     * while `j` is released here (jansson's reference counts are not meant to
     * be shared across threads) */
    if (json_is_object(values)) {
        out = json_deep_copy(values);
    } else if (value) {
        out = json_object();
        if (out) json_object_set_new(out, e->key ? e->key : "value", json_deep_copy(value));
    } else if (json_is_object(j)) {
        out = json_object();          /* no such attribute: an empty answer */
    }
    if (out) tti_tb_resolve_json(e->p, out);
    else (void)tt_promise_complete(e->p, TT_EPROTO, 0, "unreadable gateway attribute response");
    free_pending(e);
    json_decref(j);
}

/* v1/gateway/rpc carries both the server's requests {"device","data":{"id",
 * "method","params"}} and, on a plain broker, our own replies {"device","id",
 * "data"}: a top-level "id" or a data without "method" is a reply. */
static void on_gw_rpc(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    tt_tb_device *d = arg;
    json_t *j = parse(m);
    json_t *dev = json_object_get(j, "device"), *data = json_object_get(j, "data");
    json_t *method = json_object_get(data, "method"), *id = json_object_get(data, "id");
    if (json_object_get(j, "id") || !json_is_string(dev) || !json_is_string(method) ||
        !json_is_integer(id)) {
        json_decref(j);
        return;
    }
    pthread_mutex_lock(&d->lock);
    tt_tb_gw_rpc_fn fn = d->gw_rpc_fn;
    void *fa = d->gw_rpc_arg;
    pthread_mutex_unlock(&d->lock);
    if (fn) {
        fn((tt_tb_gateway *)(void *)d, json_string_value(dev), json_integer_value(id),
           json_string_value(method), json_object_get(data, "params"), fa);
    } else {
        json_t *err = json_pack("{s:s}", "error", "no handler");
        tt_future_free(tt_tb_gateway_rpc_reply((tt_tb_gateway *)(void *)d, json_string_value(dev),
                                               json_integer_value(id), err));
        json_decref(err);
    }
    json_decref(j);
}

/* v1/gateway/disconnect from the server: {"device","reason"}. Our own
 * disconnect requests (no "reason") come back on a plain broker: ignored. */
static void on_gw_disconnect(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    tt_tb_device *d = arg;
    json_t *j = parse(m);
    json_t *dev = json_object_get(j, "device"), *reason = json_object_get(j, "reason");
    pthread_mutex_lock(&d->lock);
    tt_tb_gw_disc_fn fn = d->disc_fn;
    void *fa = d->disc_arg;
    pthread_mutex_unlock(&d->lock);
    if (fn && json_is_string(dev) && json_is_integer(reason))
        fn((tt_tb_gateway *)(void *)d, json_string_value(dev), (int)json_integer_value(reason), fa);
    json_decref(j);
}

static void on_event(tt_client *c, const tt_client_event *ev, void *arg) {
    tt_tb_device *d = arg;
    if (ev->kind == TT_EV_CONNECTED) atomic_store(&d->connected, true);
    else if (ev->kind == TT_EV_DISCONNECTED) atomic_store(&d->connected, false);
    if (d->user_event) d->user_event(c, ev, d->user_event_arg);
}

/* ---- Creation and connection -------------------------------------------------- */

static tt_err tb_new(tt_runtime *rt, const tt_tb_opts *o, bool gateway, tt_tb_device **out) {
    if (!out) return TT_EINVAL;
    *out = NULL;
    if (!rt || !o || o->size < sizeof(uint32_t) || !o->host || !*o->host) return TT_EINVAL;
    if (o->mqtt && o->mqtt->pull) return TT_EINVAL;
    tt_tb_device *d = tti_calloc(1, sizeof *d);
    if (!d) return TT_ENOMEM;
    atomic_init(&d->refs, 1);
    atomic_init(&d->next_id, 1);
    atomic_init(&d->max_payload, o->max_payload ? o->max_payload : TB_DEFAULT_MAX_PAYLOAD);
    d->gateway = gateway;
    d->qos = o->qos0 ? TT_QOS0 : TT_QOS1;
    d->req_timeout_ms = o->request_timeout_ms ? o->request_timeout_ms : TB_DEFAULT_TIMEOUT_MS;
    d->sweep_at = 64;
    d->next_sub = 1;
    d->qtail = &d->qhead;
    pthread_mutex_init(&d->lock, NULL);

    tt_client_opts co = o->mqtt ? *o->mqtt : TT_OPTS_INIT(tt_client_opts);
    co.size = sizeof co;
    bool tls = o->tls != NULL;
    char url[300];
    const char *h = o->host;
    bool v6 = strchr(h, ':') != NULL;
    snprintf(url, sizeof url, "%s://%s%s%s:%u", tls ? "mqtts" : "mqtt", v6 ? "[" : "", h, v6 ? "]" : "",
             (unsigned)(o->port ? o->port : tls ? 8883 : 1883));
    co.url = url;
    co.tls = o->tls;
    co.client_id = o->client_id;
    co.username = o->token ? o->token : o->username;
    co.password = o->password;
    co.password_len = 0;
    if (!co.version) co.version = TT_MQTT_5;   /* no-local keeps our own publishes away */
    d->user_event = co.on_event;
    d->user_event_arg = co.on_event_arg;
    co.on_event = on_event;
    co.on_event_arg = d;
    tt_err rc = tt_client_new(rt, &co, &d->c);
    if (rc != TT_OK) {
        pthread_mutex_destroy(&d->lock);
        tti_free(d);
        return rc;
    }
    *out = d;
    return TT_OK;
}

tt_err tt_tb_device_new(tt_runtime *rt, const tt_tb_opts *o, tt_tb_device **out) {
    return tb_new(rt, o, false, out);
}

tt_err tt_tb_gateway_new(tt_runtime *rt, const tt_tb_opts *o, tt_tb_gateway **out) {
    return tb_new(rt, o, true, (tt_tb_device **)(void *)out);
}

typedef struct conn_ctx {
    tt_tb_device *d;
    tt_promise *p;
} conn_ctx;

static void conn_subscribed(tt_future *f, void *arg) {
    conn_ctx *x = arg;
    tt_err rc = tt_future_result(f);
    const char *why = NULL;
    int detail = tt_future_detail(f, &why);
    if (rc == TT_OK) {
        const uint8_t *codes;
        size_t n;
        if (tt_future_get_suback(f, &codes, &n) == TT_OK)
            for (size_t i = 0; i < n; i++)
                if (codes[i] >= 0x80)
                    TTI_LOG(WARN, "tb", "subscription %zu refused (0x%02x)", i, codes[i]);
        (void)tt_promise_complete(x->p, TT_OK, 0, NULL);
    } else {
        (void)tt_promise_complete(x->p, rc, detail, "subscribing: %s", why && *why ? why : tt_strerror(rc));
    }
    tt_future_free(f);
    tti_tb_unref(x->d);
    tti_free(x);
}

static void conn_connected(tt_future *f, void *arg) {
    conn_ctx *x = arg;
    tt_tb_device *d = x->d;
    tt_err rc = tt_future_result(f);
    if (rc != TT_OK) {
        const char *why = NULL;
        int detail = tt_future_detail(f, &why);
        (void)tt_promise_complete(x->p, rc, detail, "%s", why && *why ? why : tt_strerror(rc));
        tt_future_free(f);
        tti_tb_unref(d);
        tti_free(x);
        return;
    }
    tt_future_free(f);
    atomic_store(&d->connected, true);
    tt_qos q = TT_QOS1;
    bool nl = d->c->version == TT_MQTT_5;
    tt_sub subs[10] = {
        { .filter = "v1/devices/me/attributes", .qos = q, .no_local = nl, .handler = on_attr_push, .arg = d },
        { .filter = "v1/devices/me/attributes/response/+", .qos = q, .handler = on_attr_response, .arg = d },
        { .filter = "v1/devices/me/rpc/request/+", .qos = q, .no_local = nl, .handler = on_rpc_request, .arg = d },
        { .filter = "v1/devices/me/rpc/response/+", .qos = q, .no_local = nl, .handler = on_rpc_response, .arg = d },
        { .filter = "v2/fw/response/+/chunk/+", .qos = q, .handler = on_fw_chunk, .arg = d },
        { .filter = "v1/gateway/attributes", .qos = q, .no_local = nl, .handler = on_gw_attr_push, .arg = d },
        { .filter = "v1/gateway/attributes/response", .qos = q, .handler = on_gw_attr_response, .arg = d },
        { .filter = "v1/gateway/rpc", .qos = q, .no_local = nl, .handler = on_gw_rpc, .arg = d },
        { .filter = "v1/gateway/disconnect", .qos = q, .no_local = nl, .handler = on_gw_disconnect, .arg = d },
    };
    size_t n = d->gateway ? 9 : 5;
    tt_future *sf = tt_client_subscribe(d->c, subs, n, NULL);
    if (tt_future_then(sf, conn_subscribed, x) != TT_OK) {
        tt_future_free(sf);
        (void)tt_promise_complete(x->p, TT_ENOMEM, 0, NULL);
        tti_tb_unref(d);
        tti_free(x);
    }
}

tt_future *tt_tb_device_connect(tt_tb_device *d) {
    if (!d) return tti_tb_failed(NULL, TT_EINVAL, "no device");
    if (atomic_load(&d->closing)) return tti_tb_failed(d, TT_ECLOSED, "device closed");
    conn_ctx *x = tti_malloc(sizeof *x);
    if (!x) return tti_tb_failed(d, TT_ENOMEM, NULL);
    tt_future *out = tti_tb_future(d, 0);
    x->d = d;
    x->p = tti_future_promise(out);
    tti_tb_ref(d);
    tt_future *cf = tt_client_connect(d->c);
    if (tt_future_then(cf, conn_connected, x) != TT_OK) {
        tt_future_free(cf);
        (void)tt_promise_complete(x->p, TT_ENOMEM, 0, NULL);
        tti_tb_unref(d);
        tti_free(x);
    }
    return out;
}

tt_future *tt_tb_gateway_connect(tt_tb_gateway *g) { return tt_tb_device_connect((tt_tb_device *)(void *)g); }

tt_future *tt_tb_device_disconnect(tt_tb_device *d) {
    if (!d) return tti_tb_failed(NULL, TT_EINVAL, "no device");
    atomic_store(&d->connected, false);
    return tt_client_disconnect(d->c);
}

bool tt_tb_device_connected(const tt_tb_device *d) { return d && atomic_load(&d->connected); }

tt_client *tt_tb_device_client(tt_tb_device *d) { return d ? d->c : NULL; }

tt_tb_device *tt_tb_gateway_device(tt_tb_gateway *g) { return (tt_tb_device *)(void *)g; }

static void closed_cb(tt_future *f, void *arg) {
    tt_tb_device *d = arg;
    tt_future_free(f);
    fail_pending(d, TT_ECLOSED, "device closed");
    tti_tb_limits_fail(d);
    tti_tb_fw_fail_all(d);
    tti_tb_unref(d);
}

void tt_tb_device_free(tt_tb_device *d) {
    if (!d || atomic_exchange(&d->closing, true)) return;
    atomic_store(&d->connected, false);
    tt_future *f = tt_client_close(d->c);
    if (tt_future_then(f, closed_cb, d) != TT_OK) {
        tt_future_free(f);
        fail_pending(d, TT_ECLOSED, "device closed");
        tti_tb_limits_fail(d);
        tti_tb_unref(d);
    }
}

void tt_tb_gateway_free(tt_tb_gateway *g) { tt_tb_device_free((tt_tb_device *)(void *)g); }

/* ---- Device calls ---------------------------------------------------------------- */

tt_future *tt_tb_device_send_telemetry(tt_tb_device *d, const json_t *data) {
    if (!d || !(json_is_object(data) || json_is_array(data)))
        return tti_tb_failed(d, TT_EINVAL, "telemetry must be a JSON object or array");
    return tti_tb_send_parts(d, "v1/devices/me/telemetry", data, false, NULL);
}

tt_future *tt_tb_device_send_telemetry_ts(tt_tb_device *d, int64_t ts_ms, const json_t *values) {
    if (!d || !json_is_object(values)) return tti_tb_failed(d, TT_EINVAL, "values must be a JSON object");
    json_t *e = json_pack("{s:I,s:O}", "ts", (json_int_t)ts_ms, "values", (json_t *)values);
    if (!e) return tti_tb_failed(d, TT_ENOMEM, NULL);
    tt_future *f = tt_tb_device_send_telemetry(d, e);
    json_decref(e);
    return f;
}

tt_future *tt_tb_device_send_attributes(tt_tb_device *d, const json_t *attrs) {
    if (!d || !json_is_object(attrs)) return tti_tb_failed(d, TT_EINVAL, "attributes must be a JSON object");
    return tti_tb_send_parts(d, "v1/devices/me/attributes", attrs, true, NULL);
}

tt_future *tti_tb_request_attrs(tt_tb_device *d, const char *client_keys, const char *shared_keys,
                                uint32_t timeout_ms) {
    json_t *body = json_object();
    if (!body) return tti_tb_failed(d, TT_ENOMEM, NULL);
    if (client_keys) json_object_set_new(body, "clientKeys", json_string(client_keys));
    if (shared_keys) json_object_set_new(body, "sharedKeys", json_string(shared_keys));
    int64_t id = atomic_fetch_add(&d->next_id, 1);
    char topic[80];
    snprintf(topic, sizeof topic, "v1/devices/me/attributes/request/%" PRId64, id);
    tt_future *f = tti_tb_request(d, TB_REQ_ATTR, id, NULL, topic, body, timeout_ms);
    json_decref(body);
    return f;
}

tt_future *tt_tb_device_request_attributes(tt_tb_device *d, const char *client_keys,
                                           const char *shared_keys, const tt_call_opts *opts) {
    if (!d || (!client_keys && !shared_keys))
        return tti_tb_failed(d, TT_EINVAL, "no keys requested");
    return tti_tb_request_attrs(d, client_keys, shared_keys, opts ? opts->timeout_ms : 0);
}

static tt_err add_sub(tt_tb_device *d, bool gw, const char *device, const char *key, void *fn,
                      void *arg, uint32_t *id) {
    if (!d || !fn) return TT_EINVAL;
    tb_sub *s = tti_calloc(1, sizeof *s);
    if (!s) return TT_ENOMEM;
    if ((key && !(s->key = tti_strdup(key))) || (device && !(s->device = tti_strdup(device)))) {
        tti_free(s->key);
        tti_free(s);
        return TT_ENOMEM;
    }
    s->gw = gw;
    s->fn = fn;
    s->arg = arg;
    pthread_mutex_lock(&d->lock);
    s->id = d->next_sub++;
    if (!d->next_sub) d->next_sub = 1;
    tb_sub **pp = &d->subs;            /* append: handlers run in subscription order */
    while (*pp) pp = &(*pp)->next;
    *pp = s;
    pthread_mutex_unlock(&d->lock);
    if (id) *id = s->id;
    return TT_OK;
}

static tt_err del_sub(tt_tb_device *d, bool gw, uint32_t id) {
    if (!d) return TT_EINVAL;
    tt_err rc = id ? TT_ENOTFOUND : TT_OK;
    tb_sub *dead = NULL;
    pthread_mutex_lock(&d->lock);
    for (tb_sub **pp = &d->subs; *pp;) {
        tb_sub *s = *pp;
        if (s->gw == gw && (!id || s->id == id)) {
            *pp = s->next;
            s->next = dead;
            dead = s;
            rc = TT_OK;
        } else {
            pp = &s->next;
        }
    }
    pthread_mutex_unlock(&d->lock);
    while (dead) {
        tb_sub *s = dead;
        dead = s->next;
        tti_free(s->device);
        tti_free(s->key);
        tti_free(s);
    }
    return rc;
}

tt_err tt_tb_device_subscribe_attribute(tt_tb_device *d, const char *key, tt_tb_attr_fn fn, void *arg,
                                        uint32_t *id) {
    return add_sub(d, false, NULL, key, (void *)fn, arg, id);
}

tt_err tt_tb_device_unsubscribe_attribute(tt_tb_device *d, uint32_t id) { return del_sub(d, false, id); }

tt_err tt_tb_device_on_rpc(tt_tb_device *d, tt_tb_rpc_fn fn, void *arg) {
    if (!d) return TT_EINVAL;
    pthread_mutex_lock(&d->lock);
    d->rpc_fn = fn;
    d->rpc_arg = arg;
    pthread_mutex_unlock(&d->lock);
    return TT_OK;
}

static tt_future *rpc_reply_raw(tt_tb_device *d, int64_t id, const json_t *result) {
    char topic[80];
    snprintf(topic, sizeof topic, "v1/devices/me/rpc/response/%" PRId64, id);
    json_t *empty = NULL;
    if (!result) result = empty = json_object();
    tt_future *f = tti_tb_send_json(d, topic, result);
    json_decref(empty);
    return f;
}

tt_future *tt_tb_device_rpc_reply(tt_tb_device *d, int64_t id, const json_t *result) {
    if (!d || id < 0) return tti_tb_failed(d, TT_EINVAL, "bad RPC id");
    return rpc_reply_raw(d, id, result);
}

tt_future *tt_tb_device_rpc_call(tt_tb_device *d, const char *method, const json_t *params,
                                 const tt_call_opts *opts) {
    if (!d || !method || !*method) return tti_tb_failed(d, TT_EINVAL, "no method");
    json_t *body = json_object();
    json_t *m = json_string(method);
    if (!body || !m) {
        json_decref(body);
        json_decref(m);
        return tti_tb_failed(d, TT_EINVAL, "method must be UTF-8 text");
    }
    json_object_set_new(body, "method", m);
    json_object_set_new(body, "params", params ? json_deep_copy(params) : json_object());
    int64_t id = atomic_fetch_add(&d->next_id, 1);
    char topic[80];
    snprintf(topic, sizeof topic, "v1/devices/me/rpc/request/%" PRId64, id);
    tt_future *f = tti_tb_request(d, TB_REQ_RPC, id, NULL, topic, body, opts ? opts->timeout_ms : 0);
    json_decref(body);
    return f;
}

tt_future *tt_tb_device_claim(tt_tb_device *d, const char *secret, uint32_t duration_ms) {
    if (!d) return tti_tb_failed(d, TT_EINVAL, "no device");
    json_t *body = json_object();
    json_t *s = json_string(secret ? secret : "");
    if (!body || !s) {
        json_decref(body);
        json_decref(s);
        return tti_tb_failed(d, TT_EINVAL, "secret must be UTF-8 text");
    }
    json_object_set_new(body, "secretKey", s);
    if (duration_ms) json_object_set_new(body, "durationMs", json_integer(duration_ms));
    tt_future *f = tti_tb_send_json(d, "v1/devices/me/claim", body);
    json_decref(body);
    return f;
}

/* ---- Gateway calls ------------------------------------------------------------------ */

#define GW(g) ((tt_tb_device *)(void *)(g))

static bool gw_ok(tt_tb_gateway *g, const char *name) {
    if (!g || !GW(g)->gateway || !name || !*name) return false;
    json_t *s = json_string(name);    /* NULL unless valid UTF-8 */
    json_decref(s);
    return s != NULL;
}

static tt_future *gw_simple(tt_tb_gateway *g, const char *topic, const char *name, const char *type) {
    tt_tb_device *d = GW(g);
    json_t *body = json_pack("{s:s}", "device", name);
    if (!body) return tti_tb_failed(d, TT_EINVAL, "device name must be UTF-8 text");
    if (type) json_object_set_new(body, "type", json_string(type));
    tt_future *f = tti_tb_send_json(d, topic, body);
    json_decref(body);
    return f;
}

tt_future *tt_tb_gateway_connect_device(tt_tb_gateway *g, const char *name, const char *type) {
    if (!gw_ok(g, name)) return tti_tb_failed(g ? GW(g) : NULL, TT_EINVAL, "no gateway or device name");
    return gw_simple(g, "v1/gateway/connect", name, type ? type : "default");
}

tt_future *tt_tb_gateway_disconnect_device(tt_tb_gateway *g, const char *name) {
    if (!gw_ok(g, name)) return tti_tb_failed(g ? GW(g) : NULL, TT_EINVAL, "no gateway or device name");
    return gw_simple(g, "v1/gateway/disconnect", name, NULL);
}

tt_future *tt_tb_gateway_send_telemetry(tt_tb_gateway *g, const char *name, const json_t *data) {
    if (!gw_ok(g, name) || !(json_is_object(data) || json_is_array(data)))
        return tti_tb_failed(g ? GW(g) : NULL, TT_EINVAL, "no device name, or telemetry not an object or array");
    return tti_tb_send_parts(GW(g), "v1/gateway/telemetry", data, false, name);
}

tt_future *tt_tb_gateway_send_attributes(tt_tb_gateway *g, const char *name, const json_t *attrs) {
    if (!gw_ok(g, name) || !json_is_object(attrs))
        return tti_tb_failed(g ? GW(g) : NULL, TT_EINVAL, "no device name, or attributes not an object");
    return tti_tb_send_parts(GW(g), "v1/gateway/attributes", attrs, true, name);
}

tt_future *tt_tb_gateway_request_attributes(tt_tb_gateway *g, const char *name, bool client,
                                            const char *keys, const tt_call_opts *opts) {
    if (!gw_ok(g, name) || !keys || !*keys)
        return tti_tb_failed(g ? GW(g) : NULL, TT_EINVAL, "no device name or keys");
    tt_tb_device *d = GW(g);
    int64_t id = atomic_fetch_add(&d->next_id, 1);
    json_t *body = json_pack("{s:I,s:s,s:b}", "id", (json_int_t)id, "device", name, "client", client);
    json_t *arr = json_array();
    if (!body || !arr) {
        json_decref(body);
        json_decref(arr);
        return tti_tb_failed(d, TT_ENOMEM, NULL);
    }
    for (const char *p = keys; *p;) {
        size_t n = strcspn(p, ",");
        if (n) json_array_append_new(arr, json_stringn(p, n));
        p += n;
        if (*p == ',') p++;
    }
    const char *single = NULL;
    if (json_array_size(arr) == 1) {
        single = json_string_value(json_array_get(arr, 0));
        json_object_set(body, "key", json_array_get(arr, 0));
    } else {
        json_object_set(body, "keys", arr);
    }
    tt_future *f = json_array_size(arr) == 0
                       ? tti_tb_failed(d, TT_EINVAL, "no keys")
                       : tti_tb_request(d, TB_REQ_GW_ATTR, id, single, "v1/gateway/attributes/request",
                                        body, opts ? opts->timeout_ms : 0);
    json_decref(arr);
    json_decref(body);
    return f;
}

tt_err tt_tb_gateway_subscribe_attribute(tt_tb_gateway *g, const char *device, const char *key,
                                         tt_tb_gw_attr_fn fn, void *arg, uint32_t *id) {
    if (!g || !GW(g)->gateway) return TT_EINVAL;
    return add_sub(GW(g), true, device, key, (void *)fn, arg, id);
}

tt_err tt_tb_gateway_unsubscribe_attribute(tt_tb_gateway *g, uint32_t id) {
    if (!g || !GW(g)->gateway) return TT_EINVAL;
    return del_sub(GW(g), true, id);
}

tt_err tt_tb_gateway_on_rpc(tt_tb_gateway *g, tt_tb_gw_rpc_fn fn, void *arg) {
    if (!g || !GW(g)->gateway) return TT_EINVAL;
    pthread_mutex_lock(&GW(g)->lock);
    GW(g)->gw_rpc_fn = fn;
    GW(g)->gw_rpc_arg = arg;
    pthread_mutex_unlock(&GW(g)->lock);
    return TT_OK;
}

tt_future *tt_tb_gateway_rpc_reply(tt_tb_gateway *g, const char *device, int64_t id, const json_t *result) {
    if (!gw_ok(g, device) || id < 0) return tti_tb_failed(g ? GW(g) : NULL, TT_EINVAL, "bad device or id");
    json_t *body = json_pack("{s:s,s:I}", "device", device, "id", (json_int_t)id);
    if (!body) return tti_tb_failed(GW(g), TT_ENOMEM, NULL);
    json_object_set_new(body, "data", result ? json_deep_copy(result) : json_object());
    tt_future *f = tti_tb_send_json(GW(g), "v1/gateway/rpc", body);
    json_decref(body);
    return f;
}

tt_future *tt_tb_gateway_claim(tt_tb_gateway *g, const char *name, const char *secret, uint32_t duration_ms) {
    if (!gw_ok(g, name)) return tti_tb_failed(g ? GW(g) : NULL, TT_EINVAL, "no gateway or device name");
    json_t *inner = json_pack("{s:s}", "secretKey", secret ? secret : "");
    if (!inner) return tti_tb_failed(GW(g), TT_EINVAL, "secret must be UTF-8 text");
    if (duration_ms) json_object_set_new(inner, "durationMs", json_integer(duration_ms));
    json_t *body = json_object();
    json_object_set_new(body, name, inner);
    tt_future *f = tti_tb_send_json(GW(g), "v1/gateway/claim", body);
    json_decref(body);
    return f;
}

tt_err tt_tb_gateway_on_device_disconnect(tt_tb_gateway *g, tt_tb_gw_disc_fn fn, void *arg) {
    if (!g || !GW(g)->gateway) return TT_EINVAL;
    pthread_mutex_lock(&GW(g)->lock);
    GW(g)->disc_fn = fn;
    GW(g)->disc_arg = arg;
    pthread_mutex_unlock(&GW(g)->lock);
    return TT_OK;
}
