/* The MQTT benchmark scenarios (see bench_common.h) with Paho MQTT C's
 * asynchronous API (MQTTAsync). Paho runs its own send and receive threads;
 * the bench thread only queues calls and sleeps on a condition variable
 * until callbacks (onSuccess per publish, messageArrived) move its counters.
 * Publishes are bounded by a window of calls not yet completed (written, for
 * QoS 0; PUBACKed, for QoS 1), and maxInflight is set to that window.
 * Paho has no option for TCP_NODELAY or a source address. */
#include <MQTTAsync.h>
#include <pthread.h>
#include <stdatomic.h>

#include "bench_common.h"

typedef struct pconn {
    MQTTAsync c;
    atomic_int state;         /* 0 connecting, 1 connected, -1 failed */
    atomic_int subscribed;
    atomic_long received;
    atomic_long done;         /* publishes completed */
    atomic_long failed;
} pconn;

static bench_args A;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static atomic_int waiting;
static atomic_long n_connected, n_failed;
static const char *_Atomic failure;

static void notify(void) {
    if (atomic_load(&waiting)) {
        pthread_mutex_lock(&mu);
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
    }
}

/* Sleep until pred(arg) holds or the deadline passes (rechecked every 10 ms). */
static bool wait_until(bool (*pred)(const void *), const void *arg, double deadline) {
    pthread_mutex_lock(&mu);
    atomic_store(&waiting, 1);
    while (!pred(arg) && bench_now() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 10 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&cv, &mu, &ts);
    }
    atomic_store(&waiting, 0);
    pthread_mutex_unlock(&mu);
    return pred(arg);
}

static void on_conn_ok(void *ctx, MQTTAsync_successData *r) {
    pconn *p = ctx;
    (void)r;
    atomic_store(&p->state, 1);
    atomic_fetch_add(&n_connected, 1);
    notify();
}

static void on_conn_fail(void *ctx, MQTTAsync_failureData *r) {
    pconn *p = ctx;
    atomic_store(&failure, r && r->message ? "connect failed" : "connect refused");
    atomic_store(&p->state, -1);
    atomic_fetch_add(&n_failed, 1);
    notify();
}

static void on_sub_ok(void *ctx, MQTTAsync_successData *r) {
    pconn *p = ctx;
    (void)r;
    atomic_store(&p->subscribed, 1);
    notify();
}

static void on_sub_fail(void *ctx, MQTTAsync_failureData *r) {
    pconn *p = ctx;
    (void)r;
    atomic_store(&failure, "subscribe failed");
    atomic_store(&p->subscribed, -1);
    notify();
}

static void on_pub_ok(void *ctx, MQTTAsync_successData *r) {
    pconn *p = ctx;
    (void)r;
    atomic_fetch_add(&p->done, 1);
    notify();
}

static void on_pub_fail(void *ctx, MQTTAsync_failureData *r) {
    pconn *p = ctx;
    (void)r;
    atomic_fetch_add(&p->failed, 1);
    atomic_fetch_add(&p->done, 1);
    notify();
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m) {
    pconn *p = ctx;
    (void)topic_len;
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    atomic_fetch_add(&p->received, 1);
    notify();
    return 1;
}

static void on_lost(void *ctx, char *cause) {
    pconn *p = ctx;
    (void)cause;
    atomic_store(&failure, "connection lost");
    atomic_store(&p->state, -1);
    notify();
}

static int conn_start(pconn *p, long idx) {
    char uri[128], id[64];
    snprintf(uri, sizeof uri, "tcp://%s:%d", A.host, A.port);
    snprintf(id, sizeof id, "pb-%ld-%ld", (long)getpid(), idx);
    memset(p, 0, sizeof *p);
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    if (MQTTAsync_createWithOptions(&p->c, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) !=
        MQTTASYNC_SUCCESS) {
        atomic_store(&failure, "MQTTAsync_create");
        return -1;
    }
    (void)MQTTAsync_setCallbacks(p->c, p, on_lost, on_message, NULL);
    MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
    o.keepAliveInterval = 60;
    o.cleansession = 1;
    o.MQTTVersion = MQTTVERSION_3_1_1;
    o.maxInflight = (int)(A.window > 65535 ? 65535 : A.window);
    o.onSuccess = on_conn_ok;
    o.onFailure = on_conn_fail;
    o.context = p;
    if (MQTTAsync_connect(p->c, &o) != MQTTASYNC_SUCCESS) {
        atomic_store(&failure, "MQTTAsync_connect");
        return -1;
    }
    return 0;
}

static void conn_free(pconn *p) {
    if (!p->c) return;
    if (atomic_load(&p->state) == 1) {
        MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
        d.timeout = 1000;
        (void)MQTTAsync_disconnect(p->c, &d);
    }
    MQTTAsync_destroy(&p->c);
}

static bool connected_or_failed(const void *a) { return atomic_load(&((const pconn *)a)->state) != 0; }
static bool sub_answered(const void *a) { return atomic_load(&((const pconn *)a)->subscribed) != 0; }

static int open_ready(pconn *p, long idx, int sub_qos, double deadline) {
    if (conn_start(p, idx) != 0 || !wait_until(connected_or_failed, p, deadline) ||
        atomic_load(&p->state) != 1)
        return -1;
    if (sub_qos < 0) return 0;
    MQTTAsync_responseOptions r = MQTTAsync_responseOptions_initializer;
    r.onSuccess = on_sub_ok;
    r.onFailure = on_sub_fail;
    r.context = p;
    if (MQTTAsync_subscribe(p->c, A.topic, sub_qos, &r) != MQTTASYNC_SUCCESS) return -1;
    return wait_until(sub_answered, p, deadline) && atomic_load(&p->subscribed) == 1 ? 0 : -1;
}

typedef struct window_wait {
    const pconn *p;
    long limit;              /* done must reach this */
} window_wait;

static bool window_open(const void *a) {
    const window_wait *w = a;
    return atomic_load(&w->p->done) >= w->limit || atomic_load(&w->p->state) < 0;
}

/* Queue one publish; retries (briefly) while Paho refuses for a full buffer. */
static int publish(pconn *p, const char *payload, int qos, double deadline) {
    MQTTAsync_message m = MQTTAsync_message_initializer;
    m.payload = (void *)payload;
    m.payloadlen = (int)A.payload;
    m.qos = qos;
    MQTTAsync_responseOptions r = MQTTAsync_responseOptions_initializer;
    r.onSuccess = on_pub_ok;
    r.onFailure = on_pub_fail;
    r.context = p;
    for (;;) {
        int rc = MQTTAsync_sendMessage(p->c, A.topic, &m, &r);
        if (rc == MQTTASYNC_SUCCESS) return 0;
        if (rc != MQTTASYNC_MAX_BUFFERED_MESSAGES || bench_now() >= deadline) {
            atomic_store(&failure, "MQTTAsync_sendMessage");
            return -1;
        }
        bench_sleep_us(100);
    }
}

/* Publish n messages with at most `window` not yet completed. */
static long publish_n(pconn *p, const char *payload, int qos, long window, double deadline) {
    long sent = 0;
    while (sent < A.n && atomic_load(&p->state) == 1 && bench_now() < deadline) {
        if (sent - atomic_load(&p->done) >= window) {
            window_wait w = { p, sent - window + 1 };
            if (!wait_until(window_open, &w, deadline)) break;
            continue;
        }
        if (publish(p, payload, qos, deadline) != 0) break;
        sent++;
    }
    return sent;
}

typedef struct count_wait {
    const atomic_long *v;
    long target;
} count_wait;

static bool count_reached(const void *a) {
    const count_wait *w = a;
    return atomic_load(w->v) >= w->target;
}

static int run_qos0(const char *payload, double deadline) {
    pconn sub, pub;
    if (open_ready(&sub, 0, 0, deadline) != 0 || open_ready(&pub, 1, -1, deadline) != 0) return -1;
    double t0 = bench_now();
    long sent = publish_n(&pub, payload, 0, A.window, deadline);
    long seen = atomic_load(&sub.received);
    double last_rx = bench_now();
    while (seen < sent && bench_now() - last_rx < 1.0 && bench_now() < deadline) {
        count_wait w = { &sub.received, sent };
        double until = last_rx + 1.0 < deadline ? last_rx + 1.0 : deadline;
        (void)wait_until(count_reached, &w, bench_now() + 0.05 < until ? bench_now() + 0.05 : until);
        long now_seen = atomic_load(&sub.received);
        if (now_seen != seen) {
            seen = now_seen;
            last_rx = bench_now();
        }
    }
    bench_report_rate(&A, "paho", sent, seen, last_rx - t0, bench_now() >= deadline);
    conn_free(&pub);
    conn_free(&sub);
    return 0;
}

static int run_pub(const char *payload, int qos, double deadline) {
    pconn pub;
    if (open_ready(&pub, 0, -1, deadline) != 0) return -1;
    double t0 = bench_now();
    long sent = publish_n(&pub, payload, qos, A.window, deadline);
    count_wait w = { &pub.done, sent };
    (void)wait_until(count_reached, &w, deadline);
    double secs = bench_now() - t0;
    long ok = atomic_load(&pub.done) - atomic_load(&pub.failed);
    bench_report_rate(&A, "paho", sent, ok, secs, bench_now() >= deadline);
    conn_free(&pub);
    return 0;
}

static int run_rtt(const char *payload, int qos, double deadline) {
    pconn c;
    if (open_ready(&c, 0, qos, deadline) != 0) return -1;
    double *us = calloc((size_t)A.n, sizeof *us);
    long n = 0;
    /* Paho's round trips can take tens of ms: stop after 20 s of samples. */
    double stop = bench_now() + 20 < deadline ? bench_now() + 20 : deadline;
    while (us && n < A.n && atomic_load(&c.state) == 1 && bench_now() < stop) {
        long before = atomic_load(&c.received);
        double t = bench_now();
        if (publish(&c, payload, qos, deadline) != 0) break;
        count_wait w = { &c.received, before + 1 };
        if (!wait_until(count_reached, &w, deadline)) break;
        us[n++] = (bench_now() - t) * 1e6;
    }
    bench_report_rtt(&A, "paho", us, n, bench_now() >= deadline);
    free(us);
    conn_free(&c);
    return 0;
}

typedef struct conns_wait {
    long opened;
} conns_wait;

static bool handshakes_below(const void *a) {
    const conns_wait *w = a;
    return w->opened - atomic_load(&n_connected) - atomic_load(&n_failed) < A.handshakes;
}

static int run_conns(double deadline) {
    long limit = bench_raise_nofile(A.conns * 2 + 200);
    bench_size_fd_table(A.conns * 2 + 200);
    pconn *cs = calloc((size_t)A.conns, sizeof *cs);
    if (!cs) return -1;
    memset(cs, 0, (size_t)A.conns * sizeof *cs);
    long rss0 = bench_rss_kib();
    bench_conns_begin();
    const char *why = NULL;
    conns_wait w = { 0 };
    double t0 = bench_now();
    while (w.opened < A.conns && !atomic_load(&n_failed) && bench_now() < deadline) {
        bench_conns_half(&A, atomic_load(&n_connected));
        if (!handshakes_below(&w)) {
            (void)wait_until(handshakes_below, &w, deadline);
            continue;
        }
        if (conn_start(&cs[w.opened], w.opened) != 0) {
            why = atomic_load(&failure);
            if (cs[w.opened].c) MQTTAsync_destroy(&cs[w.opened].c);
            break;
        }
        w.opened++;
    }
    count_wait all = { &n_connected, w.opened };
    /* With every handshake started at once (-k conns, its best), no point has
     * half the clients made and connected and the rest not yet made: the
     * marginal figure is then n/a. */
    while (atomic_load(&n_connected) + atomic_load(&n_failed) < w.opened && bench_now() < deadline)
        (void)wait_until(count_reached, &all, bench_now() + 0.1);
    double secs = bench_now() - t0;
    long rss1 = bench_rss_kib();
    long ok = atomic_load(&n_connected);
    if (!why && atomic_load(&n_failed)) why = atomic_load(&failure);
    bench_report_conns(&A, "paho", ok, secs, rss0, rss1, why, limit);
    for (long i = 0; i < w.opened; i++) MQTTAsync_destroy(&cs[i].c);  /* closes, no DISCONNECT */
    free(cs);
    return 0;
}

int main(int argc, char **argv) {
    bench_parse(&A, argc, argv);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &ca);
    char *payload = malloc((size_t)A.payload);
    if (!payload) return 1;
    memset(payload, 'x', (size_t)A.payload);
    double deadline = bench_now() + A.limit_s;
    int rc;
    if (!strcmp(A.scenario, "qos0")) rc = run_qos0(payload, deadline);
    else if (!strcmp(A.scenario, "qos1")) rc = run_pub(payload, 1, deadline);
    else if (!strcmp(A.scenario, "pub0")) rc = run_pub(payload, 0, deadline);
    else if (!strcmp(A.scenario, "rtt0")) rc = run_rtt(payload, 0, deadline);
    else if (!strcmp(A.scenario, "rtt1")) rc = run_rtt(payload, 1, deadline);
    else rc = run_conns(deadline);
    if (rc != 0) {
        const char *f = atomic_load(&failure);
        fprintf(stderr, "paho_bench: %s failed: %s\n", A.scenario, f ? f : "?");
    }
    free(payload);
    return rc ? 1 : 0;
}
