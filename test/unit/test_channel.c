/* Channel names: built, read back, which channels an envelope goes to, and
 * whether an envelope agrees with the channel it came on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw/channel.h"
#include "gw/error.h"

#define SID "0001000000a1b2c3d4e5f60718293a4b"

static gw_event_t *parse(const char *json)
{
    gw_event_t *ev;
    const char *reason;

    assert_int_equal(gw_event_parse(json, strlen(json), &ev, &reason), 0);
    return ev;
}

static int parse_name(const char *name, gw_channel_t *ch)
{
    return gw_channel_parse("ev", name, strlen(name), ch);
}

static void assert_target(const gw_channel_t *ch, gw_channel_kind_t kind,
                          const char *id)
{
    assert_int_equal(ch->kind, kind);
    assert_int_equal(ch->len, strlen(id));
    assert_memory_equal(ch->id, id, ch->len);
}

static void test_names(void **state)
{
    gw_channel_list_t l = {0};
    (void)state;

    gw_channel_list_add(&l, "ev", GW_INTEREST_GUILD, "g1", 2);
    gw_channel_list_add(&l, "ev", GW_INTEREST_USER, "a:b*", 4);
    gw_channel_list_add(&l, "ev", GW_INTEREST_SESSION, SID, 32);
    gw_channel_list_plain(&l, "ev");
    assert_int_equal(l.n, 4);
    assert_string_equal(l.names[0], "ev:guild:g1");
    assert_string_equal(l.names[1], "ev:user:a:b*");
    assert_string_equal(l.names[2], "ev:session:" SID);
    assert_string_equal(l.names[3], "ev");
    for (size_t i = 0; i < l.n; i++)
        assert_int_equal(l.lens[i], strlen(l.names[i]));
    gw_channel_list_free(&l);
    assert_int_equal(l.n, 0);
}

static void test_parse(void **state)
{
    gw_channel_t ch;
    (void)state;

    assert_int_equal(parse_name("ev", &ch), 0);
    assert_int_equal(ch.kind, GW_CHANNEL_PLAIN);
    assert_null(ch.id);
    assert_int_equal(parse_name("ev:guild:g1", &ch), 0);
    assert_target(&ch, GW_CHANNEL_GUILD, "g1");
    /* The id is the rest, colons and all. */
    assert_int_equal(parse_name("ev:user:a:guild:b", &ch), 0);
    assert_target(&ch, GW_CHANNEL_USER, "a:guild:b");
    assert_int_equal(parse_name("ev:session:" SID, &ch), 0);
    assert_target(&ch, GW_CHANNEL_SESSION, SID);
}

static void test_parse_refuses(void **state)
{
    static const char *const bad[] = {
        "",
        "e",
        "evx",
        "other",
        "ev:",
        "ev:handoff",  /* the control channel: not a target */
        "ev:guild:",   /* no id */
        "ev:guild",    /* no colon, no id */
        "ev:guilds:g", /* no such kind */
        "ev:user:",    /* no id */
        "ev:session:" SID "0",
        "ev:session:0001000000A1B2C3D4E5F60718293A4B", /* not lowercase */
        "ev:session:0001000000a1b2c3d4e5f60718293a4g",
    };
    char longest[200];
    gw_channel_t ch;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse_name(bad[i], &ch), GW_EINVAL);
    /* An id of 128 bytes is one, 129 is not; nor is one with a NUL. */
    memset(longest, 'x', sizeof(longest));
    memcpy(longest, "ev:guild:", 9);
    assert_int_equal(gw_channel_parse("ev", longest, 9 + 128, &ch), 0);
    assert_int_equal(gw_channel_parse("ev", longest, 9 + 129, &ch), GW_EINVAL);
    longest[20] = '\0';
    assert_int_equal(gw_channel_parse("ev", longest, 9 + 20, &ch), GW_EINVAL);
}

/* Each channel an envelope goes to, by its target. */
static void test_channels_of_an_envelope(void **state)
{
    static const struct {
        const char *json;
        const char *channels; /* space-separated */
    } cases[] = {
        {"{\"event\":\"m\",\"guildId\":\"g1\"}", "ev:guild:g1"},
        {"{\"event\":\"m\",\"userId\":\"u1\"}", "ev:user:u1"},
        {"{\"event\":\"m\",\"userIds\":[\"b\",\"a\",\"b\"]}",
         "ev:user:a ev:user:b"},
        {"{\"event\":\"m\",\"userIds\":[\"a\",\"b\",\"c\",\"d\"]}", "ev"},
        {"{\"event\":\"m\",\"sessionId\":\"0001000000A1B2C3D4E5F60718293A4B\"}",
         "ev:session:" SID},
        {"{\"event\":\"m\",\"broadcast\":true}", "ev"},
        {"{\"action\":\"disconnect\",\"userId\":\"u\"}", "ev:user:u"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gw_channel_list_t l = {0};
        gw_event_t *ev = parse(cases[i].json);
        char got[256] = "";
        gw_channel_for_event(&l, "ev", ev, 3);
        for (size_t k = 0; k < l.n; k++) {
            strcat(got, k ? " " : "");
            strcat(got, l.names[k]);
        }
        assert_string_equal(got, cases[i].channels);
        gw_channel_list_free(&l);
        gw_event_unref(ev);
    }
}

/* The channel routes: what does not agree is refused, users narrowed. */
static void test_match(void **state)
{
    static const struct {
        const char *channel;
        const char *json;
        int agrees;
    } cases[] = {
        {"ev", "{\"event\":\"m\",\"guildId\":\"g1\"}", 1},
        {"ev:guild:g1", "{\"event\":\"m\",\"guildId\":\"g1\"}", 1},
        {"ev:guild:g1", "{\"event\":\"m\",\"guildId\":\"g2\"}", 0},
        {"ev:guild:g1", "{\"event\":\"m\",\"userId\":\"g1\"}", 0},
        {"ev:guild:g1", "{\"event\":\"m\",\"broadcast\":true}", 0},
        {"ev:user:u1", "{\"event\":\"m\",\"userId\":\"u1\"}", 1},
        {"ev:user:u1", "{\"event\":\"m\",\"userId\":\"u10\"}", 0},
        {"ev:user:u1", "{\"event\":\"m\",\"guildId\":\"u1\"}", 0},
        {"ev:user:u1",
         "{\"action\":\"subscribe\",\"userId\":\"u1\","
         "\"guildId\":\"g\"}",
         1},
        {"ev:session:" SID,
         "{\"event\":\"m\",\"sessionId\":\"0001000000a1b2c3d4e5f60718293a4b\"}",
         1},
        {"ev:session:" SID,
         "{\"event\":\"m\",\"sessionId\":\"1001000000a1b2c3d4e5f60718293a4b\"}",
         0},
        {"ev:session:" SID, "{\"event\":\"m\",\"userId\":\"u\"}", 0},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gw_channel_t ch;
        gw_event_t *ev = parse(cases[i].json);
        assert_int_equal(parse_name(cases[i].channel, &ch), 0);
        if (cases[i].agrees)
            assert_null(gw_channel_match(ev, &ch));
        else
            assert_non_null(gw_channel_match(ev, &ch));
        gw_event_unref(ev);
    }
}

/* Each user of a userIds envelope has its own copy: on u2's channel it is
 * for u2 alone. */
static void test_users_narrowed(void **state)
{
    gw_event_t *ev = parse(
        "{\"event\":\"m\",\"userIds\":[\"u1\",\"u2\",\"u3\"],\"data\":{}}");
    gw_channel_t ch;
    (void)state;

    assert_int_equal(parse_name("ev:user:u2", &ch), 0);
    assert_null(gw_channel_match(ev, &ch));
    assert_int_equal(ev->nids, 1);
    assert_string_equal(ev->ids[0], "u2");
    gw_event_unref(ev);
}

/* The origin a gateway stamps comes first, ahead of one a backend set. */
static void test_stamp_origin(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {" {\"event\":\"m\",\"broadcast\":true}",
         "{\"origin\":\"gw-a\",\"event\":\"m\",\"broadcast\":true}"},
        {"{\"origin\":\"gw-b\",\"event\":\"m\",\"broadcast\":true}",
         "{\"origin\":\"gw-a\",\"origin\":\"gw-b\",\"event\":\"m\","
         "\"broadcast\":true}"},
        {"{ }", "{\"origin\":\"gw-a\" }"},
        {"{", "{\"origin\":\"gw-a\""},
    };
    size_t n;
    char *out;
    gw_event_t *ev;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        out =
            gw_event_stamp_origin(cases[i].in, strlen(cases[i].in), "gw-a", &n);
        assert_string_equal(out, cases[i].out);
        assert_int_equal(n, strlen(out));
        free(out);
    }
    assert_null(gw_event_stamp_origin("[1]", 3, "gw-a", &n));
    assert_null(gw_event_stamp_origin("  ", 2, "gw-a", &n));
    out = gw_event_stamp_origin(cases[1].in, strlen(cases[1].in), "gw-a", &n);
    ev = parse(out);
    assert_string_equal(ev->origin, "gw-a");
    gw_event_unref(ev);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_channels_of_an_envelope),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_users_narrowed),
        cmocka_unit_test(test_stamp_origin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
