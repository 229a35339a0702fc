/* The unverifying TLS client of the proxy's HTTPS app probes (ringmesh/tls_probe.h), over wolfSSL's own socket I/O. */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "ringmesh/tls_probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct st_rm_tls_probe_t {
    WOLFSSL_CTX *ctx;
    WOLFSSL *ssl;
    int fd;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* After a WANT_READ/WANT_WRITE: waits for the socket until the deadline. Returns 0 or a negative error. */
static int wait_io(rm_tls_probe_t *t, int ret, uint64_t deadline_ms)
{
    int e = wolfSSL_get_error(t->ssl, ret);
    struct pollfd pfd = {.fd = t->fd};
    uint64_t now = now_ms();
    if (e == WOLFSSL_ERROR_WANT_READ)
        pfd.events = POLLIN;
    else if (e == WOLFSSL_ERROR_WANT_WRITE)
        pfd.events = POLLOUT;
    else
        return e == WOLFSSL_ERROR_ZERO_RETURN ? -EPIPE : -EPROTO;
    if (now >= deadline_ms)
        return -ETIMEDOUT;
    int n = poll(&pfd, 1, (int)(deadline_ms - now));
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    return n == 0 ? -ETIMEDOUT : 0;
}

int rm_tls_probe_open(int fd, const char *sni, uint64_t deadline_ms, rm_tls_probe_t **out, char *why, size_t whylen)
{
    rm_tls_probe_t *t = calloc(1, sizeof(*t));
    unsigned char addr[16];
    int ret;

    if (t == NULL) {
        ret = -ENOMEM;
        snprintf(why, whylen, "out of memory");
        goto Exit;
    }
    t->fd = fd;
    if ((t->ctx = wolfSSL_CTX_new(wolfSSLv23_client_method())) == NULL || (t->ssl = wolfSSL_new(t->ctx)) == NULL) {
        ret = -ENOMEM;
        snprintf(why, whylen, "TLS client could not be created");
        goto Exit;
    }
    /* the kubelet's prober does not verify the app's certificate (InsecureSkipVerify); neither does this */
    wolfSSL_set_verify(t->ssl, WOLFSSL_VERIFY_NONE, NULL);
    wolfSSL_set_fd(t->ssl, fd);
    wolfSSL_set_using_nonblock(t->ssl, 1);
    if (sni != NULL && inet_pton(AF_INET, sni, addr) != 1 && inet_pton(AF_INET6, sni, addr) != 1)
        wolfSSL_UseSNI(t->ssl, WOLFSSL_SNI_HOST_NAME, sni, (unsigned short)strlen(sni));
    for (;;) {
        int r = wolfSSL_connect(t->ssl);
        if (r == WOLFSSL_SUCCESS)
            break;
        if ((ret = wait_io(t, r, deadline_ms)) != 0) {
            char buf[WOLFSSL_MAX_ERROR_SZ];
            if (ret == -ETIMEDOUT)
                snprintf(why, whylen, "TLS handshake timed out");
            else
                snprintf(why, whylen, "TLS handshake failed: %s",
                         wolfSSL_ERR_error_string((unsigned long)wolfSSL_get_error(t->ssl, r), buf));
            goto Exit;
        }
    }
    *out = t;
    t = NULL;
    ret = 0;
Exit:
    rm_tls_probe_free(t);
    return ret;
}

int rm_tls_probe_write(rm_tls_probe_t *t, const void *buf, size_t len, uint64_t deadline_ms)
{
    size_t done = 0;
    while (done < len) {
        int r = wolfSSL_write(t->ssl, (const char *)buf + done, (int)(len - done)), ret;
        if (r > 0) {
            done += (size_t)r;
            continue;
        }
        if ((ret = wait_io(t, r, deadline_ms)) != 0)
            return ret;
    }
    return 0;
}

ssize_t rm_tls_probe_read(rm_tls_probe_t *t, void *buf, size_t len, uint64_t deadline_ms)
{
    for (;;) {
        int r = wolfSSL_read(t->ssl, buf, (int)len), ret;
        if (r > 0)
            return r;
        if (wolfSSL_get_error(t->ssl, r) == WOLFSSL_ERROR_ZERO_RETURN)
            return 0;
        if ((ret = wait_io(t, r, deadline_ms)) != 0)
            return ret == -EPROTO && r == 0 ? 0 : ret;
    }
}

void rm_tls_probe_free(rm_tls_probe_t *t)
{
    if (t == NULL)
        return;
    if (t->ssl != NULL)
        wolfSSL_free(t->ssl);
    if (t->ctx != NULL)
        wolfSSL_CTX_free(t->ctx);
    free(t);
}
