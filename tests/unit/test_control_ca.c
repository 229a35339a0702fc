/* The control plane's CA: where its root comes from (generated and persisted, or files with an intermediate and
 * extra roots), and the SVIDs it signs from CSRs, each field checked on its own, with ringmesh's parser and with
 * the openssl CLI. Intermediates, foreign keys and CSRs are made with the openssl CLI; tests that need it skip
 * without it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ca.h"
#include "ringmesh/csr.h"
#include "ringmesh/error.h"
#include "ringmesh/svid.h"
#include "ringmesh/x509_issue.h"
#include "x509_internal.h"

#define TD       "example.org"
#define LEAF_ID  "spiffe://example.org/ns/shop/sa/orders"
#define OTHER_ID "spiffe://evil.example/ns/kube-system/sa/admin"
#define OTHER_CN "spiffe:\\/\\/evil.example\\/ns\\/kube-system\\/sa\\/admin" /* '/' escaped for -subj */
#define SERVE_ID "spiffe://example.org/ringmesh/control"
#define BACKDATE (5 * 60)
#define ERRLEN   512

static char work_dir[64];

#define assert_code(expr, code)                                                                                        \
    do {                                                                                                               \
        int ret_ = (expr);                                                                                             \
        if (ret_ != (code))                                                                                            \
            fail_msg("%s: got %d (%s), want %d (%s)", #expr, ret_, rm_strerror(ret_), (code), rm_strerror(code));      \
    } while (0)

#define assert_contains(hay, needle)                                                                                   \
    do {                                                                                                               \
        if (strstr((hay), (needle)) == NULL)                                                                           \
            fail_msg("\"%s\" not found in:\n%s", (needle), (hay));                                                     \
    } while (0)

/* ---- helpers ------------------------------------------------------------------------------------------------ */

static int have_openssl(void)
{
    return system("command -v openssl >/dev/null 2>&1") == 0;
}

static void need_openssl(void)
{
    if (!have_openssl()) {
        fprintf(stderr, "the openssl binary is not installed: this test is skipped\n");
        skip();
    }
}

static void path_of(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", work_dir, name);
}

/* Runs a shell command in the work directory with its output in the file "out"; returns the exit status. */
static int sh(const char *fmt, ...)
{
    char cmd[4096], full[4200];
    va_list ap;
    int n, status;

    va_start(ap, fmt);
    n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(cmd));
    snprintf(full, sizeof(full), "cd '%s' && { %s ; } >out 2>&1", work_dir, cmd);
    status = system(full);
    return status == -1 ? -1 : WEXITSTATUS(status);
}

static char *read_file(const char *name, size_t *len)
{
    char path[256];
    FILE *f;
    char *buf;
    long n;

    path_of(path, sizeof(path), name);
    if ((f = fopen(path, "rb")) == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len != NULL)
        *len = (size_t)n;
    return buf;
}

static void write_file(const char *name, const char *data, size_t len)
{
    char path[256];
    FILE *f;

    path_of(path, sizeof(path), name);
    assert_non_null(f = fopen(path, "wb"));
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static char *output(void)
{
    return read_file("out", NULL);
}

static mode_t mode_of(const char *name)
{
    char path[256];
    struct stat st;

    path_of(path, sizeof(path), name);
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static void config_init(rm_ca_config_t *cfg, const char *state_dir)
{
    static char dir[256];

    memset(cfg, 0, sizeof(*cfg));
    cfg->trust_domain = TD;
    if (state_dir != NULL) {
        path_of(dir, sizeof(dir), state_dir);
        cfg->state_dir = dir;
    }
}

/* Opens a CA from files of the work directory (NULL: not given). */
static int open_files(rm_ca_t **ca, const char *cert, const char *key, const char *extra, char *err)
{
    static char cert_path[256], key_path[256], extra_path[256];
    rm_ca_config_t cfg;

    config_init(&cfg, NULL);
    if (cert != NULL) {
        path_of(cert_path, sizeof(cert_path), cert);
        cfg.cert_file = cert_path;
    }
    if (key != NULL) {
        path_of(key_path, sizeof(key_path), key);
        cfg.key_file = key_path;
    }
    if (extra != NULL) {
        path_of(extra_path, sizeof(extra_path), extra);
        cfg.extra_roots_file = extra_path;
    }
    return rm_ca_open(&cfg, ca, err, ERRLEN);
}

static size_t pem_certs(const char *pem, size_t len, rm__der_cert_t **certs)
{
    size_t n = 0;

    assert_code(rm__pem_to_der_certs(pem, len, certs, &n), 0);
    return n;
}

/* Asserts that the PEM certificates of `a` and `b` are the same DER certificates, in order. */
static void assert_same_certs(const char *a, const char *b)
{
    rm__der_cert_t *ca_, *cb;
    size_t na = pem_certs(a, strlen(a), &ca_), nb = pem_certs(b, strlen(b), &cb), i;

    assert_int_equal(na, nb);
    for (i = 0; i != na; ++i) {
        assert_int_equal(ca_[i].len, cb[i].len);
        assert_memory_equal(ca_[i].der, cb[i].der, ca_[i].len);
    }
    rm__der_certs_free(ca_, na);
    rm__der_certs_free(cb, nb);
}

static void parse_leaf(const char *chain, rm_x509_info_t *info, size_t *num_certs)
{
    rm__der_cert_t *certs;
    size_t n = pem_certs(chain, strlen(chain), &certs);

    assert_code(rm_x509_parse_der(certs[0].der, certs[0].len, info), 0);
    if (num_certs != NULL)
        *num_certs = n;
    rm__der_certs_free(certs, n);
}

static int verify_with_bundle(const char *bundle_pem, const char *chain, rm_spiffe_id_t *id)
{
    rm_trust_bundle_t *bundle;
    int ret;

    assert_code(rm_trust_bundle_load_pem(&bundle, bundle_pem, strlen(bundle_pem)), 0);
    ret = rm_svid_verify_pem(bundle, chain, strlen(chain), time(NULL), NULL, id);
    rm_trust_bundle_free(bundle);
    return ret;
}

/* A root CA made by ringmesh's issuer, written as <name>.pem and <name>.key. */
static void make_root_files(const char *name)
{
    rm_x509_issue_opts_t opts;
    char *cert, *key, file[64];
    size_t cert_len, key_len;

    rm_x509_issue_opts_init(&opts);
    opts.ttl = 30 * 24 * 3600;
    assert_code(rm_x509_make_root_ca(TD, &opts, &cert, &cert_len, &key, &key_len), 0);
    snprintf(file, sizeof(file), "%s.pem", name);
    write_file(file, cert, cert_len);
    snprintf(file, sizeof(file), "%s.key", name);
    write_file(file, key, key_len);
    free(cert);
    rm_x509_free_secret(key, key_len);
}

/* A root (root.pem/.key) and an intermediate under it (int.pem/.key), made with the openssl CLI. */
static void make_openssl_intermediate(void)
{
    assert_int_equal(
        sh("openssl ecparam -name prime256v1 -genkey -noout -out root.key && "
           "openssl req -x509 -new -key root.key -subj /O=test/CN=root -days 30 "
           "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out root.pem && "
           "openssl ecparam -name prime256v1 -genkey -noout -out int.key && "
           "openssl req -new -key int.key -subj /O=test/CN=intermediate -out int.csr && "
           "printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign,cRLSign\\n"
           "subjectKeyIdentifier=hash\\nauthorityKeyIdentifier=keyid\\n' >int.ext && "
           "openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial -days 30 -extfile int.ext "
           "-out int.pem && cat int.pem root.pem >int-chain.pem"),
        0);
}

/* A P-256 key (csr.key) and a CSR for it (csr.pem) made with the openssl CLI, asking for OTHER_ID. */
static char *openssl_csr(size_t *len)
{
    assert_int_equal(sh("openssl ecparam -name prime256v1 -genkey -noout -out csr.key && "
                        "openssl req -new -key csr.key -subj '/CN=%s' -addext subjectAltName=URI:%s -out csr.pem",
                        OTHER_CN, OTHER_ID),
                     0);
    return read_file("csr.pem", len);
}

/* A CSR made by rm_csr_make() for a fresh key. */
static char *ringmesh_csr(size_t *len)
{
    uint8_t *spki;
    char *key, *csr;
    size_t key_len, spki_len;

    assert_code(rm_x509_generate_key(&key, &key_len, &spki, &spki_len), 0);
    assert_code(rm_csr_make(key, key_len, OTHER_ID, &csr, len), 0);
    free(spki);
    rm_x509_free_secret(key, key_len);
    return csr;
}

/* A CA with a generated root in a fresh state directory. */
static rm_ca_t *open_generated(const char *state_dir, int64_t default_ttl, int64_t max_ttl)
{
    rm_ca_config_t cfg;
    rm_ca_t *ca;
    char err[ERRLEN];
    int ret;

    config_init(&cfg, state_dir);
    cfg.default_ttl = default_ttl;
    cfg.max_ttl = max_ttl;
    if ((ret = rm_ca_open(&cfg, &ca, err, sizeof(err))) != 0)
        fail_msg("rm_ca_open: %s: %s", rm_strerror(ret), err);
    return ca;
}

/* Reads the serialNumber INTEGER of a DER certificate (short-form lengths inside the TBS). */
static size_t read_serial(const uint8_t *der, size_t len, const uint8_t **serial)
{
    size_t i = 0;
    int level;

    for (level = 0; level != 2; ++level) { /* Certificate, TBSCertificate */
        assert_true(i + 2 <= len && der[i] == 0x30);
        i += 2 + ((der[i + 1] & 0x80) ? (der[i + 1] & 0x7f) : 0);
    }
    assert_int_equal(der[i], 0xa0); /* [0] version */
    i += 2 + der[i + 1];
    assert_int_equal(der[i], 0x02);
    *serial = der + i + 2;
    return der[i + 1];
}

/* ---- generated root ----------------------------------------------------------------------------------------- */

static void test_generate_and_persist(void **state)
{
    rm_ca_t *a, *b;
    rm_ca_issued_t issued;
    rm_spiffe_id_t id;
    mode_t old_umask = umask(022);
    char err[ERRLEN], *cert_file, *key_file, *key_again, *csr;
    size_t len, csr_len;

    a = open_generated("state", 0, 0);
    umask(old_umask);
    assert_string_equal(rm_ca_trust_domain(a), TD);
    assert_int_equal(mode_of("state"), 0700);
    assert_int_equal(mode_of("state/ca-key.pem"), 0600);
    assert_int_equal(mode_of("state/ca-cert.pem"), 0644);
    cert_file = read_file("state/ca-cert.pem", NULL);
    key_file = read_file("state/ca-key.pem", NULL);
    assert_contains(key_file, "-----BEGIN PRIVATE KEY-----");
    /* the bundle is the generated root */
    assert_same_certs(rm_ca_bundle_pem(a, &len), cert_file);
    assert_int_equal(len, strlen(rm_ca_bundle_pem(a, NULL)));

    /* a second start loads the same root and leaves the files alone */
    b = open_generated("state", 0, 0);
    assert_string_equal(rm_ca_bundle_pem(b, NULL), rm_ca_bundle_pem(a, NULL));
    key_again = read_file("state/ca-key.pem", NULL);
    assert_string_equal(key_again, key_file);
    /* and signs with the same key: its SVIDs verify against the first one's bundle */
    csr = ringmesh_csr(&csr_len);
    assert_code(rm_ca_sign_csr(b, csr, csr_len, LEAF_ID, 0, &issued, err, sizeof(err)), 0);
    assert_code(verify_with_bundle(rm_ca_bundle_pem(a, NULL), issued.chain_pem, &id), 0);
    assert_string_equal(id.str, LEAF_ID);

    rm_ca_issued_free(&issued);
    free(csr);
    free(key_again);
    free(cert_file);
    free(key_file);
    rm_ca_free(a);
    rm_ca_free(b);
}

static void test_generate_refuses_half_written_state(void **state)
{
    rm_ca_config_t cfg;
    rm_ca_t *ca = (rm_ca_t *)1;
    char err[ERRLEN], *cert_file, *key_file, *still;

    rm_ca_free(open_generated("half", 0, 0));
    cert_file = read_file("half/ca-cert.pem", NULL);
    key_file = read_file("half/ca-key.pem", NULL);
    config_init(&cfg, "half");

    /* the key without its certificate */
    assert_int_equal(sh("rm half/ca-cert.pem"), 0);
    assert_code(rm_ca_open(&cfg, &ca, err, sizeof(err)), -ENOENT);
    assert_null(ca);
    assert_contains(err, "half/ca-cert.pem is missing");
    assert_int_equal(sh("test ! -e half/ca-cert.pem"), 0); /* not regenerated */
    still = read_file("half/ca-key.pem", NULL);
    assert_string_equal(still, key_file);
    free(still);

    /* the certificate without its key */
    write_file("half/ca-cert.pem", cert_file, strlen(cert_file));
    assert_int_equal(sh("rm half/ca-key.pem"), 0);
    assert_code(rm_ca_open(&cfg, &ca, err, sizeof(err)), -ENOENT);
    assert_contains(err, "half/ca-key.pem is missing");
    assert_int_equal(sh("test ! -e half/ca-key.pem"), 0);
    still = read_file("half/ca-cert.pem", NULL);
    assert_string_equal(still, cert_file);
    free(still);

    /* both back: it opens again */
    write_file("half/ca-key.pem", key_file, strlen(key_file));
    assert_code(rm_ca_open(&cfg, &ca, err, sizeof(err)), 0);
    rm_ca_free(ca);

    /* a key that is not the certificate's */
    write_file("half/ca-key.pem", "junk\n", 5);
    assert_code(rm_ca_open(&cfg, &ca, err, sizeof(err)), RM_ERR_SVID_CA_KEY);
    assert_contains(err, "half/ca-key.pem");
    free(cert_file);
    free(key_file);
}

static void test_generate_state_dir_errors(void **state)
{
    rm_ca_config_t cfg;
    rm_ca_t *ca = (rm_ca_t *)1;
    char err[ERRLEN];

    write_file("plain-file", "x", 1);
    config_init(&cfg, "plain-file");
    assert_code(rm_ca_open(&cfg, &ca, err, sizeof(err)), -ENOTDIR);
    assert_null(ca);
    assert_contains(err, "plain-file: not a directory");

    config_init(&cfg, "no-such-parent/state");
    assert_code(rm_ca_open(&cfg, &ca, err, sizeof(err)), -ENOENT);
    assert_contains(err, "no-such-parent/state");
}

static void test_config_errors(void **state)
{
    rm_ca_config_t cfg;
    rm_ca_t *ca = (rm_ca_t *)1;
    char err[ERRLEN];

    config_init(&cfg, "cfg-state");
    cfg.trust_domain = "Example.org";
    assert_code(rm_ca_open(&cfg, &ca, err, sizeof(err)), RM_ERR_SPIFFE_TD_CHARS);
    assert_null(ca);
    assert_contains(err, "Example.org");

    config_init(&cfg, "cfg-state");
    cfg.cert_file = "/nonexistent/cert.pem";
    assert_code(rm_ca_open(&cfg, &ca, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "key_file");

    config_init(&cfg, NULL);
    assert_code(rm_ca_open(&cfg, &ca, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "state_dir");

    config_init(&cfg, "cfg-state");
    cfg.default_ttl = 7200;
    cfg.max_ttl = 3600;
    assert_code(rm_ca_open(&cfg, &ca, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "default_ttl");

    config_init(&cfg, "cfg-state");
    cfg.default_ttl = 60;
    assert_code(rm_ca_open(&cfg, &ca, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "max_ttl (60 s)");

    /* none of these created anything */
    assert_int_equal(sh("test ! -e cfg-state"), 0);
}

/* ---- CA from files ------------------------------------------------------------------------------------------ */

static void test_files_root(void **state)
{
    rm_ca_t *ca;
    rm_ca_issued_t issued;
    rm_spiffe_id_t id;
    char err[ERRLEN], *root, *csr;
    size_t csr_len, n;
    rm_x509_info_t info;

    make_root_files("r1");
    assert_code(open_files(&ca, "r1.pem", "r1.key", NULL, err), 0);
    root = read_file("r1.pem", NULL);
    assert_same_certs(rm_ca_bundle_pem(ca, NULL), root);
    csr = ringmesh_csr(&csr_len);
    assert_code(rm_ca_sign_csr(ca, csr, csr_len, LEAF_ID, 0, &issued, err, sizeof(err)), 0);
    parse_leaf(issued.chain_pem, &info, &n);
    assert_int_equal(n, 1); /* signed by the root itself: nothing to send after the leaf */
    assert_code(verify_with_bundle(rm_ca_bundle_pem(ca, NULL), issued.chain_pem, &id), 0);
    rm_ca_issued_free(&issued);
    free(csr);
    free(root);
    rm_ca_free(ca);
}

static void test_files_intermediate(void **state)
{
    rm_ca_t *ca;
    rm_ca_issued_t issued;
    rm_spiffe_id_t id;
    rm__der_cert_t *chain, *inter;
    char err[ERRLEN], *root, *int_pem, *csr;
    size_t csr_len, n, n_inter;
    int ret;

    need_openssl();
    make_openssl_intermediate();
    if ((ret = open_files(&ca, "int-chain.pem", "int.key", NULL, err)) != 0)
        fail_msg("rm_ca_open: %s: %s", rm_strerror(ret), err);
    /* the bundle holds the root at the top of the file, and only it */
    root = read_file("root.pem", NULL);
    assert_same_certs(rm_ca_bundle_pem(ca, NULL), root);

    /* the chain is leaf, intermediate */
    csr = openssl_csr(&csr_len);
    assert_code(rm_ca_sign_csr(ca, csr, csr_len, LEAF_ID, 0, &issued, err, sizeof(err)), 0);
    n = pem_certs(issued.chain_pem, issued.chain_len, &chain);
    assert_int_equal(n, 2);
    int_pem = read_file("int.pem", NULL);
    n_inter = pem_certs(int_pem, strlen(int_pem), &inter);
    assert_int_equal(chain[1].len, inter[0].len);
    assert_memory_equal(chain[1].der, inter[0].der, inter[0].len);
    assert_code(verify_with_bundle(rm_ca_bundle_pem(ca, NULL), issued.chain_pem, &id), 0);
    assert_string_equal(id.str, LEAF_ID);
    /* and openssl agrees */
    write_file("leaf.pem", issued.chain_pem, issued.chain_len);
    assert_int_equal(sh("openssl verify -CAfile root.pem -untrusted int.pem leaf.pem"), 0);

    rm__der_certs_free(chain, n);
    rm__der_certs_free(inter, n_inter);
    rm_ca_issued_free(&issued);
    free(int_pem);
    free(csr);
    free(root);
    rm_ca_free(ca);
}

static void test_files_errors(void **state)
{
    rm_ca_t *ca = (rm_ca_t *)1;
    char err[ERRLEN], *cert, *key, *other_cert, *other_key;
    size_t cert_len, key_len, other_cert_len, other_key_len;
    rm_x509_issue_opts_t opts;
    rm_x509_ca_t *x;

    need_openssl();
    make_openssl_intermediate();
    make_root_files("other");

    /* the intermediate without the root above it */
    assert_code(open_files(&ca, "int.pem", "int.key", NULL, err), RM_ERR_SVID_UNTRUSTED);
    assert_null(ca);
    assert_contains(err, "int.pem: the signing CA does not chain to the root");
    /* the intermediate followed by a root that did not sign it */
    assert_int_equal(sh("cat int.pem other.pem >int-wrong-root.pem"), 0);
    assert_code(open_files(&ca, "int-wrong-root.pem", "int.key", NULL, err), RM_ERR_SVID_UNTRUSTED);
    assert_contains(err, "int-wrong-root.pem");
    /* another CA's key */
    assert_code(open_files(&ca, "int-chain.pem", "root.key", NULL, err), RM_ERR_SVID_CA_KEY);
    assert_contains(err, "root.key");
    /* missing files */
    assert_code(open_files(&ca, "missing.pem", "int.key", NULL, err), -ENOENT);
    assert_contains(err, "missing.pem: cannot open");
    assert_code(open_files(&ca, "int-chain.pem", "missing.key", NULL, err), -ENOENT);
    assert_contains(err, "missing.key: cannot open");
    /* not a certificate */
    write_file("junk.pem", "junk\n", 5);
    assert_code(open_files(&ca, "junk.pem", "int.key", NULL, err), RM_ERR_SVID_PARSE);
    assert_contains(err, "junk.pem: no readable certificate");
    /* an SVID cannot sign */
    rm_x509_issue_opts_init(&opts);
    other_cert = read_file("other.pem", &other_cert_len);
    other_key = read_file("other.key", &other_key_len);
    assert_code(rm_x509_ca_load_pem(&x, other_cert, other_cert_len, other_key, other_key_len), 0);
    free(other_cert);
    rm_x509_free_secret(other_key, other_key_len);
    assert_code(rm_x509_issue_svid(x, LEAF_ID, &opts, &cert, &cert_len, &key, &key_len), 0);
    rm_x509_ca_free(x);
    write_file("svid.pem", cert, cert_len);
    write_file("svid.key", key, key_len);
    free(cert);
    rm_x509_free_secret(key, key_len);
    assert_code(open_files(&ca, "svid.pem", "svid.key", NULL, err), RM_ERR_SVID_CA_NOT_CA);
    assert_contains(err, "svid.pem: the first certificate is not a CA");
    /* a P-384 root */
    assert_int_equal(sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout p384.key "
                        "-subj /O=test/CN=p384 -days 30 -addext keyUsage=critical,keyCertSign,cRLSign -out p384.pem"),
                     0);
    assert_code(open_files(&ca, "p384.pem", "p384.key", NULL, err), RM_ERR_SVID_KEY_TYPE);
    assert_contains(err, "p384.key");
}

static void test_extra_roots(void **state)
{
    rm_ca_t *ca, *old;
    rm_ca_issued_t issued, old_issued;
    rm__der_cert_t *bundle;
    rm_spiffe_id_t id;
    char err[ERRLEN], *csr, *expected, *current;
    size_t csr_len, n, len;
    int ret;

    make_root_files("current");
    make_root_files("old1");
    make_root_files("old2");
    assert_int_equal(sh("cat old1.pem old2.pem >extra.pem"), 0);
    if ((ret = open_files(&ca, "current.pem", "current.key", "extra.pem", err)) != 0)
        fail_msg("rm_ca_open: %s: %s", rm_strerror(ret), err);
    /* the signing root first, then each extra root */
    assert_int_equal(sh("cat current.pem old1.pem old2.pem >expected.pem"), 0);
    expected = read_file("expected.pem", &len);
    assert_same_certs(rm_ca_bundle_pem(ca, NULL), expected);
    n = pem_certs(rm_ca_bundle_pem(ca, NULL), strlen(rm_ca_bundle_pem(ca, NULL)), &bundle);
    assert_int_equal(n, 3);
    rm__der_certs_free(bundle, n);

    /* SVIDs of the current root and of an old one both verify against the bundle */
    csr = ringmesh_csr(&csr_len);
    assert_code(rm_ca_sign_csr(ca, csr, csr_len, LEAF_ID, 0, &issued, err, sizeof(err)), 0);
    assert_code(verify_with_bundle(rm_ca_bundle_pem(ca, NULL), issued.chain_pem, &id), 0);
    assert_code(open_files(&old, "old2.pem", "old2.key", NULL, err), 0);
    assert_code(rm_ca_sign_csr(old, csr, csr_len, LEAF_ID, 0, &old_issued, err, sizeof(err)), 0);
    assert_code(verify_with_bundle(rm_ca_bundle_pem(ca, NULL), old_issued.chain_pem, &id), 0);
    /* while without the extra roots the old SVID is not trusted */
    current = read_file("current.pem", NULL);
    assert_code(verify_with_bundle(current, old_issued.chain_pem, &id), RM_ERR_SVID_UNTRUSTED);
    free(current);

    rm_ca_issued_free(&issued);
    rm_ca_issued_free(&old_issued);
    free(expected);
    free(csr);
    rm_ca_free(old);
    rm_ca_free(ca);
}

static void test_extra_roots_refused(void **state)
{
    rm_ca_t *ca = (rm_ca_t *)1, *r;
    rm_ca_issued_t issued;
    char err[ERRLEN], *csr;
    size_t csr_len;

    make_root_files("cur");
    make_root_files("x1");
    /* the second certificate is an SVID, not a CA */
    assert_code(open_files(&r, "x1.pem", "x1.key", NULL, err), 0);
    csr = ringmesh_csr(&csr_len);
    assert_code(rm_ca_sign_csr(r, csr, csr_len, LEAF_ID, 0, &issued, err, sizeof(err)), 0);
    write_file("leaf.pem", issued.chain_pem, issued.chain_len);
    assert_int_equal(sh("cat x1.pem leaf.pem >extra-leaf.pem"), 0);
    assert_code(open_files(&ca, "cur.pem", "cur.key", "extra-leaf.pem", err), RM_ERR_SVID_CA_NOT_CA);
    assert_null(ca);
    assert_contains(err, "extra-leaf.pem: certificate 2 is not a CA");

    write_file("extra-empty.pem", "\n", 1);
    assert_code(open_files(&ca, "cur.pem", "cur.key", "extra-empty.pem", err), RM_ERR_SVID_PARSE);
    assert_contains(err, "extra-empty.pem: no certificate");
    assert_code(open_files(&ca, "cur.pem", "cur.key", "extra-missing.pem", err), -ENOENT);
    assert_contains(err, "extra-missing.pem");

    rm_ca_issued_free(&issued);
    free(csr);
    rm_ca_free(r);
}

/* ---- SVIDs from CSRs ---------------------------------------------------------------------------------------- */

static void test_svid_identity_is_the_attested_one(void **state)
{
    rm_ca_t *ca;
    rm_ca_issued_t issued;
    rm_x509_info_t info;
    rm_spiffe_id_t id;
    char err[ERRLEN], *csr, *text;
    size_t csr_len;

    need_openssl();
    ca = open_generated("svid-id", 0, 0);
    csr = openssl_csr(&csr_len); /* asks for OTHER_ID in its subject and SAN */
    assert_code(rm_ca_sign_csr(ca, csr, csr_len, LEAF_ID, 0, &issued, err, sizeof(err)), 0);
    parse_leaf(issued.chain_pem, &info, NULL);
    assert_int_equal(info.num_uris, 1);
    assert_string_equal(info.uris[0], LEAF_ID);
    write_file("leaf.pem", issued.chain_pem, issued.chain_len);
    assert_int_equal(sh("openssl x509 -in leaf.pem -noout -text"), 0);
    text = output();
    assert_null(strstr(text, "evil.example"));
    assert_contains(text, "URI:" LEAF_ID "\n");
    free(text);
    assert_code(verify_with_bundle(rm_ca_bundle_pem(ca, NULL), issued.chain_pem, &id), 0);
    assert_string_equal(id.str, LEAF_ID);
    rm_ca_issued_free(&issued);
    free(csr);
    rm_ca_free(ca);
}

static void test_svid_extensions(void **state)
{
    rm_ca_t *ca;
    rm_ca_issued_t issued;
    rm_x509_info_t info;
    char err[ERRLEN], *csr, *text;
    size_t csr_len;

    need_openssl();
    ca = open_generated("svid-ext", 0, 0);
    csr = openssl_csr(&csr_len);
    assert_code(rm_ca_sign_csr(ca, csr, csr_len, LEAF_ID, 0, &issued, err, sizeof(err)), 0);
    parse_leaf(issued.chain_pem, &info, NULL);
    assert_int_equal(info.is_ca, 0);
    assert_int_equal(info.has_key_usage, 1);
    assert_int_equal(info.key_usage, RM_KU_DIGITAL_SIGNATURE);

    write_file("leaf.pem", issued.chain_pem, issued.chain_len);
    assert_int_equal(sh("openssl x509 -in leaf.pem -noout -ext basicConstraints"), 0);
    text = output();
    assert_contains(text, "X509v3 Basic Constraints: critical\n    CA:FALSE\n");
    free(text);
    assert_int_equal(sh("openssl x509 -in leaf.pem -noout -ext keyUsage"), 0);
    text = output();
    assert_contains(text, "X509v3 Key Usage: critical\n    Digital Signature\n");
    free(text);
    assert_int_equal(sh("openssl x509 -in leaf.pem -noout -ext extendedKeyUsage"), 0);
    text = output();
    assert_contains(text, "\n    TLS Web Server Authentication, TLS Web Client Authentication\n");
    free(text);
    assert_int_equal(sh("openssl x509 -in leaf.pem -noout -ext subjectAltName"), 0);
    text = output();
    assert_contains(text, "X509v3 Subject Alternative Name: \n    URI:" LEAF_ID "\n");
    assert_null(strstr(text, ","));
    free(text);
    /* the key is the CSR's */
    assert_int_equal(sh("openssl x509 -in leaf.pem -noout -pubkey >leaf-pub.pem && "
                        "openssl pkey -in csr.key -pubout >csr-pub.pem && cmp leaf-pub.pem csr-pub.pem"),
                     0);
    rm_ca_issued_free(&issued);
    free(csr);
    rm_ca_free(ca);
}

static void test_svid_serials(void **state)
{
    rm_ca_t *ca = open_generated("svid-serial", 0, 0);
    rm_ca_issued_t issued[2];
    rm__der_cert_t *certs[2];
    const uint8_t *serial[2];
    size_t serial_len[2], n[2], csr_len;
    char err[ERRLEN], *csr = ringmesh_csr(&csr_len);
    int i;

    for (i = 0; i != 2; ++i) {
        /* the same CSR twice: only the serial tells the two apart */
        assert_code(rm_ca_sign_csr(ca, csr, csr_len, LEAF_ID, 0, &issued[i], err, sizeof(err)), 0);
        n[i] = pem_certs(issued[i].chain_pem, issued[i].chain_len, &certs[i]);
        serial_len[i] = read_serial(certs[i][0].der, certs[i][0].len, &serial[i]);
        /* not small: at least 128 bits, positive, no padding octet */
        assert_true(serial_len[i] >= 17);
        assert_true(serial[i][0] != 0 && (serial[i][0] & 0x80) == 0);
    }
    assert_false(serial_len[0] == serial_len[1] && memcmp(serial[0], serial[1], serial_len[0]) == 0);
    for (i = 0; i != 2; ++i) {
        rm__der_certs_free(certs[i], n[i]);
        rm_ca_issued_free(&issued[i]);
    }
    free(csr);
    rm_ca_free(ca);
}

/* Signs with `requested` and checks NotAfter - NotBefore against `want`, the reported dates against the
 * certificate's, and NotBefore against the backdate. */
static void check_ttl(rm_ca_t *ca, const char *csr, size_t csr_len, int64_t requested, int64_t want)
{
    rm_ca_issued_t issued;
    rm_x509_info_t info;
    char err[ERRLEN];
    time_t before, after;

    before = time(NULL);
    assert_code(rm_ca_sign_csr(ca, csr, csr_len, LEAF_ID, requested, &issued, err, sizeof(err)), 0);
    after = time(NULL);
    parse_leaf(issued.chain_pem, &info, NULL);
    /* the lifetime counts from the moment of signing; NotBefore is backdated on top of it */
    if ((int64_t)(info.not_after - info.not_before) != want + BACKDATE)
        fail_msg("requested %lld s: lifetime %lld s, want %lld s + %d s backdate", (long long)requested,
                 (long long)(info.not_after - info.not_before), (long long)want, BACKDATE);
    assert_true(info.not_after >= before + want && info.not_after <= after + want);
    assert_int_equal(issued.not_before, (int64_t)info.not_before);
    assert_int_equal(issued.not_after, (int64_t)info.not_after);
    /* backdated by 5 minutes from the moment of signing */
    assert_true(info.not_before >= before - BACKDATE && info.not_before <= after - BACKDATE);
    rm_ca_issued_free(&issued);
}

static void test_svid_ttl(void **state)
{
    rm_ca_t *ca = open_generated("svid-ttl", 7200, 86400);
    size_t csr_len;
    char *csr = ringmesh_csr(&csr_len);

    check_ttl(ca, csr, csr_len, 0, 7200);           /* none asked: the default */
    check_ttl(ca, csr, csr_len, 5000, 5000);        /* within bounds: as asked */
    check_ttl(ca, csr, csr_len, 60, RM_CA_MIN_TTL); /* below the minimum */
    check_ttl(ca, csr, csr_len, 299, RM_CA_MIN_TTL);
    check_ttl(ca, csr, csr_len, 300, 300);
    check_ttl(ca, csr, csr_len, -5, RM_CA_MIN_TTL);
    check_ttl(ca, csr, csr_len, 86400, 86400);
    check_ttl(ca, csr, csr_len, 86401, 86400); /* above the maximum */
    check_ttl(ca, csr, csr_len, 10 * 86400, 86400);
    rm_ca_free(ca);

    /* defaults: 24 h, which is also the maximum */
    ca = open_generated("svid-ttl-default", 0, 0);
    check_ttl(ca, csr, csr_len, 0, 24 * 3600);
    check_ttl(ca, csr, csr_len, 48 * 3600, 24 * 3600);
    rm_ca_free(ca);
    /* max_ttl 0 means the default_ttl */
    ca = open_generated("svid-ttl-max", 3600, 0);
    check_ttl(ca, csr, csr_len, 7200, 3600);
    rm_ca_free(ca);
    free(csr);
}

static void test_svid_refusals(void **state)
{
    rm_ca_t *ca;
    rm_ca_issued_t issued;
    char err[ERRLEN], *csr, *bad;
    size_t csr_len;

    need_openssl();
    ca = open_generated("svid-refuse", 0, 0);
    csr = ringmesh_csr(&csr_len);

    assert_code(rm_ca_sign_csr(ca, "junk", 4, LEAF_ID, 0, &issued, err, sizeof(err)), RM_ERR_CSR_PARSE);
    assert_null(issued.chain_pem);
    assert_contains(err, "not a readable PEM PKCS#10 request");
    assert_code(rm_ca_sign_csr(ca, "", 0, LEAF_ID, 0, &issued, err, sizeof(err)), RM_ERR_CSR_PARSE);

    /* a bad signature: one base64 character of the signature changed */
    bad = strdup(csr);
    bad[csr_len - 40] = bad[csr_len - 40] == 'A' ? 'B' : 'A';
    assert_code(rm_ca_sign_csr(ca, bad, csr_len, LEAF_ID, 0, &issued, err, sizeof(err)), RM_ERR_CSR_SIGNATURE);
    assert_contains(err, "not signed");
    free(bad);

    assert_int_equal(sh("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout p384.key "
                        "-subj /O=test -out p384.csr"),
                     0);
    bad = read_file("p384.csr", NULL);
    assert_code(rm_ca_sign_csr(ca, bad, strlen(bad), LEAF_ID, 0, &issued, err, sizeof(err)), RM_ERR_SVID_KEY_TYPE);
    assert_contains(err, "P-256");
    free(bad);

    /* the attested ID must be a SPIFFE ID of this trust domain */
    assert_code(rm_ca_sign_csr(ca, csr, csr_len, "spiffe://example.org/a/../b", 0, &issued, err, sizeof(err)),
                RM_ERR_SPIFFE_DOT_SEGMENT);
    assert_contains(err, "is not a SPIFFE ID");
    assert_code(rm_ca_sign_csr(ca, csr, csr_len, OTHER_ID, 0, &issued, err, sizeof(err)), RM_ERR_SVID_TRUST_DOMAIN);
    assert_contains(err, "not in this CA's trust domain");
    assert_null(issued.chain_pem);
    free(csr);
    rm_ca_free(ca);
}

/* Several threads sign at once; every SVID must come out whole and verify. */
typedef struct st_signer_arg_t {
    rm_ca_t *ca;
    const char *csr;
    size_t csr_len;
    int failures;
} signer_arg_t;

static void *sign_many(void *p)
{
    signer_arg_t *arg = p;
    rm_ca_issued_t issued;
    rm_spiffe_id_t id;
    rm_trust_bundle_t *bundle;
    char err[ERRLEN];
    int i;

    if (rm_trust_bundle_load_pem(&bundle, rm_ca_bundle_pem(arg->ca, NULL), strlen(rm_ca_bundle_pem(arg->ca, NULL))) !=
        0) {
        arg->failures = 1;
        return NULL;
    }
    for (i = 0; i != 8; ++i) {
        if (rm_ca_sign_csr(arg->ca, arg->csr, arg->csr_len, LEAF_ID, 0, &issued, err, sizeof(err)) != 0) {
            ++arg->failures;
            continue;
        }
        if (rm_svid_verify_pem(bundle, issued.chain_pem, issued.chain_len, time(NULL), NULL, &id) != 0 ||
            strcmp(id.str, LEAF_ID) != 0)
            ++arg->failures;
        rm_ca_issued_free(&issued);
    }
    rm_trust_bundle_free(bundle);
    return NULL;
}

static void test_svid_concurrent_signing(void **state)
{
    rm_ca_t *ca = open_generated("svid-threads", 0, 0);
    signer_arg_t args[4];
    pthread_t threads[4];
    size_t csr_len;
    char *csr = ringmesh_csr(&csr_len);
    int i;

    for (i = 0; i != 4; ++i) {
        args[i] = (signer_arg_t){.ca = ca, .csr = csr, .csr_len = csr_len};
        assert_int_equal(pthread_create(&threads[i], NULL, sign_many, &args[i]), 0);
    }
    for (i = 0; i != 4; ++i) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
    }
    free(csr);
    rm_ca_free(ca);
}

/* ---- the serving certificate and DNS SANs ------------------------------------------------------------------- */

static void test_serving_certificate(void **state)
{
    static const char *const names[] = {"ringmesh-control.ringmesh-system.svc",
                                        "ringmesh-control.ringmesh-system.svc.cluster.local", "localhost"};
    rm_ca_t *ca = open_generated("serving", 0, 0);
    rm_x509_info_t info;
    rm_spiffe_id_t id;
    char *cert, *key, *text;
    size_t cert_len, key_len;

    assert_code(rm_ca_issue_serving(ca, SERVE_ID, names, 3, 3600, &cert, &cert_len, &key, &key_len), 0);
    assert_int_equal(strlen(cert), cert_len);
    assert_contains(key, "-----BEGIN PRIVATE KEY-----");
    parse_leaf(cert, &info, NULL);
    assert_int_equal(info.num_uris, 1); /* DNS names are not URIs: still one URI SAN */
    assert_string_equal(info.uris[0], SERVE_ID);
    assert_int_equal(info.not_after - info.not_before, 3600 + BACKDATE);
    assert_code(verify_with_bundle(rm_ca_bundle_pem(ca, NULL), cert, &id), 0);
    assert_string_equal(id.str, SERVE_ID);

    if (have_openssl()) {
        write_file("serving.pem", cert, cert_len);
        write_file("serving.key", key, key_len);
        assert_int_equal(sh("openssl x509 -in serving.pem -noout -ext subjectAltName"), 0);
        text = output();
        assert_contains(text, "URI:" SERVE_ID ", DNS:ringmesh-control.ringmesh-system.svc, "
                              "DNS:ringmesh-control.ringmesh-system.svc.cluster.local, DNS:localhost\n");
        free(text);
        /* the key returned is the certificate's */
        assert_int_equal(sh("openssl x509 -in serving.pem -noout -pubkey >s1.pem && "
                            "openssl pkey -in serving.key -pubout >s2.pem && cmp s1.pem s2.pem"),
                         0);
        /* and a TLS client checking the host name accepts it */
        write_file("bundle.pem", rm_ca_bundle_pem(ca, NULL), strlen(rm_ca_bundle_pem(ca, NULL)));
        assert_int_equal(sh("openssl verify -CAfile bundle.pem -verify_hostname localhost serving.pem"), 0);
        assert_int_not_equal(sh("openssl verify -CAfile bundle.pem -verify_hostname other.example serving.pem"), 0);
    }
    free(cert);
    rm_x509_free_secret(key, key_len);

    /* without DNS names it is a plain SVID; no lifetime asked: the default */
    assert_code(rm_ca_issue_serving(ca, SERVE_ID, NULL, 0, 0, &cert, &cert_len, &key, &key_len), 0);
    parse_leaf(cert, &info, NULL);
    assert_int_equal(info.num_uris, 1);
    assert_int_equal(info.not_after - info.not_before, 24 * 3600 + BACKDATE);
    free(cert);
    rm_x509_free_secret(key, key_len);
    /* the control plane's own lifetime is not held to the sidecars' max_ttl (24 h here) */
    assert_code(rm_ca_issue_serving(ca, SERVE_ID, names, 3, 30 * 24 * 3600, &cert, &cert_len, &key, &key_len), 0);
    parse_leaf(cert, &info, NULL);
    assert_int_equal(info.not_after - info.not_before, 30 * 24 * 3600 + BACKDATE);
    free(cert);
    rm_x509_free_secret(key, key_len);
    assert_code(rm_ca_issue_serving(ca, SERVE_ID, names, 3, -1, &cert, &cert_len, &key, &key_len), -EINVAL);

    /* the ID is checked like a CSR's */
    cert = (char *)1;
    assert_code(rm_ca_issue_serving(ca, OTHER_ID, names, 3, 0, &cert, &cert_len, &key, &key_len),
                RM_ERR_SVID_TRUST_DOMAIN);
    assert_null(cert);
    rm_ca_free(ca);
}

static void test_dns_name_rules(void **state)
{
    static const char *const good[] = {
        "a",
        "localhost",
        "a-b.example",
        "x1.example.org",
        "EXAMPLE.org",
        "1a.example",
        "example.org1",
        /* a label of 63 */
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
    };
    static const char *const bad[] = {
        "",
        "-a.example",
        "a-.example",
        "a..example",
        ".example",
        "example.",
        "a_b.example",
        "*.example.org",
        "a b.example",
        "10.0.0.1",
        "example.123",
        "ex\xc3\xa4mple.org",
        "a:80",
        /* a label of 64 */
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
    };
    rm_ca_t *ca = open_generated("dns", 0, 0);
    const char *names[RM_X509_MAX_DNS_NAMES + 1], *one[1];
    char *cert, *key, long_name[RM_X509_DNS_NAME_MAX + 2];
    size_t cert_len, key_len, i;
    rm_x509_issue_opts_t opts;

    rm_x509_issue_opts_init(&opts);
    assert_null(opts.dns_names);
    assert_int_equal(opts.num_dns_names, 0);

    for (i = 0; i != sizeof(good) / sizeof(good[0]); ++i) {
        one[0] = good[i];
        if (rm_ca_issue_serving(ca, SERVE_ID, one, 1, 0, &cert, &cert_len, &key, &key_len) != 0)
            fail_msg("\"%s\" refused", good[i]);
        free(cert);
        rm_x509_free_secret(key, key_len);
    }
    for (i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        one[0] = bad[i];
        cert = (char *)1;
        if (rm_ca_issue_serving(ca, SERVE_ID, one, 1, 0, &cert, &cert_len, &key, &key_len) != -EINVAL)
            fail_msg("\"%s\" accepted", bad[i]);
        assert_null(cert);
        assert_null(key);
    }

    /* total length: 253 passes, 254 does not (labels of 63 and dots) */
    memset(long_name, 'a', sizeof(long_name));
    long_name[63] = long_name[127] = long_name[191] = '.';
    long_name[253] = '\0';
    one[0] = long_name;
    assert_code(rm_ca_issue_serving(ca, SERVE_ID, one, 1, 0, &cert, &cert_len, &key, &key_len), 0);
    free(cert);
    rm_x509_free_secret(key, key_len);
    long_name[253] = 'a';
    long_name[254] = '\0';
    assert_code(rm_ca_issue_serving(ca, SERVE_ID, one, 1, 0, &cert, &cert_len, &key, &key_len), -EINVAL);

    /* how many, and NULLs */
    for (i = 0; i != RM_X509_MAX_DNS_NAMES + 1; ++i)
        names[i] = "localhost";
    assert_code(rm_ca_issue_serving(ca, SERVE_ID, names, RM_X509_MAX_DNS_NAMES, 0, &cert, &cert_len, &key, &key_len),
                0);
    free(cert);
    rm_x509_free_secret(key, key_len);
    assert_code(
        rm_ca_issue_serving(ca, SERVE_ID, names, RM_X509_MAX_DNS_NAMES + 1, 0, &cert, &cert_len, &key, &key_len),
        -EINVAL);
    assert_code(rm_ca_issue_serving(ca, SERVE_ID, NULL, 1, 0, &cert, &cert_len, &key, &key_len), -EINVAL);
    one[0] = NULL;
    assert_code(rm_ca_issue_serving(ca, SERVE_ID, one, 1, 0, &cert, &cert_len, &key, &key_len), -EINVAL);
    rm_ca_free(ca);
}

/* The DNS names at the issuer's level: rm_x509_sign_svid() puts them in, roots refuse them. */
static void test_x509_dns_names(void **state)
{
    static const char *const names[] = {"svc.example"};
    rm_x509_issue_opts_t opts;
    rm_x509_ca_t *x;
    uint8_t *spki;
    char *root, *root_key, *key, *cert, *text;
    size_t root_len, root_key_len, key_len, spki_len, cert_len;

    rm_x509_issue_opts_init(&opts);
    assert_code(rm_x509_make_root_ca(TD, &opts, &root, &root_len, &root_key, &root_key_len), 0);
    assert_code(rm_x509_ca_load_pem(&x, root, root_len, root_key, root_key_len), 0);
    assert_code(rm_x509_generate_key(&key, &key_len, &spki, &spki_len), 0);
    opts.dns_names = names;
    opts.num_dns_names = 1;
    assert_code(rm_x509_sign_svid(x, spki, spki_len, LEAF_ID, &opts, &cert, &cert_len), 0);
    if (have_openssl()) {
        write_file("dns.pem", cert, cert_len);
        assert_int_equal(sh("openssl x509 -in dns.pem -noout -ext subjectAltName"), 0);
        text = output();
        assert_contains(text, "URI:" LEAF_ID ", DNS:svc.example\n");
        free(text);
    }
    free(cert);
    free(spki);
    rm_x509_free_secret(key, key_len);
    /* a root carries none */
    cert = (char *)1;
    assert_code(rm_x509_make_root_ca(TD, &opts, &cert, &cert_len, &key, &key_len), -EINVAL);
    assert_null(cert);
    assert_null(key);
    rm_x509_ca_free(x);
    free(root);
    rm_x509_free_secret(root_key, root_key_len);
}

/* ---- fixture ------------------------------------------------------------------------------------------------ */

static int make_dir(void **state)
{
    strcpy(work_dir, "/tmp/rm-test-ca-XXXXXX");
    return mkdtemp(work_dir) != NULL ? 0 : -1;
}

static int remove_dir(void **state)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_and_persist),
        cmocka_unit_test(test_generate_refuses_half_written_state),
        cmocka_unit_test(test_generate_state_dir_errors),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_files_root),
        cmocka_unit_test(test_files_intermediate),
        cmocka_unit_test(test_files_errors),
        cmocka_unit_test(test_extra_roots),
        cmocka_unit_test(test_extra_roots_refused),
        cmocka_unit_test(test_svid_identity_is_the_attested_one),
        cmocka_unit_test(test_svid_extensions),
        cmocka_unit_test(test_svid_serials),
        cmocka_unit_test(test_svid_ttl),
        cmocka_unit_test(test_svid_refusals),
        cmocka_unit_test(test_svid_concurrent_signing),
        cmocka_unit_test(test_serving_certificate),
        cmocka_unit_test(test_dns_name_rules),
        cmocka_unit_test(test_x509_dns_names),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
