/* Principals and the mesh's trust domains, as Istio reads them (its trust-domain migration): a principal naming
 * "cluster.local", the mesh's trust domain or one of its aliases stands for the same workload in each of them, so
 * policies keep working when the trust domain changes. This runs when policies are compiled; a decision only
 * compares strings. */
#include "ringmesh/policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ISTIO_LOCAL_TRUST_DOMAIN "cluster.local"

/* Istio's loose comparison of a principal's trust domain `a` with a configured one `b`: equal, either "*", or one a
 * prefix ("x*") or suffix ("*x") pattern the other matches. */
static int prefix_pattern_matches(const char *s, const char *pattern)
{
    size_t pl = strlen(pattern);
    return pl > 0 && pattern[pl - 1] == '*' && strncmp(s, pattern, pl - 1) == 0;
}

static int suffix_pattern_matches(const char *s, const char *pattern)
{
    size_t pl = strlen(pattern), sl = strlen(s);
    return pattern[0] == '*' && sl >= pl - 1 && strcmp(s + sl - (pl - 1), pattern + 1) == 0;
}

static int trust_domain_like(const char *a, const char *b)
{
    return strcmp(a, b) == 0 || strcmp(b, "*") == 0 || prefix_pattern_matches(a, b) || prefix_pattern_matches(b, a) ||
           suffix_pattern_matches(a, b) || suffix_pattern_matches(b, a);
}

static int add_unique(char **out, size_t *n, char *s)
{
    if (s == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < *n; i++)
        if (strcmp(out[i], s) == 0) {
            free(s);
            return 0;
        }
    out[(*n)++] = s;
    return 0;
}

int rm_authz_principal_expand(const rm_authz_engine_opts_t *opts, const char *principal, char ***out, size_t *num)
{
    const char *p = strncmp(principal, "spiffe://", 9) == 0 ? principal + 9 : principal, *rest;
    size_t segments = 1, num_tds = 1 + opts->num_trust_domain_aliases, n = 0;
    char **v = NULL, td[256];
    int ret = -ENOMEM;

    *out = NULL;
    *num = 0;
    if ((v = calloc(num_tds + 1, sizeof(*v))) == NULL)
        return -ENOMEM;
    for (const char *q = p; *q != '\0'; q++)
        segments += *q == '/';
    rest = strchr(p, '/');
    /* Only "TRUST-DOMAIN/ns/NS/sa/SA" names a trust domain ("*" as the trust domain matches every one): anything
     * else stays as written, as does a principal whose trust domain is none of the mesh's. */
    if (opts->trust_domain == NULL || segments != 5 || rest == NULL || (size_t)(rest - p) >= sizeof(td))
        goto AsWritten;
    memcpy(td, p, (size_t)(rest - p));
    td[rest - p] = '\0';
    if (strcmp(td, "*") == 0)
        goto AsWritten;
    int known = strcmp(td, ISTIO_LOCAL_TRUST_DOMAIN) == 0 || trust_domain_like(td, opts->trust_domain);
    for (size_t i = 0; !known && i < opts->num_trust_domain_aliases; i++)
        known = trust_domain_like(td, opts->trust_domain_aliases[i]);
    if (!known)
        goto AsWritten;
    for (size_t i = 0; i < num_tds; i++) {
        const char *to = i == 0 ? opts->trust_domain : opts->trust_domain_aliases[i - 1];
        char *s;
        /* a "*x" trust domain that already matches this one stays a pattern, rather than one name per domain */
        if (suffix_pattern_matches(to, td)) {
            s = strdup(p);
        } else if ((s = malloc(strlen(to) + strlen(rest) + 1)) != NULL) {
            strcpy(s, to);
            strcat(s, rest);
        }
        if (add_unique(v, &n, s) != 0)
            goto Exit;
    }
    ret = 0;
    goto Exit;
AsWritten:
    if ((v[0] = strdup(principal)) == NULL)
        goto Exit;
    n = 1;
    ret = 0;
Exit:
    if (ret != 0) {
        for (size_t i = 0; i < n; i++)
            free(v[i]);
        free(v);
        return ret;
    }
    *out = v;
    *num = n;
    return 0;
}
