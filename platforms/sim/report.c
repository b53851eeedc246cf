/* Simulator reports (include/tether/sim.h): the counters, two histograms and
 * a per-second timeline; JSON both ways, merging, and the summary figures.
 * The JSON keeps raw counters and histogram buckets, so merged reports give
 * exact totals and true percentiles of the union; derived figures (rates,
 * percentiles) are written for readers and recomputed on every write. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/sim.h>

#include "actors/core/alloc.h"
#include "platforms/sim/sim_internal.h"

#define REPORT_FORMAT "tether-sim-report"
#define REPORT_VERSION 1

tt_err tti_sim_report_alloc(tt_sim_report **out) {
    tt_sim_report *r = tti_calloc(1, sizeof *r);
    *out = NULL;
    if (!r) return TT_ENOMEM;
    if (tt_hist_new(TTI_SIM_HIST_MAX_US, &r->connect_us) != TT_OK ||
        tt_hist_new(TTI_SIM_HIST_MAX_US, &r->latency_us) != TT_OK) {
        tt_sim_report_free(r);
        return TT_ENOMEM;
    }
    r->processes = 1;
    *out = r;
    return TT_OK;
}

void tt_sim_report_free(tt_sim_report *r) {
    if (!r) return;
    tt_hist_free(r->connect_us);
    tt_hist_free(r->latency_us);
    tti_free(r->t_sent);
    tti_free(r->t_received);
    tti_free(r->t_connected);
    tti_free(r);
}

static tt_err grow(uint64_t **a, size_t n) {
    uint64_t *p = tti_realloc(*a, n * sizeof *p);
    if (!p) return TT_ENOMEM;
    *a = p;
    return TT_OK;
}

static tt_err reserve(tt_sim_report *r, size_t n) {
    if (n <= r->steps_cap) return TT_OK;
    size_t cap = r->steps_cap < 8 ? 8 : r->steps_cap;
    while (cap < n) cap *= 2;
    if (grow(&r->t_sent, cap) || grow(&r->t_received, cap) || grow(&r->t_connected, cap)) return TT_ENOMEM;
    r->steps_cap = cap;
    return TT_OK;
}

/* Make the timeline `n` steps long: counters carry their last value on,
 * connections (a level, not a total) are zero where a run had ended. */
static tt_err steps_resize(tt_sim_report *r, size_t n) {
    if (n <= r->nsteps) return TT_OK;
    if (reserve(r, n) != TT_OK) return TT_ENOMEM;
    for (size_t i = r->nsteps; i < n; i++) {
        r->t_sent[i] = r->nsteps ? r->t_sent[r->nsteps - 1] : 0;
        r->t_received[i] = r->nsteps ? r->t_received[r->nsteps - 1] : 0;
        r->t_connected[i] = 0;
    }
    r->nsteps = n;
    return TT_OK;
}

tt_err tti_sim_report_step(tt_sim_report *r, uint64_t sent, uint64_t received, uint64_t connected) {
    size_t i = r->nsteps;
    if (reserve(r, i + 1) != TT_OK) return TT_ENOMEM;
    r->t_sent[i] = sent;
    r->t_received[i] = received;
    r->t_connected[i] = connected;
    r->nsteps = i + 1;
    return TT_OK;
}

void tti_sim_report_add_error(tt_sim_report *r, const char *kind, uint64_t n) {
    for (size_t i = 0; i < r->nerrors; i++)
        if (!strcmp(r->errors[i].kind, kind)) {
            r->errors[i].count += n;
            return;
        }
    if (r->nerrors == TTI_SIM_MAX_ERR_KINDS) return;
    snprintf(r->errors[r->nerrors].kind, sizeof r->errors[0].kind, "%s", kind);
    r->errors[r->nerrors++].count = n;
}

/* ---- summary -------------------------------------------------------------- */

tt_err tt_sim_report_summary(const tt_sim_report *r, tt_sim_summary *s) {
    if (!r || !s || s->size < sizeof *s) return TT_EINVAL;
    memset(s, 0, sizeof *s);
    s->size = sizeof *s;
    s->processes = r->processes;
    s->target = r->target;
    s->connected = r->connected;
    s->connect_failed = r->connect_failed;
    s->connect_s = r->connect_s;
    s->connects_per_s = r->connect_s > 0 ? (double)r->connected / r->connect_s : 0;
    s->connect_p50_us = tt_hist_percentile(r->connect_us, 50);
    s->connect_p99_us = tt_hist_percentile(r->connect_us, 99);
    s->connect_max_us = tt_hist_max(r->connect_us);
    s->sent = r->sent;
    s->publish_failed = r->publish_failed;
    s->records_sent = r->records_sent;
    s->received = r->received;
    s->duplicates = r->duplicates;
    s->out_of_order = r->out_of_order;
    s->lost = r->lost;
    s->duration_s = r->duration_s;
    s->out_per_s = r->duration_s > 0 ? (double)r->sent / r->duration_s : 0;
    s->in_per_s = r->duration_s > 0 ? (double)r->received / r->duration_s : 0;
    s->latency_count = tt_hist_count(r->latency_us);
    s->p50_us = tt_hist_percentile(r->latency_us, 50);
    s->p90_us = tt_hist_percentile(r->latency_us, 90);
    s->p99_us = tt_hist_percentile(r->latency_us, 99);
    s->p999_us = tt_hist_percentile(r->latency_us, 99.9);
    s->max_us = tt_hist_max(r->latency_us);
    s->mean_us = tt_hist_mean(r->latency_us);
    for (size_t i = 0; i < r->nerrors; i++) s->errors += r->errors[i].count;
    return TT_OK;
}

bool tt_sim_report_error(const tt_sim_report *r, size_t i, const char **kind, uint64_t *count) {
    if (!r || i >= r->nerrors) return false;
    if (kind) *kind = r->errors[i].kind;
    if (count) *count = r->errors[i].count;
    return true;
}

/* ---- merge ---------------------------------------------------------------- */

tt_err tt_sim_report_merge(tt_sim_report *dst, const tt_sim_report *src) {
    if (!dst || !src || dst == src) return TT_EINVAL;
    size_t sn = src->nsteps;
    if (steps_resize(dst, sn) != TT_OK) return TT_ENOMEM;
    for (size_t i = 0; sn && i < dst->nsteps; i++) {
        size_t k = i < sn ? i : sn - 1;        /* src's totals stay at their last value */
        dst->t_sent[i] += src->t_sent[k];
        dst->t_received[i] += src->t_received[k];
        if (i < sn) dst->t_connected[i] += src->t_connected[i];
    }
    if (strcmp(dst->profile, src->profile) != 0 && src->profile[0]) {
        if (!dst->profile[0]) snprintf(dst->profile, sizeof dst->profile, "%s", src->profile);
        else snprintf(dst->profile, sizeof dst->profile, "mixed");
    }
    dst->processes += src->processes;
    if (src->id_offset < dst->id_offset) dst->id_offset = src->id_offset;
    dst->target += src->target;
    dst->connected += src->connected;
    dst->connect_failed += src->connect_failed;
    if (src->connect_s > dst->connect_s) dst->connect_s = src->connect_s;
    dst->sent += src->sent;
    dst->publish_failed += src->publish_failed;
    dst->records_sent += src->records_sent;
    dst->received += src->received;
    dst->duplicates += src->duplicates;
    dst->out_of_order += src->out_of_order;
    dst->lost += src->lost;
    if (src->duration_s > dst->duration_s) dst->duration_s = src->duration_s;
    if (src->started_ms && (!dst->started_ms || src->started_ms < dst->started_ms))
        dst->started_ms = src->started_ms;
    if (src->qos > dst->qos) dst->qos = src->qos;
    if (src->payload_size > dst->payload_size) dst->payload_size = src->payload_size;
    if (src->rate > dst->rate) dst->rate = src->rate;
    tt_hist_merge(dst->connect_us, src->connect_us);
    tt_hist_merge(dst->latency_us, src->latency_us);
    for (size_t i = 0; i < src->nerrors; i++)
        tti_sim_report_add_error(dst, src->errors[i].kind, src->errors[i].count);
    return TT_OK;
}

/* ---- JSON ----------------------------------------------------------------- */

static json_t *u64s(const uint64_t *a, size_t n) {
    json_t *j = json_array();
    for (size_t i = 0; j && i < n; i++)
        if (json_array_append_new(j, json_integer((json_int_t)a[i])) != 0) {
            json_decref(j);
            return NULL;
        }
    return j;
}

static json_t *pcts(const tt_hist *h) {
    json_t *hj = tti_hist_to_json(h);
    if (!hj) return NULL;
    json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:o}",
                          "count", (json_int_t)tt_hist_count(h),
                          "min", (json_int_t)tt_hist_min(h),
                          "p50", (json_int_t)tt_hist_percentile(h, 50),
                          "p90", (json_int_t)tt_hist_percentile(h, 90),
                          "p99", (json_int_t)tt_hist_percentile(h, 99),
                          "p99_9", (json_int_t)tt_hist_percentile(h, 99.9),
                          "max", (json_int_t)tt_hist_max(h),
                          "mean", tt_hist_mean(h),
                          "hist", hj);
    return o;
}

char *tt_sim_report_json(const tt_sim_report *r) {
    if (!r) return NULL;
    tt_sim_summary s = TT_OPTS_INIT(tt_sim_summary);
    (void)tt_sim_report_summary(r, &s);
    json_t *errors = json_object();
    for (size_t i = 0; errors && i < r->nerrors; i++)
        (void)json_object_set_new(errors, r->errors[i].kind, json_integer((json_int_t)r->errors[i].count));
    json_t *root = json_pack(
        "{s:s,s:i,s:s,s:I,s:I,s:I,s:i,s:I,s:f,"
        "s:{s:I,s:I,s:I,s:f,s:f,s:o},"
        "s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:f},"
        "s:o,s:o,s:{s:i,s:o,s:o,s:o}}",
        "format", REPORT_FORMAT, "version", REPORT_VERSION, "profile", r->profile,
        "processes", (json_int_t)r->processes, "id_offset", (json_int_t)r->id_offset,
        "started_ms", (json_int_t)r->started_ms, "qos", (int)r->qos,
        "payload_bytes", (json_int_t)r->payload_size, "rate_per_device", r->rate,
        "connections", "target", (json_int_t)r->target, "connected", (json_int_t)r->connected,
        "failed", (json_int_t)r->connect_failed, "connect_s", r->connect_s, "per_s", s.connects_per_s,
        "latency_us", pcts(r->connect_us),
        "messages", "sent", (json_int_t)r->sent, "failed", (json_int_t)r->publish_failed,
        "records_sent", (json_int_t)r->records_sent, "received", (json_int_t)r->received,
        "lost", (json_int_t)r->lost, "duplicates", (json_int_t)r->duplicates,
        "out_of_order", (json_int_t)r->out_of_order, "duration_s", r->duration_s,
        "out_per_s", s.out_per_s, "in_per_s", s.in_per_s,
        "latency_us", pcts(r->latency_us),
        "errors", errors,
        "timeline", "step_s", 1, "sent", u64s(r->t_sent, r->nsteps),
        "received", u64s(r->t_received, r->nsteps), "connected", u64s(r->t_connected, r->nsteps));
    if (!root) return NULL;
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text) return NULL;
    /* jansson allocates with its own hooks: hand back a malloc'd copy. */
    char *out = strdup(text);
    void (*jfree)(void *) = NULL;
    json_get_alloc_funcs(NULL, &jfree);
    if (jfree) jfree(text);
    else free(text);
    return out;
}

static uint64_t ju(const json_t *o, const char *k) {
    json_t *j = json_object_get(o, k);
    return json_is_integer(j) && json_integer_value(j) > 0 ? (uint64_t)json_integer_value(j) : 0;
}

static double jd(const json_t *o, const char *k) {
    json_t *j = json_object_get(o, k);
    return json_is_number(j) ? json_number_value(j) : 0;
}

static tt_err read_steps(const json_t *tl, const char *k, uint64_t *dst, size_t n) {
    json_t *a = json_object_get(tl, k);
    if (!json_is_array(a) || json_array_size(a) != n) return TT_EINVAL;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0) return TT_EINVAL;
        dst[i] = (uint64_t)json_integer_value(v);
    }
    return TT_OK;
}

tt_err tt_sim_report_parse(const char *text, size_t len, tt_sim_report **out) {
    if (!out) return TT_EINVAL;
    *out = NULL;
    if (!text) return TT_EINVAL;
    json_t *root = json_loadb(text, len, 0, NULL);
    json_t *fmt = json_object_get(root, "format");
    json_t *conn = json_object_get(root, "connections"), *msgs = json_object_get(root, "messages");
    json_t *lat = json_object_get(root, "latency_us"), *clat = json_object_get(conn, "latency_us");
    json_t *tl = json_object_get(root, "timeline");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), REPORT_FORMAT) != 0 ||
        !json_is_object(conn) || !json_is_object(msgs) || !json_is_object(tl)) {
        json_decref(root);
        return TT_EINVAL;
    }
    tt_sim_report *r = tti_calloc(1, sizeof *r);
    if (!r) {
        json_decref(root);
        return TT_ENOMEM;
    }
    tt_err rc = tti_hist_from_json(json_object_get(lat, "hist"), &r->latency_us);
    if (rc == TT_OK) rc = tti_hist_from_json(json_object_get(clat, "hist"), &r->connect_us);
    json_t *p = json_object_get(root, "profile");
    snprintf(r->profile, sizeof r->profile, "%s", json_is_string(p) ? json_string_value(p) : "");
    r->processes = (uint32_t)ju(root, "processes");
    if (r->processes == 0) r->processes = 1;
    r->id_offset = ju(root, "id_offset");
    r->started_ms = (int64_t)ju(root, "started_ms");
    r->qos = (uint32_t)ju(root, "qos");
    r->payload_size = ju(root, "payload_bytes");
    r->rate = jd(root, "rate_per_device");
    r->target = ju(conn, "target");
    r->connected = ju(conn, "connected");
    r->connect_failed = ju(conn, "failed");
    r->connect_s = jd(conn, "connect_s");
    r->sent = ju(msgs, "sent");
    r->publish_failed = ju(msgs, "failed");
    r->records_sent = ju(msgs, "records_sent");
    r->received = ju(msgs, "received");
    r->lost = ju(msgs, "lost");
    r->duplicates = ju(msgs, "duplicates");
    r->out_of_order = ju(msgs, "out_of_order");
    r->duration_s = jd(msgs, "duration_s");
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(root, "errors"), k, v)
        if (json_is_integer(v) && json_integer_value(v) > 0)
            tti_sim_report_add_error(r, k, (uint64_t)json_integer_value(v));
    json_t *ts = json_object_get(tl, "sent");
    size_t n = json_is_array(ts) ? json_array_size(ts) : 0;
    if (rc == TT_OK && !json_is_array(ts)) rc = TT_EINVAL;
    if (rc == TT_OK && n) rc = steps_resize(r, n);
    if (rc == TT_OK && n)
        rc = read_steps(tl, "sent", r->t_sent, n) || read_steps(tl, "received", r->t_received, n) ||
             read_steps(tl, "connected", r->t_connected, n) ? TT_EINVAL : TT_OK;
    json_decref(root);
    if (rc != TT_OK) {
        tt_sim_report_free(r);
        return rc;
    }
    *out = r;
    return TT_OK;
}

tt_err tt_sim_report_write_json(const tt_sim_report *r, const char *path) {
    if (!r || !path) return TT_EINVAL;
    char *text = tt_sim_report_json(r);
    if (!text) return TT_ENOMEM;
    FILE *f = fopen(path, "w");
    bool ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0) ok = false;
    free(text);
    return ok ? TT_OK : TT_EINTERNAL;
}
