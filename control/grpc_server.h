/* ringmesh-control's gRPC server on the gRPC C core: Identity.Sign and Discovery.Stream over TLS (client
 * certificates requested and, when presented, verified by lib's SVID verification during the handshake, see
 * client_verify.h; Discovery requires one). A refused handshake is logged with its cause and peer
 * (handshake_log.h).
 *
 * One thread drives one completion queue; every call's state lives on that thread, so nothing here takes a
 * lock except the hand-over of a new model (rm_control_server_update) and the counters. */
#ifndef RINGMESH_CONTROL_GRPC_SERVER_H
#define RINGMESH_CONTROL_GRPC_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "attest.h"
#include "ca.h"
#include "mesh_model.h"
#include "ringmesh/xds.h"
#include "source.h"

typedef struct st_rm_control_server_config_t {
    const char *listen;                   /* "0.0.0.0:15012", "[::]:15012" */
    const rm_ca_t *ca;                    /* signs SVIDs; its bundle verifies client certificates */
    rm_attestor_t *attestor;              /* attests Sign credentials */
    const char *serving_id;               /* the server's own SPIFFE ID */
    const char *const *serving_dns_names; /* the names sidecars dial, put in its certificate */
    size_t num_serving_dns_names;
    int64_t serving_ttl;  /* lifetime of the serving certificate (0: 24 h); a new one is issued at half of it, for
                           * the handshakes that follow (key in memory only) */
    unsigned max_streams; /* 0: 16384 */
    /* Where a node's labels come from. NULL: the node's own (it says which they are; the file source's way). A
     * source with lookup_workload (the Kubernetes source): the pod named by the node id in the node's namespace
     * must exist and run as the attested service account, and its labels are the ones the source holds; when they
     * change, the node is pushed its new WorkloadPolicy. Must outlive the server. */
    rm_source_t *workloads;
} rm_control_server_config_t;

typedef struct st_rm_control_server_t rm_control_server_t;

/** Counters, for /metrics and tests. */
typedef struct st_rm_control_stats_t {
    uint64_t streams_active;
    uint64_t streams_total;
    uint64_t streams_refused;
    uint64_t pushes[RM_XDS_NUM_TYPES];
    uint64_t acks[RM_XDS_NUM_TYPES];
    uint64_t nacks[RM_XDS_NUM_TYPES];
    uint64_t sign_ok;
    uint64_t sign_refused;
    uint64_t model_updates;
    char version[64]; /* of the model being served */
    uint64_t num_services;
} rm_control_stats_t;

/** Binds, starts the server thread and serves `model` (a reference is taken). On failure returns a negative
 *  error with a sentence in `err`. */
int rm_control_server_start(const rm_control_server_config_t *cfg, rm_mesh_model_t *model, rm_control_server_t **out,
                            char *err, size_t errlen);

/** Hands a new model to the server (a reference is taken); every stream is pushed what changed. Thread-safe. */
void rm_control_server_update(rm_control_server_t *srv, rm_mesh_model_t *model);

/** Copies the counters. Thread-safe. */
void rm_control_server_stats(rm_control_server_t *srv, rm_control_stats_t *out);

/** Stops accepting, cancels open calls, joins the thread and frees the server. */
void rm_control_server_stop(rm_control_server_t *srv);

#endif
