/* A route rule's filters applied to a request (lib/route_apply.c), rules read by the real reader: the Gateway API's
 * ReplacePrefixMatch table (trailing slashes, the root prefix, query strings kept), ReplaceFullPath, a hostname
 * rewrite, RequestHeaderModifier's set/add/remove (case-insensitive, repeated lines), ResponseHeaderModifier on a
 * response, RequestRedirect's Location (scheme, hostname, port rules, path, status), and the bounded arena. The
 * vectors follow the cases of the Gateway API's conformance tests (written here anew). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/route_apply.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rm_route_list_t list;

/* Reads one HTTPRoute whose single rule is `rule` (YAML at the indentation of a rule's keys) and returns it. */
static const rm_route_rule_t *rule_of(const char *rule)
{
    static char yaml[4096];
    rm_config_error_t err = {0};
    char msg[512];
    rm_route_list_clear(&list);
    snprintf(yaml, sizeof(yaml),
             "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: shop}\n"
             "spec:\n  parentRefs: [{group: \"\", kind: Service, name: orders}]\n  rules:\n  - %s\n",
             rule);
    if (rm_route_load_yaml(&list, yaml, strlen(yaml), "r.yaml", &err) != 0) {
        rm_config_error_format(&err, msg, sizeof(msg));
        fail_msg("%s\n%s", msg, yaml);
    }
    return &list.routes[0]->rules[0];
}

static int teardown(void **state)
{
    (void)state;
    rm_route_list_clear(&list);
    return 0;
}

#define HDR(n, v)                                                                                                      \
    {                                                                                                                  \
        .name = n, .name_len = sizeof(n) - 1, .value = v, .value_len = sizeof(v) - 1                                   \
    }

typedef struct st_env_t {
    char buf[512];
    rm_http_header_t hdrs[16];
    rm_route_arena_t arena;
    rm_route_applied_t out;
} env_t;

static int apply(env_t *e, const rm_route_rule_t *rule, const char *path, const char *host,
                 const rm_http_header_t *headers, size_t num, uint16_t port)
{
    rm_http_request_t req = {.method = "GET",
                             .method_len = 3,
                             .path = path,
                             .path_len = strlen(path),
                             .host = host,
                             .host_len = host != NULL ? strlen(host) : 0,
                             .headers = headers,
                             .num_headers = num};
    e->arena = (rm_route_arena_t){.buf = e->buf, .cap = sizeof(e->buf), .headers = e->hdrs, .headers_cap = 16};
    return rm_route_apply(rule, 0, &req, port, &e->arena, &e->out);
}

static char *str(const char *s, size_t len)
{
    static char b[4][512];
    static int i;
    char *o = b[i++ % 4];
    snprintf(o, 512, "%.*s", (int)len, s);
    return o;
}

static void test_prefix_rewrite(void **state)
{
    (void)state;
    static const struct {
        const char *prefix, *replace, *path, *want;
    } v[] = {
        {"/foo", "/xyz", "/foo/bar", "/xyz/bar"},
        {"/foo", "/xyz/", "/foo/bar", "/xyz/bar"},
        {"/foo/", "/xyz", "/foo/bar", "/xyz/bar"},
        {"/foo/", "/xyz/", "/foo/bar", "/xyz/bar"},
        {"/foo", "/xyz", "/foo", "/xyz"},
        {"/foo", "/xyz", "/foo/", "/xyz/"},
        {"/foo", "/", "/foo/bar", "/bar"},
        {"/foo/", "/", "/foo/", "/"},
        {"/foo", "/", "/foo", "/"},
        {"/", "/api", "/x/y", "/api/x/y"},
        {"/", "/", "/x", "/x"},
        {"/", "/api/", "/", "/api/"},
        {"/prefix/one", "/one", "/prefix/one/two?q=1&r", "/one/two?q=1&r"},
        {"/strip-prefix", "/", "/strip-prefix", "/"},
        {"/strip-prefix", "/", "/strip-prefix/three", "/three"},
        {"/strip-prefix", "/", "/strip-prefix?a=b", "/?a=b"},
        {"/a/b", "/c", "/a/b/", "/c/"},
    };
    char rule[512];
    env_t e;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        snprintf(rule, sizeof(rule),
                 "matches: [{path: {type: PathPrefix, value: '%s'}}]\n"
                 "    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: "
                 "'%s'}}}]",
                 v[i].prefix, v[i].replace);
        assert_int_equal(apply(&e, rule_of(rule), v[i].path, "orders", NULL, 0, 80), 0);
        if (strcmp(str(e.out.path, e.out.path_len), v[i].want) != 0)
            fail_msg("prefix %s replace %s path %s: got %s, want %s", v[i].prefix, v[i].replace, v[i].path,
                     str(e.out.path, e.out.path_len), v[i].want);
        assert_int_equal(e.out.redirect_status, 0);
        assert_string_equal(str(e.out.authority, e.out.authority_len), "orders");
    }
}

static void test_full_path_and_hostname(void **state)
{
    (void)state;
    env_t e;
    static const rm_http_header_t hs[] = {HDR("accept", "*/*"), HDR("host", "orders:8080")};
    const rm_route_rule_t *r =
        rule_of("matches: [{path: {type: PathPrefix, value: /full}}]\n"
                "    filters: [{type: URLRewrite, urlRewrite: {hostname: elsewhere.example, path: {type: "
                "ReplaceFullPath, replaceFullPath: /one}}}]");
    assert_int_equal(apply(&e, r, "/full/one/two?x=1", "orders:8080", hs, 2, 8080), 0);
    assert_string_equal(str(e.out.path, e.out.path_len), "/one?x=1");
    assert_string_equal(str(e.out.authority, e.out.authority_len), "elsewhere.example");
    assert_int_equal(e.out.num_headers, 2);
    assert_string_equal(str(e.out.headers[0].value, e.out.headers[0].value_len), "*/*");
    assert_string_equal(str(e.out.headers[1].value, e.out.headers[1].value_len), "elsewhere.example");

    /* no filter: the request as it is, nothing built */
    r = rule_of("backendRefs: [{name: orders, port: 8080}]");
    assert_int_equal(apply(&e, r, "/a?b", "orders", hs, 2, 8080), 0);
    assert_int_equal(e.arena.used, 0);
    assert_ptr_equal(e.out.headers, hs);
    assert_string_equal(str(e.out.path, e.out.path_len), "/a?b");
    assert_null(e.out.response_headers);
}

static void test_header_modifiers(void **state)
{
    (void)state;
    env_t e;
    static const rm_http_header_t hs[] = {
        HDR("x-header-set", "some-value"),  HDR("x-header-remove", "gone"), HDR("X-Header-Add-Append", "mine"),
        HDR("X-Header-Set", "second-line"), HDR("other", "keep"),           HDR("X-HEADER-REMOVE", "gone too"),
    };
    const rm_route_rule_t *r = rule_of(
        "filters:\n"
        "    - type: RequestHeaderModifier\n"
        "      requestHeaderModifier:\n"
        "        set: [{name: X-Header-Set, value: set-overwrites-values}, {name: x-new, value: fresh}]\n"
        "        add: [{name: X-Header-Add, value: header-val-1}, {name: X-Header-Add-Append, value: appended}]\n"
        "        remove: [X-Header-Remove]\n"
        "    - type: ResponseHeaderModifier\n"
        "      responseHeaderModifier: {set: [{name: x-served-by, value: mesh}], remove: [server]}");
    static const char *const want[][2] = {
        {"x-header-set", "set-overwrites-values"},
        {"X-Header-Add-Append", "mine"},
        {"other", "keep"},
        {"x-new", "fresh"},
        {"x-header-add", "header-val-1"},
        {"x-header-add-append", "appended"},
    };
    assert_int_equal(apply(&e, r, "/", "orders", hs, 6, 80), 0);
    assert_int_equal(e.out.num_headers, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(str(e.out.headers[i].name, e.out.headers[i].name_len), want[i][0]);
        assert_string_equal(str(e.out.headers[i].value, e.out.headers[i].value_len), want[i][1]);
    }
    assert_non_null(e.out.response_headers);

    /* the response side, on a response's headers, in the same arena */
    static const rm_http_header_t resp[] = {HDR("server", "app"), HDR("content-type", "text/plain"),
                                            HDR("x-served-by", "pod-a")};
    const rm_http_header_t *out;
    size_t n;
    assert_int_equal(rm_route_apply_headers(e.out.response_headers, resp, 3, &e.arena, &out, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(str(out[0].name, out[0].name_len), "content-type");
    assert_string_equal(str(out[1].name, out[1].name_len), "x-served-by");
    assert_string_equal(str(out[1].value, out[1].value_len), "mesh");
    /* the request's list is intact */
    assert_string_equal(str(e.out.headers[0].value, e.out.headers[0].value_len), "set-overwrites-values");
    /* a set name that is also removed: removed first, then set */
    r = rule_of("filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: a, value: '1'}], "
                "remove: [a]}}]");
    static const rm_http_header_t one[] = {HDR("A", "0")};
    assert_int_equal(apply(&e, r, "/", "orders", one, 1, 80), 0);
    assert_int_equal(e.out.num_headers, 1);
    assert_string_equal(str(e.out.headers[0].value, e.out.headers[0].value_len), "1");
}

static void test_redirects(void **state)
{
    (void)state;
    static const struct {
        const char *redirect, *path, *host;
        uint16_t port;
        int status;
        const char *location;
    } v[] = {
        {"{hostname: example.org}", "/hostname-redirect", "orders", 80, 302, "http://example.org/hostname-redirect"},
        {"{hostname: example.org}", "/p?x=1", "orders:8080", 8080, 302, "http://example.org:8080/p?x=1"},
        {"{scheme: https}", "/scheme", "orders.shop:8080", 8080, 302, "https://orders.shop/scheme"},
        {"{scheme: https, port: 8443}", "/s", "orders.shop", 80, 302, "https://orders.shop:8443/s"},
        {"{scheme: http, port: 80}", "/s", "orders.shop:8080", 8080, 302, "http://orders.shop/s"},
        {"{scheme: http}", "/s", "orders.shop:8080", 8080, 302, "http://orders.shop/s"},
        {"{port: 9090}", "/s", "orders", 80, 302, "http://orders:9090/s"},
        {"{port: 443, scheme: https, statusCode: 301}", "/s", "orders", 80, 301, "https://orders/s"},
        {"{statusCode: 301, path: {type: ReplaceFullPath, replaceFullPath: /new}}", "/old/x?q", "orders", 80, 301,
         "http://orders/new?q"},
        {"{path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}}", "/original-prefix/lemon",
         "orders", 80, 302, "http://orders/replacement-prefix/lemon"},
        {"{path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}}", "/original-prefix", "orders",
         80, 302, "http://orders/replacement-prefix"},
        {"{hostname: example.org}", "/v6", "[fd00::1]:8080", 8080, 302, "http://example.org:8080/v6"},
        {"{port: 8081}", "/v6", "[fd00::1]:8080", 8080, 302, "http://[fd00::1]:8081/v6"},
    };
    char rule[512];
    env_t e;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        snprintf(rule, sizeof(rule),
                 "matches: [{path: {type: PathPrefix, value: /original-prefix}}]\n"
                 "    filters: [{type: RequestRedirect, requestRedirect: %s}]",
                 v[i].redirect);
        assert_int_equal(apply(&e, rule_of(rule), v[i].path, v[i].host, NULL, 0, v[i].port), 0);
        assert_int_equal(e.out.redirect_status, v[i].status);
        if (strcmp(str(e.out.location, e.out.location_len), v[i].location) != 0)
            fail_msg("%s on %s (host %s, port %u): got %s, want %s", v[i].redirect, v[i].path, v[i].host, v[i].port,
                     str(e.out.location, e.out.location_len), v[i].location);
    }
    /* no hostname anywhere: the caller answers 400 */
    const rm_route_rule_t *r = rule_of("filters: [{type: RequestRedirect, requestRedirect: {scheme: https}}]");
    assert_int_equal(apply(&e, r, "/", NULL, NULL, 0, 80), -EINVAL);
}

static void test_arena_bounds(void **state)
{
    (void)state;
    char small[8];
    rm_http_header_t two[2];
    rm_route_applied_t out;
    static const rm_http_header_t hs[] = {HDR("a", "1"), HDR("b", "2"), HDR("c", "3")};
    rm_http_request_t req = {.method = "GET",
                             .method_len = 3,
                             .path = "/foo/long/enough",
                             .path_len = 16,
                             .host = "orders",
                             .host_len = 6,
                             .headers = hs,
                             .num_headers = 3};
    rm_route_arena_t a = {.buf = small, .cap = sizeof(small), .headers = two, .headers_cap = 2};
    const rm_route_rule_t *r =
        rule_of("matches: [{path: {value: /foo}}]\n"
                "    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: "
                "/xyz}}}]");
    assert_int_equal(rm_route_apply(r, 0, &req, 80, &a, &out), -ENOSPC);
    assert_true(a.used <= a.cap);
    r = rule_of("filters: [{type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: d, value: '4'}]}}]");
    a = (rm_route_arena_t){.buf = small, .cap = sizeof(small), .headers = two, .headers_cap = 2};
    assert_int_equal(rm_route_apply(r, 0, &req, 80, &a, &out), -ENOSPC);
    r = rule_of("filters: [{type: RequestRedirect, requestRedirect: {hostname: a-rather-long-host.example}}]");
    a = (rm_route_arena_t){.buf = small, .cap = sizeof(small), .headers = two, .headers_cap = 2};
    assert_int_equal(rm_route_apply(r, 0, &req, 80, &a, &out), -ENOSPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_prefix_rewrite, teardown),
        cmocka_unit_test_teardown(test_full_path_and_hostname, teardown),
        cmocka_unit_test_teardown(test_header_modifiers, teardown),
        cmocka_unit_test_teardown(test_redirects, teardown),
        cmocka_unit_test_teardown(test_arena_bounds, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
