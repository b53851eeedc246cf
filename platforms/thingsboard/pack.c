/* Splitting telemetry and attributes into messages no larger than the
 * server's maximum payload: whole entries are batched greedily; an entry too
 * large alone is split by key (keeping its "ts"). Sizes are computed from the
 * compact encoding of each piece, so each payload is encoded once. */
#include <stdlib.h>
#include <string.h>

#include "actors/core/alloc.h"
#include "platforms/thingsboard/tb_internal.h"

typedef struct out_list {
    char **s;
    uint32_t *pts;
    size_t n, cap;
} out_list;

static bool out_add(out_list *o, char *s, uint32_t pts) {
    if (!s) return false;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 8;
        char **ns = tti_realloc(o->s, cap * sizeof *ns);
        if (!ns) return free(s), false;
        o->s = ns;
        uint32_t *np = tti_realloc(o->pts, cap * sizeof *np);
        if (!np) return free(s), false;
        o->pts = np;
        o->cap = cap;
    }
    o->s[o->n] = s;
    o->pts[o->n++] = pts;
    return true;
}

static size_t enc_len(const json_t *v) {
    char *s = tti_tb_dumps(v);
    if (!s) return SIZE_MAX;
    size_t n = strlen(s);
    free(s);
    return n;
}

/* The payload for `x` (an entry array, or for attributes an object). */
static char *encode(json_t *x, const char *wrap) {
    if (!wrap) return tti_tb_dumps(x);
    json_t *w = json_object();
    if (!w) return NULL;
    json_object_set(w, wrap, x);
    char *s = tti_tb_dumps(w);
    json_decref(w);
    return s;
}

static uint32_t points_of(const json_t *entry, bool attrs) {
    const json_t *vals = attrs ? NULL : json_object_get(entry, "values");
    if (json_is_object(vals) && json_object_get(entry, "ts")) return (uint32_t)json_object_size(vals);
    return (uint32_t)json_object_size(entry);
}

/* Split one object entry by key into entries that each fit (`fixed` = the
 * bytes around the key/value list in a final payload). Appends to `acc`. */
static tt_err split_entry(json_t *entry, bool attrs, size_t fixed, size_t max, json_t *acc) {
    json_t *vals = entry, *shell = NULL;
    if (!attrs && json_is_object(json_object_get(entry, "values")) && json_object_get(entry, "ts")) {
        vals = json_object_get(entry, "values");
        shell = json_deep_copy(entry);
        if (!shell) return TT_ENOMEM;
        json_object_set_new(shell, "values", json_object());
        fixed += enc_len(shell) - 2;  /* the shell minus its empty "{}" */
    }
    json_t *cur = json_object();
    size_t cur_len = 2;               /* "{}" */
    const char *k;
    json_t *v;
    tt_err rc = TT_OK;
    json_object_foreach(vals, k, v) {
        json_t *one = json_object();
        json_object_set(one, k, v);
        size_t item = enc_len(one) - 2;
        json_decref(one);
        size_t add = item + (json_object_size(cur) ? 1 : 0);
        if (fixed + 2 + item > max) {
            rc = TT_EINVAL;           /* one value alone is too large */
            break;
        }
        if (json_object_size(cur) && fixed + cur_len + add > max) {
            json_t *e = shell ? json_deep_copy(shell) : cur;
            if (shell) json_object_set(e, "values", cur);
            json_array_append_new(acc, e);
            if (shell) json_decref(cur);
            cur = json_object();
            cur_len = 2;
            add = item;
        }
        json_object_set(cur, k, v);
        cur_len += add;
    }
    if (rc == TT_OK && json_object_size(cur)) {
        json_t *e = shell ? json_deep_copy(shell) : json_incref(cur);
        if (shell) json_object_set(e, "values", cur);
        json_array_append_new(acc, e);
    }
    json_decref(cur);
    json_decref(shell);
    return rc;
}

tt_err tti_tb_pack(const json_t *data, bool attrs, const char *wrap, size_t max, char ***out,
                   uint32_t **points, size_t *n) {
    out_list o = { 0 };
    *out = NULL;
    *points = NULL;
    *n = 0;
    if (!(json_is_object(data) || (!attrs && json_is_array(data)))) return TT_EINVAL;
    json_t *entries;                  /* telemetry: the entries; attributes: [the object] */
    if (json_is_array(data)) {
        entries = json_deep_copy(data);
    } else {
        entries = json_array();
        if (entries) json_array_append(entries, (json_t *)data);
    }
    if (!entries) return TT_ENOMEM;
    size_t i;
    json_t *e;
    uint32_t total = 0;
    json_array_foreach(entries, i, e) {
        if (!json_is_object(e)) {
            json_decref(entries);
            return TT_EINVAL;
        }
        total += points_of(e, attrs);
    }
    /* Everything in one message? Objects go as they are, gateway telemetry as a list. */
    json_t *whole = (json_is_object(data) && !(wrap && !attrs)) ? (json_t *)data : entries;
    char *s = encode(whole, wrap);
    if (!s) {
        json_decref(entries);
        return TT_ENOMEM;
    }
    if (strlen(s) <= max) {
        json_decref(entries);
        if (!out_add(&o, s, total)) return TT_ENOMEM;
        *out = o.s;
        *points = o.pts;
        *n = o.n;
        return TT_OK;
    }
    free(s);
    /* Bytes around the list in a payload: the wrapper, and for telemetry "[" "]". */
    json_t *empty = attrs ? json_object() : json_array();
    size_t wrap_len = enc_len(empty) ;
    char *ws = encode(empty, wrap);
    size_t around = ws ? strlen(ws) - wrap_len : 0;
    free(ws);
    json_decref(empty);
    tt_err rc = TT_OK;
    if (attrs) {
        json_t *acc = json_array();
        rc = split_entry(json_array_get(entries, 0), true, around, max, acc);
        json_array_foreach(acc, i, e)
            if (rc == TT_OK && !out_add(&o, encode(e, wrap), points_of(e, true))) rc = TT_ENOMEM;
        json_decref(acc);
    } else {
        size_t arr = around + 2;      /* "[...]" */
        json_t *fit = json_array();   /* entries, each small enough alone */
        json_array_foreach(entries, i, e) {
            if (rc != TT_OK) break;
            size_t len = enc_len(e);
            if (arr + len <= max) json_array_append(fit, e);
            else rc = split_entry(e, false, arr, max, fit);
        }
        json_t *batch = json_array();
        size_t blen = arr;
        uint32_t bpts = 0;
        json_array_foreach(fit, i, e) {
            if (rc != TT_OK) break;
            size_t len = enc_len(e), add = len + (json_array_size(batch) ? 1 : 0);
            if (json_array_size(batch) && blen + add > max) {
                if (!out_add(&o, encode(batch, wrap), bpts)) rc = TT_ENOMEM;
                json_array_clear(batch);
                blen = arr;
                bpts = 0;
                add = len;
            }
            json_array_append(batch, e);
            blen += add;
            bpts += points_of(e, false);
        }
        if (rc == TT_OK && json_array_size(batch) && !out_add(&o, encode(batch, wrap), bpts)) rc = TT_ENOMEM;
        json_decref(batch);
        json_decref(fit);
    }
    json_decref(entries);
    if (rc != TT_OK) {
        for (i = 0; i < o.n; i++) free(o.s[i]);
        tti_free(o.s);
        tti_free(o.pts);
        return rc;
    }
    *out = o.s;
    *points = o.pts;
    *n = o.n;
    return TT_OK;
}
