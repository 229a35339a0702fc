/* ringmesh-proxy's configuration loader.
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
 *  3. The strings are converted and validated into rm_proxy_config_t; a failing field is located with the
 *     path map from pass 1.
 *
 * Every message has the form "FILE:LINE:COLUMN: FIELD.PATH: what is wrong". */
#include "proxy_config.h"

#include "ringmesh/yaml_load.h"
#include "ringmesh/yaml_pos_map.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"
#include "ringmesh/svid.h"

#include <arpa/inet.h>
#include <cyaml/cyaml.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define CONFIG_FILE_MAX    (4u << 20) /* a larger file is refused before parsing */
#define CONFIG_STRING_MAX  4096u      /* longest scalar accepted (file paths are at most PATH_MAX) */
#define CONFIG_WORKERS_MAX 64u
#define CONFIG_CONN_MAX    1000000u
#define CONFIG_MSG_MAX     768u

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
    raw_path_normalization_t *path_normalization;
    char **trust_domain_aliases;
    unsigned trust_domain_aliases_count;
} raw_authz_t;

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
    char *access_log;
    char *log_level;
} raw_config_t;

#define OPT          CYAML_FLAG_OPTIONAL
#define OPT_NULL     (CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER_NULL)
#define STR(k, t, m) CYAML_FIELD_STRING_PTR(k, OPT, t, m, 0, CONFIG_STRING_MAX)

static const cyaml_schema_value_t string_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CONFIG_STRING_MAX),
};

static const cyaml_schema_field_t tls_fields[] = {
    STR("certFile", raw_tls_t, cert_file),
    STR("keyFile", raw_tls_t, key_file),
    STR("bundleFile", raw_tls_t, bundle_file),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t node_fields[] = {
    STR("id", raw_node_t, id),
    STR("namespace", raw_node_t, namespace_),
    STR("serviceAccount", raw_node_t, service_account),
    CYAML_FIELD_SEQUENCE("labels", OPT_NULL, raw_node_t, labels, &string_entry, 0, 256),
    STR("labelsFile", raw_node_t, labels_file),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t control_fields[] = {
    STR("address", raw_control_t, address),
    STR("serverName", raw_control_t, server_name),
    STR("identity", raw_control_t, identity),
    STR("bootstrapBundleFile", raw_control_t, bootstrap_bundle_file),
    STR("tokenFile", raw_control_t, token_file),
    STR("stateDir", raw_control_t, state_dir),
    STR("renewFraction", raw_control_t, renew_fraction),
    STR("svidTTL", raw_control_t, svid_ttl),
    CYAML_FIELD_MAPPING_PTR("node", OPT_NULL, raw_control_t, node, node_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t port_mode_fields[] = {
    STR("port", raw_port_mode_t, port),
    STR("mode", raw_port_mode_t, mode),
    CYAML_FIELD_END,
};
static const cyaml_schema_value_t port_mode_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, raw_port_mode_t, port_mode_fields),
};

static const cyaml_schema_field_t outbound_fields[] = {
    STR("enabled", raw_endpoint_t, enabled),
    STR("listen", raw_endpoint_t, listen),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t inbound_fields[] = {
    STR("enabled", raw_endpoint_t, enabled),
    STR("listen", raw_endpoint_t, listen),
    STR("mode", raw_endpoint_t, mode),
    CYAML_FIELD_SEQUENCE("portModes", OPT_NULL, raw_endpoint_t, port_modes, &port_mode_entry, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t admin_fields[] = {
    STR("enabled", raw_endpoint_t, enabled),
    STR("listen", raw_endpoint_t, listen),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t destination_fields[] = {
    STR("address", raw_destination_t, address),
    CYAML_FIELD_SEQUENCE("identities", OPT_NULL, raw_destination_t, identities, &string_entry, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};
static const cyaml_schema_value_t destination_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, raw_destination_t, destination_fields),
};

static const cyaml_schema_field_t listener_fields[] = {
    STR("name", raw_listener_t, name),
    STR("type", raw_listener_t, type),
    STR("listen", raw_listener_t, listen),
    STR("target", raw_listener_t, target),
    STR("mode", raw_listener_t, mode),
    CYAML_FIELD_SEQUENCE("identities", OPT_NULL, raw_listener_t, identities, &string_entry, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};
static const cyaml_schema_value_t listener_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, raw_listener_t, listener_fields),
};

static const cyaml_schema_field_t path_normalization_fields[] = {
    STR("normalization", raw_path_normalization_t, normalization),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t authz_fields[] = {
    STR("policyDir", raw_authz_t, policy_dir),
    STR("defaultAction", raw_authz_t, default_action),
    STR("logAllowed", raw_authz_t, log_allowed),
    CYAML_FIELD_MAPPING_PTR("pathNormalization", OPT_NULL, raw_authz_t, path_normalization, path_normalization_fields),
    CYAML_FIELD_SEQUENCE("trustDomainAliases", OPT_NULL, raw_authz_t, trust_domain_aliases, &string_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t config_fields[] = {
    STR("trustDomain", raw_config_t, trust_domain),
    CYAML_FIELD_MAPPING_PTR("tls", OPT_NULL, raw_config_t, tls, tls_fields),
    CYAML_FIELD_MAPPING_PTR("control", OPT_NULL, raw_config_t, control, control_fields),
    CYAML_FIELD_MAPPING_PTR("outbound", OPT_NULL, raw_config_t, outbound, outbound_fields),
    CYAML_FIELD_MAPPING_PTR("inbound", OPT_NULL, raw_config_t, inbound, inbound_fields),
    CYAML_FIELD_SEQUENCE("destinations", OPT_NULL, raw_config_t, destinations, &destination_entry, 0, CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("listeners", OPT_NULL, raw_config_t, listeners, &listener_entry, 0, CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING_PTR("admin", OPT_NULL, raw_config_t, admin, admin_fields),
    STR("workers", raw_config_t, workers),
    STR("ioBackend", raw_config_t, io_backend),
    STR("kernelTls", raw_config_t, kernel_tls),
    STR("maxConnections", raw_config_t, max_connections),
    STR("connectTimeout", raw_config_t, connect_timeout),
    STR("idleTimeout", raw_config_t, idle_timeout),
    STR("drainTimeout", raw_config_t, drain_timeout),
    STR("handshakeTimeout", raw_config_t, handshake_timeout),
    STR("accessLog", raw_config_t, access_log),
    STR("logLevel", raw_config_t, log_level),
    CYAML_FIELD_MAPPING_PTR("authorization", OPT_NULL, raw_config_t, authorization, authz_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t config_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_config_t, config_fields),
};

#undef STR
#undef OPT
#undef OPT_NULL

/* ---------------------------------------------------------------------------------------------------------
 * Load context and messages.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_load_ctx_t {
    const char *file;
    rm_yaml_pos_map_t map;
    char *err;
    size_t errlen;
    unsigned num_docs; /* pass 1: YAML documents seen */
    int have_root;     /* pass 1: the document's top mapping was seen */
} load_ctx_t;

/* The position of `path`, or of its closest recorded ancestor, or of the document. */
static rm_yaml_pos_t lookup_pos(const load_ctx_t *ctx, const char *path, int want_key)
{
    char buf[RM_YAML_PATH_MAX];
    const rm_yaml_node_t *e;
    rm_yaml_pos_t pos = {1, 1};

    snprintf(buf, sizeof(buf), "%s", path);
    for (;;) {
        if ((e = rm_yaml_pos_map_find(&ctx->map, buf)) != NULL) {
            pos = want_key ? e->key : e->value;
            break;
        }
        if (buf[0] == '\0')
            break;
        char *dot = strrchr(buf, '.'), *bracket = strrchr(buf, '[');
        char *cut = dot > bracket ? dot : bracket;
        if (cut == NULL)
            cut = buf;
        *cut = '\0';
    }
    return pos;
}

/* Reports `code` at a position of the file (an rm_yaml_report_fn). */
__attribute__((format(printf, 5, 0))) static int vreport(void *arg, int code, rm_yaml_pos_t pos, const char *path,
                                                         const char *fmt, va_list ap)
{
    load_ctx_t *ctx = arg;
    char msg[CONFIG_MSG_MAX];

    if (ctx->err == NULL || ctx->errlen == 0)
        return code;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    snprintf(ctx->err, ctx->errlen, "%s:%u:%u: %s: %s", ctx->file, pos.line, pos.col,
             path[0] != '\0' ? path : "(document)", msg);
    return code;
}

/* Reports `code` at an explicit position. */
__attribute__((format(printf, 5, 6))) static int report_at(load_ctx_t *ctx, int code, rm_yaml_pos_t pos,
                                                           const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(ctx, code, pos, path, fmt, ap);
    va_end(ap);
    return code;
}

/* Reports RM_ERR_CONFIG_VALUE at the value of `path` (or its closest ancestor in the file). */
__attribute__((format(printf, 3, 4))) static int value_error(load_ctx_t *ctx, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(ctx, RM_ERR_CONFIG_VALUE, lookup_pos(ctx, path, 0), path, fmt, ap);
    va_end(ap);
    return RM_ERR_CONFIG_VALUE;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------------------------------------------------
 * Pass 1 proper.
 * ------------------------------------------------------------------------------------------------------- */

static int walk_on_document(void *arg, rm_yaml_pos_t pos, rm_yaml_pos_map_t **map)
{
    load_ctx_t *ctx = arg;
    if (++ctx->num_docs > 1)
        return report_at(ctx, RM_ERR_CONFIG_PARSE, pos, "(document)",
                         "the file holds more than one YAML document; only one is allowed");
    *map = &ctx->map;
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
        return report_at(ctx, RM_ERR_CONFIG_PARSE, pos, "(document)",
                         "the top level must be a mapping of settings, not %s", what);
    }
    ctx->have_root = 1;
    return 0;
}

static int walk_document(load_ctx_t *ctx, const char *data, size_t len)
{
    const rm_yaml_walk_ops_t ops = {
        .arg = ctx,
        .report = vreport,
        .document = walk_on_document,
        .root = walk_on_root,
    };
    int ret;

    if ((ret = rm_yaml_walk(data, len, &ops)) != 0)
        return ret;
    if (!ctx->have_root)
        return report_at(ctx, RM_ERR_CONFIG_PARSE, (rm_yaml_pos_t){1, 1}, "(document)",
                         "the file is empty; want a mapping of settings");
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------
 * Pass 2: libcyaml, with its log messages captured.
 * ------------------------------------------------------------------------------------------------------- */

/* ---------------------------------------------------------------------------------------------------------
 * Scalars: addresses, durations, numbers.
 * ------------------------------------------------------------------------------------------------------- */

static int parse_port(const char *s, uint16_t *out)
{
    unsigned v = 0;
    size_t n = 0;

    for (; s[n] != '\0'; n++) {
        if (s[n] < '0' || s[n] > '9' || n >= 5)
            return -1;
        v = v * 10 + (unsigned)(s[n] - '0');
    }
    if (n == 0 || v == 0 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

int rm_sockaddr_parse(const char *s, rm_sockaddr_t *out)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_str;
    uint16_t port;
    rm_sockaddr_t a;

    if (s == NULL || out == NULL)
        return -1;
    memset(&a, 0, sizeof(a));

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
            return -1;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        port_str = close + 2;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1 || parse_port(port_str, &port) != 0)
            return -1;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        a.len = sizeof(*sin6);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;
        const char *colon = strrchr(s, ':');
        if (colon == NULL) {
            sin->sin_addr.s_addr = htonl(INADDR_ANY);
            port_str = s;
        } else {
            if ((size_t)(colon - s) >= sizeof(host))
                return -1;
            memcpy(host, s, (size_t)(colon - s));
            host[colon - s] = '\0';
            if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
                return -1;
            port_str = colon + 1;
        }
        if (parse_port(port_str, &port) != 0)
            return -1;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        a.len = sizeof(*sin);
    }
    *out = a;
    return 0;
}

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

/* Folds an IPv4-mapped IPv6 address into plain IPv4 so that both spellings compare equal. */
static void sockaddr_normalize(const struct sockaddr *sa, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            struct sockaddr_in *sin = (struct sockaddr_in *)out;
            sin->sin_family = AF_INET;
            sin->sin_port = sin6->sin6_port;
            memcpy(&sin->sin_addr, sin6->sin6_addr.s6_addr + 12, 4);
        } else {
            struct sockaddr_in6 *o6 = (struct sockaddr_in6 *)out;
            o6->sin6_family = AF_INET6;
            o6->sin6_port = sin6->sin6_port;
            o6->sin6_addr = sin6->sin6_addr;
        }
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        struct sockaddr_in *o = (struct sockaddr_in *)out;
        o->sin_family = AF_INET;
        o->sin_port = sin->sin_port;
        o->sin_addr = sin->sin_addr;
    } else {
        out->ss_family = AF_UNSPEC;
    }
}

static int sockaddr_equal(const struct sockaddr *x, const struct sockaddr *y)
{
    struct sockaddr_storage a, b;
    sockaddr_normalize(x, &a);
    sockaddr_normalize(y, &b);
    if (a.ss_family != b.ss_family)
        return 0;
    if (a.ss_family == AF_INET) {
        const struct sockaddr_in *p = (const struct sockaddr_in *)&a, *q = (const struct sockaddr_in *)&b;
        return p->sin_port == q->sin_port && p->sin_addr.s_addr == q->sin_addr.s_addr;
    }
    if (a.ss_family == AF_INET6) {
        const struct sockaddr_in6 *p = (const struct sockaddr_in6 *)&a, *q = (const struct sockaddr_in6 *)&b;
        return p->sin6_port == q->sin6_port && memcmp(&p->sin6_addr, &q->sin6_addr, sizeof(p->sin6_addr)) == 0;
    }
    return 0;
}

static uint16_t sockaddr_port(const rm_sockaddr_t *a)
{
    return ntohs(a->ss.ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)&a->ss)->sin6_port
                                             : ((const struct sockaddr_in *)&a->ss)->sin_port);
}

static int sockaddr_is_unspecified(const rm_sockaddr_t *a)
{
    if (a->ss.ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
    return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
}

/* Whether two listen addresses would take the same socket: same port and overlapping addresses. "[::]" is
 * dual-stack and overlaps everything; "0.0.0.0" overlaps every IPv4 (and IPv4-mapped) address. */
static int listen_overlaps(const rm_sockaddr_t *x, const rm_sockaddr_t *y)
{
    struct sockaddr_storage a, b;

    if (sockaddr_port(x) != sockaddr_port(y))
        return 0;
    sockaddr_normalize((const struct sockaddr *)&x->ss, &a);
    sockaddr_normalize((const struct sockaddr *)&y->ss, &b);
    if ((x->ss.ss_family == AF_INET6 && sockaddr_is_unspecified(x)) ||
        (y->ss.ss_family == AF_INET6 && sockaddr_is_unspecified(y)))
        return 1;
    if (a.ss_family != b.ss_family)
        return 0;
    if (a.ss_family == AF_INET && (((struct sockaddr_in *)&a)->sin_addr.s_addr == htonl(INADDR_ANY) ||
                                   ((struct sockaddr_in *)&b)->sin_addr.s_addr == htonl(INADDR_ANY)))
        return 1;
    return sockaddr_equal((const struct sockaddr *)&a, (const struct sockaddr *)&b);
}

static const char *sockaddr_str(char *buf, size_t len, const rm_sockaddr_t *a)
{
    char host[INET6_ADDRSTRLEN];
    if (a->ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, (unsigned)sockaddr_port(a));
    } else {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->ss)->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, (unsigned)sockaddr_port(a));
    }
    return buf;
}

/* ---------------------------------------------------------------------------------------------------------
 * Pass 3: conversion and validation.
 * ------------------------------------------------------------------------------------------------------- */

#define ADDR_LISTEN 0 /* a bare port or an unspecified address is fine */
#define ADDR_REMOTE 1 /* a connect target: an explicit IP is required */

static int conv_addr(load_ctx_t *ctx, const char *path, const char *s, rm_sockaddr_t *out, int kind)
{
    char q[96];
    if (s == NULL)
        return 0;
    if (rm_sockaddr_parse(s, out) != 0)
        return value_error(ctx, path, "%s is not an address (want ip:port, [ip6]:port or port)",
                           rm_yaml_quoted(q, sizeof(q), s));
    if (kind == ADDR_REMOTE && sockaddr_is_unspecified(out))
        return value_error(ctx, path, "%s needs an explicit IP address (want ip:port or [ip6]:port)",
                           rm_yaml_quoted(q, sizeof(q), s));
    return 0;
}

static int conv_bool(load_ctx_t *ctx, const char *path, const char *s, int *out)
{
    char q[96];
    if (s == NULL)
        return 0;
    if (strcmp(s, "true") == 0) {
        *out = 1;
    } else if (strcmp(s, "false") == 0) {
        *out = 0;
    } else {
        return value_error(ctx, path, "%s is not a boolean (want true or false)", rm_yaml_quoted(q, sizeof(q), s));
    }
    return 0;
}

static int conv_duration(load_ctx_t *ctx, const char *path, const char *s, int allow_zero, uint32_t *out)
{
    char q[96];
    uint32_t v;
    if (s == NULL)
        return 0;
    if (rm_duration_parse_ms(s, &v) != 0)
        return value_error(ctx, path, "%s is not a duration (want e.g. 500ms, 5s, 2m, 1h or 1m30s, at most 1193h)",
                           rm_yaml_quoted(q, sizeof(q), s));
    if (v == 0 && !allow_zero)
        return value_error(ctx, path, "must be longer than 0");
    *out = v;
    return 0;
}

static int conv_uint(load_ctx_t *ctx, const char *path, const char *s, unsigned long min, unsigned long max,
                     unsigned *out)
{
    char q[96];
    unsigned long v;
    if (s == NULL)
        return 0;
    if (parse_uint(s, min, max, &v) != 0)
        return value_error(ctx, path, "%s is not a whole number in %lu..%lu", rm_yaml_quoted(q, sizeof(q), s), min,
                           max);
    *out = (unsigned)v;
    return 0;
}

static int conv_mode(load_ctx_t *ctx, const char *path, const char *s, rm_mtls_mode_t *out)
{
    char q[96];
    if (s == NULL)
        return 0;
    if (strcmp(s, "STRICT") == 0) {
        *out = RM_MTLS_STRICT;
    } else if (strcmp(s, "PERMISSIVE") == 0) {
        *out = RM_MTLS_PERMISSIVE;
    } else if (strcmp(s, "DISABLE") == 0) {
        *out = RM_MTLS_DISABLE;
    } else {
        return value_error(ctx, path, "%s is not an mTLS mode (want STRICT, PERMISSIVE or DISABLE)",
                           rm_yaml_quoted(q, sizeof(q), s));
    }
    return 0;
}

static int conv_string(load_ctx_t *ctx, const char *path, const char *s, char **out)
{
    if (s == NULL)
        return 0;
    if (s[0] == '\0')
        return value_error(ctx, path, "must not be empty");
    char *copy = strdup(s);
    if (copy == NULL)
        return value_error(ctx, path, "out of memory");
    free(*out);
    *out = copy;
    return 0;
}

static int conv_trust_domain(load_ctx_t *ctx, const char *s, char **out)
{
    char q[96];
    int rc;
    if (s == NULL)
        return 0;
    if ((rc = rm_trust_domain_check(s, strlen(s))) != 0)
        return value_error(ctx, "trustDomain", "%s is not a trust domain: %s", rm_yaml_quoted(q, sizeof(q), s),
                           rm_strerror(rc));
    return conv_string(ctx, "trustDomain", s, out);
}

/* Converts `raw` (n entries) at `path` into out[]; each must be a SPIFFE ID in `trust_domain`. */
static int conv_identities(load_ctx_t *ctx, const char *path, char **raw, unsigned n, const char *trust_domain,
                           char **out, size_t *num_out)
{
    char q[96], epath[RM_YAML_PATH_MAX];
    rm_spiffe_id_t *id = NULL;
    size_t td_len = strlen(trust_domain);
    int ret = 0, rc;

    if (n > RM_MAX_IDENTITIES) {
        ret = value_error(ctx, path, "has %u entries; at most %d are allowed", n, RM_MAX_IDENTITIES);
        goto Exit;
    }
    if ((id = malloc(sizeof(*id))) == NULL) {
        ret = value_error(ctx, path, "out of memory");
        goto Exit;
    }
    for (unsigned i = 0; i < n; i++) {
        snprintf(epath, sizeof(epath), "%s[%u]", path, i);
        if ((rc = rm_spiffe_workload_id_parse(raw[i], strlen(raw[i]), id)) != 0) {
            ret = value_error(ctx, epath, "%s %s: %s", rm_yaml_quoted(q, sizeof(q), raw[i]),
                              rc == RM_ERR_SVID_NO_PATH ? "names no workload" : "is not a SPIFFE ID", rm_strerror(rc));
            goto Exit;
        }
        if (id->td_len != td_len || memcmp(id->str + 9, trust_domain, td_len) != 0) {
            ret = value_error(ctx, epath, "%s is not in trust domain \"%s\"", rm_yaml_quoted(q, sizeof(q), raw[i]),
                              trust_domain);
            goto Exit;
        }
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(raw[j], raw[i]) == 0) {
                ret = value_error(ctx, epath, "%s is listed twice", rm_yaml_quoted(q, sizeof(q), raw[i]));
                goto Exit;
            }
        }
        if ((out[i] = strdup(raw[i])) == NULL) {
            ret = value_error(ctx, epath, "out of memory");
            goto Exit;
        }
        *num_out = i + 1;
    }

Exit:
    free(id);
    return ret;
}

static int conv_io_backend(load_ctx_t *ctx, const char *path, const char *s, rm_io_backend_kind_t *out)
{
    char q[96];
    if (s == NULL)
        return 0;
    if (strcmp(s, "auto") == 0) {
        *out = RM_IO_AUTO;
    } else if (strcmp(s, "io_uring") == 0) {
        *out = RM_IO_URING;
    } else if (strcmp(s, "epoll") == 0) {
        *out = RM_IO_EPOLL;
    } else {
        return value_error(ctx, path, "%s is not an I/O backend (want auto, io_uring or epoll)",
                           rm_yaml_quoted(q, sizeof(q), s));
    }
    return 0;
}

#define KERNEL_TLS_VALUES "is not a kernel TLS setting (want auto or off)"

/* kernelTls and RINGMESH_KERNEL_TLS: "auto" is 1, "off" 0, anything else -1. */
static int parse_kernel_tls(const char *s)
{
    return strcmp(s, "auto") == 0 ? 1 : strcmp(s, "off") == 0 ? 0 : -1;
}

static int conv_kernel_tls(load_ctx_t *ctx, const char *path, const char *s, int *out)
{
    char q[96];
    if (s == NULL)
        return 0;
    if ((*out = parse_kernel_tls(s)) < 0)
        return value_error(ctx, path, "%s " KERNEL_TLS_VALUES, rm_yaml_quoted(q, sizeof(q), s));
    return 0;
}

static int conv_log_level(load_ctx_t *ctx, const char *path, const char *s, char **out)
{
    char q[96];
    rm_log_level_t level;
    if (s == NULL)
        return 0;
    if (rm_log_level_parse(s, &level) != 0)
        return value_error(ctx, path, "%s is not a log level (want debug, info, warn or error)",
                           rm_yaml_quoted(q, sizeof(q), s));
    return conv_string(ctx, path, s, out);
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
    cfg->access_log = 1;
    return 0;
}

static int conv_endpoints(load_ctx_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg)
{
    char path[64];
    int ret;

    if (raw->outbound != NULL) {
        if ((ret = conv_bool(ctx, "outbound.enabled", raw->outbound->enabled, &cfg->outbound_enabled)) != 0 ||
            (ret = conv_addr(ctx, "outbound.listen", raw->outbound->listen, &cfg->outbound_listen, ADDR_LISTEN)) != 0)
            return ret;
    }
    if (raw->admin != NULL) {
        if ((ret = conv_bool(ctx, "admin.enabled", raw->admin->enabled, &cfg->admin_enabled)) != 0 ||
            (ret = conv_addr(ctx, "admin.listen", raw->admin->listen, &cfg->admin_listen, ADDR_LISTEN)) != 0)
            return ret;
    }
    const raw_endpoint_t *in = raw->inbound;
    if (in == NULL)
        return 0;
    if ((ret = conv_bool(ctx, "inbound.enabled", in->enabled, &cfg->inbound_enabled)) != 0 ||
        (ret = conv_addr(ctx, "inbound.listen", in->listen, &cfg->inbound_listen, ADDR_LISTEN)) != 0 ||
        (ret = conv_mode(ctx, "inbound.mode", in->mode, &cfg->inbound_mode)) != 0)
        return ret;
    if (in->port_modes_count == 0)
        return 0;
    if ((cfg->port_modes = calloc(in->port_modes_count, sizeof(*cfg->port_modes))) == NULL)
        return value_error(ctx, "inbound.portModes", "out of memory");
    for (unsigned i = 0; i < in->port_modes_count; i++) {
        const raw_port_mode_t *r = &in->port_modes[i];
        rm_port_mode_t *pm = &cfg->port_modes[i];
        unsigned port = 0;
        snprintf(path, sizeof(path), "inbound.portModes[%u].port", i);
        if (r->port == NULL)
            return value_error(ctx, path, "is required");
        if ((ret = conv_uint(ctx, path, r->port, 1, 65535, &port)) != 0)
            return ret;
        pm->port = (uint16_t)port;
        for (unsigned j = 0; j < i; j++)
            if (cfg->port_modes[j].port == pm->port)
                return value_error(ctx, path, "port %u already has a mode (inbound.portModes[%u])", port, j);
        snprintf(path, sizeof(path), "inbound.portModes[%u].mode", i);
        if (r->mode == NULL)
            return value_error(ctx, path, "is required");
        if ((ret = conv_mode(ctx, path, r->mode, &pm->mode)) != 0)
            return ret;
        cfg->num_port_modes = i + 1;
    }
    return 0;
}

static int conv_destinations(load_ctx_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg)
{
    char path[64];
    int ret;

    if (raw->destinations_count == 0)
        return 0;
    if ((cfg->destinations = calloc(raw->destinations_count, sizeof(*cfg->destinations))) == NULL)
        return value_error(ctx, "destinations", "out of memory");
    for (unsigned i = 0; i < raw->destinations_count; i++) {
        const raw_destination_t *r = &raw->destinations[i];
        rm_destination_t *d = &cfg->destinations[i];
        cfg->num_destinations = i + 1;
        snprintf(path, sizeof(path), "destinations[%u].address", i);
        if (r->address == NULL)
            return value_error(ctx, path, "is required");
        if ((ret = conv_addr(ctx, path, r->address, &d->addr, ADDR_REMOTE)) != 0)
            return ret;
        for (unsigned j = 0; j < i; j++)
            if (sockaddr_equal((struct sockaddr *)&cfg->destinations[j].addr.ss, (struct sockaddr *)&d->addr.ss))
                return value_error(ctx, path, "same address as destinations[%u]", j);
        snprintf(path, sizeof(path), "destinations[%u].identities", i);
        if (r->identities_count == 0)
            return value_error(ctx, path, "is required (1 to %d SPIFFE IDs)", RM_MAX_IDENTITIES);
        if ((ret = conv_identities(ctx, path, r->identities, r->identities_count, cfg->trust_domain, d->identities,
                                   &d->num_identities)) != 0)
            return ret;
    }
    return 0;
}

static int listener_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.'))
            return 0;
    }
    return 1;
}

static int conv_listeners(load_ctx_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg)
{
    char path[64], q[96];
    int ret;

    if (raw->listeners_count == 0)
        return 0;
    if ((cfg->listeners = calloc(raw->listeners_count, sizeof(*cfg->listeners))) == NULL)
        return value_error(ctx, "listeners", "out of memory");
    for (unsigned i = 0; i < raw->listeners_count; i++) {
        const raw_listener_t *r = &raw->listeners[i];
        rm_listener_config_t *l = &cfg->listeners[i];
        cfg->num_listeners = i + 1;

        snprintf(path, sizeof(path), "listeners[%u].name", i);
        if (r->name == NULL)
            return value_error(ctx, path, "is required");
        if (!listener_name_ok(r->name))
            return value_error(ctx, path, "%s is not a name (1 to 63 of A-Z a-z 0-9 . - _)",
                               rm_yaml_quoted(q, sizeof(q), r->name));
        for (unsigned j = 0; j < i; j++)
            if (strcmp(cfg->listeners[j].name, r->name) == 0)
                return value_error(ctx, path, "%s is also the name of listeners[%u]",
                                   rm_yaml_quoted(q, sizeof(q), r->name), j);
        if ((ret = conv_string(ctx, path, r->name, &l->name)) != 0)
            return ret;

        snprintf(path, sizeof(path), "listeners[%u].type", i);
        if (r->type == NULL)
            return value_error(ctx, path, "is required (upstream or inbound)");
        if (strcmp(r->type, "upstream") == 0) {
            l->kind = RM_LISTENER_UPSTREAM;
        } else if (strcmp(r->type, "inbound") == 0) {
            l->kind = RM_LISTENER_INBOUND;
        } else {
            return value_error(ctx, path, "%s is not a listener type (want upstream or inbound)",
                               rm_yaml_quoted(q, sizeof(q), r->type));
        }

        snprintf(path, sizeof(path), "listeners[%u].listen", i);
        if (r->listen == NULL)
            return value_error(ctx, path, "is required");
        if ((ret = conv_addr(ctx, path, r->listen, &l->listen, ADDR_LISTEN)) != 0)
            return ret;

        snprintf(path, sizeof(path), "listeners[%u].target", i);
        if (r->target == NULL)
            return value_error(ctx, path, "is required for %s listeners", r->type);
        if ((ret = conv_addr(ctx, path, r->target, &l->target, ADDR_REMOTE)) != 0)
            return ret;

        snprintf(path, sizeof(path), "listeners[%u].mode", i);
        l->mode = RM_MTLS_STRICT;
        if (r->mode != NULL && l->kind != RM_LISTENER_INBOUND)
            return value_error(ctx, path, "applies to inbound listeners only");
        if ((ret = conv_mode(ctx, path, r->mode, &l->mode)) != 0)
            return ret;

        snprintf(path, sizeof(path), "listeners[%u].identities", i);
        if (l->kind == RM_LISTENER_UPSTREAM && r->identities_count == 0)
            return value_error(ctx, path, "is required for upstream listeners (1 to %d SPIFFE IDs)", RM_MAX_IDENTITIES);
        if (l->kind == RM_LISTENER_INBOUND && r->identities_count != 0)
            return value_error(ctx, path, "applies to upstream listeners only");
        if ((ret = conv_identities(ctx, path, r->identities, r->identities_count, cfg->trust_domain, l->identities,
                                   &l->num_identities)) != 0)
            return ret;
    }
    return 0;
}

static int conv_control(load_ctx_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg)
{
    const raw_control_t *r = raw->control;
    rm_control_config_t *c;
    uint32_t ttl_ms = 0;
    int ret;

    if (r == NULL)
        return 0;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return value_error(ctx, "control", "out of memory");
    cfg->control = c;
    c->renew_fraction = 0.5;
    if ((ret = conv_string(ctx, "control.address", r->address, &c->address)) != 0 ||
        (ret = conv_string(ctx, "control.serverName", r->server_name, &c->server_name)) != 0 ||
        (ret = conv_string(ctx, "control.identity", r->identity, &c->identity)) != 0 ||
        (ret = conv_string(ctx, "control.bootstrapBundleFile", r->bootstrap_bundle_file, &c->bootstrap_bundle_file)) !=
            0 ||
        (ret = conv_string(ctx, "control.tokenFile", r->token_file, &c->token_file)) != 0 ||
        (ret = conv_string(ctx, "control.stateDir", r->state_dir, &c->state_dir)) != 0)
        return ret;
    if (r->node != NULL &&
        ((ret = conv_string(ctx, "control.node.id", r->node->id, &c->node_id)) != 0 ||
         (ret = conv_string(ctx, "control.node.namespace", r->node->namespace_, &c->node_namespace)) != 0 ||
         (ret = conv_string(ctx, "control.node.serviceAccount", r->node->service_account, &c->node_service_account)) !=
             0 ||
         (ret = conv_string(ctx, "control.node.labelsFile", r->node->labels_file, &c->node_labels_file)) != 0))
        return ret;
    if (r->node != NULL && r->node->labels_count > 0) {
        if ((c->node_labels = calloc(r->node->labels_count, sizeof(char *))) == NULL)
            return value_error(ctx, "control.node.labels", "out of memory");
        for (unsigned i = 0; i < r->node->labels_count; i++) {
            const char *l = r->node->labels[i], *eq = strchr(l, '=');
            char path[64];
            snprintf(path, sizeof(path), "control.node.labels[%u]", i);
            if (eq == NULL || eq == l)
                return value_error(ctx, path, "\"%.100s\" is not KEY=VALUE", l);
            if ((c->node_labels[i] = strdup(l)) == NULL)
                return value_error(ctx, path, "out of memory");
            c->num_node_labels++;
        }
    }
    if (c->address == NULL)
        return value_error(ctx, "control.address", "is required (host:port of ringmesh-control)");
    if (c->bootstrap_bundle_file == NULL)
        return value_error(ctx, "control.bootstrapBundleFile", "is required (the roots that sign the control plane)");
    if (c->token_file == NULL)
        return value_error(ctx, "control.tokenFile", "is required (the projected ServiceAccount token)");
    if (c->state_dir == NULL)
        return value_error(ctx, "control.stateDir", "is required (where the last good SVID and configuration live)");
    if (c->identity != NULL) {
        rm_spiffe_id_t id;
        if (rm_spiffe_id_parse(c->identity, strlen(c->identity), &id) != 0)
            return value_error(ctx, "control.identity", "is not a SPIFFE ID");
    }
    if (c->server_name == NULL && (c->server_name = strdup("ringmesh-control.ringmesh-system.svc")) == NULL)
        return value_error(ctx, "control.serverName", "out of memory");
    if (r->renew_fraction != NULL) {
        char *end;
        double f = strtod(r->renew_fraction, &end);
        if (end == r->renew_fraction || *end != '\0' || !(f >= 0.1 && f <= 0.9))
            return value_error(ctx, "control.renewFraction", "must be a number from 0.1 to 0.9 (got \"%s\")",
                               r->renew_fraction);
        c->renew_fraction = f;
    }
    if (r->svid_ttl != NULL) {
        if ((ret = conv_duration(ctx, "control.svidTTL", r->svid_ttl, 1, &ttl_ms)) != 0)
            return ret;
        if (ttl_ms != 0 && ttl_ms < 300000)
            return value_error(ctx, "control.svidTTL", "must be at least 5m (or 0 for the control plane's default)");
        c->svid_ttl_s = ttl_ms / 1000;
    }
    return 0;
}

static int check_tls(load_ctx_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg)
{
    static const char *const paths[] = {"tls.certFile", "tls.keyFile", "tls.bundleFile"};
    char **dst[] = {&cfg->cert_file, &cfg->key_file, &cfg->bundle_file};
    const char *src[] = {NULL, NULL, NULL};
    const char *why = NULL;
    int ret;

    if (raw->tls != NULL) {
        src[0] = raw->tls->cert_file;
        src[1] = raw->tls->key_file;
        src[2] = raw->tls->bundle_file;
    }
    for (size_t i = 0; i < 3; i++)
        if ((ret = conv_string(ctx, paths[i], src[i], dst[i])) != 0)
            return ret;

    if (cfg->num_listeners > 0) {
        why = "explicit listeners are configured";
    } else if (cfg->outbound_enabled) {
        why = "outbound capture is enabled";
    } else if (cfg->inbound_enabled) {
        if (cfg->inbound_mode != RM_MTLS_DISABLE)
            why = "inbound capture is enabled with mTLS";
        for (size_t i = 0; why == NULL && i < cfg->num_port_modes; i++)
            if (cfg->port_modes[i].mode != RM_MTLS_DISABLE)
                why = "inbound capture has a port with mTLS";
    }
    if (why == NULL || cfg->control != NULL) /* with a control plane the SVID comes from it */
        return 0;
    for (size_t i = 0; i < 3; i++)
        if (*dst[i] == NULL)
            return value_error(ctx, paths[i], "is required because %s", why);
    return 0;
}

static int check_listen_conflicts(load_ctx_t *ctx, rm_proxy_config_t *cfg)
{
    typedef struct {
        char path[48];
        const rm_sockaddr_t *addr;
    } slot_t;
    slot_t *slots;
    size_t n = 0;
    int ret = 0;

    if ((slots = calloc(cfg->num_listeners + 3, sizeof(*slots))) == NULL)
        return value_error(ctx, "listeners", "out of memory");
    if (cfg->outbound_enabled) {
        snprintf(slots[n].path, sizeof(slots[n].path), "outbound.listen");
        slots[n++].addr = &cfg->outbound_listen;
    }
    if (cfg->inbound_enabled) {
        snprintf(slots[n].path, sizeof(slots[n].path), "inbound.listen");
        slots[n++].addr = &cfg->inbound_listen;
    }
    if (cfg->admin_enabled) {
        snprintf(slots[n].path, sizeof(slots[n].path), "admin.listen");
        slots[n++].addr = &cfg->admin_listen;
    }
    for (size_t i = 0; i < cfg->num_listeners; i++) {
        snprintf(slots[n].path, sizeof(slots[n].path), "listeners[%zu].listen", i);
        slots[n++].addr = &cfg->listeners[i].listen;
    }
    for (size_t j = 1; j < n; j++) {
        for (size_t i = 0; i < j; i++) {
            if (!listen_overlaps(slots[i].addr, slots[j].addr))
                continue;
            /* name the one written in the file (a default has no line of its own) */
            size_t at = rm_yaml_pos_map_find(&ctx->map, slots[j].path) != NULL ? j : i, other = at == j ? i : j;
            char a[64], b[64];
            ret = value_error(ctx, slots[at].path, "%s overlaps %s (%s)", sockaddr_str(a, sizeof(a), slots[at].addr),
                              slots[other].path, sockaddr_str(b, sizeof(b), slots[other].addr));
            goto Exit;
        }
    }
Exit:
    free(slots);
    return ret;
}

/* authorization.trustDomainAliases: the trust domains this one was known as (Istio's MeshConfig trustDomainAliases),
 * so that policies naming them keep matching. */
static int conv_trust_domain_aliases(load_ctx_t *ctx, const raw_authz_t *a, rm_proxy_config_t *cfg)
{
    char q[96], path[64];
    int rc;
    if (a->trust_domain_aliases_count == 0)
        return 0;
    if (a->trust_domain_aliases_count > RM_MAX_TRUST_DOMAIN_ALIASES)
        return value_error(ctx, "authorization.trustDomainAliases", "has %u entries; at most %d are allowed",
                           a->trust_domain_aliases_count, RM_MAX_TRUST_DOMAIN_ALIASES);
    if ((cfg->authz_trust_domain_aliases = calloc(a->trust_domain_aliases_count, sizeof(char *))) == NULL)
        return value_error(ctx, "authorization.trustDomainAliases", "out of memory");
    for (unsigned i = 0; i < a->trust_domain_aliases_count; i++) {
        const char *td = a->trust_domain_aliases[i];
        snprintf(path, sizeof(path), "authorization.trustDomainAliases[%u]", i);
        if ((rc = rm_trust_domain_check(td, strlen(td))) != 0)
            return value_error(ctx, path, "%s is not a trust domain: %s", rm_yaml_quoted(q, sizeof(q), td),
                               rm_strerror(rc));
        if ((cfg->authz_trust_domain_aliases[i] = strdup(td)) == NULL)
            return value_error(ctx, path, "out of memory");
        cfg->num_authz_trust_domain_aliases++;
    }
    return 0;
}

/* A proxy without a control plane may enforce policies from a directory (the same YAML the control plane reads;
 * every policy in it applies to this proxy). With a control plane, the pushed WorkloadPolicy is what applies. */
static int conv_authorization(load_ctx_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg)
{
    const raw_authz_t *a = raw->authorization;
    int ret;
    cfg->authz_default_allow = 0;
    cfg->authz_path_normalization = RM_PATH_NORMALIZATION_BASE;
    if (a == NULL)
        return 0;
    if (raw->control != NULL)
        return value_error(ctx, "authorization",
                           "is for proxies without a control plane: with `control`, the "
                           "control plane pushes the policies");
    if ((ret = conv_string(ctx, "authorization.policyDir", a->policy_dir, &cfg->authz_policy_dir)) != 0 ||
        (ret = conv_bool(ctx, "authorization.logAllowed", a->log_allowed, &cfg->authz_log_allowed)) != 0)
        return ret;
    if (cfg->authz_policy_dir == NULL)
        return value_error(ctx, "authorization.policyDir", "is required (a file or directory of policies)");
    if (a->default_action != NULL) {
        if (strcmp(a->default_action, "ALLOW") == 0)
            cfg->authz_default_allow = 1;
        else if (strcmp(a->default_action, "DENY") != 0)
            return value_error(ctx, "authorization.defaultAction", "\"%.40s\" is not DENY or ALLOW", a->default_action);
    }
    if (a->path_normalization != NULL && a->path_normalization->normalization != NULL &&
        rm_path_normalization_parse(a->path_normalization->normalization, &cfg->authz_path_normalization) != 0)
        return value_error(ctx, "authorization.pathNormalization.normalization",
                           "\"%.40s\" is not " RM_PATH_NORMALIZATION_NAMES, a->path_normalization->normalization);
    return conv_trust_domain_aliases(ctx, a, cfg);
}

static int convert(load_ctx_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg)
{
    int ret;

    if ((ret = conv_trust_domain(ctx, raw->trust_domain, &cfg->trust_domain)) != 0 ||
        (ret = conv_endpoints(ctx, raw, cfg)) != 0 || (ret = conv_destinations(ctx, raw, cfg)) != 0 ||
        (ret = conv_listeners(ctx, raw, cfg)) != 0 ||
        (ret = conv_uint(ctx, "workers", raw->workers, 1, CONFIG_WORKERS_MAX, &cfg->workers)) != 0 ||
        (ret = conv_io_backend(ctx, "ioBackend", raw->io_backend, &cfg->io_backend)) != 0 ||
        (ret = conv_kernel_tls(ctx, "kernelTls", raw->kernel_tls, &cfg->kernel_tls)) != 0 ||
        (ret = conv_uint(ctx, "maxConnections", raw->max_connections, 1, CONFIG_CONN_MAX, &cfg->max_connections)) !=
            0 ||
        (ret = conv_duration(ctx, "connectTimeout", raw->connect_timeout, 0, &cfg->connect_timeout_ms)) != 0 ||
        (ret = conv_duration(ctx, "idleTimeout", raw->idle_timeout, 1, &cfg->idle_timeout_ms)) != 0 ||
        (ret = conv_duration(ctx, "drainTimeout", raw->drain_timeout, 1, &cfg->drain_timeout_ms)) != 0 ||
        (ret = conv_duration(ctx, "handshakeTimeout", raw->handshake_timeout, 0, &cfg->handshake_timeout_ms)) != 0 ||
        (ret = conv_bool(ctx, "accessLog", raw->access_log, &cfg->access_log)) != 0 ||
        (ret = conv_log_level(ctx, "logLevel", raw->log_level, &cfg->log_level)) != 0 ||
        (ret = conv_control(ctx, raw, cfg)) != 0 || (ret = conv_authorization(ctx, raw, cfg)) != 0 ||
        (ret = check_tls(ctx, raw, cfg)) != 0 || (ret = check_listen_conflicts(ctx, cfg)) != 0)
        return ret;
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------
 * Public functions.
 * ------------------------------------------------------------------------------------------------------- */

static int read_file(const char *path, char **out, size_t *out_len, char *err, size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    int fd, ret = 0;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return RM_ERR_CONFIG_IO;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        set_err(err, errlen, "%s: not a regular file", path);
        ret = RM_ERR_CONFIG_IO;
        goto Exit;
    }
    if (st.st_size > CONFIG_FILE_MAX) {
        set_err(err, errlen, "%s: larger than %u bytes", path, CONFIG_FILE_MAX);
        ret = RM_ERR_CONFIG_IO;
        goto Exit;
    }
    /* sized by fstat, plus one byte to notice a file that grew since (then it is refused, never cut short) */
    size_t cap = (size_t)st.st_size + 1;
    if ((buf = malloc(cap + 1)) == NULL) {
        set_err(err, errlen, "%s: out of memory", path);
        ret = RM_ERR_CONFIG_IO;
        goto Exit;
    }
    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            set_err(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            ret = RM_ERR_CONFIG_IO;
            goto Exit;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len == cap) {
        set_err(err, errlen, "%s: changed while it was being read", path);
        ret = RM_ERR_CONFIG_IO;
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

int rm_proxy_config_load(const char *path, rm_proxy_config_t **out, char *err, size_t errlen)
{
    load_ctx_t ctx = {.file = path, .err = err, .errlen = errlen};
    rm_yaml_cyaml_capture_t *cap = NULL;
    raw_config_t *raw = NULL;
    rm_proxy_config_t *cfg = NULL;
    char *data = NULL;
    size_t len = 0;
    cyaml_config_t cyaml_cfg = {
        .log_fn = rm_yaml_cyaml_log,
        .mem_fn = cyaml_mem,
        .log_level = CYAML_LOG_ERROR,
        .flags = CYAML_CFG_NO_ALIAS,
    };
    cyaml_err_t cerr;
    int ret;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (path == NULL || out == NULL) {
        set_err(err, errlen, "(null): no configuration file given");
        return RM_ERR_CONFIG_IO;
    }
    if ((ret = read_file(path, &data, &len, err, errlen)) != 0)
        goto Exit;

    /* pass 1: positions, and the errors libcyaml cannot place */
    if ((ret = walk_document(&ctx, data, len)) != 0)
        goto Exit;

    /* pass 2: schema */
    if ((cap = calloc(1, sizeof(*cap))) == NULL) {
        ret = report_at(&ctx, RM_ERR_CONFIG_PARSE, (rm_yaml_pos_t){1, 1}, "", "out of memory");
        goto Exit;
    }
    cyaml_cfg.log_ctx = cap;
    if ((cerr = cyaml_load_data((const uint8_t *)data, len, &cyaml_cfg, &config_schema, (cyaml_data_t **)&raw, NULL)) !=
        CYAML_OK) {
        raw = NULL;
        ret = rm_yaml_report_cyaml_error(cap, cerr, config_fields, &ctx.map, (rm_yaml_pos_t){1, 1}, vreport, &ctx);
        goto Exit;
    }
    if (raw == NULL) {
        ret = report_at(&ctx, RM_ERR_CONFIG_PARSE, (rm_yaml_pos_t){1, 1}, "", "the file is empty; want a mapping");
        goto Exit;
    }

    /* pass 3: values */
    if ((cfg = calloc(1, sizeof(*cfg))) == NULL || (cfg->path = strdup(path)) == NULL || set_defaults(cfg) != 0) {
        ret = report_at(&ctx, RM_ERR_CONFIG_VALUE, (rm_yaml_pos_t){1, 1}, "", "out of memory");
        goto Exit;
    }
    if ((ret = convert(&ctx, raw, cfg)) != 0)
        goto Exit;

    *out = cfg;
    cfg = NULL;
    ret = 0;

Exit:
    if (raw != NULL)
        cyaml_free(&cyaml_cfg, &config_schema, raw, 0);
    rm_proxy_config_free(cfg);
    rm_yaml_pos_map_dispose(&ctx.map);
    free(cap);
    free(data);
    return ret;
}

int rm_proxy_config_apply_env(rm_proxy_config_t *cfg, char *err, size_t errlen)
{
    const char *backend = getenv("RINGMESH_IO_BACKEND"), *workers = getenv("RINGMESH_WORKERS"),
               *level = getenv("RINGMESH_LOG_LEVEL"), *ktls = getenv("RINGMESH_KERNEL_TLS");
    rm_io_backend_kind_t new_backend = cfg->io_backend;
    int new_ktls = cfg->kernel_tls;
    unsigned long new_workers = cfg->workers;
    rm_log_level_t parsed_level;
    char *new_level = NULL, q[96];

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    /* everything is checked before anything changes, so a failure leaves cfg as it was */
    if (backend != NULL && backend[0] != '\0' && strcmp(backend, "default") != 0) {
        if (strcmp(backend, "auto") == 0) {
            new_backend = RM_IO_AUTO;
        } else if (strcmp(backend, "io_uring") == 0) {
            new_backend = RM_IO_URING;
        } else if (strcmp(backend, "epoll") == 0) {
            new_backend = RM_IO_EPOLL;
        } else {
            set_err(err, errlen, "RINGMESH_IO_BACKEND: %s is not an I/O backend (want auto, io_uring or epoll)",
                    rm_yaml_quoted(q, sizeof(q), backend));
            return RM_ERR_CONFIG_VALUE;
        }
    }
    if (ktls != NULL && ktls[0] != '\0' && (new_ktls = parse_kernel_tls(ktls)) < 0) {
        set_err(err, errlen, "RINGMESH_KERNEL_TLS: %s " KERNEL_TLS_VALUES, rm_yaml_quoted(q, sizeof(q), ktls));
        return RM_ERR_CONFIG_VALUE;
    }
    if (workers != NULL && workers[0] != '\0' && parse_uint(workers, 1, CONFIG_WORKERS_MAX, &new_workers) != 0) {
        set_err(err, errlen, "RINGMESH_WORKERS: %s is not a whole number in 1..%u",
                rm_yaml_quoted(q, sizeof(q), workers), CONFIG_WORKERS_MAX);
        return RM_ERR_CONFIG_VALUE;
    }
    if (level != NULL && level[0] != '\0') {
        if (rm_log_level_parse(level, &parsed_level) != 0) {
            set_err(err, errlen, "RINGMESH_LOG_LEVEL: %s is not a log level (want debug, info, warn or error)",
                    rm_yaml_quoted(q, sizeof(q), level));
            return RM_ERR_CONFIG_VALUE;
        }
        if ((new_level = strdup(level)) == NULL) {
            set_err(err, errlen, "RINGMESH_LOG_LEVEL: out of memory");
            return -ENOMEM;
        }
        free(cfg->log_level);
        cfg->log_level = new_level;
    }
    cfg->io_backend = new_backend;
    cfg->kernel_tls = new_ktls;
    cfg->workers = (unsigned)new_workers;
    return 0;
}

void rm_proxy_config_free(rm_proxy_config_t *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->path);
    free(cfg->trust_domain);
    free(cfg->cert_file);
    free(cfg->key_file);
    free(cfg->bundle_file);
    free(cfg->port_modes);
    for (size_t i = 0; i < cfg->num_destinations; i++) {
        for (size_t j = 0; j < cfg->destinations[i].num_identities; j++)
            free(cfg->destinations[i].identities[j]);
        free(cfg->destinations[i].sni);
    }
    free(cfg->destinations);
    for (size_t i = 0; i < cfg->num_listeners; i++) {
        free(cfg->listeners[i].name);
        for (size_t j = 0; j < cfg->listeners[i].num_identities; j++)
            free(cfg->listeners[i].identities[j]);
    }
    free(cfg->listeners);
    free(cfg->log_level);
    free(cfg->authz_policy_dir);
    for (size_t i = 0; i < cfg->num_authz_trust_domain_aliases; i++)
        free(cfg->authz_trust_domain_aliases[i]);
    free(cfg->authz_trust_domain_aliases);
    if (cfg->control != NULL) {
        free(cfg->control->address);
        free(cfg->control->server_name);
        free(cfg->control->identity);
        free(cfg->control->bootstrap_bundle_file);
        free(cfg->control->token_file);
        free(cfg->control->state_dir);
        free(cfg->control->node_id);
        free(cfg->control->node_namespace);
        free(cfg->control->node_service_account);
        for (size_t i = 0; i < cfg->control->num_node_labels; i++)
            free(cfg->control->node_labels[i]);
        free(cfg->control->node_labels);
        free(cfg->control->node_labels_file);
        free(cfg->control);
    }
    free(cfg);
}

rm_mtls_mode_t rm_proxy_config_port_mode(const rm_proxy_config_t *cfg, uint16_t port)
{
    for (size_t i = 0; i < cfg->num_port_modes; i++)
        if (cfg->port_modes[i].port == port)
            return cfg->port_modes[i].mode;
    return cfg->inbound_mode;
}

const rm_destination_t *rm_proxy_config_find_destination(const rm_proxy_config_t *cfg, const struct sockaddr *sa)
{
    if (cfg == NULL || sa == NULL)
        return NULL;
    for (size_t i = 0; i < cfg->num_destinations; i++)
        if (sockaddr_equal((const struct sockaddr *)&cfg->destinations[i].addr.ss, sa))
            return &cfg->destinations[i];
    return NULL;
}
