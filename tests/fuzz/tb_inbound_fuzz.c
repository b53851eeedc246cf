/* libFuzzer target: what a ThingsBoard server sends to a tether device or
 * gateway. The fuzzer plays the broker on a loopback socket (fake_broker.h,
 * which reads and drops what the client sends): after a CONNACK it delivers
 * PUBLISH packets on the platform's real topics whose payloads
 * (and request ids) come from the input, while the client has requests of
 * its own pending (attribute request, client RPC, firmware update) and
 * handlers installed (attributes, server RPC), so answers, pushes and
 * requests all reach the adapter's parsers.
 *
 * Input layout:
 *   byte 0   bit 0: gateway (else device); bit 1: MQTT 5 (else 3.1.1)
 *   then records until the input ends:
 *            byte  topic index (mod the table below)
 *            byte  id (used where the topic carries one)
 *            u16   payload length (big endian, clipped to what is left)
 *            ...   payload
 *
 * Each run ends with the client freed and every future complete;
 * LeakSanitizer checks nothing outlives it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/tether.h>
#include <tether/thingsboard.h>

#include "fake_broker.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fb_broker g_fb;
static size_t g_seen;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fb_init(&g_fb);
    return 0;
}

/* Topics the server publishes on; %d takes the record's id. */
static const char *const k_topics[] = {
    "v1/devices/me/attributes",
    "v1/devices/me/attributes/response/%d",
    "v1/devices/me/rpc/request/%d",
    "v1/devices/me/rpc/response/%d",
    "v2/fw/response/%d/chunk/%d",
    "v1/gateway/attributes",
    "v1/gateway/attributes/response",
    "v1/gateway/rpc",
    "v1/gateway/disconnect",
    "v1/devices/me/attributes/response/",
    "v2/fw/response/%d/chunk/x",
};
#define NTOPICS (sizeof k_topics / sizeof k_topics[0])

static void on_attr(tt_tb_device *d, const char *key, const json_t *value, void *arg) {
    (void)d;
    (void)arg;
    g_seen += strlen(key) + (value ? json_typeof(value) : 7);
}

static void on_rpc(tt_tb_device *d, int64_t id, const char *method, const json_t *params, void *arg) {
    (void)arg;
    g_seen += strlen(method) + (params ? 1 : 0);
    json_t *r = json_pack("{s:b}", "ok", 1);
    tt_future_free(tt_tb_device_rpc_reply(d, id, r));
    json_decref(r);
}

static void on_gw_attr(tt_tb_gateway *g, const char *device, const char *key, const json_t *value, void *arg) {
    (void)g;
    (void)arg;
    g_seen += strlen(device) + strlen(key) + (value ? 1 : 0);
}

static void on_gw_rpc(tt_tb_gateway *g, const char *device, int64_t id, const char *method,
                      const json_t *params, void *arg) {
    (void)arg;
    (void)params;
    g_seen += strlen(method);
    tt_future_free(tt_tb_gateway_rpc_reply(g, device, id, NULL));
}

static void on_gw_disc(tt_tb_gateway *g, const char *device, int reason, void *arg) {
    (void)g;
    (void)arg;
    g_seen += strlen(device) + (size_t)reason;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    bool gateway = data[0] & 1, v5 = data[0] & 2;
    data++;
    size--;

    tt_client_opts mo = TT_OPTS_INIT(tt_client_opts);
    mo.version = v5 ? TT_MQTT_5 : TT_MQTT_311;
    mo.keepalive_s = TT_KEEPALIVE_OFF;
    mo.no_reconnect = true;
    tt_tb_opts o = TT_OPTS_INIT(tt_tb_opts);
    o.host = "127.0.0.1";
    o.port = g_fb.port;
    o.token = "fuzz-token";
    o.request_timeout_ms = 60000;
    o.mqtt = &mo;
    tt_tb_device *d = NULL;
    tt_tb_gateway *g = NULL;
    if (gateway ? tt_tb_gateway_new(g_fb.rt, &o, &g) != TT_OK
                : tt_tb_device_new(g_fb.rt, &o, &d) != TT_OK)
        abort();
    if (gateway) d = tt_tb_gateway_device(g);

    tt_future *fs[8];
    size_t nf = 0;
    fs[nf++] = gateway ? tt_tb_gateway_connect(g) : tt_tb_device_connect(d);
    g_fb.v5 = v5;                     /* what the client sends is read and dropped */
    g_fb.nodelay = true;              /* records leave at once, not after the client's ACKs */
    fb_accept(&g_fb);
    (void)fb_spin(&g_fb, 8);
    (void)fb_connack(&g_fb, 0);
    (void)fb_spin(&g_fb, 16);

    /* Handlers and requests of our own, so answers have somewhere to go. */
    uint32_t sid;
    if (gateway) {
        (void)tt_tb_gateway_on_rpc(g, on_gw_rpc, NULL);
        (void)tt_tb_gateway_subscribe_attribute(g, NULL, NULL, on_gw_attr, NULL, &sid);
        (void)tt_tb_gateway_on_device_disconnect(g, on_gw_disc, NULL);
        fs[nf++] = tt_tb_gateway_connect_device(g, "Device A", "default");
        fs[nf++] = tt_tb_gateway_request_attributes(g, "Device A", false, "k", NULL);
        fs[nf++] = tt_tb_gateway_request_attributes(g, "Device A", true, "a,b", NULL);
    } else {
        (void)tt_tb_device_on_rpc(d, on_rpc, NULL);
        (void)tt_tb_device_subscribe_attribute(d, NULL, on_attr, NULL, &sid);
        fs[nf++] = tt_tb_device_request_attributes(d, "a,b", "c", NULL);
        fs[nf++] = tt_tb_device_rpc_call(d, "getTime", NULL, NULL);
        tt_tb_fw_opts fo = TT_OPTS_INIT(tt_tb_fw_opts);
        fo.chunk_size = 16;
        fs[nf++] = tt_tb_device_fw_update(d, &fo);
    }
    (void)fb_spin(&g_fb, 8);

    size_t off = 0;
    bool open = true;
    while (open && off + 4 <= size) {
        unsigned ti = data[off] % NTOPICS, id = data[off + 1];
        size_t plen = (size_t)data[off + 2] << 8 | data[off + 3];
        off += 4;
        if (plen > size - off) plen = size - off;
        char topic[96];
        snprintf(topic, sizeof topic, k_topics[ti], (int)id % 4, (int)id / 4);
        (void)fb_publish(&g_fb, topic, strlen(topic), 0, false, data + off, plen);
        off += plen;
        open = fb_spin(&g_fb, 4);
    }

    /* Free: every future completes (TT_ECLOSED at worst). */
    if (gateway) tt_tb_gateway_free(g);
    else tt_tb_device_free(d);
    fb_finish(&g_fb, fs, nf);
    return 0;
}
