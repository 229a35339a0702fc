#include <stdio.h>
#include <string.h>

#include "ctl.h"

static flag_t *find_flag(flag_t *flags, size_t num, const char *name, size_t name_len)
{
    size_t i;

    for (i = 0; i != num; ++i)
        if (strlen(flags[i].name) == name_len && memcmp(flags[i].name, name, name_len) == 0)
            return &flags[i];
    return NULL;
}

/* Parses argv[1..argc) into `flags`. Returns 0, 1 when --help was given, or -1 after printing the error. */
int rm__ctl_parse_flags(const char *group, const char *cmd, int argc, char **argv, flag_t *flags, size_t num)
{
    int i;

    for (i = 1; i < argc; ++i) {
        const char *arg = argv[i], *eq, *value = NULL;
        size_t name_len;
        flag_t *flag = NULL;

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return 1;
        if (arg[0] == '-' && arg[1] != '-' && arg[1] != '\0' && arg[2] == '\0') {
            for (size_t k = 0; k < num; k++) {
                if (flags[k].short_name == arg[1]) {
                    flag = &flags[k];
                    break;
                }
            }
            if (flag == NULL) {
                fprintf(stderr, "ringmeshctl %s%s%s: unknown flag '%s'\n", group, *group ? " " : "", cmd, arg);
                return -1;
            }
            eq = NULL;
            goto Found;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            fprintf(stderr, "ringmeshctl %s%s%s: unexpected argument '%s'\n", group, *group ? " " : "", cmd, arg);
            return -1;
        }
        eq = strchr(arg + 2, '=');
        name_len = eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if ((flag = find_flag(flags, num, arg + 2, name_len)) == NULL) {
            fprintf(stderr, "ringmeshctl %s%s%s: unknown flag '%.*s'\n", group, *group ? " " : "", cmd,
                    (int)(name_len + 2), arg);
            return -1;
        }
    Found:
        if (flag->takes_value) {
            if (eq != NULL) {
                value = eq + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                fprintf(stderr, "ringmeshctl %s%s%s: --%s needs a value\n", group, *group ? " " : "", cmd, flag->name);
                return -1;
            }
        } else if (eq != NULL) {
            fprintf(stderr, "ringmeshctl %s%s%s: --%s takes no value\n", group, *group ? " " : "", cmd, flag->name);
            return -1;
        } else {
            value = "";
        }
        if (flag->count != 0 && !flag->repeatable) {
            fprintf(stderr, "ringmeshctl %s%s%s: --%s given twice\n", group, *group ? " " : "", cmd, flag->name);
            return -1;
        }
        if (flag->count == RM_CTL_FLAG_MAX_VALUES) {
            fprintf(stderr, "ringmeshctl %s%s%s: --%s given more than %d times\n", group, *group ? " " : "", cmd,
                    flag->name, RM_CTL_FLAG_MAX_VALUES);
            return -1;
        }
        flag->values[flag->count++] = value;
        flag->value = value;
    }
    return 0;
}
