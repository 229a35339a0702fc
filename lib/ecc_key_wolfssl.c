#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include "ecc_internal.h"
#include "ringmesh/error.h"

/* Decodes an unencrypted PKCS#8 or SEC1 PEM private key into `key` (initialised by the caller). -EINVAL when the
 * PEM holds no private key; RM_ERR_SVID_KEY_TYPE when it holds one that is not ECDSA P-256. */
int rm__ecc_load_private_pem(const char *pem, size_t len, ecc_key *key)
{
    uint8_t *der;
    word32 idx = 0, key_idx = 0;
    int n, ret;

    if (pem == NULL || len == 0 || len > INT_MAX)
        return -EINVAL;
    if ((der = malloc(len)) == NULL)
        return -ENOMEM;
    if ((n = wc_KeyPemToDer((const unsigned char *)pem, (int)len, der, (int)len, NULL)) <= 0) {
        ret = -EINVAL;
        goto Exit;
    }
    /* strip a PKCS#8 wrapper when there is one */
    if (wc_GetPkcs8TraditionalOffset(der, &idx, (word32)n) < 0)
        idx = 0;
    if (wc_EccPrivateKeyDecode(der + idx, &key_idx, key, (word32)n - idx) != 0 || key->dp == NULL ||
        key->dp->id != ECC_SECP256R1) {
        ret = RM_ERR_SVID_KEY_TYPE;
        goto Exit;
    }
    if (key->type == ECC_PRIVATEKEY_ONLY && wc_ecc_make_pub(key, NULL) != 0) {
        ret = RM_ERR_SVID_KEY_TYPE;
        goto Exit;
    }
    ret = 0;

Exit:
    explicit_bzero(der, len);
    free(der);
    return ret;
}
