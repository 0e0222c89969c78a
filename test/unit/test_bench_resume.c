/* gwbench's resume scenario, its pure parts (bench/resume.h): the resume
 * message, what a client reads in ready/identified/resumed and in a
 * dispatch, a session's accounting of seq and events across connections,
 * the lost events against the publisher's record, and the figures read
 * from GET /stats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "resume.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SID "0123456789abcdef0123456789abcdef"

static const uint8_t *u8(const char *s)
{
    return (const uint8_t *)s;
}

static void test_request(void **state)
{
    static const char want[] =
        "{\"event\":\"resume\",\"data\":{\"sessionId\":\"" SID "\","
        "\"token\":\"a.b.c\",\"seq\":18446744073709551615}}";
    char out[256];
    size_t n;
    (void)state;

    assert_int_equal(
        resume_request(out, sizeof(out), SID, "a.b.cXYZ", 5, UINT64_MAX),
        sizeof(want) - 1);
    assert_string_equal(out, want);
    n = resume_request(out, sizeof(out), SID, "t", 1, 0);
    assert_int_equal(n, strlen(out));
    assert_non_null(strstr(out, "\"token\":\"t\",\"seq\":0}}"));
    /* One byte short of the NUL, and exactly enough. */
    assert_int_equal(
        resume_request(out, sizeof(want) - 1, SID, "a.b.c", 5, UINT64_MAX), 0);
    assert_int_equal(
        resume_request(out, sizeof(want), SID, "a.b.c", 5, UINT64_MAX),
        sizeof(want) - 1);
}

static void test_session_id(void **state)
{
    static const char *const good[] = {
        "{\"event\":\"ready\",\"data\":{\"sessionId\":\"" SID
        "\",\"heartbeatInterval\":30000}}",
        "{\"event\":\"identified\",\"data\":{\"userId\":\"u7\","
        "\"sessionId\":\"" SID "\",\"guildIds\":[\"g0\"]}}",
        "{\"event\":\"resumed\",\"data\":{\"sessionId\":\"" SID
        "\",\"replayed\":3}}",
    };
    static const char *const bad[] = {
        "{\"event\":\"ready\",\"data\":{}}",
        "{\"sessionId\":\"0123456789abcdef\"}",
        "{\"sessionId\":\"" SID "0\"}",
        "{\"sessionId\":\"0123456789abcdef0123456789abcde\"\"}",
        "{\"sessionId\":\"" SID,
        "{\"sessionId\":7}",
    };
    char sid[RESUME_SID_LEN];
    (void)state;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        memset(sid, 0, sizeof(sid));
        assert_int_equal(resume_session_id(u8(good[i]), strlen(good[i]), sid),
                         0);
        assert_memory_equal(sid, SID, RESUME_SID_LEN);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(resume_session_id(u8(bad[i]), strlen(bad[i]), sid),
                         -1);
}

static void test_replayed(void **state)
{
    const char *m = "{\"event\":\"resumed\",\"data\":{\"sessionId\":\"" SID
                    "\",\"replayed\":256}}";
    uint64_t k = 0;
    (void)state;

    assert_int_equal(resume_replayed(u8(m), strlen(m), &k), 0);
    assert_int_equal(k, 256);
    m = "{\"event\":\"resumed\",\"data\":{\"replayed\":0}}";
    assert_int_equal(resume_replayed(u8(m), strlen(m), &k), 0);
    assert_int_equal(k, 0);
    m = "{\"event\":\"resumed\",\"data\":{\"replayed\":\"3\"}}";
    assert_int_equal(resume_replayed(u8(m), strlen(m), &k), -1);
    m = "{\"event\":\"resumed\",\"data\":{}}";
    assert_int_equal(resume_replayed(u8(m), strlen(m), &k), -1);
    /* Cut right after the key. */
    m = "{\"replayed\":";
    assert_int_equal(resume_replayed(u8(m), strlen(m), &k), -1);
}

static void test_dispatch(void **state)
{
    const char *m = "{\"seq\":42,\"event\":\"bench\",\"guildId\":\"g3\","
                    "\"data\":{\"bts\":123456789,\"n\":1003,\"pad\":\"xx\"}}";
    resume_dispatch_t d;
    (void)state;

    assert_int_equal(resume_dispatch_parse(u8(m), strlen(m), &d), 0);
    assert_int_equal(d.seq, 42);
    assert_int_equal(d.bts, 123456789);
    assert_int_equal(d.n, 1003);
    /* A prefix that cuts a figure or drops n fails; none passes with a
     * shorter number. */
    for (size_t len = 0; len < strlen(m); len++) {
        int rc = resume_dispatch_parse(u8(m), len, &d);

        if (len <= 73)
            assert_int_equal(rc, -1);
        else
            assert_true(rc == 0 && d.n == 1003);
    }
    m = "{\"event\":\"bench\",\"data\":{\"bts\":1,\"n\":2}}";
    assert_int_equal(resume_dispatch_parse(u8(m), strlen(m), &d), -1);
    m = "{\"seq\":,\"event\":\"bench\",\"data\":{\"bts\":1,\"n\":2}}";
    assert_int_equal(resume_dispatch_parse(u8(m), strlen(m), &d), -1);
    m = "{\"seq\":1,\"data\":{\"n\":2,\"bts\":1}}"; /* n before bts */
    assert_int_equal(resume_dispatch_parse(u8(m), strlen(m), &d), -1);
    m = "{\"seq\":1,\"data\":{\"bts\":1}}";
    assert_int_equal(resume_dispatch_parse(u8(m), strlen(m), &d), -1);
    m = "{\"seq\":12345678901234567890,\"data\":{\"bts\":1,\"n\":2}}";
    assert_int_equal(resume_dispatch_parse(u8(m), strlen(m), &d), -1);
    m = "{\"seq\":1234567890123456789,\"data\":{\"bts\":1,\"n\":2}}";
    assert_int_equal(resume_dispatch_parse(u8(m), strlen(m), &d), 0);
    assert_int_equal(d.seq, 1234567890123456789ull);
}

static void test_token_span(void **state)
{
    const char *id = "{\"event\":\"identify\",\"data\":{\"userId\":\"u1\","
                     "\"token\":\"aa.bb.cc\",\"guildIds\":[\"g0\"]}}";
    size_t off = 0, len = 0;
    (void)state;

    assert_int_equal(resume_token_span(id, &off, &len), 0);
    assert_int_equal(len, 8);
    assert_memory_equal(id + off, "aa.bb.cc", 8);
    assert_int_equal(resume_token_span("{\"token\":\"aa", &off, &len), -1);
    assert_int_equal(resume_token_span("{\"userId\":\"u1\"}", &off, &len), -1);
}

/* Guild 2 of 5 (guild0 0): its events are n = 2, 7, 12, ... */
static void test_track_in_order(void **state)
{
    resume_track_t t;
    (void)state;

    resume_track_init(&t, 10);
    resume_track_begin(&t, 100);
    for (uint64_t k = 0; k < 10; k++)
        assert_int_equal(resume_track_dispatch(&t, k + 1, 5 * k + 2, 2, 0, 5),
                         0);
    assert_int_equal(t.last_seq, 10);
    assert_int_equal(t.next_n, 48);
    resume_track_free(&t);
    assert_null(t.seen);
}

static void test_track_faults(void **state)
{
    resume_track_t t;
    (void)state;

    resume_track_init(&t, 10);
    resume_track_begin(&t, 100);
    assert_int_equal(resume_track_dispatch(&t, 1, 2, 2, 0, 5), 0);
    /* seq 2 missing; event 7 missing. */
    assert_int_equal(resume_track_dispatch(&t, 3, 12, 2, 0, 5), RESUME_GAP);
    /* The same again: a repeat and a dup. */
    assert_int_equal(resume_track_dispatch(&t, 3, 12, 2, 0, 5),
                     RESUME_REPEAT | RESUME_DUP);
    /* Event 7 late, with a new seq: out of order, not a dup. */
    assert_int_equal(resume_track_dispatch(&t, 4, 7, 2, 0, 5), RESUME_DISORDER);
    /* An event of guild 3, and one past the bitmap (k = 10). */
    assert_int_equal(resume_track_dispatch(&t, 5, 13, 2, 0, 5), RESUME_FOREIGN);
    assert_int_equal(resume_track_dispatch(&t, 6, 52, 2, 0, 5), RESUME_FOREIGN);
    /* A seq ahead and behind at once cannot be: behind wins. */
    assert_int_equal(resume_track_dispatch(&t, 2, 17, 2, 0, 5), RESUME_REPEAT);
    assert_int_equal(t.last_seq, 6);
    /* A guild outside guild0 .. guild0 + guilds. */
    assert_int_equal(resume_track_dispatch(&t, 7, 22, 2, 3, 5), RESUME_FOREIGN);
    assert_int_equal(resume_track_dispatch(&t, 8, 22, 9, 3, 5), RESUME_FOREIGN);
    resume_track_free(&t);
}

/* A new session (after invalid_session) starts its seq over; the events
 * received before stay received. Without a bitmap only seq is checked. */
static void test_track_new_session(void **state)
{
    resume_track_t t;
    (void)state;

    resume_track_init(&t, 4);
    resume_track_begin(&t, 100);
    assert_int_equal(resume_track_dispatch(&t, 1, 0, 0, 0, 1), 0);
    assert_int_equal(resume_track_dispatch(&t, 2, 1, 0, 0, 1), 0);
    resume_track_begin(&t, 200);
    assert_int_equal(t.last_seq, 0);
    assert_int_equal(t.life_from, 200);
    assert_int_equal(resume_track_dispatch(&t, 1, 1, 0, 0, 1), RESUME_DUP);
    assert_int_equal(resume_track_dispatch(&t, 2, 3, 0, 0, 1), 0);
    resume_track_free(&t);

    resume_track_init(&t, 0);
    assert_null(t.seen);
    assert_int_equal(resume_track_dispatch(&t, 1, 99, 0, 0, 1), 0);
    assert_int_equal(resume_track_dispatch(&t, 1, 99, 0, 0, 1), RESUME_REPEAT);
    assert_int_equal(resume_track_dispatch(&t, 3, 99, 0, 0, 1), RESUME_GAP);
    resume_track_free(&t);
}

/* Guild 1 of guilds 10 .. 12 (guild0 10, guild 11): events 1, 4, 7, ... */
static void test_missing(void **state)
{
    uint64_t record[20];
    resume_track_t t;
    (void)state;

    for (uint64_t n = 0; n < 20; n++)
        record[n] = 1000 + 10 * n; /* event n published at 1000 + 10 n */
    record[13] = 0;                /* not published yet */
    resume_track_init(&t, 7);
    resume_track_begin(&t, 1000);
    /* Received 1, 4, 10: missing 7, 16, 19 (13 is not published). */
    resume_track_dispatch(&t, 1, 1, 11, 10, 3);
    resume_track_dispatch(&t, 2, 4, 11, 10, 3);
    resume_track_dispatch(&t, 3, 10, 11, 10, 3);
    assert_int_equal(
        resume_track_missing(&t, record, 20, 11, 10, 3, 1000, UINT64_MAX), 3);
    /* Only the first 17 sent: 19 does not count. */
    assert_int_equal(
        resume_track_missing(&t, record, 17, 11, 10, 3, 1000, UINT64_MAX), 2);
    /* The window is open at both ends: 7 (at 1070) is in (1069, 1071) but
     * not in (1070, ...) nor (..., 1070). */
    assert_int_equal(
        resume_track_missing(&t, record, 20, 11, 10, 3, 1069, 1071), 1);
    assert_int_equal(
        resume_track_missing(&t, record, 20, 11, 10, 3, 1070, UINT64_MAX), 2);
    assert_int_equal(resume_track_missing(&t, record, 20, 11, 10, 3, 0, 1070),
                     0);
    /* Not one of the guilds. */
    assert_int_equal(
        resume_track_missing(&t, record, 20, 9, 10, 3, 0, UINT64_MAX), 0);
    resume_track_free(&t);
    /* Guild 12, nothing received: 2, 5, 8, 11, 14, 17. */
    resume_track_init(&t, 7);
    assert_int_equal(
        resume_track_missing(&t, record, 20, 12, 10, 3, 1000, UINT64_MAX), 6);
    resume_track_free(&t);
    resume_track_init(&t, 0);
    assert_int_equal(resume_track_missing(&t, record, 20, 11, 10, 3, 0, 5000),
                     0);
    resume_track_free(&t);
}

static void test_stats_parse(void **state)
{
    static const char body[] =
        "{\"workers\":[{\"id\":0,\"parked\":3},{\"id\":1,\"parked\":4}],"
        "\"broker\":{},\"totals\":{\"connections\":4990,\"sessions\":5000,"
        "\"parked\":7,\"resumed\":2500,\"resume_invalid\":1,"
        "\"replayed\":321,\"resume_overflows\":2,\"resume_expired\":3,"
        "\"resume_handed_over\":1250,\"frames_in\":9}}";
    char copy[sizeof(body)], *p;
    resume_stats_t s;
    (void)state;

    assert_int_equal(resume_stats_parse(body, strlen(body), &s), 0);
    assert_true(s.parked == 7 && s.resumed == 2500 && s.invalid == 1);
    assert_true(s.replayed == 321 && s.overflows == 2 && s.expired == 3);
    assert_true(s.handed == 1250 && s.sessions == 5000);
    assert_true(s.connections == 4990 && s.workers == 2);
    /* A daemon without resume: no figure, all zero. */
    memcpy(copy, body, sizeof(copy));
    p = strstr(copy, "\"replayed\"");
    memcpy(p, "\"xeplayed\"", 10);
    assert_int_equal(resume_stats_parse(copy, strlen(copy), &s), -1);
    assert_true(s.resumed == 0 && s.workers == 0);
    assert_int_equal(resume_stats_parse("{\"totals\":{}}", 13, &s), -1);
    assert_int_equal(resume_stats_parse("nope", 4, &s), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_session_id),
        cmocka_unit_test(test_replayed),
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_token_span),
        cmocka_unit_test(test_track_in_order),
        cmocka_unit_test(test_track_faults),
        cmocka_unit_test(test_track_new_session),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_stats_parse),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
