/* Fixtures for the tests that check ringmesh's JWT code against tokens and keys made by another implementation:
 * tests/e2e/tools/jwt_tool.py (python3-cryptography). Helpers fail the running cmocka test on what they do not
 * expect. */
#ifndef RM_TEST_JWT_TOOL_FIXTURES_H
#define RM_TEST_JWT_TOOL_FIXTURES_H

#include <stddef.h>

#include "ringmesh/jwt_user.h"

/** Runs `jwt_tool.py <args>` (printf-style); returns its stdout without the trailing newlines, in memory the
 *  caller frees. Fails the test when the tool exits with an error. */
char *jwt_tool(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

typedef int (*jwt_tool_parse_cb)(const char *json, size_t len, rm_jwt_keyset_t **out, char *err, size_t errlen);

/** A cmocka group setup: makes a fresh directory `dir` (64 bytes) with the tool's signing keys (rsa, rsa2, ec256,
 *  ec384, ed25519), and parses the JWKS of `specs` (the tool's KEY:KID[:ALG] list) with `parse` into *ks. Returns 0
 *  or -1 (the parser's reason on stderr). */
int jwt_tool_setup(char dir[64], const char *specs, jwt_tool_parse_cb parse, rm_jwt_keyset_t **ks);

/** The matching teardown: frees *ks and removes `dir`. Returns 0 or -1. */
int jwt_tool_teardown(const char *dir, rm_jwt_keyset_t *ks);

#endif
