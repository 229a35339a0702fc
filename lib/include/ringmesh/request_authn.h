/* RequestAuthentication at request time: the JWT rules that apply to a workload, compiled once (JWKS parsed), and
 * the check of one HTTP request against them, with Istio's semantics:
 *  - the token is looked for in each rule's locations (fromHeaders with their prefixes, fromParams, fromCookies;
 *    a rule that names none: "Authorization: Bearer <token>" and the access_token query parameter), in rule order;
 *  - no token: the request goes on with no request principal (an AuthorizationPolicy may then deny it);
 *  - a token: it must be from the issuer of a rule that reads it from that location, verify with that rule's JWKS
 *    (a jwksUri the control plane could not fetch has none: every token of its issuer is refused) and pass iss,
 *    aud, exp and nbf (60 s of clock skew, as Envoy). Otherwise the request is refused (401, or gRPC status 16).
 * The check allocates only to decode the token (bounded by RM_JWT_USER_TOKEN_MAX); what it returns points into the
 * request and into the result. */
#ifndef RINGMESH_REQUEST_AUTHN_H
#define RINGMESH_REQUEST_AUTHN_H

#include "ringmesh/http_request.h"
#include "ringmesh/jwt_user.h"
#include "ringmesh/policy.h"

#include <stddef.h>
#include <stdint.h>

typedef struct st_rm_authn_rule_t {
    const rm_jwt_rule_t *rule; /* in the set the caller keeps */
    rm_jwt_keyset_t *keys;     /* NULL: no usable JWKS */
    char jwks_error[200];      /* why keys is NULL */
} rm_authn_rule_t;

typedef struct st_rm_request_authn_cfg_t {
    rm_authn_rule_t *rules;
    size_t num_rules;
} rm_request_authn_cfg_t;

/** Compiles the JWT rules of `ras` (RequestAuthentications that select the workload; they must outlive the
 *  result). A JWKS that does not parse is not an error: its rule keeps the reason and refuses its tokens. *out is
 *  NULL when no rule applies. Returns 0 or -ENOMEM. */
int rm_request_authn_cfg_new(const rm_request_authn_t *const *ras, size_t num, rm_request_authn_cfg_t **out);
void rm_request_authn_cfg_free(rm_request_authn_cfg_t *cfg);

typedef enum {
    RM_AUTHN_NO_TOKEN = 0, /* goes on without a request principal */
    RM_AUTHN_VALID = 1,
    RM_AUTHN_INVALID = 2, /* refused: 401 */
} rm_authn_outcome_t;

/** Where the token was found, for forwardOriginalToken (the header is removed unless it is set). */
typedef struct st_rm_authn_result_t {
    rm_authn_outcome_t outcome;
    char reason[256];            /* INVALID: why, for the log (never the token) */
    const rm_authn_rule_t *rule; /* VALID */
    rm_jwt_user_t token;         /* VALID: the decoded token (its payload is the claims) */
    rm_request_auth_t auth;      /* VALID: what the policy engine reads */
    const char *token_header;    /* VALID and found in a header: its name as the rule wrote it; else NULL */
    const char *token_text;      /* VALID: the compact token (into the request) */
    size_t token_len;
} rm_authn_result_t;

/** Checks one request at time `now` (seconds since the epoch). Fills *r; clear it with rm_authn_result_clear().
 *  Returns 0 or -ENOMEM. */
int rm_request_authn_check(const rm_request_authn_cfg_t *cfg, const rm_http_request_t *req, int64_t now,
                           rm_authn_result_t *r);
void rm_authn_result_clear(rm_authn_result_t *r);

/** The text of claim `name` ("a.b" walks nested objects) of a valid result for outputClaimToHeaders: a string as
 *  is, a number or boolean as JSON, a list of strings joined with ","; written into buf (NUL-terminated). Returns
 *  its length, or -1 when the claim is absent or does not fit. */
int rm_authn_claim_text(const rm_authn_result_t *r, const char *name, char *buf, size_t len);

#endif
