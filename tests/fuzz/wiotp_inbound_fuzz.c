/* libFuzzer target: what the Watson IoT Platform sends to a tether device,
 * gateway or application. The fuzzer plays the broker on a loopback socket
 * (fake_broker.h): it acknowledges the client's CONNECT, SUBSCRIBEs and
 * PUBLISHes, then delivers PUBLISH packets on the platform's topics
 * (commands, events, status, notifications, state, errors, for the client's
 * own type and id and for others, and the management topics iotdm-1/...)
 * whose payloads and some levels come from the input. The client has
 * handlers installed (on_message reading every field of the message,
 * on_dm answering with tt_wiotp_dm_respond when a record says so) and
 * management requests of its own pending (manage, error codes, log,
 * location, field change): the broker keeps the reqId of each request it
 * reads, and a record may put one of them into its payload, so answers on
 * iotdm-1/response can meet a waiting request.
 *
 * Input layout:
 *   byte 0   bits 0-1: 0 managed device, 1 managed gateway, 2 application
 *                      (subscribed to every kind), 3 unmanaged device
 *            bit 2: no on_dm handler (the adapter answers 501 itself)
 *            bit 3: the broker refuses the client's first SUBSCRIBE (0x80)
 *            bit 4: the CONNACK refuses the connection (return code 5)
 *   then records until the input ends:
 *            byte  topic: index into k_topics (mod its size)
 *            byte  how:  bits 0-1 names in the topic: 0 the client's own
 *                        type and id, 1 another device's, 2 own type and the
 *                        level as id, 3 the level as type and another id (app
 *                        ids: own, another, the level, the level);
 *                        bits 2-3 QoS (3 = 0); bit 4 retain; bit 5 each '$'
 *                        of the payload becomes a captured reqId; bit 6 the
 *                        handlers act (on_dm answers, on_message publishes
 *                        the decoded data back); bit 7 the handlers free the
 *                        client
 *            byte  sel:  bits 0-2 format (k_formats; 7 = the level); bits
 *                        3-5 which captured reqId (0 the newest)
 *            byte  level length (clipped to what is left), then the level
 *            u16   payload length (big endian, clipped), then the payload
 *   The last topic entry sends nothing: the client makes a call instead,
 *   chosen by sel bits 0-2: a management request (manage with a lifetime of
 *   60 s per level byte, unmanage, location, error codes, log, field), or,
 *   for a gateway or an application with how bits 0-1 = 3, the removal of
 *   one of its subscriptions.
 *
 * Each run ends with the client freed and every future complete;
 * LeakSanitizer checks nothing outlives it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/tether.h>
#include <tether/watson.h>

#include "fake_broker.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ORG "fuzorg"
#define OWN_TYPE "fuzz-type"
#define OWN_DEV "fuzz-dev"
#define OTHER_TYPE "other-type"
#define OTHER_DEV "dev-2"
#define OWN_APP "fuzz-app"
#define OTHER_APP "app-2"
#define NREQ 8                        /* captured reqIds kept */
#define NFUT 96

enum { ROLE_DEVICE, ROLE_GATEWAY, ROLE_APP, ROLE_PLAIN_DEVICE };

#define HOW_QOS(h) ((h) >> 2 & 3)
#define HOW_RETAIN 0x10
#define HOW_REQID 0x20
#define HOW_ACT 0x40
#define HOW_FREE 0x80

static fb_broker g_fb;
static size_t g_seen;
static int g_role;
static uint8_t g_how;                 /* the record being delivered */
static bool g_freed;                  /* a handler freed the client */
static char g_req[NREQ][40];          /* reqIds of the client's requests, a ring */
static unsigned g_nreq;
static tt_future *g_fs[NFUT];
static size_t g_nf;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fb_init(&g_fb);
    return 0;
}

/* Keep f until the end of the run (then it must be done). */
static void keep(tt_future *f) {
    if (g_nf < NFUT) g_fs[g_nf++] = f;
    else tt_future_free(f);
}

/* Topics the platform publishes on. %T type, %D device id, %A app id (each
 * per the record's names), %L the record's level, %F the format, %M the
 * management prefix ("iotdm-1/", or "iotdm-1/type/T/id/D/" for a gateway
 * or other names). */
static const char *const k_topics[] = {
    "iot-2/cmd/%L/fmt/%F",
    "iot-2/type/%T/id/%D/cmd/%L/fmt/%F",
    "iot-2/type/%T/id/%D/evt/%L/fmt/%F",
    "iot-2/type/%T/id/%D/mon",
    "iot-2/app/%A/mon",
    "iot-2/type/%T/id/%D/notify",
    "iot-2/type/%T/id/%D/intf/%L/evt/state",
    "iot-2/thing/type/%T/id/%D/intf/%L/evt/state",
    "iot-2/type/%T/id/%D/err/data",
    "iot-2/thing/type/%T/id/%D/err/data",
    "%Mresponse",
    "%Mobserve",
    "%Mcancel",
    "%Mdevice/update",
    "%Mmgmt/initiate/device/reboot",
    "%Mmgmt/initiate/device/factory_reset",
    "%Mmgmt/initiate/firmware/download",
    "%Mmgmt/initiate/firmware/update",
    "%Mmgmt/custom/%L",
    "%M%L",
    "iot-2/type/%T/id/%D/%L",
    "iot-2/thing/%L",
    "%L",
    NULL,                             /* a call of the client's, no publish */
};
#define NTOPICS (sizeof k_topics / sizeof k_topics[0])

/* The platform's formats, one with no codec, and (7) the record's level. */
static const char *const k_formats[] = { "json", "json-iotf", "msgpack", "raw",
                                         "text", "utf8",      "bin" };

typedef struct rec {
    uint8_t how, sel;
    const uint8_t *level;
    size_t llen;
} rec;

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static void put(sbuf *b, const void *p, size_t n) {
    if (n > b->cap - b->n) n = b->cap - b->n;
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static void put_level(sbuf *b, const rec *r, const char *dflt) {
    if (r->llen) put(b, r->level, r->llen);
    else puts_(b, dflt);
}

/* The topic of entry `tpl` for record r, into b. */
static void expand(sbuf *b, const char *tpl, const rec *r) {
    unsigned names = r->how & 3;
    for (const char *s = tpl; *s; s++) {
        if (*s != '%') {
            put(b, s, 1);
            continue;
        }
        switch (*++s) {
        case 'T':
            if (names == 3) put_level(b, r, OTHER_TYPE);
            else puts_(b, names == 1 ? OTHER_TYPE : OWN_TYPE);
            break;
        case 'D':
            if (names == 2) put_level(b, r, OWN_DEV);
            else puts_(b, names == 0 ? OWN_DEV : OTHER_DEV);
            break;
        case 'A':
            if (names >= 2) put_level(b, r, OWN_APP);
            else puts_(b, names == 0 ? OWN_APP : OTHER_APP);
            break;
        case 'L':
            put_level(b, r, "c1");
            break;
        case 'F':
            if ((r->sel & 7) == 7) put_level(b, r, "json");
            else puts_(b, k_formats[r->sel & 7]);
            break;
        case 'M':
            if (names == 0 && g_role != ROLE_GATEWAY) {
                puts_(b, "iotdm-1/");
            } else {
                puts_(b, "iotdm-1/type/");
                expand(b, "%T/id/%D/", r);
            }
            break;
        default:
            return;
        }
    }
}

/* ---- Handlers ------------------------------------------------------------- */

static size_t touch_json(const json_t *v) {
    if (!v) return 0;
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t n = s ? strlen(s) : 1;
    free(s);
    return n + (size_t)json_typeof(v);
}

static void on_message(tt_wiotp *w, const tt_wiotp_msg *m, void *arg) {
    (void)arg;
    size_t h = (size_t)m->kind + strlen(m->type_id) + strlen(m->device_id) + strlen(m->id) +
               strlen(m->format) + strlen(m->topic) + m->len + (m->retained ? 1 : 0) +
               (size_t)(-m->decode_err) + (m->ts_ms > 0 ? 1 : 0);
    const uint8_t *p = m->payload;
    for (size_t i = 0; i < m->len; i++) h += p[i];
    h += touch_json(m->data);
    g_seen += h;
    if (g_how & HOW_ACT) {
        /* Back through the format's encoder: what the decoder made of the
         * payload, on the message's own names. */
        tt_future *f;
        if (g_role == ROLE_APP)
            f = tt_wiotp_publish_command(w, m->type_id, m->device_id, "echo", m->format, m->data,
                                         TT_QOS0);
        else if (g_role == ROLE_GATEWAY)
            f = tt_wiotp_publish_event(w, m->type_id, m->device_id, "echo", m->format, m->data,
                                       TT_QOS1);
        else if (m->data)
            f = tt_wiotp_publish_event(w, NULL, NULL, "echo", m->format, m->data, TT_QOS0);
        else
            f = tt_wiotp_publish_event_raw(w, NULL, NULL, "echo", m->format, m->payload, m->len,
                                           TT_QOS1);
        tt_future_free(f);
    }
    if ((g_how & HOW_FREE) && !g_freed) {
        g_freed = true;
        tt_wiotp_free(w);
    }
}

static void on_dm(tt_wiotp *w, const tt_wiotp_dm_request *r, void *arg) {
    (void)arg;
    g_seen += (size_t)r->kind + strlen(r->req_id) + strlen(r->action) + strlen(r->topic) +
              touch_json(r->data);
    if (g_how & HOW_ACT) {
        int rc = r->kind == TT_WIOTP_DM_CUSTOM ? 200 : r->kind == TT_WIOTP_DM_FW_UPDATE ? 500 : 202;
        tt_future_free(tt_wiotp_dm_respond(w, r->req_id, rc, *r->action ? r->action : NULL));
    }
    if ((g_how & HOW_FREE) && !g_freed) {
        g_freed = true;
        tt_wiotp_free(w);
    }
}

/* A PUBLISH the client sent: keep the reqId of a management request. */
static void on_client_publish(void *arg, const char *topic, size_t tl, const uint8_t *p,
                              size_t n) {
    static const char pre[] = "iotdevice-1/", resp[] = "/response", key[] = "\"reqId\":\"";
    (void)arg;
    if (tl < sizeof pre - 1 || memcmp(topic, pre, sizeof pre - 1) != 0) return;
    if (tl >= sizeof resp - 1 && !memcmp(topic + tl - (sizeof resp - 1), resp, sizeof resp - 1))
        return;                       /* an answer to the platform: not ours to wait for */
    const uint8_t *k = memmem(p, n, key, sizeof key - 1);
    if (!k) return;
    k += sizeof key - 1;
    const uint8_t *e = memchr(k, '"', n - (size_t)(k - p));
    if (!e || e - k >= 40) return;
    char *slot = g_req[g_nreq++ % NREQ];
    memcpy(slot, k, (size_t)(e - k));
    slot[e - k] = '\0';
}

/* ---- The client's own calls ----------------------------------------------------- */

static const tt_wiotp_filter k_gw_subs[] = {
    { sizeof(tt_wiotp_filter), TT_WIOTP_COMMAND, NULL, NULL, NULL, NULL, TT_QOS1 },
    { sizeof(tt_wiotp_filter), TT_WIOTP_COMMAND, OTHER_TYPE, NULL, NULL, "msgpack", TT_QOS1 },
    { sizeof(tt_wiotp_filter), TT_WIOTP_COMMAND, OWN_TYPE, OWN_DEV, NULL, "json-iotf", TT_QOS1 },
    { sizeof(tt_wiotp_filter), TT_WIOTP_NOTIFICATION, NULL, NULL, NULL, NULL, TT_QOS0 },
    { sizeof(tt_wiotp_filter), TT_WIOTP_EVENT, NULL, NULL, NULL, NULL, TT_QOS0 },   /* refused */
};

static const tt_wiotp_filter k_app_subs[] = {
    { sizeof(tt_wiotp_filter), TT_WIOTP_EVENT, NULL, NULL, NULL, NULL, TT_QOS0 },
    { sizeof(tt_wiotp_filter), TT_WIOTP_COMMAND, NULL, NULL, NULL, NULL, TT_QOS1 },
    { sizeof(tt_wiotp_filter), TT_WIOTP_DEVICE_STATUS, NULL, NULL, NULL, NULL, TT_QOS2 },
    { sizeof(tt_wiotp_filter), TT_WIOTP_APP_STATUS, NULL, NULL, NULL, NULL, TT_QOS0 },
    { sizeof(tt_wiotp_filter), TT_WIOTP_DEVICE_STATE, NULL, NULL, NULL, NULL, TT_QOS1 },
    { sizeof(tt_wiotp_filter), TT_WIOTP_THING_STATE, NULL, NULL, NULL, NULL, TT_QOS0 },
    { sizeof(tt_wiotp_filter), TT_WIOTP_DEVICE_ERROR, NULL, NULL, NULL, NULL, TT_QOS2 },
    { sizeof(tt_wiotp_filter), TT_WIOTP_THING_ERROR, NULL, NULL, NULL, NULL, TT_QOS0 },
    /* overlaps the first: one message, two handler calls */
    { sizeof(tt_wiotp_filter), TT_WIOTP_EVENT, OTHER_TYPE, OTHER_DEV, NULL, "json", TT_QOS1 },
    { sizeof(tt_wiotp_filter), TT_WIOTP_NOTIFICATION, NULL, NULL, NULL, NULL, TT_QOS0 },
};

/* A NUL-terminated copy of the record's level. */
static const char *level_str(const rec *r, char *buf, size_t cap) {
    size_t n = r->llen < cap - 1 ? r->llen : cap - 1;
    memcpy(buf, r->level, n);
    buf[n] = '\0';
    return buf;
}

/* The client's call chosen by record r. */
static void client_call(tt_wiotp *w, const rec *r) {
    unsigned k = r->sel & 7;
    char s[64];
    if (g_role == ROLE_GATEWAY || g_role == ROLE_APP) {
        const tt_wiotp_filter *fl = g_role == ROLE_APP ? k_app_subs : k_gw_subs;
        size_t n = g_role == ROLE_APP ? sizeof k_app_subs / sizeof *k_app_subs
                                      : sizeof k_gw_subs / sizeof *k_gw_subs;
        if ((r->how & 3) == 3) {          /* the other calls are management requests */
            keep(tt_wiotp_unsubscribe(w, &fl[k % n]));
            return;
        }
    }
    switch (k) {
    case 0: {
        static const char *const bundles[] = { "example-dme", "" };
        tt_wiotp_device_info info = { .serial_number = level_str(r, s, sizeof s), .model = "m" };
        tt_wiotp_manage_opts mo = TT_OPTS_INIT(tt_wiotp_manage_opts);
        mo.lifetime_s = (uint32_t)r->llen * 60;
        mo.device_actions = r->how & 1;
        mo.firmware_actions = r->how & 2;
        mo.bundles = bundles;
        mo.nbundles = 2;
        mo.info = r->how & 0x10 ? &info : NULL;
        keep(tt_wiotp_manage(w, &mo));
        break;
    }
    case 1:
        keep(tt_wiotp_unmanage(w));
        break;
    case 2: {
        double lon = r->llen > 0 ? (int8_t)r->level[0] * 1.5 : 0;
        double lat = r->llen > 1 ? (int8_t)r->level[1] * 0.75 : 0, el = 10.5;
        keep(tt_wiotp_set_location(w, lon, lat, r->how & 1 ? &el : NULL, r->how & 2 ? &el : NULL));
        break;
    }
    case 3:
        keep(tt_wiotp_add_error_code(w, (int)r->llen - 100));
        break;
    case 4:
        keep(tt_wiotp_clear_error_codes(w));
        break;
    case 5:
        keep(tt_wiotp_add_log(w, level_str(r, s, sizeof s), r->how & 1 ? "d" : NULL, r->how & 3));
        break;
    case 6:
        keep(tt_wiotp_clear_log(w));
        break;
    default: {
        json_t *v = json_stringn((const char *)r->level, r->llen);   /* NULL if not UTF-8 */
        keep(tt_wiotp_notify_field(w, level_str(r, s, sizeof s), v));
        json_decref(v);
        break;
    }
    }
}

/* What a client does before the records: subscriptions, requests, events. */
static void setup(tt_wiotp *w) {
    static const tt_wiotp_filter any_event = { sizeof(tt_wiotp_filter), TT_WIOTP_EVENT, NULL,
                                               NULL, NULL, NULL, TT_QOS0 };
    json_t *v = json_pack("{s:i,s:s}", "t", 21, "s", "on");
    if (g_role == ROLE_GATEWAY) {
        for (size_t i = 0; i < sizeof k_gw_subs / sizeof *k_gw_subs; i++)
            keep(tt_wiotp_subscribe(w, &k_gw_subs[i]));
        keep(tt_wiotp_publish_event(w, NULL, NULL, "status", "json", v, TT_QOS1));
        keep(tt_wiotp_publish_event(w, OTHER_TYPE, OTHER_DEV, "status", "msgpack", v, TT_QOS2));
    } else if (g_role == ROLE_APP) {
        for (size_t i = 0; i < sizeof k_app_subs / sizeof *k_app_subs; i++)
            keep(tt_wiotp_subscribe(w, &k_app_subs[i]));
        keep(tt_wiotp_publish_event(w, OTHER_TYPE, OTHER_DEV, "status", "json", v, TT_QOS1));
        keep(tt_wiotp_publish_command(w, OWN_TYPE, OWN_DEV, "reboot", "json-iotf", v, TT_QOS2));
    } else {
        keep(tt_wiotp_subscribe(w, &any_event));                 /* refused: devices */
        keep(tt_wiotp_publish_event(w, NULL, NULL, "status", "json", v, TT_QOS1));
    }
    json_decref(v);
    if (g_role == ROLE_APP) return;

    /* Management requests that wait for iotdm-1/response (newest last). */
    static const char *const bundles[] = { "example-dme" };
    tt_wiotp_device_info info = { .serial_number = "sn1", .manufacturer = "acme",
                                  .fw_version = "1.0", .descriptive_location = "lab" };
    json_t *meta = json_pack("{s:i}", "k", 1);
    tt_wiotp_manage_opts mo = TT_OPTS_INIT(tt_wiotp_manage_opts);
    mo.lifetime_s = 7200;             /* renewed later: a timer while the run lasts */
    mo.device_actions = true;
    mo.firmware_actions = true;
    mo.bundles = bundles;
    mo.nbundles = 1;
    mo.info = &info;
    mo.metadata = meta;
    keep(tt_wiotp_manage(w, &mo));
    json_decref(meta);
    double el = 3.25;
    keep(tt_wiotp_set_location(w, 8.5, 47.25, &el, NULL));
    keep(tt_wiotp_add_error_code(w, 7));
    keep(tt_wiotp_clear_error_codes(w));
    keep(tt_wiotp_add_log(w, "started", "boot", 1));
    keep(tt_wiotp_clear_log(w));
    json_t *fv = json_string("2.0");
    keep(tt_wiotp_notify_field(w, "mgmt.firmware", fv));
    json_decref(fv);
}

/* ---- One run ------------------------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    g_role = data[0] & 3;
    bool no_dm = data[0] & 4, refuse = data[0] & 8, unauth = data[0] & 16;
    data++;
    size--;
    g_how = 0;
    g_freed = false;
    g_nreq = 0;
    g_nf = 0;
    memset(g_req, 0, sizeof g_req);

    tt_client_opts mo = TT_OPTS_INIT(tt_client_opts);
    mo.no_reconnect = true;
    tt_wiotp_opts o = TT_OPTS_INIT(tt_wiotp_opts);
    o.org = ORG;
    o.host = "127.0.0.1";
    o.port = g_fb.port;
    o.tls = TT_WIOTP_TLS_OFF;
    o.keepalive_s = TT_KEEPALIVE_OFF;
    o.token = "fuzz-token";
    o.request_timeout_ms = 60000;
    o.on_message = on_message;
    o.mqtt = &mo;
    if (g_role == ROLE_APP) {
        o.role = TT_WIOTP_APP;
        o.api_key = "a-" ORG "-key1";
        o.app_id = OWN_APP;
    } else {
        o.role = g_role == ROLE_GATEWAY ? TT_WIOTP_GATEWAY : TT_WIOTP_DEVICE;
        o.type_id = OWN_TYPE;
        o.device_id = OWN_DEV;
        o.managed = g_role != ROLE_PLAIN_DEVICE;
        o.on_dm = no_dm ? NULL : on_dm;
    }
    tt_wiotp *w = NULL;
    if (tt_wiotp_new(g_fb.rt, &o, &w) != TT_OK) abort();

    g_fb.v5 = false;                  /* Watson IoT speaks 3.1.1 */
    g_fb.answer = true;
    g_fb.nodelay = true;
    g_fb.refuse_sub = refuse ? 1 : 0;
    g_fb.on_publish = on_client_publish;
    keep(tt_wiotp_connect(w));
    fb_accept(&g_fb);
    (void)fb_spin(&g_fb, 8);
    (void)fb_connack(&g_fb, unauth ? 5 : 0);
    (void)fb_spin(&g_fb, 16);
    setup(w);
    bool open = fb_spin(&g_fb, 8);

    static uint8_t payload[65536];
    size_t off = 0;
    while (open && !g_freed && off + 4 <= size) {
        rec r = { .how = data[off + 1], .sel = data[off + 2] };
        const char *tpl = k_topics[data[off] % NTOPICS];
        r.llen = data[off + 3];
        off += 4;
        if (r.llen > size - off) r.llen = size - off;
        r.level = data + off;
        off += r.llen;
        size_t plen = 0;
        if (off + 2 <= size) {
            plen = (size_t)data[off] << 8 | data[off + 1];
            off += 2;
        }
        if (plen > size - off) plen = size - off;
        const uint8_t *p = data + off;
        off += plen;
        if (!tpl) {
            client_call(w, &r);
            open = fb_spin(&g_fb, 4);
            continue;
        }
        if (r.how & HOW_REQID) {
            /* Each '$' becomes a reqId the client is waiting for (or was). */
            unsigned back = (r.sel >> 3) & 7;
            const char *id = g_nreq > back ? g_req[(g_nreq - 1 - back) % NREQ] : "none";
            sbuf b = { (char *)payload, 0, sizeof payload - 1 };
            for (size_t i = 0; i < plen; i++) {
                if (p[i] == '$') puts_(&b, id);
                else put(&b, p + i, 1);
            }
            p = payload;
            plen = b.n;
        }
        char topic[1024];
        sbuf t = { topic, 0, sizeof topic };
        expand(&t, tpl, &r);
        unsigned qos = HOW_QOS(r.how) == 3 ? 0 : HOW_QOS(r.how);
        g_how = r.how;
        (void)fb_publish(&g_fb, topic, t.n, qos, r.how & HOW_RETAIN, p, plen);
        open = fb_spin(&g_fb, 4);
    }
    g_how = 0;

    /* Free: every future completes (TT_ECLOSED at worst). */
    if (!g_freed) tt_wiotp_free(w);
    fb_finish(&g_fb, g_fs, g_nf);
    return 0;
}
