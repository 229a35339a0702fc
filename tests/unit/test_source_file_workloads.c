/* Workload documents of the file source (docs/control-config.md, "Workload"): a bare host's proxy is told who it is
 * and who its peers are by address. Defaults (workload = name, app = workload, version latest, service account
 * default), canonical addresses, the access-log switch; refusals with file, line and field (an address that is not
 * one, listed twice, or another workload's; the same name twice; a bad label value); the model's version covers
 * them, and a directory without any keeps its version; the node named by metadata.name is pushed its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/error.h"

#include "discovery_state.h"
#include "ringmesh/v1/discovery.pb-c.h"
#include "source.h"
#include "source_fixtures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEAD "apiVersion: ringmesh.io/v1alpha1\nkind: Workload\n"

static const char *dir_with(const char *name, const char *text, char *buf, size_t len)
{
    char path[512];
    tmp_dir(name, buf, len);
    snprintf(path, sizeof(path), "%s/w.yaml", buf);
    write_file(path, text);
    return buf;
}

static void test_workloads_loaded(void **state)
{
    (void)state;
    char dir[256], empty_dir[256];
    rm_mesh_model_t *m =
        load_ok(dir_with("ok",
                         HEAD "metadata: {name: vm-1, namespace: billing}\n"
                              "spec:\n  addresses: [198.18.0.9, \"2001:2:0::9\"]\n"
                              "  serviceAccount: billing\n  workload: billing\n  version: v3\n"
                              "  accessLog: true\n"
                              "---\n" HEAD "metadata: {name: vm-2}\nspec: {addresses: [198.18.0.10]}\n",
                         dir, sizeof(dir)));
    rm_mesh_model_t *empty = load_ok(tmp_dir("empty", empty_dir, sizeof(empty_dir)));

    assert_int_equal(m->num_workloads, 2);
    const rm_model_workload_t *a = &m->workloads[0], *b = &m->workloads[1]; /* billing/vm-1, default/vm-2 */
    assert_string_equal(a->namespace_, "billing");
    assert_string_equal(a->pod, "vm-1");
    assert_string_equal(a->name, "billing");
    assert_string_equal(a->app, "billing");
    assert_string_equal(a->version, "v3");
    assert_string_equal(a->service_account, "billing");
    assert_int_equal(a->access_log, RM_MODEL_ACCESS_LOG_ON);
    assert_int_equal(a->num_addresses, 2);
    assert_string_equal(a->addresses[1], "2001:2::9");
    assert_string_equal(b->namespace_, "default");
    assert_string_equal(b->name, "vm-2");
    assert_string_equal(b->app, "vm-2");
    assert_string_equal(b->version, "latest");
    assert_string_equal(b->service_account, "default");
    assert_int_equal(b->access_log, RM_MODEL_ACCESS_LOG_MESH);
    assert_string_not_equal(m->version, empty->version);

    /* the node vm-1 of namespace billing is told it is workload billing; peers by address */
    rm_xds_push_set_t *set;
    rm_xds_workload_t node = {
        .workload = {.namespace_ = "billing"}, .key = "billing\n", .node = "vm-1", .service_account = "billing"};
    assert_int_equal(
        rm_xds_push_set_build(m, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 1, &set), 0);
    const rm_xds_push_t *p = rm_xds_push_get(set, RM_XDS_WORKLOADS, &node);
    assert_non_null(p);
    Ringmesh__V1__DiscoveryResponse *r = ringmesh__v1__discovery_response__unpack(NULL, p->response_len, p->response);
    Ringmesh__V1__WorkloadMap *map =
        ringmesh__v1__workload_map__unpack(NULL, r->resources[0]->value.len, r->resources[0]->value.data);
    assert_string_equal(map->self->name, "billing");
    assert_int_equal(map->self->access_log, RINGMESH__V1__ACCESS_LOG_OVERRIDE__ACCESS_LOG_ON);
    assert_int_equal(map->n_peers, 2);
    assert_string_equal(map->peers[1]->addresses[0], "198.18.0.10");
    ringmesh__v1__workload_map__free_unpacked(map, NULL);
    ringmesh__v1__discovery_response__free_unpacked(r, NULL);
    rm_xds_push_set_unref(set);
    rm_mesh_model_unref(m);
    rm_mesh_model_unref(empty);
}

static void expect_refused(const char *name, const char *text, const char *want)
{
    char dir[256], err[2048];
    load_fail(dir_with(name, text, dir, sizeof(dir)), RM_ERR_CONFIG_VALUE, err, sizeof(err));
    assert_contains(err, want);
}

static void test_workloads_refused(void **state)
{
    (void)state;
    expect_refused("no-addr", HEAD "metadata: {name: vm-1}\nspec: {serviceAccount: x}\n",
                   "w.yaml:4:7: spec.addresses: is required (a Workload needs spec.addresses: its IP addresses)");
    expect_refused("bad-addr", HEAD "metadata: {name: vm-1}\nspec: {addresses: [198.18.0.9, \"198.18.0.9:80\"]}\n",
                   "w.yaml:4:32: spec.addresses[1]: \"198.18.0.9:80\" is not an IP address");
    expect_refused("twice", HEAD "metadata: {name: vm-1}\nspec: {addresses: [198.18.0.9, \"::ffff:198.18.0.9\"]}\n",
                   "spec.addresses[1]: 198.18.0.9 is listed twice");
    expect_refused("shared",
                   HEAD "metadata: {name: vm-1}\nspec: {addresses: [198.18.0.9]}\n---\n" HEAD
                        "metadata: {name: vm-2}\nspec: {addresses: [198.18.0.9]}\n",
                   "spec.addresses[0]: 198.18.0.9 is also an address of workload default/vm-1");
    expect_refused("same-name",
                   HEAD "metadata: {name: vm-1}\nspec: {addresses: [198.18.0.9]}\n---\n" HEAD
                        "metadata: {name: vm-1}\nspec: {addresses: [198.18.0.10]}\n",
                   "metadata.name: workload default/vm-1 is also defined in");
    expect_refused("label", HEAD "metadata: {name: vm-1}\nspec: {addresses: [198.18.0.9], version: \"v 1\"}\n",
                   "spec.version: \"v 1\" is not a label value");
    expect_refused("log", HEAD "metadata: {name: vm-1}\nspec: {addresses: [198.18.0.9], accessLog: on}\n",
                   "spec.accessLog: \"on\" is not a boolean");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workloads_loaded),
        cmocka_unit_test(test_workloads_refused),
    };
    return cmocka_run_group_tests_name("source_file_workloads", tests, group_setup, group_teardown);
}
