/* The report as one self-contained HTML page: a summary table and three
 * charts drawn as inline SVG (no script, no network): the end-to-end latency
 * by percentile, the latency distribution, and the rates and connections
 * over time. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/sim.h>
#include <time.h>

#include "actors/core/alloc.h"
#include "platforms/sim/sim_internal.h"

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->oom = true;
            return;
        }
        if (b->p && (size_t)w < b->cap - b->n) {
            b->n += (size_t)w;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 16384;
        while (cap < b->n + (size_t)w + 1) cap *= 2;
        char *q = tti_realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

/* Human text for microseconds. */
static const char *fmt_us(double us, char *buf, size_t cap) {
    if (us < 1000) snprintf(buf, cap, "%.0f µs", us);
    else if (us < 1e6) snprintf(buf, cap, "%.3g ms", us / 1000);
    else snprintf(buf, cap, "%.3g s", us / 1e6);
    return buf;
}

/* ---- charts ----------------------------------------------------------------- */

#define CW 760
#define CH 300
#define ML 70                           /* margins */
#define MR 60
#define MT 48
#define MB 45

typedef struct series {
    const char *name;
    const char *color;
    const double *x, *y;
    size_t n;
} series;

static void chart_begin(sbuf *b, const char *title) {
    put(b, "<figure><svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' viewBox='0 0 %d %d'>"
           "<rect width='100%%' height='100%%' fill='#fff'/>"
           "<text x='%d' y='18' font-size='14' font-weight='bold'>%s</text>",
        CW, CH, CW, CH, ML, title);
}

static double px(double x, double x0, double x1) { return ML + (x - x0) / (x1 - x0) * (CW - ML - MR); }
static double py(double y, double y0, double y1) { return CH - MB - (y - y0) / (y1 - y0) * (CH - MT - MB); }

static void axes(sbuf *b, const char *xlabel, const char *ylabel) {
    put(b, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#333'/>", ML, CH - MB, CW - MR, CH - MB);
    put(b, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#333'/>", ML, MT, ML, CH - MB);
    put(b, "<text x='%d' y='%d' font-size='12' text-anchor='middle'>%s</text>", (ML + CW - MR) / 2, CH - 8,
        xlabel);
    put(b, "<text x='14' y='%d' font-size='12' text-anchor='middle' transform='rotate(-90 14 %d)'>%s</text>",
        (MT + CH - MB) / 2, (MT + CH - MB) / 2, ylabel);
}

static void ytick(sbuf *b, double y, const char *label) {
    put(b, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#ddd'/>", ML, y, CW - MR, y);
    put(b, "<text x='%d' y='%.1f' font-size='11' text-anchor='end'>%s</text>", ML - 4, y + 4, label);
}

static void xtick(sbuf *b, double x, const char *label) {
    put(b, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#ddd'/>", x, MT, x, CH - MB);
    put(b, "<text x='%.1f' y='%d' font-size='11' text-anchor='middle'>%s</text>", x, CH - MB + 15, label);
}

static void polyline(sbuf *b, const series *s, double x0, double x1, double y0, double y1, int idx) {
    /* The second series is dashed: sent and received often lie on each other. */
    put(b, "<polyline fill='none' stroke='%s' stroke-width='2'%s points='", s->color,
        idx == 1 ? " stroke-dasharray='6 4'" : "");
    for (size_t i = 0; i < s->n; i++) put(b, "%.1f,%.1f ", px(s->x[i], x0, x1), py(s->y[i], y0, y1));
    put(b, "'/>");
    /* Legend in a row above the plot. */
    put(b, "<rect x='%d' y='%d' width='12' height='4' fill='%s'/>", ML + idx * 190, MT - 14, s->color);
    put(b, "<text x='%d' y='%d' font-size='12'>%s</text>", ML + 18 + idx * 190, MT - 8, s->name);
}

/* An axis label: whole numbers as such, small ones with decimals. */
static const char *num(double v, char *buf, size_t cap) {
    if (v >= 10 || v == 0) snprintf(buf, cap, "%.0f", v);
    else snprintf(buf, cap, "%.3g", v);
    return buf;
}

static double nice_ceil(double v) {
    if (v <= 0) return 1;
    double m = tti_sim_pow10(tti_sim_floor(tti_sim_log10(v)));
    for (int k = 1; k <= 10; k++)
        if (k * m >= v) return k * m;
    return 10 * m;
}

/* Latency by percentile: x = "nines" (log10 of 1/(1-p)), y = log10 latency. */
static void chart_percentiles(sbuf *b, const tt_hist *h) {
    chart_begin(b, "End-to-end latency by percentile");
    if (tt_hist_count(h) == 0) {
        put(b, "<text x='%d' y='%d'>no messages received</text></svg></figure>", ML, CH / 2);
        return;
    }
    enum { NP = 241 };
    double xs[NP], ys[NP];
    double ymin = 1e300, ymax = 0;
    for (int i = 0; i < NP; i++) {
        double nines = 5.0 * i / (NP - 1);       /* 0 .. 99.999 % */
        double p = 100.0 * (1 - tti_sim_pow10(-nines));
        double v = (double)tt_hist_percentile(h, p);
        xs[i] = nines;
        ys[i] = tti_sim_log10(v < 1 ? 1 : v);
        if (ys[i] < ymin) ymin = ys[i];
        if (ys[i] > ymax) ymax = ys[i];
    }
    ymin = tti_sim_floor(ymin);
    ymax = tti_sim_ceil(ymax + 1e-9);
    if (ymax <= ymin) ymax = ymin + 1;
    axes(b, "percentile", "latency (log scale)");
    for (double e = ymin; e <= ymax; e += 1) {
        char t[32];
        ytick(b, py(e, ymin, ymax), fmt_us(tti_sim_pow10(e), t, sizeof t));
    }
    static const char *const labels[] = { "0%", "90%", "99%", "99.9%", "99.99%", "99.999%" };
    for (int k = 0; k <= 5; k++) xtick(b, px(k, 0, 5), labels[k]);
    series s = { "latency", "#1f6fb4", xs, ys, NP };
    polyline(b, &s, 0, 5, ymin, ymax, 0);
    put(b, "</svg></figure>");
}

/* Distribution: counts in power-of-two latency bins. */
static void chart_distribution(sbuf *b, const tt_hist *h) {
    chart_begin(b, "End-to-end latency distribution (messages per power-of-two bin)");
    if (tt_hist_count(h) == 0) {
        put(b, "<text x='%d' y='%d'>no messages received</text></svg></figure>", ML, CH / 2);
        return;
    }
    uint64_t bins[64] = { 0 };
    uint64_t lo, hi, c;
    for (size_t i = 0; tt_hist_bucket(h, i, &lo, &hi, &c); i++)
        if (c) bins[lo ? 63 - __builtin_clzll(lo) : 0] += c;
    int first = 0, last = 0;
    uint64_t top = 0;
    for (int k = 0; k < 64; k++)
        if (bins[k]) {
            if (!top) first = k;
            last = k;
            if (bins[k] > top) top = bins[k];
        }
    double ymax = nice_ceil((double)top);
    axes(b, "latency (bin lower bound)", "messages");
    for (int t = 0; t <= 4; t++) {
        char s[32];
        ytick(b, py(ymax * t / 4, 0, ymax), num(ymax * t / 4, s, sizeof s));
    }
    int nb = last - first + 1;
    double w = (double)(CW - ML - MR) / nb;
    for (int k = first; k <= last; k++) {
        double x = ML + (k - first) * w, y = py((double)bins[k], 0, ymax);
        char t[32];
        put(b, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='#2e9d5b'><title>%" PRIu64
               "</title></rect>",
            x + 1, y, w - 2, (CH - MB) - y, bins[k]);
        if (nb <= 24 || (k - first) % 2 == 0)
            put(b, "<text x='%.1f' y='%d' font-size='10' text-anchor='middle'>%s</text>", x + w / 2,
                CH - MB + 14, fmt_us(k ? (double)((uint64_t)1 << k) : 0, t, sizeof t));
    }
    put(b, "</svg></figure>");
}

/* Messages per second out and in, and connections, per second of the run. */
static void chart_rates(sbuf *b, const tt_sim_report *r) {
    chart_begin(b, "Messages per second and connections over time");
    size_t n = r->nsteps;
    if (n == 0) {
        put(b, "<text x='%d' y='%d'>no timeline</text></svg></figure>", ML, CH / 2);
        return;
    }
    double *x = tti_calloc(n, sizeof *x), *out = tti_calloc(n, sizeof *out);
    double *in = tti_calloc(n, sizeof *in), *conn = tti_calloc(n, sizeof *conn);
    if (!x || !out || !in || !conn) {
        b->oom = true;
        goto done;
    }
    double top = 1, ctop = 1;
    for (size_t i = 0; i < n; i++) {
        x[i] = (double)(i + 1);
        out[i] = (double)(r->t_sent[i] - (i ? r->t_sent[i - 1] : 0));
        in[i] = (double)(r->t_received[i] - (i ? r->t_received[i - 1] : 0));
        conn[i] = (double)r->t_connected[i];
        if (out[i] > top) top = out[i];
        if (in[i] > top) top = in[i];
        if (conn[i] > ctop) ctop = conn[i];
    }
    top = nice_ceil(top);
    ctop = nice_ceil(ctop);
    /* Connections share the axis, scaled to it; their scale is on the right. */
    for (size_t i = 0; i < n; i++) conn[i] = conn[i] / ctop * top;
    double x1 = n > 1 ? (double)n : 2;
    axes(b, "seconds since start", "messages per second");
    for (int t = 0; t <= 4; t++) {
        char s[32];
        ytick(b, py(top * t / 4, 0, top), num(top * t / 4, s, sizeof s));
        put(b, "<text x='%d' y='%.1f' font-size='11' fill='#999'>%s</text>", CW - MR + 4,
            py(top * t / 4, 0, top) + 4, num(ctop * t / 4, s, sizeof s));
    }
    for (int t = 0; t <= 5; t++) {
        double v = 1 + (x1 - 1) * t / 5;
        char s[32];
        snprintf(s, sizeof s, "%.0f", v);
        xtick(b, px(v, 1, x1), s);
    }
    series so = { "sent / s", "#1f6fb4", x, out, n };
    series si = { "received / s", "#d9822b", x, in, n };
    series sc = { "connections (right scale)", "#999", x, conn, n };
    polyline(b, &so, 1, x1, 0, top, 0);
    polyline(b, &si, 1, x1, 0, top, 1);
    polyline(b, &sc, 1, x1, 0, top, 2);
    put(b, "</svg></figure>");
done:
    tti_free(x);
    tti_free(out);
    tti_free(in);
    tti_free(conn);
}

static void row(sbuf *b, const char *k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void row(sbuf *b, const char *k, const char *fmt, ...) {
    char v[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    put(b, "<tr><th>%s</th><td>%s</td></tr>", k, v);
}

tt_err tt_sim_report_write_html(const tt_sim_report *r, const char *path) {
    if (!r || !path) return TT_EINVAL;
    tt_sim_summary s = TT_OPTS_INIT(tt_sim_summary);
    (void)tt_sim_report_summary(r, &s);
    sbuf b = { 0 };
    char when[64] = "";
    time_t t = (time_t)(r->started_ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    put(&b, "<!DOCTYPE html><html><head><meta charset='utf-8'><title>tether sim report</title><style>"
            "body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 16px}"
            "th,td{padding:3px 12px;border-bottom:1px solid #eee;text-align:left}th{font-weight:normal;color:#555}"
            "td{font-variant-numeric:tabular-nums}figure{margin:12px 0}h2{margin-top:28px;font-size:18px}"
            ".grid{display:flex;flex-wrap:wrap;gap:24px}</style></head><body>");
    put(&b, "<h1>tether sim</h1><p>Profile <b>%s</b>, %u process%s, started %s, QoS %u, %" PRIu64
            "-byte payloads, %s.</p>",
        r->profile, s.processes, s.processes == 1 ? "" : "es", when, r->qos, r->payload_size,
        r->rate > 0 ? "rate per device as set" : "as fast as the window allows");
    char a[32], c2[32], c3[32], c4[32], c5[32], c6[32];
    put(&b, "<div class='grid'><div><h2>Connections</h2><table>");
    row(&b, "connected / target", "%" PRIu64 " / %" PRIu64, s.connected, s.target);
    row(&b, "failed", "%" PRIu64, s.connect_failed);
    row(&b, "ramp", "%.2f s (%.0f connections/s)", s.connect_s, s.connects_per_s);
    row(&b, "connect latency p50 / p99 / max", "%s / %s / %s", fmt_us((double)s.connect_p50_us, a, 32),
        fmt_us((double)s.connect_p99_us, c2, 32), fmt_us((double)s.connect_max_us, c3, 32));
    put(&b, "</table><h2>Messages</h2><table>");
    row(&b, "sent (acknowledged at QoS&gt;0)", "%" PRIu64 " in %.2f s: %.0f msgs/s", s.sent, s.duration_s,
        s.out_per_s);
    row(&b, "records sent / received", "%" PRIu64 " / %" PRIu64 " (%.0f/s in)", s.records_sent, s.received,
        s.in_per_s);
    row(&b, "lost / duplicates / out of order", "%" PRIu64 " / %" PRIu64 " / %" PRIu64, s.lost, s.duplicates,
        s.out_of_order);
    row(&b, "publishes failed", "%" PRIu64, s.publish_failed);
    put(&b, "</table></div><div><h2>End-to-end latency</h2><table>");
    row(&b, "messages measured", "%" PRIu64, s.latency_count);
    row(&b, "p50 / p90 / p99", "%s / %s / %s", fmt_us((double)s.p50_us, a, 32), fmt_us((double)s.p90_us, c2, 32),
        fmt_us((double)s.p99_us, c3, 32));
    row(&b, "p99.9 / max / mean", "%s / %s / %s", fmt_us((double)s.p999_us, c4, 32),
        fmt_us((double)s.max_us, c5, 32), fmt_us(s.mean_us, c6, 32));
    put(&b, "</table><h2>Errors</h2><table>");
    if (r->nerrors == 0) put(&b, "<tr><td>none</td></tr>");
    for (size_t i = 0; i < r->nerrors; i++) row(&b, r->errors[i].kind, "%" PRIu64, r->errors[i].count);
    put(&b, "</table></div></div>");
    chart_percentiles(&b, r->latency_us);
    chart_distribution(&b, r->latency_us);
    chart_rates(&b, r);
    put(&b, "<p style='color:#777;font-size:12px'>Latency: publish time (CLOCK_REALTIME, carried in each "
            "payload) to arrival at the consumer; percentiles from a log-linear histogram accurate to 0.1%%."
            "</p></body></html>\n");
    if (b.oom) {
        tti_free(b.p);
        return TT_ENOMEM;
    }
    FILE *f = fopen(path, "w");
    bool ok = f && fwrite(b.p, 1, b.n, f) == b.n;
    if (f && fclose(f) != 0) ok = false;
    tti_free(b.p);
    return ok ? TT_OK : TT_EINTERNAL;
}
