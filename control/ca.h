/* The control plane's certificate authority: which key signs SVIDs, which roots the mesh trusts, and the
 * signing of a sidecar's CSR once its credential has been attested.
 *
 * Sources of the signing CA, in order:
 *  - cert_file + key_file: a root, or an intermediate followed by the certificates above it (a Kubernetes
 *    Secret in the chart). The root at the top of that chain is trusted.
 *  - neither: a self-signed root for trust_domain, generated at the first start and persisted in state_dir
 *    (ca-cert.pem 0644, ca-key.pem 0600, the directory 0700); later starts load it again, so the mesh keeps its
 *    root across restarts.
 *  - cert_pem + key_pem: the same, in memory (a Kubernetes Secret the control plane read through the API);
 *    `origin` names it in messages ("Secret ns/name"), keys named "tls.crt" and "tls.key". roots_pem (optional,
 *    the Secret's ca.crt) adds the roots it holds to the bundle; it must hold the root of cert_pem's chain.
 * extra_roots_file (optional) adds roots to the trust bundle without signing with them: the old root while a
 * root is rotated with overlap.
 *
 * An rm_ca_t is immutable once opened and every function below is safe to call from several threads. */
#ifndef RINGMESH_CONTROL_CA_H
#define RINGMESH_CONTROL_CA_H

#include <stddef.h>
#include <stdint.h>

#define RM_CA_MIN_TTL (5 * 60) /* seconds: the shortest SVID lifetime the control plane issues */

typedef struct st_rm_ca_config_t {
    const char *trust_domain; /* required */
    const char *cert_file;    /* NULL: generated root in state_dir */
    const char *key_file;     /* set exactly when cert_file is */
    const char *cert_pem;     /* in memory instead of cert_file (not NUL-terminated necessarily) */
    size_t cert_len;
    const char *key_pem; /* set exactly when cert_pem is; never logged */
    size_t key_len;
    const char *roots_pem; /* optional with cert_pem: more roots (ca.crt) */
    size_t roots_len;
    const char *origin;           /* with cert_pem: "Secret ns/name", for messages */
    const char *extra_roots_file; /* NULL: none */
    const char *state_dir;        /* required when cert_file is NULL */
    int64_t default_ttl;          /* SVID lifetime when the request asks for none; 0 means 24 h */
    int64_t max_ttl;              /* upper clamp; 0 means the default_ttl */
} rm_ca_config_t;

typedef struct st_rm_ca_t rm_ca_t;

/** Checks that the first certificate of `cert_pem` may sign for `trust_domain`: a SPIFFE ID among its URI SANs
 *  (a generated root carries spiffe://<trust domain>) must be of that trust domain; a CA without one is accepted.
 *  Returns 0 or RM_ERR_SVID_TRUST_DOMAIN / RM_ERR_SVID_PARSE with `what` and the reason in `err`. */
int rm_ca_check_trust_domain(const char *what, const char *cert_pem, size_t cert_len, const char *trust_domain,
                             char *err, size_t errlen);

/** Opens the CA as described above. On failure returns an error from error.h (or -errno) and a sentence naming
 *  the file and what is wrong in `err`; nothing is created on failure except a generated root that was
 *  completely written. */
int rm_ca_open(const rm_ca_config_t *cfg, rm_ca_t **out, char *err, size_t errlen);

void rm_ca_free(rm_ca_t *ca);

/** The trust bundle: every trusted root, PEM, NUL-terminated. Valid as long as `ca`. */
const char *rm_ca_bundle_pem(const rm_ca_t *ca, size_t *len);

/** When the CA stops being able to issue SVIDs that verify: the earliest notAfter (Unix seconds) of the signing CA
 *  certificate and of each certificate above it up to the root. Roots that are only trusted (extra_roots_file, the
 *  other roots of roots_pem: a root being rotated out) do not count. */
int64_t rm_ca_not_after(const rm_ca_t *ca);

/** The trust domain the CA issues for. */
const char *rm_ca_trust_domain(const rm_ca_t *ca);

/** An issued SVID. */
typedef struct st_rm_ca_issued_t {
    char *chain_pem; /* leaf first, then intermediates up to (not including) the root; rm_ca_issued_free() */
    size_t chain_len;
    int64_t not_before;
    int64_t not_after;
} rm_ca_issued_t;

/** Checks `csr_pem` (rm_csr_parse_pem()) and signs an SVID for its key naming `spiffe_id` (the attested
 *  identity; the CSR's own subject and SANs are ignored). `requested_ttl` 0 means the default; any other value
 *  is clamped to [RM_CA_MIN_TTL, max_ttl]. The lifetime counts from now (NotAfter = now + ttl); NotBefore is
 *  backdated 5 minutes for clock skew. Returns 0, RM_ERR_CSR_*, RM_ERR_SVID_KEY_TYPE, an RM_ERR_SPIFFE_*
 *  code for a bad ID, RM_ERR_SVID_ISSUE or -ENOMEM, with a sentence in `err`. */
int rm_ca_sign_csr(const rm_ca_t *ca, const char *csr_pem, size_t csr_len, const char *spiffe_id, int64_t requested_ttl,
                   rm_ca_issued_t *out, char *err, size_t errlen);

/** Issues the control plane's own serving certificate: a fresh P-256 key and an SVID for `spiffe_id` that also
 *  carries the DNS names `dns_names` (the names sidecars dial). *key_pem is freed with rm_x509_free_secret(). */
int rm_ca_issue_serving(const rm_ca_t *ca, const char *spiffe_id, const char *const *dns_names, size_t num_dns_names,
                        int64_t ttl, char **cert_pem, size_t *cert_len, char **key_pem, size_t *key_len);

/** Frees what `issued` holds (not the struct itself, which the caller owns) and zeroes it. A zeroed struct is
 *  fine. */
void rm_ca_issued_free(rm_ca_issued_t *issued);

#endif
