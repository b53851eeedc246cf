/* The scripted misbehaving broker: see hostile.h. */
#include "hostile.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PACKET_WAIT_MS 5000
#define HOLD_MAX_MS 30000
#define RBUF_CAP 65536

struct tt_hostile {
    int lfd;
    int port;
    int wake[2];
    pthread_t thread;
    atomic_bool stop;
    atomic_int accepted, completed;
    tt_hostile_step *steps;
    size_t n;
    uint8_t *blob;
    uint8_t rbuf[RBUF_CAP];
    size_t rlen;
    uint16_t last_pid;
};

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd has `events` (true), or the deadline / a stop (false). */
static bool wait_fd(tt_hostile *h, int fd, short events, long long deadline) {
    while (!atomic_load(&h->stop)) {
        long long left = deadline - now_ms();
        if (left <= 0) return false;
        struct pollfd p[2] = { { fd, events, 0 }, { h->wake[0], POLLIN, 0 } };
        int r = poll(p, 2, (int)(left < 100 ? left : 100));
        if (r < 0 && errno != EINTR) return false;
        if (r > 0 && p[0].revents) return true;
    }
    return false;
}

/* Read what is there into rbuf: bytes read, 0 at EOF/error/stop/deadline. */
static ssize_t fill(tt_hostile *h, int fd, long long deadline) {
    if (h->rlen == RBUF_CAP) return 0;
    if (!wait_fd(h, fd, POLLIN, deadline)) return 0;
    ssize_t r = recv(fd, h->rbuf + h->rlen, RBUF_CAP - h->rlen, 0);
    if (r <= 0) return 0;
    h->rlen += (size_t)r;
    return r;
}

/* The length of the whole packet at the start of rbuf, 0 if incomplete, -1 if
 * its header is bad. */
static long packet_len(const tt_hostile *h, size_t *hdr) {
    uint32_t len = 0;
    for (size_t i = 1; i < 5; i++) {
        if (i >= h->rlen) return 0;
        len |= (uint32_t)(h->rbuf[i] & 0x7f) << (7 * (i - 1));
        if (!(h->rbuf[i] & 0x80)) {
            *hdr = i + 1;
            size_t total = i + 1 + len;
            if (total > RBUF_CAP) return -1;
            return h->rlen >= total ? (long)total : 0;
        }
    }
    return -1;
}

/* Read packets until one of `type` (0: any) arrives; remember its id. */
static bool expect(tt_hostile *h, int fd, uint8_t type) {
    long long deadline = now_ms() + PACKET_WAIT_MS;
    for (;;) {
        size_t hdr = 0;
        long total = packet_len(h, &hdr);
        if (total < 0) {
            fprintf(stderr, "hostile: the client sent a bad fixed header\n");
            return false;
        }
        if (total > 0) {
            uint8_t t = (uint8_t)(h->rbuf[0] >> 4);
            size_t at = hdr;
            if (t == 3) {            /* PUBLISH: the id follows the topic, QoS > 0 only */
                size_t tl = (size_t)(h->rbuf[hdr] << 8 | h->rbuf[hdr + 1]);
                at = (h->rbuf[0] & 0x06) ? hdr + 2 + tl : 0;
            } else if (t < 4 || t > 11) {
                at = 0;
            }
            if (at && at + 2 <= (size_t)total) h->last_pid = (uint16_t)(h->rbuf[at] << 8 | h->rbuf[at + 1]);
            memmove(h->rbuf, h->rbuf + total, h->rlen - (size_t)total);
            h->rlen -= (size_t)total;
            if (type == 0 || t == type) return true;
            continue;
        }
        if (fill(h, fd, deadline) <= 0) {
            fprintf(stderr, "hostile: no packet of type %u from the client\n", type);
            return false;
        }
    }
}

static bool send_all(tt_hostile *h, int fd, const uint8_t *p, size_t n) {
    long long deadline = now_ms() + PACKET_WAIT_MS;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!wait_fd(h, fd, POLLOUT, deadline)) return false;
            continue;
        }
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static void hold(tt_hostile *h, int fd) {
    long long deadline = now_ms() + HOLD_MAX_MS;
    while (!atomic_load(&h->stop) && now_ms() < deadline) {
        h->rlen = 0;
        if (!wait_fd(h, fd, POLLIN, deadline)) return;
        ssize_t r = recv(fd, h->rbuf, RBUF_CAP, 0);
        if (r <= 0) return;
    }
}

static void play(tt_hostile *h, int fd) {
    h->rlen = 0;
    h->last_pid = 0;
    for (size_t i = 0; i < h->n; i++) {
        const tt_hostile_step *s = &h->steps[i];
        switch (s->op) {
        case TT_HOSTILE_OP_EXPECT:
            if (!expect(h, fd, s->type)) return;
            break;
        case TT_HOSTILE_OP_SEND: {
            uint8_t small[256];
            uint8_t *b = s->len <= sizeof small ? small : malloc(s->len);
            if (!b) return;
            memcpy(b, s->bytes, s->len);
            if (s->pid_at && s->pid_at + 2 <= s->len) {
                b[s->pid_at] = (uint8_t)(h->last_pid >> 8);
                b[s->pid_at + 1] = (uint8_t)h->last_pid;
            }
            bool ok = send_all(h, fd, b, s->len);
            if (b != small) free(b);
            if (!ok) return;
            break;
        }
        case TT_HOSTILE_OP_SLEEP: {
            long long until = now_ms() + s->ms;
            while (!atomic_load(&h->stop) && now_ms() < until) usleep(10000);
            break;
        }
        case TT_HOSTILE_OP_CLOSE:
            atomic_fetch_add(&h->completed, 1);
            return;
        case TT_HOSTILE_OP_HOLD:
            atomic_fetch_add(&h->completed, 1);
            hold(h, fd);
            return;
        }
    }
    atomic_fetch_add(&h->completed, 1);
}

static void *serve(void *arg) {
    tt_hostile *h = arg;
    while (!atomic_load(&h->stop)) {
        struct pollfd p[2] = { { h->lfd, POLLIN, 0 }, { h->wake[0], POLLIN, 0 } };
        int r = poll(p, 2, 100);
        if (r <= 0 || !(p[0].revents & POLLIN)) continue;
        int fd = accept(h->lfd, NULL, NULL);
        if (fd < 0) continue;
        atomic_fetch_add(&h->accepted, 1);
        play(h, fd);
        close(fd);
    }
    return NULL;
}

int tt_hostile_start(tt_hostile **out, const tt_hostile_step *steps, size_t n) {
    *out = NULL;
    tt_hostile *h = calloc(1, sizeof *h);
    if (!h) return -1;
    h->lfd = -1;
    h->wake[0] = h->wake[1] = -1;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) bytes += steps[i].len;
    h->steps = calloc(n ? n : 1, sizeof *h->steps);
    h->blob = malloc(bytes ? bytes : 1);
    if (!h->steps || !h->blob) goto fail;
    h->n = n;
    for (size_t i = 0, off = 0; i < n; i++) {
        h->steps[i] = steps[i];
        if (steps[i].len) {
            memcpy(h->blob + off, steps[i].bytes, steps[i].len);
            h->steps[i].bytes = h->blob + off;
            off += steps[i].len;
        }
    }
    if (pipe2(h->wake, O_CLOEXEC) != 0) goto fail;
    h->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->lfd < 0) goto fail;
    int one = 1;
    (void)setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(h->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(h->lfd, 16) != 0 ||
        getsockname(h->lfd, (struct sockaddr *)&a, &al) != 0)
        goto fail;
    h->port = ntohs(a.sin_port);
    if (pthread_create(&h->thread, NULL, serve, h) != 0) goto fail;
    *out = h;
    return 0;
fail:
    fprintf(stderr, "hostile: cannot start: %s\n", strerror(errno));
    if (h->lfd >= 0) close(h->lfd);
    if (h->wake[0] >= 0) close(h->wake[0]);
    if (h->wake[1] >= 0) close(h->wake[1]);
    free(h->steps);
    free(h->blob);
    free(h);
    return -1;
}

int tt_hostile_port(const tt_hostile *h) { return h->port; }
int tt_hostile_accepted(const tt_hostile *h) { return atomic_load(&((tt_hostile *)h)->accepted); }
int tt_hostile_completed(const tt_hostile *h) { return atomic_load(&((tt_hostile *)h)->completed); }

void tt_hostile_free(tt_hostile *h) {
    if (!h) return;
    atomic_store(&h->stop, true);
    ssize_t w = write(h->wake[1], "x", 1);
    (void)w;
    pthread_join(h->thread, NULL);
    close(h->lfd);
    close(h->wake[0]);
    close(h->wake[1]);
    free(h->steps);
    free(h->blob);
    free(h);
}
