/* RequestAuthentication on an inbound request: the JWT check (ringmesh/request_authn.h) before the policy decides,
 * its log line when a token is refused (event "authn": the reason, the peer and the trace, never the token), and
 * what an allowed request carries on to the app: the token header removed unless forwardOriginalToken, the payload
 * (outputPayloadToHeader, base64url) and claims (outputClaimToHeaders). */
#include "conn_trace.h"
#include "proxy_conn-t.h"

#include "ringmesh/jwt_user.h"
#include "ringmesh/log.h"
#include "ringmesh/request_authn.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* The values of the fields set on one forwarded request. The filter copies them before the worker's next request
 * (http_filter.h: they must live until the hook's next call on the same filter; the worker's next call is later). */
#define OUTPUT_MAX (((RM_JWT_USER_TOKEN_MAX + 2) / 3) * 4 + 1)
static __thread char output_buf[OUTPUT_MAX + 4096];

int rm__conn_authn_request(rm_conn_t *c, const struct st_rm_request_authn_cfg_t *cfg, const char *workload,
                           const rm_http_request_t *req, rm_authn_result_t *r)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (rm_request_authn_check(cfg, req, (int64_t)ts.tv_sec, r) != 0) {
        r->outcome = RM_AUTHN_INVALID;
        snprintf(r->reason, sizeof(r->reason), "out of memory");
    }
    if (r->outcome == RM_AUTHN_INVALID) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "authn");
        rm_log_str(&l, "decision", "unauthenticated");
        rm_log_str(&l, "reason", r->reason);
        rm_log_str(&l, "workload", workload);
        rm_log_str(&l, "source_principal", c->mode == RM_CONN_MODE_MTLS ? rm__conn_peer_id(c) : NULL);
        rm_log_addr(&l, "source_ip", (struct sockaddr *)&c->src.ss);
        rm_log_str(&l, "protocol", req->grpc ? "grpc" : req->http2 ? "http2" : "http1");
        rm_log_str(&l, "trace_id", rm_conn_trace_request_id(req));
        rm_log_end(&l);
    }
    return (int)r->outcome;
}

static void set_field(rm_http_decision_t *out, const char *name, const char *value, size_t value_len)
{
    if (out->num_set >= RM_HTTP_MAX_SET_HEADERS)
        return;
    out->set[out->num_set].name = name;
    out->set[out->num_set].name_len = strlen(name);
    out->set[out->num_set].value = value;
    out->set[out->num_set].value_len = value_len;
    out->num_set++;
}

/* A header name as the filter wants it: lower case, in buf. */
static const char *lower(char *buf, size_t len, const char *s)
{
    size_t i = 0;
    for (; s[i] != '\0' && i + 1 < len; i++)
        buf[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    buf[i] = '\0';
    return buf;
}

void rm__conn_authn_outputs(const rm_authn_result_t *r, rm_http_decision_t *out)
{
    const rm_jwt_rule_t *rule = r->rule->rule;
    size_t o = 0;
    static __thread char names[RM_HTTP_MAX_SET_HEADERS][128];
    size_t ni = 0;

    if (!rule->forward_original_token && r->token_header != NULL && ni < RM_HTTP_MAX_SET_HEADERS)
        set_field(out, lower(names[ni++], sizeof(names[0]), r->token_header), NULL, 0);
    if (rule->output_payload_to_header != NULL && ni < RM_HTTP_MAX_SET_HEADERS) {
        /* the payload as the token carries it: its second part, already base64url */
        const char *p = memchr(r->token_text, '.', r->token_len), *end = r->token_text + r->token_len;
        const char *q = p != NULL ? memchr(p + 1, '.', (size_t)(end - p - 1)) : NULL;
        if (q != NULL && (size_t)(q - p - 1) < sizeof(output_buf) - o) {
            memcpy(output_buf + o, p + 1, (size_t)(q - p - 1));
            set_field(out, lower(names[ni++], sizeof(names[0]), rule->output_payload_to_header), output_buf + o,
                      (size_t)(q - p - 1));
            o += (size_t)(q - p - 1);
        }
    }
    for (size_t i = 0; i < rule->num_output_claim_to_headers && ni < RM_HTTP_MAX_SET_HEADERS; i++) {
        int n = rm_authn_claim_text(r, rule->output_claim_to_headers[i].claim, output_buf + o, sizeof(output_buf) - o);
        if (n < 0)
            continue;
        set_field(out, lower(names[ni++], sizeof(names[0]), rule->output_claim_to_headers[i].header), output_buf + o,
                  (size_t)n);
        o += (size_t)n + 1;
    }
}
