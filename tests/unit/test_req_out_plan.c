/* The outbound request path's plan of one app request (sidecar/req_out_plan.h): a header match goes to the canary's
 * endpoints and the stream's header list is the contract's (pseudo-headers, ringmesh-orig-proto, no ringmesh-* or
 * connection-specific field of the app); a rule's header modifier reaches the stream; a redirect, no rule, a backend
 * without endpoints and a request with two Host fields are answered by the proxy; one keep-alive client's requests
 * spread over all three endpoints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dest_endpoints.h"
#include "dest_routes.h"
#include "req_out_plan.h"

#define H(n, v)                                                                                                        \
    {                                                                                                                  \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                                             \
    }

static const char routes_yaml[] =
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: canary, namespace: shop}\n"
    "spec:\n  parentRefs: [{group: \"\", kind: Service, name: orders}]\n  rules:\n"
    "  - matches: [{path: {type: PathPrefix, value: /a}, headers: [{name: x-canary, value: \"true\"}]}]\n"
    "    backendRefs: [{name: orders-v2, port: 8080}]\n"
    "  - matches: [{path: {type: Exact, value: /v1}}]\n"
    "    backendRefs: [{name: orders-v1, port: 8080}]\n"
    "  - matches: [{path: {type: Exact, value: /h}}]\n"
    "    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: x-routed, value: v2}]}}]\n"
    "    backendRefs: [{name: orders-v2, port: 8080}]\n"
    "  - matches: [{path: {type: Exact, value: /old}}]\n"
    "    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /new},\n"
    "               statusCode: 301}}]\n";

typedef struct st_fixture_t {
    rm_route_list_t list;
    rm_dest_routes_t routes;
    rm_destination_t dests[3];
    rm_endpoint_t items[3];
    rm_dest_endpoints_t eps;
    rm_req_lb_t *lb;
    char buf[2048], names[1024];
    rm_http_header_t hdrs[32], h2[48];
    rm_req_out_room_t room;
} fixture_t;

static void dest(rm_destination_t *d, const char *addr, const char *sni)
{
    memset(d, 0, sizeof(*d));
    assert_int_equal(rm_sockaddr_parse(addr, &d->addr), 0);
    d->sni = (char *)sni;
}

static fixture_t *setup(void)
{
    rm_config_error_t err;
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(rm_route_load_yaml(&f->list, routes_yaml, strlen(routes_yaml), "routes.yaml", &err), 0);
    assert_int_equal(rm_route_table_build((const rm_route_t *const *)f->list.routes, f->list.num, "shop", "orders",
                                          &f->routes.table),
                     0);
    f->routes.routes = f->list.routes;
    f->routes.num_routes = f->list.num;
    dest(&f->dests[0], "198.18.100.1:8080", "outbound_.8080_._.orders.shop.svc.cluster.local");
    f->dests[0].routes = &f->routes;
    dest(&f->dests[1], "198.18.100.2:8080", "outbound_.8080_._.orders-v1.shop.svc.cluster.local");
    dest(&f->dests[2], "198.18.100.3:8080", "outbound_.8080_._.orders-v2.shop.svc.cluster.local");
    for (int i = 0; i < 3; i++) {
        char a[32];
        snprintf(a, sizeof(a), "198.18.7.%d:8080", i + 1);
        assert_int_equal(rm_sockaddr_parse(a, &f->items[i].addr), 0);
        f->items[i].ready = f->items[i].serving = 1;
    }
    f->eps.items = f->items;
    f->eps.num = 3;
    assert_int_equal(rm_dest_endpoints_index(&f->eps), 0);
    f->dests[2].endpoints = &f->eps; /* orders-v1 (dests[1]) has none */
    f->lb = calloc(1, sizeof(*f->lb));
    assert_non_null(f->lb);
    f->lb->cfg = (rm_lb_ewma_cfg_t){.decay_ns = 10000000000ull, .default_rtt_ns = 1000000ull};
    f->lb->rng = 42;
    f->room =
        (rm_req_out_room_t){.arena = {.buf = f->buf, .cap = sizeof(f->buf), .headers = f->hdrs, .headers_cap = 32},
                            .h2 = f->h2,
                            .h2_cap = 48,
                            .names = f->names,
                            .names_len = sizeof(f->names)};
    return f;
}

static void teardown(fixture_t *f)
{
    free(f->eps.candidates);
    rm_route_table_free(f->routes.table);
    rm_route_list_clear(&f->list);
    free(f->lb);
    free(f);
}

static int plan(fixture_t *f, const char *target, const rm_http_header_t *h, size_t nh, rm_req_out_plan_t *out)
{
    rm_h1c_request_t req = {.method = "GET",
                            .method_len = 3,
                            .target = target,
                            .target_len = strlen(target),
                            .headers = h,
                            .num_headers = nh,
                            .minor = 1};
    return rm_req_out_plan(&f->dests[0], f->dests, 3, &req, 7, f->lb, 1000, &f->room, out);
}

/* The value of `name` in the stream's header list, or NULL. */
static const char *h2_value(const rm_req_out_plan_t *p, const char *name, char *buf, size_t len)
{
    for (size_t i = 0; i < p->num_h2; i++)
        if (p->h2[i].name_len == strlen(name) && memcmp(p->h2[i].name, name, p->h2[i].name_len) == 0) {
            snprintf(buf, len, "%.*s", (int)p->h2[i].value_len, p->h2[i].value);
            return buf;
        }
    return NULL;
}

static void test_forward_to_canary(void **state)
{
    (void)state;
    fixture_t *f = setup();
    rm_req_out_plan_t p;
    char v[128];
    const rm_http_header_t h[] = {H("Host", "orders.shop:8080"), H("X-Canary", "true"),
                                  H("Connection", "keep-alive"), H("ringmesh-orig-proto", "HTTP/2"),
                                  H("ringmesh-error", "forged"), H("Accept", "*/*")};
    assert_int_equal(plan(f, "/a/1?q=1", h, 6, &p), 0);
    assert_int_equal(p.kind, RM_REQ_OUT_FORWARD);
    assert_ptr_equal(p.dest, &f->dests[2]);
    assert_in_range(p.endpoint, 0, 2);
    assert_string_equal(h2_value(&p, ":method", v, sizeof(v)), "GET");
    assert_string_equal(h2_value(&p, ":scheme", v, sizeof(v)), "http");
    assert_string_equal(h2_value(&p, ":authority", v, sizeof(v)), "orders.shop:8080");
    assert_string_equal(h2_value(&p, ":path", v, sizeof(v)), "/a/1?q=1");
    assert_string_equal(h2_value(&p, "ringmesh-orig-proto", v, sizeof(v)), "HTTP/1.1");
    assert_string_equal(h2_value(&p, "x-canary", v, sizeof(v)), "true");
    assert_string_equal(h2_value(&p, "accept", v, sizeof(v)), "*/*");
    assert_null(h2_value(&p, "connection", v, sizeof(v)));
    assert_null(h2_value(&p, "ringmesh-error", v, sizeof(v)));
    assert_null(h2_value(&p, "host", v, sizeof(v)));
    size_t orig = 0;
    for (size_t i = 0; i < p.num_h2; i++)
        orig += p.h2[i].name_len == 19 && memcmp(p.h2[i].name, "ringmesh-orig-proto", 19) == 0;
    assert_int_equal(orig, 1); /* the app's own is gone, the proxy's is there once */

    /* the rule's header modifier reaches the stream */
    assert_int_equal(plan(f, "/h", h, 1, &p), 0);
    assert_int_equal(p.kind, RM_REQ_OUT_FORWARD);
    assert_string_equal(h2_value(&p, "x-routed", v, sizeof(v)), "v2");
    teardown(f);
}

static void test_local_answers(void **state)
{
    (void)state;
    fixture_t *f = setup();
    rm_req_out_plan_t p;
    char out[512];
    const rm_http_header_t h[] = {H("Host", "orders"), H("Host", "other")};

    assert_int_equal(plan(f, "/old", h, 1, &p), 0);
    assert_int_equal(p.kind, RM_REQ_OUT_LOCAL);
    assert_int_equal(p.status, 301);
    int n = rm_req_out_local_response(&p, 1, 0, out, sizeof(out) - 1);
    assert_true(n > 0);
    out[n] = '\0';
    assert_non_null(strstr(out, "HTTP/1.1 301"));
    assert_non_null(strstr(out, "/new\r\n"));
    assert_non_null(strstr(out, "content-length: 0\r\n"));

    assert_int_equal(plan(f, "/nowhere", h, 1, &p), 0);
    assert_int_equal(p.kind, RM_REQ_OUT_LOCAL);
    assert_int_equal(p.status, 404);
    assert_string_equal(p.flag, "NR");
    n = rm_req_out_local_response(&p, 0, 1, out, sizeof(out) - 1);
    assert_true(n > 0);
    out[n] = '\0';
    assert_non_null(strstr(out, "HTTP/1.0 404"));

    assert_int_equal(plan(f, "/v1", h, 1, &p), 0); /* the backend has no endpoints */
    assert_int_equal(p.kind, RM_REQ_OUT_LOCAL);
    assert_int_equal(p.status, 503);
    assert_string_equal(p.flag, "UH");

    assert_int_equal(plan(f, "/a", h, 2, &p), 0); /* two Host fields */
    assert_int_equal(p.kind, RM_REQ_OUT_LOCAL);
    assert_int_equal(p.status, 400);
    teardown(f);
}

/* One client's requests, none in flight, spread over the canary's three endpoints. */
static void test_spread(void **state)
{
    (void)state;
    fixture_t *f = setup();
    rm_req_out_plan_t p;
    unsigned seen[3] = {0};
    const rm_http_header_t h[] = {H("Host", "orders"), H("x-canary", "true")};
    for (int i = 0; i < 300; i++) {
        assert_int_equal(plan(f, "/a", h, 2, &p), 0);
        assert_int_equal(p.kind, RM_REQ_OUT_FORWARD);
        seen[p.endpoint]++;
    }
    for (int i = 0; i < 3; i++)
        assert_true(seen[i] >= 30);
    teardown(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_to_canary),
        cmocka_unit_test(test_local_answers),
        cmocka_unit_test(test_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
