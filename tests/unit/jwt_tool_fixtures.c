/* Fixtures: tests/e2e/tools/jwt_tool.py run from the unit tests (jwt_tool_fixtures.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwt_tool_fixtures.h"

#define TOOL "python3 " RM_TEST_DATA_DIR "/../e2e/tools/jwt_tool.py "

char *jwt_tool(const char *fmt, ...)
{
    char cmd[4096];
    size_t cap = 1 << 16, n = 0, r;
    char *out;
    FILE *f;
    va_list ap;
    int len;

    memcpy(cmd, TOOL, sizeof(TOOL));
    va_start(ap, fmt);
    len = vsnprintf(cmd + sizeof(TOOL) - 1, sizeof(cmd) - sizeof(TOOL) + 1, fmt, ap);
    va_end(ap);
    assert_true(len >= 0 && (size_t)len < sizeof(cmd) - sizeof(TOOL) + 1);
    assert_non_null(f = popen(cmd, "r"));
    assert_non_null(out = malloc(cap));
    while ((r = fread(out + n, 1, cap - 1 - n, f)) > 0)
        n += r;
    assert_int_equal(pclose(f), 0);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        n--;
    out[n] = '\0';
    return out;
}

int jwt_tool_setup(char dir[64], const char *specs, jwt_tool_parse_cb parse, rm_jwt_keyset_t **ks)
{
    char err[256], *doc;
    int ret;

    *ks = NULL;
    strcpy(dir, "/tmp/rm-jwt-tool-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    free(jwt_tool("keys %s", dir));
    doc = jwt_tool("jwks %s %s", dir, specs);
    if ((ret = parse(doc, strlen(doc), ks, err, sizeof(err))) != 0)
        fprintf(stderr, "JWKS: %s\n", err);
    free(doc);
    return ret == 0 ? 0 : -1;
}

int jwt_tool_teardown(const char *dir, rm_jwt_keyset_t *ks)
{
    char cmd[128];

    rm_jwt_keyset_free(ks);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}
