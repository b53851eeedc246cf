/* Firmware updates over MQTT (fact sheet §6f). One update at a time per
 * device; every step after the start runs on the client's strand: the
 * attribute answer, each chunk (raw bytes, copied with memcpy only), each
 * chunk's deadline, the checksum and the fw_state reports. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "actors/core/alloc.h"
#include "actors/core/log.h"
#include "platforms/thingsboard/tb_internal.h"

#define FW_DEFAULT_CHUNK 16384u

typedef struct tb_fw_image {
    char *title;
    char *version;
    size_t len;
    unsigned char data[];
} tb_fw_image;

struct tb_fw {
    tt_tb_device *d;
    tt_promise *p;
    char *cur_title, *cur_version;
    bool force;
    uint32_t chunk;
    int64_t rid;                      /* fw_request_id */
    uint32_t next;                    /* chunk index awaited */
    size_t size;                      /* fw_size; 0 = unknown */
    char *algo, *sum;
    tb_fw_image *img;
    size_t cap;
    size_t last_len;
    tt_promise *wait;                 /* the awaited chunk's deadline */
};

static const char *const g_state_names[] = { "IDLE", "DOWNLOADING", "DOWNLOADED", "VERIFIED",
                                             "UPDATING", "UPDATED", "FAILED" };

const char *tt_tb_fw_state_name(tt_tb_fw_state s) {
    return (unsigned)s < sizeof g_state_names / sizeof *g_state_names ? g_state_names[s] : "?";
}

tt_future *tt_tb_device_fw_report(tt_tb_device *d, tt_tb_fw_state state, const char *title,
                                  const char *version, const char *error) {
    if (!d || (unsigned)state > TT_TB_FW_FAILED) return tti_tb_failed(d, TT_EINVAL, "bad state");
    json_t *t = json_pack("{s:s}", "fw_state", tt_tb_fw_state_name(state));
    if (!t) return tti_tb_failed(d, TT_ENOMEM, NULL);
    if (title) json_object_set_new(t, "current_fw_title", json_string(title));
    if (version) json_object_set_new(t, "current_fw_version", json_string(version));
    if (error) json_object_set_new(t, "fw_error", json_string(error));
    tt_future *f = tt_tb_device_send_telemetry(d, t);
    json_decref(t);
    return f;
}

static void img_free(void *data) {
    if (!data) return;
    tb_fw_image *img = (tb_fw_image *)(void *)((char *)data - offsetof(tb_fw_image, data));
    tti_free(img->title);
    tti_free(img->version);
    tti_free(img);
}

static const tb_fw_image *img_of(const tt_future *f) {
    void *data = f ? tt_future_get_ptr(f) : NULL;
    return data ? (const tb_fw_image *)(const void *)((const char *)data - offsetof(tb_fw_image, data))
                : NULL;
}

const char *tt_tb_fw_title(const tt_future *f) {
    const tb_fw_image *i = img_of(f);
    return i ? i->title : NULL;
}

const char *tt_tb_fw_version(const tt_future *f) {
    const tb_fw_image *i = img_of(f);
    return i ? i->version : NULL;
}

static void report(tb_fw *fw, tt_tb_fw_state s, const char *error) {
    tt_future_free(tt_tb_device_fw_report(fw->d, s, NULL, NULL, error));
}

/* Let the next update start: before completing the caller's future, so a
 * caller that starts another one at once does not find this one busy. */
static void fw_detach(tb_fw *fw) {
    tt_tb_device *d = fw->d;
    pthread_mutex_lock(&d->lock);
    if (d->fw == fw) d->fw = NULL;
    pthread_mutex_unlock(&d->lock);
}

static void fw_release(tb_fw *fw) {
    tt_tb_device *d = fw->d;
    fw_detach(fw);
    if (fw->img) img_free(fw->img->data);
    tti_free(fw->cur_title);
    tti_free(fw->cur_version);
    tti_free(fw->algo);
    tti_free(fw->sum);
    tti_free(fw);
    tti_tb_unref(d);
}

static void fw_fail(tb_fw *fw, tt_err rc, bool report_failed, const char *why) {
    if (report_failed) report(fw, TT_TB_FW_FAILED, why);
    fw_detach(fw);
    (void)tt_promise_complete(fw->p, rc, 0, "%s", why);
    fw_release(fw);
}

static void chunk_done(tt_future *f, void *arg);

static void request_chunk(tb_fw *fw) {
    tt_tb_device *d = fw->d;
    char topic[96], body[16];
    snprintf(topic, sizeof topic, "v2/fw/request/%" PRId64 "/chunk/%" PRIu32, fw->rid, fw->next);
    snprintf(body, sizeof body, "%" PRIu32, fw->chunk);
    tt_future *w = tti_tb_future(d, d->req_timeout_ms);
    fw->wait = tti_future_promise(w);
    if (tt_future_then(w, chunk_done, fw) != TT_OK) {
        tt_future_free(w);
        fw->wait = NULL;
        fw_fail(fw, TT_ENOMEM, true, "out of memory");
        return;
    }
    /* the chunk request is not JSON: raw text through the plain publish path */
    tt_future_free(tti_tb_send(d, topic, body, strlen(body), false, 0));
}

static void finish(tb_fw *fw) {
    size_t len = fw->img ? fw->img->len : 0;
    if (fw->size && len != fw->size) {
        char why[96];
        snprintf(why, sizeof why, "size mismatch: got %zu bytes, expected %zu", len, fw->size);
        fw_fail(fw, TT_EPROTO, true, why);
        return;
    }
    report(fw, TT_TB_FW_DOWNLOADED, NULL);
    char hex[130];
    tt_err rc = tt_tb_checksum(fw->algo, fw->img ? fw->img->data : (const unsigned char *)"", len, hex,
                               sizeof hex);
    if (rc != TT_OK) {
        fw_fail(fw, TT_EPROTO, true, "unsupported checksum algorithm");
        return;
    }
    if (!fw->sum || strcasecmp(hex, fw->sum) != 0) {
        TTI_LOG(WARN, "tb", "firmware checksum mismatch (%s, %zu bytes)", fw->algo, len);
        fw_fail(fw, TT_EPROTO, true, "checksum mismatch");
        return;
    }
    report(fw, TT_TB_FW_VERIFIED, NULL);
    tb_fw_image *img = fw->img;
    if (!img && !(img = tti_calloc(1, sizeof *img))) {
        fw_fail(fw, TT_ENOMEM, true, "out of memory");
        return;
    }
    fw->img = NULL;
    fw_detach(fw);
    if (tti_promise_commit(fw->p)) {
        tt_promise_set_value(fw->p, img->data, img_free, (int64_t)img->len);
        (void)tt_promise_complete(fw->p, TT_OK, 0, NULL);
    } else {
        img_free(img->data);
        (void)tt_promise_complete(fw->p, TT_ECANCELED, 0, NULL);
    }
    fw_release(fw);
}

static void chunk_done(tt_future *f, void *arg) {
    tb_fw *fw = arg;
    tt_err rc = tt_future_result(f);
    if (fw->wait == tti_future_promise(f)) {  /* deadline or cancel won: release it */
        (void)tt_promise_complete(fw->wait, rc, 0, NULL);
        fw->wait = NULL;
    }
    tt_future_free(f);
    if (rc != TT_OK) {
        char why[80];
        snprintf(why, sizeof why, "chunk %" PRIu32 ": %s", fw->next, tt_strerror(rc));
        fw_fail(fw, rc, true, why);
        return;
    }
    if (tt_promise_abandoned(fw->p) || atomic_load(&fw->d->closing)) {
        fw_fail(fw, TT_ECANCELED, false, "cancelled");
        return;
    }
    fw->next++;
    size_t have = fw->img ? fw->img->len : 0;
    if ((fw->size && have >= fw->size) || fw->last_len == 0 || fw->last_len < fw->chunk ||
        (!fw->size && fw->chunk == 0))
        finish(fw);
    else
        request_chunk(fw);
}

void tti_tb_fw_chunk(tt_tb_device *d, const char *topic, size_t tlen, const void *data, size_t len) {
    /* v2/fw/response/<rid>/chunk/<n> */
    static const char pre[] = "v2/fw/response/";
    if (tlen <= sizeof pre - 1 || memcmp(topic, pre, sizeof pre - 1) != 0) return;
    const char *p = topic + sizeof pre - 1, *end = topic + tlen;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    if (!slash) return;
    int64_t rid, n;
    char head[40];
    snprintf(head, sizeof head, "%.*s", (int)(slash - p), p);
    if (!tti_tb_topic_id(head, strlen(head), "", &rid)) return;
    if (!tti_tb_topic_id(slash, (size_t)(end - slash), "/chunk/", &n)) return;
    pthread_mutex_lock(&d->lock);
    tb_fw *fw = d->fw;
    pthread_mutex_unlock(&d->lock);
    if (!fw || fw->rid != rid || (int64_t)fw->next != n || !fw->wait) return;
    size_t have = fw->img ? fw->img->len : 0;
    if (len > SIZE_MAX / 2 - have) return;
    if (have + len > fw->cap || !fw->img) {
        size_t cap = fw->cap ? fw->cap : 4096;
        while (cap < have + len) cap *= 2;
        tb_fw_image *img = tti_realloc(fw->img, sizeof *img + cap);
        if (!img) {
            (void)tt_promise_complete(fw->wait, TT_ENOMEM, 0, NULL);
            fw->wait = NULL;
            return;
        }
        if (!fw->img) memset(img, 0, sizeof *img);
        fw->img = img;
        fw->cap = cap;
    }
    if (len) memcpy(fw->img->data + have, data, len);
    fw->img->len = have + len;
    fw->last_len = len;
    tt_promise *w = fw->wait;
    fw->wait = NULL;
    (void)tt_promise_complete(w, TT_OK, 0, NULL);
}

void tti_tb_fw_fail_all(tt_tb_device *d) {
    pthread_mutex_lock(&d->lock);
    tb_fw *fw = d->fw;
    tt_promise *w = fw ? fw->wait : NULL;
    pthread_mutex_unlock(&d->lock);
    if (w) tt_future_cancel(tti_promise_future(w));
}

static const char *str_of(const json_t *o, const char *k) {
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void attrs_cb(tt_future *f, void *arg) {
    tb_fw *fw = arg;
    tt_err rc = tt_future_result(f);
    if (rc != TT_OK) {
        tt_future_free(f);
        fw_fail(fw, rc, false, "firmware attributes not received");
        return;
    }
    json_t *shared = json_object_get(tt_future_get_ptr(f), "shared");
    const char *title = str_of(shared, "fw_title"), *version = str_of(shared, "fw_version");
    const char *algo = str_of(shared, "fw_checksum_algorithm"), *sum = str_of(shared, "fw_checksum");
    json_t *size = json_object_get(shared, "fw_size");
    if (!title || !version) {
        tt_future_free(f);
        fw_fail(fw, TT_ENOTFOUND, false, "no firmware assigned (fw_title / fw_version missing)");
        return;
    }
    if (!fw->force && fw->cur_title && fw->cur_version && !strcmp(title, fw->cur_title) &&
        !strcmp(version, fw->cur_version)) {
        tt_future_free(f);
        fw_detach(fw);
        (void)tt_promise_complete(fw->p, TT_OK, 0, "already up to date");
        fw_release(fw);
        return;
    }
    fw->algo = tti_strdup(algo ? algo : "sha256");
    fw->sum = sum ? tti_strdup(sum) : NULL;
    fw->size = json_is_integer(size) && json_integer_value(size) > 0 ? (size_t)json_integer_value(size) : 0;
    size_t cap = fw->size ? fw->size : 4096;
    fw->img = tti_calloc(1, sizeof *fw->img + cap);
    char *t = tti_strdup(title), *v = tti_strdup(version);
    tt_future_free(f);
    if (!fw->algo || !fw->img || !t || !v) {
        tti_free(t);
        tti_free(v);
        fw_fail(fw, TT_ENOMEM, false, "out of memory");
        return;
    }
    fw->img->title = t;
    fw->img->version = v;
    fw->cap = cap;
    fw->rid = atomic_fetch_add(&fw->d->next_id, 1);
    report(fw, TT_TB_FW_DOWNLOADING, NULL);
    request_chunk(fw);
}

tt_future *tt_tb_device_fw_update(tt_tb_device *d, const tt_tb_fw_opts *o) {
    if (!d) return tti_tb_failed(NULL, TT_EINVAL, "no device");
    if (atomic_load(&d->closing)) return tti_tb_failed(d, TT_ECLOSED, "device closed");
    tb_fw *fw = tti_calloc(1, sizeof *fw);
    if (!fw) return tti_tb_failed(d, TT_ENOMEM, NULL);
    fw->d = d;
    fw->chunk = o && o->chunk_size ? o->chunk_size : FW_DEFAULT_CHUNK;
    fw->force = o && o->force;
    if (o && o->current_title) fw->cur_title = tti_strdup(o->current_title);
    if (o && o->current_version) fw->cur_version = tti_strdup(o->current_version);
    pthread_mutex_lock(&d->lock);
    bool busy = d->fw != NULL;
    if (!busy) d->fw = fw;
    pthread_mutex_unlock(&d->lock);
    if (busy) {
        tti_free(fw->cur_title);
        tti_free(fw->cur_version);
        tti_free(fw);
        return tti_tb_failed(d, TT_EBUSY, "a firmware update is already running");
    }
    tti_tb_ref(d);
    tt_future *out = tti_tb_future(d, 0);
    fw->p = tti_future_promise(out);
    tt_future *rq = tti_tb_request_attrs(d, NULL, "fw_checksum,fw_checksum_algorithm,fw_size,fw_title,fw_version", 0);
    if (tt_future_then(rq, attrs_cb, fw) != TT_OK) {
        tt_future_free(rq);
        fw_fail(fw, TT_ENOMEM, false, "out of memory");
    }
    return out;
}
