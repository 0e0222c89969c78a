/* gw_handoff_parse: the control messages the instances exchange during a
 * drain handoff (docs/continuity.md section 3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/error.h"
#include "gw/handoff.h"

#include <string.h>

#define S_HEX "000000000102030405060708090a0b0c"
#define R_HEX "0100000002030405060708090A0B0C0D"

static const uint8_t s_id[GW_SESSION_ID_LEN] = {0, 0, 0, 0, 1, 2,  3,  4,
                                                5, 6, 7, 8, 9, 10, 11, 12};
static const uint8_t r_id[GW_SESSION_ID_LEN] = {1, 0, 0, 0, 2,  3,  4,  5,
                                                6, 7, 8, 9, 10, 11, 12, 13};

static int parse(const char *msg, size_t len, gw_handoff_note_t *n)
{
    return gw_handoff_parse(msg, len, n);
}

static void expect_bad(const char *msg, size_t len)
{
    gw_handoff_note_t n;

    assert_int_equal(parse(msg, len, &n), GW_EPARSE);
}

/* A literal, its terminating NUL left out. */
#define EXPECT_BAD(lit) expect_bad(lit, sizeof(lit) - 1)

static void test_claim(void **state)
{
    const char msg[] = "claim " S_HEX " " R_HEX "\ngw-a\ngw-b 2";
    gw_handoff_note_t n;

    (void)state;
    assert_int_equal(parse(msg, sizeof(msg) - 1, &n), 0);
    assert_int_equal(n.kind, GW_HANDOFF_CLAIMED);
    assert_memory_equal(n.session, s_id, GW_SESSION_ID_LEN);
    assert_memory_equal(n.requester, r_id, GW_SESSION_ID_LEN);
    assert_int_equal(n.owner_len, 4);
    assert_memory_equal(n.owner, "gw-a", 4);
    assert_int_equal(n.claimer_len, 6);
    assert_memory_equal(n.claimer, "gw-b 2", 6);
}

static void test_snap_and_lost(void **state)
{
    const char snap[] = "snap " S_HEX " " R_HEX "\ngw-b";
    const char lost[] = "lost " S_HEX " " R_HEX "\ngw-b";
    gw_handoff_note_t n;

    (void)state;
    assert_int_equal(parse(snap, sizeof(snap) - 1, &n), 0);
    assert_int_equal(n.kind, GW_HANDOFF_SNAP);
    assert_null(n.owner);
    assert_int_equal(n.claimer_len, 4);
    assert_memory_equal(n.requester, r_id, GW_SESSION_ID_LEN);
    assert_int_equal(parse(lost, sizeof(lost) - 1, &n), 0);
    assert_int_equal(n.kind, GW_HANDOFF_LOST);
    assert_memory_equal(n.session, s_id, GW_SESSION_ID_LEN);
}

/* Cut before its claimer's first byte, a message is refused (after it,
 * it names a shorter claimer). */
static void test_every_prefix_is_refused(void **state)
{
    const char msg[] = "claim " S_HEX " " R_HEX "\ngw-a\ngw-b";

    (void)state;
    for (size_t len = 0; len < sizeof(msg) - 1 - 4; len++)
        expect_bad(msg, len);
}

static void test_malformed(void **state)
{
    const char nul[] = "snap " S_HEX " " R_HEX "\ngw\0b";
    (void)state;
    EXPECT_BAD("");
    EXPECT_BAD("claim");
    EXPECT_BAD("grab " S_HEX " " R_HEX "\ngw");
    EXPECT_BAD("snap " S_HEX "x" R_HEX "\ngw");
    EXPECT_BAD("snap " S_HEX " " R_HEX " gw");
    EXPECT_BAD("snap 0g000000000102030405060708090a0b0c " R_HEX "\ngw");
    EXPECT_BAD("snap " S_HEX " " R_HEX "\ngw\n");  /* trailing newline */
    EXPECT_BAD("snap " S_HEX " " R_HEX "\ngw\nx"); /* one line too many */
    EXPECT_BAD("claim " S_HEX " " R_HEX "\n\ngw"); /* empty owner */
    EXPECT_BAD("claim " S_HEX " " R_HEX "\ngw");   /* no claimer */
    expect_bad(nul, sizeof(nul) - 1);
}

static void test_channel(void **state)
{
    gw_config_t cfg = {.redis_channel = (char *)"gateway_events"};
    char out[64], tiny[8];

    (void)state;
    gw_handoff_channel(&cfg, "gw-a", out, sizeof(out));
    assert_string_equal(out, "gateway_events:handoff");
    gw_handoff_channel(&cfg, "gw-a", tiny, sizeof(tiny));
    assert_string_equal(tiny, "gateway");
    /* Targeted: each instance's own. */
    cfg.redis_targeted = 1;
    gw_handoff_channel(&cfg, "gw-a", out, sizeof(out));
    assert_string_equal(out, "gateway_events:handoff:gw-a");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim),
        cmocka_unit_test(test_snap_and_lost),
        cmocka_unit_test(test_every_prefix_is_refused),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_channel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
