/* The decision log's explanations and evidence: the closest miss of a denied request, and the attributes the engine
 * read, for `ringmeshctl policy replay` to decide the request again. Credentials never reach the log: the values of
 * Authorization, Proxy-Authorization, Cookie and Set-Cookie are left out even when a policy tests them, and an
 * end-user token only as the claims some policy references. */
#include "ringmesh/log.h"
#include "ringmesh/policy.h"
#include "policy_engine_internal.h"

#include <jansson.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int rm_authz_header_secret(const char *name, size_t len)
{
    static const char *const secret[] = {"authorization", "proxy-authorization", "cookie", "set-cookie"};
    for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
        if (len == strlen(secret[i]) && strncasecmp(name, secret[i], len) == 0)
            return 1;
    return 0;
}

int rm__policy_collect_headers(rm_authz_engine_t *e)
{
    size_t n = 0;
    if (e->num_conds == 0)
        return 0;
    if ((e->tested_headers = calloc(e->num_conds, sizeof(*e->tested_headers))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < e->num_conds; i++) {
        const cond_t *cd = &e->conds[i];
        size_t k = 0;
        if (cd->attr != ATTR_HEADER)
            continue;
        while (k < n && strcmp(e->tested_headers[k], cd->header) != 0)
            k++;
        if (k == n)
            e->tested_headers[n++] = cd->header;
    }
    e->num_tested_headers = n;
    return 0;
}

void rm_authz_log_closest_miss(rm_log_line_t *l, const rm_authz_decision_t *d, const rm_authz_attrs_t *a)
{
    char buf[600];
    if (d->miss_policy == NULL)
        return;
    rm_log_object_begin(l, "closest_miss");
    snprintf(buf, sizeof(buf), "%s/%s", d->miss_policy->namespace_, d->miss_policy->name);
    rm_log_str(l, "policy", buf);
    rm_log_int(l, "rule", d->miss_rule);
    rm_log_str(l, "field", rm_authz_closest_miss_field(d, buf, sizeof(buf)));
    if (d->miss_key != NULL)
        rm_log_str(l, "key", d->miss_key);
    rm_log_array_begin(l, "want");
    for (size_t i = 0; d->miss_want != NULL && i < d->miss_want->n; i++)
        rm_log_array_strn(l, d->miss_want->v[i], strlen(d->miss_want->v[i]));
    rm_log_array_end(l);
    if (rm_authz_closest_miss_got(d, a, buf, sizeof(buf)))
        rm_log_str(l, "got", buf);
    else
        rm_log_str(l, "got", NULL);
    rm_log_uint(l, "matched_fields", d->miss_matched);
    rm_log_uint(l, "fields", d->miss_fields);
    if (d->miss_partial)
        rm_log_bool(l, "partial", 1);
    rm_log_object_end(l);
}

/* One header's values joined with "," as the engine matches them, each field at most as long as the line allows. */
static void log_header(rm_log_line_t *l, const rm_http_request_t *r, const char *name)
{
    char buf[2048];
    size_t o = 0, name_len = strlen(name);
    int found = 0;
    for (size_t i = 0; i < r->num_headers; i++) {
        const rm_http_header_t *h = &r->headers[i];
        if (h->name_len != name_len || strncasecmp(h->name, name, name_len) != 0)
            continue;
        if (found++ > 0 && o < sizeof(buf))
            buf[o++] = ',';
        size_t n = h->value_len < sizeof(buf) - o ? h->value_len : sizeof(buf) - o;
        memcpy(buf + o, h->value, n);
        o += n;
    }
    if (found)
        rm_log_strn(l, name, buf, o);
}

/* The value at claim path "a][b" (as a request.auth.claims[a][b] condition writes it) in the token's payload, or
 * NULL. */
static const json_t *claim_at(const json_t *claims, const char *path, size_t len)
{
    const json_t *v = claims;
    size_t i = 0;
    while (v != NULL && i <= len) {
        const char *end = path + i;
        while (end < path + len && !(end + 1 < path + len && end[0] == ']' && end[1] == '['))
            end++;
        if (!json_is_object(v))
            return NULL;
        v = json_object_getn(v, path + i, (size_t)(end - (path + i)));
        i = (size_t)(end - path) + 2;
    }
    return v;
}

/* The authenticated end-user token the engine reads (request.auth.*): its principal ("iss/sub"), audiences and
 * presenter, and only the claims some condition of the engine references, each under its path as the condition
 * writes it ("groups", "org][team"): a string, a list of strings, or another JSON value as its compact text. The
 * token itself and its other claims are never written. */
static void log_request_auth(rm_log_line_t *l, const rm_authz_engine_t *e, const rm_authz_attrs_t *a)
{
    const rm_request_auth_t *ra = a->request_auth;
    if (ra == NULL)
        return;
    rm_log_object_begin(l, "request_auth");
    if (ra->principal != NULL)
        rm_log_str(l, "principal", ra->principal);
    rm_log_array_begin(l, "audiences");
    for (size_t i = 0; i < ra->num_audiences; i++)
        rm_log_array_strn(l, ra->audiences[i], strlen(ra->audiences[i]));
    rm_log_array_end(l);
    if (ra->presenter != NULL)
        rm_log_str(l, "presenter", ra->presenter);
    rm_log_object_begin(l, "claims");
    for (size_t i = 0; e != NULL && ra->claims != NULL && i < e->num_conds; i++) {
        const cond_t *c = &e->conds[i];
        int seen = 0;
        if (c->attr != ATTR_REQ_CLAIM || c->header == NULL)
            continue;
        for (size_t k = 0; k < i && !seen; k++) /* each path once */
            seen = e->conds[k].attr == ATTR_REQ_CLAIM && e->conds[k].header != NULL &&
                   e->conds[k].header_len == c->header_len && memcmp(e->conds[k].header, c->header, c->header_len) == 0;
        const json_t *v = seen ? NULL : claim_at(ra->claims, c->header, c->header_len);
        if (v == NULL || c->header_len >= 256)
            continue;
        char key[256];
        memcpy(key, c->header, c->header_len);
        key[c->header_len] = '\0';
        if (json_is_string(v)) {
            rm_log_strn(l, key, json_string_value(v), json_string_length(v));
        } else if (json_is_array(v)) {
            size_t j;
            const json_t *x;
            rm_log_array_begin(l, key);
            json_array_foreach(v, j, x) if (json_is_string(x))
                rm_log_array_strn(l, json_string_value(x), json_string_length(x));
            rm_log_array_end(l);
        } else {
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            if (text != NULL)
                rm_log_str(l, key, text);
            free(text);
        }
    }
    rm_log_object_end(l);
    rm_log_object_end(l);
}

void rm_authz_log_workload(rm_log_line_t *l, const char *ns, char *const *labels, size_t num_labels)
{
    if (ns == NULL)
        return;
    rm_log_str(l, "workload_namespace", ns);
    rm_log_object_begin(l, "workload_labels");
    for (size_t i = 0; i < num_labels; i++) {
        const char *eq = strchr(labels[i], '=');
        char key[320];
        if (eq == NULL || (size_t)(eq - labels[i]) >= sizeof(key))
            continue;
        memcpy(key, labels[i], (size_t)(eq - labels[i]));
        key[eq - labels[i]] = '\0';
        rm_log_str(l, key, eq + 1);
    }
    rm_log_object_end(l);
}

void rm_authz_log_attributes(rm_log_line_t *l, const rm_authz_engine_t *e, const rm_authz_attrs_t *a)
{
    rm_log_object_begin(l, "attributes");
    rm_log_str(l, "principal", a->principal);
    if (a->have_source_ip)
        rm_authz_log_ip(l, "source_ip", a->source_ip);
    if (a->have_destination_ip)
        rm_authz_log_ip(l, "destination_ip", a->destination_ip);
    rm_log_uint(l, "destination_port", a->destination_port);
    if (a->sni != NULL)
        rm_log_str(l, "sni", a->sni);
    if (a->http != NULL) {
        const rm_http_request_t *r = a->http;
        rm_log_strn(l, "method", r->method, r->method_len);
        if (r->host != NULL)
            rm_log_strn(l, "host", r->host, r->host_len);
        if (r->path != NULL)
            rm_authz_log_path(l, "path", r->path, r->path_len);
        rm_log_object_begin(l, "headers");
        for (size_t i = 0; e != NULL && i < e->num_tested_headers; i++)
            if (!rm_authz_header_secret(e->tested_headers[i], strlen(e->tested_headers[i])))
                log_header(l, r, e->tested_headers[i]);
        rm_log_object_end(l);
    }
    log_request_auth(l, e, a);
    rm_log_object_end(l);
}
