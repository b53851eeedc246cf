/* Watson IoT adapter internals shared by the client (client.c) and device
 * management (dm.c). A tt_wiotp wraps one tt_client; handlers and internal
 * continuations run on the client's strand. */
#ifndef TTI_WIOTP_INTERNAL_H
#define TTI_WIOTP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <tether/watson.h>

#include "actors/future.h"

#define WIOTP_TOPIC_MAX 512           /* longer topics are built on the heap */

/* A management request waiting for its answer on iotdm-1/response. */
typedef struct wiotp_pending {
    struct wiotp_pending *next;
    char req_id[40];
    tt_promise *p;
} wiotp_pending;

struct tt_wiotp {
    tt_client *c;
    atomic_int refs;
    atomic_bool connected;
    atomic_bool closing;
    tt_wiotp_role role;
    bool quickstart;
    char *org;                        /* one block: org, type, id (or app id) */
    char *type_id;
    char *device_id;
    tt_wiotp_msg_fn on_message;
    void *on_message_arg;
    tt_event_fn user_event;
    void *user_event_arg;
    /* device management */
    bool managed;
    tt_wiotp_dm_fn on_dm;
    void *on_dm_arg;
    uint32_t req_timeout_ms;
    pthread_mutex_t dm_lock;          /* everything below */
    wiotp_pending *pending;
    size_t npending;
    char *manage_d;                   /* the last manage request's "d" (JSON text), for renewal */
    uint32_t lifetime_s;
    tt_future *renew;                 /* armed renewal timer, or NULL */
};

void tti_wiotp_ref(tt_wiotp *w);
void tti_wiotp_unref(tt_wiotp *w);

/* A random RFC 4122 version 4 UUID, 36 characters and a NUL. */
void tti_wiotp_uuid(char out[37]);

/* Fill m's kind and names (and topic) from `topic` (tl bytes, no NUL
 * needed); `buf` holds 2 * (tl + 1) bytes that m points into. False for a
 * topic that is none of the platform's. */
bool tti_wiotp_parse_topic(const tt_wiotp *w, const char *topic, size_t tl, char *buf,
                           tt_wiotp_msg *m);

/* The handler of the management topics (the client's strand). */
void tti_wiotp_dm_on_msg(tt_client *c, const tt_msg *m, void *arg);
/* The filter those topics are under, for this client (NUL-terminated). */
int tti_wiotp_dm_filter(const tt_wiotp *w, char *buf, size_t cap);
/* Fail every waiting request and stop the renewal (closing). */
void tti_wiotp_dm_close(tt_wiotp *w);

/* Milliseconds per second of manage lifetime, for the renewal timer; tests
 * shrink it to see a renewal without waiting an hour. */
extern atomic_uint tti_wiotp_ms_per_lifetime_s;

#endif
