/*
 * The transport alone: its write ring under a consumer that reads slowly
 * or not at all, partial writes resumed once the socket is writable, and
 * the close reported last; a PROXY protocol header read before anything
 * else, in pieces, and the client's address it names kept and moved with
 * the socket. The socket is one end of a socket pair, so the polls are
 * real; writes go to a capturing writev.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/error.h"
#include "gw/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static struct {
    char out[4096];
    size_t len;
    size_t accept; /* bytes the next writev calls take, in all */
    int writes, drained, closed;
    char in[256]; /* what on_data was given */
    size_t in_len;
    int peers; /* on_peer calls */
    /* Transports on_data closes the others of, and the last it read. */
    gw_transport_t *closes_others[2], *read_from;
    int writables; /* ops->writable calls */
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

/* Reads the socket as it is, as plain TCP does. */
static ssize_t sock_read(gw_transport_t *t, uint8_t *buf, size_t len)
{
    ssize_t n = read(t->fd, buf, len);

    return n >= 0 ? n : GW_EAGAIN;
}

static int cap_shutdown(gw_transport_t *t)
{
    (void)t;
    return 0;
}

/* Output of its own (as TLS's handshake): counts the calls. */
static void count_writable(gw_transport_t *t)
{
    (void)t;
    io.writables++;
}

static const gw_transport_ops_t writable_ops = {.read = cap_read,
                                                .writev = cap_writev,
                                                .shutdown = cap_shutdown,
                                                .writable = count_writable};
static const gw_transport_ops_t cap_ops = {
    .read = cap_read, .writev = cap_writev, .shutdown = cap_shutdown};
static const gw_transport_ops_t sock_ops = {
    .read = sock_read, .writev = cap_writev, .shutdown = cap_shutdown};

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
    for (int i = 0; i < 2; i++)
        if (io.closes_others[i] != NULL && io.closes_others[i] != t)
            gw_transport_close(io.closes_others[i]);
    io.read_from = t;
    assert_true(io.in_len + len <= sizeof(io.in));
    memcpy(io.in + io.in_len, buf, len);
    io.in_len += len;
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

static void on_peer(gw_transport_t *t)
{
    struct sockaddr_storage ss;

    /* Known when told, and before any input. */
    assert_int_equal(gw_transport_peer(t, &ss), 0);
    assert_int_equal(io.in_len, 0);
    io.peers++;
}

static const gw_transport_cb_t cb = {on_data, on_drained, on_close, on_peer};

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
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0); /* as accepted */
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
    gw_transport_loop_stop(&f->l);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    gw_transport_loop_free(&f->l);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    close(f->peer);
    free(f);
    return 0;
}

/* One turn of the loop, then the flush, as the worker runs them. */
static void turn(fx_t *f)
{
    uv_run(&f->loop, UV_RUN_NOWAIT);
    gw_transport_loop_flush(&f->l);
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
    turn(f);
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
    turn(f);
    assert_int_equal(io.closed, 1);
    assert_int_equal(st.closes_with_impl + st.freed, 0);

    gw_transport_loop_init(&l2, &f->loop, &cb, &f->stats, 4);
    assert_int_equal(gw_transport_adopt(&t2, &l2, fd, moving), 0);
    assert_int_equal(st.adopted, 1);
    assert_ptr_equal(t2.impl, impl);
    assert_ptr_equal(t2.ops, &st_ops);
    gw_transport_close(&t2);
    gw_transport_loop_flush(&l2);
    assert_int_equal(io.closed, 2);
    assert_int_equal(st.closes_with_impl, 1);
    gw_transport_loop_stop(&l2);
    uv_run(&f->loop, UV_RUN_NOWAIT);
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

/* ---- the loop's epoll set ---- */

/* Two sockets readable in the same batch of events, the first read
 * closing the other: the other is neither read nor released before the
 * flush (ASan: its memory, freed then, is not touched meanwhile). */
static void test_close_while_its_event_is_in_the_batch(void **state)
{
    fx_t *f = *state;
    gw_transport_t *t2 = malloc(sizeof(*t2));
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(gw_transport_init(t2, &f->l, sv[0], &sock_ops), 0);
    f->t.ops = &sock_ops;
    io.closes_others[0] = &f->t;
    io.closes_others[1] = t2;
    assert_int_equal(write(f->peer, "a", 1), 1);
    assert_int_equal(write(sv[1], "b", 1), 1);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(io.in_len, 1); /* one read, and the other closed */
    assert_true(io.read_from == t2 ? f->t.closed : t2->closed);
    assert_int_equal(io.closed, 0);
    gw_transport_loop_flush(&f->l);
    assert_int_equal(io.closed, 1);
    io.closes_others[0] = io.closes_others[1] = NULL;
    gw_transport_close(&f->t); /* one of them for the second time */
    gw_transport_close(t2);
    gw_transport_loop_flush(&f->l);
    assert_int_equal(io.closed, 2);
    free(t2);
    io.closed = 1; /* the teardown expects the fixture's close alone */
    close(sv[1]);
}

/* Fills the socket's send buffer: it is not writable any more. */
static void fill(int fd)
{
    static const char junk[4096];

    while (write(fd, junk, sizeof(junk)) > 0)
        ;
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Takes what the peer end holds. */
static void drain_peer(fx_t *f)
{
    char buf[4096];

    while (recv(f->peer, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
}

/* An implementation waiting for room hears of it once, when the peer has
 * read: the set watches for writability only while it waits. */
static void test_wait_writable_watches_for_room_once(void **state)
{
    fx_t *f = *state;
    struct epoll_event ev;

    f->t.ops = &writable_ops;
    fill(f->t.fd);
    gw_transport_wait_writable(&f->t);
    turn(f);
    assert_int_equal(io.writables, 0);
    assert_true(f->t.blocked);
    drain_peer(f);
    assert_int_equal(epoll_wait(f->l.epfd, &ev, 1, 0), 1);
    assert_int_equal(ev.events, EPOLLOUT);
    turn(f);
    assert_int_equal(io.writables, 1);
    assert_false(f->t.blocked);
    /* Writable still, and no input: the set has nothing to say. */
    assert_int_equal(epoll_wait(f->l.epfd, &ev, 1, 0), 0);
    turn(f);
    assert_int_equal(io.writables, 1);
}

/* A detached socket leaves this loop's set at once (it stays open, and
 * would stay in the set): the adopting loop alone hears of its input. */
static void test_detach_leaves_the_epoll_set(void **state)
{
    fx_t *f = *state;
    gw_transport_state_t *moving = NULL;
    struct epoll_event ev = {.events = EPOLLIN};
    gw_transport_loop_t l2;
    gw_transport_t t2;
    int fd = -1;

    assert_int_equal(gw_transport_detach(&f->t, &fd, &moving), 0);
    assert_int_equal(epoll_ctl(f->l.epfd, EPOLL_CTL_MOD, fd, &ev), -1);
    assert_int_equal(errno, ENOENT);
    turn(f);
    assert_int_equal(io.closed, 1);

    gw_transport_loop_init(&l2, &f->loop, &cb, &f->stats, 4);
    assert_int_equal(gw_transport_init(&t2, &l2, fd, &sock_ops), 0);
    assert_int_equal(write(f->peer, "hi", 2), 2);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_ptr_equal(io.read_from, &t2);
    assert_int_equal(io.in_len, 2);
    gw_transport_close(&t2);
    gw_transport_loop_stop(&l2);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    gw_transport_loop_free(&l2);
    io.closed = 1; /* the teardown expects the fixture's close alone */
}

/* ---- the PROXY protocol header ---- */

/* The fixture's transport reads its socket, and expects a header. */
static void proxied(fx_t *f)
{
    f->t.ops = &sock_ops;
    gw_transport_expect_proxy(&f->t);
}

/* The peer end writes, and the loop reads what it can. */
static void peer_writes(fx_t *f, const void *buf, size_t len)
{
    assert_int_equal(write(f->peer, buf, len), (ssize_t)len);
    turn(f);
}

/* A version 2 header of TCP over IPv4 from 203.0.113.7:4242. */
static size_t v2_header(uint8_t *out)
{
    static const uint8_t h[28] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a,
                                  0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11,
                                  0x00, 0x0c, 203,  0,    113,  7,    192,
                                  0,    2,    1,    0x10, 0x92, 0x01, 0xbb};

    memcpy(out, h, sizeof(h));
    return sizeof(h);
}

static void assert_peer_ipv4(const gw_transport_t *t, const char *ip,
                             uint16_t port)
{
    struct sockaddr_storage ss;
    const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
    char text[INET_ADDRSTRLEN];

    assert_int_equal(gw_transport_peer(t, &ss), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    assert_string_equal(text, ip);
    assert_int_equal(ntohs(in->sin_port), port);
}

/* A header written a few bytes at a time, then the first bytes of the
 * relayed connection with its last piece: the address is not known until
 * the header is whole, and the owner sees only what follows it. */
static void test_proxy_header_in_pieces(void **state)
{
    fx_t *f = *state;
    struct sockaddr_storage ss;
    uint8_t buf[64];
    size_t n = v2_header(buf), at;

    proxied(f);
    memcpy(buf + n, "GET", 3);
    for (at = 0; at + 5 < n; at += 5) {
        peer_writes(f, buf + at, 5);
        assert_int_equal(gw_transport_peer(&f->t, &ss), GW_EAGAIN);
    }
    assert_int_equal(io.peers + (int)io.in_len, 0);
    peer_writes(f, buf + at, n - at + 3);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(io.peers, 1);
    assert_peer_ipv4(&f->t, "203.0.113.7", 4242);
    assert_int_equal(io.in_len, 3);
    assert_memory_equal(io.in, "GET", 3);
    assert_false(f->t.closed);
    assert_int_equal(f->stats.v[GW_STAT_PROXY_HEADER_FAILURES], 0);
}

/* A version 1 line and the request in one write. */
static void test_proxy_v1_and_data_at_once(void **state)
{
    static const char in[] =
        "PROXY TCP6 2001:db8::7 2001:db8::1 65000 443\r\nhello";
    fx_t *f = *state;
    struct sockaddr_storage ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    char text[INET6_ADDRSTRLEN];

    proxied(f);
    peer_writes(f, in, sizeof(in) - 1);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(io.peers, 1);
    assert_int_equal(gw_transport_peer(&f->t, &ss), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    assert_string_equal(text, "2001:db8::7");
    assert_int_equal(ntohs(in6->sin6_port), 65000);
    assert_int_equal(io.in_len, 5);
    assert_memory_equal(io.in, "hello", 5);
}

/* LOCAL (the proxy's health check) keeps the socket's own peer. */
static void test_proxy_local_keeps_the_socket_peer(void **state)
{
    static const uint8_t local[16] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                      0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
                                      0x20, 0x00, 0x00, 0x00};
    fx_t *f = *state;
    struct sockaddr_storage ss;

    proxied(f);
    peer_writes(f, local, sizeof(local));
    assert_int_equal(io.peers, 1);
    assert_int_equal(gw_transport_peer(&f->t, &ss), 0);
    assert_int_equal(ss.ss_family, AF_UNIX); /* the socket pair's */
    assert_null(f->t.proxy);
}

/* Another protocol in the header's place closes the transport, counted,
 * and nothing reaches the owner; an end of stream before a whole header
 * closes it too, but is no malformed header. */
static void test_proxy_malformed_or_cut_short(void **state)
{
    fx_t *f = *state;

    proxied(f);
    peer_writes(f, "GET / HTTP/1.1\r\n", 16);
    turn(f);
    assert_true(f->t.closed);
    assert_int_equal(io.closed, 1);
    assert_int_equal(io.peers + (int)io.in_len, 0);
    assert_int_equal(f->stats.v[GW_STAT_PROXY_HEADER_FAILURES], 1);
}

static void test_proxy_end_of_stream(void **state)
{
    fx_t *f = *state;

    proxied(f);
    peer_writes(f, "PROXY TCP4 203.0.113.7", 22);
    assert_false(f->t.closed);
    shutdown(f->peer, SHUT_WR);
    turn(f);
    turn(f);
    assert_true(f->t.closed);
    assert_int_equal(io.peers, 0);
    assert_int_equal(f->stats.v[GW_STAT_PROXY_HEADER_FAILURES], 0);
}

/* The client's address goes with a plain socket to another loop (in a
 * bare state), and the adopting transport answers with it. */
static void test_proxy_address_moves_with_the_socket(void **state)
{
    fx_t *f = *state;
    gw_transport_state_t *moving = NULL;
    gw_transport_loop_t l2;
    gw_transport_t t2;
    uint8_t buf[64];
    int fd = -1;

    proxied(f);
    peer_writes(f, buf, v2_header(buf));
    assert_int_equal(gw_transport_detach(&f->t, &fd, &moving), 0);
    assert_non_null(moving);
    assert_ptr_equal(moving->ops, &sock_ops);
    assert_null(f->t.proxy);
    turn(f);

    gw_transport_loop_init(&l2, &f->loop, &cb, &f->stats, 4);
    assert_int_equal(gw_transport_adopt(&t2, &l2, fd, moving), 0);
    assert_peer_ipv4(&t2, "203.0.113.7", 4242);
    gw_transport_close(&t2);
    gw_transport_loop_stop(&l2); /* releases t2 */
    uv_run(&f->loop, UV_RUN_NOWAIT);
    gw_transport_loop_free(&l2);
    io.closed = 1; /* the teardown expects the fixture's close alone */
}

/* A state in transit that no loop adopts is freed with its address. */
static void test_proxy_address_freed_in_transit(void **state)
{
    fx_t *f = *state;
    gw_transport_state_t *moving = NULL;
    uint8_t buf[64];
    int fd = -1;

    proxied(f);
    peer_writes(f, buf, v2_header(buf));
    assert_int_equal(gw_transport_detach(&f->t, &fd, &moving), 0);
    turn(f);
    gw_transport_state_free(moving); /* ASan: nothing leaks */
    close(fd);
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
        T(test_close_while_its_event_is_in_the_batch),
        T(test_wait_writable_watches_for_room_once),
        T(test_detach_leaves_the_epoll_set),
        T(test_proxy_header_in_pieces),
        T(test_proxy_v1_and_data_at_once),
        T(test_proxy_local_keeps_the_socket_peer),
        T(test_proxy_malformed_or_cut_short),
        T(test_proxy_end_of_stream),
        T(test_proxy_address_moves_with_the_socket),
        T(test_proxy_address_freed_in_transit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
