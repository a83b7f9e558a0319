/* test_parse.c -- durations and socket addresses (common/parse.c). */
#include "check_main.h"
#include "parse.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

START_TEST(durations_with_units)
{
    uint64_t ms;
    ck_assert_int_eq(parse_duration_ms("250ms", &ms), 0);
    ck_assert_uint_eq(ms, 250);
    ck_assert_int_eq(parse_duration_ms("2s", &ms), 0);
    ck_assert_uint_eq(ms, 2000);
    ck_assert_int_eq(parse_duration_ms("1.5s", &ms), 0);
    ck_assert_uint_eq(ms, 1500);
    ck_assert_int_eq(parse_duration_ms("1m", &ms), 0);
    ck_assert_uint_eq(ms, 60000);
    ck_assert_int_eq(parse_duration_ms("1h", &ms), 0);
    ck_assert_uint_eq(ms, 3600000);
    ck_assert_int_eq(parse_duration_ms("1500us", &ms), 0);
    ck_assert_uint_eq(ms, 2); /* rounded up, never to zero */
    ck_assert_int_eq(parse_duration_ms("0", &ms), 0);
    ck_assert_uint_eq(ms, 0);
}
END_TEST

START_TEST(durations_rejected)
{
    uint64_t ms = 7;
    const char *bad[] = {"", "5", "ms", "2 s", "-1s", "2sec", "1.s.", "99999999999999999999h"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(parse_duration_ms(bad[i], &ms) == -EINVAL, "accepted \"%s\"", bad[i]);
    ck_assert_uint_eq(ms, 7);
}
END_TEST

START_TEST(addresses)
{
    struct sockaddr_storage ss;
    char buf[SOCKADDR_STRLEN];
    ck_assert_int_eq(parse_sockaddr("10.0.0.1:5432", 0, &ss), 0);
    ck_assert_str_eq(format_sockaddr((struct sockaddr *)&ss, buf, sizeof(buf)), "10.0.0.1:5432");
    ck_assert_int_eq(parse_sockaddr("[::1]:26257", 0, &ss), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET6);
    ck_assert_str_eq(format_sockaddr((struct sockaddr *)&ss, buf, sizeof(buf)), "[::1]:26257");
    ck_assert_int_eq(parse_sockaddr("10.0.0.2", 5432, &ss), 0);
    ck_assert_int_eq(sockaddr_port((struct sockaddr *)&ss), 5432);
    ck_assert_int_eq(parse_sockaddr("*:80", 0, &ss), 0);
    ck_assert_str_eq(format_sockaddr((struct sockaddr *)&ss, buf, sizeof(buf)), "0.0.0.0:80");
    ck_assert_str_eq(format_ip4(0x0a4d0032u, buf, sizeof(buf)), "10.77.0.50");
    ck_assert_str_eq(format_ip4(0xffffffffu, buf, sizeof(buf)), "255.255.255.255");
    ck_assert_int_eq(parse_sockaddr("localhost:1", 0, &ss), 0);
}
END_TEST

START_TEST(addresses_rejected)
{
    struct sockaddr_storage ss;
    ck_assert_int_eq(parse_sockaddr("10.0.0.1:0", 0, &ss), -ERANGE);
    ck_assert_int_eq(parse_sockaddr("10.0.0.1:70000", 0, &ss), -ERANGE);
    ck_assert_int_eq(parse_sockaddr("10.0.0.1", 0, &ss), -ERANGE); /* no port, no default */
    ck_assert_int_eq(parse_sockaddr("10.0.0.1:x", 0, &ss), -EINVAL);
    ck_assert_int_eq(parse_sockaddr("[::1", 0, &ss), -EINVAL);
    ck_assert_int_eq(parse_sockaddr(":5432", 0, &ss), -EINVAL);
    ck_assert_int_eq(parse_sockaddr("bad host:1", 0, &ss), -EINVAL);
}
END_TEST

START_TEST(address_equality)
{
    struct sockaddr_storage a, b, c;
    parse_sockaddr("10.0.0.1:1", 0, &a);
    parse_sockaddr("10.0.0.1:1", 0, &b);
    parse_sockaddr("10.0.0.1:2", 0, &c);
    ck_assert(sockaddr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));
    ck_assert(!sockaddr_equal((struct sockaddr *)&a, (struct sockaddr *)&c));
    ck_assert(sockaddr_ip_equal((struct sockaddr *)&a, (struct sockaddr *)&c));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("parse");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, durations_with_units);
    tcase_add_test(tc, durations_rejected);
    tcase_add_test(tc, addresses);
    tcase_add_test(tc, addresses_rejected);
    tcase_add_test(tc, address_equality);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
