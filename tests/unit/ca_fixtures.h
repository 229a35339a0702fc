/* Fixtures shared by the control plane CA's tests (test_control_ca_*.c): a temporary work directory per test group,
 * files in it, the openssl CLI run there, CAs opened from generated state or from files, CSRs made by ringmesh or by
 * openssl, and certificate checks. Helpers fail the running cmocka test on what they do not expect. */
#ifndef RM_TEST_CA_FIXTURES_H
#define RM_TEST_CA_FIXTURES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ca.h"
#include "ringmesh/svid.h"
#include "x509_internal.h"

#define TD       "example.org"
#define LEAF_ID  "spiffe://example.org/ns/shop/sa/orders"
#define OTHER_ID "spiffe://evil.example/ns/kube-system/sa/admin"
#define OTHER_CN "spiffe:\\/\\/evil.example\\/ns\\/kube-system\\/sa\\/admin" /* '/' escaped for -subj */
#define SERVE_ID "spiffe://example.org/ringmesh/control"
#define BACKDATE (5 * 60)
#define ERRLEN   512

/** The work directory, made by make_dir(). */
extern char work_dir[64];

/** Whether the openssl binary is on PATH. */
int have_openssl(void);

/** Skips the running test, saying why, without the openssl binary. */
void need_openssl(void);

/** The path of `name` in the work directory. */
void path_of(char *buf, size_t size, const char *name);

/** Runs a shell command in the work directory with its output in the file "out"; returns the exit status. */
int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** The whole file `name` of the work directory, NUL-terminated, in memory the caller frees; its length in *len
 * (when not NULL). */
char *read_file(const char *name, size_t *len);

/** Writes `len` bytes to `name` in the work directory. */
void write_file(const char *name, const char *data, size_t len);

/** What the last sh() command printed (read_file("out")). */
char *output(void);

/** The permission bits of `name` in the work directory. */
mode_t mode_of(const char *name);

/** A configuration for trust domain TD, with the state directory `state_dir` of the work directory (NULL: none);
 * the path lives in a static buffer, so one configuration at a time. */
void config_init(rm_ca_config_t *cfg, const char *state_dir);

/** Opens a CA from files of the work directory (NULL: not given). */
int open_files(rm_ca_t **ca, const char *cert, const char *key, const char *extra, char *err);

/** The DER certificates of a PEM text, in an array the caller frees with rm__der_certs_free(); their number. */
size_t pem_certs(const char *pem, size_t len, rm__der_cert_t **certs);

/** Asserts that the PEM certificates of `a` and `b` are the same DER certificates, in order. */
void assert_same_certs(const char *a, const char *b);

/** Parses the first certificate of a PEM chain into *info; the chain's length in *num_certs (when not NULL). */
void parse_leaf(const char *chain, rm_x509_info_t *info, size_t *num_certs);

/** Verifies a PEM chain against a PEM trust bundle, now; the SPIFFE ID in *id; rm_svid_verify_pem()'s result. */
int verify_with_bundle(const char *bundle_pem, const char *chain, rm_spiffe_id_t *id);

/** A root CA made by ringmesh's issuer, written as <name>.pem and <name>.key. */
void make_root_files(const char *name);

/** A root (root.pem/.key) and an intermediate under it (int.pem/.key), made with the openssl CLI. */
void make_openssl_intermediate(void);

/** A P-256 key (csr.key) and a CSR for it (csr.pem) made with the openssl CLI, asking for OTHER_ID. */
char *openssl_csr(size_t *len);

/** A CSR made by rm_csr_make() for a fresh key. */
char *ringmesh_csr(size_t *len);

/** A CA with a generated root in a fresh state directory. */
rm_ca_t *open_generated(const char *state_dir, int64_t default_ttl, int64_t max_ttl);

/** Reads the serialNumber INTEGER of a DER certificate (short-form lengths inside the TBS). */
size_t read_serial(const uint8_t *der, size_t len, const uint8_t **serial);

/** The cmocka group setup: makes the work directory. */
int make_dir(void **state);

/** The cmocka group teardown: removes the work directory and all in it. */
int remove_dir(void **state);

#endif
