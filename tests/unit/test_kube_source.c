/* Unit tests for the parts of the Kubernetes source that need no API server: the watch stream's line splitting
 * (control/kube_client.c), the kubeconfig reader (control/kubeconfig.c), the backoff's bounds and object keys
 * (control/kube_informer.c), and Kubernetes objects -> the mesh model (control/kube_model.c), checked against the
 * model the file source's loader builds from the same content written as YAML.
 *
 * Data: tests/data/kube/cluster.json (Pods, Services, EndpointSlices and policy resources as the API returns them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kube_client.h"
#include "kube_informer.h"
#include "kube_model.h"
#include "mesh_load.h"
#include "workload_derive.h"

#include "ringmesh/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DATA RM_TEST_DATA_DIR "/kube/"

static void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("\"%s\"\n  does not contain \"%s\"", haystack, needle);
}

/* ---- lines of a watch stream -------------------------------------------------------------------------------- */

typedef struct st_lines_seen_t {
    char lines[16][64];
    size_t n;
    int fail_at; /* return an error for this line (1-based; 0: never) */
} lines_seen_t;

static int on_line(void *arg, const char *line, size_t len)
{
    lines_seen_t *s = arg;
    assert_int_equal(strlen(line), len); /* NUL-terminated at len */
    assert_true(s->n < 16);
    snprintf(s->lines[s->n], sizeof(s->lines[0]), "%s", line);
    s->n++;
    return s->fail_at != 0 && (size_t)s->fail_at == s->n ? -1234 : 0;
}

static const char STREAM[] =
    "{\"type\":\"ADDED\"}\n{\"type\":\"MODIFIED\",\"object\":{}}\r\n\n{\"type\":\"BOOKMARK\"}\n{\"part";

static void check_stream_lines(const lines_seen_t *s)
{
    assert_int_equal(s->n, 3);
    assert_string_equal(s->lines[0], "{\"type\":\"ADDED\"}");
    assert_string_equal(s->lines[1], "{\"type\":\"MODIFIED\",\"object\":{}}"); /* the '\r' dropped */
    assert_string_equal(s->lines[2], "{\"type\":\"BOOKMARK\"}");               /* the empty line skipped */
}

static void test_lines_whole_and_in_pieces(void **state)
{
    (void)state;
    size_t len = sizeof(STREAM) - 1;
    /* every chunk size, so that every line is split at every place by some run */
    for (size_t chunk = 1; chunk <= len; chunk++) {
        lines_seen_t seen = {0};
        rm__kube_lines_t l = {.max = 1024, .on_line = on_line, .arg = &seen};
        for (size_t off = 0; off < len; off += chunk)
            assert_int_equal(rm__kube_lines_feed(&l, STREAM + off, off + chunk <= len ? chunk : len - off), 0);
        check_stream_lines(&seen);
        assert_int_equal(l.len, strlen("{\"part")); /* the partial line waits for its end */
        rm__kube_lines_free(&l);
    }
}

static void test_lines_limits(void **state)
{
    (void)state;
    lines_seen_t seen = {0};
    rm__kube_lines_t l = {.max = 8, .on_line = on_line, .arg = &seen};
    assert_int_equal(rm__kube_lines_feed(&l, "12345678\n", 9), 0); /* exactly max: fine */
    assert_int_equal(rm__kube_lines_feed(&l, "1234", 4), 0);
    assert_int_equal(rm__kube_lines_feed(&l, "56789", 5), -E2BIG); /* the ninth byte of a line */
    rm__kube_lines_free(&l);

    lines_seen_t stop = {.fail_at = 2};
    rm__kube_lines_t l2 = {.max = 64, .on_line = on_line, .arg = &stop};
    assert_int_equal(rm__kube_lines_feed(&l2, "a\nb\nc\n", 6), -1234); /* the callback's result ends the feed */
    assert_int_equal(stop.n, 2);
    rm__kube_lines_free(&l2);
}

/* ---- kubeconfig --------------------------------------------------------------------------------------------- */

static const char KUBECONFIG[] = "apiVersion: v1\n"
                                 "kind: Config\n"
                                 "preferences: {}\n"
                                 "clusters:\n"
                                 "- name: other\n"
                                 "  cluster: {server: \"https://10.0.0.1:6443\", certificate-authority: /x/ca.pem}\n"
                                 "- name: standin\n"
                                 "  cluster:\n"
                                 "    server: https://127.0.0.1:6443/\n"
                                 "    certificate-authority-data: LS0tLS1CRUdJTiBDRVJU\n"
                                 "users:\n"
                                 "- name: admin\n"
                                 "  user: {tokenFile: secrets/token}\n"
                                 "- name: cert\n"
                                 "  user: {client-certificate: /k/c.pem, client-key-data: a2V5}\n"
                                 "contexts:\n"
                                 "- name: a\n"
                                 "  context: {cluster: standin, user: admin, namespace: shop}\n"
                                 "- name: b\n"
                                 "  context: {cluster: other, user: cert}\n"
                                 "current-context: a\n";

static void test_kubeconfig_current_context(void **state)
{
    (void)state;
    rm_kube_config_t cfg;
    rm_config_error_t e;
    assert_int_equal(rm_kube_config_load_kubeconfig("/etc/kube/config", KUBECONFIG, strlen(KUBECONFIG), &cfg, &e), 0);
    assert_string_equal(cfg.server, "https://127.0.0.1:6443/");
    assert_string_equal(cfg.ca_data, "-----BEGIN CERT");
    assert_null(cfg.ca_file);
    assert_string_equal(cfg.token_file, "/etc/kube/secrets/token"); /* relative to the kubeconfig's directory */
    assert_null(cfg.token);
    assert_string_equal(cfg.namespace_, "shop");
    assert_string_equal(cfg.origin, "/etc/kube/config");
    rm_kube_config_clear(&cfg);

    /* the other context: a client certificate from a file and its key inline */
    char *other = strdup(KUBECONFIG);
    memcpy(strstr(other, "current-context: a") + strlen("current-context: "), "b", 1);
    assert_int_equal(rm_kube_config_load_kubeconfig("/etc/kube/config", other, strlen(other), &cfg, &e), 0);
    assert_string_equal(cfg.server, "https://10.0.0.1:6443");
    assert_string_equal(cfg.ca_file, "/x/ca.pem");
    assert_string_equal(cfg.cert_file, "/k/c.pem");
    assert_string_equal(cfg.key_data, "key");
    rm_kube_config_clear(&cfg);
    free(other);
}

/* Replaces the first `from` of KUBECONFIG by `to` and loads it; it must fail with a message holding `want`. */
static void kubeconfig_refused(const char *from, const char *to, const char *want)
{
    char text[4096], msg[2048];
    const char *at = strstr(KUBECONFIG, from);
    rm_kube_config_t cfg;
    rm_config_error_t e;
    assert_non_null(at);
    snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - KUBECONFIG), KUBECONFIG, to, at + strlen(from));
    assert_int_not_equal(rm_kube_config_load_kubeconfig("kc.yaml", text, strlen(text), &cfg, &e), 0);
    rm_config_error_format(&e, msg, sizeof(msg));
    assert_contains(msg, want);
    assert_null(cfg.server); /* nothing is left behind */
}

static void test_kubeconfig_refusals(void **state)
{
    (void)state;
    kubeconfig_refused("https://127.0.0.1:6443/", "http://127.0.0.1:8080",
                       "kc.yaml:9:13: clusters[1].cluster.server: \"http://127.0.0.1:8080\" is not an https:// URL");
    kubeconfig_refused("    certificate-authority-data: LS0tLS1CRUdJTiBDRVJU\n", "    insecure-skip-tls-verify: true\n",
                       "clusters[1].cluster.insecure-skip-tls-verify: refused: the API server's certificate is "
                       "always verified");
    kubeconfig_refused("    certificate-authority-data: LS0tLS1CRUdJTiBDRVJU\n", "",
                       "clusters[1].cluster: the cluster has no certificate-authority");
    kubeconfig_refused("{tokenFile: secrets/token}", "{exec: {command: aws}}",
                       "kc.yaml:13:16: users[0].user.exec: not supported");
    kubeconfig_refused("current-context: a", "current-context: c",
                       "kc.yaml:21:18: current-context: no entry named \"c\" in contexts");
    kubeconfig_refused("LS0tLS1CRUdJTiBDRVJU", "not*base64", "certificate-authority-data: want base64");
    kubeconfig_refused("{tokenFile: secrets/token}", "{client-certificate: c.pem}",
                       "kc.yaml:13:9: users[0].user: a client certificate needs its key");
    kubeconfig_refused("clusters:\n", "clusters: [\n", "kc.yaml:");
}

/* ---- the informer's parts ----------------------------------------------------------------------------------- */

static void test_backoff_bounds(void **state)
{
    (void)state;
    unsigned prev_ceiling = 0;
    for (unsigned attempt = 0; attempt < 40; attempt++) {
        unsigned ceiling = rm__kube_backoff_ms(attempt, 200, 10000, UINT32_MAX - (UINT32_MAX % 10001));
        /* the largest draw lands on the ceiling for these numbers only when rnd % (ceiling + 1) == ceiling; check
         * the bound with every residue instead */
        for (uint32_t r = 0; r < 20000; r += 7) {
            unsigned d = rm__kube_backoff_ms(attempt, 200, 10000, r);
            uint64_t want = 200ull << (attempt < 10 ? attempt : 10);
            if (want > 10000)
                want = 10000;
            assert_true(d <= want);
        }
        assert_int_equal(rm__kube_backoff_ms(attempt, 200, 10000, 0), 0); /* full jitter: down to zero */
        (void)ceiling;
        unsigned top = 0;
        for (uint32_t r = 0; r < 20001; r++) {
            unsigned d = rm__kube_backoff_ms(attempt, 200, 10000, r);
            if (d > top)
                top = d;
        }
        assert_true(top >= prev_ceiling); /* the ceiling grows, then stays at the cap */
        prev_ceiling = top;
        if (attempt == 0)
            assert_int_equal(top, 200);
        if (attempt == 3)
            assert_int_equal(top, 1600);
        if (attempt >= 6)
            assert_int_equal(top, 10000); /* 200 * 64 > 10000: capped */
    }
    /* a huge attempt number does not overflow into a small ceiling */
    assert_true(rm__kube_backoff_ms(UINT32_MAX, 200, 10000, 9999) == 9999);
}

static void test_object_key(void **state)
{
    (void)state;
    char buf[64];
    json_t *o = json_pack("{s:{s:s, s:s}}", "metadata", "name", "orders", "namespace", "shop");
    assert_string_equal(rm__kube_object_key(o, buf, sizeof(buf)), "shop/orders");
    json_object_del(json_object_get(o, "metadata"), "namespace");
    assert_string_equal(rm__kube_object_key(o, buf, sizeof(buf)), "orders"); /* cluster-scoped */
    json_object_del(json_object_get(o, "metadata"), "name");
    assert_null(rm__kube_object_key(o, buf, sizeof(buf)));
    json_decref(o);
}

/* ---- objects -> model --------------------------------------------------------------------------------------- */

/* The fixture's objects in caches keyed as the informers key them, inserted in `reverse` order or not. */
typedef struct st_caches_t {
    json_t *root, *pods, *services, *slices, *policies;
} caches_t;

static json_t *cache_of(json_t *items, const char *kind, const char *api, int reverse)
{
    json_t *c = json_object();
    size_t n = json_array_size(items);
    for (size_t k = 0; k < n; k++) {
        json_t *o = json_deep_copy(json_array_get(items, reverse ? n - 1 - k : k));
        char key[256];
        if (json_object_get(o, "kind") == NULL) {
            json_object_set_new(o, "kind", json_string(kind));
            json_object_set_new(o, "apiVersion", json_string(api));
        }
        json_object_set_new(c, rm__kube_object_key(o, key, sizeof(key)), o);
    }
    return c;
}

static void caches_load(caches_t *c, int reverse)
{
    json_error_t je;
    if ((c->root = json_load_file(DATA "cluster.json", 0, &je)) == NULL)
        fail_msg("cluster.json: %s", je.text);
    c->pods = cache_of(json_object_get(c->root, "pods"), "Pod", "v1", reverse);
    c->services = cache_of(json_object_get(c->root, "services"), "Service", "v1", reverse);
    c->slices = cache_of(json_object_get(c->root, "endpointSlices"), "EndpointSlice", "discovery.k8s.io/v1", reverse);
    c->policies = cache_of(json_object_get(c->root, "policies"), NULL, NULL, reverse);
}

static void caches_free(caches_t *c)
{
    json_decref(c->root);
    json_decref(c->pods);
    json_decref(c->services);
    json_decref(c->slices);
    json_decref(c->policies);
}

typedef struct st_rejections_t {
    char what[8][2048];
    size_t n;
} rejections_t;

static void on_rejected(void *arg, const char *kind, const char *ns, const char *name, const rm_config_error_t *e)
{
    rejections_t *r = arg;
    char msg[1024];
    rm_config_error_format(e, msg, sizeof(msg));
    assert_true(r->n < 8);
    snprintf(r->what[r->n++], sizeof(r->what[0]), "%s %s/%s: %s", kind, ns, name, msg);
}

static rm_mesh_model_t *build(caches_t *c, rejections_t *rej, const char *mesh)
{
    const json_t *pol[1] = {c->policies};
    rm_kube_objects_t objs = {
        .pods = c->pods, .services = c->services, .endpoint_slices = c->slices, .policies = pol, .num_policies = 1};
    rm_mesh_model_t *m = NULL;
    rm_config_error_t e;
    size_t docs = 0;
    int ret =
        rm_kube_model_build(&objs, "mesh.yaml", mesh, mesh != NULL ? strlen(mesh) : 0, on_rejected, rej, &m, &docs, &e);
    if (ret != 0) {
        char msg[1024];
        rm_config_error_format(&e, msg, sizeof(msg));
        fail_msg("build failed: %s", msg);
    }
    assert_int_equal(docs, 6); /* 4 services, 2 policies */
    return m;
}

static const rm_model_service_t *find_service(const rm_mesh_model_t *m, const char *ns, const char *name)
{
    for (size_t i = 0; i < m->num_services; i++)
        if (strcmp(m->services[i].namespace_, ns) == 0 && strcmp(m->services[i].name, name) == 0)
            return &m->services[i];
    return NULL;
}

/* The same content as the fixture, written as the file source's documents. */
static const char EQUIVALENT_YAML[] =
    "apiVersion: ringmesh.io/v1alpha1\nkind: Service\nmetadata: {name: orders, namespace: shop}\n"
    "spec: {addresses: [\"2001:2::10\", 198.19.0.10], ports: [9090, 8080], serviceAccounts: [orders-v2, orders]}\n"
    "---\napiVersion: ringmesh.io/v1alpha1\nkind: Service\nmetadata: {name: legacy, namespace: shop}\n"
    "spec: {addresses: [198.19.0.11], ports: [80], inMesh: false}\n"
    "---\napiVersion: ringmesh.io/v1alpha1\nkind: Service\nmetadata: {name: empty, namespace: shop}\n"
    "spec: {addresses: [198.19.0.13], ports: [81], inMesh: false}\n"
    "---\napiVersion: ringmesh.io/v1alpha1\nkind: Service\nmetadata: {name: web, namespace: web}\n"
    "spec: {addresses: [198.19.0.12], ports: [80], serviceAccounts: [default]}\n"
    "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
    "metadata: {name: orders-allow, namespace: shop}\n"
    "spec:\n  selector: {matchLabels: {app: orders}}\n  action: ALLOW\n  rules:\n"
    "  - from: [{source: {principals: [cluster.local/ns/web/sa/default]}}]\n"
    "    to: [{operation: {ports: [\"8080\"]}}]\n"
    "---\napiVersion: ringmesh.io/v1alpha1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: shop}\n"
    "spec: {mtls: {mode: STRICT}}\n";

static void test_model_from_objects(void **state)
{
    (void)state;
    caches_t c;
    rejections_t rej = {0};
    caches_load(&c, 0);
    rm_mesh_model_t *m = build(&c, &rej, NULL);

    assert_int_equal(m->num_services, 4); /* headless, ExternalName and UDP-only services are not routed */
    const rm_model_service_t *s = find_service(m, "shop", "orders");
    assert_non_null(s);
    assert_true(s->in_mesh);
    assert_int_equal(s->num_addresses, 4); /* 2 cluster IPs x 2 TCP ports; the UDP port left out */
    assert_string_equal(s->addresses[0], "198.19.0.10:8080");
    assert_string_equal(s->addresses[1], "198.19.0.10:9090");
    assert_string_equal(s->addresses[2], "[2001:2::10]:8080");
    assert_int_equal(s->num_identities, 2); /* the accounts of both pods behind it, ready or not */
    assert_string_equal(s->identities[0], "spiffe://cluster.local/ns/shop/sa/orders");
    assert_string_equal(s->identities[1], "spiffe://cluster.local/ns/shop/sa/orders-v2");
    s = find_service(m, "shop", "legacy");
    assert_non_null(s);
    assert_false(s->in_mesh); /* its pod is not injected */
    assert_int_equal(s->num_identities, 0);
    s = find_service(m, "shop", "empty");
    assert_false(s->in_mesh); /* no endpoints */
    s = find_service(m, "web", "web");
    assert_true(s->in_mesh);
    assert_string_equal(s->identities[0], "spiffe://cluster.local/ns/web/sa/default"); /* no serviceAccountName */
    assert_null(find_service(m, "shop", "orders-headless"));
    assert_null(find_service(m, "kube-system", "dns"));

    assert_int_equal(m->policies.num_policies, 1);
    assert_string_equal(m->policies.policies[0].name, "orders-allow");
    assert_int_equal(m->policies.num_peer_authns, 1);
    /* the invalid policy is left out, with its name and the reason */
    assert_int_equal(rej.n, 1);
    assert_contains(rej.what[0], "AuthorizationPolicy shop/bad-action: ");
    assert_contains(rej.what[0], "kubernetes:ringmesh.io/v1alpha1/AuthorizationPolicy/shop/bad-action:");
    assert_contains(rej.what[0], "spec.action");
    assert_contains(rej.what[0], "PERMIT");

    /* the version is the file source's for the same content (the pods' workloads, which only the Kubernetes source
     * knows, added to it), and does not depend on the caches' order */
    rm_mesh_loader_t *ld;
    rm_config_error_t e;
    rm_mesh_model_t *fm = NULL;
    assert_non_null(ld = rm_mesh_loader_new(&e));
    assert_int_equal(rm_mesh_loader_add(ld, "equivalent.yaml", EQUIVALENT_YAML, strlen(EQUIVALENT_YAML)), 0);
    if (rm_mesh_loader_finish(ld, &fm) != 0) {
        char msg[1024];
        rm_config_error_format(&e, msg, sizeof(msg));
        fail_msg("%s", msg);
    }
    rm_mesh_loader_free(ld);
    assert_string_not_equal(m->version, fm->version); /* the workloads are content */
    assert_int_equal(rm_model_set_workloads(fm, c.pods), 0);
    assert_string_equal(m->version, fm->version);
    rm_mesh_model_unref(fm);

    caches_t r;
    rejections_t rej2 = {0};
    caches_load(&r, 1);
    rm_mesh_model_t *m2 = build(&r, &rej2, NULL);
    assert_string_equal(m->version, m2->version);
    rm_mesh_model_unref(m2);
    caches_free(&r);

    /* a pod label or readiness change that the model does not read leaves the version alone; the version label is
     * its workload's version (metric labels), which the model holds; a pod that loses its injection takes its
     * service out of the mesh */
    json_t *pod = json_object_get(c.pods, "shop/orders-7d9f-2");
    json_object_set_new(json_object_get(json_object_get(pod, "metadata"), "labels"), "tier", json_string("gold"));
    rejections_t rej3 = {0};
    m2 = build(&c, &rej3, NULL);
    assert_string_equal(m->version, m2->version);
    rm_mesh_model_unref(m2);
    json_object_set_new(json_object_get(json_object_get(pod, "metadata"), "labels"), "version", json_string("v3"));
    m2 = build(&c, &rej3, NULL);
    assert_string_not_equal(m->version, m2->version);
    rm_mesh_model_unref(m2);
    json_object_set_new(json_object_get(json_object_get(pod, "metadata"), "labels"), "version", json_string("v2"));
    json_object_del(json_object_get(json_object_get(pod, "metadata"), "annotations"), "ringmesh.io/status");
    m2 = build(&c, &rej3, NULL);
    assert_string_not_equal(m->version, m2->version);
    assert_false(find_service(m2, "shop", "orders")->in_mesh);
    rm_mesh_model_unref(m2);

    rm_mesh_model_unref(m);
    caches_free(&c);
}

static void test_model_mesh_config(void **state)
{
    (void)state;
    caches_t c;
    rejections_t rej = {0};
    caches_load(&c, 0);
    static const char MESH[] = "apiVersion: ringmesh.io/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\n"
                               "spec: {trustDomain: example.org, authorization: {defaultAction: ALLOW}}\n";
    rm_mesh_model_t *m = build(&c, &rej, MESH);
    assert_string_equal(m->settings.trust_domain, "example.org");
    assert_int_equal(m->settings.default_action, RM_AUTHZ_ALLOW);
    assert_string_equal(find_service(m, "web", "web")->identities[0], "spiffe://example.org/ns/web/sa/default");
    rm_mesh_model_unref(m);

    /* an invalid MeshConfig fails the build, naming its file, line and field */
    const json_t *pol[1] = {c.policies};
    rm_kube_objects_t objs = {
        .pods = c.pods, .services = c.services, .endpoint_slices = c.slices, .policies = pol, .num_policies = 1};
    static const char BAD[] = "apiVersion: ringmesh.io/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\n"
                              "spec:\n  mtls: {mode: STRICTER}\n";
    rm_config_error_t e;
    char msg[1024];
    m = NULL;
    assert_int_not_equal(
        rm_kube_model_build(&objs, "/etc/ringmesh/mesh/mesh.yaml", BAD, strlen(BAD), NULL, NULL, &m, NULL, &e), 0);
    assert_null(m);
    rm_config_error_format(&e, msg, sizeof(msg));
    assert_contains(msg, "/etc/ringmesh/mesh/mesh.yaml:5:");
    assert_contains(msg, "spec.mtls.mode");
    caches_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_whole_and_in_pieces),
        cmocka_unit_test(test_lines_limits),
        cmocka_unit_test(test_kubeconfig_current_context),
        cmocka_unit_test(test_kubeconfig_refusals),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_object_key),
        cmocka_unit_test(test_model_from_objects),
        cmocka_unit_test(test_model_mesh_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
