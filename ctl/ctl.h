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

/** Reads a whole file (at most 16 MiB) into a NUL-terminated malloc'd buffer. Returns 0 or -errno (-EFBIG when
 *  too large). */
int rm__ctl_read_file(const char *path, char **data, size_t *len);

#endif
