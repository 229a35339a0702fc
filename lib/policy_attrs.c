/* The attributes of Istio's AuthorizationPolicy beyond the first ones (policy_engine_internal.h): path templates,
 * the service account and trust domain of a peer's SPIFFE ID, and remote.ip from X-Forwarded-For. Nothing here
 * allocates on the request path. */
#include "ringmesh/policy.h"
#include "policy_engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Left to right: literal text and {*} segments are matched in turn; {**}, the last operator, takes whatever lies
 * between them and the literal text that ends the template. Linear in the path. */
int rm__policy_template_match(const char *tpl, size_t tlen, const char *path, size_t plen)
{
    size_t t = 0, p = 0;
    while (t < tlen) {
        if (tlen - t >= 4 && memcmp(tpl + t, "{**}", 4) == 0) {
            /* the last operator: what follows is literal text, which must end the path */
            size_t rest = tlen - t - 4;
            if (plen - p < rest)
                return 0;
            return memcmp(tpl + t + 4, path + plen - rest, rest) == 0;
        }
        if (tlen - t >= 3 && memcmp(tpl + t, "{*}", 3) == 0) {
            size_t n = 0;
            while (p + n < plen && path[p + n] != '/')
                n++;
            if (n == 0)
                return 0;
            p += n;
            t += 3;
            continue;
        }
        if (p >= plen || tpl[t] != path[p])
            return 0;
        t++, p++;
    }
    return p == plen;
}

int rm__policy_principal_parts(const char *p, size_t len, const char **sa, size_t *sa_len, const char **td,
                               size_t *td_len)
{
    const char *slash = memchr(p, '/', len);
    if (slash == NULL)
        return 0;
    *td = p;
    *td_len = (size_t)(slash - p);
    /* the rest must be ns/NS/sa/SA: four segments, the first and third literal, the others not empty */
    const char *r = slash + 1, *end = p + len;
    size_t rl = (size_t)(end - r);
    if (rl < 8 || memcmp(r, "ns/", 3) != 0)
        return 0;
    const char *ns_end = memchr(r + 3, '/', (size_t)(end - (r + 3)));
    if (ns_end == NULL || ns_end == r + 3 || (size_t)(end - ns_end) < 5 || memcmp(ns_end, "/sa/", 4) != 0)
        return 0;
    if (memchr(ns_end + 4, '/', (size_t)(end - (ns_end + 4))) != NULL || ns_end + 4 == end)
        return 0;
    *sa = r;
    *sa_len = rl;
    return 1;
}

char *rm__policy_service_account_key(const char *v, const char *policy_ns)
{
    const char *slash = strchr(v, '/');
    size_t n = strlen(v) + strlen(policy_ns) + 10;
    char *s = malloc(n);
    if (s == NULL)
        return NULL;
    if (slash == NULL)
        snprintf(s, n, "ns/%s/sa/%s", policy_ns, v);
    else
        snprintf(s, n, "ns/%.*s/sa/%s", (int)(slash - v), v, slash + 1);
    return s;
}

/* Calls back each X-Forwarded-For entry of the request in order; stops when `want` (0-based) is reached. Returns
 * the number of entries seen. */
static size_t xff_entries(const rm_http_request_t *r, size_t want, const char **ev, size_t *elen)
{
    size_t n = 0;
    for (size_t i = 0; i < r->num_headers; i++) {
        const rm_http_header_t *h = &r->headers[i];
        if (h->name_len != 15 || strncasecmp(h->name, "x-forwarded-for", 15) != 0)
            continue;
        const char *v = h->value, *end = h->value + h->value_len;
        for (;;) {
            const char *comma = memchr(v, ',', (size_t)(end - v));
            const char *e = comma != NULL ? comma : end, *b = v;
            while (b < e && (*b == ' ' || *b == '\t'))
                b++;
            const char *t = e;
            while (t > b && (t[-1] == ' ' || t[-1] == '\t'))
                t--;
            if (n == want) {
                *ev = b;
                *elen = (size_t)(t - b);
            }
            n++;
            if (comma == NULL)
                break;
            v = comma + 1;
        }
    }
    return n;
}

int rm__policy_xff_remote_ip(const rm_http_request_t *r, uint32_t num_trusted_proxies, uint8_t out[16])
{
    const char *v = NULL;
    size_t len = 0;
    char buf[64];
    if (r == NULL || num_trusted_proxies == 0)
        return 0;
    size_t total = xff_entries(r, SIZE_MAX, &v, &len);
    if (total < num_trusted_proxies)
        return 0; /* fewer addresses than trusted proxies: Istio falls back to the connection's source */
    xff_entries(r, total - num_trusted_proxies, &v, &len);
    if (v == NULL || len == 0 || len >= sizeof(buf))
        return 0;
    memcpy(buf, v, len);
    buf[len] = '\0';
    return rm_authz_ip_parse(buf, out) == 0;
}
