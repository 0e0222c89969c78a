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

#include <fcntl.h>
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

/* An implementation with state of its own (as TLS has a session), which
 * moves with the socket unless `refuse` says it cannot now. */
typedef struct st_impl {
    gw_transport_state_t state; /* first: what travels */
    int refuse;
} st_impl_t;

static struct {
    int adopted, freed, closes_with_impl;
} st;

static int st_detach(gw_transport_t *t, gw_transport_state_t **state)
{
    st_impl_t *impl = t->impl;

    if (impl->refuse)
        return GW_EAGAIN;
    *state = &impl->state;
    t->impl = NULL;
    return 0;
}

static void st_adopt(gw_transport_t *t, gw_transport_state_t *state)
{
    st.adopted++;
    t->impl = state;
}

static void st_free_state(gw_transport_state_t *state)
{
    st.freed++;
    free(state);
}

static void st_close(gw_transport_t *t)
{
    if (t->impl == NULL)
        return;
    st.closes_with_impl++;
    st_free_state(t->impl);
    t->impl = NULL;
}

static const gw_transport_ops_t st_ops = {.read = cap_read,
                                          .writev = cap_writev,
                                          .shutdown = cap_shutdown,
                                          .close = st_close,
                                          .detach = st_detach,
                                          .adopt = st_adopt,
                                          .free_state = st_free_state};

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

/* The fixture's transport made stateful. */
static st_impl_t *st_install(fx_t *f, int refuse)
{
    st_impl_t *impl = calloc(1, sizeof(*impl));

    memset(&st, 0, sizeof(st));
    impl->state.ops = &st_ops;
    impl->refuse = refuse;
    f->t.ops = &st_ops;
    f->t.impl = impl;
    return impl;
}

/* Plain TCP has no state: the socket goes alone, open, and the transport
 * closes behind it without closing it. */
static void test_detach_without_state(void **state)
{
    fx_t *f = *state;
    gw_transport_state_t *moving = (gw_transport_state_t *)1;
    int fd = -1, sock = f->t.fd;

    assert_int_equal(gw_transport_detach(&f->t, &fd, &moving), 0);
    assert_int_equal(fd, sock);
    assert_null(moving);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(io.closed, 1);
    assert_int_equal(write(fd, "x", 1), 1); /* still open: the caller's */
    close(fd);
}

/* Output not yet written keeps the socket here, and everything as it was. */
static void test_detach_with_output_queued(void **state)
{
    fx_t *f = *state;
    gw_transport_state_t *moving;
    int fd = -1;

    push(f, "ab");
    assert_int_equal(gw_transport_detach(&f->t, &fd, &moving), GW_EAGAIN);
    assert_int_equal(fd, -1);
    assert_false(f->t.closed);
}

/* An implementation that cannot give its state up keeps the socket. */
static void test_detach_refused_by_the_implementation(void **state)
{
    fx_t *f = *state;
    st_impl_t *impl = st_install(f, 1);
    gw_transport_state_t *moving;
    int fd = -1;

    assert_int_equal(gw_transport_detach(&f->t, &fd, &moving), GW_EAGAIN);
    assert_int_equal(fd, -1);
    assert_null(moving);
    assert_false(f->t.closed);
    assert_ptr_equal(f->t.impl, impl);
    /* The teardown's close frees it, as any close does. */
}

/* The state leaves with the socket, is freed by neither loop's close,
 * and the adopting transport carries it until its own close. */
static void test_state_moves_with_the_socket(void **state)
{
    fx_t *f = *state;
    st_impl_t *impl = st_install(f, 0);
    gw_transport_state_t *moving = NULL;
    gw_transport_loop_t l2;
    gw_transport_t t2;
    int fd = -1;

    assert_int_equal(gw_transport_detach(&f->t, &fd, &moving), 0);
    assert_ptr_equal(moving, &impl->state);
    assert_null(f->t.impl);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(io.closed, 1);
    assert_int_equal(st.closes_with_impl + st.freed, 0);

    gw_transport_loop_init(&l2, &f->loop, &cb, &f->stats, 4);
    assert_int_equal(gw_transport_adopt(&t2, &l2, fd, moving), 0);
    assert_int_equal(st.adopted, 1);
    assert_ptr_equal(t2.impl, impl);
    assert_ptr_equal(t2.ops, &st_ops);
    gw_transport_close(&t2);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(io.closed, 2);
    assert_int_equal(st.closes_with_impl, 1);
    gw_transport_loop_free(&l2);
    io.closed = 1; /* the teardown expects the fixture's close alone */
}

/* A socket the loop cannot watch is closed, its state freed with it. */
static void test_adopt_failure_frees_the_state(void **state)
{
    fx_t *f = *state;
    st_impl_t *impl = calloc(1, sizeof(*impl));
    gw_transport_t t2;
    int fd = open("/dev/null", O_RDONLY); /* epoll refuses it */

    memset(&st, 0, sizeof(st));
    impl->state.ops = &st_ops;
    assert_true(fd >= 0);
    assert_true(gw_transport_adopt(&t2, &f->l, fd, &impl->state) < 0);
    assert_int_equal(st.freed, 1);
    assert_int_equal(st.adopted, 0);
    assert_int_equal(fcntl(fd, F_GETFD), -1); /* closed */
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
        T(test_detach_without_state),
        T(test_detach_with_output_queued),
        T(test_detach_refused_by_the_implementation),
        T(test_state_moves_with_the_socket),
        T(test_adopt_failure_frees_the_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
