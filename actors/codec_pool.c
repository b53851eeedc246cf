/* The codec pool: codec actors on loops of their own. See <tether/codec_pool.h>.
 *
 * Why here and not in codecs/: the pool is built from actors, loops, futures and
 * strands, so it sits beside the session actor, above both the codecs it calls and
 * the actor runtime (platforms -> actors/session, codec pool -> codecs, transport ->
 * actors/core). codecs/ stays free of threads and libevent.
 *
 * One call is one allocation: the future, the job message and (for the copying
 * decode) the input bytes share a block. An encode result's tt_buf lives in the same
 * block; the future's value points at it and its destructor frees only the storage.
 *
 * Each actor has a loop (thread) of its own from tti_runtime_loops_new(), so the
 * runtime's shutdown waits for it and joins it, and a strand of its own on the
 * callback pool, so continuations keep the actor's order. */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <tether/codec_pool.h>
#include <time.h>

#include "actors/core/alloc.h"
#include "actors/core/log.h"
#include "actors/future.h"
#include "actors/pool.h"
#include "actors/runtime.h"

enum { JOB_DECODE = 1, JOB_ENCODE = 2 };

typedef struct codec_actor {
    tti_actor core;                   /* its references own this struct */
    tti_actor *strand;                /* referenced: continuations, in order */
    tt_codec_pool *pool;              /* only read until the stop is handled */
    uint32_t max_queued;              /* 0: unbounded, `queued` untouched */
    atomic_uint queued;
} codec_actor;

struct tt_codec_pool {
    tti_member member;
    tti_loop_group *loops;
    codec_actor **actors;
    uint32_t n;
    uint32_t default_timeout_ms;
    atomic_bool closed;               /* calls fail with TT_ECLOSED */
    atomic_bool rt_gone;              /* runtime past stage 2: no strands to post to */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint32_t live;                    /* actors whose stop is not handled yet (lock) */
};

typedef struct job {
    tti_msg msg;
    tt_future *f;
    const tt_codec *codec;
    json_t *value;                    /* encode: the reference the call took */
    const void *data;                 /* decode input */
    size_t len;
    int64_t deadline_ns;              /* CLOCK_MONOTONIC; 0 = none */
    void *owned;                      /* decode_owned: freed with owned_free */
    tt_free_fn owned_free;
    tt_buf out;                       /* encode result: the future's value */
    unsigned char copy[];             /* decode: the input, copied at the call */
} job;

/* ---- values -------------------------------------------------------------------- */

static void json_dtor(void *v) { json_decref(v); }
static void buf_dtor(void *b) { tt_buf_free(b); }   /* the struct lives in the future */

json_t *tt_future_get_json(const tt_future *f) {
    if (!f || !tt_future_done(f) || f->rc != TT_OK || !f->has_value || f->val_dtor != json_dtor)
        return NULL;
    return f->val_ptr;
}

const void *tt_future_get_bytes(const tt_future *f, size_t *len) {
    if (len) *len = 0;
    if (!f || !tt_future_done(f) || f->rc != TT_OK || !f->has_value || f->val_dtor != buf_dtor)
        return NULL;
    const tt_buf *b = f->val_ptr;
    if (len) *len = b->len;
    return b->data ? (const void *)b->data : (const void *)"";
}

/* ---- the codec actor ------------------------------------------------------------ */

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* json_decref with acquire-release order. jansson's own decrement is release-only,
 * so when an encode on this thread drops the last reference to a value that other
 * threads read too (one value sent to several keys), the delete would not be ordered
 * after their reads. */
static void json_release(json_t *v) {
    if (v && __atomic_load_n(&v->refcount, __ATOMIC_RELAXED) != (size_t)-1 &&
        __atomic_sub_fetch(&v->refcount, 1, __ATOMIC_ACQ_REL) == 0)
        json_delete(v);
}

static void job_release_input(job *j) {
    if (j->value) {
        json_release(j->value);
        j->value = NULL;
    }
    if (j->owned_free) {
        tt_free_fn fn = j->owned_free;
        j->owned_free = NULL;
        fn(j->owned);
    }
}

static void unqueue(codec_actor *a) {
    if (a->max_queued) atomic_fetch_sub_explicit(&a->queued, 1, memory_order_relaxed);
}

/* Runs the job and completes its promise; `j` lives in the future, so nothing after
 * the completion may touch it. */
static void actor_handle(tti_actor *core, tti_msg *m) {
    codec_actor *a = TTI_CONTAINER_OF(core, codec_actor, core);
    job *j = TTI_CONTAINER_OF(m, job, msg);
    tt_promise *p = tti_future_promise(j->f);
    unqueue(a);
    if (tt_promise_abandoned(p)) {    /* cancelled or past its deadline while queued */
        job_release_input(j);
        (void)tt_promise_complete(p, TT_ECANCELED, 0, NULL);
        return;
    }
    /* The deadline timer shares this thread, so behind a long job it would fire
     * only after the jobs queued with it ran: look at the clock instead. */
    if (j->deadline_ns && now_ns() >= j->deadline_ns) {
        job_release_input(j);
        (void)tt_promise_complete(p, TT_ETIMEDOUT, 0, "deadline passed");
        return;
    }
    if (m->type == JOB_DECODE) {
        json_t *v = NULL;
        tt_codec_error err;
        tt_err rc = tt_codec_decode(j->codec, j->data, j->len, &v, &err);
        job_release_input(j);
        if (rc == TT_OK) {
            tt_promise_set_value(p, v, json_dtor, 0);
            (void)tt_promise_complete(p, TT_OK, 0, NULL);
        } else if (rc == TT_EPROTO) {
            int at = err.offset > INT_MAX ? INT_MAX : (int)err.offset;
            (void)tt_promise_complete(p, rc, at, "%s (at byte %zu)", err.reason, err.offset);
        } else {
            (void)tt_promise_complete(p, rc, 0, "%s", err.reason);
        }
        return;
    }
    tt_err rc = tt_codec_encode(j->codec, j->value, &j->out);
    job_release_input(j);
    if (rc == TT_OK) {
        tt_promise_set_value(p, &j->out, buf_dtor, (int64_t)j->out.len);
        (void)tt_promise_complete(p, TT_OK, 0, NULL);
    } else {
        tt_buf_free(&j->out);
        (void)tt_promise_complete(p, rc, 0, NULL);
    }
}

static void actor_drop(tti_actor *core, tti_msg *m) {
    job *j = TTI_CONTAINER_OF(m, job, msg);
    unqueue(TTI_CONTAINER_OF(core, codec_actor, core));
    job_release_input(j);
    (void)tt_promise_complete(tti_future_promise(j->f), TT_ECLOSED, 0, "codec pool stopped");
}

static void actor_stopped(tti_actor *core) {
    tt_codec_pool *p = TTI_CONTAINER_OF(core, codec_actor, core)->pool;
    pthread_mutex_lock(&p->lock);     /* after this the pool may be gone */
    p->live--;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static void actor_destroy(tti_actor *core) { tti_free(TTI_CONTAINER_OF(core, codec_actor, core)); }

static const tti_actor_ops codec_actor_ops = {
    .handle = actor_handle,
    .drop = actor_drop,
    .stopped = actor_stopped,
    .destroy = actor_destroy,
};

/* ---- runtime shutdown ------------------------------------------------------------ */

static void pool_abort_io(tti_member *m) {     /* stage 1: queued work fails */
    tt_codec_pool *p = TTI_CONTAINER_OF(m, tt_codec_pool, member);
    atomic_store_explicit(&p->closed, true, memory_order_release);
    for (uint32_t i = 0; i < p->n; i++) tti_actor_abort(&p->actors[i]->core);
}

static void pool_stop_strands(tti_member *m) { /* stage 2: queued continuations run */
    tt_codec_pool *p = TTI_CONTAINER_OF(m, tt_codec_pool, member);
    atomic_store_explicit(&p->rt_gone, true, memory_order_release);
    for (uint32_t i = 0; i < p->n; i++) tti_actor_stop(p->actors[i]->strand);
}

/* ---- creation and teardown ---------------------------------------------------------- */

static bool on_codec_thread(const tt_codec_pool *p) {
    if (!p->loops) return false;
    for (uint32_t i = 0; i < p->loops->n; i++) {
        const tti_loop *l = &p->loops->loops[i];
        if (l->has_thread && pthread_equal(l->thread, pthread_self())) return true;
    }
    return false;
}

/* Releases whatever exists of `p`: after a failed creation too. */
static void pool_teardown(tt_codec_pool *p) {
    atomic_store_explicit(&p->closed, true, memory_order_release);
    tti_runtime_remove_member(&p->member);
    for (uint32_t i = 0; i < p->n; i++)
        if (p->actors[i]) tti_actor_stop(&p->actors[i]->core);   /* queued work still runs */
    pthread_mutex_lock(&p->lock);
    while (p->live > 0) pthread_cond_wait(&p->cond, &p->lock);
    pthread_mutex_unlock(&p->lock);
    tti_runtime_loops_free(p->loops);
    for (uint32_t i = 0; i < p->n; i++) {
        codec_actor *a = p->actors[i];
        if (!a) continue;
        tti_strand_free(a->strand);   /* continuations already queued still run */
        tti_actor_release(&a->core);
    }
    tti_free(p->actors);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    tti_free(p);
}

tt_err tt_codec_pool_new(tt_runtime *rt, const tt_codec_pool_opts *user_opts,
                         tt_codec_pool **out) {
    if (!rt || !out) return TT_EINVAL;
    *out = NULL;
    tt_codec_pool_opts o = TT_OPTS_INIT(tt_codec_pool_opts);
    if (user_opts) {
        if (user_opts->size < offsetof(tt_codec_pool_opts, actors) + sizeof(uint32_t))
            return TT_EINVAL;
        memcpy(&o, user_opts, user_opts->size < sizeof o ? user_opts->size : sizeof o);
    }
    uint32_t n = o.actors ? o.actors : tt_runtime_loop_count(rt);
    if (n == 0 || n > 1024) return TT_EINVAL;

    tt_codec_pool *p = tti_calloc(1, sizeof *p);
    if (!p) return TT_ENOMEM;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->default_timeout_ms = rt->default_timeout_ms;
    static const tti_member_ops member_ops = { .abort_io = pool_abort_io,
                                               .stop_strands = pool_stop_strands };
    p->member.ops = &member_ops;
    p->actors = tti_calloc(n, sizeof *p->actors);
    if (!p->actors) {
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        tti_free(p);
        return TT_ENOMEM;
    }
    p->n = n;
    tt_err rc = (tt_err)tti_runtime_loops_new(rt, n, "codec", &p->loops);
    for (uint32_t i = 0; rc == TT_OK && i < n; i++) {
        codec_actor *a = tti_calloc(1, sizeof *a);
        if (!a) {
            rc = TT_ENOMEM;
            break;
        }
        a->strand = tti_strand_new(rt);
        if (!a->strand) {
            tti_free(a);
            rc = atomic_load(&rt->closing) ? TT_ECLOSED : TT_ENOMEM;
            break;
        }
        a->pool = p;
        a->max_queued = o.max_queued;
        atomic_init(&a->queued, 0);
        tti_actor_init(&a->core, &p->loops->loops[i], &codec_actor_ops);
        p->actors[i] = a;
        p->live++;
    }
    if (rc == TT_OK) rc = (tt_err)tti_runtime_add_member(rt, &p->member);
    if (rc != TT_OK) {
        pool_teardown(p);
        return rc;
    }
    TTI_LOG(DEBUG, "codec", "pool started: %u codec actors", n);
    *out = p;
    return TT_OK;
}

void tt_codec_pool_free(tt_codec_pool *p) {
    if (!p) return;
    if (on_codec_thread(p)) {
        TTI_LOG(ERROR, "codec", "tt_codec_pool_free called on a codec thread; ignored");
        return;
    }
    pool_teardown(p);
}

uint32_t tt_codec_pool_size(const tt_codec_pool *p) { return p ? p->n : 0; }

uint32_t tt_codec_pool_actor(const tt_codec_pool *p, uint64_t key) {
    if (!p) return 0;
    /* splitmix64's finalizer: consecutive ids, or ids sharing a stride with the
     * actor count, still spread evenly. */
    uint64_t z = key + 0x9e3779b97f4a7c15u;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    return (uint32_t)(z % p->n);
}

/* ---- calls ------------------------------------------------------------------------- */

/* The strand for a future that fails before reaching an actor. */
static tti_actor *early_strand(tt_codec_pool *p, codec_actor *a) {
    return atomic_load_explicit(&p->rt_gone, memory_order_acquire) ? NULL : a->strand;
}

/* Allocate the future and its job for the actor of `key`; NULL when out of memory.
 * A closed pool gives an already-failed future with *jp NULL. */
static tt_future *job_new(tt_codec_pool *p, uint64_t key, size_t copy, int type, job **jp,
                          codec_actor **ap) {
    codec_actor *a = p->actors[tt_codec_pool_actor(p, key)];
    *jp = NULL;
    *ap = a;
    if (atomic_load_explicit(&p->closed, memory_order_acquire))
        return tti_future_failed(early_strand(p, a), TT_ECLOSED, "codec pool stopped");
    tt_future *f = tti_future_new(a->strand, sizeof(job) + copy);
    if (!f) return NULL;
    job *j = tti_future_extra(f);
    memset(j, 0, sizeof *j);
    j->msg.type = (uint32_t)type;
    j->f = f;
    *jp = j;
    return f;
}

static tt_future *job_send(tt_codec_pool *p, codec_actor *a, job *j, const tt_call_opts *opts) {
    tt_future *f = j->f;
    tt_promise *pr = tti_future_promise(f);
    if (a->max_queued &&
        atomic_fetch_add_explicit(&a->queued, 1, memory_order_relaxed) >= a->max_queued) {
        unqueue(a);
        job_release_input(j);
        (void)tt_promise_complete(pr, TT_EAGAIN, 0, "codec actor queue full");
        return f;
    }
    uint32_t timeout = p->default_timeout_ms;
    if (opts && opts->size >= offsetof(tt_call_opts, timeout_ms) + sizeof(uint32_t) &&
        opts->timeout_ms)
        timeout = opts->timeout_ms;
    if (timeout) {                    /* both before the actor sees f */
        j->deadline_ns = now_ns() + (int64_t)timeout * 1000000;
        tti_future_set_deadline(f, a->core.loop->base, timeout);
    }
    if (tti_actor_send(&a->core, &j->msg) != TT_OK) {
        unqueue(a);
        job_release_input(j);
        (void)tt_promise_complete(pr, TT_ECLOSED, 0, "codec pool stopped");
    }
    return f;
}

/* `copy`: copy the bytes into the job; otherwise read them in place and, with
 * `owned_free`, free them once done (also when the call fails). */
static tt_future *decode_call(tt_codec_pool *p, const tt_codec *codec, uint64_t key,
                              const void *data, size_t len, bool copy, tt_free_fn owned_free,
                              const tt_call_opts *opts) {
    void *owned = (void *)(uintptr_t)data;
    const char *bad = !p ? "no codec pool" : !codec ? "no codec"
                    : (!data && len > 0) ? "no input bytes" : NULL;
    if (bad) {
        if (owned_free) owned_free(owned);
        return tti_future_failed(p ? early_strand(p, p->actors[tt_codec_pool_actor(p, key)]) : NULL,
                                 TT_EINVAL, bad);
    }
    job *j;
    codec_actor *a;
    tt_future *f = job_new(p, key, copy ? len : 0, JOB_DECODE, &j, &a);
    if (!f || !j) {
        if (owned_free) owned_free(owned);
        return f ? f : tti_future_enomem();
    }
    j->codec = codec;
    j->len = len;
    if (copy && len > 0) {
        memcpy(j->copy, data, len);
        j->data = j->copy;
    } else {
        j->data = data;
        j->owned = owned;
        j->owned_free = owned_free;
    }
    return job_send(p, a, j, opts);
}

tt_future *tt_codec_pool_decode(tt_codec_pool *p, const tt_codec *codec, uint64_t key,
                                const void *data, size_t len, const tt_call_opts *opts) {
    return decode_call(p, codec, key, data, len, true, NULL, opts);
}

tt_future *tt_codec_pool_decode_owned(tt_codec_pool *p, const tt_codec *codec, uint64_t key,
                                      void *data, size_t len, tt_free_fn free_fn,
                                      const tt_call_opts *opts) {
    return decode_call(p, codec, key, data, len, false, free_fn, opts);
}

tt_future *tt_codec_pool_encode(tt_codec_pool *p, const tt_codec *codec, uint64_t key,
                                json_t *value, const tt_call_opts *opts) {
    const char *bad = !p ? "no codec pool" : !codec ? "no codec" : !value ? "no value" : NULL;
    if (bad) {
        json_decref(value);
        return tti_future_failed(p ? early_strand(p, p->actors[tt_codec_pool_actor(p, key)]) : NULL,
                                 TT_EINVAL, bad);
    }
    job *j;
    codec_actor *a;
    tt_future *f = job_new(p, key, 0, JOB_ENCODE, &j, &a);
    if (!f || !j) {
        json_decref(value);
        return f ? f : tti_future_enomem();
    }
    j->codec = codec;
    j->value = value;
    tt_buf_init(&j->out);
    return job_send(p, a, j, opts);
}
