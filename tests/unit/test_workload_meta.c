/* Workload metadata in the proxy (sidecar/workload_meta.h): a pushed WorkloadMap parsed into the address table
 * (IPv4, IPv6, IPv4-mapped, thousands of entries), the refusals that name what is wrong, this proxy's own workload
 * from the push with its gaps filled from the proxy's file and the environment the injector sets, the lookups
 * through a snapshot, and what /config_dump shows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/error.h"

#include "ringmesh/v1/discovery.pb-c.h"
#include "snapshot.h"
#include "unit_asserts.h"
#include "workload_meta.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static rm_sockaddr_t addr(const char *ip, unsigned port)
{
    rm_sockaddr_t a;
    memset(&a, 0, sizeof(a));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
        a.len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
        a.len = sizeof(*s4);
    }
    return a;
}

/* A serialized WorkloadMap: `self` (may be NULL) and `n` peers. */
static uint8_t *pack(Ringmesh__V1__WorkloadInfo *self, Ringmesh__V1__WorkloadInfo **peers, size_t n, size_t *len)
{
    Ringmesh__V1__WorkloadMap map = RINGMESH__V1__WORKLOAD_MAP__INIT;
    uint8_t *buf;
    map.self = self;
    map.peers = peers;
    map.n_peers = n;
    *len = ringmesh__v1__workload_map__get_packed_size(&map);
    assert_non_null(buf = malloc(*len + 1));
    ringmesh__v1__workload_map__pack(&map, buf);
    return buf;
}

static Ringmesh__V1__WorkloadInfo info(const char *ns, const char *name, char **addrs, size_t n)
{
    Ringmesh__V1__WorkloadInfo w = RINGMESH__V1__WORKLOAD_INFO__INIT;
    w.namespace_ = (char *)ns;
    w.name = (char *)name;
    w.app = (char *)name;
    w.version = "v1";
    w.principal = "spiffe://cluster.local/ns/shop/sa/x";
    w.addresses = addrs;
    w.n_addresses = n;
    return w;
}

static void test_table_lookups(void **state)
{
    (void)state;
    char *a_addrs[] = {"198.18.0.5", "2001:2::5"}, *b_addrs[] = {"198.18.0.6"};
    Ringmesh__V1__WorkloadInfo self = info("shop", "orders", NULL, 0), a = info("shop", "cart", a_addrs, 2),
                               b = info("web", "front", b_addrs, 1), *peers[] = {&a, &b};
    self.access_log = RINGMESH__V1__ACCESS_LOG_OVERRIDE__ACCESS_LOG_ON;
    size_t len;
    uint8_t *buf = pack(&self, peers, 2, &len);
    rm_workload_table_t *t;
    char err[256];

    assert_int_equal(rm_workload_table_parse(buf, len, &t, err, sizeof(err)), 0);
    free(buf);
    assert_string_equal(rm_workload_table_self(t)->name, "orders");
    assert_int_equal(rm_workload_table_access_log(t), RM_WORKLOAD_ACCESS_LOG_ON);
    assert_int_equal(rm_workload_table_num_peers(t), 2);
    assert_int_equal(rm_workload_table_num_addresses(t), 3);

    rm_sockaddr_t q = addr("198.18.0.5", 8080);
    const rm_workload_meta_t *m = rm_workload_table_find(t, &q);
    assert_non_null(m);
    assert_string_equal(m->name, "cart");
    assert_string_equal(m->namespace, "shop");
    assert_string_equal(m->version, "v1");
    q = addr("198.18.0.5", 1); /* the port is ignored */
    assert_ptr_equal(rm_workload_table_find(t, &q), m);
    q = addr("2001:2:0:0::5", 443);
    assert_ptr_equal(rm_workload_table_find(t, &q), m);
    q = addr("::ffff:198.18.0.6", 80); /* a dual-stack socket's view of an IPv4 peer */
    assert_non_null(m = rm_workload_table_find(t, &q));
    assert_string_equal(m->name, "front");
    q = addr("198.18.0.9", 80);
    assert_null(rm_workload_table_find(t, &q));
    q = addr("2001:2::6", 80);
    assert_null(rm_workload_table_find(t, &q));
    rm_sockaddr_t unix_addr = {.len = sizeof(sa_family_t)};
    unix_addr.ss.ss_family = AF_UNIX;
    assert_null(rm_workload_table_find(t, &unix_addr));
    assert_null(rm_workload_table_find(NULL, &q));
    rm_workload_table_unref(t);
}

/* Thousands of pods: every one found, none found that is not there (the table probes past collisions). */
static void test_table_many(void **state)
{
    (void)state;
    enum { N = 4000 };
    Ringmesh__V1__WorkloadInfo *infos = calloc(N, sizeof(*infos)), **peers = calloc(N, sizeof(*peers));
    char(*ips)[48] = calloc(N, 48), (*names)[16] = calloc(N, 16), **addrs = calloc(N, sizeof(*addrs));
    size_t len;
    rm_workload_table_t *t;
    char err[256];

    for (int i = 0; i < N; i++) {
        if (i % 2)
            snprintf(ips[i], 48, "198.%d.%d.%d", 18 + (i >> 16), (i >> 8) & 255, i & 255);
        else
            snprintf(ips[i], 48, "2001:2::%x", i);
        snprintf(names[i], 16, "w%d", i);
        addrs[i] = ips[i];
        infos[i] = info("ns", names[i], &addrs[i], 1);
        peers[i] = &infos[i];
    }
    uint8_t *buf = pack(NULL, peers, N, &len);
    assert_int_equal(rm_workload_table_parse(buf, len, &t, err, sizeof(err)), 0);
    for (int i = 0; i < N; i++) {
        rm_sockaddr_t q = addr(ips[i], 9);
        const rm_workload_meta_t *m = rm_workload_table_find(t, &q);
        if (m == NULL || strcmp(m->name, names[i]) != 0)
            fail_msg("%s: found %s, want %s", ips[i], m != NULL ? m->name : "nothing", names[i]);
    }
    rm_sockaddr_t q = addr("198.19.255.254", 9);
    assert_null(rm_workload_table_find(t, &q));
    rm_workload_table_unref(t);
    free(buf);
    free(infos);
    free(peers);
    free(ips);
    free(names);
    free(addrs);
}

/* A principal names a workload when every pod running as it belongs to that workload; else it names none. */
static void test_table_principals(void **state)
{
    (void)state;
    char *a1[] = {"198.18.0.5"}, *a2[] = {"198.18.0.6"}, *b1[] = {"198.18.0.7"}, *c1[] = {"198.18.0.8"};
    Ringmesh__V1__WorkloadInfo a = info("shop", "orders", a1, 1), a_replica = info("shop", "orders", a2, 1),
                               b = info("shop", "cart", b1, 1), c = info("web", "front", c1, 1),
                               *peers[] = {&a, &a_replica, &b, &c};
    a.principal = a_replica.principal = "spiffe://cluster.local/ns/shop/sa/orders";
    b.principal = "spiffe://cluster.local/ns/shop/sa/default";
    c.principal = "spiffe://cluster.local/ns/shop/sa/default"; /* two workloads, one account */
    size_t len;
    uint8_t *buf = pack(NULL, peers, 4, &len);
    rm_workload_table_t *t;
    char err[256];
    assert_int_equal(rm_workload_table_parse(buf, len, &t, err, sizeof(err)), 0);
    free(buf);
    const rm_workload_meta_t *m = rm_workload_table_find_principal(t, "spiffe://cluster.local/ns/shop/sa/orders");
    assert_non_null(m);
    assert_string_equal(m->name, "orders");
    assert_null(rm_workload_table_find_principal(t, "spiffe://cluster.local/ns/shop/sa/default"));
    assert_null(rm_workload_table_find_principal(t, "spiffe://cluster.local/ns/shop/sa/nobody"));
    assert_null(rm_workload_table_find_principal(t, NULL));
    rm_snapshot_t snap = {.workloads = t};
    assert_ptr_equal(rm_workload_peer_by_principal(&snap, "spiffe://cluster.local/ns/shop/sa/orders"), m);
    rm_workload_table_unref(t);
}

static void parse_fails(Ringmesh__V1__WorkloadInfo *self, Ringmesh__V1__WorkloadInfo **peers, size_t n,
                        const char *want)
{
    size_t len;
    uint8_t *buf = pack(self, peers, n, &len);
    rm_workload_table_t *t = (rm_workload_table_t *)&t;
    char err[512];
    assert_int_equal(rm_workload_table_parse(buf, len, &t, err, sizeof(err)), -EINVAL);
    assert_ptr_equal(t, (rm_workload_table_t *)&t); /* untouched */
    assert_contains(err, want);
    free(buf);
}

static void test_table_refusals(void **state)
{
    (void)state;
    char *bad[] = {"198.18.0.5:80"}, *one[] = {"198.18.0.5"}, *mapped[] = {"::ffff:198.18.0.5"};
    Ringmesh__V1__WorkloadInfo a = info("shop", "cart", bad, 1), b = info("shop", "cart", one, 1),
                               c = info("web", "front", mapped, 1), self = info("shop", "orders", NULL, 0);
    Ringmesh__V1__WorkloadInfo *p1[] = {&a}, *p2[] = {&b, &c};
    parse_fails(NULL, p1, 1, "workload shop/cart: address \"198.18.0.5:80\" is not an IP address");
    parse_fails(NULL, p2, 2, "address ::ffff:198.18.0.5 is both workload shop/cart's and web/front's");
    self.access_log = (Ringmesh__V1__AccessLogOverride)7;
    parse_fails(&self, NULL, 0, "unknown access log setting 7");

    rm_workload_table_t *t;
    char err[256];
    static const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff};
    assert_int_equal(rm_workload_table_parse(garbage, sizeof(garbage), &t, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "WorkloadMap does not decode");
}

static void test_self_from_environment(void **state)
{
    (void)state;
    char labels_path[] = "/tmp/rm-test-labels-XXXXXX";
    int fd = mkstemp(labels_path);
    static const char labels[] = "app=\"orders\"\npod-template-hash=\"7d9f8c\"\nversion=\"v2\"\n";
    assert_true(fd >= 0);
    assert_int_equal(write(fd, labels, sizeof(labels) - 1), (ssize_t)(sizeof(labels) - 1));
    close(fd);

    rm_control_config_t cc = {
        .node_namespace = "shop", .node_service_account = "orders", .node_labels_file = labels_path};
    rm_proxy_config_t cfg = {.trust_domain = "cluster.local", .control = &cc};
    setenv("RINGMESH_POD_NAME", "orders-7d9f8c-x2x4q", 1);
    assert_int_equal(rm_workload_meta_init(&cfg), 0);
    const rm_workload_meta_t *me = rm_workload_self(NULL);
    assert_string_equal(me->name, "orders"); /* a Deployment's pod, as the control plane names it */
    assert_string_equal(me->namespace, "shop");
    assert_string_equal(me->app, "orders");
    assert_string_equal(me->version, "v2");
    assert_string_equal(me->principal, "spiffe://cluster.local/ns/shop/sa/orders");

    /* a push that only says the namespace and principal: the rest from the environment */
    Ringmesh__V1__WorkloadInfo self = RINGMESH__V1__WORKLOAD_INFO__INIT;
    self.namespace_ = "shop";
    self.principal = "spiffe://cluster.local/ns/shop/sa/orders";
    size_t len;
    uint8_t *buf = pack(&self, NULL, 0, &len);
    rm_workload_table_t *t;
    char err[256];
    assert_int_equal(rm_workload_table_parse(buf, len, &t, err, sizeof(err)), 0);
    free(buf);
    rm_snapshot_t snap = {.workloads = t};
    assert_string_equal(rm_workload_self(&snap)->name, "orders");
    assert_string_equal(rm_workload_self(&snap)->version, "v2");
    assert_int_equal(rm_workload_table_access_log(t), RM_WORKLOAD_ACCESS_LOG_MESH);
    rm_sockaddr_t q = addr("198.18.0.5", 80);
    assert_null(rm_workload_peer(&snap, &q));
    assert_null(rm_workload_peer(NULL, &q));

    /* /config_dump: valid JSON saying who this proxy is */
    char out[4096];
    size_t o = rm_workload_config_dump(&snap, out, sizeof(out), 0);
    assert_true(o < sizeof(out));
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (j == NULL)
        fail_msg("%s: %s", out, je.text);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "self"), "name")), "orders");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "self"), "access_log")), "mesh");
    assert_int_equal(json_integer_value(json_object_get(j, "peers_total")), 0);
    json_decref(j);
    rm_workload_table_unref(t);

    /* without a pod-template-hash the pod is its own workload; without labels, app is the name and version
     * "latest"; the proxy file's workload section says it for a bare host */
    unlink(labels_path);
    assert_int_equal(rm_workload_meta_init(&cfg), 0);
    assert_string_equal(rm_workload_self(NULL)->name, "orders-7d9f8c-x2x4q");
    assert_string_equal(rm_workload_self(NULL)->app, "orders-7d9f8c-x2x4q");
    assert_string_equal(rm_workload_self(NULL)->version, "latest");
    cfg.workload_name = "billing";
    cfg.workload_app = "billing-app";
    cfg.workload_principal = "spiffe://example.org/vm/billing";
    assert_int_equal(rm_workload_meta_init(&cfg), 0);
    assert_string_equal(rm_workload_self(NULL)->name, "billing");
    assert_string_equal(rm_workload_self(NULL)->app, "billing-app");
    assert_string_equal(rm_workload_self(NULL)->principal, "spiffe://example.org/vm/billing");

    /* nothing known: "unknown", as Istio's labels say it */
    unsetenv("RINGMESH_POD_NAME");
    rm_proxy_config_t bare = {.trust_domain = "cluster.local"};
    assert_int_equal(rm_workload_meta_init(&bare), 0);
    assert_string_equal(rm_workload_self(NULL)->name, "unknown");
    assert_string_equal(rm_workload_self(NULL)->principal, "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_lookups),         cmocka_unit_test(test_table_many),
        cmocka_unit_test(test_table_principals),      cmocka_unit_test(test_table_refusals),
        cmocka_unit_test(test_self_from_environment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
