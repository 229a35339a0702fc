/* What the injector's files share and its unit tests reach: value checks, the pod's annotations read and validated,
 * the probe rewriting. Not part of the contract of inject.h. */
#ifndef RINGMESH_CONTROL_INJECT_INTERNAL_H
#define RINGMESH_CONTROL_INJECT_INTERNAL_H

#include <jansson.h>
#include <stddef.h>

#include "inject.h"

#ifndef RM_INJECT_DEFAULT_TAG
#define RM_INJECT_DEFAULT_TAG "latest"
#endif

/** A Kubernetes quantity ("100m", "0.5", "64Mi", "1e3", "2G"), not negative. Sets *value. Returns 0 or -1. */
int rm__inject_parse_quantity(const char *s, double *value);

/** A ResourceRequirements whose every limit is at least its request. Returns 0, or -1 with the reason in msg. */
int rm__inject_check_resources(const json_t *res, char *msg, size_t len);

/** "HOST:PORT" with a DNS name or an IP literal ("[v6]:port"). Returns 0 or -1. */
int rm__inject_check_host_port(const char *s);

/** The pod's ringmesh.io annotations, validated. Strings point into the pod's JSON. */
typedef struct st_rm_inject_annotations_t {
    const char *inject;                 /* "true", "false" or NULL (absent) */
    const char *exclude_inbound_ports;  /* a validated list, or NULL */
    const char *exclude_outbound_ports; /* ... */
    const char *exclude_outbound_ip_ranges;
    const char *include_inbound_ports; /* a list of ports, or "*" */
    const char *proxy_log_level;
    const char *proxy_cpu, *proxy_memory;
    int native_sidecar;     /* -1 absent, else 0 or 1 */
    int rewrite_app_probes; /* -1 absent, else 0 or 1 */
} rm_inject_annotations_t;

/** Reads ringmesh.io/inject only: the pod label if present (it wins), else the annotation. Returns 0, or -EINVAL
 *  with the sentence naming the label or annotation and the value in msg. */
int rm__inject_read_inject_annotation(const json_t *annotations, const json_t *labels, const char **value, char *msg,
                                      size_t len);

/** Reads and validates every annotation of the table in docs/injection.md (`annotations` may be NULL). Returns 0,
 *  or -EINVAL with "annotation ringmesh.io/NAME: "VALUE" is not ..." in msg. An unknown ringmesh.io/ annotation is
 *  not an error: it is named in `warning` (when that is still empty), since it may be a misspelling. */
int rm__inject_read_annotations(const json_t *annotations, rm_inject_annotations_t *a, char *msg, size_t len,
                                char *warning, size_t wlen);

/** Rewrites the httpGet, tcpSocket and grpc probes of the app containers of `spec` (containers[] only) to the
 *  proxy's admin port at /app-health/NAME/livez|readyz|startupz, and adds the originals to `probers` (a JSON
 *  object), named ports resolved. A probe whose named port no container port has is left as it is and named in
 *  `warning` (when still empty). Returns the number of probes rewritten, or -ENOMEM. */
int rm__inject_rewrite_probes(json_t *spec, json_t *probers, char *warning, size_t wlen);

#endif
