/* libFuzzer target: the WebSocket handshake parser, then the frame decoder.
 *
 * Input: byte 0 picks the mode (bit 0 set: frames only, no handshake) and a
 * piece size (bits 1-7; 0 = all at once); the rest is what the server sent.
 * The handshake uses the RFC 6455 sample nonce, so seeds can carry a valid
 * Sec-WebSocket-Accept. Frames are decoded twice, in pieces and byte by byte;
 * both must yield the same bytes, pings and final status. Traps on any
 * inconsistency. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct result {
    uint8_t *out; /* data bytes, concatenated */
    size_t out_len;
    unsigned pings;
    uint32_t ping_sum; /* over all ping payload bytes */
    int rc;            /* last status */
    size_t consumed;
} result;

static void decode(const uint8_t *in, size_t len, size_t piece, result *r) {
    tti_ws_rx rx;
    tti_ws_rx_init(&rx, 1u << 20);
    size_t off = 0;
    r->rc = TTI_WS_MORE;
    while (off < len) {
        size_t n = piece && piece < len - off ? piece : len - off;
        size_t p = 0;
        while (p < n) {
            size_t used = 0, dl = 0;
            const uint8_t *d = NULL;
            int rc = tti_ws_rx_feed(&rx, in + off + p, n - p, &used, &d, &dl);
            if (used > n - p) __builtin_trap();
            p += used;
            r->consumed += used;
            r->rc = rc;
            if (rc < 0) {
                if (rc != TT_EPROTO && rc != TT_ECONNRESET) __builtin_trap();
                if (!rx.why) __builtin_trap();
                size_t u2 = 1;
                if (tti_ws_rx_feed(&rx, in, len, &u2, &d, &dl) != rc || u2 != 0) __builtin_trap();
                return;
            }
            if (rc == TTI_WS_DATA) {
                if (dl == 0 || d < in + off + p - used || d + dl > in + off + p) __builtin_trap();
                memcpy(r->out + r->out_len, d, dl);
                r->out_len += dl;
            } else if (rc == TTI_WS_PING) {
                if (rx.ctl_len > TTI_WS_MAX_CONTROL) __builtin_trap();
                r->pings++;
                for (size_t i = 0; i < rx.ctl_len; i++) r->ping_sum += rx.ctl[i];
            } else if (rc != TTI_WS_MORE || p != n) {
                __builtin_trap();
            }
        }
        off += n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    bool frames_only = data[0] & 1;
    size_t piece = data[0] >> 1;
    const uint8_t *in = data + 1;
    size_t len = size - 1;

    if (!frames_only) {
        static tti_ws_handshake hs;
        tti_ws_handshake_init_nonce(&hs, (const uint8_t *)"the sample nonce");
        size_t off = 0;
        int rc = 0;
        while (off < len) {
            size_t n = piece && piece < len - off ? piece : len - off;
            size_t used = 0;
            rc = tti_ws_handshake_feed(&hs, in + off, n, &used);
            if (used > n) __builtin_trap();
            off += used;
            if (rc < 0) {
                if (rc != TT_EPROTO || !hs.why) __builtin_trap();
                return 0;
            }
            if (rc == 1) break;
            if (rc != 0 || used != n) __builtin_trap();
        }
        if (hs.total > TTI_WS_MAX_HEADER) __builtin_trap();
        if (rc != 1) return 0;
        in += off;
        len -= off;
    }

    result a = { malloc(len + 1), 0, 0, 0, 0, 0 };
    result b = { malloc(len + 1), 0, 0, 0, 0, 0 };
    if (!a.out || !b.out) abort();
    decode(in, len, piece, &a);
    decode(in, len, 1, &b);
    if (a.out_len > len || a.consumed > len) __builtin_trap();
    if (a.rc != b.rc || a.out_len != b.out_len || a.pings != b.pings ||
        a.ping_sum != b.ping_sum || a.consumed != b.consumed ||
        memcmp(a.out, b.out, a.out_len) != 0)
        __builtin_trap();
    free(a.out);
    free(b.out);
    return 0;
}
