/* Device provisioning (fact sheet §6a): a short-lived MQTT connection as
 * "provision" that publishes /provision/request and waits for
 * /provision/response. Both answer shapes are read: {"status",
 * "credentialsType","credentialsValue"} and the older
 * {"provisionDeviceStatus","credentialsType","accessToken"}, where MQTT_BASIC
 * credentials may be an object or a JSON string holding one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/core/alloc.h"
#include "actors/core/log.h"
#include "actors/session/session.h"
#include "platforms/thingsboard/tb_internal.h"

#define PROV_DEFAULT_TIMEOUT_MS 10000u

/* The caller's future completes only after the provisioning connection is
 * closed, so nothing of it is left running when the caller moves on (and,
 * say, frees the runtime). */
typedef struct prov_ctx {
    atomic_int refs;
    tt_client *c;
    tt_promise *p;                    /* the caller's future */
    tt_promise *timer;                /* the deadline; its continuation tears down */
    char *request;
    pthread_mutex_t lock;             /* the outcome below */
    bool settled;
    tt_err rc;
    struct tb_creds *creds;
    char reason[320];
} prov_ctx;

typedef struct tb_creds {
    tt_tb_credentials pub;
    char *strs[7];
} tb_creds;

static void creds_free(void *v) {
    tb_creds *c = v;
    for (int i = 0; i < 7; i++) tti_free(c->strs[i]);
    tti_free(c);
}

static void ctx_unref(prov_ctx *x) {
    if (atomic_fetch_sub(&x->refs, 1) != 1) return;
    tt_client_free(x->c);
    if (x->creds) creds_free(x->creds);
    tti_free(x->request);
    pthread_mutex_destroy(&x->lock);
    tti_free(x);
}

/* Record the outcome once (later calls do nothing) and end the wait: the
 * timer's continuation closes the connection, then completes the future. */
static void settle(prov_ctx *x, tt_err rc, tb_creds *creds, const char *why) {
    pthread_mutex_lock(&x->lock);
    if (x->settled) {
        pthread_mutex_unlock(&x->lock);
        if (creds) creds_free(creds);
        return;
    }
    x->settled = true;
    x->rc = rc;
    x->creds = creds;
    snprintf(x->reason, sizeof x->reason, "%s", why ? why : "");
    tt_promise *t = x->timer;
    pthread_mutex_unlock(&x->lock);
    if (t) tt_future_cancel(tti_promise_future(t));
}

static const char *str_of(const json_t *o, const char *k) {
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static char *dup_or_null(const char *s) { return s ? tti_strdup(s) : NULL; }

/* Parse one answer into credentials; TT_OK or an error with `why`. */
static tt_err parse_answer(json_t *j, tb_creds **out, const char **why) {
    *out = NULL;
    *why = "";
    if (!json_is_object(j)) {
        *why = "answer is not a JSON object";
        return TT_EPROTO;
    }
    const char *status = str_of(j, "status");
    if (!status) status = str_of(j, "provisionDeviceStatus");
    if (!status) {
        *why = "answer has no status";
        return TT_EPROTO;
    }
    if (strcmp(status, "SUCCESS") != 0) {
        *why = str_of(j, "errorMsg");
        if (!*why) *why = status;
        return !strcmp(status, "NOT_FOUND") ? TT_ENOTFOUND : TT_EREFUSED;
    }
    tb_creds *c = tti_calloc(1, sizeof *c);
    if (!c) return TT_ENOMEM;
    const char *type = str_of(j, "credentialsType");
    json_t *val = json_object_get(j, "credentialsValue");
    json_t *parsed = NULL;
    if (!type) type = "ACCESS_TOKEN";
    if (!strcmp(type, "ACCESS_TOKEN")) {
        c->pub.type = TT_TB_CRED_ACCESS_TOKEN;
        const char *tok = json_is_string(val) ? json_string_value(val) : str_of(j, "accessToken");
        c->pub.token = c->strs[0] = dup_or_null(tok);
        if (!tok) *why = "no access token in the answer";
    } else if (!strcmp(type, "MQTT_BASIC")) {
        c->pub.type = TT_TB_CRED_MQTT_BASIC;
        if (json_is_string(val)) val = parsed = json_loads(json_string_value(val), 0, NULL);
        if (!json_is_object(val)) *why = "MQTT_BASIC credentials are not an object";
        c->pub.client_id = c->strs[1] = dup_or_null(str_of(val, "clientId"));
        c->pub.username = c->strs[2] = dup_or_null(str_of(val, "userName"));
        if (!c->pub.username) c->pub.username = c->strs[2] = dup_or_null(str_of(val, "username"));
        c->pub.password = c->strs[3] = dup_or_null(str_of(val, "password"));
    } else if (!strcmp(type, "X509_CERTIFICATE")) {
        c->pub.type = TT_TB_CRED_X509;
        c->pub.cert = c->strs[4] = dup_or_null(json_is_string(val) ? json_string_value(val) : NULL);
        if (!c->pub.cert) *why = "no certificate in the answer";
    } else {
        *why = "unknown credentialsType";
    }
    c->pub.device_id = c->strs[5] = dup_or_null(str_of(j, "deviceId"));
    c->pub.credentials_id = c->strs[6] = dup_or_null(str_of(j, "credentialsId"));
    json_decref(parsed);
    if (**why) {
        creds_free(c);
        return TT_EPROTO;
    }
    *out = c;
    return TT_OK;
}

static void on_answer(tt_client *cl, const tt_msg *m, void *arg) {
    (void)cl;
    prov_ctx *x = arg;
    size_t n;
    const char *p = tt_msg_payload(m, &n);
    json_t *j = p ? json_loadb(p, n, 0, NULL) : NULL;
    tb_creds *c;
    const char *why;
    tt_err rc = parse_answer(j, &c, &why);
    char buf[300];
    snprintf(buf, sizeof buf, "provisioning: %s", why);
    if (rc == TT_OK) settle(x, TT_OK, c, NULL);
    else settle(x, rc, NULL, buf);
    json_decref(j);
}

static void step_failed(prov_ctx *x, tt_future *f, const char *what) {
    const char *why = NULL;
    tt_err rc = tt_future_result(f);
    (void)tt_future_detail(f, &why);
    char buf[256];
    snprintf(buf, sizeof buf, "%s: %s", what, why && *why ? why : tt_strerror(rc));
    settle(x, rc, NULL, buf);
}

static void published(tt_future *f, void *arg) {
    prov_ctx *x = arg;
    if (tt_future_result(f) != TT_OK) step_failed(x, f, "sending the request");
    tt_future_free(f);
    ctx_unref(x);
}

static void subscribed(tt_future *f, void *arg) {
    prov_ctx *x = arg;
    if (tt_future_result(f) != TT_OK) {
        step_failed(x, f, "subscribing to /provision/response");
    } else {
        tt_future *pf = tt_client_pub(x->c, "/provision/request", x->request, strlen(x->request), TT_QOS1, false);
        atomic_fetch_add(&x->refs, 1);
        if (tt_future_then(pf, published, x) != TT_OK) {
            tt_future_free(pf);
            ctx_unref(x);
        }
    }
    tt_future_free(f);
    ctx_unref(x);
}

static void connected(tt_future *f, void *arg) {
    prov_ctx *x = arg;
    if (tt_future_result(f) != TT_OK) {
        step_failed(x, f, "connecting as provision");
    } else {
        tt_sub s = { .filter = "/provision/response", .qos = TT_QOS1, .handler = on_answer, .arg = x };
        tt_future *sf = tt_client_subscribe(x->c, &s, 1, NULL);
        atomic_fetch_add(&x->refs, 1);
        if (tt_future_then(sf, subscribed, x) != TT_OK) {
            tt_future_free(sf);
            ctx_unref(x);
        }
    }
    tt_future_free(f);
    ctx_unref(x);
}

/* The connection is closed: no callback of it runs any more. Complete. */
static void closed(tt_future *f, void *arg) {
    prov_ctx *x = arg;
    if (f) tt_future_free(f);
    pthread_mutex_lock(&x->lock);
    tb_creds *c = x->creds;
    x->creds = NULL;
    tt_err rc = x->rc;
    pthread_mutex_unlock(&x->lock);
    if (rc == TT_OK && c && tti_promise_commit(x->p)) {
        tt_promise_set_value(x->p, c, creds_free, 0);
        (void)tt_promise_complete(x->p, TT_OK, 0, NULL);
    } else {
        if (c) creds_free(c);
        (void)tt_promise_complete(x->p, rc == TT_OK ? TT_ECANCELED : rc, 0, "%s", x->reason);
    }
    ctx_unref(x);
}

/* The deadline passed or the answer came (cancel): close, then complete. */
static void timer_done(tt_future *f, void *arg) {
    prov_ctx *x = arg;
    pthread_mutex_lock(&x->lock);
    tt_promise *t = x->timer;
    x->timer = NULL;
    pthread_mutex_unlock(&x->lock);
    if (t) (void)tt_promise_complete(t, TT_OK, 0, NULL);
    settle(x, TT_ETIMEDOUT, NULL, "provisioning: no answer");
    tt_future_free(f);
    tt_future *cf = tt_client_close(x->c);
    if (tt_future_then(cf, closed, x) != TT_OK) {
        tt_future_free(cf);
        closed(NULL, x);
    }
}

static json_t *build_request(const tt_tb_provision_opts *o) {
    json_t *r = json_pack("{s:s,s:s}", "provisionDeviceKey", o->key, "provisionDeviceSecret", o->secret);
    if (!r) return NULL;
    if (o->device_name) json_object_set_new(r, "deviceName", json_string(o->device_name));
    if (o->gateway) json_object_set_new(r, "gateway", json_true());
    switch (o->type) {
    case TT_TB_CRED_ACCESS_TOKEN:
        json_object_set_new(r, "credentialsType", json_string("ACCESS_TOKEN"));
        json_object_set_new(r, "token", json_string(o->token ? o->token : ""));
        break;
    case TT_TB_CRED_MQTT_BASIC:
        json_object_set_new(r, "credentialsType", json_string("MQTT_BASIC"));
        if (o->client_id) json_object_set_new(r, "clientId", json_string(o->client_id));
        if (o->username) json_object_set_new(r, "username", json_string(o->username));
        if (o->password) json_object_set_new(r, "password", json_string(o->password));
        break;
    case TT_TB_CRED_X509:
        json_object_set_new(r, "credentialsType", json_string("X509_CERTIFICATE"));
        json_object_set_new(r, "hash", json_string(o->cert_pem ? o->cert_pem : ""));
        break;
    default:
        break;
    }
    return r;
}

tt_future *tt_tb_provision(tt_runtime *rt, const tt_tb_provision_opts *o) {
    if (!rt || !o || !o->host || !o->key || !o->secret || (unsigned)o->type > TT_TB_CRED_X509 ||
        (o->type == TT_TB_CRED_X509 && !o->cert_pem))
        return tti_future_failed(NULL, TT_EINVAL, "host, key and secret are required");
    json_t *req = build_request(o);
    char *s = req ? tti_tb_dumps(req) : NULL;
    json_decref(req);
    if (!s) return tti_future_failed(NULL, TT_EINVAL, "key, secret and names must be UTF-8 text");
    prov_ctx *x = tti_calloc(1, sizeof *x);
    if (!x) {
        free(s);
        return tti_future_enomem();
    }
    x->request = tti_strdup(s);
    free(s);
    pthread_mutex_init(&x->lock, NULL);
    atomic_init(&x->refs, 1);
    tt_client_opts co = TT_OPTS_INIT(tt_client_opts);
    char url[300];
    bool tls = o->tls != NULL, v6 = strchr(o->host, ':') != NULL;
    snprintf(url, sizeof url, "%s://%s%s%s:%u", tls ? "mqtts" : "mqtt", v6 ? "[" : "", o->host, v6 ? "]" : "",
             (unsigned)(o->port ? o->port : tls ? 8883 : 1883));
    co.url = url;
    co.tls = o->tls;
    co.username = "provision";
    co.password = o->login_password;
    co.keepalive_s = 60;
    co.no_reconnect = true;
    tt_err rc = x->request ? tt_client_new(rt, &co, &x->c) : TT_ENOMEM;
    if (rc != TT_OK) {
        tti_free(x->request);
        pthread_mutex_destroy(&x->lock);
        tti_free(x);
        return tti_future_failed(NULL, rc, "cannot create the provisioning client");
    }
    tt_future *out = tti_future_new(&x->c->strand, 0);
    tt_future *timer = tti_future_new(&x->c->strand, 0);
    if (!out || !timer) {
        if (out) {
            (void)tt_promise_complete(tti_future_promise(out), TT_ENOMEM, 0, NULL);
            tt_future_free(out);
        }
        if (timer) {
            (void)tt_promise_complete(tti_future_promise(timer), TT_ENOMEM, 0, NULL);
            tt_future_free(timer);
        }
        ctx_unref(x);
        return tti_future_enomem();
    }
    x->p = tti_future_promise(out);
    x->timer = tti_future_promise(timer);
    tti_future_set_deadline(timer, x->c->actor.loop->base, o->timeout_ms ? o->timeout_ms : PROV_DEFAULT_TIMEOUT_MS);
    /* The timer's continuation holds the ctx's first reference. */
    if (tt_future_then(timer, timer_done, x) != TT_OK) tt_future_free(timer);
    atomic_fetch_add(&x->refs, 1);
    tt_future *cf = tt_client_connect(x->c);
    if (tt_future_then(cf, connected, x) != TT_OK) {
        tt_future_free(cf);
        ctx_unref(x);
    }
    return out;
}
