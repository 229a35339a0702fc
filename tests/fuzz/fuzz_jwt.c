/* rm_jwt_verify() and rm_jwks_parse(): a ServiceAccount token checked against a JWKS, and a JWKS document.
 *
 * Every input is used three ways:
 *  - as a token, verified against a fixed JWKS (the EC P-256 key "py-ec" and the RSA-2048 key "py-rsa" of
 *    tests/data/jwt/jwks.json) with a fixed issuer, audience "ringmesh" and opts.now (tests/data/jwt/now);
 *  - as a JWKS document; one that parses then verifies two valid tokens (ES256 by "py-ec", RS256 by "py-rsa"),
 *    which can only be accepted or fail on their key or signature, never on what they claim;
 *  - as a claims set: a JSON object is signed ES256 by "py-ec" (tests/data/jwt/ec-key.pem) and verified, so the
 *    claim checks that sit behind the signature are fuzzed too; such a token can only fail on its claims.
 *
 * Checked on every call: the return value is one of the documented codes; the message is NUL-terminated inside
 * its buffer, empty on success and a sentence on failure, and never holds the token's signature; a failed
 * verification leaves the claims zeroed, a successful one fills them with what the rules allow; a failed parse
 * gives no JWKS, a successful one 1 to 64 keys. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "ringmesh/error.h"
#include "ringmesh/jwt.h"

#define ERR_LEN   512
#define NOW       1800000000 /* tests/data/jwt/now */
#define ISSUER    "https://kubernetes.default.svc.cluster.local"
#define AUDIENCE  "ringmesh"
#define TOKEN_MAX (16u << 10)
#define SHOWN_MAX 64 /* a claim value quoted in a message is cut to this many bytes */

/* tests/data/jwt/jwks.json: its two usable keys */
static const char JWKS_JSON[] =
    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"Op4E_Muzjwz-4HvFMckSbNjaYvCKqPxaK90e-efaFTY\","
    "\"y\":\"Vpk3_SRnmYC5sT9Kp7m1yqKEQTyHVt5qLeF29d3syK8\",\"kid\":\"py-ec\",\"use\":\"sig\",\"alg\":\"ES256\"},"
    "{\"kty\":\"RSA\",\"key_ops\":[\"verify\"],\"n\":\"x0ASW13gzyRkjSfg12tbNdzWL3t0EZvqvKIWWgxmtvGLZ8jb7VEa1Cp48SfHsa"
    "prZQ2PZMbk47loYmqJPPiJwoAZrBeVrepWpRqd7hHG4XckjbFICrRfLsEi_qCzzhT6y9W0xdOVvthNuyZlMPjtiTOmetWJUXAdc8PrGOTiBPi8Z"
    "uVWiGnlpjDq69aCewkqMKohEGovx0MiiZabpC6Rdqai-v7aENjZkdZSGDRPEnbB5Qn6BFFHIzOxaKnk4sI0F-wtYLC4N9ChaNYW-jJfpiM880HCR"
    "6DADqip0P1pQceGxPp-yDmiVuwHo80t3TexB3LaWlCeTDon4p1CaUiBCQ\",\"e\":\"AQAB\",\"kid\":\"py-rsa\",\"use\":\"sig\","
    "\"alg\":\"RS256\"}]}";

/* tests/data/jwt/ec-key.pem: the private half of "py-ec" (a test key) */
static const char EC_KEY_PEM[] = "-----BEGIN PRIVATE KEY-----\n"
                                 "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgiyRA6PBceSGOWWgL\n"
                                 "9ij0L0uPzxmcMmF9C5XKLr8JyiKhRANCAAQ6ngT8y7OPDP7ge8UxyRJs2Npi8Iqo\n"
                                 "/For3R7559oVNlaZN/0kZ5mAubE/Sqe5tcqihEE8h1beai3hdvXd7Miv\n"
                                 "-----END PRIVATE KEY-----\n";

/* tests/data/jwt/rs256.jwt: valid at NOW, signed by "py-rsa" */
static const char RS256_TOKEN[] =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InB5LXJzYSIsInR5cCI6IkpXVCJ9."
    "eyJhdWQiOlsicmluZ21lc2giXSwiZXhwIjoxODAwMDAzNjAwLCJpYXQiOjE3OTk5OTk5NDAsImlzcyI6Imh0dHBzOi8va3ViZXJuZXRlcy5kZW"
    "ZhdWx0LnN2Yy5jbHVzdGVyLmxvY2FsIiwia3ViZXJuZXRlcy5pbyI6eyJuYW1lc3BhY2UiOiJzaG9wIiwicG9kIjp7Im5hbWUiOiJvcmRlcnMt"
    "N2Q5ZjhiNmM1LXgyeDlrIiwidWlkIjoiMGM5YTNiMmUtNWQxZi00YTdlLTliOGMtMmY2ZDRlMWE3YzMwIn0sInNlcnZpY2VhY2NvdW50Ijp7Im"
    "5hbWUiOiJvcmRlcnMiLCJ1aWQiOiI1ZjFlMmQzYy00YjVhLTQ5NjgtODc3Ni1hNWI0YzNkMmUxZjAifX0sIm5iZiI6MTc5OTk5OTk0MCwic3Vi"
    "Ijoic3lzdGVtOnNlcnZpY2VhY2NvdW50OnNob3A6b3JkZXJzIn0."
    "HeZ63DfJ9JIRgv9HGBUop-WGVCtcA8bgzEm0OeUlPfCin2PiRjsvOf144piZFjkZKA1LTUXM6eHd4_OA0Tfth45rnEMVOG2rXXsrkvrCNAB42Ja"
    "-YflRL4Jk2PhqEBRzWAmbNUKD4WvPWwL76dpbfkpxD9sjVTUkz_24BQayse10yvaCzLx0hYAsEUHOVK52ML0WjGl3pOgPbf5BrOYDL_EPcNa3uf"
    "cTy9ypmUkd5YIX2k8qP_6m2DVz-RoQK_7khBnL0gtZk4cluRIyE202LaYVRhhnP4Y-7Jj-qBHHCYjzsFmC3soN3t6nn8PO4lWv8403kVIud0-Ej"
    "LxwtGYm5g";

/* the claims of the fixtures, for the ES256 token signed at start-up */
static const char VALID_CLAIMS[] =
    "{\"aud\":[\"ringmesh\"],\"exp\":1800003600,\"iat\":1799999940,\"nbf\":1799999940,"
    "\"iss\":\"https://kubernetes.default.svc.cluster.local\",\"sub\":\"system:serviceaccount:shop:orders\","
    "\"kubernetes.io\":{\"namespace\":\"shop\",\"serviceaccount\":{\"name\":\"orders\"},"
    "\"pod\":{\"name\":\"orders-7d9f8b6c5-x2x9k\",\"uid\":\"0c9a3b2e-5d1f-4a7e-9b8c-2f6d4e1a7c30\"}}}";

static rm_jwks_t *fixed_jwks;
static char *es256_token;

static void release(void)
{
    rm_jwks_free(fixed_jwks);
    fixed_jwks = NULL;
    free(es256_token);
    es256_token = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[ERR_LEN];

    (void)argc;
    (void)argv;
    RM_FUZZ_CHECK(rm_jwks_parse(JWKS_JSON, strlen(JWKS_JSON), &fixed_jwks, err, sizeof(err)) == 0);
    RM_FUZZ_CHECK(rm_jwks_num_keys(fixed_jwks) == 2);
    RM_FUZZ_CHECK(rm_jwt_sign_es256(EC_KEY_PEM, strlen(EC_KEY_PEM), "py-ec", VALID_CLAIMS, &es256_token) == 0);
    atexit(release); /* what lives as long as the process is freed at its end */
    return 0;
}

static void opts_fixed(rm_jwt_verify_opts_t *opts)
{
    rm_jwt_verify_opts_init(opts);
    opts->issuer = ISSUER;
    opts->audience = AUDIENCE;
    opts->now = NOW;
}

static int all_zero(const void *p, size_t len)
{
    const uint8_t *b = p;

    for (size_t i = 0; i != len; ++i)
        if (b[i] != 0)
            return 0;
    return 1;
}

static int is_dns_label(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
        return 0;
    for (size_t i = 0; i != len; ++i)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

/* dot-separated DNS-1123 labels (without their 63-byte bound), at most 253 bytes */
static int is_dns_subdomain(const char *s)
{
    size_t len = strlen(s), start = 0;

    if (len == 0 || len > 253)
        return 0;
    for (size_t i = 0; i <= len; ++i) {
        if (i != len && s[i] != '.')
            continue;
        if (i == start || s[start] == '-' || s[i - 1] == '-')
            return 0;
        for (; start != i; ++start)
            if (!((s[start] >= 'a' && s[start] <= 'z') || (s[start] >= '0' && s[start] <= '9') || s[start] == '-'))
                return 0;
        start = i + 1;
    }
    return 1;
}

static int is_verify_error(int ret)
{
    return ret <= RM_ERR_JWT_MALFORMED && ret >= RM_ERR_JWT_CLAIMS;
}

static int is_claims_error(int ret)
{
    return ret == RM_ERR_JWT_EXPIRED || ret == RM_ERR_JWT_NOT_YET_VALID || ret == RM_ERR_JWT_ISSUER ||
           ret == RM_ERR_JWT_AUDIENCE || ret == RM_ERR_JWT_CLAIMS;
}

/* Verifies `token` with the fixed options and checks the contract on the result, which it returns. */
static int verify_checked(const rm_jwks_t *jwks, const char *token, size_t len)
{
    rm_jwt_verify_opts_t opts;
    rm_jwt_claims_t *claims = malloc(sizeof(*claims));
    char *err = malloc(ERR_LEN);
    const char *dot;
    int ret;

    RM_FUZZ_CHECK(claims != NULL && err != NULL);
    opts_fixed(&opts);
    memset(claims, 0xa5, sizeof(*claims));
    memset(err, 'x', ERR_LEN); /* the verifier must terminate the message itself */
    ret = rm_jwt_verify(jwks, token, len, &opts, claims, err, ERR_LEN);
    RM_FUZZ_CHECK(ret == 0 || is_verify_error(ret) || ret == -ENOMEM);
    RM_FUZZ_CHECK(memchr(err, '\0', ERR_LEN) != NULL);
    if (ret != 0) {
        RM_FUZZ_CHECK(err[0] != '\0');
        RM_FUZZ_CHECK(all_zero(claims, sizeof(*claims)));
    } else {
        RM_FUZZ_CHECK(err[0] == '\0');
        RM_FUZZ_CHECK(len <= TOKEN_MAX);
        RM_FUZZ_CHECK(is_dns_label(claims->namespace_));
        RM_FUZZ_CHECK(is_dns_subdomain(claims->service_account));
        RM_FUZZ_CHECK(memchr(claims->pod_name, '\0', sizeof(claims->pod_name)) != NULL);
        RM_FUZZ_CHECK(memchr(claims->pod_uid, '\0', sizeof(claims->pod_uid)) != NULL);
        RM_FUZZ_CHECK((claims->pod_name[0] == '\0') == (claims->pod_uid[0] == '\0'));
        if (claims->pod_name[0] != '\0')
            RM_FUZZ_CHECK(is_dns_subdomain(claims->pod_name));
        RM_FUZZ_CHECK(strcmp(claims->issuer, ISSUER) == 0);
        RM_FUZZ_CHECK(claims->expires_at + opts.leeway > NOW);
    }
    /* the signature (the part after the second dot) is never quoted; claim values are cut to SHOWN_MAX bytes, so
     * only a longer signature can be told apart from a quoted claim */
    if ((dot = memrchr(token, '.', len)) != NULL && len - (size_t)(dot + 1 - token) > SHOWN_MAX)
        RM_FUZZ_CHECK(memmem(err, strlen(err), dot + 1, len - (size_t)(dot + 1 - token)) == NULL);
    free(err);
    free(claims);
    return ret;
}

static void fuzz_token(const uint8_t *data, size_t size)
{
    char *token = (char *)rm_fuzz_memdup(data, size); /* exactly `size` bytes: no NUL to lean on */

    verify_checked(fixed_jwks, token, size);
    free(token);
}

static void fuzz_jwks(const uint8_t *data, size_t size)
{
    char *doc = (char *)rm_fuzz_memdup(data, size), *err = malloc(ERR_LEN);
    static char sentinel;
    rm_jwks_t *jwks = (rm_jwks_t *)&sentinel; /* a failed parse must set it to NULL */
    int ret, es, rs;

    RM_FUZZ_CHECK(err != NULL);
    memset(err, 'x', ERR_LEN);
    ret = rm_jwks_parse(doc, size, &jwks, err, ERR_LEN);
    RM_FUZZ_CHECK(ret == 0 || ret == RM_ERR_JWKS || ret == -ENOMEM);
    RM_FUZZ_CHECK(memchr(err, '\0', ERR_LEN) != NULL);
    if (ret != 0) {
        RM_FUZZ_CHECK(jwks == NULL && err[0] != '\0');
        goto Exit;
    }
    RM_FUZZ_CHECK(jwks != NULL && err[0] == '\0');
    RM_FUZZ_CHECK(rm_jwks_num_keys(jwks) >= 1 && rm_jwks_num_keys(jwks) <= 64);

    /* valid tokens: whatever keys the document holds, only the key lookup or the signature can fail */
    es = verify_checked(jwks, es256_token, strlen(es256_token));
    rs = verify_checked(jwks, RS256_TOKEN, sizeof(RS256_TOKEN) - 1);
    RM_FUZZ_CHECK(es == 0 || es == RM_ERR_JWT_UNKNOWN_KEY || es == RM_ERR_JWT_SIGNATURE || es == -ENOMEM);
    RM_FUZZ_CHECK(rs == 0 || rs == RM_ERR_JWT_UNKNOWN_KEY || rs == RM_ERR_JWT_SIGNATURE || rs == -ENOMEM);
    rm_jwks_free(jwks);

Exit:
    free(err);
    free(doc);
}

static void fuzz_claims(const uint8_t *data, size_t size)
{
    char *claims = rm_fuzz_strndup(data, size), *token = NULL;
    int ret;

    ret = rm_jwt_sign_es256(EC_KEY_PEM, strlen(EC_KEY_PEM), "py-ec", claims, &token);
    RM_FUZZ_CHECK(ret == 0 || ret == -EINVAL || ret == -ENOMEM);
    if (ret != 0) {
        RM_FUZZ_CHECK(token == NULL);
        goto Exit;
    }
    RM_FUZZ_CHECK(token != NULL);
    ret = verify_checked(fixed_jwks, token, strlen(token));
    /* signed by a key of the JWKS: structure, alg, key and signature are right; only a token too long to be
     * looked at is malformed */
    RM_FUZZ_CHECK(ret == 0 || is_claims_error(ret) || ret == -ENOMEM ||
                  (ret == RM_ERR_JWT_MALFORMED && strlen(token) > TOKEN_MAX));

Exit:
    free(token);
    free(claims);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_token(data, size);
    fuzz_jwks(data, size);
    fuzz_claims(data, size);
    return 0;
}
