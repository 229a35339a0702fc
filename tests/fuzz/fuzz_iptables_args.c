/* rm_init_parse_args(): ringmesh-init's command line. The input is split on NUL bytes into argv[1..] (argv[0] is
 * the program name), each argument in its own exactly sized allocation.
 *
 * On failure: RM_ERR_CONFIG_VALUE with the flag, value and reason NUL-terminated inside their arrays and a
 * non-empty reason. On success, what the usage text promises of the parsed configuration: ports 1..65535 and the
 * two redirect ports different, lists without duplicates and within RM_INIT_MAX_LIST, '*' only where allowed,
 * CIDRs of a known family with a valid prefix and host bits cleared, that print and parse back to themselves;
 * and the rules built from it for both families are a complete iptables-restore input holding each jump once. */
/* rm-fuzz-link: ringmesh_init_core */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "iptables_rules.h"
#include "ringmesh/error.h"

#define MAX_ARGS 128

#define JUMP_OUTPUT  "-A OUTPUT -p tcp -j " RM_INIT_CHAIN_OUTPUT
#define JUMP_INBOUND "-A PREROUTING -p tcp -j " RM_INIT_CHAIN_INBOUND

static int terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

static void check_ports(const rm_init_port_list_t *list, int allow_all)
{
    RM_FUZZ_CHECK(list->all == 0 || (allow_all && list->all == 1 && list->count == 0));
    RM_FUZZ_CHECK(list->count <= RM_INIT_MAX_LIST);
    for (size_t i = 0; i != list->count; ++i) {
        RM_FUZZ_CHECK(list->ports[i] != 0);
        for (size_t j = 0; j != i; ++j)
            RM_FUZZ_CHECK(list->ports[i] != list->ports[j]);
    }
}

static void check_cidr(const rm_init_cidr_t *c)
{
    unsigned max = c->family == AF_INET ? 32 : 128;
    char text[64];
    rm_init_cidr_t back;
    const char *reason = NULL;

    RM_FUZZ_CHECK(c->family == AF_INET || c->family == AF_INET6);
    RM_FUZZ_CHECK(c->prefix_len <= max);
    for (unsigned bit = c->prefix_len; bit < max; ++bit)
        RM_FUZZ_CHECK((c->addr[bit / 8] & (0x80u >> (bit % 8))) == 0);
    for (unsigned byte = max / 8; byte != sizeof(c->addr); ++byte)
        RM_FUZZ_CHECK(c->addr[byte] == 0);

    rm_init_cidr_format(c, text, sizeof(text));
    RM_FUZZ_CHECK(rm_init_parse_cidr(text, &back, &reason) == 0);
    RM_FUZZ_CHECK(back.family == c->family && back.prefix_len == c->prefix_len &&
                  memcmp(back.addr, c->addr, sizeof(c->addr)) == 0);
}

static void check_cidrs(const rm_init_cidr_list_t *list, int allow_all)
{
    RM_FUZZ_CHECK(list->all == 0 || (allow_all && list->all == 1 && list->count == 0));
    RM_FUZZ_CHECK(list->count <= RM_INIT_MAX_LIST);
    for (size_t i = 0; i != list->count; ++i) {
        check_cidr(&list->cidrs[i]);
        for (size_t j = 0; j != i; ++j)
            RM_FUZZ_CHECK(!(list->cidrs[i].family == list->cidrs[j].family &&
                            list->cidrs[i].prefix_len == list->cidrs[j].prefix_len &&
                            memcmp(list->cidrs[i].addr, list->cidrs[j].addr, sizeof(list->cidrs[i].addr)) == 0));
    }
}

static int ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);

    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

static void check_rules(const rm_init_config_t *cfg, int family)
{
    rm_bytebuf_t out = {0};
    const char *text;
    size_t num_rules = 0, lines = 0;

    RM_FUZZ_CHECK(rm_iptables_build_rules(cfg, family, NULL, &out, &num_rules) == 0);
    RM_FUZZ_CHECK(out.base != NULL && out.base[out.len] == '\0');
    text = rm_bytebuf_text(&out);
    RM_FUZZ_CHECK(strlen(text) == out.len);
    RM_FUZZ_CHECK(strncmp(text, "*nat\n", 5) == 0 && ends_with(text, out.len, "\nCOMMIT\n"));
    RM_FUZZ_CHECK(rm_iptables_count_rule(text, JUMP_OUTPUT) == 1);
    RM_FUZZ_CHECK(rm_iptables_count_rule(text, JUMP_INBOUND) == 1);
    /* every rule counted is one "-A" line of the input */
    for (const char *p = text; (p = strstr(p, "\n-A ")) != NULL; ++p)
        ++lines;
    RM_FUZZ_CHECK(lines == num_rules && num_rules >= 6);
    rm_bytebuf_free(&out);
}

static void check_config(const rm_init_config_t *cfg)
{
    RM_FUZZ_CHECK(cfg->outbound_port != 0 && cfg->inbound_port != 0 && cfg->outbound_port != cfg->inbound_port);
    RM_FUZZ_CHECK(cfg->proxy_uid != UINT32_MAX && cfg->proxy_gid != UINT32_MAX);
    check_ports(&cfg->exclude_outbound_ports, 0);
    check_ports(&cfg->exclude_inbound_ports, 0);
    check_ports(&cfg->include_inbound_ports, 1);
    check_cidrs(&cfg->exclude_outbound_cidrs, 0);
    check_cidrs(&cfg->include_outbound_cidrs, 1);
    RM_FUZZ_CHECK(cfg->ipv6 == RM_INIT_IPV6_AUTO || cfg->ipv6 == RM_INIT_IPV6_ON || cfg->ipv6 == RM_INIT_IPV6_OFF);
    RM_FUZZ_CHECK(cfg->dry_run == 0 || cfg->dry_run == 1);
    RM_FUZZ_CHECK(cfg->cleanup == 0 || cfg->cleanup == 1);
    RM_FUZZ_CHECK(cfg->help == 0 || cfg->help == 1);
    RM_FUZZ_CHECK(strcmp(cfg->log_level, "debug") == 0 || strcmp(cfg->log_level, "info") == 0 ||
                  strcmp(cfg->log_level, "warn") == 0 || strcmp(cfg->log_level, "error") == 0);
    check_rules(cfg, AF_INET);
    check_rules(cfg, AF_INET6);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *argv[MAX_ARGS + 1];
    int argc = 0, ret;
    size_t start = 0;
    rm_init_config_t *cfg = malloc(sizeof(*cfg));
    rm_init_arg_error_t *err = malloc(sizeof(*err));

    RM_FUZZ_CHECK(cfg != NULL && err != NULL);
    argv[argc++] = rm_fuzz_strndup((const uint8_t *)"ringmesh-init", strlen("ringmesh-init"));
    /* a trailing NUL ends the last argument; it does not start an empty one */
    while (start < size && argc < MAX_ARGS) {
        const uint8_t *nul = memchr(data + start, '\0', size - start);
        size_t len = nul != NULL ? (size_t)(nul - (data + start)) : size - start;
        argv[argc++] = rm_fuzz_strndup(data + start, len);
        start += len + 1;
    }
    argv[argc] = NULL;

    memset(err, 0xa5, sizeof(*err));
    ret = rm_init_parse_args(argc, argv, cfg, err);
    if (ret == 0) {
        check_config(cfg);
    } else {
        RM_FUZZ_CHECK(ret == RM_ERR_CONFIG_VALUE);
        RM_FUZZ_CHECK(terminated(err->flag, sizeof(err->flag)) && terminated(err->value, sizeof(err->value)));
        RM_FUZZ_CHECK(terminated(err->reason, sizeof(err->reason)) && err->reason[0] != '\0');
    }

    for (int i = 0; i != argc; ++i)
        free(argv[i]);
    free(err);
    free(cfg);
    return 0;
}
