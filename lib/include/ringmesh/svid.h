/* SPIFFE IDs and X.509-SVIDs, following the SPIFFE ID and X509-SVID specifications.
 *
 * The syntax rules live in spiffe_id.c and the leaf rules in svid_rules.c, both free of wolfSSL; X.509
 * parsing, chain verification and issuance live in x509_wolfssl.c (the only one of these that includes
 * wolfSSL headers). Every function returns 0 on success or one RM_ERR_SPIFFE_* / RM_ERR_SVID_* code that
 * names the single rule that failed; rm_strerror() turns it into a sentence for logs and the CLI. */
#ifndef RINGMESH_SVID_H
#define RINGMESH_SVID_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define RM_SPIFFE_ID_MAX    2048 /* bytes, per the SPIFFE ID specification */
#define RM_TRUST_DOMAIN_MAX 255

/** A parsed SPIFFE ID. `str` is the NUL-terminated ID; the trust domain is str[9 .. 9+td_len). */
typedef struct st_rm_spiffe_id_t {
    char str[RM_SPIFFE_ID_MAX + 1];
    size_t len;
    size_t td_len;
} rm_spiffe_id_t;

/** Parses and validates `s` (length `len`, no NUL needed) as a SPIFFE ID. Returns 0 or RM_ERR_SPIFFE_*. */
int rm_spiffe_id_parse(const char *s, size_t len, rm_spiffe_id_t *out);

/** Validates a bare trust domain name. Returns 0 or RM_ERR_SPIFFE_*. */
int rm_trust_domain_check(const char *td, size_t len);

/** What a verifier expects of a peer's SVID. NULL/0 members are not checked. */
typedef struct st_rm_svid_expect_t {
    const char *trust_domain; /* the ID's trust domain must equal this */
    const char *const *ids;   /* the ID must equal one of these */
    size_t num_ids;
    /* trust domains accepted besides trust_domain (a mesh's trustDomainAliases); not checked without trust_domain */
    const char *const *trust_domain_aliases;
    size_t num_trust_domain_aliases;
} rm_svid_expect_t;

/** What the SVID rules need from a parsed leaf certificate. Filled by rm_x509_parse_der(). */
#define RM_X509_MAX_URIS        4
#define RM_KU_DIGITAL_SIGNATURE 0x80u /* bit values as in the DER KeyUsage first byte */
#define RM_KU_KEY_CERT_SIGN     0x04u
#define RM_KU_CRL_SIGN          0x02u
#define RM_EKU_SERVER_AUTH      0x1u /* id-kp-serverAuth */
#define RM_EKU_CLIENT_AUTH      0x2u /* id-kp-clientAuth */
#define RM_EKU_ANY              0x4u /* anyExtendedKeyUsage */
typedef struct st_rm_x509_info_t {
    int is_ca;              /* basicConstraints cA */
    int has_key_usage;      /* key usage extension present */
    unsigned key_usage;     /* RM_KU_* bits */
    int has_ext_key_usage;  /* extended key usage extension present */
    unsigned ext_key_usage; /* RM_EKU_* bits (other purposes are not kept) */
    time_t not_before, not_after;
    size_t num_uris; /* URI SANs seen (may exceed RM_X509_MAX_URIS; only that many are kept) */
    char uris[RM_X509_MAX_URIS][RM_SPIFFE_ID_MAX + 1];
} rm_x509_info_t;

/** Parses a DER certificate into `info` (no signature or date check). The first RM_X509_MAX_URIS URI SANs are
 *  copied; one longer than RM_SPIFFE_ID_MAX or holding a NUL is stored as "" (never a valid SPIFFE ID).
 *  Returns 0, RM_ERR_SVID_PARSE (then `info` is zeroed) or -ENOMEM. */
int rm_x509_parse_der(const uint8_t *der, size_t len, rm_x509_info_t *info);

/** Parses the first certificate of a PEM buffer as rm_x509_parse_der() does. Returns 0, RM_ERR_SVID_PARSE (no
 *  certificate, or one that does not decode) or -ENOMEM. */
int rm_x509_parse_pem_first(const char *pem, size_t len, rm_x509_info_t *info);

/** Whether a parsed SPIFFE ID names a workload: it has a path. The trust domain's own ID (no path) never may be a
 *  leaf SVID's (X509-SVID section 5.2) nor an identity a peer is expected to present. */
int rm_spiffe_id_has_path(const rm_spiffe_id_t *id);

/** rm_spiffe_id_parse() for an ID a leaf SVID may carry (to issue, or to expect of a peer): also refuses the trust
 *  domain's own ID with RM_ERR_SVID_NO_PATH (then `out` is not filled). `out` may be NULL. */
int rm_spiffe_workload_id_parse(const char *s, size_t len, rm_spiffe_id_t *out);

/** Applies the X509-SVID leaf rules (URI SAN count and syntax, a path in the SPIFFE ID, not a CA, key usage,
 *  extended key usage (when present, both serverAuth and clientAuth), validity at `now`, and `expect`) to a parsed
 *  leaf: the one rule set of every verifier (`ringmeshctl svid verify`, the proxy's handshakes, its own SVID).
 *  On success fills `id` (may be NULL). Returns 0 or the failed rule. `id` is also filled when the single URI SAN is
 *  a valid SPIFFE ID but a later rule fails (so a refusal can be logged with the peer's identity); otherwise
 *  id->len is 0. Only a 0 return makes `id` an authenticated ID. */
int rm_svid_check_leaf(const rm_x509_info_t *leaf, time_t now, const rm_svid_expect_t *expect, rm_spiffe_id_t *id);

/** The rule for a certificate that signs others (a root in a bundle or an intermediate in a chain): basicConstraints
 *  cA and a key usage extension with keyCertSign. Returns 0 or RM_ERR_SVID_CA_NOT_CA. */
int rm_svid_check_signer(const rm_x509_info_t *ca);

/** For the TLS backend, after wolfSSL has verified the peer's chain during the handshake: parses the peer's leaf
 *  (DER) and applies rm_svid_check_leaf() at `now`. Does not look at the chain. Fills `id` as
 *  rm_svid_check_leaf() does. Returns 0, RM_ERR_SVID_PARSE, another leaf rule, or -ENOMEM. */
int rm_svid_check_peer_der(const uint8_t *leaf_der, size_t len, time_t now, const rm_svid_expect_t *expect,
                           rm_spiffe_id_t *id);

/** A trust bundle: one or more root CA certificates. Opaque; owned by the caller of _load. */
typedef struct st_rm_trust_bundle_t rm_trust_bundle_t;

/** Loads every certificate of a PEM buffer as a trust anchor (other PEM blocks are ignored). The bundle is
 *  immutable once loaded and may be used by several threads at once. Returns 0; RM_ERR_SVID_PARSE when there is no
 *  certificate or one does not parse; RM_ERR_SVID_CA_NOT_CA when one is not a CA with keyCertSign; or -ENOMEM.
 *  On failure *out is NULL. */
int rm_trust_bundle_load_pem(rm_trust_bundle_t **out, const char *pem, size_t len);

/** Frees a bundle from rm_trust_bundle_load_pem(). NULL is fine. */
void rm_trust_bundle_free(rm_trust_bundle_t *b);

/** Verifies a PEM chain (leaf first, then intermediates in signing order) against `bundle` at `now`, then applies
 *  the leaf rules. On success fills `id` (may be NULL; filled on leaf-rule failures as rm_svid_check_leaf() says).
 *  Returns 0 or the failed rule: RM_ERR_SVID_PARSE; RM_ERR_SVID_UNTRUSTED (no path to a root, bad signature);
 *  RM_ERR_SVID_CA_NOT_CA (an intermediate is not a signing CA); RM_ERR_SVID_EXPIRED / _NOT_YET_VALID when an
 *  intermediate, the root the chain leads to, or the leaf is outside its validity at `now`; a leaf rule; or
 *  -ENOMEM. */
int rm_svid_verify_pem(const rm_trust_bundle_t *bundle, const char *chain_pem, size_t len, time_t now,
                       const rm_svid_expect_t *expect, rm_spiffe_id_t *id);

#endif
