/* `tether pub` and `tether sub` against a private mosquitto, and against
 * mosquitto_pub / mosquitto_sub (Debian package mosquitto-clients): QoS 0, 1
 * and 2 both ways, stdin lines and --repeat, retained messages, wills, MQTT 5
 * user properties, persistent sessions, -W timeouts, sub's -F/-R/-T/-E/--retained-only,
 * pub's queue file, rr against
 * a responder made with the library (and mosquitto_rr against it), and the one-line errors
 * (connection refused, bad password, refused subscription, bad arguments).
 * Every child process runs under a 10 s limit. Loopback only. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tether/tether.h>
#include <tether/mqtt.h>

#include "broker.h"
#include "certs.h"
#include "tt_test.h"

#ifndef TT_CLI_PATH
#define TT_CLI_PATH "tether"
#endif

#define CHILD_MS 10000

static const char *cli(void) {
    const char *e = getenv("TETHER_CLI");
    return e && *e ? e : TT_CLI_PATH;
}

static char g_dir[256];                 /* scratch files for this run */

static void scratch(char *buf, size_t n, const char *name) {
    if (!g_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(g_dir, sizeof g_dir, "%s/tt-cli-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(g_dir)) abort();
    }
    snprintf(buf, n, "%s/%s", g_dir, name);
}

static void cleanup_dir(void) {
    if (!g_dir[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", g_dir);
}

/* A mosquitto client program, or NULL after saying which package has it. */
static const char *client_prog(const char *name, char *buf, size_t n) {
    const char *p = tt_broker_find_program(name, buf, n);
    if (!p) fprintf(stderr, "  %s not found: install the Debian package mosquitto-clients\n", name);
    return p;
}

/* Start argv (NULL-terminated) with stdin from in_path (NULL: /dev/null) and
 * stdout / stderr truncated into out_path / err_path (NULL: /dev/null). */
static pid_t spawn(const char *const *argv, const char *in_path, const char *out_path,
                   const char *err_path) {
    int in = open(in_path ? in_path : "/dev/null", O_RDONLY | O_CLOEXEC);
    int out = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int err = open(err_path ? err_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (in < 0 || out < 0 || err < 0) {
        fprintf(stderr, "  cannot open the child's files: %s\n", strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(in);
    close(out);
    close(err);
    return pid;
}

/* Run to completion (killed after CHILD_MS); the exit status, 128+signal, or -1. */
static int run(const char *const *argv, const char *in_path, const char *out_path,
               const char *err_path) {
    pid_t pid = spawn(argv, in_path, out_path, err_path);
    return pid < 0 ? -1 : tt_broker_waitpid(pid, CHILD_MS);
}

/* The whole file as a string (static buffer; "" if absent). */
static const char *slurp(const char *path) {
    static char buf[64 * 1024];
    buf[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f) return buf;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    fputs(text, f);
    fclose(f);
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Wait until the broker's log shows it answered the SUBSCRIBE of client `id`. */
static bool wait_subscribed(const tt_broker *b, const char *id) {
    char needle[160];
    snprintf(needle, sizeof needle, "Sending SUBACK to %s\n", id);
    for (int i = 0; i < CHILD_MS / 20; i++) {
        if (strstr(slurp(b->log), needle)) return true;
        usleep(20000);
    }
    fprintf(stderr, "  %s never subscribed\n", id);
    return false;
}

static void port_str(char *buf, size_t n, int port) { snprintf(buf, n, "%d", port); }

/* ---- tether sub receives what mosquitto_pub sends ---------------------------- */

static void test_sub_from_mosquitto_pub(void) {
    char mpub[256], out[300], err[300], port[16], id[32], topic[32], qos[4];
    TT_REQUIRE(client_prog("mosquitto_pub", mpub, sizeof mpub));
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    port_str(port, sizeof port, b.port);
    for (int q = 0; q <= 2; q++) {
        snprintf(id, sizeof id, "tsub%d", q);
        snprintf(topic, sizeof topic, "cli/q%d", q);
        snprintf(qos, sizeof qos, "%d", q);
        scratch(out, sizeof out, "sub.out");
        scratch(err, sizeof err, "sub.err");
        const char *sub[] = { cli(), "sub", "-h", "127.0.0.1", "-p", port, "-t", "cli/+", "-q", qos,
                              "-C", "3", "-v", "-i", id, NULL };
        pid_t pid = spawn(sub, NULL, out, err);
        TT_REQUIRE(pid > 0);
        TT_REQUIRE(wait_subscribed(&b, id));
        for (int i = 1; i <= 3; i++) {
            char msg[16];
            snprintf(msg, sizeof msg, "m%d", i);
            const char *pub[] = { mpub, "-h", "127.0.0.1", "-p", port, "-t", topic, "-q", qos,
                                  "-m", msg, NULL };
            TT_CHECK_EQ_INT(run(pub, NULL, NULL, NULL), 0);
        }
        TT_CHECK_EQ_INT(tt_broker_waitpid(pid, CHILD_MS), 0);
        char want[128];
        snprintf(want, sizeof want, "%s m1\n%s m2\n%s m3\n", topic, topic, topic);
        TT_CHECK_EQ_STR(slurp(out), want);
        TT_CHECK_EQ_STR(slurp(err), "");
    }
    tt_broker_free(&b);
}

/* ---- mosquitto_sub receives what tether pub sends: -m, -l, --repeat ------------ */

static void test_pub_to_mosquitto_sub(void) {
    char msub[256], out[300], err[300], in[300], port[16], id[32], topic[32], qos[4];
    TT_REQUIRE(client_prog("mosquitto_sub", msub, sizeof msub));
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    port_str(port, sizeof port, b.port);
    scratch(in, sizeof in, "lines.in");
    write_file(in, "line one\nline two\n");
    for (int q = 0; q <= 2; q++) {
        snprintf(id, sizeof id, "msub%d", q);
        snprintf(topic, sizeof topic, "cli/p%d", q);
        snprintf(qos, sizeof qos, "%d", q);
        scratch(out, sizeof out, "msub.out");
        const char *sub[] = { msub, "-h", "127.0.0.1", "-p", port, "-t", topic, "-q", qos,
                              "-C", "53", "-i", id, NULL };
        pid_t pid = spawn(sub, NULL, out, NULL);
        TT_REQUIRE(pid > 0);
        TT_REQUIRE(wait_subscribed(&b, id));
        scratch(err, sizeof err, "pub.err");
        const char *one[] = { cli(), "pub", "-h", "127.0.0.1", "-p", port, "-t", topic, "-q", qos,
                              "-m", "single", NULL };
        TT_CHECK_EQ_INT(run(one, NULL, NULL, err), 0);
        TT_CHECK_EQ_STR(slurp(err), "");
        const char *lines[] = { cli(), "pub", "-h", "127.0.0.1", "-p", port, "-t", topic, "-q", qos,
                                "-l", NULL };
        TT_CHECK_EQ_INT(run(lines, in, NULL, err), 0);
        TT_CHECK_EQ_STR(slurp(err), "");
        char rout[300];
        scratch(rout, sizeof rout, "repeat.out");
        const char *rep[] = { cli(), "pub", "-h", "127.0.0.1", "-p", port, "-t", topic, "-q", qos,
                              "-m", "r", "--repeat", "50", "--inflight", "8", NULL };
        TT_CHECK_EQ_INT(run(rep, NULL, rout, err), 0);
        TT_CHECK_EQ_STR(slurp(err), "");
        TT_CHECK_MSG(!strncmp(slurp(rout), "50 messages in ", 15), "%s", slurp(rout));
        TT_CHECK_EQ_INT(tt_broker_waitpid(pid, CHILD_MS), 0);
        const char *got = slurp(out);
        TT_CHECK_MSG(!strncmp(got, "single\nline one\nline two\nr\n", 27), "qos %d: %.60s", q, got);
        TT_CHECK_EQ_INT(count_lines(got), 53);
    }
    tt_broker_free(&b);
}

/* ---- retained: tether pub -r, then a later tether sub gets it --------------- */

static void test_retained(void) {
    char out[300], err[300], port[16];
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    port_str(port, sizeof port, b.port);
    scratch(err, sizeof err, "ret.err");
    const char *pub[] = { cli(), "pub", "-h", "127.0.0.1", "-p", port, "-t", "cli/ret", "-q", "1",
                          "-r", "-m", "kept", NULL };
    TT_CHECK_EQ_INT(run(pub, NULL, NULL, err), 0);
    scratch(out, sizeof out, "ret.out");
    const char *sub[] = { cli(), "sub", "-h", "127.0.0.1", "-p", port, "-t", "cli/#", "-C", "1",
                          "-W", "5", "-v", NULL };
    TT_CHECK_EQ_INT(run(sub, NULL, out, err), 0);
    TT_CHECK_EQ_STR(slurp(out), "cli/ret kept\n");
    TT_CHECK_EQ_STR(slurp(err), "");
    tt_broker_free(&b);
}

/* ---- will: sent when tether sub is killed, not when it ends cleanly --------- */

static void test_will(void) {
    char msub[256], out[300], port[16];
    TT_REQUIRE(client_prog("mosquitto_sub", msub, sizeof msub));
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    port_str(port, sizeof port, b.port);
    scratch(out, sizeof out, "will.out");
    /* Clean end (SIGTERM: DISCONNECT): no will within 2 s. */
    const char *watch1[] = { msub, "-h", "127.0.0.1", "-p", port, "-t", "cli/will", "-C", "1",
                             "-W", "3", "-i", "watch1", NULL };
    pid_t w = spawn(watch1, NULL, out, NULL);
    TT_REQUIRE(w > 0);
    TT_REQUIRE(wait_subscribed(&b, "watch1"));
    const char *tsub1[] = { cli(), "sub", "-h", "127.0.0.1", "-p", port, "-t", "cli/other", "-i",
                            "willer1", "--will-topic", "cli/will", "--will-payload", "gone",
                            "--will-qos", "1", NULL };
    pid_t t = spawn(tsub1, NULL, NULL, NULL);
    TT_REQUIRE(t > 0);
    TT_REQUIRE(wait_subscribed(&b, "willer1"));
    kill(t, SIGTERM);
    TT_CHECK_EQ_INT(tt_broker_waitpid(t, CHILD_MS), 0);
    TT_CHECK_EQ_INT(tt_broker_waitpid(w, CHILD_MS), 27);   /* mosquitto_sub timed out */
    TT_CHECK_EQ_STR(slurp(out), "");
    /* Killed: the broker publishes the will. */
    const char *watch2[] = { msub, "-h", "127.0.0.1", "-p", port, "-t", "cli/will", "-C", "1",
                             "-W", "8", "-q", "1", "-i", "watch2", NULL };
    w = spawn(watch2, NULL, out, NULL);
    TT_REQUIRE(w > 0);
    TT_REQUIRE(wait_subscribed(&b, "watch2"));
    const char *tsub2[] = { cli(), "sub", "-h", "127.0.0.1", "-p", port, "-t", "cli/other", "-i",
                            "willer2", "--will-topic", "cli/will", "--will-payload", "gone",
                            "--will-qos", "1", NULL };
    t = spawn(tsub2, NULL, NULL, NULL);
    TT_REQUIRE(t > 0);
    TT_REQUIRE(wait_subscribed(&b, "willer2"));
    kill(t, SIGKILL);
    TT_CHECK_EQ_INT(tt_broker_waitpid(t, CHILD_MS), 128 + SIGKILL);
    TT_CHECK_EQ_INT(tt_broker_waitpid(w, CHILD_MS), 0);
    TT_CHECK_EQ_STR(slurp(out), "gone\n");
    tt_broker_free(&b);
}

/* ---- MQTT 5 user properties, both ways ------------------------------------ */

static void test_v5_user_properties(void) {
    char msub[256], mpub[256], out[300], err[300], port[16];
    TT_REQUIRE(client_prog("mosquitto_sub", msub, sizeof msub));
    TT_REQUIRE(client_prog("mosquitto_pub", mpub, sizeof mpub));
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    port_str(port, sizeof port, b.port);
    scratch(out, sizeof out, "v5.out");
    scratch(err, sizeof err, "v5.err");
    /* tether pub -> mosquitto_sub -F '%P %p' (properties as key:value). */
    const char *msubv[] = { msub, "-V", "5", "-h", "127.0.0.1", "-p", port, "-t", "cli/v5", "-C",
                            "1", "-F", "%P %p", "-i", "msubv5", NULL };
    pid_t pid = spawn(msubv, NULL, out, NULL);
    TT_REQUIRE(pid > 0);
    TT_REQUIRE(wait_subscribed(&b, "msubv5"));
    const char *pub[] = { cli(), "pub", "-V", "mqttv5", "-h", "127.0.0.1", "-p", port, "-t",
                          "cli/v5", "-q", "1", "-m", "hi", "-D", "publish", "user-property", "k",
                          "v", "-D", "k2", "v2", NULL };
    TT_CHECK_EQ_INT(run(pub, NULL, NULL, err), 0);
    TT_CHECK_EQ_STR(slurp(err), "");
    TT_CHECK_EQ_INT(tt_broker_waitpid(pid, CHILD_MS), 0);
    TT_CHECK_EQ_STR(slurp(out), "k:v k2:v2 hi\n");
    /* mosquitto_pub -> tether sub -V 5 -v. */
    const char *tsub[] = { cli(), "sub", "-V", "5", "-h", "127.0.0.1", "-p", port, "-t", "cli/v5",
                           "-C", "1", "-v", "-i", "tsubv5", NULL };
    pid = spawn(tsub, NULL, out, err);
    TT_REQUIRE(pid > 0);
    TT_REQUIRE(wait_subscribed(&b, "tsubv5"));
    const char *mpubv[] = { mpub, "-V", "5", "-h", "127.0.0.1", "-p", port, "-t", "cli/v5", "-m",
                            "there", "-D", "publish", "user-property", "a", "b", NULL };
    TT_CHECK_EQ_INT(run(mpubv, NULL, NULL, NULL), 0);
    TT_CHECK_EQ_INT(tt_broker_waitpid(pid, CHILD_MS), 0);
    TT_CHECK_EQ_STR(slurp(out), "cli/v5 [a:b] there\n");
    TT_CHECK_EQ_STR(slurp(err), "");
    /* Properties need MQTT 5: a usage error. */
    const char *bad[] = { cli(), "pub", "-p", port, "-t", "x", "-m", "x", "-D", "k", "v", NULL };
    TT_CHECK_EQ_INT(run(bad, NULL, NULL, err), 2);
    tt_broker_free(&b);
}

/* ---- persistent session (-c): messages published while away --------------- */

static void test_persistent_session(void) {
    char out[300], err[300], port[16];
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    port_str(port, sizeof port, b.port);
    scratch(out, sizeof out, "ps.out");
    scratch(err, sizeof err, "ps.err");
    const char *first[] = { cli(), "sub", "-h", "127.0.0.1", "-p", port, "-t", "cli/ps", "-q", "1",
                            "-c", "-i", "keeper", "-W", "1", NULL };
    TT_CHECK_EQ_INT(run(first, NULL, out, err), 27);
    const char *pub[] = { cli(), "pub", "-h", "127.0.0.1", "-p", port, "-t", "cli/ps", "-q", "1",
                          "-m", "while away", NULL };
    TT_CHECK_EQ_INT(run(pub, NULL, NULL, NULL), 0);
    const char *again[] = { cli(), "sub", "-h", "127.0.0.1", "-p", port, "-t", "cli/ps", "-q", "1",
                            "-c", "-i", "keeper", "-C", "1", "-W", "5", NULL };
    TT_CHECK_EQ_INT(run(again, NULL, out, err), 0);
    TT_CHECK_EQ_STR(slurp(out), "while away\n");
    /* -c without -i: usage. */
    const char *noid[] = { cli(), "sub", "-p", port, "-t", "x", "-c", NULL };
    TT_CHECK_EQ_INT(run(noid, NULL, NULL, NULL), 2);
    tt_broker_free(&b);
}

/* ---- --quiet summary, -W timeout ------------------------------------------- */

static void test_quiet_and_timeout(void) {
    char out[300], err[300], pout[300], port[16];
    /* 2,000 QoS 1 messages as fast as the window allows: a subscriber that
     * falls behind by more than mosquitto's default queue (1,000) would lose
     * the rest at the broker, so the queue is unbounded here. */
    tt_broker_opts bo = { .max_queued_messages = TT_BROKER_UNLIMITED };
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, &bo) == 0);
    port_str(port, sizeof port, b.port);
    scratch(out, sizeof out, "q.out");
    scratch(err, sizeof err, "q.err");
    scratch(pout, sizeof pout, "qp.out");
    const char *sub[] = { cli(), "sub", "-h", "127.0.0.1", "-p", port, "-t", "cli/q", "-q", "1",
                          "-C", "2000", "--quiet", "-i", "quiet", NULL };
    pid_t pid = spawn(sub, NULL, out, err);
    TT_REQUIRE(pid > 0);
    TT_REQUIRE(wait_subscribed(&b, "quiet"));
    const char *pub[] = { cli(), "pub", "-h", "127.0.0.1", "-p", port, "-t", "cli/q", "-q", "1",
                          "-m", "x", "--repeat", "2000", NULL };
    TT_CHECK_EQ_INT(run(pub, NULL, pout, NULL), 0);
    TT_CHECK_MSG(!strncmp(slurp(pout), "2000 messages in ", 17), "%s", slurp(pout));
    TT_CHECK_EQ_INT(tt_broker_waitpid(pid, CHILD_MS), 0);
    const char *got = slurp(out);
    TT_CHECK_MSG(!strncmp(got, "2000 messages in ", 17) && strstr(got, "msgs/s\n"), "%s", got);
    TT_CHECK_EQ_INT(count_lines(got), 1);
    /* Nothing published: -W 1 gives 27, one line on stderr, nothing on stdout. */
    const char *idle[] = { cli(), "sub", "-h", "127.0.0.1", "-p", port, "-t", "cli/none", "-W", "1",
                           NULL };
    TT_CHECK_EQ_INT(run(idle, NULL, out, err), 27);
    TT_CHECK_EQ_STR(slurp(out), "");
    TT_CHECK_EQ_INT(count_lines(slurp(err)), 1);
    const char *idle_c[] = { cli(), "sub", "-h", "127.0.0.1", "-p", port, "-t", "cli/none", "-C",
                             "2", "-W", "1", NULL };
    TT_CHECK_EQ_INT(run(idle_c, NULL, out, err), 27);
    tt_broker_free(&b);
}

/* ---- sub -F (with widths), -R, -T, --retained-only, -E -------------------------------------------- */

static void test_sub_format_and_filters(void) {
    char mpub[256], out[300], err[300], port[16];
    TT_REQUIRE(client_prog("mosquitto_pub", mpub, sizeof mpub));
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    port_str(port, sizeof port, b.port);
    scratch(out, sizeof out, "fmt.out");
    scratch(err, sizeof err, "fmt.err");
    const char *ret[] = { mpub, "-h", "127.0.0.1", "-p", port, "-t", "fm/r", "-m", "old", "-r", NULL };
    TT_REQUIRE(run(ret, NULL, NULL, NULL) == 0);

    /* -F with -T: the retained one, the live one, not the hidden one. */
    const char *sub[] = { cli(), "sub", "-h", "127.0.0.1", "-p", port, "-t", "fm/#", "-i", "fmt",
                          "-F", "%t|%q|%r|%l|%p|%x|%%|%-6t|%03l|%.2p", "-T", "fm/hidden/#", "-C", "2", NULL };
    pid_t pid = spawn(sub, NULL, out, err);
    TT_REQUIRE(pid > 0);
    TT_REQUIRE(wait_subscribed(&b, "fmt"));
    const char *hide[] = { mpub, "-h", "127.0.0.1", "-p", port, "-t", "fm/hidden/x", "-m", "no", NULL };
    const char *live[] = { mpub, "-h", "127.0.0.1", "-p", port, "-t", "fm/live", "-m", "he\"y", NULL };
    TT_CHECK_EQ_INT(run(hide, NULL, NULL, NULL), 0);
    TT_CHECK_EQ_INT(run(live, NULL, NULL, NULL), 0);
    TT_CHECK_EQ_INT(tt_broker_waitpid(pid, CHILD_MS), 0);
    TT_CHECK_EQ_STR(slurp(out), "fm/r|0|1|3|old|6f6c64|%|fm/r  |003|ol\n"
                                "fm/live|0|0|4|he\"y|68652279|%|fm/live|004|he\n");

    /* JSON, and -R leaving out the retained one. */
    const char *json[] = { cli(), "sub", "-h", "127.0.0.1", "-p", port, "-t", "fm/#", "-i", "fmj",
                           "-F", "%J", "-R", "-C", "1", NULL };
    pid = spawn(json, NULL, out, err);
    TT_REQUIRE(pid > 0);
    TT_REQUIRE(wait_subscribed(&b, "fmj"));
    TT_CHECK_EQ_INT(run(live, NULL, NULL, NULL), 0);
    TT_CHECK_EQ_INT(tt_broker_waitpid(pid, CHILD_MS), 0);
    const char *got = slurp(out);
    TT_CHECK_MSG(strstr(got, "\"topic\":\"fm/live\"") && strstr(got, "\"payload\":\"he\\\"y\"") &&
                     strstr(got, "\"retain\":0") && count_lines(got) == 1,
                 "%s", got);

    /* --retained-only: the retained one, then out at -W. */
    const char *ronly[] = { cli(), "sub", "-h", "127.0.0.1", "-p", port, "-t", "fm/#", "--retained-only",
                            "-W", "1", NULL };
    TT_CHECK_EQ_INT(run(ronly, NULL, out, err), 0);
    TT_CHECK_EQ_STR(slurp(out), "old\n");
    /* -E: out once subscribed; a bad -F code is a usage error. */
    const char *e[] = { cli(), "sub", "-h", "127.0.0.1", "-p", port, "-t", "fm/e", "-E", NULL };
    TT_CHECK_EQ_INT(run(e, NULL, out, err), 0);
    TT_CHECK_EQ_STR(slurp(out), "");
    const char *badf[] = { cli(), "sub", "-p", port, "-t", "x", "-F", "%Z", NULL };
    TT_CHECK_EQ_INT(run(badf, NULL, NULL, err), 2);
    TT_CHECK(strstr(slurp(err), "%Z") != NULL);
    tt_broker_free(&b);
}

/* ---- errors: one line, the right exit code --------------------------------- */

static void test_connection_refused(void) {
    char err[300], port[16];
    port_str(port, sizeof port, tt_broker_free_port());
    scratch(err, sizeof err, "refused.err");
    const char *pub[] = { cli(), "pub", "-h", "127.0.0.1", "-p", port, "-t", "x", "-m", "x", NULL };
    TT_CHECK_EQ_INT(run(pub, NULL, NULL, err), 1);
    const char *e = slurp(err);
    TT_CHECK_MSG(strstr(e, "connection refused") && count_lines(e) == 1, "%s", e);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%s", port);
    TT_CHECK_MSG(strstr(e, want), "%s", e);
    const char *sub[] = { cli(), "sub", "-h", "127.0.0.1", "-p", port, "-t", "x", NULL };
    TT_CHECK_EQ_INT(run(sub, NULL, NULL, err), 1);
    e = slurp(err);
    TT_CHECK_MSG(strstr(e, "connection refused") && count_lines(e) == 1, "%s", e);
}

static void test_bad_password(void) {
    char err[300], port[16];
    tt_broker_user users[] = { { "alice", "secret" } };
    tt_broker_opts o = { .deny_anonymous = true, .users = users, .nusers = 1 };
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, &o) == 0);
    port_str(port, sizeof port, b.port);
    scratch(err, sizeof err, "auth.err");
    for (int v = 0; v < 2; v++) {
        const char *ver = v ? "5" : "311";
        const char *pub[] = { cli(), "pub", "-V", ver, "-h", "127.0.0.1", "-p", port, "-t", "x",
                              "-m", "x", "-u", "alice", "-P", "wrong", NULL };
        TT_CHECK_EQ_INT(run(pub, NULL, NULL, err), 1);
        const char *e = slurp(err);
        TT_CHECK_MSG((strstr(e, "not authorized") || strstr(e, "bad user name or password")) &&
                         count_lines(e) == 1,
                     "%s", e);
        const char *sub[] = { cli(), "sub", "-V", ver, "-h", "127.0.0.1", "-p", port, "-t", "x",
                              NULL };   /* anonymous */
        TT_CHECK_EQ_INT(run(sub, NULL, NULL, err), 1);
        e = slurp(err);
        TT_CHECK_MSG((strstr(e, "not authorized") || strstr(e, "bad user name or password")) &&
                         count_lines(e) == 1,
                     "%s", e);
        const char *good[] = { cli(), "pub", "-V", ver, "-h", "127.0.0.1", "-p", port, "-t", "x",
                               "-m", "x", "-u", "alice", "-P", "secret", "-q", "1", NULL };
        TT_CHECK_EQ_INT(run(good, NULL, NULL, err), 0);
        TT_CHECK_EQ_STR(slurp(err), "");
    }
    tt_broker_free(&b);
}

/* A one-shot fake broker: CONNACK accepted, then SUBACK 0x80 for everything. */
typedef struct fake {
    int lfd;
    int port;
} fake;

static bool read_packet(int fd, uint8_t *type, uint8_t *body, size_t cap, size_t *len) {
    uint8_t h;
    if (read(fd, &h, 1) != 1) return false;
    size_t rl = 0;
    for (int shift = 0; shift < 28; shift += 7) {
        uint8_t d;
        if (read(fd, &d, 1) != 1) return false;
        rl |= (size_t)(d & 0x7F) << shift;
        if (!(d & 0x80)) break;
    }
    if (rl > cap) return false;
    for (size_t got = 0; got < rl;) {
        ssize_t n = read(fd, body + got, rl - got);
        if (n <= 0) return false;
        got += (size_t)n;
    }
    *type = h;
    *len = rl;
    return true;
}

static void *fake_run(void *arg) {
    fake *fk = arg;
    int fd = accept(fk->lfd, NULL, NULL);
    if (fd < 0) return NULL;
    uint8_t type, body[1024];
    size_t len;
    while (read_packet(fd, &type, body, sizeof body, &len)) {
        if ((type >> 4) == 1) {                              /* CONNECT */
            const uint8_t ack[] = { 0x20, 0x02, 0x00, 0x00 };
            if (write(fd, ack, sizeof ack) != (ssize_t)sizeof ack) break;
        } else if ((type >> 4) == 8 && len >= 2) {           /* SUBSCRIBE */
            const uint8_t ack[] = { 0x90, 0x03, body[0], body[1], 0x80 };
            if (write(fd, ack, sizeof ack) != (ssize_t)sizeof ack) break;
        } else if ((type >> 4) == 14) {                      /* DISCONNECT */
            break;
        }
    }
    close(fd);
    return NULL;
}

static void test_subscription_refused(void) {
    char err[300], port[16];
    fake fk;
    fk.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t slen = sizeof sa;
    TT_REQUIRE(fk.lfd >= 0 && bind(fk.lfd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
               listen(fk.lfd, 1) == 0 && getsockname(fk.lfd, (struct sockaddr *)&sa, &slen) == 0);
    fk.port = ntohs(sa.sin_port);
    pthread_t th;
    TT_REQUIRE(pthread_create(&th, NULL, fake_run, &fk) == 0);
    port_str(port, sizeof port, fk.port);
    scratch(err, sizeof err, "suback.err");
    const char *sub[] = { cli(), "sub", "-h", "127.0.0.1", "-p", port, "-t", "no/entry", NULL };
    TT_CHECK_EQ_INT(run(sub, NULL, NULL, err), 1);
    const char *e = slurp(err);
    TT_CHECK_MSG(strstr(e, "refused") && strstr(e, "0x80") && strstr(e, "no/entry") &&
                     count_lines(e) == 1,
                 "%s", e);
    shutdown(fk.lfd, SHUT_RDWR);
    close(fk.lfd);
    pthread_join(th, NULL);
}

static void test_usage(void) {
    char err[300];
    scratch(err, sizeof err, "usage.err");
    const char *notopic[] = { cli(), "pub", "-m", "x", NULL };
    TT_CHECK_EQ_INT(run(notopic, NULL, NULL, err), 2);
    TT_CHECK_EQ_INT(count_lines(slurp(err)), 1);
    const char *twomsg[] = { cli(), "pub", "-t", "x", "-m", "x", "-n", NULL };
    TT_CHECK_EQ_INT(run(twomsg, NULL, NULL, err), 2);
    const char *badq[] = { cli(), "sub", "-t", "x", "-q", "3", NULL };
    TT_CHECK_EQ_INT(run(badq, NULL, NULL, err), 2);
    const char *badv[] = { cli(), "sub", "-t", "x", "-V", "31", NULL };
    TT_CHECK_EQ_INT(run(badv, NULL, NULL, err), 2);
    const char *unknown[] = { cli(), "sub", "-t", "x", "--bogus", NULL };
    TT_CHECK_EQ_INT(run(unknown, NULL, NULL, err), 2);
    TT_CHECK(strstr(slurp(err), "--bogus") != NULL);
    const char *help[] = { cli(), "pub", "--help", NULL };
    TT_CHECK_EQ_INT(run(help, NULL, NULL, NULL), 0);
}

/* ---- over TLS, both ways, with a CA made for the test ---------------------------- */

static void test_tls_interop(void) {
    char mpub[256], msub[256], out[300], err[300], port[16];
    TT_REQUIRE(client_prog("mosquitto_pub", mpub, sizeof mpub));
    TT_REQUIRE(client_prog("mosquitto_sub", msub, sizeof msub));
    tt_certs certs;
    TT_REQUIRE(tt_certs_make(&certs) == 0);
    tt_broker_opts bo = { .tls_cert = certs.server_cert, .tls_key = certs.server_key, .tls_ca = certs.ca };
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, &bo) == 0);
    port_str(port, sizeof port, b.tls_port);
    /* tether sub over TLS receives from mosquitto_pub over TLS. */
    scratch(out, sizeof out, "tls-sub.out");
    scratch(err, sizeof err, "tls-sub.err");
    const char *sub[] = { cli(), "sub", "-h", "127.0.0.1", "-p", port, "--cafile", certs.ca, "-t", "tls/a",
                          "-q", "1", "-C", "1", "-i", "tlssub", NULL };
    pid_t pid = spawn(sub, NULL, out, err);
    TT_REQUIRE(pid > 0);
    TT_REQUIRE(wait_subscribed(&b, "tlssub"));
    const char *pub[] = { mpub, "-h", "127.0.0.1", "-p", port, "--cafile", certs.ca, "-t", "tls/a",
                          "-q", "1", "-m", "over tls", NULL };
    TT_CHECK_EQ_INT(run(pub, NULL, NULL, NULL), 0);
    TT_CHECK_EQ_INT(tt_broker_waitpid(pid, CHILD_MS), 0);
    TT_CHECK_EQ_STR(slurp(out), "over tls\n");
    TT_CHECK_EQ_STR(slurp(err), "");
    /* mosquitto_sub over TLS receives from tether pub over TLS. */
    scratch(out, sizeof out, "tls-msub.out");
    const char *msubv[] = { msub, "-h", "127.0.0.1", "-p", port, "--cafile", certs.ca, "-t", "tls/b",
                            "-q", "2", "-C", "1", "-i", "tlsmsub", NULL };
    pid = spawn(msubv, NULL, out, NULL);
    TT_REQUIRE(pid > 0);
    TT_REQUIRE(wait_subscribed(&b, "tlsmsub"));
    const char *tpub[] = { cli(), "pub", "-h", "127.0.0.1", "-p", port, "--cafile", certs.ca, "-t", "tls/b",
                           "-q", "2", "-m", "from tether", NULL };
    TT_CHECK_EQ_INT(run(tpub, NULL, NULL, err), 0);
    TT_CHECK_EQ_INT(tt_broker_waitpid(pid, CHILD_MS), 0);
    TT_CHECK_EQ_STR(slurp(out), "from tether\n");
    /* The wrong CA: one clear line, exit 1. */
    const char *bad[] = { cli(), "pub", "-h", "127.0.0.1", "-p", port, "--cafile", certs.wrong_ca, "-t", "x",
                          "-m", "x", NULL };
    TT_CHECK_EQ_INT(run(bad, NULL, NULL, err), 1);
    TT_CHECK_MSG(strstr(slurp(err), "unknown CA") != NULL, "%s", slurp(err));
    tt_broker_free(&b);
    tt_certs_remove(&certs);
}

/* ---- pub --queue-file: what a killed pub left is sent by the next ------------------ */

static bool wait_log(const tt_broker *b, const char *needle) {
    for (int i = 0; i < CHILD_MS / 20; i++) {
        if (strstr(slurp(b->log), needle)) return true;
        usleep(20000);
    }
    fprintf(stderr, "  never in the broker's log: %s", needle);
    return false;
}

static void test_pub_queue_file(void) {
    char msub[256], out[300], err[300], fifo[300], qf[300], port[16];
    TT_REQUIRE(client_prog("mosquitto_sub", msub, sizeof msub));
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    port_str(port, sizeof port, b.port);
    scratch(qf, sizeof qf, "pub.queue");
    scratch(fifo, sizeof fifo, "pub.fifo");
    scratch(out, sizeof out, "qsub.out");
    scratch(err, sizeof err, "qpub.err");
    (void)unlink(qf);
    (void)unlink(fifo);
    TT_REQUIRE(mkfifo(fifo, 0600) == 0);
    /* Every message arrives at least once; mosquitto_sub -W ends the count. */
    const char *sub[] = { msub, "-h", "127.0.0.1", "-p", port, "-t", "cli/queue", "-q", "1",
                          "-i", "qsub", "-W", "4", NULL };
    pid_t spid = spawn(sub, NULL, out, NULL);
    TT_REQUIRE(spid > 0);
    TT_REQUIRE(wait_subscribed(&b, "qsub"));

    /* A pub reading lines from a pipe, connected; then the broker stalls,
     * three lines go in, and the pub is killed before any is acknowledged. */
    int wfd = open(fifo, O_RDWR | O_CLOEXEC);       /* a writer first: opening for reading waits for one */
    TT_REQUIRE(wfd >= 0);
    const char *pub[] = { cli(), "pub", "-h", "127.0.0.1", "-p", port, "-t", "cli/queue", "-q", "1",
                          "-l", "-i", "qpub", "--queue-file", qf, NULL };
    pid_t ppid = spawn(pub, fifo, NULL, err);
    TT_REQUIRE(ppid > 0);
    TT_REQUIRE(wait_log(&b, "Sending CONNACK to qpub"));
    TT_REQUIRE(tt_broker_pause(&b) == 0);
    TT_REQUIRE(write(wfd, "q-one\nq-two\nq-three\n", 20) == 20);
    struct stat st = { 0 };
    for (int i = 0; i < 200 && (stat(qf, &st) != 0 || st.st_size < 60); i++) usleep(10000);
    TT_CHECK_MSG(st.st_size >= 60, "queue file of %lld bytes", (long long)st.st_size);
    kill(ppid, SIGKILL);
    (void)tt_broker_waitpid(ppid, CHILD_MS);
    close(wfd);
    TT_REQUIRE(tt_broker_resume(&b) == 0);

    /* The next pub, with only the file, sends them and waits for their acks. */
    const char *again[] = { cli(), "pub", "-h", "127.0.0.1", "-p", port, "--queue-file", qf, NULL };
    TT_CHECK_EQ_INT(run(again, NULL, NULL, err), 0);
    TT_CHECK_EQ_STR(slurp(err), "");
    /* Nothing is left for a third. */
    TT_CHECK_EQ_INT(run(again, NULL, NULL, err), 0);
    (void)tt_broker_waitpid(spid, CHILD_MS);            /* -W: exits 27 after 4 s */
    const char *got = slurp(out);
    TT_CHECK_MSG(strstr(got, "q-one\n") && strstr(got, "q-two\n") && strstr(got, "q-three\n"), "got: %s", got);
    TT_CHECK_MSG(count_lines(got) <= 6, "%d deliveries of 3 messages: %s", count_lines(got), got);
    int before_third = count_lines(got);
    TT_CHECK(before_third >= 3);

    /* QoS 0 is never kept: asking for it with a file is an error. */
    const char *q0[] = { cli(), "pub", "-p", port, "-t", "x", "-m", "x", "--queue-file", qf, NULL };
    TT_CHECK_EQ_INT(run(q0, NULL, NULL, err), 2);
    TT_CHECK(strstr(slurp(err), "-q 1") != NULL);
    (void)unlink(fifo);
    (void)unlink(qf);
    tt_broker_free(&b);
}

/* ---- rr: request and answer, against a responder made with the library -------------- */

static void on_rr_request(tt_client *c, const tt_msg *m, void *arg) {
    (void)arg;
    size_t n;
    const char *p = tt_msg_payload(m, &n);
    char out[128];
    int k = snprintf(out, sizeof out, "answer to %.*s", (int)n, p);
    tt_future_free(tt_client_respond(c, m, out, (size_t)k, TT_QOS1));
}

static void test_rr(void) {
    char mrr[256], out[300], err[300], port[16];
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    port_str(port, sizeof port, b.port);
    tt_runtime *rt = NULL;
    TT_REQUIRE(tt_runtime_new(&rt, NULL) == TT_OK);
    char url[64];
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", b.port);
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.url = url;
    o.version = TT_MQTT_5;
    tt_client *svc = NULL;
    TT_REQUIRE(tt_client_new(rt, &o, &svc) == TT_OK);
    tt_future *f = tt_client_connect(svc);
    TT_REQUIRE(tt_future_wait(f, CHILD_MS) == TT_OK);
    tt_future_free(f);
    tt_sub s = { .filter = "cli/rr", .qos = TT_QOS1, .handler = on_rr_request };
    f = tt_client_subscribe(svc, &s, 1, NULL);
    TT_REQUIRE(tt_future_wait(f, CHILD_MS) == TT_OK);
    tt_future_free(f);

    scratch(out, sizeof out, "rr.out");
    scratch(err, sizeof err, "rr.err");
    const char *rr[] = { cli(), "rr", "-h", "127.0.0.1", "-p", port, "-t", "cli/rr", "-e", "cli/rr/back",
                         "-m", "ping", "-q", "1", NULL };
    TT_CHECK_EQ_INT(run(rr, NULL, out, err), 0);
    TT_CHECK_EQ_STR(slurp(out), "answer to ping\n");
    TT_CHECK_EQ_STR(slurp(err), "");
    /* No answer: exit 27 after -W, with one line. */
    const char *quiet[] = { cli(), "rr", "-h", "127.0.0.1", "-p", port, "-t", "cli/nobody", "-e", "cli/rr/back",
                            "-m", "ping", "-W", "1", NULL };
    TT_CHECK_EQ_INT(run(quiet, NULL, out, err), 27);
    TT_CHECK_EQ_INT(count_lines(slurp(err)), 1);
    /* mosquitto_rr gets its answer from tt_client_respond() too. */
    if (client_prog("mosquitto_rr", mrr, sizeof mrr)) {
        const char *m[] = { mrr, "-h", "127.0.0.1", "-p", port, "-t", "cli/rr", "-e", "cli/rr/m", "-m", "hello",
                            "-W", "5", NULL };
        TT_CHECK_EQ_INT(run(m, NULL, out, err), 0);
        TT_CHECK_EQ_STR(slurp(out), "answer to hello\n");
    }
    tt_client_free(svc);
    tt_runtime_free(rt);
    tt_broker_free(&b);
}

static void test_cleanup(void) { cleanup_dir(); }

TT_TEST_LIST = {
    { "sub_from_mosquitto_pub", test_sub_from_mosquitto_pub },
    { "pub_to_mosquitto_sub", test_pub_to_mosquitto_sub },
    { "retained", test_retained },
    { "will", test_will },
    { "v5_user_properties", test_v5_user_properties },
    { "persistent_session", test_persistent_session },
    { "quiet_and_timeout", test_quiet_and_timeout },
    { "sub_format_and_filters", test_sub_format_and_filters },
    { "connection_refused", test_connection_refused },
    { "bad_password", test_bad_password },
    { "subscription_refused", test_subscription_refused },
    { "usage", test_usage },
    { "tls_interop", test_tls_interop },
    { "pub_queue_file", test_pub_queue_file },
    { "rr", test_rr },
    { "cleanup", test_cleanup },
    { NULL, NULL },
};
