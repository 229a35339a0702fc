/* Between the files of the route reader (route_json.c, route_filters.c, route_model.c): the reading context and
 * the checks of single values that the Gateway API's schema makes. */
#ifndef RINGMESH_ROUTE_INTERNAL_H
#define RINGMESH_ROUTE_INTERNAL_H

#include "ringmesh/route.h"

#include <jansson.h>
#include <stdarg.h>

#define ROUTE_PATH_MAX 200u

typedef struct st_route_ctx_t {
    rm_route_error_t *err;
    rm_route_kind_t kind;
    const char *namespace_; /* the route's */
} route_ctx_t;

/** Records an error for `path` in ctx->err; returns RM_ERR_CONFIG_VALUE. */
int rm__route_fail(route_ctx_t *ctx, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** Refuses keys of mapping `obj` (at `path`) that are not in the NULL-terminated `known`. */
int rm__route_check_keys(route_ctx_t *ctx, const json_t *obj, const char *path, const char *const *known);

/** `path`.`key` (or `key` when path is empty) into buf. */
const char *rm__route_child(char *buf, const char *path, const char *key);

/** `path`[i] into buf. */
const char *rm__route_index(char *buf, const char *path, size_t i);

/** Reads string `key` of `obj`: *out a copy, or NULL when absent/null. Refuses other types and strings longer than
 *  `max`, and an absent value when `required`. */
int rm__route_get_str(route_ctx_t *ctx, const json_t *obj, const char *key, const char *path, size_t max, int required,
                      char **out);

/** Reads integer `key` (a JSON integer, or a string of decimal digits) in [min, max]; *out untouched when absent.
 *  *present says whether it was there. */
int rm__route_get_int(route_ctx_t *ctx, const json_t *obj, const char *key, const char *path, int64_t min, int64_t max,
                      int64_t *out, int *present);

/** The list `key` of `obj` (at most `max` entries), or NULL when absent or null. */
int rm__route_get_list(route_ctx_t *ctx, const json_t *obj, const char *key, const char *path, size_t max,
                       const json_t **out);

/** The mapping `key` of `obj`, or NULL when absent or null. */
int rm__route_get_map(route_ctx_t *ctx, const json_t *obj, const char *key, const char *path, const json_t **out);

/** A DNS-1123 label (max 63) or subdomain (max 253). */
int rm__route_is_dns_label(const char *s);
int rm__route_is_dns_subdomain(const char *s);

/** An HTTP token (header or query parameter names). */
int rm__route_is_token(const char *s);

/** Compiles a POSIX extended regular expression anchored at both ends into *out (a regex_t). */
int rm__route_regex(route_ctx_t *ctx, const char *path, const char *expr, void **out);

/** Frees a compiled expression. NULL is fine. */
void rm__route_regex_free(void *re);

/** A Gateway API Duration ("1h", "30s", "500ms", up to four groups of at most 5 digits) into ms. */
int rm__route_duration(route_ctx_t *ctx, const char *path, const char *s, int64_t *ms);

/** Reads rules[i].filters into the rule. */
int rm__route_read_filters(route_ctx_t *ctx, const json_t *rule, const char *path, rm_route_rule_t *out);

/** Reads rules[i].backendRefs into the rule. */
int rm__route_read_backends(route_ctx_t *ctx, const json_t *rule, const char *path, rm_route_rule_t *out);

/** Reads rules[i].timeouts and rules[i].retry into the rule. */
int rm__route_read_timeouts(route_ctx_t *ctx, const json_t *rule, const char *path, rm_route_rule_t *out);

/** Frees what a filter holds. */
void rm__route_filter_clear(rm_route_filter_t *f);

#endif
