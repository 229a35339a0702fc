/* ringmeshctl policy lint | check: the proxy's policy engine on the command line, so a team can test a policy
 * change before applying it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl.h"
#include "policy_logs.h"

#include "ringmesh/config.h"
#include "ringmesh/http_request.h"
#include "ringmesh/log.h"
#include "ringmesh/policy.h"
#include "ringmesh/svid.h"

#define DEFAULT_ROOT_NAMESPACE "ringmesh-system"
#define DEFAULT_TRUST_DOMAIN   "cluster.local"
#define MAX_LABELS             64
#define MAX_HEADERS            64

static const rm_ctl_level_t *const level = &rm__ctl_policy_level;

static void print_diags(const rm_policy_diags_t *d, FILE *out)
{
    char line[2048];
    for (size_t i = 0; i < d->n; i++) {
        rm_policy_diag_format(&d->d[i], line, sizeof(line));
        fprintf(out, "%s\n", line);
    }
}

static int usage_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "%s %s: %s\nrun '%s --help' for usage\n", level->path, cmd, msg, level->path);
    return RM_CTL_EXIT_USAGE;
}

static int policy_lint(int argc, char **argv)
{
    flag_t flags[] = {{.name = "strict"}};
    char *fargv[256];
    int fargc = 0, ret;
    const char *paths[256];
    size_t npaths = 0;
    rm_policy_set_t set = {0};
    rm_policy_diags_t diags = {0};

    for (int i = 0; i < argc && fargc < 256; i++) {
        if (i > 0 && argv[i][0] != '-') {
            if (npaths == 256)
                return usage_error("lint", "too many paths");
            paths[npaths++] = argv[i];
        } else {
            fargv[fargc++] = argv[i];
        }
    }
    if (rm__ctl_flags(level, fargc, fargv, flags, 1, &ret) != 0)
        return ret;
    if (npaths == 0)
        return usage_error("lint", "give at least one FILE or DIR");
    int unreadable = 0;
    for (size_t i = 0; i < npaths; i++) {
        int r = rm_policy_load_path(&set, paths[i], flags[0].value != NULL, &diags);
        if (r == -ENOMEM) {
            fprintf(stderr, "ringmeshctl policy lint: out of memory\n");
            ret = RM_CTL_EXIT_USAGE;
            goto Exit;
        }
        if (r < 0)
            unreadable = 1;
    }
    rm_policy_lint(&set, &diags);
    print_diags(&diags, stdout);
    size_t warnings = diags.n - diags.num_errors;
    printf("%zu AuthorizationPolicy, %zu PeerAuthentication", set.num_policies, set.num_peer_authns);
    if (set.num_request_authns > 0) /* said only when there are some, so that older scripts still read the line */
        printf(", %zu RequestAuthentication", set.num_request_authns);
    printf("; %zu error%s, %zu warning%s\n", diags.num_errors, diags.num_errors == 1 ? "" : "s", warnings,
           warnings == 1 ? "" : "s");
    ret = unreadable ? RM_CTL_EXIT_USAGE : diags.num_errors > 0 ? RM_CTL_EXIT_INVALID : RM_CTL_EXIT_OK;
Exit:
    rm_policy_set_clear(&set);
    rm_policy_diags_clear(&diags);
    return ret;
}

enum {
    C_FILE,
    C_TO_NAMESPACE,
    C_TO_LABELS,
    C_FROM,
    C_SOURCE_IP,
    C_DESTINATION_IP,
    C_PORT,
    C_SNI,
    C_METHOD,
    C_PATH,
    C_HOST,
    C_HEADER,
    C_DEFAULT_ACTION,
    C_ROOT_NAMESPACE,
    C_TRUST_DOMAIN,
    C_TRUST_DOMAIN_ALIAS,
    C_OUTPUT,
    C_PATH_NORMALIZATION,
    C_NUM_TRUSTED_PROXIES,
    C_NUM
};

/* "k=v,k2=v2" (repeatable) into labels pointing into a copy of the text */
static int parse_labels(const flag_t *f, char *store, size_t storelen, rm_label_t *labels, size_t *num)
{
    size_t o = 0;
    *num = 0;
    for (size_t i = 0; i < f->count; i++) {
        size_t len = strlen(f->values[i]);
        if (o + len + 1 > storelen)
            return -1;
        char *s = store + o;
        memcpy(s, f->values[i], len + 1);
        o += len + 1;
        char *save = NULL;
        for (char *tok = strtok_r(s, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
            size_t key_len;
            if (rm_config_parse_label(tok, &key_len) != 0 || *num == MAX_LABELS)
                return -1;
            tok[key_len] = '\0';
            labels[*num].key = tok;
            labels[*num].value = tok + key_len + 1;
            (*num)++;
        }
    }
    return 0;
}

/* When no ALLOW policy selects the workload, the DENY and AUDIT policies that do (none of whose rules denied), appended
 * to `why`: a default decision does not mean that no policy protects the workload. */
static void explain_non_allow(const rm_authz_policy_t *const *selected, size_t nsel, char *why, size_t len)
{
    static const rm_authz_action_t actions[] = {RM_AUTHZ_DENY, RM_AUTHZ_AUDIT};
    size_t o = strlen(why);
    for (size_t a = 0; a < sizeof(actions) / sizeof(actions[0]); a++) {
        char names[1024];
        size_t no = 0, cnt = 0;
        for (size_t i = 0; i < nsel && no < sizeof(names); i++) {
            const rm_authz_policy_t *p = selected[i];
            if (p->action != actions[a])
                continue;
            int n = snprintf(names + no, sizeof(names) - no, "%s%s/%s%s", cnt == 0 ? "" : ", ", p->namespace_, p->name,
                             p->dry_run ? " (dry-run)" : "");
            no += n > 0 ? (size_t)n : 0;
            cnt++;
        }
        if (cnt == 0 || o >= len)
            continue;
        int n = snprintf(why + o, len - o, "; %s %s select%s this workload: %s%s", rm_authz_action_name(actions[a]),
                         cnt == 1 ? "policy" : "policies", cnt == 1 ? "s" : "", names,
                         actions[a] != RM_AUTHZ_DENY ? ""
                         : cnt == 1                  ? " (none of its rules matched)"
                                                     : " (none of their rules matched)");
        o += n > 0 ? (size_t)n : 0;
    }
}

static int policy_check(int argc, char **argv)
{
    flag_t flags[C_NUM] = {
        [C_FILE] = {"file", 1, 1, 'f'},
        [C_TO_NAMESPACE] = {"to-namespace", 1},
        [C_TO_LABELS] = {"to-labels", 1, 1},
        [C_FROM] = {"from", 1},
        [C_SOURCE_IP] = {"source-ip", 1},
        [C_DESTINATION_IP] = {"destination-ip", 1},
        [C_PORT] = {"port", 1},
        [C_SNI] = {"sni", 1},
        [C_METHOD] = {"method", 1},
        [C_PATH] = {"path", 1},
        [C_HOST] = {"host", 1},
        [C_HEADER] = {"header", 1, 1},
        [C_DEFAULT_ACTION] = {"default-action", 1},
        [C_ROOT_NAMESPACE] = {"root-namespace", 1},
        [C_TRUST_DOMAIN] = {"trust-domain", 1},
        [C_TRUST_DOMAIN_ALIAS] = {"trust-domain-alias", 1, 1},
        [C_OUTPUT] = {"output", 1, 0, 'o'},
        [C_PATH_NORMALIZATION] = {"path-normalization", 1},
        [C_NUM_TRUSTED_PROXIES] = {"num-trusted-proxies", 1},
    };
    rm_policy_set_t set = {0};
    rm_policy_diags_t diags = {0};
    rm_authz_engine_t *engine = NULL;
    const rm_authz_policy_t **selected = NULL;
    size_t nsel = 0;
    rm_label_t labels[MAX_LABELS];
    size_t nlabels = 0;
    char label_store[8192], err_text[1024];
    rm_http_header_t headers[MAX_HEADERS];
    rm_http_request_t req = {0};
    rm_authz_attrs_t attrs = {0};
    rm_authz_engine_opts_t opts = {.default_action = RM_AUTHZ_DENY};
    rm_authz_decision_t d;
    rm_path_normalization_t path_mode = RM_PATH_NORMALIZATION_BASE;
    rm_http_target_t target = {0};
    char *target_buf = NULL;
    int err, ret = RM_CTL_EXIT_USAGE, json = 0;

    if (rm__ctl_flags(level, argc, argv, flags, C_NUM, &ret) != 0)
        return ret;
    if (flags[C_FILE].count == 0 || flags[C_TO_NAMESPACE].value == NULL || flags[C_PORT].value == NULL)
        return usage_error("check", "-f, --to-namespace and --port are required");
    if (flags[C_OUTPUT].value != NULL) {
        if (strcmp(flags[C_OUTPUT].value, "json") == 0)
            json = 1;
        else if (strcmp(flags[C_OUTPUT].value, "text") != 0)
            return usage_error("check", "-o must be text or json");
    }
    if (flags[C_DEFAULT_ACTION].value != NULL) {
        if (strcmp(flags[C_DEFAULT_ACTION].value, "allow") == 0 || strcmp(flags[C_DEFAULT_ACTION].value, "ALLOW") == 0)
            opts.default_action = RM_AUTHZ_ALLOW;
        else if (strcmp(flags[C_DEFAULT_ACTION].value, "deny") != 0 &&
                 strcmp(flags[C_DEFAULT_ACTION].value, "DENY") != 0)
            return usage_error("check", "--default-action must be deny or allow");
    }
    if (flags[C_PATH_NORMALIZATION].value != NULL &&
        rm_path_normalization_parse(flags[C_PATH_NORMALIZATION].value, &path_mode) != 0)
        return usage_error("check", "--path-normalization must be " RM_PATH_NORMALIZATION_NAMES);
    opts.trust_domain = flags[C_TRUST_DOMAIN].value != NULL ? flags[C_TRUST_DOMAIN].value : DEFAULT_TRUST_DOMAIN;
    for (size_t i = 0; i <= flags[C_TRUST_DOMAIN_ALIAS].count; i++) {
        const char *td = i == 0 ? opts.trust_domain : flags[C_TRUST_DOMAIN_ALIAS].values[i - 1];
        if (rm_trust_domain_check(td, strlen(td)) != 0) {
            char msg[400];
            snprintf(msg, sizeof(msg), "%s \"%.256s\" is not a SPIFFE trust domain",
                     i == 0 ? "--trust-domain" : "--trust-domain-alias", td);
            return usage_error("check", msg);
        }
    }
    opts.trust_domain_aliases = (char *const *)flags[C_TRUST_DOMAIN_ALIAS].values;
    opts.num_trust_domain_aliases = flags[C_TRUST_DOMAIN_ALIAS].count;
    if (parse_labels(&flags[C_TO_LABELS], label_store, sizeof(label_store), labels, &nlabels) != 0)
        return usage_error("check", "--to-labels wants k=v[,k=v...]");
    char *end;
    if (flags[C_NUM_TRUSTED_PROXIES].value != NULL) {
        unsigned long n = strtoul(flags[C_NUM_TRUSTED_PROXIES].value, &end, 10);
        if (*end != '\0' || flags[C_NUM_TRUSTED_PROXIES].value[0] == '\0' || n > 64)
            return usage_error("check", "--num-trusted-proxies wants a number from 0 to 64");
        opts.num_trusted_proxies = (uint32_t)n;
    }
    unsigned long port = strtoul(flags[C_PORT].value, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535)
        return usage_error("check", "--port wants a number from 1 to 65535");
    attrs.destination_port = (uint16_t)port;
    attrs.principal = flags[C_FROM].value;
    if (attrs.principal != NULL && strncmp(attrs.principal, "spiffe://", 9) != 0)
        return usage_error("check", "--from wants a SPIFFE ID (spiffe://TRUST-DOMAIN/ns/NS/sa/SA)");
    if (flags[C_SOURCE_IP].value != NULL) {
        if (rm_authz_ip_parse(flags[C_SOURCE_IP].value, attrs.source_ip) != 0)
            return usage_error("check", "--source-ip is not an IP address");
        attrs.have_source_ip = 1;
    }
    if (flags[C_DESTINATION_IP].value != NULL) {
        if (rm_authz_ip_parse(flags[C_DESTINATION_IP].value, attrs.destination_ip) != 0)
            return usage_error("check", "--destination-ip is not an IP address");
        attrs.have_destination_ip = 1;
    }
    attrs.sni = flags[C_SNI].value;
    if (flags[C_METHOD].value != NULL || flags[C_PATH].value != NULL || flags[C_HOST].value != NULL ||
        flags[C_HEADER].count > 0) {
        req.method = flags[C_METHOD].value != NULL ? flags[C_METHOD].value : "GET";
        req.method_len = strlen(req.method);
        req.path = flags[C_PATH].value != NULL ? flags[C_PATH].value : "/";
        req.path_len = strlen(req.path);
        /* the proxy's filters do the same before deciding, and forward what they decided on */
        if ((target_buf = malloc(req.path_len + 1)) == NULL) {
            fprintf(stderr, "ringmeshctl policy check: out of memory\n");
            return RM_CTL_EXIT_USAGE;
        }
        if (rm_http_path_normalize(path_mode, req.path, req.path_len, target_buf, req.path_len + 1, &target) != 0) {
            req.path_error = target.error != NULL ? target.error : "the request target cannot be normalized";
        } else {
            req.path = target_buf;
            req.path_len = target.len;
        }
        if (flags[C_HOST].value != NULL) {
            req.host = flags[C_HOST].value;
            req.host_len = strlen(req.host);
        }
        for (size_t i = 0; i < flags[C_HEADER].count; i++) {
            const char *h = flags[C_HEADER].values[i], *eq = strchr(h, '=');
            if (eq == NULL || eq == h) {
                ret = usage_error("check", "--header wants NAME=VALUE");
                goto Exit;
            }
            headers[i] = (rm_http_header_t){h, (size_t)(eq - h), eq + 1, strlen(eq + 1)};
            if (req.host == NULL && headers[i].name_len == 4 && strncasecmp(h, "host", 4) == 0) {
                req.host = eq + 1;
                req.host_len = strlen(eq + 1);
            }
            if (headers[i].name_len == 12 && strncasecmp(h, "content-type", 12) == 0 &&
                strncmp(eq + 1, "application/grpc", 16) == 0)
                req.grpc = 1;
        }
        req.headers = headers;
        req.num_headers = flags[C_HEADER].count;
        attrs.http = &req;
    }

    for (size_t i = 0; i < flags[C_FILE].count; i++) {
        int r = rm_policy_load_path(&set, flags[C_FILE].values[i], 0, &diags);
        if (r == -ENOMEM) {
            fprintf(stderr, "ringmeshctl policy check: out of memory\n");
            goto Exit;
        }
    }
    rm_policy_lint(&set, &diags);
    if (diags.num_errors > 0) {
        fprintf(stderr, "ringmeshctl policy check: the policies are not valid:\n");
        print_diags(&diags, stderr);
        ret = RM_CTL_EXIT_INVALID;
        goto Exit;
    }

    const char *root = flags[C_ROOT_NAMESPACE].value != NULL ? flags[C_ROOT_NAMESPACE].value : DEFAULT_ROOT_NAMESPACE;
    rm_workload_t w = {.namespace_ = flags[C_TO_NAMESPACE].value, .labels = labels, .num_labels = nlabels};
    if ((selected = calloc(set.num_policies + 1, sizeof(*selected))) == NULL)
        goto Exit;
    for (size_t i = 0; i < set.num_policies; i++)
        if (rm_authz_policy_selects(&set.policies[i], root, &w))
            selected[nsel++] = &set.policies[i];
    if ((err = rm_authz_engine_new(&engine, selected, nsel, &opts, err_text, sizeof(err_text))) != 0) {
        fprintf(stderr, "ringmeshctl policy check: %s\n", err == -ENOMEM ? "out of memory" : err_text);
        ret = RM_CTL_EXIT_INVALID;
        goto Exit;
    }
    if (req.path_error != NULL) {
        memset(&d, 0, sizeof(d));
        d.reason = RM_AUTHZ_REASON_UNEVALUABLE;
        d.rule = d.dry_run_rule = d.audit_rule = -1;
        d.log = 1;
    } else {
        rm_authz_evaluate(engine, &attrs, 0.0, &d);
    }

    char workload[512];
    const char *app = "*";
    for (size_t i = 0; i < nlabels; i++)
        if (strcmp(labels[i].key, "app") == 0)
            app = labels[i].value;
    snprintf(workload, sizeof(workload), "%s/%s", w.namespace_, app);
    if (json) {
        rm_log_line_t l;
        rm_log_configure(RM_LOG_DEBUG, 1);
        rm_log_begin(&l, d.allow ? RM_LOG_INFO : RM_LOG_WARN, "authz");
        rm_authz_log_fields(&l, &d, &attrs, workload);
        if (attrs.http != NULL) {
            rm_log_str(&l, "path_normalization", rm_path_normalization_name(path_mode));
            if (req.path_error != NULL)
                rm_log_str(&l, "path_error", req.path_error);
        }
        rm_log_end(&l);
    } else {
        char why[2048];
        rm_authz_decision_explain(&d, why, sizeof(why));
        if (d.reason == RM_AUTHZ_REASON_DEFAULT_DENY || d.reason == RM_AUTHZ_REASON_DEFAULT_ALLOW)
            explain_non_allow(selected, nsel, why, sizeof(why));
        printf("decision: %s\n", rm_authz_decision_word(&d));
        printf("enforced: %s\n", d.allow ? "allow" : "deny");
        printf("why: %s\n", why);
        if (d.reason == RM_AUTHZ_REASON_NO_ALLOW_MATCH && d.miss_policy != NULL) {
            rm_authz_closest_miss_explain(&d, &attrs, why, sizeof(why));
            printf("closest miss: %s (%u of %u fields matched), %s:%u\n", why, (unsigned)d.miss_matched,
                   (unsigned)d.miss_fields, d.miss_policy->file != NULL ? d.miss_policy->file : "-",
                   d.miss_policy->line);
        }
        if (req.path_error != NULL)
            printf("path: %s refused (400): %s\n", req.path, req.path_error);
        else if (attrs.http != NULL)
            printf("path: %.*s (%s normalization; what the policy matched)\nforwarded: %.*s (what the app receives)\n",
                   (int)target.path_len, req.path, rm_path_normalization_name(path_mode), (int)req.path_len, req.path);
        if (d.policy != NULL)
            printf("policy: %s/%s (%s) rule %d, %s:%u\n", d.policy->namespace_, d.policy->name,
                   rm_authz_action_name(d.policy->action), d.rule, d.policy->file != NULL ? d.policy->file : "-",
                   d.policy->line);
        printf("request: %s %s\n", attrs.http != NULL ? "HTTP" : "TCP connection",
               attrs.principal != NULL ? attrs.principal : "from a plaintext (not mTLS) client");
        printf("policies selecting %s:", w.namespace_);
        if (nsel == 0)
            printf(" none (the mesh default action applies)");
        for (size_t i = 0; i < nsel; i++)
            printf("%s %s/%s (%s%s)", i ? "," : "", selected[i]->namespace_, selected[i]->name,
                   rm_authz_action_name(selected[i]->action), selected[i]->dry_run ? ", dry-run" : "");
        printf("\n");
        for (size_t i = 0; i < diags.n; i++) {
            char line[2048];
            rm_policy_diag_format(&diags.d[i], line, sizeof(line));
            printf("%s\n", line);
        }
    }
    ret = d.allow ? RM_CTL_EXIT_OK : RM_CTL_EXIT_DENIED;
Exit:
    free(target_buf);
    rm_authz_engine_free(engine);
    free(selected);
    rm_policy_set_clear(&set);
    rm_policy_diags_clear(&diags);
    return ret;
}

/* ---- the group ---------------------------------------------------------------------------------------------- */

static const rm_ctl_command_t commands[] = {
    {.name = "lint",
     .summary = "validate AuthorizationPolicy / PeerAuthentication files",
     .handler = policy_lint,
     .usage = "ringmeshctl policy lint [--strict] FILE|DIR...",
     .help = "reads AuthorizationPolicy and PeerAuthentication documents (ringmesh.io/v1alpha1 or\n"
             "security.istio.io/v1, v1beta1) and reports every error with file, line and field, and warnings\n"
             "for rules that can never match or that use HTTP-only fields. --strict also refuses documents of\n"
             "other kinds. Exit 0 when there is no error, 1 when there is one, 2 when a file cannot be read."},
    {.name = "check",
     .summary = "decide a request against policies, with the proxy's engine",
     .handler = policy_check,
     .usage =
         "ringmeshctl policy check -f FILE|DIR --to-namespace NS [--to-labels k=v,...] --port N\n"
         "                                [--from spiffe://TD/ns/NS/sa/SA] [--source-ip IP] [--destination-ip IP]\n"
         "                                [--sni NAME] [--method M] [--path P] [--host H] [--header k=v]...\n"
         "                                [--default-action deny|allow] [--root-namespace NS]\n"
         "                                [--trust-domain TD [--trust-domain-alias TD]...] [-o text|json]\n"
         "                                [--num-trusted-proxies N]\n"
         "                                [--path-normalization BASE|MERGE_SLASHES|DECODE_AND_MERGE_SLASHES|NONE]",
     .help = "decides one connection (no --method/--path/--host/--header) or one HTTP request against the\n"
             "policies that select the workload (--to-namespace, --to-labels), with the proxy's engine, and\n"
             "prints the decision and the policy and rule that made it. --from absent means a plaintext\n"
             "(not mTLS) client. The mesh default action is DENY unless --default-action allow.\n"
             "--path is normalized as the proxy does before deciding and forwarding (BASE unless\n"
             "--path-normalization says otherwise); the normalized path is printed, and a path the proxy\n"
             "answers 400 (%00) is denied with reason invalid-path.\n"
             "--header may name a header twice: as on the wire, its values are matched joined with \",\".\n"
             "--trust-domain is the mesh's trust domain (MeshConfig trustDomain, default cluster.local) and\n"
             "--trust-domain-alias its trustDomainAliases: a policy principal naming cluster.local, the trust\n"
             "domain or an alias stands for the workload in each of them, as in the proxy.\n"
             "--num-trusted-proxies is the mesh's numTrustedProxies (default 0): N > 0 makes remote.ip the Nth\n"
             "address from the right of the X-Forwarded-For --header, when there are that many.\n"
             "When no ALLOW rule matched, the closest miss is printed: the ALLOW rule that matched the most\n"
             "fields and the first field that failed, with the value that failed it.\n"
             "Exit 0 allow, 3 deny, 1 invalid policies, 2 usage error."},
    {.name = "replay",
     .summary = "decide logged requests again against a proposed policy set: what would change",
     .handler = rm__ctl_policy_replay,
     .usage = "ringmeshctl policy replay --log FILE... -f FILE|DIR... [--against FILE|DIR...] [-o text|json]\n"
              "                                 [--default-action deny|allow] [--root-namespace NS]\n"
              "                                 [--trust-domain TD [--trust-domain-alias TD]...]",
     .help = "reads decision (\"authz\") and inbound access (\"access\") lines as `kubectl logs` prints them\n"
             "(JSON lines, a `--prefix` \"[pod/NAME/CONTAINER] \" allowed; other lines are skipped and counted),\n"
             "rebuilds each request (every attribute when the mesh logs them: authorization.logAttributes),\n"
             "decides it with the proxy's engine against the -f policies selecting the line's workload, and\n"
             "compares with --against (else with the decision the line records). Prints the requests that\n"
             "would go from allowed to denied and back, grouped by policy, rule, source and destination, with\n"
             "counts and an example each. Exit 0 when nothing allowed would be denied, 3 otherwise, 1 on a\n"
             "file or policy error (named with file and line), 2 usage error."},
    {.name = "coverage",
     .summary = "rules that never matched and policies that select no workload",
     .handler = rm__ctl_policy_coverage,
     .usage = "ringmeshctl policy coverage (--admin HOST:PORT... | --log FILE...) -f FILE|DIR...\n"
              "                                   [--workload NS[:k=v,...]]... [-o text|json] [--root-namespace NS]",
     .help = "lists the rules of the -f policies that never matched: by the proxies' per-rule decision\n"
             "counters (ringmesh_proxy_authz_decisions_total on each --admin address's /metrics), or by\n"
             "deciding every request of the --log lines again. Lists the policies that select none of the\n"
             "workloads given with --workload or named by the log lines. Exit 0, 1 on a file, proxy or\n"
             "policy error, 2 usage error."},
};

const rm_ctl_level_t rm__ctl_policy_level = {
    .path = "ringmeshctl policy",
    .noun = "subcommand",
    .commands = commands,
    .num_commands = sizeof(commands) / sizeof(commands[0]),
};
