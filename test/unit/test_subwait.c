/* The subscription window: answers held until their targets are confirmed,
 * counted +1s, a target left while pending, the bound, cancellation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw/subwait.h"

#define WAIT 1000

/* What the callback was told, as "id:text[+text2][!]" items (! = late). */
typedef struct fixture {
    gw_subwait_t *sw;
    char told[4096];
    int calls;
} fixture_t;

static void told_cb(void *data, const gw_subwait_answer_t *a, int late)
{
    fixture_t *f = data;
    size_t len = strlen(f->told);

    snprintf(f->told + len, sizeof(f->told) - len, "%s%d:%s%s%s%s",
             len ? " " : "", a->session[0], a->text[0], a->text[1] ? "+" : "",
             a->text[1] ? a->text[1] : "", late ? "!" : "");
    f->calls++;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    f->sw = gw_subwait_new(WAIT, told_cb, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    gw_subwait_free(f->sw);
    free(f);
    return 0;
}

static void forget(fixture_t *f)
{
    f->told[0] = '\0';
    f->calls = 0;
}

/* Holds text for session `who` on the targets "g:a u:b ..." (kinds by
 * letter): whether it was held. */
static int hold(fixture_t *f, int who, const char *text, const char *text2,
                const char *targets, uint64_t now)
{
    gw_interest_target_t t[8];
    char buf[512], *save = NULL;
    size_t n = 0;
    gw_subwait_answer_t a = {{0}, {text, text2}, {strlen(text), 0}};

    a.session[0] = (uint8_t)who;
    if (text2 != NULL)
        a.len[1] = strlen(text2);
    snprintf(buf, sizeof(buf), "%s", targets);
    for (char *tok = strtok_r(buf, " ", &save); tok != NULL && n < 8;
         tok = strtok_r(NULL, " ", &save)) {
        gw_interest_kind_t k = tok[0] == 'g'   ? GW_INTEREST_GUILD
                               : tok[0] == 'u' ? GW_INTEREST_USER
                                               : GW_INTEREST_SESSION;
        t[n++] = (gw_interest_target_t){k, strdup(tok + 2)};
    }
    int held = gw_subwait_hold(f->sw, &a, t, n, now);
    for (size_t i = 0; i < n; i++)
        free((char *)t[i].id);
    return held;
}

/* Nothing pending: nothing is held, and a look-up is not even made. */
static void test_idle_holds_nothing(void **state)
{
    fixture_t *f = *state;

    assert_true(gw_subwait_idle(f->sw));
    assert_false(hold(f, 1, "identified", NULL, "g:a u:b", 0));
    gw_subwait_asked(f->sw, GW_INTEREST_GUILD, "a");
    assert_false(gw_subwait_idle(f->sw));
    /* Another guild, confirmed: not held either. */
    assert_false(hold(f, 1, "identified", NULL, "g:known u:b", 0));
    assert_int_equal(gw_subwait_held(f->sw), 0);
    assert_int_equal(f->calls, 0);
}

/* An answer waits for every pending target of it, and goes with the
 * last confirmation; its two messages go together, in order. */
static void test_held_until_every_target_confirmed(void **state)
{
    fixture_t *f = *state;

    gw_subwait_asked(f->sw, GW_INTEREST_GUILD, "a");
    gw_subwait_asked(f->sw, GW_INTEREST_USER, "b");
    assert_true(gw_subwait_pending(f->sw, GW_INTEREST_GUILD, "a"));
    assert_false(gw_subwait_pending(f->sw, GW_INTEREST_USER, "a"));
    assert_true(hold(f, 1, "identified", "limit", "g:a g:c u:b", 10));
    assert_true(hold(f, 2, "subscribed", NULL, "g:a", 20));
    assert_int_equal(gw_subwait_held(f->sw), 2);

    gw_subwait_confirmed(f->sw, GW_INTEREST_USER, "b");
    assert_int_equal(f->calls, 0);
    gw_subwait_confirmed(f->sw, GW_INTEREST_GUILD, "a");
    assert_string_equal(f->told, "1:identified+limit 2:subscribed");
    assert_int_equal(gw_subwait_held(f->sw), 0);
    assert_true(gw_subwait_idle(f->sw));
    /* A word for a target no longer pending changes nothing. */
    gw_subwait_confirmed(f->sw, GW_INTEREST_GUILD, "a");
    assert_int_equal(f->calls, 2);
}

/* Left and joined again before the broker answered: the target is
 * confirmed by the answer to the second +1, not the first. */
static void test_every_ask_is_answered(void **state)
{
    fixture_t *f = *state;

    gw_subwait_asked(f->sw, GW_INTEREST_GUILD, "a");
    gw_subwait_released(f->sw, GW_INTEREST_GUILD, "a");
    assert_false(gw_subwait_pending(f->sw, GW_INTEREST_GUILD, "a"));
    gw_subwait_asked(f->sw, GW_INTEREST_GUILD, "a");
    assert_true(hold(f, 1, "subscribed", NULL, "g:a", 0));
    gw_subwait_confirmed(f->sw, GW_INTEREST_GUILD, "a");
    assert_int_equal(f->calls, 0);
    assert_true(gw_subwait_pending(f->sw, GW_INTEREST_GUILD, "a"));
    gw_subwait_confirmed(f->sw, GW_INTEREST_GUILD, "a");
    assert_string_equal(f->told, "1:subscribed");
    assert_true(gw_subwait_idle(f->sw));
}

/* The last session of a target left: what waited for it alone goes (its
 * session is no longer in it), what waits for more waits on. */
static void test_released_lets_go(void **state)
{
    fixture_t *f = *state;

    gw_subwait_asked(f->sw, GW_INTEREST_GUILD, "a");
    gw_subwait_asked(f->sw, GW_INTEREST_GUILD, "b");
    assert_true(hold(f, 1, "one", NULL, "g:a", 0));
    assert_true(hold(f, 2, "two", NULL, "g:a g:b", 0));
    gw_subwait_released(f->sw, GW_INTEREST_GUILD, "a");
    assert_string_equal(f->told, "1:one");
    assert_false(hold(f, 3, "three", NULL, "g:a", 0));
    gw_subwait_confirmed(f->sw, GW_INTEREST_GUILD, "b");
    assert_string_equal(f->told, "1:one 2:two");
    /* The answer to a's +1 still comes, and empties the table. */
    assert_false(gw_subwait_idle(f->sw));
    gw_subwait_confirmed(f->sw, GW_INTEREST_GUILD, "a");
    assert_true(gw_subwait_idle(f->sw));
}

/* The bound: an answer is told late WAIT after it was held, its targets
 * are taken as confirmed, and whoever waited for them alone goes too. */
static void test_the_bound(void **state)
{
    fixture_t *f = *state;

    gw_subwait_asked(f->sw, GW_INTEREST_GUILD, "a");
    gw_subwait_asked(f->sw, GW_INTEREST_GUILD, "b");
    assert_true(hold(f, 1, "one", NULL, "g:a", 100));
    assert_true(hold(f, 2, "two", NULL, "g:a g:b", 200));
    assert_true(hold(f, 3, "three", NULL, "g:b", 300));
    assert_int_equal(gw_subwait_expire(f->sw, 100 + WAIT - 1), 0);
    assert_int_equal(f->calls, 0);
    assert_int_equal(gw_subwait_expire(f->sw, 100 + WAIT), 1);
    /* a given up: two waits for b still. */
    assert_string_equal(f->told, "1:one!");
    assert_false(gw_subwait_pending(f->sw, GW_INTEREST_GUILD, "a"));
    assert_false(hold(f, 4, "four", NULL, "g:a", 150 + WAIT));
    forget(f);
    assert_int_equal(gw_subwait_expire(f->sw, 200 + WAIT), 1);
    assert_string_equal(f->told, "2:two! 3:three");
    assert_int_equal(gw_subwait_held(f->sw), 0);
    assert_true(gw_subwait_idle(f->sw));
    /* Late words for the given-up targets are ignored. */
    gw_subwait_confirmed(f->sw, GW_INTEREST_GUILD, "a");
    gw_subwait_confirmed(f->sw, GW_INTEREST_GUILD, "b");
    assert_int_equal(f->calls, 2);
}

/* A session gone while waiting: its answers are dropped untold, and the
 * others' stay. */
static void test_cancel(void **state)
{
    fixture_t *f = *state;
    uint8_t who[GW_SUBWAIT_ID_LEN] = {7};

    gw_subwait_asked(f->sw, GW_INTEREST_GUILD, "a");
    assert_true(hold(f, 7, "seven", NULL, "g:a", 0));
    assert_true(hold(f, 7, "again", NULL, "g:a", 0));
    assert_true(hold(f, 8, "eight", NULL, "g:a", 0));
    gw_subwait_cancel(f->sw, who);
    assert_int_equal(gw_subwait_held(f->sw), 1);
    gw_subwait_confirmed(f->sw, GW_INTEREST_GUILD, "a");
    assert_string_equal(f->told, "8:eight");
    assert_int_equal(gw_subwait_expire(f->sw, 10 * WAIT), 0);
}

/* An id longer than the look-up's stack buffer. */
static void test_long_id(void **state)
{
    fixture_t *f = *state;
    char id[300], target[310];

    memset(id, 'x', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    snprintf(target, sizeof(target), "g:%s", id);
    gw_subwait_asked(f->sw, GW_INTEREST_GUILD, id);
    assert_true(gw_subwait_pending(f->sw, GW_INTEREST_GUILD, id));
    assert_true(hold(f, 1, "long", NULL, target, 0));
    gw_subwait_confirmed(f->sw, GW_INTEREST_GUILD, id);
    assert_string_equal(f->told, "1:long");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idle_holds_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_held_until_every_target_confirmed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_ask_is_answered, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_released_lets_go, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_id, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
