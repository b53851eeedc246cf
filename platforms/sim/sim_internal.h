/* The fleet simulator's internals shared by its files (platforms/sim/). */
#ifndef TTI_SIM_INTERNAL_H
#define TTI_SIM_INTERNAL_H

#include <jansson.h>
#include <tether/sim.h>

/* Histograms in reports: {"highest","digits","min","max","sum","buckets":[[i,c],..]}. */
json_t *tti_hist_to_json(const tt_hist *h);
tt_err tti_hist_from_json(const json_t *j, tt_hist **out);

/* Latencies are kept up to one hour, in microseconds. */
#define TTI_SIM_HIST_MAX_US 3600000000ull

/* Error kinds counted by the simulator: what failed x which tt_err. */
enum { TTI_SIM_ERR_CONNECT, TTI_SIM_ERR_PUBLISH, TTI_SIM_ERR_DISCONNECT, TTI_SIM_ERR_WHATS };
#define TTI_SIM_ERR_CODES 17           /* -0..-15, and everything else */
size_t tti_sim_err_slot(tt_err e);
const char *tti_sim_err_what(int what);

#define TTI_SIM_MAX_ERR_KINDS (TTI_SIM_ERR_WHATS * TTI_SIM_ERR_CODES)

struct tt_sim_report {
    char profile[48];
    uint32_t processes;
    uint64_t id_offset;                /* smallest of the merged */
    uint64_t target, connected, connect_failed;
    double connect_s;
    uint64_t sent, publish_failed, records_sent;
    uint64_t received, duplicates, out_of_order, lost;
    double duration_s;                 /* from the first connect to the end of publishing */
    int64_t started_ms;                /* CLOCK_REALTIME, the earliest of the merged */
    uint32_t qos;
    uint64_t payload_size;
    double rate;
    tt_hist *connect_us, *latency_us;
    struct {
        char kind[40];
        uint64_t count;
    } errors[TTI_SIM_MAX_ERR_KINDS];
    size_t nerrors;
    /* One sample per second since the start: counters at that second's end. */
    size_t nsteps, steps_cap;
    uint64_t *t_sent, *t_received, *t_connected;
};

tt_err tti_sim_report_alloc(tt_sim_report **out);
/* Append a timeline step (the report grows its arrays). */
tt_err tti_sim_report_step(tt_sim_report *r, uint64_t sent, uint64_t received, uint64_t connected);
/* Add `n` to the error kind `kind`. */
void tti_sim_report_add_error(tt_sim_report *r, const char *kind, uint64_t n);

/* The little floating-point maths the reports need, without libm (the
 * library does not link it). Inputs are finite and within +-1e300. */
static inline double tti_sim_floor(double x) {
    double t = (double)(long long)x;
    return t > x ? t - 1 : t;
}
static inline double tti_sim_ceil(double x) {
    double t = (double)(long long)x;
    return t < x ? t + 1 : t;
}
/* log10 of x > 0: scale into [1, 10), then ln by the atanh series. */
static inline double tti_sim_log10(double x) {
    if (!(x > 0)) return -300;
    double e = 0;
    while (x >= 10) { x /= 10; e += 1; }
    while (x < 1) { x *= 10; e -= 1; }
    double z = (x - 1) / (x + 1), z2 = z * z, term = z, sum = 0;
    for (int k = 1; k < 60; k += 2) { sum += term / k; term *= z2; }
    return e + 2 * sum / 2.302585092994045684;
}
/* 10^x: the integer part by multiplication, the rest by the exp series. */
static inline double tti_sim_pow10(double x) {
    double i = tti_sim_floor(x), f = (x - i) * 2.302585092994045684, r = 1, term = 1;
    for (int k = 1; k < 30; k++) { term *= f / k; r += term; }
    for (; i > 0; i--) r *= 10;
    for (; i < 0; i++) r /= 10;
    return r;
}

#endif
