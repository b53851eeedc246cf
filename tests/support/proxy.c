/* The fault-injecting TCP proxy: see proxy.h. One thread, poll(), at most
 * MAX_PAIRS connections; each direction keeps a queue of chunks so a delay
 * can hold them and a stall can stop them. */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PAIRS 512
#define READ_CHUNK 16384
#define DIR_MAX_QUEUED (512 * 1024)
#define SPLIT_BURST 64

typedef struct chunk {
    struct chunk *next;
    long long due_ms;
    size_t len, off;
    uint8_t data[];
} chunk;

/* Where the MQTT packets are in one direction's byte stream. */
typedef struct framer {
    uint32_t left;                    /* body bytes of the current packet still to come */
    uint32_t len;                     /* remaining length being read */
    int hn;                           /* header bytes seen of the next packet (0: none) */
} framer;

typedef struct dirq {
    chunk *head, *tail;
    size_t queued;
    framer fr;
} dirq;

typedef struct pair {
    bool used;
    bool close_after;                 /* a mid-packet cut: close once q[cut_dir] is written */
    int cut_dir;
    int fd[2];                        /* [0] the client, [1] the upstream */
    dirq q[2];                        /* [TT_PROXY_UP] fd[0] → fd[1], [TT_PROXY_DOWN] fd[1] → fd[0] */
} pair;

struct tt_proxy {
    int lfd, port, upstream;
    int wake[2];
    pthread_t thread;
    atomic_bool stop, stall, split;
    atomic_uint delay_ms;
    atomic_int cut_req, cut_done, cut_result;
    atomic_bool mid_armed;
    atomic_int mid_dir, mid_done;
    atomic_size_t mid_n;
    atomic_int accepted, open, cuts;
    pair pairs[MAX_PAIRS];
};

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void poke(tt_proxy *p) {
    ssize_t w = write(p->wake[1], "x", 1);
    (void)w;
}

/* ---- Framing ------------------------------------------------------------- */

static void framer_feed(framer *f, const uint8_t *b, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (f->left) {
            size_t skip = n - i < f->left ? n - i : f->left;
            f->left -= (uint32_t)skip;
            i += skip;
            continue;
        }
        uint8_t c = b[i++];
        if (f->hn == 0) {             /* the type byte */
            f->hn = 1;
            f->len = 0;
            continue;
        }
        f->len |= (uint32_t)(c & 0x7f) << (7 * (f->hn - 1));
        f->hn++;
        if (!(c & 0x80) || f->hn == 5) {
            f->left = f->len;
            f->hn = 0;
        }
    }
}

/* Where to cut chunk b[0..n) so that the stream stops inside a packet: `want`
 * bytes into the first packet starting in it, at least 1, short of its end. */
static size_t cut_point(const framer *f0, const uint8_t *b, size_t n, size_t want) {
    framer f = *f0;
    size_t i = 0;
    if (want == 0) want = 1;
    /* Skip to the first packet start. */
    while (i < n && (f.left || f.hn)) framer_feed(&f, b + i, 1), i++;
    if (i == n) return want < n ? want : n;   /* all inside one packet */
    size_t start = i;
    framer_feed(&f, b + i, 1);
    i++;
    while (i < n && f.hn) framer_feed(&f, b + i, 1), i++;
    if (f.hn) return start + want < n ? start + want : n;   /* header runs past the chunk */
    size_t total = (i - start) + f.left;
    size_t k = want < total ? want : total - 1;
    if (k == 0) k = 1;
    return start + k < n ? start + k : n;
}

/* ---- Connections ------------------------------------------------------------ */

static void set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL, 0);
    (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void close_pair(tt_proxy *p, pair *pr, bool reset) {
    for (int s = 0; s < 2; s++) {
        if (reset) {
            struct linger lg = { 1, 0 };
            (void)setsockopt(pr->fd[s], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close(pr->fd[s]);
        for (chunk *c = pr->q[s].head, *nx; c; c = nx) {
            nx = c->next;
            free(c);
        }
    }
    memset(pr, 0, sizeof *pr);
    atomic_fetch_sub(&p->open, 1);
}

static void do_accept(tt_proxy *p) {
    int cfd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0) return;
    atomic_fetch_add(&p->accepted, 1);
    pair *pr = NULL;
    for (int i = 0; i < MAX_PAIRS && !pr; i++)
        if (!p->pairs[i].used) pr = &p->pairs[i];
    int ufd = pr ? socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)p->upstream);
    /* Loopback: a refused or accepted connect answers at once. */
    if (ufd < 0 || connect(ufd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (ufd >= 0) close(ufd);
        close(cfd);
        return;
    }
    set_nonblock(cfd);
    set_nonblock(ufd);
    memset(pr, 0, sizeof *pr);
    pr->used = true;
    pr->fd[0] = cfd;
    pr->fd[1] = ufd;
    atomic_fetch_add(&p->open, 1);
}

/* Read from the source of direction d. False: the pair is gone. */
static bool do_read(tt_proxy *p, pair *pr, int d) {
    chunk *c = malloc(sizeof *c + READ_CHUNK);
    if (!c) return true;
    ssize_t r = recv(pr->fd[d], c->data, READ_CHUNK, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
        free(c);
        return true;
    }
    if (r <= 0) {
        free(c);
        close_pair(p, pr, r < 0);
        return false;
    }
    c->len = (size_t)r;
    c->off = 0;
    c->next = NULL;
    c->due_ms = now_ms() + atomic_load(&p->delay_ms);
    bool expected = true;
    if (atomic_load(&p->mid_armed) && atomic_load(&p->mid_dir) == d &&
        atomic_compare_exchange_strong(&p->mid_armed, &expected, false)) {
        c->len = cut_point(&pr->q[d].fr, c->data, c->len, atomic_load(&p->mid_n));
        pr->close_after = true;
        pr->cut_dir = d;
    }
    framer_feed(&pr->q[d].fr, c->data, c->len);
    dirq *q = &pr->q[d];
    if (q->tail) q->tail->next = c;
    else q->head = c;
    q->tail = c;
    q->queued += c->len;
    return true;
}

/* Write what is due in direction d. False: the pair is gone. */
static bool do_write(tt_proxy *p, pair *pr, int d) {
    dirq *q = &pr->q[d];
    int dst = pr->fd[1 - d];
    bool split = atomic_load(&p->split);
    long long now = now_ms();
    int burst = SPLIT_BURST;
    while (q->head && q->head->due_ms <= now) {
        chunk *c = q->head;
        size_t n = split ? 1 : c->len - c->off;
        ssize_t w = send(dst, c->data + c->off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) return true;
        if (w < 0) {
            close_pair(p, pr, true);
            return false;
        }
        c->off += (size_t)w;
        q->queued -= (size_t)w;
        if (c->off == c->len) {
            q->head = c->next;
            if (!q->head) q->tail = NULL;
            free(c);
        }
        if (split && --burst == 0) return true;
    }
    if (!q->head && pr->close_after && pr->cut_dir == d) {
        close_pair(p, pr, false);
        atomic_fetch_add(&p->cuts, 1);
        atomic_fetch_add(&p->mid_done, 1);
        return false;
    }
    return true;
}

static int cut_all_now(tt_proxy *p) {
    int n = 0;
    for (int i = 0; i < MAX_PAIRS; i++) {
        if (!p->pairs[i].used) continue;
        close_pair(p, &p->pairs[i], true);
        n++;
    }
    atomic_fetch_add(&p->cuts, n);
    return n;
}

static void *run(void *arg) {
    tt_proxy *p = arg;
    struct pollfd pf[2 + 2 * MAX_PAIRS];
    while (!atomic_load(&p->stop)) {
        int req = atomic_load(&p->cut_req);
        if (req != atomic_load(&p->cut_done)) {
            atomic_store(&p->cut_result, cut_all_now(p));
            atomic_store(&p->cut_done, req);
        }
        bool stall = atomic_load(&p->stall);
        long long now = now_ms(), next_due = now + 50;
        pf[0] = (struct pollfd){ p->lfd, POLLIN, 0 };
        pf[1] = (struct pollfd){ p->wake[0], POLLIN, 0 };
        for (int i = 0; i < MAX_PAIRS; i++) {
            pair *pr = &p->pairs[i];
            for (int s = 0; s < 2; s++) pf[2 + 2 * i + s] = (struct pollfd){ -1, 0, 0 };
            if (!pr->used || stall) continue;
            for (int d = 0; d < 2; d++) {
                dirq *q = &pr->q[d];
                if (!pr->close_after && q->queued < DIR_MAX_QUEUED) pf[2 + 2 * i + d].events |= POLLIN;
                if (q->head) {
                    if (q->head->due_ms <= now) pf[2 + 2 * i + (1 - d)].events |= POLLOUT;
                    else if (q->head->due_ms < next_due) next_due = q->head->due_ms;
                }
            }
            for (int s = 0; s < 2; s++) pf[2 + 2 * i + s].fd = pr->fd[s];
        }
        int timeout = (int)(next_due - now);
        if (poll(pf, 2 + 2 * MAX_PAIRS, timeout < 0 ? 0 : timeout) < 0 && errno != EINTR) break;
        if (pf[1].revents & POLLIN) {
            char buf[64];
            while (read(p->wake[0], buf, sizeof buf) > 0) {}
        }
        if (stall) continue;
        for (int i = 0; i < MAX_PAIRS; i++) {
            pair *pr = &p->pairs[i];
            if (!pr->used) continue;
            bool alive = true;
            for (int d = 0; d < 2 && alive; d++) {
                short ev = pf[2 + 2 * i + d].revents;
                if ((pf[2 + 2 * i + d].events & POLLIN) && (ev & (POLLIN | POLLHUP | POLLERR)))
                    alive = do_read(p, pr, d);
                else if ((ev & (POLLHUP | POLLERR)) && !(ev & POLLIN)) {
                    close_pair(p, pr, true);
                    alive = false;
                }
            }
            for (int d = 0; d < 2 && alive; d++)
                if (pr->q[d].head) alive = do_write(p, pr, d);
        }
        if (pf[0].revents & POLLIN) do_accept(p);
    }
    cut_all_now(p);
    return NULL;
}

/* ---- API ------------------------------------------------------------------- */

int tt_proxy_start(tt_proxy **out, int upstream_port) {
    *out = NULL;
    tt_proxy *p = calloc(1, sizeof *p);
    if (!p) return -1;
    p->upstream = upstream_port;
    p->lfd = -1;
    p->wake[0] = p->wake[1] = -1;
    if (pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) != 0) goto fail;
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->lfd < 0) goto fail;
    int one = 1;
    (void)setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(p->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(p->lfd, 64) != 0 ||
        getsockname(p->lfd, (struct sockaddr *)&a, &al) != 0)
        goto fail;
    p->port = ntohs(a.sin_port);
    if (pthread_create(&p->thread, NULL, run, p) != 0) goto fail;
    *out = p;
    return 0;
fail:
    fprintf(stderr, "proxy: cannot start: %s\n", strerror(errno));
    if (p->lfd >= 0) close(p->lfd);
    if (p->wake[0] >= 0) close(p->wake[0]);
    if (p->wake[1] >= 0) close(p->wake[1]);
    free(p);
    return -1;
}

int tt_proxy_port(const tt_proxy *p) { return p->port; }

int tt_proxy_cut_all(tt_proxy *p) {
    int req = atomic_fetch_add(&p->cut_req, 1) + 1;
    poke(p);
    for (int i = 0; i < 2000 && atomic_load(&p->cut_done) - req < 0; i++) usleep(1000);
    return atomic_load(&p->cut_result);
}

void tt_proxy_stall(tt_proxy *p, bool on) {
    atomic_store(&p->stall, on);
    poke(p);
}

void tt_proxy_set_delay_ms(tt_proxy *p, uint32_t ms) {
    atomic_store(&p->delay_ms, ms);
    poke(p);
}

void tt_proxy_split_writes(tt_proxy *p, bool on) {
    atomic_store(&p->split, on);
    poke(p);
}

bool tt_proxy_cut_mid_packet(tt_proxy *p, tt_proxy_dir d, size_t n, int timeout_ms) {
    int before = atomic_load(&p->mid_done);
    atomic_store(&p->mid_n, n);
    atomic_store(&p->mid_dir, (int)d);
    atomic_store(&p->mid_armed, true);
    poke(p);
    for (int i = 0; i < timeout_ms; i++) {
        if (atomic_load(&p->mid_done) != before) return true;
        usleep(1000);
    }
    bool expected = true;
    if (atomic_compare_exchange_strong(&p->mid_armed, &expected, false)) return false;
    /* Taken just now: the close follows once its bytes are written. */
    for (int i = 0; i < 1000 && atomic_load(&p->mid_done) == before; i++) usleep(1000);
    return atomic_load(&p->mid_done) != before;
}

int tt_proxy_accepted(const tt_proxy *p) { return atomic_load(&((tt_proxy *)p)->accepted); }
int tt_proxy_open(const tt_proxy *p) { return atomic_load(&((tt_proxy *)p)->open); }
int tt_proxy_cuts(const tt_proxy *p) { return atomic_load(&((tt_proxy *)p)->cuts); }

void tt_proxy_free(tt_proxy *p) {
    if (!p) return;
    atomic_store(&p->stop, true);
    poke(p);
    pthread_join(p->thread, NULL);
    close(p->lfd);
    close(p->wake[0]);
    close(p->wake[1]);
    free(p);
}
