/* The policy linter's warnings (lib/policy_yaml.c) and the decision's log line (lib/policy_log.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "policy_fixtures.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"
#include "ringmesh/policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void test_lint(void **state)
{
    static const char yaml[] =
        POLICY("a", "dup", "ALLOW") "  rules:\n"                                                    /* 1-8 */
                                    "  - from: [{source: {principals: [x], notPrincipals: [x]}}]\n" /* 9 */
                                    "---\n"                                                         /* 10 */
        POLICY("a", "dup", "DENY") "  rules:\n"                                                     /* 11-18 */
                                   "  - to: [{operation: {methods: [GET]}}]\n"                      /* 19 */
                                   "---\n"                                                          /* 20 */
        POLICY("a", "http",
               "ALLOW") "  rules:\n" /* 21-28 */
                        "  - when: [{key: \"request.headers[x]\", values: [v], notValues: [\"*\"]}]\n"
                        "  - from: [{source: {ipBlocks: [\"10.0.0.0/8\"], notIpBlocks: [\"10.1.0.0/16\"]}}]\n"
                        "---\n"                     /* 31 */
        PA("a", "pa", "{mtls: {mode: STRICT}}")     /* 32-36 */
        PA("a", "pa", "{mtls: {mode: PERMISSIVE}}") /* 37-41 */
        PA("b", "pa", "{}")                         /* 42-46 */
        POLICY("b", "dup", "ALLOW");
    rm_policy_set_t set = {0};
    rm_policy_diags_t diags = {0};
    const char *f = "test.yaml";

    load_ok(&set, yaml);
    assert_int_equal(rm_policy_lint(&set, &diags), 2);
    if (diags.n != 6)
        print_diags(&diags);
    assert_int_equal(diags.n, 6);
    assert_int_equal(diags.num_errors, 2);
    /* each finding at the node it is about: the source, the rule, the condition (not the document's first line) */
    expect_diag(&diags.d[0], 1, f, 9, 21, "spec.rules[0].from[0].source",
                "\"x\" is in both principals and notPrincipals: this can never match");
    expect_diag(&diags.d[1], 0, f, 11, 1, "metadata.name",
                "AuthorizationPolicy a/dup is defined twice (first at test.yaml:1)");
    expect_diag(&diags.d[2], 1, f, 19, 5, "spec.rules[0]",
                "uses HTTP-only fields (hosts, methods, paths, request.headers): on a connection that is not HTTP this "
                "DENY rule applies as if they matched, to every connection its other fields match");
    expect_diag(&diags.d[3], 1, f, 29, 12, "spec.rules[0].when[0]",
                "\"v\" is in both values and notValues: this can never match");
    expect_diag(&diags.d[4], 1, f, 29, 5, "spec.rules[0]",
                "uses HTTP-only fields (hosts, methods, paths, request.headers): this ALLOW rule never matches a "
                "connection that is not HTTP");
    expect_diag(&diags.d[5], 0, f, 37, 1, "metadata.name",
                "PeerAuthentication a/pa is defined twice (first at test.yaml:32)");
    rm_policy_diags_clear(&diags);
    rm_policy_set_clear(&set);

    /* a clean set: nothing */
    load_ok(&set, Y_PRINCIPALS);
    assert_int_equal(rm_policy_lint(&set, &diags), 0);
    assert_int_equal(diags.n, 0);
    rm_policy_set_clear(&set);

    /* HTTP-only fields in a rule whose every operation names its ports: no warning; one operation without: warned */
    static const char scoped[] = POLICY(
        "a", "no-deletes",
        "DENY") "  rules:\n"
                "  - to: [{operation: {methods: [DELETE], ports: [\"8080\"]}}]\n"
                "---\n" POLICY(
                    "a", "readers",
                    "ALLOW") "  rules:\n"
                             "  - to: [{operation: {paths: [/x], ports: [\"8080\"]}}, {operation: {methods: [GET]}}]\n";
    load_ok(&set, scoped);
    assert_int_equal(rm_policy_lint(&set, &diags), 0);
    if (diags.n != 1)
        print_diags(&diags);
    assert_int_equal(diags.n, 1);
    expect_diag(&diags.d[0], 1, f, 19, 5, "spec.rules[0]",
                "uses HTTP-only fields (hosts, methods, paths, request.headers): this ALLOW rule never matches a "
                "connection that is not HTTP");
    rm_policy_diags_clear(&diags);
    rm_policy_set_clear(&set);
}

/* ------------------------------------------------------------------ 7. the log line */

static json_t *log_decision(const rm_authz_decision_t *d, const rm_authz_attrs_t *a, const char *workload)
{
    int fds[2];
    char buf[RM_LOG_LINE_MAX + 1];
    rm_log_line_t l;
    json_error_t jerr;

    assert_int_equal(pipe(fds), 0);
    rm_log_configure(RM_LOG_INFO, fds[1]);
    rm_log_begin(&l, RM_LOG_INFO, "authz");
    rm_authz_log_fields(&l, d, a, workload);
    rm_log_end(&l);
    rm_log_configure(RM_LOG_INFO, 1);
    close(fds[1]);
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_int_equal(buf[n - 1], '\n');
    assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);
    json_t *j = json_loads(buf, 0, &jerr);
    if (j == NULL)
        fail_msg("not JSON: %s: %s", jerr.text, buf);
    return j;
}

static void expect_json_str(json_t *j, const char *key, const char *want)
{
    json_t *v = json_object_get(j, key);
    if (want == NULL) {
        if (v != NULL && !json_is_null(v))
            fail_msg("\"%s\" should be absent or null", key);
        return;
    }
    if (!json_is_string(v))
        fail_msg("\"%s\" missing or not a string", key);
    assert_string_equal(json_string_value(v), want);
}

static void expect_json_int(json_t *j, const char *key, json_int_t want)
{
    json_t *v = json_object_get(j, key);
    if (!json_is_integer(v))
        fail_msg("\"%s\" missing or not an integer", key);
    assert_int_equal(json_integer_value(v), want);
}

static void test_log_fields(void **state)
{
    static const char yaml[] =
        ALLOW_ALL("a") POLICY("a", "deny-admin", "DENY") "  rules:\n  - to: [{operation: {paths: [/admin]}}]\n";
    rm_policy_set_t set = {0}, none = {0};
    req_buf_t rb;
    rm_authz_decision_t d;
    const rm_authz_attrs_t *a;
    json_t *j;

    load_ok(&set, yaml);
    rm_authz_engine_t *e = compile_set(&set, RM_AUTHZ_DENY);

    /* HTTP/1.1, denied by a rule, W3C trace context */
    a = make_attrs(&(req_t){.principal = SA_AX,
                            .src_ip = "10.1.2.3",
                            .dst_ip = "192.168.0.7",
                            .port = 8080,
                            .method = "GET",
                            .path = "/admin?x=1",
                            .host = "web.a:8080",
                            .headers = {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
                   &rb);
    rm_authz_evaluate(e, a, 0.5, &d);
    j = log_decision(&d, a, "a/web");
    expect_json_str(j, "event", "authz");
    expect_json_str(j, "decision", "deny");
    expect_json_str(j, "policy", "a/deny-admin");
    expect_json_int(j, "rule", 0);
    expect_json_str(j, "action", "DENY");
    expect_json_str(j, "reason", "denied by policy");
    expect_json_str(j, "explanation", "denied by DENY policy a/deny-admin rule 0");
    expect_json_str(j, "source_principal", SA_AX);
    expect_json_str(j, "source_namespace", "a");
    expect_json_str(j, "source_ip", "10.1.2.3");
    expect_json_str(j, "destination_workload", "a/web");
    expect_json_str(j, "destination_ip", "192.168.0.7");
    expect_json_int(j, "destination_port", 8080);
    expect_json_str(j, "protocol", "http1");
    expect_json_str(j, "method", "GET");
    expect_json_str(j, "path", "/admin?x=1"); /* as given: the target the app receives */
    expect_json_str(j, "host", "web.a:8080");
    expect_json_str(j, "trace_id", "4bf92f3577b34da6a3ce929d0e0e4736");
    json_decref(j);

    /* HTTP/2, allowed, B3 trace id */
    a = make_attrs(&(req_t){.principal = SA_BY,
                            .port = 80,
                            .method = "POST",
                            .path = "/ok",
                            .headers = {"x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"}},
                   &rb);
    rb.http.http2 = 1;
    rm_authz_evaluate(e, a, 0.5, &d);
    j = log_decision(&d, a, NULL);
    expect_json_str(j, "decision", "allow");
    expect_json_str(j, "policy", "a/allow-all");
    expect_json_str(j, "reason", "allowed by policy");
    expect_json_str(j, "source_namespace", "b");
    expect_json_str(j, "protocol", "http2");
    expect_json_str(j, "trace_id", "80f198ee56343ba864fe8b2a57d3eff7");
    expect_json_str(j, "destination_workload", NULL);
    json_decref(j);
    /* the caller's trace id (the proxy's tracing, which knows the trace it starts) wins over the headers */
    rm_authz_attrs_t with_id = *a;
    with_id.trace_id = "0af7651916cd43dd8448eb211c80319c";
    j = log_decision(&d, &with_id, NULL);
    expect_json_str(j, "trace_id", "0af7651916cd43dd8448eb211c80319c");
    json_decref(j);
    rm_authz_engine_free(e);

    /* TCP, plaintext, default-deny: no policy, no principal, no HTTP fields */
    e = compile_set(&none, RM_AUTHZ_DENY);
    a = make_attrs(&(req_t){.src_ip = "2001:db8::5", .port = 5432}, &rb);
    rm_authz_evaluate(e, a, 0.5, &d);
    j = log_decision(&d, a, "a/db");
    expect_json_str(j, "decision", "deny");
    assert_true(json_is_null(json_object_get(j, "policy")));
    assert_null(json_object_get(j, "rule"));
    expect_json_str(j, "reason", "default-deny");
    assert_true(json_is_null(json_object_get(j, "source_principal")));
    assert_null(json_object_get(j, "source_namespace"));
    expect_json_str(j, "source_ip", "2001:db8::5");
    expect_json_int(j, "destination_port", 5432);
    expect_json_str(j, "protocol", "tcp");
    assert_null(json_object_get(j, "method"));
    assert_null(json_object_get(j, "trace_id"));
    json_decref(j);
    rm_authz_engine_free(e);
    rm_policy_set_clear(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lint),
        cmocka_unit_test(test_log_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
