/* Proxy tunnels without sockets: proxy URLs, the SOCKS5 and HTTP CONNECT
 * exchanges fed whole and byte by byte, bytes after the proxy's answer left
 * in place, and every malformed or refusing answer mapped to its error. */
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/core/alloc.h"
#include "transport/proxy.h"
#include "tt_test.h"

static void test_parse_url(void) {
    tti_proxy_kind k;
    char *h, *u, *p;
    uint16_t port;
    TT_REQUIRE(tti_proxy_parse_url("socks5://proxy.example", &k, &h, &port, &u, &p) == TT_OK);
    TT_CHECK(k == TTI_PROXY_SOCKS5 && !strcmp(h, "proxy.example") && port == 1080 && !u && !p);
    tti_free(h);
    TT_REQUIRE(tti_proxy_parse_url("http://a%40b:c%3Ad@10.0.0.1:3128", &k, &h, &port, &u, &p) == TT_OK);
    TT_CHECK(k == TTI_PROXY_HTTP && !strcmp(h, "10.0.0.1") && port == 3128);
    TT_CHECK(u && !strcmp(u, "a@b") && p && !strcmp(p, "c:d"));
    tti_free(h);
    tti_free(u);
    tti_free(p);
    TT_REQUIRE(tti_proxy_parse_url("socks5h://user@[::1]:9050/", &k, &h, &port, &u, &p) == TT_OK);
    TT_CHECK(!strcmp(h, "::1") && port == 9050 && u && !strcmp(u, "user") && !p);
    tti_free(h);
    tti_free(u);
    TT_REQUIRE(tti_proxy_parse_url("http://h", &k, &h, &port, &u, &p) == TT_OK);
    TT_CHECK(port == 8080);
    tti_free(h);
    const char *bad[] = { "ftp://h", "socks5://", "socks5://h:0", "socks5://h:65536", "http://h:12x",
                          "socks5://[::1", "http://:80", "h:1080", NULL };
    for (int i = 0; bad[i]; i++) {
        h = u = p = NULL;
        tt_err rc = tti_proxy_parse_url(bad[i], &k, &h, &port, &u, &p);
        if (rc != TT_EINVAL) fprintf(stderr, "  accepted %s\n", bad[i]);
        TT_CHECK_EQ_INT(rc, TT_EINVAL);
        TT_CHECK(!h && !u && !p);
    }
}

/* Feeds `reply` to the state machine, in one piece or a byte at a time;
 * returns the final result. */
static int feed(tti_proxy *px, struct evbuffer *in, struct evbuffer *out, const uint8_t *reply, size_t n,
                bool bytewise) {
    int r = 0;
    for (size_t i = 0; i < n; i += bytewise ? 1 : n) {
        evbuffer_add(in, reply + i, bytewise ? 1 : n);
        r = tti_proxy_input(px, in, out);
        if (r != 0) return r;
    }
    return r;
}

static void test_socks5_exchange(void) {
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        tti_proxy px;
        TT_REQUIRE(tti_proxy_init(&px, TTI_PROXY_SOCKS5, "broker.example", 8883, "u", "pw") == TT_OK);
        struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
        TT_REQUIRE(tti_proxy_begin(&px, out) == TT_OK);
        uint8_t greet[4];
        TT_REQUIRE(evbuffer_remove(out, greet, 4) == 4);
        TT_CHECK(greet[0] == 5 && greet[1] == 2 && greet[2] == 0 && greet[3] == 2);
        /* Method user/password, then its success, then CONNECT success with a
         * domain-name bound address, then two bytes from the far end. */
        const uint8_t m[] = { 5, 2 };
        TT_CHECK_EQ_INT(feed(&px, in, out, m, 2, bytewise), 0);
        uint8_t auth[16];
        int an = evbuffer_remove(out, auth, sizeof auth);
        TT_CHECK(an == 6 && auth[0] == 1 && auth[1] == 1 && auth[2] == 'u' && auth[3] == 2 && !memcmp(auth + 4, "pw", 2));
        const uint8_t ok[] = { 1, 0 };
        TT_CHECK_EQ_INT(feed(&px, in, out, ok, 2, bytewise), 0);
        uint8_t req[64];
        int rn = evbuffer_remove(out, req, sizeof req);
        TT_CHECK(rn == 4 + 1 + 14 + 2 && req[1] == 1 && req[3] == 3 && req[4] == 14 && !memcmp(req + 5, "broker.example", 14));
        TT_CHECK(req[19] == (8883 >> 8) && req[20] == (8883 & 0xFF));
        const uint8_t rep[] = { 5, 0, 0, 3, 3, 'a', 'b', 'c', 0x1F, 0x90, 0x20, 0x10 };
        TT_CHECK_EQ_INT(feed(&px, in, out, rep, sizeof rep, bytewise), 1);
        TT_CHECK_EQ_INT(evbuffer_get_length(in), bytewise ? 0 : 2);   /* byte-wise stops at the reply's end */
        evbuffer_free(in);
        evbuffer_free(out);
        tti_proxy_fini(&px);
    }
    /* Numeric destinations go as addresses, not names. */
    tti_proxy px;
    TT_REQUIRE(tti_proxy_init(&px, TTI_PROXY_SOCKS5, "127.0.0.1", 1883, NULL, NULL) == TT_OK);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    (void)tti_proxy_begin(&px, out);
    evbuffer_drain(out, 3);
    const uint8_t none[] = { 5, 0 };
    TT_CHECK_EQ_INT(feed(&px, in, out, none, 2, false), 0);
    uint8_t req[16];
    TT_CHECK(evbuffer_remove(out, req, sizeof req) == 10 && req[3] == 1 && req[4] == 127 && req[7] == 1);
    evbuffer_free(in);
    evbuffer_free(out);
    tti_proxy_fini(&px);
}

typedef struct bad_case {
    const char *name;
    tti_proxy_kind kind;
    const char *user;
    const uint8_t *reply;
    size_t len;
    tt_err want;
} bad_case;

static void test_refusals(void) {
    static const uint8_t v4[] = { 4, 0 };
    static const uint8_t nomethod[] = { 5, 0xFF };
    static const uint8_t wants_auth[] = { 5, 2 };
    /* Whole answers: the method choice, then the CONNECT reply. */
    static const uint8_t refused[] = { 5, 0, 5, 5, 0, 1, 0, 0, 0, 0, 0, 0 };
    static const uint8_t ruleset[] = { 5, 0, 5, 2, 0, 1, 0, 0, 0, 0, 0, 0 };
    static const uint8_t badatyp[] = { 5, 0, 5, 0, 0, 9, 0, 0 };
    static const uint8_t badauth[] = { 5, 2, 1, 1 };
    static const char h407[] = "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n";
    static const char h403[] = "HTTP/1.1 403 Forbidden\r\n\r\n";
    static const char notreally[] = "SSH-2.0-OpenSSH\r\n";
    static const char nostatus[] = "HTTP/1.1 abc\r\n\r\n";
    bad_case cases[] = {
        { "SOCKS4 answer", TTI_PROXY_SOCKS5, NULL, v4, sizeof v4, TT_EPROTO },
        { "no acceptable method", TTI_PROXY_SOCKS5, NULL, nomethod, sizeof nomethod, TT_EAUTH },
        { "asks for a password we lack", TTI_PROXY_SOCKS5, NULL, wants_auth, sizeof wants_auth, TT_EAUTH },
        { "wrong password", TTI_PROXY_SOCKS5, "u", badauth, sizeof badauth, TT_EAUTH },
        { "destination refused", TTI_PROXY_SOCKS5, NULL, refused, sizeof refused, TT_ECONNREFUSED },
        { "ruleset", TTI_PROXY_SOCKS5, NULL, ruleset, sizeof ruleset, TT_EREFUSED },
        { "bad address type", TTI_PROXY_SOCKS5, NULL, badatyp, sizeof badatyp, TT_EPROTO },
        { "HTTP 407", TTI_PROXY_HTTP, NULL, (const uint8_t *)h407, sizeof h407 - 1, TT_EAUTH },
        { "HTTP 403", TTI_PROXY_HTTP, NULL, (const uint8_t *)h403, sizeof h403 - 1, TT_EREFUSED },
        { "not HTTP", TTI_PROXY_HTTP, NULL, (const uint8_t *)notreally, sizeof notreally - 1, TT_EPROTO },
        { "no status", TTI_PROXY_HTTP, NULL, (const uint8_t *)nostatus, sizeof nostatus - 1, TT_EPROTO },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            tti_proxy px;
            TT_REQUIRE(tti_proxy_init(&px, cases[i].kind, "b", 1, cases[i].user, "x") == TT_OK);
            struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
            (void)tti_proxy_begin(&px, out);
            int r = feed(&px, in, out, cases[i].reply, cases[i].len, bytewise);
            if (r >= 0 || px.err != cases[i].want)
                fprintf(stderr, "  %s (bytewise %d): r=%d err=%s reason=%s\n", cases[i].name, bytewise, r,
                        tt_err_name(px.err), px.reason);
            TT_CHECK(r < 0);
            TT_CHECK_EQ_INT(px.err, cases[i].want);
            TT_CHECK(px.reason[0] != 0);
            evbuffer_free(in);
            evbuffer_free(out);
            tti_proxy_fini(&px);
        }
    }
}

static void test_http_exchange(void) {
    tti_proxy px;
    TT_REQUIRE(tti_proxy_init(&px, TTI_PROXY_HTTP, "::1", 1883, "Aladdin", "open sesame") == TT_OK);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    (void)tti_proxy_begin(&px, out);
    size_t n = evbuffer_get_length(out);
    char *req = tti_malloc(n + 1);
    evbuffer_remove(out, req, n);
    req[n] = 0;
    TT_CHECK(strstr(req, "CONNECT [::1]:1883 HTTP/1.1\r\n") == req);
    TT_CHECK(strstr(req, "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n") != NULL);
    TT_CHECK(n > 4 && !strcmp(req + n - 4, "\r\n\r\n"));
    tti_free(req);
    /* Byte by byte, with MQTT bytes right behind the head. */
    const char rep[] = "HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\n\x20\x02";
    TT_CHECK_EQ_INT(feed(&px, in, out, (const uint8_t *)rep, sizeof rep - 1 - 2, true), 1);
    evbuffer_add(in, "\x20\x02", 2);
    TT_CHECK_EQ_INT(tti_proxy_input(&px, in, out), 1);
    TT_CHECK_EQ_INT(evbuffer_get_length(in), 2);
    tti_proxy_fini(&px);
    /* A head that never ends is refused at its bound, not buffered forever. */
    TT_REQUIRE(tti_proxy_init(&px, TTI_PROXY_HTTP, "b", 1, NULL, NULL) == TT_OK);
    evbuffer_drain(in, evbuffer_get_length(in));
    (void)tti_proxy_begin(&px, out);
    evbuffer_add(in, "HTTP/1.1 200 OK\r\n", 17);
    int r = 0;
    for (int i = 0; i < 1000 && r == 0; i++) {
        evbuffer_add(in, "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaa\r\n", 36);
        r = tti_proxy_input(&px, in, out);
    }
    TT_CHECK(r < 0 && px.err == TT_EPROTO);
    tti_proxy_fini(&px);
    /* CR/LF in a host name cannot smuggle headers. */
    TT_CHECK_EQ_INT(tti_proxy_init(&px, TTI_PROXY_HTTP, "b\r\nX: y", 1, NULL, NULL), TT_EINVAL);
    evbuffer_free(in);
    evbuffer_free(out);
}

TT_TEST_LIST = {
    { "parse_url", test_parse_url },
    { "socks5_exchange", test_socks5_exchange },
    { "refusals", test_refusals },
    { "http_exchange", test_http_exchange },
    { NULL, NULL },
};
