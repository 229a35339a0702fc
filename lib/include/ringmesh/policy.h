/* Authorization policy: the model, the YAML loader, workload selection, the compiled form and its evaluation.
 *
 * The language is Istio's security.istio.io/v1 AuthorizationPolicy (field names and semantics), read from
 * kind AuthorizationPolicy in ringmesh.io/v1alpha1, security.istio.io/v1 or security.istio.io/v1beta1, plus
 * PeerAuthentication. The same code runs in the proxy (enforcement), the control plane (validation, selection)
 * and ringmeshctl (lint, check), so a decision printed by `ringmeshctl policy check` is the proxy's decision.
 *
 * Semantics (docs/authorization.md):
 *  - DENY policies first: any matching rule denies. Then ALLOW: if any ALLOW policy selects the workload, the
 *    request is allowed only when one of their rules matches. A workload no ALLOW policy selects gets the mesh's
 *    defaultAction (DENY unless set to ALLOW). AUDIT policies only mark the decision for logging.
 *  - A rule matches when every present part matches: any `from` source, any `to` operation, every `when`.
 *    Within a source or operation every field present must match; a list matches when any entry matches; a
 *    not-list matches when no entry matches. Strings match exactly, by prefix ("x*"), by suffix ("*x") or by
 *    presence ("*"). Hosts compare case-insensitively with the authority as sent, port included ("x.com" does not
 *    match "x.com:8080"; "x.com:*" does). A header sent more than once is matched as one value: its values in
 *    order joined with "," (Envoy's rule), so "guest" and "admin" are "guest,admin".
 *  - Principals naming cluster.local, the mesh's trust domain or one of its aliases stand for the workload in each
 *    of them (Istio's trust-domain migration; rm_authz_principal_expand), expanded when the engine compiles.
 *  - serviceAccounts ("NS/SA", or "SA" of the policy's namespace) match the peer's SPIFFE ID in any trust domain;
 *    trustDomains match its trust domain as written. Paths with {*} (one segment) or {**} (any, the last operator)
 *    are Istio's path templates. remote.ip is the Nth address from the right of X-Forwarded-For when the mesh
 *    trusts N > 0 proxies (opts.num_trusted_proxies) and the request has that many, else the source IP.
 *  - HTTP-only fields (hosts, methods, paths, request.headers) on a connection that is not HTTP: in an ALLOW
 *    policy the rule does not match; in DENY and AUDIT policies those fields count as matching.
 *  - A policy annotated ringmesh.io/dry-run: "true" is evaluated as if it were in force and the difference is
 *    reported (would-deny / would-allow) but not enforced.
 *
 * Evaluation allocates nothing and takes no lock; a compiled set is immutable and may be shared by threads. */
#ifndef RINGMESH_POLICY_H
#define RINGMESH_POLICY_H

#include "ringmesh/http_path.h"
#include "ringmesh/http_request.h"

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------------------------------------
 * The model: what the YAML loader and the discovery resource both produce. Strings are owned by the set.
 * ------------------------------------------------------------------------------------------------------- */

typedef enum {
    RM_AUTHZ_ALLOW = 0,
    RM_AUTHZ_DENY = 1,
    RM_AUTHZ_AUDIT = 2,
} rm_authz_action_t;

typedef struct st_rm_strlist_t {
    char **v;
    size_t n;
} rm_strlist_t;

typedef struct st_rm_authz_source_t {
    rm_strlist_t principals, not_principals, namespaces, not_namespaces, ip_blocks, not_ip_blocks;
    /* Istio's serviceAccounts ("NS/SA": the peer's SPIFFE ID in any trust domain), trustDomains (the peer's trust
     * domain) and remoteIpBlocks (remote.ip: the client address X-Forwarded-For names, per the mesh's
     * numTrustedProxies, else the source IP) */
    rm_strlist_t service_accounts, not_service_accounts, trust_domains, not_trust_domains, remote_ip_blocks,
        not_remote_ip_blocks;
    unsigned line, column; /* of the source in its file (0: not from a file) */
    /* requestPrincipals / notRequestPrincipals: "iss/sub" of the request's validated JWT (RequestAuthentication) */
    rm_strlist_t request_principals, not_request_principals;
} rm_authz_source_t;

typedef struct st_rm_authz_operation_t {
    rm_strlist_t hosts, not_hosts, ports, not_ports, methods, not_methods, paths, not_paths;
    unsigned line, column; /* of the operation in its file (0: not from a file) */
} rm_authz_operation_t;

typedef struct st_rm_authz_condition_t {
    char *key; /* "request.headers[x-user]", "source.ip", ... */
    rm_strlist_t values, not_values;
    unsigned line, column; /* of the condition in its file (0: not from a file) */
} rm_authz_condition_t;

typedef struct st_rm_authz_rule_t {
    rm_authz_source_t *from;
    size_t num_from;
    rm_authz_operation_t *to;
    size_t num_to;
    rm_authz_condition_t *when;
    size_t num_when;
    unsigned line, column; /* of the rule in its file (0: not from a file), for the findings of lint */
} rm_authz_rule_t;

typedef struct st_rm_label_t {
    char *key, *value;
} rm_label_t;

typedef struct st_rm_authz_policy_t {
    char *namespace_, *name;
    int has_selector; /* selector present (possibly with no labels: then it selects every workload) */
    rm_label_t *match_labels;
    size_t num_match_labels;
    rm_authz_action_t action;
    rm_authz_rule_t *rules;
    size_t num_rules;
    uint8_t dry_run;     /* ringmesh.io/dry-run: "true" */
    uint8_t log_allowed; /* ringmesh.io/log-allowed: "true" */
    char *file;          /* where it was read, for messages; NULL when it came from the control plane */
    unsigned line;
} rm_authz_policy_t;

typedef enum {
    RM_PEER_MTLS_UNSET = 0, /* inherit */
    RM_PEER_MTLS_STRICT = 1,
    RM_PEER_MTLS_PERMISSIVE = 2,
    RM_PEER_MTLS_DISABLE = 3,
} rm_peer_mtls_mode_t; /* same numbers as ringmesh.v1.MtlsMode */

typedef struct st_rm_peer_port_mode_t {
    uint16_t port;
    rm_peer_mtls_mode_t mode;
} rm_peer_port_mode_t;

typedef struct st_rm_peer_authn_t {
    char *namespace_, *name;
    int has_selector;
    rm_label_t *match_labels;
    size_t num_match_labels;
    rm_peer_mtls_mode_t mode;
    rm_peer_port_mode_t *port_modes; /* portLevelMtls */
    size_t num_port_modes;
    char *file;
    unsigned line;
} rm_peer_authn_t;

/* RequestAuthentication (docs/authorization.md): where a workload's proxy finds end-user JWTs and how it checks
 * them. One JWT rule per issuer. */
typedef struct st_rm_jwt_header_loc_t {
    char *name;   /* header name as written */
    char *prefix; /* stripped before the token ("Bearer "); "" for none */
} rm_jwt_header_loc_t;

typedef struct st_rm_jwt_claim_header_t {
    char *header; /* the header to set */
    char *claim;  /* the claim copied into it ("a.b" for a nested one) */
} rm_jwt_claim_header_t;

typedef struct st_rm_jwt_rule_t {
    char *issuer;
    rm_strlist_t audiences; /* empty: "aud" is not checked */
    char *jwks;             /* the JWKS document (inline, or as the control plane fetched jwks_uri); NULL: none */
    char *jwks_uri;         /* NULL when inline */
    rm_jwt_header_loc_t *from_headers; /* none set (and no params, no cookies): Authorization "Bearer " and the
                                          access_token query parameter */
    size_t num_from_headers;
    rm_strlist_t from_params, from_cookies;
    uint8_t forward_original_token;
    char *output_payload_to_header; /* NULL: none */
    rm_jwt_claim_header_t *output_claim_to_headers;
    size_t num_output_claim_to_headers;
    uint32_t timeout_ms;                 /* jwksUri fetch timeout (0: the control plane's default) */
    rm_strlist_t space_delimited_claims; /* besides "scope" and "permission" */
    char *jwks_error; /* the control plane could not fetch jwks_uri: why (then jwks is NULL and every token of this
                         issuer is refused, as Istio does) */
} rm_jwt_rule_t;

typedef struct st_rm_request_authn_t {
    char *namespace_, *name;
    int has_selector;
    rm_label_t *match_labels;
    size_t num_match_labels;
    rm_jwt_rule_t *rules;
    size_t num_rules;
    char *file;
    unsigned line;
} rm_request_authn_t;

/** A set of policies as loaded (from files or from the control plane). */
typedef struct st_rm_policy_set_t {
    rm_authz_policy_t *policies;
    size_t num_policies;
    rm_peer_authn_t *peer_authns;
    size_t num_peer_authns;
    rm_request_authn_t *request_authns; /* RequestAuthentication */
    size_t num_request_authns;
} rm_policy_set_t;

/** Frees everything the set owns and leaves it empty. */
void rm_policy_set_clear(rm_policy_set_t *set);

/** Finding of the loader or lint: position, field path, message. */
typedef struct st_rm_policy_diag_t {
    int warning; /* 0: error */
    char *file;
    unsigned line, column;
    char *path; /* "spec.rules[0].to[0].operation.methods[1]" */
    char *message;
} rm_policy_diag_t;

typedef struct st_rm_policy_diags_t {
    rm_policy_diag_t *d;
    size_t n;
    size_t num_errors;
} rm_policy_diags_t;

void rm_policy_diags_clear(rm_policy_diags_t *d);
/** Formats one finding as rm_config_format() does: "FILE:LINE:COLUMN: PATH: MESSAGE" (with "warning: " before the
 *  message when it is one; "(document)" for no path; "FILE: MESSAGE" for a finding about the file as a whole). */
void rm_policy_diag_format(const rm_policy_diag_t *d, char *buf, size_t len);

/** Reads the AuthorizationPolicy and PeerAuthentication documents of a YAML text (documents of other kinds are
 *  skipped; `strict_kinds` makes them errors, for `ringmeshctl policy lint`). Valid policies are appended to
 *  `set`; every problem found is appended to `diags` (all of them, not just the first) and the document with it
 *  is left out. `file` names the text in messages. Returns 0, or the number of errors found (> 0), or -ENOMEM. */
int rm_policy_load_yaml(rm_policy_set_t *set, const char *text, size_t len, const char *file, int strict_kinds,
                        rm_policy_diags_t *diags);

/** Reads a file, or every *.yaml / *.yml file of a directory in name order, as above. Returns 0, the number of
 *  errors, or a negative errno when a file cannot be read (also reported in diags). */
int rm_policy_load_path(rm_policy_set_t *set, const char *path, int strict_kinds, rm_policy_diags_t *diags);
/** Whether rm_policy_load_path reads a directory entry of this name: *.yaml or *.yml, not hidden (a Kubernetes
 *  volume's "..data" and its timestamped directories are hidden). */
int rm_policy_file_name(const char *name);

/** Checks what can only be seen across documents (two policies with the same namespace/name) and appends
 *  warnings for rules that can never match. Returns the number of errors added. */
int rm_policy_lint(const rm_policy_set_t *set, rm_policy_diags_t *diags);

/* ---------------------------------------------------------------------------------------------------------
 * Selection: which policies apply to a workload.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_rm_workload_t {
    const char *namespace_;
    const rm_label_t *labels;
    size_t num_labels;
} rm_workload_t;

/** 1 when `p` selects `w`: a policy in the root namespace without selector selects the whole mesh; with a
 *  selector, matching workloads of every namespace. Elsewhere it selects workloads of its own namespace. */
int rm_authz_policy_selects(const rm_authz_policy_t *p, const char *root_namespace, const rm_workload_t *w);
int rm_peer_authn_selects(const rm_peer_authn_t *p, const char *root_namespace, const rm_workload_t *w);
int rm_request_authn_selects(const rm_request_authn_t *p, const char *root_namespace, const rm_workload_t *w);

/** The mTLS mode in force for a workload: workload-level over namespace-level over mesh-level, UNSET fields
 *  inheriting. `port_modes` (may be NULL) receives up to `max_ports` per-port overrides; *num_ports is set.
 *  Returns the workload-wide mode (RM_PEER_MTLS_UNSET when no PeerAuthentication applies). */
rm_peer_mtls_mode_t rm_peer_authn_resolve(const rm_policy_set_t *set, const char *root_namespace,
                                          const rm_workload_t *w, rm_peer_port_mode_t *port_modes, size_t max_ports,
                                          size_t *num_ports);

/* ---------------------------------------------------------------------------------------------------------
 * Compiled form and evaluation.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_rm_authz_engine_t rm_authz_engine_t;

typedef struct st_rm_authz_engine_opts_t {
    rm_authz_action_t default_action; /* when no ALLOW policy applies: RM_AUTHZ_DENY (zero trust) or ALLOW */
    uint8_t log_allowed;              /* log every allowed decision, mesh-wide */
    double log_allowed_sample;        /* fraction of those logged, 0 < x <= 1 (0 means 1) */
    /* The mesh's trust domain and its aliases (MeshConfig trustDomain, trustDomainAliases), read while compiling
     * only: principals are expanded as rm_authz_principal_expand() says. NULL: principals are taken as written. */
    const char *trust_domain;
    char *const *trust_domain_aliases;
    size_t num_trust_domain_aliases;
    /* The mesh's numTrustedProxies (Istio's gatewayTopology): N > 0 makes remote.ip (remoteIpBlocks) the Nth address
     * from the right of the request's X-Forwarded-For when it has that many and it is an IP address; otherwise, and
     * on a connection that is not HTTP, remote.ip is the source IP. */
    uint32_t num_trusted_proxies;
} rm_authz_engine_opts_t;

/** What a policy's principal (`principals`, `notPrincipals`, `source.principal` values) stands for in a mesh whose
 *  trust domain and aliases `opts` names, following Istio's trust-domain migration: a principal
 *  "TD/ns/NS/sa/SA" (with or without "spiffe://"; SA may be a pattern) whose TD is "cluster.local", the trust
 *  domain or an alias (or a "x*" / "*x" pattern one of them matches, or that matches one of them) stands for the
 *  same NS/SA in the trust domain and in every alias, in that order, without repeats; a "*x" TD that matches one
 *  of them stays a pattern for that one. Every other principal stands for itself: "*", a prefix with fewer
 *  segments ("cluster.local/ns/x/" then "*"), "*" as the TD, a TD that is none of the mesh's. Sets *out to a
 *  malloc'ed array of *num malloc'ed strings (the caller frees them). Returns 0 or -ENOMEM. */
int rm_authz_principal_expand(const rm_authz_engine_opts_t *opts, const char *principal, char ***out, size_t *num);

/** Compiles the given policies (pointers into a set that must outlive the engine; typically every policy that
 *  selects one workload). Returns 0, -ENOMEM, or RM_ERR_POLICY_INVALID with a message in err (a value the
 *  loader would have refused). */
int rm_authz_engine_new(rm_authz_engine_t **out, const rm_authz_policy_t *const *policies, size_t num,
                        const rm_authz_engine_opts_t *opts, char *err, size_t errlen);
void rm_authz_engine_free(rm_authz_engine_t *e);
/** Number of rules compiled, and whether any rule needs HTTP attributes (so the proxy parses HTTP). */
size_t rm_authz_engine_num_rules(const rm_authz_engine_t *e);
int rm_authz_engine_needs_http(const rm_authz_engine_t *e);

/** A request's validated end-user JWT (RequestAuthentication), as the engine reads it: request.auth.* and
 *  requestPrincipals. Owned by whoever validated the token; lives as long as the decision. */
typedef struct st_rm_request_auth_t {
    const char *principal;        /* "iss/sub" */
    const char *const *audiences; /* "aud" (a string or a list) */
    size_t num_audiences;
    const char *presenter;       /* "azp", NULL when absent */
    const struct json_t *claims; /* the payload (a jansson object) that request.auth.claims[a][b] walks */
    const rm_strlist_t *space_delimited_claims; /* claims besides scope and permission split on spaces (may be NULL) */
} rm_request_auth_t;

typedef struct st_rm_authz_attrs_t {
    const char *principal; /* the peer's SPIFFE ID, NULL when not mTLS */
    uint8_t source_ip[16]; /* IPv4 as ::ffff:a.b.c.d */
    uint8_t have_source_ip;
    uint8_t destination_ip[16];
    uint8_t have_destination_ip;
    uint16_t destination_port;
    const char *sni;               /* NULL when none */
    const rm_http_request_t *http; /* NULL: not an HTTP request (TCP semantics) */
    const char *trace_id; /* for the decision log: the trace the request is in (32 hex), when the caller knows it
                             (the proxy's tracing, which also knows the trace it starts); NULL: read from the
                             request's traceparent or x-b3-traceid */
    /* remote.ip as the caller knows it (e.g. from a PROXY protocol header); when not set the engine derives it:
     * X-Forwarded-For per opts.num_trusted_proxies, else the source IP */
    uint8_t remote_ip[16];
    uint8_t have_remote_ip;
    const struct st_rm_request_auth_t *request_auth; /* NULL: no valid token */
} rm_authz_attrs_t;

typedef enum {
    RM_AUTHZ_REASON_POLICY = 0,     /* a rule decided (policy, rule set) */
    RM_AUTHZ_REASON_DEFAULT_DENY,   /* no ALLOW policy applies and defaultAction is DENY */
    RM_AUTHZ_REASON_DEFAULT_ALLOW,  /* no ALLOW policy applies and defaultAction is ALLOW */
    RM_AUTHZ_REASON_NO_ALLOW_MATCH, /* ALLOW policies apply and none matched */
    RM_AUTHZ_REASON_UNEVALUABLE,    /* "invalid-path": the request has no path, or the proxy could not normalize it
                                       (rm_http_path_normalize) and answered 400: denied */
    /* a header a policy tests was sent more than once and its values joined with "," do not fit the engine's 8 KiB
     * buffer: denied, the header named in the decision */
    RM_AUTHZ_REASON_HEADER_TOO_LONG,
} rm_authz_reason_t;

typedef struct st_rm_authz_decision_t {
    uint8_t allow; /* the enforced decision */
    rm_authz_reason_t reason;
    const rm_authz_policy_t *policy; /* the policy that decided (REASON_POLICY), else NULL */
    int rule;                        /* its rule index, -1 when none */
    /* a dry-run policy would change the decision: */
    uint8_t dry_run_differs;
    uint8_t dry_run_allow; /* what it would be */
    const rm_authz_policy_t *dry_run_policy;
    int dry_run_rule;
    rm_authz_reason_t dry_run_reason;
    /* an AUDIT policy matched */
    const rm_authz_policy_t *audit_policy;
    int audit_rule;
    uint8_t log; /* this decision should be logged (denied, would-deny, audit, or allowed with logAllowed) */
    /* REASON_HEADER_TOO_LONG: the header's name (lower case, owned by the engine) */
    const char *header;
    /* remote.ip as the engine took it from X-Forwarded-For (numTrustedProxies), for the log; not set when remote.ip
     * was the source IP or the caller's */
    uint8_t remote_ip[16];
    uint8_t have_remote_ip;
    /* The closest miss (a18-explain), set with REASON_NO_ALLOW_MATCH only: the enforced ALLOW rule that matched the
     * most fields, and the first of its fields that failed (rm_authz_closest_miss_explain() says it in words, with
     * the request's value). Computed on the no-match path only; nothing is allocated: the pointers point into the
     * policies and the engine. miss_policy NULL: none (no ALLOW rule has a field that failed). */
    const rm_authz_policy_t *miss_policy;
    int miss_rule;
    const rm_strlist_t *miss_want; /* the failed field's values as the policy writes them */
    const char *miss_key;          /* a `when` condition's key ("request.headers[x-user]"), else NULL */
    const char *miss_header;       /* the header the field reads (lower case, owned by the engine), else NULL */
    uint16_t miss_part_index;      /* the index of the from, to or when entry */
    uint8_t miss_part;             /* RM_AUTHZ_PART_FROM, _TO, _WHEN */
    uint8_t miss_attr;             /* the attribute the field reads (RM_AUTHZ_MISS_ATTR_*) */
    uint8_t miss_negated;          /* a not-field (notMethods, notValues, ...): the value matched one of miss_want */
    uint8_t miss_not_http;         /* an HTTP-only field and the connection is not HTTP */
    uint16_t miss_matched, miss_fields; /* fields of the rule that matched, of all it has */
    uint8_t miss_partial; /* the workload has more ALLOW rules than one denial examines: the closest of those examined
                             (the rules filed under the request's own values first; docs/authorization.md) */
} rm_authz_decision_t;

enum { RM_AUTHZ_PART_FROM = 0, RM_AUTHZ_PART_TO, RM_AUTHZ_PART_WHEN };
/* the attribute a closest miss names: what rm_authz_closest_miss_got() reads from the request */
enum {
    RM_AUTHZ_MISS_ATTR_PRINCIPAL = 0,
    RM_AUTHZ_MISS_ATTR_NAMESPACE,
    RM_AUTHZ_MISS_ATTR_SOURCE_IP,
    RM_AUTHZ_MISS_ATTR_DEST_IP,
    RM_AUTHZ_MISS_ATTR_DEST_PORT,
    RM_AUTHZ_MISS_ATTR_SNI,
    RM_AUTHZ_MISS_ATTR_HOST,
    RM_AUTHZ_MISS_ATTR_METHOD,
    RM_AUTHZ_MISS_ATTR_PATH,
    RM_AUTHZ_MISS_ATTR_HEADER,
    RM_AUTHZ_MISS_ATTR_SERVICE_ACCOUNT,   /* serviceAccounts, source.serviceAccount: "NS/SA" of the peer */
    RM_AUTHZ_MISS_ATTR_TRUST_DOMAIN,      /* trustDomains, source.trustDomain */
    RM_AUTHZ_MISS_ATTR_REMOTE_IP,         /* remoteIpBlocks, remote.ip */
    RM_AUTHZ_MISS_ATTR_REQUEST_PRINCIPAL, /* requestPrincipals, request.auth.principal: "iss/sub" of the token */
    RM_AUTHZ_MISS_ATTR_OTHER,             /* an attribute this explanation does not read back: "got" is not said */
};

/** Decides. Allocates nothing. `sample` is a caller-provided random value in [0, 1) for allow-log sampling. */
void rm_authz_evaluate(const rm_authz_engine_t *e, const rm_authz_attrs_t *a, double sample, rm_authz_decision_t *d);

/** The closest miss's field path within its rule ("from[0].source.principals", "to[1].operation.notMethods",
 *  "when[0].values") into buf. Returns buf. */
const char *rm_authz_closest_miss_field(const rm_authz_decision_t *d, char *buf, size_t len);
/** The request's value of the closest miss's attribute into buf (as matched: the path without its query, a header's
 *  values joined with ","), truncated to fit. Returns 1, or 0 when the request has none (no principal, no such
 *  header, not HTTP), and then buf is "". */
int rm_authz_closest_miss_got(const rm_authz_decision_t *d, const rm_authz_attrs_t *a, char *buf, size_t len);
/** The closest miss in words into buf: `shop/orders-readers rule 0: methods [GET] did not match DELETE`; "" when
 *  d->miss_policy is NULL. */
void rm_authz_closest_miss_explain(const rm_authz_decision_t *d, const rm_authz_attrs_t *a, char *buf, size_t len);

/** The decision word of the log line: "allow", "deny", "would-deny" (allowed, but a dry-run policy would deny) or
 *  "audit". A denial that a dry-run policy would allow stays "deny"; its dry_run_* fields say "would-allow". */
const char *rm_authz_decision_word(const rm_authz_decision_t *d);
/** Why, in words: "allowed by ns/name rule 2", "default-deny", "no ALLOW policy matched", ... */
void rm_authz_decision_explain(const rm_authz_decision_t *d, char *buf, size_t len);
const char *rm_authz_reason_word(rm_authz_reason_t r);
const char *rm_authz_action_name(rm_authz_action_t a);

/* ---------------------------------------------------------------------------------------------------------
 * On the wire: ringmesh.v1.WorkloadPolicy (proto/ringmesh/v1/discovery.proto), what the control plane pushes to
 * each sidecar for its workload.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_rm_workload_policy_t {
    rm_authz_engine_opts_t opts;      /* default action and allow logging */
    rm_peer_mtls_mode_t inbound_mode; /* RM_PEER_MTLS_UNSET: the mesh's */
    rm_peer_port_mode_t *port_modes;  /* owned */
    size_t num_port_modes;
    rm_path_normalization_t path_normalization; /* how the proxy normalizes request paths (default BASE) */
    /* after decode: holds what opts.trust_domain and opts.trust_domain_aliases point to (freed by clear) */
    void *trust_domain_store;
    /* a18-explain: the decision log's evidence for `ringmeshctl policy replay` */
    uint8_t log_attributes;   /* decision lines carry "attributes" (MeshConfig authorization.logAttributes) */
    char *workload_namespace; /* the workload the policies were selected for, NULL: not said (owned after decode) */
    char **workload_labels;   /* its labels, "key=value" (owned after decode) */
    size_t num_workload_labels;
    /* to encode: the RequestAuthentications that select the workload (not owned); decode puts them in the set */
    const rm_request_authn_t *const *request_authns;
    size_t num_request_authns;
} rm_workload_policy_t;

/** Serializes policies (in the given order) and settings as a WorkloadPolicy message. *out is malloc'ed.
 *  Returns 0 or -ENOMEM. */
int rm_workload_policy_encode(const rm_authz_policy_t *const *policies, size_t num, const rm_workload_policy_t *wp,
                              uint8_t **out, size_t *out_len);

/** Parses a WorkloadPolicy into `set` (its policies, which the caller then compiles) and `wp`. Returns 0, or
 *  RM_ERR_POLICY_INVALID with a message in err when it is not a valid message (a trust domain or alias that is not
 *  a SPIFFE trust domain included), or -ENOMEM. */
int rm_workload_policy_decode(const uint8_t *data, size_t len, rm_policy_set_t *set, rm_workload_policy_t *wp,
                              char *err, size_t errlen);

void rm_workload_policy_clear(rm_workload_policy_t *wp);

struct st_rm_log_line_t;
/** Adds a decision's fields to a log line (event "authz" in the proxy, and `ringmeshctl policy check -o json`):
 *  decision, reason, policy/rule, dry-run and audit details, source principal/namespace/IP, destination workload
 *  and port, and for HTTP the method, path, host and trace id. `workload` is "namespace/name" of the workload
 *  deciding (may be NULL). */
/** Adds an address of the 16-byte form of rm_authz_attrs_t to a log line as `key` (IPv4-mapped written as IPv4). */
void rm_authz_log_ip(struct st_rm_log_line_t *l, const char *key, const uint8_t ip[16]);

/** Adds a request target to a log line as `key`, with the value of every query parameter that carries a credential
 *  replaced (rm_http_target_redact): decision lines never hold an access_token or an API key sent in the URL. */
void rm_authz_log_path(struct st_rm_log_line_t *l, const char *key, const char *path, size_t len);

void rm_authz_log_fields(struct st_rm_log_line_t *l, const rm_authz_decision_t *d, const rm_authz_attrs_t *a,
                         const char *workload);

/** Adds the closest miss as the object "closest_miss": {policy, rule, field, want: [...], got} (got null when the
 *  request has no value for the field, with "got_absent" saying why). Nothing when d->miss_policy is NULL. */
void rm_authz_log_closest_miss(struct st_rm_log_line_t *l, const rm_authz_decision_t *d, const rm_authz_attrs_t *a);

/** Adds the object "attributes": every attribute the engine `e` reads, so that the request can be decided again
 *  (`ringmeshctl policy replay`): principal, source_ip, destination_ip, destination_port, sni, and for HTTP method,
 *  host, path and the request headers some policy of `e` tests (object "headers", values joined with ","). The
 *  values of Authorization, Proxy-Authorization, Cookie and Set-Cookie are never written, even when a policy tests
 *  them. */
void rm_authz_log_attributes(struct st_rm_log_line_t *l, const rm_authz_engine_t *e, const rm_authz_attrs_t *a);

/** Adds the deciding workload as "workload_namespace" and the object "workload_labels" ({key: value} from
 *  "key=value" strings), when known (namespace not NULL): what a replay selects a new set's policies by. */
void rm_authz_log_workload(struct st_rm_log_line_t *l, const char *ns, char *const *labels, size_t num_labels);

/** Whether a request header's value may never be logged (credentials): authorization, proxy-authorization, cookie,
 *  set-cookie, any case. */
int rm_authz_header_secret(const char *name, size_t len);

/** Parses an IP text ("198.18.0.1", "2001:db8::1") into the 16-byte form of rm_authz_attrs_t. Returns 0 or
 *  -EINVAL. */
int rm_authz_ip_parse(const char *s, uint8_t out[16]);

#endif
