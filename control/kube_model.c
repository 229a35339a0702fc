/* Kubernetes objects -> mesh documents -> the mesh model (kube_model.h). JSON is YAML, so each document handed to
 * the mesh loader is the JSON text jansson writes, indented so that errors point at a line of their own. */
#include "kube_model.h"
#include "endpoints_derive.h"
#include "workload_derive.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh_load.h"
#include "route_model.h"
#include "ringmesh/error.h"

typedef struct st_doc_t {
    const char *kind; /* static */
    char *namespace_, *name;
    char *shown;
    char *text;
} doc_t;

static const char *str_at(const json_t *obj, const char *a, const char *b)
{
    const json_t *j = json_object_get(obj, a);
    return json_string_value(b != NULL ? json_object_get(j, b) : j);
}

static int json_array_has_string(const json_t *arr, const char *s)
{
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v) if (strcmp(json_string_value(v), s) == 0) return 1;
    return 0;
}

/* The pods behind service ns/name, through its EndpointSlices: *all_injected says whether every endpoint is an
 * injected pod; the service accounts of those pods go into `accounts` (sorted later by the loader). Returns how
 * many endpoints back the service. */
static size_t backing_pods(const rm_kube_objects_t *objs, const char *ns, const char *name, json_t *accounts,
                           int *all_injected)
{
    const char *key;
    const json_t *slice;
    size_t n = 0;

    *all_injected = 1;
    if (objs->endpoint_slices == NULL)
        return 0;
    json_object_foreach((json_t *)objs->endpoint_slices, key, slice)
    {
        const char *sns = str_at(slice, "metadata", "namespace");
        const char *owner = json_string_value(
            json_object_get(json_object_get(json_object_get(slice, "metadata"), "labels"), RM_KUBE_SERVICE_NAME_LABEL));
        size_t i;
        const json_t *ep;
        if (sns == NULL || owner == NULL || strcmp(sns, ns) != 0 || strcmp(owner, name) != 0)
            continue;
        json_array_foreach(json_object_get(slice, "endpoints"), i, ep)
        {
            const json_t *ref = json_object_get(ep, "targetRef");
            const char *rkind = str_at(ref, "kind", NULL), *rname = str_at(ref, "name", NULL);
            const char *rns = str_at(ref, "namespace", NULL);
            const json_t *pod = NULL;
            char pkey[512];
            n++;
            if (rkind != NULL && strcmp(rkind, "Pod") == 0 && rname != NULL && objs->pods != NULL &&
                snprintf(pkey, sizeof(pkey), "%s/%s", rns != NULL ? rns : ns, rname) < (int)sizeof(pkey))
                pod = json_object_get(objs->pods, pkey);
            const json_t *ann = json_object_get(json_object_get(pod, "metadata"), "annotations");
            if (pod == NULL || json_object_get(ann, RM_KUBE_INJECTED_ANNOTATION) == NULL) {
                *all_injected = 0;
                continue;
            }
            const char *sa = str_at(pod, "spec", "serviceAccountName");
            if (sa == NULL || sa[0] == '\0')
                sa = "default";
            if (!json_array_has_string(accounts, sa))
                json_array_append_new(accounts, json_string(sa));
        }
    }
    return n;
}

char *rm_kube_service_document(const json_t *svc, const rm_kube_objects_t *objs)
{
    const json_t *spec = json_object_get(svc, "spec"), *v;
    const char *ns = str_at(svc, "metadata", "namespace"), *name = str_at(svc, "metadata", "name");
    const char *type = str_at(spec, "type", NULL), *cip = str_at(spec, "clusterIP", NULL);
    json_t *addrs = json_array(), *ports = json_array(), *accounts = json_array(), *doc = NULL;
    char *text = NULL;
    size_t i;
    int all_injected;

    if (addrs == NULL || ports == NULL || accounts == NULL || name == NULL)
        goto Exit;
    if (ns == NULL)
        ns = "default";
    if (type != NULL && strcmp(type, "ExternalName") == 0)
        goto Exit;
    json_array_foreach(json_object_get(spec, "clusterIPs"), i, v)
    {
        const char *ip = json_string_value(v);
        if (ip != NULL && ip[0] != '\0' && strcmp(ip, "None") != 0 && !json_array_has_string(addrs, ip))
            json_array_append_new(addrs, json_string(ip));
    }
    if (json_array_size(addrs) == 0 && cip != NULL && cip[0] != '\0' && strcmp(cip, "None") != 0)
        json_array_append_new(addrs, json_string(cip));
    json_array_foreach(json_object_get(spec, "ports"), i, v)
    {
        const char *proto = str_at(v, "protocol", NULL);
        json_int_t port = json_integer_value(json_object_get(v, "port"));
        if (proto != NULL && strcmp(proto, "TCP") != 0)
            continue;
        size_t j;
        const json_t *p;
        int dup = 0;
        json_array_foreach(ports, j, p) dup |= json_integer_value(p) == port;
        if (!dup)
            json_array_append_new(ports, json_integer(port));
    }
    if (json_array_size(addrs) == 0 || json_array_size(ports) == 0)
        goto Exit;
    size_t backends = backing_pods(objs, ns, name, accounts, &all_injected);
    int in_mesh = backends > 0 && all_injected && json_array_size(accounts) > 0;
    doc = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:O, s:O, s:b}}", "apiVersion", "ringmesh.io/v1alpha1", "kind",
                    "Service", "metadata", "name", name, "namespace", ns, "spec", "addresses", addrs, "ports", ports,
                    "inMesh", in_mesh);
    if (doc != NULL && in_mesh)
        json_object_set(json_object_get(doc, "spec"), "serviceAccounts", accounts);
    /* where the proxies connect instead of the VIP, from the same EndpointSlices (endpoints_derive.h) */
    json_t *eps = doc != NULL && in_mesh ? rm_kube_service_endpoints(svc, ns, name, objs) : NULL;
    if (eps != NULL && json_array_size(eps) > 0)
        json_object_set(json_object_get(doc, "spec"), "endpoints", eps);
    json_decref(eps);
    if (doc != NULL)
        text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
Exit:
    json_decref(addrs);
    json_decref(ports);
    json_decref(accounts);
    json_decref(doc);
    return text;
}

/* A policy custom resource as the policy loader reads it: what decides is kept, Kubernetes' bookkeeping dropped. */
static char *policy_document(const json_t *obj)
{
    const json_t *md = json_object_get(obj, "metadata");
    json_t *doc = json_object(), *nmd = json_object();
    char *text = NULL;
    static const char *const keep[] = {"name", "namespace", "annotations", NULL};

    if (doc == NULL || nmd == NULL)
        goto Exit;
    json_object_set(doc, "apiVersion", json_object_get(obj, "apiVersion"));
    json_object_set(doc, "kind", json_object_get(obj, "kind"));
    for (size_t i = 0; keep[i] != NULL; i++)
        if (json_object_get(md, keep[i]) != NULL)
            json_object_set(nmd, keep[i], json_object_get(md, keep[i]));
    /* only the annotations the policy loader reads (ringmesh.io/..., istio.io/...): others, such as kubectl's
     * last-applied-configuration (the whole object again), are no concern of the mesh */
    json_t *ann = json_object_get(nmd, "annotations");
    if (json_is_object(ann)) {
        json_t *kept = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(ann, k, v) if (strncmp(k, "ringmesh.io/", 12) == 0 || strncmp(k, "istio.io/", 9) == 0)
            json_object_set(kept, k, v);
        json_object_set_new(nmd, "annotations", kept);
    }
    json_object_set(doc, "metadata", nmd);
    if (json_object_get(obj, "spec") != NULL)
        json_object_set(doc, "spec", json_object_get(obj, "spec"));
    text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
Exit:
    json_decref(doc);
    json_decref(nmd);
    return text;
}

static int cmp_doc(const void *x, const void *y)
{
    const doc_t *a = x, *b = y;
    int c = strcmp(a->kind, b->kind);
    if (c == 0)
        c = strcmp(a->namespace_, b->namespace_);
    if (c == 0)
        c = strcmp(a->name, b->name);
    return c != 0 ? c : strcmp(a->shown, b->shown);
}

static int add_doc(doc_t **docs, size_t *num, size_t *cap, const char *kind, const json_t *obj, char *text)
{
    const char *ns = str_at(obj, "metadata", "namespace"), *name = str_at(obj, "metadata", "name");
    const char *api = str_at(obj, "apiVersion", NULL);
    doc_t *d;

    if (*num == *cap) {
        size_t ncap = *cap == 0 ? 64 : *cap * 2;
        doc_t *n = realloc(*docs, ncap * sizeof(*n));
        if (n == NULL) {
            free(text);
            return -ENOMEM;
        }
        *docs = n;
        *cap = ncap;
    }
    d = &(*docs)[*num];
    d->kind = kind;
    d->text = text;
    d->namespace_ = strdup(ns != NULL ? ns : "");
    d->name = strdup(name != NULL ? name : "");
    if (asprintf(&d->shown, "kubernetes:%s/%s/%s/%s", api != NULL ? api : "", kind, ns != NULL ? ns : "",
                 name != NULL ? name : "") < 0)
        d->shown = NULL;
    (*num)++;
    if (d->namespace_ == NULL || d->name == NULL || d->shown == NULL)
        return -ENOMEM;
    return 0;
}

/* Loads one document alone (with the MeshConfig, so that identities meet the trust domain). */
static int check_alone(const char *mesh_shown, const char *mesh_text, size_t mesh_len, const doc_t *d,
                       rm_config_error_t *e)
{
    rm_mesh_loader_t *ld = rm_mesh_loader_new(e);
    rm_mesh_model_t *m = NULL;
    int ret;
    if (ld == NULL)
        return -ENOMEM;
    if ((mesh_text == NULL || (ret = rm_mesh_loader_add(ld, mesh_shown, mesh_text, mesh_len)) == 0) &&
        (ret = rm_mesh_loader_add(ld, d->shown, d->text, strlen(d->text))) == 0)
        ret = rm_mesh_loader_finish(ld, &m);
    rm_mesh_model_unref(m);
    rm_mesh_loader_free(ld);
    return ret;
}

int rm_kube_model_build(const rm_kube_objects_t *objs, const char *mesh_shown, const char *mesh_text, size_t mesh_len,
                        rm_kube_rejected_cb rejected, void *arg, rm_mesh_model_t **out, size_t *num_docs,
                        rm_config_error_t *err)
{
    doc_t *docs = NULL;
    size_t num = 0, cap = 0, accepted = 0;
    rm_mesh_loader_t *ld = NULL;
    rm_config_error_t *e = NULL;
    const char *key;
    const json_t *obj;
    int ret = 0;

    memset(err, 0, sizeof(*err));
    if ((e = malloc(sizeof(*e))) == NULL)
        goto NoMem;
    if (objs->services != NULL)
        json_object_foreach((json_t *)objs->services, key, obj)
        {
            char *text = rm_kube_service_document(obj, objs);
            if (text != NULL && add_doc(&docs, &num, &cap, "Service", obj, text) != 0)
                goto NoMem;
        }
    for (size_t p = 0; p < objs->num_policies; p++)
        json_object_foreach((json_t *)objs->policies[p], key, obj)
        {
            const char *kind = str_at(obj, "kind", NULL);
            /* the HTTPRoute and GRPCRoute informers are started with the policy ones, as their CRDs appear */
            int route = rm_route_is_route_kind(kind);
            char *text = route ? rm_kube_route_document(obj) : policy_document(obj);
            const char *shown = route ? (strcmp(kind, "GRPCRoute") == 0 ? "GRPCRoute" : "HTTPRoute")
                                : kind != NULL && (strcmp(kind, "PeerAuthentication") == 0 ||
                                                   strcmp(kind, "RequestAuthentication") == 0)
                                    ? kind
                                    : "AuthorizationPolicy";
            if (text == NULL || add_doc(&docs, &num, &cap, shown, obj, text) != 0)
                goto NoMem;
        }
    if (num > 1)
        qsort(docs, num, sizeof(*docs), cmp_doc);

    /* the MeshConfig alone first: without a valid one nothing is built */
    if ((ld = rm_mesh_loader_new(err)) == NULL)
        goto NoMem;
    if (mesh_text != NULL && (ret = rm_mesh_loader_add(ld, mesh_shown, mesh_text, mesh_len)) != 0)
        goto Exit;
    for (size_t i = 0; i < num; i++) {
        memset(e, 0, sizeof(*e));
        if ((ret = check_alone(mesh_shown, mesh_text, mesh_len, &docs[i], e)) != 0) {
            if (ret == -ENOMEM)
                goto NoMem;
            if (rejected != NULL)
                rejected(arg, docs[i].kind, docs[i].namespace_, docs[i].name, e);
            continue;
        }
        if ((ret = rm_mesh_loader_add(ld, docs[i].shown, docs[i].text, strlen(docs[i].text))) != 0)
            goto Exit;
        accepted++;
    }
    if ((ret = rm_mesh_loader_finish(ld, out)) != 0)
        goto Exit;
    /* who the pods are (metric labels, access log): part of the model and of its version */
    if (rm_model_set_workloads(*out, objs->pods) != 0) {
        rm_mesh_model_unref(*out);
        *out = NULL;
        goto NoMem;
    }
    if (num_docs != NULL)
        *num_docs = accepted;
    goto Exit;

NoMem:
    ret = rm_config_error_set(err, RM_ERR_CONFIG_IO, "kubernetes", (rm_yaml_pos_t){0, 0}, NULL, "out of memory");
Exit:
    rm_mesh_loader_free(ld);
    for (size_t i = 0; i < num; i++) {
        free(docs[i].namespace_);
        free(docs[i].name);
        free(docs[i].shown);
        free(docs[i].text);
    }
    free(docs);
    free(e);
    return ret;
}
