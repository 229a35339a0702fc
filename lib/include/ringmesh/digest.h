/* SHA-256 for content versions and fingerprints (not for secrets: nothing here compares in constant time). */
#ifndef RINGMESH_DIGEST_H
#define RINGMESH_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define RM_SHA256_LEN 32

/** out = SHA-256(data). */
void rm_sha256(const void *data, size_t len, uint8_t out[RM_SHA256_LEN]);

/** Writes 2 * len lower-case hex digits and a NUL into out. */
void rm_hex_encode(const uint8_t *in, size_t len, char *out);

#endif
