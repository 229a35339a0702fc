/* What the control plane makes of the Kubernetes API's watch stream: rm__kube_lines_feed() (the line splitter of a
 * chunked watch body), each line as a watch event ({"type": ..., "object": {...}}, as jansson reads it), the
 * informer's cache key rm__kube_object_key(), and from the caches the events leave: rm_workload_from_pod(),
 * rm_workload_pods_differ(), rm_kube_service_document() and rm_kube_model_build() with rm_model_set_workloads().
 *
 * The input is the body as the API server sends it, cut into chunks at the input's own bytes: the first byte of the
 * input is a chunk length (1 to 256), each chunk is fed as one read, so that a line split at any place is tested.
 * An event's object goes into the cache of its kind (Pod, Service, EndpointSlice, anything else: a policy cache)
 * under its key (ADDED and MODIFIED put, DELETED removes), as the informer keeps them.
 *
 * Checked: the splitter returns 0 or -E2BIG (a line over its maximum), and hands over lines without '\n' and not
 * ending in '\r'; a key, when there is one, is non-empty and NUL-terminated inside its buffer; a pod's
 * workload, when derived, has a namespace and a name, and such a pod never differs from itself; a model built from the
 * caches, when built, takes the pods' workloads. */
/* rm-fuzz-link: ringmesh_control_core */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "kube_client.h"
#include "kube_informer.h"
#include "kube_model.h"
#include "mesh_model_internal.h"
#include "workload_derive.h"

#define LINE_MAX_BYTES 4096 /* the real maximum is 8 MiB; a smaller one reaches the -E2BIG path */

typedef struct {
    json_t *pods, *services, *slices, *policies;
    size_t lines;
} caches_t;

static void check_pod(const json_t *pod)
{
    rm_model_workload_t w;

    if (rm_workload_from_pod(pod, &w) == 0) {
        RM_FUZZ_CHECK(w.namespace_ != NULL && w.name != NULL);
        rm_fuzz_touch(w.namespace_, strlen(w.namespace_));
        rm_fuzz_touch(w.name, strlen(w.name));
        rm__model_workload_clear(&w);
        RM_FUZZ_CHECK(rm_workload_pods_differ(pod, pod) == 0);
    }
}

static int on_line(void *arg, const char *line, size_t len)
{
    caches_t *c = arg;
    char key[512];
    const char *k, *type, *kind;
    json_t *ev, *obj, *cache;

    RM_FUZZ_CHECK(memchr(line, '\n', len) == NULL);
    RM_FUZZ_CHECK(len == 0 || line[len - 1] != '\r');
    c->lines++;
    if ((ev = json_loadb(line, len, 0, NULL)) == NULL)
        return 0;
    type = json_string_value(json_object_get(ev, "type"));
    obj = json_object_get(ev, "object");
    rm_fuzz_touch(rm__kube_status_message(obj), strlen(rm__kube_status_message(obj)));
    if (type == NULL || !json_is_object(obj))
        goto Exit;
    if ((k = rm__kube_object_key(obj, key, sizeof(key))) != NULL) {
        size_t n = strlen(k);
        RM_FUZZ_CHECK(n < sizeof(key) && n > 0);
    }
    kind = json_string_value(json_object_get(obj, "kind"));
    kind = kind != NULL ? kind : "";
    cache = strcmp(kind, "Pod") == 0             ? c->pods
            : strcmp(kind, "Service") == 0       ? c->services
            : strcmp(kind, "EndpointSlice") == 0 ? c->slices
                                                 : c->policies;
    if (strcmp(kind, "Pod") == 0)
        check_pod(obj);
    if (k == NULL)
        goto Exit;
    if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0)
        json_object_set(cache, k, obj);
    else if (strcmp(type, "DELETED") == 0)
        json_object_del(cache, k);
Exit:
    json_decref(ev);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    caches_t c = {json_object(), json_object(), json_object(), json_object(), 0};
    rm__kube_lines_t lines = {.max = LINE_MAX_BYTES, .on_line = on_line, .arg = &c};
    rm_kube_objects_t objs = {c.pods, c.services, c.slices, (const json_t *const *)&c.policies, 1};
    rm_mesh_model_t *model = NULL;
    rm_config_error_t err;
    size_t chunk, off = 1, num_docs = 0;
    const char *key;
    json_t *svc;
    int ret = 0;

    RM_FUZZ_CHECK(c.pods != NULL && c.services != NULL && c.slices != NULL && c.policies != NULL);
    if (size == 0)
        goto Exit;
    chunk = (size_t)data[0] + 1;
    while (off < size && ret == 0) {
        size_t n = size - off < chunk ? size - off : chunk;
        char *piece = (char *)rm_fuzz_memdup(data + off, n);
        ret = rm__kube_lines_feed(&lines, piece, n);
        free(piece);
        off += n;
    }
    RM_FUZZ_CHECK(ret == 0 || ret == -E2BIG);

    json_object_foreach(c.services, key, svc)
    {
        char *doc = rm_kube_service_document(svc, &objs);
        if (doc != NULL)
            rm_fuzz_touch(doc, strlen(doc));
        free(doc);
    }
    memset(&err, 0, sizeof(err));
    if (rm_kube_model_build(&objs, "fuzz:MeshConfig", NULL, 0, NULL, NULL, &model, &num_docs, &err) == 0) {
        RM_FUZZ_CHECK(model != NULL);
        RM_FUZZ_CHECK(rm_model_set_workloads(model, c.pods) == 0);
        rm_mesh_model_unref(model);
    } else {
        RM_FUZZ_CHECK(err.code != 0);
    }

Exit:
    rm__kube_lines_free(&lines);
    json_decref(c.pods);
    json_decref(c.services);
    json_decref(c.slices);
    json_decref(c.policies);
    return 0;
}
