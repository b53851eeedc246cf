/* libFuzzer target: what a ThingsBoard server sends to a tether device or
 * gateway. The fuzzer plays the broker on a loopback socket: after a CONNACK
 * it delivers PUBLISH packets on the platform's real topics whose payloads
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
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <tether/tether.h>
#include <tether/thingsboard.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TURNS_MAX 20000

static struct event_base *g_base;
static tt_runtime *g_rt;
static int g_lfd = -1;
static uint16_t g_port;
static size_t g_seen;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    if (tt_init() != TT_OK) abort();
    g_base = event_base_new();
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.base = g_base;
    if (!g_base || tt_runtime_new(&g_rt, &o) != TT_OK) abort();
    g_lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    if (g_lfd < 0 || bind(g_lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(g_lfd, 16) != 0 ||
        getsockname(g_lfd, (struct sockaddr *)&a, &al) != 0)
        abort();
    g_port = ntohs(a.sin_port);
    return 0;
}

static void turn(void) { event_base_loop(g_base, EVLOOP_NONBLOCK); }

static bool drain(int fd) {
    uint8_t buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
    }
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

/* A QoS 0 PUBLISH of `payload` on `topic` (3.1.1, or 5 with no properties). */
static size_t publish_pkt(uint8_t *out, bool v5, const char *topic, const uint8_t *payload, size_t plen) {
    size_t tl = strlen(topic);
    size_t rl = 2 + tl + (v5 ? 1 : 0) + plen;
    size_t n = 0;
    out[n++] = 0x30;
    do {
        uint8_t b = rl & 0x7F;
        rl >>= 7;
        out[n++] = rl ? (uint8_t)(b | 0x80) : b;
    } while (rl);
    out[n++] = (uint8_t)(tl >> 8);
    out[n++] = (uint8_t)tl;
    memcpy(out + n, topic, tl);
    n += tl;
    if (v5) out[n++] = 0;
    memcpy(out + n, payload, plen);
    return n + plen;
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
    o.port = g_port;
    o.token = "fuzz-token";
    o.request_timeout_ms = 60000;
    o.mqtt = &mo;
    tt_tb_device *d = NULL;
    tt_tb_gateway *g = NULL;
    if (gateway ? tt_tb_gateway_new(g_rt, &o, &g) != TT_OK : tt_tb_device_new(g_rt, &o, &d) != TT_OK) abort();
    if (gateway) d = tt_tb_gateway_device(g);

    tt_future *fs[8];
    size_t nf = 0;
    fs[nf++] = gateway ? tt_tb_gateway_connect(g) : tt_tb_device_connect(d);
    int sfd = -1;
    for (int i = 0; i < TURNS_MAX && sfd < 0; i++) {
        turn();
        sfd = accept4(g_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    if (sfd < 0) __builtin_trap();
    struct linger lg = { 1, 0 };
    (void)setsockopt(sfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    for (int i = 0; i < 8; i++) {
        turn();
        (void)drain(sfd);
    }
    static const uint8_t ack4[] = { 0x20, 0x02, 0x00, 0x00 }, ack5[] = { 0x20, 0x03, 0x00, 0x00, 0x00 };
    (void)send(sfd, v5 ? ack5 : ack4, v5 ? sizeof ack5 : sizeof ack4, MSG_NOSIGNAL);
    for (int i = 0; i < 16; i++) {
        turn();
        (void)drain(sfd);
    }

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
    for (int i = 0; i < 8; i++) {
        turn();
        (void)drain(sfd);
    }

    uint8_t pkt[70000];
    size_t off = 0;
    bool open = true;
    while (open && off + 4 <= size) {
        unsigned ti = data[off] % NTOPICS, id = data[off + 1];
        size_t plen = (size_t)data[off + 2] << 8 | data[off + 3];
        off += 4;
        if (plen > size - off) plen = size - off;
        char topic[96];
        snprintf(topic, sizeof topic, k_topics[ti], (int)id % 4, (int)id / 4);
        size_t n = publish_pkt(pkt, v5, topic, data + off, plen);
        off += plen;
        (void)send(sfd, pkt, n, MSG_NOSIGNAL);
        for (int i = 0; i < 4; i++) {
            turn();
            open = drain(sfd);
        }
    }

    /* Free: every future completes (TT_ECLOSED at worst). */
    if (gateway) tt_tb_gateway_free(g);
    else tt_tb_device_free(d);
    close(sfd);
    for (int i = 0; i < TURNS_MAX; i++) {
        bool all = true;
        for (size_t k = 0; k < nf; k++) all = all && tt_future_done(fs[k]);
        if (all) break;
        turn();
    }
    for (size_t k = 0; k < nf; k++) {
        if (!tt_future_done(fs[k])) __builtin_trap();
        tt_future_free(fs[k]);
    }
    for (int i = 0; i < 16; i++) turn();
    return 0;
}
