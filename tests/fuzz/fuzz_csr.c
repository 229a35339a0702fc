/* rm_csr_parse_pem(): a PKCS#10 request as the control plane receives it in Identity.Sign.
 *
 * Every input is parsed twice: as it is (PEM, so the armour and base64 handling are fuzzed), and as DER wrapped
 * here in a well-formed "CERTIFICATE REQUEST" PEM block (so the request parser and the signature check behind the
 * armour are fuzzed with the input's bytes, not only with what survives base64 decoding).
 *
 * Checked: the return value is one of the documented codes; a failure gives no key (NULL) and a text over the
 * 16 KiB limit is refused unread; a success gives the canonical P-256 SubjectPublicKeyInfo (named curve,
 * uncompressed point: 91 bytes with a fixed 27-byte prefix), the same for the same request. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "ringmesh/csr.h"
#include "ringmesh/error.h"

#define CSR_PEM_MAX (16 * 1024)
#define SPKI_LEN    91

/* SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING { 0, uncompressed point tag 04 ... } } */
static const uint8_t P256_SPKI_PREFIX[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                           0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                           0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04};

static const char BEGIN[] = "-----BEGIN CERTIFICATE REQUEST-----\n", END[] = "-----END CERTIFICATE REQUEST-----\n";

/* Returns a malloc'd PEM block of `der` (base64 in lines of 64 characters, as openssl writes it) and its length in
 * *len, not NUL-terminated: the parser gets exactly *len bytes. */
static char *pem_of_der(const uint8_t *der, size_t size, size_t *len)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t chars = (size + 2) / 3 * 4, cap = sizeof(BEGIN) + chars + chars / 64 + 1 + sizeof(END), o = 0, col = 0;
    char *pem = malloc(cap);

    RM_FUZZ_CHECK(pem != NULL);
    memcpy(pem, BEGIN, sizeof(BEGIN) - 1);
    o = sizeof(BEGIN) - 1;
    for (size_t i = 0; i < size; i += 3) {
        uint32_t v =
            (uint32_t)der[i] << 16 | (i + 1 < size ? (uint32_t)der[i + 1] << 8 : 0) | (i + 2 < size ? der[i + 2] : 0);
        pem[o++] = b64[v >> 18 & 63];
        pem[o++] = b64[v >> 12 & 63];
        pem[o++] = i + 1 < size ? b64[v >> 6 & 63] : '=';
        pem[o++] = i + 2 < size ? b64[v & 63] : '=';
        if ((col += 4) == 64) {
            pem[o++] = '\n';
            col = 0;
        }
    }
    if (col != 0)
        pem[o++] = '\n';
    memcpy(pem + o, END, sizeof(END) - 1);
    o += sizeof(END) - 1;
    RM_FUZZ_CHECK(o <= cap);
    *len = o;
    return pem;
}

/* Parses `pem` (exactly `len` bytes), checks the contract and returns the result. */
static int parse_checked(const char *pem, size_t len)
{
    static uint8_t sentinel;
    uint8_t *spki = &sentinel, *again = NULL; /* a failed parse must set spki to NULL */
    size_t spki_len = 0, again_len = 0;
    int ret;

    ret = rm_csr_parse_pem(pem, len, &spki, &spki_len);
    RM_FUZZ_CHECK(ret == 0 || ret == RM_ERR_CSR_PARSE || ret == RM_ERR_CSR_SIGNATURE || ret == RM_ERR_SVID_KEY_TYPE ||
                  ret == RM_ERR_SVID_ISSUE || ret == -ENOMEM);
    if (len == 0 || len > CSR_PEM_MAX)
        RM_FUZZ_CHECK(ret == RM_ERR_CSR_PARSE);
    if (ret != 0) {
        RM_FUZZ_CHECK(spki == NULL);
        return ret;
    }
    RM_FUZZ_CHECK(spki != NULL && spki_len == SPKI_LEN);
    RM_FUZZ_CHECK(memcmp(spki, P256_SPKI_PREFIX, sizeof(P256_SPKI_PREFIX)) == 0);
    RM_FUZZ_CHECK(rm_csr_parse_pem(pem, len, &again, &again_len) == 0);
    RM_FUZZ_CHECK(again_len == spki_len && memcmp(again, spki, spki_len) == 0);
    free(again);
    free(spki);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *pem = (char *)rm_fuzz_memdup(data, size), *wrapped;
    size_t wrapped_len;

    parse_checked(pem, size);
    free(pem);

    wrapped = pem_of_der(data, size, &wrapped_len);
    parse_checked(wrapped, wrapped_len);
    free(wrapped);
    return 0;
}
