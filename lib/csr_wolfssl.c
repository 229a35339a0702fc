/* PKCS#10 certificate signing requests over wolfCrypt.
 *
 * Making: wolfCrypt's request encoder (wc_MakeCertReq_ex + wc_SignCert_ex). Checking: wolfCrypt's DecodedCert
 * parser, run twice: once without verification, so that an unreadable request (RM_ERR_CSR_PARSE), a key we do
 * not sign (RM_ERR_SVID_KEY_TYPE) and a bad self-signature (RM_ERR_CSR_SIGNATURE) get their own codes and no
 * signature is checked with a key that would be refused anyway; then with VERIFY, which for CERTREQ_TYPE and no
 * certificate manager checks the request's signature with the request's own public key. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/settings.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ecc_internal.h"
#include "ringmesh/csr.h"
#include "ringmesh/error.h"
#include "ringmesh/svid.h"

#define CSR_PEM_MAX   (16 * 1024)
#define P256_SPKI_MAX 128
#define CSR_DER_MAX   (4 * 1024 + 2 * RM_SPIFFE_ID_MAX) /* a P-256 request with one URI SAN and a short subject */

/* GeneralNames { uniformResourceIdentifier [6] IA5String }: the DER that wolfCrypt's Cert.altNames holds. The
 * lengths are short or two-byte long form since an ID is at most RM_SPIFFE_ID_MAX bytes. */
static size_t uri_general_names(const char *uri, size_t uri_len, uint8_t *out)
{
    size_t i = 0, inner = uri_len + (uri_len < 0x80 ? 2 : uri_len < 0x100 ? 3 : 4);

    out[i++] = 0x30;
    if (inner < 0x80) {
        out[i++] = (uint8_t)inner;
    } else if (inner < 0x100) {
        out[i++] = 0x81;
        out[i++] = (uint8_t)inner;
    } else {
        out[i++] = 0x82;
        out[i++] = (uint8_t)(inner >> 8);
        out[i++] = (uint8_t)inner;
    }
    out[i++] = 0x86;
    if (uri_len < 0x80) {
        out[i++] = (uint8_t)uri_len;
    } else if (uri_len < 0x100) {
        out[i++] = 0x81;
        out[i++] = (uint8_t)uri_len;
    } else {
        out[i++] = 0x82;
        out[i++] = (uint8_t)(uri_len >> 8);
        out[i++] = (uint8_t)uri_len;
    }
    memcpy(out + i, uri, uri_len);
    return i + uri_len;
}

int rm_csr_make(const char *key_pem, size_t key_len, const char *spiffe_id, char **csr_pem, size_t *csr_len)
{
    Cert *req = NULL;
    WC_RNG rng;
    ecc_key key;
    uint8_t *der = NULL;
    char *pem = NULL;
    size_t id_len = 0, pem_cap;
    int ret, n, have_rng = 0, have_key = 0;

    *csr_pem = NULL;
    if (spiffe_id != NULL) {
        id_len = strlen(spiffe_id);
        if (rm_spiffe_id_parse(spiffe_id, id_len, NULL) != 0)
            return -EINVAL;
    }
    if (wc_ecc_init(&key) != 0)
        return RM_ERR_SVID_ISSUE;
    have_key = 1;
    if ((ret = rm__ecc_load_private_pem(key_pem, key_len, &key)) != 0)
        goto Exit;
    /* Cert is large (its altNames buffer alone is 16 KiB): keep it off the stack */
    if ((req = malloc(sizeof(*req))) == NULL || (der = malloc(CSR_DER_MAX)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    if (wc_InitCert(req) != 0 || wc_InitRng(&rng) != 0) {
        ret = RM_ERR_SVID_ISSUE;
        goto Exit;
    }
    have_rng = 1;
    req->version = 0; /* PKCS#10 v1 */
    req->sigType = CTC_SHA256wECDSA;
    strcpy(req->subject.org, "ringmesh");
    if (spiffe_id != NULL)
        req->altNamesSz = (int)uri_general_names(spiffe_id, id_len, req->altNames);
    if (wc_MakeCertReq_ex(req, der, CSR_DER_MAX, ECC_TYPE, &key) <= 0 ||
        (n = wc_SignCert_ex(req->bodySz, req->sigType, der, CSR_DER_MAX, ECC_TYPE, &key, &rng)) <= 0) {
        ret = RM_ERR_SVID_ISSUE;
        goto Exit;
    }
    pem_cap = (size_t)n * 2 + 128; /* base64 (4/3), line breaks and armour */
    if ((pem = malloc(pem_cap + 1)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    if ((n = wc_DerToPem(der, (word32)n, (byte *)pem, (word32)pem_cap, CERTREQ_TYPE)) <= 0) {
        ret = RM_ERR_SVID_ISSUE;
        goto Exit;
    }
    pem[n] = '\0';
    *csr_pem = pem;
    *csr_len = (size_t)n;
    pem = NULL;
    ret = 0;

Exit:
    free(pem);
    free(der);
    free(req);
    if (have_rng)
        wc_FreeRng(&rng);
    if (have_key)
        wc_ecc_free(&key);
    return ret;
}

/* The request's key as a canonical P-256 SubjectPublicKeyInfo (named curve, uncompressed point), the form
 * rm_x509_sign_svid() takes. */
static int p256_spki(const DecodedCert *dc, uint8_t **spki_der, size_t *spki_len)
{
    ecc_key key;
    uint8_t spki[P256_SPKI_MAX];
    word32 idx = 0;
    int n, ret;

    if (dc->keyOID != ECDSAk || dc->pkCurveOID != ECC_SECP256R1_OID || dc->publicKey == NULL)
        return RM_ERR_SVID_KEY_TYPE;
    if (wc_ecc_init(&key) != 0)
        return RM_ERR_SVID_ISSUE;
    /* for an EC key wolfCrypt keeps the whole SubjectPublicKeyInfo in publicKey */
    if (wc_EccPublicKeyDecode(dc->publicKey, &idx, &key, dc->pubKeySize) != 0 || key.dp == NULL ||
        key.dp->id != ECC_SECP256R1 || wc_ecc_check_key(&key) != 0) {
        ret = RM_ERR_SVID_KEY_TYPE;
        goto Exit;
    }
    if ((n = wc_EccPublicKeyToDer(&key, spki, sizeof(spki), 1)) <= 0) {
        ret = RM_ERR_SVID_ISSUE;
        goto Exit;
    }
    if ((*spki_der = malloc((size_t)n)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    memcpy(*spki_der, spki, (size_t)n);
    *spki_len = (size_t)n;
    ret = 0;

Exit:
    wc_ecc_free(&key);
    return ret;
}

int rm_csr_parse_pem(const char *csr_pem, size_t len, uint8_t **spki_der, size_t *spki_len)
{
    DecodedCert *dc = NULL;
    uint8_t *der = NULL;
    int der_len, ret, have_dc = 0;

    *spki_der = NULL;
    if (csr_pem == NULL && len != 0)
        return -EINVAL;
    if (len == 0 || len > CSR_PEM_MAX)
        return RM_ERR_CSR_PARSE;
    if ((der = malloc(len)) == NULL || (dc = malloc(sizeof(*dc))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    /* DER is always shorter than its base64 armour */
    if ((der_len = wc_CertPemToDer((const unsigned char *)csr_pem, (int)len, der, (int)len, CERTREQ_TYPE)) <= 0) {
        ret = RM_ERR_CSR_PARSE;
        goto Exit;
    }

    wc_InitDecodedCert(dc, der, (word32)der_len, NULL);
    have_dc = 1;
    if (wc_ParseCert(dc, CERTREQ_TYPE, NO_VERIFY, NULL) != 0) {
        ret = RM_ERR_CSR_PARSE;
        goto Exit;
    }
    if ((ret = p256_spki(dc, spki_der, spki_len)) != 0)
        goto Exit;
    /* Proof of possession: ECDSA over SHA-2 by the request's own key. A SHA-1 signature is refused too. */
    if (dc->signatureOID != CTC_SHA256wECDSA && dc->signatureOID != CTC_SHA384wECDSA &&
        dc->signatureOID != CTC_SHA512wECDSA) {
        ret = RM_ERR_CSR_SIGNATURE;
        goto Exit;
    }
    wc_FreeDecodedCert(dc);
    wc_InitDecodedCert(dc, der, (word32)der_len, NULL);
    if (wc_ParseCert(dc, CERTREQ_TYPE, VERIFY, NULL) != 0) {
        ret = RM_ERR_CSR_SIGNATURE;
        goto Exit;
    }
    ret = 0;

Exit:
    if (have_dc)
        wc_FreeDecodedCert(dc);
    free(dc);
    free(der);
    if (ret != 0 && *spki_der != NULL) {
        free(*spki_der);
        *spki_der = NULL;
    }
    return ret;
}
