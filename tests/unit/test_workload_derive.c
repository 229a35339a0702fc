/* Who a pod is (control/workload_derive.h): the workload name for every owner kind, the app and version labels in
 * Istio's order of precedence, the principal, the addresses and the access-log annotation; which pod changes change
 * the model; and the WorkloadMap each node is pushed (control/discovery_workloads.h, discovery_state.h): its own
 * workload, the peers by address, shared by replicas, bounded in size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/error.h"

#include "discovery_state.h"
#include "discovery_workloads.h"
#include "mesh_model_internal.h"
#include "ringmesh/v1/discovery.pb-c.h"
#include "unit_asserts.h"
#include "workload_derive.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static json_t *pod_json(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (j == NULL)
        fail_msg("bad test JSON at %d: %s", e.line, e.text);
    return j;
}

/* The workload of `text`, checked against the expected name, app and version. */
static void check(const char *text, const char *name, const char *app, const char *version)
{
    json_t *pod = pod_json(text);
    rm_model_workload_t w;

    assert_int_equal(rm_workload_from_pod(pod, &w), 0);
    assert_string_equal(w.name, name);
    assert_string_equal(w.app, app);
    assert_string_equal(w.version, version);
    rm__model_workload_clear(&w);
    json_decref(pod);
}

#define META(extra) "{\"metadata\":{\"namespace\":\"shop\",\"name\":\"orders-7d9f8c-x2x4q\"" extra "}}"
#define OWNER(kind, name, controller)                                                                                  \
    ",\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"" kind "\",\"name\":\"" name                         \
    "\",\"controller\":" controller "}]"

static void test_owner_kinds(void **state)
{
    (void)state;
    /* a Deployment's pod: ReplicaSet "<deployment>-<pod-template-hash>" */
    check(META(OWNER("ReplicaSet", "orders-7d9f8c", "true") ",\"labels\":{\"pod-template-hash\":\"7d9f8c\"}"), "orders",
          "orders", "latest");
    /* a ReplicaSet of its own (no hash label, or a name without that suffix): the ReplicaSet */
    check(META(OWNER("ReplicaSet", "orders-rs", "true")), "orders-rs", "orders-rs", "latest");
    check(META(OWNER("ReplicaSet", "orders-rs", "true") ",\"labels\":{\"pod-template-hash\":\"7d9f8c\"}"), "orders-rs",
          "orders-rs", "latest");
    check(META(OWNER("StatefulSet", "ledger", "true")), "ledger", "ledger", "latest");
    check(META(OWNER("DaemonSet", "node-agent", "true")), "node-agent", "node-agent", "latest");
    /* a Job a CronJob made ("<cronjob>-<minutes>"), and a Job of its own */
    check(META(OWNER("Job", "nightly-report-29423520", "true")), "nightly-report", "nightly-report", "latest");
    check(META(OWNER("Job", "migrate-1", "true")), "migrate-1", "migrate-1", "latest");
    check(META(OWNER("Job", "migrate-1234567", "true")), "migrate-1234567", "migrate-1234567", "latest");
    /* no controller (a bare pod, or an owner that is not the controller): the pod */
    check(META(""), "orders-7d9f8c-x2x4q", "orders-7d9f8c-x2x4q", "latest");
    check(META(OWNER("ReplicaSet", "orders-7d9f8c", "false")), "orders-7d9f8c-x2x4q", "orders-7d9f8c-x2x4q", "latest");
}

static void test_label_precedence(void **state)
{
    (void)state;
    check(META(OWNER("StatefulSet", "ledger", "true") ",\"labels\":{\"app\":\"a\",\"version\":\"v1\"}"), "ledger", "a",
          "v1");
    check(META(OWNER("StatefulSet", "ledger",
                     "true") ",\"labels\":{\"app\":\"a\",\"app.kubernetes.io/name\":\"b\",\"version\":\"v1\","
                             "\"app.kubernetes.io/version\":\"v2\"}"),
          "ledger", "b", "v2");
    check(META(OWNER("StatefulSet", "ledger",
                     "true") ",\"labels\":{\"app\":\"a\",\"app.kubernetes.io/name\":\"b\",\"service.istio.io/"
                             "canonical-name\":\"c\","
                             "\"version\":\"v1\",\"service.istio.io/canonical-revision\":\"v3\"}"),
          "ledger", "c", "v3");
    /* an empty label counts as none */
    check(META(OWNER("StatefulSet", "ledger", "true") ",\"labels\":{\"app.kubernetes.io/name\":\"\",\"app\":\"a\"}"),
          "ledger", "a", "latest");
}

static void test_principal_addresses_annotation(void **state)
{
    (void)state;
    rm_model_workload_t w;
    json_t *pod = pod_json("{\"metadata\":{\"namespace\":\"shop\",\"name\":\"p\",\"annotations\":{\"ringmesh.io/"
                           "access-log\":\"true\"}},\"spec\":{\"serviceAccountName\":\"orders\"},"
                           "\"status\":{\"podIP\":\"198.18.0.5\",\"podIPs\":[{\"ip\":\"198.18.0.5\"},"
                           "{\"ip\":\"2001:2:0::5\"},{\"ip\":\"not-an-ip\"}]}}");
    assert_int_equal(rm_workload_from_pod(pod, &w), 0);
    assert_string_equal(w.service_account, "orders");
    assert_int_equal(w.num_addresses, 2);
    assert_string_equal(w.addresses[0], "198.18.0.5");
    assert_string_equal(w.addresses[1], "2001:2::5"); /* canonical form */
    assert_int_equal(w.access_log, RM_MODEL_ACCESS_LOG_ON);
    rm__model_workload_clear(&w);
    json_decref(pod);

    /* podIP alone; "false"; no service account: "default" */
    pod = pod_json("{\"metadata\":{\"namespace\":\"shop\",\"name\":\"p\",\"annotations\":{\"ringmesh.io/access-log\":"
                   "\"false\"}},\"status\":{\"podIP\":\"198.18.0.6\"}}");
    assert_int_equal(rm_workload_from_pod(pod, &w), 0);
    assert_string_equal(w.service_account, "default");
    assert_int_equal(w.num_addresses, 1);
    assert_int_equal(w.access_log, RM_MODEL_ACCESS_LOG_OFF);
    rm__model_workload_clear(&w);
    json_decref(pod);

    /* host network: the node's address is no pod's; another annotation value: the mesh's setting */
    pod = pod_json("{\"metadata\":{\"namespace\":\"shop\",\"name\":\"p\",\"annotations\":{\"ringmesh.io/access-log\":"
                   "\"yes\"}},\"spec\":{\"hostNetwork\":true},\"status\":{\"podIP\":\"198.18.0.1\"}}");
    assert_int_equal(rm_workload_from_pod(pod, &w), 0);
    assert_int_equal(w.num_addresses, 0);
    assert_int_equal(w.access_log, RM_MODEL_ACCESS_LOG_MESH);
    rm__model_workload_clear(&w);
    json_decref(pod);

    pod = pod_json("{\"metadata\":{\"name\":\"p\"}}");
    assert_int_equal(rm_workload_from_pod(pod, &w), -EINVAL);
    json_decref(pod);
}

static void test_pods_differ(void **state)
{
    (void)state;
    json_t *a = pod_json("{\"metadata\":{\"namespace\":\"s\",\"name\":\"p\",\"labels\":{\"app\":\"x\"}},"
                         "\"status\":{\"phase\":\"Pending\"}}");
    json_t *b = pod_json("{\"metadata\":{\"namespace\":\"s\",\"name\":\"p\",\"labels\":{\"app\":\"x\"},"
                         "\"resourceVersion\":\"9\"},\"status\":{\"phase\":\"Running\",\"podIP\":\"198.18.0.5\"}}");
    json_t *c = pod_json("{\"metadata\":{\"namespace\":\"s\",\"name\":\"p\",\"labels\":{\"app\":\"x\"},"
                         "\"resourceVersion\":\"10\"},\"status\":{\"phase\":\"Running\",\"podIP\":\"198.18.0.5\"}}");
    json_t *d = pod_json("{\"metadata\":{\"namespace\":\"s\",\"name\":\"p\",\"labels\":{\"app\":\"x\"}},"
                         "\"status\":{\"phase\":\"Succeeded\",\"podIP\":\"198.18.0.5\"}}");
    assert_int_equal(rm_workload_pods_differ(a, b), 1); /* the address came */
    assert_int_equal(rm_workload_pods_differ(b, c), 0); /* nothing the workload says changed */
    assert_int_equal(rm_workload_pods_differ(c, d), 1); /* finished */
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(d);
}

/* A model holding the pods of `pods_text` (a JSON object keyed ns/name). */
static rm_mesh_model_t *model_with(const char *pods_text)
{
    rm_mesh_model_t *m = rm__mesh_model_new();
    json_t *pods = pod_json(pods_text);
    assert_non_null(m);
    assert_int_equal(rm_model_set_workloads(m, pods), 0);
    json_decref(pods);
    return m;
}

#define OWNER_RS "\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"name\":\"orders-7d9f8c\",\"controller\":true}]"
static const char three_pods[] =
    "{\"shop/orders-7d9f8c-aaaaa\":{\"metadata\":{\"namespace\":\"shop\",\"name\":\"orders-7d9f8c-aaaaa\","
    "\"labels\":{\"pod-template-hash\":\"7d9f8c\",\"app\":\"orders\",\"version\":\"v2\"}," OWNER_RS "},"
    "\"spec\":{\"serviceAccountName\":\"orders\"},\"status\":{\"podIP\":\"198.18.0.5\"}},"
    "\"shop/orders-7d9f8c-bbbbb\":{\"metadata\":{\"namespace\":\"shop\",\"name\":\"orders-7d9f8c-bbbbb\","
    "\"labels\":{\"pod-template-hash\":\"7d9f8c\",\"app\":\"orders\",\"version\":\"v2\"}," OWNER_RS "},"
    "\"spec\":{\"serviceAccountName\":\"orders\"},\"status\":{\"podIP\":\"198.18.0.6\"}},"
    "\"shop/done\":{\"metadata\":{\"namespace\":\"shop\",\"name\":\"done\"},"
    "\"status\":{\"phase\":\"Failed\",\"podIP\":\"198.18.0.7\"}},"
    "\"web/front\":{\"metadata\":{\"namespace\":\"web\",\"name\":\"front\"},"
    "\"spec\":{\"serviceAccountName\":\"front\"},\"status\":{\"podIP\":\"198.18.0.8\"}}}";
#undef OWNER_RS

static void test_model_workloads_and_version(void **state)
{
    (void)state;
    rm_mesh_model_t *m = model_with(three_pods), *none = rm__mesh_model_new();
    assert_int_equal(rm__mesh_model_seal(none), 0);
    assert_int_equal(m->num_workloads, 3); /* the finished pod is left out */
    assert_string_equal(m->workloads[0].pod, "orders-7d9f8c-aaaaa");
    assert_string_equal(m->workloads[0].name, "orders");
    assert_string_equal(m->workloads[2].namespace_, "web");
    assert_string_not_equal(m->version, none->version); /* the workloads are content */
    rm_mesh_model_unref(m);
    rm_mesh_model_unref(none);
}

static Ringmesh__V1__WorkloadMap *unpack_push(const rm_xds_push_t *p)
{
    Ringmesh__V1__DiscoveryResponse *r = ringmesh__v1__discovery_response__unpack(NULL, p->response_len, p->response);
    assert_non_null(r);
    assert_string_equal(r->type_url, "type.ringmesh.io/ringmesh.v1.WorkloadMap");
    assert_int_equal(r->n_resources, 1);
    assert_string_equal(r->resources[0]->name, "workloads");
    Ringmesh__V1__WorkloadMap *map =
        ringmesh__v1__workload_map__unpack(NULL, r->resources[0]->value.len, r->resources[0]->value.data);
    assert_non_null(map);
    ringmesh__v1__discovery_response__free_unpacked(r, NULL);
    return map;
}

static void test_push_per_node(void **state)
{
    (void)state;
    rm_mesh_model_t *m = model_with(three_pods);
    rm_xds_push_set_t *set;
    rm_xds_workload_t a = {.workload = {.namespace_ = "shop"},
                           .key = "shop\n",
                           .node = "orders-7d9f8c-aaaaa",
                           .service_account = "orders"};
    rm_xds_workload_t b = a, stranger = {.workload = {.namespace_ = "vm"},
                                         .key = "vm\n",
                                         .node = "host-1",
                                         .service_account = "billing"};
    b.node = "orders-7d9f8c-bbbbb";

    assert_int_equal(
        rm_xds_push_set_build(m, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 7, &set), 0);
    const rm_xds_push_t *pa = rm_xds_push_get(set, RM_XDS_WORKLOADS, &a),
                        *pb = rm_xds_push_get(set, RM_XDS_WORKLOADS, &b);
    assert_non_null(pa);
    assert_ptr_equal(pa, pb); /* replicas of one workload share the push */
    Ringmesh__V1__WorkloadMap *map = unpack_push(pa);
    assert_string_equal(map->self->name, "orders");
    assert_string_equal(map->self->namespace_, "shop");
    assert_string_equal(map->self->app, "orders");
    assert_string_equal(map->self->version, "v2");
    assert_string_equal(map->self->principal, "spiffe://cluster.local/ns/shop/sa/orders");
    assert_int_equal(map->self->n_addresses, 0);
    assert_int_equal(map->n_peers, 3);
    assert_string_equal(map->peers[2]->name, "front");
    assert_string_equal(map->peers[2]->addresses[0], "198.18.0.8");
    assert_string_equal(map->peers[2]->principal, "spiffe://cluster.local/ns/web/sa/front");
    ringmesh__v1__workload_map__free_unpacked(map, NULL);

    /* a node the source does not know: its namespace and principal only, the peers all the same */
    const rm_xds_push_t *ps = rm_xds_push_get(set, RM_XDS_WORKLOADS, &stranger);
    assert_non_null(ps);
    assert_ptr_not_equal(ps, pa);
    map = unpack_push(ps);
    assert_string_equal(map->self->name, "");
    assert_string_equal(map->self->namespace_, "vm");
    assert_string_equal(map->self->principal, "spiffe://cluster.local/ns/vm/sa/billing");
    assert_int_equal(map->n_peers, 3);
    ringmesh__v1__workload_map__free_unpacked(map, NULL);

    /* a subscribed stream is pushed it like the other types */
    rm_xds_stream_state_t st = {0};
    const rm_xds_push_t *push;
    int type;
    rm_xds_on_request(&st, rm_xds_type_url(RM_XDS_WORKLOADS), "", "", 0, &type);
    assert_int_equal(type, RM_XDS_WORKLOADS);
    assert_int_equal(rm_xds_next_push(&st, set, &a, &push), RM_XDS_WORKLOADS);
    assert_ptr_equal(push, pa);
    rm_xds_push_set_unref(set);
    rm_mesh_model_unref(m);
}

static void test_peers_bounded(void **state)
{
    (void)state;
    rm_mesh_model_t *m = model_with(three_pods);
    uint8_t *peers;
    size_t len, all_len;

    assert_int_equal(rm__xds_workload_peers_encode(m, RM_XDS_WORKLOAD_PEERS_MAX_BYTES, &peers, &all_len), 0);
    Ringmesh__V1__WorkloadMap *map = ringmesh__v1__workload_map__unpack(NULL, all_len, peers);
    assert_int_equal(map->n_peers, 3);
    ringmesh__v1__workload_map__free_unpacked(map, NULL);
    free(peers);
    /* room for about one entry: the rest is left out (and logged), never more than the bound */
    assert_int_equal(rm__xds_workload_peers_encode(m, all_len / 2, &peers, &len), 0);
    assert_true(len <= all_len / 2);
    map = ringmesh__v1__workload_map__unpack(NULL, len, peers);
    assert_non_null(map);
    assert_true(map->n_peers >= 1 && map->n_peers < 3);
    ringmesh__v1__workload_map__free_unpacked(map, NULL);
    free(peers);
    rm_mesh_model_unref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_owner_kinds),
        cmocka_unit_test(test_label_precedence),
        cmocka_unit_test(test_principal_addresses_annotation),
        cmocka_unit_test(test_pods_differ),
        cmocka_unit_test(test_model_workloads_and_version),
        cmocka_unit_test(test_push_per_node),
        cmocka_unit_test(test_peers_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
