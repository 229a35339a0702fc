/* The control plane's file source watching its directory (control/source_file.c): a ConfigMap volume's layout, the
 * changes it reloads (and the broken ones it logs and skips), a ConfigMap's atomic swap, and catching up with what
 * changed before it started. The tests work on copies of tests/data/source/ in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mesh_model_internal.h"
#include "source.h"
#include "source_fixtures.h"

#include "ringmesh/digest.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- ConfigMap volumes ---------------------------------------------------------------------------------------- */

/* Builds the layout kubelet writes: <dir>/<ts>/files, <dir>/..data -> <ts>, <dir>/<file> -> ..data/<file>. */
static void configmap_version(const char *dir, const char *ts, const char *src)
{
    char path[512], target[512];
    DIR *d;
    struct dirent *e;

    snprintf(path, sizeof(path), "%s/%s", dir, ts);
    copy_dir(src, path, "");
    d = opendir(path);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        snprintf(target, sizeof(target), "..data/%s", e->d_name);
        /* as kubelet does, a key's symlink is made once and left alone when the ConfigMap is updated, so an
         * update is seen only through the "..data" swap */
        if (symlink(target, path) != 0)
            assert_int_equal(errno, EEXIST);
    }
    closedir(d);
    snprintf(path, sizeof(path), "%s/..data_tmp", dir);
    assert_int_equal(symlink(ts, path), 0);
    snprintf(target, sizeof(target), "%s/..data", dir);
    assert_int_equal(rename(path, target), 0);
}

static void test_configmap_layout(void **state)
{
    char dir[128], path[192];

    tmp_dir("configmap-load", dir, sizeof(dir));
    configmap_version(dir, "..2024_01_01_00_00_00.1", DATA_DIR "valid");
    /* the files are read from where "..data" points: a stray file next to the symlinks is not part of the
     * ConfigMap */
    snprintf(path, sizeof(path), "%s/stray.yaml", dir);
    write_file(path, "kind: Nonsense\n");
    rm_mesh_model_t *a = load_ok(DATA_DIR "valid"), *b = load_ok(dir);
    assert_string_equal(b->version, a->version);
    /* messages name the file as it appears in the directory */
    snprintf(path, sizeof(path), "%s/shop.yaml", dir);
    assert_string_equal(find_service(b, "shop", "orders")->file, path);
    rm_mesh_model_unref(a);
    rm_mesh_model_unref(b);
}

/* ---- the watcher -------------------------------------------------------------------------------------------- */

static const char SVC_A[] = "apiVersion: ringmesh.io/v1alpha1\n"
                            "kind: Service\n"
                            "metadata: {name: orders, namespace: shop}\n"
                            "spec:\n"
                            "  addresses: [198.18.100.1]\n"
                            "  ports: [8080]\n"
                            "  serviceAccounts: [orders]\n";

static const char SVC_B[] = "apiVersion: ringmesh.io/v1alpha1\n"
                            "kind: Service\n"
                            "metadata: {name: orders, namespace: shop}\n"
                            "spec:\n"
                            "  addresses: [198.18.100.1]\n"
                            "  ports: [8080, 8443]\n"
                            "  serviceAccounts: [orders]\n";

/* SVC_B with a bad port on line 6 */
static const char SVC_BAD[] = "apiVersion: ringmesh.io/v1alpha1\n"
                              "kind: Service\n"
                              "metadata: {name: orders, namespace: shop}\n"
                              "spec:\n"
                              "  addresses: [198.18.100.1]\n"
                              "  ports: [8080, 0]\n"
                              "  serviceAccounts: [orders]\n";

/* SVC_B written differently: the same content */
static const char SVC_B_REFORMATTED[] =
    "# the same service\n"
    "apiVersion: ringmesh.io/v1alpha1\n"
    "kind: Service\n"
    "metadata:\n"
    "  namespace: shop\n"
    "  name: orders\n"
    "spec: {ports: [8443, 8080], serviceAccounts: [orders], addresses: [198.18.100.1]}\n";

static rm_source_t *create_source(const char *dir, rm_mesh_model_t **initial)
{
    rm_source_t *src = NULL;
    char err[1024] = "unset";
    int ret = rm_source_file_create(dir, &src, initial, err, sizeof(err));
    if (ret != 0)
        fail_msg("rm_source_file_create(%s): %d: %s", dir, ret, err);
    assert_non_null(src);
    assert_string_equal(src->ops->name, "file");
    return src;
}

static void start_source(rm_source_t *src, collector_t *c)
{
    int ret = src->ops->start(src, on_update, c);
    if (ret == -ENOSYS)
        skip(); /* no inotify on this kernel */
    assert_int_equal(ret, 0);
}

static void test_create_refuses_invalid(void **state)
{
    rm_source_t *sentinel = (rm_source_t *)(uintptr_t)0x1, *src = sentinel;
    rm_mesh_model_t *msentinel = (rm_mesh_model_t *)(uintptr_t)0x1, *m = msentinel;
    char err[1024];

    assert_int_equal(rm_source_file_create(DATA_DIR "err-port-zero", &src, &m, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_ptr_equal(src, sentinel);
    assert_ptr_equal(m, msentinel);
    assert_contains(err, "err-port-zero/svc.yaml:8:17: spec.ports[1]: ");
}

static void test_watch_changes(void **state)
{
    char dir[128], line[RM_LOG_LINE_MAX], want[256];
    rm_mesh_model_t *initial = NULL, *m;
    collector_t c;

    collector_init(&c);
    log_drain();
    tmp_dir("watch", dir, sizeof(dir));
    snprintf(want, sizeof(want), "%s/orders.yaml", dir);
    write_file(want, SVC_A);
    rm_source_t *src = create_source(dir, &initial);
    wait_log_event("config_accepted", line, sizeof(line));
    assert_contains(line, "\"services\":1,\"files\":1");
    assert_int_equal(initial->services[0].num_addresses, 1);
    start_source(src, &c);
    wait_log_event("config_unchanged", line, sizeof(line)); /* the read at start finds what create() read */

    /* a valid change: the callback gets the new model */
    replace_file(dir, "orders.yaml", SVC_B);
    m = wait_update(&c, 1);
    assert_int_equal(m->services[0].num_addresses, 2);
    assert_string_equal(m->services[0].addresses[1], "198.18.100.1:8443");
    assert_string_not_equal(m->version, initial->version);
    wait_log_event("config_accepted", line, sizeof(line));
    snprintf(want, sizeof(want), "\"version\":\"%s\",\"services\":1,\"files\":1", m->version);
    assert_contains(line, want);

    /* an invalid change (written in place): rejected and logged with file, line, field and reason; no callback */
    snprintf(want, sizeof(want), "%s/orders.yaml", dir);
    write_file(want, SVC_BAD);
    wait_log_event("config_rejected", line, sizeof(line));
    assert_contains(line, "\"level\":\"warn\"");
    snprintf(want, sizeof(want), "\"file\":\"%s/orders.yaml\",\"line\":6,\"column\":17,\"field\":\"spec.ports[1]\"",
             dir);
    assert_contains(line, want);
    assert_contains(line, "\"reason\":\"\\\"0\\\" is not a port (want a whole number in 1..65535)\"");
    snprintf(want, sizeof(want), "\"version_in_force\":\"%s\"", m->version);
    assert_contains(line, want);
    assert_int_equal(collector_count(&c), 1);

    /* restored to the content in force, written differently: the last good version was kept, so nothing changed */
    replace_file(dir, "orders.yaml", SVC_B_REFORMATTED);
    wait_log_event("config_unchanged", line, sizeof(line));
    snprintf(want, sizeof(want), "\"version\":\"%s\"", m->version);
    assert_contains(line, want);
    assert_int_equal(collector_count(&c), 1);

    /* a new file is read too */
    snprintf(want, sizeof(want), "%s/cart.yaml", dir);
    write_file(want, "apiVersion: ringmesh.io/v1alpha1\nkind: Service\nmetadata: {name: cart, namespace: shop}\n"
                     "spec: {addresses: [198.18.100.2], ports: [80], serviceAccounts: [cart]}\n");
    m = wait_update(&c, 2);
    assert_int_equal(m->num_services, 2);
    assert_string_equal(m->services[0].name, "cart");

    /* a removed file too */
    assert_int_equal(unlink(want), 0);
    m = wait_update(&c, 3);
    assert_int_equal(m->num_services, 1);
    assert_string_equal(m->version, c.models[0]->version);

    src->ops->stop(src);
    src->ops->stop(src); /* twice is fine */
    src->ops->destroy(src);
    rm_mesh_model_unref(initial);
    collector_dispose(&c);
}

/* A ConfigMap update: a new timestamped directory, then an atomic swap of the "..data" symlink. */
static void test_watch_configmap_swap(void **state)
{
    char dir[128], src_dir[128], path[256], line[RM_LOG_LINE_MAX];
    rm_mesh_model_t *initial = NULL, *m;
    collector_t c;

    collector_init(&c);
    log_drain();
    tmp_dir("configmap-v1", src_dir, sizeof(src_dir));
    snprintf(path, sizeof(path), "%s/orders.yaml", src_dir);
    write_file(path, SVC_A);
    tmp_dir("configmap", dir, sizeof(dir));
    configmap_version(dir, "..2024_01_01_00_00_00.1", src_dir);
    rm_source_t *src = create_source(dir, &initial);
    assert_int_equal(initial->services[0].num_addresses, 1);
    start_source(src, &c);
    /* the read at start is over before the swap, so only the swap's events can bring the update */
    wait_log_event("config_unchanged", line, sizeof(line));

    tmp_dir("configmap-v2", src_dir, sizeof(src_dir));
    snprintf(path, sizeof(path), "%s/orders.yaml", src_dir);
    write_file(path, SVC_B);
    configmap_version(dir, "..2024_01_01_00_01_00.2", src_dir);
    snprintf(path, sizeof(path), "%s/..2024_01_01_00_00_00.1", dir);
    remove_tree(path);

    m = wait_update(&c, 1);
    assert_int_equal(m->services[0].num_addresses, 2);
    snprintf(path, sizeof(path), "%s/orders.yaml", dir);
    assert_string_equal(m->services[0].file, path);

    src->ops->destroy(src); /* stops first */
    rm_mesh_model_unref(initial);
    collector_dispose(&c);
}

/* start() reads the directory at once: a change made before it (or while stopped) is not missed. */
static void test_watch_catches_up_at_start(void **state)
{
    char dir[128], path[192];
    rm_mesh_model_t *initial = NULL, *m;
    collector_t c;

    collector_init(&c);
    tmp_dir("catch-up", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/orders.yaml", dir);
    write_file(path, SVC_A);
    rm_source_t *src = create_source(dir, &initial);
    write_file(path, SVC_B);
    start_source(src, &c);
    m = wait_update(&c, 1);
    assert_int_equal(m->services[0].num_addresses, 2);
    assert_int_equal(src->ops->start(src, on_update, &c), -EBUSY);

    src->ops->stop(src);
    write_file(path, SVC_A);
    start_source(src, &c);
    m = wait_update(&c, 2);
    assert_int_equal(m->services[0].num_addresses, 1);
    assert_string_equal(m->version, initial->version);

    src->ops->destroy(src);
    rm_mesh_model_unref(initial);
    collector_dispose(&c);
}

int main(void)
{
    struct CMUnitTest tests[64];
    size_t n = 0;

    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_configmap_layout);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_create_refuses_invalid);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_watch_changes);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_watch_configmap_swap);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_watch_catches_up_at_start);
    return _cmocka_run_group_tests("source_file_watch", tests, n, group_setup, group_teardown);
}
