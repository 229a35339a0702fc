/* rm_x509_parse_der(): a DER certificate into what the SVID rules look at, and the rules applied to the result.
 *
 * Checks the parser's contract (return values; `info` zeroed on failure; kept URIs NUL-terminated within their
 * buffers; key usage bits only when the extension is there), that parsing is deterministic, and that the
 * functions built on it agree with it: rm_svid_check_peer_der() is parse + rm_svid_check_leaf(), a leaf that
 * passes the rules holds exactly one URI SAN that is a valid SPIFFE ID, and rm_svid_check_signer() follows the
 * basicConstraints/keyCertSign rule. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "ringmesh/error.h"
#include "ringmesh/svid.h"
#include "x509_internal.h"

static int all_zero(const void *p, size_t len)
{
    const uint8_t *b = p;

    for (size_t i = 0; i != len; ++i)
        if (b[i] != 0)
            return 0;
    return 1;
}

static int is_svid_error(int ret)
{
    return ret <= RM_ERR_SPIFFE_SCHEME && ret > RM_ERR_CLASS_CONFIG;
}

static void check_leaf_rules(const rm_x509_info_t *info, time_t now, const uint8_t *der, size_t len)
{
    static const char *const ids[] = {"spiffe://example.org/ns/default/sa/default"};
    rm_svid_expect_t expect = {.trust_domain = "example.org", .ids = ids, .num_ids = 1};
    rm_spiffe_id_t *id = malloc(sizeof(*id)), *peer_id = malloc(sizeof(*peer_id));
    int ret, peer_ret;

    RM_FUZZ_CHECK(id != NULL && peer_id != NULL);
    ret = rm_svid_check_leaf(info, now, NULL, id);
    RM_FUZZ_CHECK(ret == 0 || is_svid_error(ret));
    RM_FUZZ_CHECK(id->len == strlen(id->str));
    if (ret == 0) {
        RM_FUZZ_CHECK(info->num_uris == 1 && !info->is_ca && info->has_key_usage);
        RM_FUZZ_CHECK((info->key_usage & RM_KU_DIGITAL_SIGNATURE) != 0);
        RM_FUZZ_CHECK((info->key_usage & (RM_KU_KEY_CERT_SIGN | RM_KU_CRL_SIGN)) == 0);
        RM_FUZZ_CHECK(info->not_before <= now && now <= info->not_after);
        RM_FUZZ_CHECK(id->len > 0 && strcmp(id->str, info->uris[0]) == 0);
        RM_FUZZ_CHECK(rm_spiffe_id_parse(info->uris[0], strlen(info->uris[0]), NULL) == 0);
    } else if (id->len != 0) {
        /* a refused leaf may still name its peer, but only with its one valid URI */
        RM_FUZZ_CHECK(info->num_uris == 1 && strcmp(id->str, info->uris[0]) == 0);
    }

    /* the peer check is the parse followed by the same rules */
    peer_ret = rm_svid_check_peer_der(der, len, now, NULL, peer_id);
    RM_FUZZ_CHECK(peer_ret == ret);
    RM_FUZZ_CHECK(peer_id->len == id->len && strcmp(peer_id->str, id->str) == 0);

    /* expectations can only add refusals */
    peer_ret = rm_svid_check_leaf(info, now, &expect, NULL);
    if (ret != 0)
        RM_FUZZ_CHECK(peer_ret == ret);
    else
        RM_FUZZ_CHECK(peer_ret == 0 || peer_ret == RM_ERR_SVID_TRUST_DOMAIN || peer_ret == RM_ERR_SVID_UNEXPECTED_ID);
    free(peer_id);
    free(id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *der = rm_fuzz_memdup(data, size);
    rm_x509_info_t *info = malloc(sizeof(*info)), *again = malloc(sizeof(*again));
    int ret;

    RM_FUZZ_CHECK(info != NULL && again != NULL);
    memset(info, 0xa5, sizeof(*info));
    ret = rm_x509_parse_der(der, size, info);
    RM_FUZZ_CHECK(ret == 0 || ret == RM_ERR_SVID_PARSE || ret == -ENOMEM);
    if (ret != 0) {
        RM_FUZZ_CHECK(all_zero(info, sizeof(*info)));
        RM_FUZZ_CHECK(rm_svid_check_peer_der(der, size, 0, NULL, NULL) == ret);
        /* wolfSSL may decode what the stricter parse refused (a malformed date), so only the range is checked */
        RM_FUZZ_CHECK(rm__x509_is_self_issued(der, size) == 0 || rm__x509_is_self_issued(der, size) == 1);
        goto Exit;
    }

    RM_FUZZ_CHECK(info->is_ca == 0 || info->is_ca == 1);
    RM_FUZZ_CHECK(info->has_key_usage == 0 || info->has_key_usage == 1);
    RM_FUZZ_CHECK((info->key_usage & ~0xffu) == 0); /* bits of the DER KeyUsage first octet */
    RM_FUZZ_CHECK(info->has_key_usage || info->key_usage == 0);
    for (size_t i = 0; i != info->num_uris && i != RM_X509_MAX_URIS; ++i) {
        RM_FUZZ_CHECK(memchr(info->uris[i], '\0', sizeof(info->uris[i])) != NULL);
        /* a kept URI is a copy of bytes of the certificate */
        if (info->uris[i][0] != '\0')
            RM_FUZZ_CHECK(memmem(data, size, info->uris[i], strlen(info->uris[i])) != NULL);
    }

    memset(again, 0x5a, sizeof(*again));
    RM_FUZZ_CHECK(rm_x509_parse_der(der, size, again) == 0);
    RM_FUZZ_CHECK(memcmp(info, again, sizeof(*info)) == 0);

    RM_FUZZ_CHECK(rm_svid_check_signer(info) ==
                  (info->is_ca && info->has_key_usage && (info->key_usage & RM_KU_KEY_CERT_SIGN) != 0
                       ? 0
                       : RM_ERR_SVID_CA_NOT_CA));
    RM_FUZZ_CHECK(rm__x509_check_validity(info, info->not_before) ==
                  (info->not_before <= info->not_after ? 0 : RM_ERR_SVID_EXPIRED));

    /* the leaf rules at three moments: the start and end of validity, and before it */
    check_leaf_rules(info, info->not_before, der, size);
    check_leaf_rules(info, info->not_after, der, size);
    if (info->not_before > 0)
        check_leaf_rules(info, info->not_before - 1, der, size);

Exit:
    free(again);
    free(info);
    free(der);
    return 0;
}
