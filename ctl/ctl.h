/* Shared by the ringmeshctl command files. Commands are tables, one per level: the top level names the groups
 * (svid, token, policy, route) and the few commands of their own (inject, wait-ready, stat), each group names its
 * commands and their handlers. One dispatcher walks them and the help is generated from them, so every level parses its
 * subcommand and prints its usage the same way. */
#ifndef RINGMESH_CTL_H
#define RINGMESH_CTL_H

#include <stddef.h>
#include <stdio.h>

/** Exit statuses every command uses. */
#define RM_CTL_EXIT_OK      0
#define RM_CTL_EXIT_INVALID 1 /* the input was read and is not valid (e.g. an invalid SVID) */
#define RM_CTL_EXIT_USAGE   2 /* bad command line, or a file that could not be read or written */
#define RM_CTL_EXIT_DENIED  3 /* `policy check`: the request would be denied */

typedef struct st_rm_ctl_level_t rm_ctl_level_t;

/** One entry of a level's table. A command has a `handler`, given its own argv (argv[0] is its name) and returning
 *  an RM_CTL_EXIT_* status, and `usage` and `help` for its group's help; a group has the `level` below it. */
typedef struct st_rm_ctl_command_t {
    const char *name;
    const char *summary;                   /* one line, in the top-level help */
    int (*handler)(int argc, char **argv); /* a command */
    const char *usage;           /* a command: its synopsis from "ringmeshctl" on; further lines come indented */
    const char *help;            /* a command: what it does, lines separated by '\n' (the help indents them) */
    const rm_ctl_level_t *level; /* a group */
} rm_ctl_command_t;

/** A level: its commands, either all groups (the top level) or all commands (a group). */
struct st_rm_ctl_level_t {
    const char *path;   /* how messages name the level: "ringmeshctl", "ringmeshctl svid" */
    const char *noun;   /* what an entry is called in "unknown ... 'x'": "command", "subcommand" */
    const char *footer; /* the help's last lines (exit statuses), or NULL */
    const rm_ctl_command_t *commands;
    size_t num_commands;
};

/** The groups, each defined in its own file. */
extern const rm_ctl_level_t rm__ctl_svid_level, rm__ctl_token_level, rm__ctl_policy_level, rm__ctl_route_level;

/** `ringmeshctl inject` and `ringmeshctl wait-ready` (inject_cmd.c): commands of the top level, not of a group. */
int rm__ctl_inject(int argc, char **argv);
int rm__ctl_wait_ready(int argc, char **argv);
/** `ringmeshctl stat` (stat_cmd.c): the per-workload traffic table, from proxies or Prometheus. */
int rm__ctl_stat(int argc, char **argv);

/** Runs argv[1] of `level` with argv[1..argc): a command's handler, or the dispatch of a group's level. Without an
 *  argument prints the help on stderr and returns RM_CTL_EXIT_USAGE; with --help, -h or help prints it on stdout
 *  and returns RM_CTL_EXIT_OK; an unknown name is named on stderr, followed by the help (RM_CTL_EXIT_USAGE). */
int rm__ctl_dispatch(const rm_ctl_level_t *level, int argc, char **argv);

/** Prints the help of `level` on `out`, generated from its table. */
void rm__ctl_help(const rm_ctl_level_t *level, FILE *out);

#define RM_CTL_FLAG_MAX_VALUES 64

/** A --flag of a command. Fill `name`, `takes_value` and `repeatable`; the parser fills the rest. */
typedef struct st_flag_t {
    const char *name; /* without the leading "--" */
    int takes_value;
    int repeatable;
    char short_name;   /* '-X' alias, 0 for none */
    const char *value; /* last value seen, "" for a boolean flag that was given, NULL when not given */
    const char *values[RM_CTL_FLAG_MAX_VALUES];
    size_t count;
} flag_t;

/** Parses argv[1..argc) of `ringmeshctl GROUP CMD` into `flags` (--name VALUE or --name=VALUE). Returns 0, 1 when
 *  --help was given, or -1 after printing the error on stderr. */
int rm__ctl_parse_flags(const char *group, const char *cmd, int argc, char **argv, flag_t *flags, size_t num);

/** rm__ctl_parse_flags() for the command argv[0] of `level`, with the outcomes every command gives them. Returns 0
 *  to go on, or -1 when the command is done with *status: --help printed the level's help on stdout
 *  (RM_CTL_EXIT_OK), or the error was printed with a pointer to --help (RM_CTL_EXIT_USAGE). */
int rm__ctl_flags(const rm_ctl_level_t *level, int argc, char **argv, flag_t *flags, size_t num, int *status);

/** Prints "ringmeshctl: PATH: [WHAT: ]REASON" for a file that could not be read or written, and returns
 *  RM_CTL_EXIT_USAGE. `what` may be NULL; `err` is an RM_ERR_* or -errno code. */
int rm__ctl_file_error(const char *path, const char *what, int err);

/** Reads a whole file (at most 16 MiB) into a NUL-terminated malloc'd buffer. Returns 0 or -errno (-EFBIG when
 *  too large). */
int rm__ctl_read_file(const char *path, char **data, size_t *len);

#endif
