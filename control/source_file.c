/* The file source: a directory of Kubernetes-style YAML documents (docs/control-config.md) read into a mesh
 * model, and a thread that reads it again when the directory changes.
 *
 * A file is loaded in three passes, the way the proxy loads its configuration (sidecar/proxy_config.c):
 *
 *  1. libyaml's event parser walks the whole file once and notes where each document begins and, for every node
 *     of each document, its field path ("spec.ports[1]") with the line and column of its key and of its value.
 *     This pass also rejects what the schema pass cannot place precisely (syntax errors, duplicate keys, aliases,
 *     documents that are not mappings, nesting deeper than any valid document needs) and notes each document's
 *     apiVersion and kind, since the kind chooses the schema.
 *  2. libcyaml loads each document against its kind's schema, every scalar as a string. libcyaml reads the first
 *     document of a buffer, so it is given the document's own lines (documents begin at the start of a line),
 *     and the lines in its messages are shifted by the lines before them.
 *  3. The strings are converted and validated.
 *
 * Checks that span documents and files (one MeshConfig, unique services, unique VIP:port, identities in the
 * trust domain) run once every file has been read. Files are read in name order, so a directory always reports
 * the same first error.
 *
 * Every message has the form "FILE:LINE:COLUMN: FIELD.PATH: what is wrong". */
#include "source.h"

#include "ca.h"
#include "mesh_model_internal.h"

#include "ringmesh/yaml_load.h"
#include "ringmesh/yaml_pos_map.h"
#include "ringmesh/duration.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"
#include "ringmesh/svid.h"

#include <arpa/inet.h>
#include <cyaml/cyaml.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#define API_VERSION "ringmesh.io/v1alpha1"

#define CONFIG_FILE_MAX      (4u << 20) /* a larger file is refused before parsing */
#define CONFIG_STRING_MAX    4096u      /* longest scalar accepted */
#define CONFIG_MSG_MAX       768u
#define CONFIG_FIELD_MAX     256u
#define CONFIG_LOAD_ATTEMPTS 3 /* a ConfigMap swapped while it is being read is read again, at most this often */

#define SVID_TTL_MAX_S     (8760u * 3600u) /* one year */
#define DEFAULT_NAMESPACE  "default"
#define WATCH_QUIET_MS     25   /* a reload waits until the directory has been quiet this long... */
#define WATCH_MAX_DELAY_MS 1000 /* ...but not longer than this after the first change */
#define WATCH_RETRY_MS     1000 /* how often a lost watch (directory removed) is set up again */

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
} raw_authz_t;

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
    char *access_log;
} raw_mesh_spec_t;

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
} raw_service_spec_t;

/* One struct for every kind; each kind's schema maps "spec" to its own member, so a key of another kind's spec
 * is still an unknown key. */
typedef struct st_raw_doc_t {
    char *api_version;
    char *kind;
    raw_metadata_t *metadata;
    raw_mesh_spec_t *mesh_spec;
    raw_service_spec_t *service_spec;
} raw_doc_t;

#define OPT          CYAML_FLAG_OPTIONAL
#define OPT_NULL     (CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER_NULL)
#define STR(k, t, m) CYAML_FIELD_STRING_PTR(k, OPT, t, m, 0, CONFIG_STRING_MAX)
#define SEQ(k, t, m) CYAML_FIELD_SEQUENCE(k, OPT_NULL, t, m, &string_entry, 0, CYAML_UNLIMITED)

static const cyaml_schema_value_t string_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CONFIG_STRING_MAX),
};

static const cyaml_schema_field_t mesh_metadata_fields[] = {
    STR("name", raw_metadata_t, name),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t service_metadata_fields[] = {
    STR("name", raw_metadata_t, name),
    STR("namespace", raw_metadata_t, namespace_),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t mtls_fields[] = {
    STR("mode", raw_mtls_t, mode),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t path_normalization_fields[] = {
    STR("normalization", raw_path_normalization_t, normalization),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t authz_fields[] = {
    STR("defaultAction", raw_authz_t, default_action),
    STR("logAllowed", raw_authz_t, log_allowed),
    STR("logAllowedSampleRate", raw_authz_t, log_allowed_sample_rate),
    CYAML_FIELD_MAPPING_PTR("pathNormalization", OPT_NULL, raw_authz_t, path_normalization, path_normalization_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t mesh_spec_fields[] = {
    STR("trustDomain", raw_mesh_spec_t, trust_domain),
    SEQ("trustDomainAliases", raw_mesh_spec_t, trust_domain_aliases),
    STR("rootNamespace", raw_mesh_spec_t, root_namespace),
    CYAML_FIELD_MAPPING_PTR("authorization", OPT_NULL, raw_mesh_spec_t, authorization, authz_fields),
    CYAML_FIELD_MAPPING_PTR("mtls", OPT_NULL, raw_mesh_spec_t, mtls, mtls_fields),
    STR("svidTTL", raw_mesh_spec_t, svid_ttl),
    STR("connectTimeout", raw_mesh_spec_t, connect_timeout),
    STR("idleTimeout", raw_mesh_spec_t, idle_timeout),
    STR("accessLog", raw_mesh_spec_t, access_log),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t service_spec_fields[] = {
    SEQ("addresses", raw_service_spec_t, addresses),   SEQ("ports", raw_service_spec_t, ports),
    STR("inMesh", raw_service_spec_t, in_mesh),        SEQ("serviceAccounts", raw_service_spec_t, service_accounts),
    SEQ("identities", raw_service_spec_t, identities), CYAML_FIELD_END,
};

static const cyaml_schema_field_t mesh_doc_fields[] = {
    STR("apiVersion", raw_doc_t, api_version),
    STR("kind", raw_doc_t, kind),
    CYAML_FIELD_MAPPING_PTR("metadata", OPT_NULL, raw_doc_t, metadata, mesh_metadata_fields),
    CYAML_FIELD_MAPPING_PTR("spec", OPT_NULL, raw_doc_t, mesh_spec, mesh_spec_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t service_doc_fields[] = {
    STR("apiVersion", raw_doc_t, api_version),
    STR("kind", raw_doc_t, kind),
    CYAML_FIELD_MAPPING_PTR("metadata", OPT_NULL, raw_doc_t, metadata, service_metadata_fields),
    CYAML_FIELD_MAPPING_PTR("spec", OPT_NULL, raw_doc_t, service_spec, service_spec_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t mesh_doc_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_doc_t, mesh_doc_fields),
};

static const cyaml_schema_value_t service_doc_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_doc_t, service_doc_fields),
};

#undef SEQ
#undef STR
#undef OPT
#undef OPT_NULL

/* ---------------------------------------------------------------------------------------------------------
 * Errors: where, which field, why. The watcher logs the parts; rm_mesh_model_load_dir() joins them.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_config_error_t {
    int code;
    char file[PATH_MAX];
    unsigned line, column; /* 0 when the error is about the file or directory as a whole */
    char field[CONFIG_FIELD_MAX];
    char reason[CONFIG_MSG_MAX];
} config_error_t;

__attribute__((format(printf, 6, 0))) static int vset_error(config_error_t *e, int code, const char *file,
                                                            rm_yaml_pos_t pos, const char *field, const char *fmt,
                                                            va_list ap)
{
    e->code = code;
    snprintf(e->file, sizeof(e->file), "%s", file);
    e->line = pos.line;
    e->column = pos.col;
    snprintf(e->field, sizeof(e->field), "%s", field != NULL ? field : "");
    vsnprintf(e->reason, sizeof(e->reason), fmt, ap);
    return code;
}

__attribute__((format(printf, 6, 7))) static int set_error(config_error_t *e, int code, const char *file,
                                                           rm_yaml_pos_t pos, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset_error(e, code, file, pos, field, fmt, ap);
    va_end(ap);
    return code;
}

static void format_error(const config_error_t *e, char *err, size_t errlen)
{
    if (err == NULL || errlen == 0)
        return;
    if (e->line != 0)
        snprintf(err, errlen, "%s:%u:%u: %s: %s", e->file, e->line, e->column,
                 e->field[0] != '\0' ? e->field : "(document)", e->reason);
    else if (e->field[0] != '\0')
        snprintf(err, errlen, "%s: %s: %s", e->file, e->field, e->reason);
    else
        snprintf(err, errlen, "%s: %s", e->file, e->reason);
}

/* ---------------------------------------------------------------------------------------------------------
 * Load state: one per directory read, one per file.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_doc_t {
    unsigned first_line; /* the file's line where the document's text begins ("---", a directive or its root) */
    size_t begin;        /* byte offset of that line */
    rm_yaml_pos_t pos;   /* the root node */
    int is_null;         /* nothing in it (a trailing "---"): skipped */
    rm_yaml_pos_map_t map;
    char *api_version, *kind; /* root scalars; NULL when absent or not scalars */
} doc_t;

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
    size_t file; /* index in loader_t.files */
    rm_yaml_pos_t doc_pos, name_pos, spec_pos;
} pending_service_t;

typedef struct st_loader_t {
    config_error_t *err;
    char **files; /* as shown in messages, in reading order */
    size_t num_files;
    int have_mesh;
    size_t mesh_file;
    rm_yaml_pos_t mesh_pos;
    rm_mesh_settings_t settings;
    pending_service_t *services; /* in reading order */
    size_t num_services, cap_services;
    rm_policy_set_t policies; /* AuthorizationPolicy and PeerAuthentication documents, read by lib/policy_yaml.c */
} loader_t;

typedef struct st_file_ctx_t {
    loader_t *ld;
    size_t file_index;
    const char *file;
    const char *data;
    size_t len;
    doc_t *docs;
    size_t num_docs;
    doc_t *doc; /* the one being converted */
} file_ctx_t;

/* Reports `code` at an explicit position of the current file (an rm_yaml_report_fn). */
__attribute__((format(printf, 5, 0))) static int file_vreport(void *arg, int code, rm_yaml_pos_t pos, const char *path,
                                                              const char *fmt, va_list ap)
{
    file_ctx_t *ctx = arg;
    vset_error(ctx->ld->err, code, ctx->file, pos, path, fmt, ap);
    return code;
}

__attribute__((format(printf, 5, 6))) static int report_at(file_ctx_t *ctx, int code, rm_yaml_pos_t pos,
                                                           const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    file_vreport(ctx, code, pos, path, fmt, ap);
    va_end(ap);
    return code;
}

/* The position of `path` in the current document, or of its closest recorded ancestor, or of the document. */
static rm_yaml_pos_t lookup_pos(const file_ctx_t *ctx, const char *path, int want_key)
{
    char buf[RM_YAML_PATH_MAX];
    const rm_yaml_node_t *e;

    snprintf(buf, sizeof(buf), "%s", path);
    for (;;) {
        if ((e = rm_yaml_pos_map_find(&ctx->doc->map, buf)) != NULL)
            return want_key ? e->key : e->value;
        if (buf[0] == '\0')
            return ctx->doc->pos;
        char *dot = strrchr(buf, '.'), *bracket = strrchr(buf, '[');
        char *cut = dot > bracket ? dot : bracket;
        *(cut != NULL ? cut : buf) = '\0';
    }
}

/* Reports RM_ERR_CONFIG_VALUE at the value of `path` (or its closest ancestor in the document). */
__attribute__((format(printf, 3, 4))) static int value_error(file_ctx_t *ctx, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset_error(ctx->ld->err, RM_ERR_CONFIG_VALUE, ctx->file, lookup_pos(ctx, path, 0), path, fmt, ap);
    va_end(ap);
    return RM_ERR_CONFIG_VALUE;
}

/* Reports RM_ERR_CONFIG_VALUE at a position of file `file` (directory-wide checks). */
__attribute__((format(printf, 5, 6))) static int loader_error(loader_t *ld, size_t file, rm_yaml_pos_t pos,
                                                              const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset_error(ld->err, RM_ERR_CONFIG_VALUE, ld->files[file], pos, path, fmt, ap);
    va_end(ap);
    return RM_ERR_CONFIG_VALUE;
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
        return report_at(ctx, RM_ERR_CONFIG_PARSE, pos, "", "out of memory");
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
        return report_at(ctx, RM_ERR_CONFIG_PARSE, pos, "",
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
        return report_at(ctx, RM_ERR_CONFIG_PARSE, pos, key, "out of memory");
    return 0;
}

static int walk_file(file_ctx_t *ctx)
{
    const rm_yaml_walk_ops_t ops = {
        .arg = ctx,
        .report = file_vreport,
        .document = walk_on_document,
        .root = walk_on_root,
        .top_scalar = walk_on_top_scalar,
    };
    int ret;

    /* libyaml would decode UTF-16, but the documents are cut out of the file by byte offsets of UTF-8 lines */
    if (ctx->len >= 2 && ((unsigned char)ctx->data[0] == 0xfe || (unsigned char)ctx->data[0] == 0xff) &&
        ((unsigned char)ctx->data[1] == 0xfe || (unsigned char)ctx->data[1] == 0xff))
        return set_error(ctx->ld->err, RM_ERR_CONFIG_PARSE, ctx->file, (rm_yaml_pos_t){1, 1}, NULL,
                         "the file is UTF-16; write it in UTF-8");
    if ((ret = rm_yaml_walk(ctx->data, ctx->len, &ops)) == 0)
        locate_documents(ctx);
    return ret;
}

/* ---------------------------------------------------------------------------------------------------------
 * Pass 2: libcyaml, with its log messages captured.
 * ------------------------------------------------------------------------------------------------------- */

/* ---------------------------------------------------------------------------------------------------------
 * Scalars.
 * ------------------------------------------------------------------------------------------------------- */

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;
    size_t n = 0;

    for (; s[n] != '\0'; n++) {
        if (s[n] < '0' || s[n] > '9' || n >= 10)
            return -1;
        v = v * 10 + (unsigned long)(s[n] - '0');
    }
    if (n == 0 || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* A DNS-1123 label: 1 to 63 of a-z 0-9 '-', starting and ending with a letter or digit. */
static int dns_label_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

/* A DNS-1123 subdomain: at most 253 characters, DNS-1123 labels joined by dots. */
static int dns_subdomain_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return 0;
    for (const char *p = s;;) {
        const char *dot = strchr(p, '.');
        size_t l = dot != NULL ? (size_t)(dot - p) : strlen(p);
        if (!dns_label_ok(p, l))
            return 0;
        if (dot == NULL)
            return 1;
        p = dot + 1;
    }
}

static int conv_bool(file_ctx_t *ctx, const char *path, const char *s, int *out)
{
    char q[96];
    if (s == NULL)
        return 0;
    if (strcmp(s, "true") == 0)
        *out = 1;
    else if (strcmp(s, "false") == 0)
        *out = 0;
    else
        return value_error(ctx, path, "%s is not a boolean (want true or false)", rm_yaml_quoted(q, sizeof(q), s));
    return 0;
}

static int conv_timeout(file_ctx_t *ctx, const char *path, const char *s, uint32_t *out)
{
    char q[96];
    uint64_t v;
    if (s == NULL)
        return 0;
    if (rm_duration_parse_ms_max(s, UINT32_MAX, &v) != 0)
        return value_error(ctx, path, "%s is not a duration (want e.g. 500ms, 5s, 2m, 1h or 1m30s, at most 1193h)",
                           rm_yaml_quoted(q, sizeof(q), s));
    *out = (uint32_t)v;
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------
 * Pass 3: MeshConfig.
 * ------------------------------------------------------------------------------------------------------- */

static int conv_metadata_name(file_ctx_t *ctx, const raw_doc_t *raw, int label, const char *kind)
{
    char q[96];
    if (raw->metadata == NULL)
        return value_error(ctx, "metadata", "is required (a %s needs metadata.name)", kind);
    if (raw->metadata->name == NULL)
        return value_error(ctx, "metadata.name", "is required");
    if (label ? !dns_label_ok(raw->metadata->name, strlen(raw->metadata->name))
              : !dns_subdomain_ok(raw->metadata->name))
        return value_error(ctx, "metadata.name", "%s is not a DNS-1123 %s (%s)",
                           rm_yaml_quoted(q, sizeof(q), raw->metadata->name), label ? "label" : "subdomain",
                           label ? "1 to 63 of a-z 0-9 -, starting and ending with a letter or digit"
                                 : "labels of a-z 0-9 - joined by dots, at most 253 characters");
    return 0;
}

/* spec.trustDomainAliases: the trust domains this mesh was known as (Istio's MeshConfig field), for policies */
static int conv_trust_domain_aliases(file_ctx_t *ctx, const raw_mesh_spec_t *spec, rm_mesh_settings_t *s)
{
    char q[96], path[64];
    int rc;
    if (spec->trust_domain_aliases_count > RM_MODEL_MAX_TRUST_DOMAIN_ALIASES)
        return value_error(ctx, "spec.trustDomainAliases", "has %u entries; at most %d are allowed",
                           spec->trust_domain_aliases_count, RM_MODEL_MAX_TRUST_DOMAIN_ALIASES);
    for (unsigned i = 0; i < spec->trust_domain_aliases_count; i++) {
        const char *td = spec->trust_domain_aliases[i];
        snprintf(path, sizeof(path), "spec.trustDomainAliases[%u]", i);
        if ((rc = rm_trust_domain_check(td, strlen(td))) != 0)
            return value_error(ctx, path, "%s is not a SPIFFE trust domain: %s", rm_yaml_quoted(q, sizeof(q), td),
                               rm_strerror(rc));
    }
    if (spec->trust_domain_aliases_count == 0)
        return 0;
    char **v = calloc(spec->trust_domain_aliases_count, sizeof(*v));
    if (v == NULL)
        return value_error(ctx, "spec.trustDomainAliases", "out of memory");
    rm__mesh_settings_aliases_free(s);
    s->trust_domain_aliases = v;
    for (unsigned i = 0; i < spec->trust_domain_aliases_count; i++) {
        if ((v[i] = strdup(spec->trust_domain_aliases[i])) == NULL)
            return value_error(ctx, "spec.trustDomainAliases", "out of memory");
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
    int ret, rc;

    if (ld->have_mesh)
        return value_error(ctx, "kind", "a second MeshConfig (the first is at %s:%u); at most one is allowed",
                           ld->files[ld->mesh_file], ld->mesh_pos.line);
    if ((ret = conv_metadata_name(ctx, raw, 0, "MeshConfig")) != 0)
        return ret;
    ld->have_mesh = 1;
    ld->mesh_file = ctx->file_index;
    ld->mesh_pos = ctx->doc->pos;
    if (spec == NULL)
        return 0;

    if (spec->trust_domain != NULL) {
        if ((rc = rm_trust_domain_check(spec->trust_domain, strlen(spec->trust_domain))) != 0)
            return value_error(ctx, "spec.trustDomain", "%s is not a SPIFFE trust domain: %s",
                               rm_yaml_quoted(q, sizeof(q), spec->trust_domain), rm_strerror(rc));
        char *td = strdup(spec->trust_domain);
        if (td == NULL)
            return value_error(ctx, "spec.trustDomain", "out of memory");
        free(s->trust_domain);
        s->trust_domain = td;
    }
    if ((ret = conv_trust_domain_aliases(ctx, spec, s)) != 0)
        return ret;
    if (spec->mtls != NULL && spec->mtls->mode != NULL) {
        const char *m = spec->mtls->mode;
        if (strcmp(m, "STRICT") == 0)
            s->inbound_mode = RM_MODEL_MTLS_STRICT;
        else if (strcmp(m, "PERMISSIVE") == 0)
            s->inbound_mode = RM_MODEL_MTLS_PERMISSIVE;
        else if (strcmp(m, "DISABLE") == 0)
            s->inbound_mode = RM_MODEL_MTLS_DISABLE;
        else
            return value_error(ctx, "spec.mtls.mode", "%s is not an mTLS mode (want STRICT, PERMISSIVE or DISABLE)",
                               rm_yaml_quoted(q, sizeof(q), m));
    }
    if (spec->svid_ttl != NULL) {
        uint64_t ms;
        if (rm_duration_parse_ms_max(spec->svid_ttl, (uint64_t)SVID_TTL_MAX_S * 1000, &ms) != 0)
            return value_error(ctx, "spec.svidTTL",
                               "%s is not a duration (want e.g. 24h, 90m or 12h30m, at most 8760h)",
                               rm_yaml_quoted(q, sizeof(q), spec->svid_ttl));
        if (ms < (uint64_t)RM_CA_MIN_TTL * 1000)
            return value_error(ctx, "spec.svidTTL", "%s is shorter than the minimum of %um",
                               rm_yaml_quoted(q, sizeof(q), spec->svid_ttl), RM_CA_MIN_TTL / 60);
        if (ms % 1000 != 0)
            return value_error(ctx, "spec.svidTTL", "%s is not a whole number of seconds",
                               rm_yaml_quoted(q, sizeof(q), spec->svid_ttl));
        s->svid_ttl = (int64_t)(ms / 1000);
    }
    if (spec->root_namespace != NULL) {
        if (!dns_label_ok(spec->root_namespace, strlen(spec->root_namespace)))
            return value_error(ctx, "spec.rootNamespace", "%s is not a namespace name (DNS label)",
                               rm_yaml_quoted(q, sizeof(q), spec->root_namespace));
        char *rn = strdup(spec->root_namespace);
        if (rn == NULL)
            return value_error(ctx, "spec.rootNamespace", "out of memory");
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
                return value_error(ctx, "spec.authorization.defaultAction", "%s is not DENY or ALLOW",
                                   rm_yaml_quoted(q, sizeof(q), a->default_action));
        }
        if ((ret = conv_bool(ctx, "spec.authorization.logAllowed", a->log_allowed, &s->log_allowed)) != 0)
            return ret;
        if (a->log_allowed_sample_rate != NULL) {
            char *end;
            double v = strtod(a->log_allowed_sample_rate, &end);
            if (end == a->log_allowed_sample_rate || *end != '\0' || !(v > 0 && v <= 1))
                return value_error(ctx, "spec.authorization.logAllowedSampleRate",
                                   "%s is not a fraction in (0, 1] (e.g. 0.01 logs one allowed request in 100)",
                                   rm_yaml_quoted(q, sizeof(q), a->log_allowed_sample_rate));
            s->log_allowed_sample = v;
        }
        if (a->path_normalization != NULL && a->path_normalization->normalization != NULL &&
            rm_path_normalization_parse(a->path_normalization->normalization, &s->path_normalization) != 0)
            return value_error(ctx, "spec.authorization.pathNormalization.normalization",
                               "%s is not " RM_PATH_NORMALIZATION_NAMES,
                               rm_yaml_quoted(q, sizeof(q), a->path_normalization->normalization));
    }
    if ((ret = conv_timeout(ctx, "spec.connectTimeout", spec->connect_timeout, &s->connect_timeout_ms)) != 0 ||
        (ret = conv_timeout(ctx, "spec.idleTimeout", spec->idle_timeout, &s->idle_timeout_ms)) != 0 ||
        (ret = conv_bool(ctx, "spec.accessLog", spec->access_log, &s->access_log)) != 0)
        return ret;
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------
 * Pass 3: Service.
 * ------------------------------------------------------------------------------------------------------- */

static void pending_service_clear(pending_service_t *p)
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
static void vip_port_str(char *buf, size_t len, const vip_t *v, unsigned port)
{
    char host[INET6_ADDRSTRLEN];
    inet_ntop(v->family, v->bytes, host, sizeof(host));
    snprintf(buf, len, v->family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}

static int conv_vips(file_ctx_t *ctx, const raw_service_spec_t *spec, pending_service_t *p)
{
    char path[64], q[96];

    if (spec->addresses_count == 0)
        return value_error(ctx, "spec.addresses", "is required (the service's VIPs, IPv4 or IPv6 literals)");
    if ((p->vips = calloc(spec->addresses_count, sizeof(*p->vips))) == NULL)
        return value_error(ctx, "spec.addresses", "out of memory");
    for (unsigned i = 0; i < spec->addresses_count; i++) {
        vip_t *v = &p->vips[i];
        snprintf(path, sizeof(path), "spec.addresses[%u]", i);
        if (parse_vip(spec->addresses[i], v) != 0)
            return value_error(ctx, path,
                               "%s is not an IP address (want an IPv4 or IPv6 literal, without port or brackets)",
                               rm_yaml_quoted(q, sizeof(q), spec->addresses[i]));
        if (vip_is_unspecified(v))
            return value_error(ctx, path, "%s is the unspecified address; a VIP must be a real address",
                               rm_yaml_quoted(q, sizeof(q), spec->addresses[i]));
        for (unsigned j = 0; j < i; j++)
            if (p->vips[j].family == v->family && memcmp(p->vips[j].bytes, v->bytes, sizeof(v->bytes)) == 0)
                return value_error(ctx, path, "%s is the same address as spec.addresses[%u]",
                                   rm_yaml_quoted(q, sizeof(q), spec->addresses[i]), j);
        v->index = i;
        v->pos = lookup_pos(ctx, path, 0);
        p->num_vips = i + 1;
    }
    return 0;
}

static int conv_ports(file_ctx_t *ctx, const raw_service_spec_t *spec, pending_service_t *p)
{
    char path[64], q[96];
    unsigned long port;

    if (spec->ports_count == 0)
        return value_error(ctx, "spec.ports", "is required (1 to 65535)");
    if ((p->ports = calloc(spec->ports_count, sizeof(*p->ports))) == NULL)
        return value_error(ctx, "spec.ports", "out of memory");
    for (unsigned i = 0; i < spec->ports_count; i++) {
        snprintf(path, sizeof(path), "spec.ports[%u]", i);
        if (parse_uint(spec->ports[i], 1, 65535, &port) != 0)
            return value_error(ctx, path, "%s is not a port (want a whole number in 1..65535)",
                               rm_yaml_quoted(q, sizeof(q), spec->ports[i]));
        for (unsigned j = 0; j < i; j++)
            if (p->ports[j] == port)
                return value_error(ctx, path, "port %lu is also spec.ports[%u]", port, j);
        p->ports[i] = (uint16_t)port;
        p->num_ports = i + 1;
    }
    return 0;
}

static int conv_accounts(file_ctx_t *ctx, const raw_service_spec_t *spec, pending_service_t *p)
{
    char path[64], q[96];

    if (spec->service_accounts_count == 0)
        return 0;
    if ((p->accounts = calloc(spec->service_accounts_count, sizeof(*p->accounts))) == NULL)
        return value_error(ctx, "spec.serviceAccounts", "out of memory");
    for (unsigned i = 0; i < spec->service_accounts_count; i++) {
        const char *sa = spec->service_accounts[i];
        snprintf(path, sizeof(path), "spec.serviceAccounts[%u]", i);
        if (!dns_subdomain_ok(sa))
            return value_error(ctx, path,
                               "%s is not a ServiceAccount name (a DNS-1123 subdomain: labels of a-z 0-9 - joined by "
                               "dots, at most 253 characters)",
                               rm_yaml_quoted(q, sizeof(q), sa));
        for (unsigned j = 0; j < i; j++)
            if (strcmp(p->accounts[j].value, sa) == 0)
                return value_error(ctx, path, "%s is also spec.serviceAccounts[%u]", rm_yaml_quoted(q, sizeof(q), sa),
                                   j);
        if ((p->accounts[i].value = strdup(sa)) == NULL)
            return value_error(ctx, path, "out of memory");
        p->accounts[i].index = i;
        p->accounts[i].pos = lookup_pos(ctx, path, 0);
        p->num_accounts = i + 1;
    }
    return 0;
}

static int conv_ids(file_ctx_t *ctx, const raw_service_spec_t *spec, pending_service_t *p)
{
    char path[64], q[96];
    rm_spiffe_id_t *id = NULL;
    int ret = 0, rc;

    if (spec->identities_count == 0)
        return 0;
    if ((p->ids = calloc(spec->identities_count, sizeof(*p->ids))) == NULL || (id = malloc(sizeof(*id))) == NULL) {
        ret = value_error(ctx, "spec.identities", "out of memory");
        goto Exit;
    }
    for (unsigned i = 0; i < spec->identities_count; i++) {
        const char *s = spec->identities[i];
        snprintf(path, sizeof(path), "spec.identities[%u]", i);
        if ((rc = rm_spiffe_id_parse(s, strlen(s), id)) != 0) {
            ret = value_error(ctx, path, "%s is not a SPIFFE ID: %s", rm_yaml_quoted(q, sizeof(q), s), rm_strerror(rc));
            goto Exit;
        }
        if (id->len == 9 + id->td_len) {
            ret = value_error(ctx, path, "%s names a trust domain, not a workload (it has no path)",
                              rm_yaml_quoted(q, sizeof(q), s));
            goto Exit;
        }
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(p->ids[j].value, s) == 0) {
                ret = value_error(ctx, path, "%s is also spec.identities[%u]", rm_yaml_quoted(q, sizeof(q), s), j);
                goto Exit;
            }
        }
        if ((p->ids[i].value = strdup(s)) == NULL) {
            ret = value_error(ctx, path, "out of memory");
            goto Exit;
        }
        p->ids[i].index = i;
        p->ids[i].pos = lookup_pos(ctx, path, 0);
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
    char q[96];
    int ret;

    memset(&p, 0, sizeof(p));
    p.in_mesh = 1;
    p.file = ctx->file_index;
    p.doc_pos = ctx->doc->pos;

    if ((ret = conv_metadata_name(ctx, raw, 1, "Service")) != 0)
        goto Exit;
    p.name_pos = lookup_pos(ctx, "metadata.name", 0);
    const char *ns = raw->metadata->namespace_ != NULL ? raw->metadata->namespace_ : DEFAULT_NAMESPACE;
    if (!dns_label_ok(ns, strlen(ns))) {
        ret = value_error(ctx, "metadata.namespace",
                          "%s is not a DNS-1123 label (1 to 63 of a-z 0-9 -, starting and ending with a letter or "
                          "digit)",
                          rm_yaml_quoted(q, sizeof(q), ns));
        goto Exit;
    }
    if ((p.namespace_ = strdup(ns)) == NULL || (p.name = strdup(raw->metadata->name)) == NULL) {
        ret = value_error(ctx, "metadata", "out of memory");
        goto Exit;
    }
    if (spec == NULL) {
        ret = value_error(ctx, "spec", "is required (a Service needs spec.addresses and spec.ports)");
        goto Exit;
    }
    p.spec_pos = lookup_pos(ctx, "spec", 0);
    if ((ret = conv_vips(ctx, spec, &p)) != 0 || (ret = conv_ports(ctx, spec, &p)) != 0 ||
        (ret = conv_bool(ctx, "spec.inMesh", spec->in_mesh, &p.in_mesh)) != 0 ||
        (ret = conv_accounts(ctx, spec, &p)) != 0 || (ret = conv_ids(ctx, spec, &p)) != 0)
        goto Exit;

    if (ld->num_services == ld->cap_services) {
        size_t cap = ld->cap_services == 0 ? 16 : ld->cap_services * 2;
        pending_service_t *services = realloc(ld->services, cap * sizeof(*services));
        if (services == NULL) {
            ret = value_error(ctx, "", "out of memory");
            goto Exit;
        }
        ld->services = services;
        ld->cap_services = cap;
    }
    ld->services[ld->num_services++] = p;
    memset(&p, 0, sizeof(p));

Exit:
    pending_service_clear(&p);
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
};

/* Checks apiVersion and kind (noted by pass 1) and returns the kind, or NULL with the error set. */
static const kind_t *document_kind(file_ctx_t *ctx, int *ret)
{
    const doc_t *doc = ctx->doc;
    const rm_yaml_node_t *e;
    char q[96];

    if ((e = rm_yaml_pos_map_find(&doc->map, "apiVersion")) == NULL) {
        *ret = report_at(ctx, RM_ERR_CONFIG_VALUE, doc->pos, "apiVersion", "is required (%s)", API_VERSION);
        return NULL;
    }
    if (doc->api_version == NULL || strcmp(doc->api_version, API_VERSION) != 0) {
        *ret = report_at(
            ctx, RM_ERR_CONFIG_VALUE, e->value, "apiVersion", "%s is not a version this source reads (want %s)",
            doc->api_version != NULL ? rm_yaml_quoted(q, sizeof(q), doc->api_version) : "a collection", API_VERSION);
        return NULL;
    }
    if ((e = rm_yaml_pos_map_find(&doc->map, "kind")) == NULL) {
        *ret = report_at(ctx, RM_ERR_CONFIG_VALUE, doc->pos, "kind", "is required (MeshConfig or Service)");
        return NULL;
    }
    for (size_t i = 0; doc->kind != NULL && i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(doc->kind, kinds[i].name) == 0)
            return &kinds[i];
    *ret = report_at(ctx, RM_ERR_CONFIG_VALUE, e->value, "kind",
                     "%s is not a kind this source reads (want MeshConfig or Service)",
                     doc->kind != NULL ? rm_yaml_quoted(q, sizeof(q), doc->kind) : "a collection");
    return NULL;
}

static int load_document(file_ctx_t *ctx, size_t end)
{
    const kind_t *kind;
    rm_yaml_cyaml_capture_t *cap = NULL;
    raw_doc_t *raw = NULL;
    cyaml_config_t cyaml_cfg = {
        .log_fn = rm_yaml_cyaml_log,
        .mem_fn = cyaml_mem,
        .log_level = CYAML_LOG_ERROR,
        .flags = CYAML_CFG_NO_ALIAS,
    };
    cyaml_err_t cerr;
    int ret = 0;

    /* policies are read by the policy loader, which understands Istio's API versions too (load_file_data) */
    if (ctx->doc->kind != NULL &&
        (strcmp(ctx->doc->kind, "AuthorizationPolicy") == 0 || strcmp(ctx->doc->kind, "PeerAuthentication") == 0))
        return 0;
    if ((kind = document_kind(ctx, &ret)) == NULL)
        return ret;
    if ((cap = calloc(1, sizeof(*cap))) == NULL)
        return report_at(ctx, RM_ERR_CONFIG_PARSE, ctx->doc->pos, "", "out of memory");
    cap->line_offset = ctx->doc->first_line - 1;
    cyaml_cfg.log_ctx = cap;

    cerr = cyaml_load_data((const uint8_t *)ctx->data + ctx->doc->begin, end - ctx->doc->begin, &cyaml_cfg,
                           kind->schema, (cyaml_data_t **)&raw, NULL);
    if (cerr != CYAML_OK) {
        raw = NULL;
        ret = rm_yaml_report_cyaml_error(cap, cerr, kind->fields, &ctx->doc->map, ctx->doc->pos, file_vreport, ctx);
        goto Exit;
    }
    if (raw == NULL) {
        ret = report_at(ctx, RM_ERR_CONFIG_PARSE, ctx->doc->pos, "", "the document is empty");
        goto Exit;
    }
    ret = kind->convert(ctx, raw);

Exit:
    if (raw != NULL)
        cyaml_free(&cyaml_cfg, kind->schema, raw, 0);
    free(cap);
    return ret;
}

/* Copies the first error of `diags` (they come in text order) into the loader's error. */
static int policy_error(loader_t *ld, const rm_policy_diags_t *diags)
{
    for (size_t i = 0; i < diags->n; i++) {
        const rm_policy_diag_t *d = &diags->d[i];
        if (d->warning)
            continue;
        return set_error(ld->err, RM_ERR_CONFIG_VALUE, d->file != NULL ? d->file : "",
                         (rm_yaml_pos_t){d->line, d->column}, d->path, "%s", d->message);
    }
    return 0;
}

/* The file's AuthorizationPolicy and PeerAuthentication documents; any error rejects the whole change, so a policy
 * that fails validation never reaches a sidecar and the last good configuration stays in force. */
static int load_policies(loader_t *ld, size_t file_index, const char *data, size_t len)
{
    rm_policy_diags_t diags = {0};
    int ret = rm_policy_load_yaml(&ld->policies, data, len, ld->files[file_index], 0, &diags);
    if (ret == -ENOMEM)
        ret = set_error(ld->err, RM_ERR_CONFIG_IO, ld->files[file_index], (rm_yaml_pos_t){0, 0}, NULL, "out of memory");
    else if (ret > 0)
        ret = policy_error(ld, &diags);
    rm_policy_diags_clear(&diags);
    return ret;
}

/* Checks across files: a namespace/name defined twice is an error; warnings (rules that can never match, HTTP
 * fields on TCP) are logged, once per accepted change. */
static int check_policies(loader_t *ld)
{
    rm_policy_diags_t diags = {0};
    int ret = 0;
    rm_policy_lint(&ld->policies, &diags);
    if (diags.num_errors > 0) {
        ret = policy_error(ld, &diags);
    } else {
        for (size_t i = 0; i < diags.n; i++) {
            char msg[2048];
            rm_log_line_t l;
            rm_policy_diag_format(&diags.d[i], msg, sizeof(msg));
            rm_log_begin(&l, RM_LOG_WARN, "policy_warning");
            rm_log_str(&l, "file", diags.d[i].file);
            rm_log_uint(&l, "line", diags.d[i].line);
            rm_log_str(&l, "field", diags.d[i].path);
            rm_log_str(&l, "message", msg);
            rm_log_end(&l);
        }
    }
    rm_policy_diags_clear(&diags);
    return ret;
}

static int load_file_data(loader_t *ld, size_t file_index, const char *data, size_t len)
{
    file_ctx_t ctx = {.ld = ld, .file_index = file_index, .file = ld->files[file_index], .data = data, .len = len};
    int ret;

    if ((ret = walk_file(&ctx)) != 0)
        goto Exit;
    for (size_t d = 0; d < ctx.num_docs; d++) {
        ctx.doc = &ctx.docs[d];
        if (ctx.doc->is_null)
            continue;
        size_t end = d + 1 < ctx.num_docs ? ctx.docs[d + 1].begin : len;
        if (end < ctx.doc->begin)
            end = ctx.doc->begin;
        if ((ret = load_document(&ctx, end)) != 0)
            goto Exit;
    }
    ret = load_policies(ld, file_index, data, len);

Exit:
    for (size_t d = 0; d < ctx.num_docs; d++) {
        rm_yaml_pos_map_dispose(&ctx.docs[d].map);
        free(ctx.docs[d].api_version);
        free(ctx.docs[d].kind);
    }
    free(ctx.docs);
    return ret;
}

/* Reads a regular file whole. Returns 0, -ENOENT (gone) or RM_ERR_CONFIG_IO with the error set. */
static int read_file(config_error_t *err, int dir_fd, const char *name, const char *shown, char **out, size_t *out_len)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0, cap;
    int fd, ret = 0;

    /* O_NONBLOCK: a FIFO that slipped in between the listing and here must not block the reload */
    if ((fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0) {
        if (errno == ENOENT)
            return -ENOENT;
        return set_error(err, RM_ERR_CONFIG_IO, shown, (rm_yaml_pos_t){0, 0}, NULL, "cannot open: %s", strerror(errno));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ret = set_error(err, RM_ERR_CONFIG_IO, shown, (rm_yaml_pos_t){0, 0}, NULL, "not a regular file");
        goto Exit;
    }
    if (st.st_size > CONFIG_FILE_MAX) {
        ret = set_error(err, RM_ERR_CONFIG_IO, shown, (rm_yaml_pos_t){0, 0}, NULL, "larger than %u bytes",
                        CONFIG_FILE_MAX);
        goto Exit;
    }
    /* sized by fstat, plus one byte to notice a file that grew since (then it is refused, never cut short) */
    cap = (size_t)st.st_size + 1;
    if ((buf = malloc(cap + 1)) == NULL) {
        ret = set_error(err, RM_ERR_CONFIG_IO, shown, (rm_yaml_pos_t){0, 0}, NULL, "out of memory");
        goto Exit;
    }
    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ret = set_error(err, RM_ERR_CONFIG_IO, shown, (rm_yaml_pos_t){0, 0}, NULL, "cannot read: %s",
                            strerror(errno));
            goto Exit;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len == cap) {
        ret = set_error(err, RM_ERR_CONFIG_IO, shown, (rm_yaml_pos_t){0, 0}, NULL, "changed while it was being read");
        goto Exit;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    buf = NULL;

Exit:
    free(buf);
    close(fd);
    return ret;
}

/* ---------------------------------------------------------------------------------------------------------
 * Checks across files, and the model.
 * ------------------------------------------------------------------------------------------------------- */

/* Fills each service's identities: serviceAccounts turned into SPIFFE IDs, then the explicit ones, which must be
 * in the trust domain. */
static int check_identities(loader_t *ld)
{
    const char *td = ld->settings.trust_domain;
    size_t td_len = strlen(td);
    char path[64], q[96], id[RM_SPIFFE_ID_MAX + 1];

    for (size_t i = 0; i < ld->num_services; i++) {
        pending_service_t *p = &ld->services[i];
        size_t n = p->num_accounts + p->num_ids;
        if (n == 0) {
            if (p->in_mesh)
                return loader_error(ld, p->file, p->spec_pos, "spec",
                                    "service %s/%s is in the mesh but has no identity: list spec.serviceAccounts or "
                                    "spec.identities (or set spec.inMesh: false)",
                                    p->namespace_, p->name);
            continue;
        }
        if ((p->identities = calloc(n, sizeof(*p->identities))) == NULL)
            return loader_error(ld, p->file, p->spec_pos, "spec", "out of memory");
        for (size_t j = 0; j < p->num_accounts; j++) {
            int len = snprintf(id, sizeof(id), "spiffe://%s/ns/%s/sa/%s", td, p->namespace_, p->accounts[j].value);
            snprintf(path, sizeof(path), "spec.serviceAccounts[%u]", p->accounts[j].index);
            if (len < 0 || (size_t)len >= sizeof(id) || rm_spiffe_id_parse(id, (size_t)len, NULL) != 0)
                return loader_error(ld, p->file, p->accounts[j].pos, path, "gives %s, which is not a SPIFFE ID",
                                    rm_yaml_quoted(q, sizeof(q), id));
            if ((p->identities[p->num_identities] = strdup(id)) == NULL)
                return loader_error(ld, p->file, p->accounts[j].pos, path, "out of memory");
            p->num_identities++;
        }
        for (size_t j = 0; j < p->num_ids; j++) {
            const entry_t *e = &p->ids[j];
            snprintf(path, sizeof(path), "spec.identities[%u]", e->index);
            if (strncmp(e->value + 9, td, td_len) != 0 || (e->value[9 + td_len] != '/' && e->value[9 + td_len] != '\0'))
                return loader_error(ld, p->file, e->pos, path, "%s is not in the mesh's trust domain \"%s\"",
                                    rm_yaml_quoted(q, sizeof(q), e->value), td);
            for (size_t k = 0; k < p->num_accounts; k++)
                if (strcmp(p->identities[k], e->value) == 0)
                    return loader_error(ld, p->file, e->pos, path, "%s is already given by spec.serviceAccounts[%u]",
                                        rm_yaml_quoted(q, sizeof(q), e->value), p->accounts[k].index);
            if ((p->identities[p->num_identities] = strdup(e->value)) == NULL)
                return loader_error(ld, p->file, e->pos, path, "out of memory");
            p->num_identities++;
        }
    }
    return 0;
}

static int cmp_pending_name(const void *x, const void *y)
{
    const pending_service_t *a = *(pending_service_t *const *)x, *b = *(pending_service_t *const *)y;
    int c = strcmp(a->namespace_, b->namespace_);
    if (c == 0)
        c = strcmp(a->name, b->name);
    return c != 0 ? c : (a < b ? -1 : a > b); /* reading order among equals: the first read is the original */
}

static int check_unique_services(loader_t *ld)
{
    pending_service_t **order;
    int ret = 0;

    if (ld->num_services < 2)
        return 0;
    if ((order = malloc(ld->num_services * sizeof(*order))) == NULL)
        return loader_error(ld, 0, (rm_yaml_pos_t){0, 0}, NULL, "out of memory");
    for (size_t i = 0; i < ld->num_services; i++)
        order[i] = &ld->services[i];
    qsort(order, ld->num_services, sizeof(*order), cmp_pending_name);
    for (size_t i = 1; i < ld->num_services; i++) {
        const pending_service_t *a = order[i - 1], *b = order[i];
        if (strcmp(a->namespace_, b->namespace_) == 0 && strcmp(a->name, b->name) == 0) {
            ret = loader_error(ld, b->file, b->name_pos, "metadata.name", "service %s/%s is also defined at %s:%u",
                               b->namespace_, b->name, ld->files[a->file], a->name_pos.line);
            break;
        }
    }
    free(order);
    return ret;
}

typedef struct st_endpoint_ref_t {
    const vip_t *vip;
    unsigned port;
    const pending_service_t *svc;
} endpoint_ref_t;

static int cmp_endpoint(const void *x, const void *y)
{
    const endpoint_ref_t *a = x, *b = y;
    int c;
    if (a->vip->family != b->vip->family)
        return a->vip->family < b->vip->family ? -1 : 1;
    if ((c = memcmp(a->vip->bytes, b->vip->bytes, sizeof(a->vip->bytes))) != 0)
        return c;
    if (a->port != b->port)
        return a->port < b->port ? -1 : 1;
    return a->svc < b->svc ? -1 : a->svc > b->svc; /* reading order among equals */
}

static int check_unique_endpoints(loader_t *ld)
{
    endpoint_ref_t *refs;
    size_t n = 0;
    int ret = 0;

    for (size_t i = 0; i < ld->num_services; i++)
        n += ld->services[i].num_vips * ld->services[i].num_ports;
    if (n < 2)
        return 0;
    if ((refs = malloc(n * sizeof(*refs))) == NULL)
        return loader_error(ld, 0, (rm_yaml_pos_t){0, 0}, NULL, "out of memory");
    n = 0;
    for (size_t i = 0; i < ld->num_services; i++)
        for (size_t v = 0; v < ld->services[i].num_vips; v++)
            for (size_t p = 0; p < ld->services[i].num_ports; p++)
                refs[n++] = (endpoint_ref_t){&ld->services[i].vips[v], ld->services[i].ports[p], &ld->services[i]};
    qsort(refs, n, sizeof(*refs), cmp_endpoint);
    for (size_t i = 1; i < n; i++) {
        const endpoint_ref_t *a = &refs[i - 1], *b = &refs[i];
        if (cmp_endpoint(a, b) != 0 && a->svc != b->svc && a->vip->family == b->vip->family &&
            memcmp(a->vip->bytes, b->vip->bytes, sizeof(a->vip->bytes)) == 0 && a->port == b->port) {
            char ep[INET6_ADDRSTRLEN + 10], path[64];
            vip_port_str(ep, sizeof(ep), b->vip, b->port);
            snprintf(path, sizeof(path), "spec.addresses[%u]", b->vip->index);
            ret = loader_error(ld, b->svc->file, b->vip->pos, path,
                               "%s is also an address of service %s/%s (%s:%u, spec.addresses[%u])", ep,
                               a->svc->namespace_, a->svc->name, ld->files[a->svc->file], a->vip->pos.line,
                               a->vip->index);
            break;
        }
    }
    free(refs);
    return ret;
}

static int build_model(loader_t *ld, rm_mesh_model_t **out)
{
    rm_mesh_model_t *m;

    if ((m = rm__mesh_model_new()) == NULL)
        goto NoMem;
    free(m->settings.trust_domain);
    free(m->settings.root_namespace);
    m->settings = ld->settings;
    m->settings.root_namespace = NULL;
    ld->settings.trust_domain_aliases = NULL; /* moved */
    ld->settings.num_trust_domain_aliases = 0;
    if ((m->settings.trust_domain = strdup(ld->settings.trust_domain)) == NULL ||
        (m->settings.root_namespace = strdup(ld->settings.root_namespace)) == NULL)
        goto NoMem;
    m->policies = ld->policies; /* moved */
    memset(&ld->policies, 0, sizeof(ld->policies));
    if (ld->num_services > 0 && (m->services = calloc(ld->num_services, sizeof(*m->services))) == NULL)
        goto NoMem;
    for (size_t i = 0; i < ld->num_services; i++) {
        pending_service_t *p = &ld->services[i];
        rm_model_service_t *s = &m->services[m->num_services++];
        s->namespace_ = p->namespace_;
        s->name = p->name;
        p->namespace_ = p->name = NULL;
        s->in_mesh = p->in_mesh;
        s->identities = p->identities;
        s->num_identities = p->num_identities;
        p->identities = NULL;
        p->num_identities = 0;
        s->line = p->doc_pos.line;
        if ((s->file = strdup(ld->files[p->file])) == NULL ||
            (s->addresses = calloc(p->num_vips * p->num_ports, sizeof(*s->addresses))) == NULL)
            goto NoMem;
        for (size_t v = 0; v < p->num_vips; v++) {
            for (size_t j = 0; j < p->num_ports; j++) {
                char ep[INET6_ADDRSTRLEN + 10];
                vip_port_str(ep, sizeof(ep), &p->vips[v], p->ports[j]);
                if ((s->addresses[s->num_addresses] = strdup(ep)) == NULL)
                    goto NoMem;
                s->num_addresses++;
            }
        }
    }
    if (rm__mesh_model_seal(m) != 0)
        goto NoMem;
    *out = m;
    return 0;

NoMem:
    rm_mesh_model_unref(m);
    return set_error(ld->err, RM_ERR_CONFIG_IO, ld->num_files > 0 ? ld->files[0] : "", (rm_yaml_pos_t){0, 0}, NULL,
                     "out of memory");
}

static void loader_dispose(loader_t *ld)
{
    for (size_t i = 0; i < ld->num_files; i++)
        free(ld->files[i]);
    free(ld->files);
    for (size_t i = 0; i < ld->num_services; i++)
        pending_service_clear(&ld->services[i]);
    free(ld->services);
    free(ld->settings.trust_domain);
    free(ld->settings.root_namespace);
    rm__mesh_settings_aliases_free(&ld->settings);
    rm_policy_set_clear(&ld->policies);
    memset(ld, 0, sizeof(*ld));
}

/* ---------------------------------------------------------------------------------------------------------
 * The directory.
 * ------------------------------------------------------------------------------------------------------- */

static int is_yaml_name(const char *name)
{
    size_t n = strlen(name);
    if (name[0] == '.')
        return 0;
    return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) || (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

static int cmp_name(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The YAML files of the directory open as `dir_fd`, sorted by name; regular files only (symlinks followed). */
static int list_yaml_files(int dir_fd, char ***out, size_t *num_out)
{
    DIR *d;
    struct dirent *e;
    char **names = NULL;
    size_t num = 0, cap = 0;
    int fd, ret = 0;

    if ((fd = dup(dir_fd)) < 0)
        return -errno;
    if ((d = fdopendir(fd)) == NULL) {
        ret = -errno;
        close(fd);
        return ret;
    }
    rewinddir(d);
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (!is_yaml_name(e->d_name) || fstatat(dir_fd, e->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (num == cap) {
            size_t ncap = cap == 0 ? 16 : cap * 2;
            char **n = realloc(names, ncap * sizeof(*n));
            if (n == NULL) {
                ret = -ENOMEM;
                goto Exit;
            }
            names = n;
            cap = ncap;
        }
        if ((names[num] = strdup(e->d_name)) == NULL) {
            ret = -ENOMEM;
            goto Exit;
        }
        num++;
    }
    if (num > 1)
        qsort(names, num, sizeof(*names), cmp_name);

Exit:
    closedir(d);
    if (ret != 0) {
        for (size_t i = 0; i < num; i++)
            free(names[i]);
        free(names);
        return ret;
    }
    *out = names;
    *num_out = num;
    return 0;
}

/* Opens what the files are read from: `dir` itself, or, in a ConfigMap volume, the directory its "..data"
 * symlink points to at this moment, so that one load sees one version of the ConfigMap. *via_data is set when
 * the second applies. */
static int open_data_dir(const char *dir, int *via_data, config_error_t *err)
{
    int dir_fd, data_fd;
    struct stat st;

    *via_data = 0;
    if ((dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return set_error(err, RM_ERR_CONFIG_IO, dir, (rm_yaml_pos_t){0, 0}, NULL, "cannot open the directory: %s",
                         strerror(errno));
    if (fstatat(dir_fd, "..data", &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISLNK(st.st_mode))
        return dir_fd;
    /* opening "..data" resolves the symlink once; the directory stays readable through the fd */
    if ((data_fd = openat(dir_fd, "..data", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        int e = errno;
        close(dir_fd);
        return set_error(err, RM_ERR_CONFIG_IO, dir, (rm_yaml_pos_t){0, 0}, "..data", "cannot open: %s", strerror(e));
    }
    close(dir_fd);
    *via_data = 1;
    return data_fd;
}

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    char *s;
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (asprintf(&s, "%.*s/%s", (int)n, dir, name) < 0)
        return NULL;
    return s;
}

/* One attempt at reading every file. Returns 0, -EAGAIN when a ConfigMap's files vanished under it (a newer
 * version was swapped in: read again), or an RM_ERR_CONFIG_* with `ld->err` set. */
static int load_dir_once(const char *dir, loader_t *ld)
{
    char **names = NULL;
    size_t num_names = 0;
    int via_data, fd, ret;

    if ((fd = open_data_dir(dir, &via_data, ld->err)) < 0)
        return fd;
    if ((ret = list_yaml_files(fd, &names, &num_names)) != 0) {
        ret = set_error(ld->err, RM_ERR_CONFIG_IO, dir, (rm_yaml_pos_t){0, 0}, NULL, "cannot list the directory: %s",
                        strerror(-ret));
        goto Exit;
    }
    if (num_names > 0 && (ld->files = calloc(num_names, sizeof(*ld->files))) == NULL) {
        ret = set_error(ld->err, RM_ERR_CONFIG_IO, dir, (rm_yaml_pos_t){0, 0}, NULL, "out of memory");
        goto Exit;
    }
    for (size_t i = 0; i < num_names; i++) {
        char *data = NULL;
        size_t len = 0;
        if ((ld->files[ld->num_files] = join_path(dir, names[i])) == NULL) {
            ret = set_error(ld->err, RM_ERR_CONFIG_IO, dir, (rm_yaml_pos_t){0, 0}, NULL, "out of memory");
            goto Exit;
        }
        ld->num_files++;
        ret = read_file(ld->err, fd, names[i], ld->files[ld->num_files - 1], &data, &len);
        if (ret == -ENOENT) {
            /* deleted since the listing: its own event brings another reload; a ConfigMap is read again now */
            free(ld->files[--ld->num_files]);
            if (via_data) {
                ret = -EAGAIN;
                goto Exit;
            }
            continue;
        }
        if (ret != 0)
            goto Exit;
        ret = load_file_data(ld, ld->num_files - 1, data, len);
        free(data);
        if (ret != 0)
            goto Exit;
    }
    ret = 0;

Exit:
    for (size_t i = 0; i < num_names; i++)
        free(names[i]);
    free(names);
    close(fd);
    return ret;
}

static int load_dir(const char *dir, rm_mesh_model_t **out, config_error_t *err, size_t *num_files)
{
    loader_t ld;
    int ret = -EAGAIN;

    memset(err, 0, sizeof(*err));
    for (int attempt = 0; attempt < CONFIG_LOAD_ATTEMPTS && ret == -EAGAIN; attempt++) {
        memset(&ld, 0, sizeof(ld));
        ld.err = err;
        ld.settings.inbound_mode = RM_MODEL_MTLS_STRICT;
        ld.settings.access_log = 1;
        ld.settings.svid_ttl = RM_MODEL_DEFAULT_SVID_TTL;
        ld.settings.default_action = RM_AUTHZ_DENY;
        ld.settings.log_allowed_sample = 1;
        if ((ld.settings.trust_domain = strdup(RM_MODEL_DEFAULT_TRUST_DOMAIN)) == NULL ||
            (ld.settings.root_namespace = strdup(RM_MODEL_DEFAULT_ROOT_NAMESPACE)) == NULL) {
            ret = set_error(err, RM_ERR_CONFIG_IO, dir, (rm_yaml_pos_t){0, 0}, NULL, "out of memory");
            break;
        }
        if ((ret = load_dir_once(dir, &ld)) == 0 && (ret = check_identities(&ld)) == 0 &&
            (ret = check_unique_services(&ld)) == 0 && (ret = check_unique_endpoints(&ld)) == 0 &&
            (ret = check_policies(&ld)) == 0 && (ret = build_model(&ld, out)) == 0 && num_files != NULL)
            *num_files = ld.num_files;
        loader_dispose(&ld);
    }
    if (ret == -EAGAIN)
        ret = set_error(err, RM_ERR_CONFIG_IO, dir, (rm_yaml_pos_t){0, 0}, "..data",
                        "the ConfigMap changed while it was being read, %d times in a row", CONFIG_LOAD_ATTEMPTS);
    return ret;
}

int rm_mesh_model_load_dir(const char *dir, rm_mesh_model_t **out, char *err, size_t errlen)
{
    config_error_t *e;
    int ret;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (dir == NULL || out == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "(null): no configuration directory given");
        return RM_ERR_CONFIG_IO;
    }
    if ((e = malloc(sizeof(*e))) == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: out of memory", dir);
        return RM_ERR_CONFIG_IO;
    }
    if ((ret = load_dir(dir, out, e, NULL)) != 0)
        format_error(e, err, errlen);
    free(e);
    return ret;
}

/* ---------------------------------------------------------------------------------------------------------
 * The watcher.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_file_source_t {
    rm_source_t super;
    char *dir;
    char *version; /* of the model in force: the last one accepted */
    rm_source_update_cb cb;
    void *cb_arg;
    int running;
    pthread_t thread;
    int inotify_fd, wd, stop_fd;
} file_source_t;

#define FILE_SOURCE(src) ((file_source_t *)((char *)(src)-offsetof(file_source_t, super)))

static void log_accepted(const char *dir, const rm_mesh_model_t *m, size_t num_files)
{
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_INFO, "config_accepted");
    rm_log_str(&l, "source", "file");
    rm_log_str(&l, "dir", dir);
    rm_log_str(&l, "version", m->version);
    rm_log_uint(&l, "services", m->num_services);
    rm_log_uint(&l, "files", num_files);
    rm_log_end(&l);
}

static void log_rejected(const char *dir, const config_error_t *e, const char *in_force)
{
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_WARN, "config_rejected");
    rm_log_str(&l, "source", "file");
    rm_log_str(&l, "dir", dir);
    rm_log_str(&l, "file", e->file);
    rm_log_uint(&l, "line", e->line);
    rm_log_uint(&l, "column", e->column);
    rm_log_str(&l, "field", e->field);
    rm_log_str(&l, "reason", e->reason);
    rm_log_err(&l, "error", e->code);
    rm_log_str(&l, "version_in_force", in_force);
    rm_log_end(&l);
}

static void reload(file_source_t *fs)
{
    config_error_t *e;
    rm_mesh_model_t *m = NULL;
    size_t num_files = 0;
    char *version;

    if ((e = malloc(sizeof(*e))) == NULL) {
        rm_log_msg(RM_LOG_ERROR, "config_reload_failed", "out of memory");
        return;
    }
    if (load_dir(fs->dir, &m, e, &num_files) != 0) {
        log_rejected(fs->dir, e, fs->version);
        goto Exit;
    }
    if (strcmp(m->version, fs->version) == 0) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_DEBUG, "config_unchanged");
        rm_log_str(&l, "source", "file");
        rm_log_str(&l, "dir", fs->dir);
        rm_log_str(&l, "version", m->version);
        rm_log_end(&l);
        goto Exit;
    }
    if ((version = strdup(m->version)) == NULL) {
        rm_log_msg(RM_LOG_ERROR, "config_reload_failed", "out of memory");
        goto Exit;
    }
    free(fs->version);
    fs->version = version;
    log_accepted(fs->dir, m, num_files);
    fs->cb(fs->cb_arg, m);
    m = NULL;

Exit:
    rm_mesh_model_unref(m);
    free(e);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int add_watch(file_source_t *fs)
{
    fs->wd = inotify_add_watch(fs->inotify_fd, fs->dir,
                               IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF |
                                   IN_MOVE_SELF | IN_ONLYDIR);
    return fs->wd < 0 ? -errno : 0;
}

/* Whether an event can change what a load reads: a YAML file's name, the ConfigMap's "..data" swap, a lost
 * event queue. Hidden files and other names are never read. Sets *lost when the watch itself went away. */
static int event_matters(const struct inotify_event *ev, int *lost)
{
    if (ev->mask & IN_Q_OVERFLOW)
        return 1;
    if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
        *lost = 1;
        return 1;
    }
    if (ev->len == 0)
        return 0;
    return strcmp(ev->name, "..data") == 0 || is_yaml_name(ev->name);
}

static void *watch_main(void *arg)
{
    file_source_t *fs = arg;
    /* the first read is right away: it catches what changed between create() and start() */
    int64_t first = now_ms(), deadline = first, retry_at = -1;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));

    for (;;) {
        struct pollfd pfd[2] = {{.fd = fs->stop_fd, .events = POLLIN}, {.fd = fs->inotify_fd, .events = POLLIN}};
        int64_t now = now_ms(), wake = deadline;
        if (retry_at >= 0 && (wake < 0 || retry_at < wake))
            wake = retry_at;
        int timeout = wake < 0 ? -1 : wake <= now ? 0 : (int)(wake - now);

        if (poll(pfd, 2, timeout) < 0 && errno != EINTR) {
            rm_log_line_t l;
            rm_log_begin(&l, RM_LOG_ERROR, "config_watch_failed");
            rm_log_str(&l, "dir", fs->dir);
            rm_log_err(&l, "error", -errno);
            rm_log_end(&l);
            break;
        }
        if (pfd[0].revents != 0)
            break;
        now = now_ms();
        if (pfd[1].revents & POLLIN) {
            ssize_t n;
            while ((n = read(fs->inotify_fd, buf, sizeof(buf))) > 0) {
                for (char *p = buf; p < buf + n;) {
                    const struct inotify_event *ev = (const struct inotify_event *)p;
                    int lost = 0;
                    if ((ev->wd == fs->wd || (ev->mask & IN_Q_OVERFLOW)) && event_matters(ev, &lost)) {
                        if (first < 0)
                            first = now;
                        deadline = now + WATCH_QUIET_MS;
                        if (deadline > first + WATCH_MAX_DELAY_MS)
                            deadline = first + WATCH_MAX_DELAY_MS;
                        if (lost && fs->wd >= 0) {
                            inotify_rm_watch(fs->inotify_fd, fs->wd);
                            fs->wd = -1;
                            retry_at = now;
                            rm_log_line_t l;
                            rm_log_begin(&l, RM_LOG_WARN, "config_watch_lost");
                            rm_log_str(&l, "dir", fs->dir);
                            rm_log_end(&l);
                        }
                    }
                    p += sizeof(*ev) + ev->len;
                }
            }
        }
        if (retry_at >= 0 && now >= retry_at) {
            if (add_watch(fs) == 0) {
                retry_at = -1;
                if (first < 0)
                    first = now;
                deadline = now; /* what changed while nobody watched is read now */
            } else {
                retry_at = now + WATCH_RETRY_MS;
            }
        }
        if (deadline >= 0 && now >= deadline) {
            first = deadline = -1;
            reload(fs);
        }
    }
    return NULL;
}

static int file_source_start(rm_source_t *src, rm_source_update_cb cb, void *arg)
{
    file_source_t *fs = FILE_SOURCE(src);
    sigset_t all, old;
    int ret;

    if (fs->running)
        return -EBUSY;
    if (cb == NULL)
        return -EINVAL;
    fs->cb = cb;
    fs->cb_arg = arg;
    if ((fs->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0 ||
        (fs->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        ret = -errno;
        goto Fail;
    }
    if ((ret = add_watch(fs)) != 0)
        goto Fail;
    /* the signals stay with the threads that handle them */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    ret = -pthread_create(&fs->thread, NULL, watch_main, fs);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ret != 0)
        goto Fail;
    fs->running = 1;
    return 0;

Fail:
    if (fs->inotify_fd >= 0)
        close(fs->inotify_fd);
    if (fs->stop_fd >= 0)
        close(fs->stop_fd);
    fs->inotify_fd = fs->stop_fd = fs->wd = -1;
    return ret;
}

static void file_source_stop(rm_source_t *src)
{
    file_source_t *fs = FILE_SOURCE(src);
    uint64_t one = 1;

    if (!fs->running)
        return;
    while (write(fs->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
    pthread_join(fs->thread, NULL);
    close(fs->inotify_fd);
    close(fs->stop_fd);
    fs->inotify_fd = fs->stop_fd = fs->wd = -1;
    fs->running = 0;
}

static void file_source_destroy(rm_source_t *src)
{
    file_source_t *fs;

    if (src == NULL)
        return;
    fs = FILE_SOURCE(src);
    file_source_stop(src);
    free(fs->dir);
    free(fs->version);
    free(fs);
}

static const rm_source_ops_t file_source_ops = {
    .name = "file",
    .start = file_source_start,
    .stop = file_source_stop,
    .destroy = file_source_destroy,
};

int rm_source_file_create(const char *dir, rm_source_t **out, rm_mesh_model_t **initial, char *err, size_t errlen)
{
    file_source_t *fs = NULL;
    config_error_t *e = NULL;
    rm_mesh_model_t *m = NULL;
    size_t num_files = 0;
    int ret;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (dir == NULL || out == NULL || initial == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "(null): no configuration directory given");
        return RM_ERR_CONFIG_IO;
    }
    if ((e = malloc(sizeof(*e))) == NULL || (fs = calloc(1, sizeof(*fs))) == NULL || (fs->dir = strdup(dir)) == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: out of memory", dir);
        ret = -ENOMEM;
        goto Exit;
    }
    if ((ret = load_dir(dir, &m, e, &num_files)) != 0) {
        format_error(e, err, errlen);
        goto Exit;
    }
    if ((fs->version = strdup(m->version)) == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: out of memory", dir);
        ret = -ENOMEM;
        goto Exit;
    }
    fs->super.ops = &file_source_ops;
    fs->inotify_fd = fs->stop_fd = fs->wd = -1;
    log_accepted(dir, m, num_files);
    *out = &fs->super;
    *initial = m;
    fs = NULL;
    m = NULL;

Exit:
    rm_mesh_model_unref(m);
    if (fs != NULL) {
        free(fs->dir);
        free(fs->version);
        free(fs);
    }
    free(e);
    return ret;
}
