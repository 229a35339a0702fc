/* Small helpers the control plane's files share. */
#ifndef RINGMESH_CONTROL_UTIL_H
#define RINGMESH_CONTROL_UTIL_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ringmesh/config.h"

#define RM_CONTROL_MAX_FILE (4u << 20)

/** rm_file_read() with the control plane's size limit. */
static inline int rm__control_read_file(const char *path, char **data, size_t *len)
{
    return rm_file_read(path, RM_CONTROL_MAX_FILE, data, len);
}

/** The accept loop of the control plane's small servers (admin, webhook), run by each of their threads: calls
 *  `serve(arg, fd)` for every connection accepted on `listen_fd` (with `accept_flags`, e.g. SOCK_CLOEXEC) and closes
 *  it after, until `stop_fd` (an eventfd) becomes readable. Signals are blocked in the thread: the main thread takes
 *  them with sigwait(). */
static inline void rm__control_accept_loop(int listen_fd, int stop_fd, int accept_flags, void (*serve)(void *, int),
                                           void *arg)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        struct pollfd pfd[2] = {{listen_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[1].revents != 0)
            break;
        int c = accept4(listen_fd, NULL, NULL, accept_flags);
        if (c < 0)
            continue; /* another thread took it, or the peer left */
        serve(arg, c);
        close(c);
    }
}

#endif
