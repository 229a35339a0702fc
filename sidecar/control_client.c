/* The proxy's control-plane client: its state, its thread and its lifetime, the snapshots it publishes to the
 * workers and the TLS contexts it makes (control_client_internal.h lists the other parts). */
#include "control_client_internal.h"

#include <errno.h>
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

#include "ringmesh/buffer_pool.h"
#include "ringmesh/config.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000

/* ------------------------------------------------------------------ small helpers */

uint64_t rm__control_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint32_t rm__control_rand32(void)
{
    uint32_t v = 0;
    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
        v = (uint32_t)rm__control_now_ms() * 2654435761u;
    return v;
}

/* Capped exponential backoff with full jitter in [d/2, d]. */
uint64_t rm__control_backoff_ms(unsigned failures)
{
    uint64_t d = BACKOFF_MIN_MS;
    for (unsigned i = 1; i < failures && d < BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > BACKOFF_MAX_MS)
        d = BACKOFF_MAX_MS;
    return d / 2 + rm__control_rand32() % (d / 2 + 1);
}

/* ------------------------------------------------------------------ snapshots */

void rm__control_publish(rm_control_client_t *cc)
{
    rm_snapshot_params_t params = {
        .dests = cc->dests,
        .have_inbound_mode = cc->have_inbound_mode,
        .inbound_mode = cc->inbound_mode,
        .connect_timeout_ms = cc->connect_timeout_ms,
        .idle_timeout_ms = cc->idle_timeout_ms,
        .access_log = cc->have_mesh ? cc->access_log : -1,
        .access_log_sample = cc->access_log_sample,
        .workloads = cc->workloads,
        .metrics_istio_names = cc->have_mesh ? cc->metrics_istio_names : 0,
        .metrics_max_series = cc->metrics_max_series,
        .metrics_expiry_ms = cc->metrics_expiry_ms,
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
    for (int t = 0; t < RM_XDS_NUM_TYPES; t++) /* the workloads only name peers in logs and metrics: not awaited */
        ready &= t == RM_XDS_WORKLOADS || cc->versions[t][0] != '\0';
    if (ready && !atomic_exchange(&cc->proxy->ready, 1))
        rm_log_msg(RM_LOG_INFO, "proxy_ready", "SVID and configuration in place");
}

/* Builds TLS contexts from the SVID held and `bundle` (NULL: the one held). Returns 0 or an error with the reason in
 * err; nothing changes on failure. */
int rm__control_rebuild_tls(rm_control_client_t *cc, const char *bundle, size_t bundle_len, char *err, size_t errlen)
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

/* ------------------------------------------------------------------ gRPC plumbing */

/* A TLS client context for the control plane: ALPN h2, the bootstrap roots plus the bundle held (a rotated root
 * appears there first), and the SVID when `with_svid` and one is held. */
int rm__control_make_ctx(rm_control_client_t *cc, int with_svid, rm_tls_ctx_t **out, char *err, size_t errlen)
{
    char *boot = NULL, *roots;
    size_t boot_len = 0, roots_len;
    int ret;

    if ((ret = rm__control_read_file(cc->ccfg->bootstrap_bundle_file, &boot, &boot_len)) != 0 &&
        cc->bundle_pem == NULL) {
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

/* ------------------------------------------------------------------ the control thread */

static void *control_thread(void *arg)
{
    rm_control_client_t *cc = arg;
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    while (!atomic_load(&cc->stop)) {
        uint64_t now = rm__control_now_ms(), wake = now + 250; /* the stop flag is looked at 4 times a second */
        if (cc->cert_pem == NULL || now >= cc->renew_at_ms) {
            if (now >= cc->renew_at_ms)
                rm__control_renew(cc);
            now = rm__control_now_ms();
        }
        rm__control_check_expiry(cc);
        if (cc->conn == NULL && cc->cert_pem != NULL && now >= cc->reconnect_at_ms)
            rm__control_stream_open(cc);
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
                rm__control_stream_closed(cc, cc->end_status, cc->end_message);
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
    rm__control_restore_state(cc);
    if (cc->client_ctx != NULL || cc->dests != NULL || cc->have_mesh)
        rm__control_publish(cc);
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
    rm_workload_table_unref(cc->workloads);
    rm_file_free(cc->key_pem, cc->key_len, RM_FILE_SECRET);
    free(cc->cert_pem);
    free(cc->bundle_pem);
    free(cc);
}
