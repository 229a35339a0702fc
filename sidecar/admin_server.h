/* The proxy's admin port (default 127.0.0.1:15021; 0.0.0.0:15021 in a pod, for the kubelet), served on worker 0's
 * event loop; requests are parsed with Debian's http-parser. Endpoints:
 *   GET  /healthz/live     200 while the process runs
 *   GET  /healthz/ready    200 once listeners are up, 503 while draining
 *   GET  /metrics          the workers' counters and Istio's standard metrics: Prometheus text 0.0.4, or
 *                          OpenMetrics 1.0 when the Accept header asks for application/openmetrics-text
 *   GET  /app-health/<container>/livez|readyz|startupz   the app's own probe, run by a prober thread (app_health.h)
 *   GET  /config_dump      the configuration in force as JSON: SVID, control-plane versions, destinations
 *   POST /drain            stop accepting, let open connections finish (up to drainTimeout), then exit 0
 *   POST /quitquitquit     exit 0 now, cutting open connections (a Job's app is done: the classic sidecar stops)
 * From a peer that is not loopback only GET/HEAD of /healthz/..., /metrics and /app-health/... are served; anything
 * else is 403 and logged (admin_refused) with the peer.
 * A request must arrive whole within 5 seconds and fit in 4 KiB; one request per connection. */
#ifndef RINGMESH_ADMIN_SERVER_H
#define RINGMESH_ADMIN_SERVER_H

#include "proxy.h"

/** Takes over an accepted admin connection. Closes it on any failure. */
void rm__admin_accepted(rm_worker_t *w, int fd);
/** Closes admin connections past their deadline, or all of them when `all` is set. */
void rm__admin_tick(rm_worker_t *w, uint64_t now_ms, int all);

/** Writes the configuration in force as one JSON object into buf; returns its length (len - 1 or more when cut). */
size_t rm_admin_config_dump(rm_proxy_t *proxy, char *buf, size_t len);

/** Writes the Prometheus exposition into buf; returns its length (truncated at len). */
size_t rm_admin_metrics(rm_proxy_t *proxy, char *buf, size_t len);

#endif
