/* tether pub — publish one message, stdin lines, or one message N times,
 * with flags after mosquitto_pub. Publishes go out through a window: at most
 * --inflight futures are outstanding; each one's continuation (on a pool
 * thread) counts it done and wakes the main thread. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"

typedef enum pub_source { SRC_NONE, SRC_MSG, SRC_FILE, SRC_STDIN, SRC_LINES, SRC_NULL } pub_source;

typedef struct pub_window {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    long limit;                        /* most futures outstanding at once */
    long outstanding;
    long done;
    long failed;
    tt_future *first_fail;             /* kept to report its reason */
} pub_window;

static void window_init(pub_window *w, long limit) {
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->limit = limit;
}

static void window_fini(pub_window *w) {
    if (w->first_fail) tt_future_free(w->first_fail);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
}

/* Marks one publish finished; takes ownership of f. */
static void window_finish(pub_window *w, tt_future *f) {
    bool keep = false;
    pthread_mutex_lock(&w->lock);
    if (tt_future_result(f) != TT_OK && w->failed++ == 0) {
        w->first_fail = f;
        keep = true;
    }
    w->outstanding--;
    w->done++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    if (!keep) tt_future_free(f);
}

static void on_published(tt_future *f, void *arg) {   /* pool thread */
    window_finish(arg, f);
}

/* Publish through the window. False once any publish failed. */
static bool window_publish(pub_window *w, tt_client *c, const tt_pub *m) {
    pthread_mutex_lock(&w->lock);
    while (w->outstanding >= w->limit && !w->failed) pthread_cond_wait(&w->cond, &w->lock);
    bool ok = !w->failed;
    if (ok) w->outstanding++;
    pthread_mutex_unlock(&w->lock);
    if (!ok) return false;
    tt_future *f = tt_client_publish(c, m, NULL);
    if (tt_future_then(f, on_published, w) != TT_OK) window_finish(w, f);   /* out of memory */
    return true;
}

static void window_drain(pub_window *w) {
    pthread_mutex_lock(&w->lock);
    while (w->outstanding > 0) pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

static void pub_help(FILE *out) {
    fputs("usage: tether pub [-h HOST] [-p PORT] -t TOPIC (-m MSG | -f FILE | -s | -l | -n)\n"
          "                  [-q 0|1|2] [-r] [--repeat N] [--inflight W] [--queue-file F] [options]\n"
          "       tether pub [-h HOST] [-p PORT] --queue-file F    (send what F holds)\n"
          "message (exactly one, unless --queue-file alone):\n"
          "  -m MSG           this text\n"
          "  -f FILE          the whole file\n"
          "  -s               the whole of stdin as one message\n"
          "  -l               one message per stdin line (newline removed)\n"
          "  -n               an empty message\n"
          "publish:\n"
          "  -t TOPIC         topic (no wildcards)\n"
          "  -q QOS           0, 1 or 2 (default 0)\n"
          "  -r               retain\n"
          "  --repeat N       publish the message N times as fast as the window allows,\n"
          "                   then print: count, seconds, messages/s\n"
          "  --inflight W     most publishes outstanding at once (default 1000)\n"
          "  --queue-file F   keep QoS 1/2 publishes in F until acknowledged: those a\n"
          "                   failure or a crash left there go first on the next run\n"
          "  -D publish user-property K V   MQTT 5 user property (short form: -D K V);\n"
          "     also -D publish content-type|response-topic|correlation-data|\n"
          "                     message-expiry-interval|payload-format-indicator VALUE\n",
          out);
    cli_print_common_help(out);
    fputs("pub never reconnects: a lost connection is reported and ends the command.\n"
          "pub waits until every publish is acknowledged (or failed) before it exits.\n"
          "exit: 0 ok, 1 connection or protocol failure, 2 bad arguments\n",
          out);
}

typedef struct pub_args {
    cli_conn cc;
    const char *topic;
    pub_source src;
    const char *msg;                   /* -m, or the -f path */
    long qos;
    bool retain;
    long repeat;                       /* 0 = not given */
    long inflight;
    const char *queue_file;            /* --queue-file */
    tt_user_prop props[CLI_MAX_PROPS];
    size_t nprops;
    const char *content_type, *response_topic, *correlation;
    long expiry;
    bool payload_utf8;
    bool any_pub_prop;
} pub_args;

static int set_source(pub_args *pa, pub_source s, const char *v) {
    if (pa->src != SRC_NONE)
        return cli_usage_error(&pa->cc, "give only one of -m, -f, -s, -l, -n");
    pa->src = s;
    pa->msg = v;
    return 0;
}

/* -D publish NAME VALUE... or -D K V. Returns 0, or an exit code. */
static int parse_define(pub_args *pa, int argc, char **argv, int *ip) {
    int i = *ip;
    cli_conn *cc = &pa->cc;
    if (i + 1 < argc && !strcmp(argv[i + 1], "publish")) {
        if (i + 3 >= argc) return cli_usage_error(cc, "-D publish needs a property and a value");
        const char *name = argv[i + 2], *v = argv[i + 3];
        long n;
        if (!strcmp(name, "user-property")) {
            if (i + 4 >= argc) return cli_usage_error(cc, "-D publish user-property needs KEY VALUE");
            if (pa->nprops == CLI_MAX_PROPS)
                return cli_usage_error(cc, "more than %d user properties", CLI_MAX_PROPS);
            pa->props[pa->nprops++] = (tt_user_prop){ v, argv[i + 4] };
            *ip = i + 4;
        } else {
            if (!strcmp(name, "content-type")) pa->content_type = v;
            else if (!strcmp(name, "response-topic")) pa->response_topic = v;
            else if (!strcmp(name, "correlation-data")) pa->correlation = v;
            else if (!strcmp(name, "message-expiry-interval")) {
                if (!cli_parse_long(v, 0, 4294967295L, &n))
                    return cli_usage_error(cc, "bad message-expiry-interval '%s'", v);
                pa->expiry = n;
            } else if (!strcmp(name, "payload-format-indicator")) {
                if (!cli_parse_long(v, 0, 1, &n))
                    return cli_usage_error(cc, "bad payload-format-indicator '%s' (0 or 1)", v);
                pa->payload_utf8 = n == 1;
            } else {
                return cli_usage_error(cc, "unsupported PUBLISH property '%s'", name);
            }
            *ip = i + 3;
        }
        pa->any_pub_prop = true;
        return 0;
    }
    if (i + 1 < argc && (!strcmp(argv[i + 1], "subscribe") || !strcmp(argv[i + 1], "disconnect") ||
                         !strcmp(argv[i + 1], "auth") || !strcmp(argv[i + 1], "will")))
        return cli_usage_error(cc, "-D %s properties are not supported", argv[i + 1]);
    if (i + 2 >= argc) return cli_usage_error(cc, "-D needs KEY VALUE (or publish user-property KEY VALUE)");
    if (pa->nprops == CLI_MAX_PROPS)
        return cli_usage_error(cc, "more than %d user properties", CLI_MAX_PROPS);
    pa->props[pa->nprops++] = (tt_user_prop){ argv[i + 1], argv[i + 2] };
    pa->any_pub_prop = true;
    *ip = i + 2;
    return 0;
}

static int parse_pub(pub_args *pa, int argc, char **argv) {
    cli_conn *cc = &pa->cc;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_parse_common(cc, argc, argv, &i);
        if (r < 0) return CLI_EXIT_USAGE;
        if (r > 0) continue;
        int e = 0;
        if (!strcmp(a, "--help")) {
            pub_help(stdout);
            exit(CLI_EXIT_OK);
        } else if (!strcmp(a, "-s")) e = set_source(pa, SRC_STDIN, NULL);
        else if (!strcmp(a, "-l")) e = set_source(pa, SRC_LINES, NULL);
        else if (!strcmp(a, "-n")) e = set_source(pa, SRC_NULL, NULL);
        else if (!strcmp(a, "-r")) pa->retain = true;
        else if (!strcmp(a, "-D")) e = parse_define(pa, argc, argv, &i);
        else if (!strcmp(a, "-t") || !strcmp(a, "-m") || !strcmp(a, "-f") || !strcmp(a, "-q") ||
                 !strcmp(a, "--repeat") || !strcmp(a, "--inflight") || !strcmp(a, "--queue-file")) {
            if (!v) return cli_usage_error(cc, "option %s needs a value", a);
            i++;
            if (!strcmp(a, "-t")) pa->topic = v;
            else if (!strcmp(a, "-m")) e = set_source(pa, SRC_MSG, v);
            else if (!strcmp(a, "-f")) e = set_source(pa, SRC_FILE, v);
            else if (!strcmp(a, "--queue-file")) pa->queue_file = v;
            else if (!strcmp(a, "-q")) {
                if (!cli_parse_long(v, 0, 2, &pa->qos)) return cli_usage_error(cc, "bad QoS '%s' (0, 1 or 2)", v);
            } else if (!strcmp(a, "--repeat")) {
                if (!cli_parse_long(v, 1, LONG_MAX, &pa->repeat))
                    return cli_usage_error(cc, "bad --repeat '%s' (a count from 1)", v);
            } else if (!cli_parse_long(v, 1, 65535, &pa->inflight)) {
                return cli_usage_error(cc, "bad --inflight '%s' (1 to 65535)", v);
            }
        } else {
            return cli_usage_error(cc, "unknown option '%s'", a);
        }
        if (e) return e;
    }
    if (pa->queue_file && !*pa->queue_file) return cli_usage_error(cc, "--queue-file needs a path");
    bool only_file = pa->queue_file && pa->src == SRC_NONE && !pa->topic;
    if (!only_file) {
        if (!pa->topic || !*pa->topic) return cli_usage_error(cc, "a topic is needed (-t TOPIC)");
        if (strpbrk(pa->topic, "+#"))
            return cli_usage_error(cc, "a publish topic cannot hold the wildcards + or #");
        if (pa->src == SRC_NONE) return cli_usage_error(cc, "a message is needed (-m, -f, -s, -l or -n)");
        if (pa->queue_file && pa->qos == 0)
            return cli_usage_error(cc, "--queue-file keeps QoS 1 and 2 publishes: give -q 1 or -q 2");
    }
    if (pa->repeat && pa->src == SRC_LINES) return cli_usage_error(cc, "--repeat does not go with -l");
    if (cli_check_common(cc, pa->any_pub_prop) != 0) return CLI_EXIT_USAGE;
    return CLI_EXIT_OK;
}

/* Publish each stdin line; false once a publish failed. */
static bool publish_lines(pub_window *w, tt_client *c, tt_pub *m) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    bool ok = true;
    while (ok && (n = getline(&line, &cap, stdin)) >= 0) {
        if (n > 0 && line[n - 1] == '\n') line[--n] = '\0';
        m->payload = line;
        m->payload_len = (size_t)n;
        ok = window_publish(w, c, m);
    }
    free(line);
    return ok;
}

int cmd_pub(int argc, char **argv) {
    pub_args pa;
    memset(&pa, 0, sizeof pa);
    cli_conn_init(&pa.cc, "tether pub");
    pa.inflight = 1000;
    int rc = parse_pub(&pa, argc, argv);
    if (rc != CLI_EXIT_OK) return rc;

    /* The message, read before connecting so a bad file costs no connection. */
    char *data = NULL;
    size_t len = 0;
    if (pa.src == SRC_MSG) {
        len = strlen(pa.msg);
    } else if (pa.src == SRC_FILE) {
        if (!cli_read_file(pa.msg, &data, &len)) return CLI_EXIT_FAIL;
    } else if (pa.src == SRC_STDIN) {
        if (!cli_read_all(stdin, "stdin", &data, &len)) return CLI_EXIT_FAIL;
    }

    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.no_reconnect = true;             /* report failures instead of retrying */
    o.max_inflight = (uint16_t)pa.inflight;
    o.offline_queue_file = pa.queue_file;
    tt_runtime *rt;
    tt_client *c;
    rc = cli_client_new(&pa.cc, &o, &rt, &c);
    if (rc == CLI_EXIT_OK) rc = cli_connect(&pa.cc, c);
    if (rc != CLI_EXIT_OK) {
        cli_shutdown(rt, c, false);
        free(data);
        return rc;
    }

    tt_pub m = TT_OPTS_INIT(tt_pub);
    m.topic = pa.topic;
    m.payload = pa.src == SRC_MSG ? (const void *)pa.msg : data ? data : "";
    m.payload_len = len;
    m.qos = (tt_qos)pa.qos;
    m.retain = pa.retain;
    m.props = pa.nprops ? pa.props : NULL;
    m.nprops = pa.nprops;
    m.content_type = pa.content_type;
    m.response_topic = pa.response_topic;
    m.correlation = pa.correlation;
    m.correlation_len = pa.correlation ? strlen(pa.correlation) : 0;
    m.expiry_s = (uint32_t)pa.expiry;
    m.payload_utf8 = pa.payload_utf8;

    pub_window w;
    window_init(&w, pa.inflight);
    double t0 = cli_now();
    if (pa.src == SRC_NONE) {
        /* --queue-file alone: only what the file held, queued at creation. */
    } else if (pa.src == SRC_LINES) {
        (void)publish_lines(&w, c, &m);
    } else {
        long n = pa.repeat ? pa.repeat : 1;
        for (long i = 0; i < n && window_publish(&w, c, &m); i++) {
        }
    }
    window_drain(&w);
    /* Publishes restored from the queue file have no future here: wait for
     * every publish, theirs included. */
    tt_future *fl = w.failed ? NULL : tt_client_flush(c);
    if (fl) (void)tt_future_wait(fl, -1);
    double dt = cli_now() - t0;

    rc = CLI_EXIT_OK;
    if (w.failed || (fl && tt_future_result(fl) != TT_OK)) {
        cli_report("publish failed", w.failed ? w.first_fail : fl);
        if (pa.queue_file)
            fprintf(stderr, "tether: the unacknowledged publishes stay in %s for the next run\n", pa.queue_file);
        rc = CLI_EXIT_FAIL;
    } else if (pa.repeat) {
        printf("%ld messages in %.3f s: %.0f msgs/s\n", w.done, dt, dt > 0 ? (double)w.done / dt : 0.0);
        fflush(stdout);
    }
    if (fl) tt_future_free(fl);
    cli_shutdown(rt, c, true);
    window_fini(&w);
    free(data);
    return rc;
}
