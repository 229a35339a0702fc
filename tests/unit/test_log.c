/* JSON-lines logging: every line is one valid JSON object with ts/level/event first, values escaped, filtered
 * levels write nothing, and an over-long line is cut at a field boundary and marked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/error.h"
#include "ringmesh/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int pipefd[2];

static size_t drain(char *buf, size_t len)
{
    ssize_t n = read(pipefd[0], buf, len - 1);
    if (n < 0)
        n = 0;
    buf[n] = 0;
    return (size_t)n;
}

static int setup(void **state)
{
    assert_int_equal(pipe2(pipefd, O_NONBLOCK), 0);
    rm_log_configure(RM_LOG_INFO, pipefd[1]);
    return 0;
}

static void test_fields_and_order(void **state)
{
    char out[8192];
    rm_log_line_t l;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(8080)};
    inet_pton(AF_INET, "198.18.0.5", &sin.sin_addr);
    rm_log_begin(&l, RM_LOG_WARN, "peer_rejected");
    rm_log_str(&l, "reason", "bad \"quote\" \\ and\nnewline\x01");
    rm_log_int(&l, "n", -42);
    rm_log_uint(&l, "u", 18446744073709551615ull);
    rm_log_bool(&l, "b", 1);
    rm_log_addr(&l, "src", (struct sockaddr *)&sin);
    rm_log_err(&l, "error", RM_ERR_SVID_EXPIRED);
    rm_log_str(&l, "nothing", NULL);
    rm_log_end(&l);
    size_t n = drain(out, sizeof(out));
    assert_true(n > 0);
    assert_int_equal(out[n - 1], '\n');
    assert_memory_equal(out, "{\"ts\":\"", 7);
    assert_non_null(strstr(out, "\",\"level\":\"warn\",\"event\":\"peer_rejected\","));
    assert_non_null(strstr(out, "\"reason\":\"bad \\\"quote\\\" \\\\ and\\nnewline\\u0001\""));
    assert_non_null(strstr(out, "\"n\":-42,\"u\":18446744073709551615,\"b\":true"));
    assert_non_null(strstr(out, "\"src\":\"198.18.0.5:8080\""));
    assert_non_null(strstr(out, "\"error\":\"X509-SVID has expired (now is after notAfter)\""));
    assert_non_null(strstr(out, "\"nothing\":null}"));
    /* exactly one line */
    assert_ptr_equal(strchr(out, '\n'), out + n - 1);
}

static void test_level_filter(void **state)
{
    char out[256];
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_DEBUG, "noise");
    rm_log_str(&l, "k", "v");
    rm_log_end(&l);
    assert_int_equal(drain(out, sizeof(out)), 0);
    rm_log_level_t lv;
    assert_int_equal(rm_log_level_parse("debug", &lv), 0);
    assert_int_equal(lv, RM_LOG_DEBUG);
    assert_int_equal(rm_log_level_parse("loud", &lv), -1);
}

static void test_truncation_keeps_valid_json(void **state)
{
    static char out[RM_LOG_LINE_MAX * 2];
    char big[1500];
    rm_log_line_t l;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    rm_log_begin(&l, RM_LOG_INFO, "big");
    for (int i = 0; i < 5; i++)
        rm_log_str(&l, "field", big);
    rm_log_end(&l);
    size_t n = drain(out, sizeof(out));
    assert_true(n <= RM_LOG_LINE_MAX);
    assert_non_null(strstr(out, ",\"truncated\":true}\n"));
    /* cut at a field boundary: every "field" present is complete (1499 x's then a quote) */
    int quotes = 0;
    for (size_t i = 0; i < n; i++)
        quotes += out[i] == '"';
    assert_int_equal(quotes % 2, 0);
}

static void test_strerror_names_every_class(void **state)
{
    assert_string_equal(rm_strerror(0), "ok");
    assert_string_equal(rm_strerror(-ECONNREFUSED), "Connection refused");
    assert_string_not_equal(rm_strerror(RM_ERR_TLS_UNTRUSTED), "unknown error");
    assert_string_not_equal(rm_strerror(RM_ERR_SPIFFE_DOT_SEGMENT), "unknown error");
    assert_string_not_equal(rm_strerror(RM_ERR_CONFIG_PARSE), "unknown error");
    assert_string_equal(rm_strerror(-999999), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_and_order),
        cmocka_unit_test(test_level_filter),
        cmocka_unit_test(test_truncation_keeps_valid_json),
        cmocka_unit_test(test_strerror_names_every_class),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
