/* The MQTT client through real proxies on loopback: microsocks (SOCKS5, with
 * and without a user name and password) and tinyproxy (HTTP CONNECT, with and
 * without Basic authorization), in front of a private mosquitto. Plain MQTT
 * and TLS inside the tunnel; refusals come back as specific errors. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <tether/tether.h>
#include <tether/mqtt.h>
#include <unistd.h>

#include "broker.h"
#include "certs.h"
#include "tt_test.h"

#define WAIT_MS 10000

static tt_runtime *g_rt;
static tt_broker g_broker;
static tt_certs g_certs;

/* A proxy process on a free port; 0 once it accepts connections. */
typedef struct daemon {
    pid_t pid;
    int port;
    char log[300];
} daemon_t;

static int daemon_start(daemon_t *d, char *const argv[]) {
    d->pid = tt_broker_spawn(argv, d->log);
    if (d->pid <= 0) return -1;
    for (int i = 0; i < 500; i++) {
        if (tt_broker_port_accepts(d->port)) return 0;
        usleep(10000);
    }
    fprintf(stderr, "  %s did not start on port %d (log %s)\n", argv[0], d->port, d->log);
    return -1;
}

static void daemon_stop(daemon_t *d) {
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        (void)tt_broker_waitpid(d->pid, 5000);
    }
    d->pid = 0;
}

static int socks_start(daemon_t *d, const char *user, const char *pass) {
    char prog[256], port[8];
    if (!tt_broker_find_program("microsocks", prog, sizeof prog)) {
        fprintf(stderr, "  microsocks not found: install the Debian package microsocks\n");
        return -1;
    }
    d->port = tt_broker_free_port();
    snprintf(port, sizeof port, "%d", d->port);
    snprintf(d->log, sizeof d->log, "%s/microsocks-%d.log", g_broker.dir, d->port);
    char *argv[] = { prog, "-i", "127.0.0.1", "-p", port, user ? "-u" : NULL, (char *)user, "-P", (char *)pass, NULL };
    return daemon_start(d, argv);
}

static int http_proxy_start(daemon_t *d, const char *user, const char *pass) {
    char prog[256], conf[300];
    if (!tt_broker_find_program("tinyproxy", prog, sizeof prog)) {
        fprintf(stderr, "  tinyproxy not found: install the Debian package tinyproxy\n");
        return -1;
    }
    d->port = tt_broker_free_port();
    snprintf(d->log, sizeof d->log, "%s/tinyproxy-%d.out", g_broker.dir, d->port);
    snprintf(conf, sizeof conf, "%s/tinyproxy-%d.conf", g_broker.dir, d->port);
    FILE *f = fopen(conf, "w");
    if (!f) return -1;
    fprintf(f, "Port %d\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\nMaxClients 64\n"
               "LogFile \"%s/tinyproxy-%d.log\"\nLogLevel Info\n",
            d->port, g_broker.dir, d->port);
    if (getuid() == 0) fprintf(f, "User nobody\nGroup nogroup\n");
    if (user) fprintf(f, "BasicAuth %s %s\n", user, pass);
    fclose(f);
    char *argv[] = { prog, "-d", "-c", conf, NULL };
    return daemon_start(d, argv);
}

/* Connects through `proxy` to `url`; returns the connect result and the reason. */
static tt_err try_connect(const char *url, const char *proxy, const tt_tls_opts *tls, char *why, size_t cap,
                          tt_client **keep) {
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.url = url;
    o.proxy = proxy;
    o.tls = tls;
    o.no_reconnect = true;
    o.connect_timeout_ms = 5000;
    tt_client *c = NULL;
    tt_err rc = tt_client_new(g_rt, &o, &c);
    if (rc != TT_OK) {
        snprintf(why, cap, "tt_client_new: %s", tt_strerror(rc));
        return rc;
    }
    tt_future *f = tt_client_connect(c);
    rc = tt_future_wait(f, WAIT_MS);
    const char *d = "";
    tt_future_detail(f, &d);
    snprintf(why, cap, "%s", d ? d : "");
    tt_future_free(f);
    if (rc == TT_OK && keep) *keep = c;
    else tt_client_free(c);
    return rc;
}

static atomic_int g_got;
static void on_msg(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    (void)arg;
    size_t n;
    const char *p = tt_msg_payload(m, &n);
    if (n == 7 && !memcmp(p, "tunnel!", 7)) atomic_fetch_add(&g_got, 1);
}

/* A message goes out and comes back through the tunnel. */
static bool round_trip(tt_client *c, const char *topic) {
    int before = atomic_load(&g_got);
    tt_sub s = { .filter = topic, .qos = TT_QOS1, .handler = on_msg };
    tt_future *f = tt_client_subscribe(c, &s, 1, NULL);
    bool ok = tt_future_wait(f, WAIT_MS) == TT_OK;
    tt_future_free(f);
    f = tt_client_pub(c, topic, "tunnel!", 7, TT_QOS1, false);
    ok = ok && tt_future_wait(f, WAIT_MS) == TT_OK;
    tt_future_free(f);
    for (int i = 0; ok && i < WAIT_MS / 5 && atomic_load(&g_got) == before; i++) usleep(5000);
    return ok && atomic_load(&g_got) > before;
}

static void setup(void) {
    tt_runtime_opts ro = TT_OPTS_INIT(tt_runtime_opts);
    ro.loop_threads = 1;
    if (tt_runtime_new(&g_rt, &ro) != TT_OK) abort();
}

static void test_socks5(void) {
    setup();
    TT_REQUIRE(tt_broker_start(&g_broker, NULL) == 0);
    char url[80], proxy[160], why[200];
    snprintf(url, sizeof url, "mqtt://localhost:%d", g_broker.port);   /* the proxy resolves it */

    daemon_t open_px = { 0 }, auth_px = { 0 };
    TT_REQUIRE(socks_start(&open_px, NULL, NULL) == 0);
    snprintf(proxy, sizeof proxy, "socks5://127.0.0.1:%d", open_px.port);
    tt_client *c = NULL;
    TT_CHECK_EQ_INT(try_connect(url, proxy, NULL, why, sizeof why, &c), TT_OK);
    TT_CHECK(c && round_trip(c, "px/socks"));
    tt_client_free(c);

    /* The broker's port closed: the proxy says so, and so do we. */
    char dead[80];
    snprintf(dead, sizeof dead, "mqtt://127.0.0.1:%d", tt_broker_free_port());
    TT_CHECK_EQ_INT(try_connect(dead, proxy, NULL, why, sizeof why, NULL), TT_ECONNREFUSED);
    printf("  closed port behind SOCKS5: %s\n", why);
    TT_CHECK(strstr(why, "SOCKS5") != NULL);

    /* With a user name and password (percent-escaped in the URL). */
    TT_REQUIRE(socks_start(&auth_px, "dev-1", "p@ss:word") == 0);
    snprintf(proxy, sizeof proxy, "socks5://dev-1:p%%40ss%%3Aword@127.0.0.1:%d", auth_px.port);
    c = NULL;
    TT_CHECK_EQ_INT(try_connect(url, proxy, NULL, why, sizeof why, &c), TT_OK);
    TT_CHECK(c && round_trip(c, "px/socks-auth"));
    tt_client_free(c);
    snprintf(proxy, sizeof proxy, "socks5://dev-1:nope@127.0.0.1:%d", auth_px.port);
    TT_CHECK_EQ_INT(try_connect(url, proxy, NULL, why, sizeof why, NULL), TT_EAUTH);
    printf("  wrong SOCKS5 password: %s\n", why);
    snprintf(proxy, sizeof proxy, "socks5://127.0.0.1:%d", auth_px.port);
    TT_CHECK_EQ_INT(try_connect(url, proxy, NULL, why, sizeof why, NULL), TT_EAUTH);
    printf("  no SOCKS5 credentials: %s\n", why);

    /* A proxy that is not there. */
    snprintf(proxy, sizeof proxy, "socks5://127.0.0.1:%d", tt_broker_free_port());
    TT_CHECK_EQ_INT(try_connect(url, proxy, NULL, why, sizeof why, NULL), TT_ECONNREFUSED);
    TT_CHECK(strstr(why, "proxy") != NULL);
    /* Not a proxy URL. */
    TT_CHECK_EQ_INT(try_connect(url, "ftp://127.0.0.1:1", NULL, why, sizeof why, NULL), TT_EINVAL);

    daemon_stop(&open_px);
    daemon_stop(&auth_px);
    tt_runtime_free(g_rt);
    tt_broker_free(&g_broker);
}

static void test_http_connect(void) {
    setup();
    TT_REQUIRE(tt_broker_start(&g_broker, NULL) == 0);
    char url[80], proxy[160], why[200];
    snprintf(url, sizeof url, "mqtt://localhost:%d", g_broker.port);
    daemon_t open_px = { 0 }, auth_px = { 0 };
    TT_REQUIRE(http_proxy_start(&open_px, NULL, NULL) == 0);
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", open_px.port);
    tt_client *c = NULL;
    TT_CHECK_EQ_INT(try_connect(url, proxy, NULL, why, sizeof why, &c), TT_OK);
    TT_CHECK(c && round_trip(c, "px/http"));
    tt_client_free(c);

    TT_REQUIRE(http_proxy_start(&auth_px, "gw", "s3cret") == 0);
    snprintf(proxy, sizeof proxy, "http://gw:s3cret@127.0.0.1:%d", auth_px.port);
    c = NULL;
    TT_CHECK_EQ_INT(try_connect(url, proxy, NULL, why, sizeof why, &c), TT_OK);
    TT_CHECK(c && round_trip(c, "px/http-auth"));
    tt_client_free(c);
    snprintf(proxy, sizeof proxy, "http://gw:wrong@127.0.0.1:%d", auth_px.port);
    TT_CHECK_EQ_INT(try_connect(url, proxy, NULL, why, sizeof why, NULL), TT_EAUTH);
    printf("  wrong HTTP proxy password: %s\n", why);
    TT_CHECK(strstr(why, "refused the tunnel") != NULL);

    /* Something that is not an HTTP proxy (the broker itself) is a protocol error, not a hang. */
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", g_broker.port);
    tt_err rc = try_connect(url, proxy, NULL, why, sizeof why, NULL);
    printf("  broker as HTTP proxy: %s: %s\n", tt_err_name(rc), why);
    TT_CHECK(rc == TT_EPROTO || rc == TT_ECONNRESET);

    daemon_stop(&open_px);
    daemon_stop(&auth_px);
    tt_runtime_free(g_rt);
    tt_broker_free(&g_broker);
}

/* TLS runs inside the tunnel and checks the broker's name, not the proxy's. */
static void test_tls_through_proxies(void) {
    setup();
    TT_REQUIRE(tt_certs_make(&g_certs) == 0);
    tt_broker_opts bo = { .tls_cert = g_certs.server_cert, .tls_key = g_certs.server_key, .tls_ca = g_certs.ca };
    TT_REQUIRE(tt_broker_start(&g_broker, &bo) == 0);
    daemon_t s = { 0 }, h = { 0 };
    TT_REQUIRE(socks_start(&s, NULL, NULL) == 0);
    TT_REQUIRE(http_proxy_start(&h, NULL, NULL) == 0);
    tt_tls_opts tls = TT_OPTS_INIT(tt_tls_opts);
    tls.ca_file = g_certs.ca;
    char url[80], proxy[160], why[200];
    snprintf(url, sizeof url, "mqtts://localhost:%d", g_broker.tls_port);
    for (int i = 0; i < 2; i++) {
        snprintf(proxy, sizeof proxy, i ? "http://127.0.0.1:%d" : "socks5://127.0.0.1:%d", i ? h.port : s.port);
        tt_client *c = NULL;
        TT_CHECK_EQ_INT(try_connect(url, proxy, &tls, why, sizeof why, &c), TT_OK);
        TT_CHECK(c && round_trip(c, i ? "px/tls-http" : "px/tls-socks"));
        tt_client_free(c);
        /* The wrong CA is still caught inside the tunnel. */
        tt_tls_opts wrong = tls;
        wrong.ca_file = g_certs.wrong_ca;
        TT_CHECK_EQ_INT(try_connect(url, proxy, &wrong, why, sizeof why, NULL), TT_ETLS);
    }
    daemon_stop(&s);
    daemon_stop(&h);
    tt_runtime_free(g_rt);
    tt_broker_free(&g_broker);
    tt_certs_remove(&g_certs);
}

TT_TEST_LIST = {
    { "socks5", test_socks5 },
    { "http_connect", test_http_connect },
    { "tls_through_proxies", test_tls_through_proxies },
    { NULL, NULL },
};
