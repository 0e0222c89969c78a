/* The queue of binding operations: order, cancelling pairs, answers taken
 * oldest first, and a refusal that sends again what came after it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw/amqp_bindq.h"

#define B GW_AMQP_OP_BIND
#define U GW_AMQP_OP_UNBIND
#define D GW_AMQP_OP_DELETE

static void push(gw_amqp_bindq_t *q, gw_amqp_op_kind_t kind, const char *name)
{
    gw_amqp_bindq_push(q, GW_AMQP_LANE_NOW, kind, name, strlen(name));
}

/* The same in the rebuild's lane. */
static void rebuild(gw_amqp_bindq_t *q, gw_amqp_op_kind_t kind,
                    const char *name)
{
    gw_amqp_bindq_push(q, GW_AMQP_LANE_REBUILD, kind, name, strlen(name));
}

/* Sends up to n operations and returns them as "+a -b !x" text. */
static const char *send(gw_amqp_bindq_t *q, size_t n)
{
    static char text[1024];
    static const char sign[] = "+-!";
    const gw_amqp_op_t *op;

    text[0] = '\0';
    while (n-- > 0 && (op = gw_amqp_bindq_send(q)) != NULL) {
        size_t len = strlen(text);
        assert_int_equal(op->len, strlen(op->name));
        snprintf(text + len, sizeof(text) - len, "%s%c%s", len ? " " : "",
                 sign[op->kind], op->name);
    }
    return text;
}

static void answer(gw_amqp_bindq_t *q, gw_amqp_op_kind_t kind, const char *name)
{
    gw_amqp_op_t *op = gw_amqp_bindq_answered(q);

    assert_non_null(op);
    assert_int_equal(op->kind, kind);
    assert_string_equal(op->name, name);
    free(op);
}

static void test_in_order(void **state)
{
    gw_amqp_bindq_t *q = gw_amqp_bindq_new();
    (void)state;

    push(q, B, "a");
    push(q, B, "b");
    push(q, U, "c");
    push(q, D, "x");
    assert_int_equal(gw_amqp_bindq_unsent(q), 4);
    assert_string_equal(send(q, 2), "+a +b");
    assert_int_equal(gw_amqp_bindq_unsent(q), 2);
    assert_int_equal(gw_amqp_bindq_in_flight(q), 2);
    answer(q, B, "a");
    assert_string_equal(send(q, 10), "-c !x");
    answer(q, B, "b");
    answer(q, U, "c");
    answer(q, D, "x");
    assert_null(gw_amqp_bindq_answered(q));
    assert_null(gw_amqp_bindq_send(q));
    assert_int_equal(gw_amqp_bindq_in_flight(q), 0);
    gw_amqp_bindq_free(q);
}

static void test_unsent_pairs_cancel(void **state)
{
    gw_amqp_bindq_t *q = gw_amqp_bindq_new();
    (void)state;

    /* A target that came and went before anything was sent costs
     * nothing; one that went and came back neither. */
    push(q, B, "a");
    push(q, B, "b");
    push(q, U, "a");
    push(q, U, "c");
    push(q, B, "c");
    assert_int_equal(gw_amqp_bindq_unsent(q), 1);
    /* A third time on "a": wanted again, after "b". */
    push(q, B, "a");
    assert_string_equal(send(q, 10), "+b +a");
    /* Sent ones are not taken back: the unbind goes after them. */
    push(q, U, "a");
    push(q, D, "x");
    push(q, B, "a");
    push(q, D, "x");
    assert_string_equal(send(q, 10), "!x !x");
    gw_amqp_bindq_free(q);
}

static void test_one_kind_twice(void **state)
{
    gw_amqp_bindq_t *q = gw_amqp_bindq_new();
    (void)state;

    /* Not what the owner asks, but harmless: one of them stays. */
    push(q, B, "a");
    push(q, B, "a");
    assert_string_equal(send(q, 10), "+a");
    gw_amqp_bindq_free(q);
}

static void test_refused_sends_the_rest_again(void **state)
{
    gw_amqp_bindq_t *q = gw_amqp_bindq_new();
    gw_amqp_op_t *op;
    (void)state;

    push(q, B, "a");
    push(q, B, "b");
    push(q, B, "c");
    push(q, D, "x");
    push(q, B, "d");
    assert_string_equal(send(q, 4), "+a +b +c !x");
    answer(q, B, "a");
    /* "b" refused: RabbitMQ discarded "c" and the delete; they go in
     * front of "d", in their order. */
    op = gw_amqp_bindq_refused(q);
    assert_int_equal(op->kind, B);
    assert_string_equal(op->name, "b");
    free(op);
    assert_int_equal(gw_amqp_bindq_in_flight(q), 0);
    assert_int_equal(gw_amqp_bindq_unsent(q), 3);
    assert_string_equal(send(q, 10), "+c !x +d");
    gw_amqp_bindq_free(q);
}

static void test_refused_meets_unsent(void **state)
{
    gw_amqp_bindq_t *q = gw_amqp_bindq_new();
    gw_amqp_op_t *op;
    (void)state;

    push(q, B, "r");
    push(q, B, "a");
    push(q, U, "b");
    push(q, B, "c");
    assert_string_equal(send(q, 4), "+r +a -b +c");
    /* Asked while those were in flight. */
    push(q, U, "a");
    push(q, B, "b");
    push(q, U, "c");
    push(q, B, "c");
    push(q, B, "e");
    /* "r" refused: nothing after it happened, so "a" bound then unbound
     * is nothing, "b" unbound then bound is nothing, and "c" stands. */
    op = gw_amqp_bindq_refused(q);
    assert_string_equal(op->name, "r");
    free(op);
    assert_string_equal(send(q, 10), "+c +e");
    gw_amqp_bindq_free(q);
}

static void test_refused_alternation_in_flight(void **state)
{
    gw_amqp_bindq_t *q = gw_amqp_bindq_new();
    gw_amqp_op_t *op;
    (void)state;

    /* Several turns of one pattern in flight at once: an even number
     * after the refusal is nothing, an odd number its first. */
    push(q, B, "r");
    assert_string_equal(send(q, 1), "+r");
    push(q, B, "a");
    assert_string_equal(send(q, 1), "+a");
    push(q, U, "a");
    assert_string_equal(send(q, 1), "-a");
    push(q, B, "a");
    assert_string_equal(send(q, 1), "+a");
    push(q, B, "z");
    assert_string_equal(send(q, 1), "+z");
    push(q, U, "z");
    assert_string_equal(send(q, 1), "-z");
    op = gw_amqp_bindq_refused(q);
    free(op);
    assert_string_equal(send(q, 10), "+a");
    gw_amqp_bindq_free(q);
}

static void test_changes_go_ahead_of_a_rebuild(void **state)
{
    gw_amqp_bindq_t *q = gw_amqp_bindq_new();
    gw_amqp_op_t *op;
    (void)state;

    /* A new connection's rebuild, its delete last. */
    rebuild(q, B, "a");
    rebuild(q, B, "b");
    rebuild(q, B, "c");
    rebuild(q, D, "old");
    assert_string_equal(send(q, 1), "+a");
    /* A session arrives, another leaves: their changes go first; "b",
     * still unsent, is undone by its unbind. */
    push(q, B, "n");
    push(q, U, "b");
    assert_int_equal(gw_amqp_bindq_unsent(q), 3);
    assert_string_equal(send(q, 2), "+n +c");
    /* "n" refused: "c", sent after it, goes again ahead of what waits. */
    answer(q, B, "a");
    op = gw_amqp_bindq_refused(q);
    assert_string_equal(op->name, "n");
    free(op);
    push(q, B, "m");
    assert_string_equal(send(q, 10), "+c +m !old");
    gw_amqp_bindq_free(q);
}

static void test_free_with_everything_in_it(void **state)
{
    gw_amqp_bindq_t *q = gw_amqp_bindq_new();
    char name[32];
    (void)state;

    /* Enough to make the set grow; freed with ops in both lists. */
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "guild.%d.#", i);
        push(q, B, name);
    }
    assert_int_equal(strlen(send(q, 3)), strlen("+guild.0.# +guild.1.# "
                                                "+guild.2.#"));
    assert_int_equal(gw_amqp_bindq_unsent(q), 497);
    gw_amqp_bindq_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_unsent_pairs_cancel),
        cmocka_unit_test(test_one_kind_twice),
        cmocka_unit_test(test_refused_sends_the_rest_again),
        cmocka_unit_test(test_refused_meets_unsent),
        cmocka_unit_test(test_refused_alternation_in_flight),
        cmocka_unit_test(test_changes_go_ahead_of_a_rebuild),
        cmocka_unit_test(test_free_with_everything_in_it),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
