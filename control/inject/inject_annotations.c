/* The pod's ringmesh.io annotations and the values they hold: every one is checked before anything is added, so
 * that a refusal names the annotation and the value instead of leaving a pod that fails later. */
#include "inject_internal.h"

#include "ringmesh/config.h"
#include "ringmesh/yaml_load.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_ITEMS_MAX 64u

int rm__inject_parse_quantity(const char *s, double *value)
{
    /* <digits>[.<digits>] then a binary suffix (Ki..Ei), a decimal one (n u m "" k M G T P E) or an exponent */
    static const struct {
        const char *sfx;
        double mul;
    } suffixes[] = {{"Ki", 1024.0},
                    {"Mi", 1048576.0},
                    {"Gi", 1073741824.0},
                    {"Ti", 1099511627776.0},
                    {"Pi", 1125899906842624.0},
                    {"Ei", 1152921504606846976.0},
                    {"n", 1e-9},
                    {"u", 1e-6},
                    {"m", 1e-3},
                    {"k", 1e3},
                    {"M", 1e6},
                    {"G", 1e9},
                    {"T", 1e12},
                    {"P", 1e15},
                    {"E", 1e18},
                    {"", 1.0}};
    const char *p = s;
    size_t ip, fp = 0;
    char num[64];

    if (s == NULL)
        return -1;
    if (*s == '+')
        p++;
    ip = strspn(p, "0123456789");
    if (p[ip] == '.')
        fp = strspn(p + ip + 1, "0123456789");
    if (ip + fp == 0 || ip + fp + 1 >= sizeof(num))
        return -1;
    size_t nlen = ip + (p[ip] == '.' ? 1 + fp : 0);
    memcpy(num, p, nlen);
    num[nlen] = '\0';
    double v = strtod(num, NULL);
    const char *sfx = p + nlen;
    if (*sfx == 'e' || *sfx == 'E') {
        const char *e = sfx + 1;
        if (*e == '+' || *e == '-')
            e++;
        size_t ed = strspn(e, "0123456789");
        if (ed == 0 || ed > 3 || e[ed] != '\0')
            return -1;
        v *= pow(10.0, strtod(sfx + 1, NULL));
    } else {
        size_t i;
        for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
            if (strcmp(sfx, suffixes[i].sfx) == 0)
                break;
        if (i == sizeof(suffixes) / sizeof(suffixes[0]))
            return -1;
        v *= suffixes[i].mul;
    }
    if (!isfinite(v))
        return -1;
    *value = v;
    return 0;
}

int rm__inject_check_resources(const json_t *res, char *msg, size_t len)
{
    const json_t *req = json_object_get(res, "requests"), *lim = json_object_get(res, "limits");
    const char *name;
    json_t *l;
    double rv, lv;

    json_object_foreach((json_t *)lim, name, l)
    {
        const json_t *r = json_object_get(req, name);
        if (r == NULL || !json_is_string(r) || !json_is_string(l))
            continue;
        if (rm__inject_parse_quantity(json_string_value(r), &rv) == 0 &&
            rm__inject_parse_quantity(json_string_value(l), &lv) == 0 && rv > lv) {
            snprintf(msg, len, "the %s request %s is above its limit %s", name, json_string_value(r),
                     json_string_value(l));
            return -1;
        }
    }
    return 0;
}

int rm__inject_check_host_port(const char *s)
{
    const char *colon;
    char host[256];
    uint16_t port;
    uint8_t addr[16];
    unsigned prefix;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
            return -1;
        snprintf(host, sizeof(host), "%.*s", (int)(close - s - 1), s + 1);
        colon = close + 1;
        if (rm_config_parse_cidr(host, addr, &prefix) != 0 || strchr(host, '/') != NULL)
            return -1;
    } else {
        if ((colon = strrchr(s, ':')) == NULL || (size_t)(colon - s) >= sizeof(host) || colon == s)
            return -1;
        snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
        if (!rm_config_dns_subdomain_ok(host) &&
            (rm_config_parse_cidr(host, addr, &prefix) != 0 || strchr(host, '/') != NULL || strchr(host, ':')))
            return -1;
    }
    return rm_config_parse_port(colon + 1, &port);
}

/* ---------------------------------------------------------------------------------------------------------
 * Annotations.
 * ------------------------------------------------------------------------------------------------------- */

enum { V_BOOL, V_PORTS, V_PORTS_OR_STAR, V_CIDRS, V_LOG_LEVEL, V_QUANTITY };

typedef struct st_annotation_t {
    const char *name; /* after the prefix */
    int kind;
    size_t offset; /* of a const char * in rm_inject_annotations_t, or of an int for V_BOOL */
} annotation_t;

#define AOFF(f) offsetof(rm_inject_annotations_t, f)

static const annotation_t annotations[] = {
    {"inject", V_BOOL, 0},
    {"exclude-inbound-ports", V_PORTS, AOFF(exclude_inbound_ports)},
    {"exclude-outbound-ports", V_PORTS, AOFF(exclude_outbound_ports)},
    {"exclude-outbound-ip-ranges", V_CIDRS, AOFF(exclude_outbound_ip_ranges)},
    {"include-inbound-ports", V_PORTS_OR_STAR, AOFF(include_inbound_ports)},
    {"proxy-log-level", V_LOG_LEVEL, AOFF(proxy_log_level)},
    {"proxy-cpu", V_QUANTITY, AOFF(proxy_cpu)},
    {"proxy-memory", V_QUANTITY, AOFF(proxy_memory)},
    {"native-sidecar", V_BOOL, AOFF(native_sidecar)},
    {"rewrite-app-probes", V_BOOL, AOFF(rewrite_app_probes)},
    {"status", -1, 0}, /* written by the injector */
};

static const char *kind_words(int kind)
{
    switch (kind) {
    case V_BOOL:
        return "\"true\" or \"false\"";
    case V_PORTS:
        return "a comma-separated list of ports (1 to 65535), e.g. \"22,5432\"";
    case V_PORTS_OR_STAR:
        return "\"*\" or a comma-separated list of ports (1 to 65535), e.g. \"8080,9090\"";
    case V_CIDRS:
        return "a comma-separated list of IP addresses or CIDRs, e.g. \"10.0.0.0/8,fd00::/8\"";
    case V_LOG_LEVEL:
        return "a log level (debug, info, warn or error)";
    default:
        return "a Kubernetes quantity (e.g. \"100m\", \"0.5\", \"64Mi\", \"1G\")";
    }
}

/* Each comma-separated item (no empty ones, no spaces) passes the check. */
static int list_ok(const char *s, int cidrs)
{
    char item[64];
    size_t n = 0;
    uint16_t port;
    uint8_t addr[16];
    unsigned prefix;

    if (*s == '\0')
        return 0;
    for (;;) {
        size_t l = strcspn(s, ",");
        if (l == 0 || l >= sizeof(item) || ++n > LIST_ITEMS_MAX)
            return 0;
        memcpy(item, s, l);
        item[l] = '\0';
        if (cidrs ? rm_config_parse_cidr(item, addr, &prefix) != 0 : rm_config_parse_port(item, &port) != 0)
            return 0;
        if (s[l] == '\0')
            return 1;
        s += l + 1;
    }
}

static int value_ok(int kind, const char *v)
{
    double q;
    switch (kind) {
    case V_BOOL:
        return strcmp(v, "true") == 0 || strcmp(v, "false") == 0;
    case V_PORTS:
        return list_ok(v, 0);
    case V_PORTS_OR_STAR:
        return strcmp(v, "*") == 0 || list_ok(v, 0);
    case V_CIDRS:
        return list_ok(v, 1);
    case V_LOG_LEVEL:
        return strcmp(v, "debug") == 0 || strcmp(v, "info") == 0 || strcmp(v, "warn") == 0 || strcmp(v, "error") == 0;
    default:
        return rm__inject_parse_quantity(v, &q) == 0 && q > 0;
    }
}

static int refuse(const char *name, const json_t *value, int kind, char *msg, size_t len)
{
    char q[96];
    if (json_is_string(value))
        snprintf(msg, len, "annotation " RM_INJECT_ANNOTATION_PREFIX "%s: %s is not %s", name,
                 rm_yaml_quoted(q, sizeof(q), json_string_value(value)), kind_words(kind));
    else
        snprintf(msg, len, "annotation " RM_INJECT_ANNOTATION_PREFIX "%s: the value is not a string", name);
    return -EINVAL;
}

int rm__inject_read_inject_annotation(const json_t *annotations_obj, const json_t *labels_obj, const char **value,
                                      char *msg, size_t len)
{
    const json_t *v = json_object_get(labels_obj, RM_INJECT_ANNOTATION_PREFIX "inject");
    *value = NULL;
    if (v != NULL) {
        /* the label, which the chart's pod-level webhook selects on, wins over the annotation (as Istio's does) */
        if (!json_is_string(v) || !value_ok(V_BOOL, json_string_value(v))) {
            const char *s = json_is_string(v) ? json_string_value(v) : "(not a string)";
            snprintf(msg, len, "label " RM_INJECT_ANNOTATION_PREFIX "inject: \"%.64s\" is not \"true\" or \"false\"",
                     s);
            return -EINVAL;
        }
        *value = json_string_value(v);
        return 0;
    }
    v = json_object_get(annotations_obj, RM_INJECT_ANNOTATION_PREFIX "inject");
    if (v == NULL)
        return 0;
    if (!json_is_string(v) || !value_ok(V_BOOL, json_string_value(v)))
        return refuse("inject", v, V_BOOL, msg, len);
    *value = json_string_value(v);
    return 0;
}

int rm__inject_read_annotations(const json_t *annotations_obj, rm_inject_annotations_t *a, char *msg, size_t len,
                                char *warning, size_t wlen)
{
    const char *key;
    json_t *v;
    const size_t plen = strlen(RM_INJECT_ANNOTATION_PREFIX);

    memset(a, 0, sizeof(*a));
    a->native_sidecar = -1;
    a->rewrite_app_probes = -1;
    json_object_foreach((json_t *)annotations_obj, key, v)
    {
        if (strncmp(key, RM_INJECT_ANNOTATION_PREFIX, plen) != 0)
            continue;
        const char *name = key + plen;
        size_t i;
        for (i = 0; i < sizeof(annotations) / sizeof(annotations[0]); i++)
            if (strcmp(name, annotations[i].name) == 0)
                break;
        if (i == sizeof(annotations) / sizeof(annotations[0])) {
            char q[96];
            if (wlen != 0 && warning[0] == '\0')
                snprintf(warning, wlen, "annotation %s is not one ringmesh reads (a misspelling?); it is ignored",
                         rm_yaml_quoted(q, sizeof(q), key));
            continue;
        }
        const annotation_t *an = &annotations[i];
        if (an->kind < 0)
            continue;
        if (!json_is_string(v) || !value_ok(an->kind, json_string_value(v)))
            return refuse(an->name, v, an->kind, msg, len);
        const char *s = json_string_value(v);
        if (an->kind == V_BOOL) {
            if (strcmp(an->name, "inject") == 0)
                a->inject = s;
            else
                *(int *)((char *)a + an->offset) = strcmp(s, "true") == 0;
        } else {
            *(const char **)((char *)a + an->offset) = s;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------
 * Probes.
 * ------------------------------------------------------------------------------------------------------- */

/* The container port named `name`, or 0. */
static long long named_port(const json_t *container, const char *name)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(container, "ports"), i, p)
    {
        const json_t *n = json_object_get(p, "name");
        if (json_is_string(n) && strcmp(json_string_value(n), name) == 0 &&
            json_is_integer(json_object_get(p, "containerPort")))
            return json_integer_value(json_object_get(p, "containerPort"));
    }
    return 0;
}

/* Rewrites one probe in place; returns 1 when rewritten, 0 when left, -ENOMEM. */
static int rewrite_probe(json_t *container, const char *cname, const char *field, const char *suffix, json_t *probers,
                         char *warning, size_t wlen)
{
    static const char *const handlers[] = {"httpGet", "tcpSocket", "grpc"};
    json_t *probe = json_object_get(container, field), *h = NULL, *orig = NULL, *copy = NULL;
    const char *hname = NULL;
    char path[512];
    int ret = 0;

    if (!json_is_object(probe))
        return 0;
    for (size_t i = 0; i < 3 && h == NULL; i++)
        if (json_is_object(json_object_get(probe, handlers[i])))
            h = json_object_get(probe, (hname = handlers[i]));
    if (h == NULL)
        return 0; /* exec probes run inside the container: nothing crosses the mesh */
    if ((copy = json_deep_copy(h)) == NULL)
        return -ENOMEM;
    json_t *port = json_object_get(copy, "port");
    if (json_is_string(port)) {
        long long n = named_port(container, json_string_value(port));
        if (n <= 0) {
            if (wlen != 0 && warning[0] == '\0')
                snprintf(warning, wlen,
                         "container %.64s: %s.%s names port \"%.32s\", which the container does not declare; the "
                         "probe is left as it is",
                         cname, field, hname, json_string_value(port));
            json_decref(copy);
            return 0;
        }
        json_object_set_new(copy, "port", json_integer(n));
    }
    snprintf(path, sizeof(path), "/app-health/%s/%s", cname, suffix);
    json_t *timeout = json_object_get(probe, "timeoutSeconds");
    if ((orig = json_object()) == NULL || json_object_set_new(orig, hname, copy) != 0) {
        ret = -ENOMEM;
        goto Exit;
    }
    copy = NULL;
    if (json_object_set_new(orig, "timeoutSeconds",
                            json_integer(json_is_integer(timeout) ? json_integer_value(timeout) : 1)) != 0 ||
        json_object_set(probers, path, orig) != 0) {
        ret = -ENOMEM;
        goto Exit;
    }
    json_object_del(probe, hname);
    if (json_object_set_new(probe, "httpGet",
                            json_pack("{s:s,s:i,s:s}", "path", path, "port", RM_INJECT_ADMIN_PORT, "scheme", "HTTP")) !=
        0) {
        ret = -ENOMEM;
        goto Exit;
    }
    ret = 1;

Exit:
    json_decref(copy);
    json_decref(orig);
    return ret;
}

int rm__inject_rewrite_probes(json_t *spec, json_t *probers, char *warning, size_t wlen)
{
    static const char *const fields[] = {"livenessProbe", "readinessProbe", "startupProbe"};
    static const char *const suffixes[] = {"livez", "readyz", "startupz"};
    size_t i;
    json_t *c;
    int n = 0, r;

    json_array_foreach(json_object_get(spec, "containers"), i, c)
    {
        const json_t *name = json_object_get(c, "name");
        if (!json_is_string(name))
            continue;
        for (size_t f = 0; f < 3; f++) {
            if ((r = rewrite_probe(c, json_string_value(name), fields[f], suffixes[f], probers, warning, wlen)) < 0)
                return r;
            n += r;
        }
    }
    return n;
}
