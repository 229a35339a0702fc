/* Between the policy loader's two halves: policy_yaml_nodes.c holds the findings list and the checked access to
 * libyaml's node tree and values, policy_yaml.c reads the documents with them. Only these two files include it. */
#ifndef RINGMESH_POLICY_YAML_INTERNAL_H
#define RINGMESH_POLICY_YAML_INTERNAL_H

#include "ringmesh/policy.h"

#include <stddef.h>
#include <yaml.h>

#define POLICY_FILE_MAX   (4u << 20)
#define POLICY_STRING_MAX 4096u
#define POLICY_PATH_MAX   512u
#define POLICY_NODES_MAX  200000u /* nodes per document: far above any real policy */

/* One document being read: where its findings go. */
typedef struct st_loader_t {
    rm_policy_diags_t *diags;
    const char *file;
    yaml_document_t *doc;
    unsigned errors;
    int oom;
} loader_t;

typedef enum {
    VAL_MATCH = 0,
    VAL_IP,
    VAL_PORT,
    VAL_METHOD,
    VAL_PATH,
    VAL_NAMESPACE,
    VAL_SERVICE_ACCOUNT, /* "NS/SA", no pattern */
} value_kind_t;

/** A copy of `s` (NULL stays NULL; NULL when out of memory). */
char *rm__policy_dup_str(const char *s);

/** Appends a finding (copies of the strings). Returns 0 or -ENOMEM. */
int rm__policy_diag_add(rm_policy_diags_t *diags, int warning, const char *file, unsigned line, unsigned column,
                        const char *path, const char *msg);

/** `s` double-quoted for a message: printable, shortened with "..." to fit `len`. */
const char *rm__policy_quoted(char *buf, size_t len, const char *s);

/** Records a finding (an error unless `warning`) at node `at` (NULL: the file as a whole) for `path`. */
void rm__policy_report(loader_t *ld, int warning, const yaml_node_t *at, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/** The node `id` of the document being read. */
yaml_node_t *rm__policy_node(loader_t *ld, int id);

/** "a scalar", "a list", "a mapping" or "nothing", for messages. */
const char *rm__policy_type_word(const yaml_node_t *n);

/** 1 when `n` is a plain null scalar ("", "~", "null"). */
int rm__policy_is_null(const yaml_node_t *n);

/** 1 when `n` is of type `t`; else records "want ..., got ..." and returns 0. */
int rm__policy_want_type(loader_t *ld, const yaml_node_t *n, yaml_node_type_t t, const char *path);

/** A mapping's keys: every key a plain string, none twice, none outside `known` (NULL: any key); keys named in
 * `unsupported_why` are refused with it. 1 when clean. */
int rm__policy_check_keys(loader_t *ld, const yaml_node_t *map, const char *path, const char *const *known,
                          const char *unsupported_why);

/** The value of `key` in mapping `map`, or NULL. */
yaml_node_t *rm__policy_map_get(loader_t *ld, const yaml_node_t *map, const char *key);

/** out = path + "." + key (at most POLICY_PATH_MAX bytes). */
void rm__policy_child_path(char *out, const char *path, const char *key);

/** out = path + "[i]" (at most POLICY_PATH_MAX bytes). */
void rm__policy_index_path(char *out, const char *path, size_t i);

/** A scalar as a new string; NULL (with a finding) when it is not one, is too long or holds a NUL. */
char *rm__policy_scalar(loader_t *ld, const yaml_node_t *n, const char *path);

/** Frees a string list and empties it. */
void rm__policy_strlist_clear(rm_strlist_t *l);

/** A list's length: 1 with *cnt set (0 for an absent, null list), or 0 with a finding when `n` is not a list. */
int rm__policy_list_len(loader_t *ld, const yaml_node_t *n, const char *path, size_t *cnt);

/** A list of strings, each checked as `kind`. Returns 1 when it was read cleanly. */
int rm__policy_read_strlist(loader_t *ld, const yaml_node_t *n, const char *path, rm_strlist_t *out, value_kind_t kind);

/* ---- policy_yaml_fields.c: the fields of Istio's API beyond the first ones, and what is refused ---- */

/** The node's position (1-based line and column) into *line and *column. */
void rm__policy_mark(const yaml_node_t *n, unsigned *line, unsigned *column);

/** Reads a source's serviceAccounts, trustDomains and remoteIpBlocks (and their not-lists) into `s`, counting those
 *  set in *fields, and checks that serviceAccounts is not combined with principals or namespaces (Istio's rule).
 *  Returns 1 when clean. */
int rm__policy_read_source_more(loader_t *ld, const yaml_node_t *n, const char *path, rm_authz_source_t *s,
                                int *fields);

/** Frees the lists rm__policy_read_source_more fills. */
void rm__policy_source_fields_clear(rm_authz_source_t *s);

/** Why a `when` key the mesh does not evaluate is refused: "... is not supported: ..." for a key of Istio's list,
 *  "unknown key ..." (with a suggestion when one is close) for any other. */
const char *rm__policy_condition_key_unsupported(const char *key);

/** Refuses spec.targetRef, spec.targetRefs and spec.provider with "not supported" and why. 1 when none is set. */
int rm__policy_spec_unsupported(loader_t *ld, const yaml_node_t *spec);

/** Checks a paths/notPaths value that holds '{' or '}' as an Istio path template ({*}, {**}); 1 when valid, else
 *  records why at `n`. */
int rm__policy_check_path_template(loader_t *ld, const yaml_node_t *n, const char *path, const char *v);

/** Checks a serviceAccounts / source.serviceAccount value ("NS/SA"); 1 when valid, else records why. */
int rm__policy_check_service_account(loader_t *ld, const yaml_node_t *n, const char *path, const char *v);

/** The known key closest to `key` (a typo's likely meaning), or NULL when none is close. */
const char *rm__policy_did_you_mean(const char *key, const char *const *known);
/* Shared with request_authn_yaml.c (RequestAuthentication): */

/** metadata: name, namespace (default "default") and, when the pointers are not NULL, the dry-run and log-allowed
 *  annotations. Returns 1 when read cleanly. */
int rm__policy_read_metadata(loader_t *ld, const yaml_node_t *root, char **ns, char **name, uint8_t *dry_run,
                             uint8_t *log_allowed);
/** spec.selector (matchLabels). Returns 1 when read cleanly. */
int rm__policy_read_selector(loader_t *ld, const yaml_node_t *spec, int *has, rm_label_t **labels, size_t *num);
/** Reads a RequestAuthentication document into `p` (left for rm__request_authn_clear on failure). Returns 1 when
 *  it is valid. */
int rm__read_request_authn(loader_t *ld, const yaml_node_t *root, rm_request_authn_t *p);
void rm__request_authn_clear(rm_request_authn_t *p);
void rm__jwt_rule_clear(rm_jwt_rule_t *r);
/** 1 when `key` is a request.auth.* condition key the engine evaluates; else 0 with *why. */
int rm__request_auth_key_ok(const char *key, const char **why);

#endif
