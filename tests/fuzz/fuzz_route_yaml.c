/* rm_route_load_yaml() (HTTPRoute and GRPCRoute documents) and everything that runs on what it loads: the pushed
 * form both ways (rm_route_to_proto, packing, rm_route_from_proto), the matching table of the Service each route
 * names first, rm_route_select() on fixed requests and rm_route_pick_backend().
 *
 * Checked on every input:
 *  - the return value is 0 or an RM_ERR_CONFIG_* code with the file named and a reason, and a failure adds no route;
 *  - every loaded route keeps the model's rules (a kind, a namespace and name, at least one parent, every rule at
 *    least one match, a total weight that is the sum of the backends' weights);
 *  - a loaded route survives the push: encoded, packed, unpacked and decoded it packs to the same bytes;
 *  - a selection returns a rule of a route of the table whose match index is in range, the same for the route
 *    decoded from the push, and the backend picked is one of the rule's with a nonzero weight (NULL only when the
 *    rule has none). */
#include "fuzz.h"
#include "ringmesh/error.h"
#include "ringmesh/route.h"
#include "ringmesh/route_proto.h"

#include <errno.h>
#include <string.h>

static const rm_http_header_t hdrs[] = {
    {"x-canary", 8, "true", 4},
    {"content-type", 12, "application/grpc", 16},
    {"x-user", 6, "beta-anna", 9},
};

static const struct {
    const char *method, *path;
    size_t num_headers;
    int grpc;
} reqs[] = {
    {"GET", "/", 0, 0},
    {"POST", "/api/v2/items?x=1&v=2", 1, 0},
    {"GET", "/items/42/reviews", 3, 0},
    {"POST", "/shop.v1.Orders/Get", 2, 1},
    {"DELETE", "", 0, 0},
};

static size_t packed(const rm_route_t *r, uint8_t **out)
{
    rm_route_arena_t a = {0};
    Ringmesh__V1__Route *m;
    size_t len;
    RM_FUZZ_CHECK(rm_route_to_proto(r, &a, &m) == 0);
    len = ringmesh__v1__route__get_packed_size(m);
    RM_FUZZ_CHECK((*out = malloc(len + 1)) != NULL);
    RM_FUZZ_CHECK(ringmesh__v1__route__pack(m, *out) == len);
    rm_route_arena_clear(&a);
    return len;
}

static void check_select(const rm_route_t *const *routes, size_t num, const char *ns, const char *name)
{
    rm_route_table_t *t = NULL;
    RM_FUZZ_CHECK(rm_route_table_build(routes, num, ns, name, &t) == 0);
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        rm_http_request_t req = {.method = reqs[i].method,
                                 .method_len = strlen(reqs[i].method),
                                 .path = reqs[i].path,
                                 .path_len = strlen(reqs[i].path),
                                 .headers = hdrs,
                                 .num_headers = reqs[i].num_headers,
                                 .grpc = (uint8_t)reqs[i].grpc};
        rm_route_choice_t c;
        for (uint16_t port = 0; port <= 8080; port += 8080) {
            int rc = rm_route_select(t, port, &req, &c);
            RM_FUZZ_CHECK(rc == 0 || rc == -ENOENT);
            if (rc != 0)
                continue;
            RM_FUZZ_CHECK(rm_route_has_parent(c.route, ns, name));
            RM_FUZZ_CHECK(c.rule_index < c.route->num_rules && c.rule == &c.route->rules[c.rule_index]);
            RM_FUZZ_CHECK(c.match_index < c.rule->num_matches);
            const rm_route_backend_t *b = rm_route_pick_backend(c.rule, (uint32_t)i * 0x9e3779b9u);
            RM_FUZZ_CHECK((b == NULL) == (c.rule->total_weight == 0));
            RM_FUZZ_CHECK(b == NULL ||
                          (b >= c.rule->backends && b < c.rule->backends + c.rule->num_backends && b->weight > 0));
        }
    }
    rm_route_table_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rm_route_list_t list = {0};
    rm_config_error_t err = {0};
    int ret = rm_route_load_yaml(&list, (const char *)data, size, "fuzz.yaml", &err);

    if (ret != 0) {
        RM_FUZZ_CHECK(ret == RM_ERR_CONFIG_PARSE || ret == RM_ERR_CONFIG_VALUE || ret == RM_ERR_CONFIG_IO);
        RM_FUZZ_CHECK(strcmp(err.file, "fuzz.yaml") == 0 && err.reason[0] != '\0');
    }
    (void)rm_route_list_check(&list, &err);
    for (size_t i = 0; i < list.num; i++) {
        const rm_route_t *r = list.routes[i];
        RM_FUZZ_CHECK(r->kind == RM_ROUTE_HTTP || r->kind == RM_ROUTE_GRPC);
        RM_FUZZ_CHECK(r->namespace_ != NULL && r->name != NULL && r->num_parents > 0 && r->num_rules > 0);
        for (size_t k = 0; k < r->num_rules; k++) {
            uint64_t sum = 0;
            RM_FUZZ_CHECK(r->rules[k].num_matches > 0);
            for (size_t b = 0; b < r->rules[k].num_backends; b++)
                sum += r->rules[k].backends[b].weight;
            RM_FUZZ_CHECK(sum == r->rules[k].total_weight);
        }
        /* the push: encoded, decoded, encoded again to the same bytes */
        uint8_t *p1 = NULL, *p2 = NULL;
        size_t n1 = packed(r, &p1);
        Ringmesh__V1__Route *m = ringmesh__v1__route__unpack(NULL, n1, p1);
        rm_route_t *back = NULL;
        char why[512];
        RM_FUZZ_CHECK(m != NULL);
        RM_FUZZ_CHECK(rm_route_from_proto(m, &back, why, sizeof(why)) == 0);
        size_t n2 = packed(back, &p2);
        RM_FUZZ_CHECK(n1 == n2 && memcmp(p1, p2, n1) == 0);
        check_select((const rm_route_t *const *)&r, 1, r->parents[0].namespace_, r->parents[0].name);
        check_select((const rm_route_t *const *)&back, 1, r->parents[0].namespace_, r->parents[0].name);
        ringmesh__v1__route__free_unpacked(m, NULL);
        rm_route_free(back);
        free(p1);
        free(p2);
    }
    if (list.num > 0)
        check_select((const rm_route_t *const *)list.routes, list.num, list.routes[0]->parents[0].namespace_,
                     list.routes[0]->parents[0].name);
    rm_route_list_clear(&list);
    return 0;
}
