/* Discovery without the transport: the push set's encoding (decoded back with protobuf-c) and the xDS
 * ACK/NACK/versioning rules of a stream. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "discovery_state.h"
#include "ringmesh/v1/discovery.pb-c.h"

#define ROOT_A "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
#define ROOT_B "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n"

static char *orders_addrs[] = {"198.18.100.1:8080", "[2001:2::1]:8080"};
static char *orders_ids[] = {"spiffe://cluster.local/ns/shop/sa/orders"};
static char *ext_addrs[] = {"198.18.200.9:443"};

static void make_model(rm_mesh_model_t *m, rm_model_service_t svcs[2])
{
    memset(m, 0, sizeof(*m));
    memset(svcs, 0, 2 * sizeof(*svcs));
    m->version = "v-test";
    m->refcnt = 1; /* the test's own reference: push sets take and drop theirs */
    m->settings.root_namespace = "ringmesh-system";
    m->settings.trust_domain = "cluster.local";
    m->settings.inbound_mode = RM_MODEL_MTLS_STRICT;
    m->settings.connect_timeout_ms = 2500;
    m->settings.idle_timeout_ms = 60000;
    m->settings.access_log = 1;
    m->settings.metrics_istio_names = 1;
    m->settings.metrics_max_series = 500;
    m->settings.metrics_expiry_ms = 120000;
    m->settings.svid_ttl = 3600;
    svcs[0].namespace_ = "shop";
    svcs[0].name = "orders";
    svcs[0].addresses = orders_addrs;
    svcs[0].num_addresses = 2;
    svcs[0].in_mesh = 1;
    svcs[0].identities = orders_ids;
    svcs[0].num_identities = 1;
    svcs[1].namespace_ = "shop";
    svcs[1].name = "payments-gateway";
    svcs[1].addresses = ext_addrs;
    svcs[1].num_addresses = 1;
    svcs[1].in_mesh = 0;
    svcs[1].identities = orders_ids; /* ignored for a service outside the mesh */
    svcs[1].num_identities = 1;
    m->services = svcs;
    m->num_services = 2;
}

static Ringmesh__V1__DiscoveryResponse *decode(const rm_xds_push_set_t *set, int type)
{
    Ringmesh__V1__DiscoveryResponse *r =
        ringmesh__v1__discovery_response__unpack(NULL, set->types[type].response_len, set->types[type].response);
    assert_non_null(r);
    assert_string_equal(r->type_url, rm_xds_type_url(type));
    assert_string_equal(r->version_info, set->types[type].version);
    assert_string_equal(r->nonce, set->types[type].nonce);
    assert_int_equal(r->n_resources, 1);
    /* The version is the digest of the resource's bytes. */
    char v[RM_XDS_VERSION_LEN + 1];
    rm_xds_version_of(r->resources[0]->value.data, r->resources[0]->value.len, v);
    assert_string_equal(v, r->version_info);
    assert_string_equal(r->resources[0]->version, r->version_info);
    return r;
}

static void test_push_set_encodes_every_type(void **state)
{
    rm_mesh_model_t m;
    rm_model_service_t svcs[2];
    rm_xds_push_set_t *set;

    make_model(&m, svcs);
    assert_int_equal(rm_xds_push_set_build(&m, ROOT_A ROOT_B, 7, &set), 0);

    Ringmesh__V1__DiscoveryResponse *r = decode(set, RM_XDS_TRUST_BUNDLE);
    Ringmesh__V1__TrustBundle *tb =
        ringmesh__v1__trust_bundle__unpack(NULL, r->resources[0]->value.len, r->resources[0]->value.data);
    assert_non_null(tb);
    assert_string_equal(tb->trust_domain, "cluster.local");
    assert_int_equal(tb->n_roots_pem, 2);
    assert_non_null(strstr(tb->roots_pem[0], "AAAA"));
    assert_null(strstr(tb->roots_pem[0], "BBBB"));
    assert_non_null(strstr(tb->roots_pem[1], "BBBB"));
    assert_string_equal(set->types[RM_XDS_TRUST_BUNDLE].nonce, "trust_bundle-7");
    ringmesh__v1__trust_bundle__free_unpacked(tb, NULL);
    ringmesh__v1__discovery_response__free_unpacked(r, NULL);

    r = decode(set, RM_XDS_DESTINATIONS);
    Ringmesh__V1__DestinationMap *dm =
        ringmesh__v1__destination_map__unpack(NULL, r->resources[0]->value.len, r->resources[0]->value.data);
    assert_non_null(dm);
    assert_int_equal(dm->n_destinations, 2);
    assert_string_equal(dm->destinations[0]->name, "shop/orders");
    assert_true(dm->destinations[0]->in_mesh);
    assert_int_equal(dm->destinations[0]->n_addresses, 2);
    assert_string_equal(dm->destinations[0]->addresses[1], "[2001:2::1]:8080");
    assert_int_equal(dm->destinations[0]->n_identities, 1);
    assert_string_equal(dm->destinations[0]->identities[0], orders_ids[0]);
    assert_false(dm->destinations[1]->in_mesh);
    assert_int_equal(dm->destinations[1]->n_identities, 0);
    ringmesh__v1__destination_map__free_unpacked(dm, NULL);
    ringmesh__v1__discovery_response__free_unpacked(r, NULL);

    r = decode(set, RM_XDS_MESH_SETTINGS);
    Ringmesh__V1__MeshSettings *ms =
        ringmesh__v1__mesh_settings__unpack(NULL, r->resources[0]->value.len, r->resources[0]->value.data);
    assert_non_null(ms);
    assert_string_equal(ms->trust_domain, "cluster.local");
    assert_int_equal(ms->inbound_mode, RINGMESH__V1__MTLS_MODE__STRICT);
    assert_int_equal(ms->connect_timeout_ms, 2500);
    assert_int_equal(ms->idle_timeout_ms, 60000);
    assert_true(ms->access_log);
    assert_true(ms->metrics_istio_names);
    assert_int_equal(ms->metrics_max_series_per_metric, 500);
    assert_int_equal(ms->metrics_series_expiry_ms, 120000);
    assert_int_equal(ms->svid_ttl_seconds, 3600);
    ringmesh__v1__mesh_settings__free_unpacked(ms, NULL);
    ringmesh__v1__discovery_response__free_unpacked(r, NULL);
    rm_xds_push_set_unref(set);
}

static void test_versions_follow_content(void **state)
{
    rm_mesh_model_t m;
    rm_model_service_t svcs[2];
    rm_xds_push_set_t *a, *b, *c, *d;

    make_model(&m, svcs);
    assert_int_equal(rm_xds_push_set_build(&m, ROOT_A, 1, &a), 0);
    assert_int_equal(rm_xds_push_set_build(&m, ROOT_A, 2, &b), 0);
    for (int t = 0; t < RM_XDS_WORKLOAD_POLICY; t++) {
        assert_string_equal(a->types[t].version, b->types[t].version); /* same content, same version */
        assert_string_not_equal(a->types[t].nonce, b->types[t].nonce);
    }
    svcs[0].num_addresses = 1; /* a destination changes: only that type's version moves */
    assert_int_equal(rm_xds_push_set_build(&m, ROOT_A, 3, &c), 0);
    assert_string_not_equal(a->types[RM_XDS_DESTINATIONS].version, c->types[RM_XDS_DESTINATIONS].version);
    assert_string_equal(a->types[RM_XDS_TRUST_BUNDLE].version, c->types[RM_XDS_TRUST_BUNDLE].version);
    assert_string_equal(a->types[RM_XDS_MESH_SETTINGS].version, c->types[RM_XDS_MESH_SETTINGS].version);
    assert_int_equal(rm_xds_push_set_build(&m, ROOT_A ROOT_B, 4, &d), 0); /* a root is added */
    assert_string_not_equal(c->types[RM_XDS_TRUST_BUNDLE].version, d->types[RM_XDS_TRUST_BUNDLE].version);
    rm_xds_push_set_unref(a);
    rm_xds_push_set_unref(b);
    rm_xds_push_set_unref(c);
    rm_xds_push_set_unref(d);
}

static void test_no_root_no_push(void **state)
{
    rm_mesh_model_t m;
    rm_model_service_t svcs[2];
    rm_xds_push_set_t *set = NULL;

    make_model(&m, svcs);
    assert_int_equal(rm_xds_push_set_build(&m, "", 1, &set), -EINVAL);
    assert_null(set);
}

static void test_ack_nack_and_versions(void **state)
{
    rm_mesh_model_t m;
    rm_model_service_t svcs[2];
    rm_xds_push_set_t *v1, *v2;
    rm_xds_stream_state_t st;
    const rm_xds_push_t *push;
    int type;
    const char *dest_url = rm_xds_type_url(RM_XDS_DESTINATIONS);

    make_model(&m, svcs);
    assert_int_equal(rm_xds_push_set_build(&m, ROOT_A, 1, &v1), 0);
    memset(&st, 0, sizeof(st));

    /* Nothing is pushed before a subscription. */
    assert_int_equal(rm_xds_next_push(&st, v1, NULL, &push), -1);
    assert_int_equal(rm_xds_on_request(&st, dest_url, "", "", 0, &type), RM_XDS_REQ_SUBSCRIBE);
    assert_int_equal(type, RM_XDS_DESTINATIONS);
    assert_int_equal(rm_xds_next_push(&st, v1, NULL, &push), RM_XDS_DESTINATIONS);
    rm_xds_mark_sent(&st, RM_XDS_DESTINATIONS, &v1->types[RM_XDS_DESTINATIONS]);
    assert_int_equal(rm_xds_next_push(&st, v1, NULL, &push), -1); /* sent, not pushed twice */
    assert_true(st.types[RM_XDS_DESTINATIONS].awaiting_answer);

    /* An answer to a nonce that is not the last one is ignored. */
    assert_int_equal(rm_xds_on_request(&st, dest_url, v1->types[1].version, "destinations-0", 0, &type),
                     RM_XDS_REQ_STALE);
    assert_true(st.types[RM_XDS_DESTINATIONS].awaiting_answer);
    assert_int_equal(rm_xds_on_request(&st, dest_url, v1->types[1].version, v1->types[1].nonce, 0, &type),
                     RM_XDS_REQ_ACK);
    assert_string_equal(st.types[RM_XDS_DESTINATIONS].acked_version, v1->types[1].version);
    assert_int_equal(st.types[RM_XDS_DESTINATIONS].acks, 1);
    assert_false(st.types[RM_XDS_DESTINATIONS].awaiting_answer);

    /* v2 is pushed, NACKed: the sidecar keeps v1 and v2 is not pushed again. */
    svcs[0].num_addresses = 1;
    assert_int_equal(rm_xds_push_set_build(&m, ROOT_A, 2, &v2), 0);
    assert_int_equal(rm_xds_next_push(&st, v2, NULL, &push), RM_XDS_DESTINATIONS);
    rm_xds_mark_sent(&st, RM_XDS_DESTINATIONS, &v2->types[RM_XDS_DESTINATIONS]);
    assert_int_equal(rm_xds_on_request(&st, dest_url, v1->types[1].version, v2->types[1].nonce, 1, &type),
                     RM_XDS_REQ_NACK);
    assert_string_equal(st.types[RM_XDS_DESTINATIONS].acked_version, v1->types[1].version);
    assert_int_equal(st.types[RM_XDS_DESTINATIONS].nacks, 1);
    assert_int_equal(rm_xds_next_push(&st, v2, NULL, &push), -1);
    /* Going back to v1's content is a change from what was last sent: it is pushed. */
    assert_int_equal(rm_xds_next_push(&st, v1, NULL, &push), RM_XDS_DESTINATIONS);

    /* A reconnecting sidecar that already runs the current version is not pushed it again... */
    memset(&st, 0, sizeof(st));
    assert_int_equal(rm_xds_on_request(&st, dest_url, v2->types[1].version, "", 0, &type), RM_XDS_REQ_SUBSCRIBE);
    assert_int_equal(rm_xds_next_push(&st, v2, NULL, &push), -1);
    /* ... but one with an older version is. */
    assert_int_equal(rm_xds_next_push(&st, v1, NULL, &push), RM_XDS_DESTINATIONS);

    /* Types are independent; unknown types are named as such. */
    assert_int_equal(rm_xds_on_request(&st, rm_xds_type_url(RM_XDS_TRUST_BUNDLE), "", "", 0, &type),
                     RM_XDS_REQ_SUBSCRIBE);
    assert_int_equal(rm_xds_next_push(&st, v2, NULL, &push), RM_XDS_TRUST_BUNDLE);
    assert_int_equal(rm_xds_on_request(&st, "type.googleapis.com/envoy.config.cluster.v3.Cluster", "", "", 0, &type),
                     RM_XDS_REQ_UNKNOWN_TYPE);
    assert_int_equal(type, -1);

    rm_xds_push_set_unref(v1);
    rm_xds_push_set_unref(v2);
}

static void test_type_urls(void **state)
{
    for (int t = 0; t < RM_XDS_NUM_TYPES; t++)
        assert_int_equal(rm_xds_type_from_url(rm_xds_type_url(t)), t);
    assert_string_equal(rm_xds_type_url(RM_XDS_DESTINATIONS), "type.ringmesh.io/ringmesh.v1.DestinationMap");
    assert_int_equal(rm_xds_type_from_url(NULL), -1);
    assert_int_equal(rm_xds_type_from_url("type.ringmesh.io/ringmesh.v1."), -1);
}

static const char POLICIES[] = "apiVersion: security.istio.io/v1\n"
                               "kind: AuthorizationPolicy\n"
                               "metadata: {name: mesh-deny, namespace: ringmesh-system}\n"
                               "spec: {action: DENY, rules: [{from: [{source: {namespaces: [evil]}}]}]}\n"
                               "---\n"
                               "apiVersion: security.istio.io/v1\n"
                               "kind: AuthorizationPolicy\n"
                               "metadata: {name: orders-only, namespace: shop}\n"
                               "spec: {selector: {matchLabels: {app: orders}}, rules: [{}]}\n"
                               "---\n"
                               "apiVersion: security.istio.io/v1\n"
                               "kind: AuthorizationPolicy\n"
                               "metadata: {name: shop-wide, namespace: shop}\n"
                               "spec: {action: AUDIT, rules: [{to: [{operation: {ports: ['8080']}}]}]}\n"
                               "---\n"
                               "apiVersion: security.istio.io/v1beta1\n"
                               "kind: PeerAuthentication\n"
                               "metadata: {name: orders-permissive, namespace: shop}\n"
                               "spec: {selector: {matchLabels: {app: orders}}, mtls: {mode: PERMISSIVE}, "
                               "portLevelMtls: {'9090': {mode: DISABLE}}}\n";

/* Decodes the WorkloadPolicy a workload is pushed and returns its policy names, "ns/name,..." */
static void workload_policy_names(rm_xds_push_set_t *set, const rm_xds_workload_t *w, char *out, size_t len,
                                  rm_workload_policy_t *wp)
{
    const rm_xds_push_t *p = rm_xds_push_get(set, RM_XDS_WORKLOAD_POLICY, w);
    assert_non_null(p);
    Ringmesh__V1__DiscoveryResponse *r = ringmesh__v1__discovery_response__unpack(NULL, p->response_len, p->response);
    assert_non_null(r);
    assert_string_equal(r->type_url, rm_xds_type_url(RM_XDS_WORKLOAD_POLICY));
    assert_int_equal(r->n_resources, 1);
    rm_policy_set_t ps = {0};
    char err[256];
    assert_int_equal(
        rm_workload_policy_decode(r->resources[0]->value.data, r->resources[0]->value.len, &ps, wp, err, sizeof(err)),
        0);
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < ps.num_policies; i++)
        o +=
            (size_t)snprintf(out + o, len - o, "%s%s/%s", i ? "," : "", ps.policies[i].namespace_, ps.policies[i].name);
    rm_policy_set_clear(&ps);
    ringmesh__v1__discovery_response__free_unpacked(r, NULL);
}

static void test_workload_policy_per_workload(void **state)
{
    rm_mesh_model_t m;
    rm_model_service_t svcs[2];
    rm_xds_push_set_t *set;
    rm_policy_diags_t diags = {0};
    rm_label_t orders_labels[] = {{"app", "orders"}, {"version", "v1"}};
    rm_xds_workload_t orders = {{"shop", orders_labels, 2}, "shop\napp=orders\nversion=v1\n", NULL, NULL};
    rm_xds_workload_t cart = {{"shop", NULL, 0}, "shop\n", NULL, NULL};
    rm_xds_workload_t web = {{"web", NULL, 0}, "web\n", NULL, NULL};
    rm_workload_policy_t wp;
    char names[512];

    make_model(&m, svcs);
    assert_int_equal(rm_policy_load_yaml(&m.policies, POLICIES, strlen(POLICIES), "p.yaml", 1, &diags), 0);
    m.settings.default_action = RM_AUTHZ_ALLOW;
    m.settings.path_normalization = RM_PATH_NORMALIZATION_DECODE_AND_MERGE_SLASHES;
    m.settings.log_attributes = 1;
    assert_int_equal(rm_xds_push_set_build(&m, ROOT_A, 1, &set), 0);

    workload_policy_names(set, &orders, names, sizeof(names), &wp);
    assert_string_equal(names, "ringmesh-system/mesh-deny,shop/orders-only,shop/shop-wide");
    assert_int_equal(wp.opts.default_action, RM_AUTHZ_ALLOW);
    /* the decision log's evidence for a replay: the setting, and the workload the policies were selected for */
    assert_int_equal(wp.log_attributes, 1);
    assert_string_equal(wp.workload_namespace, "shop");
    assert_int_equal(wp.num_workload_labels, 2);
    assert_string_equal(wp.workload_labels[0], "app=orders");
    assert_string_equal(wp.workload_labels[1], "version=v1");
    assert_int_equal(wp.path_normalization, RM_PATH_NORMALIZATION_DECODE_AND_MERGE_SLASHES);
    assert_int_equal(wp.inbound_mode, RM_PEER_MTLS_PERMISSIVE);
    assert_int_equal(wp.num_port_modes, 1);
    assert_int_equal(wp.port_modes[0].port, 9090);
    assert_int_equal(wp.port_modes[0].mode, RM_PEER_MTLS_DISABLE);
    rm_workload_policy_clear(&wp);

    workload_policy_names(set, &cart, names, sizeof(names), &wp);
    assert_string_equal(names, "ringmesh-system/mesh-deny,shop/shop-wide"); /* no app=orders label */
    assert_int_equal(wp.inbound_mode, RM_PEER_MTLS_UNSET);
    assert_string_equal(wp.workload_namespace, "shop");
    assert_int_equal(wp.num_workload_labels, 0);
    rm_workload_policy_clear(&wp);
    workload_policy_names(set, &web, names, sizeof(names), &wp);
    assert_string_equal(names, "ringmesh-system/mesh-deny");
    rm_workload_policy_clear(&wp);

    /* one encoding per workload, shared by its nodes; different workloads differ in version */
    assert_ptr_equal(rm_xds_push_get(set, RM_XDS_WORKLOAD_POLICY, &orders),
                     rm_xds_push_get(set, RM_XDS_WORKLOAD_POLICY, &orders));
    assert_int_equal(set->num_workloads, 3);
    assert_string_not_equal(rm_xds_push_get(set, RM_XDS_WORKLOAD_POLICY, &orders)->version,
                            rm_xds_push_get(set, RM_XDS_WORKLOAD_POLICY, &web)->version);

    /* a stream subscribed to the type is pushed its workload's version */
    rm_xds_stream_state_t st;
    const rm_xds_push_t *push;
    int type;
    memset(&st, 0, sizeof(st));
    rm_xds_on_request(&st, rm_xds_type_url(RM_XDS_WORKLOAD_POLICY), "", "", 0, &type);
    assert_int_equal(rm_xds_next_push(&st, set, &web, &push), RM_XDS_WORKLOAD_POLICY);
    assert_ptr_equal(push, rm_xds_push_get(set, RM_XDS_WORKLOAD_POLICY, &web));
    rm_xds_mark_sent(&st, RM_XDS_WORKLOAD_POLICY, push);
    assert_int_equal(rm_xds_next_push(&st, set, &web, &push), -1);

    rm_xds_push_set_unref(set);
    rm_policy_set_clear(&m.policies);
    rm_policy_diags_clear(&diags);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_set_encodes_every_type),
        cmocka_unit_test(test_versions_follow_content),
        cmocka_unit_test(test_no_root_no_push),
        cmocka_unit_test(test_ack_nack_and_versions),
        cmocka_unit_test(test_type_urls),
        cmocka_unit_test(test_workload_policy_per_workload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
