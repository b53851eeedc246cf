/* tether sub — subscribe and print messages, with flags after mosquitto_sub.
 * Pull mode: messages are taken with tt_client_poll() on the main thread, so
 * output, -C and -W need no locking. Connection events arrive on a pool
 * thread and only set flags the main loop reads. */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "sub_format.h"

#define SUB_SLICE_MS 200               /* longest poll, so signals and losses are seen */

typedef struct sub_args {
    cli_conn cc;
    const char **filters;
    size_t nfilters;
    long qos;
    long count;                        /* -C, 0 = no limit */
    long wait_s;                       /* -W, 0 = none */
    bool verbose;                      /* -v */
    bool quiet;                        /* --quiet */
    bool no_newline;                   /* -N */
    const char *format;                /* -F */
    bool no_retained;                  /* -R */
    bool retained_only;                /* --retained-only */
    bool exit_subscribed;              /* -E */
    const char **hide;                 /* -T filters */
    size_t nhide;
} sub_args;

typedef struct sub_events {
    pthread_mutex_t lock;
    bool reconnect;                    /* -c: the client reconnects by itself */
    bool quiet;
    atomic_bool closing;               /* our own disconnect: not a loss */
    bool lost;                         /* fatal: connection gone, no reconnect */
    char why[256];
} sub_events;

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static void on_event(tt_client *c, const tt_client_event *ev, void *arg) {   /* pool thread */
    sub_events *se = arg;
    (void)c;
    /* A requested disconnect can report the broker's close as an error. */
    if (ev->kind != TT_EV_DISCONNECTED || ev->err == TT_OK || atomic_load(&se->closing)) return;
    const char *why = ev->reason && *ev->reason ? ev->reason : tt_strerror(ev->err);
    if (se->reconnect) {
        if (!se->quiet) fprintf(stderr, "tether: connection lost: %s; reconnecting\n", why);
        return;
    }
    pthread_mutex_lock(&se->lock);
    se->lost = true;
    snprintf(se->why, sizeof se->why, "%s", why);
    pthread_mutex_unlock(&se->lock);
}

static void sub_help(FILE *out) {
    fputs("usage: tether sub [-h HOST] [-p PORT] -t FILTER [-t FILTER...] [-q QOS]\n"
          "                  [-C COUNT] [-W SECS] [-v | -F FORMAT] [-N] [-R] [-T FILTER]\n"
          "                  [--retained-only] [-E] [--quiet] [options]\n"
          "subscribe:\n"
          "  -t FILTER        topic filter (repeat for more)\n"
          "  -q QOS           requested QoS for every filter (default 0)\n"
          "output:\n"
          "  (default)        the payload, then a newline\n"
          "  -v               'topic payload'; with -V 5, user properties go between\n"
          "                   them as '[key:value ...]'; an empty payload prints (null)\n"
          "  -F FORMAT        mosquitto_sub's codes: %t topic, %p payload, %q QoS,\n"
          "                   %r retained, %l length, %x/%X hex, %I/%U time, %j/%J JSON,\n"
          "                   %C %R %D %E %F %P %S MQTT 5 properties, @Y...@N strftime\n"
          "                   and nanoseconds, \\n \\t ... escapes; widths: %-20t %05l %.8p\n"
          "  -N               no newline after the payload\n"
          "  -R               leave out retained messages (stale on arrival)\n"
          "  -T FILTER        leave out messages on topics FILTER matches (repeatable)\n"
          "  --quiet          nothing per message; at the end one line: count, seconds\n"
          "                   (from the first message to the last), messages/s\n"
          "ending:\n"
          "  -C COUNT         exit 0 after COUNT messages\n"
          "  --retained-only  print the retained messages, exit 0 at the first live one\n"
          "                   (with -W SECS, also after SECS)\n"
          "  -E               exit 0 once subscribed (e.g. to create a session with -c)\n"
          "  -W SECS          give up after SECS: exit 27 if COUNT was not reached (or,\n"
          "                   without -C, if nothing arrived); otherwise exit 0\n"
          "  SIGINT/SIGTERM   disconnect and exit 0\n",
          out);
    cli_print_common_help(out);
    fputs("reconnect: off by default (a lost connection ends the command with exit 1);\n"
          "with -c the client reconnects and resubscribes by itself, and the broker keeps\n"
          "the session (and QoS>0 messages) while it is away.\n"
          "exit: 0 ok, 1 connection, subscription or protocol failure, 2 bad arguments,\n"
          "27 timed out (-W)\n",
          out);
}

static int parse_sub(sub_args *sa, int argc, char **argv) {
    cli_conn *cc = &sa->cc;
    sa->filters = calloc((size_t)argc + 1, sizeof *sa->filters);
    sa->hide = calloc((size_t)argc + 1, sizeof *sa->hide);
    if (!sa->filters || !sa->hide) {
        fprintf(stderr, "tether: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_parse_common(cc, argc, argv, &i);
        if (r < 0) return CLI_EXIT_USAGE;
        if (r > 0) continue;
        if (!strcmp(a, "--help")) {
            sub_help(stdout);
            free(sa->filters);
            free(sa->hide);
            exit(CLI_EXIT_OK);
        } else if (!strcmp(a, "-v")) sa->verbose = true;
        else if (!strcmp(a, "-N")) sa->no_newline = true;
        else if (!strcmp(a, "--quiet")) sa->quiet = true;
        else if (!strcmp(a, "-R")) sa->no_retained = true;
        else if (!strcmp(a, "--retained-only")) sa->retained_only = true;
        else if (!strcmp(a, "-E")) sa->exit_subscribed = true;
        else if (!strcmp(a, "-t") || !strcmp(a, "-q") || !strcmp(a, "-C") || !strcmp(a, "-W") ||
                 !strcmp(a, "-F") || !strcmp(a, "-T")) {
            if (!v) return cli_usage_error(cc, "option %s needs a value", a);
            i++;
            if (!strcmp(a, "-F")) {
                char why[80];
                if (!sub_format_check(v, why, sizeof why)) return cli_usage_error(cc, "%s", why);
                sa->format = v;
            } else if (!strcmp(a, "-T")) {
                if (!*v) return cli_usage_error(cc, "empty topic filter for -T");
                sa->hide[sa->nhide++] = v;
            } else if (!strcmp(a, "-t")) {
                if (!*v) return cli_usage_error(cc, "empty topic filter");
                sa->filters[sa->nfilters++] = v;
            } else if (!strcmp(a, "-q")) {
                if (!cli_parse_long(v, 0, 2, &sa->qos)) return cli_usage_error(cc, "bad QoS '%s' (0, 1 or 2)", v);
            } else if (!strcmp(a, "-C")) {
                if (!cli_parse_long(v, 1, LONG_MAX, &sa->count))
                    return cli_usage_error(cc, "bad count '%s' (from 1)", v);
            } else if (!cli_parse_long(v, 1, 2000000, &sa->wait_s)) {
                return cli_usage_error(cc, "bad timeout '%s' (seconds, from 1)", v);
            }
        } else if (!strcmp(a, "-D")) {
            return cli_usage_error(cc, "sub takes only -D connect user-property KEY VALUE");
        } else {
            return cli_usage_error(cc, "unknown option '%s'", a);
        }
    }
    if (!sa->nfilters) return cli_usage_error(cc, "a topic filter is needed (-t FILTER)");
    if (sa->no_retained && sa->retained_only) return cli_usage_error(cc, "-R and --retained-only exclude each other");
    if (cli_check_common(cc, false) != 0) return CLI_EXIT_USAGE;
    return CLI_EXIT_OK;
}

/* Does `filter` (with + and #) match `topic`? */
static bool topic_matches(const char *filter, const char *topic, size_t tl) {
    const char *t = topic, *end = topic + tl;
    if (tl && *topic == '$' && (*filter == '+' || *filter == '#')) return false;
    for (;;) {
        const char *fe = strchr(filter, '/');
        size_t fl = fe ? (size_t)(fe - filter) : strlen(filter);
        if (fl == 1 && *filter == '#') return true;
        const char *te = memchr(t, '/', (size_t)(end - t));
        size_t l = te ? (size_t)(te - t) : (size_t)(end - t);
        if (!(fl == 1 && *filter == '+') && (fl != l || memcmp(filter, t, l))) return false;
        if (!fe) return !te;
        if (!te) return !strcmp(fe + 1, "#");         /* "a/#" matches "a" */
        filter = fe + 1;
        t = te + 1;
    }
}

/* Messages -R, --retained-only and -T leave out (not counted for -C). */
static bool hidden(const sub_args *sa, const tt_msg *m) {
    if (sa->no_retained && tt_msg_is_retained(m)) return true;
    size_t tl;
    const char *t = tt_msg_topic(m, &tl);
    for (size_t i = 0; i < sa->nhide; i++)
        if (topic_matches(sa->hide[i], t, tl)) return true;
    return false;
}

/* Print one message; false if stdout is gone. */
static bool print_msg(const sub_args *sa, const tt_msg *m) {
    if (sa->format) {
        sub_format_print(stdout, sa->format, m);
        if (!sa->no_newline) fputc('\n', stdout);
        return fflush(stdout) == 0 && !ferror(stdout);
    }
    size_t tl, pl;
    const char *topic = tt_msg_topic(m, &tl);
    const char *payload = tt_msg_payload(m, &pl);
    if (sa->verbose) {
        fwrite(topic, 1, tl, stdout);
        fputc(' ', stdout);
        size_t np = tt_msg_user_prop_count(m);
        if (np) {
            fputc('[', stdout);
            for (size_t i = 0; i < np; i++) {
                const char *k, *v;
                size_t kl, vl;
                if (!tt_msg_user_prop(m, i, &k, &kl, &v, &vl)) break;
                if (i) fputc(' ', stdout);
                fwrite(k, 1, kl, stdout);
                fputc(':', stdout);
                fwrite(v, 1, vl, stdout);
            }
            fputs("] ", stdout);
        }
        if (!pl) fputs("(null)", stdout);
    }
    if (pl) fwrite(payload, 1, pl, stdout);
    if (!sa->no_newline) fputc('\n', stdout);
    return fflush(stdout) == 0 && !ferror(stdout);
}

/* Subscribe and check every SUBACK code. */
static int subscribe(const sub_args *sa, tt_client *c) {
    tt_sub *subs = calloc(sa->nfilters, sizeof *subs);
    if (!subs) {
        fprintf(stderr, "tether: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    for (size_t i = 0; i < sa->nfilters; i++) {
        subs[i].filter = sa->filters[i];
        subs[i].qos = (tt_qos)sa->qos;
    }
    tt_future *f = tt_client_subscribe(c, subs, sa->nfilters, NULL);
    free(subs);
    tt_err rc = tt_future_wait(f, TT_FOREVER);
    int ret = CLI_EXIT_OK;
    if (rc == TT_EREFUSED || rc == TT_EINVAL) {
        const char *why = "";
        int code = tt_future_detail(f, &why);
        if (rc == TT_EINVAL)
            fprintf(stderr, "tether: cannot subscribe: invalid topic filter\n");
        else if (sa->nfilters == 1)
            fprintf(stderr, "tether: subscription to '%s' refused by the broker (0x%02x)\n",
                    sa->filters[0], (unsigned)code);
        else
            fprintf(stderr, "tether: every subscription refused by the broker (0x%02x)\n", (unsigned)code);
        ret = CLI_EXIT_FAIL;
    } else if (rc != TT_OK) {
        cli_report("cannot subscribe", f);
        ret = CLI_EXIT_FAIL;
    } else {
        const uint8_t *codes = NULL;
        size_t n = 0;
        if (tt_future_get_suback(f, &codes, &n) == TT_OK) {
            for (size_t i = 0; i < n && i < sa->nfilters; i++) {
                if (codes[i] >= 0x80) {
                    fprintf(stderr, "tether: subscription to '%s' refused by the broker (0x%02x)\n",
                            sa->filters[i], codes[i]);
                    ret = CLI_EXIT_FAIL;
                    break;
                }
            }
        }
    }
    tt_future_free(f);
    return ret;
}

int cmd_sub(int argc, char **argv) {
    double start = cli_now();
    sub_args sa;
    memset(&sa, 0, sizeof sa);
    cli_conn_init(&sa.cc, "tether sub");
    int rc = parse_sub(&sa, argc, argv);
    if (rc != CLI_EXIT_OK) {
        free(sa.filters);
        free(sa.hide);
        return rc;
    }

    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = on_signal;        /* no SA_RESTART: the main loop polls in slices anyway */
    sigemptyset(&act.sa_mask);
    sigaction(SIGINT, &act, NULL);
    sigaction(SIGTERM, &act, NULL);

    sub_events se;
    memset(&se, 0, sizeof se);
    pthread_mutex_init(&se.lock, NULL);
    atomic_init(&se.closing, false);
    se.reconnect = sa.cc.persistent;
    se.quiet = sa.quiet;

    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    o.pull = true;
    o.no_reconnect = !sa.cc.persistent;
    o.on_event = on_event;
    o.on_event_arg = &se;
    tt_runtime *rt;
    tt_client *c;
    rc = cli_client_new(&sa.cc, &o, &rt, &c);
    if (rc == CLI_EXIT_OK) rc = cli_connect(&sa.cc, c);
    if (rc == CLI_EXIT_OK) rc = subscribe(&sa, c);
    if (rc != CLI_EXIT_OK || sa.exit_subscribed) {
        atomic_store(&se.closing, true);
        cli_shutdown(rt, c, true);
        pthread_mutex_destroy(&se.lock);
        free(sa.filters);
        free(sa.hide);
        return rc;
    }

    double t_first = 0, t_last = 0;
    double deadline = sa.wait_s ? start + (double)sa.wait_s : 0;
    long got = 0;
    bool timed_out = false, lost = false;
    while (!g_stop && (!sa.count || got < sa.count)) {
        int32_t slice = SUB_SLICE_MS;
        if (sa.wait_s) {
            double left = deadline - cli_now();
            if (left <= 0) {
                timed_out = true;
                break;
            }
            if (left * 1000 < slice) slice = (int32_t)(left * 1000) + 1;
        }
        tt_msg *m = NULL;
        tt_err prc = tt_client_poll(c, slice, &m);
        if (prc == TT_OK && m && sa.retained_only && !tt_msg_is_retained(m)) {
            tt_msg_unref(m);                        /* the retained ones are over */
            break;
        }
        if (prc == TT_OK && m && hidden(&sa, m)) {
            tt_msg_unref(m);
            continue;
        }
        if (prc == TT_OK && m) {
            t_last = cli_now();
            if (!got++) t_first = t_last;
            bool ok = sa.quiet || print_msg(&sa, m);
            tt_msg_unref(m);
            if (!ok) {
                fprintf(stderr, "tether: cannot write to stdout\n");
                rc = CLI_EXIT_FAIL;
                break;
            }
            continue;
        }
        if (prc != TT_ETIMEDOUT) {
            fprintf(stderr, "tether: receive failed: %s\n", tt_strerror(prc));
            rc = CLI_EXIT_FAIL;
            break;
        }
        char why[sizeof se.why];
        pthread_mutex_lock(&se.lock);
        lost = se.lost;
        memcpy(why, se.why, sizeof why);
        pthread_mutex_unlock(&se.lock);
        if (lost) {
            /* Take what was already delivered before the loss, then stop. */
            while (tt_client_poll(c, 0, &m) == TT_OK && m && (!sa.count || got < sa.count)) {
                if (hidden(&sa, m) || (sa.retained_only && !tt_msg_is_retained(m))) {
                    tt_msg_unref(m);
                    continue;
                }
                t_last = cli_now();
                if (!got++) t_first = t_last;
                if (!sa.quiet) (void)print_msg(&sa, m);
                tt_msg_unref(m);
            }
            if (!sa.count || got < sa.count) {
                fprintf(stderr, "tether: connection to %s lost: %s\n", cli_endpoint(&sa.cc), why);
                rc = CLI_EXIT_FAIL;
            }
            break;
        }
    }
    if (timed_out) {
        if (sa.count ? got < sa.count : got == 0) {
            if (sa.count)
                fprintf(stderr, "tether: timed out after %ld s with %ld of %ld messages\n", sa.wait_s,
                        got, sa.count);
            else
                fprintf(stderr, "tether: timed out after %ld s without a message\n", sa.wait_s);
            rc = CLI_EXIT_TIMEOUT;
        }
    }
    if (sa.quiet) {
        double dt = t_last - t_first;
        printf("%ld messages in %.3f s: %.0f msgs/s\n", got, dt, dt > 0 ? (double)got / dt : 0.0);
        fflush(stdout);
    }
    atomic_store(&se.closing, true);
    cli_shutdown(rt, c, !lost);
    pthread_mutex_destroy(&se.lock);
    free(sa.filters);
    free(sa.hide);
    return rc;
}
