/* Session limits: the server's maxPayloadSize and rate-limit windows. Every
 * publish of a limited device takes a token from each window of its buckets
 * (messages; telemetry messages and data points for telemetry). A publish
 * that finds a window empty waits in a FIFO queue; a timer (a future with a
 * deadline, continued on the client's strand) drains the queue when the
 * tokens are back. No library thread ever sleeps. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/core/alloc.h"
#include "actors/core/log.h"
#include "actors/session/session.h"
#include "platforms/thingsboard/tb_internal.h"

static double fmin_(double a, double b) { return a < b ? a : b; }
static double fmax_(double a, double b) { return a > b ? a : b; }

double tti_tb_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "count:seconds,count:seconds" -> windows starting full. "0:0" or "" = none. */
tt_err tti_tb_parse_windows(const char *spec, tb_bucket *b) {
    memset(b, 0, sizeof *b);
    if (!spec) return TT_OK;
    double now = tti_tb_now();
    const char *p = spec;
    while (*p) {
        char *end;
        unsigned long count = strtoul(p, &end, 10);
        if (end == p || *end != ':') return TT_EINVAL;
        p = end + 1;
        unsigned long secs = strtoul(p, &end, 10);
        if (end == p) return TT_EINVAL;
        p = end;
        while (*p == ' ') p++;
        if (*p == ',') p++;
        else if (*p) return TT_EINVAL;
        if (!count || !secs) continue;   /* 0 = no limit */
        if (b->n == TB_MAX_WINDOWS) return TT_EINVAL;
        tb_window *w = &b->w[b->n++];
        w->cap = (double)count;
        w->rate = (double)count / (double)secs;
        w->tokens = w->cap;
        w->at = now;
    }
    return TT_OK;
}

static void refill(tb_bucket *b, double now) {
    for (int i = 0; i < b->n; i++) {
        tb_window *w = &b->w[i];
        w->tokens = fmin_(w->cap, w->tokens + (now - w->at) * w->rate);
        w->at = now;
    }
}

/* Seconds until `need` tokens are in every window (0 = now). A need above a
 * window's capacity is clamped to it: the message waits for a full window. */
static double wait_for(const tb_bucket *b, double need) {
    double t = 0;
    for (int i = 0; i < b->n; i++) {
        const tb_window *w = &b->w[i];
        double n = fmin_(need, w->cap);
        if (w->tokens < n) t = fmax_(t, (n - w->tokens) / w->rate);
    }
    return t;
}

static void take(tb_bucket *b, double need) {
    for (int i = 0; i < b->n; i++) b->w[i].tokens -= fmin_(need, b->w[i].cap);
}

/* Lock held. Seconds to wait before `q` may go; 0 = it may go now (tokens taken). */
static double admit(tt_tb_device *d, bool telemetry, uint32_t points) {
    double now = tti_tb_now();
    refill(&d->msgs, now);
    double t = wait_for(&d->msgs, 1);
    if (telemetry) {
        refill(&d->tele_msgs, now);
        refill(&d->tele_points, now);
        t = fmax_(t, wait_for(&d->tele_msgs, 1));
        t = fmax_(t, wait_for(&d->tele_points, points ? points : 1));
    }
    if (t > 0) return t;
    take(&d->msgs, 1);
    if (telemetry) {
        take(&d->tele_msgs, 1);
        take(&d->tele_points, points ? points : 1);
    }
    return 0;
}

static void tick_cb(tt_future *f, void *arg);

/* Lock held: arm the drain timer `secs` from now unless armed. */
static void arm(tt_tb_device *d, double secs) {
    if (d->tick) return;
    uint32_t ms = (uint32_t)(secs * 1000.0) + 1;
    if (ms < 1) ms = 1;
    tt_future *f = tti_tb_future(d, ms);
    tti_tb_ref(d);
    d->tick = f;
    tti_future_retain(f);             /* our handle in d->tick; the continuation owns the other */
    if (tt_future_then(f, tick_cb, d) != TT_OK) {
        d->tick = NULL;
        tti_future_release(f);
        tt_future_free(f);
        tti_tb_unref(d);
    }
}

static void queued_free(tb_queued *q) {
    tti_free(q->topic);
    tti_free(q->payload);
    tti_free(q);
}

void tti_tb_limits_drain(tt_tb_device *d) {
    tb_queued *go = NULL, **gtail = &go;
    pthread_mutex_lock(&d->lock);
    while (d->qhead && !atomic_load(&d->closing)) {
        tb_queued *q = d->qhead;
        double t = admit(d, q->telemetry, q->points);
        if (t > 0) {
            arm(d, t);
            break;
        }
        d->qhead = q->next;
        if (!d->qhead) d->qtail = &d->qhead;
        d->qlen--;
        q->next = NULL;
        *gtail = q;
        gtail = &q->next;
    }
    pthread_mutex_unlock(&d->lock);
    while (go) {
        tb_queued *q = go;
        go = q->next;
        tti_tb_relay(tt_client_pub(d->c, q->topic, q->payload, q->len, d->qos, false), q->p);
        queued_free(q);
    }
}

static void tick_cb(tt_future *f, void *arg) {
    tt_tb_device *d = arg;
    pthread_mutex_lock(&d->lock);
    if (d->tick == f) d->tick = NULL;
    pthread_mutex_unlock(&d->lock);
    /* The timer's promise: it already ended (deadline or cancel); release it. */
    (void)tt_promise_complete(tti_future_promise(f), TT_OK, 0, NULL);
    tti_future_release(f);
    tt_future_free(f);
    if (atomic_load(&d->closing)) tti_tb_limits_fail(d);
    else tti_tb_limits_drain(d);
    tti_tb_unref(d);
}

void tti_tb_limits_fail(tt_tb_device *d) {
    pthread_mutex_lock(&d->lock);
    tb_queued *q = d->qhead;
    d->qhead = NULL;
    d->qtail = &d->qhead;
    d->qlen = 0;
    tt_future *tick = d->tick;
    if (tick) tti_future_retain(tick);
    pthread_mutex_unlock(&d->lock);
    if (tick) {                       /* run the timer's continuation now */
        tt_future_cancel(tick);
        tti_future_release(tick);
    }
    while (q) {
        tb_queued *next = q->next;
        (void)tt_promise_complete(q->p, TT_ECLOSED, 0, "device closed");
        queued_free(q);
        q = next;
    }
}

tt_future *tti_tb_send(tt_tb_device *d, const char *topic, const void *payload, size_t len,
                       bool telemetry, uint32_t points) {
    if (!atomic_load_explicit(&d->limited, memory_order_acquire))
        return tt_client_pub(d->c, topic, payload, len, d->qos, false);
    pthread_mutex_lock(&d->lock);
    if (!d->qhead && admit(d, telemetry, points) == 0) {
        pthread_mutex_unlock(&d->lock);
        return tt_client_pub(d->c, topic, payload, len, d->qos, false);
    }
    pthread_mutex_unlock(&d->lock);
    tb_queued *q = tti_calloc(1, sizeof *q);
    if (!q || !(q->topic = tti_strdup(topic)) || !(q->payload = tti_malloc(len ? len : 1))) {
        if (q) queued_free(q);
        return tti_tb_failed(d, TT_ENOMEM, NULL);
    }
    memcpy(q->payload, payload, len);
    q->len = len;
    q->telemetry = telemetry;
    q->points = points;
    tt_future *f = tti_tb_future(d, 0);
    q->p = tti_future_promise(f);
    pthread_mutex_lock(&d->lock);
    if (atomic_load(&d->closing)) {
        pthread_mutex_unlock(&d->lock);
        (void)tt_promise_complete(q->p, TT_ECLOSED, 0, "device closed");
        queued_free(q);
        return f;
    }
    *d->qtail = q;
    d->qtail = &q->next;
    d->qlen++;
    arm(d, wait_for(&d->msgs, 1) > 0 ? wait_for(&d->msgs, 1) : 0.001);
    pthread_mutex_unlock(&d->lock);
    return f;
}

static const char *window_spec(const json_t *rl, const char *key) {
    const json_t *v = json_object_get(rl, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

tt_err tt_tb_device_set_session_limits(tt_tb_device *d, const json_t *limits) {
    if (!d || !json_is_object(limits)) return TT_EINVAL;
    const json_t *mp = json_object_get(limits, "maxPayloadSize");
    const json_t *rl = json_object_get(limits, "rateLimits");
    if (d->gateway && json_is_object(json_object_get(limits, "gatewayRateLimits")))
        rl = json_object_get(limits, "gatewayRateLimits");
    const json_t *mi = json_object_get(limits, "maxInflightMessages");
    if (mp && !(json_is_integer(mp) && json_integer_value(mp) > 16)) return TT_EINVAL;
    if (mi && !(json_is_integer(mi) && json_integer_value(mi) > 0)) return TT_EINVAL;
    if (rl && !json_is_object(rl)) return TT_EINVAL;
    tb_bucket m, tm, tp;
    if (tti_tb_parse_windows(window_spec(rl, "messages"), &m) != TT_OK ||
        tti_tb_parse_windows(window_spec(rl, "telemetryMessages"), &tm) != TT_OK ||
        tti_tb_parse_windows(window_spec(rl, "telemetryDataPoints"), &tp) != TT_OK)
        return TT_EINVAL;
    if (mp) atomic_store(&d->max_payload, (size_t)json_integer_value(mp));
    if (mi) {
        json_int_t n = json_integer_value(mi);
        tt_future_free(tt_client_set_max_inflight(d->c, (uint16_t)(n > 65535 ? 65535 : n)));
    }
    pthread_mutex_lock(&d->lock);
    d->msgs = m;
    d->tele_msgs = tm;
    d->tele_points = tp;
    atomic_store_explicit(&d->limited, m.n || tm.n || tp.n, memory_order_release);
    pthread_mutex_unlock(&d->lock);
    TTI_LOG(INFO, "tb", "session limits: payload %zu, windows %d/%d/%d", atomic_load(&d->max_payload),
            m.n, tm.n, tp.n);
    return TT_OK;
}

typedef struct limits_ctx {
    tt_tb_device *d;
    tt_promise *p;
} limits_ctx;

static void limits_cb(tt_future *f, void *arg) {
    limits_ctx *x = arg;
    tt_err rc = tt_future_result(f);
    if (rc != TT_OK) {
        const char *why = NULL;
        int detail = tt_future_detail(f, &why);
        (void)tt_promise_complete(x->p, rc, detail, "%s", why && *why ? why : tt_strerror(rc));
    } else {
        json_t *v = tt_future_get_ptr(f);
        if (tt_tb_device_set_session_limits(x->d, v) == TT_OK)
            tti_tb_resolve_json(x->p, json_deep_copy(v));   /* not shared across threads */
        else
            (void)tt_promise_complete(x->p, TT_EPROTO, 0, "the answer to getSessionLimits is not limits");
    }
    tt_future_free(f);
    tti_tb_unref(x->d);
    tti_free(x);
}

tt_future *tt_tb_device_apply_session_limits(tt_tb_device *d, const tt_call_opts *opts) {
    if (!d) return tti_tb_failed(NULL, TT_EINVAL, "no device");
    limits_ctx *x = tti_malloc(sizeof *x);
    if (!x) return tti_tb_failed(d, TT_ENOMEM, NULL);
    tt_future *out = tti_tb_future(d, 0);
    x->d = d;
    x->p = tti_future_promise(out);
    tti_tb_ref(d);
    tt_future *rf = tt_tb_device_rpc_call(d, "getSessionLimits", NULL, opts);
    if (tt_future_then(rf, limits_cb, x) != TT_OK) {
        tt_future_free(rf);
        (void)tt_promise_complete(x->p, TT_ENOMEM, 0, NULL);
        tti_tb_unref(d);
        tti_free(x);
    }
    return out;
}
