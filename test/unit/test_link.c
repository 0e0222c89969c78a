/* The broker links' shared state: a change is stamped with the wall clock,
 * a repeat of the same state is no change; and the reconnect backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/link.h"

#include <time.h>

static void test_set_stamps_only_a_change(void **state)
{
    uint64_t before = (uint64_t)time(NULL) * 1000;
    gw_link_status_t l;
    (void)state;

    gw_link_init(&l, GW_LINK_DISABLED);
    assert_int_equal(l.state, GW_LINK_DISABLED);
    assert_true(l.since_ms >= before && l.since_ms <= gw_link_clock_ms());
    l.since_ms = 1; /* a time set can be told apart from one kept */
    assert_int_equal(gw_link_set(&l, GW_LINK_DISABLED), 0);
    assert_int_equal(l.since_ms, 1);
    assert_int_equal(gw_link_set(&l, GW_LINK_DOWN), 1);
    assert_int_equal(l.state, GW_LINK_DOWN);
    assert_true(l.since_ms >= before);
    l.since_ms = 1;
    assert_int_equal(gw_link_set(&l, GW_LINK_DOWN), 0); /* a retry */
    assert_int_equal(l.since_ms, 1);
}

static void test_backoff_bounds(void **state)
{
    uint64_t seed = 42;
    (void)state;

    for (unsigned attempt = 0; attempt < 20; attempt++) {
        uint64_t d = gw_link_backoff(attempt, 100, 5000, &seed);
        uint64_t cap = attempt < 6 ? 100u << attempt : 5000;
        if (cap > 5000)
            cap = 5000;
        assert_true(d >= cap / 2 && d <= cap);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_stamps_only_a_change),
        cmocka_unit_test(test_backoff_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
