/* tether sub -F: print a message through a format string, with
 * mosquitto_sub's codes. See sub_format.h. */
#include "sub_format.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A JSON string: quotes, backslashes and control bytes escaped; other bytes
 * as they are (the payload may not be UTF-8: %J is for text payloads). */
static void json_str(FILE *out, const char *s, size_t n) {
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') fprintf(out, "\\%c", ch);
        else if (ch == '\n') fputs("\\n", out);
        else if (ch == '\r') fputs("\\r", out);
        else if (ch == '\t') fputs("\\t", out);
        else if (ch < 0x20) fprintf(out, "\\u%04x", ch);
        else fputc(ch, out);
    }
    fputc('"', out);
}

static void json(FILE *out, const tt_msg *m, const struct timespec *now, bool with_payload) {
    size_t tl, pl;
    const char *t = tt_msg_topic(m, &tl);
    const char *p = tt_msg_payload(m, &pl);
    char tst[64];
    struct tm tm;
    gmtime_r(&now->tv_sec, &tm);
    size_t k = strftime(tst, sizeof tst, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(tst + k, sizeof tst - k, ".%06ldZ", now->tv_nsec / 1000);
    fprintf(out, "{\"tst\":\"%s\",\"topic\":", tst);
    json_str(out, t, tl);
    fprintf(out, ",\"qos\":%d,\"retain\":%d,\"payloadlen\":%zu", (int)tt_msg_qos(m), tt_msg_is_retained(m) ? 1 : 0,
            pl);
    if (with_payload) {
        fputs(",\"payload\":", out);
        json_str(out, p, pl);
    }
    fputc('}', out);
}

static void hex(FILE *out, const void *data, size_t n, bool upper) {
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) fprintf(out, upper ? "%02X" : "%02x", b[i]);
}

bool sub_format_check(const char *fmt, char *why, size_t n) {
    for (const char *f = fmt; *f; f++) {
        if (*f != '%' && *f != '@' && *f != '\\') continue;
        char kind = *f;
        if (!*++f) {
            snprintf(why, n, "-F ends in a lone '%c'", kind);
            return false;
        }
        if (kind == '%') {                        /* [-][0][width][.precision] */
            if (*f == '-') f++;
            if (*f == '0') f++;
            while (*f >= '0' && *f <= '9') f++;
            if (*f == '.')
                for (f++; *f >= '0' && *f <= '9'; f++) {
                }
            if (!*f) {
                snprintf(why, n, "-F ends inside a %% code");
                return false;
            }
        }
        if (kind == '%' && !strchr("%tpqrlxXIUCRPSEFDjJ", *f)) {
            snprintf(why, n, "-F: unknown code %%%c", *f);
            return false;
        }
        if (kind == '\\' && !strchr("\\nrtv0ae", *f)) {
            snprintf(why, n, "-F: unknown escape \\%c", *f);
            return false;
        }
    }
    return true;
}

/* One % code's text. */
static void print_code(FILE *out, char code, const tt_msg *m, const struct timespec *now) {
    size_t tl, pl, n;
    const char *topic = tt_msg_topic(m, &tl);
    const char *payload = tt_msg_payload(m, &pl);
    const char *s;
    uint32_t u;
    switch (code) {
    case '%': fputc('%', out); break;
    case 't': fwrite(topic, 1, tl, out); break;
    case 'p': fwrite(payload, 1, pl, out); break;
    case 'q': fprintf(out, "%d", (int)tt_msg_qos(m)); break;
    case 'r': fputc(tt_msg_is_retained(m) ? '1' : '0', out); break;
    case 'l': fprintf(out, "%zu", pl); break;
    case 'x': hex(out, payload, pl, false); break;
    case 'X': hex(out, payload, pl, true); break;
    case 'I': {
        char buf[64];
        struct tm tm;
        localtime_r(&now->tv_sec, &tm);
        if (strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", &tm)) fputs(buf, out);
        break;
    }
    case 'U': fprintf(out, "%lld.%09ld", (long long)now->tv_sec, now->tv_nsec); break;
    case 'C':
        if ((s = tt_msg_content_type(m, &n)) != NULL) fwrite(s, 1, n, out);
        break;
    case 'R':
        if ((s = tt_msg_response_topic(m, &n)) != NULL) fwrite(s, 1, n, out);
        break;
    case 'D': {
        const void *d = tt_msg_correlation(m, &n);
        if (d) fwrite(d, 1, n, out);
        break;
    }
    case 'E':
        if (tt_msg_expiry(m, &u)) fprintf(out, "%" PRIu32, u);
        break;
    case 'F':
        if (tt_msg_payload_utf8(m)) fputc('1', out);
        break;
    case 'P': {
        size_t np = tt_msg_user_prop_count(m);
        for (size_t i = 0; i < np; i++) {
            const char *k, *v;
            size_t kl, vl;
            if (!tt_msg_user_prop(m, i, &k, &kl, &v, &vl)) break;
            if (i) fputc(' ', out);
            fwrite(k, 1, kl, out);
            fputc(':', out);
            fwrite(v, 1, vl, out);
        }
        break;
    }
    case 'S': {
        uint32_t ids[16];
        size_t ni = tt_msg_sub_ids(m, ids, 16);
        for (size_t i = 0; i < ni && i < 16; i++) fprintf(out, i ? ",%" PRIu32 : "%" PRIu32, ids[i]);
        break;
    }
    case 'j': json(out, m, now, false); break;
    case 'J': json(out, m, now, true); break;
    default: break;                           /* sub_format_check refused it */
    }
}

void sub_format_print(FILE *out, const char *fmt, const tt_msg *m) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    for (const char *f = fmt; *f; f++) {
        if (*f == '\\') {
            switch (*++f) {
            case 'n': fputc('\n', out); break;
            case 'r': fputc('\r', out); break;
            case 't': fputc('\t', out); break;
            case 'v': fputc('\v', out); break;
            case '0': fputc('\0', out); break;
            case 'a': fputc('\a', out); break;
            case 'e': fputc('\033', out); break;
            default: fputc(*f, out); break;
            }
            continue;
        }
        if (*f == '@') {                          /* strftime's codes after '@' */
            ++f;
            if (*f == '@') {
                fputc('@', out);
                continue;
            }
            char spec[3] = { '%', *f, 0 }, buf[64];
            struct tm tm;
            localtime_r(&now.tv_sec, &tm);
            if (*f == 'N') {
                fprintf(out, "%09ld", now.tv_nsec);
                continue;
            }
            /* The letter is the user's: strftime takes any, and an unknown
             * one prints nothing. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
            size_t k = strftime(buf, sizeof buf, spec, &tm);
#pragma GCC diagnostic pop
            if (k) fputs(buf, out);
            continue;
        }
        if (*f != '%') {
            fputc(*f, out);
            continue;
        }
        bool left = false, zero = false;
        int width = 0, prec = -1;
        if (*++f == '-') left = true, f++;
        if (*f == '0') zero = true, f++;
        for (; *f >= '0' && *f <= '9'; f++)
            if (width < 100000) width = width * 10 + (*f - '0');
        if (*f == '.')
            for (prec = 0, f++; *f >= '0' && *f <= '9'; f++)
                if (prec < 100000) prec = prec * 10 + (*f - '0');
        if (!width && prec < 0) {
            print_code(out, *f, m, &now);
            continue;
        }
        /* With a width or precision: the field's text first, then cut and pad. */
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        if (!mem) continue;
        print_code(mem, *f, m, &now);
        fclose(mem);
        if (prec >= 0 && len > (size_t)prec) len = (size_t)prec;
        size_t pad = width > 0 && (size_t)width > len ? (size_t)width - len : 0;
        if (!left)
            for (size_t i = 0; i < pad; i++) fputc(zero ? '0' : ' ', out);
        fwrite(text, 1, len, out);
        if (left)
            for (size_t i = 0; i < pad; i++) fputc(' ', out);
        free(text);
    }
}
