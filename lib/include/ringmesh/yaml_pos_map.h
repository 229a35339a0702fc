/* Where each node of a YAML document is: field path ("spec.ports[1]") -> line and column of its key and value.
 * The configuration loaders build one from libyaml's events so that an error found after libcyaml has filled its
 * structures can still name the line and column. */
#ifndef RINGMESH_YAML_POS_MAP_H
#define RINGMESH_YAML_POS_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct st_rm_yaml_pos_t {
    unsigned line, col; /* 1-based; 0 = unknown */
} rm_yaml_pos_t;

typedef struct st_rm_yaml_node_t {
    char *path;
    rm_yaml_pos_t key;   /* the key's position for mapping values, else the node's */
    rm_yaml_pos_t value; /* the node's own position */
} rm_yaml_node_t;

/** Open addressing over `entries`; buckets hold index + 1 (0 = empty); num_buckets is a power of two kept at least
 *  twice num. The all-zero value is an empty map. */
typedef struct st_rm_yaml_pos_map_t {
    rm_yaml_node_t *entries;
    size_t num, cap;
    size_t *buckets;
    size_t num_buckets;
} rm_yaml_pos_map_t;

/** The node at `path`, or NULL. */
const rm_yaml_node_t *rm_yaml_pos_map_find(const rm_yaml_pos_map_t *map, const char *path);

/** Adds `path`. Returns 0, 1 when the path is already present (the map is unchanged), or -ENOMEM. */
int rm_yaml_pos_map_add(rm_yaml_pos_map_t *map, const char *path, rm_yaml_pos_t key, rm_yaml_pos_t value);

/** Frees the map's memory and empties it. */
void rm_yaml_pos_map_dispose(rm_yaml_pos_map_t *map);

#endif
