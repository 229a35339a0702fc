#include "control_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "grpc_h2.h"
#include "ringmesh/buffer_pool.h"
#include "ringmesh/csr.h"
#include "ringmesh/config.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"
#include "ringmesh/svid.h"
#include "ringmesh/x509_issue.h"
#include "ringmesh/xds.h"
#include "ringmesh/v1/discovery.pb-c.h"
#include "ringmesh/v1/identity.pb-c.h"

#define METHOD_SIGN      "/ringmesh.v1.Identity/Sign"
#define METHOD_STREAM    "/ringmesh.v1.Discovery/Stream"
#define SIGN_DEADLINE_MS 10000
#define BACKOFF_MIN_MS   500
#define BACKOFF_MAX_MS   30000
#define FILE_MAX         (1u << 20)

struct st_rm_control_client_t {
    rm_proxy_t *proxy;
    const rm_proxy_config_t *cfg; /* the base snapshot's, alive as long as the proxy */
    const rm_control_config_t *ccfg;
    pthread_t thread;
    atomic_int stop;
    char node_id[256], node_ns[256], node_sa[256];

    /* identity */
    char *cert_pem, *key_pem, *bundle_pem; /* the SVID held (key in memory only; the state file is 0600) */
    size_t cert_len, key_len, bundle_len;
    int64_t not_before, not_after;
    int64_t issued_at;    /* when it was received: NotBefore is backdated for clock skew, so the lifetime that
                           * counts for renewal runs from here */
    uint64_t renew_at_ms; /* monotonic */
    unsigned sign_failures;
    int expiring_logged, expired_published;
    rm_tls_ctx_t *client_ctx, *server_ctx;

    /* configuration: last accepted per type */
    char versions[RM_XDS_NUM_TYPES][64];
    rm_dest_table_t *dests;
    rm_authz_t *authz; /* the WorkloadPolicy in force */
    int have_mesh;
    rm_mtls_mode_t inbound_mode;
    int have_inbound_mode;
    uint32_t connect_timeout_ms, idle_timeout_ms;
    int access_log;

    /* discovery stream */
    rm_h2_conn_t *conn;
    rm_h2_call_t *call;
    int stream_up, stream_ended;
    uint64_t stream_up_since_ms;
    int end_status;
    char end_message[256];
    char control_id[600]; /* the SPIFFE ID the control plane must present */
    uint64_t reconnect_at_ms;
    unsigned stream_failures;
    int outage_logged;
    int received_any;
};

/* ------------------------------------------------------------------ small helpers */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t rand32(void)
{
    uint32_t v = 0;
    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
        v = (uint32_t)now_ms() * 2654435761u;
    return v;
}

/* Capped exponential backoff with full jitter in [d/2, d]. */
static uint64_t backoff_ms(unsigned failures)
{
    uint64_t d = BACKOFF_MIN_MS;
    for (unsigned i = 1; i < failures && d < BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > BACKOFF_MAX_MS)
        d = BACKOFF_MAX_MS;
    return d / 2 + rand32() % (d / 2 + 1);
}

/* State files, tokens and bundles: key material among them, so every buffer is read as a secret. */
static int read_file(const char *path, char **out, size_t *len)
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

static void save_state(rm_control_client_t *cc, const char *name, const void *data, size_t len, int is_private)
{
    char path[4096];
    int ret;

    state_path(cc, name, path, sizeof(path));
    if ((ret = rm_x509_write_file(path, data, len, is_private)) != 0)
        log_state_error(name, path, ret);
}

/* ------------------------------------------------------------------ snapshots */

static void publish(rm_control_client_t *cc)
{
    rm_snapshot_params_t params = {
        .dests = cc->dests,
        .have_inbound_mode = cc->have_inbound_mode,
        .inbound_mode = cc->inbound_mode,
        .connect_timeout_ms = cc->connect_timeout_ms,
        .idle_timeout_ms = cc->idle_timeout_ms,
        .access_log = cc->have_mesh ? cc->access_log : -1,
        .client_ctx = cc->client_ctx,
        .server_ctx = cc->server_ctx,
        .no_tls_reason = cc->client_ctx == NULL ? (cc->expired_published ? "svid_expired" : "no_svid_yet") : NULL,
        .versions = (const char(*)[64])cc->versions,
        .authz = cc->authz,
        .authz_required = 1,
        .port_modes = cc->authz != NULL ? cc->authz->wp.port_modes : NULL,
        .num_port_modes = cc->authz != NULL ? cc->authz->wp.num_port_modes : 0,
    };
    if (cc->authz != NULL && cc->authz->wp.inbound_mode != RM_PEER_MTLS_UNSET) {
        /* PeerAuthentication for this workload, over the mesh-wide default */
        params.have_inbound_mode = 1;
        params.inbound_mode = cc->authz->wp.inbound_mode == RM_PEER_MTLS_PERMISSIVE ? RM_MTLS_PERMISSIVE
                              : cc->authz->wp.inbound_mode == RM_PEER_MTLS_DISABLE  ? RM_MTLS_DISABLE
                                                                                    : RM_MTLS_STRICT;
    }
    rm_snapshot_t *s = rm_snapshot_derive(cc->proxy->base_snap, &params);

    if (s == NULL) {
        rm_log_msg(RM_LOG_ERROR, "snapshot_failed", "out of memory: the previous configuration stays in force");
        return;
    }
    rm_proxy_publish(cc->proxy, s);
    int ready = cc->client_ctx != NULL;
    for (int t = 0; t < RM_XDS_NUM_TYPES; t++)
        ready &= cc->versions[t][0] != '\0';
    if (ready && !atomic_exchange(&cc->proxy->ready, 1))
        rm_log_msg(RM_LOG_INFO, "proxy_ready", "SVID and configuration in place");
}

/* Builds TLS contexts from the SVID held and `bundle` (NULL: the one held). Returns 0 or an error with the reason in
 * err; nothing changes on failure. */
static int rebuild_tls(rm_control_client_t *cc, const char *bundle, size_t bundle_len, char *err, size_t errlen)
{
    rm_tls_ctx_t *client = NULL, *server = NULL;
    int ret;

    if (bundle == NULL) {
        bundle = cc->bundle_pem;
        bundle_len = cc->bundle_len;
    }
    rm_tls_ctx_config_t tc = {.cert_pem = cc->cert_pem,
                              .cert_len = cc->cert_len,
                              .key_pem = cc->key_pem,
                              .key_len = cc->key_len,
                              .bundle_pem = bundle,
                              .bundle_len = bundle_len,
                              .trust_domain = cc->cfg->trust_domain};
    if ((ret = rm_tls_ctx_new(&client, RM_TLS_CLIENT, &tc, err, errlen)) != 0 ||
        (ret = rm_tls_ctx_new(&server, RM_TLS_SERVER, &tc, err, errlen)) != 0) {
        rm_tls_ctx_unref(client);
        return ret;
    }
    rm_tls_ctx_unref(cc->client_ctx);
    rm_tls_ctx_unref(cc->server_ctx);
    cc->client_ctx = client;
    cc->server_ctx = server;
    return 0;
}

static void schedule_renewal(rm_control_client_t *cc)
{
    int64_t life = cc->not_after - cc->issued_at, now = (int64_t)time(NULL);
    /* renew at renewFraction of the lifetime, moved by up to 20 % of that either way, so that a fleet started
     * together does not renew together */
    int64_t interval = (int64_t)((double)life * cc->ccfg->renew_fraction);
    int64_t spread = interval / 5;
    int64_t at =
        cc->issued_at + interval + (spread > 0 ? (int64_t)(rand32() % (uint32_t)(2 * spread + 1)) - spread : 0);

    if (at > cc->not_after - 30)
        at = cc->not_after - 30;
    cc->renew_at_ms = now_ms() + (at > now ? (uint64_t)(at - now) * 1000 : 0);
    cc->expiring_logged = 0;
}

/* ------------------------------------------------------------------ pushed resources */

int rm__control_parse_destinations(const uint8_t *value, size_t len, const char *trust_domain, rm_dest_table_t **out,
                                   char *err, size_t errlen)
{
    Ringmesh__V1__DestinationMap *map;
    rm_dest_table_t *t;
    size_t n = 0, k = 0;
    int ret = -EINVAL;

    if ((map = ringmesh__v1__destination_map__unpack(NULL, len, value)) == NULL) {
        snprintf(err, errlen, "DestinationMap does not decode");
        return -EINVAL;
    }
    for (size_t i = 0; i < map->n_destinations; i++)
        if (map->destinations[i]->in_mesh)
            n += map->destinations[i]->n_addresses;
    if ((t = calloc(1, sizeof(*t))) == NULL || (n > 0 && (t->dests = calloc(n, sizeof(*t->dests))) == NULL)) {
        free(t);
        ringmesh__v1__destination_map__free_unpacked(map, NULL);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    atomic_init(&t->refs, 1);
    for (size_t i = 0; i < map->n_destinations; i++) {
        const Ringmesh__V1__Destination *d = map->destinations[i];
        const char *name = d->name != NULL ? d->name : "";
        if (!d->in_mesh)
            continue; /* not in the mesh: pass-through, which is what an unknown address gets */
        if (d->n_identities == 0 || d->n_identities > RM_MAX_IDENTITIES) {
            snprintf(err, errlen, "destination %s: in the mesh with %zu identities (1 to %d allowed)", name,
                     d->n_identities, RM_MAX_IDENTITIES);
            goto Exit;
        }
        for (size_t j = 0; j < d->n_identities; j++) {
            rm_spiffe_id_t id;
            const char *s = d->identities[j];
            int rc = rm_spiffe_workload_id_parse(s, strlen(s), &id);
            if (rc == RM_ERR_SVID_NO_PATH) {
                snprintf(err, errlen, "destination %s: identity \"%.300s\": %s", name, s, rm_strerror(rc));
                goto Exit;
            }
            if (rc != 0 || id.td_len != strlen(trust_domain) || memcmp(id.str + 9, trust_domain, id.td_len) != 0) {
                snprintf(err, errlen, "destination %s: identity \"%.300s\" is not a SPIFFE ID in trust domain %s", name,
                         s, trust_domain);
                goto Exit;
            }
        }
        for (size_t a = 0; a < d->n_addresses; a++) {
            rm_destination_t *dst = &t->dests[k];
            if (rm_sockaddr_parse(d->addresses[a], &dst->addr) != 0 || strchr(d->addresses[a], ':') == NULL) {
                snprintf(err, errlen, "destination %s: address \"%.100s\" is not ip:port", name, d->addresses[a]);
                goto Exit;
            }
            k++;
            t->num = k;
            /* the server name Istio's sidecars send, so that connection.sni rules written for Istio work */
            const char *slash = strchr(name, '/');
            if (slash != NULL && slash > name && slash[1] != '\0') {
                char sni[256];
                int sl = snprintf(sni, sizeof(sni), "outbound_.%u_._.%s.%.*s.svc.cluster.local",
                                  (unsigned)ntohs(dst->addr.ss.ss_family == AF_INET6
                                                      ? ((const struct sockaddr_in6 *)&dst->addr.ss)->sin6_port
                                                      : ((const struct sockaddr_in *)&dst->addr.ss)->sin_port),
                                  slash + 1, (int)(slash - name), name);
                if (sl > 0 && (size_t)sl < sizeof(sni) && (dst->sni = strdup(sni)) == NULL) {
                    snprintf(err, errlen, "out of memory");
                    ret = -ENOMEM;
                    goto Exit;
                }
            }
            for (size_t j = 0; j < d->n_identities; j++) {
                if ((dst->identities[j] = strdup(d->identities[j])) == NULL) {
                    snprintf(err, errlen, "out of memory");
                    ret = -ENOMEM;
                    goto Exit;
                }
                dst->num_identities = j + 1;
            }
        }
    }
    *out = t;
    t = NULL;
    ret = 0;
Exit:
    rm_dest_table_unref(t);
    ringmesh__v1__destination_map__free_unpacked(map, NULL);
    return ret;
}

static rm_mtls_mode_t mode_of(Ringmesh__V1__MtlsMode m)
{
    switch (m) {
    case RINGMESH__V1__MTLS_MODE__PERMISSIVE:
        return RM_MTLS_PERMISSIVE;
    case RINGMESH__V1__MTLS_MODE__DISABLE:
        return RM_MTLS_DISABLE;
    default:
        return RM_MTLS_STRICT;
    }
}

/* Applies one resource. `persist` is 0 when it comes from the state directory. Returns 0 or -EINVAL with err. */
static int apply_resource(rm_control_client_t *cc, int type, const Ringmesh__V1__Resource *res, char *err,
                          size_t errlen)
{
    const uint8_t *v = res->value.data;
    size_t len = res->value.len;
    int ret = 0;

    switch (type) {
    case RM_XDS_TRUST_BUNDLE: {
        Ringmesh__V1__TrustBundle *tb = ringmesh__v1__trust_bundle__unpack(NULL, len, v);
        char *joined = NULL;
        size_t jlen = 0;
        if (tb == NULL) {
            snprintf(err, errlen, "TrustBundle does not decode");
            return -EINVAL;
        }
        if (tb->trust_domain == NULL || strcmp(tb->trust_domain, cc->cfg->trust_domain) != 0 || tb->n_roots_pem == 0) {
            snprintf(err, errlen,
                     "TrustBundle for trust domain \"%s\" with %zu roots: this proxy is in %s and needs "
                     "at least one root",
                     tb->trust_domain != NULL ? tb->trust_domain : "", tb->n_roots_pem, cc->cfg->trust_domain);
            ringmesh__v1__trust_bundle__free_unpacked(tb, NULL);
            return -EINVAL;
        }
        for (size_t i = 0; i < tb->n_roots_pem; i++)
            jlen += strlen(tb->roots_pem[i]) + 1;
        if ((joined = malloc(jlen + 1)) == NULL) {
            ringmesh__v1__trust_bundle__free_unpacked(tb, NULL);
            return -ENOMEM;
        }
        joined[0] = '\0';
        for (size_t i = 0, o = 0; i < tb->n_roots_pem; i++)
            o += (size_t)sprintf(joined + o, "%s\n", tb->roots_pem[i]);
        ringmesh__v1__trust_bundle__free_unpacked(tb, NULL);
        rm_trust_bundle_t *check;
        if (rm_trust_bundle_load_pem(&check, joined, strlen(joined)) != 0) {
            snprintf(err, errlen, "TrustBundle holds a root that does not parse");
            free(joined);
            return -EINVAL;
        }
        rm_trust_bundle_free(check);
        if (cc->cert_pem != NULL) {
            char why[256];
            /* The new bundle must still verify our own SVID, or every peer would refuse us. */
            if ((ret = rebuild_tls(cc, joined, strlen(joined), why, sizeof(why))) != 0) {
                snprintf(err, errlen, "TrustBundle refused: %s", why);
                free(joined);
                return -EINVAL;
            }
        }
        free(cc->bundle_pem);
        cc->bundle_pem = joined;
        cc->bundle_len = strlen(joined);
        return 0;
    }
    case RM_XDS_WORKLOAD_POLICY: {
        rm_authz_t *a;
        char workload[512];
        snprintf(workload, sizeof(workload), "%s/%s", cc->node_ns, cc->node_id);
        if ((ret = rm_authz_new(v, len, workload, res->version, &a, err, errlen)) != 0)
            return ret;
        rm_authz_inherit_counters(a, cc->authz);
        rm_authz_unref(cc->authz);
        cc->authz = a;
        return 0;
    }
    case RM_XDS_DESTINATIONS: {
        rm_dest_table_t *t;
        if ((ret = rm__control_parse_destinations(v, len, cc->cfg->trust_domain, &t, err, errlen)) != 0)
            return ret;
        rm_dest_table_unref(cc->dests);
        cc->dests = t;
        return 0;
    }
    case RM_XDS_MESH_SETTINGS: {
        Ringmesh__V1__MeshSettings *ms = ringmesh__v1__mesh_settings__unpack(NULL, len, v);
        if (ms == NULL) {
            snprintf(err, errlen, "MeshSettings does not decode");
            return -EINVAL;
        }
        if (ms->trust_domain == NULL || strcmp(ms->trust_domain, cc->cfg->trust_domain) != 0) {
            snprintf(err, errlen, "MeshSettings for trust domain \"%s\": this proxy is in %s",
                     ms->trust_domain != NULL ? ms->trust_domain : "", cc->cfg->trust_domain);
            ringmesh__v1__mesh_settings__free_unpacked(ms, NULL);
            return -EINVAL;
        }
        if (ms->inbound_mode > RINGMESH__V1__MTLS_MODE__DISABLE) {
            snprintf(err, errlen, "MeshSettings: unknown mTLS mode %d", (int)ms->inbound_mode);
            ringmesh__v1__mesh_settings__free_unpacked(ms, NULL);
            return -EINVAL;
        }
        cc->have_inbound_mode = ms->inbound_mode != RINGMESH__V1__MTLS_MODE__MTLS_MODE_UNSPECIFIED;
        cc->inbound_mode = mode_of(ms->inbound_mode);
        cc->connect_timeout_ms = ms->connect_timeout_ms;
        cc->idle_timeout_ms = ms->idle_timeout_ms;
        cc->access_log = ms->access_log;
        cc->have_mesh = 1;
        ringmesh__v1__mesh_settings__free_unpacked(ms, NULL);
        return 0;
    }
    }
    snprintf(err, errlen, "unknown resource type");
    return -EINVAL;
}

static void save_resource(rm_control_client_t *cc, int type, const Ringmesh__V1__Resource *res)
{
    char name[64];
    size_t len = ringmesh__v1__resource__get_packed_size(res);
    uint8_t *buf = malloc(len == 0 ? 1 : len);

    if (buf == NULL)
        return;
    ringmesh__v1__resource__pack(res, buf);
    snprintf(name, sizeof(name), "xds-%s.pb", rm_xds_type_name(type));
    save_state(cc, name, buf, len, 1);
    free(buf);
}

/* ------------------------------------------------------------------ state directory */

static void restore_state(rm_control_client_t *cc)
{
    char path[4096], err[256];
    int64_t now = (int64_t)time(NULL);
    int ret;

    state_path(cc, "svid.pem", path, sizeof(path));
    if (read_file(path, &cc->cert_pem, &cc->cert_len) == 0) {
        state_path(cc, "svid-key.pem", path, sizeof(path));
        ret = read_file(path, &cc->key_pem, &cc->key_len);
        state_path(cc, "bundle.pem", path, sizeof(path));
        if (ret == 0)
            ret = read_file(path, &cc->bundle_pem, &cc->bundle_len);
        rm_trust_bundle_t *b = NULL;
        rm_spiffe_id_t id;
        rm_svid_expect_t expect = {.trust_domain = cc->cfg->trust_domain};
        if (ret == 0 && (ret = rm_trust_bundle_load_pem(&b, cc->bundle_pem, cc->bundle_len)) == 0)
            ret = rm_svid_verify_pem(b, cc->cert_pem, cc->cert_len, now, &expect, &id);
        rm_trust_bundle_free(b);
        if (ret == 0 && (ret = rebuild_tls(cc, NULL, 0, err, sizeof(err))) == 0) {
            char *meta = NULL;
            size_t meta_len;
            long long nb = 0, ia = 0, na = 0;
            /* the validity window, saved beside the SVID; without it, renew soon */
            state_path(cc, "svid.validity", path, sizeof(path));
            if (read_file(path, &meta, &meta_len) == 0 && sscanf(meta, "%lld %lld %lld", &nb, &ia, &na) == 3 &&
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
            schedule_renewal(cc);
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
        if (read_file(path, &data, &len) != 0)
            continue;
        if ((res = ringmesh__v1__resource__unpack(NULL, len, (const uint8_t *)data)) != NULL &&
            apply_resource(cc, t, res, err, sizeof(err)) == 0) {
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

/* ------------------------------------------------------------------ gRPC plumbing */

/* A TLS client context for the control plane: ALPN h2, the bootstrap roots plus the bundle held (a rotated root
 * appears there first), and the SVID when `with_svid` and one is held. */
static int make_control_ctx(rm_control_client_t *cc, int with_svid, rm_tls_ctx_t **out, char *err, size_t errlen)
{
    char *boot = NULL, *roots;
    size_t boot_len = 0, roots_len;
    int ret;

    if ((ret = read_file(cc->ccfg->bootstrap_bundle_file, &boot, &boot_len)) != 0 && cc->bundle_pem == NULL) {
        snprintf(err, errlen, "cannot read the bootstrap bundle %s: %s", cc->ccfg->bootstrap_bundle_file,
                 rm_strerror(ret));
        return ret;
    }
    roots_len = boot_len + cc->bundle_len + 1;
    if ((roots = malloc(roots_len + 1)) == NULL) {
        free(boot);
        return -ENOMEM;
    }
    snprintf(roots, roots_len + 1, "%s\n%s", boot != NULL ? boot : "", cc->bundle_pem != NULL ? cc->bundle_pem : "");
    free(boot);
    rm_tls_ctx_config_t tc = {.cert_pem = with_svid ? cc->cert_pem : NULL,
                              .cert_len = with_svid ? cc->cert_len : 0,
                              .key_pem = with_svid ? cc->key_pem : NULL,
                              .key_len = with_svid ? cc->key_len : 0,
                              .bundle_pem = roots,
                              .bundle_len = strlen(roots),
                              .trust_domain = cc->cfg->trust_domain,
                              .alpn = "h2"};
    ret = rm_tls_ctx_new(out, RM_TLS_CLIENT, &tc, err, errlen);
    free(roots);
    return ret;
}

/* ------------------------------------------------------------------ Identity.Sign */

static int read_token(rm_control_client_t *cc, char **tok, size_t *len)
{
    int ret = read_file(cc->ccfg->token_file, tok, len);
    if (ret != 0)
        return ret;
    while (*len > 0 && ((*tok)[*len - 1] == '\n' || (*tok)[*len - 1] == '\r' || (*tok)[*len - 1] == ' '))
        (*tok)[--*len] = '\0';
    return 0;
}

/* One Sign call: new key, CSR, credential. Blocking (bounded by SIGN_DEADLINE_MS). Returns 0 or an error, with the
 * reason in err. */
static int sign_once(rm_control_client_t *cc, char *err, size_t errlen)
{
    Ringmesh__V1__SignRequest req = RINGMESH__V1__SIGN_REQUEST__INIT;
    Ringmesh__V1__SignResponse *resp = NULL;
    char *key = NULL, *csr = NULL, *token = NULL;
    uint8_t *spki = NULL, *packed = NULL, *rdata = NULL;
    size_t key_len = 0, spki_len, csr_len, tok_len = 0, plen, rlen;
    rm_tls_ctx_t *ctx = NULL;
    int status = 0, reused;
    char why[400];
    int ret;

    if ((ret = read_token(cc, &token, &tok_len)) != 0) {
        snprintf(err, errlen, "cannot read the token file %s: %s", cc->ccfg->token_file, rm_strerror(ret));
        goto Exit;
    }
    if ((ret = rm_x509_generate_key(&key, &key_len, &spki, &spki_len)) != 0 ||
        (ret = rm_csr_make(key, key_len, NULL, &csr, &csr_len)) != 0) {
        snprintf(err, errlen, "cannot make a key and CSR: %s", rm_strerror(ret));
        goto Exit;
    }
    req.csr_pem = csr;
    req.credential = token;
    req.requested_ttl_seconds = cc->ccfg->svid_ttl_s;
    plen = ringmesh__v1__sign_request__get_packed_size(&req);
    if ((packed = malloc(plen)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    ringmesh__v1__sign_request__pack(&req, packed);

    reused = cc->conn != NULL && cc->stream_up;
    if (reused) {
        /* a renewal: over the discovery stream's connection, already authenticated both ways (no new handshake) */
        ret = rm_h2_unary_on(cc->conn, METHOD_SIGN, packed, plen, SIGN_DEADLINE_MS, &rdata, &rlen, &status, why,
                             sizeof(why));
    } else {
        /* the first SVID (or with the control plane away): a new connection, TLS without a client certificate; the
         * credential is the token, and an expired SVID must not stop a proxy from getting a new one */
        if ((ret = make_control_ctx(cc, 0, &ctx, why, sizeof(why))) != 0) {
            snprintf(err, errlen, "%s", why);
            goto Exit;
        }
        ret = rm_h2_unary(cc->ccfg->address, cc->ccfg->server_name, ctx, cc->control_id, METHOD_SIGN, packed, plen,
                          SIGN_DEADLINE_MS, &rdata, &rlen, &status, why, sizeof(why));
    }
    if (ret != 0) {
        snprintf(err, errlen, "Identity.Sign: %s", why);
        goto Exit;
    }
    if (status != 0) {
        snprintf(err, errlen, "Identity.Sign failed: grpc-status %d: %s", status, why);
        ret = status == 16 ? RM_ERR_AUTH_REVIEW : -ECONNREFUSED;
        goto Exit;
    }
    if ((resp = ringmesh__v1__sign_response__unpack(NULL, rlen, rdata)) == NULL) {
        snprintf(err, errlen, "SignResponse does not decode");
        ret = -EPROTO;
        goto Exit;
    }

    /* Take it only if it is a valid SVID of our trust domain for the key we just made. */
    {
        char *old_cert = cc->cert_pem, *old_key = cc->key_pem, *old_bundle = cc->bundle_pem;
        size_t old_cert_len = cc->cert_len, old_key_len = cc->key_len, old_bundle_len = cc->bundle_len;
        char reason[256];
        cc->cert_pem = strdup(resp->cert_chain_pem);
        cc->cert_len = strlen(resp->cert_chain_pem);
        cc->key_pem = key;
        cc->key_len = key_len;
        cc->bundle_pem = strdup(resp->trust_bundle_pem);
        cc->bundle_len = strlen(resp->trust_bundle_pem);
        if (cc->cert_pem == NULL || cc->bundle_pem == NULL ||
            (ret = rebuild_tls(cc, NULL, 0, reason, sizeof(reason))) != 0) {
            free(cc->cert_pem);
            free(cc->bundle_pem);
            cc->cert_pem = old_cert;
            cc->cert_len = old_cert_len;
            cc->key_pem = old_key;
            cc->key_len = old_key_len;
            cc->bundle_pem = old_bundle;
            cc->bundle_len = old_bundle_len;
            snprintf(err, errlen, "the control plane's SVID was refused: %s", reason);
            ret = ret != 0 ? ret : -ENOMEM;
            goto Exit; /* key is freed below: it was never taken */
        }
        key = NULL; /* now held by cc */
        rm_file_free(old_key, old_key_len, RM_FILE_SECRET);
        free(old_cert);
        free(old_bundle);
    }
    cc->not_before = resp->not_before;
    cc->not_after = resp->not_after;
    cc->issued_at = (int64_t)time(NULL);
    if (cc->issued_at < cc->not_before || cc->issued_at >= cc->not_after)
        cc->issued_at = cc->not_before; /* clocks apart: fall back to the certificate's own window */
    atomic_store(&cc->proxy->control.svid_not_after, cc->not_after);
    atomic_fetch_add(&cc->proxy->control.svid_renewals, 1);
    atomic_store(&cc->proxy->control.svid_expiring, 0);
    save_state(cc, "svid-key.pem", cc->key_pem, cc->key_len, 1);
    save_state(cc, "svid.pem", cc->cert_pem, cc->cert_len, 0);
    save_state(cc, "bundle.pem", cc->bundle_pem, cc->bundle_len, 0);
    {
        char meta[64];
        int n = snprintf(meta, sizeof(meta), "%lld %lld %lld\n", (long long)cc->not_before, (long long)cc->issued_at,
                         (long long)cc->not_after);
        save_state(cc, "svid.validity", meta, (size_t)n, 0);
    }
    {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "svid_issued");
        rm_log_str(&l, "spiffe_id", resp->spiffe_id);
        rm_log_int(&l, "not_before", cc->not_before);
        rm_log_int(&l, "not_after", cc->not_after);
        rm_log_str(&l, "connection", reused ? "discovery" : "new");
        rm_log_end(&l);
    }
    ret = 0;

Exit:
    if (resp != NULL)
        ringmesh__v1__sign_response__free_unpacked(resp, NULL);
    free(rdata);
    rm_tls_ctx_unref(ctx);
    free(packed);
    free(csr);
    free(spki);
    rm_file_free(key, key_len, RM_FILE_SECRET);
    if (token != NULL)
        rm_file_free(token, tok_len, RM_FILE_SECRET);
    return ret;
}

static void renew(rm_control_client_t *cc)
{
    char err[512];
    int ret = sign_once(cc, err, sizeof(err));

    if (ret == 0) {
        cc->sign_failures = 0;
        cc->expired_published = 0;
        schedule_renewal(cc);
        publish(cc);
        return;
    }
    atomic_fetch_add(&cc->proxy->control.svid_failures, 1);
    cc->sign_failures++;
    cc->renew_at_ms = now_ms() + backoff_ms(cc->sign_failures);
    if (cc->sign_failures == 1 || (cc->sign_failures & (cc->sign_failures - 1)) == 0) {
        /* logged on the 1st, 2nd, 4th, 8th... failure: an outage is visible without flooding the log */
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "svid_request_failed");
        rm_log_str(&l, "control_plane", cc->ccfg->address);
        rm_log_str(&l, "reason", err);
        rm_log_uint(&l, "failures", cc->sign_failures);
        rm_log_uint(&l, "retry_in_ms", cc->renew_at_ms - now_ms());
        rm_log_end(&l);
    }
}

/* Warns near expiry; after expiry stops presenting the SVID. */
static void check_expiry(rm_control_client_t *cc)
{
    int64_t now = (int64_t)time(NULL), life = cc->not_after - cc->issued_at;

    if (cc->client_ctx == NULL)
        return;
    if (now >= cc->not_after) {
        rm_tls_ctx_unref(cc->client_ctx);
        rm_tls_ctx_unref(cc->server_ctx);
        cc->client_ctx = cc->server_ctx = NULL;
        cc->expired_published = 1;
        atomic_store(&cc->proxy->ready, 0);
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_ERROR, "svid_expired");
        rm_log_int(&l, "not_after", cc->not_after);
        rm_log_str(&l, "msg",
                   "the SVID has expired and the control plane could not renew it: mTLS connections are "
                   "refused until a new SVID arrives");
        rm_log_end(&l);
        publish(cc);
        return;
    }
    if (!cc->expiring_logged && now >= cc->not_after - (int64_t)((double)life * RM_SVID_EXPIRY_WARN_FRACTION)) {
        cc->expiring_logged = 1;
        atomic_store(&cc->proxy->control.svid_expiring, 1);
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "svid_expiring");
        rm_log_int(&l, "not_after", cc->not_after);
        rm_log_int(&l, "seconds_left", cc->not_after - now);
        rm_log_uint(&l, "renewal_failures", cc->sign_failures);
        rm_log_end(&l);
    }
}

/* ------------------------------------------------------------------ Discovery.Stream */

#define NODE_LABELS_MAX 64

typedef struct st_node_labels_t {
    Ringmesh__V1__Node__LabelsEntry entries[NODE_LABELS_MAX];
    Ringmesh__V1__Node__LabelsEntry *ptrs[NODE_LABELS_MAX];
    size_t n;
    char store[16384];
    size_t used;
} node_labels_t;

static void add_label(node_labels_t *nl, const char *k, size_t klen, const char *v, size_t vlen)
{
    if (nl->n == NODE_LABELS_MAX || klen == 0 || nl->used + klen + vlen + 2 > sizeof(nl->store))
        return;
    for (size_t i = 0; i < nl->n; i++)
        if (strlen(nl->entries[i].key) == klen && memcmp(nl->entries[i].key, k, klen) == 0)
            return; /* the configuration's value wins over the file's */
    char *ks = nl->store + nl->used;
    memcpy(ks, k, klen);
    ks[klen] = '\0';
    char *vs = ks + klen + 1;
    memcpy(vs, v, vlen);
    vs[vlen] = '\0';
    nl->used += klen + vlen + 2;
    ringmesh__v1__node__labels_entry__init(&nl->entries[nl->n]);
    nl->entries[nl->n].key = ks;
    nl->entries[nl->n].value = vs;
    nl->ptrs[nl->n] = &nl->entries[nl->n];
    nl->n++;
}

/* The workload's labels (they select its policies): control.node.labels, then the downward-API file, whose lines
 * are key="value" with Go string escapes (labels have none that matter: their values are [A-Za-z0-9._-]). */
static void collect_labels(rm_control_client_t *cc, node_labels_t *nl)
{
    nl->n = nl->used = 0;
    for (size_t i = 0; i < cc->ccfg->num_node_labels; i++) {
        const char *l = cc->ccfg->node_labels[i];
        size_t key_len;
        if (rm_config_parse_label(l, &key_len) == 0) /* checked when the configuration was loaded */
            add_label(nl, l, key_len, l + key_len + 1, strlen(l + key_len + 1));
    }
    if (cc->ccfg->node_labels_file == NULL)
        return;
    char *data = NULL;
    size_t len = 0;
    if (read_file(cc->ccfg->node_labels_file, &data, &len) != 0) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "labels_file_unreadable");
        rm_log_str(&l, "file", cc->ccfg->node_labels_file);
        rm_log_end(&l);
        return;
    }
    for (char *line = strtok(data, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char *eq = strchr(line, '=');
        if (eq == NULL)
            continue;
        char *v = eq + 1;
        size_t vlen = strlen(v);
        if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"')
            v++, vlen -= 2;
        add_label(nl, line, (size_t)(eq - line), v, vlen);
    }
    free(data);
}

static void enqueue_request(rm_control_client_t *cc, int type, const char *version, const char *nonce,
                            const char *nack_reason, int with_node)
{
    static node_labels_t labels; /* the control thread's: only it sends requests */
    Ringmesh__V1__DiscoveryRequest req = RINGMESH__V1__DISCOVERY_REQUEST__INIT;
    Ringmesh__V1__Node node = RINGMESH__V1__NODE__INIT;
    Ringmesh__V1__ErrorDetail ed = RINGMESH__V1__ERROR_DETAIL__INIT;
    uint8_t *buf;
    size_t len;

    if (with_node) {
        node.id = cc->node_id;
        node.namespace_ = cc->node_ns;
        node.service_account = cc->node_sa;
        node.proxy_version = "ringmesh-proxy/0.1.0";
        collect_labels(cc, &labels);
        node.n_labels = labels.n;
        node.labels = labels.ptrs;
        req.node = &node;
    }
    req.type_url = (char *)rm_xds_type_url(type);
    req.version_info = (char *)version;
    req.response_nonce = (char *)nonce;
    if (nack_reason != NULL) {
        ed.code = 3; /* INVALID_ARGUMENT */
        ed.message = (char *)nack_reason;
        req.error_detail = &ed;
    }
    if (cc->call == NULL)
        return;
    len = ringmesh__v1__discovery_request__get_packed_size(&req);
    if ((buf = malloc(len == 0 ? 1 : len)) == NULL)
        return;
    ringmesh__v1__discovery_request__pack(&req, buf);
    rm_h2_call_send(cc->call, buf, len);
    free(buf);
}

static void handle_response(rm_control_client_t *cc, const Ringmesh__V1__DiscoveryResponse *resp)
{
    int type = rm_xds_type_from_url(resp->type_url);
    const char *nonce = resp->nonce != NULL ? resp->nonce : "";
    char err[512] = "";
    int ret = -EINVAL;

    if (type < 0) {
        snprintf(err, sizeof(err), "unknown resource type \"%.200s\"", resp->type_url != NULL ? resp->type_url : "");
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "config_rejected");
        rm_log_str(&l, "reason", err);
        rm_log_end(&l);
        return;
    }
    if (resp->n_resources != 1)
        snprintf(err, sizeof(err), "%s push holds %zu resources, exactly 1 expected", rm_xds_type_name(type),
                 resp->n_resources);
    else
        ret = apply_resource(cc, type, resp->resources[0], err, sizeof(err));
    if (ret == 0) {
        snprintf(cc->versions[type], sizeof(cc->versions[type]), "%s",
                 resp->version_info != NULL ? resp->version_info : "");
        save_resource(cc, type, resp->resources[0]);
        atomic_fetch_add(&cc->proxy->control.accepted[type], 1);
        publish(cc);
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "config_accepted");
        rm_log_str(&l, "type", rm_xds_type_name(type));
        rm_log_str(&l, "version", cc->versions[type]);
        rm_log_end(&l);
        enqueue_request(cc, type, cc->versions[type], nonce, NULL, 0);
    } else {
        atomic_fetch_add(&cc->proxy->control.rejected[type], 1);
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "config_rejected");
        rm_log_str(&l, "type", rm_xds_type_name(type));
        rm_log_str(&l, "rejected_version", resp->version_info);
        rm_log_str(&l, "kept_version", cc->versions[type]);
        rm_log_str(&l, "reason", err);
        rm_log_end(&l);
        enqueue_request(cc, type, cc->versions[type], nonce, err, 0);
    }
}

/* The control plane accepted the stream (it may have nothing to push: the versions we run may be current). */
static void on_stream_accepted(void *arg, rm_h2_call_t *call)
{
    rm_control_client_t *cc = arg;

    (void)call;
    if (!cc->received_any) {
        cc->received_any = 1;
        cc->stream_up = 1;
        cc->stream_up_since_ms = now_ms();
        atomic_store(&cc->proxy->control.connected, 1);
        if (cc->outage_logged) {
            cc->outage_logged = 0;
            rm_log_line_t l;
            rm_log_begin(&l, RM_LOG_INFO, "control_plane_reconnected");
            rm_log_str(&l, "control_plane", cc->ccfg->address);
            rm_log_end(&l);
        }
    }
}

static void on_stream_message(void *arg, rm_h2_call_t *call, const uint8_t *msg, size_t len)
{
    rm_control_client_t *cc = arg;
    Ringmesh__V1__DiscoveryResponse *resp;

    on_stream_accepted(arg, call);
    if ((resp = ringmesh__v1__discovery_response__unpack(NULL, len, msg)) == NULL) {
        rm_log_msg(RM_LOG_WARN, "config_rejected", "a push does not decode as ringmesh.v1.DiscoveryResponse");
        return;
    }
    handle_response(cc, resp);
    ringmesh__v1__discovery_response__free_unpacked(resp, NULL);
}

static void on_stream_close(void *arg, rm_h2_call_t *call, int status, const char *message)
{
    rm_control_client_t *cc = arg;

    (void)call;
    cc->call = NULL;
    cc->stream_ended = 1;
    cc->end_status = status;
    snprintf(cc->end_message, sizeof(cc->end_message), "%s", message != NULL ? message : "");
}

/* The stream has ended (or could not start): log once per outage, schedule the reconnection. */
static void stream_closed(rm_control_client_t *cc, int status, const char *details)
{
    int was_up = cc->stream_up;

    /* Back off from the minimum again only after a stream that stayed up for a while: a control plane that accepts
     * and then drops every stream must not be hammered. */
    if (cc->received_any && now_ms() - cc->stream_up_since_ms >= 10000)
        cc->stream_failures = 0;
    else
        cc->stream_failures++;
    cc->reconnect_at_ms = now_ms() + backoff_ms(cc->stream_failures == 0 ? 1 : cc->stream_failures);
    if (!cc->outage_logged && !atomic_load(&cc->stop)) {
        /* once per outage, however long it lasts */
        cc->outage_logged = 1;
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "control_plane_unreachable");
        rm_log_str(&l, "control_plane", cc->ccfg->address);
        rm_log_int(&l, "grpc_status", status);
        rm_log_str(&l, "details", details);
        rm_log_bool(&l, "was_connected", was_up);
        rm_log_str(&l, "msg", "serving with the last good SVID and configuration; retrying with backoff");
        rm_log_end(&l);
    }
    cc->stream_up = 0;
    cc->received_any = 0;
    cc->stream_ended = 0;
    atomic_store(&cc->proxy->control.connected, 0);
    /* a new connection next time: it presents a rotated SVID and trusts the current bundle */
    rm_h2_close(cc->conn);
    cc->conn = NULL;
    cc->call = NULL;
}

static void stream_open(rm_control_client_t *cc)
{
    static const rm_h2_call_cbs_t cbs = {on_stream_accepted, on_stream_message, on_stream_close};
    rm_tls_ctx_t *ctx = NULL;
    char err[512];
    int ret;

    if ((ret = make_control_ctx(cc, 1, &ctx, err, sizeof(err))) != 0 ||
        (ret = rm_h2_connect(cc->ccfg->address, cc->ccfg->server_name, ctx, cc->control_id, 10000, &cc->conn, err,
                             sizeof(err))) != 0 ||
        (ret = rm_h2_call_start(cc->conn, METHOD_STREAM, &cbs, cc, &cc->call)) != 0) {
        rm_tls_ctx_unref(ctx);
        if (ret != 0 && err[0] == '\0')
            snprintf(err, sizeof(err), "%s", rm_strerror(ret));
        stream_closed(cc, RM_GRPC_UNAVAILABLE, err);
        return;
    }
    rm_tls_ctx_unref(ctx); /* the connection's session holds its own reference */
    /* Subscribe to every type, saying which version we run (restored or from the previous stream), so that a
     * control plane already at that version has nothing to push. */
    for (int t = 0; t < RM_XDS_NUM_TYPES; t++)
        enqueue_request(cc, t, cc->versions[t], "", NULL, t == 0);
}

static void *control_thread(void *arg)
{
    rm_control_client_t *cc = arg;
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    while (!atomic_load(&cc->stop)) {
        uint64_t now = now_ms(), wake = now + 250; /* the stop flag is looked at 4 times a second */
        if (cc->cert_pem == NULL || now >= cc->renew_at_ms) {
            if (now >= cc->renew_at_ms)
                renew(cc);
            now = now_ms();
        }
        check_expiry(cc);
        if (cc->conn == NULL && cc->cert_pem != NULL && now >= cc->reconnect_at_ms)
            stream_open(cc);
        if (cc->renew_at_ms < wake)
            wake = cc->renew_at_ms > now ? cc->renew_at_ms : now;
        if (cc->conn == NULL && cc->reconnect_at_ms < wake)
            wake = cc->reconnect_at_ms > now ? cc->reconnect_at_ms : now;
        int wait = wake > now ? (int)(wake - now) : 0;
        if (cc->conn != NULL) {
            if (rm_h2_poll(cc->conn, wait) != 0 && !cc->stream_ended) {
                cc->stream_ended = 1;
                cc->end_status = RM_GRPC_UNAVAILABLE;
                snprintf(cc->end_message, sizeof(cc->end_message), "%s", rm_h2_error(cc->conn));
            }
            if (cc->stream_ended)
                stream_closed(cc, cc->end_status, cc->end_message);
        } else if (wait > 0) {
            poll(NULL, 0, wait);
        }
    }
    if (cc->conn != NULL) {
        rm_h2_close(cc->conn);
        cc->conn = NULL;
    }
    rm_buf_trim(); /* this thread's idle TLS buffers */
    return NULL;
}

static void copy_node_field(char *dst, size_t size, const char *cfg_value, const char *env, const char *fallback)
{
    const char *v = cfg_value != NULL ? cfg_value : getenv(env);
    snprintf(dst, size, "%s", v != NULL && v[0] != '\0' ? v : fallback);
}

int rm_control_client_start(rm_proxy_t *p, rm_control_client_t **out)
{
    rm_control_client_t *cc;
    const rm_proxy_config_t *cfg = p->base_snap->cfg;
    char host[256] = "";
    int ret;

    if (cfg->control == NULL)
        return -EINVAL;
    if ((cc = calloc(1, sizeof(*cc))) == NULL)
        return -ENOMEM;
    cc->proxy = p;
    cc->cfg = cfg;
    cc->ccfg = cfg->control;
    cc->access_log = cfg->access_log;
    gethostname(host, sizeof(host) - 1);
    copy_node_field(cc->node_id, sizeof(cc->node_id), cc->ccfg->node_id, "RINGMESH_POD_NAME", host);
    copy_node_field(cc->node_ns, sizeof(cc->node_ns), cc->ccfg->node_namespace, "RINGMESH_POD_NAMESPACE", "");
    copy_node_field(cc->node_sa, sizeof(cc->node_sa), cc->ccfg->node_service_account, "RINGMESH_SERVICE_ACCOUNT", "");
    atomic_store(&p->control.enabled, 1);
    if (mkdir(cc->ccfg->state_dir, 0700) != 0 && errno != EEXIST) {
        ret = -errno;
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_ERROR, "state_dir_invalid");
        rm_log_str(&l, "state_dir", cc->ccfg->state_dir);
        rm_log_err(&l, "error", ret);
        rm_log_end(&l);
        free(cc);
        return ret;
    }
    if (cc->ccfg->identity != NULL)
        snprintf(cc->control_id, sizeof(cc->control_id), "%s", cc->ccfg->identity);
    else
        snprintf(cc->control_id, sizeof(cc->control_id), "spiffe://%s/ns/ringmesh-system/sa/ringmesh-control",
                 cfg->trust_domain);
    restore_state(cc);
    if (cc->client_ctx != NULL || cc->dests != NULL || cc->have_mesh)
        publish(cc);
    if ((ret = pthread_create(&cc->thread, NULL, control_thread, cc)) != 0) {
        free(cc);
        return -ret;
    }
    {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "control_client_started");
        rm_log_str(&l, "control_plane", cc->ccfg->address);
        rm_log_str(&l, "server_name", cc->ccfg->server_name);
        rm_log_str(&l, "control_plane_id", cc->control_id);
        rm_log_str(&l, "node", cc->node_id);
        rm_log_str(&l, "namespace", cc->node_ns);
        rm_log_str(&l, "service_account", cc->node_sa);
        rm_log_str(&l, "state_dir", cc->ccfg->state_dir);
        rm_log_bool(&l, "svid_restored", cc->client_ctx != NULL);
        rm_log_end(&l);
    }
    *out = cc;
    return 0;
}

void rm_control_client_stop(rm_control_client_t *cc)
{
    if (cc == NULL)
        return;
    atomic_store(&cc->stop, 1);
    pthread_join(cc->thread, NULL);
    rm_tls_ctx_unref(cc->client_ctx);
    rm_tls_ctx_unref(cc->server_ctx);
    rm_dest_table_unref(cc->dests);
    rm_authz_unref(cc->authz);
    rm_file_free(cc->key_pem, cc->key_len, RM_FILE_SECRET);
    free(cc->cert_pem);
    free(cc->bundle_pem);
    free(cc);
}
