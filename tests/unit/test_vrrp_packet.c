/* test_vrrp_packet.c -- VRRPv3 codec and receive checks (vrrpd/vrrp_packet.c). */
#include "check_main.h"
#include "vrrp_packet.h"

#include <string.h>

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

/* Wrap a VRRP message in an IPv4 header as a raw socket hands it over. */
static size_t wrap(uint8_t *out, const uint8_t *msg, size_t len, uint8_t ttl, uint8_t proto,
                   uint32_t src, uint32_t dst)
{
    memset(out, 0, 20);
    out[0] = 0x45;
    out[2] = (uint8_t)((20 + len) >> 8);
    out[3] = (uint8_t)(20 + len);
    out[8] = ttl;
    out[9] = proto;
    for (int i = 0; i < 4; i++) {
        out[12 + i] = (uint8_t)(src >> (24 - 8 * i));
        out[16 + i] = (uint8_t)(dst >> (24 - 8 * i));
    }
    memcpy(out + 20, msg, len);
    return 20 + len;
}

static const uint32_t SRC = IP(10, 77, 0, 11), DST = VRRP_MCAST_V4;

static size_t sample(uint8_t *msg)
{
    struct vrrp_adv a = {
        .vrid = 51, .priority = 150, .max_adv_cs = 10, .naddrs = 1, .addrs = {IP(10, 77, 0, 100)}};
    return vrrp_packet_build(msg, 64, &a, SRC, DST);
}

START_TEST(known_answer_checked_by_wireshark)
{
    /* This advert, captured from vrrpd, was shown by tshark as "Checksum: 0x4329 [correct]". */
    uint8_t msg[64];
    size_t len = sample(msg);
    const uint8_t want[] = {0x31, 51, 150, 1, 0x00, 10, 0x43, 0x29, 10, 77, 0, 100};
    ck_assert_uint_eq(len, sizeof(want));
    ck_assert_mem_eq(msg, want, sizeof(want));
}
END_TEST

START_TEST(round_trip)
{
    struct vrrp_adv a = {.vrid = 200,
                         .priority = 1,
                         .max_adv_cs = 4095,
                         .naddrs = 3,
                         .addrs = {IP(1, 2, 3, 4), IP(5, 6, 7, 8), IP(9, 9, 9, 9)}};
    uint8_t msg[64], pkt[128];
    size_t len = vrrp_packet_build(msg, sizeof(msg), &a, SRC, IP(10, 77, 0, 12));
    ck_assert_uint_eq(len, 8 + 12);
    size_t plen = wrap(pkt, msg, len, 255, VRRP_PROTO, SRC, IP(10, 77, 0, 12));
    struct vrrp_adv b;
    uint32_t src, dst;
    char why[128];
    ck_assert_int_eq(vrrp_packet_parse(pkt, plen, &b, &src, &dst, why, sizeof(why)), VRRP_OK);
    ck_assert_uint_eq(src, SRC);
    ck_assert_uint_eq(dst, IP(10, 77, 0, 12));
    ck_assert_uint_eq(b.vrid, 200);
    ck_assert_uint_eq(b.priority, 1);
    ck_assert_uint_eq(b.max_adv_cs, 4095);
    ck_assert_uint_eq(b.naddrs, 3);
    ck_assert_uint_eq(b.addrs[2], IP(9, 9, 9, 9));
}
END_TEST

START_TEST(builder_refuses_what_cannot_be_sent)
{
    uint8_t msg[64];
    struct vrrp_adv a = {.vrid = 1, .priority = 1, .max_adv_cs = 4096, .naddrs = 1};
    ck_assert_uint_eq(vrrp_packet_build(msg, sizeof(msg), &a, SRC, DST), 0); /* 12 bits */
    a.max_adv_cs = 100;
    a.naddrs = 0;
    ck_assert_uint_eq(vrrp_packet_build(msg, sizeof(msg), &a, SRC, DST), 0);
    a.naddrs = 20;
    ck_assert_uint_eq(vrrp_packet_build(msg, sizeof(msg), &a, SRC, DST), 0); /* too small */
}
END_TEST

struct mutation {
    const char *what;
    int offset; /* byte of the VRRP message to overwrite, -1: none */
    uint8_t value;
    uint8_t ttl, proto;
    int trim;  /* bytes cut off the end */
    int extra; /* bytes added at the end (inside the IP length) */
    enum vrrp_parse_result want;
};

START_TEST(every_rejection_rule)
{
    static const struct mutation cases[] = {
        {"ttl 64", -1, 0, 64, VRRP_PROTO, 0, 0, VRRP_ERR_TTL},
        {"ttl 254", -1, 0, 254, VRRP_PROTO, 0, 0, VRRP_ERR_TTL},
        {"protocol 17", -1, 0, 255, 17, 0, 0, VRRP_ERR_NOT_VRRP},
        {"version 2", 0, 0x21, 255, VRRP_PROTO, 0, 0, VRRP_ERR_VERSION},
        {"version 4", 0, 0x41, 255, VRRP_PROTO, 0, 0, VRRP_ERR_VERSION},
        {"type 2", 0, 0x32, 255, VRRP_PROTO, 0, 0, VRRP_ERR_TYPE},
        {"count 0", 3, 0, 255, VRRP_PROTO, 0, 0, VRRP_ERR_COUNT},
        {"count 2, one address", 3, 2, 255, VRRP_PROTO, 0, 0, VRRP_ERR_LENGTH},
        {"count 200", 3, 200, 255, VRRP_PROTO, 0, 0, VRRP_ERR_COUNT},
        {"trailing bytes", -1, 0, 255, VRRP_PROTO, 0, 4, VRRP_ERR_LENGTH},
        {"truncated address", -1, 0, 255, VRRP_PROTO, 2, 0, VRRP_ERR_LENGTH},
        {"truncated header", -1, 0, 255, VRRP_PROTO, 6, 0, VRRP_ERR_TRUNCATED},
        {"checksum flipped", 7, 0x28, 255, VRRP_PROTO, 0, 0, VRRP_ERR_CHECKSUM},
        {"priority changed in flight", 2, 151, 255, VRRP_PROTO, 0, 0, VRRP_ERR_CHECKSUM},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct mutation *m = &cases[i];
        uint8_t msg[64] = {0}, pkt[128];
        size_t len = sample(msg);
        if (m->offset >= 0)
            msg[m->offset] = m->value;
        len = len - (size_t)m->trim + (size_t)m->extra;
        size_t plen = wrap(pkt, msg, len, m->ttl, m->proto, SRC, DST);
        struct vrrp_adv a;
        uint32_t src, dst;
        char why[128] = "";
        enum vrrp_parse_result r = vrrp_packet_parse(pkt, plen, &a, &src, &dst, why, sizeof(why));
        ck_assert_msg(r == m->want, "%s: got %s (%s), want %s", m->what, vrrp_parse_result_names[r],
                      why, vrrp_parse_result_names[m->want]);
        ck_assert_msg(why[0] != '\0', "%s: no reason given", m->what);
    }
}
END_TEST

START_TEST(interval_zero_is_rejected)
{
    uint8_t msg[64], pkt[128];
    struct vrrp_adv a = {
        .vrid = 1, .priority = 100, .max_adv_cs = 0, .naddrs = 1, .addrs = {IP(1, 1, 1, 1)}};
    size_t len = vrrp_packet_build(msg, sizeof(msg), &a, SRC, DST);
    size_t plen = wrap(pkt, msg, len, 255, VRRP_PROTO, SRC, DST);
    uint32_t s, d;
    ck_assert_int_eq(vrrp_packet_parse(pkt, plen, &a, &s, &d, NULL, 0), VRRP_ERR_INTERVAL);
}
END_TEST

START_TEST(short_or_non_ipv4_input)
{
    uint8_t junk[40] = {0x60};
    struct vrrp_adv a;
    uint32_t s, d;
    ck_assert_int_eq(vrrp_packet_parse(junk, 10, &a, &s, &d, NULL, 0), VRRP_ERR_TRUNCATED);
    ck_assert_int_eq(vrrp_packet_parse(junk, 40, &a, &s, &d, NULL, 0), VRRP_ERR_TRUNCATED);
    junk[0] = 0x4f; /* IHL 60 > length */
    ck_assert_int_eq(vrrp_packet_parse(junk, 40, &a, &s, &d, NULL, 0), VRRP_ERR_TRUNCATED);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("vrrp_packet");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, known_answer_checked_by_wireshark);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, builder_refuses_what_cannot_be_sent);
    tcase_add_test(tc, every_rejection_rule);
    tcase_add_test(tc, interval_zero_is_rejected);
    tcase_add_test(tc, short_or_non_ipv4_input);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
