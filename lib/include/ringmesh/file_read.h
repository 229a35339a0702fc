/* Reading a whole small file (configuration, PEM, JWKS, tokens) into memory. */
#ifndef RINGMESH_FILE_READ_H
#define RINGMESH_FILE_READ_H

#include <stddef.h>

/** Reads all of `path` (at most `max` bytes) into a NUL-terminated buffer (free()). Returns 0 or -errno (-EFBIG
 *  when larger than `max`). */
int rm_file_read(const char *path, size_t max, char **data, size_t *len);

#endif
