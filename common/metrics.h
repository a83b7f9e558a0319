/* metrics.h -- Prometheus text exposition (format 0.0.4) into a growing buffer.
 *
 * A daemon renders its own state at scrape time: metrics_family() opens a family
 * (HELP and TYPE written once), metrics_sample() adds one series with optional labels.
 * Label values are escaped here; names are the caller's constants. */
#ifndef COMMON_METRICS_H
#define COMMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

struct metrics_buf {
    char *data;
    size_t len, cap;
    int failed; /* sticky: an allocation failed; checked once at the end */
    char family[128];
};

void metrics_init(struct metrics_buf *m);
void metrics_free(struct metrics_buf *m);
void metrics_family(struct metrics_buf *m, const char *name, enum metrics_type type,
                    const char *help);
/* labels: NULL, or alternating name, value pointers ending with NULL. */
void metrics_sample(struct metrics_buf *m, const char *const *labels, double value);
/* One sample per value of one label: {label="names[i]"} values[i], for i < n. */
void metrics_samples_by(struct metrics_buf *m, const char *label, const char *const *names,
                        const uint64_t *values, size_t n);
/* Append raw text (used for JSON rendering that shares the buffer type). */
void metrics_printf(struct metrics_buf *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append s as a JSON string literal with escapes. */
void metrics_json_str(struct metrics_buf *m, const char *s);

/* A histogram: observations counted in cumulative buckets (le = upper bounds), with
 * their sum and count, rendered as Prometheus expects (name_bucket{le}, name_sum,
 * name_count). Bounds are fixed at init; at most METRICS_HIST_MAX. */
#define METRICS_HIST_MAX 16
struct metrics_hist {
    size_t n;
    double le[METRICS_HIST_MAX];
    unsigned long long bucket[METRICS_HIST_MAX + 1]; /* the last: above every bound */
    unsigned long long count;
    double sum;
};
void metrics_hist_init(struct metrics_hist *h, const double *le, size_t n);
void metrics_hist_observe(struct metrics_hist *h, double v);
void metrics_histogram(struct metrics_buf *m, const char *name, const char *help,
                       const struct metrics_hist *h);

/* DAEMON_build_info{version} 1 and the process metrics Prometheus's own client libraries
 * export (process_open_fds, process_max_fds, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_cpu_seconds_total), read from /proc and
 * getrlimit at scrape time: descriptors against the limit is the bound that matters
 * most to a proxy. */
void metrics_process(struct metrics_buf *m, const char *daemon, const char *version);

#endif
