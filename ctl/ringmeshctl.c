/* ringmeshctl: the operator CLI. This file dispatches to one function per top-level command. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "ringmesh/config.h"

#define MAX_FILE_SIZE (16u << 20)

static const char USAGE[] = "usage: ringmeshctl <command> [options]\n"
                            "\n"
                            "commands:\n"
                            "  svid verify   check an X.509-SVID against a trust bundle\n"
                            "  svid issue    make a root CA, or an X.509-SVID signed by a CA\n"
                            "  token keygen  make a JWT signing key and its JWKS\n"
                            "  token mint    make a token shaped like a Kubernetes ServiceAccount token\n"
                            "  policy lint   validate AuthorizationPolicy / PeerAuthentication files\n"
                            "  policy check  decide a request against policies, with the proxy's engine\n"
                            "\n"
                            "Run 'ringmeshctl <command> --help' for a command's options.\n"
                            "Exit status: 0 ok, 1 invalid input (e.g. an invalid SVID), 2 usage or file error,\n"
                            "3 denied (policy check).\n";

int rm__ctl_read_file(const char *path, char **data, size_t *len)
{
    /* keys are among the inputs: read as secrets, never left behind by a reallocation */
    return rm_file_read_at(AT_FDCWD, path, NULL, MAX_FILE_SIZE, RM_FILE_SECRET, data, len, NULL);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(USAGE, stderr);
        return RM_CTL_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(USAGE, stdout);
        return RM_CTL_EXIT_OK;
    }
    if (strcmp(argv[1], "svid") == 0)
        return rm__ctl_svid(argc - 1, argv + 1);
    if (strcmp(argv[1], "token") == 0)
        return rm__ctl_token(argc - 1, argv + 1);
    if (strcmp(argv[1], "policy") == 0)
        return rm__ctl_policy(argc - 1, argv + 1);
    fprintf(stderr, "ringmeshctl: unknown command '%s'\n\n%s", argv[1], USAGE);
    return RM_CTL_EXIT_USAGE;
}
