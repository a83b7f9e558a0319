/* test_garp.c -- the unsolicited Neighbor Advertisement frame (vrrpd/garp.c), checked
 * field by field against RFC 4861 4.4 and 7.2.6, and its checksum as a receiver checks
 * it. (tests/integration/vrrpd_ipv6.sh has tshark read the live one.) */
#include "check_main.h"
#include "garp.h"

#include <arpa/inet.h>
#include <string.h>

static const uint8_t MAC[6] = {0x02, 0x00, 0x5e, 0x10, 0x20, 0x30};

/* The one's-complement sum a receiver computes over the pseudo-header and the ICMPv6
 * message, checksum included: 0xffff when the checksum is right. */
static uint16_t receiver_sum(const uint8_t *ip6hdr, const uint8_t *icmp, size_t len)
{
    uint32_t sum = 0;
    for (size_t i = 0; i < 32; i += 2) /* source and destination */
        sum += (uint32_t)ip6hdr[8 + i] << 8 | ip6hdr[9 + i];
    sum += (uint32_t)len + 58;
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)icmp[i] << 8 | icmp[i + 1];
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

START_TEST(na_is_an_unsolicited_override_advertisement_to_all_nodes)
{
    struct in6_addr vip;
    ck_assert_int_eq(inet_pton(AF_INET6, "fd77::100", &vip), 1);
    uint8_t f[GARP_NA_LEN + 8];
    ck_assert_uint_eq(garp_na_build(f, sizeof(f), MAC, vip.s6_addr), GARP_NA_LEN);
    static const uint8_t eth[14] = {0x33, 0x33, 0,    0,    0,    1,    0x02,
                                    0x00, 0x5e, 0x10, 0x20, 0x30, 0x86, 0xdd};
    ck_assert_mem_eq(f, eth, 14); /* to the all-nodes MAC, from ours, IPv6 */
    const uint8_t *ip = f + 14, *icmp = f + 54;
    ck_assert_uint_eq(ip[0] >> 4, 6);
    ck_assert_uint_eq(ip[4] << 8 | ip[5], 32); /* payload: NA 24 + option 8 */
    ck_assert_uint_eq(ip[6], 58);              /* ICMPv6 */
    ck_assert_uint_eq(ip[7], 255);             /* hop limit (RFC 4861 7.1.2) */
    ck_assert_mem_eq(ip + 8, vip.s6_addr, 16);
    static const uint8_t all_nodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    ck_assert_mem_eq(ip + 24, all_nodes, 16);
    ck_assert_uint_eq(icmp[0], 136); /* Neighbor Advertisement */
    ck_assert_uint_eq(icmp[1], 0);
    ck_assert_uint_eq(icmp[4], 0x20); /* Override only: not a router, not solicited */
    ck_assert_uint_eq(icmp[5] | icmp[6] | icmp[7], 0);
    ck_assert_mem_eq(icmp + 8, vip.s6_addr, 16);
    ck_assert_uint_eq(icmp[24], 2); /* Target Link-Layer Address */
    ck_assert_uint_eq(icmp[25], 1); /* 8 bytes */
    ck_assert_mem_eq(icmp + 26, MAC, 6);
    ck_assert_uint_eq(receiver_sum(ip, icmp, 32), 0xffff);
    ck_assert_uint_ne(icmp[2] << 8 | icmp[3], 0);
}
END_TEST

START_TEST(another_vip_another_checksum_and_small_buffers_refused)
{
    struct in6_addr a, b;
    inet_pton(AF_INET6, "2001:db8::1", &a);
    inet_pton(AF_INET6, "2001:db8::2", &b);
    uint8_t fa[GARP_NA_LEN], fb[GARP_NA_LEN];
    garp_na_build(fa, sizeof(fa), MAC, a.s6_addr);
    garp_na_build(fb, sizeof(fb), MAC, b.s6_addr);
    ck_assert_uint_eq(receiver_sum(fb + 14, fb + 54, 32), 0xffff);
    ck_assert(memcmp(fa + 56, fb + 56, 2) != 0);
    ck_assert_uint_eq(garp_na_build(fa, GARP_NA_LEN - 1, MAC, a.s6_addr), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("garp");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, na_is_an_unsolicited_override_advertisement_to_all_nodes);
    tcase_add_test(tc, another_vip_another_checksum_and_small_buffers_refused);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
