/* Test support: tether's allocations counted through tt_set_allocator(), so a
 * test can check that every block made for a runtime and its clients is
 * freed with it, or that no single request grew with what a peer declared;
 * and the process's open descriptors. */
#ifndef TT_TEST_LIVE_ALLOC_H
#define TT_TEST_LIVE_ALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <tether/log.h>

/* Install the counting allocator (once per process; later calls do nothing)
 * and make libevent's process-wide state, which outlives every runtime, so
 * that it never shows as a leak. TT_TEST_LOG in the environment logs to
 * stderr at `log_level`. */
void tt_live_hook(tt_log_level log_level);

/* A runtime with `loops` loop threads (after tt_live_hook(level)); *base
 * gets the live count before it, for tt_live_runtime_free(). Aborts if the
 * runtime cannot be made. */
struct tt_runtime *tt_live_runtime(uint32_t loops, tt_log_level level, long *base);

/* Free the runtime; the blocks still live beyond `base` (0 when everything
 * made for the runtime and its clients went with it). */
long tt_live_runtime_free(struct tt_runtime *rt, long base);

/* Blocks tether (and libevent, through tether's allocator) holds now. */
long tt_live_blocks(void);

/* The largest single malloc or realloc request since the last reset. */
size_t tt_live_largest(void);
void tt_live_largest_reset(void);

/* Descriptors open in this process (the count's own excluded); -1 if
 * /proc/self/fd cannot be read. */
int tt_open_fds(void);

#endif
