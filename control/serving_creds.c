/* The gRPC port's credentials and the renewal of the serving certificate (see serving_creds.h). */
#include "serving_creds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client_verify.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"
#include "ringmesh/x509_issue.h"

#define WATCH_INTERVAL_S 1  /* how often gRPC reads the certificate file: the bound on a renewal's delay */
#define RETRY_S          60 /* after a failed issuance */

struct st_rm_serving_creds_t {
    rm_serving_config_t cfg;
    int fd; /* the descriptor gRPC reads through `path`; a renewal puts a new file under the same number */
    char path[64];
    time_t renew_at;
};

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Issues a certificate and returns a new in-memory file holding its chain, then its key (or a negative error). */
static int issue(rm_serving_creds_t *sc, time_t now)
{
    char *cert = NULL, *key = NULL;
    size_t cert_len = 0, key_len = 0;
    int fd = -1, ret;

    if ((ret = rm_ca_issue_serving(sc->cfg.ca, sc->cfg.spiffe_id, sc->cfg.dns_names, sc->cfg.num_dns_names, sc->cfg.ttl,
                                   &cert, &cert_len, &key, &key_len)) != 0)
        goto Exit;
    if ((fd = memfd_create("ringmesh-serving", MFD_CLOEXEC)) < 0) {
        ret = -errno;
        goto Exit;
    }
    if ((ret = write_all(fd, cert, cert_len)) != 0 || (ret = write_all(fd, key, key_len)) != 0)
        goto Exit;
    ret = fd;
    fd = -1;
    {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "serving_certificate_issued");
        rm_log_str(&l, "spiffeId", sc->cfg.spiffe_id);
        rm_log_int(&l, "notAfter", (int64_t)now + sc->cfg.ttl);
        rm_log_int(&l, "renewAt", (int64_t)now + sc->cfg.ttl / 2);
        rm_log_uint(&l, "dnsNames", sc->cfg.num_dns_names);
        rm_log_end(&l);
    }

Exit:
    if (fd >= 0)
        close(fd);
    rm_x509_free_secret(key, key_len);
    free(cert);
    return ret;
}

int rm_serving_creds_create(const rm_serving_config_t *cfg, grpc_server_credentials **creds, rm_serving_creds_t **out,
                            char *err, size_t errlen)
{
    rm_serving_creds_t *sc;
    grpc_tls_certificate_provider *provider = NULL;
    grpc_tls_certificate_verifier *verifier = NULL;
    grpc_tls_credentials_options *options;
    time_t now = time(NULL);
    int ret;

    *creds = NULL;
    *out = NULL;
    if ((sc = calloc(1, sizeof(*sc))) == NULL)
        return -ENOMEM;
    sc->cfg = *cfg;
    if (sc->cfg.ttl == 0)
        sc->cfg.ttl = 24 * 3600;
    if ((ret = issue(sc, now)) < 0) {
        snprintf(err, errlen, "cannot issue the serving certificate: %s", rm_strerror(ret));
        free(sc);
        return ret;
    }
    sc->fd = ret;
    sc->renew_at = now + sc->cfg.ttl / 2;
    snprintf(sc->path, sizeof(sc->path), "/proc/self/fd/%d", sc->fd);
    if ((verifier = rm_client_verifier_create(cfg->ca, err, errlen)) == NULL) {
        ret = RM_ERR_TLS_CONFIG;
        goto Fail;
    }
    /* one file for both: PEM readers take the blocks of their own kind and skip the others */
    provider = grpc_tls_certificate_provider_file_watcher_create(sc->path, sc->path, NULL, WATCH_INTERVAL_S);
    options = grpc_tls_credentials_options_create();
    grpc_tls_credentials_options_set_certificate_provider(options, provider);
    grpc_tls_credentials_options_watch_identity_key_cert_pairs(options);
    /* OpenSSL asks for a certificate and checks the client's signature with its key; the certificate itself is
     * judged by the verifier only (lib's SVID verification, which names the rule a refused one breaks) */
    grpc_tls_credentials_options_set_cert_request_type(options, GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
    grpc_tls_credentials_options_set_certificate_verifier(options, verifier);
    *creds = grpc_tls_server_credentials_create(options); /* takes the options */
    grpc_tls_certificate_provider_release(provider);
    grpc_tls_certificate_verifier_release(verifier);
    if (*creds == NULL) {
        snprintf(err, errlen, "gRPC refused the TLS credentials");
        ret = RM_ERR_TLS_CONFIG;
        goto Fail;
    }
    *out = sc;
    return 0;

Fail:
    close(sc->fd);
    free(sc);
    return ret;
}

void rm_serving_creds_tick(rm_serving_creds_t *sc, time_t now)
{
    int fd;

    if (now < sc->renew_at)
        return;
    if ((fd = issue(sc, now)) < 0) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_ERROR, "serving_certificate_failed");
        rm_log_err(&l, "error", fd);
        rm_log_end(&l);
        sc->renew_at = now + RETRY_S; /* the current one is still valid: it was renewed at half its life */
        return;
    }
    if (dup3(fd, sc->fd, O_CLOEXEC) < 0) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_ERROR, "serving_certificate_failed");
        rm_log_err(&l, "error", -errno);
        rm_log_end(&l);
        sc->renew_at = now + RETRY_S;
    } else {
        sc->renew_at = now + sc->cfg.ttl / 2;
    }
    close(fd);
}

void rm_serving_creds_free(rm_serving_creds_t *sc)
{
    if (sc == NULL)
        return;
    close(sc->fd);
    free(sc);
}
