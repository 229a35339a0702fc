/* PKCS#10 certificate signing requests: the sidecar makes one for the key it generated; the control plane
 * checks it and takes only the public key from it (never the subject or SANs it asks for).
 *
 * Functions return 0 or an error from error.h: RM_ERR_CSR_PARSE, RM_ERR_CSR_SIGNATURE, RM_ERR_SVID_KEY_TYPE,
 * RM_ERR_SVID_ISSUE, -EINVAL or -ENOMEM. */
#ifndef RINGMESH_CSR_H
#define RINGMESH_CSR_H

#include <stddef.h>
#include <stdint.h>

/** Makes a PEM "CERTIFICATE REQUEST" for the ECDSA P-256 private key `key_pem` (PKCS#8 or SEC1 PEM), signed
 *  with it (ECDSA with SHA-256). `spiffe_id` (may be NULL) is put in a URI SAN as a hint for humans reading
 *  the request; the control plane ignores it. On success *csr_pem is NUL-terminated (free()). */
int rm_csr_make(const char *key_pem, size_t key_len, const char *spiffe_id, char **csr_pem, size_t *csr_len);

/** Parses a PEM CSR (at most 16 KiB), verifies its self-signature (proof that the requester holds the key)
 *  and requires an ECDSA P-256 key. On success *spki_der (free()) is the request's SubjectPublicKeyInfo in
 *  DER, ready for rm_x509_sign_svid(). */
int rm_csr_parse_pem(const char *csr_pem, size_t len, uint8_t **spki_der, size_t *spki_len);

#endif
