/* ECDSA P-256 key helpers shared by the files that use wolfCrypt (only *_wolfssl.c files include this). */
#ifndef RINGMESH_ECC_INTERNAL_H
#define RINGMESH_ECC_INTERNAL_H

#include <stddef.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ecc.h>

/** Decodes an unencrypted PKCS#8 or SEC1 PEM ECDSA P-256 private key into `key` (initialised by the caller) and
 *  derives its public point when the PEM lacks it. Returns 0, -EINVAL (no PEM private key), RM_ERR_SVID_KEY_TYPE
 *  (a key that is not P-256) or -ENOMEM. The DER copy is wiped. */
int rm__ecc_load_private_pem(const char *pem, size_t len, ecc_key *key);

#endif
