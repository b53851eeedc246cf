/* tether rr — one MQTT 5 request and its answer, with flags after
 * mosquitto_rr: publish to -t with response topic -e and a correlation id,
 * print the payload of the answer, exit. Built on tt_client_request(). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"

static void rr_help(FILE *out) {
    fputs("usage: tether rr [-h HOST] [-p PORT] -t TOPIC -e RESPONSE_TOPIC (-m MSG | -f FILE | -s | -n)\n"
          "                 [-q 0|1|2] [-W SECS] [-v] [-N] [options]\n"
          "  -t TOPIC         where the request goes\n"
          "  -e TOPIC         where the answer is expected (subscribed before the request)\n"
          "  -m MSG, -f FILE, -s, -n   the request's payload: text, a file, stdin, empty\n"
          "  -q QOS           QoS of the request and of the subscription to -e (default 0)\n"
          "  -W SECS          wait at most SECS for the answer (default 30): exit 27 after\n"
          "  -v               print 'topic payload'\n"
          "  -N               no newline after the payload\n",
          out);
    cli_print_common_help(out);
    fputs("MQTT 5 is used whatever -V says: the request carries a response topic and\n"
          "correlation data. exit: 0 answered, 1 failure, 2 bad arguments, 27 no answer in time\n",
          out);
}

int cmd_rr(int argc, char **argv) {
    cli_conn cc;
    cli_conn_init(&cc, "tether rr");
    const char *topic = NULL, *resp = NULL, *msg = NULL, *file = NULL;
    bool from_stdin = false, verbose = false, no_newline = false;
    long qos = 0, wait_s = 30;
    int sources = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_parse_common(&cc, argc, argv, &i);
        if (r < 0) return CLI_EXIT_USAGE;
        if (r > 0) continue;
        if (!strcmp(a, "--help")) {
            rr_help(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "-s")) {
            from_stdin = true;
            sources++;
        } else if (!strcmp(a, "-n")) {
            sources++;                 /* the empty payload */
        } else if (!strcmp(a, "-v")) {
            verbose = true;
        } else if (!strcmp(a, "-N")) {
            no_newline = true;
        } else if (!strcmp(a, "-t") || !strcmp(a, "-e") || !strcmp(a, "-m") || !strcmp(a, "-f") ||
                   !strcmp(a, "-q") || !strcmp(a, "-W")) {
            if (!v) return cli_usage_error(&cc, "option %s needs a value", a);
            i++;
            if (!strcmp(a, "-t")) topic = v;
            else if (!strcmp(a, "-e")) resp = v;
            else if (!strcmp(a, "-m")) msg = v, sources++;
            else if (!strcmp(a, "-f")) file = v, sources++;
            else if (!strcmp(a, "-q")) {
                if (!cli_parse_long(v, 0, 2, &qos)) return cli_usage_error(&cc, "bad QoS '%s' (0, 1 or 2)", v);
            } else if (!cli_parse_long(v, 1, INT_MAX / 1000, &wait_s)) {
                return cli_usage_error(&cc, "bad -W '%s' (seconds from 1)", v);
            }
        } else {
            return cli_usage_error(&cc, "unknown option '%s'", a);
        }
    }
    if (!topic || !*topic) return cli_usage_error(&cc, "a request topic is needed (-t TOPIC)");
    if (!resp || !*resp) return cli_usage_error(&cc, "a response topic is needed (-e TOPIC)");
    if (strpbrk(topic, "+#") || strpbrk(resp, "+#"))
        return cli_usage_error(&cc, "the request and response topics cannot hold the wildcards + or #");
    if (sources != 1) return cli_usage_error(&cc, "give exactly one of -m, -f, -s, -n");
    cc.version = TT_MQTT_5;
    if (cli_check_common(&cc, false) != 0) return CLI_EXIT_USAGE;

    char *data = NULL;
    size_t len = 0;
    if (file) {
        if (!cli_read_file(file, &data, &len)) return CLI_EXIT_FAIL;
    } else if (from_stdin) {
        if (!cli_read_all(stdin, "stdin", &data, &len)) return CLI_EXIT_FAIL;
    } else if (msg) {
        len = strlen(msg);
    }

    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.no_reconnect = true;
    o.response_topic = resp;
    tt_runtime *rt;
    tt_client *c;
    int rc = cli_client_new(&cc, &o, &rt, &c);
    if (rc == CLI_EXIT_OK) rc = cli_connect(&cc, c);
    if (rc != CLI_EXIT_OK) {
        cli_shutdown(rt, c, false);
        free(data);
        return rc;
    }
    tt_pub m = TT_OPTS_INIT(tt_pub);
    m.topic = topic;
    m.payload = msg ? (const void *)msg : data ? data : "";
    m.payload_len = len;
    m.qos = (tt_qos)qos;
    tt_call_opts co = TT_OPTS_INIT(tt_call_opts);
    co.timeout_ms = (uint32_t)wait_s * 1000u;
    tt_future *f = tt_client_request(c, &m, &co);
    tt_err r = tt_future_wait(f, -1);
    if (r == TT_OK) {
        const tt_msg *ans = tt_future_get_msg(f);
        size_t tl = 0, pl = 0;
        const char *t = tt_msg_topic(ans, &tl);
        const char *p = tt_msg_payload(ans, &pl);
        if (verbose) printf("%.*s ", (int)tl, t);
        fwrite(p, 1, pl, stdout);
        if (!no_newline) putchar('\n');
        fflush(stdout);
        rc = CLI_EXIT_OK;
    } else if (r == TT_ETIMEDOUT) {
        fprintf(stderr, "tether: no answer on %s within %ld s\n", resp, wait_s);
        rc = CLI_EXIT_TIMEOUT;
    } else {
        cli_report("request failed", f);
        rc = CLI_EXIT_FAIL;
    }
    tt_future_free(f);
    cli_shutdown(rt, c, true);
    free(data);
    return rc;
}
