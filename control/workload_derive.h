/* Who a Kubernetes pod is, in the words of Istio's metric labels: its workload's name, app and version, and its
 * SPIFFE ID, derived from the pod object alone, the way Istio derives them.
 *
 *  - name: the pod's controller (the ownerReference with controller: true):
 *      ReplicaSet whose name ends in "-<pod-template-hash label>"  -> the Deployment (that suffix stripped);
 *      Job whose name ends in "-<8 to 10 digits>"                  -> the CronJob that made it (that suffix
 *                                                                     stripped: CronJobs name their Jobs so);
 *      any other controller (StatefulSet, DaemonSet, Job, ReplicaSet, ...) -> its name;
 *      no controller                                               -> the pod's own name.
 *  - app: label service.istio.io/canonical-name, else app.kubernetes.io/name, else app, else the workload name.
 *  - version: label service.istio.io/canonical-revision, else app.kubernetes.io/version, else version, else
 *    "latest".
 *  - principal: spiffe://<trust domain>/ns/<namespace>/sa/<spec.serviceAccountName, else "default">.
 *  - addresses: status.podIPs (else status.podIP); none for a host-network pod, whose address is its node's.
 *  - access log: annotation ringmesh.io/access-log "true" or "false"; anything else leaves the mesh's setting. */
#ifndef RINGMESH_CONTROL_WORKLOAD_DERIVE_H
#define RINGMESH_CONTROL_WORKLOAD_DERIVE_H

#include <jansson.h>

#include "mesh_model.h"

#define RM_ACCESS_LOG_ANNOTATION "ringmesh.io/access-log"

/** Fills `out` (zeroed first; the caller clears it with rm__model_workload_clear) from `pod`. Returns 0, -EINVAL
 *  when the pod has no name or namespace (then `out` holds nothing), or -ENOMEM. */
int rm_workload_from_pod(const json_t *pod, rm_model_workload_t *out);

/** 1 when pods `a` and `b` (two versions of one pod) give different workloads or one is finished and the other not
 *  (or memory ran out: then they may), else 0. */
int rm_workload_pods_differ(const json_t *a, const json_t *b);

/** Adds the workload of every pod of `pods` (a cache keyed "namespace/name"; NULL: none) that is not finished
 *  (phase Succeeded or Failed) to `m`, replacing what it held, and seals it again (its version covers them).
 *  Returns 0 or -ENOMEM (the model then holds no workloads and its version is as before). */
int rm_model_set_workloads(rm_mesh_model_t *m, const json_t *pods);

#endif
