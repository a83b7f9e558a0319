/* test_cfg.c -- the table-driven YAML loader (common/cfg.c): every error names
 * file:line:column, the key path and what was expected. */
#include "cfg.h"
#include "check_main.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

struct sample {
    char name[16];
    uint32_t count;
    bool on;
    uint64_t wait_ms;
    int mode;
    struct sockaddr_storage addr;
};

static const char *const modes[] = {"fast", "safe", NULL};
static const struct cfg_field inner[] = {
    {"wait", CFG_DURATION, offsetof(struct sample, wait_ms), .min = 0, .max = 60000,
     .doc = "How long."},
    {NULL},
};
static const struct cfg_field fields[] = {
    {"name", CFG_STR, offsetof(struct sample, name), 16, .doc = "A name."},
    {"count", CFG_UINT, offsetof(struct sample, count), .min = 1, .max = 10, .doc = "How many."},
    {"on", CFG_BOOL, offsetof(struct sample, on)},
    {"wait", CFG_DURATION, offsetof(struct sample, wait_ms), .min = 0, .max = 60000},
    {"mode", CFG_ENUM, offsetof(struct sample, mode), .choices = modes},
    {"addr", CFG_ADDR, offsetof(struct sample, addr), .default_port = 5432, .required = true},
    {"sect", CFG_SECTION, .sub = inner, .doc = "A section."},
    {NULL},
};

/* Load text and apply the table; returns rc and leaves the message in err. */
static int load(const char *text, struct sample *out, char *err, size_t size)
{
    struct cfg_doc d;
    memset(out, 0, sizeof(*out));
    int rc = cfg_doc_load_string(&d, "t.yaml", text);
    if (rc == 0)
        rc = cfg_map_apply(&d, cfg_doc_root(&d), "s", fields, out);
    snprintf(err, size, "%s", d.err);
    cfg_doc_free(&d);
    return rc;
}

/* The reference printed for --help and the man pages: types from the table, defaults
 * read from a defaults struct, sections recursed, undocumented keys marked. */
START_TEST(describe_prints_types_real_defaults_and_sections)
{
    struct sample def = {.name = "x", .count = 7, .on = true, .wait_ms = 1500, .mode = 1};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cfg_describe(f, fields, &def, "top", false);
    fclose(f);
    ck_assert_ptr_nonnull(
        strstr(buf, "  top.count\n      integer, 1 to 10; default 7\n      How many.\n"));
    ck_assert_ptr_nonnull(
        strstr(buf, "  top.on\n      true or false; default true\n      (undocumented)\n"));
    ck_assert_ptr_nonnull(
        strstr(buf, "top.wait\n      duration (like 250ms, 2s, 1m), 0 to 1m; default 1500ms"));
    ck_assert_ptr_nonnull(strstr(buf, "one of fast | safe; default safe"));
    ck_assert_ptr_nonnull(
        strstr(buf, "top.addr\n      address host:port (port 5432 when omitted); required\n"));
    ck_assert_ptr_nonnull(strstr(buf, "  top.sect.wait\n      duration (like 250ms, 2s, 1m), 0 to "
                                      "1m; default 1500ms\n      How long.\n"));
    free(buf);
    buf = NULL;
    f = open_memstream(&buf, &len);
    cfg_describe(f, fields, &def, "", true);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, ".TP\n.B sect.wait\n"));
    free(buf);
}
END_TEST

START_TEST(section_applies_its_table_to_the_same_struct)
{
    struct sample v;
    char err[512];
    ck_assert_int_eq(load("addr: 10.0.0.1\nsect: {wait: 2s}\n", &v, err, sizeof(err)), 0);
    ck_assert_uint_eq(v.wait_ms, 2000);
    ck_assert_int_ne(load("addr: 10.0.0.1\nsect: {wiat: 2s}\n", &v, err, sizeof(err)), 0);
    ck_assert_str_eq(
        err, "t.yaml:2:8: s.sect: unknown key \"wiat\" (did you mean \"wait\"?); valid keys: wait");
}
END_TEST

START_TEST(good_file)
{
    struct sample s;
    char err[1024];
    int rc = load("name: x\ncount: 3\non: yes\nwait: 250ms\nmode: safe\naddr: 10.0.0.1\n", &s, err,
                  sizeof(err));
    ck_assert_msg(rc == 0, "unexpected error: %s", err);
    ck_assert_str_eq(s.name, "x");
    ck_assert_uint_eq(s.count, 3);
    ck_assert(s.on);
    ck_assert_uint_eq(s.wait_ms, 250);
    ck_assert_int_eq(s.mode, 1);
}
END_TEST

struct bad_case {
    const char *text;
    const char *expect; /* substring of the message */
};

START_TEST(each_error_names_place_and_fix)
{
    static const struct bad_case cases[] = {
        {"addr: 1.2.3.4\ncount: 30\n", "t.yaml:2:8: s.count: 30 is out of range; expected 1 to 10"},
        {"addr: 1.2.3.4\ncount: many\n", "t.yaml:2:8: s.count: expected a whole number"},
        {"addr: 1.2.3.4\nwait: soon\n", "t.yaml:2:7: s.wait: expected a duration like 250ms"},
        {"addr: 1.2.3.4\nwait: 2m\n", "s.wait: 2m is out of range"},
        {"addr: 1.2.3.4\non: maybe\n", "t.yaml:2:5: s.on: expected true or false"},
        {"addr: 1.2.3.4\nmode: quick\n",
         "t.yaml:2:7: s.mode: \"quick\" is not a valid choice; expected one of: fast, safe"},
        {"addr: nowhere:1:2\n", "t.yaml:1:7: s.addr: expected an address like"},
        {"addr: 1.2.3.4:99999\n", "s.addr: port in \"1.2.3.4:99999\" must be 1 to 65535"},
        {"addr: 1.2.3.4\ncuont: 3\n",
         "t.yaml:2:1: s: unknown key \"cuont\" (did you mean \"count\"?); valid keys: name, count"},
        {"addr: 1.2.3.4\nzzzzzzzz: 3\n", "unknown key \"zzzzzzzz\"; valid keys:"},
        {"count: 3\n", "t.yaml:1:1: s: missing required key \"addr\""},
        {"addr: 1.2.3.4\ncount: 2\ncount: 3\n", "t.yaml:3:1: s.count: key appears twice"},
        {"addr: 1.2.3.4\nname: [a, b]\n",
         "t.yaml:2:7: s.name: expected a single value, got a list"},
        {"addr: 1.2.3.4\nname: abcdefghijklmnopq\n", "s.name: value is too long"},
        {"- a\n- b\n", "t.yaml:1:1: s: expected a mapping"},
        {"addr: [1\n", "t.yaml:2:1: YAML syntax error"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sample s;
        char err[1024];
        int rc = load(cases[i].text, &s, err, sizeof(err));
        ck_assert_msg(rc == -EINVAL, "case %zu: accepted a bad file", i);
        ck_assert_msg(strstr(err, cases[i].expect) != NULL, "case %zu: got \"%s\", want \"%s\"", i,
                      err, cases[i].expect);
    }
}
END_TEST

START_TEST(missing_file_says_so)
{
    struct cfg_doc d;
    int rc = cfg_doc_load(&d, "/nonexistent/lb.yaml");
    ck_assert_int_eq(rc, -ENOENT);
    ck_assert_str_eq(d.err,
                     "/nonexistent/lb.yaml: cannot open the configuration file: No such file or "
                     "directory");
}
END_TEST

START_TEST(empty_file_is_an_error)
{
    struct cfg_doc d;
    ck_assert_int_eq(cfg_doc_load_string(&d, "e.yaml", ""), -EINVAL);
    ck_assert_ptr_nonnull(strstr(d.err, "e.yaml: the file is empty"));
    cfg_doc_free(&d);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cfg");
    TCase *td = tcase_create("describe");
    tcase_add_test(td, describe_prints_types_real_defaults_and_sections);
    tcase_add_test(td, section_applies_its_table_to_the_same_struct);
    suite_add_tcase(s, td);
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, good_file);
    tcase_add_test(tc, each_error_names_place_and_fix);
    tcase_add_test(tc, missing_file_says_so);
    tcase_add_test(tc, empty_file_is_an_error);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
