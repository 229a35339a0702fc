/* Issuing X.509-SVIDs and the root CA that signs them (ECDSA P-256, SHA-256), as the SPIFFE X509-SVID
 * specification asks:
 *
 * - root CA: self-signed, basicConstraints critical cA=TRUE, keyUsage critical keyCertSign+cRLSign, one URI SAN
 *   "spiffe://<trust domain>";
 * - SVID leaf: exactly one URI SAN (the SPIFFE ID), then the DNS SANs asked for if any, basicConstraints critical
 *   cA=FALSE, keyUsage critical digitalSignature, extKeyUsage serverAuth+clientAuth, subject and authority key
 *   identifiers.
 *
 * Every certificate gets a 20-byte serial (158 random bits from the CSPRNG) and NotBefore = now - backdate.
 * Signing a given public key (what the control plane does with a CSR) is separate from generating a key and
 * signing it (what the CLI does). Key material is returned in memory only; free it with rm_x509_free_secret().
 * Functions return 0, a negative errno, or an RM_ERR_SPIFFE_* / RM_ERR_SVID_* code (see error.h). */
#ifndef RINGMESH_X509_ISSUE_H
#define RINGMESH_X509_ISSUE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define RM_X509_DEFAULT_TTL      (24 * 3600) /* seconds */
#define RM_X509_DEFAULT_BACKDATE (5 * 60)    /* seconds */

#define RM_X509_MAX_DNS_NAMES 64  /* DNS SANs one SVID may carry */
#define RM_X509_DNS_NAME_MAX  253 /* bytes in one DNS name, RFC 1035 */

/** Validity (and extra names) of a certificate to issue. Fill with rm_x509_issue_opts_init(), then change what
 *  differs. */
typedef struct st_rm_x509_issue_opts_t {
    time_t now;       /* issuance time; 0 means time(NULL) */
    int64_t backdate; /* NotBefore = now - backdate (clock skew allowance); 0 <= backdate <= 100 years */
    int64_t ttl;      /* lifetime: NotAfter = NotBefore + ttl, so backdate > ttl gives an expired certificate
                       * (for tests); 0 < ttl <= 100 years */
    /* DNS names an SVID carries as dNSName SANs after its one URI SAN (the X509-SVID specification allows other
     * SAN types beside the URI): a server's SVID naming the host names clients dial. Each must be an RFC 1123
     * host name (labels of letters, digits and inner hyphens, 1..63 bytes each, at most RM_X509_DNS_NAME_MAX in
     * all, no trailing dot, no wildcard, a last label that is not all digits); at most RM_X509_MAX_DNS_NAMES.
     * The caller keeps ownership. Roots carry none. */
    const char *const *dns_names;
    size_t num_dns_names;
} rm_x509_issue_opts_t;

/** Sets now = 0 (the current time), ttl = RM_X509_DEFAULT_TTL, backdate = RM_X509_DEFAULT_BACKDATE and no DNS
 *  names. */
void rm_x509_issue_opts_init(rm_x509_issue_opts_t *opts);

/** A signing CA: its certificate, the chain above it and its private key. Opaque; immutable once loaded. */
typedef struct st_rm_x509_ca_t rm_x509_ca_t;

/** Loads a CA from PEM. `cert_pem` holds the CA certificate first, optionally followed by the certificates above
 *  it; `key_pem` its ECDSA P-256 private key (PKCS#8 "PRIVATE KEY" or SEC1 "EC PRIVATE KEY", unencrypted).
 *  Returns 0; RM_ERR_SVID_PARSE (certificate unreadable); RM_ERR_SVID_CA_NOT_CA (not a CA with keyCertSign);
 *  RM_ERR_SVID_CA_KEY (key unreadable or not the certificate's); RM_ERR_SVID_KEY_TYPE; or -ENOMEM.
 *  The caller keeps ownership of both buffers (the key buffer can be wiped right after). */
int rm_x509_ca_load_pem(rm_x509_ca_t **out, const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len);

/** Wipes the CA's private key and frees it. NULL is fine. */
void rm_x509_ca_free(rm_x509_ca_t *ca);

/** Generates an ECDSA P-256 key pair. On success *key_pem is its PKCS#8 PEM (free with rm_x509_free_secret()) and
 *  *spki_der its SubjectPublicKeyInfo DER (free with free()). Returns 0, RM_ERR_SVID_ISSUE or -ENOMEM. */
int rm_x509_generate_key(char **key_pem, size_t *key_len, uint8_t **spki_der, size_t *spki_len);

/** Generates a key and a self-signed root CA for `trust_domain` (validated with rm_trust_domain_check()).
 *  On success *cert_pem (free()) and *key_pem (rm_x509_free_secret()) are NUL-terminated PEM.
 *  Returns 0, an RM_ERR_SPIFFE_* code for a bad trust domain, -EINVAL for bad opts (DNS names included),
 *  RM_ERR_SVID_ISSUE or -ENOMEM. */
int rm_x509_make_root_ca(const char *trust_domain, const rm_x509_issue_opts_t *opts, char **cert_pem, size_t *cert_len,
                         char **key_pem, size_t *key_len);

/** Signs an X.509-SVID for the ECDSA P-256 public key `spki_der` (a DER SubjectPublicKeyInfo) naming `spiffe_id`,
 *  with `ca`. The identity comes from the caller, never from the key's origin. On success *cert_pem (free()) is
 *  the leaf followed by the CA's certificates except self-signed ones (the root stays in the trust bundle).
 *  Returns 0; an RM_ERR_SPIFFE_* code for a bad ID, RM_ERR_SVID_NO_PATH for one without a path; RM_ERR_SVID_KEY_TYPE
 * for a key that is not P-256; -EINVAL for bad opts (a DNS name that breaks the rules above, too many of them);
 * RM_ERR_SVID_ISSUE; or -ENOMEM. */
int rm_x509_sign_svid(const rm_x509_ca_t *ca, const uint8_t *spki_der, size_t spki_len, const char *spiffe_id,
                      const rm_x509_issue_opts_t *opts, char **cert_pem, size_t *cert_len);

/** rm_x509_generate_key() then rm_x509_sign_svid(): a fresh key and its SVID, both as PEM. On failure nothing is
 *  returned. Same return values as those two. */
int rm_x509_issue_svid(const rm_x509_ca_t *ca, const char *spiffe_id, const rm_x509_issue_opts_t *opts, char **cert_pem,
                       size_t *cert_len, char **key_pem, size_t *key_len);

/** Zeroes `len` bytes of `secret` and frees it. NULL is fine. */
void rm_x509_free_secret(char *secret, size_t len);

/** Writes `data` to `path` through a temporary file in the same directory and a rename, so readers never see a
 *  partial file. The file is created with mode 0600 when `is_private`, 0644 otherwise (the umask does not widen
 *  a private file: the mode is set on the descriptor before any byte is written). Returns 0 or -errno. */
int rm_x509_write_file(const char *path, const char *data, size_t len, int is_private);

#endif
