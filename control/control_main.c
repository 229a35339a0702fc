/* ringmesh-control: the control plane's entry point. Flags configure the process; the mesh itself is
 * configured by its source (docs/control-config.md): the YAML directory given with --config-dir, or the Kubernetes
 * API (--source kubernetes). */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdarg.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "admin_http.h"
#include "attest.h"
#include "ca.h"
#include "control_metrics.h"
#include "jwks_fetch.h"
#include "grpc_server.h"
#include "inject_lookup.h"
#include "inject_webhook.h"
#include "kube_cluster.h"
#include "mesh_load.h"
#include "openssl_defaults.h"
#include "ringmesh/config.h"
#include "ringmesh/duration.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"
#include "ringmesh/x509_issue.h"
#include "source.h"

#define MAX_DNS_NAMES 16

static const char USAGE[] =
    "usage: ringmesh-control (--config-dir DIR | --source kubernetes) (--jwks FILE | --attestation token-review)\n"
    "                        [options]\n"
    "\n"
    "  --source KIND           where the mesh's configuration comes from: file (default, --config-dir) or\n"
    "                          kubernetes (the API: Services, EndpointSlices, Pods, policy resources)\n"
    "  --config-dir DIR        file source: YAML files (MeshConfig, Service, policies), reloaded on change\n"
    "  --kubeconfig FILE       kubernetes source outside a cluster (default: the in-cluster service account)\n"
    "  --mesh-config FILE      kubernetes source: the MeshConfig document (a mounted ConfigMap key), reloaded\n"
    "                          on change (default: the mesh's defaults)\n"
    "  --kube-timeout DUR      kubernetes source: bound on one API request (default 30s)\n"
    "  --listen ADDR           gRPC address (default [::]:15012)\n"
    "  --admin-listen ADDR     /metrics and /healthz (default [::]:15014; \"off\" for none)\n"
    "  --state-dir DIR         where a generated root CA is kept and the trust bundle is published\n"
    "                          (default /var/lib/ringmesh-control)\n"
    "  --ca-cert FILE          signing CA certificate (then the chain above it); default: generated root\n"
    "  --ca-key FILE           its private key\n"
    "  --extra-roots FILE      more roots to trust (a root being rotated out)\n"
    "  --max-svid-ttl DUR      longest SVID lifetime issued (default 24h)\n"
    "  --attestation KIND      jwt (default: tokens checked against --jwks) or token-review (the Kubernetes\n"
    "                          TokenReview API, with the control plane's in-cluster credentials)\n"
    "  --jwks FILE             keys that sign ServiceAccount tokens (JWT attestation)\n"
    "  --token-issuer ISS      required token issuer (default: any)\n"
    "  --token-audience AUD    required token audience (default ringmesh)\n"
    "  --kube-api URL          Kubernetes API for token-review (default https://$KUBERNETES_SERVICE_HOST:PORT)\n"
    "  --kube-ca-file FILE     its CA (default /var/run/secrets/kubernetes.io/serviceaccount/ca.crt)\n"
    "  --kube-token-file FILE  the control plane's own token (default .../serviceaccount/token)\n"
    "  --token-review-timeout DUR  bound on one review (default 5s)\n"
    "  --namespace NS          the control plane's own namespace (default ringmesh-system)\n"
    "  --dns-name NAME         a name sidecars dial, for the serving certificate (repeatable; default\n"
    "                          ringmesh-control, ringmesh-control.<ns>.svc, localhost)\n"
    "  --log-level LEVEL       debug, info, warn, error (default info)\n"
    "  --webhook-listen ADDR   serve the sidecar injector, HTTPS POST /inject (default off; the chart sets\n"
    "                          [::]:15017)\n"
    "  --injector-config FILE  the InjectorConfig document (default: the built-in defaults)\n"
    "  --webhook-config-name NAME  the MutatingWebhookConfiguration whose caBundle is kept\n"
    "                          (default ringmesh-sidecar-injector)\n"
    "  --namespace-labels-file FILE  file source: namespace -> labels (YAML), read at every review (the\n"
    "                          kubernetes source reads namespaces from the API and refuses this flag)\n"
    "  --kube-version X.Y      file source: the cluster's version for nativeSidecar auto (the kubernetes source\n"
    "                          reads the API server's /version and refuses this flag)\n"
    "  --ca-secret NAME        kubernetes source: the signing CA is kept in Secret NAME of --namespace (tls.crt,\n"
    "                          tls.key, ca.crt); when it does not exist, a root is generated and the Secret created\n"
    "  --webhook-cert FILE     serve this certificate (chain) on the webhook instead of one the CA issues, re-read\n"
    "  --webhook-key FILE      when the files change (cert-manager); the caBundle is then left alone\n"
    "  --cluster-resync DUR    kubernetes source: how often the root-cert ConfigMaps and the webhook caBundle are\n"
    "                          compared again without a change seen (default 30s)\n"
    "  --no-root-cert          kubernetes source: do not publish the ringmesh-root-cert ConfigMaps\n"
    "  --jwks-refresh DUR      how often the JWKS of a RequestAuthentication jwksUri is fetched again (default\n"
    "                          20m; a failed fetch is retried from 1s, doubling up to this)\n"
    "  --jwks-ca-file FILE     the CA bundle that https jwksUri servers are verified with (default: the system's)\n"
    "  --check-config          parse the flags and read every file they name (MeshConfig, InjectorConfig, CA,\n"
    "                          webhook pair, kubeconfig, JWKS), then exit 0 (valid) or 1, without listening or\n"
    "                          calling the Kubernetes API\n";

typedef struct st_control_opts_t {
    const char *listen, *admin_listen, *config_dir, *state_dir, *ca_cert, *ca_key, *extra_roots, *jwks, *issuer,
        *audience;
    const char *namespace_, *log_level, *attestation, *kube_api, *kube_ca, *kube_token;
    const char *source, *kubeconfig, *mesh_config;
    uint32_t review_timeout_ms, kube_timeout_ms;
    const char *dns_names[MAX_DNS_NAMES];
    size_t num_dns_names;
    uint32_t max_ttl_ms;
    const char *webhook_listen, *injector_config, *webhook_config_name, *namespace_labels_file;
    rm_inject_fixed_version_t kube_version;
    int kube_version_given;
    const char *ca_secret, *webhook_cert, *webhook_key;
    uint32_t cluster_resync_ms;
    int check_config, no_root_cert;
    uint32_t jwks_refresh_ms;
    const char *jwks_ca_file;
} control_opts_t;

typedef struct st_update_ctx_t {
    rm_control_server_t *srv;
    const char *trust_domain;
    rm_jwks_fetcher_t *jwks;
    pthread_mutex_t mu;
    rm_mesh_model_t *last; /* the model in service, pushed again when a jwksUri's JWKS changes */
} update_ctx_t;

/* Keeps `model` as the one in service and fetches the jwksUri of its RequestAuthentications. */
static void jwks_track(update_ctx_t *ctx, rm_mesh_model_t *model)
{
    if (ctx->jwks == NULL)
        return;
    rm_jwks_fetcher_watch(ctx->jwks, &model->policies);
    pthread_mutex_lock(&ctx->mu);
    rm_mesh_model_t *old = ctx->last;
    ctx->last = rm_mesh_model_ref(model);
    pthread_mutex_unlock(&ctx->mu);
    rm_mesh_model_unref(old);
}

/* A jwksUri resolves to something new: the pushes are built again from the same model (their versions follow
 * their content, so only the WorkloadPolicies that carry that JWKS change). */
static void on_jwks_change(void *arg)
{
    update_ctx_t *ctx = arg;
    pthread_mutex_lock(&ctx->mu);
    rm_mesh_model_t *m = ctx->last != NULL ? rm_mesh_model_ref(ctx->last) : NULL;
    pthread_mutex_unlock(&ctx->mu);
    if (m != NULL) {
        rm_control_server_update(ctx->srv, m);
        rm_mesh_model_unref(m);
    }
}

static void on_model(void *arg, rm_mesh_model_t *model)
{
    update_ctx_t *ctx = arg;

    if (strcmp(model->settings.trust_domain, ctx->trust_domain) != 0) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_ERROR, "config_rejected");
        rm_log_str(&l, "version", model->version);
        rm_log_str(&l, "field", "MeshConfig.spec.trustDomain");
        rm_log_str(&l, "reason",
                   "the trust domain cannot change while the control plane runs: its CA signs for "
                   "the old one; restart the control plane to change it");
        rm_log_str(&l, "running", ctx->trust_domain);
        rm_log_str(&l, "requested", model->settings.trust_domain);
        rm_log_end(&l);
        rm_mesh_model_unref(model);
        return;
    }
    jwks_track(ctx, model);
    rm_control_server_update(ctx->srv, model);
    rm_mesh_model_unref(model);
}

static int control_ready(void *arg)
{
    const rm_control_metrics_ctx_t *ctx = arg;
    rm_control_stats_t st;
    rm_control_server_stats(ctx->srv, &st);
    return st.model_updates > 0;
}

static int parse_opts(int argc, char **argv, control_opts_t *o)
{
    enum {
        O_SOURCE = 240,
        O_KUBECONFIG,
        O_MESHCONFIG,
        O_KUBETIMEOUT,
        O_ATTEST = 250,
        O_KAPI,
        O_KCA,
        O_KTOKEN,
        O_KTIMEOUT,
        O_ADMIN,
        O_WEBHOOK = 230,
        O_INJCFG,
        O_WHNAME,
        O_NSLABELS,
        O_KVERSION,
        O_CASECRET = 200,
        O_WHCERT,
        O_WHKEY,
        O_RESYNC,
        O_CHECK,
        O_NOROOT,
        O_JWKS_REFRESH,
        O_JWKS_CA,
        O_LISTEN = 256,
        O_CONFIG,
        O_STATE,
        O_CACERT,
        O_CAKEY,
        O_EXTRA,
        O_TTL,
        O_JWKS,
        O_ISS,
        O_AUD,
        O_NS,
        O_DNS,
        O_LOG
    };
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"admin-listen", required_argument, NULL, O_ADMIN},
        {"config-dir", required_argument, NULL, O_CONFIG},
        {"state-dir", required_argument, NULL, O_STATE},
        {"ca-cert", required_argument, NULL, O_CACERT},
        {"ca-key", required_argument, NULL, O_CAKEY},
        {"extra-roots", required_argument, NULL, O_EXTRA},
        {"max-svid-ttl", required_argument, NULL, O_TTL},
        {"jwks", required_argument, NULL, O_JWKS},
        {"token-issuer", required_argument, NULL, O_ISS},
        {"token-audience", required_argument, NULL, O_AUD},
        {"namespace", required_argument, NULL, O_NS},
        {"dns-name", required_argument, NULL, O_DNS},
        {"log-level", required_argument, NULL, O_LOG},
        {"help", no_argument, NULL, 'h'},
        {"attestation", required_argument, NULL, O_ATTEST},
        {"kube-api", required_argument, NULL, O_KAPI},
        {"kube-ca-file", required_argument, NULL, O_KCA},
        {"kube-token-file", required_argument, NULL, O_KTOKEN},
        {"token-review-timeout", required_argument, NULL, O_KTIMEOUT},
        {"source", required_argument, NULL, O_SOURCE},
        {"kubeconfig", required_argument, NULL, O_KUBECONFIG},
        {"mesh-config", required_argument, NULL, O_MESHCONFIG},
        {"kube-timeout", required_argument, NULL, O_KUBETIMEOUT},
        {"webhook-listen", required_argument, NULL, O_WEBHOOK},
        {"injector-config", required_argument, NULL, O_INJCFG},
        {"webhook-config-name", required_argument, NULL, O_WHNAME},
        {"namespace-labels-file", required_argument, NULL, O_NSLABELS},
        {"kube-version", required_argument, NULL, O_KVERSION},
        {"ca-secret", required_argument, NULL, O_CASECRET},
        {"webhook-cert", required_argument, NULL, O_WHCERT},
        {"webhook-key", required_argument, NULL, O_WHKEY},
        {"cluster-resync", required_argument, NULL, O_RESYNC},
        {"check-config", no_argument, NULL, O_CHECK},
        {"no-root-cert", no_argument, NULL, O_NOROOT},
        {"jwks-refresh", required_argument, NULL, O_JWKS_REFRESH},
        {"jwks-ca-file", required_argument, NULL, O_JWKS_CA},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof(*o));
    o->listen = "[::]:15012";
    o->admin_listen = "[::]:15014";
    o->state_dir = "/var/lib/ringmesh-control";
    o->audience = "ringmesh";
    o->namespace_ = "ringmesh-system";
    o->log_level = "info";
    o->attestation = "jwt";
    o->source = "file";
    o->max_ttl_ms = 24 * 3600 * 1000;
    o->webhook_config_name = "ringmesh-sidecar-injector";
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_LISTEN:
            o->listen = optarg;
            break;
        case O_ADMIN:
            o->admin_listen = optarg;
            break;
        case O_CONFIG:
            o->config_dir = optarg;
            break;
        case O_STATE:
            o->state_dir = optarg;
            break;
        case O_CACERT:
            o->ca_cert = optarg;
            break;
        case O_CAKEY:
            o->ca_key = optarg;
            break;
        case O_EXTRA:
            o->extra_roots = optarg;
            break;
        case O_TTL:
            if (rm_duration_parse_ms(optarg, &o->max_ttl_ms) != 0 || o->max_ttl_ms < RM_CA_MIN_TTL * 1000u) {
                fprintf(stderr, "ringmesh-control: --max-svid-ttl %s: a duration of at least 5m, e.g. 24h\n", optarg);
                return 2;
            }
            break;
        case O_JWKS:
            o->jwks = optarg;
            break;
        case O_ISS:
            o->issuer = optarg;
            break;
        case O_AUD:
            o->audience = optarg;
            break;
        case O_NS:
            o->namespace_ = optarg;
            break;
        case O_DNS:
            if (o->num_dns_names == MAX_DNS_NAMES) {
                fprintf(stderr, "ringmesh-control: at most %d --dns-name\n", MAX_DNS_NAMES);
                return 2;
            }
            o->dns_names[o->num_dns_names++] = optarg;
            break;
        case O_LOG:
            o->log_level = optarg;
            break;
        case O_ATTEST:
            if (strcmp(optarg, "jwt") != 0 && strcmp(optarg, "token-review") != 0) {
                fprintf(stderr, "ringmesh-control: --attestation %s: jwt or token-review\n", optarg);
                return 2;
            }
            o->attestation = optarg;
            break;
        case O_KAPI:
            o->kube_api = optarg;
            break;
        case O_KCA:
            o->kube_ca = optarg;
            break;
        case O_KTOKEN:
            o->kube_token = optarg;
            break;
        case O_KTIMEOUT:
            if (rm_duration_parse_ms(optarg, &o->review_timeout_ms) != 0 || o->review_timeout_ms == 0 ||
                o->review_timeout_ms > 600000) {
                fprintf(stderr, "ringmesh-control: --token-review-timeout %s: a duration from 1ms to 10m\n", optarg);
                return 2;
            }
            break;
        case O_SOURCE:
            if (strcmp(optarg, "file") != 0 && strcmp(optarg, "kubernetes") != 0) {
                fprintf(stderr, "ringmesh-control: --source %s: file or kubernetes\n", optarg);
                return 2;
            }
            o->source = optarg;
            break;
        case O_KUBECONFIG:
            o->kubeconfig = optarg;
            break;
        case O_MESHCONFIG:
            o->mesh_config = optarg;
            break;
        case O_KUBETIMEOUT:
            if (rm_duration_parse_ms(optarg, &o->kube_timeout_ms) != 0 || o->kube_timeout_ms < 100 ||
                o->kube_timeout_ms > 600000) {
                fprintf(stderr, "ringmesh-control: --kube-timeout %s: a duration from 100ms to 10m\n", optarg);
                return 2;
            }
            break;
        case O_WEBHOOK:
            o->webhook_listen = strcmp(optarg, "off") == 0 ? NULL : optarg;
            break;
        case O_INJCFG:
            o->injector_config = optarg;
            break;
        case O_WHNAME:
            o->webhook_config_name = optarg;
            break;
        case O_NSLABELS:
            o->namespace_labels_file = optarg;
            break;
        case O_KVERSION:
            if (rm_inject_parse_kube_version(optarg, &o->kube_version.major, &o->kube_version.minor) != 0) {
                fprintf(stderr, "ringmesh-control: --kube-version %s: MAJOR.MINOR, e.g. 1.33\n", optarg);
                return 2;
            }
            o->kube_version_given = 1;
            break;
        case O_CASECRET:
            o->ca_secret = optarg;
            break;
        case O_WHCERT:
            o->webhook_cert = optarg;
            break;
        case O_WHKEY:
            o->webhook_key = optarg;
            break;
        case O_RESYNC:
            if (rm_duration_parse_ms(optarg, &o->cluster_resync_ms) != 0 || o->cluster_resync_ms < 100 ||
                o->cluster_resync_ms > 3600000) {
                fprintf(stderr, "ringmesh-control: --cluster-resync %s: a duration from 100ms to 1h\n", optarg);
                return 2;
            }
            break;
        case O_CHECK:
            o->check_config = 1;
            break;
        case O_JWKS_REFRESH:
            if (rm_duration_parse_ms(optarg, &o->jwks_refresh_ms) != 0 || o->jwks_refresh_ms < 100 ||
                o->jwks_refresh_ms > 24u * 3600000) {
                fprintf(stderr, "ringmesh-control: --jwks-refresh %s: a duration from 100ms to 24h\n", optarg);
                return 2;
            }
            break;
        case O_JWKS_CA:
            o->jwks_ca_file = optarg;
            break;
        case O_NOROOT:
            o->no_root_cert = 1;
            break;
        case 'h':
            fputs(USAGE, stdout);
            exit(0);
        default:
            fputs(USAGE, stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fputs(USAGE, stderr);
        return 2;
    }
    if (strcmp(o->source, "file") == 0 && o->config_dir == NULL) {
        fprintf(stderr, "ringmesh-control: --config-dir DIR is required with --source file\n");
        return 2;
    }
    if (strcmp(o->source, "file") == 0 && (o->kubeconfig != NULL || o->mesh_config != NULL)) {
        fprintf(stderr, "ringmesh-control: --kubeconfig and --mesh-config apply to --source kubernetes only\n");
        return 2;
    }
    if (strcmp(o->source, "kubernetes") == 0 && o->config_dir != NULL) {
        fprintf(stderr, "ringmesh-control: --config-dir applies to --source file only (with --source kubernetes, "
                        "give the MeshConfig with --mesh-config FILE)\n");
        return 2;
    }
    if (strcmp(o->source, "kubernetes") == 0 && (o->namespace_labels_file != NULL || o->kube_version_given)) {
        fprintf(stderr, "ringmesh-control: --namespace-labels-file and --kube-version apply to --source file only "
                        "(with --source kubernetes, namespaces and the version come from the API; "
                        "InjectorConfig's nativeSidecar true or false overrides the version)\n");
        return 2;
    }
    if (strcmp(o->attestation, "jwt") == 0 && o->jwks == NULL) {
        fprintf(stderr, "ringmesh-control: --jwks is required with --attestation jwt\n");
        return 2;
    }
    if (strcmp(o->attestation, "token-review") == 0 && (o->jwks != NULL || o->issuer != NULL)) {
        fprintf(stderr, "ringmesh-control: --jwks and --token-issuer apply to --attestation jwt only\n");
        return 2;
    }
    if ((o->ca_cert == NULL) != (o->ca_key == NULL)) {
        fprintf(stderr, "ringmesh-control: --ca-cert and --ca-key go together\n");
        return 2;
    }
    if (o->ca_secret != NULL && strcmp(o->source, "kubernetes") != 0) {
        fprintf(stderr, "ringmesh-control: --ca-secret applies to --source kubernetes only\n");
        return 2;
    }
    if (o->ca_secret != NULL && o->ca_cert != NULL) {
        fprintf(stderr, "ringmesh-control: --ca-secret and --ca-cert/--ca-key are two sources of the CA: give one\n");
        return 2;
    }
    if ((o->webhook_cert == NULL) != (o->webhook_key == NULL)) {
        fprintf(stderr, "ringmesh-control: --webhook-cert and --webhook-key go together\n");
        return 2;
    }
    if (o->webhook_cert != NULL && o->webhook_listen == NULL) {
        fprintf(stderr, "ringmesh-control: --webhook-cert and --webhook-key need --webhook-listen\n");
        return 2;
    }
    return 0;
}

/* Whether SIGTERM or SIGINT is pending: they are blocked until the control plane serves, and a start that waits on
 * the Kubernetes API asks this so that it can be stopped meanwhile. */
static int stop_requested(void *arg)
{
    sigset_t pending;
    (void)arg;
    return sigpending(&pending) == 0 && (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
}

static void log_fatal(const char *event, const char *what, int err, const char *msg)
{
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_ERROR, event);
    rm_log_str(&l, "what", what);
    if (err != 0)
        rm_log_err(&l, "error", err);
    rm_log_str(&l, "msg", msg);
    rm_log_end(&l);
}

/* The injector's webhook: namespaces and the cluster's version from the source when it knows them (the Kubernetes
 * source), else from the flags. */
static int start_webhook(const control_opts_t *o, rm_source_t *src, const rm_ca_t *ca, const char *spiffe_id,
                         rm_inject_config_t *injector, rm_inject_webhook_t **out)
{
    rm_config_error_t cerr;
    char err[768];
    int ret;

    ret = o->injector_config != NULL ? rm_inject_config_load(o->injector_config, injector, &cerr)
                                     : rm_inject_config_defaults(injector);
    if (ret != 0) {
        rm_config_error_format(&cerr, err, sizeof(err));
        log_fatal("config_invalid", o->injector_config != NULL ? o->injector_config : "injector defaults", ret,
                  o->injector_config != NULL ? err : "out of memory");
        return ret;
    }
    if (strcmp(injector->trust_domain, rm_ca_trust_domain(ca)) != 0) {
        /* injected proxies would expect the control plane in another trust domain and never get an SVID */
        snprintf(err, sizeof(err), "%s: spec.trustDomain: \"%s\" is not the mesh's trust domain \"%s\"",
                 o->injector_config != NULL ? o->injector_config : "InjectorConfig", injector->trust_domain,
                 rm_ca_trust_domain(ca));
        log_fatal("config_invalid", o->injector_config != NULL ? o->injector_config : "injector defaults",
                  RM_ERR_CONFIG_VALUE, err);
        return RM_ERR_CONFIG_VALUE;
    }
    rm_inject_webhook_config_t wc = {
        .listen = o->webhook_listen,
        .ca = ca,
        .spiffe_id = spiffe_id,
        .dns_names = o->dns_names,
        .num_dns_names = o->num_dns_names,
        .cert_file = o->webhook_cert,
        .key_file = o->webhook_key,
        .review = {.config = injector,
                   .namespace_labels = o->namespace_labels_file != NULL ? rm_inject_namespace_labels_from_file : NULL,
                   .namespace_labels_arg = (void *)o->namespace_labels_file,
                   .kube_version = rm_inject_kube_version_fixed,
                   .kube_version_arg = (void *)&o->kube_version},
    };
    if (src->ops->namespace_labels != NULL) {
        wc.review.namespace_labels = rm_inject_namespace_labels_from_source;
        wc.review.namespace_labels_arg = src;
    }
    if (src->ops->server_version != NULL) {
        wc.review.kube_version = rm_inject_kube_version_from_source;
        wc.review.kube_version_arg = src;
    }
    if ((ret = rm_inject_webhook_start(&wc, out, err, sizeof(err))) != 0) {
        log_fatal("listen_failed", o->webhook_listen, ret, err);
        return ret;
    }
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_INFO, "webhook_started");
    rm_log_str(&l, "listen", o->webhook_listen);
    rm_log_uint(&l, "port", rm_inject_webhook_port(*out));
    rm_log_str(&l, "injectorConfig", o->injector_config != NULL ? o->injector_config : "defaults");
    rm_log_str(&l, "image", injector->image);
    rm_log_str(&l, "servingCertificate", o->webhook_cert != NULL ? o->webhook_cert : "issued by the mesh CA");
    rm_log_end(&l);
    return 0;
}

/* --check-config: every file the flags name is read and checked as a start would, without listening or calling the
 * API. Prints one line per problem on stderr and returns 0 or 1. */
static int check_config(const control_opts_t *o)
{
    rm_config_error_t *cerr = calloc(1, sizeof(*cerr));
    rm_mesh_model_t *model = NULL;
    rm_inject_config_t injector = {0};
    rm_kube_config_t kc = {0};
    rm_attestor_t *attestor = NULL;
    rm_ca_t *ca = NULL;
    char err[1024], *data = NULL;
    const char *td = "cluster.local";
    size_t len = 0;
    int bad = 0, ret;

    if (cerr == NULL)
        return 1;
    if (o->config_dir != NULL) {
        if (rm_mesh_model_load_dir(o->config_dir, &model, err, sizeof(err)) != 0) {
            fprintf(stderr, "ringmesh-control: %s\n", err);
            bad = 1;
        }
    } else {
        rm_mesh_loader_t *ld = rm_mesh_loader_new(cerr);
        ret = ld == NULL ? -ENOMEM : 0;
        if (ret == 0 && o->mesh_config != NULL &&
            (ret = rm_file_read_at(AT_FDCWD, o->mesh_config, NULL, 1 << 20, 0, &data, &len, cerr)) == 0)
            ret = rm_mesh_loader_add(ld, o->mesh_config, data, len);
        if (ret == 0)
            ret = rm_mesh_loader_finish(ld, &model);
        rm_mesh_loader_free(ld);
        if (ret != 0) {
            rm_config_error_format(cerr, err, sizeof(err));
            fprintf(stderr, "ringmesh-control: %s\n", err);
            bad = 1;
        }
        free(data);
    }
    if (model != NULL)
        td = model->settings.trust_domain;
    if (o->ca_cert != NULL) {
        rm_ca_config_t cac = {.trust_domain = td,
                              .cert_file = o->ca_cert,
                              .key_file = o->ca_key,
                              .extra_roots_file = o->extra_roots,
                              .max_ttl = o->max_ttl_ms / 1000,
                              .default_ttl = o->max_ttl_ms / 1000};
        if (rm_ca_open(&cac, &ca, err, sizeof(err)) != 0) {
            fprintf(stderr, "ringmesh-control: %s\n", err);
            bad = 1;
        }
    }
    if (o->webhook_listen != NULL) {
        if (o->injector_config != NULL && rm_inject_config_load(o->injector_config, &injector, cerr) != 0) {
            rm_config_error_format(cerr, err, sizeof(err));
            fprintf(stderr, "ringmesh-control: %s\n", err);
            bad = 1;
        } else if (o->injector_config != NULL && strcmp(injector.trust_domain, td) != 0) {
            fprintf(stderr, "ringmesh-control: %s: spec.trustDomain: \"%s\" is not the mesh's trust domain \"%s\"\n",
                    o->injector_config, injector.trust_domain, td);
            bad = 1;
        }
        if (o->webhook_cert != NULL &&
            rm_inject_webhook_check_files(o->webhook_cert, o->webhook_key, td, err, sizeof(err)) != 0) {
            fprintf(stderr, "ringmesh-control: %s\n", err);
            bad = 1;
        }
    }
    if (o->kubeconfig != NULL && rm_kube_config_load_kubeconfig(o->kubeconfig, NULL, 0, &kc, cerr) != 0) {
        rm_config_error_format(cerr, err, sizeof(err));
        fprintf(stderr, "ringmesh-control: %s\n", err);
        bad = 1;
    }
    if (strcmp(o->attestation, "jwt") == 0 &&
        rm_attestor_jwt_create(o->jwks, o->issuer, o->audience, &attestor, err, sizeof(err)) != 0) {
        fprintf(stderr, "ringmesh-control: %s\n", err);
        bad = 1;
    }
    if (!bad)
        fprintf(stderr, "ringmesh-control: configuration valid\n");
    if (attestor != NULL)
        attestor->ops->destroy(attestor);
    rm_kube_config_clear(&kc);
    rm_ca_free(ca);
    rm_inject_config_dispose(&injector);
    rm_mesh_model_unref(model);
    free(cerr);
    return bad;
}

int main(int argc, char **argv)
{
    control_opts_t o;
    rm_log_level_t level;
    rm_source_t *src = NULL;
    rm_mesh_model_t *model = NULL;
    rm_ca_t *ca = NULL;
    rm_attestor_t *attestor = NULL;
    rm_control_server_t *srv = NULL;
    rm_jwks_fetcher_t *jwks = NULL;
    update_ctx_t uctx = {.mu = PTHREAD_MUTEX_INITIALIZER};
    rm_admin_http_t *admin = NULL;
    rm_control_metrics_ctx_t metrics_ctx;
    rm_inject_config_t injector = {0};
    rm_inject_webhook_t *webhook = NULL;
    rm_kube_client_t *kube = NULL;
    rm_kube_publisher_t *publisher = NULL;
    rm_kube_ca_secret_t secret = {0};
    char ca_origin[400];
    char err[512], spiffe_id[512], dns_buf[2][300], path[4096];
    size_t bundle_len;
    const char *bundle;
    sigset_t sigs;
    int ret, sig, status = 1;

    if ((ret = parse_opts(argc, argv, &o)) != 0)
        return ret;
    if (rm_log_level_parse(o.log_level, &level) != 0) {
        fprintf(stderr, "ringmesh-control: --log-level %s: one of debug, info, warn, error\n", o.log_level);
        return 2;
    }
    rm_log_configure(level, 1);
    /* before anything uses OpenSSL (gRPC, libcurl): no cleanup at exit, while gRPC's threads may still be ending */
    if (rm_openssl_process_init() != 0) {
        log_fatal("tls_init_failed", "OpenSSL", 0, "OpenSSL failed to initialise");
        return 1;
    }
    if (o.check_config)
        return check_config(&o);
    (void)signal(SIGPIPE, SIG_IGN);
    /* Block the stop signals before any thread starts, so that only sigwait() below sees them. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    const char *origin = o.config_dir;
    if (strcmp(o.source, "kubernetes") == 0) {
        rm_source_kube_config_t kc = {.kubeconfig = o.kubeconfig,
                                      .mesh_config = o.mesh_config,
                                      .timeout_ms = o.kube_timeout_ms,
                                      .should_stop = stop_requested};
        origin = o.kubeconfig != NULL ? o.kubeconfig : "in-cluster";
        ret = rm_source_kube_create(&kc, &src, &model, err, sizeof(err));
    } else {
        ret = rm_source_file_create(o.config_dir, &src, &model, err, sizeof(err));
    }
    if (ret == -ECANCELED) {
        rm_log_msg(RM_LOG_INFO, "control_stopping", err);
        status = 0;
        goto Exit;
    }
    if (ret != 0) {
        log_fatal("config_invalid", origin, ret, err);
        goto Exit;
    }
    rm_ca_config_t cac = {
        .trust_domain = model->settings.trust_domain,
        .cert_file = o.ca_cert,
        .key_file = o.ca_key,
        .extra_roots_file = o.extra_roots,
        .state_dir = o.state_dir,
        /* the mesh's svidTTL, held to --max-svid-ttl */
        .default_ttl = model->settings.svid_ttl < (int64_t)(o.max_ttl_ms / 1000) ? model->settings.svid_ttl
                                                                                 : (int64_t)(o.max_ttl_ms / 1000),
        .max_ttl = o.max_ttl_ms / 1000,
    };
    if (strcmp(o.source, "kubernetes") == 0 &&
        (ret = rm_kube_client_open(o.kubeconfig, o.kube_timeout_ms, &kube, err, sizeof(err))) != 0) {
        log_fatal("config_invalid", origin, ret, err);
        goto Exit;
    }
    snprintf(ca_origin, sizeof(ca_origin), "Secret %s/%s", o.namespace_, o.ca_secret != NULL ? o.ca_secret : "");
    if (o.ca_secret != NULL) {
        if ((ret = rm_kube_ca_secret_fetch(kube, o.namespace_, o.ca_secret, model->settings.trust_domain, &secret, err,
                                           sizeof(err))) != 0) {
            log_fatal("ca_invalid", ca_origin, ret, err);
            goto Exit;
        }
        cac.cert_pem = secret.cert_pem;
        cac.cert_len = secret.cert_len;
        cac.key_pem = secret.key_pem;
        cac.key_len = secret.key_len;
        cac.roots_pem = secret.roots_pem;
        cac.roots_len = secret.roots_len;
        cac.origin = ca_origin;
    }
    ret = rm_ca_open(&cac, &ca, err, sizeof(err));
    rm_kube_ca_secret_clear(&secret); /* the signer holds its own copy of the key */
    if (ret != 0) {
        log_fatal("ca_invalid",
                  o.ca_secret != NULL ? ca_origin
                  : o.ca_cert != NULL ? o.ca_cert
                                      : o.state_dir,
                  ret, err);
        goto Exit;
    }
    /* Publish the bundle beside the CA, for bootstrapping sidecars on hosts without a ConfigMap. */
    bundle = rm_ca_bundle_pem(ca, &bundle_len);
    snprintf(path, sizeof(path), "%s/trust-bundle.pem", o.state_dir);
    if (mkdir(o.state_dir, 0700) != 0 && errno != EEXIST) {
        log_fatal("state_dir_invalid", o.state_dir, -errno, "cannot create the state directory");
        goto Exit;
    }
    if ((ret = rm_x509_write_file(path, bundle, bundle_len, 0)) != 0) {
        log_fatal("state_dir_invalid", path, ret, "cannot write the trust bundle");
        goto Exit;
    }
    if (strcmp(o.attestation, "token-review") == 0) {
        rm_tokenreview_config_t tr = {.api_server = o.kube_api,
                                      .ca_file = o.kube_ca,
                                      .token_file = o.kube_token,
                                      .audience = o.audience,
                                      .timeout_ms = o.review_timeout_ms};
        ret = rm_attestor_tokenreview_create(&tr, &attestor, err, sizeof(err));
    } else {
        ret = rm_attestor_jwt_create(o.jwks, o.issuer, o.audience, &attestor, err, sizeof(err));
    }
    if (ret != 0) {
        log_fatal("attestation_invalid", o.attestation, ret, err);
        goto Exit;
    }

    /* The serving certificate: an SVID of the control plane's own identity plus the names sidecars dial. The server
     * issues it (key in memory only) and issues a new one at half its life. */
    if (o.num_dns_names == 0) {
        snprintf(dns_buf[0], sizeof(dns_buf[0]), "ringmesh-control.%s.svc", o.namespace_);
        snprintf(dns_buf[1], sizeof(dns_buf[1]), "ringmesh-control.%s.svc.cluster.local", o.namespace_);
        o.dns_names[o.num_dns_names++] = "ringmesh-control";
        o.dns_names[o.num_dns_names++] = dns_buf[0];
        o.dns_names[o.num_dns_names++] = dns_buf[1];
        o.dns_names[o.num_dns_names++] = "localhost";
    }
    snprintf(spiffe_id, sizeof(spiffe_id), "spiffe://%s/ns/%s/sa/ringmesh-control", rm_ca_trust_domain(ca),
             o.namespace_);

    rm_control_server_config_t sc = {
        .listen = o.listen,
        .ca = ca,
        .attestor = attestor,
        .serving_id = spiffe_id,
        .serving_dns_names = o.dns_names,
        .num_serving_dns_names = o.num_dns_names,
        .workloads = src->ops->lookup_workload != NULL ? src : NULL,
    };
    if ((ret = rm_control_server_start(&sc, model, &srv, err, sizeof(err))) != 0) {
        log_fatal("listen_failed", o.listen, ret, err);
        goto Exit;
    }
    uctx.srv = srv;
    uctx.trust_domain = rm_ca_trust_domain(ca);
    if ((ret = rm_jwks_fetcher_start(
             &(rm_jwks_fetcher_opts_t){
                 .refresh_ms = o.jwks_refresh_ms, .ca_file = o.jwks_ca_file, .on_change = on_jwks_change, .arg = &uctx},
             &jwks)) != 0) {
        log_fatal("jwks_fetcher_failed", origin, ret, "cannot start the JWKS fetcher");
        goto Exit;
    }
    uctx.jwks = jwks;
    jwks_track(&uctx, model);
    if (o.webhook_listen != NULL && start_webhook(&o, src, ca, spiffe_id, &injector, &webhook) != 0)
        goto Exit;
    /* after the webhook: the page reads its certificate */
    metrics_ctx = (rm_control_metrics_ctx_t){
        .srv = srv,
        .jwks = jwks,
        .ca = ca,
        .webhook = webhook,
        .source = strcmp(o.source, "kubernetes") == 0 ? RM_CONTROL_SOURCE_KUBERNETES : RM_CONTROL_SOURCE_FILE,
    };
    if (strcmp(o.admin_listen, "off") != 0 &&
        (ret = rm_admin_http_start(o.admin_listen, rm_control_metrics_render, control_ready, &metrics_ctx, &admin, err,
                                   sizeof(err))) != 0) {
        log_fatal("listen_failed", o.admin_listen, ret, err);
        goto Exit;
    }
    if (kube != NULL) {
        /* the trust bundle into the cluster: root-cert ConfigMaps, and the webhooks' caBundle unless cert-manager
         * serves the webhook (its CA injector sets the caBundle then) */
        rm_kube_publisher_config_t pc = {
            .client = kube,
            .bundle_pem = bundle,
            .bundle_len = bundle_len,
            .webhook_config = o.webhook_listen != NULL && o.webhook_cert == NULL ? o.webhook_config_name : NULL,
            .publish_root_cert = !o.no_root_cert,
            .resync_ms = o.cluster_resync_ms,
        };
        if ((ret = rm_kube_publisher_start(&pc, &publisher, err, sizeof(err))) != 0) {
            log_fatal("publisher_failed", origin, ret, err);
            goto Exit;
        }
    }
    if ((ret = src->ops->start(src, on_model, &uctx)) != 0) {
        log_fatal("config_watch_failed", origin, ret, "cannot watch the configuration source");
        goto Exit;
    }
    {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "control_started");
        rm_log_str(&l, "listen", o.listen);
        rm_log_str(&l, "adminListen", o.admin_listen);
        rm_log_str(&l, "trustDomain", rm_ca_trust_domain(ca));
        rm_log_str(&l, "spiffeId", spiffe_id);
        rm_log_str(&l, "source", src->ops->name);
        if (o.config_dir != NULL)
            rm_log_str(&l, "configDir", o.config_dir);
        rm_log_str(&l, "configVersion", model->version);
        rm_log_uint(&l, "services", model->num_services);
        rm_log_str(&l, "ca",
                   o.ca_secret != NULL ? ca_origin
                   : o.ca_cert != NULL ? o.ca_cert
                                       : "generated root in state directory");
        rm_log_str(&l, "trustBundle", path);
        rm_log_str(&l, "attestation", attestor->ops->name);
        rm_log_end(&l);
    }
    while (sigwait(&sigs, &sig) != 0 || (sig != SIGTERM && sig != SIGINT))
        ;
    {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "control_stopping");
        rm_log_str(&l, "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        rm_log_end(&l);
    }
    status = 0;

Exit:
    /* the source stops first (no more models), the server next (it looks workloads up in the source) */
    if (src != NULL)
        src->ops->stop(src);
    rm_kube_publisher_stop(publisher);
    rm_kube_client_free(kube);
    rm_kube_ca_secret_clear(&secret);
    rm_inject_webhook_stop(webhook);
    rm_inject_config_dispose(&injector);
    rm_admin_http_stop(admin);
    rm_jwks_fetcher_stop(jwks); /* before the server: its changes push through it */
    rm_control_server_stop(srv);
    rm_mesh_model_unref(uctx.last);
    pthread_mutex_destroy(&uctx.mu);
    if (src != NULL)
        src->ops->destroy(src);
    if (attestor != NULL)
        attestor->ops->destroy(attestor);
    rm_ca_free(ca);
    rm_mesh_model_unref(model);
    if (status == 0)
        rm_log_msg(RM_LOG_INFO, "control_stopped", "bye");
    return status;
}
