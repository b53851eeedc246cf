/* The offline queue's journal file. See spool.h for the format. */
#include "actors/session/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actors/core/alloc.h"
#include "actors/core/crc32.h"
#include "actors/core/log.h"

#define HDR_LEN 16
#define ADD_FIXED (1 + 8 + 4 + 4)    /* tag, seq, len, crc */
#define DEL_LEN (1 + 8 + 4)
/* Rewrite when the file passes this and is at least 4x its live records. */
#define COMPACT_MIN (1u << 20)

static const char MAGIC[8] = { 'T', 'T', 'S', 'P', 'O', 'O', 'L', '1' };

struct tti_spool {
    int fd;
    char *path;
    uint8_t version;
    uint64_t next_seq;
    uint64_t file_bytes;             /* written, or buffered to be */
    uint64_t disk;                   /* whole records on disk: where a failed write is cut back to */
    uint64_t live_bytes;             /* of live ADD records */
    size_t live;
    bool failed;                     /* a write failed: logged once */
    uint8_t *buf;                    /* records not yet written */
    size_t n, cap;
    int cfd;                         /* compaction: the new file */
    uint64_t cbytes;
    size_t live_before;              /* restored if a rewrite fails */
    uint64_t retry_at;               /* after a failed rewrite: not before the file reaches this */
};

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

static bool write_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static bool reserve(tti_spool *s, size_t more) {
    if (s->n + more <= s->cap) return true;
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->n + more) cap *= 2;
    uint8_t *b = tti_realloc(s->buf, cap);
    if (!b) return false;
    s->buf = b;
    s->cap = cap;
    return true;
}

/* One record into `out` (room for ADD_FIXED + len); its length. */
static size_t enc_add(uint8_t *out, uint64_t seq, const uint8_t *data, uint32_t len) {
    out[0] = 'A';
    put_u64(out + 1, seq);
    put_u32(out + 9, len);
    memcpy(out + 13, data, len);
    put_u32(out + 13 + len, tti_crc32(0, out, 13 + (size_t)len));
    return ADD_FIXED + (size_t)len;
}

/* ---- Opening: replay the journal ------------------------------------------- */

typedef struct rec {
    uint64_t seq;
    size_t off;                      /* of the packet in the file image */
    uint32_t len;
    bool dead;
} rec;

static rec *find(rec *v, size_t n, uint64_t seq) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].seq < seq) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && v[lo].seq == seq ? &v[lo] : NULL;
}

/* "<what> <path>[: <errno text>]" into why; returns rc. */
static tt_err fail_why(char *why, size_t whylen, tt_err rc, const char *what, const char *path, int e) {
    snprintf(why, whylen, "%s %s%s%s", what, path, e ? ": " : "", e ? strerror(e) : "");
    return rc;
}

tt_err tti_spool_open(const char *path, uint8_t version, tti_spool_rec_fn fn, void *arg, tti_spool **out,
                      char *why, size_t whylen) {
    *out = NULL;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return fail_why(why, whylen, TT_EIO, "cannot open the queue file", path, errno);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        return fail_why(why, whylen, e == EWOULDBLOCK ? TT_EBUSY : TT_EIO,
                        "another client holds the queue file", path, 0);
    }
    struct stat st;
    uint8_t *img = NULL;
    size_t size = 0;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        size = (size_t)st.st_size;
        img = tti_malloc(size);
        size_t got = 0;
        while (img && got < size) {
            ssize_t r = pread(fd, img + got, size - got, (off_t)got);
            if (r <= 0) {
                if (r < 0 && errno == EINTR) continue;
                break;
            }
            got += (size_t)r;
        }
        if (!img || got != size) {
            int e = errno;
            tti_free(img);
            close(fd);
            return img ? fail_why(why, whylen, TT_EIO, "cannot read the queue file", path, e) : TT_ENOMEM;
        }
    }
    tti_spool *s = tti_calloc(1, sizeof *s);
    if (!s || !(s->path = tti_strdup(path))) {
        tti_free(s);
        tti_free(img);
        close(fd);
        return TT_ENOMEM;
    }
    s->fd = fd;
    s->cfd = -1;
    s->version = version;
    s->next_seq = 1;
    tt_err rc = TT_OK;
    rec *v = NULL;
    size_t nv = 0, capv = 0, good = HDR_LEN;
    /* A header cut short by a crash while the file was being made counts as
     * an empty file. */
    if (size > 0 && size < HDR_LEN && memcmp(img, MAGIC, size < sizeof MAGIC ? size : sizeof MAGIC) == 0) {
        if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
            rc = fail_why(why, whylen, TT_EIO, "cannot repair the queue file", path, errno);
        size = 0;
    }
    if (rc != TT_OK) {
        /* reported below */
    } else if (size == 0) {
        uint8_t hdr[HDR_LEN] = { 0 };
        memcpy(hdr, MAGIC, sizeof MAGIC);
        hdr[8] = version;
        if (!write_all(fd, hdr, sizeof hdr)) rc = fail_why(why, whylen, TT_EIO, "cannot write the queue file", path, errno);
        s->file_bytes = s->disk = HDR_LEN;
    } else if (size < HDR_LEN || memcmp(img, MAGIC, sizeof MAGIC) != 0) {
        rc = fail_why(why, whylen, TT_EINVAL, "not a tether queue file:", path, 0);
    } else if (img[8] != version) {
        snprintf(why, whylen, "the queue file %s holds MQTT %s packets", path, img[8] == 5 ? "5" : "3.1.1");
        rc = TT_EINVAL;
    } else {
        /* Records up to the first one that is torn or does not check out. */
        size_t off = HDR_LEN;
        while (rc == TT_OK && off < size) {
            const uint8_t *p = img + off;
            size_t left = size - off;
            if (p[0] == 'A' && left >= ADD_FIXED) {
                uint32_t len = get_u32(p + 9);
                if (len > left - ADD_FIXED || get_u32(p + 13 + len) != tti_crc32(0, p, 13 + (size_t)len)) break;
                uint64_t seq = get_u64(p + 1);
                if (nv && seq <= v[nv - 1].seq) break;        /* sequence numbers only grow */
                if (nv == capv) {
                    size_t nc = capv ? capv * 2 : 64;
                    rec *nvv = tti_realloc(v, nc * sizeof *v);
                    if (!nvv) {
                        rc = TT_ENOMEM;
                        break;
                    }
                    v = nvv;
                    capv = nc;
                }
                v[nv++] = (rec){ seq, off + 13, len, false };
                s->next_seq = seq + 1;
                off += ADD_FIXED + len;
            } else if (p[0] == 'D' && left >= DEL_LEN) {
                if (get_u32(p + 9) != tti_crc32(0, p, 9)) break;
                rec *r = find(v, nv, get_u64(p + 1));
                if (r) r->dead = true;
                off += DEL_LEN;
            } else {
                break;
            }
            good = off;
        }
        if (rc == TT_OK && good < size) {
            TTI_LOG(WARN, "spool", "%s: cutting off %zu bytes after the last whole record", path, size - good);
            if (ftruncate(fd, (off_t)good) != 0)
                rc = fail_why(why, whylen, TT_EIO, "cannot repair the queue file", path, errno);
        }
        s->file_bytes = s->disk = good;
        for (size_t i = 0; rc == TT_OK && i < nv; i++) {
            if (v[i].dead) continue;
            s->live++;
            s->live_bytes += ADD_FIXED + v[i].len;
            rc = fn(arg, v[i].seq, img + v[i].off, v[i].len);
        }
    }
    tti_free(v);
    tti_free(img);
    if (rc == TT_OK && lseek(fd, 0, SEEK_END) < 0)
        rc = fail_why(why, whylen, TT_EIO, "cannot use the queue file", path, errno);
    if (rc != TT_OK) {
        close(fd);
        tti_free(s->path);
        tti_free(s);
        return rc;
    }
    *out = s;
    return TT_OK;
}

/* ---- Appending -------------------------------------------------------------- */

uint64_t tti_spool_add(tti_spool *s, const uint8_t *data, uint32_t len) {
    uint64_t seq = s->next_seq++;
    if (!reserve(s, ADD_FIXED + (size_t)len)) {
        TTI_LOG(ERROR, "spool", "%s: no memory to record a publish", s->path);
        return 0;                    /* not recorded: finishing it records nothing */
    }
    s->n += enc_add(s->buf + s->n, seq, data, len);
    s->file_bytes += ADD_FIXED + len;
    s->live_bytes += ADD_FIXED + len;
    s->live++;
    return seq;
}

void tti_spool_del(tti_spool *s, uint64_t seq, uint32_t len) {
    if (!seq || !reserve(s, DEL_LEN)) return;
    uint8_t *p = s->buf + s->n;
    p[0] = 'D';
    put_u64(p + 1, seq);
    put_u32(p + 9, tti_crc32(0, p, 9));
    s->n += DEL_LEN;
    s->file_bytes += DEL_LEN;
    if (s->live) s->live--;
    uint64_t was = ADD_FIXED + (uint64_t)len;
    s->live_bytes -= was < s->live_bytes ? was : s->live_bytes;
}

tt_err tti_spool_flush(tti_spool *s) {
    if (s->n == 0) return TT_OK;
    if (!write_all(s->fd, s->buf, s->n)) {
        if (!s->failed) TTI_LOG(ERROR, "spool", "%s: write failed: %s", s->path, strerror(errno));
        s->failed = true;
        /* A partial write would leave a torn record, and the next open stops
         * reading there: cut back to the whole records and keep the buffer. */
        if (ftruncate(s->fd, (off_t)s->disk) != 0 || lseek(s->fd, 0, SEEK_END) < 0)
            TTI_LOG(ERROR, "spool", "%s: cannot cut back a failed write: %s", s->path, strerror(errno));
        return TT_EIO;
    }
    if (s->failed) TTI_LOG(INFO, "spool", "%s: writing again", s->path);
    s->failed = false;
    s->disk += s->n;
    s->n = 0;
    return TT_OK;
}

/* ---- Compaction ------------------------------------------------------------- */

bool tti_spool_wants_compact(const tti_spool *s) {
    return s->file_bytes > COMPACT_MIN && s->file_bytes > 4 * (s->live_bytes + HDR_LEN) &&
           s->file_bytes >= s->retry_at;
}

void tti_spool_compact_begin(tti_spool *s) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.new", s->path);
    s->live_before = s->live;
    s->cfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    s->cbytes = 0;
    if (s->cfd < 0) return;
    uint8_t hdr[HDR_LEN] = { 0 };
    memcpy(hdr, MAGIC, sizeof MAGIC);
    hdr[8] = s->version;
    if (!write_all(s->cfd, hdr, sizeof hdr)) {
        close(s->cfd);
        s->cfd = -1;
        return;
    }
    s->cbytes = HDR_LEN;
    s->live = 0;
}

void tti_spool_compact_put(tti_spool *s, uint64_t seq, const uint8_t *data, uint32_t len) {
    if (s->cfd < 0 || !seq) return;
    uint8_t small[512];
    uint8_t *b = ADD_FIXED + (size_t)len <= sizeof small ? small : tti_malloc(ADD_FIXED + (size_t)len);
    if (!b || !write_all(s->cfd, b, enc_add(b, seq, data, len))) {
        close(s->cfd);
        s->cfd = -1;
    }
    if (b && b != small) tti_free(b);
    s->cbytes += ADD_FIXED + len;
    s->live++;
}

tt_err tti_spool_compact_end(tti_spool *s) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.new", s->path);
    if (s->cfd < 0 || fdatasync(s->cfd) != 0 || rename(tmp, s->path) != 0) {
        if (s->cfd >= 0) close(s->cfd);
        s->cfd = -1;
        (void)unlink(tmp);
        s->live = s->live_before;
        s->retry_at = s->file_bytes * 2;
        TTI_LOG(WARN, "spool", "%s: rewriting failed; trying again when it is twice as large", s->path);
        return TT_EIO;
    }
    /* The new file is the journal now; the buffered records (written after
     * the live set was taken) are about publishes already in it or finished. */
    if (flock(s->cfd, LOCK_EX | LOCK_NB) != 0) TTI_LOG(WARN, "spool", "%s: cannot lock the new file", s->path);
    close(s->fd);
    s->fd = s->cfd;
    s->cfd = -1;
    s->file_bytes = s->disk = s->cbytes;
    s->live_bytes = s->cbytes - HDR_LEN;
    s->n = 0;
    return TT_OK;
}

uint64_t tti_spool_file_bytes(const tti_spool *s) { return s->file_bytes; }
size_t tti_spool_live(const tti_spool *s) { return s->live; }

void tti_spool_close(tti_spool *s) {
    if (!s) return;
    (void)tti_spool_flush(s);
    if (s->cfd >= 0) close(s->cfd);
    close(s->fd);
    tti_free(s->buf);
    tti_free(s->path);
    tti_free(s);
}
