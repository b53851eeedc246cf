/* A ThingsBoard server emulator for integration tests.
 *
 * ThingsBoard's MQTT transport is itself the broker. Here a real mosquitto is
 * the broker (see tb_broker.h for one set up with tokens and ACLs) and the
 * emulator is one more MQTT client on it, logged in as a privileged "server"
 * user: it subscribes to the device and gateway topics and answers the way
 * the server does (topics in the fact sheet's sections 2 and 3):
 *
 *   device API   v1/devices/me/telemetry | attributes | attributes/request/<n> |
 *                rpc/request/<n> | rpc/response/<n> | claim, /provision/request,
 *                v2/fw/request/<id>/chunk/<n>
 *   gateway API  v1/gateway/connect | disconnect | telemetry | attributes |
 *                attributes/request | rpc | claim
 *
 *   tb_emu_opts o = { .host = "127.0.0.1", .port = b.port, .user = TB_BROKER_SERVER_USER,
 *                     .password = TB_BROKER_SERVER_PASSWORD, .mode = TB_EMU_DEVICE };
 *   tb_emu *e = tb_emu_start(rt, &o);
 *   tb_emu_set_shared_attrs(e, NULL, shared);          ... the device under test runs ...
 *   tb_emu_wait(e, "telemetry", NULL, 3, 10000);
 *   json_t *t = tb_emu_telemetry(e, NULL);   ... check ...   json_decref(t);
 *   tb_emu_free(e);
 *
 * One device or one gateway at a time. On a plain mosquitto every device
 * publishes on the same `v1/devices/me/...` topics and the emulator cannot
 * tell which client sent a message, so an emulator speaks for exactly one
 * device (TB_EMU_DEVICE) or one gateway and its sub-devices (TB_EMU_GATEWAY).
 * Give each test its own broker (or at least its own emulator and device).
 * `device` arguments are NULL for that device (or for the gateway itself, which
 * is a device too) and the sub-device name otherwise (gateway mode only).
 *
 * Own publications. The emulator connects with MQTT 5 and subscribes with
 * No Local, so the broker never hands it back what it published itself on
 * the topics both sides use (v1/devices/me/attributes, rpc/request/+,
 * rpc/response/+, v1/gateway/rpc, v1/gateway/attributes). On v1/gateway/rpc
 * it also tells the two directions apart by shape: a message with a top-level
 * "id" is a gateway's reply ({"device","id","data"}); one whose "data" holds an
 * "id" but no "method" is a reply in the older form ({"device","data":{"id",
 * ...}}, the result being data.result if present, else data); one whose
 * "data" holds a "method" is a request (the emulator's own) and is ignored.
 *
 * Answers that follow the server, where the fact sheet leaves room:
 *  - Attribute request: {"client":{...},"shared":{...}} with only the keys
 *    asked for that exist; a scope with nothing to report is left out (so
 *    the answer may be {}); no clientKeys and no sharedKeys = everything.
 *  - Gateway attribute request {"id","device","client":bool,"key"|"keys"}:
 *    {"id","device","value":v} for "key" (no "value" if the key is unknown),
 *    {"id","device","values":{...}} for "keys". The unconfirmed array form
 *    {"id","device","client":[...],"shared":[...]} gets "values" from both.
 *  - Client-side RPC: answered from tb_emu_set_rpc_result(); getSessionLimits
 *    is built in; any other method gets no answer (no rule chain replies).
 *  - Shared-attribute pushes and RPCs to a gateway sub-device need the device
 *    to be connected to the gateway: by v1/gateway/connect, or by telemetry,
 *    attributes or an attribute request naming it (the server auto-creates
 *    and routes then); v1/gateway/disconnect ends it. Otherwise they fail
 *    (-1, or a future failed with TT_ENOTFOUND) with a line on stderr.
 *  - A sub-device's deletion push is {"device":d,"data":{"deleted":[...]}}.
 *  - Firmware chunk n of size s is image[n*s, n*s+s); past the end it is
 *    empty. An empty (or "0") size means the whole image as chunk 0. No image
 *    or a size that is not a decimal number: a text line on v2/fw/error.
 *  - Not emulated: MQTT 5 PUBACK 151 (quota) and other server reason codes,
 *    rate limiting, v2/sw, the short v2/t, v2/a, v2/r topics, Protobuf.
 *
 * Threads: the emulator's handlers run on tether's callback pool and the test
 * calls these functions from its own thread; all state is behind one mutex
 * (a test fixture, not a hot path). Functions that wait (tb_emu_start, the
 * publishing ones, tb_emu_wait, tb_emu_free) must be called from a thread
 * that is not a tether loop or pool thread. json_t arguments are borrowed
 * (copied); json_t results are new references the caller decrefs. */
#ifndef TT_TB_EMU_H
#define TT_TB_EMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <tether/future.h>
#include <tether/runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tb_emu tb_emu;

typedef enum tb_emu_mode { TB_EMU_DEVICE, TB_EMU_GATEWAY } tb_emu_mode;

typedef struct tb_emu_opts {
    const char *host;                  /* the broker */
    uint16_t port;
    const char *user, *password;       /* the emulator's own broker login (may be NULL) */
    tb_emu_mode mode;
} tb_emu_opts;

/* Connect (MQTT 5), subscribe, and return once both are acknowledged (10 s
 * each at most). NULL, with a message on stderr, on failure. `rt` must
 * outlive the emulator. */
tb_emu *tb_emu_start(tt_runtime *rt, const tb_emu_opts *o);

/* Disconnect and release everything. Server-side RPC futures still waiting
 * fail with TT_ECLOSED. NULL is allowed. */
void tb_emu_free(tb_emu *e);

/* Print one line per request answered (and per message ignored, with why)
 * to `out`; NULL stops it. For the standalone program and for debugging. */
void tb_emu_set_trace(tb_emu *e, FILE *out);

/* ---- Server state ---------------------------------------------------------------
 * Merged into what the server holds (keys already present are replaced).
 * Client attributes the device publishes are merged in as well. */
void tb_emu_set_client_attrs(tb_emu *e, const char *device, json_t *obj);
void tb_emu_set_shared_attrs(tb_emu *e, const char *device, json_t *obj);

/* Merge into the shared attributes and publish the update: {k:v} on
 * v1/devices/me/attributes, or {"device":d,"data":{k:v}} on
 * v1/gateway/attributes for a sub-device. 0 once the broker acknowledged it,
 * -1 on failure. */
int tb_emu_push_shared(tb_emu *e, const char *device, json_t *obj);

/* Remove shared attributes and publish {"deleted":[k,...]} (for a sub-device
 * wrapped as above). 0 or -1. */
int tb_emu_delete_shared(tb_emu *e, const char *device, const char *const *keys, size_t n);

/* Server-side RPC: {"method","params"} on v1/devices/me/rpc/request/<id>, or
 * {"device","data":{"id","method","params"}} on v1/gateway/rpc. The future
 * completes with the reply (a json_t *, read with tt_future_get_ptr() and
 * owned by the future: json_incref() it to keep it past tt_future_free), or
 * fails with TT_ETIMEDOUT after timeout_ms (0 = 10000), TT_EINVAL (bad
 * arguments), TT_ENOTFOUND (sub-device not connected), TT_ECLOSED (emulator
 * freed). `params` is borrowed (NULL = {}). The continuation runs on the
 * callback pool. */
tt_future *tb_emu_rpc(tb_emu *e, const char *device, const char *method, json_t *params,
                      uint32_t timeout_ms);

/* Client-side RPC answers: method -> result (copied). A result for
 * "getSessionLimits" replaces the built-in one. NULL removes the method. */
void tb_emu_set_rpc_result(tb_emu *e, const char *method, json_t *result);

/* The getSessionLimits answer. The default is {"maxPayloadSize":65536,
 * "maxInflightMessages":100,"rateLimits":{"messages","telemetryMessages",
 * "telemetryDataPoints"}}, plus "gatewayRateLimits" in gateway mode. */
void tb_emu_set_session_limits(tb_emu *e, json_t *limits);

/* Provisioning: a key/secret pair and its answer. style 0 answers
 * {"status":"SUCCESS","credentialsType":T,"credentialsValue":C}, style 1
 * {"provisionDeviceStatus":"SUCCESS","credentialsType":T,"accessToken":C} for
 * a token, or with "credentialsValue" as escaped JSON text for MQTT_BASIC.
 * `credentials`: a string (an access token, T = ACCESS_TOKEN) or an object
 * {"clientId","userName","password"} (T = MQTT_BASIC). If the request brings
 * its own credentials ("credentialsType":"ACCESS_TOKEN","token") the answer
 * carries those instead. An unknown key/secret gets {"status":"NOT_FOUND",
 * "errorMsg":"Provision data was not found!"}. */
void tb_emu_add_provision(tb_emu *e, const char *key, const char *secret, int style,
                          json_t *credentials);

/* Firmware: set the shared attributes fw_title, fw_version, fw_size,
 * fw_checksum_algorithm and fw_checksum (algo: "SHA256", "SHA384", "SHA512",
 * "MD5", "CRC32", "MURMUR3_32", "MURMUR3_128", see tb_checksum.h; corrupt =
 * a checksum that does not match the image) and serve
 * v2/fw/request/<id>/chunk/<n> from a copy of the image. push: also publish
 * the five attributes as a shared-attribute update. 0, or -1 (unknown
 * algorithm, publish failed). */
int tb_emu_set_firmware(tb_emu *e, const char *title, const char *version, const void *img,
                        size_t len, const char *algo, bool corrupt, bool push);

/* Fault mode: while on, attribute requests, client-side RPC, provisioning
 * and firmware chunks get no answer (they are still recorded). */
void tb_emu_set_silent(tb_emu *e, bool silent);

/* Gateway mode: publish the server's notice {"device":d,"reason":r} on
 * v1/gateway/disconnect (150 = rate limit) and stop routing to d. 0 or -1. */
int tb_emu_kick_device(tb_emu *e, const char *device, int reason);

/* True if a gateway sub-device is connected (see above). */
bool tb_emu_connected(tb_emu *e, const char *device);

/* ---- Records: new references (JSON arrays, in arrival order) ----------------------- */
/* Telemetry entries, one per object: an array payload gives one entry per
 * element; gateway telemetry {"d":[...]} one per element for device d. */
json_t *tb_emu_telemetry(tb_emu *e, const char *device);
/* Client attributes as published, one object per message. */
json_t *tb_emu_attributes(tb_emu *e, const char *device);
/* Claim requests ({"secretKey","durationMs"} as sent, possibly {}). */
json_t *tb_emu_claims(tb_emu *e, const char *device);
/* fw_state values (strings) from the device's (or gateway's own) telemetry. */
json_t *tb_emu_fw_states(tb_emu *e);
/* {"event":"connect","device":d,"type":t} (type only if sent) and
 * {"event":"disconnect","device":d}. */
json_t *tb_emu_gateway_events(tb_emu *e);
/* {"id":n,"device":d|null,"data":reply,"matched":bool} for each reply to a
 * server-side RPC; matched is false for an unknown or timed-out id. */
json_t *tb_emu_rpc_replies(tb_emu *e);
/* Client-side RPC requests {"id":n,"method":m,"params":p} (answered or not). */
json_t *tb_emu_client_rpcs(tb_emu *e);
/* Provisioning requests as received. */
json_t *tb_emu_provisions(tb_emu *e);
/* Firmware chunk requests {"request_id":id,"chunk":n,"size":s,"sent":bytes}
 * (size 0 = whole image; sent -1 when not answered). */
json_t *tb_emu_fw_requests(tb_emu *e);

/* Wait until at least `count` records of a kind exist: "telemetry",
 * "attributes", "claims" (for `device`), "fw_states", "gateway_events",
 * "rpc_replies", "client_rpcs", "provisions", "fw_requests". 0, or -1 on
 * timeout or an unknown kind. */
int tb_emu_wait(tb_emu *e, const char *kind, const char *device, size_t count, uint32_t timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* TT_TB_EMU_H */
