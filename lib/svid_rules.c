/* The X509-SVID leaf rules of the SPIFFE X509-SVID specification, applied to an already parsed certificate so
 * that they can be checked without a TLS library. The order of the checks decides which rule is reported when
 * a certificate breaks several: identity first (it names the peer in logs), then usage, then time, then what
 * the caller expects. */
#include "ringmesh/svid.h"

#include <string.h>

#include "ringmesh/error.h"
#include "x509_internal.h"

static int check_expect(const rm_spiffe_id_t *id, const rm_svid_expect_t *expect)
{
    size_t i;

    if (expect == NULL)
        return 0;
    if (expect->trust_domain != NULL) {
        int ok = 0;
        for (i = 0; !ok && i <= expect->num_trust_domain_aliases; ++i) {
            const char *td = i == 0 ? expect->trust_domain : expect->trust_domain_aliases[i - 1];
            size_t td_len = td != NULL ? strlen(td) : 0;
            ok = td != NULL && td_len == id->td_len && memcmp(id->str + sizeof("spiffe://") - 1, td, td_len) == 0;
        }
        if (!ok)
            return RM_ERR_SVID_TRUST_DOMAIN;
    }
    if (expect->ids != NULL && expect->num_ids != 0) {
        for (i = 0; i != expect->num_ids; ++i)
            if (expect->ids[i] != NULL && strcmp(expect->ids[i], id->str) == 0)
                return 0;
        return RM_ERR_SVID_UNEXPECTED_ID;
    }
    return 0;
}

int rm_svid_check_leaf(const rm_x509_info_t *leaf, time_t now, const rm_svid_expect_t *expect, rm_spiffe_id_t *id)
{
    rm_spiffe_id_t local = {.len = 0}, *parsed;
    int ret;

    parsed = id != NULL ? id : &local;
    parsed->str[0] = '\0';
    parsed->len = 0;
    parsed->td_len = 0;

    if (leaf->num_uris == 0) {
        ret = RM_ERR_SVID_NO_URI_SAN;
        goto Exit;
    }
    if (leaf->num_uris > 1) {
        ret = RM_ERR_SVID_MULTIPLE_URI_SANS;
        goto Exit;
    }
    if (rm_spiffe_id_parse(leaf->uris[0], strnlen(leaf->uris[0], sizeof(leaf->uris[0])), parsed) != 0) {
        ret = RM_ERR_SVID_BAD_SAN_URI;
        goto Exit;
    }
    /* X509-SVID 5.2: the ID must have a non-root path; the trust domain's own ID names no workload. The ID is kept
     * in `id` all the same, so that the refusal names it. */
    if (!rm_spiffe_id_has_path(parsed)) {
        ret = RM_ERR_SVID_NO_PATH;
        goto Exit;
    }
    if (leaf->is_ca) {
        ret = RM_ERR_SVID_LEAF_IS_CA;
        goto Exit;
    }
    if (!leaf->has_key_usage) {
        ret = RM_ERR_SVID_NO_KEY_USAGE;
        goto Exit;
    }
    if ((leaf->key_usage & RM_KU_DIGITAL_SIGNATURE) == 0) {
        ret = RM_ERR_SVID_NO_DIGITAL_SIGNATURE;
        goto Exit;
    }
    if ((leaf->key_usage & RM_KU_KEY_CERT_SIGN) != 0) {
        ret = RM_ERR_SVID_KEY_CERT_SIGN;
        goto Exit;
    }
    if ((leaf->key_usage & RM_KU_CRL_SIGN) != 0) {
        ret = RM_ERR_SVID_CRL_SIGN;
        goto Exit;
    }
    /* X509-SVID 4.4: leaves SHOULD carry extended key usage, and when they do, MUST have both purposes, so that
     * one SVID serves as client and as server certificate alike. anyExtendedKeyUsage does not stand in for them. */
    if (leaf->has_ext_key_usage && (leaf->ext_key_usage & (RM_EKU_SERVER_AUTH | RM_EKU_CLIENT_AUTH)) !=
                                       (RM_EKU_SERVER_AUTH | RM_EKU_CLIENT_AUTH)) {
        ret = RM_ERR_SVID_EXT_KEY_USAGE;
        goto Exit;
    }
    if (now < leaf->not_before) {
        ret = RM_ERR_SVID_NOT_YET_VALID;
        goto Exit;
    }
    if (now > leaf->not_after) {
        ret = RM_ERR_SVID_EXPIRED;
        goto Exit;
    }
    ret = check_expect(parsed, expect);

Exit:
    return ret;
}

int rm_svid_check_signer(const rm_x509_info_t *ca)
{
    return ca->is_ca && ca->has_key_usage && (ca->key_usage & RM_KU_KEY_CERT_SIGN) != 0 ? 0 : RM_ERR_SVID_CA_NOT_CA;
}

int rm__x509_check_validity(const rm_x509_info_t *cert, time_t now)
{
    if (now < cert->not_before)
        return RM_ERR_SVID_NOT_YET_VALID;
    if (now > cert->not_after)
        return RM_ERR_SVID_EXPIRED;
    return 0;
}
