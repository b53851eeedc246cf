/* The broker test support itself: start, plain TCP, a message through
 * mosquitto_pub/mosquitto_sub, restart with persistence, passwords, kill,
 * pause/resume, TLS and WebSocket listeners. */
#include "broker.h"
#include "tt_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char pub_exe[512], sub_exe[512];

static bool find_clients(void) {
    if (!tt_broker_find_program("mosquitto_pub", pub_exe, sizeof pub_exe) ||
        !tt_broker_find_program("mosquitto_sub", sub_exe, sizeof sub_exe)) {
        fprintf(stderr, "  mosquitto_pub/mosquitto_sub not found: install the Debian package "
                        "'mosquitto-clients'\n");
        return false;
    }
    return true;
}

static int connect_port(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Read up to `cap` bytes, waiting at most timeout_ms for the first. */
static ssize_t read_some(int fd, void *buf, size_t cap, int timeout_ms) {
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll(&p, 1, timeout_ms) <= 0) return 0;
    return read(fd, buf, cap);
}

static int send_all(int fd, const void *buf, size_t len) {
    return write(fd, buf, len) == (ssize_t)len ? 0 : -1;
}

static bool file_contains(const char *path, const char *needle) {
    char buf[8192];
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static void port_str(char *buf, size_t cap, int port) { snprintf(buf, cap, "%d", port); }

/* mosquitto_pub one message; returns its exit status. */
static int pub(int port, const char *topic, const char *msg, const char *extra1,
               const char *extra2, const char *user, const char *pass) {
    char p[16];
    port_str(p, sizeof p, port);
    char *argv[20];
    int n = 0;
    argv[n++] = pub_exe;
    argv[n++] = (char *)"-h";
    argv[n++] = (char *)"127.0.0.1";
    argv[n++] = (char *)"-p";
    argv[n++] = p;
    argv[n++] = (char *)"-t";
    argv[n++] = (char *)topic;
    argv[n++] = (char *)"-m";
    argv[n++] = (char *)msg;
    argv[n++] = (char *)"-q";
    argv[n++] = (char *)"1";
    if (extra1) argv[n++] = (char *)extra1;
    if (extra2) argv[n++] = (char *)extra2;
    if (user) {
        argv[n++] = (char *)"-u";
        argv[n++] = (char *)user;
    }
    if (pass) {
        argv[n++] = (char *)"-P";
        argv[n++] = (char *)pass;
    }
    argv[n] = NULL;
    return tt_broker_run(argv, NULL, 10000);
}

/* mosquitto_sub for one message (-C 1), within `secs`, output to `out`. */
static pid_t sub_spawn(int port, const char *topic, const char *secs, const char *out) {
    char p[16];
    port_str(p, sizeof p, port);
    char *argv[] = { sub_exe, (char *)"-h", (char *)"127.0.0.1", (char *)"-p", p, (char *)"-t",
                     (char *)topic, (char *)"-q", (char *)"1", (char *)"-C", (char *)"1",
                     (char *)"-W", (char *)secs, NULL };
    return tt_broker_spawn(argv, out);
}

static void out_path(const tt_broker *b, char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", b->dir, name);
}

static void test_start_and_connect(void) {
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    TT_CHECK(b.port > 0 && b.port < 65536);
    TT_CHECK(b.pid > 0);
    TT_CHECK_EQ_INT(b.tls_port, 0);
    int fd = connect_port(b.port);
    TT_CHECK(fd >= 0);
    /* A bare MQTT 3.1.1 CONNECT (empty client id, clean session) gets CONNACK 0. */
    static const uint8_t connect_pkt[] = { 0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 0 };
    uint8_t ack[4] = { 0 };
    TT_CHECK(fd >= 0 && send_all(fd, connect_pkt, sizeof connect_pkt) == 0);
    TT_CHECK(fd >= 0 && read_some(fd, ack, sizeof ack, 3000) == 4);
    TT_CHECK(ack[0] == 0x20 && ack[1] == 2 && ack[3] == 0);
    if (fd >= 0) close(fd);
    tt_broker_free(&b);
}

static void test_pub_sub(void) {
    TT_REQUIRE(find_clients());
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    char out[512];
    out_path(&b, out, sizeof out, "sub.out");
    pid_t sub = sub_spawn(b.port, "tt/test/one", "10", out);
    TT_REQUIRE(sub > 0);
    /* The subscriber's SUBSCRIBE may land after a publish: publish until it
     * has its message and exits (bounded). */
    int rc = -1;
    for (int i = 0; i < 50; i++) {
        TT_CHECK_EQ_INT(pub(b.port, "tt/test/one", "hello-broker", NULL, NULL, NULL, NULL), 0);
        int st;
        if (waitpid(sub, &st, WNOHANG) == sub) {
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            sub = 0;
            break;
        }
        usleep(100 * 1000);
    }
    if (sub > 0) rc = tt_broker_waitpid(sub, 100);
    TT_CHECK_EQ_INT(rc, 0);
    TT_CHECK(file_contains(out, "hello-broker"));
    if (rc != 0) tt_broker_dump_log(&b, stderr);
    tt_broker_free(&b);
}

static void test_restart_keeps_retained(void) {
    TT_REQUIRE(find_clients());
    tt_broker b;
    tt_broker_opts o = { .persistence = true };
    TT_REQUIRE(tt_broker_start(&b, &o) == 0);
    int port = b.port;
    pid_t old_pid = b.pid;
    TT_CHECK_EQ_INT(pub(b.port, "tt/test/retained", "kept-across-restart", "-r", NULL, NULL, NULL), 0);
    TT_REQUIRE(tt_broker_restart(&b) == 0);
    TT_CHECK_EQ_INT(b.port, port);
    TT_CHECK(b.pid > 0 && b.pid != old_pid);
    TT_CHECK(kill(old_pid, 0) != 0 && errno == ESRCH);
    char out[512];
    out_path(&b, out, sizeof out, "retained.out");
    pid_t sub = sub_spawn(b.port, "tt/test/retained", "5", out);
    TT_REQUIRE(sub > 0);
    TT_CHECK_EQ_INT(tt_broker_waitpid(sub, 10000), 0);
    TT_CHECK(file_contains(out, "kept-across-restart"));

    /* A restart right after clients were connected (ports in TIME_WAIT). */
    int fd = connect_port(b.port);
    TT_CHECK(fd >= 0);
    TT_REQUIRE(tt_broker_restart(&b) == 0);
    if (fd >= 0) close(fd);
    TT_CHECK_EQ_INT(b.port, port);
    fd = connect_port(b.port);
    TT_CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    tt_broker_free(&b);
}

static void test_passwords(void) {
    TT_REQUIRE(find_clients());
    static const tt_broker_user users[] = { { "alice", "secret-a" }, { "bob", "secret-b" } };
    tt_broker b;
    tt_broker_opts o = { .deny_anonymous = true, .users = users, .nusers = 2 };
    TT_REQUIRE(tt_broker_start(&b, &o) == 0);
    TT_CHECK_EQ_INT(pub(b.port, "tt/test/auth", "x", NULL, NULL, "alice", "secret-a"), 0);
    TT_CHECK_EQ_INT(pub(b.port, "tt/test/auth", "x", NULL, NULL, "bob", "secret-b"), 0);
    TT_CHECK(pub(b.port, "tt/test/auth", "x", NULL, NULL, "alice", "wrong") != 0);
    TT_CHECK(pub(b.port, "tt/test/auth", "x", NULL, NULL, NULL, NULL) != 0);
    tt_broker_free(&b);
}

static void test_kill_leaves_nothing(void) {
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    pid_t pid = b.pid;
    char dir[256];
    snprintf(dir, sizeof dir, "%s", b.dir);
    TT_REQUIRE(tt_broker_kill(&b) == 0);
    TT_CHECK_EQ_INT(b.pid, 0);
    TT_CHECK(kill(pid, 0) != 0 && errno == ESRCH);       /* gone and reaped */
    TT_CHECK(connect_port(b.port) < 0);
    TT_CHECK(access(dir, F_OK) == 0);                    /* kept until free */
    tt_broker_free(&b);
    TT_CHECK(access(dir, F_OK) != 0 || getenv("TT_BROKER_KEEP"));
}

static void test_pause_resume(void) {
    tt_broker b;
    TT_REQUIRE(tt_broker_start(&b, NULL) == 0);
    TT_REQUIRE(tt_broker_pause(&b) == 0);
    /* The kernel still completes the TCP handshake, but nothing answers. */
    int fd = connect_port(b.port);
    TT_CHECK(fd >= 0);
    static const uint8_t connect_pkt[] = { 0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 0 };
    uint8_t ack[4] = { 0 };
    TT_CHECK(fd >= 0 && send_all(fd, connect_pkt, sizeof connect_pkt) == 0);
    TT_CHECK(fd >= 0 && read_some(fd, ack, sizeof ack, 300) == 0);
    TT_REQUIRE(tt_broker_resume(&b) == 0);
    TT_CHECK(fd >= 0 && read_some(fd, ack, sizeof ack, 3000) == 4);
    TT_CHECK(ack[0] == 0x20 && ack[3] == 0);
    if (fd >= 0) close(fd);
    /* Stop while paused must not hang. */
    TT_REQUIRE(tt_broker_pause(&b) == 0);
    double t0 = tt_test_now_();
    TT_CHECK(tt_broker_stop(&b) == 0);
    TT_CHECK(tt_test_now_() - t0 < 2.0);
    tt_broker_free(&b);
}

static void test_tls_listener(void) {
    TT_REQUIRE(find_clients());
    char openssl[512];
    if (!tt_broker_find_program("openssl", openssl, sizeof openssl)) {
        fprintf(stderr, "  openssl not found: install the Debian package 'openssl'\n");
        TT_REQUIRE(0);
    }
    /* A throwaway self-signed server certificate for 127.0.0.1. */
    tt_broker scratch;
    TT_REQUIRE(tt_broker_start(&scratch, NULL) == 0);   /* just for its temp dir */
    char key[512], crt[512], log[512];
    out_path(&scratch, key, sizeof key, "server.key");
    out_path(&scratch, crt, sizeof crt, "server.crt");
    out_path(&scratch, log, sizeof log, "openssl.out");
    char *argv[] = { openssl, (char *)"req", (char *)"-x509", (char *)"-newkey", (char *)"ec",
                     (char *)"-pkeyopt", (char *)"ec_paramgen_curve:prime256v1", (char *)"-nodes",
                     (char *)"-keyout", key, (char *)"-out", crt, (char *)"-days", (char *)"1",
                     (char *)"-subj", (char *)"/CN=127.0.0.1", (char *)"-addext",
                     (char *)"subjectAltName=IP:127.0.0.1", NULL };
    TT_CHECK_EQ_INT(tt_broker_run(argv, log, 20000), 0);

    tt_broker b;
    tt_broker_opts o = { .tls_cert = crt, .tls_key = key };
    TT_REQUIRE(tt_broker_start(&b, &o) == 0);
    TT_CHECK(b.tls_port > 0 && b.tls_port != b.port);
    TT_CHECK_EQ_INT(pub(b.tls_port, "tt/test/tls", "over-tls", "--cafile", crt, NULL, NULL), 0);
    /* Without trusting the certificate the handshake fails. */
    TT_CHECK(pub(b.tls_port, "tt/test/tls", "x", "--capath", "/nonexistent", NULL, NULL) != 0);
    tt_broker_free(&b);
    tt_broker_free(&scratch);
}

static void test_websockets_listener(void) {
    tt_broker b;
    tt_broker_opts o = { .websockets = true };
    TT_REQUIRE(tt_broker_start(&b, &o) == 0);
    TT_CHECK(b.ws_port > 0 && b.ws_port != b.port);
    int fd = connect_port(b.ws_port);
    TT_REQUIRE(fd >= 0);
    static const char req[] = "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";
    char resp[512] = { 0 };
    TT_CHECK(send_all(fd, req, sizeof req - 1) == 0);
    ssize_t n = read_some(fd, resp, sizeof resp - 1, 3000);
    TT_CHECK(n > 12);
    TT_CHECK_MSG(strncmp(resp, "HTTP/1.1 101", 12) == 0, "%.40s", resp);
    close(fd);
    tt_broker_free(&b);
}

static void test_limits_in_conf(void) {
    tt_broker b;
    tt_broker_opts o = { .max_packet_size = 1000, .max_inflight_messages = TT_BROKER_UNLIMITED,
                         .max_queued_messages = 100000, .tcp_nodelay = true };
    TT_REQUIRE(tt_broker_start(&b, &o) == 0);
    TT_CHECK(file_contains(b.conf, "max_packet_size 1000\n"));
    TT_CHECK(file_contains(b.conf, "max_inflight_messages 0\n"));
    TT_CHECK(file_contains(b.conf, "max_queued_messages 100000\n"));
    TT_CHECK(file_contains(b.conf, "set_tcp_nodelay true\n"));
    TT_CHECK(!file_contains(b.conf, "message_size_limit"));
    if (find_clients()) {
        char big[2048];
        memset(big, 'x', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        TT_CHECK_EQ_INT(pub(b.port, "tt/test/small", "fits", NULL, NULL, NULL, NULL), 0);
        /* Over max_packet_size: the broker drops the connection. */
        TT_CHECK(pub(b.port, "tt/test/big", big, NULL, NULL, NULL, NULL) != 0);
    }
    tt_broker_free(&b);
}

TT_TEST_LIST = {
    { "start_and_connect", test_start_and_connect },
    { "pub_sub", test_pub_sub },
    { "restart_keeps_retained", test_restart_keeps_retained },
    { "passwords", test_passwords },
    { "kill_leaves_nothing", test_kill_leaves_nothing },
    { "pause_resume", test_pause_resume },
    { "tls_listener", test_tls_listener },
    { "websockets_listener", test_websockets_listener },
    { "limits_in_conf", test_limits_in_conf },
    { NULL, NULL },
};
