/* gRPC core's log as JSON lines, and one line per refused TLS handshake (see handshake_log.h).
 *
 * The lines this reads are gRPC 1.51's (src/core/lib/transport/handshaker.cc, src/core/lib/iomgr/tcp_posix.cc):
 *   handshake_manager 0x..: error=OK shutdown=0 index=0, args={endpoint=0x.., ...}     a handshake starts
 *   READ 0x.. (peer=ipv4:198.18.0.1:40112) error=OK                                     (tcp) an endpoint's peer
 *   handshake_manager 0x..: error=<status> shutdown=0 index=1, args={endpoint=0x0, ...} it failed
 * The endpoint is cleared by the time the failure is reported, so the manager is tied to its endpoint when the
 * handshake starts, and the endpoint to its peer on its reads. Both tables are direct-mapped and overwrite what
 * was there: a lost entry only costs the peer address of one line ("unknown"). */
#include "handshake_log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <grpc/grpc.h>
#include <grpc/support/log.h>

#include "ringmesh/error.h"
#include "ringmesh/log.h"

#define ENDPOINTS        4096 /* endpoints whose peer is known */
#define MANAGERS         1024 /* handshakes in progress */
#define REFUSALS         256  /* verifier refusals waiting for their handshake's failure line */
#define PEER_MAX         64
#define REFUSAL_TAG      "ringmesh refusal #"
#define GRPC_ERROR_SHOWN 600 /* bytes of gRPC's error text put in a line */

typedef struct st_endpoint_t {
    uintptr_t ep;
    char peer[PEER_MAX];
} endpoint_t;

typedef struct st_manager_t {
    uintptr_t hm, ep;
} manager_t;

typedef struct st_refusal_t {
    uint64_t tag;
    const char *cause;
    int code;
    char spiffe_id[256];
} refusal_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static endpoint_t endpoints[ENDPOINTS];
static manager_t managers[MANAGERS];
static refusal_t refusals[REFUSALS];
static uint64_t next_tag = 1;

static size_t slot_of(uintptr_t p, size_t n)
{
    return (size_t)((p >> 4) ^ (p >> 16)) % n; /* allocations are 16-byte aligned */
}

static uintptr_t parse_ptr(const char *s)
{
    return (uintptr_t)strtoull(s, NULL, 16); /* "0x7f..." ("(nil)" reads as 0) */
}

/* "READ 0x.. (peer=ipv4:1.2.3.4:5) ..." / "WRITE 0x.. (peer=...)": remembers the endpoint's peer. */
static void on_tcp_line(const char *msg)
{
    const char *p = strchr(msg, ' '), *peer, *end;
    uintptr_t ep;

    if (p == NULL || (peer = strstr(p, "(peer=")) == NULL)
        return;
    ep = parse_ptr(p + 1);
    peer += sizeof("(peer=") - 1;
    if ((end = strchr(peer, ')')) == NULL || ep == 0)
        return;
    pthread_mutex_lock(&lock);
    endpoint_t *e = &endpoints[slot_of(ep, ENDPOINTS)];
    if (e->ep != ep || strncmp(e->peer, peer, (size_t)(end - peer)) != 0) {
        e->ep = ep;
        snprintf(e->peer, sizeof(e->peer), "%.*s", (int)(end - peer), peer);
    }
    pthread_mutex_unlock(&lock);
}

/* The cause of a handshake failure gRPC reports as text (OpenSSL's error, or gRPC's own). */
static const char *classify(const char *error, rm_log_level_t *level)
{
    static const struct {
        const char *needle, *cause;
    } table[] = {{"unsupported protocol", "tls_version"},
                 {"wrong version number", "tls_version"},
                 {"protocol version", "tls_version"},
                 {"no protocols available", "tls_version"},
                 {"no shared cipher", "no_shared_cipher"},
                 {"no suitable signature algorithm", "no_shared_cipher"},
                 {"no shared signature algorithms", "no_shared_cipher"},
                 {"no suitable key share", "no_shared_cipher"},
                 {"no shared groups", "no_shared_cipher"},
                 {"peer did not return a certificate", "no_client_certificate"},
                 {"certificate verify failed", "untrusted_certificate"},
                 {"selected ALPN", "no_alpn"},
                 {"application protocol", "no_alpn"},
                 {"timed out", "handshake_timeout"},
                 {"Deadline Exceeded", "handshake_timeout"}};
    static const char *const closed[] = {"End of TCP stream", "Socket closed", "Connection reset", "Broken pipe",
                                         "unexpected eof"};

    *level = RM_LOG_WARN;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcasestr(error, table[i].needle) != NULL)
            return table[i].cause;
    /* a client that hangs up mid-handshake (a TCP health check, a port scan) is no attack on anything */
    for (size_t i = 0; i < sizeof(closed) / sizeof(closed[0]); i++) {
        if (strcasestr(error, closed[i]) != NULL) {
            *level = RM_LOG_INFO;
            return "connection_closed";
        }
    }
    return "tls_error";
}

static const char *reason_of(const char *cause)
{
    static const struct {
        const char *cause, *reason;
    } table[] = {
        {"tls_version", "the client offers no TLS version the server accepts (TLS 1.3 only)"},
        {"no_shared_cipher", "no cipher suite, group or signature algorithm in common with the client"},
        {"no_client_certificate", "the client sent no certificate"},
        {"untrusted_certificate", "the client certificate does not verify against the trust bundle"},
        {"no_alpn", "the client did not negotiate ALPN h2"},
        {"handshake_timeout", "the client did not finish the handshake in time"},
        {"connection_closed", "the client closed the connection during the handshake"},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(cause, table[i].cause) == 0)
            return table[i].reason;
    return "the TLS handshake failed";
}

/* A handshake failed with `error` (gRPC's status text): one line with its cause and peer. */
static void report_failure(uintptr_t hm, const char *error, size_t error_len)
{
    char peer[PEER_MAX] = "unknown", err[GRPC_ERROR_SHOWN + 1];
    refusal_t refusal = {.tag = 0};
    const char *tag, *cause;
    rm_log_level_t level;
    rm_log_line_t l;

    snprintf(err, sizeof(err), "%.*s", (int)(error_len < GRPC_ERROR_SHOWN ? error_len : GRPC_ERROR_SHOWN), error);
    if (strstr(err, "andshaker shutdown") != NULL)
        return; /* the server is stopping: nobody was refused */
    pthread_mutex_lock(&lock);
    manager_t *m = &managers[slot_of(hm, MANAGERS)];
    if (m->hm == hm) {
        endpoint_t *e = &endpoints[slot_of(m->ep, ENDPOINTS)];
        if (e->ep == m->ep)
            snprintf(peer, sizeof(peer), "%s", e->peer);
        m->hm = 0;
    }
    if ((tag = strstr(err, REFUSAL_TAG)) != NULL) {
        uint64_t t = strtoull(tag + sizeof(REFUSAL_TAG) - 1, NULL, 10);
        if (t != 0 && refusals[t % REFUSALS].tag == t) {
            refusal = refusals[t % REFUSALS];
            refusals[t % REFUSALS].tag = 0;
        }
    }
    pthread_mutex_unlock(&lock);

    if (refusal.tag != 0) {
        rm_log_begin(&l, RM_LOG_WARN, "tls_refused");
        rm_log_str(&l, "peer", peer);
        rm_log_str(&l, "cause", refusal.cause);
        rm_log_str(&l, "reason", rm_strerror(refusal.code));
        rm_log_int(&l, "code", refusal.code);
        if (refusal.spiffe_id[0] != '\0')
            rm_log_str(&l, "spiffeId", refusal.spiffe_id);
        rm_log_end(&l);
        return;
    }
    cause = classify(err, &level);
    rm_log_begin(&l, level, "tls_refused");
    rm_log_str(&l, "peer", peer);
    rm_log_str(&l, "cause", cause);
    rm_log_str(&l, "reason", reason_of(cause));
    rm_log_str(&l, "grpcError", err);
    rm_log_end(&l);
}

/* "handshake_manager 0x..: error=<status> shutdown=N index=N, args={endpoint=0x.., ...}" */
static void on_handshaker_line(const char *msg)
{
    static const char error_key[] = ": error=", shutdown_key[] = " shutdown=", ep_key[] = "args={endpoint=";
    const char *e, *s = NULL, *p, *ep;
    uintptr_t hm = parse_ptr(msg + sizeof("handshake_manager ") - 1);

    if ((e = strstr(msg, error_key)) == NULL)
        return; /* "adding handshaker", "calling handshaker", "handshaking complete" */
    e += sizeof(error_key) - 1;
    for (p = e; (p = strstr(p, shutdown_key)) != NULL; p++)
        s = p; /* the last one: the status text could hold anything */
    if (s == NULL || hm == 0)
        return;
    if ((size_t)(s - e) == 2 && memcmp(e, "OK", 2) == 0) {
        uintptr_t endpoint;
        if ((ep = strstr(s, ep_key)) == NULL || (endpoint = parse_ptr(ep + sizeof(ep_key) - 1)) == 0)
            return;
        pthread_mutex_lock(&lock);
        managers[slot_of(hm, MANAGERS)] = (manager_t){hm, endpoint};
        pthread_mutex_unlock(&lock);
        return;
    }
    report_failure(hm, e, (size_t)(s - e));
}

void rm__handshake_log_line(int severity, const char *file, int line, const char *message)
{
    rm_log_level_t level = severity == GPR_LOG_SEVERITY_ERROR ? RM_LOG_ERROR : RM_LOG_DEBUG;
    const char *base;

    if (strncmp(message, "handshake_manager ", sizeof("handshake_manager ") - 1) == 0) {
        on_handshaker_line(message);
        return;
    }
    if (strncmp(message, "READ 0x", 7) == 0 || strncmp(message, "WRITE 0x", 8) == 0) {
        on_tcp_line(message);
        return;
    }
    /* the rest of the two tracers' lines */
    if (strncasecmp(message, "TCP:", 4) == 0 /* "TCP:0x.. notify_on_read", "tcp:0x.. file:line ref 1 -> 2" */ ||
        strncmp(message, "BACKUP_POLLER:", 14) == 0 || strncmp(message, "write: ", 7) == 0 ||
        strncmp(message, "READ DATA:", 10) == 0 || strncmp(message, "WRITE DATA:", 11) == 0 ||
        strncmp(message, "SERVER_CONNECT:", 15) == 0)
        return;
    /* OpenSSL's error for a failed handshake: the tls_refused line that follows carries it, with the peer */
    if (strncmp(message, "Handshake failed with fatal error", 33) == 0)
        return;
    if (!rm_log_enabled(level))
        return;
    base = file != NULL ? strrchr(file, '/') : NULL;
    rm_log_line_t l;
    rm_log_begin(&l, level, "grpc_log");
    rm_log_str(&l, "source", base != NULL ? base + 1 : file != NULL ? file : "");
    rm_log_int(&l, "line", line);
    rm_log_str(&l, "msg", message);
    rm_log_end(&l);
}

static void log_function(gpr_log_func_args *args)
{
    rm__handshake_log_line((int)args->severity, args->file, args->line, args->message);
}

void rm_handshake_log_init(void)
{
    gpr_set_log_function(log_function);
    if (!gpr_should_log(GPR_LOG_SEVERITY_INFO))
        gpr_set_log_verbosity(GPR_LOG_SEVERITY_INFO); /* the tracers write at INFO */
    grpc_tracer_set_enabled("handshaker", 1);
    grpc_tracer_set_enabled("tcp", 1);
}

void rm_handshake_log_refusal(const rm_tls_refusal_t *r, char *details, size_t size)
{
    uint64_t tag;

    pthread_mutex_lock(&lock);
    tag = next_tag++;
    refusal_t *slot = &refusals[tag % REFUSALS];
    slot->tag = tag;
    slot->cause = r->cause; /* a string literal */
    slot->code = r->code;
    snprintf(slot->spiffe_id, sizeof(slot->spiffe_id), "%s", r->spiffe_id != NULL ? r->spiffe_id : "");
    pthread_mutex_unlock(&lock);
    snprintf(details, size, "%s: " REFUSAL_TAG "%" PRIu64, rm_strerror(r->code), tag);
}
