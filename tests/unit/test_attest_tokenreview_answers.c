/* The TokenReview attestor (control/attest_tokenreview.c) on the API's answer, against a stand-in Kubernetes API over
 * real TLS (tokenreview_fixtures.h): authenticated or not, audiences, service-account and pod names, malformed
 * answers and credentials; every refusal on its own, made from a committed recording that differs in one field. */
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

/* ---- the review's answer ------------------------------------------------------------------------------------ */

static void test_authenticated(void **state)
{
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    rm_attested_t out;
    const char *cred = token_of("authenticated.json");

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    expect_ok(a, cred, &out);
    assert_string_equal(out.namespace_, "shop");
    assert_string_equal(out.service_account, "orders");
    assert_string_equal(out.pod_name, "orders-7d9c5b8f6-q4x2m");
    check_last_request(cred, "ringmesh", "control-token-a");
    a->ops->destroy(a);
}

static void test_unbound_token_has_no_pod(void **state)
{
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    rm_attested_t out;

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    expect_ok(a, token_of("authenticated-unbound.json"), &out);
    assert_string_equal(out.namespace_, "shop");
    assert_string_equal(out.service_account, "orders");
    assert_string_equal(out.pod_name, "");
    /* the same with no extra at all */
    {
        json_t *doc = recording("authenticated.json");
        json_object_del(json_object_get(json_object_get(doc, "status"), "user"), "extra");
        expect_ok(a, answer_doc("no-extra", doc), &out);
        assert_string_equal(out.pod_name, "");
    }
    a->ops->destroy(a);
}

static void test_not_authenticated(void **state)
{
    char err[ERRLEN];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    json_t *doc;

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    refused(a, token_of("unauthenticated-expired.json"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "did not authenticate");
    assert_contains(err, "service account token has expired");
    refused(a, token_of("unauthenticated-audience.json"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "is invalid for the target audiences");

    /* no reason given */
    doc = recording("unauthenticated-expired.json");
    json_object_del(json_object_get(doc, "status"), "error");
    refused(a, answer_doc("unauthenticated-no-reason", doc), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "did not authenticate the token: (it gave no reason)");

    /* authenticated must be JSON true: false, and "true" as a string, are not */
    doc = recording("authenticated.json");
    json_object_set_new(json_object_get(doc, "status"), "authenticated", json_false());
    refused(a, answer_doc("authenticated-false", doc), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "did not authenticate");
    doc = recording("authenticated.json");
    json_object_set_new(json_object_get(doc, "status"), "authenticated", json_string("true"));
    refused(a, answer_doc("authenticated-string", doc), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "did not authenticate");
    a->ops->destroy(a);
}

/* An authenticator may quote what it was given; the message must not. */
static void test_api_text_never_shows_the_token(void **state)
{
    char err[ERRLEN], reason[512];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    json_t *doc;
    const char *cred;

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    cred = VARIANT_PREFIX "echoing-authenticator-signature";
    snprintf(reason, sizeof(reason), "[invalid bearer token, webhook: unknown token %s (signature %s)]", cred,
             strrchr(cred, '.') + 1);
    doc = recording("unauthenticated-expired.json");
    json_object_set_new(json_object_get(doc, "status"), "error", json_string(reason));
    assert_string_equal(answer_doc("echoing-authenticator-signature", doc), cred);
    refused(a, cred, RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "webhook: unknown token <token> (signature <signature>)");
    a->ops->destroy(a);
}

static void test_audience_not_granted(void **state)
{
    char err[ERRLEN];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    json_t *doc;

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    refused(a, token_of("audience-apiserver.json"), RM_ERR_JWT_AUDIENCE, err);
    assert_contains(err, "does not grant audience 'ringmesh'");
    assert_contains(err, "https://kubernetes.default.svc.cluster.local");
    refused(a, token_of("audience-unaware.json"), RM_ERR_JWT_AUDIENCE, err);
    assert_contains(err, "grants no audience");
    doc = recording("authenticated.json");
    json_object_set_new(json_object_get(doc, "status"), "audiences", json_array());
    refused(a, answer_doc("audiences-empty", doc), RM_ERR_JWT_AUDIENCE, err);
    assert_contains(err, "grants no audience");
    doc = recording("authenticated.json");
    json_object_set_new(json_object_get(doc, "status"), "audiences", json_string("ringmesh"));
    refused(a, answer_doc("audiences-not-a-list", doc), RM_ERR_JWT_AUDIENCE, err);
    a->ops->destroy(a);

    /* another configured audience is asked for, and ringmesh's grant does not count for it */
    cfg.audience = "mesh-b";
    a = attestor(&cfg);
    refused(a, token_of("authenticated.json"), RM_ERR_JWT_AUDIENCE, err);
    assert_contains(err, "does not grant audience 'mesh-b'");
    check_last_request(token_of("authenticated.json"), "mesh-b", "control-token-a");
    a->ops->destroy(a);
}

static void test_user_not_a_service_account(void **state)
{
    char err[ERRLEN];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    json_t *doc;

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    refused(a, token_of("not-serviceaccount.json"), RM_ERR_JWT_CLAIMS, err);
    assert_contains(err, "'https://issuer.example.com#jane' is not a service account");
    refused(a, answer_username("user-node", "system:node:worker-2"), RM_ERR_JWT_CLAIMS, err);
    assert_contains(err, "is not a service account");
    refused(a, answer_username("user-sa-prefix-only", "system:serviceaccount:shop"), RM_ERR_JWT_CLAIMS, err);
    assert_contains(err, "has no service account name");
    refused(a, answer_username("user-empty", ""), RM_ERR_JWT_CLAIMS, err);
    assert_contains(err, "names no user");
    doc = recording("authenticated.json");
    json_object_set_new(json_object_get(json_object_get(doc, "status"), "user"), "username",
                        json_stringn("system:serviceaccount:shop:orders\0:admin", 40));
    refused(a, answer_doc("user-nul", doc), RM_ERR_AUTH_REVIEW, err); /* a NUL would cut the name short */
    assert_contains(err, "is not JSON");
    doc = recording("authenticated.json");
    json_object_set_new(json_object_get(doc, "status"), "user", json_object());
    refused(a, answer_doc("user-no-username", doc), RM_ERR_JWT_CLAIMS, err);
    assert_contains(err, "names no user");
    doc = recording("authenticated.json");
    json_object_del(json_object_get(doc, "status"), "user");
    refused(a, answer_doc("user-missing", doc), RM_ERR_JWT_CLAIMS, err);
    assert_contains(err, "names no user");
    a->ops->destroy(a);
}

static void test_names_not_dns1123(void **state)
{
    static const struct {
        const char *name, *username, *says;
    } bad[] = {
        {"ns-upper", "system:serviceaccount:Shop:orders", "namespace"},
        {"ns-underscore", "system:serviceaccount:shop_prod:orders", "namespace"},
        {"ns-dotted", "system:serviceaccount:shop.prod:orders", "namespace"}, /* a subdomain, not a label */
        {"ns-empty", "system:serviceaccount::orders", "namespace"},
        {"ns-dash-end", "system:serviceaccount:shop-:orders", "namespace"},
        {"ns-too-long", "system:serviceaccount:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:orders",
         "namespace"},
        {"sa-upper", "system:serviceaccount:shop:Orders", "service account"},
        {"sa-colon", "system:serviceaccount:shop:orders:admin", "service account"},
        {"sa-empty", "system:serviceaccount:shop:", "service account"},
        {"sa-slash", "system:serviceaccount:shop:orders/x", "service account"},
        {"sa-dash-start", "system:serviceaccount:shop:-orders", "service account"},
        {"sa-empty-part", "system:serviceaccount:shop:orders..v2", "service account"},
    };
    char err[ERRLEN], want[64];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    rm_attested_t out;
    size_t i;

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    for (i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        refused(a, answer_username(bad[i].name, bad[i].username), RM_ERR_JWT_CLAIMS, err);
        snprintf(want, sizeof(want), "the %s in the token's user", bad[i].says);
        assert_contains(err, want);
        assert_contains(err, "DNS-1123");
    }
    /* next to them, names that are valid: a 63-byte namespace, a dotted service account name */
    expect_ok(a,
              answer_username("names-ok", "system:serviceaccount:"
                                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:orders.v2"),
              &out);
    assert_int_equal(strlen(out.namespace_), 63);
    assert_string_equal(out.service_account, "orders.v2");
    a->ops->destroy(a);
}

static void test_pod_name_invalid(void **state)
{
    char err[ERRLEN];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    json_t *doc;

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    refused(a, answer_pod_name("pod-upper", json_pack("[s]", "Orders-1")), RM_ERR_JWT_CLAIMS, err);
    assert_contains(err, "pod-name");
    refused(a, answer_pod_name("pod-two", json_pack("[ss]", "orders-1", "orders-2")), RM_ERR_JWT_CLAIMS, err);
    assert_contains(err, "pod-name");
    refused(a, answer_pod_name("pod-none", json_array()), RM_ERR_JWT_CLAIMS, err);
    refused(a, answer_pod_name("pod-string", json_string("orders-1")), RM_ERR_JWT_CLAIMS, err);
    refused(a, answer_pod_name("pod-number", json_pack("[i]", 7)), RM_ERR_JWT_CLAIMS, err);
    doc = recording("authenticated.json");
    json_object_set_new(json_object_get(json_object_get(doc, "status"), "user"), "extra", json_string("x"));
    refused(a, answer_doc("extra-not-object", doc), RM_ERR_JWT_CLAIMS, err);
    assert_contains(err, "extra is not an object");
    a->ops->destroy(a);
}

static void test_bad_answers(void **state)
{
    char err[ERRLEN], *big;
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    json_t *doc;
    size_t i;

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    refused(a, answer_raw("not-json", "<html><body>503 Service Unavailable</body></html>"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "is not JSON");
    refused(a, answer_raw("empty-body", ""), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "is not JSON");
    /* which of two status members would count is not for a parser to decide */
    refused(a,
            answer_raw("duplicate-status", "{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1\","
                                           "\"status\":{\"user\":{}},\"status\":{\"authenticated\":true,\"user\":{"
                                           "\"username\":\"system:serviceaccount:shop:orders\"},\"audiences\":["
                                           "\"ringmesh\"]}}"),
            RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "is not JSON");
    doc = recording("authenticated.json");
    json_object_set_new(doc, "kind", json_string("TokenRequest"));
    refused(a, answer_doc("kind-other", doc), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "is not a TokenReview");
    doc = recording("authenticated.json");
    json_object_set_new(doc, "apiVersion", json_string("authentication.k8s.io/v1beta1"));
    refused(a, answer_doc("version-other", doc), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "is not a TokenReview");
    doc = recording("authenticated.json");
    json_object_del(doc, "status");
    refused(a, answer_doc("no-status", doc), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "has no status");
    refused(a, answer_raw("array", "[]"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "is not a TokenReview");

    /* more than 1 MiB is not read to the end */
    assert_non_null(big = malloc((2u << 20) + 16));
    big[0] = '"';
    for (i = 1; i != (2u << 20); ++i)
        big[i] = 'a';
    strcpy(big + i, "\"");
    refused(a, answer_raw("too-large", big), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "answered more than 1048576 bytes");
    free(big);

    /* a token the stand-in has no recording for: its 500 Status, quoted */
    refused(a, VARIANT_PREFIX "not-in-any-table", RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "HTTP 500 InternalError: fake_kube_api: no recording for this token");
    a->ops->destroy(a);
}

static void test_malformed_credential(void **state)
{
    static const char *const bad[] = {
        "not-a-jws", "two.parts", ".payload.sig", "header..sig",  "header.payload.", "a.b.c.d",        "a.b.c=",
        "a.b.c d",   "a.b.c\n",   "a.b.c\"",      "a.b.c\\u0000", "a+b.c/d.e",       "eyJ.eyJ.ab\x01",
    };
    char err[ERRLEN], *huge;
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    size_t i, before;

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    before = request_count();
    for (i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        refused(a, bad[i], RM_ERR_JWT_MALFORMED, err);
        assert_contains(err, "compact JWS");
    }
    expect_refused(a, "a.b.c\0d", 7, RM_ERR_JWT_MALFORMED, err);
    expect_refused(a, "", 0, RM_ERR_JWT_MALFORMED, err);
    assert_contains(err, "empty");
    expect_refused(a, NULL, 0, RM_ERR_JWT_MALFORMED, err);
    assert_non_null(huge = malloc((16u << 10) + 2));
    memset(huge, 'a', (16u << 10) + 1);
    huge[1] = '.';
    huge[3] = '.';
    huge[(16u << 10) + 1] = '\0';
    refused(a, huge, RM_ERR_JWT_MALFORMED, err);
    assert_contains(err, "longer than 16384 bytes");
    free(huge);
    /* none of these reached the API */
    assert_int_equal(request_count(), before);
    a->ops->destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authenticated),        cmocka_unit_test(test_unbound_token_has_no_pod),
        cmocka_unit_test(test_not_authenticated),    cmocka_unit_test(test_api_text_never_shows_the_token),
        cmocka_unit_test(test_audience_not_granted), cmocka_unit_test(test_user_not_a_service_account),
        cmocka_unit_test(test_names_not_dns1123),    cmocka_unit_test(test_pod_name_invalid),
        cmocka_unit_test(test_bad_answers),          cmocka_unit_test(test_malformed_credential),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
