/* tether watson — try the Watson IoT Platform clients by hand:
 *   tether watson event    --org O --type T --id D -t TOKEN -e EVENT -m DATA [-f FMT] [-q QOS]
 *   tether watson event    --gateway ... [--dev-type T --dev-id D] -e EVENT -m DATA
 *   tether watson commands --org O --type T --id D -t TOKEN [-n COUNT]
 *   tether watson commands --gateway ... [--dev-type T --dev-id D] [-n COUNT]
 *   tether watson watch    --api-key K -t TOKEN [--dev-type T] [--dev-id D] [-e EVENT]
 *                          [--status] [-n COUNT]
 *   tether watson command  --api-key K -t TOKEN --dev-type T --dev-id D --cmd C -m DATA [-f FMT]
 * Identity from flags, a wiotp YAML file or ibmiotf INI file (--config), or
 * the WIOTP_* environment (--env). -h/-p point at a private or emulated
 * platform; the other connection options are those of pub/sub. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/watson.h>
#include <unistd.h>

#include "cli_common.h"

#define W_WAIT_MS 30000

typedef struct w_args {
    cli_conn cc;
    const char *action;
    const char *config;
    bool env, gateway, status, quickstart;
    const char *org, *type, *id, *token, *app_id, *api_key, *domain;
    const char *dev_type, *dev_id;
    const char *event, *cmd, *format, *msg;
    long qos, count, repeat, wait_s;
} w_args;

static void w_help(FILE *out) {
    fprintf(out,
            "usage: tether watson ACTION [identity] [options]\n"
            "actions:\n"
            "  event     -e EVENT -m DATA [-f FORMAT] [-q QOS] [--repeat N]\n"
            "            publish an event (a gateway: for --dev-type/--dev-id, else itself)\n"
            "  commands  [-n COUNT]   print the commands a device (or gateway) receives\n"
            "  watch     [--dev-type T] [--dev-id D] [-e EVENT] [--status] [-n COUNT]\n"
            "            application: print device events (and connect/disconnect status)\n"
            "  command   --dev-type T --dev-id D --cmd C -m DATA [-f FORMAT] [-q QOS]\n"
            "            application: send a command\n"
            "identity (devices and gateways: --org, --type, --id, -t; applications: --api-key, -t):\n"
            "  --config FILE    wiotp YAML file, or ibmiotf INI file when it ends in .ini or .cfg\n"
            "  --env            the WIOTP_* environment variables\n"
            "  --org O --type T --id D -t TOKEN    device (--gateway: gateway) identity\n"
            "  --api-key K --app-id A              application identity (with -t TOKEN)\n"
            "  --quickstart     Quickstart org: no credentials, plain MQTT on 1883\n"
            "  --domain D       platform domain (default internetofthings.ibmcloud.com)\n"
            "options:\n"
            "  -f FORMAT        json (default), json-iotf, text, raw, msgpack, or a registered codec;\n"
            "                   -m is JSON for json, json-iotf and msgpack, bytes for the others\n"
            "  -W SECS          stop waiting after SECS (commands, watch)\n"
            "  -h HOST -p PORT  connect here instead of <org>.messaging.<domain>:8883\n");
    cli_print_common_help(out);
}

static int w_parse(w_args *a, int argc, char **argv) {
    cli_conn_init(&a->cc, "tether watson");
    a->cc.host = NULL;                 /* NULL: the platform's own host */
    a->format = "json";
    a->repeat = 1;
    a->qos = -1;
    if (argc < 1) {
        w_help(stderr);
        return CLI_EXIT_USAGE;
    }
    a->action = argv[0];
    if (!strcmp(a->action, "--help")) {
        w_help(stdout);
        return -1;
    }
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help")) {
            w_help(stdout);
            return -1;
        }
        if (!strcmp(o, "--env")) { a->env = true; continue; }
        if (!strcmp(o, "--gateway")) { a->gateway = true; continue; }
        if (!strcmp(o, "--status")) { a->status = true; continue; }
        if (!strcmp(o, "--quickstart")) { a->quickstart = true; continue; }
        int r = cli_parse_common(&a->cc, argc, argv, &i);
        if (r < 0) return CLI_EXIT_USAGE;
        if (r > 0) continue;
        if (!v) return cli_usage_error(&a->cc, "unknown option or missing value: %s", o);
        i++;
        if (!strcmp(o, "--config")) a->config = v;
        else if (!strcmp(o, "--org")) a->org = v;
        else if (!strcmp(o, "--type")) a->type = v;
        else if (!strcmp(o, "--id")) a->id = v;
        else if (!strcmp(o, "-t") || !strcmp(o, "--token")) a->token = v;
        else if (!strcmp(o, "--app-id")) a->app_id = v;
        else if (!strcmp(o, "--api-key")) a->api_key = v;
        else if (!strcmp(o, "--domain")) a->domain = v;
        else if (!strcmp(o, "--dev-type")) a->dev_type = v;
        else if (!strcmp(o, "--dev-id")) a->dev_id = v;
        else if (!strcmp(o, "-e")) a->event = v;
        else if (!strcmp(o, "--cmd")) a->cmd = v;
        else if (!strcmp(o, "-f")) a->format = v;
        else if (!strcmp(o, "-m")) a->msg = v;
        else if (!strcmp(o, "-q") && cli_parse_long(v, 0, 2, &a->qos)) continue;
        else if (!strcmp(o, "-n") && cli_parse_long(v, 0, 1000000000, &a->count)) continue;
        else if (!strcmp(o, "--repeat") && cli_parse_long(v, 1, 1000000000, &a->repeat)) continue;
        else if (!strcmp(o, "-W") && cli_parse_long(v, 1, 86400, &a->wait_s)) continue;
        else return cli_usage_error(&a->cc, "bad option or value: %s %s", o, v);
    }
    return CLI_EXIT_OK;
}

/* ---- Printing what arrives ---------------------------------------------------- */

static atomic_long g_seen;
static atomic_bool g_stop;

static void on_stop(int sig) {
    (void)sig;
    atomic_store(&g_stop, true);
}

static const char *kind_name(tt_wiotp_kind k) {
    switch (k) {
    case TT_WIOTP_COMMAND: return "command";
    case TT_WIOTP_EVENT: return "event";
    case TT_WIOTP_DEVICE_STATUS: return "status";
    case TT_WIOTP_APP_STATUS: return "app-status";
    case TT_WIOTP_NOTIFICATION: return "notification";
    case TT_WIOTP_DEVICE_STATE: return "state";
    case TT_WIOTP_THING_STATE: return "thing-state";
    case TT_WIOTP_DEVICE_ERROR: return "error";
    case TT_WIOTP_THING_ERROR: return "thing-error";
    }
    return "?";
}

/* One line: KIND TYPE ID NAME FORMAT DATA, DATA as compact JSON when the
 * format decoded, else the payload's bytes. */
static void on_message(tt_wiotp *w, const tt_wiotp_msg *m, void *arg) {
    (void)w;
    (void)arg;
    char *j = m->data ? json_dumps(m->data, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS) : NULL;
    printf("%s %s %s %s %s ", kind_name(m->kind), *m->type_id ? m->type_id : "-",
           *m->device_id ? m->device_id : "-", *m->id ? m->id : "-", m->format);
    if (j) fputs(j, stdout);
    else fwrite(m->payload, 1, m->len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    free(j);
    atomic_fetch_add(&g_seen, 1);
}

/* ---- Identity ----------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static tt_tls_opts g_tls;

/* Options from the config or environment, then flags on top. */
static int w_opts(w_args *a, tt_wiotp_role role, tt_wiotp_config **cfg, tt_wiotp_opts *o) {
    *cfg = NULL;
    *o = TT_OPTS_INIT(tt_wiotp_opts);
    char why[256] = "";
    tt_err rc = TT_OK;
    if (a->config) {
        rc = ends_with(a->config, ".ini") || ends_with(a->config, ".cfg")
                 ? tt_wiotp_config_load_ini(a->config, role, cfg, why, sizeof why)
                 : tt_wiotp_config_load_yaml(a->config, role, cfg, why, sizeof why);
    } else if (a->env) {
        rc = tt_wiotp_config_load_env(role, cfg, why, sizeof why);
    }
    if (rc != TT_OK) {
        fprintf(stderr, "tether watson: %s: %s%s%s\n", a->config ? a->config : "environment",
                tt_strerror(rc), *why ? ": " : "", why);
        return CLI_EXIT_USAGE;
    }
    if (*cfg) *o = *tt_wiotp_config_opts(*cfg);
    o->role = role;
    if (a->quickstart) o->org = "quickstart";
    if (a->org) o->org = a->org;
    if (a->type) o->type_id = a->type;
    if (a->id) o->device_id = a->id;
    if (a->token) o->token = a->token;
    if (a->app_id) o->app_id = a->app_id;
    if (a->api_key) o->api_key = a->api_key;
    if (a->domain) o->domain = a->domain;
    if (a->cc.host) o->host = a->cc.host;
    if (a->cc.port) o->port = (uint16_t)a->cc.port;
    if (a->cc.keepalive >= 0) o->keepalive_s = (uint16_t)a->cc.keepalive;
    if (a->cc.tls) {
        g_tls = TT_OPTS_INIT(tt_tls_opts);
        g_tls.ca_file = a->cc.cafile;
        g_tls.ca_dir = a->cc.capath;
        g_tls.cert_file = a->cc.cert;
        g_tls.key_file = a->cc.key;
        g_tls.insecure = a->cc.insecure;
        o->tls_opts = &g_tls;
        o->tls = TT_WIOTP_TLS_ON;
        if (a->cc.cafile) o->ca_file = a->cc.cafile;
    } else if (a->cc.host && a->cc.port) {
        o->tls = TT_WIOTP_TLS_OFF;     /* a private host and port without --tls: plain */
    }
    o->on_message = on_message;
    return CLI_EXIT_OK;
}

/* -m as the format wants it: JSON for JSON-shaped formats, else bytes. */
static bool json_format(const char *f) {
    return !strcmp(f, "json") || !strcmp(f, "json-iotf") || !strcmp(f, "msgpack");
}

static void wait_for_messages(const w_args *a) {
    signal(SIGINT, on_stop);
    signal(SIGTERM, on_stop);
    double end = a->wait_s ? cli_now() + (double)a->wait_s : 0;
    while (!atomic_load(&g_stop) && (!a->count || atomic_load(&g_seen) < a->count) &&
           (!end || cli_now() < end))
        usleep(10000);
}

static int run(w_args *a, tt_runtime *rt) {
    const char *act = a->action;
    bool app = !strcmp(act, "watch") || !strcmp(act, "command");
    tt_wiotp_role role = app ? TT_WIOTP_APP : a->gateway ? TT_WIOTP_GATEWAY : TT_WIOTP_DEVICE;
    if (!strcmp(act, "event") && (!a->event || !a->msg))
        return cli_usage_error(&a->cc, "event needs -e EVENT and -m DATA");
    if (!strcmp(act, "command") && (!a->dev_type || !a->dev_id || !a->cmd))
        return cli_usage_error(&a->cc, "command needs --dev-type, --dev-id and --cmd");
    json_t *data = NULL;
    if (a->msg && json_format(a->format)) {
        json_error_t err;
        data = json_loads(a->msg, JSON_DECODE_ANY, &err);
        if (!data) return cli_usage_error(&a->cc, "-m is not JSON: %s", err.text);
    }
    tt_wiotp_config *cfg;
    tt_wiotp_opts o;
    int ex = w_opts(a, role, &cfg, &o);
    tt_client_opts co = TT_OPTS_INIT(tt_client_opts);
    co.no_reconnect = true;
    o.mqtt = &co;
    tt_wiotp *w = NULL;
    if (ex == CLI_EXIT_OK) {
        tt_err rc = tt_wiotp_new(rt, &o, &w);
        if (rc != TT_OK) {
            fprintf(stderr, "tether watson: %s (check the identity: org, type, id, token or "
                            "API key, and the port)\n", tt_strerror(rc));
            ex = rc == TT_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
        }
    }
    if (ex == CLI_EXIT_OK) ex = cli_finish("connect", tt_wiotp_connect(w), W_WAIT_MS);
    if (ex == CLI_EXIT_OK) {
        tt_qos q = a->qos < 0 ? TT_QOS0 : (tt_qos)a->qos;
        size_t mlen = a->msg ? strlen(a->msg) : 0;
        if (!strcmp(act, "event")) {
            for (long i = 0; i < a->repeat && ex == CLI_EXIT_OK; i++) {
                tt_future *f = data ? tt_wiotp_publish_event(w, a->dev_type, a->dev_id, a->event,
                                                             a->format, data, q)
                                    : tt_wiotp_publish_event_raw(w, a->dev_type, a->dev_id,
                                                                 a->event, a->format, a->msg,
                                                                 mlen, q);
                ex = cli_finish("event", f, W_WAIT_MS);
            }
        } else if (!strcmp(act, "command")) {
            tt_future *f = data || !a->msg
                               ? tt_wiotp_publish_command(w, a->dev_type, a->dev_id, a->cmd,
                                                          a->format, data, q)
                               : tt_wiotp_publish_command_raw(w, a->dev_type, a->dev_id, a->cmd,
                                                              a->format, a->msg, mlen, q);
            ex = cli_finish("command", f, W_WAIT_MS);
        } else if (!strcmp(act, "commands") || !strcmp(act, "watch")) {
            if (role == TT_WIOTP_GATEWAY) {
                tt_wiotp_filter fl = TT_OPTS_INIT(tt_wiotp_filter);
                fl.kind = TT_WIOTP_COMMAND;
                fl.type_id = a->dev_type;
                fl.device_id = a->dev_id;
                fl.format = strcmp(a->format, "json") ? a->format : NULL;
                ex = cli_finish("subscribe", tt_wiotp_subscribe(w, &fl), W_WAIT_MS);
            } else if (role == TT_WIOTP_APP) {
                tt_wiotp_filter fl = TT_OPTS_INIT(tt_wiotp_filter);
                fl.kind = TT_WIOTP_EVENT;
                fl.type_id = a->dev_type;
                fl.device_id = a->dev_id;
                fl.id = a->event;
                fl.qos = a->qos < 0 ? TT_QOS0 : (tt_qos)a->qos;
                ex = cli_finish("subscribe", tt_wiotp_subscribe(w, &fl), W_WAIT_MS);
                if (ex == CLI_EXIT_OK && a->status) {
                    fl.kind = TT_WIOTP_DEVICE_STATUS;
                    ex = cli_finish("subscribe", tt_wiotp_subscribe(w, &fl), W_WAIT_MS);
                }
            }
            if (ex == CLI_EXIT_OK) {
                fprintf(stderr, "tether watson: %s as %s (Ctrl-C to stop)\n",
                        role == TT_WIOTP_APP ? "watching" : "waiting for commands",
                        tt_wiotp_client_id(w));
                wait_for_messages(a);
                if (a->count && atomic_load(&g_seen) < a->count) ex = CLI_EXIT_FAIL;
            }
        } else {
            ex = cli_usage_error(&a->cc, "unknown action '%s'", act);
        }
        tt_future *df = tt_wiotp_disconnect(w);
        (void)tt_future_wait(df, 5000);
        tt_future_free(df);
    }
    tt_wiotp_free(w);
    tt_wiotp_config_free(cfg);
    json_decref(data);
    return ex;
}

int cmd_watson(int argc, char **argv);   /* called from tether.c */

int cmd_watson(int argc, char **argv) {
    w_args a;
    memset(&a, 0, sizeof a);
    int ex = w_parse(&a, argc, argv);
    if (ex < 0) return CLI_EXIT_OK;   /* --help */
    if (ex != CLI_EXIT_OK) return ex;
    static const char *const acts[] = { "event", "commands", "watch", "command", NULL };
    tt_runtime *rt;
    ex = cli_start_action(&a.cc, a.action, acts, &rt);
    if (ex != CLI_EXIT_OK) return ex;
    ex = run(&a, rt);
    tt_runtime_free(rt);
    return ex;
}
