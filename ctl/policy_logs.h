/* Decision and access log lines read back for `ringmeshctl policy replay` and `policy coverage`: each line's request
 * rebuilt as the engine's attributes, the workload it was decided for, and the decision it recorded; and per
 * workload, the engine of the policies of a set that select it. */
#ifndef RINGMESH_CTL_POLICY_LOGS_H
#define RINGMESH_CTL_POLICY_LOGS_H

#include "ringmesh/http_request.h"
#include "ringmesh/policy.h"

#include <jansson.h>
#include <stddef.h>

#define RM_REPLAY_MAX_HEADERS   32
#define RM_REPLAY_MAX_LABELS    32
#define RM_REPLAY_MAX_AUDIENCES 16

typedef enum { RM_REPLAY_AUTHZ = 0, RM_REPLAY_ACCESS } rm_replay_event_t;

/** One request read from a line. Its strings point into `root`, which rm__replay_req_clear() releases. */
typedef struct st_rm_replay_req_t {
    json_t *root;
    rm_replay_event_t event;
    int recorded_allow; /* the enforced decision the line records */
    rm_authz_attrs_t a;
    rm_http_request_t http;
    rm_http_header_t headers[RM_REPLAY_MAX_HEADERS];
    int have_workload; /* namespace (and labels) known: policies are selected for it; else every policy applies */
    const char *ns;
    rm_label_t labels[RM_REPLAY_MAX_LABELS];
    size_t num_labels;
    const char *destination; /* for people: the deciding workload ("ns/name"), or "-" */
    const char *trace_id;    /* NULL when the line has none */
    /* the end-user token as the line records it (attributes.request_auth): a.request_auth points here */
    rm_request_auth_t request_auth;
    const char *audiences[RM_REPLAY_MAX_AUDIENCES];
    json_t *claims; /* owned: the recorded claims rebuilt as the payload tree the engine walks */
} rm_replay_req_t;

/** Reads one log line as `kubectl logs` prints it: a JSON object, possibly after a `[pod/NAME/CONTAINER] ` prefix (or
 *  any text before the first '{'). Returns 1 and fills `r` for an "authz" line or an inbound "access" line with an
 *  authorization decision; 0 for any other line (r is then empty). */
int rm__replay_req_parse(const char *line, size_t len, rm_replay_req_t *r);
void rm__replay_req_clear(rm_replay_req_t *r);

/** Engines per workload over one policy set, compiled on first use. */
typedef struct st_rm_replay_engines_t {
    const rm_policy_set_t *set;
    rm_authz_engine_opts_t opts;
    const char *root_namespace;
    struct st_rm_replay_engine_entry_t *entries;
    size_t num, cap;
} rm_replay_engines_t;

/** The engine for the request's workload (every policy of the set when the line does not say its workload). Returns
 *  0, or an error with the reason in err (a policy the engine refuses, -ENOMEM). */
int rm__replay_engine_for(rm_replay_engines_t *c, const rm_replay_req_t *r, const rm_authz_engine_t **out, char *err,
                          size_t errlen);
void rm__replay_engines_clear(rm_replay_engines_t *c);

/** Whether policy `p` selects the request's workload (always, when the line does not say its workload). */
int rm__replay_selects(const rm_replay_engines_t *c, const rm_authz_policy_t *p, const rm_replay_req_t *r);

/** Loads the policies of the given files or directories into `set` and checks them as `policy lint` does. Returns
 *  0, or RM_CTL_EXIT_INVALID after printing every error ("FILE:LINE:COLUMN: field: message") on stderr, prefixed
 *  with `cmd`. */
int rm__ctl_policy_load(const char *cmd, const char *const *paths, size_t n, rm_policy_set_t *set);

/** The mesh options `policy check` takes, from flags: --default-action, --trust-domain, --trust-domain-alias. */
struct st_flag_t;
int rm__ctl_policy_opts(const char *cmd, const struct st_flag_t *default_action, const struct st_flag_t *trust_domain,
                        const struct st_flag_t *aliases, rm_authz_engine_opts_t *opts);

/** ringmeshctl policy replay / coverage (policy_replay.c, policy_coverage.c). */
int rm__ctl_policy_replay(int argc, char **argv);
int rm__ctl_policy_coverage(int argc, char **argv);

#endif
