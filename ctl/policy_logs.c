/* Log lines back into requests (policy_logs.h). A decision line ("authz") gives its request from "attributes" when
 * the proxy logged them (authorization.logAttributes) and else from its own fields (principal, addresses, port, SNI,
 * method, path, host: no headers); an access line from what the access log says of an inbound exchange. */
#include "policy_logs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

void rm__replay_req_clear(rm_replay_req_t *r)
{
    json_decref(r->claims);
    json_decref(r->root);
    memset(r, 0, sizeof(*r));
}

/* "ip:port" or "[ip6]:port" of the access log: the address into out, the port into *port */
static int split_addr(const char *s, uint8_t out[16], uint16_t *port)
{
    char ip[64];
    const char *colon;
    if (s == NULL)
        return -1;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || (size_t)(end - s - 1) >= sizeof(ip))
            return -1;
        memcpy(ip, s + 1, (size_t)(end - s - 1));
        ip[end - s - 1] = '\0';
        colon = end + 1;
    } else {
        if ((colon = strrchr(s, ':')) == NULL || (size_t)(colon - s) >= sizeof(ip))
            return -1;
        memcpy(ip, s, (size_t)(colon - s));
        ip[colon - s] = '\0';
    }
    if (*colon != ':' || rm_authz_ip_parse(ip, out) != 0)
        return -1;
    if (port != NULL)
        *port = (uint16_t)strtoul(colon + 1, NULL, 10);
    return 0;
}

static void set_http(rm_replay_req_t *r, const char *method, const char *path, const char *host)
{
    r->http.method = method != NULL ? method : "GET";
    r->http.method_len = strlen(r->http.method);
    r->http.path = path;
    r->http.path_len = path != NULL ? strlen(path) : 0;
    r->http.host = host;
    r->http.host_len = host != NULL ? strlen(host) : 0;
    r->http.headers = r->headers;
    r->a.http = &r->http;
}

static void add_headers(rm_replay_req_t *r, json_t *hs)
{
    const char *k;
    json_t *v;
    json_object_foreach(hs, k, v)
    {
        if (!json_is_string(v) || r->http.num_headers == RM_REPLAY_MAX_HEADERS)
            continue;
        r->headers[r->http.num_headers++] =
            (rm_http_header_t){k, strlen(k), json_string_value(v), json_string_length(v)};
    }
}

static void add_labels(rm_replay_req_t *r, json_t *ls)
{
    const char *k;
    json_t *v;
    json_object_foreach(ls, k, v)
    {
        if (json_is_string(v) && r->num_labels < RM_REPLAY_MAX_LABELS)
            r->labels[r->num_labels++] = (rm_label_t){(char *)k, (char *)json_string_value(v)};
    }
}

static void set_ip(const char *s, uint8_t out[16], uint8_t *have)
{
    if (s != NULL && rm_authz_ip_parse(s, out) == 0)
        *have = 1;
}

/* The recorded claims, each under its path "a][b", back into a payload tree {"a": {"b": value}}. Returns 0 or -1. */
static int rebuild_claims(json_t *recorded, json_t **out)
{
    const char *path;
    json_t *v;
    if ((*out = json_object()) == NULL)
        return -1;
    json_object_foreach(recorded, path, v)
    {
        json_t *node = *out;
        const char *seg = path, *end;
        while ((end = strstr(seg, "][")) != NULL) {
            json_t *next = json_object_getn(node, seg, (size_t)(end - seg));
            if (next == NULL) {
                if ((next = json_object()) == NULL || json_object_setn_new(node, seg, (size_t)(end - seg), next) != 0)
                    return -1;
            } else if (!json_is_object(next)) {
                break;
            }
            node = next, seg = end + 2;
        }
        if (end == NULL && json_object_set(node, seg, v) != 0)
            return -1;
    }
    return 0;
}

/* attributes.request_auth: the token's principal, audiences, presenter and the claims some policy referenced */
static int set_request_auth(rm_replay_req_t *r, json_t *ra)
{
    json_t *aud = json_object_get(ra, "audiences"), *x;
    size_t i;
    r->request_auth.principal = jstr(ra, "principal");
    r->request_auth.presenter = jstr(ra, "presenter");
    json_array_foreach(aud, i, x) if (json_is_string(x) && r->request_auth.num_audiences < RM_REPLAY_MAX_AUDIENCES)
        r->audiences[r->request_auth.num_audiences++] = json_string_value(x);
    r->request_auth.audiences = r->audiences;
    if (json_is_object(json_object_get(ra, "claims")) && rebuild_claims(json_object_get(ra, "claims"), &r->claims) != 0)
        return -1;
    r->request_auth.claims = r->claims;
    r->a.request_auth = &r->request_auth;
    return 0;
}

static int authz_line(rm_replay_req_t *r)
{
    json_t *j = r->root, *at = json_object_get(j, "attributes");
    const char *decision = jstr(j, "decision");
    if (decision == NULL)
        return 0;
    r->event = RM_REPLAY_AUTHZ;
    r->recorded_allow = strcmp(decision, "deny") != 0; /* allow, audit, would-deny: allowed */
    if (json_is_object(at)) {
        r->a.principal = jstr(at, "principal");
        set_ip(jstr(at, "source_ip"), r->a.source_ip, &r->a.have_source_ip);
        set_ip(jstr(at, "destination_ip"), r->a.destination_ip, &r->a.have_destination_ip);
        r->a.destination_port = (uint16_t)json_integer_value(json_object_get(at, "destination_port"));
        r->a.sni = jstr(at, "sni");
        if (jstr(at, "method") != NULL) {
            set_http(r, jstr(at, "method"), jstr(at, "path"), jstr(at, "host"));
            add_headers(r, json_object_get(at, "headers"));
        }
        if (json_is_object(json_object_get(at, "request_auth")) &&
            set_request_auth(r, json_object_get(at, "request_auth")) != 0)
            return 0;
    } else {
        const char *proto = jstr(j, "protocol");
        r->a.principal = jstr(j, "source_principal");
        set_ip(jstr(j, "source_ip"), r->a.source_ip, &r->a.have_source_ip);
        set_ip(jstr(j, "destination_ip"), r->a.destination_ip, &r->a.have_destination_ip);
        r->a.destination_port = (uint16_t)json_integer_value(json_object_get(j, "destination_port"));
        r->a.sni = jstr(j, "sni");
        if (proto != NULL && strcmp(proto, "tcp") != 0)
            set_http(r, jstr(j, "method"), jstr(j, "path"), jstr(j, "host"));
    }
    if ((r->ns = jstr(j, "workload_namespace")) != NULL) {
        r->have_workload = 1;
        add_labels(r, json_object_get(j, "workload_labels"));
    }
    r->destination = jstr(j, "destination_workload");
    return 1;
}

static int access_line(rm_replay_req_t *r)
{
    json_t *j = r->root;
    const char *reporter = jstr(j, "reporter"), *decision = jstr(j, "authz_decision"), *proto = jstr(j, "protocol");
    const char *ns = jstr(j, "destination_namespace"), *app = jstr(j, "destination_app");
    if (reporter == NULL || strcmp(reporter, "destination") != 0 || decision == NULL)
        return 0; /* an outbound exchange, or one no policy decided */
    r->event = RM_REPLAY_ACCESS;
    r->recorded_allow = strcmp(decision, "deny") != 0;
    r->a.principal = jstr(j, "source_principal");
    if (r->a.principal != NULL && r->a.principal[0] == '\0')
        r->a.principal = NULL;
    if (split_addr(jstr(j, "downstream_remote_address"), r->a.source_ip, NULL) == 0)
        r->a.have_source_ip = 1;
    uint8_t ignored[16];
    /* inbound, the app listens on the port the client called (the mesh redirects it unchanged) */
    split_addr(jstr(j, "upstream_host"), ignored, &r->a.destination_port);
    if (proto != NULL && strcmp(proto, "tcp") != 0)
        set_http(r, jstr(j, "method"), jstr(j, "path"), jstr(j, "authority"));
    if (ns != NULL && strcmp(ns, "unknown") != 0) {
        r->have_workload = 1;
        r->ns = ns;
        if (app != NULL && strcmp(app, "unknown") != 0)
            r->labels[r->num_labels++] = (rm_label_t){"app", (char *)app};
    }
    r->destination = jstr(j, "destination_workload");
    return 1;
}

int rm__replay_req_parse(const char *line, size_t len, rm_replay_req_t *r)
{
    const char *brace = memchr(line, '{', len), *event;
    memset(r, 0, sizeof(*r));
    if (brace == NULL)
        return 0;
    if ((r->root = json_loadb(brace, len - (size_t)(brace - line), JSON_DISABLE_EOF_CHECK, NULL)) == NULL ||
        !json_is_object(r->root) || (event = jstr(r->root, "event")) == NULL)
        goto Skip;
    r->trace_id = jstr(r->root, "trace_id");
    if (strcmp(event, "authz") == 0 ? authz_line(r) : strcmp(event, "access") == 0 ? access_line(r) : 0) {
        if (r->destination == NULL)
            r->destination = "-";
        return 1;
    }
Skip:
    rm__replay_req_clear(r);
    return 0;
}

/* ---- engines per workload ---------------------------------------------------------------------------------- */

struct st_rm_replay_engine_entry_t {
    char *key;
    rm_authz_engine_t *engine;
};

int rm__replay_selects(const rm_replay_engines_t *c, const rm_authz_policy_t *p, const rm_replay_req_t *r)
{
    rm_workload_t w = {.namespace_ = r->ns, .labels = r->labels, .num_labels = r->num_labels};
    return !r->have_workload || rm_authz_policy_selects(p, c->root_namespace, &w);
}

/* "ns\nk=v\n..." for a known workload, "" for a line that does not say it */
static char *workload_key(const rm_replay_req_t *r)
{
    size_t len = 2;
    if (r->have_workload) {
        len += strlen(r->ns);
        for (size_t i = 0; i < r->num_labels; i++)
            len += strlen(r->labels[i].key) + strlen(r->labels[i].value) + 2;
    }
    char *k = malloc(len), *o = k;
    if (k == NULL)
        return NULL;
    *o = '\0';
    if (r->have_workload) {
        o += sprintf(o, "%s\n", r->ns);
        for (size_t i = 0; i < r->num_labels; i++)
            o += sprintf(o, "%s=%s\n", r->labels[i].key, r->labels[i].value);
    }
    return k;
}

int rm__replay_engine_for(rm_replay_engines_t *c, const rm_replay_req_t *r, const rm_authz_engine_t **out, char *err,
                          size_t errlen)
{
    const rm_authz_policy_t **sel = NULL;
    size_t nsel = 0;
    char *key = workload_key(r);
    int ret = -ENOMEM;

    if (key == NULL)
        goto Exit;
    for (size_t i = 0; i < c->num; i++)
        if (strcmp(c->entries[i].key, key) == 0) {
            *out = c->entries[i].engine;
            ret = 0;
            goto Exit;
        }
    if (c->num == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 16;
        struct st_rm_replay_engine_entry_t *np = realloc(c->entries, ncap * sizeof(*np));
        if (np == NULL)
            goto Exit;
        c->entries = np;
        c->cap = ncap;
    }
    if ((sel = calloc(c->set->num_policies + 1, sizeof(*sel))) == NULL)
        goto Exit;
    for (size_t i = 0; i < c->set->num_policies; i++)
        if (rm__replay_selects(c, &c->set->policies[i], r))
            sel[nsel++] = &c->set->policies[i];
    rm_authz_engine_t *e;
    if ((ret = rm_authz_engine_new(&e, sel, nsel, &c->opts, err, errlen)) != 0)
        goto Exit;
    c->entries[c->num++] = (struct st_rm_replay_engine_entry_t){key, e};
    key = NULL;
    *out = e;
Exit:
    if (ret == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    free(key);
    free(sel);
    return ret;
}

void rm__replay_engines_clear(rm_replay_engines_t *c)
{
    for (size_t i = 0; i < c->num; i++) {
        free(c->entries[i].key);
        rm_authz_engine_free(c->entries[i].engine);
    }
    free(c->entries);
    c->entries = NULL;
    c->num = c->cap = 0;
}
