/* metrics.c -- Prometheus text exposition (see metrics.h). */
#include "metrics.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

void metrics_init(struct metrics_buf *m)
{
    memset(m, 0, sizeof(*m));
}

void metrics_free(struct metrics_buf *m)
{
    free(m->data);
    memset(m, 0, sizeof(*m));
}

static int reserve(struct metrics_buf *m, size_t extra)
{
    if (m->failed)
        return -1;
    if (m->len + extra + 1 <= m->cap)
        return 0;
    size_t cap = m->cap ? m->cap : 4096;
    while (cap < m->len + extra + 1)
        cap *= 2;
    char *p = realloc(m->data, cap);
    if (p == NULL) {
        m->failed = 1;
        return -1;
    }
    m->data = p;
    m->cap = cap;
    return 0;
}

static void append(struct metrics_buf *m, const char *s, size_t n)
{
    if (reserve(m, n) != 0)
        return;
    memcpy(m->data + m->len, s, n);
    m->len += n;
    m->data[m->len] = '\0';
}

void metrics_printf(struct metrics_buf *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(m, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(m->data + m->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    m->len += (size_t)n;
}

void metrics_family(struct metrics_buf *m, const char *name, enum metrics_type type,
                    const char *help)
{
    snprintf(m->family, sizeof(m->family), "%s", name);
    metrics_printf(m, "# HELP %s ", name);
    for (const char *p = help; *p; p++) { /* HELP escapes backslash and newline */
        if (*p == '\\')
            append(m, "\\\\", 2);
        else if (*p == '\n')
            append(m, "\\n", 2);
        else
            append(m, p, 1);
    }
    metrics_printf(m, "\n# TYPE %s %s\n", name,
                   type == METRICS_COUNTER ? "counter"
                   : type == METRICS_GAUGE ? "gauge"
                                           : "histogram");
}

void metrics_sample(struct metrics_buf *m, const char *const *labels, double value)
{
    append(m, m->family, strlen(m->family));
    if (labels && labels[0]) {
        append(m, "{", 1);
        for (size_t i = 0; labels[i] && labels[i + 1]; i += 2) {
            metrics_printf(m, "%s%s=\"", i ? "," : "", labels[i]);
            for (const char *p = labels[i + 1]; *p; p++) {
                if (*p == '\\')
                    append(m, "\\\\", 2);
                else if (*p == '"')
                    append(m, "\\\"", 2);
                else if (*p == '\n')
                    append(m, "\\n", 2);
                else
                    append(m, p, 1);
            }
            append(m, "\"", 1);
        }
        append(m, "}", 1);
    }
    if (isnan(value))
        metrics_printf(m, " NaN\n");
    else if (value == floor(value) && fabs(value) < 1e15)
        metrics_printf(m, " %.0f\n", value);
    else
        metrics_printf(m, " %.15g\n", value); /* enough for Unix times in ms */
}

void metrics_samples_by(struct metrics_buf *m, const char *label, const char *const *names,
                        const uint64_t *values, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *l[] = {label, names[i], NULL};
        metrics_sample(m, l, (double)values[i]);
    }
}

void metrics_json_str(struct metrics_buf *m, const char *s)
{
    append(m, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            append(m, e, 2);
        } else if (*p < 0x20) {
            metrics_printf(m, "\\u%04x", *p);
        } else {
            append(m, (const char *)p, 1);
        }
    }
    append(m, "\"", 1);
}

void metrics_process(struct metrics_buf *m, const char *daemon, const char *version)
{
    char name[64];
    snprintf(name, sizeof(name), "%s_build_info", daemon);
    metrics_family(m, name, METRICS_GAUGE, "1, labelled with the version running.");
    const char *vl[] = {"version", version, NULL};
    metrics_sample(m, vl, 1);

    int fds = -1;
    DIR *dir = opendir("/proc/self/fd");
    if (dir) {
        fds = 0;
        while (readdir(dir))
            fds++;
        fds -= 3; /* ".", ".." and the directory's own descriptor */
        closedir(dir);
    }
    if (fds >= 0) {
        metrics_family(m, "process_open_fds", METRICS_GAUGE, "Open file descriptors.");
        metrics_sample(m, NULL, fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        metrics_family(m, "process_max_fds", METRICS_GAUGE, "The descriptor limit (soft).");
        metrics_sample(m, NULL, (double)rl.rlim_cur);
    }
    unsigned long vsize_pages = 0, rss_pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lu %lu", &vsize_pages, &rss_pages) == 2) {
            double page = (double)sysconf(_SC_PAGESIZE);
            metrics_family(m, "process_resident_memory_bytes", METRICS_GAUGE,
                           "Resident memory, bytes.");
            metrics_sample(m, NULL, (double)rss_pages * page);
            metrics_family(m, "process_virtual_memory_bytes", METRICS_GAUGE,
                           "Virtual memory, bytes.");
            metrics_sample(m, NULL, (double)vsize_pages * page);
        }
        fclose(f);
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        metrics_family(m, "process_cpu_seconds_total", METRICS_COUNTER,
                       "CPU time, user and system, seconds.");
        metrics_sample(m, NULL,
                       (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    }
}

void metrics_hist_init(struct metrics_hist *h, const double *le, size_t n)
{
    memset(h, 0, sizeof(*h));
    h->n = n < METRICS_HIST_MAX ? n : METRICS_HIST_MAX;
    memcpy(h->le, le, h->n * sizeof(*le));
}

void metrics_hist_observe(struct metrics_hist *h, double v)
{
    size_t i = 0;
    while (i < h->n && v > h->le[i])
        i++;
    /* (Relaxed stores: one writer, and lbd's main loop reads another worker's histogram
     * while it runs; as cheap as plain increments.) */
    __atomic_store_n(&h->bucket[i], h->bucket[i] + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&h->count, h->count + 1, __ATOMIC_RELAXED);
    double sum = h->sum + v;
    __atomic_store(&h->sum, &sum, __ATOMIC_RELAXED);
}

void metrics_histogram(struct metrics_buf *m, const char *name, const char *help,
                       const struct metrics_hist *h)
{
    char series[160], le[32];
    metrics_family(m, name, METRICS_HISTOGRAM, help);
    unsigned long long cum = 0;
    snprintf(series, sizeof(series), "%s_bucket", name);
    for (size_t i = 0; i <= h->n; i++) {
        cum += h->bucket[i];
        if (i < h->n)
            snprintf(le, sizeof(le), "%g", h->le[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        snprintf(m->family, sizeof(m->family), "%s", series);
        const char *l[] = {"le", le, NULL};
        metrics_sample(m, l, (double)cum);
    }
    snprintf(m->family, sizeof(m->family), "%s_sum", name);
    metrics_sample(m, NULL, h->sum);
    snprintf(m->family, sizeof(m->family), "%s_count", name);
    metrics_sample(m, NULL, (double)h->count);
}
