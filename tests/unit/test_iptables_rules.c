/* Unit tests for ringmesh-init's rule generation, argument validation, iptables-save reading and child runner. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "iptables_rules.h"
#include "ringmesh/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------------------------------------- */

#define MAX_ARGS 32

/* Parses a NULL-terminated list of arguments (argv[0] is supplied). Returns what rm_init_parse_args returned. */
static int parse(rm_init_config_t *cfg, rm_init_arg_error_t *err, ...)
{
    char *argv[MAX_ARGS] = {"ringmesh-init"};
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < MAX_ARGS - 1;)
        argv[argc++] = a;
    va_end(ap);
    return rm_init_parse_args(argc, argv, cfg, err);
}

/* Builds the rules for `family` from an already parsed configuration; the caller frees the result. */
static char *build(const rm_init_config_t *cfg, int family, const char *existing, size_t *num_rules)
{
    rm_bytebuf_t out = {0};
    size_t n = 0;
    assert_int_equal(rm_iptables_build_rules(cfg, family, existing, &out, &n), 0);
    assert_non_null(out.base);
    if (num_rules != NULL)
        *num_rules = n;
    return (char *)rm_bytebuf_release(&out);
}

/* Returns the 0-based index of the line equal to `line` in `text`, or -1. Fails the test if it occurs twice. */
static int line_index(const char *text, const char *line)
{
    int idx = -1, i = 0;
    size_t n = strlen(line);
    for (const char *p = text; *p != '\0'; i++) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        if (len == n && memcmp(p, line, n) == 0) {
            if (idx >= 0)
                fail_msg("line occurs twice: %s\n%s", line, text);
            idx = i;
        }
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    return idx;
}

static void assert_has_line(const char *text, const char *line)
{
    if (line_index(text, line) < 0)
        fail_msg("missing line: %s\nin:\n%s", line, text);
}

static void assert_no_line(const char *text, const char *line)
{
    if (line_index(text, line) >= 0)
        fail_msg("unexpected line: %s\nin:\n%s", line, text);
}

/* Asserts that every line of the NULL-terminated list is present and in that order. */
static void assert_lines_in_order(const char *text, ...)
{
    va_list ap;
    int prev = -1;
    const char *prev_line = "(start)";
    va_start(ap, text);
    for (const char *line; (line = va_arg(ap, const char *)) != NULL;) {
        int idx = line_index(text, line);
        if (idx < 0)
            fail_msg("missing line: %s\nin:\n%s", line, text);
        if (idx <= prev)
            fail_msg("line '%s' comes before '%s'\nin:\n%s", line, prev_line, text);
        prev = idx;
        prev_line = line;
    }
    va_end(ap);
}

static size_t count_prefix(const char *text, const char *prefix)
{
    size_t n = 0, plen = strlen(prefix);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, prefix, plen) == 0)
            n++;
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return n;
}

/* ---- defaults --------------------------------------------------------------------------------------------- */

static void test_defaults_config(void **state)
{
    rm_init_config_t cfg;
    rm_init_arg_error_t err;
    assert_int_equal(parse(&cfg, &err, NULL), 0);
    assert_int_equal(cfg.outbound_port, 15001);
    assert_int_equal(cfg.inbound_port, 15006);
    assert_int_equal(cfg.proxy_uid, 1337);
    assert_int_equal(cfg.proxy_gid, 1337);
    assert_true(cfg.include_outbound_cidrs.all);
    assert_true(cfg.include_inbound_ports.all);
    assert_int_equal(cfg.exclude_outbound_ports.count, 0);
    assert_int_equal(cfg.exclude_outbound_cidrs.count, 0);
    assert_int_equal(cfg.exclude_inbound_ports.count, 0);
    assert_int_equal(cfg.ipv6, RM_INIT_IPV6_AUTO);
    assert_false(cfg.dry_run);
    assert_false(cfg.cleanup);
    assert_false(cfg.help);
    assert_string_equal(cfg.log_level, "info");
}

static void test_defaults_v4(void **state)
{
    rm_init_config_t cfg;
    rm_init_arg_error_t err;
    size_t n;
    assert_int_equal(parse(&cfg, &err, NULL), 0);
    char *t = build(&cfg, AF_INET, NULL, &n);

    assert_lines_in_order(t, "*nat", ":RINGMESH_INBOUND - [0:0]", ":RINGMESH_IN_REDIRECT - [0:0]",
                          ":RINGMESH_OUTPUT - [0:0]", ":RINGMESH_REDIRECT - [0:0]", "COMMIT", NULL);
    assert_lines_in_order(t, "-A RINGMESH_INBOUND -p tcp -m tcp --dport 15001 -j RETURN",
                          "-A RINGMESH_INBOUND -p tcp -m tcp --dport 15006 -j RETURN",
                          "-A RINGMESH_INBOUND -p tcp -m tcp --dport 15021 -j RETURN",
                          "-A RINGMESH_INBOUND -p tcp -m tcp --dport 15090 -j RETURN",
                          "-A RINGMESH_INBOUND -p tcp -j RINGMESH_IN_REDIRECT", "COMMIT", NULL);
    assert_has_line(t, "-A RINGMESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006");
    assert_lines_in_order(t, "-A RINGMESH_OUTPUT -m owner --uid-owner 1337 -j RETURN",
                          "-A RINGMESH_OUTPUT -m owner --gid-owner 1337 -j RETURN",
                          "-A RINGMESH_OUTPUT -d 127.0.0.1/32 -o lo -j RETURN",
                          "-A RINGMESH_OUTPUT -j RINGMESH_REDIRECT", "COMMIT", NULL);
    assert_has_line(t, "-A RINGMESH_REDIRECT -p tcp -j REDIRECT --to-ports 15001");
    /* the jumps come after our chains are filled, so traffic never meets a half-built chain */
    assert_lines_in_order(t, "-A RINGMESH_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
                          "-A PREROUTING -p tcp -j RINGMESH_INBOUND", "-A OUTPUT -p tcp -j RINGMESH_OUTPUT", "COMMIT",
                          NULL);
    assert_no_line(t, "-A RINGMESH_OUTPUT -d ::1/128 -o lo -j RETURN");
    assert_int_equal(count_prefix(t, "-D "), 0);
    /* 4 own ports, inbound catch-all, in-redirect, uid, gid, lo, outbound catch-all, redirect, 2 jumps */
    assert_int_equal(n, 13);
    assert_int_equal(count_prefix(t, "-A "), n);
    free(t);
}

static void test_defaults_v6(void **state)
{
    rm_init_config_t cfg;
    rm_init_arg_error_t err;
    size_t n;
    assert_int_equal(parse(&cfg, &err, NULL), 0);
    char *t = build(&cfg, AF_INET6, NULL, &n);
    assert_has_line(t, "-A RINGMESH_OUTPUT -d ::1/128 -o lo -j RETURN");
    assert_no_line(t, "-A RINGMESH_OUTPUT -d 127.0.0.1/32 -o lo -j RETURN");
    assert_has_line(t, "-A RINGMESH_OUTPUT -m owner --uid-owner 1337 -j RETURN");
    assert_has_line(t, "-A RINGMESH_REDIRECT -p tcp -j REDIRECT --to-ports 15001");
    assert_has_line(t, "-A RINGMESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006");
    assert_has_line(t, "-A OUTPUT -p tcp -j RINGMESH_OUTPUT");
    assert_has_line(t, "-A PREROUTING -p tcp -j RINGMESH_INBOUND");
    assert_int_equal(n, 13);
    free(t);
}

/* ---- every flag ------------------------------------------------------------------------------------------- */

static void test_flag_ports(void **state)
{
    rm_init_config_t cfg;
    rm_init_arg_error_t err;
    assert_int_equal(parse(&cfg, &err, "--outbound-port", "16001", "--inbound-port=16006", NULL), 0);
    assert_int_equal(cfg.outbound_port, 16001);
    assert_int_equal(cfg.inbound_port, 16006);
    char *t = build(&cfg, AF_INET, NULL, NULL);
    assert_has_line(t, "-A RINGMESH_REDIRECT -p tcp -j REDIRECT --to-ports 16001");
    assert_has_line(t, "-A RINGMESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006");
    /* the proxy's listeners are never captured inbound, wherever they are */
    assert_has_line(t, "-A RINGMESH_INBOUND -p tcp -m tcp --dport 16001 -j RETURN");
    assert_has_line(t, "-A RINGMESH_INBOUND -p tcp -m tcp --dport 16006 -j RETURN");
    assert_has_line(t, "-A RINGMESH_INBOUND -p tcp -m tcp --dport 15021 -j RETURN");
    assert_has_line(t, "-A RINGMESH_INBOUND -p tcp -m tcp --dport 15090 -j RETURN");
    assert_no_line(t, "-A RINGMESH_REDIRECT -p tcp -j REDIRECT --to-ports 15001");
    assert_no_line(t, "-A RINGMESH_INBOUND -p tcp -m tcp --dport 15001 -j RETURN");
    free(t);
}

static void test_flag_proxy_uid_gid(void **state)
{
    rm_init_config_t cfg;
    rm_init_arg_error_t err;
    assert_int_equal(parse(&cfg, &err, "--proxy-uid", "0", "--proxy-gid=4294967294", NULL), 0);
    assert_int_equal(cfg.proxy_uid, 0);
    assert_int_equal(cfg.proxy_gid, 4294967294u);
    for (int f = 0; f < 2; f++) {
        char *t = build(&cfg, f == 0 ? AF_INET : AF_INET6, NULL, NULL);
        assert_lines_in_order(t, "-A RINGMESH_OUTPUT -m owner --uid-owner 0 -j RETURN",
                              "-A RINGMESH_OUTPUT -m owner --gid-owner 4294967294 -j RETURN",
                              "-A RINGMESH_OUTPUT -j RINGMESH_REDIRECT", NULL);
        assert_no_line(t, "-A RINGMESH_OUTPUT -m owner --uid-owner 1337 -j RETURN");
        free(t);
    }
}

static void test_flag_exclude_outbound_ports(void **state)
{
    rm_init_config_t cfg;
    rm_init_arg_error_t err;
    size_t n0, n;
    assert_int_equal(parse(&cfg, &err, NULL), 0);
    free(build(&cfg, AF_INET, NULL, &n0));
    /* duplicates collapse; spaces around entries are allowed */
    assert_int_equal(parse(&cfg, &err, "--exclude-outbound-ports", "22, 5432,22", NULL), 0);
    assert_int_equal(cfg.exclude_outbound_ports.count, 2);
    for (int f = 0; f < 2; f++) {
        char *t = build(&cfg, f == 0 ? AF_INET : AF_INET6, NULL, &n);
        /* excluded ports return before the catch-all jump */
        assert_lines_in_order(t, "-A RINGMESH_OUTPUT -p tcp -m tcp --dport 22 -j RETURN",
                              "-A RINGMESH_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN",
                              "-A RINGMESH_OUTPUT -j RINGMESH_REDIRECT", NULL);
        assert_int_equal(n, n0 + 2);
        free(t);
    }
    /* the last occurrence of a list flag wins */
    assert_int_equal(parse(&cfg, &err, "--exclude-outbound-ports", "22", "--exclude-outbound-ports", "", NULL), 0);
    assert_int_equal(cfg.exclude_outbound_ports.count, 0);
}

static void test_flag_exclude_outbound_cidrs_split(void **state)
{
    rm_init_config_t cfg;
    rm_init_arg_error_t err;
    assert_int_equal(
        parse(&cfg, &err, "--exclude-outbound-cidrs", "198.18.5.0/24,2001:db8::/32,198.19.0.7,fd00::1/64", NULL), 0);
    assert_int_equal(cfg.exclude_outbound_cidrs.count, 4);

    char *v4 = build(&cfg, AF_INET, NULL, NULL);
    assert_lines_in_order(v4, "-A RINGMESH_OUTPUT -d 198.18.5.0/24 -j RETURN",
                          "-A RINGMESH_OUTPUT -d 198.19.0.7/32 -j RETURN", "-A RINGMESH_OUTPUT -j RINGMESH_REDIRECT",
                          NULL);
    assert_null(strstr(v4, "2001:db8"));
    assert_null(strstr(v4, "fd00"));
    free(v4);

    char *v6 = build(&cfg, AF_INET6, NULL, NULL);
    /* host bits are cleared, as iptables-save would show them */
    assert_lines_in_order(v6, "-A RINGMESH_OUTPUT -d 2001:db8::/32 -j RETURN",
                          "-A RINGMESH_OUTPUT -d fd00::/64 -j RETURN", "-A RINGMESH_OUTPUT -j RINGMESH_REDIRECT", NULL);
    assert_null(strstr(v6, "198.1"));
    free(v6);
}

static void test_flag_include_outbound_cidrs(void **state)
{
    rm_init_config_t cfg;
    rm_init_arg_error_t err;
    assert_int_equal(parse(&cfg, &err, "--include-outbound-cidrs", "198.18.0.0/16,10.96.0.0/12", NULL), 0);
    assert_false(cfg.include_outbound_cidrs.all);

    char *v4 = build(&cfg, AF_INET, NULL, NULL);
    assert_lines_in_order(v4, "-A RINGMESH_OUTPUT -d 127.0.0.1/32 -o lo -j RETURN",
                          "-A RINGMESH_OUTPUT -d 198.18.0.0/16 -j RINGMESH_REDIRECT",
                          "-A RINGMESH_OUTPUT -d 10.96.0.0/12 -j RINGMESH_REDIRECT", NULL);
    assert_no_line(v4, "-A RINGMESH_OUTPUT -j RINGMESH_REDIRECT");
    free(v4);

    /* no IPv6 entries: nothing of IPv6 is captured outbound */
    char *v6 = build(&cfg, AF_INET6, NULL, NULL);
    assert_int_equal(count_prefix(v6, "-A RINGMESH_OUTPUT -d 198"), 0);
    assert_null(strstr(v6, "-j RINGMESH_REDIRECT"));
    assert_has_line(v6, "-A OUTPUT -p tcp -j RINGMESH_OUTPUT");
    free(v6);

    /* '' captures nothing, '*' everything */
    assert_int_equal(parse(&cfg, &err, "--include-outbound-cidrs=", NULL), 0);
    char *none = build(&cfg, AF_INET, NULL, NULL);
    assert_null(strstr(none, "-j RINGMESH_REDIRECT"));
    free(none);
    assert_int_equal(parse(&cfg, &err, "--include-outbound-cidrs", "*", NULL), 0);
    char *all = build(&cfg, AF_INET, NULL, NULL);
    assert_has_line(all, "-A RINGMESH_OUTPUT -j RINGMESH_REDIRECT");
    free(all);
}

static void test_flag_exclude_inbound_ports(void **state)
{
    rm_init_config_t cfg;
    rm_init_arg_error_t err;
    size_t n0, n;
    assert_int_equal(parse(&cfg, &err, NULL), 0);
    free(build(&cfg, AF_INET, NULL, &n0));
    /* 15021 is the proxy's own port already: it must not appear twice */
    assert_int_equal(parse(&cfg, &err, "--exclude-inbound-ports", "9000,15021,22", NULL), 0);
    char *t = build(&cfg, AF_INET, NULL, &n);
    assert_lines_in_order(t, "-A RINGMESH_INBOUND -p tcp -m tcp --dport 15090 -j RETURN",
                          "-A RINGMESH_INBOUND -p tcp -m tcp --dport 9000 -j RETURN",
                          "-A RINGMESH_INBOUND -p tcp -m tcp --dport 22 -j RETURN",
                          "-A RINGMESH_INBOUND -p tcp -j RINGMESH_IN_REDIRECT", NULL);
    assert_has_line(t, "-A RINGMESH_INBOUND -p tcp -m tcp --dport 15021 -j RETURN");
    assert_int_equal(n, n0 + 2);
    /* inbound exclusions say nothing about outbound traffic */
    assert_null(strstr(t, "-A RINGMESH_OUTPUT -p tcp -m tcp --dport 9000"));
    free(t);
}

static void test_flag_include_inbound_ports(void **state)
{
    rm_init_config_t cfg;
    rm_init_arg_error_t err;
    assert_int_equal(parse(&cfg, &err, "--include-inbound-ports", "8080,9090", "--exclude-inbound-ports", "9090", NULL),
                     0);
    char *t = build(&cfg, AF_INET6, NULL, NULL);
    /* an excluded port stays excluded even when listed as included: its RETURN comes first */
    assert_lines_in_order(t, "-A RINGMESH_INBOUND -p tcp -m tcp --dport 9090 -j RETURN",
                          "-A RINGMESH_INBOUND -p tcp -m tcp --dport 8080 -j RINGMESH_IN_REDIRECT",
                          "-A RINGMESH_INBOUND -p tcp -m tcp --dport 9090 -j RINGMESH_IN_REDIRECT", NULL);
    assert_no_line(t, "-A RINGMESH_INBOUND -p tcp -j RINGMESH_IN_REDIRECT");
    free(t);

    assert_int_equal(parse(&cfg, &err, "--include-inbound-ports", "", NULL), 0);
    t = build(&cfg, AF_INET, NULL, NULL);
    assert_null(strstr(t, "-j RINGMESH_IN_REDIRECT"));
    assert_has_line(t, "-A PREROUTING -p tcp -j RINGMESH_INBOUND");
    free(t);
}

static void test_flag_modes(void **state)
{
    rm_init_config_t cfg;
    rm_init_arg_error_t err;
    assert_int_equal(parse(&cfg, &err, "--ipv6", "on", "--dry-run", "--cleanup", "--log-level=debug", NULL), 0);
    assert_int_equal(cfg.ipv6, RM_INIT_IPV6_ON);
    assert_true(cfg.dry_run);
    assert_true(cfg.cleanup);
    assert_string_equal(cfg.log_level, "debug");
    assert_int_equal(parse(&cfg, &err, "--ipv6=off", NULL), 0);
    assert_int_equal(cfg.ipv6, RM_INIT_IPV6_OFF);
    assert_int_equal(parse(&cfg, &err, "--ipv6=on", "--ipv6", "auto", NULL), 0);
    assert_int_equal(cfg.ipv6, RM_INIT_IPV6_AUTO);
    assert_int_equal(parse(&cfg, &err, "--help", NULL), 0);
    assert_true(cfg.help);
    assert_int_equal(parse(&cfg, &err, "-h", NULL), 0);
    assert_true(cfg.help);
}

static void test_usage_documents_every_flag(void **state)
{
    const char *flags[] = {"--outbound-port",
                           "--inbound-port",
                           "--proxy-uid",
                           "--proxy-gid",
                           "--exclude-outbound-ports",
                           "--exclude-outbound-cidrs",
                           "--include-outbound-cidrs",
                           "--exclude-inbound-ports",
                           "--include-inbound-ports",
                           "--ipv6",
                           "--cleanup",
                           "--dry-run",
                           "--log-level",
                           "--help"};
    rm_init_config_t cfg;
    rm_init_arg_error_t err;
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        if (strstr(rm_init_usage, flags[i]) == NULL)
            fail_msg("--help does not mention %s", flags[i]);
        /* and every documented flag is one the parser knows */
        int ret = parse(&cfg, &err, flags[i], "1", NULL);
        if (ret != 0 && strcmp(err.reason, "unknown option (see --help)") == 0)
            fail_msg("%s is documented but unknown", flags[i]);
    }
}

/* ---- validation ------------------------------------------------------------------------------------------- */

typedef struct st_bad_arg_t {
    const char *args[4];
    const char *flag;
    const char *value;
} bad_arg_t;

static void test_validation_errors(void **state)
{
    static const bad_arg_t cases[] = {
        {{"--outbound-port", "0"}, "--outbound-port", "0"},
        {{"--outbound-port", "65536"}, "--outbound-port", "65536"},
        {{"--inbound-port=-1"}, "--inbound-port", "-1"},
        {{"--inbound-port", "15006x"}, "--inbound-port", "15006x"},
        {{"--inbound-port", ""}, "--inbound-port", ""},
        {{"--outbound-port", "99999999999999999999"}, "--outbound-port", "99999999999999999999"},
        {{"--exclude-outbound-ports", "22,70000"}, "--exclude-outbound-ports", "70000"},
        {{"--exclude-outbound-ports", "22,,5432"}, "--exclude-outbound-ports", "22,,5432"},
        {{"--exclude-outbound-ports", "*"}, "--exclude-outbound-ports", "*"},
        {{"--exclude-inbound-ports", "http"}, "--exclude-inbound-ports", "http"},
        {{"--include-inbound-ports", "8080,0"}, "--include-inbound-ports", "0"},
        {{"--exclude-outbound-cidrs", "198.18.5.0/33"}, "--exclude-outbound-cidrs", "198.18.5.0/33"},
        {{"--exclude-outbound-cidrs", "2001:db8::/129"}, "--exclude-outbound-cidrs", "2001:db8::/129"},
        {{"--exclude-outbound-cidrs", "198.18.5/24"}, "--exclude-outbound-cidrs", "198.18.5/24"},
        {{"--exclude-outbound-cidrs", "198.18.5.0/"}, "--exclude-outbound-cidrs", "198.18.5.0/"},
        {{"--exclude-outbound-cidrs", "198.18.5.0/-1"}, "--exclude-outbound-cidrs", "198.18.5.0/-1"},
        {{"--exclude-outbound-cidrs", "*"}, "--exclude-outbound-cidrs", "*"},
        {{"--include-outbound-cidrs", "10.0.0.0/8,example.com"}, "--include-outbound-cidrs", "example.com"},
        {{"--proxy-uid", "istio"}, "--proxy-uid", "istio"},
        {{"--proxy-uid", "-1"}, "--proxy-uid", "-1"},
        {{"--proxy-gid", "4294967295"}, "--proxy-gid", "4294967295"},
        {{"--proxy-gid", "1337.0"}, "--proxy-gid", "1337.0"},
        {{"--ipv6", "maybe"}, "--ipv6", "maybe"},
        {{"--log-level", "loud"}, "--log-level", "loud"},
        {{"--outbound-port"}, "--outbound-port", ""},
        {{"--no-such-flag"}, "--no-such-flag", ""},
        {{"--dry-run=yes"}, "--dry-run", "yes"},
        {{"extra"}, "extra", ""},
        {{"--outbound-port", "15006"}, "--inbound-port", "15006"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const bad_arg_t *c = &cases[i];
        rm_init_config_t cfg;
        rm_init_arg_error_t err;
        int ret = parse(&cfg, &err, c->args[0], c->args[1], c->args[2], c->args[3], NULL);
        if (ret != RM_ERR_CONFIG_VALUE)
            fail_msg("case %zu (%s %s): expected RM_ERR_CONFIG_VALUE, got %d", i, c->args[0],
                     c->args[1] ? c->args[1] : "", ret);
        if (strcmp(err.flag, c->flag) != 0 || strcmp(err.value, c->value) != 0)
            fail_msg("case %zu: error names flag '%s' value '%s', expected '%s' '%s'", i, err.flag, err.value, c->flag,
                     c->value);
        if (err.reason[0] == '\0')
            fail_msg("case %zu: no reason given", i);
    }
}

static void test_validation_list_limit(void **state)
{
    char list[RM_INIT_MAX_LIST * 7];
    size_t o = 0;
    rm_init_config_t cfg;
    rm_init_arg_error_t err;

    for (int i = 0; i < RM_INIT_MAX_LIST; i++)
        o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%d", i ? "," : "", 1000 + i);
    assert_int_equal(parse(&cfg, &err, "--exclude-outbound-ports", list, NULL), 0);
    assert_int_equal(cfg.exclude_outbound_ports.count, RM_INIT_MAX_LIST);
    /* the full list plus the proxy's 4 ports all make it into the inbound chain */
    assert_int_equal(parse(&cfg, &err, "--exclude-inbound-ports", list, NULL), 0);
    char *t = build(&cfg, AF_INET, NULL, NULL);
    assert_int_equal(count_prefix(t, "-A RINGMESH_INBOUND -p tcp -m tcp --dport"), RM_INIT_MAX_LIST + 4);
    free(t);

    snprintf(list + o, sizeof(list) - o, ",%d", 1000 + RM_INIT_MAX_LIST);
    assert_int_equal(parse(&cfg, &err, "--exclude-outbound-ports", list, NULL), RM_ERR_CONFIG_VALUE);
    assert_string_equal(err.flag, "--exclude-outbound-ports");
}

static void test_parse_port_and_cidr(void **state)
{
    uint16_t port;
    rm_init_cidr_t c;
    const char *reason = NULL;
    char s[64];

    assert_int_equal(rm_init_parse_port("1", &port), 0);
    assert_int_equal(port, 1);
    assert_int_equal(rm_init_parse_port("65535", &port), 0);
    assert_int_equal(port, 65535);
    assert_int_equal(rm_init_parse_port("+80", &port), -1);
    assert_int_equal(rm_init_parse_port(" 80", &port), -1);

    assert_int_equal(rm_init_parse_cidr("198.18.5.77/24", &c, &reason), 0);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix_len, 24);
    assert_string_equal(rm_init_cidr_format(&c, s, sizeof(s)), "198.18.5.0/24");
    assert_int_equal(rm_init_parse_cidr("198.19.255.255/15", &c, &reason), 0);
    assert_string_equal(rm_init_cidr_format(&c, s, sizeof(s)), "198.18.0.0/15");
    assert_int_equal(rm_init_parse_cidr("0.0.0.0/0", &c, &reason), 0);
    assert_string_equal(rm_init_cidr_format(&c, s, sizeof(s)), "0.0.0.0/0");
    assert_int_equal(rm_init_parse_cidr("198.18.0.9", &c, &reason), 0);
    assert_string_equal(rm_init_cidr_format(&c, s, sizeof(s)), "198.18.0.9/32");
    assert_int_equal(rm_init_parse_cidr("2001:db8:ffff::1/35", &c, &reason), 0);
    assert_int_equal(c.family, AF_INET6);
    assert_string_equal(rm_init_cidr_format(&c, s, sizeof(s)), "2001:db8:e000::/35");
    assert_int_equal(rm_init_parse_cidr("::1", &c, &reason), 0);
    assert_string_equal(rm_init_cidr_format(&c, s, sizeof(s)), "::1/128");

    assert_int_equal(rm_init_parse_cidr("198.18.0.0/33", &c, &reason), -1);
    assert_string_equal(reason, "prefix length must be 0..32");
    assert_int_equal(rm_init_parse_cidr("::/129", &c, &reason), -1);
    assert_string_equal(reason, "prefix length must be 0..128");
    assert_int_equal(rm_init_parse_cidr("/8", &c, &reason), -1);
    assert_int_equal(rm_init_parse_cidr("198.18.0.256/8", &c, &reason), -1);
    assert_string_equal(reason, "not an IPv4 or IPv6 address");
}

/* ---- existing state: jumps and cleanup --------------------------------------------------------------------- */

static const char saved_with_ours[] = "# Generated by iptables-save v1.8.9 (nf_tables)\n"
                                      "*nat\n"
                                      ":PREROUTING ACCEPT [0:0]\n"
                                      ":INPUT ACCEPT [0:0]\n"
                                      ":OUTPUT ACCEPT [0:0]\n"
                                      ":POSTROUTING ACCEPT [0:0]\n"
                                      ":KUBE-SERVICES - [0:0]\n"
                                      ":RINGMESH_INBOUND - [0:0]\n"
                                      ":RINGMESH_IN_REDIRECT - [0:0]\n"
                                      ":RINGMESH_OUTPUT - [0:0]\n"
                                      ":RINGMESH_REDIRECT - [0:0]\n"
                                      "-A PREROUTING -p tcp -j RINGMESH_INBOUND\n"
                                      "-A OUTPUT -p tcp -j RINGMESH_OUTPUT\n"
                                      "-A OUTPUT -j KUBE-SERVICES\n"
                                      "-A OUTPUT -p tcp -j RINGMESH_OUTPUT\n"
                                      "-A OUTPUT  -p  tcp  -j  RINGMESH_OUTPUT\n"
                                      "-A OUTPUT -p udp -j RINGMESH_OUTPUT\n"
                                      "-A KUBE-SERVICES -m comment --comment \"not -j RINGMESH_X\" -j RETURN\n"
                                      "-A RINGMESH_OUTPUT -j RINGMESH_REDIRECT\n"
                                      "-A RINGMESH_REDIRECT -p tcp -j REDIRECT --to-ports 15001\n"
                                      "COMMIT\n"
                                      "# Completed\n";

static void test_existing_jumps_kept_once(void **state)
{
    rm_init_config_t cfg;
    rm_init_arg_error_t err;
    size_t n_fresh, n;
    assert_int_equal(parse(&cfg, &err, NULL), 0);
    free(build(&cfg, AF_INET, NULL, &n_fresh));
    char *t = build(&cfg, AF_INET, saved_with_ours, &n);

    /* one copy of each jump exists: no new one; the two extra copies and the udp jump go */
    assert_no_line(t, "-A OUTPUT -p tcp -j RINGMESH_OUTPUT");
    assert_no_line(t, "-A PREROUTING -p tcp -j RINGMESH_INBOUND");
    assert_int_equal(count_prefix(t, "-D OUTPUT -p tcp -j RINGMESH_OUTPUT"), 1);
    assert_int_equal(count_prefix(t, "-D OUTPUT  -p  tcp  -j  RINGMESH_OUTPUT"), 1);
    assert_int_equal(count_prefix(t, "-D OUTPUT -p udp -j RINGMESH_OUTPUT"), 1);
    assert_int_equal(count_prefix(t, "-D "), 3);
    /* the kube chain and its rule with a quoted "-j RINGMESH_X" are not ours */
    assert_null(strstr(t, "KUBE-SERVICES"));
    /* our chains are redeclared (which empties them) and filled again */
    assert_has_line(t, ":RINGMESH_OUTPUT - [0:0]");
    assert_has_line(t, "-A RINGMESH_REDIRECT -p tcp -j REDIRECT --to-ports 15001");
    /* the count is of our rules after applying, jumps included */
    assert_int_equal(n, n_fresh);
    assert_int_equal(count_prefix(t, "-A "), n - 2);
    free(t);

    /* only the OUTPUT jump there: PREROUTING's is added */
    const char only_output[] = "*nat\n-A OUTPUT -p tcp -j RINGMESH_OUTPUT\nCOMMIT\n";
    t = build(&cfg, AF_INET, only_output, &n);
    assert_no_line(t, "-A OUTPUT -p tcp -j RINGMESH_OUTPUT");
    assert_has_line(t, "-A PREROUTING -p tcp -j RINGMESH_INBOUND");
    assert_int_equal(n, n_fresh);
    free(t);

    /* a jump in another table's section is not in nat */
    const char other_table[] = "*filter\n-A OUTPUT -p tcp -j RINGMESH_OUTPUT\nCOMMIT\n*nat\nCOMMIT\n";
    t = build(&cfg, AF_INET, other_table, NULL);
    assert_has_line(t, "-A OUTPUT -p tcp -j RINGMESH_OUTPUT");
    assert_int_equal(count_prefix(t, "-D "), 0);
    free(t);
}

static void test_count_rule(void **state)
{
    assert_int_equal(rm_iptables_count_rule(saved_with_ours, "-A OUTPUT -p tcp -j RINGMESH_OUTPUT"), 3);
    assert_int_equal(rm_iptables_count_rule(saved_with_ours, "-A PREROUTING -p tcp -j RINGMESH_INBOUND"), 1);
    assert_int_equal(rm_iptables_count_rule(saved_with_ours, "-A PREROUTING -p tcp -j RINGMESH_OUTPUT"), 0);
    assert_int_equal(rm_iptables_count_rule("", "-A OUTPUT -p tcp -j RINGMESH_OUTPUT"), 0);
}

static void test_cleanup(void **state)
{
    rm_bytebuf_t out = {0};
    size_t jumps, chains;

    assert_int_equal(rm_iptables_build_cleanup(saved_with_ours, &out, &jumps, &chains), 0);
    assert_int_equal(jumps, 5);
    assert_int_equal(chains, 4);
    assert_non_null(out.base);
    const char *t = rm_bytebuf_text(&out);
    assert_lines_in_order(t, "*nat", "-D PREROUTING -p tcp -j RINGMESH_INBOUND", "-D OUTPUT -p udp -j RINGMESH_OUTPUT",
                          "-F RINGMESH_INBOUND", "-F RINGMESH_REDIRECT", "-X RINGMESH_INBOUND",
                          "-X RINGMESH_IN_REDIRECT", "-X RINGMESH_OUTPUT", "-X RINGMESH_REDIRECT", "COMMIT", NULL);
    assert_int_equal(count_prefix(t, "-D OUTPUT -p tcp -j RINGMESH_OUTPUT"), 2);
    /* every chain is emptied before any is deleted: they jump to each other */
    assert_true(line_index(t, "-F RINGMESH_REDIRECT") < line_index(t, "-X RINGMESH_INBOUND"));
    assert_true(line_index(t, "-F RINGMESH_OUTPUT") < line_index(t, "-X RINGMESH_INBOUND"));
    assert_null(strstr(t, "KUBE-SERVICES"));
    assert_int_equal(count_prefix(t, "-A "), 0);
    rm_bytebuf_free(&out);

    /* nothing of ours: nothing to feed to iptables-restore */
    const char clean[] = "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -j KUBE-SERVICES\nCOMMIT\n";
    assert_int_equal(rm_iptables_build_cleanup(clean, &out, &jumps, &chains), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(jumps, 0);
    assert_int_equal(chains, 0);
    rm_bytebuf_free(&out);
}

/* Applying the rules to a table that already holds them leaves each of our rules there exactly once: simulate
 * iptables-restore --noflush on the save text (declared chains emptied, -D removes the first match, -A appends). */
static void test_rerun_is_idempotent_on_paper(void **state)
{
    rm_init_config_t cfg;
    rm_init_arg_error_t err;
    size_t n;
    assert_int_equal(parse(&cfg, &err, "--exclude-outbound-ports", "22", NULL), 0);

    char *first = build(&cfg, AF_INET, "*nat\nCOMMIT\n", &n);
    /* what iptables-save would print after the first run: the same -A lines (the jumps included) */
    rm_bytebuf_t saved = {0};
    assert_non_null(first);
    assert_int_equal(rm_bytebuf_appendf(&saved, "*nat\n:OUTPUT ACCEPT [0:0]\n"), 0);
    for (const char *p = first; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        if (strncmp(p, "-A ", 3) == 0)
            assert_int_equal(rm_bytebuf_appendf(&saved, "%.*s", (int)(nl - p + 1), p), 0);
        p = nl + 1;
    }
    assert_int_equal(rm_bytebuf_appendf(&saved, "COMMIT\n"), 0);

    size_t n2;
    char *second = build(&cfg, AF_INET, rm_bytebuf_text(&saved), &n2);
    assert_int_equal(n2, n);
    assert_int_equal(count_prefix(second, "-D "), 0);
    /* rules in our chains are rewritten into emptied chains; the jumps, already there, are not added again */
    assert_int_equal(count_prefix(second, "-A RINGMESH_"), count_prefix(first, "-A RINGMESH_"));
    assert_int_equal(count_prefix(second, "-A OUTPUT "), 0);
    assert_int_equal(count_prefix(second, "-A PREROUTING "), 0);
    free(first);
    free(second);
    free(saved.base);
}

/* ---- running children ------------------------------------------------------------------------------------- */

static void test_exec_pipes_and_status(void **state)
{
    char *argv[] = {"sh", "-c", "cat; echo oops >&2; exit 3", NULL};
    rm_init_exec_result_t res = {0};
    const char input[] = "*nat\nCOMMIT\n";
    assert_int_equal(rm_init_exec(argv, input, strlen(input), 5000, &res), 0);
    assert_int_equal(res.exit_status, 3);
    assert_non_null(res.out.base);
    assert_string_equal(rm_bytebuf_text(&res.out), input);
    assert_non_null(res.err.base);
    assert_string_equal(rm_bytebuf_text(&res.err), "oops\n");
    rm_init_exec_result_free(&res);
}

static void test_exec_large_input_no_deadlock(void **state)
{
    /* more than a pipe holds in both directions at once */
    size_t len = 1 << 20;
    char *input = malloc(len);
    for (size_t i = 0; i < len; i++)
        input[i] = (char)('a' + i % 26);
    char *argv[] = {"cat", NULL};
    rm_init_exec_result_t res = {0};
    assert_int_equal(rm_init_exec(argv, input, len, 10000, &res), 0);
    assert_int_equal(res.exit_status, 0);
    assert_int_equal(res.out.len, len);
    assert_memory_equal(res.out.base, input, len);
    rm_init_exec_result_free(&res);
    free(input);
}

static void test_exec_child_ignores_input(void **state)
{
    /* the child exits without reading: we must see its status, not die of SIGPIPE */
    size_t len = 1 << 20;
    char *input = calloc(1, len);
    char *argv[] = {"sh", "-c", "exec 0<&-; echo bad >&2; exit 1", NULL};
    rm_init_exec_result_t res = {0};
    assert_int_equal(rm_init_exec(argv, input, len, 10000, &res), 0);
    assert_int_equal(res.exit_status, 1);
    assert_string_equal(res.err.base, "bad\n");
    rm_init_exec_result_free(&res);
    free(input);
}

static void test_exec_not_found(void **state)
{
    char *argv[] = {"ringmesh-no-such-program-here", NULL};
    /* valgrind runs posix_spawn's clone(CLONE_VM | CLONE_VFORK) as a fork, so the exec error cannot come back to
     * the caller there; the other builds check it */
    const char *vg = getenv("RM_UNDER_VALGRIND");
    if (vg != NULL && strcmp(vg, "1") == 0)
        skip();
    rm_init_exec_result_t res = {0};
    assert_int_equal(rm_init_exec(argv, NULL, 0, 5000, &res), -ENOENT);
    rm_init_exec_result_free(&res);
}

static void test_exec_timeout_kills_child(void **state)
{
    char *argv[] = {"sleep", "30", NULL};
    rm_init_exec_result_t res = {0};
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(rm_init_exec(argv, NULL, 0, 300, &res), -ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double took = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    assert_true(took < 5.0);
    rm_init_exec_result_free(&res);
}

/* ---- the generated text is what iptables-restore accepts --------------------------------------------------- */

/* Feeds `input` to `iptables-restore --test` in a fresh network namespace of its own (nothing is committed, and
 * the machine's tables are never touched). Skips when that is not possible here. */
static void restore_test_or_skip(const char *tool, const char *input)
{
    char *probe_argv[] = {"unshare", "--net", "--", (char *)tool, "--version", NULL};
    char *argv[] = {"unshare", "--net", "--", (char *)tool, "--test", "--noflush", NULL};
    rm_init_exec_result_t res = {0};

    if (geteuid() != 0 || rm_init_exec(probe_argv, NULL, 0, 10000, &res) != 0 || res.exit_status != 0) {
        rm_init_exec_result_free(&res);
        skip();
    }
    rm_init_exec_result_free(&res);
    res = (rm_init_exec_result_t){0};
    assert_int_equal(rm_init_exec(argv, input, strlen(input), 10000, &res), 0);
    if (res.exit_status != 0)
        fail_msg("%s rejected the input (status %d): %s\n%s", tool, res.exit_status, rm_bytebuf_text(&res.err), input);
    rm_init_exec_result_free(&res);
}

static void test_restore_accepts_v4(void **state)
{
    rm_init_config_t cfg;
    rm_init_arg_error_t err;
    assert_int_equal(parse(&cfg, &err, "--exclude-outbound-ports", "22,5432", "--exclude-outbound-cidrs",
                           "198.18.5.0/24,2001:db8::/32", "--include-inbound-ports", "8080,9090",
                           "--exclude-inbound-ports", "9000", "--proxy-uid", "1000", NULL),
                     0);
    char *t = build(&cfg, AF_INET, NULL, NULL);
    restore_test_or_skip("iptables-restore", t);
    free(t);
}

static void test_restore_accepts_v6(void **state)
{
    rm_init_config_t cfg;
    rm_init_arg_error_t err;
    assert_int_equal(parse(&cfg, &err, "--exclude-outbound-cidrs", "198.18.5.0/24,2001:db8::/32",
                           "--include-outbound-cidrs", "fd00::/8,198.18.0.0/15", NULL),
                     0);
    char *t = build(&cfg, AF_INET6, NULL, NULL);
    restore_test_or_skip("ip6tables-restore", t);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_config),
        cmocka_unit_test(test_defaults_v4),
        cmocka_unit_test(test_defaults_v6),
        cmocka_unit_test(test_flag_ports),
        cmocka_unit_test(test_flag_proxy_uid_gid),
        cmocka_unit_test(test_flag_exclude_outbound_ports),
        cmocka_unit_test(test_flag_exclude_outbound_cidrs_split),
        cmocka_unit_test(test_flag_include_outbound_cidrs),
        cmocka_unit_test(test_flag_exclude_inbound_ports),
        cmocka_unit_test(test_flag_include_inbound_ports),
        cmocka_unit_test(test_flag_modes),
        cmocka_unit_test(test_usage_documents_every_flag),
        cmocka_unit_test(test_validation_errors),
        cmocka_unit_test(test_validation_list_limit),
        cmocka_unit_test(test_parse_port_and_cidr),
        cmocka_unit_test(test_existing_jumps_kept_once),
        cmocka_unit_test(test_count_rule),
        cmocka_unit_test(test_cleanup),
        cmocka_unit_test(test_rerun_is_idempotent_on_paper),
        cmocka_unit_test(test_exec_pipes_and_status),
        cmocka_unit_test(test_exec_large_input_no_deadlock),
        cmocka_unit_test(test_exec_child_ignores_input),
        cmocka_unit_test(test_exec_not_found),
        cmocka_unit_test(test_exec_timeout_kills_child),
        cmocka_unit_test(test_restore_accepts_v4),
        cmocka_unit_test(test_restore_accepts_v6),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
