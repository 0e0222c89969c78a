/* The token bucket behind the per-connection event limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/bucket.h"

/* How many tokens can be taken at once at now_ms. */
static int drain(gw_bucket_t *b, uint64_t now_ms, uint32_t rate, uint32_t burst)
{
    int n = 0;

    while (gw_bucket_take(b, now_ms, rate, burst) && n < 10000000)
        n++;
    return n;
}

static void test_starts_full_and_empties(void **state)
{
    gw_bucket_t b;
    (void)state;

    gw_bucket_init(&b, 1000, 10);
    assert_int_equal(drain(&b, 1000, 5, 10), 10);
    assert_int_equal(gw_bucket_take(&b, 1000, 5, 10), 0);
}

static void test_refills_at_the_rate(void **state)
{
    gw_bucket_t b;
    (void)state;

    gw_bucket_init(&b, 0, 10);
    drain(&b, 0, 4, 10);
    /* 4 a second: one every 250 ms, and fractions carry over. */
    assert_int_equal(gw_bucket_take(&b, 249, 4, 10), 0);
    assert_int_equal(gw_bucket_take(&b, 250, 4, 10), 1);
    assert_int_equal(gw_bucket_take(&b, 250, 4, 10), 0);
    assert_int_equal(drain(&b, 1000, 4, 10), 3);
    /* The slowest rate: one a second. */
    gw_bucket_init(&b, 0, 1);
    drain(&b, 0, 1, 1);
    assert_int_equal(gw_bucket_take(&b, 999, 1, 1), 0);
    assert_int_equal(gw_bucket_take(&b, 1000, 1, 1), 1);
}

static void test_never_holds_more_than_burst(void **state)
{
    gw_bucket_t b;
    (void)state;

    gw_bucket_init(&b, 0, 10);
    drain(&b, 0, 1000, 10);
    /* A long pause, and a very long one, fill it once only. */
    assert_int_equal(drain(&b, 60000, 1000, 10), 10);
    assert_int_equal(drain(&b, UINT64_MAX / 2, 1000000, 10), 10);
    gw_bucket_init(&b, 0, GW_BUCKET_MAX_BURST);
    assert_int_equal(drain(&b, UINT64_MAX, 1000000, GW_BUCKET_MAX_BURST),
                     GW_BUCKET_MAX_BURST);
}

static void test_clock_going_back_adds_nothing(void **state)
{
    gw_bucket_t b;
    (void)state;

    gw_bucket_init(&b, 5000, 2);
    drain(&b, 5000, 10, 2);
    assert_int_equal(gw_bucket_take(&b, 1000, 10, 2), 0);
    /* ... and does not move the reference back either. */
    assert_int_equal(gw_bucket_take(&b, 5099, 10, 2), 0);
    assert_int_equal(gw_bucket_take(&b, 5100, 10, 2), 1);
}

/* The fixed window: limit per window, a fresh window after it, and the
 * same across the 32-bit wrap of the clock. */
static void test_window(void **state)
{
    uint32_t since = 0, count = 0, t0 = UINT32_MAX - 500;
    (void)state;

    for (int i = 0; i < 3; i++)
        assert_true(gw_window_take(&since, &count, t0, 1000, 3));
    assert_false(gw_window_take(&since, &count, t0 + 999u, 1000, 3));
    assert_int_equal(count, 3);
    /* t0 + 1000 wraps past zero: still one window later. */
    assert_true(gw_window_take(&since, &count, t0 + 1000u, 1000, 3));
    assert_int_equal(count, 1);
    assert_int_equal(since, t0 + 1000u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starts_full_and_empties),
        cmocka_unit_test(test_refills_at_the_rate),
        cmocka_unit_test(test_never_holds_more_than_burst),
        cmocka_unit_test(test_clock_going_back_adds_nothing),
        cmocka_unit_test(test_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
