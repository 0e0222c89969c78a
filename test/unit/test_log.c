/* Log levels and the per-site rate limit of repeated messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/log.h"

static void test_parse_level(void **state)
{
    (void)state;
    assert_int_equal(gw_log_parse_level("debug"), GW_LOG_DEBUG);
    assert_int_equal(gw_log_parse_level("error"), GW_LOG_ERROR);
    assert_int_equal(gw_log_parse_level("verbose"), -1);
}

static void test_limited_suppresses_within_a_second(void **state)
{
    gw_log_limit_t rl = {0};
    (void)state;

    gw_log_level = GW_LOG_INFO;
    gw_log_limited(&rl, GW_LOG_WARN, "first %d", 1);
    assert_int_not_equal(rl.last_ms, 0);
    assert_int_equal(rl.suppressed, 0);
    for (int i = 0; i < 5; i++)
        gw_log_limited(&rl, GW_LOG_WARN, "again %d", i);
    assert_int_equal(rl.suppressed, 5);
    /* A second later the next line goes out and resets the count. */
    rl.last_ms -= 1000;
    gw_log_limited(&rl, GW_LOG_WARN, "later");
    assert_int_equal(rl.suppressed, 0);
}

static void test_limited_below_level_costs_nothing(void **state)
{
    gw_log_limit_t rl = {0};
    (void)state;

    gw_log_level = GW_LOG_ERROR;
    gw_log_limited(&rl, GW_LOG_INFO, "dropped");
    assert_int_equal(rl.last_ms, 0);
    assert_int_equal(rl.suppressed, 0);
    gw_log_level = GW_LOG_INFO;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_level),
        cmocka_unit_test(test_limited_suppresses_within_a_second),
        cmocka_unit_test(test_limited_below_level_costs_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
