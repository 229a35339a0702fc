/* SPIFFE ID syntax, per the SPIFFE ID specification: "spiffe://" trust-domain path, where the trust domain is
 * [a-z0-9._-]{1,255} and the path is zero or more "/" segment, each segment [A-Za-z0-9._-]+ and not "." or "..".
 * No userinfo, port, query, fragment or percent-encoding anywhere. */
#include "ringmesh/svid.h"

#include <string.h>

#include "ringmesh/error.h"

#define SCHEME     "spiffe://"
#define SCHEME_LEN (sizeof(SCHEME) - 1)

static int is_td_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static int is_path_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
           c == '_';
}

/* Checks the authority part. '@' and ':' get their own code because they mean a URI feature the spec forbids
 * (userinfo, port) rather than a stray character. */
static int check_authority(const char *td, size_t len)
{
    size_t i;

    for (i = 0; i != len; ++i)
        if (td[i] == '@' || td[i] == ':')
            return RM_ERR_SPIFFE_USERINFO_PORT;
    return rm_trust_domain_check(td, len);
}

static int check_path(const char *path, size_t len)
{
    size_t i = 0;

    /* path is empty or starts with '/' (the authority ends at the first '/') */
    while (i != len) {
        size_t seg_start = ++i, seg_len; /* skip the '/' */
        while (i != len && path[i] != '/')
            ++i;
        seg_len = i - seg_start;
        if (seg_len == 0)
            return RM_ERR_SPIFFE_EMPTY_SEGMENT;
        if ((seg_len == 1 && path[seg_start] == '.') ||
            (seg_len == 2 && path[seg_start] == '.' && path[seg_start + 1] == '.'))
            return RM_ERR_SPIFFE_DOT_SEGMENT;
        for (size_t j = seg_start; j != i; ++j)
            if (!is_path_char((unsigned char)path[j]))
                return RM_ERR_SPIFFE_PATH_CHARS;
    }
    return 0;
}

int rm_trust_domain_check(const char *td, size_t len)
{
    size_t i;

    if (len == 0)
        return RM_ERR_SPIFFE_EMPTY_TD;
    if (len > RM_TRUST_DOMAIN_MAX)
        return RM_ERR_SPIFFE_TD_TOO_LONG;
    for (i = 0; i != len; ++i)
        if (!is_td_char((unsigned char)td[i]))
            return RM_ERR_SPIFFE_TD_CHARS;
    return 0;
}

int rm_spiffe_id_parse(const char *s, size_t len, rm_spiffe_id_t *out)
{
    const char *td, *slash;
    size_t td_len;
    int ret;

    if (out != NULL) {
        out->str[0] = '\0';
        out->len = 0;
        out->td_len = 0;
    }
    if (len > RM_SPIFFE_ID_MAX) {
        ret = RM_ERR_SPIFFE_TOO_LONG;
        goto Exit;
    }
    if (len < SCHEME_LEN || memcmp(s, SCHEME, SCHEME_LEN) != 0) {
        ret = RM_ERR_SPIFFE_SCHEME;
        goto Exit;
    }
    /* A '?' or '#' anywhere starts a query or fragment; neither character is allowed elsewhere either. */
    if (memchr(s, '?', len) != NULL || memchr(s, '#', len) != NULL) {
        ret = RM_ERR_SPIFFE_QUERY_FRAGMENT;
        goto Exit;
    }
    td = s + SCHEME_LEN;
    slash = memchr(td, '/', len - SCHEME_LEN);
    td_len = slash != NULL ? (size_t)(slash - td) : len - SCHEME_LEN;
    if ((ret = check_authority(td, td_len)) != 0)
        goto Exit;
    if ((ret = check_path(td + td_len, len - SCHEME_LEN - td_len)) != 0)
        goto Exit;

    if (out != NULL) {
        memcpy(out->str, s, len);
        out->str[len] = '\0';
        out->len = len;
        out->td_len = td_len;
    }
    ret = 0;

Exit:
    return ret;
}

int rm_spiffe_id_has_path(const rm_spiffe_id_t *id)
{
    return id->len > SCHEME_LEN + id->td_len;
}

int rm_spiffe_workload_id_parse(const char *s, size_t len, rm_spiffe_id_t *out)
{
    const char *slash;
    int ret;

    if ((ret = rm_spiffe_id_parse(s, len, out)) != 0)
        return ret;
    /* parsed, so s starts with the scheme and the path, if any, starts at the first '/' after it */
    slash = memchr(s + SCHEME_LEN, '/', len - SCHEME_LEN);
    if (slash == NULL) {
        if (out != NULL) {
            out->str[0] = '\0';
            out->len = out->td_len = 0;
        }
        return RM_ERR_SVID_NO_PATH;
    }
    return 0;
}
