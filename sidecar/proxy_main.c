/* ringmesh-proxy: load the configuration and the SVID, start the workers, drain on SIGTERM. */
#include "app_health.h"
#include "control_client.h"
#include "proxy.h"
#include "trace_export.h"
#include "workload_meta.h"
#include "file_sources.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: ringmesh-proxy (--config FILE | --config-env NAME) [--check]\n"
               "\n"
               "  -c, --config FILE      YAML configuration (see docs/proxy-config.md)\n"
               "      --config-env NAME  the same YAML, from environment variable NAME (in a pod)\n"
               "      --check            validate the configuration and the SVID, then exit\n"
               "  -h, --help             this text\n"
               "\n"
               "environment: RINGMESH_IO_BACKEND=auto|io_uring|epoll, RINGMESH_WORKERS=N, RINGMESH_LOG_LEVEL=LEVEL\n");
}

static void log_fatal(const char *event, const char *msg, const char *file, int err)
{
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_ERROR, event);
    if (file != NULL)
        rm_log_str(&l, "file", file);
    rm_log_str(&l, "msg", msg);
    if (err != 0)
        rm_log_err(&l, "error", err);
    rm_log_end(&l);
}

static int needs_tls(const rm_proxy_config_t *cfg)
{
    if (cfg->num_destinations > 0 || cfg->num_listeners > 0)
        return 1;
    if (cfg->inbound_enabled && (cfg->inbound_mode != RM_MTLS_DISABLE || cfg->num_port_modes > 0))
        return 1;
    return 0;
}

/* Loads the SVID, key and bundle into TLS contexts (file_sources.c, which also reloads them when they change). */
static int load_tls(rm_snapshot_t *snap)
{
    rm_proxy_config_t *cfg = snap->cfg;
    const char *file = NULL;
    char err[512];
    int ret;

    if (cfg->control != NULL)
        return 0; /* the SVID comes from the control plane (control_client.c) */
    if (cfg->cert_file == NULL || cfg->key_file == NULL || cfg->bundle_file == NULL) {
        if (!needs_tls(cfg))
            return 0;
        log_fatal("config_invalid", "tls.certFile, tls.keyFile and tls.bundleFile are required for mTLS", cfg->path,
                  RM_ERR_CONFIG_VALUE);
        return RM_ERR_CONFIG_VALUE;
    }
    if ((ret = rm_svid_files_load(cfg, &snap->client_ctx, &snap->server_ctx, err, sizeof(err), &file)) != 0)
        log_fatal("svid_load_failed", err, file, ret);
    return ret;
}

/* The trace exporter's service name when OTEL_SERVICE_NAME gives none: this proxy's workload, as of the snapshot in
 * force (copied: the snapshot may go once released). Called on the exporter thread only. */
static const char *service_name_of_workload(void *ctx)
{
    static char name[256];
    rm_proxy_t *p = ctx;
    if (rm_snapshot_current(p) == NULL)
        return NULL;
    rm_snapshot_t *snap = rm_snapshot_acquire(p); /* as the admin server's thread does */
    snprintf(name, sizeof(name), "%s", rm_workload_self(snap)->name);
    rm_snapshot_unref(snap);
    return name;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"config-env", required_argument, NULL, 'E'},
                                         {"check", no_argument, NULL, 'C'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    const char *config_path = NULL, *config_env = NULL;
    int check_only = 0, c, ret;
    char err[1024];
    rm_proxy_config_t *cfg = NULL;
    rm_snapshot_t *snap = NULL;
    rm_proxy_t proxy;
    rm_control_client_t *control = NULL;
    rm_log_level_t level;
    sigset_t sigs;

    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'E':
            config_env = optarg;
            break;
        case 'C':
            check_only = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if ((config_path == NULL) == (config_env == NULL) || optind != argc) {
        usage(stderr);
        return 2;
    }
    (void)signal(SIGPIPE, SIG_IGN);

    /* the environment cannot change under a running process: a configuration from it is read once */
    if (config_env != NULL)
        ret = rm_proxy_config_load_env(config_env, &cfg, err, sizeof(err));
    else
        ret = rm_proxy_config_load(config_path, &cfg, err, sizeof(err));
    if (ret != 0 || (ret = rm_proxy_config_apply_env(cfg, err, sizeof(err))) != 0) {
        char shown[RM_PROXY_CONFIG_ENV_NAME_MAX + 2];
        if (config_env != NULL)
            snprintf(shown, sizeof(shown), "$%s", config_env);
        log_fatal("config_invalid", err, config_env != NULL ? shown : config_path, ret);
        rm_proxy_config_free(cfg);
        return 1;
    }
    if (rm_log_level_parse(cfg->log_level, &level) == 0)
        rm_log_configure(level, 1);
    if (rm_workload_meta_init(cfg) != 0) /* who this proxy is until a control plane says it */
        return 1;
    if (rm_tls_global_init() != 0) {
        log_fatal("tls_init_failed", "wolfSSL could not be initialised", NULL, RM_ERR_TLS_CONFIG);
        return 1;
    }
    if ((snap = calloc(1, sizeof(*snap))) == NULL)
        return 1;
    atomic_init(&snap->refs, 1);
    snap->cfg = cfg;
    rm_file_sources_t files;
    rm_file_sources_watch(&files, cfg); /* before the first read: a change made meanwhile is read again */
    if (load_tls(snap) != 0) {
        rm_snapshot_unref(snap);
        return 1;
    }
    if (cfg->authz_policy_dir != NULL) {
        if ((ret = rm_policy_files_load(cfg, &snap->authz, err, sizeof(err))) != 0) {
            log_fatal("config_invalid", err, cfg->authz_policy_dir, ret);
            rm_snapshot_unref(snap);
            return 1;
        }
        rm_policy_files_log("policies_loaded", cfg, snap->authz);
    }
    if (check_only) {
        const char *probers = getenv(RM_APP_HEALTH_ENV);
        if (probers != NULL && probers[0] != '\0') {
            rm_app_probes_t t = {0};
            if ((ret = rm_app_probes_parse(RM_APP_HEALTH_ENV, probers, &t, err, sizeof(err))) != 0) {
                log_fatal("config_invalid", err, NULL, ret);
                rm_snapshot_unref(snap);
                return 1;
            }
            rm_app_probes_dispose(&t);
        }
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "config_ok");
        rm_log_str(&l, "file", cfg->path);
        if (snap->client_ctx != NULL)
            rm_log_str(&l, "spiffe_id", rm_tls_ctx_id(snap->client_ctx)->str);
        rm_log_end(&l);
        rm_snapshot_unref(snap);
        return 0;
    }

    /* Signals are taken synchronously by this thread; workers block them all. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGQUIT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    memset(&proxy, 0, sizeof(proxy));
    atomic_store(&proxy.ready, cfg->control == NULL); /* with a control plane: once it has answered */
    /* the app's probes, before the admin port opens (their threads inherit the blocked signals) */
    if ((ret = rm_app_health_start(&proxy.app_health, err, sizeof(err))) != 0) {
        log_fatal("config_invalid", err, NULL, ret);
        rm_snapshot_unref(snap);
        return 1;
    }
    if (rm_proxy_pick_backend(&proxy, cfg->io_backend) != 0)
        return 1;
    uint64_t nofile = rm_proxy_raise_nofile(cfg->max_connections);
    /* tracing, when an OTLP endpoint is configured (OTEL_* variables): before the workers, which record spans */
    if ((ret = rm_trace_export_start(service_name_of_workload, &proxy)) != 0) {
        log_fatal("proxy_setup_failed", "the trace exporter could not be started", NULL, ret);
        return 1;
    }
    (void)rm_proxy_pick_kernel_tls(&proxy, cfg->kernel_tls);
    if ((ret = rm_proxy_setup(&proxy, snap)) != 0) {
        log_fatal("proxy_setup_failed", "listeners or event loops could not be created", NULL, ret);
        return 1;
    }
    if ((ret = rm_proxy_start(&proxy)) != 0) {
        log_fatal("proxy_setup_failed", "worker threads could not be started", NULL, ret);
        return 1;
    }
    if (cfg->control != NULL && (ret = rm_control_client_start(&proxy, &control)) != 0) {
        log_fatal("proxy_setup_failed", "the control-plane client could not be started", cfg->control->state_dir, ret);
        rm_proxy_stop(&proxy);
        rm_proxy_join(&proxy);
        return 1;
    }
    {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "proxy_started");
        rm_log_str(&l, "io_backend", rm_loop_backend_name(proxy.backend));
        rm_log_str(&l, "kernel_tls", atomic_load(&proxy.kernel_tls) ? "on" : cfg->kernel_tls ? "unavailable" : "off");
        rm_log_uint(&l, "workers", proxy.num_workers);
        rm_log_str(&l, "spiffe_id", snap->client_ctx != NULL ? rm_tls_ctx_id(snap->client_ctx)->str : NULL);
        if (cfg->outbound_enabled)
            rm_log_addr(&l, "outbound", (struct sockaddr *)&cfg->outbound_listen.ss);
        if (cfg->inbound_enabled)
            rm_log_addr(&l, "inbound", (struct sockaddr *)&cfg->inbound_listen.ss);
        rm_log_uint(&l, "listeners", cfg->num_listeners);
        rm_log_uint(&l, "destinations", cfg->num_destinations);
        rm_log_uint(&l, "pid", (uint64_t)getpid());
        rm_log_uint(&l, "nofile", nofile);
        rm_log_end(&l);
    }

    /* SIGTERM/SIGINT (or POST /drain): drain. SIGQUIT (or POST /quitquitquit), or a second SIGTERM: stop now. */
    for (;;) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000};
        int sig = sigtimedwait(&sigs, NULL, &ts);
        if (sig > 0) {
            if (sig != SIGQUIT && !atomic_load(&proxy.draining)) {
                rm_log_line_t l;
                rm_log_begin(&l, RM_LOG_INFO, "drain_started");
                rm_log_str(&l, "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
                rm_log_uint(&l, "timeout_ms", cfg->drain_timeout_ms);
                rm_log_uint(&l, "open_connections", rm_proxy_open_connections(&proxy));
                rm_log_end(&l);
                rm_proxy_drain(&proxy);
            } else {
                rm_log_line_t l;
                rm_log_begin(&l, RM_LOG_INFO, "stop_requested");
                rm_log_str(&l, "signal", sig == SIGQUIT ? "SIGQUIT" : "repeated");
                rm_log_uint(&l, "open_connections", rm_proxy_open_connections(&proxy));
                rm_log_end(&l);
                rm_proxy_stop(&proxy);
            }
        }
        if (atomic_load(&proxy.workers_running) == 0)
            break;
        if (!atomic_load(&proxy.draining))
            rm_file_sources_poll(&files, &proxy);
    }
    rm_control_client_stop(control);
    rm_proxy_join(&proxy);
    rm_trace_export_stop(); /* the workers are done: flush the spans they finished */
    rm_app_health_stop(proxy.app_health);
    {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "proxy_stopped");
        rm_log_uint(&l, "open_connections", rm_proxy_open_connections(&proxy));
        rm_log_end(&l);
    }
    return 0;
}
