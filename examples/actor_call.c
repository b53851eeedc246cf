/* Create a runtime, send work to an actor, wait on the future. */
#include <stdio.h>
#include <tether/tether.h>

static void square(tt_promise *p, void *arg) {     /* runs on the actor's loop thread */
    int64_t x = *(const int64_t *)arg;
    tt_promise_set_value(p, NULL, NULL, x * x);
    tt_promise_complete(p, TT_OK, 0, NULL);
}

int main(void) {
    tt_runtime *rt;
    tt_actor *actor;
    int64_t x = 12;
    if (tt_runtime_new(&rt, NULL) != TT_OK || tt_actor_new(rt, &actor) != TT_OK) return 1;
    tt_future *f = tt_actor_call(actor, square, &x, NULL);
    tt_err rc = tt_future_wait(f, 1000);
    printf("%lld squared is %lld (%s)\n", (long long)x, (long long)tt_future_get_i64(f), tt_strerror(rc));
    tt_future_free(f);
    tt_actor_free(actor);
    tt_runtime_free(rt);
    return rc == TT_OK ? 0 : 1;
}
