/* Targeted RabbitMQ routing's names: binding patterns, routing keys read
 * back and checked against envelopes, and the choice of generation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw/amqp_key.h"
#include "gw/error.h"

#define SID "0001000000a1b2c3d4e5f60718293a4b"

static char out[GW_AMQP_KEY_MAX + 1];
static char idbuf[GW_CHANNEL_ID_MAX];

static int pattern(gw_interest_kind_t kind, const char *id)
{
    return gw_amqp_key_pattern(kind, id, strlen(id), out);
}

static int parse(const char *key, gw_channel_t *ch)
{
    return gw_amqp_key_parse(key, strlen(key), idbuf, ch);
}

static void assert_target(const char *key, gw_channel_kind_t kind,
                          const char *id)
{
    gw_channel_t ch;

    assert_int_equal(parse(key, &ch), 0);
    assert_int_equal(ch.kind, kind);
    assert_int_equal(ch.len, strlen(id));
    assert_memory_equal(ch.id, id, ch.len);
}

static void test_patterns(void **state)
{
    (void)state;
    assert_int_equal(pattern(GW_INTEREST_GUILD, "42"), 10);
    assert_string_equal(out, "guild.42.#");
    assert_int_equal(pattern(GW_INTEREST_USER, "a-b_c:d"), 14);
    assert_string_equal(out, "user.a-b_c:d.#");
    pattern(GW_INTEREST_SESSION, SID);
    assert_string_equal(out, "session." SID ".#");
    /* Dots, wildcards and the escape itself are one word. */
    pattern(GW_INTEREST_GUILD, "a.b*#%c");
    assert_string_equal(out, "guild.a%2Eb%2A%23%25c.#");
    pattern(GW_INTEREST_GUILD, "#");
    assert_string_equal(out, "guild.%23.#");
    /* UTF-8 and other bytes pass as they are. */
    pattern(GW_INTEREST_USER, "\xc3\xa9t\xc3\xa9 x");
    assert_string_equal(out, "user.\xc3\xa9t\xc3\xa9 x.#");
    assert_int_equal(gw_amqp_key_pattern(GW_INTEREST_GUILD, "", 0, out),
                     GW_EINVAL);
}

static void test_pattern_bound(void **state)
{
    char id[GW_CHANNEL_ID_MAX + 1];
    (void)state;

    /* 128 plain bytes fit; 83 dots (249 bytes escaped) do not. */
    memset(id, 'x', GW_CHANNEL_ID_MAX);
    id[GW_CHANNEL_ID_MAX] = '\0';
    assert_int_equal(pattern(GW_INTEREST_GUILD, id), 6 + 128 + 2);
    memset(id, '.', 82);
    id[82] = '\0';
    assert_int_equal(pattern(GW_INTEREST_GUILD, id), 6 + 246 + 2);
    assert_int_equal(strlen(out), 254);
    memset(id, '.', 83);
    id[83] = '\0';
    assert_int_equal(pattern(GW_INTEREST_GUILD, id), GW_ETOOBIG);
}

static void test_parse(void **state)
{
    gw_channel_t ch;
    (void)state;

    assert_target("guild.42", GW_CHANNEL_GUILD, "42");
    assert_target("guild.42.message.create", GW_CHANNEL_GUILD, "42");
    assert_target("guild.42.", GW_CHANNEL_GUILD, "42");
    assert_target("user.u1.update", GW_CHANNEL_USER, "u1");
    assert_target("session." SID, GW_CHANNEL_SESSION, SID);
    assert_target("session." SID ".reply", GW_CHANNEL_SESSION, SID);
    assert_target("guild.a%2Eb%2A%23%25c.x", GW_CHANNEL_GUILD, "a.b*#%c");
    assert_int_equal(parse("broadcast", &ch), 0);
    assert_int_equal(ch.kind, GW_CHANNEL_PLAIN);
    assert_null(ch.id);
    assert_int_equal(parse("broadcast.announcement.x", &ch), 0);
    assert_int_equal(ch.kind, GW_CHANNEL_PLAIN);
}

static void test_parse_refuses(void **state)
{
    static const char *const bad[] = {
        "",
        "broadcasts",
        "broadcas",
        "guild",
        "guild.",
        "guild..x",
        "guilds.1",
        "Guild.1",
        "channel.1",
        "guild.a%2eb", /* lowercase: not how a pattern writes it */
        "guild.a%41",  /* escapes only the four special bytes */
        "guild.a%2",   /* cut short */
        "guild.a%",
        "guild.*", /* a wildcard is never one of our words */
        "guild.#.x",
        "user.a*b",
        "session.0001",
        "session." SID "0",
        "session.0001000000A1B2C3D4E5F60718293A4B",
    };
    gw_channel_t ch;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_int_equal(parse(bad[i], &ch), GW_EINVAL);
    /* A NUL inside the id word. */
    assert_int_equal(gw_amqp_key_parse("guild.a\0b", 9, idbuf, &ch), GW_EINVAL);
}

static void test_parse_id_bound(void **state)
{
    char key[6 + 3 * GW_CHANNEL_ID_MAX + 4];
    gw_channel_t ch;
    (void)state;

    /* 128 bytes decoded, written 384: read; one more is refused. */
    strcpy(key, "guild.");
    for (int i = 0; i < GW_CHANNEL_ID_MAX; i++)
        strcat(key, "%2E");
    assert_int_equal(parse(key, &ch), 0);
    assert_int_equal(ch.len, GW_CHANNEL_ID_MAX);
    strcat(key, "x");
    assert_int_equal(parse(key, &ch), GW_EINVAL);
}

/* Every pattern, without its ".#", reads back as its target. */
static void test_round_trip(void **state)
{
    static const char *const ids[] = {"1", "a.b", "%", "%25", "*.#", "x y"};
    (void)state;

    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < sizeof(ids) / sizeof(*ids); i++) {
            int n = pattern((gw_interest_kind_t)k, ids[i]);
            assert_true(n > 2);
            out[n - 2] = '\0';
            assert_target(out, (gw_channel_kind_t)k, ids[i]);
        }
    }
}

/* The routing key of a delivery, against the envelope it carries. */
static const char *agree(const char *key, const char *json)
{
    gw_event_t *ev;
    gw_channel_t ch;
    const char *reason, *why;

    assert_int_equal(parse(key, &ch), 0);
    assert_int_equal(gw_event_parse(json, strlen(json), &ev, &reason), 0);
    why = gw_channel_match(ev, &ch);
    gw_event_unref(ev);
    return why;
}

static void test_agreement(void **state)
{
    (void)state;
    assert_null(agree("guild.g.x", "{\"event\":\"e\",\"guildId\":\"g\"}"));
    assert_null(agree("guild.a%2Eb", "{\"event\":\"e\",\"guildId\":\"a.b\"}"));
    assert_non_null(agree("guild.a", "{\"event\":\"e\",\"guildId\":\"a.b\"}"));
    assert_non_null(agree("guild.g", "{\"event\":\"e\",\"userId\":\"g\"}"));
    assert_null(
        agree("user.u2", "{\"event\":\"e\",\"userIds\":[\"u1\",\"u2\"]}"));
    assert_non_null(agree("user.u3", "{\"event\":\"e\",\"userId\":\"u1\"}"));
    assert_null(
        agree("session." SID, "{\"event\":\"e\",\"sessionId\":\"" SID "\"}"));
    assert_non_null(
        agree("session." SID, "{\"event\":\"e\",\"guildId\":\"g\"}"));
    /* broadcast is the compatibility path: it takes any envelope. */
    assert_null(agree("broadcast", "{\"event\":\"e\",\"broadcast\":true}"));
    assert_null(agree("broadcast.x", "{\"event\":\"e\",\"guildId\":\"g\"}"));
}

static void test_exchange_names(void **state)
{
    char *name = gw_amqp_key_exchange("gatewayd.gw-1", 2);
    (void)state;

    assert_string_equal(name, "gatewayd.gw-1.targets.2");
    free(name);
}

static void assert_generation(unsigned exists, int gen, int old, unsigned drop)
{
    int g, o;
    unsigned d;

    gw_amqp_key_generation(exists, &g, &o, &d);
    assert_int_equal(g, gen);
    assert_int_equal(o, old);
    assert_int_equal(d, drop);
}

static void test_generations(void **state)
{
    (void)state;
    /* None yet: build 0, keep nothing. */
    assert_generation(0, 0, -1, 0);
    /* One, complete: build its successor beside it. */
    assert_generation(1 << 0, 1, 0, 0);
    assert_generation(1 << 1, 2, 1, 0);
    assert_generation(1 << 2, 0, 2, 0);
    /* Two: the successor is a build left half done; start it again. */
    assert_generation(1 << 0 | 1 << 1, 1, 0, 1 << 1);
    assert_generation(1 << 1 | 1 << 2, 2, 1, 1 << 2);
    assert_generation(1 << 2 | 1 << 0, 0, 2, 1 << 0);
    /* Three never happen by this scheme: start afresh. */
    assert_generation(7, 0, -1, 7);
    /* Bits past the three are ignored. */
    assert_generation(1 << 3 | 1 << 1, 2, 1, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_pattern_bound),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_parse_id_bound),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_agreement),
        cmocka_unit_test(test_exchange_names),
        cmocka_unit_test(test_generations),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
