/* The app's own Kubernetes probes, run by the proxy: GET /app-health/<container>/livez|readyz|startupz on the admin
 * port.
 *
 * Under STRICT mTLS the kubelet (plaintext, no SVID) cannot reach the app's ports, so the injector rewrites the app
 * containers' httpGet, tcpSocket and grpc probes to these paths on the admin port and keeps the originals in the
 * proxy's environment, RINGMESH_APP_PROBERS: a JSON object from path to the original probe handler as in the Pod
 * spec, plus timeoutSeconds:
 *
 *   {"/app-health/web/readyz": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP",
 *                                           "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
 *                               "timeoutSeconds": 2},
 *    "/app-health/web/livez":  {"tcpSocket": {"port": 8080}, "timeoutSeconds": 1},
 *    "/app-health/web/startupz": {"grpc": {"port": 9090, "service": "web"}, "timeoutSeconds": 1}}
 *
 * The proxy runs the original probe as the kubelet does, from its own UID (which the pod's capture rules leave
 * alone), against the pod's IP ($RINGMESH_POD_IP; 127.0.0.1 when unset) unless httpGet/tcpSocket name a host:
 * httpGet succeeds on a status 200..399 (HTTPS without verifying the certificate), tcpSocket when the connection
 * opens, grpc when grpc.health.v1.Health/Check over HTTP/2 cleartext answers SERVING. The answer is 200 or 503 with
 * a one-line body saying why; a path not in the table is 404.
 *
 * Probes run on prober threads of their own, never on a worker's event loop: the admin server hands the accepted
 * connection over and forgets it. There is one thread per probe path and one more, up to RM_APP_HEALTH_THREADS.
 * The kubelet runs each probe of a pod in turn, one request at a time; at most RM_APP_HEALTH_PER_PROBE requests
 * for one path wait or run at once, and more are answered 503 at once, so that a probe that hangs until its timeout,
 * or a client that floods one path, delays no other probe. A probe's timeout counts from when the request arrived,
 * waiting included, as the kubelet's own timeout does. Failures are logged (app_probe_failed), at most one
 * line per probe path every RM_APP_HEALTH_LOG_INTERVAL_MS, with the count of those left out. */
#ifndef RINGMESH_APP_HEALTH_H
#define RINGMESH_APP_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#define RM_APP_HEALTH_ENV             "RINGMESH_APP_PROBERS"
#define RM_APP_HEALTH_PREFIX          "/app-health/"
#define RM_APP_HEALTH_THREADS         8 /* at most; one per probe path below that */
#define RM_APP_HEALTH_PER_PROBE       2
#define RM_APP_HEALTH_MAX_PROBES      256
#define RM_APP_HEALTH_LOG_INTERVAL_MS 30000
#define RM_APP_HEALTH_MAX_HEADERS     16

typedef enum { RM_APP_PROBE_HTTP = 0, RM_APP_PROBE_TCP, RM_APP_PROBE_GRPC } rm_app_probe_kind_t;

/** One original probe, as parsed from RINGMESH_APP_PROBERS. */
typedef struct st_rm_app_probe_t {
    char *key;       /* "/app-health/<container>/<livez|readyz|startupz>" */
    char *container; /* <container> */
    char *name;      /* livez, readyz or startupz */
    rm_app_probe_kind_t kind;
    char *host; /* httpGet.host / tcpSocket.host; NULL: the pod's IP */
    uint16_t port;
    int https;     /* httpGet.scheme HTTPS */
    char *path;    /* httpGet.path, "/" when absent */
    char *service; /* grpc.service, "" when absent */
    char *header_names[RM_APP_HEALTH_MAX_HEADERS], *header_values[RM_APP_HEALTH_MAX_HEADERS];
    size_t num_headers;
    unsigned timeout_s; /* timeoutSeconds, 1 when absent (the kubelet's default) */
} rm_app_probe_t;

/** The parsed table. */
typedef struct st_rm_app_probes_t {
    rm_app_probe_t *probes;
    size_t num_probes;
} rm_app_probes_t;

/** Parses the JSON text of variable `var` (named in messages) into `out`. Returns 0, or RM_ERR_CONFIG_PARSE (not
 *  JSON, or not an object) / RM_ERR_CONFIG_VALUE (a key or a probe the proxy cannot run) with a message naming the
 *  variable, the key and the field in `err`; nothing is allocated then. */
int rm_app_probes_parse(const char *var, const char *json, rm_app_probes_t *out, char *err, size_t errlen);

/** Frees what rm_app_probes_parse() filled. */
void rm_app_probes_dispose(rm_app_probes_t *t);

/** The probe for `path` (no query string), or NULL. */
const rm_app_probe_t *rm_app_probes_find(const rm_app_probes_t *t, const char *path);

/** Runs one probe against `default_host` (a numeric address) unless it names its own host, until its timeout
 *  counted from `start_ms` (CLOCK_MONOTONIC milliseconds; 0: now). Returns 1 when it passed, 0 when it failed,
 *  with a short reason in `why` either way (the status code, "connected", "SERVING", or what went wrong). Blocks
 *  the calling thread; touches no shared state. */
int rm_app_probe_run(const rm_app_probe_t *p, const char *default_host, uint64_t start_ms, char *why, size_t whylen);

typedef struct st_rm_app_health_t rm_app_health_t;

/** Reads RINGMESH_APP_PROBERS. Unset or empty: *out is NULL and 0 is returned (every /app-health path is then
 *  404). Otherwise parses it and starts the prober threads (call with the signals the workers block already
 *  blocked). Returns 0 or an error with its message in `err`. */
int rm_app_health_start(rm_app_health_t **out, char *err, size_t errlen);

#define RM_APP_HEALTH_STOP_WAIT_S 1

/** Stops the prober threads and frees everything; queued requests are answered 503. A probe still running after
 *  RM_APP_HEALTH_STOP_WAIT_S seconds is left running and nothing is freed (call only on the way to exit). NULL is
 *  fine. */
void rm_app_health_stop(rm_app_health_t *ah);

/** What the admin server does with GET/HEAD `path` under /app-health/ on connection `fd`:
 *  RM_APP_HEALTH_TAKEN: the prober owns `fd` now (it answers and closes it); any other value: the caller still
 *  owns `fd` and answers with that status (404 not in the table, 503 when RM_APP_HEALTH_PER_PROBE requests for
 *  that path are already waiting or running). `ah` may
 *  be NULL (404). */
#define RM_APP_HEALTH_TAKEN 0
int rm_app_health_submit(rm_app_health_t *ah, const char *path, int head, int fd);

/** Appends ringmesh_proxy_app_probes_total{container,probe,handler,result} to the Prometheus text in buf at offset
 *  `o` (rm_textf's contract); nothing when `ah` is NULL. Takes the probers' lock for a moment. */
size_t rm_app_health_metrics(rm_app_health_t *ah, char *buf, size_t len, size_t o);

#endif
