/* Which client events may go up: routing-key names and relay.events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/match.h"

static void test_names_that_can_be_routing_keys(void **state)
{
    static const char *good[] = {
        "a",
        "chat.send",
        "location.update",
        "x_1-2.b",
        "abbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    };
    static const char *bad[] = {
        "",
        "Chat",
        "9lives",
        "_x",
        ".x",
        "chat send",
        "chat/send",
        "chat*",
        "ch\xc3\xa9",
        "abbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    };
    (void)state;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!gw_match_event("", good[i]))
            fail_msg("refused: %s", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (gw_match_event("", bad[i]) || gw_match_event("*", bad[i]))
            fail_msg("accepted: %s", bad[i]);
}

static void test_patterns(void **state)
{
    const char *pats = " chat.* ,location.update,, dm.?";
    (void)state;

    assert_true(gw_match_event(pats, "chat.send"));
    assert_true(gw_match_event(pats, "chat."));
    assert_true(gw_match_event(pats, "location.update"));
    assert_true(gw_match_event(pats, "dm.x"));
    assert_false(gw_match_event(pats, "dm.xy"));
    assert_false(gw_match_event(pats, "chatx"));
    assert_false(gw_match_event(pats, "location.updates"));
    assert_false(gw_match_event(",", "chat"));
    assert_false(gw_match_event("presence.*", "chat.send"));
    assert_true(gw_match_event("*", "anything"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_that_can_be_routing_keys),
        cmocka_unit_test(test_patterns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
