/* What the control plane CA signs (control/ca.c): SVIDs from CSRs, each field checked on its own with ringmesh's
 * parser and with the openssl CLI, TTLs, refusals and concurrent signing; the control plane's serving certificate
 * and the rules for its DNS SANs. Foreign CSRs are made with the openssl CLI; tests that need it skip without it. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
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
