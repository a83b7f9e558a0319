/* test_opstate.c -- the operator state files (lbd.control.state_file: lbd/opstate.c;
 * vrrp.control.state_file: vrrpd/vrrpd_opstate.c): what each daemon writes parses back
 * to the same state, odd node names included; a damaged file is refused with
 * file:line:column; and common/statefile.c replaces a file whole. */
#include "opstate.h"
#include "statefile.h"
#include "vrrpd_opstate.h"
#include "check_main.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

START_TEST(what_lbd_writes_parses_back)
{
    static struct opstate in, out;
    memset(&in, 0, sizeof(in));
    /* (the last: line breaks libyaml would fold, a tab, C1 and C0 controls, a BOM, and
     * UTF-8 that stays as it is; the fuzzer found the fold) */
    const char *names[] = {"pg1", "a \"quoted\" \\ name", "node: {x}, - y", "#hash",
                           "a\xe2\x80\xa8"
                           "b\xc2\x85"
                           "c\td\xc2\x9a\x01\xef\xbb\xbf\xc3\xa9\xe6\x97\xa5"};
    for (size_t i = 0; i < 5; i++) {
        struct opstate_node *e = &in.nodes[in.n++];
        snprintf(e->name, sizeof(e->name), "%s", names[i]);
        e->admin = (enum node_admin)(i % 3);
        e->weight_set = i % 2 == 1;
        e->weight = e->weight_set ? (uint32_t)(i * 7) : 0;
        e->file_weight = e->weight_set ? 1000 : 0;
    }
    char text[4096];
    size_t len = opstate_render(&in, text, sizeof(text));
    ck_assert_uint_lt(len, sizeof(text));
    char err[1024] = "";
    ck_assert_msg(opstate_parse("s.yaml", text, &out, err, sizeof(err)) == 0, "%s\n%s", err, text);
    ck_assert_uint_eq(out.n, in.n);
    for (size_t i = 0; i < in.n; i++) {
        ck_assert_str_eq(out.nodes[i].name, in.nodes[i].name);
        ck_assert_int_eq(out.nodes[i].admin, in.nodes[i].admin);
        ck_assert_int_eq(out.nodes[i].weight_set, in.nodes[i].weight_set);
        ck_assert_uint_eq(out.nodes[i].weight, in.nodes[i].weight);
        ck_assert_uint_eq(out.nodes[i].file_weight, in.nodes[i].file_weight);
    }
    ck_assert_ptr_nonnull(opstate_find(&out, "#hash"));
    ck_assert_ptr_null(opstate_find(&out, "pg2"));
    /* A byte that is not UTF-8 (a name given to nodes add) leaves the file readable:
     * it becomes U+FFFD, and every other node's state stays. */
    in.n = 2;
    snprintf(in.nodes[1].name, sizeof(in.nodes[1].name), "x\xffy");
    len = opstate_render(&in, text, sizeof(text));
    ck_assert_msg(opstate_parse("s.yaml", text, &out, err, sizeof(err)) == 0, "%s\n%s", err, text);
    ck_assert_uint_eq(out.n, 2);
    ck_assert_str_eq(out.nodes[0].name, "pg1");
    ck_assert_str_eq(out.nodes[1].name, "x\xef\xbf\xbdy");
    /* Nothing changed: an empty list, which parses too. */
    in.n = 0;
    len = opstate_render(&in, text, sizeof(text));
    ck_assert_msg(opstate_parse("s.yaml", text, &out, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(out.n, 0);
    /* Too small a buffer says so. */
    ck_assert_uint_ge(opstate_render(&in, text, 16), 16);
}
END_TEST

START_TEST(a_damaged_file_is_refused_with_where)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"nodes:\n  - {name: pg1, admin: sleeping}\n", "s.yaml:2:"},
        {"nodes:\n  - {name: pg1, admin: drain, weight: 5}\n",
         "weight and file_weight go together"},
        {"nodes:\n  - {name: pg1, admin: drain}\n  - {name: pg1}\n", "listed twice"},
        {"nodes:\n  - {admin: drain}\n", "name"},
        {"nodes:\n  - {name: pg1, weight: 5000, file_weight: 1}\n", "s.yaml:2:"},
        {"nodes: {name: pg1}\n", "s.yaml:1:"},
        {"nodes:\n  - {name: pg1, admin: drain\n", "s.yaml"},
        {"nodez: []\n", "nodez"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        static struct opstate st;
        char err[1024] = "";
        ck_assert_msg(opstate_parse("s.yaml", cases[i].text, &st, err, sizeof(err)) != 0,
                      "case %zu parsed", i);
        ck_assert_msg(strstr(err, cases[i].want) != NULL, "case %zu: %s", i, err);
    }
}
END_TEST

START_TEST(vrrpds_state_parses_back_and_damage_is_named)
{
    struct vrrpd_opstate in = {.n = 2}, out;
    in.groups[0].vrid = 51;
    in.groups[0].priority = 1;
    in.groups[1].vrid = 255;
    in.groups[1].priority = 254;
    char text[1024], err[1024] = "";
    ck_assert_uint_lt(vrrpd_opstate_render(&in, text, sizeof(text)), sizeof(text));
    ck_assert_msg(vrrpd_opstate_parse("v.yaml", text, &out, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(out.n, 2);
    ck_assert_uint_eq(out.groups[0].vrid, 51);
    ck_assert_uint_eq(out.groups[0].priority, 1);
    ck_assert_uint_eq(out.groups[1].vrid, 255);
    ck_assert_uint_eq(out.groups[1].priority, 254);
    in.n = 0;
    vrrpd_opstate_render(&in, text, sizeof(text));
    ck_assert_msg(vrrpd_opstate_parse("v.yaml", text, &out, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(out.n, 0);
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"groups:\n  - {vrid: 51, priority: 255}\n", "v.yaml:2:"},
        {"groups:\n  - {vrid: 0, priority: 1}\n", "v.yaml:2:"},
        {"groups:\n  - {vrid: 51}\n", "priority"},
        {"groups:\n  - {vrid: 51, priority: 1}\n  - {vrid: 51, priority: 2}\n", "twice"},
        {"groups: 51\n", "v.yaml:1:"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_msg(vrrpd_opstate_parse("v.yaml", cases[i].text, &out, err, sizeof(err)) != 0,
                      "case %zu parsed", i);
        ck_assert_msg(strstr(err, cases[i].want) != NULL, "case %zu: %s", i, err);
    }
}
END_TEST

START_TEST(a_state_file_is_replaced_whole)
{
    char dir[] = "/tmp/opstate-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256], sub[256], err[600] = "";
    snprintf(sub, sizeof(sub), "%s/state", dir);
    snprintf(path, sizeof(path), "%s/lbd.state", sub);
    char *text = (char *)1;
    /* The directory is made (user "": as is); no file yet is 1, not an error. */
    ck_assert_msg(statefile_prepare(path, "", err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(statefile_read(path, &text, err, sizeof(err)), 1);
    ck_assert_ptr_null(text);
    ck_assert_int_eq(statefile_write(path, "one\n", 4, err, sizeof(err)), 0);
    ck_assert_int_eq(statefile_write(path, "two\n", 4, err, sizeof(err)), 0);
    ck_assert_int_eq(statefile_read(path, &text, err, sizeof(err)), 0);
    ck_assert_str_eq(text, "two\n");
    free(text);
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    ck_assert_int_ne(access(tmp, F_OK), 0); /* (renamed, not left behind) */
    /* Missing parents are made too. */
    char deep[300];
    snprintf(deep, sizeof(deep), "%s/a/b/lbd.state", dir);
    ck_assert_msg(statefile_prepare(deep, "", err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(statefile_write(deep, "x", 1, err, sizeof(err)), 0);
    /* A directory that cannot be made, a path that is not a directory: why, in err. */
    char bad[300];
    snprintf(bad, sizeof(bad), "%s/lbd.state/y/lbd.state", sub);
    ck_assert_int_ne(statefile_prepare(bad, "", err, sizeof(err)), 0);
    ck_assert_msg(strstr(err, "cannot make the directory") != NULL, "%s", err);
    snprintf(bad, sizeof(bad), "%s/lbd.state/x", sub);
    ck_assert_int_ne(statefile_prepare(bad, "", err, sizeof(err)), 0);
    ck_assert_msg(strstr(err, "not a directory") != NULL, "%s", err);
    ck_assert_int_ne(statefile_write(bad, "x", 1, err, sizeof(err)), 0);
    ck_assert_msg(strstr(err, "cannot write") != NULL, "%s", err);
    unlink(path);
    unlink(deep);
    snprintf(deep, sizeof(deep), "%s/a/b", dir);
    rmdir(deep);
    snprintf(deep, sizeof(deep), "%s/a", dir);
    rmdir(deep);
    rmdir(sub);
    rmdir(dir);
}
END_TEST

static Suite *opstate_suite(void)
{
    Suite *s = suite_create("opstate");
    TCase *tc = tcase_create("file");
    tcase_add_test(tc, what_lbd_writes_parses_back);
    tcase_add_test(tc, a_damaged_file_is_refused_with_where);
    tcase_add_test(tc, vrrpds_state_parses_back_and_damage_is_named);
    tcase_add_test(tc, a_state_file_is_replaced_whole);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(opstate_suite)
