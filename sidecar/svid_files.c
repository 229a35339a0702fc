#include "svid_files.h"
#include "ringmesh/file_read.h"
#include "ringmesh/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PEM_MAX (1 << 20)

static const char *file_of(const rm_proxy_config_t *cfg, int i)
{
    return i == RM_SVID_FILE_CERT ? cfg->cert_file : i == RM_SVID_FILE_KEY ? cfg->key_file : cfg->bundle_file;
}

static void wipe_free(char *p, size_t len)
{
    if (p != NULL) {
        explicit_bzero(p, len);
        free(p);
    }
}

int rm_svid_files_load(const rm_proxy_config_t *cfg, rm_tls_ctx_t **client, rm_tls_ctx_t **server, char *err,
                       size_t errlen, const char **file)
{
    static const char *const unreadable[RM_SVID_NUM_FILES] = {"certificate file could not be read",
                                                              "private key file could not be read",
                                                              "trust bundle file could not be read"};
    char *data[RM_SVID_NUM_FILES] = {NULL};
    size_t len[RM_SVID_NUM_FILES] = {0};
    struct stat st;
    int ret = 0;

    *client = *server = NULL;
    if (stat(cfg->key_file, &st) == 0 && (st.st_mode & 077) != 0) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "key_file_permissions");
        rm_log_str(&l, "file", cfg->key_file);
        rm_log_str(&l, "msg", "private key file is readable by group or others; it should be mode 0600");
        rm_log_end(&l);
    }
    for (int i = 0; i < RM_SVID_NUM_FILES; i++) {
        if ((ret = rm_file_read(file_of(cfg, i), PEM_MAX, &data[i], &len[i])) != 0) {
            snprintf(err, errlen, "%s", unreadable[i]);
            *file = file_of(cfg, i);
            goto Exit;
        }
    }
    rm_tls_ctx_config_t tc = {.cert_pem = data[RM_SVID_FILE_CERT],
                              .cert_len = len[RM_SVID_FILE_CERT],
                              .key_pem = data[RM_SVID_FILE_KEY],
                              .key_len = len[RM_SVID_FILE_KEY],
                              .bundle_pem = data[RM_SVID_FILE_BUNDLE],
                              .bundle_len = len[RM_SVID_FILE_BUNDLE],
                              .trust_domain = cfg->trust_domain};
    if ((ret = rm_tls_ctx_new(client, RM_TLS_CLIENT, &tc, err, errlen)) != 0 ||
        (ret = rm_tls_ctx_new(server, RM_TLS_SERVER, &tc, err, errlen)) != 0) {
        rm_tls_ctx_unref(*client);
        *client = NULL;
        *file = strncmp(err, "trust bundle", 12) == 0  ? cfg->bundle_file
                : strncmp(err, "private key", 11) == 0 ? cfg->key_file
                                                       : cfg->cert_file;
    }
Exit:
    wipe_free(data[RM_SVID_FILE_KEY], len[RM_SVID_FILE_KEY]);
    free(data[RM_SVID_FILE_CERT]);
    free(data[RM_SVID_FILE_BUNDLE]);
    return ret;
}

static void sig_of(const char *path, rm_file_sig_t *s)
{
    struct stat st;
    memset(s, 0, sizeof(*s));
    if (stat(path, &st) != 0) {
        s->err = -errno;
        return;
    }
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->size = st.st_size;
    s->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

static int sigs_equal(const rm_file_sig_t *a, const rm_file_sig_t *b)
{
    for (int i = 0; i < RM_SVID_NUM_FILES; i++)
        if (a[i].dev != b[i].dev || a[i].ino != b[i].ino || a[i].size != b[i].size || a[i].mtime_ns != b[i].mtime_ns ||
            a[i].err != b[i].err)
            return 0;
    return 1;
}

void rm_svid_files_watch(rm_svid_files_t *w, const rm_proxy_config_t *cfg)
{
    memset(w, 0, sizeof(*w));
    w->cfg = cfg;
    for (int i = 0; i < RM_SVID_NUM_FILES; i++)
        sig_of(file_of(cfg, i), &w->loaded[i]);
}

/* Publishes the new contexts for new connections: the file's configuration and policies, as at start. */
static int publish(rm_proxy_t *p, rm_tls_ctx_t *client, rm_tls_ctx_t *server)
{
    rm_snapshot_params_t params = {
        .access_log = -1, .client_ctx = client, .server_ctx = server, .authz = p->base_snap->authz};
    rm_snapshot_t *s = rm_snapshot_derive(p->base_snap, &params);
    if (s == NULL)
        return -ENOMEM;
    rm_proxy_publish(p, s);
    return 0;
}

int rm_svid_files_poll(rm_svid_files_t *w, rm_proxy_t *p)
{
    rm_file_sig_t now[RM_SVID_NUM_FILES];
    rm_tls_ctx_t *client, *server;
    const char *file = NULL;
    char err[512], previous[RM_SPIFFE_ID_MAX + 1] = "";
    int ret;

    for (int i = 0; i < RM_SVID_NUM_FILES; i++)
        sig_of(file_of(w->cfg, i), &now[i]);
    if (sigs_equal(now, w->loaded)) {
        w->settling = 0;
        return 0;
    }
    if (!w->settling || !sigs_equal(now, w->seen)) {
        /* still being written, or first seen now: read once it has stayed so for a whole check interval */
        memcpy(w->seen, now, sizeof(now));
        w->settling = 1;
        return 0;
    }
    w->settling = 0;
    memcpy(w->loaded, now, sizeof(now)); /* a set that fails is read again only once it changes again */

    if ((ret = rm_svid_files_load(w->cfg, &client, &server, err, sizeof(err), &file)) == 0) {
        rm_snapshot_t *cur = rm__proxy_snapshot(p);
        if (cur->client_ctx != NULL)
            snprintf(previous, sizeof(previous), "%s", rm_tls_ctx_id(cur->client_ctx)->str);
        rm_snapshot_unref(cur);
        if ((ret = publish(p, client, server)) != 0) {
            file = w->cfg->cert_file;
            snprintf(err, sizeof(err), "out of memory");
        }
    }
    if (ret != 0) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "svid_reload_failed");
        rm_log_str(&l, "file", file);
        rm_log_str(&l, "msg", err);
        rm_log_err(&l, "error", ret);
        rm_log_str(&l, "outcome", "the SVID in force stays");
        rm_log_end(&l);
    } else {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "svid_reloaded");
        rm_log_str(&l, "file", w->cfg->cert_file);
        rm_log_str(&l, "spiffe_id", rm_tls_ctx_id(client)->str);
        rm_log_int(&l, "not_after", (int64_t)rm_tls_ctx_not_after(client));
        if (previous[0] != '\0' && strcmp(previous, rm_tls_ctx_id(client)->str) != 0)
            rm_log_str(&l, "previous_spiffe_id", previous);
        rm_log_end(&l);
    }
    rm_tls_ctx_unref(client); /* the snapshot holds its own references */
    rm_tls_ctx_unref(server);
    return ret == 0 ? 1 : -1;
}
