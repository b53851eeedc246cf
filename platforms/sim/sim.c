/* The fleet simulator's runner (include/tether/sim.h).
 *
 * One thread of the simulator's own drives the run on a shared tick: it
 * starts connections at the connect rate (bounded by handshakes in flight),
 * and on every tick walks the connected devices and publishes what each one
 * owes by now (rate x time since it came up), within its window of
 * unacknowledged publishes. No timer per device: a device costs its client
 * plus one small struct. Completions and incoming messages arrive on the
 * clients' strands (pool threads) and only touch atomics, or the consumer's
 * state under one mutex.
 *
 * The consumer is one client subscribed to the profile's filters. Per
 * (sub-)device it keeps a bitmap of the sequence numbers seen, so duplicates,
 * out-of-order arrivals and losses are exact, and it records every arrival's
 * latency (now - the payload's CLOCK_REALTIME stamp) in a histogram. */
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/sim.h>
#include <time.h>
#include <unistd.h>

#include "actors/core/alloc.h"
#include "actors/future.h"
#include "actors/runtime.h"
#include "platforms/sim/sim_internal.h"

enum { D_IDLE, D_CONNECTING, D_UP, D_DOWN, D_FAILED };

typedef struct sim_dev {
    tt_client *c;
    struct tt_sim *sim;
    uint64_t next_seq;                 /* driver thread only */
    uint64_t t_connect_ns;             /* monotonic, set before the connect */
    double pub_start;                  /* driver: elapsed s when first seen up */
    uint32_t idx;
    bool hello_sent;                   /* driver */
    atomic_uchar state;
    atomic_uint outstanding;
} sim_dev;

/* Receiving side: one entry per (sub-)device, open addressing on the id. */
typedef struct rx_dev {
    uint64_t id;
    uint64_t max_seq;
    uint64_t distinct;
    uint64_t *bits;
    uint32_t words;
    bool used;
} rx_dev;

struct tt_sim {
    tt_runtime *rt;
    tt_sim_opts o;                     /* strings point into the copies below */
    char *url, *topic, *token, *consumer_id, *username, *password, *client_id;
    char **src;
    const tt_sim_profile *prof;
    uint32_t recs;                     /* records per telemetry message */
    sim_dev *devs;
    pthread_t thread;
    bool thread_started;
    atomic_bool run_called;
    atomic_bool stop;
    atomic_bool draining, done;
    tt_future *run_f;
    double t0;                         /* monotonic seconds at run start (written under mu) */
    bool running;                      /* t0 is set (under mu) */
    int64_t started_ms;

    atomic_uint_fast64_t started, connected_now, connect_ok, connect_failed;
    atomic_uint_fast64_t sent, pub_failed, records_sent, outstanding;
    atomic_uint_fast64_t errs[TTI_SIM_ERR_WHATS][TTI_SIM_ERR_CODES];

    tt_client *consumer;
    pthread_mutex_t mu;                /* everything below */
    tt_hist *lat, *conn_lat;
    double first_connect, last_connack;
    rx_dev *rx;
    size_t rx_cap, rx_used;
    uint64_t received, distinct, dups, ooo;
    uint64_t rx_other;                 /* messages that were not the simulator's */
    double pub_end;                    /* elapsed s when publishing ended */
    tt_sim_report *tl;                 /* the timeline */
    double out_rate, in_rate;
};

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t real_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

size_t tti_sim_err_slot(tt_err e) {
    return e <= 0 && e > -(int)(TTI_SIM_ERR_CODES - 1) ? (size_t)-e : TTI_SIM_ERR_CODES - 1;
}

const char *tti_sim_err_what(int what) {
    static const char *const names[] = { "connect", "publish", "disconnect" };
    return what >= 0 && what < TTI_SIM_ERR_WHATS ? names[what] : "?";
}

static void count_err(tt_sim *s, int what, tt_err e) {
    atomic_fetch_add_explicit(&s->errs[what][tti_sim_err_slot(e)], 1, memory_order_relaxed);
}

/* ---- creation ------------------------------------------------------------ */

static bool dup_opt(const char *in, char **out) {
    *out = NULL;
    if (!in) return true;
    *out = tti_strdup(in);
    return *out != NULL;
}

void tt_sim_free(tt_sim *s);

tt_err tt_sim_new(tt_runtime *rt, const tt_sim_opts *opts, tt_sim **out) {
    if (!out) return TT_EINVAL;
    *out = NULL;
    if (!rt || !opts || opts->size < offsetof(tt_sim_opts, username)) return TT_EINVAL;
    /* A struct from an older header is shorter: what it lacks stays zero. */
    tt_sim_opts given;
    memset(&given, 0, sizeof given);
    memcpy(&given, opts, opts->size < sizeof given ? opts->size : sizeof given);
    given.size = sizeof given;
    opts = &given;
    if (!opts->url) return TT_EINVAL;
    if (!opts->consume_only && (opts->devices == 0 || (opts->count == 0 && opts->duration_s <= 0)))
        return TT_EINVAL;
    if (opts->consume_only && opts->no_consumer) return TT_EINVAL;
    if (opts->qos > TT_QOS2 || opts->rate < 0 || opts->connect_rate < 0 || opts->duration_s < 0 ||
        opts->drain_s < 0 || (opts->nsource_addrs && !opts->source_addrs))
        return TT_EINVAL;
    const tt_sim_profile *prof = opts->profile ? opts->profile : tt_sim_profile_find("mqtt");
    if (!prof->identity || !prof->telemetry || !prof->filters || !prof->decode || !prof->records_per_msg)
        return TT_EINVAL;
    if (opts->payload_size > 256u * 1024 * 1024) return TT_EINVAL;
    tt_sim *s = tti_calloc(1, sizeof *s);
    if (!s) return TT_ENOMEM;
    s->rt = rt;
    s->o = *opts;
    s->prof = prof;
    pthread_mutex_init(&s->mu, NULL);
    bool ok = dup_opt(opts->url, &s->url) && dup_opt(opts->topic, &s->topic) &&
              dup_opt(opts->token, &s->token) && dup_opt(opts->consumer_id, &s->consumer_id) &&
              dup_opt(opts->username, &s->username) && dup_opt(opts->password, &s->password) &&
              dup_opt(opts->client_id, &s->client_id);
    s->o.url = s->url;
    s->o.topic = s->topic;
    s->o.token = s->token;
    s->o.consumer_id = s->consumer_id;
    s->o.username = s->username;
    s->o.password = s->password;
    s->o.client_id = s->client_id;
    s->o.profile = prof;
    if (s->o.payload_size == 0) s->o.payload_size = 64;
    if (s->o.window == 0) s->o.window = 16;
    if (s->o.max_handshakes == 0) s->o.max_handshakes = 512;
    if (s->o.drain_s == 0) s->o.drain_s = 10;
    if (s->o.sub_devices == 0) s->o.sub_devices = 1;
    if (ok && opts->nsource_addrs) {
        s->src = tti_calloc(opts->nsource_addrs, sizeof *s->src);
        ok = s->src != NULL;
        for (size_t i = 0; ok && i < opts->nsource_addrs; i++) ok = dup_opt(opts->source_addrs[i], &s->src[i]);
        s->o.source_addrs = (const char *const *)s->src;
    }
    s->recs = prof->records_per_msg(&s->o);
    if (ok && !opts->consume_only) {
        s->devs = tti_calloc(opts->devices, sizeof *s->devs);
        ok = s->devs != NULL;
    }
    if (ok) ok = tt_hist_new(TTI_SIM_HIST_MAX_US, &s->lat) == TT_OK &&
                 tt_hist_new(TTI_SIM_HIST_MAX_US, &s->conn_lat) == TT_OK &&
                 tti_sim_report_alloc(&s->tl) == TT_OK;
    if (!ok) {
        tt_sim_free(s);
        return TT_ENOMEM;
    }
    /* A message of the profile must be buildable: try one. */
    if (!opts->consume_only) {
        char topic[512];
        size_t cap = s->o.payload_size + 256 + (size_t)s->recs * 160;
        uint8_t *buf = tti_malloc(cap);
        tt_sim_msg m = { topic, sizeof topic, buf, cap, 0 };
        tt_err rc = buf ? prof->telemetry(&s->o, s->o.id_offset, 0, real_us(), &m) : TT_ENOMEM;
        tti_free(buf);
        if (rc == TT_OK) {
            const char *f[4];
            if (prof->filters(&s->o, f, 4) == 0) rc = TT_EINVAL;
        }
        if (rc != TT_OK) {
            tt_sim_free(s);
            return rc;
        }
    }
    for (uint32_t i = 0; s->devs && i < opts->devices; i++) {
        s->devs[i].sim = s;
        s->devs[i].idx = i;
    }
    *out = s;
    return TT_OK;
}

/* ---- device callbacks (client strands) ----------------------------------- */

static void mark_up(sim_dev *d) {
    if (atomic_exchange(&d->state, D_UP) != D_UP) atomic_fetch_add(&d->sim->connected_now, 1);
}

static void on_connected(tt_future *f, void *arg) {
    sim_dev *d = arg;
    tt_sim *s = d->sim;
    tt_err rc = tt_future_result(f);
    tt_future_free(f);
    if (rc == TT_OK) {
        uint64_t us = (mono_ns() - d->t_connect_ns) / 1000u;
        pthread_mutex_lock(&s->mu);
        tt_hist_record(s->conn_lat, us);
        double t = mono_s() - s->t0;
        if (t > s->last_connack) s->last_connack = t;
        pthread_mutex_unlock(&s->mu);
        atomic_fetch_add(&s->connect_ok, 1);
        mark_up(d);
    } else {
        count_err(s, TTI_SIM_ERR_CONNECT, rc);
        atomic_fetch_add(&s->connect_failed, 1);
        if (atomic_exchange(&d->state, D_FAILED) == D_UP) atomic_fetch_sub(&s->connected_now, 1);
    }
}

static void on_event(tt_client *c, const tt_client_event *ev, void *arg) {
    sim_dev *d = arg;
    (void)c;
    if (ev->kind == TT_EV_CONNECTED) {
        unsigned char st = atomic_load(&d->state);
        if (st == D_DOWN) mark_up(d);
    } else if (ev->kind == TT_EV_DISCONNECTED) {
        unsigned char up = D_UP;
        if (atomic_compare_exchange_strong(&d->state, &up, D_DOWN)) {
            atomic_fetch_sub(&d->sim->connected_now, 1);
            if (ev->err != TT_OK) count_err(d->sim, TTI_SIM_ERR_DISCONNECT, ev->err);
        }
    }
}

static void on_published(tt_future *f, void *arg) {
    sim_dev *d = arg;
    tt_sim *s = d->sim;
    tt_err rc = tt_future_result(f);
    tt_future_free(f);
    if (rc == TT_OK) {
        atomic_fetch_add_explicit(&s->sent, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->records_sent, s->recs, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&s->pub_failed, 1, memory_order_relaxed);
        count_err(s, TTI_SIM_ERR_PUBLISH, rc);
    }
    atomic_fetch_sub(&d->outstanding, 1);
    atomic_fetch_sub(&s->outstanding, 1);
}

static void on_hello(tt_future *f, void *arg) {
    sim_dev *d = arg;
    tt_err rc = tt_future_result(f);
    tt_future_free(f);
    if (rc != TT_OK) count_err(d->sim, TTI_SIM_ERR_PUBLISH, rc);
    atomic_fetch_sub(&d->outstanding, 1);
    atomic_fetch_sub(&d->sim->outstanding, 1);
}

/* ---- the consumer (its strand) ------------------------------------------- */

static rx_dev *rx_find(tt_sim *s, uint64_t id) {
    if (s->rx_used * 10 >= s->rx_cap * 7) {
        size_t cap = s->rx_cap ? s->rx_cap * 2 : 1024;
        rx_dev *t = tti_calloc(cap, sizeof *t);
        if (!t) return NULL;
        for (size_t i = 0; i < s->rx_cap; i++) {
            if (!s->rx[i].used) continue;
            size_t j = (size_t)(s->rx[i].id * 0x9E3779B97F4A7C15ull >> 20) & (cap - 1);
            while (t[j].used) j = (j + 1) & (cap - 1);
            t[j] = s->rx[i];
        }
        tti_free(s->rx);
        s->rx = t;
        s->rx_cap = cap;
    }
    size_t j = (size_t)(id * 0x9E3779B97F4A7C15ull >> 20) & (s->rx_cap - 1);
    while (s->rx[j].used && s->rx[j].id != id) j = (j + 1) & (s->rx_cap - 1);
    if (!s->rx[j].used) {
        s->rx[j].used = true;
        s->rx[j].id = id;
        s->rx_used++;
    }
    return &s->rx[j];
}

typedef struct rx_ctx {
    tt_sim *s;
    uint64_t now_us;
} rx_ctx;

static void on_record(void *arg, uint64_t dev, uint64_t seq, uint64_t sent_us) {   /* under mu */
    rx_ctx *x = arg;
    tt_sim *s = x->s;
    s->received++;
    tt_hist_record(s->lat, x->now_us > sent_us ? x->now_us - sent_us : 0);
    rx_dev *d = rx_find(s, dev);
    if (!d || seq > (uint64_t)1 << 40) return;
    uint64_t w = seq / 64;
    if (w >= d->words) {
        uint32_t words = d->words ? d->words : 4;
        while (words <= w) words *= 2;
        uint64_t *b = tti_realloc(d->bits, (size_t)words * sizeof *b);
        if (!b) return;
        memset(b + d->words, 0, (size_t)(words - d->words) * sizeof *b);
        d->bits = b;
        d->words = words;
    }
    uint64_t bit = (uint64_t)1 << (seq % 64);
    if (d->bits[w] & bit) {
        s->dups++;
        return;
    }
    d->bits[w] |= bit;
    if (d->distinct > 0 && seq < d->max_seq) s->ooo++;
    if (d->distinct == 0 || seq > d->max_seq) d->max_seq = seq;
    d->distinct++;
    s->distinct++;
}

static void on_message(tt_client *c, const tt_msg *m, void *arg) {
    tt_sim *s = arg;
    size_t tlen, plen;
    (void)c;
    const char *topic = tt_msg_topic(m, &tlen);
    const void *payload = tt_msg_payload(m, &plen);
    rx_ctx x = { s, real_us() };
    pthread_mutex_lock(&s->mu);
    if (s->prof->decode(&s->o, topic, tlen, payload, plen, on_record, &x) < 0) s->rx_other++;
    pthread_mutex_unlock(&s->mu);
}

/* ---- the driver thread --------------------------------------------------- */

typedef struct drv {
    tt_sim *s;
    char topic[512];
    uint8_t *buf;
    size_t cap;
} drv;

static void dev_start(drv *v, sim_dev *d) {
    tt_sim *s = v->s;
    char id[128], user[256], pass[256];
    uint64_t gid = s->o.id_offset + d->idx;
    atomic_fetch_add(&s->started, 1);
    tt_err rc = s->prof->identity(&s->o, gid, id, sizeof id, user, sizeof user);
    if (rc == TT_OK && s->prof->password) rc = s->prof->password(&s->o, gid, pass, sizeof pass);
    tt_client_opts co = TT_OPTS_INIT(tt_client_opts);
    co.url = s->url;
    co.client_id = id;
    co.username = user[0] ? user : NULL;
    co.password = s->prof->password ? (user[0] ? pass : NULL) : s->password;   /* 3.1.1: no password without a user */
    co.keepalive_s = s->o.keepalive_s ? s->o.keepalive_s : 60;
    co.max_inflight = (uint16_t)(s->o.window > 65535 ? 65535 : s->o.window);
    co.on_event = on_event;
    co.on_event_arg = d;
    if (s->o.nsource_addrs) co.source_addr = s->src[d->idx % s->o.nsource_addrs];
    if (rc == TT_OK) rc = tt_client_new(s->rt, &co, &d->c);
    if (rc != TT_OK) {
        d->c = NULL;
        atomic_store(&d->state, D_FAILED);
        count_err(s, TTI_SIM_ERR_CONNECT, rc);
        atomic_fetch_add(&s->connect_failed, 1);
        return;
    }
    atomic_store(&d->state, D_CONNECTING);
    d->t_connect_ns = mono_ns();
    tt_future *f = tt_client_connect(d->c);
    if (tt_future_then(f, on_connected, d) != TT_OK) {
        tt_future_free(f);
        atomic_store(&d->state, D_FAILED);
        count_err(s, TTI_SIM_ERR_CONNECT, TT_ENOMEM);
        atomic_fetch_add(&s->connect_failed, 1);
    }
}

static void dev_send(drv *v, sim_dev *d, const tt_sim_msg *m, tt_qos qos, tt_future_fn done) {
    tt_sim *s = v->s;
    tt_pub p = TT_OPTS_INIT(tt_pub);
    p.topic = m->topic;
    p.payload = m->payload;
    p.payload_len = m->payload_len;
    p.qos = qos;
    p.retain = s->o.retain;
    atomic_fetch_add(&d->outstanding, 1);
    atomic_fetch_add(&s->outstanding, 1);
    tt_future *f = tt_client_publish(d->c, &p, NULL);
    if (tt_future_then(f, done, d) != TT_OK) {
        tt_future_free(f);
        count_err(s, TTI_SIM_ERR_PUBLISH, TT_ENOMEM);
        if (done == on_published) atomic_fetch_add(&s->pub_failed, 1);
        atomic_fetch_sub(&d->outstanding, 1);
        atomic_fetch_sub(&s->outstanding, 1);
    }
}

/* Publish what device d owes by `now`; returns true when it has sent all it will. */
static bool dev_tick(drv *v, sim_dev *d, double now) {
    tt_sim *s = v->s;
    unsigned char st = atomic_load(&d->state);
    if (st == D_FAILED) return true;
    if (st != D_UP && st != D_DOWN) return false;
    tt_sim_msg m = { v->topic, sizeof v->topic, v->buf, v->cap, 0 };
    uint64_t gid = s->o.id_offset + d->idx;
    if (!d->hello_sent) {
        d->hello_sent = true;
        /* Devices that came up together still spread their messages over
         * the period: a fixed phase per device (golden-ratio sequence). */
        double phase = (double)d->idx * 0.6180339887498949;
        phase -= (double)(uint64_t)phase;
        d->pub_start = s->o.rate > 0 ? now + phase / s->o.rate : now;
        for (uint32_t k = 0; s->prof->hello; k++) {
            int r = s->prof->hello(&s->o, gid, k, &m);
            if (r <= 0) {
                if (r < 0) count_err(s, TTI_SIM_ERR_PUBLISH, (tt_err)r);
                break;
            }
            /* Connect notices go at QoS 1 at least: a lost one loses the device. */
            dev_send(v, d, &m, s->o.qos ? s->o.qos : TT_QOS1, on_hello);
        }
    }
    uint64_t due = s->o.count ? s->o.count : UINT64_MAX;
    if (s->o.rate > 0) {
        double owed = (now - d->pub_start) * s->o.rate + 1;
        if (owed < 1) due = 0;                             /* its phase has not come yet */
        else if (owed < (double)due) due = (uint64_t)owed;
    }
    while (d->next_seq < due && atomic_load_explicit(&d->outstanding, memory_order_relaxed) < s->o.window) {
        tt_err rc = s->prof->telemetry(&s->o, gid, d->next_seq, real_us(), &m);
        d->next_seq++;
        if (rc != TT_OK) {
            count_err(s, TTI_SIM_ERR_PUBLISH, rc);
            atomic_fetch_add(&s->pub_failed, 1);
            continue;
        }
        dev_send(v, d, &m, s->o.qos, on_published);
    }
    return s->o.count && d->next_seq >= s->o.count;
}

static void sample(tt_sim *s, uint64_t *last_sent, uint64_t *last_recv, double *last_t) {
    double now = mono_s() - s->t0;
    uint64_t sent = atomic_load(&s->sent);
    pthread_mutex_lock(&s->mu);
    uint64_t recv = s->received;
    double dt = now - *last_t;
    if (dt > 0) {
        s->out_rate = (double)(sent - *last_sent) / dt;
        s->in_rate = (double)(recv - *last_recv) / dt;
    }
    (void)tti_sim_report_step(s->tl, sent, recv, atomic_load(&s->connected_now));
    pthread_mutex_unlock(&s->mu);
    *last_sent = sent;
    *last_recv = recv;
    *last_t = now;
}

static tt_err consumer_start(tt_sim *s) {
    char id[96];
    if (s->consumer_id) snprintf(id, sizeof id, "%s", s->consumer_id);
    else snprintf(id, sizeof id, "tt-sim-consumer-%ld-%" PRIu64, (long)getpid(), s->o.id_offset);
    tt_client_opts co = TT_OPTS_INIT(tt_client_opts);
    co.url = s->url;
    co.client_id = id;
    co.username = s->username;
    co.password = s->password;
    co.persistent_session = s->o.consumer_persistent;
    co.keepalive_s = s->o.keepalive_s ? s->o.keepalive_s : 60;
    co.on_message = on_message;
    co.on_message_arg = s;
    tt_err rc = tt_client_new(s->rt, &co, &s->consumer);
    if (rc != TT_OK) {
        s->consumer = NULL;
        return rc;
    }
    tt_future *f = tt_client_connect(s->consumer);
    rc = tt_future_wait(f, 30000);
    if (rc == TT_OK) rc = tt_future_result(f);
    tt_future_free(f);
    if (rc != TT_OK) return rc;
    const char *filters[8];
    size_t n = s->prof->filters(&s->o, filters, 8);
    tt_sub subs[8];
    memset(subs, 0, sizeof subs);
    for (size_t i = 0; i < n; i++) {
        subs[i].filter = filters[i];
        subs[i].qos = s->o.qos;
    }
    f = tt_client_subscribe(s->consumer, subs, n, NULL);
    rc = tt_future_wait(f, 30000);
    if (rc == TT_OK) rc = tt_future_result(f);
    tt_future_free(f);
    return rc;
}

static void nap_ms(double ms) {
    struct timespec ts = { 0, (long)(ms * 1e6) };
    nanosleep(&ts, NULL);
}

static void close_all(tt_sim *s, uint32_t n) {
    /* Close in batches: every close future is waited before the handles go. */
    tt_future *one = NULL;
    uint32_t batch = 4096;
    tt_future **fs = tti_calloc(batch, sizeof *fs);
    if (!fs) {
        fs = &one;
        batch = 1;
    }
    for (uint32_t i = 0; i < n; i += batch) {
        uint32_t k = n - i < batch ? n - i : batch;
        for (uint32_t j = 0; j < k; j++) {
            sim_dev *d = &s->devs[i + j];
            if (!d->c) continue;
            fs[j] = tt_client_close(d->c);
        }
        for (uint32_t j = 0; j < k; j++) {
            if (!fs[j]) continue;
            (void)tt_future_wait(fs[j], 10000);
            tt_future_free(fs[j]);
            fs[j] = NULL;
        }
        for (uint32_t j = 0; j < k; j++) {
            sim_dev *d = &s->devs[i + j];
            if (d->c) tt_client_free(d->c);
            d->c = NULL;
        }
    }
    if (fs != &one) tti_free(fs);
}

static void *drive(void *arg) {
    tt_sim *s = arg;
    drv v = { .s = s };
    v.cap = s->o.payload_size + 256 + (size_t)s->recs * 160;
    v.buf = tti_malloc(v.cap);
    tt_err result = v.buf ? TT_OK : TT_ENOMEM;
    uint32_t n = s->o.consume_only ? 0 : s->o.devices;
    uint32_t started = 0;
    uint64_t last_sent = 0, last_recv = 0;
    double last_t = 0, next_sample = 1;
    s->started_ms = (int64_t)(real_us() / 1000u);
    if (result == TT_OK && !s->o.no_consumer) result = consumer_start(s);
    pthread_mutex_lock(&s->mu);
    s->t0 = mono_s();                  /* the run starts when the consumer is ready */
    s->running = true;
    pthread_mutex_unlock(&s->mu);
    const double tick_ms = s->o.rate > 0 ? 5 : 1;
    while (result == TT_OK && !atomic_load(&s->stop)) {
        double now = mono_s() - s->t0;
        /* New connections: at the connect rate, with bounded handshakes. */
        uint64_t answered = atomic_load(&s->connect_ok) + atomic_load(&s->connect_failed);
        uint64_t allowed = n;
        if (s->o.connect_rate > 0) {
            double a = now * s->o.connect_rate + 1;
            if (a < (double)n) allowed = (uint64_t)a;
        }
        while (started < allowed && started - answered < s->o.max_handshakes) {
            if (started == 0) {
                pthread_mutex_lock(&s->mu);
                s->first_connect = now;
                pthread_mutex_unlock(&s->mu);
            }
            dev_start(&v, &s->devs[started++]);
        }
        bool all_done = started == n && n > 0;
        for (uint32_t i = 0; i < started; i++)
            if (!dev_tick(&v, &s->devs[i], now)) all_done = false;
        if (now >= next_sample) {
            sample(s, &last_sent, &last_recv, &last_t);
            next_sample += 1;
        }
        if (all_done || (s->o.duration_s > 0 && now >= s->o.duration_s)) break;
        nap_ms(tick_ms);
    }
    /* Drain: wait for the acknowledgements, then for the consumer. */
    pthread_mutex_lock(&s->mu);
    s->pub_end = mono_s() - s->t0;
    pthread_mutex_unlock(&s->mu);
    atomic_store(&s->draining, true);
    double until = mono_s() + s->o.drain_s;
    while (result == TT_OK && n > 0 && mono_s() < until) {
        bool acked = atomic_load(&s->outstanding) == 0;
        pthread_mutex_lock(&s->mu);
        bool caught_up = s->o.no_consumer || s->distinct >= atomic_load(&s->records_sent);
        pthread_mutex_unlock(&s->mu);
        if (acked && caught_up) break;
        double now = mono_s() - s->t0;
        if (now >= next_sample) {
            sample(s, &last_sent, &last_recv, &last_t);
            next_sample += 1;
        }
        nap_ms(5);
    }
    sample(s, &last_sent, &last_recv, &last_t);
    close_all(s, started);
    if (s->consumer) {
        tt_future *f = tt_client_disconnect(s->consumer);
        (void)tt_future_wait(f, 5000);
        tt_future_free(f);
        f = tt_client_close(s->consumer);
        (void)tt_future_wait(f, 10000);
        tt_future_free(f);
        tt_client_free(s->consumer);
        s->consumer = NULL;
    }
    tti_free(v.buf);
    atomic_store(&s->done, true);
    tt_future *rf = s->run_f;
    (void)tt_promise_complete(tti_future_promise(rf), result, 0,
                              result == TT_OK ? NULL : "the consumer could not start");
    return NULL;
}

tt_future *tt_sim_run(tt_sim *s) {
    if (!s) return tti_future_failed(NULL, TT_EINVAL, "no simulator");
    if (atomic_exchange(&s->run_called, true))
        return tti_future_failed(tti_runtime_fallback_strand(s->rt), TT_EBUSY, "already run");
    tt_future *f = tti_future_new(tti_runtime_fallback_strand(s->rt), 0);
    if (!f) return tti_future_enomem();
    s->run_f = f;
    if (pthread_create(&s->thread, NULL, drive, s) != 0) {
        (void)tt_promise_complete(tti_future_promise(f), TT_EINTERNAL, 0, "no thread");
        return f;
    }
    s->thread_started = true;
    return f;
}

void tt_sim_stop(tt_sim *s) {
    if (s) atomic_store(&s->stop, true);
}

tt_err tt_sim_progress_get(tt_sim *s, tt_sim_progress *p) {
    if (!s || !p || p->size < sizeof *p) return TT_EINVAL;
    memset(p, 0, sizeof *p);
    p->size = sizeof *p;
    p->target = s->o.consume_only ? 0 : s->o.devices;
    p->connected = atomic_load(&s->connected_now);
    p->connect_failed = atomic_load(&s->connect_failed);
    p->sent = atomic_load(&s->sent);
    for (int w = 0; w < TTI_SIM_ERR_WHATS; w++)
        for (int c = 0; c < TTI_SIM_ERR_CODES; c++) p->errors += atomic_load(&s->errs[w][c]);
    pthread_mutex_lock(&s->mu);
    p->elapsed_s = s->running ? mono_s() - s->t0 : 0;
    p->received = s->received;
    p->out_per_s = s->out_rate;
    p->in_per_s = s->in_rate;
    if (s->tl->nsteps == 0 && p->elapsed_s > 0) {     /* before the first one-second sample */
        p->out_per_s = (double)p->sent / p->elapsed_s;
        p->in_per_s = (double)s->received / p->elapsed_s;
    }
    p->p50_us = tt_hist_percentile(s->lat, 50);
    p->p99_us = tt_hist_percentile(s->lat, 99);
    pthread_mutex_unlock(&s->mu);
    p->draining = atomic_load(&s->draining);
    p->done = atomic_load(&s->done);
    return TT_OK;
}

tt_err tt_sim_report_get(tt_sim *s, tt_sim_report **out) {
    if (!out) return TT_EINVAL;
    *out = NULL;
    if (!s) return TT_EINVAL;
    tt_sim_report *r;
    tt_err rc = tti_sim_report_alloc(&r);
    if (rc != TT_OK) return rc;
    snprintf(r->profile, sizeof r->profile, "%s", s->prof->name);
    r->processes = 1;
    r->id_offset = s->o.id_offset;
    r->target = s->o.consume_only ? 0 : s->o.devices;
    r->connected = atomic_load(&s->connect_ok);
    r->connect_failed = atomic_load(&s->connect_failed);
    r->sent = atomic_load(&s->sent);
    r->publish_failed = atomic_load(&s->pub_failed);
    r->records_sent = atomic_load(&s->records_sent);
    r->started_ms = s->started_ms;
    r->qos = (uint32_t)s->o.qos;
    r->payload_size = s->o.payload_size;
    r->rate = s->o.rate;
    for (int w = 0; w < TTI_SIM_ERR_WHATS; w++)
        for (int c = 0; c < TTI_SIM_ERR_CODES; c++) {
            uint64_t k = atomic_load(&s->errs[w][c]);
            if (!k) continue;
            char kind[40];
            snprintf(kind, sizeof kind, "%s %s", tti_sim_err_what(w),
                     c == TTI_SIM_ERR_CODES - 1 ? "other" : tt_err_name((tt_err)-c));
            tti_sim_report_add_error(r, kind, k);
        }
    pthread_mutex_lock(&s->mu);
    r->connect_s = r->connected ? s->last_connack - s->first_connect : 0;
    r->duration_s = atomic_load(&s->draining) ? s->pub_end : (s->running ? mono_s() - s->t0 : 0);
    r->received = s->received;
    r->duplicates = s->dups;
    r->out_of_order = s->ooo;
    if (!s->o.no_consumer) {
        if (!s->o.consume_only) {
            r->lost = r->records_sent > s->distinct ? r->records_sent - s->distinct : 0;
        } else {
            /* Alone, the consumer sees losses as gaps below each device's highest. */
            for (size_t i = 0; i < s->rx_cap; i++)
                if (s->rx[i].used) r->lost += s->rx[i].max_seq + 1 - s->rx[i].distinct;
        }
    }
    tt_hist_merge(r->connect_us, s->conn_lat);
    tt_hist_merge(r->latency_us, s->lat);
    for (size_t i = 0; rc == TT_OK && i < s->tl->nsteps; i++)
        rc = tti_sim_report_step(r, s->tl->t_sent[i], s->tl->t_received[i], s->tl->t_connected[i]);
    pthread_mutex_unlock(&s->mu);
    if (rc != TT_OK) {
        tt_sim_report_free(r);
        return rc;
    }
    *out = r;
    return TT_OK;
}

void tt_sim_free(tt_sim *s) {
    if (!s) return;
    atomic_store(&s->stop, true);
    if (s->thread_started) pthread_join(s->thread, NULL);
    for (size_t i = 0; i < s->rx_cap; i++) tti_free(s->rx[i].bits);
    tti_free(s->rx);
    tt_hist_free(s->lat);
    tt_hist_free(s->conn_lat);
    tt_sim_report_free(s->tl);
    for (size_t i = 0; s->src && i < s->o.nsource_addrs; i++) tti_free(s->src[i]);
    tti_free(s->src);
    tti_free(s->devs);
    tti_free(s->url);
    tti_free(s->topic);
    tti_free(s->token);
    tti_free(s->consumer_id);
    tti_free(s->username);
    tti_free(s->password);
    tti_free(s->client_id);
    pthread_mutex_destroy(&s->mu);
    tti_free(s);
}
