/* PKCS#10 requests: what rm_csr_make() writes is read back by the openssl CLI, and what the openssl CLI writes is
 * checked by rm_csr_parse_pem(), so that each side is held against an encoder or parser that is not ringmesh's own.
 * Each reason to refuse a request is tested on its own. Tests that need the openssl binary skip without it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "ringmesh/csr.h"
#include "ringmesh/error.h"
#include "ringmesh/x509_issue.h"
#include "unit_asserts.h"

#define LEAF_ID  "spiffe://example.org/ns/shop/sa/orders"
#define OTHER_ID "spiffe://evil.example/ns/kube-system/sa/admin"
#define OTHER_CN "spiffe:\\/\\/evil.example\\/ns\\/kube-system\\/sa\\/admin" /* '/' escaped for -subj */

static char work_dir[64];

/* ---- helpers ------------------------------------------------------------------------------------------------ */

static void need_openssl(void)
{
    if (system("command -v openssl >/dev/null 2>&1") != 0) {
        fprintf(stderr, "the openssl binary is not installed: this test is skipped\n");
        skip();
    }
}

/* Runs a shell command in the work directory; its output (stdout and stderr) goes to the file "out".
 * Returns the exit status. */
static int sh(const char *fmt, ...)
{
    char cmd[2048], full[2200];
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

    snprintf(path, sizeof(path), "%s/%s", work_dir, name);
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
    *len = (size_t)n;
    return buf;
}

static void write_file(const char *name, const void *data, size_t len)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", work_dir, name);
    assert_non_null(f = fopen(path, "wb"));
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* What the last sh() printed. */
static char *output(void)
{
    size_t len;
    return read_file("out", &len);
}

/* `openssl req -verify` says whether the self-signature holds (its exit status does not, in OpenSSL 3.0). */
static int openssl_verifies(const char *csr_file)
{
    char *out;
    int ok;

    if (sh("openssl req -in %s -verify -noout", csr_file) != 0)
        return 0;
    out = output();
    ok = strstr(out, "verify OK") != NULL && strstr(out, "failure") == NULL;
    free(out);
    return ok;
}

static void parse_file(const char *name, int want)
{
    uint8_t *spki = (uint8_t *)1;
    size_t len, spki_len;
    char *pem = read_file(name, &len);

    assert_code(rm_csr_parse_pem(pem, len, &spki, &spki_len), want);
    if (want == 0)
        free(spki);
    else
        assert_null(spki);
    free(pem);
}

/* Parses a request that must be accepted and checks that the key returned is the one in `key_file`. */
static void parse_file_expect_key(const char *csr_file, const char *key_file)
{
    uint8_t *spki;
    size_t len, spki_len, want_len;
    char *pem = read_file(csr_file, &len), *want;

    assert_code(rm_csr_parse_pem(pem, len, &spki, &spki_len), 0);
    assert_int_equal(sh("openssl pkey -in %s -pubout -outform DER -out want.der", key_file), 0);
    want = read_file("want.der", &want_len);
    assert_int_equal(spki_len, want_len);
    assert_memory_equal(spki, want, want_len);
    free(want);
    free(spki);
    free(pem);
}

/* Writes DER as a PEM request with the openssl base64 encoder (so that the bytes are exactly these). */
static void write_der_as_pem(const char *name, const uint8_t *der, size_t len)
{
    write_file("tampered.der", der, len);
    assert_int_equal(sh("{ echo '-----BEGIN CERTIFICATE REQUEST-----'; openssl base64 -e -in tampered.der; "
                        "echo '-----END CERTIFICATE REQUEST-----'; } >%s.tmp && mv %s.tmp %s",
                        name, name, name),
                     0);
}

/* Makes a P-256 key (SEC1 PEM) and a request for it with the openssl CLI. */
static void openssl_csr(const char *key_file, const char *csr_file, const char *extra)
{
    assert_int_equal(sh("openssl ecparam -name prime256v1 -genkey -noout -out %s", key_file), 0);
    assert_int_equal(sh("openssl req -new -key %s -subj /O=ringmesh-test %s -out %s", key_file, extra, csr_file), 0);
}

/* ---- rm_csr_make -------------------------------------------------------------------------------------------- */

static void test_make_read_by_openssl(void **state)
{
    uint8_t *spki;
    char *key, *csr, *out;
    size_t key_len, spki_len, csr_len;

    need_openssl();
    assert_code(rm_x509_generate_key(&key, &key_len, &spki, &spki_len), 0);
    write_file("key.pem", key, key_len);
    assert_code(rm_csr_make(key, key_len, LEAF_ID, &csr, &csr_len), 0);
    assert_int_equal(strlen(csr), csr_len);
    assert_non_null(strstr(csr, "-----BEGIN CERTIFICATE REQUEST-----"));
    write_file("csr.pem", csr, csr_len);

    assert_true(openssl_verifies("csr.pem"));
    assert_int_equal(sh("openssl req -in csr.pem -noout -text"), 0);
    out = output();
    assert_non_null(strstr(out, "ecdsa-with-SHA256"));
    assert_non_null(strstr(out, "NIST CURVE: P-256"));
    assert_non_null(strstr(out, "URI:" LEAF_ID "\n"));
    free(out);
    /* the request carries the key it was made for */
    assert_int_equal(sh("openssl req -in csr.pem -noout -pubkey -out req-pub.pem && "
                        "openssl pkey -in key.pem -pubout -out key-pub.pem && cmp req-pub.pem key-pub.pem"),
                     0);

    /* the harness itself can tell a bad request from a good one */
    csr[csr_len - 40] = csr[csr_len - 40] == 'A' ? 'B' : 'A'; /* inside the base64 of the signature */
    write_file("bad.pem", csr, csr_len);
    assert_false(openssl_verifies("bad.pem"));

    free(csr);
    free(spki);
    rm_x509_free_secret(key, key_len);
}

static void test_make_without_id(void **state)
{
    uint8_t *spki;
    char *key, *csr, *out;
    size_t key_len, spki_len, csr_len;

    need_openssl();
    assert_code(rm_x509_generate_key(&key, &key_len, &spki, &spki_len), 0);
    assert_code(rm_csr_make(key, key_len, NULL, &csr, &csr_len), 0);
    write_file("csr.pem", csr, csr_len);
    assert_true(openssl_verifies("csr.pem"));
    assert_int_equal(sh("openssl req -in csr.pem -noout -text"), 0);
    out = output();
    assert_null(strstr(out, "Subject Alternative Name"));
    free(out);
    free(csr);
    free(spki);
    rm_x509_free_secret(key, key_len);
}

/* IDs whose lengths take the short, one-byte and two-byte DER length forms. */
static void test_make_id_lengths(void **state)
{
    static const size_t lengths[] = {100, 200, 2048};
    uint8_t *spki, *parsed;
    char *key, *csr, *out, id[2049], needle[2060];
    size_t key_len, spki_len, csr_len, parsed_len, i, len;

    need_openssl();
    assert_code(rm_x509_generate_key(&key, &key_len, &spki, &spki_len), 0);
    for (i = 0; i != sizeof(lengths) / sizeof(lengths[0]); ++i) {
        len = (size_t)snprintf(id, sizeof(id), "spiffe://example.org/");
        for (; len < lengths[i]; ++len)
            id[len] = (char)('a' + len % 26);
        id[len] = '\0';
        assert_code(rm_csr_make(key, key_len, id, &csr, &csr_len), 0);
        write_file("csr.pem", csr, csr_len);
        assert_true(openssl_verifies("csr.pem"));
        assert_int_equal(sh("openssl req -in csr.pem -noout -text -nameopt utf8"), 0);
        out = output();
        snprintf(needle, sizeof(needle), "URI:%s\n", id);
        if (strstr(out, needle) == NULL)
            fail_msg("an ID of %zu bytes is not in the request:\n%s", len, out);
        free(out);
        assert_code(rm_csr_parse_pem(csr, csr_len, &parsed, &parsed_len), 0);
        assert_int_equal(parsed_len, spki_len);
        assert_memory_equal(parsed, spki, spki_len);
        free(parsed);
        free(csr);
    }
    free(spki);
    rm_x509_free_secret(key, key_len);
}

static void test_make_round_trip(void **state)
{
    uint8_t *spki, *parsed;
    char *key, *csr;
    size_t key_len, spki_len, csr_len, parsed_len;

    assert_code(rm_x509_generate_key(&key, &key_len, &spki, &spki_len), 0);
    assert_code(rm_csr_make(key, key_len, LEAF_ID, &csr, &csr_len), 0);
    assert_code(rm_csr_parse_pem(csr, csr_len, &parsed, &parsed_len), 0);
    assert_int_equal(parsed_len, spki_len);
    assert_memory_equal(parsed, spki, spki_len);
    free(parsed);
    free(csr);
    free(spki);
    rm_x509_free_secret(key, key_len);
}

static void test_make_sec1_key(void **state)
{
    uint8_t *parsed;
    char *key, *csr, *want;
    size_t key_len, csr_len, parsed_len, want_len;

    need_openssl();
    assert_int_equal(sh("openssl ecparam -name prime256v1 -genkey -noout -out sec1.pem"), 0);
    key = read_file("sec1.pem", &key_len);
    assert_non_null(strstr(key, "-----BEGIN EC PRIVATE KEY-----"));
    assert_code(rm_csr_make(key, key_len, LEAF_ID, &csr, &csr_len), 0);
    write_file("csr.pem", csr, csr_len);
    assert_true(openssl_verifies("csr.pem"));
    assert_code(rm_csr_parse_pem(csr, csr_len, &parsed, &parsed_len), 0);
    assert_int_equal(sh("openssl pkey -in sec1.pem -pubout -outform DER -out want.der"), 0);
    want = read_file("want.der", &want_len);
    assert_int_equal(parsed_len, want_len);
    assert_memory_equal(parsed, want, want_len);
    free(want);
    free(parsed);
    free(csr);
    rm_x509_free_secret(key, key_len);
}

static void test_make_rejects_other_keys(void **state)
{
    char *key, *csr = (char *)1;
    size_t key_len, csr_len;

    need_openssl();
    assert_int_equal(sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.pem"), 0);
    key = read_file("p384.pem", &key_len);
    assert_code(rm_csr_make(key, key_len, LEAF_ID, &csr, &csr_len), RM_ERR_SVID_KEY_TYPE);
    assert_null(csr);
    free(key);
    assert_int_equal(sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem"), 0);
    key = read_file("rsa.pem", &key_len);
    assert_code(rm_csr_make(key, key_len, LEAF_ID, &csr, &csr_len), RM_ERR_SVID_KEY_TYPE);
    free(key);
}

static void test_make_rejects_bad_input(void **state)
{
    uint8_t *spki;
    char *key, *csr = (char *)1;
    size_t key_len, spki_len, csr_len;

    assert_code(rm_csr_make("junk", 4, LEAF_ID, &csr, &csr_len), -EINVAL);
    assert_null(csr);
    assert_code(rm_csr_make("", 0, LEAF_ID, &csr, &csr_len), -EINVAL);
    assert_code(rm_x509_generate_key(&key, &key_len, &spki, &spki_len), 0);
    /* the ID hint must still be a SPIFFE ID */
    assert_code(rm_csr_make(key, key_len, "https://example.org/x", &csr, &csr_len), -EINVAL);
    assert_code(rm_csr_make(key, key_len, "spiffe://example.org/a/../b", &csr, &csr_len), -EINVAL);
    assert_null(csr);
    free(spki);
    rm_x509_free_secret(key, key_len);
}

/* ---- rm_csr_parse_pem on requests made by the openssl CLI ---------------------------------------------------- */

static void test_parse_openssl_p256(void **state)
{
    need_openssl();
    openssl_csr("k.pem", "r.pem", "");
    parse_file_expect_key("r.pem", "k.pem");
}

/* The request may ask for any identity: parsing takes its key and nothing else (the CA test checks that the
 * identity signed is the attested one). */
static void test_parse_request_for_other_identity(void **state)
{
    char *out;

    need_openssl();
    assert_int_equal(sh("openssl ecparam -name prime256v1 -genkey -noout -out k.pem"), 0);
    assert_int_equal(
        sh("openssl req -new -key k.pem -subj '/CN=%s' -addext subjectAltName=URI:%s -out r.pem", OTHER_CN, OTHER_ID),
        0);
    assert_int_equal(sh("openssl req -in r.pem -noout -text"), 0);
    out = output();
    assert_non_null(strstr(out, "CN = " OTHER_ID));
    assert_non_null(strstr(out, "URI:" OTHER_ID));
    free(out);
    parse_file_expect_key("r.pem", "k.pem");
}

static void test_parse_other_key_types(void **state)
{
    need_openssl();
    assert_int_equal(sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.pem && "
                        "openssl req -new -key p384.pem -subj /O=ringmesh-test -out p384.csr"),
                     0);
    parse_file("p384.csr", RM_ERR_SVID_KEY_TYPE);
    assert_int_equal(sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem && "
                        "openssl req -new -key rsa.pem -subj /O=ringmesh-test -out rsa.csr"),
                     0);
    parse_file("rsa.csr", RM_ERR_SVID_KEY_TYPE);
}

static void test_parse_sha1_signature(void **state)
{
    need_openssl();
    assert_int_equal(sh("openssl ecparam -name prime256v1 -genkey -noout -out k.pem && "
                        "openssl req -new -sha1 -key k.pem -subj /O=ringmesh-test -out sha1.csr"),
                     0);
    assert_true(openssl_verifies("sha1.csr")); /* a sound signature, over the wrong hash */
    parse_file("sha1.csr", RM_ERR_CSR_SIGNATURE);
}

/* Loads r.pem (made by openssl_csr) as DER. */
static uint8_t *request_der(size_t *len)
{
    assert_int_equal(sh("openssl req -in r.pem -outform DER -out r.der"), 0);
    return (uint8_t *)read_file("r.der", len);
}

static void test_parse_tampered_signature(void **state)
{
    uint8_t *der;
    size_t len;

    need_openssl();
    openssl_csr("k.pem", "r.pem", "");
    der = request_der(&len);
    write_der_as_pem("same.pem", der, len);
    parse_file("same.pem", 0); /* re-encoding alone changes nothing */

    /* the last byte of the DER is the last byte of the signature's s value */
    der[len - 1] ^= 0x01;
    write_der_as_pem("t.pem", der, len);
    assert_false(openssl_verifies("t.pem"));
    parse_file("t.pem", RM_ERR_CSR_SIGNATURE);
    der[len - 1] ^= 0x01;

    /* the signature BIT STRING's tag: the request no longer parses */
    {
        size_t i;
        /* the signature is the last element: BIT STRING, length, 0 unused bits, SEQUENCE { r, s } */
        for (i = len - 1; i != 0; --i)
            if (der[i] == 0x03 && der[i + 2] == 0x00 && der[i + 3] == 0x30 && (size_t)der[i + 1] + i + 2 == len)
                break;
        assert_true(i != 0);
        der[i] = 0x04;
        write_der_as_pem("t.pem", der, len);
        parse_file("t.pem", RM_ERR_CSR_PARSE);
    }
    free(der);
}

static void test_parse_tampered_subject(void **state)
{
    uint8_t *der, *value;
    size_t len;

    need_openssl();
    openssl_csr("k.pem", "r.pem", "");
    der = request_der(&len);
    assert_non_null(value = memmem(der, len, "ringmesh-test", 13));

    /* a different, still well-formed subject: only the signature tells */
    value[0] = 's';
    write_der_as_pem("t.pem", der, len);
    assert_false(openssl_verifies("t.pem"));
    parse_file("t.pem", RM_ERR_CSR_SIGNATURE);
    value[0] = 'r';

    /* the value's length made longer than the Name holds: the request no longer parses */
    value[-1] = 0x7f;
    write_der_as_pem("t.pem", der, len);
    parse_file("t.pem", RM_ERR_CSR_PARSE);
    free(der);
}

static void test_parse_point_off_curve(void **state)
{
    uint8_t *der, *point;
    size_t len;

    need_openssl();
    openssl_csr("k.pem", "r.pem", "");
    der = request_der(&len);
    /* BIT STRING of 66 bytes: 0 unused bits, 0x04, X, Y */
    assert_non_null(point = memmem(der, len, "\x03\x42\x00\x04", 4));
    point[4 + 63] ^= 0x01; /* last byte of Y */
    write_der_as_pem("t.pem", der, len);
    parse_file("t.pem", RM_ERR_SVID_KEY_TYPE);
    free(der);
}

/* ---- rm_csr_parse_pem on what is not a request -------------------------------------------------------------- */

static void test_parse_garbage(void **state)
{
    static const char NOT_BASE64[] = "-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n";
    static const char NOT_DER[] = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
    uint8_t *spki = (uint8_t *)1;
    size_t spki_len;

    assert_code(rm_csr_parse_pem("", 0, &spki, &spki_len), RM_ERR_CSR_PARSE);
    assert_null(spki);
    assert_code(rm_csr_parse_pem("not a request", 13, &spki, &spki_len), RM_ERR_CSR_PARSE);
    assert_code(rm_csr_parse_pem(NOT_BASE64, sizeof(NOT_BASE64) - 1, &spki, &spki_len), RM_ERR_CSR_PARSE);
    assert_code(rm_csr_parse_pem(NOT_DER, sizeof(NOT_DER) - 1, &spki, &spki_len), RM_ERR_CSR_PARSE);
    assert_null(spki);
}

static void test_parse_truncated(void **state)
{
    uint8_t *der;
    size_t len;

    need_openssl();
    openssl_csr("k.pem", "r.pem", "");
    der = request_der(&len);
    write_der_as_pem("t.pem", der, len - 10);
    parse_file("t.pem", RM_ERR_CSR_PARSE);
    free(der);
}

static void test_parse_certificate_is_not_a_request(void **state)
{
    need_openssl();
    assert_int_equal(sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ck.pem "
                        "-subj /O=ringmesh-test -days 1 -out cert.pem"),
                     0);
    parse_file("cert.pem", RM_ERR_CSR_PARSE);
}

static void test_parse_too_large(void **state)
{
    uint8_t *spki, *parsed;
    char *key, *csr, *big;
    size_t key_len, spki_len, csr_len, parsed_len, big_len = 16 * 1024 + 1;

    assert_code(rm_x509_generate_key(&key, &key_len, &spki, &spki_len), 0);
    assert_code(rm_csr_make(key, key_len, LEAF_ID, &csr, &csr_len), 0);
    /* the same valid request, padded with trailing newlines to just over 16 KiB; at exactly 16 KiB it passes */
    assert_non_null(big = malloc(big_len));
    memset(big, '\n', big_len);
    memcpy(big, csr, csr_len);
    assert_code(rm_csr_parse_pem(big, big_len - 1, &parsed, &parsed_len), 0);
    free(parsed);
    parsed = (uint8_t *)1;
    assert_code(rm_csr_parse_pem(big, big_len, &parsed, &parsed_len), RM_ERR_CSR_PARSE);
    assert_null(parsed);
    free(big);
    free(csr);
    free(spki);
    rm_x509_free_secret(key, key_len);
}

/* ---- fixture ------------------------------------------------------------------------------------------------ */

static int make_dir(void **state)
{
    strcpy(work_dir, "/tmp/rm-test-csr-XXXXXX");
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
        cmocka_unit_test(test_make_read_by_openssl),
        cmocka_unit_test(test_make_without_id),
        cmocka_unit_test(test_make_id_lengths),
        cmocka_unit_test(test_make_round_trip),
        cmocka_unit_test(test_make_sec1_key),
        cmocka_unit_test(test_make_rejects_other_keys),
        cmocka_unit_test(test_make_rejects_bad_input),
        cmocka_unit_test(test_parse_openssl_p256),
        cmocka_unit_test(test_parse_request_for_other_identity),
        cmocka_unit_test(test_parse_other_key_types),
        cmocka_unit_test(test_parse_sha1_signature),
        cmocka_unit_test(test_parse_tampered_signature),
        cmocka_unit_test(test_parse_tampered_subject),
        cmocka_unit_test(test_parse_point_off_curve),
        cmocka_unit_test(test_parse_garbage),
        cmocka_unit_test(test_parse_truncated),
        cmocka_unit_test(test_parse_certificate_is_not_a_request),
        cmocka_unit_test(test_parse_too_large),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
