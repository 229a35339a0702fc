/* Fixtures for the tests that check ringmesh's JWT code against tokens and keys made by another implementation:
 * tests/e2e/tools/jwt_tool.py (python3-cryptography). Helpers fail the running cmocka test on what they do not
 * expect. */
#ifndef RM_TEST_JWT_TOOL_FIXTURES_H
#define RM_TEST_JWT_TOOL_FIXTURES_H

/** Runs `jwt_tool.py <args>` (printf-style); returns its stdout without the trailing newlines, in memory the
 *  caller frees. Fails the test when the tool exits with an error. */
char *jwt_tool(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** Makes a fresh directory (dir must hold 64 bytes) and the tool's signing keys in it (rsa, rsa2, ec256, ec384,
 *  ed25519). Returns 0 or -1. */
int jwt_tool_keys(char dir[64]);

/** Removes the directory jwt_tool_keys() made. Returns 0 or -1. */
int jwt_tool_remove(const char *dir);

#endif
