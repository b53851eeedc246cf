/* Random bytes from the kernel. */
#ifndef TTI_CORE_RANDOM_H
#define TTI_CORE_RANDOM_H

#include <stdbool.h>
#include <stddef.h>

/* Fill `p` with `n` random bytes (getrandom, retried on EINTR and short
 * reads). False if the kernel gave none: the caller decides the fallback.
 * Any thread. */
bool tti_random_fill(void *p, size_t n);

#endif
