/* What the control plane knows about the mesh: settings and services, as read from its sources. Discovery turns
 * a model into the resources each sidecar receives.
 *
 * A model is immutable and reference-counted: a source builds a new one for every accepted change and hands
 * it over; streams keep the one they are pushing until they are done with it. */
#ifndef RINGMESH_CONTROL_MESH_MODEL_H
#define RINGMESH_CONTROL_MESH_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "ringmesh/policy.h"
#include "ringmesh/route.h"

typedef enum {
    RM_MODEL_MTLS_UNSPECIFIED = 0,
    RM_MODEL_MTLS_STRICT = 1,
    RM_MODEL_MTLS_PERMISSIVE = 2,
    RM_MODEL_MTLS_DISABLE = 3,
} rm_model_mtls_mode_t; /* same numbers as ringmesh.v1.MtlsMode */

/** Mesh-wide settings (kind MeshConfig). Every field has a default, so a mesh with no MeshConfig works. */
typedef struct st_rm_mesh_settings_t {
    char *trust_domain;                /* default "cluster.local" */
    rm_model_mtls_mode_t inbound_mode; /* default STRICT */
    uint32_t connect_timeout_ms;       /* default 0: the proxies' own */
    uint32_t idle_timeout_ms;          /* default 0: the proxies' own */
    int access_log;                    /* accessLog.enabled: the sidecars' access log, default 0 */
    double access_log_sample;          /* accessLog.sampleRate, in [0, 1], default 1 */
    int metrics_istio_names;           /* metrics.istioNames, default 0 */
    unsigned metrics_max_series;       /* metrics.maxSeriesPerMetric, default 0: the proxies' own */
    uint32_t metrics_expiry_ms;        /* metrics.seriesExpiry, default 0: the proxies' own */
    int64_t svid_ttl;                  /* seconds, default 86400, at least 300 */
    char *root_namespace;              /* default "ringmesh-system": its policies without selector are mesh-wide */
    rm_authz_action_t default_action;  /* authorization.defaultAction: DENY (default) or ALLOW */
    int log_allowed;                   /* authorization.logAllowed, default 0 */
    double log_allowed_sample;         /* authorization.logAllowedSampleRate, default 1 */
    int log_attributes;                /* authorization.logAttributes, default 0 */
    rm_path_normalization_t path_normalization; /* authorization.pathNormalization.normalization, default BASE */
    /* trustDomainAliases: other trust domains policies' principals stand for too (Istio's); default none */
    char **trust_domain_aliases;
    size_t num_trust_domain_aliases;
    /* defaultConfig.gatewayTopology.numTrustedProxies (Istio's): proxies in front of the workloads whose
     * X-Forwarded-For entries remote.ip looks past; default 0 (remote.ip is the source IP) */
    uint32_t num_trusted_proxies;
} rm_mesh_settings_t;

/** One endpoint of a service port (an in-mesh service's spec.endpoints, or its EndpointSlices): where a proxy
 *  connects instead of the VIP, and the identity it must present (control/service_endpoints.h). */
typedef struct st_rm_model_endpoint_t {
    char *address;   /* "198.18.0.5:8080" / "[2001:2::5]:8080": the pod's IP and target port, canonical form */
    uint16_t port;   /* the service port it serves (one of the service's ports) */
    char *identity;  /* SPIFFE ID */
    char *zone;      /* "" when unknown */
    uint8_t ready;   /* new connections go to ready endpoints that are not terminating */
    uint8_t serving; /* with terminating: used only while no endpoint of the port is ready */
    uint8_t terminating;
} rm_model_endpoint_t;

/** A service (kind Service): reachable at addresses x ports; in the mesh unless inMesh is false. */
typedef struct st_rm_model_service_t {
    char *namespace_;
    char *name;
    char **addresses; /* "198.18.100.1:8080" / "[2001:2::1]:8080", one per VIP x port, canonical form */
    size_t num_addresses;
    int in_mesh;
    char **identities; /* SPIFFE IDs allowed to serve it: from serviceAccounts plus explicit identities */
    size_t num_identities;
    char *file; /* where it was defined, for messages */
    unsigned line;
    rm_model_endpoint_t *endpoints; /* sorted by port, then address; none: proxies connect to the VIP */
    size_t num_endpoints;
} rm_model_service_t;

/** What a pod's ringmesh.io/access-log annotation says (same numbers as ringmesh.v1.AccessLogOverride). */
typedef enum {
    RM_MODEL_ACCESS_LOG_MESH = 0, /* no annotation (or not "true"/"false"): the mesh's setting */
    RM_MODEL_ACCESS_LOG_ON = 1,
    RM_MODEL_ACCESS_LOG_OFF = 2,
} rm_model_access_log_t;

/** A pod as Istio's metric labels name its workload (control/workload_derive.h says how each field is derived).
 *  Every string is set; `addresses` are IP literals in canonical form (inet_ntop), none for a host-network pod. */
typedef struct st_rm_model_workload_t {
    char *namespace_;
    char *pod;     /* the pod's name: a node whose id it is gets this workload as its own */
    char *name;    /* the workload: Deployment, StatefulSet, DaemonSet, CronJob, Job, ... or the pod */
    char *app;     /* app.kubernetes.io/name, else app, else name */
    char *version; /* app.kubernetes.io/version, else version, else "latest" */
    char *service_account;
    char **addresses;
    size_t num_addresses;
    rm_model_access_log_t access_log;
} rm_model_workload_t;

typedef struct st_rm_mesh_model_t {
    char *version; /* hex digest of the accepted content: equal content gives the same version on every
                    * replica, so a sidecar moving between replicas is not pushed an identical config again */
    rm_mesh_settings_t settings;
    rm_model_service_t *services; /* sorted by namespace, then name */
    size_t num_services;
    rm_policy_set_t policies;       /* AuthorizationPolicy / PeerAuthentication, validated, sorted by namespace, name */
    rm_model_workload_t *workloads; /* the pods a source knows (Kubernetes), sorted by namespace, then pod */
    size_t num_workloads;
    rm_route_t **routes; /* HTTPRoute and GRPCRoute, validated, oldest first then by namespace/name (route.h) */
    size_t num_routes;
    /* private */
    int refcnt;
} rm_mesh_model_t;

/** Takes a reference (atomic). Returns `m`. */
rm_mesh_model_t *rm_mesh_model_ref(rm_mesh_model_t *m);

/** Drops a reference; the last one frees the model. NULL is fine. */
void rm_mesh_model_unref(rm_mesh_model_t *m);

#endif
