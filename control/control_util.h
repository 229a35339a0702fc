/* Small helpers the control plane's files share. */
#ifndef RINGMESH_CONTROL_UTIL_H
#define RINGMESH_CONTROL_UTIL_H

#include "ringmesh/config.h"

#define RM_CONTROL_MAX_FILE (4u << 20)

/** rm_file_read() with the control plane's size limit. */
static inline int rm__control_read_file(const char *path, char **data, size_t *len)
{
    return rm_file_read(path, RM_CONTROL_MAX_FILE, data, len);
}

#endif
