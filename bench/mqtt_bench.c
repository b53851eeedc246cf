/* The MQTT benchmark scenarios (see peers/bench_common.h) with tether, the
 * way an application would use it:
 *   - QoS 0 publishes free their future at once; admission is bounded by
 *     max_queued_ops = the window, and a TT_EAGAIN (already-failed future)
 *     means "back off and retry", so nothing is dropped on our side;
 *   - QoS 1 keeps `window` publish futures in a ring: the bench thread waits
 *     on the oldest, frees every completed one behind it and refills (no
 *     callback thread in the loop: a waiter is woken by the completion);
 *   - round trips use pull mode: the bench thread publishes, then takes the
 *     message itself with tt_client_poll();
 *   - the QoS 0 subscriber counts in its message handler (a pool thread);
 *   - ertt0/ertt1 are the round trips the way the libmosquitto program does
 *     them: one thread does everything. The runtime is embedded in the
 *     bench thread's own libevent base, which the thread runs until the
 *     message is back (no loop or pool thread, no hand-off between threads);
 *   - econns opens connections the same way, on one thread;
 *   - urtt0/urtt1 are the pull-mode round trips on one thread: the runtime
 *     is embedded with wait_runs_base, so tt_client_poll() itself runs the
 *     loop, as umqtt's wait_msg() reads the socket. */
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <tether/mqtt.h>
#include <tether/tether.h>

#include "bench_common.h"

static bench_args A;
static tt_runtime *rt;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static atomic_int waiting;
static const char *_Atomic failure;

typedef struct tconn {
    tt_client *c;
    atomic_int state;         /* 0 connecting, 1 connected, -1 failed or lost */
    atomic_long received;
} tconn;

static atomic_long n_connected, n_failed;
/* conns: connections started, and the number of handshakes under way at
 * which the opener is woken to start more (0: wake it on every answer). */
static atomic_long n_opened, refill_at;

/* conns: connections started and not answered yet. */
static long handshakes(void) { return atomic_load(&n_opened) - atomic_load(&n_connected) - atomic_load(&n_failed); }

static void notify(void) {
    if (atomic_load(&waiting)) {
        pthread_mutex_lock(&mu);
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
    }
}

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

static void on_message(tt_client *c, const tt_msg *m, void *arg) {
    tconn *t = arg;
    (void)c;
    (void)m;
    atomic_fetch_add(&t->received, 1);
    notify();
}

static void on_event(tt_client *c, const tt_client_event *ev, void *arg) {
    tconn *t = arg;
    (void)c;
    if (ev->kind == TT_EV_DISCONNECTED && ev->err != TT_OK) {
        atomic_store(&failure, "connection lost");
        atomic_store(&t->state, -1);
        notify();
    }
}

static void on_connected(tt_future *f, void *arg) {
    tconn *t = arg;
    if (tt_future_result(f) == TT_OK) {
        atomic_store(&t->state, 1);
        atomic_fetch_add(&n_connected, 1);
    } else {
        atomic_store(&failure, tt_err_name(tt_future_result(f)));
        atomic_store(&t->state, -1);
        atomic_fetch_add(&n_failed, 1);
    }
    tt_future_free(f);
    long low = atomic_load(&refill_at);
    if (!low || handshakes() <= low) notify();
}

static int conn_start_in(tt_runtime *in, tconn *t, long idx, bool pull, const char *src) {
    char url[128], id[64];
    snprintf(url, sizeof url, "mqtt://%s:%d", A.host, A.port);
    snprintf(id, sizeof id, "tb-%ld-%ld", (long)getpid(), idx);
    memset(t, 0, sizeof *t);
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.url = url;
    o.client_id = id;
    o.keepalive_s = 60;
    o.no_reconnect = true;
    o.max_inflight = (uint16_t)(A.window > 65535 ? 65535 : A.window);
    o.max_queued_ops = (size_t)A.window;
    /* A full window of unwritten publishes must fit the byte bound, or some
     * calls fail with TT_EAGAIN (the peers queue without a bound). */
    o.offline_queue_bytes = (size_t)A.window * ((size_t)A.payload + 256u) + (1u << 20);
    o.pull = pull;
    o.on_message = pull ? NULL : on_message;
    o.on_message_arg = t;
    o.on_event = on_event;
    o.on_event_arg = t;
    o.source_addr = src;
    tt_err rc = tt_client_new(in, &o, &t->c);
    if (rc != TT_OK) {
        atomic_store(&failure, tt_err_name(rc));
        t->c = NULL;
        return -1;
    }
    rc = tt_future_then(tt_client_connect(t->c), on_connected, t);
    if (rc != TT_OK) {
        atomic_store(&failure, tt_err_name(rc));
        return -1;
    }
    return 0;
}

static int conn_start(tconn *t, long idx, bool pull, const char *src) { return conn_start_in(rt, t, idx, pull, src); }

static bool conn_answered(const void *a) { return atomic_load(&((const tconn *)a)->state) != 0; }

static int open_ready(tconn *t, long idx, bool pull, int sub_qos, double deadline) {
    if (conn_start(t, idx, pull, NULL) != 0 || !wait_until(conn_answered, t, deadline) ||
        atomic_load(&t->state) != 1)
        return -1;
    if (sub_qos < 0) return 0;
    tt_sub s = { .filter = A.topic, .qos = (tt_qos)sub_qos };
    tt_future *f = tt_client_subscribe(t->c, &s, 1, NULL);
    double left = deadline - bench_now();
    tt_err rc = tt_future_wait(f, left > 0 ? (int32_t)(left * 1000) : 0);
    tt_future_free(f);
    if (rc != TT_OK) atomic_store(&failure, tt_err_name(rc));
    return rc == TT_OK ? 0 : -1;
}

/* Disconnect, then close: once the close future completes no callback of
 * this client runs any more, so `t` may go. */
static void conn_free(tconn *t) {
    if (!t->c) return;
    if (atomic_load(&t->state) == 1) {
        tt_future *f = tt_client_disconnect(t->c);
        (void)tt_future_wait(f, 2000);
        tt_future_free(f);
    }
    tt_future *f = tt_client_close(t->c);
    (void)tt_future_wait(f, 5000);
    tt_future_free(f);
    tt_client_free(t->c);
    t->c = NULL;
}

/* One QoS 0 publish, retried while admission says the queue is full. */
static long eagain_retries;

static int publish0(tconn *t, const char *payload, double deadline) {
    for (;;) {
        tt_future *f = tt_client_pub(t->c, A.topic, payload, (size_t)A.payload, TT_QOS0, false);
        tt_err rc = tt_future_done(f) ? tt_future_result(f) : TT_OK;
        tt_future_free(f);
        if (rc == TT_OK) return 0;
        if (rc != TT_EAGAIN || bench_now() >= deadline) {
            atomic_store(&failure, tt_err_name(rc));
            return -1;
        }
        eagain_retries++;
        bench_sleep_us(100);
    }
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
    tconn sub, pub;
    if (open_ready(&sub, 0, false, 0, deadline) != 0 || open_ready(&pub, 1, false, -1, deadline) != 0)
        return -1;
    long sent = 0;
    double t0 = bench_now();
    while (sent < A.n && atomic_load(&pub.state) == 1 && bench_now() < deadline) {
        if (publish0(&pub, payload, deadline) != 0) break;
        sent++;
    }
    long seen = atomic_load(&sub.received);
    double last_rx = bench_now();
    while (seen < sent && bench_now() - last_rx < 1.0 && bench_now() < deadline) {
        count_wait w = { &sub.received, sent };
        (void)wait_until(count_reached, &w, bench_now() + 0.05);
        long now_seen = atomic_load(&sub.received);
        if (now_seen != seen) {
            seen = now_seen;
            last_rx = bench_now();
        }
    }
    bench_report_rate(&A, "tether", sent, seen, last_rx - t0, bench_now() >= deadline);
    conn_free(&pub);
    conn_free(&sub);
    return 0;
}

static int run_pub(const char *payload, int qos, double deadline) {
    tconn pub;
    if (open_ready(&pub, 0, false, -1, deadline) != 0) return -1;
    long sent = 0, ok;
    double t0 = bench_now();
    if (qos == 0) {
        while (sent < A.n && atomic_load(&pub.state) == 1 && bench_now() < deadline) {
            if (publish0(&pub, payload, deadline) != 0) break;
            sent++;
        }
        ok = sent;
    } else {
        /* The futures of the window in a ring: wait for the oldest, then take
         * every completed one behind it and refill. */
        tt_future **ring = calloc((size_t)A.window, sizeof *ring);
        long head = 0, failed = 0;
        while (ring && head < A.n && atomic_load(&pub.state) == 1 && bench_now() < deadline) {
            while (sent < A.n && sent - head < A.window) {
                ring[sent % A.window] = tt_client_pub(pub.c, A.topic, payload, (size_t)A.payload, TT_QOS1, false);
                sent++;
            }
            double left = deadline - bench_now();
            (void)tt_future_wait(ring[head % A.window], left > 0 ? (int32_t)(left * 1000) : 0);
            while (head < sent && tt_future_done(ring[head % A.window])) {
                if (tt_future_result(ring[head % A.window]) != TT_OK) failed++;
                tt_future_free(ring[head % A.window]);
                head++;
            }
        }
        for (; ring && head < sent; head++) {          /* what is left after a timeout or a loss */
            tt_future *f = ring[head % A.window];
            if (tt_future_wait(f, 2000) != TT_OK) failed++;
            tt_future_free(f);
        }
        free(ring);
        ok = head - failed;
    }
    double secs = bench_now() - t0;
    conn_free(&pub);                            /* DISCONNECT goes after the queued publishes */
    if (qos == 0) secs = bench_now() - t0;      /* so for QoS 0 this is when all were written */
    bench_report_rate(&A, "tether", sent, ok, secs, bench_now() >= deadline);
    if (eagain_retries) fprintf(stderr, "mqtt_bench: %ld TT_EAGAIN retries\n", eagain_retries);
    return 0;
}

/* Pull-mode round trips: publish, then take the message back with
 * tt_client_poll(); at most A.n samples into `us`, for at most 20 s, while
 * `up` (if given) says the connection is up. Returns the samples taken. */
static long pull_round_trips(tt_client *c, const char *payload, int qos, double *us, double deadline,
                             const atomic_int *up) {
    long n = 0;
    double stop = bench_now() + 20 < deadline ? bench_now() + 20 : deadline;
    while (n < A.n && (!up || atomic_load(up) == 1) && bench_now() < stop) {
        double t = bench_now();
        tt_future_free(tt_client_pub(c, A.topic, payload, (size_t)A.payload, (tt_qos)qos, false));
        tt_msg *m = NULL;
        tt_err rc = tt_client_poll(c, 2000, &m);
        if (rc != TT_OK) {
            atomic_store(&failure, tt_err_name(rc));
            break;
        }
        us[n++] = (bench_now() - t) * 1e6;
        tt_msg_unref(m);
    }
    return n;
}

static int run_rtt(const char *payload, int qos, double deadline) {
    tconn c;
    if (open_ready(&c, 0, true, qos, deadline) != 0) return -1;
    double *us = calloc((size_t)A.n, sizeof *us);
    long n = 0;
    if (us) n = pull_round_trips(c.c, payload, qos, us, deadline, &c.state);
    bench_report_rtt(&A, "tether", us, n, bench_now() >= deadline);
    free(us);
    conn_free(&c);
    return 0;
}

/* ---- Round trips on the caller's own loop ---------------------------------- */

typedef struct eloop {
    struct event_base *base;
    long got;
} eloop;

static void e_on_message(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    (void)m;
    ((eloop *)arg)->got++;
}

/* Run the base until f completes; its result. */
static tt_err e_wait(eloop *e, tt_future *f, double deadline) {
    while (!tt_future_done(f) && bench_now() < deadline) event_base_loop(e->base, EVLOOP_ONCE);
    tt_err rc = tt_future_done(f) ? tt_future_result(f) : TT_ETIMEDOUT;
    tt_future_free(f);
    return rc;
}

/* Options of the one client of a one-thread round-trip scenario. */
static tt_client_opts one_thread_opts(char *url, size_t ulen, char *id, size_t ilen, char tag) {
    snprintf(url, ulen, "mqtt://%s:%d", A.host, A.port);
    snprintf(id, ilen, "tb-%ld-%c", (long)getpid(), tag);
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.url = url;
    o.client_id = id;
    o.keepalive_s = 60;
    o.no_reconnect = true;
    return o;
}

static int run_rtt_embedded(const char *payload, int qos, double deadline) {
    eloop e = { event_base_new(), 0 };
    if (!e.base) return -1;
    tt_runtime_opts ro = TT_OPTS_INIT(tt_runtime_opts);
    ro.base = e.base;
    tt_runtime *ert = NULL;
    if (tt_runtime_new(&ert, &ro) != TT_OK) {
        event_base_free(e.base);
        return -1;
    }
    char url[128], id[64];
    tt_client_opts o = one_thread_opts(url, sizeof url, id, sizeof id, 'e');
    o.on_message = e_on_message;
    o.on_message_arg = &e;
    tt_client *c = NULL;
    double *us = calloc((size_t)A.n, sizeof *us);
    long n = 0;
    tt_sub sb = { .filter = A.topic, .qos = (tt_qos)qos };
    if (us && tt_client_new(ert, &o, &c) == TT_OK && e_wait(&e, tt_client_connect(c), deadline) == TT_OK &&
        e_wait(&e, tt_client_subscribe(c, &sb, 1, NULL), deadline) == TT_OK) {
        double stop = bench_now() + 20 < deadline ? bench_now() + 20 : deadline;
        while (n < A.n && bench_now() < stop) {
            long want = e.got + 1;
            double t = bench_now();
            tt_future_free(tt_client_pub(c, A.topic, payload, (size_t)A.payload, (tt_qos)qos, false));
            while (e.got < want && bench_now() < stop) event_base_loop(e.base, EVLOOP_ONCE);
            if (e.got < want) break;
            us[n++] = (bench_now() - t) * 1e6;
        }
        bench_report_rtt(&A, "tether", us, n, bench_now() >= deadline);
        (void)e_wait(&e, tt_client_disconnect(c), bench_now() + 2);
    } else {
        atomic_store(&failure, "embedded client did not come up");
    }
    free(us);
    if (c) {
        tt_future *f = tt_client_close(c);
        tt_future_free(f);
        tt_client_free(c);
    }
    tt_runtime_free(ert);                       /* runs the base until the work drains */
    event_base_free(e.base);
    return n > 0 ? 0 : -1;
}

static tt_err wait_free(tt_future *f, int32_t ms) {
    tt_err rc = tt_future_wait(f, ms);
    tt_future_free(f);
    return rc;
}

/* urtt0/urtt1: pull mode on one thread, the way umqtt's wait_msg() works:
 * the runtime is embedded with wait_runs_base, so this thread's waits and
 * polls run the loop themselves (no loop or pool thread). */
static int run_rtt_one_thread(const char *payload, int qos, double deadline) {
    struct event_base *base = event_base_new();
    tt_runtime *ort = NULL;
    tt_runtime_opts ro = TT_OPTS_INIT(tt_runtime_opts);
    ro.base = base;
    ro.wait_runs_base = true;
    if (!base || tt_runtime_new(&ort, &ro) != TT_OK) {
        if (base) event_base_free(base);
        return -1;
    }
    char url[128], id[64];
    tt_client_opts o = one_thread_opts(url, sizeof url, id, sizeof id, 'u');
    o.pull = true;
    tt_client *c = NULL;
    double *us = calloc((size_t)A.n, sizeof *us);
    long n = 0;
    tt_sub sb = { .filter = A.topic, .qos = (tt_qos)qos };
    int32_t ms = (int32_t)((deadline - bench_now()) * 1000);
    if (us && tt_client_new(ort, &o, &c) == TT_OK && wait_free(tt_client_connect(c), ms) == TT_OK &&
        wait_free(tt_client_subscribe(c, &sb, 1, NULL), ms) == TT_OK) {
        n = pull_round_trips(c, payload, qos, us, deadline, NULL);
        bench_report_rtt(&A, "tether", us, n, bench_now() >= deadline);
        (void)wait_free(tt_client_disconnect(c), 2000);
    } else {
        atomic_store(&failure, "one-thread client did not come up");
    }
    free(us);
    tt_client_free(c);
    tt_runtime_free(ort);
    event_base_free(base);
    return n > 0 ? 0 : -1;
}

static bool refill_due(const void *a) {
    (void)a;
    return handshakes() <= atomic_load(&refill_at) || atomic_load(&n_failed);
}

/* conns: descriptors the connections need, with the open-file limit raised
 * to match (one socket per connection, and a margin). */
static long conns_fds(void) {
    long want = A.conns + 200, limit = bench_raise_nofile(want);
    return limit > 0 && limit < want ? limit : want;
}

static int run_conns(double deadline) {
    long limit = bench_raise_nofile(A.conns + 200);
    tconn *cs = calloc((size_t)A.conns, sizeof *cs);
    if (!cs) return -1;
    memset(cs, 0, (size_t)A.conns * sizeof *cs);
    long rss0 = bench_rss_kib();
    bench_conns_begin();
    const char *why = NULL;
    char addr[32];
    /* At most A.handshakes under way; the opener sleeps until half of them
     * have answered, then tops up (one wake-up per batch, as the
     * libmosquitto program's poll returns with a batch of answers). */
    atomic_store(&refill_at, A.handshakes / 2 > 0 ? A.handshakes / 2 : 1);
    long opened = 0;
    double t0 = bench_now();
    while (opened < A.conns && !atomic_load(&n_failed) && bench_now() < deadline) {
        bench_conns_half(&A, atomic_load(&n_connected));
        if (handshakes() >= A.handshakes) {
            (void)wait_until(refill_due, NULL, deadline);
            continue;
        }
        const char *src = bench_source_addr(opened, A.conns, addr, sizeof addr);
        if (conn_start(&cs[opened], opened, false, src) != 0) {
            why = atomic_load(&failure);
            if (cs[opened].c) tt_client_free(cs[opened].c);
            cs[opened].c = NULL;
            break;
        }
        opened++;
        atomic_store(&n_opened, opened);
    }
    atomic_store(&refill_at, 0);
    count_wait all = { &n_connected, opened };
    while (atomic_load(&n_connected) + atomic_load(&n_failed) < opened && bench_now() < deadline) {
        bench_conns_half(&A, atomic_load(&n_connected));
        (void)wait_until(count_reached, &all, bench_now() + 0.1);
    }
    double secs = bench_now() - t0;
    long rss1 = bench_rss_kib();
    long ok = atomic_load(&n_connected);
    if (!why && atomic_load(&n_failed)) why = atomic_load(&failure);
    bench_report_conns(&A, "tether", ok, secs, rss0, rss1, why, limit);
    /* Close them all, then wait: their callbacks point into cs. */
    tt_future **closing = calloc((size_t)opened + 1, sizeof *closing);
    for (long i = 0; closing && i < opened; i++) closing[i] = tt_client_close(cs[i].c);
    for (long i = 0; closing && i < opened; i++) {
        (void)tt_future_wait(closing[i], 5000);
        tt_future_free(closing[i]);
    }
    free(closing);
    for (long i = 0; i < opened; i++) tt_client_free(cs[i].c);
    free(cs);
    return 0;
}

/* econns: the conns scenario the way the libmosquitto program does it, one
 * thread doing everything: tether embedded in this thread's libevent base,
 * which the thread runs, opening more connections whenever answers came
 * (no loop or pool thread, no hand-off between threads). */
static int run_conns_embedded(double deadline) {
    long limit = bench_raise_nofile(A.conns + 200);
    struct event_base *base = event_base_new();
    tconn *cs = calloc((size_t)A.conns, sizeof *cs);
    tt_runtime *ert = NULL;
    tt_runtime_opts ro = TT_OPTS_INIT(tt_runtime_opts);
    ro.base = base;
    ro.reserve_fds = (uint32_t)conns_fds();
    if (!base || !cs || tt_runtime_new(&ert, &ro) != TT_OK) {
        free(cs);
        if (base) event_base_free(base);
        return -1;
    }
    memset(cs, 0, (size_t)A.conns * sizeof *cs);
    long rss0 = bench_rss_kib();
    bench_conns_begin();
    const char *why = NULL;
    char addr[32];
    long opened = 0;
    double t0 = bench_now();
    while ((opened < A.conns || handshakes() > 0) && !atomic_load(&n_failed) && bench_now() < deadline) {
        while (opened < A.conns && handshakes() < A.handshakes) {
            const char *src = bench_source_addr(opened, A.conns, addr, sizeof addr);
            if (conn_start_in(ert, &cs[opened], opened, false, src) != 0) {
                why = atomic_load(&failure);
                if (cs[opened].c) tt_client_free(cs[opened].c);
                cs[opened].c = NULL;
                break;
            }
            atomic_store(&n_opened, ++opened);
        }
        if (why) break;
        bench_conns_half(&A, atomic_load(&n_connected));
        event_base_loop(base, EVLOOP_ONCE);
    }
    double secs = bench_now() - t0;
    long rss1 = bench_rss_kib();
    long ok = atomic_load(&n_connected);
    if (!why && atomic_load(&n_failed)) why = atomic_load(&failure);
    bench_report_conns(&A, "tether", ok, secs, rss0, rss1, why, limit);
    for (long i = 0; i < opened; i++) {
        tt_future *f = tt_client_close(cs[i].c);
        while (!tt_future_done(f) && bench_now() < deadline + 10) event_base_loop(base, EVLOOP_ONCE);
        tt_future_free(f);
        tt_client_free(cs[i].c);
    }
    free(cs);
    tt_runtime_free(ert);                       /* runs the base until the work drains */
    event_base_free(base);
    return ok == A.conns ? 0 : -1;
}

int main(int argc, char **argv) {
    bench_parse(&A, argc, argv);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &ca);
    /* Before any base is made: libevent's locking. */
    if (tt_init() != TT_OK) return 1;
    /* The e* and u* scenarios run on this thread alone: no threaded runtime. */
    if (A.scenario[0] != 'e' && A.scenario[0] != 'u') {
        tt_runtime_opts ro = TT_OPTS_INIT(tt_runtime_opts);
        if (getenv("TT_BENCH_LOOPS")) ro.loop_threads = (uint32_t)atoi(getenv("TT_BENCH_LOOPS"));
        if (!strcmp(A.scenario, "conns")) ro.reserve_fds = (uint32_t)conns_fds();
        tt_err err = tt_runtime_new(&rt, &ro);
        if (err != TT_OK) {
            fprintf(stderr, "mqtt_bench: runtime: %s\n", tt_strerror(err));
            return 1;
        }
    }
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
    else if (!strcmp(A.scenario, "ertt0")) rc = run_rtt_embedded(payload, 0, deadline);
    else if (!strcmp(A.scenario, "ertt1")) rc = run_rtt_embedded(payload, 1, deadline);
    else if (!strcmp(A.scenario, "urtt0")) rc = run_rtt_one_thread(payload, 0, deadline);
    else if (!strcmp(A.scenario, "urtt1")) rc = run_rtt_one_thread(payload, 1, deadline);
    else if (!strcmp(A.scenario, "econns")) rc = run_conns_embedded(deadline);
    else rc = run_conns(deadline);
    if (rc != 0) {
        const char *f = atomic_load(&failure);
        fprintf(stderr, "mqtt_bench: %s failed: %s\n", A.scenario, f ? f : "?");
    }
    tt_runtime_free(rt);
    free(payload);
    return rc ? 1 : 0;
}
