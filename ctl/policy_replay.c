/* ringmeshctl policy replay: last week's requests, read back from the proxies' decision and access logs, decided
 * again by the proxy's engine against a proposed policy set, and what would change, grouped so that a team can read
 * it and a CI pipeline can gate on it (exit 3 when a request that was allowed would be denied). */
#include "ctl.h"
#include "policy_logs.h"

#include "ringmesh/log.h"
#include "ringmesh/policy.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_ROOT_NAMESPACE "ringmesh-system"
#define DEFAULT_TRUST_DOMAIN   "cluster.local"

static const rm_ctl_level_t *const level = &rm__ctl_policy_level;

int rm__ctl_policy_load(const char *cmd, const char *const *paths, size_t n, rm_policy_set_t *set)
{
    rm_policy_diags_t diags = {0};
    int ret = 0;
    for (size_t i = 0; i < n; i++)
        if (rm_policy_load_path(set, paths[i], 0, &diags) == -ENOMEM) {
            fprintf(stderr, "ringmeshctl policy %s: out of memory\n", cmd);
            ret = RM_CTL_EXIT_INVALID;
            goto Exit;
        }
    rm_policy_lint(set, &diags);
    if (diags.num_errors > 0) {
        char line[2048];
        fprintf(stderr, "ringmeshctl policy %s: the policies are not valid:\n", cmd);
        for (size_t i = 0; i < diags.n; i++)
            if (!diags.d[i].warning) {
                rm_policy_diag_format(&diags.d[i], line, sizeof(line));
                fprintf(stderr, "%s\n", line);
            }
        ret = RM_CTL_EXIT_INVALID;
    }
Exit:
    rm_policy_diags_clear(&diags);
    return ret;
}

int rm__ctl_policy_opts(const char *cmd, const flag_t *default_action, const flag_t *trust_domain,
                        const flag_t *aliases, rm_authz_engine_opts_t *opts)
{
    opts->default_action = RM_AUTHZ_DENY;
    if (default_action->value != NULL) {
        if (strcasecmp(default_action->value, "allow") == 0)
            opts->default_action = RM_AUTHZ_ALLOW;
        else if (strcasecmp(default_action->value, "deny") != 0) {
            fprintf(stderr, "ringmeshctl policy %s: --default-action must be deny or allow\n", cmd);
            return RM_CTL_EXIT_USAGE;
        }
    }
    opts->trust_domain = trust_domain->value != NULL ? trust_domain->value : DEFAULT_TRUST_DOMAIN;
    opts->trust_domain_aliases = (char *const *)aliases->values;
    opts->num_trust_domain_aliases = aliases->count;
    return 0;
}

/* ---- what changed, grouped --------------------------------------------------------------------------------- */

typedef struct st_group_t {
    int to_deny;      /* 1: allow -> deny, 0: deny -> allow */
    char policy[600]; /* the policy that now decides (deny->allow: allows; allow->deny: denies, or the closest miss) */
    int rule;         /* -1: none */
    char reason[64];  /* the new decision's reason */
    char source[512]; /* principal, else source IP, else "-" */
    char dest[600];   /* workload:port */
    size_t count;
    char example[1600]; /* FILE:LINE and the request, and why */
} group_t;

typedef struct st_replay_t {
    rm_replay_engines_t next, against;
    int have_against;
    group_t *groups;
    size_t num_groups, cap_groups;
    size_t lines, replayed, skipped, duplicates, unchanged, to_deny, to_allow;
    char **trace_ids; /* of decision lines: an access line of the same request is not counted twice */
    size_t num_trace_ids, cap_trace_ids;
} replay_t;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void describe_source(const rm_replay_req_t *r, char *buf, size_t len)
{
    if (r->a.principal != NULL)
        snprintf(buf, len, "%s", r->a.principal);
    else if (r->a.have_source_ip) {
        char ip[64];
        static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(r->a.source_ip, v4mapped, 12) == 0)
            snprintf(ip, sizeof(ip), "%u.%u.%u.%u", r->a.source_ip[12], r->a.source_ip[13], r->a.source_ip[14],
                     r->a.source_ip[15]);
        else
            snprintf(ip, sizeof(ip), "(an IPv6 peer)");
        snprintf(buf, len, "%s (no mTLS identity)", ip);
    } else {
        snprintf(buf, len, "-");
    }
}

static int add_change(replay_t *rp, const rm_replay_req_t *r, const rm_authz_decision_t *d, const char *file,
                      size_t lineno)
{
    group_t g = {.to_deny = !d->allow, .rule = -1, .count = 1};
    char why[1024], miss[1024] = "";
    const rm_authz_policy_t *p = d->policy;
    int rule = d->rule;

    if (p == NULL && d->miss_policy != NULL)
        p = d->miss_policy, rule = d->miss_rule; /* no ALLOW rule matched: grouped under the closest miss */
    if (p != NULL) {
        snprintf(g.policy, sizeof(g.policy), "%s/%s", p->namespace_, p->name);
        g.rule = rule;
    }
    snprintf(g.reason, sizeof(g.reason), "%s",
             d->reason == RM_AUTHZ_REASON_POLICY ? (d->allow ? "allowed by policy" : "denied by policy")
                                                 : rm_authz_reason_word(d->reason));
    describe_source(r, g.source, sizeof(g.source));
    snprintf(g.dest, sizeof(g.dest), "%s:%u",
             strcmp(r->destination, "-") != 0 ? r->destination
             : r->have_workload               ? r->ns
                                              : "-",
             (unsigned)r->a.destination_port);
    for (size_t i = 0; i < rp->num_groups; i++) {
        group_t *o = &rp->groups[i];
        if (o->to_deny == g.to_deny && o->rule == g.rule && strcmp(o->policy, g.policy) == 0 &&
            strcmp(o->reason, g.reason) == 0 && strcmp(o->source, g.source) == 0 && strcmp(o->dest, g.dest) == 0) {
            o->count++;
            return 0;
        }
    }
    rm_authz_decision_explain(d, why, sizeof(why));
    if (d->reason == RM_AUTHZ_REASON_NO_ALLOW_MATCH && d->miss_policy != NULL) {
        memcpy(miss, "; closest miss: ", 17);
        rm_authz_closest_miss_explain(d, &r->a, miss + 16, sizeof(miss) - 16);
    }
    if (r->a.http != NULL)
        snprintf(g.example, sizeof(g.example), "%s:%zu: %.*s %.*s: %s%s", file, lineno, (int)r->http.method_len,
                 r->http.method, (int)(r->http.path_len > 512 ? 512 : r->http.path_len),
                 r->http.path != NULL ? r->http.path : "", why, miss);
    else
        snprintf(g.example, sizeof(g.example), "%s:%zu: TCP connection: %s%s", file, lineno, why, miss);
    if (rp->num_groups == rp->cap_groups) {
        size_t ncap = rp->cap_groups ? rp->cap_groups * 2 : 16;
        group_t *np = realloc(rp->groups, ncap * sizeof(*np));
        if (np == NULL)
            return -ENOMEM;
        rp->groups = np;
        rp->cap_groups = ncap;
    }
    rp->groups[rp->num_groups++] = g;
    return 0;
}

/* One request: decided by the new set and by the current one (--against, else the decision the line records). */
static int replay_one(replay_t *rp, const rm_replay_req_t *r, const char *file, size_t lineno)
{
    const rm_authz_engine_t *e;
    rm_authz_decision_t now, next;
    char err[1024];
    int was_allowed = r->recorded_allow, ret;

    if (rp->have_against) {
        if ((ret = rm__replay_engine_for(&rp->against, r, &e, err, sizeof(err))) != 0)
            goto Error;
        rm_authz_evaluate(e, &r->a, 1.0, &now);
        was_allowed = now.allow;
    }
    if ((ret = rm__replay_engine_for(&rp->next, r, &e, err, sizeof(err))) != 0)
        goto Error;
    rm_authz_evaluate(e, &r->a, 1.0, &next);
    rp->replayed++;
    if (next.allow == was_allowed) {
        rp->unchanged++;
        return 0;
    }
    if (next.allow)
        rp->to_allow++;
    else
        rp->to_deny++;
    return add_change(rp, r, &next, file, lineno);
Error:
    fprintf(stderr, "ringmeshctl policy replay: %s:%zu: %s\n", file, lineno, err);
    return ret;
}

static int trace_seen(const replay_t *rp, const char *id)
{
    return id != NULL && id[0] != '\0' && rp->num_trace_ids > 0 &&
           bsearch(&id, rp->trace_ids, rp->num_trace_ids, sizeof(char *), cmp_str) != NULL;
}

/* pass 0: the trace IDs of decision lines; pass 1: the requests */
static int read_log(replay_t *rp, const char *path, int pass)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    int ret = 0;

    if (f == NULL) {
        fprintf(stderr, "ringmeshctl policy replay: %s: %s\n", path, strerror(errno));
        return RM_CTL_EXIT_INVALID;
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        rm_replay_req_t r;
        lineno++;
        if (!rm__replay_req_parse(line, (size_t)n, &r)) {
            rp->skipped += pass;
            continue;
        }
        if (pass == 0) {
            if (r.event == RM_REPLAY_AUTHZ && r.trace_id != NULL && r.trace_id[0] != '\0') {
                if (rp->num_trace_ids == rp->cap_trace_ids) {
                    size_t ncap = rp->cap_trace_ids ? rp->cap_trace_ids * 2 : 64;
                    char **np = realloc(rp->trace_ids, ncap * sizeof(*np));
                    if (np == NULL) {
                        rm__replay_req_clear(&r);
                        ret = -ENOMEM;
                        break;
                    }
                    rp->trace_ids = np;
                    rp->cap_trace_ids = ncap;
                }
                if ((rp->trace_ids[rp->num_trace_ids] = strdup(r.trace_id)) != NULL)
                    rp->num_trace_ids++;
            }
        } else if (r.event == RM_REPLAY_ACCESS && trace_seen(rp, r.trace_id)) {
            rp->duplicates++; /* the decision line of the same request is replayed */
        } else {
            rp->lines++;
            ret = replay_one(rp, &r, path, lineno);
        }
        rm__replay_req_clear(&r);
        if (ret != 0)
            break;
    }
    if (ret == 0 && ferror(f)) {
        fprintf(stderr, "ringmeshctl policy replay: %s: %s\n", path, strerror(errno));
        ret = RM_CTL_EXIT_INVALID;
    }
    free(line);
    (void)fclose(f); /* read only: nothing to lose */
    return ret == 0 ? 0 : RM_CTL_EXIT_INVALID;
}

static void print_text(const replay_t *rp)
{
    printf("replayed %zu request%s: %zu unchanged, %zu allowed -> denied, %zu denied -> allowed", rp->replayed,
           rp->replayed == 1 ? "" : "s", rp->unchanged, rp->to_deny, rp->to_allow);
    printf(" (%zu other line%s skipped, %zu access line%s already in a decision line)\n", rp->skipped,
           rp->skipped == 1 ? "" : "s", rp->duplicates, rp->duplicates == 1 ? "" : "s");
    for (int to_deny = 1; to_deny >= 0; to_deny--) {
        size_t total = to_deny ? rp->to_deny : rp->to_allow;
        if (total == 0)
            continue;
        printf("\n%s (%zu):\n", to_deny ? "ALLOWED -> DENIED" : "DENIED -> ALLOWED", total);
        for (size_t i = 0; i < rp->num_groups; i++) {
            const group_t *g = &rp->groups[i];
            if (g->to_deny != to_deny)
                continue;
            printf("  %zu x  %s", g->count, g->reason);
            if (g->policy[0] != '\0')
                printf(" (%s %s rule %d)",
                       to_deny && strcmp(g->reason, "denied by policy") != 0 ? "closest miss" : "by", g->policy,
                       g->rule);
            printf("\n       from %s to %s\n       e.g. %s\n", g->source, g->dest, g->example);
        }
    }
}

static void print_json(const replay_t *rp)
{
    json_t *o = json_object(), *lists[2] = {json_array(), json_array()};
    json_object_set_new(o, "replayed", json_integer((json_int_t)rp->replayed));
    json_object_set_new(o, "unchanged", json_integer((json_int_t)rp->unchanged));
    json_object_set_new(o, "allow_to_deny", json_integer((json_int_t)rp->to_deny));
    json_object_set_new(o, "deny_to_allow", json_integer((json_int_t)rp->to_allow));
    json_object_set_new(o, "skipped_lines", json_integer((json_int_t)rp->skipped));
    json_object_set_new(o, "duplicate_lines", json_integer((json_int_t)rp->duplicates));
    for (size_t i = 0; i < rp->num_groups; i++) {
        const group_t *g = &rp->groups[i];
        json_t *j = json_object();
        json_object_set_new(j, "policy", g->policy[0] != '\0' ? json_string(g->policy) : json_null());
        json_object_set_new(j, "rule", g->rule >= 0 ? json_integer(g->rule) : json_null());
        json_object_set_new(j, "reason", json_string(g->reason));
        json_object_set_new(j, "source", json_string(g->source));
        json_object_set_new(j, "destination", json_string(g->dest));
        json_object_set_new(j, "count", json_integer((json_int_t)g->count));
        json_object_set_new(j, "example", json_string(g->example));
        json_array_append_new(lists[g->to_deny], j);
    }
    json_object_set_new(o, "allow_to_deny_groups", lists[1]);
    json_object_set_new(o, "deny_to_allow_groups", lists[0]);
    char *s = json_dumps(o, JSON_INDENT(2));
    if (s != NULL)
        printf("%s\n", s);
    free(s);
    json_decref(o);
}

enum { R_LOG, R_FILE, R_AGAINST, R_OUTPUT, R_DEFAULT_ACTION, R_ROOT_NAMESPACE, R_TRUST_DOMAIN, R_ALIAS, R_NUM };

int rm__ctl_policy_replay(int argc, char **argv)
{
    flag_t flags[R_NUM] = {
        [R_LOG] = {"log", 1, 1},
        [R_FILE] = {"file", 1, 1, 'f'},
        [R_AGAINST] = {"against", 1, 1},
        [R_OUTPUT] = {"output", 1, 0, 'o'},
        [R_DEFAULT_ACTION] = {"default-action", 1},
        [R_ROOT_NAMESPACE] = {"root-namespace", 1},
        [R_TRUST_DOMAIN] = {"trust-domain", 1},
        [R_ALIAS] = {"trust-domain-alias", 1, 1},
    };
    rm_policy_set_t next = {0}, against = {0};
    replay_t rp = {0};
    int ret, json = 0;

    if (rm__ctl_flags(level, argc, argv, flags, R_NUM, &ret) != 0)
        return ret;
    if (flags[R_LOG].count == 0 || flags[R_FILE].count == 0) {
        fprintf(stderr, "ringmeshctl policy replay: --log and -f are required\nrun 'ringmeshctl policy --help' for "
                        "usage\n");
        return RM_CTL_EXIT_USAGE;
    }
    if (flags[R_OUTPUT].value != NULL && strcmp(flags[R_OUTPUT].value, "json") != 0 &&
        strcmp(flags[R_OUTPUT].value, "text") != 0) {
        fprintf(stderr, "ringmeshctl policy replay: -o must be text or json\n");
        return RM_CTL_EXIT_USAGE;
    }
    json = flags[R_OUTPUT].value != NULL && strcmp(flags[R_OUTPUT].value, "json") == 0;
    if ((ret = rm__ctl_policy_opts("replay", &flags[R_DEFAULT_ACTION], &flags[R_TRUST_DOMAIN], &flags[R_ALIAS],
                                   &rp.next.opts)) != 0)
        return ret;
    rp.against.opts = rp.next.opts;
    rp.next.root_namespace = rp.against.root_namespace =
        flags[R_ROOT_NAMESPACE].value != NULL ? flags[R_ROOT_NAMESPACE].value : DEFAULT_ROOT_NAMESPACE;
    if ((ret = rm__ctl_policy_load("replay", flags[R_FILE].values, flags[R_FILE].count, &next)) != 0)
        goto Exit;
    rp.next.set = &next;
    if (flags[R_AGAINST].count > 0) {
        if ((ret = rm__ctl_policy_load("replay", flags[R_AGAINST].values, flags[R_AGAINST].count, &against)) != 0)
            goto Exit;
        rp.against.set = &against;
        rp.have_against = 1;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < flags[R_LOG].count; i++)
            if ((ret = read_log(&rp, flags[R_LOG].values[i], pass)) != 0)
                goto Exit;
        if (pass == 0 && rp.num_trace_ids > 0)
            qsort(rp.trace_ids, rp.num_trace_ids, sizeof(char *), cmp_str);
    }
    if (json)
        print_json(&rp);
    else
        print_text(&rp);
    ret = rp.to_deny > 0 ? RM_CTL_EXIT_DENIED : RM_CTL_EXIT_OK;
Exit:
    for (size_t i = 0; i < rp.num_trace_ids; i++)
        free(rp.trace_ids[i]);
    free(rp.trace_ids);
    free(rp.groups);
    rm__replay_engines_clear(&rp.next);
    rm__replay_engines_clear(&rp.against);
    rm_policy_set_clear(&next);
    rm_policy_set_clear(&against);
    return ret;
}
