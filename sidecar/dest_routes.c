/* A pushed Destination's routes -> the sidecar's route table (dest_routes.h). */
#include "dest_routes.h"

#include "ringmesh/route_proto.h"
#include "ringmesh/textbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rm_dest_routes_free(rm_dest_routes_t *r)
{
    if (r == NULL)
        return;
    rm_route_table_free(r->table);
    for (size_t i = 0; i < r->num_routes; i++)
        rm_route_free(r->routes[i]);
    free(r->routes);
    free(r->service);
    free(r);
}

int rm_dest_routes_parse(const Ringmesh__V1__Destination *d, rm_dest_routes_t **out, char *err, size_t errlen)
{
    const char *name = d->name != NULL ? d->name : "", *slash = strchr(name, '/');
    rm_dest_routes_t *r = NULL;
    char ns[64], why[512];
    int ret = -ENOMEM;

    *out = NULL;
    if (d->n_routes == 0)
        return 0;
    if (slash == NULL || slash == name || (size_t)(slash - name) >= sizeof(ns) || slash[1] == '\0') {
        snprintf(err, errlen, "destination %.300s: routes need a destination named namespace/name", name);
        return -EINVAL;
    }
    memcpy(ns, name, (size_t)(slash - name));
    ns[slash - name] = '\0';
    if ((r = calloc(1, sizeof(*r))) == NULL || (r->service = strdup(name)) == NULL ||
        (r->routes = calloc(d->n_routes, sizeof(*r->routes))) == NULL)
        goto Exit;
    for (size_t i = 0; i < d->n_routes; i++) {
        if ((ret = rm_route_from_proto(d->routes[i], &r->routes[i], why, sizeof(why))) != 0) {
            if (ret == -EINVAL)
                snprintf(err, errlen, "destination %.300s: %s", name, why);
            goto Exit;
        }
        r->num_routes = i + 1;
    }
    if ((ret = rm_route_table_build((const rm_route_t *const *)r->routes, r->num_routes, ns, slash + 1, &r->table)) !=
        0)
        goto Exit;
    *out = r;
    r = NULL;
    ret = 0;
Exit:
    if (ret == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    rm_dest_routes_free(r);
    return ret;
}

size_t rm_dest_routes_config_dump(const rm_dest_routes_t *r, char *buf, size_t len, size_t o)
{
    if (r == NULL)
        return o;
    o = rm_textf(buf, len, o, ",\"routes\":[");
    /* namespaces and names are DNS labels and subdomains (checked when read): nothing to escape */
    for (size_t i = 0; i < r->num_routes; i++)
        o = rm_textf(buf, len, o, "%s{\"kind\":\"%s\",\"namespace\":\"%s\",\"name\":\"%s\",\"rules\":%zu}",
                     i ? "," : "", r->routes[i]->kind == RM_ROUTE_GRPC ? "GRPCRoute" : "HTTPRoute",
                     r->routes[i]->namespace_, r->routes[i]->name, r->routes[i]->num_rules);
    return rm_textf(buf, len, o, "]");
}
