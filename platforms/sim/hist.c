/* The high-dynamic-range histogram (include/tether/sim.h): log-linear
 * buckets. Values below 2^11 have a bucket each; above, every power of two
 * [2^k, 2^(k+1)) is cut into 1024 equal buckets of width 2^(k-10), so a
 * bucket is never wider than 1/1024 of the values in it (3 significant
 * digits). The index of a value is a count-leading-zeros and two shifts. */
#include <string.h>
#include <tether/sim.h>

#include "actors/core/alloc.h"
#include "platforms/sim/sim_internal.h"

#define H_LINEAR 2048u                 /* exact buckets */
#define H_HALF 1024u                   /* buckets per power of two above */
#define H_HALF_BITS 10

struct tt_hist {
    uint64_t highest;
    size_t n;                          /* buckets */
    uint64_t total;
    uint64_t min, max;
    double sum;
    uint64_t counts[];
};

static size_t h_index(uint64_t v) {
    if (v < H_LINEAR) return (size_t)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned e = msb - H_HALF_BITS;            /* >= 1 */
    return H_LINEAR + (size_t)(e - 1) * H_HALF + (size_t)((v >> e) - H_HALF);
}

static void h_bounds(size_t i, uint64_t *lo, uint64_t *hi) {
    if (i < H_LINEAR) {
        *lo = *hi = i;
        return;
    }
    size_t k = i - H_LINEAR;
    unsigned e = (unsigned)(k / H_HALF) + 1u;
    uint64_t base = (uint64_t)(k % H_HALF + H_HALF) << e;
    *lo = base;
    *hi = base + ((uint64_t)1 << e) - 1u;
}

tt_err tt_hist_new(uint64_t highest, tt_hist **out) {
    if (!out) return TT_EINVAL;
    *out = NULL;
    if (highest < H_LINEAR || highest > ((uint64_t)1 << 62)) return TT_EINVAL;
    size_t n = h_index(highest) + 1;
    tt_hist *h = tti_calloc(1, sizeof *h + n * sizeof(uint64_t));
    if (!h) return TT_ENOMEM;
    h->highest = highest;
    h->n = n;
    *out = h;
    return TT_OK;
}

void tt_hist_free(tt_hist *h) { tti_free(h); }

void tt_hist_record_n(tt_hist *h, uint64_t v, uint64_t n) {
    if (!h || n == 0) return;
    if (v > h->highest) v = h->highest;
    h->counts[h_index(v)] += n;
    if (h->total == 0 || v < h->min) h->min = v;
    if (v > h->max) h->max = v;
    h->total += n;
    h->sum += (double)v * (double)n;
}

void tt_hist_record(tt_hist *h, uint64_t v) { tt_hist_record_n(h, v, 1); }

void tt_hist_merge(tt_hist *dst, const tt_hist *src) {
    if (!dst || !src || src->total == 0) return;
    for (size_t i = 0; i < src->n; i++) {
        if (!src->counts[i]) continue;
        uint64_t lo, hi;
        h_bounds(i, &lo, &hi);
        size_t j = lo > dst->highest ? dst->n - 1 : h_index(lo);
        dst->counts[j] += src->counts[i];
    }
    uint64_t mn = src->min > dst->highest ? dst->highest : src->min;
    uint64_t mx = src->max > dst->highest ? dst->highest : src->max;
    if (dst->total == 0 || mn < dst->min) dst->min = mn;
    if (mx > dst->max) dst->max = mx;
    dst->total += src->total;
    dst->sum += src->sum;
}

void tt_hist_reset(tt_hist *h) {
    if (!h) return;
    memset(h->counts, 0, h->n * sizeof(uint64_t));
    h->total = h->min = h->max = 0;
    h->sum = 0;
}

uint64_t tt_hist_count(const tt_hist *h) { return h ? h->total : 0; }
uint64_t tt_hist_highest(const tt_hist *h) { return h ? h->highest : 0; }
uint64_t tt_hist_min(const tt_hist *h) { return h ? h->min : 0; }
uint64_t tt_hist_max(const tt_hist *h) { return h ? h->max : 0; }
double tt_hist_mean(const tt_hist *h) { return h && h->total ? h->sum / (double)h->total : 0.0; }

uint64_t tt_hist_percentile(const tt_hist *h, double pct) {
    if (!h || h->total == 0) return 0;
    if (!(pct >= 0)) pct = 0;                  /* NaN too */
    if (pct > 100) pct = 100;
    double r = tti_sim_ceil(pct / 100.0 * (double)h->total);
    uint64_t rank = r < 1 ? 1 : (uint64_t)r;
    if (rank > h->total) rank = h->total;
    uint64_t seen = 0;
    for (size_t i = 0; i < h->n; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t lo, hi;
            h_bounds(i, &lo, &hi);
            if (hi > h->max) hi = h->max;
            return hi < h->min ? h->min : hi;
        }
    }
    return h->max;
}

bool tt_hist_bucket(const tt_hist *h, size_t i, uint64_t *lo, uint64_t *hi, uint64_t *count) {
    if (!h || i >= h->n) return false;
    uint64_t l, u;
    h_bounds(i, &l, &u);
    if (lo) *lo = l;
    if (hi) *hi = u;
    if (count) *count = h->counts[i];
    return true;
}

/* ---- JSON: {"highest":H,"total":n,"min":a,"max":b,"sum":s,"buckets":[[i,c],...]} -- */

json_t *tti_hist_to_json(const tt_hist *h) {
    json_t *o = json_object(), *b = json_array();
    if (!o || !b) {
        json_decref(o);
        json_decref(b);
        return NULL;
    }
    for (size_t i = 0; i < h->n; i++)
        if (h->counts[i]) {
            json_t *pair = json_pack("[II]", (json_int_t)i, (json_int_t)h->counts[i]);
            if (!pair || json_array_append_new(b, pair) != 0) {
                json_decref(o);
                json_decref(b);
                return NULL;
            }
        }
    if (json_object_set_new(o, "highest", json_integer((json_int_t)h->highest)) ||
        json_object_set_new(o, "digits", json_integer(3)) ||
        json_object_set_new(o, "min", json_integer((json_int_t)h->min)) ||
        json_object_set_new(o, "max", json_integer((json_int_t)h->max)) ||
        json_object_set_new(o, "sum", json_real(h->sum)) ||
        json_object_set_new(o, "buckets", b)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

tt_err tti_hist_from_json(const json_t *j, tt_hist **out) {
    *out = NULL;
    json_t *b = json_object_get(j, "buckets");
    json_t *hi = json_object_get(j, "highest");
    if (!json_is_integer(hi) || !json_is_array(b)) return TT_EINVAL;
    json_int_t highest = json_integer_value(hi);
    if (highest < (json_int_t)H_LINEAR) return TT_EINVAL;
    tt_hist *h;
    tt_err rc = tt_hist_new((uint64_t)highest, &h);
    if (rc != TT_OK) return rc;
    size_t k;
    json_t *pair;
    json_array_foreach(b, k, pair) {
        json_t *ji = json_array_get(pair, 0), *jc = json_array_get(pair, 1);
        if (!json_is_integer(ji) || !json_is_integer(jc) || json_integer_value(ji) < 0 ||
            (size_t)json_integer_value(ji) >= h->n || json_integer_value(jc) < 0) {
            tt_hist_free(h);
            return TT_EINVAL;
        }
        uint64_t c = (uint64_t)json_integer_value(jc);
        h->counts[json_integer_value(ji)] += c;
        h->total += c;
    }
    json_t *mn = json_object_get(j, "min"), *mx = json_object_get(j, "max"), *s = json_object_get(j, "sum");
    h->min = json_is_integer(mn) && json_integer_value(mn) >= 0 ? (uint64_t)json_integer_value(mn) : 0;
    h->max = json_is_integer(mx) && json_integer_value(mx) >= 0 ? (uint64_t)json_integer_value(mx) : 0;
    h->sum = json_is_number(s) ? json_number_value(s) : 0;
    if (h->max > h->highest) h->max = h->highest;
    if (h->min > h->max) h->min = h->max;
    *out = h;
    return TT_OK;
}
