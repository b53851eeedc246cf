/* The MQTT benchmark scenarios (see bench_common.h) with libmosquitto.
 *
 * Its fastest legitimate use: no mosquitto_loop_start() thread (that costs a
 * thread hand-off and a socketpair wake per publish), but the documented
 * external-loop API driven by one epoll loop in the bench thread:
 * mosquitto_socket(), mosquitto_loop_read() until the socket would block,
 * mosquitto_loop_write() when writable and mosquitto_want_write() to decide
 * when to wait for EPOLLOUT. Nagle is off (MOSQ_OPT_TCP_NODELAY), as tether's
 * transport does. Publishing pauses while the library has unwritten data, so
 * its queue stays bounded. */
#include <mosquitto.h>
#include <sys/epoll.h>

#include "bench_common.h"

typedef struct mconn {
    struct mosquitto *m;
    int fd;
    uint32_t interest;       /* events registered with epoll; 0 = not yet */
    int state;               /* 0 connecting, 1 connected, -1 failed */
    bool subscribed;
    long received;           /* PUBLISH in */
    long acked;              /* on_publish: QoS 0 written, QoS 1 PUBACK */
} mconn;

static bench_args A;
static int ep = -1;
static const char *failure;
static long n_connected, n_failed;     /* CONNACK accepted / never got one */

static void set_failed(mconn *c, const char *why) {
    if (c->state == 0) n_failed++;
    if (c->state >= 0) failure = why;
    c->state = -1;
}

static void on_connect(struct mosquitto *m, void *ud, int rc) {
    mconn *c = ud;
    (void)m;
    if (rc) {
        set_failed(c, mosquitto_connack_string(rc));
        return;
    }
    c->state = 1;
    n_connected++;
}

static void on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *granted) {
    mconn *c = ud;
    (void)m;
    (void)mid;
    (void)n;
    (void)granted;
    c->subscribed = true;
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg) {
    mconn *c = ud;
    (void)m;
    (void)msg;
    c->received++;
}

static void on_publish(struct mosquitto *m, void *ud, int mid) {
    mconn *c = ud;
    (void)m;
    (void)mid;
    c->acked++;
}

static void on_disconnect(struct mosquitto *m, void *ud, int rc) {
    mconn *c = ud;
    (void)m;
    if (rc) set_failed(c, "connection lost");
}

/* Keep epoll's interest in step with the library: EPOLLOUT only while it
 * has data it could not write. */
static void update_interest(mconn *c) {
    if (c->fd < 0) return;
    uint32_t want = EPOLLIN | (mosquitto_want_write(c->m) ? EPOLLOUT : 0u);
    if (want == c->interest) return;
    struct epoll_event ev = { .events = want, .data.ptr = c };
    (void)epoll_ctl(ep, c->interest ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev);
    c->interest = want;
}

/* Read every complete packet the socket holds. mosquitto_loop_read() handles
 * a few packets per call and leaves errno at EAGAIN once the socket is dry. */
static void read_all(mconn *c) {
    for (int i = 0; i < 1000000; i++) {
        errno = 0;
        int rc = mosquitto_loop_read(c->m, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            set_failed(c, mosquitto_strerror(rc));
            return;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    }
}

static void poll_once(int timeout_ms) {
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, timeout_ms);
    for (int i = 0; i < n; i++) {
        mconn *c = evs[i].data.ptr;
        if (c->state < 0 && !(evs[i].events & EPOLLIN)) continue;
        if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) read_all(c);
        if ((evs[i].events & EPOLLOUT) && c->state >= 0) {
            int rc = mosquitto_loop_write(c->m, 1);
            if (rc != MOSQ_ERR_SUCCESS) set_failed(c, mosquitto_strerror(rc));
        }
        if (c->state < 0 && c->fd >= 0) {
            (void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            c->fd = -1;
            continue;
        }
        update_interest(c);
    }
}

static int conn_open(mconn *c, long idx, const char *bind_addr) {
    char id[64];
    snprintf(id, sizeof id, "mb-%ld-%ld", (long)getpid(), idx);
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->m = mosquitto_new(id, true, c);
    if (!c->m) {
        failure = "mosquitto_new";
        return -1;
    }
    (void)mosquitto_int_option(c->m, MOSQ_OPT_TCP_NODELAY, 1);
    if (!strcmp(A.scenario, "qos1"))
        (void)mosquitto_int_option(c->m, MOSQ_OPT_SEND_MAXIMUM, (int)A.window);
    mosquitto_connect_callback_set(c->m, on_connect);
    mosquitto_subscribe_callback_set(c->m, on_subscribe);
    mosquitto_message_callback_set(c->m, on_message);
    mosquitto_publish_callback_set(c->m, on_publish);
    mosquitto_disconnect_callback_set(c->m, on_disconnect);
    int rc = mosquitto_connect_bind_async(c->m, A.host, A.port, 60, bind_addr);
    if (rc != MOSQ_ERR_SUCCESS) {
        failure = rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc);
        c->state = -1;
        return -1;
    }
    c->fd = mosquitto_socket(c->m);
    update_interest(c);
    return 0;
}

static void conn_close(mconn *c) {
    if (!c->m) return;
    if (c->state > 0) (void)mosquitto_disconnect(c->m);
    if (c->fd >= 0) (void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    mosquitto_destroy(c->m);
    c->m = NULL;
    c->fd = -1;
}

static bool wait_for(mconn *c, bool (*done)(const mconn *), double deadline) {
    while (!done(c) && c->state >= 0 && bench_now() < deadline) poll_once(100);
    return done(c);
}
static bool is_connected(const mconn *c) { return c->state == 1; }
static bool is_subscribed(const mconn *c) { return c->subscribed; }

static int open_ready(mconn *c, long idx, int sub_qos, double deadline) {
    if (conn_open(c, idx, NULL) != 0 || !wait_for(c, is_connected, deadline)) return -1;
    if (sub_qos < 0) return 0;
    if (mosquitto_subscribe(c->m, NULL, A.topic, sub_qos) != MOSQ_ERR_SUCCESS) return -1;
    update_interest(c);
    return wait_for(c, is_subscribed, deadline) ? 0 : -1;
}

static int run_qos0(const char *payload, double deadline) {
    mconn sub, pub;
    if (open_ready(&sub, 0, 0, deadline) != 0 || open_ready(&pub, 1, -1, deadline) != 0) return -1;
    long sent = 0, seen = 0;
    double t0 = bench_now(), last_rx = t0;
    while (sent < A.n && pub.state > 0 && bench_now() < deadline) {
        for (int k = 0; k < 64 && sent < A.n && !mosquitto_want_write(pub.m); k++) {
            if (mosquitto_publish(pub.m, NULL, A.topic, (int)A.payload, payload, 0, false) !=
                MOSQ_ERR_SUCCESS)
                break;
            sent++;
        }
        update_interest(&pub);
        poll_once(mosquitto_want_write(pub.m) ? 100 : 0);
        if (sub.received != seen) {
            seen = sub.received;
            last_rx = bench_now();
        }
    }
    /* The publisher is done: wait for the rest, until 1 s passes without any. */
    while (sub.received < sent && sub.state > 0 && bench_now() - last_rx < 1.0 &&
           bench_now() < deadline) {
        poll_once(50);
        if (sub.received != seen) {
            seen = sub.received;
            last_rx = bench_now();
        }
    }
    bench_report_rate(&A, "libmosquitto", sent, sub.received, last_rx - t0, bench_now() >= deadline);
    conn_close(&pub);
    conn_close(&sub);
    return 0;
}

static int run_pub(const char *payload, int qos, double deadline) {
    mconn pub;
    if (open_ready(&pub, 0, -1, deadline) != 0) return -1;
    long sent = 0;
    long window = qos ? A.window : A.n;
    double t0 = bench_now();
    while (pub.acked < A.n && pub.state > 0 && bench_now() < deadline) {
        while (sent < A.n && sent - pub.acked < window && !mosquitto_want_write(pub.m)) {
            if (mosquitto_publish(pub.m, NULL, A.topic, (int)A.payload, payload, qos, false) !=
                MOSQ_ERR_SUCCESS)
                break;
            sent++;
        }
        update_interest(&pub);
        poll_once(100);
    }
    double secs = bench_now() - t0;
    bench_report_rate(&A, "libmosquitto", sent, pub.acked, secs, bench_now() >= deadline);
    conn_close(&pub);
    return 0;
}

static int run_rtt(const char *payload, int qos, double deadline) {
    mconn c;
    if (open_ready(&c, 0, qos, deadline) != 0) return -1;
    double *us = calloc((size_t)A.n, sizeof *us);
    long n = 0;
    while (n < A.n && c.state > 0 && bench_now() < deadline) {
        long before = c.received;
        double t = bench_now();
        if (mosquitto_publish(c.m, NULL, A.topic, (int)A.payload, payload, qos, false) !=
            MOSQ_ERR_SUCCESS)
            break;
        update_interest(&c);
        while (c.received == before && c.state > 0 && bench_now() < deadline) poll_once(1000);
        if (c.received == before) break;
        us[n++] = (bench_now() - t) * 1e6;
    }
    bench_report_rtt(&A, "libmosquitto", us, n, bench_now() >= deadline);
    free(us);
    conn_close(&c);
    return 0;
}

static int run_conns(double deadline) {
    long limit = bench_raise_nofile(A.conns * 3 + 200);
    bench_size_fd_table(A.conns * 3 + 200);
    mconn *cs = calloc((size_t)A.conns, sizeof *cs);
    if (!cs) return -1;
    memset(cs, 0, (size_t)A.conns * sizeof *cs);   /* count the array before rss0 */
    long rss0 = bench_rss_kib();
    bench_conns_begin();
    long opened = 0;
    const char *why = NULL;
    char addr[32];
    double t0 = bench_now(), t1 = t0;
    /* At most A.handshakes handshakes under way. */
    while (n_connected + n_failed < A.conns && bench_now() < deadline) {
        while (!why && opened < A.conns && opened - n_connected - n_failed < A.handshakes) {
            const char *src = bench_source_addr(opened, A.conns, addr, sizeof addr);
            if (conn_open(&cs[opened], opened, src) != 0) {
                why = failure;
                mosquitto_destroy(cs[opened].m);
                cs[opened].m = NULL;
                break;
            }
            opened++;
        }
        if (why && n_connected + n_failed >= opened) break;
        long before = n_connected;
        poll_once(100);
        if (n_connected != before) t1 = bench_now();
        bench_conns_half(&A, n_connected);
        if (n_failed && !why) why = failure ? failure : "refused";
    }
    long ok = n_connected;
    long rss1 = bench_rss_kib();
    bench_report_conns(&A, "libmosquitto", ok, t1 - t0, rss0, rss1, why, limit);
    for (long i = 0; i < opened; i++) conn_close(&cs[i]);
    free(cs);
    return 0;
}

int main(int argc, char **argv) {
    bench_parse(&A, argc, argv);
    mosquitto_lib_init();
    ep = epoll_create1(EPOLL_CLOEXEC);
    char *payload = malloc((size_t)A.payload);
    if (ep < 0 || !payload) return 1;
    memset(payload, 'x', (size_t)A.payload);
    double deadline = bench_now() + A.limit_s;
    int rc;
    if (!strcmp(A.scenario, "qos0")) rc = run_qos0(payload, deadline);
    else if (!strcmp(A.scenario, "qos1")) rc = run_pub(payload, 1, deadline);
    else if (!strcmp(A.scenario, "pub0")) rc = run_pub(payload, 0, deadline);
    else if (!strcmp(A.scenario, "rtt0")) rc = run_rtt(payload, 0, deadline);
    else if (!strcmp(A.scenario, "rtt1")) rc = run_rtt(payload, 1, deadline);
    else rc = run_conns(deadline);
    if (rc != 0) fprintf(stderr, "mosq_bench: %s failed: %s\n", A.scenario, failure ? failure : "?");
    free(payload);
    close(ep);
    mosquitto_lib_cleanup();
    return rc ? 1 : 0;
}
