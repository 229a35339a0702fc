/* RequestAuthentication documents: YAML text -> rm_request_authn_t (ringmesh/policy.h), with the findings of the
 * policy loader (file, line, column, field path). Istio's security.istio.io/v1 JWTRule fields are read; what the
 * mesh does not do (targetRef(s), OpenID discovery of the JWKS) is refused with "not supported". */
#include "ringmesh/policy.h"
#include "ringmesh/duration.h"
#include "ringmesh/error.h"
#include "ringmesh/jwt_user.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "policy_yaml_internal.h"

/* Field paths are for messages: one cut short at POLICY_PATH_MAX is still useful, so truncation is intended. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#define JWT_RULES_MAX 64

static int header_name_ok(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || strchr("!#$%&'*+-.^_`|~", *s) != NULL))
            return 0;
    return 1;
}

/* A string field that must name a header. Returns 1 when read (or absent), 0 with a finding. */
static int read_header_name(loader_t *ld, const yaml_node_t *map, const char *key, const char *path, char **out)
{
    char cp[POLICY_PATH_MAX], q[160];
    yaml_node_t *v = rm__policy_map_get(ld, map, key);
    if (v == NULL || rm__policy_is_null(v))
        return 1;
    rm__policy_child_path(cp, path, key);
    if ((*out = rm__policy_scalar(ld, v, cp)) == NULL)
        return 0;
    if (!header_name_ok(*out)) {
        rm__policy_report(ld, 0, v, cp, "%s is not a header name", rm__policy_quoted(q, sizeof(q), *out));
        return 0;
    }
    return 1;
}

static int read_bool(loader_t *ld, const yaml_node_t *v, const char *path, uint8_t *out)
{
    char q[64];
    const char *s = v->type == YAML_SCALAR_NODE ? (const char *)v->data.scalar.value : NULL;
    if (s != NULL && strcmp(s, "true") == 0)
        *out = 1;
    else if (s != NULL && strcmp(s, "false") == 0)
        *out = 0;
    else {
        rm__policy_report(ld, 0, v, path, "want true or false, got %s",
                          s != NULL ? rm__policy_quoted(q, sizeof(q), s) : rm__policy_type_word(v));
        return 0;
    }
    return 1;
}

static int read_from_headers(loader_t *ld, const yaml_node_t *n, const char *path, rm_jwt_rule_t *r)
{
    static const char *const keys[] = {"name", "prefix", NULL};
    char ep[POLICY_PATH_MAX], cp[POLICY_PATH_MAX];
    size_t cnt;
    int ok = 1;
    if (!rm__policy_list_len(ld, n, path, &cnt) || cnt == 0)
        return cnt == 0;
    if ((r->from_headers = calloc(cnt, sizeof(*r->from_headers))) == NULL) {
        ld->oom = 1;
        return 0;
    }
    r->num_from_headers = cnt;
    for (size_t i = 0; i < cnt; i++) {
        rm_jwt_header_loc_t *h = &r->from_headers[i];
        yaml_node_t *e = rm__policy_node(ld, n->data.sequence.items.start[i]);
        rm__policy_index_path(ep, path, i);
        if (!rm__policy_want_type(ld, e, YAML_MAPPING_NODE, ep) || !rm__policy_check_keys(ld, e, ep, keys, NULL)) {
            ok = 0;
            continue;
        }
        if (rm__policy_map_get(ld, e, "name") == NULL) {
            rm__policy_report(ld, 0, e, ep, "a header location needs a name");
            ok = 0;
            continue;
        }
        if (!read_header_name(ld, e, "name", ep, &h->name))
            ok = 0;
        yaml_node_t *pv = rm__policy_map_get(ld, e, "prefix");
        rm__policy_child_path(cp, ep, "prefix");
        if (pv != NULL && !rm__policy_is_null(pv)) {
            if ((h->prefix = rm__policy_scalar(ld, pv, cp)) == NULL)
                ok = 0;
        } else if ((h->prefix = strdup("")) == NULL) {
            ld->oom = 1;
        }
    }
    return ok;
}

static int read_claim_headers(loader_t *ld, const yaml_node_t *n, const char *path, rm_jwt_rule_t *r)
{
    static const char *const keys[] = {"header", "claim", NULL};
    char ep[POLICY_PATH_MAX], cp[POLICY_PATH_MAX];
    size_t cnt;
    int ok = 1;
    if (!rm__policy_list_len(ld, n, path, &cnt) || cnt == 0)
        return cnt == 0;
    if ((r->output_claim_to_headers = calloc(cnt, sizeof(*r->output_claim_to_headers))) == NULL) {
        ld->oom = 1;
        return 0;
    }
    r->num_output_claim_to_headers = cnt;
    for (size_t i = 0; i < cnt; i++) {
        rm_jwt_claim_header_t *h = &r->output_claim_to_headers[i];
        yaml_node_t *e = rm__policy_node(ld, n->data.sequence.items.start[i]);
        rm__policy_index_path(ep, path, i);
        if (!rm__policy_want_type(ld, e, YAML_MAPPING_NODE, ep) || !rm__policy_check_keys(ld, e, ep, keys, NULL)) {
            ok = 0;
            continue;
        }
        yaml_node_t *cv = rm__policy_map_get(ld, e, "claim");
        if (rm__policy_map_get(ld, e, "header") == NULL || cv == NULL) {
            rm__policy_report(ld, 0, e, ep, "outputClaimToHeaders needs both header and claim");
            ok = 0;
            continue;
        }
        if (!read_header_name(ld, e, "header", ep, &h->header))
            ok = 0;
        rm__policy_child_path(cp, ep, "claim");
        if ((h->claim = rm__policy_scalar(ld, cv, cp)) == NULL || h->claim[0] == '\0') {
            if (h->claim != NULL)
                rm__policy_report(ld, 0, cv, cp, "the claim name is empty");
            ok = 0;
        }
    }
    return ok;
}

static int uri_ok(const char *s)
{
    return (strncmp(s, "https://", 8) == 0 && s[8] != '\0' && s[8] != '/') ||
           (strncmp(s, "http://", 7) == 0 && s[7] != '\0' && s[7] != '/');
}

static int read_jwt_rule(loader_t *ld, const yaml_node_t *n, const char *path, rm_jwt_rule_t *r)
{
    static const char *const keys[] = {"issuer",
                                       "audiences",
                                       "jwksUri",
                                       "jwks_uri",
                                       "jwks",
                                       "fromHeaders",
                                       "fromParams",
                                       "fromCookies",
                                       "outputPayloadToHeader",
                                       "forwardOriginalToken",
                                       "outputClaimToHeaders",
                                       "timeout",
                                       "spaceDelimitedClaims",
                                       NULL};
    char cp[POLICY_PATH_MAX], q[160], err[256];
    int ok = 1;
    yaml_node_t *v;
    if (!rm__policy_want_type(ld, n, YAML_MAPPING_NODE, path))
        return 0;
    if (!rm__policy_check_keys(ld, n, path, keys, NULL))
        ok = 0;
    rm__policy_child_path(cp, path, "issuer");
    if ((v = rm__policy_map_get(ld, n, "issuer")) == NULL || rm__policy_is_null(v)) {
        rm__policy_report(ld, 0, v != NULL ? v : n, cp, "a JWT rule needs an issuer");
        ok = 0;
    } else if ((r->issuer = rm__policy_scalar(ld, v, cp)) == NULL) {
        ok = 0;
    } else if (r->issuer[0] == '\0') {
        rm__policy_report(ld, 0, v, cp, "the issuer is empty");
        ok = 0;
    }
    static const struct {
        const char *key;
        size_t off;
    } lists[] = {
        {"audiences", offsetof(rm_jwt_rule_t, audiences)},
        {"fromParams", offsetof(rm_jwt_rule_t, from_params)},
        {"fromCookies", offsetof(rm_jwt_rule_t, from_cookies)},
        {"spaceDelimitedClaims", offsetof(rm_jwt_rule_t, space_delimited_claims)},
    };
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        if ((v = rm__policy_map_get(ld, n, lists[i].key)) == NULL)
            continue;
        rm__policy_child_path(cp, path, lists[i].key);
        rm_strlist_t *l = (rm_strlist_t *)((char *)r + lists[i].off);
        if (!rm__policy_read_strlist(ld, v, cp, l, VAL_MATCH)) {
            ok = 0;
            continue;
        }
        for (size_t k = 0; k < l->n; k++)
            if (l->v[k][0] == '\0') {
                rm__policy_report(ld, 0, v, cp, "an empty value");
                ok = 0;
            }
    }
    yaml_node_t *jwks = rm__policy_map_get(ld, n, "jwks");
    yaml_node_t *uri = rm__policy_map_get(ld, n, "jwksUri");
    const char *uri_key = "jwksUri";
    if (uri == NULL)
        uri = rm__policy_map_get(ld, n, "jwks_uri"), uri_key = "jwks_uri";
    if (jwks != NULL && rm__policy_is_null(jwks))
        jwks = NULL;
    if (uri != NULL && rm__policy_is_null(uri))
        uri = NULL;
    if (jwks != NULL && uri != NULL) {
        rm__policy_child_path(cp, path, "jwks");
        rm__policy_report(ld, 0, jwks, cp, "set jwks or %s, not both", uri_key);
        ok = 0;
    } else if (jwks != NULL) {
        rm__policy_child_path(cp, path, "jwks");
        rm_jwt_keyset_t *set = NULL;
        if ((r->jwks = rm__policy_scalar(ld, jwks, cp)) == NULL) {
            ok = 0;
        } else if (rm_jwt_keyset_parse(r->jwks, strlen(r->jwks), &set, err, sizeof(err)) != 0) {
            rm__policy_report(ld, 0, jwks, cp, "not a usable JWKS: %s", err);
            ok = 0;
        }
        rm_jwt_keyset_free(set);
    } else if (uri != NULL) {
        rm__policy_child_path(cp, path, uri_key);
        if ((r->jwks_uri = rm__policy_scalar(ld, uri, cp)) == NULL) {
            ok = 0;
        } else if (!uri_ok(r->jwks_uri)) {
            rm__policy_report(ld, 0, uri, cp, "%s is not an http:// or https:// URL",
                              rm__policy_quoted(q, sizeof(q), r->jwks_uri));
            ok = 0;
        }
    } else if (r->issuer != NULL) {
        rm__policy_report(ld, 0, n, path,
                          "not supported: finding the JWKS by OpenID discovery of the issuer; set jwks or jwksUri");
        ok = 0;
    }
    if ((v = rm__policy_map_get(ld, n, "fromHeaders")) != NULL) {
        rm__policy_child_path(cp, path, "fromHeaders");
        if (!read_from_headers(ld, v, cp, r))
            ok = 0;
    }
    if (!read_header_name(ld, n, "outputPayloadToHeader", path, &r->output_payload_to_header))
        ok = 0;
    if ((v = rm__policy_map_get(ld, n, "outputClaimToHeaders")) != NULL) {
        rm__policy_child_path(cp, path, "outputClaimToHeaders");
        if (!read_claim_headers(ld, v, cp, r))
            ok = 0;
    }
    if ((v = rm__policy_map_get(ld, n, "forwardOriginalToken")) != NULL) {
        rm__policy_child_path(cp, path, "forwardOriginalToken");
        if (!read_bool(ld, v, cp, &r->forward_original_token))
            ok = 0;
    }
    if ((v = rm__policy_map_get(ld, n, "timeout")) != NULL && !rm__policy_is_null(v)) {
        rm__policy_child_path(cp, path, "timeout");
        char *t = rm__policy_scalar(ld, v, cp);
        if (t == NULL) {
            ok = 0;
        } else if (rm_duration_parse_ms(t, &r->timeout_ms) != 0 || r->timeout_ms == 0) {
            rm__policy_report(ld, 0, v, cp, "%s is not a duration above zero (\"5s\", \"500ms\")",
                              rm__policy_quoted(q, sizeof(q), t));
            ok = 0;
        }
        free(t);
    }
    return ok;
}

void rm__jwt_rule_clear(rm_jwt_rule_t *r)
{
    free(r->issuer);
    rm__policy_strlist_clear(&r->audiences);
    free(r->jwks);
    free(r->jwks_uri);
    for (size_t i = 0; i < r->num_from_headers; i++) {
        free(r->from_headers[i].name);
        free(r->from_headers[i].prefix);
    }
    free(r->from_headers);
    rm__policy_strlist_clear(&r->from_params);
    rm__policy_strlist_clear(&r->from_cookies);
    free(r->output_payload_to_header);
    for (size_t i = 0; i < r->num_output_claim_to_headers; i++) {
        free(r->output_claim_to_headers[i].header);
        free(r->output_claim_to_headers[i].claim);
    }
    free(r->output_claim_to_headers);
    rm__policy_strlist_clear(&r->space_delimited_claims);
    free(r->jwks_error);
    memset(r, 0, sizeof(*r));
}

void rm__request_authn_clear(rm_request_authn_t *p)
{
    free(p->namespace_);
    free(p->name);
    for (size_t i = 0; i < p->num_match_labels; i++) {
        free(p->match_labels[i].key);
        free(p->match_labels[i].value);
    }
    free(p->match_labels);
    for (size_t i = 0; i < p->num_rules; i++)
        rm__jwt_rule_clear(&p->rules[i]);
    free(p->rules);
    free(p->file);
    memset(p, 0, sizeof(*p));
}

int rm__read_request_authn(loader_t *ld, const yaml_node_t *root, rm_request_authn_t *p)
{
    static const char *const spec_keys[] = {"selector", "jwtRules", "targetRef", "targetRefs", NULL};
    char cp[POLICY_PATH_MAX], q[160];
    int ok = rm__policy_read_metadata(ld, root, &p->namespace_, &p->name, NULL, NULL);
    yaml_node_t *spec = rm__policy_map_get(ld, root, "spec");
    if (spec == NULL || rm__policy_is_null(spec))
        return ok; /* no rules: validates nothing */
    if (!rm__policy_want_type(ld, spec, YAML_MAPPING_NODE, "spec"))
        return 0;
    if (!rm__policy_check_keys(ld, spec, "spec", spec_keys, NULL))
        ok = 0;
    yaml_node_t *v;
    if ((v = rm__policy_map_get(ld, spec, "targetRef")) != NULL ||
        (v = rm__policy_map_get(ld, spec, "targetRefs")) != NULL) {
        rm__policy_report(ld, 0, v, "spec",
                          "not supported: targetRef/targetRefs (Gateway API attachment); use selector");
        ok = 0;
    }
    if (!rm__policy_read_selector(ld, spec, &p->has_selector, &p->match_labels, &p->num_match_labels))
        ok = 0;
    if ((v = rm__policy_map_get(ld, spec, "jwtRules")) == NULL || rm__policy_is_null(v))
        return ok;
    size_t cnt;
    if (!rm__policy_list_len(ld, v, "spec.jwtRules", &cnt))
        return 0;
    if (cnt > JWT_RULES_MAX) {
        rm__policy_report(ld, 0, v, "spec.jwtRules", "more than %d JWT rules", JWT_RULES_MAX);
        return 0;
    }
    if (cnt == 0)
        return ok;
    if ((p->rules = calloc(cnt, sizeof(*p->rules))) == NULL) {
        ld->oom = 1;
        return 0;
    }
    p->num_rules = cnt;
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *e = rm__policy_node(ld, v->data.sequence.items.start[i]);
        rm__policy_index_path(cp, "spec.jwtRules", i);
        if (!read_jwt_rule(ld, e, cp, &p->rules[i])) {
            ok = 0;
            continue;
        }
        for (size_t k = 0; k < i; k++) {
            if (p->rules[k].issuer != NULL && strcmp(p->rules[k].issuer, p->rules[i].issuer) == 0) {
                char ip[POLICY_PATH_MAX];
                rm__policy_child_path(ip, cp, "issuer");
                rm__policy_report(ld, 0, e, ip, "issuer %s is also the issuer of jwtRules[%zu]",
                                  rm__policy_quoted(q, sizeof(q), p->rules[i].issuer), k);
                ok = 0;
                break;
            }
        }
    }
    return ok;
}

int rm__request_auth_key_ok(const char *key, const char **why)
{
    *why = NULL;
    if (strcmp(key, "request.auth.principal") == 0 || strcmp(key, "request.auth.audiences") == 0 ||
        strcmp(key, "request.auth.presenter") == 0)
        return 1;
    if (strncmp(key, "request.auth.claims[", 20) != 0) {
        *why = "unknown key (request.auth.principal, request.auth.audiences, request.auth.presenter and "
               "request.auth.claims[NAME] are the request.auth keys)";
        return 0;
    }
    /* request.auth.claims[a][b]...: one or more non-empty names in brackets, nothing after the last */
    const char *p = key + 19;
    unsigned names = 0;
    while (*p == '[') {
        const char *end = strchr(p + 1, ']');
        if (end == NULL || end == p + 1 || memchr(p + 1, '[', (size_t)(end - p - 1)) != NULL)
            break;
        names++;
        p = end + 1;
    }
    if (*p != '\0' || names == 0) {
        *why = "want request.auth.claims[NAME] or request.auth.claims[NAME][NESTED]... with non-empty names";
        return 0;
    }
    if (names > 16) {
        *why = "more than 16 nested claim names";
        return 0;
    }
    return 1;
}
