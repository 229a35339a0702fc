/* rm_policy_lint: findings about a policy set that loads but does not say what its author likely meant (names
 * defined twice, values that can never match, HTTP-only fields where the traffic may not be HTTP). */
#include "ringmesh/policy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where a finding points: the node at fault when the policy was read from a file (line > 0), else the policy. */
typedef struct st_at_t {
    unsigned line, column;
} at_t;

static at_t at_node(const rm_authz_policy_t *p, unsigned line, unsigned column)
{
    return line > 0 ? (at_t){line, column} : (at_t){p->line, 1};
}

static int add_finding(rm_policy_diags_t *diags, int warning, const char *file, at_t at, const char *path,
                       const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int add_finding(rm_policy_diags_t *diags, int warning, const char *file, at_t at, const char *path,
                       const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rm_policy_diag_t *nd = realloc(diags->d, (diags->n + 1) * sizeof(*nd));
    if (nd == NULL)
        return -ENOMEM;
    diags->d = nd;
    nd[diags->n] = (rm_policy_diag_t){.warning = warning,
                                      .file = file != NULL ? strdup(file) : NULL,
                                      .line = at.line,
                                      .column = at.column,
                                      .path = strdup(path),
                                      .message = strdup(msg)};
    diags->n++;
    if (!warning)
        diags->num_errors++;
    return 0;
}

static const char *overlap(const rm_strlist_t *a, const rm_strlist_t *b)
{
    for (size_t i = 0; i < a->n; i++)
        for (size_t k = 0; k < b->n; k++)
            if (strcmp(a->v[i], b->v[k]) == 0 || strcmp(b->v[k], "*") == 0)
                return a->v[i];
    return NULL;
}

static void lint_pair(rm_policy_diags_t *diags, const rm_authz_policy_t *p, at_t at, const char *path,
                      const char *field, const rm_strlist_t *pos, const rm_strlist_t *neg)
{
    const char *v = overlap(pos, neg);
    if (v != NULL)
        add_finding(diags, 1, p->file, at, path, "\"%s\" is in both %s and not%c%s: this can never match", v, field,
                    field[0] - 32, field + 1);
}

int rm_policy_lint(const rm_policy_set_t *set, rm_policy_diags_t *diags)
{
    size_t before = diags->num_errors;
    char path[256];
    for (size_t i = 0; i < set->num_policies; i++) {
        const rm_authz_policy_t *p = &set->policies[i];
        for (size_t k = 0; k < i; k++) {
            const rm_authz_policy_t *q = &set->policies[k];
            if (strcmp(p->namespace_, q->namespace_) == 0 && strcmp(p->name, q->name) == 0)
                add_finding(diags, 0, p->file, (at_t){p->line, 1}, "metadata.name",
                            "AuthorizationPolicy %s/%s is defined twice (first at %s:%u)", p->namespace_, p->name,
                            q->file != NULL ? q->file : "-", q->line);
        }
        for (size_t r = 0; r < p->num_rules; r++) {
            const rm_authz_rule_t *ru = &p->rules[r];
            int http = 0;
            for (size_t f = 0; f < ru->num_from; f++) {
                const rm_authz_source_t *s = &ru->from[f];
                at_t at = at_node(p, s->line, s->column);
                snprintf(path, sizeof(path), "spec.rules[%zu].from[%zu].source", r, f);
                lint_pair(diags, p, at, path, "principals", &s->principals, &s->not_principals);
                lint_pair(diags, p, at, path, "namespaces", &s->namespaces, &s->not_namespaces);
                lint_pair(diags, p, at, path, "ipBlocks", &s->ip_blocks, &s->not_ip_blocks);
                lint_pair(diags, p, at, path, "serviceAccounts", &s->service_accounts, &s->not_service_accounts);
                lint_pair(diags, p, at, path, "trustDomains", &s->trust_domains, &s->not_trust_domains);
                lint_pair(diags, p, at, path, "remoteIpBlocks", &s->remote_ip_blocks, &s->not_remote_ip_blocks);
            }
            for (size_t t = 0; t < ru->num_to; t++) {
                const rm_authz_operation_t *o = &ru->to[t];
                at_t at = at_node(p, o->line, o->column);
                snprintf(path, sizeof(path), "spec.rules[%zu].to[%zu].operation", r, t);
                lint_pair(diags, p, at, path, "hosts", &o->hosts, &o->not_hosts);
                lint_pair(diags, p, at, path, "ports", &o->ports, &o->not_ports);
                lint_pair(diags, p, at, path, "methods", &o->methods, &o->not_methods);
                lint_pair(diags, p, at, path, "paths", &o->paths, &o->not_paths);
                if (o->hosts.n || o->not_hosts.n || o->methods.n || o->not_methods.n || o->paths.n || o->not_paths.n)
                    http = 1;
            }
            for (size_t w = 0; w < ru->num_when; w++) {
                snprintf(path, sizeof(path), "spec.rules[%zu].when[%zu]", r, w);
                const char *v = overlap(&ru->when[w].values, &ru->when[w].not_values);
                if (v != NULL)
                    add_finding(diags, 1, p->file, at_node(p, ru->when[w].line, ru->when[w].column), path,
                                "\"%s\" is in both values and notValues: this can never match", v);
                if (ru->when[w].key != NULL && strncmp(ru->when[w].key, "request.headers[", 16) == 0)
                    http = 1;
            }
            /* a rule whose every operation names its ports says which traffic it is about: no warning then */
            int ports_named = ru->num_to > 0;
            for (size_t t = 0; t < ru->num_to; t++)
                if (ru->to[t].ports.n == 0)
                    ports_named = 0;
            if (http && !ports_named) {
                snprintf(path, sizeof(path), "spec.rules[%zu]", r);
                if (p->action == RM_AUTHZ_ALLOW)
                    add_finding(diags, 1, p->file, at_node(p, ru->line, ru->column), path,
                                "uses HTTP-only fields (hosts, methods, paths, request.headers): this ALLOW rule never "
                                "matches a connection that is not HTTP");
                else
                    add_finding(diags, 1, p->file, at_node(p, ru->line, ru->column), path,
                                "uses HTTP-only fields (hosts, methods, paths, request.headers): on a connection that "
                                "is not HTTP this %s rule applies as if they matched, to every connection its other "
                                "fields match",
                                rm_authz_action_name(p->action));
            }
        }
    }
    for (size_t i = 0; i < set->num_peer_authns; i++) {
        const rm_peer_authn_t *p = &set->peer_authns[i];
        for (size_t k = 0; k < i; k++) {
            const rm_peer_authn_t *q = &set->peer_authns[k];
            if (strcmp(p->namespace_, q->namespace_) == 0 && strcmp(p->name, q->name) == 0)
                add_finding(diags, 0, p->file, (at_t){p->line, 1}, "metadata.name",
                            "PeerAuthentication %s/%s is defined twice (first at %s:%u)", p->namespace_, p->name,
                            q->file != NULL ? q->file : "-", q->line);
        }
    }
    return (int)(diags->num_errors - before);
}
