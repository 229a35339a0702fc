/* The proxy's traffic knobs (ringmesh/traffic_config.h): defaults, and one key's text converted and checked. */
#include "ringmesh/traffic_config.h"

#include "ringmesh/duration.h"
#include "ringmesh/error.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rm_traffic_config_defaults(rm_traffic_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->budget = (rm_retry_budget_config_t){.ratio_permille = 200, .min_per_second = 10, .window_ms = 10000};
    cfg->retry = (rm_retry_config_t){.attempts = 2,
                                     .codes = {503},
                                     .num_codes = 1,
                                     .grpc_statuses = 1u << 14,
                                     .backoff_ms = 25,
                                     .max_backoff_ms = 250,
                                     .buffer_limit = 65536};
    cfg->outlier = (rm_outlier_config_t){.consecutive_5xx = 5,
                                         .consecutive_gateway = 0,
                                         .base_ejection_ms = 30000,
                                         .max_ejection_ms = 300000,
                                         .max_ejection_percent = 10,
                                         .interval_ms = 10000};
    cfg->destination =
        (rm_circuit_limits_t){.max_connections = 1024, .max_pending = 1024, .max_requests = 1024, .max_retries = 1024};
    cfg->endpoint = (rm_circuit_limits_t){.max_connections = 1024, .max_pending = 1024};
    cfg->request_timeout_ms = 0;
    cfg->idle_timeout_ms = 300000;
}

static int fail(char *why, size_t why_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;
    if (why_len > 0) {
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return RM_ERR_CONFIG_VALUE;
}

/* A decimal integer in [min, max], digits only. */
static int parse_uint(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;
    if (s == NULL || *s == '\0')
        return -1;
    for (const char *c = s; *c != '\0'; c++) {
        if (*c < '0' || *c > '9' || (v = v * 10 + (uint64_t)(*c - '0')) > max)
            return -1;
    }
    if (v < min)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* A ratio in [0, 1] with at most three decimals ("0.2", "1", "0.125") into permille. */
static int parse_ratio(const char *s, uint32_t *permille)
{
    uint32_t whole = 0, frac = 0, scale = 100;
    const char *c = s;
    if (*c < '0' || *c > '9')
        return -1;
    for (; *c >= '0' && *c <= '9'; c++)
        if ((whole = whole * 10 + (uint32_t)(*c - '0')) > 1)
            return -1;
    if (*c == '.') {
        if (c[1] == '\0')
            return -1;
        for (c++; *c >= '0' && *c <= '9'; c++) {
            if (scale == 0)
                return -1;
            frac += (uint32_t)(*c - '0') * scale;
            scale /= 10;
        }
    }
    if (*c != '\0' || whole * 1000 + frac > 1000)
        return -1;
    *permille = whole * 1000 + frac;
    return 0;
}

typedef enum { K_UINT, K_DURATION, K_RATIO } kind_t;

typedef struct st_key_t {
    const char *name;
    kind_t kind;
    size_t offset;
    uint32_t min, max;
    const char *want;
} key_t_;

#define F(m) offsetof(rm_traffic_config_t, m)
#define C(m) offsetof(rm_circuit_limits_t, m)
#define CIRCUIT_KEYS(prefix, base)                                                                                       \
    {prefix "maxConnections", K_UINT, (base) + C(max_connections), 0, 1000000, "a number 0..1000000 (0: no limit)"},     \
        {prefix "maxPendingRequests", K_UINT, (base) + C(max_pending), 0, 1000000, "a number 0..1000000 (0: no limit)"}, \
        {prefix "maxRequests", K_UINT, (base) + C(max_requests), 0, 1000000, "a number 0..1000000 (0: no limit)"},       \
    {                                                                                                                    \
        prefix "maxRetries", K_UINT, (base) + C(max_retries), 0, 1000000, "a number 0..1000000 (0: no limit)"            \
    }

static const key_t_ keys[] = {
    {"retryBudget.ratio", K_RATIO, F(budget.ratio_permille), 0, 1000, "a ratio 0..1 with at most 3 decimals"},
    {"retryBudget.minRetriesPerSecond", K_UINT, F(budget.min_per_second), 0, 100000, "a number 0..100000"},
    {"retryBudget.window", K_DURATION, F(budget.window_ms), 1000, 60000, "a duration 1s..60s"},
    {"retry.attempts", K_UINT, F(retry.attempts), 0, 10, "a number 0..10"},
    {"retry.backoff", K_DURATION, F(retry.backoff_ms), 1, 60000, "a duration 1ms..60s"},
    {"retry.maxBackoff", K_DURATION, F(retry.max_backoff_ms), 1, 600000, "a duration 1ms..10m"},
    {"retry.bufferLimit", K_UINT, F(retry.buffer_limit), 0, 16777216, "a number of bytes 0..16777216"},
    {"outlierDetection.consecutive5xxErrors", K_UINT, F(outlier.consecutive_5xx), 0, 1000, "a number 0..1000 (0: off)"},
    {"outlierDetection.consecutiveGatewayErrors", K_UINT, F(outlier.consecutive_gateway), 0, 1000,
     "a number 0..1000 (0: off)"},
    {"outlierDetection.baseEjectionTime", K_DURATION, F(outlier.base_ejection_ms), 1, 86400000, "a duration 1ms..24h"},
    {"outlierDetection.maxEjectionTime", K_DURATION, F(outlier.max_ejection_ms), 1, 86400000, "a duration 1ms..24h"},
    {"outlierDetection.maxEjectionPercent", K_UINT, F(outlier.max_ejection_percent), 0, 100, "a percentage 0..100"},
    {"outlierDetection.interval", K_DURATION, F(outlier.interval_ms), 1, 86400000, "a duration 1ms..24h"},
    CIRCUIT_KEYS("circuitBreaker.", F(destination)),
    CIRCUIT_KEYS("circuitBreaker.perEndpoint.", F(endpoint)),
    {"requestTimeout", K_DURATION, F(request_timeout_ms), 0, 86400000, "a duration up to 24h (0: none)"},
    {"idleTimeout", K_DURATION, F(idle_timeout_ms), 0, 86400000, "a duration up to 24h (0: none)"},
};

int rm_traffic_config_set(rm_traffic_config_t *cfg, const char *key, const char *value, char *why, size_t why_len)
{
    uint32_t v = 0;
    int ok;

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const key_t_ *k = &keys[i];
        if (strcmp(k->name, key) != 0)
            continue;
        switch (k->kind) {
        case K_UINT:
            ok = parse_uint(value, k->min, k->max, &v) == 0;
            break;
        case K_RATIO:
            ok = parse_ratio(value, &v) == 0;
            break;
        default:
            ok = rm_duration_parse_ms(value, &v) == 0 && v >= k->min && v <= k->max;
            break;
        }
        if (!ok)
            return fail(why, why_len, "\"%s\" is not %s", value, k->want);
        memcpy((char *)cfg + k->offset, &v, sizeof(v));
        return 0;
    }
    return fail(why, why_len, "%s is not a traffic setting", key);
}

static const struct {
    const char *name;
    unsigned code;
} grpc_names[] = {
    {"cancelled", 1}, {"deadline-exceeded", 4}, {"resource-exhausted", 8}, {"internal", 13}, {"unavailable", 14},
};

int rm_traffic_config_set_list(rm_traffic_config_t *cfg, const char *key, const char *const *values, size_t num,
                               char *why, size_t why_len)
{
    if (strcmp(key, "retry.codes") == 0) {
        if (num > RM_RETRY_CODES_MAX)
            return fail(why, why_len, "at most %u statuses", RM_RETRY_CODES_MAX);
        uint32_t codes[RM_RETRY_CODES_MAX];
        for (size_t i = 0; i < num; i++)
            if (parse_uint(values[i], 400, 599, &codes[i]) != 0)
                return fail(why, why_len, "[%zu] \"%s\" is not an HTTP status 400..599", i, values[i]);
        if (num > 0)
            memcpy(cfg->retry.codes, codes, num * sizeof(codes[0]));
        cfg->retry.num_codes = num;
        return 0;
    }
    if (strcmp(key, "retry.grpcStatuses") == 0) {
        uint32_t mask = 0, code;
        for (size_t i = 0; i < num; i++) {
            size_t k;
            for (k = 0; k < sizeof(grpc_names) / sizeof(grpc_names[0]); k++)
                if (strcmp(values[i], grpc_names[k].name) == 0)
                    break;
            if (k < sizeof(grpc_names) / sizeof(grpc_names[0]))
                code = grpc_names[k].code;
            else if (parse_uint(values[i], 1, 16, &code) != 0)
                return fail(why, why_len,
                            "[%zu] \"%s\" is not a gRPC status (cancelled, deadline-exceeded, internal, "
                            "resource-exhausted, unavailable, or a number 1..16)",
                            i, values[i]);
            mask |= 1u << code;
        }
        cfg->retry.grpc_statuses = mask;
        return 0;
    }
    return fail(why, why_len, "%s is not a traffic list setting", key);
}

int rm_traffic_config_check(const rm_traffic_config_t *cfg, char *why, size_t why_len)
{
    if (cfg->retry.max_backoff_ms < cfg->retry.backoff_ms)
        return fail(why, why_len, "retry.maxBackoff (%ums) is shorter than retry.backoff (%ums)",
                    cfg->retry.max_backoff_ms, cfg->retry.backoff_ms);
    if (cfg->outlier.max_ejection_ms < cfg->outlier.base_ejection_ms)
        return fail(why, why_len,
                    "outlierDetection.maxEjectionTime (%ums) is shorter than outlierDetection.baseEjectionTime (%ums)",
                    cfg->outlier.max_ejection_ms, cfg->outlier.base_ejection_ms);
    return 0;
}

void rm_circuit_limits_per_worker(const rm_circuit_limits_t *in, unsigned workers, rm_circuit_limits_t *out)
{
    uint32_t v[4] = {in->max_connections, in->max_pending, in->max_requests, in->max_retries};
    if (workers == 0)
        workers = 1;
    for (size_t i = 0; i < 4; i++)
        if (v[i] != 0)
            v[i] = (v[i] + workers - 1) / workers;
    *out =
        (rm_circuit_limits_t){.max_connections = v[0], .max_pending = v[1], .max_requests = v[2], .max_retries = v[3]};
}
