/* test_keymap.c -- cancel-key lookup (lbd/keymap.c). */
#include "check_main.h"
#include "keymap.h"

#include <stdlib.h>

START_TEST(add_find_remove)
{
    struct keymap m;
    ck_assert_int_eq(keymap_init(&m), 0);
    struct keymap_entry a = {0}, b = {0};
    keymap_add(&m, &a, 100, 1);
    keymap_add(&m, &b, 100, 2); /* same pid, other key */
    ck_assert_ptr_eq(keymap_find(&m, 100, 1), &a);
    ck_assert_ptr_eq(keymap_find(&m, 100, 2), &b);
    ck_assert_ptr_null(keymap_find(&m, 100, 3));
    keymap_remove(&m, &a);
    ck_assert_ptr_null(keymap_find(&m, 100, 1));
    keymap_remove(&m, &a); /* twice is harmless */
    ck_assert_uint_eq(m.count, 1);
    keymap_free(&m);
}
END_TEST

START_TEST(grows_and_keeps_every_entry)
{
    struct keymap m;
    keymap_init(&m);
    size_t n = 5000;
    struct keymap_entry *e = calloc(n, sizeof(*e));
    for (size_t i = 0; i < n; i++)
        keymap_add(&m, &e[i], (uint32_t)i, (uint32_t)(i * 2654435761u));
    ck_assert_uint_ge(m.nbuckets, 4096);
    for (size_t i = 0; i < n; i++)
        ck_assert_ptr_eq(keymap_find(&m, (uint32_t)i, (uint32_t)(i * 2654435761u)), &e[i]);
    for (size_t i = 0; i < n; i += 2)
        keymap_remove(&m, &e[i]);
    ck_assert_uint_eq(m.count, n / 2);
    ck_assert_ptr_null(keymap_find(&m, 0, 0));
    ck_assert_ptr_eq(keymap_find(&m, 1, 2654435761u), &e[1]);
    keymap_free(&m);
    free(e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("keymap");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, add_find_remove);
    tcase_add_test(tc, grows_and_keeps_every_entry);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
