/* Issuance: root CAs and X.509-SVIDs made by x509_issue_wolfssl.c are parsed back and verified with the SVID
 * verifier; the fields the X509-SVID profile asks for are checked one by one. (tests/e2e/test_ringmeshctl_svid.sh
 * checks the same certificates with the openssl CLI.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ringmesh/error.h"
#include "ringmesh/svid.h"
#include "ringmesh/x509_issue.h"
#include "x509_internal.h"
#include "unit_asserts.h"

#define TD      "example.org"
#define LEAF_ID "spiffe://example.org/ns/shop/sa/orders"
#define T0      ((time_t)1800000000) /* 2027-01-15 */

typedef struct st_root_t {
    char *cert, *key;
    size_t cert_len, key_len;
    rm_x509_ca_t *ca;
} root_t;

static rm_x509_issue_opts_t opts_at(time_t now, int64_t ttl, int64_t backdate)
{
    rm_x509_issue_opts_t opts;

    rm_x509_issue_opts_init(&opts);
    opts.now = now;
    opts.ttl = ttl;
    opts.backdate = backdate;
    return opts;
}

static void make_root(root_t *r, const rm_x509_issue_opts_t *opts)
{
    assert_code(rm_x509_make_root_ca(TD, opts, &r->cert, &r->cert_len, &r->key, &r->key_len), 0);
    assert_int_equal(strlen(r->cert), r->cert_len);
    assert_int_equal(strlen(r->key), r->key_len);
    assert_code(rm_x509_ca_load_pem(&r->ca, r->cert, r->cert_len, r->key, r->key_len), 0);
}

static void free_root(root_t *r)
{
    rm_x509_ca_free(r->ca);
    free(r->cert);
    rm_x509_free_secret(r->key, r->key_len);
}

/* Cuts a PEM chain into DER certificates; returns how many. */
static size_t pem_certs(const char *pem, size_t len, rm__der_cert_t **certs)
{
    size_t n = 0;

    assert_code(rm__pem_to_der_certs(pem, len, certs, &n), 0);
    return n;
}

static void parse_pem(const char *pem, size_t len, rm_x509_info_t *info, size_t *num_certs)
{
    rm__der_cert_t *certs;
    size_t n = pem_certs(pem, len, &certs);

    assert_code(rm_x509_parse_der(certs[0].der, certs[0].len, info), 0);
    if (num_certs != NULL)
        *num_certs = n;
    rm__der_certs_free(certs, n);
}

/* Reads the TBSCertificate's serialNumber INTEGER of a DER certificate (short-form lengths inside, long-form
 * allowed for the two outer SEQUENCEs). */
static size_t read_serial(const uint8_t *der, size_t len, const uint8_t **serial)
{
    size_t i = 0, hdr;
    int level;

    for (level = 0; level != 2; ++level) { /* Certificate, TBSCertificate */
        assert_true(i + 2 <= len && der[i] == 0x30);
        hdr = 2 + ((der[i + 1] & 0x80) ? (der[i + 1] & 0x7f) : 0);
        i += hdr;
    }
    assert_int_equal(der[i], 0xa0); /* [0] version */
    i += 2 + der[i + 1];
    assert_int_equal(der[i], 0x02);
    *serial = der + i + 2;
    return der[i + 1];
}

static int verify_with(const root_t *r, const char *chain, size_t len, time_t now, const rm_svid_expect_t *expect,
                       rm_spiffe_id_t *id)
{
    rm_trust_bundle_t *bundle;
    int ret;

    assert_code(rm_trust_bundle_load_pem(&bundle, r->cert, r->cert_len), 0);
    ret = rm_svid_verify_pem(bundle, chain, len, now, expect, id);
    rm_trust_bundle_free(bundle);
    return ret;
}

static void test_opts_defaults(void **state)
{
    rm_x509_issue_opts_t opts;

    memset(&opts, 0xff, sizeof(opts));
    rm_x509_issue_opts_init(&opts);
    assert_int_equal(opts.now, 0);
    assert_int_equal(opts.ttl, 24 * 3600);
    assert_int_equal(opts.backdate, 5 * 60);
}

static void test_root_ca_fields(void **state)
{
    rm_x509_issue_opts_t opts = opts_at(T0, 48 * 3600, 600);
    rm_x509_info_t info;
    rm__der_cert_t *certs;
    root_t r = {0};
    size_t n;

    make_root(&r, &opts);
    assert_non_null(strstr(r.cert, "-----BEGIN CERTIFICATE-----"));
    assert_non_null(strstr(r.key, "-----BEGIN PRIVATE KEY-----"));
    parse_pem(r.cert, r.cert_len, &info, &n);
    assert_int_equal(n, 1);
    assert_int_equal(info.is_ca, 1);
    assert_int_equal(info.has_key_usage, 1);
    assert_int_equal(info.key_usage, RM_KU_KEY_CERT_SIGN | RM_KU_CRL_SIGN);
    assert_int_equal(info.num_uris, 1);
    assert_string_equal(info.uris[0], "spiffe://" TD);
    assert_int_equal(info.not_before, T0 - 600);
    assert_int_equal(info.not_after, T0 - 600 + 48 * 3600);
    assert_code(rm_svid_check_signer(&info), 0);
    /* self-signed: it is its own issuer */
    n = pem_certs(r.cert, r.cert_len, &certs);
    assert_int_equal(rm__x509_is_self_issued(certs[0].der, certs[0].len), 1);
    rm__der_certs_free(certs, n);
    free_root(&r);
}

static void test_root_rejects_bad_trust_domain(void **state)
{
    rm_x509_issue_opts_t opts = opts_at(T0, 3600, 0);
    char *cert = (char *)1, *key = (char *)1;
    size_t cert_len, key_len;

    assert_code(rm_x509_make_root_ca("Example.org", &opts, &cert, &cert_len, &key, &key_len), RM_ERR_SPIFFE_TD_CHARS);
    assert_null(cert);
    assert_null(key);
    assert_code(rm_x509_make_root_ca("", &opts, &cert, &cert_len, &key, &key_len), RM_ERR_SPIFFE_EMPTY_TD);
    assert_code(rm_x509_make_root_ca("a:1", &opts, &cert, &cert_len, &key, &key_len), RM_ERR_SPIFFE_TD_CHARS);
}

static void test_svid_fields(void **state)
{
    rm_x509_issue_opts_t opts = opts_at(T0, 3600, 300);
    rm_svid_expect_t expect = {.trust_domain = TD};
    rm_x509_info_t info;
    rm_spiffe_id_t id;
    root_t r = {0};
    char *cert, *key;
    size_t cert_len, key_len, n;

    make_root(&r, &opts);
    assert_code(rm_x509_issue_svid(r.ca, LEAF_ID, &opts, &cert, &cert_len, &key, &key_len), 0);
    assert_non_null(strstr(key, "-----BEGIN PRIVATE KEY-----"));
    parse_pem(cert, cert_len, &info, &n);
    assert_int_equal(n, 1); /* signed by a root: the root is not sent */
    assert_int_equal(info.is_ca, 0);
    assert_int_equal(info.has_key_usage, 1);
    assert_int_equal(info.key_usage, RM_KU_DIGITAL_SIGNATURE);
    assert_int_equal(info.num_uris, 1);
    assert_string_equal(info.uris[0], LEAF_ID);
    assert_int_equal(info.not_before, T0 - 300);
    assert_int_equal(info.not_after, T0 - 300 + 3600);
    assert_code(rm_svid_check_leaf(&info, T0, &expect, NULL), 0);
    assert_code(verify_with(&r, cert, cert_len, T0, &expect, &id), 0);
    assert_string_equal(id.str, LEAF_ID);
    free(cert);
    rm_x509_free_secret(key, key_len);
    free_root(&r);
}

static void test_svid_serials_are_random(void **state)
{
    rm_x509_issue_opts_t opts = opts_at(T0, 3600, 300);
    const uint8_t *serial[2];
    size_t serial_len[2];
    rm__der_cert_t *certs[2];
    root_t r = {0};
    char *cert, *key;
    size_t cert_len, key_len, n[2];
    int i;

    make_root(&r, &opts);
    for (i = 0; i != 2; ++i) {
        assert_code(rm_x509_issue_svid(r.ca, LEAF_ID, &opts, &cert, &cert_len, &key, &key_len), 0);
        n[i] = pem_certs(cert, cert_len, &certs[i]);
        serial_len[i] = read_serial(certs[i][0].der, certs[i][0].len, &serial[i]);
        /* at least 128 bits, positive, and no padding octet */
        assert_true(serial_len[i] >= 17);
        assert_true(serial[i][0] != 0 && (serial[i][0] & 0x80) == 0);
        free(cert);
        rm_x509_free_secret(key, key_len);
    }
    assert_false(serial_len[0] == serial_len[1] && memcmp(serial[0], serial[1], serial_len[0]) == 0);
    rm__der_certs_free(certs[0], n[0]);
    rm__der_certs_free(certs[1], n[1]);
    free_root(&r);
}

static void test_svid_expired_by_backdate(void **state)
{
    rm_x509_issue_opts_t opts = opts_at(T0, 3600, 7200);
    root_t r = {0};
    rm_x509_issue_opts_t root_opts = opts_at(T0, 86400, 86400);
    char *cert, *key;
    size_t cert_len, key_len;

    make_root(&r, &root_opts);
    assert_code(rm_x509_issue_svid(r.ca, LEAF_ID, &opts, &cert, &cert_len, &key, &key_len), 0);
    assert_code(verify_with(&r, cert, cert_len, T0, NULL, NULL), RM_ERR_SVID_EXPIRED);
    assert_code(verify_with(&r, cert, cert_len, T0 - 5400, NULL, NULL), 0);
    free(cert);
    rm_x509_free_secret(key, key_len);
    free_root(&r);
}

static void test_sign_given_public_key(void **state)
{
    rm_x509_issue_opts_t opts = opts_at(T0, 3600, 300);
    rm_spiffe_id_t id;
    root_t r = {0};
    rm__der_cert_t *certs;
    uint8_t *spki;
    char *key, *cert;
    size_t key_len, spki_len, cert_len, n;

    make_root(&r, &opts);
    assert_code(rm_x509_generate_key(&key, &key_len, &spki, &spki_len), 0);
    assert_int_equal(spki_len, 91); /* SEQUENCE { id-ecPublicKey prime256v1, 65-byte point } */
    assert_non_null(strstr(key, "-----BEGIN PRIVATE KEY-----"));
    rm_x509_free_secret(key, key_len);
    assert_code(rm_x509_sign_svid(r.ca, spki, spki_len, "spiffe://example.org/ns/a/sa/b", &opts, &cert, &cert_len), 0);
    assert_code(verify_with(&r, cert, cert_len, T0, NULL, &id), 0);
    assert_string_equal(id.str, "spiffe://example.org/ns/a/sa/b");
    /* the certificate carries exactly the key it was asked to sign */
    n = pem_certs(cert, cert_len, &certs);
    assert_non_null(memmem(certs[0].der, certs[0].len, spki, spki_len));
    rm__der_certs_free(certs, n);
    free(cert);

    /* the identity is checked; the key must be P-256 */
    cert = (char *)1;
    assert_code(rm_x509_sign_svid(r.ca, spki, spki_len, "spiffe://example.org/a/../b", &opts, &cert, &cert_len),
                RM_ERR_SPIFFE_DOT_SEGMENT);
    assert_null(cert);
    assert_code(rm_x509_sign_svid(r.ca, spki, spki_len - 1, LEAF_ID, &opts, &cert, &cert_len), RM_ERR_SVID_KEY_TYPE);
    spki[spki_len - 1] ^= 1; /* a point off the curve */
    assert_code(rm_x509_sign_svid(r.ca, spki, spki_len, LEAF_ID, &opts, &cert, &cert_len), RM_ERR_SVID_KEY_TYPE);
    assert_code(rm_x509_issue_svid(r.ca, "https://example.org/x", &opts, &cert, &cert_len, &key, &key_len),
                RM_ERR_SPIFFE_SCHEME);
    free(spki);
    free_root(&r);
}

static void test_long_id_round_trip(void **state)
{
    rm_x509_issue_opts_t opts = opts_at(T0, 3600, 300);
    rm_spiffe_id_t id;
    char long_id[RM_SPIFFE_ID_MAX + 1];
    root_t r = {0};
    char *cert, *key;
    size_t cert_len, key_len, len;

    /* lengths above 255 inside the SAN, the extensions and the TBS */
    len = (size_t)snprintf(long_id, sizeof(long_id), "spiffe://%s", TD);
    while (len + 100 < RM_SPIFFE_ID_MAX) {
        long_id[len++] = '/';
        memset(long_id + len, 'x', 98);
        len += 98;
    }
    long_id[len] = '\0';
    make_root(&r, &opts);
    assert_code(rm_x509_issue_svid(r.ca, long_id, &opts, &cert, &cert_len, &key, &key_len), 0);
    assert_code(verify_with(&r, cert, cert_len, T0, NULL, &id), 0);
    assert_string_equal(id.str, long_id);
    free(cert);
    rm_x509_free_secret(key, key_len);
    free_root(&r);
}

static void test_dates_after_2049(void **state)
{
    /* NotAfter in 2050 must switch to GeneralizedTime */
    rm_x509_issue_opts_t opts = opts_at((time_t)2524604400, 7200, 0); /* 2049-12-31T23:00:00Z */
    rm_x509_info_t info;
    root_t r = {0};

    make_root(&r, &opts);
    parse_pem(r.cert, r.cert_len, &info, NULL);
    assert_int_equal(info.not_before, (time_t)2524604400);
    assert_int_equal(info.not_after, (time_t)2524604400 + 7200);
    free_root(&r);
}

static void test_bad_opts(void **state)
{
    rm_x509_issue_opts_t opts = opts_at(T0, 0, 300);
    root_t r = {0};
    rm_x509_issue_opts_t good = opts_at(T0, 3600, 300);
    char *cert, *key;
    size_t cert_len, key_len;

    make_root(&r, &good);
    assert_code(rm_x509_issue_svid(r.ca, LEAF_ID, &opts, &cert, &cert_len, &key, &key_len), -EINVAL);
    assert_null(key);
    opts = opts_at(T0, 3600, -1);
    assert_code(rm_x509_issue_svid(r.ca, LEAF_ID, &opts, &cert, &cert_len, &key, &key_len), -EINVAL);
    assert_code(rm_x509_make_root_ca(TD, &opts, &cert, &cert_len, &key, &key_len), -EINVAL);
    free_root(&r);
}

static void test_ca_load_checks(void **state)
{
    rm_x509_issue_opts_t opts = opts_at(T0, 3600, 300);
    root_t a = {0}, b = {0};
    rm_x509_ca_t *ca = (rm_x509_ca_t *)1;
    char *cert, *key;
    size_t cert_len, key_len;

    make_root(&a, &opts);
    make_root(&b, &opts);
    /* another root's key */
    assert_code(rm_x509_ca_load_pem(&ca, a.cert, a.cert_len, b.key, b.key_len), RM_ERR_SVID_CA_KEY);
    assert_null(ca);
    assert_code(rm_x509_ca_load_pem(&ca, a.cert, a.cert_len, "junk", 4), RM_ERR_SVID_CA_KEY);
    assert_code(rm_x509_ca_load_pem(&ca, "junk", 4, a.key, a.key_len), RM_ERR_SVID_PARSE);
    /* an SVID cannot sign */
    assert_code(rm_x509_issue_svid(a.ca, LEAF_ID, &opts, &cert, &cert_len, &key, &key_len), 0);
    assert_code(rm_x509_ca_load_pem(&ca, cert, cert_len, key, key_len), RM_ERR_SVID_CA_NOT_CA);
    free(cert);
    rm_x509_free_secret(key, key_len);
    /* the matching key loads (PKCS#8 here; the SEC1 form is checked by the end-to-end test with openssl) */
    assert_code(rm_x509_ca_load_pem(&ca, a.cert, a.cert_len, a.key, a.key_len), 0);
    rm_x509_ca_free(ca);
    free_root(&a);
    free_root(&b);
}

static void test_write_file_modes(void **state)
{
    char dir[] = "/tmp/rm-test-issue-XXXXXX", path[64], buf[32];
    struct stat st;
    mode_t old_umask;
    int fd;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/key.pem", dir);
    old_umask = umask(0);
    assert_code(rm_x509_write_file(path, "secret", 6, 1), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* an existing world-readable file is replaced, not reused */
    assert_int_equal(chmod(path, 0666), 0);
    assert_code(rm_x509_write_file(path, "secret2", 7, 1), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 7);
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, sizeof(buf)), 7);
    assert_memory_equal(buf, "secret2", 7);
    close(fd);
    snprintf(path, sizeof(path), "%s/cert.pem", dir);
    assert_code(rm_x509_write_file(path, "public", 6, 0), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    umask(old_umask);
    snprintf(path, sizeof(path), "%s/missing/key.pem", dir);
    assert_code(rm_x509_write_file(path, "x", 1, 1), -ENOENT);

    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    assert_int_equal(system(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opts_defaults),
        cmocka_unit_test(test_root_ca_fields),
        cmocka_unit_test(test_root_rejects_bad_trust_domain),
        cmocka_unit_test(test_svid_fields),
        cmocka_unit_test(test_svid_serials_are_random),
        cmocka_unit_test(test_svid_expired_by_backdate),
        cmocka_unit_test(test_sign_given_public_key),
        cmocka_unit_test(test_long_id_round_trip),
        cmocka_unit_test(test_dates_after_2049),
        cmocka_unit_test(test_bad_opts),
        cmocka_unit_test(test_ca_load_checks),
        cmocka_unit_test(test_write_file_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
