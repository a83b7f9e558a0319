/* test_lbd_config.c -- lbd's configuration section (lbd/lbd_config.c). */
#include "check_main.h"
#include "lbd_config.h"
#include "parse.h"

#include <string.h>

static struct lbd_config cfg;

static const char *good =
    "instance: lb1\n"
    "lbd:\n"
    "  listen: [10.0.0.100:26257, 10.0.0.101:26257]\n"
    "  admin: 127.0.0.1:8081\n"
    "  maxconn: 500\n"
    "  timeouts: {connect: 500ms, startup: 5s, client_idle: 0, drain: 10s}\n"
    "  peer: {address: 10.0.0.12:5433, listen: 10.0.0.11:5433}\n"
    "  pool:\n"
    "    balance: leastconn\n"
    "    cancel_unknown: one\n"
    "    reuse: {max_idle: 8, idle: 5s}\n"
    "    health: {type: http, interval: 1s, timeout: 500ms, rise: 2, fall: 2}\n"
    "    nodes:\n"
    "      - {name: roach1, address: 10.0.0.1:26257, check_port: 8080, weight: 2}\n"
    "      - {address: 10.0.0.2:26257}\n"
    "vrrp:\n"
    "  anything: here is vrrpd's business\n";

START_TEST(good_config)
{
    char err[1024];
    int rc = lbd_config_load_string("lb1.yaml", good, &cfg, err, sizeof(err));
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_str_eq(cfg.instance, "lb1");
    ck_assert_uint_eq(cfg.n_listen, 2);
    ck_assert_uint_eq(cfg.maxconn, 500);
    ck_assert_uint_eq(cfg.connect_ms, 500);
    ck_assert_uint_eq(cfg.drain_ms, 10000);
    ck_assert(cfg.has_peer && cfg.has_peer_listen);
    ck_assert_int_eq(cfg.balance, POOL_LEASTCONN);
    ck_assert_int_eq(cfg.cancel_unknown, LBD_CANCEL_ONE);
    ck_assert_uint_eq(cfg.reuse_max_idle, 8);
    ck_assert_uint_eq(cfg.reuse_idle_ms, 5000);
    ck_assert_int_eq(cfg.check_type, LBD_CHECK_HTTP);
    ck_assert_uint_eq(cfg.n_nodes, 2);
    ck_assert_str_eq(cfg.nodes[0].name, "roach1");
    ck_assert_uint_eq(cfg.nodes[0].weight, 2);
    ck_assert_str_eq(cfg.nodes[1].name, "10.0.0.2:26257"); /* named after its address */
    ck_assert_uint_eq(cfg.nodes[1].weight, 1);
}
END_TEST

START_TEST(defaults)
{
    char err[1024];
    int rc = lbd_config_load_string(
        "m.yaml", "lbd:\n  listen: 0.0.0.0:5432\n  pool:\n    nodes: [{address: 10.0.0.1}]\n", &cfg,
        err, sizeof(err));
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_uint_eq(cfg.client_idle_ms, 0); /* no idle timeout unless asked */
    ck_assert_uint_eq(cfg.server_idle_ms, 0);
    ck_assert_int_eq(cfg.check_type, LBD_CHECK_PG);
    ck_assert_uint_eq(cfg.rise, 2);
    ck_assert_uint_eq(cfg.fall, 3);
    ck_assert_uint_eq(cfg.reuse_max_idle, 0); /* no reuse unless asked */
    ck_assert_uint_eq(cfg.reuse_idle_ms, 30000);
    ck_assert_int_eq(sockaddr_port((struct sockaddr *)&cfg.nodes[0].addr), 5432);
    ck_assert(cfg.admin_enabled);
    /* The front door is bounded by default (docs/abuse-model.md). */
    ck_assert_int_eq(cfg.cancel_unknown, LBD_CANCEL_ONE); /* at most one place */
    ck_assert_uint_gt(cfg.cancel_inflight, 0);
    ck_assert_uint_gt(cfg.cancel_rate, 0);
    ck_assert_uint_gt(cfg.cancel_source_rate, 0);
    ck_assert_uint_le(cfg.cancel_source_rate, cfg.cancel_rate);
    ck_assert_uint_gt(cfg.cancel_window_ms, 0);
    ck_assert_uint_gt(cfg.startup_per_source, 0);
    ck_assert_uint_lt(cfg.startup_per_source, cfg.maxconn);
}
END_TEST

struct bad_case {
    const char *text, *expect;
};

START_TEST(errors_point_at_the_mistake)
{
    static const struct bad_case cases[] = {
        {"lbd:\n  listen: 1.2.3.4:5\n  pool:\n    nodes: []\n",
         "x.yaml:4:12: lbd.pool.nodes: needs at least one node"},
        {"lbd:\n  listen: 1.2.3.4:5\n  pool:\n    nodes:\n      - {address: 1.1.1.1:5}\n"
         "      - {address: 1.1.1.1:5}\n",
         "x.yaml:6:9: lbd.pool.nodes[1]: address of node \"1.1.1.1:5\" repeats node"},
        {"lbd:\n  listen: 1.2.3.4:5\n  pool:\n    nodes:\n      - {name: a, address: 1.1.1.1}\n"
         "      - {name: a, address: 1.1.1.2}\n",
         "lbd.pool.nodes[1]: node name \"a\" is used twice"},
        {"lbd:\n  listen: 1.2.3.4:5\n  pool:\n    balance: random\n    nodes: [{address: "
         "1.1.1.1}]\n",
         "x.yaml:4:14: lbd.pool.balance: \"random\" is not a valid choice; expected one of: "
         "roundrobin, leastconn, p2c"},
        /* The kernel relay was removed (docs/kernel-relay.md): said where, not ignored. */
        {"lbd:\n  listen: 1.2.3.4:5\n  relay: kernel\n  pool:\n    nodes: [{address: 1.1.1.1}]\n",
         "x.yaml:3:10: lbd.relay: \"kernel\" is not a valid choice; expected one of: auto, user"},
        {"lbd:\n  listen: 1.2.3.4:5\n  pool:\n    health: {interval: 1s, timeout: 2s}\n"
         "    nodes: [{address: 1.1.1.1}]\n",
         "lbd.pool.health: timeout (2000ms) must not exceed interval (1000ms)"},
        {"lbd:\n  listen: 1.2.3.4:5\n  peer: {address: 1.1.1.1}\n  pool:\n"
         "    nodes: [{address: 1.1.1.1}]\n",
         "lbd.peer: needs both address"},
        /* The other lbd's client port as the peer: a forwarded cancel would bounce. */
        {"lbd:\n  listen: [10.0.0.100:5432, 10.0.0.101:5432]\n"
         "  peer: {address: 10.0.0.12:5432, listen: 10.0.0.11:5433}\n  pool:\n"
         "    nodes: [{address: 1.1.1.1}]\n",
         "x.yaml:3:19: lbd.peer.address: the peer lbd's cancel listener (its peer.listen): not on "
         "a port the pair listens on for clients"},
        {"lbd:\n  listen: 1.2.3.4:5\n  peer: {address: 10.0.0.11:5433, listen: 10.0.0.11:5433}\n"
         "  pool:\n    nodes: [{address: 1.1.1.1}]\n",
         "and not our own peer.listen"},
        {"lbd:\n  listen: 1.2.3.4:5\n  limits: {cancel_window: 2m}\n  pool:\n"
         "    nodes: [{address: 1.1.1.1}]\n",
         "lbd.limits.cancel_window"},
        {"lbd:\n  listen: 1.2.3.4:5\n", "x.yaml:2:3: lbd: missing required key \"pool\""},
        {"lbd:\n  listn: 1.2.3.4:5\n", "unknown key \"listn\" (did you mean \"listen\"?)"},
        {"lbdd: {}\n", "x.yaml:1:1: (top): unknown key \"lbdd\" (did you mean \"lbd\"?)"},
        {"lbd:\n  listen: 1.2.3.4:5\n  timeouts: {connect: forever}\n  pool:\n"
         "    nodes: [{address: 1.1.1.1}]\n",
         "x.yaml:3:23: lbd.timeouts.connect: expected a duration"},
        {"lbd:\n  listen: 1.2.3.4:5\n  pool:\n    nodes: [{address: 1.1.1.1, weight: -1}]\n",
         "lbd.pool.nodes[0].weight: expected a whole number from 0 to 1000"},
        {"lbd:\n  listen: 1.2.3.4:5\n  pool:\n    reuse: {max_idle: 20000}\n"
         "    nodes: [{address: 1.1.1.1}]\n",
         "x.yaml:4:23: lbd.pool.reuse.max_idle: 20000 is out of range; expected 0 to 10000"},
        {"lbd:\n  listen: 1.2.3.4:5\n  pool:\n    reuse: {max: 4}\n"
         "    nodes: [{address: 1.1.1.1}]\n",
         "lbd.pool.reuse: unknown key \"max\""},
        /* The sections against each other (203.0.113.0/24, TEST-NET-3, is on no host). */
        {"lbd:\n  listen: [203.0.113.100:5432, 203.0.113.9:5432]\n  pool:\n"
         "    nodes: [{address: 1.1.1.1}]\nvrrp:\n  groups:\n    - {vrid: 1, vips: "
         "[203.0.113.100]}\n",
         "x.yaml:2:11: lbd.listen: 203.0.113.9:5432 is in no vrrp group's vips"},
        {"lbd:\n  listen: 203.0.113.100:5432\n  liveness_socket: /run/a.sock\n  pool:\n"
         "    nodes: [{address: 1.1.1.1}]\nvrrp:\n  track: {lbd: {socket: /run/b.sock}}\n",
         "x.yaml:7:25: vrrp.track.lbd.socket: \"/run/b.sock\" is not lbd.liveness_socket "
         "(/run/a.sock)"},
        {"lbd:\n  listen: 1.2.3.4:5\n  control: {socket: run/ctl.sock}\n  pool:\n"
         "    nodes: [{address: 1.1.1.1}]\n",
         "x.yaml:3:21: lbd.control.socket: an absolute path shorter than 108 bytes, or off"},
        {"lbd:\n  listen: 1.2.3.4:5\n  control: {mode: 0999}\n  pool:\n"
         "    nodes: [{address: 1.1.1.1}]\n",
         "x.yaml:3:19: lbd.control.mode: an octal file mode such as 0660"},
        {"lbd:\n  listen: 1.2.3.4:5\n  control: {operators: no-such-group-here}\n  pool:\n"
         "    nodes: [{address: 1.1.1.1}]\n",
         "x.yaml:3:24: lbd.control.operators: no group \"no-such-group-here\" on this host"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[1024] = "";
        int rc = lbd_config_load_string("x.yaml", cases[i].text, &cfg, err, sizeof(err));
        ck_assert_msg(rc != 0, "case %zu accepted", i);
        ck_assert_msg(strstr(err, cases[i].expect) != NULL, "case %zu: got \"%s\", want \"%s\"", i,
                      err, cases[i].expect);
    }
}
END_TEST

/* The control socket: on by default at its path, off by "off", the mode read as octal. */
START_TEST(control_socket)
{
    char err[1024];
    const char *base = "lbd:\n  listen: 1.2.3.4:5\n  pool:\n    nodes: [{address: 1.1.1.1}]\n";
    ck_assert_int_eq(lbd_config_load_string("c.yaml", base, &cfg, err, sizeof(err)), 0);
    ck_assert_str_eq(cfg.control.socket, LBD_CONTROL_SOCKET);
    ck_assert(!cfg.control.socket_set);
    ck_assert_uint_eq(cfg.control.mode, 0660);
    char text[512];
    snprintf(text, sizeof(text), "%s  control: {socket: off}\n", base);
    ck_assert_int_eq(lbd_config_load_string("c.yaml", text, &cfg, err, sizeof(err)), 0);
    ck_assert_str_eq(cfg.control.socket, "");
    snprintf(text, sizeof(text),
             "%s  control: {socket: /tmp/x.sock, mode: \"0600\", group: root}\n", base);
    ck_assert_msg(lbd_config_load_string("c.yaml", text, &cfg, err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(cfg.control.socket, "/tmp/x.sock");
    ck_assert(cfg.control.socket_set);
    ck_assert_uint_eq(cfg.control.mode, 0600);
    ck_assert_str_eq(cfg.control.group, "root");
}
END_TEST

/* One run names every mistake of a file, each with its place, the first first. */
START_TEST(every_error_in_one_run)
{
    static const char *text = "lbd:\n"
                              "  listn: 1.2.3.4:5\n"
                              "  listen: 1.2.3.4:5\n"
                              "  timeouts: {connect: forever, drain: 1s}\n"
                              "  pool:\n"
                              "    nodes: [{address: 1.1.1.1, weight: -1}]\n";
    char err[4096] = "";
    ck_assert_int_ne(lbd_config_load_string("x.yaml", text, &cfg, err, sizeof(err)), 0);
    const char *want[] = {"x.yaml:2:3: lbd: unknown key \"listn\"",
                          "x.yaml:4:23: lbd.timeouts.connect: expected a duration",
                          "lbd.pool.nodes[0].weight: expected a whole number from 0 to 1000"};
    const char *at = err;
    for (size_t i = 0; i < 3; i++) {
        const char *p = strstr(at, want[i]);
        ck_assert_msg(p != NULL, "error %zu (%s) missing or out of order in:\n%s", i, want[i], err);
        at = p;
    }
    ck_assert_ptr_null(strstr(err, "missing required key")); /* listen was there */
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("lbd_config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, good_config);
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, errors_point_at_the_mistake);
    tcase_add_test(tc, every_error_in_one_run);
    tcase_add_test(tc, control_socket);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
