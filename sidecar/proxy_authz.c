/* The proxy's side of authorization: compiling what the control plane pushed, counting and logging decisions. */
#include "proxy_authz.h"

#include "ringmesh/textbuf.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"
#include "ringmesh/request_authn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The JWT rules of every RequestAuthentication the WorkloadPolicy carries (they all select this workload). */
static int authn_compile(rm_authz_t *a)
{
    const rm_request_authn_t **ras;
    int ret;
    if (a->set.num_request_authns == 0)
        return 0;
    if ((ras = calloc(a->set.num_request_authns, sizeof(*ras))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < a->set.num_request_authns; i++)
        ras[i] = &a->set.request_authns[i];
    ret = rm_request_authn_cfg_new(ras, a->set.num_request_authns, &a->authn);
    free(ras);
    return ret;
}

int rm_authz_new(const uint8_t *data, size_t len, const char *workload, const char *version, rm_authz_t **out,
                 char *err, size_t errlen)
{
    rm_authz_t *a;
    const rm_authz_policy_t **list = NULL;
    int ret;

    if ((a = calloc(1, sizeof(*a))) == NULL)
        return -ENOMEM;
    atomic_init(&a->refs, 1);
    snprintf(a->workload, sizeof(a->workload), "%s", workload != NULL ? workload : "");
    snprintf(a->version, sizeof(a->version), "%s", version != NULL ? version : "");
    if ((ret = rm_workload_policy_decode(data, len, &a->set, &a->wp, err, errlen)) != 0)
        goto Exit;
    ret = -ENOMEM;
    if ((list = calloc(a->set.num_policies + 1, sizeof(*list))) == NULL ||
        (a->rule_base = calloc(a->set.num_policies + 1, sizeof(*a->rule_base))) == NULL)
        goto Exit;
    a->num_slots = 1;
    for (size_t i = 0; i < a->set.num_policies; i++) {
        list[i] = &a->set.policies[i];
        a->rule_base[i] = a->num_slots;
        a->num_slots += a->set.policies[i].num_rules;
    }
    if ((a->counters = calloc(a->num_slots, sizeof(*a->counters))) == NULL)
        goto Exit;
    for (size_t i = 0; i < a->num_slots; i++) {
        if ((a->counters[i] = calloc(1, sizeof(*a->counters[i]))) == NULL)
            goto Exit;
        atomic_init(&a->counters[i]->refs, 1);
    }
    if ((ret = rm_authz_engine_new(&a->engine, list, a->set.num_policies, &a->wp.opts, err, errlen)) != 0)
        goto Exit;
    if ((ret = authn_compile(a)) != 0)
        goto Exit;
Exit:
    free(list);
    if (ret != 0) {
        if (ret == -ENOMEM)
            snprintf(err, errlen, "out of memory");
        rm_authz_unref(a);
        return ret;
    }
    *out = a;
    return 0;
}

static void cell_unref(rm_authz_cell_t *c)
{
    if (c != NULL && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        free(c);
}

/* Slot `slot` of `a` counts into `cell` from now on. */
static void cell_share(rm_authz_t *a, size_t slot, rm_authz_cell_t *cell)
{
    atomic_fetch_add_explicit(&cell->refs, 1, memory_order_relaxed);
    cell_unref(a->counters[slot]);
    a->counters[slot] = cell;
}

void rm_authz_ref(rm_authz_t *a)
{
    atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
}

void rm_authz_unref(rm_authz_t *a)
{
    if (a == NULL || atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1)
        return;
    rm_authz_engine_free(a->engine);
    rm_request_authn_cfg_free(a->authn);
    rm_policy_set_clear(&a->set);
    rm_workload_policy_clear(&a->wp);
    free(a->rule_base);
    for (size_t i = 0; a->counters != NULL && i < a->num_slots; i++)
        cell_unref(a->counters[i]);
    free(a->counters);
    free(a);
}

void rm_authz_inherit_counters(rm_authz_t *a, const rm_authz_t *old)
{
    if (old == NULL)
        return;
    cell_share(a, 0, old->counters[0]);
    for (size_t pi = 0; pi < a->set.num_policies; pi++) {
        const rm_authz_policy_t *p = &a->set.policies[pi];
        for (size_t oi = 0; oi < old->set.num_policies; oi++) {
            const rm_authz_policy_t *q = &old->set.policies[oi];
            if (strcmp(p->namespace_, q->namespace_) != 0 || strcmp(p->name, q->name) != 0)
                continue;
            for (size_t r = 0; r < p->num_rules && r < q->num_rules; r++)
                cell_share(a, a->rule_base[pi] + r, old->counters[old->rule_base[oi] + r]);
            break;
        }
    }
}

/* The counter slot of `rule` of `policy` (a policy of a->set), or 0 (no policy or rule: the default action). */
static size_t rule_slot(const rm_authz_t *a, const rm_authz_policy_t *policy, int rule)
{
    if (policy != NULL && rule >= 0) {
        size_t pi = (size_t)(policy - a->set.policies);
        if (pi < a->set.num_policies && (size_t)rule < a->set.policies[pi].num_rules)
            return a->rule_base[pi] + (size_t)rule;
    }
    return 0;
}

void rm_authz_count(rm_authz_t *a, const rm_authz_decision_t *d)
{
    size_t slot;
    int kind;
    if (d->allow && d->dry_run_differs) {
        /* would-deny: counted for the dry-run policy and rule that would deny the request (the one whose
         * enforcement is being weighed), not for the policy that allowed it */
        kind = RM_AUTHZ_COUNT_WOULD_DENY;
        slot = rule_slot(a, d->dry_run_policy, d->dry_run_rule);
    } else {
        kind = d->allow ? RM_AUTHZ_COUNT_ALLOW : RM_AUTHZ_COUNT_DENY;
        slot = rule_slot(a, d->policy, d->rule);
    }
    atomic_fetch_add_explicit(&a->counters[slot]->v[kind], 1, memory_order_relaxed);
    if (d->audit_policy != NULL && d->audit_rule >= 0)
        atomic_fetch_add_explicit(&a->counters[rule_slot(a, d->audit_policy, d->audit_rule)]->v[RM_AUTHZ_COUNT_AUDIT],
                                  1, memory_order_relaxed);
}

size_t rm_authz_metrics(const rm_authz_t *a, char *buf, size_t len, size_t o)
{
    static const char *const kinds[RM_AUTHZ_COUNT_KINDS] = {"allow", "deny", "would-deny", "audit"};
    o = rm_textf(
        buf, len, o,
        "# HELP ringmesh_proxy_authz_decisions_total Authorization decisions, by the policy and rule that made "
        "them (policy=\"\" when none did: default action or no ALLOW rule matched).\n"
        "# TYPE ringmesh_proxy_authz_decisions_total counter\n");
    for (size_t slot = 0; slot < a->num_slots; slot++) {
        const rm_authz_policy_t *p = NULL;
        int rule = -1;
        for (size_t pi = 0; slot > 0 && pi < a->set.num_policies; pi++) {
            if (slot >= a->rule_base[pi] && slot < a->rule_base[pi] + a->set.policies[pi].num_rules) {
                p = &a->set.policies[pi];
                rule = (int)(slot - a->rule_base[pi]);
                break;
            }
        }
        for (int k = 0; k < RM_AUTHZ_COUNT_KINDS; k++) {
            uint64_t v = atomic_load_explicit(&a->counters[slot]->v[k], memory_order_relaxed);
            if (v == 0 && slot != 0)
                continue;
            if (p != NULL)
                o = rm_textf(
                    buf, len, o,
                    "ringmesh_proxy_authz_decisions_total{decision=\"%s\",policy=\"%s/%s\",rule=\"%d\"} %llu\n",
                    kinds[k], p->namespace_, p->name, rule, (unsigned long long)v);
            else if (k != RM_AUTHZ_COUNT_AUDIT)
                o = rm_textf(buf, len, o,
                             "ringmesh_proxy_authz_decisions_total{decision=\"%s\",policy=\"\",rule=\"\"} %llu\n",
                             kinds[k], (unsigned long long)v);
        }
    }
    return o;
}

void rm_authz_log(const rm_authz_t *a, const rm_authz_decision_t *d, const rm_authz_attrs_t *attrs)
{
    rm_log_line_t l;
    if (!d->log)
        return;
    rm_log_begin(&l, d->allow ? RM_LOG_INFO : RM_LOG_WARN, "authz");
    rm_authz_log_fields(&l, d, attrs, a != NULL ? a->workload : NULL);
    if (a != NULL) {
        rm_log_str(&l, "policy_version", a->version);
        rm_authz_log_workload(&l, a->wp.workload_namespace, a->wp.workload_labels, a->wp.num_workload_labels);
        if (a->wp.log_attributes)
            rm_authz_log_attributes(&l, a->engine, attrs);
    }
    rm_log_end(&l);
}

int rm_authz_from_path(const char *path, int default_allow, int log_allowed, const char *trust_domain,
                       char *const *trust_domain_aliases, size_t num_trust_domain_aliases, uint32_t num_trusted_proxies,
                       const char *workload, rm_authz_t **out, char *err, size_t errlen)
{
    rm_policy_set_t set = {0};
    rm_policy_diags_t diags = {0};
    rm_workload_policy_t wp = {0};
    const rm_authz_policy_t **list = NULL;
    const rm_request_authn_t **ras = NULL;
    uint8_t *bytes = NULL;
    size_t len = 0;
    int ret;

    ret = rm_policy_load_path(&set, path, 0, &diags);
    rm_policy_lint(&set, &diags);
    for (size_t i = 0; i < diags.n; i++) {
        if (!diags.d[i].warning) {
            rm_policy_diag_format(&diags.d[i], err, errlen);
            ret = RM_ERR_POLICY_INVALID;
            goto Exit;
        }
    }
    if (ret < 0) {
        snprintf(err, errlen, "%s: cannot read policies", path);
        goto Exit;
    }
    if ((list = calloc(set.num_policies + 1, sizeof(*list))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    for (size_t i = 0; i < set.num_policies; i++)
        list[i] = &set.policies[i];
    wp.opts.default_action = default_allow ? RM_AUTHZ_ALLOW : RM_AUTHZ_DENY;
    wp.opts.log_allowed = (uint8_t)(log_allowed != 0);
    wp.opts.log_allowed_sample = 1;
    wp.opts.trust_domain = trust_domain;
    wp.opts.trust_domain_aliases = trust_domain_aliases;
    wp.opts.num_trust_domain_aliases = num_trust_domain_aliases;
    wp.opts.num_trusted_proxies = num_trusted_proxies;
    if (set.num_request_authns > 0) { /* every RequestAuthentication of the files applies to this proxy */
        if ((ras = calloc(set.num_request_authns, sizeof(*ras))) == NULL) {
            ret = -ENOMEM;
            goto Exit;
        }
        for (size_t i = 0; i < set.num_request_authns; i++)
            ras[i] = &set.request_authns[i];
        wp.request_authns = ras;
        wp.num_request_authns = set.num_request_authns;
    }
    if ((ret = rm_workload_policy_encode(list, set.num_policies, &wp, &bytes, &len)) != 0)
        goto Exit;
    ret = rm_authz_new(bytes, len, workload, "static", out, err, errlen);
Exit:
    free(bytes);
    free(list);
    free(ras);
    rm_policy_set_clear(&set);
    rm_policy_diags_clear(&diags);
    return ret;
}
