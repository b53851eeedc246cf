/* tether — shared option parsing, connection setup and error lines for
 * `tether pub` and `tether sub`. */
#include "cli_common.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void cli_conn_init(cli_conn *cc, const char *prog) {
    memset(cc, 0, sizeof *cc);
    cc->prog = prog;
    cc->host = "localhost";
    cc->version = TT_MQTT_311;
    cc->keepalive = -1;
}

bool cli_parse_long(const char *s, long lo, long hi, long *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

int cli_usage_error(const cli_conn *cc, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: ", cc->prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see '%s --help')\n", cc->prog);
    return CLI_EXIT_USAGE;
}

static bool parse_version(const char *s, tt_mqtt_version *v) {
    if (!s) return false;
    if (!strcmp(s, "311") || !strcmp(s, "mqttv311") || !strcmp(s, "4")) *v = TT_MQTT_311;
    else if (!strcmp(s, "5") || !strcmp(s, "mqttv5")) *v = TT_MQTT_5;
    else return false;
    return true;
}

/* Needs `n` values after argv[*i]; prints and fails otherwise. */
static bool need(const cli_conn *cc, int argc, char **argv, int i, int n) {
    if (i + n < argc) return true;
    cli_usage_error(cc, "option %s needs %s", argv[i], n == 1 ? "a value" : "more values");
    return false;
}

int cli_parse_common(cli_conn *cc, int argc, char **argv, int *ip) {
    int i = *ip;
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    long n;
    /* Options with one value. */
    static const char *const one[] = { "-h", "-p", "-i", "-u", "-P", "-V", "-k", "--cafile",
                                       "--capath", "--cert", "--key", "--will-topic",
                                       "--will-payload", "--will-qos", "--proxy", NULL };
    for (const char *const *o = one; *o; o++) {
        if (strcmp(a, *o)) continue;
        if (!need(cc, argc, argv, i, 1)) return -1;
        *ip = i + 1;
        if (!strcmp(a, "-h")) cc->host = v;
        else if (!strcmp(a, "-p")) {
            if (!cli_parse_long(v, 1, 65535, &n)) {
                cli_usage_error(cc, "bad port '%s'", v);
                return -1;
            }
            cc->port = (int)n;
        } else if (!strcmp(a, "-i")) cc->id = v;
        else if (!strcmp(a, "-u")) cc->user = v;
        else if (!strcmp(a, "-P")) cc->pass = v;
        else if (!strcmp(a, "-V")) {
            if (!parse_version(v, &cc->version)) {
                cli_usage_error(cc, "unsupported MQTT version '%s' (311, mqttv311, 5 or mqttv5)", v);
                return -1;
            }
        } else if (!strcmp(a, "-k")) {
            if (!cli_parse_long(v, 0, 65535, &n)) {
                cli_usage_error(cc, "bad keepalive '%s' (0 to 65535 seconds)", v);
                return -1;
            }
            cc->keepalive = n;
        } else if (!strcmp(a, "--cafile")) cc->cafile = v, cc->tls = true;
        else if (!strcmp(a, "--capath")) cc->capath = v, cc->tls = true;
        else if (!strcmp(a, "--proxy")) cc->proxy = v;
        else if (!strcmp(a, "--cert")) cc->cert = v, cc->tls = true;
        else if (!strcmp(a, "--key")) cc->key = v, cc->tls = true;
        else if (!strcmp(a, "--will-topic")) cc->will_topic = v;
        else if (!strcmp(a, "--will-payload")) cc->will_payload = v;
        else if (!strcmp(a, "--will-qos")) {
            if (!cli_parse_long(v, 0, 2, &n)) {
                cli_usage_error(cc, "bad will QoS '%s' (0, 1 or 2)", v);
                return -1;
            }
            cc->will_qos = (int)n;
        }
        return 1;
    }
    /* Flags. */
    if (!strcmp(a, "-c")) cc->persistent = true;
    else if (!strcmp(a, "-d") || !strcmp(a, "--debug")) cc->debug = true;
    else if (!strcmp(a, "--tls")) cc->tls = true;
    else if (!strcmp(a, "--insecure")) cc->insecure = true, cc->tls = true;
    else if (!strcmp(a, "--will-retain")) cc->will_retain = true;
    else if (!strcmp(a, "-D") && v && !strcmp(v, "connect")) {
        /* mosquitto's form: -D connect user-property KEY VALUE */
        if (!need(cc, argc, argv, i, 4)) return -1;
        if (strcmp(argv[i + 2], "user-property")) {
            cli_usage_error(cc, "unsupported CONNECT property '%s' (only user-property)", argv[i + 2]);
            return -1;
        }
        if (cc->nconnect_props == CLI_MAX_PROPS) {
            cli_usage_error(cc, "more than %d user properties", CLI_MAX_PROPS);
            return -1;
        }
        cc->connect_props[cc->nconnect_props++] = (tt_user_prop){ argv[i + 3], argv[i + 4] };
        *ip = i + 4;
    } else return 0;
    return 1;
}

int cli_check_common(const cli_conn *cc, bool props_given) {
    if (!*cc->host) return cli_usage_error(cc, "empty host name"), -1;
    if ((cc->cert != NULL) != (cc->key != NULL))
        return cli_usage_error(cc, "--cert and --key go together"), -1;
    if (!cc->will_topic && (cc->will_payload || cc->will_qos || cc->will_retain))
        return cli_usage_error(cc, "will options need --will-topic"), -1;
    if (cc->persistent && (!cc->id || !*cc->id))
        return cli_usage_error(cc, "-c (persistent session) needs a client id (-i)"), -1;
    if ((props_given || cc->nconnect_props) && cc->version != TT_MQTT_5)
        return cli_usage_error(cc, "-D (properties) needs MQTT 5 (-V 5)"), -1;
    return 0;
}

const char *cli_endpoint(const cli_conn *cc) {
    static char buf[320];
    int port = cc->port ? cc->port : (cc->tls ? 8883 : 1883);
    snprintf(buf, sizeof buf, strchr(cc->host, ':') ? "[%s]:%d" : "%s:%d", cc->host, port);
    return buf;
}

/* Lower-case the first letter of `s` into buf (strerror says "Connection refused"). */
static const char *lower_first(const char *s, char *buf, size_t n) {
    snprintf(buf, n, "%s", s);
    if (buf[0] && isupper((unsigned char)buf[0]) && !(buf[1] && isupper((unsigned char)buf[1])))
        buf[0] = (char)tolower((unsigned char)buf[0]);
    return buf;
}

/* Drop a leading "connection refused: " (once or twice, any case). */
static const char *strip_refused(const char *s) {
    static const char pfx[] = "connection refused: ";
    while (!strncasecmp(s, pfx, sizeof pfx - 1)) s += sizeof pfx - 1;
    return s;
}

void cli_report(const char *what, const tt_future *f) {
    const char *text = "";
    tt_err rc = tt_future_result(f);
    int detail = tt_future_detail(f, &text);
    if (!text) text = "";
    char a[256], b[256];
    if (strstr(text, "proxy") || strstr(text, "SOCKS5")) {   /* the proxy's answer, as it is */
        fprintf(stderr, "tether: %s: %s\n", what, lower_first(text, a, sizeof a));
        return;
    }
    switch (rc) {
    case TT_ECONNREFUSED:
        fprintf(stderr, "tether: %s: connection refused\n", what);
        break;
    case TT_ECONNRESET:
        /* Before the connection is up the detail is the connect() errno
         * (unreachable network, no route to host...). */
        if (detail > 0 && !strncmp(text, "connect to port", 15))
            fprintf(stderr, "tether: %s: %s\n", what, lower_first(strerror(detail), a, sizeof a));
        else
            fprintf(stderr, "tether: %s: %s\n", what, *text ? lower_first(text, a, sizeof a)
                                                            : tt_strerror(rc));
        break;
    case TT_EAUTH:
    case TT_EREFUSED:
        if (*text)
            fprintf(stderr, "tether: %s: refused by the broker: %s\n", what,
                    lower_first(strip_refused(text), a, sizeof a));
        else
            fprintf(stderr, "tether: %s: refused by the broker (reason %d)\n", what, detail);
        break;
    case TT_ETLS:
        fprintf(stderr, "tether: %s: TLS failure: %s\n", what, *text ? text : "(no reason given)");
        break;
    case TT_ENOTSUP:
        fprintf(stderr, "tether: %s: not supported by this build of tether%s%s\n", what,
                *text ? ": " : "", text);
        break;
    case TT_ENOTFOUND:
        fprintf(stderr, "tether: %s: %s\n", what,
                *text ? lower_first(text, a, sizeof a) : "host not found");
        break;
    default:
        if (*text)
            fprintf(stderr, "tether: %s: %s (%s)\n", what, tt_strerror(rc),
                    lower_first(text, b, sizeof b));
        else
            fprintf(stderr, "tether: %s: %s\n", what, tt_strerror(rc));
        break;
    }
}

int cli_client_new(cli_conn *cc, tt_client_opts *o, tt_runtime **rt, tt_client **c) {
    *rt = NULL;
    *c = NULL;
    if (cc->debug) tt_log_set_handler(tt_log_stderr, NULL, TT_LOG_DEBUG);
    tt_runtime_opts ro = TT_OPTS_INIT(tt_runtime_opts);
    ro.loop_threads = 1;
    ro.pool_threads = 1;
    tt_err rc = tt_runtime_new(rt, &ro);
    if (rc != TT_OK) {
        fprintf(stderr, "tether: cannot start the runtime: %s\n", tt_strerror(rc));
        return CLI_EXIT_FAIL;
    }
    char url[400];
    snprintf(url, sizeof url, "%s://%s", cc->tls ? "mqtts" : "mqtt", cli_endpoint(cc));
    o->url = url;
    o->client_id = cc->id;
    o->username = cc->user;
    o->password = cc->pass;
    o->password_len = 0;
    o->version = cc->version;
    if (cc->keepalive == 0) o->keepalive_s = TT_KEEPALIVE_OFF;
    else if (cc->keepalive > 0) o->keepalive_s = (uint16_t)cc->keepalive;
    o->persistent_session = cc->persistent;
    tt_will will = TT_OPTS_INIT(tt_will);
    if (cc->will_topic) {
        will.topic = cc->will_topic;
        will.payload = cc->will_payload ? cc->will_payload : "";
        will.payload_len = cc->will_payload ? strlen(cc->will_payload) : 0;
        will.qos = (tt_qos)cc->will_qos;
        will.retain = cc->will_retain;
        o->will = &will;
    }
    tt_tls_opts tls = TT_OPTS_INIT(tt_tls_opts);
    if (cc->tls) {
        tls.ca_file = cc->cafile;
        tls.ca_dir = cc->capath;
        tls.cert_file = cc->cert;
        tls.key_file = cc->key;
        tls.insecure = cc->insecure;
        o->tls = &tls;
    }
    o->proxy = cc->proxy;
    o->connect_props = cc->nconnect_props ? cc->connect_props : NULL;
    o->nconnect_props = cc->nconnect_props;
    rc = tt_client_new(*rt, o, c);
    o->url = NULL;
    o->will = NULL;
    o->tls = NULL;
    if (rc != TT_OK) {
        if (rc == TT_EINVAL)
            fprintf(stderr, "tether: cannot set up a client for %s: invalid option "
                            "(host, client id, topic or property)\n", cli_endpoint(cc));
        else
            fprintf(stderr, "tether: cannot set up a client for %s: %s\n", cli_endpoint(cc),
                    tt_strerror(rc));
        tt_runtime_free(*rt);
        *rt = NULL;
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

int cli_connect(const cli_conn *cc, tt_client *c) {
    tt_future *f = tt_client_connect(c);
    tt_err rc = tt_future_wait(f, TT_FOREVER);
    if (rc != TT_OK) {
        char what[400];
        /* The proxy without its user:pass@ part: no password on the terminal. */
        const char *px = cc->proxy ? cc->proxy : "", *at = strrchr(px, '@'), *sch = strstr(px, "://");
        snprintf(what, sizeof what, "cannot connect to %s%s%.*s%s", cli_endpoint(cc), *px ? " through " : "",
                 at && sch ? (int)(sch + 3 - px) : 0, px, at && sch ? at + 1 : px);
        cli_report(what, f);
    }
    tt_future_free(f);
    return rc == TT_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

void cli_shutdown(tt_runtime *rt, tt_client *c, bool disconnect) {
    if (c && disconnect) {
        tt_future *f = tt_client_disconnect(c);
        (void)tt_future_wait(f, 5000);
        tt_future_free(f);
    }
    if (c) {
        /* Wait until no callback of c can run any more, then release it. */
        tt_future *f = tt_client_close(c);
        (void)tt_future_wait(f, 5000);
        tt_future_free(f);
        tt_client_free(c);
    }
    if (rt) tt_runtime_free(rt);
}

bool cli_read_file(const char *path, char **buf, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "tether: cannot open %s: %s\n", path, strerror(errno));
        return false;
    }
    bool ok = cli_read_all(fp, path, buf, len);
    fclose(fp);
    return ok;
}

bool cli_read_all(FILE *in, const char *name, char **buf, size_t *len) {
    size_t cap = 4096, n = 0;
    char *p = malloc(cap);
    if (!p) {
        fprintf(stderr, "tether: out of memory reading %s\n", name);
        return false;
    }
    for (;;) {
        if (n == cap) {
            if (cap > (size_t)256 << 20) {
                fprintf(stderr, "tether: %s is larger than 256 MiB\n", name);
                free(p);
                return false;
            }
            char *q = realloc(p, cap * 2);
            if (!q) {
                fprintf(stderr, "tether: out of memory reading %s\n", name);
                free(p);
                return false;
            }
            p = q;
            cap *= 2;
        }
        size_t got = fread(p + n, 1, cap - n, in);
        n += got;
        if (got == 0) break;
    }
    if (ferror(in)) {
        fprintf(stderr, "tether: cannot read %s: %s\n", name, strerror(errno));
        free(p);
        return false;
    }
    *buf = p;
    *len = n;
    return true;
}

void cli_print_common_help(FILE *out) {
    fputs("connection:\n"
          "  -h HOST          broker host (default localhost)\n"
          "  -p PORT          broker port (default 1883, 8883 with TLS)\n"
          "  -i ID            client id (default: generated)\n"
          "  -u USER, -P PASS user name and password\n"
          "  -V 311|5         MQTT version (also mqttv311, mqttv5; default 311)\n"
          "  -k SECS          keepalive (default 60, 0 = off)\n"
          "  -c               persistent session (clean session off); needs -i\n"
          "  -d               debug: library log on stderr\n"
          "  -D connect user-property K V   MQTT 5 CONNECT user property\n"
          "  --proxy URL      through a proxy: socks5://[user:pass@]host[:port] or http://...\n"
          "TLS (mqtts):\n"
          "  --tls            use TLS with the system CA store\n"
          "  --cafile F, --capath D         trusted CAs (imply --tls)\n"
          "  --cert F --key F               client certificate and key\n"
          "  --insecure       do not verify the broker's certificate (tests only)\n"
          "will:\n"
          "  --will-topic T [--will-payload M] [--will-qos Q] [--will-retain]\n",
          out);
}

int cli_finish(const char *what, tt_future *f, int32_t ms) {
    tt_err rc = tt_future_wait(f, ms);
    if (rc != TT_OK) cli_report(what, f);
    tt_future_free(f);
    return rc == TT_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static bool one_of(const char *s, const char *const *list) {
    for (; *list; list++)
        if (!strcmp(s, *list)) return true;
    return false;
}

int cli_start_action(const cli_conn *cc, const char *action, const char *const *actions,
                     tt_runtime **rt) {
    if (!one_of(action, actions)) return cli_usage_error(cc, "unknown action '%s'", action);
    if (cc->debug) tt_log_set_handler(tt_log_stderr, NULL, TT_LOG_DEBUG);
    tt_err rc = tt_runtime_new(rt, NULL);
    if (rc != TT_OK) {
        fprintf(stderr, "tether: runtime: %s\n", tt_strerror(rc));
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}
