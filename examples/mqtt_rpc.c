/* Request/response over MQTT 5 with tether: a "time service" and a caller
 * in one program, each its own client, through any MQTT 5 broker.
 *
 *   mqtt_rpc [mqtt://host:port]     (default mqtt://127.0.0.1:1883)
 *
 * The service subscribes to svc/time and answers every request on the
 * request's response topic (tt_client_respond). The caller, made with a
 * response topic of its own, sends three requests at once
 * (tt_client_request) and waits for each answer; then it publishes a few
 * QoS 1 messages and waits for all of them with tt_client_flush before it
 * leaves. Exit 0 when every answer came back. */
#define _POSIX_C_SOURCE 200809L  /* gmtime_r */
#include <stdio.h>
#include <string.h>
#include <tether/tether.h>
#include <tether/mqtt.h>
#include <time.h>

/* The service's handler: runs on its client's strand (a pool thread). */
static void on_request(tt_client *c, const tt_msg *m, void *arg) {
    (void)arg;
    size_t n;
    const char *who = tt_msg_payload(m, &n);
    char answer[128];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    int k = snprintf(answer, sizeof answer, "%.*s: it is %02d:%02d:%02d UTC", (int)n, who, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
    tt_future_free(tt_client_respond(c, m, answer, (size_t)k, TT_QOS1));   /* not waited for */
}

static tt_client *client(tt_runtime *rt, const char *url, const char *response_topic) {
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.url = url;
    o.version = TT_MQTT_5;
    o.response_topic = response_topic;       /* NULL for the service: it only answers */
    tt_client *c = NULL;
    if (tt_client_new(rt, &o, &c) != TT_OK) return NULL;
    tt_future *f = tt_client_connect(c);
    tt_err rc = tt_future_wait(f, 5000);
    if (rc != TT_OK) {
        const char *why = "";
        (void)tt_future_detail(f, &why);
        fprintf(stderr, "connect to %s: %s (%s)\n", url, tt_strerror(rc), why);
        tt_client_free(c);
        c = NULL;
    }
    tt_future_free(f);
    return c;
}

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "mqtt://127.0.0.1:1883";
    if (tt_init() != TT_OK) return 1;
    tt_runtime *rt = NULL;
    if (tt_runtime_new(&rt, NULL) != TT_OK) return 1;
    int failed = 0;
    tt_client *svc = client(rt, url, NULL);
    char replies[64];
    snprintf(replies, sizeof replies, "replies/rpc-%ld", (long)time(NULL) % 100000);
    tt_client *caller = svc ? client(rt, url, replies) : NULL;
    if (!svc || !caller) {
        failed = 1;
        goto out;
    }
    tt_sub s = { .filter = "svc/time", .qos = TT_QOS1, .handler = on_request };
    tt_future *sf = tt_client_subscribe(svc, &s, 1, NULL);
    if (tt_future_wait(sf, 5000) != TT_OK) failed = 1;
    tt_future_free(sf);

    /* Three requests in flight at once; each answer finds its own request. */
    static const char *const names[] = { "alice", "bob", "carol" };
    tt_future *fs[3];
    for (int i = 0; i < 3; i++) {
        tt_pub req = TT_OPTS_INIT(tt_pub);
        req.topic = "svc/time";
        req.payload = names[i];
        req.payload_len = strlen(names[i]);
        req.qos = TT_QOS1;
        tt_call_opts co = TT_OPTS_INIT(tt_call_opts);
        co.timeout_ms = 5000;
        fs[i] = tt_client_request(caller, &req, &co);
    }
    for (int i = 0; i < 3; i++) {
        if (tt_future_wait(fs[i], -1) == TT_OK) {
            size_t n;
            const char *p = tt_msg_payload(tt_future_get_msg(fs[i]), &n);
            printf("answer: %.*s\n", (int)n, p);
        } else {
            printf("request %d failed: %s\n", i, tt_strerror(tt_future_result(fs[i])));
            failed = 1;
        }
        tt_future_free(fs[i]);
    }

    /* Fire and forget, then wait for all of them at once. */
    for (int i = 0; i < 10; i++) tt_future_free(tt_client_pub(caller, "demo/log", "line", 4, TT_QOS1, false));
    tt_future *fl = tt_client_flush(caller);
    if (tt_future_wait(fl, 5000) == TT_OK) printf("10 publishes acknowledged\n");
    else failed = 1;
    tt_future_free(fl);

out:
    if (caller) tt_client_free(caller);
    if (svc) tt_client_free(svc);
    tt_runtime_free(rt);
    return failed;
}
