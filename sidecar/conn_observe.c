/* The connection's reports (conn_observe.h). Nothing is recorded yet. */
#include "conn_observe.h"

#include "proxy_conn-t.h"

void rm__conn_observe_request(struct st_rm_conn_t *c, const rm_http_request_t *req, rm_http_verdict_t verdict,
                              rm_http_decision_t *out)
{
    (void)c;
    (void)req;
    (void)verdict;
    out->cookie = 0;
}

void rm__conn_observe_exchange(void *conn, const rm_http_exchange_t *ex)
{
    (void)conn;
    (void)ex;
}

void rm__conn_observe_opened(struct st_rm_conn_t *c)
{
    (void)c;
}

void rm__conn_observe_closed(struct st_rm_conn_t *c)
{
    (void)c;
}
