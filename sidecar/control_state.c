/* The control client's state directory: the SVID, its key (mode 0600) and bundle, and every resource accepted, saved
 * as they arrive and restored at start, so that a proxy restarts while the control plane is down. */
#include "control_client_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ringmesh/config.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"
#include "ringmesh/svid.h"
#include "ringmesh/x509_issue.h"

#define FILE_MAX (1u << 20)

/* State files, tokens and bundles: key material among them, so every buffer is read as a secret. */
int rm__control_read_file(const char *path, char **out, size_t *len)
{
    return rm_file_read_at(AT_FDCWD, path, NULL, FILE_MAX, RM_FILE_SECRET, out, len, NULL);
}

static void state_path(const rm_control_client_t *cc, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", cc->ccfg->state_dir, name);
}

static void log_state_error(const char *what, const char *path, int err)
{
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_WARN, "state_write_failed");
    rm_log_str(&l, "what", what);
    rm_log_str(&l, "file", path);
    rm_log_err(&l, "error", err);
    rm_log_end(&l);
}

void rm__control_save_state(rm_control_client_t *cc, const char *name, const void *data, size_t len, int is_private)
{
    char path[4096];
    int ret;

    state_path(cc, name, path, sizeof(path));
    if ((ret = rm_x509_write_file(path, data, len, is_private)) != 0)
        log_state_error(name, path, ret);
}

void rm__control_save_resource(rm_control_client_t *cc, int type, const Ringmesh__V1__Resource *res)
{
    char name[64];
    size_t len = ringmesh__v1__resource__get_packed_size(res);
    uint8_t *buf = malloc(len == 0 ? 1 : len);

    if (buf == NULL)
        return;
    ringmesh__v1__resource__pack(res, buf);
    snprintf(name, sizeof(name), "xds-%s.pb", rm_xds_type_name(type));
    rm__control_save_state(cc, name, buf, len, 1);
    free(buf);
}
/* The svid.validity file: three decimal integers (not before, issued at, not after) separated by blanks, nothing
 * else but a final newline. 0, or -1 when it is anything else. */
static int parse_validity(const char *text, long long *nb, long long *ia, long long *na)
{
    long long *out[3] = {nb, ia, na};
    const char *p = text;
    for (int i = 0; i < 3; i++) {
        char *end;
        while (*p == ' ' || *p == '\t')
            p++;
        errno = 0;
        *out[i] = strtoll(p, &end, 10);
        if (end == p || errno != 0)
            return -1;
        p = end;
    }
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    return *p == '\0' ? 0 : -1;
}

void rm__control_restore_state(rm_control_client_t *cc)
{
    char path[4096], err[256];
    int64_t now = (int64_t)time(NULL);
    int ret;

    state_path(cc, "svid.pem", path, sizeof(path));
    if (rm__control_read_file(path, &cc->cert_pem, &cc->cert_len) == 0) {
        state_path(cc, "svid-key.pem", path, sizeof(path));
        ret = rm__control_read_file(path, &cc->key_pem, &cc->key_len);
        state_path(cc, "bundle.pem", path, sizeof(path));
        if (ret == 0)
            ret = rm__control_read_file(path, &cc->bundle_pem, &cc->bundle_len);
        rm_trust_bundle_t *b = NULL;
        rm_spiffe_id_t id;
        rm_svid_expect_t expect = {.trust_domain = cc->cfg->trust_domain};
        if (ret == 0 && (ret = rm_trust_bundle_load_pem(&b, cc->bundle_pem, cc->bundle_len)) == 0)
            ret = rm_svid_verify_pem(b, cc->cert_pem, cc->cert_len, now, &expect, &id);
        rm_trust_bundle_free(b);
        if (ret == 0 && (ret = rm__control_rebuild_tls(cc, NULL, 0, err, sizeof(err))) == 0) {
            char *meta = NULL;
            size_t meta_len;
            long long nb = 0, ia = 0, na = 0;
            /* the validity window, saved beside the SVID; without it, renew soon */
            state_path(cc, "svid.validity", path, sizeof(path));
            if (rm__control_read_file(path, &meta, &meta_len) == 0 && parse_validity(meta, &nb, &ia, &na) == 0 &&
                nb <= ia && ia < na && na == (long long)rm_tls_ctx_not_after(cc->client_ctx)) {
                cc->not_before = nb;
                cc->issued_at = ia;
                cc->not_after = na;
            } else {
                cc->not_after = rm_tls_ctx_not_after(cc->client_ctx);
                cc->not_before = cc->issued_at = now - (cc->not_after - now); /* renew at once at 50 % */
            }
            free(meta);
            atomic_store(&cc->proxy->control.svid_not_after, cc->not_after);
            rm__control_schedule_renewal(cc);
            rm_log_line_t l;
            rm_log_begin(&l, RM_LOG_INFO, "svid_restored");
            rm_log_str(&l, "spiffe_id", id.str);
            rm_log_int(&l, "not_after", cc->not_after);
            rm_log_str(&l, "state_dir", cc->ccfg->state_dir);
            rm_log_end(&l);
        } else {
            rm_log_line_t l;
            rm_log_begin(&l, RM_LOG_INFO, "svid_not_restored");
            rm_log_str(&l, "state_dir", cc->ccfg->state_dir);
            rm_log_err(&l, "error", ret);
            rm_log_str(&l, "msg", "the saved SVID is missing, unreadable, expired or not trusted; a new one is needed");
            rm_log_end(&l);
            rm_file_free(cc->key_pem, cc->key_len, RM_FILE_SECRET);
            free(cc->cert_pem);
            cc->key_pem = cc->cert_pem = NULL;
        }
    }
    for (int t = 0; t < RM_XDS_NUM_TYPES; t++) {
        char name[64], *data = NULL;
        size_t len;
        Ringmesh__V1__Resource *res;
        snprintf(name, sizeof(name), "xds-%s.pb", rm_xds_type_name(t));
        state_path(cc, name, path, sizeof(path));
        if (rm__control_read_file(path, &data, &len) != 0)
            continue;
        if ((res = ringmesh__v1__resource__unpack(NULL, len, (const uint8_t *)data)) != NULL &&
            rm__control_apply_resource(cc, t, res, err, sizeof(err)) == 0) {
            snprintf(cc->versions[t], sizeof(cc->versions[t]), "%s", res->version != NULL ? res->version : "");
            rm_log_line_t l;
            rm_log_begin(&l, RM_LOG_INFO, "config_restored");
            rm_log_str(&l, "type", rm_xds_type_name(t));
            rm_log_str(&l, "version", cc->versions[t]);
            rm_log_end(&l);
        }
        if (res != NULL)
            ringmesh__v1__resource__free_unpacked(res, NULL);
        free(data);
    }
}
