/* Watson IoT configuration (fact sheet §4, §5): the wiotp-sdk YAML file, its
 * WIOTP_* environment variables and the legacy ibmiotf INI file, each read
 * into a tt_wiotp_opts ready for tt_wiotp_new().
 *
 * Every loader first collects the known keys as text, with the line each
 * came from; one step then checks their kinds, applies the role's rules and
 * builds the config. The YAML reader is a small parser for the subset these
 * files use (block and flow mappings of scalars): anything else is refused
 * with its line number rather than guessed at. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/watson.h>

#include "actors/core/alloc.h"

#define CFG_MAX_FILE ((size_t)1 << 20)     /* 1 MiB */
#define YAML_MAX_DEPTH 64                  /* nested mappings, block and flow together */
#define PATH_CAP 64                        /* longest dotted path that can be a known key */

#if defined(__GNUC__) || defined(__clang__)
#  define CFG_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#  define CFG_PRINTF(f, a)
#endif

/* ---- Known keys ------------------------------------------------------------ */

typedef enum key_id {
    K_ORG, K_TYPE, K_DEVICE, K_APP, K_TOKEN, K_KEY, K_DOMAIN, K_LOGLEVEL, K_PORT,
    K_TRANSPORT, K_CLEANSTART, K_EXPIRY, K_KEEPALIVE, K_CAFILE, K_INSTANCE, K_VERIFY,
    K_AUTHMETHOD, K_CLEANSESSION, K_APPTYPE,         /* INI only */
    K_COUNT
} key_id;

typedef struct key_def {
    const char *path;                  /* YAML, dotted; NULL: not a YAML key */
    const char *env;                   /* environment variable; NULL: none */
    const char *ini_dev;               /* key in [device]; NULL: none */
    const char *ini_app;               /* key in [application]; NULL: none */
} key_def;

static const key_def keys[K_COUNT] = {
    [K_ORG] = { "identity.orgId", "WIOTP_IDENTITY_ORGID", "org", "org" },
    [K_TYPE] = { "identity.typeId", "WIOTP_IDENTITY_TYPEID", "type", NULL },
    [K_DEVICE] = { "identity.deviceId", "WIOTP_IDENTITY_DEVICEID", "id", NULL },
    [K_APP] = { "identity.appId", "WIOTP_IDENTITY_APPID", NULL, "id" },
    [K_TOKEN] = { "auth.token", "WIOTP_AUTH_TOKEN", "auth-token", "auth-token" },
    [K_KEY] = { "auth.key", "WIOTP_AUTH_KEY", NULL, "auth-key" },
    [K_DOMAIN] = { "options.domain", "WIOTP_OPTIONS_DOMAIN", "domain", "domain" },
    [K_LOGLEVEL] = { "options.logLevel", "WIOTP_OPTIONS_LOGLEVEL", NULL, NULL },
    [K_PORT] = { "options.mqtt.port", "WIOTP_OPTIONS_MQTT_PORT", "port", "port" },
    [K_TRANSPORT] = { "options.mqtt.transport", "WIOTP_OPTIONS_MQTT_TRANSPORT", NULL, NULL },
    [K_CLEANSTART] = { "options.mqtt.cleanStart", "WIOTP_OPTIONS_MQTT_CLEANSTART", NULL, NULL },
    [K_EXPIRY] = { "options.mqtt.sessionExpiry", "WIOTP_OPTIONS_MQTT_SESSIONEXPIRY", NULL, NULL },
    [K_KEEPALIVE] = { "options.mqtt.keepAlive", "WIOTP_OPTIONS_MQTT_KEEPALIVE", NULL, NULL },
    [K_CAFILE] = { "options.mqtt.caFile", "WIOTP_OPTIONS_MQTT_CAFILE", NULL, NULL },
    [K_INSTANCE] = { "options.mqtt.instanceId", "WIOTP_OPTIONS_MQTT_INSTANCEID", NULL, NULL },
    [K_VERIFY] = { "options.http.verify", "WIOTP_OPTIONS_HTTP_VERIFY", NULL, NULL },
    [K_AUTHMETHOD] = { NULL, NULL, "auth-method", NULL },
    [K_CLEANSESSION] = { NULL, NULL, "clean-session", "clean-session" },
    [K_APPTYPE] = { NULL, NULL, NULL, "type" },
};

/* YAML paths that hold mappings of known keys. */
static const char *const map_paths[] = { "identity", "auth", "options", "options.mqtt",
                                         "options.http" };

static const char *const log_levels[] = { "error", "warning", "info", "debug" };

/* A key's value as read: text (NULL = absent), where it came from, and
 * whether it was quoted (a YAML string, never a number or a boolean). */
typedef struct raw_val {
    char *s;
    unsigned line;                     /* 0: no line (environment) */
    bool quoted;
} raw_val;

typedef struct cfg_raw {
    raw_val v[K_COUNT];
} cfg_raw;

static void raw_set(cfg_raw *r, key_id k, char *s, bool quoted, unsigned line) {
    tti_free(r->v[k].s);
    r->v[k] = (raw_val){ s, line, quoted };
}

static void raw_fini(cfg_raw *r) {
    for (int k = 0; k < K_COUNT; k++) tti_free(r->v[k].s);
}

struct tt_wiotp_config {
    tt_wiotp_opts opts;
    char *str[K_COUNT];                /* owned; opts points into these */
    const char *log_level;             /* one of log_levels */
    bool http_verify;
    uint32_t session_expiry;           /* options.mqtt.sessionExpiry: checked and kept;
                                          it has no effect before MQTT 5 */
};

/* ---- Errors ------------------------------------------------------------------ */

typedef enum cfg_src { SRC_YAML, SRC_ENV, SRC_INI } cfg_src;

/* What is being read, and where a message goes. */
typedef struct cfg_ctx {
    cfg_src src;
    tt_wiotp_role role;
    char *why;
    size_t cap;
} cfg_ctx;

static tt_err vfail(const cfg_ctx *c, tt_err rc, unsigned line, const char *key, const char *fmt,
                    va_list ap) CFG_PRINTF(5, 0);

static tt_err vfail(const cfg_ctx *c, tt_err rc, unsigned line, const char *key, const char *fmt,
                    va_list ap) {
    if (!c->why || c->cap == 0) return rc;
    int n;
    if (line && key)
        n = snprintf(c->why, c->cap, "line %u: %s: ", line, key);
    else if (line)
        n = snprintf(c->why, c->cap, "line %u: ", line);
    else if (key)
        n = snprintf(c->why, c->cap, "%s: ", key);
    else
        n = 0;
    size_t off = n > 0 ? (size_t)n : 0;
    if (off >= c->cap) return rc;      /* truncated; snprintf ended it with NUL */
    vsnprintf(c->why + off, c->cap - off, fmt, ap);
    return rc;
}

/* A message with an optional line number (0: none). */
static tt_err fail_at(const cfg_ctx *c, tt_err rc, unsigned line, const char *fmt, ...)
    CFG_PRINTF(4, 5);

static tt_err fail_at(const cfg_ctx *c, tt_err rc, unsigned line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(c, rc, line, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

static tt_err fail_nomem(const cfg_ctx *c) { return fail_at(c, TT_ENOMEM, 0, "out of memory"); }

static const char *role_name(tt_wiotp_role role) {
    return role == TT_WIOTP_APP ? "an application" : role == TT_WIOTP_GATEWAY ? "a gateway"
                                                                              : "a device";
}

/* The key as the user wrote it in this source. */
static const char *key_name(const cfg_ctx *c, key_id k) {
    switch (c->src) {
    case SRC_ENV:
        if (c->role == TT_WIOTP_APP && k == K_KEY) return "WIOTP_AUTH_KEY (or WIOTP_API_KEY)";
        if (c->role == TT_WIOTP_APP && k == K_TOKEN)
            return "WIOTP_AUTH_TOKEN (or WIOTP_API_TOKEN)";
        return keys[k].env;
    case SRC_INI:
        return c->role == TT_WIOTP_APP ? keys[k].ini_app : keys[k].ini_dev;
    case SRC_YAML:
    default:
        return keys[k].path;
    }
}

/* A message about key k, with the line it came from when there is one. */
static tt_err fail_key(const cfg_ctx *c, key_id k, unsigned line, const char *fmt, ...)
    CFG_PRINTF(4, 5);

static tt_err fail_key(const cfg_ctx *c, key_id k, unsigned line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(c, TT_EINVAL, line, key_name(c, k), fmt, ap);
    va_end(ap);
    return TT_EINVAL;
}

static tt_err bad_value(const cfg_ctx *c, key_id k, const raw_val *v, const char *expected) {
    return fail_key(c, k, v->line, "expected %s, got %s\"%.40s\"%s", expected,
                    v->quoted ? "the quoted string " : "", v->s, strlen(v->s) > 40 ? "..." : "");
}

/* A required key: present and not empty. */
static tt_err need(const cfg_ctx *c, const cfg_raw *r, key_id k) {
    const raw_val *v = &r->v[k];
    if (!v->s) return fail_key(c, k, 0, "missing (required for %s)", role_name(c->role));
    if (!*v->s) return fail_key(c, k, v->line, "empty (required for %s)", role_name(c->role));
    return TT_OK;
}

static bool present(const cfg_raw *r, key_id k) { return r->v[k].s && *r->v[k].s; }

/* ---- Scalars ----------------------------------------------------------------- */

/* A boolean as YAML 1.1 spells it (what the SDK's YAML loader accepts);
 * `digits` also takes 1 and 0 (environment and INI values). */
static bool parse_bool(const char *s, bool digits, bool *out) {
    static const char *const t[] = { "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON" };
    static const char *const f[] = { "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF" };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (strcmp(s, t[i]) == 0) return *out = true, true;
        if (strcmp(s, f[i]) == 0) return *out = false, true;
    }
    if (digits && strcmp(s, "1") == 0) return *out = true, true;
    if (digits && strcmp(s, "0") == 0) return *out = false, true;
    return false;
}

/* A decimal integer in [lo, hi]. `strict` is YAML's form: no blanks and no
 * leading zeros (YAML 1.1 reads "0123" as octal). Otherwise, as a text value
 * converted with int(): surrounding blanks and leading zeros are fine. */
static bool parse_uint(const char *s, bool strict, uint32_t lo, uint32_t hi, uint32_t *out) {
    if (!strict)
        while (*s == ' ' || *s == '\t') s++;
    if (*s == '+') s++;
    if (*s < '0' || *s > '9') return false;
    if (strict && s[0] == '0' && s[1] != '\0') return false;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10u + (uint64_t)(*s - '0');
        if (v > hi) return false;
    }
    if (!strict)
        while (*s == ' ' || *s == '\t') s++;
    if (*s != '\0' || v < lo) return false;
    *out = (uint32_t)v;
    return true;
}

/* ---- Building the config ----------------------------------------------------- */

static tt_err cfg_alloc(const cfg_ctx *c, tt_wiotp_config **out) {
    tt_wiotp_config *cfg = tti_calloc(1, sizeof *cfg);
    if (!cfg) return fail_nomem(c);
    cfg->opts = TT_OPTS_INIT(tt_wiotp_opts);
    cfg->opts.role = c->role;
    cfg->log_level = "info";
    cfg->http_verify = true;
    cfg->session_expiry = 3600;
    *out = cfg;
    return TT_OK;
}

/* Move key k's text into the config; returns it, or NULL if absent or empty
 * (an empty domain, CA file or app id means the default, as NULL does). */
static const char *take(tt_wiotp_config *cfg, cfg_raw *r, key_id k) {
    cfg->str[k] = r->v[k].s;
    r->v[k].s = NULL;
    return cfg->str[k] && *cfg->str[k] ? cfg->str[k] : NULL;
}

/* The wiotp-sdk keys (YAML file or environment). `clean_start_default` is
 * options.mqtt.cleanStart when not given. */
static tt_err build_sdk(const cfg_ctx *c, cfg_raw *r, bool clean_start_default,
                        tt_wiotp_config **out) {
    bool strict = c->src == SRC_YAML;
    bool digits = c->src != SRC_YAML;
    uint32_t port = 0, keepalive = 0, expiry = 3600;
    bool websockets = false, clean_start = clean_start_default, verify = true;
    const char *level = "info";
    const raw_val *v;
    tt_err rc;

    /* The kinds first: each of these errors has a line to show. */
    v = &r->v[K_PORT];
    if (v->s && (v->quoted || !parse_uint(v->s, strict, 1, 65535, &port)))
        return bad_value(c, K_PORT, v, "an integer 1..65535");
    v = &r->v[K_KEEPALIVE];
    if (v->s && (v->quoted || !parse_uint(v->s, strict, 0, 65535, &keepalive)))
        return bad_value(c, K_KEEPALIVE, v, "an integer 0..65535");
    v = &r->v[K_EXPIRY];
    if (v->s && (v->quoted || !parse_uint(v->s, strict, 0, UINT32_MAX, &expiry)))
        return bad_value(c, K_EXPIRY, v, "an integer 0..4294967295");
    v = &r->v[K_CLEANSTART];
    if (v->s && (v->quoted || !parse_bool(v->s, digits, &clean_start)))
        return bad_value(c, K_CLEANSTART, v, "true or false");
    v = &r->v[K_VERIFY];
    if (v->s && (v->quoted || !parse_bool(v->s, digits, &verify)))
        return bad_value(c, K_VERIFY, v, "true or false");
    v = &r->v[K_TRANSPORT];
    if (v->s) {
        if (strcmp(v->s, "websockets") == 0)
            websockets = true;
        else if (strcmp(v->s, "tcp") != 0)
            return bad_value(c, K_TRANSPORT, v, "tcp or websockets");
    }
    v = &r->v[K_LOGLEVEL];
    if (v->s) {
        level = NULL;
        for (size_t i = 0; i < sizeof log_levels / sizeof log_levels[0]; i++)
            if (strcmp(v->s, log_levels[i]) == 0) level = log_levels[i];
        if (!level) return bad_value(c, K_LOGLEVEL, v, "error, warning, info or debug");
    }

    /* Then what the role needs, in the SDK's order. */
    if (c->role == TT_WIOTP_APP) {
        if ((rc = need(c, r, K_KEY)) || (rc = need(c, r, K_TOKEN))) return rc;
    } else {
        if ((rc = need(c, r, K_ORG)) || (rc = need(c, r, K_TYPE)) || (rc = need(c, r, K_DEVICE)))
            return rc;
        /* A Quickstart device has no credentials. */
        bool quickstart = c->role == TT_WIOTP_DEVICE && strcmp(r->v[K_ORG].s, "quickstart") == 0;
        if (!quickstart && (rc = need(c, r, K_TOKEN))) return rc;
    }

    tt_wiotp_config *cfg = NULL;
    if ((rc = cfg_alloc(c, &cfg))) return rc;
    tt_wiotp_opts *o = &cfg->opts;
    o->org = take(cfg, r, K_ORG);
    o->token = take(cfg, r, K_TOKEN);
    if (c->role == TT_WIOTP_APP) {
        o->app_id = take(cfg, r, K_APP);
        o->api_key = take(cfg, r, K_KEY);
        o->instance_id = take(cfg, r, K_INSTANCE);
    } else {
        o->type_id = take(cfg, r, K_TYPE);
        o->device_id = take(cfg, r, K_DEVICE);
    }
    o->domain = take(cfg, r, K_DOMAIN);
    o->ca_file = take(cfg, r, K_CAFILE);
    o->port = (uint16_t)port;
    o->websockets = websockets;
    /* The SDK connects with clean_session = not cleanStart. */
    o->keep_session = clean_start;
    /* keepAlive: 0 turns the keepalive off, as it does in the SDK; absent = 60 s */
    o->keepalive_s = r->v[K_KEEPALIVE].s && keepalive == 0 ? TT_KEEPALIVE_OFF : (uint16_t)keepalive;
    cfg->session_expiry = expiry;
    cfg->log_level = level;
    cfg->http_verify = verify;
    *out = cfg;
    return TT_OK;
}

/* The ibmiotf keys of an INI section. */
static tt_err build_ini(const cfg_ctx *c, cfg_raw *r, tt_wiotp_config **out) {
    uint32_t port = 0;
    bool clean = true, shared = false, quickstart;
    const raw_val *v;
    tt_err rc;

    v = &r->v[K_PORT];
    if (v->s && !parse_uint(v->s, false, 1, 65535, &port))
        return bad_value(c, K_PORT, v, "an integer 1..65535");
    v = &r->v[K_CLEANSESSION];
    if (v->s && !parse_bool(v->s, true, &clean)) return bad_value(c, K_CLEANSESSION, v, "true or false");

    if (c->role == TT_WIOTP_APP) {
        v = &r->v[K_APPTYPE];
        if (v->s) {
            if (strcmp(v->s, "shared") == 0)
                shared = true;
            else if (strcmp(v->s, "standalone") != 0)
                return bad_value(c, K_APPTYPE, v, "standalone or shared");
        }
        /* No API key means Quickstart. An org of one's own with no key is
         * refused rather than sent to the public Quickstart service. */
        quickstart = !present(r, K_KEY);
        if (quickstart && present(r, K_ORG) && strcmp(r->v[K_ORG].s, "quickstart") != 0)
            return fail_key(c, K_KEY, 0, "missing (required for an application outside Quickstart)");
        if (!quickstart && (rc = need(c, r, K_TOKEN))) return rc;
    } else {
        v = &r->v[K_AUTHMETHOD];
        if (v->s && strcmp(v->s, "token") != 0)
            return fail_key(c, K_AUTHMETHOD, v->line, "only \"token\" is supported, got \"%.40s\"",
                            v->s);
        if (c->role == TT_WIOTP_DEVICE)     /* ibmiotf's default org is Quickstart */
            quickstart = !present(r, K_ORG) || strcmp(r->v[K_ORG].s, "quickstart") == 0;
        else if ((rc = need(c, r, K_ORG)))  /* gateways have no Quickstart */
            return rc;
        else
            quickstart = false;
        if ((rc = need(c, r, K_TYPE)) || (rc = need(c, r, K_DEVICE))) return rc;
        if (!quickstart) {
            if (!r->v[K_AUTHMETHOD].s)
                return fail_key(c, K_AUTHMETHOD, 0, "missing (required for %s: auth-method = token)",
                                role_name(c->role));
            if ((rc = need(c, r, K_TOKEN))) return rc;
        }
    }

    tt_wiotp_config *cfg = NULL;
    if ((rc = cfg_alloc(c, &cfg))) return rc;
    tt_wiotp_opts *o = &cfg->opts;
    o->org = take(cfg, r, K_ORG);
    if (quickstart && !o->org) o->org = "quickstart";  /* a constant, not owned */
    o->token = take(cfg, r, K_TOKEN);
    if (c->role == TT_WIOTP_APP) {
        o->app_id = take(cfg, r, K_APP);
        o->api_key = take(cfg, r, K_KEY);
        o->shared = shared;
    } else {
        o->type_id = take(cfg, r, K_TYPE);
        o->device_id = take(cfg, r, K_DEVICE);
    }
    o->domain = take(cfg, r, K_DOMAIN);
    /* ibmiotf's default port is 8883; Quickstart is plain 1883, which is
     * what port 0 gives. */
    o->port = (uint16_t)(port ? port : quickstart ? 0 : 8883);
    o->keep_session = !clean;
    *out = cfg;
    return TT_OK;
}

/* ---- Files ------------------------------------------------------------------- */

/* The whole file, NUL-terminated, at most CFG_MAX_FILE bytes. */
static tt_err read_file(const cfg_ctx *c, const char *path, char **out, size_t *outlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return fail_at(c, TT_ENOTFOUND, 0, "cannot open %s: %s", path, strerror(e));
    }
    size_t cap = 4096, n = 0;
    char *buf = tti_malloc(cap);
    if (!buf) {
        fclose(f);
        return fail_nomem(c);
    }
    for (;;) {
        if (n + 1 == cap) {
            char *nb = tti_realloc(buf, cap * 2);
            if (!nb) {
                tti_free(buf);
                fclose(f);
                return fail_nomem(c);
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (n > CFG_MAX_FILE) {
            tti_free(buf);
            fclose(f);
            return fail_at(c, TT_EINVAL, 0, "%s is larger than 1 MiB", path);
        }
        if (got == 0) break;
    }
    if (ferror(f)) {
        int e = errno;
        tti_free(buf);
        fclose(f);
        return fail_at(c, TT_ENOTFOUND, 0, "cannot read %s: %s", path, strerror(e));
    }
    fclose(f);
    buf[n] = '\0';
    /* A NUL byte would end the text early; no text file has one. */
    const char *nul = memchr(buf, '\0', n);
    if (nul) {
        unsigned line = 1;
        for (const char *p = buf; p < nul; p++) line += *p == '\n';
        tti_free(buf);
        return fail_at(c, TT_EINVAL, line, "NUL byte in %s", path);
    }
    *out = buf;
    *outlen = n;
    return TT_OK;
}

/* ---- YAML -------------------------------------------------------------------- *
 * Block mappings by indentation (spaces), flow mappings {a: b, c: {d: e}}
 * (which may span lines), plain, 'single' and "double" quoted scalars on
 * one line, # comments, an optional leading "---". Values are kept as text
 * with their line; build_sdk() decides what each key's text may be. */

typedef struct ypath {
    char b[PATH_CAP];                  /* "options.mqtt.port" */
    size_t len;
    bool unknown;                      /* cannot be a known key or one of its mappings */
} ypath;

typedef struct yaml {
    const char *s;
    size_t n, i;                       /* length, cursor */
    unsigned line;                     /* of s[i] */
    cfg_raw *raw;
    const cfg_ctx *c;
} yaml;

static char ych(const yaml *y, size_t j) { return j < y->n ? y->s[j] : '\0'; }

static bool is_blank(char ch) { return ch == ' ' || ch == '\t'; }

static bool yeol(const yaml *y, size_t j) {
    if (j >= y->n) return true;
    return y->s[j] == '\n' || (y->s[j] == '\r' && (j + 1 >= y->n || y->s[j + 1] == '\n'));
}

static bool yblank_or_eol(const yaml *y, size_t j) { return is_blank(ych(y, j)) || yeol(y, j); }

static bool ystarts(const yaml *y, size_t j, const char *lit) {
    size_t l = strlen(lit);
    return j <= y->n && y->n - j >= l && memcmp(y->s + j, lit, l) == 0;
}

static void yskip_blanks(yaml *y) {
    while (is_blank(ych(y, y->i))) y->i++;
}

static void yskip_line(yaml *y) {
    while (y->i < y->n && y->s[y->i] != '\n') y->i++;
    if (y->i < y->n) y->i++;
    y->line++;
}

static tt_err yfail(const yaml *y, unsigned line, const char *fmt, ...) CFG_PRINTF(3, 4);

static tt_err yfail(const yaml *y, unsigned line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(y->c, TT_EINVAL, line, NULL, fmt, ap);
    va_end(ap);
    return TT_EINVAL;
}

static void path_child(ypath *out, const ypath *parent, const char *key, size_t klen) {
    *out = *parent;
    if (out->unknown) return;
    /* A key holding '.' is a key of its own, never a path. */
    if (klen == 0 || memchr(key, '.', klen) || out->len + 1 + klen >= PATH_CAP) {
        out->unknown = true;
        return;
    }
    if (out->len) out->b[out->len++] = '.';
    memcpy(out->b + out->len, key, klen);
    out->len += klen;
    out->b[out->len] = '\0';
}

static int path_key(const ypath *p) {
    if (p->unknown) return -1;
    for (int k = 0; k < K_COUNT; k++)
        if (keys[k].path && strcmp(keys[k].path, p->b) == 0) return k;
    return -1;
}

static bool path_is_map(const ypath *p) {
    if (p->unknown) return false;
    for (size_t i = 0; i < sizeof map_paths / sizeof map_paths[0]; i++)
        if (strcmp(map_paths[i], p->b) == 0) return true;
    return false;
}

/* A mapping given again replaces the earlier one, as in the SDK's loader. */
static void clear_under(cfg_raw *r, const ypath *p) {
    for (int k = 0; k < K_COUNT; k++)
        if (keys[k].path && strncmp(keys[k].path, p->b, p->len) == 0 && keys[k].path[p->len] == '.')
            raw_set(r, (key_id)k, NULL, false, 0);
}

/* A scalar at p: `val` (owned; NULL for null) is kept if p is a known key. */
static tt_err yon_scalar(yaml *y, const ypath *p, char *val, bool quoted, unsigned line) {
    int k = path_key(p);
    if (k >= 0) {
        raw_set(y->raw, (key_id)k, val, quoted, line);
        return TT_OK;
    }
    bool map = path_is_map(p);
    tti_free(val);
    if (!map) return TT_OK;             /* a key the SDK does not read either */
    if (val) return yfail(y, line, "%s: expected a mapping", p->b);
    clear_under(y->raw, p);
    return TT_OK;
}

/* A mapping starts at p. */
static tt_err yon_map(yaml *y, const ypath *p, unsigned line) {
    if (path_key(p) >= 0) return yfail(y, line, "%s: expected a value, got a mapping", p->b);
    if (path_is_map(p)) clear_under(y->raw, p);
    return TT_OK;
}

/* What a node starting at j is when this reader does not take it; NULL if
 * it may be a plain scalar. Quotes and '{' are the caller's. */
static const char *yunsupported(const yaml *y, size_t j) {
    switch (ych(y, j)) {
    case '[':
        return "sequences are not supported";
    case '-':
        return yblank_or_eol(y, j + 1) ? "sequences are not supported" : NULL;
    case '?':
        return yblank_or_eol(y, j + 1) ? "complex keys are not supported" : NULL;
    case ':':
        return yblank_or_eol(y, j + 1) ? "missing key before ':'" : NULL;
    case '&':
    case '*':
        return "anchors and aliases are not supported";
    case '!':
        return "tags are not supported";
    case '|':
    case '>':
        return "block scalars (values spanning lines) are not supported";
    case ']':
    case '}':
    case ',':
    case '%':
    case '@':
    case '`':
        return "a plain value may not start with this character (quote it)";
    default:
        return NULL;
    }
}

/* A plain scalar from the cursor, to the end of the line, a comment, or (in
 * flow context) a flow indicator; a key also ends at ": ". On return
 * [*start, *start + *len) holds it, trailing blanks cut, and the cursor is
 * just past it (before those blanks, so a comment after them is seen as one). */
static tt_err yplain(yaml *y, bool flow, bool key, size_t *start, size_t *len) {
    size_t j = y->i;
    while (!yeol(y, j)) {
        char ch = y->s[j];
        if (ch == '#' && j > y->i && is_blank(y->s[j - 1])) break;
        if (ch == ':') {
            char nx = ych(y, j + 1);
            if (yblank_or_eol(y, j + 1) || (flow && nx && strchr(",[]{}", nx))) {
                if (key) break;
                return yfail(y, y->line, "':' followed by a blank inside a value (quote the value)");
            }
        }
        if (flow && strchr(",[]{}", ch)) break;
        j++;
    }
    size_t e = j;
    while (e > y->i && is_blank(y->s[e - 1])) e--;
    *start = y->i;
    *len = e - y->i;
    y->i = e;
    return TT_OK;
}

/* A quoted scalar on one line: '...' ('' is a quote) or "..." (escapes \" \\
 * \/ \n \t \r). *out is allocated. */
static tt_err yquoted(yaml *y, char **out, size_t *outlen) {
    unsigned line = y->line;
    char q = y->s[y->i];
    size_t j = y->i + 1, len = 0;
    for (;;) {
        if (yeol(y, j))
            return yfail(y, line, "unterminated quoted value (values spanning lines are not supported)");
        char ch = y->s[j];
        if (q == '\'' && ch == '\'') {
            if (ych(y, j + 1) != '\'') break;
            j++;
        } else if (q == '"' && ch == '"') {
            break;
        } else if (q == '"' && ch == '\\') {
            char e = ych(y, j + 1);
            if (!e || !strchr("\"\\/ntr", e))
                return yfail(y, line, "unsupported escape in a double-quoted value "
                                      "(only \\\" \\\\ \\/ \\n \\t \\r)");
            j++;
        }
        len++;
        j++;
    }
    char *v = tti_malloc(len + 1);
    if (!v) return fail_nomem(y->c);
    size_t o = 0;
    for (size_t k = y->i + 1; k < j; k++) {
        char ch = y->s[k];
        if (q == '\'' && ch == '\'') {
            ch = y->s[++k];
        } else if (q == '"' && ch == '\\') {
            ch = y->s[++k];
            if (ch == 'n') ch = '\n';
            else if (ch == 't') ch = '\t';
            else if (ch == 'r') ch = '\r';
        }
        v[o++] = ch;
    }
    v[o] = '\0';
    y->i = j + 1;
    *out = v;
    *outlen = o;
    return TT_OK;
}

/* A mapping key at the cursor, quoted (a copy in *qkey, to free) or plain
 * (pointing into the text). */
static tt_err ykey(yaml *y, bool flow, char **qkey, const char **key, size_t *klen) {
    const char *bad = yunsupported(y, y->i);
    if (bad) return yfail(y, y->line, "%s", bad);
    tt_err rc;
    char ch = ych(y, y->i);
    if (ch == '"' || ch == '\'') {
        if ((rc = yquoted(y, qkey, klen))) return rc;
        *key = *qkey;
        return TT_OK;
    }
    size_t st;
    if ((rc = yplain(y, flow, true, &st, klen))) return rc;
    *key = y->s + st;
    return TT_OK;
}

static bool is_null(const char *s, size_t len) {
    return (len == 1 && s[0] == '~') ||
           (len == 4 && (memcmp(s, "null", 4) == 0 || memcmp(s, "Null", 4) == 0 ||
                         memcmp(s, "NULL", 4) == 0));
}

static tt_err yflow_map(yaml *y, const ypath *p, size_t depth);

/* The value of p at the cursor (not at the end of the line). */
static tt_err yvalue(yaml *y, const ypath *p, size_t depth, bool flow) {
    unsigned line = y->line;
    char ch = ych(y, y->i);
    const char *bad;
    tt_err rc;
    if (ch == '{') {
        if (depth >= YAML_MAX_DEPTH)
            return yfail(y, line, "mappings nested deeper than %d levels", YAML_MAX_DEPTH);
        if ((rc = yon_map(y, p, line))) return rc;
        return yflow_map(y, p, depth + 1);
    }
    if (ch == '"' || ch == '\'') {
        char *v;
        size_t len;
        if ((rc = yquoted(y, &v, &len))) return rc;
        return yon_scalar(y, p, v, true, line);
    }
    if ((bad = yunsupported(y, y->i))) return yfail(y, line, "%s", bad);
    size_t st, len;
    if ((rc = yplain(y, flow, false, &st, &len))) return rc;
    if (len == 0 || is_null(y->s + st, len)) return yon_scalar(y, p, NULL, false, line);
    char *v = tti_strndup(y->s + st, len);
    if (!v) return fail_nomem(y->c);
    return yon_scalar(y, p, v, false, line);
}

/* Blanks, line ends and comments inside a flow mapping. */
static tt_err yflow_ws(yaml *y, unsigned open_line) {
    for (;;) {
        if (y->i >= y->n)
            return yfail(y, y->line, "unterminated '{' (opened on line %u)", open_line);
        char ch = y->s[y->i];
        if (ch == ' ' || ch == '\t' || ch == '\r') {
            y->i++;
        } else if (ch == '\n') {
            y->i++;
            y->line++;
        } else if (ch == '#') {
            while (y->i < y->n && y->s[y->i] != '\n') y->i++;
        } else {
            return TT_OK;
        }
    }
}

/* {key: value, ...} at the cursor, for path p. */
static tt_err yflow_map(yaml *y, const ypath *p, size_t depth) {
    unsigned open_line = y->line;
    tt_err rc;
    y->i++;                                                /* '{' */
    for (;;) {
        if ((rc = yflow_ws(y, open_line))) return rc;
        if (y->s[y->i] == '}') {
            y->i++;
            return TT_OK;
        }
        unsigned line = y->line;
        char ch = y->s[y->i];
        char *qkey = NULL;
        const char *key;
        size_t klen;
        if (ch == '{') return yfail(y, line, "complex keys are not supported");
        if ((rc = ykey(y, true, &qkey, &key, &klen))) return rc;
        ypath child;
        path_child(&child, p, key, klen);
        tti_free(qkey);
        if ((rc = yflow_ws(y, open_line))) return rc;
        ch = y->s[y->i];
        if (ch == ':') {
            y->i++;
            if ((rc = yflow_ws(y, open_line))) return rc;
            ch = y->s[y->i];
            if (ch == ',' || ch == '}')
                rc = yon_scalar(y, &child, NULL, false, line);
            else
                rc = yvalue(y, &child, depth, true);
        } else if (ch == ',' || ch == '}') {
            rc = yon_scalar(y, &child, NULL, false, line);  /* {a, b} : null values */
        } else {
            return yfail(y, y->line, "expected ':' after a key in '{...}'");
        }
        if (rc) return rc;
        if ((rc = yflow_ws(y, open_line))) return rc;
        ch = y->s[y->i];
        y->i++;
        if (ch == '}') return TT_OK;
        if (ch != ',') return yfail(y, y->line, "expected ',' or '}' in '{...}'");
    }
}

/* One "key: value" line of the block mapping `parent`, at the cursor. A key
 * with nothing after it becomes *pend: its value is a nested mapping if the
 * next line is indented more, else null. */
static tt_err yentry(yaml *y, const ypath *parent, size_t depth, ypath *pend, unsigned *pend_line,
                     bool *pending) {
    unsigned line = y->line;
    char ch = ych(y, y->i);
    char *qkey = NULL;
    const char *key;
    size_t klen;
    tt_err rc;

    if (ch == '{') return yfail(y, line, "a mapping in '{...}' is only supported as a value");
    if ((rc = ykey(y, false, &qkey, &key, &klen))) return rc;
    yskip_blanks(y);
    if (ych(y, y->i) != ':' || !yblank_or_eol(y, y->i + 1)) {
        tti_free(qkey);
        return yfail(y, line, "expected 'key: value'");
    }
    y->i++;
    ypath p;
    path_child(&p, parent, key, klen);
    tti_free(qkey);
    yskip_blanks(y);
    if (yeol(y, y->i) || ych(y, y->i) == '#') {
        *pending = true;
        *pend = p;
        *pend_line = line;
        yskip_line(y);
        return TT_OK;
    }
    if ((rc = yvalue(y, &p, depth, false))) return rc;
    size_t before = y->i;
    yskip_blanks(y);
    if (!yeol(y, y->i) && !(ych(y, y->i) == '#' && y->i > before))
        return yfail(y, y->line, "unexpected text after the value");
    yskip_line(y);
    return TT_OK;
}

static tt_err yaml_parse(const cfg_ctx *c, cfg_raw *r, const char *s, size_t n) {
    yaml y = { s, n, 0, 1, r, c };
    struct {
        size_t indent;
        ypath path;
    } lv[YAML_MAX_DEPTH];
    size_t depth = 0;
    ypath pend;                        /* first the root, then a "key:" awaiting its value */
    memset(&pend, 0, sizeof pend);
    unsigned pend_line = 1;
    bool pending = true, marker = false, content = false;
    tt_err rc;

    if (ystarts(&y, 0, "\xEF\xBB\xBF")) y.i = 3;             /* UTF-8 byte order mark */
    while (y.i < y.n) {
        size_t start = y.i;
        while (ych(&y, y.i) == ' ') y.i++;
        size_t ind = y.i - start;
        bool tab = ych(&y, y.i) == '\t';
        yskip_blanks(&y);
        if (yeol(&y, y.i) || ych(&y, y.i) == '#') {           /* blank or comment */
            yskip_line(&y);
            continue;
        }
        if (tab) return yfail(&y, y.line, "tab in indentation (indent with spaces)");
        if (ind == 0 && (ystarts(&y, y.i, "---") || ystarts(&y, y.i, "...")) &&
            yblank_or_eol(&y, y.i + 3)) {
            if (s[y.i] == '.')
                return yfail(&y, y.line, "the end-of-document marker '...' is not supported");
            if (marker || content)
                return yfail(&y, y.line, "only one document per file is supported");
            marker = true;
            y.i += 3;
            yskip_blanks(&y);
            if (!yeol(&y, y.i) && ych(&y, y.i) != '#')
                return yfail(&y, y.line, "a value on the '---' line is not supported");
            yskip_line(&y);
            continue;
        }
        content = true;
        if (pending) {
            pending = false;
            if (depth == 0 || ind > lv[depth - 1].indent) {
                if (depth == YAML_MAX_DEPTH)
                    return yfail(&y, y.line, "mappings nested deeper than %d levels", YAML_MAX_DEPTH);
                if (depth > 0 && (rc = yon_map(&y, &pend, pend_line))) return rc;
                lv[depth].indent = ind;
                lv[depth].path = pend;
                depth++;
            } else if ((rc = yon_scalar(&y, &pend, NULL, false, pend_line))) {
                return rc;
            }
        }
        while (depth > 1 && lv[depth - 1].indent > ind) depth--;
        if (lv[depth - 1].indent != ind)
            return yfail(&y, y.line, "indentation does not match any enclosing mapping "
                                     "(values spanning lines are not supported)");
        if ((rc = yentry(&y, &lv[depth - 1].path, depth, &pend, &pend_line, &pending))) return rc;
    }
    if (pending && depth > 0) return yon_scalar(&y, &pend, NULL, false, pend_line);
    return TT_OK;
}

/* ---- INI --------------------------------------------------------------------- *
 * As Python's configparser reads it: [section] lines, "key = value" or
 * "key: value" (split at the first '=' or ':'), blanks trimmed, key names
 * case-insensitive, whole-line comments starting with '#' or ';' (a '#'
 * after a value is part of the value). Indented continuation lines are
 * refused. Only the role's section is read. */

static tt_err ini_parse(const cfg_ctx *c, cfg_raw *r, const char *s, size_t n) {
    const char *want = c->role == TT_WIOTP_APP ? "application" : "device";
    bool in = false, found = false, any_section = false, have_opt = false;
    size_t opt_ind = 0, i = 0;
    unsigned line = 0;
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) i = 3;
    while (i < n) {
        line++;
        size_t ls = i;
        while (i < n && s[i] != '\n') i++;
        size_t a = ls, b = i;
        if (i < n) i++;
        while (a < b && is_blank(s[a])) a++;
        while (b > a && (is_blank(s[b - 1]) || s[b - 1] == '\r')) b--;
        if (a == b || s[a] == '#' || s[a] == ';') continue;
        size_t ind = a - ls;
        if (have_opt && ind > opt_ind)
            return fail_at(c, TT_EINVAL, line, "continuation lines are not supported");
        if (s[a] == '[') {
            const char *close = NULL;
            for (size_t j = b; j > a + 1; j--)
                if (s[j - 1] == ']') {
                    close = s + j - 1;
                    break;
                }
            if (!close) return fail_at(c, TT_EINVAL, line, "expected ']' closing the section name");
            size_t nl = (size_t)(close - (s + a + 1));
            in = nl == strlen(want) && memcmp(s + a + 1, want, nl) == 0;
            if (in && found) return fail_at(c, TT_EINVAL, line, "section [%s] given twice", want);
            found = found || in;
            any_section = true;
            have_opt = false;
            continue;
        }
        size_t d = a;
        while (d < b && s[d] != '=' && s[d] != ':') d++;
        if (d == b) return fail_at(c, TT_EINVAL, line, "expected 'key = value'");
        size_t ke = d, vs = d + 1;
        while (ke > a && is_blank(s[ke - 1])) ke--;
        while (vs < b && is_blank(s[vs])) vs++;
        if (ke == a) return fail_at(c, TT_EINVAL, line, "missing key before '%c'", s[d]);
        /* configparser refuses keys before the first section. */
        if (!any_section) return fail_at(c, TT_EINVAL, line, "key outside any [section]");
        have_opt = true;
        opt_ind = ind;
        if (!in) continue;
        char lk[32];
        size_t kl = ke - a;
        if (kl >= sizeof lk) continue;                      /* not a key we read */
        for (size_t j = 0; j < kl; j++) {
            char ch = s[a + j];
            lk[j] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
        }
        lk[kl] = '\0';
        for (int k = 0; k < K_COUNT; k++) {
            const char *name = c->role == TT_WIOTP_APP ? keys[k].ini_app : keys[k].ini_dev;
            if (!name || strcmp(name, lk) != 0) continue;
            if (r->v[k].s) return fail_at(c, TT_EINVAL, line, "%s: given twice in [%s]", name, want);
            char *v = tti_strndup(s + vs, b - vs);
            if (!v) return fail_nomem(c);
            raw_set(r, (key_id)k, v, false, line);
            break;
        }
    }
    if (!found) return fail_at(c, TT_EINVAL, 0, "no [%s] section", want);
    return TT_OK;
}

/* ---- Public ------------------------------------------------------------------ */

static tt_err begin(const cfg_ctx *c, tt_wiotp_config **out) {
    if (c->why && c->cap) c->why[0] = '\0';
    if (!out) return fail_at(c, TT_EINVAL, 0, "no place for the result");
    *out = NULL;
    if (c->role != TT_WIOTP_DEVICE && c->role != TT_WIOTP_GATEWAY && c->role != TT_WIOTP_APP)
        return fail_at(c, TT_EINVAL, 0, "unknown role %d", (int)c->role);
    return TT_OK;
}

static tt_err load_file(cfg_ctx *c, const char *path, tt_wiotp_config **out) {
    tt_err rc = begin(c, out);
    if (rc) return rc;
    if (!path) return fail_at(c, TT_EINVAL, 0, "no path");
    char *buf = NULL;
    size_t n = 0;
    if ((rc = read_file(c, path, &buf, &n))) return rc;
    cfg_raw r;
    memset(&r, 0, sizeof r);
    if (c->src == SRC_YAML) {
        rc = yaml_parse(c, &r, buf, n);
        /* The SDK's file default: cleanStart false for every role. */
        if (!rc) rc = build_sdk(c, &r, false, out);
    } else {
        rc = ini_parse(c, &r, buf, n);
        if (!rc) rc = build_ini(c, &r, out);
    }
    raw_fini(&r);
    tti_free(buf);
    return rc;
}

tt_err tt_wiotp_config_load_yaml(const char *path, tt_wiotp_role role, tt_wiotp_config **out,
                                 char *why, size_t why_cap) {
    cfg_ctx c = { SRC_YAML, role, why, why_cap };
    return load_file(&c, path, out);
}

tt_err tt_wiotp_config_load_ini(const char *path, tt_wiotp_role role, tt_wiotp_config **out,
                                char *why, size_t why_cap) {
    cfg_ctx c = { SRC_INI, role, why, why_cap };
    return load_file(&c, path, out);
}

static tt_err env_take(const cfg_ctx *c, cfg_raw *r, key_id k, const char *name) {
    const char *s = getenv(name);
    if (!s || !*s) return TT_OK;       /* empty counts as unset */
    char *v = tti_strdup(s);
    if (!v) return fail_nomem(c);
    raw_set(r, k, v, false, 0);
    return TT_OK;
}

tt_err tt_wiotp_config_load_env(tt_wiotp_role role, tt_wiotp_config **out, char *why,
                                size_t why_cap) {
    cfg_ctx c = { SRC_ENV, role, why, why_cap };
    tt_err rc = begin(&c, out);
    if (rc) return rc;
    cfg_raw r;
    memset(&r, 0, sizeof r);
    for (int k = 0; k < K_COUNT && !rc; k++)
        if (keys[k].env) rc = env_take(&c, &r, (key_id)k, keys[k].env);
    /* Applications may name their credentials WIOTP_API_KEY / WIOTP_API_TOKEN. */
    if (!rc && role == TT_WIOTP_APP && !r.v[K_KEY].s) rc = env_take(&c, &r, K_KEY, "WIOTP_API_KEY");
    if (!rc && role == TT_WIOTP_APP && !r.v[K_TOKEN].s)
        rc = env_take(&c, &r, K_TOKEN, "WIOTP_API_TOKEN");
    /* The SDK's environment default for cleanStart differs by role: false for
     * devices and gateways, true for applications, so an application
     * configured from the environment keeps its session unless told not to. */
    if (!rc) rc = build_sdk(&c, &r, role == TT_WIOTP_APP, out);
    raw_fini(&r);
    return rc;
}

const tt_wiotp_opts *tt_wiotp_config_opts(const tt_wiotp_config *cfg) {
    return cfg ? &cfg->opts : NULL;
}

const char *tt_wiotp_config_log_level(const tt_wiotp_config *cfg) {
    return cfg ? cfg->log_level : NULL;
}

bool tt_wiotp_config_http_verify(const tt_wiotp_config *cfg) {
    return cfg ? cfg->http_verify : true;
}

void tt_wiotp_config_free(tt_wiotp_config *cfg) {
    if (!cfg) return;
    for (int k = 0; k < K_COUNT; k++) tti_free(cfg->str[k]);
    tti_free(cfg);
}
