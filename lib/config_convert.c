/* Positions, parsers and converters of ringmesh/config.h: one wording per kind of value, for every loader. */
#include "ringmesh/config.h"

#include "ringmesh/duration.h"
#include "ringmesh/error.h"
#include "ringmesh/yaml_load.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DNS_LABEL_RULE     "1 to 63 of a-z 0-9 -, starting and ending with a letter or digit"
#define DNS_SUBDOMAIN_RULE "labels of a-z 0-9 - joined by dots, at most 253 characters"

/* ---------------------------------------------------------------------------------------------------------
 * Reporting.
 * ------------------------------------------------------------------------------------------------------- */

rm_yaml_pos_t rm_config_pos(const rm_config_doc_t *doc, const char *path, int want_key)
{
    char buf[RM_YAML_PATH_MAX];
    const rm_yaml_node_t *e;

    if (doc->map == NULL)
        return doc->fallback;
    snprintf(buf, sizeof(buf), "%s", path);
    for (;;) {
        if ((e = rm_yaml_pos_map_find(doc->map, buf)) != NULL)
            return want_key ? e->key : e->value;
        if (buf[0] == '\0')
            return doc->fallback;
        char *dot = strrchr(buf, '.'), *bracket = strrchr(buf, '[');
        char *cut = dot > bracket ? dot : bracket;
        *(cut != NULL ? cut : buf) = '\0';
    }
}

int rm_config_vreport(void *arg, int code, rm_yaml_pos_t pos, const char *path, const char *fmt, va_list ap)
{
    rm_config_doc_t *doc = arg;
    return rm_config_error_vset(doc->err, code, doc->file, pos, path, fmt, ap);
}

int rm_config_report(rm_config_doc_t *doc, int code, rm_yaml_pos_t pos, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rm_config_vreport(doc, code, pos, path, fmt, ap);
    va_end(ap);
    return code;
}

int rm_config_value_error(rm_config_doc_t *doc, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rm_config_vreport(doc, RM_ERR_CONFIG_VALUE, rm_config_pos(doc, path, 0), path, fmt, ap);
    va_end(ap);
    return RM_ERR_CONFIG_VALUE;
}

/* ---------------------------------------------------------------------------------------------------------
 * Parsers.
 * ------------------------------------------------------------------------------------------------------- */

int rm_config_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;
    size_t n = 0;

    for (; s[n] != '\0'; n++) {
        if (s[n] < '0' || s[n] > '9' || n >= 10)
            return -1;
        v = v * 10 + (unsigned long)(s[n] - '0');
    }
    if (n == 0 || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int rm_config_parse_port(const char *s, uint16_t *out)
{
    unsigned long v;
    if (strlen(s) > 5 || rm_config_parse_uint(s, 1, 65535, &v) != 0)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

int rm_config_parse_cidr(const char *s, uint8_t addr[16], unsigned *prefix)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
    unsigned long bits;
    unsigned max;
    uint8_t a[16];

    if (alen == 0 || alen >= sizeof(buf))
        return -1;
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    if (inet_pton(AF_INET6, buf, a) == 1) {
        max = 128;
    } else {
        memset(a, 0, 10);
        a[10] = a[11] = 0xff;
        if (inet_pton(AF_INET, buf, a + 12) != 1)
            return -1;
        max = 32;
    }
    if (slash == NULL)
        bits = max;
    else if (rm_config_parse_uint(slash + 1, 0, max, &bits) != 0)
        return -1;
    memcpy(addr, a, 16);
    *prefix = (unsigned)bits + (max == 32 ? 96 : 0);
    return 0;
}

int rm_config_dns_label_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

int rm_config_dns_subdomain_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return 0;
    for (const char *p = s;;) {
        const char *dot = strchr(p, '.');
        size_t l = dot != NULL ? (size_t)(dot - p) : strlen(p);
        if (!rm_config_dns_label_ok(p, l))
            return 0;
        if (dot == NULL)
            return 1;
        p = dot + 1;
    }
}

int rm_config_parse_label(const char *s, size_t *key_len)
{
    const char *eq = strchr(s, '=');
    if (eq == NULL || eq == s)
        return -1;
    *key_len = (size_t)(eq - s);
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------
 * Converters.
 * ------------------------------------------------------------------------------------------------------- */

int rm_config_conv_bool(rm_config_doc_t *doc, const char *path, const char *s, int *out)
{
    char q[96];
    if (s == NULL)
        return 0;
    if (strcmp(s, "true") == 0)
        *out = 1;
    else if (strcmp(s, "false") == 0)
        *out = 0;
    else
        return rm_config_value_error(doc, path, "%s is not a boolean (want true or false)",
                                     rm_yaml_quoted(q, sizeof(q), s));
    return 0;
}

int rm_config_conv_uint(rm_config_doc_t *doc, const char *path, const char *s, unsigned long min, unsigned long max,
                        unsigned *out)
{
    char q[96];
    unsigned long v;
    if (s == NULL)
        return 0;
    if (rm_config_parse_uint(s, min, max, &v) != 0)
        return rm_config_value_error(doc, path, "%s is not a whole number in %lu..%lu", rm_yaml_quoted(q, sizeof(q), s),
                                     min, max);
    *out = (unsigned)v;
    return 0;
}

int rm_config_conv_port(rm_config_doc_t *doc, const char *path, const char *s, uint16_t *out)
{
    char q[96];
    if (s == NULL)
        return 0;
    if (rm_config_parse_port(s, out) != 0)
        return rm_config_value_error(doc, path, "%s is not a port (want a whole number in 1..65535)",
                                     rm_yaml_quoted(q, sizeof(q), s));
    return 0;
}

int rm_config_conv_duration(rm_config_doc_t *doc, const char *path, const char *s, uint64_t max_ms, uint64_t *out)
{
    char q[96];
    uint64_t v;
    if (s == NULL)
        return 0;
    if (rm_duration_parse_ms_max(s, max_ms, &v) != 0)
        return rm_config_value_error(doc, path,
                                     "%s is not a duration (want e.g. 500ms, 5s, 2m, 1h or 1m30s, at most %lluh)",
                                     rm_yaml_quoted(q, sizeof(q), s), (unsigned long long)(max_ms / 3600000));
    *out = v;
    return 0;
}

int rm_config_conv_string(rm_config_doc_t *doc, const char *path, const char *s, char **out)
{
    if (s == NULL)
        return 0;
    if (s[0] == '\0')
        return rm_config_value_error(doc, path, "must not be empty");
    char *copy = strdup(s);
    if (copy == NULL)
        return rm_config_value_error(doc, path, "out of memory");
    free(*out);
    *out = copy;
    return 0;
}

int rm_config_conv_trust_domain(rm_config_doc_t *doc, const char *path, const char *s, char **out)
{
    char q[96];
    int rc;
    if (s == NULL)
        return 0;
    if ((rc = rm_trust_domain_check(s, strlen(s))) != 0)
        return rm_config_value_error(doc, path, "%s is not a SPIFFE trust domain: %s", rm_yaml_quoted(q, sizeof(q), s),
                                     rm_strerror(rc));
    return rm_config_conv_string(doc, path, s, out);
}

int rm_config_conv_workload_id(rm_config_doc_t *doc, const char *path, const char *s, rm_spiffe_id_t *id)
{
    char q[96];
    int rc;
    if (s == NULL)
        return 0;
    if ((rc = rm_spiffe_id_parse(s, strlen(s), id)) != 0)
        return rm_config_value_error(doc, path, "%s is not a SPIFFE ID: %s", rm_yaml_quoted(q, sizeof(q), s),
                                     rm_strerror(rc));
    if (rm_spiffe_workload_id_parse(s, strlen(s), NULL) != 0)
        return rm_config_value_error(doc, path, "%s names a trust domain, not a workload (it has no path)",
                                     rm_yaml_quoted(q, sizeof(q), s));
    return 0;
}

int rm_config_conv_enum(rm_config_doc_t *doc, const char *path, const char *s, const char *what,
                        const char *const *names, const int *values, int *out)
{
    char q[96], want[256];
    size_t n = 0, o = 0;
    if (s == NULL)
        return 0;
    for (n = 0; names[n] != NULL; n++) {
        if (strcmp(s, names[n]) == 0) {
            *out = values[n];
            return 0;
        }
    }
    for (size_t i = 0; i < n && o < sizeof(want); i++)
        o += (size_t)snprintf(want + o, sizeof(want) - o, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ", names[i]);
    return rm_config_value_error(doc, path, "%s is not %s (want %s)", rm_yaml_quoted(q, sizeof(q), s), what, want);
}

int rm_config_conv_dns_name(rm_config_doc_t *doc, const char *path, const char *s, int label, const char *what)
{
    char q[96];
    if (s == NULL)
        return 0;
    if (label ? rm_config_dns_label_ok(s, strlen(s)) : rm_config_dns_subdomain_ok(s))
        return 0;
    if (what == NULL)
        return rm_config_value_error(doc, path, "%s is not a DNS-1123 %s (%s)", rm_yaml_quoted(q, sizeof(q), s),
                                     label ? "label" : "subdomain", label ? DNS_LABEL_RULE : DNS_SUBDOMAIN_RULE);
    return rm_config_value_error(doc, path, "%s is not %s (a DNS-1123 %s: %s)", rm_yaml_quoted(q, sizeof(q), s), what,
                                 label ? "label" : "subdomain", label ? DNS_LABEL_RULE : DNS_SUBDOMAIN_RULE);
}

int rm_config_conv_label(rm_config_doc_t *doc, const char *path, const char *s)
{
    char q[96];
    size_t key_len;
    if (s == NULL)
        return 0;
    if (rm_config_parse_label(s, &key_len) != 0)
        return rm_config_value_error(doc, path, "%s is not KEY=VALUE", rm_yaml_quoted(q, sizeof(q), s));
    return 0;
}
