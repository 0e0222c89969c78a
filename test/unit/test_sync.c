/* sync_request's pure parts: the Redis key, and the sync-data dispatch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/sync.h"

#include <stdlib.h>
#include <string.h>

static void expect_key(const char *tmpl, const char *user, const char *scope,
                       const char *want)
{
    char *got = gw_sync_key(tmpl, user, scope);

    assert_string_equal(got, want);
    free(got);
}

static void test_key_template(void **state)
{
    (void)state;
    expect_key("sync:{userId}", "u1", NULL, "sync:u1");
    expect_key("sync:{userId}", "u1", "profile", "sync:u1");
    expect_key("s:{userId}:{scope}", "u1", "profile", "s:u1:profile");
    expect_key("s:{userId}:{scope}", "u1", NULL, "s:u1:");
    expect_key("{userId}{userId}", "ab", NULL, "abab");
    expect_key("plain", "u1", NULL, "plain");
    expect_key("{user}{", "u1", NULL, "{user}{");
    expect_key("", "u1", NULL, "");
}

static void expect_body(const gw_event_t *ev, const char *want)
{
    assert_non_null(ev);
    assert_int_equal(ev->body->len, strlen(want));
    assert_memory_equal(ev->body->data, want, strlen(want));
}

static void test_answer(void **state)
{
    static const uint8_t sid[GW_SESSION_ID_LEN] = {1, 2, 3};
    gw_event_t *ev;
    (void)state;

    ev = gw_sync_answer(sid, "n\"1", " {\"a\": [1, 2]}", 14);
    expect_body(ev, "\"event\":\"sync-data\",\"nonce\":\"n\\\"1\","
                    "\"data\": {\"a\": [1, 2]}}");
    assert_int_equal(ev->target, GW_TARGET_SESSION);
    assert_int_equal(ev->action, GW_ACTION_DISPATCH);
    assert_memory_equal(ev->session, sid, GW_SESSION_ID_LEN);
    gw_event_unref(ev);
    ev = gw_sync_answer(sid, NULL, "{}", 2);
    expect_body(ev, "\"event\":\"sync-data\",\"data\":{}}");
    gw_event_unref(ev);
}

/* Only a JSON object is ever sent to a client. */
static void test_answer_refuses_what_is_not_an_object(void **state)
{
    static const char *bad[] = {
        "",  "nope",     "[1]",         "\"s\"",
        "7", "{\"a\":1", "{\"a\":1} x", "{\"a\":\"\xff\"}"};
    static const uint8_t sid[GW_SESSION_ID_LEN] = {0};
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_null(gw_sync_answer(sid, "n", bad[i], strlen(bad[i])));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_template),
        cmocka_unit_test(test_answer),
        cmocka_unit_test(test_answer_refuses_what_is_not_an_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
