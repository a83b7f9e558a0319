/* test_pool.c -- balancing choices (lbd/pool.c). */
#include "check_main.h"
#include "pool.h"

#include <string.h>

static struct pool_node nodes[4];

static void setup_pool(struct pool *p, enum pool_balance b, const uint32_t *weights, size_t n)
{
    memset(p, 0, sizeof(*p));
    memset(nodes, 0, sizeof(nodes));
    p->balance = b;
    for (size_t i = 0; i < n; i++) {
        nodes[i].weight = weights[i];
        nodes[i].state = NODE_UP;
        p->nodes[i] = &nodes[i];
    }
    p->n = n;
}

START_TEST(roundrobin_spreads_evenly)
{
    struct pool p;
    const uint32_t w[] = {1, 1, 1};
    setup_pool(&p, POOL_ROUNDROBIN, w, 3);
    int counts[3] = {0};
    for (int i = 0; i < 300; i++)
        counts[pool_pick(&p, 0, (uint64_t)i)]++;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(counts[i], 100);
}
END_TEST

START_TEST(roundrobin_honours_weights_smoothly)
{
    struct pool p;
    const uint32_t w[] = {5, 1, 1};
    setup_pool(&p, POOL_ROUNDROBIN, w, 3);
    int counts[3] = {0}, run = 0, max_run = 0, last = -1;
    for (int i = 0; i < 70; i++) {
        int k = pool_pick(&p, 0, 0);
        counts[k]++;
        run = k == last ? run + 1 : 1;
        max_run = run > max_run ? run : max_run;
        last = k;
    }
    ck_assert_int_eq(counts[0], 50);
    ck_assert_int_eq(counts[1], 10);
    ck_assert_int_eq(counts[2], 10);
    ck_assert_msg(max_run <= 4, "weighted picks came in a burst of %d", max_run);
}
END_TEST

START_TEST(down_draining_full_and_tried_are_skipped)
{
    struct pool p;
    const uint32_t w[] = {1, 1, 1, 1};
    setup_pool(&p, POOL_ROUNDROBIN, w, 4);
    nodes[0].state = NODE_DOWN;
    nodes[1].state = NODE_DRAINING;
    nodes[2].max_sessions = 2;
    nodes[2].active = 2;
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(pool_pick(&p, 0, 0), 3);
    ck_assert_int_eq(pool_pick(&p, 1ULL << 3, 0), -1);
    ck_assert_uint_eq(pool_count_eligible(&p), 1);
    nodes[3].weight = 0;
    ck_assert_int_eq(pool_pick(&p, 0, 0), -1);
}
END_TEST

/* An operator's drain or disable takes a healthy node out of the choice for every
 * balance; only a drain counts as draining (its sessions close at idle). */
START_TEST(admin_drain_and_disabled_are_skipped)
{
    struct pool p;
    const uint32_t w[] = {1, 1, 1};
    for (int b = POOL_ROUNDROBIN; b <= POOL_P2C; b++) {
        setup_pool(&p, (enum pool_balance)b, w, 3);
        nodes[0].admin = NODE_ADMIN_DRAIN;
        nodes[1].admin = NODE_ADMIN_DISABLED;
        for (int i = 0; i < 20; i++)
            ck_assert_int_eq(pool_pick(&p, 0, (uint64_t)i * 7919), 2);
        ck_assert_uint_eq(pool_count_eligible(&p), 1);
        ck_assert(pool_node_draining(&nodes[0]));
        ck_assert(!pool_node_draining(&nodes[1]));
        ck_assert(!pool_node_draining(&nodes[2]));
        nodes[2].state = NODE_DRAINING;
        ck_assert(pool_node_draining(&nodes[2]));
        ck_assert_int_eq(pool_pick(&p, 0, 0), -1);
        nodes[2].state = NODE_UP;
        nodes[0].admin = NODE_ADMIN_READY;
        ck_assert_uint_eq(pool_count_eligible(&p), 2);
    }
    ck_assert_str_eq(node_admin_name(NODE_ADMIN_DRAIN), "drain");
    ck_assert_str_eq(node_admin_name(NODE_ADMIN_DISABLED), "disabled");
}
END_TEST

START_TEST(leastconn_takes_the_lightest_per_weight)
{
    struct pool p;
    const uint32_t w[] = {1, 2, 1};
    setup_pool(&p, POOL_LEASTCONN, w, 3);
    nodes[0].active = 3;
    nodes[1].active = 4; /* 2 per weight unit */
    nodes[2].active = 5;
    for (uint64_t r = 0; r < 10; r++)
        ck_assert_int_eq(pool_pick(&p, 0, r), 1);
    ck_assert_int_eq(pool_pick(&p, 1ULL << 1, 0), 0);
}
END_TEST

START_TEST(p2c_never_picks_the_heaviest_of_three)
{
    struct pool p;
    const uint32_t w[] = {1, 1, 1};
    setup_pool(&p, POOL_P2C, w, 3);
    nodes[0].active = 10;
    nodes[1].active = 0;
    nodes[2].active = 5;
    uint64_t r = 88172645463325252ULL;
    int counts[3] = {0};
    for (int i = 0; i < 3000; i++) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        counts[pool_pick(&p, 0, r)]++;
    }
    ck_assert_int_eq(counts[0], 0);
    ck_assert_int_gt(counts[1], counts[2]);
}
END_TEST

START_TEST(p2c_with_one_node_left)
{
    struct pool p;
    const uint32_t w[] = {1, 1};
    setup_pool(&p, POOL_P2C, w, 2);
    nodes[0].state = NODE_DOWN;
    for (uint64_t r = 0; r < 100; r++)
        ck_assert_int_eq(pool_pick(&p, 0, r * 7919), 1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, roundrobin_spreads_evenly);
    tcase_add_test(tc, roundrobin_honours_weights_smoothly);
    tcase_add_test(tc, down_draining_full_and_tried_are_skipped);
    tcase_add_test(tc, admin_drain_and_disabled_are_skipped);
    tcase_add_test(tc, leastconn_takes_the_lightest_per_weight);
    tcase_add_test(tc, p2c_never_picks_the_heaviest_of_three);
    tcase_add_test(tc, p2c_with_one_node_left);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
