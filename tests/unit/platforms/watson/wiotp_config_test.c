/* Watson IoT configuration loaders: the wiotp-sdk YAML file, the WIOTP_*
 * environment and the legacy ibmiotf INI file, each mapped onto
 * tt_wiotp_opts; the errors a user sees (key and line named); and inputs
 * that must fail cleanly, never crash: random bytes, deep nesting, long
 * lines, allocation failures. Files live in a mkdtemp directory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tether/log.h>
#include <tether/watson.h>
#include <unistd.h>

#include "tt_test.h"

extern char **environ;

/* ---- helpers --------------------------------------------------------------- */

static char g_dir[512];

static void remove_dir(void) {
    if (g_dir[0]) rmdir(g_dir);
}

static const char *tmp_dir(void) {
    if (!g_dir[0]) {
        const char *t = getenv("TMPDIR");
        if (!t || !*t) t = "/tmp";
        snprintf(g_dir, sizeof g_dir, "%s/wiotp_config_XXXXXX", t);
        if (!mkdtemp(g_dir)) {
            fprintf(stderr, "mkdtemp %s: %s\n", g_dir, strerror(errno));
            exit(2);
        }
        atexit(remove_dir);
    }
    return g_dir;
}

static void tmp_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", tmp_dir(), name);
}

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
}

static bool has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

typedef enum kind { YAML, INI } kind;

/* Load `len` bytes as a file of kind k; the file is removed again. */
static tt_err load_bytes(kind k, const void *data, size_t len, tt_wiotp_role role,
                         tt_wiotp_config **cfg, char *why, size_t cap) {
    char path[600];
    tmp_path(path, sizeof path, k == YAML ? "wiotp.yaml" : "wiotp.ini");
    write_bytes(path, data, len);
    tt_err rc = k == YAML ? tt_wiotp_config_load_yaml(path, role, cfg, why, cap)
                          : tt_wiotp_config_load_ini(path, role, cfg, why, cap);
    unlink(path);
    return rc;
}

static tt_err load_yaml(const char *text, tt_wiotp_role role, tt_wiotp_config **cfg, char *why,
                        size_t cap) {
    return load_bytes(YAML, text, strlen(text), role, cfg, why, cap);
}

static tt_err load_ini(const char *text, tt_wiotp_role role, tt_wiotp_config **cfg, char *why,
                       size_t cap) {
    return load_bytes(INI, text, strlen(text), role, cfg, why, cap);
}

/* Expect TT_EINVAL with every one of `want` (NULL-terminated) in the message. */
static void expect_einval(kind k, const char *text, tt_wiotp_role role, const char *want1,
                          const char *want2) {
    char why[256];
    tt_wiotp_config *cfg = (tt_wiotp_config *)1;
    tt_err rc = k == YAML ? load_yaml(text, role, &cfg, why, sizeof why)
                          : load_ini(text, role, &cfg, why, sizeof why);
    TT_CHECK_MSG(rc == TT_EINVAL, "rc %d for:\n%s", rc, text);
    TT_CHECK_MSG(cfg == NULL, "out not cleared for:\n%s", text);
    if (rc == TT_OK) tt_wiotp_config_free(cfg);
    if (rc != TT_EINVAL) return;
    TT_CHECK_MSG(!want1 || has(why, want1), "\"%s\" lacks \"%s\" for:\n%s", why, want1, text);
    TT_CHECK_MSG(!want2 || has(why, want2), "\"%s\" lacks \"%s\" for:\n%s", why, want2, text);
}

/* ---- YAML -------------------------------------------------------------------- */

static const char device_yaml[] =
    "# device configuration\n"
    "identity:\n"
    "  orgId: myorg1\n"
    "  typeId: sensor\n"
    "  deviceId: dev-001\n"
    "  appId: not-for-devices\n"
    "auth:\n"
    "  token: \"s3cr3t#token\"\n"
    "  key: a-myorg1-notfordevices\n"
    "options:\n"
    "  domain: example.internetofthings.test\n"
    "  logLevel: debug\n"
    "  mqtt:\n"
    "    port: 443\n"
    "    transport: websockets\n"
    "    cleanStart: true\n"
    "    sessionExpiry: 7200\n"
    "    keepAlive: 30\n"
    "    caFile: /etc/ssl/wiotp.pem\n"
    "    instanceId: not-for-devices\n"
    "  http:\n"
    "    verify: false\n";

static void test_yaml_device_every_key(void) {
    tt_wiotp_role roles[] = { TT_WIOTP_DEVICE, TT_WIOTP_GATEWAY };
    for (int r = 0; r < 2; r++) {
        char why[256];
        tt_wiotp_config *cfg = NULL;
        TT_CHECK_EQ_INT(load_yaml(device_yaml, roles[r], &cfg, why, sizeof why), TT_OK);
        TT_REQUIRE(cfg);
        TT_CHECK_EQ_STR(why, "");
        const tt_wiotp_opts *o = tt_wiotp_config_opts(cfg);
        TT_CHECK_EQ_INT(o->size, sizeof(tt_wiotp_opts));
        TT_CHECK_EQ_INT(o->role, roles[r]);
        TT_CHECK_EQ_STR(o->org, "myorg1");
        TT_CHECK_EQ_STR(o->type_id, "sensor");
        TT_CHECK_EQ_STR(o->device_id, "dev-001");
        TT_CHECK_EQ_STR(o->token, "s3cr3t#token");
        TT_CHECK_EQ_STR(o->domain, "example.internetofthings.test");
        TT_CHECK_EQ_STR(o->ca_file, "/etc/ssl/wiotp.pem");
        TT_CHECK_EQ_INT(o->port, 443);
        TT_CHECK(o->websockets);
        TT_CHECK(o->keep_session);
        TT_CHECK_EQ_INT(o->keepalive_s, 30);
        TT_CHECK_EQ_STR(tt_wiotp_config_log_level(cfg), "debug");
        TT_CHECK(!tt_wiotp_config_http_verify(cfg));
        /* application-only keys do not reach a device's options */
        TT_CHECK(o->app_id == NULL);
        TT_CHECK(o->api_key == NULL);
        TT_CHECK(o->instance_id == NULL);
        TT_CHECK(!o->shared);
        /* what the file cannot say is left for the caller */
        TT_CHECK(o->host == NULL);
        TT_CHECK(o->tls == TT_WIOTP_TLS_AUTO);
        TT_CHECK(o->on_message == NULL && o->mqtt == NULL && o->tls_opts == NULL);
        tt_wiotp_config_free(cfg);
    }
}

static void test_yaml_app_every_key(void) {
    const char *text =
        "identity:\n"
        "  orgId: myorg1\n"
        "  appId: dashboard\n"
        "  typeId: not-for-apps\n"
        "  deviceId: not-for-apps\n"
        "auth:\n"
        "  key: a-myorg1-abcdef\n"
        "  token: apitoken\n"
        "options:\n"
        "  mqtt:\n"
        "    instanceId: worker-2\n"
        "    port: 8883\n"
        "    transport: tcp\n"
        "    cleanStart: false\n"
        "    keepAlive: 0\n"
        "  http: {verify: true}\n";
    char why[256];
    tt_wiotp_config *cfg = NULL;
    TT_CHECK_EQ_INT(load_yaml(text, TT_WIOTP_APP, &cfg, why, sizeof why), TT_OK);
    TT_REQUIRE(cfg);
    const tt_wiotp_opts *o = tt_wiotp_config_opts(cfg);
    TT_CHECK_EQ_INT(o->role, TT_WIOTP_APP);
    TT_CHECK_EQ_STR(o->org, "myorg1");
    TT_CHECK_EQ_STR(o->app_id, "dashboard");
    TT_CHECK_EQ_STR(o->api_key, "a-myorg1-abcdef");
    TT_CHECK_EQ_STR(o->token, "apitoken");
    TT_CHECK_EQ_STR(o->instance_id, "worker-2");
    TT_CHECK_EQ_INT(o->port, 8883);
    TT_CHECK(!o->websockets);
    TT_CHECK(!o->keep_session);
    TT_CHECK_EQ_INT(o->keepalive_s, TT_KEEPALIVE_OFF);   /* an explicit 0: off */
    TT_CHECK(o->type_id == NULL && o->device_id == NULL);
    TT_CHECK(tt_wiotp_config_http_verify(cfg));
    TT_CHECK_EQ_STR(tt_wiotp_config_log_level(cfg), "info");
    tt_wiotp_config_free(cfg);

    /* orgId and appId are optional for an application */
    cfg = NULL;
    TT_CHECK_EQ_INT(load_yaml("auth: {key: a-org9-x, token: t}\n", TT_WIOTP_APP, &cfg, why,
                              sizeof why), TT_OK);
    TT_REQUIRE(cfg);
    o = tt_wiotp_config_opts(cfg);
    TT_CHECK(o->org == NULL && o->app_id == NULL && o->instance_id == NULL);
    TT_CHECK_EQ_STR(o->api_key, "a-org9-x");
    tt_wiotp_config_free(cfg);
}

static void test_yaml_defaults(void) {
    char why[256];
    tt_wiotp_config *cfg = NULL;
    TT_CHECK_EQ_INT(load_yaml("identity: {orgId: o1, typeId: t, deviceId: d}\nauth: {token: k}\n",
                              TT_WIOTP_DEVICE, &cfg, why, sizeof why), TT_OK);
    TT_REQUIRE(cfg);
    const tt_wiotp_opts *o = tt_wiotp_config_opts(cfg);
    TT_CHECK_EQ_INT(o->port, 0);
    TT_CHECK(!o->websockets);
    TT_CHECK(!o->keep_session);                       /* cleanStart false */
    TT_CHECK_EQ_INT(o->keepalive_s, 0);
    TT_CHECK(o->domain == NULL && o->ca_file == NULL);
    TT_CHECK_EQ_STR(tt_wiotp_config_log_level(cfg), "info");
    TT_CHECK(tt_wiotp_config_http_verify(cfg));
    tt_wiotp_config_free(cfg);

    /* In a file, cleanStart defaults to false for applications too (unlike
     * the environment). */
    cfg = NULL;
    TT_CHECK_EQ_INT(load_yaml("auth: {key: a-o1-x, token: t}\n", TT_WIOTP_APP, &cfg, why, sizeof why),
                    TT_OK);
    TT_REQUIRE(cfg);
    TT_CHECK(!tt_wiotp_config_opts(cfg)->keep_session);
    tt_wiotp_config_free(cfg);
}

static void test_yaml_flow_mappings(void) {
    /* the fact sheet's example, values filled in */
    const char *text =
        "identity: {orgId: abc123, typeId: sensor, deviceId: d1}\n"
        "auth: {token: tok}\n"
        "options:\n"
        "  domain: internetofthings.ibmcloud.com\n"
        "  logLevel: warning\n"
        "  mqtt: {port: 8883, transport: tcp, cleanStart: true, sessionExpiry: 3600, keepAlive: 60, "
        "caFile: /x/ca.pem}\n";
    char why[256];
    tt_wiotp_config *cfg = NULL;
    TT_CHECK_EQ_INT(load_yaml(text, TT_WIOTP_DEVICE, &cfg, why, sizeof why), TT_OK);
    TT_REQUIRE(cfg);
    const tt_wiotp_opts *o = tt_wiotp_config_opts(cfg);
    TT_CHECK_EQ_STR(o->org, "abc123");
    TT_CHECK_EQ_STR(o->type_id, "sensor");
    TT_CHECK_EQ_STR(o->device_id, "d1");
    TT_CHECK_EQ_STR(o->token, "tok");
    TT_CHECK_EQ_INT(o->port, 8883);
    TT_CHECK(o->keep_session);
    TT_CHECK_EQ_INT(o->keepalive_s, 60);
    TT_CHECK_EQ_STR(o->ca_file, "/x/ca.pem");
    TT_CHECK_EQ_STR(tt_wiotp_config_log_level(cfg), "warning");
    tt_wiotp_config_free(cfg);

    /* nested flow mappings, a flow mapping over several lines with a
     * comment, quoted keys and values holding flow indicators, a trailing
     * comma, an empty mapping */
    text = "identity: {orgId: abc123,   # the org\n"
           "           \"typeId\" : 't,1', deviceId: \"d}1\",\n"
           "}\n"
           "auth: {token: 'tok{,}'}\n"
           "extra: {}\n"
           "options: {mqtt: {port: 1883, transport: websockets}, http: {verify: no}}\n";
    cfg = NULL;
    TT_CHECK_EQ_INT(load_yaml(text, TT_WIOTP_DEVICE, &cfg, why, sizeof why), TT_OK);
    TT_CHECK_MSG(cfg != NULL, "%s", why);
    TT_REQUIRE(cfg);
    o = tt_wiotp_config_opts(cfg);
    TT_CHECK_EQ_STR(o->org, "abc123");
    TT_CHECK_EQ_STR(o->type_id, "t,1");
    TT_CHECK_EQ_STR(o->device_id, "d}1");
    TT_CHECK_EQ_STR(o->token, "tok{,}");
    TT_CHECK_EQ_INT(o->port, 1883);
    TT_CHECK(o->websockets);
    TT_CHECK(!tt_wiotp_config_http_verify(cfg));
    tt_wiotp_config_free(cfg);

    /* errors inside a flow mapping name their line */
    expect_einval(YAML,
                  "identity: {orgId: o,\n typeId: t,\n deviceId: d}\n"
                  "options: {mqtt: {port: 8883,\n  keepAlive: soon}}\n",
                  TT_WIOTP_DEVICE, "line 5", "options.mqtt.keepAlive");
    expect_einval(YAML, "a: 1\nidentity: {orgId: x,\n typeId: y\n", TT_WIOTP_DEVICE,
                  "opened on line 2", NULL);
    expect_einval(YAML, "identity: {orgId: x typeId: y}\n", TT_WIOTP_DEVICE, "line 1", NULL);
    expect_einval(YAML, "identity: {orgId: x} trailing\n", TT_WIOTP_DEVICE, "line 1", NULL);
    expect_einval(YAML, "identity: {orgId: [x]}\n", TT_WIOTP_DEVICE, "sequences", NULL);
}

static void test_yaml_clean_start_inversion(void) {
    static const struct {
        const char *v;
        bool keep;
    } cases[] = { { "true", true },   { "True", true },  { "TRUE", true },  { "yes", true },
                  { "on", true },     { "false", false }, { "False", false }, { "FALSE", false },
                  { "no", false },    { "off", false } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[256], why[256];
        snprintf(text, sizeof text,
                 "identity: {orgId: o1, typeId: t, deviceId: d}\nauth: {token: k}\n"
                 "options:\n  mqtt:\n    cleanStart: %s\n",
                 cases[i].v);
        tt_wiotp_config *cfg = NULL;
        TT_CHECK_EQ_INT(load_yaml(text, TT_WIOTP_DEVICE, &cfg, why, sizeof why), TT_OK);
        TT_REQUIRE(cfg);
        TT_CHECK_MSG(tt_wiotp_config_opts(cfg)->keep_session == cases[i].keep, "cleanStart: %s",
                     cases[i].v);
        tt_wiotp_config_free(cfg);
    }
}

static void test_yaml_quoting_and_comments(void) {
    const char *text =
        "---   # document start\n"
        "# a full-line comment\n"
        "\n"
        "identity:    # a comment after a mapping key\n"
        "  \"orgId\": \"org\\\"1\\\\x\"     # escapes\n"
        "  typeId: 'it''s'\n"
        "  deviceId: dev#1        # '#' not after a blank is part of the value\n"
        "   \n"
        "  # an indented comment\n"
        "auth:\n"
        "  token: \"a # not a comment\"\n"
        "options:\n"
        "  domain: \"line1\\nline2\\t\\/\"\n"
        "  mqtt:\n"
        "    caFile: C:\\certs\\ca.pem\n"
        "    instanceId: two words here   \n";
    char why[256];
    tt_wiotp_config *cfg = NULL;
    TT_CHECK_EQ_INT(load_yaml(text, TT_WIOTP_DEVICE, &cfg, why, sizeof why), TT_OK);
    TT_CHECK_MSG(cfg != NULL, "%s", why);
    TT_REQUIRE(cfg);
    const tt_wiotp_opts *o = tt_wiotp_config_opts(cfg);
    TT_CHECK_EQ_STR(o->org, "org\"1\\x");
    TT_CHECK_EQ_STR(o->type_id, "it's");
    TT_CHECK_EQ_STR(o->device_id, "dev#1");
    TT_CHECK_EQ_STR(o->token, "a # not a comment");
    TT_CHECK_EQ_STR(o->domain, "line1\nline2\t/");
    TT_CHECK_EQ_STR(o->ca_file, "C:\\certs\\ca.pem");
    tt_wiotp_config_free(cfg);

    /* Windows line ends and a byte order mark; a URL-like value */
    text = "\xEF\xBB\xBFidentity:\r\n  orgId: o1\r\n  typeId: t\r\n  deviceId: d\r\n"
           "auth:\r\n  token: 'k'\r\noptions:\r\n  domain: http://x:8080/y\r\n";
    cfg = NULL;
    TT_CHECK_EQ_INT(load_yaml(text, TT_WIOTP_DEVICE, &cfg, why, sizeof why), TT_OK);
    TT_CHECK_MSG(cfg != NULL, "%s", why);
    TT_REQUIRE(cfg);
    o = tt_wiotp_config_opts(cfg);
    TT_CHECK_EQ_STR(o->org, "o1");
    TT_CHECK_EQ_STR(o->device_id, "d");
    TT_CHECK_EQ_STR(o->token, "k");
    TT_CHECK_EQ_STR(o->domain, "http://x:8080/y");
    tt_wiotp_config_free(cfg);

    /* a quoted number is a string, not the integer a port needs */
    expect_einval(YAML,
                  "identity: {orgId: o1, typeId: t, deviceId: d}\nauth: {token: k}\n"
                  "options:\n  mqtt:\n    port: \"8883\"\n",
                  TT_WIOTP_DEVICE, "line 5", "options.mqtt.port");
}

static void test_yaml_null_values(void) {
    const char *text = "identity: {orgId: o1, typeId: t, deviceId: d}\n"
                       "auth: {token: k}\n"
                       "options:\n"
                       "  domain: null\n"
                       "  logLevel: Null\n"
                       "  mqtt:\n"
                       "    caFile: ~\n"
                       "    instanceId:\n"
                       "    port: NULL\n"
                       "  http:\n";
    char why[256];
    tt_wiotp_config *cfg = NULL;
    TT_CHECK_EQ_INT(load_yaml(text, TT_WIOTP_DEVICE, &cfg, why, sizeof why), TT_OK);
    TT_CHECK_MSG(cfg != NULL, "%s", why);
    TT_REQUIRE(cfg);
    const tt_wiotp_opts *o = tt_wiotp_config_opts(cfg);
    TT_CHECK(o->domain == NULL && o->ca_file == NULL);
    TT_CHECK_EQ_INT(o->port, 0);
    TT_CHECK_EQ_STR(tt_wiotp_config_log_level(cfg), "info");
    tt_wiotp_config_free(cfg);

    /* an empty optional string means the default too */
    cfg = NULL;
    TT_CHECK_EQ_INT(load_yaml("auth: {key: a-o-k, token: t}\nidentity: {orgId: '', appId: \"\"}\n"
                              "options: {domain: '', mqtt: {caFile: \"\"}}\n",
                              TT_WIOTP_APP, &cfg, why, sizeof why), TT_OK);
    TT_REQUIRE(cfg);
    o = tt_wiotp_config_opts(cfg);
    TT_CHECK(o->org == NULL && o->app_id == NULL && o->domain == NULL && o->ca_file == NULL);
    tt_wiotp_config_free(cfg);

    /* a required key that is null is missing */
    expect_einval(YAML, "identity: {orgId: ~, typeId: t, deviceId: d}\nauth: {token: k}\n",
                  TT_WIOTP_DEVICE, "identity.orgId", "missing");
    expect_einval(YAML, "identity:\nauth: {token: k}\n", TT_WIOTP_DEVICE, "identity.orgId", NULL);
    expect_einval(YAML, "identity: {orgId: o, typeId: t, deviceId: d}\nauth: {token: }\n",
                  TT_WIOTP_DEVICE, "auth.token", NULL);
    /* a key with no ':' in a flow mapping is null too (and the last one counts) */
    expect_einval(YAML, "identity: {orgId: o, typeId: t, deviceId: d}\nauth: {token: k, token}\n",
                  TT_WIOTP_DEVICE, "auth.token", "missing");
}

static void test_yaml_required_keys(void) {
    static const struct {
        const char *text;
        tt_wiotp_role role;
        const char *key;
        const char *who;
    } cases[] = {
        { "identity: {typeId: t, deviceId: d}\nauth: {token: k}\n", TT_WIOTP_DEVICE,
          "identity.orgId", "a device" },
        { "identity: {orgId: o, deviceId: d}\nauth: {token: k}\n", TT_WIOTP_DEVICE,
          "identity.typeId", "a device" },
        { "identity: {orgId: o, typeId: t}\nauth: {token: k}\n", TT_WIOTP_DEVICE,
          "identity.deviceId", "a device" },
        { "identity: {orgId: o, typeId: t, deviceId: d}\n", TT_WIOTP_DEVICE, "auth.token",
          "a device" },
        { "identity: {typeId: t, deviceId: d}\nauth: {token: k}\n", TT_WIOTP_GATEWAY,
          "identity.orgId", "a gateway" },
        { "identity: {orgId: o, typeId: t}\nauth: {token: k}\n", TT_WIOTP_GATEWAY,
          "identity.deviceId", "a gateway" },
        { "identity: {orgId: o, typeId: t, deviceId: d}\nauth: {key: x}\n", TT_WIOTP_GATEWAY,
          "auth.token", "a gateway" },
        /* gateways have no Quickstart */
        { "identity: {orgId: quickstart, typeId: t, deviceId: d}\n", TT_WIOTP_GATEWAY,
          "auth.token", "a gateway" },
        { "identity: {orgId: o}\nauth: {token: k}\n", TT_WIOTP_APP, "auth.key", "an application" },
        { "identity: {orgId: o}\nauth: {key: a-o-x}\n", TT_WIOTP_APP, "auth.token",
          "an application" },
        /* a device's credentials do not make an application */
        { "identity: {orgId: o, typeId: t, deviceId: d}\nauth: {token: k}\n", TT_WIOTP_APP,
          "auth.key", "an application" },
        /* the document is empty */
        { "# nothing here\n", TT_WIOTP_DEVICE, "identity.orgId", "a device" },
        { "", TT_WIOTP_APP, "auth.key", "an application" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_einval(YAML, cases[i].text, cases[i].role, cases[i].key, cases[i].who);

    /* an empty string is no value */
    expect_einval(YAML, "identity: {orgId: \"\", typeId: t, deviceId: d}\nauth: {token: k}\n",
                  TT_WIOTP_DEVICE, "line 1: identity.orgId", "empty");

    /* a Quickstart device needs no token */
    char why[256];
    tt_wiotp_config *cfg = NULL;
    TT_CHECK_EQ_INT(load_yaml("identity: {orgId: quickstart, typeId: t, deviceId: d}\n",
                              TT_WIOTP_DEVICE, &cfg, why, sizeof why), TT_OK);
    TT_REQUIRE(cfg);
    TT_CHECK_EQ_STR(tt_wiotp_config_opts(cfg)->org, "quickstart");
    TT_CHECK(tt_wiotp_config_opts(cfg)->token == NULL);
    tt_wiotp_config_free(cfg);
}

/* A device file whose line 5 is `line` (under options.mqtt). */
static void expect_mqtt_line_einval(const char *line, const char *key) {
    char text[512];
    snprintf(text, sizeof text,
             "identity: {orgId: o1, typeId: t, deviceId: d}\n"
             "auth: {token: k}\n"
             "options:\n"
             "  mqtt:\n"
             "    %s\n",
             line);
    expect_einval(YAML, text, TT_WIOTP_DEVICE, "line 5", key);
}

static tt_err load_mqtt_line(const char *line, tt_wiotp_config **cfg) {
    char text[512], why[256];
    snprintf(text, sizeof text,
             "identity: {orgId: o1, typeId: t, deviceId: d}\nauth: {token: k}\n"
             "options:\n  mqtt:\n    %s\n",
             line);
    tt_err rc = load_yaml(text, TT_WIOTP_DEVICE, cfg, why, sizeof why);
    TT_CHECK_MSG(rc == TT_OK, "%s: %s", line, why);
    return rc;
}

static void test_yaml_wrong_kinds(void) {
    static const struct {
        const char *line;
        const char *key;
    } cases[] = {
        { "port: abc", "options.mqtt.port" },
        { "port: 0", "options.mqtt.port" },
        { "port: 65536", "options.mqtt.port" },
        { "port: -1", "options.mqtt.port" },
        { "port: \"8883\"", "options.mqtt.port" },
        { "port: '8883'", "options.mqtt.port" },
        { "port: 08883", "options.mqtt.port" },       /* YAML 1.1: not decimal */
        { "port: 0x22b3", "options.mqtt.port" },
        { "port: 8883.0", "options.mqtt.port" },
        { "port: true", "options.mqtt.port" },
        { "port: 99999999999999999999999", "options.mqtt.port" },
        { "port: {value: 8883}", "options.mqtt.port" },
        { "cleanStart: maybe", "options.mqtt.cleanStart" },
        { "cleanStart: \"true\"", "options.mqtt.cleanStart" },
        { "cleanStart: 1", "options.mqtt.cleanStart" },    /* an integer in YAML */
        { "keepAlive: 65536", "options.mqtt.keepAlive" },
        { "keepAlive: -5", "options.mqtt.keepAlive" },
        { "keepAlive: sixty", "options.mqtt.keepAlive" },
        { "sessionExpiry: 4294967296", "options.mqtt.sessionExpiry" },
        { "sessionExpiry: 1h", "options.mqtt.sessionExpiry" },
        { "transport: udp", "options.mqtt.transport" },
        { "transport: TCP", "options.mqtt.transport" },
        { "transport: {a: b}", "options.mqtt.transport" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_mqtt_line_einval(cases[i].line, cases[i].key);

    expect_einval(YAML,
                  "identity: {orgId: o1, typeId: t, deviceId: d}\nauth: {token: k}\n"
                  "options:\n  logLevel: verbose\n",
                  TT_WIOTP_DEVICE, "line 4", "options.logLevel");
    expect_einval(YAML,
                  "identity: {orgId: o1, typeId: t, deviceId: d}\nauth: {token: k}\n"
                  "options:\n  logLevel: INFO\n",
                  TT_WIOTP_DEVICE, "line 4", "options.logLevel");
    expect_einval(YAML,
                  "identity: {orgId: o1, typeId: t, deviceId: d}\nauth: {token: k}\n"
                  "options:\n  http: {verify: sometimes}\n",
                  TT_WIOTP_DEVICE, "line 4", "options.http.verify");
    /* a mapping where a value belongs, and the reverse */
    expect_einval(YAML, "identity: 5\nauth: {token: k}\n", TT_WIOTP_DEVICE, "line 1",
                  "identity: expected a mapping");
    expect_einval(YAML, "identity: {orgId: o1, typeId: t, deviceId: d}\nauth: secret\n",
                  TT_WIOTP_DEVICE, "line 2", "auth: expected a mapping");
    expect_einval(YAML, "identity:\n  orgId:\n    name: o1\n", TT_WIOTP_DEVICE, "line 2",
                  "identity.orgId");
    expect_einval(YAML, "options:\n  mqtt: tcp\n", TT_WIOTP_DEVICE, "line 2", "options.mqtt");

    /* The accepted edges. The port policy (8883, 443, 1883, 80) belongs to
     * tt_wiotp_new, so any port reads. */
    tt_wiotp_config *cfg = NULL;
    if (load_mqtt_line("port: 1234", &cfg) == TT_OK) {
        TT_CHECK_EQ_INT(tt_wiotp_config_opts(cfg)->port, 1234);
        tt_wiotp_config_free(cfg);
    }
    if (load_mqtt_line("port: 65535", &cfg) == TT_OK) {
        TT_CHECK_EQ_INT(tt_wiotp_config_opts(cfg)->port, 65535);
        tt_wiotp_config_free(cfg);
    }
    if (load_mqtt_line("port: +1", &cfg) == TT_OK) {
        TT_CHECK_EQ_INT(tt_wiotp_config_opts(cfg)->port, 1);
        tt_wiotp_config_free(cfg);
    }
    if (load_mqtt_line("keepAlive: 65535", &cfg) == TT_OK) {
        TT_CHECK_EQ_INT(tt_wiotp_config_opts(cfg)->keepalive_s, 65535);
        tt_wiotp_config_free(cfg);
    }
    if (load_mqtt_line("sessionExpiry: 4294967295", &cfg) == TT_OK) tt_wiotp_config_free(cfg);
    if (load_mqtt_line("sessionExpiry: 0", &cfg) == TT_OK) tt_wiotp_config_free(cfg);
}

static void test_yaml_syntax_errors(void) {
    static const struct {
        const char *text;
        const char *want1, *want2;
    } cases[] = {
        { "identity:\n\torgId: x\n", "line 2", "tab" },
        { "identity:\n  \torgId: x\n", "line 2", "tab" },
        { "identity:\n  - a\n", "line 2", "sequences" },
        { "- identity\n", "line 1", "sequences" },
        { "a: [1, 2]\n", "line 1", "sequences" },
        { "a: &x 1\n", "line 1", "anchors" },
        { "a: *x\n", "line 1", "aliases" },
        { "a: !!str 1\n", "line 1", "tags" },
        { "# c\nauth:\n  token: |\n    abc\n", "line 3", "block scalars" },
        { "auth:\n  token: >\n    abc\n", "line 2", "block scalars" },
        { "identity:\n  orgId: abc\n    def\n", "line 3", NULL },
        { "identity:\n  orgId: abc\ndef\n", "line 3", "key: value" },
        { "auth:\n  token: \"abc\n  more\"\n", "line 2", "unterminated" },
        { "auth:\n  token: 'abc\n", "line 2", "unterminated" },
        { "identity:\n    orgId: a\n  typeId: b\n", "line 3", "indentation" },
        { "---\na: 1\n---\nb: 2\n", "line 3", "one document" },
        { "a: 1\n...\n", "line 2", "'...'" },
        { "--- a\n", "line 1", NULL },
        { "a: \"\\q\"\n", "line 1", "escape" },
        { "a: \"abc\\", "line 1", NULL },
        { "a: b: c\n", "line 1", "quote" },
        { "a: \"x\" y\n", "line 1", "after the value" },
        { "a: \"x\"# no blank before the comment\n", "line 1", "after the value" },
        { "identity\n", "line 1", "key: value" },
        { "a:b\n", "line 1", "key: value" },
        { "? a\n: b\n", "line 1", "complex keys" },
        { "{a: b}\n", "line 1", NULL },
        { "a: {{b: c}: d}\n", "line 1", "complex keys" },
        { "a: {b: c\n", "line 1", "unterminated" },
        { "a: {b: c,, d: e}\n", "line 1", NULL },
        { "a: ,b\n", "line 1", NULL },
        { "a: 1\n  b: 2\n", "line 2", NULL },
        { "a: 1\nb: 2\n c: 3\n", "line 3", NULL },
        { "ok: 1\n: no key\n", "line 2", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *t = cases[i].text;
        char why[256];
        tt_wiotp_config *cfg = (tt_wiotp_config *)1;
        tt_err rc = load_yaml(t, TT_WIOTP_DEVICE, &cfg, why, sizeof why);
        TT_CHECK_MSG(rc == TT_EINVAL && cfg == NULL, "rc %d for:\n%s", rc, t);
        if (rc == TT_OK) tt_wiotp_config_free(cfg);
        if (rc != TT_EINVAL) continue;
        TT_CHECK_MSG(has(why, cases[i].want1), "\"%s\" lacks \"%s\" for:\n%s", why, cases[i].want1, t);
        TT_CHECK_MSG(!cases[i].want2 || has(why, cases[i].want2), "\"%s\" lacks \"%s\" for:\n%s",
                     why, cases[i].want2, t);
    }

    /* a NUL byte (no text file has one) is refused with its line */
    static const char nul[] = "x: 1\ny: 2\nz: 3\nw\0: 4\n";
    for (int k = 0; k < 2; k++) {
        char why[256];
        tt_wiotp_config *cfg = (tt_wiotp_config *)1;
        tt_err rc = load_bytes(k ? INI : YAML, nul, sizeof nul - 1, TT_WIOTP_DEVICE, &cfg, why,
                               sizeof why);
        TT_CHECK_EQ_INT(rc, TT_EINVAL);
        TT_CHECK(cfg == NULL);
        TT_CHECK_MSG(has(why, "line 4") && has(why, "NUL"), "%s", why);
    }
}

static void test_yaml_unknown_and_repeated_keys(void) {
    const char *text =
        "extra: 1\n"
        "listOfThings: {a: b}\n"
        "identity:\n"
        "  orgId: o1\n"
        "  typeId: t\n"
        "  deviceId: d\n"
        "  color: blue\n"
        "  nested: {deep: {deeper: x}}\n"
        "  OrgId: case-matters\n"
        "auth: {token: first, method: ignored}\n"
        "options:\n"
        "  mqtt:\n"
        "    port: 8883\n"
        "    unknownThing:\n"
        "      x: y\n"
        "    port2: nope\n"
        "  unused:\n"
        "options.mqtt: {port: not-a-port}    # one key holding a dot, not a path\n"
        "\"auth.token\": not-this-one\n"
        "auth: {token: second}\n";
    char why[256];
    tt_wiotp_config *cfg = NULL;
    TT_CHECK_EQ_INT(load_yaml(text, TT_WIOTP_DEVICE, &cfg, why, sizeof why), TT_OK);
    TT_CHECK_MSG(cfg != NULL, "%s", why);
    TT_REQUIRE(cfg);
    const tt_wiotp_opts *o = tt_wiotp_config_opts(cfg);
    TT_CHECK_EQ_STR(o->org, "o1");
    TT_CHECK_EQ_INT(o->port, 8883);
    TT_CHECK_EQ_STR(o->token, "second");             /* the later mapping wins */
    tt_wiotp_config_free(cfg);

    /* A mapping given again replaces the earlier one whole, as the SDK's
     * loader does: typeId is gone. */
    expect_einval(YAML,
                  "identity: {orgId: a, typeId: t, deviceId: d}\nauth: {token: k}\n"
                  "identity: {orgId: b, deviceId: d}\n",
                  TT_WIOTP_DEVICE, "identity.typeId", "missing");
}

static void test_yaml_file_errors(void) {
    char why[256], path[600];
    tt_wiotp_config *cfg = (tt_wiotp_config *)1;

    tmp_path(path, sizeof path, "does-not-exist.yaml");
    TT_CHECK_EQ_INT(tt_wiotp_config_load_yaml(path, TT_WIOTP_DEVICE, &cfg, why, sizeof why),
                    TT_ENOTFOUND);
    TT_CHECK(cfg == NULL);
    TT_CHECK_MSG(has(why, "does-not-exist.yaml"), "%s", why);
    TT_CHECK_EQ_INT(tt_wiotp_config_load_ini(path, TT_WIOTP_DEVICE, &cfg, why, sizeof why),
                    TT_ENOTFOUND);

    /* a directory cannot be read */
    TT_CHECK_EQ_INT(tt_wiotp_config_load_yaml(tmp_dir(), TT_WIOTP_DEVICE, &cfg, why, sizeof why),
                    TT_ENOTFOUND);
    TT_CHECK(cfg == NULL);

    TT_CHECK_EQ_INT(tt_wiotp_config_load_yaml(NULL, TT_WIOTP_DEVICE, &cfg, why, sizeof why),
                    TT_EINVAL);
    TT_CHECK_EQ_INT(tt_wiotp_config_load_yaml(path, TT_WIOTP_DEVICE, NULL, why, sizeof why),
                    TT_EINVAL);
    TT_CHECK_EQ_INT(tt_wiotp_config_load_yaml(path, (tt_wiotp_role)0, &cfg, why, sizeof why),
                    TT_EINVAL);
    TT_CHECK_EQ_INT(tt_wiotp_config_load_env((tt_wiotp_role)42, &cfg, why, sizeof why), TT_EINVAL);
    TT_CHECK_EQ_INT(tt_wiotp_config_load_ini(NULL, TT_WIOTP_APP, &cfg, NULL, 0), TT_EINVAL);

    /* Over 1 MiB is refused; exactly 1 MiB is read. */
    const char *head = "identity: {orgId: o1, typeId: t, deviceId: d}\nauth: {token: k}\n";
    size_t big = (size_t)1 << 20;
    char *buf = malloc(big + 1);
    TT_REQUIRE(buf);
    memset(buf, '#', big + 1);
    memcpy(buf, head, strlen(head));
    buf[big - 1] = '\n';
    cfg = NULL;
    TT_CHECK_EQ_INT(load_bytes(YAML, buf, big, TT_WIOTP_DEVICE, &cfg, why, sizeof why), TT_OK);
    tt_wiotp_config_free(cfg);
    buf[big] = '\n';
    for (int k = 0; k < 2; k++) {
        cfg = NULL;
        tt_err rc = load_bytes(k ? INI : YAML, buf, big + 1, TT_WIOTP_DEVICE, &cfg, why, sizeof why);
        TT_CHECK_EQ_INT(rc, TT_EINVAL);
        TT_CHECK_MSG(has(why, "1 MiB"), "%s", why);
        if (rc == TT_OK) tt_wiotp_config_free(cfg);
    }
    free(buf);

    /* `why` may be NULL, or tiny; it is always NUL-terminated */
    const char *bad = "identity: {orgId: o1, typeId: t, deviceId: d}\nauth: {token: k}\n"
                      "options: {mqtt: {port: abc}}\n";
    TT_CHECK_EQ_INT(load_yaml(bad, TT_WIOTP_DEVICE, &cfg, NULL, 0), TT_EINVAL);
    TT_CHECK_EQ_INT(load_yaml(bad, TT_WIOTP_DEVICE, &cfg, NULL, 100), TT_EINVAL);
    char tiny[8];
    memset(tiny, 'x', sizeof tiny);
    TT_CHECK_EQ_INT(load_yaml(bad, TT_WIOTP_DEVICE, &cfg, tiny, 1), TT_EINVAL);
    TT_CHECK_EQ_INT(tiny[0], '\0');
    TT_CHECK_EQ_INT(tiny[1], 'x');
    memset(tiny, 'x', sizeof tiny);
    TT_CHECK_EQ_INT(load_yaml(bad, TT_WIOTP_DEVICE, &cfg, tiny, sizeof tiny), TT_EINVAL);
    TT_CHECK_EQ_STR(tiny, "line 3:");
    /* success clears an old message */
    strcpy(why, "stale");
    TT_CHECK_EQ_INT(load_yaml(head, TT_WIOTP_DEVICE, &cfg, why, sizeof why), TT_OK);
    TT_CHECK_EQ_STR(why, "");
    tt_wiotp_config_free(cfg);

    /* the accessors and free accept NULL */
    TT_CHECK(tt_wiotp_config_opts(NULL) == NULL);
    TT_CHECK(tt_wiotp_config_log_level(NULL) == NULL);
    TT_CHECK(tt_wiotp_config_http_verify(NULL));
    tt_wiotp_config_free(NULL);
}

/* ---- garbage ----------------------------------------------------------------- */

static uint32_t g_rng = 0x9e3779b9u;

static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 17;
    g_rng ^= g_rng << 5;
    return g_rng;
}

/* Any input: TT_OK, or TT_EINVAL with out cleared and a message. */
static void check_survives(kind k, const void *data, size_t len, tt_wiotp_role role) {
    char why[128];
    tt_wiotp_config *cfg = (tt_wiotp_config *)1;
    tt_err rc = load_bytes(k, data, len, role, &cfg, why, sizeof why);
    TT_CHECK_MSG(rc == TT_OK || rc == TT_EINVAL, "rc %d", rc);
    if (rc == TT_OK) {
        TT_CHECK(cfg != NULL && tt_wiotp_config_opts(cfg)->role == role);
        tt_wiotp_config_free(cfg);
    } else {
        TT_CHECK(cfg == NULL);
        TT_CHECK(why[0] != '\0' && strlen(why) < sizeof why);
    }
}

static void test_garbage_does_not_crash(void) {
    static const char alphabet[] = " \t\n\r:{}[],#'\"-&*!|>~\\.?%@`aoIdrgtyepkn019";
    static const char *const seeds[] = { device_yaml, "[device]\norg=o\ntype=t\nid=d\n"
                                                      "auth-method=token\nauth-token=k\n" };
    unsigned char buf[600];
    for (int i = 0; i < 600; i++) {
        size_t len = rnd() % sizeof buf;
        for (size_t j = 0; j < len; j++)
            buf[j] = i % 2 ? (unsigned char)rnd() : (unsigned char)alphabet[rnd() % (sizeof alphabet - 1)];
        check_survives(i % 3 ? YAML : INI, buf, len, (tt_wiotp_role)(1 + rnd() % 3));
    }
    /* mutations of valid files reach further into the parsers */
    for (int i = 0; i < 600; i++) {
        const char *seed = seeds[i % 2];
        size_t len = strlen(seed);
        char m[1024];
        memcpy(m, seed, len);
        for (int flips = 1 + (int)(rnd() % 4); flips > 0; flips--) {
            size_t at = rnd() % len;
            m[at] = rnd() % 2 ? alphabet[rnd() % (sizeof alphabet - 1)] : (char)rnd();
        }
        check_survives(i % 2 ? INI : YAML, m, len, i % 2 ? TT_WIOTP_DEVICE : TT_WIOTP_GATEWAY);
    }

    /* deep flow nesting, closed and unclosed */
    size_t deep = 200000;
    char *d = malloc(deep * 4 + 16);
    TT_REQUIRE(d);
    strcpy(d, "a: ");
    memset(d + 3, '{', deep);
    d[3 + deep] = '\0';
    expect_einval(YAML, d, TT_WIOTP_DEVICE, "line 1", NULL);
    memset(d + 3, '[', deep);
    expect_einval(YAML, d, TT_WIOTP_DEVICE, "line 1", NULL);
    size_t n = 3;
    for (int i = 0; i < 100; i++) n += (size_t)sprintf(d + n, "{a: ");
    d[n++] = '1';
    for (int i = 0; i < 100; i++) d[n++] = '}';
    d[n] = '\0';
    expect_einval(YAML, d, TT_WIOTP_DEVICE, "line 1", "nested");
    /* and nesting that fits is fine */
    n = 0;
    n += (size_t)sprintf(d + n, "identity: {orgId: o1, typeId: t, deviceId: d}\nauth: {token: k}\nx: ");
    for (int i = 0; i < 20; i++) n += (size_t)sprintf(d + n, "{a: ");
    d[n++] = '1';
    for (int i = 0; i < 20; i++) d[n++] = '}';
    d[n++] = '\n';
    d[n] = '\0';
    check_survives(YAML, d, n, TT_WIOTP_DEVICE);
    char why[256];
    tt_wiotp_config *cfg = NULL;
    TT_CHECK_EQ_INT(load_yaml(d, TT_WIOTP_DEVICE, &cfg, why, sizeof why), TT_OK);
    tt_wiotp_config_free(cfg);

    /* deep block nesting */
    n = 0;
    for (int i = 0; i < 300; i++) n += (size_t)sprintf(d + n, "%*sk:\n", i, "");
    expect_einval(YAML, d, TT_WIOTP_DEVICE, "nested", NULL);
    free(d);

    /* very long lines: a long value is kept whole; a long line that is no
     * mapping is refused; a long key is ignored */
    size_t longn = 900000;
    char *l = malloc(longn + 200);
    TT_REQUIRE(l);
    n = (size_t)sprintf(l, "auth: {token: k}\nidentity:\n  typeId: t\n  deviceId: d\n  orgId: ");
    memset(l + n, 'o', longn);
    n += longn;
    n += (size_t)sprintf(l + n, "\n");
    cfg = NULL;
    TT_CHECK_EQ_INT(load_bytes(YAML, l, n, TT_WIOTP_DEVICE, &cfg, why, sizeof why), TT_OK);
    TT_CHECK(cfg && strlen(tt_wiotp_config_opts(cfg)->org) == longn);
    tt_wiotp_config_free(cfg);
    memset(l, 'z', longn);
    l[longn] = '\0';
    expect_einval(YAML, l, TT_WIOTP_DEVICE, "line 1", NULL);
    expect_einval(INI, l, TT_WIOTP_DEVICE, "line 1", NULL);
    l[longn - 3] = ':';
    l[longn - 2] = ' ';
    check_survives(YAML, l, longn, TT_WIOTP_DEVICE);
    /* a long quoted value full of escapes */
    n = (size_t)sprintf(l, "a: \"");
    for (int i = 0; i < 100000; i++) n += (size_t)sprintf(l + n, "\\\"\\\\");
    n += (size_t)sprintf(l + n, "\"\n");
    check_survives(YAML, l, n, TT_WIOTP_APP);
    /* many blank lines, then an error: the line count holds */
    n = 0;
    for (int i = 0; i < 99999; i++) l[n++] = '\n';
    n += (size_t)sprintf(l + n, "- x\n");
    l[n] = '\0';
    expect_einval(YAML, l, TT_WIOTP_DEVICE, "line 100000", NULL);
    free(l);
}

/* ---- environment ------------------------------------------------------------- */

static void clear_wiotp_env(void) {
    char names[64][64];
    int n;
    do {
        n = 0;
        for (char **e = environ; *e && n < 64; e++) {
            if (strncmp(*e, "WIOTP_", 6) != 0) continue;
            const char *eq = strchr(*e, '=');
            size_t l = eq ? (size_t)(eq - *e) : strlen(*e);
            if (l >= sizeof names[0]) l = sizeof names[0] - 1;
            memcpy(names[n], *e, l);
            names[n++][l] = '\0';
        }
        for (int i = 0; i < n; i++) unsetenv(names[i]);
    } while (n == 64);
}

static void set_device_env(const char *org) {
    clear_wiotp_env();
    setenv("WIOTP_IDENTITY_ORGID", org, 1);
    setenv("WIOTP_IDENTITY_TYPEID", "sensor", 1);
    setenv("WIOTP_IDENTITY_DEVICEID", "dev-9", 1);
    setenv("WIOTP_AUTH_TOKEN", "envtoken", 1);
}

static void expect_env_einval(tt_wiotp_role role, const char *want1, const char *want2) {
    char why[256];
    tt_wiotp_config *cfg = (tt_wiotp_config *)1;
    tt_err rc = tt_wiotp_config_load_env(role, &cfg, why, sizeof why);
    TT_CHECK_EQ_INT(rc, TT_EINVAL);
    TT_CHECK(cfg == NULL);
    if (rc == TT_OK) tt_wiotp_config_free(cfg);
    if (rc != TT_EINVAL) return;
    TT_CHECK_MSG(!want1 || has(why, want1), "\"%s\" lacks \"%s\"", why, want1);
    TT_CHECK_MSG(!want2 || has(why, want2), "\"%s\" lacks \"%s\"", why, want2);
    TT_CHECK_MSG(!has(why, "line"), "\"%s\": no lines in the environment", why);
}

static void test_env_device_every_key(void) {
    tt_wiotp_role roles[] = { TT_WIOTP_DEVICE, TT_WIOTP_GATEWAY };
    for (int r = 0; r < 2; r++) {
        set_device_env("myorg2");
        setenv("WIOTP_IDENTITY_APPID", "not-for-devices", 1);
        setenv("WIOTP_OPTIONS_DOMAIN", "example.test", 1);
        setenv("WIOTP_OPTIONS_LOGLEVEL", "error", 1);
        setenv("WIOTP_OPTIONS_MQTT_PORT", "1883", 1);
        setenv("WIOTP_OPTIONS_MQTT_TRANSPORT", "websockets", 1);
        setenv("WIOTP_OPTIONS_MQTT_CAFILE", "_os_", 1);
        setenv("WIOTP_OPTIONS_MQTT_CLEANSTART", "True", 1);
        setenv("WIOTP_OPTIONS_MQTT_SESSIONEXPIRY", "60", 1);
        setenv("WIOTP_OPTIONS_MQTT_KEEPALIVE", "120", 1);
        setenv("WIOTP_OPTIONS_MQTT_INSTANCEID", "not-for-devices", 1);
        setenv("WIOTP_OPTIONS_HTTP_VERIFY", "False", 1);
        char why[256];
        tt_wiotp_config *cfg = NULL;
        TT_CHECK_EQ_INT(tt_wiotp_config_load_env(roles[r], &cfg, why, sizeof why), TT_OK);
        TT_CHECK_MSG(cfg != NULL, "%s", why);
        TT_REQUIRE(cfg);
        /* the config holds copies: the environment may change */
        setenv("WIOTP_IDENTITY_ORGID", "changed", 1);
        const tt_wiotp_opts *o = tt_wiotp_config_opts(cfg);
        TT_CHECK_EQ_INT(o->role, roles[r]);
        TT_CHECK_EQ_STR(o->org, "myorg2");
        TT_CHECK_EQ_STR(o->type_id, "sensor");
        TT_CHECK_EQ_STR(o->device_id, "dev-9");
        TT_CHECK_EQ_STR(o->token, "envtoken");
        TT_CHECK_EQ_STR(o->domain, "example.test");
        TT_CHECK_EQ_STR(o->ca_file, "_os_");
        TT_CHECK_EQ_INT(o->port, 1883);
        TT_CHECK(o->websockets);
        TT_CHECK(o->keep_session);
        TT_CHECK_EQ_INT(o->keepalive_s, 120);
        TT_CHECK(o->app_id == NULL && o->instance_id == NULL && o->api_key == NULL);
        TT_CHECK_EQ_STR(tt_wiotp_config_log_level(cfg), "error");
        TT_CHECK(!tt_wiotp_config_http_verify(cfg));
        tt_wiotp_config_free(cfg);
    }
    clear_wiotp_env();
}

static void test_env_app_keys(void) {
    char why[256];
    tt_wiotp_config *cfg = NULL;
    clear_wiotp_env();
    setenv("WIOTP_IDENTITY_APPID", "app7", 1);
    setenv("WIOTP_AUTH_KEY", "a-org7-key", 1);
    setenv("WIOTP_AUTH_TOKEN", "tok7", 1);
    setenv("WIOTP_OPTIONS_MQTT_INSTANCEID", "inst", 1);
    TT_CHECK_EQ_INT(tt_wiotp_config_load_env(TT_WIOTP_APP, &cfg, why, sizeof why), TT_OK);
    TT_REQUIRE(cfg);
    const tt_wiotp_opts *o = tt_wiotp_config_opts(cfg);
    TT_CHECK(o->org == NULL);
    TT_CHECK_EQ_STR(o->app_id, "app7");
    TT_CHECK_EQ_STR(o->api_key, "a-org7-key");
    TT_CHECK_EQ_STR(o->token, "tok7");
    TT_CHECK_EQ_STR(o->instance_id, "inst");
    tt_wiotp_config_free(cfg);

    /* WIOTP_API_KEY / WIOTP_API_TOKEN stand in for applications ... */
    clear_wiotp_env();
    setenv("WIOTP_API_KEY", "a-org8-key", 1);
    setenv("WIOTP_API_TOKEN", "tok8", 1);
    cfg = NULL;
    TT_CHECK_EQ_INT(tt_wiotp_config_load_env(TT_WIOTP_APP, &cfg, why, sizeof why), TT_OK);
    TT_REQUIRE(cfg);
    TT_CHECK_EQ_STR(tt_wiotp_config_opts(cfg)->api_key, "a-org8-key");
    TT_CHECK_EQ_STR(tt_wiotp_config_opts(cfg)->token, "tok8");
    tt_wiotp_config_free(cfg);
    /* ... with the WIOTP_AUTH_* names first */
    setenv("WIOTP_AUTH_KEY", "a-org9-key", 1);
    cfg = NULL;
    TT_CHECK_EQ_INT(tt_wiotp_config_load_env(TT_WIOTP_APP, &cfg, why, sizeof why), TT_OK);
    TT_REQUIRE(cfg);
    TT_CHECK_EQ_STR(tt_wiotp_config_opts(cfg)->api_key, "a-org9-key");
    TT_CHECK_EQ_STR(tt_wiotp_config_opts(cfg)->token, "tok8");
    tt_wiotp_config_free(cfg);

    /* a device does not read WIOTP_API_TOKEN */
    set_device_env("o1");
    unsetenv("WIOTP_AUTH_TOKEN");
    setenv("WIOTP_API_TOKEN", "tok", 1);
    expect_env_einval(TT_WIOTP_DEVICE, "WIOTP_AUTH_TOKEN", "a device");

    /* application credentials missing */
    clear_wiotp_env();
    setenv("WIOTP_AUTH_TOKEN", "t", 1);
    expect_env_einval(TT_WIOTP_APP, "WIOTP_AUTH_KEY", "an application");
    clear_wiotp_env();
    setenv("WIOTP_API_KEY", "a-o-k", 1);
    expect_env_einval(TT_WIOTP_APP, "WIOTP_AUTH_TOKEN", "an application");
    clear_wiotp_env();
}

static void test_env_defaults_by_role(void) {
    char why[256];
    tt_wiotp_config *cfg = NULL;

    set_device_env("o1");
    TT_CHECK_EQ_INT(tt_wiotp_config_load_env(TT_WIOTP_DEVICE, &cfg, why, sizeof why), TT_OK);
    TT_REQUIRE(cfg);
    const tt_wiotp_opts *o = tt_wiotp_config_opts(cfg);
    TT_CHECK(!o->keep_session);                       /* device: cleanStart False */
    TT_CHECK_EQ_INT(o->port, 0);
    TT_CHECK_EQ_INT(o->keepalive_s, 0);
    TT_CHECK(!o->websockets && o->domain == NULL && o->ca_file == NULL);
    TT_CHECK_EQ_STR(tt_wiotp_config_log_level(cfg), "info");
    TT_CHECK(tt_wiotp_config_http_verify(cfg));
    tt_wiotp_config_free(cfg);

    cfg = NULL;
    TT_CHECK_EQ_INT(tt_wiotp_config_load_env(TT_WIOTP_GATEWAY, &cfg, why, sizeof why), TT_OK);
    TT_REQUIRE(cfg);
    TT_CHECK(!tt_wiotp_config_opts(cfg)->keep_session);
    tt_wiotp_config_free(cfg);

    clear_wiotp_env();
    setenv("WIOTP_AUTH_KEY", "a-o1-x", 1);
    setenv("WIOTP_AUTH_TOKEN", "t", 1);
    cfg = NULL;
    TT_CHECK_EQ_INT(tt_wiotp_config_load_env(TT_WIOTP_APP, &cfg, why, sizeof why), TT_OK);
    TT_REQUIRE(cfg);
    TT_CHECK(tt_wiotp_config_opts(cfg)->keep_session);   /* application: cleanStart True */
    tt_wiotp_config_free(cfg);

    static const struct {
        const char *v;
        bool keep;
    } cases[] = { { "false", false }, { "False", false }, { "0", false }, { "no", false },
                  { "true", true },   { "True", true },   { "1", true },  { "on", true } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("WIOTP_OPTIONS_MQTT_CLEANSTART", cases[i].v, 1);
        cfg = NULL;
        TT_CHECK_EQ_INT(tt_wiotp_config_load_env(TT_WIOTP_APP, &cfg, why, sizeof why), TT_OK);
        TT_REQUIRE(cfg);
        TT_CHECK_MSG(tt_wiotp_config_opts(cfg)->keep_session == cases[i].keep, "CLEANSTART=%s",
                     cases[i].v);
        tt_wiotp_config_free(cfg);
    }
    /* an empty variable counts as unset */
    setenv("WIOTP_OPTIONS_MQTT_CLEANSTART", "", 1);
    setenv("WIOTP_OPTIONS_DOMAIN", "", 1);
    cfg = NULL;
    TT_CHECK_EQ_INT(tt_wiotp_config_load_env(TT_WIOTP_APP, &cfg, why, sizeof why), TT_OK);
    TT_REQUIRE(cfg);
    TT_CHECK(tt_wiotp_config_opts(cfg)->keep_session);
    TT_CHECK(tt_wiotp_config_opts(cfg)->domain == NULL);
    tt_wiotp_config_free(cfg);

    /* Quickstart device: no token */
    set_device_env("quickstart");
    unsetenv("WIOTP_AUTH_TOKEN");
    cfg = NULL;
    TT_CHECK_EQ_INT(tt_wiotp_config_load_env(TT_WIOTP_DEVICE, &cfg, why, sizeof why), TT_OK);
    TT_REQUIRE(cfg);
    TT_CHECK(tt_wiotp_config_opts(cfg)->token == NULL);
    tt_wiotp_config_free(cfg);
    clear_wiotp_env();
}

static void test_env_errors(void) {
    static const char *const required[] = { "WIOTP_IDENTITY_ORGID", "WIOTP_IDENTITY_TYPEID",
                                            "WIOTP_IDENTITY_DEVICEID", "WIOTP_AUTH_TOKEN" };
    for (size_t i = 0; i < 4; i++) {
        set_device_env("o1");
        unsetenv(required[i]);
        expect_env_einval(TT_WIOTP_DEVICE, required[i], "missing");
        set_device_env("o1");
        unsetenv(required[i]);
        expect_env_einval(TT_WIOTP_GATEWAY, required[i], "a gateway");
    }
    static const struct {
        const char *name, *value;
    } bad[] = {
        { "WIOTP_OPTIONS_MQTT_PORT", "80a" },          { "WIOTP_OPTIONS_MQTT_PORT", "0" },
        { "WIOTP_OPTIONS_MQTT_PORT", "65536" },        { "WIOTP_OPTIONS_MQTT_PORT", "-1" },
        { "WIOTP_OPTIONS_MQTT_KEEPALIVE", "-1" },      { "WIOTP_OPTIONS_MQTT_KEEPALIVE", "1e3" },
        { "WIOTP_OPTIONS_MQTT_SESSIONEXPIRY", "x" },   { "WIOTP_OPTIONS_MQTT_CLEANSTART", "maybe" },
        { "WIOTP_OPTIONS_HTTP_VERIFY", "nah" },        { "WIOTP_OPTIONS_LOGLEVEL", "trace" },
        { "WIOTP_OPTIONS_MQTT_TRANSPORT", "ws" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        set_device_env("o1");
        setenv(bad[i].name, bad[i].value, 1);
        expect_env_einval(TT_WIOTP_DEVICE, bad[i].name, bad[i].value);
    }
    /* int() takes blanks and leading zeros */
    set_device_env("o1");
    setenv("WIOTP_OPTIONS_MQTT_PORT", " 08883 ", 1);
    char why[256];
    tt_wiotp_config *cfg = NULL;
    TT_CHECK_EQ_INT(tt_wiotp_config_load_env(TT_WIOTP_DEVICE, &cfg, why, sizeof why), TT_OK);
    TT_REQUIRE(cfg);
    TT_CHECK_EQ_INT(tt_wiotp_config_opts(cfg)->port, 8883);
    tt_wiotp_config_free(cfg);
    clear_wiotp_env();
}

/* ---- INI --------------------------------------------------------------------- */

static void test_ini_device_every_key(void) {
    const char *text = "; legacy ibmiotf device file\n"
                       "# another comment\n"
                       "[application]\n"
                       "org = other\n"
                       "\n"
                       "[device]\n"
                       "org = myorg3\n"
                       "type=sensor\n"
                       "id : dev-3\n"
                       "Auth-Method = token\n"
                       "auth-token = s3cr3t # a '#' after a value is part of it\n"
                       "clean-session = false\n"
                       "domain = example.test\n"
                       "port = 443\n"
                       "unknown-key = ignored\n"
                       "[other]\n"
                       "org = not-this-one\n";
    tt_wiotp_role roles[] = { TT_WIOTP_DEVICE, TT_WIOTP_GATEWAY };
    for (int r = 0; r < 2; r++) {
        char why[256];
        tt_wiotp_config *cfg = NULL;
        TT_CHECK_EQ_INT(load_ini(text, roles[r], &cfg, why, sizeof why), TT_OK);
        TT_CHECK_MSG(cfg != NULL, "%s", why);
        TT_REQUIRE(cfg);
        const tt_wiotp_opts *o = tt_wiotp_config_opts(cfg);
        TT_CHECK_EQ_INT(o->role, roles[r]);
        TT_CHECK_EQ_STR(o->org, "myorg3");
        TT_CHECK_EQ_STR(o->type_id, "sensor");
        TT_CHECK_EQ_STR(o->device_id, "dev-3");
        TT_CHECK_EQ_STR(o->token, "s3cr3t # a '#' after a value is part of it");
        TT_CHECK(o->keep_session);                    /* clean-session = false */
        TT_CHECK_EQ_STR(o->domain, "example.test");
        TT_CHECK_EQ_INT(o->port, 443);
        TT_CHECK(o->app_id == NULL && o->api_key == NULL && !o->shared);
        TT_CHECK_EQ_STR(tt_wiotp_config_log_level(cfg), "info");
        TT_CHECK(tt_wiotp_config_http_verify(cfg));
        tt_wiotp_config_free(cfg);
    }

    /* the legacy defaults: port 8883, clean session */
    char why[256];
    tt_wiotp_config *cfg = NULL;
    TT_CHECK_EQ_INT(load_ini("[device]\norg=o1\ntype=t\nid=d\nauth-method=token\nauth-token=k\n",
                             TT_WIOTP_DEVICE, &cfg, why, sizeof why), TT_OK);
    TT_REQUIRE(cfg);
    TT_CHECK_EQ_INT(tt_wiotp_config_opts(cfg)->port, 8883);
    TT_CHECK(!tt_wiotp_config_opts(cfg)->keep_session);
    TT_CHECK(tt_wiotp_config_opts(cfg)->domain == NULL);
    tt_wiotp_config_free(cfg);

    /* indented keys, all at one indentation, are fine; Windows line ends */
    cfg = NULL;
    TT_CHECK_EQ_INT(load_ini("[device]\r\n  org = o1\r\n  type = t\r\n  id = d\r\n"
                             "  auth-method = token\r\n  auth-token = k\r\n  clean-session = TRUE\r\n",
                             TT_WIOTP_GATEWAY, &cfg, why, sizeof why), TT_OK);
    TT_CHECK_MSG(cfg != NULL, "%s", why);
    TT_REQUIRE(cfg);
    TT_CHECK_EQ_STR(tt_wiotp_config_opts(cfg)->token, "k");
    TT_CHECK(!tt_wiotp_config_opts(cfg)->keep_session);
    tt_wiotp_config_free(cfg);
}

static void test_ini_application(void) {
    const char *text = "[application]\n"
                       "org = myorg4\n"
                       "id = dashboard\n"
                       "auth-key = a-myorg4-key\n"
                       "auth-token = tok4\n"
                       "type = shared\n"
                       "clean-session = true\n"
                       "domain = example.test\n";
    char why[256];
    tt_wiotp_config *cfg = NULL;
    TT_CHECK_EQ_INT(load_ini(text, TT_WIOTP_APP, &cfg, why, sizeof why), TT_OK);
    TT_REQUIRE(cfg);
    const tt_wiotp_opts *o = tt_wiotp_config_opts(cfg);
    TT_CHECK_EQ_INT(o->role, TT_WIOTP_APP);
    TT_CHECK_EQ_STR(o->org, "myorg4");
    TT_CHECK_EQ_STR(o->app_id, "dashboard");
    TT_CHECK_EQ_STR(o->api_key, "a-myorg4-key");
    TT_CHECK_EQ_STR(o->token, "tok4");
    TT_CHECK(o->shared);
    TT_CHECK(!o->keep_session);
    TT_CHECK_EQ_STR(o->domain, "example.test");
    TT_CHECK_EQ_INT(o->port, 8883);
    TT_CHECK(o->type_id == NULL && o->device_id == NULL && o->instance_id == NULL);
    tt_wiotp_config_free(cfg);

    cfg = NULL;
    TT_CHECK_EQ_INT(load_ini("[application]\nauth-key: a-o-k\nauth-token: t\ntype: standalone\n"
                             "clean-session: false\nport: 1883\n",
                             TT_WIOTP_APP, &cfg, why, sizeof why), TT_OK);
    TT_REQUIRE(cfg);
    o = tt_wiotp_config_opts(cfg);
    TT_CHECK(!o->shared);
    TT_CHECK(o->keep_session);
    TT_CHECK_EQ_INT(o->port, 1883);
    TT_CHECK(o->org == NULL && o->app_id == NULL);
    tt_wiotp_config_free(cfg);

    expect_einval(INI, "[application]\nauth-key = a-o-k\nauth-token = t\ntype = scalable\n",
                  TT_WIOTP_APP, "line 4: type", "standalone or shared");
    expect_einval(INI, "[application]\nauth-key = a-o-k\n", TT_WIOTP_APP, "auth-token", "missing");
    /* an application reads [application] only */
    expect_einval(INI, "[device]\norg=o\n", TT_WIOTP_APP, "[application]", NULL);
}

static void test_ini_auth_method_refused(void) {
    expect_einval(INI, "[device]\norg=o1\ntype=t\nid=d\nauth-method = apikey\nauth-token=k\n",
                  TT_WIOTP_DEVICE, "line 5: auth-method", "apikey");
    expect_einval(INI, "[device]\norg=o1\ntype=t\nid=d\nauth-method = Token\nauth-token=k\n",
                  TT_WIOTP_GATEWAY, "auth-method", "Token");
    /* refused even for Quickstart, where it would not be used */
    expect_einval(INI, "[device]\ntype=t\nid=d\nauth-method=cert\n", TT_WIOTP_DEVICE, "auth-method",
                  "cert");
    /* a registered device must say how it authenticates, and give a token */
    expect_einval(INI, "[device]\norg=o1\ntype=t\nid=d\nauth-token=k\n", TT_WIOTP_DEVICE,
                  "auth-method", "missing");
    expect_einval(INI, "[device]\norg=o1\ntype=t\nid=d\nauth-method=token\n", TT_WIOTP_DEVICE,
                  "auth-token", "missing");
    expect_einval(INI, "[device]\norg=o1\ntype=t\nid=d\nauth-method=token\nauth-token=\n",
                  TT_WIOTP_DEVICE, "line 6: auth-token", "empty");
}

static void test_ini_quickstart_defaults(void) {
    char why[256];
    tt_wiotp_config *cfg = NULL;
    /* a device with no org is a Quickstart device: no credentials, port 0
     * (tt_wiotp_new picks 1883) */
    TT_CHECK_EQ_INT(load_ini("[device]\ntype = t\nid = d\n", TT_WIOTP_DEVICE, &cfg, why, sizeof why),
                    TT_OK);
    TT_CHECK_MSG(cfg != NULL, "%s", why);
    TT_REQUIRE(cfg);
    const tt_wiotp_opts *o = tt_wiotp_config_opts(cfg);
    TT_CHECK_EQ_STR(o->org, "quickstart");
    TT_CHECK_EQ_INT(o->port, 0);
    TT_CHECK(o->token == NULL);
    TT_CHECK_EQ_STR(o->type_id, "t");
    tt_wiotp_config_free(cfg);

    static const char *const qs[] = { "[device]\norg = quickstart\ntype = t\nid = d\n",
                                       "[device]\norg =\ntype = t\nid = d\n" };
    for (int i = 0; i < 2; i++) {
        cfg = NULL;
        TT_CHECK_EQ_INT(load_ini(qs[i], TT_WIOTP_DEVICE, &cfg, why, sizeof why), TT_OK);
        TT_REQUIRE(cfg);
        TT_CHECK_EQ_STR(tt_wiotp_config_opts(cfg)->org, "quickstart");
        TT_CHECK_EQ_INT(tt_wiotp_config_opts(cfg)->port, 0);
        tt_wiotp_config_free(cfg);
    }

    /* an application with no API key is a Quickstart application */
    cfg = NULL;
    TT_CHECK_EQ_INT(load_ini("[application]\nid = watcher\n", TT_WIOTP_APP, &cfg, why, sizeof why),
                    TT_OK);
    TT_REQUIRE(cfg);
    o = tt_wiotp_config_opts(cfg);
    TT_CHECK_EQ_STR(o->org, "quickstart");
    TT_CHECK_EQ_STR(o->app_id, "watcher");
    TT_CHECK(o->api_key == NULL && o->token == NULL);
    TT_CHECK_EQ_INT(o->port, 0);
    tt_wiotp_config_free(cfg);

    /* ... but not when it names an org of its own */
    expect_einval(INI, "[application]\norg = myorg\n", TT_WIOTP_APP, "auth-key", "Quickstart");
    /* gateways have no Quickstart */
    expect_einval(INI, "[device]\ntype=t\nid=d\nauth-method=token\nauth-token=k\n", TT_WIOTP_GATEWAY,
                  "org", "a gateway");
    /* type and id are always needed */
    expect_einval(INI, "[device]\nid=d\n", TT_WIOTP_DEVICE, "type", "missing");
    expect_einval(INI, "[device]\ntype=t\n", TT_WIOTP_DEVICE, "id", "missing");
}

static void test_ini_errors(void) {
    expect_einval(INI, "", TT_WIOTP_DEVICE, "no [device] section", NULL);
    expect_einval(INI, "[ device ]\norg=o\n", TT_WIOTP_DEVICE, "[device]", NULL);
    expect_einval(INI, "org = o1\n[device]\n", TT_WIOTP_DEVICE, "line 1", "section");
    expect_einval(INI, "[device]\norg = o1\njust words\n", TT_WIOTP_DEVICE, "line 3", "key = value");
    expect_einval(INI, "[device]\n= o1\n", TT_WIOTP_DEVICE, "line 2", "key");
    expect_einval(INI, "[device\norg = o1\n", TT_WIOTP_DEVICE, "line 1", "]");
    expect_einval(INI, "[device]\norg = o1\n  more\n", TT_WIOTP_DEVICE, "line 3", "continuation");
    expect_einval(INI, "[device]\norg = o1\nORG = o2\n", TT_WIOTP_DEVICE, "line 3", "twice");
    expect_einval(INI, "[device]\norg = o1\n[device]\n", TT_WIOTP_DEVICE, "line 3", "twice");
    expect_einval(INI,
                  "[device]\norg=o1\ntype=t\nid=d\nauth-method=token\nauth-token=k\nport = 88a\n",
                  TT_WIOTP_DEVICE, "line 7: port", "88a");
    expect_einval(INI,
                  "[device]\norg=o1\ntype=t\nid=d\nauth-method=token\nauth-token=k\nport = 0\n",
                  TT_WIOTP_DEVICE, "line 7: port", NULL);
    expect_einval(INI,
                  "[device]\norg=o1\ntype=t\nid=d\nauth-method=token\nauth-token=k\n"
                  "clean-session = sometimes\n",
                  TT_WIOTP_DEVICE, "line 7: clean-session", "sometimes");
    /* errors in sections not read still count: the file is broken */
    expect_einval(INI, "[other]\nno delimiter\n[device]\ntype=t\nid=d\n", TT_WIOTP_DEVICE, "line 2",
                  NULL);
}

/* ---- allocation failures ----------------------------------------------------- */

static long g_allocs_left;             /* -1: no limit */
static long g_refused;

static void *failing_malloc(size_t n, void *arg) {
    (void)arg;
    if (g_allocs_left == 0) return g_refused++, NULL;
    if (g_allocs_left > 0) g_allocs_left--;
    return malloc(n);
}

static void *failing_realloc(void *p, size_t n, void *arg) {
    (void)arg;
    if (g_allocs_left == 0) return g_refused++, NULL;
    if (g_allocs_left > 0) g_allocs_left--;
    return realloc(p, n);
}

static void plain_free(void *p, void *arg) {
    (void)arg;
    free(p);
}

/* Fail the 1st, 2nd, ... allocation of a load until one needs no failure:
 * each failed load reports TT_ENOMEM and leaves nothing behind (the
 * sanitizer build checks for leaks). */
static void check_nomem(const char *what, tt_err (*load)(tt_wiotp_config **, char *, size_t)) {
    tt_allocator a = TT_OPTS_INIT(tt_allocator);
    a.malloc_fn = failing_malloc;
    a.realloc_fn = failing_realloc;
    a.free_fn = plain_free;
    TT_REQUIRE(tt_set_allocator(&a) == TT_OK);
    bool done = false;
    long tries = 0;
    for (long n = 0; n < 1000 && !done; n++, tries++) {
        char why[256];
        tt_wiotp_config *cfg = (tt_wiotp_config *)1;
        g_allocs_left = n;
        g_refused = 0;
        tt_err rc = load(&cfg, why, sizeof why);
        g_allocs_left = -1;
        if (rc == TT_OK) {
            /* a refused allocation must never pass unnoticed */
            TT_CHECK_MSG(g_refused == 0, "%s: allocation %ld refused, yet TT_OK", what, n);
            TT_CHECK(cfg != NULL);
            tt_wiotp_config_free(cfg);
            done = true;
        } else {
            TT_CHECK_MSG(rc == TT_ENOMEM && g_refused > 0, "%s: allocation %ld: rc %d (%s)", what,
                         n, rc, why);
            TT_CHECK(cfg == NULL);
        }
    }
    TT_CHECK_MSG(done, "%s never succeeded", what);
    /* every load here allocates several times: each failure path was taken */
    TT_CHECK_MSG(tries > 3, "%s: only %ld allocations", what, tries);
    tt_set_allocator(NULL);
}

static tt_err nomem_yaml(tt_wiotp_config **cfg, char *why, size_t cap) {
    char path[600];
    tmp_path(path, sizeof path, "nomem.yaml");
    return tt_wiotp_config_load_yaml(path, TT_WIOTP_DEVICE, cfg, why, cap);
}

static tt_err nomem_ini(tt_wiotp_config **cfg, char *why, size_t cap) {
    char path[600];
    tmp_path(path, sizeof path, "nomem.ini");
    return tt_wiotp_config_load_ini(path, TT_WIOTP_APP, cfg, why, cap);
}

static tt_err nomem_env(tt_wiotp_config **cfg, char *why, size_t cap) {
    return tt_wiotp_config_load_env(TT_WIOTP_DEVICE, cfg, why, cap);
}

static void test_out_of_memory(void) {
    char path[600];
    tmp_path(path, sizeof path, "nomem.yaml");
    write_bytes(path, device_yaml, strlen(device_yaml));
    check_nomem("yaml", nomem_yaml);
    unlink(path);

    const char *ini = "[application]\norg=o\nid=i\nauth-key=a-o-k\nauth-token=t\ntype=shared\n";
    tmp_path(path, sizeof path, "nomem.ini");
    write_bytes(path, ini, strlen(ini));
    check_nomem("ini", nomem_ini);
    unlink(path);

    set_device_env("o1");
    setenv("WIOTP_OPTIONS_DOMAIN", "example.test", 1);
    setenv("WIOTP_OPTIONS_MQTT_CAFILE", "/ca.pem", 1);
    check_nomem("env", nomem_env);
    clear_wiotp_env();
}

TT_TEST_LIST = {
    { "yaml_device_every_key", test_yaml_device_every_key },
    { "yaml_app_every_key", test_yaml_app_every_key },
    { "yaml_defaults", test_yaml_defaults },
    { "yaml_flow_mappings", test_yaml_flow_mappings },
    { "yaml_clean_start_inversion", test_yaml_clean_start_inversion },
    { "yaml_quoting_and_comments", test_yaml_quoting_and_comments },
    { "yaml_null_values", test_yaml_null_values },
    { "yaml_required_keys", test_yaml_required_keys },
    { "yaml_wrong_kinds", test_yaml_wrong_kinds },
    { "yaml_syntax_errors", test_yaml_syntax_errors },
    { "yaml_unknown_and_repeated_keys", test_yaml_unknown_and_repeated_keys },
    { "yaml_file_errors", test_yaml_file_errors },
    { "garbage_does_not_crash", test_garbage_does_not_crash },
    { "env_device_every_key", test_env_device_every_key },
    { "env_app_keys", test_env_app_keys },
    { "env_defaults_by_role", test_env_defaults_by_role },
    { "env_errors", test_env_errors },
    { "ini_device_every_key", test_ini_device_every_key },
    { "ini_application", test_ini_application },
    { "ini_auth_method_refused", test_ini_auth_method_refused },
    { "ini_quickstart_defaults", test_ini_quickstart_defaults },
    { "ini_errors", test_ini_errors },
    { "out_of_memory", test_out_of_memory },
    { NULL, NULL },
};
