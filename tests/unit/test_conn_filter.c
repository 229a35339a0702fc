/* The connection filter table (sidecar/conn_filter.h): which filter claims a connection's first bytes, as the L4
 * decision asks them, and that the table runs a filter end to end through its ops alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "conn_filter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The one filter that claims `s` (NULL when none does), and whether any may still with more bytes. */
static const rm_conn_filter_ops_t *claim(const char *s, int *need_more)
{
    const rm_conn_filter_ops_t *found = NULL;
    *need_more = 0;
    for (const rm_conn_filter_ops_t *const *f = rm_conn_filters; *f != NULL; f++) {
        rm_conn_sniff_t k = (*f)->sniff((const uint8_t *)s, strlen(s));
        if (k == RM_CONN_SNIFF_YES) {
            assert_null(found); /* never two */
            found = *f;
        } else if (k == RM_CONN_SNIFF_NEED_MORE) {
            *need_more = 1;
        }
    }
    return found;
}

static void test_sniff(void **state)
{
    int more;
    assert_ptr_equal(claim("GET /orders HTTP/1.1\r\n", &more), &rm_conn_filter_http1);
    assert_ptr_equal(claim("DELETE /x HTTP/1.0\n", &more), &rm_conn_filter_http1);
    assert_ptr_equal(claim("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", &more), &rm_conn_filter_http2);
    assert_ptr_equal(claim("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\x12\x04", &more), &rm_conn_filter_http2);
    /* not yet: a method without its line, a prefix of the preface */
    assert_null(claim("GET /orders", &more));
    assert_true(more);
    assert_null(claim("PRI * HTTP/2.0\r\n", &more));
    assert_true(more);
    assert_null(claim("POS", &more));
    assert_true(more);
    /* never: a word like a method but no HTTP/1 line, other protocols, lower case */
    assert_null(claim("HELO mail.example.org\r\n", &more));
    assert_false(more);
    assert_null(claim("SSH-2.0-OpenSSH_9.2\r\n", &more));
    assert_false(more);
    assert_null(claim("get / HTTP/1.1\r\n", &more));
    assert_false(more);
    assert_null(claim("ABCDEFGHIJKLMNOPQRSTUVWXYZ", &more));
    assert_false(more);
}

/* What one filter says of every prefix of `s`: the answer given once (YES or NO) stays as more bytes arrive, so that
 * how the client's bytes are cut into reads never changes which filter takes the connection. Returns the answer on
 * the whole of `s`. */
static rm_conn_sniff_t sniff_prefixes(const rm_conn_filter_ops_t *f, const char *s)
{
    rm_conn_sniff_t settled = RM_CONN_SNIFF_NEED_MORE, k = RM_CONN_SNIFF_NEED_MORE;
    for (size_t n = 1; n <= strlen(s); n++) {
        k = f->sniff((const uint8_t *)s, n);
        if (settled != RM_CONN_SNIFF_NEED_MORE && k != settled)
            fail_msg("%s: %d on the first %zu bytes of \"%s\", %d on fewer", f->name, k, n, s, settled);
        settled = k;
    }
    return k;
}

/* A method of 24 letters (the longest taken) was refused when the first read held exactly those 24 bytes, and taken
 * when it held one more: the filter depended on how the bytes arrived. */
static void test_sniff_does_not_depend_on_reads(void **state)
{
    (void)state;
    assert_int_equal(sniff_prefixes(&rm_conn_filter_http1, "ABCDEFGHIJKLMNOPQRSTUVWX /x HTTP/1.1\r\n"),
                     RM_CONN_SNIFF_YES);
    assert_int_equal(sniff_prefixes(&rm_conn_filter_http1, "ABCDEFGHIJKLMNOPQRSTUVWXY /x HTTP/1.1\r\n"),
                     RM_CONN_SNIFF_NO);
    assert_int_equal(sniff_prefixes(&rm_conn_filter_http1, "GET /orders HTTP/1.1\r\n"), RM_CONN_SNIFF_YES);
    assert_int_equal(sniff_prefixes(&rm_conn_filter_http1, "HELO mail.example.org\r\n"), RM_CONN_SNIFF_NO);
    assert_int_equal(sniff_prefixes(&rm_conn_filter_http2, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), RM_CONN_SNIFF_YES);
    assert_int_equal(sniff_prefixes(&rm_conn_filter_http2, "PRI * HTTP/1.1\r\n"), RM_CONN_SNIFF_NO);
}

static rm_http_verdict_t deny_admin(void *ctx, const rm_http_request_t *req, rm_http_decision_t *out)
{
    (void)out;
    (*(int *)ctx)++;
    return req->path_len >= 6 && memcmp(req->path, "/admin", 6) == 0 ? RM_HTTP_DENY : RM_HTTP_ALLOW;
}

/* An allowed and a denied request through the HTTP/1.1 entry, reached only through its ops. */
static void test_ops_run_a_filter(void **state)
{
    const rm_conn_filter_ops_t *ops = &rm_conn_filter_http1;
    void *f = calloc(1, ops->size);
    rm_bytebuf_t to_app = {0}, to_client = {0};
    int calls = 0;
    static const char reqs[] = "GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n";
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    assert_int_equal(ops->init(f, deny_admin, NULL, &calls), 0);
    ops->set_path_normalization(f, RM_PATH_NORMALIZATION_BASE);
    assert_int_equal(ops->from_client(f, (const uint8_t *)reqs, sizeof(reqs) - 1, &to_app, &to_client), 0);
    assert_int_equal(calls, 2);
    assert_int_equal(to_app.len, strlen("GET /ok HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_int_equal(to_client.len, 0); /* the 403 waits for the answer to the request before it */
    assert_int_equal(ops->from_app(f, (const uint8_t *)resp, sizeof(resp) - 1, &to_app, &to_client), 0);
    assert_true(to_client.len > sizeof(resp) - 1);
    assert_memory_equal(to_client.base, resp, sizeof(resp) - 1);
    assert_memory_equal(to_client.base + sizeof(resp) - 1, "HTTP/1.1 403", 12);
    assert_string_equal(ops->reason(-EPROTO, 0), "malformed request (or request body): answered 400");
    assert_string_equal(rm_conn_filter_http2.reason(-EPROTO, 1), "the app broke HTTP/2");
    ops->dispose(f);
    rm_bytebuf_free(&to_app);
    rm_bytebuf_free(&to_client);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_sniff_does_not_depend_on_reads),
        cmocka_unit_test(test_ops_run_a_filter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
