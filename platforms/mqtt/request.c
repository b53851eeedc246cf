/* Request/response over MQTT 5 (tt_client_request, tt_client_respond).
 *
 * A client made with tt_client_opts.response_topic holds a table of the
 * requests waiting for an answer, keyed by the correlation id each request
 * carries: 8 random bytes fixed per client, then a 64-bit counter. The
 * response topic is an ordinary subscription of the client (made at
 * creation, so every new session subscribes to it before anything queued is
 * sent); its handler runs on the client's strand, takes the request out of
 * the table and completes its future with the message. The table is shared
 * by callers' threads (insert) and the strand (take), under one mutex: a
 * request is a rarer thing than a publish. Requests whose futures timed out
 * or were cancelled leave the table when it next grows. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "actors/core/alloc.h"
#include "actors/core/log.h"
#include "actors/core/random.h"
#include "actors/future.h"
#include "actors/session/session.h"
#include "platforms/mqtt/request.h"

#define RQ_CORR_LEN 16

typedef struct rq_slot {
    uint64_t id;                      /* 0: never used */
    tt_future *f;                     /* NULL with id != 0: a removed entry */
} rq_slot;

struct tti_reqtab {
    pthread_mutex_t lock;
    rq_slot *slots;
    size_t cap;                       /* a power of two */
    size_t used;                      /* live and removed slots */
    bool closed;
    uint8_t salt[8];
    atomic_uint_fast64_t next_id;
    char *topic;
};

/* What a request's future carries in its extra space. */
typedef struct rq_ent {
    tti_reqtab *t;
    uint64_t id;
} rq_ent;

static size_t rq_home(const tti_reqtab *t, uint64_t id) {
    return (size_t)((id * 0x9E3779B97F4A7C15u) >> 32) & (t->cap - 1);
}

tti_reqtab *tti_reqtab_new(const char *topic) {
    tti_reqtab *t = tti_calloc(1, sizeof *t);
    if (!t) return NULL;
    t->cap = 16;
    t->slots = tti_calloc(t->cap, sizeof *t->slots);
    t->topic = tti_strdup(topic);
    if (!t->slots || !t->topic) {
        tti_free(t->slots);
        tti_free(t->topic);
        tti_free(t);
        return NULL;
    }
    pthread_mutex_init(&t->lock, NULL);
    if (!tti_random_fill(t->salt, sizeof t->salt)) {
        uint64_t x = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)t;
        memcpy(t->salt, &x, sizeof t->salt);
    }
    atomic_init(&t->next_id, 1);
    return t;
}

/* Put the live, pending entries into a table of `cap` slots. Those whose
 * futures completed meanwhile (deadline, cancel) give up their promise. */
static bool rq_rebuild(tti_reqtab *t, size_t cap) {
    rq_slot *old = t->slots, *nw = tti_calloc(cap, sizeof *nw);
    if (!nw) return false;
    size_t oldcap = t->cap;
    t->slots = nw;
    t->cap = cap;
    t->used = 0;
    for (size_t i = 0; i < oldcap; i++) {
        tt_future *f = old[i].f;
        if (!f) continue;
        if (tt_future_done(f)) {
            (void)tt_promise_complete(tti_future_promise(f), TT_ETIMEDOUT, 0, NULL);
            continue;
        }
        size_t j = rq_home(t, old[i].id);
        while (nw[j].id) j = (j + 1) & (cap - 1);
        nw[j] = old[i];
        t->used++;
    }
    tti_free(old);
    return true;
}

static tt_err rq_insert(tti_reqtab *t, uint64_t id, tt_future *f) {
    pthread_mutex_lock(&t->lock);
    if (t->closed) {
        pthread_mutex_unlock(&t->lock);
        return TT_ECLOSED;
    }
    if ((t->used + 1) * 4 > t->cap * 3) {
        size_t live = 0;
        for (size_t i = 0; i < t->cap; i++) live += t->slots[i].f && !tt_future_done(t->slots[i].f);
        size_t cap = t->cap;
        while ((live + 1) * 2 > cap) cap *= 2;
        if (!rq_rebuild(t, cap)) {
            pthread_mutex_unlock(&t->lock);
            return TT_ENOMEM;
        }
    }
    size_t j = rq_home(t, id);
    while (t->slots[j].id) j = (j + 1) & (t->cap - 1);   /* ids are unique: the first free slot */
    t->slots[j].id = id;
    t->slots[j].f = f;
    t->used++;
    pthread_mutex_unlock(&t->lock);
    return TT_OK;
}

/* Take the request with this id out of the table; NULL if it is not there. */
static tt_future *rq_take(tti_reqtab *t, uint64_t id) {
    tt_future *f = NULL;
    pthread_mutex_lock(&t->lock);
    for (size_t j = rq_home(t, id), n = 0; t->slots[j].id && n < t->cap; j = (j + 1) & (t->cap - 1), n++) {
        if (t->slots[j].id == id) {
            f = t->slots[j].f;
            t->slots[j].f = NULL;    /* the id stays: a removed entry keeps probes going */
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return f;
}

void tti_reqtab_close(tti_reqtab *t) {
    if (!t) return;
    pthread_mutex_lock(&t->lock);
    t->closed = true;
    for (size_t i = 0; i < t->cap; i++) {
        tt_future *f = t->slots[i].f;
        t->slots[i].f = NULL;
        if (f) (void)tt_promise_complete(tti_future_promise(f), TT_ECLOSED, 0, "client closed");
    }
    pthread_mutex_unlock(&t->lock);
}

void tti_reqtab_free(tti_reqtab *t) {
    if (!t) return;
    tti_reqtab_close(t);
    pthread_mutex_destroy(&t->lock);
    tti_free(t->slots);
    tti_free(t->topic);
    tti_free(t);
}

static void put_corr(const tti_reqtab *t, uint64_t id, uint8_t out[RQ_CORR_LEN]) {
    memcpy(out, t->salt, 8);
    for (int i = 0; i < 8; i++) out[8 + i] = (uint8_t)(id >> (56 - 8 * i));
}

/* The handler of the response topic (the client's strand). */
void tti_reqtab_on_response(tt_client *c, const tt_msg *m, void *arg) {
    tti_reqtab *t = arg;
    size_t n = 0;
    const uint8_t *corr = tt_msg_correlation(m, &n);
    uint64_t id = 0;
    if (corr && n == RQ_CORR_LEN && !memcmp(corr, t->salt, 8))
        for (int i = 0; i < 8; i++) id = id << 8 | corr[8 + i];
    tt_future *f = id ? rq_take(t, id) : NULL;
    if (!f) {
        TTI_LOG(DEBUG, "client", "%s: a message on the response topic answers no pending request",
                tt_client_id(c));
        return;
    }
    if (!tt_future_done(f)) tt_promise_set_value(tti_future_promise(f), tt_msg_ref(m), (tt_free_fn)tt_msg_unref, 0);
    (void)tt_promise_complete(tti_future_promise(f), TT_OK, 0, NULL);
}

/* The request's PUBLISH finished: if it failed, so does the request. */
static void on_published(tt_future *p, void *arg) {
    tt_future *f = arg;
    tt_err rc = tt_future_result(p);
    if (rc != TT_OK) {
        rq_ent *e = tti_future_extra(f);
        if (rq_take(e->t, e->id) == f) {
            const char *why = NULL;
            int detail = tt_future_detail(p, &why);
            (void)tt_promise_complete(tti_future_promise(f), rc, detail, "%s", why && *why ? why : tt_strerror(rc));
        }
    }
    tti_future_release(f);
    tt_future_free(p);
}

static tt_future *failed_req(tt_client *c, tt_err rc, const char *why) {
    return tti_future_failed(c ? &c->strand : NULL, rc, why);
}

tt_future *tt_client_request(tt_client *c, const tt_pub *req, const tt_call_opts *opts) {
    if (!c) return failed_req(NULL, TT_EINVAL, "no client");
    tti_reqtab *t = TTI_RARE(c, rq);
    if (!t) return failed_req(c, TT_EINVAL, "requests need tt_client_opts.response_topic (MQTT 5)");
    if (!req || req->size < offsetof(tt_pub, retain) + sizeof(bool) || !req->topic)
        return failed_req(c, TT_EINVAL, "no message or topic");
    tt_pub m = TT_OPTS_INIT(tt_pub);
    memcpy(&m, req, req->size < sizeof m ? req->size : sizeof m);
    if (m.response_topic || m.correlation)
        return failed_req(c, TT_EINVAL, "a request's response topic and correlation data are the client's");
    tt_future *f = tti_future_new(&c->strand, sizeof(rq_ent));
    if (!f) return tti_future_enomem();
    rq_ent *e = tti_future_extra(f);
    e->t = t;
    e->id = atomic_fetch_add_explicit(&t->next_id, 1, memory_order_relaxed);
    tti_future_set_deadline(f, c->actor.loop->base, tti_client_deadline(c, opts, 30000));
    tt_err rc = rq_insert(t, e->id, f);
    if (rc != TT_OK) {
        (void)tt_promise_complete(tti_future_promise(f), rc, 0, rc == TT_ECLOSED ? "client closed" : NULL);
        return f;
    }
    uint8_t corr[RQ_CORR_LEN];
    put_corr(t, e->id, corr);
    m.response_topic = t->topic;
    m.correlation = corr;
    m.correlation_len = sizeof corr;
    tt_future *p = tt_client_publish(c, &m, NULL);
    tti_future_retain(f);                 /* for on_published */
    if (tt_future_then(p, on_published, f) != TT_OK) {
        on_published(p, f);               /* out of memory: p is the shared failed future */
    }
    return f;
}

tt_future *tt_client_respond(tt_client *c, const tt_msg *request, const void *payload, size_t len, tt_qos qos) {
    if (!c || !request) return failed_req(c, TT_EINVAL, "no client or request");
    size_t tl = 0, cl = 0;
    const char *rt = tt_msg_response_topic(request, &tl);
    const void *corr = tt_msg_correlation(request, &cl);
    if (!rt || !tl) return failed_req(c, TT_EINVAL, "the message has no response topic");
    char small[256];
    char *topic = tl < sizeof small ? small : tti_malloc(tl + 1);
    if (!topic) return tti_future_enomem();
    memcpy(topic, rt, tl);
    topic[tl] = '\0';
    tt_pub m = TT_OPTS_INIT(tt_pub);
    m.topic = topic;
    m.payload = payload;
    m.payload_len = len;
    m.qos = qos;
    m.correlation = corr;
    m.correlation_len = corr ? cl : 0;
    tt_future *f = tt_client_publish(c, &m, NULL);     /* copies the topic */
    if (topic != small) tti_free(topic);
    return f;
}

const tt_msg *tt_future_get_msg(const tt_future *f) { return tt_future_get_ptr(f); }
