/* Observe mode's fast path of the HTTP/1.x filter (http1_filter.h, rm_http1_filter_set_observe): requests and
 * responses whose heads the scanner recognises (http1_scan.h) are taken without http_parser, their bodies moved by
 * count, and the filter is left exactly as the parser path would leave it. Anything else goes to the parser path
 * (http1_filter.c) for the whole message. */
#include "http1_filter_internal.h"
#include "http1_scan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Room for n entries in the field index (as request_on_header_field grows it). */
static int reserve_fields(rm_http1_filter_t *f, size_t n)
{
    if (n <= f->fields_cap)
        return 0;
    rm__http1_field_t *index = realloc(f->field_index, n * sizeof(*index));
    if (index == NULL)
        return -ENOMEM;
    f->field_index = index;
    rm_http_header_t *headers = realloc(f->hook_headers, n * sizeof(*headers));
    if (headers == NULL)
        return -ENOMEM;
    f->hook_headers = headers;
    f->fields_cap = n;
    return 0;
}

/* Observe mode: takes the request at in[0, len) when the scanner recognises its head (http1_scan.h), or goes on
 * with the body of the one it took, leaving the filter as the parser's callbacks would have: the head in f->head,
 * target and fields in f->fields, the hook called through rm__http1_decide_request, the body forwarded and counted, the
 * next request awaited. *used is how many bytes it took: 0 when the parser must take the request (the scanner does not
 * recognise it, or the parser is inside one). Returns 0 or an error. */
int rm__http1_fast_request(rm_http1_filter_t *f, const uint8_t *in, size_t len, size_t *used, rm_bytebuf_t *to_app,
                           rm_bytebuf_t *to_client)
{
    rm__http1_field_t scanned[RM_HTTP1_MAX_HEADERS];
    size_t n = 0, body;
    int ret;

    *used = 0;
    if (!f->req_fast) {
        rm_http1_req_head_t h;
        _Static_assert(sizeof(rm__http1_field_t) == sizeof(rm_http1_scan_field_t), "the same four offsets");
        if (!f->observe || f->req_parsed || f->client_state != RM__HTTP1_CS_HEAD || f->head.len != 0 ||
            !rm_http1_scan_request_head(in, len, &h, (rm_http1_scan_field_t *)scanned, RM_HTTP1_MAX_HEADERS))
            return 0;
        /* what the parser's callbacks would have collected */
        if ((ret = reserve_fields(f, h.num_fields)) != 0 || (ret = rm_bytebuf_append(&f->head, in, h.head_len)) != 0)
            return ret;
        f->fields.len = 0;
        if (rm__http1_append_field_bytes(f, (const char *)in + h.target_off, h.target_len, 0) != 0)
            return -ENOMEM;
        f->url_len = h.target_len;
        for (size_t i = 0; i != h.num_fields; i++) {
            rm__http1_field_t *field = f->field_index + i;
            field->name_off = field->value_off = (uint32_t)f->fields.len;
            field->name_len = scanned[i].name_len;
            field->value_len = scanned[i].value_len;
            if (rm__http1_append_field_bytes(f, (const char *)in + scanned[i].name_off, scanned[i].name_len, 1) != 0)
                return -ENOMEM;
            if (scanned[i].value_len != 0) {
                field->value_off = (uint32_t)f->fields.len;
                if (rm__http1_append_field_bytes(f, (const char *)in + scanned[i].value_off, scanned[i].value_len, 0) !=
                    0)
                    return -ENOMEM;
            }
        }
        f->num_fields = h.num_fields;
        rm__http1_head_info_t hi = {
            .method = h.method, .keep_alive = 1, .has_length = 1, .scanned = 1, .content_length = h.content_length};
        n = h.head_len;
        if ((ret = rm__http1_decide_request(f, &hi, to_app, to_client)) != 0)
            return ret;
        *used = n;
        if (f->client_state != RM__HTTP1_CS_BODY_FORWARD && f->client_state != RM__HTTP1_CS_BODY_DROP)
            return 0; /* refused with a close (400, or a closing 403): nothing more is read */
        f->req_left = h.content_length;
        f->req_fast = 1;
    }
    body = len - n < f->req_left ? len - n : (size_t)f->req_left;
    if (f->client_state == RM__HTTP1_CS_BODY_FORWARD && (ret = rm_bytebuf_append(to_app, in + n, body)) != 0)
        return ret;
    if (body != 0 && f->pending_len != 0) {
        rm__http1_pending_t *tail = f->pending + (f->pending_head + f->pending_len - 1) % f->pending_cap;
        if (tail->seq == f->req_seq)
            tail->request_bytes += body;
    }
    n += body;
    f->req_left -= body;
    *used = n;
    if (f->req_left == 0) {
        f->req_fast = 0;
        rm__http1_request_done(f);
    }
    return 0;
}

/* Observe mode: takes the response at in[0, len) when the scanner frames it (http1_scan.h), or goes on with the one
 * it framed, passing its bytes to to_client and ending it as the parser would. *used is how many bytes it took: 0
 * when the parser must take the message (the scanner does not recognise its head, or the parser is inside a
 * message, or the request it answers has framing of its own: HEAD, CONNECT, Upgrade). Returns 0 or an error. */
int rm__http1_fast_response(rm_http1_filter_t *f, const uint8_t *in, size_t len, size_t *used, rm_bytebuf_t *to_app,
                            rm_bytebuf_t *to_client)
{
    size_t n = 0, body;
    int ret;

    *used = 0;
    if (!f->resp_fast) {
        const rm__http1_pending_t *front = f->pending_len != 0 ? f->pending + f->pending_head : NULL;
        rm_http1_resp_head_t h;
        if (!f->observe || f->resp_parsed || f->resp_nofast || front == NULL ||
            front->kind != RM__HTTP1_PENDING_FORWARDED ||
            (front->flags & (RM__HTTP1_PF_HEAD | RM__HTTP1_PF_CONNECT | RM__HTTP1_PF_UPGRADE)) != 0 ||
            !rm_http1_scan_response_head(in, len, &h))
            return 0;
        n = h.head_len;
        f->resp_status = h.status;
        f->resp_bytes = 0;
        f->resp_left = h.content_length;
        f->resp_fast = 1;
    }
    body = len - n < f->resp_left ? len - n : (size_t)f->resp_left;
    n += body;
    f->resp_bytes += body;
    f->resp_left -= body;
    if ((ret = rm_bytebuf_append(to_client, in, n)) != 0)
        return ret;
    *used = n;
    if (f->resp_left != 0)
        return 0;
    f->resp_fast = 0;
    return rm__http1_response_done(f, f->resp_status, 0, to_app, to_client);
}

void rm_http1_filter_set_observe(rm_http1_filter_t *f)
{
    f->observe = 1;
}
