/* Authorization in the proxy: the compiled WorkloadPolicy a snapshot carries, the decision hook the inbound
 * connections call, and the decision counters /metrics shows.
 *
 * An rm_authz_t is immutable once made (its counters excepted, which are relaxed atomics) and reference-counted:
 * a connection keeps the one it started with, so a policy change never affects a decision in flight. */
#ifndef RINGMESH_PROXY_AUTHZ_H
#define RINGMESH_PROXY_AUTHZ_H

#include "ringmesh/policy.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum {
    RM_AUTHZ_COUNT_ALLOW = 0,
    RM_AUTHZ_COUNT_DENY,
    RM_AUTHZ_COUNT_WOULD_DENY,
    RM_AUTHZ_COUNT_AUDIT,
    RM_AUTHZ_COUNT_KINDS
};

typedef struct st_rm_authz_t {
    atomic_int refs;
    rm_policy_set_t set;
    rm_workload_policy_t wp;
    rm_authz_engine_t *engine;
    char workload[512]; /* "namespace/name" of this proxy's workload, for the decision log */
    char version[64];   /* of the WorkloadPolicy */
    size_t *rule_base;  /* per policy: its first counter slot; slot 0 counts decisions no rule made */
    size_t num_slots;
    struct st_rm_authz_cell_t **counters; /* [num_slots]: shared with the policy sets before and after this one */
    /* the JWT rules of the RequestAuthentications in `set` (ringmesh/request_authn.h); NULL: none, no token is
     * looked for */
    struct st_rm_request_authn_cfg_t *authn;
} rm_authz_t;

/** The decision counts of one slot (a policy's rule, or slot 0: no rule), reference-counted so that the next
 *  policy set counts into the same cells for the rules it keeps: a decision counted on the old set after the change
 *  (by a connection that started before it) still shows. */
typedef struct st_rm_authz_cell_t {
    atomic_int refs;
    atomic_uint_fast64_t v[RM_AUTHZ_COUNT_KINDS];
} rm_authz_cell_t;

/** Decodes and compiles a WorkloadPolicy. Returns 0, or RM_ERR_POLICY_INVALID / -ENOMEM with the reason in err
 *  (for the NACK). */
int rm_authz_new(const uint8_t *data, size_t len, const char *workload, const char *version, rm_authz_t **out,
                 char *err, size_t errlen);
/** Loads every policy of a file or directory (YAML, as the control plane reads it) into an rm_authz_t for a proxy
 *  without a control plane: all of them apply to this proxy. `trust_domain` (the proxy's own) and its aliases expand
 *  principals as in the mesh (rm_authz_principal_expand); `num_trusted_proxies` is the mesh's numTrustedProxies
 *  (remote.ip from X-Forwarded-For). Returns 0, or an error with "FILE:LINE:COL: field:
 *  reason" (the first error) in err. */
int rm_authz_from_path(const char *path, int default_allow, int log_allowed, const char *trust_domain,
                       char *const *trust_domain_aliases, size_t num_trust_domain_aliases, uint32_t num_trusted_proxies,
                       const char *workload, rm_authz_t **out, char *err, size_t errlen);
void rm_authz_ref(rm_authz_t *a);
void rm_authz_unref(rm_authz_t *a);

/** Makes `a` count into old's cells, policy by policy and rule by rule (same namespace/name), so that a policy
 *  change does not reset the counts of the policies it leaves alone; decisions still counted on `old` afterwards
 *  (by connections that started before the change) are counted in the same cells. Before `a` is published. */
void rm_authz_inherit_counters(rm_authz_t *a, const rm_authz_t *old);

/** Counts a decision (relaxed atomics; any thread): allow and deny under the policy and rule that decided, would-deny
 *  (allowed, but a dry-run policy would deny) under that dry-run policy and rule, audit under the AUDIT rule. */
void rm_authz_count(rm_authz_t *a, const rm_authz_decision_t *d);

/** Appends the decision counters in Prometheus text format to buf[o..len). Returns the new offset. */
size_t rm_authz_metrics(const rm_authz_t *a, char *buf, size_t len, size_t o);

/** Logs a decision (event "authz"; warn for deny, info otherwise) when d->log says so. */
void rm_authz_log(const rm_authz_t *a, const rm_authz_decision_t *d, const rm_authz_attrs_t *attrs);

#endif
