/* Trust bundles and SVID chains in PEM: rm_trust_bundle_load_pem(), rm_svid_verify_pem() and the PEM splitter
 * under them (rm__pem_to_der_certs).
 *
 * Input: the bundle's PEM, a NUL byte, then the chain's PEM (leaf first). Without a NUL the whole input is both.
 * The chain is verified at the first and the last second of its leaf's validity, so that a committed corpus gives
 * the same verdicts whatever day it is replayed (and roots or intermediates that expire sooner get noticed). Checks the
 * documented return values, that a failed load leaves *out NULL, and that a verified chain has a leaf that passes
 * rm_svid_check_peer_der() with the same SPIFFE ID. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "ringmesh/error.h"
#include "ringmesh/svid.h"
#include "x509_internal.h"

static int is_svid_error(int ret)
{
    return ret <= RM_ERR_SPIFFE_SCHEME && ret > RM_ERR_CLASS_CONFIG;
}

/* Splits PEM into DER certificates; returns the leaf's validity (or 0, 0) through *not_before and *not_after. */
static void check_split(const char *pem, size_t len, time_t *not_before, time_t *not_after)
{
    rm__der_cert_t *certs = NULL;
    rm_x509_info_t *info = malloc(sizeof(*info));
    size_t num = 0;
    int ret;

    RM_FUZZ_CHECK(info != NULL);
    *not_before = 0;
    *not_after = 0;
    ret = rm__pem_to_der_certs(pem, len, &certs, &num);
    RM_FUZZ_CHECK(ret == 0 || ret == RM_ERR_SVID_PARSE || ret == -ENOMEM);
    if (ret == 0) {
        RM_FUZZ_CHECK(num >= 1 && certs != NULL);
        for (size_t i = 0; i != num; ++i)
            RM_FUZZ_CHECK(certs[i].der != NULL && certs[i].len > 0 && certs[i].len < len);
        if (rm_x509_parse_der(certs[0].der, certs[0].len, info) == 0) {
            *not_before = info->not_before;
            *not_after = info->not_after;
        }
        rm__der_certs_free(certs, num);
    } else {
        RM_FUZZ_CHECK(num == 0);
    }
    free(info);
}

static void check_verify(const rm_trust_bundle_t *bundle, const char *chain, size_t len, time_t now)
{
    rm__der_cert_t *certs = NULL;
    rm_spiffe_id_t *id = malloc(sizeof(*id)), *leaf_id = malloc(sizeof(*leaf_id));
    size_t num = 0;
    int ret;

    RM_FUZZ_CHECK(id != NULL && leaf_id != NULL);
    memset(id, 0xa5, sizeof(*id));
    ret = rm_svid_verify_pem(bundle, chain, len, now, NULL, id);
    RM_FUZZ_CHECK(ret == 0 || is_svid_error(ret) || ret == -ENOMEM);
    RM_FUZZ_CHECK(id->len <= RM_SPIFFE_ID_MAX && id->str[id->len] == '\0' && strlen(id->str) == id->len);
    if (ret == 0) {
        RM_FUZZ_CHECK(id->len > 0 && rm_spiffe_id_parse(id->str, id->len, NULL) == 0);
        RM_FUZZ_CHECK(rm__pem_to_der_certs(chain, len, &certs, &num) == 0);
        RM_FUZZ_CHECK(rm_svid_check_peer_der(certs[0].der, certs[0].len, now, NULL, leaf_id) == 0);
        RM_FUZZ_CHECK(strcmp(leaf_id->str, id->str) == 0);
        rm__der_certs_free(certs, num);
    }
    free(leaf_id);
    free(id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t bundle_len = nul != NULL ? (size_t)(nul - data) : size;
    const uint8_t *chain_start = nul != NULL ? nul + 1 : data;
    size_t chain_len = nul != NULL ? size - bundle_len - 1 : size;
    char *bundle_pem = (char *)rm_fuzz_memdup(data, bundle_len),
         *chain_pem = (char *)rm_fuzz_memdup(chain_start, chain_len);
    rm_trust_bundle_t *bundle = (rm_trust_bundle_t *)&bundle;
    time_t not_before, not_after;
    int ret;

    check_split(chain_pem, chain_len, &not_before, &not_after);

    ret = rm_trust_bundle_load_pem(&bundle, bundle_pem, bundle_len);
    RM_FUZZ_CHECK(ret == 0 || ret == RM_ERR_SVID_PARSE || ret == RM_ERR_SVID_CA_NOT_CA || ret == -ENOMEM);
    RM_FUZZ_CHECK((ret == 0) == (bundle != NULL));
    if (ret == 0) {
        check_verify(bundle, chain_pem, chain_len, not_before);
        check_verify(bundle, chain_pem, chain_len, not_after);
        rm_trust_bundle_free(bundle);
    }
    free(chain_pem);
    free(bundle_pem);
    return 0;
}
