/* The mesh's YAML documents -> the mesh model: what every configuration source hands its documents to.
 *
 * A load begins with the mesh's defaults, takes the text of one file (or of one object) at a time, and ends by
 * checking what spans files (one MeshConfig, unique services and VIP:ports, identities in the trust domain, policy
 * names) and building an immutable model. Documents of kind MeshConfig and Service (docs/control-config.md) are read
 * here; AuthorizationPolicy and PeerAuthentication by lib/policy_yaml.c. The first error stops the load; it names
 * the file, line, column and field (ringmesh/config.h). A source decides where the text comes from and when to
 * load again (control/source.h). */
#ifndef RINGMESH_CONTROL_MESH_LOAD_H
#define RINGMESH_CONTROL_MESH_LOAD_H

#include <stddef.h>

#include "mesh_model.h"
#include "ringmesh/config.h"

typedef struct st_rm_mesh_loader_t rm_mesh_loader_t;

/** Begins a load with the mesh's defaults. Errors of every later call are recorded in `err` (owned by the caller,
 *  alive until rm_mesh_loader_free()). Returns NULL when out of memory. */
rm_mesh_loader_t *rm_mesh_loader_new(rm_config_error_t *err);

/** Reads the YAML documents of data[0..len), shown in messages as `shown` (copied). Returns 0, or RM_ERR_CONFIG_*
 *  with the error recorded; the load should then be abandoned. */
int rm_mesh_loader_add(rm_mesh_loader_t *ld, const char *shown, const char *data, size_t len);

/** Runs the checks across everything added and builds the model: *out is a new reference the caller owns.
 *  Returns 0 or RM_ERR_CONFIG_* with the error recorded (*out untouched). Call once. */
int rm_mesh_loader_finish(rm_mesh_loader_t *ld, rm_mesh_model_t **out);

/** How many files rm_mesh_loader_add() took. */
size_t rm_mesh_loader_num_files(const rm_mesh_loader_t *ld);

/** Frees the load. NULL is fine. */
void rm_mesh_loader_free(rm_mesh_loader_t *ld);

#endif
