/* WebSocket framing: the RFC 6455 handshake example, request building, response
 * parsing (whole and byte by byte) and its refusals, client frames of every
 * length class checked by a test-side decoder, server frames built here and
 * decoded whole, byte by byte and in random pieces, fragmentation, ping/pong,
 * close, and every malformed frame the decoder must refuse. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tt_test.h"
#include "transport/ws.h"

/* ---- Test-side peer: server frames out, client frames in ----------------------- */

/* A server frame (unmasked unless `mask_key`) with first byte `b0`. */
static size_t srv_frame(uint8_t *out, uint8_t b0, const void *payload, uint64_t len,
                        const uint8_t *mask_key) {
    size_t n = 0;
    out[n++] = b0;
    uint8_t mbit = mask_key ? 0x80 : 0;
    if (len < 126) {
        out[n++] = (uint8_t)(mbit | len);
    } else if (len <= 0xFFFF) {
        out[n++] = mbit | 126;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = mbit | 127;
        for (int s = 56; s >= 0; s -= 8) out[n++] = (uint8_t)(len >> s);
    }
    if (mask_key) {
        memcpy(out + n, mask_key, 4);
        n += 4;
    }
    for (uint64_t i = 0; i < len; i++) {
        uint8_t c = ((const uint8_t *)payload)[i];
        out[n++] = mask_key ? (uint8_t)(c ^ mask_key[i % 4]) : c;
    }
    return n;
}

typedef struct cli_frame {
    bool fin, masked, minimal;
    uint8_t opcode;
    uint64_t len;
    uint8_t mask[4];
    const uint8_t *masked_payload;
    size_t frame_len;
} cli_frame;

/* Parse one client frame the way a server would; false if incomplete. */
static bool parse_client(const uint8_t *p, size_t n, cli_frame *f) {
    if (n < 2) return false;
    f->fin = p[0] & 0x80;
    f->opcode = p[0] & 0x0F;
    f->masked = p[1] & 0x80;
    uint64_t len = p[1] & 0x7F;
    size_t h = 2;
    if (len == 126) {
        if (n < 4) return false;
        len = (uint64_t)p[2] << 8 | p[3];
        h = 4;
        f->minimal = len >= 126;
    } else if (len == 127) {
        if (n < 10) return false;
        len = 0;
        for (int i = 0; i < 8; i++) len = len << 8 | p[2 + i];
        h = 10;
        f->minimal = len > 0xFFFF;
    } else {
        f->minimal = true;
    }
    if (!f->masked || n < h + 4 || n - h - 4 < len) return false;
    memcpy(f->mask, p + h, 4);
    f->len = len;
    f->masked_payload = p + h + 4;
    f->frame_len = h + 4 + (size_t)len;
    return true;
}

static void unmask(uint8_t *dst, const cli_frame *f) {
    for (uint64_t i = 0; i < f->len; i++) dst[i] = f->masked_payload[i] ^ f->mask[i % 4];
}

/* Decoder driver: feeds `in` in pieces of `chunk` bytes (0 = all at once),
 * gathering data into `out`, counting pings. Returns the last status. */
typedef struct drive {
    uint8_t *out;
    size_t out_len, out_cap;
    int pings;
    uint8_t last_ping[TTI_WS_MAX_CONTROL];
    size_t last_ping_len;
    size_t consumed;
} drive;

static int feed(tti_ws_rx *rx, const uint8_t *in, size_t len, size_t chunk, drive *d) {
    size_t off = 0;
    int rc = TTI_WS_MORE;
    while (off < len) {
        size_t piece = chunk && chunk < len - off ? chunk : len - off;
        size_t p = 0;
        while (p < piece) {
            size_t used = 0, dl = 0;
            const uint8_t *data = NULL;
            rc = tti_ws_rx_feed(rx, in + off + p, piece - p, &used, &data, &dl);
            TT_CHECK(used <= piece - p);
            p += used;
            d->consumed += used;
            if (rc < 0) return rc;
            if (rc == TTI_WS_DATA) {
                TT_CHECK(dl > 0 && data >= in + off && data + dl <= in + off + piece);
                if (d->out_len + dl <= d->out_cap) memcpy(d->out + d->out_len, data, dl);
                d->out_len += dl;
            } else if (rc == TTI_WS_PING) {
                d->pings++;
                memcpy(d->last_ping, rx->ctl, rx->ctl_len);
                d->last_ping_len = rx->ctl_len;
            } else {
                TT_CHECK_EQ_INT(rc, TTI_WS_MORE);
                TT_CHECK_EQ_INT(p, piece);
            }
        }
        off += piece;
    }
    return rc;
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* ---- Handshake ------------------------------------------------------------------ */

static const char rfc_key[] = "dGhlIHNhbXBsZSBub25jZQ==";
static const char rfc_accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

static void test_rfc_example(void) {
    char acc[TTI_WS_ACCEPT_LEN + 1];
    TT_CHECK_EQ_INT(tti_ws_accept_for_key(rfc_key, strlen(rfc_key), acc), TT_OK);
    TT_CHECK_EQ_STR(acc, rfc_accept);
    tti_ws_handshake hs;
    tti_ws_handshake_init_nonce(&hs, (const uint8_t *)"the sample nonce");
    TT_CHECK_EQ_STR(hs.key, rfc_key);
    TT_CHECK_EQ_STR(hs.accept, rfc_accept);
}

static void test_random_key(void) {
    static tti_ws_handshake a, b;
    TT_CHECK_EQ_INT(tti_ws_handshake_init(&a), TT_OK);
    TT_CHECK_EQ_INT(tti_ws_handshake_init(&b), TT_OK);
    TT_CHECK_EQ_INT(strlen(a.key), TTI_WS_KEY_LEN);
    TT_CHECK(a.key[22] == '=' && a.key[23] == '=');
    TT_CHECK(strcmp(a.key, b.key) != 0);
    char acc[TTI_WS_ACCEPT_LEN + 1];
    TT_CHECK_EQ_INT(tti_ws_accept_for_key(a.key, strlen(a.key), acc), TT_OK);
    TT_CHECK_EQ_STR(acc, a.accept);
}

static void test_request(void) {
    static tti_ws_handshake hs;
    tti_ws_handshake_init_nonce(&hs, (const uint8_t *)"the sample nonce");
    char buf[512];
    int n = tti_ws_handshake_request(&hs, "broker.example", 80, false, NULL, buf, sizeof buf);
    TT_CHECK(n > 0 && (size_t)n == strlen(buf));
    TT_CHECK_EQ_STR(buf, "GET /mqtt HTTP/1.1\r\n"
                         "Host: broker.example\r\n"
                         "Upgrade: websocket\r\n"
                         "Connection: Upgrade\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\n"
                         "Sec-WebSocket-Protocol: mqtt\r\n"
                         "\r\n");
    TT_CHECK(tti_ws_handshake_request(&hs, "h", 8080, false, "/ws", buf, sizeof buf) > 0);
    TT_CHECK(strstr(buf, "GET /ws HTTP/1.1\r\nHost: h:8080\r\n") == buf);
    TT_CHECK(tti_ws_handshake_request(&hs, "h", 443, true, "/", buf, sizeof buf) > 0);
    TT_CHECK(strstr(buf, "\r\nHost: h\r\n") != NULL);
    TT_CHECK(tti_ws_handshake_request(&hs, "h", 443, false, "/", buf, sizeof buf) > 0);
    TT_CHECK(strstr(buf, "\r\nHost: h:443\r\n") != NULL);
    TT_CHECK(tti_ws_handshake_request(&hs, "::1", 9001, false, "/", buf, sizeof buf) > 0);
    TT_CHECK(strstr(buf, "\r\nHost: [::1]:9001\r\n") != NULL);
    TT_CHECK(tti_ws_handshake_request(&hs, "[::1]", 80, false, "/", buf, sizeof buf) > 0);
    TT_CHECK(strstr(buf, "\r\nHost: [::1]\r\n") != NULL);
    /* refusals */
    n = tti_ws_handshake_request(&hs, "h", 80, false, "/", buf, sizeof buf);
    TT_CHECK(n > 0);
    TT_CHECK_EQ_INT(tti_ws_handshake_request(&hs, "h", 80, false, "/", buf, (size_t)n), TT_ENOMEM);
    TT_CHECK_EQ_INT(tti_ws_handshake_request(&hs, "h", 80, false, "/", buf, (size_t)n + 1), n);
    TT_CHECK_EQ_INT(tti_ws_handshake_request(&hs, "", 80, false, "/", buf, sizeof buf), TT_EINVAL);
    TT_CHECK_EQ_INT(tti_ws_handshake_request(&hs, NULL, 80, false, "/", buf, sizeof buf), TT_EINVAL);
    TT_CHECK_EQ_INT(tti_ws_handshake_request(&hs, "h\r\nX: y", 80, false, "/", buf, sizeof buf),
                    TT_EINVAL);
    TT_CHECK_EQ_INT(tti_ws_handshake_request(&hs, "h", 80, false, "mqtt", buf, sizeof buf),
                    TT_EINVAL);
    TT_CHECK_EQ_INT(tti_ws_handshake_request(&hs, "h", 80, false, "/a b", buf, sizeof buf),
                    TT_EINVAL);
}

#define OK_RESPONSE                                          \
    "HTTP/1.1 101 Switching Protocols\r\n"                   \
    "upgrade: WebSocket\r\n"                                 \
    "CONNECTION: keep-alive, Upgrade\r\n"                    \
    "Sec-WebSocket-Accept:  s3pPLMBiTxaQ9kYGzzhZRbK+xOo= \r\n" \
    "sec-websocket-protocol: mqtt\r\n"                       \
    "Server: test\r\n"                                       \
    "\r\n"

/* Feed `resp` (plus `extra` bytes) in pieces of `chunk`; returns the final
 * status, *hdr_len the bytes the parser claimed. */
static int hs_run(tti_ws_handshake *hs, const char *resp, size_t chunk, size_t *hdr_len,
                  const char **why) {
    tti_ws_handshake_init_nonce(hs, (const uint8_t *)"the sample nonce");
    size_t len = strlen(resp), off = 0;
    int rc = 0;
    *hdr_len = 0;
    while (off < len) {
        size_t piece = chunk && chunk < len - off ? chunk : len - off;
        size_t used = 0;
        rc = tti_ws_handshake_feed(hs, (const uint8_t *)resp + off, piece, &used);
        TT_CHECK(used <= piece);
        *hdr_len += used;
        if (rc != 0) break;
        TT_CHECK_EQ_INT(used, piece);
        off += piece;
    }
    *why = hs->why;
    return rc;
}

static void test_handshake_ok(void) {
    static tti_ws_handshake hs;
    const char *why;
    size_t used;
    const char *resp = OK_RESPONSE "\x82\x02hi";
    size_t hdr = strlen(OK_RESPONSE);
    for (size_t chunk = 0; chunk < 40; chunk += (chunk < 3 ? 1 : 7)) {
        TT_CHECK_EQ_INT(hs_run(&hs, resp, chunk, &used, &why), 1);
        TT_CHECK_EQ_INT(used, hdr); /* frame bytes are left alone */
    }
    /* done stays done */
    size_t u = 99;
    TT_CHECK_EQ_INT(tti_ws_handshake_feed(&hs, (const uint8_t *)"x", 1, &u), 1);
    TT_CHECK_EQ_INT(u, 0);
    /* bare LF line ends are accepted too */
    TT_CHECK_EQ_INT(hs_run(&hs,
                           "HTTP/1.1 101 OK\nUpgrade: websocket\nConnection: upgrade\n"
                           "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\n"
                           "Sec-WebSocket-Protocol: mqtt\n\n",
                           0, &used, &why),
                    1);
}

static void expect_hs_fail_(const char *resp, const char *want, int line) {
    static tti_ws_handshake hs;
    const char *why = NULL;
    size_t used;
    for (size_t chunk = 0; chunk <= 1; chunk++) {
        int rc = hs_run(&hs, resp, chunk, &used, &why);
        TT_CHECK_MSG(rc == TT_EPROTO, "line %d: rc %d", line, rc);
        TT_CHECK_MSG(why && strcmp(why, want) == 0, "line %d: why \"%s\", want \"%s\"", line,
                     why ? why : "(null)", want);
        size_t u;
        TT_CHECK_MSG(tti_ws_handshake_feed(&hs, (const uint8_t *)"\r\n", 2, &u) == TT_EPROTO,
                     "line %d: not sticky", line);
    }
}
#define expect_hs_fail(resp, want) expect_hs_fail_(resp, want, __LINE__)

#define H_UP   "Upgrade: websocket\r\n"
#define H_CONN "Connection: Upgrade\r\n"
#define H_ACC  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
#define H_PROT "Sec-WebSocket-Protocol: mqtt\r\n"
#define S101   "HTTP/1.1 101 Switching Protocols\r\n"

static void test_handshake_refusals(void) {
    expect_hs_fail("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "HTTP 404 Not Found");
    expect_hs_fail("HTTP/1.1 200 OK\r\n\r\n", "HTTP 200 OK");
    expect_hs_fail("HTTP/1.0 400\r\n\r\n", "HTTP 400");
    expect_hs_fail("HTTP/1.1 101 Switching Protocols\r\n" H_UP H_CONN
                   "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOx=\r\n" H_PROT "\r\n",
                   "bad Sec-WebSocket-Accept");
    expect_hs_fail(S101 H_UP H_CONN H_ACC H_ACC H_PROT "\r\n", "bad Sec-WebSocket-Accept");
    expect_hs_fail(S101 H_UP H_CONN H_PROT "\r\n", "missing Sec-WebSocket-Accept");
    expect_hs_fail(S101 H_UP H_CONN H_ACC "\r\n", "no mqtt subprotocol");
    expect_hs_fail(S101 H_UP H_CONN H_ACC "Sec-WebSocket-Protocol: mqttv3.1\r\n\r\n",
                   "no mqtt subprotocol");
    expect_hs_fail(S101 H_CONN H_ACC H_PROT "\r\n", "missing Upgrade: websocket");
    expect_hs_fail(S101 "Upgrade: h2c\r\n" H_CONN H_ACC H_PROT "\r\n",
                   "missing Upgrade: websocket");
    expect_hs_fail(S101 H_UP H_ACC H_PROT "\r\n", "missing Connection: Upgrade");
    expect_hs_fail(S101 H_UP H_CONN H_ACC H_PROT "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
                   "WebSocket extension not requested");
    expect_hs_fail("HTTP/2 101\r\n\r\n", "malformed HTTP status line");
    expect_hs_fail("HTTP/1.1 1O1 x\r\n\r\n", "malformed HTTP status line");
    expect_hs_fail("HTTP/1.1 1010\r\n\r\n", "malformed HTTP status line");
    expect_hs_fail("\r\n", "malformed HTTP status line");
    expect_hs_fail(S101 "no colon here\r\n\r\n", "malformed HTTP header line");
    expect_hs_fail(S101 ": empty name\r\n\r\n", "malformed HTTP header line");
    expect_hs_fail(S101 "Bad Name: x\r\n\r\n", "malformed HTTP header line");
    expect_hs_fail(S101 H_UP " folded\r\n\r\n", "folded HTTP header line");

    /* a header over 8 KiB, with and without line breaks */
    static char big[TTI_WS_MAX_HEADER + 200];
    int o = snprintf(big, sizeof big, S101);
    while ((size_t)o < TTI_WS_MAX_HEADER + 100)
        o += snprintf(big + o, sizeof big - (size_t)o, "X-Pad: 0123456789abcdef\r\n");
    snprintf(big + o, sizeof big - (size_t)o, "\r\n");
    expect_hs_fail(big, "HTTP response header larger than 8 KiB");
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    expect_hs_fail(big, "HTTP response header larger than 8 KiB");

    /* exactly 8 KiB including the blank line is accepted */
    o = snprintf(big, sizeof big, OK_RESPONSE);
    const char *tail = "X-Pad: \r\n\r\n";
    o -= 2; /* drop the blank line, pad, add it back */
    size_t pad = TTI_WS_MAX_HEADER - (size_t)o - strlen(tail);
    memcpy(big + o, "X-Pad: ", 7);
    memset(big + o + 7, 'p', pad);
    strcpy(big + o + 7 + pad, "\r\n\r\n");
    TT_CHECK_EQ_INT(strlen(big), TTI_WS_MAX_HEADER);
    static tti_ws_handshake hs;
    const char *why;
    size_t used;
    TT_CHECK_EQ_INT(hs_run(&hs, big, 0, &used, &why), 1);
    TT_CHECK_EQ_INT(used, TTI_WS_MAX_HEADER);
}

/* ---- Client frames --------------------------------------------------------------- */

static void test_client_frames(void) {
    static const size_t sizes[] = { 0, 1, 7, 125, 126, 127, 65535, 65536, 1u << 20 };
    tti_ws_tx tx;
    tti_ws_tx_init(&tx);
    size_t max = (1u << 20) + TTI_WS_MAX_FRAME_HDR;
    uint8_t *payload = malloc(max), *out = malloc(max), *back = malloc(max);
    TT_REQUIRE(payload && out && back);
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k];
        fill_pattern(payload, n, (uint32_t)n);
        int len = tti_ws_tx_frame(&tx, TTI_WS_OP_BINARY, payload, n, out, max);
        size_t want_hdr = n < 126 ? 6 : n <= 0xFFFF ? 8 : 14;
        TT_CHECK_EQ_INT(len, (long long)(want_hdr + n));
        cli_frame f;
        TT_REQUIRE(parse_client(out, (size_t)len, &f));
        TT_CHECK(f.fin && f.masked && f.minimal);
        TT_CHECK_EQ_INT(f.opcode, TTI_WS_OP_BINARY);
        TT_CHECK_EQ_INT(f.len, n);
        TT_CHECK_EQ_INT(f.frame_len, (size_t)len);
        unmask(back, &f);
        TT_CHECK(memcmp(back, payload, n) == 0);
        /* too small a buffer */
        TT_CHECK_EQ_INT(tti_ws_tx_frame(&tx, TTI_WS_OP_BINARY, payload, n, out, (size_t)len - 1),
                        TT_ENOMEM);
    }
    free(payload);
    free(out);
    free(back);
}

/* Header alone, payload masked in place in uneven pieces. */
static void test_header_and_mask(void) {
    tti_ws_tx tx;
    tti_ws_tx_init(&tx);
    uint8_t payload[1000], buf[1000], hdr[TTI_WS_MAX_FRAME_HDR], mask[4];
    fill_pattern(payload, sizeof payload, 7);
    memcpy(buf, payload, sizeof buf);
    int hn = tti_ws_tx_header(&tx, TTI_WS_OP_BINARY, true, sizeof buf, hdr, mask);
    TT_CHECK_EQ_INT(hn, 8);
    TT_CHECK(memcmp(hdr + 4, mask, 4) == 0);
    size_t cuts[] = { 0, 3, 4, 13, 40, 41, 999, 1000 };
    for (size_t c = 0; c + 1 < sizeof cuts / sizeof *cuts; c++)
        tti_ws_mask(buf + cuts[c], buf + cuts[c], cuts[c + 1] - cuts[c], mask, cuts[c]);
    for (size_t i = 0; i < sizeof buf; i++)
        TT_CHECK_MSG((buf[i] ^ mask[i % 4]) == payload[i], "byte %zu", i);
    /* copying variant, odd start offsets, unaligned pointers */
    uint8_t dst[1001];
    for (size_t off = 0; off < 9; off++) {
        tti_ws_mask(dst + 1, payload + off, sizeof payload - off, mask, off);
        for (size_t i = 0; i + off < sizeof payload; i++)
            TT_CHECK((dst[1 + i] ^ mask[(off + i) % 4]) == payload[off + i]);
    }
    /* not final: a fragment */
    hn = tti_ws_tx_header(&tx, TTI_WS_OP_BINARY, false, 5, hdr, mask);
    TT_CHECK_EQ_INT(hn, 6);
    TT_CHECK_EQ_INT(hdr[0], 0x02);
    TT_CHECK_EQ_INT(hdr[1], 0x85);
    /* refusals */
    TT_CHECK_EQ_INT(tti_ws_tx_header(&tx, 3, true, 0, hdr, mask), TT_EINVAL);
    TT_CHECK_EQ_INT(tti_ws_tx_header(&tx, TTI_WS_OP_PING, true, 126, hdr, mask), TT_EINVAL);
    TT_CHECK_EQ_INT(tti_ws_tx_header(&tx, TTI_WS_OP_PING, false, 1, hdr, mask), TT_EINVAL);
    TT_CHECK_EQ_INT(tti_ws_tx_header(&tx, TTI_WS_OP_BINARY, true, UINT64_C(1) << 63, hdr, mask),
                    TT_EINVAL);
}

/* Every frame gets its own key. */
static void test_fresh_masks(void) {
    tti_ws_tx tx;
    tti_ws_tx_init(&tx);
    enum { N = 300 };
    static uint32_t keys[N];
    uint8_t hdr[TTI_WS_MAX_FRAME_HDR], mask[4];
    for (int i = 0; i < N; i++) {
        TT_CHECK_EQ_INT(tti_ws_tx_header(&tx, TTI_WS_OP_BINARY, true, 1, hdr, mask), 6);
        memcpy(&keys[i], mask, 4);
    }
    int dup = 0;
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) dup += keys[i] == keys[j];
    TT_CHECK(dup <= 1); /* 300 random 32-bit keys: a repeat is a 1-in-100 000 event */
}

static void test_close_and_pong_out(void) {
    tti_ws_tx tx;
    tti_ws_tx_init(&tx);
    uint8_t out[TTI_WS_MAX_FRAME_HDR + TTI_WS_MAX_CONTROL], back[TTI_WS_MAX_CONTROL];
    int n = tti_ws_tx_close(&tx, TTI_WS_CLOSE_NORMAL, NULL, 0, out, sizeof out);
    TT_CHECK_EQ_INT(n, 8);
    cli_frame f;
    TT_REQUIRE(parse_client(out, (size_t)n, &f));
    TT_CHECK(f.fin && f.masked && f.opcode == TTI_WS_OP_CLOSE && f.len == 2);
    unmask(back, &f);
    TT_CHECK(back[0] == 0x03 && back[1] == 0xE8);
    n = tti_ws_tx_close(&tx, 1001, "going away", 10, out, sizeof out);
    TT_REQUIRE(n > 0 && parse_client(out, (size_t)n, &f));
    unmask(back, &f);
    TT_CHECK(f.len == 12 && back[0] == 0x03 && back[1] == 0xE9 && memcmp(back + 2, "going away", 10) == 0);
    char longr[124];
    memset(longr, 'r', sizeof longr);
    TT_CHECK_EQ_INT(tti_ws_tx_close(&tx, 1000, longr, 124, out, sizeof out), TT_EINVAL);
    TT_CHECK(tti_ws_tx_close(&tx, 1000, longr, 123, out, sizeof out) > 0);

    n = tti_ws_tx_pong(&tx, (const uint8_t *)"abc", 3, out, sizeof out);
    TT_REQUIRE(n > 0 && parse_client(out, (size_t)n, &f));
    unmask(back, &f);
    TT_CHECK(f.opcode == TTI_WS_OP_PONG && f.len == 3 && memcmp(back, "abc", 3) == 0);
    uint8_t big[126] = { 0 };
    TT_CHECK_EQ_INT(tti_ws_tx_pong(&tx, big, 126, out, sizeof out), TT_EINVAL);
}

/* ---- Server frames ---------------------------------------------------------------- */

static void test_server_frames(void) {
    static const size_t sizes[] = { 0, 1, 125, 126, 65535, 65536, 1u << 20 };
    size_t max = (1u << 20) + 64;
    uint8_t *payload = malloc(max), *wire = malloc(max), *got = malloc(max);
    TT_REQUIRE(payload && wire && got);
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k];
        fill_pattern(payload, n, (uint32_t)n + 1);
        size_t w = srv_frame(wire, 0x82, payload, n, NULL);
        /* whole, byte by byte, and in pieces of 1000 */
        size_t chunks[] = { 0, 1, 1000 };
        for (size_t c = 0; c < 3; c++) {
            if (chunks[c] == 1 && n > 65536) continue; /* done below with two frames */
            tti_ws_rx rx;
            tti_ws_rx_init(&rx, 0);
            drive d = { got, 0, max, 0, { 0 }, 0, 0 };
            int rc = feed(&rx, wire, w, chunks[c], &d);
            TT_CHECK_MSG(rc >= 0, "size %zu chunk %zu: %d %s", n, chunks[c], rc, rx.why);
            TT_CHECK_EQ_INT(d.out_len, n);
            TT_CHECK_EQ_INT(d.consumed, w);
            TT_CHECK(memcmp(got, payload, n) == 0);
        }
    }
    /* 1 MiB byte by byte, followed by a second frame */
    size_t n = 1u << 20;
    fill_pattern(payload, n, 99);
    uint8_t *two = malloc(n + 64);
    TT_REQUIRE(two);
    size_t w = srv_frame(two, 0x82, payload, n, NULL);
    w += srv_frame(two + w, 0x82, "tail", 4, NULL);
    tti_ws_rx rx;
    tti_ws_rx_init(&rx, 0);
    drive d = { got, 0, max, 0, { 0 }, 0, 0 };
    TT_CHECK(feed(&rx, two, w, 1, &d) >= 0);
    TT_CHECK_EQ_INT(d.out_len, n + 4);
    TT_CHECK(memcmp(got, payload, n) == 0 && memcmp(got + n, "tail", 4) == 0);
    free(two);
    free(payload);
    free(wire);
    free(got);
}

/* Many frames in one buffer, cut at random places. */
static void test_random_pieces(void) {
    uint8_t wire[8192], got[8192], want[8192];
    size_t w = 0, wl = 0;
    uint32_t s = 1;
    for (int i = 0; i < 30; i++) {
        uint8_t p[200];
        size_t n = (size_t)(i * 37 % 200);
        fill_pattern(p, n, (uint32_t)i);
        if (i % 5 == 3) {
            w += srv_frame(wire + w, 0x89, p, n % 126, NULL); /* ping in between */
            continue;
        }
        if (i % 7 == 4) w += srv_frame(wire + w, 0x8A, p, n % 126, NULL); /* pong */
        w += srv_frame(wire + w, 0x82, p, n, NULL);
        memcpy(want + wl, p, n);
        wl += n;
    }
    for (int round = 0; round < 200; round++) {
        tti_ws_rx rx;
        tti_ws_rx_init(&rx, 0);
        drive d = { got, 0, sizeof got, 0, { 0 }, 0, 0 };
        size_t off = 0;
        while (off < w) {
            s = s * 1103515245u + 12345u;
            size_t piece = 1 + (s >> 16) % 300;
            if (piece > w - off) piece = w - off;
            TT_CHECK(feed(&rx, wire + off, piece, 0, &d) >= 0);
            off += piece;
        }
        TT_CHECK_EQ_INT(d.out_len, wl);
        TT_CHECK(memcmp(got, want, wl) == 0);
        TT_CHECK_EQ_INT(d.pings, 6);
    }
}

static void test_fragments_and_control(void) {
    uint8_t wire[512], got[64];
    size_t w = 0;
    w += srv_frame(wire + w, 0x02, "abc", 3, NULL);       /* binary, not final */
    w += srv_frame(wire + w, 0x89, "ping!", 5, NULL);     /* ping between fragments */
    w += srv_frame(wire + w, 0x00, "", 0, NULL);          /* empty continuation */
    w += srv_frame(wire + w, 0x8A, "pong", 4, NULL);      /* pong: skipped */
    w += srv_frame(wire + w, 0x00, "de", 2, NULL);        /* continuation */
    w += srv_frame(wire + w, 0x80, "f", 1, NULL);         /* final continuation */
    w += srv_frame(wire + w, 0x82, "", 0, NULL);          /* empty message */
    w += srv_frame(wire + w, 0x82, "gh", 2, NULL);        /* new message */
    for (size_t chunk = 0; chunk <= 3; chunk++) {
        tti_ws_rx rx;
        tti_ws_rx_init(&rx, 0);
        drive d = { got, 0, sizeof got, 0, { 0 }, 0, 0 };
        TT_CHECK(feed(&rx, wire, w, chunk, &d) >= 0);
        TT_CHECK_EQ_INT(d.out_len, 8);
        TT_CHECK(memcmp(got, "abcdefgh", 8) == 0);
        TT_CHECK_EQ_INT(d.pings, 1);
        TT_CHECK(d.last_ping_len == 5 && memcmp(d.last_ping, "ping!", 5) == 0);
        TT_CHECK(!rx.in_message);
    }
    /* an empty ping, and a ping of 125 bytes */
    uint8_t p125[125];
    fill_pattern(p125, sizeof p125, 5);
    w = srv_frame(wire, 0x89, "", 0, NULL);
    w += srv_frame(wire + w, 0x89, p125, 125, NULL);
    tti_ws_rx rx;
    tti_ws_rx_init(&rx, 0);
    drive d = { got, 0, sizeof got, 0, { 0 }, 0, 0 };
    TT_CHECK(feed(&rx, wire, w, 1, &d) >= 0);
    TT_CHECK_EQ_INT(d.pings, 2);
    TT_CHECK(d.last_ping_len == 125 && memcmp(d.last_ping, p125, 125) == 0);
}

static void test_close_in(void) {
    uint8_t wire[256], got[64];
    size_t w = srv_frame(wire, 0x82, "xy", 2, NULL);
    w += srv_frame(wire + w, 0x88, "\x03\xe8" "bye", 5, NULL);
    w += srv_frame(wire + w, 0x82, "zz", 2, NULL);        /* after close: never read */
    for (size_t chunk = 0; chunk <= 1; chunk++) {
        tti_ws_rx rx;
        tti_ws_rx_init(&rx, 0);
        drive d = { got, 0, sizeof got, 0, { 0 }, 0, 0 };
        TT_CHECK_EQ_INT(feed(&rx, wire, w, chunk, &d), TT_ECONNRESET);
        TT_CHECK_EQ_INT(d.out_len, 2);
        TT_CHECK_EQ_INT(rx.close_code, 1000);
        TT_CHECK_EQ_STR(rx.close_reason, "bye");
        TT_CHECK_EQ_INT(d.consumed, w - 4);
        size_t used = 9, dl;
        const uint8_t *data;
        TT_CHECK_EQ_INT(tti_ws_rx_feed(&rx, wire, w, &used, &data, &dl), TT_ECONNRESET);
        TT_CHECK_EQ_INT(used, 0);
    }
    /* no body: 1005 */
    w = srv_frame(wire, 0x88, "", 0, NULL);
    tti_ws_rx rx;
    tti_ws_rx_init(&rx, 0);
    drive d = { got, 0, sizeof got, 0, { 0 }, 0, 0 };
    TT_CHECK_EQ_INT(feed(&rx, wire, w, 0, &d), TT_ECONNRESET);
    TT_CHECK_EQ_INT(rx.close_code, TTI_WS_CLOSE_NO_STATUS);
    TT_CHECK_EQ_STR(rx.close_reason, "");
    /* the longest reason */
    uint8_t body[125];
    body[0] = 0x0F;
    body[1] = 0xA0; /* 4000: private use */
    memset(body + 2, 'r', 123);
    w = srv_frame(wire, 0x88, body, 125, NULL);
    tti_ws_rx_init(&rx, 0);
    TT_CHECK_EQ_INT(feed(&rx, wire, w, 0, &d), TT_ECONNRESET);
    TT_CHECK_EQ_INT(rx.close_code, 4000);
    TT_CHECK_EQ_INT(strlen(rx.close_reason), 123);
}

/* ---- Malformed server frames ---------------------------------------------------------- */

static void expect_rx_fail_(const uint8_t *wire, size_t w, uint64_t max, const char *what,
                            int line) {
    for (size_t chunk = 0; chunk <= 1; chunk++) {
        tti_ws_rx rx;
        tti_ws_rx_init(&rx, max);
        uint8_t got[256];
        drive d = { got, 0, sizeof got, 0, { 0 }, 0, 0 };
        int rc = feed(&rx, wire, w, chunk, &d);
        TT_CHECK_MSG(rc == TT_EPROTO, "line %d (%s): rc %d", line, what, rc);
        TT_CHECK_MSG(rx.why && *rx.why, "line %d (%s): no reason", line, what);
        if (getenv("TT_WS_VERBOSE")) fprintf(stderr, "  %-34s -> %s\n", what, rx.why);
        size_t used = 1, dl;
        const uint8_t *data;
        TT_CHECK_MSG(tti_ws_rx_feed(&rx, wire, w, &used, &data, &dl) == TT_EPROTO && used == 0,
                     "line %d (%s): not sticky", line, what);
    }
}
#define expect_rx_fail(wire, w, max, what) expect_rx_fail_(wire, w, max, what, __LINE__)

static void test_malformed(void) {
    uint8_t wire[512];
    size_t w;
    static const uint8_t key[4] = { 1, 2, 3, 4 };

    w = srv_frame(wire, 0x82, "abc", 3, key);
    expect_rx_fail(wire, w, 0, "masked server frame");
    for (unsigned rsv = 0x10; rsv <= 0x40; rsv <<= 1) {
        w = srv_frame(wire, (uint8_t)(0x82 | rsv), "abc", 3, NULL);
        expect_rx_fail(wire, w, 0, "reserved bit");
    }
    static const uint8_t bad_ops[] = { 3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF };
    for (size_t i = 0; i < sizeof bad_ops; i++) {
        w = srv_frame(wire, (uint8_t)(0x80 | bad_ops[i]), "", 0, NULL);
        expect_rx_fail(wire, w, 0, "unknown opcode");
    }
    w = srv_frame(wire, 0x81, "text", 4, NULL);
    expect_rx_fail(wire, w, 0, "text frame");
    uint8_t p126[126] = { 0 };
    w = srv_frame(wire, 0x89, p126, 126, NULL);
    expect_rx_fail(wire, w, 0, "ping of 126 bytes");
    w = srv_frame(wire, 0x8A, p126, 126, NULL);
    expect_rx_fail(wire, w, 0, "pong of 126 bytes");
    w = srv_frame(wire, 0x88, p126, 126, NULL);
    expect_rx_fail(wire, w, 0, "close of 126 bytes");
    w = srv_frame(wire, 0x09, "x", 1, NULL);
    expect_rx_fail(wire, w, 0, "fragmented ping");
    w = srv_frame(wire, 0x80, "x", 1, NULL);
    expect_rx_fail(wire, w, 0, "continuation without a message");
    w = srv_frame(wire, 0x00, "x", 1, NULL);
    expect_rx_fail(wire, w, 0, "continuation without a message");
    w = srv_frame(wire, 0x02, "x", 1, NULL);
    w += srv_frame(wire + w, 0x82, "y", 1, NULL);
    expect_rx_fail(wire, w, 0, "binary inside a fragmented message");
    w = srv_frame(wire, 0x82, "x", 1, NULL);
    w += srv_frame(wire + w, 0x80, "y", 1, NULL);
    expect_rx_fail(wire, w, 0, "continuation after a final frame");
    w = srv_frame(wire, 0x88, "\x03", 1, NULL);
    expect_rx_fail(wire, w, 0, "close with a 1-byte body");
    static const uint16_t bad_codes[] = { 0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000 };
    for (size_t i = 0; i < sizeof bad_codes / sizeof *bad_codes; i++) {
        uint8_t body[2] = { (uint8_t)(bad_codes[i] >> 8), (uint8_t)bad_codes[i] };
        w = srv_frame(wire, 0x88, body, 2, NULL);
        expect_rx_fail(wire, w, 0, "invalid close code");
    }

    /* lengths: not minimal, top bit, over the limit (refused from the header alone) */
    const uint8_t len16_small[] = { 0x82, 126, 0x00, 0x7D };
    expect_rx_fail(len16_small, sizeof len16_small, 0, "16-bit length under 126");
    const uint8_t len64_small[] = { 0x82, 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF };
    expect_rx_fail(len64_small, sizeof len64_small, 0, "64-bit length under 65536");
    const uint8_t len64_top[] = { 0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0 };
    expect_rx_fail(len64_top, sizeof len64_top, 0, "64-bit length, top bit");
    const uint8_t len64_huge[] = { 0x82, 127, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0 }; /* 1 TiB */
    expect_rx_fail(len64_huge, sizeof len64_huge, 0, "1 TiB frame, default limit");
    const uint8_t len64_big[] = { 0x82, 127, 0, 0, 0, 0, 0, 0x10, 0, 1 }; /* 1 MiB + 1 */
    expect_rx_fail(len64_big, sizeof len64_big, 1u << 20, "1 MiB + 1 over a 1 MiB limit");
    const uint8_t len16_big[] = { 0x82, 126, 0x10, 0x01 };
    expect_rx_fail(len16_big, sizeof len16_big, 4096, "4097 over a 4096 limit");

    /* exactly the limit is fine */
    tti_ws_rx rx;
    tti_ws_rx_init(&rx, 4096);
    const uint8_t len16_ok[] = { 0x82, 126, 0x10, 0x00 };
    size_t used, dl;
    const uint8_t *data;
    TT_CHECK_EQ_INT(tti_ws_rx_feed(&rx, len16_ok, sizeof len16_ok, &used, &data, &dl), TTI_WS_MORE);
    TT_CHECK_EQ_INT(used, sizeof len16_ok);
    TT_CHECK_EQ_INT(rx.left, 4096);
}

TT_TEST_LIST = {
    { "rfc_example", test_rfc_example },
    { "random_key", test_random_key },
    { "request", test_request },
    { "handshake_ok", test_handshake_ok },
    { "handshake_refusals", test_handshake_refusals },
    { "client_frames", test_client_frames },
    { "header_and_mask", test_header_and_mask },
    { "fresh_masks", test_fresh_masks },
    { "close_and_pong_out", test_close_and_pong_out },
    { "server_frames", test_server_frames },
    { "random_pieces", test_random_pieces },
    { "fragments_and_control", test_fragments_and_control },
    { "close_in", test_close_in },
    { "malformed", test_malformed },
    { NULL, NULL },
};
