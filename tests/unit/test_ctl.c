/* test_ctl.c -- the control socket's tables (common/ctl.c): psql's layout, and JSON. */
#include "check_main.h"
#include "ctl.h"

#include <stdlib.h>
#include <string.h>

static char *render(bool json, bool with_rows)
{
    static const char *const cols[] = {"node", "weight", "note"};
    struct ctl_table t;
    struct metrics_buf out;
    ctl_table_init(&t, cols, 3);
    ctl_table_numeric(&t, 1);
    if (with_rows) {
        ctl_table_cell(&t, "%s", "pg1");
        ctl_table_cell(&t, "%d", 10);
        ctl_table_cell(&t, "%s", "a \"quoted\"\ttab");
        ctl_table_cell(&t, "%s", "pg-long");
        ctl_table_cell(&t, "%s", "-");
        ctl_table_cell(&t, "%s", "é");
    }
    metrics_init(&out);
    ctl_table_render(&t, json, &out);
    ctl_table_free(&t);
    ck_assert(!out.failed);
    char *s = strndup(out.data, out.len);
    metrics_free(&out);
    return s;
}

START_TEST(text_like_psql)
{
    char *s = render(false, true);
    ck_assert_str_eq(s, "  node   | weight |      note\n"
                        "---------+--------+----------------\n"
                        " pg1     |     10 | a \"quoted\" tab\n"
                        " pg-long |      - | é\n"
                        "(2 rows)\n");
    free(s);
    s = render(false, false);
    ck_assert_str_eq(s, " node | weight | note\n------+--------+------\n(0 rows)\n");
    free(s);
}
END_TEST

START_TEST(json_objects)
{
    char *s = render(true, true);
    ck_assert_str_eq(s, "[{\"node\":\"pg1\",\"weight\":10,\"note\":\"a \\\"quoted\\\" tab\"},"
                        "{\"node\":\"pg-long\",\"weight\":null,\"note\":\"é\"}]\n");
    free(s);
    s = render(true, false);
    ck_assert_str_eq(s, "[]\n");
    free(s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ctl");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, text_like_psql);
    tcase_add_test(tc, json_objects);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
