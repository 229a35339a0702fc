/* A Service document's spec.endpoints (docs/control-config.md): the pods or hosts behind each service port, where
 * proxies connect instead of the VIP. The file source reads them as written; the Kubernetes source writes them
 * from EndpointSlices (control/endpoints_derive.c) into the Service document it hands to the same loader, so both
 * are checked here alike. Only mesh_documents.c and mesh_load.c include this file. */
#ifndef RINGMESH_CONTROL_SERVICE_ENDPOINTS_H
#define RINGMESH_CONTROL_SERVICE_ENDPOINTS_H

#include "mesh_model.h"

#include "ringmesh/config.h"
#include "ringmesh/yaml_pos_map.h"

#include <cyaml/cyaml.h>
#include <stddef.h>
#include <stdint.h>

/** One entry of spec.endpoints as libcyaml fills it: every scalar a string. */
typedef struct st_rm__raw_endpoint_t {
    char *address;         /* IP literal, required */
    char *port;            /* the service port, one of spec.ports; required when spec.ports has more than one */
    char *target_port;     /* default: port */
    char *service_account; /* the endpoint's identity: its ServiceAccount in the service's namespace... */
    char *identity;        /* ...or a SPIFFE ID (exactly one of the two) */
    char *ready, *serving, *terminating; /* defaults true, ready, false */
    char *zone;
} rm__raw_endpoint_t;

/** The schema of one entry, for the Service spec's "endpoints" sequence. */
extern const cyaml_schema_value_t rm__raw_endpoint_schema;

/** An endpoint as converted, before the trust domain is known (it may come from a later file). */
typedef struct st_rm__pending_endpoint_t {
    rm_model_endpoint_t e; /* identity NULL until rm__endpoints_resolve() */
    char *service_account; /* or NULL: e.identity was given */
    char *identity;        /* the explicit one, or NULL */
    unsigned index;        /* in spec.endpoints */
    rm_yaml_pos_t pos;     /* of its identity field */
} rm__pending_endpoint_t;

/** Converts spec.endpoints (`raw`, `count` entries) of a service with ports `ports` (in spec order) that is in the
 *  mesh or not (`in_mesh`): checks each field and that no two entries are the same port and address. *out gets
 *  `count` entries (NULL when count is 0). Returns 0 or RM_ERR_CONFIG_VALUE recorded in `doc` at the field. */
int rm__endpoints_convert(rm_config_doc_t *doc, const rm__raw_endpoint_t *raw, unsigned count, const uint16_t *ports,
                          size_t num_ports, int in_mesh, rm__pending_endpoint_t **out);

/** Gives each endpoint its SPIFFE ID in trust domain `td` (namespace `ns`). On an identity outside the trust
 *  domain returns -1 with *bad set to its index in the array (the caller words the message); 0 otherwise, or -ENOMEM.
 */
int rm__endpoints_resolve(rm__pending_endpoint_t *eps, size_t n, const char *td, const char *ns, size_t *bad);

/** Moves the endpoints into a model array (*out, NULL when n is 0), freeing what stays behind. Returns 0 or -ENOMEM. */
int rm__endpoints_take(rm__pending_endpoint_t *eps, size_t n, rm_model_endpoint_t **out);

/** Frees pending endpoints and the array. NULL is fine. */
void rm__endpoints_free(rm__pending_endpoint_t *eps, size_t n);

#endif
