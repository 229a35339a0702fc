/* A decision in words: the word and reason logged with it, and the sentence that explains it. */
#include "ringmesh/policy.h"
#include "policy_engine_internal.h"

#include <stdio.h>

const char *rm_authz_decision_word(const rm_authz_decision_t *d)
{
    if (d->allow && d->dry_run_differs)
        return "would-deny";
    if (!d->allow)
        return "deny";
    if (d->audit_policy != NULL)
        return "audit";
    return "allow";
}

const char *rm_authz_reason_word(rm_authz_reason_t r)
{
    switch (r) {
    case RM_AUTHZ_REASON_POLICY:
        return "policy";
    case RM_AUTHZ_REASON_DEFAULT_DENY:
        return "default-deny";
    case RM_AUTHZ_REASON_DEFAULT_ALLOW:
        return "default-allow";
    case RM_AUTHZ_REASON_NO_ALLOW_MATCH:
        return "no ALLOW policy matched";
    case RM_AUTHZ_REASON_UNEVALUABLE:
        return "invalid-path";
    case RM_AUTHZ_REASON_HEADER_TOO_LONG:
        return "repeated request header too long to evaluate";
    }
    return "unknown";
}

const char *rm_authz_action_name(rm_authz_action_t a)
{
    return a == RM_AUTHZ_ALLOW ? "ALLOW" : a == RM_AUTHZ_DENY ? "DENY" : "AUDIT";
}

void rm_authz_decision_explain(const rm_authz_decision_t *d, char *buf, size_t len)
{
    size_t o = 0;
    int n;
    if (d->reason == RM_AUTHZ_REASON_POLICY && d->policy != NULL)
        n = snprintf(buf, len, "%s by %s policy %s/%s rule %d", d->allow ? "allowed" : "denied",
                     rm_authz_action_name(d->policy->action), d->policy->namespace_, d->policy->name, d->rule);
    else if (d->reason == RM_AUTHZ_REASON_DEFAULT_DENY)
        n = snprintf(buf, len,
                     "denied: no ALLOW policy selects this workload and the mesh's defaultAction is DENY "
                     "(default-deny)");
    else if (d->reason == RM_AUTHZ_REASON_DEFAULT_ALLOW)
        n = snprintf(buf, len,
                     "allowed: no ALLOW policy selects this workload and the mesh's defaultAction is ALLOW "
                     "(default-allow)");
    else if (d->reason == RM_AUTHZ_REASON_NO_ALLOW_MATCH)
        n = snprintf(buf, len,
                     "denied: ALLOW policies select this workload and none of their rules matched (no "
                     "ALLOW policy matched)");
    else if (d->reason == RM_AUTHZ_REASON_UNEVALUABLE)
        n = snprintf(buf, len, "denied: the request path is missing or cannot be normalized (answered 400)");
    else if (d->reason == RM_AUTHZ_REASON_HEADER_TOO_LONG && d->header != NULL)
        n = snprintf(buf, len, "denied: the values of request header %s joined with \",\" are longer than %d bytes",
                     d->header, HEADER_JOIN_MAX);
    else
        n = snprintf(buf, len, "denied: %s", rm_authz_reason_word(d->reason));
    o = n > 0 ? (size_t)n : 0;
    if (o < len && d->dry_run_differs) {
        if (d->dry_run_policy != NULL)
            n = snprintf(buf + o, len - o, "; dry-run policy %s/%s would %s it", d->dry_run_policy->namespace_,
                         d->dry_run_policy->name, d->dry_run_allow ? "allow" : "deny");
        else
            n = snprintf(buf + o, len - o, "; dry-run policies would %s it", d->dry_run_allow ? "allow" : "deny");
        o += n > 0 ? (size_t)n : 0;
    }
    if (o < len && d->audit_policy != NULL)
        snprintf(buf + o, len - o, "; audited by %s/%s rule %d", d->audit_policy->namespace_, d->audit_policy->name,
                 d->audit_rule);
}
