/* AuthorizationPolicy and PeerAuthentication documents: YAML text -> the model of ringmesh/policy.h.
 *
 * libyaml's document loader builds the node tree with a position for every node, so each finding names the file,
 * line, column and field path of the node at fault. A document with errors is left out whole and every error is
 * reported, not just the first: a team fixing a policy file wants the full list at once. Aliases are refused
 * (a policy has no use for them, and a reused node would be walked many times). */
#include "ringmesh/policy.h"
#include "ringmesh/error.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "ringmesh/config.h"
#include "ringmesh/yaml_load.h"

#include "policy_yaml_internal.h"

/* Field paths are for messages: one cut short at POLICY_PATH_MAX is still useful, so truncation is intended. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* ------------------------------------------------------------------ the spec */

/* One list-valued field of a source or an operation. */
typedef struct st_list_field_t {
    const char *key;
    rm_strlist_t *list;
    value_kind_t kind;
} list_field_t;

/* Reads the list fields present in mapping n; *fields counts those with at least one entry. Returns 1 when all
 * were read cleanly. */
static int read_list_fields(loader_t *ld, const yaml_node_t *n, const char *path, const list_field_t *f, size_t num,
                            int *fields)
{
    char cp[POLICY_PATH_MAX];
    int ok = 1;
    for (size_t i = 0; i < num; i++) {
        yaml_node_t *v = rm__policy_map_get(ld, n, f[i].key);
        if (v == NULL)
            continue;
        rm__policy_child_path(cp, path, f[i].key);
        if (!rm__policy_read_strlist(ld, v, cp, f[i].list, f[i].kind))
            ok = 0;
        if (f[i].list->n > 0)
            (*fields)++;
    }
    return ok;
}

static const char *const source_keys[] = {
    "principals",   "notPrincipals",   "namespaces",        "notNamespaces",        "ipBlocks",
    "notIpBlocks",  "remoteIpBlocks",  "notRemoteIpBlocks", "serviceAccounts",      "notServiceAccounts",
    "trustDomains", "notTrustDomains", "requestPrincipals", "notRequestPrincipals", NULL};

static int read_source(loader_t *ld, const yaml_node_t *n, const char *path, rm_authz_source_t *s)
{
    int ok = 1, fields = 0;
    list_field_t f[] = {
        {"principals", &s->principals, VAL_MATCH},
        {"notPrincipals", &s->not_principals, VAL_MATCH},
        {"namespaces", &s->namespaces, VAL_NAMESPACE},
        {"notNamespaces", &s->not_namespaces, VAL_NAMESPACE},
        {"ipBlocks", &s->ip_blocks, VAL_IP},
        {"notIpBlocks", &s->not_ip_blocks, VAL_IP},
        {"requestPrincipals", &s->request_principals, VAL_MATCH},
        {"notRequestPrincipals", &s->not_request_principals, VAL_MATCH},
    };
    if (!rm__policy_want_type(ld, n, YAML_MAPPING_NODE, path))
        return 0;
    rm__policy_mark(n, &s->line, &s->column);
    if (!rm__policy_check_keys(ld, n, path, source_keys, NULL))
        ok = 0;
    if (!read_list_fields(ld, n, path, f, sizeof(f) / sizeof(f[0]), &fields))
        ok = 0;
    if (!rm__policy_read_source_more(ld, n, path, s, &fields))
        ok = 0;
    if (ok && fields == 0) {
        rm__policy_report(ld, 0, n, path,
                          "a source must set at least one field (a rule without `from` matches every source)");
        ok = 0;
    }
    return ok;
}

static const char *const operation_keys[] = {"hosts",      "notHosts", "ports",    "notPorts", "methods",
                                             "notMethods", "paths",    "notPaths", NULL};

static int read_operation(loader_t *ld, const yaml_node_t *n, const char *path, rm_authz_operation_t *o)
{
    int ok = 1, fields = 0;
    list_field_t f[] = {
        {"hosts", &o->hosts, VAL_MATCH},      {"notHosts", &o->not_hosts, VAL_MATCH},
        {"ports", &o->ports, VAL_PORT},       {"notPorts", &o->not_ports, VAL_PORT},
        {"methods", &o->methods, VAL_METHOD}, {"notMethods", &o->not_methods, VAL_METHOD},
        {"paths", &o->paths, VAL_PATH},       {"notPaths", &o->not_paths, VAL_PATH},
    };
    if (!rm__policy_want_type(ld, n, YAML_MAPPING_NODE, path))
        return 0;
    rm__policy_mark(n, &o->line, &o->column);
    if (!rm__policy_check_keys(ld, n, path, operation_keys, NULL))
        ok = 0;
    if (!read_list_fields(ld, n, path, f, sizeof(f) / sizeof(f[0]), &fields))
        ok = 0;
    if (ok && fields == 0) {
        rm__policy_report(ld, 0, n, path,
                          "an operation must set at least one field (a rule without `to` matches every request)");
        ok = 0;
    }
    return ok;
}

/* The `when` keys the mesh can evaluate, with the kind of their values. */
static int condition_key_kind(const char *key, value_kind_t *kind, const char **why)
{
    static const struct {
        const char *key;
        value_kind_t kind;
    } keys[] = {
        {"source.ip", VAL_IP},
        {"remote.ip", VAL_IP},
        {"source.namespace", VAL_NAMESPACE},
        {"source.principal", VAL_MATCH},
        {"source.serviceAccount", VAL_SERVICE_ACCOUNT},
        {"source.trustDomain", VAL_MATCH},
        {"destination.ip", VAL_IP},
        {"destination.port", VAL_PORT},
        {"connection.sni", VAL_MATCH},
    };
    *why = NULL;
    size_t hl = strlen("request.headers[");
    if (strncmp(key, "request.headers[", hl) == 0) {
        size_t len = strlen(key);
        if (len < hl + 2 || key[len - 1] != ']') {
            *why = "want request.headers[NAME] with a header name";
            return 0;
        }
        for (size_t i = hl; i < len - 1; i++) {
            unsigned char c = (unsigned char)key[i];
            if (!(isalnum(c) || strchr("!#$%&'*+-.^_`|~:", c) != NULL)) {
                *why = "the header name has a character that no header name has";
                return 0;
            }
        }
        *kind = VAL_MATCH;
        return 1;
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(keys[i].key, key) == 0) {
            *kind = keys[i].kind;
            return 1;
        }
    }
    if (strncmp(key, "request.auth.", 13) == 0) {
        *kind = VAL_MATCH;
        return rm__request_auth_key_ok(key, why);
    }
    *why = rm__policy_condition_key_unsupported(key);
    return 0;
}

static int read_condition(loader_t *ld, const yaml_node_t *n, const char *path, rm_authz_condition_t *c)
{
    static const char *const keys[] = {"key", "values", "notValues", NULL};
    char cp[POLICY_PATH_MAX], q[160];
    int ok = 1;
    value_kind_t kind = VAL_MATCH;
    const char *why;
    if (!rm__policy_want_type(ld, n, YAML_MAPPING_NODE, path))
        return 0;
    rm__policy_mark(n, &c->line, &c->column);
    if (!rm__policy_check_keys(ld, n, path, keys, NULL))
        ok = 0;
    yaml_node_t *k = rm__policy_map_get(ld, n, "key");
    rm__policy_child_path(cp, path, "key");
    if (k == NULL) {
        rm__policy_report(ld, 0, n, path, "a condition needs a key");
        return 0;
    }
    if ((c->key = rm__policy_scalar(ld, k, cp)) == NULL)
        return 0;
    if (!condition_key_kind(c->key, &kind, &why)) {
        rm__policy_report(ld, 0, k, cp, "%s: %s", rm__policy_quoted(q, sizeof(q), c->key), why);
        ok = 0;
    }
    yaml_node_t *v = rm__policy_map_get(ld, n, "values"), *nv = rm__policy_map_get(ld, n, "notValues");
    if (v != NULL) {
        rm__policy_child_path(cp, path, "values");
        if (!rm__policy_read_strlist(ld, v, cp, &c->values, kind))
            ok = 0;
    }
    if (nv != NULL) {
        rm__policy_child_path(cp, path, "notValues");
        if (!rm__policy_read_strlist(ld, nv, cp, &c->not_values, kind))
            ok = 0;
    }
    if (ok && c->values.n == 0 && c->not_values.n == 0) {
        rm__policy_report(ld, 0, n, path, "a condition needs values or notValues");
        ok = 0;
    }
    return ok;
}

/* Reads a list of single-key wrappers ({source: ...} / {operation: ...}) */
static int read_wrapped_list(loader_t *ld, const yaml_node_t *n, const char *path, const char *inner, void **out,
                             size_t *num, size_t elem_size,
                             int (*read)(loader_t *, const yaml_node_t *, const char *, void *))
{
    char ep[POLICY_PATH_MAX], ip[POLICY_PATH_MAX];
    const char *keys[] = {inner, NULL};
    int ok = 1;
    size_t cnt;
    if (!rm__policy_list_len(ld, n, path, &cnt))
        return 0;
    if (cnt == 0)
        return 1;
    uint8_t *arr = calloc(cnt, elem_size);
    if (arr == NULL) {
        ld->oom = 1;
        return 0;
    }
    *out = arr;
    *num = cnt;
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *e = rm__policy_node(ld, n->data.sequence.items.start[i]);
        rm__policy_index_path(ep, path, i);
        if (!rm__policy_want_type(ld, e, YAML_MAPPING_NODE, ep)) {
            ok = 0;
            continue;
        }
        if (!rm__policy_check_keys(ld, e, ep, keys, NULL))
            ok = 0;
        yaml_node_t *v = rm__policy_map_get(ld, e, inner);
        rm__policy_child_path(ip, ep, inner);
        if (v == NULL || rm__policy_is_null(v)) {
            rm__policy_report(ld, 0, e, ep, "`%s` must be set", inner);
            ok = 0;
            continue;
        }
        if (!read(ld, v, ip, arr + i * elem_size))
            ok = 0;
    }
    return ok;
}

static int read_source_v(loader_t *ld, const yaml_node_t *n, const char *p, void *o)
{
    return read_source(ld, n, p, o);
}

static int read_operation_v(loader_t *ld, const yaml_node_t *n, const char *p, void *o)
{
    return read_operation(ld, n, p, o);
}

static int read_rule(loader_t *ld, const yaml_node_t *n, const char *path, rm_authz_rule_t *r)
{
    static const char *const keys[] = {"from", "to", "when", NULL};
    char cp[POLICY_PATH_MAX], ep[POLICY_PATH_MAX];
    int ok = 1;
    rm__policy_mark(n, &r->line, &r->column);
    if (rm__policy_is_null(n))
        return 1; /* "- {}" written as "-": an empty rule, which matches everything */
    if (!rm__policy_want_type(ld, n, YAML_MAPPING_NODE, path))
        return 0;
    if (!rm__policy_check_keys(ld, n, path, keys, NULL))
        ok = 0;
    yaml_node_t *v;
    if ((v = rm__policy_map_get(ld, n, "from")) != NULL) {
        rm__policy_child_path(cp, path, "from");
        if (!read_wrapped_list(ld, v, cp, "source", (void **)&r->from, &r->num_from, sizeof(rm_authz_source_t),
                               read_source_v))
            ok = 0;
    }
    if ((v = rm__policy_map_get(ld, n, "to")) != NULL) {
        rm__policy_child_path(cp, path, "to");
        if (!read_wrapped_list(ld, v, cp, "operation", (void **)&r->to, &r->num_to, sizeof(rm_authz_operation_t),
                               read_operation_v))
            ok = 0;
    }
    if ((v = rm__policy_map_get(ld, n, "when")) != NULL && !rm__policy_is_null(v)) {
        rm__policy_child_path(cp, path, "when");
        if (!rm__policy_want_type(ld, v, YAML_SEQUENCE_NODE, cp))
            return 0;
        size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (cnt > 0) {
            if ((r->when = calloc(cnt, sizeof(*r->when))) == NULL) {
                ld->oom = 1;
                return 0;
            }
            r->num_when = cnt;
            for (size_t i = 0; i < cnt; i++) {
                rm__policy_index_path(ep, cp, i);
                if (!read_condition(ld, rm__policy_node(ld, v->data.sequence.items.start[i]), ep, &r->when[i]))
                    ok = 0;
            }
        }
    }
    return ok;
}

static int read_labels(loader_t *ld, const yaml_node_t *n, const char *path, rm_label_t **out, size_t *num)
{
    char cp[POLICY_PATH_MAX];
    int ok = 1;
    if (rm__policy_is_null(n))
        return 1;
    if (!rm__policy_want_type(ld, n, YAML_MAPPING_NODE, path) || !rm__policy_check_keys(ld, n, path, NULL, NULL))
        return 0;
    size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (cnt == 0)
        return 1;
    if ((*out = calloc(cnt, sizeof(rm_label_t))) == NULL) {
        ld->oom = 1;
        return 0;
    }
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_pair_t *p = n->data.mapping.pairs.start + i;
        yaml_node_t *k = rm__policy_node(ld, p->key), *v = rm__policy_node(ld, p->value);
        if (k->type != YAML_SCALAR_NODE)
            return 0;
        rm__policy_child_path(cp, path, (const char *)k->data.scalar.value);
        char *vs = rm__policy_scalar(ld, v, cp);
        if (vs == NULL) {
            ok = 0;
            continue;
        }
        (*out)[*num].key = strdup((const char *)k->data.scalar.value);
        (*out)[*num].value = vs;
        if ((*out)[*num].key == NULL)
            ld->oom = 1;
        (*num)++;
    }
    return ok;
}

static int read_selector(loader_t *ld, const yaml_node_t *spec, int *has, rm_label_t **labels, size_t *num)
{
    static const char *const keys[] = {"matchLabels", NULL};
    yaml_node_t *sel = rm__policy_map_get(ld, spec, "selector");
    if (sel == NULL || rm__policy_is_null(sel))
        return 1;
    *has = 1;
    if (!rm__policy_want_type(ld, sel, YAML_MAPPING_NODE, "spec.selector"))
        return 0;
    int ok = rm__policy_check_keys(ld, sel, "spec.selector", keys, NULL);
    yaml_node_t *ml = rm__policy_map_get(ld, sel, "matchLabels");
    if (ml != NULL && !read_labels(ld, ml, "spec.selector.matchLabels", labels, num))
        ok = 0;
    return ok;
}

static int read_bool_annotation(loader_t *ld, const yaml_node_t *ann, const char *key, uint8_t *out)
{
    char cp[POLICY_PATH_MAX], q[64];
    yaml_node_t *v = rm__policy_map_get(ld, ann, key);
    if (v == NULL)
        return 1;
    rm__policy_child_path(cp, "metadata.annotations", key);
    if (v->type != YAML_SCALAR_NODE || (strcmp((const char *)v->data.scalar.value, "true") != 0 &&
                                        strcmp((const char *)v->data.scalar.value, "false") != 0)) {
        rm__policy_report(ld, 0, v, cp, "want \"true\" or \"false\", got %s",
                          v->type == YAML_SCALAR_NODE
                              ? rm__policy_quoted(q, sizeof(q), (const char *)v->data.scalar.value)
                              : rm__policy_type_word(v));
        return 0;
    }
    *out = strcmp((const char *)v->data.scalar.value, "true") == 0;
    return 1;
}

/* metadata: name (required), namespace (default "default"), annotations; other keys (labels, uid, ...) are
 * Kubernetes' and ignored. */
static int read_metadata(loader_t *ld, const yaml_node_t *root, char **ns, char **name, uint8_t *dry_run,
                         uint8_t *log_allowed)
{
    char q[160];
    int ok = 1;
    yaml_node_t *md = rm__policy_map_get(ld, root, "metadata");
    if (md == NULL) {
        rm__policy_report(ld, 0, root, "metadata", "metadata.name is required");
        return 0;
    }
    if (!rm__policy_want_type(ld, md, YAML_MAPPING_NODE, "metadata") ||
        !rm__policy_check_keys(ld, md, "metadata", NULL, NULL))
        return 0;
    yaml_node_t *n = rm__policy_map_get(ld, md, "name");
    if (n == NULL) {
        rm__policy_report(ld, 0, md, "metadata", "metadata.name is required");
        ok = 0;
    } else if ((*name = rm__policy_scalar(ld, n, "metadata.name")) != NULL && !rm_config_dns_subdomain_ok(*name)) {
        rm__policy_report(ld, 0, n, "metadata.name",
                          "%s is not a DNS subdomain name (lower-case letters, digits, '-', '.')",
                          rm__policy_quoted(q, sizeof(q), *name));
        ok = 0;
    } else if (*name == NULL) {
        ok = 0;
    }
    n = rm__policy_map_get(ld, md, "namespace");
    if (n == NULL) {
        *ns = strdup("default");
    } else if ((*ns = rm__policy_scalar(ld, n, "metadata.namespace")) != NULL &&
               !rm_config_dns_label_ok(*ns, strlen(*ns))) {
        rm__policy_report(ld, 0, n, "metadata.namespace", "%s is not a namespace name (DNS label)",
                          rm__policy_quoted(q, sizeof(q), *ns));
        ok = 0;
    } else if (*ns == NULL) {
        ok = 0;
    }
    yaml_node_t *ann = rm__policy_map_get(ld, md, "annotations");
    if (ann != NULL && !rm__policy_is_null(ann)) {
        if (!rm__policy_want_type(ld, ann, YAML_MAPPING_NODE, "metadata.annotations"))
            return 0;
        if (dry_run != NULL && (!read_bool_annotation(ld, ann, "ringmesh.io/dry-run", dry_run) ||
                                !read_bool_annotation(ld, ann, "istio.io/dry-run", dry_run)))
            ok = 0;
        if (log_allowed != NULL && !read_bool_annotation(ld, ann, "ringmesh.io/log-allowed", log_allowed))
            ok = 0;
    }
    return ok;
}

int rm__policy_read_metadata(loader_t *ld, const yaml_node_t *root, char **ns, char **name, uint8_t *dry_run,
                             uint8_t *log_allowed)
{
    return read_metadata(ld, root, ns, name, dry_run, log_allowed);
}

int rm__policy_read_selector(loader_t *ld, const yaml_node_t *spec, int *has, rm_label_t **labels, size_t *num)
{
    return read_selector(ld, spec, has, labels, num);
}

static void rule_clear(rm_authz_rule_t *r)
{
    for (size_t i = 0; i < r->num_from; i++) {
        rm_authz_source_t *s = &r->from[i];
        rm__policy_strlist_clear(&s->principals), rm__policy_strlist_clear(&s->not_principals),
            rm__policy_strlist_clear(&s->namespaces);
        rm__policy_strlist_clear(&s->not_namespaces), rm__policy_strlist_clear(&s->ip_blocks),
            rm__policy_strlist_clear(&s->not_ip_blocks);
        rm__policy_source_fields_clear(s);
        rm__policy_strlist_clear(&s->request_principals), rm__policy_strlist_clear(&s->not_request_principals);
    }
    free(r->from);
    for (size_t i = 0; i < r->num_to; i++) {
        rm_authz_operation_t *o = &r->to[i];
        rm__policy_strlist_clear(&o->hosts), rm__policy_strlist_clear(&o->not_hosts),
            rm__policy_strlist_clear(&o->ports);
        rm__policy_strlist_clear(&o->not_ports), rm__policy_strlist_clear(&o->methods),
            rm__policy_strlist_clear(&o->not_methods);
        rm__policy_strlist_clear(&o->paths), rm__policy_strlist_clear(&o->not_paths);
    }
    free(r->to);
    for (size_t i = 0; i < r->num_when; i++) {
        free(r->when[i].key);
        rm__policy_strlist_clear(&r->when[i].values);
        rm__policy_strlist_clear(&r->when[i].not_values);
    }
    free(r->when);
    memset(r, 0, sizeof(*r));
}

static void labels_free(rm_label_t *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(l[i].key);
        free(l[i].value);
    }
    free(l);
}

void rm__authz_policy_clear(rm_authz_policy_t *p)
{
    free(p->namespace_);
    free(p->name);
    labels_free(p->match_labels, p->num_match_labels);
    for (size_t i = 0; i < p->num_rules; i++)
        rule_clear(&p->rules[i]);
    free(p->rules);
    free(p->file);
    memset(p, 0, sizeof(*p));
}

void rm__peer_authn_clear(rm_peer_authn_t *p)
{
    free(p->namespace_);
    free(p->name);
    labels_free(p->match_labels, p->num_match_labels);
    free(p->port_modes);
    free(p->file);
    memset(p, 0, sizeof(*p));
}

void rm_policy_set_clear(rm_policy_set_t *set)
{
    for (size_t i = 0; i < set->num_policies; i++)
        rm__authz_policy_clear(&set->policies[i]);
    free(set->policies);
    for (size_t i = 0; i < set->num_peer_authns; i++)
        rm__peer_authn_clear(&set->peer_authns[i]);
    free(set->peer_authns);
    for (size_t i = 0; i < set->num_request_authns; i++)
        rm__request_authn_clear(&set->request_authns[i]);
    free(set->request_authns);
    memset(set, 0, sizeof(*set));
}

static int read_authz(loader_t *ld, const yaml_node_t *root, rm_authz_policy_t *p)
{
    static const char *const spec_keys[] = {"selector", "action", "rules", "targetRef", "targetRefs", "provider", NULL};
    char cp[POLICY_PATH_MAX], q[160];
    int ok = read_metadata(ld, root, &p->namespace_, &p->name, &p->dry_run, &p->log_allowed);
    yaml_node_t *spec = rm__policy_map_get(ld, root, "spec");
    if (spec == NULL || rm__policy_is_null(spec))
        return ok; /* no spec: ALLOW with no rules, Istio's "allow nothing" */
    if (!rm__policy_want_type(ld, spec, YAML_MAPPING_NODE, "spec"))
        return 0;
    if (!rm__policy_check_keys(ld, spec, "spec", spec_keys, NULL))
        ok = 0;
    yaml_node_t *v;
    if (!rm__policy_spec_unsupported(ld, spec))
        ok = 0;
    if (!read_selector(ld, spec, &p->has_selector, &p->match_labels, &p->num_match_labels))
        ok = 0;
    p->action = RM_AUTHZ_ALLOW;
    if ((v = rm__policy_map_get(ld, spec, "action")) != NULL && !rm__policy_is_null(v)) {
        char *a = rm__policy_scalar(ld, v, "spec.action");
        if (a == NULL) {
            ok = 0;
        } else if (strcmp(a, "ALLOW") == 0) {
            p->action = RM_AUTHZ_ALLOW;
        } else if (strcmp(a, "DENY") == 0) {
            p->action = RM_AUTHZ_DENY;
        } else if (strcmp(a, "AUDIT") == 0) {
            p->action = RM_AUTHZ_AUDIT;
        } else if (strcmp(a, "CUSTOM") == 0) {
            rm__policy_report(ld, 0, v, "spec.action",
                              "the CUSTOM action is not supported: ringmesh has no external authorization "
                              "(ext_authz) provider; decide in the app or with ALLOW/DENY rules");
            ok = 0;
        } else {
            rm__policy_report(ld, 0, v, "spec.action", "%s is not an action (ALLOW, DENY or AUDIT)",
                              rm__policy_quoted(q, sizeof(q), a));
            ok = 0;
        }
        free(a);
    }
    if ((v = rm__policy_map_get(ld, spec, "rules")) != NULL && !rm__policy_is_null(v)) {
        if (!rm__policy_want_type(ld, v, YAML_SEQUENCE_NODE, "spec.rules"))
            return 0;
        size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (cnt > 0) {
            if ((p->rules = calloc(cnt, sizeof(*p->rules))) == NULL) {
                ld->oom = 1;
                return 0;
            }
            p->num_rules = cnt;
            for (size_t i = 0; i < cnt; i++) {
                rm__policy_index_path(cp, "spec.rules", i);
                if (!read_rule(ld, rm__policy_node(ld, v->data.sequence.items.start[i]), cp, &p->rules[i]))
                    ok = 0;
            }
        }
    }
    return ok;
}

static int read_mtls_mode(loader_t *ld, const yaml_node_t *mtls, const char *path, rm_peer_mtls_mode_t *out)
{
    static const char *const keys[] = {"mode", NULL};
    char cp[POLICY_PATH_MAX], q[160];
    *out = RM_PEER_MTLS_UNSET;
    if (rm__policy_is_null(mtls))
        return 1;
    if (!rm__policy_want_type(ld, mtls, YAML_MAPPING_NODE, path) || !rm__policy_check_keys(ld, mtls, path, keys, NULL))
        return 0;
    yaml_node_t *m = rm__policy_map_get(ld, mtls, "mode");
    if (m == NULL)
        return 1;
    rm__policy_child_path(cp, path, "mode");
    char *s = rm__policy_scalar(ld, m, cp);
    if (s == NULL)
        return 0;
    int ok = 1;
    if (strcmp(s, "STRICT") == 0)
        *out = RM_PEER_MTLS_STRICT;
    else if (strcmp(s, "PERMISSIVE") == 0)
        *out = RM_PEER_MTLS_PERMISSIVE;
    else if (strcmp(s, "DISABLE") == 0)
        *out = RM_PEER_MTLS_DISABLE;
    else if (strcmp(s, "UNSET") == 0)
        *out = RM_PEER_MTLS_UNSET;
    else {
        rm__policy_report(ld, 0, m, cp, "%s is not a mode (STRICT, PERMISSIVE, DISABLE or UNSET)",
                          rm__policy_quoted(q, sizeof(q), s));
        ok = 0;
    }
    free(s);
    return ok;
}

static int read_peer_authn(loader_t *ld, const yaml_node_t *root, rm_peer_authn_t *p)
{
    static const char *const spec_keys[] = {"selector", "mtls", "portLevelMtls", NULL};
    char cp[POLICY_PATH_MAX], q[160];
    int ok = read_metadata(ld, root, &p->namespace_, &p->name, NULL, NULL);
    yaml_node_t *spec = rm__policy_map_get(ld, root, "spec");
    if (spec == NULL || rm__policy_is_null(spec))
        return ok;
    if (!rm__policy_want_type(ld, spec, YAML_MAPPING_NODE, "spec"))
        return 0;
    if (!rm__policy_check_keys(ld, spec, "spec", spec_keys, NULL))
        ok = 0;
    if (!read_selector(ld, spec, &p->has_selector, &p->match_labels, &p->num_match_labels))
        ok = 0;
    yaml_node_t *v;
    if ((v = rm__policy_map_get(ld, spec, "mtls")) != NULL && !read_mtls_mode(ld, v, "spec.mtls", &p->mode))
        ok = 0;
    if ((v = rm__policy_map_get(ld, spec, "portLevelMtls")) != NULL && !rm__policy_is_null(v)) {
        if (!rm__policy_want_type(ld, v, YAML_MAPPING_NODE, "spec.portLevelMtls") ||
            !rm__policy_check_keys(ld, v, "spec.portLevelMtls", NULL, NULL))
            return 0;
        if (!p->has_selector || p->num_match_labels == 0) {
            rm__policy_report(ld, 0, v, "spec.portLevelMtls", "portLevelMtls needs a workload selector with labels");
            ok = 0;
        }
        size_t cnt = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
        if (cnt > 0 && (p->port_modes = calloc(cnt, sizeof(*p->port_modes))) == NULL) {
            ld->oom = 1;
            return 0;
        }
        for (size_t i = 0; i < cnt; i++) {
            yaml_node_pair_t *pr = v->data.mapping.pairs.start + i;
            yaml_node_t *k = rm__policy_node(ld, pr->key);
            if (k->type != YAML_SCALAR_NODE)
                continue;
            const char *ks = (const char *)k->data.scalar.value;
            rm__policy_child_path(cp, "spec.portLevelMtls", ks);
            uint16_t port;
            if (rm_config_parse_port(ks, &port) != 0) {
                rm__policy_report(ld, 0, k, cp, "%s is not a port number (1-65535)",
                                  rm__policy_quoted(q, sizeof(q), ks));
                ok = 0;
                continue;
            }
            rm_peer_mtls_mode_t mode;
            if (!read_mtls_mode(ld, rm__policy_node(ld, pr->value), cp, &mode)) {
                ok = 0;
                continue;
            }
            p->port_modes[p->num_port_modes].port = port;
            p->port_modes[p->num_port_modes].mode = mode;
            p->num_port_modes++;
        }
    }
    return ok;
}

static int api_version_ok(const char *v)
{
    return strcmp(v, "ringmesh.io/v1alpha1") == 0 || strcmp(v, "security.istio.io/v1") == 0 ||
           strcmp(v, "security.istio.io/v1beta1") == 0;
}

/* Walks a document's nodes once to bound its size and refuse aliases (a node reachable twice). */
static int check_shape(loader_t *ld)
{
    size_t num = (size_t)(ld->doc->nodes.top - ld->doc->nodes.start);
    if (num > POLICY_NODES_MAX) {
        rm__policy_report(ld, 0, yaml_document_get_root_node(ld->doc), "", "document has more than %u nodes",
                          POLICY_NODES_MAX);
        return 0;
    }
    uint8_t *seen = calloc(num + 1, 1);
    if (seen == NULL) {
        ld->oom = 1;
        return 0;
    }
    int ok = 1;
    seen[1] = 1; /* the root */
    for (size_t i = 0; i < num && ok; i++) {
        yaml_node_t *n = ld->doc->nodes.start + i;
        if (n->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top && ok; it++)
                if (seen[*it]++)
                    ok = 0;
        } else if (n->type == YAML_MAPPING_NODE) {
            for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top && ok; p++)
                if (seen[p->key]++ || seen[p->value]++)
                    ok = 0;
        }
    }
    free(seen);
    if (!ok)
        rm__policy_report(ld, 0, yaml_document_get_root_node(ld->doc), "",
                          "aliases (*name) are not allowed in policies");
    return ok;
}

/* Makes room for one more element of `size` bytes after the n in *arr and returns it, zeroed; NULL (oom set) when
 * out of memory, *arr unchanged. */
static void *grow_slot(loader_t *ld, void **arr, size_t n, size_t size)
{
    uint8_t *np = realloc(*arr, (n + 1) * size);
    if (np == NULL) {
        ld->oom = 1;
        return NULL;
    }
    *arr = np;
    memset(np + n * size, 0, size);
    return np + n * size;
}

static int load_document(loader_t *ld, rm_policy_set_t *set, int strict_kinds)
{
    char q[160];
    yaml_node_t *root = yaml_document_get_root_node(ld->doc);
    if (root == NULL || rm__policy_is_null(root))
        return 0; /* empty document (a "---" followed by nothing or comments) */
    if (root->type != YAML_MAPPING_NODE) {
        rm__policy_report(ld, 0, root, "", "a document must be a mapping (apiVersion, kind, metadata, spec), not %s",
                          rm__policy_type_word(root));
        return 0;
    }
    yaml_node_t *kind = rm__policy_map_get(ld, root, "kind"), *api = rm__policy_map_get(ld, root, "apiVersion");
    const char *ks = kind != NULL && kind->type == YAML_SCALAR_NODE ? (const char *)kind->data.scalar.value : NULL;
    int is_authz = ks != NULL && strcmp(ks, "AuthorizationPolicy") == 0;
    int is_peer = ks != NULL && strcmp(ks, "PeerAuthentication") == 0;
    int is_reqauthn = ks != NULL && strcmp(ks, "RequestAuthentication") == 0;
    if (!is_authz && !is_peer && !is_reqauthn) {
        if (strict_kinds)
            rm__policy_report(ld, 0, kind != NULL ? kind : root, "kind",
                              "%s is not a policy kind (AuthorizationPolicy, "
                              "PeerAuthentication, RequestAuthentication)",
                              ks != NULL ? rm__policy_quoted(q, sizeof(q), ks) : "missing kind");
        return 0;
    }
    if (!check_shape(ld)) /* policies only: documents of other kinds may use aliases */
        return 0;
    static const char *const root_keys[] = {"apiVersion", "kind", "metadata", "spec", "status", NULL};
    int ok = rm__policy_check_keys(ld, root, "", root_keys, NULL);
    if (api == NULL || api->type != YAML_SCALAR_NODE || !api_version_ok((const char *)api->data.scalar.value)) {
        rm__policy_report(ld, 0, api != NULL ? api : root, "apiVersion",
                          "%s: want ringmesh.io/v1alpha1, security.istio.io/v1 or security.istio.io/v1beta1",
                          api != NULL && api->type == YAML_SCALAR_NODE
                              ? rm__policy_quoted(q, sizeof(q), (const char *)api->data.scalar.value)
                              : "missing apiVersion");
        ok = 0;
    }
    /* the document is read straight into a new last slot, which counts only once the document is valid */
    unsigned line = (unsigned)root->start_mark.line + 1;
    if (is_authz) {
        rm_authz_policy_t *p = grow_slot(ld, (void **)&set->policies, set->num_policies, sizeof(*p));
        if (p == NULL)
            return 0;
        if (!read_authz(ld, root, p) || !ok || ld->oom) {
            rm__authz_policy_clear(p);
            return 0;
        }
        p->file = rm__policy_dup_str(ld->file);
        p->line = line;
        set->num_policies++;
    } else if (is_reqauthn) {
        rm_request_authn_t *p = grow_slot(ld, (void **)&set->request_authns, set->num_request_authns, sizeof(*p));
        if (p == NULL)
            return 0;
        if (!rm__read_request_authn(ld, root, p) || !ok || ld->oom) {
            rm__request_authn_clear(p);
            return 0;
        }
        p->file = rm__policy_dup_str(ld->file);
        p->line = line;
        set->num_request_authns++;
    } else {
        rm_peer_authn_t *p = grow_slot(ld, (void **)&set->peer_authns, set->num_peer_authns, sizeof(*p));
        if (p == NULL)
            return 0;
        if (!read_peer_authn(ld, root, p) || !ok || ld->oom) {
            rm__peer_authn_clear(p);
            return 0;
        }
        p->file = rm__policy_dup_str(ld->file);
        p->line = line;
        set->num_peer_authns++;
    }
    return 1;
}

static int cmp_diag(const void *a, const void *b)
{
    const rm_policy_diag_t *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->column != y->column)
        return x->column < y->column ? -1 : 1;
    return 0;
}

int rm_policy_load_yaml(rm_policy_set_t *set, const char *text, size_t len, const char *file, int strict_kinds,
                        rm_policy_diags_t *diags)
{
    yaml_parser_t parser;
    loader_t ld = {.diags = diags, .file = file};
    unsigned docs = 0;
    size_t first_diag = diags->n;

    if (len > POLICY_FILE_MAX) {
        rm__policy_report(&ld, 0, NULL, "", "file larger than %u bytes", POLICY_FILE_MAX);
        return (int)ld.errors;
    }
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc)) {
            char msg[512];
            rm_yaml_pos_t at = rm_yaml_syntax_error(&parser, text, len, msg, sizeof(msg));
            if (rm__policy_diag_add(diags, 0, file, at.line, at.col, "", msg) != 0)
                ld.oom = 1;
            ld.errors++;
            break;
        }
        if (yaml_document_get_root_node(&doc) == NULL) {
            yaml_document_delete(&doc);
            break; /* end of stream */
        }
        ld.doc = &doc;
        load_document(&ld, set, strict_kinds);
        yaml_document_delete(&doc);
        if (++docs > 10000 || ld.oom)
            break;
    }
    yaml_parser_delete(&parser);
    /* findings in the order of the text, whatever order the fields were checked in */
    if (diags->n > first_diag)
        qsort(diags->d + first_diag, diags->n - first_diag, sizeof(*diags->d), cmp_diag);
    return ld.oom ? -ENOMEM : (int)ld.errors;
}

int rm_policy_file_name(const char *n)
{
    size_t l = strlen(n);
    if (n[0] == '.')
        return 0;
    return (l > 5 && strcmp(n + l - 5, ".yaml") == 0) || (l > 4 && strcmp(n + l - 4, ".yml") == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_file(rm_policy_set_t *set, const char *path, int strict_kinds, rm_policy_diags_t *diags)
{
    char *data = NULL;
    size_t len = 0;
    int ret = rm_file_read(path, POLICY_FILE_MAX, &data, &len);
    if (ret != 0) {
        char msg[256];
        snprintf(msg, sizeof(msg), "cannot read: %s", ret == -EFBIG ? "file too large" : strerror(-ret));
        if (rm__policy_diag_add(diags, 0, path, 0, 0, "", msg) != 0)
            return -ENOMEM;
        return ret;
    }
    ret = rm_policy_load_yaml(set, data, len, path, strict_kinds, diags);
    free(data);
    return ret;
}

int rm_policy_load_path(rm_policy_set_t *set, const char *path, int strict_kinds, rm_policy_diags_t *diags)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        int err = -errno;
        char msg[256];
        snprintf(msg, sizeof(msg), "cannot read: %s", strerror(errno));
        rm__policy_diag_add(diags, 0, path, 0, 0, "", msg);
        return err;
    }
    if (!S_ISDIR(st.st_mode))
        return load_file(set, path, strict_kinds, diags);

    DIR *d = opendir(path);
    if (d == NULL)
        return -errno;
    char **names = NULL;
    size_t n = 0;
    int ret = 0, errors = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!rm_policy_file_name(de->d_name))
            continue;
        char **nn = realloc(names, (n + 1) * sizeof(*nn));
        if (nn == NULL || (nn[n] = strdup(de->d_name)) == NULL) {
            names = nn != NULL ? nn : names;
            ret = -ENOMEM;
            break;
        }
        names = nn;
        n++;
    }
    closedir(d);
    if (ret == 0) {
        if (n > 1) /* qsort's base must not be NULL, even for no elements */
            qsort(names, n, sizeof(*names), cmp_str);
        for (size_t i = 0; i < n; i++) {
            char full[4096];
            snprintf(full, sizeof(full), "%s/%s", path, names[i]);
            struct stat fst;
            if (stat(full, &fst) != 0 || !S_ISREG(fst.st_mode))
                continue;
            int r = load_file(set, full, strict_kinds, diags);
            if (r < 0) {
                ret = r;
                if (r == -ENOMEM)
                    break;
            } else {
                errors += r;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return ret < 0 ? ret : errors;
}
