/* Replays committed corpus files through one fuzz target, for builds without libFuzzer (any compiler).
 *
 *   replay_<name> PATH...
 *
 * Every PATH is a corpus directory (each regular file in it, dot files excepted, is one input; files run in name
 * order so that a failure reproduces the same way) or a single input file. Each input is read into a heap buffer
 * of exactly its size, so that a target reading past the end trips AddressSanitizer. Prints how many inputs ran.
 * Exits 0 when every input ran; 1 when a path is missing, unreadable or an empty directory. A broken invariant or a
 * sanitizer report aborts the process instead, after naming the input on stderr. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/** libFuzzer calls this once before the first input when a target defines it; so does the replayer. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* The sanitizer runtimes call this just before they end the process on a report (absent without sanitizers). */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static const char *current_input;

/* Async-signal-safe: only write(2) and a precomputed string. */
static void name_current_input(void)
{
    static const char prefix[] = "replay: failing input: ";
    size_t len;

    if (current_input == NULL)
        return;
    len = strlen(current_input);
    if (write(STDERR_FILENO, prefix, sizeof(prefix) - 1) < 0 || write(STDERR_FILENO, current_input, len) < 0 ||
        write(STDERR_FILENO, "\n", 1) < 0)
        return;
}

static void on_fatal_signal(int sig)
{
    name_current_input();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int read_input(const char *path, uint8_t **out, size_t *out_len)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t len = 0;
    int fd, ret;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        ret = -errno;
        goto Exit;
    }
    if (fstat(fd, &st) != 0) {
        ret = -errno;
        goto Exit;
    }
    if (!S_ISREG(st.st_mode)) {
        ret = -EINVAL;
        goto Exit;
    }
    /* exactly the file's size: one byte more would hide an over-read of one byte */
    if ((buf = malloc(st.st_size != 0 ? (size_t)st.st_size : 1)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    while (len != (size_t)st.st_size) {
        ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            ret = n < 0 ? -errno : -EIO; /* the file shrank while being read */
            goto Exit;
        }
        len += (size_t)n;
    }
    *out = buf;
    *out_len = len;
    buf = NULL;
    ret = 0;

Exit:
    free(buf);
    if (fd >= 0)
        close(fd);
    return ret;
}

static int run_file(const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int ret;

    if ((ret = read_input(path, &data, &len)) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(-ret));
        return ret;
    }
    current_input = path;
    LLVMFuzzerTestOneInput(data, len);
    current_input = NULL;
    free(data);
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of `dir` in name order; adds the count to *num_run. */
static int run_dir(const char *dir, size_t *num_run)
{
    DIR *d;
    struct dirent *e;
    char **names = NULL, **grown, *path = NULL;
    size_t num = 0, cap = 0, i, n = 0;
    int ret = 0;

    if ((d = opendir(dir)) == NULL) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -errno;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (num == cap) {
            cap = cap == 0 ? 64 : cap * 2;
            if ((grown = realloc(names, cap * sizeof(*names))) == NULL) {
                ret = -ENOMEM;
                goto Exit;
            }
            names = grown;
        }
        if ((names[num] = strdup(e->d_name)) == NULL) {
            ret = -ENOMEM;
            goto Exit;
        }
        ++num;
    }
    if (num != 0)
        qsort(names, num, sizeof(*names), compare_names);
    for (i = 0; i != num; ++i) {
        struct stat st;
        free(path);
        if ((path = malloc(strlen(dir) + strlen(names[i]) + 2)) == NULL) {
            ret = -ENOMEM;
            goto Exit;
        }
        sprintf(path, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", names[i]);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue; /* subdirectories and the like are not inputs */
        if ((ret = run_file(path)) != 0)
            goto Exit;
        ++n;
    }
    if (n == 0) {
        fprintf(stderr, "replay: %s: no input files: an empty corpus tests nothing\n", dir);
        ret = -ENOENT;
        goto Exit;
    }
    printf("replay: ran %zu inputs from %s\n", n, dir);
    *num_run += n;

Exit:
    free(path);
    for (i = 0; i != num; ++i)
        free(names[i]);
    free(names);
    closedir(d);
    return ret;
}

int main(int argc, char **argv)
{
    size_t num_run = 0;
    int i;

    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    /* RM_FUZZ_CHECK aborts, and so does UBSan with abort_on_error=1 (the ctest environment sets it). The sanitizers
     * handle the other fatal signals themselves (replacing their handlers would lose their reports); ASan calls the
     * death callback. */
    signal(SIGABRT, on_fatal_signal);
    if (__sanitizer_set_death_callback != NULL) {
        __sanitizer_set_death_callback(name_current_input);
    } else {
        signal(SIGSEGV, on_fatal_signal);
        signal(SIGBUS, on_fatal_signal);
        signal(SIGFPE, on_fatal_signal);
    }
    if (LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);

    for (i = 1; i < argc; ++i) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            if (run_dir(argv[i], &num_run) != 0)
                return 1;
        } else {
            if (run_file(argv[i]) != 0)
                return 1;
            ++num_run;
        }
    }
    printf("replay: %zu inputs ran without a failure\n", num_run);
    return 0;
}
