/* Timers owned by an actor: created, armed, cancelled and freed on the
 * actor's loop thread only; the callback runs there too.
 *
 * A timer is a small node in its loop's min-heap of deadlines; the loop keeps
 * one libevent timer for the earliest. Thousands of clients each with a
 * keepalive tick cost one heap slot each, and re-arming a tick further out
 * touches neither libevent nor the kernel. */
#ifndef TTI_TIMER_H
#define TTI_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "actors/actor.h"

typedef struct tti_timer tti_timer;
typedef void (*tti_timer_fn)(tti_timer *t, void *arg);

struct tti_timer {
    tti_timer_fn fn;
    void *arg;
    tti_loop *loop;
    uint64_t due_us;                  /* monotonic */
    uint32_t slot;                    /* index in the loop's heap; UINT32_MAX: not armed */
};

/* A timer inside the caller's own struct (no allocation). */
void tti_timer_init(tti_timer *t, tti_actor *a, tti_timer_fn fn, void *arg);
/* Cancel and forget; the memory stays the caller's. */
void tti_timer_fini(tti_timer *t);

tti_timer *tti_timer_new(tti_actor *a, tti_timer_fn fn, void *arg);
/* (Re)arm to fire once after `ms` milliseconds. */
void tti_timer_arm(tti_timer *t, uint32_t ms);
void tti_timer_cancel(tti_timer *t);
bool tti_timer_armed(const tti_timer *t);
void tti_timer_free(tti_timer *t);

/* The loop's side (actors/loop.c): set up and tear down its heap. */
int tti_timers_init(tti_loop *l);
void tti_timers_fini(tti_loop *l);

#endif
