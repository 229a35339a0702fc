/* admission.k8s.io/v1 AdmissionReview in, AdmissionReview out (inject.h). Only the JSON: the HTTPS server around
 * it is control/inject_webhook.c. */
#include "inject.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API_VERSION "admission.k8s.io/v1"

static char *base64(const char *in, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = (const unsigned char *)in;
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < len ? p[i + 2] : 0);
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < len ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < len ? tab[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static void copy_str(char *dst, size_t len, const json_t *v)
{
    snprintf(dst, len, "%s", json_is_string(v) ? json_string_value(v) : "");
}

/* The AdmissionReview answer; `response` is stolen. */
static int finish(json_t *response, int status, int *http_status, char **body)
{
    json_t *review =
        json_pack("{s:s,s:s,s:o}", "apiVersion", API_VERSION, "kind", "AdmissionReview", "response", response);
    if (review == NULL)
        return -ENOMEM;
    *body = json_dumps(review, JSON_COMPACT);
    json_decref(review);
    if (*body == NULL)
        return -ENOMEM;
    *http_status = status;
    return 0;
}

static int malformed(rm_inject_review_info_t *info, const char *uid, const char *why, int *http_status, char **body)
{
    info->malformed = 1;
    info->outcome = RM_INJECT_REFUSED;
    snprintf(info->reason, sizeof(info->reason), "%s", why);
    return finish(json_pack("{s:s,s:b,s:{s:i,s:s,s:s}}", "uid", uid, "allowed", 0, "status", "code", 400, "reason",
                            "BadRequest", "message", why),
                  400, http_status, body);
}

int rm_inject_review(const rm_inject_review_ctx_t *ctx, const char *req, size_t len, int *http_status, char **body,
                     rm_inject_review_info_t *info)
{
    json_t *review = NULL, *labels = NULL, *response = NULL, *warnings = NULL;
    const json_t *request, *uid, *object, *op;
    json_error_t jerr;
    rm_inject_result_t res = {0};
    rm_inject_env_t env = {0};
    char why[RM_INJECT_MSG_MAX];
    const char *ns;
    int ret;

    memset(info, 0, sizeof(*info));
    *body = NULL;
    if ((review = json_loadb(req, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
        snprintf(why, sizeof(why), "the body is not JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        ret = malformed(info, "", why, http_status, body);
        goto Exit;
    }
    request = json_object_get(review, "request");
    uid = json_object_get(request, "uid");
    copy_str(info->uid, sizeof(info->uid), uid);
    if (!json_is_object(review) || !json_is_string(json_object_get(review, "apiVersion")) ||
        strcmp(json_string_value(json_object_get(review, "apiVersion")), API_VERSION) != 0 ||
        !json_is_string(json_object_get(review, "kind")) ||
        strcmp(json_string_value(json_object_get(review, "kind")), "AdmissionReview") != 0) {
        ret = malformed(info, info->uid, "not an " API_VERSION " AdmissionReview (apiVersion and kind)", http_status,
                        body);
        goto Exit;
    }
    if (!json_is_object(request) || !json_is_string(uid) || json_string_length(uid) == 0 ||
        json_string_length(uid) >= sizeof(info->uid)) {
        ret = malformed(info, info->uid, "the AdmissionReview has no request.uid (a string of at most 127 bytes)",
                        http_status, body);
        goto Exit;
    }
    object = json_object_get(request, "object");
    op = json_object_get(request, "operation");
    ns = json_is_string(json_object_get(request, "namespace"))
             ? json_string_value(json_object_get(request, "namespace"))
             : "";
    copy_str(info->namespace_, sizeof(info->namespace_), json_object_get(request, "namespace"));
    copy_str(info->name, sizeof(info->name), json_object_get(request, "name"));
    if (info->name[0] == '\0') {
        const json_t *meta = json_object_get(object, "metadata");
        copy_str(info->name, sizeof(info->name),
                 json_object_get(meta, json_object_get(meta, "name") != NULL ? "name" : "generateName"));
    }
    const json_t *kind = json_object_get(json_object_get(request, "kind"), "kind");
    if (!json_is_string(op) || strcmp(json_string_value(op), "CREATE") != 0 || !json_is_string(kind) ||
        strcmp(json_string_value(kind), "Pod") != 0) {
        info->outcome = RM_INJECT_SKIPPED;
        snprintf(info->reason, sizeof(info->reason), "only Pod CREATE is injected");
        ret = finish(json_pack("{s:O,s:b}", "uid", uid, "allowed", 1), 200, http_status, body);
        goto Exit;
    }
    if (!json_is_object(object)) {
        ret = malformed(info, info->uid, "the AdmissionReview has no request.object", http_status, body);
        goto Exit;
    }

    if (ctx->namespace_labels != NULL && (ret = ctx->namespace_labels(ctx->namespace_labels_arg, ns, &labels)) != 0) {
        info->outcome = RM_INJECT_REFUSED;
        snprintf(info->reason, sizeof(info->reason), "the labels of namespace %s are not known: %s", ns,
                 ret == -ENOENT      ? "there is no such namespace (or, with --namespace-labels-file, no such file)"
                 : ret == -ETIMEDOUT ? "the Kubernetes API did not answer in time"
                 : ret == -EIO       ? "the Kubernetes API could not be reached or failed (the control plane's log "
                                       "says why: event namespace_lookup_failed)"
                                     : strerror(-ret));
        ret = finish(json_pack("{s:O,s:b,s:{s:i,s:s,s:s}}", "uid", uid, "allowed", 0, "status", "code", 500, "reason",
                               "InternalError", "message", info->reason),
                     200, http_status, body);
        goto Exit;
    }
    env.namespace_labels = labels;
    if (ctx->kube_version != NULL && ctx->kube_version(ctx->kube_version_arg, &env.kube_major, &env.kube_minor) != 0)
        env.kube_major = env.kube_minor = 0;
    if ((ret = rm_inject_pod(ctx->config, object, &env, &res)) != 0)
        goto Exit;
    info->outcome = res.outcome;
    snprintf(info->reason, sizeof(info->reason), "%s", res.reason);
    if (res.warning[0] != '\0' && (warnings = json_pack("[s]", res.warning)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    if (res.outcome == RM_INJECT_REFUSED) {
        response = json_pack("{s:O,s:b,s:{s:i,s:s,s:s}}", "uid", uid, "allowed", 0, "status", "code", 403, "reason",
                             "Forbidden", "message", res.reason);
    } else if (res.outcome == RM_INJECT_SKIPPED) {
        response = json_pack("{s:O,s:b}", "uid", uid, "allowed", 1);
    } else {
        char *patch = json_dumps(res.patch, JSON_COMPACT), *b64 = patch != NULL ? base64(patch, strlen(patch)) : NULL;
        response = b64 != NULL ? json_pack("{s:O,s:b,s:s,s:s}", "uid", uid, "allowed", 1, "patchType", "JSONPatch",
                                           "patch", b64)
                               : NULL;
        free(patch);
        free(b64);
    }
    if (response == NULL || (warnings != NULL && json_object_set(response, "warnings", warnings) != 0)) {
        ret = -ENOMEM;
        goto Exit;
    }
    ret = finish(response, 200, http_status, body);
    response = NULL;

Exit:
    json_decref(response);
    json_decref(warnings);
    json_decref(labels);
    json_decref(review);
    rm_inject_result_dispose(&res);
    return ret;
}
