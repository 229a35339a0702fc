/* The proxy file's `traffic:` section: requestBalancing (the per-request path on or off) and the request path's
 * knobs, each handed to ringmesh/traffic_config.h as written; a refusal is reported at the key's position with
 * its field path `traffic.<key>`. */
#include "proxy_config_internal.h"

#include "ringmesh/error.h"
#include "ringmesh/yaml_pos_map.h"

#include <stdio.h>

/* One scalar key below traffic: (`key` without the "traffic." prefix); an absent value keeps the default. */
static int set_scalar(rm_config_doc_t *ctx, rm_traffic_config_t *t, const char *key, const char *value)
{
    char why[256], path[96];

    if (value == NULL)
        return 0;
    if (rm_traffic_config_set(t, key, value, why, sizeof(why)) == 0)
        return 0;
    snprintf(path, sizeof(path), "traffic.%s", key);
    return rm_config_value_error(ctx, path, "%s", why);
}

/* One list key (retry.codes, retry.grpcStatuses); an absent list keeps the default, an empty one replaces it
 * (libcyaml gives an empty sequence as no entries, like an absent one: the document's node map tells them apart). */
static int set_list(rm_config_doc_t *ctx, rm_traffic_config_t *t, const char *key, char **values, unsigned num)
{
    char why[256], path[96];

    snprintf(path, sizeof(path), "traffic.%s", key);
    if (num == 0 && (ctx->map == NULL || rm_yaml_pos_map_find(ctx->map, path) == NULL))
        return 0;
    if (rm_traffic_config_set_list(t, key, (const char *const *)values, num, why, sizeof(why)) == 0)
        return 0;
    return rm_config_value_error(ctx, path, "%s", why);
}

static int set_limits(rm_config_doc_t *ctx, rm_traffic_config_t *t, const char *prefix, const raw_circuit_limits_t *l)
{
    char key[96];
    int ret;

    snprintf(key, sizeof(key), "%s.maxConnections", prefix);
    if ((ret = set_scalar(ctx, t, key, l->max_connections)) != 0)
        return ret;
    snprintf(key, sizeof(key), "%s.maxPendingRequests", prefix);
    if ((ret = set_scalar(ctx, t, key, l->max_pending_requests)) != 0)
        return ret;
    snprintf(key, sizeof(key), "%s.maxRequests", prefix);
    if ((ret = set_scalar(ctx, t, key, l->max_requests)) != 0)
        return ret;
    snprintf(key, sizeof(key), "%s.maxRetries", prefix);
    return set_scalar(ctx, t, key, l->max_retries);
}

int rm__proxy_config_convert_traffic(rm_config_doc_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg)
{
    const raw_traffic_t *tr = raw->traffic;
    rm_traffic_config_t *t = &cfg->traffic;
    char why[256];
    int ret = 0;

    if (tr == NULL)
        goto Exit;
    if ((ret = rm_config_conv_bool(ctx, "traffic.requestBalancing", tr->request_balancing, &cfg->request_balancing)) !=
        0)
        goto Exit;
    if (tr->retry_budget != NULL &&
        ((ret = set_scalar(ctx, t, "retryBudget.ratio", tr->retry_budget->ratio)) != 0 ||
         (ret = set_scalar(ctx, t, "retryBudget.minRetriesPerSecond", tr->retry_budget->min_retries_per_second)) != 0 ||
         (ret = set_scalar(ctx, t, "retryBudget.window", tr->retry_budget->window)) != 0))
        goto Exit;
    if (tr->retry != NULL && ((ret = set_scalar(ctx, t, "retry.attempts", tr->retry->attempts)) != 0 ||
                              (ret = set_list(ctx, t, "retry.codes", tr->retry->codes, tr->retry->codes_count)) != 0 ||
                              (ret = set_list(ctx, t, "retry.grpcStatuses", tr->retry->grpc_statuses,
                                              tr->retry->grpc_statuses_count)) != 0 ||
                              (ret = set_scalar(ctx, t, "retry.backoff", tr->retry->backoff)) != 0 ||
                              (ret = set_scalar(ctx, t, "retry.maxBackoff", tr->retry->max_backoff)) != 0 ||
                              (ret = set_scalar(ctx, t, "retry.bufferLimit", tr->retry->buffer_limit)) != 0))
        goto Exit;
    if (tr->outlier_detection != NULL) {
        const raw_outlier_t *o = tr->outlier_detection;
        if ((ret = set_scalar(ctx, t, "outlierDetection.consecutive5xxErrors", o->consecutive_5xx)) != 0 ||
            (ret = set_scalar(ctx, t, "outlierDetection.consecutiveGatewayErrors", o->consecutive_gateway)) != 0 ||
            (ret = set_scalar(ctx, t, "outlierDetection.baseEjectionTime", o->base_ejection_time)) != 0 ||
            (ret = set_scalar(ctx, t, "outlierDetection.maxEjectionTime", o->max_ejection_time)) != 0 ||
            (ret = set_scalar(ctx, t, "outlierDetection.maxEjectionPercent", o->max_ejection_percent)) != 0 ||
            (ret = set_scalar(ctx, t, "outlierDetection.interval", o->interval)) != 0)
            goto Exit;
    }
    if (tr->circuit_breaker != NULL &&
        ((ret = set_limits(ctx, t, "circuitBreaker", &tr->circuit_breaker->limits)) != 0 ||
         (tr->circuit_breaker->per_endpoint != NULL &&
          (ret = set_limits(ctx, t, "circuitBreaker.perEndpoint", tr->circuit_breaker->per_endpoint)) != 0)))
        goto Exit;
    if ((ret = set_scalar(ctx, t, "requestTimeout", tr->request_timeout)) != 0 ||
        (ret = set_scalar(ctx, t, "idleTimeout", tr->idle_timeout)) != 0)
        goto Exit;
    if (rm_traffic_config_check(t, why, sizeof(why)) != 0)
        ret = rm_config_value_error(ctx, "traffic", "%s", why);
Exit:
    return ret;
}
