/* The offline queue's file (tt_client_opts.offline_queue_file) against a real
 * mosquitto: publishes made while no broker answers survive the client, a
 * process that dies without closing anything, and a torn last record; they
 * are delivered once a client with the same file connects; acknowledged ones
 * leave the file, which stays small; a second client, a foreign file and a
 * file of the other MQTT version are refused with specific errors. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <tether/mqtt.h>
#include <tether/tether.h>
#include <unistd.h>

#include "broker.h"
#include "tt_scale.h"
#include "tt_test.h"
#include "tt_wait.h"


static tt_runtime *g_rt;

static void rt_up(void) {
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.loop_threads = 2;
    if (tt_runtime_new(&g_rt, &o) != TT_OK) abort();
}

static void rt_down(void) {
    tt_runtime_free(g_rt);
    g_rt = NULL;
}

/* A client on `port` keeping its queue in `file`; NULL and *rc on failure. */
static tt_client *spooled(int port, const char *file, tt_mqtt_version v, tt_err *rc) {
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", port);
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.url = url;
    o.version = v;
    o.offline_queue_file = file;
    o.backoff_min_ms = 50;
    o.backoff_max_ms = 200;
    tt_client *c = NULL;
    *rc = tt_client_new(g_rt, &o, &c);
    return *rc == TT_OK ? c : NULL;
}

static size_t queued(tt_client *c) {
    tt_client_stats st;
    tt_client_stats_get(c, &st);
    return st.queued_bytes;
}

/* Which of n numbered messages arrived, and how many copies in all. */
typedef struct seen {
    pthread_mutex_t lock;
    int n, copies, distinct;
    unsigned char *got;
} seen;

static void on_msg(tt_client *c, const tt_msg *m, void *arg) {
    (void)c;
    seen *s = arg;
    size_t len;
    const char *p = tt_msg_payload(m, &len);
    char buf[32];
    snprintf(buf, sizeof buf, "%.*s", (int)(len < 31 ? len : 31), p);
    int i = atoi(buf + 4);           /* "msg-<i>..." */
    pthread_mutex_lock(&s->lock);
    s->copies++;
    if (i >= 0 && i < s->n && !s->got[i]++) s->distinct++;
    pthread_mutex_unlock(&s->lock);
}

static int distinct(seen *s) { return tt_locked_int(&s->lock, &s->distinct); }
static bool wait_distinct(seen *s, int n) { return tt_wait_count(&s->lock, &s->distinct, n); }

static tt_client *subscriber(const tt_broker *b, seen *s, int n) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    s->n = n;
    s->got = calloc((size_t)n, 1);
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", b->port);
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.url = url;
    o.on_message = on_msg;
    o.on_message_arg = s;
    tt_client *c = NULL;
    if (tt_client_new(g_rt, &o, &c) != TT_OK || tt_wait_free(tt_client_connect(c)) != TT_OK) return NULL;
    tt_sub sb = { .filter = "spool/#", .qos = TT_QOS1 };
    if (tt_wait_free(tt_client_subscribe(c, &sb, 1, NULL)) != TT_OK) return NULL;
    return c;
}

static void seen_free(seen *s) {
    free(s->got);
    pthread_mutex_destroy(&s->lock);
}

/* Publish n numbered QoS 1 messages with `extra` bytes of padding; the futures
 * are freed at once (the messages stay queued). */
static void publish_n(tt_client *c, int from, int n, size_t extra) {
    char *pl = malloc(32 + extra);
    for (int i = from; i < from + n; i++) {
        int k = snprintf(pl, 32, "msg-%d", i);
        memset(pl + k, '.', extra);
        tt_future_free(tt_client_pub(c, "spool/t", pl, (size_t)k + extra, TT_QOS1, false));
    }
    free(pl);
}

/* The client has handled every call made before this returns. */
static void settle(tt_client *c) { (void)tt_wait_free(tt_client_ping(c)); }

/* Once the close future completes, the file is free for another client. */
static void close_free(tt_client *c) {
    (void)tt_wait_free(tt_client_close(c));
    tt_client_free(c);
}

static void test_survives_the_client(void) {
    rt_up();
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    char file[320];
    snprintf(file, sizeof file, "%s/queue", b.dir);
    int dead = tt_broker_free_port();
    TT_REQUIRE(dead > 0);
    const int n = 200;

    /* No broker answers: the publishes wait, in memory and in the file. */
    tt_err rc;
    tt_client *a = spooled(dead, file, TT_MQTT_311, &rc);
    TT_REQUIRE(a);
    TT_CHECK(tt_wait_free(tt_client_connect(a)) != TT_OK);   /* refused; it keeps trying */
    publish_n(a, 0, n, 20);
    settle(a);
    TT_CHECK(queued(a) > 0);
    close_free(a);                   /* the client goes: its publishes stay in the file */

    seen s;
    tt_client *sub = subscriber(&b, &s, n);
    TT_REQUIRE(sub);
    /* The same file, the broker this time: everything is delivered. */
    tt_client *c = spooled(b.port, file, TT_MQTT_311, &rc);
    TT_REQUIRE(c);
    TT_CHECK(queued(c) >= (size_t)n * 20);                 /* restored before any connect */
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_connect(c)), TT_OK);
    TT_CHECK(wait_distinct(&s, n));
    /* A second client cannot take the file while this one has it. */
    tt_client *twice = spooled(b.port, file, TT_MQTT_311, &rc);
    TT_CHECK(!twice);
    TT_CHECK_EQ_INT(rc, TT_EBUSY);
    settle(c);
    TT_CHECK_EQ_INT((int)queued(c), 0);
    close_free(c);

    /* Acknowledged means gone from the file: nothing comes back. */
    tt_client *again = spooled(dead, file, TT_MQTT_311, &rc);
    TT_REQUIRE(again);
    TT_CHECK_EQ_INT((int)queued(again), 0);
    close_free(again);
    fprintf(stderr, "  %d restored and delivered (%d copies)\n", distinct(&s), s.copies);
    close_free(sub);
    seen_free(&s);
    tt_broker_free(&b);
    rt_down();
}

/* The child publishes into the file and dies without closing anything. */
static void child_crashes(const char *file, int port, int n) {
    rt_up();
    tt_err rc;
    tt_client *a = spooled(port, file, TT_MQTT_311, &rc);
    if (!a) _exit(2);
    tt_future_free(tt_client_connect(a));
    publish_n(a, 0, n, 10);
    settle(a);
    _exit(queued(a) > 0 ? 0 : 3);
}

static void test_crash_and_torn_tail(void) {
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    char file[320];
    snprintf(file, sizeof file, "%s/queue", b.dir);
    int dead = tt_broker_free_port();
    const int n = 100;
    pid_t pid = fork();
    TT_REQUIRE(pid >= 0);
    if (pid == 0) child_crashes(file, dead, n);
    int st = 0;
    TT_REQUIRE(waitpid(pid, &st, 0) == pid);
    TT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* A crash inside a write: half a record at the end. */
    struct stat before;
    TT_REQUIRE(stat(file, &before) == 0);
    int fd = open(file, O_WRONLY | O_APPEND);
    TT_REQUIRE(fd >= 0);
    static const unsigned char torn[] = { 'A', 1, 2, 3, 4, 5, 6, 7, 8, 200, 0, 0, 0, 'x', 'y' };
    TT_CHECK(write(fd, torn, sizeof torn) == (ssize_t)sizeof torn);
    close(fd);

    rt_up();
    seen s;
    tt_client *sub = subscriber(&b, &s, n);
    TT_REQUIRE(sub);
    tt_err rc;
    tt_client *c = spooled(b.port, file, TT_MQTT_311, &rc);
    TT_REQUIRE(c);
    struct stat after;
    TT_CHECK(stat(file, &after) == 0 && after.st_size == before.st_size);   /* the torn tail is cut off */
    TT_CHECK_EQ_INT(tt_wait_free(tt_client_connect(c)), TT_OK);
    TT_CHECK(wait_distinct(&s, n));
    fprintf(stderr, "  %d of %d from the crashed process delivered (%d copies)\n", distinct(&s), n, s.copies);
    close_free(c);

    /* Not a queue file; a queue file of the other MQTT version. */
    char other[320];
    snprintf(other, sizeof other, "%s/mosquitto.conf", b.dir);
    TT_CHECK(!spooled(dead, other, TT_MQTT_311, &rc));
    TT_CHECK_EQ_INT(rc, TT_EINVAL);
    TT_CHECK(!spooled(dead, file, TT_MQTT_5, &rc));
    TT_CHECK_EQ_INT(rc, TT_EINVAL);
    /* A header cut short (a crash while the file was being made): an empty queue. */
    char cut[340];
    snprintf(cut, sizeof cut, "%s/cut-queue", b.dir);
    int cfd = open(cut, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    TT_REQUIRE(cfd >= 0);
    TT_CHECK(write(cfd, "TTSPO", 5) == 5);
    close(cfd);
    tt_client *fresh = spooled(dead, cut, TT_MQTT_311, &rc);
    TT_CHECK(fresh != NULL);
    if (fresh) {
        TT_CHECK_EQ_INT((int)queued(fresh), 0);
        close_free(fresh);
    }
    /* A directory that does not exist. */
    char nowhere[340];
    snprintf(nowhere, sizeof nowhere, "%s/no/such/dir/queue", b.dir);
    TT_CHECK(!spooled(dead, nowhere, TT_MQTT_311, &rc));
    TT_CHECK_EQ_INT(rc, TT_EIO);
    close_free(sub);
    seen_free(&s);
    tt_broker_free(&b);
    rt_down();
}

/* Many acknowledged publishes: the file is rewritten and stays small. */
static void test_file_stays_small(void) {
    rt_up();
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    char file[320];
    snprintf(file, sizeof file, "%s/queue", b.dir);
    tt_err rc;
    tt_client *c = spooled(b.port, file, TT_MQTT_5, &rc);
    TT_REQUIRE(c);
    TT_REQUIRE(tt_wait_free(tt_client_connect(c)) == TT_OK);
    const int rounds = 40, per = 100;
    char pl[1000];
    memset(pl, '.', sizeof pl);
    int ok = 0;
    for (int r = 0; r < rounds; r++) {
        tt_future *fs[100];
        for (int i = 0; i < per; i++) fs[i] = tt_client_pub(c, "spool/big", pl, sizeof pl, TT_QOS1, false);
        for (int i = 0; i < per; i++) ok += tt_wait_free(fs[i]) == TT_OK;
    }
    TT_CHECK_EQ_INT(ok, rounds * per);
    settle(c);
    struct stat st;
    TT_REQUIRE(stat(file, &st) == 0);
    fprintf(stderr, "  %d publishes of about 1 KB acknowledged; the file is %lld bytes\n", rounds * per,
            (long long)st.st_size);
    /* Without rewriting it would hold every record ever added: over 4 MB. */
    TT_CHECK(st.st_size < (off_t)rounds * per * 1000 / 2);
    close_free(c);
    tt_client *again = spooled(b.port, file, TT_MQTT_5, &rc);
    TT_REQUIRE(again);
    TT_CHECK_EQ_INT((int)queued(again), 0);
    close_free(again);
    tt_broker_free(&b);
    rt_down();
}

TT_TEST_LIST = {
    { "survives_the_client", test_survives_the_client },
    { "crash_and_torn_tail", test_crash_and_torn_tail },
    { "file_stays_small", test_file_stays_small },
    { NULL, NULL },
};
