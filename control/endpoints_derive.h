/* Endpoints between the sources and the sidecars: a Kubernetes Service's endpoints from its EndpointSlices (written
 * into the Service document the Kubernetes source hands to the mesh loader, spec.endpoints), and a model service's
 * endpoints as the Destination.endpoints the proxies receive. */
#ifndef RINGMESH_CONTROL_ENDPOINTS_DERIVE_H
#define RINGMESH_CONTROL_ENDPOINTS_DERIVE_H

#include <jansson.h>

#include "kube_model.h"
#include "mesh_model.h"
#include "ringmesh/v1/discovery.pb-c.h"

/** The spec.endpoints entries of Kubernetes Service `svc` (namespace `ns`, name `name`) from the EndpointSlices
 *  labelled kubernetes.io/service-name=name, as Kubernetes maps them: each TCP service port to the slice port of the
 *  same name (its number is the target port); each endpoint's first address (FQDN slices left out); conditions as
 *  given, an unset ready or serving meaning true and an unset terminating false (EndpointConditions' rule); its zone;
 *  its pod's service account (targetRef, "default" when the pod names none). An address seen twice for a port (an
 *  endpoint moving between slices) is kept once. Returns a new array (possibly empty), NULL when out of memory. */
json_t *rm_kube_service_endpoints(const json_t *svc, const char *ns, const char *name, const rm_kube_objects_t *objs);

/** Sets d->endpoints from the model service's endpoints (strings borrowed from `svc`; free with
 *  rm_endpoints_destination_free). Returns 0 or -ENOMEM. */
int rm_endpoints_fill_destination(const rm_model_service_t *svc, Ringmesh__V1__Destination *d);

/** Frees what rm_endpoints_fill_destination allocated (not the borrowed strings); zeroed `d` is fine. */
void rm_endpoints_destination_free(Ringmesh__V1__Destination *d);

#endif
