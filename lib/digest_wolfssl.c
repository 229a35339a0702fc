#include "ringmesh/digest.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha256.h>

void rm_sha256(const void *data, size_t len, uint8_t out[RM_SHA256_LEN])
{
    /* wc_Sha256Hash only fails on bad arguments or hardware errors; the software path cannot fail. */
    (void)wc_Sha256Hash((const byte *)data, (word32)len, out);
}

void rm_hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * len] = '\0';
}
