/* HTTP/1.x <-> HTTP/2 mapping (sidecar/http1_codec.h): the pseudo-headers and ringmesh-orig-proto of an app's
 * request, connection-specific and ringmesh-* fields left behind, Host as :authority, the framing of bodies each
 * way (HEAD, 1xx, 204, 304, content-length, chunked, HTTP/1.0's close-delimited), the heads written towards an app
 * or client, chunk heads and trailers, and buffers that are too small. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http1_codec.h"

#define H(n, v)                                                                                                        \
    {                                                                                                                  \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                                             \
    }

static void assert_field(const rm_http_header_t *h, const char *name, const char *value)
{
    assert_int_equal(h->name_len, strlen(name));
    assert_memory_equal(h->name, name, h->name_len);
    assert_int_equal(h->value_len, strlen(value));
    assert_memory_equal(h->value, value, h->value_len);
}

static void test_request_to_h2(void **state)
{
    (void)state;
    const rm_http_header_t in[] = {
        H("Host", "orders.shop:8080"),
        H("User-Agent", "curl/8"),
        H("Connection", "keep-alive, X-Hop"),
        H("X-Hop", "1"),
        H("Keep-Alive", "timeout=5"),
        H("Transfer-Encoding", "chunked"),
        H("TE", "trailers"),
        H("Upgrade", "h2c"),
        H("Proxy-Connection", "keep-alive"),
        H("RingMesh-Orig-Proto", "HTTP/2"),
        H("ringmesh-error", "forged"),
        H("Content-Type", "text/plain"),
    };
    const rm_h1c_request_t req = {"POST", "/a?b=1", 4, 6, in, sizeof(in) / sizeof(in[0]), 1};
    rm_http_header_t out[32];
    char names[256];
    int n = rm_h1c_request_to_h2(&req, out, 32, names, sizeof(names));
    assert_int_equal(n, 8);
    assert_field(&out[0], ":method", "POST");
    assert_field(&out[1], ":scheme", "http");
    assert_field(&out[2], ":authority", "orders.shop:8080");
    assert_field(&out[3], ":path", "/a?b=1");
    assert_field(&out[4], "ringmesh-orig-proto", "HTTP/1.1");
    assert_field(&out[5], "user-agent", "curl/8");
    assert_field(&out[6], "te", "trailers");
    assert_field(&out[7], "content-type", "text/plain");
}

static void test_request_versions_and_host(void **state)
{
    (void)state;
    const rm_http_header_t none[] = {H("Accept", "*/*")};
    const rm_http_header_t two[] = {H("Host", "a"), H("host", "b")};
    rm_http_header_t out[8];
    char names[64];
    rm_h1c_request_t req = {"GET", "/", 3, 1, none, 1, 0};
    /* HTTP/1.0 without Host: no :authority, the version told */
    int n = rm_h1c_request_to_h2(&req, out, 8, names, sizeof(names));
    assert_int_equal(n, 5);
    assert_field(&out[2], ":path", "/");
    assert_field(&out[3], "ringmesh-orig-proto", "HTTP/1.0");
    assert_field(&out[4], "accept", "*/*");
    /* HTTP/1.1 must have exactly one Host */
    req.minor = 1;
    assert_int_equal(rm_h1c_request_to_h2(&req, out, 8, names, sizeof(names)), -EINVAL);
    req.headers = two;
    req.num_headers = 2;
    assert_int_equal(rm_h1c_request_to_h2(&req, out, 8, names, sizeof(names)), -EINVAL);
    /* te other than trailers is dropped, also with whitespace around trailers kept */
    assert_int_equal(rm_h1c_classify("TE", 2, "gzip", 4, NULL, 0), RM_H1C_FIELD_DROP);
    assert_int_equal(rm_h1c_classify("te", 2, " trailers ", 10, NULL, 0), RM_H1C_FIELD_KEEP);
    /* a name the Connection header lists is dropped only as a whole token */
    assert_int_equal(rm_h1c_classify("x-a", 3, "1", 1, "x-ab , close", 12), RM_H1C_FIELD_KEEP);
    assert_int_equal(rm_h1c_classify("X-AB", 4, "1", 1, "x-ab , close", 12), RM_H1C_FIELD_DROP);
}

static void test_request_too_small(void **state)
{
    (void)state;
    const rm_http_header_t in[] = {H("Host", "h"), H("X-Long-Name", "v")};
    const rm_h1c_request_t req = {"GET", "/", 3, 1, in, 2, 1};
    rm_http_header_t out[8];
    char names[8];
    assert_int_equal(rm_h1c_request_to_h2(&req, out, 8, names, sizeof(names)), -ENOSPC); /* names */
    assert_int_equal(rm_h1c_request_to_h2(&req, out, 5, names, sizeof(names)), -ENOSPC); /* entries */
    assert_int_equal(rm_h1c_request_to_h2(&req, out, 4, names, sizeof(names)), -ENOSPC);
}

static void test_framing(void **state)
{
    (void)state;
    /* responses */
    assert_int_equal(rm_h1c_response_framing(200, 1, 1, 1), RM_H1C_BODY_NONE);
    assert_int_equal(rm_h1c_response_framing(100, 0, 0, 1), RM_H1C_BODY_NONE);
    assert_int_equal(rm_h1c_response_framing(204, 0, 0, 1), RM_H1C_BODY_NONE);
    assert_int_equal(rm_h1c_response_framing(304, 0, 1, 1), RM_H1C_BODY_NONE);
    assert_int_equal(rm_h1c_response_framing(200, 0, 1, 1), RM_H1C_BODY_LENGTH);
    assert_int_equal(rm_h1c_response_framing(200, 0, 1, 0), RM_H1C_BODY_LENGTH);
    assert_int_equal(rm_h1c_response_framing(200, 0, 0, 1), RM_H1C_BODY_CHUNKED);
    assert_int_equal(rm_h1c_response_framing(200, 0, 0, 0), RM_H1C_BODY_CLOSE);
    /* requests towards an app */
    assert_int_equal(rm_h1c_request_framing(1, 0), RM_H1C_BODY_NONE);
    assert_int_equal(rm_h1c_request_framing(0, 1), RM_H1C_BODY_LENGTH);
    assert_int_equal(rm_h1c_request_framing(0, 0), RM_H1C_BODY_CHUNKED);
}

static void test_response_head(void **state)
{
    (void)state;
    const rm_http_header_t h[] = {H(":status", "200"), H("content-type", "text/plain"), H("content-length", "5"),
                                  H("connection", "close"), H("transfer-encoding", "chunked")};
    char buf[256];
    int n = rm_h1c_write_response_head(200, h, 5, RM_H1C_BODY_LENGTH, 1, 0, buf, sizeof(buf));
    const char want1[] = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\n";
    assert_int_equal(n, sizeof(want1) - 1);
    assert_memory_equal(buf, want1, n);
    /* chunked: the stale content-length goes, the coding is said */
    n = rm_h1c_write_response_head(200, h, 5, RM_H1C_BODY_CHUNKED, 1, 0, buf, sizeof(buf));
    const char want2[] = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n";
    assert_int_equal(n, sizeof(want2) - 1);
    assert_memory_equal(buf, want2, n);
    /* HTTP/1.0, unknown length: close-delimited */
    n = rm_h1c_write_response_head(200, h, 2, RM_H1C_BODY_CLOSE, 0, 0, buf, sizeof(buf));
    const char want3[] = "HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n";
    assert_int_equal(n, sizeof(want3) - 1);
    assert_memory_equal(buf, want3, n);
    /* 304 keeps the length it describes; 204 drops it; an unknown code has an empty reason */
    n = rm_h1c_write_response_head(304, h + 2, 1, RM_H1C_BODY_NONE, 1, 0, buf, sizeof(buf));
    const char want4[] = "HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n";
    assert_int_equal(n, sizeof(want4) - 1);
    assert_memory_equal(buf, want4, n);
    n = rm_h1c_write_response_head(204, h + 2, 1, RM_H1C_BODY_NONE, 1, 0, buf, sizeof(buf));
    const char want5[] = "HTTP/1.1 204 No Content\r\n\r\n";
    assert_int_equal(n, sizeof(want5) - 1);
    assert_memory_equal(buf, want5, n);
    n = rm_h1c_write_response_head(299, NULL, 0, RM_H1C_BODY_NONE, 1, 1, buf, sizeof(buf));
    const char want6[] = "HTTP/1.1 299 \r\nconnection: close\r\n\r\n";
    assert_int_equal(n, sizeof(want6) - 1);
    assert_memory_equal(buf, want6, n);
    /* too small, and a status out of range */
    assert_int_equal(rm_h1c_write_response_head(200, h, 5, RM_H1C_BODY_LENGTH, 1, 0, buf, 20), -ENOSPC);
    assert_int_equal(rm_h1c_write_response_head(1000, NULL, 0, RM_H1C_BODY_NONE, 1, 0, buf, sizeof(buf)), -EINVAL);
}

static void test_request_head(void **state)
{
    (void)state;
    const rm_http_header_t h[] = {H(":method", "PUT"), H("host", "other"),       H("ringmesh-orig-proto", "HTTP/1.1"),
                                  H("x-a", "1"),       H("content-length", "3"), H("te", "trailers")};
    char buf[256];
    int n = rm_h1c_write_request_head("PUT", 3, "/x", 2, "svc:80", 6, h, 6, RM_H1C_BODY_LENGTH, buf, sizeof(buf));
    const char want1[] = "PUT /x HTTP/1.1\r\nhost: svc:80\r\nx-a: 1\r\ncontent-length: 3\r\nte: trailers\r\n\r\n";
    assert_int_equal(n, sizeof(want1) - 1);
    assert_memory_equal(buf, want1, n);
    n = rm_h1c_write_request_head("POST", 4, "/", 1, NULL, 0, h + 3, 1, RM_H1C_BODY_CHUNKED, buf, sizeof(buf));
    const char want2[] = "POST / HTTP/1.1\r\nx-a: 1\r\ntransfer-encoding: chunked\r\n\r\n";
    assert_int_equal(n, sizeof(want2) - 1);
    assert_memory_equal(buf, want2, n);
    assert_int_equal(rm_h1c_write_request_head("PUT", 3, "/x", 2, "svc:80", 6, h, 6, RM_H1C_BODY_LENGTH, buf, 30),
                     -ENOSPC);
}

static void test_chunks(void **state)
{
    (void)state;
    char buf[64];
    size_t n = rm_h1c_chunk_head(0x1000, buf);
    assert_int_equal(n, 6);
    assert_memory_equal(buf, "1000\r\n", 6);
    n = rm_h1c_chunk_head(10, buf);
    assert_memory_equal(buf, "a\r\n", n);
    n = rm_h1c_chunk_head(SIZE_MAX, buf);
    assert_int_equal(n, sizeof(size_t) * 2 + 2);
    const rm_http_header_t t[] = {H("grpc-status", "0"), H(":status", "200"), H("grpc-message", "ok")};
    int m = rm_h1c_write_last_chunk(t, 3, buf, sizeof(buf));
    const char want[] = "0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n";
    assert_int_equal(m, sizeof(want) - 1);
    assert_memory_equal(buf, want, m);
    assert_int_equal(rm_h1c_write_last_chunk(NULL, 0, buf, sizeof(buf)), 5);
    assert_int_equal(rm_h1c_write_last_chunk(t, 3, buf, 10), -ENOSPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_to_h2),
        cmocka_unit_test(test_request_versions_and_host),
        cmocka_unit_test(test_request_too_small),
        cmocka_unit_test(test_framing),
        cmocka_unit_test(test_response_head),
        cmocka_unit_test(test_request_head),
        cmocka_unit_test(test_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
