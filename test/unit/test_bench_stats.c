/* gwbench's latency histogram: buckets, percentile ranks, merging; and the
 * AMQP publisher's confirm window (rmqpub.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rmqpub.h"
#include "stats.h"

#include <math.h>
#include <string.h>

static stats_hist_t h, h2, all;

static void test_empty(void **state)
{
    (void)state;
    stats_hist_reset(&h);
    assert_int_equal(h.count, 0);
    assert_int_equal(stats_hist_quantile(&h, 0.5), 0);
    assert_int_equal(stats_hist_quantile(&h, 0), 0);
    assert_int_equal(stats_hist_quantile(&h, 1), 0);
    assert_true(stats_hist_mean(&h) == 0);
}

static void test_single_value(void **state)
{
    (void)state;
    stats_hist_reset(&h);
    stats_hist_record(&h, 12345);
    /* Whatever the bucket width, one value is every percentile. */
    assert_int_equal(stats_hist_quantile(&h, 0), 12345);
    assert_int_equal(stats_hist_quantile(&h, 0.5), 12345);
    assert_int_equal(stats_hist_quantile(&h, 0.999), 12345);
    assert_int_equal(stats_hist_quantile(&h, 1), 12345);
}

/* Below 128 every value has its own bucket: percentiles are exact, with the
 * nearest-rank definition (the smallest value with at least ceil(q * n)
 * values at or below it). */
static void test_exact_ranks(void **state)
{
    (void)state;
    stats_hist_reset(&h);
    for (uint64_t v = 100; v >= 1; v--)
        stats_hist_record(&h, v);
    assert_int_equal(h.count, 100);
    assert_int_equal(stats_hist_quantile(&h, 0), 1);
    assert_int_equal(stats_hist_quantile(&h, 0.01), 1);
    assert_int_equal(stats_hist_quantile(&h, 0.015), 2);
    assert_int_equal(stats_hist_quantile(&h, 0.5), 50);
    assert_int_equal(stats_hist_quantile(&h, 0.9), 90);
    assert_int_equal(stats_hist_quantile(&h, 0.99), 99);
    assert_int_equal(stats_hist_quantile(&h, 0.999), 100);
    assert_int_equal(stats_hist_quantile(&h, 1), 100);
    assert_true(fabs(stats_hist_mean(&h) - 50.5) < 1e-9);

    /* Ten values 0..9: p50 is the 5th, p90 the 9th, and p91 rounds up to
     * the 10th. */
    stats_hist_reset(&h);
    for (uint64_t v = 0; v < 10; v++)
        stats_hist_record(&h, v);
    assert_int_equal(stats_hist_quantile(&h, 0.5), 4);
    assert_int_equal(stats_hist_quantile(&h, 0.9), 8);
    assert_int_equal(stats_hist_quantile(&h, 0.91), 9);
}

/* Above 128, a reported percentile is never below the true one and at most
 * 1/64 above it. */
static void test_relative_error(void **state)
{
    static const double qs[] = {0.5, 0.9, 0.99, 0.999};
    (void)state;

    stats_hist_reset(&h);
    for (uint64_t i = 1; i <= 100000; i++)
        stats_hist_record(&h, i * 37);
    for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
        uint64_t exact = (uint64_t)ceil(qs[k] * 100000 - 1e-9) * 37;
        uint64_t got = stats_hist_quantile(&h, qs[k]);

        assert_true(got >= exact);
        assert_true((double)(got - exact) <= (double)exact / 64);
    }
    assert_int_equal(stats_hist_quantile(&h, 1), 3700000);
    assert_int_equal(stats_hist_quantile(&h, 0), 37);
}

/* Buckets grow with the value, have no gaps, and each value lies at or
 * below its bucket's upper bound and above the previous bucket's. */
static void test_bucket_layout(void **state)
{
    unsigned prev = 0;
    (void)state;

    for (uint64_t v = 0; v < (1u << 22); v += 1 + v / 512) {
        unsigned b = stats_bucket(v);

        assert_true(b >= prev);
        assert_true(stats_bucket_high(b) >= v);
        if (b > 0)
            assert_true(stats_bucket_high(b - 1) < v);
        prev = b;
    }
    for (unsigned b = 1; b < STATS_BUCKETS; b++)
        assert_true(stats_bucket_high(b) > stats_bucket_high(b - 1));
    assert_int_equal(stats_bucket(UINT64_MAX), STATS_BUCKETS - 1);
}

static void test_huge_values_keep_max(void **state)
{
    (void)state;
    stats_hist_reset(&h);
    stats_hist_record(&h, 5);
    stats_hist_record(&h, UINT64_MAX / 2);
    assert_int_equal(h.max, UINT64_MAX / 2);
    assert_int_equal(stats_hist_quantile(&h, 1), UINT64_MAX / 2);
    /* The last bucket's bound is clamped to the real maximum. */
    assert_int_equal(stats_hist_quantile(&h, 0.99), UINT64_MAX / 2);
    assert_int_equal(stats_hist_quantile(&h, 0.5), 5);
}

static void test_merge_equals_recording_all(void **state)
{
    (void)state;
    stats_hist_reset(&h);
    stats_hist_reset(&h2);
    stats_hist_reset(&all);
    for (uint64_t i = 0; i < 5000; i++) {
        uint64_t v = (i * 2654435761u) % 250000;

        stats_hist_record(i % 3 ? &h : &h2, v);
        stats_hist_record(&all, v);
    }
    stats_hist_merge(&h, &h2);
    assert_int_equal(h.count, all.count);
    assert_int_equal(h.sum, all.sum);
    assert_int_equal(h.min, all.min);
    assert_int_equal(h.max, all.max);
    assert_memory_equal(h.b, all.b, sizeof(h.b));
    /* Merging an empty histogram changes nothing, min included. */
    stats_hist_reset(&h2);
    stats_hist_merge(&h, &h2);
    assert_int_equal(h.min, all.min);
    assert_int_equal(stats_hist_quantile(&h, 0.99),
                     stats_hist_quantile(&all, 0.99));
}

static void test_counters_add(void **state)
{
    stats_counters_t a, b;
    (void)state;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.deliveries = 3;
    b.deliveries = 4;
    b.fail_tcp = 1;
    stats_counters_add(&a, &b);
    assert_int_equal(a.deliveries, 7);
    assert_int_equal(a.fail_tcp, 1);
    /* The table names every field, in order. */
    assert_int_equal(stats_ncounters * sizeof(uint64_t), sizeof(a));
    for (size_t i = 0; i < stats_ncounters; i++)
        if (strcmp(stats_counter_table[i].name, "deliveries") == 0)
            assert_int_equal(stats_counter_get(&a, i), 7);
}

static rmqpub_window_t win;

static void publish_n(rmqpub_window_t *w, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        rmqpub_window_publish(w);
}

/* Tags count from 1; single and multiple confirms, each tag counted once. */
static void test_window_settle(void **state)
{
    (void)state;
    rmqpub_window_init(&win);
    assert_int_equal(rmqpub_window_pending(&win), 0);
    assert_int_equal(rmqpub_window_publish(&win), 1);
    publish_n(&win, 4);
    assert_int_equal(rmqpub_window_pending(&win), 5);
    /* Out of order: 3 alone, then everything up to 2. */
    assert_int_equal(rmqpub_window_settle(&win, 3, 0), 1);
    assert_int_equal(rmqpub_window_settle(&win, 3, 0), 0);
    assert_int_equal(rmqpub_window_pending(&win), 4);
    assert_int_equal(rmqpub_window_settle(&win, 2, 1), 2);
    assert_int_equal(win.low, 4);
    assert_int_equal(rmqpub_window_pending(&win), 2);
    /* Settled before, or never published: nothing. */
    assert_int_equal(rmqpub_window_settle(&win, 1, 0), 0);
    assert_int_equal(rmqpub_window_settle(&win, 2, 1), 0);
    assert_int_equal(rmqpub_window_settle(&win, 6, 0), 0);
    assert_int_equal(rmqpub_window_settle(&win, 9, 1), 0);
    /* 5 alone, then a multiple up to 5 settles only 4. */
    assert_int_equal(rmqpub_window_settle(&win, 5, 0), 1);
    assert_int_equal(rmqpub_window_settle(&win, 5, 1), 1);
    assert_int_equal(rmqpub_window_pending(&win), 0);
    assert_int_equal(win.low, 6);
    assert_int_equal(win.above, 0);
    /* Multiple with tag 0: every published tag. */
    publish_n(&win, 3);
    assert_int_equal(rmqpub_window_settle(&win, 7, 0), 1);
    assert_int_equal(rmqpub_window_settle(&win, 0, 1), 2);
    assert_int_equal(rmqpub_window_pending(&win), 0);
}

/* The window fills at RMQPUB_WINDOW unsettled tags, and its bits are
 * reused cleanly over several turns, with confirms out of order. */
static void test_window_wraps(void **state)
{
    uint64_t settled = 0, total = 0;

    (void)state;
    rmqpub_window_init(&win);
    publish_n(&win, RMQPUB_WINDOW);
    assert_false(rmqpub_window_room(&win));
    assert_int_equal(rmqpub_window_settle(&win, 1, 0), 1);
    assert_true(rmqpub_window_room(&win));
    settled = 1;
    total = RMQPUB_WINDOW;
    for (int turn = 0; turn < 5; turn++) {
        uint64_t hi = win.next - 1, lo = win.low;

        /* Every odd tag alone, from the top, then the rest at once. */
        for (uint64_t t = hi; t >= lo && t > 0; t--)
            if (t % 2 == 1)
                settled += rmqpub_window_settle(&win, t, 0);
        settled += rmqpub_window_settle(&win, hi, 1);
        assert_int_equal(settled, total);
        assert_int_equal(rmqpub_window_pending(&win), 0);
        assert_int_equal(win.above, 0);
        while (rmqpub_window_room(&win)) {
            rmqpub_window_publish(&win);
            total++;
        }
        assert_int_equal(rmqpub_window_pending(&win), RMQPUB_WINDOW);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_single_value),
        cmocka_unit_test(test_exact_ranks),
        cmocka_unit_test(test_relative_error),
        cmocka_unit_test(test_bucket_layout),
        cmocka_unit_test(test_huge_values_keep_max),
        cmocka_unit_test(test_merge_equals_recording_all),
        cmocka_unit_test(test_counters_add),
        cmocka_unit_test(test_window_settle),
        cmocka_unit_test(test_window_wraps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
