/* The MQTT session actor: see session.h. Everything here runs on the
 * client's loop thread unless a comment says otherwise. */
#include "actors/session/session.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "actors/core/alloc.h"
#include "actors/core/log.h"
#include "actors/pool.h"
#include "actors/session/spool.h"
#include "codecs/mqtt/mqtt_codec.h"
#include "codecs/mqtt/mqtt_internal.h"

enum { ST_IDLE = 0, ST_CONNECTING, ST_WAIT_CONNACK, ST_UP, ST_BACKOFF, ST_DEAD };

void tti_session_dispatch(tt_client *c, tti_msg *m);
void tti_session_drop(tt_client *c, tti_msg *m);
void tti_session_stopped(tt_client *c);

static void lost(tt_client *c, tt_err err, int detail, const char *reason);
static void pump(tt_client *c);

static uint64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
static uint64_t mono_ms(void) { return mono_us() / 1000u; }

/* ---- Packet ids: 256 lazily allocated pages of 256 slots ------------------
 *
 * A page's slot 256 counts its used slots; a page that empties is freed, so
 * a client holds pages only for the ids in flight (a steady window of W ids
 * spans about W/256 + 1 pages, not every page the counter has passed). */

#define ID_PAGE 256

static void **id_slot(tt_client *c, uint16_t id, bool make) {
    if (!c->ids) {                   /* the page directory, on first use */
        if (!make || !(c->ids = tti_calloc(256, sizeof(void **)))) return NULL;
    }
    void **page = c->ids[id >> 8];
    if (!page) {
        if (!make) return NULL;
        page = tti_calloc(ID_PAGE + 1, sizeof(void *));
        if (!page) return NULL;
        c->ids[id >> 8] = page;
    }
    return &page[id & 0xff];
}

static void *id_get(tt_client *c, uint16_t id) {
    void **s = id_slot(c, id, false);
    return s ? *s : NULL;
}

/* Set or clear one slot, keeping its page's count. */
static void id_set(tt_client *c, uint16_t id, void **s, void *v) {
    void **page = c->ids[id >> 8];
    uintptr_t n = (uintptr_t)page[ID_PAGE];
    if (v && !*s) n++;
    else if (!v && *s) n--;
    *s = v;
    if (n == 0) {
        tti_free(page);
        c->ids[id >> 8] = NULL;
    } else {
        page[ID_PAGE] = (void *)n;
    }
}

static void id_put(tt_client *c, uint16_t id, void *v) {
    void **s = id_slot(c, id, v != NULL);
    if (s) id_set(c, id, s, v);
}

/* A free packet id, or 0 when all 65535 are taken. */
static uint16_t id_alloc(tt_client *c, void *v) {
    for (uint32_t tries = 0; tries < 65535u; tries++) {
        uint16_t id = ++c->next_pid;
        if (id == 0) id = c->next_pid = 1;
        void **s = id_slot(c, id, true);
        if (!s) return 0;
        if (!*s) {
            id_set(c, id, s, v);
            return id;
        }
    }
    return 0;
}

/* ---- Events and completion ------------------------------------------------ */

typedef struct ev_cb {
    tti_cb cb;
    tt_client *c;
    tt_client_event ev;
    char reason[200];
} ev_cb;

static void run_event(tti_cb *cb) {
    ev_cb *e = TTI_CONTAINER_OF(cb, ev_cb, cb);
    tt_client *c = e->c;
    e->ev.reason = e->reason;
    if (c->on_event) c->on_event(c, &e->ev, c->on_event_arg);
    tti_actor_release(&c->actor);
    tti_free(e);
}

static void emit(tt_client *c, tt_client_event_kind kind, tt_err err, int detail,
                 const char *reason, bool sp, uint32_t retry_ms) {
    if (!c->on_event) return;
    ev_cb *e = tti_calloc(1, sizeof *e);
    if (!e) return;
    e->cb.run = run_event;
    e->c = c;
    e->ev.kind = kind;
    e->ev.err = err;
    e->ev.detail = detail;
    e->ev.session_present = sp;
    e->ev.retry_in_ms = retry_ms;
    e->ev.attempt = c->attempt;
    snprintf(e->reason, sizeof e->reason, "%s", reason ? reason : "");
    tti_actor_retain(&c->actor);
    tti_strand_post(&c->strand, &e->cb);
}

static void finish(tti_req *r, tt_err rc, int detail, const char *reason) {
    (void)tt_promise_complete(tti_future_promise(r->f), rc, detail, reason ? "%s" : NULL, reason);
}

/* A publish is over: out of the queue file too, unless it fails only because
 * the client or its connection went away (then a restart sends it). */
static void flush_note_failure(tt_client *c, tt_err rc, const char *reason);

static void pub_finish(tt_client *c, tti_pubreq *p, tt_err rc, int detail, const char *reason) {
    if (p->sseq && !c->rare->sp_keep) tti_spool_del(c->rare->spool, p->sseq, p->len);
    if (rc != TT_OK && c->ping_head) flush_note_failure(c, rc, reason);
    finish(&p->r, rc, detail, reason);
}

/* ---- Writing --------------------------------------------------------------- */

/* Statistics have one writer (the loop): a relaxed load and store, no
 * locked instruction. */
static inline void st_add(_Atomic uint64_t *a, uint64_t n) {
    atomic_store_explicit(a, atomic_load_explicit(a, memory_order_relaxed) + n, memory_order_relaxed);
}

/* Writes only mark that something went out; the keepalive tick turns the
 * mark into a time, so no write reads the clock. */
static void out_bytes(tt_client *c, const void *p, size_t n) {
    tti_transport_write(c->tr, p, n);
    st_add(&c->st_bytes_out, n);
    c->tx_mark = true;
}

static void send_simple(tt_client *c, uint8_t type, uint16_t pid, uint8_t reason) {
    uint8_t b[5];
    size_t n;
    b[0] = (uint8_t)(type << 4) | (type == TTI_MQTT_PUBREL ? 0x02 : 0);
    b[2] = (uint8_t)(pid >> 8);
    b[3] = (uint8_t)pid;
    if (c->version == TTI_MQTT_V5 && reason != 0) {
        b[1] = 3;
        b[4] = reason;
        n = 5;
    } else {
        b[1] = 2;
        n = 4;
    }
    out_bytes(c, b, n);
}

/* ---- Outbound topic aliases (MQTT 5) ------------------------------------------
 *
 * With the option on and a broker that allows aliases, the first PUBLISH to a
 * topic carries the topic and a new alias; later ones carry the alias and an
 * empty topic. Aliases are handed out first come, up to the broker's Topic
 * Alias Maximum, and kept for the connection (no replacement): a publisher
 * with more topics than aliases sends the rest in full. The map is per
 * connection and emptied when it ends. The message was encoded on the
 * caller's thread; an aliased copy is re-encoded here, on the loop. */

static uint32_t topic_hash(const char *t, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)t[i]) * 16777619u;
    return h;
}

static void alias_reset(tt_client *c) {
    tti_client_rare *r = c->rare;
    if (!r) return;
    for (uint32_t i = 0; i < r->oa_cap; i++) tti_free(r->oa_tab[i].topic);
    tti_free(r->oa_tab);
    r->oa_tab = NULL;
    r->oa_cap = r->oa_used = 0;
}

/* The slot of `topic`, or the empty slot where it would go (NULL: no table). */
static tti_oalias *alias_slot(tti_client_rare *r, const char *t, size_t n, uint32_t h) {
    if (!r->oa_cap) return NULL;
    for (uint32_t i = h & (r->oa_cap - 1);; i = (i + 1) & (r->oa_cap - 1)) {
        tti_oalias *e = &r->oa_tab[i];
        if (!e->alias || (e->hash == h && e->len == n && memcmp(e->topic, t, n) == 0)) return e;
    }
}

static bool alias_grow(tti_client_rare *r) {
    uint32_t cap = r->oa_cap ? r->oa_cap * 2 : 16;
    tti_oalias *tab = tti_calloc(cap, sizeof *tab);
    if (!tab) return false;
    tti_oalias *old = r->oa_tab;
    uint32_t ocap = r->oa_cap;
    r->oa_tab = tab;
    r->oa_cap = cap;
    for (uint32_t i = 0; i < ocap; i++)
        if (old[i].alias) *alias_slot(r, old[i].topic, old[i].len, old[i].hash) = old[i];
    tti_free(old);
    return true;
}

/* Remembers `topic` under the next alias (best effort: a topic not
 * remembered is simply sent in full again). */
static void alias_add(tti_client_rare *r, tti_mqtt_str topic, uint32_t h) {
    if ((r->oa_used + 1) * 2 > r->oa_cap && !alias_grow(r)) return;
    char *t = tti_strndup(topic.ptr, topic.len);
    if (!t) return;
    tti_oalias *e = alias_slot(r, topic.ptr, topic.len, h);
    *e = (tti_oalias){ .hash = h, .alias = (uint16_t)++r->oa_used, .len = (uint16_t)topic.len, .topic = t };
}

/* Writes `p` with a topic alias when that applies. False: no alias applies,
 * the caller writes p->data as it is. */
static bool write_aliased(tt_client *c, tti_pubreq *p) {
    if (!c->out_alias || !c->oa_max) return false;
    tti_client_rare *r = c->rare;      /* made with the option */
    tti_mqtt_pkt pkt;
    const char *why = NULL;
    if (tti_mqtt_decode(p->data, p->len, c->version, 0, &pkt, &why) <= 0) return false;
    tti_mqtt_str topic = pkt.u.publish.topic;
    if (topic.len == 0 || topic.len > UINT16_MAX) return false;
    uint32_t h = topic_hash(topic.ptr, topic.len);
    tti_oalias *e = alias_slot(r, topic.ptr, topic.len, h);
    bool known = e && e->alias;
    if (!known && r->oa_used >= c->oa_max) return false;
    pkt.props.present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_TOPIC_ALIAS);
    pkt.props.topic_alias = known ? e->alias : (uint16_t)(r->oa_used + 1);
    if (known) pkt.u.publish.topic.len = 0;
    int n = tti_mqtt_encoded_len(&pkt, c->version, &why);
    if (n <= 0 || (uint32_t)n > c->server_max_packet) return false;
    size_t len = (size_t)n;
    uint8_t small[1024];
    uint8_t *buf = len <= sizeof small ? small : tti_malloc(len);
    if (!buf || tti_mqtt_encode(&pkt, c->version, buf, len, &why) != n) {
        if (buf && buf != small) tti_free(buf);
        return false;
    }
    if (known) st_add(&c->st_aliased, 1);
    else alias_add(r, topic, h);      /* only once the packet that names it is built */
    out_bytes(c, buf, len);
    if (buf != small) tti_free(buf);
    return true;
}

static void write_pub(tt_client *c, tti_pubreq *p, bool dup) {
    if (p->qos > 0) {
        p->data[p->pid_off] = (uint8_t)(p->pid >> 8);
        p->data[p->pid_off + 1] = (uint8_t)p->pid;
        if (dup) p->data[0] |= 0x08;
    }
    st_add(&c->st_pubs_out, 1);
    if (!write_aliased(c, p)) out_bytes(c, p->data, p->len);
}

/* ---- The queue file ------------------------------------------------------------ */

/* Write what the queue file has buffered; rewrite it when it is mostly
 * finished records (in flight first, then queued: the order of sending). */
static void spool_sync(tt_client *c) {
    if (!tti_spool_wants_compact(c->rare->spool)) {
        (void)tti_spool_flush(c->rare->spool);
        return;
    }
    tti_spool_compact_begin(c->rare->spool);
    for (tti_pubreq *p = c->fl_head; p; p = (tti_pubreq *)(void *)p->r.next)
        tti_spool_compact_put(c->rare->spool, p->sseq, p->data, p->len);
    for (tti_pubreq *p = c->q_head; p; p = (tti_pubreq *)(void *)p->r.next)
        tti_spool_compact_put(c->rare->spool, p->sseq, p->data, p->len);
    if (tti_spool_compact_end(c->rare->spool) != TT_OK) (void)tti_spool_flush(c->rare->spool);
}

static void q_push(tt_client *c, tti_pubreq *p);

/* A publish from the file: a request of its own, with no caller (its future
 * is dropped at once and freed when it finishes). */
static tt_err restore_one(void *arg, uint64_t seq, const uint8_t *data, uint32_t len) {
    tt_client *c = arg;
    tti_mqtt_fixed fx;
    const char *why = NULL;
    if (len < 2 || tti_mqtt_decode_fixed(data, len, c->version, 0, &fx, &why) <= 0 || fx.total != len ||
        fx.type != TTI_MQTT_PUBLISH || len < fx.header_len + 2u)
        return TT_EINVAL;
    uint32_t tlen = (uint32_t)data[fx.header_len] << 8 | data[fx.header_len + 1];
    uint8_t qos = (uint8_t)((data[0] >> 1) & 3);
    if (qos == 0 || qos == 3 || fx.header_len + 2u + tlen + 2u > len) return TT_EINVAL;
    tt_future *f = tti_future_new(NULL, sizeof(tti_pubreq) + len);
    if (!f) return TT_ENOMEM;
    tti_pubreq *p = tti_future_extra(f);
    memset(p, 0, sizeof *p);
    p->r.f = f;
    p->r.msg.type = TTI_REQ_PUBLISH;
    p->len = len;
    p->qos = qos;
    p->sseq = seq;
    p->pid_off = (uint32_t)fx.header_len + 2u + tlen;
    memcpy(p->data, data, len);
    p->data[0] &= (uint8_t)~0x08;    /* new packet ids: not a redelivery (DUP) */
    tt_future_free(f);               /* nobody waits: the promise's reference frees it */
    atomic_fetch_add_explicit(&c->queued_bytes, len, memory_order_relaxed);
    q_push(c, p);
    return TT_OK;
}

tt_err tti_session_restore(tt_client *c, const char *path, char *why, size_t whylen) {
    tt_err rc = tti_spool_open(path, c->version, restore_one, c, &c->rare->spool, why, whylen);
    if (rc == TT_OK) {
        if (c->q_head)
            TTI_LOG(INFO, "session", "%s: %zu publishes from the queue file wait for a connection", path,
                    tti_spool_live(c->rare->spool));
        return TT_OK;
    }
    if (rc == TT_EINVAL && !*why) snprintf(why, whylen, "%s holds a record that is not a publish", path);
    /* Undo a partial restore. */
    tti_pubreq *p;
    while ((p = c->q_head) != NULL) {
        c->q_head = (tti_pubreq *)(void *)p->r.next;
        atomic_fetch_sub_explicit(&c->queued_bytes, p->len, memory_order_relaxed);
        (void)tt_promise_complete(tti_future_promise(p->r.f), TT_ECLOSED, 0, NULL);
    }
    c->q_tail = NULL;
    c->q_bytes = 0;
    return rc;
}

/* ---- Outbound publishes ----------------------------------------------------- */

static void q_push(tt_client *c, tti_pubreq *p) {
    p->r.next = NULL;
    if (c->q_tail) c->q_tail->r.next = &p->r;
    else c->q_head = p;
    c->q_tail = p;
    c->q_bytes += p->len;
}

/* Publishes count against the client's byte bound from the call until they
 * leave the queue (written, or failed). */
static void uncount(tt_client *c, const tti_pubreq *p) {
    atomic_fetch_sub_explicit(&c->queued_bytes, p->len, memory_order_relaxed);
}

static tti_pubreq *q_pop(tt_client *c) {
    tti_pubreq *p = c->q_head;
    if (!p) return NULL;
    uncount(c, p);
    c->q_head = (tti_pubreq *)(void *)p->r.next;
    if (!c->q_head) c->q_tail = NULL;
    c->q_bytes -= p->len;
    return p;
}

static void fl_link(tt_client *c, tti_pubreq *p) {
    p->r.next = NULL;
    p->r.prev = (tti_req *)(void *)c->fl_tail;
    if (c->fl_tail) c->fl_tail->r.next = &p->r;
    else c->fl_head = p;
    c->fl_tail = p;
}

static void fl_unlink(tt_client *c, tti_pubreq *p) {
    tti_pubreq *prev = (tti_pubreq *)(void *)p->r.prev, *next = (tti_pubreq *)(void *)p->r.next;
    if (prev) prev->r.next = (tti_req *)(void *)next;
    else c->fl_head = next;
    if (next) next->r.prev = (tti_req *)(void *)prev;
    else c->fl_tail = prev;
}

/* The reason code a broker whose CONNACK (MQTT 5) allows no publish of this
 * QoS, or no retained one, would answer it with; 0 if it takes it. */
static int pub_unsupported(const tt_client *c, const tti_pubreq *p) {
    if (p->qos > c->max_qos) return TTI_MQTT_RC_QOS_NOT_SUPPORTED;
    if ((p->data[0] & 1) && !c->retain_ok) return TTI_MQTT_RC_RETAIN_NOT_SUPPORTED;
    return 0;
}

static void pub_done(tt_client *c, tti_pubreq *p, tt_err rc, int detail, const char *why);

/* Fail such a publish rather than break the protocol: the broker would drop
 * the connection, and the message would come back on every reconnect. One
 * already sent (to an earlier broker) leaves the inflight table too. */
static void pub_refuse(tt_client *c, tti_pubreq *p, int rc, bool sent) {
    char why[120];
    if (rc == TTI_MQTT_RC_QOS_NOT_SUPPORTED)
        snprintf(why, sizeof why, "QoS %u exceeds the broker's Maximum QoS of %u", p->qos, (unsigned)c->max_qos);
    else
        snprintf(why, sizeof why, "the broker does not support retained messages");
    if (sent) pub_done(c, p, TT_ENOTSUP, rc, why);
    else pub_finish(c, p, TT_ENOTSUP, rc, why);
}

/* A publish failed while flushes wait: each counts it. */
static void flush_note_failure(tt_client *c, tt_err rc, const char *reason) {
    for (tti_req *r = c->ping_head; r; r = r->next) {
        if (r->msg.type != TTI_REQ_FLUSH) continue;
        tti_flushreq *q = (tti_flushreq *)(void *)r;
        if (q->failed++ == 0) {
            q->first_err = rc;
            snprintf(q->first_why, sizeof q->first_why, "%s", reason ? reason : tt_strerror(rc));
        }
    }
}

/* The wait list (ping_head) holds pings and flushes in arrival order. Take
 * out every waiter `pick` selects; they come back chained by `next`, to be
 * finished by the caller (read `next` first: finishing may free one). */
static tti_req *waiters_take(tt_client *c, bool (*pick)(const tti_req *r)) {
    tti_req *head = NULL, **tail = &head;
    for (tti_req **pp = &c->ping_head; *pp;) {
        tti_req *r = *pp;
        if (!pick(r)) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        r->next = NULL;
        *tail = r;
        tail = &r->next;
    }
    return head;
}

/* At the end of the wait list (it is short: no tail pointer). */
static void waiter_append(tt_client *c, tti_req *r) {
    tti_req **end = &c->ping_head;
    while (*end) end = &(*end)->next;
    r->next = NULL;
    *end = r;
}

static bool is_ping(const tti_req *r) { return r->msg.type == TTI_REQ_PING; }
static bool is_flush(const tti_req *r) { return r->msg.type == TTI_REQ_FLUSH; }
static bool is_waiter(const tti_req *r) { return is_ping(r) || is_flush(r); }
static bool is_abandoned_flush(const tti_req *r) { return is_flush(r) && tt_future_done(r->f); }

/* Flushes complete once nothing is queued or in flight: with the first
 * failure seen meanwhile, if any. */
static void flush_check(tt_client *c) {
    if (c->q_head || c->fl_head) return;
    for (tti_req *r = waiters_take(c, is_flush), *next; r; r = next) {
        next = r->next;
        tti_flushreq *q = (tti_flushreq *)(void *)r;
        if (!q->failed)
            finish(r, TT_OK, 0, NULL);
        else
            (void)tt_promise_complete(tti_future_promise(r->f), q->first_err, (int)q->failed,
                                      "%u publish%s failed; the first: %s", q->failed,
                                      q->failed == 1 ? "" : "es", q->first_why);
    }
}

static void pump_up(tt_client *c);

/* Send queued publishes while connected, the window allows and the socket
 * keeps up; then complete the flushes that are due. */
static void pump(tt_client *c) {
    if (c->state == ST_UP && !c->disc_sent) pump_up(c);
    if (c->ping_head) flush_check(c);
}

static void pump_up(tt_client *c) {
    /* Writes land in the loop's shared buffer; the socket's backlog is looked
     * at every 8 KiB. */
    bool congested = tti_transport_congested(c->tr);
    size_t since = 0;
    while (c->q_head && !congested) {
        tti_pubreq *p = c->q_head;
        if (p->qos > 0 && c->inflight >= c->window) break;
        (void)q_pop(c);
        if (p->len > c->server_max_packet) {
            char why[120];
            snprintf(why, sizeof why, "packet of %u bytes exceeds the broker's maximum of %u",
                     p->len, c->server_max_packet);
            pub_finish(c, p, TT_EINVAL, TTI_MQTT_RC_PACKET_TOO_LARGE, why);
            continue;
        }
        int refused = pub_unsupported(c, p);
        if (refused) {
            pub_refuse(c, p, refused, false);
            continue;
        }
        if (!tti_promise_commit(tti_future_promise(p->r.f))) {
            /* cancelled or timed out while queued: never sent */
            if (p->sseq) tti_spool_del(c->rare->spool, p->sseq, p->len);
            (void)tt_promise_complete(tti_future_promise(p->r.f), TT_ECANCELED, 0, NULL);
            continue;
        }
        size_t len = p->len;         /* p is gone once a QoS 0 publish finishes */
        if (p->qos == 0) {
            write_pub(c, p, false);  /* copied: the message can go at once */
            finish(&p->r, TT_OK, 0, NULL);
        } else {
            p->pid = id_alloc(c, p);
            if (!p->pid) {           /* cannot happen below a 65535 window */
                pub_finish(c, p, TT_EAGAIN, 0, "no free packet identifier");
                continue;
            }
            p->state = TTI_PUB_SENT;
            c->inflight++;
            fl_link(c, p);
            write_pub(c, p, false);
        }
        if ((since += len) >= 8192) {
            since = 0;
            congested = tti_transport_congested(c->tr);
        }
    }
    tti_transport_flush(c->tr);
}

static void pub_done(tt_client *c, tti_pubreq *p, tt_err rc, int detail, const char *why) {
    id_put(c, p->pid, NULL);
    fl_unlink(c, p);
    c->inflight--;
    pub_finish(c, p, rc, detail, why);
}

/* ---- Subscriptions ------------------------------------------------------------ */

/* Add or update a subscription; false when out of memory. */
static bool sub_set(tt_client *c, const tti_subent *e) {
    void *v = NULL;
    tti_subent *s = tti_trie_lookup(&c->subs, e->filter, e->filter_len, &v) ? v : NULL;
    if (!s) {
        s = tti_calloc(1, sizeof *s);
        if (!s || !(s->filter = tti_strndup(e->filter, e->filter_len))) {
            tti_free(s);
            return false;
        }
        s->filter_len = e->filter_len;
        if (tti_trie_insert(&c->subs, s->filter, s->filter_len, s, NULL) < 0) {
            tti_free(s->filter);
            tti_free(s);
            return false;
        }
    }
    s->qos = e->qos;
    s->no_local = e->no_local;
    s->rap = e->rap;
    s->rh = e->rh;
    s->sub_id = e->sub_id;
    s->handler = e->handler;
    s->arg = e->arg;
    return true;
}

tt_err tti_session_preset_sub(tt_client *c, const char *filter, tt_qos qos, tt_msg_fn fn, void *arg) {
    tti_subent e = { .filter = (char *)filter, .filter_len = strlen(filter), .qos = qos, .handler = fn, .arg = arg };
    return sub_set(c, &e) ? TT_OK : TT_ENOMEM;
}

static void sub_remove(tt_client *c, const char *filter, size_t len) {
    void *v = NULL;
    if (tti_trie_remove(&c->subs, filter, len, &v) == TT_OK && v) {
        tti_subent *s = v;
        tti_free(s->filter);
        tti_free(s);
    }
}

static int encode_subscribe(tt_client *c, tti_subreq *s, uint8_t *out, size_t cap) {
    tti_mqtt_sub subs[64];
    tti_mqtt_sub *arr = s->n <= 64 ? subs : tti_calloc(s->n, sizeof *arr);
    if (!arr) return TT_ENOMEM;
    bool unsub = s->r.msg.type == TTI_REQ_UNSUBSCRIBE;
    for (size_t i = 0; i < s->n; i++) {
        arr[i] = (tti_mqtt_sub){ .filter = { s->ents[i].filter, s->ents[i].filter_len },
                                 .qos = (uint8_t)s->ents[i].qos,
                                 .no_local = s->ents[i].no_local,
                                 .retain_as_published = s->ents[i].rap,
                                 .retain_handling = s->ents[i].rh };
    }
    tti_mqtt_pkt pkt;
    memset(&pkt, 0, sizeof pkt);
    pkt.type = unsub ? TTI_MQTT_UNSUBSCRIBE : TTI_MQTT_SUBSCRIBE;
    pkt.packet_id = s->pid;
    pkt.u.subscribe.subs = arr;
    pkt.u.subscribe.count = s->n;
    if (!unsub && s->ents[0].sub_id && c->sub_ids_ok) {    /* one per packet: checked at the call */
        pkt.props.present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_SUBSCRIPTION_ID);
        pkt.props.sub_id = s->ents[0].sub_id;
    }
    const char *why = NULL;
    int n = out ? tti_mqtt_encode(&pkt, c->version, out, cap, &why)
                : tti_mqtt_encoded_len(&pkt, c->version, &why);
    if (arr != subs) tti_free(arr);
    return n;
}

/* The reason code a broker that said (MQTT 5 CONNACK) it has no wildcard or
 * no shared subscriptions would answer this filter with; 0 if it takes it. */
static int sub_unsupported(const tt_client *c, const char *f, size_t len) {
    if (!c->shared_ok && len > 7 && !memcmp(f, "$share/", 7)) return TTI_MQTT_RC_SHARED_SUB_NOT_SUPPORTED;
    if (!c->wildcard_ok && (memchr(f, '+', len) || memchr(f, '#', len)))
        return TTI_MQTT_RC_WILDCARD_SUB_NOT_SUPPORTED;
    return 0;
}

static void send_subreq(tt_client *c, tti_subreq *s) {
    if (!s->internal && s->r.msg.type == TTI_REQ_SUBSCRIBE) {
        int rc = 0;
        const char *why = NULL;
        if (s->ents[0].sub_id && !c->sub_ids_ok) {
            rc = TTI_MQTT_RC_SUB_ID_NOT_SUPPORTED;
            why = "the broker does not support subscription identifiers";
        }
        for (size_t i = 0; i < s->n && !rc; i++) rc = sub_unsupported(c, s->ents[i].filter, s->ents[i].filter_len);
        if (rc && !why)
            why = rc == TTI_MQTT_RC_SHARED_SUB_NOT_SUPPORTED ? "the broker does not support shared subscriptions"
                                                             : "the broker does not support wildcard subscriptions";
        if (rc) {
            for (size_t i = 0; i < s->n; i++) sub_remove(c, s->ents[i].filter, s->ents[i].filter_len);
            finish(&s->r, TT_ENOTSUP, rc, why);
            return;
        }
    }
    s->pid = id_alloc(c, s);
    if (!s->pid) {
        finish(&s->r, TT_EAGAIN, 0, "no free packet identifier");
        return;
    }
    int len = encode_subscribe(c, s, NULL, 0);
    uint8_t small[512];
    uint8_t *buf = len > 0 && (size_t)len <= sizeof small ? small : tti_malloc(len > 0 ? (size_t)len : 1);
    if (len <= 0 || !buf || encode_subscribe(c, s, buf, (size_t)len) != len) {
        id_put(c, s->pid, NULL);
        if (buf && buf != small) tti_free(buf);
        finish(&s->r, TT_EINVAL, 0, "cannot encode the subscription");
        return;
    }
    s->sent = true;
    out_bytes(c, buf, (size_t)len);
    if (buf != small) tti_free(buf);
}

static void ctl_push(tt_client *c, tti_subreq *s) {
    s->r.next = NULL;
    if (c->ctl_tail) c->ctl_tail->r.next = &s->r;
    else c->ctl_head = s;
    c->ctl_tail = s;
}

/* After CONNACK: resubscribe (unless the broker kept our session), resend
 * unacknowledged publishes with DUP, then queued requests. */
#define TTI_MAX_RESENDS 8

typedef struct resub_ctx {
    const tt_client *c;
    tti_subent **all;
    size_t i;
} resub_ctx;

static void resub_collect(const char *filter, size_t len, void *value, void *arg) {
    resub_ctx *rc = arg;
    if (sub_unsupported(rc->c, filter, len)) {
        /* Kept for a later broker that takes it; sending it would be a
         * protocol error this broker drops the connection for. */
        TTI_LOG(WARN, "session", "%s: not resubscribing to %.*s: the broker does not support it",
                rc->c->client_id, (int)len, filter);
        return;
    }
    rc->all[rc->i++] = value;
}

static int by_sub_id(const void *a, const void *b) {
    uint32_t x = (*(tti_subent *const *)a)->sub_id, y = (*(tti_subent *const *)b)->sub_id;
    return x < y ? -1 : x > y;
}

/* Internal SUBSCRIBEs whose futures nobody waits on: one per subscription
 * identifier (it belongs to the packet), one in all without identifiers. */
static void resubscribe(tt_client *c, size_t n) {
    resub_ctx rc = { c, tti_malloc(n * sizeof(tti_subent *)), 0 };
    if (!rc.all) {
        TTI_LOG(ERROR, "session", "%s: out of memory resubscribing", c->client_id);
        return;
    }
    tti_trie_foreach(&c->subs, resub_collect, &rc);
    n = rc.i;
    qsort(rc.all, n, sizeof *rc.all, by_sub_id);
    for (size_t lo = 0, hi; lo < n; lo = hi) {
        size_t strbytes = 0;
        for (hi = lo; hi < n && rc.all[hi]->sub_id == rc.all[lo]->sub_id; hi++) strbytes += rc.all[hi]->filter_len + 1;
        size_t k = hi - lo;
        tt_future *f = tti_future_new(NULL, sizeof(tti_subreq) + strbytes + 8 + k * sizeof(tti_subent) + k);
        if (!f) continue;
        tti_subreq *s = tti_future_extra(f);
        memset(s, 0, sizeof *s);
        s->r.msg.type = TTI_REQ_SUBSCRIBE;
        s->r.f = f;
        s->n = k;
        s->internal = true;
        char *sp = s->strbuf;
        s->ents = (tti_subent *)(void *)(((uintptr_t)(sp + strbytes) + 7u) & ~(uintptr_t)7u);
        s->codes = (uint8_t *)(s->ents + k);
        for (size_t j = 0; j < k; j++) {
            const tti_subent *e = rc.all[lo + j];
            memcpy(sp, e->filter, e->filter_len + 1);
            s->ents[j] = *e;
            s->ents[j].filter = sp;
            s->ents[j].next = NULL;
            sp += e->filter_len + 1;
        }
        tt_future_free(f);                       /* no caller: only the producer's reference */
        send_subreq(c, s);
    }
    tti_free(rc.all);
}

static void resume(tt_client *c, bool session_present) {
    /* A broker without our session has no half-finished inbound QoS 2. */
    if (!session_present && c->qos2_rx) memset(c->qos2_rx, 0, 8192);
    size_t n = tti_trie_count(&c->subs);
    if (n && !(session_present && c->persistent)) resubscribe(c, n);
    /* Resend in the order first sent. A message in flight across many
     * dropped connections is likely what the broker refuses (3.1.1 brokers
     * drop a client for an oversize packet): give up on it, with a reason. */
    for (tti_pubreq *p = c->fl_head, *next; p; p = next) {
        next = (tti_pubreq *)(void *)p->r.next;
        if (++p->resends > TTI_MAX_RESENDS) {
            pub_done(c, p, TT_EPROTO, 0,
                     "the broker closed the connection each time this message was sent");
            continue;
        }
        int refused = p->state == TTI_PUB_SENT ? pub_unsupported(c, p) : 0;
        if (refused) {                /* this broker refuses what an earlier one took */
            pub_refuse(c, p, refused, true);
            continue;
        }
        if (p->state == TTI_PUB_RELEASING) send_simple(c, TTI_MQTT_PUBREL, p->pid, 0);
        else write_pub(c, p, true);
    }
    while (c->ctl_head) {
        tti_subreq *s = c->ctl_head;
        c->ctl_head = (tti_subreq *)(void *)s->r.next;
        if (!c->ctl_head) c->ctl_tail = NULL;
        send_subreq(c, s);
    }
    pump(c);
}

/* ---- Incoming ---------------------------------------------------------------- */

static void run_msg(tti_cb *cb);

typedef struct match_ctx {
    tti_subent *small[16];
    tti_subent **hits;
    size_t n, cap;
    bool oom;
} match_ctx;

static void on_match(const char *filter, size_t len, void *value, void *arg) {
    (void)filter;
    (void)len;
    match_ctx *mc = arg;
    tti_subent *s = value;
    if (!s->handler) return;
    if (mc->n == mc->cap) {
        size_t ncap = mc->cap * 2;
        tti_subent **h = tti_malloc(ncap * sizeof *h);
        if (!h) {
            mc->oom = true;
            return;
        }
        memcpy(h, mc->hits, mc->n * sizeof *h);
        if (mc->hits != mc->small) tti_free(mc->hits);
        mc->hits = h;
        mc->cap = ncap;
    }
    mc->hits[mc->n++] = s;
}

/* ---- Inbound bound (inbound_queue_bytes) ---------------------------------------
 *
 * Past the bound the loop stops reading the socket, so TCP holds the broker
 * back; whoever frees half of it (a handler returning, tt_client_poll
 * taking) posts resume_msg. Both sides store their flag, then read the
 * other's counter (sequentially consistent), so a pause and a drain that
 * cross are not both missed. */

static size_t in_cost(const tt_msg *m) { return sizeof *m + m->topic_len + m->payload_len + m->props_len; }

void tti_session_in_done(tt_client *c, const tt_msg *m) {
    tti_client_rare *r = c->rare;
    if (!r || !r->in_max) return;
    size_t cost = in_cost(m);
    size_t left = atomic_fetch_sub(&r->in_bytes, cost) - cost;
    if (left <= r->in_max / 2 && atomic_load(&r->rx_paused) && !atomic_exchange(&r->resume_posted, true)) {
        r->resume_msg.type = TTI_REQ_RESUME_RX;
        if (tti_actor_send(&c->actor, &r->resume_msg) != TT_OK) atomic_store(&r->resume_posted, false);
    }
}

static void rx_resume(tt_client *c) {
    atomic_store(&c->rare->rx_paused, false);
    if (c->tr) tti_transport_pause_read(c->tr, false);
    c->last_rx_ms = mono_ms();       /* the pause was ours, not the broker's silence */
}

/* After a read: pause past the bound. */
static void rx_check(tt_client *c) {
    tti_client_rare *r = c->rare;
    if (!c->tr || atomic_load(&r->rx_paused) || atomic_load(&r->in_bytes) <= r->in_max) return;
    atomic_store(&r->rx_paused, true);
    tti_transport_pause_read(c->tr, true);
    TTI_LOG(DEBUG, "session", "%s: %zu bytes of messages unhandled: reading paused", c->client_id,
            atomic_load(&r->in_bytes));
    if (atomic_load(&r->in_bytes) <= r->in_max / 2) rx_resume(c);   /* drained meanwhile */
}

static void deliver(tt_client *c, const tti_mqtt_pkt *pkt, tti_mqtt_str topic) {
    match_ctx mc = { .cap = 16 };
    mc.hits = mc.small;
    (void)tti_trie_match(&c->subs, topic.ptr, topic.len, on_match, &mc);
    size_t nh = mc.n;
    size_t plen = c->version == TTI_MQTT_V5 ? pkt->props.raw.len : 0;
    size_t hbytes = (nh ? nh : 1) * sizeof(*((tt_msg *)0)->handlers);
    size_t need = sizeof(tt_msg) + topic.len + 1 + pkt->u.publish.payload.len + plen + hbytes + 8;
    tt_msg *m = tti_blk_alloc(need);
    if (!m) {
        if (mc.hits != mc.small) tti_free(mc.hits);
        TTI_LOG(ERROR, "session", "no memory for an incoming message of %zu bytes", need);
        return;
    }
    memset(m, 0, sizeof *m);
    m->cb.run = run_msg;
    atomic_init(&m->refs, 1);
    m->c = c;
    m->version = c->version;
    m->qos = pkt->u.publish.qos;
    m->retain = pkt->u.publish.retain;
    m->dup = pkt->u.publish.dup;
    uint8_t *p = m->buf;
    memcpy(p, topic.ptr, topic.len);
    p[topic.len] = 0;
    m->topic = (const char *)p;
    m->topic_len = topic.len;
    p += topic.len + 1;
    if (pkt->u.publish.payload.len) memcpy(p, pkt->u.publish.payload.ptr, pkt->u.publish.payload.len);
    m->payload = p;
    m->payload_len = pkt->u.publish.payload.len;
    p += m->payload_len;
    if (plen) {
        memcpy(p, pkt->props.raw.ptr, plen);
        m->props = p;
        m->props_len = plen;
        /* Keep the decoded properties, their views moved onto our copy. */
        m->pp = pkt->props;
        ptrdiff_t d = p - pkt->props.raw.ptr;
#define REBASE_(f) if (m->pp.f.ptr) m->pp.f.ptr = (const void *)((const uint8_t *)m->pp.f.ptr + d)
        REBASE_(content_type);
        REBASE_(response_topic);
        REBASE_(correlation_data);
        REBASE_(raw);
#undef REBASE_
        m->pp.user_props = NULL;
        m->pp.sub_ids = NULL;
        p += plen;
        if (pkt->props.present & TTI_MQTT_PBIT(TTI_MQTT_PROP_MESSAGE_EXPIRY)) {
            m->has_expiry = true;
            m->expiry = pkt->props.message_expiry;
        }
        m->utf8 = (pkt->props.present & TTI_MQTT_PBIT(TTI_MQTT_PROP_PAYLOAD_FORMAT)) &&
                  pkt->props.payload_format == 1;
    }
    m->handlers = (void *)(((uintptr_t)p + 7u) & ~(uintptr_t)7u);
    for (size_t i = 0; i < nh; i++) {
        m->handlers[i].fn = mc.hits[i]->handler;
        m->handlers[i].arg = mc.hits[i]->arg;
    }
    m->nhandlers = nh;
    if (mc.hits != mc.small) tti_free(mc.hits);
    tti_actor_retain(&c->actor);     /* the message keeps its client alive */
    m->pull_next = NULL;
    if (c->rare && c->rare->in_max) atomic_fetch_add(&c->rare->in_bytes, in_cost(m));
    if (!c->pull) {
        /* Batched: one post to the strand per read, not per message. The
         * list lives in the loop's scratch: one read at a time per loop. */
        tti_io_scratch *io = c->actor.loop->io;
        if (io->rx_tail) ((tt_msg *)io->rx_tail)->pull_next = m;
        else io->rx_head = m;
        io->rx_tail = m;
        return;
    }
    {
        tti_pull *pl = c->pl;
        pthread_mutex_lock(&pl->lock);
        m->pull_next = NULL;
        if (pl->tail) pl->tail->pull_next = m;
        else pl->head = m;
        pl->tail = m;
        pthread_cond_signal(&pl->cond);
        pthread_mutex_unlock(&pl->lock);
    }
}

/* Hand the messages of one read to the strand in one post. */
static void flush_rx(tt_client *c) {
    tti_io_scratch *io = c->actor.loop->io;
    tt_msg *m = io ? io->rx_head : NULL;
    if (!m) return;
    io->rx_head = io->rx_tail = NULL;
    tti_strand_post(&c->strand, &m->cb);
}

static void run_msg(tti_cb *cb) {
    tt_msg *m = TTI_CONTAINER_OF(cb, tt_msg, cb);
    while (m) {
        tt_msg *next = m->pull_next;
        tt_client *c = m->c;
        if (!atomic_load_explicit(&c->closing, memory_order_acquire)) {
            if (m->nhandlers == 0) {
                if (c->on_message) c->on_message(c, m, c->on_message_arg);
            } else {
                for (size_t i = 0; i < m->nhandlers; i++) m->handlers[i].fn(c, m, m->handlers[i].arg);
            }
        }
        tti_session_in_done(c, m);
        tt_msg_unref(m);
        m = next;
    }
}

tt_msg *tt_msg_ref(const tt_msg *m) {
    tt_msg *mm = (tt_msg *)m;
    atomic_fetch_add_explicit(&mm->refs, 1, memory_order_relaxed);
    return mm;
}

void tt_msg_unref(tt_msg *m) {
    if (!m || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1) return;
    tt_client *c = m->c;
    tti_blk_free(m);
    tti_actor_release(&c->actor);
}

static bool qos2_seen(tt_client *c, uint16_t id) {
    return c->qos2_rx && (c->qos2_rx[id >> 3] & (1u << (id & 7)));
}
static void qos2_mark(tt_client *c, uint16_t id, bool on) {
    if (!c->qos2_rx) {
        if (!on) return;
        c->qos2_rx = tti_calloc(8192, 1);
        if (!c->qos2_rx) return;
    }
    if (on) c->qos2_rx[id >> 3] |= (uint8_t)(1u << (id & 7));
    else c->qos2_rx[id >> 3] &= (uint8_t)~(1u << (id & 7));
}

static void on_publish(tt_client *c, const tti_mqtt_pkt *pkt) {
    tti_mqtt_str topic = pkt->u.publish.topic;
    if (c->version == TTI_MQTT_V5 && (pkt->props.present & TTI_MQTT_PBIT(TTI_MQTT_PROP_TOPIC_ALIAS))) {
        uint16_t a = pkt->props.topic_alias;
        if (a == 0 || a > c->in_alias_max) {
            lost(c, TT_EPROTO, TTI_MQTT_RC_TOPIC_ALIAS_INVALID, "topic alias out of range");
            return;
        }
        if (topic.len) {
            char *t = tti_strndup(topic.ptr, topic.len);
            if (!t) return;
            tti_free(c->rare->in_alias[a - 1]);
            c->rare->in_alias[a - 1] = t;
        } else if (c->rare->in_alias[a - 1]) {
            topic.ptr = c->rare->in_alias[a - 1];
            topic.len = strlen(topic.ptr);
        } else {
            lost(c, TT_EPROTO, TTI_MQTT_RC_PROTOCOL_ERROR, "unknown topic alias");
            return;
        }
    }
    st_add(&c->st_msgs_in, 1);
    switch (pkt->u.publish.qos) {
    case 0:
        deliver(c, pkt, topic);
        break;
    case 1:
        deliver(c, pkt, topic);
        send_simple(c, TTI_MQTT_PUBACK, pkt->packet_id, 0);
        break;
    default:
        /* Exactly once (3.1.1 and 5.0, 4.3.3): from our PUBREC until the
         * PUBREL, any PUBLISH with that id is the same message, DUP flag or
         * not (mosquitto resends some without it), and is only acknowledged.
         * After PUBREL the id is free: a PUBLISH with it is a new message. */
        if (!qos2_seen(c, pkt->packet_id)) {
            deliver(c, pkt, topic);
            qos2_mark(c, pkt->packet_id, true);
        }
        send_simple(c, TTI_MQTT_PUBREC, pkt->packet_id, 0);
        break;
    }
}

/* ---- Enhanced authentication (MQTT 5 AUTH) -------------------------------------- */

static const char *const auth_stage_name[] = { "start", "challenge", "done" };

/* One step through the handler; false, with `why`, if it refused. */
static bool auth_call(tt_client *c, tt_auth_step *st, char *why, size_t n) {
    tti_client_rare *r = c->rare;
    st->method = r->auth_method;
    st->reply = NULL;
    st->reply_len = 0;
    if (!r->on_auth) {
        if (st->stage != TT_AUTH_CHALLENGE) return true;
        snprintf(why, n, "the broker sent an authentication challenge and there is no on_auth handler");
        return false;
    }
    tt_err e = r->on_auth(c, st, r->on_auth_arg);
    if (e != TT_OK) {
        snprintf(why, n, "on_auth refused the %s step: %s", auth_stage_name[st->stage], tt_strerror(e));
        return false;
    }
    if (st->stage == TT_AUTH_DONE) st->reply_len = 0;
    if (st->reply_len > 65535u || (st->reply_len && !st->reply)) {
        snprintf(why, n, "on_auth gave a reply of %zu bytes without data or over 65535", st->reply_len);
        return false;
    }
    return true;
}

/* A step with the broker's Authentication Data, when the packet has some. */
static tt_auth_step auth_step(tt_auth_stage stage, bool reauth, const tti_mqtt_props *pr) {
    tt_auth_step st = { .stage = stage, .reauth = reauth };
    if (pr->present & TTI_MQTT_PBIT(TTI_MQTT_PROP_AUTH_DATA)) {
        st.data = pr->auth_data.ptr;
        st.len = pr->auth_data.len;
    }
    return st;
}

static bool same_method(const tt_client *c, const tti_mqtt_props *pr) {
    size_t n = strlen(c->rare->auth_method);
    return pr->auth_method.len == n && !memcmp(pr->auth_method.ptr, c->rare->auth_method, n);
}

static void send_auth(tt_client *c, uint8_t reason, const void *data, size_t len) {
    tti_mqtt_pkt pkt;
    memset(&pkt, 0, sizeof pkt);
    pkt.type = TTI_MQTT_AUTH;
    pkt.reason = reason;
    pkt.props.present = TTI_MQTT_PBIT(TTI_MQTT_PROP_AUTH_METHOD);
    pkt.props.auth_method = (tti_mqtt_str){ c->rare->auth_method, strlen(c->rare->auth_method) };
    if (len) {
        pkt.props.present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_AUTH_DATA);
        pkt.props.auth_data = (tti_mqtt_bin){ data, len };
    }
    const char *why = NULL;
    int n = tti_mqtt_encoded_len(&pkt, TTI_MQTT_V5, &why);
    uint8_t small[256];
    uint8_t *buf = n > 0 && (size_t)n <= sizeof small ? small : tti_malloc(n > 0 ? (size_t)n : 1);
    if (n <= 0 || !buf || tti_mqtt_encode(&pkt, TTI_MQTT_V5, buf, (size_t)n, &why) != n) {
        if (buf && buf != small) tti_free(buf);
        lost(c, TT_EINTERNAL, 0, "cannot encode AUTH");
        return;
    }
    out_bytes(c, buf, (size_t)n);
    if (buf != small) tti_free(buf);
    tti_transport_flush(c->tr);
}

/* This connection's CONNECT: the prepared one with an Authentication Data
 * property put first in its property block. */
static bool auth_connect_build(tt_client *c, const void *data, size_t dlen) {
    const uint8_t *p = c->connect_pkt;
    uint32_t rem, plen;
    int a = tti_mqtt_vbi_get(p + 1, c->connect_len - 1, &rem);
    size_t vh = 1u + (size_t)a + 10u;            /* "MQTT", level, flags, keep alive */
    int b = a > 0 ? tti_mqtt_vbi_get(p + vh, c->connect_len - vh, &plen) : -1;
    if (b <= 0) return false;
    uint32_t nplen = plen + 3u + (uint32_t)dlen;
    uint32_t nrem = rem - (uint32_t)b + (uint32_t)tti_mqtt_vbi_len(nplen) + 3u + (uint32_t)dlen;
    size_t total = 1u + tti_mqtt_vbi_len(nrem) + nrem;
    uint8_t *out = tti_malloc(total), *q = out;
    if (!out) return false;
    *q++ = p[0];
    q = tti_mqtt_vbi_put(q, nrem);
    memcpy(q, p + 1 + a, 10);
    q = tti_mqtt_vbi_put(q + 10, nplen);
    *q++ = TTI_MQTT_PROP_AUTH_DATA;
    *q++ = (uint8_t)(dlen >> 8);
    *q++ = (uint8_t)dlen;
    memcpy(q, data, dlen);
    q += dlen;
    memcpy(q, p + vh + b, c->connect_len - vh - (size_t)b);
    tti_free(c->rare->auth_connect);
    c->rare->auth_connect = out;
    c->rare->auth_connect_len = (uint32_t)total;
    return true;
}

/* Before each connection: the handler's first data goes into CONNECT. */
static bool auth_start_connect(tt_client *c) {
    tti_free(c->rare->auth_connect);
    c->rare->auth_connect = NULL;
    tt_auth_step st = { .stage = TT_AUTH_START };
    char why[200];
    if (!auth_call(c, &st, why, sizeof why)) {
        lost(c, TT_EAUTH, 0, why);
        return false;
    }
    if (st.reply_len && !auth_connect_build(c, st.reply, st.reply_len)) {
        lost(c, TT_ENOMEM, 0, "cannot build CONNECT with the authentication data");
        return false;
    }
    return true;
}

static void reauth_finish(tt_client *c, tt_err rc, int detail, const char *why) {
    tt_future *f = TTI_RARE(c, reauth_f);
    if (!f) return;
    c->rare->reauth_f = NULL;
    (void)tt_promise_complete(tti_future_promise(f), rc, detail, why ? "%s" : NULL, why);
}

/* The handler refused a step: the exchange cannot go on, nor can the connection. */
static void auth_refused(tt_client *c, const char *why) {
    reauth_finish(c, TT_EAUTH, 0, why);
    lost(c, TT_EAUTH, 0, why);
}

static void on_auth_pkt(tt_client *c, const tti_mqtt_pkt *pkt) {
    if (!TTI_RARE(c, auth_method)) {
        lost(c, TT_EPROTO, TTI_MQTT_RC_PROTOCOL_ERROR, "AUTH from the broker, and no authentication method was sent");
        return;
    }
    const tti_mqtt_props *pr = &pkt->props;
    if (!(pr->present & TTI_MQTT_PBIT(TTI_MQTT_PROP_AUTH_METHOD)) || !same_method(c, pr)) {
        lost(c, TT_EPROTO, TTI_MQTT_RC_PROTOCOL_ERROR, "AUTH with another authentication method");
        return;
    }
    bool reauth = c->state == ST_UP && c->rare->reauth_f;
    tt_auth_step st = auth_step(TT_AUTH_CHALLENGE, reauth, pr);
    char why[200];
    if (pkt->reason == TTI_MQTT_RC_CONTINUE_AUTH && (c->state == ST_WAIT_CONNACK || reauth)) {
        if (!auth_call(c, &st, why, sizeof why)) auth_refused(c, why);
        else send_auth(c, TTI_MQTT_RC_CONTINUE_AUTH, st.reply, st.reply_len);
    } else if (pkt->reason == TTI_MQTT_RC_SUCCESS && reauth) {
        st.stage = TT_AUTH_DONE;
        if (!auth_call(c, &st, why, sizeof why)) {
            auth_refused(c, why);
        } else {
            TTI_LOG(DEBUG, "session", "%s: re-authenticated", c->client_id);
            reauth_finish(c, TT_OK, 0, NULL);
        }
    } else {
        snprintf(why, sizeof why, "AUTH (0x%02x) out of turn", pkt->reason);
        lost(c, TT_EPROTO, TTI_MQTT_RC_PROTOCOL_ERROR, why);
    }
}

static void handle_reauth(tt_client *c, tti_req *r) {
    if (!TTI_RARE(c, auth_method)) {
        finish(r, TT_EINVAL, 0, "no authentication method (tt_client_opts.auth_method)");
        return;
    }
    if (c->state != ST_UP || c->disc_sent) {
        finish(r, TT_ECLOSED, 0, "not connected");
        return;
    }
    if (c->rare->reauth_f) {
        if (!tt_future_done(c->rare->reauth_f)) {
            finish(r, TT_EBUSY, 0, "a re-authentication is under way");
            return;
        }
        reauth_finish(c, TT_ETIMEDOUT, 0, NULL);   /* its caller gave up; let it go */
    }
    tt_auth_step st = { .stage = TT_AUTH_START, .reauth = true };
    char why[200];
    if (!auth_call(c, &st, why, sizeof why)) {
        finish(r, TT_EAUTH, 0, why);                /* nothing sent: the connection is fine */
        return;
    }
    c->rare->reauth_f = r->f;
    send_auth(c, TTI_MQTT_RC_REAUTHENTICATE, st.reply, st.reply_len);
}

/* The reason code's name, the broker's reason string and, for "use another
 * server" and "server moved", where it points. */
static const char *reason_text(const tti_mqtt_pkt *pkt, char *buf, size_t n) {
    int k;
    if (pkt->props.present & TTI_MQTT_PBIT(TTI_MQTT_PROP_REASON_STRING))
        k = snprintf(buf, n, "%s (0x%02x): %.*s", tti_mqtt_reason_str(pkt->reason), pkt->reason,
                     (int)pkt->props.reason_string.len, pkt->props.reason_string.ptr);
    else
        k = snprintf(buf, n, "%s (0x%02x)", tti_mqtt_reason_str(pkt->reason), pkt->reason);
    if (k >= 0 && (size_t)k < n && (pkt->props.present & TTI_MQTT_PBIT(TTI_MQTT_PROP_SERVER_REFERENCE)))
        snprintf(buf + k, n - (size_t)k, "; server reference: %.*s", (int)pkt->props.server_reference.len,
                 pkt->props.server_reference.ptr);
    return buf;
}

static void on_connack(tt_client *c, const tti_mqtt_pkt *pkt) {
    if (c->state == ST_UP && TTI_RARE(c, reauth_f) && pkt->reason >= 0x80) {
        /* mosquitto 2.0 answers a refused re-authentication with a CONNACK,
         * where the spec has a DISCONNECT: the same refusal either way. */
        char why[200];
        reason_text(pkt, why, sizeof why);
        reauth_finish(c, TT_EAUTH, pkt->reason, why);
        lost(c, TT_EAUTH, pkt->reason, why);
        return;
    }
    if (c->state != ST_WAIT_CONNACK) {
        lost(c, TT_EPROTO, 0, "CONNACK out of turn");
        return;
    }
    char why[200];
    if (pkt->reason != 0) {
        tt_err e;
        int rc = pkt->reason;
        if (c->version == TTI_MQTT_V5) {
            e = (rc == TTI_MQTT_RC_BAD_USERNAME_PASSWORD || rc == TTI_MQTT_RC_NOT_AUTHORIZED ||
                 rc == TTI_MQTT_RC_BAD_AUTH_METHOD)
                    ? TT_EAUTH
                    : TT_EREFUSED;
            reason_text(pkt, why, sizeof why);
        } else {
            e = (rc == TTI_MQTT_CONNACK_BAD_USERNAME_PASSWORD || rc == TTI_MQTT_CONNACK_NOT_AUTHORIZED)
                    ? TT_EAUTH
                    : TT_EREFUSED;
            snprintf(why, sizeof why, "%s (%d)", tti_mqtt_connack_rc_str((uint8_t)rc), rc);
        }
        /* A refusal is final for the call that asked; no retry loop on bad credentials. */
        if (c->connect_f) c->want_up = false;
        lost(c, e, rc, why);
        return;
    }
    if (TTI_RARE(c, auth_method)) {
        const tti_mqtt_props *pr = &pkt->props;
        if ((pr->present & TTI_MQTT_PBIT(TTI_MQTT_PROP_AUTH_METHOD)) && !same_method(c, pr)) {
            lost(c, TT_EPROTO, TTI_MQTT_RC_PROTOCOL_ERROR, "CONNACK with another authentication method");
            return;
        }
        tt_auth_step st = auth_step(TT_AUTH_DONE, false, pr);
        if (!auth_call(c, &st, why, sizeof why)) {
            lost(c, TT_EAUTH, 0, why);
            return;
        }
    }
    bool sp = pkt->u.connack.session_present;
    c->state = ST_UP;
    c->up_since_ms = mono_ms();
    c->last_rx_ms = c->last_tx_ms = c->up_since_ms;
    c->ping_out = false;
    c->window = c->max_inflight;
    c->server_recv_max = 65535;
    c->server_max_packet = TTI_MQTT_MAX_PACKET;
    c->oa_max = 0;
    c->sub_ids_ok = c->version == TTI_MQTT_V5;
    c->max_qos = 2;
    c->retain_ok = c->wildcard_ok = c->shared_ok = true;
    st_add(&c->st_connects, 1);
    if (c->version == TTI_MQTT_V5) {
        const tti_mqtt_props *pr = &pkt->props;
        if (pr->present & TTI_MQTT_PBIT(TTI_MQTT_PROP_RECEIVE_MAX)) c->server_recv_max = pr->receive_max;
        if (c->server_recv_max < c->window) c->window = c->server_recv_max;
        if (pr->present & TTI_MQTT_PBIT(TTI_MQTT_PROP_MAX_PACKET_SIZE))
            c->server_max_packet = pr->max_packet_size;
        if (pr->present & TTI_MQTT_PBIT(TTI_MQTT_PROP_SERVER_KEEP_ALIVE))
            c->keepalive = pr->server_keep_alive;
        if (pr->present & TTI_MQTT_PBIT(TTI_MQTT_PROP_TOPIC_ALIAS_MAX)) c->oa_max = pr->topic_alias_max;
        if (pr->present & TTI_MQTT_PBIT(TTI_MQTT_PROP_SUB_ID_AVAILABLE))
            c->sub_ids_ok = pr->sub_id_available != 0;
        if (pr->present & TTI_MQTT_PBIT(TTI_MQTT_PROP_MAX_QOS)) c->max_qos = pr->max_qos ? 1 : 0;
        if (pr->present & TTI_MQTT_PBIT(TTI_MQTT_PROP_RETAIN_AVAILABLE))
            c->retain_ok = pr->retain_available != 0;
        if (pr->present & TTI_MQTT_PBIT(TTI_MQTT_PROP_WILDCARD_SUB_AVAILABLE))
            c->wildcard_ok = pr->wildcard_sub_available != 0;
        if (pr->present & TTI_MQTT_PBIT(TTI_MQTT_PROP_SHARED_SUB_AVAILABLE))
            c->shared_ok = pr->shared_sub_available != 0;
    }
    if (c->keepalive) tti_timer_arm(&c->timer, c->keepalive * 1000u / 8u);
    else tti_timer_cancel(&c->timer);
    TTI_LOG(DEBUG, "session", "%s: connected (session present %d)", c->client_id, sp);
    emit(c, TT_EV_CONNECTED, TT_OK, 0, NULL, sp, 0);
    if (c->connect_f) {
        tt_future *f = c->connect_f;
        c->connect_f = NULL;
        tt_promise_set_value(tti_future_promise(f), NULL, NULL, sp ? 1 : 0);
        (void)tt_promise_complete(tti_future_promise(f), TT_OK, 0, NULL);
    }
    resume(c, sp);
}

static void on_ack(tt_client *c, const tti_mqtt_pkt *pkt) {
    void *v = id_get(c, pkt->packet_id);
    char why[200];
    switch (pkt->type) {
    case TTI_MQTT_PUBACK:
    case TTI_MQTT_PUBREC:
    case TTI_MQTT_PUBCOMP: {
        tti_pubreq *p = v;
        if (!p || p->r.msg.type != TTI_REQ_PUBLISH) {
            if (pkt->type == TTI_MQTT_PUBREC)     /* answer so the broker can finish */
                send_simple(c, TTI_MQTT_PUBREL, pkt->packet_id, TTI_MQTT_RC_PACKET_ID_NOT_FOUND);
            TTI_LOG(WARN, "session", "%s: %s for unknown packet id %u", c->client_id,
                    tti_mqtt_type_str(pkt->type), pkt->packet_id);
            return;
        }
        if (pkt->type == TTI_MQTT_PUBREC && p->qos == 2 && p->state == TTI_PUB_SENT) {
            if (pkt->reason >= 0x80) {
                pub_done(c, p, TT_EREFUSED, pkt->reason, reason_text(pkt, why, sizeof why));
            } else {
                p->state = TTI_PUB_RELEASING;
                send_simple(c, TTI_MQTT_PUBREL, pkt->packet_id, 0);
            }
        } else if (pkt->type == TTI_MQTT_PUBREC) {
            send_simple(c, TTI_MQTT_PUBREL, pkt->packet_id, 0);   /* a repeated PUBREC */
        } else if ((pkt->type == TTI_MQTT_PUBACK && p->qos == 1) ||
                   (pkt->type == TTI_MQTT_PUBCOMP && p->qos == 2)) {
            if (pkt->reason >= 0x80) pub_done(c, p, TT_EREFUSED, pkt->reason, reason_text(pkt, why, sizeof why));
            else pub_done(c, p, TT_OK, 0, NULL);
        } else {
            lost(c, TT_EPROTO, 0, "acknowledgement of the wrong kind for a publish");
            return;
        }
        pump(c);
        return;
    }
    case TTI_MQTT_SUBACK:
    case TTI_MQTT_UNSUBACK: {
        tti_subreq *s = v;
        uint32_t want = pkt->type == TTI_MQTT_SUBACK ? TTI_REQ_SUBSCRIBE : TTI_REQ_UNSUBSCRIBE;
        if (!s || s->r.msg.type != want) {
            TTI_LOG(WARN, "session", "%s: %s for unknown packet id %u", c->client_id,
                    tti_mqtt_type_str(pkt->type), pkt->packet_id);
            return;
        }
        id_put(c, pkt->packet_id, NULL);
        size_t n = pkt->u.suback.count;
        if (pkt->type == TTI_MQTT_SUBACK && n != s->n) {
            /* Out of the id table now, so lost() would not fail it: do it here. */
            finish(&s->r, TT_EPROTO, 0, "SUBACK with the wrong number of codes");
            lost(c, TT_EPROTO, 0, "SUBACK with the wrong number of codes");
            return;
        }
        size_t refused = 0;
        uint8_t first_bad = 0;
        for (size_t i = 0; i < s->n; i++) {
            s->codes[i] = i < n ? pkt->u.suback.codes[i] : 0;
            if (s->codes[i] >= 0x80) {
                if (!refused++) first_bad = s->codes[i];
                if (want == TTI_REQ_SUBSCRIBE) sub_remove(c, s->ents[i].filter, s->ents[i].filter_len);
            }
        }
        tt_promise_set_value(tti_future_promise(s->r.f), s->codes, NULL, (int64_t)s->n);
        if (s->n && refused == s->n) {
            snprintf(why, sizeof why, "%s refused: %s (0x%02x)",
                     want == TTI_REQ_SUBSCRIBE ? "subscription" : "unsubscription",
                     tti_mqtt_reason_str(first_bad), first_bad);
            finish(&s->r, TT_EREFUSED, first_bad, why);
        } else {
            finish(&s->r, TT_OK, 0, NULL);
        }
        return;
    }
    default:
        return;
    }
}

static void on_packet(tt_client *c, const tti_mqtt_pkt *pkt) {
    switch (pkt->type) {
    case TTI_MQTT_CONNACK: on_connack(c, pkt); return;
    case TTI_MQTT_PUBLISH:
        if (c->state != ST_UP) break;
        on_publish(c, pkt);
        return;
    case TTI_MQTT_PUBACK:
    case TTI_MQTT_PUBREC:
    case TTI_MQTT_PUBCOMP:
    case TTI_MQTT_SUBACK:
    case TTI_MQTT_UNSUBACK:
        if (c->state != ST_UP) break;
        on_ack(c, pkt);
        return;
    case TTI_MQTT_PUBREL:
        if (c->state != ST_UP) break;
        qos2_mark(c, pkt->packet_id, false);
        send_simple(c, TTI_MQTT_PUBCOMP, pkt->packet_id, 0);
        return;
    case TTI_MQTT_PINGRESP:
        c->ping_out = false;
        tti_req **pp = &c->ping_head;
        while (*pp && (*pp)->msg.type != TTI_REQ_PING) pp = &(*pp)->next;
        if (*pp) {
            tti_req *r = *pp;
            *pp = r->next;
            tt_promise_set_value(tti_future_promise(r->f), NULL, NULL,
                                 (int64_t)(mono_us() - c->ping_sent_us));
            finish(r, TT_OK, 0, NULL);
        }
        return;
    case TTI_MQTT_DISCONNECT: {
        char why[200];
        reason_text(pkt, why, sizeof why);
        if (pkt->reason == TTI_MQTT_RC_NOT_AUTHORIZED || pkt->reason == TTI_MQTT_RC_BAD_AUTH_METHOD)
            reauth_finish(c, TT_EAUTH, pkt->reason, why);
        lost(c, TT_ECONNRESET, pkt->reason, why);
        return;
    }
    case TTI_MQTT_AUTH:
        on_auth_pkt(c, pkt);
        return;
    default:
        break;
    }
    char why[80];
    snprintf(why, sizeof why, "unexpected %s from the broker", tti_mqtt_type_str(pkt->type));
    lost(c, TT_EPROTO, 0, why);
}

static size_t read_packets(tt_client *c, const uint8_t *data, size_t len, size_t *need);

static size_t tr_read(void *ctx, const uint8_t *data, size_t len, size_t *need) {
    tt_client *c = ctx;
    c->last_rx_ms = mono_ms();
    size_t used = read_packets(c, data, len, need);
    if (c->tr) tti_transport_flush(c->tr);  /* the acknowledgements of this read, in one send */
    if (TTI_RARE(c, spool)) spool_sync(c);     /* what the acknowledgements finished */
    if (TTI_RARE(c, in_max)) rx_check(c);
    return used;
}

/* Every complete packet in the input, parsed in place; returns the bytes used. */
static size_t read_packets(tt_client *c, const uint8_t *data, size_t len, size_t *need) {
    size_t off = 0;
    while (len - off >= 2) {
        tti_mqtt_fixed fx;
        const char *why = NULL;
        int r = tti_mqtt_decode_fixed(data + off, len - off, c->version, c->max_packet, &fx, &why);
        if (r < 0) {
            lost(c, TT_EPROTO, TTI_MQTT_RC_MALFORMED_PACKET, why ? why : "malformed packet");
            return off;
        }
        if (r == 0) break;
        if (len - off < fx.total) {
            *need = fx.total;
            break;
        }
        tti_mqtt_pkt pkt;
        r = tti_mqtt_decode(data + off, fx.total, c->version, c->max_packet, &pkt, &why);
        if (r <= 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "malformed %s from the broker: %s", tti_mqtt_type_str(fx.type),
                     why ? why : "?");
            lost(c, TT_EPROTO, TTI_MQTT_RC_MALFORMED_PACKET, msg);
            return off;
        }
        st_add(&c->st_bytes_in, fx.total);
        on_packet(c, &pkt);
        off += fx.total;
        if (!c->tr) break;           /* the connection was dropped */
    }
    flush_rx(c);
    return off;
}

/* ---- Connection life --------------------------------------------------------- */

static void tr_connected(void *ctx) {
    tt_client *c = ctx;
    c->state = ST_WAIT_CONNACK;
    if (TTI_RARE(c, auth_connect)) {
        out_bytes(c, c->rare->auth_connect, c->rare->auth_connect_len);
        tti_free(c->rare->auth_connect);
        c->rare->auth_connect = NULL;
    } else {
        out_bytes(c, c->connect_pkt, c->connect_len);
    }
    tti_transport_flush(c->tr);
}

static void tr_drained(void *ctx) { pump((tt_client *)ctx); }

static void tr_error(void *ctx, tt_err err, int detail, const char *reason) {
    lost((tt_client *)ctx, err, detail, reason);
}

static const tti_transport_cbs tr_cbs = { tr_connected, tr_read, tr_drained, tr_error };

static void start_connect(tt_client *c) {
    tti_transport_opts o;
    memset(&o, 0, sizeof o);
    o.io = tti_loop_io(c->actor.loop);
    o.host = c->host;
    o.port = c->port;
    o.source_addr = tti_client_source(c);
    o.loop = c->actor.loop;
    o.tls = c->tls;
    o.ws = c->ws;
    o.ws_host = c->host;
    o.ws_port = c->port;
    const tti_client_rare *r = c->rare;
    if (r) {
        o.tls_opts = r->tls_opts;
        o.tls_ctx = r->tls_ctx;
        o.ws_path = r->ws_path;
        o.proxy = r->proxy;
        o.proxy_host = r->proxy_host;
        o.proxy_port = r->proxy_port;
        o.proxy_user = r->proxy_user;
        o.proxy_pass = r->proxy_pass;
    }
    c->state = ST_CONNECTING;
    c->disc_sent = false;
    if (r && r->auth_method && !auth_start_connect(c)) return;
    tti_timer_arm(&c->timer, c->connect_timeout_ms);
    tt_err rc = tti_transport_connect(c->actor.loop->base, &o, &tr_cbs, c, &c->tr);
    if (rc != TT_OK) {
        c->tr = NULL;
        lost(c, rc, 0, "cannot start the connection");
    }
}

static void fail_queue(tt_client *c, tt_err err, const char *why) {
    tti_pubreq *p;
    if (c->rare) c->rare->sp_keep = true;  /* the connection or the client is gone, not the messages */
    while ((p = q_pop(c)) != NULL) pub_finish(c, p, err, 0, why);
    while (c->fl_head) pub_done(c, c->fl_head, err, 0, why);
    if (c->rare) c->rare->sp_keep = false;
    while (c->ctl_head) {
        tti_subreq *s = c->ctl_head;
        c->ctl_head = (tti_subreq *)(void *)s->r.next;
        finish(&s->r, err, 0, why);
    }
    c->ctl_tail = NULL;
    if (c->ping_head) flush_check(c);  /* every publish is over, failed */
}

/* Fail the pings (and with `flushes`, the flushes) on the wait list. */
static void fail_waiters(tt_client *c, tt_err err, const char *why, bool flushes) {
    for (tti_req *r = waiters_take(c, flushes ? is_waiter : is_ping), *next; r; r = next) {
        next = r->next;
        finish(r, err, 0, why);
    }
}

/* Fail what waits on a connection that is gone: pings, and sent
 * (un)subscribes. Flushes wait on the publishes, which may outlive it. */
static void fail_transient(tt_client *c, tt_err err, const char *why) {
    fail_waiters(c, err, why, false);
    reauth_finish(c, err, 0, why);
    for (int pg = 0; pg < 256; pg++) {
        for (int i = 0; i < 256 && c->ids && c->ids[pg]; i++) {
            uint16_t id = (uint16_t)(pg << 8 | i);
            void **slot = &c->ids[pg][i];
            tti_req *r = *slot;
            if (r && r->msg.type != TTI_REQ_PUBLISH) {
                id_set(c, id, slot, NULL);
                tti_subreq *s = (tti_subreq *)(void *)r;
                if (c->reconnect && c->want_up && !s->internal) {
                    s->sent = false;           /* resent after the next CONNACK */
                    ctl_push(c, s);
                } else {
                    finish(r, err, 0, why);
                }
            }
        }
    }
}

/* Jitter: xorshift64* per loop thread, seeded from the kernel, so processes
 * started together do not reconnect in step (rand() is the same in every
 * process that never seeds it, and shares one lock). */
static uint64_t jitter_next(void) {
    static _Thread_local uint64_t x;
    if (x == 0) {
        if (getrandom(&x, sizeof x, GRND_NONBLOCK) != (ssize_t)sizeof x || x == 0)
            x = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&x ^ 0x9E3779B97F4A7C15u;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return x * 0x2545F4914F6CDD1Du;
}

static uint32_t backoff_ms(tt_client *c) {
    uint32_t cap = c->backoff_min;
    for (uint32_t i = 1; i < c->attempt && cap < c->backoff_max; i++) cap *= 2;
    if (cap > c->backoff_max) cap = c->backoff_max;
    /* Full jitter above a floor of half the minimum. */
    uint32_t lo = c->backoff_min / 2;
    return lo + (uint32_t)((jitter_next() >> 32) * (uint64_t)(cap - lo + 1) >> 32);
}

static void lost(tt_client *c, tt_err err, int detail, const char *reason_in) {
    char reason[200];                /* reason_in may live in the transport freed below */
    snprintf(reason, sizeof reason, "%s", reason_in ? reason_in : "");
    bool was_up = c->state == ST_UP;
    flush_rx(c);                     /* what arrived before the loss is delivered */
    if (c->tr) {
        tti_transport_free(c->tr);
        c->tr = NULL;
    }
    tti_timer_cancel(&c->timer);
    for (uint16_t i = 0; i < c->in_alias_max; i++) {
        tti_free(c->rare->in_alias[i]);
        c->rare->in_alias[i] = NULL;
    }
    alias_reset(c);                  /* aliases live as long as one connection */
    c->oa_max = 0;
    if (TTI_RARE(c, in_max)) atomic_store(&c->rare->rx_paused, false);   /* the next read decides */
    c->inflight = 0;
    for (tti_pubreq *p = c->fl_head; p; p = (tti_pubreq *)(void *)p->r.next) c->inflight++;
    TTI_LOG(INFO, "session", "%s: connection lost: %s (%s)", c->client_id, reason, tt_err_name(err));
    if (was_up) {
        if (c->disconnect_f) emit(c, TT_EV_DISCONNECTED, TT_OK, 0, "disconnected by the caller", false, 0);
        else emit(c, TT_EV_DISCONNECTED, err, detail, reason, false, 0);
    }
    if (c->connect_f) {
        tt_future *f = c->connect_f;
        c->connect_f = NULL;
        (void)tt_promise_complete(tti_future_promise(f), err, detail, "%s", reason);
        if (err == TT_EAUTH || err == TT_EREFUSED) c->want_up = false;
    }
    fail_transient(c, TT_ECONNRESET, reason);
    if (c->disconnect_f) {
        tt_future *f = c->disconnect_f;
        c->disconnect_f = NULL;
        c->state = ST_IDLE;
        (void)tt_promise_complete(tti_future_promise(f), TT_OK, 0, NULL);
        return;
    }
    if (c->reconnect && c->want_up) {
        /* A session that dropped soon after it came up keeps growing the delay. */
        if (was_up && mono_ms() - c->up_since_ms > 2u * c->backoff_max) c->attempt = 0;
        c->attempt++;
        uint32_t d = backoff_ms(c);
        c->state = ST_BACKOFF;
        emit(c, TT_EV_RECONNECTING, err, detail, reason, false, d);
        tti_timer_arm(&c->timer, d);
        return;
    }
    c->state = ST_IDLE;
    c->want_up = false;
    fail_queue(c, err == TT_OK ? TT_ECLOSED : err, reason);
}

static void retry_fire(tti_timer *t, void *arg) {
    tt_client *c = arg;
    (void)t;
    if (c->state == ST_BACKOFF && c->want_up) start_connect(c);
}

static void conn_timeout(tti_timer *t, void *arg) {
    tt_client *c = arg;
    (void)t;
    if (c->state == ST_CONNECTING || c->state == ST_WAIT_CONNACK) {
        char why[80];
        snprintf(why, sizeof why, "no connection within %u ms", c->connect_timeout_ms);
        lost(c, TT_ETIMEDOUT, 0, why);
    }
}

/* Keepalive: tick every keepalive/8; PINGREQ when idle; dead when nothing
 * arrived for 1.25 x keepalive (detected within 1.375 x). */
static void ka_tick(tti_timer *t, void *arg) {
    tt_client *c = arg;
    if (c->state != ST_UP || !c->keepalive) return;
    uint64_t now = mono_ms(), ka = c->keepalive * 1000u;
    if (c->tx_mark) {                /* sent since the last tick (within ka/8) */
        c->tx_mark = false;
        c->last_tx_ms = now;
    }
    if (now - c->last_rx_ms > ka + ka / 4 && !(c->rare && atomic_load(&c->rare->rx_paused))) {
        lost(c, TT_ETIMEDOUT, TTI_MQTT_RC_KEEP_ALIVE_TIMEOUT, "keepalive: the broker stopped answering");
        return;
    }
    if (!c->ping_out && (now - c->last_tx_ms >= ka * 3 / 4 || now - c->last_rx_ms >= ka / 2)) {
        static const uint8_t ping[2] = { 0xC0, 0x00 };
        out_bytes(c, ping, 2);
        tti_transport_flush(c->tr);
        c->ping_out = true;
        c->ping_sent_us = mono_us();
    }
    tti_timer_arm(t, (uint32_t)(ka / 8 ? ka / 8 : 1));
}

/* ---- Requests from the API ----------------------------------------------------- */

static void handle_connect(tt_client *c, tti_req *r) {
    if (c->connect_f || c->state == ST_UP || c->state == ST_CONNECTING || c->state == ST_WAIT_CONNACK) {
        finish(r, TT_EBUSY, 0, c->state == ST_UP ? "already connected" : "already connecting");
        return;
    }
    c->connect_f = r->f;
    c->want_up = true;
    c->attempt = 0;
    if (c->state == ST_BACKOFF) tti_timer_cancel(&c->timer);
    start_connect(c);
}

static void handle_disconnect(tt_client *c, tti_req *r) {
    c->want_up = false;
    if (c->state == ST_BACKOFF) tti_timer_cancel(&c->timer);
    if (c->state != ST_UP) {
        if (c->tr) lost(c, TT_ECLOSED, 0, "disconnected by the caller");
        c->state = ST_IDLE;
        finish(r, TT_OK, 0, NULL);
        return;
    }
    /* What this turn queued goes before the DISCONNECT (QoS 0 completes as
     * written: after the DISCONNECT the broker would drop it); nothing is
     * written after it. */
    if (c->pump_pending) {
        c->pump_pending = false;
        pump(c);
    }
    uint8_t d[2] = { 0xE0, 0x00 };
    out_bytes(c, d, 2);
    tti_transport_flush(c->tr);
    c->disc_sent = true;
    c->disconnect_f = r->f;
    /* The broker closes after DISCONNECT; the transport reports it. Until then
     * keep the state so the socket flushes. */
}

static void handle_publish(tt_client *c, tti_pubreq *p) {
    atomic_fetch_sub_explicit(&c->queued_ops, 1, memory_order_relaxed);
    if (tt_promise_abandoned(tti_future_promise(p->r.f))) {
        uncount(c, p);
        (void)tt_promise_complete(tti_future_promise(p->r.f), TT_ECANCELED, 0, NULL);
        return;
    }
    if (c->state != ST_UP && !(c->reconnect && c->want_up)) {
        uncount(c, p);
        finish(&p->r, TT_ECLOSED, 0, "not connected");
        return;
    }
    if (c->state != ST_UP || c->q_head) {
        /* Offline (or behind others): bounded by bytes. */
        while (c->q_bytes + p->len > c->offline_max) {
            if (c->overflow == TT_OVERFLOW_DROP_OLDEST && c->q_head) {
                tti_pubreq *old = q_pop(c);
                pub_finish(c, old, TT_EAGAIN, 0, "dropped from the full offline queue");
            } else {
                char why[120];
                snprintf(why, sizeof why, "offline queue full (%zu of %zu bytes)", c->q_bytes, c->offline_max);
                uncount(c, p);
                finish(&p->r, TT_EAGAIN, 0, why);
                return;
            }
        }
    }
    if (p->qos && TTI_RARE(c, spool)) p->sseq = tti_spool_add(c->rare->spool, p->data, p->len);
    q_push(c, p);
    c->pump_pending = true;          /* at the end of the turn, with the others */
}

/* End of an actor turn: write what the turn's publishes queued, in one go. */
void tti_session_turn_end(tt_client *c);
void tti_session_turn_end(tt_client *c) {
    if (TTI_RARE(c, spool)) spool_sync(c);     /* on disk before on the wire */
    if (!c->pump_pending) return;
    c->pump_pending = false;
    pump(c);
}

static void handle_sub(tt_client *c, tti_subreq *s) {
    atomic_fetch_sub_explicit(&c->queued_ops, 1, memory_order_relaxed);
    bool unsub = s->r.msg.type == TTI_REQ_UNSUBSCRIBE;
    for (size_t i = 0; i < s->n; i++) {
        if (unsub) sub_remove(c, s->ents[i].filter, s->ents[i].filter_len);
        else (void)sub_set(c, &s->ents[i]);
    }
    if (c->state == ST_UP) {
        send_subreq(c, s);
        tti_transport_flush(c->tr);
    } else if (c->reconnect && c->want_up) {
        ctl_push(c, s);              /* sent after CONNACK */
    } else {
        finish(&s->r, TT_ECLOSED, 0, "not connected");
    }
}

/* A new window: the next connection uses it, and this one at once (within
 * the broker's Receive Maximum). A larger one lets queued publishes go now; a
 * smaller one holds new ones until enough are acknowledged. */
static void handle_window(tt_client *c, tti_winreq *w) {
    c->max_inflight = w->n;
    if (c->state == ST_UP) {
        c->window = w->n < c->server_recv_max ? w->n : c->server_recv_max;
        c->pump_pending = true;
    }
    finish(&w->r, TT_OK, 0, NULL);
}

static void handle_flush(tt_client *c, tti_req *r) {
    /* Flushes whose callers gave up (deadline, cancel) leave first, so a
     * caller that keeps timing out while the broker is away grows nothing. */
    for (tti_req *w = waiters_take(c, is_abandoned_flush), *next; w; w = next) {
        next = w->next;
        finish(w, TT_ETIMEDOUT, 0, NULL);      /* gives up the producer's reference */
    }
    waiter_append(c, r);
    flush_check(c);
}

static void handle_ping(tt_client *c, tti_req *r) {
    if (c->state != ST_UP) {
        finish(r, TT_ECLOSED, 0, "not connected");
        return;
    }
    waiter_append(c, r);
    static const uint8_t ping[2] = { 0xC0, 0x00 };
    out_bytes(c, ping, 2);
    tti_transport_flush(c->tr);
    c->ping_out = true;
    c->ping_sent_us = mono_us();
}

void tti_session_dispatch(tt_client *c, tti_msg *m) {
    if (m->type == TTI_REQ_RESUME_RX) {
        tti_client_rare *rr = c->rare;
        atomic_store(&rr->resume_posted, false);
        if (atomic_load(&rr->rx_paused) && atomic_load(&rr->in_bytes) <= rr->in_max / 2) rx_resume(c);
        return;
    }
    tti_req *r = TTI_CONTAINER_OF(m, tti_req, msg);
    /* Publishes before any other call are in the queue file by the time that
     * call completes (a ping, say, is a barrier a caller can wait on). */
    if (m->type != TTI_REQ_PUBLISH && TTI_RARE(c, spool)) spool_sync(c);
    switch (m->type) {
    case TTI_REQ_CONNECT: handle_connect(c, r); break;
    case TTI_REQ_DISCONNECT: handle_disconnect(c, r); break;
    case TTI_REQ_PUBLISH: handle_publish(c, (tti_pubreq *)(void *)r); break;
    case TTI_REQ_SUBSCRIBE:
    case TTI_REQ_UNSUBSCRIBE: handle_sub(c, (tti_subreq *)(void *)r); break;
    case TTI_REQ_PING: handle_ping(c, r); break;
    case TTI_REQ_WINDOW: handle_window(c, (tti_winreq *)(void *)r); break;
    case TTI_REQ_FLUSH: handle_flush(c, r); break;
    case TTI_REQ_REAUTH: handle_reauth(c, r); break;
    default: finish(r, TT_EINVAL, 0, "unknown request"); break;
    }
}

void tti_session_drop(tt_client *c, tti_msg *m) {
    if (m->type == TTI_REQ_RESUME_RX) return;    /* the rare block's own: nothing to fail */
    if (m->type == TTI_REQ_PUBLISH) uncount(c, (tti_pubreq *)(void *)TTI_CONTAINER_OF(m, tti_req, msg));
    if (m->type == TTI_REQ_PUBLISH || m->type == TTI_REQ_SUBSCRIBE || m->type == TTI_REQ_UNSUBSCRIBE)
        atomic_fetch_sub_explicit(&c->queued_ops, 1, memory_order_relaxed);
    finish(TTI_CONTAINER_OF(m, tti_req, msg), TT_ECLOSED, 0, "client closed");
}

/* The actor's stop: close without DISCONNECT (so a will is published), fail
 * everything still pending. */
void tti_session_stopped(tt_client *c) {
    c->want_up = false;
    if (c->tr) {
        tti_transport_free(c->tr);
        c->tr = NULL;
    }
    alias_reset(c);
    c->state = ST_DEAD;
    if (c->connect_f) {
        (void)tt_promise_complete(tti_future_promise(c->connect_f), TT_ECLOSED, 0, "client closed");
        c->connect_f = NULL;
    }
    if (c->disconnect_f) {
        (void)tt_promise_complete(tti_future_promise(c->disconnect_f), TT_OK, 0, NULL);
        c->disconnect_f = NULL;
    }
    c->reconnect = false;
    fail_waiters(c, TT_ECLOSED, "client closed", true);
    fail_transient(c, TT_ECLOSED, "client closed");
    fail_queue(c, TT_ECLOSED, "client closed");
    if (c->rare) {
        tti_spool_close(c->rare->spool);  /* its publishes stay in it; the file is free again */
        c->rare->spool = NULL;
    }
    tti_timer_fini(&c->timer);
    if (c->pl) {
        pthread_mutex_lock(&c->pl->lock);
        c->pl->closed = true;
        pthread_cond_broadcast(&c->pl->cond);
        pthread_mutex_unlock(&c->pl->lock);
    }
}

/* One timer per client: the connect deadline while connecting, the
 * keepalive tick while up, the retry delay while backing off. */
static void on_timer(tti_timer *t, void *arg) {
    tt_client *c = arg;
    switch (c->state) {
    case ST_UP: ka_tick(t, arg); break;
    case ST_BACKOFF: retry_fire(t, arg); break;
    case ST_CONNECTING:
    case ST_WAIT_CONNACK: conn_timeout(t, arg); break;
    default: break;
    }
}

void tti_session_init_timer(tt_client *c);
void tti_session_init_timer(tt_client *c) { tti_timer_init(&c->timer, &c->actor, on_timer, c); }
