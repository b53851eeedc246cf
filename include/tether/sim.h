/* tether — the fleet simulator: many simulated devices or gateways, each with
 * its own MQTT connection, publishing telemetry through a broker; a consumer
 * in the same run (or in another process) measuring end-to-end latency, loss,
 * duplicates and order from a header carried in every payload; and a report
 * (JSON, mergeable across processes, and a self-contained HTML page).
 *
 * The `tether sim` command is a thin shell over this module, so a C program
 * can embed a fleet too:
 *
 *   tt_sim_opts o = TT_OPTS_INIT(tt_sim_opts);
 *   o.url = "mqtt://127.0.0.1:1883";
 *   o.devices = 1000;  o.rate = 1;  o.duration_s = 20;  o.qos = TT_QOS1;
 *   tt_sim *s;
 *   tt_sim_new(rt, &o, &s);
 *   tt_future *f = tt_sim_run(s);
 *   while (tt_future_wait(f, 1000) == TT_ETIMEDOUT) { tt_sim_progress p; tt_sim_progress_get(s, &p); ... }
 *   tt_future_free(f);
 *   tt_sim_report *r;
 *   tt_sim_report_get(s, &r);
 *   tt_sim_report_write_json(r, "sim.json");  tt_sim_report_write_html(r, "sim.html");
 *   tt_sim_report_free(r);  tt_sim_free(s);
 *
 * Timestamps in payloads are CLOCK_REALTIME microseconds, so producer and
 * consumer may be different processes or hosts; across hosts the latency is
 * only as good as their clock synchronisation (NTP/PTP). */
#ifndef TETHER_SIM_H
#define TETHER_SIM_H

#include <tether/common.h>
#include <tether/err.h>
#include <tether/future.h>
#include <tether/mqtt.h>
#include <tether/runtime.h>

TT_BEGIN_DECLS

/* ---- A high-dynamic-range histogram ------------------------------------- */

/**
 * Counts of non-negative integer values (e.g. microseconds) in log-linear
 * buckets: values below 2048 are exact, larger ones fall in buckets 1/1024 of
 * their magnitude wide, so any percentile is within 0.1 % (relative) of the
 * true value of the sample at that rank: 3 significant digits. Values above
 * the histogram's highest are counted as the highest. Two histograms merge by
 * adding counts. Not thread-safe: the caller serialises access to one
 * histogram; distinct histograms are independent.
 */
typedef struct tt_hist tt_hist;

/** A histogram for values 0..highest (highest >= 2048; at most 2^62).
 * Memory: about 8 KiB per doubling of highest above 2048 (196 KiB for one
 * hour in microseconds). Errors: TT_EINVAL, TT_ENOMEM. */
TT_API tt_err tt_hist_new(uint64_t highest, tt_hist **out);
TT_API void tt_hist_free(tt_hist *h);
TT_API void tt_hist_record(tt_hist *h, uint64_t value);
TT_API void tt_hist_record_n(tt_hist *h, uint64_t value, uint64_t n);
/** Add src's counts to dst (any highest: src's values beyond dst's highest
 * count as dst's highest). */
TT_API void tt_hist_merge(tt_hist *dst, const tt_hist *src);
TT_API void tt_hist_reset(tt_hist *h);
TT_API uint64_t tt_hist_count(const tt_hist *h);
TT_API uint64_t tt_hist_highest(const tt_hist *h);
/** Smallest and largest value recorded (exact); 0 when empty. */
TT_API uint64_t tt_hist_min(const tt_hist *h);
TT_API uint64_t tt_hist_max(const tt_hist *h);
TT_API double tt_hist_mean(const tt_hist *h);
/**
 * The value at percentile `pct` (0..100): the sample of rank ceil(pct/100*n)
 * (at least 1) in sorted order, reported as the top of its bucket but never
 * above the largest value recorded. 0 when empty.
 */
TT_API uint64_t tt_hist_percentile(const tt_hist *h, double pct);
/** Bucket iteration for charts: *lo..*hi (inclusive) and the count of
 * bucket i, for i from 0 while it returns true. */
TT_API bool tt_hist_bucket(const tt_hist *h, size_t i, uint64_t *lo, uint64_t *hi, uint64_t *count);

/* ---- Profiles: what a simulated device says ----------------------------- */

typedef struct tt_sim_opts tt_sim_opts;

/** One message a profile builds: it writes the topic (NUL-terminated) and the
 * payload into the buffers provided. */
typedef struct tt_sim_msg {
    char *topic;
    size_t topic_cap;
    uint8_t *payload;
    size_t payload_cap;
    size_t payload_len;                /* set by the profile */
} tt_sim_msg;

/** A measurement point found in a received message. `device` is the global
 * id of the (sub-)device, `seq` its sequence number from 0, `sent_us` the
 * CLOCK_REALTIME microseconds at which it was published. */
typedef void (*tt_sim_record_fn)(void *arg, uint64_t device, uint64_t seq, uint64_t sent_us);

/**
 * A profile: the topics, payloads and credentials of one platform. The
 * built-in ones are "mqtt", "thingsboard-device", "thingsboard-gateway" and
 * "watson-device" (tt_sim_profile_find); others (Wirepas, NETPIE) plug in by
 * filling this table. Every function may run on any thread, concurrently
 * for different connections, so they must keep no mutable state.
 * `conn` is a connection's global id (opts.id_offset + its index).
 */
typedef struct tt_sim_profile {
    const char *name;
    /* Sub-devices behind each connection: 1, or opts.sub_devices for gateways. */
    uint32_t (*records_per_msg)(const tt_sim_opts *o);
    /* Client id and username (both NUL-terminated, username "" for none). */
    tt_err (*identity)(const tt_sim_opts *o, uint64_t conn, char *client_id, size_t id_cap,
                       char *username, size_t user_cap);
    /* Messages sent once after the first CONNACK (a gateway's connect
     * notices): message k into `out`, returns 1 if one was built, 0 when
     * there are no more, or a tt_err. NULL: none. */
    int (*hello)(const tt_sim_opts *o, uint64_t conn, uint32_t k, tt_sim_msg *out);
    /* Message number `seq` of connection `conn`, stamped `now_us`; its
     * payload is padded towards opts.payload_size. Returns TT_OK or a tt_err. */
    tt_err (*telemetry)(const tt_sim_opts *o, uint64_t conn, uint64_t seq, uint64_t now_us,
                        tt_sim_msg *out);
    /* The consumer's topic filters: writes up to `max`, returns how many. */
    size_t (*filters)(const tt_sim_opts *o, const char **out, size_t max);
    /* Parse a received message and emit its records. Returns how many, or
     * TT_EPROTO for a message that is not the simulator's. */
    int (*decode)(const tt_sim_opts *o, const char *topic, size_t topic_len, const void *payload,
                  size_t len, tt_sim_record_fn emit, void *arg);
    /* The device's password (NUL-terminated). NULL: opts.password for every
     * device. */
    tt_err (*password)(const tt_sim_opts *o, uint64_t conn, char *out, size_t cap);
} tt_sim_profile;

/** A built-in profile by name, or NULL. */
TT_API const tt_sim_profile *tt_sim_profile_find(const char *name);

/* ---- The simulator ------------------------------------------------------ */

typedef struct tt_sim tt_sim;

struct tt_sim_opts {
    uint32_t size;                     /* TT_OPTS_INIT(tt_sim_opts) */
    const char *url;                   /* the broker, "mqtt://host:port" */
    const tt_sim_profile *profile;     /* NULL = "mqtt" */
    uint32_t devices;                  /* connections (devices, or gateways) */
    uint32_t sub_devices;              /* devices behind each gateway; 0 = 1 */
    uint64_t id_offset;                /* first connection's global id (for runs on several hosts) */
    double connect_rate;               /* new connections per second; 0 = as fast as possible */
    uint32_t max_handshakes;           /* connects in progress at once; 0 = 512 */
    double rate;                       /* messages per second per connection; 0 = as fast as
                                          the window allows */
    uint64_t count;                    /* messages per connection; 0 = until duration_s */
    double duration_s;                 /* run length from the first connect; 0 = until count */
    size_t payload_size;               /* bytes per payload, at least the header; 0 = 64 */
    tt_qos qos;
    bool retain;
    const char *topic;                 /* "mqtt" profile: pattern, {id} = connection id;
                                          NULL = "sim/{id}/telemetry" */
    const char *token;                 /* ThingsBoard username, Watson IoT device token
                                          (password) pattern; NULL = "sim-token-{id}" */
    uint32_t window;                   /* unacknowledged publishes per connection; 0 = 16 */
    bool no_consumer;                  /* publish only (another process consumes) */
    bool consume_only;                 /* no devices: consume until duration_s or tt_sim_stop */
    const char *consumer_id;           /* NULL = "tt-sim-consumer-<pid>" */
    bool consumer_persistent;          /* consumer keeps its session (QoS 1 across a broker restart) */
    double drain_s;                    /* after publishing, wait this long at most for acks and
                                          for the consumer to catch up; 0 = 10 */
    const char *const *source_addrs;   /* local addresses, connection i binds source_addrs[i % n] */
    size_t nsource_addrs;
    uint16_t keepalive_s;              /* 0 = 60 */
    const char *username;              /* "mqtt" profile and the consumer: credentials */
    const char *password;
    const char *client_id;             /* "watson-device": the devices' client id pattern,
                                          {id} = connection id; NULL =
                                          "d:quickstart:tether-sim:sim-{id}" */
};

/** A snapshot for progress lines. */
typedef struct tt_sim_progress {
    uint32_t size;                     /* TT_OPTS_INIT(tt_sim_progress) */
    double elapsed_s;
    uint64_t target;                   /* connections asked for */
    uint64_t connected;                /* up now */
    uint64_t connect_failed;
    uint64_t sent;                     /* publishes completed (written at QoS 0, acknowledged above) */
    uint64_t received;                 /* records the consumer got */
    double out_per_s, in_per_s;        /* over the last second */
    uint64_t p50_us, p99_us;           /* end-to-end latency so far */
    uint64_t errors;                   /* every failure of every kind */
    bool draining;                     /* publishing is over; waiting for the last messages */
    bool done;
} tt_sim_progress;

/**
 * Create a simulator on `rt` (many clients share its loops). Nothing
 * connects until tt_sim_run().
 * Ownership: opts and its strings are copied; `profile` must outlive the sim.
 * Thread: any. Errors: TT_EINVAL (no url, no devices, count and duration both
 * 0, payload too small for the profile's header, bad topic), TT_ENOMEM.
 */
TT_API tt_err tt_sim_new(tt_runtime *rt, const tt_sim_opts *opts, tt_sim **out);

/**
 * Run: the consumer connects and subscribes, then devices connect at
 * connect_rate and publish until count or duration_s; then the run drains
 * (acks, the consumer catching up, at most drain_s) and closes every client.
 * Thread: any; runs on a thread of the simulator's own.
 * Completes: when every client is closed: TT_OK, or TT_ECONNREFUSED /
 *            TT_EREFUSED ... when the consumer could not start. Per-device
 *            failures do not fail the run: they are counted in the report.
 * Errors: TT_EBUSY (already run).
 */
TT_API tt_future *tt_sim_run(tt_sim *s);

/** End the run early (publishing stops, the run drains). Any thread; idempotent. */
TT_API void tt_sim_stop(tt_sim *s);

/** Fill `p` with the current counters. Thread: any. Errors: TT_EINVAL. */
TT_API tt_err tt_sim_progress_get(tt_sim *s, tt_sim_progress *p);

/**
 * Free the simulator: stops a run still going and waits for it to close its
 * clients. Blocks; not from a library thread (a tether callback). Free it
 * before its runtime.
 */
TT_API void tt_sim_free(tt_sim *s);

/* ---- Reports ------------------------------------------------------------ */

/** A run's results: counters, histograms (connect latency and end-to-end
 * latency, microseconds) and a per-second timeline. */
typedef struct tt_sim_report tt_sim_report;

/** The figures of a report, derived from its counters and histograms. */
typedef struct tt_sim_summary {
    uint32_t size;                     /* TT_OPTS_INIT(tt_sim_summary) */
    uint32_t processes;                /* reports merged into this one */
    uint64_t target, connected, connect_failed;
    double connect_s;                  /* from the first connect to the last CONNACK */
    double connects_per_s;
    uint64_t connect_p50_us, connect_p99_us, connect_max_us;
    uint64_t sent, publish_failed;     /* MQTT messages */
    uint64_t records_sent;             /* device records in them (gateways carry several) */
    uint64_t received, duplicates, out_of_order, lost;   /* records */
    double duration_s;
    double out_per_s, in_per_s;
    uint64_t latency_count;
    uint64_t p50_us, p90_us, p99_us, p999_us, max_us;
    double mean_us;
    uint64_t errors;
} tt_sim_summary;

/** The report of a run so far (usually after tt_sim_run completed).
 * Ownership: the caller frees *out. Errors: TT_ENOMEM. */
TT_API tt_err tt_sim_report_get(tt_sim *s, tt_sim_report **out);

/** Parse a report written by tt_sim_report_json(). Errors: TT_EINVAL (not a
 * report; nothing is kept), TT_ENOMEM. */
TT_API tt_err tt_sim_report_parse(const char *json, size_t len, tt_sim_report **out);

/** The report as JSON, in a malloc'd NUL-terminated string the caller frees
 * with free(). NULL when out of memory. */
TT_API char *tt_sim_report_json(const tt_sim_report *r);

/** Add `src` into `dst`: counters and histograms add up, the timelines add
 * second by second, durations take the longest. Errors: TT_EINVAL. */
TT_API tt_err tt_sim_report_merge(tt_sim_report *dst, const tt_sim_report *src);

TT_API tt_err tt_sim_report_summary(const tt_sim_report *r, tt_sim_summary *out);

/** Errors by kind: name i ("connect TT_ECONNREFUSED", "publish TT_ETIMEDOUT",
 * "disconnect TT_ECONNRESET") and its count; false past the end. */
TT_API bool tt_sim_report_error(const tt_sim_report *r, size_t i, const char **kind, uint64_t *count);

/** Write the JSON (tt_sim_report_json) or a self-contained HTML page (summary
 * table, latency distribution and rates over time as inline SVG charts).
 * Errors: TT_EINVAL, TT_ENOMEM, TT_EINTERNAL (the file could not be written). */
TT_API tt_err tt_sim_report_write_json(const tt_sim_report *r, const char *path);
TT_API tt_err tt_sim_report_write_html(const tt_sim_report *r, const char *path);

TT_API void tt_sim_report_free(tt_sim_report *r);

TT_END_DECLS

#endif /* TETHER_SIM_H */
