/* The sidecar's decoding of a pushed DestinationMap with routes (sidecar/dest_routes.c through
 * rm__control_parse_destinations): routes read from YAML, encoded as the control plane encodes them
 * (lib/route_proto.c), packed, decoded; every VIP:port of the Service points at one route table that selects as the
 * original routes do. A route the sidecar cannot take (a regular expression that does not compile, an unknown
 * filter) NACKs the whole push with the destination, route and field named. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control_client.h"
#include "dest_routes.h"
#include "ringmesh/route_proto.h"
#include "ringmesh/v1/discovery.pb-c.h"

static const char routes_yaml[] = "apiVersion: gateway.networking.k8s.io/v1\n"
                                  "kind: HTTPRoute\n"
                                  "metadata: {name: canary, namespace: shop}\n"
                                  "spec:\n"
                                  "  parentRefs: [{group: \"\", kind: Service, name: orders, port: 8080}]\n"
                                  "  rules:\n"
                                  "  - matches: [{headers: [{name: x-canary, value: \"yes\"}]}]\n"
                                  "    backendRefs: [{name: orders-v2, port: 8080}]\n"
                                  "    timeouts: {request: 5s}\n"
                                  "    retry: {attempts: 2, codes: [503]}\n"
                                  "  - matches: [{path: {type: RegularExpression, value: '/items/[0-9]+'}}]\n"
                                  "    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: "
                                  "x-item, value: \"1\"}]}}]\n"
                                  "    backendRefs: [{name: orders-v1, port: 8080, weight: 90}, {name: orders-v2, "
                                  "port: 8080, weight: 10}]\n";

static char *ids[] = {"spiffe://cluster.local/ns/shop/sa/orders"};
static char *addrs[] = {"198.19.0.10:8080", "[2001:2::10]:8080"};

typedef struct st_push_t {
    rm_route_list_t list;
    rm_route_arena_t arena;
    Ringmesh__V1__Route *routes[4];
    Ringmesh__V1__Destination d;
    Ringmesh__V1__Destination *dl[1];
    Ringmesh__V1__DestinationMap map;
    uint8_t buf[16384];
    size_t len;
} push_t;

static void push_init(push_t *p)
{
    rm_config_error_t err = {0};
    memset(p, 0, sizeof(*p));
    assert_int_equal(rm_route_load_yaml(&p->list, routes_yaml, strlen(routes_yaml), "r.yaml", &err), 0);
    for (size_t i = 0; i < p->list.num; i++)
        assert_int_equal(rm_route_to_proto(p->list.routes[i], &p->arena, &p->routes[i]), 0);
    ringmesh__v1__destination__init(&p->d);
    p->d.name = "shop/orders";
    p->d.in_mesh = 1;
    p->d.n_addresses = 2;
    p->d.addresses = addrs;
    p->d.n_identities = 1;
    p->d.identities = ids;
    p->d.n_routes = p->list.num;
    p->d.routes = p->routes;
    p->dl[0] = &p->d;
    ringmesh__v1__destination_map__init(&p->map);
    p->map.n_destinations = 1;
    p->map.destinations = p->dl;
}

static int push_parse(push_t *p, rm_dest_table_t **t, char *err, size_t errlen)
{
    assert_true(ringmesh__v1__destination_map__get_packed_size(&p->map) <= sizeof(p->buf));
    p->len = ringmesh__v1__destination_map__pack(&p->map, p->buf);
    return rm__control_parse_destinations(p->buf, p->len, "cluster.local", t, err, errlen);
}

static void push_clear(push_t *p)
{
    rm_route_arena_clear(&p->arena);
    rm_route_list_clear(&p->list);
}

static void test_decode(void **state)
{
    push_t p;
    rm_dest_table_t *t = NULL;
    char err[512] = "";
    rm_route_choice_t c;
    rm_http_header_t canary = {.name = "x-canary", .name_len = 8, .value = "yes", .value_len = 3};
    rm_http_request_t req = {.method = "GET", .method_len = 3, .path = "/items/42", .path_len = 9};

    push_init(&p);
    if (push_parse(&p, &t, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(t->num, 2);
    assert_int_equal(t->num_routes, 1);
    assert_non_null(t->dests[0].routes);
    assert_ptr_equal(t->dests[0].routes, t->dests[1].routes); /* one table for both VIP:ports */
    const rm_dest_routes_t *r = t->dests[0].routes;
    assert_string_equal(r->service, "shop/orders");
    assert_int_equal(rm_route_table_num_routes(r->table), 1);

    assert_int_equal(rm_route_select(r->table, 8080, &req, &c), 0);
    assert_int_equal(c.rule_index, 1);
    assert_string_equal(c.rule->filters[0].set[0].name, "x-item");
    assert_string_equal(rm_route_pick_backend(c.rule, 0)->name, "orders-v1");
    assert_string_equal(rm_route_pick_backend(c.rule, UINT32_MAX)->name, "orders-v2");
    req.headers = &canary;
    req.num_headers = 1;
    assert_int_equal(rm_route_select(r->table, 8080, &req, &c), 0);
    assert_int_equal(c.rule_index, 1); /* a path match outranks a header match (the API's precedence) */
    req.path = "/other";
    req.path_len = 6;
    assert_int_equal(rm_route_select(r->table, 8080, &req, &c), 0);
    assert_int_equal(c.rule_index, 0);
    assert_int_equal(c.rule->request_timeout_ms, 5000);
    assert_int_equal(c.rule->retry.attempts, 2);
    assert_int_equal(c.rule->retry.codes[0], 503);
    assert_int_equal(rm_route_select(r->table, 9090, &req, &c), -ENOENT); /* the parentRef names port 8080 */
    req.num_headers = 0;
    assert_int_equal(rm_route_select(r->table, 8080, &req, &c), -ENOENT);
    rm_dest_table_unref(t);
    push_clear(&p);
}

static void test_nack(void **state)
{
    push_t p;
    rm_dest_table_t *t = NULL;
    char err[512] = "";

    push_init(&p);
    p.routes[0]->rules[1]->matches[0]->path = "/items/([0-9]+";
    assert_int_equal(push_parse(&p, &t, err, sizeof(err)), -EINVAL);
    assert_null(t);
    assert_non_null(strstr(err, "destination shop/orders: route shop/canary: rules[1][0]: \"/items/([0-9]+\" is not a "
                                "POSIX extended regular expression"));
    p.routes[0]->rules[1]->matches[0]->path = "/items/[0-9]+";
    p.routes[0]->rules[1]->filters[0]->type = 9;
    assert_int_equal(push_parse(&p, &t, err, sizeof(err)), -EINVAL);
    assert_non_null(
        strstr(err, "destination shop/orders: route shop/canary: rules[1]: filters[0]: unknown filter type 9"));
    push_clear(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_nack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
