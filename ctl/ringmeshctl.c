/* ringmeshctl: the operator CLI. The top level of the command tables; each group lives in its own file. */
#include "ctl.h"
#include "ringmesh/config.h"

#include <fcntl.h>

#define MAX_FILE_SIZE (16u << 20)

static const rm_ctl_command_t groups[] = {
    {.name = "svid", .level = &rm__ctl_svid_level},
    {.name = "token", .level = &rm__ctl_token_level},
    {.name = "policy", .level = &rm__ctl_policy_level},
    {.name = "route", .level = &rm__ctl_route_level},
    {.name = "inject",
     .summary = "add the sidecar to the pods of a manifest stream, as the webhook does",
     .handler = rm__ctl_inject},
    {.name = "wait-ready",
     .summary = "wait until the proxy answers /healthz/ready (the classic sidecar's postStart hook)",
     .handler = rm__ctl_wait_ready},
    {.name = "stat",
     .summary = "requests/s, success, p50/p99, denies/s and mTLS share per workload, live (from proxies or Prometheus)",
     .handler = rm__ctl_stat},
};

static const rm_ctl_level_t top = {
    .path = "ringmeshctl",
    .noun = "command",
    .footer = "Run 'ringmeshctl <command> --help' for a command's options.\n"
              "Exit status: 0 ok, 1 invalid input (e.g. an invalid SVID) or an endpoint that could not be read\n"
              "(stat), 2 usage or file error, 3 denied (policy check) or not routed (route check).\n",
    .commands = groups,
    .num_commands = sizeof(groups) / sizeof(groups[0]),
};

int rm__ctl_read_file(const char *path, char **data, size_t *len)
{
    /* keys are among the inputs: read as secrets, never left behind by a reallocation */
    return rm_file_read_at(AT_FDCWD, path, NULL, MAX_FILE_SIZE, RM_FILE_SECRET, data, len, NULL);
}

int main(int argc, char **argv)
{
    return rm__ctl_dispatch(&top, argc, argv);
}
