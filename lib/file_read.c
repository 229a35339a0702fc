#include "ringmesh/file_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "ringmesh/bytebuf.h"

#define READ_CHUNK 4096

int rm_file_read(const char *path, size_t max, char **data, size_t *len)
{
    rm_bytebuf_t buf = {0};
    ssize_t n;
    int fd, ret;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -errno;
    for (;;) {
        /* every read leaves a byte free for the NUL */
        if ((ret = rm_bytebuf_reserve(&buf, READ_CHUNK)) != 0)
            goto Exit;
        if ((n = read(fd, buf.base + buf.len, buf.cap - buf.len - 1)) < 0) {
            if (errno == EINTR)
                continue;
            ret = -errno;
            goto Exit;
        }
        if (n == 0)
            break;
        buf.len += (size_t)n;
        if (buf.len > max) {
            ret = -EFBIG;
            goto Exit;
        }
    }
    buf.base[buf.len] = '\0';
    *len = buf.len;
    *data = (char *)rm_bytebuf_release(&buf);
    ret = 0;
Exit:
    rm_bytebuf_free(&buf);
    close(fd);
    return ret;
}
