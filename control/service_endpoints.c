/* A Service document's spec.endpoints: schema, conversion with file/line/field messages, identities (see
 * service_endpoints.h). */
#include "service_endpoints.h"

#include "ringmesh/error.h"
#include "ringmesh/svid.h"
#include "ringmesh/yaml_load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cyaml_schema_field_t raw_endpoint_fields[] = {
    RM_CYAML_STR("address", rm__raw_endpoint_t, address),
    RM_CYAML_STR("port", rm__raw_endpoint_t, port),
    RM_CYAML_STR("targetPort", rm__raw_endpoint_t, target_port),
    RM_CYAML_STR("serviceAccount", rm__raw_endpoint_t, service_account),
    RM_CYAML_STR("identity", rm__raw_endpoint_t, identity),
    RM_CYAML_STR("ready", rm__raw_endpoint_t, ready),
    RM_CYAML_STR("serving", rm__raw_endpoint_t, serving),
    RM_CYAML_STR("terminating", rm__raw_endpoint_t, terminating),
    RM_CYAML_STR("zone", rm__raw_endpoint_t, zone),
    CYAML_FIELD_END,
};

const cyaml_schema_value_t rm__raw_endpoint_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, rm__raw_endpoint_t, raw_endpoint_fields),
};

void rm__endpoints_free(rm__pending_endpoint_t *eps, size_t n)
{
    for (size_t i = 0; eps != NULL && i < n; i++) {
        free(eps[i].e.address);
        free(eps[i].e.identity);
        free(eps[i].e.zone);
        free(eps[i].service_account);
        free(eps[i].identity);
    }
    free(eps);
}

/* "ip:port" / "[ip6]:port" in canonical form (an IPv4-mapped IPv6 address is written as IPv4), or -1. */
static int endpoint_address(const char *ip, uint16_t port, char *out, size_t len)
{
    uint8_t b[16];
    char host[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET, ip, b) == 1) {
        inet_ntop(AF_INET, b, host, sizeof(host));
        snprintf(out, len, "%s:%u", host, (unsigned)port);
    } else if (inet_pton(AF_INET6, ip, b) == 1) {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(b, mapped, 12) == 0) {
            inet_ntop(AF_INET, b + 12, host, sizeof(host));
            snprintf(out, len, "%s:%u", host, (unsigned)port);
        } else {
            inet_ntop(AF_INET6, b, host, sizeof(host));
            snprintf(out, len, "[%s]:%u", host, (unsigned)port);
        }
    } else {
        return -1;
    }
    static const uint8_t zero[16];
    return memcmp(b, zero, strchr(out, '[') != NULL ? 16 : 4) == 0 ? -1 : 0;
}

/* "spec.endpoints[I]" or "spec.endpoints[I].NAME" into buf, which it returns. */
static const char *field(char *buf, size_t len, unsigned i, const char *name)
{
    snprintf(buf, len, "spec.endpoints[%u]%s%s", i, name[0] != '\0' ? "." : "", name);
    return buf;
}

static int convert_one(rm_config_doc_t *doc, const rm__raw_endpoint_t *raw, unsigned i, const uint16_t *ports,
                       size_t num_ports, rm__pending_endpoint_t *p)
{
    char path[96], q[96], addr[INET6_ADDRSTRLEN + 10];
    uint16_t port = num_ports == 1 ? ports[0] : 0, target;
    int ready = 1, serving, terminating = 0, ret;
    size_t j;

    if (raw->address == NULL)
        return rm_config_value_error(doc, field(path, sizeof(path), i, ""),
                                     "address is required (the pod's or host's IP)");
    if (raw->port == NULL && num_ports > 1)
        return rm_config_value_error(doc, field(path, sizeof(path), i, ""),
                                     "port is required: the service has %zu ports (spec.ports); say which one this "
                                     "endpoint serves",
                                     num_ports);
    if ((ret = rm_config_conv_port(doc, field(path, sizeof(path), i, "port"), raw->port, &port)) != 0)
        return ret;
    for (j = 0; j < num_ports && ports[j] != port; j++)
        ;
    if (j == num_ports)
        return rm_config_value_error(doc, field(path, sizeof(path), i, "port"), "port %u is not one of spec.ports",
                                     (unsigned)port);
    target = port;
    if ((ret = rm_config_conv_port(doc, field(path, sizeof(path), i, "targetPort"), raw->target_port, &target)) != 0)
        return ret;
    if (endpoint_address(raw->address, target, addr, sizeof(addr)) != 0)
        return rm_config_value_error(doc, field(path, sizeof(path), i, "address"),
                                     "%s is not an IP address (want an IPv4 or IPv6 literal, not unspecified, "
                                     "without port or brackets)",
                                     rm_yaml_quoted(q, sizeof(q), raw->address));
    if ((ret = rm_config_conv_bool(doc, field(path, sizeof(path), i, "ready"), raw->ready, &ready)) != 0)
        return ret;
    serving = ready; /* Kubernetes: serving unset means as ready */
    if ((ret = rm_config_conv_bool(doc, field(path, sizeof(path), i, "serving"), raw->serving, &serving)) != 0 ||
        (ret = rm_config_conv_bool(doc, field(path, sizeof(path), i, "terminating"), raw->terminating, &terminating)) !=
            0)
        return ret;
    if ((raw->service_account == NULL) == (raw->identity == NULL))
        return rm_config_value_error(doc, field(path, sizeof(path), i, ""),
                                     "give its identity: serviceAccount (in the service's namespace) or identity (a "
                                     "SPIFFE ID), one of the two");
    if (raw->service_account != NULL) {
        if ((ret = rm_config_conv_dns_name(doc, field(path, sizeof(path), i, "serviceAccount"), raw->service_account, 0,
                                           "a ServiceAccount name")) != 0)
            return ret;
        if ((p->service_account = strdup(raw->service_account)) == NULL)
            return rm_config_value_error(doc, path, "out of memory");
    } else {
        rm_spiffe_id_t id;
        if ((ret = rm_config_conv_workload_id(doc, field(path, sizeof(path), i, "identity"), raw->identity, &id)) != 0)
            return ret;
        if ((p->identity = strdup(raw->identity)) == NULL)
            return rm_config_value_error(doc, path, "out of memory");
    }
    p->pos = rm_config_pos(doc, path, 0);
    p->index = i;
    p->e.port = port;
    p->e.ready = (uint8_t)ready;
    p->e.serving = (uint8_t)serving;
    p->e.terminating = (uint8_t)terminating;
    if ((p->e.address = strdup(addr)) == NULL || (p->e.zone = strdup(raw->zone != NULL ? raw->zone : "")) == NULL)
        return rm_config_value_error(doc, field(path, sizeof(path), i, ""), "out of memory");
    return 0;
}

int rm__endpoints_convert(rm_config_doc_t *doc, const rm__raw_endpoint_t *raw, unsigned count, const uint16_t *ports,
                          size_t num_ports, int in_mesh, rm__pending_endpoint_t **out)
{
    rm__pending_endpoint_t *eps = NULL;
    char path[64];
    int ret = 0;

    *out = NULL;
    if (count == 0)
        return 0;
    if (!in_mesh)
        return rm_config_value_error(doc, "spec.endpoints",
                                     "endpoints are for services in the mesh (spec.inMesh is false: connections go "
                                     "to the VIP as they are)");
    if ((eps = calloc(count, sizeof(*eps))) == NULL)
        return rm_config_value_error(doc, "spec.endpoints", "out of memory");
    for (unsigned i = 0; i < count; i++) {
        if ((ret = convert_one(doc, &raw[i], i, ports, num_ports, &eps[i])) != 0)
            goto Exit;
        for (unsigned j = 0; j < i; j++) {
            if (eps[j].e.port == eps[i].e.port && eps[j].e.address != NULL && eps[i].e.address != NULL &&
                strcmp(eps[j].e.address, eps[i].e.address) == 0) {
                snprintf(path, sizeof(path), "spec.endpoints[%u]", i);
                ret = rm_config_value_error(doc, path, "%s for port %u is also spec.endpoints[%u]", eps[i].e.address,
                                            (unsigned)eps[i].e.port, j);
                goto Exit;
            }
        }
    }
    *out = eps;
    eps = NULL;
Exit:
    rm__endpoints_free(eps, count);
    return ret;
}

int rm__endpoints_resolve(rm__pending_endpoint_t *eps, size_t n, const char *td, const char *ns, size_t *bad)
{
    size_t td_len = strlen(td);
    for (size_t i = 0; i < n; i++) {
        rm__pending_endpoint_t *p = &eps[i];
        char id[RM_SPIFFE_ID_MAX + 1];
        free(p->e.identity);
        p->e.identity = NULL;
        if (p->service_account != NULL) {
            int len = snprintf(id, sizeof(id), "spiffe://%s/ns/%s/sa/%s", td, ns, p->service_account);
            if (len < 0 || (size_t)len >= sizeof(id) || rm_spiffe_id_parse(id, (size_t)len, NULL) != 0) {
                *bad = i;
                return -1;
            }
        } else {
            if (strncmp(p->identity + 9, td, td_len) != 0 ||
                (p->identity[9 + td_len] != '/' && p->identity[9 + td_len] != '\0')) {
                *bad = i;
                return -1;
            }
            snprintf(id, sizeof(id), "%s", p->identity);
        }
        if ((p->e.identity = strdup(id)) == NULL)
            return -ENOMEM;
    }
    return 0;
}

int rm__endpoints_take(rm__pending_endpoint_t *eps, size_t n, rm_model_endpoint_t **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    if ((*out = calloc(n, sizeof(**out))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        (*out)[i] = eps[i].e;
        memset(&eps[i].e, 0, sizeof(eps[i].e));
    }
    return 0;
}
