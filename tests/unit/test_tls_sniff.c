/* rm_tls_sniff: mesh ClientHello vs the app's own TLS vs plaintext, from the first bytes and never past them; and
 * rm_tls_client_hello_parse: the versions, cipher suites and groups a ClientHello offers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ringmesh/error.h"
#include "ringmesh/tls.h"

static const char *g_sni;    /* the server name build_client_hello puts in (NULL: an empty server_name extension) */
static const uint8_t *g_ext; /* raw extensions build_client_hello adds at the end (g_ext_len bytes) */
static size_t g_ext_len;

/* Builds a TLS record holding a ClientHello with the given ALPN names (NULL-terminated list; NULL = no ALPN
 * extension) and one unrelated extension before it. Returns the length. */
static size_t build_client_hello(uint8_t *out, const char *const *alpn)
{
    uint8_t body[1024];
    size_t n = 0, ext_start, ext_len_at;

    body[n++] = 0x03, body[n++] = 0x03;  /* legacy_version */
    memset(body + n, 0xab, 32), n += 32; /* random */
    body[n++] = 32;                      /* legacy_session_id */
    memset(body + n, 0x11, 32), n += 32;
    body[n++] = 0, body[n++] = 2, body[n++] = 0x13, body[n++] = 0x01; /* cipher_suites: TLS_AES_128_GCM_SHA256 */
    body[n++] = 1, body[n++] = 0;                                     /* compression: null */
    ext_len_at = n;
    n += 2;
    ext_start = n;
    if (g_sni == NULL) {
        /* server_name extension, empty list content (type 0) */
        body[n++] = 0, body[n++] = 0, body[n++] = 0, body[n++] = 0;
    } else {
        /* server_name extension (RFC 6066): list of one host_name */
        size_t l = strlen(g_sni);
        body[n++] = 0, body[n++] = 0;
        body[n++] = (uint8_t)((l + 5) >> 8), body[n++] = (uint8_t)(l + 5);
        body[n++] = (uint8_t)((l + 3) >> 8), body[n++] = (uint8_t)(l + 3);
        body[n++] = 0; /* host_name */
        body[n++] = (uint8_t)(l >> 8), body[n++] = (uint8_t)l;
        memcpy(body + n, g_sni, l), n += l;
    }
    if (alpn != NULL) {
        size_t list = 0;
        for (size_t i = 0; alpn[i] != NULL; i++)
            list += 1 + strlen(alpn[i]);
        body[n++] = 0, body[n++] = 16;
        body[n++] = (uint8_t)((list + 2) >> 8), body[n++] = (uint8_t)(list + 2);
        body[n++] = (uint8_t)(list >> 8), body[n++] = (uint8_t)list;
        for (size_t i = 0; alpn[i] != NULL; i++) {
            size_t l = strlen(alpn[i]);
            body[n++] = (uint8_t)l;
            memcpy(body + n, alpn[i], l), n += l;
        }
    }
    if (g_ext_len != 0)
        memcpy(body + n, g_ext, g_ext_len), n += g_ext_len;
    body[ext_len_at] = (uint8_t)((n - ext_start) >> 8);
    body[ext_len_at + 1] = (uint8_t)(n - ext_start);

    size_t hs = 4 + n, o = 0;
    out[o++] = 0x16, out[o++] = 0x03, out[o++] = 0x01;
    out[o++] = (uint8_t)(hs >> 8), out[o++] = (uint8_t)hs;
    out[o++] = 0x01, out[o++] = 0, out[o++] = (uint8_t)(n >> 8), out[o++] = (uint8_t)n;
    memcpy(out + o, body, n);
    return o + n;
}

static void test_mesh_alpn_detected(void **state)
{
    uint8_t buf[2048];
    const char *alpn[] = {"h2", RM_TLS_ALPN, NULL};
    size_t n = build_client_hello(buf, alpn);
    assert_int_equal(rm_tls_sniff(buf, n), RM_TLS_SNIFF_MESH);
}

/* The pooled HTTP/2 connections between proxies offer only ringmesh/h2: they are mesh connections too. */
static void test_mesh_h2_alpn_detected(void **state)
{
    uint8_t buf[2048];
    const char *alpn[] = {RM_TLS_ALPN_H2, NULL};
    size_t n = build_client_hello(buf, alpn);
    assert_int_equal(rm_tls_sniff(buf, n), RM_TLS_SNIFF_MESH);
    /* a name that only starts like it is not it */
    const char *prefix[] = {"ringmesh/h2c", "ringmesh/h", NULL};
    n = build_client_hello(buf, prefix);
    assert_int_equal(rm_tls_sniff(buf, n), RM_TLS_SNIFF_TLS_OTHER);
}

static void test_other_alpn_is_app_tls(void **state)
{
    uint8_t buf[2048];
    const char *alpn[] = {"h2", "http/1.1", NULL};
    size_t n = build_client_hello(buf, alpn);
    assert_int_equal(rm_tls_sniff(buf, n), RM_TLS_SNIFF_TLS_OTHER);
    /* a name that only starts like ours is not ours */
    const char *prefix[] = {"ringmesh/10", NULL};
    n = build_client_hello(buf, prefix);
    assert_int_equal(rm_tls_sniff(buf, n), RM_TLS_SNIFF_TLS_OTHER);
}

static void test_server_name(void **state)
{
    uint8_t buf[2048];
    char name[256];
    const char *alpn[] = {RM_TLS_ALPN, NULL};
    size_t n;

    g_sni = "outbound_.8080_._.orders.shop.svc.cluster.local";
    n = build_client_hello(buf, alpn);
    assert_int_equal(rm_tls_sniff(buf, n), RM_TLS_SNIFF_MESH); /* the ALPN is still found after it */
    assert_int_equal(rm_tls_client_hello_sni(buf, n, name, sizeof(name)), strlen(g_sni));
    assert_string_equal(name, g_sni);
    /* does not fit: nothing, not a cut name */
    assert_int_equal(rm_tls_client_hello_sni(buf, n, name, 10), 0);
    assert_string_equal(name, "");
    /* never reads past len: every prefix gives nothing */
    for (size_t k = 0; k < n; k++)
        assert_int_equal(rm_tls_client_hello_sni(buf, k, name, sizeof(name)), 0);
    /* a name with a control character is refused */
    g_sni = "bad\x01name";
    n = build_client_hello(buf, alpn);
    assert_int_equal(rm_tls_client_hello_sni(buf, n, name, sizeof(name)), 0);
    /* no name */
    g_sni = NULL;
    n = build_client_hello(buf, alpn);
    assert_int_equal(rm_tls_client_hello_sni(buf, n, name, sizeof(name)), 0);
    assert_int_equal(rm_tls_client_hello_sni((const uint8_t *)"GET / HTTP/1.1\r\n", 16, name, sizeof(name)), 0);
}

static void test_no_alpn_is_app_tls(void **state)
{
    uint8_t buf[2048];
    size_t n = build_client_hello(buf, NULL);
    assert_int_equal(rm_tls_sniff(buf, n), RM_TLS_SNIFF_TLS_OTHER);
}

static void test_every_prefix_needs_more(void **state)
{
    uint8_t buf[2048];
    const char *alpn[] = {RM_TLS_ALPN, NULL};
    size_t n = build_client_hello(buf, alpn);
    /* until the whole record is there, the answer is "need more", never a guess */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rm_tls_sniff(buf, i), RM_TLS_SNIFF_NEED_MORE);
    assert_int_equal(rm_tls_sniff(buf, n), RM_TLS_SNIFF_MESH);
}

static void test_plaintext_protocols(void **state)
{
    const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    const char *h2 = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const uint8_t not_tls_version[] = {0x16, 0x01, 0x00};
    assert_int_equal(rm_tls_sniff((const uint8_t *)http, strlen(http)), RM_TLS_SNIFF_PLAINTEXT);
    assert_int_equal(rm_tls_sniff((const uint8_t *)h2, 1), RM_TLS_SNIFF_PLAINTEXT);
    assert_int_equal(rm_tls_sniff(not_tls_version, sizeof(not_tls_version)), RM_TLS_SNIFF_PLAINTEXT);
}

static void test_non_client_hello_and_garbage(void **state)
{
    uint8_t buf[2048];
    const char *alpn[] = {RM_TLS_ALPN, NULL};
    size_t n = build_client_hello(buf, alpn);
    buf[5] = 0x02; /* ServerHello */
    assert_int_equal(rm_tls_sniff(buf, n), RM_TLS_SNIFF_TLS_OTHER);

    /* handshake length larger than the record: treated as not ours, never read past the buffer */
    n = build_client_hello(buf, alpn);
    buf[7] = 0xff;
    assert_int_equal(rm_tls_sniff(buf, n), RM_TLS_SNIFF_TLS_OTHER);

    /* truncated extension list inside a complete record */
    n = build_client_hello(buf, alpn);
    uint8_t *copy = malloc(n); /* exact-size heap copy: ASan/valgrind catch any over-read */
    memcpy(copy, buf, n);
    copy[n - 3] = 0xff; /* corrupt a byte of the offered ALPN name */
    rm_tls_sniff_t k = rm_tls_sniff(copy, n);
    assert_true(k == RM_TLS_SNIFF_TLS_OTHER);
    free(copy);
}

/* supported_versions {0x7f1c, TLS 1.3, TLS 1.2}, then supported_groups {X448, X25519, P-256} */
static const uint8_t offer_exts[] = {0,  43, 0, 7, 6, 0x7f, 0x1c, 0x03, 0x04, 0x03, 0x03, 0,
                                     10, 0,  8, 0, 6, 0,    30,   0,    29,   0,    23};

static void test_client_hello_offer(void **state)
{
    uint8_t buf[2048];
    const char *alpn[] = {RM_TLS_ALPN, NULL};
    rm_tls_client_hello_t hello;
    size_t n;

    g_ext = offer_exts;
    g_ext_len = sizeof(offer_exts);
    n = build_client_hello(buf, alpn);
    assert_int_equal(rm_tls_client_hello_parse(buf, n, &hello), 0);
    assert_int_equal(hello.legacy_version, 0x0303);
    assert_true(hello.versions.present);
    assert_int_equal(hello.versions.num, 3);
    assert_int_equal(rm_tls_u16_list_at(&hello.versions, 0), 0x7f1c);
    assert_true(rm_tls_u16_list_has(&hello.versions, 0x0304));
    assert_false(rm_tls_u16_list_has(&hello.versions, 0x0302));
    assert_int_equal(hello.suites.num, 1);
    assert_int_equal(rm_tls_u16_list_at(&hello.suites, 0), 0x1301);
    assert_int_equal(hello.groups.num, 3);
    assert_int_equal(rm_tls_u16_list_at(&hello.groups, 0), 30);
    assert_int_equal(rm_tls_u16_list_at(&hello.groups, 2), 23);
    assert_false(rm_tls_u16_list_has(&hello.groups, 24));
    /* every prefix is "not all there yet", never a verdict */
    for (size_t k = 0; k < n; k++)
        assert_int_equal(rm_tls_client_hello_parse(buf, k, &hello), RM_ERR_TLS_WANT_IO);

    /* a TLS 1.2 ClientHello: no supported_versions, no supported_groups */
    g_ext = NULL;
    g_ext_len = 0;
    n = build_client_hello(buf, alpn);
    assert_int_equal(rm_tls_client_hello_parse(buf, n, &hello), 0);
    assert_false(hello.versions.present);
    assert_false(rm_tls_u16_list_has(&hello.versions, 0x0304));
    assert_false(hello.groups.present);
    assert_int_equal(hello.groups.num, 0);
}

static void test_client_hello_malformed(void **state)
{
    static const uint8_t odd_groups[] = {0, 10, 0, 3, 0, 1, 29};          /* a list of one and a half groups */
    static const uint8_t short_versions[] = {0, 43, 0, 3, 4, 0x03, 0x04}; /* says 4 bytes, holds 2 */
    uint8_t buf[2048];
    const char *alpn[] = {RM_TLS_ALPN, NULL};
    rm_tls_client_hello_t hello;
    size_t n;

    g_ext = odd_groups;
    g_ext_len = sizeof(odd_groups);
    n = build_client_hello(buf, alpn);
    assert_int_equal(rm_tls_client_hello_parse(buf, n, &hello), RM_ERR_TLS_PROTOCOL);
    g_ext = short_versions;
    g_ext_len = sizeof(short_versions);
    n = build_client_hello(buf, alpn);
    assert_int_equal(rm_tls_client_hello_parse(buf, n, &hello), RM_ERR_TLS_PROTOCOL);
    g_ext = NULL;
    g_ext_len = 0;
    n = build_client_hello(buf, alpn);
    buf[5] = 0x02; /* a ServerHello */
    assert_int_equal(rm_tls_client_hello_parse(buf, n, &hello), RM_ERR_TLS_PROTOCOL);
    assert_int_equal(rm_tls_client_hello_parse((const uint8_t *)"GET / HTTP/1.1\r\n", 16, &hello), RM_ERR_TLS_PROTOCOL);
}

static void test_pseudo_random_inputs_do_not_crash(void **state)
{
    uint8_t buf[600];
    uint32_t x = 12345;
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(x % sizeof(buf));
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (uint8_t)(x >> 16);
        }
        if (n > 0)
            buf[0] = 0x16;
        if (n > 1)
            buf[1] = 0x03;
        uint8_t *copy = malloc(n + 1);
        memcpy(copy, buf, n);
        rm_tls_sniff_t k = rm_tls_sniff(copy, n);
        assert_true(k >= RM_TLS_SNIFF_NEED_MORE && k <= RM_TLS_SNIFF_MESH);
        rm_tls_client_hello_t hello;
        int r = rm_tls_client_hello_parse(copy, n, &hello);
        assert_true(r == 0 || r == RM_ERR_TLS_WANT_IO || r == RM_ERR_TLS_PROTOCOL);
        free(copy);
        x = x * 1103515245u + 12345u;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mesh_alpn_detected),
        cmocka_unit_test(test_mesh_h2_alpn_detected),
        cmocka_unit_test(test_other_alpn_is_app_tls),
        cmocka_unit_test(test_no_alpn_is_app_tls),
        cmocka_unit_test(test_server_name),
        cmocka_unit_test(test_every_prefix_needs_more),
        cmocka_unit_test(test_plaintext_protocols),
        cmocka_unit_test(test_non_client_hello_and_garbage),
        cmocka_unit_test(test_pseudo_random_inputs_do_not_crash),
        cmocka_unit_test(test_client_hello_offer),
        cmocka_unit_test(test_client_hello_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
