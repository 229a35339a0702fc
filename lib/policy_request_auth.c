/* The engine's conditions on the request's validated JWT: requestPrincipals / notRequestPrincipals and the keys
 * request.auth.principal, request.auth.audiences, request.auth.presenter and request.auth.claims[a][b], with Istio's
 * matching: a claim matches when its value (a string) or one of its values (a list of strings) matches; the claims
 * "scope" and "permission" (and those the RequestAuthentication names in spaceDelimitedClaims) are split on spaces
 * first, as Istio does since 1.21. Claims of other types (numbers, booleans, objects) never match. Allocates
 * nothing. */
#include "ringmesh/policy.h"
#include "policy_engine_internal.h"

#include <jansson.h>
#include <string.h>

/* Whether the claim named `name` (len bytes) is split on spaces. */
static int space_delimited(const rm_request_auth_t *ra, const char *name, size_t len)
{
    if ((len == 5 && memcmp(name, "scope", 5) == 0) || (len == 10 && memcmp(name, "permission", 10) == 0))
        return 1;
    for (size_t i = 0; ra->space_delimited_claims != NULL && i < ra->space_delimited_claims->n; i++) {
        const char *s = ra->space_delimited_claims->v[i];
        if (strlen(s) == len && memcmp(s, name, len) == 0)
            return 1;
    }
    return 0;
}

static int string_matches(const rm_authz_engine_t *e, const cond_t *cd, const char *s, size_t len, int split)
{
    if (!split)
        return rm__policy_smatch_any(e, cd, s, len, 0);
    for (size_t i = 0; i < len;) {
        while (i < len && s[i] == ' ')
            i++;
        size_t start = i;
        while (i < len && s[i] != ' ')
            i++;
        if (i > start && rm__policy_smatch_any(e, cd, s + start, i - start, 0))
            return 1;
    }
    return 0;
}

static int claim_match(const rm_authz_engine_t *e, const cond_t *cd, const rm_request_auth_t *ra)
{
    const json_t *v = ra->claims;
    const char *p = cd->header, *end = cd->header + cd->header_len, *name = p;
    size_t name_len = 0;
    /* walk "a][b][c": each name looks up a member of the object reached so far */
    while (p < end) {
        const char *sep = strstr(p, "][");
        const char *stop = sep != NULL && sep < end ? sep : end;
        name = p, name_len = (size_t)(stop - p);
        if (!json_is_object(v) || (v = json_object_getn(v, name, name_len)) == NULL)
            return -1;
        p = stop == end ? end : stop + 2;
    }
    int split = space_delimited(ra, name, name_len);
    if (json_is_string(v))
        return string_matches(e, cd, json_string_value(v), json_string_length(v), split);
    if (json_is_array(v)) {
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item)
        {
            if (json_is_string(item) && string_matches(e, cd, json_string_value(item), json_string_length(item), split))
                return 1;
        }
        return 0;
    }
    return 0;
}

int rm__request_auth_match(const rm_authz_engine_t *e, const cond_t *cd, const rm_request_auth_t *ra)
{
    if (ra == NULL)
        return -1;
    switch ((attr_t)cd->attr) {
    case ATTR_REQ_PRINCIPAL:
        return ra->principal == NULL ? -1 : rm__policy_smatch_any(e, cd, ra->principal, strlen(ra->principal), 0);
    case ATTR_REQ_AUDIENCE:
        for (size_t i = 0; i < ra->num_audiences; i++)
            if (rm__policy_smatch_any(e, cd, ra->audiences[i], strlen(ra->audiences[i]), 0))
                return 1;
        return ra->num_audiences == 0 ? -1 : 0;
    case ATTR_REQ_PRESENTER:
        return ra->presenter == NULL ? -1 : rm__policy_smatch_any(e, cd, ra->presenter, strlen(ra->presenter), 0);
    case ATTR_REQ_CLAIM:
        return ra->claims == NULL ? -1 : claim_match(e, cd, ra);
    default:
        return 0;
    }
}
