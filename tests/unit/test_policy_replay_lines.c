/* Log lines read back as requests for `ringmeshctl policy replay` and `coverage` (ctl/policy_logs.c): decision lines
 * with and without "attributes", inbound access lines, `kubectl logs --prefix` prefixes, the lines that are skipped,
 * and the engine chosen per workload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "policy_fixtures.h"
#include "policy_logs.h"

#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "ringmesh/log.h"

static int parse(const char *line, rm_replay_req_t *r)
{
    return rm__replay_req_parse(line, strlen(line), r);
}

static void decision_line_with_attributes(void **state)
{
    (void)state;
    rm_replay_req_t r;
    uint8_t ip[16];
    const char *line =
        "[pod/orders-7d9f/ringmesh-proxy] "
        "{\"ts\":\"t\",\"level\":\"info\",\"event\":\"authz\",\"decision\":\"would-deny\","
        "\"destination_workload\":\"shop/orders-1\",\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\","
        "\"workload_namespace\":\"shop\",\"workload_labels\":{\"app\":\"orders\",\"version\":\"v1\"},"
        "\"attributes\":{\"principal\":\"spiffe://cluster.local/ns/web/sa/frontend\",\"source_ip\":\"198.18.0.2\","
        "\"destination_ip\":\"198.18.0.9\",\"destination_port\":8080,\"sni\":\"orders.shop\",\"method\":\"POST\","
        "\"host\":\"orders\",\"path\":\"/orders?x=1\",\"headers\":{\"x-team\":\"payments,ops\"}}}\n";
    assert_int_equal(parse(line, &r), 1);
    assert_int_equal(r.event, RM_REPLAY_AUTHZ);
    assert_int_equal(r.recorded_allow, 1); /* would-deny was allowed */
    assert_string_equal(r.a.principal, "spiffe://cluster.local/ns/web/sa/frontend");
    assert_int_equal(r.a.have_source_ip, 1);
    assert_int_equal(rm_authz_ip_parse("198.18.0.2", ip), 0);
    assert_memory_equal(r.a.source_ip, ip, 16);
    assert_int_equal(r.a.have_destination_ip, 1);
    assert_int_equal(r.a.destination_port, 8080);
    assert_string_equal(r.a.sni, "orders.shop");
    assert_non_null(r.a.http);
    assert_memory_equal(r.http.method, "POST", 4);
    assert_int_equal(r.http.path_len, 11);
    assert_int_equal(r.http.num_headers, 1);
    assert_memory_equal(r.headers[0].name, "x-team", 6);
    assert_memory_equal(r.headers[0].value, "payments,ops", 12);
    assert_int_equal(r.have_workload, 1);
    assert_string_equal(r.ns, "shop");
    assert_int_equal(r.num_labels, 2);
    assert_string_equal(r.labels[1].key, "version");
    assert_string_equal(r.labels[1].value, "v1");
    assert_string_equal(r.destination, "shop/orders-1");
    assert_string_equal(r.trace_id, "0af7651916cd43dd8448eb211c80319c");
    rm__replay_req_clear(&r);
}

static void decision_line_without_attributes(void **state)
{
    (void)state;
    rm_replay_req_t r;
    assert_int_equal(parse("{\"event\":\"authz\",\"decision\":\"deny\",\"source_principal\":null,"
                           "\"source_ip\":\"10.1.2.3\",\"destination_port\":7070,\"protocol\":\"tcp\"}",
                           &r),
                     1);
    assert_int_equal(r.recorded_allow, 0);
    assert_null(r.a.principal);
    assert_int_equal(r.a.have_source_ip, 1);
    assert_int_equal(r.a.destination_port, 7070);
    assert_null(r.a.http);
    assert_int_equal(r.have_workload, 0); /* a proxy without a control plane: every policy applies */
    assert_string_equal(r.destination, "-");
    rm__replay_req_clear(&r);

    assert_int_equal(parse("{\"event\":\"authz\",\"decision\":\"allow\",\"protocol\":\"http2\",\"method\":\"GET\","
                           "\"path\":\"/a\",\"host\":\"h\",\"destination_port\":80}",
                           &r),
                     1);
    assert_non_null(r.a.http);
    assert_int_equal(r.http.host_len, 1);
    assert_int_equal(r.http.num_headers, 0);
    rm__replay_req_clear(&r);
}

static void access_lines(void **state)
{
    (void)state;
    rm_replay_req_t r;
    assert_int_equal(parse("[pod/a/b] {\"event\":\"access\",\"reporter\":\"destination\",\"protocol\":\"http\","
                           "\"method\":\"DELETE\",\"path\":\"/x\",\"authority\":\"orders:8080\","
                           "\"upstream_host\":\"127.0.0.1:8080\",\"downstream_remote_address\":\"[2001:db8::7]:40000\","
                           "\"source_principal\":\"spiffe://cluster.local/ns/web/sa/frontend\","
                           "\"destination_workload\":\"orders\",\"destination_namespace\":\"shop\","
                           "\"destination_app\":\"orders\",\"authz_decision\":\"deny\"}",
                           &r),
                     1);
    assert_int_equal(r.event, RM_REPLAY_ACCESS);
    assert_int_equal(r.recorded_allow, 0);
    assert_int_equal(r.a.destination_port, 8080);
    assert_int_equal(r.a.have_source_ip, 1);
    assert_int_equal(r.a.source_ip[0], 0x20);
    assert_non_null(r.a.http);
    assert_int_equal(r.http.host_len, 11);
    assert_int_equal(r.have_workload, 1);
    assert_int_equal(r.num_labels, 1);
    assert_string_equal(r.labels[0].key, "app");
    rm__replay_req_clear(&r);

    /* outbound, or with no decision: nothing to replay */
    assert_int_equal(parse("{\"event\":\"access\",\"reporter\":\"source\",\"authz_decision\":\"allow\"}", &r), 0);
    assert_null(r.root);
    assert_int_equal(parse("{\"event\":\"access\",\"reporter\":\"destination\",\"authz_decision\":null}", &r), 0);
}

static void other_lines_skipped(void **state)
{
    (void)state;
    rm_replay_req_t r;
    static const char *const lines[] = {
        "",
        "not JSON at all",
        "[pod/a/app] {\"msg\": \"an app's line\"}",
        "{\"event\":\"connection\",\"decision\":\"deny\"}",
        "{\"event\":\"authz\"}", /* no decision */
        "{\"event\":\"authz\",\"decision\":",
        "[1,2,3]",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        assert_int_equal(parse(lines[i], &r), 0);
        assert_null(r.root);
    }
}

static void engines_per_workload(void **state)
{
    (void)state;
    rm_policy_set_t set = {0};
    rm_replay_engines_t c = {
        .set = &set, .opts = {.default_action = RM_AUTHZ_DENY}, .root_namespace = "ringmesh-system"};
    rm_replay_req_t r1, r2, r3;
    const rm_authz_engine_t *e1, *e2, *e3;
    rm_authz_decision_t d;
    char err[256];

    load_ok(&set, POLICY("shop", "orders-only", "ALLOW") "  selector: {matchLabels: {app: orders}}\n"
                                                         "  rules:\n  - to: [{operation: {methods: [GET]}}]\n");
    static const char orders[] = "{\"event\":\"authz\",\"decision\":\"allow\",\"workload_namespace\":\"shop\","
                                 "\"workload_labels\":{\"app\":\"orders\"},\"protocol\":\"http1\",\"method\":\"POST\","
                                 "\"path\":\"/\",\"destination_port\":80}";
    static const char cart[] = "{\"event\":\"authz\",\"decision\":\"allow\",\"workload_namespace\":\"shop\","
                               "\"workload_labels\":{\"app\":\"cart\"},\"protocol\":\"http1\",\"method\":\"POST\","
                               "\"path\":\"/\",\"destination_port\":80}";
    assert_int_equal(parse(orders, &r1), 1);
    assert_int_equal(parse(cart, &r2), 1);
    assert_int_equal(parse(orders, &r3), 1);
    assert_int_equal(rm__replay_engine_for(&c, &r1, &e1, err, sizeof(err)), 0);
    assert_int_equal(rm__replay_engine_for(&c, &r2, &e2, err, sizeof(err)), 0);
    assert_int_equal(rm__replay_engine_for(&c, &r3, &e3, err, sizeof(err)), 0);
    assert_ptr_equal(e1, e3); /* one engine per workload */
    assert_ptr_not_equal(e1, e2);
    assert_int_equal(c.num, 2);
    rm_authz_evaluate(e1, &r1.a, 1.0, &d);
    assert_int_equal(d.allow, 0); /* orders: the GET-only policy selects it */
    assert_int_equal(d.reason, RM_AUTHZ_REASON_NO_ALLOW_MATCH);
    rm_authz_evaluate(e2, &r2.a, 1.0, &d);
    assert_int_equal(d.reason, RM_AUTHZ_REASON_DEFAULT_DENY); /* cart: no policy selects it */
    rm__replay_req_clear(&r1);
    rm__replay_req_clear(&r2);
    rm__replay_req_clear(&r3);
    rm__replay_engines_clear(&c);
    rm_policy_set_clear(&set);
}

/* An end-user token's evidence: the attributes line holds the token's principal and only the claims a policy
 * references (never another claim), and a replay of that line decides the request as the proxy did. */
static void request_auth_round_trip(void **state)
{
    (void)state;
    rm_policy_set_t set = {0};
    rm_authz_engine_t *e = NULL;
    rm_authz_decision_t d;
    rm_replay_req_t r;
    char err[256], line[4096];
    int fds[2];

    load_ok(&set, POLICY("shop", "admins", "ALLOW") "  rules:\n"
                                                    "  - when:\n"
                                                    "    - {key: \"request.auth.claims[groups]\", values: [admin]}\n"
                                                    "    - {key: \"request.auth.claims[org][team]\", values: [pay]}\n");
    const rm_authz_policy_t *p = &set.policies[0];
    rm_authz_engine_opts_t opts = {.default_action = RM_AUTHZ_DENY};
    assert_int_equal(rm_authz_engine_new(&e, &p, 1, &opts, err, sizeof(err)), 0);

    json_t *claims = json_loads("{\"groups\":[\"dev\",\"admin\"],\"org\":{\"team\":\"pay\",\"cc\":\"4111\"},"
                                "\"email\":\"someone@example.com\"}",
                                0, NULL);
    assert_non_null(claims);
    const char *auds[] = {"orders"};
    rm_request_auth_t ra = {
        .principal = "https://idp.example/alice", .audiences = auds, .num_audiences = 1, .claims = claims};
    rm_http_request_t req = {.method = "GET", .method_len = 3, .path = "/x", .path_len = 2};
    rm_authz_attrs_t a = {.http = &req, .destination_port = 8080, .request_auth = &ra};
    rm_authz_evaluate(e, &a, 0.5, &d);
    assert_int_equal(d.allow, 1);

    assert_int_equal(pipe(fds), 0);
    rm_log_configure(RM_LOG_DEBUG, fds[1]);
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_INFO, "authz");
    rm_log_str(&l, "decision", "allow");
    rm_authz_log_attributes(&l, e, &a);
    rm_log_end(&l);
    rm_log_configure(RM_LOG_INFO, STDOUT_FILENO);
    ssize_t n = read(fds[0], line, sizeof(line) - 1);
    close(fds[0]);
    close(fds[1]);
    assert_true(n > 0);
    line[n] = '\0';
    assert_non_null(strstr(line, "\"principal\":\"https://idp.example/alice\""));
    assert_non_null(strstr(line, "\"groups\":[\"dev\",\"admin\"]"));
    assert_non_null(strstr(line, "\"org][team\":\"pay\""));
    assert_null(strstr(line, "someone@example.com")); /* a claim no policy references */
    assert_null(strstr(line, "4111"));

    assert_int_equal(parse(line, &r), 1);
    assert_non_null(r.a.request_auth);
    rm_authz_evaluate(e, &r.a, 0.5, &d);
    assert_int_equal(d.allow, 1); /* the replay decides as the proxy did */
    rm__replay_req_clear(&r);
    /* and a recorded token without the group is denied on replay */
    static const char other[] = "{\"event\":\"authz\",\"decision\":\"allow\",\"attributes\":{\"destination_port\":8080,"
                                "\"method\":\"GET\",\"path\":\"/x\",\"headers\":{},\"request_auth\":{\"principal\":"
                                "\"i/s\",\"audiences\":[],\"claims\":{\"groups\":[\"dev\"],\"org][team\":\"pay\"}}}}";
    assert_int_equal(parse(other, &r), 1);
    rm_authz_evaluate(e, &r.a, 0.5, &d);
    assert_int_equal(d.allow, 0);
    rm__replay_req_clear(&r);
    json_decref(claims);
    rm_authz_engine_free(e);
    rm_policy_set_clear(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decision_line_with_attributes),
        cmocka_unit_test(decision_line_without_attributes),
        cmocka_unit_test(access_lines),
        cmocka_unit_test(other_lines_skipped),
        cmocka_unit_test(engines_per_workload),
        cmocka_unit_test(request_auth_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
