/* The SPSC queue and the wake-up behind it: FIFO order, a real handoff
 * between two threads, and several producers waking one consumer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/error.h"
#include "gw/queue.h"
#include "gw/wake.h"

#define HANDOFF_COUNT 200000
#define PRODUCERS 3

typedef struct handoff {
    uv_loop_t loop;
    gw_wake_t wake;
    gw_queue_t q[PRODUCERS];
    int producers;
    uintptr_t next[PRODUCERS]; /* last value the consumer took, per queue */
    int in_order;
} handoff_t;

typedef struct producer {
    handoff_t *t;
    gw_queue_t *q;
} producer_t;

/* Drains every queue; closes the wake-up once every value arrived, which
 * ends uv_run. A lost wake-up leaves the loop waiting, and the test hangs
 * until the runner's timeout fails it. */
static void consumer_cb(gw_wake_t *wk)
{
    handoff_t *t = wk->data;
    int done = 0;
    void *p;

    for (int i = 0; i < t->producers; i++) {
        while ((p = gw_queue_pop(&t->q[i])) != NULL) {
            if ((uintptr_t)p != t->next[i] + 1)
                t->in_order = 0;
            t->next[i] = (uintptr_t)p;
        }
        done += t->next[i] == HANDOFF_COUNT;
    }
    if (done == t->producers)
        gw_wake_close(wk, NULL);
}

/* Producer thread: pushes 1..N, spinning while the queue is full. */
static void producer_main(void *arg)
{
    producer_t *pr = arg;

    for (uintptr_t i = 1; i <= HANDOFF_COUNT; i++)
        while (gw_queue_push(pr->q, (void *)i) != 0)
            uv_sleep(0);
}

static void test_fifo_and_full(void **state)
{
    uv_loop_t loop;
    gw_wake_t wake;
    gw_queue_t q;
    (void)state;

    uv_loop_init(&loop);
    assert_int_equal(gw_wake_init(&loop, &wake, NULL, NULL), 0);
    gw_queue_init(&q, 8, &wake);
    for (uintptr_t i = 1; i <= 8; i++)
        assert_int_equal(gw_queue_push(&q, (void *)i), 0);
    assert_int_equal(gw_queue_push(&q, (void *)9), GW_EFULL);
    assert_int_equal(gw_queue_depth(&q), 8);
    assert_int_equal(gw_queue_room(&q), 0);
    for (uintptr_t i = 1; i <= 8; i++)
        assert_ptr_equal(gw_queue_pop(&q), (void *)i);
    assert_null(gw_queue_pop(&q));
    gw_queue_free(&q);
    gw_wake_close(&wake, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    gw_wake_free(&wake);
}

static void handoff_run(int producers)
{
    handoff_t t = {.in_order = 1, .producers = producers};
    producer_t pr[PRODUCERS];
    uv_thread_t th[PRODUCERS];

    uv_loop_init(&t.loop);
    assert_int_equal(gw_wake_init(&t.loop, &t.wake, consumer_cb, &t), 0);
    for (int i = 0; i < producers; i++) {
        gw_queue_init(&t.q[i], 1024, &t.wake);
        pr[i] = (producer_t){&t, &t.q[i]};
    }
    for (int i = 0; i < producers; i++)
        assert_int_equal(uv_thread_create(&th[i], producer_main, &pr[i]), 0);
    uv_run(&t.loop, UV_RUN_DEFAULT); /* returns once every value arrived */
    for (int i = 0; i < producers; i++) {
        uv_thread_join(&th[i]);
        assert_int_equal(t.next[i], HANDOFF_COUNT);
        gw_queue_free(&t.q[i]);
    }
    assert_true(t.in_order);
    uv_loop_close(&t.loop);
    gw_wake_free(&t.wake);
}

static void test_thread_handoff(void **state)
{
    (void)state;
    handoff_run(1);
}

/* Workers share the broker's one wake-up for their relay queues. */
static void test_producers_share_a_wake(void **state)
{
    (void)state;
    handoff_run(PRODUCERS);
}

/* Signals before the consumer runs fold into one callback. */
static void count_cb(gw_wake_t *wk)
{
    int *calls = wk->data;

    (*calls)++;
    gw_wake_close(wk, NULL);
}

static void test_signals_fold(void **state)
{
    uv_loop_t loop;
    gw_wake_t wake;
    int calls = 0;
    (void)state;

    uv_loop_init(&loop);
    assert_int_equal(gw_wake_init(&loop, &wake, count_cb, &calls), 0);
    for (int i = 0; i < 100; i++)
        gw_wake_signal(&wake);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(calls, 1);
    uv_loop_close(&loop);
    gw_wake_free(&wake);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_full),
        cmocka_unit_test(test_thread_handoff),
        cmocka_unit_test(test_producers_share_a_wake),
        cmocka_unit_test(test_signals_fold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
