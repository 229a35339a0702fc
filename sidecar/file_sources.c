#include "file_sources.h"
#include "ringmesh/config.h"
#include "ringmesh/log.h"
#include "ringmesh/policy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PEM_MAX (1 << 20)

enum { SVID_CERT, SVID_KEY, SVID_BUNDLE, SVID_NUM_FILES };

static const char *file_of(const rm_proxy_config_t *cfg, int i)
{
    return i == SVID_CERT ? cfg->cert_file : i == SVID_KEY ? cfg->key_file : cfg->bundle_file;
}

int rm_svid_files_load(const rm_proxy_config_t *cfg, rm_tls_ctx_t **client, rm_tls_ctx_t **server, char *err,
                       size_t errlen, const char **file)
{
    static const char *const unreadable[SVID_NUM_FILES] = {"certificate file could not be read",
                                                           "private key file could not be read",
                                                           "trust bundle file could not be read"};
    char *data[SVID_NUM_FILES] = {NULL};
    size_t len[SVID_NUM_FILES] = {0};
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
    for (int i = 0; i < SVID_NUM_FILES; i++) {
        if ((ret = rm_file_read_at(AT_FDCWD, file_of(cfg, i), NULL, PEM_MAX, i == SVID_KEY ? RM_FILE_SECRET : 0,
                                   &data[i], &len[i], NULL)) != 0) {
            snprintf(err, errlen, "%s", unreadable[i]);
            *file = file_of(cfg, i);
            goto Exit;
        }
    }
    rm_tls_ctx_config_t tc = {.cert_pem = data[SVID_CERT],
                              .cert_len = len[SVID_CERT],
                              .key_pem = data[SVID_KEY],
                              .key_len = len[SVID_KEY],
                              .bundle_pem = data[SVID_BUNDLE],
                              .bundle_len = len[SVID_BUNDLE],
                              .trust_domain = cfg->trust_domain,
                              /* peers of the trust domains policies name as aliases are the same workloads */
                              .peer_trust_domain_aliases = (const char *const *)cfg->authz_trust_domain_aliases,
                              .num_peer_trust_domain_aliases = cfg->num_authz_trust_domain_aliases};
    if ((ret = rm_tls_ctx_new(client, RM_TLS_CLIENT, &tc, err, errlen)) != 0 ||
        (ret = rm_tls_ctx_new(server, RM_TLS_SERVER, &tc, err, errlen)) != 0) {
        rm_tls_ctx_unref(*client);
        *client = NULL;
        *file = strncmp(err, "trust bundle", 12) == 0  ? cfg->bundle_file
                : strncmp(err, "private key", 11) == 0 ? cfg->key_file
                                                       : cfg->cert_file;
    }
Exit:
    rm_file_free(data[SVID_KEY], len[SVID_KEY], RM_FILE_SECRET);
    free(data[SVID_CERT]);
    free(data[SVID_BUNDLE]);
    return ret;
}

int rm_policy_files_load(const rm_proxy_config_t *cfg, rm_authz_t **out, char *err, size_t errlen)
{
    char host[256] = "";
    int ret;
    gethostname(host, sizeof(host) - 1);
    if ((ret =
             rm_authz_from_path(cfg->authz_policy_dir, cfg->authz_default_allow, cfg->authz_log_allowed,
                                cfg->trust_domain, cfg->authz_trust_domain_aliases, cfg->num_authz_trust_domain_aliases,
                                cfg->authz_num_trusted_proxies, host, out, err, errlen)) != 0)
        return ret;
    /* set before the caller publishes it: from then on an rm_authz_t is immutable */
    (*out)->wp.path_normalization = cfg->authz_path_normalization;
    (*out)->wp.log_attributes = (uint8_t)(cfg->authz_log_attributes != 0);
    return 0;
}

void rm_policy_files_log(const char *event, const rm_proxy_config_t *cfg, const rm_authz_t *authz)
{
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_INFO, event);
    rm_log_str(&l, "path", cfg->authz_policy_dir);
    rm_log_uint(&l, "policies", authz->set.num_policies);
    rm_log_uint(&l, "rules", rm_authz_engine_num_rules(authz->engine));
    rm_log_str(&l, "default_action", cfg->authz_default_allow ? "ALLOW" : "DENY");
    rm_log_str(&l, "path_normalization", rm_path_normalization_name(cfg->authz_path_normalization));
    rm_log_end(&l);
}

/* ------------------------------------------------------------------ watching */

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): stat() filled what stat_digest() mixes
        h = (h ^ b[i]) * 0x100000001b3ull; /* FNV-1a */
    return h;
}

/* What stat(2) says of one file, or why it cannot. */
static uint64_t stat_digest(const char *path)
{
    struct stat st;
    uint64_t h = 0xcbf29ce484222325ull;
    if (stat(path, &st) != 0) {
        int err = errno;
        return mix(h, &err, sizeof(err));
    }
    int64_t f[5] = {(int64_t)st.st_dev, (int64_t)st.st_ino, (int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec,
                    (int64_t)st.st_mtim.tv_nsec};
    return mix(h, f, sizeof(f));
}

static uint64_t svid_digest(const rm_proxy_config_t *cfg)
{
    uint64_t h = 0;
    for (int i = 0; i < SVID_NUM_FILES; i++)
        h = mix(h, &(uint64_t){stat_digest(file_of(cfg, i))}, sizeof(uint64_t));
    return h;
}

/* The policy path, and when it is a directory every file of it that rm_policy_load_path reads, in any order. */
static uint64_t policies_digest(const rm_proxy_config_t *cfg)
{
    const char *dir = cfg->authz_policy_dir;
    uint64_t h = stat_digest(dir), sum = 0, n = 0;
    char path[PATH_MAX];
    struct dirent *de;
    DIR *d;

    if ((d = opendir(dir)) == NULL)
        return h; /* a file, or nothing */
    while ((de = readdir(d)) != NULL) {
        if (!rm_policy_file_name(de->d_name) ||
            (size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path))
            continue;
        sum += mix(stat_digest(path), de->d_name, strlen(de->d_name));
        n++;
    }
    closedir(d);
    h = mix(h, &sum, sizeof(sum));
    return mix(h, &n, sizeof(n));
}

void rm_file_sources_watch(rm_file_sources_t *fs, const rm_proxy_config_t *cfg)
{
    memset(fs, 0, sizeof(*fs));
    fs->cfg = cfg;
    fs->svid_enabled =
        cfg->control == NULL && cfg->cert_file != NULL && cfg->key_file != NULL && cfg->bundle_file != NULL;
    fs->policies_enabled = cfg->control == NULL && cfg->authz_policy_dir != NULL;
    if (fs->svid_enabled)
        fs->svid.loaded = svid_digest(cfg);
    if (fs->policies_enabled)
        fs->policies.loaded = policies_digest(cfg);
}

/* Whether a source is to be read again now: changed since last read and quiet since the previous check. */
static int due(rm_file_watch_t *w, uint64_t now)
{
    if (now == w->loaded) {
        w->settling = 0;
        return 0;
    }
    if (!w->settling || now != w->seen) {
        w->seen = now; /* still being written, or first seen now: read once it has stayed so for a whole check */
        w->settling = 1;
        return 0;
    }
    w->settling = 0;
    w->loaded = now; /* what fails is read again only once it changes again */
    return 1;
}

/* Publishes for new connections the file's configuration with the SVID and the policies in force, the ones given
 * (not NULL) replacing them. Only this thread publishes in a proxy without a control plane, so the current snapshot
 * stays current. */
static int publish(rm_proxy_t *p, rm_tls_ctx_t *client, rm_tls_ctx_t *server, rm_authz_t *authz)
{
    rm_snapshot_t *cur = rm_snapshot_acquire(p), *s;
    rm_snapshot_params_t params = {.access_log = -1,
                                   .client_ctx = client != NULL ? client : cur->client_ctx,
                                   .server_ctx = server != NULL ? server : cur->server_ctx,
                                   .authz = authz != NULL ? authz : cur->authz};
    s = rm_snapshot_derive(p->base_snap, &params);
    rm_snapshot_unref(cur);
    if (s == NULL)
        return -ENOMEM;
    rm_proxy_publish(p, s);
    return 0;
}

/* A reload that failed: logged and counted; what was in force stays. */
static void reload_failed(rm_proxy_t *p, int source, const char *file, const char *msg, int err)
{
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_WARN, source == RM_FILE_SOURCE_SVID ? "svid_reload_failed" : "policies_reload_failed");
    rm_log_str(&l, "file", file);
    rm_log_str(&l, "msg", msg);
    rm_log_err(&l, "error", err);
    rm_log_str(&l, "outcome", source == RM_FILE_SOURCE_SVID ? "the SVID in force stays" : "the policies in force stay");
    rm_log_end(&l);
    atomic_fetch_add(&p->files.rejected[source], 1);
}

static void reload_svid(rm_file_sources_t *fs, rm_proxy_t *p)
{
    rm_tls_ctx_t *client, *server;
    const char *file = NULL;
    char err[512], previous[RM_SPIFFE_ID_MAX + 1] = "";
    int ret;

    if ((ret = rm_svid_files_load(fs->cfg, &client, &server, err, sizeof(err), &file)) != 0) {
        reload_failed(p, RM_FILE_SOURCE_SVID, file, err, ret);
        return;
    }
    rm_snapshot_t *cur = rm_snapshot_acquire(p);
    if (cur->client_ctx != NULL)
        snprintf(previous, sizeof(previous), "%s", rm_tls_ctx_id(cur->client_ctx)->str);
    rm_snapshot_unref(cur);
    if ((ret = publish(p, client, server, NULL)) != 0) {
        reload_failed(p, RM_FILE_SOURCE_SVID, fs->cfg->cert_file, "out of memory", ret);
    } else {
        atomic_fetch_add(&p->files.accepted[RM_FILE_SOURCE_SVID], 1);
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "svid_reloaded");
        rm_log_str(&l, "file", fs->cfg->cert_file);
        rm_log_str(&l, "spiffe_id", rm_tls_ctx_id(client)->str);
        rm_log_int(&l, "not_after", (int64_t)rm_tls_ctx_not_after(client));
        if (previous[0] != '\0' && strcmp(previous, rm_tls_ctx_id(client)->str) != 0)
            rm_log_str(&l, "previous_spiffe_id", previous);
        rm_log_end(&l);
        fs->expiring_logged = fs->expired = 0;
        atomic_store(&p->svid_expired, 0);
    }
    rm_tls_ctx_unref(client); /* the snapshot holds its own references */
    rm_tls_ctx_unref(server);
}

static void reload_policies(rm_file_sources_t *fs, rm_proxy_t *p)
{
    rm_authz_t *authz = NULL;
    char err[1024];
    int ret;

    if ((ret = rm_policy_files_load(fs->cfg, &authz, err, sizeof(err))) != 0) {
        reload_failed(p, RM_FILE_SOURCE_POLICIES, fs->cfg->authz_policy_dir, err, ret);
        return;
    }
    if ((ret = publish(p, NULL, NULL, authz)) != 0) {
        reload_failed(p, RM_FILE_SOURCE_POLICIES, fs->cfg->authz_policy_dir, "out of memory", ret);
    } else {
        rm_policy_files_log("policies_reloaded", fs->cfg, authz);
        atomic_fetch_add(&p->files.accepted[RM_FILE_SOURCE_POLICIES], 1);
    }
    rm_authz_unref(authz);
}

/* Warns near the expiry of the SVID in force, and once it has expired. It is still presented: the peers' checks refuse
 * it, and say so in their logs, as they would any other expired SVID. */
static void check_expiry(rm_file_sources_t *fs, rm_proxy_t *p)
{
    rm_snapshot_t *cur = rm_snapshot_acquire(p);
    int64_t now = (int64_t)time(NULL), not_before = 0, not_after = 0;
    int have = cur->client_ctx != NULL;

    if (have) {
        not_before = (int64_t)rm_tls_ctx_not_before(cur->client_ctx);
        not_after = (int64_t)rm_tls_ctx_not_after(cur->client_ctx);
    }
    rm_snapshot_unref(cur);
    if (!have || not_after == 0)
        return;            /* no SVID in force, or its validity unknown */
    if (now > not_after) { /* valid through its notAfter second, as the SVID rules have it */
        if (!fs->expired) {
            fs->expired = 1;
            atomic_store(&p->svid_expired, 1);
            rm_log_line_t l;
            rm_log_begin(&l, RM_LOG_ERROR, "svid_expired");
            rm_log_str(&l, "file", fs->cfg->cert_file);
            rm_log_int(&l, "not_after", not_after);
            rm_log_str(&l, "msg", "the SVID has expired and no new one has been written: peers refuse it until one is");
            rm_log_end(&l);
        }
        return;
    }
    if (!fs->expiring_logged &&
        now >= not_after - (int64_t)((double)(not_after - not_before) * RM_SVID_EXPIRY_WARN_FRACTION)) {
        fs->expiring_logged = 1;
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "svid_expiring");
        rm_log_str(&l, "file", fs->cfg->cert_file);
        rm_log_int(&l, "not_after", not_after);
        rm_log_int(&l, "seconds_left", not_after - now);
        rm_log_end(&l);
    }
}

void rm_file_sources_poll(rm_file_sources_t *fs, rm_proxy_t *p)
{
    /* the SVID only while there is one in force: a proxy that needs none was started without */
    if (fs->svid_enabled && p->base_snap->client_ctx != NULL && due(&fs->svid, svid_digest(fs->cfg)))
        reload_svid(fs, p);
    if (fs->svid_enabled)
        check_expiry(fs, p);
    if (fs->policies_enabled && due(&fs->policies, policies_digest(fs->cfg)))
        reload_policies(fs, p);
}
