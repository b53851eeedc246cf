/* Wall-clock time as the platforms write it. */
#ifndef TTI_CORE_CLOCK_H
#define TTI_CORE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* "YYYY-MM-DDThh:mm:ss.sssZ" and its NUL, with room for longer years. */
#define TTI_UTC_ISO8601_SIZE 40

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). Any thread. */
int64_t tti_now_ms(void);

/* `ms` since the epoch as ISO 8601 UTC with milliseconds into `out`
 * (NUL-terminated). Returns the length, or 0 for a time gmtime cannot
 * represent. Any thread. */
size_t tti_utc_iso8601(int64_t ms, char out[TTI_UTC_ISO8601_SIZE]);

#endif
