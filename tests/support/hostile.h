/* A scripted, misbehaving MQTT "broker" for one test.
 *
 * It listens on a free 127.0.0.1 port in its own thread and plays a fixed
 * script to each connection it accepts, one connection at a time:
 *
 *   static const uint8_t connack[] = { 0x20, 0x02, 0x00, 0x00 };
 *   static const uint8_t bad[] = { 0x00, 0x00 };          unknown packet type 0
 *   tt_hostile_step s[] = {
 *       TT_HOSTILE_EXPECT(TTI_MQTT_CONNECT),               read the client's CONNECT
 *       TT_HOSTILE_SEND(connack),
 *       TT_HOSTILE_SEND(bad),
 *       TT_HOSTILE_HOLD(),                                 keep the socket open
 *   };
 *   tt_hostile *h;
 *   tt_hostile_start(&h, s, sizeof s / sizeof s[0]);
 *   ... connect a client to 127.0.0.1:tt_hostile_port(h) ...
 *   tt_hostile_free(h);
 *
 * Every wait is bounded (5 s for a packet, TT_HOSTILE_HOLD until the client
 * closes or the server is freed), so a client that misbehaves in turn cannot
 * hang the test. Functions return 0 on success and -1 on failure after a line
 * on stderr. One thread drives a given server. */
#ifndef TT_SUPPORT_HOSTILE_H
#define TT_SUPPORT_HOSTILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tt_hostile_op {
    TT_HOSTILE_OP_EXPECT = 1,  /* read one whole packet from the client; `type` 0 = any */
    TT_HOSTILE_OP_SEND,        /* write `bytes` (patched with the last packet id, see pid_at) */
    TT_HOSTILE_OP_SLEEP,       /* pause `ms` */
    TT_HOSTILE_OP_CLOSE,       /* close the connection (FIN); the next one starts the script again */
    TT_HOSTILE_OP_HOLD         /* read and discard until the client closes or the server stops */
} tt_hostile_op;

typedef struct tt_hostile_step {
    tt_hostile_op op;
    uint8_t type;              /* EXPECT: MQTT packet type wanted, 0 = any */
    const uint8_t *bytes;      /* SEND */
    size_t len;
    size_t pid_at;             /* SEND: if non-zero, bytes[pid_at..+1] = the packet id of
                                  the last packet EXPECTed (big-endian) */
    uint32_t ms;               /* SLEEP */
} tt_hostile_step;

#define TT_HOSTILE_EXPECT(t) { .op = TT_HOSTILE_OP_EXPECT, .type = (t) }
#define TT_HOSTILE_SEND(arr) { .op = TT_HOSTILE_OP_SEND, .bytes = (arr), .len = sizeof(arr) }
#define TT_HOSTILE_SEND_PID(arr, at) \
    { .op = TT_HOSTILE_OP_SEND, .bytes = (arr), .len = sizeof(arr), .pid_at = (at) }
#define TT_HOSTILE_SLEEP(m) { .op = TT_HOSTILE_OP_SLEEP, .ms = (m) }
#define TT_HOSTILE_CLOSE() { .op = TT_HOSTILE_OP_CLOSE }
#define TT_HOSTILE_HOLD() { .op = TT_HOSTILE_OP_HOLD }

typedef struct tt_hostile tt_hostile;

/* Copy the script (and its bytes), bind a free loopback port and start the
 * thread. */
int tt_hostile_start(tt_hostile **out, const tt_hostile_step *steps, size_t n);

int tt_hostile_port(const tt_hostile *h);

/* Connections accepted so far, and scripts played to the end. */
int tt_hostile_accepted(const tt_hostile *h);
int tt_hostile_completed(const tt_hostile *h);

/* Stop the thread, close every socket, free. NULL is a no-op. */
void tt_hostile_free(tt_hostile *h);

#ifdef __cplusplus
}
#endif

#endif /* TT_SUPPORT_HOSTILE_H */
