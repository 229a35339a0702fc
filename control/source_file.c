/* The file source (source.h): a directory of Kubernetes-style YAML documents (docs/control-config.md), read into a
 * mesh model by the mesh loader (mesh_load.h), and a thread that reads it again when the directory changes.
 *
 * Files are read in name order, so a directory always reports the same first error. In a ConfigMap volume the
 * files are read through its "..data" symlink as it is at the start of the read, so that one load sees one version;
 * a version swapped in meanwhile is read again. */
#include "source.h"

#include "control_metrics.h"
#include "mesh_load.h"

#include "ringmesh/config.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CONFIG_FILE_MAX      (4u << 20) /* a larger file is refused before parsing */
#define CONFIG_LOAD_ATTEMPTS 3    /* a ConfigMap swapped while it is being read is read again, at most this often */
#define WATCH_QUIET_MS       25   /* a reload waits until the directory has been quiet this long... */
#define WATCH_MAX_DELAY_MS   1000 /* ...but not longer than this after the first change */
#define WATCH_RETRY_MS       1000 /* how often a lost watch (directory removed) is set up again */

/* ---------------------------------------------------------------------------------------------------------
 * The directory.
 * ------------------------------------------------------------------------------------------------------- */

static int is_yaml_name(const char *name)
{
    size_t n = strlen(name);
    if (name[0] == '.')
        return 0;
    return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) || (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

static int cmp_name(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The YAML files of the directory open as `dir_fd`, sorted by name; regular files only (symlinks followed). */
static int list_yaml_files(int dir_fd, char ***out, size_t *num_out)
{
    DIR *d;
    struct dirent *e;
    char **names = NULL;
    size_t num = 0, cap = 0;
    int fd, ret = 0;

    if ((fd = dup(dir_fd)) < 0)
        return -errno;
    if ((d = fdopendir(fd)) == NULL) {
        ret = -errno;
        close(fd);
        return ret;
    }
    rewinddir(d);
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (!is_yaml_name(e->d_name) || fstatat(dir_fd, e->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (num == cap) {
            size_t ncap = cap == 0 ? 16 : cap * 2;
            char **n = realloc(names, ncap * sizeof(*n));
            if (n == NULL) {
                ret = -ENOMEM;
                goto Exit;
            }
            names = n;
            cap = ncap;
        }
        if ((names[num] = strdup(e->d_name)) == NULL) {
            ret = -ENOMEM;
            goto Exit;
        }
        num++;
    }
    if (num > 1)
        qsort(names, num, sizeof(*names), cmp_name);

Exit:
    closedir(d);
    if (ret != 0) {
        for (size_t i = 0; i < num; i++)
            free(names[i]);
        free(names);
        return ret;
    }
    *out = names;
    *num_out = num;
    return 0;
}

/* Opens what the files are read from: `dir` itself, or, in a ConfigMap volume, the directory its "..data"
 * symlink points to at this moment, so that one load sees one version of the ConfigMap. *via_data is set when
 * the second applies. */
static int open_data_dir(const char *dir, int *via_data, rm_config_error_t *err)
{
    int dir_fd, data_fd;
    struct stat st;

    *via_data = 0;
    if ((dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return rm_config_error_set(err, RM_ERR_CONFIG_IO, dir, (rm_yaml_pos_t){0, 0}, NULL,
                                   "cannot open the directory: %s", strerror(errno));
    if (fstatat(dir_fd, "..data", &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISLNK(st.st_mode))
        return dir_fd;
    /* opening "..data" resolves the symlink once; the directory stays readable through the fd */
    if ((data_fd = openat(dir_fd, "..data", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        int e = errno;
        close(dir_fd);
        return rm_config_error_set(err, RM_ERR_CONFIG_IO, dir, (rm_yaml_pos_t){0, 0}, "..data", "cannot open: %s",
                                   strerror(e));
    }
    close(dir_fd);
    *via_data = 1;
    return data_fd;
}

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    char *s;
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (asprintf(&s, "%.*s/%s", (int)n, dir, name) < 0)
        return NULL;
    return s;
}

/* One attempt at reading every file into `ld`. Returns 0, -EAGAIN when a ConfigMap's files vanished under it (a
 * newer version was swapped in: read again), or an RM_ERR_CONFIG_* with `err` set. */
static int load_dir_once(const char *dir, rm_mesh_loader_t *ld, rm_config_error_t *err)
{
    char **names = NULL, *shown = NULL, *data = NULL;
    size_t num_names = 0, len = 0;
    int via_data, fd, ret;

    if ((fd = open_data_dir(dir, &via_data, err)) < 0)
        return fd;
    if ((ret = list_yaml_files(fd, &names, &num_names)) != 0) {
        ret = rm_config_error_set(err, RM_ERR_CONFIG_IO, dir, (rm_yaml_pos_t){0, 0}, NULL,
                                  "cannot list the directory: %s", strerror(-ret));
        goto Exit;
    }
    for (size_t i = 0; i < num_names; i++) {
        if ((shown = join_path(dir, names[i])) == NULL) {
            ret = rm_config_error_set(err, RM_ERR_CONFIG_IO, dir, (rm_yaml_pos_t){0, 0}, NULL, "out of memory");
            goto Exit;
        }
        ret = rm_file_read_at(fd, names[i], shown, CONFIG_FILE_MAX, RM_FILE_REGULAR, &data, &len, err);
        if (ret == -ENOENT) {
            /* deleted since the listing: its own event brings another reload; a ConfigMap is read again now */
            free(shown);
            shown = NULL;
            if (via_data) {
                ret = -EAGAIN;
                goto Exit;
            }
            continue;
        }
        if (ret != 0) {
            ret = err->code = RM_ERR_CONFIG_IO;
            goto Exit;
        }
        ret = rm_mesh_loader_add(ld, shown, data, len);
        free(data);
        data = NULL;
        free(shown);
        shown = NULL;
        if (ret != 0)
            goto Exit;
    }
    ret = 0;

Exit:
    free(shown);
    for (size_t i = 0; i < num_names; i++)
        free(names[i]);
    free(names);
    close(fd);
    return ret;
}

static int load_dir(const char *dir, rm_mesh_model_t **out, rm_config_error_t *err, size_t *num_files)
{
    rm_mesh_loader_t *ld;
    int ret = -EAGAIN;

    memset(err, 0, sizeof(*err));
    for (int attempt = 0; attempt < CONFIG_LOAD_ATTEMPTS && ret == -EAGAIN; attempt++) {
        if ((ld = rm_mesh_loader_new(err)) == NULL) {
            ret = rm_config_error_set(err, RM_ERR_CONFIG_IO, dir, (rm_yaml_pos_t){0, 0}, NULL, "out of memory");
            break;
        }
        if ((ret = load_dir_once(dir, ld, err)) == 0 && (ret = rm_mesh_loader_finish(ld, out)) == 0 &&
            num_files != NULL)
            *num_files = rm_mesh_loader_num_files(ld);
        rm_mesh_loader_free(ld);
    }
    if (ret == -EAGAIN)
        ret = rm_config_error_set(err, RM_ERR_CONFIG_IO, dir, (rm_yaml_pos_t){0, 0}, "..data",
                                  "the ConfigMap changed while it was being read, %d times in a row",
                                  CONFIG_LOAD_ATTEMPTS);
    return ret;
}

int rm_mesh_model_load_dir(const char *dir, rm_mesh_model_t **out, char *err, size_t errlen)
{
    rm_config_error_t *e;
    int ret;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (dir == NULL || out == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "(null): no configuration directory given");
        return RM_ERR_CONFIG_IO;
    }
    if ((e = malloc(sizeof(*e))) == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: out of memory", dir);
        return RM_ERR_CONFIG_IO;
    }
    if ((ret = load_dir(dir, out, e, NULL)) != 0)
        rm_config_error_format(e, err, errlen);
    free(e);
    return ret;
}

/* ---------------------------------------------------------------------------------------------------------
 * The watcher.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct st_file_source_t {
    rm_source_t super;
    char *dir;
    char *version; /* of the model in force: the last one accepted */
    rm_source_update_cb cb;
    void *cb_arg;
    int running;
    pthread_t thread;
    int inotify_fd, wd, stop_fd;
} file_source_t;

#define FILE_SOURCE(src) ((file_source_t *)((char *)(src)-offsetof(file_source_t, super)))

static void log_accepted(const char *dir, const rm_mesh_model_t *m, size_t num_files)
{
    rm_log_line_t l;
    rm_log_begin(&l, RM_LOG_INFO, "config_accepted");
    rm_log_str(&l, "source", "file");
    rm_log_str(&l, "dir", dir);
    rm_log_str(&l, "version", m->version);
    rm_log_uint(&l, "services", m->num_services);
    rm_log_uint(&l, "files", num_files);
    rm_log_uint(&l, "routes", m->num_routes);
    rm_log_end(&l);
}

static void log_rejected(const char *dir, const rm_config_error_t *e, const char *in_force)
{
    rm_log_line_t l;
    rm_control_source_error(RM_CONTROL_SOURCE_FILE, rm_source_error_kind_of(e->code));
    rm_log_begin(&l, RM_LOG_WARN, "config_rejected");
    rm_log_str(&l, "source", "file");
    rm_log_str(&l, "dir", dir);
    rm_log_str(&l, "file", e->file);
    rm_log_uint(&l, "line", e->line);
    rm_log_uint(&l, "column", e->column);
    rm_log_str(&l, "field", e->field);
    rm_log_str(&l, "reason", e->reason);
    rm_log_err(&l, "error", e->code);
    rm_log_str(&l, "version_in_force", in_force);
    rm_log_end(&l);
}

static void reload(file_source_t *fs)
{
    rm_config_error_t *e;
    rm_mesh_model_t *m = NULL;
    size_t num_files = 0;
    char *version;

    if ((e = malloc(sizeof(*e))) == NULL) {
        rm_log_msg(RM_LOG_ERROR, "config_reload_failed", "out of memory");
        return;
    }
    if (load_dir(fs->dir, &m, e, &num_files) != 0) {
        log_rejected(fs->dir, e, fs->version);
        goto Exit;
    }
    // NOLINTNEXTLINE(clang-analyzer-core.NullDereference): load_dir() sets m when it returns 0
    if (strcmp(m->version, fs->version) == 0) {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_DEBUG, "config_unchanged");
        rm_log_str(&l, "source", "file");
        rm_log_str(&l, "dir", fs->dir);
        rm_log_str(&l, "version", m->version);
        rm_log_end(&l);
        goto Exit;
    }
    if ((version = strdup(m->version)) == NULL) {
        rm_log_msg(RM_LOG_ERROR, "config_reload_failed", "out of memory");
        goto Exit;
    }
    free(fs->version);
    fs->version = version;
    log_accepted(fs->dir, m, num_files);
    fs->cb(fs->cb_arg, m);
    m = NULL;

Exit:
    rm_mesh_model_unref(m);
    free(e);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int add_watch(file_source_t *fs)
{
    fs->wd = inotify_add_watch(fs->inotify_fd, fs->dir,
                               IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF |
                                   IN_MOVE_SELF | IN_ONLYDIR);
    return fs->wd < 0 ? -errno : 0;
}

/* Whether an event can change what a load reads: a YAML file's name, the ConfigMap's "..data" swap, a lost
 * event queue. Hidden files and other names are never read. Sets *lost when the watch itself went away. */
static int event_matters(const struct inotify_event *ev, int *lost)
{
    if (ev->mask & IN_Q_OVERFLOW)
        return 1;
    if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
        *lost = 1;
        return 1;
    }
    if (ev->len == 0)
        return 0;
    return strcmp(ev->name, "..data") == 0 || is_yaml_name(ev->name);
}

static void *watch_main(void *arg)
{
    file_source_t *fs = arg;
    /* the first read is right away: it catches what changed between create() and start() */
    int64_t first = now_ms(), deadline = first, retry_at = -1;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));

    for (;;) {
        struct pollfd pfd[2] = {{.fd = fs->stop_fd, .events = POLLIN}, {.fd = fs->inotify_fd, .events = POLLIN}};
        int64_t now = now_ms(), wake = deadline;
        if (retry_at >= 0 && (wake < 0 || retry_at < wake))
            wake = retry_at;
        int timeout = wake < 0 ? -1 : wake <= now ? 0 : (int)(wake - now);

        if (poll(pfd, 2, timeout) < 0 && errno != EINTR) {
            rm_log_line_t l;
            rm_log_begin(&l, RM_LOG_ERROR, "config_watch_failed");
            rm_log_str(&l, "dir", fs->dir);
            rm_log_err(&l, "error", -errno);
            rm_log_end(&l);
            break;
        }
        if (pfd[0].revents != 0)
            break;
        now = now_ms();
        if (pfd[1].revents & POLLIN) {
            ssize_t n;
            while ((n = read(fs->inotify_fd, buf, sizeof(buf))) > 0) {
                for (char *p = buf; p < buf + n;) {
                    const struct inotify_event *ev = (const struct inotify_event *)p;
                    int lost = 0;
                    if ((ev->wd == fs->wd || (ev->mask & IN_Q_OVERFLOW)) && event_matters(ev, &lost)) {
                        if (first < 0)
                            first = now;
                        deadline = now + WATCH_QUIET_MS;
                        if (deadline > first + WATCH_MAX_DELAY_MS)
                            deadline = first + WATCH_MAX_DELAY_MS;
                        if (lost && fs->wd >= 0) {
                            inotify_rm_watch(fs->inotify_fd, fs->wd);
                            fs->wd = -1;
                            retry_at = now;
                            rm_log_line_t l;
                            rm_control_source_error(RM_CONTROL_SOURCE_FILE, RM_SOURCE_ERR_WATCH_FAILED);
                            rm_log_begin(&l, RM_LOG_WARN, "config_watch_lost");
                            rm_log_str(&l, "dir", fs->dir);
                            rm_log_end(&l);
                        }
                    }
                    p += sizeof(*ev) + ev->len;
                }
            }
        }
        if (retry_at >= 0 && now >= retry_at) {
            if (add_watch(fs) == 0) {
                retry_at = -1;
                if (first < 0)
                    first = now;
                deadline = now; /* what changed while nobody watched is read now */
            } else {
                retry_at = now + WATCH_RETRY_MS;
            }
        }
        if (deadline >= 0 && now >= deadline) {
            first = deadline = -1;
            reload(fs);
        }
    }
    return NULL;
}

static int file_source_start(rm_source_t *src, rm_source_update_cb cb, void *arg)
{
    file_source_t *fs = FILE_SOURCE(src);
    sigset_t all, old;
    int ret;

    if (fs->running)
        return -EBUSY;
    if (cb == NULL)
        return -EINVAL;
    fs->cb = cb;
    fs->cb_arg = arg;
    if ((fs->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0 ||
        (fs->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        ret = -errno;
        goto Fail;
    }
    if ((ret = add_watch(fs)) != 0)
        goto Fail;
    /* the signals stay with the threads that handle them */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    ret = -pthread_create(&fs->thread, NULL, watch_main, fs);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ret != 0)
        goto Fail;
    fs->running = 1;
    return 0;

Fail:
    if (fs->inotify_fd >= 0)
        close(fs->inotify_fd);
    if (fs->stop_fd >= 0)
        close(fs->stop_fd);
    fs->inotify_fd = fs->stop_fd = fs->wd = -1;
    return ret;
}

static void file_source_stop(rm_source_t *src)
{
    file_source_t *fs = FILE_SOURCE(src);
    uint64_t one = 1;

    if (!fs->running)
        return;
    while (write(fs->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
    pthread_join(fs->thread, NULL);
    close(fs->inotify_fd);
    close(fs->stop_fd);
    fs->inotify_fd = fs->stop_fd = fs->wd = -1;
    fs->running = 0;
}

static void file_source_destroy(rm_source_t *src)
{
    file_source_t *fs;

    if (src == NULL)
        return;
    fs = FILE_SOURCE(src);
    file_source_stop(src);
    free(fs->dir);
    free(fs->version);
    free(fs);
}

static const rm_source_ops_t file_source_ops = {
    .name = "file",
    .start = file_source_start,
    .stop = file_source_stop,
    .destroy = file_source_destroy,
};

int rm_source_file_create(const char *dir, rm_source_t **out, rm_mesh_model_t **initial, char *err, size_t errlen)
{
    file_source_t *fs = NULL;
    rm_config_error_t *e = NULL;
    rm_mesh_model_t *m = NULL;
    size_t num_files = 0;
    int ret;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (dir == NULL || out == NULL || initial == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "(null): no configuration directory given");
        return RM_ERR_CONFIG_IO;
    }
    if ((e = malloc(sizeof(*e))) == NULL || (fs = calloc(1, sizeof(*fs))) == NULL || (fs->dir = strdup(dir)) == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: out of memory", dir);
        ret = -ENOMEM;
        goto Exit;
    }
    if ((ret = load_dir(dir, &m, e, &num_files)) != 0) {
        rm_config_error_format(e, err, errlen);
        goto Exit;
    }
    // NOLINTNEXTLINE(clang-analyzer-core.NullDereference): load_dir() sets m when it returns 0
    if ((fs->version = strdup(m->version)) == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: out of memory", dir);
        ret = -ENOMEM;
        goto Exit;
    }
    fs->super.ops = &file_source_ops;
    fs->inotify_fd = fs->stop_fd = fs->wd = -1;
    log_accepted(dir, m, num_files);
    *out = &fs->super;
    *initial = m;
    fs = NULL;
    m = NULL;

Exit:
    rm_mesh_model_unref(m);
    if (fs != NULL) {
        free(fs->dir);
        free(fs->version);
        free(fs);
    }
    free(e);
    return ret;
}
