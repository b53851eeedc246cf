/* tether — the MQTT client (3.1.1 and 5.0). */
#ifndef TETHER_MQTT_H
#define TETHER_MQTT_H

#include <tether/common.h>
#include <tether/err.h>
#include <tether/future.h>
#include <tether/runtime.h>

TT_BEGIN_DECLS

/**
 * A client: one MQTT connection (with reconnects) and its session state.
 * It lives on one I/O loop of its runtime; its callbacks run on its own strand
 * of the callback pool, one at a time and in order. Thousands of clients can
 * share one runtime. Every tt_client_* call is safe from any thread.
 */
typedef struct tt_client tt_client;

/** An incoming message, borrowed by handlers for the duration of the call. */
typedef struct tt_msg tt_msg;

typedef enum tt_mqtt_version {
    TT_MQTT_311 = 4,                   /* MQTT 3.1.1 (default) */
    TT_MQTT_5 = 5
} tt_mqtt_version;

typedef enum tt_qos { TT_QOS0 = 0, TT_QOS1 = 1, TT_QOS2 = 2 } tt_qos;

/** An MQTT 5 user property: UTF-8 key and value, NUL-terminated. */
typedef struct tt_user_prop {
    const char *key;
    const char *value;
} tt_user_prop;

/** TLS settings (wolfSSL). Verification of the server's certificate and host
 * name is on unless `insecure` is set. */
typedef struct tt_tls_opts {
    uint32_t size;                     /* TT_OPTS_INIT(tt_tls_opts) */
    const char *ca_file;               /* PEM bundle; NULL with ca_dir NULL = system store */
    const char *ca_dir;                /* directory of hashed PEM certificates */
    const char *cert_file;             /* client certificate (PEM), optional */
    const char *key_file;              /* its private key (PEM) */
    const char *sni;                   /* server name to send and verify; default: the host */
    const char *alpn;                  /* comma-separated protocol list, e.g. "mqtt"; optional */
    bool insecure;                     /* no verification at all: for tests only */
} tt_tls_opts;

/** The last will, published by the broker if the connection dies without a
 * DISCONNECT. Copied by tt_client_new(). */
typedef struct tt_will {
    uint32_t size;                     /* TT_OPTS_INIT(tt_will) */
    const char *topic;
    const void *payload;
    size_t payload_len;
    tt_qos qos;
    bool retain;
    /* MQTT 5 only */
    uint32_t delay_s;                  /* Will Delay Interval */
    uint32_t expiry_s;                 /* Message Expiry Interval; 0 = none */
    const char *content_type;
    const char *response_topic;
    const void *correlation;
    size_t correlation_len;
    bool payload_utf8;                 /* Payload Format Indicator */
    const tt_user_prop *props;
    size_t nprops;
} tt_will;

/** What a client does when its offline queue is full. */
typedef enum tt_overflow {
    TT_OVERFLOW_FAIL = 0,              /* the new publish fails with TT_EAGAIN */
    TT_OVERFLOW_DROP_OLDEST = 1        /* the oldest queued publish fails with TT_EAGAIN */
} tt_overflow;

/** Connection events, delivered in order on the client's strand. */
typedef enum tt_client_event_kind {
    TT_EV_CONNECTED = 1,               /* CONNACK accepted; `session_present` is set */
    TT_EV_DISCONNECTED = 2,            /* the connection is gone; `err` says why */
    TT_EV_RECONNECTING = 3             /* the next attempt starts in `retry_in_ms` */
} tt_client_event_kind;

typedef struct tt_client_event {
    tt_client_event_kind kind;
    tt_err err;                        /* TT_OK for a requested disconnect */
    int detail;                        /* errno, TLS code or MQTT reason code */
    const char *reason;                /* borrowed for the call */
    bool session_present;
    uint32_t retry_in_ms;
    uint32_t attempt;                  /* reconnect attempt number, from 1 */
} tt_client_event;

/** Handler for incoming messages. Runs on the client's strand (a pool
 * thread, or the host loop when embedded), one at a time and in order. `m`
 * is borrowed: keep it with tt_msg_ref(). May call any tether function,
 * including tt_client_free(c). */
typedef void (*tt_msg_fn)(tt_client *c, const tt_msg *m, void *arg);

/** Handler for connection events (same thread rules as tt_msg_fn). */
typedef void (*tt_event_fn)(tt_client *c, const tt_client_event *ev, void *arg);

/** Where an MQTT 5 enhanced authentication exchange stands. */
typedef enum tt_auth_stage {
    TT_AUTH_START = 0,                 /* give the first data: for CONNECT (before every
                                          connection attempt, reconnects too) or for
                                          tt_client_reauth() */
    TT_AUTH_CHALLENGE = 1,             /* the broker's AUTH (continue): give the answer */
    TT_AUTH_DONE = 2                   /* the broker accepted (CONNACK or AUTH success): check
                                          its final data, if the method has any */
} tt_auth_stage;

/** One step of the exchange. The handler reads `data` (borrowed for the
 * call) and, at START and CHALLENGE, may point `reply` at bytes it owns;
 * they are copied before the handler's next call. */
typedef struct tt_auth_step {
    tt_auth_stage stage;
    bool reauth;                       /* part of a re-authentication */
    const char *method;                /* the Authentication Method */
    const void *data;                  /* the broker's Authentication Data; NULL if none */
    size_t len;
    const void *reply;                 /* set by the handler; NULL/0: no data */
    size_t reply_len;                  /* at most 65535 */
} tt_auth_step;

/** Enhanced authentication handler (MQTT 5 AUTH: SCRAM, Kerberos, ...).
 * Runs on the client's I/O loop thread, not the callback pool, because the
 * answer goes out in line: compute and return, never block (a wait there
 * fails with TT_EDEADLK). Anything but TT_OK ends the exchange: the
 * connection is closed and the connect (or reauth) fails with TT_EAUTH. */
typedef tt_err (*tt_auth_fn)(tt_client *c, tt_auth_step *step, void *arg);

typedef struct tt_client_opts {
    uint32_t size;                     /* TT_OPTS_INIT(tt_client_opts) */
    /* Where: "mqtt://host[:port]" (1883), "mqtts://host[:port]" (8883, TLS),
     * "ws://host[:port][/path]" (80, "/mqtt"), "wss://..." (443). A host
     * name with several addresses tries each in turn: on at once after a
     * refusal, after 2 s without an answer (the last address waits for
     * connect_timeout_ms). The error names the last failure and the count. */
    const char *url;
    const char *client_id;             /* NULL or "": generated, "tt-" + 16 hex digits */
    const char *username;
    const void *password;
    size_t password_len;               /* 0 with password set: strlen(password) */
    tt_mqtt_version version;           /* 0 = TT_MQTT_311 */
    uint16_t keepalive_s;              /* 0 = 60; TT_KEEPALIVE_OFF disables */
    bool persistent_session;           /* clean session / clean start off */
    uint32_t session_expiry_s;         /* MQTT 5; with persistent_session, 0 = until the broker's maximum */
    uint16_t receive_maximum;          /* MQTT 5: inbound QoS>0 window we allow; 0 = 65535 */
    uint32_t max_packet_size;          /* largest packet we accept; 0 = 16 MiB */
    uint16_t topic_alias_maximum;      /* MQTT 5: inbound aliases we accept; 0 = none */
    bool outbound_topic_aliases;       /* MQTT 5: send repeated topics as aliases, up to the
                                          broker's Topic Alias Maximum per connection (first
                                          topics first, kept until the connection ends); the
                                          rest go in full. Ignored on 3.1.1 */
    uint16_t max_inflight;             /* outbound QoS>0 window; 0 = 65535 (and the broker's
                                          Receive Maximum, whichever is smaller). MQTT 3.1.1
                                          cannot learn the broker's limit: set it (mosquitto
                                          drops a client past max_inflight_messages, 20 by
                                          default, for QoS 2) */
    const tt_will *will;
    const tt_tls_opts *tls;            /* for mqtts:// and wss://, or to force TLS */
    const tt_user_prop *connect_props; /* MQTT 5 user properties on CONNECT */
    size_t nconnect_props;
    uint32_t connect_timeout_ms;       /* TCP + TLS + CONNACK; 0 = 10000 */
    uint32_t op_timeout_ms;            /* default deadline of every call; 0 = none */
    bool no_reconnect;                 /* reconnect is on unless this is set */
    uint32_t backoff_min_ms;           /* first retry delay; 0 = 250 */
    uint32_t backoff_max_ms;           /* cap; 0 = 30000 (full jitter below the cap) */
    size_t offline_queue_bytes;        /* bound on publishes not yet written to the connection:
                                          held while disconnected, or while the socket is
                                          congested; 0 = 1 MiB. With TT_OVERFLOW_FAIL a call
                                          past it fails at once with TT_EAGAIN */
    tt_overflow overflow;
    size_t max_queued_ops;             /* calls waiting for the loop; 0 = 1,000,000 */
    tt_msg_fn on_message;              /* catch-all for messages no subscription handler takes */
    void *on_message_arg;
    tt_event_fn on_event;
    void *on_event_arg;
    bool pull;                         /* messages go to tt_client_poll() instead of handlers */
    const char *source_addr;           /* local address to bind, e.g. "127.0.0.2" */
    /* Tunnel through a proxy: "socks5://[user[:pass]@]host[:port]" (1080) or
     * "http://[user[:pass]@]host[:port]" (8080, HTTP CONNECT with Basic
     * authorization); percent-escapes allowed in user and pass. The proxy
     * resolves the broker's host name; TLS and WebSocket run inside the
     * tunnel (certificates are checked against the broker's name). A refusal
     * fails the connect: TT_EAUTH (credentials), TT_ECONNREFUSED (the broker
     * refused the proxy), TT_EREFUSED (other refusals), with the reason. */
    const char *proxy;
    /* Keep QoS 1 and 2 publishes in this file from the call until they are
     * finished, so a process that stops or crashes sends them when it starts
     * again with the same file (created 0600 if missing; one client at a
     * time: TT_EBUSY for a second). Records leave the file when acknowledged
     * or failed for good (refused, cancelled, dropped by the overflow policy);
     * those failing because the client closed or the connection is gone stay.
     * Restored publishes are queued at tt_client_new(), before anything new,
     * and sent after connect with new packet ids, so a message that was in
     * flight at the crash may arrive twice (QoS 2 included), never not at
     * all. QoS 0 is never kept. The file is written once per loop turn, before
     * the packets go out, and before any other call (ping, subscribe,
     * disconnect, ...) is handled, so once such a later call's future is done
     * the publishes before it are in the file. It is not synced: it survives
     * the process, not a power loss. If it cannot be written, publishing goes on in memory and
     * the error is logged. NULL: memory only. */
    const char *offline_queue_file;
    /* MQTT 5 enhanced authentication: the method named in CONNECT, and the
     * handler that gives its data and answers the broker's challenges (may
     * be NULL for a method without data). A broker without the method
     * refuses with 0x8C: TT_EAUTH. TT_EINVAL on 3.1.1. */
    const char *auth_method;
    tt_auth_fn on_auth;
    void *on_auth_arg;
    /* MQTT 5: the topic answers to tt_client_request() come back on, e.g.
     * "replies/<client id>" (no wildcards; one per client, since any
     * message there is taken as an answer). The client subscribes to it
     * at QoS 1 from its first connection on. NULL: no requests. Not with
     * `pull` (answers are taken by the client, not polled): TT_EINVAL. */
    const char *response_topic;
    /* Bound on received messages not yet handled (handlers) or taken
     * (tt_client_poll), counted as their topic, payload and properties plus
     * 376 bytes each (on 64-bit). Past it the client stops reading the socket
     * until half is free, so TCP holds the broker back (which then queues or
     * drops by its own limits: mosquitto's max_queued_messages); a read
     * already under way finishes, so the bound can be passed by one read
     * (64 KiB). Keepalive does not take the pause for a dead broker.
     * 0 = no bound. */
    size_t inbound_queue_bytes;
} tt_client_opts;

#define TT_KEEPALIVE_OFF 0xFFFFu

/**
 * Create a client. Nothing is sent until tt_client_connect().
 * Ownership: every string and buffer in opts is copied.
 * Thread: any. Errors: TT_EINVAL (bad URL, options out of range), TT_ENOMEM,
 * TT_ECLOSED (runtime closing), TT_ENOTSUP (a scheme not built in).
 */
TT_API tt_err tt_client_new(tt_runtime *rt, const tt_client_opts *opts, tt_client **out);

/**
 * Connect (DNS, TCP, TLS, CONNECT/CONNACK). With reconnect on, later losses
 * reconnect by themselves (jittered exponential backoff), resubscribe and
 * resend unacknowledged messages; this future covers the first connection.
 * Completes: on CONNACK success; tt_future_get_i64() is 1 if the broker had a
 *            session (session present), else 0.
 * Errors:    TT_ECONNREFUSED (TCP refused), TT_ETLS (handshake or
 *            verification, reason says which), TT_EREFUSED / TT_EAUTH (CONNACK
 *            refused: detail is the 3.1.1 return code or v5 reason code,
 *            reason the broker's text; TT_EAUTH for bad credentials, not
 *            authorized, a bad authentication method, or on_auth refusing),
 *            TT_ETIMEDOUT, TT_ENOTFOUND (DNS),
 *            TT_EBUSY (already connected or connecting), TT_ECLOSED.
 */
TT_API tt_future *tt_client_connect(tt_client *c);

/**
 * Send DISCONNECT (after what is already queued) and close; reconnect stops.
 * Completes: when the socket is closed. Publishes still unacknowledged stay
 * queued for a later tt_client_connect() (their futures stay pending).
 * Errors: TT_ECLOSED.
 */
TT_API tt_future *tt_client_disconnect(tt_client *c);

/**
 * Change the outbound QoS>0 window (tt_client_opts.max_inflight) while the
 * client runs, e.g. to a server's advertised limit. It applies at once to the
 * current connection (never above the broker's Receive Maximum) and to later
 * ones. Lowering it below what is in flight holds new publishes until enough
 * are acknowledged. Completes: when the client's loop has applied it.
 * Errors: TT_EINVAL (0), TT_ECLOSED.
 */
TT_API tt_future *tt_client_set_max_inflight(tt_client *c, uint16_t n);

/** An outgoing message. Copied by tt_client_publish(). */
typedef struct tt_pub {
    uint32_t size;                     /* TT_OPTS_INIT(tt_pub) */
    const char *topic;
    const void *payload;
    size_t payload_len;
    tt_qos qos;
    bool retain;
    /* MQTT 5 only */
    uint32_t expiry_s;                 /* Message Expiry Interval; 0 = none */
    const char *content_type;
    const char *response_topic;
    const void *correlation;
    size_t correlation_len;
    bool payload_utf8;
    const tt_user_prop *props;
    size_t nprops;
} tt_pub;

/**
 * Publish. While disconnected (and reconnect is on) the message waits in the
 * offline queue and is sent on reconnect.
 * Ownership: topic, payload and properties are copied before this returns.
 * Completes: QoS 0 when written to the connection; QoS 1 on PUBACK; QoS 2 on
 *            PUBCOMP. A PUBLISH already written is past its point of no return:
 *            cancel no longer applies, and at QoS>0 it is resent (DUP) after a
 *            reconnect until acknowledged.
 * Errors: TT_EINVAL (bad topic, QoS, or a property on 3.1.1), TT_EAGAIN (offline
 *         queue or call queue full), TT_EREFUSED (v5 PUBACK/PUBREC reason
 *         >= 0x80, in detail), TT_ENOTSUP (the broker's v5 CONNACK allows no
 *         such QoS, detail 0x9B, or no retained messages, 0x9A: checked when
 *         the message is about to be sent, so the connection is kept),
 *         TT_ECLOSED (client freed, or disconnected with reconnect off),
 *         TT_ETIMEDOUT, TT_ECANCELED.
 */
TT_API tt_future *tt_client_publish(tt_client *c, const tt_pub *msg, const tt_call_opts *opts);

/** tt_client_publish() with only the common fields. */
TT_API tt_future *tt_client_pub(tt_client *c, const char *topic, const void *payload, size_t len,
                                tt_qos qos, bool retain);

/** One subscription request. */
typedef struct tt_sub {
    const char *filter;                /* topic filter; "$share/group/filter" for shared */
    tt_qos qos;
    bool no_local;                     /* MQTT 5 */
    bool retain_as_published;          /* MQTT 5 */
    uint8_t retain_handling;           /* MQTT 5: 0 send, 1 if new, 2 never */
    tt_msg_fn handler;                 /* NULL: the catch-all on_message */
    void *arg;
    uint32_t sub_id;                   /* MQTT 5 Subscription Identifier, 1..268435455; 0 = none.
                                          Carried by matching messages (tt_msg_sub_ids). One
                                          value per call: it belongs to the SUBSCRIBE packet */
} tt_sub;

/**
 * Subscribe to one or more filters with one SUBSCRIBE. Handlers are set at
 * once and kept across reconnects, which resubscribe by themselves.
 * Ownership: filters are copied.
 * Completes: on SUBACK; tt_future_get_suback() gives one code per filter
 *            (granted QoS, or >= 0x80 for a refusal).
 * Errors: TT_EINVAL (empty list, bad filter, an MQTT 5 option on 3.1.1,
 *         different sub_id values in one call), TT_ENOTSUP (nothing sent: the
 *         broker's v5 CONNACK said it has no Subscription Identifiers, detail
 *         0xA1, no wildcard subscriptions, 0xA2, or no shared ones, 0x9E;
 *         a resubscribe after reconnect skips such filters, with a warning
 *         in the log, and keeps them for a later broker), TT_EREFUSED (every filter
 *         refused; detail is the first code), TT_ECLOSED, TT_ETIMEDOUT.
 */
TT_API tt_future *tt_client_subscribe(tt_client *c, const tt_sub *subs, size_t n,
                                      const tt_call_opts *opts);

/**
 * Unsubscribe. Handlers are removed at once.
 * Completes: on UNSUBACK. Errors: TT_EINVAL, TT_ECLOSED, TT_ETIMEDOUT.
 */
TT_API tt_future *tt_client_unsubscribe(tt_client *c, const char *const *filters, size_t n,
                                        const tt_call_opts *opts);

/**
 * Send PINGREQ. Completes on PINGRESP; tt_future_get_i64() is the round
 * trip in microseconds. Keepalive pings are automatic: this is for checks.
 * Errors: TT_ECLOSED (not connected), TT_ETIMEDOUT.
 */
TT_API tt_future *tt_client_ping(tt_client *c);

/**
 * Wait for the publishes: completes once none is queued or in flight (each
 * acknowledged, written for QoS 0, or failed), those restored from the queue
 * file included, e.g. before a process exits. Publishes made meanwhile are
 * waited for too. While disconnected it waits for the next connection (bound
 * it with op_timeout_ms or tt_future_wait's timeout); a lost connection does
 * not fail it unless the publishes fail. Thread: any; its continuation runs
 * on the client's strand like every future of the client.
 * Completes: TT_OK if no publish failed while it waited; otherwise with the
 *            first failure's error, the count of failures as detail, and a
 *            reason naming both.
 * Errors: TT_ECLOSED (client closed), TT_ETIMEDOUT (op_timeout_ms).
 */
TT_API tt_future *tt_client_flush(tt_client *c);

/**
 * Re-authenticate on the live connection (MQTT 5 AUTH 0x19) with the
 * client's auth_method: on_auth gives the data (TT_AUTH_START, reauth set)
 * and answers challenges, on the client's loop thread; messages keep
 * flowing meanwhile. Thread: any.
 * Completes: on the broker's AUTH success, once on_auth accepted its data.
 * Errors: TT_EINVAL (no auth_method), TT_ECLOSED (not connected), TT_EBUSY
 *         (one already under way), TT_EAUTH (the broker refused: it closes
 *         the connection, detail its reason code; or on_auth refused),
 *         TT_ECONNRESET (the connection dropped first), TT_ETIMEDOUT.
 */
TT_API tt_future *tt_client_reauth(tt_client *c);

/**
 * Request/response (MQTT 5): publish `req` with the client's response_topic
 * and a correlation id of its own (16 bytes), and complete with the first
 * message that comes back on that topic with the same correlation data.
 * The responder answers with tt_client_respond() or any client that copies
 * both properties. Thread: any.
 * Ownership: as tt_client_publish().
 * Completes: with the answer: tt_future_get_msg().
 * Errors: TT_EINVAL (no response_topic option; req sets response_topic or
 *         correlation), TT_ETIMEDOUT (opts->timeout_ms, else op_timeout_ms,
 *         else 30 s: a late answer is dropped), TT_ECLOSED, and the
 *         publish's own errors (the request was not sent).
 */
TT_API tt_future *tt_client_request(tt_client *c, const tt_pub *req, const tt_call_opts *opts);

/** The answer a completed tt_client_request() future holds, borrowed until
 * the future is freed (keep it with tt_msg_ref()); NULL otherwise. Only for
 * futures of tt_client_request(). */
TT_API const tt_msg *tt_future_get_msg(const tt_future *f);

/**
 * Answer a request: publish `payload` to the response topic of `request`
 * with its correlation data (if any), at `qos`. Usually called in the
 * handler that received it. Thread: any.
 * Errors: TT_EINVAL (the message has no response topic), then as
 *         tt_client_publish().
 */
TT_API tt_future *tt_client_respond(tt_client *c, const tt_msg *request, const void *payload, size_t len,
                                    tt_qos qos);

/** The SUBACK codes of a completed subscribe future (borrowed). */
TT_API tt_err tt_future_get_suback(const tt_future *f, const uint8_t **codes, size_t *n);

/**
 * Pull mode (opts.pull): wait up to `timeout_ms` for the next message and
 * take it; release it with tt_msg_unref(). Runs on the calling thread, which
 * must not be a library thread.
 * Errors: TT_ETIMEDOUT (none arrived), TT_EINVAL (not in pull mode),
 * TT_EDEADLK (library thread), TT_ECLOSED.
 */
TT_API tt_err tt_client_poll(tt_client *c, int32_t timeout_ms, tt_msg **out);

/**
 * Stop the client: pending calls fail with TT_ECLOSED, the connection is
 * closed (without DISCONNECT, so the will is sent), and no callback of this
 * client starts after the returned future completes.
 */
TT_API tt_future *tt_client_close(tt_client *c);

/** Close (if not yet) and release the handle. Never blocks; legal inside
 * the client's own callbacks. */
TT_API void tt_client_free(tt_client *c);

/** Counters of one client since it was created. Each field is read on its
 * own (relaxed), so fields may be a moment apart from each other. */
typedef struct tt_client_stats {
    uint64_t bytes_out;                /* MQTT bytes written to connections */
    uint64_t bytes_in;                 /* MQTT bytes read */
    uint64_t publishes_out;            /* PUBLISH packets written, resends included */
    uint64_t messages_in;              /* PUBLISH packets received, duplicates included */
    uint64_t connects;                 /* accepted CONNACKs: 1 + reconnects */
    uint64_t aliased_out;              /* PUBLISH sent as a topic alias without the topic */
    size_t queued_bytes;               /* publishes accepted and not yet written */
} tt_client_stats;

/** Fill `out`. Any thread; never blocks. */
TT_API void tt_client_stats_get(const tt_client *c, tt_client_stats *out);

/** The client id in use (generated if none was given). Borrowed. */
TT_API const char *tt_client_id(const tt_client *c);

/* ---- Incoming messages (borrowed in handlers; valid until tt_msg_unref) -- */
TT_API const char *tt_msg_topic(const tt_msg *m, size_t *len);
TT_API const void *tt_msg_payload(const tt_msg *m, size_t *len);
TT_API tt_qos tt_msg_qos(const tt_msg *m);
TT_API bool tt_msg_is_retained(const tt_msg *m);
TT_API bool tt_msg_is_dup(const tt_msg *m);
/* MQTT 5 properties; NULL / 0 / false when absent. */
TT_API const char *tt_msg_content_type(const tt_msg *m, size_t *len);
TT_API const char *tt_msg_response_topic(const tt_msg *m, size_t *len);
TT_API const void *tt_msg_correlation(const tt_msg *m, size_t *len);
TT_API bool tt_msg_expiry(const tt_msg *m, uint32_t *seconds);
TT_API bool tt_msg_payload_utf8(const tt_msg *m);
TT_API size_t tt_msg_user_prop_count(const tt_msg *m);
/** The i-th user property (not NUL-terminated views). False past the end. */
TT_API bool tt_msg_user_prop(const tt_msg *m, size_t i, const char **key, size_t *klen,
                             const char **value, size_t *vlen);
/** Subscription identifiers (MQTT 5) carried by the message. */
TT_API size_t tt_msg_sub_ids(const tt_msg *m, uint32_t *ids, size_t max);
/** Keep `m` past the handler. */
TT_API tt_msg *tt_msg_ref(const tt_msg *m);
TT_API void tt_msg_unref(tt_msg *m);

TT_END_DECLS

#endif /* TETHER_MQTT_H */
