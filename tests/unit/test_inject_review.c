/* Unit tests for the injector's AdmissionReview answers (control/inject/inject_review.c), the stand-in lookups
 * (control/inject_lookup.c) and the YAML <-> JSON conversion ringmeshctl inject reads and writes manifests with
 * (lib/yaml_json.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "inject.h"
#include "inject_lookup.h"

#include "ringmesh/yaml_json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void assert_contains(const char *haystack, const char *needle)
{
    if (haystack == NULL || strstr(haystack, needle) == NULL)
        fail_msg("\"%s\"\n  does not contain \"%s\"", haystack != NULL ? haystack : "(null)", needle);
}

static const char POD[] = "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web\",\"annotations\":%s},"
                          "\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"web:1\"}]}}";

static char *review(const char *op, const char *kind, const char *annotations)
{
    char pod[1024], *out = malloc(4096);
    snprintf(pod, sizeof(pod), POD, annotations);
    snprintf(out, 4096,
             "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"0d5e-1\","
             "\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"%s\"},\"namespace\":\"shop\",\"operation\":"
             "\"%s\",\"object\":%s}}",
             kind, op, pod);
    return out;
}

typedef struct st_lookups_t {
    int calls;
    int fail;
} lookups_t;

static int labels_of(void *arg, const char *ns, json_t **labels)
{
    lookups_t *l = arg;
    l->calls++;
    assert_string_equal(ns, "shop");
    if (l->fail)
        return -EIO;
    *labels = json_pack("{s:s}", "ringmesh.io/inject", "enabled");
    return 0;
}

static json_t *answer(const char *body, int want_status, rm_inject_review_info_t *info)
{
    rm_inject_config_t cfg;
    lookups_t l = {0};
    rm_inject_fixed_version_t v = {1, 33};
    rm_inject_review_ctx_t ctx = {.config = &cfg,
                                  .namespace_labels = labels_of,
                                  .namespace_labels_arg = &l,
                                  .kube_version = rm_inject_kube_version_fixed,
                                  .kube_version_arg = &v};
    char *out = NULL;
    int status = 0;
    json_error_t e;

    assert_int_equal(rm_inject_config_defaults(&cfg), 0);
    assert_int_equal(rm_inject_review(&ctx, body, strlen(body), &status, &out, info), 0);
    assert_int_equal(status, want_status);
    json_t *r = json_loads(out, 0, &e);
    if (r == NULL)
        fail_msg("the answer is not JSON: %s", out);
    assert_string_equal(json_string_value(json_object_get(r, "apiVersion")), "admission.k8s.io/v1");
    assert_string_equal(json_string_value(json_object_get(r, "kind")), "AdmissionReview");
    free(out);
    rm_inject_config_dispose(&cfg);
    return r;
}

static void test_review_injects(void **state)
{
    (void)state;
    rm_inject_review_info_t info;
    char *body = review("CREATE", "Pod", "{}");
    json_t *r = answer(body, 200, &info), *resp = json_object_get(r, "response");
    assert_string_equal(json_string_value(json_object_get(resp, "uid")), "0d5e-1");
    assert_true(json_is_true(json_object_get(resp, "allowed")));
    assert_string_equal(json_string_value(json_object_get(resp, "patchType")), "JSONPatch");
    const char *b64 = json_string_value(json_object_get(resp, "patch"));
    assert_non_null(b64);
    assert_int_equal(strlen(b64) % 4, 0);
    assert_int_equal(info.outcome, RM_INJECT_PATCHED);
    assert_string_equal(info.name, "web");
    assert_string_equal(info.namespace_, "shop");
    json_decref(r);
    free(body);
}

static void test_review_refuses_and_skips(void **state)
{
    (void)state;
    rm_inject_review_info_t info;
    char *body = review("CREATE", "Pod", "{\"ringmesh.io/proxy-cpu\":\"many\"}");
    json_t *r = answer(body, 200, &info), *resp = json_object_get(r, "response");
    assert_true(json_is_false(json_object_get(resp, "allowed")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(resp, "status"), "code")), 403);
    assert_contains(json_string_value(json_object_get(json_object_get(resp, "status"), "message")),
                    "annotation ringmesh.io/proxy-cpu: \"many\" is not");
    assert_null(json_object_get(resp, "patch"));
    json_decref(r);
    free(body);

    /* opted out: allowed, no patch */
    body = review("CREATE", "Pod", "{\"ringmesh.io/inject\":\"false\"}");
    r = answer(body, 200, &info);
    resp = json_object_get(r, "response");
    assert_true(json_is_true(json_object_get(resp, "allowed")));
    assert_null(json_object_get(resp, "patch"));
    assert_int_equal(info.outcome, RM_INJECT_SKIPPED);
    json_decref(r);
    free(body);

    /* an unknown annotation: injected, with a warning kubectl prints */
    body = review("CREATE", "Pod", "{\"ringmesh.io/injct\":\"true\"}");
    r = answer(body, 200, &info);
    resp = json_object_get(r, "response");
    assert_contains(json_string_value(json_array_get(json_object_get(resp, "warnings"), 0)), "ringmesh.io/injct");
    json_decref(r);
    free(body);

    /* not ours: UPDATE, or another kind */
    for (int i = 0; i < 2; i++) {
        body = i == 0 ? review("UPDATE", "Pod", "{}") : review("CREATE", "Deployment", "{}");
        r = answer(body, 200, &info);
        resp = json_object_get(r, "response");
        assert_true(json_is_true(json_object_get(resp, "allowed")));
        assert_null(json_object_get(resp, "patch"));
        json_decref(r);
        free(body);
    }
}

static void test_review_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *body, *want;
    } cases[] = {
        {"{\"apiVersion\":", "the body is not JSON"},
        {"", "the body is not JSON"},
        {"[]", "not an admission.k8s.io/v1 AdmissionReview"},
        {"{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"x\"}}",
         "not an admission.k8s.io/v1 AdmissionReview"},
        {"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"Pod\"}", "not an admission.k8s.io/v1 AdmissionReview"},
        {"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}", "no request.uid"},
        {"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":7}}",
         "no request.uid"},
        {"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u\",\"kind\":"
         "{\"kind\":\"Pod\"},\"operation\":\"CREATE\"}}",
         "no request.object"},
        {"{\"apiVersion\":\"admission.k8s.io/v1\",\"apiVersion\":\"x\"}", "the body is not JSON"},
    };
    rm_inject_review_info_t info;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *r = answer(cases[i].body, 400, &info), *resp = json_object_get(r, "response");
        assert_true(info.malformed);
        assert_true(json_is_false(json_object_get(resp, "allowed")));
        assert_int_equal(json_integer_value(json_object_get(json_object_get(resp, "status"), "code")), 400);
        assert_contains(json_string_value(json_object_get(json_object_get(resp, "status"), "message")), cases[i].want);
        json_decref(r);
    }
    /* a pod the injector cannot read is refused (403) with the reason, and the uid echoed */
    const char *bad = "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":"
                      "\"u2\",\"kind\":{\"kind\":\"Pod\"},\"operation\":\"CREATE\",\"namespace\":\"shop\",\"object\":"
                      "{\"spec\":{\"containers\":\"app\"}}}}";
    json_t *r = answer(bad, 200, &info), *resp = json_object_get(r, "response");
    assert_string_equal(json_string_value(json_object_get(resp, "uid")), "u2");
    assert_true(json_is_false(json_object_get(resp, "allowed")));
    assert_contains(json_string_value(json_object_get(json_object_get(resp, "status"), "message")), "not a Pod");
    json_decref(r);
}

static void test_labels_file(void **state)
{
    (void)state;
    char path[] = "/tmp/ringmesh-test-labels.XXXXXX";
    int fd = mkstemp(path);
    json_t *labels = NULL;
    assert_true(fd >= 0);
    const char text[] = "shop: {ringmesh.io/inject: enabled, team: a}\nempty: {}\n";
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);
    assert_int_equal(rm_inject_namespace_labels_from_file(path, "shop", &labels), 0);
    assert_string_equal(json_string_value(json_object_get(labels, "ringmesh.io/inject")), "enabled");
    json_decref(labels);
    assert_int_equal(rm_inject_namespace_labels_from_file(path, "other", &labels), 0);
    assert_null(labels);
    /* not a mapping of strings: the lookup fails (and the review with it) */
    FILE *f = fopen(path, "w");
    fputs("shop: {a: [1]}\n", f);
    fclose(f);
    assert_int_equal(rm_inject_namespace_labels_from_file(path, "shop", &labels), -EINVAL);
    unlink(path);
    assert_int_equal(rm_inject_namespace_labels_from_file(path, "shop", &labels), -ENOENT);
}

/* ---- YAML <-> JSON --------------------------------------------------------------------------------------------- */

static void test_yaml_to_json(void **state)
{
    (void)state;
    static const char text[] = "a: 1\nb: \"1\"\nc: true\nd: ~\ne: 1.5\nf: yes\ng: 0x1F\nh: '08'\ni: !!str 3\n"
                               "j: [x, {k: v}]\nl: |\n  line1\n  line2\n---\n---\n- 1\n";
    json_t *docs = NULL;
    char err[256];

    assert_int_equal(rm_yaml_to_json(text, strlen(text), &docs, err, sizeof(err)), 0);
    assert_int_equal(json_array_size(docs), 3);
    char *s = json_dumps(json_array_get(docs, 0), JSON_COMPACT);
    assert_string_equal(s, "{\"a\":1,\"b\":\"1\",\"c\":true,\"d\":null,\"e\":1.5,\"f\":\"yes\",\"g\":31,\"h\":\"08\","
                           "\"i\":\"3\",\"j\":[\"x\",{\"k\":\"v\"}],\"l\":\"line1\\nline2\\n\"}");
    free(s);
    assert_true(json_is_null(json_array_get(docs, 1)));
    json_decref(docs);

    static const struct {
        const char *text, *want;
    } bad[] = {
        {"a: &x 1\nb: *x\n", "2:4: aliases"},
        {"a: 1\na: 2\n", "2:1: duplicate key \"a\""},
        {"? [a]\n: 1\n", "a mapping key must be a scalar"},
        {"a: [\n", "YAML syntax error"},
        {"a: !!int x\n", "!!int"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        docs = NULL;
        assert_int_equal(rm_yaml_to_json(bad[i].text, strlen(bad[i].text), &docs, err, sizeof(err)), -EINVAL);
        assert_null(docs);
        assert_contains(err, bad[i].want);
    }
    /* nesting is bounded */
    char deep[400];
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        deep[n++] = '[';
    deep[n] = '\0';
    assert_int_equal(rm_yaml_to_json(deep, n, &docs, err, sizeof(err)), -EINVAL);
    assert_contains(err, "nesting deeper than 64");
}

static void test_json_to_yaml_round_trip(void **state)
{
    (void)state;
    /* strings a reader would take for something else stay strings */
    json_t *doc =
        json_pack("[{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:b,s:n,s:f,s:s,s:[s,{s:s}],s:{}}]", "on", "yes", "n", "off",
                  "num", "1", "float", "1.0", "oct", "0o7", "null", "null", "lines", "a\nb\n", "colon", "0.0.0.0:15021",
                  "int", 5, "bool", 0, "nothing", "real", 2.5, "star", "*", "list", "x", "k", "~", "empty");
    char *yaml = NULL;
    size_t len;
    json_t *back = NULL;
    char err[256];

    assert_int_equal(rm_json_to_yaml(doc, &yaml, &len), 0);
    assert_int_equal(strlen(yaml), len);
    assert_contains(yaml, "'on': 'yes'");
    assert_contains(yaml, "lines: |\n");
    assert_int_equal(rm_yaml_to_json(yaml, len, &back, err, sizeof(err)), 0);
    if (!json_equal(doc, back)) {
        char *a = json_dumps(doc, 0), *b = json_dumps(back, 0);
        fail_msg("round trip changed the document:\n%s\n%s\nYAML:\n%s", a, b, yaml);
    }
    free(yaml);
    json_decref(back);
    json_decref(doc);
    json_t *not_a_stream = json_object();
    assert_int_equal(rm_json_to_yaml(not_a_stream, &yaml, &len), -EINVAL);
    json_decref(not_a_stream);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_review_injects),   cmocka_unit_test(test_review_refuses_and_skips),
        cmocka_unit_test(test_review_malformed), cmocka_unit_test(test_labels_file),
        cmocka_unit_test(test_yaml_to_json),     cmocka_unit_test(test_json_to_yaml_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
