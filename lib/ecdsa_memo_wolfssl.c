/* Remembered ECDSA verifications, for the TLS backend (tls_wolfssl.c calls them from wolfSSL's ECDSA verify
 * callback); wolfCrypt only, no TLS state. Declared in tls_internal.h.
 *
 * A full handshake verifies two ECDSA signatures of the peer: its certificate's, made by the CA (one more per
 * intermediate), and its CertificateVerify over this handshake's transcript. The first is the same on every
 * connection from the same peer until its SVID rotates, so its verification, a pure function of (public key, hash,
 * signature), is remembered: wolfSSL's ECDSA verify callback (HAVE_PK_CALLBACKS) looks the three up in a per-thread
 * table of the SHA-256 of every triple that verified, and computes only on a miss. Only successes are stored; whether
 * the key is a trusted CA's, the validity dates and the SVID rules are still decided on every handshake, and the
 * CertificateVerify, unique per handshake, is always computed. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "ringmesh/tls.h"
#include "tls_internal.h"

#include <stdint.h>
#include <string.h>

#define MEMO_SLOTS 128 /* direct-mapped by the first bytes of the digest: 4 KB per thread */

static _Thread_local uint8_t memo[MEMO_SLOTS][WC_SHA256_DIGEST_SIZE];
static _Thread_local uint8_t memo_used[MEMO_SLOTS];
static _Thread_local rm_tls_verify_stats_t memo_stats;

static void put_len(uint8_t *p, size_t n)
{
    p[0] = (uint8_t)(n >> 24), p[1] = (uint8_t)(n >> 16), p[2] = (uint8_t)(n >> 8), p[3] = (uint8_t)n;
}

/* SHA-256 over the three inputs, each preceded by its length so that no two triples share an encoding. */
static int memo_digest(const uint8_t *key, size_t key_len, const uint8_t *hash, size_t hash_len, const uint8_t *sig,
                       size_t sig_len, uint8_t out[WC_SHA256_DIGEST_SIZE])
{
    wc_Sha256 sha;
    uint8_t lens[12];
    int ret;

    put_len(lens, key_len), put_len(lens + 4, hash_len), put_len(lens + 8, sig_len);
    if ((ret = wc_InitSha256(&sha)) != 0)
        return ret;
    if ((ret = wc_Sha256Update(&sha, lens, sizeof(lens))) == 0 && (ret = wc_Sha256Update(&sha, key, key_len)) == 0 &&
        (ret = wc_Sha256Update(&sha, hash, hash_len)) == 0 && (ret = wc_Sha256Update(&sha, sig, sig_len)) == 0)
        ret = wc_Sha256Final(&sha, out);
    wc_Sha256Free(&sha);
    return ret;
}

int rm__tls_ecdsa_verify(const uint8_t *key_der, size_t key_len, const uint8_t *hash, size_t hash_len,
                         const uint8_t *sig, size_t sig_len, int remember, int *valid)
{
    uint8_t digest[WC_SHA256_DIGEST_SIZE];
    size_t slot;
    ecc_key key;
    word32 idx = 0;
    int ret, have_digest;

    *valid = 0;
    if (key_der == NULL || hash == NULL || sig == NULL || key_len == 0 || key_len > UINT32_MAX ||
        hash_len > UINT32_MAX || sig_len > UINT32_MAX)
        return BAD_FUNC_ARG;
    /* without a digest (SHA-256 failed) the signature is computed and not remembered */
    have_digest = remember && memo_digest(key_der, key_len, hash, hash_len, sig, sig_len, digest) == 0;
    slot = have_digest ? ((size_t)digest[0] | (size_t)digest[1] << 8) % MEMO_SLOTS : 0;
    if (have_digest && memo_used[slot] && memcmp(memo[slot], digest, sizeof(digest)) == 0) {
        memo_stats.remembered++;
        *valid = 1;
        return 0;
    }
    if ((ret = wc_ecc_init(&key)) != 0)
        return ret;
    if ((ret = wc_EccPublicKeyDecode(key_der, &idx, &key, (word32)key_len)) == 0)
        ret = wc_ecc_verify_hash(sig, (word32)sig_len, hash, (word32)hash_len, valid, &key);
    wc_ecc_free(&key);
    memo_stats.computed++;
    if (ret != 0) {
        *valid = 0;
        return ret;
    }
    if (*valid == 1 && have_digest) {
        memcpy(memo[slot], digest, sizeof(digest));
        memo_used[slot] = 1;
    }
    return 0;
}

rm_tls_verify_stats_t rm_tls_thread_verify_stats(void)
{
    return memo_stats;
}

void rm__tls_memo_clear(void)
{
    memset(memo_used, 0, sizeof(memo_used));
}
