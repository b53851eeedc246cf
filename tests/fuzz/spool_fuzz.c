/* libFuzzer target: the offline queue's file reader on arbitrary file bytes.
 * Half the inputs get a valid header first, so the fuzzer spends its time on
 * the records. Whatever the bytes, opening either fails with a reason or
 * yields records inside the file; after an open that succeeded, adding,
 * finishing and flushing a record, then opening again, must find the same
 * live records (the torn tail was cut off the first time). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/session/spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct tally {
    size_t n;
    uint64_t last;
    uint64_t bytes;
} tally;

static tt_err count(void *arg, uint64_t seq, const uint8_t *d, uint32_t len) {
    tally *t = arg;
    if (seq == 0 || seq <= t->last) __builtin_trap();   /* in order, never 0 */
    t->last = seq;
    uint64_t sum = 0;
    for (uint32_t i = 0; i < len; i++) sum += d[i];     /* every byte readable */
    t->bytes += len + (sum & 1);
    t->n++;
    return TT_OK;
}

static char g_dir[64], g_path[256];

static void cleanup(void) {
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.new", g_path);
    (void)unlink(tmp);
    (void)unlink(g_path);
    (void)rmdir(g_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_path[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(g_dir, sizeof g_dir, "%s/tt-spool-fuzz-XXXXXX", t && *t && strlen(t) < 40 ? t : "/tmp");
        if (!mkdtemp(g_dir)) return 0;
        snprintf(g_path, sizeof g_path, "%s/queue", g_dir);
        atexit(cleanup);
    }
    if (size < 1) return 0;
    uint8_t version = (data[0] & 2) ? 5 : 4;
    int fd = open(g_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return 0;
    if (data[0] & 1) {
        uint8_t hdr[16] = { 'T', 'T', 'S', 'P', 'O', 'O', 'L', '1', version };
        if (write(fd, hdr, sizeof hdr) != (ssize_t)sizeof hdr) __builtin_trap();
    }
    if (size > 1 && write(fd, data + 1, size - 1) != (ssize_t)(size - 1)) __builtin_trap();
    close(fd);

    tally a = { 0 };
    char why[320] = "";
    tti_spool *s = NULL;
    tt_err rc = tti_spool_open(g_path, version, count, &a, &s, why, sizeof why);
    if (rc != TT_OK) {
        if (s || !why[0]) __builtin_trap();              /* a failure says why */
        return 0;
    }
    if (tti_spool_live(s) != a.n) __builtin_trap();
    static const uint8_t pub[] = { 0x32, 0x07, 0x00, 0x01, 't', 0x00, 0x00, 'h', 'i' };
    uint64_t seq = tti_spool_add(s, pub, sizeof pub);
    if (seq == 0 || seq <= a.last) __builtin_trap();
    tti_spool_del(s, seq, sizeof pub);
    if (tti_spool_flush(s) != TT_OK) __builtin_trap();
    tti_spool_close(s);

    tally b = { 0 };
    rc = tti_spool_open(g_path, version, count, &b, &s, why, sizeof why);
    if (rc != TT_OK || b.n != a.n || b.bytes != a.bytes) __builtin_trap();
    tti_spool_close(s);
    return 0;
}
