/* rm_inject_review() and rm_inject_pod(): the sidecar injector's admission webhook, on whatever body arrives.
 *
 * The input is the HTTP body. Checked: the call succeeds (only memory can fail it); the answer is JSON, an
 * admission.k8s.io/v1 AdmissionReview whose response has a boolean `allowed`; the HTTP status is 200 or 400, and 400
 * only with allowed false; a 200 echoes request.uid; a patch comes only with allowed true and patchType JSONPatch,
 * and is base64 of a non-empty JSON array of operations. When the body holds an object at request.object, it is also
 * injected directly: an injected pod injected again gives an empty patch (injecting twice is injecting once). */
/* rm-fuzz-link: ringmesh_inject */
#include <string.h>

#include "fuzz.h"
#include "inject.h"

static int labels(void *arg, const char *ns, json_t **out)
{
    (void)arg;
    *out = strcmp(ns, "off") == 0 ? NULL : json_pack("{s:s}", "ringmesh.io/inject", "enabled");
    return 0;
}

static int version(void *arg, unsigned *major, unsigned *minor)
{
    (void)arg;
    *major = 1;
    *minor = 29;
    return 0;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static json_t *b64_json(const char *s)
{
    size_t n = strlen(s), o = 0;
    RM_FUZZ_CHECK(n % 4 == 0);
    char *out = malloc(n / 4 * 3 + 1);
    RM_FUZZ_CHECK(out != NULL);
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++)
            v[k] = s[i + k] == '=' ? 0 : b64_val(s[i + k]);
        RM_FUZZ_CHECK(v[0] >= 0 && v[1] >= 0 && v[2] >= 0 && v[3] >= 0);
        unsigned w = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        out[o++] = (char)(w >> 16);
        if (s[i + 2] != '=')
            out[o++] = (char)(w >> 8 & 255);
        if (s[i + 3] != '=')
            out[o++] = (char)(w & 255);
    }
    json_t *j = json_loadb(out, o, 0, NULL);
    free(out);
    return j;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rm_inject_config_t cfg;
    static int ready;
    rm_inject_review_ctx_t ctx = {.config = &cfg, .namespace_labels = labels, .kube_version = version};
    rm_inject_review_info_t info;
    char *body = NULL;
    int status = 0;

    if (!ready) {
        RM_FUZZ_CHECK(rm_inject_config_defaults(&cfg) == 0);
        ready = 1;
    }
    RM_FUZZ_CHECK(rm_inject_review(&ctx, (const char *)data, size, &status, &body, &info) == 0);
    RM_FUZZ_CHECK(body != NULL);
    json_t *answer = json_loads(body, 0, NULL), *resp = json_object_get(answer, "response");
    RM_FUZZ_CHECK(answer != NULL);
    RM_FUZZ_CHECK(strcmp(json_string_value(json_object_get(answer, "kind")), "AdmissionReview") == 0);
    RM_FUZZ_CHECK(json_is_boolean(json_object_get(resp, "allowed")));
    RM_FUZZ_CHECK(status == 200 || status == 400);
    RM_FUZZ_CHECK(status == 200 || json_is_false(json_object_get(resp, "allowed")));
    json_t *review = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    json_t *request = json_object_get(review, "request");
    if (status == 200)
        RM_FUZZ_CHECK(json_equal(json_object_get(resp, "uid"), json_object_get(request, "uid")));
    if (json_object_get(resp, "patch") != NULL) {
        RM_FUZZ_CHECK(json_is_true(json_object_get(resp, "allowed")));
        RM_FUZZ_CHECK(strcmp(json_string_value(json_object_get(resp, "patchType")), "JSONPatch") == 0);
        json_t *patch = b64_json(json_string_value(json_object_get(resp, "patch")));
        RM_FUZZ_CHECK(json_is_array(patch) && json_array_size(patch) > 0);
        json_decref(patch);
    }
    json_t *object = json_object_get(request, "object");
    if (json_is_object(object)) {
        json_t *enabled = json_pack("{s:s}", "ringmesh.io/inject", "enabled");
        rm_inject_env_t env = {.namespace_labels = enabled, .kube_major = 1, .kube_minor = 28};
        rm_inject_result_t r1, r2;
        RM_FUZZ_CHECK(rm_inject_pod(&cfg, object, &env, &r1) == 0);
        if (r1.outcome == RM_INJECT_PATCHED) {
            RM_FUZZ_CHECK(json_array_size(r1.patch) > 0);
            RM_FUZZ_CHECK(rm_inject_pod(&cfg, r1.pod, &env, &r2) == 0);
            RM_FUZZ_CHECK(r2.outcome == RM_INJECT_SKIPPED && json_array_size(r2.patch) == 0);
            rm_inject_result_dispose(&r2);
        } else {
            RM_FUZZ_CHECK(json_array_size(r1.patch) == 0);
        }
        rm_inject_result_dispose(&r1);
        json_decref(enabled);
    }
    json_decref(review);
    json_decref(answer);
    free(body);
    return 0;
}
