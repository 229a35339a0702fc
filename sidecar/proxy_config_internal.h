/* Between the proxy configuration's two halves: proxy_config_schema.c reads the file into the raw document
 * (every scalar a string, every node's position recorded), proxy_config.c converts the raw document into
 * rm_proxy_config_t. Not part of the proxy's contract: only these two files include it. */
#ifndef RINGMESH_PROXY_CONFIG_INTERNAL_H
#define RINGMESH_PROXY_CONFIG_INTERNAL_H

#include "proxy_config.h"

#include "ringmesh/config.h"

#define CONFIG_FILE_MAX    (4u << 20) /* a larger file is refused before parsing */
#define CONFIG_WORKERS_MAX 64u
#define CONFIG_CONN_MAX    1000000u

/* ---------------------------------------------------------------------------------------------------------
 * Raw document: what libcyaml fills. Every scalar is a string so that conversion errors are ours to word.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_raw_tls_t {
    char *cert_file;
    char *key_file;
    char *bundle_file;
} raw_tls_t;

typedef struct st_raw_node_t {
    char *id;
    char *namespace_;
    char *service_account;
    char **labels;
    unsigned labels_count;
    char *labels_file;
} raw_node_t;

typedef struct st_raw_control_t {
    char *address;
    char *server_name;
    char *identity;
    char *bootstrap_bundle_file;
    char *token_file;
    char *state_dir;
    char *renew_fraction;
    char *svid_ttl;
    char *keepalive_time;
    char *keepalive_timeout;
    raw_node_t *node;
} raw_control_t;

typedef struct st_raw_port_mode_t {
    char *port;
    char *mode;
} raw_port_mode_t;

/* outbound, inbound and admin share the struct; each has its own field list, so "mode" under outbound is
 * still an unknown key. */
typedef struct st_raw_endpoint_t {
    char *enabled;
    char *listen;
    char *mode;
    raw_port_mode_t *port_modes;
    unsigned port_modes_count;
} raw_endpoint_t;

typedef struct st_raw_destination_t {
    char *address;
    char **identities;
    unsigned identities_count;
} raw_destination_t;

typedef struct st_raw_listener_t {
    char *name;
    char *type;
    char *listen;
    char *target;
    char *mode;
    char **identities;
    unsigned identities_count;
} raw_listener_t;

typedef struct st_raw_path_normalization_t {
    char *normalization;
} raw_path_normalization_t;

typedef struct st_raw_authz_t {
    char *policy_dir;
    char *default_action;
    char *log_allowed;
    char *log_attributes;
    raw_path_normalization_t *path_normalization;
    char **trust_domain_aliases;
    unsigned trust_domain_aliases_count;
    char *num_trusted_proxies;
} raw_authz_t;

typedef struct st_raw_access_log_t {
    char *enabled;
    char *sample_rate;
} raw_access_log_t;

typedef struct st_raw_workload_t {
    char *name, *namespace_, *app, *version, *principal;
} raw_workload_t;
typedef struct st_raw_metrics_t {
    char *enabled;
    char *istio_names;
    char *max_series_per_metric;
    char *series_expiry;
} raw_metrics_t;

typedef struct st_raw_handshakes_t {
    char *threads, *priority, *max_pending, *backoff_after_failures, *failure_window, *backoff;
} raw_handshakes_t;
/* traffic: the request path's switch and the knobs of ringmesh/traffic_config.h (proxy_config_traffic.c) */
typedef struct st_raw_retry_budget_t {
    char *ratio, *min_retries_per_second, *window;
} raw_retry_budget_t;

typedef struct st_raw_retry_t {
    char *attempts;
    char **codes;
    unsigned codes_count;
    char **grpc_statuses;
    unsigned grpc_statuses_count;
    char *backoff, *max_backoff, *buffer_limit;
} raw_retry_t;

typedef struct st_raw_outlier_t {
    char *consecutive_5xx, *consecutive_gateway, *base_ejection_time, *max_ejection_time, *max_ejection_percent,
        *interval;
} raw_outlier_t;

typedef struct st_raw_circuit_limits_t {
    char *max_connections, *max_pending_requests, *max_requests, *max_retries;
} raw_circuit_limits_t;

typedef struct st_raw_circuit_t {
    raw_circuit_limits_t limits; /* first: the per-destination keys sit at the mapping's top */
    raw_circuit_limits_t *per_endpoint;
} raw_circuit_t;

typedef struct st_raw_traffic_t {
    char *request_balancing;
    raw_retry_budget_t *retry_budget;
    raw_retry_t *retry;
    raw_outlier_t *outlier_detection;
    raw_circuit_t *circuit_breaker;
    char *request_timeout;
    char *idle_timeout;
} raw_traffic_t;

typedef struct st_raw_config_t {
    char *trust_domain;
    raw_authz_t *authorization;
    raw_tls_t *tls;
    raw_control_t *control;
    raw_endpoint_t *outbound;
    raw_endpoint_t *inbound;
    raw_destination_t *destinations;
    unsigned destinations_count;
    raw_listener_t *listeners;
    unsigned listeners_count;
    raw_endpoint_t *admin;
    char *workers;
    char *io_backend;
    char *kernel_tls;
    char *max_connections;
    char *connect_timeout;
    char *idle_timeout;
    char *drain_timeout;
    char *handshake_timeout;
    char *connection_log;
    raw_access_log_t *access_log;
    raw_workload_t *workload;
    char *log_level;
    raw_metrics_t *metrics;
    raw_handshakes_t *handshakes;
    raw_traffic_t *traffic;
} raw_config_t;

/** Converts `handshakes` (proxy_config_handshakes.c). Returns 0 or RM_ERR_CONFIG_VALUE recorded in ctx. */
int rm__proxy_config_convert_handshakes(rm_config_doc_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg);

/** Passes 1 and 2: reads `path` and loads it against the schema. Returns 0 with *out (free it with
 *  rm__proxy_config_raw_free()) and the positions in `map`, or an RM_ERR_CONFIG_* recorded in doc->err. */
int rm__proxy_config_parse(const char *path, rm_config_doc_t *doc, rm_yaml_pos_map_t *map, raw_config_t **out);

/** rm__proxy_config_parse() over a document already in memory (data[0..len), NUL-terminated or not); doc->file
 *  names it in messages. */
int rm__proxy_config_parse_text(const char *data, size_t len, rm_config_doc_t *doc, rm_yaml_pos_map_t *map,
                                raw_config_t **out);

/** Frees what rm__proxy_config_parse() returned. NULL is fine. */
void rm__proxy_config_raw_free(raw_config_t *raw);

/** Pass 3 for connectionLog, accessLog and workload (proxy_config_observe.c). Returns 0 or RM_ERR_CONFIG_VALUE. */
int rm__proxy_config_convert_observe(rm_config_doc_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg);

/** Pass 3 for traffic (proxy_config_traffic.c): traffic.requestBalancing and the knobs of ringmesh/traffic_config.h,
 *  each refusal naming `traffic.<key>`. Returns 0 or RM_ERR_CONFIG_VALUE. */
int rm__proxy_config_convert_traffic(rm_config_doc_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg);

/** Pass 3: converts and validates `raw` into `cfg` (which holds the defaults). Returns 0 or RM_ERR_CONFIG_VALUE
 *  recorded in ctx->err; `cfg` may then be partly filled (rm_proxy_config_free() frees it). */
int rm__proxy_config_convert(rm_config_doc_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg);

#endif
