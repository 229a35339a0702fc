/* The TokenReview attestor (control/attest_tokenreview.c) reaching the API, against a stand-in Kubernetes API over
 * real TLS (tokenreview_fixtures.h): the control plane's own token refused or re-read, the server's certificate and
 * name, the API down, its configuration, concurrent reviews, and the stand-in's own checks of a request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "attest.h"
#include "ringmesh/error.h"
#include "tokenreview_fixtures.h"
#include "unit_asserts.h"

/* ---- the control plane's own token -------------------------------------------------------------------------- */

static void test_caller_token_refused_401(void **state)
{
    char err[ERRLEN], file[256];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;

    need_stand_in();
    assert_int_equal(write_text("token-revoked", "control-token-revoked"), 0);
    path_of(file, sizeof(file), "token-revoked");
    cfg = config();
    cfg.token_file = file;
    a = attestor(&cfg);
    refused(a, token_of("authenticated.json"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "HTTP 401 Unauthorized: Unauthorized");
    assert_contains(err, "own token was not accepted");
    assert_null(strstr(err, "control-token-revoked"));
    check_last_request(token_of("authenticated.json"), "ringmesh", "control-token-revoked");
    a->ops->destroy(a);
}

static void test_caller_forbidden_403(void **state)
{
    char err[ERRLEN], file[256];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;

    need_stand_in();
    assert_int_equal(write_text("token-no-rbac", "control-token-no-rbac\n"), 0);
    path_of(file, sizeof(file), "token-no-rbac");
    cfg = config();
    cfg.token_file = file;
    a = attestor(&cfg);
    refused(a, token_of("authenticated.json"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "HTTP 403 Forbidden: tokenreviews.authentication.k8s.io is forbidden");
    assert_contains(err, "cannot create resource");
    a->ops->destroy(a);
}

/* The kubelet rewrites the token file as it rotates the token: each review reads it again. */
static void test_token_file_reread(void **state)
{
    char err[ERRLEN], file[256];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    rm_attested_t out;
    const char *cred = token_of("authenticated.json");
    size_t before;

    need_stand_in();
    assert_int_equal(write_text("token-rotating", "control-token-a"), 0);
    path_of(file, sizeof(file), "token-rotating");
    cfg = config();
    cfg.token_file = file;
    a = attestor(&cfg);
    expect_ok(a, cred, &out);
    check_last_request(cred, "ringmesh", "control-token-a");
    assert_int_equal(write_text("token-rotating", "control-token-b\n"), 0); /* a trailing newline is not sent */
    expect_ok(a, cred, &out);
    check_last_request(cred, "ringmesh", "control-token-b");
    assert_int_equal(write_text("token-rotating", "control-token-revoked"), 0);
    refused(a, cred, RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "HTTP 401");

    /* unreadable, empty or not a bearer token: no request goes out */
    before = request_count();
    assert_int_equal(unlink(file), 0);
    refused(a, cred, RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "cannot read the control plane's token");
    assert_contains(err, file);
    assert_int_equal(write_text("token-rotating", "\n"), 0);
    refused(a, cred, RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "is empty");
    assert_int_equal(write_text("token-rotating", "control token\r\nX-Injected: 1"), 0);
    refused(a, cred, RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "not a bearer token");
    assert_int_equal(request_count(), before);
    a->ops->destroy(a);
}

/* ---- reaching the API --------------------------------------------------------------------------------------- */

static void test_server_certificate_not_trusted(void **state)
{
    char err[ERRLEN];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    size_t before;

    need_stand_in();
    cfg = config();
    cfg.ca_file = other_ca_file;
    a = attestor(&cfg);
    before = request_count();
    refused(a, token_of("authenticated.json"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "TLS with the Kubernetes API at");
    assert_contains(err, other_ca_file);
    assert_int_equal(request_count(), before);
    a->ops->destroy(a);
}

/* The certificate is for 127.0.0.1 only: reached as "localhost", the name does not match. */
static void test_server_name_mismatch(void **state)
{
    struct addrinfo hints = {0}, *res = NULL, *ai;
    char err[ERRLEN], url[64];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    int loopback = 0;
    size_t before;

    need_stand_in();
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo("localhost", NULL, &hints, &res) == 0) {
        for (ai = res; ai != NULL; ai = ai->ai_next)
            loopback |= ((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
        freeaddrinfo(res);
    }
    if (!loopback) {
        fprintf(stderr, "localhost does not resolve to 127.0.0.1 here: this test is skipped\n");
        skip();
    }
    snprintf(url, sizeof(url), "https://localhost:%u", T.port);
    cfg = config();
    cfg.api_server = url;
    a = attestor(&cfg);
    before = request_count();
    refused(a, token_of("authenticated.json"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "TLS with the Kubernetes API at https://localhost:");
    assert_int_equal(request_count(), before);
    a->ops->destroy(a);
}

static int loopback_socket(unsigned *port)
{
    struct sockaddr_in sin = {0};
    socklen_t len = sizeof(sin);
    int fd;

    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

static void test_api_down(void **state)
{
    char err[ERRLEN], url[64];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    unsigned port;
    int fd;

    need_stand_in();
    /* nothing listens */
    fd = loopback_socket(&port);
    close(fd);
    snprintf(url, sizeof(url), "https://127.0.0.1:%u", port);
    cfg = config();
    cfg.api_server = url;
    a = attestor(&cfg);
    refused(a, token_of("authenticated.json"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "cannot reach the Kubernetes API at https://127.0.0.1:");
    a->ops->destroy(a);

    /* the connection is taken but nothing ever answers: the timeout ends the review */
    fd = loopback_socket(&port);
    assert_int_equal(listen(fd, 8), 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%u", port);
    cfg.api_server = url;
    cfg.timeout_ms = 300;
    a = attestor(&cfg);
    refused(a, token_of("authenticated.json"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "no answer from the Kubernetes API at https://127.0.0.1:");
    assert_contains(err, "within 300 ms");
    a->ops->destroy(a);
    close(fd);

    /* TLS is up and the request is taken, but the answer never comes */
    assert_int_equal(write_text("never.stall", ""), 0);
    cfg = config();
    cfg.timeout_ms = 300;
    a = attestor(&cfg);
    refused(a, answer_with("never.stall", "stalled-answer"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "no answer from the Kubernetes API at https://127.0.0.1:");
    assert_contains(err, "within 300 ms");
    a->ops->destroy(a);
}

/* ---- configuration ------------------------------------------------------------------------------------------ */

static void restore_env(const char *name, char *saved)
{
    if (saved != NULL)
        setenv(name, saved, 1);
    else
        unsetenv(name);
    free(saved);
}

static void test_config(void **state)
{
    char *saved_host = getenv("KUBERNETES_SERVICE_HOST"), *saved_port = getenv("KUBERNETES_SERVICE_PORT");
    char err[ERRLEN], port[16], url[80], missing[256];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a = NULL;
    rm_attested_t out;

    need_stand_in();
    saved_host = saved_host != NULL ? strdup(saved_host) : NULL;
    saved_port = saved_port != NULL ? strdup(saved_port) : NULL;

    /* the API server from the environment, as a pod sees it */
    snprintf(port, sizeof(port), "%u", T.port);
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", port, 1);
    cfg = config();
    cfg.api_server = NULL;
    a = attestor(&cfg);
    expect_ok(a, token_of("authenticated.json"), &out);
    assert_string_equal(out.namespace_, "shop");
    a->ops->destroy(a);
    /* an IPv6 service address goes in brackets (nothing answers there: the message shows the URL) */
    setenv("KUBERNETES_SERVICE_HOST", "fd00:6d65:7368::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "1", 1);
    cfg.timeout_ms = 200;
    a = attestor(&cfg);
    refused(a, token_of("authenticated.json"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "at https://[fd00:6d65:7368::1]:1");
    a->ops->destroy(a);
    cfg.timeout_ms = 0;
    /* neither set, nor a URL given */
    unsetenv("KUBERNETES_SERVICE_HOST");
    assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "KUBERNETES_SERVICE_HOST");
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    unsetenv("KUBERNETES_SERVICE_PORT");
    assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "KUBERNETES_SERVICE_PORT");
    restore_env("KUBERNETES_SERVICE_HOST", saved_host);
    restore_env("KUBERNETES_SERVICE_PORT", saved_port);

    /* a trailing slash on the URL is not doubled into the path (the stand-in knows one path only) */
    snprintf(url, sizeof(url), "%s/", T.url);
    cfg = config();
    cfg.api_server = url;
    a = attestor(&cfg);
    expect_ok(a, token_of("authenticated.json"), &out);
    a->ops->destroy(a);

    /* a path prefix is kept in front of the API path */
    snprintf(url, sizeof(url), "%s/behind/a/proxy", T.url);
    cfg = config();
    cfg.api_server = url;
    a = attestor(&cfg);
    refused(a, token_of("authenticated.json"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "HTTP 404 NotFound");
    {
        json_t *req = last_request();
        assert_string_equal(member(req, "path"), "/behind/a/proxy" REVIEW_PATH);
        json_decref(req);
    }
    a->ops->destroy(a);

    /* URLs that are refused */
    cfg = config();
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", T.port);
    cfg.api_server = url;
    assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "is not https://");
    cfg.api_server = "https://admin:secret@127.0.0.1:6443";
    assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "no user, query or fragment");
    cfg.api_server = "https://127.0.0.1:6443/?x=1";
    assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    cfg.api_server = "not a url";
    assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);

    /* files that cannot be read, named */
    path_of(missing, sizeof(missing), "no-such-file");
    cfg = config();
    cfg.ca_file = missing;
    assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "CA file");
    assert_contains(err, missing);
    cfg = config();
    cfg.token_file = missing;
    assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "token file");
    if (access(RM_TOKENREVIEW_CA_FILE, F_OK) != 0) { /* outside a pod: the default path is the one named */
        cfg = config();
        cfg.ca_file = NULL;
        assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
        assert_contains(err, RM_TOKENREVIEW_CA_FILE);
    }
    if (access(RM_TOKENREVIEW_TOKEN_FILE, F_OK) != 0) {
        cfg = config();
        cfg.token_file = NULL;
        assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
        assert_contains(err, RM_TOKENREVIEW_TOKEN_FILE);
    }
    cfg = config();
    cfg.audience = "";
    assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "audience");
    cfg.audience = "mesh\xff";
    assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "audience");
}

/* ---- threads ------------------------------------------------------------------------------------------------ */

typedef struct st_worker_t {
    rm_attestor_t *a;
    const char *good, *expired;
    int wrong;
} worker_t;

static void *review_many(void *arg)
{
    worker_t *w = arg;
    rm_attested_t out;
    char err[ERRLEN];
    int i;

    for (i = 0; i != 8; ++i) {
        if (w->a->ops->attest(w->a, w->good, strlen(w->good), &out, err, sizeof(err)) != 0 ||
            strcmp(out.namespace_, "shop") != 0 || strcmp(out.pod_name, "orders-7d9c5b8f6-q4x2m") != 0)
            ++w->wrong;
        if (w->a->ops->attest(w->a, w->expired, strlen(w->expired), &out, err, sizeof(err)) != RM_ERR_AUTH_REVIEW ||
            strstr(err, "service account token has expired") == NULL)
            ++w->wrong;
    }
    return NULL;
}

static void test_concurrent_reviews(void **state)
{
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    pthread_t threads[4];
    worker_t workers[4];
    size_t i;

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    for (i = 0; i != 4; ++i) {
        workers[i] = (worker_t){a, token_of("authenticated.json"), token_of("unauthenticated-expired.json"), 0};
        assert_int_equal(pthread_create(&threads[i], NULL, review_many, &workers[i]), 0);
    }
    for (i = 0; i != 4; ++i) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(workers[i].wrong, 0);
    }
    a->ops->destroy(a);
}

/* ---- the stand-in itself: its checks of a request can fail ------------------------------------------------- */

static size_t discard(char *data, size_t size, size_t nmemb, void *ctx)
{
    return size * nmemb;
}

static long post_raw(const char *bearer, const char *content_type, const char *body)
{
    struct curl_slist *headers = NULL;
    char auth[128], ctype[128];
    long status = 0;
    CURL *curl;
    char url[128];

    snprintf(url, sizeof(url), "%s" REVIEW_PATH, T.url);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
    snprintf(ctype, sizeof(ctype), "Content-Type: %s", content_type);
    assert_non_null(curl = curl_easy_init());
    headers = curl_slist_append(headers, auth);
    headers = curl_slist_append(headers, ctype);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    assert_int_equal(curl_easy_perform(curl), CURLE_OK);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return status;
}

static void test_stand_in_checks_requests(void **state)
{
    char body[512];
    const char *cred;

    need_stand_in();
    cred = token_of("authenticated.json");
#define BODY(fmt) (snprintf(body, sizeof(body), fmt, cred), body)
    /* the documented shape passes, with and without audiences and with the metadata and status clients send */
    assert_int_equal(post_raw("control-token-a", "application/json",
                              BODY("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\","
                                   "\"spec\":{\"token\":\"%s\",\"audiences\":[\"ringmesh\"]}}")),
                     201);
    assert_int_equal(post_raw("control-token-a", "application/json",
                              BODY("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\","
                                   "\"metadata\":{\"creationTimestamp\":null},\"spec\":{\"token\":\"%s\"},"
                                   "\"status\":{\"user\":{}}}")),
                     201);
    /* anything else does not */
    assert_int_equal(post_raw("control-token-x", "application/json",
                              BODY("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\","
                                   "\"spec\":{\"token\":\"%s\"}}")),
                     401);
    assert_int_equal(post_raw("control-token-a", "text/plain",
                              BODY("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\","
                                   "\"spec\":{\"token\":\"%s\"}}")),
                     415);
    assert_int_equal(post_raw("control-token-a", "application/json",
                              BODY("{\"apiVersion\":\"authentication.k8s.io/v1beta1\",\"kind\":\"TokenReview\","
                                   "\"spec\":{\"token\":\"%s\"}}")),
                     400);
    assert_int_equal(post_raw("control-token-a", "application/json",
                              BODY("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\","
                                   "\"spec\":{\"token\":\"%s\",\"audience\":\"ringmesh\"}}")),
                     400);
    assert_int_equal(post_raw("control-token-a", "application/json",
                              BODY("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\","
                                   "\"token\":\"%s\"}")),
                     400);
    assert_int_equal(post_raw("control-token-a", "application/json",
                              BODY("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\","
                                   "\"spec\":{\"token\":\"%s\",\"audiences\":\"ringmesh\"}}")),
                     400);
    assert_int_equal(post_raw("control-token-a", "application/json",
                              "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\","
                              "\"spec\":{\"token\":\"\"}}"),
                     400);
#undef BODY
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_caller_token_refused_401),
        cmocka_unit_test(test_caller_forbidden_403),
        cmocka_unit_test(test_token_file_reread),
        cmocka_unit_test(test_server_certificate_not_trusted),
        cmocka_unit_test(test_server_name_mismatch),
        cmocka_unit_test(test_api_down),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_concurrent_reviews),
        cmocka_unit_test(test_stand_in_checks_requests),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
