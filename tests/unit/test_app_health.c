/* Unit tests for the app probes the proxy runs for the kubelet (sidecar/app_health.c, sidecar/app_probe.c): parsing
 * RINGMESH_APP_PROBERS, and tcpSocket and httpGet probes against real sockets on loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "app_health.h"
#include "ringmesh/error.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define VAR "RINGMESH_APP_PROBERS"

static void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("message \"%s\"\n  does not contain \"%s\"", haystack, needle);
}

static void test_parse_all_shapes(void **state)
{
    rm_app_probes_t t = {0};
    char err[512] = "";
    const char *json =
        "{\"/app-health/web/readyz\": {\"httpGet\": {\"path\": \"ready\", \"port\": 8080, \"scheme\": \"HTTPS\","
        "   \"host\": \"198.18.0.9\", \"httpHeaders\": [{\"name\": \"Host\", \"value\": \"web.local\"},"
        "                                               {\"name\": \"X-Probe\", \"value\": \"1\"}]},"
        "   \"timeoutSeconds\": 3},"
        " \"/app-health/web/livez\": {\"tcpSocket\": {\"port\": \"8081\"}},"
        " \"/app-health/side-car/startupz\": {\"grpc\": {\"port\": 9090, \"service\": \"orders\"}, \"timeoutSeconds\": "
        "2},"
        " \"/app-health/x/livez\": {\"grpc\": {\"port\": 9091}}}";
    int ret = rm_app_probes_parse(VAR, json, &t, err, sizeof(err));
    if (ret != 0)
        fail_msg("parse failed (%d): %s", ret, err);
    assert_int_equal(t.num_probes, 4);

    const rm_app_probe_t *p = rm_app_probes_find(&t, "/app-health/web/readyz");
    assert_non_null(p);
    assert_int_equal(p->kind, RM_APP_PROBE_HTTP);
    assert_string_equal(p->container, "web");
    assert_string_equal(p->name, "readyz");
    assert_string_equal(p->path, "/ready"); /* the leading slash put back, as the kubelet does */
    assert_int_equal(p->port, 8080);
    assert_true(p->https);
    assert_string_equal(p->host, "198.18.0.9");
    assert_int_equal(p->num_headers, 2);
    assert_string_equal(p->header_names[1], "X-Probe");
    assert_int_equal(p->timeout_s, 3);

    p = rm_app_probes_find(&t, "/app-health/web/livez");
    assert_non_null(p);
    assert_int_equal(p->kind, RM_APP_PROBE_TCP);
    assert_int_equal(p->port, 8081);
    assert_null(p->host);
    assert_int_equal(p->timeout_s, 1); /* the kubelet's default */

    p = rm_app_probes_find(&t, "/app-health/side-car/startupz");
    assert_non_null(p);
    assert_int_equal(p->kind, RM_APP_PROBE_GRPC);
    assert_string_equal(p->service, "orders");
    p = rm_app_probes_find(&t, "/app-health/x/livez");
    assert_string_equal(p->service, "");

    assert_null(rm_app_probes_find(&t, "/app-health/web/startupz"));
    assert_null(rm_app_probes_find(&t, "/app-health/web/readyz/"));
    rm_app_probes_dispose(&t);
}

/* Every refusal names the variable, the key and the field, and leaves nothing allocated. */
static void test_parse_refusals(void **state)
{
    static const struct {
        const char *json, *expect;
        int code;
    } bad[] = {
        {"{\"/app-health/a/readyz\": ", VAR ": not JSON: ", RM_ERR_CONFIG_PARSE},
        {"[1, 2]", VAR ": want a JSON object", RM_ERR_CONFIG_PARSE},
        {"{\"/app-health/a/readyz\": {\"tcpSocket\": {\"port\": 1}}, \"/app-health/a/readyz\": {}}", "duplicate",
         RM_ERR_CONFIG_PARSE},
        {"{\"/healthz/a/readyz\": {\"tcpSocket\": {\"port\": 1}}}",
         VAR ": \"/healthz/a/readyz\": want a key \"/app-health/<container>/livez|readyz|startupz\"",
         RM_ERR_CONFIG_VALUE},
        {"{\"/app-health/a/ready\": {\"tcpSocket\": {\"port\": 1}}}", "not livez, readyz or startupz",
         RM_ERR_CONFIG_VALUE},
        {"{\"/app-health/A_b/livez\": {\"tcpSocket\": {\"port\": 1}}}", "not a DNS label", RM_ERR_CONFIG_VALUE},
        {"{\"/app-health/a/livez\": {\"exec\": {\"command\": [\"true\"]}}}",
         VAR ": \"/app-health/a/livez\": unknown field \"exec\"", RM_ERR_CONFIG_VALUE},
        {"{\"/app-health/a/livez\": {\"timeoutSeconds\": 1}}",
         "want exactly one of httpGet, tcpSocket or grpc (found 0)", RM_ERR_CONFIG_VALUE},
        {"{\"/app-health/a/livez\": {\"tcpSocket\": {\"port\": 1}, \"grpc\": {\"port\": 2}}}", "(found 2)",
         RM_ERR_CONFIG_VALUE},
        {"{\"/app-health/a/livez\": {\"httpGet\": {\"port\": \"http\"}}}",
         VAR ": \"/app-health/a/livez\".httpGet: port \"http\" is a name; want its number", RM_ERR_CONFIG_VALUE},
        {"{\"/app-health/a/livez\": {\"httpGet\": {\"port\": 70000}}}", "httpGet: port is not a port number",
         RM_ERR_CONFIG_VALUE},
        {"{\"/app-health/a/livez\": {\"httpGet\": {\"path\": \"/\"}}}", "httpGet: port is required",
         RM_ERR_CONFIG_VALUE},
        {"{\"/app-health/a/livez\": {\"httpGet\": {\"port\": 80, \"scheme\": \"FTP\"}}}",
         "scheme \"FTP\" is not HTTP or HTTPS", RM_ERR_CONFIG_VALUE},
        {"{\"/app-health/a/livez\": {\"httpGet\": {\"port\": 80, \"path\": \"/a b\"}}}", "space or control character",
         RM_ERR_CONFIG_VALUE},
        {"{\"/app-health/a/livez\": {\"httpGet\": {\"port\": 80, \"httpHeaders\": [{\"name\": \"X\", \"value\": "
         "\"a\\r\\nInjected: 1\"}]}}}",
         "httpGet.httpHeaders[0]: value has a line break", RM_ERR_CONFIG_VALUE},
        {"{\"/app-health/a/livez\": {\"httpGet\": {\"port\": 80, \"httpHeaders\": [{\"value\": \"v\"}]}}}",
         "httpGet.httpHeaders[0]: name is required", RM_ERR_CONFIG_VALUE},
        {"{\"/app-health/a/livez\": {\"httpGet\": {\"port\": 80, \"bogus\": 1}}}", "httpGet: unknown field \"bogus\"",
         RM_ERR_CONFIG_VALUE},
        {"{\"/app-health/a/livez\": {\"tcpSocket\": {\"port\": 80}, \"timeoutSeconds\": 0}}",
         "timeoutSeconds: want a whole number of seconds", RM_ERR_CONFIG_VALUE},
        {"{\"/app-health/a/livez\": \"tcp:80\"}", "want a probe object", RM_ERR_CONFIG_VALUE},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rm_app_probes_t t = {0};
        char err[512] = "";
        int ret = rm_app_probes_parse(VAR, bad[i].json, &t, err, sizeof(err));
        if (ret != bad[i].code)
            fail_msg("case %zu: want %d, got %d: %s", i, bad[i].code, ret, err);
        assert_null(t.probes);
        assert_int_equal(t.num_probes, 0);
        assert_true(strncmp(err, VAR ": ", strlen(VAR) + 2) == 0);
        assert_contains(err, bad[i].expect);
    }
}

/* ---------------------------------------------------------------------------------------------------------
 * Probes against real loopback servers.
 * ------------------------------------------------------------------------------------------------------- */

static int listen_loopback(uint16_t *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

typedef struct st_http_server_t {
    int lfd;
    const char *answer;
    char request[2048];
} http_server_t;

/* Answers one request with `answer` and keeps what it received. */
static void *serve_one(void *arg)
{
    http_server_t *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    size_t have = 0;
    if (fd < 0)
        return NULL;
    while (have < sizeof(s->request) - 1 && strstr(s->request, "\r\n\r\n") == NULL) {
        ssize_t r = recv(fd, s->request + have, sizeof(s->request) - 1 - have, 0);
        if (r <= 0)
            break;
        have += (size_t)r;
        s->request[have] = '\0';
    }
    if (send(fd, s->answer, strlen(s->answer), MSG_NOSIGNAL) < 0)
        perror("send");
    close(fd);
    return NULL;
}

static int run_http(const char *answer, char *why, size_t whylen, char *request, size_t reqlen)
{
    http_server_t s = {.answer = answer};
    uint16_t port;
    pthread_t th;
    char json[512];
    rm_app_probes_t t = {0};
    char err[256];
    s.lfd = listen_loopback(&port);
    snprintf(json, sizeof(json),
             "{\"/app-health/web/readyz\": {\"httpGet\": {\"path\": \"/ready?full=1\", \"port\": %u,"
             " \"httpHeaders\": [{\"name\": \"X-Probe\", \"value\": \"kubelet\"}]}}}",
             port);
    assert_int_equal(rm_app_probes_parse(VAR, json, &t, err, sizeof(err)), 0);
    assert_int_equal(pthread_create(&th, NULL, serve_one, &s), 0);
    int ok = rm_app_probe_run(&t.probes[0], "127.0.0.1", 0, why, whylen);
    pthread_join(th, NULL);
    close(s.lfd);
    snprintf(request, reqlen, "%s", s.request);
    rm_app_probes_dispose(&t);
    return ok;
}

static void test_http_probe(void **state)
{
    char why[256], req[2048];
    assert_int_equal(run_http("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", why, sizeof(why), req, sizeof(req)), 1);
    assert_string_equal(why, "HTTP status 200");
    assert_contains(req, "GET /ready?full=1 HTTP/1.1\r\n");
    assert_contains(req, "\r\nX-Probe: kubelet\r\n");
    assert_contains(req, "\r\nUser-Agent: kube-probe/");
    /* 3xx passes without being followed, as for the kubelet */
    assert_int_equal(run_http("HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n", why, sizeof(why), req, sizeof(req)), 1);
    assert_int_equal(run_http("HTTP/1.0 503 Service Unavailable\r\n\r\n", why, sizeof(why), req, sizeof(req)), 0);
    assert_string_equal(why, "HTTP status 503");
    assert_int_equal(run_http("HTTP/1.1 199 Odd\r\n\r\n", why, sizeof(why), req, sizeof(req)), 0);
    assert_int_equal(run_http("SSH-2.0-OpenSSH\r\n", why, sizeof(why), req, sizeof(req)), 0);
    assert_string_equal(why, "the response is not HTTP/1.x");
    assert_int_equal(run_http("", why, sizeof(why), req, sizeof(req)), 0);
    assert_contains(why, "connection closed");
}

static void test_tcp_probe(void **state)
{
    rm_app_probes_t t = {0};
    char json[256], err[256], why[256];
    uint16_t port;
    int lfd = listen_loopback(&port);
    snprintf(json, sizeof(json), "{\"/app-health/db/livez\": {\"tcpSocket\": {\"port\": %u}}}", port);
    assert_int_equal(rm_app_probes_parse(VAR, json, &t, err, sizeof(err)), 0);
    assert_int_equal(rm_app_probe_run(&t.probes[0], "127.0.0.1", 0, why, sizeof(why)), 1);
    close(lfd); /* nothing listens on that port now */
    assert_int_equal(rm_app_probe_run(&t.probes[0], "127.0.0.1", 0, why, sizeof(why)), 0);
    assert_contains(why, "Connection refused");
    rm_app_probes_dispose(&t);
}

/* The timeout bounds the whole probe: an app that accepts and never answers fails it, and so does a request that
 * waited for a prober thread past its timeout. */
static void test_timeouts(void **state)
{
    rm_app_probes_t t = {0};
    char json[256], err[256], why[256];
    uint16_t port;
    int lfd = listen_loopback(&port); /* the kernel completes connections; nobody answers */
    snprintf(json, sizeof(json), "{\"/app-health/web/readyz\": {\"httpGet\": {\"port\": %u}, \"timeoutSeconds\": 1}}",
             port);
    assert_int_equal(rm_app_probes_parse(VAR, json, &t, err, sizeof(err)), 0);
    assert_int_equal(rm_app_probe_run(&t.probes[0], "127.0.0.1", 0, why, sizeof(why)), 0);
    assert_string_equal(why, "reading the response: timed out");
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t long_ago = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 - 1500;
    assert_int_equal(rm_app_probe_run(&t.probes[0], "127.0.0.1", long_ago, why, sizeof(why)), 0);
    assert_string_equal(why, "timed out waiting for a prober thread");
    close(lfd);
    rm_app_probes_dispose(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_all_shapes), cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_http_probe),       cmocka_unit_test(test_tcp_probe),
        cmocka_unit_test(test_timeouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
