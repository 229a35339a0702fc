/* The control plane CA opened from memory (a Kubernetes Secret's tls.crt, tls.key and ca.crt; control/ca.c) and the
 * base64 the Secret's data goes through (control/kube_ca_secret.c): what is accepted, what the bundle holds, and
 * that each refusal names the Secret and the key at fault. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "kube_cluster.h"
#include "ringmesh/error.h"
#include "ringmesh/x509_issue.h"

#define TD     "example.org"
#define ORIGIN "Secret ringmesh-system/corp-ca"

typedef struct st_pair_t {
    char *cert, *key;
    size_t cert_len, key_len;
} pair_t;

static pair_t make_root(const char *td)
{
    rm_x509_issue_opts_t opts;
    pair_t p;
    rm_x509_issue_opts_init(&opts);
    opts.ttl = 3600 * 24;
    assert_int_equal(rm_x509_make_root_ca(td, &opts, &p.cert, &p.cert_len, &p.key, &p.key_len), 0);
    return p;
}

static void pair_free(pair_t *p)
{
    free(p->cert);
    rm_x509_free_secret(p->key, p->key_len);
}

static int open_mem(const pair_t *signer, const char *key, size_t key_len, const char *roots, rm_ca_t **ca, char *err,
                    size_t errlen)
{
    rm_ca_config_t cfg = {.trust_domain = TD,
                          .cert_pem = signer->cert,
                          .cert_len = signer->cert_len,
                          .key_pem = key,
                          .key_len = key_len,
                          .roots_pem = roots,
                          .roots_len = roots != NULL ? strlen(roots) : 0,
                          .origin = ORIGIN};
    return rm_ca_open(&cfg, ca, err, errlen);
}

static size_t count_certs(const char *pem)
{
    size_t n = 0;
    for (const char *p = pem; (p = strstr(p, "-----BEGIN CERTIFICATE-----")) != NULL; p++)
        n++;
    return n;
}

static void test_secret_ca_used(void **state)
{
    pair_t a = make_root(TD);
    rm_ca_t *ca = NULL;
    char err[512];
    (void)state;

    assert_int_equal(open_mem(&a, a.key, a.key_len, a.cert, &ca, err, sizeof(err)), 0);
    assert_int_equal(count_certs(rm_ca_bundle_pem(ca, NULL)), 1); /* ca.crt's copy of the root is not doubled */
    assert_non_null(strstr(rm_ca_bundle_pem(ca, NULL), "-----BEGIN CERTIFICATE-----"));
    rm_ca_free(ca);
    /* without ca.crt: the root at the end of tls.crt */
    assert_int_equal(open_mem(&a, a.key, a.key_len, NULL, &ca, err, sizeof(err)), 0);
    assert_int_equal(count_certs(rm_ca_bundle_pem(ca, NULL)), 1);
    rm_ca_free(ca);
    pair_free(&a);
}

static void test_extra_roots_join_the_bundle(void **state)
{
    pair_t a = make_root(TD), old = make_root(TD);
    rm_ca_t *ca = NULL;
    char err[512], roots[8192];
    (void)state;

    snprintf(roots, sizeof(roots), "%s%s", old.cert, a.cert);
    assert_int_equal(open_mem(&a, a.key, a.key_len, roots, &ca, err, sizeof(err)), 0);
    assert_int_equal(count_certs(rm_ca_bundle_pem(ca, NULL)), 2);
    rm_ca_free(ca);
    pair_free(&a);
    pair_free(&old);
}

static void test_roots_without_the_chain_root_refused(void **state)
{
    pair_t a = make_root(TD), other = make_root(TD);
    rm_ca_t *ca = NULL;
    char err[512];
    (void)state;

    assert_int_not_equal(open_mem(&a, a.key, a.key_len, other.cert, &ca, err, sizeof(err)), 0);
    assert_null(ca);
    assert_non_null(strstr(err, ORIGIN " key ca.crt"));
    assert_non_null(strstr(err, "does not hold the root"));
    pair_free(&a);
    pair_free(&other);
}

static void test_wrong_key_refused(void **state)
{
    pair_t a = make_root(TD), other = make_root(TD);
    rm_ca_t *ca = NULL;
    char err[512];
    (void)state;

    assert_int_equal(open_mem(&a, other.key, other.key_len, NULL, &ca, err, sizeof(err)), RM_ERR_SVID_CA_KEY);
    assert_non_null(strstr(err, ORIGIN " key tls.key"));
    assert_null(strstr(err, "PRIVATE KEY")); /* the key never reaches a message */
    pair_free(&a);
    pair_free(&other);
}

static void test_other_trust_domain_refused(void **state)
{
    pair_t f = make_root("other.example");
    rm_ca_t *ca = NULL;
    char err[512];
    (void)state;

    assert_int_equal(open_mem(&f, f.key, f.key_len, NULL, &ca, err, sizeof(err)), RM_ERR_SVID_TRUST_DOMAIN);
    assert_non_null(strstr(err, ORIGIN " key tls.crt"));
    assert_non_null(strstr(err, "spiffe://other.example"));
    pair_free(&f);
}

static void test_not_a_certificate_refused(void **state)
{
    pair_t a = make_root(TD), junk = a;
    rm_ca_t *ca = NULL;
    char err[512];
    (void)state;

    junk.cert = "not a certificate";
    junk.cert_len = strlen(junk.cert);
    assert_int_not_equal(open_mem(&junk, a.key, a.key_len, NULL, &ca, err, sizeof(err)), 0);
    assert_non_null(strstr(err, ORIGIN " key tls.crt"));
    pair_free(&a);
}

static void test_base64(void **state)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    char *out;
    size_t len;
    (void)state;

    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        assert_int_equal(rm__b64_encode(plain[i], strlen(plain[i]), &out, &len), 0);
        assert_string_equal(out, coded[i]);
        assert_int_equal(len, strlen(coded[i]));
        free(out);
        assert_int_equal(rm__b64_decode(coded[i], strlen(coded[i]), &out, &len), 0);
        assert_int_equal(len, strlen(plain[i]));
        assert_memory_equal(out, plain[i], len);
        free(out);
    }
    /* binary, every byte value */
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    char *enc;
    assert_int_equal(rm__b64_encode(all, sizeof(all), &enc, &len), 0);
    assert_int_equal(rm__b64_decode(enc, len, &out, &len), 0);
    assert_int_equal(len, sizeof(all));
    assert_memory_equal(out, all, sizeof(all));
    free(out);
    free(enc);
    /* not base64 */
    assert_int_equal(rm__b64_decode("Zm9v!", 5, &out, &len), -EINVAL);
    assert_int_equal(rm__b64_decode("Z", 1, &out, &len), -EINVAL);
    assert_int_equal(rm__b64_decode("Zm 9v", 5, &out, &len), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_ca_used),
        cmocka_unit_test(test_extra_roots_join_the_bundle),
        cmocka_unit_test(test_roots_without_the_chain_root_refused),
        cmocka_unit_test(test_wrong_key_refused),
        cmocka_unit_test(test_other_trust_domain_refused),
        cmocka_unit_test(test_not_a_certificate_refused),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
