/* The connection's reports (conn_observe.c) on fake connections: what rm__conn_observe_request / _exchange and
 * _opened / _closed record into the worker's shard, read back from the exposition. Time is the fake loop's clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "conn_observe.h"
#include "io_loop_internal.h"
#include "mesh_metrics.h"
#include "metrics_internal.h"
#include "proxy_conn-t.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    rm_loop_t *loop;
    rm_worker_t w;
    rm_proxy_config_t cfg;
    rm_snapshot_t snap;
    rm_destination_t dest;
    rm_metrics_t *m;
    rm_conn_t c;
    char page[1 << 20];
} fixture_t;

/* A connection's address (conn_addr.h) from "ip:port". */
static void parse_conn_addr(const char *s, rm_conn_addr_t *a)
{
    rm_sockaddr_t sa;
    assert_int_equal(rm_sockaddr_parse(s, &sa), 0);
    rm_conn_addr_set(a, &sa);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->loop = calloc(1, sizeof(*f->loop));
    assert_non_null(f->loop);
    f->loop->now_ms = 1000;
    assert_int_equal(rm_mesh_metrics_new(&f->m, 1), 0);
    f->w.loop = f->loop;
    f->w.metrics = rm_metrics_shard(f->m, 0);
    f->cfg.metrics_enabled = 1;
    f->cfg.metrics_max_series = 2000;
    f->cfg.metrics_expiry_ms = 600000;
    /* a destination the control plane named by its Service (Istio's outbound SNI) */
    assert_int_equal(rm_sockaddr_parse("198.19.0.10:8080", &f->dest.addr), 0);
    f->dest.sni = "outbound_.8080_._.orders.shop.svc.cluster.local";
    f->cfg.destinations = &f->dest;
    f->cfg.num_destinations = 1;
    f->snap.cfg = &f->cfg;
    f->c.w = &f->w;
    f->c.snap = &f->snap;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    rm__conn_observe_free(&f->c); /* what the reports allocated for the connection, as conn_free does */
    rm_metrics_free(f->m);
    free(f->loop);
    free(f);
    return 0;
}

static const char *scrape(fixture_t *f, int istio)
{
    f->cfg.metrics_istio_names = istio;
    size_t n = rm_mesh_metrics_render(f->m, &f->cfg, RM_METRICS_PROMETHEUS, f->page, sizeof(f->page), 0);
    assert_true(n < sizeof(f->page) - 1);
    f->page[n] = '\0';
    return f->page;
}

/* The value of the sample line that starts with `series` (name{labels}), or -1. */
static long long value(const char *page, const char *series)
{
    for (const char *p = page; (p = strstr(p, series)) != NULL; p++) {
        if ((p == page || p[-1] == '\n') && p[strlen(series)] == ' ')
            return strtoll(p + strlen(series) + 1, NULL, 10);
    }
    return -1;
}

static void make_inbound(fixture_t *f, rm__conn_mode_t mode)
{
    f->c.dir = RM_CONN_DIR_INBOUND;
    f->c.mode = mode;
    parse_conn_addr("198.18.1.2:40000", &f->c.src);
    parse_conn_addr("198.18.2.2:8081", &f->c.orig_dst);
}

static rm_http_request_t request(const char *host, int grpc)
{
    rm_http_request_t r = {.method = "GET", .method_len = 3, .path = "/", .path_len = 1, .grpc = (uint8_t)grpc};
    r.host = host;
    r.host_len = host != NULL ? strlen(host) : 0;
    return r;
}

#define INBOUND_PREFIX                                                                                                 \
    "{reporter=\"destination\",source_workload=\"unknown\",source_workload_namespace=\"unknown\",source_principal="    \
    "\"unknown\",source_app=\"unknown\",source_version=\"unknown\",destination_workload=\"unknown\",destination_"      \
    "workload_namespace=\"unknown\",destination_principal=\"unknown\",destination_app=\"unknown\",destination_"        \
    "version=\"unknown\",destination_service=\"orders.shop.svc.cluster.local\",destination_service_name=\"orders\","   \
    "destination_service_namespace=\"shop\","

/* Two requests in flight on one connection (HTTP/2), ending out of order: each gets its own duration, code and
 * sizes; an allowed one, a denied one (Istio's RBAC 403: no response flag), and the inbound side names the service
 * from the Host and says how the connection was secured. */
static void test_inbound_requests(void **state)
{
    fixture_t *f = *state;
    rm_http_decision_t d1 = {0}, d2 = {0};
    make_inbound(f, RM_CONN_MODE_MTLS);
    rm_http_request_t r = request("orders.shop:8081", 0);
    assert_null(f->c.obs.req);     /* the request part is allocated at the first request, not with the connection */
    d1.cookie = (uint64_t)5 << 32; /* the high 32 bits are the span's slot: tracing is off here, so none */
    rm__conn_observe_request(&f->c, &r, RM_HTTP_ALLOW, &d1);
    assert_non_null(f->c.obs.req);
    assert_int_equal(d1.cookie >> 32, 0);
    assert_int_not_equal(d1.cookie & UINT32_MAX, 0);
    f->loop->now_ms = 1003;
    rm__conn_observe_request(&f->c, &r, RM_HTTP_DENY, &d2);
    assert_int_not_equal(d1.cookie, 0);
    assert_int_not_equal(d2.cookie, d1.cookie);
    f->loop->now_ms = 1004;
    rm_http_exchange_t denied = {.cookie = d2.cookie,
                                 .stream_id = 3,
                                 .status = 403,
                                 .grpc_status = -1,
                                 .response_bytes = 19,
                                 .answered_by_proxy = 1,
                                 .complete = 1};
    rm__conn_observe_exchange(&f->c, &denied);
    f->loop->now_ms = 1040;
    rm_http_exchange_t ok = {.cookie = d1.cookie,
                             .stream_id = 1,
                             .status = 200,
                             .grpc_status = -1,
                             .request_bytes = 7,
                             .response_bytes = 2000,
                             .complete = 1};
    rm__conn_observe_exchange(&f->c, &ok);

    const char *p = scrape(f, 0);
    assert_int_equal(value(p, "ringmesh_requests_total" INBOUND_PREFIX
                              "request_protocol=\"http\",response_code=\"200\",grpc_response_status=\"\","
                              "response_flags=\"-\",connection_security_policy=\"mutual_tls\"}"),
                     1);
    assert_int_equal(value(p, "ringmesh_requests_total" INBOUND_PREFIX
                              "request_protocol=\"http\",response_code=\"403\",grpc_response_status=\"\","
                              "response_flags=\"-\",connection_security_policy=\"mutual_tls\"}"),
                     1);
    /* 40 ms: in (25, 50]; the denial took 1 ms: in (0.5, 1] */
    const char *ok_labels = INBOUND_PREFIX "request_protocol=\"http\",response_code=\"200\",grpc_response_status="
                                           "\"\",response_flags=\"-\",connection_security_policy=\"mutual_tls\"";
    char series[2048];
    snprintf(series, sizeof(series), "ringmesh_request_duration_milliseconds_bucket%s,le=\"25\"}", ok_labels);
    assert_int_equal(value(p, series), 0);
    snprintf(series, sizeof(series), "ringmesh_request_duration_milliseconds_bucket%s,le=\"50\"}", ok_labels);
    assert_int_equal(value(p, series), 1);
    snprintf(series, sizeof(series), "ringmesh_request_duration_milliseconds_sum%s}", ok_labels);
    assert_int_equal(value(p, series), 40);
    snprintf(series, sizeof(series), "ringmesh_response_bytes_bucket%s,le=\"1000\"}", ok_labels);
    assert_int_equal(value(p, series), 0);
    snprintf(series, sizeof(series), "ringmesh_response_bytes_bucket%s,le=\"2500\"}", ok_labels);
    assert_int_equal(value(p, series), 1);
    snprintf(series, sizeof(series), "ringmesh_request_bytes_sum%s}", ok_labels);
    assert_int_equal(value(p, series), 7);
    /* Istio's names on request */
    p = scrape(f, 1);
    assert_non_null(strstr(p, "\nistio_requests_total{reporter=\"destination\","));
    assert_null(strstr(p, "ringmesh_requests_total"));
    assert_non_null(strstr(p, "ringmesh_metrics_series_folded_total{metric=\"istio_requests_total\"} 0\n"));
}

/* gRPC over plaintext: grpc-status 7 from the proxy, "none" as the security policy, no service from a Host that
 * names none; an exchange cut before its response is counted with code 0 and Envoy's DC; a request with no slot
 * left is still counted. */
static void test_grpc_plaintext_and_cut(void **state)
{
    fixture_t *f = *state;
    rm_http_decision_t d = {0};
    make_inbound(f, RM_CONN_MODE_PLAINTEXT);
    rm_http_request_t r = request("198.18.2.2:8081", 1);
    rm__conn_observe_request(&f->c, &r, RM_HTTP_DENY, &d);
    rm_http_exchange_t denied = {
        .cookie = d.cookie, .status = 200, .grpc_status = 7, .answered_by_proxy = 1, .complete = 1};
    rm__conn_observe_exchange(&f->c, &denied);
    rm__conn_observe_request(&f->c, &r, RM_HTTP_ALLOW, &d);
    rm_http_exchange_t cut = {.cookie = d.cookie, .status = 0, .grpc_status = -1, .complete = 0};
    rm__conn_observe_exchange(&f->c, &cut);
    for (int i = 0; i < RM_CONN_OBS_SLOTS; i++) /* every slot taken by requests that never end */
        rm__conn_observe_request(&f->c, &r, RM_HTTP_ALLOW, &d);
    rm__conn_observe_request(&f->c, &r, RM_HTTP_ALLOW, &d);
    assert_int_equal(d.cookie, 0);
    rm_http_exchange_t late = {.cookie = 0, .status = 204, .grpc_status = -1, .complete = 1};
    rm__conn_observe_exchange(&f->c, &late);

    const char *p = scrape(f, 0);
    assert_non_null(strstr(p, "destination_service=\"unknown\",destination_service_name=\"unknown\","
                              "destination_service_namespace=\"unknown\",request_protocol=\"grpc\",response_code="
                              "\"200\",grpc_response_status=\"7\",response_flags=\"-\",connection_security_policy="
                              "\"none\"} 1\n"));
    assert_non_null(strstr(p, "request_protocol=\"grpc\",response_code=\"0\",grpc_response_status=\"\","
                              "response_flags=\"DC\",connection_security_policy=\"none\"} 1\n"));
    assert_non_null(strstr(p, "request_protocol=\"http\",response_code=\"204\",grpc_response_status=\"\","
                              "response_flags=\"-\",connection_security_policy=\"none\"} 1\n"));
}

#define OUTBOUND_TCP                                                                                                   \
    "{reporter=\"source\",source_workload=\"unknown\",source_workload_namespace=\"unknown\",source_principal="         \
    "\"unknown\",source_app=\"unknown\",source_version=\"unknown\",destination_workload=\"unknown\",destination_"      \
    "workload_namespace=\"unknown\",destination_principal=\"unknown\",destination_app=\"unknown\",destination_"        \
    "version=\"unknown\",destination_service=\"orders.shop.svc.cluster.local\",destination_service_name=\"orders\","   \
    "destination_service_namespace=\"shop\",request_protocol=\"tcp\",response_flags=\"-\",connection_security_"        \
    "policy=\"unknown\"}"

/* Outbound TCP: the service from the destination map, opened and closed once each, the bytes from the client
 * (received) and to it (sent); a destination not in the mesh is named by address and PassthroughCluster. */
static void test_outbound_tcp(void **state)
{
    fixture_t *f = *state;
    f->c.dir = RM_CONN_DIR_OUTBOUND;
    f->c.mode = RM_CONN_MODE_MTLS;
    parse_conn_addr("198.19.0.10:8080", &f->c.orig_dst);
    rm__conn_observe_opened(&f->c);
    assert_true(f->c.obs.opened);
    f->c.d2u.bytes = 300;
    f->c.u2d.bytes = 1234;
    rm__conn_observe_closed(&f->c);
    assert_null(f->c.obs.req); /* a TCP connection never holds the request part (904 bytes) */

    rm_conn_t other = {.w = &f->w, .snap = &f->snap, .dir = RM_CONN_DIR_OUTBOUND, .mode = RM_CONN_MODE_PASSTHROUGH};
    parse_conn_addr("203.0.113.9:443", &other.orig_dst);
    rm__conn_observe_opened(&other);
    rm__conn_observe_closed(&other);
    rm__conn_observe_free(&other);

    const char *p = scrape(f, 0);
    assert_int_equal(value(p, "ringmesh_tcp_connections_opened_total" OUTBOUND_TCP), 1);
    assert_int_equal(value(p, "ringmesh_tcp_connections_closed_total" OUTBOUND_TCP), 1);
    assert_int_equal(value(p, "ringmesh_tcp_received_bytes_total" OUTBOUND_TCP), 300);
    assert_int_equal(value(p, "ringmesh_tcp_sent_bytes_total" OUTBOUND_TCP), 1234);
    assert_non_null(strstr(p, "destination_service=\"203.0.113.9:443\",destination_service_name="
                              "\"PassthroughCluster\",destination_service_namespace=\"unknown\",request_protocol="
                              "\"tcp\",response_flags=\"-\",connection_security_policy=\"unknown\"} 1\n"));
    assert_null(strstr(p, "response_code")); /* not a label of the TCP families, and no request was made */
}

/* Inbound TCP series stay one series however the connection's requests name the service. */
static void test_inbound_tcp_one_series(void **state)
{
    fixture_t *f = *state;
    rm_http_decision_t d = {0};
    make_inbound(f, RM_CONN_MODE_MTLS);
    rm__conn_observe_opened(&f->c);
    rm_http_request_t r = request("orders.shop.svc.cluster.local", 0);
    rm__conn_observe_request(&f->c, &r, RM_HTTP_ALLOW, &d);
    rm__conn_observe_closed(&f->c);
    const char *p = scrape(f, 0);
    const char *open = strstr(p, "\nringmesh_tcp_connections_opened_total{");
    const char *closed = strstr(p, "\nringmesh_tcp_connections_closed_total{");
    assert_non_null(open);
    assert_non_null(closed);
    assert_non_null(strstr(open, "destination_service=\"unknown\""));
    assert_int_equal(strcspn(open + 38, "}"), strcspn(closed + 38, "}"));
    assert_int_equal(memcmp(open + 38, closed + 38, strcspn(open + 38, "}")), 0);
    assert_non_null(strstr(p, "connection_security_policy=\"mutual_tls\"} 1\n"));
}

/* metrics.enabled: false records nothing, and with no access log and no tracing nothing asks for requests to be
 * parsed (observe mode off: their bytes pass untouched); either consumer turns observing back on. */
static void test_metrics_off(void **state)
{
    fixture_t *f = *state;
    rm_http_decision_t d = {0};
    make_inbound(f, RM_CONN_MODE_MTLS);
    assert_true(rm__conn_observed(&f->c));
    f->cfg.metrics_enabled = 0;
    assert_false(rm__conn_observed(&f->c));
    f->cfg.access_log = 1;
    assert_true(rm__conn_observed(&f->c));
    f->cfg.access_log = 0;
    rm_http_request_t r = request("orders.shop:8081", 0);
    rm__conn_observe_opened(&f->c);
    rm__conn_observe_request(&f->c, &r, RM_HTTP_ALLOW, &d);
    rm_http_exchange_t ex = {.cookie = d.cookie, .status = 200, .grpc_status = -1, .complete = 1};
    rm__conn_observe_exchange(&f->c, &ex);
    rm__conn_observe_closed(&f->c);
    const char *page = scrape(f, 0);
    assert_null(strstr(page, "ringmesh_requests_total{"));
    assert_null(strstr(page, "ringmesh_tcp_connections_opened_total{"));
    /* on again: the same calls record */
    f->cfg.metrics_enabled = 1;
    rm__conn_observe_request(&f->c, &r, RM_HTTP_ALLOW, &d);
    ex.cookie = d.cookie;
    rm__conn_observe_exchange(&f->c, &ex);
    page = scrape(f, 0);
    assert_non_null(strstr(page, "ringmesh_requests_total{"));
}

/* One request on connection `f->c`: decided, then ended with `status`. */
static void one_exchange(fixture_t *f, const char *host, unsigned status)
{
    rm_http_decision_t d = {0};
    rm_http_request_t r = request(host, 0);
    rm__conn_observe_request(&f->c, &r, RM_HTTP_ALLOW, &d);
    rm_http_exchange_t ex = {.cookie = d.cookie, .status = (uint16_t)status, .grpc_status = -1, .complete = 1};
    rm__conn_observe_exchange(&f->c, &ex);
}

#define WARM_200                                                                                                       \
    "ringmesh_requests_total" INBOUND_PREFIX "request_protocol=\"http\",response_code=\"200\",grpc_response_status="   \
    "\"\",response_flags=\"-\",connection_security_policy=\"mutual_tls\"}"

/* A warm connection records its requests into the series it looked up at its first request with that label set:
 * the shard's label-set lookups (one per family) do not grow with the requests, a second code is looked up once,
 * and every request is counted. Expiry of the connection's series (idle past metrics.seriesExpiry) makes the next
 * request look them up again instead of using what was freed; a service learnt later (the first request had no
 * Host) names the next requests. */
static void test_warm_connection_no_lookup(void **state)
{
    fixture_t *f = *state;
    rm_metrics_shard_t *sh = f->w.metrics;
    make_inbound(f, RM_CONN_MODE_MTLS);
    one_exchange(f, "orders.shop:8081", 200);
    uint64_t first = sh->lookups;
    assert_int_equal(first, 4); /* requests_total, duration, request and response bytes */
    for (int i = 0; i < 99; i++)
        one_exchange(f, "orders.shop:8081", 200);
    assert_int_equal(sh->lookups, first);
    one_exchange(f, "orders.shop:8081", 503);
    assert_int_equal(sh->lookups, first + 4);
    for (int i = 0; i < 10; i++) {
        one_exchange(f, "orders.shop:8081", 200);
        one_exchange(f, "orders.shop:8081", 503);
    }
    assert_int_equal(sh->lookups, first + 4);
    assert_int_equal(value(scrape(f, 0), WARM_200), 110);

    /* idle past the expiry: the series go, and the connection's next request starts them again */
    uint64_t gen = rm_metrics_generation(sh);
    f->loop->now_ms += f->cfg.metrics_expiry_ms;
    rm_mesh_metrics_tick(f->m, sh, &f->cfg, f->loop->now_ms);
    assert_int_not_equal(rm_metrics_generation(sh), gen);
    assert_int_equal(value(scrape(f, 0), WARM_200), -1);
    one_exchange(f, "orders.shop:8081", 200);
    assert_int_equal(sh->lookups, first + 8);
    assert_int_equal(value(scrape(f, 0), WARM_200), 1);
}

/* The labels a connection's requests share are kept once per connection, but not before they are known: an
 * inbound connection whose first request names no service counts it under destination_service "unknown", and the
 * next ones under the service their Host names. */
static void test_service_learnt_later(void **state)
{
    fixture_t *f = *state;
    make_inbound(f, RM_CONN_MODE_MTLS);
    one_exchange(f, NULL, 200);
    one_exchange(f, "orders.shop:8081", 200);
    one_exchange(f, "orders.shop:8081", 200);
    const char *p = scrape(f, 0);
    assert_int_equal(value(p, WARM_200), 2);
    assert_non_null(strstr(p, "destination_service=\"unknown\",destination_service_name=\"unknown\","
                              "destination_service_namespace=\"unknown\",request_protocol=\"http\",response_code="
                              "\"200\",grpc_response_status=\"\",response_flags=\"-\",connection_security_policy="
                              "\"mutual_tls\"} 1\n"));
}

static void test_service_names(void **state)
{
    char svc[128], name[64], ns[64];
    static const char *const good[] = {"orders.shop", "orders.shop:8080", "orders.shop.svc",
                                       "orders.shop.svc.cluster.local:80"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(
            rm_mesh_service_of_host(good[i], strlen(good[i]), svc, sizeof(svc), name, sizeof(name), ns, sizeof(ns)), 0);
        assert_string_equal(svc, "orders.shop.svc.cluster.local");
        assert_string_equal(name, "orders");
        assert_string_equal(ns, "shop");
    }
    static const char *const bad[] = {"orders", "198.19.0.10:8080", "example.com.evil", "Orders.shop", ".shop", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(
            rm_mesh_service_of_host(bad[i], strlen(bad[i]), svc, sizeof(svc), name, sizeof(name), ns, sizeof(ns)), -1);
    assert_int_equal(rm_mesh_service_of_sni("outbound_.8080_._.orders.shop.svc.cluster.local", svc, sizeof(svc), name,
                                            sizeof(name), ns, sizeof(ns)),
                     0);
    assert_string_equal(svc, "orders.shop.svc.cluster.local");
    assert_int_equal(rm_mesh_service_of_sni("orders.shop.svc", svc, sizeof(svc), name, sizeof(name), ns, sizeof(ns)),
                     -1);
    assert_int_equal(rm_mesh_service_of_sni(NULL, svc, sizeof(svc), name, sizeof(name), ns, sizeof(ns)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_inbound_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grpc_plaintext_and_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbound_tcp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inbound_tcp_one_series, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_warm_connection_no_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_learnt_later, setup, teardown),
        cmocka_unit_test(test_service_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
