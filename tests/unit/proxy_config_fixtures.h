/* Fixtures shared by the proxy configuration loader's tests (test_proxy_config_*.c): files written to a temporary
 * directory made per test group, loading a file that must load or must fail, and checks of messages and
 * addresses. Helpers fail the running cmocka test on what they do not expect. */
#ifndef RM_TEST_PROXY_CONFIG_FIXTURES_H
#define RM_TEST_PROXY_CONFIG_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#include "proxy_config.h"

#define DATA_DIR RM_TEST_DATA_DIR "/config/"

/** A valid tls: section, to put in front of a text that needs one. */
#define TLS_OK                                                                                                         \
    "tls:\n"                                                                                                           \
    "  certFile: /etc/ringmesh/svid.pem\n"                                                                             \
    "  keyFile: /etc/ringmesh/svid.key\n"                                                                              \
    "  bundleFile: /etc/ringmesh/bundle.pem\n"

/** The group's temporary directory, made by group_setup(). */
extern char tmp_dir[64];

/** The cmocka group setup: makes the temporary directory. */
int group_setup(void **state);

/** The cmocka group teardown: removes the temporary directory and the files in it. */
int group_teardown(void **state);

/** Writes `len` bytes to a new file in the test's directory and returns its path (static buffer). */
const char *write_tmp(const char *name, const void *data, size_t len);

/** write_tmp() of a NUL-terminated text. */
const char *write_tmp_str(const char *name, const char *text);

/** Loads `path`, which must load; the configuration belongs to the caller. */
rm_proxy_config_t *load_ok(const char *path);

/** Loads `path`, which must fail with `code`; `err` receives the message. *out must stay untouched. */
void load_fail(const char *path, int code, char *err, size_t errlen);

/** Fails the test unless the message `haystack` contains `needle`. */
void assert_contains(const char *haystack, const char *needle);

/** Every error message of a parse or value error starts with "FILE:LINE:COLUMN: ", FILE being `path`'s base name. */
void assert_has_position(const char *path, const char *err);

/** The port of an address, in host order. */
uint16_t port_of(const rm_sockaddr_t *a);

/** The address is of `family` (its length the family's), with the text form `ip` and the port `port`. */
void assert_addr(const rm_sockaddr_t *a, int family, const char *ip, uint16_t port);

#endif
