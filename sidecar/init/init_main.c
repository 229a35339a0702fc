/* ringmesh-init: writes the pod's traffic-capture rules (run once, as the pod's init container). */
#include "iptables_rules.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"
#include "ringmesh/tls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define EXIT_APPLY_FAILED 1
#define EXIT_BAD_ARGUMENT 2

/* iptables-save and iptables-restore finish in well under a second; this only bounds a hung child */
#define EXEC_TIMEOUT_MS 30000

typedef struct st_family_t {
    int af;
    const char *name; /* as logged: "ipv4", "ipv6" */
    const char *save;
    const char *restore;
} family_t;

static const family_t family_v4 = {AF_INET, "ipv4", "iptables-save", "iptables-restore"};
static const family_t family_v6 = {AF_INET6, "ipv6", "ip6tables-save", "ip6tables-restore"};

static void write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* Logs a command that could not run or exited non-zero, and copies its stderr to ours. Returns the exit code. */
static int report_command_failure(const family_t *fam, const char *command, int ret, const rm_init_exec_result_t *res)
{
    rm_log_line_t l;

    if (ret == 0 && res->err.len > 0)
        write_all(2, rm_bytebuf_text(&res->err), res->err.len);
    rm_log_begin(&l, RM_LOG_ERROR, "iptables_command_failed");
    rm_log_str(&l, "family", fam->name);
    rm_log_str(&l, "command", command);
    if (ret != 0) {
        rm_log_err(&l, "error", ret);
    } else {
        rm_log_int(&l, "exit_status", res->exit_status);
        if (res->err.len > 0)
            rm_log_strn(&l, "stderr", rm_bytebuf_text(&res->err), res->err.len);
    }
    rm_log_end(&l);
    return EXIT_APPLY_FAILED;
}

/* Reads the family's nat table with `<family>-save -t nat`. On failure logs it and returns EXIT_APPLY_FAILED. */
static int read_nat_table(const family_t *fam, rm_init_exec_result_t *res)
{
    char *argv[] = {(char *)fam->save, "-t", "nat", NULL};
    int ret = rm_init_exec(argv, NULL, 0, EXEC_TIMEOUT_MS, res);
    if (ret != 0 || res->exit_status != 0)
        return report_command_failure(fam, fam->save, ret, res);
    return 0;
}

/* Feeds `input` to `<family>-restore --noflush`. On failure logs it and returns EXIT_APPLY_FAILED. */
static int restore_nat_table(const family_t *fam, const rm_bytebuf_t *input)
{
    char *argv[] = {(char *)fam->restore, "--noflush", NULL};
    rm_init_exec_result_t res = {0};
    int ret = rm_init_exec(argv, rm_bytebuf_text(input), input->len, EXEC_TIMEOUT_MS, &res);
    if (ret != 0 || res.exit_status != 0)
        ret = report_command_failure(fam, fam->restore, ret, &res);
    rm_init_exec_result_free(&res);
    return ret;
}

static int log_out_of_memory(void)
{
    rm_log_msg(RM_LOG_ERROR, "out_of_memory", "could not build the iptables-restore input");
    return EXIT_APPLY_FAILED;
}

static int apply_family(const rm_init_config_t *cfg, const family_t *fam)
{
    rm_init_exec_result_t saved = {0};
    rm_bytebuf_t input = {0};
    size_t num_rules;
    rm_log_line_t l;
    int ret;

    if ((ret = read_nat_table(fam, &saved)) != 0)
        goto Exit;
    if (rm_iptables_build_rules(cfg, fam->af, rm_bytebuf_text(&saved.out), &input, &num_rules) != 0) {
        ret = log_out_of_memory();
        goto Exit;
    }
    if (rm_log_enabled(RM_LOG_DEBUG)) {
        rm_log_begin(&l, RM_LOG_DEBUG, "iptables_restore_input");
        rm_log_str(&l, "family", fam->name);
        rm_log_strn(&l, "input", rm_bytebuf_text(&input), input.len);
        rm_log_end(&l);
    }
    if ((ret = restore_nat_table(fam, &input)) != 0)
        goto Exit;
    rm_log_begin(&l, RM_LOG_INFO, "iptables_applied");
    rm_log_str(&l, "family", fam->name);
    rm_log_uint(&l, "rules", num_rules);
    rm_log_uint(&l, "outbound_port", cfg->outbound_port);
    rm_log_uint(&l, "inbound_port", cfg->inbound_port);
    rm_log_end(&l);

Exit:
    rm_init_exec_result_free(&saved);
    rm_bytebuf_free(&input);
    return ret;
}

/* Removes our chains and jumps of one family. With `print_only` the restore input is printed instead. */
static int cleanup_family(const family_t *fam, int print_only)
{
    rm_init_exec_result_t saved = {0};
    rm_bytebuf_t input = {0};
    size_t num_jumps, num_chains;
    rm_log_line_t l;
    int ret;

    if ((ret = read_nat_table(fam, &saved)) != 0)
        goto Exit;
    if (rm_iptables_build_cleanup(rm_bytebuf_text(&saved.out), &input, &num_jumps, &num_chains) != 0) {
        ret = log_out_of_memory();
        goto Exit;
    }
    if (print_only) {
        printf("# ringmesh-init --cleanup --dry-run: %s input (%s)\n", fam->restore, fam->name);
        (void)fwrite(rm_bytebuf_text(&input), 1, input.len, stdout);
        goto Exit;
    }
    if (input.len > 0 && (ret = restore_nat_table(fam, &input)) != 0)
        goto Exit;
    rm_log_begin(&l, RM_LOG_INFO, "iptables_cleaned");
    rm_log_str(&l, "family", fam->name);
    rm_log_uint(&l, "jumps_removed", num_jumps);
    rm_log_uint(&l, "chains_removed", num_chains);
    rm_log_end(&l);

Exit:
    rm_init_exec_result_free(&saved);
    rm_bytebuf_free(&input);
    return ret;
}

/* Decides whether IPv6 rules are written, and says so in the log. Returns 1 or 0, or -1 when they are required
 * (--ipv6 on) but the ip6tables nat table cannot be read (already logged). */
static int ipv6_enabled(const rm_init_config_t *cfg)
{
    static const char *const mode_names[] = {"auto", "on", "off"};
    rm_init_exec_result_t probe = {0};
    const char *reason;
    int enabled, ret;
    rm_log_line_t l;

    if (cfg->ipv6 == RM_INIT_IPV6_OFF) {
        enabled = 0;
        reason = "--ipv6 off";
    } else if (cfg->ipv6 == RM_INIT_IPV6_ON) {
        if (read_nat_table(&family_v6, &probe) != 0) {
            enabled = -1;
            goto Exit;
        }
        enabled = 1;
        reason = "--ipv6 on";
    } else if (access("/proc/net/if_inet6", F_OK) != 0) {
        enabled = 0;
        reason = "IPv6 is disabled in this network namespace";
    } else {
        char *argv[] = {(char *)family_v6.save, "-t", "nat", NULL};
        ret = rm_init_exec(argv, NULL, 0, EXEC_TIMEOUT_MS, &probe);
        enabled = ret == 0 && probe.exit_status == 0;
        reason = enabled ? "the ip6tables nat table is usable" : "the ip6tables nat table is not usable";
    }
    rm_log_begin(&l, RM_LOG_INFO, "ipv6_mode");
    rm_log_str(&l, "mode", mode_names[cfg->ipv6]);
    rm_log_bool(&l, "enabled", enabled);
    rm_log_str(&l, "reason", reason);
    rm_log_end(&l);

Exit:
    rm_init_exec_result_free(&probe);
    return enabled;
}

static int print_dry_run(const rm_init_config_t *cfg)
{
    const family_t *fams[] = {&family_v4, &family_v6};
    int ret = 0;

    for (size_t i = 0; i < 2; i++) {
        rm_bytebuf_t input = {0};
        size_t num_rules;
        if (fams[i]->af == AF_INET6 && cfg->ipv6 == RM_INIT_IPV6_OFF)
            break;
        if (rm_iptables_build_rules(cfg, fams[i]->af, NULL, &input, &num_rules) != 0) {
            ret = log_out_of_memory();
            break;
        }
        printf("# ringmesh-init --dry-run: %s input (%s, %zu rules)\n", fams[i]->restore, fams[i]->name, num_rules);
        (void)fwrite(input.base, 1, input.len, stdout);
        rm_bytebuf_free(&input);
    }
    return ret;
}

/* --dry-run's output is all the run produces: when it could not all be written (a full disk, a closed pipe), the
 * run fails with a log line (on stderr with --dry-run) instead of exiting 0 with rules missing. Returns `ret`, or
 * EXIT_APPLY_FAILED when the output failed and `ret` was 0. */
static int finish_dry_run_output(int ret)
{
    int err = 0;

    errno = 0;
    if (fflush(stdout) != 0)
        err = errno != 0 ? errno : EIO;
    else if (ferror(stdout))
        err = EIO; /* an earlier write failed; its errno is gone */
    if (err == 0)
        return ret;
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_ERROR, "dry_run_output_failed");
    rm_log_err(&l, "error", -err);
    rm_log_str(&l, "msg", "the iptables-restore input could not be written to stdout");
    rm_log_end(&l);
    return ret != 0 ? ret : EXIT_APPLY_FAILED;
}

/* The proxy runs without privileges and cannot make the kernel load its tls module; this container has NET_ADMIN,
 * with which trying the TLS layer on a socket loads it. Reported, never fatal: without it the proxy keeps its TLS
 * records in user space. */
static void report_kernel_tls(void)
{
    int r = rm_tls_ktls_probe();
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_INFO, "kernel_tls");
    rm_log_bool(&l, "available", r == 0);
    if (r != 0) {
        rm_log_err(&l, "reason", r);
        rm_log_str(&l, "msg", "the kernel has no TLS layer (CONFIG_TLS, module tls): the proxy keeps TLS records");
    }
    rm_log_end(&l);
}

int main(int argc, char **argv)
{
    rm_init_config_t cfg;
    rm_init_arg_error_t err;
    rm_log_level_t level = RM_LOG_INFO;
    int ret, v6;

    /* with --dry-run, stdout carries iptables-restore input; logs go to stderr so it stays usable as such */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--dry-run") == 0)
            rm_log_configure(RM_LOG_INFO, 2);

    if (rm_init_parse_args(argc, argv, &cfg, &err) != 0) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_ERROR, "invalid_argument");
        rm_log_str(&l, "flag", err.flag);
        rm_log_str(&l, "value", err.value);
        rm_log_str(&l, "msg", err.reason);
        rm_log_end(&l);
        ret = EXIT_BAD_ARGUMENT;
        goto Exit;
    }
    if (cfg.help) {
        fputs(rm_init_usage, stdout);
        ret = 0;
        goto Exit;
    }
    rm_log_level_parse(cfg.log_level, &level);
    rm_log_configure(level, cfg.dry_run ? 2 : 1);

    if (cfg.dry_run && !cfg.cleanup) {
        ret = finish_dry_run_output(print_dry_run(&cfg));
        goto Exit;
    }
    /* decided before touching IPv4, so "--ipv6 on" without a usable table fails before anything changes */
    if ((v6 = ipv6_enabled(&cfg)) < 0) {
        ret = EXIT_APPLY_FAILED;
        goto Exit;
    }
    if (cfg.cleanup) {
        if ((ret = cleanup_family(&family_v4, cfg.dry_run)) == 0 && v6)
            ret = cleanup_family(&family_v6, cfg.dry_run);
        if (cfg.dry_run)
            ret = finish_dry_run_output(ret);
        goto Exit;
    }
    if ((ret = apply_family(&cfg, &family_v4)) != 0)
        goto Exit;
    if (v6 && (ret = apply_family(&cfg, &family_v6)) != 0)
        goto Exit;
    report_kernel_tls();

Exit:
    fflush(stdout);
    return ret;
}
