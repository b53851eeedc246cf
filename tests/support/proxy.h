/* A fault-injecting TCP proxy for one test: clients connect to 127.0.0.1 on
 * tt_proxy_port(), the proxy connects each to the upstream port (a tt_broker)
 * and forwards bytes both ways from its own thread, until told to misbehave:
 *
 *   tt_proxy *p;
 *   tt_proxy_start(&p, broker.port);
 *   ... clients use mqtt://127.0.0.1:<tt_proxy_port(p)> ...
 *   tt_proxy_cut_all(p);                 every connection reset (RST), at once
 *   tt_proxy_stall(p, true);             nothing forwarded, nothing closed
 *   tt_proxy_set_delay_ms(p, 50);        every chunk held 50 ms
 *   tt_proxy_split_writes(p, true);      one byte per write
 *   tt_proxy_cut_mid_packet(p, TT_PROXY_UP, 3);
 *                                        the next chunk toward the broker is cut
 *                                        inside an MQTT packet, then the
 *                                        connection closes
 *   tt_proxy_free(p);
 *
 * New connections while the upstream refuses (a broker restarting) are
 * closed at once. Control calls are thread-safe; cut calls return when the
 * proxy thread has done the cut. Every wait is bounded. Functions returning
 * int give 0 on success and -1 after a line on stderr. */
#ifndef TT_SUPPORT_PROXY_H
#define TT_SUPPORT_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tt_proxy tt_proxy;

typedef enum tt_proxy_dir {
    TT_PROXY_UP = 0,                  /* client → broker */
    TT_PROXY_DOWN = 1                 /* broker → client */
} tt_proxy_dir;

int tt_proxy_start(tt_proxy **out, int upstream_port);
int tt_proxy_port(const tt_proxy *p);

/* Reset every open connection (both sides, SO_LINGER 0). Returns how many
 * client connections were cut. */
int tt_proxy_cut_all(tt_proxy *p);

/* Stop (true) or resume (false) forwarding in both directions without
 * closing anything; the kernel buffers fill and TCP stays quiet. */
void tt_proxy_stall(tt_proxy *p, bool on);

/* Hold every chunk read for `ms` before forwarding it (0: none). */
void tt_proxy_set_delay_ms(tt_proxy *p, uint32_t ms);

/* Forward one byte per write (true) or whole chunks (false). */
void tt_proxy_split_writes(tt_proxy *p, bool on);

/* Arm a cut: the next chunk read in direction `d` is forwarded only up to
 * `n` bytes into the first MQTT packet that starts in it (at least 1 byte,
 * never the whole packet), then both sides are closed. Returns once the cut
 * happened (true) or after `timeout_ms` without traffic (false, disarmed). */
bool tt_proxy_cut_mid_packet(tt_proxy *p, tt_proxy_dir d, size_t n, int timeout_ms);

/* Counters: client connections accepted, open now, and cut (all kinds). */
int tt_proxy_accepted(const tt_proxy *p);
int tt_proxy_open(const tt_proxy *p);
int tt_proxy_cuts(const tt_proxy *p);

/* Stop the thread, close everything, free. NULL is a no-op. */
void tt_proxy_free(tt_proxy *p);

#ifdef __cplusplus
}
#endif

#endif /* TT_SUPPORT_PROXY_H */
