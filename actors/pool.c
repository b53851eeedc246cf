/* Strands: see pool.h. */
#include "actors/pool.h"

#include <tether/err.h>

#include "actors/core/alloc.h"
#include "actors/runtime.h"

static void run_cb(tti_cb *cb) {
    tti_library_enter();
    cb->run(cb);
    tti_library_leave();
}

void tti_strand_handle(tti_actor *a, tti_msg *m) {
    (void)a;
    run_cb(TTI_CONTAINER_OF(m, tti_cb, msg));
}

static void strand_destroy(tti_actor *a) { tti_free(a); }

/* Callbacks run exactly once: even one that reaches a stopped strand runs. */
static const tti_actor_ops strand_ops = {
    .handle = tti_strand_handle,
    .drop = tti_strand_handle,
    .stopped = NULL,
    .destroy = strand_destroy,
};

tti_actor *tti_strand_new(tti_runtime *rt) {
    tti_actor *a = tti_malloc(sizeof *a);
    if (a && !tti_strand_init(a, rt, &strand_ops)) {
        tti_free(a);
        a = NULL;
    }
    return a;
}

bool tti_strand_init(tti_actor *a, tti_runtime *rt, const tti_actor_ops *ops) {
    tti_loop *l = tti_runtime_pick_pool(rt);
    if (!l) return false;
    tti_actor_init(a, l, ops);
    return true;
}

void tti_strand_post(tti_actor *strand, tti_cb *cb) {
    if (strand && tti_actor_send(strand, &cb->msg) == TT_OK) return;
    tti_actor *fb = strand ? tti_runtime_fallback_strand(strand->loop->rt) : NULL;
    if (fb && tti_actor_send(fb, &cb->msg) == TT_OK) return;
    run_cb(cb);
}

void tti_strand_free(tti_actor *strand) {
    if (!strand) return;
    tti_actor_stop(strand);
    tti_actor_release(strand);
}
