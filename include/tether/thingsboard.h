/* tether — ThingsBoard: the device and gateway MQTT API.
 *
 * A tt_tb_device is one ThingsBoard device on one MQTT connection (a
 * tt_client underneath): telemetry, client attributes, attribute requests and
 * shared-attribute updates, RPC both ways, claiming, firmware updates and the
 * server's session limits. A tt_tb_gateway is a gateway device that also
 * speaks for sub-devices by name through the v1/gateway/... topics.
 * tt_tb_provision() trades a provisioning key and secret for credentials.
 *
 * Feature map (ThingsBoard SDK call -> tether call):
 *   TBDeviceMqttClient(...) / connect / disconnect / stop / is_connected
 *                                   -> tt_tb_device_new, tt_tb_device_connect,
 *                                      tt_tb_device_disconnect, tt_tb_device_free,
 *                                      tt_tb_device_connected
 *   send_telemetry / send_attributes -> tt_tb_device_send_telemetry (objects,
 *                                      {"ts","values"} entries, arrays),
 *                                      tt_tb_device_send_telemetry_ts,
 *                                      tt_tb_device_send_attributes
 *   request_attributes              -> tt_tb_device_request_attributes
 *   subscribe_to_attribute / subscribe_to_all_attributes /
 *   unsubscribe_from_attribute / clean_device_sub_dict
 *                                   -> tt_tb_device_subscribe_attribute (key or NULL),
 *                                      tt_tb_device_unsubscribe_attribute (id or 0 = all)
 *   set_server_side_rpc_request_handler / send_rpc_reply
 *                                   -> tt_tb_device_on_rpc, tt_tb_device_rpc_reply
 *   send_rpc_call                   -> tt_tb_device_rpc_call
 *   request_service_configuration   -> tt_tb_device_apply_session_limits
 *   claim / claim_device            -> tt_tb_device_claim
 *   provision / get_provision_request -> tt_tb_provision
 *   get_firmware_update / update_firmware_info / set_on_firmware_received_callback
 *                                   -> tt_tb_device_fw_update (future yields the
 *                                      image), tt_tb_device_fw_report
 *   max_inflight_messages_set / max_queued_messages_set / reconnect_delay_set
 *                                   -> tt_tb_opts.mqtt (tt_client_opts: max_inflight,
 *                                      offline_queue_bytes, backoff_min_ms/max_ms)
 *   TBPublishInfo.get / rc / mid    -> the tt_future of each send (tt_future_wait)
 *   TBGatewayMqttClient(...)        -> tt_tb_gateway_new, tt_tb_gateway_device
 *   gw_connect_device / gw_disconnect_device
 *                                   -> tt_tb_gateway_connect_device, tt_tb_gateway_disconnect_device
 *   gw_send_telemetry / gw_send_attributes
 *                                   -> tt_tb_gateway_send_telemetry, tt_tb_gateway_send_attributes
 *   gw_request_shared_attributes / gw_request_client_attributes
 *                                   -> tt_tb_gateway_request_attributes
 *   gw_subscribe_to_attribute / gw_subscribe_to_all_device_attributes /
 *   gw_subscribe_to_all_attributes / gw_unsubscribe
 *                                   -> tt_tb_gateway_subscribe_attribute (device and key
 *                                      each NULL = all), tt_tb_gateway_unsubscribe_attribute
 *   gw_set_server_side_rpc_request_handler / gw_send_rpc_reply
 *                                   -> tt_tb_gateway_on_rpc, tt_tb_gateway_rpc_reply
 *   gw_claim                        -> tt_tb_gateway_claim
 *   device_disconnect_callback      -> tt_tb_gateway_on_device_disconnect
 *   get_subscriptions_in_progress   -> the future of tt_tb_gateway_connect (completes once
 *                                      the subscriptions are acknowledged)
 *   MicroPython SDK: TBDeviceMqttClient(host, port, access_token, quality_of_service,
 *   client_id, chunk_size) -> tt_tb_opts (token, qos0, client_id) and
 *                                      tt_tb_fw_opts.chunk_size; connect(timeout) ->
 *                                      tt_future_wait(tt_tb_device_connect(d), ms);
 *                                      send_telemetry / send_attributes at QoS 0 -> qos0;
 *                                      request_attributes / send_rpc_call (blocking) ->
 *                                      the futures above; claim_device -> tt_tb_device_claim;
 *                                      get_provision_request / provision -> tt_tb_provision;
 *                                      wait_for_msg / check_for_msg -> not needed: handlers
 *                                      are called as messages arrive
 *   Firmware announced by a push    -> subscribe to "fw_version" (or "fw_title") and call
 *                                      tt_tb_device_fw_update() from the handler
 *
 * MQTT: the client speaks MQTT 5 unless tt_tb_opts.mqtt->version says
 * otherwise, and subscribes with No Local, so that on a plain broker (tests,
 * emulators) its own publishes on the topics it shares with the server
 * (attributes, RPC) do not come back to it as requests or updates.
 *
 * Threads: every handler given here runs on the device's MQTT client strand
 * (a callback-pool thread, or the host loop when the runtime is embedded), one
 * at a time and in arrival order; continuations of the futures returned here
 * run there too. Handlers may call any tether function except blocking waits,
 * including tt_tb_device_rpc_reply() and tt_tb_device_free().
 *
 * JSON values are jansson json_t. Values passed in are borrowed (encoded
 * before the call returns); values handed to handlers are borrowed for the
 * call (json_incref() to keep them).
 */
#ifndef TETHER_THINGSBOARD_H
#define TETHER_THINGSBOARD_H

#include <jansson.h>
#include <tether/common.h>
#include <tether/err.h>
#include <tether/future.h>
#include <tether/mqtt.h>
#include <tether/runtime.h>

TT_BEGIN_DECLS

typedef struct tt_tb_device tt_tb_device;
typedef struct tt_tb_gateway tt_tb_gateway;

/** Where and who. Credentials: an access token (`token`), or basic MQTT
 * credentials (`client_id` and/or `username` + `password`), or an X.509
 * client certificate (`tls` with cert_file/key_file, no token). */
typedef struct tt_tb_opts {
    uint32_t size;                     /* TT_OPTS_INIT(tt_tb_opts) */
    const char *host;                  /* required */
    uint16_t port;                     /* 0 = 1883, or 8883 with tls */
    const char *token;                 /* access token (sent as the MQTT user name) */
    const char *client_id;             /* basic credentials; NULL = generated */
    const char *username;
    const char *password;              /* basic credentials; with a token, an optional
                                          password sent along (ThingsBoard ignores it;
                                          a plain broker may want one) */
    const tt_tls_opts *tls;            /* TLS (and the client certificate for X.509) */
    bool qos0;                         /* publish at QoS 0 instead of 1 */
    uint32_t request_timeout_ms;       /* attribute requests, RPC calls, fw chunks; 0 = 10000 */
    uint32_t max_payload;              /* split telemetry above this many bytes; 0 = 65536
                                          (replaced by the server's maxPayloadSize once
                                          tt_tb_device_apply_session_limits() ran) */
    /* Further MQTT settings (keepalive, reconnect backoff, inflight window,
     * offline queue, events...). Its url, client_id, username, password and tls
     * are replaced by the fields above. May be NULL. */
    const tt_client_opts *mqtt;
} tt_tb_opts;

/* ---- Device --------------------------------------------------------------- */

/**
 * Create a device client on `rt`. Nothing is sent until tt_tb_device_connect().
 * Ownership: every string is copied. Thread: any.
 * Errors: TT_EINVAL (no host, bad options), TT_ENOMEM, TT_ECLOSED.
 */
TT_API tt_err tt_tb_device_new(tt_runtime *rt, const tt_tb_opts *opts, tt_tb_device **out);

/**
 * Connect and subscribe to the device topics (attributes, attribute
 * responses, RPC requests and responses).
 * Completes: once the subscriptions are acknowledged.
 * Errors: those of tt_client_connect (TT_EAUTH / TT_EREFUSED for a refused
 * token, detail = CONNACK code), TT_EREFUSED (subscription refused).
 */
TT_API tt_future *tt_tb_device_connect(tt_tb_device *d);

/** Disconnect cleanly. Completes when the socket is closed. */
TT_API tt_future *tt_tb_device_disconnect(tt_tb_device *d);

/** True between a successful connect and a loss of the connection. */
TT_API bool tt_tb_device_connected(const tt_tb_device *d);

/** The MQTT client underneath (borrowed), for raw topics and events. */
TT_API tt_client *tt_tb_device_client(tt_tb_device *d);

/**
 * Stop and release. Pending requests fail with TT_ECLOSED. Never blocks;
 * legal inside the device's own handlers.
 */
TT_API void tt_tb_device_free(tt_tb_device *d);

/**
 * Send telemetry on v1/devices/me/telemetry. `data` is an object of values,
 * an entry {"ts":<ms>,"values":{...}}, or an array of either (a batch).
 * Payloads above the maximum payload size are split (by entry, then by key)
 * into several messages, none above the limit; with session limits applied,
 * messages wait for rate-limit tokens (on a timer, not a sleeping thread).
 * Ownership: `data` is encoded before the call returns.
 * Completes: when every part is acknowledged (QoS 1) or written (QoS 0).
 * Errors: TT_EINVAL (not an object or array, or one value alone larger than
 * the limit), those of tt_client_publish.
 */
TT_API tt_future *tt_tb_device_send_telemetry(tt_tb_device *d, const json_t *data);

/** One timestamped entry: {"ts":ts_ms,"values":values}. As above. */
TT_API tt_future *tt_tb_device_send_telemetry_ts(tt_tb_device *d, int64_t ts_ms,
                                                 const json_t *values);

/** Client-side attributes (an object) on v1/devices/me/attributes. As above. */
TT_API tt_future *tt_tb_device_send_attributes(tt_tb_device *d, const json_t *attrs);

/**
 * Request attribute values: `client_keys` and `shared_keys` are
 * comma-separated key lists (either may be NULL, not both).
 * Completes: with the response; tt_future_get_ptr() is the json_t
 *            {"client":{...},"shared":{...}}, borrowed until the future is freed.
 * Errors: TT_EINVAL, TT_ETIMEDOUT (no answer within opts->timeout_ms or the
 *         device's request_timeout_ms), TT_ECLOSED, publish errors.
 */
TT_API tt_future *tt_tb_device_request_attributes(tt_tb_device *d, const char *client_keys,
                                                  const char *shared_keys, const tt_call_opts *opts);

/** Shared-attribute update handler: `value` NULL means `key` was deleted. */
typedef void (*tt_tb_attr_fn)(tt_tb_device *d, const char *key, const json_t *value, void *arg);

/**
 * Call `fn` for updates of `key` (NULL: every key). Local: no I/O.
 * Returns the subscription id through `id` (never 0).
 * Errors: TT_EINVAL, TT_ENOMEM.
 */
TT_API tt_err tt_tb_device_subscribe_attribute(tt_tb_device *d, const char *key, tt_tb_attr_fn fn,
                                               void *arg, uint32_t *id);

/** Drop subscription `id`; 0 drops all. Errors: TT_ENOTFOUND. A handler
 * already running finishes. */
TT_API tt_err tt_tb_device_unsubscribe_attribute(tt_tb_device *d, uint32_t id);

/** Server-side RPC handler. Answer with tt_tb_device_rpc_reply(d, id, ...),
 * now or later, from any thread. `params` may be NULL. */
typedef void (*tt_tb_rpc_fn)(tt_tb_device *d, int64_t id, const char *method,
                             const json_t *params, void *arg);

/** Set (or with NULL clear) the server-side RPC handler. Requests arriving
 * without a handler are answered {"error":"no handler"}. */
TT_API tt_err tt_tb_device_on_rpc(tt_tb_device *d, tt_tb_rpc_fn fn, void *arg);

/**
 * Answer server-side RPC `id` with `result` (any JSON; NULL = {}).
 * Thread: any. Completes as tt_client_publish.
 */
TT_API tt_future *tt_tb_device_rpc_reply(tt_tb_device *d, int64_t id, const json_t *result);

/**
 * Client-side RPC: ask the server to run `method` with `params` (NULL = {}).
 * Completes: with the answer; tt_future_get_ptr() is its json_t (borrowed
 *            until the future is freed).
 * Errors: TT_EINVAL, TT_ETIMEDOUT, TT_ECLOSED, publish errors.
 */
TT_API tt_future *tt_tb_device_rpc_call(tt_tb_device *d, const char *method, const json_t *params,
                                        const tt_call_opts *opts);

/**
 * Ask the server for its session limits (RPC getSessionLimits) and apply
 * them: maxPayloadSize caps every message (telemetry is split below it),
 * maxInflightMessages becomes the client's QoS 1 window
 * (tt_client_set_max_inflight), and the rateLimits windows
 * ("count:seconds,...") for messages, telemetry messages and telemetry data
 * points delay sends that would exceed them.
 * Completes: with the limits; tt_future_get_ptr() is the server's json_t.
 * Errors: as tt_tb_device_rpc_call, TT_EPROTO (an answer that is not limits).
 */
TT_API tt_future *tt_tb_device_apply_session_limits(tt_tb_device *d, const tt_call_opts *opts);

/** Apply limits given by hand (the shape getSessionLimits returns). Local. */
TT_API tt_err tt_tb_device_set_session_limits(tt_tb_device *d, const json_t *limits);

/**
 * Claim request on v1/devices/me/claim: {"secretKey":secret,"durationMs":ms}.
 * secret NULL = ""; duration_ms 0 = leave it to the server.
 */
TT_API tt_future *tt_tb_device_claim(tt_tb_device *d, const char *secret, uint32_t duration_ms);

/* ---- Firmware --------------------------------------------------------------- */

typedef enum tt_tb_fw_state {
    TT_TB_FW_IDLE, TT_TB_FW_DOWNLOADING, TT_TB_FW_DOWNLOADED, TT_TB_FW_VERIFIED,
    TT_TB_FW_UPDATING, TT_TB_FW_UPDATED, TT_TB_FW_FAILED
} tt_tb_fw_state;

typedef struct tt_tb_fw_opts {
    uint32_t size;                     /* TT_OPTS_INIT(tt_tb_fw_opts) */
    const char *current_title;         /* what runs now; NULL = nothing */
    const char *current_version;
    uint32_t chunk_size;               /* bytes per chunk request; 0 = 16384 */
    bool force;                        /* download even if title and version match */
} tt_tb_fw_opts;

/**
 * One firmware update (§6f): request the fw_* shared attributes; if they name
 * a package other than the current one, report fw_state DOWNLOADING, fetch
 * it chunk by chunk (v2/fw/request/<id>/chunk/<n>, payload = chunk size) over
 * the v2/fw/response/+/chunk/+ subscription, report DOWNLOADED, verify the
 * checksum (sha256, sha384, sha512, md5, crc32, murmur3_32, murmur3_128) and
 * report VERIFIED, or FAILED with fw_error. Applying the image and reporting
 * UPDATING / UPDATED is the caller's (tt_tb_device_fw_report).
 * Completes: TT_OK with the image: tt_future_get_ptr() is the bytes (binary,
 *            borrowed until the future is freed), tt_future_get_i64() their
 *            length; the title and version are in tt_tb_fw_title()/_version().
 *            TT_OK with a NULL image when there is nothing new.
 * Errors: TT_EPROTO (checksum mismatch, size mismatch, unknown algorithm;
 *         fw_state FAILED reported), TT_ENOTFOUND (no firmware assigned),
 *         TT_ETIMEDOUT (a chunk or the attributes did not come), TT_EBUSY (an
 *         update is already running), TT_ECLOSED.
 */
TT_API tt_future *tt_tb_device_fw_update(tt_tb_device *d, const tt_tb_fw_opts *opts);

/** Title and version of the image in a completed tt_tb_device_fw_update()
 * future (borrowed until it is freed; NULL otherwise). */
TT_API const char *tt_tb_fw_title(const tt_future *f);
TT_API const char *tt_tb_fw_version(const tt_future *f);

/** Report fw_state (and current_fw_title / current_fw_version when given,
 * fw_error when `error` is set) as telemetry. */
TT_API tt_future *tt_tb_device_fw_report(tt_tb_device *d, tt_tb_fw_state state, const char *title,
                                         const char *version, const char *error);

/** "DOWNLOADING" etc. */
TT_API const char *tt_tb_fw_state_name(tt_tb_fw_state s);

/**
 * Checksum of `len` bytes with ThingsBoard's algorithm name ("sha256",
 * "sha384", "sha512", "md5", "crc32", "murmur3_32", "murmur3_128"), as the
 * lower-case hex text ThingsBoard compares, into `hex` (at least 129 bytes).
 * Thread: any. Errors: TT_ENOTSUP (unknown algorithm), TT_EINVAL.
 */
TT_API tt_err tt_tb_checksum(const char *algo, const void *data, size_t len, char *hex, size_t cap);

/* ---- Provisioning ------------------------------------------------------------ */

typedef enum tt_tb_cred_type {
    TT_TB_CRED_NONE = 0,               /* let the server generate an access token */
    TT_TB_CRED_ACCESS_TOKEN,
    TT_TB_CRED_MQTT_BASIC,
    TT_TB_CRED_X509
} tt_tb_cred_type;

typedef struct tt_tb_provision_opts {
    uint32_t size;                     /* TT_OPTS_INIT(tt_tb_provision_opts) */
    const char *host;
    uint16_t port;                     /* 0 = 1883 (8883 with tls) */
    const tt_tls_opts *tls;
    const char *key;                   /* provisionDeviceKey (required) */
    const char *secret;                /* provisionDeviceSecret (required) */
    const char *device_name;           /* optional */
    bool gateway;                      /* provision a gateway device */
    tt_tb_cred_type type;              /* credentials chosen by the device, if any */
    const char *token;                 /* ACCESS_TOKEN */
    const char *client_id, *username, *password; /* MQTT_BASIC */
    const char *cert_pem;              /* X509_CERTIFICATE (sent as "hash") */
    uint32_t timeout_ms;               /* 0 = 10000 */
    const char *login_password;        /* sent with the "provision" login; ThingsBoard
                                          ignores it; NULL = none */
} tt_tb_provision_opts;

/** The credentials a provisioning answer carried (either response shape). */
typedef struct tt_tb_credentials {
    tt_tb_cred_type type;
    const char *token;                 /* ACCESS_TOKEN */
    const char *client_id, *username, *password; /* MQTT_BASIC */
    const char *cert;                  /* X509: the certificate text */
    const char *device_id, *credentials_id; /* when the server sent them */
} tt_tb_credentials;

/**
 * Provision a device: connect as "provision", subscribe /provision/response,
 * publish /provision/request, wait for the answer, disconnect.
 * Completes: once the provisioning connection is closed (nothing of it runs
 *            afterwards). TT_OK: tt_future_get_ptr() is a tt_tb_credentials
 *            (borrowed until the future is freed).
 * Errors: TT_ENOTFOUND (status NOT_FOUND: unknown key or secret; the reason
 *         carries the server's errorMsg), TT_EREFUSED (FAILURE), TT_EPROTO
 *         (an unreadable answer), TT_ETIMEDOUT, connect errors.
 * Thread: continuation on the pool.
 */
TT_API tt_future *tt_tb_provision(tt_runtime *rt, const tt_tb_provision_opts *opts);

/* ---- Gateway ------------------------------------------------------------------- */

/** Create a gateway (a device with the gateway topics). As tt_tb_device_new. */
TT_API tt_err tt_tb_gateway_new(tt_runtime *rt, const tt_tb_opts *opts, tt_tb_gateway **out);

/** Connect and subscribe the device topics plus v1/gateway/attributes,
 * v1/gateway/attributes/response and v1/gateway/rpc. As tt_tb_device_connect. */
TT_API tt_future *tt_tb_gateway_connect(tt_tb_gateway *g);

/** The gateway as a device of its own (borrowed): its own telemetry,
 * attributes, RPC... Freed with the gateway. */
TT_API tt_tb_device *tt_tb_gateway_device(tt_tb_gateway *g);

/** Stop and release, as tt_tb_device_free. */
TT_API void tt_tb_gateway_free(tt_tb_gateway *g);

/** v1/gateway/connect {"device":name,"type":type}; type NULL = "default". */
TT_API tt_future *tt_tb_gateway_connect_device(tt_tb_gateway *g, const char *name, const char *type);

/** v1/gateway/disconnect {"device":name}. */
TT_API tt_future *tt_tb_gateway_disconnect_device(tt_tb_gateway *g, const char *name);

/** v1/gateway/telemetry {name:[entries]}: `data` as in
 * tt_tb_device_send_telemetry (an object is sent as one entry). Split above
 * the payload limit. */
TT_API tt_future *tt_tb_gateway_send_telemetry(tt_tb_gateway *g, const char *name, const json_t *data);

/** v1/gateway/attributes {name:attrs}. */
TT_API tt_future *tt_tb_gateway_send_attributes(tt_tb_gateway *g, const char *name,
                                                const json_t *attrs);

/**
 * v1/gateway/attributes/request {"id","device","client","key"|"keys"}: `keys`
 * is a comma-separated list; one key sends "key", several send "keys".
 * Completes: tt_future_get_ptr() is an object {key: value, ...} built from
 *            either reply shape ("value" for one key, "values" for several).
 * Errors: TT_EINVAL, TT_ETIMEDOUT, TT_ECLOSED.
 */
TT_API tt_future *tt_tb_gateway_request_attributes(tt_tb_gateway *g, const char *name, bool client,
                                                   const char *keys, const tt_call_opts *opts);

/** Shared-attribute update of a sub-device (`value` NULL: deleted). */
typedef void (*tt_tb_gw_attr_fn)(tt_tb_gateway *g, const char *device, const char *key,
                                 const json_t *value, void *arg);

/** Call `fn` for updates of `key` (NULL: all keys) of `device` (NULL: all
 * devices). Local. Errors: TT_EINVAL, TT_ENOMEM. */
TT_API tt_err tt_tb_gateway_subscribe_attribute(tt_tb_gateway *g, const char *device, const char *key,
                                                tt_tb_gw_attr_fn fn, void *arg, uint32_t *id);

/** Drop subscription `id` (0 = all). Errors: TT_ENOTFOUND. */
TT_API tt_err tt_tb_gateway_unsubscribe_attribute(tt_tb_gateway *g, uint32_t id);

/** RPC to a sub-device; answer with tt_tb_gateway_rpc_reply(). */
typedef void (*tt_tb_gw_rpc_fn)(tt_tb_gateway *g, const char *device, int64_t id, const char *method,
                                const json_t *params, void *arg);

/** Set the sub-device RPC handler. The gateway's own replies, which come back
 * on the shared v1/gateway/rpc topic, are recognised and ignored. */
TT_API tt_err tt_tb_gateway_on_rpc(tt_tb_gateway *g, tt_tb_gw_rpc_fn fn, void *arg);

/** v1/gateway/rpc {"device","id","data":result}. Any thread. */
TT_API tt_future *tt_tb_gateway_rpc_reply(tt_tb_gateway *g, const char *device, int64_t id,
                                          const json_t *result);

/** v1/gateway/claim {name:{"secretKey","durationMs"}}. */
TT_API tt_future *tt_tb_gateway_claim(tt_tb_gateway *g, const char *name, const char *secret,
                                      uint32_t duration_ms);

/** The server dropped a sub-device ({"device","reason"} on v1/gateway/disconnect). */
typedef void (*tt_tb_gw_disc_fn)(tt_tb_gateway *g, const char *device, int reason, void *arg);
TT_API tt_err tt_tb_gateway_on_device_disconnect(tt_tb_gateway *g, tt_tb_gw_disc_fn fn, void *arg);

TT_END_DECLS

#endif /* TETHER_THINGSBOARD_H */
