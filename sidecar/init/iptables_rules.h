/* ringmesh-init: the pod's traffic-capture rules for the iptables `nat` table.
 *
 * Four chains of our own carry every rule:
 *   OUTPUT     -p tcp -j RINGMESH_OUTPUT     outbound: RETURN for the proxy's UID/GID, loopback, excluded ports and
 *                                            CIDRs, then RINGMESH_REDIRECT for the included destinations
 *   PREROUTING -p tcp -j RINGMESH_INBOUND    inbound: RETURN for the proxy's own ports and excluded ports, then
 *                                            RINGMESH_IN_REDIRECT for the included ports
 *   RINGMESH_REDIRECT     REDIRECT --to-ports <outbound port, 15001>
 *   RINGMESH_IN_REDIRECT  REDIRECT --to-ports <inbound port, 15006>
 *
 * Everything that decides what the rules are is a pure function of a parsed configuration (and, for the jumps
 * and for cleanup, of the current `iptables-save -t nat` text), so it is unit-testable without running anything.
 * The generated text is iptables-restore input meant for `--noflush`: declaring a chain of ours creates it or
 * flushes it, so applying twice leaves exactly one copy of every rule, and the whole set lands in one commit.
 * Rules are written in the canonical form iptables-save prints them in, so `--dry-run` output and the saved
 * table can be compared line by line. */
#ifndef RINGMESH_INIT_IPTABLES_RULES_H
#define RINGMESH_INIT_IPTABLES_RULES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ringmesh/bytebuf.h"

#define RM_INIT_DEFAULT_OUTBOUND_PORT 15001
#define RM_INIT_DEFAULT_INBOUND_PORT  15006
#define RM_INIT_ADMIN_PORT            15021
#define RM_INIT_METRICS_PORT          15090
#define RM_INIT_DEFAULT_PROXY_UID     1337
#define RM_INIT_DEFAULT_PROXY_GID     1337

/** Most entries a port or CIDR list flag may hold (after removing duplicates). */
#define RM_INIT_MAX_LIST 64

#define RM_INIT_CHAIN_OUTPUT      "RINGMESH_OUTPUT"
#define RM_INIT_CHAIN_INBOUND     "RINGMESH_INBOUND"
#define RM_INIT_CHAIN_REDIRECT    "RINGMESH_REDIRECT"
#define RM_INIT_CHAIN_IN_REDIRECT "RINGMESH_IN_REDIRECT"
/** Every chain this program owns starts with this prefix; cleanup removes all of them. */
#define RM_INIT_CHAIN_PREFIX "RINGMESH_"

typedef enum { RM_INIT_IPV6_AUTO = 0, RM_INIT_IPV6_ON, RM_INIT_IPV6_OFF } rm_init_ipv6_mode_t;

/** An address family's network: `addr` holds 4 (AF_INET) or 16 (AF_INET6) bytes, host bits cleared. */
typedef struct st_rm_init_cidr_t {
    int family;
    uint8_t addr[16];
    uint8_t prefix_len;
} rm_init_cidr_t;

/** A list of TCP ports. `all` set means "every port" (`*`); then `ports` is empty. */
typedef struct st_rm_init_port_list_t {
    int all;
    size_t count;
    uint16_t ports[RM_INIT_MAX_LIST];
} rm_init_port_list_t;

/** A list of CIDRs of both families, in the order given. `all` set means "every destination" (`*`). */
typedef struct st_rm_init_cidr_list_t {
    int all;
    size_t count;
    rm_init_cidr_t cidrs[RM_INIT_MAX_LIST];
} rm_init_cidr_list_t;

/** What ringmesh-init was asked to do. Plain data: rm_init_config_defaults() gives a valid value. */
typedef struct st_rm_init_config_t {
    uint16_t outbound_port; /* --outbound-port: where RINGMESH_REDIRECT sends outbound TCP */
    uint16_t inbound_port;  /* --inbound-port: where RINGMESH_IN_REDIRECT sends inbound TCP */
    uint32_t proxy_uid;     /* --proxy-uid: outbound traffic of this UID is not captured */
    uint32_t proxy_gid;     /* --proxy-gid: outbound traffic of this GID is not captured */
    rm_init_port_list_t exclude_outbound_ports;
    rm_init_cidr_list_t exclude_outbound_cidrs;
    rm_init_cidr_list_t include_outbound_cidrs; /* default all; empty = no outbound capture */
    rm_init_port_list_t exclude_inbound_ports;
    rm_init_port_list_t include_inbound_ports; /* default all; empty = no inbound capture */
    rm_init_ipv6_mode_t ipv6;
    int dry_run;
    int cleanup;
    int help;
    char log_level[8]; /* --log-level, validated: "debug", "info", "warn" or "error" */
} rm_init_config_t;

/** Why an argument was refused: the flag as written (without "=value"), the offending value, and a reason. */
typedef struct st_rm_init_arg_error_t {
    char flag[64];
    char value[256];
    char reason[128];
} rm_init_arg_error_t;

/** Fills `cfg` with the defaults: ports 15001/15006, UID/GID 1337, include everything, exclude nothing, IPv6 auto,
 * log level info. */
void rm_init_config_defaults(rm_init_config_t *cfg);

/** Parses the command line (argv[0] is skipped). Accepts `--flag value` and `--flag=value`. Starts from the
 * defaults. Returns 0, or RM_ERR_CONFIG_VALUE with `err` naming the flag, the offending value and the reason. */
int rm_init_parse_args(int argc, char *const *argv, rm_init_config_t *cfg, rm_init_arg_error_t *err);

/** Parses one port, 1..65535, decimal digits only. Returns 0 or -1. */
int rm_init_parse_port(const char *s, uint16_t *out);

/** Parses a CIDR ("198.18.5.0/24", "2001:db8::/32"; a bare address means /32 or /128). Host bits are cleared, as
 * iptables does. Returns 0, or -1 with a static reason in `*reason`. */
int rm_init_parse_cidr(const char *s, rm_init_cidr_t *out, const char **reason);

/** Writes `cidr` as "a.b.c.d/n" or "x::y/n" into `dst` (at least 64 bytes). Returns dst. */
const char *rm_init_cidr_format(const rm_init_cidr_t *cidr, char *dst, size_t dst_size);

/** Builds the iptables-restore input (`*nat` ... `COMMIT`) that installs the rules for `family` (AF_INET or
 * AF_INET6). `existing` is the current `iptables-save -t nat` (or ip6tables-save) text, or NULL for a namespace
 * without our rules: the jumps from OUTPUT and PREROUTING are added only when absent there, and duplicate or
 * differently shaped jumps into our chains are deleted. Appends to `out` (kept NUL-terminated); stores in `*num_rules`
 * how many rules of ours the table holds once the input is applied (the rules of our chains plus the two jumps).
 * Returns 0 or -ENOMEM. */
int rm_iptables_build_rules(const rm_init_config_t *cfg, int family, const char *existing, rm_bytebuf_t *out,
                            size_t *num_rules);

/** Builds the iptables-restore input that removes every jump into a RINGMESH_ chain and every RINGMESH_ chain
 * found in `existing` (an iptables-save text). When there is nothing to remove, appends nothing. Stores the number
 * of jumps and of chains removed. Returns 0 or -ENOMEM. */
int rm_iptables_build_cleanup(const char *existing, rm_bytebuf_t *out, size_t *num_jumps, size_t *num_chains);

/** Counts the rules in the `nat` table of an iptables-save text that equal `rule` ("-A OUTPUT -p tcp -j X"),
 * comparing whitespace-separated words. */
size_t rm_iptables_count_rule(const char *existing, const char *rule);

/** What a finished child process left behind. */
typedef struct st_rm_init_exec_result_t {
    int exit_status;  /* exit code, or 128 + signal number when killed by a signal */
    rm_bytebuf_t out; /* everything it wrote on stdout (NUL-terminated: rm_bytebuf_text()) */
    rm_bytebuf_t err; /* everything it wrote on stderr (NUL-terminated) */
} rm_init_exec_result_t;

/** Runs argv[0] (looked up in PATH) with `argv` and no shell, writes `input` (may be NULL) to its stdin, collects
 * its stdout and stderr, and waits at most `timeout_ms` for it to finish; past that it is killed by its PID and
 * -ETIMEDOUT is returned. SIGPIPE is ignored while the child runs. Returns 0 when the child ran (whatever its exit
 * status), or a negative errno (-ENOENT when the program is not found). `res` must be zeroed by the caller and its
 * buffers freed with rm_init_exec_result_free() in every case. */
int rm_init_exec(char *const *argv, const char *input, size_t input_len, int timeout_ms, rm_init_exec_result_t *res);

/** Frees the buffers of an exec result. */
void rm_init_exec_result_free(rm_init_exec_result_t *res);

/** The text printed by --help. */
extern const char rm_init_usage[];

#endif
