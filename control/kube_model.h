/* Kubernetes objects -> the mesh model: what the Kubernetes source builds from its caches, through the same mesh
 * loader (mesh_load.h) the file source uses, so that both sources apply the same checks and compute the same
 * version for the same content.
 *
 * Each object becomes one document:
 *  - a Service with a cluster IP (not headless, not ExternalName) becomes a ringmesh.io/v1alpha1 Service: its
 *    clusterIPs, its TCP ports (others are left out; a Service with none is skipped), in the mesh when at least one
 *    pod backs it through its EndpointSlices and every such pod is injected (annotation ringmesh.io/status), and
 *    then served by the service accounts of those pods;
 *  - AuthorizationPolicy and PeerAuthentication custom resources (ringmesh.io/v1alpha1, security.istio.io/v1 and
 *    v1beta1) are read as they are (name, namespace, annotations and spec; status and the rest of metadata dropped);
 *  - the MeshConfig comes from its file, read as the file source reads one file.
 * Every document is first loaded alone: one that fails is reported through `rejected` (kind, namespace/name, field,
 * reason) and left out, so that one bad object never holds back the rest. The documents that pass are then
 * loaded together, in a fixed order (kind, namespace, name). */
#ifndef RINGMESH_CONTROL_KUBE_MODEL_H
#define RINGMESH_CONTROL_KUBE_MODEL_H

#include <stddef.h>

#include <jansson.h>

#include "mesh_model.h"
#include "ringmesh/config.h"

#define RM_KUBE_INJECTED_ANNOTATION "ringmesh.io/status"
#define RM_KUBE_SERVICE_NAME_LABEL  "kubernetes.io/service-name"

/** The caches (jansson objects keyed "namespace/name", values the objects with kind and apiVersion); any may be
 *  NULL (none of that kind). `policies` holds the caches of every policy kind being watched. */
typedef struct st_rm_kube_objects_t {
    const json_t *pods;
    const json_t *services;
    const json_t *endpoint_slices;
    const json_t *const *policies;
    size_t num_policies;
} rm_kube_objects_t;

/** Told about each object left out: `shown` names it ("kubernetes:Service/shop/orders"), `e` says why. */
typedef void (*rm_kube_rejected_cb)(void *arg, const char *kind, const char *namespace_, const char *name,
                                    const rm_config_error_t *e);

/** Builds the model from `objs` and the MeshConfig text (`mesh_text` NULL: none; shown as `mesh_shown`). Returns 0
 *  with *out (the caller's reference), or RM_ERR_CONFIG_* with `err` set when the MeshConfig is invalid or the
 *  accepted documents fail together (a rule across objects). *num_docs receives how many documents went in. */
int rm_kube_model_build(const rm_kube_objects_t *objs, const char *mesh_shown, const char *mesh_text, size_t mesh_len,
                        rm_kube_rejected_cb rejected, void *arg, rm_mesh_model_t **out, size_t *num_docs,
                        rm_config_error_t *err);

/** The ringmesh Service document for Kubernetes Service `svc` (NULL when it is not one the mesh routes: no cluster
 *  IP, headless, ExternalName, no TCP port). The caller frees the text. */
char *rm_kube_service_document(const json_t *svc, const rm_kube_objects_t *objs);

#endif
