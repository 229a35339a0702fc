/* ringmesh-proxy's configuration: a YAML file (libcyaml) plus environment overrides.
 *
 * Field names are camelCase as in Kubernetes and Istio; durations are strings such as "500ms", "5s", "1h".
 * rm_proxy_config_load() either returns a complete, validated configuration or an error message naming
 * the file, line and field; it never returns a half-filled one. */
#ifndef RINGMESH_PROXY_CONFIG_H
#define RINGMESH_PROXY_CONFIG_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ringmesh/duration.h"
#include "ringmesh/http_path.h"
#include "ringmesh/traffic_config.h"

typedef enum { RM_MTLS_STRICT = 0, RM_MTLS_PERMISSIVE, RM_MTLS_DISABLE } rm_mtls_mode_t;
typedef enum { RM_IO_AUTO = 0, RM_IO_URING, RM_IO_EPOLL } rm_io_backend_kind_t;
typedef enum { RM_LISTENER_UPSTREAM = 0, RM_LISTENER_INBOUND } rm_listener_kind_t;

#define RM_MAX_IDENTITIES 16

/* authorization.trustDomainAliases: at most this many */
#define RM_MAX_TRUST_DOMAIN_ALIASES 16

/** A socket address with its length, as parsed from "ip:port", "[ip6]:port" or "port" (= 0.0.0.0:port). */
typedef struct st_rm_sockaddr_t {
    struct sockaddr_storage ss;
    socklen_t len;
} rm_sockaddr_t;

/** A mesh destination: connections to address:port are wrapped in mTLS and the server must present one
 *  of `identities`. */
typedef struct st_rm_destination_t {
    rm_sockaddr_t addr;
    char *identities[RM_MAX_IDENTITIES];
    size_t num_identities;
    char *sni; /* server name sent in the ClientHello, Istio's "outbound_.PORT_._.SVC.NS.svc.cluster.local" for a
                * pushed Service; NULL: none */
    struct st_rm_dest_endpoints_t *endpoints; /* pushed: where connections go instead of addr (dest_endpoints.h);
                                               * NULL: none, connect to addr */
    const struct st_rm_dest_routes_t *routes; /* its Service's routes (dest_routes.h), owned by the destination
                                               * table; NULL: none (and always for the file's destinations) */
} rm_destination_t;

/** Per-port inbound mTLS mode. */
typedef struct st_rm_port_mode_t {
    uint16_t port;
    rm_mtls_mode_t mode;
} rm_port_mode_t;

/** An explicit listener (no iptables needed). UPSTREAM: plain TCP on `listen`, mTLS to `target`, which must
 *  present one of `identities`. INBOUND: mTLS on `listen` (client SVID from the bundle required unless mode is
 *  PERMISSIVE), plain TCP to `target`. */
typedef struct st_rm_listener_config_t {
    char *name;
    rm_listener_kind_t kind;
    rm_sockaddr_t listen;
    rm_sockaddr_t target;
    rm_mtls_mode_t mode;
    char *identities[RM_MAX_IDENTITIES];
    size_t num_identities;
} rm_listener_config_t;

/** Where identity and configuration come from when a control plane is used (section `control`). */
typedef struct st_rm_control_config_t {
    char *address;                 /* host:port of ringmesh-control */
    char *server_name;             /* :authority and SNI, default ringmesh-control.ringmesh-system.svc */
    char *identity;                /* SPIFFE ID the control plane must present, default
                                    * spiffe://<trustDomain>/ns/ringmesh-system/sa/ringmesh-control */
    char *bootstrap_bundle_file;   /* roots that verify the control plane before the first push */
    char *token_file;              /* projected ServiceAccount token, re-read at every request */
    char *state_dir;               /* last good SVID (key 0600), bundle and configuration */
    double renew_fraction;         /* renew at this fraction of the lifetime, default 0.5 (with jitter) */
    uint32_t svid_ttl_s;           /* lifetime asked for; 0 = the control plane's default */
    uint32_t keepalive_time_ms;    /* the stream's HTTP/2 PING after this much silence (default 60 s) */
    uint32_t keepalive_timeout_ms; /* the stream is dead when the PING is not answered within this (default 20 s) */
    char *node_id;                 /* default: $RINGMESH_POD_NAME, else the host name */
    char *node_namespace;          /* default: $RINGMESH_POD_NAMESPACE */
    char *node_service_account;    /* default: $RINGMESH_SERVICE_ACCOUNT */
    char **node_labels;            /* "key=value": the workload's labels, which select its policies */
    size_t num_node_labels;
    char *node_labels_file; /* Kubernetes downward-API labels file (lines key="value"), read at each connect */
} rm_control_config_t;

/** The CPU priority of the handshake threads (handshakes.priority). */
typedef enum {
    RM_HANDSHAKE_PRIORITY_LOW = 0, /* nice 19: a small share of a CPU the workers want, all of an idle one */
    RM_HANDSHAKE_PRIORITY_IDLE,    /* SCHED_IDLE: only what no other thread of the machine wants */
    RM_HANDSHAKE_PRIORITY_NORMAL,  /* the workers' own */
} rm_handshake_priority_t;

typedef struct st_rm_proxy_config_t {
    char *path;                   /* the file it was loaded from */
    char *trust_domain;           /* default "cluster.local" */
    char *cert_file;              /* PEM chain, leaf first */
    char *key_file;               /* PEM private key */
    char *bundle_file;            /* PEM trust bundle (one or more roots) */
    rm_control_config_t *control; /* NULL: static SVID and destinations from this file */
    char *authz_policy_dir;       /* section `authorization` (no control plane): policies enforced; NULL: none */
    int authz_default_allow;
    int authz_log_allowed;
    int authz_log_attributes; /* authorization.logAttributes: decision lines carry "attributes" (replay) */
    rm_path_normalization_t authz_path_normalization; /* authorization.pathNormalization.normalization (BASE) */
    char **authz_trust_domain_aliases; /* authorization.trustDomainAliases; trust_domain is this mesh's own */
    size_t num_authz_trust_domain_aliases;
    unsigned authz_num_trusted_proxies; /* authorization.numTrustedProxies: remote.ip from X-Forwarded-For (0) */

    int outbound_enabled;          /* default 1 */
    rm_sockaddr_t outbound_listen; /* default [::]:15001 (dual stack) */
    int inbound_enabled;           /* default 1 */
    rm_sockaddr_t inbound_listen;  /* default [::]:15006 */
    rm_mtls_mode_t inbound_mode;   /* default STRICT */
    rm_port_mode_t *port_modes;
    size_t num_port_modes;

    rm_destination_t *destinations;
    size_t num_destinations;
    rm_listener_config_t *listeners;
    size_t num_listeners;

    int admin_enabled;          /* default 1 */
    rm_sockaddr_t admin_listen; /* default 127.0.0.1:15021 */

    unsigned workers;                /* default 1, 1..64 */
    rm_io_backend_kind_t io_backend; /* default AUTO */
    int kernel_tls;                  /* kernelTls: 1 auto (default: when the kernel has TLS), 0 off */
    unsigned max_connections;        /* per proxy, default 4096 */
    uint32_t connect_timeout_ms;     /* default 5000 */
    uint32_t idle_timeout_ms;        /* default 3600000; 0 = none */
    uint32_t drain_timeout_ms;       /* default 5000 */
    uint32_t handshake_timeout_ms;   /* default 10000 */
    /* handshakes: inbound TLS handshakes run on `handshake_threads` threads of their own (0: on the workers) at
     * `handshake_priority`; at most `max_pending_handshakes` are in progress at once (more are refused at once); a
     * source address whose handshakes failed `handshake_backoff_failures` times (0: never) within
     * `handshake_failure_window_ms` has its new ones refused for `handshake_backoff_ms` */
    unsigned handshake_threads;                 /* default 1, 0..16 */
    rm_handshake_priority_t handshake_priority; /* default LOW */
    unsigned max_pending_handshakes;            /* default 128 */
    unsigned handshake_backoff_failures;        /* default 20 */
    uint32_t handshake_failure_window_ms;       /* default 10000 */
    uint32_t handshake_backoff_ms;              /* default 10000 */
    int connection_log;       /* connectionLog, default 1: one "connection" line per closed connection */
    int access_log;           /* accessLog.enabled, default 0: one "access" line per exchange/connection */
    double access_log_sample; /* accessLog.sampleRate in [0, 1], default 1 */
    /* workload: who this proxy is, for metric labels and the access log (workload_meta.h); NULL: not said */
    char *workload_name, *workload_namespace, *workload_app, *workload_version, *workload_principal;
    char *log_level; /* default "info" */
    /* metrics.istioNames (Istio's "istio_" prefix instead of "ringmesh_"), metrics.maxSeriesPerMetric (default 2000;
     * 0: every label set folds), metrics.seriesExpiry (default 10m; 0: never) */
    int metrics_enabled; /* metrics.enabled, default 1: Istio's request and connection metrics are recorded */
    int metrics_istio_names;
    unsigned metrics_max_series;
    uint32_t metrics_expiry_ms;
    /* traffic.requestBalancing, default 0: outbound HTTP/1.x to an in-mesh destination with endpoints is served by
     * the proxy and each request balanced over pooled HTTP/2 mTLS connections (docs/traffic-management.md
     * "## Requests"); 0 keeps the connection-level path. traffic.*: the request path's knobs (retry budget,
     * retries, outlier detection, circuit breaking, timeouts), their defaults when the section is absent. */
    int request_balancing;
    rm_traffic_config_t traffic;
} rm_proxy_config_t;

/** Loads and validates `path`. On failure returns RM_ERR_CONFIG_* and writes a message naming the file, line
 *  and field into `err` (always NUL-terminated); *out is untouched. On success *out owns a new config. */
int rm_proxy_config_load(const char *path, rm_proxy_config_t **out, char *err, size_t errlen);

#define RM_PROXY_CONFIG_ENV_NAME_MAX 128

/** Loads and validates the YAML held by environment variable `name` (ringmesh-proxy --config-env NAME: a pod's
 *  configuration without a file). Messages name it "$NAME:LINE:COLUMN: FIELD: ..."; cfg->path is "$NAME". The
 *  same checks, limits and defaults as rm_proxy_config_load(); an unset variable is RM_ERR_CONFIG_IO. */
int rm_proxy_config_load_env(const char *name, rm_proxy_config_t **out, char *err, size_t errlen);

/** Applies environment overrides: RINGMESH_IO_BACKEND (auto|io_uring|epoll; "default" and "" are ignored),
 *  RINGMESH_KERNEL_TLS (auto|off), RINGMESH_WORKERS, RINGMESH_LOG_LEVEL. Returns 0 or RM_ERR_CONFIG_VALUE with a
 * message in `err`. */
int rm_proxy_config_apply_env(rm_proxy_config_t *cfg, char *err, size_t errlen);

/** Frees everything a config owns. NULL is fine. */
void rm_proxy_config_free(rm_proxy_config_t *cfg);

/** Parses "ip:port", "[ip6]:port" or a bare "port" (meaning 0.0.0.0:port). Returns 0 or -1. */
int rm_sockaddr_parse(const char *s, rm_sockaddr_t *out);

/** Returns the mode for inbound port `port` (port_modes first, then inbound_mode). */
rm_mtls_mode_t rm_proxy_config_port_mode(const rm_proxy_config_t *cfg, uint16_t port);

/** Finds the destination for an original destination address, or NULL when it is not in the mesh. */
const rm_destination_t *rm_proxy_config_find_destination(const rm_proxy_config_t *cfg, const struct sockaddr *sa);

#endif
