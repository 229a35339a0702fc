/* The proxy file's `handshakes` settings: where inbound TLS handshakes run, how many may be in progress, and the
 * back-off of source addresses whose handshakes keep failing. */
#include "proxy_config_internal.h"

static const char *const priority_names[] = {"low", "idle", "normal", NULL};
static const int priority_values[] = {RM_HANDSHAKE_PRIORITY_LOW, RM_HANDSHAKE_PRIORITY_IDLE,
                                      RM_HANDSHAKE_PRIORITY_NORMAL};

#define HANDSHAKE_THREADS_MAX 16u

static int conv_ms(rm_config_doc_t *ctx, const char *path, const char *s, uint32_t *out)
{
    uint64_t v;
    int ret;
    if (s == NULL)
        return 0;
    if ((ret = rm_config_conv_duration(ctx, path, s, UINT32_MAX, &v)) != 0)
        return ret;
    if (v == 0)
        return rm_config_value_error(ctx, path, "must be longer than 0");
    *out = (uint32_t)v;
    return 0;
}

int rm__proxy_config_convert_handshakes(rm_config_doc_t *ctx, const raw_config_t *raw, rm_proxy_config_t *cfg)
{
    const raw_handshakes_t *h = raw->handshakes;
    int prio = (int)cfg->handshake_priority, ret;

    if (h == NULL)
        return 0;
    if ((ret = rm_config_conv_uint(ctx, "handshakes.threads", h->threads, 0, HANDSHAKE_THREADS_MAX,
                                   &cfg->handshake_threads)) != 0 ||
        (ret = rm_config_conv_enum(ctx, "handshakes.priority", h->priority, "a handshake priority", priority_names,
                                   priority_values, &prio)) != 0 ||
        (ret = rm_config_conv_uint(ctx, "handshakes.maxPending", h->max_pending, 1, CONFIG_CONN_MAX,
                                   &cfg->max_pending_handshakes)) != 0 ||
        (ret = rm_config_conv_uint(ctx, "handshakes.backoffAfterFailures", h->backoff_after_failures, 0, 1000000,
                                   &cfg->handshake_backoff_failures)) != 0 ||
        (ret = conv_ms(ctx, "handshakes.failureWindow", h->failure_window, &cfg->handshake_failure_window_ms)) != 0 ||
        (ret = conv_ms(ctx, "handshakes.backoff", h->backoff, &cfg->handshake_backoff_ms)) != 0)
        return ret;
    cfg->handshake_priority = (rm_handshake_priority_t)prio;
    return 0;
}
