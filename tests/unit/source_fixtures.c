/* Fixtures shared by the control plane file source's tests: see source_fixtures.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mesh_model_internal.h"
#include "source.h"
#include "source_fixtures.h"

#include "ringmesh/digest.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------------------------------ */

void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("\"%s\"\n  does not contain \"%s\"", haystack, needle);
}

rm_mesh_model_t *load_ok(const char *dir)
{
    rm_mesh_model_t *m = NULL;
    char err[2048] = "unset";
    int ret = rm_mesh_model_load_dir(dir, &m, err, sizeof(err));
    if (ret != 0)
        fail_msg("loading %s failed (%d): %s", dir, ret, err);
    assert_non_null(m);
    assert_int_equal(m->refcnt, 1);
    return m;
}

/* Loads `dir`, which must fail with `code`; *out must stay untouched. */
void load_fail(const char *dir, int code, char *err, size_t errlen)
{
    rm_mesh_model_t *sentinel = (rm_mesh_model_t *)(uintptr_t)0x1, *m = sentinel;
    int ret = rm_mesh_model_load_dir(dir, &m, err, errlen);
    if (ret != code)
        fail_msg("%s: want %d (%s), got %d: %s", dir, code, rm_strerror(code), ret, err);
    assert_ptr_equal(m, sentinel);
}

const rm_model_service_t *find_service(const rm_mesh_model_t *m, const char *ns, const char *name)
{
    for (size_t i = 0; i < m->num_services; i++)
        if (strcmp(m->services[i].namespace_, ns) == 0 && strcmp(m->services[i].name, name) == 0)
            return &m->services[i];
    fail_msg("service %s/%s is not in the model", ns, name);
    return NULL;
}

void assert_strings(char *const *got, size_t num, const char *const *want, size_t num_want)
{
    assert_int_equal(num, num_want);
    for (size_t i = 0; i < num; i++)
        assert_string_equal(got[i], want[i]);
}

static char tmp_root[64];

void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        fail_msg("cannot create %s: %s", path, strerror(errno));
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* Writes `text` to dir/.name.tmp, then renames it over dir/name: how editors and tools replace a file. */
void replace_file(const char *dir, const char *name, const char *text)
{
    char tmp[512], path[512];
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    write_file(tmp, text);
    assert_int_equal(rename(tmp, path), 0);
}

char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (f == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Copies the regular files of `src` into `dst` (created); visible names get `prefix`. */
void copy_dir(const char *src, const char *dst, const char *prefix)
{
    DIR *d = opendir(src);
    struct dirent *e;
    assert_non_null(d);
    mkdir(dst, 0755);
    while ((e = readdir(d)) != NULL) {
        char from[512], to[512];
        struct stat st;
        snprintf(from, sizeof(from), "%s/%s", src, e->d_name);
        if (stat(from, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        snprintf(to, sizeof(to), "%s/%s%s", dst, e->d_name[0] == '.' ? "" : prefix, e->d_name);
        char *text = read_text(from);
        write_file(to, text);
        free(text);
    }
    closedir(d);
}

/* Removes `path` and everything under it (symlinks are removed, not followed). */
void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            char sub[512];
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            remove_tree(sub);
        }
        if (d != NULL)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* A fresh directory under the test's temporary root. */
const char *tmp_dir(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", tmp_root, name);
    remove_tree(buf);
    assert_int_equal(mkdir(buf, 0755), 0);
    return buf;
}

/* ---- log capture -------------------------------------------------------------------------------------------- */

static int log_pipe[2] = {-1, -1};
static char log_buf[1 << 16];
static size_t log_len;

/* Drops what was logged so far. Every source of an earlier test has been destroyed (its thread joined), so
 * nothing older can arrive after this. */
void log_drain(void)
{
    while (read(log_pipe[0], log_buf, sizeof(log_buf)) > 0)
        ;
    log_len = 0;
}

/* Waits for the next log line whose event is `event` and copies it to `line`; earlier lines are dropped. */
void wait_log_event(const char *event, char *line, size_t linelen)
{
    char needle[96];
    struct timespec start, now;

    snprintf(needle, sizeof(needle), "\"event\":\"%s\"", event);
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        char *nl;
        while ((nl = memchr(log_buf, '\n', log_len)) != NULL) {
            size_t n = (size_t)(nl - log_buf) + 1;
            int found = memmem(log_buf, n, needle, strlen(needle)) != NULL;
            if (found) {
                snprintf(line, linelen, "%.*s", (int)n - 1, log_buf);
            }
            memmove(log_buf, log_buf + n, log_len - n);
            log_len -= n;
            if (found)
                return;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > WAIT_SECONDS)
            fail_msg("no \"%s\" log line within %d s", event, WAIT_SECONDS);
        struct pollfd pfd = {.fd = log_pipe[0], .events = POLLIN};
        if (poll(&pfd, 1, 1000) > 0) {
            ssize_t r = read(log_pipe[0], log_buf + log_len, sizeof(log_buf) - log_len);
            if (r > 0)
                log_len += (size_t)r;
        }
        if (log_len == sizeof(log_buf))
            fail_msg("log line longer than the capture buffer");
    }
}

/* ---- update collector --------------------------------------------------------------------------------------- */

void collector_init(collector_t *c)
{
    pthread_condattr_t attr;
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->mutex, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &attr);
    pthread_condattr_destroy(&attr);
}

void collector_dispose(collector_t *c)
{
    for (size_t i = 0; i < c->num && i < MAX_UPDATES; i++)
        rm_mesh_model_unref(c->models[i]);
    pthread_mutex_destroy(&c->mutex);
    pthread_cond_destroy(&c->cond);
}

void on_update(void *arg, rm_mesh_model_t *model)
{
    collector_t *c = arg;
    pthread_mutex_lock(&c->mutex);
    if (c->num < MAX_UPDATES)
        c->models[c->num] = model;
    else
        rm_mesh_model_unref(model);
    c->num++;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mutex);
}

size_t collector_count(collector_t *c)
{
    pthread_mutex_lock(&c->mutex);
    size_t n = c->num;
    pthread_mutex_unlock(&c->mutex);
    return n;
}

/* Waits until the n-th update (1-based) has arrived and returns its model (owned by the collector). */
rm_mesh_model_t *wait_update(collector_t *c, size_t n)
{
    struct timespec deadline;
    rm_mesh_model_t *m;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += WAIT_SECONDS;
    pthread_mutex_lock(&c->mutex);
    while (c->num < n)
        if (pthread_cond_timedwait(&c->cond, &c->mutex, &deadline) == ETIMEDOUT)
            break;
    size_t got = c->num;
    m = n <= MAX_UPDATES && got >= n ? c->models[n - 1] : NULL;
    pthread_mutex_unlock(&c->mutex);
    if (got < n)
        fail_msg("update %zu did not arrive within %d s (got %zu)", n, WAIT_SECONDS, got);
    return m;
}

int group_setup(void **state)
{
    snprintf(tmp_root, sizeof(tmp_root), "/tmp/rm-test-source-XXXXXX");
    if (mkdtemp(tmp_root) == NULL || pipe2(log_pipe, O_CLOEXEC) != 0)
        return -1;
    fcntl(log_pipe[0], F_SETFL, O_NONBLOCK);
    fcntl(log_pipe[1], F_SETPIPE_SZ, 1 << 20);
    rm_log_configure(RM_LOG_DEBUG, log_pipe[1]);
    return 0;
}

int group_teardown(void **state)
{
    rm_log_configure(RM_LOG_INFO, 1);
    close(log_pipe[0]);
    close(log_pipe[1]);
    remove_tree(tmp_root);
    return 0;
}
