/* RequestAuthentication at request time (ringmesh/request_authn.h): finding the token, choosing the rule of its
 * issuer, verifying it, and the claims as the engine and outputClaimToHeaders read them. */
#include "ringmesh/request_authn.h"
#include "ringmesh/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#define CLOCK_SKEW 60 /* seconds, Envoy's default for exp and nbf */

/* Reasons are for the log: one cut short is still useful, so truncation is intended. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

int rm_request_authn_cfg_new(const rm_request_authn_t *const *ras, size_t num, rm_request_authn_cfg_t **out)
{
    size_t n = 0;
    *out = NULL;
    for (size_t i = 0; i < num; i++)
        n += ras[i]->num_rules;
    if (n == 0)
        return 0;
    rm_request_authn_cfg_t *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL || (cfg->rules = calloc(n, sizeof(*cfg->rules))) == NULL) {
        free(cfg);
        return -ENOMEM;
    }
    for (size_t i = 0; i < num; i++) {
        for (size_t k = 0; k < ras[i]->num_rules; k++) {
            rm_authn_rule_t *ar = &cfg->rules[cfg->num_rules++];
            const rm_jwt_rule_t *jr = &ras[i]->rules[k];
            char err[200];
            ar->rule = jr;
            if (jr->jwks == NULL) {
                snprintf(ar->jwks_error, sizeof(ar->jwks_error), "no JWKS for issuer %s: %s", jr->issuer,
                         jr->jwks_error != NULL ? jr->jwks_error : "its jwksUri has not been fetched");
                continue;
            }
            int ret = rm_jwt_keyset_parse(jr->jwks, strlen(jr->jwks), &ar->keys, err, sizeof(err));
            if (ret == -ENOMEM) {
                rm_request_authn_cfg_free(cfg);
                return ret;
            }
            if (ret != 0)
                snprintf(ar->jwks_error, sizeof(ar->jwks_error), "the JWKS of issuer %s is not usable: %s", jr->issuer,
                         err);
        }
    }
    *out = cfg;
    return 0;
}

void rm_request_authn_cfg_free(rm_request_authn_cfg_t *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->num_rules; i++)
        rm_jwt_keyset_free(cfg->rules[i].keys);
    free(cfg->rules);
    free(cfg);
}

void rm_authn_result_clear(rm_authn_result_t *r)
{
    rm_jwt_user_clear(&r->token);
    memset(r, 0, sizeof(*r));
}

/* ---- locations ---------------------------------------------------------------------------------------------- */

typedef struct st_found_t {
    const char *tok;
    size_t len;
    int kind; /* 0 header, 1 param, 2 cookie */
    const char *name;
    size_t name_len;
} found_t;

static const rm_http_header_t *find_header(const rm_http_request_t *req, const char *name, size_t from)
{
    size_t nl = strlen(name);
    for (size_t i = from; i < req->num_headers; i++)
        if (req->headers[i].name_len == nl && strncasecmp(req->headers[i].name, name, nl) == 0)
            return &req->headers[i];
    return NULL;
}

static int from_header(const rm_http_request_t *req, const char *name, const char *prefix, int prefix_icase, found_t *f)
{
    size_t pl = strlen(prefix);
    for (const rm_http_header_t *h = find_header(req, name, 0); h != NULL;
         h = find_header(req, name, (size_t)(h - req->headers) + 1)) {
        if (h->value_len <= pl ||
            (prefix_icase ? strncasecmp(h->value, prefix, pl) : strncmp(h->value, prefix, pl)) != 0)
            continue;
        f->tok = h->value + pl, f->len = h->value_len - pl, f->kind = 0, f->name = name, f->name_len = strlen(name);
        while (f->len > 0 && (f->tok[0] == ' ' || f->tok[0] == '\t'))
            f->tok++, f->len--;
        while (f->len > 0 && (f->tok[f->len - 1] == ' ' || f->tok[f->len - 1] == '\t'))
            f->len--;
        return f->len > 0;
    }
    return 0;
}

static int from_param(const rm_http_request_t *req, const char *name, found_t *f)
{
    const char *q = req->path != NULL ? memchr(req->path, '?', req->path_len) : NULL;
    if (q == NULL)
        return 0;
    const char *p = q + 1, *end = req->path + req->path_len;
    size_t nl = strlen(name);
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp != NULL ? amp : end;
        if ((size_t)(stop - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
            f->tok = p + nl + 1, f->len = (size_t)(stop - p) - nl - 1, f->kind = 1, f->name = name, f->name_len = nl;
            return f->len > 0;
        }
        p = stop + 1;
    }
    return 0;
}

static int from_cookie(const rm_http_request_t *req, const char *name, found_t *f)
{
    size_t nl = strlen(name);
    for (const rm_http_header_t *h = find_header(req, "cookie", 0); h != NULL;
         h = find_header(req, "cookie", (size_t)(h - req->headers) + 1)) {
        const char *p = h->value, *end = h->value + h->value_len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *stop = semi != NULL ? semi : end;
            if ((size_t)(stop - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
                f->tok = p + nl + 1, f->len = (size_t)(stop - p) - nl - 1, f->kind = 2, f->name = name;
                f->name_len = nl;
                return f->len > 0;
            }
            p = stop;
        }
    }
    return 0;
}

static int rule_has_own_locations(const rm_jwt_rule_t *r)
{
    return r->num_from_headers > 0 || r->from_params.n > 0 || r->from_cookies.n > 0;
}

/* The first token in one of rule r's locations. */
static int find_token(const rm_jwt_rule_t *r, const rm_http_request_t *req, found_t *f)
{
    if (!rule_has_own_locations(r))
        return from_header(req, "authorization", "Bearer ", 1, f) || from_param(req, "access_token", f);
    for (size_t i = 0; i < r->num_from_headers; i++)
        if (from_header(req, r->from_headers[i].name, r->from_headers[i].prefix, 0, f))
            return 1;
    for (size_t i = 0; i < r->from_params.n; i++)
        if (from_param(req, r->from_params.v[i], f))
            return 1;
    for (size_t i = 0; i < r->from_cookies.n; i++)
        if (from_cookie(req, r->from_cookies.v[i], f))
            return 1;
    return 0;
}

/* Whether rule r reads tokens from the location where f was found. */
static int rule_reads(const rm_jwt_rule_t *r, const found_t *f)
{
    if (!rule_has_own_locations(r))
        return (f->kind == 0 && f->name_len == 13 && strncasecmp(f->name, "authorization", 13) == 0) ||
               (f->kind == 1 && strcmp(f->name, "access_token") == 0);
    if (f->kind == 0) {
        for (size_t i = 0; i < r->num_from_headers; i++)
            if (strcasecmp(r->from_headers[i].name, f->name) == 0)
                return 1;
    } else {
        const rm_strlist_t *l = f->kind == 1 ? &r->from_params : &r->from_cookies;
        for (size_t i = 0; i < l->n; i++)
            if (strcmp(l->v[i], f->name) == 0)
                return 1;
    }
    return 0;
}

int rm_request_authn_check(const rm_request_authn_cfg_t *cfg, const rm_http_request_t *req, int64_t now,
                           rm_authn_result_t *r)
{
    found_t f = {0};
    int found = 0, ret;
    char err[200];

    memset(r, 0, sizeof(*r));
    for (size_t i = 0; cfg != NULL && i < cfg->num_rules && !found; i++)
        found = find_token(cfg->rules[i].rule, req, &f);
    if (!found)
        return 0; /* RM_AUTHN_NO_TOKEN */
    r->outcome = RM_AUTHN_INVALID;
    if ((ret = rm_jwt_user_decode(f.tok, f.len, &r->token, err, sizeof(err))) != 0) {
        if (ret == -ENOMEM)
            return ret;
        snprintf(r->reason, sizeof(r->reason), "%s", err);
        return 0;
    }
    const rm_authn_rule_t *ar = NULL;
    for (size_t i = 0; i < cfg->num_rules && ar == NULL; i++)
        if (r->token.issuer != NULL && strcmp(cfg->rules[i].rule->issuer, r->token.issuer) == 0 &&
            rule_reads(cfg->rules[i].rule, &f))
            ar = &cfg->rules[i];
    if (ar == NULL) {
        snprintf(r->reason, sizeof(r->reason), "the token's issuer is not configured for the %s it came in",
                 f.kind == 0   ? "header"
                 : f.kind == 1 ? "query parameter"
                               : "cookie");
        rm_jwt_user_clear(&r->token);
        return 0;
    }
    if (ar->keys == NULL) {
        snprintf(r->reason, sizeof(r->reason), "%s", ar->jwks_error);
        rm_jwt_user_clear(&r->token);
        return 0;
    }
    rm_jwt_user_check_t c = {.issuer = ar->rule->issuer,
                             .audiences = (const char *const *)ar->rule->audiences.v,
                             .num_audiences = ar->rule->audiences.n,
                             .now = now,
                             .skew = CLOCK_SKEW};
    if ((ret = rm_jwt_user_verify(&r->token, ar->keys, &c, err, sizeof(err))) != 0) {
        if (ret == -ENOMEM)
            return ret;
        snprintf(r->reason, sizeof(r->reason), "%s", err);
        rm_jwt_user_clear(&r->token);
        return 0;
    }
    r->outcome = RM_AUTHN_VALID;
    r->rule = ar;
    r->auth.principal = r->token.principal;
    r->auth.audiences = r->token.audiences;
    r->auth.num_audiences = r->token.num_audiences;
    r->auth.presenter = r->token.presenter;
    r->auth.claims = r->token.payload;
    r->auth.space_delimited_claims = &ar->rule->space_delimited_claims;
    r->token_header = f.kind == 0 ? f.name : NULL;
    r->token_text = f.tok;
    r->token_len = f.len;
    return 0;
}

int rm_authn_claim_text(const rm_authn_result_t *r, const char *name, char *buf, size_t len)
{
    const json_t *v = r->token.payload;
    const char *p = name;
    int n;
    while (v != NULL) {
        const char *dot = strchr(p, '.');
        size_t l = dot != NULL ? (size_t)(dot - p) : strlen(p);
        /* a claim whose own name has a dot ("a.b") wins over the nested one, as in Envoy */
        const json_t *whole = json_object_get(v, p);
        if (whole != NULL) {
            v = whole;
            break;
        }
        v = json_is_object(v) ? json_object_getn(v, p, l) : NULL;
        if (dot == NULL)
            break;
        p = dot + 1;
    }
    if (v == NULL)
        return -1;
    if (json_is_string(v)) {
        n = snprintf(buf, len, "%s", json_string_value(v));
    } else if (json_is_integer(v)) {
        n = snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    } else if (json_is_boolean(v)) {
        n = snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
    } else if (json_is_array(v)) {
        size_t i, o = 0;
        const json_t *item;
        buf[0] = '\0';
        json_array_foreach(v, i, item)
        {
            if (!json_is_string(item))
                continue;
            int k = snprintf(buf + o, len - o, "%s%s", o > 0 ? "," : "", json_string_value(item));
            if (k < 0 || (size_t)k >= len - o)
                return -1;
            o += (size_t)k;
        }
        n = (int)o;
    } else {
        return -1;
    }
    return n < 0 || (size_t)n >= len ? -1 : n;
}
