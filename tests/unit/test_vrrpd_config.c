/* test_vrrpd_config.c -- vrrpd's configuration section (vrrpd/vrrpd_config.c). */
#include "check_main.h"
#include "vrrpd_config.h"

#include <string.h>

static struct vrrpd_config cfg;

START_TEST(good_config)
{
    char err[1024];
    const char *text = "instance: lb1\n"
                       "lbd: {anything: lbd's business}\n"
                       "vrrp:\n"
                       "  interface: eth0\n"
                       "  unicast_peers: [10.0.0.12]\n"
                       "  track: {link: true, lbd: {socket: /run/l.sock, interval: 50ms}}\n"
                       "  groups:\n"
                       "    - {vrid: 51, priority: 150, interval: 100ms, vips: [10.0.0.100]}\n"
                       "    - {vrid: 52, interval: 20ms, preempt: false, vips: 10.0.0.101}\n";
    int rc = vrrpd_config_load_string("lb1.yaml", text, &cfg, err, sizeof(err));
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_str_eq(cfg.interface, "eth0");
    ck_assert_uint_eq(cfg.n_peers, 1);
    ck_assert_uint_eq(cfg.n_groups, 2);
    ck_assert_uint_eq(cfg.groups[0].priority, 150);
    ck_assert_uint_eq(cfg.groups[1].priority, 100); /* default */
    ck_assert(cfg.groups[0].preempt);               /* default on */
    ck_assert(!cfg.groups[1].preempt);
    ck_assert_uint_eq(cfg.groups[1].interval_ms, 20);
    ck_assert_uint_eq(cfg.groups[1].vips[0], 0x0a000065);
    ck_assert_str_eq(cfg.track_lbd, "/run/l.sock");
    ck_assert_uint_eq(cfg.track_lbd_interval_ms, 50);
    ck_assert_int_eq(cfg.track_lbd_action, VRRPD_TRACK_FAULT);
    ck_assert_uint_eq(cfg.peer_watch_port, 5798); /* default on */
    /* IPv6 VIPs ride with the IPv4 ones: kept apart, never in the adverts' list. */
    text = "vrrp: {interface: eth0, groups: [{vrid: 1, vips: [\"fd77::100\", 10.0.0.1, "
           "\"2001:db8::7\"]}]}\n";
    rc = vrrpd_config_load_string("lb1.yaml", text, &cfg, err, sizeof(err));
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_uint_eq(cfg.groups[0].n_vips, 1);
    ck_assert_uint_eq(cfg.groups[0].vips[0], 0x0a000001);
    ck_assert_uint_eq(cfg.groups[0].n_vips6, 2);
    ck_assert_uint_eq(cfg.groups[0].vips6[0].s6_addr[0], 0xfd);
    ck_assert_uint_eq(cfg.groups[0].vips6[0].s6_addr[15], 0x00);
    ck_assert_uint_eq(cfg.groups[0].vips6[0].s6_addr[14], 0x01);
    ck_assert_uint_eq(cfg.groups[0].vips6[1].s6_addr[1], 0x01);
    ck_assert_uint_eq(cfg.groups[0].vips6[1].s6_addr[15], 0x07);
    text = "vrrp: {interface: eth0, peer_watch: off, groups: [{vrid: 1, vips: 10.0.0.1}]}\n";
    rc = vrrpd_config_load_string("lb1.yaml", text, &cfg, err, sizeof(err));
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_uint_eq(cfg.peer_watch_port, 0);
    text = "vrrp: {interface: eth0, peer_watch: 7000, groups: [{vrid: 1, vips: 10.0.0.1}]}\n";
    rc = vrrpd_config_load_string("lb1.yaml", text, &cfg, err, sizeof(err));
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_uint_eq(cfg.peer_watch_port, 7000);
}
END_TEST

START_TEST(errors_point_at_the_mistake)
{
    static const struct {
        const char *text, *expect;
    } cases[] = {
        {"vrrp:\n  interface: eth0\n  groups:\n    - {vrid: 1, vips: [10.0.0.1]}\n"
         "    - {vrid: 1, vips: [10.0.0.2]}\n",
         "x.yaml:5:7: vrrp.groups[1]: vrid 1 is used by groups[0] too"},
        {"vrrp:\n  interface: eth0\n  groups:\n    - {vrid: 1, vips: [10.0.0.1]}\n"
         "    - {vrid: 2, vips: [10.0.0.1]}\n",
         "vrrp.groups[1]: a VIP is in groups[0] too"},
        {"vrrp:\n  interface: eth0\n  groups:\n    - {vrid: 1, interval: 15ms, vips: [10.0.0.1]}\n",
         "x.yaml:4:27: vrrp.groups[0].interval: 15ms is not a whole number of centiseconds"},
        {"vrrp:\n  interface: eth0\n  groups:\n    - {vrid: 1, vips: [10.0.0.1, \"fe80::1\"]}\n",
         "x.yaml:4:34: vrrp.groups[0].vips[1]: \"fe80::1\" is not a global or unique local "
         "unicast IPv6 address"},
        {"vrrp:\n  interface: eth0\n  groups:\n    - {vrid: 1, vips: [\"fd00::1\"]}\n",
         "vrrp.groups[0].vips: IPv6 addresses move with a group's IPv4 ones, and this group has "
         "none"},
        {"vrrp:\n  interface: eth0\n  groups:\n    - {vrid: 1, vips: [10.0.0.1, \"fd00::1\", "
         "\"fd00:0::1\"]}\n",
         "vrrp.groups[0].vips[2]: address repeated"},
        {"vrrp:\n  interface: eth0\n  groups:\n    - {vrid: 1, vips: [10.0.0.1, \"fd00::1\"]}\n"
         "    - {vrid: 2, vips: [10.0.0.2, \"fd00::1\"]}\n",
         "vrrp.groups[1]: a VIP is in groups[0] too"},
        {"vrrp:\n  interface: eth0\n  unicast_peers: [\"fd00::2\"]\n  groups:\n    - {vrid: 1, "
         "vips: [10.0.0.1]}\n",
         "x.yaml:3:19: vrrp.unicast_peers[0]: IPv6 (\"fd00::2\") is not supported yet"},
        {"vrrp:\n  interface: eth0\n  groups:\n    - {vrid: 256, vips: [10.0.0.1]}\n",
         "vrrp.groups[0].vrid: 256 is out of range; expected 1 to 255"},
        {"vrrp:\n  interface: eth0\n  groups:\n    - {vrid: 1, vips: [224.0.0.18]}\n",
         "\"224.0.0.18\" is not a unicast address"},
        {"vrrp:\n  groups:\n    - {vrid: 1, vips: [10.0.0.1]}\n",
         "x.yaml:2:3: vrrp: missing required key \"interface\""},
        {"vrrp:\n  interface: eth0\n  groups:\n    - {vrid: 1}\n",
         "vrrp.groups[0]: missing required key \"vips\""},
        {"vrrp:\n  interface: eth0\n  track: {lbd: {socket: /x, interval: 1s, timeout: 100ms}}\n"
         "  groups:\n    - {vrid: 1, vips: [10.0.0.1]}\n",
         "vrrp.track.lbd: timeout must be at least the interval"},
        {"vrrp:\n  interface: eth0\n  groups:\n    - {vrid: 1, vips: [10.0.0.1], prio: 5}\n",
         "unknown key \"prio\" (did you mean \"priority\"?)"},
        {"vrrp:\n  interface: eth0\n  peer_watch: 70000\n  groups:\n    - {vrid: 1, vips: "
         "[10.0.0.1]}\n",
         "x.yaml:3:15: vrrp.peer_watch: expected a TCP port (1-65535) or off, got \"70000\""},
        {"vrrp:\n  interface: eth0\n  peer_watch: [1]\n  groups:\n    - {vrid: 1, vips: "
         "[10.0.0.1]}\n",
         "vrrp.peer_watch: expected a TCP port (1-65535) or off, got \"a list or mapping\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[1024] = "";
        int rc = vrrpd_config_load_string("x.yaml", cases[i].text, &cfg, err, sizeof(err));
        ck_assert_msg(rc != 0, "case %zu accepted", i);
        ck_assert_msg(strstr(err, cases[i].expect) != NULL, "case %zu: got \"%s\", want \"%s\"", i,
                      err, cases[i].expect);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("vrrpd_config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, good_config);
    tcase_add_test(tc, errors_point_at_the_mistake);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
