/* The proxy file's observability settings: connectionLog, accessLog (enabled, sampleRate) and workload (who this
 * proxy is when no control plane says it: bare hosts). */
#include "proxy_config_internal.h"

#include <stdlib.h>
#include <string.h>

#include "ringmesh/yaml_load.h"

static int conv_sample_rate(rm_config_doc_t *ctx, const char *path, const char *s, double *out)
{
    char q[96], *end;
    double v;

    if (s == NULL)
        return 0;
    v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v >= 0 && v <= 1))
        return rm_config_value_error(ctx, path, "%s is not a fraction in [0, 1] (e.g. 0.01 logs one in 100)",
                                     rm_yaml_quoted(q, sizeof(q), s));
    *out = v;
    return 0;
}

int rm__proxy_config_convert_observe(rm_config_doc_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg)
{
    const raw_workload_t *w = raw->workload;
    int ret;

    if ((ret = rm_config_conv_bool(ctx, "connectionLog", raw->connection_log, &cfg->connection_log)) != 0)
        return ret;
    if (raw->access_log != NULL &&
        ((ret = rm_config_conv_bool(ctx, "accessLog.enabled", raw->access_log->enabled, &cfg->access_log)) != 0 ||
         (ret = conv_sample_rate(ctx, "accessLog.sampleRate", raw->access_log->sample_rate, &cfg->access_log_sample)) !=
             0))
        return ret;
    if (w != NULL &&
        ((ret = rm_config_conv_string(ctx, "workload.name", w->name, &cfg->workload_name)) != 0 ||
         (ret = rm_config_conv_string(ctx, "workload.namespace", w->namespace_, &cfg->workload_namespace)) != 0 ||
         (ret = rm_config_conv_string(ctx, "workload.app", w->app, &cfg->workload_app)) != 0 ||
         (ret = rm_config_conv_string(ctx, "workload.version", w->version, &cfg->workload_version)) != 0 ||
         (ret = rm_config_conv_string(ctx, "workload.principal", w->principal, &cfg->workload_principal)) != 0))
        return ret;
    if (cfg->workload_principal != NULL && strncmp(cfg->workload_principal, "spiffe://", 9) != 0)
        return rm_config_value_error(ctx, "workload.principal", "\"%.200s\" is not a SPIFFE ID (spiffe://...)",
                                     cfg->workload_principal);
    return 0;
}
