/* The plain MQTT client API (include/tether/mqtt.h): turns calls into
 * requests for the session actor (actors/session). Inputs are validated and
 * encoded here, on the caller's thread, so the loop only moves bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/mqtt.h>
#include <time.h>

#include "actors/core/alloc.h"
#include "actors/core/log.h"
#include "actors/core/random.h"
#include "actors/pool.h"
#include "actors/session/session.h"
#include "actors/session/spool.h"
#include "codecs/mqtt/mqtt_codec.h"
#include "codecs/mqtt/mqtt_internal.h"
#include "platforms/mqtt/request.h"
#include "transport/proxy.h"
#include "transport/tls.h"

void tti_session_dispatch(tt_client *c, tti_msg *m);
void tti_session_drop(tt_client *c, tti_msg *m);
void tti_session_stopped(tt_client *c);
void tti_session_init_timer(tt_client *c);
void tti_session_turn_end(tt_client *c);

/* ---- The actor ----------------------------------------------------------- */

static void c_handle(tti_actor *a, tti_msg *m) {
    tti_session_dispatch(TTI_CONTAINER_OF(a, tt_client, actor), m);
}
static void c_drop(tti_actor *a, tti_msg *m) {
    tti_session_drop(TTI_CONTAINER_OF(a, tt_client, actor), m);
}

typedef struct close_cb {
    tti_cb cb;
    tt_future *f;
} close_cb;

static void run_close(tti_cb *cb) {
    close_cb *x = TTI_CONTAINER_OF(cb, close_cb, cb);
    (void)tt_promise_complete(tti_future_promise(x->f), TT_OK, 0, NULL);
    tti_free(x);
}

static void c_stopped(tti_actor *a) {
    tt_client *c = TTI_CONTAINER_OF(a, tt_client, actor);
    tti_session_stopped(c);
    if (TTI_RARE(c, rq)) tti_reqtab_close(c->rare->rq);
    /* The close future completes after every callback queued so far. */
    close_cb *x = tti_malloc(sizeof *x);
    tt_future *f = c->close_f;
    c->close_f = NULL;
    if (x && f) {
        x->cb.run = run_close;
        x->f = f;
        tti_strand_post(&c->strand, &x->cb);
    } else {
        tti_free(x);
        if (f) (void)tt_promise_complete(tti_future_promise(f), TT_OK, 0, NULL);
    }
    tti_actor_stop(&c->strand);
}

static void free_subent(void *value, void *arg) {
    (void)arg;
    tti_subent *s = value;
    tti_free(s->filter);
    tti_free(s);
}

/* The rare options' block, and what the loop hung on it. */
static void free_rare(tti_client_rare *r, uint16_t in_alias_max) {
    if (!r) return;
    tti_free(r->ws_path);
    tti_free(r->proxy_host);
    tti_free(r->proxy_user);
    if (r->proxy_pass) memset(r->proxy_pass, 0, strlen(r->proxy_pass));
    tti_free(r->proxy_pass);
    if (r->tls_opts) {
        tti_free((void *)r->tls_opts->ca_file);
        tti_free((void *)r->tls_opts->ca_dir);
        tti_free((void *)r->tls_opts->cert_file);
        tti_free((void *)r->tls_opts->key_file);
        tti_free((void *)r->tls_opts->sni);
        tti_free((void *)r->tls_opts->alpn);
        tti_free(r->tls_opts);
    }
    if (r->tls_ctx) tti_tls_ctx_unref(r->tls_ctx);
    tti_free(r->auth_method);
    tti_free(r->auth_connect);
    tti_reqtab_free(r->rq);
    if (r->in_alias) {
        for (uint16_t i = 0; i < in_alias_max; i++) tti_free(r->in_alias[i]);
        tti_free(r->in_alias);
    }
    /* The session's stop already closed the queue file and emptied the
     * outbound alias table (tti_session_stopped). */
    tti_free(r);
}

/* The copies tt_client_new() made of the options. */
static void free_config(tt_client *c) {
    if (c->packed) {
        tti_free(c->connect_pkt);
    } else {
        tti_free(c->host);
        tti_free(c->client_id);
        tti_free(c->connect_pkt);
    }
    free_rare(c->rare, c->in_alias_max);
    c->rare = NULL;
}

/* Host, client id, CONNECT and the source address into one block: three or
 * four allocations become one for every idle client. A load test with
 * thousands of clients spread over source addresses pays no more per
 * client than one string. */
static tt_err pack_strings(tt_client *c, const char *source) {
    size_t hl = strlen(c->host) + 1, il = strlen(c->client_id) + 1, sl = source ? strlen(source) + 1 : 0;
    uint8_t *b = tti_malloc(c->connect_len + hl + il + sl);
    if (!b) return TT_ENOMEM;
    memcpy(b, c->connect_pkt, c->connect_len);
    char *h = (char *)b + c->connect_len;
    memcpy(h, c->host, hl);
    memcpy(h + hl, c->client_id, il);
    if (sl) memcpy(h + hl + il, source, sl);
    c->has_source = sl != 0;
    tti_free(c->connect_pkt);
    tti_free(c->host);
    tti_free(c->client_id);
    c->connect_pkt = b;
    c->host = h;
    c->client_id = h + hl;
    c->packed = true;
    return TT_OK;
}

static void free_pull(tt_client *c) {
    tti_pull *pl = c->pl;
    if (!pl) return;
    while (pl->head) {
        tt_msg *m = pl->head;
        pl->head = m->pull_next;
        tti_blk_free(m);                /* its reference on us is the one going away */
    }
    pthread_cond_destroy(&pl->cond);
    pthread_mutex_destroy(&pl->lock);
    tti_free(pl);
    c->pl = NULL;
}

static void c_destroy(tti_actor *a) {
    tt_client *c = TTI_CONTAINER_OF(a, tt_client, actor);
    tti_trie_fini(&c->subs, free_subent, NULL);
    if (c->ids)
        for (int i = 0; i < 256; i++) tti_free(c->ids[i]);
    tti_free(c->ids);
    free_pull(c);
    tti_free(c->qos2_rx);
    free_config(c);
    tti_actor_release(&c->strand);    /* the last reference frees the block */
}

/* Thousands of idle clients pay for every byte: 600 bytes (a 608-byte glibc
 * chunk) on 64-bit Linux, strand included. */
_Static_assert(sizeof(void *) != 8 || sizeof(tt_client) <= 600, "tt_client grew");

static void strand_gone(tti_actor *a) { tti_free(TTI_CONTAINER_OF(a, tt_client, strand)); }

static const tti_actor_ops strand_ops = {
    .handle = tti_strand_handle,
    .drop = tti_strand_handle,
    .destroy = strand_gone,
};

static void c_turn_end(tti_actor *a) { tti_session_turn_end(TTI_CONTAINER_OF(a, tt_client, actor)); }

static const tti_actor_ops client_ops = { c_handle, c_drop, c_stopped, c_destroy, c_turn_end };

static void c_abort_io(tti_member *m) {
    tt_client *c = TTI_CONTAINER_OF(m, tt_client, member);
    atomic_store(&c->closing, true);
    tti_actor_abort(&c->actor);
}

/* ---- Creation -------------------------------------------------------------- */

static tt_err parse_url(const char *url, char **host, uint16_t *port, bool *tls, bool *ws,
                        char **path) {
    const char *p = url;
    uint16_t def;
    *tls = *ws = false;
    if (!strncmp(p, "mqtt://", 7)) p += 7, def = 1883;
    else if (!strncmp(p, "tcp://", 6)) p += 6, def = 1883;
    else if (!strncmp(p, "mqtts://", 8)) p += 8, def = 8883, *tls = true;
    else if (!strncmp(p, "ssl://", 6)) p += 6, def = 8883, *tls = true;
    else if (!strncmp(p, "ws://", 5)) p += 5, def = 80, *ws = true;
    else if (!strncmp(p, "wss://", 6)) p += 6, def = 443, *ws = *tls = true;
    else if (strstr(p, "://")) return TT_EINVAL;
    else def = 1883;
    const char *hs = p, *he;
    if (*p == '[') {                 /* [v6]:port */
        hs = ++p;
        he = strchr(p, ']');
        if (!he) return TT_EINVAL;
        p = he + 1;
    } else {
        he = p + strcspn(p, ":/");
        p = he;
    }
    if (he == hs) return TT_EINVAL;
    unsigned long pt = def;
    if (*p == ':') {
        char *end;
        pt = strtoul(p + 1, &end, 10);
        if (end == p + 1 || pt == 0 || pt > 65535) return TT_EINVAL;
        p = end;
    }
    if (*p && *p != '/') return TT_EINVAL;
    if (*ws && *p && !(*path = tti_strdup(p))) return TT_ENOMEM;
    *host = tti_strndup(hs, (size_t)(he - hs));
    if (!*host) return TT_ENOMEM;
    *port = (uint16_t)pt;
    return TT_OK;
}

static char *dup_opt(const char *s) { return s ? tti_strdup(s) : NULL; }

static bool props_valid(const tt_user_prop *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!p[i].key || !p[i].value || !tti_mqtt_utf8_valid(p[i].key, strlen(p[i].key)) ||
            !tti_mqtt_utf8_valid(p[i].value, strlen(p[i].value)))
            return false;
    return true;
}

static tti_mqtt_user_prop *conv_props(const tt_user_prop *p, size_t n, tti_mqtt_user_prop *small,
                                      size_t nsmall) {
    tti_mqtt_user_prop *a = n <= nsmall ? small : tti_calloc(n, sizeof *a);
    if (!a) return NULL;
    for (size_t i = 0; i < n; i++) {
        a[i].key = (tti_mqtt_str){ p[i].key, strlen(p[i].key) };
        a[i].value = (tti_mqtt_str){ p[i].value, strlen(p[i].value) };
    }
    return a;
}

static tt_err build_connect(tt_client *c, const tt_client_opts *o) {
    tti_mqtt_pkt pkt;
    memset(&pkt, 0, sizeof pkt);
    pkt.type = TTI_MQTT_CONNECT;
    tti_mqtt_connect *k = &pkt.u.connect;
    k->clean_start = !o->persistent_session;
    k->keep_alive = c->keepalive;
    k->client_id = (tti_mqtt_str){ c->client_id, strlen(c->client_id) };
    if (o->username) {
        k->has_username = true;
        k->username = (tti_mqtt_str){ o->username, strlen(o->username) };
    }
    if (o->password) {
        k->has_password = true;
        k->password = (tti_mqtt_bin){ o->password, o->password_len ? o->password_len
                                                                   : strlen((const char *)o->password) };
    }
    tti_mqtt_user_prop small[8], wsmall[8];
    tti_mqtt_user_prop *up = NULL, *wup = NULL;
    const tt_will *w = o->will;
    if (w) {
        if (!w->topic || !tti_mqtt_topic_valid(w->topic, strlen(w->topic)) || w->qos > 2) return TT_EINVAL;
        k->will = true;
        k->will_qos = (uint8_t)w->qos;
        k->will_retain = w->retain;
        k->will_topic = (tti_mqtt_str){ w->topic, strlen(w->topic) };
        k->will_payload = (tti_mqtt_bin){ w->payload, w->payload_len };
        if (c->version == TTI_MQTT_V5) {
            tti_mqtt_props *wp = &k->will_props;
            if (w->delay_s) wp->present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_WILL_DELAY), wp->will_delay = w->delay_s;
            if (w->expiry_s)
                wp->present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_MESSAGE_EXPIRY), wp->message_expiry = w->expiry_s;
            if (w->payload_utf8)
                wp->present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_PAYLOAD_FORMAT), wp->payload_format = 1;
            if (w->content_type) {
                wp->present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_CONTENT_TYPE);
                wp->content_type = (tti_mqtt_str){ w->content_type, strlen(w->content_type) };
            }
            if (w->response_topic) {
                wp->present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_RESPONSE_TOPIC);
                wp->response_topic = (tti_mqtt_str){ w->response_topic, strlen(w->response_topic) };
            }
            if (w->correlation) {
                wp->present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_CORRELATION_DATA);
                wp->correlation_data = (tti_mqtt_bin){ w->correlation, w->correlation_len };
            }
            if (w->nprops) {
                if (!props_valid(w->props, w->nprops)) return TT_EINVAL;
                wup = conv_props(w->props, w->nprops, wsmall, 8);
                if (!wup) return TT_ENOMEM;
                wp->present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_USER_PROPERTY);
                wp->user_props = wup;
                wp->user_prop_count = w->nprops;
            }
        } else if (w->delay_s || w->expiry_s || w->content_type || w->response_topic || w->correlation ||
                   w->nprops || w->payload_utf8) {
            return TT_EINVAL;        /* MQTT 5 fields on a 3.1.1 client */
        }
    }
    if (c->version == TTI_MQTT_V5) {
        tti_mqtt_props *pp = &pkt.props;
        if (o->persistent_session) {
            pp->present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_SESSION_EXPIRY);
            pp->session_expiry = o->session_expiry_s ? o->session_expiry_s : 0xFFFFFFFFu;
        }
        if (o->receive_maximum) {
            pp->present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_RECEIVE_MAX);
            pp->receive_max = o->receive_maximum;
        }
        pp->present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_MAX_PACKET_SIZE);
        pp->max_packet_size = c->max_packet;
        if (o->auth_method) {        /* its data, made per connection, is spliced in */
            pp->present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_AUTH_METHOD);
            pp->auth_method = (tti_mqtt_str){ o->auth_method, strlen(o->auth_method) };
        }
        if (c->in_alias_max) {
            pp->present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_TOPIC_ALIAS_MAX);
            pp->topic_alias_max = c->in_alias_max;
        }
        if (o->nconnect_props) {
            if (!props_valid(o->connect_props, o->nconnect_props)) {
                if (wup != wsmall) tti_free(wup);
                return TT_EINVAL;
            }
            up = conv_props(o->connect_props, o->nconnect_props, small, 8);
            if (!up) {
                if (wup != wsmall) tti_free(wup);
                return TT_ENOMEM;
            }
            pp->present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_USER_PROPERTY);
            pp->user_props = up;
            pp->user_prop_count = o->nconnect_props;
        }
    } else if (o->nconnect_props || o->session_expiry_s || o->receive_maximum || o->topic_alias_maximum ||
               o->auth_method || o->on_auth) {
        return TT_EINVAL;
    }
    const char *why = NULL;
    tt_err rc = TT_OK;
    int len = tti_mqtt_encoded_len(&pkt, c->version, &why);
    if (len <= 0) rc = TT_EINVAL;
    else if (!(c->connect_pkt = tti_malloc((size_t)len))) rc = TT_ENOMEM;
    else if (tti_mqtt_encode(&pkt, c->version, c->connect_pkt, (size_t)len, &why) != len) rc = TT_EINVAL;
    else c->connect_len = (uint32_t)len;
    if (rc == TT_EINVAL) TTI_LOG(WARN, "client", "cannot encode CONNECT: %s", why ? why : "?");
    if (up && up != small) tti_free(up);
    if (wup && wup != wsmall) tti_free(wup);
    return rc;
}

tt_err tt_client_new(tt_runtime *rt, const tt_client_opts *user_opts, tt_client **out) {
    if (!out) return TT_EINVAL;
    *out = NULL;
    if (!rt || !user_opts || !user_opts->url) return TT_EINVAL;
    tt_client_opts o = TT_OPTS_INIT(tt_client_opts);
    memcpy(&o, user_opts, user_opts->size < sizeof o ? user_opts->size : sizeof o);
    if (user_opts->size < offsetof(tt_client_opts, client_id)) return TT_EINVAL;
    if (o.version && o.version != TT_MQTT_311 && o.version != TT_MQTT_5) return TT_EINVAL;

    tt_client *c = tti_calloc(1, sizeof *c);
    if (!c) return TT_ENOMEM;
    tti_trie_init(&c->subs);
    char *ws_path = NULL;
    tt_err rc = parse_url(o.url, &c->host, &c->port, &c->tls, &c->ws, &ws_path);
    if (rc == TT_OK && o.tls) c->tls = true;
    c->version = o.version ? (uint8_t)o.version : TTI_MQTT_V311;
    c->out_alias = c->version == TTI_MQTT_V5 && o.outbound_topic_aliases;
    c->in_alias_max = c->version == TTI_MQTT_V5 ? o.topic_alias_maximum : 0;
    if (o.auth_method && !*o.auth_method) o.auth_method = NULL;
    if (rc == TT_OK && o.on_auth && !o.auth_method) rc = TT_EINVAL;   /* a handler for no method */
    if (o.response_topic && !*o.response_topic) o.response_topic = NULL;
    if (rc == TT_OK && (ws_path || o.proxy || c->tls || o.offline_queue_file ||
                        c->in_alias_max || c->out_alias || o.auth_method || o.response_topic ||
                        o.inbound_queue_bytes) &&
        !(c->rare = tti_calloc(1, sizeof *c->rare)))
        rc = TT_ENOMEM;
    if (c->rare) c->rare->ws_path = ws_path;
    else tti_free(ws_path);
    tti_client_rare *r = c->rare;
    c->keepalive = o.keepalive_s == TT_KEEPALIVE_OFF ? 0 : (o.keepalive_s ? o.keepalive_s : 60);
    c->max_packet = o.max_packet_size ? o.max_packet_size : 16u << 20;
    c->max_inflight = o.max_inflight ? o.max_inflight : 65535;
    c->connect_timeout_ms = o.connect_timeout_ms ? o.connect_timeout_ms : 10000;
    c->op_timeout_ms = o.op_timeout_ms;
    c->reconnect = !o.no_reconnect;
    c->backoff_min = o.backoff_min_ms ? o.backoff_min_ms : 250;
    c->backoff_max = o.backoff_max_ms ? o.backoff_max_ms : 30000;
    if (c->backoff_max < c->backoff_min) c->backoff_max = c->backoff_min;
    c->offline_max = o.offline_queue_bytes ? o.offline_queue_bytes : 1u << 20;
    c->overflow = (uint8_t)o.overflow;
    c->max_queued_ops = !o.max_queued_ops ? 1000000u : o.max_queued_ops > UINT32_MAX ? UINT32_MAX : (uint32_t)o.max_queued_ops;
    c->on_message = o.on_message;
    c->on_message_arg = o.on_message_arg;
    c->on_event = o.on_event;
    c->on_event_arg = o.on_event_arg;
    c->pull = o.pull;
    if (o.pull) {
        if ((c->pl = tti_calloc(1, sizeof *c->pl)) != NULL) {
            pthread_mutex_init(&c->pl->lock, NULL);
            pthread_cond_init(&c->pl->cond, NULL);
        } else {
            rc = TT_ENOMEM;
        }
    }
    c->persistent = o.persistent_session;
    if (rc == TT_OK && c->in_alias_max && !(r->in_alias = tti_calloc(c->in_alias_max, sizeof(char *))))
        rc = TT_ENOMEM;
    if (rc == TT_OK && o.auth_method) {
        if (c->version != TTI_MQTT_V5 || !tti_mqtt_utf8_valid(o.auth_method, strlen(o.auth_method)))
            rc = TT_EINVAL;
        else if (!(r->auth_method = tti_strdup(o.auth_method)))
            rc = TT_ENOMEM;
        r->on_auth = o.on_auth;
        r->on_auth_arg = o.on_auth_arg;
    }
    if (rc == TT_OK && o.inbound_queue_bytes) {
        r->in_max = o.inbound_queue_bytes;
        atomic_init(&r->in_bytes, 0);
        atomic_init(&r->rx_paused, false);
        atomic_init(&r->resume_posted, false);
    }
    if (rc == TT_OK && o.response_topic) {
        size_t n = strlen(o.response_topic);
        if (c->version != TTI_MQTT_V5 || o.pull || n > 65535 || strpbrk(o.response_topic, "+#") ||
            !tti_mqtt_utf8_valid(o.response_topic, n))
            rc = TT_EINVAL;
        else if (!(r->rq = tti_reqtab_new(o.response_topic)) ||
                 tti_session_preset_sub(c, o.response_topic, TT_QOS1, tti_reqtab_on_response, r->rq) != TT_OK)
            rc = TT_ENOMEM;
    }
    if (rc == TT_OK && o.proxy) {
        tti_proxy_kind kind;
        rc = tti_proxy_parse_url(o.proxy, &kind, &r->proxy_host, &r->proxy_port, &r->proxy_user, &r->proxy_pass);
        r->proxy = rc == TT_OK ? (int)kind : 0;
    }
    if (rc == TT_OK && o.tls) {
        tt_tls_opts *t = r->tls_opts = tti_calloc(1, sizeof *t);
        if (!t) {
            rc = TT_ENOMEM;
        } else {
            t->size = sizeof *t;
            t->ca_file = dup_opt(o.tls->ca_file);
            t->ca_dir = dup_opt(o.tls->ca_dir);
            t->cert_file = dup_opt(o.tls->cert_file);
            t->key_file = dup_opt(o.tls->key_file);
            t->sni = dup_opt(o.tls->sni);
            t->alpn = dup_opt(o.tls->alpn);
            t->insecure = o.tls->insecure;
        }
    }
    if (rc == TT_OK) {
        if (o.client_id && *o.client_id) {
            if (!tti_mqtt_utf8_valid(o.client_id, strlen(o.client_id))) rc = TT_EINVAL;
            else if (!(c->client_id = tti_strdup(o.client_id))) rc = TT_ENOMEM;
        } else {
            uint8_t rnd[8];
            if (!tti_random_fill(rnd, sizeof rnd)) {
                uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)c;
                memcpy(rnd, &t, sizeof rnd);
            }
            char id[24];
            snprintf(id, sizeof id, "tt-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
                     rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
            if (!(c->client_id = tti_strdup(id))) rc = TT_ENOMEM;
        }
    }
    if (rc == TT_OK && c->tls) {
        /* Certificates and keys are read now, so a bad path fails here. */
        char why[TTI_TLS_REASON_MAX];
        tt_err terr = TT_OK;
        tt_tls_opts none = TT_OPTS_INIT(tt_tls_opts);
        r->tls_ctx = tti_tls_ctx_new(r->tls_opts ? r->tls_opts : &none, 0, &terr, why, sizeof why);
        if (!r->tls_ctx) {
            TTI_LOG(ERROR, "client", "TLS set-up failed: %s", why);
            rc = terr != TT_OK ? terr : TT_ETLS;
        }
    }
    if (rc == TT_OK) rc = build_connect(c, &o);
    if (rc == TT_OK) rc = pack_strings(c, o.source_addr && *o.source_addr ? o.source_addr : NULL);
    tti_loop *loop = rc == TT_OK ? tti_runtime_pick_io(rt) : NULL;
    if (rc == TT_OK && !loop) rc = TT_ECLOSED;
    bool strand_ok = rc == TT_OK && tti_strand_init(&c->strand, rt, &strand_ops);
    if (rc == TT_OK && !strand_ok) rc = TT_ECLOSED;
    if (rc == TT_OK && o.offline_queue_file) {
        char why[320] = "";
        rc = tti_session_restore(c, o.offline_queue_file, why, sizeof why);
        if (rc != TT_OK) TTI_LOG(ERROR, "client", "queue file: %s", *why ? why : tt_strerror(rc));
    }
    if (rc != TT_OK) {
        /* Not an actor yet: free by hand. */
        tti_trie_fini(&c->subs, free_subent, NULL);
        free_config(c);
        free_pull(c);
        if (strand_ok) tti_strand_free(&c->strand);   /* frees the block */
        else tti_free(c);
        return rc;
    }
    tti_actor_init(&c->actor, loop, &client_ops);
    tti_session_init_timer(c);
    static const tti_member_ops member_ops = { .abort_io = c_abort_io };
    c->member.ops = &member_ops;
    if (tti_runtime_add_member(rt, &c->member) != TT_OK) {
        tti_actor_stop(&c->actor);
        tti_actor_release(&c->actor);
        return TT_ECLOSED;
    }
    *out = c;
    return TT_OK;
}

const char *tt_client_id(const tt_client *c) { return c ? c->client_id : NULL; }

/* ---- Requests ------------------------------------------------------------------ */

static tt_future *failed(tt_client *c, tt_err rc, const char *why) {
    return tti_future_failed(c ? &c->strand : NULL, rc, why);
}

uint32_t tti_client_deadline(const tt_client *c, const tt_call_opts *opts, uint32_t dflt) {
    if (opts && opts->size >= offsetof(tt_call_opts, timeout_ms) + sizeof(uint32_t) && opts->timeout_ms)
        return opts->timeout_ms;
    return c->op_timeout_ms ? c->op_timeout_ms : dflt;
}

static uint32_t deadline_of(tt_client *c, const tt_call_opts *opts) { return tti_client_deadline(c, opts, 0); }

/* Send a request that lives in f's extra space; on a closed actor, fail it. */
static tt_future *submit(tt_client *c, tti_req *r, uint32_t type, uint32_t deadline_ms, bool counted) {
    r->msg.type = type;
    if (deadline_ms) tti_future_set_deadline(r->f, c->actor.loop->base, deadline_ms);
    if (tti_actor_send(&c->actor, &r->msg) != TT_OK) {
        if (counted) atomic_fetch_sub_explicit(&c->queued_ops, 1, memory_order_relaxed);
        if (type == TTI_REQ_PUBLISH)
            atomic_fetch_sub_explicit(&c->queued_bytes, ((tti_pubreq *)(void *)r)->len, memory_order_relaxed);
        (void)tt_promise_complete(tti_future_promise(r->f), TT_ECLOSED, 0, "client closed");
    }
    return r->f;
}

static bool admit(tt_client *c) {
    if (atomic_fetch_add_explicit(&c->queued_ops, 1, memory_order_relaxed) >= c->max_queued_ops) {
        atomic_fetch_sub_explicit(&c->queued_ops, 1, memory_order_relaxed);
        return false;
    }
    return true;
}

static tt_future *simple_req(tt_client *c, uint32_t type, uint32_t deadline) {
    if (!c) return failed(NULL, TT_EINVAL, "no client");
    tt_future *f = tti_future_new(&c->strand, sizeof(tti_req));
    if (!f) return tti_future_enomem();
    tti_req *r = tti_future_extra(f);
    memset(r, 0, sizeof *r);
    r->f = f;
    return submit(c, r, type, deadline, false);
}

tt_future *tt_client_connect(tt_client *c) {
    return simple_req(c, TTI_REQ_CONNECT, 0);        /* bounded by connect_timeout_ms */
}

tt_future *tt_client_disconnect(tt_client *c) {
    return simple_req(c, TTI_REQ_DISCONNECT, c ? c->op_timeout_ms : 0);
}

tt_future *tt_client_ping(tt_client *c) {
    return simple_req(c, TTI_REQ_PING, c ? tti_client_deadline(c, NULL, 30000) : 0);
}

tt_future *tt_client_reauth(tt_client *c) {
    return simple_req(c, TTI_REQ_REAUTH, c ? tti_client_deadline(c, NULL, 30000) : 0);
}

tt_future *tt_client_flush(tt_client *c) {
    if (!c) return failed(NULL, TT_EINVAL, "no client");
    tt_future *f = tti_future_new(&c->strand, sizeof(tti_flushreq));
    if (!f) return tti_future_enomem();
    tti_flushreq *q = tti_future_extra(f);
    memset(q, 0, sizeof *q);
    q->r.f = f;
    return submit(c, &q->r, TTI_REQ_FLUSH, c->op_timeout_ms, false);
}

tt_future *tt_client_set_max_inflight(tt_client *c, uint16_t n) {
    if (!c) return failed(NULL, TT_EINVAL, "no client");
    if (n == 0) return failed(c, TT_EINVAL, "a window of 0 would send nothing");
    tt_future *f = tti_future_new(&c->strand, sizeof(tti_winreq));
    if (!f) return tti_future_enomem();
    tti_winreq *w = tti_future_extra(f);
    memset(w, 0, sizeof *w);
    w->r.f = f;
    w->n = n;
    return submit(c, &w->r, TTI_REQ_WINDOW, 0, false);
}

tt_future *tt_client_publish(tt_client *c, const tt_pub *m, const tt_call_opts *opts) {
    if (!c) return failed(NULL, TT_EINVAL, "no client");
    if (!m || m->size < offsetof(tt_pub, retain) + sizeof(bool) || !m->topic)
        return failed(c, TT_EINVAL, "no message or topic");
    tt_pub pm = TT_OPTS_INIT(tt_pub);
    memcpy(&pm, m, m->size < sizeof pm ? m->size : sizeof pm);
    size_t tlen = strlen(pm.topic);           /* the encoder checks the topic */
    if (pm.qos > 2) return failed(c, TT_EINVAL, "QoS must be 0, 1 or 2");
    if (pm.payload_len && !pm.payload) return failed(c, TT_EINVAL, "payload length without payload");
    /* Without v5 properties the PUBLISH is written here directly: fixed
     * header, topic, packet id, an empty property block on v5, payload. */
    bool v5fields = pm.expiry_s || pm.content_type || pm.response_topic || pm.correlation ||
                    pm.payload_utf8 || pm.nprops;
    const char *why = NULL;
    int len;
    size_t body = 0, hdr = 0;
    tti_mqtt_pkt pkt;
    tti_mqtt_user_prop small[8], *up = NULL;
    if (!v5fields) {
        if ((why = tti_mqtt_topic_check(pm.topic, tlen)) != NULL) return failed(c, TT_EINVAL, why);
        body = 2 + tlen + (pm.qos ? 2u : 0u) + (c->version == TTI_MQTT_V5 ? 1u : 0u) + pm.payload_len;
        if (body > 268435455u) return failed(c, TT_EINVAL, "message larger than MQTT allows");
        hdr = body < 128u ? 2 : body < 16384u ? 3 : body < 2097152u ? 4 : 5;
        len = (int)(hdr + body);
    } else {
        memset(&pkt, 0, sizeof pkt);
        pkt.type = TTI_MQTT_PUBLISH;
        pkt.packet_id = pm.qos ? 1 : 0;
        pkt.u.publish.qos = (uint8_t)pm.qos;
        pkt.u.publish.retain = pm.retain;
        pkt.u.publish.topic = (tti_mqtt_str){ pm.topic, tlen };
        pkt.u.publish.payload = (tti_mqtt_bin){ pm.payload, pm.payload_len };
        if (c->version != TTI_MQTT_V5) return failed(c, TT_EINVAL, "MQTT 5 properties on an MQTT 3.1.1 client");
        tti_mqtt_props *pp = &pkt.props;
        if (pm.expiry_s) pp->present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_MESSAGE_EXPIRY), pp->message_expiry = pm.expiry_s;
        if (pm.payload_utf8) pp->present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_PAYLOAD_FORMAT), pp->payload_format = 1;
        if (pm.content_type) {
            pp->present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_CONTENT_TYPE);
            pp->content_type = (tti_mqtt_str){ pm.content_type, strlen(pm.content_type) };
        }
        if (pm.response_topic) {
            pp->present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_RESPONSE_TOPIC);
            pp->response_topic = (tti_mqtt_str){ pm.response_topic, strlen(pm.response_topic) };
        }
        if (pm.correlation) {
            pp->present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_CORRELATION_DATA);
            pp->correlation_data = (tti_mqtt_bin){ pm.correlation, pm.correlation_len };
        }
        if (pm.nprops) {
            if (!props_valid(pm.props, pm.nprops)) return failed(c, TT_EINVAL, "invalid user property");
            up = conv_props(pm.props, pm.nprops, small, 8);
            if (!up) return tti_future_enomem();
            pp->present |= TTI_MQTT_PBIT(TTI_MQTT_PROP_USER_PROPERTY);
            pp->user_props = up;
            pp->user_prop_count = pm.nprops;
        }
        len = tti_mqtt_encoded_len(&pkt, c->version, &why);
        if (len <= 0) {
            if (up && up != small) tti_free(up);
            return failed(c, TT_EINVAL, why ? why : "cannot encode the message");
        }
    }
    if (!admit(c)) {
        if (up && up != small) tti_free(up);
        return failed(c, TT_EAGAIN, "too many calls queued for this client");
    }
    /* The byte bound, checked now so a full queue fails at once (with the
     * fail policy; drop-oldest makes room on the loop instead). */
    size_t queued = atomic_fetch_add_explicit(&c->queued_bytes, (size_t)len, memory_order_relaxed);
    if (c->overflow == TT_OVERFLOW_FAIL && queued > 0 && queued + (size_t)len > c->offline_max) {
        atomic_fetch_sub_explicit(&c->queued_bytes, (size_t)len, memory_order_relaxed);
        atomic_fetch_sub_explicit(&c->queued_ops, 1, memory_order_relaxed);
        if (up && up != small) tti_free(up);
        char full[120];
        snprintf(full, sizeof full, "send queue full (%zu of %zu bytes)", queued, c->offline_max);
        return failed(c, TT_EAGAIN, full);
    }
    tt_future *f = tti_future_new(&c->strand, sizeof(tti_pubreq) + (size_t)len);
    if (!f) {
        atomic_fetch_sub_explicit(&c->queued_ops, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&c->queued_bytes, (size_t)len, memory_order_relaxed);
        if (up && up != small) tti_free(up);
        return tti_future_enomem();
    }
    tti_pubreq *p = tti_future_extra(f);
    memset(p, 0, sizeof *p);
    p->r.f = f;
    p->len = (uint32_t)len;
    p->qos = (uint8_t)pm.qos;
    if (!v5fields) {
        uint8_t *d = p->data;
        *d++ = (uint8_t)(0x30 | pm.qos << 1 | (pm.retain ? 1 : 0));
        size_t rl = body;
        do {
            uint8_t b = (uint8_t)(rl & 0x7f);
            rl >>= 7;
            *d++ = rl ? (uint8_t)(b | 0x80) : b;
        } while (rl);
        *d++ = (uint8_t)(tlen >> 8);
        *d++ = (uint8_t)tlen;
        memcpy(d, pm.topic, tlen);
        d += tlen;
        p->pid_off = (uint32_t)(d - p->data);
        if (pm.qos) {                /* the id is filled in when sent */
            *d++ = 0;
            *d++ = 0;
        }
        if (c->version == TTI_MQTT_V5) *d++ = 0;
        if (pm.payload_len) memcpy(d, pm.payload, pm.payload_len);
    } else {
        (void)tti_mqtt_encode(&pkt, c->version, p->data, (size_t)len, &why);
        if (up && up != small) tti_free(up);
        if (p->qos) {
            tti_mqtt_fixed fx;
            (void)tti_mqtt_decode_fixed(p->data, (size_t)len, c->version, 0, &fx, &why);
            p->pid_off = (uint32_t)(fx.header_len + 2 + tlen);
        }
    }
    return submit(c, &p->r, TTI_REQ_PUBLISH, deadline_of(c, opts), true);
}

tt_future *tt_client_pub(tt_client *c, const char *topic, const void *payload, size_t len, tt_qos qos,
                         bool retain) {
    tt_pub m = TT_OPTS_INIT(tt_pub);
    m.topic = topic;
    m.payload = payload;
    m.payload_len = len;
    m.qos = qos;
    m.retain = retain;
    return tt_client_publish(c, &m, NULL);
}

static tt_future *sub_req(tt_client *c, const tt_sub *subs, const char *const *filters, size_t n,
                          const tt_call_opts *opts) {
    if (!c) return failed(NULL, TT_EINVAL, "no client");
    if (n == 0 || (!subs && !filters)) return failed(c, TT_EINVAL, "empty list of filters");
    size_t strbytes = 0;
    for (size_t i = 0; i < n; i++) {
        const char *fl = subs ? subs[i].filter : filters[i];
        if (!fl || !tti_mqtt_filter_valid(fl, strlen(fl), c->version))
            return failed(c, TT_EINVAL, "invalid topic filter");
        if (subs && (subs[i].qos > 2 || subs[i].retain_handling > 2))
            return failed(c, TT_EINVAL, "invalid subscription options");
        if (subs && c->version != TTI_MQTT_V5 &&
            (subs[i].no_local || subs[i].retain_as_published || subs[i].retain_handling || subs[i].sub_id))
            return failed(c, TT_EINVAL, "MQTT 5 options on an MQTT 3.1.1 client");
        if (subs && subs[i].sub_id > 268435455u)
            return failed(c, TT_EINVAL, "subscription identifier above 268435455");
        if (subs && subs[i].sub_id != subs[0].sub_id)
            return failed(c, TT_EINVAL, "one subscription identifier per call (it belongs to the packet)");
        strbytes += strlen(fl) + 1;
    }
    if (!admit(c)) return failed(c, TT_EAGAIN, "too many calls queued for this client");
    size_t need = sizeof(tti_subreq) + strbytes + 8 + n * sizeof(tti_subent) + n;
    tt_future *f = tti_future_new(&c->strand, need);
    if (!f) {
        atomic_fetch_sub_explicit(&c->queued_ops, 1, memory_order_relaxed);
        return tti_future_enomem();
    }
    tti_subreq *s = tti_future_extra(f);
    memset(s, 0, sizeof *s);
    s->r.f = f;
    s->n = n;
    char *sp = s->strbuf;
    s->ents = (tti_subent *)(void *)(((uintptr_t)(sp + strbytes) + 7u) & ~(uintptr_t)7u);
    s->codes = (uint8_t *)(s->ents + n);
    for (size_t i = 0; i < n; i++) {
        const char *fl = subs ? subs[i].filter : filters[i];
        size_t l = strlen(fl);
        memcpy(sp, fl, l + 1);
        s->ents[i] = (tti_subent){ .filter = sp, .filter_len = l };
        if (subs) {
            s->ents[i].qos = subs[i].qos;
            s->ents[i].no_local = subs[i].no_local;
            s->ents[i].rap = subs[i].retain_as_published;
            s->ents[i].rh = subs[i].retain_handling;
            s->ents[i].sub_id = subs[i].sub_id;
            s->ents[i].handler = subs[i].handler;
            s->ents[i].arg = subs[i].arg;
        }
        sp += l + 1;
    }
    return submit(c, &s->r, subs ? TTI_REQ_SUBSCRIBE : TTI_REQ_UNSUBSCRIBE, deadline_of(c, opts), true);
}

tt_future *tt_client_subscribe(tt_client *c, const tt_sub *subs, size_t n, const tt_call_opts *opts) {
    return sub_req(c, subs, NULL, n, opts);
}

tt_future *tt_client_unsubscribe(tt_client *c, const char *const *filters, size_t n,
                                 const tt_call_opts *opts) {
    return sub_req(c, NULL, filters, n, opts);
}

void tt_client_stats_get(const tt_client *c, tt_client_stats *out) {
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (!c) return;
    out->bytes_out = atomic_load_explicit(&c->st_bytes_out, memory_order_relaxed);
    out->bytes_in = atomic_load_explicit(&c->st_bytes_in, memory_order_relaxed);
    out->publishes_out = atomic_load_explicit(&c->st_pubs_out, memory_order_relaxed);
    out->messages_in = atomic_load_explicit(&c->st_msgs_in, memory_order_relaxed);
    out->connects = atomic_load_explicit(&c->st_connects, memory_order_relaxed);
    out->aliased_out = atomic_load_explicit(&c->st_aliased, memory_order_relaxed);
    out->queued_bytes = atomic_load_explicit(&c->queued_bytes, memory_order_relaxed);
}

tt_err tt_future_get_suback(const tt_future *f, const uint8_t **codes, size_t *n) {
    if (!f || !tt_future_done(f)) return TT_EBUSY;
    const uint8_t *p = tt_future_get_ptr(f);
    if (!p) return TT_EINVAL;
    if (codes) *codes = p;
    if (n) *n = (size_t)tt_future_get_i64(f);
    return TT_OK;
}

/* ---- Pull mode ------------------------------------------------------------------- */

tt_err tt_client_poll(tt_client *c, int32_t timeout_ms, tt_msg **out) {
    if (!c || !out) return TT_EINVAL;
    *out = NULL;
    if (!c->pull) return TT_EINVAL;
    if (timeout_ms != 0 && tti_on_library_thread()) return TT_EDEADLK;
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    if (timeout_ms > 0) {
        end.tv_sec += timeout_ms / 1000;
        end.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (end.tv_nsec >= 1000000000L) end.tv_sec++, end.tv_nsec -= 1000000000L;
    }
    tti_pull *pl = c->pl;
    pthread_mutex_lock(&pl->lock);
    tt_err rc = TT_OK;
    /* The host thread of a wait_runs_base runtime runs the base itself: the
     * message is read and queued on this thread (turns of at most 100 ms, so
     * a close from another thread is seen). */
    const tti_runtime *own = c->actor.loop->rt;
    while (!pl->head && !pl->closed && timeout_ms != 0 && tti_hosting()) {
        pthread_mutex_unlock(&pl->lock);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t left = timeout_ms < 0 ? 100000000
                                      : (int64_t)(end.tv_sec - now.tv_sec) * 1000000000 + (end.tv_nsec - now.tv_nsec);
        int r = left > 0 ? tti_host_turn(own, left < 100000000 ? left : 100000000) : 1;
        pthread_mutex_lock(&pl->lock);
        if (r < 0) rc = TT_EDEADLK;
        if (r <= 0 || left <= 0) break;
    }
    if (rc != TT_OK) {
        pthread_mutex_unlock(&pl->lock);
        return rc;
    }
    while (!pl->head) {
        if (pl->closed) {
            rc = TT_ECLOSED;
            break;
        }
        if (timeout_ms == 0) {
            rc = TT_ETIMEDOUT;
            break;
        }
        if (timeout_ms < 0) pthread_cond_wait(&pl->cond, &pl->lock);
        else if (pthread_cond_timedwait(&pl->cond, &pl->lock, &end) != 0 && !pl->head) {
            rc = TT_ETIMEDOUT;
            break;
        }
    }
    if (pl->head) {
        tt_msg *m = pl->head;
        pl->head = m->pull_next;
        if (!pl->head) pl->tail = NULL;
        *out = m;
        rc = TT_OK;
    }
    pthread_mutex_unlock(&pl->lock);
    if (rc == TT_OK) tti_session_in_done(c, *out);   /* the caller's now */
    return rc;
}

/* ---- Closing ------------------------------------------------------------------------ */

tt_future *tt_client_close(tt_client *c) {
    if (!c) return failed(NULL, TT_EINVAL, "no client");
    tt_future *f = tti_future_new(NULL, 0);
    if (!f) return tti_future_enomem();
    if (atomic_exchange(&c->closing, true)) {
        (void)tt_promise_complete(tti_future_promise(f), TT_OK, 0, NULL);   /* already closing */
        return f;
    }
    c->close_f = f;                  /* the stop handler completes it (producer's reference) */
    tti_runtime_remove_member(&c->member);
    tti_actor_abort(&c->actor);
    return f;
}

void tt_client_free(tt_client *c) {
    if (!c) return;
    if (!atomic_load(&c->closing)) {
        tt_future *f = tt_client_close(c);
        tt_future_free(f);
    }
    /* Closed by the runtime's shutdown (which only aborts I/O), the client is
     * still on the runtime's list: leave it before the memory can go. */
    tti_runtime_remove_member(&c->member);
    tti_actor_release(&c->actor);
}

/* ---- Incoming messages -------------------------------------------------------------- */

const char *tt_msg_topic(const tt_msg *m, size_t *len) {
    if (len) *len = m->topic_len;
    return m->topic;
}
const void *tt_msg_payload(const tt_msg *m, size_t *len) {
    if (len) *len = m->payload_len;
    return m->payload;
}
tt_qos tt_msg_qos(const tt_msg *m) { return (tt_qos)m->qos; }
bool tt_msg_is_retained(const tt_msg *m) { return m->retain; }
bool tt_msg_is_dup(const tt_msg *m) { return m->dup; }
bool tt_msg_payload_utf8(const tt_msg *m) { return m->utf8; }
bool tt_msg_expiry(const tt_msg *m, uint32_t *s) {
    if (s) *s = m->expiry;
    return m->has_expiry;
}

/* The message's MQTT 5 properties, views rebased onto its own copy. */
static const tti_mqtt_props *msg_props(const tt_msg *m) { return m->props_len ? &m->pp : NULL; }

/* A string or binary property of the message, or NULL when absent. */
static const void *msg_view(const tt_msg *m, int id, const void *ptr, size_t n, size_t *len) {
    const tti_mqtt_props *p = msg_props(m);
    bool present = p && (p->present & TTI_MQTT_PBIT(id));
    if (len) *len = present ? n : 0;
    return present ? ptr : NULL;
}

const char *tt_msg_content_type(const tt_msg *m, size_t *len) {
    return msg_view(m, TTI_MQTT_PROP_CONTENT_TYPE, m->pp.content_type.ptr, m->pp.content_type.len, len);
}

const char *tt_msg_response_topic(const tt_msg *m, size_t *len) {
    return msg_view(m, TTI_MQTT_PROP_RESPONSE_TOPIC, m->pp.response_topic.ptr, m->pp.response_topic.len,
                    len);
}

const void *tt_msg_correlation(const tt_msg *m, size_t *len) {
    return msg_view(m, TTI_MQTT_PROP_CORRELATION_DATA, m->pp.correlation_data.ptr,
                    m->pp.correlation_data.len, len);
}

size_t tt_msg_user_prop_count(const tt_msg *m) {
    const tti_mqtt_props *p = msg_props(m);
    return p ? p->user_prop_count : 0;
}

bool tt_msg_user_prop(const tt_msg *m, size_t i, const char **key, size_t *klen, const char **value,
                      size_t *vlen) {
    const tti_mqtt_props *p = msg_props(m);
    if (!p) return false;
    tti_mqtt_iter it;
    tti_mqtt_user_props_begin(&it, p);
    tti_mqtt_user_prop up;
    for (size_t k = 0; tti_mqtt_user_props_next(&it, &up); k++) {
        if (k == i) {
            if (key) *key = up.key.ptr;
            if (klen) *klen = up.key.len;
            if (value) *value = up.value.ptr;
            if (vlen) *vlen = up.value.len;
            return true;
        }
    }
    return false;
}

size_t tt_msg_sub_ids(const tt_msg *m, uint32_t *ids, size_t max) {
    const tti_mqtt_props *p = msg_props(m);
    if (!p) return 0;
    tti_mqtt_iter it;
    tti_mqtt_sub_ids_begin(&it, p);
    size_t n = 0;
    uint32_t id;
    while (tti_mqtt_sub_ids_next(&it, &id)) {
        if (n < max && ids) ids[n] = id;
        n++;
    }
    return n;
}
