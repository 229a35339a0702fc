/* control_bench sign and svid: Identity.Sign calls against ringmesh-control (see control_bench.c for the modes). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <jansson.h>

#include "grpc_h2.h"
#include "grpc_runtime.h"

#include "ringmesh/csr.h"
#include "ringmesh/error.h"
#include "ringmesh/tls.h"
#include "ringmesh/x509_issue.h"
#include "ringmesh/xds.h"
#include "ringmesh/v1/discovery.pb-c.h"
#include "ringmesh/v1/identity.pb-c.h"

#include "control_bench.h"

/* ------------------------------------------------------------------ Identity.Sign */

typedef struct st_sign_call_t sign_call_t;

typedef struct st_sign_bench_t {
    const bench_opts_t *opts;
    grpc_completion_queue *cq;
    grpc_channel_credentials *creds;
    grpc_byte_buffer **requests; /* one packed SignRequest per call, fresh key and CSR each */
    int64_t *latency;            /* of the calls that succeeded */
    unsigned next, done, ok, failed, in_flight;
    char first_error[256];
} sign_bench_t;

struct st_sign_call_t {
    sign_bench_t *b;
    grpc_channel *channel; /* the slot's (reused) or this call's own (--new-connection) */
    grpc_call *call;
    grpc_byte_buffer *recv;
    grpc_metadata_array md_initial, md_trailing;
    grpc_status_code status;
    grpc_slice details;
    int64_t started;
};

/* Makes a key and the PEM CSR for it; the key itself is not needed once the CSR is signed. */
static int make_csr(char **csr, size_t *csr_len, char **key_out, size_t *key_len_out)
{
    char *key = NULL;
    uint8_t *spki = NULL;
    size_t key_len = 0, spki_len;
    int ret;

    if ((ret = rm_x509_generate_key(&key, &key_len, &spki, &spki_len)) == 0)
        ret = rm_csr_make(key, key_len, NULL, csr, csr_len);
    free(spki);
    if (ret == 0 && key_out != NULL) {
        *key_out = key;
        *key_len_out = key_len;
    } else if (key != NULL) {
        rm_x509_free_secret(key, key_len);
    }
    return ret;
}

/* Packs one SignRequest for `csr` and `token` into `out` (NULL: only measures). Returns its packed size. */
static size_t sign_request_pack(const char *csr, const char *token, long ttl_s, uint8_t *out)
{
    Ringmesh__V1__SignRequest req = RINGMESH__V1__SIGN_REQUEST__INIT;

    req.csr_pem = (char *)csr;
    req.credential = (char *)token;
    req.requested_ttl_seconds = ttl_s;
    return out != NULL ? ringmesh__v1__sign_request__pack(&req, out)
                       : ringmesh__v1__sign_request__get_packed_size(&req);
}

static grpc_byte_buffer *pack_sign_request(const char *csr, const char *token, long ttl_s)
{
    grpc_slice sl = grpc_slice_malloc(sign_request_pack(csr, token, ttl_s, NULL));
    sign_request_pack(csr, token, ttl_s, GRPC_SLICE_START_PTR(sl));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    return bb;
}

/* Starts Sign on `sc` with `request` (kept by the caller until the tag completes). Returns 0 or -EIO. */
static int sign_start(sign_call_t *sc, grpc_completion_queue *cq, grpc_byte_buffer *request)
{
    grpc_slice method = grpc_slice_from_static_string(METHOD_SIGN);
    grpc_op ops[6];

    sc->call = grpc_channel_create_call(
        sc->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(SIGN_DEADLINE_MS, GPR_TIMESPAN)), NULL);
    grpc_metadata_array_init(&sc->md_initial);
    grpc_metadata_array_init(&sc->md_trailing);
    sc->details = grpc_empty_slice();
    sc->recv = NULL;
    sc->status = GRPC_STATUS_UNKNOWN;
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &sc->md_initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &sc->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &sc->md_trailing;
    ops[5].data.recv_status_on_client.status = &sc->status;
    ops[5].data.recv_status_on_client.status_details = &sc->details;
    sc->started = cb_now_ns();
    if (grpc_call_start_batch(sc->call, ops, 6, sc, NULL) != GRPC_CALL_OK) {
        grpc_call_unref(sc->call);
        sc->call = NULL;
        grpc_metadata_array_destroy(&sc->md_initial);
        grpc_metadata_array_destroy(&sc->md_trailing);
        return -EIO;
    }
    return 0;
}

/* Decodes a finished call's answer (NULL unless it succeeded with a certificate), describing a failure in err,
 * and releases the call. */
static Ringmesh__V1__SignResponse *sign_finish(sign_call_t *sc, int ok, char *err, size_t errlen)
{
    Ringmesh__V1__SignResponse *resp = NULL;

    if (!ok) {
        snprintf(err, errlen, "the call's batch failed");
    } else if (sc->status != GRPC_STATUS_OK || sc->recv == NULL) {
        snprintf(err, errlen, "grpc-status %d: %.*s", (int)sc->status, (int)GRPC_SLICE_LENGTH(sc->details),
                 (const char *)GRPC_SLICE_START_PTR(sc->details));
    } else {
        grpc_slice all = cb_message_slice(sc->recv);
        resp = ringmesh__v1__sign_response__unpack(NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
        grpc_slice_unref(all);
        if (resp == NULL || resp->cert_chain_pem == NULL || strstr(resp->cert_chain_pem, "BEGIN CERTIFICATE") == NULL ||
            resp->not_after <= resp->not_before) {
            snprintf(err, errlen, "the SignResponse holds no certificate");
            if (resp != NULL)
                ringmesh__v1__sign_response__free_unpacked(resp, NULL);
            resp = NULL;
        }
    }
    if (sc->recv != NULL)
        grpc_byte_buffer_destroy(sc->recv);
    sc->recv = NULL;
    grpc_slice_unref(sc->details);
    grpc_metadata_array_destroy(&sc->md_initial);
    grpc_metadata_array_destroy(&sc->md_trailing);
    grpc_call_unref(sc->call);
    sc->call = NULL;
    return resp;
}

static void sign_bench_next(sign_call_t *sc);

static void sign_bench_done(sign_call_t *sc, int ok)
{
    sign_bench_t *b = sc->b;
    Ringmesh__V1__SignResponse *resp;
    int64_t t = cb_now_ns();
    char err[256];

    b->in_flight--;
    b->done++;
    if ((resp = sign_finish(sc, ok, err, sizeof(err))) != NULL) {
        b->latency[b->ok++] = t - sc->started;
        ringmesh__v1__sign_response__free_unpacked(resp, NULL);
    } else {
        if (b->failed++ == 0)
            snprintf(b->first_error, sizeof(b->first_error), "%s", err);
    }
    if (b->opts->new_connection) {
        grpc_channel_destroy(sc->channel);
        sc->channel = NULL;
    }
    sign_bench_next(sc);
}

static void sign_bench_next(sign_call_t *sc)
{
    sign_bench_t *b = sc->b;
    unsigned i;

    if (b->next >= b->opts->count)
        return;
    i = b->next++;
    if (sc->channel == NULL && (sc->channel = cb_make_channel(b->opts->target, b->creds)) == NULL) {
        b->done++;
        if (b->failed++ == 0)
            snprintf(b->first_error, sizeof(b->first_error), "cannot create a channel");
        return;
    }
    if (sign_start(sc, b->cq, b->requests[i]) != 0) {
        b->done++;
        if (b->failed++ == 0)
            snprintf(b->first_error, sizeof(b->first_error), "gRPC refused the call");
        return;
    }
    b->in_flight++;
}

/* Waits until every slot's channel is connected, so that the timed calls measure signing, not handshakes.
 * Returns the number of channels that are READY. */
static unsigned connect_channels(grpc_completion_queue *cq, sign_call_t *slots, unsigned n, int64_t timeout_ms)
{
    int64_t end = cb_now_ns() + timeout_ms * 1000000;
    unsigned ready = 0;

    while (cb_now_ns() < end) {
        ready = 0;
        for (unsigned i = 0; i < n; i++)
            ready += grpc_channel_check_connectivity_state(slots[i].channel, 1) == GRPC_CHANNEL_READY;
        if (ready == n)
            break;
        /* connections make progress only while some thread polls: no call is started yet, so this just polls */
        grpc_completion_queue_next(cq, cb_deadline_in_ms(5), NULL);
    }
    return ready;
}

/* --proxy-client: threads, each making calls one after the other, every call on its own connection by the proxy's
 * client (rm_h2_unary), as a proxy asks for its first SVID. */
typedef struct st_proxy_sign_t {
    const bench_opts_t *opts;
    rm_tls_ctx_t *ctx;
    const char *addr;
    char control_id[300];
    uint8_t **requests;
    size_t *request_len;
    int64_t *latency; /* per call; -1 for a failure */
    atomic_uint next;
    pthread_mutex_t lock;
    unsigned failed;
    char first_error[256];
} proxy_sign_t;

static void *proxy_sign_thread(void *arg)
{
    proxy_sign_t *ps = arg;
    unsigned i;

    while ((i = atomic_fetch_add(&ps->next, 1)) < ps->opts->count) {
        uint8_t *resp = NULL;
        size_t resp_len = 0;
        int status = -1, ret;
        char err[256] = "";
        int64_t t0 = cb_now_ns();
        ret = rm_h2_unary(ps->addr, SERVER_NAME, ps->ctx, ps->control_id, METHOD_SIGN, ps->requests[i],
                          ps->request_len[i], SIGN_DEADLINE_MS, &resp, &resp_len, &status, err, sizeof(err));
        int64_t t1 = cb_now_ns();
        Ringmesh__V1__SignResponse *sr =
            ret == 0 && status == 0 ? ringmesh__v1__sign_response__unpack(NULL, resp_len, resp) : NULL;
        if (sr != NULL && sr->cert_chain_pem != NULL && strstr(sr->cert_chain_pem, "BEGIN CERTIFICATE") != NULL) {
            ps->latency[i] = t1 - t0;
        } else {
            ps->latency[i] = -1;
            pthread_mutex_lock(&ps->lock);
            if (ps->failed++ == 0)
                snprintf(ps->first_error, sizeof(ps->first_error), "%s",
                         ret != 0      ? rm_strerror(ret)
                         : status != 0 ? err
                                       : "the SignResponse holds no certificate");
            pthread_mutex_unlock(&ps->lock);
        }
        if (sr != NULL)
            ringmesh__v1__sign_response__free_unpacked(sr, NULL);
        free(resp);
    }
    return NULL;
}

static int run_sign_proxy_client(const bench_opts_t *o, const char *roots, const char *token, unsigned conc)
{
    proxy_sign_t ps;
    pthread_t *threads = NULL;
    char *csr = NULL, err[256];
    size_t csr_len;
    unsigned started = 0, ok = 0;
    int64_t t_gen, t_start, t_end, cpu0 = -1, cpu1 = -1;
    json_t *out;
    int ret;

    memset(&ps, 0, sizeof(ps));
    ps.opts = o;
    pthread_mutex_init(&ps.lock, NULL);
    ps.addr = strncmp(o->target, "ipv4:", 5) == 0 ? o->target + 5 : o->target;
    snprintf(ps.control_id, sizeof(ps.control_id), "spiffe://%s/ns/ringmesh-system/sa/ringmesh-control",
             o->trust_domain);
    rm_tls_ctx_config_t tc = {
        .bundle_pem = roots, .bundle_len = strlen(roots), .trust_domain = o->trust_domain, .alpn = "h2"};
    if ((ret = rm_tls_global_init()) != 0 ||
        (ret = rm_tls_ctx_new(&ps.ctx, RM_TLS_CLIENT, &tc, err, sizeof(err))) != 0) {
        fprintf(stderr, "control_bench sign: the proxy client's TLS context: %s\n", ret != 0 ? err : "");
        goto Exit;
    }
    if ((ps.requests = calloc(o->count, sizeof(*ps.requests))) == NULL ||
        (ps.request_len = calloc(o->count, sizeof(*ps.request_len))) == NULL ||
        (ps.latency = calloc(o->count, sizeof(*ps.latency))) == NULL ||
        (threads = calloc(conc, sizeof(*threads))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    t_gen = cb_now_ns();
    for (unsigned i = 0; i < o->count; i++) {
        if ((ret = make_csr(&csr, &csr_len, NULL, NULL)) != 0) {
            fprintf(stderr, "control_bench sign: cannot make a key and CSR: %s\n", rm_strerror(ret));
            goto Exit;
        }
        ps.request_len[i] = sign_request_pack(csr, token, o->ttl_s, NULL);
        if ((ps.requests[i] = malloc(ps.request_len[i] + 1)) == NULL) {
            ret = -ENOMEM;
            goto Exit;
        }
        sign_request_pack(csr, token, o->ttl_s, ps.requests[i]);
        free(csr);
        csr = NULL;
    }
    t_gen = cb_now_ns() - t_gen;

    if (o->control_pid > 0)
        cpu0 = cb_proc_cpu_ms(o->control_pid);
    t_start = cb_now_ns();
    for (; started < conc; started++)
        if (pthread_create(&threads[started], NULL, proxy_sign_thread, &ps) != 0)
            break;
    for (unsigned i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    t_end = cb_now_ns();
    if (o->control_pid > 0)
        cpu1 = cb_proc_cpu_ms(o->control_pid);
    if (started == 0) {
        fprintf(stderr, "control_bench sign: cannot start a thread\n");
        ret = -EAGAIN;
        goto Exit;
    }
    for (unsigned i = 0; i < o->count; i++)
        if (ps.latency[i] >= 0)
            ps.latency[ok++] = ps.latency[i];

    out = json_object();
    json_object_set_new(out, "mode", json_string("sign"));
    json_object_set_new(out, "client", json_string("proxy"));
    json_object_set_new(out, "count", json_integer(o->count));
    json_object_set_new(out, "concurrency", json_integer(started));
    json_object_set_new(out, "new_connection", json_true());
    json_object_set_new(out, "ok", json_integer(ok));
    json_object_set_new(out, "failed", json_integer(ps.failed));
    json_object_set_new(out, "unfinished", json_integer(o->count - ok - ps.failed));
    json_object_set_new(out, "elapsed_s", json_real((double)(t_end - t_start) / 1e9));
    json_object_set_new(out, "calls_per_s", json_real((double)ok / ((double)(t_end - t_start) / 1e9)));
    cb_set_latencies(out, "", ps.latency, ok);
    json_object_set_new(out, "csr_gen_ms_each", json_real((double)t_gen / 1e6 / o->count));
    if (cpu0 >= 0 && cpu1 >= 0) {
        json_object_set_new(out, "control_cpu_ms", json_integer(cpu1 - cpu0));
        json_object_set_new(out, "control_cpu_ms_per_call", json_real(ok > 0 ? (double)(cpu1 - cpu0) / ok : 0));
    }
    if (ps.failed > 0)
        json_object_set_new(out, "first_error", json_string(ps.first_error));
    cb_emit(out);
    ret = ps.failed == 0 && ok == o->count ? 0 : 1;

Exit:
    free(csr);
    if (ps.requests != NULL)
        for (unsigned i = 0; i < o->count; i++)
            free(ps.requests[i]);
    free(ps.requests);
    free(ps.request_len);
    free(ps.latency);
    free(threads);
    rm_tls_ctx_unref(ps.ctx);
    pthread_mutex_destroy(&ps.lock);
    return ret < 0 ? 1 : ret;
}

int cb_run_sign(const bench_opts_t *o)
{
    sign_bench_t b;
    sign_call_t *slots = NULL;
    char *roots = NULL, *token = NULL, *csr = NULL;
    size_t roots_len, csr_len;
    int64_t t_gen, t_start, t_end, cpu0 = -1, cpu1 = -1, deadline;
    unsigned conc;
    json_t *out;
    int ret;

    if (cb_require("sign", "target", o->target) || cb_require("sign", "bundle", o->bundle) ||
        cb_require("sign", "token", o->token))
        return 2;
    if (o->count == 0) {
        fprintf(stderr, "control_bench sign: --count is required\n");
        return 2;
    }
    memset(&b, 0, sizeof(b));
    b.opts = o;
    conc = o->concurrency < o->count ? o->concurrency : o->count;
    if ((ret = cb_read_file(o->bundle, &roots, &roots_len)) != 0 || (ret = cb_read_token(o->token, &token)) != 0) {
        fprintf(stderr, "control_bench sign: cannot read the bundle or the token: %s\n", rm_strerror(ret));
        goto Exit;
    }
    cb_raise_nofile(conc * 4 + 256);
    if (o->proxy_client) {
        if (!o->new_connection) {
            fprintf(stderr, "control_bench sign: --proxy-client goes with --new-connection\n");
            ret = 2;
            goto Exit;
        }
        ret = run_sign_proxy_client(o, roots, token, conc);
        goto Exit;
    }
    if ((b.requests = calloc(o->count, sizeof(*b.requests))) == NULL ||
        (b.latency = calloc(o->count, sizeof(*b.latency))) == NULL || (slots = calloc(conc, sizeof(*slots))) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    t_gen = cb_now_ns();
    for (unsigned i = 0; i < o->count; i++) {
        if ((ret = make_csr(&csr, &csr_len, NULL, NULL)) != 0) {
            fprintf(stderr, "control_bench sign: cannot make a key and CSR: %s\n", rm_strerror(ret));
            goto Exit;
        }
        b.requests[i] = pack_sign_request(csr, token, o->ttl_s);
        free(csr);
        csr = NULL;
    }
    t_gen = cb_now_ns() - t_gen;

    b.cq = grpc_completion_queue_create_for_next(NULL);
    b.creds = grpc_ssl_credentials_create_ex(roots, NULL, NULL, NULL);
    for (unsigned i = 0; i < conc; i++) {
        slots[i].b = &b;
        if (!o->new_connection && (slots[i].channel = cb_make_channel(o->target, b.creds)) == NULL) {
            fprintf(stderr, "control_bench sign: cannot create a channel\n");
            ret = -ENOMEM;
            goto Drain;
        }
    }
    if (!o->new_connection && connect_channels(b.cq, slots, conc, 20000) != conc)
        fprintf(stderr, "control_bench sign: not every channel connected within 20 s; going on\n");

    if (o->control_pid > 0)
        cpu0 = cb_proc_cpu_ms(o->control_pid);
    t_start = cb_now_ns();
    for (unsigned i = 0; i < conc; i++)
        sign_bench_next(&slots[i]);
    /* every call has a deadline of SIGN_DEADLINE_MS, so the loop ends; the bound below is a safety net */
    deadline = t_start + ((int64_t)o->count * SIGN_DEADLINE_MS / conc + 60000) * 1000000;
    while (b.in_flight > 0 && cb_now_ns() < deadline) {
        grpc_event ev = grpc_completion_queue_next(b.cq, cb_deadline_in_ms(100), NULL);
        if (ev.type == GRPC_OP_COMPLETE)
            sign_bench_done(ev.tag, ev.success);
    }
    t_end = cb_now_ns();
    if (o->control_pid > 0)
        cpu1 = cb_proc_cpu_ms(o->control_pid);

    out = json_object();
    json_object_set_new(out, "mode", json_string("sign"));
    json_object_set_new(out, "count", json_integer(o->count));
    json_object_set_new(out, "concurrency", json_integer(conc));
    json_object_set_new(out, "new_connection", json_boolean(o->new_connection));
    json_object_set_new(out, "ok", json_integer(b.ok));
    json_object_set_new(out, "failed", json_integer(b.failed));
    json_object_set_new(out, "unfinished", json_integer(o->count - b.done));
    json_object_set_new(out, "elapsed_s", json_real((double)(t_end - t_start) / 1e9));
    json_object_set_new(out, "calls_per_s", json_real((double)b.ok / ((double)(t_end - t_start) / 1e9)));
    cb_set_latencies(out, "", b.latency, b.ok);
    json_object_set_new(out, "csr_gen_ms_each", json_real((double)t_gen / 1e6 / o->count));
    if (cpu0 >= 0 && cpu1 >= 0) {
        json_object_set_new(out, "control_cpu_ms", json_integer(cpu1 - cpu0));
        json_object_set_new(out, "control_cpu_ms_per_call", json_real(b.ok > 0 ? (double)(cpu1 - cpu0) / b.ok : 0));
    }
    if (b.failed > 0)
        json_object_set_new(out, "first_error", json_string(b.first_error));
    cb_emit(out);
    ret = b.failed == 0 && b.done == o->count ? 0 : 1;

Drain:
    for (unsigned i = 0; i < conc; i++)
        if (slots[i].channel != NULL)
            grpc_channel_destroy(slots[i].channel);
    if (b.creds != NULL)
        grpc_channel_credentials_release(b.creds);
    if (b.cq != NULL) {
        grpc_completion_queue_shutdown(b.cq);
        while (grpc_completion_queue_next(b.cq, cb_deadline_in_ms(5000), NULL).type == GRPC_OP_COMPLETE)
            ;
        grpc_completion_queue_destroy(b.cq);
    }
Exit:
    if (b.requests != NULL)
        for (unsigned i = 0; i < o->count; i++)
            if (b.requests[i] != NULL)
                grpc_byte_buffer_destroy(b.requests[i]);
    free(b.requests);
    free(b.latency);
    free(slots);
    free(roots);
    free(token);
    return ret < 0 ? 1 : ret;
}

/* One Sign call with a fresh key; writes the chain and the key. */
int cb_run_svid(const bench_opts_t *o)
{
    sign_call_t sc;
    grpc_completion_queue *cq = NULL;
    grpc_channel_credentials *creds = NULL;
    grpc_byte_buffer *request = NULL;
    Ringmesh__V1__SignResponse *resp = NULL;
    char *roots = NULL, *token = NULL, *csr = NULL, *key = NULL, err[256];
    size_t roots_len, csr_len, key_len = 0;
    int ret;

    if (cb_require("svid", "target", o->target) || cb_require("svid", "bundle", o->bundle) ||
        cb_require("svid", "token", o->token) || cb_require("svid", "cert-out", o->cert_out) ||
        cb_require("svid", "key-out", o->key_out))
        return 2;
    memset(&sc, 0, sizeof(sc));
    if ((ret = cb_read_file(o->bundle, &roots, &roots_len)) != 0 || (ret = cb_read_token(o->token, &token)) != 0) {
        fprintf(stderr, "control_bench svid: cannot read the bundle or the token: %s\n", rm_strerror(ret));
        goto Exit;
    }
    if ((ret = make_csr(&csr, &csr_len, &key, &key_len)) != 0) {
        fprintf(stderr, "control_bench svid: cannot make a key and CSR: %s\n", rm_strerror(ret));
        goto Exit;
    }
    request = pack_sign_request(csr, token, o->ttl_s);
    cq = grpc_completion_queue_create_for_next(NULL);
    creds = grpc_ssl_credentials_create_ex(roots, NULL, NULL, NULL);
    if ((sc.channel = cb_make_channel(o->target, creds)) == NULL || sign_start(&sc, cq, request) != 0) {
        fprintf(stderr, "control_bench svid: cannot start the call\n");
        ret = -EIO;
        goto Exit;
    }
    {
        /* the call's own deadline bounds this wait */
        grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        resp = sign_finish(&sc, ev.type == GRPC_OP_COMPLETE && ev.success, err, sizeof(err));
    }
    if (resp == NULL) {
        fprintf(stderr, "control_bench svid: Identity.Sign failed: %s\n", err);
        ret = -EIO;
        goto Exit;
    }
    if ((ret = rm_x509_write_file(o->key_out, key, key_len, 1)) != 0 ||
        (ret = rm_x509_write_file(o->cert_out, resp->cert_chain_pem, strlen(resp->cert_chain_pem), 0)) != 0) {
        fprintf(stderr, "control_bench svid: cannot write the SVID: %s\n", rm_strerror(ret));
        goto Exit;
    }
    {
        json_t *out = json_object();
        json_object_set_new(out, "mode", json_string("svid"));
        json_object_set_new(out, "spiffe_id", json_string(resp->spiffe_id != NULL ? resp->spiffe_id : ""));
        json_object_set_new(out, "not_before", json_integer(resp->not_before));
        json_object_set_new(out, "not_after", json_integer(resp->not_after));
        cb_emit(out);
    }
    ret = 0;

Exit:
    if (resp != NULL)
        ringmesh__v1__sign_response__free_unpacked(resp, NULL);
    if (sc.channel != NULL)
        grpc_channel_destroy(sc.channel);
    if (creds != NULL)
        grpc_channel_credentials_release(creds);
    if (cq != NULL) {
        grpc_completion_queue_shutdown(cq);
        while (grpc_completion_queue_next(cq, cb_deadline_in_ms(5000), NULL).type == GRPC_OP_COMPLETE)
            ;
        grpc_completion_queue_destroy(cq);
    }
    if (request != NULL)
        grpc_byte_buffer_destroy(request);
    if (key != NULL)
        rm_x509_free_secret(key, key_len);
    free(csr);
    free(roots);
    free(token);
    return ret == 0 ? 0 : 1;
}
