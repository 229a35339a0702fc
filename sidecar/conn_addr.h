/* Socket addresses as the connection sees them: the original destination of a redirected connection, IPv4 peers of
 * dual-stack listeners, ports, and the 16-byte form policies match addresses in. No I/O but getsockname/getsockopt. */
#ifndef RINGMESH_CONN_ADDR_H
#define RINGMESH_CONN_ADDR_H

#include "proxy_config.h"

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

/** An address a connection keeps (its client, original destination, target): IPv4 or IPv6 at that family's size,
 *  32 bytes, where an rm_sockaddr_t keeps a whole sockaddr_storage (136) for what configuration may hold. `ss` reads
 *  as a sockaddr_storage does for what a connection asks of it (ss.ss_family; &ss as a struct sockaddr *, of length
 *  len), and len is 0 while it is empty. */
typedef struct st_rm_conn_addr_t {
    union {
        sa_family_t ss_family; /* where both families keep it */
        struct sockaddr sa;
        struct sockaddr_in sin;
        struct sockaddr_in6 sin6;
    } ss;
    socklen_t len;
} rm_conn_addr_t;

/** Sets `a` to `from` when it is IPv4 or IPv6 (its length capped to the family's), and empties it otherwise. */
void rm_conn_addr_set(rm_conn_addr_t *a, const rm_sockaddr_t *from);
/** The address as an rm_sockaddr_t, for what takes one (tables, policies, logs); empty when `a` is. */
rm_sockaddr_t rm_conn_addr_get(const rm_conn_addr_t *a);
/** The port of an IPv4 or IPv6 address in host order; 0 for an empty one. */
uint16_t rm_conn_addr_port(const rm_conn_addr_t *a);

/** Rewrites an IPv4-mapped IPv6 address (::ffff:a.b.c.d, as a dual-stack listener reports IPv4 peers) to the IPv4
 *  address it is, so that logs and policies see IPv4. Leaves anything else as it is. */
void rm_sockaddr_unmap_v4(rm_sockaddr_t *a);
/** The destination a connection had before iptables redirected it (SO_ORIGINAL_DST, IPv4 and IPv6; a v4-mapped
 *  peer of a dual-stack socket is asked for its IPv4 one). Returns 0 or -errno (-ENOENT: not redirected). */
int rm_sockaddr_original_dst(int fd, rm_sockaddr_t *out);
/** The port of an IPv4 or IPv6 address in host order; 0 for any other family. */
uint16_t rm_sockaddr_port(const struct sockaddr_storage *ss);
/** 1 when both are the same IPv4 or IPv6 address and port, else 0. */
int rm_sockaddr_same(const rm_sockaddr_t *a, const struct sockaddr_storage *b);
/** The address as 16 bytes (IPv4 as ::ffff:a.b.c.d); *have is 0 when `a` is empty or of another family. */
void rm_sockaddr_ip16(const rm_sockaddr_t *a, uint8_t out[16], uint8_t *have);

#endif
