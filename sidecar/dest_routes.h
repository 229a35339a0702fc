/* The routes of a pushed Destination (HTTPRoute and GRPCRoute attached to its Service), decoded and checked, with
 * the matching table the request path uses (ringmesh/route.h). One per Service that has routes, owned by the
 * destination table; every rm_destination_t of that Service (one per VIP:port) points at it. */
#ifndef RINGMESH_SIDECAR_DEST_ROUTES_H
#define RINGMESH_SIDECAR_DEST_ROUTES_H

#include <stddef.h>

#include "ringmesh/route.h"
#include "ringmesh/v1/discovery.pb-c.h"

typedef struct st_rm_dest_routes_t {
    char *service; /* "namespace/name", the Destination's name */
    rm_route_t **routes;
    size_t num_routes;
    rm_route_table_t *table; /* for rm_route_select() */
} rm_dest_routes_t;

/** Decodes d->routes (the Destination of Service "namespace/name") into *out: NULL when it has none. Returns 0, or
 *  -EINVAL with a sentence naming the destination, the route and the field in `err` (the push is NACKed), or
 *  -ENOMEM. */
int rm_dest_routes_parse(const Ringmesh__V1__Destination *d, rm_dest_routes_t **out, char *err, size_t errlen);

/** Appends `,"routes":[{"kind":..,"namespace":..,"name":..,"rules":N},...]` for /config_dump at offset `o` of buf
 *  (rm_textf's convention); nothing when `r` is NULL. Returns the new offset. */
size_t rm_dest_routes_config_dump(const rm_dest_routes_t *r, char *buf, size_t len, size_t o);

/** Frees the routes and their table. NULL is fine. */
void rm_dest_routes_free(rm_dest_routes_t *r);

#endif
