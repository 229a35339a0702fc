/* io_uring_probe: exits 0 when the calling process may create an io_uring, 1 (with the reason on stderr) when
 * not. The end-to-end tests run it as the proxy's UID to decide whether the io_uring variant can run at all
 * (kernel.io_uring_disabled, seccomp filters and old kernels all make io_uring_setup fail). */
#include <errno.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    struct io_uring_params params;
    long fd;

    memset(&params, 0, sizeof(params));
    if ((fd = syscall(__NR_io_uring_setup, 4, &params)) < 0) {
        fprintf(stderr, "io_uring_setup: %s\n", strerror(errno));
        return 1;
    }
    close((int)fd);
    return 0;
}
