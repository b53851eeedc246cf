/* WebSocket (RFC 6455) framing for MQTT over WebSocket, client side.
 *
 * Pure code: no sockets, no event loop, no allocation. The transport actor
 * feeds received bytes in and writes the produced bytes out.
 *
 *   1. Opening handshake: tti_ws_handshake_init() picks a random key,
 *      tti_ws_handshake_request() writes the HTTP/1.1 upgrade request, and
 *      tti_ws_handshake_feed() parses the server's response as it arrives.
 *      Bytes after the response header belong to the frame decoder.
 *   2. Frames out: every client frame is masked with a fresh key (RFC 6455
 *      section 5.3). tti_ws_tx_header() writes only the header and the mask
 *      key, so the payload can be masked in place or while copying with
 *      tti_ws_mask(); tti_ws_tx_frame() does both into one buffer.
 *   3. Frames in: tti_ws_rx_feed() decodes server frames incrementally and
 *      yields the payload bytes of data frames (MQTT is a byte stream, so
 *      message boundaries and fragmentation do not matter to the caller). A
 *      ping is reported so the caller answers with tti_ws_tx_pong(); pongs
 *      are skipped; a close frame ends the stream with TT_ECONNRESET.
 *
 * MQTT requires binary frames (MQTT-6.0.0-1): text frames are refused, and the
 * handshake requires the "mqtt" subprotocol.
 *
 * Return convention: a count or status >= 0, or a negative tt_err. Errors
 * carry a static or per-object English reason (`why`). Errors are final: the
 * object keeps returning the same error.
 *
 * Thread: functions only touch their arguments; an object is used by one
 * thread at a time (its transport actor). */
#ifndef TTI_TRANSPORT_WS_H
#define TTI_TRANSPORT_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tether/err.h>

#define TTI_WS_KEY_LEN         24u   /* base64 of the 16-byte nonce */
#define TTI_WS_ACCEPT_LEN      28u   /* base64 of a SHA-1 digest */
#define TTI_WS_MAX_HEADER      8192u /* largest handshake response header accepted */
#define TTI_WS_MAX_FRAME_HDR   14u   /* 2 + 8 (64-bit length) + 4 (mask key) */
#define TTI_WS_MAX_CONTROL     125u  /* largest control frame payload */
#define TTI_WS_DEFAULT_MAX_PAYLOAD 268435460u /* the largest MQTT packet */

/* Opcodes (RFC 6455 section 5.2). */
enum {
    TTI_WS_OP_CONT   = 0x0,
    TTI_WS_OP_TEXT   = 0x1,
    TTI_WS_OP_BINARY = 0x2,
    TTI_WS_OP_CLOSE  = 0x8,
    TTI_WS_OP_PING   = 0x9,
    TTI_WS_OP_PONG   = 0xA
};

#define TTI_WS_CLOSE_NORMAL    1000u
#define TTI_WS_CLOSE_NO_STATUS 1005u /* reported when a close frame has no body */

/* ---- Opening handshake ----------------------------------------------------------- */

/* Caller storage (about 8.3 KiB: the response is parsed line by line). */
typedef struct tti_ws_handshake {
    char key[TTI_WS_KEY_LEN + 1];       /* Sec-WebSocket-Key sent */
    char accept[TTI_WS_ACCEPT_LEN + 1]; /* the Sec-WebSocket-Accept expected */
    uint32_t total;                     /* response header bytes seen */
    uint32_t line_len;
    uint8_t state;
    uint8_t seen;                       /* headers found (internal bits) */
    int err;                            /* sticky error, or 0 */
    const char *why;                    /* reason for err (static or `reason`) */
    char reason[96];
    char line[TTI_WS_MAX_HEADER];
} tti_ws_handshake;

/* A fresh handshake with a random key (getrandom). TT_EINTERNAL if the system
 * has no randomness to give. */
int tti_ws_handshake_init(tti_ws_handshake *hs);

/* The same with a chosen 16-byte nonce (tests, reproducible traces). */
void tti_ws_handshake_init_nonce(tti_ws_handshake *hs, const uint8_t nonce[16]);

/* Write the upgrade request into out[0..cap) (NUL-terminated):
 *   GET {path} HTTP/1.1, Host, Upgrade: websocket, Connection: Upgrade,
 *   Sec-WebSocket-Key, Sec-WebSocket-Version: 13, Sec-WebSocket-Protocol: mqtt.
 * `port` is left out of Host when it is the default (80, or 443 with `tls`);
 * an IPv6 literal gets brackets. `path` NULL or "" means "/mqtt".
 * Returns the request length (without the NUL), TT_EINVAL (host or path empty,
 * with spaces or control characters, or a path not starting with '/'), or
 * TT_ENOMEM (`cap` too small). */
int tti_ws_handshake_request(const tti_ws_handshake *hs, const char *host, uint16_t port,
                             bool tls, const char *path, char *out, size_t cap);

/* Feed response bytes as they arrive, in any pieces. Returns
 *   0  the header is not complete yet: all `len` bytes were used;
 *   1  the upgrade is accepted: *used bytes belong to the header, and
 *      in[*used..len) are the first frame bytes;
 *   TT_EPROTO with hs->why: "HTTP 404 Not Found" (any status but 101),
 *      "bad Sec-WebSocket-Accept", "no mqtt subprotocol", "missing Upgrade:
 *      websocket", a header over TTI_WS_MAX_HEADER bytes, a malformed line...
 * After 1, further calls return 1 with *used = 0. */
int tti_ws_handshake_feed(tti_ws_handshake *hs, const uint8_t *in, size_t len, size_t *used);

/* Standard base64 with padding; `out` holds 4 * ceil(n / 3) + 1 bytes. */
void tti_base64_encode(const uint8_t *in, size_t n, char *out);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + the RFC 6455 GUID)),
 * written NUL-terminated into out. TT_EINTERNAL if SHA-1 fails. */
int tti_ws_accept_for_key(const char *key, size_t key_len, char out[TTI_WS_ACCEPT_LEN + 1]);

/* ---- Frames out (client: always masked) -------------------------------------------- */

/* Caller storage: a pool of kernel randomness for mask keys, refilled every
 * 64 frames, so a frame costs no system call. */
typedef struct tti_ws_tx {
    uint32_t left;       /* unused bytes at the end of pool */
    uint8_t pool[256];
} tti_ws_tx;

void tti_ws_tx_init(tti_ws_tx *tx);

/* Write the header of one frame carrying `payload_len` bytes: FIN (if `fin`),
 * `opcode`, the MASK bit, a 7/16/64-bit length, and a fresh mask key, which is
 * also copied to mask[4]. The caller then sends the payload masked with
 * tti_ws_mask(..., mask, 0).
 * Returns the header length (6, 8 or 14), TT_EINVAL (bad opcode, or a control
 * frame longer than 125 bytes or not final) or TT_EINTERNAL (no randomness). */
int tti_ws_tx_header(tti_ws_tx *tx, uint8_t opcode, bool fin, uint64_t payload_len,
                     uint8_t hdr[TTI_WS_MAX_FRAME_HDR], uint8_t mask[4]);

/* dst[i] = src[i] ^ mask[(offset + i) % 4] for i < n. `dst` may equal `src`.
 * `offset` is the position of src[0] in the frame's payload, so a payload can
 * be masked in pieces. Works 8 bytes at a time. */
void tti_ws_mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4],
                 uint64_t offset);

/* A whole frame (header + masked payload) into out[0..cap).
 * Returns the frame length, TT_ENOMEM (cap too small) or as tti_ws_tx_header. */
int tti_ws_tx_frame(tti_ws_tx *tx, uint8_t opcode, const void *payload, size_t len,
                    uint8_t *out, size_t cap);

/* The pong answering a ping: the same payload (at most 125 bytes). */
int tti_ws_tx_pong(tti_ws_tx *tx, const uint8_t *payload, size_t len, uint8_t *out,
                   size_t cap);

/* A close frame with a status code (e.g. TTI_WS_CLOSE_NORMAL) and an optional
 * reason (at most 123 bytes). Fits in TTI_WS_MAX_FRAME_HDR + 125 bytes. */
int tti_ws_tx_close(tti_ws_tx *tx, uint16_t code, const char *reason, size_t reason_len,
                    uint8_t *out, size_t cap);

/* ---- Frames in (server: never masked) --------------------------------------------- */

/* tti_ws_rx_feed results (>= 0). */
enum {
    TTI_WS_MORE = 0, /* input used up; feed more */
    TTI_WS_DATA = 1, /* *data / *data_len: payload bytes of a data frame */
    TTI_WS_PING = 2  /* rx->ctl / rx->ctl_len: answer with tti_ws_tx_pong() */
};

/* Caller storage. */
typedef struct tti_ws_rx {
    uint64_t max_payload;    /* largest frame payload accepted */
    uint64_t left;           /* payload bytes still to come in this frame */
    uint8_t state;
    uint8_t opcode;          /* of the current frame */
    bool fin;
    bool in_message;         /* a fragmented data message is open */
    uint8_t hdr_len, hdr_need;
    uint8_t hdr[TTI_WS_MAX_FRAME_HDR];
    uint8_t ctl_len;
    uint8_t ctl[TTI_WS_MAX_CONTROL]; /* payload of the current control frame */
    uint16_t close_code;     /* after TT_ECONNRESET: the peer's status */
    char close_reason[TTI_WS_MAX_CONTROL - 1]; /* ...and its reason, NUL-terminated */
    int err;                 /* sticky error, or 0 */
    const char *why;
} tti_ws_rx;

/* A decoder. `max_payload` 0 means TTI_WS_DEFAULT_MAX_PAYLOAD; a frame that
 * declares more is refused from its header, before any payload is read. */
void tti_ws_rx_init(tti_ws_rx *rx, uint64_t max_payload);

/* Decode from in[0..len). *used is how many bytes were consumed (also on
 * errors). Returns
 *   TTI_WS_MORE  every byte used, no event;
 *   TTI_WS_DATA  *data (a view into `in`) / *data_len payload bytes, in order;
 *   TTI_WS_PING  a complete ping, its payload in rx->ctl / rx->ctl_len;
 *   TT_ECONNRESET  a close frame: rx->close_code and rx->close_reason;
 *   TT_EPROTO    with rx->why: a masked frame, reserved bits, an unknown
 *                opcode, a text frame, a bad fragment sequence, a control frame
 *                over 125 bytes or fragmented, a length over max_payload or
 *                not minimally encoded, a malformed close body.
 * Call again with in + *used until TTI_WS_MORE. */
int tti_ws_rx_feed(tti_ws_rx *rx, const uint8_t *in, size_t len, size_t *used,
                   const uint8_t **data, size_t *data_len);

#endif /* TTI_TRANSPORT_WS_H */
