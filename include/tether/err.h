/* tether — error codes. */
#ifndef TETHER_ERR_H
#define TETHER_ERR_H

#include <tether/common.h>

TT_BEGIN_DECLS

/* X(name, value, text): the single table behind tt_err, tt_strerror and tt_err_name.
 * Values are negative so codec calls can return "bytes >= 0 or a tt_err". */
#define TT_ERR_TABLE(X)                                                          \
    X(TT_OK,           0,   "success")                                           \
    X(TT_ENOMEM,      -1,   "out of memory")                                     \
    X(TT_EINVAL,      -2,   "invalid argument")                                  \
    X(TT_ETIMEDOUT,   -3,   "timed out")                                         \
    X(TT_ECANCELED,   -4,   "operation canceled")                                \
    X(TT_ECLOSED,     -5,   "object closed")                                     \
    X(TT_EAGAIN,      -6,   "queue full, try later")                             \
    X(TT_ECONNREFUSED,-7,   "connection refused")                                \
    X(TT_ECONNRESET,  -8,   "connection reset")                                  \
    X(TT_ETLS,        -9,   "TLS failure")                                       \
    X(TT_EPROTO,      -10,  "protocol error")                                    \
    X(TT_EREFUSED,    -11,  "refused by the server")                             \
    X(TT_ENOTSUP,     -12,  "not supported")                                     \
    X(TT_EDEADLK,     -13,  "would deadlock: blocking call on a library thread") \
    X(TT_EBUSY,       -14,  "busy or still pending")                             \
    X(TT_ENOTFOUND,   -15,  "not found")                                         \
    X(TT_EAUTH,       -16,  "not authorized")                                    \
    X(TT_EIO,         -17,  "file read or write failed")                         \
    X(TT_EINTERNAL,   -99,  "internal error")

typedef enum tt_err {
#define TT_ERR_ENUM_(name, value, text) name = value,
    TT_ERR_TABLE(TT_ERR_ENUM_)
#undef TT_ERR_ENUM_
} tt_err;

/**
 * A short English description of an error code ("timed out").
 * Thread: any. Returns a static string; unknown codes give "unknown error".
 */
TT_API const char *tt_strerror(int err);

/**
 * The enumerator's name ("TT_ETIMEDOUT").
 * Thread: any. Returns a static string; unknown codes give "TT_E?".
 */
TT_API const char *tt_err_name(int err);

TT_END_DECLS

#endif /* TETHER_ERR_H */
