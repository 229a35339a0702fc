/* Endpoints from EndpointSlices, and into Destination.endpoints (endpoints_derive.h). */
#include "endpoints_derive.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str_of(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* A condition: unset means `dflt` (EndpointConditions: ready and serving unknown are taken as true, terminating
 * unknown as false). */
static int condition(const json_t *ep, const char *key, int dflt)
{
    const json_t *v = json_object_get(json_object_get(ep, "conditions"), key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

/* The slice port serving the service port named `pname` ("" unnamed): its number, or 0. */
static json_int_t slice_target_port(const json_t *slice, const char *pname)
{
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(slice, "ports"), i, p)
    {
        const char *n = str_of(p, "name"), *proto = str_of(p, "protocol");
        if (strcmp(n != NULL ? n : "", pname) == 0 && (proto == NULL || strcmp(proto, "TCP") == 0))
            return json_integer_value(json_object_get(p, "port"));
    }
    return 0;
}

/* The service account of the pod an endpoint names, or NULL when it names none the cache knows. */
static const char *pod_account(const json_t *ep, const char *ns, const rm_kube_objects_t *objs)
{
    const json_t *ref = json_object_get(ep, "targetRef"), *pod;
    const char *kind = str_of(ref, "kind"), *rname = str_of(ref, "name"), *rns = str_of(ref, "namespace");
    char key[512];
    if (kind == NULL || strcmp(kind, "Pod") != 0 || rname == NULL || objs->pods == NULL ||
        snprintf(key, sizeof(key), "%s/%s", rns != NULL ? rns : ns, rname) >= (int)sizeof(key) ||
        (pod = json_object_get(objs->pods, key)) == NULL)
        return NULL;
    const char *sa = str_of(json_object_get(pod, "spec"), "serviceAccountName");
    return sa != NULL && sa[0] != '\0' ? sa : "default";
}

static int seen(const json_t *out, json_int_t port, const char *addr)
{
    size_t i;
    const json_t *e;
    json_array_foreach(out, i, e) if (json_integer_value(json_object_get(e, "port")) == port &&
                                      strcmp(str_of(e, "address"), addr) == 0) return 1;
    return 0;
}

json_t *rm_kube_service_endpoints(const json_t *svc, const char *ns, const char *name, const rm_kube_objects_t *objs)
{
    json_t *out = json_array();
    const char *key;
    const json_t *slice, *sp;
    size_t i;

    if (out == NULL || objs->endpoint_slices == NULL)
        return out;
    json_array_foreach(json_object_get(json_object_get(svc, "spec"), "ports"), i, sp)
    {
        const char *proto = str_of(sp, "protocol"), *pname = str_of(sp, "name");
        json_int_t port = json_integer_value(json_object_get(sp, "port"));
        if ((proto != NULL && strcmp(proto, "TCP") != 0) || port <= 0)
            continue;
        json_object_foreach((json_t *)objs->endpoint_slices, key, slice)
        {
            const json_t *md = json_object_get(slice, "metadata"), *ep;
            const char *sns = str_of(md, "namespace"), *atype = str_of(slice, "addressType");
            const char *owner = str_of(json_object_get(md, "labels"), RM_KUBE_SERVICE_NAME_LABEL);
            size_t j;
            if (sns == NULL || owner == NULL || strcmp(sns, ns) != 0 || strcmp(owner, name) != 0 ||
                (atype != NULL && strcmp(atype, "IPv4") != 0 && strcmp(atype, "IPv6") != 0))
                continue;
            json_int_t target = slice_target_port(slice, pname != NULL ? pname : "");
            if (target <= 0 || target > 65535)
                continue;
            json_array_foreach(json_object_get(slice, "endpoints"), j, ep)
            {
                const char *addr = json_string_value(json_array_get(json_object_get(ep, "addresses"), 0));
                const char *sa = pod_account(ep, ns, objs), *zone = str_of(ep, "zone");
                int ready = condition(ep, "ready", 1);
                if (addr == NULL || sa == NULL || seen(out, port, addr))
                    continue;
                json_t *e = json_pack("{s:s, s:I, s:I, s:s, s:b, s:b, s:b}", "address", addr, "port", port,
                                      "targetPort", target, "serviceAccount", sa, "ready", ready, "serving",
                                      condition(ep, "serving", ready), "terminating", condition(ep, "terminating", 0));
                if (e != NULL && zone != NULL && zone[0] != '\0')
                    json_object_set_new(e, "zone", json_string(zone));
                if (e == NULL || json_array_append_new(out, e) != 0) {
                    json_decref(out);
                    return NULL;
                }
            }
        }
    }
    return out;
}

int rm_endpoints_fill_destination(const rm_model_service_t *svc, Ringmesh__V1__Destination *d)
{
    Ringmesh__V1__Endpoint *eps, **list;
    size_t n = svc->num_endpoints;

    if (n == 0)
        return 0;
    if ((eps = calloc(n, sizeof(*eps))) == NULL || (list = calloc(n, sizeof(*list))) == NULL) {
        free(eps);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const rm_model_endpoint_t *e = &svc->endpoints[i];
        ringmesh__v1__endpoint__init(&eps[i]);
        eps[i].address = e->address;
        eps[i].service_port = e->port;
        eps[i].identity = e->identity;
        eps[i].ready = e->ready != 0;
        eps[i].serving = e->serving != 0;
        eps[i].terminating = e->terminating != 0;
        eps[i].zone = e->zone;
        list[i] = &eps[i];
    }
    d->n_endpoints = n;
    d->endpoints = list;
    return 0;
}

void rm_endpoints_destination_free(Ringmesh__V1__Destination *d)
{
    if (d->n_endpoints > 0) {
        free(d->endpoints[0]); /* the array of messages, the first one's address */
        free(d->endpoints);
    }
    d->endpoints = NULL;
    d->n_endpoints = 0;
}
