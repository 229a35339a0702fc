/* The mesh's MeshConfig and Service documents, one file at a time: YAML text -> settings and pending services of
 * the load (mesh_load.c checks them across files and builds the model).
 *
 * A file is read in three passes, the way the proxy reads its configuration (sidecar/proxy_config_schema.c):
 *
 *  1. libyaml's event parser walks the whole file once and notes where each document begins and, for every node
 *     of each document, its field path ("spec.ports[1]") with the line and column of its key and of its value.
 *     This pass also rejects what the schema pass cannot place precisely (syntax errors, duplicate keys, aliases,
 *     documents that are not mappings, nesting deeper than any valid document needs) and notes each document's
 *     apiVersion and kind, since the kind chooses the schema.
 *  2. libcyaml loads each document against its kind's schema, every scalar as a string. libcyaml reads the first
 *     document of a buffer, so it is given the document's own lines (documents begin at the start of a line),
 *     and the lines in its messages are shifted by the lines before them.
 *  3. The strings are converted and validated with lib/config's converters.
 *
 * Every message has the form "FILE:LINE:COLUMN: FIELD.PATH: what is wrong". */
#include "mesh_load_internal.h"

#include "ca.h"
#include "service_endpoints.h"

#include "ringmesh/config.h"
#include "ringmesh/error.h"
#include "ringmesh/svid.h"
#include "ringmesh/yaml_load.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <cyaml/cyaml.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define API_VERSION       "ringmesh.io/v1alpha1"
#define SVID_TTL_MAX_S    (8760u * 3600u) /* one year */
#define DEFAULT_NAMESPACE "default"

/* ---------------------------------------------------------------------------------------------------------
 * Raw documents: what libcyaml fills. Every scalar is a string so that conversion errors are ours to word.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_raw_metadata_t {
    char *name;
    char *namespace_;
} raw_metadata_t;

typedef struct st_raw_mtls_t {
    char *mode;
} raw_mtls_t;

typedef struct st_raw_path_normalization_t {
    char *normalization;
} raw_path_normalization_t;

typedef struct st_raw_authz_t {
    char *default_action;
    char *log_allowed;
    char *log_allowed_sample_rate;
    raw_path_normalization_t *path_normalization;
    char *log_attributes;
} raw_authz_t;

typedef struct st_raw_access_log_t {
    char *enabled;
    char *sample_rate;
} raw_access_log_t;

typedef struct st_raw_mesh_metrics_t {
    char *istio_names;
    char *max_series_per_metric;
    char *series_expiry;
} raw_mesh_metrics_t;

typedef struct st_raw_gateway_topology_t {
    char *num_trusted_proxies;
} raw_gateway_topology_t;

typedef struct st_raw_default_config_t {
    raw_gateway_topology_t *gateway_topology;
} raw_default_config_t;

typedef struct st_raw_mesh_spec_t {
    char *trust_domain;
    char **trust_domain_aliases;
    unsigned trust_domain_aliases_count;
    char *root_namespace;
    raw_authz_t *authorization;
    raw_mtls_t *mtls;
    char *svid_ttl;
    char *connect_timeout;
    char *idle_timeout;
    raw_access_log_t *access_log;
    raw_mesh_metrics_t *metrics;
    raw_default_config_t *default_config;
} raw_mesh_spec_t;

typedef struct st_raw_workload_spec_t {
    char **addresses;
    unsigned addresses_count;
    char *service_account;
    char *workload;
    char *app;
    char *version;
    char *access_log;
} raw_workload_spec_t;

typedef struct st_raw_service_spec_t {
    char **addresses;
    unsigned addresses_count;
    char **ports;
    unsigned ports_count;
    char *in_mesh;
    char **service_accounts;
    unsigned service_accounts_count;
    char **identities;
    unsigned identities_count;
    rm__raw_endpoint_t *endpoints; /* service_endpoints.h */
    unsigned endpoints_count;
} raw_service_spec_t;

/* One struct for every kind; each kind's schema maps "spec" to its own member, so a key of another kind's spec
 * is still an unknown key. */
typedef struct st_raw_doc_t {
    char *api_version;
    char *kind;
    raw_metadata_t *metadata;
    raw_mesh_spec_t *mesh_spec;
    raw_service_spec_t *service_spec;
    raw_workload_spec_t *workload_spec;
} raw_doc_t;

static const cyaml_schema_field_t mesh_metadata_fields[] = {
    RM_CYAML_STR("name", raw_metadata_t, name),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t service_metadata_fields[] = {
    RM_CYAML_STR("name", raw_metadata_t, name),
    RM_CYAML_STR("namespace", raw_metadata_t, namespace_),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t mtls_fields[] = {
    RM_CYAML_STR("mode", raw_mtls_t, mode),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t path_normalization_fields[] = {
    RM_CYAML_STR("normalization", raw_path_normalization_t, normalization),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t authz_fields[] = {
    RM_CYAML_STR("defaultAction", raw_authz_t, default_action),
    RM_CYAML_STR("logAllowed", raw_authz_t, log_allowed),
    RM_CYAML_STR("logAllowedSampleRate", raw_authz_t, log_allowed_sample_rate),
    RM_CYAML_STR("logAttributes", raw_authz_t, log_attributes),
    CYAML_FIELD_MAPPING_PTR("pathNormalization", RM_CYAML_OPT_NULL, raw_authz_t, path_normalization,
                            path_normalization_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t access_log_fields[] = {
    RM_CYAML_STR("enabled", raw_access_log_t, enabled),
    RM_CYAML_STR("sampleRate", raw_access_log_t, sample_rate),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t mesh_metrics_fields[] = {
    RM_CYAML_STR("istioNames", raw_mesh_metrics_t, istio_names),
    RM_CYAML_STR("maxSeriesPerMetric", raw_mesh_metrics_t, max_series_per_metric),
    RM_CYAML_STR("seriesExpiry", raw_mesh_metrics_t, series_expiry),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t gateway_topology_fields[] = {
    RM_CYAML_STR("numTrustedProxies", raw_gateway_topology_t, num_trusted_proxies),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t default_config_fields[] = {
    CYAML_FIELD_MAPPING_PTR("gatewayTopology", RM_CYAML_OPT_NULL, raw_default_config_t, gateway_topology,
                            gateway_topology_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t mesh_spec_fields[] = {
    RM_CYAML_STR("trustDomain", raw_mesh_spec_t, trust_domain),
    RM_CYAML_STR_SEQ("trustDomainAliases", raw_mesh_spec_t, trust_domain_aliases, CYAML_UNLIMITED),
    RM_CYAML_STR("rootNamespace", raw_mesh_spec_t, root_namespace),
    CYAML_FIELD_MAPPING_PTR("authorization", RM_CYAML_OPT_NULL, raw_mesh_spec_t, authorization, authz_fields),
    CYAML_FIELD_MAPPING_PTR("mtls", RM_CYAML_OPT_NULL, raw_mesh_spec_t, mtls, mtls_fields),
    RM_CYAML_STR("svidTTL", raw_mesh_spec_t, svid_ttl),
    RM_CYAML_STR("connectTimeout", raw_mesh_spec_t, connect_timeout),
    RM_CYAML_STR("idleTimeout", raw_mesh_spec_t, idle_timeout),
    CYAML_FIELD_MAPPING_PTR("accessLog", RM_CYAML_OPT_NULL, raw_mesh_spec_t, access_log, access_log_fields),
    CYAML_FIELD_MAPPING_PTR("metrics", RM_CYAML_OPT_NULL, raw_mesh_spec_t, metrics, mesh_metrics_fields),
    CYAML_FIELD_MAPPING_PTR("defaultConfig", RM_CYAML_OPT_NULL, raw_mesh_spec_t, default_config, default_config_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t service_spec_fields[] = {
    RM_CYAML_STR_SEQ("addresses", raw_service_spec_t, addresses, CYAML_UNLIMITED),
    RM_CYAML_STR_SEQ("ports", raw_service_spec_t, ports, CYAML_UNLIMITED),
    RM_CYAML_STR("inMesh", raw_service_spec_t, in_mesh),
    RM_CYAML_STR_SEQ("serviceAccounts", raw_service_spec_t, service_accounts, CYAML_UNLIMITED),
    RM_CYAML_STR_SEQ("identities", raw_service_spec_t, identities, CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("endpoints", RM_CYAML_OPT_NULL, raw_service_spec_t, endpoints, &rm__raw_endpoint_schema, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t mesh_doc_fields[] = {
    RM_CYAML_STR("apiVersion", raw_doc_t, api_version),
    RM_CYAML_STR("kind", raw_doc_t, kind),
    CYAML_FIELD_MAPPING_PTR("metadata", RM_CYAML_OPT_NULL, raw_doc_t, metadata, mesh_metadata_fields),
    CYAML_FIELD_MAPPING_PTR("spec", RM_CYAML_OPT_NULL, raw_doc_t, mesh_spec, mesh_spec_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t service_doc_fields[] = {
    RM_CYAML_STR("apiVersion", raw_doc_t, api_version),
    RM_CYAML_STR("kind", raw_doc_t, kind),
    CYAML_FIELD_MAPPING_PTR("metadata", RM_CYAML_OPT_NULL, raw_doc_t, metadata, service_metadata_fields),
    CYAML_FIELD_MAPPING_PTR("spec", RM_CYAML_OPT_NULL, raw_doc_t, service_spec, service_spec_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t workload_spec_fields[] = {
    RM_CYAML_STR_SEQ("addresses", raw_workload_spec_t, addresses, CYAML_UNLIMITED),
    RM_CYAML_STR("serviceAccount", raw_workload_spec_t, service_account),
    RM_CYAML_STR("workload", raw_workload_spec_t, workload),
    RM_CYAML_STR("app", raw_workload_spec_t, app),
    RM_CYAML_STR("version", raw_workload_spec_t, version),
    RM_CYAML_STR("accessLog", raw_workload_spec_t, access_log),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t workload_doc_fields[] = {
    RM_CYAML_STR("apiVersion", raw_doc_t, api_version),
    RM_CYAML_STR("kind", raw_doc_t, kind),
    CYAML_FIELD_MAPPING_PTR("metadata", RM_CYAML_OPT_NULL, raw_doc_t, metadata, service_metadata_fields),
    CYAML_FIELD_MAPPING_PTR("spec", RM_CYAML_OPT_NULL, raw_doc_t, workload_spec, workload_spec_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t workload_doc_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_doc_t, workload_doc_fields),
};

static const cyaml_schema_value_t mesh_doc_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_doc_t, mesh_doc_fields),
};

static const cyaml_schema_value_t service_doc_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_doc_t, service_doc_fields),
};

/* ---------------------------------------------------------------------------------------------------------
 * One file's documents.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_doc_t {
    unsigned first_line; /* the file's line where the document's text begins ("---", a directive or its root) */
    size_t begin;        /* byte offset of that line */
    rm_yaml_pos_t pos;   /* the root node */
    int is_null;         /* nothing in it (a trailing "---"): skipped */
    rm_yaml_pos_map_t map;
    char *api_version, *kind; /* root scalars; NULL when absent or not scalars */
} doc_t;

typedef struct st_file_ctx_t {
    rm_config_doc_t cdoc; /* first: the walk's report callback takes the context as the document */
    loader_t *ld;
    size_t file_index;
    const char *file;
    const char *data;
    size_t len;
    doc_t *docs;
    size_t num_docs;
    doc_t *doc; /* the one being converted */
} file_ctx_t;

static const char *const mode_names[] = {"STRICT", "PERMISSIVE", "DISABLE", NULL};
static const int mode_values[] = {RM_MODEL_MTLS_STRICT, RM_MODEL_MTLS_PERMISSIVE, RM_MODEL_MTLS_DISABLE};

/* A duration of at most about 49 days, in ms. */
static int conv_timeout(rm_config_doc_t *doc, const char *path, const char *s, uint32_t *out)
{
    uint64_t v;
    int ret;
    if (s == NULL)
        return 0;
    if ((ret = rm_config_conv_duration(doc, path, s, UINT32_MAX, &v)) == 0)
        *out = (uint32_t)v;
    return ret;
}

/* ---------------------------------------------------------------------------------------------------------
 * Pass 1: documents and positions, from libyaml events.
 * ------------------------------------------------------------------------------------------------------- */

/* Sets each document's `begin` from its `first_line` (they increase with the document's index). */
static void locate_documents(file_ctx_t *ctx)
{
    unsigned line = 1;
    size_t i = 0, d = 0;

    while (d < ctx->num_docs) {
        if (ctx->docs[d].first_line <= line) {
            ctx->docs[d++].begin = i;
            continue;
        }
        if (i >= ctx->len) {
            ctx->docs[d++].begin = ctx->len;
            continue;
        }
        size_t b = rm_yaml_line_break_len(ctx->data, ctx->len, i);
        if (b != 0) {
            line++;
            i += b;
        } else {
            i++;
        }
    }
}

static int is_null_scalar(const yaml_event_t *ev)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || ev->data.scalar.tag != NULL)
        return 0;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp((const char *)ev->data.scalar.value, nulls[i]) == 0)
            return 1;
    return 0;
}

static int add_document(file_ctx_t *ctx, rm_yaml_pos_t pos)
{
    doc_t *docs = realloc(ctx->docs, (ctx->num_docs + 1) * sizeof(*docs));
    if (docs == NULL)
        return -ENOMEM;
    ctx->docs = docs;
    ctx->doc = &docs[ctx->num_docs++];
    memset(ctx->doc, 0, sizeof(*ctx->doc));
    ctx->doc->first_line = pos.line;
    ctx->doc->pos = pos;
    return 0;
}

static int walk_on_document(void *arg, rm_yaml_pos_t pos, rm_yaml_pos_map_t **map)
{
    file_ctx_t *ctx = arg;
    if (add_document(ctx, pos) != 0)
        return rm_config_report(&ctx->cdoc, RM_ERR_CONFIG_PARSE, pos, "", "out of memory");
    *map = &ctx->doc->map;
    return 0;
}

static int walk_on_root(void *arg, const yaml_event_t *ev, rm_yaml_pos_t pos)
{
    file_ctx_t *ctx = arg;
    ctx->doc->pos = pos;
    if (ev->type == YAML_SCALAR_EVENT && is_null_scalar(ev)) {
        ctx->doc->is_null = 1;
        return RM_YAML_WALK_SKIP;
    }
    if (ev->type != YAML_MAPPING_START_EVENT)
        return rm_config_report(&ctx->cdoc, RM_ERR_CONFIG_PARSE, pos, "",
                                "a document must be a mapping (apiVersion, kind, metadata, spec), not %s",
                                rm_yaml_event_kind(ev->type));
    return 0;
}

/* The root mapping's apiVersion and kind, which say how the rest of the document is read. */
static int walk_on_top_scalar(void *arg, const char *key, const char *value, rm_yaml_pos_t pos)
{
    file_ctx_t *ctx = arg;
    char **slot = strcmp(key, "apiVersion") == 0 ? &ctx->doc->api_version
                  : strcmp(key, "kind") == 0     ? &ctx->doc->kind
                                                 : NULL;
    if (slot != NULL && *slot == NULL && (*slot = strdup(value)) == NULL)
        return rm_config_report(&ctx->cdoc, RM_ERR_CONFIG_PARSE, pos, key, "out of memory");
    return 0;
}

static int walk_file(file_ctx_t *ctx)
{
    const rm_yaml_walk_ops_t ops = {
        .arg = ctx,
        .report = rm_config_vreport,
        .document = walk_on_document,
        .root = walk_on_root,
        .top_scalar = walk_on_top_scalar,
    };
    int ret;

    /* libyaml would decode UTF-16, but the documents are cut out of the file by byte offsets of UTF-8 lines */
    if (ctx->len >= 2 && ((unsigned char)ctx->data[0] == 0xfe || (unsigned char)ctx->data[0] == 0xff) &&
        ((unsigned char)ctx->data[1] == 0xfe || (unsigned char)ctx->data[1] == 0xff))
        return rm_config_error_set(ctx->ld->err, RM_ERR_CONFIG_PARSE, ctx->file, (rm_yaml_pos_t){1, 1}, NULL,
                                   "the file is UTF-16; write it in UTF-8");
    if ((ret = rm_yaml_walk(ctx->data, ctx->len, &ops)) == 0)
        locate_documents(ctx);
    return ret;
}

/* ---------------------------------------------------------------------------------------------------------
 * Pass 3: MeshConfig.
 * ------------------------------------------------------------------------------------------------------- */

static int conv_metadata_name(file_ctx_t *ctx, const raw_doc_t *raw, int label, const char *kind)
{
    if (raw->metadata == NULL)
        return rm_config_value_error(&ctx->cdoc, "metadata", "is required (a %s needs metadata.name)", kind);
    if (raw->metadata->name == NULL)
        return rm_config_value_error(&ctx->cdoc, "metadata.name", "is required");
    return rm_config_conv_dns_name(&ctx->cdoc, "metadata.name", raw->metadata->name, label, NULL);
}

/* spec.trustDomainAliases: the trust domains this mesh was known as (Istio's MeshConfig field), for policies */
static int conv_trust_domain_aliases(file_ctx_t *ctx, const raw_mesh_spec_t *spec, rm_mesh_settings_t *s)
{
    char path[64];
    int ret;
    if (spec->trust_domain_aliases_count > RM_MODEL_MAX_TRUST_DOMAIN_ALIASES)
        return rm_config_value_error(&ctx->cdoc, "spec.trustDomainAliases", "has %u entries; at most %d are allowed",
                                     spec->trust_domain_aliases_count, RM_MODEL_MAX_TRUST_DOMAIN_ALIASES);
    if (spec->trust_domain_aliases_count == 0)
        return 0;
    char **v = calloc(spec->trust_domain_aliases_count, sizeof(*v));
    if (v == NULL)
        return rm_config_value_error(&ctx->cdoc, "spec.trustDomainAliases", "out of memory");
    rm__mesh_settings_aliases_free(s);
    s->trust_domain_aliases = v;
    for (unsigned i = 0; i < spec->trust_domain_aliases_count; i++) {
        snprintf(path, sizeof(path), "spec.trustDomainAliases[%u]", i);
        if ((ret = rm_config_conv_trust_domain(&ctx->cdoc, path, spec->trust_domain_aliases[i], &v[i])) != 0)
            return ret;
        s->num_trust_domain_aliases++;
    }
    return 0;
}

static int convert_mesh_config(file_ctx_t *ctx, const raw_doc_t *raw)
{
    loader_t *ld = ctx->ld;
    rm_mesh_settings_t *s = &ld->settings;
    const raw_mesh_spec_t *spec = raw->mesh_spec;
    char q[96];
    uint64_t ms;
    int ret, mode;

    if (ld->have_mesh)
        return rm_config_value_error(&ctx->cdoc, "kind",
                                     "a second MeshConfig (the first is at %s:%u); at most one is allowed",
                                     ld->files[ld->mesh_file], ld->mesh_pos.line);
    if ((ret = conv_metadata_name(ctx, raw, 0, "MeshConfig")) != 0)
        return ret;
    ld->have_mesh = 1;
    ld->mesh_file = ctx->file_index;
    ld->mesh_pos = ctx->doc->pos;
    if (spec == NULL)
        return 0;

    if ((ret = rm_config_conv_trust_domain(&ctx->cdoc, "spec.trustDomain", spec->trust_domain, &s->trust_domain)) !=
            0 ||
        (ret = conv_trust_domain_aliases(ctx, spec, s)) != 0)
        return ret;
    if (spec->default_config != NULL && spec->default_config->gateway_topology != NULL &&
        spec->default_config->gateway_topology->num_trusted_proxies != NULL) {
        /* Istio's gatewayTopology.numTrustedProxies: how many X-Forwarded-For entries remote.ip looks past */
        unsigned n;
        if ((ret = rm_config_conv_uint(&ctx->cdoc, "spec.defaultConfig.gatewayTopology.numTrustedProxies",
                                       spec->default_config->gateway_topology->num_trusted_proxies, 0, 64, &n)) != 0)
            return ret;
        s->num_trusted_proxies = (uint32_t)n;
    }
    if (spec->mtls != NULL) {
        mode = (int)s->inbound_mode;
        if ((ret = rm_config_conv_enum(&ctx->cdoc, "spec.mtls.mode", spec->mtls->mode, "an mTLS mode", mode_names,
                                       mode_values, &mode)) != 0)
            return ret;
        s->inbound_mode = (rm_model_mtls_mode_t)mode;
    }
    if (spec->svid_ttl != NULL) {
        if ((ret = rm_config_conv_duration(&ctx->cdoc, "spec.svidTTL", spec->svid_ttl, (uint64_t)SVID_TTL_MAX_S * 1000,
                                           &ms)) != 0)
            return ret;
        if (ms < (uint64_t)RM_CA_MIN_TTL * 1000)
            return rm_config_value_error(&ctx->cdoc, "spec.svidTTL", "%s is shorter than the minimum of %um",
                                         rm_yaml_quoted(q, sizeof(q), spec->svid_ttl), RM_CA_MIN_TTL / 60);
        if (ms % 1000 != 0)
            return rm_config_value_error(&ctx->cdoc, "spec.svidTTL", "%s is not a whole number of seconds",
                                         rm_yaml_quoted(q, sizeof(q), spec->svid_ttl));
        s->svid_ttl = (int64_t)(ms / 1000);
    }
    if (spec->root_namespace != NULL) {
        if ((ret = rm_config_conv_dns_name(&ctx->cdoc, "spec.rootNamespace", spec->root_namespace, 1,
                                           "a namespace name")) != 0)
            return ret;
        char *rn = strdup(spec->root_namespace);
        if (rn == NULL)
            return rm_config_value_error(&ctx->cdoc, "spec.rootNamespace", "out of memory");
        free(s->root_namespace);
        s->root_namespace = rn;
    }
    if (spec->authorization != NULL) {
        const raw_authz_t *a = spec->authorization;
        if (a->default_action != NULL) {
            if (strcmp(a->default_action, "DENY") == 0)
                s->default_action = RM_AUTHZ_DENY;
            else if (strcmp(a->default_action, "ALLOW") == 0)
                s->default_action = RM_AUTHZ_ALLOW;
            else
                return rm_config_value_error(&ctx->cdoc, "spec.authorization.defaultAction", "%s is not DENY or ALLOW",
                                             rm_yaml_quoted(q, sizeof(q), a->default_action));
        }
        if ((ret = rm_config_conv_bool(&ctx->cdoc, "spec.authorization.logAllowed", a->log_allowed, &s->log_allowed)) !=
                0 ||
            (ret = rm_config_conv_bool(&ctx->cdoc, "spec.authorization.logAttributes", a->log_attributes,
                                       &s->log_attributes)) != 0)
            return ret;
        if (a->log_allowed_sample_rate != NULL) {
            char *end;
            double v = strtod(a->log_allowed_sample_rate, &end);
            if (end == a->log_allowed_sample_rate || *end != '\0' || !(v > 0 && v <= 1))
                return rm_config_value_error(
                    &ctx->cdoc, "spec.authorization.logAllowedSampleRate",
                    "%s is not a fraction in (0, 1] (e.g. 0.01 logs one allowed request in 100)",
                    rm_yaml_quoted(q, sizeof(q), a->log_allowed_sample_rate));
            s->log_allowed_sample = v;
        }
        if (a->path_normalization != NULL && a->path_normalization->normalization != NULL &&
            rm_path_normalization_parse(a->path_normalization->normalization, &s->path_normalization) != 0)
            return rm_config_value_error(&ctx->cdoc, "spec.authorization.pathNormalization.normalization",
                                         "%s is not " RM_PATH_NORMALIZATION_NAMES,
                                         rm_yaml_quoted(q, sizeof(q), a->path_normalization->normalization));
    }
    if ((ret = conv_timeout(&ctx->cdoc, "spec.connectTimeout", spec->connect_timeout, &s->connect_timeout_ms)) != 0 ||
        (ret = conv_timeout(&ctx->cdoc, "spec.idleTimeout", spec->idle_timeout, &s->idle_timeout_ms)) != 0)
        return ret;
    if (spec->access_log != NULL) {
        const raw_access_log_t *al = spec->access_log;
        if ((ret = rm_config_conv_bool(&ctx->cdoc, "spec.accessLog.enabled", al->enabled, &s->access_log)) != 0)
            return ret;
        if (al->sample_rate != NULL) {
            char *end;
            double v = strtod(al->sample_rate, &end);
            if (end == al->sample_rate || *end != '\0' || !(v >= 0 && v <= 1))
                return rm_config_value_error(&ctx->cdoc, "spec.accessLog.sampleRate",
                                             "%s is not a fraction in [0, 1] (e.g. 0.01 logs one request in 100)",
                                             rm_yaml_quoted(q, sizeof(q), al->sample_rate));
            s->access_log_sample = v;
        }
    }
    if (spec->metrics != NULL) {
        const raw_mesh_metrics_t *mm = spec->metrics;
        if ((ret = rm_config_conv_bool(&ctx->cdoc, "spec.metrics.istioNames", mm->istio_names,
                                       &s->metrics_istio_names)) != 0 ||
            (ret = rm_config_conv_uint(&ctx->cdoc, "spec.metrics.maxSeriesPerMetric", mm->max_series_per_metric, 1,
                                       1000000, &s->metrics_max_series)) != 0 ||
            (ret = conv_timeout(&ctx->cdoc, "spec.metrics.seriesExpiry", mm->series_expiry, &s->metrics_expiry_ms)) !=
                0)
            return ret;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------
 * Pass 3: Service.
 * ------------------------------------------------------------------------------------------------------- */

void rm__pending_service_clear(pending_service_t *p)
{
    free(p->namespace_);
    free(p->name);
    free(p->vips);
    free(p->ports);
    for (size_t i = 0; i < p->num_accounts; i++)
        free(p->accounts[i].value);
    free(p->accounts);
    for (size_t i = 0; i < p->num_ids; i++)
        free(p->ids[i].value);
    free(p->ids);
    for (size_t i = 0; i < p->num_identities; i++)
        free(p->identities[i]);
    free(p->identities);
    rm__endpoints_free(p->endpoints, p->num_endpoints);
    memset(p, 0, sizeof(*p));
}

/* Parses an IP literal; an IPv4-mapped IPv6 address is folded into IPv4 so both spellings are one VIP. */
static int parse_vip(const char *s, vip_t *v)
{
    memset(v->bytes, 0, sizeof(v->bytes));
    if (inet_pton(AF_INET, s, v->bytes) == 1) {
        v->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, v->bytes) != 1)
        return -1;
    v->family = AF_INET6;
    if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)v->bytes)) {
        memmove(v->bytes, v->bytes + 12, 4);
        memset(v->bytes + 4, 0, 12);
        v->family = AF_INET;
    }
    return 0;
}

static int vip_is_unspecified(const vip_t *v)
{
    static const uint8_t zero[16];
    return memcmp(v->bytes, zero, v->family == AF_INET ? 4 : 16) == 0;
}

/* "ip:port" or "[ip6]:port". */
void rm__vip_port_str(char *buf, size_t len, const vip_t *v, unsigned port)
{
    char host[INET6_ADDRSTRLEN];
    inet_ntop(v->family, v->bytes, host, sizeof(host));
    snprintf(buf, len, v->family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}

static int conv_vips(file_ctx_t *ctx, const raw_service_spec_t *spec, pending_service_t *p)
{
    char path[64], q[96];

    if (spec->addresses_count == 0)
        return rm_config_value_error(&ctx->cdoc, "spec.addresses",
                                     "is required (the service's VIPs, IPv4 or IPv6 literals)");
    if ((p->vips = calloc(spec->addresses_count, sizeof(*p->vips))) == NULL)
        return rm_config_value_error(&ctx->cdoc, "spec.addresses", "out of memory");
    for (unsigned i = 0; i < spec->addresses_count; i++) {
        vip_t *v = &p->vips[i];
        snprintf(path, sizeof(path), "spec.addresses[%u]", i);
        if (parse_vip(spec->addresses[i], v) != 0)
            return rm_config_value_error(
                &ctx->cdoc, path, "%s is not an IP address (want an IPv4 or IPv6 literal, without port or brackets)",
                rm_yaml_quoted(q, sizeof(q), spec->addresses[i]));
        if (vip_is_unspecified(v))
            return rm_config_value_error(&ctx->cdoc, path,
                                         "%s is the unspecified address; a VIP must be a real address",
                                         rm_yaml_quoted(q, sizeof(q), spec->addresses[i]));
        for (unsigned j = 0; j < i; j++)
            if (p->vips[j].family == v->family && memcmp(p->vips[j].bytes, v->bytes, sizeof(v->bytes)) == 0)
                return rm_config_value_error(&ctx->cdoc, path, "%s is the same address as spec.addresses[%u]",
                                             rm_yaml_quoted(q, sizeof(q), spec->addresses[i]), j);
        v->index = i;
        v->pos = rm_config_pos(&ctx->cdoc, path, 0);
        p->num_vips = i + 1;
    }
    return 0;
}

static int conv_ports(file_ctx_t *ctx, const raw_service_spec_t *spec, pending_service_t *p)
{
    char path[64];
    uint16_t port;
    int ret;

    if (spec->ports_count == 0)
        return rm_config_value_error(&ctx->cdoc, "spec.ports", "is required (1 to 65535)");
    if ((p->ports = calloc(spec->ports_count, sizeof(*p->ports))) == NULL)
        return rm_config_value_error(&ctx->cdoc, "spec.ports", "out of memory");
    for (unsigned i = 0; i < spec->ports_count; i++) {
        snprintf(path, sizeof(path), "spec.ports[%u]", i);
        if ((ret = rm_config_conv_port(&ctx->cdoc, path, spec->ports[i], &port)) != 0)
            return ret;
        for (unsigned j = 0; j < i; j++)
            if (p->ports[j] == port)
                return rm_config_value_error(&ctx->cdoc, path, "port %u is also spec.ports[%u]", (unsigned)port, j);
        p->ports[i] = port;
        p->num_ports = i + 1;
    }
    return 0;
}

static int conv_accounts(file_ctx_t *ctx, const raw_service_spec_t *spec, pending_service_t *p)
{
    char path[64], q[96];
    int ret;

    if (spec->service_accounts_count == 0)
        return 0;
    if ((p->accounts = calloc(spec->service_accounts_count, sizeof(*p->accounts))) == NULL)
        return rm_config_value_error(&ctx->cdoc, "spec.serviceAccounts", "out of memory");
    for (unsigned i = 0; i < spec->service_accounts_count; i++) {
        const char *sa = spec->service_accounts[i];
        snprintf(path, sizeof(path), "spec.serviceAccounts[%u]", i);
        if ((ret = rm_config_conv_dns_name(&ctx->cdoc, path, sa, 0, "a ServiceAccount name")) != 0)
            return ret;
        for (unsigned j = 0; j < i; j++)
            if (strcmp(p->accounts[j].value, sa) == 0)
                return rm_config_value_error(&ctx->cdoc, path, "%s is also spec.serviceAccounts[%u]",
                                             rm_yaml_quoted(q, sizeof(q), sa), j);
        if ((p->accounts[i].value = strdup(sa)) == NULL)
            return rm_config_value_error(&ctx->cdoc, path, "out of memory");
        p->accounts[i].index = i;
        p->accounts[i].pos = rm_config_pos(&ctx->cdoc, path, 0);
        p->num_accounts = i + 1;
    }
    return 0;
}

static int conv_ids(file_ctx_t *ctx, const raw_service_spec_t *spec, pending_service_t *p)
{
    char path[64], q[96];
    rm_spiffe_id_t *id = NULL;
    int ret = 0;

    if (spec->identities_count == 0)
        return 0;
    if ((p->ids = calloc(spec->identities_count, sizeof(*p->ids))) == NULL || (id = malloc(sizeof(*id))) == NULL) {
        ret = rm_config_value_error(&ctx->cdoc, "spec.identities", "out of memory");
        goto Exit;
    }
    for (unsigned i = 0; i < spec->identities_count; i++) {
        const char *s = spec->identities[i];
        snprintf(path, sizeof(path), "spec.identities[%u]", i);
        if ((ret = rm_config_conv_workload_id(&ctx->cdoc, path, s, id)) != 0)
            goto Exit;
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(p->ids[j].value, s) == 0) {
                ret = rm_config_value_error(&ctx->cdoc, path, "%s is also spec.identities[%u]",
                                            rm_yaml_quoted(q, sizeof(q), s), j);
                goto Exit;
            }
        }
        if ((p->ids[i].value = strdup(s)) == NULL) {
            ret = rm_config_value_error(&ctx->cdoc, path, "out of memory");
            goto Exit;
        }
        p->ids[i].index = i;
        p->ids[i].pos = rm_config_pos(&ctx->cdoc, path, 0);
        p->num_ids = i + 1;
    }

Exit:
    free(id);
    return ret;
}

static int convert_service(file_ctx_t *ctx, const raw_doc_t *raw)
{
    loader_t *ld = ctx->ld;
    const raw_service_spec_t *spec = raw->service_spec;
    pending_service_t p;
    int ret;

    memset(&p, 0, sizeof(p));
    p.in_mesh = 1;
    p.file = ctx->file_index;
    p.doc_pos = ctx->doc->pos;

    if ((ret = conv_metadata_name(ctx, raw, 1, "Service")) != 0)
        goto Exit;
    p.name_pos = rm_config_pos(&ctx->cdoc, "metadata.name", 0);
    const char *ns = raw->metadata->namespace_ != NULL ? raw->metadata->namespace_ : DEFAULT_NAMESPACE;
    if ((ret = rm_config_conv_dns_name(&ctx->cdoc, "metadata.namespace", ns, 1, NULL)) != 0)
        goto Exit;
    if ((p.namespace_ = strdup(ns)) == NULL || (p.name = strdup(raw->metadata->name)) == NULL) {
        ret = rm_config_value_error(&ctx->cdoc, "metadata", "out of memory");
        goto Exit;
    }
    if (spec == NULL) {
        ret = rm_config_value_error(&ctx->cdoc, "spec", "is required (a Service needs spec.addresses and spec.ports)");
        goto Exit;
    }
    p.spec_pos = rm_config_pos(&ctx->cdoc, "spec", 0);
    if ((ret = conv_vips(ctx, spec, &p)) != 0 || (ret = conv_ports(ctx, spec, &p)) != 0 ||
        (ret = rm_config_conv_bool(&ctx->cdoc, "spec.inMesh", spec->in_mesh, &p.in_mesh)) != 0 ||
        (ret = conv_accounts(ctx, spec, &p)) != 0 || (ret = conv_ids(ctx, spec, &p)) != 0 ||
        (ret = rm__endpoints_convert(&ctx->cdoc, spec->endpoints, spec->endpoints_count, p.ports, p.num_ports,
                                     p.in_mesh, &p.endpoints)) != 0)
        goto Exit;
    p.num_endpoints = spec->endpoints_count;

    if (ld->num_services == ld->cap_services) {
        size_t cap = ld->cap_services == 0 ? 16 : ld->cap_services * 2;
        pending_service_t *services = realloc(ld->services, cap * sizeof(*services));
        if (services == NULL) {
            ret = rm_config_value_error(&ctx->cdoc, "", "out of memory");
            goto Exit;
        }
        ld->services = services;
        ld->cap_services = cap;
    }
    ld->services[ld->num_services++] = p;
    memset(&p, 0, sizeof(p));

Exit:
    rm__pending_service_clear(&p);
    return ret;
}

/* ---------------------------------------------------------------------------------------------------------
 * Pass 3: Workload (a pod or host, by the node id of its proxy: docs/control-config.md).
 * ------------------------------------------------------------------------------------------------------- */

/* A label value as Kubernetes allows: at most 63 of [A-Za-z0-9._-], starting and ending alphanumeric. */
static int conv_label_value(file_ctx_t *ctx, const char *path, const char *s, const char *dflt, char **out)
{
    char q[96];
    size_t n;

    if (s == NULL && (s = dflt) == NULL)
        return rm_config_value_error(&ctx->cdoc, path, "is required");
    n = strlen(s);
    if (n == 0 || n > 63 || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n ||
        !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return rm_config_value_error(&ctx->cdoc, path,
                                     "%s is not a label value (1 to 63 of A-Z a-z 0-9 . _ -, alphanumeric at the ends)",
                                     rm_yaml_quoted(q, sizeof(q), s));
    if ((*out = strdup(s)) == NULL)
        return rm_config_value_error(&ctx->cdoc, path, "out of memory");
    return 0;
}

static int convert_workload(file_ctx_t *ctx, const raw_doc_t *raw)
{
    loader_t *ld = ctx->ld;
    const raw_workload_spec_t *spec = raw->workload_spec;
    pending_workload_t p;
    char path[48], q[96];
    int ret, access_log = -1;

    memset(&p, 0, sizeof(p));
    p.file = ctx->file_index;
    p.doc_pos = ctx->doc->pos;
    if ((ret = conv_metadata_name(ctx, raw, 0, "Workload")) != 0)
        goto Exit;
    const char *ns = raw->metadata->namespace_ != NULL ? raw->metadata->namespace_ : DEFAULT_NAMESPACE;
    if ((ret = rm_config_conv_dns_name(&ctx->cdoc, "metadata.namespace", ns, 1, NULL)) != 0)
        goto Exit;
    if (spec == NULL || spec->addresses_count == 0) {
        ret = rm_config_value_error(&ctx->cdoc, spec == NULL ? "spec" : "spec.addresses",
                                    "is required (a Workload needs spec.addresses: its IP addresses)");
        goto Exit;
    }
    if ((p.w.namespace_ = strdup(ns)) == NULL || (p.w.pod = strdup(raw->metadata->name)) == NULL ||
        (p.w.addresses = calloc(spec->addresses_count, sizeof(*p.w.addresses))) == NULL) {
        ret = rm_config_value_error(&ctx->cdoc, "metadata", "out of memory");
        goto Exit;
    }
    if ((ret = conv_label_value(ctx, "spec.workload", spec->workload, raw->metadata->name, &p.w.name)) != 0 ||
        (ret = conv_label_value(ctx, "spec.app", spec->app, p.w.name, &p.w.app)) != 0 ||
        (ret = conv_label_value(ctx, "spec.version", spec->version, "latest", &p.w.version)) != 0)
        goto Exit;
    const char *sa = spec->service_account != NULL ? spec->service_account : "default";
    if ((ret = rm_config_conv_dns_name(&ctx->cdoc, "spec.serviceAccount", sa, 0, NULL)) != 0)
        goto Exit;
    if ((p.w.service_account = strdup(sa)) == NULL) {
        ret = rm_config_value_error(&ctx->cdoc, "spec.serviceAccount", "out of memory");
        goto Exit;
    }
    if (spec->access_log != NULL) {
        if ((ret = rm_config_conv_bool(&ctx->cdoc, "spec.accessLog", spec->access_log, &access_log)) != 0)
            goto Exit;
        p.w.access_log = access_log ? RM_MODEL_ACCESS_LOG_ON : RM_MODEL_ACCESS_LOG_OFF;
    }
    for (unsigned i = 0; i < spec->addresses_count; i++) {
        vip_t v;
        char text[INET6_ADDRSTRLEN];
        snprintf(path, sizeof(path), "spec.addresses[%u]", i);
        if (parse_vip(spec->addresses[i], &v) != 0 || vip_is_unspecified(&v)) {
            ret = rm_config_value_error(&ctx->cdoc, path, "%s is not an IP address (no port, no brackets)",
                                        rm_yaml_quoted(q, sizeof(q), spec->addresses[i]));
            goto Exit;
        }
        inet_ntop(v.family, v.bytes, text, sizeof(text));
        for (size_t j = 0; j < p.w.num_addresses; j++)
            if (strcmp(p.w.addresses[j], text) == 0) {
                ret = rm_config_value_error(&ctx->cdoc, path, "%s is listed twice", text);
                goto Exit;
            }
        if ((p.w.addresses[p.w.num_addresses] = strdup(text)) == NULL) {
            ret = rm_config_value_error(&ctx->cdoc, path, "out of memory");
            goto Exit;
        }
        p.w.num_addresses++;
    }
    if (ld->num_workloads == ld->cap_workloads) {
        size_t cap = ld->cap_workloads == 0 ? 16 : ld->cap_workloads * 2;
        pending_workload_t *grown = realloc(ld->workloads, cap * sizeof(*grown));
        if (grown == NULL) {
            ret = rm_config_value_error(&ctx->cdoc, "", "out of memory");
            goto Exit;
        }
        ld->workloads = grown;
        ld->cap_workloads = cap;
    }
    ld->workloads[ld->num_workloads++] = p;
    memset(&p, 0, sizeof(p));

Exit:
    rm__model_workload_clear(&p.w);
    return ret;
}

/* ---------------------------------------------------------------------------------------------------------
 * One file.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_kind_t {
    const char *name;
    const cyaml_schema_value_t *schema;
    const cyaml_schema_field_t *fields;
    int (*convert)(file_ctx_t *ctx, const raw_doc_t *raw);
} kind_t;

static const kind_t kinds[] = {
    {"MeshConfig", &mesh_doc_schema, mesh_doc_fields, convert_mesh_config},
    {"Service", &service_doc_schema, service_doc_fields, convert_service},
    {"Workload", &workload_doc_schema, workload_doc_fields, convert_workload},
};

/* Checks apiVersion and kind (noted by pass 1) and returns the kind, or NULL with the error set. */
static const kind_t *document_kind(file_ctx_t *ctx, int *ret)
{
    const doc_t *doc = ctx->doc;
    const rm_yaml_node_t *e;
    char q[96];

    if ((e = rm_yaml_pos_map_find(&doc->map, "apiVersion")) == NULL) {
        *ret =
            rm_config_report(&ctx->cdoc, RM_ERR_CONFIG_VALUE, doc->pos, "apiVersion", "is required (%s)", API_VERSION);
        return NULL;
    }
    if (doc->api_version == NULL || strcmp(doc->api_version, API_VERSION) != 0) {
        *ret = rm_config_report(
            &ctx->cdoc, RM_ERR_CONFIG_VALUE, e->value, "apiVersion", "%s is not a version this source reads (want %s)",
            doc->api_version != NULL ? rm_yaml_quoted(q, sizeof(q), doc->api_version) : "a collection", API_VERSION);
        return NULL;
    }
    if ((e = rm_yaml_pos_map_find(&doc->map, "kind")) == NULL) {
        *ret = rm_config_report(&ctx->cdoc, RM_ERR_CONFIG_VALUE, doc->pos, "kind",
                                "is required (MeshConfig, Service, Workload, HTTPRoute or GRPCRoute)");
        return NULL;
    }
    for (size_t i = 0; doc->kind != NULL && i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(doc->kind, kinds[i].name) == 0)
            return &kinds[i];
    *ret = rm_config_report(
        &ctx->cdoc, RM_ERR_CONFIG_VALUE, e->value, "kind",
        "%s is not a kind this source reads (want MeshConfig, Service, Workload, HTTPRoute or GRPCRoute)",
        doc->kind != NULL ? rm_yaml_quoted(q, sizeof(q), doc->kind) : "a collection");
    return NULL;
}

static int load_document(file_ctx_t *ctx, size_t end)
{
    const kind_t *kind;
    rm_yaml_cyaml_capture_t *cap = NULL;
    raw_doc_t *raw = NULL;
    char *expanded = NULL;
    cyaml_config_t cyaml_cfg = rm_yaml_cyaml_config;
    cyaml_err_t cerr;
    int ret = 0;

    /* policies are read by the policy loader, which understands Istio's API versions too, and routes by the route
     * reader (rm_mesh_loader_add) */
    if (ctx->doc->kind != NULL &&
        (strcmp(ctx->doc->kind, "AuthorizationPolicy") == 0 || strcmp(ctx->doc->kind, "PeerAuthentication") == 0 ||
         strcmp(ctx->doc->kind, "RequestAuthentication") == 0 || rm_route_is_route_kind(ctx->doc->kind)))
        return 0;
    if ((kind = document_kind(ctx, &ret)) == NULL)
        return ret;
    if ((cap = calloc(1, sizeof(*cap))) == NULL)
        return rm_config_report(&ctx->cdoc, RM_ERR_CONFIG_PARSE, ctx->doc->pos, "", "out of memory");
    cap->line_offset = ctx->doc->first_line - 1;
    cyaml_cfg.log_ctx = cap;

    const char *text = ctx->data + ctx->doc->begin;
    size_t text_len = end - ctx->doc->begin;
    /* MeshConfig's accessLog: true|false stands for accessLog: {enabled: true|false} */
    if (strcmp(kind->name, "MeshConfig") == 0 &&
        rm_yaml_scalar_shorthand(text, text_len, "spec.accessLog", "enabled", &expanded, &text_len) != 0) {
        ret = rm_config_report(&ctx->cdoc, RM_ERR_CONFIG_PARSE, ctx->doc->pos, "", "out of memory");
        goto Exit;
    }
    if (expanded != NULL)
        text = expanded;
    else
        text_len = end - ctx->doc->begin;
    cerr = cyaml_load_data((const uint8_t *)text, text_len, &cyaml_cfg, kind->schema, (cyaml_data_t **)&raw, NULL);
    if (cerr != CYAML_OK) {
        raw = NULL;
        ret = rm_yaml_report_cyaml_error(cap, cerr, kind->fields, &ctx->doc->map, ctx->doc->pos, rm_config_vreport,
                                         &ctx->cdoc);
        goto Exit;
    }
    if (raw == NULL) {
        ret = rm_config_report(&ctx->cdoc, RM_ERR_CONFIG_PARSE, ctx->doc->pos, "", "the document is empty");
        goto Exit;
    }
    ret = kind->convert(ctx, raw);

Exit:
    if (raw != NULL)
        cyaml_free(&cyaml_cfg, kind->schema, raw, 0);
    free(expanded);
    free(cap);
    return ret;
}

int rm__mesh_load_documents(loader_t *ld, size_t file_index, const char *data, size_t len)
{
    file_ctx_t ctx = {.ld = ld, .file_index = file_index, .file = ld->files[file_index], .data = data, .len = len};
    int ret;

    ctx.cdoc.file = ctx.file;
    ctx.cdoc.err = ld->err;
    if ((ret = walk_file(&ctx)) != 0)
        goto Exit;
    for (size_t d = 0; d < ctx.num_docs; d++) {
        ctx.doc = &ctx.docs[d];
        if (ctx.doc->is_null)
            continue;
        ctx.cdoc.map = &ctx.doc->map;
        ctx.cdoc.fallback = ctx.doc->pos;
        size_t end = d + 1 < ctx.num_docs ? ctx.docs[d + 1].begin : len;
        if (end < ctx.doc->begin)
            end = ctx.doc->begin;
        if ((ret = load_document(&ctx, end)) != 0)
            goto Exit;
    }
    ret = 0;

Exit:
    for (size_t d = 0; d < ctx.num_docs; d++) {
        rm_yaml_pos_map_dispose(&ctx.docs[d].map);
        free(ctx.docs[d].api_version);
        free(ctx.docs[d].kind);
    }
    free(ctx.docs);
    return ret;
}
