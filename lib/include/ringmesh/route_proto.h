/* Routes <-> ringmesh.v1.Route (proto/ringmesh/v1/route.proto): the control plane encodes the routes of a Service
 * into its Destination, the sidecar decodes and checks them (a push it cannot take is NACKed whole). */
#ifndef RINGMESH_ROUTE_PROTO_H
#define RINGMESH_ROUTE_PROTO_H

#include <stddef.h>

#include "ringmesh/route.h"
#include "ringmesh/v1/route.pb-c.h"

/** What the messages of rm_route_to_proto are allocated from; strings are borrowed from the routes. The all-zero
 *  value is empty. */
typedef struct st_rm_route_arena_t {
    void **blocks;
    size_t num, cap;
} rm_route_arena_t;

/** n zeroed objects of `size` bytes, freed with the arena; NULL when out of memory or n is 0. */
void *rm_route_arena_alloc(rm_route_arena_t *a, size_t n, size_t size);

/** Frees every message allocated from the arena and empties it. */
void rm_route_arena_clear(rm_route_arena_t *a);

/** Builds the message of route `r` in `a` (alive while `a` and `r` are). Returns 0 or -ENOMEM. */
int rm_route_to_proto(const rm_route_t *r, rm_route_arena_t *a, Ringmesh__V1__Route **out);

/** Decodes and checks a pushed route: *out a new route (rm_route_free). Returns 0, -EINVAL with a sentence naming
 *  the route and the field in `err`, or -ENOMEM. */
int rm_route_from_proto(const Ringmesh__V1__Route *m, rm_route_t **out, char *err, size_t errlen);

#endif
