/* Utilities shared by the codec unit tests (included after tt_test.h). */
#ifndef TT_CODEC_TEST_UTIL_H
#define TT_CODEC_TEST_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/codec.h>

/* Read a whole file into malloc'ed memory; NULL on failure. */
static inline unsigned char *ct_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *p = NULL;
    size_t cap = 0, n = 0, r;
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            unsigned char *q = realloc(p, cap);
            if (!q) break;
            p = q;
        }
        r = fread(p + n, 1, cap - n, f);
        n += r;
    } while (r > 0);
    fclose(f);
    *len = n;
    return p ? p : malloc(1);
}

/* Encode with `codec`, decode the bytes again and compare with `v`. */
static inline int ct_round_trip(const char *codec, json_t *v) {
    const tt_codec *c = tt_codec_find(codec);
    tt_buf b = TT_BUF_INIT;
    json_t *back = NULL;
    tt_codec_error err;
    int ok = c && tt_codec_encode(c, v, &b) == TT_OK &&
             tt_codec_decode(c, b.data, b.len, &back, &err) == TT_OK && json_equal(v, back);
    json_decref(back);
    tt_buf_free(&b);
    return ok;
}

/* Nested arrays `levels` deep around an integer: [[...[1]...]]. */
static inline json_t *ct_nested(int levels) {
    json_t *v = json_integer(1);
    for (int i = 0; i < levels; i++) {
        json_t *a = json_array();
        json_array_append_new(a, v);
        v = a;
    }
    return v;
}

/* Every corpus file `dir`/NAME is malformed input for `codec`; a name of the form
 * "what.atN.ext" also fixes the expected error offset N. Returns files checked. */
typedef void (*ct_corpus_fn)(const char *name, const unsigned char *data, size_t len,
                             long want_offset, void *arg);
static inline int ct_for_corpus(const char *dir, ct_corpus_fn fn, void *arg) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    int count = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        unsigned char *data = ct_read_file(path, &len);
        if (!data) continue;
        long want = -1;
        const char *at = strstr(e->d_name, ".at");
        if (at && at[3] >= '0' && at[3] <= '9') want = strtol(at + 3, NULL, 10);
        fn(e->d_name, data, len, want, arg);
        free(data);
        count++;
    }
    closedir(d);
    return count;
}

#endif
