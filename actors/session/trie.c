/* Topic-filter trie. See trie.h for the matching rules and the threading note.
 *
 * Layout: a node per topic level. A node holds the entries of the filters that
 * end at it (a plain filter and any number of "$share/{group}/" variants of the
 * same filter), its `+` and `#` children, and a hash table of its other
 * children (open addressing, linear probing, backward-shift deletion, at most
 * 3/4 full). Each node keeps its level's hash, so growing never rehashes strings.
 *
 * A match walks the topic depth first with an explicit stack of (node, offset
 * of the next level). The trie is a tree, so each node is reached at most once
 * per topic, which is what makes every entry reported at most once: a node's
 * `#` child is reported from its parent, whether the topic ends there or not. */
#include "actors/session/trie.h"

#include <stdint.h>
#include <string.h>
#include <tether/err.h>

#include "actors/core/alloc.h"
#include "codecs/mqtt/mqtt_codec.h"

typedef struct trie_entry {
    struct trie_entry *next;
    void *value;
    size_t len;
    char filter[]; /* the full filter, "$share/g/" prefix included */
} trie_entry;

struct tti_trie_node {
    tti_trie_node *parent;
    tti_trie_node **slots; /* children other than + and #; NULL is an empty slot */
    tti_trie_node *plus, *hash;
    trie_entry *entries;
    uint32_t cap;          /* slots: 0 or a power of two */
    uint32_t nchild;       /* used slots */
    uint32_t hv;           /* hash of this node's level */
    size_t len;            /* level length */
    char level[];
};

#define SHARE_PREFIX     "$share/"
#define SHARE_PREFIX_LEN 7u
#define MIN_CAP          4u
#define STACK_LOCAL      64u

/* FNV-1a with a final avalanche, so the low bits used as an index are mixed. */
static uint32_t level_hash(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/* The filter without a "$share/{group}/" prefix. Assumes a valid filter. */
static void strip_share(const char *f, size_t len, const char **out, size_t *out_len) {
    if (len > SHARE_PREFIX_LEN && memcmp(f, SHARE_PREFIX, SHARE_PREFIX_LEN) == 0) {
        const char *slash = memchr(f + SHARE_PREFIX_LEN, '/', len - SHARE_PREFIX_LEN);
        if (slash) {
            *out = slash + 1;
            *out_len = len - (size_t)(slash + 1 - f);
            return;
        }
    }
    *out = f;
    *out_len = len;
}

/* ---- Child tables ------------------------------------------------------- */

static tti_trie_node *child_find(const tti_trie_node *n, const char *s, size_t len, uint32_t hv,
                                 uint32_t *slot) {
    if (n->nchild == 0) return NULL;
    uint32_t mask = n->cap - 1;
    for (uint32_t i = hv & mask;; i = (i + 1) & mask) {
        tti_trie_node *c = n->slots[i];
        if (!c) return NULL;
        if (c->hv == hv && c->len == len && memcmp(c->level, s, len) == 0) {
            if (slot) *slot = i;
            return c;
        }
    }
}

static void slot_put(tti_trie_node **slots, uint32_t cap, tti_trie_node *c) {
    uint32_t mask = cap - 1;
    uint32_t i = c->hv & mask;
    while (slots[i]) i = (i + 1) & mask;
    slots[i] = c;
}

/* Rebuild the table with `cap` slots (0 frees it). False on ENOMEM, table unchanged. */
static bool table_resize(tti_trie_node *n, uint32_t cap) {
    tti_trie_node **slots = NULL;
    if (cap) {
        slots = tti_calloc(cap, sizeof *slots);
        if (!slots) return false;
        for (uint32_t i = 0; i < n->cap; i++)
            if (n->slots[i]) slot_put(slots, cap, n->slots[i]);
    }
    tti_free(n->slots);
    n->slots = slots;
    n->cap = cap;
    return true;
}

static bool child_add(tti_trie_node *n, tti_trie_node *c) {
    if ((n->nchild + 1u) * 4u > n->cap * 3u) {
        if (n->cap > UINT32_MAX / 2u) return false;
        if (!table_resize(n, n->cap ? n->cap * 2u : MIN_CAP)) return false;
    }
    slot_put(n->slots, n->cap, c);
    n->nchild++;
    return true;
}

static void child_del(tti_trie_node *n, uint32_t i) {
    uint32_t mask = n->cap - 1;
    /* Backward shift: pull later members of the probe run into the hole. */
    for (uint32_t j = (i + 1) & mask; n->slots[j]; j = (j + 1) & mask) {
        uint32_t home = n->slots[j]->hv & mask;
        bool movable = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            n->slots[i] = n->slots[j];
            i = j;
        }
    }
    n->slots[i] = NULL;
    n->nchild--;
    if (n->nchild == 0)
        (void)table_resize(n, 0);
    else if (n->cap > MIN_CAP && n->nchild * 8u < n->cap)
        (void)table_resize(n, n->cap / 2u); /* on ENOMEM the bigger table stays */
}

static tti_trie_node *node_new(tti_trie_node *parent, const char *s, size_t len, uint32_t hv) {
    tti_trie_node *n = tti_malloc(sizeof *n + len);
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->parent = parent;
    n->hv = hv;
    n->len = len;
    if (len) memcpy(n->level, s, len);
    return n;
}

static bool node_empty(const tti_trie_node *n) {
    return !n->entries && !n->nchild && !n->plus && !n->hash;
}

/* Unlink `c` from its parent `p`. */
static void detach(tti_trie_node *p, tti_trie_node *c) {
    if (p->plus == c) {
        p->plus = NULL;
    } else if (p->hash == c) {
        p->hash = NULL;
    } else {
        uint32_t slot = 0;
        if (child_find(p, c->level, c->len, c->hv, &slot) == c) child_del(p, slot);
    }
}

/* Free `n` and its ancestors as long as they hold nothing. */
static void prune(tti_trie *t, tti_trie_node *n) {
    while (n && node_empty(n)) {
        tti_trie_node *p = n->parent;
        if (p)
            detach(p, n);
        else
            t->root = NULL;
        tti_free(n->slots);
        tti_free(n);
        n = p;
    }
}

/* The child of `n` for one filter level; created if `create`. NULL if absent or
 * out of memory (only when creating). */
static tti_trie_node *step(tti_trie_node *n, const char *s, size_t len, bool create) {
    tti_trie_node **wild = NULL;
    if (len == 1 && s[0] == '+') wild = &n->plus;
    else if (len == 1 && s[0] == '#') wild = &n->hash;
    if (wild) {
        if (!*wild && create) *wild = node_new(n, s, len, 0);
        return *wild;
    }
    uint32_t hv = level_hash(s, len);
    tti_trie_node *c = child_find(n, s, len, hv, NULL);
    if (c || !create) return c;
    c = node_new(n, s, len, hv);
    if (c && !child_add(n, c)) {
        tti_free(c);
        c = NULL;
    }
    return c;
}

/* The node a (stripped) filter ends at, or NULL. With `create`, missing nodes
 * are made; on ENOMEM the ones made are freed again and NULL returned. */
static tti_trie_node *walk(tti_trie *t, const char *f, size_t len, bool create) {
    tti_trie_node *n = t->root;
    if (!n) {
        if (!create || !(n = node_new(NULL, "", 0, 0))) return NULL;
        t->root = n;
    }
    size_t pos = 0;
    for (;;) {
        const char *slash = memchr(f + pos, '/', len - pos);
        size_t end = slash ? (size_t)(slash - f) : len;
        tti_trie_node *c = step(n, f + pos, end - pos, create);
        if (!c) {
            if (create) prune(t, n);
            return NULL;
        }
        n = c;
        if (!slash) return n;
        pos = end + 1;
    }
}

static trie_entry **entry_find(tti_trie_node *n, const char *f, size_t len) {
    trie_entry **pe = &n->entries;
    for (; *pe; pe = &(*pe)->next)
        if ((*pe)->len == len && memcmp((*pe)->filter, f, len) == 0) return pe;
    return NULL;
}

/* ---- API ----------------------------------------------------------------- */

void tti_trie_init(tti_trie *t) {
    t->root = NULL;
    t->count = 0;
}

size_t tti_trie_count(const tti_trie *t) { return t->count; }

int tti_trie_insert(tti_trie *t, const char *filter, size_t filter_len, void *value,
                    void **old) {
    if (old) *old = NULL;
    if (!filter || !tti_mqtt_filter_valid(filter, filter_len, TTI_MQTT_V5)) return TT_EINVAL;
    const char *f;
    size_t flen;
    strip_share(filter, filter_len, &f, &flen);
    tti_trie_node *n = walk(t, f, flen, true);
    if (!n) return TT_ENOMEM;
    trie_entry **pe = entry_find(n, filter, filter_len);
    if (pe) {
        if (old) *old = (*pe)->value;
        (*pe)->value = value;
        return 1;
    }
    trie_entry *e = tti_malloc(sizeof *e + filter_len);
    if (!e) {
        prune(t, n);
        return TT_ENOMEM;
    }
    e->value = value;
    e->len = filter_len;
    memcpy(e->filter, filter, filter_len);
    e->next = n->entries;
    n->entries = e;
    t->count++;
    return 0;
}

int tti_trie_remove(tti_trie *t, const char *filter, size_t filter_len, void **value) {
    if (value) *value = NULL;
    if (!filter || !tti_mqtt_filter_valid(filter, filter_len, TTI_MQTT_V5)) return TT_EINVAL;
    const char *f;
    size_t flen;
    strip_share(filter, filter_len, &f, &flen);
    tti_trie_node *n = walk(t, f, flen, false);
    trie_entry **pe = n ? entry_find(n, filter, filter_len) : NULL;
    if (!pe) return TT_ENOTFOUND;
    trie_entry *e = *pe;
    *pe = e->next;
    if (value) *value = e->value;
    tti_free(e);
    t->count--;
    prune(t, n);
    return TT_OK;
}

bool tti_trie_lookup(const tti_trie *t, const char *filter, size_t filter_len, void **value) {
    if (!filter || filter_len == 0 || !t->root) return false;
    const char *f;
    size_t flen;
    strip_share(filter, filter_len, &f, &flen);
    /* walk() does not modify the trie without `create`. */
    tti_trie_node *n = walk((tti_trie *)t, f, flen, false);
    trie_entry **pe = n ? entry_find(n, filter, filter_len) : NULL;
    if (!pe) return false;
    if (value) *value = (*pe)->value;
    return true;
}

static int report(const tti_trie_node *n, tti_trie_fn fn, void *arg) {
    int k = 0;
    for (const trie_entry *e = n->entries; e; e = e->next, k++)
        fn(e->filter, e->len, e->value, arg);
    return k;
}

typedef struct match_frame {
    const tti_trie_node *n;
    size_t pos; /* offset of the next topic level; topic_len + 1 once all are used */
} match_frame;

int tti_trie_match(const tti_trie *t, const char *topic, size_t topic_len, tti_trie_fn fn,
                   void *arg) {
    const tti_trie_node *root = t->root;
    if (!root || !topic) return 0;
    match_frame local[STACK_LOCAL];
    match_frame *stack = local;
    size_t cap = STACK_LOCAL, top = 0;
    int matches = 0;
    /* '$' topics: no '+' or '#' at the first level (MQTT-4.7.2-1). */
    bool dollar = topic_len > 0 && topic[0] == '$';

    stack[top++] = (match_frame){ root, 0 };
    while (top > 0) {
        match_frame fr = stack[--top];
        const tti_trie_node *n = fr.n;
        if (fr.pos > topic_len) {  /* every level consumed: filters ending here */
            matches += report(n, fn, arg);
            if (n->hash) matches += report(n->hash, fn, arg); /* "a/#" matches "a" */
            continue;
        }
        bool wild = !(dollar && n == root);
        if (wild && n->hash) matches += report(n->hash, fn, arg);
        if (top + 2 > cap) { /* each level pushes at most two frames */
            size_t ncap = cap * 2;
            match_frame *ns = tti_malloc(ncap * sizeof *ns);
            if (!ns) {
                if (stack != local) tti_free(stack);
                return TT_ENOMEM;
            }
            memcpy(ns, stack, top * sizeof *ns);
            if (stack != local) tti_free(stack);
            stack = ns;
            cap = ncap;
        }
        const char *lvl = topic + fr.pos;
        const char *slash = memchr(lvl, '/', topic_len - fr.pos);
        size_t len = slash ? (size_t)(slash - lvl) : topic_len - fr.pos;
        size_t next = fr.pos + len + 1;
        if (wild && n->plus) stack[top++] = (match_frame){ n->plus, next };
        const tti_trie_node *c = child_find(n, lvl, len, level_hash(lvl, len), NULL);
        if (c) stack[top++] = (match_frame){ c, next };
    }
    if (stack != local) tti_free(stack);
    return matches;
}

/* The child of `p` after `after` (the first one if `after` is NULL), in the
 * order: table slots, '+', '#'. */
static tti_trie_node *next_child(const tti_trie_node *p, const tti_trie_node *after) {
    uint32_t i = 0;
    if (after) {
        if (after == p->hash) return NULL;
        if (after == p->plus) return p->hash;
        uint32_t slot = 0;
        (void)child_find(p, after->level, after->len, after->hv, &slot);
        i = slot + 1;
    }
    for (; i < p->cap; i++)
        if (p->slots[i]) return p->slots[i];
    return p->plus ? p->plus : p->hash;
}

void tti_trie_foreach(const tti_trie *t, tti_trie_fn fn, void *arg) {
    const tti_trie_node *n = t->root;
    if (!n) return;
    (void)report(n, fn, arg);
    for (;;) {
        const tti_trie_node *c = next_child(n, NULL);
        /* No child: climb until an ancestor has a next sibling to offer. */
        while (!c && n != t->root) {
            c = next_child(n->parent, n);
            if (!c) n = n->parent;
        }
        if (!c) return;
        n = c;
        (void)report(n, fn, arg);
    }
}

void tti_trie_fini(tti_trie *t, void (*free_value)(void *value, void *arg), void *arg) {
    tti_trie_node *n = t->root;
    while (n) {
        tti_trie_node *c = next_child(n, NULL);
        if (c) {
            n = c;
            continue;
        }
        /* A leaf: free its entries, unlink it, go back to the parent. */
        for (trie_entry *e = n->entries, *next; e; e = next) {
            next = e->next;
            if (free_value) free_value(e->value, arg);
            tti_free(e);
        }
        tti_trie_node *p = n->parent;
        if (p) detach(p, n);
        tti_free(n->slots);
        tti_free(n);
        n = p;
    }
    t->root = NULL;
    t->count = 0;
}
