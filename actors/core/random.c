/* Random bytes from the kernel (actors/core/random.h). */
#include "actors/core/random.h"

#include <errno.h>
#include <stdint.h>
#include <sys/random.h>

bool tti_random_fill(void *p, size_t n) {
    uint8_t *b = p;
    while (n > 0) {
        ssize_t r = getrandom(b, n, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        b += r;
        n -= (size_t)r;
    }
    return true;
}
