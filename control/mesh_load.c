/* The mesh loader (mesh_load.h): the state of one load across files, the checks that need every file, and the
 * model built from them. One file's MeshConfig and Service documents are read by mesh_documents.c, its
 * AuthorizationPolicy and PeerAuthentication documents by lib/policy_yaml.c. */
#include "mesh_load_internal.h"
#include "service_endpoints.h"
#include "route_model.h"

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

/* Reports RM_ERR_CONFIG_VALUE at a position of file `file` (directory-wide checks). */
__attribute__((format(printf, 5, 6))) static int loader_error(loader_t *ld, size_t file, rm_yaml_pos_t pos,
                                                              const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rm_config_error_vset(ld->err, RM_ERR_CONFIG_VALUE, ld->files[file], pos, path, fmt, ap);
    va_end(ap);
    return RM_ERR_CONFIG_VALUE;
}

/* ---------------------------------------------------------------------------------------------------------
 * Policies.
 * ------------------------------------------------------------------------------------------------------- */

/* Copies the first error of `diags` (they come in text order) into the loader's error. */
static int policy_error(loader_t *ld, const rm_policy_diags_t *diags)
{
    for (size_t i = 0; i < diags->n; i++) {
        const rm_policy_diag_t *d = &diags->d[i];
        if (d->warning)
            continue;
        return rm_config_error_set(ld->err, RM_ERR_CONFIG_VALUE, d->file != NULL ? d->file : "",
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
        ret = rm_config_error_set(ld->err, RM_ERR_CONFIG_IO, ld->files[file_index], (rm_yaml_pos_t){0, 0}, NULL,
                                  "out of memory");
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
        size_t bad = 0;
        int r = rm__endpoints_resolve(p->endpoints, p->num_endpoints, td, p->namespace_, &bad);
        if (r == -ENOMEM)
            return loader_error(ld, p->file, p->spec_pos, "spec.endpoints", "out of memory");
        if (r != 0) {
            const rm__pending_endpoint_t *e = &p->endpoints[bad];
            snprintf(path, sizeof(path), "spec.endpoints[%u].%s", e->index,
                     e->service_account != NULL ? "serviceAccount" : "identity");
            return loader_error(
                ld, p->file, e->pos, path, "%s is not a SPIFFE ID in the mesh's trust domain \"%s\"",
                rm_yaml_quoted(q, sizeof(q), e->service_account != NULL ? e->service_account : e->identity), td);
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
            rm__vip_port_str(ep, sizeof(ep), b->vip, b->port);
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

/* Workloads: one per namespace and name, and an address belongs to one of them. */
static int check_unique_workloads(loader_t *ld)
{
    for (size_t i = 0; i < ld->num_workloads; i++) {
        const pending_workload_t *b = &ld->workloads[i];
        for (size_t j = 0; j < i; j++) {
            const pending_workload_t *a = &ld->workloads[j];
            if (strcmp(a->w.namespace_, b->w.namespace_) == 0 && strcmp(a->w.pod, b->w.pod) == 0)
                return loader_error(ld, b->file, b->doc_pos, "metadata.name", "workload %s/%s is also defined in %s:%u",
                                    b->w.namespace_, b->w.pod, ld->files[a->file], a->doc_pos.line);
            for (size_t x = 0; x < b->w.num_addresses; x++)
                for (size_t y = 0; y < a->w.num_addresses; y++)
                    if (strcmp(b->w.addresses[x], a->w.addresses[y]) == 0) {
                        char path[48];
                        snprintf(path, sizeof(path), "spec.addresses[%zu]", x);
                        return loader_error(ld, b->file, b->doc_pos, path,
                                            "%s is also an address of workload %s/%s (%s:%u)", b->w.addresses[x],
                                            a->w.namespace_, a->w.pod, ld->files[a->file], a->doc_pos.line);
                    }
        }
    }
    return 0;
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
        if (rm__endpoints_take(p->endpoints, p->num_endpoints, &s->endpoints) != 0)
            goto NoMem;
        s->num_endpoints = p->num_endpoints;
        if ((s->file = strdup(ld->files[p->file])) == NULL ||
            (s->addresses = calloc(p->num_vips * p->num_ports, sizeof(*s->addresses))) == NULL)
            goto NoMem;
        for (size_t v = 0; v < p->num_vips; v++) {
            for (size_t j = 0; j < p->num_ports; j++) {
                char ep[INET6_ADDRSTRLEN + 10];
                rm__vip_port_str(ep, sizeof(ep), &p->vips[v], p->ports[j]);
                if ((s->addresses[s->num_addresses] = strdup(ep)) == NULL)
                    goto NoMem;
                s->num_addresses++;
            }
        }
    }
    if (ld->num_workloads > 0 && (m->workloads = calloc(ld->num_workloads, sizeof(*m->workloads))) == NULL)
        goto NoMem;
    for (size_t i = 0; i < ld->num_workloads; i++) {
        m->workloads[m->num_workloads++] = ld->workloads[i].w; /* moved */
        memset(&ld->workloads[i].w, 0, sizeof(ld->workloads[i].w));
    }
    if (rm__mesh_move_routes(ld, m) != 0 || rm__mesh_model_seal(m) != 0)
        goto NoMem;
    *out = m;
    return 0;

NoMem:
    rm_mesh_model_unref(m);
    return rm_config_error_set(ld->err, RM_ERR_CONFIG_IO, ld->num_files > 0 ? ld->files[0] : "", (rm_yaml_pos_t){0, 0},
                               NULL, "out of memory");
}

static void loader_dispose(loader_t *ld)
{
    for (size_t i = 0; i < ld->num_files; i++)
        free(ld->files[i]);
    free(ld->files);
    for (size_t i = 0; i < ld->num_services; i++)
        rm__pending_service_clear(&ld->services[i]);
    free(ld->services);
    for (size_t i = 0; i < ld->num_workloads; i++)
        rm__model_workload_clear(&ld->workloads[i].w);
    free(ld->workloads);
    free(ld->settings.trust_domain);
    free(ld->settings.root_namespace);
    rm__mesh_settings_aliases_free(&ld->settings);
    rm_policy_set_clear(&ld->policies);
    rm_route_list_clear(&ld->routes);
    memset(ld, 0, sizeof(*ld));
}

/* ---------------------------------------------------------------------------------------------------------
 * The loader.
 * ------------------------------------------------------------------------------------------------------- */

rm_mesh_loader_t *rm_mesh_loader_new(rm_config_error_t *err)
{
    loader_t *ld;

    if ((ld = calloc(1, sizeof(*ld))) == NULL)
        return NULL;
    ld->err = err;
    ld->settings.inbound_mode = RM_MODEL_MTLS_STRICT;
    ld->settings.access_log = 0;
    ld->settings.access_log_sample = 1;
    ld->settings.svid_ttl = RM_MODEL_DEFAULT_SVID_TTL;
    ld->settings.default_action = RM_AUTHZ_DENY;
    ld->settings.log_allowed_sample = 1;
    if ((ld->settings.trust_domain = strdup(RM_MODEL_DEFAULT_TRUST_DOMAIN)) == NULL ||
        (ld->settings.root_namespace = strdup(RM_MODEL_DEFAULT_ROOT_NAMESPACE)) == NULL) {
        rm_mesh_loader_free(ld);
        return NULL;
    }
    return ld;
}

int rm_mesh_loader_add(rm_mesh_loader_t *ld, const char *shown, const char *data, size_t len)
{
    char **files = realloc(ld->files, (ld->num_files + 1) * sizeof(*files));
    int ret;

    if (files == NULL || (files[ld->num_files] = strdup(shown)) == NULL) {
        if (files != NULL)
            ld->files = files;
        return rm_config_error_set(ld->err, RM_ERR_CONFIG_IO, shown, (rm_yaml_pos_t){0, 0}, NULL, "out of memory");
    }
    ld->files = files;
    ld->num_files++;
    if ((ret = rm__mesh_load_documents(ld, ld->num_files - 1, data, len)) != 0 ||
        (ret = rm__mesh_load_routes(ld, ld->num_files - 1, data, len)) != 0)
        return ret;
    return load_policies(ld, ld->num_files - 1, data, len);
}

int rm_mesh_loader_finish(rm_mesh_loader_t *ld, rm_mesh_model_t **out)
{
    int ret;
    if ((ret = check_identities(ld)) != 0 || (ret = check_unique_services(ld)) != 0 ||
        (ret = check_unique_endpoints(ld)) != 0 || (ret = check_unique_workloads(ld)) != 0 ||
        (ret = check_policies(ld)) != 0 || (ret = rm__mesh_check_routes(ld)) != 0)
        return ret;
    return build_model(ld, out);
}

size_t rm_mesh_loader_num_files(const rm_mesh_loader_t *ld)
{
    return ld->num_files;
}

void rm_mesh_loader_free(rm_mesh_loader_t *ld)
{
    if (ld == NULL)
        return;
    loader_dispose(ld);
    free(ld);
}
