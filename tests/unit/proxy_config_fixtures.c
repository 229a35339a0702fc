/* Fixtures shared by the proxy configuration loader's tests: see proxy_config_fixtures.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxy_config.h"
#include "ringmesh/error.h"
#include "proxy_config_fixtures.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

char tmp_dir[64];

int group_setup(void **state)
{
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/rm-test-config-XXXXXX");
    return mkdtemp(tmp_dir) == NULL ? -1 : 0;
}

int group_teardown(void **state)
{
    DIR *d = opendir(tmp_dir);
    struct dirent *e;
    char path[sizeof(tmp_dir) + 300];
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", tmp_dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(tmp_dir);
    return 0;
}

/* Writes `len` bytes to a new file in the test's directory and returns its path (static buffer). */
const char *write_tmp(const char *name, const void *data, size_t len)
{
    static char path[sizeof(tmp_dir) + 64];
    snprintf(path, sizeof(path), "%s/%.60s", tmp_dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path;
}

const char *write_tmp_str(const char *name, const char *text)
{
    return write_tmp(name, text, strlen(text));
}
rm_proxy_config_t *load_ok(const char *path)
{
    rm_proxy_config_t *cfg = NULL;
    char err[1024] = "unset";
    int ret = rm_proxy_config_load(path, &cfg, err, sizeof(err));
    if (ret != 0)
        fail_msg("loading %s failed (%d): %s", path, ret, err);
    assert_non_null(cfg);
    return cfg;
}

/* Loads `path`, which must fail with `code`; `err` receives the message. *out must stay untouched. */
void load_fail(const char *path, int code, char *err, size_t errlen)
{
    rm_proxy_config_t *sentinel = (rm_proxy_config_t *)(uintptr_t)0x1, *cfg = sentinel;
    int ret = rm_proxy_config_load(path, &cfg, err, errlen);
    if (ret != code)
        fail_msg("%s: want %d (%s), got %d: %s", path, code, rm_strerror(code), ret, err);
    assert_ptr_equal(cfg, sentinel);
}

void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("message \"%s\"\n  does not contain \"%s\"", haystack, needle);
}

/* Every error message of a parse or value error starts with "FILE:LINE:COLUMN: ". */
void assert_has_position(const char *path, const char *err)
{
    char pattern[512];
    regex_t re;
    const char *base = strrchr(path, '/') + 1;
    snprintf(pattern, sizeof(pattern), "^.*%s:[1-9][0-9]*:[1-9][0-9]*: [^ ]", base);
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int match = regexec(&re, err, 0, NULL, 0);
    regfree(&re);
    if (match != 0)
        fail_msg("message has no FILE:LINE:COL: prefix: %s", err);
}

uint16_t port_of(const rm_sockaddr_t *a)
{
    return ntohs(a->ss.ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)&a->ss)->sin6_port
                                             : ((const struct sockaddr_in *)&a->ss)->sin_port);
}

void assert_addr(const rm_sockaddr_t *a, int family, const char *ip, uint16_t port)
{
    char buf[INET6_ADDRSTRLEN];
    assert_int_equal(a->ss.ss_family, family);
    if (family == AF_INET) {
        assert_int_equal(a->len, sizeof(struct sockaddr_in));
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->ss)->sin_addr, buf, sizeof(buf));
    } else {
        assert_int_equal(a->len, sizeof(struct sockaddr_in6));
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, buf, sizeof(buf));
    }
    assert_string_equal(buf, ip);
    assert_int_equal(port_of(a), port);
}
