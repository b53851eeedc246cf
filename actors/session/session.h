/* The MQTT session actor: one per client, on one I/O loop. It owns the
 * connection (transport), the protocol state (CONNECT/CONNACK, keepalive,
 * packet ids, the inflight table, QoS 1/2 flows both ways), reconnect with
 * backoff, resubscribe, the offline queue and dispatch of incoming messages to
 * the client's strand. The public API (platforms/mqtt/client.c) turns calls
 * into requests sent to this actor. */
#ifndef TTI_SESSION_H
#define TTI_SESSION_H

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <tether/mqtt.h>

#include "actors/actor.h"
#include "actors/future.h"
#include "actors/runtime.h"
#include "actors/session/trie.h"
#include "actors/timer.h"
#include "codecs/mqtt/mqtt_codec.h"
#include "transport/transport.h"

enum {
    TTI_REQ_CONNECT = 1,
    TTI_REQ_DISCONNECT,
    TTI_REQ_PUBLISH,
    TTI_REQ_SUBSCRIBE,
    TTI_REQ_UNSUBSCRIBE,
    TTI_REQ_PING,
    TTI_REQ_CLOSE,
    TTI_REQ_WINDOW,
    TTI_REQ_FLUSH,
    TTI_REQ_REAUTH,
    TTI_REQ_RESUME_RX,                /* room again under inbound_queue_bytes (no future) */
};

/* A request from the API; lives in its future's extra space (one allocation). */
typedef struct tti_req {
    tti_msg msg;
    tt_future *f;
    struct tti_req *next;             /* session queues */
    struct tti_req *prev;
} tti_req;

/* A publish, encoded on the caller's thread into wire format. */
typedef struct tti_pubreq {
    tti_req r;
    uint32_t len;                     /* bytes in data */
    uint32_t pid_off;                 /* offset of the packet id (QoS > 0) */
    uint16_t pid;
    uint8_t qos;
    uint8_t state;                    /* TTI_PUB_* */
    uint8_t resends;                  /* redeliveries after reconnects */
    uint64_t sseq;                    /* its record in the queue file; 0: none */
    uint8_t data[];
} tti_pubreq;

enum { TTI_PUB_QUEUED = 0, TTI_PUB_SENT, TTI_PUB_RELEASING };

/* tt_client_set_max_inflight(). */
typedef struct tti_winreq {
    tti_req r;
    uint16_t n;
} tti_winreq;

/* tt_client_flush(): waits in ping_head; counts publishes failing meanwhile. */
typedef struct tti_flushreq {
    tti_req r;
    uint32_t failed;
    tt_err first_err;
    char first_why[160];
} tti_flushreq;

/* One subscription entry as the session keeps it. */
typedef struct tti_subent {
    struct tti_subent *next;
    char *filter;
    size_t filter_len;
    tt_qos qos;
    bool no_local, rap;
    uint8_t rh;
    uint32_t sub_id;                  /* MQTT 5 Subscription Identifier; 0 = none */
    tt_msg_fn handler;
    void *arg;
} tti_subent;

/* SUBSCRIBE / UNSUBSCRIBE request: n filters (and options). */
typedef struct tti_subreq {
    tti_req r;
    uint16_t pid;
    bool sent;
    bool internal;                    /* a resubscribe: made again after each reconnect */
    size_t n;
    tti_subent *ents;                 /* n entries, filters point into strbuf */
    uint8_t *codes;                   /* result, n bytes */
    char strbuf[];
} tti_subreq;

/* Incoming message handed to the strand. */
struct tt_msg {
    tti_cb cb;
    atomic_int refs;
    tt_client *c;
    uint8_t qos;
    bool retain, dup;
    bool has_expiry, utf8;
    uint32_t expiry;
    size_t topic_len, payload_len, props_len;
    const char *topic;
    const uint8_t *payload;
    const uint8_t *props;             /* raw v5 property block (copy) */
    tti_mqtt_props pp;                /* decoded, views into `props` */
    size_t nhandlers;
    struct { tt_msg_fn fn; void *arg; } *handlers;
    struct tt_msg *pull_next;
    uint8_t version;
    uint8_t buf[];
};

/* Pull mode's queue (tt_client_poll): made only for pull clients. */
typedef struct tti_pull {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    tt_msg *head, *tail;
    bool closed;
} tti_pull;

/* One outbound topic alias (MQTT 5), in an open-addressing table. */
typedef struct tti_oalias {
    uint32_t hash;
    uint16_t alias;                   /* 0: empty slot */
    uint16_t len;
    char *topic;
} tti_oalias;

/* Options few clients use, in a block made only when one of them is set
 * (tt_client_new); `rare` stays NULL for a plain client. The strings and
 * TLS fields are immutable after creation; the queue-file and alias state
 * belong to the loop. */
typedef struct tti_client_rare {
    char *ws_path;                    /* from the URL; NULL: "/mqtt" */
    char *proxy_host, *proxy_user, *proxy_pass;
    tt_tls_opts *tls_opts;            /* copies of the caller's, when given */
    struct tti_tls_ctx *tls_ctx;      /* shared by every connection of this client */
    struct tti_spool *spool;          /* the queue file (offline_queue_file); NULL: none */
    char **in_alias;                  /* inbound topic aliases (in_alias_max of them) */
    struct tti_oalias *oa_tab;        /* outbound aliases: topic -> alias, open addressing */
    uint32_t oa_cap, oa_used;
    int proxy;                        /* tti_proxy_kind; 0: direct */
    uint16_t proxy_port;
    bool sp_keep;                     /* publishes failing now stay in the queue file */
    /* MQTT 5 enhanced authentication (config, then loop state) */
    char *auth_method;                /* NULL: none */
    tt_auth_fn on_auth;
    void *on_auth_arg;
    uint8_t *auth_connect;            /* this connection's CONNECT with its Authentication
                                         Data (tt_client.connect_pkt has none) */
    uint32_t auth_connect_len;
    tt_future *reauth_f;              /* a tt_client_reauth() under way */
    struct tti_reqtab *rq;            /* tt_client_request(): response_topic was given */
    /* inbound_queue_bytes: the loop counts messages in, the strand (or
     * tt_client_poll) counts them out and posts resume_msg when it frees
     * half the bound while reading is paused. */
    size_t in_max;                    /* config; 0: no bound */
    atomic_size_t in_bytes;
    atomic_bool rx_paused;
    atomic_bool resume_posted;
    tti_msg resume_msg;
} tti_client_rare;

#define TTI_RARE(c, f) ((c)->rare ? (c)->rare->f : 0)

/* tt_client is the session. Fields under "config" are immutable after
 * creation; "loop" fields belong to the loop thread. Ordered to leave no
 * holes: thousands of idle clients pay for every byte. */
struct tt_client {
    tti_actor actor;
    tti_member member;
    /* config */
    char *host;                       /* host, client id and CONNECT share one block */
    char *client_id;
    uint8_t *connect_pkt;
    tti_client_rare *rare;
    size_t offline_max;
    tt_msg_fn on_message;
    void *on_message_arg;
    tt_event_fn on_event;
    void *on_event_arg;
    tti_pull *pl;                     /* pull mode only */
    uint32_t connect_len;
    uint32_t max_queued_ops;
    uint32_t max_packet;
    uint32_t connect_timeout_ms, op_timeout_ms;
    uint32_t backoff_min, backoff_max;
    uint16_t port;
    uint16_t keepalive;
    uint16_t max_inflight;            /* the caller's window (loop: tt_client_set_max_inflight) */
    uint16_t server_recv_max;         /* the broker's Receive Maximum on this connection */
    uint16_t in_alias_max;
    uint8_t version;
    bool tls;
    bool ws;                          /* ws:// or wss:// */
    bool reconnect;
    bool pull;
    bool persistent;
    bool out_alias;                   /* MQTT 5: alias repeated topics to the broker */
    bool packed : 1;                  /* host, client_id and connect_pkt are one block */
    bool has_source : 1;              /* the block ends with a source address (tti_client_source) */
    uint8_t overflow;                 /* tt_overflow */
    /* any thread */
    atomic_bool closing;
    atomic_size_t queued_ops;
    atomic_size_t queued_bytes;       /* publishes not yet written or failed */
    /* loop */
    tti_transport *tr;
    tti_timer timer;                  /* connect deadline, keepalive or retry */
    tt_future *connect_f;
    tt_future *disconnect_f;
    uint64_t up_since_ms;
    tti_pubreq *q_head, *q_tail;      /* not yet sent (offline or window full) */
    size_t q_bytes;
    tti_pubreq *fl_head, *fl_tail;    /* sent, unacknowledged, in send order */
    void ***ids;                      /* packet id -> request: 256 pages of 256, lazily */
    tti_subreq *ctl_head, *ctl_tail;  /* (un)subscribes waiting for a connection */
    tti_req *ping_head;               /* pings waiting for PINGRESP, in order, and flushes
                                         waiting for the publishes to finish */
    uint64_t ping_sent_us;
    uint64_t last_tx_ms, last_rx_ms;
    uint8_t *qos2_rx;                 /* bitmap: inbound QoS 2 ids awaiting PUBREL */
    tti_trie subs;                    /* filter -> tti_subent */
    tt_future *close_f;
    uint32_t attempt;
    uint32_t inflight;
    uint32_t window;
    uint32_t server_max_packet;
    uint16_t next_pid;
    uint16_t oa_max;                  /* the broker's Topic Alias Maximum on this connection */
    bool want_up;
    bool pump_pending;                /* publishes queued this turn */
    bool ping_out;
    bool tx_mark;                     /* bytes written since the last keepalive tick */
    bool sub_ids_ok;                  /* the broker accepts Subscription Identifiers */
    bool disc_sent;                   /* DISCONNECT written: nothing more on this connection */
    uint8_t state;                    /* ST_* (session.c) */
    /* What the broker's CONNACK allows on this connection (MQTT 5; all
     * allowed on 3.1.1): the spec forbids sending past them. */
    uint8_t max_qos : 2;              /* Maximum QoS */
    bool retain_ok : 1;               /* Retain Available */
    bool wildcard_ok : 1;             /* Wildcard Subscription Available */
    bool shared_ok : 1;               /* Shared Subscription Available */
    /* statistics: written by the loop only, read from any thread */
    _Atomic uint64_t st_bytes_out, st_bytes_in, st_pubs_out, st_msgs_in, st_connects, st_aliased;
    /* The strand that runs this client's callbacks, in the same block:
     * futures keep it alive, and it frees the block when its last reference
     * goes, which is after the client's own (c_destroy drops the client's). */
    tti_actor strand;
};

/* The address to connect from (tt_client_opts.source_addr), kept after the
 * client id in the block pack_strings() made; NULL: any. */
static inline const char *tti_client_source(const tt_client *c) {
    return c->has_source ? c->client_id + strlen(c->client_id) + 1 : NULL;
}

/* A received message left the inbound queue: handled, or taken by
 * tt_client_poll (any thread). */
void tti_session_in_done(tt_client *c, const tt_msg *m);

/* Subscribe to `filter` from the first connection on, with a handler of the
 * library's own (tt_client_new, before the actor runs). */
tt_err tti_session_preset_sub(tt_client *c, const char *filter, tt_qos qos, tt_msg_fn fn, void *arg);

/* Open the queue file and queue the publishes it holds (tt_client_new,
 * before the actor runs). On failure nothing is left behind; `why` says why. */
tt_err tti_session_restore(tt_client *c, const char *path, char *why, size_t whylen);

#endif
