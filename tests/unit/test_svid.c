/* X509-SVID rules and chain verification.
 *
 * The leaf rules are checked twice: on hand-filled rm_x509_info_t (each rule broken alone next to a leaf that
 * passes), and on real certificates made at test start by tests/data/svid/make-test-certs.sh with the openssl CLI,
 * so that the parser and verifier are held against an encoder that is not ringmesh's own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ringmesh/error.h"
#include "ringmesh/svid.h"
#include "x509_internal.h"
#include "unit_asserts.h"

#ifndef RM_TEST_DATA_DIR
#error RM_TEST_DATA_DIR must point at tests/data
#endif

static char cert_dir[64];

/* ---- helpers ------------------------------------------------------------------------------------------------ */

static char *read_all(const char *name, size_t *len)
{
    char path[256];
    FILE *f;
    char *buf;
    long n;

    snprintf(path, sizeof(path), "%s/%s", cert_dir, name);
    if ((f = fopen(path, "rb")) == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void read_dates(const char *name, time_t *not_before, time_t *not_after)
{
    char file[128];
    size_t len;
    char *text;
    long long nb, na;

    snprintf(file, sizeof(file), "%s.dates", name);
    text = read_all(file, &len);
    assert_int_equal(sscanf(text, "%lld %lld", &nb, &na), 2);
    free(text);
    *not_before = (time_t)nb;
    *not_after = (time_t)na;
}

static int parse_file(const char *name, rm_x509_info_t *info)
{
    char file[128];
    size_t len;
    uint8_t *der;
    int ret;

    snprintf(file, sizeof(file), "%s.der", name);
    der = (uint8_t *)read_all(file, &len);
    ret = rm_x509_parse_der(der, len, info);
    free(der);
    return ret;
}

static int check_peer_file(const char *name, time_t now, const rm_svid_expect_t *expect, rm_spiffe_id_t *id)
{
    char file[128];
    size_t len;
    uint8_t *der;
    int ret;

    snprintf(file, sizeof(file), "%s.der", name);
    der = (uint8_t *)read_all(file, &len);
    ret = rm_svid_check_peer_der(der, len, now, expect, id);
    free(der);
    return ret;
}

static rm_trust_bundle_t *load_bundle(const char *names)
{
    char buf[64 * 1024];
    size_t used = 0, len;
    char copy[256], *save = NULL, *name;
    rm_trust_bundle_t *bundle = NULL;

    snprintf(copy, sizeof(copy), "%s", names);
    for (name = strtok_r(copy, " ", &save); name != NULL; name = strtok_r(NULL, " ", &save)) {
        char *pem = read_all(name, &len);
        assert_true(used + len < sizeof(buf));
        memcpy(buf + used, pem, len);
        used += len;
        free(pem);
    }
    assert_int_equal(rm_trust_bundle_load_pem(&bundle, buf, used), 0);
    assert_non_null(bundle);
    return bundle;
}

/* Verifies chain file `name`.pem against the roots named in `roots` (space separated .pem files). */
static int verify_file(const char *roots, const char *name, time_t now, const rm_svid_expect_t *expect,
                       rm_spiffe_id_t *id)
{
    rm_trust_bundle_t *bundle = load_bundle(roots);
    char file[128];
    size_t len;
    char *pem;
    int ret;

    snprintf(file, sizeof(file), "%s.pem", name);
    pem = read_all(file, &len);
    ret = rm_svid_verify_pem(bundle, pem, len, now, expect, id);
    free(pem);
    rm_trust_bundle_free(bundle);
    return ret;
}

/* ---- leaf rules on hand-filled structs ---------------------------------------------------------------------- */

#define GOOD_ID "spiffe://example.org/ns/shop/sa/orders"

static void good_leaf(rm_x509_info_t *info)
{
    memset(info, 0, sizeof(*info));
    info->has_key_usage = 1;
    info->key_usage = RM_KU_DIGITAL_SIGNATURE;
    info->not_before = 1000;
    info->not_after = 2000;
    info->num_uris = 1;
    strcpy(info->uris[0], GOOD_ID);
}

static void test_rule_good_leaf(void **state)
{
    rm_x509_info_t leaf;
    rm_spiffe_id_t id;

    good_leaf(&leaf);
    assert_code(rm_svid_check_leaf(&leaf, 1500, NULL, &id), 0);
    assert_string_equal(id.str, GOOD_ID);
    assert_int_equal(id.td_len, strlen("example.org"));
    assert_code(rm_svid_check_leaf(&leaf, 1500, NULL, NULL), 0);
    /* other key usage bits (keyAgreement) are allowed next to digitalSignature */
    leaf.key_usage |= 0x08;
    assert_code(rm_svid_check_leaf(&leaf, 1500, NULL, NULL), 0);
}

static void test_rule_uri_san_count(void **state)
{
    rm_x509_info_t leaf;

    good_leaf(&leaf);
    leaf.num_uris = 0;
    assert_code(rm_svid_check_leaf(&leaf, 1500, NULL, NULL), RM_ERR_SVID_NO_URI_SAN);
    good_leaf(&leaf);
    leaf.num_uris = 2;
    strcpy(leaf.uris[1], "spiffe://example.org/other");
    assert_code(rm_svid_check_leaf(&leaf, 1500, NULL, NULL), RM_ERR_SVID_MULTIPLE_URI_SANS);
    /* the same URI twice is still two URI SANs */
    strcpy(leaf.uris[1], GOOD_ID);
    assert_code(rm_svid_check_leaf(&leaf, 1500, NULL, NULL), RM_ERR_SVID_MULTIPLE_URI_SANS);
    leaf.num_uris = 7; /* more than are kept */
    assert_code(rm_svid_check_leaf(&leaf, 1500, NULL, NULL), RM_ERR_SVID_MULTIPLE_URI_SANS);
}

static void test_rule_uri_is_spiffe_id(void **state)
{
    static const char *const bad[] = {"https://example.org/x", "spiffe://Example.org/x", "spiffe://example.org/a/../b",
                                      "spiffe://example.org/x?y", ""};
    rm_x509_info_t leaf;
    rm_spiffe_id_t id;
    size_t i;

    for (i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        good_leaf(&leaf);
        strcpy(leaf.uris[0], bad[i]);
        assert_code(rm_svid_check_leaf(&leaf, 1500, NULL, &id), RM_ERR_SVID_BAD_SAN_URI);
        assert_int_equal(id.len, 0);
    }
}

/* X509-SVID 5.2: the leaf's SPIFFE ID must have a path. The refused ID is still reported, for the log. */
static void test_rule_id_has_path(void **state)
{
    rm_x509_info_t leaf;
    rm_spiffe_id_t id;

    good_leaf(&leaf);
    strcpy(leaf.uris[0], "spiffe://example.org");
    assert_code(rm_svid_check_leaf(&leaf, 1500, NULL, &id), RM_ERR_SVID_NO_PATH);
    assert_string_equal(id.str, "spiffe://example.org");
    /* before the other rules: the ID is what the peer is */
    leaf.is_ca = 1;
    assert_code(rm_svid_check_leaf(&leaf, 1500, NULL, NULL), RM_ERR_SVID_NO_PATH);
    good_leaf(&leaf);
    strcpy(leaf.uris[0], "spiffe://example.org/x");
    assert_code(rm_svid_check_leaf(&leaf, 1500, NULL, NULL), 0);
}

/* X509-SVID 4.4: extended key usage is optional; when present it holds both serverAuth and clientAuth. */
static void test_rule_ext_key_usage(void **state)
{
    static const struct {
        unsigned eku;
        int code;
    } cases[] = {
        {RM_EKU_SERVER_AUTH | RM_EKU_CLIENT_AUTH, 0},    {RM_EKU_SERVER_AUTH | RM_EKU_CLIENT_AUTH | RM_EKU_ANY, 0},
        {RM_EKU_SERVER_AUTH, RM_ERR_SVID_EXT_KEY_USAGE}, {RM_EKU_CLIENT_AUTH, RM_ERR_SVID_EXT_KEY_USAGE},
        {RM_EKU_ANY, RM_ERR_SVID_EXT_KEY_USAGE},         {0, RM_ERR_SVID_EXT_KEY_USAGE}, /* other purposes only */
    };
    rm_x509_info_t leaf;
    rm_spiffe_id_t id;
    size_t i;

    good_leaf(&leaf);
    assert_int_equal(leaf.has_ext_key_usage, 0);
    assert_code(rm_svid_check_leaf(&leaf, 1500, NULL, NULL), 0);
    for (i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        good_leaf(&leaf);
        leaf.has_ext_key_usage = 1;
        leaf.ext_key_usage = cases[i].eku;
        assert_code(rm_svid_check_leaf(&leaf, 1500, NULL, &id), cases[i].code);
        assert_string_equal(id.str, GOOD_ID);
    }
}

/* The IDs a leaf may carry, for issuing and for expecting: the trust domain's own ID is refused with the rule. */
static void test_workload_id_parse(void **state)
{
    rm_spiffe_id_t id;

    assert_code(rm_spiffe_workload_id_parse("spiffe://example.org/a", 22, &id), 0);
    assert_string_equal(id.str, "spiffe://example.org/a");
    assert_int_equal(rm_spiffe_id_has_path(&id), 1);
    assert_code(rm_spiffe_workload_id_parse("spiffe://example.org", 20, &id), RM_ERR_SVID_NO_PATH);
    assert_int_equal(id.len, 0);
    assert_code(rm_spiffe_workload_id_parse("spiffe://example.org", 20, NULL), RM_ERR_SVID_NO_PATH);
    assert_code(rm_spiffe_workload_id_parse("spiffe://example.org/", 21, NULL), RM_ERR_SPIFFE_EMPTY_SEGMENT);
    assert_code(rm_spiffe_workload_id_parse("spiffe://Example.org/a", 22, NULL), RM_ERR_SPIFFE_TD_CHARS);
    assert_code(rm_spiffe_id_parse("spiffe://example.org", 20, &id), 0);
    assert_int_equal(rm_spiffe_id_has_path(&id), 0);
}

static void test_rule_leaf_not_ca(void **state)
{
    rm_x509_info_t leaf;

    good_leaf(&leaf);
    leaf.is_ca = 1;
    assert_code(rm_svid_check_leaf(&leaf, 1500, NULL, NULL), RM_ERR_SVID_LEAF_IS_CA);
}

static void test_rule_key_usage(void **state)
{
    rm_x509_info_t leaf;

    good_leaf(&leaf);
    leaf.has_key_usage = 0;
    assert_code(rm_svid_check_leaf(&leaf, 1500, NULL, NULL), RM_ERR_SVID_NO_KEY_USAGE);
    good_leaf(&leaf);
    leaf.key_usage = 0x08; /* keyAgreement only */
    assert_code(rm_svid_check_leaf(&leaf, 1500, NULL, NULL), RM_ERR_SVID_NO_DIGITAL_SIGNATURE);
    good_leaf(&leaf);
    leaf.key_usage |= RM_KU_KEY_CERT_SIGN;
    assert_code(rm_svid_check_leaf(&leaf, 1500, NULL, NULL), RM_ERR_SVID_KEY_CERT_SIGN);
    good_leaf(&leaf);
    leaf.key_usage |= RM_KU_CRL_SIGN;
    assert_code(rm_svid_check_leaf(&leaf, 1500, NULL, NULL), RM_ERR_SVID_CRL_SIGN);
}

static void test_rule_validity(void **state)
{
    rm_x509_info_t leaf;

    good_leaf(&leaf);
    assert_code(rm_svid_check_leaf(&leaf, 999, NULL, NULL), RM_ERR_SVID_NOT_YET_VALID);
    assert_code(rm_svid_check_leaf(&leaf, 1000, NULL, NULL), 0);
    assert_code(rm_svid_check_leaf(&leaf, 2000, NULL, NULL), 0);
    assert_code(rm_svid_check_leaf(&leaf, 2001, NULL, NULL), RM_ERR_SVID_EXPIRED);
}

static void test_rule_trust_domain(void **state)
{
    rm_x509_info_t leaf;
    rm_svid_expect_t expect = {.trust_domain = "example.org"};
    rm_spiffe_id_t id;

    good_leaf(&leaf);
    assert_code(rm_svid_check_leaf(&leaf, 1500, &expect, NULL), 0);
    expect.trust_domain = "example.com";
    assert_code(rm_svid_check_leaf(&leaf, 1500, &expect, &id), RM_ERR_SVID_TRUST_DOMAIN);
    /* the ID is still reported, for the log line of the refusal */
    assert_string_equal(id.str, GOOD_ID);
    expect.trust_domain = "example.or";
    assert_code(rm_svid_check_leaf(&leaf, 1500, &expect, NULL), RM_ERR_SVID_TRUST_DOMAIN);
    expect.trust_domain = "example.org.evil";
    assert_code(rm_svid_check_leaf(&leaf, 1500, &expect, NULL), RM_ERR_SVID_TRUST_DOMAIN);
    /* an alias (trustDomainAliases) is accepted as well as the trust domain; a near miss is not */
    static const char *const aliases[] = {"example.org.evil", "example.org"}, *const near[] = {"example.or"};
    expect.trust_domain = "example.com";
    expect.trust_domain_aliases = aliases;
    expect.num_trust_domain_aliases = 2;
    assert_code(rm_svid_check_leaf(&leaf, 1500, &expect, NULL), 0);
    expect.trust_domain_aliases = near;
    expect.num_trust_domain_aliases = 1;
    assert_code(rm_svid_check_leaf(&leaf, 1500, &expect, NULL), RM_ERR_SVID_TRUST_DOMAIN);
    expect.trust_domain_aliases = NULL;
    expect.num_trust_domain_aliases = 0;
    /* the trust domain's own ID is in the trust domain, but is no leaf's ID (X509-SVID 5.2) */
    strcpy(leaf.uris[0], "spiffe://example.org");
    expect.trust_domain = "example.org";
    assert_code(rm_svid_check_leaf(&leaf, 1500, &expect, NULL), RM_ERR_SVID_NO_PATH);
}

static void test_rule_expected_ids(void **state)
{
    static const char *const both[] = {"spiffe://example.org/ns/shop/sa/cart", GOOD_ID};
    static const char *const other[] = {"spiffe://example.org/ns/shop/sa/cart"};
    static const char *const prefix[] = {"spiffe://example.org/ns/shop/sa/order", "spiffe://example.org/ns/shop"};
    rm_x509_info_t leaf;
    rm_svid_expect_t expect = {.ids = both, .num_ids = 2};

    good_leaf(&leaf);
    assert_code(rm_svid_check_leaf(&leaf, 1500, &expect, NULL), 0);
    expect.ids = other;
    expect.num_ids = 1;
    assert_code(rm_svid_check_leaf(&leaf, 1500, &expect, NULL), RM_ERR_SVID_UNEXPECTED_ID);
    expect.ids = prefix;
    expect.num_ids = 2;
    assert_code(rm_svid_check_leaf(&leaf, 1500, &expect, NULL), RM_ERR_SVID_UNEXPECTED_ID);
    /* an empty list means "any ID" */
    expect.num_ids = 0;
    assert_code(rm_svid_check_leaf(&leaf, 1500, &expect, NULL), 0);
}

static void test_rule_signer(void **state)
{
    rm_x509_info_t ca;

    memset(&ca, 0, sizeof(ca));
    ca.is_ca = 1;
    ca.has_key_usage = 1;
    ca.key_usage = RM_KU_KEY_CERT_SIGN | RM_KU_CRL_SIGN;
    assert_code(rm_svid_check_signer(&ca), 0);
    ca.key_usage = RM_KU_KEY_CERT_SIGN;
    assert_code(rm_svid_check_signer(&ca), 0);
    ca.is_ca = 0;
    assert_code(rm_svid_check_signer(&ca), RM_ERR_SVID_CA_NOT_CA);
    ca.is_ca = 1;
    ca.key_usage = RM_KU_DIGITAL_SIGNATURE | RM_KU_CRL_SIGN;
    assert_code(rm_svid_check_signer(&ca), RM_ERR_SVID_CA_NOT_CA);
    ca.key_usage = RM_KU_KEY_CERT_SIGN;
    ca.has_key_usage = 0;
    assert_code(rm_svid_check_signer(&ca), RM_ERR_SVID_CA_NOT_CA);
}

/* ---- parsing certificates made by openssl ------------------------------------------------------------------- */

static void test_parse_leaf(void **state)
{
    rm_x509_info_t info;
    time_t nb, na;

    assert_code(parse_file("leaf", &info), 0);
    read_dates("leaf", &nb, &na);
    assert_int_equal(info.is_ca, 0);
    assert_int_equal(info.has_key_usage, 1);
    assert_int_equal(info.key_usage, RM_KU_DIGITAL_SIGNATURE);
    assert_int_equal(info.num_uris, 1);
    assert_string_equal(info.uris[0], GOOD_ID);
    assert_int_equal(info.not_before, nb);
    assert_int_equal(info.not_after, na);

    assert_code(parse_file("leaf-expired", &info), 0);
    read_dates("leaf-expired", &nb, &na);
    assert_int_equal(info.not_before, nb);
    assert_int_equal(info.not_after, na);

    assert_code(parse_file("leaf-key-agreement", &info), 0);
    assert_int_equal(info.key_usage, RM_KU_DIGITAL_SIGNATURE | 0x08);
}

static void test_parse_ext_key_usage(void **state)
{
    static const struct {
        const char *name;
        int has;
        unsigned eku;
    } cases[] = {
        {"leaf", 1, RM_EKU_SERVER_AUTH | RM_EKU_CLIENT_AUTH},
        {"leaf-eku-extra", 1, RM_EKU_SERVER_AUTH | RM_EKU_CLIENT_AUTH},
        {"leaf-eku-server-only", 1, RM_EKU_SERVER_AUTH},
        {"leaf-eku-client-only", 1, RM_EKU_CLIENT_AUTH},
        {"leaf-eku-any", 1, RM_EKU_ANY},
        {"leaf-eku-other", 1, 0},
        {"leaf-no-eku", 0, 0},
    };
    rm_x509_info_t info;
    size_t i;

    for (i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        assert_code(parse_file(cases[i].name, &info), 0);
        if (info.has_ext_key_usage != cases[i].has || info.ext_key_usage != cases[i].eku)
            fail_msg("%s: extended key usage %d/%#x, want %d/%#x", cases[i].name, info.has_ext_key_usage,
                     info.ext_key_usage, cases[i].has, cases[i].eku);
    }
}

static void test_parse_ca(void **state)
{
    rm_x509_info_t info;

    assert_code(parse_file("root", &info), 0);
    assert_int_equal(info.is_ca, 1);
    assert_int_equal(info.has_key_usage, 1);
    assert_int_equal(info.key_usage, RM_KU_KEY_CERT_SIGN | RM_KU_CRL_SIGN);
    assert_int_equal(info.num_uris, 1);
    assert_string_equal(info.uris[0], "spiffe://example.org");
    assert_code(parse_file("inter", &info), 0);
    assert_int_equal(info.is_ca, 1);
    assert_int_equal(info.num_uris, 0);
}

static void test_parse_sans(void **state)
{
    rm_x509_info_t info;

    assert_code(parse_file("leaf-five-uris", &info), 0);
    assert_int_equal(info.num_uris, 5);
    assert_string_equal(info.uris[0], "spiffe://example.org/a");
    assert_string_equal(info.uris[3], "spiffe://example.org/d");
    assert_code(parse_file("leaf-two-uris", &info), 0);
    assert_int_equal(info.num_uris, 2);
    assert_code(parse_file("leaf-no-san", &info), 0);
    assert_int_equal(info.num_uris, 0);
    assert_code(parse_file("leaf-dns-only", &info), 0);
    assert_int_equal(info.num_uris, 0);
    assert_code(parse_file("leaf-dns-and-uri", &info), 0);
    assert_int_equal(info.num_uris, 1);
    assert_string_equal(info.uris[0], GOOD_ID);
    assert_code(parse_file("leaf-no-ku", &info), 0);
    assert_int_equal(info.has_key_usage, 0);
    assert_code(parse_file("leaf-ca", &info), 0);
    assert_int_equal(info.is_ca, 1);
}

static void test_parse_garbage(void **state)
{
    static const uint8_t junk[] = {0x30, 0x82, 0x01, 0x00, 0x02, 0x01, 0x00};
    rm_x509_info_t info;
    size_t len;
    uint8_t *der;

    assert_code(rm_x509_parse_der(junk, sizeof(junk), &info), RM_ERR_SVID_PARSE);
    assert_code(rm_x509_parse_der(junk, 0, &info), RM_ERR_SVID_PARSE);
    der = (uint8_t *)read_all("leaf.der", &len);
    assert_code(rm_x509_parse_der(der, len / 2, &info), RM_ERR_SVID_PARSE);
    assert_int_equal(info.num_uris, 0);
    assert_code(rm_x509_parse_der(der, len, &info), 0);
    free(der);
}

/* ---- leaf rules on openssl certificates --------------------------------------------------------------------- */

static void test_peer_leaf_rules(void **state)
{
    static const struct {
        const char *name;
        int code;
    } cases[] = {
        {"leaf", 0},
        {"leaf-dns-and-uri", 0},
        {"leaf-key-agreement", 0},
        {"leaf-other-td", 0},
        {"leaf-ca", RM_ERR_SVID_LEAF_IS_CA},
        {"leaf-two-uris", RM_ERR_SVID_MULTIPLE_URI_SANS},
        {"leaf-five-uris", RM_ERR_SVID_MULTIPLE_URI_SANS},
        {"leaf-keycertsign", RM_ERR_SVID_KEY_CERT_SIGN},
        {"leaf-crlsign", RM_ERR_SVID_CRL_SIGN},
        {"leaf-no-digsig", RM_ERR_SVID_NO_DIGITAL_SIGNATURE},
        {"leaf-no-ku", RM_ERR_SVID_NO_KEY_USAGE},
        {"leaf-no-san", RM_ERR_SVID_NO_URI_SAN},
        {"leaf-dns-only", RM_ERR_SVID_NO_URI_SAN},
        {"leaf-bad-id", RM_ERR_SVID_BAD_SAN_URI},
        {"leaf-bad-scheme", RM_ERR_SVID_BAD_SAN_URI},
        {"leaf-expired", RM_ERR_SVID_EXPIRED},
        {"leaf-not-yet-valid", RM_ERR_SVID_NOT_YET_VALID},
        {"leaf-no-path", RM_ERR_SVID_NO_PATH},
        {"leaf-no-eku", 0},
        {"leaf-eku-extra", 0},
        {"leaf-eku-server-only", RM_ERR_SVID_EXT_KEY_USAGE},
        {"leaf-eku-client-only", RM_ERR_SVID_EXT_KEY_USAGE},
        {"leaf-eku-any", RM_ERR_SVID_EXT_KEY_USAGE},
        {"leaf-eku-other", RM_ERR_SVID_EXT_KEY_USAGE},
    };
    rm_spiffe_id_t id;
    size_t i;
    int ret;

    for (i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        ret = check_peer_file(cases[i].name, time(NULL), NULL, &id);
        if (ret != cases[i].code)
            fail_msg("%s: got %d (%s), want %d (%s)", cases[i].name, ret, rm_strerror(ret), cases[i].code,
                     rm_strerror(cases[i].code));
    }
}

static void test_peer_expectations(void **state)
{
    static const char *const want[] = {GOOD_ID};
    rm_svid_expect_t expect = {.trust_domain = "example.org"};
    rm_spiffe_id_t id;

    assert_code(check_peer_file("leaf", time(NULL), &expect, &id), 0);
    assert_string_equal(id.str, GOOD_ID);
    assert_code(check_peer_file("leaf-other-td", time(NULL), &expect, &id), RM_ERR_SVID_TRUST_DOMAIN);
    assert_string_equal(id.str, "spiffe://other.org/ns/shop/sa/orders");
    expect.trust_domain = NULL;
    expect.ids = want;
    expect.num_ids = 1;
    assert_code(check_peer_file("leaf", time(NULL), &expect, NULL), 0);
    assert_code(check_peer_file("leaf-root2", time(NULL), &expect, NULL), RM_ERR_SVID_UNEXPECTED_ID);
}

static void test_peer_time_is_the_callers(void **state)
{
    time_t nb, na;

    read_dates("leaf", &nb, &na);
    assert_code(check_peer_file("leaf", nb - 1, NULL, NULL), RM_ERR_SVID_NOT_YET_VALID);
    assert_code(check_peer_file("leaf", nb, NULL, NULL), 0);
    assert_code(check_peer_file("leaf", na, NULL, NULL), 0);
    assert_code(check_peer_file("leaf", na + 1, NULL, NULL), RM_ERR_SVID_EXPIRED);
    read_dates("leaf-expired", &nb, &na);
    assert_code(check_peer_file("leaf-expired", nb + 60, NULL, NULL), 0);
}

/* ---- chains and bundles ------------------------------------------------------------------------------------- */

static void test_chain_direct(void **state)
{
    rm_spiffe_id_t id;

    assert_code(verify_file("root.pem", "leaf", time(NULL), NULL, &id), 0);
    assert_string_equal(id.str, GOOD_ID);
    assert_code(verify_file("root.pem", "leaf-untrusted", time(NULL), NULL, &id), RM_ERR_SVID_UNTRUSTED);
    assert_int_equal(id.len, 0);
}

static void test_chain_intermediate(void **state)
{
    rm_spiffe_id_t id;

    assert_code(verify_file("root.pem", "leaf-inter", time(NULL), NULL, &id), 0);
    assert_string_equal(id.str, "spiffe://example.org/ns/shop/sa/cart");
    /* signed by the intermediate, which the chain does not carry */
    assert_code(verify_file("root.pem", "leaf-inter-missing", time(NULL), NULL, NULL), RM_ERR_SVID_UNTRUSTED);
    /* intermediate present but it leads to a root outside the bundle */
    assert_code(verify_file("root2.pem", "leaf-inter", time(NULL), NULL, NULL), RM_ERR_SVID_UNTRUSTED);
    /* an intermediate in the bundle file is an anchor like any CA */
    assert_code(verify_file("inter.pem", "leaf-inter-missing", time(NULL), NULL, NULL), 0);
}

static void test_chain_multiple_roots(void **state)
{
    rm_spiffe_id_t id;

    assert_code(verify_file("root.pem", "leaf-root2", time(NULL), NULL, NULL), RM_ERR_SVID_UNTRUSTED);
    assert_code(verify_file("bundle.pem", "leaf-root2", time(NULL), NULL, &id), 0);
    assert_string_equal(id.str, "spiffe://example.org/ns/shop/sa/payments");
    assert_code(verify_file("bundle.pem", "leaf", time(NULL), NULL, &id), 0);
    assert_string_equal(id.str, GOOD_ID);
    assert_code(verify_file("bundle.pem", "leaf-inter", time(NULL), NULL, NULL), 0);
    assert_code(verify_file("other-root.pem root2.pem", "leaf", time(NULL), NULL, NULL), RM_ERR_SVID_UNTRUSTED);
    assert_code(verify_file("other-root.pem root2.pem", "leaf-untrusted", time(NULL), NULL, NULL), 0);
}

static void test_chain_signer_rules(void **state)
{
    assert_code(verify_file("root.pem", "leaf-under-not-ca", time(NULL), NULL, NULL), RM_ERR_SVID_CA_NOT_CA);
    assert_code(verify_file("root.pem", "leaf-under-no-kcs", time(NULL), NULL, NULL), RM_ERR_SVID_CA_NOT_CA);
}

static void test_chain_expiry(void **state)
{
    time_t nb, na;

    assert_code(verify_file("root.pem", "leaf-expired", time(NULL), NULL, NULL), RM_ERR_SVID_EXPIRED);
    assert_code(verify_file("root.pem", "leaf-not-yet-valid", time(NULL), NULL, NULL), RM_ERR_SVID_NOT_YET_VALID);
    /* the intermediate has expired, the leaf has not */
    assert_code(verify_file("root.pem", "leaf-under-expired", time(NULL), NULL, NULL), RM_ERR_SVID_EXPIRED);
    /* the root has expired, the leaf has not; a valid but unrelated root beside it changes nothing */
    assert_code(verify_file("root-expired.pem", "leaf-under-expired-root", time(NULL), NULL, NULL),
                RM_ERR_SVID_EXPIRED);
    assert_code(verify_file("root.pem root-expired.pem", "leaf-under-expired-root", time(NULL), NULL, NULL),
                RM_ERR_SVID_EXPIRED);
    assert_code(verify_file("root.pem", "leaf-under-expired-root", time(NULL), NULL, NULL), RM_ERR_SVID_UNTRUSTED);
    /* ...and before its NotBefore the same root is not yet valid */
    read_dates("leaf-under-expired-root", &nb, &na);
    assert_code(verify_file("root-expired.pem", "leaf-under-expired-root", nb - 7 * 86400, NULL, NULL),
                RM_ERR_SVID_NOT_YET_VALID);

    /* dates are judged at the caller's `now`, not the wall clock */
    read_dates("leaf", &nb, &na);
    assert_code(verify_file("root.pem", "leaf", na + 1, NULL, NULL), RM_ERR_SVID_EXPIRED);
    assert_code(verify_file("root.pem", "leaf", nb - 1, NULL, NULL), RM_ERR_SVID_NOT_YET_VALID);
    read_dates("leaf-expired", &nb, &na);
    assert_code(verify_file("root.pem", "leaf-expired", nb + 60, NULL, NULL), 0);
}

/* Flips one base64 character inside the signature (the end of the PEM body) of `name`.pem. */
static char *tampered_pem(const char *name, size_t *len)
{
    char file[128], *pem, *end;

    snprintf(file, sizeof(file), "%s.pem", name);
    pem = read_all(file, len);
    end = strstr(pem, "\n-----END CERTIFICATE-----");
    assert_non_null(end);
    end -= 6; /* clear of the '=' padding */
    assert_true(end[0] != '=' && end[0] != '\n');
    end[0] = end[0] == 'A' ? 'B' : 'A';
    return pem;
}

static void test_chain_bad_signature(void **state)
{
    rm_trust_bundle_t *bundle = load_bundle("root.pem");
    time_t nb, na;
    size_t len;
    char *pem;

    pem = tampered_pem("leaf", &len);
    assert_code(rm_svid_verify_pem(bundle, pem, len, time(NULL), NULL, NULL), RM_ERR_SVID_UNTRUSTED);
    free(pem);
    /* a wall-clock date error from the TLS library must not hide a bad signature */
    read_dates("leaf-expired", &nb, &na);
    pem = tampered_pem("leaf-expired", &len);
    assert_code(rm_svid_verify_pem(bundle, pem, len, nb + 60, NULL, NULL), RM_ERR_SVID_UNTRUSTED);
    free(pem);
    rm_trust_bundle_free(bundle);
}

static void test_chain_leaf_rules_and_expectations(void **state)
{
    static const char *const want[] = {"spiffe://example.org/ns/shop/sa/cart"};
    rm_svid_expect_t expect = {.trust_domain = "example.org"};
    rm_spiffe_id_t id;

    assert_code(verify_file("root.pem", "leaf-ca", time(NULL), NULL, NULL), RM_ERR_SVID_LEAF_IS_CA);
    assert_code(verify_file("root.pem", "leaf-two-uris", time(NULL), NULL, NULL), RM_ERR_SVID_MULTIPLE_URI_SANS);
    assert_code(verify_file("root.pem", "leaf-no-digsig", time(NULL), NULL, NULL), RM_ERR_SVID_NO_DIGITAL_SIGNATURE);
    assert_code(verify_file("root.pem", "leaf-no-path", time(NULL), NULL, &id), RM_ERR_SVID_NO_PATH);
    assert_string_equal(id.str, "spiffe://example.org");
    assert_code(verify_file("root.pem", "leaf-eku-server-only", time(NULL), NULL, &id), RM_ERR_SVID_EXT_KEY_USAGE);
    assert_string_equal(id.str, GOOD_ID);
    assert_code(verify_file("root.pem", "leaf-eku-client-only", time(NULL), NULL, NULL), RM_ERR_SVID_EXT_KEY_USAGE);
    assert_code(verify_file("root.pem", "leaf-no-eku", time(NULL), NULL, NULL), 0);
    assert_code(verify_file("root.pem", "leaf-other-td", time(NULL), &expect, &id), RM_ERR_SVID_TRUST_DOMAIN);
    assert_code(verify_file("root.pem", "leaf", time(NULL), &expect, NULL), 0);
    expect.ids = want;
    expect.num_ids = 1;
    assert_code(verify_file("root.pem", "leaf", time(NULL), &expect, NULL), RM_ERR_SVID_UNEXPECTED_ID);
    assert_code(verify_file("root.pem", "leaf-inter", time(NULL), &expect, &id), 0);
    assert_string_equal(id.str, want[0]);
}

static void test_bundle_load(void **state)
{
    rm_trust_bundle_t *bundle = (rm_trust_bundle_t *)1;
    size_t len;
    char *pem;

    assert_code(rm_trust_bundle_load_pem(&bundle, "", 0), RM_ERR_SVID_PARSE);
    assert_null(bundle);
    assert_code(rm_trust_bundle_load_pem(&bundle, "hello", 5), RM_ERR_SVID_PARSE);
    pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert_code(rm_trust_bundle_load_pem(&bundle, pem, strlen(pem)), RM_ERR_SVID_PARSE);
    /* a leaf is no trust anchor */
    pem = read_all("leaf.pem", &len);
    assert_code(rm_trust_bundle_load_pem(&bundle, pem, len), RM_ERR_SVID_CA_NOT_CA);
    assert_null(bundle);
    free(pem);
    pem = read_all("bundle.pem", &len);
    assert_code(rm_trust_bundle_load_pem(&bundle, pem, len), 0);
    assert_non_null(bundle);
    rm_trust_bundle_free(bundle);
    free(pem);
}

static void test_chain_garbage(void **state)
{
    rm_trust_bundle_t *bundle = load_bundle("root.pem");

    assert_code(rm_svid_verify_pem(bundle, "", 0, time(NULL), NULL, NULL), RM_ERR_SVID_PARSE);
    assert_code(rm_svid_verify_pem(bundle, "not a certificate", 17, time(NULL), NULL, NULL), RM_ERR_SVID_PARSE);
    rm_trust_bundle_free(bundle);
}

/* ---- fixture ------------------------------------------------------------------------------------------------ */

static int make_certs(void **state)
{
    char cmd[512];

    strcpy(cert_dir, "/tmp/rm-test-svid-XXXXXX");
    if (mkdtemp(cert_dir) == NULL)
        return -1;
    snprintf(cmd, sizeof(cmd), "bash '%s/svid/make-test-certs.sh' '%s' >/dev/null", RM_TEST_DATA_DIR, cert_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "make-test-certs.sh failed\n");
        return -1;
    }
    return 0;
}

static int remove_certs(void **state)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cert_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_good_leaf),
        cmocka_unit_test(test_rule_uri_san_count),
        cmocka_unit_test(test_rule_uri_is_spiffe_id),
        cmocka_unit_test(test_rule_id_has_path),
        cmocka_unit_test(test_rule_ext_key_usage),
        cmocka_unit_test(test_workload_id_parse),
        cmocka_unit_test(test_rule_leaf_not_ca),
        cmocka_unit_test(test_rule_key_usage),
        cmocka_unit_test(test_rule_validity),
        cmocka_unit_test(test_rule_trust_domain),
        cmocka_unit_test(test_rule_expected_ids),
        cmocka_unit_test(test_rule_signer),
        cmocka_unit_test(test_parse_leaf),
        cmocka_unit_test(test_parse_ext_key_usage),
        cmocka_unit_test(test_parse_ca),
        cmocka_unit_test(test_parse_sans),
        cmocka_unit_test(test_parse_garbage),
        cmocka_unit_test(test_peer_leaf_rules),
        cmocka_unit_test(test_peer_expectations),
        cmocka_unit_test(test_peer_time_is_the_callers),
        cmocka_unit_test(test_chain_direct),
        cmocka_unit_test(test_chain_intermediate),
        cmocka_unit_test(test_chain_multiple_roots),
        cmocka_unit_test(test_chain_signer_rules),
        cmocka_unit_test(test_chain_expiry),
        cmocka_unit_test(test_chain_bad_signature),
        cmocka_unit_test(test_chain_leaf_rules_and_expectations),
        cmocka_unit_test(test_bundle_load),
        cmocka_unit_test(test_chain_garbage),
    };
    return cmocka_run_group_tests(tests, make_certs, remove_certs);
}
