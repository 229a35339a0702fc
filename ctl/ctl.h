/* Shared by the ringmeshctl command files: each top-level command is one function taking its own argv
 * (argv[0] is the command name) and returning the process exit status. */
#ifndef RINGMESH_CTL_H
#define RINGMESH_CTL_H

#include <stddef.h>

/** Exit statuses every command uses. */
#define RM_CTL_EXIT_OK      0
#define RM_CTL_EXIT_INVALID 1 /* the input was read and is not valid (e.g. an invalid SVID) */
#define RM_CTL_EXIT_USAGE   2 /* bad command line, or a file that could not be read or written */

/** `ringmeshctl svid ...`. Returns an RM_CTL_EXIT_* status. */
int rm__ctl_svid(int argc, char **argv);

/** `ringmeshctl token ...`. Returns an RM_CTL_EXIT_* status. */
int rm__ctl_token(int argc, char **argv);

/** `ringmeshctl policy ...`. Returns an RM_CTL_EXIT_* status, or RM_CTL_EXIT_DENIED from `policy check`. */
int rm__ctl_policy(int argc, char **argv);

#define RM_CTL_EXIT_DENIED 3 /* `policy check`: the request would be denied */

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

/** Reads a whole file (at most 16 MiB) into a NUL-terminated malloc'd buffer. Returns 0 or -errno (-EFBIG when
 *  too large). */
int rm__ctl_read_file(const char *path, char **data, size_t *len);

#endif
