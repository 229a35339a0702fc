/* Request targets as logs and spans show them: the value of a query parameter that carries a credential (an OAuth
 * access_token, an API key, a signature) is replaced, so that no log line or exported span holds a secret a client
 * put in the URL. Policies never read the query, so nothing a decision depends on is lost. */
#include "ringmesh/http_path.h"

#include <string.h>
#include <strings.h>

#define RM_REDACTED "REDACTED"

/* case-insensitive: does s[0, len) contain `w`? */
static int contains(const char *s, size_t len, const char *w)
{
    size_t wl = strlen(w);
    for (size_t i = 0; i + wl <= len; i++)
        if (strncasecmp(s + i, w, wl) == 0)
            return 1;
    return 0;
}

int rm_http_param_secret(const char *name, size_t len)
{
    static const char *const parts[] = {"token",      "secret", "passw",   "signature",
                                        "credential", "apikey", "api_key", "api-key"};
    static const char *const whole[] = {"key", "sig", "auth", "authorization", "code"};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        if (contains(name, len, parts[i]))
            return 1;
    for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++)
        if (strlen(whole[i]) == len && strncasecmp(name, whole[i], len) == 0)
            return 1;
    return 0;
}

size_t rm_http_target_redact(const char *target, size_t len, char *out, size_t cap)
{
    size_t o = 0, i = 0;
    if (cap == 0)
        return 0;
    if (target == NULL) {
        out[0] = '\0';
        return 0;
    }
#define PUT(p, n)                                                                                                      \
    do {                                                                                                               \
        size_t n_ = (n) < cap - 1 - o ? (n) : cap - 1 - o;                                                             \
        memcpy(out + o, (p), n_);                                                                                      \
        o += n_;                                                                                                       \
    } while (0)
    const char *q = memchr(target, '?', len);
    size_t path_len = q != NULL ? (size_t)(q - target) : len;
    PUT(target, path_len);
    if (q == NULL)
        goto Exit;
    i = path_len;
    while (i < len) {
        /* target[i] is '?' or '&': the separator, then one parameter up to the next '&' (or a '#') */
        PUT(target + i, 1);
        i++;
        size_t start = i;
        while (i < len && target[i] != '&' && target[i] != '#')
            i++;
        const char *eq = memchr(target + start, '=', i - start);
        if (eq != NULL && rm_http_param_secret(target + start, (size_t)(eq - (target + start)))) {
            PUT(target + start, (size_t)(eq - (target + start)) + 1);
            PUT(RM_REDACTED, sizeof(RM_REDACTED) - 1);
        } else {
            PUT(target + start, i - start);
        }
        if (i < len && target[i] == '#') {
            PUT(target + i, len - i);
            break;
        }
    }
Exit:
#undef PUT
    out[o] = '\0';
    return o;
}
