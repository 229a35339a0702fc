/* ringmeshctl route check: which route, rule and backend a request to a Service takes, with the sidecar's route
 * reader and matching engine (ringmesh/route.h), so that a team can test its HTTPRoutes and GRPCRoutes before
 * applying them. */
#include "ctl.h"

#include "ringmesh/config.h"
#include "ringmesh/route.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>

#define MAX_FILE_SIZE (4u << 20)
#define MAX_HEADERS   RM_CTL_FLAG_MAX_VALUES

static const rm_ctl_level_t *const level = &rm__ctl_route_level;

static int usage_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "%s %s: %s\nrun '%s --help' for usage\n", level->path, cmd, msg, level->path);
    return RM_CTL_EXIT_USAGE;
}

static int name_is_yaml(const char *n)
{
    size_t l = strlen(n);
    return n[0] != '.' && ((l > 5 && strcmp(n + l - 5, ".yaml") == 0) || (l > 4 && strcmp(n + l - 4, ".yml") == 0));
}

/* One file. Returns 0, RM_CTL_EXIT_USAGE (printed) when it cannot be read, RM_CTL_EXIT_INVALID (printed) for invalid
 * routes. */
static int load_file(rm_route_list_t *list, const char *path)
{
    rm_config_error_t err = {0};
    char *data = NULL, msg[2048];
    size_t len = 0;
    int r = rm_file_read(path, MAX_FILE_SIZE, &data, &len), ret = 0;

    if (r != 0)
        return rm__ctl_file_error(path, NULL, r);
    if (rm_route_load_yaml(list, data, len, path, &err) != 0) {
        rm_config_error_format(&err, msg, sizeof(msg));
        fprintf(stderr, "ringmeshctl route check: %s\n", msg);
        ret = RM_CTL_EXIT_INVALID;
    }
    free(data);
    return ret;
}

/* A file, or every *.yaml / *.yml file of a directory in name order (subdirectories are not read, as in the file
 * source). Returns as load_file(). */
static int load_path(rm_route_list_t *list, const char *path)
{
    struct stat st;
    struct dirent **names = NULL;
    int n, ret = 0;

    if (stat(path, &st) != 0)
        return rm__ctl_file_error(path, NULL, -errno);
    if (!S_ISDIR(st.st_mode))
        return load_file(list, path);
    if ((n = scandir(path, &names, NULL, alphasort)) < 0)
        return rm__ctl_file_error(path, NULL, -errno);
    for (int i = 0; i < n; i++) {
        char child[4096];
        struct stat cst;
        if (ret == 0 && name_is_yaml(names[i]->d_name) &&
            snprintf(child, sizeof(child), "%s/%s", path, names[i]->d_name) < (int)sizeof(child) &&
            stat(child, &cst) == 0 && S_ISREG(cst.st_mode))
            ret = load_file(list, child);
        free(names[i]);
    }
    free(names);
    return ret;
}

static const char *filter_name(rm_route_filter_type_t t)
{
    switch (t) {
    case RM_ROUTE_FILTER_REQUEST_HEADERS:
        return "RequestHeaderModifier";
    case RM_ROUTE_FILTER_RESPONSE_HEADERS:
        return "ResponseHeaderModifier";
    case RM_ROUTE_FILTER_REDIRECT:
        return "RequestRedirect";
    default:
        return "URLRewrite";
    }
}

/* The answer as one JSON object (also the source of the text output). */
static json_t *answer(const rm_route_list_t *list, const rm_route_choice_t *c, const rm_route_backend_t *b,
                      const char *service, uint32_t random)
{
    json_t *o = json_object();
    json_object_set_new(o, "service", json_string(service));
    if (c == NULL) {
        json_object_set_new(o, "status", json_integer(404));
        json_object_set_new(o, "reason", json_string("no rule of the Service's routes matches the request"));
        return o;
    }
    const rm_route_t *r = c->route;
    const rm_route_rule_t *rule = c->rule;
    json_t *route = json_object(), *backends = json_array(), *filters = json_array();
    for (size_t i = 0; i < list->num; i++)
        if (list->routes[i] == r) {
            json_object_set_new(route, "file", json_string(list->files[i]));
            json_object_set_new(route, "line", json_integer(list->lines[i]));
        }
    json_object_set_new(route, "kind", json_string(r->kind == RM_ROUTE_GRPC ? "GRPCRoute" : "HTTPRoute"));
    json_object_set_new(route, "namespace", json_string(r->namespace_));
    json_object_set_new(route, "name", json_string(r->name));
    json_object_set_new(o, "route", route);
    json_object_set_new(o, "rule", json_integer((json_int_t)c->rule_index));
    if (rule->name != NULL)
        json_object_set_new(o, "ruleName", json_string(rule->name));
    json_object_set_new(o, "match", json_integer((json_int_t)c->match_index));
    for (size_t i = 0; i < rule->num_filters; i++)
        json_array_append_new(filters, json_string(filter_name(rule->filters[i].type)));
    json_object_set_new(o, "filters", filters);
    for (size_t i = 0; i < rule->num_backends; i++) {
        const rm_route_backend_t *x = &rule->backends[i];
        json_array_append_new(backends,
                              json_pack("{s:s,s:s,s:I,s:I,s:f}", "namespace", x->namespace_, "name", x->name, "port",
                                        (json_int_t)x->port, "weight", (json_int_t)x->weight, "share",
                                        rule->total_weight > 0 ? 100.0 * x->weight / (double)rule->total_weight : 0.0));
    }
    json_object_set_new(o, "backends", backends);
    int redirect = 0;
    for (size_t i = 0; i < rule->num_filters; i++)
        redirect |= rule->filters[i].type == RM_ROUTE_FILTER_REDIRECT;
    if (b != NULL) {
        json_object_set_new(
            o, "backend",
            json_pack("{s:s,s:s,s:I}", "namespace", b->namespace_, "name", b->name, "port", (json_int_t)b->port));
        json_object_set_new(o, "random", json_integer(random));
    }
    json_object_set_new(o, "status", json_integer(redirect ? 302 : b != NULL ? 200 : 500));
    if (redirect)
        json_object_set_new(o, "reason", json_string("the rule redirects"));
    else if (b == NULL)
        json_object_set_new(o, "reason", json_string("the rule has no backend of nonzero weight"));
    if (rule->request_timeout_ms >= 0)
        json_object_set_new(o, "requestTimeoutMs", json_integer(rule->request_timeout_ms));
    if (rule->backend_request_timeout_ms >= 0)
        json_object_set_new(o, "backendRequestTimeoutMs", json_integer(rule->backend_request_timeout_ms));
    if (rule->retry.set) {
        json_t *retry = json_object(), *codes = json_array();
        if (rule->retry.attempts >= 0)
            json_object_set_new(retry, "attempts", json_integer(rule->retry.attempts));
        for (size_t i = 0; i < rule->retry.num_codes; i++)
            json_array_append_new(codes, json_integer(rule->retry.codes[i]));
        json_object_set_new(retry, "codes", codes);
        if (rule->retry.backoff_ms >= 0)
            json_object_set_new(retry, "backoffMs", json_integer(rule->retry.backoff_ms));
        json_object_set_new(o, "retry", retry);
    }
    return o;
}

static void print_text(const json_t *o)
{
    const json_t *route = json_object_get(o, "route"), *v;
    size_t i;
    printf("service: %s\n", json_string_value(json_object_get(o, "service")));
    printf("status: %lld", (long long)json_integer_value(json_object_get(o, "status")));
    if (json_object_get(o, "reason") != NULL)
        printf(" (%s)", json_string_value(json_object_get(o, "reason")));
    printf("\n");
    if (route == NULL)
        return;
    printf("route: %s %s/%s (%s:%lld)\n", json_string_value(json_object_get(route, "kind")),
           json_string_value(json_object_get(route, "namespace")), json_string_value(json_object_get(route, "name")),
           json_string_value(json_object_get(route, "file")),
           (long long)json_integer_value(json_object_get(route, "line")));
    printf("rule: %lld", (long long)json_integer_value(json_object_get(o, "rule")));
    if (json_object_get(o, "ruleName") != NULL)
        printf(" (%s)", json_string_value(json_object_get(o, "ruleName")));
    printf(", match %lld\n", (long long)json_integer_value(json_object_get(o, "match")));
    if ((v = json_object_get(o, "backend")) != NULL)
        printf("backend: %s/%s:%lld\n", json_string_value(json_object_get(v, "namespace")),
               json_string_value(json_object_get(v, "name")),
               (long long)json_integer_value(json_object_get(v, "port")));
    printf("backends:");
    const json_t *list = json_object_get(o, "backends");
    for (i = 0; i < json_array_size(list); i++) {
        v = json_array_get(list, i);
        printf(
            "%s %s/%s:%lld weight %lld (%.1f%%)", i > 0 ? "," : "", json_string_value(json_object_get(v, "namespace")),
            json_string_value(json_object_get(v, "name")), (long long)json_integer_value(json_object_get(v, "port")),
            (long long)json_integer_value(json_object_get(v, "weight")), json_real_value(json_object_get(v, "share")));
    }
    printf("%s\n", json_array_size(list) == 0 ? " none" : "");
    printf("filters:");
    list = json_object_get(o, "filters");
    for (i = 0; i < json_array_size(list); i++)
        printf("%s %s", i > 0 ? "," : "", json_string_value(json_array_get(list, i)));
    printf("%s\n", json_array_size(list) == 0 ? " none" : "");
    if ((v = json_object_get(o, "requestTimeoutMs")) != NULL)
        printf("timeout: request %lldms\n", (long long)json_integer_value(v));
    if ((v = json_object_get(o, "backendRequestTimeoutMs")) != NULL)
        printf("timeout: backendRequest %lldms\n", (long long)json_integer_value(v));
    if ((v = json_object_get(o, "retry")) != NULL) {
        char *s = json_dumps(v, JSON_COMPACT);
        printf("retry: %s\n", s != NULL ? s : "");
        free(s);
    }
}

enum { R_FILE, R_SERVICE, R_PORT, R_METHOD, R_PATH, R_HEADER, R_AUTHORITY, R_GRPC, R_RANDOM, R_OUTPUT, R_NUM };

static int route_check(int argc, char **argv)
{
    flag_t flags[R_NUM] = {
        [R_FILE] = {"file", 1, 1, 'f'},     [R_SERVICE] = {"service", 1}, [R_PORT] = {"port", 1},
        [R_METHOD] = {"method", 1},         [R_PATH] = {"path", 1},       [R_HEADER] = {"header", 1, 1},
        [R_AUTHORITY] = {"authority", 1},   [R_GRPC] = {"grpc", 0},       [R_RANDOM] = {"random", 1},
        [R_OUTPUT] = {"output", 1, 0, 'o'},
    };
    rm_route_list_t list = {0};
    rm_route_table_t *table = NULL;
    rm_http_header_t headers[MAX_HEADERS];
    rm_http_request_t req = {0};
    rm_route_choice_t c;
    const rm_route_backend_t *b = NULL;
    char ns[64], service[320];
    const char *name;
    unsigned long port = 0;
    uint32_t random = 0;
    int ret = RM_CTL_EXIT_USAGE, json = 0, matched;
    json_t *o = NULL;

    if (rm__ctl_flags(level, argc, argv, flags, R_NUM, &ret) != 0)
        return ret;
    if (flags[R_FILE].count == 0)
        return usage_error("check", "-f is required");
    if (flags[R_OUTPUT].value != NULL) {
        if (strcmp(flags[R_OUTPUT].value, "json") == 0)
            json = 1;
        else if (strcmp(flags[R_OUTPUT].value, "text") != 0)
            return usage_error("check", "-o must be text or json");
    }
    if (flags[R_PORT].value != NULL) {
        char *end;
        port = strtoul(flags[R_PORT].value, &end, 10);
        if (*end != '\0' || port < 1 || port > 65535)
            return usage_error("check", "--port wants a number from 1 to 65535");
    }
    if (flags[R_RANDOM].value != NULL) {
        char *end;
        unsigned long long r = strtoull(flags[R_RANDOM].value, &end, 10);
        if (*end != '\0' || flags[R_RANDOM].value[0] == '-' || r > UINT32_MAX)
            return usage_error("check", "--random wants a number from 0 to 4294967295");
        random = (uint32_t)r;
    } else if (getrandom(&random, sizeof(random), 0) != (ssize_t)sizeof(random)) {
        random = 0;
    }
    req.method = flags[R_METHOD].value != NULL ? flags[R_METHOD].value : flags[R_GRPC].value != NULL ? "POST" : "GET";
    req.method_len = strlen(req.method);
    req.path = flags[R_PATH].value != NULL ? flags[R_PATH].value : "/";
    req.path_len = strlen(req.path);
    req.grpc = flags[R_GRPC].value != NULL;
    if (flags[R_AUTHORITY].value != NULL) {
        req.host = flags[R_AUTHORITY].value;
        req.host_len = strlen(req.host);
    }
    for (size_t i = 0; i < flags[R_HEADER].count; i++) {
        const char *h = flags[R_HEADER].values[i], *eq = strchr(h, '=');
        if (eq == NULL || eq == h)
            return usage_error("check", "--header wants NAME=VALUE");
        headers[i] = (rm_http_header_t){h, (size_t)(eq - h), eq + 1, strlen(eq + 1)};
        if (headers[i].name_len == 12 && strncasecmp(h, "content-type", 12) == 0 &&
            strncmp(eq + 1, "application/grpc", 16) == 0)
            req.grpc = 1;
    }
    req.headers = headers;
    req.num_headers = flags[R_HEADER].count;

    for (size_t i = 0; i < flags[R_FILE].count; i++)
        if ((ret = load_path(&list, flags[R_FILE].values[i])) != 0)
            goto Exit;
    rm_config_error_t err = {0};
    if (rm_route_list_check(&list, &err) != 0) {
        char msg[2048];
        rm_config_error_format(&err, msg, sizeof(msg));
        fprintf(stderr, "ringmeshctl route check: %s\n", msg);
        ret = RM_CTL_EXIT_INVALID;
        goto Exit;
    }
    /* the Service: as given, or the one parent every route names */
    if (flags[R_SERVICE].value != NULL) {
        snprintf(service, sizeof(service), "%s", flags[R_SERVICE].value);
    } else {
        service[0] = '\0';
        for (size_t i = 0; i < list.num; i++)
            for (size_t p = 0; p < list.routes[i]->num_parents; p++) {
                char s[320];
                snprintf(s, sizeof(s), "%s/%s", list.routes[i]->parents[p].namespace_, list.routes[i]->parents[p].name);
                if (service[0] != '\0' && strcmp(s, service) != 0) {
                    ret =
                        usage_error("check", "the routes attach to several Services: name one with --service NS/NAME");
                    goto Exit;
                }
                memcpy(service, s, sizeof(s));
            }
        if (service[0] == '\0') {
            ret = usage_error("check", "no HTTPRoute or GRPCRoute in the files");
            goto Exit;
        }
    }
    name = strchr(service, '/');
    if (name == NULL || name == service || (size_t)(name - service) >= sizeof(ns) || name[1] == '\0') {
        ret = usage_error("check", "--service wants NAMESPACE/NAME");
        goto Exit;
    }
    memcpy(ns, service, (size_t)(name - service));
    ns[name - service] = '\0';
    name++;
    if (rm_route_table_build((const rm_route_t *const *)list.routes, list.num, ns, name, &table) != 0) {
        fprintf(stderr, "ringmeshctl route check: out of memory\n");
        ret = RM_CTL_EXIT_USAGE;
        goto Exit;
    }
    matched = rm_route_select(table, (uint16_t)port, &req, &c) == 0;
    if (matched)
        b = rm_route_pick_backend(c.rule, random);
    if ((o = answer(&list, matched ? &c : NULL, b, service, random)) == NULL) {
        fprintf(stderr, "ringmeshctl route check: out of memory\n");
        ret = RM_CTL_EXIT_USAGE;
        goto Exit;
    }
    if (json) {
        char *s = json_dumps(o, JSON_COMPACT);
        printf("%s\n", s != NULL ? s : "{}");
        free(s);
    } else {
        print_text(o);
    }
    ret = json_integer_value(json_object_get(o, "status")) >= 400 ? RM_CTL_EXIT_DENIED : RM_CTL_EXIT_OK;
Exit:
    json_decref(o);
    rm_route_table_free(table);
    rm_route_list_clear(&list);
    return ret;
}

static const rm_ctl_command_t commands[] = {
    {.name = "check",
     .summary = "which route, rule and backend a request to a Service takes",
     .handler = route_check,
     .usage = "ringmeshctl route check -f FILE|DIR... [--service NS/NAME] [--port N] [--method M] [--path P]\n"
              "                               [--header k=v]... [--authority H] [--grpc] [--random N] [-o text|json]",
     .help = "reads HTTPRoute and GRPCRoute documents (gateway.networking.k8s.io/v1; other kinds are passed over)\n"
             "with the control plane's validation, and prints the route, rule and backend a request to the\n"
             "Service (--service, or the one Service the routes attach to) would take, with the sidecar's\n"
             "matching engine: Gateway API precedence, then a backend by weight for the number --random\n"
             "(0..4294967295, drawn when absent). --port is the Service port called (absent: routes of every\n"
             "port). --grpc (or --header content-type=application/grpc) makes a gRPC request, whose --path is\n"
             "/package.Service/Method. Exit 0 routed (200) or redirected, 3 no match (404) or no backend (500),\n"
             "1 invalid routes, 2 usage or file error."},
};

const rm_ctl_level_t rm__ctl_route_level = {
    .path = "ringmeshctl route",
    .noun = "subcommand",
    .commands = commands,
    .num_commands = sizeof(commands) / sizeof(commands[0]),
};
