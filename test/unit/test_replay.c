/* The replay log and buffers: order, bounds, growth, positions that left
 * the log, and every reference given back. */
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

static void test_empty_buffer_is_null(void **state)
{
    (void)state;
    assert_int_equal(gw_replay_count(NULL), 0);
    gw_replay_free(NULL);
}

/* An event's recipients share one entry; each new body is one more. */
static void test_log_adds_each_body_once(void **state)
{
    gw_replay_log_t l;
    (void)state;

    gw_replay_log_init(&l);
    assert_int_equal(gw_replay_log_add(&l, frames[0], 1 << 20), 0);
    assert_int_equal(gw_replay_log_add(&l, frames[0], 1 << 20), 0);
    assert_int_equal(gw_replay_log_add(&l, frames[1], 1 << 20), 1);
    assert_int_equal(atomic_load(&frames[0]->refs), 2);
    assert_ptr_equal(gw_replay_log_get(&l, 0), frames[0]);
    assert_ptr_equal(gw_replay_log_get(&l, 1), frames[1]);
    assert_null(gw_replay_log_get(&l, 2)); /* not yet */
    gw_replay_log_free(&l);
}

/* A copy of this body from another instance: the same identity and
 * bytes in another frame. */
static gw_frame_t *copy_of(const gw_frame_t *f, uint64_t id)
{
    gw_frame_t *c = gw_frame_new(f->len);

    memcpy(c->data, f->data, f->len);
    c->id = id;
    return c;
}

/* Restored sessions' copies of one event share its first entry; a body
 * with other bytes, no identity, or whose entry left, is appended. */
static void test_log_interns_copies(void **state)
{
    gw_replay_log_t l;
    gw_frame_t *a, *b, *other, *anon;
    (void)state;

    gw_replay_log_init(&l);
    frames[0]->id = 7;
    a = copy_of(frames[0], 7);
    b = copy_of(frames[0], 7);
    other = copy_of(frames[1], 7); /* same identity, other bytes */
    anon = copy_of(frames[0], 0);
    assert_int_equal(gw_replay_log_intern(&l, a, 1 << 20), 0);
    assert_int_equal(gw_replay_log_intern(&l, b, 1 << 20), 0);
    assert_int_equal(atomic_load(&b->refs), 1); /* not taken */
    assert_int_equal(gw_replay_log_intern(&l, other, 1 << 20), 1);
    assert_int_equal(gw_replay_log_intern(&l, anon, 1 << 20), 2);
    assert_int_equal(gw_replay_log_intern(&l, anon, 1 << 20), 3);
    /* The first entry leaves: its copy is appended anew. */
    assert_int_equal(gw_replay_log_intern(&l, b, l.bytes - a->len), 4);
    assert_null(gw_replay_log_get(&l, 0));
    gw_replay_log_free(&l);
    frames[0]->id = 0;
    gw_frame_unref(a);
    gw_frame_unref(b);
    gw_frame_unref(other);
    gw_frame_unref(anon);
}

/* Past its bytes the log drops the oldest; their positions read NULL. */
static void test_log_byte_bound(void **state)
{
    gw_replay_log_t l;
    (void)state;

    gw_replay_log_init(&l);
    /* Bodies of 10..14 bytes: 45 bytes hold the last three (39). */
    for (int i = 0; i < 5; i++)
        assert_int_equal(gw_replay_log_add(&l, frames[i], 45), (uint64_t)i);
    assert_null(gw_replay_log_get(&l, 0));
    assert_null(gw_replay_log_get(&l, 1));
    for (uint32_t i = 2; i < 5; i++)
        assert_ptr_equal(gw_replay_log_get(&l, i), frames[i]);
    assert_int_equal(l.bytes, 12 + 13 + 14);
    /* A body larger than the bound stays, alone. */
    gw_replay_log_add(&l, frames[39], 20);
    assert_null(gw_replay_log_get(&l, 4));
    assert_ptr_equal(gw_replay_log_get(&l, 5), frames[39]);
    gw_replay_log_free(&l);
}

/* The log grows past its first ring and keeps positions right. */
static void test_log_grows(void **state)
{
    gw_replay_log_t l;
    (void)state;

    gw_replay_log_init(&l);
    for (uint32_t i = 0; i < 3000; i++)
        gw_replay_log_add(&l, frames[i % 2 ? 1 : 2], UINT64_MAX);
    assert_true(l.cap >= 4096);
    for (uint32_t i = 0; i < 3000; i++)
        assert_ptr_equal(gw_replay_log_get(&l, i), frames[i % 2 ? 1 : 2]);
    gw_replay_log_free(&l);
}

static void test_buffer_grows_and_bounds(void **state)
{
    gw_replay_t *r = NULL;
    int dropped = 0;
    (void)state;

    for (uint32_t i = 0; i < 9; i++)
        assert_int_equal(gw_replay_push(&r, 100 + i, 16), 0);
    assert_int_equal(gw_replay_count(r), 9);
    assert_int_equal(r->cap, 16);
    for (uint32_t i = 9; i < 30; i++)
        dropped += gw_replay_push(&r, 100 + i, 16);
    assert_int_equal(dropped, 14);
    assert_int_equal(gw_replay_count(r), 16);
    for (uint32_t i = 0; i < 16; i++)
        assert_int_equal(gw_replay_get(r, i), 114 + i);
    gw_replay_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_buffer_is_null, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_adds_each_body_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_byte_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_interns_copies, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_grows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffer_grows_and_bounds, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
