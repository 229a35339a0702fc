/* The configuration module (ringmesh/config.h): the file reader and its wipe flag, the positioned error's one-line
 * form, the position lookup, and each converter's accepted and refused inputs with the refusal's wording.
 *
 * The executable is linked with -Wl,--wrap=free: __wrap_free copies the bytes of the one buffer a test watches at
 * the moment it is freed, so that a test sees whether key material was zeroed before it went back to malloc. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "ringmesh/config.h"
#include "ringmesh/error.h"

void __real_free(void *p);

static const void *watched; /* the buffer whose contents are copied when it is freed */
static size_t watched_len;
static char freed_copy[256];
static int watched_freed;

void __wrap_free(void *p)
{
    if (p != NULL && p == watched) {
        memcpy(freed_copy, p, watched_len);
        watched_freed = 1;
        watched = NULL;
    }
    __real_free(p);
}

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/rm-test-config-XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, const char *text)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    return path;
}

/* ------------------------------------------------------------------ the reader */

static const char key_pem[] = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
                              "-----END PRIVATE KEY-----\n";

static int all_zero(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

static void free_watched(char *data, size_t len, unsigned flags)
{
    watched = data;
    watched_len = len;
    watched_freed = 0;
    rm_file_free(data, len, flags);
    assert_true(watched_freed);
}

static void test_read_secret_is_wiped_on_free(void **state)
{
    const char *path = write_file("key.pem", key_pem);
    char *data = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(rm_file_read_at(AT_FDCWD, path, NULL, 4096, RM_FILE_SECRET | RM_FILE_REGULAR, &data, &len, NULL),
                     0);
    assert_int_equal(len, strlen(key_pem));
    assert_string_equal(data, key_pem);
    free_watched(data, len, RM_FILE_SECRET);
    assert_true(all_zero(freed_copy, len));
}

static void test_read_plain_is_not_wiped(void **state)
{
    const char *path = write_file("plain.yaml", key_pem);
    char *data = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(rm_file_read(path, 4096, &data, &len), 0);
    assert_string_equal(data, key_pem);
    /* the check above is only meaningful if a buffer freed without the flag keeps its bytes */
    free_watched(data, len, 0);
    assert_memory_equal(freed_copy, key_pem, len);
}

static void test_read_secret_from_a_pipe(void **state)
{
    int fds[2];
    char path[64], *data = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], key_pem, strlen(key_pem)), (ssize_t)strlen(key_pem));
    close(fds[1]);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[0]);
    /* not a regular file: read to its end, unless RM_FILE_REGULAR refuses it */
    assert_int_equal(rm_file_read_at(AT_FDCWD, path, NULL, 4096, RM_FILE_SECRET, &data, &len, NULL), 0);
    close(fds[0]);
    assert_string_equal(data, key_pem);
    free_watched(data, len, RM_FILE_SECRET);
    assert_true(all_zero(freed_copy, len));
}

static void test_read_refusals(void **state)
{
    rm_config_error_t err;
    char line[512], *data = NULL, path[128];
    size_t len = 0;

    (void)state;
    snprintf(path, sizeof(path), "%s/missing.yaml", tmpdir);
    assert_int_equal(rm_file_read_at(AT_FDCWD, path, "missing.yaml", 4096, 0, &data, &len, &err), -ENOENT);
    rm_config_error_format(&err, line, sizeof(line));
    assert_string_equal(line, "missing.yaml: cannot open: No such file or directory");
    assert_null(data);

    assert_int_equal(rm_file_read_at(AT_FDCWD, tmpdir, "dir", 4096, RM_FILE_REGULAR, &data, &len, &err), -EINVAL);
    rm_config_error_format(&err, line, sizeof(line));
    assert_string_equal(line, "dir: not a regular file");

    write_file("big.yaml", "0123456789");
    snprintf(path, sizeof(path), "%s/big.yaml", tmpdir);
    assert_int_equal(rm_file_read_at(AT_FDCWD, path, "big.yaml", 9, RM_FILE_REGULAR, &data, &len, &err), -EFBIG);
    rm_config_error_format(&err, line, sizeof(line));
    assert_string_equal(line, "big.yaml: larger than 9 bytes");
    assert_int_equal(rm_file_read(path, 9, &data, &len), -EFBIG);
    assert_int_equal(rm_file_read(path, 10, &data, &len), 0);
    assert_int_equal(len, 10);
    rm_file_free(data, len, 0);

    /* relative to a directory descriptor, as the control plane reads its directory */
    int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    assert_int_equal(rm_file_read_at(dfd, "big.yaml", NULL, 100, RM_FILE_REGULAR, &data, &len, NULL), 0);
    assert_string_equal(data, "0123456789");
    rm_file_free(data, len, 0);
    close(dfd);
}

/* ------------------------------------------------------------------ the error */

static void test_error_format(void **state)
{
    rm_config_error_t e;
    char line[512];

    (void)state;
    assert_int_equal(rm_config_error_set(&e, RM_ERR_CONFIG_VALUE, "mesh.yaml", (rm_yaml_pos_t){3, 7}, "spec.ports[1]",
                                         "\"%s\" is not a port", "0"),
                     RM_ERR_CONFIG_VALUE);
    assert_int_equal(e.code, RM_ERR_CONFIG_VALUE);
    rm_config_error_format(&e, line, sizeof(line));
    assert_string_equal(line, "mesh.yaml:3:7: spec.ports[1]: \"0\" is not a port");

    rm_config_error_set(&e, RM_ERR_CONFIG_PARSE, "a.yaml", (rm_yaml_pos_t){1, 1}, "", "the file is empty");
    rm_config_error_format(&e, line, sizeof(line));
    assert_string_equal(line, "a.yaml:1:1: (document): the file is empty");

    rm_config_error_set(&e, RM_ERR_CONFIG_VALUE, "dir", (rm_yaml_pos_t){0, 0}, "kind", "no MeshConfig");
    rm_config_error_format(&e, line, sizeof(line));
    assert_string_equal(line, "dir: kind: no MeshConfig");

    rm_config_error_set(&e, RM_ERR_CONFIG_IO, "dir", (rm_yaml_pos_t){0, 0}, NULL, "cannot open");
    rm_config_error_format(&e, line, sizeof(line));
    assert_string_equal(line, "dir: cannot open");

    /* a short buffer is cut, never overrun */
    rm_config_error_format(&e, line, 4);
    assert_string_equal(line, "dir");

    /* the parts form, which the policy loader's findings use too */
    rm_config_format(line, sizeof(line), "p.yaml", 4, 9, "spec.rules[0]", "warning: ", "uses HTTP-only fields");
    assert_string_equal(line, "p.yaml:4:9: spec.rules[0]: warning: uses HTTP-only fields");
    rm_config_format(line, sizeof(line), NULL, 1, 1, NULL, "", "aliases are not allowed");
    assert_string_equal(line, "-:1:1: (document): aliases are not allowed");
    rm_config_format(line, sizeof(line), "dir/missing", 0, 0, "", "", "cannot read: No such file or directory");
    assert_string_equal(line, "dir/missing: cannot read: No such file or directory");

    /* the string form, for what reports in a caller's buffer */
    assert_int_equal(rm_config_fail(line, sizeof(line), -EINVAL, "%s: not a key", "ca.key"), -EINVAL);
    assert_string_equal(line, "ca.key: not a key");
    assert_int_equal(rm_config_fail(NULL, 0, -EIO, "ignored"), -EIO);
}

/* ------------------------------------------------------------------ positions */

static rm_yaml_pos_map_t map;
static rm_config_error_t err;
static rm_config_doc_t doc = {.file = "f.yaml", .map = &map, .fallback = {2, 1}, .err = &err};
static char line[1024];

static const char *last_error(void)
{
    rm_config_error_format(&err, line, sizeof(line));
    return line;
}

static void test_positions(void **state)
{
    (void)state;
    assert_int_equal(rm_yaml_pos_map_add(&map, "spec", (rm_yaml_pos_t){4, 1}, (rm_yaml_pos_t){5, 3}), 0);
    assert_int_equal(rm_yaml_pos_map_add(&map, "spec.ports", (rm_yaml_pos_t){5, 3}, (rm_yaml_pos_t){5, 10}), 0);
    assert_int_equal(rm_yaml_pos_map_add(&map, "spec.ports[0]", (rm_yaml_pos_t){5, 11}, (rm_yaml_pos_t){5, 11}), 0);

    rm_yaml_pos_t p = rm_config_pos(&doc, "spec.ports[0]", 0);
    assert_int_equal(p.line, 5);
    assert_int_equal(p.col, 11);
    p = rm_config_pos(&doc, "spec.ports", 1);
    assert_int_equal(p.col, 3);
    /* not recorded: its closest recorded ancestor */
    p = rm_config_pos(&doc, "spec.ports[7]", 0);
    assert_int_equal(p.col, 10);
    p = rm_config_pos(&doc, "spec.other.deep[2].x", 0);
    assert_int_equal(p.line, 5);
    assert_int_equal(p.col, 3);
    /* nothing recorded on the way up: the fallback */
    p = rm_config_pos(&doc, "metadata.name", 0);
    assert_int_equal(p.line, 2);
    assert_int_equal(p.col, 1);

    assert_int_equal(rm_config_value_error(&doc, "spec.ports[0]", "bad"), RM_ERR_CONFIG_VALUE);
    assert_string_equal(last_error(), "f.yaml:5:11: spec.ports[0]: bad");
}

/* ------------------------------------------------------------------ converters */

#define REFUSED(call, want)                                                                                            \
    do {                                                                                                               \
        assert_int_equal((call), RM_ERR_CONFIG_VALUE);                                                                 \
        assert_string_equal(last_error(), (want));                                                                     \
    } while (0)

static void test_conv_bool_uint_port(void **state)
{
    int b = 7;
    unsigned u = 7;
    uint16_t port = 7;
    unsigned long ul;

    (void)state;
    assert_int_equal(rm_config_conv_bool(&doc, "x", NULL, &b), 0);
    assert_int_equal(b, 7);
    assert_int_equal(rm_config_conv_bool(&doc, "x", "true", &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(rm_config_conv_bool(&doc, "x", "false", &b), 0);
    assert_int_equal(b, 0);
    REFUSED(rm_config_conv_bool(&doc, "x", "yes", &b), "f.yaml:2:1: x: \"yes\" is not a boolean (want true or false)");
    REFUSED(rm_config_conv_bool(&doc, "x", "True", &b),
            "f.yaml:2:1: x: \"True\" is not a boolean (want true or false)");

    assert_int_equal(rm_config_conv_uint(&doc, "w", "64", 1, 64, &u), 0);
    assert_int_equal(u, 64);
    REFUSED(rm_config_conv_uint(&doc, "w", "65", 1, 64, &u), "f.yaml:2:1: w: \"65\" is not a whole number in 1..64");
    REFUSED(rm_config_conv_uint(&doc, "w", "-1", 1, 64, &u), "f.yaml:2:1: w: \"-1\" is not a whole number in 1..64");
    REFUSED(rm_config_conv_uint(&doc, "w", "", 0, 64, &u), "f.yaml:2:1: w: \"\" is not a whole number in 0..64");
    REFUSED(rm_config_conv_uint(&doc, "w", "12345678901", 0, 4294967295ul, &u),
            "f.yaml:2:1: w: \"12345678901\" is not a whole number in 0..4294967295");
    assert_int_equal(u, 64);

    assert_int_equal(rm_config_conv_port(&doc, "spec.ports[0]", "1", &port), 0);
    assert_int_equal(port, 1);
    assert_int_equal(rm_config_conv_port(&doc, "spec.ports[0]", "65535", &port), 0);
    assert_int_equal(port, 65535);
    REFUSED(rm_config_conv_port(&doc, "spec.ports[0]", "0", &port),
            "f.yaml:5:11: spec.ports[0]: \"0\" is not a port (want a whole number in 1..65535)");
    REFUSED(rm_config_conv_port(&doc, "spec.ports[0]", "65536", &port),
            "f.yaml:5:11: spec.ports[0]: \"65536\" is not a port (want a whole number in 1..65535)");
    REFUSED(rm_config_conv_port(&doc, "spec.ports[0]", "+80", &port),
            "f.yaml:5:11: spec.ports[0]: \"+80\" is not a port (want a whole number in 1..65535)");
    REFUSED(rm_config_conv_port(&doc, "spec.ports[0]", "000080", &port),
            "f.yaml:5:11: spec.ports[0]: \"000080\" is not a port (want a whole number in 1..65535)");
    assert_int_equal(port, 65535);
    assert_int_equal(rm_config_parse_uint("4294967295", 0, 4294967295ul, &ul), 0);
    assert_int_equal(ul, 4294967295ul);
}

static void test_conv_duration_string(void **state)
{
    uint64_t ms = 7;
    char *s = NULL;

    (void)state;
    assert_int_equal(rm_config_conv_duration(&doc, "t", "1m30s", UINT32_MAX, &ms), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(rm_config_conv_duration(&doc, "t", "0", UINT32_MAX, &ms), 0);
    assert_int_equal(ms, 0);
    REFUSED(rm_config_conv_duration(&doc, "t", "5", UINT32_MAX, &ms),
            "f.yaml:2:1: t: \"5\" is not a duration (want e.g. 500ms, 5s, 2m, 1h or 1m30s, at most 1193h)");
    REFUSED(rm_config_conv_duration(&doc, "t", "8761h", 8760ull * 3600 * 1000, &ms),
            "f.yaml:2:1: t: \"8761h\" is not a duration (want e.g. 500ms, 5s, 2m, 1h or 1m30s, at most 8760h)");
    assert_int_equal(ms, 0);

    assert_int_equal(rm_config_conv_string(&doc, "s", "a", &s), 0);
    assert_string_equal(s, "a");
    assert_int_equal(rm_config_conv_string(&doc, "s", "b", &s), 0); /* the old copy is freed */
    assert_string_equal(s, "b");
    REFUSED(rm_config_conv_string(&doc, "s", "", &s), "f.yaml:2:1: s: must not be empty");
    assert_string_equal(s, "b");
    free(s);
}

static void test_conv_trust_domain_and_ids(void **state)
{
    char *td = NULL;
    rm_spiffe_id_t id;

    (void)state;
    assert_int_equal(rm_config_conv_trust_domain(&doc, "trustDomain", "prod.example", &td), 0);
    assert_string_equal(td, "prod.example");
    assert_int_equal(rm_config_conv_trust_domain(&doc, "trustDomain", "Cluster.Local", &td), RM_ERR_CONFIG_VALUE);
    assert_non_null(strstr(last_error(), "f.yaml:2:1: trustDomain: \"Cluster.Local\" is not a SPIFFE trust domain: "));
    assert_int_equal(rm_config_conv_trust_domain(&doc, "trustDomain", "", &td), RM_ERR_CONFIG_VALUE);
    assert_string_equal(td, "prod.example");
    free(td);

    assert_int_equal(rm_config_conv_workload_id(&doc, "ids[0]", "spiffe://cluster.local/ns/a/sa/b", &id), 0);
    assert_int_equal(id.td_len, strlen("cluster.local"));
    REFUSED(rm_config_conv_workload_id(&doc, "ids[0]", "spiffe://cluster.local", &id),
            "f.yaml:2:1: ids[0]: \"spiffe://cluster.local\" names a trust domain, not a workload (it has no path)");
    assert_int_equal(rm_config_conv_workload_id(&doc, "ids[0]", "spiffe://cluster.local/ns/../sa/b", &id),
                     RM_ERR_CONFIG_VALUE);
    assert_non_null(strstr(last_error(), "\"spiffe://cluster.local/ns/../sa/b\" is not a SPIFFE ID: "));
    assert_int_equal(rm_config_conv_workload_id(&doc, "ids[0]", "http://x/y", &id), RM_ERR_CONFIG_VALUE);
}

static void test_conv_enum(void **state)
{
    static const char *const names[] = {"STRICT", "PERMISSIVE", "DISABLE", NULL};
    static const int values[] = {10, 20, 30};
    int v = 0;

    (void)state;
    assert_int_equal(rm_config_conv_enum(&doc, "mode", "PERMISSIVE", "an mTLS mode", names, values, &v), 0);
    assert_int_equal(v, 20);
    REFUSED(rm_config_conv_enum(&doc, "mode", "strict", "an mTLS mode", names, values, &v),
            "f.yaml:2:1: mode: \"strict\" is not an mTLS mode (want STRICT, PERMISSIVE or DISABLE)");
    assert_int_equal(v, 20);
}

static void test_dns_names_and_labels(void **state)
{
    size_t key_len;

    (void)state;
    assert_true(rm_config_dns_label_ok("shop-1", 6));
    assert_false(rm_config_dns_label_ok("-shop", 5));
    assert_false(rm_config_dns_label_ok("Shop", 4));
    assert_false(rm_config_dns_label_ok("", 0));
    assert_true(rm_config_dns_label_ok("a23456789012345678901234567890123456789012345678901234567890123", 63));
    assert_false(rm_config_dns_label_ok("a234567890123456789012345678901234567890123456789012345678901234", 64));
    assert_true(rm_config_dns_subdomain_ok("a.b-c.d"));
    assert_false(rm_config_dns_subdomain_ok("a..b"));
    assert_false(rm_config_dns_subdomain_ok("a.b."));

    assert_int_equal(rm_config_conv_dns_name(&doc, "metadata.name", "a.b", 0, NULL), 0);
    REFUSED(rm_config_conv_dns_name(&doc, "metadata.name", "a.b", 1, NULL),
            "f.yaml:2:1: metadata.name: \"a.b\" is not a DNS-1123 label (1 to 63 of a-z 0-9 -, starting and ending "
            "with a letter or digit)");
    REFUSED(rm_config_conv_dns_name(&doc, "sa", "A", 0, "a ServiceAccount name"),
            "f.yaml:2:1: sa: \"A\" is not a ServiceAccount name (a DNS-1123 subdomain: labels of a-z 0-9 - joined by "
            "dots, at most 253 characters)");

    assert_int_equal(rm_config_parse_label("zone=a", &key_len), 0);
    assert_int_equal(key_len, 4);
    assert_int_equal(rm_config_parse_label("zone=", &key_len), 0);
    assert_int_equal(rm_config_conv_label(&doc, "labels[0]", "k=v"), 0);
    REFUSED(rm_config_conv_label(&doc, "labels[0]", "=v"), "f.yaml:2:1: labels[0]: \"=v\" is not KEY=VALUE");
    REFUSED(rm_config_conv_label(&doc, "labels[0]", "zone"), "f.yaml:2:1: labels[0]: \"zone\" is not KEY=VALUE");
}

static void test_cidr(void **state)
{
    uint8_t a[16];
    unsigned prefix;
    static const uint8_t v4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 0};

    (void)state;
    assert_int_equal(rm_config_parse_cidr("198.18.0.0/15", a, &prefix), 0);
    assert_memory_equal(a, v4, 16);
    assert_int_equal(prefix, 96 + 15);
    assert_int_equal(rm_config_parse_cidr("198.18.0.0", a, &prefix), 0);
    assert_int_equal(prefix, 128);
    assert_int_equal(rm_config_parse_cidr("2001:db8::/32", a, &prefix), 0);
    assert_int_equal(prefix, 32);
    assert_int_equal(a[0], 0x20);
    assert_int_equal(rm_config_parse_cidr("::/0", a, &prefix), 0);
    assert_int_equal(prefix, 0);
    assert_int_equal(rm_config_parse_cidr("198.18.0.0/33", a, &prefix), -1);
    assert_int_equal(rm_config_parse_cidr("::/129", a, &prefix), -1);
    assert_int_equal(rm_config_parse_cidr("/8", a, &prefix), -1);
    assert_int_equal(rm_config_parse_cidr("198.18.0.0/", a, &prefix), -1);
    assert_int_equal(rm_config_parse_cidr("198.18.0.0/-1", a, &prefix), -1);
    assert_int_equal(rm_config_parse_cidr("198.18.0.0/8 ", a, &prefix), -1);
    assert_int_equal(rm_config_parse_cidr("198.18.0.256", a, &prefix), -1);
    assert_int_equal(rm_config_parse_cidr("example.org", a, &prefix), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_secret_is_wiped_on_free),
        cmocka_unit_test(test_read_plain_is_not_wiped),
        cmocka_unit_test(test_read_secret_from_a_pipe),
        cmocka_unit_test(test_read_refusals),
        cmocka_unit_test(test_error_format),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_conv_bool_uint_port),
        cmocka_unit_test(test_conv_duration_string),
        cmocka_unit_test(test_conv_trust_domain_and_ids),
        cmocka_unit_test(test_conv_enum),
        cmocka_unit_test(test_dns_names_and_labels),
        cmocka_unit_test(test_cidr),
    };
    int ret = cmocka_run_group_tests(tests, setup, teardown);
    rm_yaml_pos_map_dispose(&map);
    return ret;
}
