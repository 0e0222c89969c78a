/*
 * The transport alone: its write ring under a consumer that reads slowly
 * or not at all, partial writes resumed once the socket is writable, and
 * the close reported last. The socket is one end of a socket pair, so the
 * writable poll is real; writes go to a capturing writev.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/error.h"
#include "gw/transport.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct {
    char out[4096];
    size_t len;
    size_t accept; /* bytes the next writev calls take, in all */
    int writes, drained, closed;
} io;

static ssize_t cap_read(gw_transport_t *t, uint8_t *buf, size_t len)
{
    (void)t;
    (void)buf;
    (void)len;
    return GW_EAGAIN;
}

static ssize_t cap_writev(gw_transport_t *t, const struct iovec *iov,
                          unsigned n)
{
    size_t took = 0;
    (void)t;

    io.writes++;
    for (unsigned i = 0; i < n && io.accept > 0; i++) {
        size_t k = iov[i].iov_len < io.accept ? iov[i].iov_len : io.accept;
        memcpy(io.out + io.len, iov[i].iov_base, k);
        io.len += k;
        io.accept -= k;
        took += k;
    }
    return (ssize_t)took;
}

static int cap_shutdown(gw_transport_t *t)
{
    (void)t;
    return 0;
}

static const gw_transport_ops_t cap_ops = {
    .read = cap_read, .writev = cap_writev, .shutdown = cap_shutdown};

static void on_data(gw_transport_t *t, const uint8_t *buf, size_t len)
{
    (void)t;
    (void)buf;
    (void)len;
}

static void on_drained(gw_transport_t *t)
{
    (void)t;
    io.drained++;
}

static void on_close(gw_transport_t *t)
{
    (void)t;
    io.closed++;
}

static const gw_transport_cb_t cb = {on_data, on_drained, on_close};

typedef struct fx {
    uv_loop_t loop;
    gw_transport_loop_t l;
    gw_stats_t stats;
    gw_transport_t t;
    int peer;
} fx_t;

static int fx_setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    int sv[2];

    memset(&io, 0, sizeof(io));
    uv_loop_init(&f->loop);
    gw_transport_loop_init(&f->l, &f->loop, &cb, &f->stats, 4);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    f->peer = sv[1];
    assert_int_equal(gw_transport_init(&f->t, &f->l, sv[0], &cap_ops), 0);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *f = *state;

    gw_transport_close(&f->t);
    gw_transport_close(&f->t); /* harmless twice */
    gw_transport_loop_flush(&f->l);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(io.closed, 1);
    assert_int_equal(f->stats.v[GW_STAT_CONNECTIONS], 0);
    gw_transport_loop_free(&f->l);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    close(f->peer);
    free(f);
    return 0;
}

static void push(fx_t *f, const char *s)
{
    gw_transport_push_copy(&f->t, s, strlen(s));
}

/* Output waits for the flush, goes out in one gathered write, in order. */
static void test_one_write_per_flush(void **state)
{
    fx_t *f = *state;

    io.accept = SIZE_MAX;
    push(f, "ab");
    push(f, "cd");
    push(f, "ef");
    assert_int_equal(io.writes, 0);
    gw_transport_loop_flush(&f->l);
    assert_int_equal(io.writes, 1);
    assert_int_equal(io.len, 6);
    assert_memory_equal(io.out, "abcdef", 6);
    assert_int_equal(io.drained, 0); /* nobody asked */
    gw_transport_notify_drained(&f->t);
    push(f, "gh");
    gw_transport_loop_flush(&f->l);
    assert_int_equal(io.drained, 1);
    assert_int_equal(f->stats.v[GW_STAT_BYTES_OUT], 8);
}

/* A partial write stops at the byte the socket took, and the rest goes
 * out when the socket says it is writable again. */
static void test_partial_write_resumes_when_writable(void **state)
{
    fx_t *f = *state;

    gw_transport_notify_drained(&f->t);
    io.accept = 3;
    push(f, "abcd");
    push(f, "efgh");
    gw_transport_loop_flush(&f->l);
    assert_int_equal(io.len, 3);
    assert_int_equal(io.drained, 0);
    push(f, "ij");
    gw_transport_loop_flush(&f->l); /* still waiting: no write */
    assert_int_equal(io.writes, 1);
    io.accept = SIZE_MAX;
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the pair is writable */
    assert_int_equal(io.len, 10);
    assert_memory_equal(io.out, "abcdefghij", 10);
    assert_int_equal(io.drained, 1);
}

/* Shedding below the limit, then the slow-consumer verdict once the ring
 * stays at its limit; the half-written frame at the front is kept. */
static void test_slow_consumer_shedding(void **state)
{
    fx_t *f = *state;
    unsigned dropped;
    int i;

    io.accept = 1; /* one byte, then the socket is full */
    for (i = 0; i < 4; i++) {
        assert_int_equal(gw_transport_admit(&f->t, 4, 8, &dropped), 0);
        push(f, "xy");
    }
    /* Half the ring is the room for a low priority: shed from here on. */
    for (i = 0; i < 7; i++)
        assert_int_equal(gw_transport_admit(&f->t, 4, 8, &dropped), GW_EAGAIN);
    assert_int_equal(io.len, 1); /* the flush it tried wrote one byte */
    /* Critical messages fill the rest of the ring, then meet the limit. */
    for (i = 0; i < 4; i++) {
        assert_int_equal(gw_transport_admit(&f->t, 8, 8, &dropped), 0);
        push(f, "zz");
    }
    assert_int_equal(gw_transport_admit(&f->t, 8, 8, &dropped), GW_EFULL);
    assert_int_equal(dropped, 7); /* all but the half-written first */
    assert_int_equal(f->t.ring.count, 1);
}

/* A ring's worth of shed frames is a slow consumer too. */
static void test_shedding_a_ring_worth_closes(void **state)
{
    fx_t *f = *state;
    unsigned dropped;

    for (int i = 0; i < 4; i++)
        push(f, "xy");
    for (int i = 0; i < 7; i++)
        assert_int_equal(gw_transport_admit(&f->t, 4, 8, &dropped), GW_EAGAIN);
    assert_int_equal(gw_transport_admit(&f->t, 4, 8, &dropped), GW_EFULL);
    assert_int_equal(dropped, 4);
}

/* A close while queued for a flush is reported by the flush, once. */
static void test_close_while_queued(void **state)
{
    fx_t *f = *state;

    push(f, "ab");
    gw_transport_close(&f->t);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(io.closed, 0);
    gw_transport_loop_flush(&f->l);
    assert_int_equal(io.closed, 1);
    assert_int_equal(io.writes, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_one_write_per_flush),
        T(test_partial_write_resumes_when_writable),
        T(test_slow_consumer_shedding),
        T(test_shedding_a_ring_worth_closes),
        T(test_close_while_queued),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
