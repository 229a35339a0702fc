/* The proxy's knobs for requests to in-mesh services: the retry budget, the retry defaults a route does not
 * override, outlier detection, circuit breaking limits and request timeouts. They live in the proxy file under
 * `traffic:` (docs/proxy-config.md, docs/traffic-management.md); every value has a default, so an absent section is
 * a working configuration.
 *
 * The proxy's configuration reader keeps each key's text as written and hands it here, one key at a time, with the
 * key's path below `traffic:` ("outlierDetection.baseEjectionTime"); a refusal says why in a sentence that the
 * reader prefixes with the file, line and field. Nothing here allocates. */
#ifndef RINGMESH_TRAFFIC_CONFIG_H
#define RINGMESH_TRAFFIC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define RM_RETRY_CODES_MAX 16u /* HTTP statuses in the retry defaults */

/** The retry budget (Linkerd's): retries may add `ratio_permille`/1000 of the requests of the last `window_ms`,
 *  plus `min_per_second` retries per second whatever the traffic. */
typedef struct st_rm_retry_budget_config_t {
    uint32_t ratio_permille; /* 200 = 0.2 */
    uint32_t min_per_second; /* 10 */
    uint32_t window_ms;      /* 10000; 1000..60000 */
} rm_retry_budget_config_t;

/** What is retried when the route's rule has no `retry` (and the parts of it a rule leaves out). */
typedef struct st_rm_retry_config_t {
    uint32_t attempts;                  /* retries after the first try; 2 */
    uint32_t codes[RM_RETRY_CODES_MAX]; /* HTTP statuses retried; {503} */
    size_t num_codes;
    uint32_t grpc_statuses;  /* bit n: grpc-status n is retried; 1 << 14 (UNAVAILABLE) */
    uint32_t backoff_ms;     /* base interval of the exponential backoff; 25 */
    uint32_t max_backoff_ms; /* ceiling of one wait; 250 (10 x the base when not set) */
    uint32_t buffer_limit;   /* request body bytes kept for a retry; 65536 */
} rm_retry_config_t;

/** Outlier detection (Envoy's consecutive failures). 0 turns a detector off. */
typedef struct st_rm_outlier_config_t {
    uint32_t consecutive_5xx;      /* 5 */
    uint32_t consecutive_gateway;  /* 0 (off, as Envoy and Istio) */
    uint32_t base_ejection_ms;     /* 30000 */
    uint32_t max_ejection_ms;      /* 300000 */
    uint32_t max_ejection_percent; /* 10; at least one endpoint of two or more may be ejected */
    uint32_t interval_ms;          /* 10000: one healthy interval forgives one past ejection */
} rm_outlier_config_t;

/** Circuit breaking limits; 0 is "no limit". */
typedef struct st_rm_circuit_limits_t {
    uint32_t max_connections;
    uint32_t max_pending;  /* requests waiting for a connection or a stream */
    uint32_t max_requests; /* requests in flight */
    uint32_t max_retries;  /* retries in flight */
} rm_circuit_limits_t;

typedef struct st_rm_traffic_config_t {
    rm_retry_budget_config_t budget;
    rm_retry_config_t retry;
    rm_outlier_config_t outlier;
    rm_circuit_limits_t destination; /* per destination service, the whole proxy: 1024 each */
    rm_circuit_limits_t endpoint;    /* per endpoint: 1024 connections, 1024 pending, no limit on the others */
    uint32_t request_timeout_ms;     /* when the rule sets no timeouts.request; 0: none */
    uint32_t idle_timeout_ms;        /* a request with nothing received either way for this long ends; 300000 */
} rm_traffic_config_t;

/** Fills `cfg` with the defaults above. */
void rm_traffic_config_defaults(rm_traffic_config_t *cfg);

/** Sets one scalar key below `traffic:` from its text: retryBudget.{ratio,minRetriesPerSecond,window},
 *  retry.{attempts,backoff,maxBackoff,bufferLimit}, outlierDetection.{consecutive5xxErrors,
 *  consecutiveGatewayErrors,baseEjectionTime,maxEjectionTime,maxEjectionPercent,interval},
 *  circuitBreaker.{maxConnections,maxPendingRequests,maxRequests,maxRetries} (per destination) and the same under
 *  circuitBreaker.perEndpoint, requestTimeout, idleTimeout. Returns 0, or RM_ERR_CONFIG_VALUE with a reason in
 *  why[0..why_len) (a key this function does not know is also refused: "not a traffic setting"). */
int rm_traffic_config_set(rm_traffic_config_t *cfg, const char *key, const char *value, char *why, size_t why_len);

/** Sets a list key: retry.codes (HTTP statuses 400..599) or retry.grpcStatuses (names as Istio's retryOn writes them:
 *  cancelled, deadline-exceeded, internal, resource-exhausted, unavailable; or numbers 1..16). The list replaces the
 *  default; an empty list retries none. Same returns. */
int rm_traffic_config_set_list(rm_traffic_config_t *cfg, const char *key, const char *const *values, size_t num,
                               char *why, size_t why_len);

/** Checks across keys (maxBackoff not below backoff, maxEjectionTime not below baseEjectionTime). Same returns; the
 *  reason names the keys. */
int rm_traffic_config_check(const rm_traffic_config_t *cfg, char *why, size_t why_len);

/** One worker's share of limits for `workers` threads (each worker counts alone, without locks): each nonzero limit
 *  divided by workers, rounded up. */
void rm_circuit_limits_per_worker(const rm_circuit_limits_t *in, unsigned workers, rm_circuit_limits_t *out);

#endif
