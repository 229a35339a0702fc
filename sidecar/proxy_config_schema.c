/* ringmesh-proxy's configuration file, read: passes 1 and 2 of the loader, and rm_proxy_config_load().
 *
 * Loading runs in three passes over one in-memory copy of the file:
 *
 *  1. libyaml's event parser walks the document once and records, for every node, its field path
 *     ("listeners[1].target") with the line and column of its key and of its value. This pass also rejects
 *     what the schema pass cannot place precisely: syntax errors, duplicate keys, aliases, several documents,
 *     a top level that is not a mapping, and nesting deeper than any valid file needs.
 *  2. libcyaml loads the document against a schema whose scalars are all strings. Its error messages and
 *     backtrace arrive through the log callback; they are folded into one message with the position from
 *     pass 1.
 *  3. The strings are converted and validated into rm_proxy_config_t (proxy_config.c); a failing field is
 *     located with the path map from pass 1.
 *
 * Every message has the form "FILE:LINE:COLUMN: FIELD.PATH: what is wrong" (ringmesh/config.h). */
#include "proxy_config_internal.h"

#include "ringmesh/error.h"
#include "ringmesh/yaml_load.h"

#include <cyaml/cyaml.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ---------------------------------------------------------------------------------------------------------
 * The schema.
 * ------------------------------------------------------------------------------------------------------- */

static const cyaml_schema_field_t tls_fields[] = {
    RM_CYAML_STR("certFile", raw_tls_t, cert_file),
    RM_CYAML_STR("keyFile", raw_tls_t, key_file),
    RM_CYAML_STR("bundleFile", raw_tls_t, bundle_file),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t node_fields[] = {
    RM_CYAML_STR("id", raw_node_t, id),
    RM_CYAML_STR("namespace", raw_node_t, namespace_),
    RM_CYAML_STR("serviceAccount", raw_node_t, service_account),
    RM_CYAML_STR_SEQ("labels", raw_node_t, labels, 256),
    RM_CYAML_STR("labelsFile", raw_node_t, labels_file),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t control_fields[] = {
    RM_CYAML_STR("address", raw_control_t, address),
    RM_CYAML_STR("serverName", raw_control_t, server_name),
    RM_CYAML_STR("identity", raw_control_t, identity),
    RM_CYAML_STR("bootstrapBundleFile", raw_control_t, bootstrap_bundle_file),
    RM_CYAML_STR("tokenFile", raw_control_t, token_file),
    RM_CYAML_STR("stateDir", raw_control_t, state_dir),
    RM_CYAML_STR("renewFraction", raw_control_t, renew_fraction),
    RM_CYAML_STR("svidTTL", raw_control_t, svid_ttl),
    RM_CYAML_STR("keepaliveTime", raw_control_t, keepalive_time),
    RM_CYAML_STR("keepaliveTimeout", raw_control_t, keepalive_timeout),
    CYAML_FIELD_MAPPING_PTR("node", RM_CYAML_OPT_NULL, raw_control_t, node, node_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t port_mode_fields[] = {
    RM_CYAML_STR("port", raw_port_mode_t, port),
    RM_CYAML_STR("mode", raw_port_mode_t, mode),
    CYAML_FIELD_END,
};
static const cyaml_schema_value_t port_mode_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, raw_port_mode_t, port_mode_fields),
};

static const cyaml_schema_field_t outbound_fields[] = {
    RM_CYAML_STR("enabled", raw_endpoint_t, enabled),
    RM_CYAML_STR("listen", raw_endpoint_t, listen),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t inbound_fields[] = {
    RM_CYAML_STR("enabled", raw_endpoint_t, enabled),
    RM_CYAML_STR("listen", raw_endpoint_t, listen),
    RM_CYAML_STR("mode", raw_endpoint_t, mode),
    CYAML_FIELD_SEQUENCE("portModes", RM_CYAML_OPT_NULL, raw_endpoint_t, port_modes, &port_mode_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t admin_fields[] = {
    RM_CYAML_STR("enabled", raw_endpoint_t, enabled),
    RM_CYAML_STR("listen", raw_endpoint_t, listen),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t destination_fields[] = {
    RM_CYAML_STR("address", raw_destination_t, address),
    RM_CYAML_STR_SEQ("identities", raw_destination_t, identities, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};
static const cyaml_schema_value_t destination_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, raw_destination_t, destination_fields),
};

static const cyaml_schema_field_t listener_fields[] = {
    RM_CYAML_STR("name", raw_listener_t, name),
    RM_CYAML_STR("type", raw_listener_t, type),
    RM_CYAML_STR("listen", raw_listener_t, listen),
    RM_CYAML_STR("target", raw_listener_t, target),
    RM_CYAML_STR("mode", raw_listener_t, mode),
    RM_CYAML_STR_SEQ("identities", raw_listener_t, identities, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};
static const cyaml_schema_value_t listener_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, raw_listener_t, listener_fields),
};

static const cyaml_schema_field_t path_normalization_fields[] = {
    RM_CYAML_STR("normalization", raw_path_normalization_t, normalization),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t authz_fields[] = {
    RM_CYAML_STR("policyDir", raw_authz_t, policy_dir),
    RM_CYAML_STR("defaultAction", raw_authz_t, default_action),
    RM_CYAML_STR("logAllowed", raw_authz_t, log_allowed),
    RM_CYAML_STR("logAttributes", raw_authz_t, log_attributes),
    CYAML_FIELD_MAPPING_PTR("pathNormalization", RM_CYAML_OPT_NULL, raw_authz_t, path_normalization,
                            path_normalization_fields),
    RM_CYAML_STR_SEQ("trustDomainAliases", raw_authz_t, trust_domain_aliases, CYAML_UNLIMITED),
    RM_CYAML_STR("numTrustedProxies", raw_authz_t, num_trusted_proxies),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t access_log_fields[] = {
    RM_CYAML_STR("enabled", raw_access_log_t, enabled),
    RM_CYAML_STR("sampleRate", raw_access_log_t, sample_rate),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t workload_fields[] = {
    RM_CYAML_STR("name", raw_workload_t, name),
    RM_CYAML_STR("namespace", raw_workload_t, namespace_),
    RM_CYAML_STR("app", raw_workload_t, app),
    RM_CYAML_STR("version", raw_workload_t, version),
    RM_CYAML_STR("principal", raw_workload_t, principal),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t metrics_fields[] = {
    RM_CYAML_STR("enabled", raw_metrics_t, enabled),
    RM_CYAML_STR("istioNames", raw_metrics_t, istio_names),
    RM_CYAML_STR("maxSeriesPerMetric", raw_metrics_t, max_series_per_metric),
    RM_CYAML_STR("seriesExpiry", raw_metrics_t, series_expiry),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t handshakes_fields[] = {
    RM_CYAML_STR("threads", raw_handshakes_t, threads),
    RM_CYAML_STR("priority", raw_handshakes_t, priority),
    RM_CYAML_STR("maxPending", raw_handshakes_t, max_pending),
    RM_CYAML_STR("backoffAfterFailures", raw_handshakes_t, backoff_after_failures),
    RM_CYAML_STR("failureWindow", raw_handshakes_t, failure_window),
    RM_CYAML_STR("backoff", raw_handshakes_t, backoff),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t retry_budget_fields[] = {
    RM_CYAML_STR("ratio", raw_retry_budget_t, ratio),
    RM_CYAML_STR("minRetriesPerSecond", raw_retry_budget_t, min_retries_per_second),
    RM_CYAML_STR("window", raw_retry_budget_t, window),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t retry_fields[] = {
    RM_CYAML_STR("attempts", raw_retry_t, attempts),
    RM_CYAML_STR_SEQ("codes", raw_retry_t, codes, 64),
    RM_CYAML_STR_SEQ("grpcStatuses", raw_retry_t, grpc_statuses, 64),
    RM_CYAML_STR("backoff", raw_retry_t, backoff),
    RM_CYAML_STR("maxBackoff", raw_retry_t, max_backoff),
    RM_CYAML_STR("bufferLimit", raw_retry_t, buffer_limit),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t outlier_fields[] = {
    RM_CYAML_STR("consecutive5xxErrors", raw_outlier_t, consecutive_5xx),
    RM_CYAML_STR("consecutiveGatewayErrors", raw_outlier_t, consecutive_gateway),
    RM_CYAML_STR("baseEjectionTime", raw_outlier_t, base_ejection_time),
    RM_CYAML_STR("maxEjectionTime", raw_outlier_t, max_ejection_time),
    RM_CYAML_STR("maxEjectionPercent", raw_outlier_t, max_ejection_percent),
    RM_CYAML_STR("interval", raw_outlier_t, interval),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t circuit_limits_fields[] = {
    RM_CYAML_STR("maxConnections", raw_circuit_limits_t, max_connections),
    RM_CYAML_STR("maxPendingRequests", raw_circuit_limits_t, max_pending_requests),
    RM_CYAML_STR("maxRequests", raw_circuit_limits_t, max_requests),
    RM_CYAML_STR("maxRetries", raw_circuit_limits_t, max_retries),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t circuit_fields[] = {
    RM_CYAML_STR("maxConnections", raw_circuit_t, limits.max_connections),
    RM_CYAML_STR("maxPendingRequests", raw_circuit_t, limits.max_pending_requests),
    RM_CYAML_STR("maxRequests", raw_circuit_t, limits.max_requests),
    RM_CYAML_STR("maxRetries", raw_circuit_t, limits.max_retries),
    CYAML_FIELD_MAPPING_PTR("perEndpoint", RM_CYAML_OPT_NULL, raw_circuit_t, per_endpoint, circuit_limits_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t traffic_fields[] = {
    RM_CYAML_STR("requestBalancing", raw_traffic_t, request_balancing),
    CYAML_FIELD_MAPPING_PTR("retryBudget", RM_CYAML_OPT_NULL, raw_traffic_t, retry_budget, retry_budget_fields),
    CYAML_FIELD_MAPPING_PTR("retry", RM_CYAML_OPT_NULL, raw_traffic_t, retry, retry_fields),
    CYAML_FIELD_MAPPING_PTR("outlierDetection", RM_CYAML_OPT_NULL, raw_traffic_t, outlier_detection, outlier_fields),
    CYAML_FIELD_MAPPING_PTR("circuitBreaker", RM_CYAML_OPT_NULL, raw_traffic_t, circuit_breaker, circuit_fields),
    RM_CYAML_STR("requestTimeout", raw_traffic_t, request_timeout),
    RM_CYAML_STR("idleTimeout", raw_traffic_t, idle_timeout),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t config_fields[] = {
    RM_CYAML_STR("trustDomain", raw_config_t, trust_domain),
    CYAML_FIELD_MAPPING_PTR("tls", RM_CYAML_OPT_NULL, raw_config_t, tls, tls_fields),
    CYAML_FIELD_MAPPING_PTR("control", RM_CYAML_OPT_NULL, raw_config_t, control, control_fields),
    CYAML_FIELD_MAPPING_PTR("outbound", RM_CYAML_OPT_NULL, raw_config_t, outbound, outbound_fields),
    CYAML_FIELD_MAPPING_PTR("inbound", RM_CYAML_OPT_NULL, raw_config_t, inbound, inbound_fields),
    CYAML_FIELD_SEQUENCE("destinations", RM_CYAML_OPT_NULL, raw_config_t, destinations, &destination_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("listeners", RM_CYAML_OPT_NULL, raw_config_t, listeners, &listener_entry, 0, CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING_PTR("admin", RM_CYAML_OPT_NULL, raw_config_t, admin, admin_fields),
    RM_CYAML_STR("workers", raw_config_t, workers),
    RM_CYAML_STR("ioBackend", raw_config_t, io_backend),
    RM_CYAML_STR("kernelTls", raw_config_t, kernel_tls),
    RM_CYAML_STR("maxConnections", raw_config_t, max_connections),
    RM_CYAML_STR("connectTimeout", raw_config_t, connect_timeout),
    RM_CYAML_STR("idleTimeout", raw_config_t, idle_timeout),
    RM_CYAML_STR("drainTimeout", raw_config_t, drain_timeout),
    RM_CYAML_STR("handshakeTimeout", raw_config_t, handshake_timeout),
    CYAML_FIELD_MAPPING_PTR("handshakes", RM_CYAML_OPT_NULL, raw_config_t, handshakes, handshakes_fields),
    RM_CYAML_STR("connectionLog", raw_config_t, connection_log),
    CYAML_FIELD_MAPPING_PTR("accessLog", RM_CYAML_OPT_NULL, raw_config_t, access_log, access_log_fields),
    CYAML_FIELD_MAPPING_PTR("workload", RM_CYAML_OPT_NULL, raw_config_t, workload, workload_fields),
    RM_CYAML_STR("logLevel", raw_config_t, log_level),
    CYAML_FIELD_MAPPING_PTR("authorization", RM_CYAML_OPT_NULL, raw_config_t, authorization, authz_fields),
    CYAML_FIELD_MAPPING_PTR("metrics", RM_CYAML_OPT_NULL, raw_config_t, metrics, metrics_fields),
    CYAML_FIELD_MAPPING_PTR("traffic", RM_CYAML_OPT_NULL, raw_config_t, traffic, traffic_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t config_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_config_t, config_fields),
};

/* ---------------------------------------------------------------------------------------------------------
 * Pass 1.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_load_ctx_t {
    rm_config_doc_t doc; /* first: the walk's report callback takes the context as the document */
    rm_yaml_pos_map_t *map;
    unsigned num_docs; /* YAML documents seen */
    int have_root;     /* the document's top mapping was seen */
} load_ctx_t;

static int walk_on_document(void *arg, rm_yaml_pos_t pos, rm_yaml_pos_map_t **map)
{
    load_ctx_t *ctx = arg;
    if (++ctx->num_docs > 1)
        return rm_config_report(&ctx->doc, RM_ERR_CONFIG_PARSE, pos, "(document)",
                                "the file holds more than one YAML document; only one is allowed");
    *map = ctx->map;
    return 0;
}

static int walk_on_root(void *arg, const yaml_event_t *ev, rm_yaml_pos_t pos)
{
    load_ctx_t *ctx = arg;
    if (ev->type != YAML_MAPPING_START_EVENT) {
        const char *what = rm_yaml_event_kind(ev->type);
        if (ev->type == YAML_SCALAR_EVENT && ev->data.scalar.length == 0 &&
            ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
            what = "an empty document";
        return rm_config_report(&ctx->doc, RM_ERR_CONFIG_PARSE, pos, "(document)",
                                "the top level must be a mapping of settings, not %s", what);
    }
    ctx->have_root = 1;
    return 0;
}

static int walk_document(load_ctx_t *ctx, const char *data, size_t len)
{
    const rm_yaml_walk_ops_t ops = {
        .arg = ctx,
        .report = rm_config_vreport,
        .document = walk_on_document,
        .root = walk_on_root,
    };
    int ret;

    if ((ret = rm_yaml_walk(data, len, &ops)) != 0)
        return ret;
    if (!ctx->have_root)
        return rm_config_report(&ctx->doc, RM_ERR_CONFIG_PARSE, (rm_yaml_pos_t){1, 1}, "(document)",
                                "the file is empty; want a mapping of settings");
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------
 * Pass 2: libcyaml, with its log messages captured.
 * ------------------------------------------------------------------------------------------------------- */

int rm__proxy_config_parse(const char *path, rm_config_doc_t *doc, rm_yaml_pos_map_t *map, raw_config_t **out)
{
    char *data = NULL;
    size_t len = 0;
    int ret;

    if (rm_file_read_at(AT_FDCWD, path, NULL, CONFIG_FILE_MAX, RM_FILE_REGULAR, &data, &len, doc->err) != 0)
        return doc->err != NULL ? (doc->err->code = RM_ERR_CONFIG_IO) : RM_ERR_CONFIG_IO;
    ret = rm__proxy_config_parse_text(data, len, doc, map, out);
    free(data);
    return ret;
}

int rm__proxy_config_parse_text(const char *data, size_t len, rm_config_doc_t *doc, rm_yaml_pos_map_t *map,
                                raw_config_t **out)
{
    load_ctx_t ctx = {.doc = *doc, .map = map};
    rm_yaml_cyaml_capture_t *cap = NULL;
    cyaml_config_t cyaml_cfg = rm_yaml_cyaml_config;
    raw_config_t *raw = NULL;
    char *expanded = NULL;
    size_t expanded_len = 0;
    cyaml_err_t cerr;
    int ret;

    /* pass 1: positions, and the errors libcyaml cannot place */
    if ((ret = walk_document(&ctx, data, len)) != 0)
        goto Exit;

    /* pass 2: schema */
    if ((cap = calloc(1, sizeof(*cap))) == NULL) {
        ret = rm_config_report(doc, RM_ERR_CONFIG_PARSE, (rm_yaml_pos_t){1, 1}, "", "out of memory");
        goto Exit;
    }
    cyaml_cfg.log_ctx = cap;
    /* accessLog: true|false stands for accessLog: {enabled: true|false} */
    if (rm_yaml_scalar_shorthand(data, len, "accessLog", "enabled", &expanded, &expanded_len) != 0) {
        ret = rm_config_report(doc, RM_ERR_CONFIG_PARSE, (rm_yaml_pos_t){1, 1}, "", "out of memory");
        goto Exit;
    }
    if (expanded != NULL) {
        data = expanded;
        len = expanded_len;
    }
    if ((cerr = cyaml_load_data((const uint8_t *)data, len, &cyaml_cfg, &config_schema, (cyaml_data_t **)&raw, NULL)) !=
        CYAML_OK) {
        raw = NULL;
        ret = rm_yaml_report_cyaml_error(cap, cerr, config_fields, map, (rm_yaml_pos_t){1, 1}, rm_config_vreport, doc);
        goto Exit;
    }
    if (raw == NULL) {
        ret =
            rm_config_report(doc, RM_ERR_CONFIG_PARSE, (rm_yaml_pos_t){1, 1}, "", "the file is empty; want a mapping");
        goto Exit;
    }
    *out = raw;
    ret = 0;

Exit:
    free(expanded);
    free(cap);
    return ret;
}

void rm__proxy_config_raw_free(raw_config_t *raw)
{
    if (raw != NULL)
        cyaml_free(&rm_yaml_cyaml_config, &config_schema, raw, 0);
}

/* ---------------------------------------------------------------------------------------------------------
 * The whole load.
 * ------------------------------------------------------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *what)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", what);
}

static int set_defaults(rm_proxy_config_t *cfg)
{
    if ((cfg->trust_domain = strdup("cluster.local")) == NULL || (cfg->log_level = strdup("info")) == NULL)
        return -ENOMEM;
    cfg->outbound_enabled = 1;
    rm_sockaddr_parse("[::]:15001", &cfg->outbound_listen);
    cfg->inbound_enabled = 1;
    rm_sockaddr_parse("[::]:15006", &cfg->inbound_listen);
    cfg->inbound_mode = RM_MTLS_STRICT;
    cfg->admin_enabled = 1;
    rm_sockaddr_parse("127.0.0.1:15021", &cfg->admin_listen);
    cfg->workers = 1;
    cfg->io_backend = RM_IO_AUTO;
    cfg->kernel_tls = 1;
    cfg->max_connections = 4096;
    cfg->connect_timeout_ms = 5000;
    cfg->idle_timeout_ms = 3600000;
    cfg->drain_timeout_ms = 5000;
    cfg->handshake_timeout_ms = 10000;
    cfg->handshake_threads = 1;
    cfg->handshake_priority = RM_HANDSHAKE_PRIORITY_LOW;
    cfg->max_pending_handshakes = 128;
    cfg->handshake_backoff_failures = 20;
    cfg->handshake_failure_window_ms = 10000;
    cfg->handshake_backoff_ms = 10000;
    cfg->connection_log = 1;
    cfg->access_log = 0;
    cfg->access_log_sample = 1;
    cfg->metrics_enabled = 1;
    cfg->metrics_max_series = 2000;
    cfg->metrics_expiry_ms = 600000;
    cfg->request_balancing = 0;
    rm_traffic_config_defaults(&cfg->traffic);
    return 0;
}

/* Passes 1 to 3 over a document read from `path`, or held in `text` (then `path` is only how messages name it). */
static int load(const char *path, const char *text, size_t text_len, rm_proxy_config_t **out, char *err, size_t errlen)
{
    rm_config_error_t *e = NULL;
    rm_yaml_pos_map_t map = {0};
    rm_config_doc_t doc = {.file = path, .map = &map, .fallback = {1, 1}};
    raw_config_t *raw = NULL;
    rm_proxy_config_t *cfg = NULL;
    int ret;

    if ((e = calloc(1, sizeof(*e))) == NULL) {
        set_err(err, errlen, "out of memory");
        return RM_ERR_CONFIG_IO;
    }
    doc.err = e;
    if (text != NULL)
        ret = rm__proxy_config_parse_text(text, text_len, &doc, &map, &raw);
    else
        ret = rm__proxy_config_parse(path, &doc, &map, &raw);
    if (ret != 0)
        goto Exit;

    /* pass 3: values */
    if ((cfg = calloc(1, sizeof(*cfg))) == NULL || (cfg->path = strdup(path)) == NULL || set_defaults(cfg) != 0) {
        ret = rm_config_report(&doc, RM_ERR_CONFIG_VALUE, (rm_yaml_pos_t){1, 1}, "", "out of memory");
        goto Exit;
    }
    if ((ret = rm__proxy_config_convert(&doc, raw, cfg)) != 0)
        goto Exit;

    *out = cfg;
    cfg = NULL;
    ret = 0;

Exit:
    if (ret != 0)
        rm_config_error_format(e, err, errlen);
    rm__proxy_config_raw_free(raw);
    rm_proxy_config_free(cfg);
    rm_yaml_pos_map_dispose(&map);
    free(e);
    return ret;
}

int rm_proxy_config_load(const char *path, rm_proxy_config_t **out, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (path == NULL || out == NULL) {
        set_err(err, errlen, "(null): no configuration file given");
        return RM_ERR_CONFIG_IO;
    }
    return load(path, NULL, 0, out, err, errlen);
}

int rm_proxy_config_load_env(const char *name, rm_proxy_config_t **out, char *err, size_t errlen)
{
    char shown[RM_PROXY_CONFIG_ENV_NAME_MAX + 2];
    const char *text;
    size_t len;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (name == NULL || out == NULL || name[0] == '\0') {
        set_err(err, errlen, "(null): no environment variable given");
        return RM_ERR_CONFIG_IO;
    }
    if (strlen(name) > RM_PROXY_CONFIG_ENV_NAME_MAX || strchr(name, '=') != NULL) {
        set_err(err, errlen, "--config-env: not an environment variable name (at most 128 characters, no '=')");
        return RM_ERR_CONFIG_IO;
    }
    snprintf(shown, sizeof(shown), "$%s", name);
    if ((text = getenv(name)) == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: the environment variable is not set", shown);
        return RM_ERR_CONFIG_IO;
    }
    if ((len = strlen(text)) > CONFIG_FILE_MAX) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: larger than %u bytes", shown, CONFIG_FILE_MAX);
        return RM_ERR_CONFIG_IO;
    }
    return load(shown, text, len, out, err, errlen);
}
