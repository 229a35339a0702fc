/* Internal to lib/tls_wolfssl.c, declared here for its unit tests: not part of any module's contract. */
#ifndef RINGMESH_TLS_INTERNAL_H
#define RINGMESH_TLS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/** Verifies an ECDSA signature (DER) over `hash` with the public key `key_der` (a DER SubjectPublicKeyInfo), as
 *  wolfSSL's own certificate and CertificateVerify checks do, remembering the inputs of every signature that
 *  verified in this thread's memo so that the same check again is a lookup. Sets *valid to 1 or 0; returns 0, or a
 *  negative wolfSSL error when the key does not decode (then *valid is 0). */
int rm__tls_ecdsa_verify(const uint8_t *key_der, size_t key_len, const uint8_t *hash, size_t hash_len,
                         const uint8_t *sig, size_t sig_len, int *valid);

/** Forgets every remembered signature of this thread. */
void rm__tls_memo_clear(void);

#endif
