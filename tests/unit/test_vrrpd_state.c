/* test_vrrpd_state.c -- lbd reads vrrpd's state file with a parser (lbd/vrrpd_state.c):
 * what vrrpd itself writes (vrrpd_render_state, vrrpd/vrrpd_status.c) parses, and what is
 * not vrrpd's JSON is refused with the reason. */
#include "vrrpd.h"
#include "vrrpd_state.h"

#include "clock.h"
#include "metrics.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

START_TEST(vrrpds_own_state_round_trips)
{
    static struct vrrpd d; /* (large: not on the stack) */
    memset(&d, 0, sizeof(d));
    snprintf(d.cfg.instance, sizeof(d.cfg.instance), "lb\"1");
    snprintf(d.cfg.interface, sizeof(d.cfg.interface), "eth0");
    d.n_groups = 1;
    d.groups[0].d = &d;
    d.groups[0].cfg.vrid = 51;
    d.groups[0].cfg.priority = 150;
    d.groups[0].cfg.n_vips = 1;
    d.groups[0].cfg.vips[0] = 0x0a000064;
    /* A transition whose reason looks like the fields read: only the top level counts. */
    d.groups[0].history_next = 1;
    snprintf(d.groups[0].history[0].reason, sizeof(d.groups[0].history[0].reason),
             "\"running\":false,\"pid\":1,\"updated_ms\":2 {[\\");
    struct metrics_buf m;
    metrics_init(&m);
    uint64_t before = clock_wall_ms();
    vrrpd_render_state(&d, &m);
    ck_assert_int_eq(m.failed, 0);
    struct vrrpd_state_info st;
    char why[512] = "";
    ck_assert_msg(vrrpd_state_parse("state.json", m.data, &st, why, sizeof(why)) == 0, "%s", why);
    ck_assert_int_eq(st.pid, getpid());
    ck_assert(st.running);
    ck_assert_int_ge(st.updated_ms, (long long)before);
    ck_assert_int_le(st.updated_ms, (long long)clock_wall_ms());
    d.stopping = true;
    m.len = 0;
    vrrpd_render_state(&d, &m);
    ck_assert_int_eq(vrrpd_state_parse("state.json", m.data, &st, why, sizeof(why)), 0);
    ck_assert(!st.running);
    metrics_free(&m);
}
END_TEST

START_TEST(not_vrrpds_json_is_refused_with_the_reason)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"{\"daemon\":\"vrrpd\",\"pid\":12,\"updated_ms\":5,\"running\":true", "is not JSON"},
        {"{\"daemon\":\"lbd\",\"pid\":12,\"updated_ms\":5,\"running\":true}", "is not vrrpd's"},
        {"[1, 2]", "is not vrrpd's"},
        {"{\"daemon\":\"vrrpd\",\"updated_ms\":5,\"running\":true}", "lacks updated_ms, pid"},
        {"{\"daemon\":\"vrrpd\",\"pid\":\"x\",\"updated_ms\":5,\"running\":true}", "lacks"},
        {"{\"daemon\":\"vrrpd\",\"pid\":1,\"updated_ms\":5,\"running\":\"maybe\"}", "lacks"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct vrrpd_state_info st;
        char why[512] = "";
        ck_assert_int_eq(vrrpd_state_parse("s.json", cases[i].text, &st, why, sizeof(why)), -1);
        ck_assert_msg(strstr(why, cases[i].want) != NULL, "case %zu: %s", i, why);
        ck_assert_msg(strstr(why, "s.json") != NULL, "case %zu names no file: %s", i, why);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vrrpd_state");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, vrrpds_own_state_round_trips);
    tcase_add_test(tc, not_vrrpds_json_is_refused_with_the_reason);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
