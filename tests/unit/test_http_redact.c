/* Request targets as logs and spans show them (lib/http_redact.c): a credential in the query (an OAuth access_token,
 * an API key, a signature) is replaced by REDACTED, everything else is kept as received; and a decision line built by
 * rm_authz_log_fields holds no such value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/http_path.h"
#include "ringmesh/log.h"
#include "ringmesh/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_targets(void **state)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"/api/orders", "/api/orders"},
        {"/api?x=1&y=2", "/api?x=1&y=2"},
        {"/api?access_token=eyJ.a.b", "/api?access_token=REDACTED"},
        {"/api?a=1&access_token=eyJ.a.b&b=2", "/api?a=1&access_token=REDACTED&b=2"},
        {"/api?Access_Token=x", "/api?Access_Token=REDACTED"},
        {"/s3?X-Amz-Signature=abc&X-Amz-Credential=k%2F1", "/s3?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED"},
        {"/m?api_key=1&apikey=2&key=3&sig=4&code=5&password=6", "/m?api_key=REDACTED&apikey=REDACTED&key=REDACTED&"
                                                                "sig=REDACTED&code=REDACTED&password=REDACTED"},
        {"/m?keys=1&monkey=2&token", "/m?keys=1&monkey=2&token"}, /* no value: nothing to hide */
        {"/p?id_token=x#frag", "/p?id_token=REDACTED#frag"},
        {"/p?", "/p?"},
        {"/p?&&token=1", "/p?&&token=REDACTED"},
        {"/a/b?token=", "/a/b?token=REDACTED"},
    };
    char out[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = rm_http_target_redact(cases[i].in, strlen(cases[i].in), out, sizeof(out));
        if (strcmp(out, cases[i].want) != 0 || n != strlen(cases[i].want))
            fail_msg("case %zu: %s -> %s (%zu), want %s", i, cases[i].in, out, n, cases[i].want);
    }
    /* truncated to the buffer, always terminated */
    size_t n = rm_http_target_redact("/abcdef?token=secret", 20, out, 5);
    assert_int_equal(n, 4);
    assert_string_equal(out, "/abc");
    n = rm_http_target_redact("/a?token=secretvalue", 20, out, 12);
    assert_int_equal(n, 11);
    assert_null(strstr(out, "secret"));
}

/* the decision log's path: the line written to a pipe holds the parameter's name and not its value */
static void test_decision_line(void **state)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    rm_log_configure(RM_LOG_DEBUG, fds[1]);
    static const char path[] = "/orders?access_token=eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.c2ln&page=2";
    rm_http_request_t req = {.method = "GET", .method_len = 3, .path = path, .path_len = sizeof(path) - 1};
    rm_authz_attrs_t a = {.http = &req, .destination_port = 8080};
    rm_authz_decision_t d = {.allow = 1, .reason = RM_AUTHZ_REASON_DEFAULT_ALLOW, .rule = -1};
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_INFO, "authz");
    rm_authz_log_fields(&l, &d, &a, "shop/orders");
    rm_log_end(&l);
    rm_log_configure(RM_LOG_INFO, STDOUT_FILENO);
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "\"path\":\"/orders?access_token=REDACTED&page=2\""));
    assert_null(strstr(buf, "eyJhbGci"));
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_decision_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
