/* Shared by the end-to-end test tools: "ip:port" and "[ip6]:port" into a sockaddr. */
#ifndef RINGMESH_E2E_TOOL_ADDR_H
#define RINGMESH_E2E_TOOL_ADDR_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Returns 0, or -1 when `s` is not an address with a port in 1..65535. */
static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[128];
    const char *colon;
    char *end;
    unsigned long port;
    size_t hostlen;

    memset(ss, 0, sizeof(*ss));
    if ((colon = strrchr(s, ':')) == NULL)
        return -1;
    port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || port == 0 || port > 65535)
        return -1;
    hostlen = (size_t)(colon - s);
    if (s[0] == '[' && hostlen >= 2 && s[hostlen - 1] == ']') {
        s++;
        hostlen -= 2;
    }
    if (hostlen >= sizeof(host))
        return -1;
    memcpy(host, s, hostlen);
    host[hostlen] = '\0';
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
        *len = sizeof(struct sockaddr_in);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
        *len = sizeof(struct sockaddr_in6);
        return 0;
    }
    return -1;
}

#endif
