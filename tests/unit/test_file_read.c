/* rm_file_read: a whole file, NUL-terminated, up to its size limit and not a byte more. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ringmesh/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/rm-file-read-test-XXXXXX";

/* Writes `size` bytes of a known pattern to dir/name and returns the path (static storage). */
static const char *write_file(const char *name, size_t size)
{
    static char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_non_null(f = fopen(path, "wb"));
    for (size_t i = 0; i != size; ++i)
        assert_int_not_equal(fputc('a' + (int)(i % 26), f), EOF);
    assert_int_equal(fclose(f), 0);
    return path;
}

static void expect_read(const char *path, size_t max, size_t size)
{
    char *data = NULL;
    size_t len = 99;

    assert_int_equal(rm_file_read(path, max, &data, &len), 0);
    assert_non_null(data);
    assert_int_equal(len, size);
    assert_int_equal(data[len], '\0');
    for (size_t i = 0; i != size; ++i)
        assert_int_equal(data[i], 'a' + (int)(i % 26));
    free(data);
}

static void test_whole_file(void **state)
{
    (void)state;
    expect_read(write_file("empty", 0), 100, 0);
    expect_read(write_file("small", 10), 100, 10);
    expect_read(write_file("large", 300000), 1 << 20, 300000); /* many reads, many growths */
}

/* The limit is the file's size: exactly `max` bytes are read, whatever the buffer's growth steps; one more is
 * -EFBIG. (A file a little under the limit, such as 9000 bytes with max 10000, was once refused.) */
static void test_limit(void **state)
{
    char *data = NULL;
    size_t len = 0;
    (void)state;

    expect_read(write_file("under", 9000), 10000, 9000);
    expect_read(write_file("exact", 10000), 10000, 10000);
    assert_int_equal(rm_file_read(write_file("over", 10001), 10000, &data, &len), -EFBIG);
    assert_null(data);
    assert_int_equal(rm_file_read(write_file("far-over", 100000), 10000, &data, &len), -EFBIG);
    expect_read(write_file("limit-at-chunk", 8191), 8191, 8191);
    expect_read(write_file("limit-past-chunk", 8192), 8192, 8192);
}

static void test_missing(void **state)
{
    char path[256], *data = NULL;
    size_t len = 0;
    (void)state;

    snprintf(path, sizeof(path), "%s/absent", dir);
    assert_int_equal(rm_file_read(path, 100, &data, &len), -ENOENT);
    assert_null(data);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_file),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
