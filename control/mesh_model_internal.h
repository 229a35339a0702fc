/* Building a mesh model, for the sources (file, Kubernetes). Not part of what the rest of the control plane
 * sees: consumers only read a model and hold references to it (mesh_model.h). */
#ifndef RINGMESH_CONTROL_MESH_MODEL_INTERNAL_H
#define RINGMESH_CONTROL_MESH_MODEL_INTERNAL_H

#include "mesh_model.h"

#define RM_MODEL_DEFAULT_TRUST_DOMAIN   "cluster.local"
#define RM_MODEL_DEFAULT_SVID_TTL       86400 /* seconds */
#define RM_MODEL_DEFAULT_ROOT_NAMESPACE "ringmesh-system"
#define RM_MODEL_VERSION_LEN            16 /* hex digits of the SHA-256 kept as the version */

/* spec.trustDomainAliases: at most this many */
#define RM_MODEL_MAX_TRUST_DOMAIN_ALIASES 16

/** Frees the settings' trustDomainAliases and leaves none. */
void rm__mesh_settings_aliases_free(rm_mesh_settings_t *s);

/** A new model with the default settings, no services, no version yet and one reference; NULL when out of
 *  memory. Fill it, call rm__mesh_model_seal(), then hand it over. */
rm_mesh_model_t *rm__mesh_model_new(void);

/** Puts the model in canonical order (services by namespace then name; each service's addresses by family,
 *  address and port; identities by byte value) and sets `version` to the first RM_MODEL_VERSION_LEN hex digits
 *  of the SHA-256 of its canonical serialization (rm__mesh_model_serialize()). Every address must be in the
 *  canonical form of mesh_model.h. Returns 0 or -ENOMEM (the model is then still valid to unref). */
int rm__mesh_model_seal(rm_mesh_model_t *m);

/** The canonical serialization the version is computed over: every setting and every service's namespace, name,
 *  inMesh, addresses and identities, in the model's current order, each string written as "<length>:<bytes>".
 *  Where a service was defined (file, line) is not part of it. *out is malloc'ed (not NUL-terminated).
 *  Returns 0 or -ENOMEM. */
int rm__mesh_model_serialize(const rm_mesh_model_t *m, char **out, size_t *out_len);

/** Frees what a workload owns and zeroes it. */
void rm__model_workload_clear(rm_model_workload_t *w);

/** Frees `n` endpoints and the array. NULL is fine. */
void rm__model_endpoints_free(rm_model_endpoint_t *e, size_t n);

/** Puts endpoints in canonical order: by port, then address (as the service's addresses), then identity. */
void rm__model_endpoints_sort(rm_model_endpoint_t *e, size_t n);

/** Frees what a service owns and zeroes it. */
void rm__model_service_clear(rm_model_service_t *s);

#endif
