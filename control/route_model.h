/* Routes in the control plane: HTTPRoute and GRPCRoute documents read with the mesh's other documents (file source,
 * and the Kubernetes source's objects turned into documents), checked across the load, kept in the model, counted
 * in its version, and pushed in each Service's Destination (ringmesh/route.h for the route model itself). */
#ifndef RINGMESH_CONTROL_ROUTE_MODEL_H
#define RINGMESH_CONTROL_ROUTE_MODEL_H

#include <jansson.h>

#include "mesh_model.h"
#include "ringmesh/bytebuf.h"
#include "ringmesh/route_proto.h"
#include "ringmesh/v1/discovery.pb-c.h"

struct st_rm_mesh_loader_t; /* mesh_load_internal.h */

/** Reads the route documents of one file (ld->files[file_index]) into ld->routes. Returns 0 or RM_ERR_CONFIG_* with
 *  ld->err set. */
int rm__mesh_load_routes(struct st_rm_mesh_loader_t *ld, size_t file_index, const char *data, size_t len);

/** Checks across files: a kind/namespace/name once. (A parentRef naming a Service the load does not define is no
 *  error: that parent is not routed, as GAMMA leaves it not Accepted; the Kubernetes source loads each object alone
 *  first, without the Services.) Returns 0 or RM_ERR_CONFIG_VALUE with ld->err set. */
int rm__mesh_check_routes(struct st_rm_mesh_loader_t *ld);

/** Moves the loader's routes into the model, in the Gateway API's tie order (oldest, then namespace/name). Returns
 *  0 or -ENOMEM. */
int rm__mesh_move_routes(struct st_rm_mesh_loader_t *ld, rm_mesh_model_t *m);

/** Frees the model's routes. */
void rm__model_routes_free(rm_mesh_model_t *m);

/** Appends the routes to the version's serialization: each route's pushed message, length-prefixed. Nothing when
 *  there are none, so that models without routes keep their versions. */
void rm__model_routes_serialize(rm_bytebuf_t *b, const rm_mesh_model_t *m);

/** Fills d->routes with the routes attached to `svc`, their messages allocated from `a`. Returns 0 or -ENOMEM. */
int rm__destination_routes(const rm_mesh_model_t *m, const rm_model_service_t *svc, rm_route_arena_t *a,
                           Ringmesh__V1__Destination *d);

/** The document the loader reads for an HTTPRoute or GRPCRoute object of the API: apiVersion, kind, spec and the
 *  metadata that matter (name, namespace, creationTimestamp), as indented JSON. NULL when out of memory. */
char *rm_kube_route_document(const json_t *obj);

#endif
