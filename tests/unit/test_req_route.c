/* Routing one request (sidecar/req_route.h): a destination without routes keeps its own endpoints; a header match
 * goes to the canary only; a 90/10 split lands within a few points; no matching rule is 404 with flag NR; a rule
 * without a backend of weight, or whose backend Service and port are no known destination, is 500; the backend's
 * destination is the one of its Service and port (another port of the same Service is not it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

#include <cmocka.h>

#include "dest_routes.h"
#include "req_route.h"

#define H(n, v)                                                                                                        \
    {                                                                                                                  \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                                             \
    }

static const char routes_yaml[] =
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: canary, namespace: shop}\n"
    "spec:\n  parentRefs: [{group: \"\", kind: Service, name: orders}]\n  rules:\n"
    "  - matches: [{path: {type: PathPrefix, value: /a}, headers: [{name: x-canary, value: \"true\"}]}]\n"
    "    backendRefs: [{name: orders-v2, port: 8080}]\n"
    "  - matches: [{path: {type: PathPrefix, value: /a}}]\n"
    "    backendRefs: [{name: orders-v1, port: 8080, weight: 90}, {name: orders-v2, port: 8080, weight: 10}]\n"
    "  - matches: [{path: {type: Exact, value: /zero}}]\n"
    "    backendRefs: [{name: orders-v1, port: 8080, weight: 0}]\n"
    "  - matches: [{path: {type: Exact, value: /ghost}}]\n"
    "    backendRefs: [{name: ghost, port: 8080}]\n"
    "  - matches: [{path: {type: Exact, value: /h}}]\n"
    "    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-routed, value: v2}],\n"
    "               remove: [x-drop]}}]\n"
    "    backendRefs: [{name: orders-v2, port: 8080}]\n"
    "  - matches: [{path: {type: Exact, value: /old}}]\n"
    "    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /new},\n"
    "               statusCode: 301}}]\n";

typedef struct st_fixture_t {
    rm_route_list_t list;
    rm_dest_routes_t routes;
    rm_destination_t dests[5];
} fixture_t;

static void dest(rm_destination_t *d, const char *addr, const char *sni)
{
    memset(d, 0, sizeof(*d));
    assert_int_equal(rm_sockaddr_parse(addr, &d->addr), 0);
    d->sni = (char *)sni;
}

static void setup(fixture_t *f)
{
    rm_config_error_t err;
    memset(f, 0, sizeof(*f));
    assert_int_equal(rm_route_load_yaml(&f->list, routes_yaml, strlen(routes_yaml), "routes.yaml", &err), 0);
    assert_int_equal(rm_route_table_build((const rm_route_t *const *)f->list.routes, f->list.num, "shop", "orders",
                                          &f->routes.table),
                     0);
    f->routes.routes = f->list.routes;
    f->routes.num_routes = f->list.num;
    dest(&f->dests[0], "198.18.100.1:8080", "outbound_.8080_._.orders.shop.svc.cluster.local");
    f->dests[0].routes = &f->routes;
    dest(&f->dests[1], "198.18.100.2:9090", "outbound_.9090_._.orders-v1.shop.svc.cluster.local");
    dest(&f->dests[2], "198.18.100.2:8080", "outbound_.8080_._.orders-v1.shop.svc.cluster.local");
    dest(&f->dests[3], "198.18.100.3:8080", "outbound_.8080_._.orders-v2.shop.svc.cluster.local");
    dest(&f->dests[4], "198.18.100.4:80", "outbound_.80_._.plain.shop.svc.cluster.local");
}

static void teardown(fixture_t *f)
{
    rm_route_table_free(f->routes.table);
    rm_route_list_clear(&f->list);
}

static rm_req_route_result_t route(fixture_t *f, const rm_destination_t *d, const char *path, const rm_http_header_t *h,
                                   size_t nh, uint32_t random, rm_req_route_t *out)
{
    rm_http_request_t req = {0};
    req.method = "GET";
    req.method_len = 3;
    req.path = path;
    req.path_len = strlen(path);
    req.host = "orders";
    req.host_len = 6;
    req.headers = h;
    req.num_headers = nh;
    return rm_req_route(d, f->dests, 5, &req, random, out);
}

static void test_direct_and_errors(void **state)
{
    (void)state;
    fixture_t f;
    rm_req_route_t r;
    setup(&f);
    /* no routes: the destination itself */
    assert_int_equal(route(&f, &f.dests[4], "/x", NULL, 0, 0, &r), RM_REQ_ROUTE_DIRECT);
    assert_ptr_equal(r.dest, &f.dests[4]);
    assert_int_equal(rm_req_route_status(r.result), 0);
    /* routes, none matching: 404 NR */
    assert_int_equal(route(&f, &f.dests[0], "/b", NULL, 0, 0, &r), RM_REQ_ROUTE_NO_RULE);
    assert_int_equal(rm_req_route_status(r.result), 404);
    assert_string_equal(rm_req_route_flag(r.result), "NR");
    assert_null(r.dest);
    /* no backend of weight, and a backend Service not known here: 500 */
    assert_int_equal(route(&f, &f.dests[0], "/zero", NULL, 0, 0, &r), RM_REQ_ROUTE_NO_BACKEND);
    assert_int_equal(rm_req_route_status(r.result), 500);
    assert_null(rm_req_route_flag(r.result));
    assert_int_equal(route(&f, &f.dests[0], "/ghost", NULL, 0, 0, &r), RM_REQ_ROUTE_NO_BACKEND);
    assert_non_null(r.backend);
    assert_string_equal(r.backend->name, "ghost");
    assert_null(r.dest);
    teardown(&f);
}

static void test_header_match_to_canary(void **state)
{
    (void)state;
    fixture_t f;
    rm_req_route_t r;
    const rm_http_header_t marked[] = {H("x-canary", "true")};
    uint64_t rng = 88172645463325252ull;
    setup(&f);
    for (int i = 0; i < 200; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        assert_int_equal(route(&f, &f.dests[0], "/a/1", marked, 1, (uint32_t)rng, &r), RM_REQ_ROUTE_BACKEND);
        assert_ptr_equal(r.dest, &f.dests[3]);
        assert_int_equal(r.choice.rule_index, 0);
    }
    teardown(&f);
}

/* The matched rule's filters reach the request: a header modifier sets and removes header lines, a redirect is
 * answered with its status and Location; without routes the request goes unchanged; a 404 is not applied. */
static void test_apply_rule_filters(void **state)
{
    (void)state;
    fixture_t f;
    rm_req_route_t r;
    rm_route_applied_t out;
    char buf[1024];
    rm_http_header_t hdrs[16];
    rm_route_arena_t arena = {.buf = buf, .cap = sizeof(buf), .headers = hdrs, .headers_cap = 16};
    const rm_http_header_t in[] = {H("x-drop", "1"), H("accept", "*/*")};
    rm_http_request_t req = {.method = "GET",
                             .method_len = 3,
                             .path = "/h",
                             .path_len = 2,
                             .host = "orders",
                             .host_len = 6,
                             .headers = in,
                             .num_headers = 2};
    setup(&f);

    assert_int_equal(rm_req_route(&f.dests[0], f.dests, 5, &req, 0, &r), RM_REQ_ROUTE_BACKEND);
    assert_int_equal(rm_req_apply_rule(&r, &req, 8080, &arena, &out), 0);
    assert_int_equal(out.redirect_status, 0);
    assert_int_equal(out.num_headers, 2);
    assert_memory_equal(out.headers[0].name, "accept", 6);
    assert_memory_equal(out.headers[1].name, "x-routed", 8);
    assert_memory_equal(out.headers[1].value, "v2", 2);
    assert_int_equal(out.path_len, 2);

    arena.used = arena.headers_used = 0;
    req.path = "/old", req.path_len = 4;
    assert_int_equal(rm_req_route(&f.dests[0], f.dests, 5, &req, 0, &r), RM_REQ_ROUTE_REDIRECT);
    assert_int_equal(rm_req_route_status(r.result), 0);
    assert_null(r.dest);
    assert_int_equal(rm_req_apply_rule(&r, &req, 8080, &arena, &out), 0);
    assert_int_equal(out.redirect_status, 301);
    assert_non_null(out.location);
    assert_non_null(memmem(out.location, out.location_len, "/new", 4));

    /* no routes: unchanged */
    assert_int_equal(rm_req_route(&f.dests[4], f.dests, 5, &req, 0, &r), RM_REQ_ROUTE_DIRECT);
    assert_int_equal(rm_req_apply_rule(&r, &req, 80, &arena, &out), 0);
    assert_ptr_equal(out.path, req.path);
    assert_ptr_equal(out.headers, in);
    assert_int_equal(out.num_headers, 2);

    /* no rule: nothing to apply */
    req.path = "/none", req.path_len = 5;
    assert_int_equal(rm_req_route(&f.dests[0], f.dests, 5, &req, 0, &r), RM_REQ_ROUTE_NO_RULE);
    assert_int_equal(rm_req_apply_rule(&r, &req, 8080, &arena, &out), -EINVAL);
    teardown(&f);
}

static void test_weighted_split(void **state)
{
    (void)state;
    fixture_t f;
    rm_req_route_t r;
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    unsigned v1 = 0, v2 = 0;
    setup(&f);
    for (int i = 0; i < 2000; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        assert_int_equal(route(&f, &f.dests[0], "/a/1", NULL, 0, (uint32_t)(rng >> 32), &r), RM_REQ_ROUTE_BACKEND);
        if (r.dest == &f.dests[2])
            v1++;
        else if (r.dest == &f.dests[3])
            v2++;
        else
            fail_msg("a request went to neither backend (the other port of orders-v1?)");
    }
    /* 90/10 within 3 points over 2,000 requests */
    assert_true(v2 >= 140 && v2 <= 260);
    assert_int_equal(v1 + v2, 2000);
    teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_direct_and_errors),
        cmocka_unit_test(test_header_match_to_canary),
        cmocka_unit_test(test_weighted_split),
        cmocka_unit_test(test_apply_rule_filters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
