/* Scale loop counts down under sanitizers, which slow code 5-20x. */
#ifndef TT_SCALE_H
#define TT_SCALE_H

#if defined(__SANITIZE_THREAD__)
#define TT_SCALE_DIV 8
#elif defined(__SANITIZE_ADDRESS__)
#define TT_SCALE_DIV 2
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TT_SCALE_DIV 8
#elif __has_feature(address_sanitizer)
#define TT_SCALE_DIV 2
#endif
#endif
#ifndef TT_SCALE_DIV
#define TT_SCALE_DIV 1
#endif

#define TT_SCALED(n) ((n) / TT_SCALE_DIV)

#endif
