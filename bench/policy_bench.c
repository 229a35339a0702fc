/* policy_bench: the cost of one authorization decision (rm_authz_evaluate) with 1,000 rules on the workload.
 *
 * Each shape is a policy set written as YAML text, read by the real loader (rm_policy_load_yaml), selected for the
 * workload bench/app=checkout (rm_authz_policy_selects) and compiled (rm_authz_engine_new), as the proxy does:
 *
 *   principals  1,000 ALLOW rules (10 policies of 100), each from one exact principal to GET/HEAD on its own path
 *               prefix, and 8 DENY rules (namespaces, ipBlocks, principal suffix, paths, methods, a header): the
 *               principal index narrows the ALLOW rules to one, the DENY rules are looked at on every decision.
 *   mixed       100 DENY rules (2 policies) and 900 ALLOW rules (6 policies) that the principal index cannot
 *               narrow: namespaces, principal prefixes, ipBlocks, ports, hosts, exact/prefix/suffix paths,
 *               notPaths, notNamespaces and request headers in `when`. A decision scans them in order.
 *   tcp         as principals, on TCP connections (no HTTP request): 1,000 ALLOW rules from exact principals to
 *               database ports, 8 DENY rules on namespaces, ipBlocks, ports, SNI and source.namespace.
 *
 * Requests are made before timing, in four classes: early-allow (allowed by one of the first 10% of the ALLOW
 * rules), late-allow (one of the last 10%), deny (by a DENY rule) and no-allow-match (nothing matches: the worst
 * case, which has to look at every rule that applies). Every request is decided once first and checked against
 * the decision it must get (policy and rule); a wrong one ends the benchmark with status 1.
 *
 * Timing: a batch of B decisions of the same request is timed with CLOCK_MONOTONIC and divided by B (B = 16: the
 * clock's own cost, reported, is then a few ns per decision); batches pick their request at random, 30% early,
 * 30% late, 10% deny, 30% no-allow-match. Percentiles are over the batches, for the mix and per class. A second
 * pass decides the same stream one decision per request in turn (no repetition) for decisions/s on one core.
 *
 *   policy_bench [--batches N] [--batch B] [--seed S] [--shape NAME] [--json FILE]
 *
 * Prints a markdown table on stdout and writes the JSON summary to FILE (stdout when FILE is "-"). Exit status 0,
 * 1 when a decision was wrong, 2 on a usage or setup error. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy_bench.h"

static const char *const class_names[CLASS_COUNT] = {"early-allow", "late-allow", "deny", "no-allow-match"};
static const unsigned class_permille[CLASS_COUNT] = {300, 300, 100, 300};

/* ------------------------------------------------------------------ helpers */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng_next(void)
{
    uint64_t x = rng_state; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

void pb_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("policy_bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* ------------------------------------------------------------------ setup and checks */

static void shape_setup(shape_t *s)
{
    rm_bytebuf_t yaml = {0};
    rm_policy_diags_t diags = {0};
    rm_label_t label = {.key = "app", .value = WORKLOAD_APP};
    rm_workload_t w = {.namespace_ = WORKLOAD_NS, .labels = &label, .num_labels = 1};
    rm_authz_engine_opts_t opts = {.default_action = RM_AUTHZ_DENY};
    const rm_authz_policy_t **sel;
    char file[64], err[512] = "", msg[1200];
    int ret;

    s->write_yaml(&yaml);
    s->yaml_bytes = yaml.len;
    snprintf(file, sizeof(file), "%s.yaml", s->name);
    int64_t t0 = now_ns();
    ret = rm_policy_load_yaml(&s->set, (const char *)yaml.base, yaml.len, file, 1, &diags);
    s->load_ms = (double)(now_ns() - t0) / 1e6;
    for (size_t i = 0; i < diags.n; i++) {
        rm_policy_diag_format(&diags.d[i], msg, sizeof(msg));
        fprintf(stderr, "policy_bench: %s\n", msg);
    }
    if (ret != 0 || diags.num_errors != 0)
        pb_die("%s: the loader refused the generated policies (%d)", s->name, ret);
    rm_policy_diags_clear(&diags);
    rm_bytebuf_free(&yaml);

    if ((sel = calloc(s->set.num_policies + 1, sizeof(*sel))) == NULL)
        pb_die("out of memory");
    for (size_t i = 0; i < s->set.num_policies; i++)
        if (rm_authz_policy_selects(&s->set.policies[i], ROOT_NAMESPACE, &w))
            sel[s->num_policies++] = &s->set.policies[i];
    if (s->num_policies != s->set.num_policies)
        pb_die("%s: %zu of %zu policies select the workload", s->name, s->num_policies, s->set.num_policies);
    t0 = now_ns();
    ret = rm_authz_engine_new(&s->engine, sel, s->num_policies, &opts, err, sizeof(err));
    s->compile_ms = (double)(now_ns() - t0) / 1e6;
    free(sel);
    if (ret != 0)
        pb_die("%s: compile: %d %s", s->name, ret, err);
    s->num_rules = rm_authz_engine_num_rules(s->engine);

    for (int k = 0; k < CLASS_COUNT; k++)
        for (int i = 0; i < REQS_PER_CLASS; i++)
            s->make_request(&s->reqs[k * REQS_PER_CLASS + i], (req_class_t)k, i);
}

/* Decides every request once and compares with what it must get. Returns the number of wrong decisions. */
static int shape_check(const shape_t *s)
{
    int wrong = 0;
    char why[512];
    for (size_t i = 0; i < CLASS_COUNT * REQS_PER_CLASS; i++) {
        const req_t *r = &s->reqs[i];
        rm_authz_decision_t d;
        rm_authz_evaluate(s->engine, &r->a, 0.5, &d);
        int ok = d.allow == r->want_allow && d.reason == r->want_reason && d.rule == r->want_rule &&
                 (r->want_policy[0] == '\0' ? d.policy == NULL
                                            : d.policy != NULL && strcmp(d.policy->name, r->want_policy) == 0);
        if (!ok) {
            rm_authz_decision_explain(&d, why, sizeof(why));
            if (wrong < 10)
                fprintf(stderr,
                        "policy_bench: %s %s request %zu (principal %s, %s %s): got \"%s\", want %s by %s rule %d "
                        "(%s)\n",
                        s->name, class_names[r->klass], i % REQS_PER_CLASS, r->a.principal ? r->a.principal : "-",
                        r->a.http ? r->method : "tcp", r->a.http ? r->path : "", why, r->want_allow ? "allow" : "deny",
                        r->want_policy[0] ? r->want_policy : "-", r->want_rule, rm_authz_reason_word(r->want_reason));
            wrong++;
        }
    }
    return wrong;
}

/* ------------------------------------------------------------------ measurement */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* nearest rank on sorted values */
static double rank(const double *v, size_t n, double p)
{
    size_t k = (size_t)ceil(p * (double)n);
    return v[k == 0 ? 0 : k - 1];
}

static stats_t summarize(double *v, size_t n)
{
    stats_t st = {.n = n};
    double sum = 0;
    if (n == 0)
        return st;
    qsort(v, n, sizeof(*v), cmp_double);
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    st.p50 = rank(v, n, 0.50);
    st.p90 = rank(v, n, 0.90);
    st.p99 = rank(v, n, 0.99);
    st.p999 = rank(v, n, 0.999);
    st.max = v[n - 1];
    st.mean = sum / (double)n;
    return st;
}

static volatile unsigned sink;

static void shape_measure(shape_t *s, size_t batches, unsigned batch)
{
    uint32_t *pick = malloc(batches * sizeof(*pick));
    double *ns = malloc(batches * sizeof(*ns)), *cls = malloc(batches * sizeof(*cls));
    rm_authz_decision_t d;
    unsigned acc = 0;
    if (pick == NULL || ns == NULL || cls == NULL)
        pb_die("out of memory");

    for (size_t b = 0; b < batches; b++) {
        unsigned u = (unsigned)(rng_next() % 1000), k = 0, cum = class_permille[0];
        while (u >= cum && k + 1 < CLASS_COUNT)
            cum += class_permille[++k];
        pick[b] = k * REQS_PER_CLASS + (uint32_t)(rng_next() % REQS_PER_CLASS);
    }
    for (int rep = 0; rep < 8; rep++) /* warm-up: code, engine and requests in cache, CPU clocked up */
        for (size_t i = 0; i < CLASS_COUNT * REQS_PER_CLASS; i++) {
            rm_authz_evaluate(s->engine, &s->reqs[i].a, 0.5, &d);
            acc += d.allow;
        }

    for (size_t b = 0; b < batches; b++) {
        const rm_authz_attrs_t *a = &s->reqs[pick[b]].a;
        int64_t t0 = now_ns();
        for (unsigned k = 0; k < batch; k++) {
            rm_authz_evaluate(s->engine, a, 0.5, &d);
            acc += d.allow;
        }
        ns[b] = (double)(now_ns() - t0) / batch;
    }

    /* one decision per request in turn: decisions/s on one core */
    int64_t t0 = now_ns();
    for (unsigned k = 0; k < batch; k++)
        for (size_t b = 0; b < batches; b++) {
            rm_authz_evaluate(s->engine, &s->reqs[pick[b]].a, 0.5, &d);
            acc += d.allow;
        }
    double elapsed = (double)(now_ns() - t0);
    s->decisions_per_s = (double)batches * batch / (elapsed / 1e9);
    s->stream_mean_ns = elapsed / ((double)batches * batch);
    sink = acc;

    for (int k = 0; k < CLASS_COUNT; k++) {
        size_t n = 0;
        for (size_t b = 0; b < batches; b++)
            if (pick[b] / REQS_PER_CLASS == (uint32_t)k)
                cls[n++] = ns[b];
        s->per_class[k] = summarize(cls, n);
    }
    s->all = summarize(ns, batches);
    free(pick);
    free(ns);
    free(cls);
}

/* the median cost of the clock reads around one batch, which every batch includes */
static double timer_overhead_ns(void)
{
    enum { N = 20001 };
    static double v[N];
    for (int i = 0; i < N; i++) {
        int64_t t0 = now_ns();
        v[i] = (double)(now_ns() - t0);
    }
    qsort(v, N, sizeof(v[0]), cmp_double);
    return v[N / 2];
}

/* ------------------------------------------------------------------ output */

static int worst_class(const shape_t *s)
{
    int w = 0;
    for (int k = 1; k < CLASS_COUNT; k++)
        if (s->per_class[k].p99 > s->per_class[w].p99)
            w = k;
    return w;
}

static void print_stats_json(FILE *f, const stats_t *st)
{
    fprintf(f,
            "{\"samples\":%zu,\"p50_ns\":%.1f,\"p90_ns\":%.1f,\"p99_ns\":%.1f,\"p999_ns\":%.1f,\"max_ns\":%.1f,"
            "\"mean_ns\":%.1f}",
            st->n, st->p50, st->p90, st->p99, st->p999, st->max, st->mean);
}

static void print_json(FILE *f, shape_t *const *shapes, size_t n, size_t batches, unsigned batch, uint64_t seed,
                       double overhead)
{
    fprintf(f,
            "{\"bench\":\"policy\",\"batch\":%u,\"batches\":%zu,\"seed\":%llu,\"timer_overhead_ns\":%.1f,"
            "\"target_p99_ns\":%.0f,\"shapes\":[",
            batch, batches, (unsigned long long)seed, overhead, TARGET_P99_NS);
    for (size_t i = 0; i < n; i++) {
        const shape_t *s = shapes[i];
        int w = worst_class(s);
        fprintf(f,
                "%s{\"name\":\"%s\",\"http\":%s,\"policies\":%zu,\"rules\":%zu,\"yaml_bytes\":%zu,\"load_ms\":%.2f,"
                "\"compile_ms\":%.2f,\"decisions\":%zu,\"decisions_per_s\":%.0f,\"stream_mean_ns\":%.1f,\"all\":",
                i ? "," : "", s->name, s->http ? "true" : "false", s->num_policies, s->num_rules, s->yaml_bytes,
                s->load_ms, s->compile_ms, batches * batch, s->decisions_per_s, s->stream_mean_ns);
        print_stats_json(f, &s->all);
        fprintf(f, ",\"worst_class\":\"%s\",\"classes\":{", class_names[w]);
        for (int k = 0; k < CLASS_COUNT; k++) {
            fprintf(f, "%s\"%s\":", k ? "," : "", class_names[k]);
            print_stats_json(f, &s->per_class[k]);
        }
        fprintf(f, "},\"p99_met\":%s}",
                s->all.p99 <= TARGET_P99_NS && s->per_class[w].p99 <= TARGET_P99_NS ? "true" : "false");
    }
    fprintf(f, "]}\n");
}

static void print_row(const char *shape, const char *klass, const char *share, const stats_t *st, double per_s)
{
    printf("| %s | %s | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n", shape, klass, share, st->p50, st->p90,
           st->p99, st->p999, st->max, st->mean, per_s);
}

static void print_markdown(shape_t *const *shapes, size_t n, size_t batches, unsigned batch, double overhead)
{
    printf("Decisions timed in batches of %u of one request (%zu batches, %zu decisions per shape); clock read "
           "around a batch: %.0f ns (%.1f ns per decision, included). ns per decision.\n\n",
           batch, batches, batches * batch, overhead, overhead / batch);
    printf("| shape | class | share | p50 | p90 | p99 | p99.9 | max | mean | decisions/s |\n");
    printf("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for (size_t i = 0; i < n; i++) {
        const shape_t *s = shapes[i];
        char label[96], share[16];
        snprintf(label, sizeof(label), "%s (%zu rules%s)", s->name, s->num_rules, s->http ? "" : ", TCP");
        print_row(label, "**mix**", "100%", &s->all, s->decisions_per_s);
        for (int k = 0; k < CLASS_COUNT; k++) {
            snprintf(share, sizeof(share), "%u%%", class_permille[k] / 10);
            print_row("", class_names[k], share, &s->per_class[k], 1e9 / s->per_class[k].mean);
        }
    }
    printf("\ndecisions/s: for the mix, one core deciding the same stream one decision per request in turn (no "
           "repetition); per class, 1 s / mean.\n\n");
    for (size_t i = 0; i < n; i++) {
        const shape_t *s = shapes[i];
        int w = worst_class(s);
        printf("- %s: p99 %.0f ns over the mix, %.0f ns for %s (worst class): %s the 1 µs target. %zu policies, "
               "YAML %zu bytes, loaded in %.1f ms, compiled in %.1f ms.\n",
               s->name, s->all.p99, s->per_class[w].p99, class_names[w],
               s->all.p99 <= TARGET_P99_NS && s->per_class[w].p99 <= TARGET_P99_NS ? "meets" : "misses",
               s->num_policies, s->yaml_bytes, s->load_ms, s->compile_ms);
    }
}

/* ------------------------------------------------------------------ main */

static shape_t shape_defs[] = {
    {.name = "principals", .http = 1, .write_yaml = pb_write_principals, .make_request = pb_make_principals},
    {.name = "mixed", .http = 1, .write_yaml = pb_write_mixed, .make_request = pb_make_mixed},
    {.name = "tcp", .http = 0, .write_yaml = pb_write_tcp, .make_request = pb_make_tcp},
};
#define NUM_SHAPES (sizeof(shape_defs) / sizeof(shape_defs[0]))

static void usage(void)
{
    fprintf(stderr, "usage: policy_bench [--batches N] [--batch B] [--seed S] [--shape principals|mixed|tcp] "
                    "[--json FILE|-]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"batches", required_argument, NULL, 'n'},
                                             {"batch", required_argument, NULL, 'b'},
                                             {"seed", required_argument, NULL, 's'},
                                             {"shape", required_argument, NULL, 'S'},
                                             {"json", required_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    size_t batches = DEFAULT_BATCHES;
    unsigned long batch = DEFAULT_BATCH;
    uint64_t seed = 1;
    const char *only = NULL, *json_path = NULL;
    shape_t *shapes[NUM_SHAPES];
    size_t n = 0;
    int opt, wrong = 0;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            batches = strtoul(optarg, NULL, 10);
            break;
        case 'b':
            batch = strtoul(optarg, NULL, 10);
            break;
        case 's':
            seed = strtoull(optarg, NULL, 10);
            break;
        case 'S':
            only = optarg;
            break;
        case 'j':
            json_path = optarg;
            break;
        default:
            usage();
        }
    }
    if (optind != argc || batches < 1000 || batch < 1 || batch > 1024)
        usage();
    rng_state ^= seed * 0xbf58476d1ce4e5b9ULL;
    if (rng_state == 0)
        rng_state = 1;

    for (size_t i = 0; i < NUM_SHAPES; i++)
        if (only == NULL || strcmp(only, shape_defs[i].name) == 0)
            shapes[n++] = &shape_defs[i];
    if (n == 0)
        usage();

    for (size_t i = 0; i < n; i++) {
        shape_setup(shapes[i]);
        int w = shape_check(shapes[i]);
        fprintf(stderr, "policy_bench: %s: %zu rules, %d of %d decisions wrong\n", shapes[i]->name,
                shapes[i]->num_rules, w, CLASS_COUNT * REQS_PER_CLASS);
        wrong += w;
    }
    if (wrong > 0) {
        fprintf(stderr, "policy_bench: %d wrong decisions: not measuring a broken engine\n", wrong);
        return 1;
    }

    double overhead = timer_overhead_ns();
    for (size_t i = 0; i < n; i++) {
        fprintf(stderr, "policy_bench: measuring %s\n", shapes[i]->name);
        shape_measure(shapes[i], batches, (unsigned)batch);
    }

    print_markdown(shapes, n, batches, (unsigned)batch, overhead);
    if (json_path != NULL) {
        FILE *f = strcmp(json_path, "-") == 0 ? stdout : fopen(json_path, "w");
        if (f == NULL)
            pb_die("%s: %s", json_path, strerror(errno));
        print_json(f, shapes, n, batches, (unsigned)batch, seed, overhead);
        if (f != stdout && fclose(f) != 0)
            pb_die("%s: %s", json_path, strerror(errno));
    }
    for (size_t i = 0; i < n; i++) {
        rm_authz_engine_free(shapes[i]->engine);
        rm_policy_set_clear(&shapes[i]->set);
    }
    return 0;
}
