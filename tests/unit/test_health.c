/* test_health.c -- rise/fall damping (lbd/health.c). */
#include "check_main.h"
#include "health.h"

START_TEST(starts_up_and_one_failure_from_down)
{
    struct health_state h;
    health_init(&h, 2, 3);
    ck_assert(h.up);
    ck_assert_int_eq(health_feed(&h, false), HEALTH_WENT_DOWN);
}
END_TEST

START_TEST(fall_needs_consecutive_failures)
{
    struct health_state h;
    health_init(&h, 2, 3);
    ck_assert_int_eq(health_feed(&h, true), HEALTH_SAME); /* checked: no more shortcut */
    ck_assert_int_eq(h.fail_run, 0);
    ck_assert_int_eq(health_feed(&h, false), HEALTH_SAME);
    ck_assert_int_eq(health_feed(&h, false), HEALTH_SAME);
    ck_assert_int_eq(health_feed(&h, true), HEALTH_SAME); /* the run resets */
    ck_assert_int_eq(health_feed(&h, false), HEALTH_SAME);
    ck_assert_int_eq(health_feed(&h, false), HEALTH_SAME);
    ck_assert_int_eq(health_feed(&h, false), HEALTH_WENT_DOWN);
    ck_assert(!h.up);
    ck_assert_int_eq(health_feed(&h, false), HEALTH_SAME);
}
END_TEST

START_TEST(rise_needs_consecutive_successes)
{
    struct health_state h;
    health_init(&h, 3, 1);
    ck_assert_int_eq(health_feed(&h, false), HEALTH_WENT_DOWN);
    ck_assert_int_eq(health_feed(&h, true), HEALTH_SAME);
    ck_assert_int_eq(health_feed(&h, true), HEALTH_SAME);
    ck_assert_int_eq(health_feed(&h, false), HEALTH_SAME); /* a flap resets */
    ck_assert_int_eq(health_feed(&h, true), HEALTH_SAME);
    ck_assert_int_eq(health_feed(&h, true), HEALTH_SAME);
    ck_assert_int_eq(health_feed(&h, true), HEALTH_WENT_UP);
    ck_assert(h.up);
}
END_TEST

START_TEST(flapping_node_stays_down)
{
    struct health_state h;
    health_init(&h, 2, 2);
    health_feed(&h, false);
    health_feed(&h, false);
    ck_assert(!h.up);
    for (int i = 0; i < 20; i++) /* ok, fail, ok, fail ... never two oks in a row */
        ck_assert_int_eq(health_feed(&h, i % 2 == 0), HEALTH_SAME);
    ck_assert(!h.up);
}
END_TEST

START_TEST(retune_keeps_state)
{
    struct health_state h;
    health_init(&h, 2, 2);
    health_feed(&h, false);
    health_feed(&h, false);
    health_retune(&h, 1, 5);
    ck_assert(!h.up);
    ck_assert_int_eq(health_feed(&h, true), HEALTH_WENT_UP);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("health");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, starts_up_and_one_failure_from_down);
    tcase_add_test(tc, fall_needs_consecutive_failures);
    tcase_add_test(tc, rise_needs_consecutive_successes);
    tcase_add_test(tc, flapping_node_stays_down);
    tcase_add_test(tc, retune_keeps_state);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
