/* IBM Watson IoT Platform emulator: a mosquitto 2.0 plugin (interface 5)
 * that turns a private mosquitto into the platform for integration tests.
 * What it does and why is in README.md next to this file; in short:
 *
 *   logins      client ids d:/g:/a:/A:, tokens and API keys from the
 *               credentials file, Quickstart without credentials
 *   ACL         who may publish, subscribe and read what (a denied publish is
 *               dropped silently; a denied subscription gets SUBACK 0x80)
 *   rewriting   device events iot-2/evt/E/fmt/F become
 *               iot-2/type/T/id/D/evt/E/fmt/F; application commands
 *               iot-2/type/T/id/D/cmd/C/fmt/F also reach device d:o:T:D as
 *               iot-2/cmd/C/fmt/F; retain is cleared on every message;
 *               payloads above 131072 bytes disconnect the publisher
 *   status      retained JSON on iot-2/type/T/id/D/mon and iot-2/app/A/mon
 *               when a client connects and disconnects
 *   management  answers to a managed device's requests on iotdm-1/response,
 *               a mirror of its iotdevice-1/... messages on emu/dm/T/D/...,
 *               and control topics for tests (emu/dm-initiate, emu/notify)
 *
 * Options (mosquitto.conf, after "plugin <path>"):
 *   plugin_opt_credentials <file>   lines "device <org> <type> <id> <token>",
 *                                   "gateway <org> <type> <id> <token>",
 *                                   "apikey <key> <token>"; "#" starts a comment.
 *                                   Read once, when the broker starts.
 *   plugin_opt_port <n>             the "Port" reported in status messages
 *                                   (mosquitto 2.0 does not tell a plugin; 0 otherwise)
 *
 * How mosquitto 2.0.11 runs the events this relies on (src/handle_connect.c,
 * src/handle_publish.c, src/handle_subscribe.c, src/handle_unsubscribe.c,
 * src/plugin.c, src/context.c, src/loop.c, src/database.c):
 *  - MOSQ_EVT_BASIC_AUTH runs once per CONNECT, after the client id, clean
 *    session flag, username and password are set on the client and before
 *    the session takeover and the CONNACK. MOSQ_ERR_AUTH refuses: CONNACK 5
 *    "not authorized" to an MQTT 3.1.1 client (0x87 to MQTT 5), never 4; the
 *    client id is then cleared, so the client is never "connected".
 *  - PUBLISH: the ACL write check runs first, on the topic as published,
 *    with the payload; then MOSQ_EVT_MESSAGE, which may replace the topic
 *    (mosquitto frees the old one only through us) and the retain flag.
 *    Any error other than MOSQ_ERR_ACL_DENIED from either of them drops the
 *    message without an acknowledgement and disconnects the client. Messages
 *    published by a plugin and last wills get no MOSQ_EVT_MESSAGE.
 *  - mosquitto_broker_publish*() queue the message and deliver it on the
 *    next turn of the main loop. With a client id it goes to that client's
 *    session only (queued while a persistent session is offline), with no
 *    subscription needed and no ACL read check; without one it goes to the
 *    matching subscriptions, each checked for read access.
 *  - MOSQ_EVT_DISCONNECT runs when any connection ends (refused logins too,
 *    with no client id) with reason -1, before the will is published (the
 *    will's ACL write check comes after it). A client taken over by a new
 *    connection with its id ends after the new one's BASIC_AUTH.
 *  - The ACL subscribe check gets the granted QoS and runs before the
 *    subscription exists; the unsubscribe check runs for every filter.
 *
 * Built without sanitizers: it runs inside the broker. Every input is
 * untrusted: nothing here may crash or leak per message. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WIOTP_MAX_PAYLOAD 131072u      /* larger: the publisher is disconnected */
#define WIOTP_MAX_LEVELS 16            /* topic levels kept by split(); more are counted */
#define WIOTP_JSON_DEPTH 64            /* nesting the reqId scanner accepts */
#define WIOTP_BUCKETS 64

/* MQTT 5 reason codes used as the status CloseCode. */
#define CLOSE_NORMAL 0
#define CLOSE_TAKEN_OVER 142
#define CLOSE_TOO_LARGE 149

static mosquitto_plugin_id_t *g_pid;
static long g_port;

/* ---- Small helpers ----------------------------------------------------------------------- */

typedef struct span {
    const char *p;
    size_t n;
} span;

static bool span_is(span s, const char *lit) {
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

static bool span_eq(span a, span b) { return a.n == b.n && memcmp(a.p, b.p, a.n) == 0; }

/* A growable string on the broker's allocator; `oom` sticks. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = mosquitto_realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }
static void sb_span(sbuf *b, span s) { sb_add(b, s.p, s.n); }

static void sb_u64(sbuf *b, uint64_t v) {
    char t[24];
    int n = snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    if (n > 0) sb_add(b, t, (size_t)n);
}

/* `s` as a JSON string, quotes included. Bytes >= 0x80 pass unchanged. */
static void sb_json_str(sbuf *b, const char *s) {
    static const char hex[] = "0123456789abcdef";
    sb_add(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
        if (*c == '"' || *c == '\\') {
            char e[2] = { '\\', (char)*c };
            sb_add(b, e, 2);
        } else if (*c < 0x20) {
            char e[6] = { '\\', 'u', '0', '0', hex[*c >> 4], hex[*c & 15] };
            sb_add(b, e, 6);
        } else {
            sb_add(b, (const char *)c, 1);
        }
    }
    sb_add(b, "\"", 1);
}

static char *dup_or_empty(const char *s) { return mosquitto_strdup(s ? s : ""); }

/* ISO-8601 UTC with milliseconds: 2024-05-06T07:08:09.123Z */
static void now_iso(char out[32]) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

/* ---- Topics ------------------------------------------------------------------------------- */

typedef struct levels {
    span l[WIOTP_MAX_LEVELS];
    size_t n;                          /* every level, even past WIOTP_MAX_LEVELS */
} levels;

static void split(const char *topic, levels *lv) {
    lv->n = 0;
    const char *p = topic;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (lv->n < WIOTP_MAX_LEVELS) lv->l[lv->n] = (span){ p, len };
        lv->n++;
        if (!e) break;
        p = e + 1;
    }
}

static bool lv_is(const levels *lv, size_t i, const char *lit) {
    return i < lv->n && i < WIOTP_MAX_LEVELS && span_is(lv->l[i], lit);
}

/* A concrete name: not empty, no wildcard. */
static bool lv_name(const levels *lv, size_t i) {
    if (i >= lv->n || i >= WIOTP_MAX_LEVELS || lv->l[i].n == 0) return false;
    return !memchr(lv->l[i].p, '+', lv->l[i].n) && !memchr(lv->l[i].p, '#', lv->l[i].n);
}

/* A name or the single-level wildcard. */
static bool lv_name_or_plus(const levels *lv, size_t i) { return lv_name(lv, i) || lv_is(lv, i, "+"); }

/* Where level i starts in the topic (i < n). */
static const char *lv_from(const levels *lv, const char *topic, size_t i) {
    if (i < WIOTP_MAX_LEVELS) return lv->l[i].p;
    const char *p = topic;
    for (size_t k = 0; k < i && p; k++) {
        p = strchr(p, '/');
        if (p) p++;
    }
    return p ? p : topic + strlen(topic);
}

/* ---- Identities ----------------------------------------------------------------------------- */

typedef enum role { ROLE_NONE = 0, ROLE_DEVICE, ROLE_GATEWAY, ROLE_APP } role;

typedef struct ident {
    role role;
    char kind;                         /* the client id's first letter: d, g, a or A */
    bool quickstart;
    span org;
    span type, id;                     /* device and gateway */
    span app, instance;                /* application; instance may be empty */
} ident;

/* Type, device and application ids: letters, digits, '-', '_', '.'. */
static bool good_name(span s) {
    if (s.n == 0) return false;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok) return false;
    }
    return true;
}

/* Organization ids: letters and digits. */
static bool good_org(span s) {
    if (s.n == 0) return false;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
    }
    return true;
}

static bool parse_ident(const char *cid, ident *out) {
    memset(out, 0, sizeof *out);
    if (!cid) return false;
    span part[5];
    size_t n = 0;
    const char *p = cid;
    for (;;) {
        const char *e = strchr(p, ':');
        if (n == 5) return false;
        part[n++] = (span){ p, e ? (size_t)(e - p) : strlen(p) };
        if (!e) break;
        p = e + 1;
    }
    if (n < 3 || part[0].n != 1 || !good_org(part[1])) return false;
    out->org = part[1];
    out->kind = part[0].p[0];
    out->quickstart = span_is(part[1], "quickstart");
    switch (part[0].p[0]) {
    case 'd':
    case 'g':
        if (n != 4 || !good_name(part[2]) || !good_name(part[3])) return false;
        out->role = part[0].p[0] == 'd' ? ROLE_DEVICE : ROLE_GATEWAY;
        out->type = part[2];
        out->id = part[3];
        return true;
    case 'a':
        if (n != 3 || !good_name(part[2])) return false;
        out->role = ROLE_APP;
        out->app = part[2];
        return true;
    case 'A':
        if ((n != 3 && n != 4) || !good_name(part[2]) || (n == 4 && !good_name(part[3]))) return false;
        out->role = ROLE_APP;
        out->app = part[2];
        if (n == 4) out->instance = part[3];
        return true;
    default:
        return false;
    }
}

/* ---- Credentials ---------------------------------------------------------------------------- */

typedef enum cred_kind { CRED_DEVICE, CRED_GATEWAY, CRED_APIKEY } cred_kind;

typedef struct cred {
    struct cred *next;
    cred_kind kind;
    char *org, *type, *id;             /* device, gateway */
    char *key;                         /* apikey */
    char *token;
} cred;

static cred *g_creds;

static void creds_free(void) {
    while (g_creds) {
        cred *c = g_creds;
        g_creds = c->next;
        mosquitto_free(c->org);
        mosquitto_free(c->type);
        mosquitto_free(c->id);
        mosquitto_free(c->key);
        mosquitto_free(c->token);
        mosquitto_free(c);
    }
}

/* The org of an API key "a-<org>-<rest>", or an empty span. */
static span apikey_org(const char *key) {
    span none = { "", 0 };
    if (!key || strncmp(key, "a-", 2) != 0) return none;
    const char *o = key + 2, *e = strchr(o, '-');
    if (!e || e == o || e[1] == '\0') return none;
    return (span){ o, (size_t)(e - o) };
}

static char *dup_span(span s) {
    char *p = mosquitto_malloc(s.n + 1);
    if (p) {
        memcpy(p, s.p, s.n);
        p[s.n] = '\0';
    }
    return p;
}

static int creds_load(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "wiotp: cannot open credentials file %s", path);
        return MOSQ_ERR_INVAL;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lineno = 0, rc = MOSQ_ERR_SUCCESS, count = 0;
    while (rc == MOSQ_ERR_SUCCESS && (got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        span tok[6];
        size_t nt = 0;
        const char *p = line, *end = line + got;
        for (;;) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
            if (p >= end || *p == '#') break;
            const char *s = p;
            while (p < end && !(*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
            if (nt == 6) {
                nt++;
                break;
            }
            tok[nt++] = (span){ s, (size_t)(p - s) };
        }
        if (nt == 0) continue;
        cred *c = mosquitto_calloc(1, sizeof *c);
        if (!c) {
            rc = MOSQ_ERR_NOMEM;
            break;
        }
        bool ok;
        if ((span_is(tok[0], "device") || span_is(tok[0], "gateway")) && nt == 5) {
            c->kind = span_is(tok[0], "device") ? CRED_DEVICE : CRED_GATEWAY;
            ok = good_org(tok[1]) && good_name(tok[2]) && good_name(tok[3]);
            c->org = dup_span(tok[1]);
            c->type = dup_span(tok[2]);
            c->id = dup_span(tok[3]);
            c->token = dup_span(tok[4]);
            ok = ok && c->org && c->type && c->id && c->token;
        } else if (span_is(tok[0], "apikey") && nt == 3) {
            c->kind = CRED_APIKEY;
            c->key = dup_span(tok[1]);
            c->token = dup_span(tok[2]);
            ok = c->key && c->token && good_org(apikey_org(c->key));
        } else {
            ok = false;
        }
        c->next = g_creds;
        g_creds = c;
        if (!ok) {
            mosquitto_log_printf(MOSQ_LOG_ERR,
                                 "wiotp: %s line %d: expected \"device|gateway <org> <type> <id> <token>\" "
                                 "or \"apikey a-<org>-<x> <token>\"",
                                 path, lineno);
            rc = MOSQ_ERR_INVAL;
        }
        count++;
    }
    free(line);
    fclose(f);
    if (rc == MOSQ_ERR_SUCCESS)
        mosquitto_log_printf(MOSQ_LOG_INFO, "wiotp: %d credentials from %s", count, path);
    return rc;
}

static const cred *find_thing(cred_kind kind, span org, span type, span id) {
    for (const cred *c = g_creds; c; c = c->next)
        if (c->kind == kind && span_is(org, c->org) && span_is(type, c->type) && span_is(id, c->id)) return c;
    return NULL;
}

static const cred *find_key(const char *key) {
    for (const cred *c = g_creds; c; c = c->next)
        if (c->kind == CRED_APIKEY && !strcmp(c->key, key)) return c;
    return NULL;
}

/* ---- Sessions: the subscriptions of each client id ------------------------------------------ */

/* Messages for one client (commands, device management) go only to a
 * client subscribed to a matching filter, at the lower of the two QoS, as
 * on the platform. mosquitto does not show a plugin its subscriptions, so
 * they are recorded from the ACL checks: per client id, because a
 * persistent session outlives its connection. */
typedef struct sub {
    struct sub *next;
    char *filter;
    int qos;
} sub;

typedef struct sess {
    struct sess *next;
    char *client_id;
    sub *subs;
} sess;

static sess *g_sessions;

static sess *sess_find(const char *cid, bool create) {
    for (sess *s = g_sessions; s; s = s->next)
        if (!strcmp(s->client_id, cid)) return s;
    if (!create) return NULL;
    sess *s = mosquitto_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->client_id = mosquitto_strdup(cid);
    if (!s->client_id) {
        mosquitto_free(s);
        return NULL;
    }
    s->next = g_sessions;
    g_sessions = s;
    return s;
}

static void subs_free(sub *u) {
    while (u) {
        sub *n = u->next;
        mosquitto_free(u->filter);
        mosquitto_free(u);
        u = n;
    }
}

static void sess_drop(const char *cid) {
    for (sess **pp = &g_sessions; *pp; pp = &(*pp)->next) {
        if (!strcmp((*pp)->client_id, cid)) {
            sess *s = *pp;
            *pp = s->next;
            subs_free(s->subs);
            mosquitto_free(s->client_id);
            mosquitto_free(s);
            return;
        }
    }
}

static void sess_free_all(void) {
    while (g_sessions) sess_drop(g_sessions->client_id);
}

static void sess_subscribe(const char *cid, const char *filter, int qos) {
    sess *s = sess_find(cid, true);
    if (!s) return;
    for (sub *u = s->subs; u; u = u->next) {
        if (!strcmp(u->filter, filter)) {
            u->qos = qos;
            return;
        }
    }
    sub *u = mosquitto_calloc(1, sizeof *u);
    if (!u) return;
    u->filter = mosquitto_strdup(filter);
    if (!u->filter) {
        mosquitto_free(u);
        return;
    }
    u->qos = qos;
    u->next = s->subs;
    s->subs = u;
}

static void sess_unsubscribe(const char *cid, const char *filter) {
    sess *s = sess_find(cid, false);
    if (!s) return;
    for (sub **pp = &s->subs; *pp; pp = &(*pp)->next) {
        if (!strcmp((*pp)->filter, filter)) {
            sub *u = *pp;
            *pp = u->next;
            u->next = NULL;
            subs_free(u);
            return;
        }
    }
}

/* The highest QoS granted to `cid` for a filter matching `topic`; -1: none. */
static int sess_granted(const char *cid, const char *topic) {
    const sess *s = sess_find(cid, false);
    int best = -1;
    for (const sub *u = s ? s->subs : NULL; u; u = u->next) {
        bool match = false;
        if (mosquitto_topic_matches_sub(u->filter, topic, &match) == MOSQ_ERR_SUCCESS && match && u->qos > best)
            best = u->qos;
    }
    return best;
}

/* ---- Connections ------------------------------------------------------------------------------ */

/* One per accepted connection, from its BASIC_AUTH to its DISCONNECT. */
typedef struct conn {
    struct conn *next;
    const struct mosquitto *client;
    char *client_id, *user, *addr;
    char connect_time[32];
    bool clean;
    bool websockets;
    uint64_t read_msg, read_bytes, write_msg, write_bytes;
    int close_code;
} conn;

static conn *g_conns[WIOTP_BUCKETS];

static size_t bucket(const struct mosquitto *client) {
    return (size_t)(((uintptr_t)client >> 4) % WIOTP_BUCKETS);
}

static conn *conn_find(const struct mosquitto *client) {
    for (conn *c = g_conns[bucket(client)]; c; c = c->next)
        if (c->client == client) return c;
    return NULL;
}

static conn *conn_find_id(const char *cid) {
    for (size_t b = 0; b < WIOTP_BUCKETS; b++)
        for (conn *c = g_conns[b]; c; c = c->next)
            if (!strcmp(c->client_id, cid)) return c;
    return NULL;
}

static void conn_free(conn *c) {
    mosquitto_free(c->client_id);
    mosquitto_free(c->user);
    mosquitto_free(c->addr);
    mosquitto_free(c);
}

static void conn_unlink(conn *c) {
    for (conn **pp = &g_conns[bucket(c->client)]; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            return;
        }
    }
}

/* ---- Status messages ------------------------------------------------------------------------ */

static void status_topic(sbuf *t, const ident *id) {
    if (id->role == ROLE_APP) {
        sb_str(t, "iot-2/app/");
        sb_span(t, id->app);
        sb_str(t, "/mon");
    } else {
        sb_str(t, "iot-2/type/");
        sb_span(t, id->type);
        sb_str(t, "/id/");
        sb_span(t, id->id);
        sb_str(t, "/mon");
    }
}

static void publish_status(const conn *c, bool connect) {
    ident id;
    if (!parse_ident(c->client_id, &id)) return;
    char now[32];
    now_iso(now);
    sbuf t = { 0 }, j = { 0 };
    status_topic(&t, &id);
    sb_str(&j, "{\"Action\":");
    sb_json_str(&j, connect ? "Connect" : "Disconnect");
    sb_str(&j, ",\"Time\":");
    sb_json_str(&j, now);
    sb_str(&j, ",\"ClientAddr\":");
    sb_json_str(&j, c->addr);
    sb_str(&j, ",\"ClientID\":");
    sb_json_str(&j, c->client_id);
    sb_str(&j, ",\"Port\":");
    sb_u64(&j, (uint64_t)g_port);
    sb_str(&j, ",\"Protocol\":");
    sb_json_str(&j, c->websockets ? "mqtt-ws" : "mqtt-tcp");
    sb_str(&j, ",\"User\":");
    sb_json_str(&j, c->user);
    sb_str(&j, ",\"ConnectTime\":");
    sb_json_str(&j, c->connect_time);
    if (!connect) {
        const char *reason = c->close_code == CLOSE_TAKEN_OVER  ? "The client ID was reused by another connection."
                             : c->close_code == CLOSE_TOO_LARGE ? "The message exceeded the maximum size."
                                                                : "The connection has completed normally.";
        sb_str(&j, ",\"CloseCode\":");
        sb_u64(&j, (uint64_t)c->close_code);
        sb_str(&j, ",\"Reason\":");
        sb_json_str(&j, reason);
        sb_str(&j, ",\"ReadBytes\":");
        sb_u64(&j, c->read_bytes);
        sb_str(&j, ",\"ReadMsg\":");
        sb_u64(&j, c->read_msg);
        sb_str(&j, ",\"WriteBytes\":");
        sb_u64(&j, c->write_bytes);
        sb_str(&j, ",\"WriteMsg\":");
        sb_u64(&j, c->write_msg);
    }
    sb_str(&j, "}");
    if (!t.oom && !j.oom && j.len <= INT32_MAX) {
        int rc = mosquitto_broker_publish_copy(NULL, t.p, (int)j.len, j.p, 1, true, NULL);
        if (rc != MOSQ_ERR_SUCCESS) mosquitto_log_printf(MOSQ_LOG_WARNING, "wiotp: status for %s not sent (%d)", c->client_id, rc);
    }
    mosquitto_free(t.p);
    mosquitto_free(j.p);
}

/* ---- Delivery to one client --------------------------------------------------------------- */

/* Send `payload` on `topic` to client `cid` alone, if it holds a matching
 * subscription (at the lower QoS); queued by mosquitto for an offline
 * persistent session. */
static void deliver_to(const char *cid, const char *topic, const void *payload, size_t len, int qos) {
    int granted = sess_granted(cid, topic);
    if (granted < 0) {
        mosquitto_log_printf(MOSQ_LOG_DEBUG, "wiotp: %s has no subscription for %s: not delivered", cid, topic);
        return;
    }
    if (len > INT32_MAX) return;
    int rc = mosquitto_broker_publish_copy(cid, topic, (int)len, len ? payload : NULL, qos < granted ? qos : granted,
                                           false, NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
        mosquitto_log_printf(MOSQ_LOG_WARNING, "wiotp: message for %s not sent (%d)", cid, rc);
        return;
    }
    conn *c = conn_find_id(cid);
    if (c) {
        c->write_msg++;
        c->write_bytes += len;
    }
}

/* ---- Device management requests -------------------------------------------------------------- */

/* A strict, allocation-free JSON scanner: just enough to find the string
 * value of the top-level "reqId" of an object, over any bytes. */
typedef struct jscan {
    const unsigned char *p, *end;
    int depth;
} jscan;

static void js_ws(jscan *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n')) j->p++;
}

static bool js_hex(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* At '"': the raw contents (escapes kept), and past the closing quote. */
static bool js_string(jscan *j, span *raw) {
    if (j->p >= j->end || *j->p != '"') return false;
    const unsigned char *s = ++j->p;
    while (j->p < j->end) {
        unsigned char c = *j->p;
        if (c == '"') {
            if (raw) *raw = (span){ (const char *)s, (size_t)(j->p - s) };
            j->p++;
            return true;
        }
        if (c < 0x20) return false;
        if (c == '\\') {
            if (j->end - j->p < 2) return false;
            unsigned char e = j->p[1];
            if (e == 'u') {
                if (j->end - j->p < 6) return false;
                for (int i = 2; i < 6; i++)
                    if (!js_hex(j->p[i])) return false;
                j->p += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0') return false;
            j->p += 2;
            continue;
        }
        j->p++;
    }
    return false;
}

static bool js_digits(jscan *j) {
    const unsigned char *s = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    return j->p > s;
}

static bool js_literal(jscan *j, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0) return false;
    j->p += n;
    return true;
}

static bool js_value(jscan *j);

/* At '{' or '[': the whole container. At depth 1 of an object, *req gets
 * the raw "reqId" string (if req is set and the value is a string). */
static bool js_container(jscan *j, span *req, bool *req_is_string) {
    bool object = *j->p == '{';
    unsigned char close = object ? '}' : ']';
    if (++j->depth > WIOTP_JSON_DEPTH) return false;
    j->p++;
    js_ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return true;
    }
    for (;;) {
        bool is_req = false;
        if (object) {
            span key;
            if (!js_string(j, &key)) return false;
            js_ws(j);
            if (j->p >= j->end || *j->p != ':') return false;
            j->p++;
            js_ws(j);
            is_req = req && span_is(key, "reqId") && !*req_is_string;
        }
        if (is_req && j->p < j->end && *j->p == '"') {
            if (!js_string(j, req)) return false;
            *req_is_string = true;
        } else if (!js_value(j)) {
            return false;
        }
        js_ws(j);
        if (j->p >= j->end) return false;
        if (*j->p == ',') {
            j->p++;
            js_ws(j);
            continue;
        }
        if (*j->p != close) return false;
        j->p++;
        j->depth--;
        return true;
    }
}

static bool js_value(jscan *j) {
    js_ws(j);
    if (j->p >= j->end) return false;
    switch (*j->p) {
    case '{':
    case '[':
        return js_container(j, NULL, NULL);
    case '"':
        return js_string(j, NULL);
    case 't':
        return js_literal(j, "true");
    case 'f':
        return js_literal(j, "false");
    case 'n':
        return js_literal(j, "null");
    default:
        if (*j->p == '-') j->p++;
        if (!js_digits(j)) return false;
        if (j->p < j->end && *j->p == '.') {
            j->p++;
            if (!js_digits(j)) return false;
        }
        if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
            j->p++;
            if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
            if (!js_digits(j)) return false;
        }
        return true;
    }
}

/* True when the payload is one JSON object whose "reqId" is a string. */
static bool find_req_id(const void *payload, size_t len, span *req) {
    if (!payload || !len) return false;
    jscan j = { payload, (const unsigned char *)payload + len, 0 };
    bool found = false;
    js_ws(&j);
    if (j.p >= j.end || *j.p != '{') return false;
    if (!js_container(&j, req, &found)) return false;
    js_ws(&j);
    return j.p == j.end && found;
}

/* The requests a managed device makes; each gets an answer. */
static bool is_dm_request(const char *rest) {
    static const char *const requests[] = {
        "mgmt/manage",     "mgmt/unmanage",          "device/update/location", "add/diag/errorCodes",
        "clear/diag/errorCodes", "add/diag/log", "clear/diag/log",         "notify",
    };
    for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++)
        if (!strcmp(rest, requests[i])) return true;
    return false;
}

/* Answer a request to `cid` on `topic`: {"rc":200,"reqId":...} or rc 400. */
static void dm_answer(const char *cid, const char *topic, const void *payload, size_t len) {
    span req = { "", 0 };
    bool ok = find_req_id(payload, len, &req);
    sbuf j = { 0 };
    sb_str(&j, ok ? "{\"rc\":200,\"reqId\":\"" : "{\"rc\":400,\"reqId\":\"");
    if (ok) sb_span(&j, req);
    sb_str(&j, "\"}");
    if (!j.oom) deliver_to(cid, topic, j.p, j.len, 1);
    mosquitto_free(j.p);
}

/* ---- Access control ------------------------------------------------------------------------ */

/* iot-2/type/<n>/id/<n>/<kind>/<n>/fmt/<n>, with '+' allowed when `filter`. */
static bool is_typed(const levels *lv, const char *kind, bool filter) {
    bool (*ok)(const levels *, size_t) = filter ? lv_name_or_plus : lv_name;
    return lv->n == 9 && lv_is(lv, 0, "iot-2") && lv_is(lv, 1, "type") && ok(lv, 2) && lv_is(lv, 3, "id") &&
           ok(lv, 4) && lv_is(lv, 5, kind) && ok(lv, 6) && lv_is(lv, 7, "fmt") && ok(lv, 8);
}

/* iot-2/<kind>/<n>/fmt/<n>: the device view. */
static bool is_short(const levels *lv, const char *kind, bool filter) {
    bool (*ok)(const levels *, size_t) = filter ? lv_name_or_plus : lv_name;
    return lv->n == 5 && lv_is(lv, 0, "iot-2") && lv_is(lv, 1, kind) && ok(lv, 2) && lv_is(lv, 3, "fmt") &&
           ok(lv, 4);
}

/* iot-2/type/<GT>/id/<GD>/notify for the gateway itself. */
static bool is_own_notify(const levels *lv, const ident *id) {
    return lv->n == 6 && lv_is(lv, 0, "iot-2") && lv_is(lv, 1, "type") && lv->l[2].n && span_eq(lv->l[2], id->type) &&
           lv_is(lv, 3, "id") && span_eq(lv->l[4], id->id) && lv_is(lv, 5, "notify");
}

/* <prefix>/type/<n>/id/<n>/<at least one level> */
static bool is_typed_dm(const levels *lv, const char *prefix) {
    return lv->n >= 6 && lv_is(lv, 0, prefix) && lv_is(lv, 1, "type") && lv_name(lv, 2) && lv_is(lv, 3, "id") &&
           lv_name(lv, 4);
}

/* What a Quickstart application may subscribe to or read: events and status
 * of one named device (type may be '+' in a filter), application status. */
static bool quickstart_app_ok(const levels *lv, bool filter) {
    bool (*ok)(const levels *, size_t) = filter ? lv_name_or_plus : lv_name;
    if (lv->n == 4 && lv_is(lv, 0, "iot-2") && lv_is(lv, 1, "app") && ok(lv, 2) && lv_is(lv, 3, "mon")) return true;
    if (lv->n < 6 || !lv_is(lv, 0, "iot-2") || !lv_is(lv, 1, "type") || !ok(lv, 2) || !lv_is(lv, 3, "id") ||
        !lv_name(lv, 4))
        return false;
    if (lv->n == 6) return lv_is(lv, 5, "mon");
    return lv_is(lv, 5, "evt");
}

static bool may_publish(const ident *id, const levels *lv) {
    switch (id->role) {
    case ROLE_DEVICE:
        if (is_short(lv, "evt", false)) return true;
        return !id->quickstart && lv->n >= 2 && lv_is(lv, 0, "iotdevice-1") && lv_name(lv, 1);
    case ROLE_GATEWAY:
        return is_typed(lv, "evt", false) || is_typed_dm(lv, "iotdevice-1");
    case ROLE_APP:
        if (is_typed(lv, "evt", false)) return true;
        if (id->quickstart) return false;
        if (is_typed(lv, "cmd", false)) return true;
        if (lv_is(lv, 0, "emu") && lv_is(lv, 1, "dm-initiate"))
            return lv->n >= 5 && lv_name(lv, 2) && lv_name(lv, 3);
        if (lv_is(lv, 0, "emu") && lv_is(lv, 1, "gw-dm-initiate"))
            return lv->n >= 7 && lv_name(lv, 2) && lv_name(lv, 3) && lv_name(lv, 4) && lv_name(lv, 5);
        if (lv_is(lv, 0, "emu") && lv_is(lv, 1, "notify")) return lv->n == 4 && lv_name(lv, 2) && lv_name(lv, 3);
        return false;
    default:
        return false;
    }
}

static bool may_subscribe(const ident *id, const levels *lv) {
    switch (id->role) {
    case ROLE_DEVICE:
        if (id->quickstart) return false;
        return is_short(lv, "cmd", true) || (lv->n >= 2 && lv_is(lv, 0, "iotdm-1"));
    case ROLE_GATEWAY:
        return is_typed(lv, "cmd", true) || is_own_notify(lv, id) || (lv->n >= 2 && lv_is(lv, 0, "iotdm-1"));
    case ROLE_APP:
        if (id->quickstart) return quickstart_app_ok(lv, true);
        return (lv->n >= 2 && lv_is(lv, 0, "iot-2")) || (lv->n >= 3 && lv_is(lv, 0, "emu") && lv_is(lv, 1, "dm"));
    default:
        return false;
    }
}

static bool may_read(const ident *id, const levels *lv) {
    switch (id->role) {
    case ROLE_DEVICE:
        return !id->quickstart && (is_short(lv, "cmd", false) || (lv->n >= 2 && lv_is(lv, 0, "iotdm-1")));
    case ROLE_GATEWAY:
        return is_typed(lv, "cmd", false) || is_own_notify(lv, id) || is_typed_dm(lv, "iotdm-1");
    case ROLE_APP:
        if (id->quickstart) return quickstart_app_ok(lv, false);
        return (lv->n >= 2 && lv_is(lv, 0, "iot-2")) || (lv->n >= 3 && lv_is(lv, 0, "emu") && lv_is(lv, 1, "dm"));
    default:
        return false;
    }
}

static int on_acl_check(int event, void *event_data, void *userdata) {
    (void)event;
    (void)userdata;
    struct mosquitto_evt_acl_check *ed = event_data;
    const char *cid = mosquitto_client_id(ed->client);
    ident id;
    if (!ed->topic || !parse_ident(cid, &id)) return MOSQ_ERR_ACL_DENIED;
    levels lv;
    split(ed->topic, &lv);
    switch (ed->access) {
    case MOSQ_ACL_WRITE: {
        /* Only from a live connection: a last will comes after the
         * DISCONNECT event, and the platform publishes none. */
        conn *c = conn_find(ed->client);
        if (!c) return MOSQ_ERR_ACL_DENIED;
        c->read_msg++;
        c->read_bytes += ed->payloadlen;
        if (ed->payloadlen > WIOTP_MAX_PAYLOAD) {
            /* Not ACL_DENIED (that drops quietly): any other error drops the
             * message and disconnects the publisher. */
            c->close_code = CLOSE_TOO_LARGE;
            mosquitto_log_printf(MOSQ_LOG_NOTICE, "wiotp: %s sent %u bytes (limit %u): disconnecting", cid,
                                 (unsigned)ed->payloadlen, WIOTP_MAX_PAYLOAD);
            return MOSQ_ERR_PAYLOAD_SIZE;
        }
        return may_publish(&id, &lv) ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
    }
    case MOSQ_ACL_SUBSCRIBE:
        if (!may_subscribe(&id, &lv)) return MOSQ_ERR_ACL_DENIED;
        sess_subscribe(cid, ed->topic, ed->qos);
        return MOSQ_ERR_SUCCESS;
    case MOSQ_ACL_UNSUBSCRIBE:
        sess_unsubscribe(cid, ed->topic);
        return MOSQ_ERR_SUCCESS;
    case MOSQ_ACL_READ: {
        if (!may_read(&id, &lv)) return MOSQ_ERR_ACL_DENIED;
        conn *c = conn_find(ed->client);
        if (c) {
            c->write_msg++;
            c->write_bytes += ed->payloadlen;
        }
        return MOSQ_ERR_SUCCESS;
    }
    default:
        return MOSQ_ERR_ACL_DENIED;
    }
}

/* ---- Logins ------------------------------------------------------------------------------------ */

static bool authenticate(const ident *id, const char *user, const char *password) {
    if (id->quickstart) {
        /* Quickstart takes no credentials (given ones are not checked);
         * devices and standalone applications only. */
        return id->kind == 'd' || id->kind == 'a';
    }
    if (!user || !password) return false;
    if (id->role == ROLE_DEVICE || id->role == ROLE_GATEWAY) {
        if (strcmp(user, "use-token-auth") != 0) return false;
        const cred *c = find_thing(id->role == ROLE_DEVICE ? CRED_DEVICE : CRED_GATEWAY, id->org, id->type, id->id);
        return c && !strcmp(c->token, password);
    }
    if (id->role == ROLE_APP) {
        if (!span_eq(apikey_org(user), id->org)) return false;
        const cred *c = find_key(user);
        return c && !strcmp(c->token, password);
    }
    return false;
}

static int on_basic_auth(int event, void *event_data, void *userdata) {
    (void)event;
    (void)userdata;
    struct mosquitto_evt_basic_auth *ed = event_data;
    const char *cid = mosquitto_client_id(ed->client);
    ident id;
    if (!parse_ident(cid, &id)) {
        mosquitto_log_printf(MOSQ_LOG_NOTICE, "wiotp: refused client id \"%s\"", cid ? cid : "");
        return MOSQ_ERR_AUTH;
    }
    if (!authenticate(&id, ed->username, ed->password)) {
        mosquitto_log_printf(MOSQ_LOG_NOTICE, "wiotp: refused %s (user \"%s\"): bad credentials", cid,
                             ed->username ? ed->username : "");
        return MOSQ_ERR_AUTH;
    }

    /* A connection with the same id ends now (mosquitto closes it after this
     * event): report it before the new one. */
    conn *old = conn_find_id(cid);
    if (old && old->client != ed->client) {
        old->close_code = CLOSE_TAKEN_OVER;
        conn_unlink(old);
        publish_status(old, false);
        if (old->clean) sess_drop(old->client_id);
        conn_free(old);
    }
    conn *stale = conn_find(ed->client);
    if (stale) {
        conn_unlink(stale);
        conn_free(stale);
    }

    bool clean = mosquitto_client_clean_session(ed->client);
    if (clean) sess_drop(cid);
    conn *c = mosquitto_calloc(1, sizeof *c);
    if (!c) return MOSQ_ERR_NOMEM;
    c->client = ed->client;
    c->client_id = mosquitto_strdup(cid);
    c->user = dup_or_empty(ed->username);
    c->addr = dup_or_empty(mosquitto_client_address(ed->client));
    c->clean = clean;
    c->websockets = mosquitto_client_protocol(ed->client) == mp_websockets;
    now_iso(c->connect_time);
    if (!c->client_id || !c->user || !c->addr) {
        conn_free(c);
        return MOSQ_ERR_NOMEM;
    }
    c->next = g_conns[bucket(ed->client)];
    g_conns[bucket(ed->client)] = c;
    publish_status(c, true);
    return MOSQ_ERR_SUCCESS;
}

static int on_disconnect(int event, void *event_data, void *userdata) {
    (void)event;
    (void)userdata;
    struct mosquitto_evt_disconnect *ed = event_data;
    conn *c = conn_find(ed->client);
    if (!c) return MOSQ_ERR_SUCCESS;        /* refused, taken over, or never logged in */
    conn_unlink(c);
    publish_status(c, false);
    if (c->clean) sess_drop(c->client_id);
    conn_free(c);
    return MOSQ_ERR_SUCCESS;
}

/* ---- Messages ------------------------------------------------------------------------------------ */

static int set_topic(struct mosquitto_evt_message *ed, sbuf *t) {
    if (t->oom) {
        mosquitto_free(t->p);
        return MOSQ_ERR_NOMEM;
    }
    mosquitto_free(ed->topic);
    ed->topic = t->p;                  /* allocated with mosquitto_realloc: the broker frees it */
    t->p = NULL;
    return MOSQ_ERR_SUCCESS;
}

/* "<prefix>:<org>:<a>:<b>" */
static char *make_id(char prefix, span org, span a, span b) {
    sbuf s = { 0 };
    char p[2] = { prefix, ':' };
    sb_add(&s, p, 2);
    sb_span(&s, org);
    sb_str(&s, ":");
    sb_span(&s, a);
    sb_str(&s, ":");
    sb_span(&s, b);
    if (s.oom) {
        mosquitto_free(s.p);
        return NULL;
    }
    return s.p;
}

/* A message a device (or a gateway, templated) sends on iotdevice-1/...:
 * answered if it is a request, then passed on as emu/dm/<T>/<D>/<rest>. */
static int device_management(struct mosquitto_evt_message *ed, const char *cid, span type, span dev,
                             const char *rest, const char *answer_topic) {
    if (is_dm_request(rest)) dm_answer(cid, answer_topic, ed->payload, ed->payloadlen);
    sbuf t = { 0 };
    sb_str(&t, "emu/dm/");
    sb_span(&t, type);
    sb_str(&t, "/");
    sb_span(&t, dev);
    sb_str(&t, "/");
    sb_str(&t, rest);
    return set_topic(ed, &t);
}

static int on_message(int event, void *event_data, void *userdata) {
    (void)event;
    (void)userdata;
    struct mosquitto_evt_message *ed = event_data;
    const char *cid = mosquitto_client_id(ed->client);
    ed->retain = false;                /* the platform treats every message as not retained */
    if (ed->payloadlen > WIOTP_MAX_PAYLOAD) return MOSQ_ERR_PAYLOAD_SIZE;   /* the ACL check stops these first */
    ident id;
    if (!ed->topic || !parse_ident(cid, &id)) return MOSQ_ERR_SUCCESS;
    levels lv;
    split(ed->topic, &lv);

    if (id.role == ROLE_DEVICE) {
        if (is_short(&lv, "evt", false)) {
            /* iot-2/evt/E/fmt/F -> iot-2/type/T/id/D/evt/E/fmt/F */
            sbuf t = { 0 };
            sb_str(&t, "iot-2/type/");
            sb_span(&t, id.type);
            sb_str(&t, "/id/");
            sb_span(&t, id.id);
            sb_str(&t, "/");
            sb_str(&t, lv_from(&lv, ed->topic, 1));
            return set_topic(ed, &t);
        }
        if (lv.n >= 2 && lv_is(&lv, 0, "iotdevice-1"))
            return device_management(ed, cid, id.type, id.id, lv_from(&lv, ed->topic, 1), "iotdm-1/response");
        return MOSQ_ERR_SUCCESS;
    }

    if (id.role == ROLE_GATEWAY) {
        if (is_typed_dm(&lv, "iotdevice-1")) {
            sbuf a = { 0 };
            sb_str(&a, "iotdm-1/type/");
            sb_span(&a, lv.l[2]);
            sb_str(&a, "/id/");
            sb_span(&a, lv.l[4]);
            sb_str(&a, "/response");
            int rc = a.oom ? MOSQ_ERR_NOMEM
                           : device_management(ed, cid, lv.l[2], lv.l[4], lv_from(&lv, ed->topic, 5), a.p);
            mosquitto_free(a.p);
            return rc;
        }
        return MOSQ_ERR_SUCCESS;       /* events for any device go on as they are */
    }

    if (id.role != ROLE_APP) return MOSQ_ERR_SUCCESS;
    if (is_typed(&lv, "cmd", false)) {
        /* Goes on as is (gateways, observing applications), and to the device. */
        char *dev = make_id('d', id.org, lv.l[2], lv.l[4]);
        sbuf t = { 0 };
        sb_str(&t, "iot-2/");
        sb_str(&t, lv_from(&lv, ed->topic, 5));
        if (dev && !t.oom) deliver_to(dev, t.p, ed->payload, ed->payloadlen, ed->qos);
        mosquitto_free(dev);
        mosquitto_free(t.p);
        return MOSQ_ERR_SUCCESS;
    }
    if (lv.n >= 5 && lv_is(&lv, 0, "emu") && lv_is(&lv, 1, "dm-initiate")) {
        /* emu/dm-initiate/T/D/<rest> -> iotdm-1/<rest> to d:<org>:T:D. Nobody
         * may read the control topic, so it goes nowhere else. */
        char *dev = make_id('d', id.org, lv.l[2], lv.l[3]);
        sbuf t = { 0 };
        sb_str(&t, "iotdm-1/");
        sb_str(&t, lv_from(&lv, ed->topic, 4));
        if (dev && !t.oom) deliver_to(dev, t.p, ed->payload, ed->payloadlen, ed->qos);
        mosquitto_free(dev);
        mosquitto_free(t.p);
        return MOSQ_ERR_SUCCESS;
    }
    if (lv.n >= 7 && lv_is(&lv, 0, "emu") && lv_is(&lv, 1, "gw-dm-initiate")) {
        /* emu/gw-dm-initiate/GT/GD/T/D/<rest> -> iotdm-1/type/T/id/D/<rest> to g:<org>:GT:GD */
        char *gw = make_id('g', id.org, lv.l[2], lv.l[3]);
        sbuf t = { 0 };
        sb_str(&t, "iotdm-1/type/");
        sb_span(&t, lv.l[4]);
        sb_str(&t, "/id/");
        sb_span(&t, lv.l[5]);
        sb_str(&t, "/");
        sb_str(&t, lv_from(&lv, ed->topic, 6));
        if (gw && !t.oom) deliver_to(gw, t.p, ed->payload, ed->payloadlen, ed->qos);
        mosquitto_free(gw);
        mosquitto_free(t.p);
        return MOSQ_ERR_SUCCESS;
    }
    if (lv.n == 4 && lv_is(&lv, 0, "emu") && lv_is(&lv, 1, "notify")) {
        /* emu/notify/GT/GD -> iot-2/type/GT/id/GD/notify */
        sbuf t = { 0 };
        sb_str(&t, "iot-2/type/");
        sb_span(&t, lv.l[2]);
        sb_str(&t, "/id/");
        sb_span(&t, lv.l[3]);
        sb_str(&t, "/notify");
        return set_topic(ed, &t);
    }
    return MOSQ_ERR_SUCCESS;
}

/* ---- Plugin entry points ---------------------------------------------------------------------- */

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions) {
    for (int i = 0; i < supported_version_count; i++)
        if (supported_versions[i] == 5) return 5;
    return -1;
}

static void release_all(void) {
    for (size_t b = 0; b < WIOTP_BUCKETS; b++) {
        while (g_conns[b]) {
            conn *c = g_conns[b];
            g_conns[b] = c->next;
            conn_free(c);
        }
    }
    sess_free_all();
    creds_free();
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata, struct mosquitto_opt *options,
                          int option_count) {
    (void)userdata;
    g_pid = identifier;
    g_port = 0;
    bool have_creds = false;
    for (int i = 0; i < option_count; i++) {
        const char *k = options[i].key, *v = options[i].value;
        if (!k || !v) continue;
        if (!strcmp(k, "credentials")) {
            int rc = creds_load(v);
            if (rc != MOSQ_ERR_SUCCESS) {
                release_all();
                return rc;
            }
            have_creds = true;
        } else if (!strcmp(k, "port")) {
            char *end = NULL;
            long p = strtol(v, &end, 10);
            if (!end || *end || p < 0 || p > 65535) {
                mosquitto_log_printf(MOSQ_LOG_ERR, "wiotp: plugin_opt_port %s is not a port", v);
                release_all();
                return MOSQ_ERR_INVAL;
            }
            g_port = p;
        } else {
            mosquitto_log_printf(MOSQ_LOG_WARNING, "wiotp: unknown option plugin_opt_%s", k);
        }
    }
    if (!have_creds)
        mosquitto_log_printf(MOSQ_LOG_WARNING, "wiotp: no plugin_opt_credentials: only Quickstart clients can log in");

    int rc = mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
    if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL);
    if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_callback_register(identifier, MOSQ_EVT_MESSAGE, on_message, NULL, NULL);
    if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_callback_register(identifier, MOSQ_EVT_DISCONNECT, on_disconnect, NULL, NULL);
    if (rc != MOSQ_ERR_SUCCESS) release_all();   /* the broker does not start */
    return rc;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count) {
    (void)userdata;
    (void)options;
    (void)option_count;
    mosquitto_callback_unregister(g_pid, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
    mosquitto_callback_unregister(g_pid, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
    mosquitto_callback_unregister(g_pid, MOSQ_EVT_MESSAGE, on_message, NULL);
    mosquitto_callback_unregister(g_pid, MOSQ_EVT_DISCONNECT, on_disconnect, NULL);
    release_all();
    return MOSQ_ERR_SUCCESS;
}
