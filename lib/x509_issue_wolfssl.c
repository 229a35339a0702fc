/* X.509-SVID and root CA issuance over wolfCrypt.
 *
 * The TBSCertificate is encoded here rather than by wolfSSL's Cert/wc_MakeCert: wolfSSL's encoder does not mark
 * basicConstraints critical nor write cA=FALSE on a leaf, both of which the X509-SVID profile wants, and its output
 * varies between its two ASN.1 code paths. wolfCrypt only generates keys, hashes and signs. The CA's private key is
 * kept as DER and decoded into a fresh ecc_key for every signature, so one rm_x509_ca_t can sign from several
 * threads at once. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/settings.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ringmesh/bytebuf.h"
#include "ringmesh/error.h"
#include "ringmesh/svid.h"
#include "ringmesh/x509_issue.h"
#include "x509_internal.h"

#define SERIAL_LEN       20 /* RFC 5280's maximum; 158 random bits after the sign and length fix-ups */
#define KEY_ID_LEN       20 /* SHA-1, RFC 5280 section 4.2.1.2 method 1 */
#define MAX_TTL          ((int64_t)100 * 366 * 24 * 3600)
#define P256_SPKI_MAX    128
#define P256_KEY_DER_MAX 256

struct st_rm_x509_ca_t {
    uint8_t *cert_der; /* the signing CA certificate */
    size_t cert_len;
    uint8_t *key_der; /* its private key, traditional (SEC1) DER; wiped on free */
    size_t key_len;
    rm_bytebuf_t
        chain; /* PEM: the CA certificates to send after the leaf (the signing CA unless self-signed, and so on) */
};

/* ---- DER writing ---------------------------------------------------------------------------------------------
 * Into an rm_bytebuf_t. A constructed value is opened with a one-byte length placeholder and closed once its
 * content is written; closing moves the content right when the length needs the long form. The buffer's failure
 * flag sticks and turns later writes into no-ops, so callers check it once at the end. */

/* Returns where the content starts; pass it to der_close(). */
static size_t der_open(rm_bytebuf_t *d, uint8_t tag)
{
    rm_bytebuf_append_byte(d, tag);
    rm_bytebuf_append_byte(d, 0);
    return d->len;
}

static void der_close(rm_bytebuf_t *d, size_t start)
{
    size_t content, n = 0, i;

    if (d->failed)
        return;
    content = d->len - start;
    if (content < 0x80) {
        d->base[start - 1] = (uint8_t)content;
        return;
    }
    for (i = content; i != 0; i >>= 8)
        ++n;
    if (rm_bytebuf_reserve(d, n) != 0)
        return;
    memmove(d->base + start + n, d->base + start, content);
    d->base[start - 1] = (uint8_t)(0x80 | n);
    for (i = 0; i != n; ++i)
        d->base[start + i] = (uint8_t)(content >> (8 * (n - 1 - i)));
    d->len += n;
}

static void der_tlv(rm_bytebuf_t *d, uint8_t tag, const void *p, size_t n)
{
    size_t start = der_open(d, tag);
    rm_bytebuf_append(d, p, n);
    der_close(d, start);
}

/* A non-negative INTEGER from big-endian magnitude bytes. */
static void der_uint(rm_bytebuf_t *d, const uint8_t *p, size_t n)
{
    size_t start;

    while (n > 1 && p[0] == 0)
        ++p, --n;
    start = der_open(d, 0x02);
    if (n == 0 || (p[0] & 0x80) != 0)
        rm_bytebuf_append_byte(d, 0);
    rm_bytebuf_append(d, p, n);
    der_close(d, start);
}

#define TAG_BOOLEAN      0x01
#define TAG_BIT_STRING   0x03
#define TAG_OCTET_STRING 0x04
#define TAG_OID          0x06
#define TAG_UTF8STRING   0x0c
#define TAG_UTCTIME      0x17
#define TAG_GENTIME      0x18
#define TAG_SEQUENCE     0x30
#define TAG_SET          0x31

static const uint8_t OID_ECDSA_SHA256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const uint8_t OID_AT_CN[] = {0x55, 0x04, 0x03};
static const uint8_t OID_AT_O[] = {0x55, 0x04, 0x0a};
static const uint8_t OID_SKID[] = {0x55, 0x1d, 0x0e};
static const uint8_t OID_KEY_USAGE[] = {0x55, 0x1d, 0x0f};
static const uint8_t OID_SAN[] = {0x55, 0x1d, 0x11};
static const uint8_t OID_BASIC_CONSTRAINTS[] = {0x55, 0x1d, 0x13};
static const uint8_t OID_AKID[] = {0x55, 0x1d, 0x23};
static const uint8_t OID_EXT_KEY_USAGE[] = {0x55, 0x1d, 0x25};
static const uint8_t OID_KP_SERVER_AUTH[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01};
static const uint8_t OID_KP_CLIENT_AUTH[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02};

static void der_sig_alg(rm_bytebuf_t *d)
{
    size_t seq = der_open(d, TAG_SEQUENCE);
    der_tlv(d, TAG_OID, OID_ECDSA_SHA256, sizeof(OID_ECDSA_SHA256));
    der_close(d, seq);
}

/* RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
static int der_time(rm_bytebuf_t *d, time_t t)
{
    struct tm tm;
    char buf[32];
    size_t n;

    if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 1950 || tm.tm_year + 1900 > 9999)
        return -EINVAL;
    if (tm.tm_year + 1900 < 2050) {
        n = (size_t)snprintf(buf, sizeof(buf), "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100, tm.tm_mon + 1, tm.tm_mday,
                             tm.tm_hour, tm.tm_min, tm.tm_sec);
        der_tlv(d, TAG_UTCTIME, buf, n);
    } else {
        n = (size_t)snprintf(buf, sizeof(buf), "%04d%02d%02d%02d%02d%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        der_tlv(d, TAG_GENTIME, buf, n);
    }
    return 0;
}

static void der_name_attr(rm_bytebuf_t *d, const uint8_t *oid, size_t oid_len, const char *value)
{
    size_t set = der_open(d, TAG_SET), seq = der_open(d, TAG_SEQUENCE);
    der_tlv(d, TAG_OID, oid, oid_len);
    der_tlv(d, TAG_UTF8STRING, value, strlen(value));
    der_close(d, seq);
    der_close(d, set);
}

/* Opens Extension { extnID, critical, extnValue OCTET STRING { ... } }; returns the two marks to close. */
static void der_ext_open(rm_bytebuf_t *d, const uint8_t *oid, size_t oid_len, int critical, size_t marks[2])
{
    static const uint8_t TRUE_[] = {0xff};

    marks[0] = der_open(d, TAG_SEQUENCE);
    der_tlv(d, TAG_OID, oid, oid_len);
    if (critical)
        der_tlv(d, TAG_BOOLEAN, TRUE_, 1);
    marks[1] = der_open(d, TAG_OCTET_STRING);
}

static void der_ext_close(rm_bytebuf_t *d, const size_t marks[2])
{
    der_close(d, marks[1]);
    der_close(d, marks[0]);
}

/* KeyUsage BIT STRING from RM_KU_* bits (all in the first octet), with the unused trailing bits counted. */
static void der_key_usage(rm_bytebuf_t *d, unsigned ku)
{
    uint8_t v[2] = {0, (uint8_t)ku};

    while (v[0] < 7 && (v[1] & (1u << v[0])) == 0)
        ++v[0];
    der_tlv(d, TAG_BIT_STRING, v, 2);
}

/* ---- DER reading: just enough to take the subject, public key and key identifier out of a CA certificate ---- */
typedef struct st_der_in_t {
    const uint8_t *p;
    size_t len;
} der_in_t;

/* Reads one TLV off the front of `in`. `whole` (may be NULL) spans tag to end, `content` the value. */
static int der_next(der_in_t *in, uint8_t *tag, der_in_t *content, der_in_t *whole)
{
    size_t hdr = 2, len, n, i;

    if (in->len < 2)
        return -1;
    *tag = in->p[0];
    len = in->p[1];
    if (len & 0x80) {
        n = len & 0x7f;
        if (n == 0 || n > 4 || in->len < 2 + n)
            return -1;
        for (len = 0, i = 0; i != n; ++i)
            len = (len << 8) | in->p[2 + i];
        hdr += n;
    }
    if (len > in->len - hdr)
        return -1;
    if (whole != NULL) {
        whole->p = in->p;
        whole->len = hdr + len;
    }
    content->p = in->p + hdr;
    content->len = len;
    in->p += hdr + len;
    in->len -= hdr + len;
    return 0;
}

typedef struct st_ca_fields_t {
    der_in_t subject; /* whole Name */
    der_in_t spki;    /* whole SubjectPublicKeyInfo */
    der_in_t skid;    /* key identifier bytes; len 0 when absent */
} ca_fields_t;

static int read_ca_fields(const uint8_t *der, size_t len, ca_fields_t *f)
{
    der_in_t in = {der, len}, cert, tbs, item, whole, exts, ext, oid, value, skid;
    uint8_t tag;
    int i;

    memset(f, 0, sizeof(*f));
    if (der_next(&in, &tag, &cert, NULL) != 0 || tag != TAG_SEQUENCE || der_next(&cert, &tag, &tbs, NULL) != 0 ||
        tag != TAG_SEQUENCE)
        return RM_ERR_SVID_PARSE;
    if (tbs.len != 0 && tbs.p[0] == 0xa0 && der_next(&tbs, &tag, &item, NULL) != 0) /* version */
        return RM_ERR_SVID_PARSE;
    /* serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo */
    for (i = 0; i != 6; ++i) {
        if (der_next(&tbs, &tag, &item, &whole) != 0)
            return RM_ERR_SVID_PARSE;
        if (i == 4)
            f->subject = whole;
        else if (i == 5)
            f->spki = whole;
    }
    while (tbs.len != 0) {
        if (der_next(&tbs, &tag, &item, NULL) != 0)
            return RM_ERR_SVID_PARSE;
        if (tag != 0xa3)
            continue;
        if (der_next(&item, &tag, &exts, NULL) != 0 || tag != TAG_SEQUENCE)
            return RM_ERR_SVID_PARSE;
        while (exts.len != 0) {
            if (der_next(&exts, &tag, &ext, NULL) != 0 || der_next(&ext, &tag, &oid, NULL) != 0 || tag != TAG_OID)
                return RM_ERR_SVID_PARSE;
            if (der_next(&ext, &tag, &value, NULL) != 0)
                return RM_ERR_SVID_PARSE;
            if (tag == TAG_BOOLEAN && der_next(&ext, &tag, &value, NULL) != 0)
                return RM_ERR_SVID_PARSE;
            if (oid.len == sizeof(OID_SKID) && memcmp(oid.p, OID_SKID, oid.len) == 0) {
                if (der_next(&value, &tag, &skid, NULL) != 0 || tag != TAG_OCTET_STRING)
                    return RM_ERR_SVID_PARSE;
                f->skid = skid;
            }
        }
    }
    return 0;
}

/* ---- keys ---------------------------------------------------------------------------------------------------- */

/* The SubjectPublicKeyInfo of `key` and its key identifier (SHA-1 of the subjectPublicKey bits). */
static int export_public(ecc_key *key, uint8_t *spki, size_t *spki_len, uint8_t key_id[KEY_ID_LEN])
{
    uint8_t point[1 + 2 * 66];
    word32 point_len = sizeof(point);
    int n;

    if ((n = wc_EccPublicKeyToDer(key, spki, P256_SPKI_MAX, 1)) <= 0)
        return RM_ERR_SVID_ISSUE;
    *spki_len = (size_t)n;
    if (wc_ecc_export_x963(key, point, &point_len) != 0 || wc_ShaHash(point, point_len, key_id) != 0)
        return RM_ERR_SVID_ISSUE;
    return 0;
}

static int is_p256(const ecc_key *key)
{
    return key->dp != NULL && key->dp->id == ECC_SECP256R1;
}

/* Decodes a P-256 public key from a SubjectPublicKeyInfo into an initialised `key` and checks the point. */
static int import_spki(const uint8_t *spki, size_t len, ecc_key *key)
{
    word32 idx = 0;

    if (len == 0 || len > UINT32_MAX || wc_EccPublicKeyDecode(spki, &idx, key, (word32)len) != 0 || idx != len)
        return RM_ERR_SVID_KEY_TYPE;
    /* a point off the curve would make a certificate nobody can use */
    return is_p256(key) && wc_ecc_check_key(key) == 0 ? 0 : RM_ERR_SVID_KEY_TYPE;
}

/* Decodes a private key (traditional SEC1 DER) into an initialised `key`, with its public half. */
static int import_private(const uint8_t *der, size_t len, ecc_key *key)
{
    word32 idx = 0;

    if (wc_EccPrivateKeyDecode(der, &idx, key, (word32)len) != 0)
        return RM_ERR_SVID_CA_KEY;
    if (!is_p256(key))
        return RM_ERR_SVID_KEY_TYPE;
    if (key->type == ECC_PRIVATEKEY_ONLY && wc_ecc_make_pub(key, NULL) != 0)
        return RM_ERR_SVID_CA_KEY;
    return 0;
}

static int to_pem(const uint8_t *der, size_t der_len, int type, char **pem, size_t *pem_len)
{
    size_t cap = der_len * 2 + 128; /* base64 (4/3), line breaks and armour */
    char *out;
    int n;

    if ((out = malloc(cap + 1)) == NULL)
        return -ENOMEM;
    if ((n = wc_DerToPem(der, (word32)der_len, (byte *)out, (word32)cap, type)) <= 0) {
        free(out);
        return RM_ERR_SVID_ISSUE;
    }
    out[n] = '\0';
    *pem = out;
    *pem_len = (size_t)n;
    return 0;
}

/* PKCS#8 PEM of a private key. */
static int private_key_pem(ecc_key *key, char **pem, size_t *pem_len)
{
    uint8_t der[P256_KEY_DER_MAX];
    word32 der_len = sizeof(der);
    int ret;

    if (wc_EccPrivateKeyToPKCS8(key, der, &der_len) <= 0) {
        ret = RM_ERR_SVID_ISSUE;
        goto Exit;
    }
    ret = to_pem(der, der_len, PKCS8_PRIVATEKEY_TYPE, pem, pem_len);

Exit:
    explicit_bzero(der, sizeof(der));
    return ret;
}

void rm_x509_free_secret(char *secret, size_t len)
{
    if (secret == NULL)
        return;
    explicit_bzero(secret, len);
    free(secret);
}

/* ---- certificates -------------------------------------------------------------------------------------------- */

void rm_x509_issue_opts_init(rm_x509_issue_opts_t *opts)
{
    opts->now = 0;
    opts->ttl = RM_X509_DEFAULT_TTL;
    opts->backdate = RM_X509_DEFAULT_BACKDATE;
    opts->dns_names = NULL;
    opts->num_dns_names = 0;
}

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* An RFC 1123 host name as x509_issue.h spells the rule out. */
static int dns_name_check(const char *name)
{
    size_t len, label = 0, i;
    int all_digits = 1;

    if (name == NULL || (len = strlen(name)) == 0 || len > RM_X509_DNS_NAME_MAX)
        return -EINVAL;
    for (i = 0; i <= len; ++i) {
        char c = name[i];
        if (c == '.' || c == '\0') {
            /* a label ends: not empty, not too long, no hyphen at either end */
            if (label == 0 || label > 63 || name[i - 1] == '-')
                return -EINVAL;
            if (c == '\0')
                break;
            label = 0;
            all_digits = 1;
            continue;
        }
        if (!is_alnum(c) && !(c == '-' && label != 0))
            return -EINVAL;
        if (c < '0' || c > '9')
            all_digits = 0;
        ++label;
    }
    /* "10.0.0.1" is an address, which belongs in an iPAddress SAN */
    return all_digits ? -EINVAL : 0;
}

static int dns_names_check(const rm_x509_issue_opts_t *opts)
{
    size_t i;
    int ret;

    if (opts->num_dns_names == 0)
        return 0;
    if (opts->dns_names == NULL || opts->num_dns_names > RM_X509_MAX_DNS_NAMES)
        return -EINVAL;
    for (i = 0; i != opts->num_dns_names; ++i)
        if ((ret = dns_name_check(opts->dns_names[i])) != 0)
            return ret;
    return 0;
}

static int validity(const rm_x509_issue_opts_t *opts, time_t *not_before, time_t *not_after)
{
    time_t now = opts->now != 0 ? opts->now : time(NULL);

    if (opts->ttl <= 0 || opts->ttl > MAX_TTL || opts->backdate < 0 || opts->backdate > MAX_TTL)
        return -EINVAL;
    *not_before = now - (time_t)opts->backdate;
    *not_after = *not_before + (time_t)opts->ttl;
    return 0;
}

/* What differs between a root and a leaf. */
typedef struct st_cert_plan_t {
    int is_ca;
    const char *uri;
    const uint8_t *subject; /* whole Name */
    size_t subject_len;
    const uint8_t *issuer; /* whole Name */
    size_t issuer_len;
    const uint8_t *spki;
    size_t spki_len;
    const uint8_t *skid; /* KEY_ID_LEN bytes */
    const uint8_t *akid; /* may be NULL */
    size_t akid_len;
    const char *const *dns_names; /* after the URI, checked with dns_names_check() */
    size_t num_dns_names;
    time_t not_before, not_after;
    const uint8_t *serial; /* SERIAL_LEN bytes */
} cert_plan_t;

static int encode_tbs(rm_bytebuf_t *d, const cert_plan_t *plan)
{
    static const uint8_t V3[] = {0x02};
    size_t tbs, mark, exts, seq, m[2], i;
    int ret;

    tbs = der_open(d, TAG_SEQUENCE);
    mark = der_open(d, 0xa0);
    der_uint(d, V3, 1);
    der_close(d, mark);
    der_uint(d, plan->serial, SERIAL_LEN);
    der_sig_alg(d);
    rm_bytebuf_append(d, plan->issuer, plan->issuer_len);
    mark = der_open(d, TAG_SEQUENCE);
    if ((ret = der_time(d, plan->not_before)) != 0 || (ret = der_time(d, plan->not_after)) != 0)
        return ret;
    der_close(d, mark);
    rm_bytebuf_append(d, plan->subject, plan->subject_len);
    rm_bytebuf_append(d, plan->spki, plan->spki_len);

    mark = der_open(d, 0xa3);
    exts = der_open(d, TAG_SEQUENCE);
    /* basicConstraints, critical; cA=FALSE is the DEFAULT and so encoded as an empty SEQUENCE */
    der_ext_open(d, OID_BASIC_CONSTRAINTS, sizeof(OID_BASIC_CONSTRAINTS), 1, m);
    seq = der_open(d, TAG_SEQUENCE);
    if (plan->is_ca) {
        static const uint8_t TRUE_[] = {0xff};
        der_tlv(d, TAG_BOOLEAN, TRUE_, 1);
    }
    der_close(d, seq);
    der_ext_close(d, m);
    /* keyUsage, critical */
    der_ext_open(d, OID_KEY_USAGE, sizeof(OID_KEY_USAGE), 1, m);
    der_key_usage(d, plan->is_ca ? RM_KU_KEY_CERT_SIGN | RM_KU_CRL_SIGN : RM_KU_DIGITAL_SIGNATURE);
    der_ext_close(d, m);
    if (!plan->is_ca) {
        der_ext_open(d, OID_EXT_KEY_USAGE, sizeof(OID_EXT_KEY_USAGE), 0, m);
        seq = der_open(d, TAG_SEQUENCE);
        der_tlv(d, TAG_OID, OID_KP_SERVER_AUTH, sizeof(OID_KP_SERVER_AUTH));
        der_tlv(d, TAG_OID, OID_KP_CLIENT_AUTH, sizeof(OID_KP_CLIENT_AUTH));
        der_close(d, seq);
        der_ext_close(d, m);
    }
    /* subjectAltName: the one URI (GeneralName uniformResourceIdentifier [6] IA5String), then any DNS names
     * (dNSName [2] IA5String) */
    der_ext_open(d, OID_SAN, sizeof(OID_SAN), 0, m);
    seq = der_open(d, TAG_SEQUENCE);
    der_tlv(d, 0x86, plan->uri, strlen(plan->uri));
    for (i = 0; i != plan->num_dns_names; ++i)
        der_tlv(d, 0x82, plan->dns_names[i], strlen(plan->dns_names[i]));
    der_close(d, seq);
    der_ext_close(d, m);
    der_ext_open(d, OID_SKID, sizeof(OID_SKID), 0, m);
    der_tlv(d, TAG_OCTET_STRING, plan->skid, KEY_ID_LEN);
    der_ext_close(d, m);
    if (plan->akid != NULL) {
        der_ext_open(d, OID_AKID, sizeof(OID_AKID), 0, m);
        seq = der_open(d, TAG_SEQUENCE);
        der_tlv(d, 0x80, plan->akid, plan->akid_len); /* keyIdentifier [0] */
        der_close(d, seq);
        der_ext_close(d, m);
    }
    der_close(d, exts);
    der_close(d, mark);
    der_close(d, tbs);
    return d->failed ? -ENOMEM : 0;
}

/* Encodes, signs with `signer` and wraps the certificate; on success *der is malloc'd. */
static int sign_cert(const cert_plan_t *plan, ecc_key *signer, WC_RNG *rng, uint8_t **der, size_t *der_len)
{
    rm_bytebuf_t tbs = {0}, cert = {0};
    uint8_t hash[WC_SHA256_DIGEST_SIZE], sig[2 * 66 + 16];
    word32 sig_len = sizeof(sig);
    size_t seq, bits;
    int ret;

    if ((ret = encode_tbs(&tbs, plan)) != 0)
        goto Exit;
    if (wc_Sha256Hash(tbs.base, (word32)tbs.len, hash) != 0 ||
        wc_ecc_sign_hash(hash, sizeof(hash), sig, &sig_len, rng, signer) != 0) {
        ret = RM_ERR_SVID_ISSUE;
        goto Exit;
    }
    seq = der_open(&cert, TAG_SEQUENCE);
    rm_bytebuf_append(&cert, tbs.base, tbs.len);
    der_sig_alg(&cert);
    bits = der_open(&cert, TAG_BIT_STRING);
    rm_bytebuf_append_byte(&cert, 0);
    rm_bytebuf_append(&cert, sig, sig_len);
    der_close(&cert, bits);
    der_close(&cert, seq);
    if (cert.failed) {
        ret = -ENOMEM;
        goto Exit;
    }
    *der_len = cert.len;
    *der = rm_bytebuf_release(&cert);
    ret = 0;

Exit:
    rm_bytebuf_free(&tbs);
    rm_bytebuf_free(&cert);
    return ret;
}

static int random_serial(WC_RNG *rng, uint8_t serial[SERIAL_LEN])
{
    if (wc_RNG_GenerateBlock(rng, serial, SERIAL_LEN) != 0)
        return RM_ERR_SVID_ISSUE;
    /* positive, and no leading zero octet for DER to strip: 158 random bits remain */
    serial[0] = (uint8_t)((serial[0] & 0x3f) | 0x40);
    return 0;
}

int rm_x509_generate_key(char **key_pem, size_t *key_len, uint8_t **spki_der, size_t *spki_len)
{
    WC_RNG rng;
    ecc_key key;
    uint8_t spki[P256_SPKI_MAX], key_id[KEY_ID_LEN];
    size_t len;
    int ret, have_rng = 0, have_key = 0;

    *key_pem = NULL;
    *spki_der = NULL;
    if (wc_InitRng(&rng) != 0 || (have_rng = 1, wc_ecc_init(&key) != 0) ||
        (have_key = 1, wc_ecc_make_key_ex(&rng, 32, &key, ECC_SECP256R1) != 0)) {
        ret = RM_ERR_SVID_ISSUE;
        goto Exit;
    }
    if ((ret = export_public(&key, spki, &len, key_id)) != 0)
        goto Exit;
    if ((*spki_der = malloc(len)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    memcpy(*spki_der, spki, len);
    *spki_len = len;
    if ((ret = private_key_pem(&key, key_pem, key_len)) != 0) {
        free(*spki_der);
        *spki_der = NULL;
        goto Exit;
    }

Exit:
    if (have_key)
        wc_ecc_free(&key);
    if (have_rng)
        wc_FreeRng(&rng);
    return ret;
}

int rm_x509_make_root_ca(const char *trust_domain, const rm_x509_issue_opts_t *opts, char **cert_pem, size_t *cert_len,
                         char **key_pem, size_t *key_len)
{
    WC_RNG rng;
    ecc_key key;
    uint8_t serial[SERIAL_LEN], spki[P256_SPKI_MAX], key_id[KEY_ID_LEN], *der = NULL;
    char uri[sizeof("spiffe://") + RM_TRUST_DOMAIN_MAX], cn[64];
    rm_bytebuf_t name = {0};
    cert_plan_t plan = {0};
    size_t der_len = 0, td_len, seq;
    int ret, have_rng = 0, have_key = 0;

    *cert_pem = NULL;
    *key_pem = NULL;
    td_len = strlen(trust_domain);
    if ((ret = rm_trust_domain_check(trust_domain, td_len)) != 0)
        goto Exit;
    if ((ret = validity(opts, &plan.not_before, &plan.not_after)) != 0)
        goto Exit;
    if (opts->num_dns_names != 0) {
        ret = -EINVAL;
        goto Exit;
    }
    if (wc_InitRng(&rng) != 0 || (have_rng = 1, wc_ecc_init(&key) != 0) ||
        (have_key = 1, wc_ecc_make_key_ex(&rng, 32, &key, ECC_SECP256R1) != 0)) {
        ret = RM_ERR_SVID_ISSUE;
        goto Exit;
    }
    if ((ret = random_serial(&rng, serial)) != 0 || (ret = export_public(&key, spki, &plan.spki_len, key_id)) != 0)
        goto Exit;

    /* Subject: O=<trust domain> when it fits the X.520 upper bound of 64, and a CN that tells roots of one
     * trust domain apart (two coexist while a root is rotated). */
    snprintf(cn, sizeof(cn), "ringmesh root CA %02x%02x%02x%02x", serial[1], serial[2], serial[3], serial[4]);
    seq = der_open(&name, TAG_SEQUENCE);
    der_name_attr(&name, OID_AT_O, sizeof(OID_AT_O), td_len <= 64 ? trust_domain : "ringmesh");
    der_name_attr(&name, OID_AT_CN, sizeof(OID_AT_CN), cn);
    der_close(&name, seq);
    if (name.failed) {
        ret = -ENOMEM;
        goto Exit;
    }
    snprintf(uri, sizeof(uri), "spiffe://%s", trust_domain);
    plan.is_ca = 1;
    plan.uri = uri;
    plan.subject = plan.issuer = name.base;
    plan.subject_len = plan.issuer_len = name.len;
    plan.spki = spki;
    plan.skid = key_id;
    plan.akid = key_id;
    plan.akid_len = KEY_ID_LEN;
    plan.serial = serial;
    if ((ret = sign_cert(&plan, &key, &rng, &der, &der_len)) != 0)
        goto Exit;
    if ((ret = to_pem(der, der_len, CERT_TYPE, cert_pem, cert_len)) != 0)
        goto Exit;
    if ((ret = private_key_pem(&key, key_pem, key_len)) != 0) {
        free(*cert_pem);
        *cert_pem = NULL;
        goto Exit;
    }

Exit:
    free(der);
    rm_bytebuf_free(&name);
    if (have_key)
        wc_ecc_free(&key);
    if (have_rng)
        wc_FreeRng(&rng);
    return ret;
}

/* Reads an unencrypted PKCS#8 or SEC1 PEM private key into traditional DER. */
static int private_key_der(const char *pem, size_t len, uint8_t **der, size_t *der_len)
{
    uint8_t *buf;
    word32 idx = 0;
    int n, ret;

    if (len == 0 || len > INT_MAX)
        return RM_ERR_SVID_CA_KEY;
    if ((buf = malloc(len)) == NULL)
        return -ENOMEM;
    if ((n = wc_KeyPemToDer((const unsigned char *)pem, (int)len, buf, (int)len, NULL)) <= 0) {
        ret = RM_ERR_SVID_CA_KEY;
        goto Exit;
    }
    /* strip a PKCS#8 wrapper when there is one */
    if (wc_GetPkcs8TraditionalOffset(buf, &idx, (word32)n) < 0)
        idx = 0;
    memmove(buf, buf + idx, (size_t)n - idx);
    *der = buf;
    *der_len = (size_t)n - idx;
    explicit_bzero(buf + *der_len, len - *der_len);
    buf = NULL;
    ret = 0;

Exit:
    if (buf != NULL) {
        explicit_bzero(buf, len);
        free(buf);
    }
    return ret;
}

int rm_x509_ca_load_pem(rm_x509_ca_t **out, const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len)
{
    rm_x509_ca_t *ca;
    rm__der_cert_t *certs = NULL;
    rm_x509_info_t *info = NULL;
    ecc_key key;
    ca_fields_t fields;
    uint8_t spki[P256_SPKI_MAX], key_id[KEY_ID_LEN];
    size_t n = 0, i, spki_len;
    int ret, have_key = 0;

    *out = NULL;
    if ((ca = calloc(1, sizeof(*ca))) == NULL)
        return -ENOMEM;
    if ((ret = rm__pem_to_der_certs(cert_pem, cert_len, &certs, &n)) != 0)
        goto Exit;
    if ((info = malloc(sizeof(*info))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    if ((ret = rm_x509_parse_der(certs[0].der, certs[0].len, info)) != 0 || (ret = rm_svid_check_signer(info)) != 0)
        goto Exit;
    if ((ret = read_ca_fields(certs[0].der, certs[0].len, &fields)) != 0)
        goto Exit;

    /* the key must be P-256 and the one the certificate names */
    if ((ret = private_key_der(key_pem, key_len, &ca->key_der, &ca->key_len)) != 0)
        goto Exit;
    if (wc_ecc_init(&key) != 0) {
        ret = RM_ERR_SVID_ISSUE;
        goto Exit;
    }
    have_key = 1;
    if ((ret = import_private(ca->key_der, ca->key_len, &key)) != 0)
        goto Exit;
    if ((ret = export_public(&key, spki, &spki_len, key_id)) != 0)
        goto Exit;
    if (spki_len != fields.spki.len || memcmp(spki, fields.spki.p, spki_len) != 0) {
        ret = RM_ERR_SVID_CA_KEY;
        goto Exit;
    }

    /* the chain to send after a leaf: every certificate of the file except self-signed ones */
    for (i = 0; i != n; ++i) {
        char *pem;
        size_t pem_len;
        if (rm__x509_is_self_issued(certs[i].der, certs[i].len))
            continue;
        if ((ret = to_pem(certs[i].der, certs[i].len, CERT_TYPE, &pem, &pem_len)) != 0)
            goto Exit;
        ret = rm_bytebuf_append(&ca->chain, pem, pem_len);
        free(pem);
        if (ret != 0)
            goto Exit;
    }
    ca->cert_der = certs[0].der;
    ca->cert_len = certs[0].len;
    certs[0].der = NULL;
    *out = ca;
    ca = NULL;
    ret = 0;

Exit:
    if (have_key)
        wc_ecc_free(&key);
    free(info);
    rm__der_certs_free(certs, n);
    rm_x509_ca_free(ca);
    return ret;
}

void rm_x509_ca_free(rm_x509_ca_t *ca)
{
    if (ca == NULL)
        return;
    if (ca->key_der != NULL) {
        explicit_bzero(ca->key_der, ca->key_len);
        free(ca->key_der);
    }
    free(ca->cert_der);
    rm_bytebuf_free(&ca->chain);
    free(ca);
}

int rm_x509_sign_svid(const rm_x509_ca_t *ca, const uint8_t *spki_der, size_t spki_len, const char *spiffe_id,
                      const rm_x509_issue_opts_t *opts, char **cert_pem, size_t *cert_len)
{
    static const char LEAF_O[] = "ringmesh";
    WC_RNG rng;
    ecc_key subject_key, ca_key;
    ca_fields_t ca_fields;
    rm_spiffe_id_t *id = NULL;
    uint8_t serial[SERIAL_LEN], spki[P256_SPKI_MAX], key_id[KEY_ID_LEN], *der = NULL;
    rm_bytebuf_t name = {0};
    cert_plan_t plan = {0};
    char *leaf_pem = NULL, *all;
    size_t der_len = 0, leaf_len = 0, seq;
    int ret, have_rng = 0, have_subject = 0, have_ca = 0;

    *cert_pem = NULL;
    if ((id = malloc(sizeof(*id))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    if ((ret = rm_spiffe_workload_id_parse(spiffe_id, strlen(spiffe_id), id)) != 0)
        goto Exit;
    if ((ret = validity(opts, &plan.not_before, &plan.not_after)) != 0 || (ret = dns_names_check(opts)) != 0)
        goto Exit;
    if ((ret = read_ca_fields(ca->cert_der, ca->cert_len, &ca_fields)) != 0)
        goto Exit;
    if (wc_ecc_init(&subject_key) != 0) {
        ret = RM_ERR_SVID_ISSUE;
        goto Exit;
    }
    have_subject = 1;
    if ((ret = import_spki(spki_der, spki_len, &subject_key)) != 0)
        goto Exit;
    if ((ret = export_public(&subject_key, spki, &plan.spki_len, key_id)) != 0)
        goto Exit;
    if (wc_ecc_init(&ca_key) != 0) {
        ret = RM_ERR_SVID_ISSUE;
        goto Exit;
    }
    have_ca = 1;
    if ((ret = import_private(ca->key_der, ca->key_len, &ca_key)) != 0)
        goto Exit;
    if (wc_InitRng(&rng) != 0) {
        ret = RM_ERR_SVID_ISSUE;
        goto Exit;
    }
    have_rng = 1;
    if ((ret = random_serial(&rng, serial)) != 0)
        goto Exit;

    seq = der_open(&name, TAG_SEQUENCE);
    der_name_attr(&name, OID_AT_O, sizeof(OID_AT_O), LEAF_O);
    der_close(&name, seq);
    if (name.failed) {
        ret = -ENOMEM;
        goto Exit;
    }
    plan.is_ca = 0;
    plan.uri = id->str;
    plan.dns_names = opts->dns_names;
    plan.num_dns_names = opts->num_dns_names;
    plan.subject = name.base;
    plan.subject_len = name.len;
    plan.issuer = ca_fields.subject.p;
    plan.issuer_len = ca_fields.subject.len;
    plan.spki = spki;
    plan.skid = key_id;
    if (ca_fields.skid.len != 0) {
        plan.akid = ca_fields.skid.p;
        plan.akid_len = ca_fields.skid.len;
    }
    plan.serial = serial;
    if ((ret = sign_cert(&plan, &ca_key, &rng, &der, &der_len)) != 0)
        goto Exit;
    if ((ret = to_pem(der, der_len, CERT_TYPE, &leaf_pem, &leaf_len)) != 0)
        goto Exit;
    if ((all = malloc(leaf_len + ca->chain.len + 1)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    memcpy(all, leaf_pem, leaf_len);
    if (ca->chain.len != 0)
        memcpy(all + leaf_len, ca->chain.base, ca->chain.len);
    all[leaf_len + ca->chain.len] = '\0';
    *cert_pem = all;
    *cert_len = leaf_len + ca->chain.len;
    ret = 0;

Exit:
    free(leaf_pem);
    free(der);
    rm_bytebuf_free(&name);
    free(id);
    if (have_rng)
        wc_FreeRng(&rng);
    if (have_ca)
        wc_ecc_free(&ca_key);
    if (have_subject)
        wc_ecc_free(&subject_key);
    return ret;
}

int rm_x509_issue_svid(const rm_x509_ca_t *ca, const char *spiffe_id, const rm_x509_issue_opts_t *opts, char **cert_pem,
                       size_t *cert_len, char **key_pem, size_t *key_len)
{
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    int ret;

    *cert_pem = NULL;
    *key_pem = NULL;
    /* check what the caller controls before spending a key generation */
    if ((ret = rm_spiffe_workload_id_parse(spiffe_id, strlen(spiffe_id), NULL)) != 0 ||
        (ret = dns_names_check(opts)) != 0)
        goto Exit;
    if ((ret = rm_x509_generate_key(key_pem, key_len, &spki, &spki_len)) != 0)
        goto Exit;
    if ((ret = rm_x509_sign_svid(ca, spki, spki_len, spiffe_id, opts, cert_pem, cert_len)) != 0) {
        rm_x509_free_secret(*key_pem, *key_len);
        *key_pem = NULL;
        goto Exit;
    }

Exit:
    free(spki);
    return ret;
}

int rm_x509_write_file(const char *path, const char *data, size_t len, int is_private)
{
    const char *slash = strrchr(path, '/');
    char *tmp = NULL;
    size_t dir_len = slash != NULL ? (size_t)(slash - path) + 1 : 0;
    ssize_t wrote;
    int fd = -1, ret;

    if ((tmp = malloc(dir_len + sizeof(".rm-tmp-XXXXXX"))) == NULL)
        return -ENOMEM;
    memcpy(tmp, path, dir_len);
    strcpy(tmp + dir_len, ".rm-tmp-XXXXXX");
    /* mkstemp creates the file O_EXCL with mode 0600; widen it only for public files, before writing */
    if ((fd = mkstemp(tmp)) < 0) {
        ret = -errno;
        free(tmp);
        return ret;
    }
    if (fchmod(fd, is_private ? 0600 : 0644) != 0) {
        ret = -errno;
        goto Exit;
    }
    while (len != 0) {
        if ((wrote = write(fd, data, len)) < 0) {
            if (errno == EINTR)
                continue;
            ret = -errno;
            goto Exit;
        }
        data += wrote;
        len -= (size_t)wrote;
    }
    if (fsync(fd) != 0) {
        ret = -errno;
        goto Exit;
    }
    if (close(fd) != 0) {
        fd = -1;
        ret = -errno;
        goto Exit;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        ret = -errno;
        goto Exit;
    }
    ret = 0;

Exit:
    if (fd >= 0)
        close(fd);
    if (ret != 0)
        unlink(tmp);
    free(tmp);
    return ret;
}
