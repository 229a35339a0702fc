/* control/handshake_log.c on the lines gRPC 1.51 writes: a handshake's start ties its manager to its endpoint, the
 * tcp tracer ties the endpoint to its peer, and the failure becomes one tls_refused line with cause and peer; a
 * refusal by the client verifier comes out with its rule and SPIFFE ID; the tracers' other lines and OpenSSL's
 * error text are dropped; gRPC's other lines become grpc_log lines. The log goes to a temporary file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/support/log.h>

#include "handshake_log.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"

static FILE *out;

static int setup(void **state)
{
    (void)state;
    out = tmpfile();
    assert_non_null(out);
    rm_log_configure(RM_LOG_DEBUG, fileno(out));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rm_log_configure(RM_LOG_INFO, 1);
    fclose(out);
    return 0;
}

/* What was logged since the last call (NUL-terminated, static). */
static const char *logged(void)
{
    static char buf[16384];
    static long done;
    long end = lseek(fileno(out), 0, SEEK_END);
    size_t n = (size_t)(end - done) < sizeof(buf) - 1 ? (size_t)(end - done) : sizeof(buf) - 1;

    assert_int_equal(pread(fileno(out), buf, n, done), (ssize_t)n);
    buf[n] = '\0';
    done = end;
    return buf;
}

static void line(int severity, const char *msg)
{
    rm__handshake_log_line(severity, "src/core/lib/transport/handshaker.cc", 92, msg);
}

#define START(hm, ep)                                                                                                  \
    "handshake_manager " hm ": error=OK shutdown=0 index=0, args={endpoint=" ep                                        \
    ", args={grpc.http2.min_ping_interval_without_data_ms=30000}, read_buffer=0x0 (length=0), exit_early=0}"
#define FAILED(hm, status)                                                                                             \
    "handshake_manager " hm ": error=" status " shutdown=0 index=1, args={endpoint=(nil), args={}, "                   \
    "read_buffer=(nil) (length=0), exit_early=0}"

static void test_tls_version_with_peer(void **state)
{
    const char *s;

    (void)state;
    line(GPR_LOG_SEVERITY_INFO, START("0x7f0000001000", "0x7f0000002000"));
    line(GPR_LOG_SEVERITY_INFO, "TCP:0x7f0000002000 notify_on_read");
    line(GPR_LOG_SEVERITY_INFO, "READ 0x7f0000002000 (peer=ipv4:198.18.1.2:40112) error=OK");
    line(GPR_LOG_SEVERITY_ERROR, "Handshake failed with fatal error SSL_ERROR_SSL: error:0A000102:SSL "
                                 "routines::unsupported protocol.");
    assert_string_equal(logged(), "");
    line(GPR_LOG_SEVERITY_INFO,
         FAILED("0x7f0000001000", "UNKNOWN:Tls handshake failed: SSL_ERROR_SSL: "
                                  "error:0A000102:SSL routines::unsupported protocol {tsi_code:10}"));
    s = logged();
    assert_non_null(strstr(s, "\"event\":\"tls_refused\""));
    assert_non_null(strstr(s, "\"peer\":\"ipv4:198.18.1.2:40112\""));
    assert_non_null(strstr(s, "\"cause\":\"tls_version\""));
    assert_non_null(strstr(s, "unsupported protocol"));
    assert_null(strchr(strchr(s, '\n') + 1, '{')); /* one line */
}

static void test_verifier_refusal(void **state)
{
    char details[512], status[700];
    rm_tls_refusal_t r = {.cause = "svid_rule", .code = RM_ERR_SVID_LEAF_IS_CA, .spiffe_id = "spiffe://td/ns/a/sa/b"};
    const char *s;

    (void)state;
    rm_handshake_log_refusal(&r, details, sizeof(details));
    assert_non_null(strstr(details, rm_strerror(RM_ERR_SVID_LEAF_IS_CA)));
    line(GPR_LOG_SEVERITY_INFO, START("0x7f0000003000", "0x7f0000004000"));
    line(GPR_LOG_SEVERITY_INFO, "WRITE 0x7f0000004000 (peer=ipv6:[fd00::2]:5000)");
    snprintf(status, sizeof(status),
             "UNKNOWN:Peer check failed {children:[UNKNOWN:Custom verification check failed with error: "
             "UNAUTHENTICATED: %s]}",
             details);
    char msg[1024];
    snprintf(msg, sizeof(msg), FAILED("0x7f0000003000", "%s"), status);
    line(GPR_LOG_SEVERITY_INFO, msg);
    s = logged();
    assert_non_null(strstr(s, "\"peer\":\"ipv6:[fd00::2]:5000\""));
    assert_non_null(strstr(s, "\"cause\":\"svid_rule\""));
    assert_non_null(strstr(s, "\"spiffeId\":\"spiffe://td/ns/a/sa/b\""));
    assert_non_null(strstr(s, "\"reason\":\"X509-SVID leaf must not be a CA"));
}

static void test_unknown_peer_and_closed(void **state)
{
    const char *s;

    (void)state;
    line(GPR_LOG_SEVERITY_INFO, FAILED("0x7f0000005000", "UNAVAILABLE:End of TCP stream"));
    s = logged();
    assert_non_null(strstr(s, "\"level\":\"info\""));
    assert_non_null(strstr(s, "\"peer\":\"unknown\""));
    assert_non_null(strstr(s, "\"cause\":\"connection_closed\""));
}

static void test_shutdown_is_no_refusal(void **state)
{
    (void)state;
    line(GPR_LOG_SEVERITY_INFO, START("0x7f0000006000", "0x7f0000007000"));
    line(GPR_LOG_SEVERITY_INFO, FAILED("0x7f0000006000", "UNKNOWN:Handshaker shutdown"));
    line(GPR_LOG_SEVERITY_INFO, "handshake_manager 0x7f0000006000: adding handshaker security [0x1] at index 0");
    assert_string_equal(logged(), "");
}

static void test_other_lines(void **state)
{
    const char *s;

    (void)state;
    rm__handshake_log_line(GPR_LOG_SEVERITY_ERROR, "src/core/ext/transport/chttp2/server/chttp2_server.cc", 512,
                           "Failed to create channel: x");
    s = logged();
    assert_non_null(strstr(s, "\"level\":\"error\",\"event\":\"grpc_log\",\"source\":\"chttp2_server.cc\""));
    assert_non_null(strstr(s, "\"msg\":\"Failed to create channel: x\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_version_with_peer),
        cmocka_unit_test(test_verifier_refusal),
        cmocka_unit_test(test_unknown_peer_and_closed),
        cmocka_unit_test(test_shutdown_is_no_refusal),
        cmocka_unit_test(test_other_lines),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
