/* Mailbox and future throughput with 1, 2 and 4 producers, and cross-thread
 * hand-off latency, side by side with a mutex + condition-variable queue in
 * the same run. Prints a table with ratios (tether / mutex queue).
 *
 *   mailbox_bench [-n messages-per-run] [-r repeats]
 *
 * "mailbox": producers call tti_actor_send() on an actor whose handler runs
 * on a libevent loop thread: the real path, including scheduling and wake-up.
 * "mutex queue": producers lock, append, signal, unlock; one consumer thread
 * locks, waits while empty, takes one message, unlocks: the usual design.
 * Both use preallocated intrusive nodes, so neither allocates per message.
 * "future": each producer makes calls in windows of 256 and waits for them;
 * tether uses tt_actor_call + tt_future_wait, the baseline a malloc'd job
 * with its own mutex + condvar completed by a worker thread. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/tether.h>
#include <time.h>
#include <sched.h>
#include <unistd.h>

#include "actors/actor.h"
#include "actors/core/alloc.h"
#include "actors/runtime.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct bmsg {
    tti_msg m;                        /* tether's node */
    struct bmsg *next;                /* the mutex queue's node */
    uint64_t stamp;
} bmsg;

/* ---- The baseline: a mutex + condition-variable queue -------------------- */

typedef struct mqueue {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bmsg *head, *tail;
    int waiting;
} mqueue;

static void mq_init(mqueue *q) {
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->cond, NULL);
    q->head = q->tail = NULL;
    q->waiting = 0;
}

static void mq_push(mqueue *q, bmsg *m) {
    m->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->tail) q->tail->next = m;
    else q->head = m;
    q->tail = m;
    if (q->waiting) pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

static bmsg *mq_pop(mqueue *q) {
    pthread_mutex_lock(&q->lock);
    while (!q->head) {
        q->waiting++;
        pthread_cond_wait(&q->cond, &q->lock);
        q->waiting--;
    }
    bmsg *m = q->head;
    q->head = m->next;
    if (!q->head) q->tail = NULL;
    pthread_mutex_unlock(&q->lock);
    return m;
}

/* ---- Throughput -------------------------------------------------------------- */

typedef struct run {
    int producers;
    long per_producer;
    bmsg *msgs;
    tti_actor *actor;                 /* tether */
    mqueue *mq;                       /* baseline */
    atomic_long received;
    uint64_t *lat;                    /* latency samples (ns), or NULL */
    long nlat;
    pthread_barrier_t start;
} run;

typedef struct prod {
    run *r;
    int id;
} prod;

static void *tt_producer(void *arg) {
    prod *p = arg;
    run *r = p->r;
    bmsg *base = r->msgs + (size_t)p->id * (size_t)r->per_producer;
    pthread_barrier_wait(&r->start);
    for (long i = 0; i < r->per_producer; i++) tti_actor_send(r->actor, &base[i].m);
    return NULL;
}

static void *mq_producer(void *arg) {
    prod *p = arg;
    run *r = p->r;
    bmsg *base = r->msgs + (size_t)p->id * (size_t)r->per_producer;
    pthread_barrier_wait(&r->start);
    for (long i = 0; i < r->per_producer; i++) mq_push(r->mq, &base[i]);
    return NULL;
}

static void *mq_consumer(void *arg) {
    run *r = arg;
    long total = (long)r->producers * r->per_producer;
    for (long i = 0; i < total; i++) {
        bmsg *m = mq_pop(r->mq);
        if (r->lat) r->lat[r->nlat++] = now_ns() - m->stamp;
        atomic_store_explicit(&r->received, i + 1, memory_order_release);
    }
    return NULL;
}

typedef struct bench_actor {
    tti_actor a;
    run *r;
    long count;
} bench_actor;

static void ba_handle(tti_actor *a, tti_msg *m) {
    bench_actor *ba = TTI_CONTAINER_OF(a, bench_actor, a);
    run *r = ba->r;
    if (r->lat) r->lat[r->nlat++] = now_ns() - TTI_CONTAINER_OF(m, bmsg, m)->stamp;
    atomic_store_explicit(&r->received, ++ba->count, memory_order_release);
}
static void ba_drop(tti_actor *a, tti_msg *m) { (void)a; (void)m; }
static void ba_destroy(tti_actor *a) { (void)a; }
static const tti_actor_ops ba_ops = { ba_handle, ba_drop, NULL, ba_destroy, NULL };

static double run_throughput(tt_runtime *rt, bool tether, int producers, long per) {
    run r = { .producers = producers, .per_producer = per };
    r.msgs = calloc((size_t)producers * (size_t)per, sizeof(bmsg));
    pthread_barrier_init(&r.start, NULL, (unsigned)producers + 1);
    bench_actor ba = { .r = &r };
    mqueue mq;
    pthread_t cons;
    if (tether) {
        tti_actor_init(&ba.a, tti_runtime_pick_io(rt), &ba_ops);
        r.actor = &ba.a;
    } else {
        mq_init(&mq);
        r.mq = &mq;
        pthread_create(&cons, NULL, mq_consumer, &r);
    }
    pthread_t th[8];
    prod pa[8];
    for (int i = 0; i < producers; i++) {
        pa[i] = (prod){ &r, i };
        pthread_create(&th[i], NULL, tether ? tt_producer : mq_producer, &pa[i]);
    }
    pthread_barrier_wait(&r.start);
    double t0 = now_s();
    long total = (long)producers * per;
    while (atomic_load_explicit(&r.received, memory_order_acquire) < total) sched_yield();
    double dt = now_s() - t0;
    for (int i = 0; i < producers; i++) pthread_join(th[i], NULL);
    if (tether) {
        tti_actor_stop(&ba.a);
        tti_actor_release(&ba.a);
        while (atomic_load(&ba.a.refs) > 0) sched_yield();
    } else {
        pthread_join(cons, NULL);
    }
    pthread_barrier_destroy(&r.start);
    free(r.msgs);
    return (double)total / dt;
}

/* ---- Hand-off latency: one message at a time, the consumer idle between ---- */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void run_latency(tt_runtime *rt, bool tether, long samples, double *p50, double *p99) {
    run r = { .producers = 1, .per_producer = samples };
    r.msgs = calloc((size_t)samples, sizeof(bmsg));
    r.lat = calloc((size_t)samples, sizeof(uint64_t));
    bench_actor ba = { .r = &r };
    mqueue mq;
    pthread_t cons;
    pthread_barrier_init(&r.start, NULL, 1);
    if (tether) {
        tti_actor_init(&ba.a, tti_runtime_pick_io(rt), &ba_ops);
    } else {
        mq_init(&mq);
        r.mq = &mq;
        pthread_create(&cons, NULL, mq_consumer, &r);
    }
    for (long i = 0; i < samples; i++) {
        /* Let the consumer go idle, then hand one message over. */
        uint64_t until = now_ns() + 20000;
        while (now_ns() < until) {
        }
        r.msgs[i].stamp = now_ns();
        if (tether) tti_actor_send(&ba.a, &r.msgs[i].m);
        else mq_push(&mq, &r.msgs[i]);
        while (atomic_load_explicit(&r.received, memory_order_acquire) <= i) {
        }
    }
    if (tether) {
        tti_actor_stop(&ba.a);
        tti_actor_release(&ba.a);
        while (atomic_load(&ba.a.refs) > 0) sched_yield();
    } else {
        pthread_join(cons, NULL);
    }
    qsort(r.lat, (size_t)samples, sizeof(uint64_t), cmp_u64);
    *p50 = (double)r.lat[samples / 2] / 1000.0;
    *p99 = (double)r.lat[(samples * 99) / 100] / 1000.0;
    pthread_barrier_destroy(&r.start);
    free(r.lat);
    free(r.msgs);
}

/* ---- Futures ---------------------------------------------------------------- */

#define WINDOW 256

static void complete_ok(tt_promise *p, void *arg) {
    (void)arg;
    tt_promise_complete(p, TT_OK, 0, NULL);
}

typedef struct fprod {
    tt_actor *actor;
    mqueue *mq;
    long calls;
    pthread_barrier_t *start;
} fprod;

static void *tt_future_producer(void *arg) {
    fprod *p = arg;
    tt_future *fs[WINDOW];
    pthread_barrier_wait(p->start);
    for (long done = 0; done < p->calls; done += WINDOW) {
        for (int i = 0; i < WINDOW; i++) fs[i] = tt_actor_call(p->actor, complete_ok, NULL, NULL);
        for (int i = 0; i < WINDOW; i++) {
            if (tt_future_wait(fs[i], TT_FOREVER) != TT_OK) abort();
            tt_future_free(fs[i]);
        }
    }
    return NULL;
}

typedef struct job {
    bmsg node;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
} job;

static void *job_worker(void *arg) {
    mqueue *q = arg;
    for (;;) {
        bmsg *m = mq_pop(q);
        if (m->stamp == UINT64_MAX) return NULL;
        job *j = (job *)(void *)m;
        pthread_mutex_lock(&j->lock);
        j->done = 1;
        pthread_cond_signal(&j->cond);
        pthread_mutex_unlock(&j->lock);
    }
}

static void *mq_future_producer(void *arg) {
    fprod *p = arg;
    job *js[WINDOW];
    pthread_barrier_wait(p->start);
    for (long done = 0; done < p->calls; done += WINDOW) {
        for (int i = 0; i < WINDOW; i++) {
            js[i] = calloc(1, sizeof(job));
            pthread_mutex_init(&js[i]->lock, NULL);
            pthread_cond_init(&js[i]->cond, NULL);
            mq_push(p->mq, &js[i]->node);
        }
        for (int i = 0; i < WINDOW; i++) {
            pthread_mutex_lock(&js[i]->lock);
            while (!js[i]->done) pthread_cond_wait(&js[i]->cond, &js[i]->lock);
            pthread_mutex_unlock(&js[i]->lock);
            pthread_mutex_destroy(&js[i]->lock);
            pthread_cond_destroy(&js[i]->cond);
            free(js[i]);
        }
    }
    return NULL;
}

static double run_futures(tt_runtime *rt, bool tether, int producers, long per) {
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)producers + 1);
    tt_actor *actor = NULL;
    mqueue mq;
    pthread_t worker;
    if (tether) {
        tt_actor_new(rt, &actor);
    } else {
        mq_init(&mq);
        pthread_create(&worker, NULL, job_worker, &mq);
    }
    pthread_t th[8];
    fprod fp[8];
    for (int i = 0; i < producers; i++) {
        fp[i] = (fprod){ actor, &mq, per, &start };
        pthread_create(&th[i], NULL, tether ? tt_future_producer : mq_future_producer, &fp[i]);
    }
    pthread_barrier_wait(&start);
    double t0 = now_s();
    for (int i = 0; i < producers; i++) pthread_join(th[i], NULL);
    double dt = now_s() - t0;
    if (tether) {
        tt_actor_free(actor);
    } else {
        bmsg stop = { .stamp = UINT64_MAX };
        mq_push(&mq, &stop);
        pthread_join(worker, NULL);
    }
    pthread_barrier_destroy(&start);
    return (double)producers * (double)per / dt;
}

/* ---- Table -------------------------------------------------------------------- */

static double best_of(double *v, int n) {
    double b = v[0];
    for (int i = 1; i < n; i++)
        if (v[i] > b) b = v[i];
    return b;
}

int main(int argc, char **argv) {
    long n = 2000000;
    int repeats = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) n = atol(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) repeats = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: mailbox_bench [-n messages] [-r repeats]\n");
            return 2;
        }
    }
    if (repeats < 1 || repeats > 16 || n < 4 * WINDOW) return 2;
    tt_runtime *rt;
    tt_runtime_opts o = TT_OPTS_INIT(tt_runtime_opts);
    o.loop_threads = 1;
    o.pool_threads = 1;
    if (tt_runtime_new(&rt, &o) != TT_OK) return 1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("mailbox_bench: %ld messages per run, best of %d, %ld cores\n\n", n, repeats, cores);
    printf("%-34s %14s %14s %8s\n", "test", "tether", "mutex queue", "ratio");
    static const int prods[] = { 1, 2, 4 };
    for (size_t k = 0; k < 3; k++) {
        int p = prods[k];
        double a[16], b[16];
        for (int i = 0; i < repeats; i++) {      /* interleaved, so drift hits both */
            a[i] = run_throughput(rt, true, p, n / p);
            b[i] = run_throughput(rt, false, p, n / p);
        }
        char name[64];
        snprintf(name, sizeof name, "mailbox msgs/s, %d producer%s", p, p > 1 ? "s" : "");
        printf("%-34s %14.0f %14.0f %7.2fx\n", name, best_of(a, repeats), best_of(b, repeats),
               best_of(a, repeats) / best_of(b, repeats));
        fflush(stdout);
    }
    long fn = n / 10;
    for (size_t k = 0; k < 3; k++) {
        int p = prods[k];
        double a[16], b[16];
        for (int i = 0; i < repeats; i++) {
            a[i] = run_futures(rt, true, p, fn / p);
            b[i] = run_futures(rt, false, p, fn / p);
        }
        char name[64];
        snprintf(name, sizeof name, "future calls/s, %d producer%s", p, p > 1 ? "s" : "");
        printf("%-34s %14.0f %14.0f %7.2fx\n", name, best_of(a, repeats), best_of(b, repeats),
               best_of(a, repeats) / best_of(b, repeats));
        fflush(stdout);
    }
    double t50, t99, m50, m99;
    long samples = 20000;
    run_latency(rt, true, samples, &t50, &t99);
    run_latency(rt, false, samples, &m50, &m99);
    printf("%-34s %14.1f %14.1f %7.2fx\n", "hand-off latency p50 (us)", t50, m50, m50 / t50);
    printf("%-34s %14.1f %14.1f %7.2fx\n", "hand-off latency p99 (us)", t99, m99, m99 / t99);
    printf("\n(ratio: throughput tether/mutex; latency mutex/tether; > 1 means tether is better)\n");
    tt_runtime_free(rt);
    return 0;
}
