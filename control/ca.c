/* The control plane's certificate authority (see ca.h).
 *
 * Threads: rm_ca_sign_csr() and rm_ca_issue_serving() share nothing mutable. The signing goes through
 * rm_x509_sign_svid(), which seeds its own wolfCrypt RNG and decodes the CA key into its own ecc_key on every call
 * (a per-call RNG rather than one RNG behind a mutex): the RNG's seeding costs little next to the ECDSA signature
 * made with it, and no request waits on another's lock. Everything in rm_ca_t is written once in rm_ca_open().
 *
 * Before rm_ca_open() returns, it issues one throwaway SVID with the signing CA and verifies it against the trust
 * bundle it is about to publish: a chain file in the wrong order, missing the root, or holding an expired
 * certificate is refused at start, with the file named, rather than at the first sidecar's handshake. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca.h"
#include "ringmesh/bytebuf.h"
#include "ringmesh/csr.h"
#include "ringmesh/config.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"
#include "ringmesh/svid.h"
#include "ringmesh/x509_issue.h"

#define CA_FILE_MAX     (1 << 20) /* bytes: no certificate chain or key file is near this */
#define DEFAULT_TTL     (24 * 3600)
#define MAX_TTL_ALLOWED ((int64_t)100 * 365 * 24 * 3600) /* what rm_x509_sign_svid() accepts */
#define ROOT_TTL        ((int64_t)10 * 365 * 24 * 3600)  /* lifetime of a generated root */
#define CERT_FILE_NAME  "ca-cert.pem"
#define KEY_FILE_NAME   "ca-key.pem"
#define PEM_BEGIN_CERT  "-----BEGIN CERTIFICATE-----"
#define PEM_END_CERT    "-----END CERTIFICATE-----"

struct st_rm_ca_t {
    char trust_domain[RM_TRUST_DOMAIN_MAX + 1];
    rm_x509_ca_t *signer;
    rm_bytebuf_t bundle; /* PEM, NUL-terminated */
    int64_t default_ttl, max_ttl;
    int64_t not_after; /* the earliest notAfter of the signing CA and the certificates above it */
};

/* Reads a whole regular file as a secret (lib/config: one allocation, never copied by a reallocation). The buffer
 * is NUL-terminated; free a key's with rm_x509_free_secret(). Returns 0 or -errno with the reason in `err`. */
static int read_file(const char *path, char **data, size_t *len, char *err, size_t errlen)
{
    rm_config_error_t *e;
    int ret;

    *data = NULL;
    if ((e = calloc(1, sizeof(*e))) == NULL)
        return rm_config_fail(err, errlen, -ENOMEM, "%s: out of memory", path);
    if ((ret = rm_file_read_at(AT_FDCWD, path, NULL, CA_FILE_MAX, RM_FILE_SECRET | RM_FILE_REGULAR, data, len, e)) != 0)
        rm_config_error_format(e, err, errlen);
    free(e);
    return ret;
}

/* The next "CERTIFICATE" PEM block at or after *pos: [*begin, *begin + *block_len) runs from its BEGIN line to
 * the end of its END line. Returns 1, 0 when there is none, or -1 for a BEGIN line without an END line. Only the
 * armour is looked at here; the contents are checked by the x509 functions they are handed to. */
static int next_cert_block(const char *pem, size_t len, size_t *pos, const char **begin, size_t *block_len)
{
    const char *b, *e;

    // NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): read_file() returns 0 only with the text in pem
    if ((b = memmem(pem + *pos, len - *pos, PEM_BEGIN_CERT, strlen(PEM_BEGIN_CERT))) == NULL)
        return 0;
    if ((e = memmem(b, (size_t)(pem + len - b), PEM_END_CERT, strlen(PEM_END_CERT))) == NULL)
        return -1;
    e += strlen(PEM_END_CERT);
    *begin = b;
    *block_len = (size_t)(e - b);
    *pos = (size_t)(e - pem);
    return 1;
}

/* Appends PEM text to the bundle, ending it with a newline when it has none. */
static int bundle_append(rm_ca_t *ca, const char *pem, size_t len)
{
    rm_bytebuf_append(&ca->bundle, pem, len);
    if (len == 0 || pem[len - 1] != '\n')
        rm_bytebuf_append_byte(&ca->bundle, '\n');
    return rm_bytebuf_terminate(&ca->bundle); /* -ENOMEM when any of the three failed */
}

static int load_signer(rm_ca_t *ca, const char *cert_path, const char *cert_pem, size_t cert_len, const char *key_path,
                       const char *key_pem, size_t key_len, char *err, size_t errlen)
{
    int ret = rm_x509_ca_load_pem(&ca->signer, cert_pem, cert_len, key_pem, key_len);

    switch (ret) {
    case 0:
        return 0;
    case RM_ERR_SVID_PARSE:
        return rm_config_fail(err, errlen, ret, "%s: no readable certificate", cert_path);
    case RM_ERR_SVID_CA_NOT_CA:
        return rm_config_fail(err, errlen, ret,
                              "%s: the first certificate is not a CA (basicConstraints cA and keyCertSign)", cert_path);
    case RM_ERR_SVID_CA_KEY:
        return rm_config_fail(err, errlen, ret, "%s: not a readable unencrypted private key, or not the key of %s",
                              key_path, cert_path);
    case RM_ERR_SVID_KEY_TYPE:
        return rm_config_fail(err, errlen, ret, "%s: the CA key is not an ECDSA P-256 key", key_path);
    default:
        return rm_config_fail(err, errlen, ret, "%s, %s: %s", cert_path, key_path, rm_strerror(ret));
    }
}

/* The signing CA is the first certificate of `cert_pem`, the trusted root its last (the same one when the CA is a
 * root). */
static int load_ca_files(rm_ca_t *ca, const char *cert_path, const char *cert_pem, size_t cert_len,
                         const char *key_path, const char *key_pem, size_t key_len, char *err, size_t errlen)
{
    const char *block = NULL, *b;
    size_t pos = 0, block_len = 0, len;
    int ret, found;

    if ((ret = load_signer(ca, cert_path, cert_pem, cert_len, key_path, key_pem, key_len, err, errlen)) != 0)
        return ret;
    ca->not_after = INT64_MAX;
    while ((found = next_cert_block(cert_pem, cert_len, &pos, &b, &len)) == 1) {
        rm_x509_info_t info;
        block = b;
        block_len = len;
        if ((ret = rm_x509_parse_pem_first(b, len, &info)) != 0)
            return rm_config_fail(err, errlen, ret, "%s: a certificate of the chain does not parse: %s", cert_path,
                                  rm_strerror(ret));
        if ((int64_t)info.not_after < ca->not_after)
            ca->not_after = (int64_t)info.not_after;
    }
    if (found < 0 || block == NULL)
        return rm_config_fail(err, errlen, RM_ERR_SVID_PARSE, "%s: a certificate block has no END line", cert_path);
    return bundle_append(ca, block, block_len);
}

/* cert_file + key_file. */
static int open_from_files(rm_ca_t *ca, const rm_ca_config_t *cfg, char *err, size_t errlen)
{
    char *cert_pem = NULL, *key_pem = NULL;
    size_t cert_len = 0, key_len = 0;
    int ret;

    if ((ret = read_file(cfg->cert_file, &cert_pem, &cert_len, err, errlen)) != 0 ||
        (ret = read_file(cfg->key_file, &key_pem, &key_len, err, errlen)) != 0)
        goto Exit;
    ret = load_ca_files(ca, cfg->cert_file, cert_pem, cert_len, cfg->key_file, key_pem, key_len, err, errlen);

Exit:
    free(cert_pem);
    rm_x509_free_secret(key_pem, key_len);
    return ret;
}

/* cert_pem + key_pem (a Secret read through the API): the same checks as files, with the Secret's keys named. The
 * roots of roots_pem join the bundle after the chain's own root, each once. */
static int open_from_memory(rm_ca_t *ca, const rm_ca_config_t *cfg, char *err, size_t errlen)
{
    char cert_what[400], key_what[400], roots_what[400];
    const char *block;
    char *root;
    size_t pos = 0, block_len, root_len, n = 0;
    int ret, found, has_root = 0;

    snprintf(cert_what, sizeof(cert_what), "%s key tls.crt", cfg->origin != NULL ? cfg->origin : "CA");
    snprintf(key_what, sizeof(key_what), "%s key tls.key", cfg->origin != NULL ? cfg->origin : "CA");
    snprintf(roots_what, sizeof(roots_what), "%s key ca.crt", cfg->origin != NULL ? cfg->origin : "CA");
    if ((ret = rm_ca_check_trust_domain(cert_what, cfg->cert_pem, cfg->cert_len, ca->trust_domain, err, errlen)) != 0)
        return ret;
    if ((ret = load_ca_files(ca, cert_what, cfg->cert_pem, cfg->cert_len, key_what, cfg->key_pem, cfg->key_len, err,
                             errlen)) != 0)
        return ret;
    if (cfg->roots_pem == NULL || cfg->roots_len == 0)
        return 0;
    /* a copy of the chain's root (the bundle so far), since appending may move the bundle's buffer */
    root_len = ca->bundle.len;
    if ((root = strndup(rm_bytebuf_text(&ca->bundle), root_len)) == NULL)
        return -ENOMEM;
    while (root_len > 0 && root[root_len - 1] == '\n')
        --root_len;
    while ((found = next_cert_block(cfg->roots_pem, cfg->roots_len, &pos, &block, &block_len)) == 1) {
        if (block_len == root_len && memcmp(block, root, root_len) == 0)
            has_root = 1;
    }
    pos = 0;
    if (!has_root && found == 0) {
        free(root);
        return rm_config_fail(err, errlen, RM_ERR_SVID_UNTRUSTED,
                              "%s: does not hold the root at the end of tls.crt's chain", roots_what);
    }
    while (found == 0 && (found = next_cert_block(cfg->roots_pem, cfg->roots_len, &pos, &block, &block_len)) == 1) {
        rm_trust_bundle_t *one;
        found = 0;
        ++n;
        if ((ret = rm_trust_bundle_load_pem(&one, block, block_len)) != 0) {
            free(root);
            return rm_config_fail(err, errlen, ret, "%s: certificate %zu is not a CA: %s", roots_what, n,
                                  rm_strerror(ret));
        }
        rm_trust_bundle_free(one);
        if (block_len == root_len && memcmp(block, root, root_len) == 0)
            continue;
        if ((ret = bundle_append(ca, block, block_len)) != 0) {
            free(root);
            return ret;
        }
    }
    free(root);
    if (found < 0)
        return rm_config_fail(err, errlen, RM_ERR_SVID_PARSE, "%s: certificate %zu has no END line", roots_what, n + 1);
    return 0;
}

int rm_ca_check_trust_domain(const char *what, const char *cert_pem, size_t cert_len, const char *trust_domain,
                             char *err, size_t errlen)
{
    rm_x509_info_t *info;
    rm_spiffe_id_t *id;
    size_t td_len = strlen(trust_domain);
    int ret = 0;

    info = malloc(sizeof(*info));
    id = malloc(sizeof(*id));
    if (info == NULL || id == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    if ((ret = rm_x509_parse_pem_first(cert_pem, cert_len, info)) != 0) {
        ret = rm_config_fail(err, errlen, ret, "%s: no readable certificate", what);
        goto Exit;
    }
    for (size_t i = 0; i < info->num_uris && i < RM_X509_MAX_URIS; i++) {
        if (strncmp(info->uris[i], "spiffe://", 9) != 0)
            continue;
        if (rm_spiffe_id_parse(info->uris[i], strlen(info->uris[i]), id) != 0 || id->td_len != td_len ||
            memcmp(id->str + 9, trust_domain, td_len) != 0) {
            ret = rm_config_fail(err, errlen, RM_ERR_SVID_TRUST_DOMAIN,
                                 "%s: the CA names %.300s, not the mesh's trust domain spiffe://%s", what,
                                 info->uris[i], trust_domain);
            goto Exit;
        }
    }

Exit:
    free(info);
    free(id);
    return ret;
}

/* Returns 1 when `path` exists, 0 when it does not, or -errno. */
static int file_exists(const char *path)
{
    struct stat st;

    if (stat(path, &st) == 0)
        return 1;
    return errno == ENOENT ? 0 : -errno;
}

static int ensure_state_dir(const char *dir, int *created, char *err, size_t errlen)
{
    struct stat st;

    *created = 0;
    if (mkdir(dir, 0700) == 0) {
        *created = 1;
        /* the umask may only have narrowed 0700; make it exactly that */
        if (chmod(dir, 0700) != 0)
            return rm_config_fail(err, errlen, -errno, "%s: cannot set mode 0700: %s", dir, strerror(errno));
        return 0;
    }
    if (errno != EEXIST)
        return rm_config_fail(err, errlen, -errno, "%s: cannot create the CA state directory: %s", dir,
                              strerror(errno));
    if (stat(dir, &st) != 0)
        return rm_config_fail(err, errlen, -errno, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return rm_config_fail(err, errlen, -ENOTDIR, "%s: not a directory", dir);
    return 0;
}

/* Generates a root and writes it: the key first, so that a crash in between leaves a key without a certificate,
 * which the next start refuses, rather than a certificate nobody can sign with. */
static int generate_root(rm_ca_t *ca, const char *cert_path, const char *key_path, char **cert_pem, size_t *cert_len,
                         char **key_pem, size_t *key_len, char *err, size_t errlen)
{
    rm_x509_issue_opts_t opts;
    rm_log_line_t l;
    int ret;

    rm_x509_issue_opts_init(&opts);
    opts.ttl = ROOT_TTL;
    if ((ret = rm_x509_make_root_ca(ca->trust_domain, &opts, cert_pem, cert_len, key_pem, key_len)) != 0)
        return rm_config_fail(err, errlen, ret, "cannot generate a root CA for %s: %s", ca->trust_domain,
                              rm_strerror(ret));
    if ((ret = rm_x509_write_file(key_path, *key_pem, *key_len, 1)) != 0)
        return rm_config_fail(err, errlen, ret, "%s: cannot write: %s", key_path, strerror(-ret));
    if ((ret = rm_x509_write_file(cert_path, *cert_pem, *cert_len, 0)) != 0) {
        unlink(key_path);
        return rm_config_fail(err, errlen, ret, "%s: cannot write: %s", cert_path, strerror(-ret));
    }
    rm_log_begin(&l, RM_LOG_INFO, "ca_root_generated");
    rm_log_str(&l, "trustDomain", ca->trust_domain);
    rm_log_str(&l, "certFile", cert_path);
    rm_log_end(&l);
    return 0;
}

/* No cert_file: the root in state_dir, generated when the directory holds none. */
static int open_generated(rm_ca_t *ca, const rm_ca_config_t *cfg, char *err, size_t errlen)
{
    char *cert_path = NULL, *key_path = NULL, *cert_pem = NULL, *key_pem = NULL;
    size_t cert_len = 0, key_len = 0;
    int ret, have_cert, have_key, created_dir;

    if ((ret = ensure_state_dir(cfg->state_dir, &created_dir, err, errlen)) != 0)
        return ret;
    if (asprintf(&cert_path, "%s/%s", cfg->state_dir, CERT_FILE_NAME) < 0) {
        cert_path = NULL;
        ret = -ENOMEM;
        goto Exit;
    }
    if (asprintf(&key_path, "%s/%s", cfg->state_dir, KEY_FILE_NAME) < 0) {
        key_path = NULL;
        ret = -ENOMEM;
        goto Exit;
    }
    if ((have_cert = file_exists(cert_path)) < 0) {
        ret = rm_config_fail(err, errlen, have_cert, "%s: %s", cert_path, strerror(-have_cert));
        goto Exit;
    }
    if ((have_key = file_exists(key_path)) < 0) {
        ret = rm_config_fail(err, errlen, have_key, "%s: %s", key_path, strerror(-have_key));
        goto Exit;
    }
    if (have_cert != have_key) {
        /* Never replace half of a root: SVIDs already issued chain to it, and the missing half may yet be restored. */
        ret = rm_config_fail(
            err, errlen, -ENOENT,
            "%s is missing while %s exists: the CA state is half-written; restore the missing file, or remove "
            "both to generate a new root (SVIDs issued under the old one will no longer verify)",
            have_cert ? key_path : cert_path, have_cert ? cert_path : key_path);
        goto Exit;
    }
    if (have_cert) {
        if ((ret = read_file(cert_path, &cert_pem, &cert_len, err, errlen)) != 0 ||
            (ret = read_file(key_path, &key_pem, &key_len, err, errlen)) != 0)
            goto Exit;
    } else if ((ret = generate_root(ca, cert_path, key_path, &cert_pem, &cert_len, &key_pem, &key_len, err, errlen)) !=
               0) {
        goto Exit;
    }
    ret = load_ca_files(ca, cert_path, cert_pem, cert_len, key_path, key_pem, key_len, err, errlen);

Exit:
    if (ret != 0 && created_dir)
        rmdir(cfg->state_dir); /* fails, as it should, once a complete root is in it */
    free(cert_path);
    free(key_path);
    free(cert_pem);
    rm_x509_free_secret(key_pem, key_len);
    return ret;
}

/* extra_roots_file: every certificate of it joins the bundle, and each must be a CA on its own. */
static int add_extra_roots(rm_ca_t *ca, const char *path, char *err, size_t errlen)
{
    rm_trust_bundle_t *one;
    char *pem = NULL;
    const char *block;
    size_t len = 0, pos = 0, block_len, n = 0;
    int ret, found;

    if ((ret = read_file(path, &pem, &len, err, errlen)) != 0)
        return ret;
    while ((found = next_cert_block(pem, len, &pos, &block, &block_len)) == 1) {
        ++n;
        if ((ret = rm_trust_bundle_load_pem(&one, block, block_len)) != 0) {
            if (ret == RM_ERR_SVID_CA_NOT_CA)
                ret = rm_config_fail(
                    err, errlen, ret,
                    "%s: certificate %zu is not a CA (a root needs basicConstraints cA and keyCertSign)", path, n);
            else
                ret = rm_config_fail(err, errlen, ret, "%s: certificate %zu: %s", path, n, rm_strerror(ret));
            goto Exit;
        }
        rm_trust_bundle_free(one);
        if ((ret = bundle_append(ca, block, block_len)) != 0)
            goto Exit;
    }
    if (found < 0) {
        ret = rm_config_fail(err, errlen, RM_ERR_SVID_PARSE, "%s: certificate %zu has no END line", path, n + 1);
        goto Exit;
    }
    if (n == 0) {
        ret = rm_config_fail(err, errlen, RM_ERR_SVID_PARSE, "%s: no certificate", path);
        goto Exit;
    }
    ret = 0;

Exit:
    free(pem);
    return ret;
}

/* Issues a throwaway SVID and verifies it against the bundle (see the top of this file). */
static int check_chain(const rm_ca_t *ca, const char *source, char *err, size_t errlen)
{
    rm_trust_bundle_t *bundle = NULL;
    rm_x509_issue_opts_t opts;
    char id[sizeof("spiffe://") + RM_TRUST_DOMAIN_MAX + sizeof("/ringmesh/ca-check")];
    char *cert = NULL, *key = NULL;
    size_t cert_len = 0, key_len = 0;
    int ret;

    if ((ret = rm_trust_bundle_load_pem(&bundle, rm_bytebuf_text(&ca->bundle), ca->bundle.len)) != 0) {
        ret = rm_config_fail(err, errlen, ret, "%s: the root is not usable as a trust anchor: %s", source,
                             rm_strerror(ret));
        goto Exit;
    }
    snprintf(id, sizeof(id), "spiffe://%s/ringmesh/ca-check", ca->trust_domain);
    rm_x509_issue_opts_init(&opts);
    opts.ttl = RM_CA_MIN_TTL + opts.backdate; /* valid for 5 minutes from now, whatever the backdate */
    if ((ret = rm_x509_issue_svid(ca->signer, id, &opts, &cert, &cert_len, &key, &key_len)) != 0) {
        ret = rm_config_fail(err, errlen, ret, "%s: cannot sign with this CA: %s", source, rm_strerror(ret));
        goto Exit;
    }
    switch ((ret = rm_svid_verify_pem(bundle, cert, cert_len, time(NULL), NULL, NULL))) {
    case 0:
        break;
    case RM_ERR_SVID_UNTRUSTED:
        ret = rm_config_fail(
            err, errlen, ret,
            "%s: the signing CA does not chain to the root at the end of the file (the file must hold the "
            "signing CA first, then each certificate above it, up to a self-signed root)",
            source);
        goto Exit;
    case RM_ERR_SVID_EXPIRED:
    case RM_ERR_SVID_NOT_YET_VALID:
        ret = rm_config_fail(err, errlen, ret, "%s: a CA certificate is %s", source,
                             ret == RM_ERR_SVID_EXPIRED ? "expired" : "not yet valid");
        goto Exit;
    default:
        ret =
            rm_config_fail(err, errlen, ret, "%s: SVIDs signed by this CA do not verify: %s", source, rm_strerror(ret));
        goto Exit;
    }

Exit:
    free(cert);
    rm_x509_free_secret(key, key_len);
    rm_trust_bundle_free(bundle);
    return ret;
}

int rm_ca_open(const rm_ca_config_t *cfg, rm_ca_t **out, char *err, size_t errlen)
{
    rm_ca_t *ca = NULL;
    size_t td_len;
    int ret;

    *out = NULL;
    if (err != NULL && errlen != 0)
        err[0] = '\0';
    if (cfg == NULL || cfg->trust_domain == NULL)
        return rm_config_fail(err, errlen, -EINVAL, "the CA needs a trust domain");
    td_len = strlen(cfg->trust_domain);
    if ((ret = rm_trust_domain_check(cfg->trust_domain, td_len)) != 0)
        return rm_config_fail(err, errlen, ret, "trust domain \"%.300s\": %s", cfg->trust_domain, rm_strerror(ret));
    if ((cfg->cert_file == NULL) != (cfg->key_file == NULL))
        return rm_config_fail(err, errlen, RM_ERR_CONFIG_VALUE,
                              "the CA's cert_file and key_file must be given together");
    if ((cfg->cert_pem == NULL) != (cfg->key_pem == NULL))
        return rm_config_fail(err, errlen, RM_ERR_CONFIG_VALUE, "the CA's cert_pem and key_pem must be given together");
    if (cfg->cert_pem == NULL && cfg->cert_file == NULL && cfg->state_dir == NULL)
        return rm_config_fail(err, errlen, RM_ERR_CONFIG_VALUE,
                              "without a CA cert_file, a state_dir for the generated root "
                              "is required");
    if ((ca = calloc(1, sizeof(*ca))) == NULL)
        return -ENOMEM;
    memcpy(ca->trust_domain, cfg->trust_domain, td_len + 1);
    ca->default_ttl = cfg->default_ttl != 0 ? cfg->default_ttl : DEFAULT_TTL;
    ca->max_ttl = cfg->max_ttl != 0 ? cfg->max_ttl : ca->default_ttl;
    if (ca->max_ttl < RM_CA_MIN_TTL || ca->max_ttl > MAX_TTL_ALLOWED) {
        ret = rm_config_fail(err, errlen, RM_ERR_CONFIG_VALUE,
                             "the CA's max_ttl (%lld s) must lie within [%d s, 100 years]", (long long)ca->max_ttl,
                             RM_CA_MIN_TTL);
        goto Exit;
    }
    if (ca->default_ttl < RM_CA_MIN_TTL || ca->default_ttl > ca->max_ttl) {
        ret = rm_config_fail(err, errlen, RM_ERR_CONFIG_VALUE,
                             "the CA's default_ttl (%lld s) must lie within [%d s, max_ttl %lld s]",
                             (long long)ca->default_ttl, RM_CA_MIN_TTL, (long long)ca->max_ttl);
        goto Exit;
    }

    if (cfg->cert_pem != NULL)
        ret = open_from_memory(ca, cfg, err, errlen);
    else if (cfg->cert_file != NULL)
        ret = open_from_files(ca, cfg, err, errlen);
    else
        ret = open_generated(ca, cfg, err, errlen);
    if (ret != 0)
        goto Exit;
    if ((ret = check_chain(ca,
                           cfg->cert_pem != NULL    ? (cfg->origin != NULL ? cfg->origin : "CA")
                           : cfg->cert_file != NULL ? cfg->cert_file
                                                    : cfg->state_dir,
                           err, errlen)) != 0)
        goto Exit;
    if (cfg->extra_roots_file != NULL && (ret = add_extra_roots(ca, cfg->extra_roots_file, err, errlen)) != 0)
        goto Exit;
    *out = ca;
    ca = NULL;
    ret = 0;

Exit:
    rm_ca_free(ca);
    if (ret == -ENOMEM)
        rm_config_fail(err, errlen, ret, "out of memory opening the CA");
    return ret;
}

void rm_ca_free(rm_ca_t *ca)
{
    if (ca == NULL)
        return;
    rm_x509_ca_free(ca->signer);
    rm_bytebuf_free(&ca->bundle);
    free(ca);
}

const char *rm_ca_bundle_pem(const rm_ca_t *ca, size_t *len)
{
    if (len != NULL)
        *len = ca->bundle.len;
    return ca->bundle.base != NULL ? (const char *)ca->bundle.base : NULL;
}

int64_t rm_ca_not_after(const rm_ca_t *ca)
{
    return ca->not_after;
}

const char *rm_ca_trust_domain(const rm_ca_t *ca)
{
    return ca->trust_domain;
}

/* 0 asks for the default; anything else is held within [RM_CA_MIN_TTL, max_ttl]. */
static int64_t effective_ttl(const rm_ca_t *ca, int64_t requested)
{
    if (requested == 0)
        return ca->default_ttl;
    if (requested < RM_CA_MIN_TTL)
        return RM_CA_MIN_TTL;
    return requested > ca->max_ttl ? ca->max_ttl : requested;
}

/* The ID must be a SPIFFE ID of this CA's trust domain. */
static int check_id(const rm_ca_t *ca, const char *spiffe_id, char *err, size_t errlen)
{
    rm_spiffe_id_t *id;
    size_t td_len = strlen(ca->trust_domain);
    int ret;

    if (spiffe_id == NULL)
        return rm_config_fail(err, errlen, -EINVAL, "no SPIFFE ID to issue for");
    if ((id = malloc(sizeof(*id))) == NULL)
        return -ENOMEM;
    if ((ret = rm_spiffe_id_parse(spiffe_id, strlen(spiffe_id), id)) != 0) {
        ret = rm_config_fail(err, errlen, ret, "\"%.300s\" is not a SPIFFE ID: %s", spiffe_id, rm_strerror(ret));
    } else if (id->td_len != td_len || memcmp(id->str + sizeof("spiffe://") - 1, ca->trust_domain, td_len) != 0) {
        ret = rm_config_fail(err, errlen, RM_ERR_SVID_TRUST_DOMAIN, "%.300s is not in this CA's trust domain %s",
                             spiffe_id, ca->trust_domain);
    }
    free(id);
    return ret;
}

int rm_ca_sign_csr(const rm_ca_t *ca, const char *csr_pem, size_t csr_len, const char *spiffe_id, int64_t requested_ttl,
                   rm_ca_issued_t *out, char *err, size_t errlen)
{
    rm_x509_issue_opts_t opts;
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    int ret;

    memset(out, 0, sizeof(*out));
    if (err != NULL && errlen != 0)
        err[0] = '\0';
    if ((ret = check_id(ca, spiffe_id, err, errlen)) != 0)
        goto Exit;
    switch ((ret = rm_csr_parse_pem(csr_pem, csr_len, &spki, &spki_len))) {
    case 0:
        break;
    case RM_ERR_CSR_PARSE:
        ret = rm_config_fail(err, errlen, ret, "the CSR is not a readable PEM PKCS#10 request of at most 16 KiB");
        goto Exit;
    case RM_ERR_CSR_SIGNATURE:
        ret = rm_config_fail(err, errlen, ret, "the CSR is not signed (ECDSA with SHA-2) by the key it holds");
        goto Exit;
    case RM_ERR_SVID_KEY_TYPE:
        ret = rm_config_fail(err, errlen, ret, "the CSR's key is not an ECDSA P-256 key");
        goto Exit;
    default:
        ret = rm_config_fail(err, errlen, ret, "the CSR cannot be read: %s", rm_strerror(ret));
        goto Exit;
    }

    rm_x509_issue_opts_init(&opts);
    opts.now = time(NULL);
    /* The lifetime counts from now: NotBefore is backdated for clock skew, NotAfter = now + ttl. */
    opts.ttl = effective_ttl(ca, requested_ttl) + opts.backdate;
    if ((ret = rm_x509_sign_svid(ca->signer, spki, spki_len, spiffe_id, &opts, &out->chain_pem, &out->chain_len)) !=
        0) {
        ret = rm_config_fail(err, errlen, ret, "cannot sign an SVID for %.300s: %s", spiffe_id, rm_strerror(ret));
        goto Exit;
    }
    /* the dates rm_x509_sign_svid() wrote, from the same opts */
    out->not_before = (int64_t)opts.now - opts.backdate;
    out->not_after = out->not_before + opts.ttl;

Exit:
    free(spki);
    return ret;
}

int rm_ca_issue_serving(const rm_ca_t *ca, const char *spiffe_id, const char *const *dns_names, size_t num_dns_names,
                        int64_t ttl, char **cert_pem, size_t *cert_len, char **key_pem, size_t *key_len)
{
    rm_x509_issue_opts_t opts;
    int ret;

    *cert_pem = NULL;
    *key_pem = NULL;
    if ((ret = check_id(ca, spiffe_id, NULL, 0)) != 0)
        return ret;
    /* The control plane picks its own certificate's lifetime (it is not a workload's request): 0 means the default,
     * any other value is taken as it is, and max_ttl, a bound on what sidecars get, does not apply. */
    if (ttl < 0)
        return -EINVAL;
    rm_x509_issue_opts_init(&opts);
    opts.ttl = (ttl != 0 ? ttl : ca->default_ttl) + opts.backdate; /* counted from now, as for SVIDs */
    opts.dns_names = dns_names;
    opts.num_dns_names = num_dns_names;
    return rm_x509_issue_svid(ca->signer, spiffe_id, &opts, cert_pem, cert_len, key_pem, key_len);
}

void rm_ca_issued_free(rm_ca_issued_t *issued)
{
    if (issued == NULL)
        return;
    free(issued->chain_pem);
    memset(issued, 0, sizeof(*issued));
}
