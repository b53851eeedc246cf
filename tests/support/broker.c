/* A private mosquitto broker per test: see broker.h. */
#include "broker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_TIMEOUT_MS 5000
#define START_ATTEMPTS 5
#define MAX_BROKERS 32

/* ---- exit-time cleanup: brokers still running when the process exits ---- */

static struct {
    pid_t pid;
    bool used;
    char dir[256];
} reg[MAX_BROKERS];
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static bool reg_atexit_done;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static void remove_tree(const char *dir) {
    if (dir[0] && !getenv("TT_BROKER_KEEP"))
        (void)nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void reap_all_at_exit(void) {
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < MAX_BROKERS; i++) {
        if (!reg[i].used) continue;
        if (reg[i].pid > 0) {
            (void)kill(reg[i].pid, SIGKILL);
            (void)waitpid(reg[i].pid, NULL, 0);
        }
        remove_tree(reg[i].dir);
        reg[i].used = false;
    }
    pthread_mutex_unlock(&reg_lock);
}

static int reg_add(const char *dir) {
    int slot = -1;
    pthread_mutex_lock(&reg_lock);
    if (!reg_atexit_done) {
        reg_atexit_done = true;
        (void)atexit(reap_all_at_exit);
    }
    for (int i = 0; i < MAX_BROKERS; i++) {
        if (!reg[i].used) {
            reg[i].used = true;
            reg[i].pid = 0;
            snprintf(reg[i].dir, sizeof reg[i].dir, "%s", dir);
            slot = i;
            break;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    return slot;
}

static void reg_set_pid(int slot, pid_t pid) {
    if (slot < 0) return;
    pthread_mutex_lock(&reg_lock);
    reg[slot].pid = pid;
    pthread_mutex_unlock(&reg_lock);
}

static void reg_remove(int slot) {
    if (slot < 0) return;
    pthread_mutex_lock(&reg_lock);
    reg[slot].used = false;
    reg[slot].pid = 0;
    pthread_mutex_unlock(&reg_lock);
}

/* ---- small helpers -------------------------------------------------------- */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("broker: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

const char *tt_broker_find_program(const char *name, char *buf, size_t cap) {
    static const char *const fallback[] = { "/usr/sbin", "/usr/bin", "/sbin", "/bin",
                                            "/usr/local/sbin", "/usr/local/bin" };
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s", path ? path : "");
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        int n = snprintf(buf, cap, "%s/%s", d, name);
        if (n > 0 && (size_t)n < cap && access(buf, X_OK) == 0) return buf;
    }
    for (size_t i = 0; i < sizeof fallback / sizeof fallback[0]; i++) {
        int n = snprintf(buf, cap, "%s/%s", fallback[i], name);
        if (n > 0 && (size_t)n < cap && access(buf, X_OK) == 0) return buf;
    }
    return NULL;
}

/* In the child between fork and exec: async-signal-safe calls only. */
static void child_setup(pid_t parent, int out_fd) {
    sigset_t none;
    struct sigaction dfl;
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);          /* the parent died before prctl */
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);  /* test threads may block signals */
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    (void)sigaction(SIGTERM, &dfl, NULL);
    (void)sigaction(SIGINT, &dfl, NULL);
    (void)sigaction(SIGPIPE, &dfl, NULL);
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) (void)dup2(null_fd, 0);
    if (out_fd >= 0) {
        (void)dup2(out_fd, 1);
        (void)dup2(out_fd, 2);
    }
    /* The test's own sockets must not live on in the broker. */
    if (close_range(3, ~0U, 0) != 0) {
        struct rlimit rl;
        rlim_t top = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
        if (top > 65536) top = 65536;
        for (int fd = 3; fd < (int)top; fd++) (void)close(fd);
    }
}

pid_t tt_broker_spawn(char *const argv[], const char *out_path) {
    int out_fd = open(out_path ? out_path : "/dev/null",
                      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (out_fd < 0) {
        fail("cannot open %s: %s", out_path ? out_path : "/dev/null", strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        child_setup(parent, out_fd);
        execv(argv[0], argv);
        _exit(127);
    }
    int err = errno;
    close(out_fd);
    if (pid < 0) fail("fork: %s", strerror(err));
    return pid;
}

int tt_broker_waitpid(pid_t pid, int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) return -1;
        if (now_ms() >= deadline) {
            (void)kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            }
            break;
        }
        sleep_ms(5);
    }
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

int tt_broker_run(char *const argv[], const char *out_path, int timeout_ms) {
    pid_t pid = tt_broker_spawn(argv, out_path);
    if (pid < 0) return -1;
    return tt_broker_waitpid(pid, timeout_ms);
}

/* Pick `n` distinct free ports on 127.0.0.1: bind port 0 on each (all held
 * open at once, so they differ), read them back, close. The broker may still
 * lose one to another process before it binds: the caller retries. */
static int pick_ports(int *ports, int n) {
    int fds[4];
    int ok = 0;
    for (int i = 0; i < n; i++) fds[i] = -1;
    for (int i = 0; i < n; i++) {
        struct sockaddr_in a;
        socklen_t len = sizeof a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&a, &len) != 0) {
            fail("cannot pick a free port: %s", strerror(errno));
            ok = -1;
            break;
        }
        ports[i] = ntohs(a.sin_port);
    }
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0) close(fds[i]);
    return ok;
}

int tt_broker_free_port(void) {
    int port = -1;
    return pick_ports(&port, 1) == 0 ? port : -1;
}

bool tt_broker_port_accepts(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* 1: every listener accepts; 0: the broker exited (reaped); -1: timed out. */
static int wait_ready(tt_broker *b, int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(b->pid, &st, WNOHANG);
        if (r == b->pid) {
            b->pid = 0;
            reg_set_pid(b->slot, 0);
            return 0;
        }
        if (tt_broker_port_accepts(b->port) && (!b->tls_port || tt_broker_port_accepts(b->tls_port)) &&
            (!b->ws_port || tt_broker_port_accepts(b->ws_port))) {
            /* The ports could belong to someone else if the broker lost the
             * bind race: it must still be alive once they answer. */
            sleep_ms(2);
            if (waitpid(b->pid, &st, WNOHANG) == b->pid) {
                b->pid = 0;
                reg_set_pid(b->slot, 0);
                return 0;
            }
            return 1;
        }
        if (now_ms() >= deadline) return -1;
        sleep_ms(10);
    }
}

static int spawn_broker(tt_broker *b) {
    static char exe[512];
    if (!tt_broker_find_program("mosquitto", exe, sizeof exe)) {
        fail("mosquitto not found in PATH or /usr/sbin: install the Debian package "
             "'mosquitto' (tools/run installs it)");
        return -1;
    }
    char out[320];
    snprintf(out, sizeof out, "%s/mosquitto.out", b->dir);
    char *argv[] = { exe, (char *)"-c", b->conf, NULL };
    pid_t pid = tt_broker_spawn(argv, out);
    if (pid < 0) return -1;
    b->pid = pid;
    b->paused = false;
    reg_set_pid(b->slot, pid);
    return 0;
}

static int write_passwords(tt_broker *b, const tt_broker_opts *o, char *file, size_t cap) {
    char exe[512];
    if (!tt_broker_find_program("mosquitto_passwd", exe, sizeof exe)) {
        fail("mosquitto_passwd not found: install the Debian package 'mosquitto'");
        return -1;
    }
    snprintf(file, cap, "%s/passwd", b->dir);
    char out[320];
    snprintf(out, sizeof out, "%s/mosquitto_passwd.out", b->dir);
    for (size_t i = 0; i < o->nusers; i++) {
        char *argv[] = { exe, (char *)"-b", (char *)"-c", file, (char *)o->users[i].user,
                         (char *)o->users[i].password, NULL };
        if (i > 0) {                                /* -c only creates the file once */
            argv[2] = file;
            argv[3] = (char *)o->users[i].user;
            argv[4] = (char *)o->users[i].password;
            argv[5] = NULL;
        }
        int rc = tt_broker_run(argv, out, 10000);
        if (rc != 0) {
            fail("mosquitto_passwd for user '%s' exited with %d (see %s)", o->users[i].user, rc, out);
            return -1;
        }
    }
    return 0;
}

static void limit_line(FILE *f, const char *key, uint32_t v) {
    if (v == TT_BROKER_UNLIMITED)
        fprintf(f, "%s 0\n", key);
    else if (v)
        fprintf(f, "%s %u\n", key, v);
}

static int write_conf(tt_broker *b, const tt_broker_opts *o, const char *passwd) {
    FILE *f = fopen(b->conf, "w");
    if (!f) {
        fail("cannot write %s: %s", b->conf, strerror(errno));
        return -1;
    }
    fprintf(f, "# generated by tests/support/broker.c\n");
    if (geteuid() == 0) fprintf(f, "user root\n");  /* else it switches to user mosquitto */
    fprintf(f, "per_listener_settings false\n");
    fprintf(f, "allow_anonymous %s\n", o->deny_anonymous ? "false" : "true");
    if (passwd) fprintf(f, "password_file %s\n", passwd);
    fprintf(f, "log_dest file %s\n", b->log);
    fprintf(f, "log_type all\nlog_timestamp_format %%H:%%M:%%S\nconnection_messages true\n");
    if (o->persistence) {
        fprintf(f, "persistence true\npersistence_location %s/\n", b->dir);
        fprintf(f, "persistence_file mosquitto.db\n");
        if (o->autosave_interval_s) fprintf(f, "autosave_interval %u\n", o->autosave_interval_s);
    } else {
        fprintf(f, "persistence false\n");
    }
    limit_line(f, "max_packet_size", o->max_packet_size);
    limit_line(f, "message_size_limit", o->message_size_limit);
    limit_line(f, "max_inflight_messages", o->max_inflight_messages);
    limit_line(f, "max_queued_messages", o->max_queued_messages);
    if (o->max_keepalive_s) fprintf(f, "max_keepalive %u\n", o->max_keepalive_s);
    if (o->tcp_nodelay) fprintf(f, "set_tcp_nodelay true\n");
    if (o->extra_conf) fprintf(f, "%s\n", o->extra_conf);

    fprintf(f, "\nlistener %d 127.0.0.1\n", b->port);
    if (o->listener_conf) fprintf(f, "%s\n", o->listener_conf);
    if (b->tls_port) {
        fprintf(f, "\nlistener %d 127.0.0.1\n", b->tls_port);
        fprintf(f, "certfile %s\nkeyfile %s\n", o->tls_cert, o->tls_key);
        if (o->tls_ca) fprintf(f, "cafile %s\n", o->tls_ca);
        fprintf(f, "require_certificate %s\n", o->tls_require_certificate ? "true" : "false");
    }
    if (b->ws_port) fprintf(f, "\nlistener %d 127.0.0.1\nprotocol websockets\n", b->ws_port);
    if (fclose(f) != 0) {
        fail("cannot write %s: %s", b->conf, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- the API -------------------------------------------------------------- */

int tt_broker_start(tt_broker *b, const tt_broker_opts *o) {
    static const tt_broker_opts defaults;
    if (!o) o = &defaults;
    memset(b, 0, sizeof *b);
    b->slot = -1;
    if (o->tls_cert && !o->tls_key) {
        fail("TLS asked with a certificate but no key");
        return -1;
    }

    const char *tmp = getenv("TMPDIR");
    snprintf(b->dir, sizeof b->dir, "%s/tt-broker-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(b->dir)) {
        fail("mkdtemp %s: %s", b->dir, strerror(errno));
        b->dir[0] = '\0';
        return -1;
    }
    b->slot = reg_add(b->dir);
    snprintf(b->conf, sizeof b->conf, "%s/mosquitto.conf", b->dir);
    snprintf(b->log, sizeof b->log, "%s/mosquitto.log", b->dir);

    char passwd[320];
    if (o->nusers && write_passwords(b, o, passwd, sizeof passwd) != 0) return -1;

    for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
        int ports[3] = { 0, 0, 0 };
        int n = 1 + (o->tls_cert != NULL) + (o->websockets != 0);
        if (pick_ports(ports, n) != 0) return -1;
        int k = 0;
        b->port = ports[k++];
        b->tls_port = o->tls_cert ? ports[k++] : 0;
        b->ws_port = o->websockets ? ports[k++] : 0;
        if (write_conf(b, o, o->nusers ? passwd : NULL) != 0) return -1;
        if (spawn_broker(b) != 0) return -1;
        int r = wait_ready(b, READY_TIMEOUT_MS);
        if (r == 1) return 0;
        if (r < 0) {
            fail("mosquitto did not accept connections on port %d within %d ms", b->port,
                 READY_TIMEOUT_MS);
            (void)tt_broker_kill(b);
            return -1;
        }
        /* It exited: most likely a port was taken meanwhile; pick again. */
    }
    fail("mosquitto exited at start %d times; its output follows", START_ATTEMPTS);
    tt_broker_dump_log(b, stderr);
    return -1;
}

static int terminate(tt_broker *b, int sig) {
    if (b->pid <= 0) return 0;
    (void)kill(b->pid, sig);
    if (b->paused) (void)kill(b->pid, SIGCONT);   /* a stopped process acts on SIGTERM only now */
    b->paused = false;
    int rc = tt_broker_waitpid(b->pid, READY_TIMEOUT_MS);
    b->pid = 0;
    reg_set_pid(b->slot, 0);
    if (rc < 0) {
        fail("waiting for mosquitto: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int tt_broker_stop(tt_broker *b) { return terminate(b, SIGTERM); }

int tt_broker_kill(tt_broker *b) { return terminate(b, SIGKILL); }

int tt_broker_restart(tt_broker *b) {
    if (!b->dir[0] || !b->port) {
        fail("restart of a broker that never started");
        return -1;
    }
    if (tt_broker_stop(b) != 0) return -1;
    /* mosquitto sets SO_REUSEADDR on its listeners, so TIME_WAIT connections
     * from the last run do not block the bind; retry anyway while a port is
     * still held by something else. */
    int64_t deadline = now_ms() + READY_TIMEOUT_MS;
    for (;;) {
        if (spawn_broker(b) != 0) return -1;
        int left = (int)(deadline - now_ms());
        int r = wait_ready(b, left > 0 ? left : 1);
        if (r == 1) return 0;
        if (r < 0 || now_ms() >= deadline) {
            fail("mosquitto did not come back on port %d within %d ms", b->port, READY_TIMEOUT_MS);
            (void)tt_broker_kill(b);
            tt_broker_dump_log(b, stderr);
            return -1;
        }
        sleep_ms(50);
    }
}

int tt_broker_pause(tt_broker *b) {
    if (b->pid <= 0 || kill(b->pid, SIGSTOP) != 0) {
        fail("pause: broker not running");
        return -1;
    }
    /* Wait until it is really stopped, so the caller's next step sees a stall. */
    int st;
    if (waitpid(b->pid, &st, WUNTRACED) != b->pid || !WIFSTOPPED(st)) {
        fail("pause: broker did not stop");
        return -1;
    }
    b->paused = true;
    return 0;
}

int tt_broker_resume(tt_broker *b) {
    if (b->pid <= 0 || kill(b->pid, SIGCONT) != 0) {
        fail("resume: broker not running");
        return -1;
    }
    b->paused = false;
    return 0;
}

void tt_broker_free(tt_broker *b) {
    if (b->pid > 0) (void)tt_broker_stop(b);
    if (b->dir[0]) remove_tree(b->dir);
    reg_remove(b->slot);
    b->slot = -1;
    b->dir[0] = '\0';
    b->port = b->tls_port = b->ws_port = 0;
}

static void dump_file(const char *path, FILE *out) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    fprintf(out, "---- %s ----\n", path);
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size > 65536) fprintf(out, "[... %ld bytes skipped ...]\n", size - 65536);
        (void)fseek(f, size > 65536 ? size - 65536 : 0, SEEK_SET);
    }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, out);
    fclose(f);
}

void tt_broker_dump_log(const tt_broker *b, FILE *out) {
    if (!b->dir[0]) return;
    char path[320];
    snprintf(path, sizeof path, "%s/mosquitto.out", b->dir);
    dump_file(path, out);
    dump_file(b->log, out);
    snprintf(path, sizeof path, "%s/mosquitto.conf", b->dir);
    dump_file(path, out);
}
