/* Byte-stream transports for the MQTT session: TCP, with TLS and WebSocket
 * layered inside (session <-> WebSocket framing <-> TLS <-> socket). A transport runs on its session's loop thread
 * and reports to the session through callbacks on that same thread; it never
 * parses MQTT.
 *
 * Reads: every wake-up hands the session all unparsed input as one contiguous
 * span; it parses every complete packet in place and says how much it used.
 * Plain TCP reads into the loop's shared buffer (actors/loop.h), so an idle
 * connection holds no buffer at all. Writes: the session hands packets to
 * tti_transport_write() and calls tti_transport_flush() once per batch, so
 * many packets leave in one system call. */
#ifndef TTI_TRANSPORT_H
#define TTI_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tether/err.h>
#include <tether/mqtt.h>

struct event_base;
struct evdns_base;
struct evbuffer;
typedef struct tti_transport tti_transport;

typedef struct tti_transport_cbs {
    /* The session may write. With TLS, WebSocket or a proxy: TCP connected and
     * every handshake done. Plain TCP calls it on the turn after connect()
     * without waiting to learn the outcome (on loopback and fast links the
     * handshake is over by then); a failed connect then comes as on_error
     * with the connect's errno and reason, like an immediate failure. */
    void (*on_connected)(void *ctx);
    /* Bytes arrived: `data` is everything not consumed yet. Return how many
     * bytes were consumed (whole packets); the rest is kept for the next call.
     * Set *need to the size of the incomplete packet at the end when its
     * header says it (0 otherwise), so a large one is gathered first. `data`
     * is valid during the call only. */
    size_t (*on_read)(void *ctx, const uint8_t *data, size_t len, size_t *need);
    /* Output fell below the low-water mark after being above the high one. */
    void (*on_drained)(void *ctx);
    /* The connection failed or closed; the transport is dead (free it). */
    void (*on_error)(void *ctx, tt_err err, int detail, const char *reason);
} tti_transport_cbs;

struct tti_io_scratch;
struct tti_loop;

typedef struct tti_transport_opts {
    struct tti_io_scratch *io;         /* the loop's shared buffers (required) */
    const char *host;
    uint16_t port;
    const char *source_addr;           /* NULL: any; must outlive the transport */
    struct evdns_base *dns;            /* resolver for host names; NULL: the loop's, */
    struct tti_loop *loop;             /* made on the first name (numeric hosts need none) */
    bool tls;
    const tt_tls_opts *tls_opts;       /* used when tls */
    void *tls_ctx;                     /* shared TLS context (transport/tls.h), when tls */
    size_t high_water;                 /* output bytes above which the session pauses */
    /* MQTT over WebSocket (ws://, and wss:// with tls): binary frames after an
     * HTTP upgrade with subprotocol "mqtt". */
    bool ws;
    const char *ws_path;               /* request path; NULL or "": "/mqtt" */
    const char *ws_host;               /* Host header; NULL: host */
    uint16_t ws_port;                  /* port in the Host header; 0: port */
    /* Tunnel through a proxy (transport/proxy.h): TCP goes to proxy_host,
     * which is asked for host:port; TLS and WebSocket then run inside. */
    int proxy;                         /* tti_proxy_kind; 0: direct */
    const char *proxy_host;
    uint16_t proxy_port;
    const char *proxy_user, *proxy_pass;   /* NULL: no authentication */
} tti_transport_opts;

/* Start connecting. Never NULL on TT_OK; on error nothing is left behind. */
tt_err tti_transport_connect(struct event_base *base, const tti_transport_opts *o,
                             const tti_transport_cbs *cbs, void *ctx, tti_transport **out);

/* Queue outgoing bytes (after on_connected; ignored once failed). They may
 * wait in the loop's shared buffer until tti_transport_flush(), which every
 * batch of writes must end with. */
void tti_transport_write(tti_transport *t, const void *p, size_t n);
/* Push what was written to the connection (TLS: encrypt it). */
void tti_transport_flush(tti_transport *t);
/* Bytes accepted but not yet written to the socket. */
size_t tti_transport_pending(tti_transport *t);
/* True when pending() is above the high-water mark. */
bool tti_transport_congested(tti_transport *t);
/* Stop (or start again) reading the socket: the session's inbound bound.
 * Bytes wait in the kernel and TCP slows the peer; writes go on. */
void tti_transport_pause_read(tti_transport *t, bool paused);
/* Close at once (no more callbacks) and free. */
void tti_transport_free(tti_transport *t);

#endif
