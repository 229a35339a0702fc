/* The control plane's file source loading a directory of YAML documents into a mesh model (control/source_file.c,
 * with the mesh loader of control/mesh_load.c and control/mesh_documents.c): what a valid directory gives, defaults,
 * every broken rule with its file, line and field, the files read and skipped, the model's canonical order and
 * version (control/mesh_model.c), and the path normalization setting.
 *
 * Data: tests/data/source/valid (several files, several documents per file, files that must be ignored),
 * valid-reshuffled (the same content in other files, order and formatting), err-* (one broken rule each). */
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

/* ---- loading ------------------------------------------------------------------------------------------------ */

static void test_valid_directory(void **state)
{
    rm_mesh_model_t *m = load_ok(DATA_DIR "valid");
    const rm_model_service_t *s;

    assert_string_equal(m->settings.trust_domain, "mesh.example");
    assert_int_equal(m->settings.inbound_mode, RM_MODEL_MTLS_PERMISSIVE);
    assert_int_equal(m->settings.svid_ttl, 12 * 3600);
    assert_int_equal(m->settings.connect_timeout_ms, 3000);
    assert_int_equal(m->settings.idle_timeout_ms, 30 * 60 * 1000);
    assert_int_equal(m->settings.access_log, 0);

    /* four services from two files; .hidden.yaml, notes.txt and sub/extra.yaml (all invalid) are not read */
    assert_int_equal(m->num_services, 4);
    const char *order[][2] = {{"billing", "payments"}, {"default", "ledger"}, {"shop", "cart"}, {"shop", "orders"}};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(m->services[i].namespace_, order[i][0]);
        assert_string_equal(m->services[i].name, order[i][1]);
    }

    s = find_service(m, "shop", "orders");
    static const char *const orders_addrs[] = {"198.18.100.1:8080", "198.18.100.1:9090", "[2001:2::1]:8080",
                                               "[2001:2::1]:9090"};
    static const char *const orders_ids[] = {"spiffe://mesh.example/ns/shop/sa/legacy",
                                             "spiffe://mesh.example/ns/shop/sa/orders"};
    assert_strings(s->addresses, s->num_addresses, orders_addrs, 4);
    assert_strings(s->identities, s->num_identities, orders_ids, 2);
    assert_true(s->in_mesh);
    assert_string_equal(s->file, DATA_DIR "valid/shop.yaml");
    assert_int_equal(s->line, 1);

    /* the second document of shop.yaml: its line counts the first document's */
    s = find_service(m, "shop", "cart");
    static const char *const cart_addrs[] = {"198.18.100.2:80"};
    static const char *const cart_ids[] = {"spiffe://mesh.example/ns/shop/sa/cart",
                                           "spiffe://mesh.example/ns/shop/sa/cart-canary"};
    assert_strings(s->addresses, s->num_addresses, cart_addrs, 1);
    assert_strings(s->identities, s->num_identities, cart_ids, 2);
    assert_string_equal(s->file, DATA_DIR "valid/shop.yaml");
    assert_int_equal(s->line, 12);

    /* inMesh: false needs no identity; an IPv4-mapped IPv6 VIP is written as IPv4 */
    s = find_service(m, "billing", "payments");
    static const char *const payments_addrs[] = {"198.18.100.3:443"};
    assert_strings(s->addresses, s->num_addresses, payments_addrs, 1);
    assert_false(s->in_mesh);
    assert_int_equal(s->num_identities, 0);
    assert_string_equal(s->file, DATA_DIR "valid/payments.yml");

    /* no namespace: "default"; an explicit identity alone is enough */
    s = find_service(m, "default", "ledger");
    static const char *const ledger_ids[] = {"spiffe://mesh.example/ledger"};
    assert_strings(s->identities, s->num_identities, ledger_ids, 1);
    assert_int_equal(s->line, 9);

    assert_int_equal(strlen(m->version), 16);
    assert_int_equal(strspn(m->version, "0123456789abcdef"), 16);
    rm_mesh_model_unref(m);
}

static void test_defaults_without_meshconfig(void **state)
{
    rm_mesh_model_t *m = load_ok(DATA_DIR "no-meshconfig");

    assert_string_equal(m->settings.trust_domain, "cluster.local");
    assert_int_equal(m->settings.inbound_mode, RM_MODEL_MTLS_STRICT);
    assert_int_equal(m->settings.svid_ttl, 86400);
    assert_int_equal(m->settings.connect_timeout_ms, 0);
    assert_int_equal(m->settings.idle_timeout_ms, 0);
    assert_int_equal(m->settings.access_log, 0); /* the access log is off unless asked for */
    assert_true(m->settings.access_log_sample == 1);
    /* serviceAccounts become IDs in the default trust domain */
    const rm_model_service_t *s = find_service(m, "shop", "orders");
    static const char *const ids[] = {"spiffe://cluster.local/ns/shop/sa/orders"};
    assert_strings(s->identities, s->num_identities, ids, 1);
    rm_mesh_model_unref(m);
}

static void test_empty_directory(void **state)
{
    char dir[128], path[192];
    tmp_dir("empty", dir, sizeof(dir));
    rm_mesh_model_t *m = load_ok(dir);
    assert_int_equal(m->num_services, 0);
    rm_mesh_model_unref(m);

    /* a file with only document separators and comments holds no document */
    snprintf(path, sizeof(path), "%s/blank.yaml", dir);
    write_file(path, "---\n# nothing yet\n---\n");
    m = load_ok(dir);
    assert_int_equal(m->num_services, 0);
    assert_string_equal(m->settings.trust_domain, "cluster.local");
    rm_mesh_model_unref(m);
}

static void test_bad_arguments_and_io(void **state)
{
    char err[512];
    rm_mesh_model_t *m = NULL;

    assert_int_equal(rm_mesh_model_load_dir(NULL, &m, err, sizeof(err)), RM_ERR_CONFIG_IO);
    assert_null(m);
    load_fail(DATA_DIR "does-not-exist", RM_ERR_CONFIG_IO, err, sizeof(err));
    assert_contains(err, DATA_DIR "does-not-exist: cannot open the directory: ");
    load_fail(DATA_DIR "valid/mesh.yaml", RM_ERR_CONFIG_IO, err, sizeof(err));
    assert_contains(err, "cannot open the directory: ");
}

/* One broken rule per directory: the message's position and field (what an operator reads first) and the
 * reason. `where` is relative to DATA_DIR. */
typedef struct st_error_case_t {
    const char *dir;
    int code;
    const char *where;
    const char *reason;
} error_case_t;

static const error_case_t error_cases[] = {
    /* unknown key in the second document: the field path, the key's own line */
    {"err-unknown-key", RM_ERR_CONFIG_PARSE, "err-unknown-key/shop.yaml:19:3: spec.serviceAcounts: ",
     "unknown key \"serviceAcounts\" (known keys: addresses, ports, inMesh, serviceAccounts, identities, endpoints)"},
    {"err-mtls-mode", RM_ERR_CONFIG_VALUE, "err-mtls-mode/mesh.yaml:6:11: spec.mtls.mode: ",
     "\"STRICTER\" is not an mTLS mode (want STRICT, PERMISSIVE or DISABLE)"},
    {"err-trust-domain", RM_ERR_CONFIG_VALUE,
     "err-trust-domain/mesh.yaml:5:16: spec.trustDomain: ", "\"Cluster.Local\" is not a SPIFFE trust domain: "},
    {"err-svid-ttl", RM_ERR_CONFIG_VALUE,
     "err-svid-ttl/mesh.yaml:6:12: spec.svidTTL: ", "\"4m59s\" is shorter than the minimum of 5m"},
    {"err-vip", RM_ERR_CONFIG_VALUE,
     "err-vip/svc.yaml:7:29: spec.addresses[1]: ", "\"198.18.100.256\" is not an IP address"},
    {"err-port-zero", RM_ERR_CONFIG_VALUE,
     "err-port-zero/svc.yaml:8:17: spec.ports[1]: ", "\"0\" is not a port (want a whole number in 1..65535)"},
    {"err-port-range", RM_ERR_CONFIG_VALUE,
     "err-port-range/svc.yaml:10:7: spec.ports[1]: ", "\"70000\" is not a port (want a whole number in 1..65535)"},
    /* across files: the second one read is reported, naming the first */
    {"err-duplicate-service", RM_ERR_CONFIG_VALUE, "err-duplicate-service/b.yaml:5:9: metadata.name: ",
     "service shop/orders is also defined at " DATA_DIR "err-duplicate-service/a.yaml:4"},
    /* 2001:2:0::1 and 2001:2::1 are one address */
    {"err-duplicate-vip-port", RM_ERR_CONFIG_VALUE, "err-duplicate-vip-port/b.yaml:7:29: spec.addresses[1]: ",
     "[2001:2::1]:9090 is also an address of service shop/orders (" DATA_DIR
     "err-duplicate-vip-port/a.yaml:7, spec.addresses[1])"},
    {"err-no-identity", RM_ERR_CONFIG_VALUE,
     "err-no-identity/svc.yaml:7:3: spec: ", "service shop/orders is in the mesh but has no identity"},
    {"err-spiffe-id", RM_ERR_CONFIG_VALUE, "err-spiffe-id/svc.yaml:11:7: spec.identities[1]: ",
     "\"spiffe://cluster.local/ns/shop/../sa/orders\" is not a SPIFFE ID: "},
    {"err-two-meshconfigs", RM_ERR_CONFIG_VALUE, "err-two-meshconfigs/b.yaml:2:7: kind: ",
     "a second MeshConfig (the first is at " DATA_DIR "err-two-meshconfigs/a.yaml:1)"},
    /* the third document of a file, after comments and blank lines */
    {"err-later-document", RM_ERR_CONFIG_VALUE,
     "err-later-document/many.yaml:32:11: spec.inMesh: ", "\"maybe\" is not a boolean (want true or false)"},
    /* the MeshConfig is in another file, read before this one */
    {"err-foreign-identity", RM_ERR_CONFIG_VALUE, "err-foreign-identity/svc.yaml:10:16: spec.identities[0]: ",
     "\"spiffe://cluster.local/ns/shop/sa/legacy\" is not in the mesh's trust domain \"mesh.example\""},
    {"err-api-version", RM_ERR_CONFIG_VALUE, "err-api-version/svc.yaml:1:13: apiVersion: ",
     "\"ringmesh.io/v1\" is not a version this source reads (want ringmesh.io/v1alpha1)"},
    {"err-kind", RM_ERR_CONFIG_VALUE, "err-kind/svc.yaml:2:7: kind: ",
     "\"Servce\" is not a kind this source reads (want MeshConfig, Service, Workload, HTTPRoute or GRPCRoute)"},
    {"err-syntax", RM_ERR_CONFIG_PARSE, "err-syntax/svc.yaml:8:8: spec.addresses: ", "YAML syntax error: "},
    {"err-duplicate-key", RM_ERR_CONFIG_PARSE,
     "err-duplicate-key/svc.yaml:9:3: spec.ports: ", "duplicate key (first set at line 8)"},
    {"err-namespace", RM_ERR_CONFIG_VALUE,
     "err-namespace/svc.yaml:5:14: metadata.namespace: ", "\"Shop\" is not a DNS-1123 label"},
    {"err-not-mapping", RM_ERR_CONFIG_PARSE, "err-not-mapping/list.yaml:2:1: (document): ",
     "a document must be a mapping (apiVersion, kind, metadata, spec), not a sequence"},
};

static void test_error_case(void **state)
{
    const error_case_t *c = *state;
    char dir[256], err[2048], want[512];

    snprintf(dir, sizeof(dir), DATA_DIR "%s", c->dir);
    load_fail(dir, c->code, err, sizeof(err));
    snprintf(want, sizeof(want), DATA_DIR "%s", c->where);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("message \"%s\"\n  does not start with \"%s\"", err, want);
    assert_contains(err + strlen(want), c->reason);
}

/* Values that only a generated file tests conveniently: one document each, the message's field and reason. */
static void test_value_errors(void **state)
{
    static const struct {
        const char *doc, *want;
    } cases[] = {
        {"kind: MeshConfig\nmetadata: {name: m}\nspec: {svidTTL: 8761h}\n",
         "spec.svidTTL: \"8761h\" is not a duration"},
        {"kind: MeshConfig\nmetadata: {name: m}\nspec: {svidTTL: 300001ms}\n",
         "spec.svidTTL: \"300001ms\" is not a whole number of seconds"},
        {"kind: MeshConfig\nmetadata: {name: m}\nspec: {connectTimeout: 5}\n",
         "spec.connectTimeout: \"5\" is not a duration"},
        {"kind: MeshConfig\nmetadata: {name: m}\nspec: {idleTimeout: 1.5h}\n",
         "spec.idleTimeout: \"1.5h\" is not a duration"},
        {"kind: MeshConfig\nmetadata: {name: m}\nspec: {accessLog: {enabled: yes}}\n",
         "spec.accessLog.enabled: \"yes\" is not a boolean"},
        {"kind: MeshConfig\nmetadata: {name: m}\nspec: {accessLog: maybe}\n",
         "doc.yaml:4:19: spec.accessLog.enabled: \"maybe\" is not a boolean"},
        {"kind: MeshConfig\nmetadata: {name: m}\nspec: {accessLog: [true]}\n",
         "spec.accessLog: want a mapping, got a sequence"},
        {"kind: MeshConfig\nmetadata: {name: m}\nspec: {metrics: {istioNames: 1}}\n",
         "spec.metrics.istioNames: \"1\" is not a boolean"},
        {"kind: MeshConfig\nmetadata: {name: m}\nspec: {metrics: {maxSeriesPerMetric: 0}}\n",
         "spec.metrics.maxSeriesPerMetric: \"0\" is not a whole number in 1..1000000"},
        {"kind: MeshConfig\nmetadata: {name: m}\nspec: {metrics: {seriesExpiry: soon}}\n",
         "spec.metrics.seriesExpiry: \"soon\" is not a duration"},
        {"kind: MeshConfig\nmetadata: {name: m, namespace: x}\n", "metadata.namespace: unknown key \"namespace\""},
        {"kind: MeshConfig\nmetadata: {name: Mesh}\n", "metadata.name: \"Mesh\" is not a DNS-1123 subdomain"},
        {"kind: MeshConfig\nspec: {}\n", "metadata: is required"},
        {"kind: Service\nmetadata: {name: a}\n", "spec: is required"},
        {"kind: Service\nmetadata: {namespace: a}\nspec: {}\n", "metadata.name: is required"},
        {"kind: Service\nmetadata: {name: a.b}\nspec: {}\n", "metadata.name: \"a.b\" is not a DNS-1123 label"},
        {"kind: Service\nmetadata: {name: a}\nspec: {ports: [1], serviceAccounts: [a]}\n",
         "spec.addresses: is required"},
        {"kind: Service\nmetadata: {name: a}\nspec: {addresses: [10.0.0.1], serviceAccounts: [a]}\n",
         "spec.ports: is required"},
        {"kind: Service\nmetadata: {name: a}\nspec: {addresses: [\"10.0.0.1:80\"], ports: [1]}\n",
         "spec.addresses[0]: \"10.0.0.1:80\" is not an IP address"},
        {"kind: Service\nmetadata: {name: a}\nspec: {addresses: [\"[2001:2::1]\"], ports: [1]}\n",
         "spec.addresses[0]: \"[2001:2::1]\" is not an IP address"},
        {"kind: Service\nmetadata: {name: a}\nspec: {addresses: [\"::\"], ports: [1]}\n",
         "spec.addresses[0]: \"::\" is the unspecified address"},
        {"kind: Service\nmetadata: {name: a}\nspec: {addresses: [10.0.0.1, \"::ffff:10.0.0.1\"], ports: [1]}\n",
         "spec.addresses[1]: \"::ffff:10.0.0.1\" is the same address as spec.addresses[0]"},
        {"kind: Service\nmetadata: {name: a}\nspec: {addresses: [10.0.0.1], ports: [80, 80]}\n",
         "spec.ports[1]: port 80 is also spec.ports[0]"},
        {"kind: Service\nmetadata: {name: a}\nspec: {addresses: [10.0.0.1], ports: [http]}\n",
         "spec.ports[0]: \"http\" is not a port"},
        /* a port is written as the proxy and the policies write it: at most 5 digits */
        {"kind: Service\nmetadata: {name: a}\nspec: {addresses: [10.0.0.1], ports: [\"000080\"]}\n",
         "spec.ports[0]: \"000080\" is not a port (want a whole number in 1..65535)"},
        {"kind: MeshConfig\nmetadata: {name: m}\nspec: {rootNamespace: Sys}\n",
         "spec.rootNamespace: \"Sys\" is not a namespace name (a DNS-1123 label: 1 to 63 of a-z 0-9 -"},
        {"kind: Service\nmetadata: {name: a}\nspec: {addresses: [10.0.0.1], ports: [1], serviceAccounts: [A]}\n",
         "spec.serviceAccounts[0]: \"A\" is not a ServiceAccount name"},
        {"kind: Service\nmetadata: {name: a}\nspec: {addresses: [10.0.0.1], ports: [1], serviceAccounts: [a, a]}\n",
         "spec.serviceAccounts[1]: \"a\" is also spec.serviceAccounts[0]"},
        {"kind: Service\nmetadata: {name: a}\nspec: {addresses: [10.0.0.1], ports: [1], identities: "
         "[\"spiffe://cluster.local\"]}\n",
         "spec.identities[0]: \"spiffe://cluster.local\" names a trust domain, not a workload"},
        {"kind: Service\nmetadata: {name: a}\nspec: {addresses: [10.0.0.1], ports: [1], identities: "
         "[\"spiffe://cluster.local/x\", \"spiffe://cluster.local/x\"]}\n",
         "spec.identities[1]: \"spiffe://cluster.local/x\" is also spec.identities[0]"},
        {"kind: Service\nmetadata: {name: a}\nspec: {addresses: [10.0.0.1], ports: [1], serviceAccounts: [a], "
         "identities: "
         "[\"spiffe://cluster.local/ns/default/sa/a\"]}\n",
         "spec.identities[0]: \"spiffe://cluster.local/ns/default/sa/a\" is already given by spec.serviceAccounts[0]"},
        {"kind: Service\nmetadata: {name: a}\nspec: {addresses: 10.0.0.1, ports: [1]}\n",
         "spec.addresses: want a sequence, got a scalar"},
        {"kind: Service\nmetadata: {name: a}\nspec: {ports: [1], ports: [2]}\n", "spec.ports: duplicate key"},
        {"kind: Service\nmetadata: &m {name: a}\nspec: *m\n", "spec: YAML aliases (*m) are not supported"},
        {"kind: Service\nstatus: {}\n",
         "status: unknown key \"status\" (known keys: apiVersion, kind, metadata, spec)"},
        {"kind: [Service]\n", "kind: a collection is not a kind this source reads"},
        {"metadata: {name: a}\n", "kind: is required (MeshConfig, Service, Workload, HTTPRoute or GRPCRoute)"},
    };
    char dir[128], file[160], err[2048], text[1024];

    tmp_dir("values", dir, sizeof(dir));
    snprintf(file, sizeof(file), "%s/doc.yaml", dir);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "apiVersion: ringmesh.io/v1alpha1\n%s", cases[i].doc);
        write_file(file, text);
        rm_mesh_model_t *sentinel = (rm_mesh_model_t *)(uintptr_t)0x1, *m = sentinel;
        int ret = rm_mesh_model_load_dir(dir, &m, err, sizeof(err));
        if (ret != RM_ERR_CONFIG_VALUE && ret != RM_ERR_CONFIG_PARSE)
            fail_msg("case %zu: want an error, got %d: %s", i, ret, err);
        assert_ptr_equal(m, sentinel);
        assert_contains(err, file);
        assert_contains(err, cases[i].want);
    }
    /* no apiVersion at all */
    write_file(file, "kind: Service\nmetadata: {name: a}\n");
    load_fail(dir, RM_ERR_CONFIG_VALUE, err, sizeof(err));
    assert_contains(err, "doc.yaml:1:1: apiVersion: is required (ringmesh.io/v1alpha1)");
}

/* Hidden files are never read; a FIFO named *.yaml is not waited on; files must be UTF-8. */
static void test_files_read_and_skipped(void **state)
{
    char dir[128], path[192], err[1024];

    tmp_dir("files", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/.editor-swap.yaml", dir);
    write_file(path, "{{{ not yaml");
    snprintf(path, sizeof(path), "%s/queue.yaml", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    rm_mesh_model_t *m = load_ok(dir);
    assert_int_equal(m->num_services, 0);
    rm_mesh_model_unref(m);

    /* a UTF-8 byte order mark is fine; UTF-16 is refused */
    snprintf(path, sizeof(path), "%s/bom.yaml", dir);
    write_file(path, "\xef\xbb\xbf"
                     "apiVersion: ringmesh.io/v1alpha1\nkind: Service\nmetadata: {name: bom}\n"
                     "spec: {addresses: [10.0.0.1], ports: [80], serviceAccounts: [bom]}\n");
    m = load_ok(dir);
    assert_int_equal(m->num_services, 1);
    assert_string_equal(m->services[0].name, "bom");
    rm_mesh_model_unref(m);
    snprintf(path, sizeof(path), "%s/utf16.yaml", dir);
    write_file(path, "\xff\xfe"
                     "k"); /* the UTF-16LE byte order mark is what is refused */
    load_fail(dir, RM_ERR_CONFIG_PARSE, err, sizeof(err));
    assert_contains(err, "utf16.yaml:1:1: (document): the file is UTF-16; write it in UTF-8");
    assert_int_equal(unlink(path), 0);

    snprintf(path, sizeof(path), "%s/latin1.yaml", dir);
    write_file(path, "apiVersion: ringmesh.io/v1alpha1\nkind: Service\nmetadata: {name: caf\xe9}\n");
    load_fail(dir, RM_ERR_CONFIG_PARSE, err, sizeof(err));
    assert_contains(err, "latin1.yaml:3:");
    assert_contains(err, "YAML syntax error: ");
}

/* The version depends on content only: other file names, document order, formatting, list order and equivalent
 * spellings give the same one; any change of content gives another. */
static void test_version(void **state)
{
    char dir[128], path[192];
    rm_mesh_model_t *a = load_ok(DATA_DIR "valid"), *b = load_ok(DATA_DIR "valid-reshuffled"), *c;

    assert_string_equal(a->version, b->version);

    /* the same files under other names */
    copy_dir(DATA_DIR "valid", tmp_dir("renamed", dir, sizeof(dir)), "renamed-");
    c = load_ok(dir);
    assert_string_equal(c->version, a->version);
    assert_string_equal(c->services[0].file + strlen(dir), "/renamed-payments.yml");
    rm_mesh_model_unref(c);

    /* one port changed */
    snprintf(path, sizeof(path), "%s/renamed-payments.yml", dir);
    char *text = read_text(path), *p = strstr(text, "[443]");
    assert_non_null(p);
    memcpy(p, "[444]", 5);
    write_file(path, text);
    c = load_ok(dir);
    assert_string_not_equal(c->version, a->version);
    rm_mesh_model_unref(c);

    /* a setting changed */
    memcpy(p, "[443]", 5);
    write_file(path, text);
    free(text);
    snprintf(path, sizeof(path), "%s/renamed-mesh.yaml", dir);
    text = read_text(path);
    assert_non_null(p = strstr(text, "accessLog: {enabled: false}"));
    memcpy(p, "accessLog: {enabled: true} ", 27);
    write_file(path, text);
    free(text);
    c = load_ok(dir);
    assert_string_not_equal(c->version, a->version);
    rm_mesh_model_unref(c);

    rm_mesh_model_unref(a);
    rm_mesh_model_unref(b);
}

/* The canonical serialization, written out, and the version as the first 16 hex digits of its SHA-256
 * (pinned: replicas built from different commits must agree as long as the format does). */
static void test_canonical_serialization(void **state)
{
    rm_mesh_model_t *m = rm__mesh_model_new();
    static const char *const addrs[] = {"[2001:2::1]:80", "198.18.0.10:80", "198.18.0.9:8080", "198.18.0.9:80"};
    static const char *const ids[] = {"spiffe://cluster.local/z", "spiffe://cluster.local/a"};
    char *ser = NULL, hex[2 * RM_SHA256_LEN + 1];
    size_t ser_len = 0;
    uint8_t digest[RM_SHA256_LEN];

    assert_non_null(m);
    assert_non_null(m->services = calloc(2, sizeof(*m->services)));
    m->num_services = 2;
    m->services[0].namespace_ = strdup("shop");
    m->services[0].name = strdup("orders");
    m->services[0].in_mesh = 1;
    m->services[0].addresses = calloc(4, sizeof(char *));
    for (size_t i = 0; i < 4; i++)
        m->services[0].addresses[i] = strdup(addrs[i]);
    m->services[0].num_addresses = 4;
    m->services[0].identities = calloc(2, sizeof(char *));
    for (size_t i = 0; i < 2; i++)
        m->services[0].identities[i] = strdup(ids[i]);
    m->services[0].num_identities = 2;
    m->services[0].file = strdup("where it came from is not content");
    m->services[1].namespace_ = strdup("billing");
    m->services[1].name = strdup("ledger");
    m->services[1].addresses = calloc(1, sizeof(char *));
    m->services[1].addresses[0] = strdup("10.0.0.1:5432");
    m->services[1].num_addresses = 1;

    assert_int_equal(rm__mesh_model_seal(m), 0);
    assert_int_equal(rm__mesh_model_serialize(m, &ser, &ser_len), 0);
    static const char want[] = "format=22:ringmesh.mesh_model.v1\n"
                               "trustDomain=13:cluster.local\n"
                               "mtlsMode=1\n"
                               "connectTimeoutMs=0\n"
                               "idleTimeoutMs=0\n"
                               "accessLog=0\n"
                               "svidTTL=86400\n"
                               "rootNamespace=15:ringmesh-system\n"
                               "defaultAction=1\n"
                               "logAllowed=0\n"
                               "logAllowedSamplePpm=1000000\n"
                               "authorizationPolicies=0\n"
                               "peerAuthentications=0\n"
                               "services=2\n"
                               "namespace=7:billing\n"
                               "name=6:ledger\n"
                               "inMesh=0\n"
                               "addresses=1\n"
                               "address=13:10.0.0.1:5432\n"
                               "identities=0\n"
                               "namespace=4:shop\n"
                               "name=6:orders\n"
                               "inMesh=1\n"
                               "addresses=4\n"
                               "address=13:198.18.0.9:80\n"
                               "address=15:198.18.0.9:8080\n"
                               "address=14:198.18.0.10:80\n"
                               "address=14:[2001:2::1]:80\n"
                               "identities=2\n"
                               "identity=24:spiffe://cluster.local/a\n"
                               "identity=24:spiffe://cluster.local/z\n";
    assert_int_equal(ser_len, sizeof(want) - 1);
    assert_memory_equal(ser, want, ser_len);
    rm_sha256(ser, ser_len, digest);
    rm_hex_encode(digest, sizeof(digest), hex);
    hex[16] = '\0';
    assert_string_equal(m->version, hex);
    assert_string_equal(m->version, "8ffe6568d84ee6a5"); /* accessLog=0: the access log is off by default */
    free(ser);

    /* references: the last unref frees (checked by the sanitizer builds) */
    assert_ptr_equal(rm_mesh_model_ref(m), m);
    assert_int_equal(m->refcnt, 2);
    rm_mesh_model_unref(m);
    assert_int_equal(m->refcnt, 1);
    rm_mesh_model_unref(m);
    rm_mesh_model_unref(NULL);
}

/* spec.authorization.pathNormalization.normalization: BASE when absent, Istio's four names, anything else refused
 * with file, line and field; a mode that is not BASE changes the mesh's version, BASE leaves it as it was. */
static void test_path_normalization_setting(void **state)
{
    static const char head[] = "apiVersion: ringmesh.io/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\n";
    char dir[128], file[160], text[512], err[2048], base_version[64];

    tmp_dir("normalization", dir, sizeof(dir));
    snprintf(file, sizeof(file), "%s/mesh.yaml", dir);
    snprintf(text, sizeof(text), "%sspec:\n  authorization: {defaultAction: DENY}\n", head);
    write_file(file, text);
    rm_mesh_model_t *m = load_ok(dir);
    assert_int_equal(m->settings.path_normalization, RM_PATH_NORMALIZATION_BASE);
    snprintf(base_version, sizeof(base_version), "%s", m->version);
    rm_mesh_model_unref(m);

    static const struct {
        const char *name;
        rm_path_normalization_t want;
    } modes[] = {
        {"BASE", RM_PATH_NORMALIZATION_BASE},
        {"NONE", RM_PATH_NORMALIZATION_NONE},
        {"MERGE_SLASHES", RM_PATH_NORMALIZATION_MERGE_SLASHES},
        {"DECODE_AND_MERGE_SLASHES", RM_PATH_NORMALIZATION_DECODE_AND_MERGE_SLASHES},
    };
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        snprintf(text, sizeof(text),
                 "%sspec:\n  authorization:\n    defaultAction: DENY\n    pathNormalization: {normalization: %s}\n",
                 head, modes[i].name);
        write_file(file, text);
        m = load_ok(dir);
        assert_int_equal(m->settings.path_normalization, modes[i].want);
        if (modes[i].want == RM_PATH_NORMALIZATION_BASE)
            assert_string_equal(m->version, base_version);
        else
            assert_string_not_equal(m->version, base_version);
        rm_mesh_model_unref(m);
    }

    snprintf(text, sizeof(text), "%sspec:\n  authorization:\n    pathNormalization: {normalization: Merge}\n", head);
    write_file(file, text);
    load_fail(dir, RM_ERR_CONFIG_VALUE, err, sizeof(err));
    assert_contains(err, file);
    assert_contains(err, ":6:40: spec.authorization.pathNormalization.normalization: \"Merge\" is not BASE, "
                         "MERGE_SLASHES, DECODE_AND_MERGE_SLASHES or NONE");
}

/* spec.defaultConfig.gatewayTopology.numTrustedProxies (Istio's): 0 when absent and then the mesh keeps its version;
 * 0..64; anything else refused with file, line and field. */
static void test_num_trusted_proxies_setting(void **state)
{
    static const char head[] = "apiVersion: ringmesh.io/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\n";
    char dir[128], file[160], text[512], err[2048], base_version[64];

    tmp_dir("trusted-proxies", dir, sizeof(dir));
    snprintf(file, sizeof(file), "%s/mesh.yaml", dir);
    snprintf(text, sizeof(text), "%sspec:\n  authorization: {defaultAction: DENY}\n", head);
    write_file(file, text);
    rm_mesh_model_t *m = load_ok(dir);
    assert_int_equal(m->settings.num_trusted_proxies, 0);
    snprintf(base_version, sizeof(base_version), "%s", m->version);
    rm_mesh_model_unref(m);

    snprintf(text, sizeof(text),
             "%sspec:\n  authorization: {defaultAction: DENY}\n  defaultConfig:\n    gatewayTopology:\n"
             "      numTrustedProxies: 2\n",
             head);
    write_file(file, text);
    m = load_ok(dir);
    assert_int_equal(m->settings.num_trusted_proxies, 2);
    assert_string_not_equal(m->version, base_version);
    rm_mesh_model_unref(m);

    snprintf(text, sizeof(text), "%sspec:\n  defaultConfig: {gatewayTopology: {numTrustedProxies: many}}\n", head);
    write_file(file, text);
    load_fail(dir, RM_ERR_CONFIG_VALUE, err, sizeof(err));
    assert_contains(err, file);
    assert_contains(err, "spec.defaultConfig.gatewayTopology.numTrustedProxies: \"many\" is not a whole number in "
                         "0..64");
}

/* MeshConfig's accessLog: true|false is short for accessLog: {enabled: true|false}, in the document where it is
 * written only (the same key in another document of the file is that document's own), with the same version as
 * the long form. */
static void test_access_log_shorthand(void **state)
{
    static const char head[] = "apiVersion: ringmesh.io/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\n";
    char dir[128], file[160], text[1024], long_version[64];

    tmp_dir("shorthand", dir, sizeof(dir));
    snprintf(file, sizeof(file), "%s/mesh.yaml", dir);
    snprintf(text, sizeof(text), "%sspec:\n  accessLog: {enabled: true}\n", head);
    write_file(file, text);
    rm_mesh_model_t *m = load_ok(dir);
    assert_int_equal(m->settings.access_log, 1);
    snprintf(long_version, sizeof(long_version), "%s", m->version);
    rm_mesh_model_unref(m);

    snprintf(text, sizeof(text),
             "apiVersion: ringmesh.io/v1alpha1\nkind: Workload\nmetadata: {name: vm-1, namespace: shop}\n"
             "spec: {addresses: [198.18.0.9], accessLog: false}\n---\n%sspec:\n  accessLog: true  # short\n",
             head);
    write_file(file, text);
    m = load_ok(dir);
    assert_int_equal(m->settings.access_log, 1);
    assert_true(m->settings.access_log_sample == 1);
    rm_mesh_model_unref(m);

    snprintf(text, sizeof(text), "%sspec: {accessLog: \"true\"}\n", head);
    write_file(file, text);
    m = load_ok(dir);
    assert_int_equal(m->settings.access_log, 1);
    assert_string_equal(m->version, long_version);
    rm_mesh_model_unref(m);

    snprintf(text, sizeof(text), "%sspec: {accessLog: false, connectTimeout: 3s}\n", head);
    write_file(file, text);
    m = load_ok(dir);
    assert_int_equal(m->settings.access_log, 0);
    rm_mesh_model_unref(m);
}

int main(void)
{
    struct CMUnitTest tests[64];
    size_t n = 0;

    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_valid_directory);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_defaults_without_meshconfig);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_empty_directory);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_bad_arguments_and_io);
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_error_case, (void *)&error_cases[i]);
        tests[n++].name = error_cases[i].dir;
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_value_errors);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_files_read_and_skipped);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_version);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_canonical_serialization);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_path_normalization_setting);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_num_trusted_proxies_setting);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_access_log_shorthand);
    return _cmocka_run_group_tests("source_file_load", tests, n, group_setup, group_teardown);
}
