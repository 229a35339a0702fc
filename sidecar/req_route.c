/* Routing one request (req_route.h). A pushed destination's server name is Istio's
 * "outbound_.<port>_._.<service>.<namespace>.svc.cluster.local" (control_resources.c): the backend Service and port
 * of a rule are found by it, without another index in the snapshot. The scan is linear in the destinations, like
 * the lookup by address; an index by name is the next step should route backends be many. */
#include "req_route.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dest_routes.h"

static uint16_t dest_port(const rm_destination_t *d)
{
    const struct sockaddr_storage *ss = &d->addr.ss;
    return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
                                           : ((const struct sockaddr_in *)ss)->sin_port);
}

static const rm_destination_t *find_backend(const rm_destination_t *dests, size_t num, const char *ns,
                                            const rm_route_backend_t *b, int family)
{
    const rm_destination_t *other_family = NULL;
    char sni[300];
    int n = snprintf(sni, sizeof(sni), "outbound_.%u_._.%s.%s.svc.cluster.local", (unsigned)b->port, b->name, ns);
    if (n < 0 || (size_t)n >= sizeof(sni))
        return NULL;
    for (size_t i = 0; i < num; i++) {
        const rm_destination_t *d = &dests[i];
        if (d->sni == NULL || strcmp(d->sni, sni) != 0)
            continue;
        if (d->addr.ss.ss_family == family)
            return d;
        if (other_family == NULL)
            other_family = d;
    }
    return other_family;
}

rm_req_route_result_t rm_req_route(const rm_destination_t *dest, const rm_destination_t *dests, size_t num_dests,
                                   const rm_http_request_t *req, uint32_t random, rm_req_route_t *out)
{
    const char *ns;

    memset(out, 0, sizeof(*out));
    if (dest->routes == NULL || dest->routes->table == NULL || rm_route_table_num_routes(dest->routes->table) == 0) {
        out->dest = dest;
        return out->result = RM_REQ_ROUTE_DIRECT;
    }
    if (rm_route_select(dest->routes->table, dest_port(dest), req, &out->choice) != 0)
        return out->result = RM_REQ_ROUTE_NO_RULE;
    for (size_t i = 0; i < out->choice.rule->num_filters; i++)
        if (out->choice.rule->filters[i].type == RM_ROUTE_FILTER_REDIRECT)
            return out->result = RM_REQ_ROUTE_REDIRECT;
    if ((out->backend = rm_route_pick_backend(out->choice.rule, random)) == NULL)
        return out->result = RM_REQ_ROUTE_NO_BACKEND;
    ns = out->backend->namespace_ != NULL ? out->backend->namespace_ : out->choice.route->namespace_;
    if (ns == NULL || out->backend->name == NULL ||
        (out->dest = find_backend(dests, num_dests, ns, out->backend, dest->addr.ss.ss_family)) == NULL)
        return out->result = RM_REQ_ROUTE_NO_BACKEND;
    return out->result = RM_REQ_ROUTE_BACKEND;
}

int rm_req_route_status(rm_req_route_result_t result)
{
    switch (result) {
    case RM_REQ_ROUTE_NO_RULE:
        return 404;
    case RM_REQ_ROUTE_NO_BACKEND:
        return 500;
    default:
        return 0;
    }
}

const char *rm_req_route_flag(rm_req_route_result_t result)
{
    return result == RM_REQ_ROUTE_NO_RULE ? "NR" : NULL;
}

int rm_req_apply_rule(const rm_req_route_t *route, const rm_http_request_t *req, uint16_t service_port,
                      rm_route_arena_t *arena, rm_route_applied_t *out)
{
    int ret = 0;

    memset(out, 0, sizeof(*out));
    switch (route->result) {
    case RM_REQ_ROUTE_DIRECT:
        out->path = req->path, out->path_len = req->path_len;
        out->authority = req->host, out->authority_len = req->host_len;
        out->headers = req->headers, out->num_headers = req->num_headers;
        break;
    case RM_REQ_ROUTE_BACKEND:
    case RM_REQ_ROUTE_REDIRECT:
        ret = rm_route_apply(route->choice.rule, route->choice.match_index, req, service_port, arena, out);
        break;
    default:
        ret = -EINVAL;
        break;
    }
    return ret;
}
