/* The parts of Istio's AuthorizationPolicy the first loader did not read (policy_yaml_internal.h): a source's
 * serviceAccounts, trustDomains and remoteIpBlocks, path templates, and the message for each field and key the mesh
 * does not support. A real Istio field the mesh cannot honour is refused as "not supported" with the reason, never
 * as "unknown" (which reads like a typo); an unknown name gets the closest known one when it is near. */
#include "policy_yaml_internal.h"

#include "ringmesh/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rm__policy_mark(const yaml_node_t *n, unsigned *line, unsigned *column)
{
    *line = (unsigned)n->start_mark.line + 1;
    *column = (unsigned)n->start_mark.column + 1;
}

int rm__policy_read_source_more(loader_t *ld, const yaml_node_t *n, const char *path, rm_authz_source_t *s, int *fields)
{
    const struct {
        const char *key;
        rm_strlist_t *list;
        value_kind_t kind;
    } f[] = {
        {"serviceAccounts", &s->service_accounts, VAL_SERVICE_ACCOUNT},
        {"notServiceAccounts", &s->not_service_accounts, VAL_SERVICE_ACCOUNT},
        {"trustDomains", &s->trust_domains, VAL_MATCH},
        {"notTrustDomains", &s->not_trust_domains, VAL_MATCH},
        {"remoteIpBlocks", &s->remote_ip_blocks, VAL_IP},
        {"notRemoteIpBlocks", &s->not_remote_ip_blocks, VAL_IP},
    };
    char cp[POLICY_PATH_MAX];
    int ok = 1;
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        yaml_node_t *v = rm__policy_map_get(ld, n, f[i].key);
        if (v == NULL)
            continue;
        rm__policy_child_path(cp, path, f[i].key);
        if (!rm__policy_read_strlist(ld, v, cp, f[i].list, f[i].kind))
            ok = 0;
        if (f[i].list->n > 0)
            (*fields)++;
    }
    /* Istio refuses serviceAccounts next to principals or namespaces: a source names its peers one way */
    static const char *const others[] = {"principals", "notPrincipals", "namespaces", "notNamespaces"};
    yaml_node_t *sa = rm__policy_map_get(ld, n, "serviceAccounts");
    if (sa == NULL)
        sa = rm__policy_map_get(ld, n, "notServiceAccounts");
    for (size_t i = 0; sa != NULL && i < sizeof(others) / sizeof(others[0]); i++) {
        yaml_node_t *o = rm__policy_map_get(ld, n, others[i]);
        if (o == NULL)
            continue;
        rm__policy_child_path(cp, path, others[i]);
        rm__policy_report(ld, 0, o, cp,
                          "cannot be set with serviceAccounts or notServiceAccounts in the same source (as in Istio): "
                          "write the peers one way, or use two sources");
        ok = 0;
    }
    return ok;
}

void rm__policy_source_fields_clear(rm_authz_source_t *s)
{
    rm__policy_strlist_clear(&s->service_accounts);
    rm__policy_strlist_clear(&s->not_service_accounts);
    rm__policy_strlist_clear(&s->trust_domains);
    rm__policy_strlist_clear(&s->not_trust_domains);
    rm__policy_strlist_clear(&s->remote_ip_blocks);
    rm__policy_strlist_clear(&s->not_remote_ip_blocks);
}

static const char *const condition_keys[] = {"request.headers[NAME]",
                                             "source.ip",
                                             "remote.ip",
                                             "source.namespace",
                                             "source.principal",
                                             "source.serviceAccount",
                                             "source.trustDomain",
                                             "destination.ip",
                                             "destination.port",
                                             "connection.sni",
                                             NULL};

const char *rm__policy_condition_key_unsupported(const char *key)
{
    static __thread char msg[512];
    if (strncmp(key, "experimental.envoy.filters.", 27) == 0 || strncmp(key, "experimental.", 13) == 0)
        return "not supported: experimental.envoy.filters.* reads Envoy filter metadata, which the ringmesh proxy "
               "does not have";
    const char *near = rm__policy_did_you_mean(key, condition_keys);
    snprintf(msg, sizeof(msg),
             "unknown key%s%s%s (supported: request.headers[NAME], source.ip, remote.ip, source.namespace, "
             "source.principal, source.serviceAccount, source.trustDomain, destination.ip, destination.port, "
             "connection.sni, request.auth.principal, request.auth.audiences, request.auth.presenter, "
             "request.auth.claims[NAME])",
             near != NULL ? ": did you mean \"" : "", near != NULL ? near : "", near != NULL ? "\"?" : "");
    return msg;
}

int rm__policy_spec_unsupported(loader_t *ld, const yaml_node_t *spec)
{
    int ok = 1;
    yaml_node_t *v;
    if ((v = rm__policy_map_get(ld, spec, "targetRef")) != NULL) {
        rm__policy_report(ld, 0, v, "spec.targetRef",
                          "targetRef is not supported: it attaches a policy to a Gateway API resource (a gateway or "
                          "waypoint), and ringmesh enforces in each workload's sidecar; use spec.selector");
        ok = 0;
    }
    if ((v = rm__policy_map_get(ld, spec, "targetRefs")) != NULL) {
        rm__policy_report(ld, 0, v, "spec.targetRefs",
                          "targetRefs is not supported: it attaches a policy to Gateway API resources (gateways or "
                          "waypoints), and ringmesh enforces in each workload's sidecar; use spec.selector");
        ok = 0;
    }
    if ((v = rm__policy_map_get(ld, spec, "provider")) != NULL) {
        rm__policy_report(ld, 0, v, "spec.provider",
                          "provider is not supported: it names the external authorizer of the CUSTOM action, and "
                          "ringmesh has no external authorization (ext_authz)");
        ok = 0;
    }
    return ok;
}

/* Istio's path templates (Envoy's URI templates): "{*}" is one whole path segment (one or more characters, no '/'),
 * "{**}" zero or more characters, '/' included, and must be the last operator. An operator is a segment of its own;
 * outside operators no '*', '{' or '}'. */
int rm__policy_check_path_template(loader_t *ld, const yaml_node_t *n, const char *path, const char *v)
{
    char q[160];
    const char *why = NULL;
    int seen_any = 0;
    if (v[0] != '/')
        why = "a path template must begin with '/'";
    for (const char *p = v; why == NULL && *p != '\0'; p++) {
        if (*p == '{') {
            size_t len = strncmp(p, "{**}", 4) == 0 ? 4 : strncmp(p, "{*}", 3) == 0 ? 3 : 0;
            if (len == 0) { /* ends here: stepping by len - 1 (SIZE_MAX) would overflow the pointer */
                why = "the only template operators are {*} (one segment) and {**} (any number of segments)";
                break;
            }
            if (p[-1] != '/' || (p[len] != '/' && p[len] != '\0'))
                why = "a template operator must be a whole path segment (nothing else between its slashes)";
            else if (seen_any)
                why = "{**} must be the last template operator";
            seen_any = len == 4;
            p += len - 1; /* past the operator */
        } else if (*p == '}') {
            why = "'}' outside a template operator";
        } else if (*p == '*') {
            why = "'*' outside a template operator: a path with {*} or {**} is a template, not a prefix or suffix";
        }
    }
    if (why == NULL)
        return 1;
    rm__policy_report(ld, 0, n, path, "%s: %s", rm__policy_quoted(q, sizeof(q), v), why);
    return 0;
}

int rm__policy_check_service_account(loader_t *ld, const yaml_node_t *n, const char *path, const char *v)
{
    char q[160];
    const char *slash = strchr(v, '/');
    const char *why = NULL;
    if (strchr(v, '*') != NULL)
        why = "a service account is named exactly (\"NAMESPACE/NAME\", or \"NAME\" in the policy's namespace), "
              "without '*'";
    else if (slash != NULL && strchr(slash + 1, '/') != NULL)
        why = "want \"NAMESPACE/NAME\" or \"NAME\" (at most one '/')";
    else if (slash != NULL && !rm_config_dns_label_ok(v, (size_t)(slash - v)))
        why = "the namespace is not a DNS label";
    else if (!rm_config_dns_subdomain_ok(slash != NULL ? slash + 1 : v))
        why = "the service account name is not a DNS subdomain name";
    if (why == NULL)
        return 1;
    rm__policy_report(ld, 0, n, path, "%s: %s", rm__policy_quoted(q, sizeof(q), v), why);
    return 0;
}

/* Edit distance, bounded: names are short; anything longer than 64 is not a typo of a known name. */
static unsigned distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned row[65];
    if (la > 64 || lb > 64)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1;
            unsigned best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *rm__policy_did_you_mean(const char *key, const char *const *known)
{
    const char *best = NULL;
    unsigned best_d = 3; /* at most two edits */
    for (size_t i = 0; known != NULL && known[i] != NULL; i++) {
        unsigned d = distance(key, known[i]);
        if (d < best_d)
            best = known[i], best_d = d;
    }
    return best;
}
