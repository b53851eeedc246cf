/* tether — what `tether pub` and `tether sub` share: the connection options
 * (named after mosquitto_pub / mosquitto_sub), building the client, connecting,
 * and turning a failed future into one line on stderr. */
#ifndef TETHER_CLI_COMMON_H
#define TETHER_CLI_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <tether/tether.h>
#include <tether/mqtt.h>

/* Exit codes, the same for both subcommands. */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,                 /* connection or protocol failure */
    CLI_EXIT_USAGE = 2,                /* bad arguments */
    CLI_EXIT_TIMEOUT = 27              /* sub -W expired (mosquitto_sub's code) */
};

#define CLI_MAX_PROPS 32

/* Options common to pub and sub. */
typedef struct cli_conn {
    const char *prog;                  /* "tether pub" / "tether sub", for messages */
    const char *host;                  /* -h, default "localhost" */
    int port;                          /* -p, 0 = 1883 (8883 with TLS) */
    const char *id;                    /* -i */
    const char *user;                  /* -u */
    const char *pass;                  /* -P */
    tt_mqtt_version version;           /* -V */
    long keepalive;                    /* -k, -1 = library default (60 s) */
    bool persistent;                   /* -c (sub) */
    bool debug;                        /* -d */
    /* TLS */
    bool tls;                          /* --tls, or implied by any option below */
    const char *cafile, *capath, *cert, *key;
    const char *proxy;                 /* --proxy URL */
    bool insecure;
    /* Will */
    const char *will_topic, *will_payload;
    int will_qos;
    bool will_retain;
    /* -D connect user-property K V */
    tt_user_prop connect_props[CLI_MAX_PROPS];
    size_t nconnect_props;
} cli_conn;

void cli_conn_init(cli_conn *cc, const char *prog);

/* Try argv[*i] as a common option. Returns 1 if taken (and *i advanced past
 * its values), 0 if not a common option, -1 after printing why it is bad. */
int cli_parse_common(cli_conn *cc, int argc, char **argv, int *i);

/* Checks after parsing: -1 after printing why the combination is bad. */
int cli_check_common(const cli_conn *cc, bool props_given);

/* Parse a non-negative integer in [lo, hi]; false (nothing printed) if it is not one. */
bool cli_parse_long(const char *s, long lo, long hi, long *out);

/* "error: ..." then "usage" hint, both on stderr. Returns CLI_EXIT_USAGE. */
int cli_usage_error(const cli_conn *cc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One line "tether: <what>: <reason>" on stderr for a failed future. */
void cli_report(const char *what, const tt_future *f);

/* The host:port the client dials, for messages. */
const char *cli_endpoint(const cli_conn *cc);

/* Create the runtime and the client (not yet connected). `o` carries the
 * command's own settings (pull, no_reconnect, max_inflight, handlers); the
 * connection options of `cc` are filled in here. Returns CLI_EXIT_OK, or an
 * exit code after printing one line. */
int cli_client_new(cli_conn *cc, tt_client_opts *o, tt_runtime **rt, tt_client **c);

/* Connect and wait for CONNACK; one line on stderr on failure. */
int cli_connect(const cli_conn *cc, tt_client *c);

/* Disconnect cleanly (bounded wait), free the client and the runtime. */
void cli_shutdown(tt_runtime *rt, tt_client *c, bool disconnect);

/* Read a whole stream or file into a malloc'd buffer; false after printing why. */
bool cli_read_all(FILE *in, const char *name, char **buf, size_t *len);
/* The same for the file at `path`, saying on stderr when it cannot be opened. */
bool cli_read_file(const char *path, char **buf, size_t *len);

/* Wait up to `ms` for `f`, print a line on failure (cli_report), free it.
 * Returns CLI_EXIT_OK or CLI_EXIT_FAIL. */
int cli_finish(const char *what, tt_future *f, int32_t ms);

/* A subcommand's ACTION checked against the NULL-terminated `actions`
 * (a usage error if not there), -d applied, and a runtime made for it.
 * Returns CLI_EXIT_OK (free *rt when done) or the exit code. */
int cli_start_action(const cli_conn *cc, const char *action, const char *const *actions,
                     tt_runtime **rt);

/* Monotonic seconds. */
double cli_now(void);

/* The subcommands: argv holds the options after the subcommand name.
 * They return the exit code. */
int cmd_pub(int argc, char **argv);
int cmd_sub(int argc, char **argv);
int cmd_rr(int argc, char **argv);

/* Help text for the shared options (printed by each command's --help). */
void cli_print_common_help(FILE *out);

#endif /* TETHER_CLI_COMMON_H */
