/* rm_tls_sniff(): classifies the first bytes of a connection on a PERMISSIVE port.
 *
 * Besides memory safety (each call gets an exactly sized copy, so a read past `len` is a heap overflow), this
 * checks what the proxy relies on when it sniffs bytes as they arrive:
 *   - a decision is final: once a prefix of the input is classified as anything but NEED_MORE, the whole input
 *     gets the same class (more bytes never change the verdict);
 *   - waiting is bounded: NEED_MORE is never returned once a whole maximum-size TLS record could have arrived;
 *   - MESH is only returned for a TLS handshake record that carries the ALPN name "ringmesh/1" or "ringmesh/h2"
 *     with its length.
 * rm_tls_client_hello_parse() gets the same input: it waits exactly when the sniffer does, never parses what the
 * sniffer calls plaintext, and every list it returns lies inside the input. */
#include <string.h>

#include "fuzz.h"
#include "ringmesh/error.h"
#include "ringmesh/tls.h"

/* 5-byte record header + the largest record a ClientHello may use (2^14 plus the expansion TLS 1.2 allows). */
#define SNIFF_MAX_WAIT (5 + 16384 + 2048)

static rm_tls_sniff_t sniff_exact_copy(const uint8_t *data, size_t len)
{
    uint8_t *copy = rm_fuzz_memdup(data, len);
    rm_tls_sniff_t r = rm_tls_sniff(copy, len);

    free(copy);
    RM_FUZZ_CHECK(r == RM_TLS_SNIFF_NEED_MORE || r == RM_TLS_SNIFF_PLAINTEXT || r == RM_TLS_SNIFF_TLS_OTHER ||
                  r == RM_TLS_SNIFF_MESH);
    return r;
}

static void check_prefix(const uint8_t *data, size_t size, size_t prefix_len, rm_tls_sniff_t full)
{
    rm_tls_sniff_t r;

    if (prefix_len > size)
        return;
    r = sniff_exact_copy(data, prefix_len);
    RM_FUZZ_CHECK(r == RM_TLS_SNIFF_NEED_MORE || r == full);
}

static int contains_mesh_alpn(const uint8_t *data, size_t size)
{
    /* ProtocolName: 1-byte length, then the bytes; either mesh protocol (the L4 tunnel or the pooled HTTP/2) */
    static const uint8_t tunnel[] = "\x0a" RM_TLS_ALPN, pooled[] = "\x0b" RM_TLS_ALPN_H2;

    return memmem(data, size, tunnel, sizeof(tunnel) - 1) != NULL ||
           memmem(data, size, pooled, sizeof(pooled) - 1) != NULL;
}

static void check_list(const rm_tls_u16_list_t *list, const uint8_t *base, size_t size)
{
    if (!list->present) {
        RM_FUZZ_CHECK(list->num == 0);
        return;
    }
    RM_FUZZ_CHECK(list->p >= base && list->num <= size / 2 && list->p + 2 * list->num <= base + size);
}

static void check_client_hello(const uint8_t *data, size_t size, rm_tls_sniff_t full)
{
    uint8_t *copy = rm_fuzz_memdup(data, size);
    rm_tls_client_hello_t hello;
    int r = rm_tls_client_hello_parse(copy, size, &hello);

    RM_FUZZ_CHECK(r == 0 || r == RM_ERR_TLS_WANT_IO || r == RM_ERR_TLS_PROTOCOL);
    RM_FUZZ_CHECK((r == RM_ERR_TLS_WANT_IO) == (full == RM_TLS_SNIFF_NEED_MORE));
    if (r == 0) {
        RM_FUZZ_CHECK(full == RM_TLS_SNIFF_MESH || full == RM_TLS_SNIFF_TLS_OTHER);
        check_list(&hello.versions, copy, size);
        check_list(&hello.suites, copy, size);
        check_list(&hello.groups, copy, size);
        for (size_t i = 0; i != hello.groups.num; ++i)
            (void)rm_tls_u16_list_at(&hello.groups, i); /* read every entry: an overflow shows here */
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rm_tls_sniff_t full = sniff_exact_copy(data, size);
    size_t i, record_end;

    check_client_hello(data, size, full);

    RM_FUZZ_CHECK(rm_tls_sniff(data, size) == full); /* no hidden state */
    if (full == RM_TLS_SNIFF_NEED_MORE)
        RM_FUZZ_CHECK(size < SNIFF_MAX_WAIT);
    if (full == RM_TLS_SNIFF_MESH) {
        RM_FUZZ_CHECK(size >= 5 && data[0] == 0x16 && data[1] == 0x03);
        RM_FUZZ_CHECK(contains_mesh_alpn(data, size));
    }

    /* Prefixes: the first bytes one by one, the places around the end of the first record, and a few others.
     * Every length would make a big input quadratic. */
    for (i = 0; i <= 16; ++i)
        check_prefix(data, size, i, full);
    if (size >= 5) {
        record_end = 5 + ((size_t)data[3] << 8 | data[4]);
        check_prefix(data, size, record_end - 1, full);
        check_prefix(data, size, record_end, full);
        check_prefix(data, size, record_end + 1, full);
    }
    check_prefix(data, size, size / 2, full);
    if (size != 0)
        check_prefix(data, size, size - 1, full);
    return 0;
}
