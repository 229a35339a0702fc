/* X.509 parsing, trust bundles and X509-SVID chain verification over wolfSSL.
 *
 * Chain verification builds a fresh wolfSSL certificate manager per call: the bundle's roots, then each
 * intermediate (from the one next to the root down to the leaf's issuer) once it has itself verified. The
 * bundle stays immutable and can be shared between threads. Certificate dates are checked here against the
 * caller's `now` rather than by wolfSSL against the wall clock, so that a failure names the certificate and
 * the direction (expired, not yet valid). wolfSSL reports a date error only after the signature has verified
 * (a bad signature or missing signer wins), which is what lets its date errors be set aside below. */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ringmesh/error.h"
#include "ringmesh/svid.h"
#include "x509_internal.h"

struct st_rm_trust_bundle_t {
    size_t num;
    rm__der_cert_t *roots;
    rm_x509_info_t *infos;
};

#define PEM_BEGIN_CERT "-----BEGIN CERTIFICATE-----"
#define PEM_END_CERT   "-----END CERTIFICATE-----"

static const char *find_bytes(const char *hay, size_t hay_len, const char *needle)
{
    return memmem(hay, hay_len, needle, strlen(needle));
}

int rm__pem_to_der_certs(const char *pem, size_t len, rm__der_cert_t **out, size_t *num)
{
    rm__der_cert_t *certs = NULL, *grown;
    size_t n = 0, cap = 0;
    const char *p = pem, *end = pem + len, *begin, *stop;
    int ret, dlen;

    while ((begin = find_bytes(p, (size_t)(end - p), PEM_BEGIN_CERT)) != NULL) {
        if ((stop = find_bytes(begin, (size_t)(end - begin), PEM_END_CERT)) == NULL) {
            ret = RM_ERR_SVID_PARSE;
            goto Exit;
        }
        stop += sizeof(PEM_END_CERT) - 1;
        if (n == cap) {
            cap = cap == 0 ? 4 : cap * 2;
            if ((grown = realloc(certs, cap * sizeof(*certs))) == NULL) {
                ret = -ENOMEM;
                goto Exit;
            }
            certs = grown;
        }
        /* DER is always shorter than its base64 armour */
        if ((certs[n].der = malloc((size_t)(stop - begin))) == NULL) {
            ret = -ENOMEM;
            goto Exit;
        }
        dlen = wc_CertPemToDer((const unsigned char *)begin, (int)(stop - begin), certs[n].der, (int)(stop - begin),
                               CERT_TYPE);
        if (dlen <= 0) {
            free(certs[n].der);
            ret = RM_ERR_SVID_PARSE;
            goto Exit;
        }
        certs[n++].len = (size_t)dlen;
        p = stop;
    }
    if (n == 0) {
        ret = RM_ERR_SVID_PARSE;
        goto Exit;
    }
    *out = certs;
    *num = n;
    certs = NULL;
    n = 0;
    ret = 0;

Exit:
    rm__der_certs_free(certs, n);
    return ret;
}

void rm__der_certs_free(rm__der_cert_t *certs, size_t num)
{
    size_t i;

    if (certs == NULL)
        return;
    for (i = 0; i != num; ++i)
        free(certs[i].der);
    free(certs);
}

static int date_to_time(const byte *raw, int raw_len, time_t *out)
{
    const byte *date;
    byte format;
    int len;
    struct tm tm;

    if (raw == NULL || raw_len <= 0 || wc_GetDateInfo(raw, raw_len, &date, &format, &len) != 0)
        return RM_ERR_SVID_PARSE;
    memset(&tm, 0, sizeof(tm));
    if (wc_GetDateAsCalendarTime(date, len, format, &tm) != 0)
        return RM_ERR_SVID_PARSE;
    *out = timegm(&tm);
    return 0;
}

/* wolfSSL appends each subjectAltName to the decoded list when it has its OpenSSL-compatible layer, and prepends it
 * otherwise (asn.c, AddDNSEntryToList): the URIs are stored here in certificate order either way. */
#if defined(OPENSSL_EXTRA) && !defined(WOLFSSL_ALT_NAMES_NO_REV)
#define ALT_NAMES_IN_CERT_ORDER 1
#else
#define ALT_NAMES_IN_CERT_ORDER 0
#endif

int rm_x509_parse_der(const uint8_t *der, size_t len, rm_x509_info_t *info)
{
    DecodedCert *dc;
    DNS_entry *name;
    size_t total_uris = 0;
    int ret;

    memset(info, 0, sizeof(*info));
    if (len == 0 || len > UINT32_MAX)
        return RM_ERR_SVID_PARSE;
    if ((dc = malloc(sizeof(*dc))) == NULL)
        return -ENOMEM;
    wc_InitDecodedCert(dc, der, (word32)len, NULL);
    if (wc_ParseCert(dc, CERT_TYPE, NO_VERIFY, NULL) != 0) {
        ret = RM_ERR_SVID_PARSE;
        goto Exit;
    }
    info->is_ca = dc->isCA != 0;
    info->has_key_usage = dc->extKeyUsageSet != 0;
    if (info->has_key_usage) {
        /* wolfSSL's bit for each KeyUsage bit of the first DER octet, in DER order (digitalSignature first) */
        static const unsigned wolf_bits[8] = {KEYUSE_DIGITAL_SIG,   KEYUSE_CONTENT_COMMIT, KEYUSE_KEY_ENCIPHER,
                                              KEYUSE_DATA_ENCIPHER, KEYUSE_KEY_AGREE,      KEYUSE_KEY_CERT_SIGN,
                                              KEYUSE_CRL_SIGN,      KEYUSE_ENCIPHER_ONLY};
        for (int bit = 0; bit != 8; ++bit)
            if (dc->extKeyUsage & wolf_bits[bit])
                info->key_usage |= 0x80u >> bit;
    }
    info->has_ext_key_usage = dc->extExtKeyUsageSet != 0;
    if (info->has_ext_key_usage) {
        if (dc->extExtKeyUsage & EXTKEYUSE_SERVER_AUTH)
            info->ext_key_usage |= RM_EKU_SERVER_AUTH;
        if (dc->extExtKeyUsage & EXTKEYUSE_CLIENT_AUTH)
            info->ext_key_usage |= RM_EKU_CLIENT_AUTH;
        if (dc->extExtKeyUsage & EXTKEYUSE_ANY)
            info->ext_key_usage |= RM_EKU_ANY;
    }
    if ((ret = date_to_time(dc->beforeDate, dc->beforeDateLen, &info->not_before)) != 0 ||
        (ret = date_to_time(dc->afterDate, dc->afterDateLen, &info->not_after)) != 0)
        goto Exit;
    for (name = dc->altNames; name != NULL; name = name->next)
        if (name->type == ASN_URI_TYPE)
            ++total_uris;
    for (name = dc->altNames; name != NULL; name = name->next) {
        size_t pos;
        if (name->type != ASN_URI_TYPE)
            continue;
        pos = ALT_NAMES_IN_CERT_ORDER ? info->num_uris : total_uris - 1 - info->num_uris;
        if (pos < RM_X509_MAX_URIS) {
            char *dst = info->uris[pos];
            /* A URI that does not fit, or hides a NUL, is kept as "" so that it can never pass as a SPIFFE ID. */
            if (name->len >= 0 && (size_t)name->len <= RM_SPIFFE_ID_MAX &&
                memchr(name->name, '\0', (size_t)name->len) == NULL) {
                memcpy(dst, name->name, (size_t)name->len);
                dst[name->len] = '\0';
            } else {
                dst[0] = '\0';
            }
        }
        ++info->num_uris;
    }
    ret = 0;

Exit:
    wc_FreeDecodedCert(dc);
    free(dc);
    if (ret != 0)
        memset(info, 0, sizeof(*info));
    return ret;
}

int rm_x509_parse_pem_first(const char *pem, size_t len, rm_x509_info_t *info)
{
    rm__der_cert_t *certs = NULL;
    size_t n = 0;
    int ret;

    memset(info, 0, sizeof(*info));
    if ((ret = rm__pem_to_der_certs(pem, len, &certs, &n)) != 0)
        return ret;
    ret = rm_x509_parse_der(certs[0].der, certs[0].len, info);
    rm__der_certs_free(certs, n);
    return ret;
}

int rm__x509_is_self_issued(const uint8_t *der, size_t len)
{
    DecodedCert *dc;
    int self = 0;

    if (len == 0 || len > UINT32_MAX || (dc = malloc(sizeof(*dc))) == NULL)
        return 0;
    wc_InitDecodedCert(dc, der, (word32)len, NULL);
    if (wc_ParseCert(dc, CERT_TYPE, NO_VERIFY, NULL) == 0)
        self = memcmp(dc->issuerHash, dc->subjectHash, sizeof(dc->issuerHash)) == 0;
    wc_FreeDecodedCert(dc);
    free(dc);
    return self;
}

/* A set of trust anchors for one verification. It lives in a WOLFSSL_CTX because that is where wolfSSL can load a
 * CA while setting its wall-clock dates aside (WOLFSSL_LOAD_FLAG_DATE_ERR_OKAY): dates are judged against the
 * caller's `now` here, and wolfSSL_CertManagerLoadCABuffer checks them unless the library happens to be built with
 * OpenSSL-compatible defaults. Signatures are still verified on load. */
typedef struct {
    WOLFSSL_CTX *ctx;
    WOLFSSL_CERT_MANAGER *cm;
} anchors_t;

static int anchors_init(anchors_t *a)
{
    if ((a->ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method())) == NULL)
        return -ENOMEM;
    a->cm = wolfSSL_CTX_GetCertManager(a->ctx);
    return 0;
}

static int anchors_add(anchors_t *a, const uint8_t *der, size_t len)
{
    return wolfSSL_CTX_load_verify_buffer_ex(a->ctx, der, (long)len, WOLFSSL_FILETYPE_ASN1, 0,
                                             WOLFSSL_LOAD_FLAG_DATE_ERR_OKAY) == WOLFSSL_SUCCESS
               ? 0
               : -1;
}

static void anchors_dispose(anchors_t *a)
{
    if (a->ctx != NULL)
        wolfSSL_CTX_free(a->ctx);
    a->ctx = NULL;
}

int rm_trust_bundle_load_pem(rm_trust_bundle_t **out, const char *pem, size_t len)
{
    rm_trust_bundle_t *b;
    anchors_t anchors = {NULL, NULL};
    size_t i;
    int ret;

    *out = NULL;
    if ((b = calloc(1, sizeof(*b))) == NULL)
        return -ENOMEM;
    if ((ret = rm__pem_to_der_certs(pem, len, &b->roots, &b->num)) != 0)
        goto Exit;
    if ((b->infos = calloc(b->num, sizeof(*b->infos))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    /* Every anchor must parse, be a signing CA, and be accepted by wolfSSL as one. */
    if ((ret = anchors_init(&anchors)) != 0)
        goto Exit;
    for (i = 0; i != b->num; ++i) {
        if ((ret = rm_x509_parse_der(b->roots[i].der, b->roots[i].len, &b->infos[i])) != 0)
            goto Exit;
        if ((ret = rm_svid_check_signer(&b->infos[i])) != 0)
            goto Exit;
        if (anchors_add(&anchors, b->roots[i].der, b->roots[i].len) != 0) {
            ret = RM_ERR_SVID_PARSE;
            goto Exit;
        }
    }
    *out = b;
    b = NULL;
    ret = 0;

Exit:
    anchors_dispose(&anchors);
    rm_trust_bundle_free(b);
    return ret;
}

void rm_trust_bundle_free(rm_trust_bundle_t *b)
{
    if (b == NULL)
        return;
    rm__der_certs_free(b->roots, b->num);
    free(b->infos);
    free(b);
}

/* Which of the bundle's roots one chain-building attempt may anchor at. */
typedef enum en_root_filter_t { ROOTS_VALID_NOW, ROOTS_EXPIRED, ROOTS_NOT_YET_VALID } root_filter_t;

static int root_selected(const rm_x509_info_t *root, time_t now, root_filter_t filter)
{
    int validity = rm__x509_check_validity(root, now);

    switch (filter) {
    case ROOTS_VALID_NOW:
        return validity == 0;
    case ROOTS_EXPIRED:
        return validity == RM_ERR_SVID_EXPIRED;
    case ROOTS_NOT_YET_VALID:
        return validity == RM_ERR_SVID_NOT_YET_VALID;
    }
    return 0;
}

/* Signature (and signer) verdict of wolfSSL on one certificate, with its wall-clock date verdict set aside. */
static int verify_one(WOLFSSL_CERT_MANAGER *cm, const rm__der_cert_t *cert)
{
    int r = wolfSSL_CertManagerVerifyBuffer(cm, cert->der, (long)cert->len, WOLFSSL_FILETYPE_ASN1);

    return r == WOLFSSL_SUCCESS || r == ASN_AFTER_DATE_E || r == ASN_BEFORE_DATE_E ? 0 : RM_ERR_SVID_UNTRUSTED;
}

/* Verifies certs[0..n) (leaf first) up to a root of `bundle` chosen by `filter`. Checks each intermediate's
 * signer rule and validity at `now`; the leaf's own rules are left to rm_svid_check_leaf. */
static int verify_chain(const rm_trust_bundle_t *bundle, const rm__der_cert_t *certs, const rm_x509_info_t *infos,
                        size_t n, time_t now, root_filter_t filter, size_t *num_roots)
{
    anchors_t anchors;
    WOLFSSL_CERT_MANAGER *cm;
    size_t i;
    int ret;

    *num_roots = 0;
    if ((ret = anchors_init(&anchors)) != 0)
        return ret;
    cm = anchors.cm;
    for (i = 0; i != bundle->num; ++i) {
        if (!root_selected(&bundle->infos[i], now, filter))
            continue;
        if (anchors_add(&anchors, bundle->roots[i].der, bundle->roots[i].len) != 0) {
            ret = RM_ERR_SVID_UNTRUSTED;
            goto Exit;
        }
        ++*num_roots;
    }
    for (i = n - 1; i != 0; --i) {
        if ((ret = verify_one(cm, &certs[i])) != 0)
            goto Exit;
        if ((ret = rm_svid_check_signer(&infos[i])) != 0)
            goto Exit;
        if ((ret = rm__x509_check_validity(&infos[i], now)) != 0)
            goto Exit;
        if (anchors_add(&anchors, certs[i].der, certs[i].len) != 0) {
            ret = RM_ERR_SVID_UNTRUSTED;
            goto Exit;
        }
    }
    ret = verify_one(cm, &certs[0]);

Exit:
    anchors_dispose(&anchors);
    return ret;
}

int rm_svid_verify_pem(const rm_trust_bundle_t *bundle, const char *chain_pem, size_t len, time_t now,
                       const rm_svid_expect_t *expect, rm_spiffe_id_t *id)
{
    rm__der_cert_t *certs = NULL;
    rm_x509_info_t *infos = NULL;
    size_t n = 0, i, num_roots;
    int ret;

    if (id != NULL) {
        id->str[0] = '\0';
        id->len = 0;
        id->td_len = 0;
    }
    if ((ret = rm__pem_to_der_certs(chain_pem, len, &certs, &n)) != 0)
        goto Exit;
    if ((infos = calloc(n, sizeof(*infos))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    for (i = 0; i != n; ++i)
        if ((ret = rm_x509_parse_der(certs[i].der, certs[i].len, &infos[i])) != 0)
            goto Exit;

    ret = verify_chain(bundle, certs, infos, n, now, ROOTS_VALID_NOW, &num_roots);
    if (ret == RM_ERR_SVID_UNTRUSTED && num_roots != bundle->num) {
        /* Some roots were left out for their dates: if the chain leads to one of them, say so. */
        if (verify_chain(bundle, certs, infos, n, now, ROOTS_EXPIRED, &num_roots) == 0)
            ret = RM_ERR_SVID_EXPIRED;
        else if (verify_chain(bundle, certs, infos, n, now, ROOTS_NOT_YET_VALID, &num_roots) == 0)
            ret = RM_ERR_SVID_NOT_YET_VALID;
    }
    if (ret != 0)
        goto Exit;
    ret = rm_svid_check_leaf(&infos[0], now, expect, id);

Exit:
    free(infos);
    rm__der_certs_free(certs, n);
    return ret;
}

int rm_svid_check_peer_der(const uint8_t *leaf_der, size_t len, time_t now, const rm_svid_expect_t *expect,
                           rm_spiffe_id_t *id)
{
    rm_x509_info_t *info;
    int ret;

    if (id != NULL) {
        id->str[0] = '\0';
        id->len = 0;
        id->td_len = 0;
    }
    if ((info = malloc(sizeof(*info))) == NULL)
        return -ENOMEM;
    if ((ret = rm_x509_parse_der(leaf_der, len, info)) == 0)
        ret = rm_svid_check_leaf(info, now, expect, id);
    free(info);
    return ret;
}
