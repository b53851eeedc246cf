/* A private mosquitto broker for one integration test (or benchmark run).
 *
 *   tt_broker b;
 *   tt_broker_opts o = { .persistence = true };
 *   if (tt_broker_start(&b, &o) != 0) { tt_broker_dump_log(&b, stderr); ... fail ... }
 *   ... connect to 127.0.0.1:b.port ...
 *   tt_broker_restart(&b);            same port, same config, same persistence
 *   tt_broker_free(&b);               stop and remove the temporary directory
 *
 * Each broker gets a fresh temporary directory (under $TMPDIR or /tmp) holding
 * its generated mosquitto.conf, its log, its password file and its persistence
 * file, and free loopback ports picked at start. The broker is a child process
 * that dies with the thread that started it (PR_SET_PDEATHSIG) and is killed at
 * exit() if still running, so it never outlives the test. Start brokers from
 * the main thread (or a thread that lives as long as they should).
 *
 * No mosquitto binary is a failure, not a skip: the message names the Debian
 * package to install. Functions return 0 on success and -1 on failure, after
 * printing one line saying why to stderr. Not thread-safe: one thread drives
 * a given broker. */
#ifndef TT_SUPPORT_BROKER_H
#define TT_SUPPORT_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* For the size/count limits below: 0 keeps mosquitto's default, this value
 * writes 0 into the config, which mosquitto reads as "no limit". */
#define TT_BROKER_UNLIMITED UINT32_MAX

typedef struct tt_broker_user {
    const char *user;
    const char *password;
} tt_broker_user;

/* Every field zero = the defaults: anonymous access allowed, no persistence,
 * mosquitto's default limits, one plain TCP listener. */
typedef struct tt_broker_opts {
    bool deny_anonymous;              /* allow_anonymous false */
    const tt_broker_user *users;      /* password file entries (mosquitto_passwd) */
    size_t nusers;
    bool persistence;                 /* sessions and QoS>0 queues survive a restart */
    uint32_t autosave_interval_s;     /* with persistence: save every N s (0: at stop only) */
    uint32_t max_packet_size;         /* bytes; 0 = default (no limit) */
    uint32_t message_size_limit;      /* payload bytes; 0 = default */
    uint32_t max_inflight_messages;   /* per client, QoS>0 outbound; 0 = default (20) */
    uint32_t max_queued_messages;     /* per client; 0 = default (1000) */
    uint32_t max_keepalive_s;         /* 0 = default (65535) */
    bool tcp_nodelay;                 /* set_tcp_nodelay true */
    /* TLS listener (b->tls_port) when tls_cert is set. PEM paths. */
    const char *tls_ca;               /* CA that signed client certificates (cafile) */
    const char *tls_cert;             /* server certificate (certfile) */
    const char *tls_key;              /* its key (keyfile) */
    bool tls_require_certificate;     /* clients must present a certificate signed by tls_ca */
    bool websockets;                  /* MQTT over WebSocket listener (b->ws_port) */
    const char *extra_conf;           /* appended verbatim (global options), may be NULL */
    const char *listener_conf;        /* verbatim after the plain listener's line (options of
                                         that listener: max_qos, ...), may be NULL */
} tt_broker_opts;

typedef struct tt_broker {
    int port;                         /* plain MQTT on 127.0.0.1 */
    int tls_port;                     /* 0 unless TLS was asked for */
    int ws_port;                      /* 0 unless websockets was asked for */
    pid_t pid;                        /* 0 while not running */
    bool paused;
    int slot;                         /* entry in the exit-time cleanup table */
    char dir[256];                    /* the temporary directory */
    char conf[300];                   /* dir/mosquitto.conf */
    char log[300];                    /* dir/mosquitto.log */
} tt_broker;

/* Write the config into a fresh temporary directory, pick free ports, start
 * the broker and wait (up to 5 s) until every listener accepts connections.
 * `o` may be NULL. On failure `b` is still safe to tt_broker_dump_log() and
 * tt_broker_free(). */
int tt_broker_start(tt_broker *b, const tt_broker_opts *o);

/* SIGTERM and wait (mosquitto saves its persistence file on the way out). */
int tt_broker_stop(tt_broker *b);

/* SIGKILL and wait: an abrupt crash, nothing saved since the last autosave. */
int tt_broker_kill(tt_broker *b);

/* Stop it if running (SIGTERM), then start it again on the same ports with
 * the same config and persistence directory; retries while a port is still
 * busy, up to 5 s. */
int tt_broker_restart(tt_broker *b);

/* SIGSTOP / SIGCONT: a stalled broker whose TCP connections stay open. */
int tt_broker_pause(tt_broker *b);
int tt_broker_resume(tt_broker *b);

/* Stop (if running) and remove the temporary directory. Idempotent. Keeps
 * the directory when the environment sets TT_BROKER_KEEP. */
void tt_broker_free(tt_broker *b);

/* A loopback TCP port free at the time of the call (-1 if none), for a
 * helper process of a test; and whether something accepts on a port. */
int tt_broker_free_port(void);
bool tt_broker_port_accepts(int port);

/* Copy the broker's log (and anything it printed) to `out`. */
void tt_broker_dump_log(const tt_broker *b, FILE *out);

/* The path of an installed program, from PATH or the usual Debian places;
 * NULL if absent. Used for mosquitto, mosquitto_passwd, mosquitto_pub, ... */
const char *tt_broker_find_program(const char *name, char *buf, size_t cap);

/* Start a program (argv[0] a path) with stdout/stderr appended to `out_path`
 * (NULL: /dev/null), stdin from /dev/null; it dies with the calling thread.
 * Returns its pid, or -1. */
pid_t tt_broker_spawn(char *const argv[], const char *out_path);

/* Wait up to timeout_ms for a spawned program, SIGKILL it after that. Returns
 * its exit status, 128+signal if a signal ended it, or -1. */
int tt_broker_waitpid(pid_t pid, int timeout_ms);

/* Run a program (argv[0] a path) with stdout/stderr appended to `out_path`
 * (NULL: /dev/null), killing it after timeout_ms. Returns its exit status,
 * 128+signal if killed by one, or -1 if it could not be run. */
int tt_broker_run(char *const argv[], const char *out_path, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* TT_SUPPORT_BROKER_H */
