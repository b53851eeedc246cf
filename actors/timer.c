/* Timers: a binary min-heap of deadlines per loop, one libevent timer armed
 * for the earliest. See timer.h. */
#include "actors/timer.h"

#include <event2/event.h>
#include <time.h>

#include "actors/core/alloc.h"
#include "actors/core/log.h"
#include "actors/loop.h"

#define NOT_ARMED UINT32_MAX

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void put(tti_loop *l, uint32_t i, tti_timer *t) {
    l->theap[i] = t;
    t->slot = i;
}

static void sift_up(tti_loop *l, uint32_t i) {
    tti_timer *t = l->theap[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (l->theap[p]->due_us <= t->due_us) break;
        put(l, i, l->theap[p]);
        i = p;
    }
    put(l, i, t);
}

static void sift_down(tti_loop *l, uint32_t i) {
    tti_timer *t = l->theap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= l->tn) break;
        if (c + 1 < l->tn && l->theap[c + 1]->due_us < l->theap[c]->due_us) c++;
        if (t->due_us <= l->theap[c]->due_us) break;
        put(l, i, l->theap[c]);
        i = c;
    }
    put(l, i, t);
}

static void heap_remove(tti_loop *l, tti_timer *t) {
    uint32_t i = t->slot;
    t->slot = NOT_ARMED;
    tti_timer *last = l->theap[--l->tn];
    if (i == l->tn) return;
    put(l, i, last);
    sift_down(l, i);
    sift_up(l, last->slot);
}

/* Point the loop's libevent timer at the earliest deadline (only when it moved
 * earlier: a later one is found when the event fires). */
static void arm_event(tti_loop *l, uint64_t now) {
    if (l->tn == 0) return;
    uint64_t due = l->theap[0]->due_us;
    if (l->tev_armed && l->tev_due <= due) return;
    uint64_t d = due > now ? due - now : 0;
    struct timeval tv = { (time_t)(d / 1000000u), (suseconds_t)(d % 1000000u) };
    event_add(l->tev, &tv);
    l->tev_armed = true;
    l->tev_due = due;
}

static void heap_cb(evutil_socket_t fd, short what, void *arg) {
    tti_loop *l = arg;
    (void)fd;
    (void)what;
    l->tev_armed = false;
    tti_library_enter();
    uint64_t now = now_us();
    /* Everything due now; a callback that re-arms for "now" waits for the
     * next turn (its deadline is past `now` by at least a microsecond). */
    while (l->tn > 0 && l->theap[0]->due_us <= now) {
        tti_timer *t = l->theap[0];
        heap_remove(l, t);
        t->fn(t, t->arg);
    }
    arm_event(l, now_us());
    tti_library_leave();
}

int tti_timers_init(tti_loop *l) {
    l->theap = NULL;
    l->tn = l->tcap = 0;
    l->tev_armed = false;
    l->tev = event_new(l->base, -1, 0, heap_cb, l);
    return l->tev ? 0 : -1;
}

void tti_timers_fini(tti_loop *l) {
    if (l->tev) event_free(l->tev);
    l->tev = NULL;
    for (uint32_t i = 0; i < l->tn; i++) l->theap[i]->slot = NOT_ARMED;
    tti_free(l->theap);
    l->theap = NULL;
    l->tn = l->tcap = 0;
}

void tti_timer_init(tti_timer *t, tti_actor *a, tti_timer_fn fn, void *arg) {
    t->fn = fn;
    t->arg = arg;
    t->loop = a->loop;
    t->due_us = 0;
    t->slot = NOT_ARMED;
}

void tti_timer_fini(tti_timer *t) { tti_timer_cancel(t); }

tti_timer *tti_timer_new(tti_actor *a, tti_timer_fn fn, void *arg) {
    tti_timer *t = tti_malloc(sizeof *t);
    if (t) tti_timer_init(t, a, fn, arg);
    return t;
}

void tti_timer_arm(tti_timer *t, uint32_t ms) {
    tti_loop *l = t->loop;
    uint64_t now = now_us();
    t->due_us = now + (uint64_t)ms * 1000u;
    if (t->slot == NOT_ARMED) {
        if (l->tn == l->tcap) {
            uint32_t cap = l->tcap ? l->tcap * 2 : 64;
            tti_timer **h = tti_realloc(l->theap, (size_t)cap * sizeof *h);
            if (!h) {
                /* Cannot happen short of memory; the timer stays unarmed. */
                TTI_LOG(ERROR, "timer", "no memory for a timer");
                return;
            }
            l->theap = h;
            l->tcap = cap;
        }
        put(l, l->tn++, t);
        sift_up(l, t->slot);
    } else {
        sift_down(l, t->slot);
        sift_up(l, t->slot);
    }
    arm_event(l, now);
}

void tti_timer_cancel(tti_timer *t) {
    if (t->slot != NOT_ARMED) heap_remove(t->loop, t);
}

bool tti_timer_armed(const tti_timer *t) { return t->slot != NOT_ARMED; }

void tti_timer_free(tti_timer *t) {
    if (!t) return;
    tti_timer_cancel(t);
    tti_free(t);
}
