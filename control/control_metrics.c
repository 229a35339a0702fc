/* The control plane's /metrics page and the sources' error counters (control_metrics.h). */
#include "control_metrics.h"
#include "jwks_fetch.h"

#include "ringmesh/error.h"
#include "ringmesh/textbuf.h"

static uint64_t source_errors[RM_CONTROL_NUM_SOURCES][RM_SOURCE_NUM_ERRS];

static const char *const source_names[RM_CONTROL_NUM_SOURCES] = {"file", "kubernetes"};

/* Which kinds each source can have: its series are exposed from the start (at 0), so that rate() sees the first. */
static const unsigned source_kinds[RM_CONTROL_NUM_SOURCES] = {
    [RM_CONTROL_SOURCE_FILE] = 1u << RM_SOURCE_ERR_PARSE | 1u << RM_SOURCE_ERR_VALIDATION | 1u << RM_SOURCE_ERR_IO |
                               1u << RM_SOURCE_ERR_WATCH_FAILED,
    [RM_CONTROL_SOURCE_KUBERNETES] = (1u << RM_SOURCE_NUM_ERRS) - 1,
};

const char *rm_source_error_kind_name(rm_source_error_kind_t kind)
{
    static const char *const names[RM_SOURCE_NUM_ERRS] = {
        [RM_SOURCE_ERR_PARSE] = "parse",
        [RM_SOURCE_ERR_VALIDATION] = "validation",
        [RM_SOURCE_ERR_IO] = "io",
        [RM_SOURCE_ERR_WATCH_FAILED] = "watch_failed",
        [RM_SOURCE_ERR_LIST_FAILED] = "list_failed",
        [RM_SOURCE_ERR_RELIST] = "relist",
        [RM_SOURCE_ERR_OBJECT_REFUSED] = "object_refused",
        [RM_SOURCE_ERR_LOOKUP_FAILED] = "lookup_failed",
    };
    return (unsigned)kind < RM_SOURCE_NUM_ERRS ? names[kind] : "validation";
}

rm_source_error_kind_t rm_source_error_kind_of(int code)
{
    switch (code) {
    case RM_ERR_CONFIG_PARSE:
        return RM_SOURCE_ERR_PARSE;
    case RM_ERR_CONFIG_IO:
        return RM_SOURCE_ERR_IO;
    default:
        return RM_SOURCE_ERR_VALIDATION;
    }
}

void rm_control_source_error(rm_control_source_t source, rm_source_error_kind_t kind)
{
    if ((unsigned)source < RM_CONTROL_NUM_SOURCES && (unsigned)kind < RM_SOURCE_NUM_ERRS)
        __atomic_add_fetch(&source_errors[source][kind], 1, __ATOMIC_RELAXED);
}

uint64_t rm_control_source_errors(rm_control_source_t source, rm_source_error_kind_t kind)
{
    if ((unsigned)source >= RM_CONTROL_NUM_SOURCES || (unsigned)kind >= RM_SOURCE_NUM_ERRS)
        return 0;
    return __atomic_load_n(&source_errors[source][kind], __ATOMIC_RELAXED);
}

/* One family's HELP and TYPE lines. */
static size_t family(char *buf, size_t len, size_t o, const char *name, const char *type, const char *help)
{
    return rm_textf(buf, len, o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A counter per resource type. */
static size_t per_type(char *buf, size_t len, size_t o, const char *name, const char *help, const uint64_t *v)
{
    o = family(buf, len, o, name, "counter", help);
    for (int t = 0; t < RM_XDS_NUM_TYPES; t++)
        o = rm_textf(buf, len, o, "%s{type=\"%s\"} %llu\n", name, rm_xds_type_name((rm_xds_type_t)t),
                     (unsigned long long)v[t]);
    return o;
}

static size_t discovery(char *buf, size_t len, size_t o, const rm_control_stats_t *st)
{
    o = family(buf, len, o, "ringmesh_control_connected_proxies", "gauge",
               "Sidecars connected to this replica: Discovery streams whose node checked out, not yet ended.");
    o = rm_textf(buf, len, o, "ringmesh_control_connected_proxies %llu\n", (unsigned long long)st->connected_proxies);
    o = family(buf, len, o, "ringmesh_control_discovery_streams", "gauge", "Discovery streams open on this replica.");
    o = rm_textf(buf, len, o, "ringmesh_control_discovery_streams %llu\n", (unsigned long long)st->streams_active);
    o = family(buf, len, o, "ringmesh_control_discovery_streams_total", "counter", "Discovery streams opened.");
    o = rm_textf(buf, len, o, "ringmesh_control_discovery_streams_total %llu\n", (unsigned long long)st->streams_total);
    o = family(buf, len, o, "ringmesh_control_discovery_streams_refused_total", "counter",
               "Streams ended with an error status.");
    o = rm_textf(buf, len, o, "ringmesh_control_discovery_streams_refused_total %llu\n",
                 (unsigned long long)st->streams_refused);
    o = per_type(buf, len, o, "ringmesh_control_pushes_total", "Resources pushed to sidecars.", st->pushes);
    o = per_type(buf, len, o, "ringmesh_control_acks_total", "Pushes sidecars accepted.", st->acks);
    o = per_type(buf, len, o, "ringmesh_control_nacks_total", "Pushes sidecars rejected (see config_nacked logs).",
                 st->nacks);
    o = family(buf, len, o, "ringmesh_control_push_ack_duration_seconds", "histogram",
               "Time from a push to the sidecar's ACK or NACK of it.");
    for (int t = 0; t < RM_XDS_NUM_TYPES; t++) {
        char labels[64];
        (void)rm_textf(labels, sizeof(labels), 0, "type=\"%s\"", rm_xds_type_name((rm_xds_type_t)t));
        o = rm_control_histogram_render(buf, len, o, "ringmesh_control_push_ack_duration_seconds", labels,
                                        &st->push_answer[t]);
    }
    return o;
}

static size_t identity(char *buf, size_t len, size_t o, const rm_control_stats_t *st, const rm_ca_t *ca,
                       rm_inject_webhook_t *webhook)
{
    o = family(buf, len, o, "ringmesh_control_svids_issued_total", "counter", "X.509-SVIDs signed.");
    o = rm_textf(buf, len, o, "ringmesh_control_svids_issued_total %llu\n", (unsigned long long)st->sign_ok);
    o = family(buf, len, o, "ringmesh_control_sign_refused_total", "counter",
               "Identity.Sign calls refused (see sign_refused logs).");
    o = rm_textf(buf, len, o, "ringmesh_control_sign_refused_total %llu\n", (unsigned long long)st->sign_refused);
    o = family(buf, len, o, "ringmesh_control_svid_refusals_total", "counter",
               "Identity.Sign calls refused, by cause (the cause field of sign_refused logs).");
    for (int r = RM_SIGN_ISSUED + 1; r < RM_SIGN_NUM_OUTCOMES; r++)
        o = rm_textf(buf, len, o, "ringmesh_control_svid_refusals_total{reason=\"%s\"} %llu\n",
                     rm_sign_outcome_name((rm_sign_outcome_t)r), (unsigned long long)st->sign_refusals[r]);
    o = family(buf, len, o, "ringmesh_control_ca_expiry_timestamp_seconds", "gauge",
               "When the signing CA stops issuing SVIDs that verify: the earliest notAfter of its chain.");
    o = rm_textf(buf, len, o, "ringmesh_control_ca_expiry_timestamp_seconds %lld\n", (long long)rm_ca_not_after(ca));
    if (webhook != NULL) {
        o = family(buf, len, o, "ringmesh_control_webhook_cert_expiry_timestamp_seconds", "gauge",
                   "notAfter of the injection webhook's serving certificate.");
        o = rm_textf(buf, len, o, "ringmesh_control_webhook_cert_expiry_timestamp_seconds %lld\n",
                     (long long)rm_inject_webhook_not_after(webhook));
    }
    return o;
}

static size_t configuration(char *buf, size_t len, size_t o, const rm_control_stats_t *st, rm_control_source_t src)
{
    o = family(buf, len, o, "ringmesh_control_config_updates_total", "counter", "Configurations put in service.");
    o = rm_textf(buf, len, o, "ringmesh_control_config_updates_total %llu\n", (unsigned long long)st->model_updates);
    o = family(buf, len, o, "ringmesh_control_config_info", "gauge", "The configuration being served.");
    o = rm_textf(buf, len, o, "ringmesh_control_config_info{version=\"%s\",services=\"%llu\"} 1\n", st->version,
                 (unsigned long long)st->num_services);
    o = family(buf, len, o, "ringmesh_control_config_objects", "gauge",
               "Objects in the configuration being served, by kind.");
    o = rm_textf(buf, len, o,
                 "ringmesh_control_config_objects{kind=\"Service\"} %llu\n"
                 "ringmesh_control_config_objects{kind=\"AuthorizationPolicy\"} %llu\n"
                 "ringmesh_control_config_objects{kind=\"PeerAuthentication\"} %llu\n",
                 (unsigned long long)st->num_services, (unsigned long long)st->num_policies,
                 (unsigned long long)st->num_peer_authns);
    o = family(buf, len, o, "ringmesh_control_source_errors_total", "counter",
               "Errors of the configuration source, by kind (see config_rejected and kube_* logs).");
    if ((unsigned)src < RM_CONTROL_NUM_SOURCES)
        for (int k = 0; k < RM_SOURCE_NUM_ERRS; k++)
            if (source_kinds[src] & (1u << k))
                o = rm_textf(buf, len, o, "ringmesh_control_source_errors_total{source=\"%s\",kind=\"%s\"} %llu\n",
                             source_names[src], rm_source_error_kind_name((rm_source_error_kind_t)k),
                             (unsigned long long)rm_control_source_errors(src, (rm_source_error_kind_t)k));
    return o;
}

size_t rm_control_metrics_render(void *arg, char *buf, size_t len)
{
    const rm_control_metrics_ctx_t *ctx = arg;
    rm_control_stats_t st;
    size_t o = 0;

    rm_control_server_stats(ctx->srv, &st);
    o = discovery(buf, len, o, &st);
    o = identity(buf, len, o, &st, ctx->ca, ctx->webhook);
    o = configuration(buf, len, o, &st, ctx->source);
    if (ctx->jwks != NULL) {
        o = family(buf, len, o, "ringmesh_control_jwks_fetch_failures_total", "counter",
                   "Fetches of a RequestAuthentication jwksUri that failed (see jwks_fetch_failed logs).");
        o = rm_textf(buf, len, o, "ringmesh_control_jwks_fetch_failures_total %llu\n",
                     (unsigned long long)rm_jwks_fetcher_failures(ctx->jwks));
    }
    return o;
}
