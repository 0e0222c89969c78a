/* gwbench's latency histogram: buckets, percentile ranks, merging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
