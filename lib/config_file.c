/* The positioned error and the file reader of ringmesh/config.h. */
#include "ringmesh/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int rm_config_error_vset(rm_config_error_t *e, int code, const char *file, rm_yaml_pos_t pos, const char *field,
                         const char *fmt, va_list ap)
{
    if (e == NULL)
        return code;
    e->code = code;
    snprintf(e->file, sizeof(e->file), "%s", file != NULL ? file : "(null)");
    e->line = pos.line;
    e->column = pos.col;
    snprintf(e->field, sizeof(e->field), "%s", field != NULL ? field : "");
    vsnprintf(e->reason, sizeof(e->reason), fmt, ap);
    return code;
}

int rm_config_error_set(rm_config_error_t *e, int code, const char *file, rm_yaml_pos_t pos, const char *field,
                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rm_config_error_vset(e, code, file, pos, field, fmt, ap);
    va_end(ap);
    return code;
}

void rm_config_format(char *buf, size_t len, const char *file, unsigned line, unsigned column, const char *field,
                      const char *note, const char *reason)
{
    if (buf == NULL || len == 0)
        return;
    if (file == NULL)
        file = "-";
    if (field == NULL)
        field = "";
    if (line != 0)
        snprintf(buf, len, "%s:%u:%u: %s: %s%s", file, line, column, field[0] != '\0' ? field : "(document)", note,
                 reason);
    else if (field[0] != '\0')
        snprintf(buf, len, "%s: %s: %s%s", file, field, note, reason);
    else
        snprintf(buf, len, "%s: %s%s", file, note, reason);
}

void rm_config_error_format(const rm_config_error_t *e, char *buf, size_t len)
{
    rm_config_format(buf, len, e->file, e->line, e->column, e->field, "", e->reason);
}

int rm_config_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen != 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---------------------------------------------------------------------------------------------------------
 * The reader.
 * ------------------------------------------------------------------------------------------------------- */

__attribute__((format(printf, 4, 5))) static int read_error(rm_config_error_t *err, int code, const char *shown,
                                                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rm_config_error_vset(err, code, shown, (rm_yaml_pos_t){0, 0}, NULL, fmt, ap);
    va_end(ap);
    return code;
}

/* Moves `buf` (`used` bytes) into a larger allocation of `cap` bytes. A secret's old copy is zeroed first, which
 * realloc() would not do. Returns the new buffer or NULL (then `buf` is untouched). */
static char *grow(char *buf, size_t used, size_t cap, unsigned flags)
{
    char *grown;
    if ((flags & RM_FILE_SECRET) == 0)
        return realloc(buf, cap);
    if ((grown = malloc(cap)) == NULL)
        return NULL;
    if (buf != NULL) {
        memcpy(grown, buf, used);
        explicit_bzero(buf, used);
        free(buf);
    }
    return grown;
}

int rm_file_read_at(int dir_fd, const char *path, const char *shown, size_t max, unsigned flags, char **data,
                    size_t *len, rm_config_error_t *err)
{
    struct stat st;
    char *buf = NULL, *grown;
    size_t cap, used = 0;
    int fd, ret;

    if (shown == NULL)
        shown = path;
    /* O_NONBLOCK: a FIFO that slipped in where a regular file was expected must not block the reader */
    if ((fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | ((flags & RM_FILE_REGULAR) != 0 ? O_NONBLOCK : 0))) < 0) {
        ret = -errno;
        return read_error(err, ret, shown, "cannot open: %s", strerror(-ret));
    }
    if (fstat(fd, &st) != 0) {
        ret = read_error(err, -errno, shown, "cannot stat: %s", strerror(errno));
        goto Exit;
    }
    if (!S_ISREG(st.st_mode) && (flags & RM_FILE_REGULAR) != 0) {
        ret = read_error(err, -EINVAL, shown, "not a regular file");
        goto Exit;
    }
    if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > max) {
        ret = read_error(err, -EFBIG, shown, "larger than %zu bytes", max);
        goto Exit;
    }
    /* a regular file: sized by fstat, plus one byte to notice a file that grew since; anything else grows */
    cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 2 : 8192;
    if ((buf = grow(NULL, 0, cap, flags)) == NULL) {
        ret = read_error(err, -ENOMEM, shown, "out of memory");
        goto Exit;
    }
    for (;;) {
        if (used + 1 == cap) {
            if ((flags & RM_FILE_REGULAR) != 0) {
                ret = read_error(err, -EAGAIN, shown, "changed while it was being read");
                goto Exit;
            }
            if (used >= max + 1 || (grown = grow(buf, used, cap * 2 > max + 2 ? max + 2 : cap * 2, flags)) == NULL) {
                ret = used >= max + 1 ? read_error(err, -EFBIG, shown, "larger than %zu bytes", max)
                                      : read_error(err, -ENOMEM, shown, "out of memory");
                goto Exit;
            }
            buf = grown;
            cap = cap * 2 > max + 2 ? max + 2 : cap * 2;
        }
        ssize_t n = read(fd, buf + used, cap - 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ret = read_error(err, -errno, shown, "cannot read: %s", strerror(errno));
            goto Exit;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    if (used > max) {
        ret = read_error(err, -EFBIG, shown, "larger than %zu bytes", max);
        goto Exit;
    }
    buf[used] = '\0';
    *data = buf;
    *len = used;
    buf = NULL;
    ret = 0;

Exit:
    rm_file_free(buf, used, flags);
    close(fd);
    return ret;
}

int rm_file_read(const char *path, size_t max, char **data, size_t *len)
{
    return rm_file_read_at(AT_FDCWD, path, NULL, max, 0, data, len, NULL);
}

void rm_file_free(char *data, size_t len, unsigned flags)
{
    if (data == NULL)
        return;
    if ((flags & RM_FILE_SECRET) != 0)
        explicit_bzero(data, len);
    free(data);
}
