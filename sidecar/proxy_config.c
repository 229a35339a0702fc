/* ringmesh-proxy's configuration, converted: pass 3 of the loader (proxy_config_schema.c reads the file), the
 * environment's overrides, and the lookups the proxy makes in a loaded configuration.
 *
 * Every value arrives as the text the file holds; a failing field is placed with the positions pass 1 recorded,
 * so that every message has the form "FILE:LINE:COLUMN: FIELD.PATH: what is wrong". */
#include "proxy_config_internal.h"

#include "ringmesh/error.h"
#include "ringmesh/log.h"
#include "ringmesh/svid.h"
#include "ringmesh/yaml_load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
 * Addresses.
 * ------------------------------------------------------------------------------------------------------- */

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
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1 || rm_config_parse_port(port_str, &port) != 0)
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
        if (rm_config_parse_port(port_str, &port) != 0)
            return -1;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        a.len = sizeof(*sin);
    }
    *out = a;
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

static int conv_addr(rm_config_doc_t *ctx, const char *path, const char *s, rm_sockaddr_t *out, int kind)
{
    char q[96];
    if (s == NULL)
        return 0;
    if (rm_sockaddr_parse(s, out) != 0)
        return rm_config_value_error(ctx, path, "%s is not an address (want ip:port, [ip6]:port or port)",
                                     rm_yaml_quoted(q, sizeof(q), s));
    if (kind == ADDR_REMOTE && sockaddr_is_unspecified(out))
        return rm_config_value_error(ctx, path, "%s needs an explicit IP address (want ip:port or [ip6]:port)",
                                     rm_yaml_quoted(q, sizeof(q), s));
    return 0;
}

/* A duration of at most about 49 days, in ms; 0 only where `allow_zero`. */
static int conv_duration(rm_config_doc_t *ctx, const char *path, const char *s, int allow_zero, uint32_t *out)
{
    uint64_t v;
    int ret;
    if (s == NULL)
        return 0;
    if ((ret = rm_config_conv_duration(ctx, path, s, UINT32_MAX, &v)) != 0)
        return ret;
    if (v == 0 && !allow_zero)
        return rm_config_value_error(ctx, path, "must be longer than 0");
    *out = (uint32_t)v;
    return 0;
}

static const char *const mode_names[] = {"STRICT", "PERMISSIVE", "DISABLE", NULL};
static const int mode_values[] = {RM_MTLS_STRICT, RM_MTLS_PERMISSIVE, RM_MTLS_DISABLE};

static int conv_mode(rm_config_doc_t *ctx, const char *path, const char *s, rm_mtls_mode_t *out)
{
    int v = (int)*out, ret;
    if ((ret = rm_config_conv_enum(ctx, path, s, "an mTLS mode", mode_names, mode_values, &v)) == 0)
        *out = (rm_mtls_mode_t)v;
    return ret;
}

/* Converts `raw` (n entries) at `path` into out[]; each must be a SPIFFE ID in `trust_domain`. */
static int conv_identities(rm_config_doc_t *ctx, const char *path, char **raw, unsigned n, const char *trust_domain,
                           char **out, size_t *num_out)
{
    char q[96], epath[RM_YAML_PATH_MAX];
    rm_spiffe_id_t *id = NULL;
    size_t td_len = strlen(trust_domain);
    int ret = 0;

    if (n > RM_MAX_IDENTITIES) {
        ret = rm_config_value_error(ctx, path, "has %u entries; at most %d are allowed", n, RM_MAX_IDENTITIES);
        goto Exit;
    }
    if ((id = malloc(sizeof(*id))) == NULL) {
        ret = rm_config_value_error(ctx, path, "out of memory");
        goto Exit;
    }
    for (unsigned i = 0; i < n; i++) {
        snprintf(epath, sizeof(epath), "%s[%u]", path, i);
        if ((ret = rm_config_conv_workload_id(ctx, epath, raw[i], id)) != 0)
            goto Exit;
        if (id->td_len != td_len || memcmp(id->str + 9, trust_domain, td_len) != 0) {
            ret = rm_config_value_error(ctx, epath, "%s is not in trust domain \"%s\"",
                                        rm_yaml_quoted(q, sizeof(q), raw[i]), trust_domain);
            goto Exit;
        }
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(raw[j], raw[i]) == 0) {
                ret = rm_config_value_error(ctx, epath, "%s is listed twice", rm_yaml_quoted(q, sizeof(q), raw[i]));
                goto Exit;
            }
        }
        if ((out[i] = strdup(raw[i])) == NULL) {
            ret = rm_config_value_error(ctx, epath, "out of memory");
            goto Exit;
        }
        *num_out = i + 1;
    }

Exit:
    free(id);
    return ret;
}

static const char *const io_backend_names[] = {"auto", "io_uring", "epoll", NULL};
static const int io_backend_values[] = {RM_IO_AUTO, RM_IO_URING, RM_IO_EPOLL};

static int conv_io_backend(rm_config_doc_t *ctx, const char *path, const char *s, rm_io_backend_kind_t *out)
{
    int v = (int)*out, ret;
    if ((ret = rm_config_conv_enum(ctx, path, s, "an I/O backend", io_backend_names, io_backend_values, &v)) == 0)
        *out = (rm_io_backend_kind_t)v;
    return ret;
}

/* kernelTls and RINGMESH_KERNEL_TLS: "auto" is 1, "off" 0. */
static const char *const kernel_tls_names[] = {"auto", "off", NULL};
static const int kernel_tls_values[] = {1, 0};

static int conv_log_level(rm_config_doc_t *ctx, const char *path, const char *s, char **out)
{
    char q[96];
    rm_log_level_t level;
    if (s == NULL)
        return 0;
    if (rm_log_level_parse(s, &level) != 0)
        return rm_config_value_error(ctx, path, "%s is not a log level (want debug, info, warn or error)",
                                     rm_yaml_quoted(q, sizeof(q), s));
    return rm_config_conv_string(ctx, path, s, out);
}

static int conv_endpoints(rm_config_doc_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg)
{
    char path[64];
    int ret;

    if (raw->outbound != NULL) {
        if ((ret = rm_config_conv_bool(ctx, "outbound.enabled", raw->outbound->enabled, &cfg->outbound_enabled)) != 0 ||
            (ret = conv_addr(ctx, "outbound.listen", raw->outbound->listen, &cfg->outbound_listen, ADDR_LISTEN)) != 0)
            return ret;
    }
    if (raw->admin != NULL) {
        if ((ret = rm_config_conv_bool(ctx, "admin.enabled", raw->admin->enabled, &cfg->admin_enabled)) != 0 ||
            (ret = conv_addr(ctx, "admin.listen", raw->admin->listen, &cfg->admin_listen, ADDR_LISTEN)) != 0)
            return ret;
    }
    const raw_endpoint_t *in = raw->inbound;
    if (in == NULL)
        return 0;
    if ((ret = rm_config_conv_bool(ctx, "inbound.enabled", in->enabled, &cfg->inbound_enabled)) != 0 ||
        (ret = conv_addr(ctx, "inbound.listen", in->listen, &cfg->inbound_listen, ADDR_LISTEN)) != 0 ||
        (ret = conv_mode(ctx, "inbound.mode", in->mode, &cfg->inbound_mode)) != 0)
        return ret;
    if (in->port_modes_count == 0)
        return 0;
    if ((cfg->port_modes = calloc(in->port_modes_count, sizeof(*cfg->port_modes))) == NULL)
        return rm_config_value_error(ctx, "inbound.portModes", "out of memory");
    for (unsigned i = 0; i < in->port_modes_count; i++) {
        const raw_port_mode_t *r = &in->port_modes[i];
        rm_port_mode_t *pm = &cfg->port_modes[i];
        unsigned port = 0;
        snprintf(path, sizeof(path), "inbound.portModes[%u].port", i);
        if (r->port == NULL)
            return rm_config_value_error(ctx, path, "is required");
        if ((ret = rm_config_conv_uint(ctx, path, r->port, 1, 65535, &port)) != 0)
            return ret;
        pm->port = (uint16_t)port;
        for (unsigned j = 0; j < i; j++)
            if (cfg->port_modes[j].port == pm->port)
                return rm_config_value_error(ctx, path, "port %u already has a mode (inbound.portModes[%u])", port, j);
        snprintf(path, sizeof(path), "inbound.portModes[%u].mode", i);
        if (r->mode == NULL)
            return rm_config_value_error(ctx, path, "is required");
        if ((ret = conv_mode(ctx, path, r->mode, &pm->mode)) != 0)
            return ret;
        cfg->num_port_modes = i + 1;
    }
    return 0;
}

static int conv_destinations(rm_config_doc_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg)
{
    char path[64];
    int ret;

    if (raw->destinations_count == 0)
        return 0;
    if ((cfg->destinations = calloc(raw->destinations_count, sizeof(*cfg->destinations))) == NULL)
        return rm_config_value_error(ctx, "destinations", "out of memory");
    for (unsigned i = 0; i < raw->destinations_count; i++) {
        const raw_destination_t *r = &raw->destinations[i];
        rm_destination_t *d = &cfg->destinations[i];
        cfg->num_destinations = i + 1;
        snprintf(path, sizeof(path), "destinations[%u].address", i);
        if (r->address == NULL)
            return rm_config_value_error(ctx, path, "is required");
        if ((ret = conv_addr(ctx, path, r->address, &d->addr, ADDR_REMOTE)) != 0)
            return ret;
        for (unsigned j = 0; j < i; j++)
            if (sockaddr_equal((struct sockaddr *)&cfg->destinations[j].addr.ss, (struct sockaddr *)&d->addr.ss))
                return rm_config_value_error(ctx, path, "same address as destinations[%u]", j);
        snprintf(path, sizeof(path), "destinations[%u].identities", i);
        if (r->identities_count == 0)
            return rm_config_value_error(ctx, path, "is required (1 to %d SPIFFE IDs)", RM_MAX_IDENTITIES);
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

static int conv_listeners(rm_config_doc_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg)
{
    char path[64], q[96];
    int ret;

    if (raw->listeners_count == 0)
        return 0;
    if ((cfg->listeners = calloc(raw->listeners_count, sizeof(*cfg->listeners))) == NULL)
        return rm_config_value_error(ctx, "listeners", "out of memory");
    for (unsigned i = 0; i < raw->listeners_count; i++) {
        const raw_listener_t *r = &raw->listeners[i];
        rm_listener_config_t *l = &cfg->listeners[i];
        cfg->num_listeners = i + 1;

        snprintf(path, sizeof(path), "listeners[%u].name", i);
        if (r->name == NULL)
            return rm_config_value_error(ctx, path, "is required");
        if (!listener_name_ok(r->name))
            return rm_config_value_error(ctx, path, "%s is not a name (1 to 63 of A-Z a-z 0-9 . - _)",
                                         rm_yaml_quoted(q, sizeof(q), r->name));
        for (unsigned j = 0; j < i; j++)
            if (strcmp(cfg->listeners[j].name, r->name) == 0)
                return rm_config_value_error(ctx, path, "%s is also the name of listeners[%u]",
                                             rm_yaml_quoted(q, sizeof(q), r->name), j);
        if ((ret = rm_config_conv_string(ctx, path, r->name, &l->name)) != 0)
            return ret;

        snprintf(path, sizeof(path), "listeners[%u].type", i);
        if (r->type == NULL)
            return rm_config_value_error(ctx, path, "is required (upstream or inbound)");
        if (strcmp(r->type, "upstream") == 0) {
            l->kind = RM_LISTENER_UPSTREAM;
        } else if (strcmp(r->type, "inbound") == 0) {
            l->kind = RM_LISTENER_INBOUND;
        } else {
            return rm_config_value_error(ctx, path, "%s is not a listener type (want upstream or inbound)",
                                         rm_yaml_quoted(q, sizeof(q), r->type));
        }

        snprintf(path, sizeof(path), "listeners[%u].listen", i);
        if (r->listen == NULL)
            return rm_config_value_error(ctx, path, "is required");
        if ((ret = conv_addr(ctx, path, r->listen, &l->listen, ADDR_LISTEN)) != 0)
            return ret;

        snprintf(path, sizeof(path), "listeners[%u].target", i);
        if (r->target == NULL)
            return rm_config_value_error(ctx, path, "is required for %s listeners", r->type);
        if ((ret = conv_addr(ctx, path, r->target, &l->target, ADDR_REMOTE)) != 0)
            return ret;

        snprintf(path, sizeof(path), "listeners[%u].mode", i);
        l->mode = RM_MTLS_STRICT;
        if (r->mode != NULL && l->kind != RM_LISTENER_INBOUND)
            return rm_config_value_error(ctx, path, "applies to inbound listeners only");
        if ((ret = conv_mode(ctx, path, r->mode, &l->mode)) != 0)
            return ret;

        snprintf(path, sizeof(path), "listeners[%u].identities", i);
        if (l->kind == RM_LISTENER_UPSTREAM && r->identities_count == 0)
            return rm_config_value_error(ctx, path, "is required for upstream listeners (1 to %d SPIFFE IDs)",
                                         RM_MAX_IDENTITIES);
        if (l->kind == RM_LISTENER_INBOUND && r->identities_count != 0)
            return rm_config_value_error(ctx, path, "applies to upstream listeners only");
        if ((ret = conv_identities(ctx, path, r->identities, r->identities_count, cfg->trust_domain, l->identities,
                                   &l->num_identities)) != 0)
            return ret;
    }
    return 0;
}

static int conv_control(rm_config_doc_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg)
{
    const raw_control_t *r = raw->control;
    rm_control_config_t *c;
    uint32_t ttl_ms = 0;
    int ret;

    if (r == NULL)
        return 0;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return rm_config_value_error(ctx, "control", "out of memory");
    cfg->control = c;
    c->renew_fraction = 0.5;
    if ((ret = rm_config_conv_string(ctx, "control.address", r->address, &c->address)) != 0 ||
        (ret = rm_config_conv_string(ctx, "control.serverName", r->server_name, &c->server_name)) != 0 ||
        (ret = rm_config_conv_string(ctx, "control.identity", r->identity, &c->identity)) != 0 ||
        (ret = rm_config_conv_string(ctx, "control.bootstrapBundleFile", r->bootstrap_bundle_file,
                                     &c->bootstrap_bundle_file)) != 0 ||
        (ret = rm_config_conv_string(ctx, "control.tokenFile", r->token_file, &c->token_file)) != 0 ||
        (ret = rm_config_conv_string(ctx, "control.stateDir", r->state_dir, &c->state_dir)) != 0)
        return ret;
    if (r->node != NULL &&
        ((ret = rm_config_conv_string(ctx, "control.node.id", r->node->id, &c->node_id)) != 0 ||
         (ret = rm_config_conv_string(ctx, "control.node.namespace", r->node->namespace_, &c->node_namespace)) != 0 ||
         (ret = rm_config_conv_string(ctx, "control.node.serviceAccount", r->node->service_account,
                                      &c->node_service_account)) != 0 ||
         (ret = rm_config_conv_string(ctx, "control.node.labelsFile", r->node->labels_file, &c->node_labels_file)) !=
             0))
        return ret;
    if (r->node != NULL && r->node->labels_count > 0) {
        if ((c->node_labels = calloc(r->node->labels_count, sizeof(char *))) == NULL)
            return rm_config_value_error(ctx, "control.node.labels", "out of memory");
        for (unsigned i = 0; i < r->node->labels_count; i++) {
            const char *l = r->node->labels[i];
            char path[64];
            snprintf(path, sizeof(path), "control.node.labels[%u]", i);
            if ((ret = rm_config_conv_label(ctx, path, l)) != 0)
                return ret;
            if ((c->node_labels[i] = strdup(l)) == NULL)
                return rm_config_value_error(ctx, path, "out of memory");
            c->num_node_labels++;
        }
    }
    if (c->address == NULL)
        return rm_config_value_error(ctx, "control.address", "is required (host:port of ringmesh-control)");
    if (c->bootstrap_bundle_file == NULL)
        return rm_config_value_error(ctx, "control.bootstrapBundleFile",
                                     "is required (the roots that sign the control plane)");
    if (c->token_file == NULL)
        return rm_config_value_error(ctx, "control.tokenFile", "is required (the projected ServiceAccount token)");
    if (c->state_dir == NULL)
        return rm_config_value_error(ctx, "control.stateDir",
                                     "is required (where the last good SVID and configuration live)");
    if (c->identity != NULL) {
        rm_spiffe_id_t id;
        if (rm_spiffe_id_parse(c->identity, strlen(c->identity), &id) != 0)
            return rm_config_value_error(ctx, "control.identity", "is not a SPIFFE ID");
    }
    if (c->server_name == NULL && (c->server_name = strdup("ringmesh-control.ringmesh-system.svc")) == NULL)
        return rm_config_value_error(ctx, "control.serverName", "out of memory");
    if (r->renew_fraction != NULL) {
        char *end;
        double f = strtod(r->renew_fraction, &end);
        if (end == r->renew_fraction || *end != '\0' || !(f >= 0.1 && f <= 0.9))
            return rm_config_value_error(ctx, "control.renewFraction", "must be a number from 0.1 to 0.9 (got \"%s\")",
                                         r->renew_fraction);
        c->renew_fraction = f;
    }
    if (r->svid_ttl != NULL) {
        if ((ret = conv_duration(ctx, "control.svidTTL", r->svid_ttl, 1, &ttl_ms)) != 0)
            return ret;
        if (ttl_ms != 0 && ttl_ms < 300000)
            return rm_config_value_error(ctx, "control.svidTTL",
                                         "must be at least 5m (or 0 for the control plane's default)");
        c->svid_ttl_s = ttl_ms / 1000;
    }
    c->keepalive_time_ms = 60000;
    c->keepalive_timeout_ms = 20000;
    if (r->keepalive_time != NULL &&
        (ret = conv_duration(ctx, "control.keepaliveTime", r->keepalive_time, 0, &c->keepalive_time_ms)) != 0)
        return ret;
    /* ringmesh-control, as gRPC servers do, ends a connection that pings more often (GOAWAY too_many_pings) */
    if (c->keepalive_time_ms < 30000)
        return rm_config_value_error(ctx, "control.keepaliveTime",
                                     "must be at least 30s (the control plane refuses pings more frequent than that)");
    if (r->keepalive_timeout != NULL &&
        (ret = conv_duration(ctx, "control.keepaliveTimeout", r->keepalive_timeout, 0, &c->keepalive_timeout_ms)) != 0)
        return ret;
    return 0;
}

static int check_tls(rm_config_doc_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg)
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
        if ((ret = rm_config_conv_string(ctx, paths[i], src[i], dst[i])) != 0)
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
            return rm_config_value_error(ctx, paths[i], "is required because %s", why);
    return 0;
}

static int check_listen_conflicts(rm_config_doc_t *ctx, rm_proxy_config_t *cfg)
{
    typedef struct {
        char path[48];
        const rm_sockaddr_t *addr;
    } slot_t;
    slot_t *slots;
    size_t n = 0;
    int ret = 0;

    if ((slots = calloc(cfg->num_listeners + 3, sizeof(*slots))) == NULL)
        return rm_config_value_error(ctx, "listeners", "out of memory");
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
            size_t at = rm_yaml_pos_map_find(ctx->map, slots[j].path) != NULL ? j : i, other = at == j ? i : j;
            char a[64], b[64];
            ret = rm_config_value_error(ctx, slots[at].path, "%s overlaps %s (%s)",
                                        sockaddr_str(a, sizeof(a), slots[at].addr), slots[other].path,
                                        sockaddr_str(b, sizeof(b), slots[other].addr));
            goto Exit;
        }
    }
Exit:
    free(slots);
    return ret;
}

/* authorization.trustDomainAliases: the trust domains this one was known as (Istio's MeshConfig
 * trustDomainAliases), so that policies naming them keep matching. */
static int conv_trust_domain_aliases(rm_config_doc_t *ctx, const raw_authz_t *a, rm_proxy_config_t *cfg)
{
    char path[64];
    int ret;
    if (a->trust_domain_aliases_count == 0)
        return 0;
    if (a->trust_domain_aliases_count > RM_MAX_TRUST_DOMAIN_ALIASES)
        return rm_config_value_error(ctx, "authorization.trustDomainAliases", "has %u entries; at most %d are allowed",
                                     a->trust_domain_aliases_count, RM_MAX_TRUST_DOMAIN_ALIASES);
    if ((cfg->authz_trust_domain_aliases = calloc(a->trust_domain_aliases_count, sizeof(char *))) == NULL)
        return rm_config_value_error(ctx, "authorization.trustDomainAliases", "out of memory");
    for (unsigned i = 0; i < a->trust_domain_aliases_count; i++) {
        const char *td = a->trust_domain_aliases[i];
        snprintf(path, sizeof(path), "authorization.trustDomainAliases[%u]", i);
        if ((ret = rm_config_conv_trust_domain(ctx, path, td, &cfg->authz_trust_domain_aliases[i])) != 0)
            return ret;
        cfg->num_authz_trust_domain_aliases++;
    }
    return 0;
}

/* A proxy without a control plane may enforce policies from a directory (the same YAML the control plane reads;
 * every policy in it applies to this proxy). With a control plane, the pushed WorkloadPolicy is what applies. */
/* metrics: the request and connection metrics' names, series limit and expiry (docs/metrics.md) */
static int conv_metrics(rm_config_doc_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg)
{
    const raw_metrics_t *m = raw->metrics;
    int ret;
    if (m == NULL)
        return 0;
    if ((ret = rm_config_conv_bool(ctx, "metrics.enabled", m->enabled, &cfg->metrics_enabled)) != 0 ||
        (ret = rm_config_conv_bool(ctx, "metrics.istioNames", m->istio_names, &cfg->metrics_istio_names)) != 0 ||
        (ret = rm_config_conv_uint(ctx, "metrics.maxSeriesPerMetric", m->max_series_per_metric, 0, 1000000,
                                   &cfg->metrics_max_series)) != 0 ||
        (ret = conv_duration(ctx, "metrics.seriesExpiry", m->series_expiry, 1, &cfg->metrics_expiry_ms)) != 0)
        return ret;
    return 0;
}

static int conv_authorization(rm_config_doc_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg)
{
    const raw_authz_t *a = raw->authorization;
    int ret;
    cfg->authz_default_allow = 0;
    cfg->authz_path_normalization = RM_PATH_NORMALIZATION_BASE;
    if (a == NULL)
        return 0;
    if (raw->control != NULL)
        return rm_config_value_error(ctx, "authorization",
                                     "is for proxies without a control plane: with `control`, the "
                                     "control plane pushes the policies");
    if ((ret = rm_config_conv_string(ctx, "authorization.policyDir", a->policy_dir, &cfg->authz_policy_dir)) != 0 ||
        (ret = rm_config_conv_bool(ctx, "authorization.logAllowed", a->log_allowed, &cfg->authz_log_allowed)) != 0 ||
        (ret = rm_config_conv_uint(ctx, "authorization.numTrustedProxies", a->num_trusted_proxies, 0, 64,
                                   &cfg->authz_num_trusted_proxies)) != 0 ||
        (ret = rm_config_conv_bool(ctx, "authorization.logAttributes", a->log_attributes,
                                   &cfg->authz_log_attributes)) != 0)
        return ret;
    if (cfg->authz_policy_dir == NULL)
        return rm_config_value_error(ctx, "authorization.policyDir", "is required (a file or directory of policies)");
    if (a->default_action != NULL) {
        if (strcmp(a->default_action, "ALLOW") == 0)
            cfg->authz_default_allow = 1;
        else if (strcmp(a->default_action, "DENY") != 0)
            return rm_config_value_error(ctx, "authorization.defaultAction", "\"%.40s\" is not DENY or ALLOW",
                                         a->default_action);
    }
    if (a->path_normalization != NULL && a->path_normalization->normalization != NULL &&
        rm_path_normalization_parse(a->path_normalization->normalization, &cfg->authz_path_normalization) != 0)
        return rm_config_value_error(ctx, "authorization.pathNormalization.normalization",
                                     "\"%.40s\" is not " RM_PATH_NORMALIZATION_NAMES,
                                     a->path_normalization->normalization);
    return conv_trust_domain_aliases(ctx, a, cfg);
}

int rm__proxy_config_convert(rm_config_doc_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg)
{
    int ret;

    if ((ret = rm_config_conv_trust_domain(ctx, "trustDomain", raw->trust_domain, &cfg->trust_domain)) != 0 ||
        (ret = conv_endpoints(ctx, raw, cfg)) != 0 || (ret = conv_destinations(ctx, raw, cfg)) != 0 ||
        (ret = conv_listeners(ctx, raw, cfg)) != 0 ||
        (ret = rm_config_conv_uint(ctx, "workers", raw->workers, 1, CONFIG_WORKERS_MAX, &cfg->workers)) != 0 ||
        (ret = conv_io_backend(ctx, "ioBackend", raw->io_backend, &cfg->io_backend)) != 0 ||
        (ret = rm_config_conv_enum(ctx, "kernelTls", raw->kernel_tls, "a kernel TLS setting", kernel_tls_names,
                                   kernel_tls_values, &cfg->kernel_tls)) != 0 ||
        (ret = rm_config_conv_uint(ctx, "maxConnections", raw->max_connections, 1, CONFIG_CONN_MAX,
                                   &cfg->max_connections)) != 0 ||
        (ret = conv_duration(ctx, "connectTimeout", raw->connect_timeout, 0, &cfg->connect_timeout_ms)) != 0 ||
        (ret = conv_duration(ctx, "idleTimeout", raw->idle_timeout, 1, &cfg->idle_timeout_ms)) != 0 ||
        (ret = conv_duration(ctx, "drainTimeout", raw->drain_timeout, 1, &cfg->drain_timeout_ms)) != 0 ||
        (ret = conv_duration(ctx, "handshakeTimeout", raw->handshake_timeout, 0, &cfg->handshake_timeout_ms)) != 0 ||
        (ret = rm__proxy_config_convert_handshakes(ctx, raw, cfg)) != 0 ||
        (ret = rm__proxy_config_convert_observe(ctx, raw, cfg)) != 0 ||
        (ret = conv_log_level(ctx, "logLevel", raw->log_level, &cfg->log_level)) != 0 ||
        (ret = conv_control(ctx, raw, cfg)) != 0 || (ret = conv_authorization(ctx, raw, cfg)) != 0 ||
        (ret = conv_metrics(ctx, raw, cfg)) != 0 || (ret = rm__proxy_config_convert_traffic(ctx, raw, cfg)) != 0 ||
        (ret = check_tls(ctx, raw, cfg)) != 0 || (ret = check_listen_conflicts(ctx, cfg)) != 0)
        return ret;
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------
 * Public functions.
 * ------------------------------------------------------------------------------------------------------- */

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
    if (ktls != NULL && ktls[0] != '\0') {
        if (strcmp(ktls, "auto") != 0 && strcmp(ktls, "off") != 0) {
            set_err(err, errlen, "RINGMESH_KERNEL_TLS: %s is not a kernel TLS setting (want auto or off)",
                    rm_yaml_quoted(q, sizeof(q), ktls));
            return RM_ERR_CONFIG_VALUE;
        }
        new_ktls = strcmp(ktls, "auto") == 0;
    }
    if (workers != NULL && workers[0] != '\0' &&
        rm_config_parse_uint(workers, 1, CONFIG_WORKERS_MAX, &new_workers) != 0) {
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
    free(cfg->workload_name);
    free(cfg->workload_namespace);
    free(cfg->workload_app);
    free(cfg->workload_version);
    free(cfg->workload_principal);
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
