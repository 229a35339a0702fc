/* A service's endpoints through the control plane: the file source's spec.endpoints (values and file/line/field
 * errors), EndpointSlices through the Kubernetes source (conditions, port-name mapping, pod -> identity), the
 * DestinationMap push and its version (endpoint churn re-pushes the destinations only), and the proxy's parse of
 * the push. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "control_client_internal.h"
#include "dest_endpoints.h"
#include "discovery_state.h"
#include "kube_model.h"
#include "mesh_load.h"
#include "ringmesh/v1/discovery.pb-c.h"

#define ROOT_A "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"

static void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("\"%s\"\n  does not contain \"%s\"", haystack, needle);
}

/* Loads `yaml` as file "svc.yaml": the model, or NULL with the message in `msg`. */
static rm_mesh_model_t *load(const char *yaml, char *msg, size_t len)
{
    rm_config_error_t e;
    rm_mesh_loader_t *ld = rm_mesh_loader_new(&e);
    rm_mesh_model_t *m = NULL;
    assert_non_null(ld);
    msg[0] = '\0';
    if (rm_mesh_loader_add(ld, "svc.yaml", yaml, strlen(yaml)) != 0 || rm_mesh_loader_finish(ld, &m) != 0)
        rm_config_error_format(&e, msg, len);
    rm_mesh_loader_free(ld);
    return m;
}

#define HEAD "apiVersion: ringmesh.io/v1alpha1\nkind: Service\nmetadata: {name: orders, namespace: shop}\n"

static const char FILE_OK[] = HEAD "spec:\n"
                                   "  addresses: [198.19.0.10]\n"
                                   "  ports: [8080, 9090]\n"
                                   "  serviceAccounts: [orders]\n"
                                   "  endpoints:\n"
                                   "  - {address: 198.18.1.12, port: 9090, targetPort: 19090, serviceAccount: orders}\n"
                                   "  - {address: 198.18.1.11, port: 8080, serviceAccount: orders, ready: false,\n"
                                   "     terminating: true, serving: true, zone: z1}\n"
                                   "  - address: 198.18.1.10\n"
                                   "    port: 8080\n"
                                   "    identity: spiffe://cluster.local/ns/shop/sa/orders-v2\n";

static void test_file_endpoints(void **state)
{
    (void)state;
    char msg[1024];
    rm_mesh_model_t *m = load(FILE_OK, msg, sizeof(msg));
    if (m == NULL)
        fail_msg("%s", msg);
    const rm_model_service_t *s = &m->services[0];
    assert_int_equal(s->num_endpoints, 3);
    /* sorted by port, then address */
    assert_int_equal(s->endpoints[0].port, 8080);
    assert_string_equal(s->endpoints[0].address, "198.18.1.10:8080"); /* targetPort defaults to the port */
    assert_string_equal(s->endpoints[0].identity, "spiffe://cluster.local/ns/shop/sa/orders-v2");
    assert_true(s->endpoints[0].ready && s->endpoints[0].serving && !s->endpoints[0].terminating);
    assert_string_equal(s->endpoints[1].address, "198.18.1.11:8080");
    assert_true(!s->endpoints[1].ready && s->endpoints[1].serving && s->endpoints[1].terminating);
    assert_string_equal(s->endpoints[1].zone, "z1");
    assert_int_equal(s->endpoints[2].port, 9090);
    assert_string_equal(s->endpoints[2].address, "198.18.1.12:19090");
    assert_string_equal(s->endpoints[2].identity, "spiffe://cluster.local/ns/shop/sa/orders");

    /* the version follows the endpoints: a readiness change is a new version */
    char *flipped = strdup(FILE_OK);
    char *at = strstr(flipped, "ready: false");
    memcpy(at, "ready: true ", 12);
    rm_mesh_model_t *m2 = load(flipped, msg, sizeof(msg));
    assert_non_null(m2);
    assert_string_not_equal(m->version, m2->version);
    rm_mesh_model_unref(m2);
    free(flipped);
    rm_mesh_model_unref(m);
}

typedef struct st_err_case_t {
    const char *spec; /* after HEAD "spec:\n  addresses: [198.19.0.10]\n  ports: [8080, 9090]\n" */
    const char *where, *reason;
} err_case_t;

static const err_case_t err_cases[] = {
    {"  serviceAccounts: [orders]\n  endpoints:\n  - {address: 198.18.1.10, port: 8081, serviceAccount: orders}\n",
     "svc.yaml:9:", "spec.endpoints[0].port: port 8081 is not one of spec.ports"},
    {"  serviceAccounts: [orders]\n  endpoints:\n  - {address: 198.18.1.10, serviceAccount: orders}\n",
     "svc.yaml:9:", "spec.endpoints[0]: port is required: the service has 2 ports"},
    {"  serviceAccounts: [orders]\n  endpoints:\n  - {address: 198.18.1.10, port: 8080}\n",
     "svc.yaml:9:", "spec.endpoints[0]: give its identity: serviceAccount"},
    {"  serviceAccounts: [orders]\n  endpoints:\n  - {address: 198.18.1.300, port: 8080, serviceAccount: a}\n",
     "svc.yaml:9:", "spec.endpoints[0].address: \"198.18.1.300\" is not an IP address"},
    {"  serviceAccounts: [orders]\n  endpoints:\n  - {address: 198.18.1.10, port: 8080, serviceAccount: a}\n"
     "  - {address: 198.18.1.10, port: 8080, serviceAccount: b}\n",
     "svc.yaml:10:", "spec.endpoints[1]: 198.18.1.10:8080 for port 8080 is also spec.endpoints[0]"},
    {"  serviceAccounts: [orders]\n  endpoints:\n  - {address: 198.18.1.10, port: 8080, serviceAccount: a, ready: "
     "maybe}\n",
     "svc.yaml:9:", "spec.endpoints[0].ready: "},
    {"  inMesh: false\n  endpoints:\n  - {address: 198.18.1.10, port: 8080, serviceAccount: a}\n",
     "svc.yaml:", "spec.endpoints: endpoints are for services in the mesh"},
    {"  serviceAccounts: [orders]\n  endpoints:\n  - {address: 198.18.1.10, port: 8080,\n"
     "     identity: spiffe://other.org/ns/shop/sa/a}\n",
     "svc.yaml:10:",
     "spec.endpoints[0].identity: \"spiffe://other.org/ns/shop/sa/a\" is not a SPIFFE ID in the mesh's "
     "trust domain \"cluster.local\""},
    {"  serviceAccounts: [orders]\n  endpoints:\n  - {address: 198.18.1.10, port: 8080, serviceAccount: a, weight: "
     "3}\n",
     "svc.yaml:9:", "unknown key \"weight\""},
};

static void test_file_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
        char yaml[2048], msg[1024];
        snprintf(yaml, sizeof(yaml), HEAD "spec:\n  addresses: [198.19.0.10]\n  ports: [8080, 9090]\n%s",
                 err_cases[i].spec);
        rm_mesh_model_t *m = load(yaml, msg, sizeof(msg));
        if (m != NULL)
            fail_msg("case %zu loaded", i);
        assert_contains(msg, err_cases[i].where);
        assert_contains(msg, err_cases[i].reason);
    }
}

/* ---- Kubernetes ---- */

static json_t *keyed(json_t *items)
{
    json_t *c = json_object();
    size_t i;
    json_t *o;
    json_array_foreach(items, i, o)
    {
        char key[256];
        snprintf(key, sizeof(key), "%s/%s",
                 json_string_value(json_object_get(json_object_get(o, "metadata"), "namespace")),
                 json_string_value(json_object_get(json_object_get(o, "metadata"), "name")));
        json_object_set(c, key, o);
    }
    return c;
}

#define POD(name, sa)                                                                                                  \
    "{\"metadata\": {\"name\": \"" name "\", \"namespace\": \"shop\", \"annotations\": {\"ringmesh.io/status\": "      \
    "\"{}\"}}, \"spec\": {" sa "}}"
static const char PODS[] = "[" POD("orders-1", "\"serviceAccountName\": \"orders\"") ", " POD(
    "orders-2", "\"serviceAccountName\": \"orders-v2\"") ", " POD("orders-3", "") "]";
static const char SERVICES[] =
    "[{\"metadata\": {\"name\": \"orders\", \"namespace\": \"shop\"}, \"spec\": {\"clusterIP\": \"198.19.0.10\", "
    "\"ports\": [{\"name\": \"http\", \"port\": 80, \"targetPort\": \"web\"}, {\"name\": \"grpc\", \"port\": 9090, "
    "\"protocol\": \"TCP\"}]}}]";
/* Two slices: the ports by name (and in another order than the service's), one endpoint terminating, one not
 * ready; the same endpoint in both (moving between slices). */
#define EP(addr, pod, cond)                                                                                            \
    "{\"addresses\": [\"" addr "\"], \"conditions\": " cond ", \"targetRef\": {\"kind\": \"Pod\", \"name\": \"" pod    \
    "\", \"namespace\": \"shop\"}}"
#define SLICE_MD(name)                                                                                                 \
    "\"metadata\": {\"name\": \"" name "\", \"namespace\": \"shop\", \"labels\": {\"kubernetes.io/service-name\": "    \
    "\"orders\"}}"
static const char SLICES[] =
    "[{" SLICE_MD("orders-a") ", \"addressType\": \"IPv4\", \"ports\": [{\"name\": \"grpc\", "
                              "\"port\": 19090, "
                              "\"protocol\": \"TCP\"}, {\"name\": \"http\", \"port\": 8080, "
                              "\"protocol\": \"TCP\"}], \"endpoints\": "
                              "[" EP("198.18.1.10", "orders-1", "{\"ready\": true}") ", " EP(
                                  "198.18.1.11", "orders-2",
                                  "{\"ready\": false, \"serving\": true, \"terminating\": "
                                  "true}") "]}, "
                                           "{" SLICE_MD("orders-b") ", \"addressType\": \"IPv4\", "
                                                                    "\"ports\": [{\"name\": \"http\", "
                                                                    "\"port\": 8080}, "
                                                                    "{\"name\": \"grpc\", \"port\": "
                                                                    "19090}], \"endpoints\": [" EP(
                                                                        "198.18.1.12", "orders-3",
                                                                        "{\"ready\": false}") ", " EP("198.18.1.10",
                                                                                                      "orders-1",
                                                                                                      "{}") "]}]";

static rm_mesh_model_t *kube_build(json_t *pods, json_t *svcs, json_t *slices)
{
    rm_kube_objects_t objs = {.pods = pods, .services = svcs, .endpoint_slices = slices};
    rm_mesh_model_t *m = NULL;
    rm_config_error_t e;
    size_t docs = 0;
    if (rm_kube_model_build(&objs, "mesh.yaml", NULL, 0, NULL, NULL, &m, &docs, &e) != 0) {
        char msg[1024];
        rm_config_error_format(&e, msg, sizeof(msg));
        fail_msg("%s", msg);
    }
    assert_int_equal(docs, 1);
    return m;
}

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (j == NULL)
        fail_msg("fixture: %s at %d", je.text, je.position);
    json_t *c = keyed(j);
    json_decref(j);
    return c;
}

static void test_kube_endpoint_slices(void **state)
{
    (void)state;
    json_t *pods = parse(PODS), *svcs = parse(SERVICES), *slices = parse(SLICES);
    rm_mesh_model_t *m = kube_build(pods, svcs, slices);
    const rm_model_service_t *s = &m->services[0];

    assert_true(s->in_mesh);
    assert_int_equal(s->num_endpoints, 6); /* 3 pods x 2 ports; the duplicate left out */
    /* port 80 ("http") -> the slices' "http" port 8080; 9090 ("grpc") -> 19090 */
    assert_int_equal(s->endpoints[0].port, 80);
    assert_string_equal(s->endpoints[0].address, "198.18.1.10:8080");
    assert_string_equal(s->endpoints[0].identity, "spiffe://cluster.local/ns/shop/sa/orders");
    assert_true(s->endpoints[0].ready && s->endpoints[0].serving && !s->endpoints[0].terminating);
    assert_string_equal(s->endpoints[1].address, "198.18.1.11:8080");
    assert_string_equal(s->endpoints[1].identity, "spiffe://cluster.local/ns/shop/sa/orders-v2");
    assert_true(!s->endpoints[1].ready && s->endpoints[1].serving && s->endpoints[1].terminating);
    assert_string_equal(s->endpoints[2].address, "198.18.1.12:8080");
    assert_string_equal(s->endpoints[2].identity, "spiffe://cluster.local/ns/shop/sa/default"); /* no account named */
    assert_true(!s->endpoints[2].ready && !s->endpoints[2].serving && !s->endpoints[2].terminating);
    assert_int_equal(s->endpoints[3].port, 9090);
    assert_string_equal(s->endpoints[3].address, "198.18.1.10:19090");

    /* endpoint churn: only the destinations' push changes version */
    rm_xds_push_set_t *a, *b;
    assert_int_equal(rm_xds_push_set_build(m, ROOT_A, 1, &a), 0);
    json_t *ep = json_array_get(json_object_get(json_object_get(slices, "shop/orders-b"), "endpoints"), 0);
    json_object_set_new(json_object_get(ep, "conditions"), "ready", json_true());
    rm_mesh_model_t *m2 = kube_build(pods, svcs, slices);
    assert_true(m2->services[0].endpoints[2].ready);
    assert_string_not_equal(m->version, m2->version);
    assert_int_equal(rm_xds_push_set_build(m2, ROOT_A, 2, &b), 0);
    assert_string_not_equal(a->types[RM_XDS_DESTINATIONS].version, b->types[RM_XDS_DESTINATIONS].version);
    assert_string_equal(a->types[RM_XDS_MESH_SETTINGS].version, b->types[RM_XDS_MESH_SETTINGS].version);
    assert_string_equal(a->types[RM_XDS_TRUST_BUNDLE].version, b->types[RM_XDS_TRUST_BUNDLE].version);
    rm_xds_push_set_unref(b);
    rm_mesh_model_unref(m2);

    /* the push decodes in the proxy: per VIP:port, that port's endpoints with their identities */
    Ringmesh__V1__DiscoveryResponse *r = ringmesh__v1__discovery_response__unpack(
        NULL, a->types[RM_XDS_DESTINATIONS].response_len, a->types[RM_XDS_DESTINATIONS].response);
    assert_non_null(r);
    rm_dest_table_t *t = NULL;
    char err[512];
    assert_int_equal(rm__control_parse_destinations(r->resources[0]->value.data, r->resources[0]->value.len,
                                                    "cluster.local", &t, err, sizeof(err)),
                     0);
    assert_int_equal(t->num, 2);
    for (size_t i = 0; i < t->num; i++) {
        const rm_dest_endpoints_t *e = t->dests[i].endpoints;
        assert_non_null(e);
        assert_int_equal(e->num, 3);
        assert_int_equal(e->cls, RM_ENDPOINT_ELIGIBLE_READY);
        assert_int_equal(e->num_candidates, 1); /* only 198.18.1.10 is ready and not terminating */
        assert_string_equal(e->items[e->candidates[0]].identity, "spiffe://cluster.local/ns/shop/sa/orders");
    }
    rm_dest_table_unref(t);
    /* an endpoint outside the proxy's trust domain is refused, named */
    assert_int_equal(rm__control_parse_destinations(r->resources[0]->value.data, r->resources[0]->value.len,
                                                    "example.org", &t, err, sizeof(err)),
                     -EINVAL);
    assert_contains(err, "destination shop/orders:");
    ringmesh__v1__discovery_response__free_unpacked(r, NULL);
    rm_xds_push_set_unref(a);

    /* a pod that is not injected takes the service out of the mesh: no endpoints pushed */
    json_object_del(json_object_get(json_object_get(json_object_get(pods, "shop/orders-3"), "metadata"), "annotations"),
                    "ringmesh.io/status");
    m2 = kube_build(pods, svcs, slices);
    assert_false(m2->services[0].in_mesh);
    assert_int_equal(m2->services[0].num_endpoints, 0);
    rm_mesh_model_unref(m2);

    rm_mesh_model_unref(m);
    json_decref(pods);
    json_decref(svcs);
    json_decref(slices);
}

/* A dual-stack service: the IPv4 VIP's connections go to IPv4 endpoints only, the IPv6 VIP's to IPv6 ones (as
 * kube-proxy does); a port with endpoints of the other family only keeps the VIP. */
static void test_proxy_endpoints_by_family(void **state)
{
    (void)state;
    char *addrs[] = {"198.19.0.10:80", "[2001:2::10]:80", "198.19.0.10:81"};
    char *ids[] = {"spiffe://cluster.local/ns/shop/sa/orders"};
    Ringmesh__V1__Endpoint eps[3], *list[3];
    static const char *const ep_addr[] = {"198.18.1.10:8080", "[2001:2::1:10]:8080", "[2001:2::1:11]:8081"};
    static const uint32_t ep_port[] = {80, 80, 81};
    for (int i = 0; i < 3; i++) {
        ringmesh__v1__endpoint__init(&eps[i]);
        eps[i].address = (char *)ep_addr[i];
        eps[i].service_port = ep_port[i];
        eps[i].identity = ids[0];
        eps[i].ready = eps[i].serving = 1;
        list[i] = &eps[i];
    }
    Ringmesh__V1__Destination d = RINGMESH__V1__DESTINATION__INIT, *dl[1] = {&d};
    d.name = "shop/orders";
    d.n_addresses = 3;
    d.addresses = addrs;
    d.in_mesh = 1;
    d.n_identities = 1;
    d.identities = ids;
    d.n_endpoints = 3;
    d.endpoints = list;
    Ringmesh__V1__DestinationMap map = RINGMESH__V1__DESTINATION_MAP__INIT;
    map.n_destinations = 1;
    map.destinations = dl;
    uint8_t buf[1024];
    size_t len = ringmesh__v1__destination_map__pack(&map, buf);
    rm_dest_table_t *t = NULL;
    char err[512];
    assert_int_equal(rm__control_parse_destinations(buf, len, "cluster.local", &t, err, sizeof(err)), 0);
    assert_int_equal(t->num, 3);
    assert_int_equal(t->dests[0].endpoints->num, 1);
    assert_int_equal(t->dests[0].endpoints->items[0].addr.ss.ss_family, AF_INET);
    assert_int_equal(t->dests[1].endpoints->num, 1);
    assert_int_equal(t->dests[1].endpoints->items[0].addr.ss.ss_family, AF_INET6);
    assert_null(t->dests[2].endpoints); /* port 81 has an IPv6 endpoint only: its IPv4 VIP stays */
    rm_dest_table_unref(t);

    /* a malformed endpoint is refused whatever its family, naming it */
    eps[2].address = "2001:2::1:11:8081";
    len = ringmesh__v1__destination_map__pack(&map, buf);
    assert_int_equal(rm__control_parse_destinations(buf, len, "cluster.local", &t, err, sizeof(err)), -EINVAL);
    assert_contains(err, "destination shop/orders: endpoints[2]: address \"2001:2::1:11:8081\" is not ip:port");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_endpoints),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_kube_endpoint_slices),
        cmocka_unit_test(test_proxy_endpoints_by_family),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
