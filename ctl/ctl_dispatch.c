/* The dispatcher of ringmeshctl's command tables, and the help generated from them. */
#include <string.h>

#include "ctl.h"
#include "ringmesh/error.h"

static int is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 || strcmp(arg, "help") == 0;
}

/* The top level lists every command of every group with its summary, names aligned. */
static void help_of_groups(const rm_ctl_level_t *level, FILE *out)
{
    size_t i, j, width = 0;

    for (i = 0; i != level->num_commands; ++i) {
        const rm_ctl_level_t *g = level->commands[i].level;
        if (g == NULL && strlen(level->commands[i].name) > width)
            width = strlen(level->commands[i].name);
        for (j = 0; g != NULL && j != g->num_commands; ++j) {
            size_t n = strlen(level->commands[i].name) + 1 + strlen(g->commands[j].name);
            if (n > width)
                width = n;
        }
    }
    fprintf(out, "usage: %s <command> [options]\n\ncommands:\n", level->path);
    for (i = 0; i != level->num_commands; ++i) {
        const rm_ctl_level_t *g = level->commands[i].level;
        if (g == NULL) /* a command of the top level */
            fprintf(out, "  %s%*s%s\n", level->commands[i].name, (int)(width + 2 - strlen(level->commands[i].name)), "",
                    level->commands[i].summary);
        for (j = 0; g != NULL && j != g->num_commands; ++j) {
            const char *group = level->commands[i].name, *cmd = g->commands[j].name;
            fprintf(out, "  %s %s%*s%s\n", group, cmd, (int)(width + 2 - strlen(group) - 1 - strlen(cmd)), "",
                    g->commands[j].summary);
        }
    }
}

/* A group shows its commands' synopses, then what each does, the text indented past the longest name. */
static void help_of_commands(const rm_ctl_level_t *level, FILE *out)
{
    size_t i, width = 0;

    for (i = 0; i != level->num_commands; ++i) {
        fprintf(out, "%s%s\n", i == 0 ? "usage: " : "       ", level->commands[i].usage);
        if (strlen(level->commands[i].name) > width)
            width = strlen(level->commands[i].name);
    }
    fputc('\n', out);
    for (i = 0; i != level->num_commands; ++i) {
        const char *line = level->commands[i].help, *end;
        fprintf(out, "%-*s", (int)(width + 3), level->commands[i].name);
        for (;; line = end + 1) {
            end = strchr(line, '\n');
            fprintf(out, "%.*s\n", end != NULL ? (int)(end - line) : (int)strlen(line), line);
            if (end == NULL || end[1] == '\0')
                break;
            fprintf(out, "%*s", (int)(width + 3), "");
        }
    }
}

void rm__ctl_help(const rm_ctl_level_t *level, FILE *out)
{
    if (level->num_commands != 0 && level->commands[0].level != NULL)
        help_of_groups(level, out);
    else
        help_of_commands(level, out);
    if (level->footer != NULL)
        fprintf(out, "\n%s", level->footer);
}

// NOLINTNEXTLINE(misc-no-recursion): one call per level of the static command tree (two levels)
int rm__ctl_dispatch(const rm_ctl_level_t *level, int argc, char **argv)
{
    size_t i;

    if (argc < 2) {
        rm__ctl_help(level, stderr);
        return RM_CTL_EXIT_USAGE;
    }
    if (is_help(argv[1])) {
        rm__ctl_help(level, stdout);
        return RM_CTL_EXIT_OK;
    }
    for (i = 0; i != level->num_commands; ++i) {
        const rm_ctl_command_t *c = &level->commands[i];
        if (strcmp(argv[1], c->name) != 0)
            continue;
        return c->level != NULL ? rm__ctl_dispatch(c->level, argc - 1, argv + 1) : c->handler(argc - 1, argv + 1);
    }
    fprintf(stderr, "%s: unknown %s '%s'\n\n", level->path, level->noun, argv[1]);
    rm__ctl_help(level, stderr);
    return RM_CTL_EXIT_USAGE;
}

int rm__ctl_flags(const rm_ctl_level_t *level, int argc, char **argv, flag_t *flags, size_t num, int *status)
{
    const char *group = strchr(level->path, ' ') != NULL ? strchr(level->path, ' ') + 1 : level->path;
    int err;

    if ((err = rm__ctl_parse_flags(group, argv[0], argc, argv, flags, num)) == 0)
        return 0;
    if (err > 0) {
        rm__ctl_help(level, stdout);
        *status = RM_CTL_EXIT_OK;
    } else {
        fprintf(stderr, "run '%s --help' for usage\n", level->path);
        *status = RM_CTL_EXIT_USAGE;
    }
    return -1;
}

int rm__ctl_file_error(const char *path, const char *what, int err)
{
    fprintf(stderr, "ringmeshctl: %s: %s%s%s\n", path, what != NULL ? what : "", what != NULL ? ": " : "",
            rm_strerror(err));
    return RM_CTL_EXIT_USAGE;
}
