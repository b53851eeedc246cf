/* ThingsBoard adapter internals shared by the device, gateway, firmware,
 * provisioning and rate-limit parts. A tt_tb_device wraps one tt_client; a
 * gateway is a device with `gateway` set (tt_tb_gateway * is the same
 * pointer). Handlers and internal continuations run on the client's strand. */
#ifndef TTI_TB_INTERNAL_H
#define TTI_TB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <tether/thingsboard.h>

#include "actors/future.h"

/* Kinds of requests that wait for an answer. */
enum { TB_REQ_ATTR = 1, TB_REQ_RPC, TB_REQ_GW_ATTR };

typedef struct tb_pending {
    struct tb_pending *next;
    int64_t id;
    int kind;
    tt_promise *p;
    char *key;                        /* gateway single-key request: the key */
} tb_pending;

typedef struct tb_sub {
    struct tb_sub *next;
    uint32_t id;
    char *device;                     /* gateway: NULL = every device */
    char *key;                        /* NULL = every key */
    bool gw;
    void *fn;
    void *arg;
} tb_sub;

/* One rate-limit window: `count` messages per `secs` seconds. */
typedef struct tb_window {
    double cap, rate, tokens;
    double at;                        /* monotonic seconds of the last refill */
} tb_window;

#define TB_MAX_WINDOWS 4
typedef struct tb_bucket {
    tb_window w[TB_MAX_WINDOWS];
    int n;
} tb_bucket;

/* A send waiting for rate-limit tokens. */
typedef struct tb_queued {
    struct tb_queued *next;
    char *topic;
    void *payload;
    size_t len;
    bool telemetry;
    uint32_t points;
    tt_promise *p;
} tb_queued;

typedef struct tb_fw tb_fw;

struct tt_tb_device {
    tt_client *c;
    atomic_int refs;
    atomic_bool connected;
    atomic_bool closing;
    bool gateway;
    tt_qos qos;
    uint32_t req_timeout_ms;
    atomic_size_t max_payload;
    atomic_llong next_id;
    tt_event_fn user_event;
    void *user_event_arg;
    pthread_mutex_t lock;             /* everything below */
    tb_pending *pending;
    size_t npending, sweep_at;
    tb_sub *subs;
    uint32_t next_sub;
    tt_tb_rpc_fn rpc_fn;
    void *rpc_arg;
    tt_tb_gw_rpc_fn gw_rpc_fn;
    void *gw_rpc_arg;
    tt_tb_gw_disc_fn disc_fn;
    void *disc_arg;
    /* rate limits (active once set) */
    atomic_bool limited;
    tb_bucket msgs, tele_msgs, tele_points;
    tb_queued *qhead, **qtail;
    size_t qlen;
    tt_future *tick;                  /* armed timer (a future with a deadline), or NULL */
    /* firmware (strand only) */
    tb_fw *fw;
};

/* References: every internal continuation holds one. */
void tti_tb_ref(tt_tb_device *d);
void tti_tb_unref(tt_tb_device *d);

/* A pending future on the client's strand, failing with TT_ETIMEDOUT after
 * timeout_ms (0: none). */
tt_future *tti_tb_future(tt_tb_device *d, uint32_t timeout_ms);
tt_future *tti_tb_failed(tt_tb_device *d, tt_err rc, const char *reason);

/* Complete with a json value (owned; freed if the future already ended). */
void tti_tb_resolve_json(tt_promise *p, json_t *v);
/* Complete `p` with the result of `f` when it completes (takes f). */
void tti_tb_relay(tt_future *f, tt_promise *p);

/* Publish through the rate limits (if any). Copies topic and payload. */
tt_future *tti_tb_send(tt_tb_device *d, const char *topic, const void *payload, size_t len,
                       bool telemetry, uint32_t points);
/* Encode and send a JSON value. */
tt_future *tti_tb_send_json(tt_tb_device *d, const char *topic, const json_t *v);

/* Split `data` (telemetry: object, entry or array; attrs: object) into
 * payloads of at most `max` bytes, wrapped as {wrap: ...} when wrap is set.
 * On TT_OK *out is a malloc'd array of *n malloc'd strings (points[i]: data
 * points in part i). */
tt_err tti_tb_pack(const json_t *data, bool attrs, const char *wrap, size_t max, char ***out,
                   uint32_t **points, size_t *n);

/* Send telemetry/attributes: pack, then send every part; one future for all. */
tt_future *tti_tb_send_parts(tt_tb_device *d, const char *topic, const json_t *data, bool attrs,
                             const char *wrap);

/* Requests that wait for an answer. */
tt_future *tti_tb_request(tt_tb_device *d, int kind, int64_t id, const char *key,
                          const char *topic, const json_t *body, uint32_t timeout_ms);
tt_future *tti_tb_request_attrs(tt_tb_device *d, const char *client_keys, const char *shared_keys,
                                uint32_t timeout_ms);
/* The pending entry for (kind, id), unlinked; NULL if none. */
tb_pending *tti_tb_take(tt_tb_device *d, int kind, int64_t id);

/* Rate limits (limits.c). */
tt_err tti_tb_parse_windows(const char *spec, tb_bucket *b);
void tti_tb_limits_drain(tt_tb_device *d);
void tti_tb_limits_fail(tt_tb_device *d);
double tti_tb_now(void);

/* Firmware (fw.c), strand only. */
void tti_tb_fw_chunk(tt_tb_device *d, const char *topic, size_t tlen, const void *data, size_t len);
void tti_tb_fw_fail_all(tt_tb_device *d);

/* Checksums (checksum.c). */
uint32_t tti_tb_crc32(const void *data, size_t len);
uint32_t tti_tb_murmur3_32(const void *data, size_t len, uint32_t seed);
void tti_tb_murmur3_128(const void *data, size_t len, uint32_t seed, uint64_t out[2]);

/* Small helpers. */
char *tti_tb_dumps(const json_t *v);
void tti_tb_json_free(void *v);
bool tti_tb_topic_id(const char *topic, size_t tlen, const char *prefix, int64_t *id);

#endif
