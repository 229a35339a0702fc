/* ringmesh-control's monitoring port (default 15014): GET /metrics (Prometheus text format), /healthz/live and
 * /healthz/ready. One thread, one request per connection (Connection: close), requests parsed with http-parser;
 * nothing on it can change the control plane's state. */
#ifndef RINGMESH_CONTROL_ADMIN_HTTP_H
#define RINGMESH_CONTROL_ADMIN_HTTP_H

#include <stddef.h>

typedef struct st_rm_admin_http_t rm_admin_http_t;

/** Writes the metrics exposition into buf (at most len bytes) and returns its length. Called on the admin thread. */
typedef size_t (*rm_admin_metrics_cb)(void *arg, char *buf, size_t len);
/** Returns nonzero when the control plane is ready to serve. */
typedef int (*rm_admin_ready_cb)(void *arg);

/** Listens on `addr` ("ip:port", "[ip6]:port") and starts the thread. Returns 0 or -errno with a sentence in err. */
int rm_admin_http_start(const char *addr, rm_admin_metrics_cb metrics, rm_admin_ready_cb ready, void *arg,
                        rm_admin_http_t **out, char *err, size_t errlen);

/** Stops the thread and closes the socket. NULL is fine. */
void rm_admin_http_stop(rm_admin_http_t *a);

/** Parses "ip:port" or "[ip6]:port" into a socket address. Returns 0 or -EINVAL. */
struct sockaddr_storage;
int rm__control_parse_addr(const char *s, struct sockaddr_storage *ss, unsigned *len);

#endif
