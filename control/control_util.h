/* Small helpers the control plane's files share. */
#ifndef RINGMESH_CONTROL_UTIL_H
#define RINGMESH_CONTROL_UTIL_H

#include <stddef.h>

#define RM_CONTROL_MAX_FILE (4u << 20)

/** Reads a whole file (at most RM_CONTROL_MAX_FILE bytes) into a NUL-terminated buffer (free()).
 *  Returns 0 or -errno (-EFBIG when too large). */
int rm__control_read_file(const char *path, char **data, size_t *len);

#endif
