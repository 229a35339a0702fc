/* The resource types of ringmesh.v1 Discovery (proto/ringmesh/v1/discovery.proto), shared by the control plane
 * and the sidecar. */
#ifndef RINGMESH_XDS_H
#define RINGMESH_XDS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    RM_XDS_TRUST_BUNDLE = 0,
    RM_XDS_DESTINATIONS,
    RM_XDS_MESH_SETTINGS,
    RM_XDS_WORKLOAD_POLICY, /* per workload: the authorization policies selecting it and its mTLS modes */
    RM_XDS_WORKLOADS,       /* per workload: who it is and who the pods it may talk to are (WorkloadMap) */
    RM_XDS_NUM_TYPES
} rm_xds_type_t;

#define RM_XDS_TYPE_PREFIX "type.ringmesh.io/ringmesh.v1."

/** The type URL of `t` ("type.ringmesh.io/ringmesh.v1.TrustBundle", ...). */
const char *rm_xds_type_url(rm_xds_type_t t);

/** A short name for logs and metrics ("trust_bundle", "destinations", "mesh_settings",
 *  "workload_policy", "workloads"). */
const char *rm_xds_type_name(rm_xds_type_t t);

/** Returns the type for a type URL, or -1 when it is not one of ours. */
int rm_xds_type_from_url(const char *url);

/** Versions are the first 16 hex digits of the SHA-256 of the resource's serialized content. */
#define RM_XDS_VERSION_LEN 16

/** Writes the version of `data` (RM_XDS_VERSION_LEN hex digits and a NUL) into `out`. */
void rm_xds_version_of(const void *data, size_t len, char out[RM_XDS_VERSION_LEN + 1]);

#endif
