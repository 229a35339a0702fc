/* The InjectorConfig document: YAML -> rm_inject_config_t, with the passes every loader makes (ringmesh/yaml_load.h):
 * positions from libyaml's events, the raw strings from libcyaml, then lib/config's converters, so that an error
 * reads "FILE:LINE:COLUMN: spec.FIELD: what is wrong". */
#include "inject.h"
#include "inject_internal.h"

#include "ringmesh/error.h"
#include "ringmesh/log.h"
#include "ringmesh/svid.h"
#include "ringmesh/yaml_load.h"

#include <cyaml/cyaml.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API_VERSION     "ringmesh.io/v1alpha1"
#define CONFIG_FILE_MAX (1u << 20)
#define LIST_MAX        64u

typedef struct st_raw_quantities_t {
    char *cpu, *memory, *ephemeral_storage;
} raw_quantities_t;

typedef struct st_raw_resources_t {
    raw_quantities_t *requests, *limits;
} raw_resources_t;

typedef struct st_raw_proxy_t {
    char *log_level;
    raw_resources_t *resources;
    char *uid;
} raw_proxy_t;

typedef struct st_raw_init_t {
    raw_resources_t *resources;
} raw_init_t;

typedef struct st_raw_spec_t {
    char *mesh_namespace, *control_address, *trust_domain, *image, *image_pull_policy;
    raw_proxy_t *proxy;
    raw_init_t *init;
    char *native_sidecar, *rewrite_app_probes, *token_expiration_seconds, *fail_open;
    char **excl_cidrs;
    unsigned excl_cidrs_count;
    char **excl_out_ports;
    unsigned excl_out_ports_count;
    char **excl_in_ports;
    unsigned excl_in_ports_count;
} raw_spec_t;

typedef struct st_raw_metadata_t {
    char *name;
} raw_metadata_t;

typedef struct st_raw_doc_t {
    char *api_version, *kind;
    raw_metadata_t *metadata;
    raw_spec_t *spec;
} raw_doc_t;

static const cyaml_schema_field_t quantities_fields[] = {
    RM_CYAML_STR("cpu", raw_quantities_t, cpu),
    RM_CYAML_STR("memory", raw_quantities_t, memory),
    RM_CYAML_STR("ephemeral-storage", raw_quantities_t, ephemeral_storage),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t resources_fields[] = {
    CYAML_FIELD_MAPPING_PTR("requests", RM_CYAML_OPT_NULL, raw_resources_t, requests, quantities_fields),
    CYAML_FIELD_MAPPING_PTR("limits", RM_CYAML_OPT_NULL, raw_resources_t, limits, quantities_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t proxy_fields[] = {
    RM_CYAML_STR("logLevel", raw_proxy_t, log_level),
    CYAML_FIELD_MAPPING_PTR("resources", RM_CYAML_OPT_NULL, raw_proxy_t, resources, resources_fields),
    RM_CYAML_STR("uid", raw_proxy_t, uid),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t init_fields[] = {
    CYAML_FIELD_MAPPING_PTR("resources", RM_CYAML_OPT_NULL, raw_init_t, resources, resources_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t spec_fields[] = {
    RM_CYAML_STR("meshNamespace", raw_spec_t, mesh_namespace),
    RM_CYAML_STR("controlPlaneAddress", raw_spec_t, control_address),
    RM_CYAML_STR("trustDomain", raw_spec_t, trust_domain),
    RM_CYAML_STR("image", raw_spec_t, image),
    RM_CYAML_STR("imagePullPolicy", raw_spec_t, image_pull_policy),
    CYAML_FIELD_MAPPING_PTR("proxy", RM_CYAML_OPT_NULL, raw_spec_t, proxy, proxy_fields),
    CYAML_FIELD_MAPPING_PTR("init", RM_CYAML_OPT_NULL, raw_spec_t, init, init_fields),
    RM_CYAML_STR("nativeSidecar", raw_spec_t, native_sidecar),
    RM_CYAML_STR("rewriteAppProbes", raw_spec_t, rewrite_app_probes),
    RM_CYAML_STR("tokenExpirationSeconds", raw_spec_t, token_expiration_seconds),
    RM_CYAML_STR_SEQ("excludeOutboundIPRanges", raw_spec_t, excl_cidrs, LIST_MAX),
    RM_CYAML_STR_SEQ("excludeOutboundPorts", raw_spec_t, excl_out_ports, LIST_MAX),
    RM_CYAML_STR_SEQ("excludeInboundPorts", raw_spec_t, excl_in_ports, LIST_MAX),
    RM_CYAML_STR("failOpenOnInvalidAnnotation", raw_spec_t, fail_open),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t metadata_fields[] = {
    RM_CYAML_STR("name", raw_metadata_t, name),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t doc_fields[] = {
    RM_CYAML_STR("apiVersion", raw_doc_t, api_version),
    RM_CYAML_STR("kind", raw_doc_t, kind),
    CYAML_FIELD_MAPPING_PTR("metadata", RM_CYAML_OPT_NULL, raw_doc_t, metadata, metadata_fields),
    CYAML_FIELD_MAPPING_PTR("spec", RM_CYAML_OPT_NULL, raw_doc_t, spec, spec_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t doc_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_doc_t, doc_fields),
};

/* ---------------------------------------------------------------------------------------------------------
 * Defaults.
 * ------------------------------------------------------------------------------------------------------- */

static json_t *default_resources(int proxy)
{
    if (proxy)
        return json_pack("{s:{s:s,s:s},s:{s:s}}", "requests", "cpu", "50m", "memory", "32Mi", "limits", "memory",
                         "256Mi");
    return json_pack("{s:{s:s,s:s},s:{s:s}}", "requests", "cpu", "10m", "memory", "16Mi", "limits", "memory", "64Mi");
}

int rm_inject_config_defaults(rm_inject_config_t *c)
{
    memset(c, 0, sizeof(*c));
    c->proxy_uid = 1337;
    c->native_sidecar = RM_INJECT_NATIVE_AUTO;
    c->rewrite_app_probes = 1;
    c->token_expiration_seconds = 3600;
    if ((c->name = strdup("default")) == NULL || (c->mesh_namespace = strdup("ringmesh-system")) == NULL ||
        (c->control_address = strdup("ringmesh-control.ringmesh-system.svc:15012")) == NULL ||
        (c->trust_domain = strdup("cluster.local")) == NULL ||
        (c->image = strdup("ringmesh/ringmesh:" RM_INJECT_DEFAULT_TAG)) == NULL ||
        (c->image_pull_policy = strdup("IfNotPresent")) == NULL || (c->proxy_log_level = strdup("info")) == NULL ||
        (c->proxy_resources = default_resources(1)) == NULL || (c->init_resources = default_resources(0)) == NULL ||
        (c->exclude_outbound_ip_ranges = strdup("")) == NULL || (c->exclude_outbound_ports = strdup("")) == NULL ||
        (c->exclude_inbound_ports = strdup("")) == NULL)
        return -ENOMEM;
    return 0;
}

void rm_inject_config_dispose(rm_inject_config_t *c)
{
    free(c->name);
    free(c->mesh_namespace);
    free(c->control_address);
    free(c->trust_domain);
    free(c->image);
    free(c->image_pull_policy);
    free(c->proxy_log_level);
    json_decref(c->proxy_resources);
    json_decref(c->init_resources);
    free(c->exclude_outbound_ip_ranges);
    free(c->exclude_outbound_ports);
    free(c->exclude_inbound_ports);
    memset(c, 0, sizeof(*c));
}

/* ---------------------------------------------------------------------------------------------------------
 * Pass 1.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_ctx_t {
    rm_config_doc_t cdoc; /* first: the walk reports through it */
    rm_yaml_pos_map_t map;
    unsigned num_docs;
    rm_yaml_pos_t root;
    int root_is_map;
} ctx_t;

static int on_document(void *arg, rm_yaml_pos_t pos, rm_yaml_pos_map_t **map)
{
    ctx_t *ctx = arg;
    if (++ctx->num_docs > 1)
        return rm_config_report(&ctx->cdoc, RM_ERR_CONFIG_PARSE, pos, "",
                                "a second document; the file holds one InjectorConfig");
    ctx->root = pos;
    *map = &ctx->map;
    return 0;
}

static int on_root(void *arg, const yaml_event_t *ev, rm_yaml_pos_t pos)
{
    ctx_t *ctx = arg;
    ctx->root = pos;
    if (ev->type != YAML_MAPPING_START_EVENT)
        return rm_config_report(&ctx->cdoc, RM_ERR_CONFIG_PARSE, pos, "",
                                "the document must be a mapping (apiVersion, kind, metadata, spec), not %s",
                                rm_yaml_event_kind(ev->type));
    ctx->root_is_map = 1;
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------
 * Pass 3.
 * ------------------------------------------------------------------------------------------------------- */

static int conv_copy(rm_config_doc_t *doc, const char *path, const char *s, char **out)
{
    return rm_config_conv_string(doc, path, s, out);
}

static int conv_quantities(rm_config_doc_t *doc, const char *path, const raw_quantities_t *q, json_t *obj)
{
    const char *names[] = {"cpu", "memory", "ephemeral-storage"};
    const char *vals[] = {q->cpu, q->memory, q->ephemeral_storage};
    char p[128], qq[96];
    double v;
    for (size_t i = 0; i < 3; i++) {
        if (vals[i] == NULL)
            continue;
        snprintf(p, sizeof(p), "%s.%s", path, names[i]);
        if (rm__inject_parse_quantity(vals[i], &v) != 0)
            return rm_config_value_error(doc, p, "%s is not a Kubernetes quantity (e.g. 100m, 0.5, 64Mi, 1G)",
                                         rm_yaml_quoted(qq, sizeof(qq), vals[i]));
        if (json_object_set_new(obj, names[i], json_string(vals[i])) != 0)
            return rm_config_value_error(doc, p, "out of memory");
    }
    return 0;
}

/* A resources section replaces the default whole, as a ResourceRequirements does. */
static int conv_resources(rm_config_doc_t *doc, const char *path, const raw_resources_t *r, json_t **out)
{
    char p[128];
    json_t *res = json_object(), *req = json_object(), *lim = json_object();
    int ret = 0;

    if (res == NULL || req == NULL || lim == NULL) {
        ret = rm_config_value_error(doc, path, "out of memory");
        goto Exit;
    }
    snprintf(p, sizeof(p), "%s.requests", path);
    if (r->requests != NULL && (ret = conv_quantities(doc, p, r->requests, req)) != 0)
        goto Exit;
    snprintf(p, sizeof(p), "%s.limits", path);
    if (r->limits != NULL && (ret = conv_quantities(doc, p, r->limits, lim)) != 0)
        goto Exit;
    if (json_object_size(req) != 0)
        json_object_set(res, "requests", req);
    if (json_object_size(lim) != 0)
        json_object_set(res, "limits", lim);
    if ((ret = rm__inject_check_resources(res, p, sizeof(p))) != 0) {
        ret = rm_config_value_error(doc, path, "%s", p);
        goto Exit;
    }
    json_decref(*out);
    *out = res;
    res = NULL;

Exit:
    json_decref(res);
    json_decref(req);
    json_decref(lim);
    return ret;
}

/* A list of ports or CIDRs, checked one by one, kept comma-joined. */
static int conv_list(rm_config_doc_t *doc, const char *path, char **items, unsigned n, int cidrs, char **out)
{
    char p[128], q[96];
    size_t total = 1;
    uint16_t port;
    uint8_t addr[16];
    unsigned prefix;

    for (unsigned i = 0; i < n; i++) {
        snprintf(p, sizeof(p), "%s[%u]", path, i);
        if (cidrs ? rm_config_parse_cidr(items[i], addr, &prefix) != 0 : rm_config_parse_port(items[i], &port) != 0)
            return rm_config_value_error(doc, p, "%s is not %s", rm_yaml_quoted(q, sizeof(q), items[i]),
                                         cidrs ? "an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/8)"
                                               : "a port (1 to 65535)");
        total += strlen(items[i]) + 1;
    }
    char *s = calloc(1, total);
    if (s == NULL)
        return rm_config_value_error(doc, path, "out of memory");
    for (unsigned i = 0; i < n; i++) {
        if (i != 0)
            strcat(s, ",");
        strcat(s, items[i]);
    }
    free(*out);
    *out = s;
    return 0;
}

static int convert(ctx_t *ctx, const raw_doc_t *raw, rm_inject_config_t *c)
{
    static const char *const pull_names[] = {"Always", "IfNotPresent", "Never", NULL};
    static const int pull_values[] = {0, 1, 2};
    static const char *const native_names[] = {"auto", "true", "false", NULL};
    static const int native_values[] = {RM_INJECT_NATIVE_AUTO, RM_INJECT_NATIVE_ON, RM_INJECT_NATIVE_OFF};
    static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};
    static const int level_values[] = {0, 1, 2, 3};
    rm_config_doc_t *doc = &ctx->cdoc;
    const raw_spec_t *s = raw->spec;
    char q[96];
    int ret, v;
    unsigned u;

    if (raw->api_version == NULL || strcmp(raw->api_version, API_VERSION) != 0)
        return rm_config_value_error(
            doc, "apiVersion", "%s is not %s",
            raw->api_version != NULL ? rm_yaml_quoted(q, sizeof(q), raw->api_version) : "nothing", API_VERSION);
    if (raw->kind == NULL || strcmp(raw->kind, "InjectorConfig") != 0)
        return rm_config_value_error(doc, "kind", "%s is not InjectorConfig",
                                     raw->kind != NULL ? rm_yaml_quoted(q, sizeof(q), raw->kind) : "nothing");
    if (raw->metadata == NULL || raw->metadata->name == NULL)
        return rm_config_value_error(doc, raw->metadata == NULL ? "metadata" : "metadata.name", "is required");
    if ((ret = rm_config_conv_dns_name(doc, "metadata.name", raw->metadata->name, 0, NULL)) != 0 ||
        (ret = conv_copy(doc, "metadata.name", raw->metadata->name, &c->name)) != 0)
        return ret;
    if (s == NULL)
        return 0;
    if (s->mesh_namespace != NULL &&
        ((ret = rm_config_conv_dns_name(doc, "spec.meshNamespace", s->mesh_namespace, 1, "a namespace name")) != 0 ||
         (ret = conv_copy(doc, "spec.meshNamespace", s->mesh_namespace, &c->mesh_namespace)) != 0))
        return ret;
    if (s->control_address != NULL) {
        if (rm__inject_check_host_port(s->control_address) != 0)
            return rm_config_value_error(doc, "spec.controlPlaneAddress",
                                         "%s is not HOST:PORT (e.g. ringmesh-control.ringmesh-system.svc:15012)",
                                         rm_yaml_quoted(q, sizeof(q), s->control_address));
        if ((ret = conv_copy(doc, "spec.controlPlaneAddress", s->control_address, &c->control_address)) != 0)
            return ret;
    }
    if ((ret = rm_config_conv_trust_domain(doc, "spec.trustDomain", s->trust_domain, &c->trust_domain)) != 0)
        return ret;
    if (s->image != NULL) {
        if (strpbrk(s->image, " \t\r\n") != NULL)
            return rm_config_value_error(doc, "spec.image", "%s is not an image reference (it has white space)",
                                         rm_yaml_quoted(q, sizeof(q), s->image));
        if ((ret = conv_copy(doc, "spec.image", s->image, &c->image)) != 0)
            return ret;
    }
    if (s->image_pull_policy != NULL &&
        ((ret = rm_config_conv_enum(doc, "spec.imagePullPolicy", s->image_pull_policy, "an image pull policy",
                                    pull_names, pull_values, &v)) != 0 ||
         (ret = conv_copy(doc, "spec.imagePullPolicy", s->image_pull_policy, &c->image_pull_policy)) != 0))
        return ret;
    if (s->proxy != NULL) {
        if (s->proxy->log_level != NULL &&
            ((ret = rm_config_conv_enum(doc, "spec.proxy.logLevel", s->proxy->log_level, "a log level", level_names,
                                        level_values, &v)) != 0 ||
             (ret = conv_copy(doc, "spec.proxy.logLevel", s->proxy->log_level, &c->proxy_log_level)) != 0))
            return ret;
        if (s->proxy->resources != NULL &&
            (ret = conv_resources(doc, "spec.proxy.resources", s->proxy->resources, &c->proxy_resources)) != 0)
            return ret;
        if ((ret = rm_config_conv_uint(doc, "spec.proxy.uid", s->proxy->uid, 1, 2147483647ul, &c->proxy_uid)) != 0)
            return ret;
    }
    if (s->init != NULL && s->init->resources != NULL &&
        (ret = conv_resources(doc, "spec.init.resources", s->init->resources, &c->init_resources)) != 0)
        return ret;
    v = (int)c->native_sidecar;
    if ((ret = rm_config_conv_enum(doc, "spec.nativeSidecar", s->native_sidecar, "a sidecar mode", native_names,
                                   native_values, &v)) != 0)
        return ret;
    c->native_sidecar = (rm_inject_native_t)v;
    if ((ret = rm_config_conv_bool(doc, "spec.rewriteAppProbes", s->rewrite_app_probes, &c->rewrite_app_probes)) != 0 ||
        (ret = rm_config_conv_bool(doc, "spec.failOpenOnInvalidAnnotation", s->fail_open,
                                   &c->fail_open_on_invalid_annotation)) != 0)
        return ret;
    u = c->token_expiration_seconds;
    /* the kubelet refuses a projected token shorter than 10 minutes; the API server caps them at 48 hours */
    if ((ret = rm_config_conv_uint(doc, "spec.tokenExpirationSeconds", s->token_expiration_seconds, 600, 172800, &u)) !=
        0)
        return ret;
    c->token_expiration_seconds = u;
    if ((ret = conv_list(doc, "spec.excludeOutboundIPRanges", s->excl_cidrs, s->excl_cidrs_count, 1,
                         &c->exclude_outbound_ip_ranges)) != 0 ||
        (ret = conv_list(doc, "spec.excludeOutboundPorts", s->excl_out_ports, s->excl_out_ports_count, 0,
                         &c->exclude_outbound_ports)) != 0 ||
        (ret = conv_list(doc, "spec.excludeInboundPorts", s->excl_in_ports, s->excl_in_ports_count, 0,
                         &c->exclude_inbound_ports)) != 0)
        return ret;
    return 0;
}

int rm_inject_config_parse(const char *file, const char *data, size_t len, rm_inject_config_t *c,
                           rm_config_error_t *err)
{
    ctx_t ctx = {0};
    rm_yaml_cyaml_capture_t *cap = NULL;
    raw_doc_t *raw = NULL;
    cyaml_config_t cfg = rm_yaml_cyaml_config;
    cyaml_err_t cerr;
    int ret;

    ctx.cdoc.file = file;
    ctx.cdoc.err = err;
    ctx.cdoc.map = &ctx.map;
    ctx.cdoc.fallback = (rm_yaml_pos_t){1, 1};
    const rm_yaml_walk_ops_t ops = {.arg = &ctx, .report = rm_config_vreport, .document = on_document, .root = on_root};
    if ((ret = rm_yaml_walk(data, len, &ops)) != 0)
        goto Exit;
    if (ctx.num_docs == 0 || !ctx.root_is_map) {
        ret = rm_config_error_set(err, RM_ERR_CONFIG_PARSE, file, (rm_yaml_pos_t){0, 0}, NULL,
                                  "no InjectorConfig document in the file");
        goto Exit;
    }
    ctx.cdoc.fallback = ctx.root;
    if ((cap = calloc(1, sizeof(*cap))) == NULL) {
        ret = rm_config_error_set(err, -ENOMEM, file, ctx.root, NULL, "out of memory");
        goto Exit;
    }
    cfg.log_ctx = cap;
    cerr = cyaml_load_data((const uint8_t *)data, len, &cfg, &doc_schema, (cyaml_data_t **)&raw, NULL);
    if (cerr != CYAML_OK) {
        raw = NULL;
        ret = rm_yaml_report_cyaml_error(cap, cerr, doc_fields, &ctx.map, ctx.root, rm_config_vreport, &ctx.cdoc);
        goto Exit;
    }
    ret = raw == NULL ? rm_config_error_set(err, RM_ERR_CONFIG_PARSE, file, ctx.root, NULL, "the document is empty")
                      : convert(&ctx, raw, c);

Exit:
    if (raw != NULL)
        cyaml_free(&cfg, &doc_schema, raw, 0);
    free(cap);
    rm_yaml_pos_map_dispose(&ctx.map);
    return ret;
}

int rm_inject_config_load(const char *path, rm_inject_config_t *c, rm_config_error_t *err)
{
    char *data = NULL;
    size_t len;
    int ret;

    if ((ret = rm_inject_config_defaults(c)) != 0)
        return rm_config_error_set(err, ret, path, (rm_yaml_pos_t){0, 0}, NULL, "out of memory");
    if ((ret = rm_file_read_at(AT_FDCWD, path, NULL, CONFIG_FILE_MAX, 0, &data, &len, err)) != 0)
        return ret;
    ret = rm_inject_config_parse(path, data, len, c, err);
    free(data);
    return ret;
}
