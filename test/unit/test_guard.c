/* The abuse limits of authentication: the backoff schedule, an address's
 * failures over time, the buckets per address and per user, and the
 * table's bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/error.h"
#include "gw/guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static gw_config_t guard_cfg(void)
{
    return (gw_config_t){
        .auth_identify_rate = 1,
        .auth_identify_burst = 3,
        .auth_identify_user_rate = 1,
        .auth_identify_user_burst = 2,
        .auth_fail_delay_ms = 1000,
        .auth_fail_limit = 6,
        .auth_fail_block_ms = 60000,
    };
}

static struct sockaddr_in ip4(const char *text)
{
    struct sockaddr_in a = {.sin_family = AF_INET};

    assert_int_equal(inet_pton(AF_INET, text, &a.sin_addr), 1);
    return a;
}

static void test_backoff_schedule(void **state)
{
    (void)state;
    /* Two free failures, then 1 s doubling, then the refusal at 6. */
    assert_int_equal(gw_guard_backoff_ms(1, 1000, 6, 60000), 0);
    assert_int_equal(gw_guard_backoff_ms(2, 1000, 6, 60000), 0);
    assert_int_equal(gw_guard_backoff_ms(3, 1000, 6, 60000), 1000);
    assert_int_equal(gw_guard_backoff_ms(4, 1000, 6, 60000), 2000);
    assert_int_equal(gw_guard_backoff_ms(5, 1000, 6, 60000), 4000);
    assert_int_equal(gw_guard_backoff_ms(6, 1000, 6, 60000), 60000);
    assert_int_equal(gw_guard_backoff_ms(99, 1000, 6, 60000), 60000);
    /* The delay never passes the refusal, whatever the count. */
    assert_int_equal(gw_guard_backoff_ms(40, 1000, 100, 5000), 5000);
    assert_int_equal(
        gw_guard_backoff_ms(UINT32_MAX - 1, 1000, UINT32_MAX, 5000), 5000);
}

static void test_failures_are_forgotten(void **state)
{
    gw_config_t cfg = guard_cfg();
    gw_guard_fails_t f = {0};
    (void)state;

    for (int i = 0; i < 3; i++)
        gw_guard_fails_add(&f, 1000, &cfg);
    assert_int_equal(gw_guard_fails_wait(&f, 1000), 1000);
    assert_int_equal(gw_guard_fails_wait(&f, 1500), 500);
    assert_int_equal(gw_guard_fails_wait(&f, 2000), 0);
    /* A block_ms after the latest failure, the count starts again. */
    gw_guard_fails_add(&f, 1000 + 60000, &cfg);
    assert_int_equal(f.count, 1);
    assert_int_equal(gw_guard_fails_wait(&f, 61000), 0);
}

static void test_address_rate_and_backoff(void **state)
{
    gw_config_t cfg = guard_cfg();
    gw_guard_t *g = gw_guard_new();
    struct sockaddr_in a = ip4("10.0.0.1"), b = ip4("10.0.0.2");
    uint64_t wait;
    (void)state;

    for (int i = 0; i < 3; i++)
        assert_int_equal(
            gw_guard_attempt(g, (struct sockaddr *)&a, 100, &cfg, &wait), 0);
    assert_int_equal(
        gw_guard_attempt(g, (struct sockaddr *)&a, 100, &cfg, &wait),
        GW_ELIMITED);
    assert_int_equal(wait, 0);
    /* Another address is not touched; a second later one more token. */
    assert_int_equal(
        gw_guard_attempt(g, (struct sockaddr *)&b, 100, &cfg, &wait), 0);
    assert_int_equal(
        gw_guard_attempt(g, (struct sockaddr *)&a, 1100, &cfg, &wait), 0);
    /* Three failures: the next attempt waits a second. */
    for (int i = 0; i < 3; i++)
        gw_guard_failed(g, (struct sockaddr *)&b, 2000, &cfg);
    assert_int_equal(
        gw_guard_attempt(g, (struct sockaddr *)&b, 2500, &cfg, &wait),
        GW_ELIMITED);
    assert_int_equal(wait, 500);
    assert_int_equal(
        gw_guard_attempt(g, (struct sockaddr *)&b, 3000, &cfg, &wait), 0);
    /* No address (not IP): never limited. */
    assert_int_equal(gw_guard_attempt(g, NULL, 3000, &cfg, &wait), 0);
    gw_guard_free(g);
}

static void test_user_bucket(void **state)
{
    gw_config_t cfg = guard_cfg();
    gw_guard_t *g = gw_guard_new();
    (void)state;

    assert_int_equal(gw_guard_user(g, "u1", 0, &cfg), 0);
    assert_int_equal(gw_guard_user(g, "u1", 0, &cfg), 0);
    assert_int_equal(gw_guard_user(g, "u1", 0, &cfg), GW_ELIMITED);
    assert_int_equal(gw_guard_user(g, "u2", 0, &cfg), 0);
    assert_int_equal(gw_guard_user(g, "u1", 1000, &cfg), 0);
    cfg.auth_identify_user_rate = 0;
    for (int i = 0; i < 10; i++)
        assert_int_equal(gw_guard_user(g, "u1", 1000, &cfg), 0);
    gw_guard_free(g);
}

/* Many more addresses than entries: memory stays what it was, and the
 * address touched last is still remembered. */
static void test_table_is_bounded(void **state)
{
    gw_config_t cfg = guard_cfg();
    gw_guard_t *g = gw_guard_new();
    struct sockaddr_in a = {.sin_family = AF_INET};
    struct sockaddr_in last = ip4("192.0.2.1");
    uint64_t wait;
    (void)state;

    for (uint32_t i = 0; i < 4 * GW_GUARD_ENTRIES; i++) {
        a.sin_addr.s_addr = htonl(0x0a000000u + i);
        gw_guard_failed(g, (struct sockaddr *)&a, 1000 + i, &cfg);
    }
    for (int i = 0; i < 3; i++)
        gw_guard_failed(g, (struct sockaddr *)&last, 900000, &cfg);
    assert_int_equal(
        gw_guard_attempt(g, (struct sockaddr *)&last, 900001, &cfg, &wait),
        GW_ELIMITED);
    gw_guard_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_schedule),
        cmocka_unit_test(test_failures_are_forgotten),
        cmocka_unit_test(test_address_rate_and_backoff),
        cmocka_unit_test(test_user_bucket),
        cmocka_unit_test(test_table_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
