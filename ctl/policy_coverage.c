/* ringmeshctl policy coverage: the rules of a policy set that never matched (by the proxies' per-rule decision
 * counters on /metrics, or by deciding the requests of decision and access logs again), and the policies that select
 * no workload (the workloads named with --workload, or those the logs' lines were decided for). */
#include "ctl.h"
#include "policy_logs.h"
#include "stat.h"

#include "ringmesh/policy.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_ROOT_NAMESPACE "ringmesh-system"
#define MAX_WORKLOADS          4096
#define MAX_WORKLOAD_LABELS    32

static const rm_ctl_level_t *const level = &rm__ctl_policy_level;

typedef struct st_workload_arg_t {
    char *ns;
    rm_label_t labels[MAX_WORKLOAD_LABELS];
    size_t num_labels;
} workload_arg_t;

typedef struct st_coverage_t {
    const rm_policy_set_t *set;
    const char *root_namespace;
    uint8_t **matched;    /* per policy, per rule */
    uint8_t *selects;     /* per policy: selects a workload seen */
    size_t num_workloads; /* workloads seen (from --workload and the logs) */
    size_t requests, skipped;
} coverage_t;

static void mark_rule(coverage_t *c, const rm_authz_policy_t *p, int rule)
{
    if (p == NULL || rule < 0)
        return;
    size_t pi = (size_t)(p - c->set->policies);
    if (pi < c->set->num_policies && (size_t)rule < p->num_rules && c->matched[pi] != NULL)
        c->matched[pi][rule] = 1;
}

static void mark_by_name(coverage_t *c, const char *ns_name, size_t len, int rule)
{
    for (size_t i = 0; i < c->set->num_policies; i++) {
        const rm_authz_policy_t *p = &c->set->policies[i];
        size_t nl = strlen(p->namespace_);
        if (len == nl + 1 + strlen(p->name) && strncmp(ns_name, p->namespace_, nl) == 0 && ns_name[nl] == '/' &&
            strncmp(ns_name + nl + 1, p->name, len - nl - 1) == 0)
            mark_rule(c, p, rule);
    }
}

static void mark_selects(coverage_t *c, const rm_workload_t *w)
{
    c->num_workloads++;
    for (size_t i = 0; i < c->set->num_policies; i++)
        if (rm_authz_policy_selects(&c->set->policies[i], c->root_namespace, w))
            c->selects[i] = 1;
}

/* The value of label `name` ("policy", "rule") of a sample line, into [*v, *v + *len). */
static int label_of(const char *line, const char *end, const char *name, const char **v, size_t *len)
{
    char key[32];
    snprintf(key, sizeof(key), "%s=\"", name);
    const char *p = line;
    size_t kl = strlen(key);
    while (p + kl <= end && (p = memmem(p, (size_t)(end - p), key, kl)) != NULL) {
        if (p == line || p[-1] == '{' || p[-1] == ',') {
            const char *s = p + kl, *q = memchr(s, '"', (size_t)(end - s));
            if (q == NULL)
                return -1;
            *v = s, *len = (size_t)(q - s);
            return 0;
        }
        p += kl;
    }
    return -1;
}

/* The rules /metrics counts: ringmesh_proxy_authz_decisions_total{decision=...,policy="ns/name",rule="N"} V, V > 0. */
static void read_metrics(coverage_t *c, const char *text, size_t len)
{
    static const char name[] = "ringmesh_proxy_authz_decisions_total{";
    const char *end = text + len;
    for (const char *line = text; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line)), *le = nl != NULL ? nl : end;
        const char *pv, *rv, *close;
        size_t pl, rl;
        if ((size_t)(le - line) > sizeof(name) && strncmp(line, name, sizeof(name) - 1) == 0 &&
            (close = memchr(line, '}', (size_t)(le - line))) != NULL &&
            label_of(line + sizeof(name) - 1, close, "policy", &pv, &pl) == 0 &&
            label_of(line + sizeof(name) - 1, close, "rule", &rv, &rl) == 0 && pl > 0 && rl > 0 &&
            strtod(close + 1, NULL) > 0)
            mark_by_name(c, pv, pl, (int)strtol(rv, NULL, 10));
        line = le + 1;
    }
}

static int read_admin(coverage_t *c, const char *hostport)
{
    static const volatile int never = 0;
    char url[600], err[512];
    rm_stat_body_t b = {0};
    snprintf(url, sizeof(url), "%s%s/metrics", strncmp(hostport, "http", 4) == 0 ? "" : "http://", hostport);
    if (rm_stat_get(url, "text/plain", &never, &b, err, sizeof(err)) != 0 || b.status != 200) {
        fprintf(stderr, "ringmeshctl policy coverage: %s: %s\n", url, b.status != 0 ? "status not 200" : err);
        rm_stat_body_free(&b);
        return RM_CTL_EXIT_INVALID;
    }
    read_metrics(c, b.data, b.len);
    rm_stat_body_free(&b);
    return 0;
}

/* Every request of a log decided by the set: the rules that decide, audit or would decide (dry run) are covered. */
static int read_log(coverage_t *c, rm_replay_engines_t *eng, const char *path, char ***seen, size_t *num_seen)
{
    FILE *f = fopen(path, "r");
    char *line = NULL, err[1024];
    size_t cap = 0, lineno = 0;
    ssize_t n;
    int ret = 0;

    if (f == NULL) {
        fprintf(stderr, "ringmeshctl policy coverage: %s: %s\n", path, strerror(errno));
        return RM_CTL_EXIT_INVALID;
    }
    while (ret == 0 && (n = getline(&line, &cap, f)) > 0) {
        rm_replay_req_t r;
        const rm_authz_engine_t *e;
        rm_authz_decision_t d;
        lineno++;
        if (!rm__replay_req_parse(line, (size_t)n, &r)) {
            c->skipped++;
            continue;
        }
        if (rm__replay_engine_for(eng, &r, &e, err, sizeof(err)) != 0) {
            fprintf(stderr, "ringmeshctl policy coverage: %s:%zu: %s\n", path, lineno, err);
            ret = RM_CTL_EXIT_INVALID;
        } else {
            rm_authz_evaluate(e, &r.a, 1.0, &d);
            c->requests++;
            mark_rule(c, d.policy, d.rule);
            mark_rule(c, d.audit_policy, d.audit_rule);
            mark_rule(c, d.dry_run_policy, d.dry_run_rule);
        }
        /* each workload once */
        if (ret == 0 && r.have_workload && *num_seen < MAX_WORKLOADS) {
            char key[4096];
            size_t o = (size_t)snprintf(key, sizeof(key), "%s", r.ns);
            for (size_t i = 0; i < r.num_labels && o < sizeof(key); i++)
                o += (size_t)snprintf(key + o, sizeof(key) - o, "\n%s=%s", r.labels[i].key, r.labels[i].value);
            size_t k = 0;
            while (k < *num_seen && strcmp((*seen)[k], key) != 0)
                k++;
            if (k == *num_seen) {
                char **np = realloc(*seen, (*num_seen + 1) * sizeof(char *));
                if (np != NULL && (np[*num_seen] = strdup(key)) != NULL) {
                    *seen = np;
                    (*num_seen)++;
                    rm_workload_t w = {.namespace_ = r.ns, .labels = r.labels, .num_labels = r.num_labels};
                    mark_selects(c, &w);
                } else if (np != NULL) {
                    *seen = np;
                }
            }
        }
        rm__replay_req_clear(&r);
    }
    free(line);
    (void)fclose(f); /* read only: nothing to lose */
    return ret;
}

/* "NS" or "NS:k=v,k2=v2", parsed in place: `s` is a copy the caller owns */
static int parse_workload(char *s, workload_arg_t *w)
{
    memset(w, 0, sizeof(*w));
    char *colon = strchr(s, ':'), *save = NULL;
    w->ns = s;
    if (colon == NULL)
        return w->ns[0] != '\0' ? 0 : -1;
    *colon = '\0';
    for (char *tok = strtok_r(colon + 1, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL || eq == tok || w->num_labels == MAX_WORKLOAD_LABELS)
            return -1;
        *eq = '\0';
        w->labels[w->num_labels++] = (rm_label_t){tok, eq + 1};
    }
    return w->ns[0] != '\0' ? 0 : -1;
}

static void print_result(const coverage_t *c, int json, int workloads_known)
{
    const rm_policy_set_t *set = c->set;
    json_t *o = json_object(), *dead = json_array(), *idle = json_array();
    size_t ndead = 0, nidle = 0, nrules = 0;
    for (size_t i = 0; i < set->num_policies; i++) {
        const rm_authz_policy_t *p = &set->policies[i];
        for (size_t r = 0; r < p->num_rules; r++, nrules++) {
            if (c->matched[i] != NULL && c->matched[i][r])
                continue;
            ndead++;
            json_t *j = json_object();
            char name[600];
            snprintf(name, sizeof(name), "%s/%s", p->namespace_, p->name);
            json_object_set_new(j, "policy", json_string(name));
            json_object_set_new(j, "rule", json_integer((json_int_t)r));
            json_object_set_new(j, "action", json_string(rm_authz_action_name(p->action)));
            json_object_set_new(j, "file", p->file != NULL ? json_string(p->file) : json_null());
            json_object_set_new(j, "line", json_integer(p->line));
            json_array_append_new(dead, j);
            if (!json)
                printf("never matched: %s rule %zu (%s), %s:%u\n", name, r, rm_authz_action_name(p->action),
                       p->file != NULL ? p->file : "-", p->line);
        }
        if (workloads_known && !c->selects[i]) {
            char name[600];
            nidle++;
            snprintf(name, sizeof(name), "%s/%s", p->namespace_, p->name);
            json_array_append_new(idle, json_string(name));
            if (!json)
                printf("selects no workload: %s, %s:%u\n", name, p->file != NULL ? p->file : "-", p->line);
        }
    }
    if (json) {
        json_object_set_new(o, "rules", json_integer((json_int_t)nrules));
        json_object_set_new(o, "never_matched", dead);
        json_object_set_new(o, "workloads", json_integer((json_int_t)c->num_workloads));
        json_object_set_new(o, "select_no_workload", workloads_known ? idle : json_null());
        if (!workloads_known)
            json_decref(idle);
        json_object_set_new(o, "requests", json_integer((json_int_t)c->requests));
        char *s = json_dumps(o, JSON_INDENT(2));
        if (s != NULL)
            printf("%s\n", s);
        free(s);
    } else {
        json_decref(dead);
        json_decref(idle);
        printf("%zu of %zu rules never matched", ndead, nrules);
        if (workloads_known)
            printf("; %zu of %zu policies select none of the %zu workloads", nidle, set->num_policies,
                   c->num_workloads);
        else
            printf("; which policies select no workload: give --workload (or --log lines that name their workload)");
        printf("\n");
    }
    json_decref(o);
}

enum {
    V_ADMIN,
    V_LOG,
    V_FILE,
    V_WORKLOAD,
    V_OUTPUT,
    V_DEFAULT_ACTION,
    V_ROOT_NAMESPACE,
    V_TRUST_DOMAIN,
    V_ALIAS,
    V_NUM
};

int rm__ctl_policy_coverage(int argc, char **argv)
{
    flag_t flags[V_NUM] = {
        [V_ADMIN] = {"admin", 1, 1},
        [V_LOG] = {"log", 1, 1},
        [V_FILE] = {"file", 1, 1, 'f'},
        [V_WORKLOAD] = {"workload", 1, 1},
        [V_OUTPUT] = {"output", 1, 0, 'o'},
        [V_DEFAULT_ACTION] = {"default-action", 1},
        [V_ROOT_NAMESPACE] = {"root-namespace", 1},
        [V_TRUST_DOMAIN] = {"trust-domain", 1},
        [V_ALIAS] = {"trust-domain-alias", 1, 1},
    };
    rm_policy_set_t set = {0};
    rm_replay_engines_t eng = {0};
    coverage_t c = {0};
    workload_arg_t wl[RM_CTL_FLAG_MAX_VALUES];
    char *wl_text[RM_CTL_FLAG_MAX_VALUES] = {NULL};
    size_t nwl = 0, num_seen = 0;
    char **seen = NULL;
    int ret, json;

    if (rm__ctl_flags(level, argc, argv, flags, V_NUM, &ret) != 0)
        return ret;
    if (flags[V_FILE].count == 0 || (flags[V_ADMIN].count == 0) == (flags[V_LOG].count == 0)) {
        fprintf(stderr, "ringmeshctl policy coverage: -f and one of --admin or --log are required\nrun 'ringmeshctl "
                        "policy --help' for usage\n");
        return RM_CTL_EXIT_USAGE;
    }
    if (flags[V_OUTPUT].value != NULL && strcmp(flags[V_OUTPUT].value, "json") != 0 &&
        strcmp(flags[V_OUTPUT].value, "text") != 0) {
        fprintf(stderr, "ringmeshctl policy coverage: -o must be text or json\n");
        return RM_CTL_EXIT_USAGE;
    }
    json = flags[V_OUTPUT].value != NULL && strcmp(flags[V_OUTPUT].value, "json") == 0;
    if ((ret = rm__ctl_policy_opts("coverage", &flags[V_DEFAULT_ACTION], &flags[V_TRUST_DOMAIN], &flags[V_ALIAS],
                                   &eng.opts)) != 0)
        return ret;
    c.root_namespace = eng.root_namespace =
        flags[V_ROOT_NAMESPACE].value != NULL ? flags[V_ROOT_NAMESPACE].value : DEFAULT_ROOT_NAMESPACE;
    for (; nwl < flags[V_WORKLOAD].count; nwl++)
        if ((wl_text[nwl] = strdup(flags[V_WORKLOAD].values[nwl])) == NULL ||
            parse_workload(wl_text[nwl], &wl[nwl]) != 0) {
            fprintf(stderr, "ringmeshctl policy coverage: --workload wants NAMESPACE[:k=v,...], not \"%s\"\n",
                    flags[V_WORKLOAD].values[nwl]);
            ret = RM_CTL_EXIT_USAGE;
            goto Exit;
        }
    if ((ret = rm__ctl_policy_load("coverage", flags[V_FILE].values, flags[V_FILE].count, &set)) != 0)
        goto Exit;
    c.set = eng.set = &set;
    ret = RM_CTL_EXIT_INVALID;
    if ((c.matched = calloc(set.num_policies + 1, sizeof(*c.matched))) == NULL ||
        (c.selects = calloc(set.num_policies + 1, 1)) == NULL)
        goto Exit;
    for (size_t i = 0; i < set.num_policies; i++)
        if ((c.matched[i] = calloc(set.policies[i].num_rules + 1, 1)) == NULL)
            goto Exit;
    for (size_t i = 0; i < nwl; i++) {
        rm_workload_t w = {.namespace_ = wl[i].ns, .labels = wl[i].labels, .num_labels = wl[i].num_labels};
        mark_selects(&c, &w);
    }
    for (size_t i = 0; i < flags[V_ADMIN].count; i++)
        if ((ret = read_admin(&c, flags[V_ADMIN].values[i])) != 0)
            goto Exit;
    for (size_t i = 0; i < flags[V_LOG].count; i++)
        if ((ret = read_log(&c, &eng, flags[V_LOG].values[i], &seen, &num_seen)) != 0)
            goto Exit;
    print_result(&c, json, c.num_workloads > 0);
    ret = RM_CTL_EXIT_OK;
Exit:
    for (size_t i = 0; i < RM_CTL_FLAG_MAX_VALUES; i++)
        free(wl_text[i]);
    for (size_t i = 0; i < num_seen; i++)
        free(seen[i]);
    free(seen);
    for (size_t i = 0; c.matched != NULL && i < set.num_policies; i++)
        free(c.matched[i]);
    free(c.matched);
    free(c.selects);
    rm__replay_engines_clear(&eng);
    rm_policy_set_clear(&set);
    return ret;
}
