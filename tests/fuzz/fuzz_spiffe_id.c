/* rm_spiffe_id_parse() and rm_trust_domain_check(): SPIFFE ID syntax.
 *
 * Each call gets an exactly sized copy of the input, so a read past `len` is a heap overflow. The verdicts are
 * compared with a reference written straight from the SPIFFE ID specification's grammar (below), and a parsed ID
 * is checked for what its users rely on: NUL-terminated, len == strlen, "spiffe://" prefix, a non-empty trust
 * domain that itself passes rm_trust_domain_check(), and parsing it again gives the same ID. */
#include <string.h>

#include "fuzz.h"
#include "ringmesh/error.h"
#include "ringmesh/svid.h"

#define SCHEME     "spiffe://"
#define SCHEME_LEN (sizeof(SCHEME) - 1)

/* trust domain: lower-case letters, digits, dots, dashes, underscores; 1..255 of them */
static int reference_trust_domain_ok(const uint8_t *s, size_t n)
{
    if (n == 0 || n > RM_TRUST_DOMAIN_MAX)
        return 0;
    for (size_t i = 0; i != n; ++i)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-' ||
              s[i] == '_'))
            return 0;
    return 1;
}

/* one path segment: letters of both cases, digits, dots, dashes, underscores; not empty, not "." or ".." */
static int reference_segment_ok(const uint8_t *s, size_t n)
{
    if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i != n; ++i)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '.' || s[i] == '-' || s[i] == '_'))
            return 0;
    return 1;
}

/* "spiffe://" trust-domain *("/" segment), at most 2048 bytes in all */
static int reference_id_ok(const uint8_t *s, size_t n)
{
    const uint8_t *p, *end = s + n, *slash;

    if (n > RM_SPIFFE_ID_MAX || n < SCHEME_LEN || memcmp(s, SCHEME, SCHEME_LEN) != 0)
        return 0;
    p = s + SCHEME_LEN;
    slash = memchr(p, '/', (size_t)(end - p));
    if (!reference_trust_domain_ok(p, (size_t)((slash != NULL ? slash : end) - p)))
        return 0;
    while (slash != NULL) {
        p = slash + 1;
        slash = memchr(p, '/', (size_t)(end - p));
        if (!reference_segment_ok(p, (size_t)((slash != NULL ? slash : end) - p)))
            return 0;
    }
    return 1;
}

static int is_spiffe_error(int ret)
{
    return ret <= RM_ERR_SPIFFE_SCHEME && ret >= RM_ERR_SPIFFE_USERINFO_PORT;
}

static void check_parse(const uint8_t *data, size_t size)
{
    char *copy = (char *)rm_fuzz_memdup(data, size);
    rm_spiffe_id_t *id = malloc(sizeof(*id)), *again = malloc(sizeof(*again));
    int ret;

    RM_FUZZ_CHECK(id != NULL && again != NULL);
    memset(id, 0xa5, sizeof(*id)); /* the parser must write the terminator itself */
    ret = rm_spiffe_id_parse(copy, size, id);
    RM_FUZZ_CHECK(rm_spiffe_id_parse(copy, size, NULL) == ret); /* `out` does not change the verdict */
    RM_FUZZ_CHECK((ret == 0) == reference_id_ok(data, size));
    if (ret == 0) {
        RM_FUZZ_CHECK(id->len == size && id->len <= RM_SPIFFE_ID_MAX);
        RM_FUZZ_CHECK(id->str[id->len] == '\0' && strlen(id->str) == id->len);
        RM_FUZZ_CHECK(memcmp(id->str, data, size) == 0);
        RM_FUZZ_CHECK(strncmp(id->str, SCHEME, SCHEME_LEN) == 0);
        RM_FUZZ_CHECK(id->td_len > 0 && id->td_len <= RM_TRUST_DOMAIN_MAX && SCHEME_LEN + id->td_len <= id->len);
        RM_FUZZ_CHECK(rm_trust_domain_check(id->str + SCHEME_LEN, id->td_len) == 0);
        RM_FUZZ_CHECK(id->str[SCHEME_LEN + id->td_len] == '\0' || id->str[SCHEME_LEN + id->td_len] == '/');
        RM_FUZZ_CHECK(rm_spiffe_id_parse(id->str, id->len, again) == 0);
        RM_FUZZ_CHECK(again->len == id->len && again->td_len == id->td_len && strcmp(again->str, id->str) == 0);
    } else {
        RM_FUZZ_CHECK(is_spiffe_error(ret));
        RM_FUZZ_CHECK(rm_strerror(ret) != NULL && rm_strerror(ret)[0] != '\0');
    }
    free(again);
    free(id);
    free(copy);
}

static void check_trust_domain(const uint8_t *data, size_t size)
{
    char *copy = (char *)rm_fuzz_memdup(data, size);
    int ret = rm_trust_domain_check(copy, size);

    RM_FUZZ_CHECK((ret == 0) == reference_trust_domain_ok(data, size));
    if (ret != 0)
        RM_FUZZ_CHECK(is_spiffe_error(ret));
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_parse(data, size);
    check_trust_domain(data, size);
    /* The input is most often a whole ID; its part after the scheme exercises the trust-domain rules too. */
    if (size >= SCHEME_LEN && memcmp(data, SCHEME, SCHEME_LEN) == 0) {
        const uint8_t *td = data + SCHEME_LEN, *slash = memchr(td, '/', size - SCHEME_LEN);
        check_trust_domain(td, slash != NULL ? (size_t)(slash - td) : size - SCHEME_LEN);
    }
    return 0;
}
