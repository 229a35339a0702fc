/* Why not allowed (lib/policy_explain.c): the closest miss of a request no ALLOW rule matched, in words, in the
 * decision log's "closest_miss" object; and the "attributes" object of the log (lib/policy_log_attrs.c), which
 * never carries a credential. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "policy_fixtures.h"
#include "ringmesh/log.h"
#include "ringmesh/policy.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct st_miss_case_t {
    int line;
    const char *yaml;
    req_t req;
    const char *explain; /* the closest miss in words; NULL: no closest miss */
    const char *field;
    const char *got; /* NULL: the request has no value */
    unsigned matched, fields;
} miss_case_t;

#define READERS                                                                                                        \
    POLICY("shop", "orders-readers", "ALLOW")                                                                          \
    "  rules:\n"                                                                                                       \
    "  - from: [{source: {namespaces: [web]}}]\n"                                                                      \
    "    to: [{operation: {methods: [GET], paths: [\"/orders/*\"]}}]\n"

static const char y_readers[] = READERS;
/* rule 1 matches two fields of three for a DELETE from web, rule 0 one: rule 1 is the closest */
static const char y_two_rules[] =
    POLICY("shop", "p", "ALLOW") "  rules:\n"
                                 "  - from: [{source: {namespaces: [billing]}}]\n"
                                 "    to: [{operation: {methods: [GET]}}]\n"
                                 "  - from: [{source: {namespaces: [web]}}]\n"
                                 "    to: [{operation: {methods: [GET], paths: [\"/x\"]}}]\n";
/* of two operations, the one that matched more counts: to[1] matches the method, fails the path */
static const char y_two_ops[] = POLICY("shop", "p", "ALLOW") "  rules:\n"
                                                             "  - to:\n"
                                                             "    - operation: {methods: [POST], paths: [\"/a\"]}\n"
                                                             "    - operation: {methods: [GET], paths: [\"/b\"]}\n";
static const char y_not_methods[] =
    POLICY("shop", "p", "ALLOW") "  rules:\n  - to: [{operation: {notMethods: [DELETE, PUT]}}]\n";
static const char y_when[] = POLICY("shop", "p", "ALLOW") "  rules:\n"
                                                          "  - when:\n"
                                                          "    - key: request.headers[x-team]\n"
                                                          "      values: [\"pay*\"]\n";
static const char y_principals[] = POLICY("shop", "p", "ALLOW") "  rules:\n"
                                                                "  - from: [{source: {principals: [\"" SA_AX "\"]}}]\n";
static const char y_ports[] = POLICY("shop", "p", "ALLOW") "  rules:\n  - to: [{operation: {ports: [\"9090\"]}}]\n";
static const char y_ip[] =
    POLICY("shop", "p", "ALLOW") "  rules:\n  - from: [{source: {ipBlocks: [\"10.0.0.0/8\"]}}]\n";
static const char y_secret[] = POLICY("shop", "p", "ALLOW") "  rules:\n"
                                                            "  - when:\n"
                                                            "    - key: request.headers[authorization]\n"
                                                            "      values: [\"Bearer good\"]\n";
/* a dry-run ALLOW policy is not in force: it is never the closest miss */
static const char y_dry[] =
    AP_HEAD "metadata:\n  name: dry\n  namespace: shop\n"
            "  annotations: {ringmesh.io/dry-run: \"true\"}\n"
            "spec:\n  action: ALLOW\n  rules:\n  - to: [{operation: {methods: [DELETE]}}]\n"
            "---\n" POLICY("shop", "p", "ALLOW") "  rules:\n"
                                                 "  - to: [{operation: {methods: [GET], paths: [\"/x\"]}}]\n";

#define WEB "spiffe://cluster.local/ns/web/sa/frontend"

static const miss_case_t cases[] = {
    {__LINE__,
     y_readers,
     {.principal = WEB, .method = "DELETE", .path = "/orders/7"},
     "shop/orders-readers rule 0: methods [GET] did not match DELETE",
     "to[0].operation.methods",
     "DELETE",
     2,
     3},
    {__LINE__,
     y_readers,
     {.principal = WEB, .method = "GET", .path = "/admin?x=1"},
     "shop/orders-readers rule 0: paths [/orders/*] did not match /admin",
     "to[0].operation.paths",
     "/admin",
     2,
     3},
    {__LINE__,
     y_readers,
     {.principal = SA_BY, .method = "GET", .path = "/orders/1"},
     "shop/orders-readers rule 0: namespaces [web] did not match b",
     "from[0].source.namespaces",
     "b",
     2,
     3},
    {__LINE__,
     y_readers,
     {.method = "GET", .path = "/orders/1"},
     "shop/orders-readers rule 0: namespaces [web] did not match: the peer has no mTLS identity",
     "from[0].source.namespaces",
     NULL,
     2,
     3},
    {__LINE__,
     y_readers,
     {.principal = WEB, .port = 7070},
     "shop/orders-readers rule 0: methods [GET] did not match: the connection is not HTTP",
     "to[0].operation.methods",
     NULL,
     1,
     3},
    {__LINE__,
     y_two_rules,
     {.principal = WEB, .method = "GET", .path = "/y"},
     "shop/p rule 1: paths [/x] did not match /y",
     "to[0].operation.paths",
     "/y",
     2,
     3},
    {__LINE__,
     y_two_ops,
     {.method = "GET", .path = "/c"},
     "shop/p rule 0: paths [/b] did not match /c",
     "to[1].operation.paths",
     "/c",
     1,
     2},
    {__LINE__,
     y_not_methods,
     {.method = "PUT", .path = "/"},
     "shop/p rule 0: notMethods [DELETE, PUT] matched PUT",
     "to[0].operation.notMethods",
     "PUT",
     0,
     1},
    {__LINE__,
     y_when,
     {.method = "GET", .path = "/", .headers = {"x-team", "ops"}},
     "shop/p rule 0: when[0] request.headers[x-team] values [pay*] did not match ops",
     "when[0].values",
     "ops",
     0,
     1},
    {__LINE__,
     y_when,
     {.method = "GET", .path = "/", .headers = {"X-Team", "ops", "x-team", "web"}},
     "shop/p rule 0: when[0] request.headers[x-team] values [pay*] did not match ops,web",
     "when[0].values",
     "ops,web",
     0,
     1},
    {__LINE__,
     y_when,
     {.method = "GET", .path = "/"},
     "shop/p rule 0: when[0] request.headers[x-team] values [pay*] did not match: the request has no such header",
     "when[0].values",
     NULL,
     0,
     1},
    {__LINE__,
     y_principals,
     {.principal = SA_BY, .port = 7070},
     "shop/p rule 0: principals [" SA_AX "] did not match " SA_BY,
     "from[0].source.principals",
     SA_BY,
     0,
     1},
    {__LINE__,
     y_ports,
     {.port = 8080},
     "shop/p rule 0: ports [9090] did not match 8080",
     "to[0].operation.ports",
     "8080",
     0,
     1},
    {__LINE__,
     y_ip,
     {.src_ip = "192.0.2.7", .port = 7070},
     "shop/p rule 0: ipBlocks [10.0.0.0/8] did not match 192.0.2.7",
     "from[0].source.ipBlocks",
     "192.0.2.7",
     0,
     1},
    /* a credential the rule tests is named, its value never shown */
    {__LINE__,
     y_secret,
     {.method = "GET", .path = "/", .headers = {"authorization", "Bearer s3cret-token"}},
     "shop/p rule 0: when[0] request.headers[authorization] values [Bearer good] did not match (a credential: not "
     "shown)",
     "when[0].values",
     "(a credential: not shown)",
     0,
     1},
    {__LINE__,
     y_dry,
     {.method = "DELETE", .path = "/"},
     "shop/p rule 0: methods [GET] did not match DELETE",
     "to[0].operation.methods",
     "DELETE",
     0,
     2},
};

static json_t *log_json(const rm_authz_decision_t *d, const rm_authz_attrs_t *a, const rm_authz_engine_t *attrs_of)
{
    int fds[2];
    char buf[RM_LOG_LINE_MAX + 1];
    rm_log_line_t l;
    json_error_t jerr;

    assert_int_equal(pipe(fds), 0);
    rm_log_configure(RM_LOG_INFO, fds[1]);
    rm_log_begin(&l, RM_LOG_INFO, "authz");
    rm_authz_log_fields(&l, d, a, "shop/orders");
    if (attrs_of != NULL)
        rm_authz_log_attributes(&l, attrs_of, a);
    rm_log_end(&l);
    rm_log_configure(RM_LOG_INFO, 1);
    close(fds[1]);
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    json_t *j = json_loads(buf, 0, &jerr);
    if (j == NULL)
        fail_msg("not JSON: %s: %s", jerr.text, buf);
    return j;
}

static void closest_miss_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const miss_case_t *c = &cases[i];
        rm_policy_set_t set = {0};
        req_buf_t b;
        rm_authz_decision_t d;
        char text[1024], field[128], got[600];

        print_message("case at line %d\n", c->line);
        load_ok(&set, c->yaml);
        rm_authz_engine_t *e = compile_set(&set, RM_AUTHZ_DENY);
        const rm_authz_attrs_t *a = make_attrs(&c->req, &b);
        rm_authz_evaluate(e, a, 0.0, &d);
        assert_int_equal(d.allow, 0);
        assert_int_equal(d.reason, RM_AUTHZ_REASON_NO_ALLOW_MATCH);
        rm_authz_closest_miss_explain(&d, a, text, sizeof(text));
        assert_string_equal(text, c->explain);
        assert_string_equal(rm_authz_closest_miss_field(&d, field, sizeof(field)), c->field);
        assert_int_equal(d.miss_matched, c->matched);
        assert_int_equal(d.miss_fields, c->fields);
        assert_int_equal(d.miss_partial, 0);

        json_t *j = log_json(&d, a, NULL), *m = json_object_get(j, "closest_miss");
        assert_non_null(m);
        snprintf(text, sizeof(text), "%s/%s", d.miss_policy->namespace_, d.miss_policy->name);
        assert_string_equal(json_string_value(json_object_get(m, "policy")), text);
        assert_int_equal(json_integer_value(json_object_get(m, "rule")), d.miss_rule);
        assert_string_equal(json_string_value(json_object_get(m, "field")), c->field);
        json_t *want = json_object_get(m, "want");
        assert_true(json_is_array(want));
        assert_int_equal(json_array_size(want), d.miss_want->n);
        for (size_t k = 0; k < d.miss_want->n; k++)
            assert_string_equal(json_string_value(json_array_get(want, k)), d.miss_want->v[k]);
        if (c->got == NULL) {
            assert_true(json_is_null(json_object_get(m, "got")));
            assert_int_equal(rm_authz_closest_miss_got(&d, a, got, sizeof(got)), 0);
        } else {
            assert_string_equal(json_string_value(json_object_get(m, "got")), c->got);
        }
        /* the explanation says it too */
        const char *why = json_string_value(json_object_get(j, "explanation"));
        assert_non_null(why);
        assert_non_null(strstr(why, c->explain));
        char *line = json_dumps(j, 0);
        assert_non_null(line);
        assert_null(strstr(line, "s3cret")); /* a credential's value is never in the line */
        free(line);
        json_decref(j);
        rm_authz_engine_free(e);
        rm_policy_set_clear(&set);
    }
}

/* an allowed request, a default deny and a DENY policy's denial name no closest miss */
static void no_closest_miss(void **state)
{
    (void)state;
    rm_policy_set_t set = {0};
    req_buf_t b;
    rm_authz_decision_t d;
    char text[256] = "x";
    req_t get = {.principal = WEB, .method = "GET", .path = "/orders/1"};

    load_ok(&set, y_readers);
    rm_authz_engine_t *e = compile_set(&set, RM_AUTHZ_DENY);
    rm_authz_evaluate(e, make_attrs(&get, &b), 0.0, &d);
    assert_int_equal(d.allow, 1);
    assert_null(d.miss_policy);
    rm_authz_closest_miss_explain(&d, &b.a, text, sizeof(text));
    assert_string_equal(text, "");
    json_t *j = log_json(&d, &b.a, NULL);
    assert_null(json_object_get(j, "closest_miss"));
    json_decref(j);
    rm_authz_engine_free(e);
    rm_policy_set_clear(&set);

    load_ok(&set, POLICY("shop", "deny-delete", "DENY") "  rules:\n  - to: [{operation: {methods: [DELETE]}}]\n");
    e = compile_set(&set, RM_AUTHZ_DENY);
    get.method = "DELETE";
    rm_authz_evaluate(e, make_attrs(&get, &b), 0.0, &d);
    assert_int_equal(d.reason, RM_AUTHZ_REASON_POLICY);
    assert_int_equal(d.allow, 0);
    assert_null(d.miss_policy);
    get.method = "GET";
    rm_authz_evaluate(e, make_attrs(&get, &b), 0.0, &d);
    assert_int_equal(d.reason, RM_AUTHZ_REASON_DEFAULT_DENY);
    assert_null(d.miss_policy);
    rm_authz_engine_free(e);
    rm_policy_set_clear(&set);
}

/* A workload with more ALLOW conditions than one denial examines: the rules filed under the request's own values are
 * examined first, so the closest miss is still the rule that names the caller, and the decision says it is partial. */
static void closest_miss_in_a_large_set(void **state)
{
    (void)state;
    static char yaml[64 * 1024];
    size_t o = (size_t)snprintf(yaml, sizeof(yaml), POLICY("shop", "many", "ALLOW") "  rules:\n");
    for (int i = 0; i < 200; i++)
        o += (size_t)snprintf(yaml + o, sizeof(yaml) - o,
                              "  - from: [{source: {principals: [\"cluster.local/ns/a/sa/s%d\"]}}]\n"
                              "    to: [{operation: {methods: [GET]}}]\n",
                              i);
    rm_policy_set_t set = {0};
    req_buf_t b;
    rm_authz_decision_t d;
    char text[512];
    req_t post = {.principal = "spiffe://cluster.local/ns/a/sa/s190", .method = "POST", .path = "/"};

    load_ok(&set, yaml);
    rm_authz_engine_t *e = compile_set(&set, RM_AUTHZ_DENY);
    rm_authz_evaluate(e, make_attrs(&post, &b), 0.0, &d);
    assert_int_equal(d.reason, RM_AUTHZ_REASON_NO_ALLOW_MATCH);
    rm_authz_closest_miss_explain(&d, &b.a, text, sizeof(text));
    assert_string_equal(text, "shop/many rule 190: methods [GET] did not match POST");
    assert_int_equal(d.miss_partial, 1);
    json_t *j = log_json(&d, &b.a, NULL);
    assert_true(json_is_true(json_object_get(json_object_get(j, "closest_miss"), "partial")));
    json_decref(j);
    /* a caller no rule names: the closest among those examined, in decision order */
    post.principal = "spiffe://cluster.local/ns/a/sa/nobody";
    post.method = "GET";
    rm_authz_evaluate(e, make_attrs(&post, &b), 0.0, &d);
    rm_authz_closest_miss_explain(&d, &b.a, text, sizeof(text));
    assert_string_equal(text, "shop/many rule 0: principals [cluster.local/ns/a/sa/s0] did not match "
                              "spiffe://cluster.local/ns/a/sa/nobody");
    rm_authz_engine_free(e);
    rm_policy_set_clear(&set);
}

/* The search reads fields the decision did not (rules the index left out): a repeated header too long to join that
 * only the search read leaves the reason as it was. */
static void closest_miss_keeps_the_reason(void **state)
{
    (void)state;
    static char big[5000];
    rm_policy_set_t set = {0};
    rm_authz_decision_t d;
    rm_authz_attrs_t a = {0};
    rm_http_request_t r = {0};
    char text[512];
    memset(big, 'v', sizeof(big) - 1);
    rm_http_header_t h[] = {{"x-h", 3, big, sizeof(big) - 1}, {"x-h", 3, big, sizeof(big) - 1}};

    load_ok(&set, POLICY("shop", "p", "ALLOW") "  rules:\n"
                                               "  - from: [{source: {principals: [\"" SA_AX "\"]}}]\n"
                                               "    when: [{key: \"request.headers[x-h]\", values: [a]}]\n");
    rm_authz_engine_t *e = compile_set(&set, RM_AUTHZ_DENY);
    r.method = "GET", r.method_len = 3, r.path = "/", r.path_len = 1;
    r.headers = h, r.num_headers = 2;
    a.principal = SA_BY;
    a.http = &r;
    a.destination_port = 8080;
    rm_authz_evaluate(e, &a, 0.0, &d);
    assert_int_equal(d.reason, RM_AUTHZ_REASON_NO_ALLOW_MATCH);
    rm_authz_closest_miss_explain(&d, &a, text, sizeof(text));
    assert_string_equal(text, "shop/p rule 0: principals [" SA_AX "] did not match " SA_BY);
    rm_authz_engine_free(e);
    rm_policy_set_clear(&set);
}

/* The attributes object: what the engine reads, the headers its policies test, never a credential's value even when
 * a policy tests it, and nothing of headers no policy tests. */
static void attributes_without_secrets(void **state)
{
    (void)state;
    rm_policy_set_t set = {0};
    rm_authz_decision_t d;
    rm_authz_attrs_t a = {0};
    rm_http_request_t r = {0};
    static const char *const secrets[] = {"Bearer s3cret-auth", "Basic cHJveHk6czNjcmV0", "session=s3cret-cookie",
                                          "id=s3cret-set-cookie"};
    rm_http_header_t h[] = {
        {"Authorization", 13, secrets[0], strlen(secrets[0])},
        {"Proxy-Authorization", 19, secrets[1], strlen(secrets[1])},
        {"Cookie", 6, secrets[2], strlen(secrets[2])},
        {"Set-Cookie", 10, secrets[3], strlen(secrets[3])},
        {"x-team", 6, "payments", 8},
        {"x-untested", 10, "not-logged", 10},
        {"X-Team", 6, "ops", 3},
    };

    /* the policies test every one of the secret headers, and x-team */
    load_ok(&set,
            POLICY("shop", "p", "ALLOW") "  rules:\n"
                                         "  - when:\n"
                                         "    - {key: \"request.headers[authorization]\", values: [\"*\"]}\n"
                                         "    - {key: \"request.headers[proxy-authorization]\", values: [\"*\"]}\n"
                                         "    - {key: \"request.headers[cookie]\", values: [\"*\"]}\n"
                                         "    - {key: \"request.headers[set-cookie]\", values: [\"*\"]}\n"
                                         "    - {key: \"request.headers[x-team]\", values: [\"pay*\"]}\n");
    rm_authz_engine_t *e = compile_set(&set, RM_AUTHZ_DENY);
    r.method = "GET", r.method_len = 3;
    r.path = "/orders/1?x=2", r.path_len = 13;
    r.host = "orders.shop", r.host_len = 11;
    r.headers = h, r.num_headers = sizeof(h) / sizeof(h[0]);
    a.principal = WEB;
    a.http = &r;
    a.destination_port = 8080;
    assert_int_equal(rm_authz_ip_parse("198.18.0.9", a.source_ip), 0);
    a.have_source_ip = 1;
    rm_authz_evaluate(e, &a, 0.0, &d);
    assert_int_equal(d.allow, 1);

    json_t *j = log_json(&d, &a, e);
    char *text = json_dumps(j, 0);
    assert_non_null(text);
    if (strstr(text, "s3cret") != NULL || strstr(text, "cHJveHk6") != NULL || strstr(text, "not-logged") != NULL)
        fail_msg("a credential or an untested header is in the line: %s", text);
    json_t *at = json_object_get(j, "attributes");
    assert_non_null(at);
    assert_string_equal(json_string_value(json_object_get(at, "principal")), WEB);
    assert_string_equal(json_string_value(json_object_get(at, "source_ip")), "198.18.0.9");
    assert_int_equal(json_integer_value(json_object_get(at, "destination_port")), 8080);
    assert_string_equal(json_string_value(json_object_get(at, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(at, "path")), "/orders/1?x=2");
    assert_string_equal(json_string_value(json_object_get(at, "host")), "orders.shop");
    json_t *hs = json_object_get(at, "headers");
    assert_int_equal(json_object_size(hs), 1);
    assert_string_equal(json_string_value(json_object_get(hs, "x-team")), "payments,ops");
    free(text);
    json_decref(j);
    rm_authz_engine_free(e);
    rm_policy_set_clear(&set);
}

/* Objects and arrays in a line, and a line too long for the buffer, stay valid JSON. */
static void log_nesting(void **state)
{
    (void)state;
    int fds[2];
    static char buf[2 * RM_LOG_LINE_MAX];
    rm_log_line_t l;
    json_error_t jerr;
    char big[512];

    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(pipe(fds), 0);
    rm_log_configure(RM_LOG_INFO, fds[1]);
    rm_log_begin(&l, RM_LOG_INFO, "t");
    rm_log_object_begin(&l, "o");
    rm_log_object_end(&l);
    rm_log_object_begin(&l, "a");
    rm_log_array_begin(&l, "list");
    for (int i = 0; i < 20; i++)
        rm_log_array_strn(&l, big, strlen(big));
    rm_log_array_end(&l);
    rm_log_str(&l, "after", "x");
    rm_log_object_end(&l);
    rm_log_end(&l);
    rm_log_configure(RM_LOG_INFO, 1);
    close(fds[1]);
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    json_t *j = json_loads(buf, 0, &jerr);
    if (j == NULL)
        fail_msg("not JSON: %s: %s", jerr.text, buf);
    assert_true(json_is_object(json_object_get(j, "o")));
    assert_true(json_is_true(json_object_get(j, "truncated")));
    json_t *list = json_object_get(json_object_get(j, "a"), "list");
    assert_true(json_array_size(list) > 0 && json_array_size(list) < 20);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(closest_miss_table),          cmocka_unit_test(no_closest_miss),
        cmocka_unit_test(closest_miss_in_a_large_set), cmocka_unit_test(closest_miss_keeps_the_reason),
        cmocka_unit_test(attributes_without_secrets),  cmocka_unit_test(log_nesting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
