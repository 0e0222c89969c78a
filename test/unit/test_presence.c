/*
 * Presence without Redis (the link disabled), on a real loop: the
 * instance's own table decides online, the grace and offline; a census
 * rebuilds the table and reports from before it are ignored; a query is
 * answered on the next loop turn. The Redis side is the e2e suite's
 * (test_presence.py), against a real Redis.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/error.h"
#include "gw/presence.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRACE_MS 30

typedef struct fixture {
    uv_loop_t loop;
    gw_config_t cfg;
    gw_stats_t stats;
    gw_redis_t *redis;
    gw_presence_t *p;
    char said[16][256]; /* the envelopes announced, in order */
    int nsaid;
    uint32_t census; /* the last census asked for */
    uint32_t taken;  /* the last census the workers took */
    char *answer;    /* the last query's */
    int answers;
} fixture_t;

static void announce(void *data, const char *json, size_t len)
{
    fixture_t *f = data;

    assert_true(f->nsaid < 16 && len < sizeof(f->said[0]));
    memcpy(f->said[f->nsaid], json, len);
    f->said[f->nsaid++][len] = '\0';
}

static void census(void *data, uint32_t n)
{
    ((fixture_t *)data)->census = n;
}

static void no_message(const char *channel, size_t clen, const char *payload,
                       size_t len, void *data)
{
    (void)channel;
    (void)clen;
    (void)payload;
    (void)len;
    (void)data;
    fail();
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    uv_loop_init(&f->loop);
    gw_config_init(&f->cfg);
    f->cfg.redis_enabled = 0;
    f->cfg.presence_offline_grace_ms = GRACE_MS;
    f->redis =
        gw_redis_start(&f->loop, &f->cfg, &f->stats,
                       &(gw_redis_hooks_t){.message = no_message, .data = f});
    f->p = gw_presence_start(&f->loop, f->redis, &f->cfg, "i1", 2, &f->stats,
                             &(gw_presence_hooks_t){announce, census, f});
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    gw_redis_stop(f->redis);
    gw_presence_stop(f->p);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    gw_config_free(&f->cfg);
    free(f->answer);
    free(f);
    return 0;
}

static void report(fixture_t *f, int worker, const char *user, uint32_t before,
                   uint32_t after, const char *guilds)
{
    gw_presence_report_t r = {worker, f->taken, 0, before, after, user, guilds};

    gw_presence_report(f->p, &r);
}

static void expect_said(fixture_t *f, int i, const char *user,
                        const char *status, const char *guild)
{
    char want[256];

    snprintf(want, sizeof(want),
             "{\"origin\":\"i1\",\"event\":\"presence.update\",\"guildId\":"
             "\"%s\",\"data\":{\"userId\":\"%s\",\"status\":\"%s\"},"
             "\"excludeUserId\":\"%s\",\"priority\":4}",
             guild, user, status, user);
    assert_true(i < f->nsaid);
    assert_string_equal(f->said[i], want);
}

/* Runs the loop past the grace. */
static void wait_grace(fixture_t *f)
{
    uint64_t until = uv_now(&f->loop) + 2 * GRACE_MS;

    while (uv_now(&f->loop) < until)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static void test_first_session_online_last_offline_after_grace(void **state)
{
    fixture_t *f = *state;

    report(f, 0, "u1", 0, 1, "[\"g1\",\"g2\"]");
    assert_int_equal(f->nsaid, 2);
    expect_said(f, 0, "u1", "online", "g1");
    expect_said(f, 1, "u1", "online", "g2");
    /* Another worker, two more sessions: already online. */
    report(f, 1, "u1", 0, 1, "[\"g1\"]");
    report(f, 1, "u1", 1, 2, "[\"g1\"]");
    report(f, 0, "u1", 1, 0, "[\"g1\",\"g2\"]");
    wait_grace(f);
    assert_int_equal(f->nsaid, 2);
    report(f, 1, "u1", 2, 1, "[\"g1\"]");
    report(f, 1, "u1", 1, 0, "[\"g3\"]");
    assert_int_equal(f->nsaid, 2); /* not before the grace */
    wait_grace(f);
    assert_int_equal(f->nsaid, 3);
    expect_said(f, 2, "u1", "offline", "g3");
    assert_int_equal(gw_stat_get(&f->stats, GW_STAT_PRESENCE_ONLINE), 1);
    assert_int_equal(gw_stat_get(&f->stats, GW_STAT_PRESENCE_OFFLINE), 1);
}

static void test_reconnect_inside_grace_is_silent(void **state)
{
    fixture_t *f = *state;

    report(f, 0, "u1", 0, 1, "[\"g1\"]");
    report(f, 0, "u1", 1, 0, "[\"g1\"]");
    report(f, 1, "u1", 0, 1, "[\"g1\"]"); /* back, on another worker */
    wait_grace(f);
    assert_int_equal(f->nsaid, 1);
    report(f, 1, "u1", 1, 0, "[\"g1\"]");
    wait_grace(f);
    assert_int_equal(f->nsaid, 2);
    expect_said(f, 1, "u1", "offline", "g1");
}

static void test_census_rebuilds_and_old_reports_are_ignored(void **state)
{
    fixture_t *f = *state;
    gw_presence_report_t counted = {0, 0, 1, 0, 2, "u1", "[\"g1\"]"};
    gw_presence_report_t end = {0, 0, 1, 0, 0, NULL, NULL};

    report(f, 0, "u1", 0, 1, "[\"g1\"]");
    gw_presence_resync(f->p);
    assert_int_equal(f->census, 1);
    /* Reported before the worker took the census: ignored, and the census
     * does not know u2 either. */
    report(f, 0, "u2", 0, 1, "[\"g1\"]");
    f->taken = 1;
    counted.census = end.census = 1;
    gw_presence_report(f->p, &counted);
    gw_presence_report(f->p, &end);
    assert_int_equal(f->nsaid, 1); /* a census announces nothing */
    /* The table knows u1's two sessions: one leaving keeps it online. */
    report(f, 0, "u1", 2, 1, "[\"g1\"]");
    report(f, 0, "u1", 1, 0, "[\"g1\"]");
    wait_grace(f);
    assert_int_equal(f->nsaid, 2);
    expect_said(f, 1, "u1", "offline", "g1");
    /* u2 was never counted: its leaving is not news. */
    report(f, 0, "u2", 1, 0, "[\"g1\"]");
    wait_grace(f);
    assert_int_equal(f->nsaid, 2);
}

static void answer_cb(void *data, int status, char *json, size_t len)
{
    fixture_t *f = data;

    assert_int_equal(status, 0);
    assert_int_equal(strlen(json), len);
    free(f->answer);
    f->answer = json;
    f->answers++;
}

static void test_queries_without_redis(void **state)
{
    fixture_t *f = *state;
    const char *who[] = {"u1", "nobody\""};

    report(f, 0, "u1", 0, 1, "[]");
    report(f, 1, "u1", 0, 2, "[]");
    assert_int_equal(gw_presence_users(f->p, who, 2, answer_cb, f), 0);
    assert_int_equal(f->answers, 0); /* never from within the call */
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->answers, 1);
    assert_string_equal(f->answer,
                        "{\"users\":[{\"userId\":\"u1\",\"status\":\"online\","
                        "\"sessions\":3},{\"userId\":\"nobody\\\"\",\"status\":"
                        "\"offline\",\"sessions\":0}],\"scope\":\"instance\"}"
                        "\n");
    assert_int_equal(gw_presence_guild(f->p, "g1", answer_cb, f), GW_ECLOSED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_first_session_online_last_offline_after_grace, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_inside_grace_is_silent,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_census_rebuilds_and_old_reports_are_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queries_without_redis, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
