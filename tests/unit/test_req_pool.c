/* The pool's decisions (sidecar/req_pool.h): the least busy ready connection takes a request, a full or draining
 * one never does, a second connection opens only when the first is full and never past the limit, a connection
 * being opened is waited for; idle and drained connections close; PING when the peer is quiet, lost when unanswered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "req_pool.h"

static rm_req_pool_conn_t conn(uint32_t open, uint32_t max, int ready, int draining)
{
    rm_req_pool_conn_t c = {0};
    c.open_streams = open;
    c.max_streams = max;
    c.ready = (uint8_t)ready;
    c.draining = (uint8_t)draining;
    return c;
}

static void test_choose(void **state)
{
    (void)state;
    size_t idx = 99;
    /* none yet: open the first */
    assert_int_equal(rm_req_pool_choose(NULL, 0, 2, &idx), RM_REQ_POOL_OPEN);
    /* being opened: wait for it rather than open a second */
    rm_req_pool_conn_t a[3] = {conn(0, 100, 0, 0)};
    assert_int_equal(rm_req_pool_choose(a, 1, 2, &idx), RM_REQ_POOL_WAIT);
    /* ready with room: use it */
    a[0] = conn(5, 100, 1, 0);
    assert_int_equal(rm_req_pool_choose(a, 1, 2, &idx), RM_REQ_POOL_USE);
    assert_int_equal(idx, 0);
    /* full: a second one opens; with the limit reached, wait */
    a[0] = conn(100, 100, 1, 0);
    assert_int_equal(rm_req_pool_choose(a, 1, 2, &idx), RM_REQ_POOL_OPEN);
    a[1] = conn(2, 2, 1, 0);
    assert_int_equal(rm_req_pool_choose(a, 2, 2, &idx), RM_REQ_POOL_WAIT);
    /* the least busy of those with room */
    a[0] = conn(7, 100, 1, 0);
    a[1] = conn(3, 100, 1, 0);
    assert_int_equal(rm_req_pool_choose(a, 2, 2, &idx), RM_REQ_POOL_USE);
    assert_int_equal(idx, 1);
    /* a draining one is never used and does not count against the limit */
    a[0] = conn(0, 100, 1, 1);
    a[1] = conn(100, 100, 1, 0);
    assert_int_equal(rm_req_pool_choose(a, 2, 2, &idx), RM_REQ_POOL_OPEN);
    a[2] = conn(0, 100, 1, 0);
    assert_int_equal(rm_req_pool_choose(a, 3, 2, &idx), RM_REQ_POOL_USE);
    assert_int_equal(idx, 2);
}

static void test_close_and_ping(void **state)
{
    (void)state;
    rm_req_pool_conn_t c = conn(1, 100, 1, 0);
    c.idle_since_ms = 1000;
    c.last_recv_ms = 1000;
    /* busy: never closed */
    assert_false(rm_req_pool_should_close(&c, 1000000, 60000));
    c.open_streams = 0;
    assert_false(rm_req_pool_should_close(&c, 60999, 60000));
    assert_true(rm_req_pool_should_close(&c, 61000, 60000));
    assert_false(rm_req_pool_should_close(&c, 61000, 0));
    /* draining: closed as soon as its streams are done */
    c.draining = 1;
    c.open_streams = 1;
    assert_false(rm_req_pool_should_close(&c, 1001, 60000));
    c.open_streams = 0;
    assert_true(rm_req_pool_should_close(&c, 1001, 60000));
    /* PING after 10 s of silence, lost after 20 s */
    c = conn(0, 100, 1, 0);
    c.last_recv_ms = 5000;
    assert_false(rm_req_pool_ping_due(&c, 14999, 10000));
    assert_true(rm_req_pool_ping_due(&c, 15000, 10000));
    c.ping_out = 1;
    assert_false(rm_req_pool_ping_due(&c, 15000, 10000));
    assert_false(rm_req_pool_ping_lost(&c, 24999, 10000));
    assert_true(rm_req_pool_ping_lost(&c, 25000, 10000));
    c.draining = 1;
    assert_false(rm_req_pool_ping_due(&c, 99999, 10000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choose),
        cmocka_unit_test(test_close_and_ping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
