/* gwbench's drain scenario, its pure parts (bench/drain.h): the backoff of
 * a moving client, which instance is drained, the deliveries owed, the
 * handoff figures read from GET /stats, the verdict from a run's counters;
 * and a session's accounting across a move (resume.h) on the shapes a
 * drain handoff can go wrong in: a replay that repeats, a held dispatch
 * the overlap should have dropped, an event neither instance sent, one
 * that overtakes another. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "drain.h"
#include "resume.h"

#include <stdio.h>
#include <string.h>

static void test_backoff(void **state)
{
    uint64_t total = 0;
    (void)state;

    /* 20 ms, then doubling, plus at most half as much again. */
    assert_int_equal(drain_backoff_us(1, 0), 20000);
    assert_int_equal(drain_backoff_us(1, 10000), 30000);
    assert_int_equal(drain_backoff_us(1, 10001), 20000);
    assert_int_equal(drain_backoff_us(0, 0), 20000);
    assert_int_equal(drain_backoff_us(2, 0), 40000);
    assert_int_equal(drain_backoff_us(4, 0), 160000);
    /* Capped at 250 ms, however late the attempt or large the draw. */
    assert_int_equal(drain_backoff_us(5, 0), 250000);
    assert_int_equal(drain_backoff_us(200, 0), 250000);
    assert_true(drain_backoff_us(UINT32_MAX, UINT64_MAX) <= 375000);
    for (unsigned a = 1; a <= 60; a++) {
        uint64_t lo = drain_backoff_us(a, 0), hi = drain_backoff_us(a, ~0ull);

        assert_true(lo >= DRAIN_BACKOFF_MIN_US && lo <= DRAIN_BACKOFF_MAX_US);
        assert_true(hi >= lo && hi <= lo + lo / 2);
        if (a > 1)
            assert_true(lo >= drain_backoff_us(a - 1, 0));
    }
    /* Every retry of a move, at the longest: bounded, and what drain.h
     * says (about 13 s). */
    for (unsigned a = 1; a <= DRAIN_MAX_RETRIES; a++)
        total += drain_backoff_us(a, 1000000 + a);
    assert_true(total <= 20000000);
    assert_true(total >= 10000000);
}

static void test_pick(void **state)
{
    (void)state;
    assert_int_equal(drain_pick(0, 0), -1);
    assert_int_equal(drain_pick(1000, 1000), 0);
    assert_int_equal(drain_pick(999, 1001), 1);
    assert_int_equal(drain_pick(1001, 999), 0);
    assert_int_equal(drain_pick(0, 5), 1);
    assert_int_equal(drain_pick(5, 0), 0);
}

static void test_expected(void **state)
{
    (void)state;
    assert_int_equal(drain_expected(0, 2000, 20, 100), 0);
    /* 45 events over 20 guilds of 100: each event reaches 100. */
    assert_int_equal(drain_expected(45, 2000, 20, 100), 4500);
    /* 250 sessions in guilds of 84 (the last 82); 7 events: guild 0 gets
     * n = 0, 3, 6, guild 1 n = 1, 4, guild 2 n = 2, 5. */
    assert_int_equal(drain_expected(7, 250, 3, 84), 84 * 3 + 84 * 2 + 82 * 2);
    /* A guild past the sessions has no one. */
    assert_int_equal(drain_expected(5, 6, 5, 2), 2 + 2 + 2 + 0 + 0);
    assert_int_equal(drain_expected(10, 10, 0, 2), 0);
}

static void test_stats_parse(void **state)
{
    static const char body[] =
        "{\"workers\":[{\"id\":0}],\"totals\":{\"connections\":1000,"
        "\"sessions\":1001,\"resumed\":998,\"resume_invalid\":2,"
        "\"replayed\":2353,\"resume_overflows\":1,\"handoffs_waiting\":3,"
        "\"handoffs_served\":4,\"handoffs_restored\":997,"
        "\"handoffs_failed\":2,\"handoff_overlap\":27286,\"parked\":0}}";
    char copy[sizeof(body)], *p;
    drain_stats_t s;
    (void)state;

    assert_int_equal(drain_stats_parse(body, strlen(body), &s), 0);
    assert_true(s.restored == 997 && s.failed == 2 && s.overlap == 27286);
    assert_true(s.served == 4 && s.waiting == 3 && s.resumed == 998);
    assert_true(s.invalid == 2 && s.replayed == 2353 && s.overflows == 1);
    assert_true(s.connections == 1000 && s.sessions == 1001);
    /* A daemon without the handoff: -1, and nothing half read. */
    memcpy(copy, body, sizeof(copy));
    p = strstr(copy, "\"handoff_overlap\"");
    memcpy(p, "\"handoff_overlad\"", 17);
    assert_int_equal(drain_stats_parse(copy, strlen(copy), &s), -1);
    assert_true(s.restored == 0 && s.connections == 0);
    /* A figure that is not a number. */
    memcpy(copy, body, sizeof(copy));
    p = strstr(copy, "27286");
    memcpy(p, "\"286\"", 5);
    assert_int_equal(drain_stats_parse(copy, strlen(copy), &s), -1);
    assert_int_equal(drain_stats_parse("{\"totals\":{}}", 13, &s), -1);
    assert_int_equal(drain_stats_parse("nope", 4, &s), -1);
    assert_int_equal(drain_stats_parse(body, 20, &s), -1);
}

/* A run in which everything went right: 1000 of 2000 moved. */
static drain_tally_t clean(void)
{
    drain_tally_t t;

    memset(&t, 0, sizeof(t));
    t.on_drained = t.moved = t.resumed = t.restored = 1000;
    t.exited = 1;
    return t;
}

static void test_verdict_clean(void **state)
{
    drain_fault_t f[DRAIN_CHECKS];
    drain_tally_t t = clean();
    (void)state;

    assert_int_equal(drain_verdict(&t, f, DRAIN_CHECKS), 0);
}

/* Each figure wrong alone is one fault, naming it, its value and what it
 * must be. */
static void test_verdict_each(void **state)
{
    static const struct {
        size_t off;
        uint64_t value;
        const char *what;
        uint64_t want;
        int at_least;
    } cases[] = {
        {offsetof(drain_tally_t, gave_up), 1, "moving sessions out of retries",
         0, 0},
        {offsetof(drain_tally_t, invalid), 2, "invalid_session", 0, 0},
        {offsetof(drain_tally_t, lost), 3, "lost", 0, 0},
        {offsetof(drain_tally_t, lost_not_back), 4, "lost, not back", 0, 0},
        {offsetof(drain_tally_t, lost_at_invalid), 5, "lost at invalid_session",
         0, 0},
        {offsetof(drain_tally_t, duplicated), 6, "duplicated", 0, 0},
        {offsetof(drain_tally_t, out_of_order), 7, "out of order", 0, 0},
        {offsetof(drain_tally_t, seq_gaps), 8, "seq gaps", 0, 0},
        {offsetof(drain_tally_t, seq_repeats), 9, "seq repeats", 0, 0},
        {offsetof(drain_tally_t, foreign), 10, "foreign events", 0, 0},
        {offsetof(drain_tally_t, replay_mismatch), 11,
         "replays not as resumed said", 0, 0},
        {offsetof(drain_tally_t, handoffs_failed), 12,
         "survivor's handoffs_failed", 0, 0},
        {offsetof(drain_tally_t, resumed), 999, "moved sessions resumed", 1000,
         0},
        {offsetof(drain_tally_t, restored), 1001,
         "survivor's handoffs_restored, of the moved", 1000, 0},
        {offsetof(drain_tally_t, exited), 0,
         "drained instance exited with status 0", 1, 0},
    };
    drain_fault_t f[DRAIN_CHECKS];
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        drain_tally_t t = clean();

        memcpy((char *)&t + cases[i].off, &cases[i].value, sizeof(uint64_t));
        assert_int_equal(drain_verdict(&t, f, DRAIN_CHECKS), 1);
        assert_string_equal(f[0].what, cases[i].what);
        assert_int_equal(f[0].value, cases[i].value);
        assert_int_equal(f[0].want, cases[i].want);
        assert_int_equal(f[0].at_least, cases[i].at_least);
    }
}

static void test_verdict_moves(void **state)
{
    drain_fault_t f[DRAIN_CHECKS];
    drain_tally_t t = clean();
    (void)state;

    /* Fewer closed 4011 than the instance held: the missing ones count
     * against the move, not against the resumes of those that moved. */
    t.moved = t.resumed = t.restored = 990;
    assert_int_equal(drain_verdict(&t, f, DRAIN_CHECKS), 1);
    assert_string_equal(f[0].what, "sessions moved (closed 4011), of those");
    assert_int_equal(f[0].value, 990);
    assert_int_equal(f[0].want, 1000);
    /* Nothing on the drained instance: nothing was measured. */
    memset(&t, 0, sizeof(t));
    t.exited = 1;
    assert_int_equal(drain_verdict(&t, f, DRAIN_CHECKS), 1);
    assert_string_equal(f[0].what, "sessions on the drained instance");
    assert_int_equal(f[0].want, 1);
    assert_int_equal(f[0].at_least, 1);
}

static void test_verdict_many(void **state)
{
    drain_fault_t f[3];
    drain_tally_t t;
    (void)state;

    /* Everything wrong: every check fails; only cap are written, in the
     * fixed order. */
    memset(&t, 0xff, sizeof(t));
    t.on_drained = 0;
    t.moved = 5;
    t.exited = 7;
    assert_int_equal(drain_verdict(&t, f, 3), DRAIN_CHECKS);
    assert_string_equal(f[0].what, "sessions on the drained instance");
    assert_string_equal(f[1].what, "sessions moved (closed 4011), of those");
    assert_string_equal(f[2].what, "moved sessions resumed");
    assert_int_equal(drain_verdict(&t, NULL, 0), DRAIN_CHECKS);
}

/* ---- a session's accounting across a move ----------------------------- */

/* The session of guild 2 of 4: its events are n = 2, 6, 10, ..., its
 * guild's counter n / 4. Three come from the drained instance (seq 1-3),
 * two in the survivor's replay with their original seq (4, 5), then live
 * ones numbered on (6, 7). */
#define G 2
#define GUILDS 4

static unsigned feed(resume_track_t *t, uint64_t seq, uint64_t k)
{
    return resume_track_dispatch(t, seq, k * GUILDS + G, G, 0, GUILDS);
}

static void test_move_clean(void **state)
{
    uint64_t record[40];
    resume_track_t t;
    (void)state;

    for (size_t n = 0; n < 40; n++)
        record[n] = 1000 + n;
    resume_track_init(&t, 10);
    resume_track_begin(&t, 999);
    for (uint64_t k = 0; k < 7; k++)
        assert_int_equal(feed(&t, k + 1, k), 0);
    /* All 7 of the 28 published: none lost. */
    assert_int_equal(
        resume_track_missing(&t, record, 28, G, 0, GUILDS, 999, UINT64_MAX), 0);
    /* Two more published, not received. */
    assert_int_equal(
        resume_track_missing(&t, record, 36, G, 0, GUILDS, 999, UINT64_MAX), 2);
    resume_track_free(&t);
}

static void test_move_faults(void **state)
{
    uint64_t record[40];
    resume_track_t t;
    (void)state;

    for (size_t n = 0; n < 40; n++)
        record[n] = 1000 + n;
    resume_track_init(&t, 10);
    resume_track_begin(&t, 999);
    for (uint64_t k = 0; k < 3; k++)
        assert_int_equal(feed(&t, k + 1, k), 0);
    /* The replay starts one too early: seq 3 and event #2 again. */
    assert_int_equal(feed(&t, 3, 2), RESUME_REPEAT | RESUME_DUP);
    assert_int_equal(feed(&t, 4, 3), 0);
    /* A held dispatch the snapshot also had, not dropped: numbered on
     * after the replay, so its seq is fine and the event twice. */
    assert_int_equal(feed(&t, 5, 3), RESUME_DUP);
    /* Event #4 was in neither the snapshot nor the held ones: #5 comes
     * next, seq in order, and #4 is lost at the tally. */
    assert_int_equal(feed(&t, 6, 5), 0);
    assert_int_equal(
        resume_track_missing(&t, record, 24, G, 0, GUILDS, 999, UINT64_MAX), 1);
    /* A held one that the snapshot lacked comes after a later event. */
    assert_int_equal(feed(&t, 7, 4), RESUME_DISORDER);
    assert_int_equal(
        resume_track_missing(&t, record, 24, G, 0, GUILDS, 999, UINT64_MAX), 0);
    /* The replay skipped a seq. */
    assert_int_equal(feed(&t, 9, 6), RESUME_GAP);
    /* Another guild's event on this session. */
    assert_int_equal(resume_track_dispatch(&t, 10, 29, G, 0, GUILDS),
                     RESUME_FOREIGN);
    resume_track_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_pick),
        cmocka_unit_test(test_expected),
        cmocka_unit_test(test_stats_parse),
        cmocka_unit_test(test_verdict_clean),
        cmocka_unit_test(test_verdict_each),
        cmocka_unit_test(test_verdict_moves),
        cmocka_unit_test(test_verdict_many),
        cmocka_unit_test(test_move_clean),
        cmocka_unit_test(test_move_faults),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
