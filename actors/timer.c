/* Actor timers: see timer.h. */
#include "actors/timer.h"

#include <event2/event.h>
#include <event2/event_struct.h>

#include "actors/core/alloc.h"

/* One allocation: the event lives inside. */
struct tti_timer {
    struct event ev;
    tti_timer_fn fn;
    void *arg;
};

static void timer_cb(evutil_socket_t fd, short what, void *arg) {
    tti_timer *t = arg;
    (void)fd;
    (void)what;
    tti_library_enter();
    t->fn(t, t->arg);
    tti_library_leave();
}

tti_timer *tti_timer_new(tti_actor *a, tti_timer_fn fn, void *arg) {
    tti_timer *t = tti_malloc(sizeof *t);
    if (!t) return NULL;
    t->fn = fn;
    t->arg = arg;
    if (event_assign(&t->ev, a->loop->base, -1, 0, timer_cb, t) != 0) {
        tti_free(t);
        return NULL;
    }
    return t;
}

void tti_timer_arm(tti_timer *t, uint32_t ms) {
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    event_add(&t->ev, &tv);
}

void tti_timer_cancel(tti_timer *t) { event_del(&t->ev); }

bool tti_timer_armed(const tti_timer *t) { return event_pending(&t->ev, EV_TIMEOUT, NULL) != 0; }

void tti_timer_free(tti_timer *t) {
    if (!t) return;
    event_del(&t->ev);
    tti_free(t);
}
