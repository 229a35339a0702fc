/* Request-target normalization (lib/http_path.c): a table of targets and what each mode makes of them (the path
 * the policy matches and the target the app receives), the refusals, the mode names, and the setting's trip
 * through the WorkloadPolicy message (lib/policy_proto.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/error.h"
#include "ringmesh/http_path.h"
#include "ringmesh/policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    B = 1 << RM_PATH_NORMALIZATION_BASE,
    N = 1 << RM_PATH_NORMALIZATION_NONE,
    M = 1 << RM_PATH_NORMALIZATION_MERGE_SLASHES,
    D = 1 << RM_PATH_NORMALIZATION_DECODE_AND_MERGE_SLASHES
};

/* `want` is the target the app receives, NULL for a refusal (400); `path` the part the policy matches (NULL: all
 * of `want`). */
static const struct {
    unsigned modes;
    const char *target, *want, *path;
} cases[] = {
    /* the three requests of the bypass: with only GET /ok allowed, each must be /ok for policy and app alike */
    {B | M | D, "/admin/../ok", "/ok", NULL},
    {B | M | D, "/admin/%2e%2e/ok", "/ok", NULL},
    {B | M | D, "/admin\\..\\ok", "/ok", NULL},
    {N, "/admin/../ok", "/admin/../ok", NULL},
    {N, "/admin/%2e%2e/ok", "/admin/%2e%2e/ok", NULL},
    {N, "/admin\\..\\ok", "/admin\\..\\ok", NULL},
    /* unchanged */
    {B | M | D | N, "/", "/", NULL},
    {B | M | D | N, "/api/orders/7", "/api/orders/7", NULL},
    {B | M | D, "/a-b_c~d.e", "/a-b_c~d.e", NULL},
    /* unreserved characters decoded, hex digits in either case, once */
    {B | M | D, "/%61dmin", "/admin", NULL},
    {B | M | D, "/adm%69n", "/admin", NULL},
    {B | M | D, "/%2E%2e/admin", "/admin", NULL},
    {B | M | D, "/%41%5a%5f%7e%2d%30%39", "/AZ_~-09", NULL},
    {B | M | D, "/%252e%252e/admin", "/%252e%252e/admin", NULL}, /* %25 is '%', not decoded: never a second pass */
    {B | M | D, "/%25%32%65", "/%252e", NULL},                   /* "2e" decoded from %32%65 is not read again */
    {B | M | D, "/%%34%31dmin", "/%%341dmin", NULL},             /* never a new escape: "%41" would be "A" to the app */
    {B | M | D, "/%4%31", "/%4%31", NULL},
    {B | M | D, "/%%2e", "/%.", NULL},
    {B | M | D, "/%25%34%31", "/%2541", NULL}, /* "%25" is an escape of its own: "41" after it is not one */
    {B | M | D, "/a%20b", "/a%20b", NULL},     /* reserved or other characters stay encoded */
    {B | M | D, "/a%zzb%4", "/a%zzb%4", NULL}, /* not escapes */
    /* %2F and %5C: kept by BASE and MERGE_SLASHES, a separator under DECODE_AND_MERGE_SLASHES */
    {B | M, "/api/..%2fadmin", "/api/..%2fadmin", NULL},
    {D, "/api/..%2fadmin", "/admin", NULL},
    {B | M, "/a%2Fb", "/a%2Fb", NULL},
    {D, "/a%2Fb", "/a/b", NULL},
    {D, "/a%2f%2F%5c%5Cb", "/a/b", NULL},
    {B | M, "/a%5Cb", "/a%5Cb", NULL},
    {D, "/x/%2e%2e%2fadmin", "/admin", NULL},
    {D, "/%252f", "/%252f", NULL},
    /* dot segments (RFC 3986 5.2.4) */
    {B | M | D, "/./a/b/.", "/a/b/", NULL},
    {B | M | D, "/a/b/..", "/a/", NULL},
    {B | M | D, "/a/..", "/", NULL},
    {B | M | D, "/..", "/", NULL},
    {B | M | D, "/../../..", "/", NULL},
    {B | M | D, "/x/y/../../admin", "/admin", NULL},
    {B | M | D, "/a/./b/../c", "/a/c", NULL},
    {B | M | D, "/a/..b/.c/b..", "/a/..b/.c/b..", NULL},
    {B | M | D, "/a/...", "/a/...", NULL},
    {B | M | D, "\\admin", NULL, NULL}, /* not origin-form */
    /* slashes: merged by MERGE_SLASHES and DECODE_AND_MERGE_SLASHES only */
    {B, "/a//b///c", "/a//b///c", NULL},
    {M | D, "/a//b///c", "/a/b/c", NULL},
    {B, "/a//..", "/a/", NULL},
    {M | D, "//admin", "/admin", NULL},
    {M | D, "/a\\\\b", "/a/b", NULL},
    /* query: kept as received, never decoded or normalized, not part of the path */
    {B | M | D, "/admin?x=1", "/admin?x=1", "/admin"},
    {B | M | D, "/a/../ok?next=/../admin&q=%2e", "/ok?next=/../admin&q=%2e", "/ok"},
    {B | M | D, "/ok?q=%00", "/ok?q=%00", "/ok"},
    {N, "/a/../b?q", "/a/../b?q", "/a/../b"},
    {B | M | D, "/?", "/?", "/"},
    /* fragment: never forwarded (NONE forwards the target as received) */
    {B | M | D, "/admin#frag", "/admin", NULL},
    {B | M | D, "/ok?q=1#frag", "/ok?q=1", "/ok"},
    {N, "/ok#frag", "/ok#frag", "/ok"},
    /* %00 in the path: 400 */
    {B | M | D, "/ok%00", NULL, NULL},
    {B | M | D, "/admin/%00/../ok", NULL, NULL},
    {B | M | D, "/%00", NULL, NULL},
    {N, "/ok%00", "/ok%00", NULL},
    /* absolute-form: origin-form after it */
    {B | M | D, "http://example.com/admin/../ok?q", "/ok?q", "/ok"},
    {B | M | D, "http://example.com", "/", NULL},
    {B | M | D, "https://example.com:8443?q=1", "/?q=1", "/"},
    {B | M | D, "HTTP://h/a%2e/b", "/a./b", NULL},
    {N, "http://example.com/a/../b", "http://example.com/a/../b", NULL},
    /* asterisk-form and authority-form: as they are */
    {B | M | D | N, "*", "*", NULL},
    {B | M | D, "orders.shop:443", "orders.shop:443", NULL},
    {B | M | D | N, "", "", NULL},
    /* anything else is not a request target */
    {B | M | D, "admin/../ok", NULL, NULL},
    {B | M | D, "*/x", NULL, NULL},
};

static void test_table(void **state)
{
    (void)state;
    char out[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int mode = 0; mode < 4; mode++) {
            if ((cases[i].modes & (1u << mode)) == 0)
                continue;
            const char *name = rm_path_normalization_name((rm_path_normalization_t)mode);
            size_t len = strlen(cases[i].target);
            rm_http_target_t t;
            memset(out, 0x55, sizeof(out));
            int ret = rm_http_path_normalize((rm_path_normalization_t)mode, cases[i].target, len, out, len + 1, &t);
            if (cases[i].want == NULL) {
                if (ret != -EINVAL || t.error == NULL)
                    fail_msg("%s \"%s\": want a refusal, got %d \"%.*s\"", name, cases[i].target, ret, (int)t.len, out);
                continue;
            }
            const char *path = cases[i].path != NULL ? cases[i].path : cases[i].want;
            if (ret != 0)
                fail_msg("%s \"%s\": refused (%d, %s)", name, cases[i].target, ret, t.error);
            if (t.len != strlen(cases[i].want) || memcmp(out, cases[i].want, t.len) != 0)
                fail_msg("%s \"%s\": got \"%.*s\", want \"%s\"", name, cases[i].target, (int)t.len, out, cases[i].want);
            if (t.path_len != strlen(path) || memcmp(out, path, t.path_len) != 0)
                fail_msg("%s \"%s\": path \"%.*s\", want \"%s\"", name, cases[i].target, (int)t.path_len, out, path);
            if (t.changed != (strcmp(cases[i].want, cases[i].target) != 0))
                fail_msg("%s \"%s\": changed=%d", name, cases[i].target, t.changed);
            if (t.len > len + 1 || (unsigned char)out[len + 1] != 0x55)
                fail_msg("%s \"%s\": wrote past len + 1", name, cases[i].target);
        }
    }
}

/* Targets need not be NUL-terminated (the filters' buffers are not): the length alone bounds the read. */
static void test_not_terminated(void **state)
{
    (void)state;
    char in[16], out[17];
    rm_http_target_t t;
    memcpy(in, "/a/../ok%00XXXXX", 16);
    assert_int_equal(rm_http_path_normalize(RM_PATH_NORMALIZATION_BASE, in, 8, out, sizeof(out), &t), 0);
    assert_int_equal(t.len, 3);
    assert_memory_equal(out, "/ok", 3);
    /* a '%' at the very end is not an escape reaching past it */
    memcpy(in, "/ok%2e", 6);
    assert_int_equal(rm_http_path_normalize(RM_PATH_NORMALIZATION_BASE, in, 5, out, sizeof(out), &t), 0);
    assert_int_equal(t.len, 5);
    assert_memory_equal(out, "/ok%2", 5);
    /* a NUL byte inside the length is refused */
    memcpy(in, "/a\0b", 4);
    assert_int_equal(rm_http_path_normalize(RM_PATH_NORMALIZATION_BASE, in, 4, out, sizeof(out), &t), -EINVAL);
    assert_non_null(t.error);
}

static void test_refusals(void **state)
{
    (void)state;
    char out[64];
    rm_http_target_t t;
    assert_int_equal(rm_http_path_normalize(RM_PATH_NORMALIZATION_BASE, "/a%00", 5, out, sizeof(out), &t), -EINVAL);
    assert_string_equal(t.error, "the path holds a percent-encoded NUL (%00)");
    /* the output may not be shorter than the input plus one */
    assert_int_equal(rm_http_path_normalize(RM_PATH_NORMALIZATION_BASE, "/abc", 4, out, 4, &t), -ENOBUFS);
    assert_int_equal(rm_http_path_normalize(RM_PATH_NORMALIZATION_BASE, "/abc", 4, out, 5, &t), 0);
    /* the longest output: an absolute-form target without a path, and "" (HTTP/2 CONNECT) */
    assert_int_equal(rm_http_path_normalize(RM_PATH_NORMALIZATION_BASE, "a://b", 5, out, 6, &t), 0);
    assert_int_equal(t.len, 1);
}

static void test_names(void **state)
{
    (void)state;
    static const char *const names[] = {"BASE", "NONE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES"};
    rm_path_normalization_t m;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rm_path_normalization_parse(names[i], &m), 0);
        assert_int_equal(m, i);
        assert_string_equal(rm_path_normalization_name(m), names[i]);
    }
    assert_int_equal(RM_PATH_NORMALIZATION_BASE, 0); /* the zero value is the default */
    assert_int_equal(rm_path_normalization_parse("base", &m), -EINVAL);
    assert_int_equal(rm_path_normalization_parse("DEFAULT", &m), -EINVAL);
    assert_int_equal(rm_path_normalization_parse("", &m), -EINVAL);
    assert_int_equal(rm_path_normalization_parse(NULL, &m), -EINVAL);
}

/* The setting crosses the wire in WorkloadPolicy.path_normalization; an unknown value is refused (NACK). */
static void test_workload_policy_round_trip(void **state)
{
    (void)state;
    char err[256];
    for (int i = 0; i < 4; i++) {
        rm_workload_policy_t wp = {.path_normalization = (rm_path_normalization_t)i}, back = {0};
        rm_policy_set_t set = {0};
        uint8_t *bytes = NULL;
        size_t len = 0;
        assert_int_equal(rm_workload_policy_encode(NULL, 0, &wp, &bytes, &len), 0);
        assert_int_equal(rm_workload_policy_decode(bytes, len, &set, &back, err, sizeof(err)), 0);
        assert_int_equal(back.path_normalization, i);
        free(bytes);
        rm_policy_set_clear(&set);
        rm_workload_policy_clear(&back);
    }
    /* field 7 (varint) = 9: no such mode */
    static const uint8_t unknown[] = {0x38, 0x09};
    rm_workload_policy_t back = {0};
    rm_policy_set_t set = {0};
    assert_int_equal(rm_workload_policy_decode(unknown, sizeof(unknown), &set, &back, err, sizeof(err)),
                     RM_ERR_POLICY_INVALID);
    assert_string_equal(err, "WorkloadPolicy: unknown path normalization 9");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_not_terminated),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_workload_policy_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
