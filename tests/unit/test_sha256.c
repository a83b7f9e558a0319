/* test_sha256.c -- SHA-256 against FIPS 180-4's examples, HMAC-SHA256 against RFC 4231's
 * test cases (common/sha256.c). */
#include "check_main.h"
#include "sha256.h"

#include <stdio.h>
#include <string.h>

static void hex(const uint8_t *d, char *out)
{
    for (int i = 0; i < SHA256_LEN; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void digest(const void *data, size_t n, char *out)
{
    struct sha256 c;
    uint8_t d[SHA256_LEN];
    sha256_init(&c);
    sha256_update(&c, data, n);
    sha256_final(&c, d);
    hex(d, out);
}

START_TEST(fips_examples)
{
    char h[65];
    digest("", 0, h);
    ck_assert_str_eq(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    digest("abc", 3, h);
    ck_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    digest(two, strlen(two), h);
    ck_assert_str_eq(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* A million 'a's, fed in uneven pieces (the buffering across blocks). */
    struct sha256 c;
    uint8_t d[SHA256_LEN], a[997];
    memset(a, 'a', sizeof(a));
    sha256_init(&c);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof(a) ? left : sizeof(a);
        sha256_update(&c, a, n);
        left -= n;
    }
    sha256_final(&c, d);
    hex(d, h);
    ck_assert_str_eq(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

START_TEST(rfc4231)
{
    char h[65];
    uint8_t d[SHA256_LEN], key[131];
    /* Test case 1 */
    memset(key, 0x0b, 20);
    const void *p1[] = {"Hi There"};
    size_t l1[] = {8};
    hmac_sha256(key, 20, p1, l1, 1, d);
    hex(d, h);
    ck_assert_str_eq(h, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    /* Test case 2, the message in two parts */
    const void *p2[] = {"what do ya want ", "for nothing?"};
    size_t l2[] = {16, 12};
    hmac_sha256((const uint8_t *)"Jefe", 4, p2, l2, 2, d);
    hex(d, h);
    ck_assert_str_eq(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* Test case 6: a key longer than a block */
    memset(key, 0xaa, 131);
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    const void *p6[] = {m6};
    size_t l6[] = {strlen(m6)};
    hmac_sha256(key, 131, p6, l6, 1, d);
    hex(d, h);
    ck_assert_str_eq(h, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    ck_assert_int_eq(ct_memcmp("abcd", "abcd", 4), 0);
    ck_assert_int_ne(ct_memcmp("abcd", "abce", 4), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sha256");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, fips_examples);
    tcase_add_test(tc, rfc4231);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
