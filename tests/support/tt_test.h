/* A small single-header test harness.
 *
 *   static void test_x(void) { TT_CHECK(1 + 1 == 2); TT_CHECK_EQ_INT(a, b); }
 *   TT_TEST_LIST = { { "x", test_x }, { NULL, NULL } };
 *
 * `prog` runs every test; `prog name...` runs the named ones. Each test runs
 * in the same process; a failed check records file:line and the test goes on.
 * The last line is "N passed, N failed" and the exit code is non-zero on failure. */
#ifndef TT_TEST_H
#define TT_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct tt_test_case {
    const char *name;
    void (*fn)(void);
} tt_test_case;

extern const tt_test_case tt_test_list_[];
static int tt_test_failures_;

#define TT_TEST_LIST const tt_test_case tt_test_list_[]

#define TT_CHECK_MSG(cond, ...)                                                    \
    do {                                                                           \
        if (!(cond)) {                                                             \
            tt_test_failures_++;                                                   \
            fprintf(stderr, "  %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                          \
            fputc('\n', stderr);                                                   \
        }                                                                          \
    } while (0)
#define TT_CHECK(cond) TT_CHECK_MSG(cond, "%s", "")
#define TT_CHECK_EQ_INT(a, b)                                                      \
    do {                                                                           \
        long long tt_a_ = (long long)(a), tt_b_ = (long long)(b);                  \
        TT_CHECK_MSG(tt_a_ == tt_b_, "%lld != %lld", tt_a_, tt_b_);                \
    } while (0)
#define TT_CHECK_EQ_STR(a, b)                                                      \
    do {                                                                           \
        const char *tt_a_ = (a), *tt_b_ = (b);                                     \
        TT_CHECK_MSG(tt_a_ && tt_b_ && strcmp(tt_a_, tt_b_) == 0, "\"%s\" != \"%s\"", \
                     tt_a_ ? tt_a_ : "(null)", tt_b_ ? tt_b_ : "(null)");          \
    } while (0)
/* Stop the current test at once (for checks later code depends on). */
#define TT_REQUIRE(cond)                                                           \
    do {                                                                           \
        if (!(cond)) {                                                             \
            tt_test_failures_++;                                                   \
            fprintf(stderr, "  %s:%d: required: %s\n", __FILE__, __LINE__, #cond); \
            return;                                                                \
        }                                                                          \
    } while (0)

static inline double tt_test_now_(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    int passed = 0, failed = 0;
    for (const tt_test_case *t = tt_test_list_; t->name; t++) {
        if (argc > 1) {
            int wanted = 0;
            for (int i = 1; i < argc; i++)
                if (strcmp(argv[i], t->name) == 0) wanted = 1;
            if (!wanted) continue;
        }
        int before = tt_test_failures_;
        double t0 = tt_test_now_();
        fprintf(stderr, "[ RUN  ] %s\n", t->name);
        t->fn();
        double dt = tt_test_now_() - t0;
        if (tt_test_failures_ == before) {
            passed++;
            fprintf(stderr, "[  OK  ] %s (%.3f s)\n", t->name, dt);
        } else {
            failed++;
            fprintf(stderr, "[ FAIL ] %s (%.3f s)\n", t->name, dt);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#endif /* TT_TEST_H */
