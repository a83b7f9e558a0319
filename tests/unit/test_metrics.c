/* test_metrics.c -- Prometheus text exposition (common/metrics.c). */
#include "check_main.h"
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

START_TEST(family_and_samples)
{
    struct metrics_buf m;
    metrics_init(&m);
    metrics_family(&m, "lbd_sessions", METRICS_GAUGE, "Sessions now.");
    metrics_sample(&m, NULL, 3);
    const char *l[] = {"node", "n0", "direction", "to_node", NULL};
    metrics_family(&m, "lbd_bytes_total", METRICS_COUNTER, "Bytes.");
    metrics_sample(&m, l, 1234567);
    ck_assert_int_eq(m.failed, 0);
    ck_assert_str_eq(m.data, "# HELP lbd_sessions Sessions now.\n"
                             "# TYPE lbd_sessions gauge\n"
                             "lbd_sessions 3\n"
                             "# HELP lbd_bytes_total Bytes.\n"
                             "# TYPE lbd_bytes_total counter\n"
                             "lbd_bytes_total{node=\"n0\",direction=\"to_node\"} 1234567\n");
    metrics_free(&m);
}
END_TEST

START_TEST(label_values_are_escaped)
{
    struct metrics_buf m;
    metrics_init(&m);
    metrics_family(&m, "x", METRICS_GAUGE, "back\\slash\nnewline");
    const char *l[] = {"node", "a\"b\\c\nd", NULL};
    metrics_sample(&m, l, 0.5);
    ck_assert_ptr_nonnull(strstr(m.data, "# HELP x back\\\\slash\\nnewline\n"));
    ck_assert_ptr_nonnull(strstr(m.data, "x{node=\"a\\\"b\\\\c\\nd\"} 0.5\n"));
    metrics_free(&m);
}
END_TEST

START_TEST(json_strings_are_escaped)
{
    struct metrics_buf m;
    metrics_init(&m);
    metrics_json_str(&m, "q\"b\\\x01");
    ck_assert_str_eq(m.data, "\"q\\\"b\\\\\\u0001\"");
    metrics_free(&m);
}
END_TEST

static double sample_of(const char *text, const char *name)
{
    char key[64];
    snprintf(key, sizeof(key), "\n%s ", name);
    const char *p = strstr(text, key);
    return p ? strtod(p + strlen(key), NULL) : -1;
}

/* The process metrics are read at render time: five more descriptors show as five more. */
START_TEST(process_metrics_follow_the_process)
{
    struct metrics_buf a, b;
    metrics_init(&a);
    metrics_process(&a, "lbd", "9.9.9");
    int extra[5];
    for (int i = 0; i < 5; i++)
        extra[i] = dup(0);
    metrics_init(&b);
    metrics_process(&b, "lbd", "9.9.9");
    for (int i = 0; i < 5; i++)
        close(extra[i]);
    ck_assert_ptr_nonnull(
        strstr(a.data, "# TYPE lbd_build_info gauge\nlbd_build_info{version=\"9.9.9\"} 1\n"));
    double before = sample_of(a.data, "process_open_fds"),
           after = sample_of(b.data, "process_open_fds");
    ck_assert_msg(before >= 3 && after == before + 5, "open fds %.0f then %.0f", before, after);
    ck_assert(sample_of(b.data, "process_max_fds") >= after);
    ck_assert(sample_of(b.data, "process_resident_memory_bytes") > 4096);
    ck_assert(sample_of(b.data, "process_cpu_seconds_total") >= 0);
    metrics_free(&a);
    metrics_free(&b);
}
END_TEST

/* Buckets are cumulative, an observation on a bound falls in it, +Inf counts all. */
START_TEST(histogram_as_prometheus_reads_it)
{
    static const double le[] = {0.1, 1};
    struct metrics_hist h;
    metrics_hist_init(&h, le, 2);
    metrics_hist_observe(&h, 0.05);
    metrics_hist_observe(&h, 0.1);
    metrics_hist_observe(&h, 0.5);
    metrics_hist_observe(&h, 7);
    struct metrics_buf m;
    metrics_init(&m);
    metrics_histogram(&m, "x_seconds", "X.", &h);
    ck_assert_str_eq(m.data, "# HELP x_seconds X.\n# TYPE x_seconds histogram\n"
                             "x_seconds_bucket{le=\"0.1\"} 2\nx_seconds_bucket{le=\"1\"} 3\n"
                             "x_seconds_bucket{le=\"+Inf\"} 4\nx_seconds_sum 7.65\n"
                             "x_seconds_count 4\n");
    metrics_free(&m);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, family_and_samples);
    tcase_add_test(tc, label_values_are_escaped);
    tcase_add_test(tc, json_strings_are_escaped);
    tcase_add_test(tc, process_metrics_follow_the_process);
    tcase_add_test(tc, histogram_as_prometheus_reads_it);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
