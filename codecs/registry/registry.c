/* The codec registry. Built-in codecs sit in a constant table; user codecs live in an
 * immutable snapshot that a registration replaces (under a mutex) and publishes with
 * one release store, so a lookup is a few loads and string compares with no lock. */
#include "codecs/registry/codec_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "actors/core/alloc.h"

#define TTI_CODEC_NAME_MAX 64

static const tt_codec *const g_builtins[] = {
    &tti_codec_json,
    &tti_codec_json_iotf,
#ifdef TTI_CODEC_HAVE_MSGPACK
    &tti_codec_msgpack,
#endif
    &tti_codec_raw,
    &tti_codec_text,
    &tti_codec_utf8,
#ifdef TTI_CODEC_HAVE_PROTOBUF
    &tti_codec_wirepas,
#endif
};

/* One snapshot of the user codecs. Replaced snapshots stay linked through `prev`
 * (readers may still hold them); they are small and registrations are rare. */
typedef struct tti_codec_table {
    struct tti_codec_table *prev;
    size_t                  n;
    tt_codec               *items[];
} tti_codec_table;

static _Atomic(tti_codec_table *) g_user;
static pthread_mutex_t g_register_lock = PTHREAD_MUTEX_INITIALIZER;

static const tt_codec *find_in(const char *name, const tti_codec_table *t) {
    for (size_t i = 0; i < sizeof g_builtins / sizeof g_builtins[0]; i++)
        if (strcmp(g_builtins[i]->name, name) == 0) return g_builtins[i];
    for (size_t i = 0; t && i < t->n; i++)
        if (strcmp(t->items[i]->name, name) == 0) return t->items[i];
    return NULL;
}

const tt_codec *tt_codec_find(const char *name) {
    if (!name) return NULL;
    return find_in(name, atomic_load_explicit(&g_user, memory_order_acquire));
}

tt_err tt_codec_lookup(const char *name, const tt_codec **out) {
    if (!out) return TT_EINVAL;
    *out = NULL;
    if (!name) return TT_EINVAL;
    *out = tt_codec_find(name);
    return *out ? TT_OK : TT_ENOTFOUND;
}

const char *tt_codec_name(const tt_codec *c) { return c ? c->name : NULL; }

static bool name_ok(const char *name) {
    size_t n = 0;
    for (; name[n]; n++) {
        unsigned char ch = (unsigned char)name[n];
        if (n >= TTI_CODEC_NAME_MAX || ch <= 0x20 || ch >= 0x7f || ch == '/' || ch == '+' ||
            ch == '#')
            return false;
    }
    return n > 0;
}

tt_err tt_codec_register(const char *name, const tt_codec_ops *ops, void *arg) {
    if (!name || !ops || !name_ok(name)) return TT_EINVAL;
    if (ops->size < offsetof(tt_codec_ops, decode) + sizeof ops->decode) return TT_EINVAL;
    if (!ops->encode && !ops->decode) return TT_EINVAL;

    size_t nlen = strlen(name);
    tt_codec *c = tti_calloc(1, sizeof *c + nlen + 1);
    if (!c) return TT_ENOMEM;
    char *copy = (char *)(c + 1);
    memcpy(copy, name, nlen + 1);
    c->name = copy;
    c->ops.size = (uint32_t)sizeof c->ops;
    c->ops.encode = ops->encode;
    c->ops.decode = ops->decode;
    c->arg = arg;

    tt_err rc = TT_OK;
    pthread_mutex_lock(&g_register_lock);
    tti_codec_table *old = atomic_load_explicit(&g_user, memory_order_relaxed);
    size_t n = old ? old->n : 0;
    if (find_in(name, old)) {
        rc = TT_EBUSY;
    } else {
        tti_codec_table *t = tti_malloc(sizeof *t + (n + 1) * sizeof t->items[0]);
        if (!t) {
            rc = TT_ENOMEM;
        } else {
            t->prev = old;
            t->n = n + 1;
            for (size_t i = 0; i < n; i++) t->items[i] = old->items[i];
            t->items[n] = c;
            atomic_store_explicit(&g_user, t, memory_order_release);
        }
    }
    pthread_mutex_unlock(&g_register_lock);
    if (rc != TT_OK) tti_free(c);
    return rc;
}

tt_err tt_codec_encode(const tt_codec *c, const json_t *value, tt_buf *out) {
    if (!out) return TT_EINVAL;
    out->len = 0;
    if (!c || !value) return TT_EINVAL;
    if (!c->ops.encode) return TT_ENOTSUP;
    tt_err rc = c->ops.encode(c->arg, value, out);
    if (rc != TT_OK) out->len = 0;
    return rc;
}

tt_err tt_codec_decode(const tt_codec *c, const void *data, size_t len, json_t **out,
                       tt_codec_error *err) {
    tt_codec_error scratch;
    if (!err) err = &scratch;
    err->offset = 0;
    err->reason[0] = '\0';
    if (!c || !out || (!data && len)) return tti_codec_fail(err, TT_EINVAL, 0, "bad argument");
    if (!c->ops.decode) return tti_codec_fail(err, TT_ENOTSUP, 0, "codec cannot decode");
    static const uint8_t empty[1];
    if (!data) data = empty;
    json_t *v = NULL;
    tt_err rc = c->ops.decode(c->arg, data, len, &v, err);
    if (rc == TT_OK && !v) rc = tti_codec_fail(err, TT_EINTERNAL, 0, "decoder gave no value");
    if (rc != TT_OK) {
        json_decref(v);
        if (!err->reason[0]) snprintf(err->reason, sizeof err->reason, "%s", tt_strerror(rc));
        return rc;
    }
    *out = v;
    return TT_OK;
}
