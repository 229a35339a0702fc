/* The L4 decision of an inbound connection: the attributes a policy sees, the decision and its log, and, when the
 * policies have HTTP rules, the choice of the filter (conn_filter.h) that decides request by request, told from the
 * client's first bytes. */
#include "conn_addr.h"
#include "conn_observe.h"
#include "conn_trace.h"
#include "proxy_conn-t.h"

#include "ringmesh/request_authn.h"

#include <stdint.h>
#include <string.h>

/* The app's first bytes are, or begin, an HTTP/2 server preface: a SETTINGS frame (9-byte header: type 4, flags 0,
 * stream 0). An HTTP/2 server sends it as soon as it accepts, and its client speaks first anyway (the connection
 * preface): that is no server-first protocol. */
int rm__conn_app_sent_h2_settings(const rm_pipe_t *u2d)
{
    static const uint8_t settings_tail[6] = {0x04, 0, 0, 0, 0, 0}; /* type, flags, stream 0 */
    if (u2d->src_eof || u2d->buf == NULL || u2d->len == 0)
        return 0;
    const uint8_t *a = u2d->buf + u2d->off;
    size_t n = u2d->len < 9 ? u2d->len : 9;
    // cppcheck-suppress knownConditionTrueFalse ; n is the pipe's length up to 9, any of 1..9
    return n <= 3 || memcmp(a + 3, settings_tail, n - 3) == 0;
}

/* The attributes a decision is made on: who the peer is (its SVID, when mTLS), where it comes from, which port of
 * the app it reaches, and the request when there is one. */
static void authz_attrs(rm_conn_t *c, const rm_http_request_t *req, const rm_request_auth_t *ra, rm_authz_attrs_t *a)
{
    memset(a, 0, sizeof(*a));
    a->principal = c->mode == RM_CONN_MODE_MTLS ? rm__conn_peer_id(c) : NULL;
    rm_sockaddr_t src = rm_conn_addr_get(&c->src), dst = rm_conn_addr_get(&c->orig_dst);
    rm_sockaddr_ip16(&src, a->source_ip, &a->have_source_ip);
    rm_sockaddr_ip16(&dst, a->destination_ip, &a->have_destination_ip);
    a->destination_port = rm_conn_addr_port(c->explicit_cfg != NULL ? &c->target : &c->orig_dst);
    a->sni = c->sni;
    a->http = req;
    /* the trace the request is in, or, at the first proxy, the one its span will start (conn_trace.h) */
    a->trace_id = req != NULL ? rm_conn_trace_request_id(req) : NULL;
    a->request_auth = ra;
}

/* A uniform value in [0, 1) for the sampling of allowed-decision logs (xorshift64*, per worker). */
static double worker_random(rm_worker_t *w)
{
    uint64_t x = w->rng != 0 ? w->rng : (uint64_t)(uintptr_t)w ^ 0x9e3779b97f4a7c15ULL;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return (double)((x * 0x2545f4914f6cdd1dULL) >> 11) / 9007199254740992.0;
}

/* Decides a connection (req NULL) or one request, logs and counts the decision. Returns 1 to allow.
 *
 * A connection is decided on the policies of the snapshot it started with. Each request on a kept-alive HTTP
 * connection is decided on the policies in force when it arrives, so that a new DENY also reaches long-lived
 * connections (gRPC streams last hours); one decision always uses one version. The published snapshot is safe to
 * read without a reference for the rest of this loop iteration (rm_proxy_publish waits for the workers). */
static rm_authz_t *authz_in_force(rm_conn_t *c, const rm_http_request_t *req)
{
    rm_snapshot_t *now = req != NULL ? rm_snapshot_current(c->w->proxy) : c->snap;
    return now->authz != NULL || now->authz_required ? now->authz : c->snap->authz;
}

static int authz_decide(rm_conn_t *c, const rm_http_request_t *req, const rm_request_auth_t *ra)
{
    rm_authz_t *az = authz_in_force(c, req);
    rm_authz_attrs_t a;
    rm_authz_decision_t d;

    authz_attrs(c, req, ra, &a);
    if (req != NULL)
        c->request_authz_policy = NULL;
    if (req != NULL && req->path_error != NULL) {
        /* refused before any policy is asked: the filter answers 400 (http_filter.h) */
        rm_authz_decision_t bad = {
            .reason = RM_AUTHZ_REASON_UNEVALUABLE, .rule = -1, .dry_run_rule = -1, .audit_rule = -1, .log = 1};
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "authz");
        rm_authz_log_fields(&l, &bad, &a, az != NULL ? az->workload : NULL);
        rm_log_str(&l, "path_error", req->path_error);
        if (az != NULL) {
            rm_log_str(&l, "policy_version", az->version);
            rm_authz_log_workload(&l, az->wp.workload_namespace, az->wp.workload_labels, az->wp.num_workload_labels);
            if (az->wp.log_attributes)
                rm_authz_log_attributes(&l, az->engine, &a);
            rm_authz_count(az, &bad);
        }
        rm_log_end(&l);
        return 0;
    }
    if (az == NULL) {
        /* a control plane is configured but has not said which policies apply: refuse, and say why */
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "authz");
        rm_log_str(&l, "decision", "deny");
        rm_log_str(&l, "policy", NULL);
        rm_log_str(&l, "reason", "no policy yet");
        rm_log_str(&l, "explanation",
                   "denied: no authorization policy has been received from the control plane yet (fail closed)");
        if (req == NULL) {
            c->authz_logged = 1;
            c->authz_allowed = 0;
        }
        rm_log_str(&l, "source_principal", a.principal);
        rm_log_addr(&l, "source_ip", (struct sockaddr *)&c->src.ss);
        rm_log_uint(&l, "destination_port", a.destination_port);
        rm_log_str(&l, "protocol", req == NULL ? "tcp" : req->grpc ? "grpc" : req->http2 ? "http2" : "http1");
        rm_log_end(&l);
        return 0;
    }
    rm_authz_evaluate(az->engine, &a, worker_random(c->w), &d);
    if (req == NULL) { /* the connection's own decision, on its own snapshot's policies: kept for the access log */
        c->authz_logged = 1;
        c->authz_allowed = d.allow;
        c->authz_policy = d.policy;
    } else {
        c->request_authz_policy = d.policy;
    }
    if (req != NULL) /* for the request's span */
        rm_conn_trace_note_decision(req, rm_authz_decision_word(&d), d.policy != NULL ? d.policy->namespace_ : NULL,
                                    d.policy != NULL ? d.policy->name : NULL);
    rm_authz_count(az, &d);
    rm_authz_log(az, &d, &a);
    return d.allow;
}

/* A request: its JWT first when a RequestAuthentication applies (a refused token is answered 401 before any policy
 * is asked, as Envoy's jwt_authn filter runs before RBAC), then the policies, with the token's identity. */
rm_http_verdict_t rm__conn_decide_request(void *conn, const rm_http_request_t *req, rm_http_decision_t *out)
{
    rm_conn_t *c = conn;
    rm_authz_t *az = authz_in_force(c, req);
    rm_authn_result_t ar = {0};
    rm_http_verdict_t verdict;

    if (az != NULL && az->authn != NULL && req->path_error == NULL &&
        rm__conn_authn_request(c, az->authn, az->workload, req, &ar) == RM_AUTHN_INVALID) {
        verdict = RM_HTTP_UNAUTHENTICATED;
    } else {
        verdict = authz_decide(c, req, ar.outcome == RM_AUTHN_VALID ? &ar.auth : NULL) ? RM_HTTP_ALLOW : RM_HTTP_DENY;
        if (verdict == RM_HTTP_ALLOW && ar.outcome == RM_AUTHN_VALID)
            rm__conn_authn_outputs(&ar, out);
    }
    rm_authn_result_clear(&ar);
    rm__conn_observe_request(conn, req, verdict, out);
    return verdict;
}

/* Which filter, if any, the client's first bytes call for: the first in rm_conn_filters that claims them, or none
 * (*need_more set when one may still claim them with more bytes). */
const rm_conn_filter_ops_t *rm__conn_pick_filter(const uint8_t *p, size_t n, int *need_more)
{
    *need_more = 0;
    for (const rm_conn_filter_ops_t *const *f = rm_conn_filters; *f != NULL; f++) {
        switch ((*f)->sniff(p, n)) {
        case RM_CONN_SNIFF_YES:
            return *f;
        case RM_CONN_SNIFF_NEED_MORE:
            *need_more = 1;
            break;
        case RM_CONN_SNIFF_NO:
            break;
        }
    }
    return NULL;
}

static void deny_connection(rm_conn_t *c)
{
    c->close_reason = RM_CONN_CLOSE_REJECTED;
    rm__conn_abort(c, RM_CONN_CLOSE_REJECTED);
}

/* Moves a pending inbound connection towards a decision. Once the peer is known: without HTTP rules, the
 * connection is decided at once, and once allowed its requests are only observed (authz_state SNIFF); with them, the
 * protocol is told from the client's first bytes (never by waiting on a timer): a protocol one of the filters claims
 * (HTTP/1.x, HTTP/2) gets that filter, deciding request by request; anything else is decided as TCP (Istio's rule for
 * HTTP-only fields). A server that speaks first makes it TCP too. */
int rm__conn_authz_progress(rm_conn_t *c)
{
    rm_authz_t *az = c->snap->authz;
    int observe = 0; /* once allowed as a whole, its requests are still observed (conn_observe_l7.c) */

    if (az == NULL && !c->snap->authz_required) {
        c->authz_state = rm__conn_observed(c) ? RM_CONN_AUTHZ_SNIFF : RM_CONN_AUTHZ_OFF;
        return 0;
    }
    if (az == NULL || (!rm_authz_engine_needs_http(az->engine) && az->authn == NULL)) {
        observe = az != NULL && rm__conn_observed(c);
        goto DecideTcp;
    }
    if (c->d2u.len == 0 && (c->u2d.len > 0 || c->u2d.src_eof)) {
        /* the app spoke first. An HTTP/2 server does that with its SETTINGS frame (9-byte header: type 4, stream
         * 0), and its client is about to send the preface: wait for it. Anything else is a server-first protocol,
         * which is TCP. */
        if (!rm__conn_app_sent_h2_settings(&c->u2d) || (c->u2d.len >= 9 && rm_pipe_room(&c->u2d) == 0))
            goto DecideTcp;
        if (!c->d2u.src_eof)
            return 0;
    }
    if (c->d2u.len > 0) {
        int need_more;
        const rm_conn_filter_ops_t *f = rm__conn_pick_filter(c->d2u.buf + c->d2u.off, c->d2u.len, &need_more);
        if (f != NULL)
            return rm__conn_l7_start(c, f, 0);
        if (need_more && !c->d2u.src_eof && rm_pipe_room(&c->d2u) > 0)
            return 0;
        goto DecideTcp;
    }
    if (c->d2u.src_eof)
        goto DecideTcp;
    return 0;

DecideTcp:
    if (authz_decide(c, NULL, NULL))
        c->authz_state = observe ? RM_CONN_AUTHZ_SNIFF : RM_CONN_AUTHZ_DONE;
    else
        deny_connection(c);
    return 0;
}
