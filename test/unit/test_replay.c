/* The replay buffer: order, both bounds, growth, and every reference
 * given back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/replay.h"

#include <stdio.h>
#include <string.h>

#define NFRAMES 40

static gw_frame_t *frames[NFRAMES];

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < NFRAMES; i++) {
        frames[i] = gw_frame_new(10 + (size_t)i);
        snprintf(frames[i]->data, frames[i]->len, "f%d", i);
    }
    return 0;
}

/* Every frame is back to the test's one reference. */
static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NFRAMES; i++) {
        assert_int_equal(atomic_load(&frames[i]->refs), 1);
        gw_frame_unref(frames[i]);
    }
    return 0;
}

static void expect_held(const gw_replay_t *r, int first, int n)
{
    uint64_t bytes = 0;

    assert_int_equal(gw_replay_count(r), n);
    for (int i = 0; i < n; i++) {
        assert_ptr_equal(gw_replay_get(r, (uint32_t)i), frames[first + i]);
        assert_int_equal(atomic_load(&frames[first + i]->refs), 2);
        bytes += frames[first + i]->len;
    }
    assert_true(r == NULL || r->bytes == bytes);
}

static void test_empty_is_null(void **state)
{
    (void)state;
    assert_int_equal(gw_replay_count(NULL), 0);
    gw_replay_free(NULL);
}

static void test_grows_in_order(void **state)
{
    gw_replay_t *r = NULL;
    (void)state;

    for (int i = 0; i < 9; i++)
        assert_int_equal(gw_replay_push(&r, frames[i], 100, 1 << 20), 0);
    expect_held(r, 0, 9);
    assert_int_equal(r->cap, 16);
    gw_replay_free(r);
}

static void test_count_bound_drops_the_oldest(void **state)
{
    gw_replay_t *r = NULL;
    uint32_t dropped = 0;
    (void)state;

    for (int i = 0; i < 30; i++)
        dropped += gw_replay_push(&r, frames[i], 8, 1 << 20);
    assert_int_equal(dropped, 22);
    expect_held(r, 22, 8);
    assert_int_equal(r->cap, 8); /* wrapped, never grown past the bound */
    for (int i = 0; i < 8; i++)
        assert_int_not_equal(atomic_load(&frames[i]->refs), 2);
    gw_replay_free(r);
}

static void test_byte_bound_keeps_the_newest(void **state)
{
    gw_replay_t *r = NULL;
    (void)state;

    /* Frames of 10..49 bytes: of 10 + 11 + 12 + 13 + 14, 45 bytes hold
     * the last three (39; with 11, 50). */
    for (int i = 0; i < 5; i++)
        gw_replay_push(&r, frames[i], 100, 45);
    expect_held(r, 2, 3);
    /* One body larger than the bound: it stays, alone. */
    assert_int_equal(gw_replay_push(&r, frames[39], 100, 20), 3);
    expect_held(r, 39, 1);
    gw_replay_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_is_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grows_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_count_bound_drops_the_oldest,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_byte_bound_keeps_the_newest, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
