/* The timing wheel: firing time, re-arming, rounds beyond one turn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/wheel.h"

typedef struct fired {
    gw_wheel_node_t *nodes[16];
    int n;
} fired_t;

static void record_cb(gw_wheel_node_t *node, void *data)
{
    fired_t *f = data;
    f->nodes[f->n++] = node;
}

static void test_fires_on_time(void **state)
{
    gw_wheel_t w;
    gw_wheel_node_t a = {0}, b = {0};
    fired_t f = {0};
    (void)state;

    gw_wheel_init(&w, 100, 1000);
    gw_wheel_add(&w, &a, 1250);
    gw_wheel_add(&w, &b, 1500);
    assert_int_equal(gw_wheel_advance(&w, 1199, record_cb, &f), 0);
    assert_int_equal(gw_wheel_advance(&w, 1299, record_cb, &f), 1);
    assert_ptr_equal(f.nodes[0], &a);
    assert_false(gw_wheel_armed(&a));
    assert_true(gw_wheel_armed(&b));
    assert_int_equal(gw_wheel_advance(&w, 1600, record_cb, &f), 1);
    assert_ptr_equal(f.nodes[1], &b);
}

static void test_del_and_rearm(void **state)
{
    gw_wheel_t w;
    gw_wheel_node_t a = {0};
    fired_t f = {0};
    (void)state;

    gw_wheel_init(&w, 100, 0);
    gw_wheel_add(&w, &a, 300);
    gw_wheel_add(&w, &a, 900); /* moves it */
    assert_int_equal(gw_wheel_advance(&w, 800, record_cb, &f), 0);
    gw_wheel_del(&a);
    gw_wheel_del(&a); /* harmless twice */
    assert_int_equal(gw_wheel_advance(&w, 2000, record_cb, &f), 0);
    /* A deadline already in the past fires on the next tick. */
    gw_wheel_add(&w, &a, 10);
    assert_int_equal(gw_wheel_advance(&w, 2100, record_cb, &f), 1);
}

static void test_beyond_one_turn(void **state)
{
    gw_wheel_t w;
    gw_wheel_node_t a = {0};
    fired_t f = {0};
    uint64_t far = 100ull * GW_WHEEL_SLOTS * 3 + 50;
    (void)state;

    gw_wheel_init(&w, 100, 0);
    gw_wheel_add(&w, &a, far);
    assert_int_equal(gw_wheel_advance(&w, far - 100, record_cb, &f), 0);
    assert_true(gw_wheel_armed(&a));
    assert_int_equal(gw_wheel_advance(&w, far + 100, record_cb, &f), 1);
}

static gw_wheel_t *rearm_wheel;

static void rearm_cb(gw_wheel_node_t *node, void *data)
{
    int *count = data;
    if (++*count < 3)
        gw_wheel_add(rearm_wheel, node, node->expire_ms + 100);
}

/* A callback that re-arms its own node (the heartbeat pattern). */
static void test_rearm_from_callback(void **state)
{
    gw_wheel_t w;
    gw_wheel_node_t a = {0};
    int count = 0;
    (void)state;

    rearm_wheel = &w;
    gw_wheel_init(&w, 100, 0);
    gw_wheel_add(&w, &a, 100);
    gw_wheel_advance(&w, 1000, rearm_cb, &count);
    assert_int_equal(count, 3);
    assert_false(gw_wheel_armed(&a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fires_on_time),
        cmocka_unit_test(test_del_and_rearm),
        cmocka_unit_test(test_beyond_one_turn),
        cmocka_unit_test(test_rearm_from_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
