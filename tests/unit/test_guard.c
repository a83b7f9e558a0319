/* test_guard.c -- the front door's bounds (lbd/guard.c): buckets, the per-source table,
 * the recent-cancel window, in-flight forwards. */
#include "check_main.h"
#include "guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static void src4(const char *ip, uint8_t out[16])
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, ip, &a.sin_addr);
    guard_source_key(&a, out);
}

static void src6(const char *ip, uint8_t out[16])
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, ip, &a.sin6_addr);
    guard_source_key(&a, out);
}

START_TEST(bucket_refills_at_its_rate)
{
    struct guard_bucket b = {0};
    for (int i = 0; i < 5; i++)
        ck_assert_msg(guard_bucket_take(&b, 5, 5, 1000), "a fresh bucket holds its burst");
    ck_assert(!guard_bucket_take(&b, 5, 5, 1000));
    ck_assert(!guard_bucket_take(&b, 5, 5, 1100)); /* half a token */
    ck_assert(guard_bucket_take(&b, 5, 5, 1200));  /* one token after 200 ms at 5/s */
    ck_assert(!guard_bucket_take(&b, 5, 5, 1200));
    ck_assert(guard_bucket_take(&b, 0, 0, 1200)); /* rate 0: no limit */
}
END_TEST

static struct guard_limits lim(void)
{
    struct guard_limits l = {.cancel_inflight = 4,
                             .cancel_rate = 100,
                             .cancel_source_rate = 2,
                             .cancel_window_ms = 1000,
                             .startup_per_source = 3};
    return l;
}

START_TEST(cancel_repeat_within_the_window_is_dropped)
{
    struct guard g;
    struct guard_limits l = lim();
    ck_assert_int_eq(guard_init(&g, &l), 0);
    uint8_t a[16];
    src4("192.0.2.1", a);
    ck_assert_int_eq(guard_cancel_admit(&g, a, 7, 99, 1, 10), GUARD_OK);
    guard_cancel_done(&g);
    ck_assert_int_eq(guard_cancel_admit(&g, a, 7, 99, 1, 500), GUARD_DUPLICATE);
    ck_assert_int_eq(guard_cancel_admit(&g, a, 7, 98, 1, 500), GUARD_OK); /* another key */
    guard_cancel_done(&g);
    ck_assert_int_eq(guard_cancel_admit(&g, a, 7, 99, 1, 1100), GUARD_OK); /* window over */
    ck_assert_uint_eq(g.verdicts[GUARD_DUPLICATE], 1);
    guard_free(&g);
}
END_TEST

START_TEST(cancel_per_source_rate_spares_other_sources)
{
    struct guard g;
    struct guard_limits l = lim();
    l.cancel_inflight = 0;
    guard_init(&g, &l);
    uint8_t a[16], b[16];
    src4("192.0.2.1", a);
    src4("192.0.2.2", b);
    /* Bursts of twice the rate (4), then refused. */
    for (uint32_t i = 0; i < 4; i++)
        ck_assert_int_eq(guard_cancel_admit(&g, a, i, 1, 1, 100), GUARD_OK);
    ck_assert_int_eq(guard_cancel_admit(&g, a, 10, 1, 1, 100), GUARD_SOURCE_RATE);
    ck_assert_int_eq(guard_cancel_admit(&g, b, 11, 1, 1, 100), GUARD_OK);
    /* The peer (NULL source) is not held to one source's rate. */
    ck_assert_int_eq(guard_cancel_admit(&g, NULL, 12, 1, 1, 100), GUARD_OK);
    ck_assert_int_eq(guard_cancel_admit(&g, a, 13, 1, 1, 600), GUARD_OK); /* 1 token later */
    guard_free(&g);
}
END_TEST

START_TEST(cancel_global_rate_and_inflight)
{
    struct guard g;
    struct guard_limits l = lim();
    l.cancel_source_rate = 0;
    l.cancel_rate = 3;
    guard_init(&g, &l);
    uint8_t a[16];
    src4("192.0.2.1", a);
    for (uint32_t i = 0; i < 3; i++)
        ck_assert_int_eq(guard_cancel_admit(&g, a, i, 1, 1, 0), GUARD_OK);
    ck_assert_int_eq(guard_cancel_admit(&g, a, 3, 1, 1, 0), GUARD_RATE);
    ck_assert_uint_eq(g.inflight, 3);
    /* Two more in flight would pass the bound of 4 whatever the rate. */
    ck_assert_int_eq(guard_cancel_admit(&g, a, 4, 1, 2, 5000), GUARD_INFLIGHT);
    guard_cancel_done(&g);
    ck_assert_int_eq(guard_cancel_admit(&g, a, 5, 1, 2, 5000), GUARD_OK);
    ck_assert_uint_eq(g.inflight, 4);
    guard_free(&g);
}
END_TEST

START_TEST(startup_per_source_counts_and_releases)
{
    struct guard g;
    struct guard_limits l = lim();
    guard_init(&g, &l);
    uint8_t a[16], b[16];
    bool counted;
    src4("198.51.100.7", a);
    src4("198.51.100.8", b);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(guard_source_startup_begin(&g, a, 0, &counted), GUARD_OK);
        ck_assert(counted);
    }
    ck_assert_int_eq(guard_source_startup_begin(&g, a, 0, &counted), GUARD_SOURCE_BUSY);
    ck_assert(!counted);
    ck_assert_int_eq(guard_source_startup_begin(&g, b, 0, &counted), GUARD_OK);
    guard_source_startup_end(&g, a);
    ck_assert_int_eq(guard_source_startup_begin(&g, a, 0, &counted), GUARD_OK);
    guard_free(&g);
}
END_TEST

START_TEST(ipv6_sources_count_by_64)
{
    uint8_t a[16], b[16], c[16], m[16];
    src6("2001:db8:1:2::1", a);
    src6("2001:db8:1:2:ffff::9", b);
    src6("2001:db8:1:3::1", c);
    ck_assert_mem_eq(a, b, 16);
    ck_assert(memcmp(a, c, 16) != 0);
    src4("192.0.2.1", m);
    src6("::ffff:192.0.2.1", a);
    ck_assert_mem_eq(a, m, 16); /* an IPv4-mapped client is the IPv4 one */
}
END_TEST

START_TEST(table_full_of_busy_sources_admits_uncounted)
{
    struct guard g;
    struct guard_limits l = lim();
    l.startup_per_source = 1;
    guard_init(&g, &l);
    bool counted;
    uint32_t busy = 0;
    /* Many sources each holding one: once every slot an address may use is busy, a new
     * one is let through uncounted (maxconn still bounds it), never mistaken for another. */
    for (uint32_t i = 0; i < 3 * GUARD_SOURCES; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000000 + i)};
        uint8_t k[16];
        guard_source_key(&sa, k);
        ck_assert_int_eq(guard_source_startup_begin(&g, k, i, &counted), GUARD_OK);
        busy += counted;
    }
    ck_assert_uint_le(busy, GUARD_SOURCES);
    ck_assert_uint_ge(busy, GUARD_SOURCES / 2);
    guard_free(&g);
}
END_TEST

START_TEST(idle_sources_are_evicted_for_new_ones)
{
    struct guard g;
    struct guard_limits l = lim();
    guard_init(&g, &l);
    bool counted;
    for (uint32_t i = 0; i < 4 * GUARD_SOURCES; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0b000000 + i)};
        uint8_t k[16];
        guard_source_key(&sa, k);
        ck_assert_int_eq(guard_source_startup_begin(&g, k, i, &counted), GUARD_OK);
        ck_assert_msg(counted, "source %u not counted: idle entries must make room", i);
        guard_source_startup_end(&g, k);
    }
    ck_assert_uint_gt(g.evictions, 0);
    guard_free(&g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("guard");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, bucket_refills_at_its_rate);
    tcase_add_test(tc, cancel_repeat_within_the_window_is_dropped);
    tcase_add_test(tc, cancel_per_source_rate_spares_other_sources);
    tcase_add_test(tc, cancel_global_rate_and_inflight);
    tcase_add_test(tc, startup_per_source_counts_and_releases);
    tcase_add_test(tc, ipv6_sources_count_by_64);
    tcase_add_test(tc, table_full_of_busy_sources_admits_uncounted);
    tcase_add_test(tc, idle_sources_are_evicted_for_new_ones);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
