/* The backend envelope: targets, validation, and the shared dispatch body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/error.h"
#include "gw/event.h"

#include <string.h>

static gw_event_t *parse_ok(const char *json)
{
    gw_event_t *ev;
    const char *reason = NULL;
    int rc = gw_event_parse(json, strlen(json), &ev, &reason);

    if (rc != 0)
        fail_msg("%s: %s", json, reason);
    return ev;
}

static void assert_body(const gw_event_t *ev, const char *want)
{
    assert_int_equal(ev->body->len, strlen(want));
    assert_memory_equal(ev->body->data, want, strlen(want));
}

static void test_guild(void **state)
{
    gw_event_t *ev =
        parse_ok("{\"event\":\"message.create\",\"guildId\":\"g1\","
                 "\"data\":{\"content\":\"hi \\\"there\\\"\"}}");
    (void)state;

    assert_int_equal(ev->target, GW_TARGET_GUILD);
    assert_string_equal(ev->ids[0], "g1");
    assert_int_equal(ev->priority, 3);
    assert_body(ev, "\"event\":\"message.create\",\"guildId\":\"g1\","
                    "\"data\":{\"content\":\"hi \\\"there\\\"\"}}");
    gw_event_unref(ev);
}

static void test_users_broadcast_options(void **state)
{
    gw_event_t *ev = parse_ok("{\"event\":\"e\",\"userIds\":[\"a\",\"b\"],"
                              "\"priority\":1,\"excludeSessionId\":"
                              "\"00112233445566778899aabbccddeeff\"}");
    (void)state;

    assert_int_equal(ev->target, GW_TARGET_USERS);
    assert_int_equal(ev->nids, 2);
    assert_string_equal(ev->ids[1], "b");
    assert_int_equal(ev->priority, 1);
    assert_true(ev->has_exclude);
    assert_int_equal(ev->exclude[15], 0xff);
    assert_body(ev, "\"event\":\"e\",\"data\":{}}");
    gw_event_unref(ev);

    ev =
        parse_ok("{\"event\":\"announcement\",\"broadcast\":true,\"data\":{}}");
    assert_int_equal(ev->target, GW_TARGET_ALL);
    gw_event_unref(ev);

    ev = parse_ok("{\"event\":\"x\",\"userId\":\"u1\",\"data\":{\"n\":1}}");
    assert_int_equal(ev->target, GW_TARGET_USERS);
    assert_int_equal(ev->nids, 1);
    gw_event_unref(ev);
}

static void test_relay_fields(void **state)
{
    gw_event_t *ev =
        parse_ok("{\"event\":\"typing.start\",\"guildId\":\"g1\",\"data\":"
                 "{\"userId\":\"u1\",\"channelId\":\"c1\"},\"excludeUserId\":"
                 "\"u1\",\"priority\":4,\"origin\":\"gw-a\"}");
    (void)state;

    assert_string_equal(ev->exclude_user, "u1");
    assert_string_equal(ev->origin, "gw-a");
    assert_int_equal(ev->priority, 4);
    /* Neither field reaches the clients. */
    assert_body(ev, "\"event\":\"typing.start\",\"guildId\":\"g1\","
                    "\"data\":{\"userId\":\"u1\",\"channelId\":\"c1\"}}");
    gw_event_unref(ev);
    ev = parse_ok("{\"event\":\"e\",\"broadcast\":true}");
    assert_null(ev->exclude_user);
    assert_null(ev->origin);
    gw_event_unref(ev);
}

/* A reply to one session, echoing the request's nonce. */
static void test_session_target_and_nonce(void **state)
{
    gw_event_t *ev =
        parse_ok("{\"event\":\"chat.sent\",\"sessionId\":"
                 "\"00112233445566778899AABBccddeeff\",\"nonce\":\"n-1\","
                 "\"data\":{\"ok\":true}}");
    static const uint8_t id[GW_SESSION_ID_LEN] = {
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
        0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
    (void)state;

    assert_int_equal(ev->target, GW_TARGET_SESSION);
    assert_int_equal(ev->action, GW_ACTION_DISPATCH);
    assert_memory_equal(ev->session, id, GW_SESSION_ID_LEN);
    assert_body(ev, "\"event\":\"chat.sent\",\"nonce\":\"n-1\","
                    "\"data\":{\"ok\":true}}");
    gw_event_unref(ev);
    ev = parse_ok("{\"event\":\"e\",\"guildId\":\"g\",\"nonce\":\"\"}");
    assert_body(ev, "\"event\":\"e\",\"guildId\":\"g\",\"nonce\":\"\","
                    "\"data\":{}}");
    gw_event_unref(ev);
}

/* Actions: their target, their argument, and no body. */
static void test_actions(void **state)
{
    gw_event_t *ev = parse_ok("{\"action\":\"subscribe\",\"userIds\":"
                              "[\"b\",\"a\",\"b\"],\"guildId\":\"g9\"}");
    (void)state;

    assert_int_equal(ev->action, GW_ACTION_SUBSCRIBE);
    assert_int_equal(ev->target, GW_TARGET_USERS);
    assert_int_equal(ev->nids, 2);
    assert_string_equal(ev->arg, "g9");
    assert_null(ev->body);
    gw_event_unref(ev);
    ev = parse_ok("{\"action\":\"unsubscribe\",\"sessionId\":"
                  "\"00112233445566778899aabbccddeeff\",\"guildId\":\"g\","
                  "\"origin\":\"gw-a\"}");
    assert_int_equal(ev->action, GW_ACTION_UNSUBSCRIBE);
    assert_int_equal(ev->target, GW_TARGET_SESSION);
    assert_string_equal(ev->origin, "gw-a");
    gw_event_unref(ev);
    ev = parse_ok("{\"action\":\"disconnect\",\"userId\":\"u\"}");
    assert_int_equal(ev->code, 4000);
    assert_string_equal(ev->arg, "disconnected by the server");
    gw_event_unref(ev);
    ev = parse_ok("{\"action\":\"disconnect\",\"userId\":\"u\","
                  "\"code\":4999,\"reason\":\"banned\"}");
    assert_int_equal(ev->code, 4999);
    assert_string_equal(ev->arg, "banned");
    gw_event_unref(ev);
}

static void test_rejections(void **state)
{
    static const char *bad[] = {
        "",
        "not json",
        "[1,2]",
        "{\"guildId\":\"g\"}",
        "{\"event\":\"\",\"guildId\":\"g\"}",
        "{\"event\":5,\"guildId\":\"g\"}",
        "{\"event\":\"e\"}",
        "{\"event\":\"e\",\"guildId\":\"g\",\"userId\":\"u\"}",
        "{\"event\":\"e\",\"guildId\":\"\"}",
        "{\"event\":\"e\",\"guildId\":7}",
        "{\"event\":\"e\",\"userIds\":[]}",
        "{\"event\":\"e\",\"userIds\":[\"a\",3]}",
        "{\"event\":\"e\",\"broadcast\":\"yes\"}",
        "{\"event\":\"e\",\"guildId\":\"g\",\"data\":[1]}",
        "{\"event\":\"e\",\"guildId\":\"g\",\"priority\":0}",
        "{\"event\":\"e\",\"guildId\":\"g\",\"priority\":2.5}",
        "{\"event\":\"e\",\"guildId\":\"g\",\"excludeSessionId\":\"xyz\"}",
        "{\"event\":\"e\",\"guildId\":\"g\",\"excludeUserId\":\"\"}",
        "{\"event\":\"e\",\"guildId\":\"g\",\"origin\":7}",
        "{\"event\":\"e\",\"sessionId\":\"00ff\"}",
        "{\"event\":\"e\",\"sessionId\":\"00112233445566778899aabbccddeefg\"}",
        "{\"event\":\"e\",\"sessionId\":\"00112233445566778899aabbccddeeff\","
        "\"userId\":\"u\"}",
        "{\"event\":\"e\",\"userId\":\"u\",\"nonce\":5}",
        "{\"event\":\"e\",\"userId\":\"u\",\"nonce\":\""
        "01234567890123456789012345678901234567890123456789012345678901234\"}",
        "{\"action\":\"kick\",\"userId\":\"u\"}",
        "{\"action\":7,\"userId\":\"u\"}",
        "{\"action\":\"subscribe\",\"userId\":\"u\"}",
        "{\"action\":\"subscribe\",\"guildId\":\"g\"}",
        "{\"action\":\"subscribe\",\"broadcast\":true,\"guildId\":\"g\"}",
        "{\"action\":\"unsubscribe\",\"userId\":\"u\",\"guildId\":\"\"}",
        "{\"action\":\"disconnect\",\"userId\":\"u\",\"code\":1000}",
        "{\"action\":\"disconnect\",\"userId\":\"u\",\"code\":4000.5}",
        "{\"action\":\"disconnect\",\"userId\":\"u\",\"reason\":1}",
    };
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gw_event_t *ev = (gw_event_t *)1;
        const char *reason = NULL;
        int rc = gw_event_parse(bad[i], strlen(bad[i]), &ev, &reason);
        if (rc == 0)
            fail_msg("accepted: %s", bad[i]);
        assert_null(ev);
        assert_non_null(reason);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guild),
        cmocka_unit_test(test_users_broadcast_options),
        cmocka_unit_test(test_relay_fields),
        cmocka_unit_test(test_session_target_and_nonce),
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_rejections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
