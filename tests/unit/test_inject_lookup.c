/* Unit tests for what the webhook learns about the cluster through a configuration source
 * (control/inject_lookup.c): the API server's /version document read into major.minor, the adapters from a
 * source's namespace_labels and server_version to the review's lookups, and what a review answers when those fail
 * or when the version decides between the native and the classic sidecar. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "inject.h"
#include "inject_lookup.h"
#include "source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void assert_contains(const char *haystack, const char *needle)
{
    if (haystack == NULL || strstr(haystack, needle) == NULL)
        fail_msg("\"%s\"\n  does not contain \"%s\"", haystack != NULL ? haystack : "(null)", needle);
}

/* ---- /version ------------------------------------------------------------------------------------------------ */

/* Parses a /version document given as JSON text; returns the result and major.minor through *v. */
static int parse_doc(const char *text, unsigned v[2])
{
    json_error_t e;
    json_t *doc = json_loads(text, 0, &e);
    if (doc == NULL)
        fail_msg("bad test JSON: %s", text);
    v[0] = v[1] = 9999;
    int ret = rm_inject_parse_version_info(doc, &v[0], &v[1]);
    json_decref(doc);
    return ret;
}

static void test_version_git_versions(void **state)
{
    (void)state;
    static const struct {
        const char *git;
        unsigned major, minor;
    } cases[] = {
        {"v1.33.2", 1, 33},         {"v1.29.0-eks-4f2b1c3", 1, 29},
        {"v1.28.5+k3s1", 1, 28},    {"v1.30.1-gke.1200000", 1, 30},
        {"v1.27.16+rke2r1", 1, 27}, {"v1.31.0-alpha.3", 1, 31},
        {"v2.0.0", 2, 0},
    };
    unsigned v[2];
    char doc[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* the fields disagree on purpose: gitVersion wins when it reads */
        snprintf(doc, sizeof(doc), "{\"major\":\"1\",\"minor\":\"99\",\"gitVersion\":\"%s\"}", cases[i].git);
        if (parse_doc(doc, v) != 0)
            fail_msg("%s did not parse", cases[i].git);
        if (v[0] != cases[i].major || v[1] != cases[i].minor)
            fail_msg("%s read as %u.%u, not %u.%u", cases[i].git, v[0], v[1], cases[i].major, cases[i].minor);
    }
}

static void test_version_fields_fallback(void **state)
{
    (void)state;
    unsigned v[2];
    /* no usable gitVersion: the major and minor fields, "+" allowed after the minor (as some providers send) */
    assert_int_equal(parse_doc("{\"major\":\"1\",\"minor\":\"29+\",\"gitVersion\":\"custom-build\"}", v), 0);
    assert_int_equal(v[0], 1);
    assert_int_equal(v[1], 29);
    assert_int_equal(parse_doc("{\"major\":\"1\",\"minor\":\"28\"}", v), 0);
    assert_int_equal(v[1], 28);
    assert_int_equal(parse_doc("{\"major\":\"1+\",\"minor\":\"30\"}", v), 0);
    assert_int_equal(v[1], 30);
}

static void test_version_refused(void **state)
{
    (void)state;
    unsigned v[2];
    static const char *bad[] = {
        "{}",
        "[]",
        "{\"gitVersion\":\"\"}",
        "{\"gitVersion\":\"1\"}",
        "{\"gitVersion\":\"v0.0.0\"}",
        "{\"gitVersion\":\"latest\",\"major\":\"\",\"minor\":\"\"}",
        "{\"major\":\"1\"}",
        "{\"major\":\"1\",\"minor\":\"x\"}",
        "{\"major\":\"1\",\"minor\":\"29-\"}",
        "{\"major\":\"0\",\"minor\":\"29\"}",
        "{\"major\":\"1\",\"minor\":\"123456\"}",
        "{\"major\":1,\"minor\":29}",
        "{\"gitVersion\":5}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse_doc(bad[i], v) != -EINVAL)
            fail_msg("%s was read as %u.%u", bad[i], v[0], v[1]);
        if (v[0] != 9999 || v[1] != 9999)
            fail_msg("%s: the outputs were written on failure", bad[i]);
    }
    assert_int_equal(rm_inject_parse_version_info(NULL, &v[0], &v[1]), -EINVAL);
}

/* ---- a source that knows namespaces and a version ------------------------------------------------------------ */

typedef struct st_fake_source_t {
    rm_source_t super; /* first: the adapters get &super */
    int ns_error;      /* what namespace_labels returns */
    unsigned major, minor;
    int ns_calls;
} fake_source_t;

static int fake_namespace_labels(rm_source_t *src, const char *ns, json_t **labels)
{
    fake_source_t *f = (fake_source_t *)src;
    f->ns_calls++;
    if (f->ns_error != 0)
        return f->ns_error;
    *labels = strcmp(ns, "shop") == 0 ? json_pack("{s:s}", "ringmesh.io/inject", "enabled") : json_object();
    return 0;
}

static int fake_server_version(rm_source_t *src, unsigned *major, unsigned *minor)
{
    fake_source_t *f = (fake_source_t *)src;
    if (f->major == 0)
        return -ENOENT;
    *major = f->major;
    *minor = f->minor;
    return 0;
}

static const rm_source_ops_t fake_ops = {
    .name = "fake",
    .namespace_labels = fake_namespace_labels,
    .server_version = fake_server_version,
};

static char *review(const char *ns, const char *annotations)
{
    char *out = malloc(4096);
    snprintf(out, 4096,
             "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u-1\","
             "\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},\"namespace\":\"%s\",\"operation\":"
             "\"CREATE\",\"object\":{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web\","
             "\"annotations\":%s},\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"web:1\"}]}}}}",
             ns, annotations);
    return out;
}

/* Reviews a pod of `ns` through the adapters over `f`; returns the response and the info. */
static json_t *review_through(fake_source_t *f, const char *ns, const char *annotations, rm_inject_review_info_t *info)
{
    rm_inject_config_t cfg;
    rm_inject_review_ctx_t ctx = {.config = &cfg,
                                  .namespace_labels = rm_inject_namespace_labels_from_source,
                                  .namespace_labels_arg = &f->super,
                                  .kube_version = rm_inject_kube_version_from_source,
                                  .kube_version_arg = &f->super};
    char *body = review(ns, annotations), *out = NULL;
    int status = 0;
    json_error_t e;

    assert_int_equal(rm_inject_config_defaults(&cfg), 0);
    assert_int_equal(rm_inject_review(&ctx, body, strlen(body), &status, &out, info), 0);
    assert_int_equal(status, 200);
    json_t *r = json_loads(out, 0, &e);
    if (r == NULL)
        fail_msg("the answer is not JSON: %s", out);
    json_t *resp = json_incref(json_object_get(r, "response"));
    json_decref(r);
    free(out);
    free(body);
    rm_inject_config_dispose(&cfg);
    return resp;
}

/* The decoded patch of a response, as text. */
static char *patch_text(const json_t *resp)
{
    const char *b64 = json_string_value(json_object_get(resp, "patch"));
    assert_non_null(b64);
    size_t n = strlen(b64), len = 0;
    char *out = malloc(n + 1);
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && b64[i] != '='; i++) {
        const char *p = strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", b64[i]);
        assert_non_null(p);
        acc = (acc << 6) | (unsigned)(p - "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
        if ((bits += 6) >= 8) {
            bits -= 8;
            out[len++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[len] = '\0';
    return out;
}

static void test_source_labels_and_version(void **state)
{
    (void)state;
    fake_source_t f = {.super.ops = &fake_ops, .major = 1, .minor = 33};
    rm_inject_review_info_t info;

    /* the namespace's label from the source injects; 1.33: the proxy is a native sidecar */
    json_t *resp = review_through(&f, "shop", "{}", &info);
    assert_int_equal(info.outcome, RM_INJECT_PATCHED);
    char *patch = patch_text(resp);
    assert_contains(patch, "\"restartPolicy\":\"Always\"");
    free(patch);
    json_decref(resp);
    assert_int_equal(f.ns_calls, 1);

    /* 1.28: classic (no init container that restarts) */
    f.minor = 28;
    resp = review_through(&f, "shop", "{}", &info);
    assert_int_equal(info.outcome, RM_INJECT_PATCHED);
    patch = patch_text(resp);
    assert_null(strstr(patch, "\"restartPolicy\":\"Always\""));
    assert_contains(patch, "postStart");
    free(patch);
    json_decref(resp);

    /* unknown version: classic, the safe choice; the pod's annotation still wins */
    f.major = f.minor = 0;
    resp = review_through(&f, "shop", "{}", &info);
    patch = patch_text(resp);
    assert_null(strstr(patch, "\"restartPolicy\":\"Always\""));
    free(patch);
    json_decref(resp);
    resp = review_through(&f, "shop", "{\"ringmesh.io/native-sidecar\":\"true\"}", &info);
    patch = patch_text(resp);
    assert_contains(patch, "\"restartPolicy\":\"Always\"");
    free(patch);
    json_decref(resp);

    /* a namespace without the label: not injected */
    resp = review_through(&f, "plain", "{}", &info);
    assert_int_equal(info.outcome, RM_INJECT_SKIPPED);
    assert_true(json_is_true(json_object_get(resp, "allowed")));
    json_decref(resp);
}

static void test_source_lookup_failures(void **state)
{
    (void)state;
    static const struct {
        int error;
        const char *says;
    } cases[] = {
        {-ETIMEDOUT, "did not answer in time"},
        {-EIO, "namespace_lookup_failed"},
        {-ENOENT, "no such namespace"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake_source_t f = {.super.ops = &fake_ops, .major = 1, .minor = 33, .ns_error = cases[i].error};
        rm_inject_review_info_t info;
        json_t *resp = review_through(&f, "shop", "{}", &info);
        /* the review fails with the reason (the API server then applies failurePolicy), never a patch */
        assert_true(json_is_false(json_object_get(resp, "allowed")));
        assert_null(json_object_get(resp, "patch"));
        json_t *status = json_object_get(resp, "status");
        assert_int_equal(json_integer_value(json_object_get(status, "code")), 500);
        const char *msg = json_string_value(json_object_get(status, "message"));
        assert_contains(msg, "namespace shop");
        assert_contains(msg, cases[i].says);
        assert_int_equal(info.outcome, RM_INJECT_REFUSED);
        json_decref(resp);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_git_versions),   cmocka_unit_test(test_version_fields_fallback),
        cmocka_unit_test(test_version_refused),        cmocka_unit_test(test_source_labels_and_version),
        cmocka_unit_test(test_source_lookup_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
