/* Topic-filter trie: which subscriptions match an incoming PUBLISH topic.
 *
 * One node per topic level. Children are found through a small open-addressing
 * hash table of the level string; the `+` and `#` children sit in their own
 * fields. Matching a topic walks only the branches the topic can reach, so a
 * client with 10 000 filters pays per message for the filters that match (and
 * the path to them), not for a scan of all of them.
 *
 * Rules (MQTT 5.0 section 4.7, 3.1.1 section 4.7):
 *   - levels are split on '/'; empty levels ("a//b", a leading '/') are levels;
 *   - `+` matches exactly one level (an empty one too), `#` the rest, including
 *     the parent level itself ("a/#" matches "a");
 *   - a topic starting with '$' is not matched by a filter whose first level is
 *     `+` or `#`;
 *   - "$share/{group}/{filter}" is stored under {filter}, so it matches as
 *     {filter}, but it is a separate entry from {filter} itself and from the
 *     same filter in another group. Entries are keyed by the full string.
 * Each matching entry is reported once per topic.
 *
 * Memory: nodes come from tti_malloc and are freed when their last filter goes.
 * The trie copies filter strings; values are the caller's.
 *
 * Thread: none of this is thread-safe. A trie belongs to one actor (the MQTT
 * session) and is only touched from that actor's loop thread. Callbacks must
 * not insert into or remove from the trie they are called from. */
#ifndef TTI_SESSION_TRIE_H
#define TTI_SESSION_TRIE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tti_trie_node tti_trie_node;

/* Caller storage: tti_trie_init / tti_trie_fini. */
typedef struct tti_trie {
    tti_trie_node *root;
    size_t count; /* entries (filters) stored */
} tti_trie;

/* Called once per filter: the full filter as inserted (with any "$share/g/"
 * prefix; not NUL-terminated), and its value. */
typedef void (*tti_trie_fn)(const char *filter, size_t filter_len, void *value, void *arg);

/* An empty trie. Allocates nothing. */
void tti_trie_init(tti_trie *t);

/* Free every node and filter copy. If `free_value` is not NULL it is called
 * once per stored value first. The trie is empty (and reusable) afterwards. */
void tti_trie_fini(tti_trie *t, void (*free_value)(void *value, void *arg), void *arg);

/* Store `value` under `filter` (validated as an MQTT 5 topic filter, so
 * "$share/g/f" is a shared subscription).
 * Returns 0 if the filter is new, 1 if it was present: its value is replaced
 * and the previous one stored in *old (if `old` is not NULL; NULL for new).
 * Errors: TT_EINVAL (invalid filter), TT_ENOMEM (the trie is unchanged). */
int tti_trie_insert(tti_trie *t, const char *filter, size_t filter_len, void *value,
                    void **old);

/* Remove `filter` (exactly as inserted). Its value goes to *value if not NULL.
 * Nodes left without filters are freed.
 * Errors: TT_ENOTFOUND (not stored), TT_EINVAL (not a valid filter). */
int tti_trie_remove(tti_trie *t, const char *filter, size_t filter_len, void **value);

/* Exact lookup of a filter (no wildcard matching). True and *value set if stored. */
bool tti_trie_lookup(const tti_trie *t, const char *filter, size_t filter_len, void **value);

/* Number of filters stored. */
size_t tti_trie_count(const tti_trie *t);

/* Call `fn` once per stored filter matching `topic` (a PUBLISH topic name; the
 * caller has validated it. '+' and '#' in it are plain characters). Order is
 * unspecified. Returns the number of matches, or TT_ENOMEM if a topic has more
 * levels than the walk's stack holds and growing it failed (the callbacks made
 * so far stand). Allocates only for topics of more than about 60 levels. */
int tti_trie_match(const tti_trie *t, const char *topic, size_t topic_len, tti_trie_fn fn,
                   void *arg);

/* Call `fn` once per stored filter (e.g. to subscribe again after a reconnect).
 * Order is unspecified. No allocation, no recursion. */
void tti_trie_foreach(const tti_trie *t, tti_trie_fn fn, void *arg);

#endif /* TTI_SESSION_TRIE_H */
