/* Loops: see loop.h. */
#include "actors/loop.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <tether/err.h>

#include "actors/actor.h"
#include "actors/core/alloc.h"
#include "actors/core/log.h"
#include "actors/timer.h"

/* How many actors one wake-up runs before giving the loop back to libevent,
 * so that sockets and timers are polled between bursts. */
#define TTI_LOOP_ACTORS_PER_TURN 64

static _Thread_local int t_library_depth;

bool tti_on_library_thread(void) { return t_library_depth > 0; }
void tti_library_enter(void) { t_library_depth++; }
void tti_library_leave(void) { t_library_depth--; }

/* The loop whose thread this is (own-thread loops only). */
static _Thread_local tti_loop *t_loop;

/* A loop thread is woken through its own eventfd: other threads write to it
 * without taking libevent's base lock, which the loop holds while it runs and
 * which, contended, put both threads to sleep on every message. On its own
 * thread, and when embedded, the event is made active directly. */
void tti_loop_wake(tti_loop *l) {
    if (atomic_exchange_explicit(&l->wake_pending, true, memory_order_acq_rel)) return;
    if (l->wake_fd >= 0 && t_loop != l) {
        uint64_t one = 1;
        ssize_t w = write(l->wake_fd, &one, sizeof one);
        if (w == (ssize_t)sizeof one) return;
    }
    event_active(l->wake_ev, EV_TIMEOUT, 0);   /* not EV_READ: nothing to read */
}

static void loop_wake_cb(evutil_socket_t fd, short what, void *arg) {
    tti_loop *l = arg;
    if (fd >= 0 && (what & EV_READ)) {
        uint64_t v;
        ssize_t r = read(fd, &v, sizeof v);  /* resets the counter */
        (void)r;
    }
    tti_library_enter();
    /* Clear before draining: a push that races the drain (even one caught
     * half-linked, popping as empty) flips the flag again and re-wakes us. */
    (void)atomic_exchange_explicit(&l->wake_pending, false, memory_order_acq_rel);
    int n = 0;
    tti_mpsc_node *node;
    while (n < TTI_LOOP_ACTORS_PER_TURN && (node = tti_mpsc_pop(&l->ready)) != NULL) {
        tti_actor_run(TTI_CONTAINER_OF(node, tti_actor, ready_node));
        n++;
    }
    /* Asked to stop (tti_loop_stop_join): break from inside the loop, where
     * the flag cannot be lost. */
    if (atomic_load_explicit(&l->quit, memory_order_acquire)) event_base_loopbreak(l->base);
    if (n == TTI_LOOP_ACTORS_PER_TURN && !tti_mpsc_empty(&l->ready)) {
        /* Yield: a zero timeout runs us again after the next poll for I/O. */
        if (!atomic_exchange_explicit(&l->wake_pending, true, memory_order_acq_rel)) {
            static const struct timeval zero = { 0, 0 };
            event_add(l->yield_ev, &zero);
        }
    }
    tti_library_leave();
}

int tti_loop_init(tti_loop *l, tti_runtime *rt, struct event_base *base, const char *name,
                  uint32_t index) {
    l->wake_fd = -1;
    l->tev = NULL;
    l->theap = NULL;
    l->tn = l->tcap = 0;
    tti_mpsc_init(&l->ready);
    atomic_init(&l->wake_pending, false);
    atomic_init(&l->nactors, 0);
    atomic_init(&l->quit, false);
    l->rt = rt;
    l->index = index;
    l->name = name;
    l->has_thread = false;
    l->io = NULL;
    l->owns_base = base == NULL;
    if (!base) {
        struct event_config *cfg = event_config_new();
        if (!cfg) return TT_ENOMEM;
        /* Check for I/O after every few callbacks so a busy queue of actors
         * cannot delay socket reads. */
        event_config_set_max_dispatch_interval(cfg, NULL, 16, 0);
        base = event_base_new_with_config(cfg);
        event_config_free(cfg);
        if (!base) return TT_EINTERNAL;
    }
    l->base = base;
    l->wake_fd = l->owns_base ? eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) : -1;
    if (l->wake_fd >= 0) {
        l->wake_ev = event_new(base, l->wake_fd, EV_READ | EV_PERSIST, loop_wake_cb, l);
        if (l->wake_ev && event_add(l->wake_ev, NULL) != 0) {
            event_free(l->wake_ev);
            l->wake_ev = NULL;
        }
    } else {
        l->wake_ev = event_new(base, -1, 0, loop_wake_cb, l);
    }
    l->yield_ev = event_new(base, -1, 0, loop_wake_cb, l);
    if (!l->wake_ev || !l->yield_ev || tti_timers_init(l) != 0) {
        tti_timers_fini(l);
        if (l->wake_ev) event_free(l->wake_ev);
        if (l->yield_ev) event_free(l->yield_ev);
        l->wake_ev = l->yield_ev = NULL;
        if (l->wake_fd >= 0) close(l->wake_fd);
        l->wake_fd = -1;
        if (l->owns_base) event_base_free(base);
        return TT_ENOMEM;
    }
    return TT_OK;
}

static void *loop_thread_main(void *arg) {
    tti_loop *l = arg;
    t_loop = l;
    tti_library_enter();
    while (!atomic_load_explicit(&l->quit, memory_order_acquire)) {
        if (event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY) < 0) {
            TTI_LOG(ERROR, "loop", "%s %u: event_base_loop failed", l->name, l->index);
            break;
        }
    }
    tti_run_thread_exit_hook();
    tti_library_leave();
    return NULL;
}

int tti_loop_start(tti_loop *l) {
    if (pthread_create(&l->thread, NULL, loop_thread_main, l) != 0) return TT_EINTERNAL;
    l->has_thread = true;
    return TT_OK;
}

void tti_loop_stop_join(tti_loop *l) {
    if (!l->has_thread) return;
    atomic_store_explicit(&l->quit, true, memory_order_release);
    /* Through the eventfd, which stays readable until the loop reads it. A
     * loopbreak from here is lost when the thread has not yet entered
     * event_base_loop (which clears the flag on entry), and the thread then
     * sleeps for good: a runtime freed right after it was made hung that way. */
    uint64_t one = 1;
    if (l->wake_fd < 0 || write(l->wake_fd, &one, sizeof one) != (ssize_t)sizeof one)
        event_base_loopbreak(l->base);
    pthread_join(l->thread, NULL);
    l->has_thread = false;
}

struct evdns_base *tti_loop_dns(tti_loop *l) {
    if (!l->dns)                     /* reads resolv.conf and /etc/hosts */
        l->dns = evdns_base_new(l->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                             EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    return l->dns;
}

tti_io_scratch *tti_loop_io(tti_loop *l) {
    if (!l->io && (l->io = tti_malloc(sizeof *l->io)) != NULL) {
        l->io->tx_owner = NULL;
        l->io->tx_n = 0;
        l->io->rx_head = l->io->rx_tail = NULL;
    }
    return l->io;
}

void tti_loop_fini(tti_loop *l) {
    tti_free(l->io);
    l->io = NULL;
    if (l->dns) evdns_base_free(l->dns, 1);
    l->dns = NULL;
    if (l->wake_ev) event_free(l->wake_ev);
    l->wake_ev = NULL;
    if (l->yield_ev) event_free(l->yield_ev);
    l->yield_ev = NULL;
    if (l->wake_fd >= 0) close(l->wake_fd);
    l->wake_fd = -1;
    tti_timers_fini(l);
    if (l->owns_base && l->base) event_base_free(l->base);
    l->base = NULL;
}
