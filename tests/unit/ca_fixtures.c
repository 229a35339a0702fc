/* Fixtures shared by the control plane CA's tests: see ca_fixtures.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca.h"
#include "ca_fixtures.h"
#include "ringmesh/csr.h"
#include "ringmesh/error.h"
#include "ringmesh/svid.h"
#include "ringmesh/x509_issue.h"
#include "unit_asserts.h"
#include "x509_internal.h"

char work_dir[64];

int have_openssl(void)
{
    return system("command -v openssl >/dev/null 2>&1") == 0;
}

void need_openssl(void)
{
    if (!have_openssl()) {
        fprintf(stderr, "the openssl binary is not installed: this test is skipped\n");
        skip();
    }
}

void path_of(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", work_dir, name);
}

/* Runs a shell command in the work directory with its output in the file "out"; returns the exit status. */
int sh(const char *fmt, ...)
{
    char cmd[4096], full[4200];
    va_list ap;
    int n, status;

    va_start(ap, fmt);
    n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(cmd));
    snprintf(full, sizeof(full), "cd '%s' && { %s ; } >out 2>&1", work_dir, cmd);
    status = system(full);
    return status == -1 ? -1 : WEXITSTATUS(status);
}

char *read_file(const char *name, size_t *len)
{
    char path[256];
    FILE *f;
    char *buf;
    long n;

    path_of(path, sizeof(path), name);
    if ((f = fopen(path, "rb")) == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len != NULL)
        *len = (size_t)n;
    return buf;
}

void write_file(const char *name, const char *data, size_t len)
{
    char path[256];
    FILE *f;

    path_of(path, sizeof(path), name);
    assert_non_null(f = fopen(path, "wb"));
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

char *output(void)
{
    return read_file("out", NULL);
}

mode_t mode_of(const char *name)
{
    char path[256];
    struct stat st;

    path_of(path, sizeof(path), name);
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

void config_init(rm_ca_config_t *cfg, const char *state_dir)
{
    static char dir[256];

    memset(cfg, 0, sizeof(*cfg));
    cfg->trust_domain = TD;
    if (state_dir != NULL) {
        path_of(dir, sizeof(dir), state_dir);
        cfg->state_dir = dir;
    }
}

/* Opens a CA from files of the work directory (NULL: not given). */
int open_files(rm_ca_t **ca, const char *cert, const char *key, const char *extra, char *err)
{
    static char cert_path[256], key_path[256], extra_path[256];
    rm_ca_config_t cfg;

    config_init(&cfg, NULL);
    if (cert != NULL) {
        path_of(cert_path, sizeof(cert_path), cert);
        cfg.cert_file = cert_path;
    }
    if (key != NULL) {
        path_of(key_path, sizeof(key_path), key);
        cfg.key_file = key_path;
    }
    if (extra != NULL) {
        path_of(extra_path, sizeof(extra_path), extra);
        cfg.extra_roots_file = extra_path;
    }
    return rm_ca_open(&cfg, ca, err, ERRLEN);
}

size_t pem_certs(const char *pem, size_t len, rm__der_cert_t **certs)
{
    size_t n = 0;

    assert_code(rm__pem_to_der_certs(pem, len, certs, &n), 0);
    return n;
}

/* Asserts that the PEM certificates of `a` and `b` are the same DER certificates, in order. */
void assert_same_certs(const char *a, const char *b)
{
    rm__der_cert_t *ca_, *cb;
    size_t na = pem_certs(a, strlen(a), &ca_), nb = pem_certs(b, strlen(b), &cb), i;

    assert_int_equal(na, nb);
    for (i = 0; i != na; ++i) {
        assert_int_equal(ca_[i].len, cb[i].len);
        assert_memory_equal(ca_[i].der, cb[i].der, ca_[i].len);
    }
    rm__der_certs_free(ca_, na);
    rm__der_certs_free(cb, nb);
}

void parse_leaf(const char *chain, rm_x509_info_t *info, size_t *num_certs)
{
    rm__der_cert_t *certs;
    size_t n = pem_certs(chain, strlen(chain), &certs);

    assert_code(rm_x509_parse_der(certs[0].der, certs[0].len, info), 0);
    if (num_certs != NULL)
        *num_certs = n;
    rm__der_certs_free(certs, n);
}

int verify_with_bundle(const char *bundle_pem, const char *chain, rm_spiffe_id_t *id)
{
    rm_trust_bundle_t *bundle;
    int ret;

    assert_code(rm_trust_bundle_load_pem(&bundle, bundle_pem, strlen(bundle_pem)), 0);
    ret = rm_svid_verify_pem(bundle, chain, strlen(chain), time(NULL), NULL, id);
    rm_trust_bundle_free(bundle);
    return ret;
}

/* A root CA made by ringmesh's issuer, written as <name>.pem and <name>.key. */
void make_root_files(const char *name)
{
    rm_x509_issue_opts_t opts;
    char *cert, *key, file[64];
    size_t cert_len, key_len;

    rm_x509_issue_opts_init(&opts);
    opts.ttl = 30 * 24 * 3600;
    assert_code(rm_x509_make_root_ca(TD, &opts, &cert, &cert_len, &key, &key_len), 0);
    snprintf(file, sizeof(file), "%s.pem", name);
    write_file(file, cert, cert_len);
    snprintf(file, sizeof(file), "%s.key", name);
    write_file(file, key, key_len);
    free(cert);
    rm_x509_free_secret(key, key_len);
}

/* A root (root.pem/.key) and an intermediate under it (int.pem/.key), made with the openssl CLI. */
void make_openssl_intermediate(void)
{
    assert_int_equal(
        sh("openssl ecparam -name prime256v1 -genkey -noout -out root.key && "
           "openssl req -x509 -new -key root.key -subj /O=test/CN=root -days 30 "
           "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out root.pem && "
           "openssl ecparam -name prime256v1 -genkey -noout -out int.key && "
           "openssl req -new -key int.key -subj /O=test/CN=intermediate -out int.csr && "
           "printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign,cRLSign\\n"
           "subjectKeyIdentifier=hash\\nauthorityKeyIdentifier=keyid\\n' >int.ext && "
           "openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial -days 30 -extfile int.ext "
           "-out int.pem && cat int.pem root.pem >int-chain.pem"),
        0);
}

/* A P-256 key (csr.key) and a CSR for it (csr.pem) made with the openssl CLI, asking for OTHER_ID. */
char *openssl_csr(size_t *len)
{
    assert_int_equal(sh("openssl ecparam -name prime256v1 -genkey -noout -out csr.key && "
                        "openssl req -new -key csr.key -subj '/CN=%s' -addext subjectAltName=URI:%s -out csr.pem",
                        OTHER_CN, OTHER_ID),
                     0);
    return read_file("csr.pem", len);
}

/* A CSR made by rm_csr_make() for a fresh key. */
char *ringmesh_csr(size_t *len)
{
    uint8_t *spki;
    char *key, *csr;
    size_t key_len, spki_len;

    assert_code(rm_x509_generate_key(&key, &key_len, &spki, &spki_len), 0);
    assert_code(rm_csr_make(key, key_len, OTHER_ID, &csr, len), 0);
    free(spki);
    rm_x509_free_secret(key, key_len);
    return csr;
}

/* A CA with a generated root in a fresh state directory. */
rm_ca_t *open_generated(const char *state_dir, int64_t default_ttl, int64_t max_ttl)
{
    rm_ca_config_t cfg;
    rm_ca_t *ca;
    char err[ERRLEN];
    int ret;

    config_init(&cfg, state_dir);
    cfg.default_ttl = default_ttl;
    cfg.max_ttl = max_ttl;
    if ((ret = rm_ca_open(&cfg, &ca, err, sizeof(err))) != 0)
        fail_msg("rm_ca_open: %s: %s", rm_strerror(ret), err);
    return ca;
}

/* Reads the serialNumber INTEGER of a DER certificate (short-form lengths inside the TBS). */
size_t read_serial(const uint8_t *der, size_t len, const uint8_t **serial)
{
    size_t i = 0;
    int level;

    for (level = 0; level != 2; ++level) { /* Certificate, TBSCertificate */
        assert_true(i + 2 <= len && der[i] == 0x30);
        i += 2 + ((der[i + 1] & 0x80) ? (der[i + 1] & 0x7f) : 0);
    }
    assert_int_equal(der[i], 0xa0); /* [0] version */
    i += 2 + der[i + 1];
    assert_int_equal(der[i], 0x02);
    *serial = der + i + 2;
    return der[i + 1];
}

int make_dir(void **state)
{
    strcpy(work_dir, "/tmp/rm-test-ca-XXXXXX");
    return mkdtemp(work_dir) != NULL ? 0 : -1;
}

int remove_dir(void **state)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work_dir);
    return system(cmd) == 0 ? 0 : -1;
}
