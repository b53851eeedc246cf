/* Uses only the installed headers and library. */
#include <stdio.h>
#include <string.h>
#include <tether/tether.h>

static void work(tt_promise *p, void *arg) {
    (void)arg;
    tt_promise_set_value(p, NULL, NULL, 7);
    tt_promise_complete(p, TT_OK, 0, NULL);
}

int main(void) {
    if (strcmp(tt_version(), TT_VERSION_STRING) != 0) return 1;
    tt_runtime *rt;
    tt_actor *a;
    if (tt_runtime_new(&rt, NULL) != TT_OK || tt_actor_new(rt, &a) != TT_OK) return 1;
    tt_future *f = tt_actor_call(a, work, NULL, NULL);
    int ok = tt_future_wait(f, 5000) == TT_OK && tt_future_get_i64(f) == 7;
    tt_future_free(f);
    tt_actor_free(a);
    tt_runtime_free(rt);
    printf("consumer: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
