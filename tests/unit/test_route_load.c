/* Reading HTTPRoute and GRPCRoute documents (lib/route_yaml.c, route_json.c, route_filters.c): what a valid route
 * becomes (defaults included), and a table of invalid ones, each refused with its file, line, column and field and
 * a reason, among them what the mesh does not support. Also a route read from a JSON object, as the Kubernetes
 * source hands them over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/error.h"
#include "ringmesh/route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEAD                                                                                                           \
    "apiVersion: gateway.networking.k8s.io/v1\n"                                                                       \
    "kind: HTTPRoute\n"                                                                                                \
    "metadata: {name: r, namespace: shop}\n"                                                                           \
    "spec:\n"                                                                                                          \
    "  parentRefs: [{group: \"\", kind: Service, name: orders}]\n"

static void test_valid(void **state)
{
    static const char yaml[] = "apiVersion: ringmesh.io/v1alpha1\n"
                               "kind: Service\n"
                               "metadata: {name: orders, namespace: shop}\n"
                               "---\n" HEAD "  rules:\n"
                               "  - name: canary\n"
                               "    matches:\n"
                               "    - path: {type: PathPrefix, value: /api/}\n"
                               "      method: GET\n"
                               "      headers: [{name: X-Canary, value: \"yes\"}]\n"
                               "      queryParams: [{name: debug, type: RegularExpression, value: '1|true'}]\n"
                               "    filters:\n"
                               "    - type: RequestHeaderModifier\n"
                               "      requestHeaderModifier:\n"
                               "        set: [{name: X-Route, value: canary}]\n"
                               "        add: [{name: X-Extra, value: \"1\"}]\n"
                               "        remove: [X-Drop]\n"
                               "    - type: URLRewrite\n"
                               "      urlRewrite: {hostname: orders.shop, path: {type: ReplacePrefixMatch, "
                               "replacePrefixMatch: /v2/}}\n"
                               "    backendRefs:\n"
                               "    - {name: orders-v2, port: 8080, weight: 10}\n"
                               "    - {group: \"\", kind: Service, name: orders-v1, namespace: shop, port: 8080}\n"
                               "    timeouts: {request: 10s, backendRequest: 2s}\n"
                               "    retry: {attempts: 3, codes: [502, 503], backoff: 100ms}\n"
                               "  - filters:\n"
                               "    - type: RequestRedirect\n"
                               "      requestRedirect: {scheme: https, port: 8443, statusCode: 301}\n";
    rm_route_list_t list = {0};
    rm_config_error_t err = {0};
    char msg[1024];
    int ret = rm_route_load_yaml(&list, yaml, strlen(yaml), "r.yaml", &err);
    rm_config_error_format(&err, msg, sizeof(msg));
    if (ret != 0)
        fail_msg("%s", msg);
    assert_int_equal(list.num, 1); /* the Service document is passed over */
    assert_int_equal(list.lines[0], 5);
    const rm_route_t *r = list.routes[0];
    assert_int_equal(r->kind, RM_ROUTE_HTTP);
    assert_string_equal(r->parents[0].namespace_, "shop");
    assert_int_equal(r->parents[0].port, 0);
    assert_int_equal(r->num_rules, 2);
    const rm_route_rule_t *a = &r->rules[0], *b = &r->rules[1];
    assert_string_equal(a->name, "canary");
    assert_string_equal(a->matches[0].path, "/api");
    assert_string_equal(a->matches[0].headers[0].name, "x-canary");
    assert_non_null(a->matches[0].query[0].re);
    assert_int_equal(a->num_filters, 2);
    assert_string_equal(a->filters[0].set[0].name, "x-route");
    assert_string_equal(a->filters[0].remove[0], "x-drop");
    assert_int_equal(a->filters[1].path_type, RM_ROUTE_REWRITE_PREFIX);
    assert_string_equal(a->filters[1].path, "/v2/");
    assert_int_equal(a->backends[1].weight, 1); /* the default */
    assert_int_equal(a->total_weight, 11);
    assert_int_equal(a->request_timeout_ms, 10000);
    assert_int_equal(a->backend_request_timeout_ms, 2000);
    assert_int_equal(a->retry.attempts, 3);
    assert_int_equal(a->retry.num_codes, 2);
    assert_int_equal(a->retry.backoff_ms, 100);
    /* a rule without matches matches every request: PathPrefix "/" */
    assert_int_equal(b->num_matches, 1);
    assert_int_equal(b->matches[0].path_type, RM_ROUTE_PATH_PREFIX);
    assert_string_equal(b->matches[0].path, "/");
    assert_int_equal(b->filters[0].status_code, 301);
    assert_int_equal(b->request_timeout_ms, RM_ROUTE_TIMEOUT_UNSET);
    assert_int_equal(b->retry.set, 0);
    rm_route_list_clear(&list);
}

/* Each document is refused with this "FILE:LINE:COLUMN: FIELD: reason" (the reason's beginning). */
static const struct {
    const char *yaml, *want;
} refusals[] = {
    {"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n"
     "  parentRefs: [{name: gw}]\n",
     "r.yaml:5:16: spec.parentRefs[0]: not supported: a parentRef to gateway.networking.k8s.io/Gateway"},
    {"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n"
     "  parentRefs: [{group: \"\", kind: Service, name: orders, namespace: other}]\n",
     "r.yaml:5:57: spec.parentRefs[0].namespace: not supported: a route in namespace default for a Service of "
     "namespace other"},
    {"apiVersion: gateway.networking.k8s.io/v1beta1\nkind: HTTPRoute\n",
     "r.yaml:1:1: apiVersion: \"gateway.networking.k8s.io/v1beta1\" is not a version this reader takes"},
    {"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: R}\n",
     "r.yaml:3:12: metadata.name: \"R\" is not a DNS-1123 subdomain"},
    {HEAD "  rules:\n  - matches: [{path: {type: Prefix, value: /}}]\n",
     "r.yaml:7:23: spec.rules[0].matches[0].path.type: \"Prefix\" is not a path match type"},
    {HEAD "  rules:\n  - matches: [{path: {value: /a//b}}]\n",
     "r.yaml:7:23: spec.rules[0].matches[0].path.value: \"/a//b\" is not a path to match"},
    {HEAD "  rules:\n  - matches: [{path: {type: RegularExpression, value: '/(a'}}]\n",
     "r.yaml:7:48: spec.rules[0].matches[0].path.value: \"/(a\" is not a POSIX extended regular expression"},
    {HEAD "  rules:\n  - matches: [{method: FETCH}]\n",
     "r.yaml:7:16: spec.rules[0].matches[0].method: \"FETCH\" is not a method the API names"},
    {HEAD "  rules:\n  - matches: [{headers: [{name: a, value: x}, {name: A, value: y}]}]\n",
     "r.yaml:7:48: spec.rules[0].matches[0].headers[1].name: \"a\" is also matched by"},
    {HEAD "  rules:\n  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: x, port: 80}}}]\n",
     "r.yaml:7:16: spec.rules[0].filters[0].type: not supported by the mesh: filter RequestMirror"},
    {HEAD "  rules:\n  - filters: [{type: RequestRedirect, urlRewrite: {hostname: x}}]\n",
     "r.yaml:7:39: spec.rules[0].filters[0].urlRewrite: does not go with type RequestRedirect"},
    {HEAD "  rules:\n  - filters: [{type: RequestRedirect, requestRedirect: {statusCode: 307}}]\n",
     "r.yaml:7:57: spec.rules[0].filters[0].requestRedirect.statusCode: 307 is not a redirect status"},
    {HEAD "  rules:\n  - filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, "
          "replacePrefixMatch: /x}}}]\n    matches: [{path: {value: /a}}, {path: {value: /b}}]\n",
     "r.yaml:7:54: spec.rules[0].filters[0].urlRewrite.path.type: ReplacePrefixMatch needs a rule with exactly one "
     "match"},
    {HEAD "  rules:\n  - backendRefs: [{name: orders}]\n",
     "r.yaml:7:19: spec.rules[0].backendRefs[0]: port is required for a Service backend"},
    {HEAD "  rules:\n  - backendRefs: [{name: orders, namespace: other, port: 80}]\n",
     "r.yaml:7:34: spec.rules[0].backendRefs[0].namespace: not supported: a backend in namespace other"},
    {HEAD "  rules:\n  - backendRefs: [{name: orders, port: 80, weight: 1000001}]\n",
     "r.yaml:7:44: spec.rules[0].backendRefs[0].weight: 1000001 is out of range"},
    {HEAD "  rules:\n  - timeouts: {request: 1.5s}\n",
     "r.yaml:7:16: spec.rules[0].timeouts.request: \"1.5s\" is not a Gateway API duration"},
    {HEAD "  rules:\n  - timeouts: {request: 1s, backendRequest: 2s}\n",
     "r.yaml:7:29: spec.rules[0].timeouts.backendRequest: must not be longer than timeouts.request"},
    {HEAD "  rules:\n  - retry: {codes: [200]}\n",
     "r.yaml:7:21: spec.rules[0].retry.codes[0]: must be an HTTP status in 400..599"},
    {HEAD "  rules:\n  - sessionPersistence: {}\n",
     "r.yaml:7:5: spec.rules[0].sessionPersistence: not supported by the mesh"},
    {HEAD "  rulez: []\n", "r.yaml:6:3: spec.rulez: unknown key \"rulez\" (known keys: parentRefs, hostnames, rules)"},
    {"apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: g}\nspec:\n"
     "  parentRefs: [{group: \"\", kind: Service, name: orders}]\n"
     "  rules: [{matches: [{method: {type: Exact}}]}]\n",
     "r.yaml:6:23: spec.rules[0].matches[0].method: needs service, method or both"},
    {"apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: g}\nspec:\n"
     "  parentRefs: [{group: \"\", kind: Service, name: orders}]\n"
     "  rules: [{filters: [{type: URLRewrite}]}]\n",
     "r.yaml:6:23: spec.rules[0].filters[0].type: \"URLRewrite\" is not a filter type of a GRPCRoute"},
    {"apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: g}\nspec:\n"
     "  parentRefs: [{group: \"\", kind: Service, name: orders}]\n"
     "  rules: [{filters: [{type: URLRewrite, urlRewrite: {}}]}]\n",
     "r.yaml:6:41: spec.rules[0].filters[0].urlRewrite: unknown key \"urlRewrite\""},
    {HEAD "  rules: &a [{}]\n  hostnames: *a\n", "r.yaml:6:10: (document): aliases are not accepted"},
    {HEAD "  rules: [{}\n", "r.yaml:"},
};

static void test_refusals(void **state)
{
    int failed = 0;
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        rm_route_list_t list = {0};
        rm_config_error_t err = {0};
        char msg[1024];
        int ret = rm_route_load_yaml(&list, refusals[i].yaml, strlen(refusals[i].yaml), "r.yaml", &err);
        rm_config_error_format(&err, msg, sizeof(msg));
        if (ret == 0 || strncmp(msg, refusals[i].want, strlen(refusals[i].want)) != 0 || list.num != 0) {
            print_message("case %zu: got %d \"%s\", want \"%s...\"\n", i, ret, msg, refusals[i].want);
            failed++;
        }
        rm_route_list_clear(&list);
    }
    assert_int_equal(failed, 0);
}

static void test_duplicates(void **state)
{
    static const char yaml[] = HEAD "---\n" HEAD;
    rm_route_list_t list = {0};
    rm_config_error_t err = {0};
    char msg[512];
    assert_int_equal(rm_route_load_yaml(&list, yaml, strlen(yaml), "r.yaml", &err), 0);
    assert_int_equal(rm_route_list_check(&list, &err), RM_ERR_CONFIG_VALUE);
    rm_config_error_format(&err, msg, sizeof(msg));
    assert_string_equal(msg, "r.yaml:7:1: metadata.name: HTTPRoute shop/r is also defined at r.yaml:1");
    rm_route_list_clear(&list);
}

/* An API object: the same reader, status and the server's metadata ignored, errors name the field. */
static void test_json_object(void **state)
{
    json_error_t jerr;
    json_t *obj = json_loads(
        "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\",\"metadata\":{\"name\":\"r\","
        "\"namespace\":\"shop\",\"uid\":\"1\",\"resourceVersion\":\"7\",\"creationTimestamp\":\"2024-05-02T10:14:03Z\"}"
        ","
        "\"spec\":{\"parentRefs\":[{\"group\":\"\",\"kind\":\"Service\",\"name\":\"orders\",\"port\":8080}],"
        "\"rules\":[{\"backendRefs\":[{\"name\":\"orders\",\"port\":8080}]}]},\"status\":{\"parents\":[]}}",
        0, &jerr);
    rm_route_error_t err;
    rm_route_t *r;
    assert_non_null(obj);
    assert_int_equal(rm_route_from_json(obj, &r, &err), 0);
    assert_int_equal(r->created, 1714644843);
    assert_int_equal(r->parents[0].port, 8080);
    rm_route_free(r);
    json_array_set_new(
        json_object_get(json_array_get(json_object_get(json_object_get(obj, "spec"), "rules"), 0), "backendRefs"), 0,
        json_pack("{s:s,s:s}", "name", "orders", "port", "http"));
    assert_int_equal(rm_route_from_json(obj, &r, &err), RM_ERR_CONFIG_VALUE);
    assert_string_equal(err.field, "spec.rules[0].backendRefs[0].port");
    assert_string_equal(err.reason, "\"http\" is not a whole number");
    json_decref(obj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_json_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
