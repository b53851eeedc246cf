/* tether — IBM Watson IoT Platform: device, gateway and application clients.
 *
 * A tt_wiotp is one Watson IoT identity on one MQTT 3.1.1 connection (a
 * tt_client underneath): a device ("d:org:type:id") publishes events and
 * receives commands; a gateway ("g:org:type:id") does the same for itself and
 * for devices behind it, and gets notifications; an application
 * ("a:org:app", or "A:org:app[:instance]" for a shared subscription) watches
 * events, commands and status of any device and sends commands. Payloads are
 * coded by their format, the last topic level, through tether's codec
 * registry (include/tether/codec.h): "json", "json-iotf", "raw",
 * "text"/"utf8", "msgpack" and any codec the user registers.
 *
 * Feature map (wiotp-sdk / ibmiotf call -> tether call):
 *   DeviceClient / GatewayClient / ApplicationClient (config)
 *                                   -> tt_wiotp_new (opts.role)
 *   parseConfigFile (YAML) / parseEnvVars / ParseConfigFile (INI)
 *                                   -> tt_wiotp_config_load_yaml, tt_wiotp_config_load_env,
 *                                      tt_wiotp_config_load_ini (then tt_wiotp_config_opts)
 *   connect / disconnect / isConnected -> tt_wiotp_connect, tt_wiotp_disconnect,
 *                                      tt_wiotp_connected
 *   setMessageCodec / getMessageCodec, setMessageEncoderModule / getMessageEncoderModule
 *                                   -> tt_codec_register (by format name), tt_codec_find
 *   DeviceClient.publishEvent / GatewayClient.publishEvent
 *                                   -> tt_wiotp_publish_event (type/id NULL = self)
 *   GatewayClient.publishDeviceEvent / ApplicationClient.publishEvent
 *                                   -> tt_wiotp_publish_event (type_id, device_id)
 *   ApplicationClient.publishCommand -> tt_wiotp_publish_command
 *   onPublish callback              -> the future of each publish (tt_future_then)
 *   commandCallback / deviceCommandCallback / deviceEventCallback /
 *   deviceStatusCallback / appStatusCallback / notificationCallback /
 *   deviceStateCallback / thingStateCallback / errorTopicCallback
 *                                   -> tt_wiotp_opts.on_message, tt_wiotp_msg.kind
 *   subscribeToCommands / subscribeToDeviceCommands / subscribeToNotifications
 *   (gateway), subscribeToDeviceEvents / Status / Commands / State,
 *   subscribeToThingState / ErrorTopic / ThingErrors (application)
 *                                   -> tt_wiotp_subscribe (tt_wiotp_filter), restored on
 *                                      every reconnect (gateways included)
 *   subscriptionCallback(mid, qos)  -> the future of tt_wiotp_subscribe (granted QoS)
 *   setKeepAliveInterval / getKeepAliveInterval -> tt_wiotp_opts.keepalive_s
 *   Quickstart (org "quickstart")   -> tt_wiotp_opts.org = "quickstart": port 1883, no
 *                                      credentials, events only
 *   ManagedDeviceClient / ManagedGatewayClient (for itself)
 *                                   -> tt_wiotp_opts.managed
 *   manage / unmanage / setLocation / setErrorCode / clearErrorCodes / addLog /
 *   clearLog / notifyFieldChange / setProperty / setState / setUpdateStatus
 *                                   -> tt_wiotp_manage, tt_wiotp_unmanage,
 *                                      tt_wiotp_set_location, tt_wiotp_add_error_code,
 *                                      tt_wiotp_clear_error_codes, tt_wiotp_add_log,
 *                                      tt_wiotp_clear_log, tt_wiotp_notify_field
 *   respondDeviceAction, deviceActionCallback, firmwereActionCallback,
 *   dmeActionCallback               -> tt_wiotp_opts.on_dm, tt_wiotp_dm_respond
 *
 * MQTT: Watson IoT speaks 3.1.1. Keepalive 60 s; the session is clean unless
 * keep_session is set (the SDK's cleanStart: true, or "clean-session=false").
 * The platform drops a client that sends more than 131,072 payload bytes;
 * tt_wiotp_publish_* refuse such a payload with TT_EINVAL instead.
 *
 * Threads: on_message runs on the client's strand (a callback-pool thread,
 * or the host loop when the runtime is embedded), one message at a time in
 * arrival order; continuations of the futures returned here run there too.
 * Every call is safe from any thread; handlers may call any tether function
 * except blocking waits, tt_wiotp_free() included.
 */
#ifndef TETHER_WATSON_H
#define TETHER_WATSON_H

#include <jansson.h>
#include <tether/common.h>
#include <tether/err.h>
#include <tether/future.h>
#include <tether/mqtt.h>
#include <tether/runtime.h>

TT_BEGIN_DECLS

typedef struct tt_wiotp tt_wiotp;

/** Largest payload the platform accepts (larger ones cost the connection). */
#define TT_WIOTP_MAX_PAYLOAD 131072u

typedef enum tt_wiotp_role {
    TT_WIOTP_DEVICE = 1,               /* d:org:type:id */
    TT_WIOTP_GATEWAY,                  /* g:org:type:id */
    TT_WIOTP_APP                       /* a:org:app, A:org:app[:instance] */
} tt_wiotp_role;

/** What a message delivered to on_message is. */
typedef enum tt_wiotp_kind {
    TT_WIOTP_COMMAND = 1,              /* a command: iot-2/cmd/C/fmt/F (device) or
                                          iot-2/type/T/id/D/cmd/C/fmt/F */
    TT_WIOTP_EVENT,                    /* an event: iot-2/type/T/id/D/evt/E/fmt/F */
    TT_WIOTP_DEVICE_STATUS,            /* iot-2/type/T/id/D/mon (JSON) */
    TT_WIOTP_APP_STATUS,               /* iot-2/app/A/mon (JSON) */
    TT_WIOTP_NOTIFICATION,             /* iot-2/type/T/id/D/notify (gateway, JSON) */
    TT_WIOTP_DEVICE_STATE,             /* iot-2/type/T/id/D/intf/I/evt/state */
    TT_WIOTP_THING_STATE,              /* iot-2/thing/type/T/id/D/intf/I/evt/state */
    TT_WIOTP_DEVICE_ERROR,             /* iot-2/type/T/id/D/err/data */
    TT_WIOTP_THING_ERROR               /* iot-2/thing/type/T/id/D/err/data */
} tt_wiotp_kind;

/** A message, parsed from its topic and decoded by its format. Every pointer
 * is borrowed for the handler call. */
typedef struct tt_wiotp_msg {
    tt_wiotp_kind kind;
    const char *type_id;               /* device (or thing) type; for a device's own
                                          commands, its own type */
    const char *device_id;             /* device or thing id; app status: the app id */
    const char *id;                    /* event id, command id or logical interface id;
                                          "" for status, notifications and errors */
    const char *format;                /* "json", ...; "json" for status/notify/state/error */
    const void *payload;               /* the bytes as received */
    size_t len;
    const json_t *data;                /* decoded by the format's codec; NULL if the format
                                          has no codec or the payload did not decode */
    tt_err decode_err;                 /* TT_OK, TT_ENOTFOUND (no codec for the format),
                                          or the codec's error */
    int64_t ts_ms;                     /* "json-iotf": the envelope's "ts"; else receipt time */
    bool retained;
    const char *topic;
} tt_wiotp_msg;

typedef void (*tt_wiotp_msg_fn)(tt_wiotp *w, const tt_wiotp_msg *m, void *arg);

/** What the platform asks of a managed device (iotdm-1/...). */
typedef enum tt_wiotp_dm_kind {
    TT_WIOTP_DM_REBOOT = 1,            /* mgmt/initiate/device/reboot */
    TT_WIOTP_DM_FACTORY_RESET,         /* mgmt/initiate/device/factory_reset */
    TT_WIOTP_DM_FW_DOWNLOAD,           /* mgmt/initiate/firmware/download */
    TT_WIOTP_DM_FW_UPDATE,             /* mgmt/initiate/firmware/update */
    TT_WIOTP_DM_FIELD_UPDATE,          /* device/update: new values of device fields
                                          (answered 204 before the handler runs) */
    TT_WIOTP_DM_CUSTOM                 /* mgmt/custom/<bundle>/<action> */
} tt_wiotp_dm_kind;

/** A management request. Pointers are borrowed for the handler call. */
typedef struct tt_wiotp_dm_request {
    tt_wiotp_dm_kind kind;
    const char *req_id;                /* answer with tt_wiotp_dm_respond(w, req_id, ...) */
    const char *action;                /* CUSTOM: "<bundle>/<action>"; else "" */
    const json_t *data;                /* the request's "d" member, or NULL */
    const char *topic;                 /* after "iotdm-1/" (a gateway: after
                                          "iotdm-1/type/T/id/D/"), e.g. "mgmt/initiate/device/reboot" */
} tt_wiotp_dm_request;

/** Management request handler: answer now or later, from any thread, with
 * tt_wiotp_dm_respond() (202 accepted, 400, 500, 501...). */
typedef void (*tt_wiotp_dm_fn)(tt_wiotp *w, const tt_wiotp_dm_request *r, void *arg);

typedef enum tt_wiotp_tls {
    TT_WIOTP_TLS_AUTO = 0,             /* by port: 8883 and 443 TLS; 1883 and 80 plain */
    TT_WIOTP_TLS_ON,
    TT_WIOTP_TLS_OFF
} tt_wiotp_tls;

typedef struct tt_wiotp_opts {
    uint32_t size;                     /* TT_OPTS_INIT(tt_wiotp_opts) */
    tt_wiotp_role role;                /* required */
    const char *org;                   /* 6-character org id; "quickstart" for Quickstart;
                                          applications: NULL = from the API key */
    const char *type_id;               /* device and gateway: required */
    const char *device_id;             /* device and gateway: required */
    const char *app_id;                /* application: NULL = a random UUID */
    const char *instance_id;           /* application: shared subscription, client id
                                          "A:org:app:instance" */
    bool shared;                       /* application without instance_id: "A:org:app" */
    const char *api_key;               /* application: "a-<org>-<x>" (the MQTT user name) */
    const char *token;                 /* auth token (password); device and gateway user
                                          name is "use-token-auth" */
    const char *domain;                /* NULL = "internetofthings.ibmcloud.com" */
    const char *host;                  /* NULL = "<org>.messaging.<domain>"; set it for a
                                          private or emulated platform (any port then) */
    uint16_t port;                     /* 0 = 8883 (1883 for Quickstart); without `host`
                                          only 8883, 443, 1883 and 80 (else TT_EINVAL) */
    bool websockets;                   /* MQTT over WebSocket (ws:// or wss://, path /mqtt) */
    tt_wiotp_tls tls;                  /* Quickstart is always plain */
    const char *ca_file;               /* PEM CA bundle; NULL or "_os_" = the system store */
    const tt_tls_opts *tls_opts;       /* further TLS settings (client certificate, ...);
                                          its ca_file is replaced by ca_file when set */
    bool keep_session;                 /* persistent session (SDK: cleanStart true) */
    uint16_t keepalive_s;              /* 0 = 60; TT_KEEPALIVE_OFF disables (a config
                                          file's keepAlive: 0) */
    tt_wiotp_msg_fn on_message;        /* every event, command, status... */
    void *on_message_arg;
    /* Device management (devices and gateways; ignored in Quickstart): subscribe to
     * the platform's management topics at connect, answer its requests
     * (observe, cancel and field updates at once; the rest through on_dm,
     * or 501 without one) and allow tt_wiotp_manage() and the calls after it. */
    bool managed;
    tt_wiotp_dm_fn on_dm;
    void *on_dm_arg;
    uint32_t request_timeout_ms;       /* management requests; 0 = 10000 */
    /* Further MQTT settings (reconnect backoff, offline queue, inflight
     * window, events...). Its url, client_id, username, password, tls,
     * keepalive and version are replaced by the fields above. May be NULL. */
    const tt_client_opts *mqtt;
} tt_wiotp_opts;

/**
 * Create a client on `rt`. Nothing is sent until tt_wiotp_connect().
 * Ownership: every string is copied. Thread: any.
 * Errors: TT_EINVAL (missing org/type/id, a device or gateway without
 * token, an app without API key (or with a key but no token) outside
 * Quickstart, a key not of the form "a-<org>-..." or of another org than
 * opts->org, an id holding '/', '+', '#' or ':', an unsupported port, a
 * Quickstart gateway, a managed application, pull mode in opts->mqtt),
 * TT_ENOMEM, TT_ECLOSED.
 */
TT_API tt_err tt_wiotp_new(tt_runtime *rt, const tt_wiotp_opts *opts, tt_wiotp **out);

/**
 * Connect. A device (outside Quickstart) subscribes to its commands,
 * iot-2/cmd/+/fmt/+ at QoS 1, before the future completes; every
 * subscription made with tt_wiotp_subscribe() is restored on each reconnect.
 * Completes: once connected and the automatic subscription acknowledged.
 * Errors: those of tt_client_connect: TT_EAUTH (CONNACK 4 "bad user name or
 * password", 5 "not authorized"; detail = the code), TT_EREFUSED (1-3),
 * TT_ETIMEDOUT, TT_ECONNREFUSED, TLS errors.
 */
TT_API tt_future *tt_wiotp_connect(tt_wiotp *w);

/** Disconnect cleanly. Completes when the socket is closed. */
TT_API tt_future *tt_wiotp_disconnect(tt_wiotp *w);

/** True between a successful connect and a loss of the connection. */
TT_API bool tt_wiotp_connected(const tt_wiotp *w);

/** The MQTT client id in use ("d:org:type:id", ...). Borrowed. */
TT_API const char *tt_wiotp_client_id(const tt_wiotp *w);

/** The MQTT client underneath (borrowed), for raw topics and events. */
TT_API tt_client *tt_wiotp_client(tt_wiotp *w);

/** Stop and release. Never blocks; legal inside on_message. */
TT_API void tt_wiotp_free(tt_wiotp *w);

/**
 * Publish event `event_id` with `data` encoded by the codec named `format`.
 * Device: iot-2/evt/E/fmt/F (type_id and device_id must be NULL). Gateway:
 * for itself when both are NULL, else for the device behind it. Application:
 * on behalf of a device (both required).
 * Ownership: `data` is encoded before the call returns.
 * Completes: as tt_client_publish (acknowledged at QoS 1/2, written at QoS 0).
 * Errors: TT_ENOTFOUND (no codec named `format`: the SDK's
 * MissingMessageEncoderException), the codec's TT_EINVAL, TT_EINVAL (a
 * payload over TT_WIOTP_MAX_PAYLOAD; ids missing or holding '/', '+', '#'),
 * TT_ENOTSUP (a Quickstart application), publish errors.
 */
TT_API tt_future *tt_wiotp_publish_event(tt_wiotp *w, const char *type_id, const char *device_id,
                                         const char *event_id, const char *format,
                                         const json_t *data, tt_qos qos);

/** As tt_wiotp_publish_event(), with the payload given as bytes (sent as
 * they are; `format` is only the topic level). */
TT_API tt_future *tt_wiotp_publish_event_raw(tt_wiotp *w, const char *type_id,
                                             const char *device_id, const char *event_id,
                                             const char *format, const void *payload,
                                             size_t len, tt_qos qos);

/**
 * Application: send command `command_id` to device type_id/device_id on
 * iot-2/type/T/id/D/cmd/C/fmt/F; `data` NULL sends an empty payload.
 * Errors: as tt_wiotp_publish_event, TT_ENOTSUP (not an application, or
 * Quickstart).
 */
TT_API tt_future *tt_wiotp_publish_command(tt_wiotp *w, const char *type_id, const char *device_id,
                                           const char *command_id, const char *format,
                                           const json_t *data, tt_qos qos);

/** As tt_wiotp_publish_command(), with the payload given as bytes. */
TT_API tt_future *tt_wiotp_publish_command_raw(tt_wiotp *w, const char *type_id,
                                               const char *device_id, const char *command_id,
                                               const char *format, const void *payload,
                                               size_t len, tt_qos qos);

/** What to subscribe to. NULL fields mean "+" (any), except where noted. */
typedef struct tt_wiotp_filter {
    uint32_t size;                     /* TT_OPTS_INIT(tt_wiotp_filter) */
    tt_wiotp_kind kind;                /* COMMAND, EVENT, DEVICE_STATUS, APP_STATUS,
                                          NOTIFICATION, DEVICE_STATE, THING_STATE,
                                          DEVICE_ERROR, THING_ERROR */
    const char *type_id;               /* gateway COMMAND/NOTIFICATION: NULL = itself */
    const char *device_id;             /* app status: the app id */
    const char *id;                    /* event, command or logical interface id */
    const char *format;                /* gateway COMMAND: NULL = "json" (the SDK's default) */
    tt_qos qos;                        /* applications: as given (SDK default 0); gateway
                                          commands are always QoS 1, notifications QoS 0 */
} tt_wiotp_filter;

/**
 * Subscribe; matching messages go to on_message. Kept and restored on
 * every reconnect.
 * Allowed: gateway COMMAND (its own, or a device's) and NOTIFICATION (its
 * own); application anything but NOTIFICATION. Devices are subscribed to
 * their commands already. Quickstart applications: EVENT and DEVICE_STATUS
 * with an explicit device_id.
 * Completes: when acknowledged; tt_future_get_i64() is the granted QoS.
 * Errors: TT_ENOTSUP (not allowed for this role), TT_EINVAL (an id holding
 * '/', '+' or '#'), TT_EREFUSED (the platform refused it), subscribe errors.
 */
TT_API tt_future *tt_wiotp_subscribe(tt_wiotp *w, const tt_wiotp_filter *filter);

/** Undo a tt_wiotp_subscribe() with the same filter. */
TT_API tt_future *tt_wiotp_unsubscribe(tt_wiotp *w, const tt_wiotp_filter *filter);

/**
 * The topic filter a tt_wiotp_filter stands for, for this client, into
 * buf (NUL-terminated). Returns its length, or -1 (TT_EINVAL cases above,
 * or cap too small).
 */
TT_API int tt_wiotp_filter_topic(const tt_wiotp *w, const tt_wiotp_filter *filter, char *buf,
                                 size_t cap);

/* ---- Device management (opts.managed) ------------------------------------- */

/** What a managed device says of itself (every field optional). */
typedef struct tt_wiotp_device_info {
    const char *serial_number, *manufacturer, *model, *device_class, *description,
        *fw_version, *hw_version, *descriptive_location;
} tt_wiotp_device_info;

typedef struct tt_wiotp_manage_opts {
    uint32_t size;                     /* TT_OPTS_INIT(tt_wiotp_manage_opts) */
    uint32_t lifetime_s;               /* below 3600 = 0, never expires (as the SDK);
                                          otherwise renewed 120 s before it runs out */
    bool device_actions;               /* supports reboot and factory reset */
    bool firmware_actions;             /* supports firmware download and update */
    const char *const *bundles;        /* device management extension bundle ids */
    size_t nbundles;
    const tt_wiotp_device_info *info;  /* may be NULL */
    const json_t *metadata;            /* any JSON object; may be NULL */
} tt_wiotp_manage_opts;

/**
 * Become a managed device: iotdevice-1/mgmt/manage {"d":{lifetime, supports,
 * deviceInfo, metadata},"reqId"} (a gateway: the templated
 * iotdevice-1/type/T/id/D/... topics, for itself). Every management call
 * completes when the platform answers on iotdm-1/response with the same
 * reqId. Ownership: everything is encoded before the call returns.
 * Completes: answer rc 200; tt_future_get_i64() is the rc.
 * Errors: TT_EREFUSED (another rc, in detail), TT_ETIMEDOUT (no answer in
 * opts.request_timeout_ms), TT_ENOTSUP (not opts.managed), publish errors.
 */
TT_API tt_future *tt_wiotp_manage(tt_wiotp *w, const tt_wiotp_manage_opts *o);

/** Stop being managed (iotdevice-1/mgmt/unmanage); stops the renewal. As above. */
TT_API tt_future *tt_wiotp_unmanage(tt_wiotp *w);

/** iotdevice-1/device/update/location; elevation and accuracy may be NULL. As above. */
TT_API tt_future *tt_wiotp_set_location(tt_wiotp *w, double longitude, double latitude,
                                        const double *elevation, const double *accuracy);

/** iotdevice-1/add/diag/errorCodes {"errorCode":code}. As above. */
TT_API tt_future *tt_wiotp_add_error_code(tt_wiotp *w, int code);

/** iotdevice-1/clear/diag/errorCodes. As above. */
TT_API tt_future *tt_wiotp_clear_error_codes(tt_wiotp *w);

/** iotdevice-1/add/diag/log {"message","timestamp","data","severity"}
 * (severity 0 info, 1 warning, 2 error; data may be NULL). As above. */
TT_API tt_future *tt_wiotp_add_log(tt_wiotp *w, const char *message, const char *data,
                                   int severity);

/** iotdevice-1/clear/diag/log. As above. */
TT_API tt_future *tt_wiotp_clear_log(tt_wiotp *w);

/**
 * iotdevice-1/notify: a device field changed ("mgmt.firmware", a
 * "deviceInfo.*" or "metadata.*" field...), {"d":{"field","value"}}.
 * As above.
 */
TT_API tt_future *tt_wiotp_notify_field(tt_wiotp *w, const char *field, const json_t *value);

/**
 * Answer management request `req_id` on iotdevice-1/response:
 * {"rc":rc,"message":message,"reqId":req_id} (message may be NULL).
 * Thread: any. Completes as tt_client_publish.
 */
TT_API tt_future *tt_wiotp_dm_respond(tt_wiotp *w, const char *req_id, int rc,
                                      const char *message);

/* ---- Configuration files and environment ---------------------------------- */

/** Options read from a file or the environment; owns every string that
 * tt_wiotp_config_opts() points at. */
typedef struct tt_wiotp_config tt_wiotp_config;

/**
 * Read a wiotp-sdk YAML file: identity.{orgId,typeId,deviceId,appId},
 * auth.{token,key}, options.{domain,logLevel}, options.mqtt.{port,transport,
 * cleanStart,sessionExpiry,keepAlive,caFile,instanceId}, options.http.verify.
 * The role decides which keys are required (as the SDK: device and gateway
 * need orgId, typeId, deviceId and token; applications key and token).
 * Errors: TT_ENOTFOUND (no such file), TT_EINVAL (a missing required key, a
 * value of the wrong kind; `why` (may be NULL) gets a message naming the key
 * and line), TT_ENOMEM.
 */
TT_API tt_err tt_wiotp_config_load_yaml(const char *path, tt_wiotp_role role,
                                        tt_wiotp_config **out, char *why, size_t why_cap);

/**
 * Read the WIOTP_* environment variables (WIOTP_IDENTITY_ORGID, ...TYPEID,
 * ...DEVICEID, ...APPID, WIOTP_AUTH_TOKEN, WIOTP_AUTH_KEY or WIOTP_API_KEY
 * and WIOTP_API_TOKEN, WIOTP_OPTIONS_DOMAIN, ..._LOGLEVEL, ..._MQTT_PORT,
 * ..._MQTT_TRANSPORT, ..._MQTT_CAFILE, ..._MQTT_CLEANSTART (device default
 * false, application default true), ..._MQTT_SESSIONEXPIRY,
 * ..._MQTT_KEEPALIVE, ..._MQTT_INSTANCEID, WIOTP_OPTIONS_HTTP_VERIFY).
 * Errors: as tt_wiotp_config_load_yaml.
 */
TT_API tt_err tt_wiotp_config_load_env(tt_wiotp_role role, tt_wiotp_config **out, char *why,
                                       size_t why_cap);

/**
 * Read a legacy ibmiotf INI file: section [device] (devices and gateways:
 * org, type, id, auth-method = token, auth-token, clean-session, domain,
 * port) or [application] (org, id, auth-key, auth-token, type =
 * standalone|shared, clean-session, domain, port).
 * Errors: as tt_wiotp_config_load_yaml (auth-method other than "token":
 * TT_EINVAL naming it).
 */
TT_API tt_err tt_wiotp_config_load_ini(const char *path, tt_wiotp_role role,
                                       tt_wiotp_config **out, char *why, size_t why_cap);

/** The options read (borrowed; valid until tt_wiotp_config_free). Fill in
 * on_message, mqtt, host... in a copy before tt_wiotp_new(). */
TT_API const tt_wiotp_opts *tt_wiotp_config_opts(const tt_wiotp_config *cfg);

/** options.logLevel as given ("error", "warning", "info", "debug"; default
 * "info"), and options.http.verify (default true). */
TT_API const char *tt_wiotp_config_log_level(const tt_wiotp_config *cfg);
TT_API bool tt_wiotp_config_http_verify(const tt_wiotp_config *cfg);

TT_API void tt_wiotp_config_free(tt_wiotp_config *cfg);

TT_END_DECLS

#endif /* TETHER_WATSON_H */
