/* Discovery on the xDS model, without the transport: what to push to a stream, and what a sidecar's answer
 * means. The gRPC server (grpc_server.c) drives these functions; the unit tests drive them directly.
 *
 * A push set holds, per resource type, the serialized DiscoveryResponse every stream receives for the current
 * configuration. It is built once per change and shared by all streams (read-only, reference-counted), so a
 * change costs one encoding whatever the number of sidecars. Versions are content digests (same content, same
 * version on every replica); nonces are "<type>-<sequence>", unique on a stream because a stream is never sent
 * the same version of a type twice. */
#ifndef RINGMESH_CONTROL_DISCOVERY_STATE_H
#define RINGMESH_CONTROL_DISCOVERY_STATE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh_model.h"
#include "ringmesh/xds.h"

#define RM_XDS_NONCE_MAX 48

typedef struct st_rm_xds_push_t {
    char version[RM_XDS_VERSION_LEN + 1];
    char nonce[RM_XDS_NONCE_MAX];
    uint8_t *response; /* serialized ringmesh.v1.DiscoveryResponse */
    size_t response_len;
} rm_xds_push_t;

/** A workload as discovery sees it: the node's namespace and labels, and a key naming that pair ("ns\nk=v\n..."
 *  with labels sorted) under which its WorkloadPolicy push is shared by every node of the same workload; and the
 *  node's id (its pod's name) and service account, which name its own workload in its WorkloadMap (NULL: none). */
typedef struct st_rm_xds_workload_t {
    rm_workload_t workload;
    const char *key;
    const char *node;
    const char *service_account;
} rm_xds_workload_t;

typedef struct st_rm_xds_workload_push_t {
    char *key;
    rm_xds_push_t push;
} rm_xds_workload_push_t;

typedef struct st_rm_xds_push_set_t {
    uint64_t seq;
    rm_xds_push_t types[RM_XDS_NUM_TYPES]; /* the shared types; the per-workload ones (WORKLOAD_POLICY, WORKLOADS)
                                            * are unused */
    uint8_t *peers;                        /* the WorkloadMap's peers, encoded once (discovery_workloads.h) */
    size_t peers_len;
    rm_mesh_model_t *model; /* for the per-workload pushes, built on first use */
    pthread_mutex_t workload_lock;
    rm_xds_workload_push_t **workloads;
    size_t num_workloads, cap_workloads;
    int refcnt; /* atomic */
} rm_xds_push_set_t;

/** Encodes `model` and the trust bundle (`bundle_pem`, one or more PEM roots) into a push set with sequence
 *  number `seq`. Returns 0 or -ENOMEM / -EINVAL. */
int rm_xds_push_set_build(const rm_mesh_model_t *model, const char *bundle_pem, uint64_t seq, rm_xds_push_set_t **out);

rm_xds_push_set_t *rm_xds_push_set_ref(rm_xds_push_set_t *set);
void rm_xds_push_set_unref(rm_xds_push_set_t *set);

/** One type's state on one stream. */
typedef struct st_rm_xds_type_state_t {
    int subscribed;
    char sent_version[RM_XDS_VERSION_LEN + 1];  /* last version pushed (or the sidecar's own at subscription) */
    char sent_nonce[RM_XDS_NONCE_MAX];          /* nonce of the last push, "" when none */
    char acked_version[RM_XDS_VERSION_LEN + 1]; /* what the sidecar runs */
    int awaiting_answer;
    uint64_t acks, nacks;
} rm_xds_type_state_t;

typedef struct st_rm_xds_stream_state_t {
    rm_xds_type_state_t types[RM_XDS_NUM_TYPES];
} rm_xds_stream_state_t;

typedef enum {
    RM_XDS_REQ_SUBSCRIBE, /* first request for a type (nonce empty) */
    RM_XDS_REQ_ACK,       /* answers the last push and accepts it */
    RM_XDS_REQ_NACK,      /* answers the last push and rejects it: the sidecar keeps version_info */
    RM_XDS_REQ_STALE,     /* answers an older push (superseded): ignored */
    RM_XDS_REQ_UNKNOWN_TYPE,
} rm_xds_request_kind_t;

/** Classifies a sidecar's request and updates the stream state accordingly. `version` is the request's
 *  version_info, `nonce` its response_nonce, `is_nack` whether error_detail is set. On SUBSCRIBE the sidecar's
 *  own version (from its state directory, after a reconnect) is recorded as sent and acked, so a sidecar that
 *  already runs the current version is not pushed it again. */
rm_xds_request_kind_t rm_xds_on_request(rm_xds_stream_state_t *st, const char *type_url, const char *version,
                                        const char *nonce, int is_nack, int *type_out);

/** The push of `type` for workload `w` (the per-workload types RM_XDS_WORKLOAD_POLICY and RM_XDS_WORKLOADS are
 *  built on first use and shared by the nodes whose push reads the same). The pointer stays valid while the set lives.
 * NULL when out of memory or when `w` is NULL for the per-workload type. Thread-safe. */
const rm_xds_push_t *rm_xds_push_get(rm_xds_push_set_t *set, int type, const rm_xds_workload_t *w);

/** Returns the next type to push to this stream from `set` (a subscribed type whose current version differs
 *  from what was last sent) and its push in *push, or -1 when the stream is up to date. */
int rm_xds_next_push(const rm_xds_stream_state_t *st, rm_xds_push_set_t *set, const rm_xds_workload_t *w,
                     const rm_xds_push_t **push);

/** Records that `push` (of `type`) was sent. */
void rm_xds_mark_sent(rm_xds_stream_state_t *st, int type, const rm_xds_push_t *push);

#endif
