/*
 * The transport's io_uring write path, driven through a fake ring: the
 * test decides when the "kernel" completes a send, with how many bytes or
 * which error. Checked: one submission for every connection of a turn, at
 * most one send in flight per connection (bytes in order), short sends
 * resumed where they stopped, errors closing, a connection closed with a
 * send in flight released only after its completion, frames referenced
 * until then, and a slow consumer shed and closed with its in-flight bytes
 * kept. One case sends through the kernel's ring, where it has one.
 *
 * The same for an implementation with bytes of its own (ops->staged, as
 * TLS's records): a fake that wraps what writev is given in a "record"
 * and stages it, finishing a record the buffer did not take whole before
 * anything else, as mbedtls does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/error.h"
#include "gw/transport.h"
#include "gw/uring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NT 5          /* transports of the fixture */
#define NOPS 128      /* operations the fake holds */
#define OPBYTES 16384 /* a staged buffer's worth */

/* One operation as the fake "kernel" took it at submission. */
typedef struct fake_op {
    uint64_t user_data;
    int fd;
    int cancel;
    char bytes[OPBYTES]; /* a send's buffers, gathered */
    size_t len;
} fake_op_t;

static struct {
    fake_op_t queued[NOPS]; /* since the last submit */
    unsigned nqueued;
    fake_op_t sub[NOPS]; /* submitted sends not yet completed */
    unsigned nsub;
    gw_uring_cqe_t cq[NOPS]; /* completions ready to reap */
    unsigned ncq;
    unsigned sq_room; /* operations the queue takes before GW_EFULL */
    int submits, freed;
    int autocomplete; /* a send completes whole at its submission */
} fk;

static int fake_sendmsg(void *ctx, int fd, const struct msghdr *msg,
                        uint64_t user_data)
{
    fake_op_t *op;
    (void)ctx;

    if (fk.nqueued == fk.sq_room)
        return GW_EFULL;
    op = &fk.queued[fk.nqueued++];
    *op = (fake_op_t){.user_data = user_data, .fd = fd};
    for (size_t i = 0; i < msg->msg_iovlen; i++) {
        assert_true(op->len + msg->msg_iov[i].iov_len <= OPBYTES);
        memcpy(op->bytes + op->len, msg->msg_iov[i].iov_base,
               msg->msg_iov[i].iov_len);
        op->len += msg->msg_iov[i].iov_len;
    }
    return 0;
}

static int fake_cancel(void *ctx, uint64_t user_data)
{
    (void)ctx;
    if (fk.nqueued == fk.sq_room)
        return GW_EFULL;
    fk.queued[fk.nqueued++] =
        (fake_op_t){.user_data = user_data, .fd = -1, .cancel = 1};
    return 0;
}

static void fake_post(uint64_t user_data, int32_t res)
{
    assert_true(fk.ncq < NOPS);
    fk.cq[fk.ncq++] = (gw_uring_cqe_t){user_data, res};
}

/* The submitted send i completes with res. */
static void fake_complete(unsigned i, int32_t res)
{
    assert_true(i < fk.nsub);
    fake_post(fk.sub[i].user_data, res);
    memmove(&fk.sub[i], &fk.sub[i + 1], (fk.nsub - i - 1) * sizeof(fk.sub[0]));
    fk.nsub--;
}

/* A cancellation completes the sends it names with -ECANCELED. */
static void fake_run_cancel(uint64_t user_data)
{
    for (unsigned i = 0; i < fk.nsub;) {
        if (user_data == 0 || fk.sub[i].user_data == user_data)
            fake_complete(i, -ECANCELED);
        else
            i++;
    }
    fake_post(0, 0);
}

static int fake_submit(void *ctx)
{
    unsigned n = fk.nqueued;
    (void)ctx;

    fk.submits++;
    for (unsigned i = 0; i < n; i++) {
        if (fk.queued[i].cancel) {
            fake_run_cancel(fk.queued[i].user_data);
            continue;
        }
        fk.sub[fk.nsub++] = fk.queued[i];
        if (fk.autocomplete)
            fake_complete(fk.nsub - 1, (int32_t)fk.queued[i].len);
    }
    fk.nqueued = 0;
    return (int)n;
}

static unsigned fake_peek(void *ctx, gw_uring_cqe_t *out, unsigned max)
{
    unsigned n = fk.ncq < max ? fk.ncq : max;
    (void)ctx;

    memcpy(out, fk.cq, n * sizeof(*out));
    memmove(fk.cq, fk.cq + n, (fk.ncq - n) * sizeof(*out));
    fk.ncq -= n;
    return n;
}

static int fake_wait(void *ctx)
{
    (void)ctx;
    return fk.ncq > 0 ? 0 : -EIO; /* nothing would ever come */
}

static int fake_fd(void *ctx)
{
    (void)ctx;
    return -1; /* the test reaps */
}

static void fake_free(void *ctx)
{
    (void)ctx;
    fk.freed++;
}

static const gw_uring_backend_t fake = {fake_sendmsg, fake_cancel, fake_submit,
                                        fake_peek,    fake_wait,   fake_fd,
                                        fake_free};

/* ---- the transports ---- */

static struct {
    int drained, closed, writevs;
} io;

static ssize_t no_read(gw_transport_t *t, uint8_t *buf, size_t len)
{
    (void)t;
    (void)buf;
    (void)len;
    return GW_EAGAIN;
}

/* Never called while the loop has a ring. */
static ssize_t counted_writev(gw_transport_t *t, const struct iovec *iov,
                              unsigned n)
{
    ssize_t took = 0;
    (void)t;

    io.writevs++;
    for (unsigned i = 0; i < n; i++)
        took += (ssize_t)iov[i].iov_len;
    return took;
}

static int no_shutdown(gw_transport_t *t)
{
    (void)t;
    return 0;
}

static const gw_transport_ops_t plain_ops = {.read = no_read,
                                             .writev = counted_writev,
                                             .shutdown = no_shutdown,
                                             .plain = 1};

/* A record of the staged fake: "<" what writev was given ">", and how
 * much of it the staged buffer has taken. */
typedef struct fake_rec {
    char bytes[24000];
    size_t len, staged;
    size_t plain; /* the ring's bytes it holds */
} fake_rec_t;

static fake_rec_t recs[NT]; /* t->impl */

/* Wraps what it is given into one record (unless one is unfinished) and
 * stages it; the ring's bytes are taken once the whole record is staged,
 * and t->busy says how many a record half staged holds. */
static ssize_t staged_writev(gw_transport_t *t, const struct iovec *iov,
                             unsigned n)
{
    fake_rec_t *r = t->impl;

    if (r->len == 0) {
        r->bytes[r->len++] = '<';
        for (unsigned i = 0; i < n; i++) {
            assert_true(r->len + iov[i].iov_len + 1 <= sizeof(r->bytes));
            memcpy(r->bytes + r->len, iov[i].iov_base, iov[i].iov_len);
            r->len += iov[i].iov_len;
        }
        r->bytes[r->len++] = '>';
        r->plain = r->len - 2;
        r->staged = 0;
    }
    r->staged +=
        gw_transport_stage(t, r->bytes + r->staged, r->len - r->staged);
    if (r->staged < r->len) {
        t->busy = (uint32_t)r->plain;
        return 0;
    }
    t->busy = 0;
    r->len = 0;
    return (ssize_t)r->plain;
}

static const gw_transport_ops_t staged_ops = {.read = no_read,
                                              .writev = staged_writev,
                                              .shutdown = no_shutdown,
                                              .staged = 1};

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

static const gw_transport_cb_t cb = {on_data, on_drained, on_close, NULL};

typedef struct fx {
    uv_loop_t loop;
    gw_transport_loop_t l;
    gw_stats_t stats;
    gw_transport_t t[NT];
    int peer[NT];
} fx_t;

static int fx_open(void **state, const gw_transport_ops_t *ops)
{
    fx_t *f = calloc(1, sizeof(*f));

    memset(&fk, 0, sizeof(fk));
    memset(recs, 0, sizeof(recs));
    memset(&io, 0, sizeof(io));
    fk.sq_room = NOPS;
    uv_loop_init(&f->loop);
    gw_transport_loop_init(&f->l, &f->loop, &cb, &f->stats, 4);
    assert_int_equal(gw_transport_loop_uring(&f->l, &fake, NULL), 0);
    for (int i = 0; i < NT; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        f->peer[i] = sv[1];
        assert_int_equal(gw_transport_init(&f->t[i], &f->l, sv[0], ops), 0);
        f->t[i].impl = &recs[i];
    }
    *state = f;
    return 0;
}

static int fx_setup(void **state)
{
    return fx_open(state, &plain_ops);
}

static int fx_setup_staged(void **state)
{
    return fx_open(state, &staged_ops);
}

/* Closes what is open; the stop cancels what is in flight and releases
 * every transport, so that nothing leaks (ASan) and every close is told. */
static int fx_teardown(void **state)
{
    fx_t *f = *state;

    for (int i = 0; i < NT; i++)
        gw_transport_close(&f->t[i]);
    gw_transport_loop_flush(&f->l);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    gw_transport_loop_stop(&f->l);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(io.closed, NT);
    assert_int_equal(f->stats.v[GW_STAT_CONNECTIONS], 0);
    assert_int_equal(fk.freed, 1);
    assert_int_equal(io.writevs, 0);
    gw_transport_loop_free(&f->l);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    for (int i = 0; i < NT; i++)
        close(f->peer[i]);
    free(f);
    return 0;
}

static void push(gw_transport_t *t, const char *s)
{
    gw_transport_push_copy(t, s, strlen(s));
}

static void assert_op(const fake_op_t *op, const gw_transport_t *t,
                      const char *bytes)
{
    assert_int_equal(op->user_data, (uintptr_t)t);
    assert_int_equal(op->fd, t->fd);
    assert_int_equal(op->len, strlen(bytes));
    assert_memory_equal(op->bytes, bytes, op->len);
}

/* Every connection with output gets one send, all in one submission, and
 * its entries stay queued until the completion says what was taken. */
static void test_one_submission_for_every_connection(void **state)
{
    fx_t *f = *state;

    for (int i = 0; i < 3; i++) {
        push(&f->t[i], "ab");
        push(&f->t[i], i == 1 ? "cdef" : "c");
    }
    gw_transport_loop_flush(&f->l);
    assert_int_equal(fk.submits, 1);
    assert_int_equal(fk.nsub, 3);
    /* The flush list is taken newest first. */
    assert_op(&fk.sub[0], &f->t[2], "abc");
    assert_op(&fk.sub[1], &f->t[1], "abcdef");
    assert_op(&fk.sub[2], &f->t[0], "abc");
    assert_int_equal(f->t[1].ring.count, 2);
    assert_int_equal(gw_uring_inflight(f->l.uring), 3);
    while (fk.nsub > 0)
        fake_complete(0, (int32_t)fk.sub[0].len);
    gw_uring_reap(f->l.uring);
    for (int i = 0; i < 3; i++)
        assert_int_equal(f->t[i].ring.count, 0);
    assert_int_equal(f->stats.v[GW_STAT_URING_SUBMITS], 1);
    assert_int_equal(f->stats.v[GW_STAT_URING_SENDS], 3);
    assert_int_equal(f->stats.v[GW_STAT_URING_PARTIAL], 0);
    assert_int_equal(f->stats.v[GW_STAT_BYTES_OUT], 12);
    gw_transport_loop_flush(&f->l); /* nothing left: no submission */
    assert_int_equal(fk.submits, 1);
}

/* Output queued while a send is in flight waits for its completion, and
 * goes out after it, in order. */
static void test_one_send_in_flight_keeps_order(void **state)
{
    fx_t *f = *state;

    gw_transport_notify_drained(&f->t[0]);
    push(&f->t[0], "ab");
    gw_transport_loop_flush(&f->l);
    push(&f->t[0], "cd");
    gw_transport_flush(&f->t[0]);
    gw_transport_loop_flush(&f->l);
    assert_int_equal(fk.submits, 1);
    assert_int_equal(fk.nsub, 1);
    fake_complete(0, 2);
    gw_uring_reap(f->l.uring);
    assert_int_equal(io.drained, 0); /* "cd" is still to go */
    gw_transport_loop_flush(&f->l);
    assert_int_equal(fk.submits, 2);
    assert_op(&fk.sub[0], &f->t[0], "cd");
    fake_complete(0, 2);
    gw_uring_reap(f->l.uring);
    assert_int_equal(io.drained, 1);
    assert_int_equal(f->t[0].ring.count, 0);
}

/* A short send resumes from the byte where the kernel stopped. */
static void test_partial_send_resumes_where_it_stopped(void **state)
{
    fx_t *f = *state;

    gw_transport_notify_drained(&f->t[0]);
    push(&f->t[0], "abcd");
    push(&f->t[0], "efgh");
    gw_transport_loop_flush(&f->l);
    fake_complete(0, 3);
    gw_uring_reap(f->l.uring);
    assert_int_equal(f->stats.v[GW_STAT_URING_PARTIAL], 1);
    assert_int_equal(f->t[0].busy, 0);
    assert_int_equal(f->t[0].ring.count, 2);
    push(&f->t[0], "ij");
    gw_transport_loop_flush(&f->l);
    assert_op(&fk.sub[0], &f->t[0], "defghij");
    fake_complete(0, 0); /* nothing taken at all: still resumes */
    gw_uring_reap(f->l.uring);
    gw_transport_loop_flush(&f->l);
    assert_op(&fk.sub[0], &f->t[0], "defghij");
    fake_complete(0, 7);
    gw_uring_reap(f->l.uring);
    assert_int_equal(io.drained, 1);
    assert_int_equal(f->stats.v[GW_STAT_BYTES_OUT], 10);
}

/* A failed send (the peer reset, or gone) closes the connection; the
 * others of the batch carry on. */
static void test_send_errors_close_the_connection(void **state)
{
    fx_t *f = *state;

    push(&f->t[0], "ab");
    push(&f->t[1], "cd");
    push(&f->t[2], "ef");
    gw_transport_loop_flush(&f->l);
    fake_complete(0, -EPIPE);      /* t[2] */
    fake_complete(0, -ECONNRESET); /* t[1] */
    fake_complete(0, 2);           /* t[0] */
    gw_uring_reap(f->l.uring);
    assert_true(f->t[2].closed && f->t[1].closed);
    assert_false(f->t[0].closed);
    assert_int_equal(io.closed, 0); /* never inside a reap */
    gw_transport_loop_flush(&f->l);
    assert_int_equal(io.closed, 2);
    assert_int_equal(f->t[0].ring.count, 0);
}

/* Closed with a send in flight: the ring's frames stay referenced and the
 * owner is not told until the cancelled send's completion is reaped. */
static void test_close_with_a_send_in_flight(void **state)
{
    fx_t *f = *state;
    gw_frame_t *frame = gw_frame_new(4);

    memcpy(frame->data, "abcd", 4);
    gw_transport_push(&f->t[0], gw_frame_ref(frame), NULL, 0);
    gw_transport_loop_flush(&f->l);
    gw_transport_close(&f->t[0]);
    gw_transport_loop_flush(&f->l); /* parks it, submits the cancellation */
    assert_true(f->t[0].parked);
    assert_int_equal(io.closed, 0);
    assert_int_equal(atomic_load(&frame->refs), 2);
    assert_int_equal(f->stats.v[GW_STAT_CONNECTIONS], NT);
    assert_int_equal(fk.nsub, 0);
    assert_int_equal(io.closed, 0);
    gw_uring_reap(f->l.uring);
    assert_int_equal(io.closed, 0); /* never inside a reap */
    gw_transport_loop_flush(&f->l);
    assert_int_equal(io.closed, 1);
    assert_int_equal(atomic_load(&frame->refs), 1);
    assert_int_equal(f->stats.v[GW_STAT_CONNECTIONS], NT - 1);
    gw_frame_unref(frame);
}

/* The send completes before its cancellation reaches the kernel: the
 * release waits for that completion alone. */
static void test_close_as_the_send_completes(void **state)
{
    fx_t *f = *state;

    push(&f->t[0], "ab");
    gw_transport_loop_flush(&f->l);
    gw_transport_close(&f->t[0]);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    fake_complete(0, 2);
    gw_uring_reap(f->l.uring);
    assert_int_equal(io.closed, 0);
    gw_transport_loop_flush(&f->l);
    assert_int_equal(io.closed, 1);
    assert_int_equal(f->stats.v[GW_STAT_BYTES_OUT], 2);
}

/* A consumer that does not read: its send never completes, frames pile
 * up and are shed, then the backlog is dropped but the bytes the kernel
 * holds are kept; closing it cancels the send. */
static void test_slow_consumer_keeps_what_is_in_flight(void **state)
{
    fx_t *f = *state;
    unsigned dropped = 0;
    int rc = 0, i;

    push(&f->t[0], "ab");
    push(&f->t[0], "cd");
    gw_transport_loop_flush(&f->l);
    for (i = 0; i < 100 && rc != GW_EFULL; i++) {
        rc = gw_transport_admit(&f->t[0], 4, 8, &dropped);
        if (rc == 0)
            push(&f->t[0], "xy");
    }
    assert_int_equal(rc, GW_EFULL);
    assert_int_equal(fk.nsub, 1); /* still the one send */
    assert_int_equal(f->t[0].busy, 4);
    assert_int_equal(f->t[0].ring.count, 2);
    assert_int_equal(dropped, 2);
    gw_transport_close(&f->t[0]);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    gw_transport_loop_flush(&f->l);
    gw_uring_reap(f->l.uring);
    gw_transport_loop_flush(&f->l);
    assert_int_equal(io.closed, 1);
}

/* A ring that looks full is written at once, as sendmsg would: the send
 * is submitted and its completion reaped before admit answers. */
static void test_admit_sends_at_once(void **state)
{
    fx_t *f = *state;
    unsigned dropped;

    fk.autocomplete = 1;
    for (int i = 0; i < 4; i++)
        push(&f->t[0], "ab");
    assert_int_equal(gw_transport_admit(&f->t[0], 4, 8, &dropped), 0);
    assert_int_equal(f->t[0].ring.count, 0);
    assert_int_equal(fk.submits, 1);
}

/* More than one send's worth: the sends follow one another at once while
 * the kernel takes them whole, as the sendmsg loop writes. */
static void test_admit_writes_more_than_one_send(void **state)
{
    fx_t *f = *state;
    unsigned dropped;

    fk.autocomplete = 1;
    for (int i = 0; i < GW_URING_IOV + 36; i++)
        push(&f->t[0], "ab");
    assert_int_equal(gw_transport_admit(&f->t[0], 100, 200, &dropped), 0);
    assert_int_equal(f->t[0].ring.count, 0);
    assert_int_equal(fk.submits, 2);
    assert_int_equal(f->stats.v[GW_STAT_BYTES_OUT], 200);
}

/* Leaving for another loop: the output the owner's flush queued is
 * written first, so that the socket goes with nothing owed. */
static void test_detach_writes_what_is_queued(void **state)
{
    fx_t *f = *state;
    gw_transport_state_t *moving = NULL;
    int fd = -1;

    fk.autocomplete = 1;
    push(&f->t[0], "HTTP/1.1 101");
    gw_transport_flush(&f->t[0]);
    assert_int_equal(gw_transport_detach(&f->t[0], &fd, &moving), 0);
    assert_int_equal(fd, f->t[0].fd);
    assert_null(moving);
    assert_int_equal(fk.submits, 1);
    assert_int_equal(f->t[0].ring.count, 0);
    assert_int_equal(f->stats.v[GW_STAT_BYTES_OUT], 12);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    close(fd);
}

/* More sends in a turn than the queue holds: submitted as it fills, none
 * lost, each connection's bytes whole. */
static void test_a_full_queue_is_submitted_early(void **state)
{
    fx_t *f = *state;

    fk.sq_room = 2;
    for (int i = 0; i < NT; i++)
        push(&f->t[i], "abc");
    gw_transport_loop_flush(&f->l);
    assert_int_equal(fk.submits, 3);
    assert_int_equal(fk.nsub, NT);
    for (int i = 0; i < NT; i++)
        assert_op(&fk.sub[i], &f->t[NT - 1 - i], "abc");
}

/* The loop stops with sends in flight: they are cancelled and reaped,
 * and the ring is freed; later output goes through the ops. */
static void test_stop_cancels_what_is_in_flight(void **state)
{
    fx_t *f = *state;

    push(&f->t[0], "ab");
    push(&f->t[1], "cd");
    gw_transport_loop_flush(&f->l);
    gw_transport_loop_stop(&f->l);
    assert_null(f->l.uring);
    assert_int_equal(fk.freed, 1);
    assert_true(f->t[0].closed && f->t[1].closed);
    assert_false(f->t[0].inflight || f->t[1].inflight);
    push(&f->t[2], "ef");
    gw_transport_flush(&f->t[2]);
    assert_int_equal(io.writevs, 1);
    io.writevs = 0;
}

/* ---- an implementation's own bytes (ops->staged) ---- */

/* Each connection's records go out as one send, all in one submission;
 * the ring's entries are consumed as they are staged, the buffer is held
 * until the completion and then pooled. */
static void test_staged_records_one_send_per_turn(void **state)
{
    fx_t *f = *state;

    gw_transport_notify_drained(&f->t[0]);
    push(&f->t[0], "ab");
    push(&f->t[0], "cd");
    push(&f->t[1], "ef");
    gw_transport_loop_flush(&f->l);
    assert_int_equal(fk.submits, 1);
    assert_int_equal(fk.nsub, 2);
    assert_op(&fk.sub[0], &f->t[1], "<ef>");
    assert_op(&fk.sub[1], &f->t[0], "<abcd>");
    assert_int_equal(f->t[0].ring.count, 0);
    assert_non_null(f->t[0].out);
    assert_int_equal(f->stats.v[GW_STAT_BYTES_OUT], 6);
    push(&f->t[0], "gh"); /* waits for the send in flight */
    gw_transport_loop_flush(&f->l);
    assert_int_equal(fk.submits, 1);
    fake_complete(1, 6);
    gw_uring_reap(f->l.uring);
    assert_int_equal(io.drained, 0);
    gw_transport_loop_flush(&f->l);
    assert_op(&fk.sub[1], &f->t[0], "<gh>");
    fake_complete(1, 4);
    gw_uring_reap(f->l.uring);
    assert_int_equal(io.drained, 1);
    assert_null(f->t[0].out);
    assert_int_equal(f->l.out_nfree, 1);
    assert_int_equal(f->stats.v[GW_STAT_URING_SENDS], 3);
}

/* A short send resumes with the staged bytes the kernel did not take,
 * ahead of the records staged after them. */
static void test_staged_partial_send_resumes(void **state)
{
    fx_t *f = *state;

    gw_transport_notify_drained(&f->t[0]);
    push(&f->t[0], "abcd");
    gw_transport_loop_flush(&f->l);
    fake_complete(0, 2);
    gw_uring_reap(f->l.uring);
    assert_int_equal(f->stats.v[GW_STAT_URING_PARTIAL], 1);
    assert_non_null(f->t[0].out);
    assert_int_equal(io.drained, 0);
    push(&f->t[0], "ef");
    gw_transport_loop_flush(&f->l);
    assert_op(&fk.sub[0], &f->t[0], "bcd><ef>");
    fake_complete(0, 8);
    gw_uring_reap(f->l.uring);
    assert_int_equal(io.drained, 1);
    assert_null(f->t[0].out);
}

/* A record larger than the staged buffer: what fits goes out, the ring
 * keeps its bytes (t->busy) until the rest is staged after the
 * completion, and the peer gets the record whole, in order. */
static void test_staged_buffer_full_waits_for_the_completion(void **state)
{
    fx_t *f = *state;
    static char big[20000], got[20002];
    size_t have;

    gw_transport_notify_drained(&f->t[0]);
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    gw_transport_push_copy(&f->t[0], big, sizeof(big));
    gw_transport_loop_flush(&f->l);
    assert_int_equal(fk.nsub, 1);
    assert_true(fk.sub[0].len < sizeof(got));
    assert_int_equal(f->t[0].ring.count, 1);
    assert_int_equal(f->t[0].busy, sizeof(big));
    memcpy(got, fk.sub[0].bytes, have = fk.sub[0].len);
    fake_complete(0, (int32_t)fk.sub[0].len);
    gw_uring_reap(f->l.uring);
    gw_transport_loop_flush(&f->l);
    assert_int_equal(fk.nsub, 1);
    assert_int_equal(f->t[0].ring.count, 0);
    assert_int_equal(have + fk.sub[0].len, sizeof(got));
    memcpy(got + have, fk.sub[0].bytes, fk.sub[0].len);
    assert_int_equal(got[0], '<');
    assert_memory_equal(got + 1, big, sizeof(big));
    assert_int_equal(got[sizeof(got) - 1], '>');
    fake_complete(0, (int32_t)fk.sub[0].len);
    gw_uring_reap(f->l.uring);
    assert_int_equal(io.drained, 1);
}

/* Closed with a send in flight: the staged buffer the kernel may still
 * read stays the transport's until the completion is reaped; then the
 * transport is released and the buffer pooled. */
static void test_staged_close_with_a_send_in_flight(void **state)
{
    fx_t *f = *state;
    gw_transport_out_t *out;

    push(&f->t[0], "abcd");
    gw_transport_loop_flush(&f->l);
    out = f->t[0].out;
    assert_non_null(out);
    gw_transport_close(&f->t[0]);
    gw_transport_loop_flush(&f->l); /* parks it, submits the cancellation */
    assert_true(f->t[0].parked);
    assert_int_equal(io.closed, 0);
    assert_true(f->t[0].out == out);
    gw_uring_reap(f->l.uring);
    assert_int_equal(io.closed, 0);
    gw_transport_loop_flush(&f->l);
    assert_int_equal(io.closed, 1);
    assert_null(f->t[0].out);
    assert_true(f->l.out_free == out);
}

/* A send of staged output that fails closes the connection. */
static void test_staged_send_error_closes(void **state)
{
    fx_t *f = *state;

    push(&f->t[0], "ab");
    gw_transport_loop_flush(&f->l);
    fake_complete(0, -ECONNRESET);
    gw_uring_reap(f->l.uring);
    assert_true(f->t[0].closed);
    assert_int_equal(io.closed, 0); /* never inside a reap */
    gw_transport_loop_flush(&f->l);
    assert_int_equal(io.closed, 1);
}

/* Leaving for another loop: staged output is sent first, and a socket
 * whose staged bytes the kernel has not taken stays. */
static void test_staged_detach_waits_for_the_staged_bytes(void **state)
{
    fx_t *f = *state;
    gw_transport_state_t *moving = NULL;
    int fd = -1;

    push(&f->t[1], "ab");
    assert_int_equal(gw_transport_detach(&f->t[1], &fd, &moving), GW_EAGAIN);
    assert_non_null(f->t[1].out); /* the send is in the kernel's hands */
    fake_complete(0, 4);
    gw_uring_reap(f->l.uring);
    fk.autocomplete = 1;
    push(&f->t[0], "cd");
    gw_transport_flush(&f->t[0]);
    assert_int_equal(gw_transport_detach(&f->t[0], &fd, &moving), 0);
    assert_int_equal(fd, f->t[0].fd);
    assert_null(f->t[0].out);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    close(fd);
}

/* The kernel's ring, where this kernel gives one: bytes reach the peer. */
static unsigned sent_done;

static void count_done(void *data, uint64_t user_data, int32_t res)
{
    (void)data;
    (void)user_data;
    (void)res;
    sent_done++;
}

/* The sends' buffers are packed in the batch: sends of GW_URING_IOV
 * buffers each fill it after GW_URING_BATCH_MIN of them, which submits
 * it early, and every send goes out with its own buffers. */
static void test_buffers_packed_submit_early(void **state)
{
    static const char bytes[] = "0123456789abcdefghijklmnopqrstuvwxyz"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ!#";
    uv_loop_t loop;
    gw_stats_t stats = {0};
    gw_uring_t *u;
    struct iovec *iov;
    int err = 0;
    unsigned n = GW_URING_BATCH_MIN + 1, k;
    (void)state;

    memset(&fk, 0, sizeof(fk));
    fk.sq_room = NOPS;
    sent_done = 0;
    uv_loop_init(&loop);
    u = gw_uring_new(&loop, &stats, &fake, NULL, count_done, NULL, &err);
    assert_non_null(u);
    for (unsigned i = 0; i < n; i++) {
        iov = gw_uring_iov(u);
        /* Send i: GW_URING_IOV bytes, bytes[i % 64 ...] one a buffer. */
        for (k = 0; k < GW_URING_IOV; k++)
            iov[k] = (struct iovec){(void *)&bytes[(i + k) % 64], 1};
        gw_uring_send(u, 100 + (int)i, GW_URING_IOV, i + 1);
        if (i + 1 == GW_URING_BATCH_MIN)
            assert_int_equal(fk.submits, 0); /* full, not yet submitted */
    }
    assert_int_equal(fk.submits, 1); /* the last send's buffers forced it */
    gw_uring_submit(u);
    assert_int_equal(fk.submits, 2);
    assert_int_equal(fk.nsub, n);
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(fk.sub[i].fd, 100 + (int)i);
        assert_int_equal(fk.sub[i].len, GW_URING_IOV);
        for (k = 0; k < GW_URING_IOV; k++)
            assert_int_equal(fk.sub[i].bytes[k], bytes[(i + k) % 64]);
    }
    while (fk.nsub > 0)
        fake_complete(0, GW_URING_IOV);
    gw_uring_reap(u);
    assert_int_equal(sent_done, n);
    assert_int_equal(gw_uring_inflight(u), 0);
    gw_uring_free(u);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(fk.freed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_kernel_ring_sends(void **state)
{
    char why[128] = "", buf[16];
    uv_loop_t loop;
    gw_transport_loop_t l;
    gw_stats_t stats = {0};
    gw_transport_t t;
    int sv[2], rc = gw_uring_probe(why, sizeof(why));
    ssize_t n = 0;
    (void)state;

    if (rc != 0) {
        assert_true(why[0] != '\0'); /* the reason is said */
        skip();
    }
    memset(&io, 0, sizeof(io));
    uv_loop_init(&loop);
    gw_transport_loop_init(&l, &loop, &cb, &stats, 4);
    assert_int_equal(gw_transport_loop_uring(&l, NULL, NULL), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(gw_transport_init(&t, &l, sv[0], &plain_ops), 0);
    push(&t, "hello, ");
    push(&t, "ring");
    gw_transport_loop_flush(&l);
    for (int i = 0; i < 100 && t.ring.count > 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_int_equal(t.ring.count, 0);
    n = read(sv[1], buf, sizeof(buf));
    assert_int_equal(n, 11);
    assert_memory_equal(buf, "hello, ring", 11);
    assert_int_equal(stats.v[GW_STAT_URING_SENDS], 1);
    gw_transport_close(&t);
    gw_transport_loop_stop(&l);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(io.closed, 1);
    gw_transport_loop_free(&l);
    assert_int_equal(uv_loop_close(&loop), 0);
    close(sv[1]);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
#define TS(fn) cmocka_unit_test_setup_teardown(fn, fx_setup_staged, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buffers_packed_submit_early),
        T(test_one_submission_for_every_connection),
        T(test_one_send_in_flight_keeps_order),
        T(test_partial_send_resumes_where_it_stopped),
        T(test_send_errors_close_the_connection),
        T(test_close_with_a_send_in_flight),
        T(test_close_as_the_send_completes),
        T(test_slow_consumer_keeps_what_is_in_flight),
        T(test_admit_sends_at_once),
        T(test_admit_writes_more_than_one_send),
        T(test_detach_writes_what_is_queued),
        T(test_a_full_queue_is_submitted_early),
        T(test_stop_cancels_what_is_in_flight),
        TS(test_staged_records_one_send_per_turn),
        TS(test_staged_partial_send_resumes),
        TS(test_staged_buffer_full_waits_for_the_completion),
        TS(test_staged_close_with_a_send_in_flight),
        TS(test_staged_send_error_closes),
        TS(test_staged_detach_waits_for_the_staged_bytes),
        cmocka_unit_test(test_kernel_ring_sends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
