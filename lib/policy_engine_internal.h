/* Internal to the policy engine (policy_compile.c, policy_evaluate.c, policy_decision.c): the compiled engine's
 * layout, which the compiler writes and a decision reads, and the helpers both sides use. Not part of any module's
 * contract: the public one is ringmesh/policy.h.
 *
 * The authorization engine: policies compiled to flat arrays, decided without allocation.
 *
 * A rule compiles to groups that must all match; a group to clauses of which one must match; a clause to
 * conditions that must all match. `from` is one group (a clause per source), `to` another (a clause per
 * operation), each `when` a group of one clause. A condition tests one attribute against a list of string
 * matchers, CIDR blocks or ports, possibly negated.
 *
 * Rules are kept in decision order (DENY rules, ALLOW rules, AUDIT rules; policies by namespace/name, rules in
 * their order). So that a workload with a thousand rules still decides in well under a microsecond
 * (bench/policy_bench), each list is indexed: a rule is filed under the values of one attribute it cannot match
 * without (principal, namespace, path, source IP or a request header; see "The index" below). A decision looks at
 * the rules that are not indexed and at those filed under the request's values, each candidate list only up to the
 * best match so far, so the first match in decision order decides as if every rule had been tried. */
#ifndef RINGMESH_POLICY_ENGINE_INTERNAL_H
#define RINGMESH_POLICY_ENGINE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ringmesh/policy.h"

#define HEADER_JOIN_MAX 8192 /* bytes of a repeated header's values joined with "," (docs/authorization.md) */

typedef enum {
    ATTR_PRINCIPAL = 0,
    ATTR_NAMESPACE,
    ATTR_SOURCE_IP,
    ATTR_DEST_IP,
    ATTR_DEST_PORT,
    ATTR_SNI,
    ATTR_HOST,
    ATTR_METHOD,
    ATTR_PATH,
    ATTR_HEADER,
    ATTR_SERVICE_ACCOUNT, /* "ns/NS/sa/SA": the peer's SPIFFE ID after its trust domain (serviceAccounts) */
    ATTR_TRUST_DOMAIN,    /* the peer's SPIFFE trust domain (trustDomains, source.trustDomain) */
    ATTR_REMOTE_IP,       /* remote.ip: X-Forwarded-For per the mesh's numTrustedProxies, else the source IP */
    /* the request's validated JWT (rm_authz_attrs_t.request_auth): requestPrincipals, request.auth.* */
    ATTR_REQ_PRINCIPAL,
    ATTR_REQ_AUDIENCE,
    ATTR_REQ_PRESENTER,
    ATTR_REQ_CLAIM, /* `header` holds the claim names as written between the brackets: "a][b" */
} attr_t;

/* SM_TEMPLATE: an Istio path template ({*}, {**}), never indexed (policy_attrs.c) */
typedef enum { SM_EXACT = 0, SM_PREFIX, SM_SUFFIX, SM_ANY, SM_TEMPLATE } smatch_kind_t;

typedef struct st_smatch_t {
    const char *s;
    uint32_t len;
    uint8_t kind;
} smatch_t;

typedef struct st_cidr_t {
    uint8_t addr[16];
    uint8_t prefix; /* of the 128 bits */
    uint8_t v4;     /* written as an IPv4 block: matches IPv4 peers only (and an IPv6 block IPv6 peers only) */
} cidr_t;

typedef struct st_cond_t {
    uint8_t attr, negate, http_only;
    const char *header; /* lower case, ATTR_HEADER only */
    size_t header_len;
    uint32_t first, count; /* into smatches, cidrs or ports per attr */
} cond_t;

/* Where a condition comes from in its policy, for the closest miss (policy_explain.c): kept apart from cond_t so
 * that a decision's hot loop reads no more than it did. */
typedef struct st_cond_origin_t {
    const rm_strlist_t *want; /* the field's values in the policy */
    const char *key;          /* a `when` condition's key, else NULL */
    uint16_t part_index;
    uint8_t part; /* RM_AUTHZ_PART_FROM, _TO, _WHEN */
} cond_origin_t;

typedef struct st_span_t {
    uint32_t first, count;
} span_t;

typedef struct st_crule_t {
    span_t groups;
    const rm_authz_policy_t *policy;
    int index; /* in the policy */
    uint8_t action, dry_run;
} crule_t;

/* The index. A rule is found by one key attribute: one that it cannot match without, because every clause of one of
 * its groups has a positive condition on that attribute (principal, namespace, path, source IP or a request header)
 * whose values the index can look up (exact, prefix and suffix strings, CIDR blocks; not "*"). Its keys are those
 * values. A decision looks up the request's value of each attribute: exactly, and for each prefix and suffix length
 * (and CIDR prefix length) that keys of the list have, so the number of lengths per attribute is capped. */
#define MAX_INDEXED_HEADERS 4
#define MAX_KEY_LENGTHS     16

enum {
    KEY_PRINCIPAL = 0,
    KEY_NAMESPACE,
    KEY_PATH,
    KEY_SOURCE_IP,
    KEY_HEADER, /* KEY_HEADER + k: the list's k-th indexed header name */
    KEY_COUNT = KEY_HEADER + MAX_INDEXED_HEADERS,
};

typedef struct st_key_lengths_t {
    uint16_t v[MAX_KEY_LENGTHS]; /* ascending */
    uint8_t n;
} key_lengths_t;

typedef struct st_key_attr_t {
    uint8_t used, has_exact;
    key_lengths_t prefix, suffix; /* KEY_SOURCE_IP: the CIDR prefix lengths, in prefix */
    const char *header;           /* KEY_HEADER + k: the name, lower case */
    size_t header_len;
} key_attr_t;

typedef struct st_index_slot_t {
    const void *key;   /* NULL: empty slot. A CIDR's key is its masked address and its prefix length (17 bytes). */
    uint32_t len, tag; /* tag: key attribute << 2 | match kind */
    uint64_t hash;
    span_t rules; /* into index_rules: ascending rule numbers */
} index_slot_t;

typedef struct st_rule_list_t {
    uint32_t first, count; /* into rules */
    uint32_t *unindexed;   /* ascending, into rules */
    uint32_t num_unindexed;
    uint32_t *http_keyed; /* DENY and AUDIT rules found by path or header: on a connection that is not HTTP they
                           * apply (their HTTP-only fields count as matching), so they are looked at in turn */
    uint32_t num_http_keyed;
    index_slot_t *slots; /* open addressing, size a power of two (0: no index) */
    uint32_t num_slots;
    key_attr_t keys[KEY_COUNT];
    uint32_t num_policies, num_enforced_policies; /* policies of this action (dry-run included / not) */
    const rm_authz_policy_t *first_dry_policy;
} rule_list_t;

enum { LIST_DENY = 0, LIST_ALLOW, LIST_AUDIT, LIST_COUNT };

struct st_rm_authz_engine_t {
    rm_authz_engine_opts_t opts;
    crule_t *rules;
    size_t num_rules;
    span_t *groups;
    size_t num_groups;
    span_t *clauses;
    size_t num_clauses;
    cond_t *conds;
    size_t num_conds;
    cond_origin_t *cond_origins; /* [num_conds] */
    const char **tested_headers; /* the distinct request headers conditions test (lower case, owned), for the log */
    size_t num_tested_headers;
    smatch_t *smatches;
    size_t num_smatches;
    cidr_t *cidrs;
    size_t num_cidrs;
    uint16_t *ports;
    size_t num_ports;
    uint8_t *cidr_keys; /* per CIDR: its index key (CIDR_KEY bytes) */
    uint32_t *index_rules;
    size_t num_index_rules;
    char **owned; /* strings made at compile time (stripped principals, lower-cased names) */
    size_t num_owned;
    rule_list_t lists[LIST_COUNT];
    int needs_http;
    int needs_remote_ip;  /* some condition tests remote.ip */
    int needs_peer_parts; /* some condition tests the peer's service account or trust domain */
};

/* ---- policy_attrs.c: the attributes beyond the first ones ---- */

/** 1 when `path` matches the path template `tpl` ({*}: one whole segment of one or more characters; {**}: zero or
 *  more characters, '/' included, last operator only; the loader checked the form). */
int rm__policy_template_match(const char *tpl, size_t tlen, const char *path, size_t plen);

/** The service account part ("ns/NS/sa/SA") and trust domain of a principal without "spiffe://": 1 with both set
 *  when it has the form TD/ns/NS/sa/SA, else 0 (the trust domain is still set when the principal has a '/'). */
int rm__policy_principal_parts(const char *p, size_t len, const char **sa, size_t *sa_len, const char **td,
                               size_t *td_len);

/** remote.ip of a request: the Nth address from the right of its X-Forwarded-For fields (joined in order with
 *  ","), N = num_trusted_proxies > 0, when there are at least N and that one is an IP address. Returns 1 with out
 *  set, or 0: remote.ip is then the source IP. */
int rm__policy_xff_remote_ip(const rm_http_request_t *r, uint32_t num_trusted_proxies, uint8_t out[16]);

/** A serviceAccounts value in the form the engine matches: "NS/SA" as "ns/NS/sa/SA", "SA" as the service account
 *  of the policy's namespace (malloc'ed; NULL when out of memory). */
char *rm__policy_service_account_key(const char *v, const char *policy_ns);

/* A decision's view of the request (policy_evaluate.c), also read by the closest miss (policy_explain.c). */
typedef struct st_eval_ctx_t {
    const rm_authz_attrs_t *a;
    const char *principal; /* without "spiffe://" */
    size_t principal_len;
    const char *ns;
    size_t ns_len;
    const char *path; /* the request path, without query or fragment (normalized by the caller) */
    size_t path_len;
    const char *sa; /* the principal after its trust domain, "ns/NS/sa/SA"; NULL when not of that form */
    size_t sa_len;
    const char *td; /* the principal's trust domain; NULL without a principal */
    size_t td_len;
    const uint8_t *remote_ip; /* remote.ip: a->remote_ip, the X-Forwarded-For address in remote_ip_buf, or the
                                 source IP; NULL when none is known */
    uint8_t remote_ip_buf[16];
    /* A header sent more than once is matched as Envoy matches it: its values joined with ",". Conditions join into
     * cond_header_buf, the index lookups into key_header_buf (a lookup evaluates conditions while it still reads its
     * key). A joined value that does not fit makes the request unevaluable: too_long_header names the header. */
    const char *too_long_header;
    char cond_header_buf[HEADER_JOIN_MAX];
    char key_header_buf[HEADER_JOIN_MAX];
} eval_ctx_t;

/* One condition against the request as a rule of `action` sees it: 1 match, 0 no match (policy_evaluate.c). */
int rm__policy_cond_match(const rm_authz_engine_t *e, const cond_t *cd, eval_ctx_t *x, uint8_t action);
/* The closest miss of a request no enforced ALLOW rule matched, into d->miss_* (policy_explain.c). Allocates
 * nothing. */
__attribute__((cold)) void rm__policy_closest_miss(const rm_authz_engine_t *e, eval_ctx_t *x, rm_authz_decision_t *d);

/* Fills e->tested_headers from the compiled conditions. Returns 0 or -ENOMEM (policy_log_attrs.c). */
int rm__policy_collect_headers(rm_authz_engine_t *e);

#define CIDR_KEY 17 /* bytes: the address masked to the prefix, then the prefix length */

/* Shared by the compiler (which files rules under keys) and a decision (which looks the request's values up); static
 * inline so that the decision's lookups keep them inlined. */

/* Principals are compared without "spiffe://", so Istio's "cluster.local/ns/x/sa/y" and a full SPIFFE ID both
 * work. */
static inline const char *rm__policy_strip_spiffe(const char *s)
{
    return strncmp(s, "spiffe://", 9) == 0 ? s + 9 : s;
}

/* A key's hash, eight bytes at a time: a decision hashes the request's values once per key length. */
static inline uint64_t rm__policy_hash_key(const void *key, size_t len, uint32_t tag)
{
    const uint8_t *p = key;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)len << 8 | tag), w;
    for (; len >= 8; p += 8, len -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    for (w = 0; len > 0; len--)
        w = w << 8 | p[len - 1];
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 29);
}

/* A CIDR block's index key: the address masked to `prefix` bits, then the prefix length. */
static inline void rm__policy_cidr_key(uint8_t out[CIDR_KEY], const uint8_t addr[16], unsigned prefix)
{
    for (unsigned i = 0; i < 16; i++) {
        unsigned bits = prefix > i * 8 ? prefix - i * 8 : 0;
        out[i] = bits >= 8 ? addr[i] : (uint8_t)(addr[i] & (0xff00 >> bits));
    }
    out[16] = (uint8_t)prefix;
}

/* The slot of a key, or the empty slot where it goes. */
static inline index_slot_t *rm__policy_slot_find(const rule_list_t *l, uint32_t tag, const void *key, size_t len,
                                                 uint64_t h)
{
    uint32_t mask = l->num_slots - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        index_slot_t *sl = &l->slots[i];
        if (sl->key == NULL || (sl->hash == h && sl->tag == tag && sl->len == len && memcmp(sl->key, key, len) == 0))
            return sl;
    }
}

/** 1 when any of the condition's string matchers matches s[0..len) (case-insensitively with `icase`). */
int rm__policy_smatch_any(const rm_authz_engine_t *e, const cond_t *cd, const char *s, size_t len, int icase);

/** A condition on the request's JWT (ATTR_REQ_*, policy_request_auth.c): 1 match, 0 no match, -1 absent (no
 *  token, or no such claim). */
int rm__request_auth_match(const rm_authz_engine_t *e, const cond_t *cd, const rm_request_auth_t *ra);

#endif
