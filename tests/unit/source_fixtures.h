/* Fixtures shared by the control plane file source's tests (test_source_file_*.c): loading a directory that must load
 * or must fail, finding what the model holds, files and directories under a temporary root made per test group,
 * the log captured through a pipe, and a collector of the models a watching source hands over. Helpers fail the
 * running cmocka test on what they do not expect. */
#ifndef RM_TEST_SOURCE_FIXTURES_H
#define RM_TEST_SOURCE_FIXTURES_H

#include <pthread.h>
#include <stddef.h>

#include "mesh_model_internal.h"

#define DATA_DIR     RM_TEST_DATA_DIR "/source/"
#define WAIT_SECONDS 60 /* a correctness wait: how long an expected event may take before the test fails */

/** Fails the test unless `haystack` contains `needle`. */
void assert_contains(const char *haystack, const char *needle);

/** Loads `dir`, which must load; the model (one reference) belongs to the caller. */
rm_mesh_model_t *load_ok(const char *dir);

/** Loads `dir`, which must fail with `code` (the message in `err`); *out must stay untouched. */
void load_fail(const char *dir, int code, char *err, size_t errlen);

/** The service `ns`/`name` of the model; fails the test when there is none. */
const rm_model_service_t *find_service(const rm_mesh_model_t *m, const char *ns, const char *name);

/** The string arrays are equal, element by element. */
void assert_strings(char *const *got, size_t num, const char *const *want, size_t num_want);

/** Writes `text` to `path` (created or truncated). */
void write_file(const char *path, const char *text);

/** Writes `text` to dir/.name.tmp, then renames it over dir/name: how editors and tools replace a file. */
void replace_file(const char *dir, const char *name, const char *text);

/** The whole file at `path`, NUL-terminated, in memory the caller frees. */
char *read_text(const char *path);

/** Copies the regular files of `src` into `dst` (created); visible names get `prefix`. */
void copy_dir(const char *src, const char *dst, const char *prefix);

/** Removes `path` and everything under it (symlinks are removed, not followed). */
void remove_tree(const char *path);

/** A fresh directory `name` under the group's temporary root; its path in `buf`, which it returns. */
const char *tmp_dir(const char *name, char *buf, size_t len);

/** Drops what was logged so far. Every source of an earlier test has been destroyed (its thread joined), so
 * nothing older can arrive after this. */
void log_drain(void);

/** Waits (at most WAIT_SECONDS) for the next log line whose event is `event` and copies it to `line`; earlier lines
 * are dropped. */
void wait_log_event(const char *event, char *line, size_t linelen);

#define MAX_UPDATES 16

/** The models a source hands to on_update(), in order (the first MAX_UPDATES kept). */
typedef struct st_collector_t {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    rm_mesh_model_t *models[MAX_UPDATES];
    size_t num;
} collector_t;

/** An empty collector. */
void collector_init(collector_t *c);

/** Drops the models kept and the collector's locks. */
void collector_dispose(collector_t *c);

/** The source's update callback: `arg` is the collector, which takes the model. */
void on_update(void *arg, rm_mesh_model_t *model);

/** How many updates have arrived. */
size_t collector_count(collector_t *c);

/** Waits (at most WAIT_SECONDS) until the n-th update (1-based) has arrived and returns its model (owned by the
 * collector). */
rm_mesh_model_t *wait_update(collector_t *c, size_t n);

/** The cmocka group setup: the temporary root and the log captured through a pipe. */
int group_setup(void **state);

/** The cmocka group teardown: the log back on stdout, the temporary root removed. */
int group_teardown(void **state);

#endif
