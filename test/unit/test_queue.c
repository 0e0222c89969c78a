/* The SPSC queue: FIFO order and a real handoff between two threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/error.h"
#include "gw/queue.h"

#define HANDOFF_COUNT 200000

typedef struct handoff {
    uv_loop_t loop;
    uv_async_t wake;
    gw_queue_t q;
    uintptr_t next; /* next value expected by the consumer */
    int in_order;
} handoff_t;

static void consumer_cb(uv_async_t *h)
{
    handoff_t *t = h->data;
    void *p;

    while ((p = gw_queue_pop(&t->q)) != NULL) {
        if ((uintptr_t)p != t->next + 1)
            t->in_order = 0;
        t->next = (uintptr_t)p;
    }
    if (t->next == HANDOFF_COUNT)
        uv_close((uv_handle_t *)&t->wake, NULL);
}

/* Producer thread: pushes 1..N, spinning while the queue is full. */
static void producer_main(void *arg)
{
    handoff_t *t = arg;

    for (uintptr_t i = 1; i <= HANDOFF_COUNT; i++)
        while (gw_queue_push(&t->q, (void *)i) != 0)
            uv_sleep(0);
}

static void test_fifo_and_full(void **state)
{
    uv_loop_t loop;
    uv_async_t wake;
    gw_queue_t q;
    (void)state;

    uv_loop_init(&loop);
    uv_async_init(&loop, &wake, NULL);
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
    uv_close((uv_handle_t *)&wake, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

static void test_thread_handoff(void **state)
{
    handoff_t t = {.in_order = 1};
    uv_thread_t producer;
    (void)state;

    uv_loop_init(&t.loop);
    uv_async_init(&t.loop, &t.wake, consumer_cb);
    t.wake.data = &t;
    gw_queue_init(&t.q, 1024, &t.wake);
    assert_int_equal(uv_thread_create(&producer, producer_main, &t), 0);
    uv_run(&t.loop, UV_RUN_DEFAULT); /* returns once every value arrived */
    uv_thread_join(&producer);
    assert_int_equal(t.next, HANDOFF_COUNT);
    assert_true(t.in_order);
    gw_queue_free(&t.q);
    uv_loop_close(&t.loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_full),
        cmocka_unit_test(test_thread_handoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
