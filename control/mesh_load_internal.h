/* Between the two halves of the mesh loader: mesh_documents.c turns one file's documents into settings and pending
 * services, mesh_load.c keeps them across files, checks them together and builds the model; route_model.c reads
 * and checks the routes. Only these files include it. */
#ifndef RINGMESH_CONTROL_MESH_LOAD_INTERNAL_H
#define RINGMESH_CONTROL_MESH_LOAD_INTERNAL_H

#include "mesh_load.h"
#include "mesh_model_internal.h"

#include "ringmesh/policy.h"
#include "ringmesh/route.h"
#include "ringmesh/yaml_pos_map.h"

#include <stdint.h>

typedef struct st_vip_t {
    int family;
    uint8_t bytes[16];
    unsigned index; /* in spec.addresses */
    rm_yaml_pos_t pos;
} vip_t;

typedef struct st_entry_t {
    char *value;
    unsigned index; /* in its list */
    rm_yaml_pos_t pos;
} entry_t;

/* A Service as read from its document, before the checks that need every file. */
typedef struct st_pending_service_t {
    char *namespace_, *name;
    int in_mesh;
    vip_t *vips;
    size_t num_vips;
    uint16_t *ports;
    size_t num_ports;
    entry_t *accounts; /* spec.serviceAccounts */
    size_t num_accounts;
    entry_t *ids; /* spec.identities */
    size_t num_ids;
    char **identities; /* the SPIFFE IDs of both, filled by the directory checks */
    size_t num_identities;
    struct st_rm__pending_endpoint_t *endpoints; /* spec.endpoints (service_endpoints.h) */
    size_t num_endpoints;
    size_t file; /* index in loader_t.files */
    rm_yaml_pos_t doc_pos, name_pos, spec_pos;
} pending_service_t;

/* A Workload as read from its document (the pod or host a node id names, for metric labels and the access log). */
typedef struct st_pending_workload_t {
    rm_model_workload_t w;
    size_t file;
    rm_yaml_pos_t doc_pos;
} pending_workload_t;

typedef struct st_rm_mesh_loader_t {
    rm_config_error_t *err;
    char **files; /* as shown in messages, in reading order */
    size_t num_files;
    int have_mesh;
    size_t mesh_file;
    rm_yaml_pos_t mesh_pos;
    rm_mesh_settings_t settings;
    pending_service_t *services; /* in reading order */
    size_t num_services, cap_services;
    rm_policy_set_t policies;      /* AuthorizationPolicy and PeerAuthentication documents, read by lib/policy_yaml.c */
    pending_workload_t *workloads; /* in reading order */
    size_t num_workloads, cap_workloads;
    rm_route_list_t routes; /* HTTPRoute and GRPCRoute documents, read by lib/route_yaml.c (route_model.c) */
} loader_t;

/** Reads the MeshConfig and Service documents of file `file_index` (ld->files[]) into `ld`. Returns 0 or
 *  RM_ERR_CONFIG_* with ld->err set. */
int rm__mesh_load_documents(loader_t *ld, size_t file_index, const char *data, size_t len);

/** Frees what a pending service holds and zeroes it. */
void rm__pending_service_clear(pending_service_t *p);

/** "ip:port" or "[ip6]:port". */
void rm__vip_port_str(char *buf, size_t len, const vip_t *v, unsigned port);

#endif
