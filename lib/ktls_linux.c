/* Linux kernel TLS (kTLS): the socket side of rm_tls_ktls_* (see ringmesh/tls.h). No wolfSSL here: the session's
 * keys come in an rm__ktls_keys_t from tls_wolfssl.c.
 *
 * The kernel's interface (Documentation/networking/tls.rst): setsockopt(TCP_ULP, "tls") on an established TCP
 * socket, then setsockopt(SOL_TLS, TLS_TX / TLS_RX) with a crypto-info structure per direction. After that, send
 * and recv carry plaintext and the kernel seals and opens the records. A record that is not application data is
 * sent with a TLS_SET_RECORD_TYPE control message; receiving one without room for the TLS_GET_RECORD_TYPE control
 * message fails with EIO and leaves the record queued. */
#include "ringmesh/buffer_pool.h"
#include "ringmesh/error.h"
#include "ringmesh/tls.h"
#include "tls_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

#define RECORD_ALERT     21
#define RECORD_HANDSHAKE 22
#define RECORD_DATA      23

int rm_tls_ktls_attach(int fd)
{
    static const char ulp[] = "tls";
    if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, ulp, sizeof(ulp) - 1) != 0)
        return -errno;
    return 0;
}

int rm_tls_ktls_probe(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int lfd = -1, cfd = -1, afd = -1, ret;

    if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0 ||
        (cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(cfd, (struct sockaddr *)&a, sizeof(a)) != 0 || (afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
        ret = -errno;
        goto Exit;
    }
    ret = rm_tls_ktls_attach(cfd);
Exit:
    if (afd >= 0)
        close(afd);
    if (cfd >= 0)
        close(cfd);
    if (lfd >= 0)
        close(lfd);
    return ret;
}

static void put_seq(uint8_t out[8], uint64_t seq)
{
    for (int i = 7; i >= 0; i--, seq >>= 8)
        out[i] = (uint8_t)seq;
}

/* What the kernel's crypto-info structures of every cipher share: version, cipher, key and sequence number (the
 * static IV's layout differs, and is filled by the caller). */
#define FILL_INFO(ci, cipher, k)                                                                                       \
    do {                                                                                                               \
        (ci).info.version = TLS_1_3_VERSION;                                                                           \
        (ci).info.cipher_type = (cipher);                                                                              \
        memcpy((ci).key, (k)->key, sizeof((ci).key));                                                                  \
        put_seq((ci).rec_seq, (k)->seq);                                                                               \
    } while (0)
/* AES-GCM: the static IV as a 4-byte salt and an 8-byte iv. */
#define FILL_GCM(ci, cipher, k)                                                                                        \
    do {                                                                                                               \
        FILL_INFO(ci, cipher, k);                                                                                      \
        memcpy((ci).salt, (k)->iv, 4);                                                                                 \
        memcpy((ci).iv, (k)->iv + 4, 8);                                                                               \
    } while (0)

int rm__ktls_install(int fd, int rx, const rm__ktls_keys_t *k)
{
    /* TLS 1.3 puts the whole 12-byte static IV in the nonce: the kernel's AES-GCM structures split it into a 4-byte
     * salt and an 8-byte iv, the ChaCha20-Poly1305 one takes it whole. */
    union {
        struct tls12_crypto_info_aes_gcm_128 gcm128;
        struct tls12_crypto_info_aes_gcm_256 gcm256;
        struct tls12_crypto_info_chacha20_poly1305 chacha;
    } ci;
    socklen_t len;
    int ret = 0;

    memset(&ci, 0, sizeof(ci));
    switch (k->cipher) {
    case TLS_CIPHER_AES_GCM_128:
        if (k->key_len != sizeof(ci.gcm128.key))
            return -EINVAL;
        FILL_GCM(ci.gcm128, k->cipher, k);
        len = sizeof(ci.gcm128);
        break;
    case TLS_CIPHER_AES_GCM_256:
        if (k->key_len != sizeof(ci.gcm256.key))
            return -EINVAL;
        FILL_GCM(ci.gcm256, k->cipher, k);
        len = sizeof(ci.gcm256);
        break;
    case TLS_CIPHER_CHACHA20_POLY1305:
        if (k->key_len != sizeof(ci.chacha.key))
            return -EINVAL;
        FILL_INFO(ci.chacha, k->cipher, k);
        memcpy(ci.chacha.iv, k->iv, 12);
        len = sizeof(ci.chacha);
        break;
    default:
        return -EOPNOTSUPP;
    }
    if (setsockopt(fd, SOL_TLS, rx ? TLS_RX : TLS_TX, &ci, len) != 0)
        ret = -errno;
    explicit_bzero(&ci, sizeof(ci));
    return ret;
}

int rm_tls_ktls_close_notify(int fd)
{
    static const uint8_t alert[2] = {1 /* warning */, 0 /* close_notify */};
    uint8_t type = RECORD_ALERT;
    union {
        char buf[CMSG_SPACE(sizeof(uint8_t))];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = {.iov_base = (void *)alert, .iov_len = sizeof(alert)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

    memset(&cbuf, 0, sizeof(cbuf));
    cm->cmsg_level = SOL_TLS;
    cm->cmsg_type = TLS_SET_RECORD_TYPE;
    cm->cmsg_len = CMSG_LEN(sizeof(type));
    memcpy(CMSG_DATA(cm), &type, sizeof(type));
    ssize_t n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0)
        return -errno;
    return n == (ssize_t)sizeof(alert) ? 0 : -EAGAIN;
}

/* Every handshake message in `p` is a NewSessionTicket (type 4): a ticket for resumption, which this client never
 * uses. Anything else after the handshake (KeyUpdate above all) needs a record layer the kernel does not give. */
static int only_tickets(const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (n < 4 || p[0] != 4)
            return 0;
        size_t len = (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        if (len > n - 4)
            return 0;
        p += 4 + len;
        n -= 4 + len;
    }
    return 1;
}

int rm__ktls_read_control(int fd, int *alert)
{
    union {
        char buf[CMSG_SPACE(sizeof(uint8_t))];
        struct cmsghdr align;
    } cbuf;
    uint8_t *data = rm_buf_get();
    struct iovec iov = {.iov_base = data, .iov_len = RM_BUF_SIZE};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf)};
    int ret;

    *alert = -1;
    if (data == NULL)
        return RM_ERR_TLS_NO_MEMORY;
    /* Look first: application data at the head is the caller's to receive, not ours to drop. */
    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_PEEK);
    if (n < 0) {
        ret = errno == EAGAIN ? RM_ERR_TLS_WANT_IO : -errno;
        goto Exit;
    }
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    if (n == 0 || cm == NULL || cm->cmsg_level != SOL_TLS || cm->cmsg_type != TLS_GET_RECORD_TYPE ||
        *CMSG_DATA(cm) == RECORD_DATA) {
        ret = RM_ERR_TLS_WANT_IO;
        goto Exit;
    }
    uint8_t type = *CMSG_DATA(cm);
    msg.msg_controllen = sizeof(cbuf.buf);
    if ((n = recvmsg(fd, &msg, MSG_DONTWAIT)) < 0) {
        ret = -errno;
        goto Exit;
    }
    if (type == RECORD_ALERT && n == 2) {
        *alert = data[1];
        ret = data[1] == 0 ? 0 : RM_ERR_TLS_PROTOCOL; /* close_notify ends the stream; any other alert breaks it */
    } else if (type == RECORD_HANDSHAKE && only_tickets(data, (size_t)n)) {
        ret = RM_ERR_TLS_WANT_IO;
    } else {
        ret = RM_ERR_TLS_PROTOCOL;
    }
Exit:
    rm_buf_put(data);
    return ret;
}
