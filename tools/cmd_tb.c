/* tether tb — try the ThingsBoard device API by hand against a host and a
 * token:
 *   tether tb telemetry  -h HOST -t TOKEN -m '{"temp":21.5}'
 *   tether tb attributes -h HOST -t TOKEN -m '{"fw":"1.0"}'
 *   tether tb attributes -h HOST -t TOKEN --client-keys a,b --shared-keys c
 *   tether tb rpc-serve  -h HOST -t TOKEN [-n COUNT]   (echoes params back)
 *   tether tb rpc-call   -h HOST -t TOKEN --method M [-m PARAMS]
 *   tether tb provision  -h HOST --provision-key K --provision-secret S [--name N] [-t TOKEN]
 *   tether tb claim      -h HOST -t TOKEN [--secret S] [--duration MS]
 *   tether tb fw         -h HOST -t TOKEN [--title T --version V] [--chunk N] [-o FILE]
 * Connection options are those of pub/sub (-p, -u, -P, -i, --cafile, --cert,
 * --key, --insecure, -d); -t is the access token. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/thingsboard.h>
#include <unistd.h>

#include "cli_common.h"

#define TB_WAIT_MS 30000

typedef struct tb_args {
    cli_conn cc;
    const char *action;
    const char *token;
    const char *msg;                   /* -m JSON */
    const char *client_keys, *shared_keys;
    const char *method;
    long count;                        /* rpc-serve: stop after COUNT requests (0 = never) */
    const char *key, *secret, *name, *new_token;
    long duration;
    const char *title, *version, *out;
    long chunk;
} tb_args;

static void tb_help(FILE *out) {
    fprintf(out,
            "usage: tether tb ACTION -h HOST -t TOKEN [options]\n"
            "actions:\n"
            "  telemetry  -m JSON                     send telemetry (object, {ts,values}, or array)\n"
            "  attributes -m JSON                     send client attributes\n"
            "  attributes --client-keys K --shared-keys K   request attributes, print the answer\n"
            "  rpc-serve  [-n COUNT]                  print server-side RPCs, answer with their params\n"
            "  rpc-call   --method M [-m PARAMS]      client-side RPC, print the answer\n"
            "  provision  --provision-key K --provision-secret S [--name N] [-t TOKEN]\n"
            "                                         print the new credentials\n"
            "  claim      [--secret S] [--duration MS]\n"
            "  fw         [--title T --version V] [--chunk BYTES] [-o FILE]   fetch a firmware update\n"
            "options:\n"
            "  -t TOKEN         the device's access token (or -u/-P/-i for basic credentials)\n");
    cli_print_common_help(out);
}

static int tb_parse(tb_args *a, int argc, char **argv) {
    cli_conn_init(&a->cc, "tether tb");
    a->cc.version = TT_MQTT_5;
    if (argc < 1) {
        tb_help(stderr);
        return CLI_EXIT_USAGE;
    }
    a->action = argv[0];
    if (!strcmp(a->action, "--help")) {
        tb_help(stdout);
        return -1;
    }
    for (int i = 1; i < argc; i++) {
        int r = cli_parse_common(&a->cc, argc, argv, &i);
        if (r < 0) return CLI_EXIT_USAGE;
        if (r > 0) continue;
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help")) {
            tb_help(stdout);
            return -1;
        }
        if (!v) return cli_usage_error(&a->cc, "unknown option or missing value: %s", o);
        i++;
        if (!strcmp(o, "-t") || !strcmp(o, "--token")) {
            if (!strcmp(a->action, "provision")) a->new_token = v;
            else a->token = v;
        } else if (!strcmp(o, "-m")) a->msg = v;
        else if (!strcmp(o, "--client-keys")) a->client_keys = v;
        else if (!strcmp(o, "--shared-keys")) a->shared_keys = v;
        else if (!strcmp(o, "--method")) a->method = v;
        else if (!strcmp(o, "-n") && cli_parse_long(v, 0, 1000000000, &a->count)) continue;
        else if (!strcmp(o, "--provision-key")) a->key = v;
        else if (!strcmp(o, "--secret") || !strcmp(o, "--provision-secret")) a->secret = v;
        else if (!strcmp(o, "--name")) a->name = v;
        else if (!strcmp(o, "--duration") && cli_parse_long(v, 0, 0x7fffffff, &a->duration)) continue;
        else if (!strcmp(o, "--title")) a->title = v;
        else if (!strcmp(o, "--version")) a->version = v;
        else if (!strcmp(o, "--chunk") && cli_parse_long(v, 1, 16 * 1024 * 1024, &a->chunk)) continue;
        else if (!strcmp(o, "-o")) a->out = v;
        else return cli_usage_error(&a->cc, "bad option or value: %s %s", o, v);
    }
    return CLI_EXIT_OK;
}

static json_t *parse_json(const tb_args *a, const char *text, bool need_object) {
    json_error_t err;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &err);
    if (!j) {
        cli_usage_error(&a->cc, "-m is not JSON: %s", err.text);
        return NULL;
    }
    if (need_object && !json_is_object(j) && !json_is_array(j)) {
        json_decref(j);
        cli_usage_error(&a->cc, "-m must be a JSON object or array");
        return NULL;
    }
    return j;
}

static void print_json(const json_t *j) {
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    if (s) printf("%s\n", s);
    free(s);
}

static tt_tls_opts g_tls;

static void fill_opts(const tb_args *a, tt_tb_opts *o, tt_client_opts *co) {
    *o = TT_OPTS_INIT(tt_tb_opts);
    *co = TT_OPTS_INIT(tt_client_opts);
    o->host = a->cc.host;
    o->port = (uint16_t)a->cc.port;
    o->token = a->token;
    o->username = a->cc.user;
    o->password = a->cc.pass;
    o->client_id = a->cc.id;
    if (a->cc.tls) {
        g_tls = TT_OPTS_INIT(tt_tls_opts);
        g_tls.ca_file = a->cc.cafile;
        g_tls.ca_dir = a->cc.capath;
        g_tls.cert_file = a->cc.cert;
        g_tls.key_file = a->cc.key;
        g_tls.insecure = a->cc.insecure;
        o->tls = &g_tls;
    }
    co->no_reconnect = true;
    co->version = a->cc.version;
    if (a->cc.keepalive >= 0) co->keepalive_s = (uint16_t)a->cc.keepalive;
    o->mqtt = co;
}

/* ---- rpc-serve ----------------------------------------------------------- */

static atomic_long g_served;
static atomic_bool g_stop;

static void on_stop(int sig) {
    (void)sig;
    atomic_store(&g_stop, true);
}

static void on_rpc(tt_tb_device *d, int64_t id, const char *method, const json_t *params, void *arg) {
    (void)arg;
    char *p = params ? json_dumps(params, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    printf("rpc %lld %s %s\n", (long long)id, method, p ? p : "null");
    fflush(stdout);
    free(p);
    json_t *r = json_pack("{s:s,s:O?}", "method", method, "params", (json_t *)params);
    tt_future_free(tt_tb_device_rpc_reply(d, id, r));
    json_decref(r);
    atomic_fetch_add(&g_served, 1);
}

static int run_device(tb_args *a, tt_runtime *rt) {
    tt_tb_opts o;
    tt_client_opts co;
    fill_opts(a, &o, &co);
    if (!a->token && !a->cc.user && !a->cc.cert)
        return cli_usage_error(&a->cc, "no credentials: give -t TOKEN, -u/-P, or --cert/--key");
    json_t *m = NULL;
    const char *act = a->action;
    bool needs_msg = !strcmp(act, "telemetry") || (!strcmp(act, "attributes") && !a->client_keys && !a->shared_keys);
    if (needs_msg && !a->msg) return cli_usage_error(&a->cc, "%s needs -m JSON", act);
    if (a->msg && !(m = parse_json(a, a->msg, strcmp(act, "rpc-call") != 0))) return CLI_EXIT_USAGE;
    if (!strcmp(act, "rpc-call") && !a->method) {
        json_decref(m);
        return cli_usage_error(&a->cc, "rpc-call needs --method");
    }
    tt_tb_device *d;
    tt_err rc = tt_tb_device_new(rt, &o, &d);
    if (rc != TT_OK) {
        json_decref(m);
        fprintf(stderr, "tether: tb: %s\n", tt_strerror(rc));
        return rc == TT_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    int ex = cli_finish("connect", tt_tb_device_connect(d), TB_WAIT_MS);
    if (ex == CLI_EXIT_OK) {
        if (!strcmp(act, "telemetry")) {
            ex = cli_finish("telemetry", tt_tb_device_send_telemetry(d, m), TB_WAIT_MS);
        } else if (!strcmp(act, "attributes") && m) {
            ex = cli_finish("attributes", tt_tb_device_send_attributes(d, m), TB_WAIT_MS);
        } else if (!strcmp(act, "attributes")) {
            tt_future *f = tt_tb_device_request_attributes(d, a->client_keys, a->shared_keys, NULL);
            if (tt_future_wait(f, TB_WAIT_MS) == TT_OK) print_json(tt_future_get_ptr(f));
            else cli_report("attribute request", f), ex = CLI_EXIT_FAIL;
            tt_future_free(f);
        } else if (!strcmp(act, "rpc-call")) {
            tt_future *f = tt_tb_device_rpc_call(d, a->method, m, NULL);
            if (tt_future_wait(f, TB_WAIT_MS) == TT_OK) print_json(tt_future_get_ptr(f));
            else cli_report("rpc-call", f), ex = CLI_EXIT_FAIL;
            tt_future_free(f);
        } else if (!strcmp(act, "claim")) {
            ex = cli_finish("claim", tt_tb_device_claim(d, a->secret, (uint32_t)a->duration), TB_WAIT_MS);
        } else if (!strcmp(act, "rpc-serve")) {
            signal(SIGINT, on_stop);
            signal(SIGTERM, on_stop);
            tt_tb_device_on_rpc(d, on_rpc, NULL);
            fprintf(stderr, "tether tb: serving RPC (Ctrl-C to stop)\n");
            while (!atomic_load(&g_stop) && (!a->count || atomic_load(&g_served) < a->count)) usleep(20000);
            usleep(200000);            /* let the last reply leave */
        } else if (!strcmp(act, "fw")) {
            tt_tb_fw_opts fo = TT_OPTS_INIT(tt_tb_fw_opts);
            fo.current_title = a->title;
            fo.current_version = a->version;
            fo.chunk_size = (uint32_t)a->chunk;
            tt_future *f = tt_tb_device_fw_update(d, &fo);
            if (tt_future_wait(f, TB_WAIT_MS * 4) != TT_OK) {
                cli_report("fw", f);
                ex = CLI_EXIT_FAIL;
            } else if (!tt_future_get_ptr(f)) {
                printf("firmware is up to date\n");
            } else {
                size_t n = (size_t)tt_future_get_i64(f);
                const char *path = a->out ? a->out : tt_tb_fw_title(f);
                FILE *fp = fopen(path, "wb");
                if (!fp || fwrite(tt_future_get_ptr(f), 1, n, fp) != n) {
                    fprintf(stderr, "tether: fw: cannot write %s\n", path);
                    ex = CLI_EXIT_FAIL;
                } else {
                    printf("%s %s: %zu bytes written to %s\n", tt_tb_fw_title(f), tt_tb_fw_version(f), n, path);
                    ex = cli_finish("fw report", tt_tb_device_fw_report(d, TT_TB_FW_UPDATED, tt_tb_fw_title(f),
                                                                    tt_tb_fw_version(f), NULL), TB_WAIT_MS);
                }
                if (fp) fclose(fp);
            }
            tt_future_free(f);
        } else {
            ex = cli_usage_error(&a->cc, "unknown action '%s'", act);
        }
        tt_future *df = tt_tb_device_disconnect(d);
        (void)tt_future_wait(df, 5000);
        tt_future_free(df);
    }
    tt_tb_device_free(d);
    json_decref(m);
    return ex;
}

static int run_provision(tb_args *a, tt_runtime *rt) {
    if (!a->key || !a->secret) return cli_usage_error(&a->cc, "provision needs --provision-key and --provision-secret");
    tt_tb_provision_opts o = TT_OPTS_INIT(tt_tb_provision_opts);
    o.host = a->cc.host;
    o.port = (uint16_t)a->cc.port;
    o.key = a->key;
    o.secret = a->secret;
    o.device_name = a->name;
    o.login_password = a->cc.pass;
    if (a->new_token) {
        o.type = TT_TB_CRED_ACCESS_TOKEN;
        o.token = a->new_token;
    }
    tt_tls_opts tls = TT_OPTS_INIT(tt_tls_opts);
    if (a->cc.tls) {
        tls.ca_file = a->cc.cafile;
        tls.insecure = a->cc.insecure;
        o.tls = &tls;
    }
    tt_future *f = tt_tb_provision(rt, &o);
    int ex = CLI_EXIT_OK;
    if (tt_future_wait(f, TB_WAIT_MS) != TT_OK) {
        cli_report("provision", f);
        ex = CLI_EXIT_FAIL;
    } else {
        const tt_tb_credentials *c = tt_future_get_ptr(f);
        json_t *j = json_object();
        static const char *const types[] = { "NONE", "ACCESS_TOKEN", "MQTT_BASIC", "X509_CERTIFICATE" };
        json_object_set_new(j, "credentialsType", json_string(types[c->type]));
        if (c->token) json_object_set_new(j, "token", json_string(c->token));
        if (c->client_id) json_object_set_new(j, "clientId", json_string(c->client_id));
        if (c->username) json_object_set_new(j, "userName", json_string(c->username));
        if (c->password) json_object_set_new(j, "password", json_string(c->password));
        if (c->cert) json_object_set_new(j, "certificate", json_string(c->cert));
        print_json(j);
        json_decref(j);
    }
    tt_future_free(f);
    return ex;
}

int cmd_tb(int argc, char **argv);   /* called from tether.c */

int cmd_tb(int argc, char **argv) {
    tb_args a;
    memset(&a, 0, sizeof a);
    int ex = tb_parse(&a, argc, argv);
    if (ex < 0) return CLI_EXIT_OK;   /* --help */
    if (ex != CLI_EXIT_OK) return ex;
    static const char *const acts[] = { "telemetry", "attributes", "rpc-serve", "rpc-call",
                                        "provision", "claim", "fw", NULL };
    tt_runtime *rt;
    ex = cli_start_action(&a.cc, a.action, acts, &rt);
    if (ex != CLI_EXIT_OK) return ex;
    ex = !strcmp(a.action, "provision") ? run_provision(&a, rt) : run_device(&a, rt);
    tt_runtime_free(rt);
    return ex;
}
