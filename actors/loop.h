/* A loop: one libevent base driven by one thread (or by the host, when
 * embedded) and the run queue of actors that have messages waiting. */
#ifndef TTI_LOOP_H
#define TTI_LOOP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "actors/mailbox.h"

struct event_base;
struct event;
struct evdns_base;
typedef struct tt_runtime tti_runtime;

/* Buffers every connection on one loop shares (loop thread only): reads land
 * in `rx` and are parsed in place; writes of one turn gather in `tx` and leave
 * in one system call. A connection holds memory of its own only for what
 * cannot go now: a partial packet, or bytes the socket would not take. */
#define TTI_IO_RX_CAP (64u * 1024u)
#define TTI_IO_TX_CAP (64u * 1024u)
typedef struct tti_io_scratch {
    void *tx_owner;                   /* the connection whose bytes are in tx */
    size_t tx_n;
    /* Messages of the read being parsed, posted to their client's strand in
     * one go when the read ends (actors/session/session.c). */
    void *rx_head, *rx_tail;
    uint8_t tx[TTI_IO_TX_CAP];
    uint8_t rx[TTI_IO_RX_CAP];
} tti_io_scratch;

typedef struct tti_loop {
    _Alignas(64) tti_mpsc ready;      /* actors with messages waiting */
    _Alignas(64) atomic_bool wake_pending;
    struct event_base *base;
    struct event *wake_ev;            /* runs the ready queue */
    struct event *yield_ev;           /* a zero timer: the rest of the queue after I/O */
    int wake_fd;                      /* eventfd other threads write to wake a loop
                                       * thread; -1 when embedded (event_active) */
    struct evdns_base *dns;           /* resolver, made on first use (loop thread) */
    tti_io_scratch *io;               /* made on first use (loop thread) */
    struct tti_timer **theap;         /* timers by deadline (actors/timer.c) */
    uint32_t tn, tcap;
    struct event *tev;                /* fires at theap[0]'s deadline */
    uint64_t tev_due;
    bool tev_armed;
    tti_runtime *rt;
    pthread_t thread;
    bool has_thread;
    bool owns_base;
    atomic_uint nactors;              /* live actors, for placement */
    atomic_bool quit;
    uint32_t index;
    const char *name;
} tti_loop;

/* Set up `l` on `base` (NULL: create one). Starts no thread. */
int tti_loop_init(tti_loop *l, tti_runtime *rt, struct event_base *base, const char *name,
                  uint32_t index);
/* Start the loop's own thread. */
int tti_loop_start(tti_loop *l);
/* Ask the thread to leave its loop and join it (no-op without a thread). */
void tti_loop_stop_join(tti_loop *l);
/* Release the loop's events and, if it made it, its base. */
void tti_loop_fini(tti_loop *l);

/* The loop's DNS resolver, made on first use. Loop thread only. */
struct evdns_base *tti_loop_dns(tti_loop *l);

/* The loop's shared I/O buffers, made on first use (NULL without memory).
 * Loop thread only. */
tti_io_scratch *tti_loop_io(tti_loop *l);

/* Make sure the loop runs its ready queue soon. Any thread. */
void tti_loop_wake(tti_loop *l);

/* True on a thread that runs tether code: a loop or pool thread, or the host
 * thread while it is inside a tether callback. */
bool tti_on_library_thread(void);
void tti_library_enter(void);
void tti_library_leave(void);

#endif
