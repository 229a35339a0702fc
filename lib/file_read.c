#include "ringmesh/file_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int rm_file_read(const char *path, size_t max, char **data, size_t *len)
{
    char *buf = NULL, *grown;
    size_t cap = 0, used = 0;
    ssize_t n;
    int fd, ret;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -errno;
    for (;;) {
        if (cap - used < 4096) {
            cap = cap == 0 ? 8192 : cap * 2;
            if (cap > max + 4096) {
                ret = -EFBIG;
                goto Exit;
            }
            if ((grown = realloc(buf, cap)) == NULL) {
                ret = -ENOMEM;
                goto Exit;
            }
            buf = grown;
        }
        if ((n = read(fd, buf + used, cap - used - 1)) < 0) {
            if (errno == EINTR)
                continue;
            ret = -errno;
            goto Exit;
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > max) {
            ret = -EFBIG;
            goto Exit;
        }
    }
    buf[used] = '\0';
    *data = buf;
    *len = used;
    buf = NULL;
    ret = 0;
Exit:
    free(buf);
    close(fd);
    return ret;
}
