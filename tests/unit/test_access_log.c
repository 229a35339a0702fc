/* The access log (sidecar/access_log.h): one "access" line per exchange or connection with Envoy's fields in our
 * names (checked as JSON), the start time in RFC 3339, sampling at its bounds (0 never, 1 always, a fraction about
 * that often), the request fields kept by value past the request head (cut to their sizes) and the trace ID taken
 * from W3C or B3 headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/error.h"
#include "ringmesh/log.h"

#include "access_log.h"
#include "unit_asserts.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int pipefd[2];

static int setup(void **state)
{
    (void)state;
    assert_int_equal(pipe2(pipefd, O_NONBLOCK), 0);
    rm_log_configure(RM_LOG_INFO, pipefd[1]);
    return 0;
}

static json_t *read_line(void)
{
    char buf[8192];
    ssize_t n = read(pipefd[0], buf, sizeof(buf) - 1);
    json_error_t je;
    json_t *j;
    assert_true(n > 0);
    buf[n] = '\0';
    assert_int_equal(buf[n - 1], '\n');
    assert_null(strchr(buf, '\n') + 1 < buf + n ? strchr(buf, '\n') + 1 : NULL); /* one line */
    if ((j = json_loads(buf, 0, &je)) == NULL)
        fail_msg("not JSON (%s): %s", je.text, buf);
    return j;
}

static const char *str(const json_t *j, const char *key)
{
    const json_t *v = json_object_get(j, key);
    if (v == NULL)
        fail_msg("no field %s", key);
    return json_string_value(v);
}

static rm_sockaddr_t sa4(const char *ip, unsigned port)
{
    rm_sockaddr_t a = {.len = sizeof(struct sockaddr_in)};
    struct sockaddr_in *s = (struct sockaddr_in *)&a.ss;
    s->sin_family = AF_INET;
    s->sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, ip, &s->sin_addr);
    return a;
}

static void test_http_line(void **state)
{
    (void)state;
    rm_sockaddr_t down = sa4("198.18.0.5", 40000), up = sa4("127.0.0.1", 8080);
    rm_workload_meta_t src = {"web", "front", "web", "v1", "spiffe://cluster.local/ns/front/sa/web"},
                       dst = {"orders", "shop", "orders", "v2", "spiffe://cluster.local/ns/shop/sa/orders"};
    rm_access_entry_t e = {
        .start_time_ms = 1796651543042, /* 2026-12-07T13:52:23.042Z */
        .duration_ms = 12,
        .reporter = "destination",
        .protocol = "HTTP/1.1",
        .method = "GET",
        .path = "/orders/1?x=\"y\"",
        .authority = "orders.shop:8080",
        .user_agent = "curl/8.0",
        .x_forwarded_for = NULL,
        .request_id = "abc",
        .response_code = 403,
        .grpc_status = -1,
        .response_flags = "-",
        .bytes_received = 0,
        .bytes_sent = 19,
        .downstream = &down,
        .upstream = &up,
        .destination_service = "orders.shop.svc.cluster.local",
        .source = &src,
        .destination = &dst,
        .source_principal = src.principal,
        .destination_principal = dst.principal,
        .connection_security_policy = "mutual_tls",
        .trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
        .authz_decision = "deny",
        .authz_policy = "shop/deny-front",
    };
    rm_access_log_write(&e);
    json_t *j = read_line();
    assert_string_equal(str(j, "level"), "info");
    assert_string_equal(str(j, "event"), "access");
    assert_string_equal(str(j, "start_time"), "2026-12-07T13:52:23.042Z");
    assert_string_equal(str(j, "reporter"), "destination");
    assert_string_equal(str(j, "protocol"), "HTTP/1.1");
    assert_string_equal(str(j, "method"), "GET");
    assert_string_equal(str(j, "path"), "/orders/1?x=\"y\"");
    assert_string_equal(str(j, "authority"), "orders.shop:8080");
    assert_int_equal(json_integer_value(json_object_get(j, "response_code")), 403);
    assert_null(json_object_get(j, "grpc_status"));
    assert_string_equal(str(j, "response_flags"), "-");
    assert_int_equal(json_integer_value(json_object_get(j, "bytes_received")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "bytes_sent")), 19);
    assert_int_equal(json_integer_value(json_object_get(j, "duration")), 12);
    assert_true(json_is_null(json_object_get(j, "x_forwarded_for")));
    assert_string_equal(str(j, "user_agent"), "curl/8.0");
    assert_string_equal(str(j, "request_id"), "abc");
    assert_string_equal(str(j, "upstream_host"), "127.0.0.1:8080");
    assert_string_equal(str(j, "downstream_remote_address"), "198.18.0.5:40000");
    assert_string_equal(str(j, "destination_service"), "orders.shop.svc.cluster.local");
    assert_string_equal(str(j, "source_principal"), "spiffe://cluster.local/ns/front/sa/web");
    assert_string_equal(str(j, "destination_principal"), "spiffe://cluster.local/ns/shop/sa/orders");
    assert_string_equal(str(j, "source_workload"), "web");
    assert_string_equal(str(j, "source_namespace"), "front");
    assert_string_equal(str(j, "destination_workload"), "orders");
    assert_string_equal(str(j, "destination_version"), "v2");
    assert_string_equal(str(j, "connection_security_policy"), "mutual_tls");
    assert_string_equal(str(j, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(str(j, "authz_decision"), "deny");
    assert_string_equal(str(j, "authz_policy"), "shop/deny-front");
    json_decref(j);
}

static void test_tcp_line(void **state)
{
    (void)state;
    rm_sockaddr_t down = sa4("198.18.0.5", 40000);
    rm_access_entry_t e = {.start_time_ms = 0,
                           .reporter = "source",
                           .protocol = "TCP",
                           .grpc_status = -1,
                           .response_flags = "UF",
                           .bytes_received = 5,
                           .downstream = &down,
                           .connection_security_policy = "none"};
    rm_access_log_write(&e);
    json_t *j = read_line();
    assert_string_equal(str(j, "start_time"), "1970-01-01T00:00:00.000Z");
    assert_string_equal(str(j, "protocol"), "TCP");
    assert_string_equal(str(j, "response_flags"), "UF");
    /* no HTTP fields on a TCP line; unknown workloads are "unknown" */
    assert_null(json_object_get(j, "method"));
    assert_null(json_object_get(j, "response_code"));
    assert_null(json_object_get(j, "trace_id"));
    assert_true(json_is_null(json_object_get(j, "upstream_host")));
    assert_string_equal(str(j, "source_workload"), "unknown");
    assert_string_equal(str(j, "destination_namespace"), "unknown");
    assert_true(json_is_null(json_object_get(j, "authz_decision")));
    json_decref(j);
}

static void test_sampling(void **state)
{
    (void)state;
    rm_proxy_config_t cfg = {.access_log = 0, .access_log_sample = 1};
    int hits = 0;
    for (int i = 0; i < 1000; i++)
        hits += rm_access_log_sampled(&cfg);
    assert_int_equal(hits, 0); /* off */
    cfg.access_log = 1;
    for (int i = 0; i < 1000; i++)
        hits += rm_access_log_sampled(&cfg);
    assert_int_equal(hits, 1000); /* on, every one */
    cfg.access_log_sample = 0;
    hits = 0;
    for (int i = 0; i < 1000; i++)
        hits += rm_access_log_sampled(&cfg);
    assert_int_equal(hits, 0); /* on, none sampled */
    /* 20000 draws at 0.25: the standard deviation is about 61, so [4500, 5500] holds unless the PRNG is broken */
    cfg.access_log_sample = 0.25;
    hits = 0;
    for (int i = 0; i < 20000; i++)
        hits += rm_access_log_sampled(&cfg);
    if (hits < 4500 || hits > 5500)
        fail_msg("%d of 20000 sampled at 0.25", hits);
    assert_int_equal(rm_access_log_draw(-1), 0);
    assert_int_equal(rm_access_log_draw(2), 1);
}

static void test_request_keep(void **state)
{
    (void)state;
    char long_path[1200];
    memset(long_path, 'a', sizeof(long_path));
    long_path[0] = '/';
    rm_http_header_t h[] = {
        {"User-Agent", 10, "curl/8.0", 8},
        {"x-request-id", 12, "r-1", 3},
        {"X-Forwarded-For", 15, "203.0.113.7", 11},
        {"traceparent", 11, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55},
    };
    rm_http_request_t req = {.method = "POST",
                             .method_len = 4,
                             .path = long_path,
                             .path_len = sizeof(long_path),
                             .host = "orders",
                             .host_len = 6,
                             .headers = h,
                             .num_headers = 4,
                             .http2 = 1};
    rm_proxy_config_t cfg = {.access_log = 1, .access_log_sample = 1};
    rm_access_request_t rec;

    memset(&rec, 0x55, sizeof(rec));
    rm_access_log_request_keep(&rec, &cfg, &req, RM_HTTP_DENY, 1000, 7);
    assert_int_equal(rec.sampled, 1);
    assert_int_equal(rec.http2, 1);
    assert_int_equal(rec.allowed, 0);
    assert_string_equal(rec.method, "POST");
    assert_int_equal(strlen(rec.path), RM_ACCESS_PATH_MAX - 1); /* cut, terminated */
    assert_string_equal(rec.authority, "orders");
    assert_string_equal(rec.user_agent, "curl/8.0");
    assert_string_equal(rec.request_id, "r-1");
    assert_string_equal(rec.x_forwarded_for, "203.0.113.7");
    assert_string_equal(rec.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_int_equal(rec.start_mono_ms, 7);

    /* RM_ACCESS_NOW: the wall clock, read for a request the sample keeps */
    struct timespec before;
    clock_gettime(CLOCK_REALTIME, &before);
    rm_access_log_request_keep(&rec, &cfg, &req, RM_HTTP_ALLOW, RM_ACCESS_NOW, 8);
    assert_int_equal(rec.sampled, 1);
    assert_true(rec.start_time_ms >= (int64_t)before.tv_sec * 1000 + before.tv_nsec / 1000000);
    assert_int_equal(rec.start_mono_ms, 8);

    cfg.access_log = 0;
    rm_access_log_request_keep(&rec, &cfg, &req, RM_HTTP_ALLOW, 1000, 7);
    assert_int_equal(rec.sampled, 0);
}

static void test_trace_ids(void **state)
{
    (void)state;
    char out[RM_ACCESS_TRACE_ID + 1];
    rm_http_header_t b3multi[] = {{"X-B3-TraceId", 12, "80f198ee56343ba864fe8b2a57d3eff7", 32}};
    rm_http_header_t b3single[] = {{"b3", 2, "a3ce929d0e0e4736-00f067aa0ba902b7-1", 35}};
    rm_http_header_t bad[] = {{"traceparent", 11, "00-zzzz2f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55},
                              {"b3", 2, "nothex", 6}};
    rm_http_request_t req = {.headers = b3multi, .num_headers = 1};
    rm_access_log_trace_id(&req, out);
    assert_string_equal(out, "80f198ee56343ba864fe8b2a57d3eff7");
    req.headers = b3single;
    rm_access_log_trace_id(&req, out);
    assert_string_equal(out, "a3ce929d0e0e4736");
    req.headers = bad;
    req.num_headers = 2;
    rm_access_log_trace_id(&req, out);
    assert_string_equal(out, "");
    req.num_headers = 0;
    rm_access_log_trace_id(&req, out);
    assert_string_equal(out, "");
}

static void test_time(void **state)
{
    (void)state;
    char buf[40];
    assert_string_equal(rm_access_log_time(951782400999, buf, sizeof(buf)), "2000-02-29T00:00:00.999Z");
    assert_string_equal(rm_access_log_time(-5, buf, sizeof(buf)), "-");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_line),    cmocka_unit_test(test_tcp_line),  cmocka_unit_test(test_sampling),
        cmocka_unit_test(test_request_keep), cmocka_unit_test(test_trace_ids), cmocka_unit_test(test_time),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
