/* Routes of the Kubernetes Gateway API for mesh traffic (GAMMA): HTTPRoute and GRPCRoute of
 * gateway.networking.k8s.io/v1 (Gateway API v1.2; retry from its experimental channel) attached to a Service by
 * their parentRefs, read into one model, and the engine that picks a rule and a backend for a request.
 *
 * Reading (route_json.c, route_yaml.c): an object (a JSON value from the Kubernetes API, or a YAML document of a
 * file) becomes an rm_route_t after the Gateway API's validation and the mesh's own ("not supported" for what the
 * mesh does not do: parentRefs to a Gateway, RequestMirror, ...). An error names the field path
 * ("spec.rules[0].matches[1].path.value") and, for files, the line and column.
 *
 * Matching (route_match.c): a table built once from the routes of one Service answers, for each request, the rule
 * that the Gateway API's precedence selects, with no allocation; a backend is then picked by weight from a
 * caller-given random number. docs/traffic-management.md describes the semantics. */
#ifndef RINGMESH_ROUTE_H
#define RINGMESH_ROUTE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "ringmesh/config.h"
#include "ringmesh/http_request.h"

#define RM_ROUTE_API_GROUP      "gateway.networking.k8s.io"
#define RM_ROUTE_API_VERSION    "gateway.networking.k8s.io/v1"
#define RM_ROUTE_PATH_MAX       1024u /* longest path value the API accepts */
#define RM_ROUTE_WEIGHT_MAX     1000000u
#define RM_ROUTE_TIMEOUT_UNSET  (-1)
#define RM_ROUTE_FIELD_MAX      256u
#define RM_ROUTE_REASON_MAX     512u
#define RM_ROUTE_REQ_TARGET_MAX 8192u /* longest request path a regular expression is tried on */

typedef enum { RM_ROUTE_HTTP = 1, RM_ROUTE_GRPC = 2 } rm_route_kind_t;

typedef enum {
    RM_ROUTE_PATH_NONE = 0,
    RM_ROUTE_PATH_EXACT = 1,
    RM_ROUTE_PATH_PREFIX = 2,
    RM_ROUTE_PATH_REGEX = 3,
} rm_route_path_type_t;

typedef enum { RM_ROUTE_VALUE_EXACT = 1, RM_ROUTE_VALUE_REGEX = 2 } rm_route_value_type_t;

/** A header or query parameter match. Header names are lower-case; query names are as written. `re` is the
 *  compiled expression (a regex_t) of a REGEX match, owned. */
typedef struct st_rm_route_kv_match_t {
    rm_route_value_type_t type;
    char *name;
    char *value;
    void *re;
} rm_route_kv_match_t;

/** One entry of a rule's matches: every condition set must hold. HTTP: path, method, headers, query. gRPC:
 *  service and method (either may be NULL: any), headers. */
typedef struct st_rm_route_match_t {
    rm_route_path_type_t path_type; /* HTTP: never NONE after reading (default PathPrefix "/") */
    char *path;                     /* HTTP: prefix without its trailing '/', "/" for the root */
    void *path_re;
    char *method; /* HTTP method, NULL: any */
    rm_route_value_type_t grpc_type;
    char *grpc_service, *grpc_method; /* gRPC; NULL: any */
    void *grpc_service_re, *grpc_method_re;
    rm_route_kv_match_t *headers;
    size_t num_headers;
    rm_route_kv_match_t *query;
    size_t num_query;
} rm_route_match_t;

typedef struct st_rm_route_header_t {
    char *name, *value;
} rm_route_header_t;

typedef enum {
    RM_ROUTE_FILTER_REQUEST_HEADERS = 1,
    RM_ROUTE_FILTER_RESPONSE_HEADERS = 2,
    RM_ROUTE_FILTER_REDIRECT = 3,
    RM_ROUTE_FILTER_URL_REWRITE = 4,
} rm_route_filter_type_t;

typedef enum { RM_ROUTE_REWRITE_NONE = 0, RM_ROUTE_REWRITE_FULL = 1, RM_ROUTE_REWRITE_PREFIX = 2 } rm_route_rewrite_t;

/** A filter of a rule. Header modifiers use set/add/remove (names lower-case); RequestRedirect uses scheme,
 *  hostname, path, port and status_code; URLRewrite hostname and path. Absent strings are NULL, absent numbers 0. */
typedef struct st_rm_route_filter_t {
    rm_route_filter_type_t type;
    rm_route_header_t *set, *add;
    size_t num_set, num_add;
    char **remove;
    size_t num_remove;
    char *scheme, *hostname;
    rm_route_rewrite_t path_type;
    char *path; /* replaceFullPath or replacePrefixMatch */
    uint32_t port;
    uint32_t status_code; /* 301 or 302; 0: 302 */
} rm_route_filter_t;

/** A backendRef: a Service of the route's namespace and one of its ports. */
typedef struct st_rm_route_backend_t {
    char *namespace_, *name;
    uint32_t port;
    uint32_t weight; /* 0..RM_ROUTE_WEIGHT_MAX, default 1 */
} rm_route_backend_t;

/** Retries of a rule (Gateway API v1.2, experimental channel). `set` 0: the rule says nothing. */
typedef struct st_rm_route_retry_t {
    int set;
    int attempts;    /* -1: not given */
    uint32_t *codes; /* HTTP statuses 400..599 that are retried */
    size_t num_codes;
    int64_t backoff_ms; /* -1: not given */
} rm_route_retry_t;

typedef struct st_rm_route_rule_t {
    char *name; /* rules[].name, NULL when none */
    rm_route_match_t *matches;
    size_t num_matches; /* at least one after reading: an absent list is one match of everything */
    rm_route_filter_t *filters;
    size_t num_filters;
    rm_route_backend_t *backends;
    size_t num_backends;
    uint64_t total_weight;
    int64_t request_timeout_ms;         /* timeouts.request; RM_ROUTE_TIMEOUT_UNSET, 0 disables */
    int64_t backend_request_timeout_ms; /* timeouts.backendRequest; likewise */
    rm_route_retry_t retry;
} rm_route_rule_t;

/** A parentRef to a Service (the only parents the mesh takes). port 0: every port of the Service. */
typedef struct st_rm_route_parent_t {
    char *namespace_, *name;
    uint32_t port;
} rm_route_parent_t;

typedef struct st_rm_route_t {
    rm_route_kind_t kind;
    char *namespace_, *name;
    int64_t created; /* metadata.creationTimestamp, seconds since the epoch; 0 when absent */
    rm_route_parent_t *parents;
    size_t num_parents;
    char **hostnames; /* kept, not matched: a Service parent is chosen by its address */
    size_t num_hostnames;
    rm_route_rule_t *rules;
    size_t num_rules;
} rm_route_t;

/** A reading error: the field path and the reason; file positions are added by the YAML reader. */
typedef struct st_rm_route_error_t {
    char field[RM_ROUTE_FIELD_MAX];
    char reason[RM_ROUTE_REASON_MAX];
} rm_route_error_t;

/** Reads one HTTPRoute or GRPCRoute object (apiVersion, kind, metadata, spec; status and metadata other than name,
 *  namespace and creationTimestamp are ignored). Returns 0 with *out a new route (rm_route_free), RM_ERR_CONFIG_VALUE
 *  with `err` filled, or -ENOMEM. */
int rm_route_from_json(const json_t *obj, rm_route_t **out, rm_route_error_t *err);

/** Whether a document's kind and apiVersion are a route's: 1 for HTTPRoute/GRPCRoute of any group (the reader then
 *  refuses a wrong group or version with a message), else 0. */
int rm_route_is_route_kind(const char *kind);

/** Frees a route. NULL is fine. */
void rm_route_free(rm_route_t *r);

/** A list of routes read from files, in reading order. The all-zero value is an empty list. */
typedef struct st_rm_route_list_t {
    rm_route_t **routes;
    size_t num;
    size_t cap;
    char **files; /* where each was read, for messages (one per route) */
    unsigned *lines;
} rm_route_list_t;

/** Reads the HTTPRoute and GRPCRoute documents of YAML text data[0..len), shown as `shown` in messages, into
 *  `list`; documents of other kinds are passed over. The first error is recorded in `err` with file, line, column
 *  and field (RM_ERR_CONFIG_PARSE for YAML syntax, RM_ERR_CONFIG_VALUE for values) and returned. */
int rm_route_load_yaml(rm_route_list_t *list, const char *data, size_t len, const char *shown, rm_config_error_t *err);

/** Appends a route (ownership taken, also on failure). Returns 0 or -ENOMEM. */
int rm_route_list_push(rm_route_list_t *list, rm_route_t *r, const char *file, unsigned line);

/** Checks across routes: one kind/namespace/name once. Returns 0 or RM_ERR_CONFIG_VALUE with `err` filled. */
int rm_route_list_check(const rm_route_list_t *list, rm_config_error_t *err);

/** Frees the routes and empties the list. */
void rm_route_list_clear(rm_route_list_t *list);

/** Whether a route has a parentRef to Service namespace/name. */
int rm_route_has_parent(const rm_route_t *r, const char *namespace_, const char *name);

/** Orders routes as the Gateway API ranks them on ties: oldest first, then by "namespace/name" (then kind). */
int rm_route_compare(const rm_route_t *a, const rm_route_t *b);

/* ---------------------------------------------------------------------------------------------------------
 * Matching.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_rm_route_table_t rm_route_table_t;

/** Builds the table of Service namespace/name from `routes` (those without a parentRef to it are left out). The
 *  table borrows the routes: they must outlive it. Returns 0 or -ENOMEM. */
int rm_route_table_build(const rm_route_t *const *routes, size_t num, const char *namespace_, const char *name,
                         rm_route_table_t **out);

/** Frees a table (not its routes). NULL is fine. */
void rm_route_table_free(rm_route_table_t *t);

/** How many routes the table holds. */
size_t rm_route_table_num_routes(const rm_route_table_t *t);

typedef struct st_rm_route_choice_t {
    const rm_route_t *route;
    const rm_route_rule_t *rule;
    size_t rule_index, match_index;
} rm_route_choice_t;

/** The rule a request to the Service's `port` (0: any, for tools asking about every port) takes: gRPC requests look at
 * GRPCRoutes first, then HTTPRoutes; other requests at HTTPRoutes. Returns 0 with *out filled, or -ENOENT when no rule
 * matches (the Gateway API answers 404 then). Allocates nothing. */
int rm_route_select(const rm_route_table_t *t, uint16_t port, const rm_http_request_t *req, rm_route_choice_t *out);

/** The backend of `rule` for a uniformly drawn `random`: backend i with probability weight_i / total. NULL when
 *  the rule has no backend of nonzero weight (the Gateway API answers 500 then). */
const rm_route_backend_t *rm_route_pick_backend(const rm_route_rule_t *rule, uint32_t random);

#endif
