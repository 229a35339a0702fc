/* One app request's plan on the outbound request path (req_out_plan.h). */
#include "req_out_plan.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "dest_endpoints.h"

static uint16_t service_port(const rm_destination_t *d)
{
    const struct sockaddr_storage *ss = &d->addr.ss;
    return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
                                           : ((const struct sockaddr_in *)ss)->sin_port);
}

static void local(rm_req_out_plan_t *out, int status, const char *flag)
{
    out->kind = RM_REQ_OUT_LOCAL;
    out->status = status;
    out->flag = flag;
}

/* The value of the request's Host field; 0, or -EINVAL when it has two. */
static int find_host(const rm_h1c_request_t *app, rm_http_request_t *req)
{
    for (size_t i = 0; i < app->num_headers; i++) {
        const rm_http_header_t *h = &app->headers[i];
        if (h->name_len != 4 || strncasecmp(h->name, "host", 4) != 0)
            continue;
        if (req->host != NULL)
            return -EINVAL;
        req->host = h->value, req->host_len = h->value_len;
    }
    return 0;
}

int rm_req_out_plan(const rm_destination_t *dest, const rm_destination_t *dests, size_t num_dests,
                    const rm_h1c_request_t *app, uint32_t random, rm_req_lb_t *lb, uint64_t now_ns,
                    rm_req_out_room_t *room, rm_req_out_plan_t *out)
{
    rm_http_request_t req = {.method = app->method,
                             .method_len = app->method_len,
                             .path = app->target,
                             .path_len = app->target_len,
                             .headers = app->headers,
                             .num_headers = app->num_headers};
    rm_h1c_request_t sent;
    rm_route_applied_t applied;
    rm_req_route_t route;
    int ret;

    memset(out, 0, sizeof(*out));
    out->endpoint = -1;
    if (find_host(app, &req) != 0) {
        local(out, 400, NULL);
        goto Exit;
    }
    if (rm_req_route(dest, dests, num_dests, &req, random, &route) == RM_REQ_ROUTE_NO_RULE ||
        route.result == RM_REQ_ROUTE_NO_BACKEND) {
        local(out, rm_req_route_status(route.result), rm_req_route_flag(route.result));
        goto Exit;
    }
    room->arena.used = room->arena.headers_used = 0;
    if ((ret = rm_req_apply_rule(&route, &req, service_port(dest), &room->arena, &applied)) != 0) {
        local(out, ret == -ENOSPC ? 431 : 400, NULL);
        goto Exit;
    }
    if (route.result == RM_REQ_ROUTE_REDIRECT) {
        local(out, applied.redirect_status, NULL);
        out->location = applied.location, out->location_len = applied.location_len;
        goto Exit;
    }
    out->dest = route.dest;
    if (route.dest->endpoints == NULL || (out->endpoint = rm_req_lb_pick(lb, route.dest->endpoints, now_ns)) < 0) {
        local(out, 503, "UH");
        goto Exit;
    }
    sent = (rm_h1c_request_t){.method = app->method,
                              .method_len = app->method_len,
                              .target = applied.path,
                              .target_len = applied.path_len,
                              .headers = applied.headers,
                              .num_headers = applied.num_headers,
                              .minor = app->minor};
    if ((ret = rm_h1c_request_to_h2(&sent, room->h2, room->h2_cap, room->names, room->names_len)) < 0) {
        local(out, ret == -ENOSPC ? 431 : 400, NULL);
        out->endpoint = -1;
        goto Exit;
    }
    out->kind = RM_REQ_OUT_FORWARD;
    out->h2 = room->h2;
    out->num_h2 = (size_t)ret;
    out->response_headers = applied.response_headers;
    out->rule = route.result == RM_REQ_ROUTE_BACKEND ? route.choice.rule : NULL;
Exit:
    return 0;
}

int rm_req_out_local_response(const rm_req_out_plan_t *plan, int client_minor, int close, char *buf, size_t len)
{
    rm_http_header_t h[2] = {{"content-length", 14, "0", 1}};
    size_t n = 1;

    if (plan->location != NULL)
        h[n++] = (rm_http_header_t){"location", 8, plan->location, plan->location_len};
    return rm_h1c_write_response_head(plan->status, h, n, RM_H1C_BODY_LENGTH, client_minor, close, buf, len);
}
