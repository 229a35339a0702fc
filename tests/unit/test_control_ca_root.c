/* The control plane CA's root (control/ca.c): generated and persisted in a state directory, or read from files with
 * an intermediate and extra roots, and every way those can be refused. Intermediates are made with the openssl CLI;
 * tests that need it skip without it. */
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
#include "ca_fixtures.h"
#include "ringmesh/csr.h"
#include "ringmesh/error.h"
#include "ringmesh/svid.h"
#include "ringmesh/x509_issue.h"
#include "unit_asserts.h"
#include "x509_internal.h"

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

/* ---- expiry ------------------------------------------------------------------------------------------------ */

/* notAfter of the first certificate of `file` (work directory) as the openssl CLI reads it, in Unix seconds. */
static int64_t openssl_not_after(const char *file)
{
    char *out;
    long long v;

    assert_int_equal(sh("date -d \"$(openssl x509 -in %s -noout -enddate | cut -d= -f2)\" +%%s", file), 0);
    out = output();
    assert_int_equal(sscanf(out, "%lld", &v), 1);
    free(out);
    return (int64_t)v;
}

/* The CA's expiry is the earliest notAfter of the signing certificate and those above it; a root only trusted (being
 * rotated out) does not count, however soon it ends. */
static void test_not_after(void **state)
{
    rm_ca_t *ca;
    char err[ERRLEN];
    int ret;

    need_openssl();
    /* a generated root */
    make_root_files("alone");
    assert_code(open_files(&ca, "alone.pem", "alone.key", NULL, err), 0);
    assert_int_equal(rm_ca_not_after(ca), openssl_not_after("alone.pem"));
    rm_ca_free(ca);

    /* an intermediate that outlives its root (openssl does not shorten it): the root ends first */
    assert_int_equal(
        sh("openssl ecparam -name prime256v1 -genkey -noout -out lroot.key && "
           "openssl req -x509 -new -key lroot.key -subj /O=test/CN=root -days 20 "
           "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out lroot.pem && "
           "openssl ecparam -name prime256v1 -genkey -noout -out lint.key && "
           "openssl req -new -key lint.key -subj /O=test/CN=intermediate -out lint.csr && "
           "printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign,cRLSign\\n' >lint.ext && "
           "openssl x509 -req -in lint.csr -CA lroot.pem -CAkey lroot.key -CAcreateserial -days 40 -extfile lint.ext "
           "-out lint.pem && cat lint.pem lroot.pem >lint-chain.pem"),
        0);
    if ((ret = open_files(&ca, "lint-chain.pem", "lint.key", NULL, err)) != 0)
        fail_msg("rm_ca_open: %s: %s", rm_strerror(ret), err);
    assert_true(openssl_not_after("lint.pem") > openssl_not_after("lroot.pem"));
    assert_int_equal(rm_ca_not_after(ca), openssl_not_after("lroot.pem"));
    rm_ca_free(ca);

    /* an extra root ending tomorrow leaves the expiry at the signing root's */
    assert_int_equal(sh("openssl ecparam -name prime256v1 -genkey -noout -out soon.key && "
                        "openssl req -x509 -new -key soon.key -subj /O=test/CN=old-root -days 1 "
                        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign "
                        "-out soon.pem"),
                     0);
    assert_code(open_files(&ca, "alone.pem", "alone.key", "soon.pem", err), 0);
    assert_true(openssl_not_after("soon.pem") < openssl_not_after("alone.pem"));
    assert_int_equal(rm_ca_not_after(ca), openssl_not_after("alone.pem"));
    rm_ca_free(ca);
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
        cmocka_unit_test(test_not_after),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
