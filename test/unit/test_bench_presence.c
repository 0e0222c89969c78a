/* gwbench's presence scenario, its pure parts (bench/presview.h): the
 * GET /presence path of a batch, the answer checked against "every user
 * online with one session", and the figures read from GET /stats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "presview.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check(const char *body, uint32_t first, uint32_t count,
                 presview_tally_t *t)
{
    return presview_check(body, strlen(body), first, count, t);
}

static void test_path_small(void **state)
{
    char out[64];
    (void)state;

    assert_int_equal(presview_path(out, sizeof(out), 0, 3), 26);
    assert_string_equal(out, "/presence?userIds=u0,u1,u2");
    assert_int_equal(presview_path(out, sizeof(out), 4999, 1), 23);
    assert_string_equal(out, "/presence?userIds=u4999");
}

/* A whole batch: every id once, in order, and what does not fit or is
 * out of range gives 0. */
static void test_path_bounds(void **state)
{
    char out[1200], *p, *save = NULL;
    uint32_t want = 700;
    size_t n = presview_path(out, sizeof(out), 700, PRESVIEW_BATCH);
    (void)state;

    assert_true(n > 0);
    assert_int_equal(strlen(out), n);
    assert_memory_equal(out, "/presence?userIds=", 18);
    for (p = strtok_r(out + 18, ",", &save); p != NULL;
         p = strtok_r(NULL, ",", &save)) {
        char id[16];

        snprintf(id, sizeof(id), "u%u", want++);
        assert_string_equal(p, id);
    }
    assert_int_equal(want, 700 + PRESVIEW_BATCH);
    assert_int_equal(presview_path(out, sizeof(out), 0, 0), 0);
    assert_int_equal(presview_path(out, sizeof(out), 0, PRESVIEW_BATCH + 1), 0);
    /* One byte short of the NUL. */
    assert_int_equal(presview_path(out, 26, 0, 3), 0);
    assert_int_equal(presview_path(out, 27, 0, 3), 26);
}

static void test_check_all_right(void **state)
{
    presview_tally_t t;
    (void)state;

    /* Any order; gatewayd's own answer form. */
    assert_int_equal(
        check("{\"users\":[{\"userId\":\"u12\",\"status\":\"online\","
              "\"sessions\":1},{\"userId\":\"u10\",\"status\":\"online\","
              "\"sessions\":1},{\"userId\":\"u11\",\"status\":\"online\","
              "\"sessions\":1}],\"scope\":\"cluster\"}\n",
              10, 3, &t),
        0);
    assert_int_equal(t.right, 3);
    assert_int_equal(t.other + t.offline + t.missing + t.stray, 0);
}

/* In the grace (0), both sessions counted (2), offline, missing. */
static void test_check_wrong_kinds(void **state)
{
    presview_tally_t t;
    (void)state;

    assert_int_equal(
        check("{\"users\":["
              "{\"userId\":\"u0\",\"status\":\"online\",\"sessions\":0},"
              "{\"userId\":\"u1\",\"status\":\"online\",\"sessions\":2},"
              "{\"userId\":\"u2\",\"status\":\"offline\",\"sessions\":0},"
              "{\"userId\":\"u3\",\"status\":\"online\",\"sessions\":1}]}",
              0, 5, &t),
        0);
    assert_int_equal(t.right, 1);
    assert_int_equal(t.other, 2);
    assert_int_equal(t.offline, 1);
    assert_int_equal(t.missing, 1); /* u4 */
    assert_int_equal(t.stray, 0);
}

/* Ids outside the batch, twice, malformed, or with bad fields are stray
 * and do not count for the batch. */
static void test_check_stray(void **state)
{
    static const char *const bad[] = {
        "{\"userId\":\"u2\",\"status\":\"online\",\"sessions\":1}",
        "{\"userId\":\"u01\",\"status\":\"online\",\"sessions\":1}",
        "{\"userId\":\"u\",\"status\":\"online\",\"sessions\":1}",
        "{\"userId\":\"x1\",\"status\":\"online\",\"sessions\":1}",
        "{\"userId\":\"u1a\",\"status\":\"online\",\"sessions\":1}",
        "{\"userId\":\"u-1\",\"status\":\"online\",\"sessions\":1}",
        "{\"userId\":1,\"status\":\"online\",\"sessions\":1}",
        "{\"userId\":\"u1\",\"status\":1,\"sessions\":1}",
        "{\"userId\":\"u1\",\"status\":\"online\",\"sessions\":\"1\"}",
        "{\"userId\":\"u1\",\"status\":\"online\"}",
        "\"u1\"",
    };
    char body[256];
    presview_tally_t t;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "{\"users\":[%s]}", bad[i]);
        assert_int_equal(check(body, 0, 2, &t), 0);
        assert_int_equal(t.stray, 1);
        assert_int_equal(t.right, 0);
        assert_int_equal(t.missing, 2);
    }
    /* Twice: the first counts. */
    assert_int_equal(
        check("{\"users\":["
              "{\"userId\":\"u0\",\"status\":\"online\",\"sessions\":1},"
              "{\"userId\":\"u0\",\"status\":\"offline\",\"sessions\":0}]}",
              0, 1, &t),
        0);
    assert_int_equal(t.right, 1);
    assert_int_equal(t.stray, 1);
    assert_int_equal(t.offline + t.missing, 0);
}

static void test_check_not_an_answer(void **state)
{
    static const char *const bodies[] = {
        "",
        "not json",
        "{\"users\":{}}",
        "{\"error\":\"presence is disabled\"}",
        "[{\"userId\":\"u0\"}]",
        "{\"users\":[",
    };
    presview_tally_t t;
    (void)state;

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        memset(&t, 0xff, sizeof(t));
        assert_int_equal(check(bodies[i], 0, 1, &t), -1);
        assert_int_equal(t.right + t.other + t.offline + t.missing + t.stray,
                         0);
    }
    assert_int_equal(check("{\"users\":[]}", 0, 0, &t), -1);
    assert_int_equal(check("{\"users\":[]}", 0, PRESVIEW_BATCH + 1, &t), -1);
    /* An empty answer: all missing. */
    assert_int_equal(check("{\"users\":[]}", 0, PRESVIEW_BATCH, &t), 0);
    assert_int_equal(t.missing, PRESVIEW_BATCH);
}

/* The body of gatewayd's GET /stats, shortened: per-worker figures are
 * not read, "totals" is. */
static const char stats_body[] =
    "{\"workers\":[{\"id\":0,\"sessions\":7}],"
    "\"broker\":{\"presence_commands\":3},"
    "\"totals\":{\"workers\":2,\"connections\":1700,\"sessions\":1667,"
    "\"presence_reports_lost\":2,\"presence_online\":1667,"
    "\"presence_offline\":4,\"presence_reaped\":1,"
    "\"presence_commands\":5123,\"presence_changes\":9000,"
    "\"presence_failures\":5,"
    "\"presence_censuses\":1}}";

static void test_stats_parse(void **state)
{
    presview_stats_t s, later, d;
    char body[sizeof(stats_body)];
    char *p;
    (void)state;

    assert_int_equal(presview_stats_parse(stats_body, strlen(stats_body), &s),
                     0);
    assert_true(s.commands == 5123);
    assert_true(s.changes == 9000);
    assert_true(s.failures == 5);
    assert_true(s.online == 1667);
    assert_true(s.offline == 4);
    assert_true(s.reaped == 1);
    assert_true(s.lost == 2);
    assert_true(s.sessions == 1667);
    later = s;
    later.commands += 100;
    later.changes += 250;
    later.sessions = 1666;
    d = presview_stats_delta(&s, &later);
    assert_true(d.commands == 100);
    assert_true(d.changes == 250);
    assert_true(d.online == 0);
    assert_true(d.sessions == 1666);
    /* A daemon without presence: no figure, all zero. */
    memcpy(body, stats_body, sizeof(body));
    p = strstr(body, "presence_commands\":5123");
    memcpy(p, "presence_xommands", 17);
    assert_int_equal(presview_stats_parse(body, strlen(body), &s), -1);
    assert_true(s.online == 0 && s.sessions == 0);
    assert_int_equal(presview_stats_parse("{}", 2, &s), -1);
    assert_int_equal(presview_stats_parse("nope", 4, &s), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_small),
        cmocka_unit_test(test_path_bounds),
        cmocka_unit_test(test_check_all_right),
        cmocka_unit_test(test_check_wrong_kinds),
        cmocka_unit_test(test_check_stray),
        cmocka_unit_test(test_check_not_an_answer),
        cmocka_unit_test(test_stats_parse),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
