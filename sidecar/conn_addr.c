/* Socket address helpers of the connection (see conn_addr.h). */
#include "conn_addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <string.h>

/* A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; logs and policy see them as the IPv4 they are. */
void rm_sockaddr_unmap_v4(rm_sockaddr_t *a)
{
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;
    struct sockaddr_in s4;
    if (a->ss.ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
        return;
    memset(&s4, 0, sizeof(s4));
    s4.sin_family = AF_INET;
    s4.sin_port = s6->sin6_port;
    memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
    memcpy(&a->ss, &s4, sizeof(s4));
    a->len = sizeof(s4);
}

int rm_sockaddr_original_dst(int fd, rm_sockaddr_t *out)
{
    struct sockaddr_storage local;
    socklen_t len = sizeof(local);
    if (getsockname(fd, (struct sockaddr *)&local, &len) != 0)
        return -errno;
    out->len = sizeof(out->ss);
    // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): getsockname() filled local
    if (local.ss_family == AF_INET6) {
        /* a v4-mapped peer on a dual-stack socket went through iptables, not ip6tables */
        const struct sockaddr_in6 *l6 = (const struct sockaddr_in6 *)&local;
        if (IN6_IS_ADDR_V4MAPPED(&l6->sin6_addr)) {
            struct sockaddr_in sin;
            socklen_t sl = sizeof(sin);
            if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &sin, &sl) != 0)
                return -errno;
            memcpy(&out->ss, &sin, sizeof(sin));
            out->len = sizeof(sin);
            return 0;
        }
        if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &out->ss, &out->len) != 0)
            return -errno;
        return 0;
    }
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &out->ss, &out->len) != 0)
        return -errno;
    return 0;
}

uint16_t rm_sockaddr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return 0;
}

int rm_sockaddr_same(const rm_sockaddr_t *a, const struct sockaddr_storage *b)
{
    if (a->ss.ss_family != b->ss_family)
        return 0;
    if (b->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (b->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)&a->ss, *y = (const void *)b;
        return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
    }
    return 0;
}

void rm_sockaddr_ip16(const rm_sockaddr_t *a, uint8_t out[16], uint8_t *have)
{
    *have = 0;
    if (a->len == 0)
        return;
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &in->sin_addr, 4);
        *have = 1;
    } else if (a->ss.ss_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, 16);
        *have = 1;
    }
}

void rm_conn_addr_set(rm_conn_addr_t *a, const rm_sockaddr_t *from)
{
    memset(a, 0, sizeof(*a));
    if (from->ss.ss_family == AF_INET && from->len >= sizeof(struct sockaddr_in)) {
        memcpy(&a->ss.sin, &from->ss, sizeof(a->ss.sin));
        a->len = sizeof(a->ss.sin);
    } else if (from->ss.ss_family == AF_INET6 && from->len >= sizeof(struct sockaddr_in6)) {
        memcpy(&a->ss.sin6, &from->ss, sizeof(a->ss.sin6));
        a->len = sizeof(a->ss.sin6);
    }
}

rm_sockaddr_t rm_conn_addr_get(const rm_conn_addr_t *a)
{
    rm_sockaddr_t out;
    memset(&out, 0, sizeof(out));
    if (a->len != 0 && a->len <= sizeof(a->ss)) {
        memcpy(&out.ss, &a->ss, a->len);
        out.len = a->len;
    }
    return out;
}

uint16_t rm_conn_addr_port(const rm_conn_addr_t *a)
{
    if (a->len == 0)
        return 0;
    if (a->ss.ss_family == AF_INET)
        return ntohs(a->ss.sin.sin_port);
    if (a->ss.ss_family == AF_INET6)
        return ntohs(a->ss.sin6.sin6_port);
    return 0;
}
