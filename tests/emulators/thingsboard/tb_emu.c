/* The ThingsBoard server emulator: see tb_emu.h. Built on tether's public
 * API only (an MQTT 5 client, futures, an actor for the RPC promises). */
#include "tb_emu.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tether/mqtt.h>

#include "tb_checksum.h"

#define TB_WAIT_MS 10000
#define TB_TOPIC_MAX 512

/* One device the server knows: the device (or gateway) itself, name NULL, or
 * a gateway sub-device. */
typedef struct tb_dev {
    char *name;
    json_t *client, *shared;                   /* server-side attribute state */
    json_t *telemetry, *attributes, *claims;   /* records */
    bool connected;                            /* sub-device routed to the gateway */
    struct tb_dev *next;
} tb_dev;

/* A server-side RPC waiting for its reply. */
typedef struct tb_rpc {
    tb_emu *e;
    int64_t id;
    char *device;                              /* NULL: the device topics */
    char *topic, *payload;                     /* the request to publish */
    tt_promise *p;                             /* set when the actor ran the call */
    struct tb_rpc *next;
} tb_rpc;

struct tb_emu {
    tt_runtime *rt;
    tt_client *c;
    tt_actor *actor;
    tb_emu_mode mode;
    pthread_mutex_t lock;
    pthread_cond_t cond;                       /* a record arrived */
    tb_dev *devs;
    json_t *rpc_results;                       /* method -> result */
    json_t *session_limits;
    json_t *provisions;                        /* [{key, secret, style, credentials}] */
    json_t *fw_states, *gw_events, *rpc_replies, *client_rpcs, *prov_reqs, *fw_reqs;
    uint8_t *fw;
    size_t fw_len;
    bool fw_set;
    bool silent, closing;
    int64_t next_rpc_id;
    tb_rpc *rpcs;
    FILE *trace;
};

/* ---- Small helpers ------------------------------------------------------------------- */

static void trace(tb_emu *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void trace(tb_emu *e, const char *fmt, ...) {
    pthread_mutex_lock(&e->lock);
    FILE *out = e->trace;
    pthread_mutex_unlock(&e->lock);
    if (!out) return;
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(out, "tb_emu: %s\n", line);
    fflush(out);
}

static char *dup_str(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static bool same_name(const char *a, const char *b) {
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void json_free_value(void *p) {
    json_decref((json_t *)p);
}

/* Merge a deep copy of `from` into `to`, so that no value is shared with the
 * caller's tree (the states and records are touched from several threads). */
static void merge_copy(json_t *to, const json_t *from) {
    json_t *c = json_deep_copy(from);
    if (c) json_object_update(to, c);
    json_decref(c);
}

/* The device entry (created on demand when `create`). Under the lock. */
static tb_dev *dev_get(tb_emu *e, const char *name, bool create) {
    for (tb_dev *d = e->devs; d; d = d->next)
        if (same_name(d->name, name)) return d;
    if (!create) return NULL;
    tb_dev *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->name = dup_str(name);
    d->client = json_object();
    d->shared = json_object();
    d->telemetry = json_array();
    d->attributes = json_array();
    d->claims = json_array();
    if ((name && !d->name) || !d->client || !d->shared || !d->telemetry || !d->attributes ||
        !d->claims) {
        free(d->name);
        json_decref(d->client);
        json_decref(d->shared);
        json_decref(d->telemetry);
        json_decref(d->attributes);
        json_decref(d->claims);
        free(d);
        return NULL;
    }
    d->next = e->devs;
    e->devs = d;
    return d;
}

/* Append `v` (reference stolen) to a record list and wake waiters. Under the lock. */
static void record(tb_emu *e, json_t *list, json_t *v) {
    if (v && json_array_append_new(list, v) == 0) pthread_cond_broadcast(&e->cond);
}

/* Publish at QoS 1 without waiting (from handlers). */
static void pub_nowait(tb_emu *e, const char *topic, const void *data, size_t len) {
    tt_future_free(tt_client_pub(e->c, topic, data, len, TT_QOS1, false));
}

static void pub_json_nowait(tb_emu *e, const char *topic, const json_t *v) {
    char *s = json_dumps(v, JSON_COMPACT);
    if (!s) return;
    pub_nowait(e, topic, s, strlen(s));
    free(s);
}

/* Publish at QoS 1 and wait for the PUBACK (from the test thread). 0 or -1. */
static int pub_json_wait(tb_emu *e, const char *topic, const json_t *v) {
    char *s = json_dumps(v, JSON_COMPACT);
    if (!s) return -1;
    tt_future *f = tt_client_pub(e->c, topic, s, strlen(s), TT_QOS1, false);
    free(s);
    tt_err rc = tt_future_wait(f, TB_WAIT_MS);
    if (rc != TT_OK) {
        const char *why;
        (void)tt_future_detail(f, &why);
        fprintf(stderr, "tb_emu: publish on %s failed: %s (%s)\n", topic, tt_strerror(rc), why);
    }
    tt_future_free(f);
    return rc == TT_OK ? 0 : -1;
}

/* The decimal id at the end of a topic, after `prefix`. False if not a number. */
static bool topic_id(const char *topic, const char *prefix, int64_t *id) {
    size_t n = strlen(prefix);
    if (strncmp(topic, prefix, n) != 0) return false;
    const char *s = topic + n;
    if (!*s || strlen(s) > 18) return false;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        v = v * 10 + (*s - '0');
    }
    *id = v;
    return true;
}

static json_t *parse(const void *data, size_t len, size_t flags) {
    json_error_t err;
    return json_loadb(data, len, flags, &err);
}

/* ---- Attribute requests ----------------------------------------------------------------- */

/* Copy the keys named in `want` that exist in `from` into `to`. `want` is a
 * comma-separated string or a JSON array of strings. */
static void pick_keys(json_t *to, const json_t *from, const json_t *want) {
    if (json_is_string(want)) {
        const char *s = json_string_value(want);
        while (*s) {
            while (*s == ' ' || *s == ',') s++;
            const char *end = s;
            while (*end && *end != ',') end++;
            size_t n = (size_t)(end - s);
            while (n > 0 && s[n - 1] == ' ') n--;
            if (n > 0) {
                char key[256];
                if (n < sizeof key) {
                    memcpy(key, s, n);
                    key[n] = '\0';
                    json_t *v = json_object_get(from, key);
                    if (v) json_object_set_new(to, key, json_deep_copy(v));
                }
            }
            s = end;
        }
    } else if (json_is_array(want)) {
        size_t i;
        json_t *k;
        json_array_foreach(want, i, k) {
            json_t *v = json_is_string(k) ? json_object_get(from, json_string_value(k)) : NULL;
            if (v) json_object_set_new(to, json_string_value(k), json_deep_copy(v));
        }
    }
}

static void on_attr_request(tb_emu *e, const char *topic, const void *data, size_t len) {
    int64_t id;
    if (!topic_id(topic, "v1/devices/me/attributes/request/", &id)) {
        trace(e, "ignored %s: the request id is not a number", topic);
        return;
    }
    json_t *req = parse(data, len, 0);
    if (!json_is_object(req)) {
        trace(e, "ignored %s: not a JSON object", topic);
        json_decref(req);
        return;
    }
    json_t *ck = json_object_get(req, "clientKeys"), *sk = json_object_get(req, "sharedKeys");
    json_t *out = json_object(), *client = json_object(), *shared = json_object();
    pthread_mutex_lock(&e->lock);
    bool silent = e->silent;
    tb_dev *d = dev_get(e, NULL, true);
    if (d && !ck && !sk) {
        merge_copy(client, d->client);
        merge_copy(shared, d->shared);
    } else if (d) {
        if (ck) pick_keys(client, d->client, ck);
        if (sk) pick_keys(shared, d->shared, sk);
    }
    pthread_mutex_unlock(&e->lock);
    if (json_object_size(client)) json_object_set(out, "client", client);
    if (json_object_size(shared)) json_object_set(out, "shared", shared);
    if (silent) {
        trace(e, "silent: no answer to attribute request %" PRId64, id);
    } else {
        char t[TB_TOPIC_MAX];
        snprintf(t, sizeof t, "v1/devices/me/attributes/response/%" PRId64, id);
        pub_json_nowait(e, t, out);
        trace(e, "attribute request %" PRId64 ": %zu client, %zu shared", id,
              json_object_size(client), json_object_size(shared));
    }
    json_decref(client);
    json_decref(shared);
    json_decref(out);
    json_decref(req);
}

static void on_gw_attr_request(tb_emu *e, const void *data, size_t len) {
    json_t *req = parse(data, len, 0);
    json_t *id = json_object_get(req, "id"), *dev = json_object_get(req, "device");
    json_t *client = json_object_get(req, "client");
    if (!json_is_integer(id) || !json_is_string(dev) || !client) {
        trace(e, "ignored v1/gateway/attributes/request: needs integer id, device and client");
        json_decref(req);
        return;
    }
    json_t *key = json_object_get(req, "key"), *keys = json_object_get(req, "keys");
    json_t *out = json_pack("{sOsO}", "id", id, "device", dev);
    json_t *values = json_object();
    pthread_mutex_lock(&e->lock);
    bool silent = e->silent;
    tb_dev *d = dev_get(e, json_string_value(dev), true);
    if (d) d->connected = true;
    if (d && json_is_array(client)) {                  /* {"client":[...],"shared":[...]} */
        pick_keys(values, d->client, client);
        pick_keys(values, d->shared, json_object_get(req, "shared"));
    } else if (d) {
        json_t *scope = json_is_true(client) ? d->client : d->shared;
        if (json_is_string(key)) {
            json_t *v = json_object_get(scope, json_string_value(key));
            if (v && out) json_object_set_new(out, "value", json_deep_copy(v));
        } else {
            pick_keys(values, scope, keys);
        }
    }
    pthread_mutex_unlock(&e->lock);
    if (out && !json_is_string(key)) json_object_set(out, "values", values);
    if (silent) {
        trace(e, "silent: no answer to gateway attribute request %lld", (long long)json_integer_value(id));
    } else if (out) {
        pub_json_nowait(e, "v1/gateway/attributes/response", out);
        trace(e, "gateway attribute request %lld for %s", (long long)json_integer_value(id),
              json_string_value(dev));
    }
    json_decref(values);
    json_decref(out);
    json_decref(req);
}

/* ---- Telemetry, attributes, claims -------------------------------------------------------- */

/* fw_state from one telemetry entry: {"fw_state":..} or {"ts":..,"values":{"fw_state":..}}. */
static void note_fw_state(tb_emu *e, const json_t *entry) {
    json_t *s = json_object_get(entry, "fw_state");
    if (!s) s = json_object_get(json_object_get(entry, "values"), "fw_state");
    if (json_is_string(s)) record(e, e->fw_states, json_copy(s));
}

/* Record a telemetry payload (object or array of objects) for `d`. Under the lock. */
static size_t record_telemetry(tb_emu *e, tb_dev *d, json_t *v) {
    size_t n = 0;
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            if (!json_is_object(x)) continue;
            if (!d->name) note_fw_state(e, x);
            record(e, d->telemetry, json_deep_copy(x));
            n++;
        }
    } else if (json_is_object(v)) {
        if (!d->name) note_fw_state(e, v);
        record(e, d->telemetry, json_deep_copy(v));
        n++;
    }
    return n;
}

static void on_telemetry(tb_emu *e, const void *data, size_t len) {
    json_t *v = parse(data, len, 0);
    if (!json_is_object(v) && !json_is_array(v)) {
        trace(e, "ignored telemetry: not a JSON object or array");
        json_decref(v);
        return;
    }
    pthread_mutex_lock(&e->lock);
    tb_dev *d = dev_get(e, NULL, true);
    size_t n = d ? record_telemetry(e, d, v) : 0;
    pthread_mutex_unlock(&e->lock);
    trace(e, "telemetry: %zu entries", n);
    json_decref(v);
}

static void on_client_attributes(tb_emu *e, const void *data, size_t len) {
    json_t *v = parse(data, len, 0);
    if (!json_is_object(v)) {
        trace(e, "ignored attributes: not a JSON object");
        json_decref(v);
        return;
    }
    pthread_mutex_lock(&e->lock);
    tb_dev *d = dev_get(e, NULL, true);
    if (d) {
        merge_copy(d->client, v);
        record(e, d->attributes, json_deep_copy(v));
    }
    pthread_mutex_unlock(&e->lock);
    trace(e, "client attributes: %zu keys", json_object_size(v));
    json_decref(v);
}

static void on_claim(tb_emu *e, const void *data, size_t len) {
    json_t *v = len ? parse(data, len, 0) : json_object();
    if (!json_is_object(v)) {
        trace(e, "ignored claim: not a JSON object");
        json_decref(v);
        return;
    }
    pthread_mutex_lock(&e->lock);
    tb_dev *d = dev_get(e, NULL, true);
    if (d) record(e, d->claims, json_deep_copy(v));
    pthread_mutex_unlock(&e->lock);
    trace(e, "claim");
    json_decref(v);
}

/* {"Device A": <x>, ...} for gateway telemetry, attributes and claims. */
typedef enum gw_kind { GW_TELEMETRY, GW_ATTRIBUTES, GW_CLAIM } gw_kind;

static void on_gw_per_device(tb_emu *e, gw_kind kind, const void *data, size_t len) {
    static const char *const what[] = { "telemetry", "attributes", "claim" };
    json_t *v = parse(data, len, 0);
    if (!json_is_object(v)) {
        trace(e, "ignored gateway %s: not a JSON object", what[kind]);
        json_decref(v);
        return;
    }
    const char *name;
    json_t *x;
    pthread_mutex_lock(&e->lock);
    json_object_foreach(v, name, x) {
        tb_dev *d = dev_get(e, name, true);
        if (!d) continue;
        if (kind == GW_TELEMETRY) {
            d->connected = true;
            (void)record_telemetry(e, d, x);
        } else if (kind == GW_ATTRIBUTES && json_is_object(x)) {
            d->connected = true;
            merge_copy(d->client, x);
            record(e, d->attributes, json_deep_copy(x));
        } else if (kind == GW_CLAIM && json_is_object(x)) {
            record(e, d->claims, json_deep_copy(x));
        }
    }
    pthread_mutex_unlock(&e->lock);
    trace(e, "gateway %s for %zu devices", what[kind], json_object_size(v));
    json_decref(v);
}

static void on_gw_connect(tb_emu *e, bool connect, const void *data, size_t len) {
    json_t *v = parse(data, len, 0);
    json_t *dev = json_object_get(v, "device");
    if (!json_is_string(dev)) {
        trace(e, "ignored gateway %s: no device name", connect ? "connect" : "disconnect");
        json_decref(v);
        return;
    }
    json_t *ev = json_pack("{ssss}", "event", connect ? "connect" : "disconnect", "device",
                           json_string_value(dev));
    json_t *type = json_object_get(v, "type");
    if (ev && connect && type) json_object_set_new(ev, "type", json_deep_copy(type));
    pthread_mutex_lock(&e->lock);
    tb_dev *d = dev_get(e, json_string_value(dev), true);
    if (d) d->connected = connect;
    record(e, e->gw_events, ev);
    pthread_mutex_unlock(&e->lock);
    trace(e, "gateway %s %s", connect ? "connect" : "disconnect", json_string_value(dev));
    json_decref(v);
}

/* ---- Client-side RPC ------------------------------------------------------------------------ */

static json_t *default_limits(tb_emu_mode mode) {
    json_t *l = json_pack("{sisis{ssssss}}", "maxPayloadSize", 65536, "maxInflightMessages", 100,
                          "rateLimits", "messages", "200:1,6000:60,14000:3600",
                          "telemetryMessages", "100:1,3000:60,7000:3600",
                          "telemetryDataPoints", "200:1,6000:60,14000:3600");
    if (l && mode == TB_EMU_GATEWAY)
        json_object_set_new(l, "gatewayRateLimits",
                            json_pack("{ssssss}", "messages", "20:1,600:60,1400:3600",
                                      "telemetryMessages", "10:1,300:60,700:3600",
                                      "telemetryDataPoints", "20:1,600:60,1400:3600"));
    return l;
}

static void on_client_rpc(tb_emu *e, const char *topic, const void *data, size_t len) {
    int64_t id;
    if (!topic_id(topic, "v1/devices/me/rpc/request/", &id)) {
        trace(e, "ignored %s: the request id is not a number", topic);
        return;
    }
    json_t *req = parse(data, len, 0);
    json_t *method = json_object_get(req, "method");
    if (!json_is_string(method)) {
        trace(e, "ignored client RPC %" PRId64 ": no method", id);
        json_decref(req);
        return;
    }
    const char *m = json_string_value(method);
    json_t *params = json_object_get(req, "params");
    json_t *rec = json_pack("{sIss}", "id", (json_int_t)id, "method", m);
    if (rec && params) json_object_set_new(rec, "params", json_deep_copy(params));
    pthread_mutex_lock(&e->lock);
    record(e, e->client_rpcs, rec);
    bool silent = e->silent;
    json_t *res = json_object_get(e->rpc_results, m);
    if (!res && strcmp(m, "getSessionLimits") == 0) res = e->session_limits;
    res = json_deep_copy(res);
    pthread_mutex_unlock(&e->lock);
    if (silent) {
        trace(e, "silent: no answer to client RPC %" PRId64 " %s", id, m);
    } else if (!res) {
        trace(e, "client RPC %" PRId64 " %s: no answer configured", id, m);
    } else {
        char t[TB_TOPIC_MAX];
        snprintf(t, sizeof t, "v1/devices/me/rpc/response/%" PRId64, id);
        pub_json_nowait(e, t, res);
        trace(e, "client RPC %" PRId64 " %s answered", id, m);
    }
    json_decref(res);
    json_decref(req);
}

/* ---- Server-side RPC -------------------------------------------------------------------------- */

static void rpc_free(tb_rpc *r) {
    free(r->device);
    free(r->topic);
    free(r->payload);
    free(r);
}

/* Unlink `r` from the list. Under the lock. */
static void rpc_unlink(tb_emu *e, tb_rpc *r) {
    for (tb_rpc **pp = &e->rpcs; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            return;
        }
    }
}

/* A reply arrived (device topic: device NULL; gateway: the name given, may be NULL). */
static void rpc_reply(tb_emu *e, int64_t id, const char *device, json_t *data) {
    pthread_mutex_lock(&e->lock);
    tb_rpc *r = e->rpcs;
    while (r && !(r->id == id && r->p && (!device || same_name(device, r->device)))) r = r->next;
    bool matched = false;
    if (r) {
        rpc_unlink(e, r);
        tt_promise_set_value(r->p, json_deep_copy(data), json_free_value, id);
        matched = tt_promise_complete(r->p, TT_OK, 0, NULL);
        rpc_free(r);
    }
    json_t *rec = json_pack("{sIsosb}", "id", (json_int_t)id, "data", json_deep_copy(data), "matched",
                            matched);
    if (rec) json_object_set_new(rec, "device", device ? json_string(device) : json_null());
    record(e, e->rpc_replies, rec);
    pthread_mutex_unlock(&e->lock);
    trace(e, "server RPC %" PRId64 " reply%s", id, matched ? "" : " (no request waiting)");
}

static void on_device_rpc_reply(tb_emu *e, const char *topic, const void *data, size_t len) {
    int64_t id;
    if (!topic_id(topic, "v1/devices/me/rpc/response/", &id)) {
        trace(e, "ignored %s: the request id is not a number", topic);
        return;
    }
    json_t *v = parse(data, len, JSON_DECODE_ANY);
    if (!v) v = json_stringn_nocheck(data, len);      /* not JSON: kept as text */
    rpc_reply(e, id, NULL, v ? v : json_null());
    json_decref(v);
}

static void on_gw_rpc(tb_emu *e, const void *data, size_t len) {
    json_t *v = parse(data, len, 0);
    json_t *dev = json_object_get(v, "device"), *id = json_object_get(v, "id");
    json_t *d = json_object_get(v, "data");
    if (json_is_integer(id)) {                          /* {"device","id","data"} */
        rpc_reply(e, json_integer_value(id), json_string_value(dev), d ? d : json_null());
    } else if (json_is_object(d) && json_is_integer(json_object_get(d, "id")) &&
               !json_object_get(d, "method")) {         /* {"device","data":{"id",...}} */
        json_t *res = json_object_get(d, "result");
        rpc_reply(e, json_integer_value(json_object_get(d, "id")), json_string_value(dev),
                  res ? res : d);
    } else if (json_is_object(d) && json_object_get(d, "method")) {
        trace(e, "ignored v1/gateway/rpc: a request, not a reply");
    } else {
        trace(e, "ignored v1/gateway/rpc: neither a request nor a reply");
    }
    json_decref(v);
}

/* Runs on the actor's loop thread: register the promise, then publish. */
static void rpc_work(tt_promise *p, void *arg) {
    tb_rpc *r = arg;
    tb_emu *e = r->e;
    pthread_mutex_lock(&e->lock);
    bool closing = e->closing;
    if (closing || tt_promise_abandoned(p)) {
        rpc_unlink(e, r);
        pthread_mutex_unlock(&e->lock);
        (void)tt_promise_complete(p, closing ? TT_ECLOSED : TT_ETIMEDOUT, 0, NULL);
        rpc_free(r);
        return;
    }
    r->p = p;
    pub_nowait(e, r->topic, r->payload, strlen(r->payload));   /* under the lock: see free */
    pthread_mutex_unlock(&e->lock);
}

static void fail_work(tt_promise *p, void *arg) {
    tt_err rc = (tt_err)(intptr_t)arg;
    (void)tt_promise_complete(p, rc, 0, "%s", rc == TT_ENOTFOUND ? "sub-device not connected"
                                                                 : "invalid arguments");
}

static tt_future *failed(tb_emu *e, tt_err rc) {
    return tt_actor_call(e->actor, fail_work, (void *)(intptr_t)rc, NULL);
}

tt_future *tb_emu_rpc(tb_emu *e, const char *device, const char *method, json_t *params,
                      uint32_t timeout_ms) {
    if (!e || !method || (device && e->mode != TB_EMU_GATEWAY)) {
        if (e) fprintf(stderr, "tb_emu: rpc: bad arguments (a sub-device needs gateway mode)\n");
        return e ? failed(e, TT_EINVAL) : NULL;
    }
    tb_rpc *r = calloc(1, sizeof *r);
    if (!r) return failed(e, TT_ENOMEM);
    r->e = e;
    json_t *body = json_pack("{ssso}", "method", method, "params",
                             params ? json_deep_copy(params) : json_object());
    pthread_mutex_lock(&e->lock);
    /* Sweep requests whose futures timed out: nobody will take their replies. */
    for (tb_rpc **pp = &e->rpcs; *pp;) {
        tb_rpc *x = *pp;
        if (x->p && tt_promise_abandoned(x->p)) {
            *pp = x->next;
            (void)tt_promise_complete(x->p, TT_ETIMEDOUT, 0, NULL);
            rpc_free(x);
        } else {
            pp = &x->next;
        }
    }
    tb_dev *d = device ? dev_get(e, device, false) : NULL;
    bool routed = !device || (d && d->connected);
    r->id = ++e->next_rpc_id;
    pthread_mutex_unlock(&e->lock);
    if (!routed) {
        fprintf(stderr, "tb_emu: rpc: sub-device '%s' is not connected to the gateway\n", device);
        json_decref(body);
        free(r);
        return failed(e, TT_ENOTFOUND);
    }
    char t[TB_TOPIC_MAX];
    json_t *msg = NULL;
    if (device) {
        snprintf(t, sizeof t, "v1/gateway/rpc");
        if (body) json_object_set_new(body, "id", json_integer((json_int_t)r->id));
        msg = json_pack("{sssO}", "device", device, "data", body);
    } else {
        snprintf(t, sizeof t, "v1/devices/me/rpc/request/%" PRId64, r->id);
        msg = json_incref(body);
    }
    r->device = dup_str(device);
    r->topic = dup_str(t);
    r->payload = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    json_decref(body);
    if (!r->topic || !r->payload || (device && !r->device)) {
        rpc_free(r);
        return failed(e, TT_ENOMEM);
    }
    pthread_mutex_lock(&e->lock);
    r->next = e->rpcs;
    e->rpcs = r;
    pthread_mutex_unlock(&e->lock);
    trace(e, "server RPC %" PRId64 " %s to %s", r->id, method, device ? device : "the device");
    tt_call_opts co = TT_OPTS_INIT(tt_call_opts);
    co.timeout_ms = timeout_ms ? timeout_ms : TB_WAIT_MS;
    return tt_actor_call(e->actor, rpc_work, r, &co);
}

/* ---- Provisioning ------------------------------------------------------------------------------ */

static json_t *or_null(json_t *v) {
    return v ? v : json_null();
}

static json_t *provision_answer(int style, json_t *cred) {
    bool basic = json_is_object(cred);
    const char *type = basic ? "MQTT_BASIC" : "ACCESS_TOKEN";
    if (style == 0)
        return json_pack("{sssssO}", "status", "SUCCESS", "credentialsType", type,
                         "credentialsValue", cred);   /* cred: a copy made by the caller */
    if (!basic)
        return json_pack("{sssssO}", "provisionDeviceStatus", "SUCCESS", "credentialsType", type,
                         "accessToken", cred);
    char *text = json_dumps(cred, JSON_COMPACT);
    json_t *a = text ? json_pack("{ssssss}", "provisionDeviceStatus", "SUCCESS", "credentialsType",
                                 type, "credentialsValue", text)
                     : NULL;
    free(text);
    return a;
}

static void on_provision(tb_emu *e, const void *data, size_t len) {
    json_t *req = parse(data, len, 0);
    if (!json_is_object(req)) {
        trace(e, "ignored /provision/request: not a JSON object");
        json_decref(req);
        return;
    }
    const char *key = json_string_value(json_object_get(req, "provisionDeviceKey"));
    const char *secret = json_string_value(json_object_get(req, "provisionDeviceSecret"));
    json_t *ans = NULL;
    pthread_mutex_lock(&e->lock);
    record(e, e->prov_reqs, json_deep_copy(req));
    bool silent = e->silent;
    size_t i;
    json_t *p;
    json_array_foreach(e->provisions, i, p) {
        if (!key || !secret || strcmp(json_string_value(json_object_get(p, "key")), key) != 0 ||
            strcmp(json_string_value(json_object_get(p, "secret")), secret) != 0)
            continue;
        json_t *cred = json_object_get(p, "credentials");
        const char *ctype = json_string_value(json_object_get(req, "credentialsType"));
        json_t *own = NULL;
        if (ctype && strcmp(ctype, "ACCESS_TOKEN") == 0 && json_is_string(json_object_get(req, "token")))
            own = json_deep_copy(json_object_get(req, "token"));
        else if (ctype && strcmp(ctype, "MQTT_BASIC") == 0)
            own = json_pack("{sOsOsO}", "clientId", or_null(json_object_get(req, "clientId")),
                            "userName", or_null(json_object_get(req, "username")),
                            "password", or_null(json_object_get(req, "password")));
        if (!own) own = json_deep_copy(cred);
        ans = provision_answer((int)json_integer_value(json_object_get(p, "style")), own);
        json_decref(own);
        break;
    }
    pthread_mutex_unlock(&e->lock);
    if (!ans)
        ans = json_pack("{ssss}", "status", "NOT_FOUND", "errorMsg", "Provision data was not found!");
    if (silent) {
        trace(e, "silent: no answer to provisioning request");
    } else if (ans) {
        pub_json_nowait(e, "/provision/response", ans);
        json_t *st = json_object_get(ans, "status");
        if (!st) st = json_object_get(ans, "provisionDeviceStatus");
        trace(e, "provisioning request for key '%s': %s", key ? key : "", json_string_value(st));
    }
    json_decref(ans);
    json_decref(req);
}

/* ---- Firmware ------------------------------------------------------------------------------------ */

static void on_fw_chunk(tb_emu *e, const char *topic, const void *data, size_t len) {
    /* v2/fw/request/<id>/chunk/<n> */
    const char *s = topic + strlen("v2/fw/request/");
    char *end;
    errno = 0;
    unsigned long long rid = strtoull(s, &end, 10);     /* digits only: no sign, no space */
    if (*s < '0' || *s > '9' || strncmp(end, "/chunk/", 7) != 0 || errno) {
        trace(e, "ignored %s: not v2/fw/request/<id>/chunk/<n>", topic);
        return;
    }
    const char *cs = end + 7;
    unsigned long long chunk = strtoull(cs, &end, 10);
    if (*cs < '0' || *cs > '9' || *end || errno) {
        trace(e, "ignored %s: not v2/fw/request/<id>/chunk/<n>", topic);
        return;
    }
    unsigned long long size = 0;
    bool size_ok = len <= 12;
    for (size_t i = 0; i < len && size_ok; i++) {
        char ch = ((const char *)data)[i];
        if (ch < '0' || ch > '9') size_ok = false;
        else size = size * 10 + (unsigned long long)(ch - '0');
    }
    pthread_mutex_lock(&e->lock);
    bool silent = e->silent, have = e->fw_set;
    uint8_t *slice = NULL;
    size_t n = 0;
    bool fail = !have || !size_ok;
    if (!fail) {
        unsigned long long step = size ? size : (unsigned long long)e->fw_len;
        unsigned long long off = step && chunk <= UINT64_MAX / step ? chunk * step : UINT64_MAX;
        if (!size && chunk > 0) off = UINT64_MAX;
        if (off < e->fw_len) {
            n = (size_t)((unsigned long long)e->fw_len - off < step ? e->fw_len - off : step);
            slice = malloc(n);
            if (slice) memcpy(slice, e->fw + off, n);
            else n = 0;
        }
    }
    json_t *rec = json_pack("{sIsIsIsI}", "request_id", (json_int_t)rid, "chunk", (json_int_t)chunk,
                            "size", (json_int_t)(size_ok ? size : 0),
                            "sent", (json_int_t)(silent || fail ? -1 : (json_int_t)n));
    record(e, e->fw_reqs, rec);
    pthread_mutex_unlock(&e->lock);
    char t[TB_TOPIC_MAX];
    if (silent) {
        trace(e, "silent: no answer to firmware chunk %llu of request %llu", chunk, rid);
    } else if (fail) {
        const char *why = have ? "invalid chunk size" : "no firmware assigned";
        pub_nowait(e, "v2/fw/error", why, strlen(why));
        trace(e, "firmware request %llu chunk %llu: %s", rid, chunk, why);
    } else {
        snprintf(t, sizeof t, "v2/fw/response/%llu/chunk/%llu", rid, chunk);
        pub_nowait(e, t, slice ? (const void *)slice : "", n);
        trace(e, "firmware request %llu chunk %llu: %zu bytes", rid, chunk, n);
    }
    free(slice);
}

/* ---- Dispatch -------------------------------------------------------------------------------------- */

static void on_message(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    tb_emu *e = arg;
    size_t tl, len;
    const char *tp = tt_msg_topic(m, &tl);
    const void *data = tt_msg_payload(m, &len);
    char topic[TB_TOPIC_MAX];
    if (tl >= sizeof topic) return;
    memcpy(topic, tp, tl);
    topic[tl] = '\0';
    if (!data) data = "";
    if (strcmp(topic, "v1/devices/me/telemetry") == 0) on_telemetry(e, data, len);
    else if (strcmp(topic, "v1/devices/me/attributes") == 0) on_client_attributes(e, data, len);
    else if (strncmp(topic, "v1/devices/me/attributes/request/", 33) == 0)
        on_attr_request(e, topic, data, len);
    else if (strncmp(topic, "v1/devices/me/rpc/request/", 26) == 0) on_client_rpc(e, topic, data, len);
    else if (strncmp(topic, "v1/devices/me/rpc/response/", 27) == 0)
        on_device_rpc_reply(e, topic, data, len);
    else if (strcmp(topic, "v1/devices/me/claim") == 0) on_claim(e, data, len);
    else if (strcmp(topic, "/provision/request") == 0) on_provision(e, data, len);
    else if (strncmp(topic, "v2/fw/request/", 14) == 0) on_fw_chunk(e, topic, data, len);
    else if (strcmp(topic, "v1/gateway/connect") == 0) on_gw_connect(e, true, data, len);
    else if (strcmp(topic, "v1/gateway/disconnect") == 0) on_gw_connect(e, false, data, len);
    else if (strcmp(topic, "v1/gateway/telemetry") == 0) on_gw_per_device(e, GW_TELEMETRY, data, len);
    else if (strcmp(topic, "v1/gateway/attributes") == 0) on_gw_per_device(e, GW_ATTRIBUTES, data, len);
    else if (strcmp(topic, "v1/gateway/claim") == 0) on_gw_per_device(e, GW_CLAIM, data, len);
    else if (strcmp(topic, "v1/gateway/attributes/request") == 0) on_gw_attr_request(e, data, len);
    else if (strcmp(topic, "v1/gateway/rpc") == 0) on_gw_rpc(e, data, len);
    else trace(e, "ignored %s", topic);
}

/* ---- Life cycle -------------------------------------------------------------------------------------- */

static void free_state(tb_emu *e) {
    while (e->devs) {
        tb_dev *d = e->devs;
        e->devs = d->next;
        free(d->name);
        json_decref(d->client);
        json_decref(d->shared);
        json_decref(d->telemetry);
        json_decref(d->attributes);
        json_decref(d->claims);
        free(d);
    }
    json_decref(e->rpc_results);
    json_decref(e->session_limits);
    json_decref(e->provisions);
    json_decref(e->fw_states);
    json_decref(e->gw_events);
    json_decref(e->rpc_replies);
    json_decref(e->client_rpcs);
    json_decref(e->prov_reqs);
    json_decref(e->fw_reqs);
    free(e->fw);
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

static void barrier_work(tt_promise *p, void *arg) {
    (void)arg;
    (void)tt_promise_complete(p, TT_OK, 0, NULL);
}

static tt_err wait_free(tt_future *f, const char *what) {
    tt_err rc = tt_future_wait(f, TB_WAIT_MS);
    if (rc != TT_OK) {
        const char *why;
        int detail = tt_future_detail(f, &why);
        fprintf(stderr, "tb_emu: %s failed: %s (detail %d: %s)\n", what, tt_strerror(rc), detail, why);
    }
    tt_future_free(f);
    return rc;
}

tb_emu *tb_emu_start(tt_runtime *rt, const tb_emu_opts *o) {
    if (!rt || !o || !o->host || !o->port) {
        fprintf(stderr, "tb_emu: start: needs a runtime, a host and a port\n");
        return NULL;
    }
    tb_emu *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&e->lock, NULL);
    e->rt = rt;
    e->mode = o->mode;
    e->rpc_results = json_object();
    e->session_limits = default_limits(o->mode);
    e->provisions = json_array();
    e->fw_states = json_array();
    e->gw_events = json_array();
    e->rpc_replies = json_array();
    e->client_rpcs = json_array();
    e->prov_reqs = json_array();
    e->fw_reqs = json_array();
    if (!e->rpc_results || !e->session_limits || !e->provisions || !e->fw_states || !e->gw_events ||
        !e->rpc_replies || !e->client_rpcs || !e->prov_reqs || !e->fw_reqs || !dev_get(e, NULL, true)) {
        free_state(e);
        return NULL;
    }
    if (tt_actor_new(rt, &e->actor) != TT_OK) {
        fprintf(stderr, "tb_emu: cannot create an actor\n");
        free_state(e);
        return NULL;
    }
    char url[300], cid[40];
    snprintf(url, sizeof url, "mqtt://%s:%u", o->host, (unsigned)o->port);
    static atomic_uint serial;
    snprintf(cid, sizeof cid, "tb-emu-%ld-%u", (long)getpid(), atomic_fetch_add(&serial, 1) + 1);
    tt_client_opts co = TT_OPTS_INIT(tt_client_opts);
    co.url = url;
    co.client_id = cid;
    co.username = o->user;
    co.password = o->password;
    co.version = TT_MQTT_5;
    co.backoff_min_ms = 50;
    co.backoff_max_ms = 1000;
    co.max_packet_size = 64u << 20;
    if (tt_client_new(rt, &co, &e->c) != TT_OK) {
        fprintf(stderr, "tb_emu: cannot create the MQTT client for %s\n", url);
        tt_actor_free(e->actor);
        free_state(e);
        return NULL;
    }
    static const char *const device_topics[] = {
        "v1/devices/me/telemetry", "v1/devices/me/attributes", "v1/devices/me/attributes/request/+",
        "v1/devices/me/rpc/request/+", "v1/devices/me/rpc/response/+", "v1/devices/me/claim",
        "/provision/request", "v2/fw/request/+/chunk/+",
    };
    static const char *const gateway_topics[] = {
        "v1/gateway/connect", "v1/gateway/disconnect", "v1/gateway/telemetry", "v1/gateway/attributes",
        "v1/gateway/attributes/request", "v1/gateway/rpc", "v1/gateway/claim",
    };
    tt_sub subs[16];
    size_t n = 0;
    for (size_t i = 0; i < sizeof device_topics / sizeof device_topics[0]; i++)
        subs[n++] = (tt_sub){ .filter = device_topics[i], .qos = TT_QOS1, .no_local = true,
                              .handler = on_message, .arg = e };
    if (o->mode == TB_EMU_GATEWAY)
        for (size_t i = 0; i < sizeof gateway_topics / sizeof gateway_topics[0]; i++)
            subs[n++] = (tt_sub){ .filter = gateway_topics[i], .qos = TT_QOS1, .no_local = true,
                                  .handler = on_message, .arg = e };
    if (wait_free(tt_client_connect(e->c), "connect") != TT_OK ||
        wait_free(tt_client_subscribe(e->c, subs, n, NULL), "subscribe") != TT_OK) {
        tb_emu_free(e);
        return NULL;
    }
    return e;
}

void tb_emu_free(tb_emu *e) {
    if (!e) return;
    pthread_mutex_lock(&e->lock);
    e->closing = true;
    pthread_mutex_unlock(&e->lock);
    if (e->c) {
        tt_future *f = tt_client_close(e->c);
        (void)tt_future_wait(f, TB_WAIT_MS);
        tt_future_free(f);
        tt_client_free(e->c);
    }
    /* The actor runs calls in order: once this one is done, every RPC queued
     * before it has run (and seen `closing`) or was skipped for its deadline. */
    if (e->actor) {
        (void)wait_free(tt_actor_call(e->actor, barrier_work, NULL, NULL), "emulator shutdown");
        tt_actor_free(e->actor);
    }
    pthread_mutex_lock(&e->lock);
    while (e->rpcs) {
        tb_rpc *r = e->rpcs;
        e->rpcs = r->next;
        if (r->p) (void)tt_promise_complete(r->p, TT_ECLOSED, 0, NULL);
        rpc_free(r);
    }
    pthread_mutex_unlock(&e->lock);
    free_state(e);
}

void tb_emu_set_trace(tb_emu *e, FILE *out) {
    pthread_mutex_lock(&e->lock);
    e->trace = out;
    pthread_mutex_unlock(&e->lock);
}

/* ---- Server state ---------------------------------------------------------------------------------- */

static void set_attrs(tb_emu *e, const char *device, json_t *obj, bool shared) {
    if (!json_is_object(obj)) return;
    pthread_mutex_lock(&e->lock);
    tb_dev *d = dev_get(e, device, true);
    if (d) merge_copy(shared ? d->shared : d->client, obj);
    pthread_mutex_unlock(&e->lock);
}

void tb_emu_set_client_attrs(tb_emu *e, const char *device, json_t *obj) {
    set_attrs(e, device, obj, false);
}

void tb_emu_set_shared_attrs(tb_emu *e, const char *device, json_t *obj) {
    set_attrs(e, device, obj, true);
}

/* Publish a shared-attribute message for `device`: `body` (borrowed) as is on
 * the device topic, or wrapped for a sub-device. */
static int push(tb_emu *e, const char *device, json_t *body) {
    if (device && e->mode != TB_EMU_GATEWAY) {
        fprintf(stderr, "tb_emu: a sub-device ('%s') needs gateway mode\n", device);
        return -1;
    }
    if (device) {
        pthread_mutex_lock(&e->lock);
        tb_dev *d = dev_get(e, device, false);
        bool routed = d && d->connected;
        pthread_mutex_unlock(&e->lock);
        if (!routed) {
            fprintf(stderr, "tb_emu: sub-device '%s' is not connected to the gateway\n", device);
            return -1;
        }
        json_t *msg = json_pack("{sssO}", "device", device, "data", body);
        int rc = msg ? pub_json_wait(e, "v1/gateway/attributes", msg) : -1;
        json_decref(msg);
        return rc;
    }
    return pub_json_wait(e, "v1/devices/me/attributes", body);
}

int tb_emu_push_shared(tb_emu *e, const char *device, json_t *obj) {
    if (!e || !json_is_object(obj)) return -1;
    tb_emu_set_shared_attrs(e, device, obj);
    int rc = push(e, device, obj);
    trace(e, "shared attribute push to %s: %zu keys", device ? device : "the device", json_object_size(obj));
    return rc;
}

int tb_emu_delete_shared(tb_emu *e, const char *device, const char *const *keys, size_t n) {
    if (!e || (!keys && n)) return -1;
    json_t *list = json_array();
    if (!list) return -1;
    pthread_mutex_lock(&e->lock);
    tb_dev *d = dev_get(e, device, false);
    for (size_t i = 0; i < n; i++) {
        if (d) json_object_del(d->shared, keys[i]);
        json_array_append_new(list, json_string(keys[i]));
    }
    pthread_mutex_unlock(&e->lock);
    json_t *body = json_pack("{so}", "deleted", list);
    int rc = body ? push(e, device, body) : -1;
    json_decref(body);
    trace(e, "shared attribute deletion to %s: %zu keys", device ? device : "the device", n);
    return rc;
}

void tb_emu_set_rpc_result(tb_emu *e, const char *method, json_t *result) {
    if (!e || !method) return;
    pthread_mutex_lock(&e->lock);
    if (result) json_object_set_new(e->rpc_results, method, json_deep_copy(result));
    else json_object_del(e->rpc_results, method);
    pthread_mutex_unlock(&e->lock);
}

void tb_emu_set_session_limits(tb_emu *e, json_t *limits) {
    if (!e || !limits) return;
    json_t *copy = json_deep_copy(limits);
    pthread_mutex_lock(&e->lock);
    json_decref(e->session_limits);
    e->session_limits = copy;
    pthread_mutex_unlock(&e->lock);
}

void tb_emu_add_provision(tb_emu *e, const char *key, const char *secret, int style,
                          json_t *credentials) {
    if (!e || !key || !secret || !credentials) return;
    json_t *p = json_pack("{sssssiso}", "key", key, "secret", secret, "style", style ? 1 : 0,
                          "credentials", json_deep_copy(credentials));
    if (!p) return;
    pthread_mutex_lock(&e->lock);
    json_array_append_new(e->provisions, p);
    pthread_mutex_unlock(&e->lock);
}

int tb_emu_set_firmware(tb_emu *e, const char *title, const char *version, const void *img,
                        size_t len, const char *algo, bool corrupt, bool push_now) {
    if (!e || !title || !version || (!img && len) || !tb_checksum_known(algo)) {
        fprintf(stderr, "tb_emu: set_firmware: bad arguments or unknown algorithm '%s'\n",
                algo ? algo : "(null)");
        return -1;
    }
    char sum[TB_CHECKSUM_HEX_MAX];
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return -1;
    if (len) memcpy(copy, img, len);
    if (corrupt) {                                 /* the checksum of a different image */
        if (len) copy[0] ^= 0x5a;
        (void)tb_checksum_hex(algo, len ? copy : (const void *)"x", len ? len : 1, sum);
        if (len) copy[0] ^= 0x5a;
    } else {
        (void)tb_checksum_hex(algo, copy, len, sum);
    }
    char upper[32];
    size_t i = 0;
    for (; algo[i] && i + 1 < sizeof upper; i++)
        upper[i] = (char)(algo[i] >= 'a' && algo[i] <= 'z' ? algo[i] - 32 : algo[i]);
    upper[i] = '\0';
    json_t *attrs = json_pack("{sssssIssss}", "fw_title", title, "fw_version", version, "fw_size",
                              (json_int_t)len, "fw_checksum_algorithm", upper, "fw_checksum", sum);
    if (!attrs) {
        free(copy);
        return -1;
    }
    pthread_mutex_lock(&e->lock);
    free(e->fw);
    e->fw = copy;
    e->fw_len = len;
    e->fw_set = true;
    tb_dev *d = dev_get(e, NULL, true);
    if (d) merge_copy(d->shared, attrs);
    pthread_mutex_unlock(&e->lock);
    trace(e, "firmware %s %s: %zu bytes, %s %s%s", title, version, len, upper, sum,
          corrupt ? " (corrupt)" : "");
    int rc = push_now ? push(e, NULL, attrs) : 0;
    json_decref(attrs);
    return rc;
}

void tb_emu_set_silent(tb_emu *e, bool silent) {
    if (!e) return;
    pthread_mutex_lock(&e->lock);
    e->silent = silent;
    pthread_mutex_unlock(&e->lock);
}

int tb_emu_kick_device(tb_emu *e, const char *device, int reason) {
    if (!e || !device || e->mode != TB_EMU_GATEWAY) return -1;
    pthread_mutex_lock(&e->lock);
    tb_dev *d = dev_get(e, device, false);
    if (d) d->connected = false;
    pthread_mutex_unlock(&e->lock);
    json_t *msg = json_pack("{sssi}", "device", device, "reason", reason);
    int rc = msg ? pub_json_wait(e, "v1/gateway/disconnect", msg) : -1;
    json_decref(msg);
    return rc;
}

bool tb_emu_connected(tb_emu *e, const char *device) {
    if (!e || !device) return false;
    pthread_mutex_lock(&e->lock);
    tb_dev *d = dev_get(e, device, false);
    bool on = d && d->connected;
    pthread_mutex_unlock(&e->lock);
    return on;
}

/* ---- Records ------------------------------------------------------------------------------------------- */

/* The record list of a kind (device for the per-device ones). Under the lock;
 * NULL for an unknown kind or a device never seen. */
static json_t *list_of(tb_emu *e, const char *kind, const char *device) {
    if (strcmp(kind, "telemetry") == 0 || strcmp(kind, "attributes") == 0 ||
        strcmp(kind, "claims") == 0) {
        tb_dev *d = dev_get(e, device, false);
        if (!d) return NULL;
        return kind[0] == 't' ? d->telemetry : kind[0] == 'a' ? d->attributes : d->claims;
    }
    if (strcmp(kind, "fw_states") == 0) return e->fw_states;
    if (strcmp(kind, "gateway_events") == 0) return e->gw_events;
    if (strcmp(kind, "rpc_replies") == 0) return e->rpc_replies;
    if (strcmp(kind, "client_rpcs") == 0) return e->client_rpcs;
    if (strcmp(kind, "provisions") == 0) return e->prov_reqs;
    if (strcmp(kind, "fw_requests") == 0) return e->fw_reqs;
    return NULL;
}

static json_t *snapshot(tb_emu *e, const char *kind, const char *device) {
    if (!e) return json_array();
    pthread_mutex_lock(&e->lock);
    json_t *l = list_of(e, kind, device);
    json_t *copy = l ? json_deep_copy(l) : json_array();
    pthread_mutex_unlock(&e->lock);
    return copy;
}

json_t *tb_emu_telemetry(tb_emu *e, const char *device) { return snapshot(e, "telemetry", device); }
json_t *tb_emu_attributes(tb_emu *e, const char *device) { return snapshot(e, "attributes", device); }
json_t *tb_emu_claims(tb_emu *e, const char *device) { return snapshot(e, "claims", device); }
json_t *tb_emu_fw_states(tb_emu *e) { return snapshot(e, "fw_states", NULL); }
json_t *tb_emu_gateway_events(tb_emu *e) { return snapshot(e, "gateway_events", NULL); }
json_t *tb_emu_rpc_replies(tb_emu *e) { return snapshot(e, "rpc_replies", NULL); }
json_t *tb_emu_client_rpcs(tb_emu *e) { return snapshot(e, "client_rpcs", NULL); }
json_t *tb_emu_provisions(tb_emu *e) { return snapshot(e, "provisions", NULL); }
json_t *tb_emu_fw_requests(tb_emu *e) { return snapshot(e, "fw_requests", NULL); }

int tb_emu_wait(tb_emu *e, const char *kind, const char *device, size_t count, uint32_t timeout_ms) {
    if (!e || !kind) return -1;
    static const char *const kinds[] = { "telemetry", "attributes", "claims", "fw_states",
                                         "gateway_events", "rpc_replies", "client_rpcs",
                                         "provisions", "fw_requests" };
    bool known = false;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) known |= strcmp(kind, kinds[i]) == 0;
    if (!known) {
        fprintf(stderr, "tb_emu: wait: unknown kind '%s'\n", kind);
        return -1;
    }
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    pthread_mutex_lock(&e->lock);
    for (;;) {
        json_t *l = list_of(e, kind, device);
        if (l && json_array_size(l) >= count) break;
        if (pthread_cond_timedwait(&e->cond, &e->lock, &dl) == ETIMEDOUT) {
            l = list_of(e, kind, device);
            rc = l && json_array_size(l) >= count ? 0 : -1;
            break;
        }
    }
    pthread_mutex_unlock(&e->lock);
    return rc;
}
