/* Wall-clock time (actors/core/clock.h). */
#include "actors/core/clock.h"

#include <stdio.h>
#include <time.h>

int64_t tti_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t tti_utc_iso8601(int64_t ms, char out[TTI_UTC_ISO8601_SIZE]) {
    int64_t frac = ms % 1000;
    if (frac < 0) frac += 1000;
    time_t secs = (time_t)((ms - frac) / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm)) {
        out[0] = '\0';
        return 0;
    }
    int n = snprintf(out, TTI_UTC_ISO8601_SIZE, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)frac);
    return n > 0 && n < TTI_UTC_ISO8601_SIZE ? (size_t)n : 0;
}
