/* control_bench streams: simulated sidecars' Discovery streams against ringmesh-control, and configuration changes
 * timed until every stream has them (see control_bench.c for the modes). */
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

/* ------------------------------------------------------------------ Discovery streams */

typedef struct st_worker_t worker_t;
typedef struct st_sidecar_t sidecar_t;

/* Every batch carries a tag; its callback runs on the worker's thread when the batch completes. */
typedef struct st_sidecar_tag_t sidecar_tag_t;
struct st_sidecar_tag_t {
    void (*cb)(sidecar_tag_t *tag, int ok);
};

/* One sidecar: a channel, a stream, and what it must still send. Owned by its worker's thread; the fields other
 * threads read are atomic. */
struct st_sidecar_t {
    worker_t *w;
    unsigned index;
    grpc_channel *channel;
    grpc_call *call;
    sidecar_tag_t t_start, t_status, t_send, t_read;
    int pending; /* batches in flight */
    int status_done, sending, node_sent, have_mask;
    grpc_byte_buffer *recv, *inflight_send;
    grpc_metadata_array md_initial, md_trailing;
    grpc_status_code status;
    grpc_slice status_details;
    /* per type: the request still to send (a subscription, or the ACK of the latest push) */
    struct {
        int want;
        char version[RM_XDS_VERSION_LEN + 8];
        char nonce[64];
    } out[RM_XDS_NUM_TYPES];
    int64_t opened_ns, ready_ns;
    atomic_int state;       /* sidecar_state_t */
    atomic_uint change_seq; /* the last change this sidecar received */
    atomic_llong change_ns; /* when */
};

typedef enum { SC_IDLE, SC_CONNECTING, SC_READY, SC_CLOSED } sidecar_state_t;

typedef struct st_streams_bench_t {
    const bench_opts_t *opts;
    grpc_channel_credentials *creds;
    sidecar_t *sidecars;
    atomic_uint ready, failed, failed_after_ready, bad_pushes, pushes;
    atomic_int stopping;
    /* changes: the main thread writes names[k] before it publishes seq = k */
    char change_names[MAX_CHANGES + 1][64];
    atomic_uint change_seq;
    atomic_uint change_got[MAX_CHANGES + 1];
    pthread_mutex_t err_mutex;
    char first_error[256];
} streams_bench_t;

struct st_worker_t {
    streams_bench_t *b;
    unsigned id;
    grpc_completion_queue *cq;
    pthread_t thread;
    unsigned next_index; /* next sidecar to open: id, id + workers, ... */
    unsigned connecting, open_calls;
    int cancelled;
};

static void note_error(streams_bench_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note_error(streams_bench_t *b, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&b->err_mutex);
    if (b->first_error[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(b->first_error, sizeof(b->first_error), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&b->err_mutex);
}

static void sidecar_send_next(sidecar_t *sc);
static void sidecar_close(sidecar_t *sc);

/* Closes the sidecar once its stream has ended and every batch has completed. */
static void sidecar_maybe_close(sidecar_t *sc)
{
    if (sc->status_done && sc->pending == 0 && atomic_load(&sc->state) != SC_CLOSED)
        sidecar_close(sc);
}

static void sidecar_on_send(sidecar_tag_t *tag, int ok)
{
    sidecar_t *sc = container_of(tag, sidecar_t, t_send);

    sc->pending--;
    sc->sending = 0;
    grpc_byte_buffer_destroy(sc->inflight_send);
    sc->inflight_send = NULL;
    if (ok)
        sidecar_send_next(sc);
    sidecar_maybe_close(sc);
}

/* Sends the next request waiting (one SEND_MESSAGE in flight per call): the first one carries the node. */
static void sidecar_send_next(sidecar_t *sc)
{
    const bench_opts_t *o = sc->w->b->opts;
    Ringmesh__V1__DiscoveryRequest req = RINGMESH__V1__DISCOVERY_REQUEST__INIT;
    Ringmesh__V1__Node node = RINGMESH__V1__NODE__INIT;
    char node_id[32];
    grpc_slice sl;
    grpc_op op;
    size_t len;
    int t;

    if (sc->sending || sc->call == NULL || sc->status_done)
        return;
    for (t = 0; t < RM_XDS_NUM_TYPES && !sc->out[t].want; t++)
        ;
    if (t == RM_XDS_NUM_TYPES)
        return;
    sc->out[t].want = 0;
    if (!sc->node_sent) {
        snprintf(node_id, sizeof(node_id), "bench-%u", sc->index);
        node.id = node_id;
        node.namespace_ = (char *)o->ns;
        node.service_account = (char *)o->sa;
        node.proxy_version = "control_bench";
        req.node = &node;
        sc->node_sent = 1;
    }
    req.type_url = (char *)rm_xds_type_url((rm_xds_type_t)t);
    req.version_info = sc->out[t].version;
    req.response_nonce = sc->out[t].nonce;
    len = ringmesh__v1__discovery_request__get_packed_size(&req);
    sl = grpc_slice_malloc(len);
    ringmesh__v1__discovery_request__pack(&req, GRPC_SLICE_START_PTR(sl));
    sc->inflight_send = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = sc->inflight_send;
    if (grpc_call_start_batch(sc->call, &op, 1, &sc->t_send, NULL) != GRPC_CALL_OK) {
        grpc_byte_buffer_destroy(sc->inflight_send);
        sc->inflight_send = NULL;
        return;
    }
    sc->pending++;
    sc->sending = 1;
}

static void sidecar_start_read(sidecar_t *sc)
{
    grpc_op op;

    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &sc->recv;
    if (grpc_call_start_batch(sc->call, &op, 1, &sc->t_read, NULL) == GRPC_CALL_OK)
        sc->pending++;
}

static void sidecar_handle_push(sidecar_t *sc, const Ringmesh__V1__DiscoveryResponse *resp, int64_t received)
{
    streams_bench_t *b = sc->w->b;
    int t = rm_xds_type_from_url(resp->type_url);
    unsigned seq;

    if (t < 0 || resp->n_resources != 1 || resp->version_info == NULL || resp->nonce == NULL) {
        atomic_fetch_add(&b->bad_pushes, 1);
        note_error(b, "stream %u: a push with type \"%s\" and %zu resources", sc->index,
                   resp->type_url != NULL ? resp->type_url : "", resp->n_resources);
        return;
    }
    atomic_fetch_add(&b->pushes, 1);
    snprintf(sc->out[t].version, sizeof(sc->out[t].version), "%s", resp->version_info);
    snprintf(sc->out[t].nonce, sizeof(sc->out[t].nonce), "%s", resp->nonce);
    sc->out[t].want = 1;
    sc->have_mask |= 1 << t;
    if (sc->have_mask == (1 << RM_XDS_NUM_TYPES) - 1 && atomic_load(&sc->state) == SC_CONNECTING) {
        sc->ready_ns = received;
        sc->w->connecting--;
        atomic_store(&sc->state, SC_READY);
        atomic_fetch_add(&b->ready, 1);
    }
    /* A change counts as received when the DestinationMap holds the destination it added. Its name appears as is
     * in the serialized map (protobuf strings are not encoded), which spares decoding every map. */
    if (t == RM_XDS_DESTINATIONS && (seq = atomic_load(&b->change_seq)) > atomic_load(&sc->change_seq)) {
        const ProtobufCBinaryData *v = &resp->resources[0]->value;
        const char *name = b->change_names[seq];
        if (memmem(v->data, v->len, name, strlen(name)) != NULL) {
            atomic_store(&sc->change_ns, received);
            atomic_store(&sc->change_seq, seq);
            atomic_fetch_add(&b->change_got[seq], 1);
        }
    }
    sidecar_send_next(sc);
}

static void sidecar_on_read(sidecar_tag_t *tag, int ok)
{
    sidecar_t *sc = container_of(tag, sidecar_t, t_read);
    int64_t received = cb_now_ns();
    Ringmesh__V1__DiscoveryResponse *resp;
    grpc_slice all;

    sc->pending--;
    if (!ok || sc->recv == NULL) {
        sidecar_maybe_close(sc); /* the stream is ending: the status says why */
        return;
    }
    all = cb_message_slice(sc->recv);
    grpc_byte_buffer_destroy(sc->recv);
    sc->recv = NULL;
    if ((resp = ringmesh__v1__discovery_response__unpack(NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all))) !=
        NULL) {
        sidecar_handle_push(sc, resp, received);
        ringmesh__v1__discovery_response__free_unpacked(resp, NULL);
    } else {
        atomic_fetch_add(&sc->w->b->bad_pushes, 1);
        note_error(sc->w->b, "stream %u: a push does not decode", sc->index);
    }
    grpc_slice_unref(all);
    sidecar_start_read(sc);
    sidecar_maybe_close(sc);
}

static void sidecar_on_start(sidecar_tag_t *tag, int ok)
{
    sidecar_t *sc = container_of(tag, sidecar_t, t_start);

    (void)ok;
    sc->pending--;
    sidecar_maybe_close(sc);
}

static void sidecar_on_status(sidecar_tag_t *tag, int ok)
{
    sidecar_t *sc = container_of(tag, sidecar_t, t_status);

    (void)ok;
    sc->pending--;
    sc->status_done = 1;
    sidecar_maybe_close(sc);
}

static void sidecar_open(sidecar_t *sc)
{
    worker_t *w = sc->w;
    grpc_slice method = grpc_slice_from_static_string(METHOD_STREAM);
    grpc_op ops[2];

    sc->opened_ns = cb_now_ns();
    atomic_store(&sc->state, SC_CONNECTING);
    w->connecting++;
    w->open_calls++;
    sc->t_start.cb = sidecar_on_start;
    sc->t_status.cb = sidecar_on_status;
    sc->t_send.cb = sidecar_on_send;
    sc->t_read.cb = sidecar_on_read;
    grpc_metadata_array_init(&sc->md_initial);
    grpc_metadata_array_init(&sc->md_trailing);
    sc->status_details = grpc_empty_slice();
    if (sc->channel == NULL ||
        (sc->call = grpc_channel_create_call(sc->channel, NULL, GRPC_PROPAGATE_DEFAULTS, w->cq, method, NULL,
                                             gpr_inf_future(GPR_CLOCK_REALTIME), NULL)) == NULL) {
        note_error(w->b, "stream %u: cannot create the channel or the call", sc->index);
        sidecar_close(sc);
        return;
    }
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &sc->md_initial;
    if (grpc_call_start_batch(sc->call, ops, 2, &sc->t_start, NULL) == GRPC_CALL_OK)
        sc->pending++;
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &sc->md_trailing;
    ops[0].data.recv_status_on_client.status = &sc->status;
    ops[0].data.recv_status_on_client.status_details = &sc->status_details;
    if (grpc_call_start_batch(sc->call, ops, 1, &sc->t_status, NULL) == GRPC_CALL_OK)
        sc->pending++;
    else
        sc->status_done = 1;
    for (int t = 0; t < RM_XDS_NUM_TYPES; t++)
        sc->out[t].want = 1; /* subscribe, version and nonce "" */
    sidecar_send_next(sc);
    sidecar_start_read(sc);
}

/* The stream has ended and every batch has completed. */
static void sidecar_close(sidecar_t *sc)
{
    worker_t *w = sc->w;
    streams_bench_t *b = w->b;
    int was = atomic_load(&sc->state);

    if (!atomic_load(&b->stopping)) {
        atomic_fetch_add(&b->failed, 1);
        if (was == SC_READY)
            atomic_fetch_add(&b->failed_after_ready, 1);
        note_error(b, "stream %u: grpc-status %d: %.*s", sc->index, (int)sc->status,
                   (int)GRPC_SLICE_LENGTH(sc->status_details), (const char *)GRPC_SLICE_START_PTR(sc->status_details));
    }
    if (was == SC_CONNECTING)
        w->connecting--;
    w->open_calls--;
    atomic_store(&sc->state, SC_CLOSED);
    if (sc->call != NULL)
        grpc_call_unref(sc->call);
    sc->call = NULL;
    grpc_slice_unref(sc->status_details);
    grpc_metadata_array_destroy(&sc->md_initial);
    grpc_metadata_array_destroy(&sc->md_trailing);
    if (sc->recv != NULL)
        grpc_byte_buffer_destroy(sc->recv);
    sc->recv = NULL;
    if (sc->channel != NULL)
        grpc_channel_destroy(sc->channel);
    sc->channel = NULL;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    streams_bench_t *b = w->b;
    const bench_opts_t *o = b->opts;
    unsigned budget = (o->parallel + o->workers - 1) / o->workers;
    int64_t stop_deadline = 0;

    for (;;) {
        if (!atomic_load(&b->stopping)) {
            while (w->next_index < o->count && w->connecting < budget) {
                sidecar_open(&b->sidecars[w->next_index]);
                w->next_index += o->workers;
            }
        } else if (!w->cancelled) {
            w->cancelled = 1;
            stop_deadline = cb_now_ns() + (int64_t)CLOSE_TIMEOUT_MS * 1000000;
            for (unsigned i = w->id; i < w->next_index && i < o->count; i += o->workers)
                if (b->sidecars[i].call != NULL && !b->sidecars[i].status_done)
                    grpc_call_cancel(b->sidecars[i].call, NULL);
        }
        if (w->cancelled && (w->open_calls == 0 || cb_now_ns() > stop_deadline))
            break;
        grpc_event ev = grpc_completion_queue_next(w->cq, cb_deadline_in_ms(WORKER_POLL_MS), NULL);
        if (ev.type == GRPC_OP_COMPLETE)
            ((sidecar_tag_t *)ev.tag)->cb(ev.tag, ev.success);
    }
    return NULL;
}

/* Writes the change's Service to a hidden file, then renames it to its YAML name: the control plane sees one
 * complete file appear (IN_MOVED_TO). Returns 0 or -errno. */
static int write_change(const bench_opts_t *o, unsigned k, int64_t *t0)
{
    char tmp[4096], dst[4096], body[512];
    FILE *f;
    int n;

    snprintf(tmp, sizeof(tmp), "%s/.bench-change.tmp", o->config_dir);
    snprintf(dst, sizeof(dst), "%s/zz-bench-change.yaml", o->config_dir);
    n = snprintf(body, sizeof(body),
                 "apiVersion: ringmesh.io/v1alpha1\n"
                 "kind: Service\n"
                 "metadata: {name: change-%u, namespace: bench}\n"
                 "spec:\n"
                 "  addresses: [198.19.250.%u]\n"
                 "  ports: [8080]\n"
                 "  serviceAccounts: [%s]\n",
                 k, k, o->sa);
    if ((f = fopen(tmp, "we")) == NULL)
        return -errno;
    if (fwrite(body, 1, (size_t)n, f) != (size_t)n || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        int ret = -errno;
        fclose(f);
        return ret;
    }
    fclose(f);
    *t0 = cb_now_ns();
    return rename(tmp, dst) == 0 ? 0 : -errno;
}

static void remove_change(const bench_opts_t *o)
{
    char dst[4096];

    snprintf(dst, sizeof(dst), "%s/zz-bench-change.yaml", o->config_dir);
    unlink(dst);
}

int cb_run_streams(const bench_opts_t *o)
{
    streams_bench_t *b;
    worker_t workers[MAX_WORKERS];
    char *roots = NULL, *cert = NULL, *key = NULL;
    size_t roots_len, cert_len, key_len;
    long rss0, pss0, rss1, pss1;
    int64_t *lat = NULL, t_setup, t_start, t_all, deadline, cpu0, cpu1, self0, self1;
    unsigned started = 0, ready;
    int complete; /* every stream up, every change received by every stream, no failure */
    int ret = 1;
    json_t *out;

    if (cb_require("streams", "target", o->target) || cb_require("streams", "bundle", o->bundle) ||
        cb_require("streams", "cert", o->cert) || cb_require("streams", "key", o->key) ||
        cb_require("streams", "ns", o->ns) || cb_require("streams", "sa", o->sa) ||
        cb_require("streams", "config-dir", o->config_dir))
        return 2;
    if (o->count == 0 || o->control_pid == 0) {
        fprintf(stderr, "control_bench streams: --count and --control-pid are required\n");
        return 2;
    }
    if (o->count > MAX_STREAMS) {
        fprintf(stderr, "control_bench streams: at most %d streams\n", MAX_STREAMS);
        return 2;
    }
    if (cb_raise_nofile((rlim_t)o->count * 2 + 1024) != 0)
        fprintf(stderr, "control_bench streams: RLIMIT_NOFILE is below %u; some streams will fail\n",
                o->count * 2 + 1024);
    if ((b = calloc(1, sizeof(*b))) == NULL) {
        fprintf(stderr, "control_bench streams: out of memory\n");
        return 1;
    }
    b->opts = o;
    pthread_mutex_init(&b->err_mutex, NULL);
    if ((b->sidecars = calloc(o->count, sizeof(*b->sidecars))) == NULL ||
        (lat = calloc(o->count, sizeof(*lat))) == NULL) {
        fprintf(stderr, "control_bench streams: out of memory\n");
        goto Exit;
    }
    if (cb_read_file(o->bundle, &roots, &roots_len) != 0 || cb_read_file(o->cert, &cert, &cert_len) != 0 ||
        cb_read_file(o->key, &key, &key_len) != 0) {
        fprintf(stderr, "control_bench streams: cannot read --bundle, --cert or --key\n");
        goto Exit;
    }
    {
        grpc_ssl_pem_key_cert_pair pair = {key, cert};
        /* one credentials object for every channel: each channel still makes its own TLS connection */
        b->creds = grpc_ssl_credentials_create_ex(roots, &pair, NULL, NULL);
    }
    for (unsigned i = 0; i < o->count; i++) {
        b->sidecars[i].index = i;
        b->sidecars[i].w = &workers[i % o->workers];
    }
    /* Channels first, untimed (a channel connects only when its stream starts). */
    t_setup = cb_now_ns();
    for (unsigned i = 0; i < o->count; i++)
        if ((b->sidecars[i].channel = cb_make_channel(o->target, b->creds)) == NULL)
            note_error(b, "stream %u: cannot create the channel", i);
    t_setup = cb_now_ns() - t_setup;
    remove_change(o);
    /* the control plane has just started; let its heap settle before the idle reading */
    cb_sleep_ms(500);
    if (cb_proc_memory(o->control_pid, &rss0, &pss0) != 0) {
        fprintf(stderr, "control_bench streams: cannot read the memory of process %ld\n", o->control_pid);
        goto Exit;
    }
    cpu0 = cb_proc_cpu_ms(o->control_pid);
    self0 = cb_proc_cpu_ms((long)getpid());

    t_start = cb_now_ns();
    for (unsigned i = 0; i < o->workers; i++) {
        memset(&workers[i], 0, sizeof(workers[i]));
        workers[i].b = b;
        workers[i].id = i;
        workers[i].next_index = i;
        workers[i].cq = grpc_completion_queue_create_for_next(NULL);
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            grpc_completion_queue_destroy(workers[i].cq);
            break;
        }
        started++;
    }
    if (started != o->workers) {
        fprintf(stderr, "control_bench streams: cannot start the worker threads\n");
        goto Stop;
    }
    deadline = t_start + (int64_t)o->connect_timeout_s * 1000000000;
    while (atomic_load(&b->ready) + atomic_load(&b->failed) < o->count && cb_now_ns() < deadline)
        cb_sleep_ms(5);
    t_all = cb_now_ns();
    ready = atomic_load(&b->ready);
    complete = ready == o->count;
    cpu1 = cb_proc_cpu_ms(o->control_pid);
    self1 = cb_proc_cpu_ms((long)getpid());
    cb_sleep_ms(SETTLE_MS);
    cb_proc_memory(o->control_pid, &rss1, &pss1);

    {
        size_t n = 0;
        for (unsigned i = 0; i < o->count; i++)
            if (atomic_load(&b->sidecars[i].state) == SC_READY)
                lat[n++] = b->sidecars[i].ready_ns - b->sidecars[i].opened_ns;
        out = json_object();
        json_object_set_new(out, "mode", json_string("streams"));
        json_object_set_new(out, "phase", json_string("connect"));
        json_object_set_new(out, "count", json_integer(o->count));
        json_object_set_new(out, "threads", json_integer(o->workers));
        json_object_set_new(out, "parallel", json_integer(o->parallel));
        json_object_set_new(out, "ready", json_integer(ready));
        json_object_set_new(out, "failed", json_integer(atomic_load(&b->failed)));
        json_object_set_new(out, "channel_setup_s", json_real((double)t_setup / 1e9));
        json_object_set_new(out, "connect_all_s", json_real((double)(t_all - t_start) / 1e9));
        json_object_set_new(out, "streams_per_s", json_real(ready / ((double)(t_all - t_start) / 1e9)));
        cb_set_latencies(out, "ready_", lat, n);
        json_object_set_new(out, "control_cpu_ms", json_integer(cpu1 - cpu0));
        json_object_set_new(out, "bench_cpu_ms", json_integer(self1 - self0));
        json_object_set_new(out, "control_rss_idle_kb", json_integer(rss0));
        json_object_set_new(out, "control_rss_kb", json_integer(rss1));
        json_object_set_new(out, "control_pss_idle_kb", json_integer(pss0));
        json_object_set_new(out, "control_pss_kb", json_integer(pss1));
        /* streams still up at the reading */
        ready = atomic_load(&b->ready) - atomic_load(&b->failed_after_ready);
        json_object_set_new(out, "streams_at_reading", json_integer(ready));
        json_object_set_new(out, "rss_per_stream_kb", json_real(ready ? (double)(rss1 - rss0) / ready : 0));
        json_object_set_new(out, "pss_per_stream_kb", json_real(ready ? (double)(pss1 - pss0) / ready : 0));
        json_object_set_new(out, "bench_rss_kb", json_integer(cb_self_rss_kb()));
        json_object_set_new(out, "pushes", json_integer(atomic_load(&b->pushes)));
        json_object_set_new(out, "bad_pushes", json_integer(atomic_load(&b->bad_pushes)));
        pthread_mutex_lock(&b->err_mutex);
        if (b->first_error[0] != '\0')
            json_object_set_new(out, "first_error", json_string(b->first_error));
        pthread_mutex_unlock(&b->err_mutex);
        cb_emit(out);
    }

    for (unsigned k = 1; k <= o->changes && ready > 0; k++) {
        unsigned expected = 0, got;
        int64_t t0 = 0, t_end;
        size_t n = 0;

        cb_sleep_ms(CHANGE_GAP_MS);
        expected = 0;
        for (unsigned i = 0; i < o->count; i++)
            expected += atomic_load(&b->sidecars[i].state) == SC_READY;
        snprintf(b->change_names[k], sizeof(b->change_names[k]), "bench/change-%u", k);
        atomic_store(&b->change_seq, k);
        cpu0 = cb_proc_cpu_ms(o->control_pid);
        self0 = cb_proc_cpu_ms((long)getpid());
        if ((ret = write_change(o, k, &t0)) != 0) {
            fprintf(stderr, "control_bench streams: cannot write the change into %s: %s\n", o->config_dir,
                    strerror(-ret));
            ret = 1;
            goto Stop;
        }
        deadline = t0 + (int64_t)o->change_timeout_s * 1000000000;
        while ((got = atomic_load(&b->change_got[k])) < expected && cb_now_ns() < deadline)
            cb_sleep_ms(1);
        t_end = cb_now_ns();
        cpu1 = cb_proc_cpu_ms(o->control_pid);
        self1 = cb_proc_cpu_ms((long)getpid());
        for (unsigned i = 0; i < o->count; i++)
            if (atomic_load(&b->sidecars[i].change_seq) == k)
                lat[n++] = atomic_load(&b->sidecars[i].change_ns) - t0;
        out = json_object();
        json_object_set_new(out, "mode", json_string("streams"));
        json_object_set_new(out, "phase", json_string("change"));
        json_object_set_new(out, "count", json_integer(o->count));
        json_object_set_new(out, "change", json_integer(k));
        json_object_set_new(out, "expected", json_integer(expected));
        json_object_set_new(out, "received", json_integer(n));
        json_object_set_new(out, "timed_out", json_boolean(got < expected));
        complete &= got >= expected;
        cb_set_latencies(out, "", lat, n);
        json_object_set_new(out, "wait_s", json_real((double)(t_end - t0) / 1e9));
        json_object_set_new(out, "control_cpu_ms", json_integer(cpu1 - cpu0));
        json_object_set_new(out, "bench_cpu_ms", json_integer(self1 - self0));
        json_object_set_new(out, "failed", json_integer(atomic_load(&b->failed)));
        cb_emit(out);
    }
    ret = complete && atomic_load(&b->failed) == 0 ? 0 : 1;

Stop:
    remove_change(o);
    atomic_store(&b->stopping, 1);
    for (unsigned i = 0; i < started; i++) {
        pthread_join(workers[i].thread, NULL);
        if (workers[i].open_calls > 0) {
            /* calls that did not end in time: leave them, the process is about to exit */
            fprintf(stderr, "control_bench streams: %u streams did not close in time\n", workers[i].open_calls);
            continue;
        }
        grpc_completion_queue_shutdown(workers[i].cq);
        while (grpc_completion_queue_next(workers[i].cq, cb_deadline_in_ms(5000), NULL).type == GRPC_OP_COMPLETE)
            ;
        grpc_completion_queue_destroy(workers[i].cq);
    }
Exit:
    /* channels of sidecars never opened (a closed sidecar has destroyed its own) */
    for (unsigned i = 0; b->sidecars != NULL && i < o->count; i++)
        if (b->sidecars[i].channel != NULL && atomic_load(&b->sidecars[i].state) == SC_IDLE)
            grpc_channel_destroy(b->sidecars[i].channel);
    if (b->creds != NULL)
        grpc_channel_credentials_release(b->creds);
    free(roots);
    free(cert);
    if (key != NULL)
        rm_x509_free_secret(key, key_len);
    free(lat);
    free(b->sidecars);
    pthread_mutex_destroy(&b->err_mutex);
    free(b);
    return ret;
}
