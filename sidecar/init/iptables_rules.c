#include "iptables_rules.h"
#include "ringmesh/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char rm_init_usage[] =
    "Usage: ringmesh-init [options]\n"
    "\n"
    "Writes the pod's traffic-capture rules into the iptables nat table (IPv4 with iptables-restore, IPv6 with\n"
    "ip6tables-restore), atomically per family and idempotently: running it again replaces the rules in place.\n"
    "\n"
    "Outbound TCP (OUTPUT -> RINGMESH_OUTPUT) is redirected to the outbound port unless it comes from the proxy's\n"
    "UID or GID, goes to 127.0.0.1 (::1) over lo, goes to an excluded port or CIDR, or is outside the included\n"
    "CIDRs. Inbound TCP (PREROUTING -> RINGMESH_INBOUND) is redirected to the inbound port unless its destination\n"
    "port is one of the proxy's own (outbound, inbound, 15021, 15090), is excluded, or is not included.\n"
    "\n"
    "Options (each also accepted as --option=value):\n"
    "  --outbound-port PORT           port outbound TCP is redirected to (default 15001)\n"
    "  --inbound-port PORT            port inbound TCP is redirected to (default 15006)\n"
    "  --proxy-uid UID                numeric UID whose outbound traffic is not captured (default 1337)\n"
    "  --proxy-gid GID                numeric GID whose outbound traffic is not captured (default 1337)\n"
    "  --exclude-outbound-ports LIST  comma-separated destination ports never captured, e.g. 22,5432\n"
    "  --exclude-outbound-cidrs LIST  comma-separated destination CIDRs never captured, IPv4 and IPv6 mixed\n"
    "                                 (e.g. 198.18.5.0/24,2001:db8::/32; a bare address means /32 or /128)\n"
    "  --include-outbound-cidrs LIST  destination CIDRs captured: '*' for all (default), '' for none\n"
    "  --exclude-inbound-ports LIST   comma-separated destination ports of inbound traffic never captured\n"
    "  --include-inbound-ports LIST   inbound destination ports captured: '*' for all (default), '' for none\n"
    "  --ipv6 auto|on|off             IPv6 rules: auto (default) writes them when IPv6 is enabled and the\n"
    "                                 ip6tables nat table is usable; on requires them; off skips them\n"
    "  --cleanup                      remove every RINGMESH_ chain and every jump into one, then exit\n"
    "  --dry-run                      print the iptables-restore input and change nothing: the IPv4 input, then\n"
    "                                 the IPv6 input (unless --ipv6 off), each headed by a '#' comment line.\n"
    "                                 The rules are shown as for a namespace without them (no iptables command\n"
    "                                 is run); with --cleanup the current tables are read to show what would go\n"
    "  --log-level LEVEL              debug, info (default), warn or error\n"
    "  -h, --help                     print this help and exit\n"
    "\n"
    "Logs are JSON lines on stdout (on stderr with --dry-run): one 'iptables_applied' line per family with the\n"
    "number of rules, one line per error.\n"
    "Exit status: 0 on success, 1 when iptables-save or iptables-restore fails (its stderr is printed) or\n"
    "--dry-run's output cannot be written, 2 on an invalid argument.\n";

/* ---- buffers ---------------------------------------------------------------------------------------------- */

/* Output is text: every append keeps a NUL past the content (rm_bytebuf_appendf() does so itself). */
static int text_append(rm_bytebuf_t *buf, const void *s, size_t n)
{
    int ret;
    if ((ret = rm_bytebuf_append(buf, s, n)) != 0)
        return ret;
    return rm_bytebuf_terminate(buf);
}

/* ---- argument parsing ------------------------------------------------------------------------------------- */

void rm_init_config_defaults(rm_init_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->outbound_port = RM_INIT_DEFAULT_OUTBOUND_PORT;
    cfg->inbound_port = RM_INIT_DEFAULT_INBOUND_PORT;
    cfg->proxy_uid = RM_INIT_DEFAULT_PROXY_UID;
    cfg->proxy_gid = RM_INIT_DEFAULT_PROXY_GID;
    cfg->include_outbound_cidrs.all = 1;
    cfg->include_inbound_ports.all = 1;
    cfg->ipv6 = RM_INIT_IPV6_AUTO;
    strcpy(cfg->log_level, "info");
}

/* Parses a decimal number of at most `max`, digits only (no sign, no spaces). */
static int parse_decimal(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max)
            return -1;
    }
    *out = v;
    return 0;
}

int rm_init_parse_port(const char *s, uint16_t *out)
{
    uint64_t v;
    if (parse_decimal(s, 65535, &v) != 0 || v == 0)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

int rm_init_parse_cidr(const char *s, rm_init_cidr_t *out, const char **reason)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t addr_len = slash != NULL ? (size_t)(slash - s) : strlen(s);
    unsigned max_prefix;
    uint64_t prefix;

    memset(out, 0, sizeof(*out));
    if (addr_len == 0 || addr_len >= sizeof(addr)) {
        *reason = "not an IPv4 or IPv6 address";
        return -1;
    }
    memcpy(addr, s, addr_len);
    addr[addr_len] = '\0';
    if (inet_pton(AF_INET, addr, out->addr) == 1) {
        out->family = AF_INET;
        max_prefix = 32;
    } else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
        out->family = AF_INET6;
        max_prefix = 128;
    } else {
        *reason = "not an IPv4 or IPv6 address";
        return -1;
    }
    if (slash == NULL) {
        prefix = max_prefix;
    } else if (parse_decimal(slash + 1, max_prefix, &prefix) != 0) {
        *reason = out->family == AF_INET ? "prefix length must be 0..32" : "prefix length must be 0..128";
        return -1;
    }
    out->prefix_len = (uint8_t)prefix;
    /* iptables stores the network, not the address as typed; do the same so output matches iptables-save */
    for (unsigned bit = (unsigned)prefix; bit < max_prefix; bit++)
        out->addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    return 0;
}

const char *rm_init_cidr_format(const rm_init_cidr_t *cidr, char *dst, size_t dst_size)
{
    char addr[INET6_ADDRSTRLEN];
    if (inet_ntop(cidr->family, cidr->addr, addr, sizeof(addr)) == NULL)
        strcpy(addr, "?");
    snprintf(dst, dst_size, "%s/%u", addr, (unsigned)cidr->prefix_len);
    return dst;
}

static int arg_error(rm_init_arg_error_t *err, const char *flag, const char *value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int arg_error(rm_init_arg_error_t *err, const char *flag, const char *value, const char *fmt, ...)
{
    va_list ap;
    snprintf(err->flag, sizeof(err->flag), "%s", flag);
    snprintf(err->value, sizeof(err->value), "%s", value != NULL ? value : "");
    va_start(ap, fmt);
    vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
    va_end(ap);
    return RM_ERR_CONFIG_VALUE;
}

/* Calls `item` for every comma-separated entry of `value`, spaces around entries trimmed. An empty value is an
 * empty list; an empty entry inside a list is an error. */
static int for_each_item(const char *flag, const char *value, rm_init_arg_error_t *err,
                         int (*item)(const char *flag, const char *entry, void *ctx, rm_init_arg_error_t *err),
                         void *ctx)
{
    char entry[256];
    const char *p = value;
    int ret = 0;

    while (*p == ' ')
        p++;
    if (*p == '\0')
        goto Exit;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        while (n > 0 && p[0] == ' ')
            p++, n--;
        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (n == 0) {
            ret = arg_error(err, flag, value, "empty entry in the list");
            goto Exit;
        }
        if (n >= sizeof(entry)) {
            ret = arg_error(err, flag, value, "list entry too long");
            goto Exit;
        }
        memcpy(entry, p, n);
        entry[n] = '\0';
        if ((ret = item(flag, entry, ctx, err)) != 0)
            goto Exit;
        if (end == NULL)
            break;
        p = end + 1;
    }

Exit:
    return ret;
}

static int add_port_item(const char *flag, const char *entry, void *ctx, rm_init_arg_error_t *err)
{
    rm_init_port_list_t *list = ctx;
    uint16_t port;

    if (rm_init_parse_port(entry, &port) != 0)
        return arg_error(err, flag, entry, "port must be a number in 1..65535");
    for (size_t i = 0; i < list->count; i++)
        if (list->ports[i] == port)
            return 0;
    if (list->count == RM_INIT_MAX_LIST)
        return arg_error(err, flag, entry, "more than %d ports", RM_INIT_MAX_LIST);
    list->ports[list->count++] = port;
    return 0;
}

/* Field by field: the struct's padding is not part of its value (struct assignment need not copy it). */
static int same_cidr(const rm_init_cidr_t *a, const rm_init_cidr_t *b)
{
    return a->family == b->family && a->prefix_len == b->prefix_len && memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

static int add_cidr_item(const char *flag, const char *entry, void *ctx, rm_init_arg_error_t *err)
{
    rm_init_cidr_list_t *list = ctx;
    rm_init_cidr_t cidr;
    const char *reason;

    if (rm_init_parse_cidr(entry, &cidr, &reason) != 0)
        return arg_error(err, flag, entry, "%s", reason);
    for (size_t i = 0; i < list->count; i++)
        if (same_cidr(&list->cidrs[i], &cidr))
            return 0;
    if (list->count == RM_INIT_MAX_LIST)
        return arg_error(err, flag, entry, "more than %d CIDRs", RM_INIT_MAX_LIST);
    list->cidrs[list->count++] = cidr;
    return 0;
}

static int parse_port_list(const char *flag, const char *value, int allow_all, rm_init_port_list_t *list,
                           rm_init_arg_error_t *err)
{
    memset(list, 0, sizeof(*list));
    if (strcmp(value, "*") == 0) {
        if (!allow_all)
            return arg_error(err, flag, value, "'*' is not allowed here; list the ports");
        list->all = 1;
        return 0;
    }
    return for_each_item(flag, value, err, add_port_item, list);
}

static int parse_cidr_list(const char *flag, const char *value, int allow_all, rm_init_cidr_list_t *list,
                           rm_init_arg_error_t *err)
{
    memset(list, 0, sizeof(*list));
    if (strcmp(value, "*") == 0) {
        if (!allow_all)
            return arg_error(err, flag, value, "'*' is not allowed here; list the CIDRs");
        list->all = 1;
        return 0;
    }
    return for_each_item(flag, value, err, add_cidr_item, list);
}

static int parse_id(const char *flag, const char *value, uint32_t *out, rm_init_arg_error_t *err)
{
    uint64_t v;
    /* (uint32_t)-1 means "no ID" to the kernel, so it cannot name the proxy's user or group */
    if (parse_decimal(value, UINT32_MAX - 1, &v) != 0)
        return arg_error(err, flag, value, "must be a numeric ID in 0..%" PRIu32, UINT32_MAX - 1);
    *out = (uint32_t)v;
    return 0;
}

static int parse_single_port(const char *flag, const char *value, uint16_t *out, rm_init_arg_error_t *err)
{
    if (rm_init_parse_port(value, out) != 0)
        return arg_error(err, flag, value, "port must be a number in 1..65535");
    return 0;
}

enum {
    OPT_OUTBOUND_PORT,
    OPT_INBOUND_PORT,
    OPT_PROXY_UID,
    OPT_PROXY_GID,
    OPT_EXCLUDE_OUTBOUND_PORTS,
    OPT_EXCLUDE_OUTBOUND_CIDRS,
    OPT_INCLUDE_OUTBOUND_CIDRS,
    OPT_EXCLUDE_INBOUND_PORTS,
    OPT_INCLUDE_INBOUND_PORTS,
    OPT_IPV6,
    OPT_LOG_LEVEL,
    OPT_DRY_RUN,
    OPT_CLEANUP,
    OPT_HELP,
};

static const struct {
    const char *name;
    int id;
    int takes_value;
} options[] = {
    {"--outbound-port", OPT_OUTBOUND_PORT, 1},
    {"--inbound-port", OPT_INBOUND_PORT, 1},
    {"--proxy-uid", OPT_PROXY_UID, 1},
    {"--proxy-gid", OPT_PROXY_GID, 1},
    {"--exclude-outbound-ports", OPT_EXCLUDE_OUTBOUND_PORTS, 1},
    {"--exclude-outbound-cidrs", OPT_EXCLUDE_OUTBOUND_CIDRS, 1},
    {"--include-outbound-cidrs", OPT_INCLUDE_OUTBOUND_CIDRS, 1},
    {"--exclude-inbound-ports", OPT_EXCLUDE_INBOUND_PORTS, 1},
    {"--include-inbound-ports", OPT_INCLUDE_INBOUND_PORTS, 1},
    {"--ipv6", OPT_IPV6, 1},
    {"--log-level", OPT_LOG_LEVEL, 1},
    {"--dry-run", OPT_DRY_RUN, 0},
    {"--cleanup", OPT_CLEANUP, 0},
    {"--help", OPT_HELP, 0},
    {"-h", OPT_HELP, 0},
};

static int apply_option(rm_init_config_t *cfg, int id, const char *flag, const char *value, rm_init_arg_error_t *err)
{
    switch (id) {
    case OPT_OUTBOUND_PORT:
        return parse_single_port(flag, value, &cfg->outbound_port, err);
    case OPT_INBOUND_PORT:
        return parse_single_port(flag, value, &cfg->inbound_port, err);
    case OPT_PROXY_UID:
        return parse_id(flag, value, &cfg->proxy_uid, err);
    case OPT_PROXY_GID:
        return parse_id(flag, value, &cfg->proxy_gid, err);
    case OPT_EXCLUDE_OUTBOUND_PORTS:
        return parse_port_list(flag, value, 0, &cfg->exclude_outbound_ports, err);
    case OPT_EXCLUDE_OUTBOUND_CIDRS:
        return parse_cidr_list(flag, value, 0, &cfg->exclude_outbound_cidrs, err);
    case OPT_INCLUDE_OUTBOUND_CIDRS:
        return parse_cidr_list(flag, value, 1, &cfg->include_outbound_cidrs, err);
    case OPT_EXCLUDE_INBOUND_PORTS:
        return parse_port_list(flag, value, 0, &cfg->exclude_inbound_ports, err);
    case OPT_INCLUDE_INBOUND_PORTS:
        return parse_port_list(flag, value, 1, &cfg->include_inbound_ports, err);
    case OPT_IPV6:
        if (strcmp(value, "auto") == 0)
            cfg->ipv6 = RM_INIT_IPV6_AUTO;
        else if (strcmp(value, "on") == 0)
            cfg->ipv6 = RM_INIT_IPV6_ON;
        else if (strcmp(value, "off") == 0)
            cfg->ipv6 = RM_INIT_IPV6_OFF;
        else
            return arg_error(err, flag, value, "must be auto, on or off");
        return 0;
    case OPT_LOG_LEVEL:
        if (strcmp(value, "debug") != 0 && strcmp(value, "info") != 0 && strcmp(value, "warn") != 0 &&
            strcmp(value, "error") != 0)
            return arg_error(err, flag, value, "must be debug, info, warn or error");
        snprintf(cfg->log_level, sizeof(cfg->log_level), "%s", value);
        return 0;
    case OPT_DRY_RUN:
        cfg->dry_run = 1;
        return 0;
    case OPT_CLEANUP:
        cfg->cleanup = 1;
        return 0;
    case OPT_HELP:
        cfg->help = 1;
        return 0;
    }
    return arg_error(err, flag, value, "unknown option");
}

int rm_init_parse_args(int argc, char *const *argv, rm_init_config_t *cfg, rm_init_arg_error_t *err)
{
    int ret = 0;

    rm_init_config_defaults(cfg);
    memset(err, 0, sizeof(*err));

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *eq = strchr(arg, '='), *value = NULL;
        size_t name_len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        char flag[64];
        size_t o;

        snprintf(flag, sizeof(flag), "%.*s", (int)name_len, arg);
        for (o = 0; o < sizeof(options) / sizeof(options[0]); o++)
            if (strlen(options[o].name) == name_len && memcmp(options[o].name, arg, name_len) == 0)
                break;
        if (o == sizeof(options) / sizeof(options[0])) {
            ret = arg_error(err, flag, eq != NULL ? eq + 1 : NULL,
                            arg[0] == '-' ? "unknown option (see --help)" : "unexpected argument (see --help)");
            goto Exit;
        }
        if (options[o].takes_value) {
            if (eq != NULL) {
                value = eq + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                ret = arg_error(err, flag, NULL, "requires a value");
                goto Exit;
            }
        } else if (eq != NULL) {
            ret = arg_error(err, flag, eq + 1, "takes no value");
            goto Exit;
        }
        /* a flag that takes no value gets "": apply_option() never reads it, and no string function sees NULL */
        if ((ret = apply_option(cfg, options[o].id, flag, value != NULL ? value : "", err)) != 0)
            goto Exit;
    }

    if (cfg->outbound_port == cfg->inbound_port) {
        char v[8];
        snprintf(v, sizeof(v), "%u", (unsigned)cfg->inbound_port);
        ret = arg_error(err, "--inbound-port", v, "must differ from --outbound-port");
        goto Exit;
    }

Exit:
    return ret;
}

/* ---- reading iptables-save text --------------------------------------------------------------------------- */

/* A whitespace-separated word of an iptables-save line; a double-quoted word (comments) may hold spaces and \". */
static const char *next_word(const char *p, const char *end, size_t *len)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p == end)
        return NULL;
    const char *start = p;
    if (*p == '"') {
        for (p++; p < end && *p != '"'; p++)
            if (*p == '\\' && p + 1 < end)
                p++;
        if (p < end)
            p++;
    } else {
        while (p < end && *p != ' ' && *p != '\t')
            p++;
    }
    *len = (size_t)(p - start);
    return start;
}

static int word_is(const char *w, size_t len, const char *s)
{
    return strlen(s) == len && memcmp(w, s, len) == 0;
}

static int word_has_prefix(const char *w, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(w, prefix, n) == 0;
}

/* Compares two rules word by word, so that spacing differences do not matter. */
static int rule_equals(const char *a, const char *a_end, const char *b, const char *b_end)
{
    for (;;) {
        size_t al, bl;
        const char *aw = next_word(a, a_end, &al), *bw = next_word(b, b_end, &bl);
        if (aw == NULL || bw == NULL)
            return aw == bw;
        if (al != bl || memcmp(aw, bw, al) != 0)
            return 0;
        a = aw + al;
        b = bw + bl;
    }
}

typedef struct st_nat_line_t {
    const char *base;
    const char *end;
} nat_line_t;

/* Walks the lines of the `*nat` section (up to its COMMIT) of an iptables-save text. Returns 1 with the next line
 * in `line`, or 0 at the end. `*cursor` starts at the text; `*in_nat` at 0. */
static int next_nat_line(const char **cursor, int *in_nat, nat_line_t *line)
{
    const char *p = *cursor;
    while (p != NULL && *p != '\0') {
        const char *nl = strchr(p, '\n');
        const char *end = nl != NULL ? nl : p + strlen(p);
        const char *next = nl != NULL ? nl + 1 : end;
        const char *e = end;
        while (e > p && (e[-1] == '\r' || e[-1] == ' '))
            e--;
        *cursor = next;
        // cppcheck-suppress knownConditionTrueFalse ; e - p is the length of the line, which any text can make 4
        if (e - p == 4 && memcmp(p, "*nat", 4) == 0) {
            *in_nat = 1;
        } else if (*in_nat && e - p == 6 && memcmp(p, "COMMIT", 6) == 0) {
            *in_nat = 0;
        } else if (*in_nat) {
            line->base = p;
            line->end = e;
            return 1;
        }
        p = next;
    }
    *cursor = p;
    return 0;
}

/* Returns 1 when `line` is "-A <chain not ours> ... -j|-g RINGMESH_...": a jump from elsewhere into our chains. */
static int is_jump_into_ours(const nat_line_t *line)
{
    const char *p = line->base;
    size_t len;
    const char *w = next_word(p, line->end, &len);

    if (w == NULL || !word_is(w, len, "-A"))
        return 0;
    if ((w = next_word(w + len, line->end, &len)) == NULL || word_has_prefix(w, len, RM_INIT_CHAIN_PREFIX))
        return 0;
    while ((w = next_word(w + len, line->end, &len)) != NULL) {
        if (word_is(w, len, "-j") || word_is(w, len, "-g") || word_is(w, len, "--jump") || word_is(w, len, "--goto")) {
            if ((w = next_word(w + len, line->end, &len)) == NULL)
                return 0;
            return word_has_prefix(w, len, RM_INIT_CHAIN_PREFIX);
        }
    }
    return 0;
}

size_t rm_iptables_count_rule(const char *existing, const char *rule)
{
    const char *cursor = existing;
    int in_nat = 0;
    nat_line_t line;
    size_t n = 0;

    while (next_nat_line(&cursor, &in_nat, &line))
        if (rule_equals(line.base, line.end, rule, rule + strlen(rule)))
            n++;
    return n;
}

/* Appends "-D <rest of an -A line>": the same rule, to be deleted. */
static int append_delete_of(rm_bytebuf_t *out, const nat_line_t *line)
{
    const char *p = line->base;
    while (p < line->end && *p == ' ')
        p++;
    p += 2; /* "-A", checked by is_jump_into_ours() */
    return rm_bytebuf_appendf(out, "-D%.*s\n", (int)(line->end - p), p);
}

/* ---- building the rules ----------------------------------------------------------------------------------- */

#define JUMP_OUTPUT  "-A OUTPUT -p tcp -j " RM_INIT_CHAIN_OUTPUT
#define JUMP_INBOUND "-A PREROUTING -p tcp -j " RM_INIT_CHAIN_INBOUND

static const char *const our_chains[] = {RM_INIT_CHAIN_INBOUND, RM_INIT_CHAIN_IN_REDIRECT, RM_INIT_CHAIN_OUTPUT,
                                         RM_INIT_CHAIN_REDIRECT};

/* Every rule goes through here so the count the log reports is the count written. */
__attribute__((format(printf, 3, 4))) static int add_rule(rm_bytebuf_t *out, size_t *num_rules, const char *fmt, ...)
{
    va_list ap;
    char line[512];
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line))
        return -EINVAL;
    ++*num_rules;
    return rm_bytebuf_appendf(out, "%s\n", line);
}

static int build_outbound(const rm_init_config_t *cfg, int family, rm_bytebuf_t *out, size_t *num_rules)
{
    const char *chain = RM_INIT_CHAIN_OUTPUT;
    char cidr[64];
    int ret;

    /* the proxy's own connections must leave the pod as they are, or they would loop back into it */
    if ((ret = add_rule(out, num_rules, "-A %s -m owner --uid-owner %" PRIu32 " -j RETURN", chain, cfg->proxy_uid)) !=
        0)
        goto Exit;
    if ((ret = add_rule(out, num_rules, "-A %s -m owner --gid-owner %" PRIu32 " -j RETURN", chain, cfg->proxy_gid)) !=
        0)
        goto Exit;
    if ((ret = add_rule(out, num_rules, "-A %s -d %s -o lo -j RETURN", chain,
                        family == AF_INET ? "127.0.0.1/32" : "::1/128")) != 0)
        goto Exit;
    for (size_t i = 0; i < cfg->exclude_outbound_ports.count; i++)
        if ((ret = add_rule(out, num_rules, "-A %s -p tcp -m tcp --dport %u -j RETURN", chain,
                            (unsigned)cfg->exclude_outbound_ports.ports[i])) != 0)
            goto Exit;
    for (size_t i = 0; i < cfg->exclude_outbound_cidrs.count; i++) {
        const rm_init_cidr_t *c = &cfg->exclude_outbound_cidrs.cidrs[i];
        if (c->family != family)
            continue;
        if ((ret = add_rule(out, num_rules, "-A %s -d %s -j RETURN", chain,
                            rm_init_cidr_format(c, cidr, sizeof(cidr)))) != 0)
            goto Exit;
    }
    if (cfg->include_outbound_cidrs.all) {
        ret = add_rule(out, num_rules, "-A %s -j %s", chain, RM_INIT_CHAIN_REDIRECT);
        goto Exit;
    }
    /* an include list without entries of this family captures nothing of this family */
    for (size_t i = 0; i < cfg->include_outbound_cidrs.count; i++) {
        const rm_init_cidr_t *c = &cfg->include_outbound_cidrs.cidrs[i];
        if (c->family != family)
            continue;
        if ((ret = add_rule(out, num_rules, "-A %s -d %s -j %s", chain, rm_init_cidr_format(c, cidr, sizeof(cidr)),
                            RM_INIT_CHAIN_REDIRECT)) != 0)
            goto Exit;
    }

Exit:
    return ret;
}

static int build_inbound(const rm_init_config_t *cfg, rm_bytebuf_t *out, size_t *num_rules)
{
    const char *chain = RM_INIT_CHAIN_INBOUND;
    uint16_t excluded[4 + RM_INIT_MAX_LIST];
    size_t num_excluded = 0;
    int ret = 0;

    /* the proxy's own listeners are reachable as they are; then whatever the user excluded */
    excluded[num_excluded++] = cfg->outbound_port;
    excluded[num_excluded++] = cfg->inbound_port;
    excluded[num_excluded++] = RM_INIT_ADMIN_PORT;
    excluded[num_excluded++] = RM_INIT_METRICS_PORT;
    for (size_t i = 0; i < cfg->exclude_inbound_ports.count; i++)
        excluded[num_excluded++] = cfg->exclude_inbound_ports.ports[i];
    for (size_t i = 0; i < num_excluded; i++) {
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            seen |= excluded[j] == excluded[i];
        if (!seen && (ret = add_rule(out, num_rules, "-A %s -p tcp -m tcp --dport %u -j RETURN", chain,
                                     (unsigned)excluded[i])) != 0)
            goto Exit;
    }

    if (cfg->include_inbound_ports.all) {
        ret = add_rule(out, num_rules, "-A %s -p tcp -j %s", chain, RM_INIT_CHAIN_IN_REDIRECT);
        goto Exit;
    }
    for (size_t i = 0; i < cfg->include_inbound_ports.count; i++)
        if ((ret = add_rule(out, num_rules, "-A %s -p tcp -m tcp --dport %u -j %s", chain,
                            (unsigned)cfg->include_inbound_ports.ports[i], RM_INIT_CHAIN_IN_REDIRECT)) != 0)
            goto Exit;

Exit:
    return ret;
}

int rm_iptables_build_rules(const rm_init_config_t *cfg, int family, const char *existing, rm_bytebuf_t *out,
                            size_t *num_rules)
{
    int keep_output = 0, keep_inbound = 0, ret;
    size_t n = 0;

    if ((ret = rm_bytebuf_appendf(out, "*nat\n")) != 0)
        goto Exit;
    /* under --noflush, declaring a user chain creates it or empties it: this is what makes a rerun replace */
    for (size_t i = 0; i < sizeof(our_chains) / sizeof(our_chains[0]); i++)
        if ((ret = rm_bytebuf_appendf(out, ":%s - [0:0]\n", our_chains[i])) != 0)
            goto Exit;

    /* keep one copy of each jump that is already there; delete extra copies and jumps of any other shape */
    if (existing != NULL) {
        const char *cursor = existing;
        int in_nat = 0;
        nat_line_t line;
        while (next_nat_line(&cursor, &in_nat, &line)) {
            if (!is_jump_into_ours(&line))
                continue;
            if (!keep_output && rule_equals(line.base, line.end, JUMP_OUTPUT, JUMP_OUTPUT + strlen(JUMP_OUTPUT))) {
                keep_output = 1;
            } else if (!keep_inbound &&
                       rule_equals(line.base, line.end, JUMP_INBOUND, JUMP_INBOUND + strlen(JUMP_INBOUND))) {
                keep_inbound = 1;
            } else if ((ret = append_delete_of(out, &line)) != 0) {
                goto Exit;
            }
        }
    }

    if ((ret = build_inbound(cfg, out, &n)) != 0)
        goto Exit;
    if ((ret = add_rule(out, &n, "-A %s -p tcp -j REDIRECT --to-ports %u", RM_INIT_CHAIN_IN_REDIRECT,
                        (unsigned)cfg->inbound_port)) != 0)
        goto Exit;
    if ((ret = build_outbound(cfg, family, out, &n)) != 0)
        goto Exit;
    if ((ret = add_rule(out, &n, "-A %s -p tcp -j REDIRECT --to-ports %u", RM_INIT_CHAIN_REDIRECT,
                        (unsigned)cfg->outbound_port)) != 0)
        goto Exit;

    if (keep_inbound)
        n++;
    else if ((ret = add_rule(out, &n, "%s", JUMP_INBOUND)) != 0)
        goto Exit;
    if (keep_output)
        n++;
    else if ((ret = add_rule(out, &n, "%s", JUMP_OUTPUT)) != 0)
        goto Exit;
    ret = rm_bytebuf_appendf(out, "COMMIT\n");

Exit:
    *num_rules = n;
    return ret;
}

int rm_iptables_build_cleanup(const char *existing, rm_bytebuf_t *out, size_t *num_jumps, size_t *num_chains)
{
    rm_bytebuf_t jumps = {0}, flushes = {0}, deletes = {0};
    const char *cursor = existing;
    int in_nat = 0, ret = 0;
    nat_line_t line;

    *num_jumps = 0;
    *num_chains = 0;
    while (next_nat_line(&cursor, &in_nat, &line)) {
        size_t len;
        const char *w = next_word(line.base, line.end, &len);
        if (w != NULL && w[0] == ':' && word_has_prefix(w + 1, len - 1, RM_INIT_CHAIN_PREFIX)) {
            /* ":RINGMESH_X - [0:0]": a chain of ours; empty them all before deleting any, as they refer to each
             * other */
            if ((ret = rm_bytebuf_appendf(&flushes, "-F %.*s\n", (int)len - 1, w + 1)) != 0 ||
                (ret = rm_bytebuf_appendf(&deletes, "-X %.*s\n", (int)len - 1, w + 1)) != 0)
                goto Exit;
            ++*num_chains;
        } else if (is_jump_into_ours(&line)) {
            if ((ret = append_delete_of(&jumps, &line)) != 0)
                goto Exit;
            ++*num_jumps;
        }
    }
    if (*num_jumps == 0 && *num_chains == 0)
        goto Exit;
    if ((ret = rm_bytebuf_appendf(out, "*nat\n")) != 0 || (ret = text_append(out, jumps.base, jumps.len)) != 0 ||
        (ret = text_append(out, flushes.base, flushes.len)) != 0 ||
        (ret = text_append(out, deletes.base, deletes.len)) != 0 || (ret = rm_bytebuf_appendf(out, "COMMIT\n")) != 0)
        goto Exit;

Exit:
    rm_bytebuf_free(&jumps);
    rm_bytebuf_free(&flushes);
    rm_bytebuf_free(&deletes);
    return ret;
}

/* ---- running iptables-save / iptables-restore ------------------------------------------------------------- */

void rm_init_exec_result_free(rm_init_exec_result_t *res)
{
    rm_bytebuf_free(&res->out);
    rm_bytebuf_free(&res->err);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads what is available on `fd` into `buf`. Returns 1 while open, 0 at end of file, or a negative errno. */
static int drain_fd(int fd, rm_bytebuf_t *buf)
{
    char chunk[4096];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n > 0) {
            int ret;
            if ((ret = text_append(buf, chunk, (size_t)n)) != 0)
                return ret;
            continue;
        }
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            return 1;
        return -errno;
    }
}

int rm_init_exec(char *const *argv, const char *input, size_t input_len, int timeout_ms, rm_init_exec_result_t *res)
{
    int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    posix_spawn_file_actions_t actions;
    int actions_ready = 0, ret;
    pid_t pid = -1;
    struct sigaction ignore = {.sa_handler = SIG_IGN}, old_sigpipe;
    size_t written = 0;
    int64_t deadline = now_ms() + timeout_ms;

    /* a child that exits without reading its input must not kill us with SIGPIPE */
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGPIPE, &ignore, &old_sigpipe);

    if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
        ret = -errno;
        goto Exit;
    }
    if ((ret = posix_spawn_file_actions_init(&actions)) != 0) {
        ret = -ret;
        goto Exit;
    }
    actions_ready = 1;
    if ((ret = posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0)) != 0 ||
        (ret = posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1)) != 0 ||
        (ret = posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2)) != 0) {
        ret = -ret;
        goto Exit;
    }
    if ((ret = posix_spawnp(&pid, argv[0], &actions, NULL, argv, environ)) != 0) {
        pid = -1;
        ret = -ret;
        goto Exit;
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    in_pipe[0] = out_pipe[1] = err_pipe[1] = -1;
    fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
    fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
    fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);
    if (input == NULL || input_len == 0) {
        close(in_pipe[1]);
        in_pipe[1] = -1;
    }

    /* feed stdin and collect stdout/stderr together: a child blocked writing output would never finish reading */
    while (out_pipe[0] >= 0 || err_pipe[0] >= 0) {
        struct pollfd pfd[3] = {{.fd = in_pipe[1], .events = POLLOUT},
                                {.fd = out_pipe[0], .events = POLLIN},
                                {.fd = err_pipe[0], .events = POLLIN}};
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            ret = -ETIMEDOUT;
            goto Exit;
        }
        if (poll(pfd, 3, (int)left) < 0) {
            if (errno == EINTR)
                continue;
            ret = -errno;
            goto Exit;
        }
        if (pfd[0].revents != 0) {
            ssize_t n = write(in_pipe[1], input + written, input_len - written);
            if (n > 0)
                written += (size_t)n;
            if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == input_len) {
                /* EPIPE: the child stopped reading; its exit status and stderr will say why */
                close(in_pipe[1]);
                in_pipe[1] = -1;
            }
        }
        for (int i = 1; i < 3; i++) {
            int *fd = i == 1 ? &out_pipe[0] : &err_pipe[0];
            if (pfd[i].revents == 0)
                continue;
            if ((ret = drain_fd(*fd, i == 1 ? &res->out : &res->err)) < 0)
                goto Exit;
            if (ret == 0) {
                close(*fd);
                *fd = -1;
            }
        }
    }

    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            pid = -1;
            res->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            break;
        }
        if (r < 0 && errno != EINTR) {
            ret = -errno;
            goto Exit;
        }
        if (now_ms() >= deadline) {
            ret = -ETIMEDOUT;
            goto Exit;
        }
        struct timespec pause = {.tv_nsec = 5 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    ret = 0;

Exit:
    if (pid > 0) {
        /* only on failure: the child is still running and gets stopped by its PID */
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    for (int i = 0; i < 2; i++) {
        if (in_pipe[i] >= 0)
            close(in_pipe[i]);
        if (out_pipe[i] >= 0)
            close(out_pipe[i]);
        if (err_pipe[i] >= 0)
            close(err_pipe[i]);
    }
    if (actions_ready)
        posix_spawn_file_actions_destroy(&actions);
    sigaction(SIGPIPE, &old_sigpipe, NULL);
    return ret;
}
