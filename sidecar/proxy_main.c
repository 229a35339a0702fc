/* ringmesh-proxy: load the configuration and the SVID, start the workers, drain on SIGTERM. */
#include "control_client.h"
#include "proxy.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PEM_MAX (1 << 20)

static void usage(FILE *f)
{
    fprintf(f, "usage: ringmesh-proxy --config FILE [--check]\n"
               "\n"
               "  -c, --config FILE   YAML configuration (see docs/proxy-config.md)\n"
               "      --check         validate the configuration and the SVID, then exit\n"
               "  -h, --help          this text\n"
               "\n"
               "environment: RINGMESH_IO_BACKEND=auto|io_uring|epoll, RINGMESH_WORKERS=N, RINGMESH_LOG_LEVEL=LEVEL\n");
}

/* Reads a whole PEM file. Returns 0 or negative errno; the buffer is NUL-terminated. */
static int read_file(const char *path, char **out, size_t *len)
{
    int fd, ret = 0;
    struct stat st;
    char *buf = NULL;
    size_t got = 0;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -errno;
    if (fstat(fd, &st) != 0) {
        ret = -errno;
        goto Exit;
    }
    if (st.st_size <= 0 || st.st_size > PEM_MAX) {
        ret = -EFBIG;
        goto Exit;
    }
    if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            ret = r < 0 ? -errno : -EIO;
            goto Exit;
        }
        got += (size_t)r;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    buf = NULL;
Exit:
    free(buf);
    close(fd);
    return ret;
}

static void wipe_free(char *p, size_t len)
{
    if (p != NULL) {
        explicit_bzero(p, len);
        free(p);
    }
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

/* Loads the SVID, key and bundle into TLS contexts. Key material is wiped from memory as soon as wolfSSL has it. */
static int load_tls(rm_snapshot_t *snap)
{
    rm_proxy_config_t *cfg = snap->cfg;
    char *cert = NULL, *key = NULL, *bundle = NULL, err[512];
    size_t cert_len = 0, key_len = 0, bundle_len = 0;
    struct stat st;
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
    if ((ret = read_file(cfg->cert_file, &cert, &cert_len)) != 0) {
        log_fatal("svid_load_failed", "certificate file could not be read", cfg->cert_file, ret);
        goto Exit;
    }
    if (stat(cfg->key_file, &st) == 0 && (st.st_mode & 077) != 0) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "key_file_permissions");
        rm_log_str(&l, "file", cfg->key_file);
        rm_log_str(&l, "msg", "private key file is readable by group or others; it should be mode 0600");
        rm_log_end(&l);
    }
    if ((ret = read_file(cfg->key_file, &key, &key_len)) != 0) {
        log_fatal("svid_load_failed", "private key file could not be read", cfg->key_file, ret);
        goto Exit;
    }
    if ((ret = read_file(cfg->bundle_file, &bundle, &bundle_len)) != 0) {
        log_fatal("svid_load_failed", "trust bundle file could not be read", cfg->bundle_file, ret);
        goto Exit;
    }
    rm_tls_ctx_config_t tc = {.cert_pem = cert,
                              .cert_len = cert_len,
                              .key_pem = key,
                              .key_len = key_len,
                              .bundle_pem = bundle,
                              .bundle_len = bundle_len,
                              .trust_domain = cfg->trust_domain};
    if ((ret = rm_tls_ctx_new(&snap->client_ctx, RM_TLS_CLIENT, &tc, err, sizeof(err))) != 0 ||
        (ret = rm_tls_ctx_new(&snap->server_ctx, RM_TLS_SERVER, &tc, err, sizeof(err))) != 0) {
        log_fatal("svid_load_failed", err, cfg->cert_file, ret);
        goto Exit;
    }
Exit:
    wipe_free(key, key_len);
    free(cert);
    free(bundle);
    return ret;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check", no_argument, NULL, 'C'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    const char *config_path = NULL;
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
    if (config_path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    if ((ret = rm_proxy_config_load(config_path, &cfg, err, sizeof(err))) != 0 ||
        (ret = rm_proxy_config_apply_env(cfg, err, sizeof(err))) != 0) {
        log_fatal("config_invalid", err, config_path, ret);
        rm_proxy_config_free(cfg);
        return 1;
    }
    if (rm_log_level_parse(cfg->log_level, &level) == 0)
        rm_log_configure(level, 1);
    if (rm_tls_global_init() != 0) {
        log_fatal("tls_init_failed", "wolfSSL could not be initialised", NULL, RM_ERR_TLS_CONFIG);
        return 1;
    }
    if ((snap = calloc(1, sizeof(*snap))) == NULL)
        return 1;
    atomic_init(&snap->refs, 1);
    snap->cfg = cfg;
    if (load_tls(snap) != 0) {
        rm_snapshot_unref(snap);
        return 1;
    }
    if (cfg->authz_policy_dir != NULL) {
        char host[256] = "";
        gethostname(host, sizeof(host) - 1);
        if ((ret = rm_authz_from_path(cfg->authz_policy_dir, cfg->authz_default_allow, cfg->authz_log_allowed, host,
                                      &snap->authz, err, sizeof(err))) != 0) {
            log_fatal("config_invalid", err, cfg->authz_policy_dir, ret);
            rm_snapshot_unref(snap);
            return 1;
        }
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "policies_loaded");
        rm_log_str(&l, "path", cfg->authz_policy_dir);
        rm_log_uint(&l, "policies", snap->authz->set.num_policies);
        rm_log_uint(&l, "rules", rm_authz_engine_num_rules(snap->authz->engine));
        rm_log_str(&l, "default_action", cfg->authz_default_allow ? "ALLOW" : "DENY");
        rm_log_end(&l);
    }
    if (check_only) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "config_ok");
        rm_log_str(&l, "file", config_path);
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
    if ((ret = rm_proxy_pick_backend(&proxy, cfg->io_backend)) != 0)
        return 1;
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
    }
    rm_control_client_stop(control);
    rm_proxy_join(&proxy);
    {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "proxy_stopped");
        rm_log_uint(&l, "open_connections", rm_proxy_open_connections(&proxy));
        rm_log_end(&l);
    }
    return 0;
}
