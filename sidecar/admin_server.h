/* The proxy's admin port (default 127.0.0.1:15021), served by libmicrohttpd on its own thread:
 *   GET  /healthz/live     200 while the process runs
 *   GET  /healthz/ready    200 once listeners are up, 503 while draining
 *   GET  /metrics          Prometheus text exposition of the workers' counters
 *   POST /drain            stop accepting, let open connections finish (up to drainTimeout), then exit
 *   POST /quitquitquit     exit now, cutting open connections */
#ifndef RINGMESH_ADMIN_SERVER_H
#define RINGMESH_ADMIN_SERVER_H

#include "proxy.h"

typedef struct st_rm_admin_server_t rm_admin_server_t;

/** Starts serving on `addr`. Returns 0 or negative errno (logged with the address). */
int rm_admin_server_start(rm_admin_server_t **out, rm_proxy_t *proxy, const rm_sockaddr_t *addr);
void rm_admin_server_stop(rm_admin_server_t *s);

/** Writes the Prometheus exposition into buf; returns its length (truncated at len). */
size_t rm_admin_metrics(rm_proxy_t *proxy, char *buf, size_t len);

#endif
