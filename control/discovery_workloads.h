/* The WorkloadMap resource (proto/ringmesh/v1/discovery.proto): who a node's workload is, and who the pods at the
 * addresses it may talk to are. The peers are the same for every node, so they are encoded once per push set;
 * a node's resource is its own workload's encoding followed by those bytes (repeated fields of a protobuf message
 * concatenate), shared by every node whose workload reads the same. */
#ifndef RINGMESH_CONTROL_DISCOVERY_WORKLOADS_H
#define RINGMESH_CONTROL_DISCOVERY_WORKLOADS_H

#include <stddef.h>
#include <stdint.h>

#include "mesh_model.h"

/** At most this many bytes of peers go into one WorkloadMap (the gRPC default message limit is 4 MiB); the
 *  workloads past it (in the model's order) are left out and that is logged ("workloads_truncated"). */
#define RM_XDS_WORKLOAD_PEERS_MAX_BYTES (3u << 20)

/** The peers of `m` (every workload with an address, each address once), encoded as a WorkloadMap holding only
 *  peers, within `max_bytes`. *out is malloc'ed (NULL with *len 0 when there are none). Returns 0 or -ENOMEM. */
int rm__xds_workload_peers_encode(const rm_mesh_model_t *m, size_t max_bytes, uint8_t **out, size_t *len);

/** The node's own workload: the model's workload of pod `node` in namespace `ns`, else one that only says the
 *  namespace and the principal of service account `sa` (the proxy fills the rest from its environment). `key`
 *  receives a string naming its content (malloc'ed), `value` the encoded WorkloadMap (self, then `peers`).
 *  Returns 0 or -ENOMEM. */
int rm__xds_workload_self_encode(const rm_mesh_model_t *m, const char *ns, const char *node, const char *sa,
                                 const uint8_t *peers, size_t peers_len, char **key, uint8_t **value, size_t *len);

#endif
