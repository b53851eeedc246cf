/* MQTT over TLS against mosquitto with certificates made at test time:
 * verification on by default, and each way it fails says why. */
#include <pthread.h>
#include <stdatomic.h>
#include <tether/mqtt.h>
#include <tether/tether.h>
#include <unistd.h>

#include "broker.h"
#include "certs.h"
#include "tt_test.h"

#define WAIT_MS 10000

static tt_certs g_certs;

typedef struct got {
    atomic_int n;
    char payload[64];
} got;

static void on_msg(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    got *g = arg;
    size_t l;
    const char *p = tt_msg_payload(m, &l);
    snprintf(g->payload, sizeof g->payload, "%.*s", (int)l, p);
    atomic_fetch_add(&g->n, 1);
}

/* Connect to `host`:tls_port of a broker serving cert/key; returns the
 * connect result and copies the reason. */
static tt_err try_connect(tt_runtime *rt, const char *cert, const char *key, const char *host,
                          const tt_tls_opts *tls, char *why, size_t whylen, bool pubsub) {
    tt_broker_opts bo = { .tls_cert = cert, .tls_key = key, .tls_ca = g_certs.ca };
    tt_broker b;
    if (tt_broker_start(&b, &bo) != 0) return TT_EINTERNAL;
    char url[128];
    snprintf(url, sizeof url, "mqtts://%s:%d", host, b.tls_port);
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.url = url;
    o.tls = tls;
    o.no_reconnect = true;
    o.version = TT_MQTT_5;
    tt_client *c = NULL;
    tt_err rc = tt_client_new(rt, &o, &c);
    if (rc == TT_OK) {
        tt_future *f = tt_client_connect(c);
        rc = tt_future_wait(f, WAIT_MS);
        const char *w;
        tt_future_detail(f, &w);
        snprintf(why, whylen, "%s", w);
        tt_future_free(f);
        if (rc == TT_OK && pubsub) {
            got g = { 0 };
            tt_sub s = { .filter = "tls/x", .qos = TT_QOS1, .handler = on_msg, .arg = &g };
            f = tt_client_subscribe(c, &s, 1, NULL);
            TT_CHECK_EQ_INT(tt_future_wait(f, WAIT_MS), TT_OK);
            tt_future_free(f);
            /* Big enough to span several TLS records. */
            static char big[100000];
            memset(big, 'z', sizeof big);
            f = tt_client_pub(c, "tls/x", big, sizeof big, TT_QOS1, false);
            TT_CHECK_EQ_INT(tt_future_wait(f, WAIT_MS), TT_OK);
            tt_future_free(f);
            f = tt_client_pub(c, "tls/x", "secret hello", 12, TT_QOS2, false);
            TT_CHECK_EQ_INT(tt_future_wait(f, WAIT_MS), TT_OK);
            tt_future_free(f);
            for (int i = 0; i < 1000 && atomic_load(&g.n) < 2; i++) usleep(5000);
            TT_CHECK_EQ_INT(atomic_load(&g.n), 2);
            TT_CHECK_EQ_STR(g.payload, "secret hello");
        }
    } else {
        snprintf(why, whylen, "tt_client_new: %s", tt_strerror(rc));
    }
    tt_client_free(c);
    tt_broker_free(&b);
    return rc;
}

static void test_tls_verification(void) {
    TT_REQUIRE(tt_certs_make(&g_certs) == 0);
    tt_runtime *rt;
    TT_REQUIRE(tt_runtime_new(&rt, NULL) == TT_OK);
    char why[256];
    tt_tls_opts tls = TT_OPTS_INIT(tt_tls_opts);
    tls.ca_file = g_certs.ca;

    /* The right CA, by IP address and by name: works, both ways. */
    TT_CHECK_EQ_INT(try_connect(rt, g_certs.server_cert, g_certs.server_key, "127.0.0.1", &tls, why,
                                sizeof why, true), TT_OK);
    TT_CHECK_EQ_INT(try_connect(rt, g_certs.server_cert, g_certs.server_key, "localhost", &tls, why,
                                sizeof why, false), TT_OK);
    /* A CA directory instead of a file. */
    tt_tls_opts dir = TT_OPTS_INIT(tt_tls_opts);
    dir.ca_dir = g_certs.ca_dir;
    TT_CHECK_EQ_INT(try_connect(rt, g_certs.server_cert, g_certs.server_key, "127.0.0.1", &dir, why,
                                sizeof why, false), TT_OK);

    /* Wrong CA, expired certificate, wrong host name: TT_ETLS and a reason. */
    tt_tls_opts wrong = TT_OPTS_INIT(tt_tls_opts);
    wrong.ca_file = g_certs.wrong_ca;
    TT_CHECK_EQ_INT(try_connect(rt, g_certs.server_cert, g_certs.server_key, "127.0.0.1", &wrong, why,
                                sizeof why, false), TT_ETLS);
    TT_CHECK_MSG(strstr(why, "unknown CA") != NULL, "%s", why);
    TT_CHECK_EQ_INT(try_connect(rt, g_certs.expired_cert, g_certs.expired_key, "127.0.0.1", &tls, why,
                                sizeof why, false), TT_ETLS);
    TT_CHECK_MSG(strstr(why, "expired") != NULL, "%s", why);
    TT_CHECK_EQ_INT(try_connect(rt, g_certs.wrong_host_cert, g_certs.wrong_host_key, "127.0.0.1", &tls,
                                why, sizeof why, false), TT_ETLS);
    TT_CHECK_MSG(strstr(why, "mismatch") != NULL, "%s", why);

    /* `insecure` skips verification (tests only). */
    tt_tls_opts insecure = TT_OPTS_INIT(tt_tls_opts);
    insecure.insecure = true;
    TT_CHECK_EQ_INT(try_connect(rt, g_certs.wrong_host_cert, g_certs.wrong_host_key, "127.0.0.1",
                                &insecure, why, sizeof why, false), TT_OK);

    /* A client certificate, when the broker asks for one. */
    tt_tls_opts cc = TT_OPTS_INIT(tt_tls_opts);
    cc.ca_file = g_certs.ca;
    cc.cert_file = g_certs.client_cert;
    cc.key_file = g_certs.client_key;
    TT_CHECK_EQ_INT(try_connect(rt, g_certs.server_cert, g_certs.server_key, "127.0.0.1", &cc, why,
                                sizeof why, true), TT_OK);

    /* A key file that does not exist fails at creation. */
    tt_tls_opts bad = TT_OPTS_INIT(tt_tls_opts);
    bad.ca_file = "no-such-ca.pem";
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.url = "mqtts://127.0.0.1:1";
    o.tls = &bad;
    tt_client *c = NULL;
    TT_CHECK_EQ_INT(tt_client_new(rt, &o, &c), TT_ETLS);
    TT_CHECK(c == NULL);
    tt_runtime_free(rt);
    tt_certs_remove(&g_certs);
}

TT_TEST_LIST = {
    { "tls_verification", test_tls_verification },
    { NULL, NULL },
};
