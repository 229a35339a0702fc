/* Pods -> workloads (workload_derive.h). */
#include "workload_derive.h"

#include "mesh_model_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *str_of(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL && s[0] != '\0' ? s : NULL;
}

/* The ownerReference with controller: true, as metav1.GetControllerOf. */
static const json_t *controller_of(const json_t *meta)
{
    const json_t *refs = json_object_get(meta, "ownerReferences"), *ref;
    size_t i;

    json_array_foreach(refs, i, ref)
    {
        if (json_is_true(json_object_get(ref, "controller")))
            return ref;
    }
    return NULL;
}

/* Whether `name` ends in "-" then `suffix`; returns the length of what comes before, or 0. */
static size_t strip_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);
    if (k == 0 || n < k + 2 || name[n - k - 1] != '-' || memcmp(name + n - k, suffix, k) != 0)
        return 0;
    return n - k - 1;
}

/* A CronJob names its Jobs "<cronjob>-<scheduled time in minutes>": 8 to 10 digits after the last '-'. */
static size_t cronjob_prefix(const char *job)
{
    const char *dash = strrchr(job, '-');
    size_t digits;

    if (dash == NULL || dash == job)
        return 0;
    digits = strlen(dash + 1);
    if (digits < 8 || digits > 10 || strspn(dash + 1, "0123456789") != digits)
        return 0;
    return (size_t)(dash - job);
}

static char *derive_name(const json_t *meta, const char *pod_name)
{
    const json_t *ref = controller_of(meta);
    const char *kind = str_of(ref, "kind"), *owner = str_of(ref, "name");
    size_t n;

    if (ref == NULL || kind == NULL || owner == NULL)
        return strdup(pod_name);
    if (strcmp(kind, "ReplicaSet") == 0) {
        const char *hash = str_of(json_object_get(meta, "labels"), "pod-template-hash");
        if (hash != NULL && (n = strip_suffix(owner, hash)) > 0)
            return strndup(owner, n);
    } else if (strcmp(kind, "Job") == 0) {
        if ((n = cronjob_prefix(owner)) > 0)
            return strndup(owner, n);
    }
    return strdup(owner);
}

static const char *first_label(const json_t *labels, const char *const *keys, const char *dflt)
{
    for (; *keys != NULL; keys++) {
        const char *v = str_of(labels, *keys);
        if (v != NULL)
            return v;
    }
    return dflt;
}

/* Canonical text of an IP literal; NULL when `s` is not one. */
static char *canonical_ip(const char *s)
{
    unsigned char bytes[16];
    char buf[INET6_ADDRSTRLEN];
    int family = strchr(s, ':') != NULL ? AF_INET6 : AF_INET;

    if (inet_pton(family, s, bytes) != 1 || inet_ntop(family, bytes, buf, sizeof(buf)) == NULL)
        return NULL;
    return strdup(buf);
}

static int add_address(rm_model_workload_t *w, const char *ip)
{
    char *c, **grown;

    if (ip == NULL || (c = canonical_ip(ip)) == NULL)
        return 0; /* not an address: left out */
    for (size_t i = 0; i < w->num_addresses; i++) {
        if (strcmp(w->addresses[i], c) == 0) {
            free(c);
            return 0;
        }
    }
    if ((grown = realloc(w->addresses, (w->num_addresses + 1) * sizeof(*grown))) == NULL) {
        free(c);
        return -ENOMEM;
    }
    w->addresses = grown;
    w->addresses[w->num_addresses++] = c;
    return 0;
}

int rm_workload_from_pod(const json_t *pod, rm_model_workload_t *out)
{
    static const char *const app_keys[] = {"service.istio.io/canonical-name", "app.kubernetes.io/name", "app", NULL};
    static const char *const version_keys[] = {"service.istio.io/canonical-revision", "app.kubernetes.io/version",
                                               "version", NULL};
    const json_t *meta = json_object_get(pod, "metadata"), *spec = json_object_get(pod, "spec"),
                 *status = json_object_get(pod, "status"), *labels = json_object_get(meta, "labels"), *ip;
    const char *ns = str_of(meta, "namespace"), *pod_name = str_of(meta, "name"), *sa, *ann;
    size_t i;
    int ret = -ENOMEM;

    memset(out, 0, sizeof(*out));
    if (ns == NULL || pod_name == NULL)
        return -EINVAL;
    if ((sa = str_of(spec, "serviceAccountName")) == NULL && (sa = str_of(spec, "serviceAccount")) == NULL)
        sa = "default";
    if ((out->namespace_ = strdup(ns)) == NULL || (out->pod = strdup(pod_name)) == NULL ||
        (out->name = derive_name(meta, pod_name)) == NULL || (out->service_account = strdup(sa)) == NULL)
        goto Exit;
    if ((out->app = strdup(first_label(labels, app_keys, out->name))) == NULL ||
        (out->version = strdup(first_label(labels, version_keys, "latest"))) == NULL)
        goto Exit;
    if ((ann = str_of(json_object_get(meta, "annotations"), RM_ACCESS_LOG_ANNOTATION)) != NULL)
        out->access_log = strcmp(ann, "true") == 0    ? RM_MODEL_ACCESS_LOG_ON
                          : strcmp(ann, "false") == 0 ? RM_MODEL_ACCESS_LOG_OFF
                                                      : RM_MODEL_ACCESS_LOG_MESH;
    if (!json_is_true(json_object_get(spec, "hostNetwork"))) {
        json_array_foreach(json_object_get(status, "podIPs"), i, ip)
        {
            if (add_address(out, str_of(ip, "ip")) != 0)
                goto Exit;
        }
        if (out->num_addresses == 0 && add_address(out, str_of(status, "podIP")) != 0)
            goto Exit;
    }
    ret = 0;
Exit:
    if (ret != 0)
        rm__model_workload_clear(out);
    return ret;
}

static int is_finished(const json_t *pod)
{
    const char *phase = str_of(json_object_get(pod, "status"), "phase");
    return phase != NULL && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0);
}

static int same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int rm_workload_pods_differ(const json_t *a, const json_t *b)
{
    rm_model_workload_t wa, wb;
    int differ = 1;

    if (is_finished(a) != is_finished(b))
        return 1;
    if (rm_workload_from_pod(a, &wa) != 0)
        return 1;
    if (rm_workload_from_pod(b, &wb) != 0) {
        rm__model_workload_clear(&wa);
        return 1;
    }
    if (same_str(wa.name, wb.name) && same_str(wa.app, wb.app) && same_str(wa.version, wb.version) &&
        same_str(wa.service_account, wb.service_account) && wa.access_log == wb.access_log &&
        wa.num_addresses == wb.num_addresses) {
        differ = 0;
        for (size_t i = 0; i < wa.num_addresses && !differ; i++)
            differ = strcmp(wa.addresses[i], wb.addresses[i]) != 0;
    }
    rm__model_workload_clear(&wa);
    rm__model_workload_clear(&wb);
    return differ;
}

static void clear_workloads(rm_mesh_model_t *m)
{
    for (size_t i = 0; i < m->num_workloads; i++)
        rm__model_workload_clear(&m->workloads[i]);
    free(m->workloads);
    m->workloads = NULL;
    m->num_workloads = 0;
}

int rm_model_set_workloads(rm_mesh_model_t *m, const json_t *pods)
{
    const char *key;
    const json_t *pod;
    int ret = 0;

    clear_workloads(m);
    if (pods != NULL && json_object_size(pods) > 0) {
        if ((m->workloads = calloc(json_object_size(pods), sizeof(*m->workloads))) == NULL)
            return -ENOMEM;
        json_object_foreach((json_t *)pods, key, pod)
        {
            if (is_finished(pod))
                continue; /* finished: its address may already be another pod's */
            if ((ret = rm_workload_from_pod(pod, &m->workloads[m->num_workloads])) == -ENOMEM)
                break;
            if (ret == 0)
                m->num_workloads++;
            ret = 0;
        }
    }
    if (ret == 0)
        ret = rm__mesh_model_seal(m);
    if (ret != 0) {
        clear_workloads(m);
        rm__mesh_model_seal(m);
    }
    return ret;
}
