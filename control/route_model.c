/* Routes in the control plane (route_model.h): read with the mesh's documents, kept in the model in the Gateway
 * API's tie order, part of the version, and pushed to the sidecars in the Destination of each Service they attach
 * to. */
#include "route_model.h"
#include "mesh_load_internal.h"

#include "ringmesh/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rm__mesh_load_routes(loader_t *ld, size_t file_index, const char *data, size_t len)
{
    return rm_route_load_yaml(&ld->routes, data, len, ld->files[file_index], ld->err);
}

int rm__mesh_check_routes(loader_t *ld)
{
    return rm_route_list_check(&ld->routes, ld->err);
}

static int cmp_route(const void *a, const void *b)
{
    return rm_route_compare(*(rm_route_t *const *)a, *(rm_route_t *const *)b);
}

int rm__mesh_move_routes(loader_t *ld, rm_mesh_model_t *m)
{
    rm_route_list_t *l = &ld->routes;
    if (l->num == 0)
        return 0;
    if ((m->routes = calloc(l->num, sizeof(*m->routes))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < l->num; i++) {
        m->routes[i] = l->routes[i];
        l->routes[i] = NULL;
    }
    m->num_routes = l->num;
    rm_route_list_clear(l); /* the routes are the model's now; files and lines go */
    qsort(m->routes, m->num_routes, sizeof(*m->routes), cmp_route);
    return 0;
}

void rm__model_routes_free(rm_mesh_model_t *m)
{
    for (size_t i = 0; i < m->num_routes; i++)
        rm_route_free(m->routes[i]);
    free(m->routes);
    m->routes = NULL;
    m->num_routes = 0;
}

void rm__model_routes_serialize(rm_bytebuf_t *b, const rm_mesh_model_t *m)
{
    char head[64];
    if (m->num_routes == 0)
        return;
    int n = snprintf(head, sizeof(head), "routes=%zu\n", m->num_routes);
    rm_bytebuf_append(b, head, (size_t)n);
    for (size_t i = 0; i < m->num_routes; i++) {
        rm_route_arena_t a = {0};
        Ringmesh__V1__Route *msg;
        uint8_t *packed = NULL;
        size_t len = 0;
        if (rm_route_to_proto(m->routes[i], &a, &msg) != 0 ||
            (packed = malloc((len = ringmesh__v1__route__get_packed_size(msg)) + 1)) == NULL) {
            b->failed = 1; /* the serialization fails as a whole (rm__mesh_model_serialize checks it) */
            rm_route_arena_clear(&a);
            return;
        }
        /* protobuf-c writes fields in field-number order, so equal routes pack to equal bytes */
        ringmesh__v1__route__pack(msg, packed);
        n = snprintf(head, sizeof(head), "route=%zu:", len);
        rm_bytebuf_append(b, head, (size_t)n);
        rm_bytebuf_append(b, packed, len);
        rm_bytebuf_append(b, "\n", 1);
        free(packed);
        rm_route_arena_clear(&a);
    }
}

int rm__destination_routes(const rm_mesh_model_t *m, const rm_model_service_t *svc, rm_route_arena_t *a,
                           Ringmesh__V1__Destination *d)
{
    size_t n = 0;
    for (size_t i = 0; i < m->num_routes; i++)
        n += rm_route_has_parent(m->routes[i], svc->namespace_, svc->name);
    if (n == 0)
        return 0;
    Ringmesh__V1__Route **list = rm_route_arena_alloc(a, n, sizeof(*list));
    if (list == NULL)
        return -ENOMEM;
    d->n_routes = 0;
    d->routes = list;
    for (size_t i = 0; i < m->num_routes; i++) {
        if (!rm_route_has_parent(m->routes[i], svc->namespace_, svc->name))
            continue;
        if (rm_route_to_proto(m->routes[i], a, &list[d->n_routes]) != 0)
            return -ENOMEM;
        d->n_routes++;
    }
    return 0;
}

char *rm_kube_route_document(const json_t *obj)
{
    static const char *const keep[] = {"name", "namespace", "creationTimestamp", NULL};
    const json_t *md = json_object_get(obj, "metadata");
    json_t *doc = json_object(), *nmd = json_object();
    char *text = NULL;

    if (doc == NULL || nmd == NULL)
        goto Exit;
    json_object_set(doc, "apiVersion", json_object_get(obj, "apiVersion"));
    json_object_set(doc, "kind", json_object_get(obj, "kind"));
    for (size_t i = 0; keep[i] != NULL; i++)
        if (json_object_get(md, keep[i]) != NULL)
            json_object_set(nmd, keep[i], json_object_get(md, keep[i]));
    json_object_set(doc, "metadata", nmd);
    if (json_object_get(obj, "spec") != NULL)
        json_object_set(doc, "spec", json_object_get(obj, "spec"));
    /* indented, so that an error's line in the document names the field's line */
    text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
Exit:
    json_decref(doc);
    json_decref(nmd);
    return text;
}
