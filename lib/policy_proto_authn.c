/* RequestAuthentication <-> ringmesh.v1.RequestAuthentication (WorkloadPolicy field 30). Encoding points the
 * protobuf-c structs at the model's strings; decoding copies into the set, whose JWKS documents are checked again by
 * the proxy when it compiles them (rm_request_authn_cfg_new). */
#include "ringmesh/error.h"
#include "ringmesh/policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringmesh/v1/discovery.pb-c.h"

#define JWT_RULES_MAX 64

void rm__request_authns_encoded_free(Ringmesh__V1__RequestAuthentication **m, size_t n)
{
    for (size_t i = 0; m != NULL && i < n; i++) {
        if (m[i] == NULL)
            continue;
        for (size_t k = 0; k < m[i]->n_jwt_rules; k++) {
            Ringmesh__V1__JwtRule *r = m[i]->jwt_rules[k];
            if (r == NULL)
                continue;
            for (size_t h = 0; h < r->n_from_headers; h++)
                free(r->from_headers[h]);
            free(r->from_headers);
            for (size_t h = 0; h < r->n_output_claim_to_headers; h++)
                free(r->output_claim_to_headers[h]);
            free(r->output_claim_to_headers);
            free(r);
        }
        free(m[i]->jwt_rules);
        free(m[i]);
    }
    free(m);
}

static char *str(const char *s)
{
    return (char *)(s != NULL ? s : "");
}

static int encode_rule(const rm_jwt_rule_t *r, Ringmesh__V1__JwtRule **out)
{
    Ringmesh__V1__JwtRule *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return -ENOMEM;
    *out = m;
    ringmesh__v1__jwt_rule__init(m);
    m->issuer = str(r->issuer);
    m->n_audiences = r->audiences.n, m->audiences = r->audiences.v;
    m->jwks = str(r->jwks);
    m->jwks_uri = str(r->jwks_uri);
    m->jwks_error = str(r->jwks_error);
    m->n_from_params = r->from_params.n, m->from_params = r->from_params.v;
    m->n_from_cookies = r->from_cookies.n, m->from_cookies = r->from_cookies.v;
    m->n_space_delimited_claims = r->space_delimited_claims.n, m->space_delimited_claims = r->space_delimited_claims.v;
    m->forward_original_token = r->forward_original_token;
    m->output_payload_to_header = str(r->output_payload_to_header);
    if (r->num_from_headers > 0 && (m->from_headers = calloc(r->num_from_headers, sizeof(*m->from_headers))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < r->num_from_headers; i++) {
        Ringmesh__V1__JwtHeader *h = calloc(1, sizeof(*h));
        if (h == NULL)
            return -ENOMEM;
        ringmesh__v1__jwt_header__init(h);
        h->name = str(r->from_headers[i].name);
        h->prefix = str(r->from_headers[i].prefix);
        m->from_headers[m->n_from_headers++] = h;
    }
    if (r->num_output_claim_to_headers > 0 &&
        (m->output_claim_to_headers = calloc(r->num_output_claim_to_headers, sizeof(*m->output_claim_to_headers))) ==
            NULL)
        return -ENOMEM;
    for (size_t i = 0; i < r->num_output_claim_to_headers; i++) {
        Ringmesh__V1__JwtClaimToHeader *h = calloc(1, sizeof(*h));
        if (h == NULL)
            return -ENOMEM;
        ringmesh__v1__jwt_claim_to_header__init(h);
        h->header = str(r->output_claim_to_headers[i].header);
        h->claim = str(r->output_claim_to_headers[i].claim);
        m->output_claim_to_headers[m->n_output_claim_to_headers++] = h;
    }
    return 0;
}

int rm__request_authns_encode(const rm_request_authn_t *const *ras, size_t num,
                              Ringmesh__V1__RequestAuthentication ***out, size_t *n_out)
{
    Ringmesh__V1__RequestAuthentication **m;
    *out = NULL;
    *n_out = 0;
    if (num == 0)
        return 0;
    if ((m = calloc(num, sizeof(*m))) == NULL)
        return -ENOMEM;
    *out = m;
    for (size_t i = 0; i < num; i++) {
        Ringmesh__V1__RequestAuthentication *ra = calloc(1, sizeof(*ra));
        if (ra == NULL)
            return -ENOMEM;
        ringmesh__v1__request_authentication__init(ra);
        m[(*n_out)++] = ra;
        ra->namespace_ = str(ras[i]->namespace_);
        ra->name = str(ras[i]->name);
        if (ras[i]->num_rules > 0 && (ra->jwt_rules = calloc(ras[i]->num_rules, sizeof(*ra->jwt_rules))) == NULL)
            return -ENOMEM;
        for (size_t k = 0; k < ras[i]->num_rules; k++) {
            ra->n_jwt_rules++;
            if (encode_rule(&ras[i]->rules[k], &ra->jwt_rules[k]) != 0)
                return -ENOMEM;
        }
    }
    return 0;
}

/* policy_proto.c: a repeated string field into a list (0 or -ENOMEM; what was copied stays in dst) */
int rm__policy_copy_list(rm_strlist_t *dst, char **src, size_t n);

/* NULL for "" (absent), else a copy; *oom set when out of memory. */
static char *dup_opt(const char *s, int *oom)
{
    if (s == NULL || s[0] == '\0')
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *oom = 1;
    return d;
}

static int decode_rule(const Ringmesh__V1__JwtRule *m, rm_jwt_rule_t *r)
{
    int oom = 0;
    r->issuer = dup_opt(m->issuer, &oom);
    r->jwks = dup_opt(m->jwks, &oom);
    r->jwks_uri = dup_opt(m->jwks_uri, &oom);
    r->jwks_error = dup_opt(m->jwks_error, &oom);
    r->output_payload_to_header = dup_opt(m->output_payload_to_header, &oom);
    r->forward_original_token = m->forward_original_token;
    if (oom || rm__policy_copy_list(&r->audiences, m->audiences, m->n_audiences) != 0 ||
        rm__policy_copy_list(&r->from_params, m->from_params, m->n_from_params) != 0 ||
        rm__policy_copy_list(&r->from_cookies, m->from_cookies, m->n_from_cookies) != 0 ||
        rm__policy_copy_list(&r->space_delimited_claims, m->space_delimited_claims, m->n_space_delimited_claims) != 0)
        return -ENOMEM;
    if (m->n_from_headers > 0 && (r->from_headers = calloc(m->n_from_headers, sizeof(*r->from_headers))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < m->n_from_headers; i++) {
        rm_jwt_header_loc_t *h = &r->from_headers[r->num_from_headers++];
        if ((h->name = strdup(str(m->from_headers[i]->name))) == NULL ||
            (h->prefix = strdup(str(m->from_headers[i]->prefix))) == NULL)
            return -ENOMEM;
    }
    if (m->n_output_claim_to_headers > 0 &&
        (r->output_claim_to_headers = calloc(m->n_output_claim_to_headers, sizeof(*r->output_claim_to_headers))) ==
            NULL)
        return -ENOMEM;
    for (size_t i = 0; i < m->n_output_claim_to_headers; i++) {
        rm_jwt_claim_header_t *h = &r->output_claim_to_headers[r->num_output_claim_to_headers++];
        if ((h->header = strdup(str(m->output_claim_to_headers[i]->header))) == NULL ||
            (h->claim = strdup(str(m->output_claim_to_headers[i]->claim))) == NULL)
            return -ENOMEM;
    }
    return 0;
}

int rm__request_authns_decode(Ringmesh__V1__RequestAuthentication *const *m, size_t n, rm_policy_set_t *set, char *err,
                              size_t errlen)
{
    if (n == 0)
        return 0;
    if ((set->request_authns = calloc(n, sizeof(*set->request_authns))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        rm_request_authn_t *ra = &set->request_authns[set->num_request_authns++];
        ra->namespace_ = strdup(str(m[i]->namespace_));
        ra->name = strdup(str(m[i]->name));
        if (ra->namespace_ == NULL || ra->name == NULL)
            return -ENOMEM;
        if (m[i]->n_jwt_rules > JWT_RULES_MAX) {
            snprintf(err, errlen, "WorkloadPolicy: RequestAuthentication %zu has more than %d JWT rules", i,
                     JWT_RULES_MAX);
            return RM_ERR_POLICY_INVALID;
        }
        if (m[i]->n_jwt_rules > 0 && (ra->rules = calloc(m[i]->n_jwt_rules, sizeof(*ra->rules))) == NULL)
            return -ENOMEM;
        for (size_t k = 0; k < m[i]->n_jwt_rules; k++) {
            ra->num_rules++;
            int ret = decode_rule(m[i]->jwt_rules[k], &ra->rules[k]);
            if (ret != 0)
                return ret;
            if (ra->rules[k].issuer == NULL) {
                snprintf(err, errlen, "WorkloadPolicy: RequestAuthentication %zu rule %zu has no issuer", i, k);
                return RM_ERR_POLICY_INVALID;
            }
        }
    }
    return 0;
}
