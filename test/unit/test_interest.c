/* The interest table: counts across workers, the linger, one batch per
 * flush, the wanted set after a reconnect, and its gauges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw/interest.h"

#define LINGER 1000

/* What the hook was told: calls, and each batch as "g:id u:id ..." text. */
typedef struct heard {
    int calls;
    char on[4096], off[4096];
    char answered[4096]; /* "worker:g:id ..." */
} heard_t;

typedef struct fixture {
    gw_stats_t stats;
    heard_t heard;
    gw_interest_t *in;
} fixture_t;

static void append(char *out, size_t size, const gw_interest_target_t *t,
                   size_t n)
{
    static const char letter[] = "gus";

    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%c:%s", len ? " " : "",
                 letter[t[i].kind], t[i].id);
    }
}

static void changed(void *data, const gw_interest_target_t *on, size_t non,
                    const gw_interest_target_t *off, size_t noff)
{
    heard_t *h = data;

    assert_true(non + noff > 0);
    h->calls++;
    append(h->on, sizeof(h->on), on, non);
    append(h->off, sizeof(h->off), off, noff);
}

static void answered(void *data, unsigned worker, const gw_interest_target_t *t)
{
    heard_t *h = data;
    size_t len = strlen(h->answered);

    snprintf(h->answered + len, sizeof(h->answered) - len, "%s%u:%c:%s",
             len ? " " : "", worker, "gus"[t->kind], t -> id);
}

#define REDIS GW_INTEREST_VIA_REDIS
#define AMQP GW_INTEREST_VIA_AMQP
#define HOOKS(h) (&(gw_interest_hooks_t){changed, answered, (h)})

/* Whether the batch text holds the target `item`, and how many it holds. */
static int has(const char *batch, const char *item)
{
    char padded[4200], want[64];

    snprintf(padded, sizeof(padded), " %s ", batch);
    snprintf(want, sizeof(want), " %s ", item);
    return strstr(padded, want) != NULL;
}

static int count(const char *batch)
{
    int n = batch[0] != '\0';

    for (const char *p = batch; *p != '\0'; p++)
        n += *p == ' ';
    return n;
}

static void forget(heard_t *h)
{
    *h = (heard_t){0};
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    f->in = gw_interest_new(LINGER, &f->stats, HOOKS(&f->heard));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    gw_interest_free(f->in);
    free(f);
    return 0;
}

static uint64_t gauge(fixture_t *f, gw_stat_t k)
{
    return gw_stat_get(&f->stats, k);
}

/* The second worker's first session and the first worker's last change
 * nothing; the last worker's last starts the linger, whose end is off. */
static void test_counted_across_workers(void **state)
{
    fixture_t *f = *state;

    gw_interest_add(f->in, GW_INTEREST_GUILD, "g1", 1, 0);
    gw_interest_add(f->in, GW_INTEREST_GUILD, "g1", 1, 0);
    assert_int_equal(gw_interest_flush(f->in, 0), UINT64_MAX);
    assert_int_equal(f->heard.calls, 1);
    assert_string_equal(f->heard.on, "g:g1");
    assert_int_equal(gauge(f, GW_STAT_INTEREST_TARGETS), 1);

    forget(&f->heard);
    gw_interest_add(f->in, GW_INTEREST_GUILD, "g1", -1, 10);
    assert_int_equal(gw_interest_flush(f->in, 10), UINT64_MAX);
    gw_interest_add(f->in, GW_INTEREST_GUILD, "g1", -1, 20);
    assert_int_equal(gw_interest_flush(f->in, 20), 20 + LINGER);
    assert_int_equal(f->heard.calls, 0);
    assert_int_equal(gauge(f, GW_STAT_INTEREST_LINGERING), 1);
    assert_int_equal(gw_interest_flush(f->in, 20 + LINGER - 1), 20 + LINGER);
    assert_int_equal(f->heard.calls, 0);
    assert_int_equal(gw_interest_flush(f->in, 20 + LINGER), UINT64_MAX);
    assert_int_equal(f->heard.calls, 1);
    assert_string_equal(f->heard.on, "");
    assert_string_equal(f->heard.off, "g:g1");
    assert_int_equal(gauge(f, GW_STAT_INTEREST_TARGETS), 0);
    assert_int_equal(gauge(f, GW_STAT_INTEREST_LINGERING), 0);
}

/* A user back inside the linger costs nothing, and its next linger starts
 * from its next leave. */
static void test_back_inside_the_linger(void **state)
{
    fixture_t *f = *state;

    gw_interest_add(f->in, GW_INTEREST_USER, "u1", 1, 0);
    gw_interest_flush(f->in, 0);
    forget(&f->heard);
    gw_interest_add(f->in, GW_INTEREST_USER, "u1", -1, 100);
    assert_int_equal(gw_interest_flush(f->in, 100), 100 + LINGER);
    gw_interest_add(f->in, GW_INTEREST_USER, "u1", 1, 600);
    assert_int_equal(gw_interest_flush(f->in, 600), UINT64_MAX);
    assert_int_equal(gauge(f, GW_STAT_INTEREST_LINGERING), 0);
    gw_interest_add(f->in, GW_INTEREST_USER, "u1", -1, 900);
    assert_int_equal(gw_interest_flush(f->in, 100 + LINGER), 900 + LINGER);
    assert_int_equal(f->heard.calls, 0);
    gw_interest_flush(f->in, 900 + LINGER);
    assert_string_equal(f->heard.off, "u:u1");
}

/* Lingers end in order, each at its own time. */
static void test_lingers_end_in_order(void **state)
{
    fixture_t *f = *state;

    gw_interest_add(f->in, GW_INTEREST_GUILD, "a", 1, 0);
    gw_interest_add(f->in, GW_INTEREST_GUILD, "b", 1, 0);
    gw_interest_add(f->in, GW_INTEREST_GUILD, "c", 1, 0);
    gw_interest_flush(f->in, 0);
    gw_interest_add(f->in, GW_INTEREST_GUILD, "a", -1, 10);
    gw_interest_add(f->in, GW_INTEREST_GUILD, "b", -1, 20);
    gw_interest_add(f->in, GW_INTEREST_GUILD, "c", -1, 30);
    /* b comes back: a and c still end when they should. */
    gw_interest_add(f->in, GW_INTEREST_GUILD, "b", 1, 40);
    assert_int_equal(gw_interest_flush(f->in, 40), 10 + LINGER);
    forget(&f->heard);
    assert_int_equal(gw_interest_flush(f->in, 10 + LINGER), 30 + LINGER);
    assert_string_equal(f->heard.off, "g:a");
    assert_int_equal(gw_interest_flush(f->in, 30 + LINGER), UINT64_MAX);
    assert_string_equal(f->heard.off, "g:a g:c");
    assert_int_equal(gauge(f, GW_STAT_INTEREST_TARGETS), 1);
}

/* A session's id never comes back: its channel goes at the next flush. */
static void test_sessions_do_not_linger(void **state)
{
    fixture_t *f = *state;
    const char *sid = "0001000000a1b2c3d4e5f60718293a4b";

    gw_interest_add(f->in, GW_INTEREST_SESSION, sid, 1, 0);
    gw_interest_flush(f->in, 0);
    assert_string_equal(f->heard.on, "s:0001000000a1b2c3d4e5f60718293a4b");
    forget(&f->heard);
    gw_interest_add(f->in, GW_INTEREST_SESSION, sid, -1, 5);
    assert_int_equal(gw_interest_flush(f->in, 5), UINT64_MAX);
    assert_string_equal(f->heard.off, "s:0001000000a1b2c3d4e5f60718293a4b");
}

/* A session joining 50 guilds is one batch; a target that came and went
 * between two flushes is never heard of. */
static void test_one_batch_per_flush(void **state)
{
    fixture_t *f = *state;
    char id[16];

    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof(id), "g%d", i);
        gw_interest_add(f->in, GW_INTEREST_GUILD, id, 1, 0);
    }
    gw_interest_add(f->in, GW_INTEREST_USER, "u", 1, 0);
    gw_interest_add(f->in, GW_INTEREST_USER, "gone", 1, 0);
    gw_interest_add(f->in, GW_INTEREST_USER, "gone", -1, 0);
    gw_interest_flush(f->in, 0);
    assert_int_equal(f->heard.calls, 1);
    assert_int_equal(count(f->heard.on), 51);
    assert_true(has(f->heard.on, "g:g0"));
    assert_true(has(f->heard.on, "g:g49"));
    assert_true(has(f->heard.on, "u:u"));
    assert_false(has(f->heard.on, "u:gone"));
    assert_int_equal(gauge(f, GW_STAT_INTEREST_TARGETS), 51);
    /* Nothing changed since: no call. */
    gw_interest_flush(f->in, 1);
    assert_int_equal(f->heard.calls, 1);
}

/* Kinds are apart: a guild and a user of the same id are two targets. */
static void test_kinds_are_apart(void **state)
{
    fixture_t *f = *state;

    gw_interest_add(f->in, GW_INTEREST_GUILD, "x", 1, 0);
    gw_interest_add(f->in, GW_INTEREST_USER, "x", 1, 0);
    gw_interest_add(f->in, GW_INTEREST_USER, "x", -1, 0);
    gw_interest_flush(f->in, 0);
    assert_string_equal(f->heard.on, "g:x");
}

/* A -1 for what no worker holds changes nothing. */
static void test_unknown_leave_ignored(void **state)
{
    fixture_t *f = *state;

    gw_interest_add(f->in, GW_INTEREST_GUILD, "never", -1, 0);
    gw_interest_add(f->in, GW_INTEREST_GUILD, "g", 1, 0);
    gw_interest_add(f->in, GW_INTEREST_GUILD, "g", -1, 0);
    gw_interest_add(f->in, GW_INTEREST_GUILD, "g", -1, 0);
    gw_interest_add(f->in, GW_INTEREST_GUILD, "g", 1, 0);
    gw_interest_flush(f->in, 0);
    assert_int_equal(f->heard.calls, 1);
    assert_string_equal(f->heard.on, "g:g");
    assert_string_equal(f->heard.off, "");
}

static void collect(void *data, const gw_interest_target_t *t)
{
    append(data, 4096, t, 1);
}

/* After a reconnect the owner walks what it was told is wanted, lingering
 * targets included, and not what it has not heard of yet. */
static void test_each_walks_the_told(void **state)
{
    fixture_t *f = *state;
    char all[4096] = "";

    gw_interest_add(f->in, GW_INTEREST_GUILD, "kept", 1, 0);
    gw_interest_add(f->in, GW_INTEREST_USER, "lingers", 1, 0);
    gw_interest_flush(f->in, 0);
    gw_interest_add(f->in, GW_INTEREST_USER, "lingers", -1, 1);
    gw_interest_add(f->in, GW_INTEREST_USER, "unheard", 1, 1);
    gw_interest_each(f->in, collect, all);
    assert_int_equal(count(all), 2);
    assert_true(has(all, "g:kept"));
    assert_true(has(all, "u:lingers"));
}

/* With no linger, the last leave is off at the next flush. */
static void test_no_linger(void **state)
{
    fixture_t *f = *state;

    gw_interest_free(f->in);
    f->in = gw_interest_new(0, &f->stats, HOOKS(&f->heard));
    gw_interest_add(f->in, GW_INTEREST_GUILD, "g", 1, 0);
    gw_interest_flush(f->in, 0);
    gw_interest_add(f->in, GW_INTEREST_GUILD, "g", -1, 1);
    assert_int_equal(gw_interest_flush(f->in, 1), UINT64_MAX);
    assert_int_equal(f->heard.calls, 2);
    assert_string_equal(f->heard.off, "g:g");
}

/* The subscription window: a worker waiting for a channel not confirmed
 * yet is answered at its confirmation, one waiting for a confirmed one at
 * once, and every wait once. */
static void test_await_confirm(void **state)
{
    fixture_t *f = *state;

    gw_interest_add(f->in, GW_INTEREST_GUILD, "g1", 1, 0);
    gw_interest_await(f->in, GW_INTEREST_GUILD, "g1", 3, REDIS);
    gw_interest_add(f->in, GW_INTEREST_GUILD, "g1", 1, 0);
    gw_interest_await(f->in, GW_INTEREST_GUILD, "g1", 4, REDIS);
    /* Not told yet: a confirmation of an earlier life of it is no word. */
    gw_interest_confirm(f->in, GW_INTEREST_GUILD, "g1", 2, REDIS);
    assert_string_equal(f->heard.answered, "");
    gw_interest_flush(f->in, 0);
    gw_interest_confirm(f->in, GW_INTEREST_GUILD, "g1x", 2, REDIS);
    assert_string_equal(f->heard.answered, "3:g:g1 4:g:g1");
    gw_interest_confirm(f->in, GW_INTEREST_GUILD, "g1", 2, REDIS);
    assert_string_equal(f->heard.answered, "3:g:g1 4:g:g1");
    gw_interest_await(f->in, GW_INTEREST_GUILD, "g1", 5, REDIS);
    assert_string_equal(f->heard.answered, "3:g:g1 4:g:g1 5:g:g1");

    /* A target unknown here is answered at once. */
    forget(&f->heard);
    gw_interest_await(f->in, GW_INTEREST_USER, "nobody", 1, REDIS);
    assert_string_equal(f->heard.answered, "1:u:nobody");
}

/* Waiting for both links: answered once the second has confirmed; a
 * later wait for one of them alone, at once. */
static void test_await_two_links(void **state)
{
    fixture_t *f = *state;

    gw_interest_add(f->in, GW_INTEREST_USER, "u1", 1, 0);
    gw_interest_await(f->in, GW_INTEREST_USER, "u1", 1, REDIS | AMQP);
    gw_interest_flush(f->in, 0);
    gw_interest_confirm(f->in, GW_INTEREST_USER, "u1", 2, AMQP);
    assert_string_equal(f->heard.answered, "");
    gw_interest_confirm(f->in, GW_INTEREST_USER, "u1", 2, REDIS);
    assert_string_equal(f->heard.answered, "1:u:u1");
    gw_interest_await(f->in, GW_INTEREST_USER, "u1", 2, AMQP);
    assert_string_equal(f->heard.answered, "1:u:u1 2:u:u1");
}

/* A target dropped while a worker waits: the worker is answered. */
static void test_dropped_answers_waiters(void **state)
{
    fixture_t *f = *state;

    gw_interest_add(f->in, GW_INTEREST_SESSION, "s1", 1, 0);
    gw_interest_await(f->in, GW_INTEREST_SESSION, "s1", 2, REDIS);
    gw_interest_flush(f->in, 0);
    gw_interest_add(f->in, GW_INTEREST_SESSION, "s1", -1, 1);
    assert_string_equal(f->heard.answered, "");
    gw_interest_flush(f->in, 1);
    assert_string_equal(f->heard.answered, "2:s:s1");
    assert_string_equal(f->heard.off, "s:s1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counted_across_workers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_back_inside_the_linger, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lingers_end_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sessions_do_not_linger, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_one_batch_per_flush, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kinds_are_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_leave_ignored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_each_walks_the_told, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_linger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_await_confirm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_await_two_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropped_answers_waiters, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
