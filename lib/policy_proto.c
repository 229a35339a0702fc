/* The policy model <-> ringmesh.v1.WorkloadPolicy. Encoding points the protobuf-c structs at the model's strings
 * (nothing copied); decoding copies into a set the caller owns, so the unpacked message can be freed at once. */
#include "ringmesh/error.h"
#include "ringmesh/policy.h"
#include "ringmesh/svid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringmesh/v1/discovery.pb-c.h"

_Static_assert((int)RINGMESH__V1__PATH_NORMALIZATION__PATH_NORMALIZATION_BASE == (int)RM_PATH_NORMALIZATION_BASE &&
                   (int)RINGMESH__V1__PATH_NORMALIZATION__PATH_NORMALIZATION_NONE == (int)RM_PATH_NORMALIZATION_NONE &&
                   (int)RINGMESH__V1__PATH_NORMALIZATION__PATH_NORMALIZATION_MERGE_SLASHES ==
                       (int)RM_PATH_NORMALIZATION_MERGE_SLASHES &&
                   (int)RINGMESH__V1__PATH_NORMALIZATION__PATH_NORMALIZATION_DECODE_AND_MERGE_SLASHES ==
                       (int)RM_PATH_NORMALIZATION_DECODE_AND_MERGE_SLASHES,
               "the wire values of PathNormalization are rm_path_normalization_t's");

void rm__authz_policy_clear(rm_authz_policy_t *p);

/* RequestAuthentication on the wire (policy_proto_authn.c) */
int rm__request_authns_encode(const rm_request_authn_t *const *ras, size_t num,
                              Ringmesh__V1__RequestAuthentication ***out, size_t *n_out);
void rm__request_authns_encoded_free(Ringmesh__V1__RequestAuthentication **m, size_t n);
int rm__request_authns_decode(Ringmesh__V1__RequestAuthentication *const *m, size_t n, rm_policy_set_t *set, char *err,
                              size_t errlen);

/* ------------------------------------------------------------------ encode */

/* Every allocation of one encoding, freed together. */
typedef struct st_arena_t {
    void **ptrs;
    size_t n, cap;
    int failed;
} arena_t;

static void *arena_calloc(arena_t *a, size_t num, size_t size)
{
    if (a->failed)
        return NULL;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        void **np = realloc(a->ptrs, cap * sizeof(*np));
        if (np == NULL) {
            a->failed = 1;
            return NULL;
        }
        a->ptrs = np;
        a->cap = cap;
    }
    void *p = calloc(num ? num : 1, size);
    if (p == NULL) {
        a->failed = 1;
        return NULL;
    }
    a->ptrs[a->n++] = p;
    return p;
}

static void arena_free(arena_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->ptrs[i]);
    free(a->ptrs);
}

static Ringmesh__V1__AuthorizationPolicy *encode_policy(arena_t *a, const rm_authz_policy_t *p)
{
    Ringmesh__V1__AuthorizationPolicy *m = arena_calloc(a, 1, sizeof(*m));
    if (m == NULL)
        return NULL;
    ringmesh__v1__authorization_policy__init(m);
    m->namespace_ = p->namespace_;
    m->name = p->name;
    m->action = p->action == RM_AUTHZ_DENY    ? RINGMESH__V1__AUTHZ_ACTION__AUTHZ_DENY
                : p->action == RM_AUTHZ_AUDIT ? RINGMESH__V1__AUTHZ_ACTION__AUTHZ_AUDIT
                                              : RINGMESH__V1__AUTHZ_ACTION__AUTHZ_ALLOW;
    m->dry_run = p->dry_run;
    m->log_allowed = p->log_allowed;
    m->n_rules = p->num_rules;
    m->rules = arena_calloc(a, p->num_rules, sizeof(*m->rules));
    for (size_t r = 0; m->rules != NULL && r < p->num_rules; r++) {
        const rm_authz_rule_t *ru = &p->rules[r];
        Ringmesh__V1__AuthzRule *mr = arena_calloc(a, 1, sizeof(*mr));
        if (mr == NULL)
            return NULL;
        ringmesh__v1__authz_rule__init(mr);
        m->rules[r] = mr;
        mr->n_from = ru->num_from;
        mr->from = arena_calloc(a, ru->num_from, sizeof(*mr->from));
        for (size_t i = 0; mr->from != NULL && i < ru->num_from; i++) {
            const rm_authz_source_t *s = &ru->from[i];
            Ringmesh__V1__AuthzSource *ms = arena_calloc(a, 1, sizeof(*ms));
            if (ms == NULL)
                return NULL;
            ringmesh__v1__authz_source__init(ms);
            ms->n_principals = s->principals.n, ms->principals = s->principals.v;
            ms->n_not_principals = s->not_principals.n, ms->not_principals = s->not_principals.v;
            ms->n_namespaces = s->namespaces.n, ms->namespaces = s->namespaces.v;
            ms->n_not_namespaces = s->not_namespaces.n, ms->not_namespaces = s->not_namespaces.v;
            ms->n_ip_blocks = s->ip_blocks.n, ms->ip_blocks = s->ip_blocks.v;
            ms->n_not_ip_blocks = s->not_ip_blocks.n, ms->not_ip_blocks = s->not_ip_blocks.v;
            ms->n_service_accounts = s->service_accounts.n, ms->service_accounts = s->service_accounts.v;
            ms->n_not_service_accounts = s->not_service_accounts.n,
            ms->not_service_accounts = s->not_service_accounts.v;
            ms->n_remote_ip_blocks = s->remote_ip_blocks.n, ms->remote_ip_blocks = s->remote_ip_blocks.v;
            ms->n_not_remote_ip_blocks = s->not_remote_ip_blocks.n,
            ms->not_remote_ip_blocks = s->not_remote_ip_blocks.v;
            ms->n_trust_domains = s->trust_domains.n, ms->trust_domains = s->trust_domains.v;
            ms->n_not_trust_domains = s->not_trust_domains.n, ms->not_trust_domains = s->not_trust_domains.v;
            ms->n_request_principals = s->request_principals.n, ms->request_principals = s->request_principals.v;
            ms->n_not_request_principals = s->not_request_principals.n;
            ms->not_request_principals = s->not_request_principals.v;
            mr->from[i] = ms;
        }
        mr->n_to = ru->num_to;
        mr->to = arena_calloc(a, ru->num_to, sizeof(*mr->to));
        for (size_t i = 0; mr->to != NULL && i < ru->num_to; i++) {
            const rm_authz_operation_t *o = &ru->to[i];
            Ringmesh__V1__AuthzOperation *mo = arena_calloc(a, 1, sizeof(*mo));
            if (mo == NULL)
                return NULL;
            ringmesh__v1__authz_operation__init(mo);
            mo->n_hosts = o->hosts.n, mo->hosts = o->hosts.v;
            mo->n_not_hosts = o->not_hosts.n, mo->not_hosts = o->not_hosts.v;
            mo->n_ports = o->ports.n, mo->ports = o->ports.v;
            mo->n_not_ports = o->not_ports.n, mo->not_ports = o->not_ports.v;
            mo->n_methods = o->methods.n, mo->methods = o->methods.v;
            mo->n_not_methods = o->not_methods.n, mo->not_methods = o->not_methods.v;
            mo->n_paths = o->paths.n, mo->paths = o->paths.v;
            mo->n_not_paths = o->not_paths.n, mo->not_paths = o->not_paths.v;
            mr->to[i] = mo;
        }
        mr->n_when = ru->num_when;
        mr->when = arena_calloc(a, ru->num_when, sizeof(*mr->when));
        for (size_t i = 0; mr->when != NULL && i < ru->num_when; i++) {
            const rm_authz_condition_t *c = &ru->when[i];
            Ringmesh__V1__AuthzCondition *mc = arena_calloc(a, 1, sizeof(*mc));
            if (mc == NULL)
                return NULL;
            ringmesh__v1__authz_condition__init(mc);
            mc->key = c->key;
            mc->n_values = c->values.n, mc->values = c->values.v;
            mc->n_not_values = c->not_values.n, mc->not_values = c->not_values.v;
            mr->when[i] = mc;
        }
    }
    return a->failed ? NULL : m;
}

static Ringmesh__V1__MtlsMode mode_to_proto(rm_peer_mtls_mode_t m)
{
    return (Ringmesh__V1__MtlsMode)m; /* same numbers */
}

int rm_workload_policy_encode(const rm_authz_policy_t *const *policies, size_t num, const rm_workload_policy_t *wp,
                              uint8_t **out, size_t *out_len)
{
    Ringmesh__V1__WorkloadPolicy msg = RINGMESH__V1__WORKLOAD_POLICY__INIT;
    arena_t a = {0};
    int ret = -ENOMEM;

    msg.n_policies = num;
    if ((msg.policies = arena_calloc(&a, num, sizeof(*msg.policies))) == NULL)
        goto Exit;
    for (size_t i = 0; i < num; i++)
        if ((msg.policies[i] = encode_policy(&a, policies[i])) == NULL)
            goto Exit;
    msg.default_action = wp->opts.default_action == RM_AUTHZ_ALLOW ? RINGMESH__V1__DEFAULT_ACTION__DEFAULT_ALLOW
                                                                   : RINGMESH__V1__DEFAULT_ACTION__DEFAULT_DENY;
    msg.log_allowed = wp->opts.log_allowed;
    msg.log_allowed_sample = wp->opts.log_allowed_sample;
    msg.inbound_mode = mode_to_proto(wp->inbound_mode);
    msg.path_normalization = (Ringmesh__V1__PathNormalization)wp->path_normalization;
    msg.n_port_modes = wp->num_port_modes;
    if ((msg.port_modes = arena_calloc(&a, wp->num_port_modes, sizeof(*msg.port_modes))) == NULL)
        goto Exit;
    for (size_t i = 0; i < wp->num_port_modes; i++) {
        Ringmesh__V1__PortMode *pm = arena_calloc(&a, 1, sizeof(*pm));
        if (pm == NULL)
            goto Exit;
        ringmesh__v1__port_mode__init(pm);
        pm->port = wp->port_modes[i].port;
        pm->mode = mode_to_proto(wp->port_modes[i].mode);
        msg.port_modes[i] = pm;
    }
    msg.trust_domain = (char *)(wp->opts.trust_domain != NULL ? wp->opts.trust_domain : "");
    msg.n_trust_domain_aliases = wp->opts.num_trust_domain_aliases;
    msg.trust_domain_aliases = (char **)wp->opts.trust_domain_aliases;
    msg.num_trusted_proxies = wp->opts.num_trusted_proxies;
    msg.log_attributes = wp->log_attributes;
    msg.workload_namespace = wp->workload_namespace != NULL ? wp->workload_namespace : "";
    msg.n_workload_labels = wp->num_workload_labels;
    msg.workload_labels = wp->workload_labels;
    if (rm__request_authns_encode(wp->request_authns, wp->num_request_authns, &msg.request_authentications,
                                  &msg.n_request_authentications) != 0)
        goto Exit;
    *out_len = ringmesh__v1__workload_policy__get_packed_size(&msg);
    if ((*out = malloc(*out_len ? *out_len : 1)) == NULL)
        goto Exit;
    ringmesh__v1__workload_policy__pack(&msg, *out);
    ret = 0;
Exit:
    rm__request_authns_encoded_free(msg.request_authentications, msg.n_request_authentications);
    arena_free(&a);
    return ret;
}

/* ------------------------------------------------------------------ decode */

int rm__policy_copy_list(rm_strlist_t *dst, char **src, size_t n)
{
    if (n == 0)
        return 0;
    if ((dst->v = calloc(n, sizeof(char *))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if ((dst->v[i] = strdup(src[i] != NULL ? src[i] : "")) == NULL)
            return -ENOMEM;
        dst->n++;
    }
    return 0;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s != NULL ? s : "");
}

static int decode_policy(const Ringmesh__V1__AuthorizationPolicy *m, rm_authz_policy_t *p)
{
    if ((p->namespace_ = dup_or_empty(m->namespace_)) == NULL || (p->name = dup_or_empty(m->name)) == NULL)
        return -ENOMEM;
    switch (m->action) {
    case RINGMESH__V1__AUTHZ_ACTION__AUTHZ_ALLOW:
        p->action = RM_AUTHZ_ALLOW;
        break;
    case RINGMESH__V1__AUTHZ_ACTION__AUTHZ_DENY:
        p->action = RM_AUTHZ_DENY;
        break;
    case RINGMESH__V1__AUTHZ_ACTION__AUTHZ_AUDIT:
        p->action = RM_AUTHZ_AUDIT;
        break;
    default:
        return RM_ERR_POLICY_INVALID;
    }
    p->dry_run = m->dry_run;
    p->log_allowed = m->log_allowed;
    if (m->n_rules > 0 && (p->rules = calloc(m->n_rules, sizeof(*p->rules))) == NULL)
        return -ENOMEM;
    for (size_t r = 0; r < m->n_rules; r++) {
        const Ringmesh__V1__AuthzRule *mr = m->rules[r];
        rm_authz_rule_t *ru = &p->rules[r];
        p->num_rules++;
        if (mr->n_from > 0 && (ru->from = calloc(mr->n_from, sizeof(*ru->from))) == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < mr->n_from; i++) {
            const Ringmesh__V1__AuthzSource *ms = mr->from[i];
            rm_authz_source_t *s = &ru->from[i];
            ru->num_from++;
            if (rm__policy_copy_list(&s->principals, ms->principals, ms->n_principals) != 0 ||
                rm__policy_copy_list(&s->not_principals, ms->not_principals, ms->n_not_principals) != 0 ||
                rm__policy_copy_list(&s->namespaces, ms->namespaces, ms->n_namespaces) != 0 ||
                rm__policy_copy_list(&s->not_namespaces, ms->not_namespaces, ms->n_not_namespaces) != 0 ||
                rm__policy_copy_list(&s->ip_blocks, ms->ip_blocks, ms->n_ip_blocks) != 0 ||
                rm__policy_copy_list(&s->not_ip_blocks, ms->not_ip_blocks, ms->n_not_ip_blocks) != 0 ||
                rm__policy_copy_list(&s->service_accounts, ms->service_accounts, ms->n_service_accounts) != 0 ||
                rm__policy_copy_list(&s->not_service_accounts, ms->not_service_accounts, ms->n_not_service_accounts) !=
                    0 ||
                rm__policy_copy_list(&s->remote_ip_blocks, ms->remote_ip_blocks, ms->n_remote_ip_blocks) != 0 ||
                rm__policy_copy_list(&s->not_remote_ip_blocks, ms->not_remote_ip_blocks, ms->n_not_remote_ip_blocks) !=
                    0 ||
                rm__policy_copy_list(&s->trust_domains, ms->trust_domains, ms->n_trust_domains) != 0 ||
                rm__policy_copy_list(&s->not_trust_domains, ms->not_trust_domains, ms->n_not_trust_domains) != 0 ||
                rm__policy_copy_list(&s->request_principals, ms->request_principals, ms->n_request_principals) != 0 ||
                rm__policy_copy_list(&s->not_request_principals, ms->not_request_principals,
                                     ms->n_not_request_principals) != 0)
                return -ENOMEM;
        }
        if (mr->n_to > 0 && (ru->to = calloc(mr->n_to, sizeof(*ru->to))) == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < mr->n_to; i++) {
            const Ringmesh__V1__AuthzOperation *mo = mr->to[i];
            rm_authz_operation_t *o = &ru->to[i];
            ru->num_to++;
            if (rm__policy_copy_list(&o->hosts, mo->hosts, mo->n_hosts) != 0 ||
                rm__policy_copy_list(&o->not_hosts, mo->not_hosts, mo->n_not_hosts) != 0 ||
                rm__policy_copy_list(&o->ports, mo->ports, mo->n_ports) != 0 ||
                rm__policy_copy_list(&o->not_ports, mo->not_ports, mo->n_not_ports) != 0 ||
                rm__policy_copy_list(&o->methods, mo->methods, mo->n_methods) != 0 ||
                rm__policy_copy_list(&o->not_methods, mo->not_methods, mo->n_not_methods) != 0 ||
                rm__policy_copy_list(&o->paths, mo->paths, mo->n_paths) != 0 ||
                rm__policy_copy_list(&o->not_paths, mo->not_paths, mo->n_not_paths) != 0)
                return -ENOMEM;
        }
        if (mr->n_when > 0 && (ru->when = calloc(mr->n_when, sizeof(*ru->when))) == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < mr->n_when; i++) {
            const Ringmesh__V1__AuthzCondition *mc = mr->when[i];
            rm_authz_condition_t *c = &ru->when[i];
            ru->num_when++;
            if ((c->key = dup_or_empty(mc->key)) == NULL ||
                rm__policy_copy_list(&c->values, mc->values, mc->n_values) != 0 ||
                rm__policy_copy_list(&c->not_values, mc->not_values, mc->n_not_values) != 0)
                return -ENOMEM;
        }
    }
    return 0;
}

static int mode_from_proto(Ringmesh__V1__MtlsMode m, rm_peer_mtls_mode_t *out)
{
    if ((int)m < 0 || (int)m > 3)
        return -1;
    *out = (rm_peer_mtls_mode_t)m;
    return 0;
}

/* The trust domain and its aliases, checked and copied into one block wp owns. */
static int decode_trust_domains(const Ringmesh__V1__WorkloadPolicy *msg, rm_workload_policy_t *wp, char *err,
                                size_t errlen)
{
    size_t size = (msg->n_trust_domain_aliases + 1) * sizeof(char *), o;
    int rc;
    if (msg->trust_domain == NULL || msg->trust_domain[0] == '\0') {
        if (msg->n_trust_domain_aliases > 0) {
            snprintf(err, errlen, "WorkloadPolicy: trust_domain_aliases without a trust_domain");
            return RM_ERR_POLICY_INVALID;
        }
        return 0;
    }
    for (size_t i = 0; i <= msg->n_trust_domain_aliases; i++) {
        const char *td = i == 0 ? msg->trust_domain : msg->trust_domain_aliases[i - 1];
        if ((rc = rm_trust_domain_check(td, strlen(td))) != 0) {
            snprintf(err, errlen, "WorkloadPolicy: %s \"%.256s\" is not a SPIFFE trust domain: %s",
                     i == 0 ? "trust_domain" : "trust_domain_aliases entry", td, rm_strerror(rc));
            return RM_ERR_POLICY_INVALID;
        }
        size += strlen(td) + 1;
    }
    char *store = malloc(size), **aliases = (char **)store;
    if (store == NULL)
        return -ENOMEM;
    o = (msg->n_trust_domain_aliases + 1) * sizeof(char *);
    for (size_t i = 0; i <= msg->n_trust_domain_aliases; i++) {
        const char *td = i == 0 ? msg->trust_domain : msg->trust_domain_aliases[i - 1];
        size_t len = strlen(td) + 1;
        memcpy(store + o, td, len);
        if (i == 0)
            wp->opts.trust_domain = store + o;
        else
            aliases[i - 1] = store + o;
        o += len;
    }
    wp->trust_domain_store = store;
    wp->opts.trust_domain_aliases = aliases;
    wp->opts.num_trust_domain_aliases = msg->n_trust_domain_aliases;
    return 0;
}

void rm_workload_policy_clear(rm_workload_policy_t *wp)
{
    free(wp->trust_domain_store);
    free(wp->port_modes);
    free(wp->workload_namespace);
    for (size_t i = 0; i < wp->num_workload_labels; i++)
        free(wp->workload_labels[i]);
    free(wp->workload_labels);
    memset(wp, 0, sizeof(*wp));
}

int rm_workload_policy_decode(const uint8_t *data, size_t len, rm_policy_set_t *set, rm_workload_policy_t *wp,
                              char *err, size_t errlen)
{
    Ringmesh__V1__WorkloadPolicy *msg = ringmesh__v1__workload_policy__unpack(NULL, len, data);
    int ret = 0;

    memset(wp, 0, sizeof(*wp));
    if (msg == NULL) {
        snprintf(err, errlen, "WorkloadPolicy: not a valid message");
        return RM_ERR_POLICY_INVALID;
    }
    if (msg->n_policies > 0 && (set->policies = calloc(msg->n_policies, sizeof(*set->policies))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    for (size_t i = 0; i < msg->n_policies; i++) {
        set->num_policies++;
        if ((ret = decode_policy(msg->policies[i], &set->policies[i])) != 0) {
            if (ret == RM_ERR_POLICY_INVALID)
                snprintf(err, errlen, "WorkloadPolicy: policy %zu has an unknown action %d", i,
                         (int)msg->policies[i]->action);
            goto Exit;
        }
    }
    switch (msg->default_action) {
    case RINGMESH__V1__DEFAULT_ACTION__DEFAULT_DENY:
        wp->opts.default_action = RM_AUTHZ_DENY;
        break;
    case RINGMESH__V1__DEFAULT_ACTION__DEFAULT_ALLOW:
        wp->opts.default_action = RM_AUTHZ_ALLOW;
        break;
    default:
        snprintf(err, errlen, "WorkloadPolicy: unknown default action %d", (int)msg->default_action);
        ret = RM_ERR_POLICY_INVALID;
        goto Exit;
    }
    wp->opts.log_allowed = msg->log_allowed;
    wp->opts.log_allowed_sample = msg->log_allowed_sample;
    if (!(msg->log_allowed_sample >= 0 && msg->log_allowed_sample <= 1)) {
        snprintf(err, errlen, "WorkloadPolicy: log_allowed_sample %g is not in [0, 1]", msg->log_allowed_sample);
        ret = RM_ERR_POLICY_INVALID;
        goto Exit;
    }
    if (mode_from_proto(msg->inbound_mode, &wp->inbound_mode) != 0) {
        snprintf(err, errlen, "WorkloadPolicy: unknown inbound mode %d", (int)msg->inbound_mode);
        ret = RM_ERR_POLICY_INVALID;
        goto Exit;
    }
    switch (msg->path_normalization) {
    case RINGMESH__V1__PATH_NORMALIZATION__PATH_NORMALIZATION_BASE:
    case RINGMESH__V1__PATH_NORMALIZATION__PATH_NORMALIZATION_NONE:
    case RINGMESH__V1__PATH_NORMALIZATION__PATH_NORMALIZATION_MERGE_SLASHES:
    case RINGMESH__V1__PATH_NORMALIZATION__PATH_NORMALIZATION_DECODE_AND_MERGE_SLASHES:
        wp->path_normalization = (rm_path_normalization_t)msg->path_normalization;
        break;
    default:
        snprintf(err, errlen, "WorkloadPolicy: unknown path normalization %d", (int)msg->path_normalization);
        ret = RM_ERR_POLICY_INVALID;
        goto Exit;
    }
    if (msg->n_port_modes > 0 && (wp->port_modes = calloc(msg->n_port_modes, sizeof(*wp->port_modes))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    for (size_t i = 0; i < msg->n_port_modes; i++) {
        const Ringmesh__V1__PortMode *pm = msg->port_modes[i];
        if (pm->port < 1 || pm->port > 65535 || mode_from_proto(pm->mode, &wp->port_modes[i].mode) != 0) {
            snprintf(err, errlen, "WorkloadPolicy: port mode %zu is not valid (port %u, mode %d)", i, pm->port,
                     (int)pm->mode);
            ret = RM_ERR_POLICY_INVALID;
            goto Exit;
        }
        wp->port_modes[i].port = (uint16_t)pm->port;
        wp->num_port_modes++;
    }
    if ((ret = decode_trust_domains(msg, wp, err, errlen)) != 0)
        goto Exit;
    wp->opts.num_trusted_proxies = msg->num_trusted_proxies;
    wp->log_attributes = msg->log_attributes;
    if (msg->workload_namespace != NULL && msg->workload_namespace[0] != '\0' &&
        (wp->workload_namespace = strdup(msg->workload_namespace)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    if (msg->n_workload_labels > 0 &&
        (wp->workload_labels = calloc(msg->n_workload_labels, sizeof(*wp->workload_labels))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    for (size_t i = 0; i < msg->n_workload_labels; i++, wp->num_workload_labels++)
        if ((wp->workload_labels[i] = strdup(msg->workload_labels[i])) == NULL) {
            ret = -ENOMEM;
            goto Exit;
        }
    if ((ret = rm__request_authns_decode(msg->request_authentications, msg->n_request_authentications, set, err,
                                         errlen)) != 0)
        goto Exit;
Exit:
    ringmesh__v1__workload_policy__free_unpacked(msg, NULL);
    if (ret != 0) {
        rm_policy_set_clear(set);
        rm_workload_policy_clear(wp);
    }
    return ret;
}
