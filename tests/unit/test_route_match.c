/* The route matching engine (lib/route_match.c) over routes read from YAML (lib/route_yaml.c): the Gateway API's
 * path, header, query and method matches, its precedence within and across routes, ports of parentRefs, gRPC
 * service/method matches, and the weighted pick of a backend. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct st_fixture_t {
    rm_route_list_t list;
    rm_route_table_t *table;
} fixture_t;

static void load(fixture_t *f, const char *yaml)
{
    rm_config_error_t err = {0};
    char msg[1024];
    memset(f, 0, sizeof(*f));
    int ret = rm_route_load_yaml(&f->list, yaml, strlen(yaml), "routes.yaml", &err);
    rm_config_error_format(&err, msg, sizeof(msg));
    if (ret != 0)
        fail_msg("%s", msg);
    assert_int_equal(
        rm_route_table_build((const rm_route_t *const *)f->list.routes, f->list.num, "shop", "orders", &f->table), 0);
}

static void unload(fixture_t *f)
{
    rm_route_table_free(f->table);
    rm_route_list_clear(&f->list);
}

/* "route/rule" of the rule a request takes, or "none". */
static const char *pick(const fixture_t *f, uint16_t port, const char *method, const char *path,
                        const rm_http_header_t *headers, size_t num_headers, int grpc)
{
    static char out[128];
    rm_http_request_t req = {.method = method,
                             .method_len = strlen(method),
                             .path = path,
                             .path_len = strlen(path),
                             .headers = headers,
                             .num_headers = num_headers,
                             .grpc = (uint8_t)grpc};
    rm_route_choice_t c;
    if (rm_route_select(f->table, port, &req, &c) != 0)
        return "none";
    snprintf(out, sizeof(out), "%s/%zu", c.route->name, c.rule_index);
    return out;
}

#define HDR(n, v)                                                                                                      \
    {                                                                                                                  \
        .name = n, .name_len = sizeof(n) - 1, .value = v, .value_len = sizeof(v) - 1                                   \
    }

static const char *const paths_yaml = "apiVersion: gateway.networking.k8s.io/v1\n"
                                      "kind: HTTPRoute\n"
                                      "metadata: {name: paths, namespace: shop}\n"
                                      "spec:\n"
                                      "  parentRefs: [{group: \"\", kind: Service, name: orders}]\n"
                                      "  rules:\n"
                                      "  - matches: [{path: {type: PathPrefix, value: /}}]\n"                  /* 0 */
                                      "  - matches: [{path: {type: PathPrefix, value: /api/}}]\n"              /* 1 */
                                      "  - matches: [{path: {type: PathPrefix, value: /api/v2}}]\n"            /* 2 */
                                      "  - matches: [{path: {type: Exact, value: /api/v2/health}}]\n"          /* 3 */
                                      "  - matches: [{path: {type: RegularExpression, value: '/r/[0-9]+'}}]\n" /* 4 */
                                      "  - matches: [{path: {value: /m}, method: POST}]\n"                     /* 5 */
                                      "  - matches: [{path: {value: /m}, headers: [{name: X-Canary, value: 'yes'}]}]\n"
                                      "  - matches: [{path: {value: /m}, queryParams: [{name: v, value: '2'}]}]\n"
                                      "  - matches: [{path: {value: /m}, headers: [{name: a, value: '1'}, {name: b, "
                                      "value: '2'}]}]\n" /* 8 */
                                      "  - matches: [{path: {value: /h}, headers: [{name: x-user, type: "
                                      "RegularExpression, value: 'adm.*'}]}]\n"; /* 9 */

static void test_paths_and_precedence(void **state)
{
    fixture_t f;
    rm_http_header_t canary[] = {HDR("x-canary", "yes")},
                     both[] = {HDR("a", "1"), HDR("b", "2"), HDR("x-canary", "yes")},
                     admin[] = {HDR("x-user", "admin")}, user[] = {HDR("x-user", "xadmin")};
    load(&f, paths_yaml);
    assert_string_equal(pick(&f, 80, "GET", "/", NULL, 0, 0), "paths/0");
    assert_string_equal(pick(&f, 80, "GET", "/apix", NULL, 0, 0), "paths/0"); /* whole segments only */
    assert_string_equal(pick(&f, 80, "GET", "/api", NULL, 0, 0), "paths/1");  /* "/api/" is prefix "/api" */
    assert_string_equal(pick(&f, 80, "GET", "/api/v1/x", NULL, 0, 0), "paths/1");
    assert_string_equal(pick(&f, 80, "GET", "/api/v2", NULL, 0, 0), "paths/2"); /* the longer prefix */
    assert_string_equal(pick(&f, 80, "GET", "/api/v2/x?y=1", NULL, 0, 0), "paths/2");
    assert_string_equal(pick(&f, 80, "GET", "/api/v2/health", NULL, 0, 0), "paths/3"); /* Exact before prefixes */
    assert_string_equal(pick(&f, 80, "GET", "/api/v2/health/", NULL, 0, 0), "paths/2");
    assert_string_equal(pick(&f, 80, "GET", "/r/123", NULL, 0, 0), "paths/4");
    assert_string_equal(pick(&f, 80, "GET", "/r/12a", NULL, 0, 0), "paths/0"); /* anchored at both ends */
    assert_string_equal(pick(&f, 80, "GET", "/api/v2/health", NULL, 0, 0), "paths/3");
    /* same path prefix: a method beats headers, more headers beat fewer, headers beat query parameters */
    assert_string_equal(pick(&f, 80, "POST", "/m", both, 3, 0), "paths/5");
    assert_string_equal(pick(&f, 80, "GET", "/m?v=2", both, 3, 0), "paths/8");
    assert_string_equal(pick(&f, 80, "GET", "/m?v=2", canary, 1, 0), "paths/6");
    assert_string_equal(pick(&f, 80, "GET", "/m?a=1&v=2", NULL, 0, 0), "paths/7");
    assert_string_equal(pick(&f, 80, "GET", "/m?v=22", NULL, 0, 0), "paths/0");
    assert_string_equal(pick(&f, 80, "GET", "/h", admin, 1, 0), "paths/9");
    assert_string_equal(pick(&f, 80, "GET", "/h", user, 1, 0), "paths/0");
    unload(&f);
}

/* Across routes: the older route wins a tie, then "namespace/name"; within a route the first rule. */
static void test_across_routes(void **state)
{
    fixture_t f;
    load(&f, "apiVersion: gateway.networking.k8s.io/v1\n"
             "kind: HTTPRoute\n"
             "metadata: {name: b-newer, namespace: shop, creationTimestamp: '2024-05-02T10:00:00Z'}\n"
             "spec:\n"
             "  parentRefs: [{group: \"\", kind: Service, name: orders}]\n"
             "  rules: [{matches: [{path: {value: /x}}]}, {matches: [{path: {value: /x}}]}]\n"
             "---\n"
             "apiVersion: gateway.networking.k8s.io/v1\n"
             "kind: HTTPRoute\n"
             "metadata: {name: c-older, namespace: shop, creationTimestamp: '2024-05-01T10:00:00Z'}\n"
             "spec:\n"
             "  parentRefs: [{group: \"\", kind: Service, name: orders}]\n"
             "  rules: [{matches: [{path: {value: /y}}]}, {matches: [{path: {value: /x}}]}]\n"
             "---\n"
             "apiVersion: gateway.networking.k8s.io/v1\n"
             "kind: HTTPRoute\n"
             "metadata: {name: a-same-age, namespace: shop, creationTimestamp: '2024-05-02T10:00:00Z'}\n"
             "spec:\n"
             "  parentRefs: [{group: \"\", kind: Service, name: orders}]\n"
             "  rules: [{matches: [{path: {value: /z}}]}]\n"
             "---\n"
             "apiVersion: gateway.networking.k8s.io/v1\n"
             "kind: HTTPRoute\n"
             "metadata: {name: z-same-age, namespace: shop, creationTimestamp: '2024-05-02T10:00:00Z'}\n"
             "spec:\n"
             "  parentRefs: [{group: \"\", kind: Service, name: orders}]\n"
             "  rules: [{matches: [{path: {value: /z}}]}]\n"
             "---\n"
             "apiVersion: gateway.networking.k8s.io/v1\n"
             "kind: HTTPRoute\n"
             "metadata: {name: other-service, namespace: shop}\n"
             "spec:\n"
             "  parentRefs: [{group: \"\", kind: Service, name: billing}]\n"
             "  rules: [{matches: [{path: {value: /}}]}]\n");
    assert_int_equal(rm_route_table_num_routes(f.table), 4);
    assert_string_equal(pick(&f, 80, "GET", "/x", NULL, 0, 0), "c-older/1");
    assert_string_equal(pick(&f, 80, "GET", "/z", NULL, 0, 0), "a-same-age/0");
    assert_string_equal(pick(&f, 80, "GET", "/", NULL, 0, 0), "none"); /* the billing route is not orders' */
    unload(&f);
}

static void test_ports_and_grpc(void **state)
{
    fixture_t f;
    rm_http_header_t tenant[] = {HDR("tenant", "a")};
    load(&f, "apiVersion: gateway.networking.k8s.io/v1\n"
             "kind: GRPCRoute\n"
             "metadata: {name: grpc, namespace: shop}\n"
             "spec:\n"
             "  parentRefs: [{group: \"\", kind: Service, name: orders, port: 9090}]\n"
             "  rules:\n"
             "  - matches: [{method: {service: shop.Orders}}]\n"
             "  - matches: [{method: {service: shop.Orders, method: Get}}]\n"
             "  - matches: [{method: {method: Get}, headers: [{name: tenant, value: a}]}]\n"
             "  - matches: [{method: {type: RegularExpression, service: 'shop\\..*', method: 'L.*'}}]\n"
             "---\n"
             "apiVersion: gateway.networking.k8s.io/v1\n"
             "kind: HTTPRoute\n"
             "metadata: {name: http, namespace: shop}\n"
             "spec:\n"
             "  parentRefs: [{group: \"\", kind: Service, name: orders, port: 8080}, {group: \"\", kind: Service, "
             "name: orders, port: 9090}]\n"
             "  rules: [{backendRefs: [{name: orders, port: 8080}]}]\n");
    assert_string_equal(pick(&f, 9090, "POST", "/shop.Orders/Get", NULL, 0, 1), "grpc/1");
    assert_string_equal(pick(&f, 9090, "POST", "/shop.Orders/Put", NULL, 0, 1), "grpc/0");
    assert_string_equal(pick(&f, 9090, "POST", "/other.Svc/Get", tenant, 1, 1), "grpc/2");
    assert_string_equal(pick(&f, 9090, "POST", "/shop.Carts/List", NULL, 0, 1), "grpc/3");
    assert_string_equal(pick(&f, 9090, "POST", "/other.Svc/Get", NULL, 0, 1), "http/0");   /* then HTTPRoutes */
    assert_string_equal(pick(&f, 8080, "POST", "/shop.Orders/Get", NULL, 0, 1), "http/0"); /* grpc is on 9090 */
    assert_string_equal(pick(&f, 7070, "GET", "/", NULL, 0, 0), "none");
    unload(&f);
}

static void test_backend_pick(void **state)
{
    fixture_t f;
    rm_route_choice_t c;
    rm_http_request_t req = {.method = "GET", .method_len = 3, .path = "/", .path_len = 1};
    unsigned counts[2] = {0, 0};
    load(&f, "apiVersion: gateway.networking.k8s.io/v1\n"
             "kind: HTTPRoute\n"
             "metadata: {name: split, namespace: shop}\n"
             "spec:\n"
             "  parentRefs: [{group: \"\", kind: Service, name: orders}]\n"
             "  rules:\n"
             "  - backendRefs: [{name: orders-v1, port: 8080, weight: 90}, {name: orders-v2, port: 8080, weight: 10},"
             " {name: orders-v3, port: 8080, weight: 0}]\n"
             "  - matches: [{path: {value: /none}}]\n"
             "    backendRefs: [{name: orders-v1, port: 8080, weight: 0}]\n");
    assert_int_equal(rm_route_select(f.table, 80, &req, &c), 0);
    /* random values spread evenly over [0, 2^32): exactly 90 % and 10 %, never the weight-0 backend */
    for (uint32_t i = 0; i < 1000; i++) {
        const rm_route_backend_t *b = rm_route_pick_backend(c.rule, (uint32_t)((((uint64_t)i << 32) + 999) / 1000));
        assert_non_null(b);
        assert_string_not_equal(b->name, "orders-v3");
        counts[strcmp(b->name, "orders-v2") == 0]++;
    }
    assert_int_equal(counts[0], 900);
    assert_int_equal(counts[1], 100);
    assert_string_equal(rm_route_pick_backend(c.rule, 0)->name, "orders-v1");
    assert_string_equal(rm_route_pick_backend(c.rule, UINT32_MAX)->name, "orders-v2");
    req.path = "/none";
    req.path_len = 5;
    assert_int_equal(rm_route_select(f.table, 80, &req, &c), 0);
    assert_null(rm_route_pick_backend(c.rule, 12345)); /* all weights 0: the API answers 500 */
    unload(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_and_precedence),
        cmocka_unit_test(test_across_routes),
        cmocka_unit_test(test_ports_and_grpc),
        cmocka_unit_test(test_backend_pick),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
