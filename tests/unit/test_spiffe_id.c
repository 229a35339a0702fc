/* SPIFFE ID syntax: one test per rule of the SPIFFE ID specification, each with valid neighbours that must pass,
 * so that removing or loosening a rule makes its test fail (a broken ID would then parse, or fail with a
 * different code). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ringmesh/error.h"
#include "ringmesh/svid.h"

static rm_spiffe_id_t id;

static int parse(const char *s)
{
    return rm_spiffe_id_parse(s, strlen(s), &id);
}

#define assert_id(s, code)                                                                                             \
    do {                                                                                                               \
        int ret_ = parse(s);                                                                                           \
        if (ret_ != (code))                                                                                            \
            fail_msg("'%s': got %d (%s), want %d (%s)", (s), ret_, rm_strerror(ret_), (code), rm_strerror(code));      \
    } while (0)

static void test_valid_ids(void **state)
{
    assert_id("spiffe://example.org", 0);
    assert_int_equal(id.len, strlen("spiffe://example.org"));
    assert_int_equal(id.td_len, strlen("example.org"));
    assert_string_equal(id.str, "spiffe://example.org");

    assert_id("spiffe://cluster.local/ns/shop/sa/orders", 0);
    assert_string_equal(id.str, "spiffe://cluster.local/ns/shop/sa/orders");
    assert_int_equal(id.td_len, strlen("cluster.local"));
    assert_int_equal(id.len, strlen("spiffe://cluster.local/ns/shop/sa/orders"));

    assert_id("spiffe://a-b_c.9/AZaz09.-_/x", 0);
    assert_int_equal(id.td_len, strlen("a-b_c.9"));
}

static void test_length_is_explicit(void **state)
{
    const char *s = "spiffe://example.org/abc/def";

    /* only the first len bytes count, and no NUL is needed */
    assert_int_equal(rm_spiffe_id_parse(s, strlen("spiffe://example.org/abc"), &id), 0);
    assert_string_equal(id.str, "spiffe://example.org/abc");
    /* a cut that leaves a trailing slash is refused */
    assert_int_equal(rm_spiffe_id_parse(s, strlen("spiffe://example.org/abc/"), &id), RM_ERR_SPIFFE_EMPTY_SEGMENT);
    /* out may be NULL: validation only */
    assert_int_equal(rm_spiffe_id_parse(s, strlen(s), NULL), 0);
    assert_int_equal(rm_spiffe_id_parse("spiffe://Ex", 11, NULL), RM_ERR_SPIFFE_TD_CHARS);
}

static void test_failure_clears_output(void **state)
{
    assert_id("spiffe://example.org/x", 0);
    assert_id("spiffe://example.org/x/", RM_ERR_SPIFFE_EMPTY_SEGMENT);
    assert_int_equal(id.len, 0);
    assert_string_equal(id.str, "");
}

static void test_scheme(void **state)
{
    assert_id("spiffe://example.org/x", 0);
    assert_id("SPIFFE://example.org/x", RM_ERR_SPIFFE_SCHEME);
    assert_id("Spiffe://example.org/x", RM_ERR_SPIFFE_SCHEME);
    assert_id("spiffe:/example.org/x", RM_ERR_SPIFFE_SCHEME);
    assert_id("spiffe:example.org/x", RM_ERR_SPIFFE_SCHEME);
    assert_id("https://example.org/x", RM_ERR_SPIFFE_SCHEME);
    assert_id(" spiffe://example.org/x", RM_ERR_SPIFFE_SCHEME);
    assert_id("spiffe:", RM_ERR_SPIFFE_SCHEME);
    assert_id("", RM_ERR_SPIFFE_SCHEME);
}

static void test_empty_trust_domain(void **state)
{
    assert_id("spiffe://a", 0);
    assert_id("spiffe://a/x", 0);
    assert_id("spiffe://", RM_ERR_SPIFFE_EMPTY_TD);
    assert_id("spiffe:///x", RM_ERR_SPIFFE_EMPTY_TD);
    assert_id("spiffe:////", RM_ERR_SPIFFE_EMPTY_TD);
}

static void test_trust_domain_chars(void **state)
{
    assert_id("spiffe://example-1.org_x/p", 0);
    assert_id("spiffe://Example.org/p", RM_ERR_SPIFFE_TD_CHARS);
    assert_id("spiffe://EXAMPLE.ORG", RM_ERR_SPIFFE_TD_CHARS);
    assert_id("spiffe://exa mple.org/p", RM_ERR_SPIFFE_TD_CHARS);
    assert_id("spiffe://ex%61mple.org/p", RM_ERR_SPIFFE_TD_CHARS);
    assert_id("spiffe://exa!mple.org/p", RM_ERR_SPIFFE_TD_CHARS);
    assert_id("spiffe://b\xc3\xa4r.org/p", RM_ERR_SPIFFE_TD_CHARS);
    assert_int_equal(rm_spiffe_id_parse("spiffe://exa\0mple.org/p", 23, &id), RM_ERR_SPIFFE_TD_CHARS);
}

static void test_trust_domain_too_long(void **state)
{
    char s[9 + 300 + 3];

    memcpy(s, "spiffe://", 9);
    memset(s + 9, 'a', 255);
    strcpy(s + 9 + 255, "/x");
    assert_id(s, 0);
    assert_int_equal(id.td_len, 255);
    memset(s + 9, 'a', 256);
    strcpy(s + 9 + 256, "/x");
    assert_id(s, RM_ERR_SPIFFE_TD_TOO_LONG);
}

static void test_userinfo_and_port(void **state)
{
    assert_id("spiffe://example.org/ns/a", 0);
    assert_id("spiffe://user@example.org/ns/a", RM_ERR_SPIFFE_USERINFO_PORT);
    assert_id("spiffe://user:secret@example.org", RM_ERR_SPIFFE_USERINFO_PORT);
    assert_id("spiffe://example.org:8443/ns/a", RM_ERR_SPIFFE_USERINFO_PORT);
    assert_id("spiffe://example.org:/ns/a", RM_ERR_SPIFFE_USERINFO_PORT);
}

static void test_path_chars(void **state)
{
    assert_id("spiffe://example.org/AZ/az/09/.-_/a.b-c_D", 0);
    assert_id("spiffe://example.org/a b", RM_ERR_SPIFFE_PATH_CHARS);
    assert_id("spiffe://example.org/a%20b", RM_ERR_SPIFFE_PATH_CHARS); /* no percent-encoding either */
    assert_id("spiffe://example.org/a*b", RM_ERR_SPIFFE_PATH_CHARS);
    assert_id("spiffe://example.org/a:b", RM_ERR_SPIFFE_PATH_CHARS);
    assert_id("spiffe://example.org/a@b", RM_ERR_SPIFFE_PATH_CHARS);
    assert_id("spiffe://example.org/a\\b", RM_ERR_SPIFFE_PATH_CHARS);
    assert_id("spiffe://example.org/b\xc3\xa4r", RM_ERR_SPIFFE_PATH_CHARS);
    assert_int_equal(rm_spiffe_id_parse("spiffe://example.org/a\0b", 24, &id), RM_ERR_SPIFFE_PATH_CHARS);
}

static void test_empty_segment(void **state)
{
    assert_id("spiffe://example.org/x/y", 0);
    assert_id("spiffe://example.org/", RM_ERR_SPIFFE_EMPTY_SEGMENT);
    assert_id("spiffe://example.org//x", RM_ERR_SPIFFE_EMPTY_SEGMENT);
    assert_id("spiffe://example.org/x//y", RM_ERR_SPIFFE_EMPTY_SEGMENT);
    assert_id("spiffe://example.org/x/y/", RM_ERR_SPIFFE_EMPTY_SEGMENT);
}

static void test_dot_segment(void **state)
{
    assert_id("spiffe://example.org/.a/..b/a./a../.../x", 0);
    assert_id("spiffe://example.org/.", RM_ERR_SPIFFE_DOT_SEGMENT);
    assert_id("spiffe://example.org/..", RM_ERR_SPIFFE_DOT_SEGMENT);
    assert_id("spiffe://example.org/a/./b", RM_ERR_SPIFFE_DOT_SEGMENT);
    assert_id("spiffe://example.org/a/../b", RM_ERR_SPIFFE_DOT_SEGMENT);
    assert_id("spiffe://example.org/a/..", RM_ERR_SPIFFE_DOT_SEGMENT);
}

static void test_query_and_fragment(void **state)
{
    assert_id("spiffe://example.org/x", 0);
    assert_id("spiffe://example.org/x?y=1", RM_ERR_SPIFFE_QUERY_FRAGMENT);
    assert_id("spiffe://example.org/x#frag", RM_ERR_SPIFFE_QUERY_FRAGMENT);
    assert_id("spiffe://example.org?x", RM_ERR_SPIFFE_QUERY_FRAGMENT);
    assert_id("spiffe://example.org#", RM_ERR_SPIFFE_QUERY_FRAGMENT);
    assert_id("spiffe://example.org/?", RM_ERR_SPIFFE_QUERY_FRAGMENT);
}

static void test_total_length(void **state)
{
    char s[RM_SPIFFE_ID_MAX + 16];
    size_t len = strlen("spiffe://example.org");

    /* a valid ID of exactly the maximum length, made of 99-character segments */
    memcpy(s, "spiffe://example.org", len);
    while (len < RM_SPIFFE_ID_MAX) {
        size_t seg = RM_SPIFFE_ID_MAX - len - 1 < 99 ? RM_SPIFFE_ID_MAX - len - 1 : 99;
        s[len++] = '/';
        memset(s + len, 'p', seg);
        len += seg;
    }
    assert_int_equal(len, RM_SPIFFE_ID_MAX);
    assert_int_equal(rm_spiffe_id_parse(s, len, &id), 0);
    assert_int_equal(id.len, RM_SPIFFE_ID_MAX);
    assert_memory_equal(id.str, s, RM_SPIFFE_ID_MAX);
    assert_int_equal(id.str[RM_SPIFFE_ID_MAX], '\0');

    s[len++] = 'p';
    assert_int_equal(rm_spiffe_id_parse(s, len, &id), RM_ERR_SPIFFE_TOO_LONG);
}

static void test_trust_domain_check(void **state)
{
    char td[300];

    assert_int_equal(rm_trust_domain_check("cluster.local", 13), 0);
    assert_int_equal(rm_trust_domain_check("a-b_c.9", 7), 0);
    assert_int_equal(rm_trust_domain_check("", 0), RM_ERR_SPIFFE_EMPTY_TD);
    assert_int_equal(rm_trust_domain_check("Cluster.local", 13), RM_ERR_SPIFFE_TD_CHARS);
    assert_int_equal(rm_trust_domain_check("a/b", 3), RM_ERR_SPIFFE_TD_CHARS);
    assert_int_equal(rm_trust_domain_check("a:1", 3), RM_ERR_SPIFFE_TD_CHARS);
    memset(td, 'x', sizeof(td));
    assert_int_equal(rm_trust_domain_check(td, 255), 0);
    assert_int_equal(rm_trust_domain_check(td, 256), RM_ERR_SPIFFE_TD_TOO_LONG);
}

static void test_every_code_has_a_sentence(void **state)
{
    static const int codes[] = {RM_ERR_SPIFFE_SCHEME,       RM_ERR_SPIFFE_EMPTY_TD,       RM_ERR_SPIFFE_TD_CHARS,
                                RM_ERR_SPIFFE_TD_TOO_LONG,  RM_ERR_SPIFFE_PATH_CHARS,     RM_ERR_SPIFFE_EMPTY_SEGMENT,
                                RM_ERR_SPIFFE_DOT_SEGMENT,  RM_ERR_SPIFFE_QUERY_FRAGMENT, RM_ERR_SPIFFE_TOO_LONG,
                                RM_ERR_SPIFFE_USERINFO_PORT};
    size_t i, j;

    for (i = 0; i != sizeof(codes) / sizeof(codes[0]); ++i) {
        assert_string_not_equal(rm_strerror(codes[i]), "unknown error");
        for (j = 0; j != i; ++j)
            assert_string_not_equal(rm_strerror(codes[i]), rm_strerror(codes[j]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_ids),
        cmocka_unit_test(test_length_is_explicit),
        cmocka_unit_test(test_failure_clears_output),
        cmocka_unit_test(test_scheme),
        cmocka_unit_test(test_empty_trust_domain),
        cmocka_unit_test(test_trust_domain_chars),
        cmocka_unit_test(test_trust_domain_too_long),
        cmocka_unit_test(test_userinfo_and_port),
        cmocka_unit_test(test_path_chars),
        cmocka_unit_test(test_empty_segment),
        cmocka_unit_test(test_dot_segment),
        cmocka_unit_test(test_query_and_fragment),
        cmocka_unit_test(test_total_length),
        cmocka_unit_test(test_trust_domain_check),
        cmocka_unit_test(test_every_code_has_a_sentence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
