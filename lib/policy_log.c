/* The fields of a decision log line. One function for the proxy and ringmeshctl, so the line a team reads in
 * `kubectl logs` has the same shape as what `ringmeshctl policy check -o json` prints. */
#include "ringmesh/http_path.h"
#include "ringmesh/log.h"
#include "ringmesh/policy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void rm_authz_log_ip(rm_log_line_t *l, const char *key, const uint8_t ip[16])
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char buf[INET6_ADDRSTRLEN];
    if (memcmp(ip, v4mapped, 12) == 0)
        inet_ntop(AF_INET, ip + 12, buf, sizeof(buf));
    else
        inet_ntop(AF_INET6, ip, buf, sizeof(buf));
    rm_log_str(l, key, buf);
}

static void log_policy(rm_log_line_t *l, const char *key, const rm_authz_policy_t *p)
{
    char buf[600];
    snprintf(buf, sizeof(buf), "%s/%s", p->namespace_, p->name);
    rm_log_str(l, key, buf);
}

/* The trace ID of a W3C traceparent ("00-<32 hex>-<16 hex>-<2 hex>"), else of B3's x-b3-traceid. */
static void log_trace_id(rm_log_line_t *l, const rm_http_request_t *r)
{
    for (size_t i = 0; i < r->num_headers; i++) {
        const rm_http_header_t *h = &r->headers[i];
        if (h->name_len == 11 && strncasecmp(h->name, "traceparent", 11) == 0 && h->value_len >= 55 &&
            h->value[2] == '-' && h->value[35] == '-') {
            rm_log_strn(l, "trace_id", h->value + 3, 32);
            return;
        }
    }
    for (size_t i = 0; i < r->num_headers; i++) {
        const rm_http_header_t *h = &r->headers[i];
        if (h->name_len == 12 && strncasecmp(h->name, "x-b3-traceid", 12) == 0 && h->value_len <= 32) {
            rm_log_strn(l, "trace_id", h->value, h->value_len);
            return;
        }
    }
}

void rm_authz_log_path(rm_log_line_t *l, const char *key, const char *path, size_t len)
{
    char buf[4096];
    if (path == NULL || memchr(path, '?', len) == NULL) {
        rm_log_strn(l, key, path, len);
        return;
    }
    size_t n = rm_http_target_redact(path, len, buf, sizeof(buf));
    rm_log_strn(l, key, buf, n);
}

void rm_authz_log_fields(rm_log_line_t *l, const rm_authz_decision_t *d, const rm_authz_attrs_t *a,
                         const char *workload)
{
    char why[1024];
    rm_log_str(l, "decision", rm_authz_decision_word(d));
    if (d->policy != NULL) {
        log_policy(l, "policy", d->policy);
        rm_log_int(l, "rule", d->rule);
        rm_log_str(l, "action", rm_authz_action_name(d->policy->action));
    } else {
        rm_log_str(l, "policy", NULL);
    }
    rm_log_str(l, "reason",
               d->reason == RM_AUTHZ_REASON_POLICY ? (d->allow ? "allowed by policy" : "denied by policy")
                                                   : rm_authz_reason_word(d->reason));
    if (d->reason == RM_AUTHZ_REASON_HEADER_TOO_LONG && d->header != NULL)
        rm_log_str(l, "header", d->header);
    rm_authz_decision_explain(d, why, sizeof(why));
    if (d->reason == RM_AUTHZ_REASON_NO_ALLOW_MATCH && d->miss_policy != NULL) {
        size_t n = strlen(why);
        if (n + 20 < sizeof(why)) {
            memcpy(why + n, "; closest miss: ", 17);
            rm_authz_closest_miss_explain(d, a, why + n + 16, sizeof(why) - n - 16);
        }
    }
    rm_log_str(l, "explanation", why);
    if (d->reason == RM_AUTHZ_REASON_NO_ALLOW_MATCH && d->miss_policy != NULL)
        rm_authz_log_closest_miss(l, d, a);
    if (d->dry_run_differs) {
        rm_log_str(l, "dry_run_decision", d->dry_run_allow ? "would-allow" : "would-deny");
        if (d->dry_run_policy != NULL)
            log_policy(l, "dry_run_policy", d->dry_run_policy);
        if (d->dry_run_rule >= 0)
            rm_log_int(l, "dry_run_rule", d->dry_run_rule);
    }
    if (d->audit_policy != NULL) {
        log_policy(l, "audit_policy", d->audit_policy);
        rm_log_int(l, "audit_rule", d->audit_rule);
    }
    rm_log_str(l, "source_principal", a->principal);
    if (a->principal != NULL) {
        const char *ns = strstr(a->principal, "/ns/");
        if (ns != NULL) {
            ns += 4;
            const char *end = strchr(ns, '/');
            rm_log_strn(l, "source_namespace", ns, end != NULL ? (size_t)(end - ns) : strlen(ns));
        }
    }
    if (a->have_source_ip)
        rm_authz_log_ip(l, "source_ip", a->source_ip);
    if (d->have_remote_ip) /* remote.ip read from X-Forwarded-For (numTrustedProxies) */
        rm_authz_log_ip(l, "remote_ip", d->remote_ip);
    if (workload != NULL)
        rm_log_str(l, "destination_workload", workload);
    if (a->have_destination_ip)
        rm_authz_log_ip(l, "destination_ip", a->destination_ip);
    rm_log_uint(l, "destination_port", a->destination_port);
    if (a->sni != NULL)
        rm_log_str(l, "sni", a->sni);
    if (a->http == NULL) {
        rm_log_str(l, "protocol", "tcp");
        return;
    }
    const rm_http_request_t *r = a->http;
    rm_log_str(l, "protocol", r->grpc ? "grpc" : r->http2 ? "http2" : "http1");
    rm_log_strn(l, "method", r->method, r->method_len);
    rm_authz_log_path(l, "path", r->path, r->path_len);
    if (r->host != NULL)
        rm_log_strn(l, "host", r->host, r->host_len);
    if (a->trace_id != NULL)
        rm_log_str(l, "trace_id", a->trace_id);
    else
        log_trace_id(l, r);
}
