/* WebSocket framing, client side (RFC 6455). See ws.h. */
#include "transport/ws.h"

#include <stdio.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha.h>

#include "actors/core/random.h"

#define WS_GUID     "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_GUID_LEN 36u

/* ---- Small helpers ----------------------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding; out holds 4 * ceil(n / 3) + 1 bytes. */
void tti_base64_encode(const uint8_t *in, size_t n, char *out) {
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = b64_alphabet[v >> 6 & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = b64_alphabet[v >> 6 & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
}

static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }

/* Case-insensitive equality of s[0..n) and the lower-case literal `lit`. */
static bool ieq(const char *s, size_t n, const char *lit) {
    size_t k = strlen(lit);
    if (n != k) return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s[i]) != lit[i]) return false;
    return true;
}

static bool ows(char c) { return c == ' ' || c == '\t'; }

/* Whether the comma-separated list s[0..n) holds `token` (case-insensitive). */
static bool list_has(const char *s, size_t n, const char *token) {
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && s[j] != ',') j++;
        size_t a = i, b = j;
        while (a < b && ows(s[a])) a++;
        while (b > a && ows(s[b - 1])) b--;
        if (ieq(s + a, b - a, token)) return true;
        i = j + 1;
    }
    return false;
}

static void put_be(uint8_t *p, uint64_t v, unsigned bytes) {
    for (unsigned i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8u * (bytes - 1u - i)));
}

static uint64_t get_be(const uint8_t *p, unsigned bytes) {
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++) v = v << 8 | p[i];
    return v;
}

/* ---- Opening handshake ---------------------------------------------------------------- */

enum { HS_STATUS, HS_HEADERS, HS_DONE };
enum {
    SEEN_UPGRADE = 1u << 0,
    SEEN_CONNECTION = 1u << 1,
    SEEN_ACCEPT = 1u << 2,
    BAD_ACCEPT = 1u << 3,
    SEEN_PROTOCOL = 1u << 4,
    BAD_PROTOCOL = 1u << 5
};

int tti_ws_accept_for_key(const char *key, size_t key_len, char out[TTI_WS_ACCEPT_LEN + 1]) {
    uint8_t buf[128];
    uint8_t digest[WC_SHA_DIGEST_SIZE];
    out[0] = '\0';
    if (key_len > sizeof buf - WS_GUID_LEN) return TT_EINVAL;
    memcpy(buf, key, key_len);
    memcpy(buf + key_len, WS_GUID, WS_GUID_LEN);
    if (wc_ShaHash(buf, (word32)(key_len + WS_GUID_LEN), digest) != 0) return TT_EINTERNAL;
    tti_base64_encode(digest, sizeof digest, out);
    return TT_OK;
}

void tti_ws_handshake_init_nonce(tti_ws_handshake *hs, const uint8_t nonce[16]) {
    hs->total = 0;
    hs->line_len = 0;
    hs->state = HS_STATUS;
    hs->seen = 0;
    hs->err = 0;
    hs->why = NULL;
    hs->reason[0] = '\0';
    tti_base64_encode(nonce, 16, hs->key);
    if (tti_ws_accept_for_key(hs->key, TTI_WS_KEY_LEN, hs->accept) != TT_OK) {
        hs->err = TT_EINTERNAL;
        hs->why = "SHA-1 unavailable";
    }
}

int tti_ws_handshake_init(tti_ws_handshake *hs) {
    uint8_t nonce[16];
    if (!tti_random_fill(nonce, sizeof nonce)) {
        memset(hs, 0, offsetof(tti_ws_handshake, line));
        hs->err = TT_EINTERNAL;
        hs->why = "no randomness for the WebSocket key";
        return TT_EINTERNAL;
    }
    tti_ws_handshake_init_nonce(hs, nonce);
    return hs->err;
}

/* Non-empty, and no spaces, controls or DEL. */
static bool header_safe(const char *s) {
    if (!s || !*s) return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f) return false;
    return true;
}

int tti_ws_handshake_request(const tti_ws_handshake *hs, const char *host, uint16_t port,
                             bool tls, const char *path, char *out, size_t cap) {
    if (!path || !*path) path = "/mqtt";
    if (!header_safe(host) || !header_safe(path) || path[0] != '/') return TT_EINVAL;
    char hostport[300];
    bool v6 = strchr(host, ':') != NULL && host[0] != '[';
    bool def = port == 0 || port == (tls ? 443 : 80);
    int n = def ? snprintf(hostport, sizeof hostport, v6 ? "[%s]" : "%s", host)
                : snprintf(hostport, sizeof hostport, v6 ? "[%s]:%u" : "%s:%u", host,
                           (unsigned)port);
    if (n < 0 || (size_t)n >= sizeof hostport) return TT_EINVAL;
    n = snprintf(out, cap,
                 "GET %s HTTP/1.1\r\n"
                 "Host: %s\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Protocol: mqtt\r\n"
                 "\r\n",
                 path, hostport, hs->key);
    if (n < 0) return TT_EINVAL;
    if ((size_t)n >= cap) return TT_ENOMEM;
    return n;
}

static int hs_fail(tti_ws_handshake *hs, const char *why) {
    hs->err = TT_EPROTO;
    hs->why = why;
    return TT_EPROTO;
}

/* "HTTP/1.x NNN reason" */
static int hs_status(tti_ws_handshake *hs, const char *s, size_t n) {
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ' ||
        (n > 12 && s[12] != ' '))
        return hs_fail(hs, "malformed HTTP status line");
    int code = 0;
    for (int i = 9; i < 12; i++) {
        if (s[i] < '0' || s[i] > '9') return hs_fail(hs, "malformed HTTP status line");
        code = code * 10 + (s[i] - '0');
    }
    if (code != 101) {
        /* "HTTP 404 Not Found": the reason phrase, printable ASCII only. */
        int o = snprintf(hs->reason, sizeof hs->reason, "HTTP %d", code);
        size_t k = (size_t)o;
        for (size_t i = 12; i < n && k + 1 < sizeof hs->reason; i++)
            hs->reason[k++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
        hs->reason[k] = '\0';
        return hs_fail(hs, hs->reason);
    }
    hs->state = HS_HEADERS;
    return 0;
}

static int hs_header(tti_ws_handshake *hs, const char *s, size_t n) {
    if (ows(s[0])) return hs_fail(hs, "folded HTTP header line");
    const char *colon = memchr(s, ':', n);
    if (!colon || colon == s) return hs_fail(hs, "malformed HTTP header line");
    size_t nl = (size_t)(colon - s);
    for (size_t i = 0; i < nl; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return hs_fail(hs, "malformed HTTP header line");
    const char *v = colon + 1;
    size_t vl = n - nl - 1;
    while (vl && ows(*v)) v++, vl--;
    while (vl && ows(v[vl - 1])) vl--;

    if (ieq(s, nl, "upgrade")) {
        if (list_has(v, vl, "websocket")) hs->seen |= SEEN_UPGRADE;
    } else if (ieq(s, nl, "connection")) {
        if (list_has(v, vl, "upgrade")) hs->seen |= SEEN_CONNECTION;
    } else if (ieq(s, nl, "sec-websocket-accept")) {
        if ((hs->seen & SEEN_ACCEPT) || vl != TTI_WS_ACCEPT_LEN ||
            memcmp(v, hs->accept, TTI_WS_ACCEPT_LEN) != 0)
            hs->seen |= BAD_ACCEPT;
        hs->seen |= SEEN_ACCEPT;
    } else if (ieq(s, nl, "sec-websocket-protocol")) {
        if ((hs->seen & SEEN_PROTOCOL) || vl != 4 || memcmp(v, "mqtt", 4) != 0)
            hs->seen |= BAD_PROTOCOL;
        hs->seen |= SEEN_PROTOCOL;
    } else if (ieq(s, nl, "sec-websocket-extensions")) {
        if (vl) return hs_fail(hs, "WebSocket extension not requested");
    }
    return 0;
}

static int hs_end(tti_ws_handshake *hs) {
    if (!(hs->seen & SEEN_UPGRADE)) return hs_fail(hs, "missing Upgrade: websocket");
    if (!(hs->seen & SEEN_CONNECTION)) return hs_fail(hs, "missing Connection: Upgrade");
    if (!(hs->seen & SEEN_ACCEPT)) return hs_fail(hs, "missing Sec-WebSocket-Accept");
    if (hs->seen & BAD_ACCEPT) return hs_fail(hs, "bad Sec-WebSocket-Accept");
    if (!(hs->seen & SEEN_PROTOCOL) || (hs->seen & BAD_PROTOCOL))
        return hs_fail(hs, "no mqtt subprotocol");
    hs->state = HS_DONE;
    return 1;
}

/* One line without its LF (a CR before it is dropped). */
static int hs_line(tti_ws_handshake *hs, const char *s, size_t n) {
    if (n && s[n - 1] == '\r') n--;
    if (hs->state == HS_STATUS) return hs_status(hs, s, n);
    if (n == 0) return hs_end(hs);
    return hs_header(hs, s, n);
}

int tti_ws_handshake_feed(tti_ws_handshake *hs, const uint8_t *in, size_t len, size_t *used) {
    *used = 0;
    if (hs->err) return hs->err;
    if (hs->state == HS_DONE) return 1;
    size_t i = 0;
    while (i < len) {
        size_t room = TTI_WS_MAX_HEADER - hs->total;
        size_t avail = len - i < room ? len - i : room;
        const uint8_t *nl = avail ? memchr(in + i, '\n', avail) : NULL;
        size_t take = nl ? (size_t)(nl - (in + i)) + 1 : avail;
        if (!nl && take == room) {
            *used = i + take;
            return hs_fail(hs, "HTTP response header larger than 8 KiB");
        }
        memcpy(hs->line + hs->line_len, in + i, take);
        hs->line_len += (uint32_t)take;
        hs->total += (uint32_t)take;
        i += take;
        if (nl) {
            int rc = hs_line(hs, hs->line, hs->line_len - 1);
            hs->line_len = 0;
            if (rc != 0) {
                *used = i;
                return rc;
            }
        }
    }
    *used = len;
    return 0;
}

/* ---- Frames out ----------------------------------------------------------------------- */

void tti_ws_tx_init(tti_ws_tx *tx) { tx->left = 0; }

static bool opcode_known(uint8_t op) {
    return op == TTI_WS_OP_CONT || op == TTI_WS_OP_TEXT || op == TTI_WS_OP_BINARY ||
           op == TTI_WS_OP_CLOSE || op == TTI_WS_OP_PING || op == TTI_WS_OP_PONG;
}

int tti_ws_tx_header(tti_ws_tx *tx, uint8_t opcode, bool fin, uint64_t payload_len,
                     uint8_t hdr[TTI_WS_MAX_FRAME_HDR], uint8_t mask[4]) {
    if (!opcode_known(opcode)) return TT_EINVAL;
    if ((opcode & 0x8) && (!fin || payload_len > TTI_WS_MAX_CONTROL)) return TT_EINVAL;
    if (payload_len >> 63) return TT_EINVAL;
    if (tx->left < 4) {
        if (!tti_random_fill(tx->pool, sizeof tx->pool)) return TT_EINTERNAL;
        tx->left = sizeof tx->pool;
    }
    uint8_t *key = tx->pool + sizeof tx->pool - tx->left;
    memcpy(mask, key, 4);
    memset(key, 0, 4); /* a used key is not left lying around */
    tx->left -= 4;

    unsigned n;
    hdr[0] = (uint8_t)((fin ? 0x80u : 0u) | opcode);
    if (payload_len < 126) {
        hdr[1] = (uint8_t)(0x80u | payload_len);
        n = 2;
    } else if (payload_len <= 0xFFFF) {
        hdr[1] = 0x80u | 126u;
        put_be(hdr + 2, payload_len, 2);
        n = 4;
    } else {
        hdr[1] = 0x80u | 127u;
        put_be(hdr + 2, payload_len, 8);
        n = 10;
    }
    memcpy(hdr + n, mask, 4);
    return (int)(n + 4);
}

void tti_ws_mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4],
                 uint64_t offset) {
    uint8_t m[8];
    for (unsigned k = 0; k < 8; k++) m[k] = mask[(offset + k) & 3u];
    uint64_t w;
    memcpy(&w, m, 8);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        uint64_t x[4];
        memcpy(x, src + i, 32);
        x[0] ^= w;
        x[1] ^= w;
        x[2] ^= w;
        x[3] ^= w;
        memcpy(dst + i, x, 32);
    }
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, src + i, 8);
        x ^= w;
        memcpy(dst + i, &x, 8);
    }
    for (; i < n; i++) dst[i] = (uint8_t)(src[i] ^ m[i & 7u]);
}

int tti_ws_tx_frame(tti_ws_tx *tx, uint8_t opcode, const void *payload, size_t len,
                    uint8_t *out, size_t cap) {
    if (len > (size_t)INT32_MAX - TTI_WS_MAX_FRAME_HDR) return TT_EINVAL;
    if (len && !payload) return TT_EINVAL;
    uint8_t hdr[TTI_WS_MAX_FRAME_HDR], mask[4];
    int hn = tti_ws_tx_header(tx, opcode, true, len, hdr, mask);
    if (hn < 0) return hn;
    if (cap < (size_t)hn + len) return TT_ENOMEM;
    memcpy(out, hdr, (size_t)hn);
    if (len) tti_ws_mask(out + hn, payload, len, mask, 0);
    return hn + (int)len;
}

int tti_ws_tx_pong(tti_ws_tx *tx, const uint8_t *payload, size_t len, uint8_t *out,
                   size_t cap) {
    return tti_ws_tx_frame(tx, TTI_WS_OP_PONG, payload, len, out, cap);
}

int tti_ws_tx_close(tti_ws_tx *tx, uint16_t code, const char *reason, size_t reason_len,
                    uint8_t *out, size_t cap) {
    uint8_t body[TTI_WS_MAX_CONTROL];
    if (reason_len > TTI_WS_MAX_CONTROL - 2 || (reason_len && !reason)) return TT_EINVAL;
    put_be(body, code, 2);
    if (reason_len) memcpy(body + 2, reason, reason_len);
    return tti_ws_tx_frame(tx, TTI_WS_OP_CLOSE, body, reason_len + 2, out, cap);
}

/* ---- Frames in ------------------------------------------------------------------------ */

enum { RX_HDR, RX_DATA, RX_CTL };

void tti_ws_rx_init(tti_ws_rx *rx, uint64_t max_payload) {
    memset(rx, 0, sizeof *rx);
    rx->max_payload = max_payload ? max_payload : TTI_WS_DEFAULT_MAX_PAYLOAD;
    rx->state = RX_HDR;
}

static int rx_fail(tti_ws_rx *rx, int err, const char *why) {
    rx->err = err;
    rx->why = why;
    return err;
}

/* The first two header bytes are in: check them, set hdr_need. */
static int rx_first_bytes(tti_ws_rx *rx) {
    uint8_t b0 = rx->hdr[0], b1 = rx->hdr[1];
    uint8_t op = b0 & 0x0F;
    bool fin = (b0 & 0x80) != 0;
    uint8_t len7 = b1 & 0x7F;
    if (b0 & 0x70) return rx_fail(rx, TT_EPROTO, "reserved bits set (no extension negotiated)");
    if (b1 & 0x80) return rx_fail(rx, TT_EPROTO, "masked frame from the server");
    switch (op) {
    case TTI_WS_OP_CONT:
        if (!rx->in_message)
            return rx_fail(rx, TT_EPROTO, "continuation frame outside a fragmented message");
        break;
    case TTI_WS_OP_BINARY:
        if (rx->in_message)
            return rx_fail(rx, TT_EPROTO, "new data frame inside a fragmented message");
        break;
    case TTI_WS_OP_TEXT:
        return rx_fail(rx, TT_EPROTO, "text frame (MQTT over WebSocket is binary only)");
    case TTI_WS_OP_CLOSE:
    case TTI_WS_OP_PING:
    case TTI_WS_OP_PONG:
        if (!fin) return rx_fail(rx, TT_EPROTO, "fragmented control frame");
        if (len7 > TTI_WS_MAX_CONTROL)
            return rx_fail(rx, TT_EPROTO, "control frame longer than 125 bytes");
        break;
    default:
        return rx_fail(rx, TT_EPROTO, "unknown WebSocket opcode");
    }
    rx->opcode = op;
    rx->fin = fin;
    rx->hdr_need = (uint8_t)(len7 == 126 ? 4 : len7 == 127 ? 10 : 2);
    return 0;
}

/* The whole header is in: the payload length. */
static int rx_length(tti_ws_rx *rx) {
    uint8_t len7 = rx->hdr[1] & 0x7F;
    uint64_t len = len7;
    if (len7 == 126) {
        len = get_be(rx->hdr + 2, 2);
        if (len < 126) return rx_fail(rx, TT_EPROTO, "frame length not minimally encoded");
    } else if (len7 == 127) {
        len = get_be(rx->hdr + 2, 8);
        if (len >> 63) return rx_fail(rx, TT_EPROTO, "64-bit frame length with the top bit set");
        if (len <= 0xFFFF) return rx_fail(rx, TT_EPROTO, "frame length not minimally encoded");
    }
    if (len > rx->max_payload) return rx_fail(rx, TT_EPROTO, "frame longer than the limit");
    rx->left = len;
    return 0;
}

static bool close_code_valid(uint16_t c) {
    if (c < 1000 || c >= 5000) return false;
    if (c >= 3000) return true; /* registered / private use */
    return c <= 1003 || (c >= 1007 && c <= 1014);
}

/* A control frame's payload is complete in rx->ctl. Returns an event, TTI_WS_MORE
 * to go on (pong), or an error. */
static int rx_control(tti_ws_rx *rx) {
    rx->state = RX_HDR;
    rx->hdr_len = 0;
    switch (rx->opcode) {
    case TTI_WS_OP_PING:
        return TTI_WS_PING;
    case TTI_WS_OP_PONG:
        return TTI_WS_MORE;
    default: /* close */
        if (rx->ctl_len == 0) {
            rx->close_code = TTI_WS_CLOSE_NO_STATUS;
            rx->close_reason[0] = '\0';
        } else {
            if (rx->ctl_len == 1) return rx_fail(rx, TT_EPROTO, "close frame with a 1-byte body");
            rx->close_code = (uint16_t)get_be(rx->ctl, 2);
            if (!close_code_valid(rx->close_code))
                return rx_fail(rx, TT_EPROTO, "invalid close code");
            size_t n = rx->ctl_len - 2u;
            memcpy(rx->close_reason, rx->ctl + 2, n);
            rx->close_reason[n] = '\0';
        }
        return rx_fail(rx, TT_ECONNRESET, "closed by the server");
    }
}

int tti_ws_rx_feed(tti_ws_rx *rx, const uint8_t *in, size_t len, size_t *used,
                   const uint8_t **data, size_t *data_len) {
    size_t i = 0;
    int rc = TTI_WS_MORE;
    *data = NULL;
    *data_len = 0;
    if (rx->err) {
        *used = 0;
        return rx->err;
    }
    while (i < len) {
        if (rx->state == RX_HDR) {
            size_t need = (rx->hdr_len < 2 ? 2u : rx->hdr_need) - rx->hdr_len;
            size_t n = need < len - i ? need : len - i;
            memcpy(rx->hdr + rx->hdr_len, in + i, n);
            rx->hdr_len = (uint8_t)(rx->hdr_len + n);
            i += n;
            if (rx->hdr_len == 2 && (rc = rx_first_bytes(rx)) < 0) break;
            if (rx->hdr_len < 2 || rx->hdr_len < rx->hdr_need) continue;
            if ((rc = rx_length(rx)) < 0) break;
            if (rx->opcode & 0x8) {
                rx->ctl_len = 0;
                rx->state = RX_CTL;
                if (rx->left == 0 && (rc = rx_control(rx)) != TTI_WS_MORE) break;
            } else {
                rx->in_message = !rx->fin;
                rx->state = RX_DATA;
                if (rx->left == 0) { /* an empty data frame */
                    rx->state = RX_HDR;
                    rx->hdr_len = 0;
                }
            }
        } else if (rx->state == RX_DATA) {
            size_t n = rx->left < len - i ? (size_t)rx->left : len - i;
            *data = in + i;
            *data_len = n;
            i += n;
            rx->left -= n;
            if (rx->left == 0) {
                rx->state = RX_HDR;
                rx->hdr_len = 0;
            }
            rc = TTI_WS_DATA;
            break;
        } else { /* RX_CTL */
            size_t n = rx->left < len - i ? (size_t)rx->left : len - i;
            memcpy(rx->ctl + rx->ctl_len, in + i, n);
            rx->ctl_len = (uint8_t)(rx->ctl_len + n);
            rx->left -= n;
            i += n;
            if (rx->left == 0 && (rc = rx_control(rx)) != TTI_WS_MORE) break;
        }
    }
    *used = i;
    return rc;
}
