#include "gw/uring.h"

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/log.h"

#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Completions the kernel keeps for us: every connection may have a send
 * waiting on a slow reader. Past it the kernel does not drop them (it
 * must have IORING_FEAT_NODROP) but keeps them on a slower list.
 */
#define URING_CQ 8192
#define URING_REAP 256 /* completions taken per peek */

/*
 * The buffers of a turn's sends, packed one send after another: most
 * sends have a frame or two, not GW_URING_IOV buffers, and a slot of
 * GW_URING_IOV each would be 1 MiB a ring that a connect storm's turns
 * touch and keep resident. A batch whose buffers fill it is submitted
 * early, after GW_URING_BATCH_MIN sends at the fewest.
 */
#define URING_IOVS (GW_URING_BATCH_MIN * GW_URING_IOV)

struct gw_uring {
    const gw_uring_backend_t *be;
    void *ctx; /* owned: the backend's, freed by be->free */
    gw_uring_done_cb done;
    void *data;        /* the owner's, for done */
    gw_stats_t *stats; /* borrowed: submissions and sends */
    uv_poll_t poll;    /* on the backend's fd; poll.data = this */
    int polled;        /* poll is initialised (a backend with an fd) */
    unsigned nslots;   /* sends queued since the last submission */
    unsigned niov;     /* of iov, the buffers those sends use */
    unsigned queued;   /* operations queued since then, cancels too */
    unsigned inflight; /* sends queued or submitted, not yet reaped */
    /* Where the queued sends' headers and buffers live until the
     * submission: the kernel reads them then (IORING_FEAT_SUBMIT_STABLE),
     * not later. */
    struct msghdr *msgs; /* owned: GW_URING_BATCH of them */
    struct iovec *iov;   /* owned: URING_IOVS of them */
    gw_log_limit_t log;  /* failed submissions, rate-limited */
};

/* ---- the kernel's ring ---- */

static int kernel_sendmsg(void *ctx, int fd, const struct msghdr *msg,
                          uint64_t user_data)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ctx);

    if (sqe == NULL)
        return GW_EFULL;
    /* No MSG_DONTWAIT: a full socket makes the kernel wait for room
     * itself, and complete the send then. */
    io_uring_prep_sendmsg(sqe, fd, msg, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

static int kernel_cancel(void *ctx, uint64_t user_data)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ctx);

    if (sqe == NULL)
        return GW_EFULL;
    io_uring_prep_cancel64(sqe, user_data,
                           user_data == 0 ? IORING_ASYNC_CANCEL_ANY : 0);
    io_uring_sqe_set_data64(sqe, 0); /* its own completion is not a send */
    return 0;
}

static int kernel_submit(void *ctx)
{
    return io_uring_submit(ctx);
}

static unsigned kernel_peek(void *ctx, gw_uring_cqe_t *out, unsigned max)
{
    struct io_uring_cqe *cqes[URING_REAP];
    unsigned n;

    if (max > URING_REAP)
        max = URING_REAP;
    n = io_uring_peek_batch_cqe(ctx, cqes, max);
    for (unsigned i = 0; i < n; i++)
        out[i] =
            (gw_uring_cqe_t){io_uring_cqe_get_data64(cqes[i]), cqes[i]->res};
    io_uring_cq_advance(ctx, n);
    return n;
}

static int kernel_wait(void *ctx)
{
    struct io_uring_cqe *cqe;

    return io_uring_wait_cqe(ctx, &cqe);
}

static int kernel_fd(void *ctx)
{
    return ((struct io_uring *)ctx)->ring_fd;
}

static void kernel_free(void *ctx)
{
    io_uring_queue_exit(ctx);
    free(ctx);
}

static const gw_uring_backend_t kernel_backend = {
    .sendmsg = kernel_sendmsg,
    .cancel = kernel_cancel,
    .submit = kernel_submit,
    .peek = kernel_peek,
    .wait = kernel_wait,
    .fd = kernel_fd,
    .free = kernel_free,
};

/*
 * A ring for one loop's thread. SUBMIT_ALL: one bad send does not hold
 * back the others of the batch. COOP_TASKRUN: the loop's thread is not
 * interrupted to post completions; it posts them when it next enters the
 * kernel, which it does every turn. Refused (-ENOSYS) where the kernel
 * would read a send's header after the submission, or drop completions.
 */
static int kernel_init(struct io_uring *ring)
{
    struct io_uring_params p = {.flags = IORING_SETUP_CQSIZE |
                                         IORING_SETUP_SUBMIT_ALL |
                                         IORING_SETUP_COOP_TASKRUN,
                                .cq_entries = URING_CQ};
    int rc = io_uring_queue_init_params(GW_URING_BATCH, ring, &p);

    if (rc != 0)
        return rc;
    if (!(p.features & IORING_FEAT_NODROP) ||
        !(p.features & IORING_FEAT_SUBMIT_STABLE)) {
        io_uring_queue_exit(ring);
        return -ENOSYS;
    }
    return 0;
}

/* What /proc/sys/kernel/io_uring_disabled says (0 when absent). */
static int uring_disabled_sysctl(void)
{
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    int v = 0;

    if (f == NULL)
        return 0;
    if (fscanf(f, "%d", &v) != 1)
        v = 0;
    fclose(f);
    return v;
}

int gw_uring_probe(char *why, size_t len)
{
    struct io_uring ring;
    int rc = kernel_init(&ring), off;

    if (rc == 0) {
        io_uring_queue_exit(&ring);
        return 0;
    }
    off = uring_disabled_sysctl();
    snprintf(why, len, "%s%s", strerror(-rc),
             off ? " (kernel.io_uring_disabled is set)" : "");
    return rc;
}

/* ---- the ring, whatever its backend ---- */

static void uring_poll_cb(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    gw_uring_reap(p->data);
}

/* Watches the backend's fd, without keeping the loop alive: the loop
 * lives for its connections, not for their ring. */
static int uring_watch(gw_uring_t *u, uv_loop_t *loop)
{
    int fd = u->be->fd(u->ctx), rc;

    if (fd < 0)
        return 0;
    if ((rc = uv_poll_init(loop, &u->poll, fd)) != 0)
        return rc;
    u->poll.data = u;
    u->polled = 1;
    uv_unref((uv_handle_t *)&u->poll);
    return uv_poll_start(&u->poll, UV_READABLE, uring_poll_cb);
}

static void uring_close_cb(uv_handle_t *h)
{
    gw_uring_t *u = h->data;

    u->be->free(u->ctx);
    free(u->msgs);
    free(u->iov);
    free(u);
}

gw_uring_t *gw_uring_new(uv_loop_t *loop, gw_stats_t *stats,
                         const gw_uring_backend_t *backend, void *ctx,
                         gw_uring_done_cb done, void *data, int *err)
{
    gw_uring_t *u = gw_calloc(1, sizeof(*u));

    if (backend == NULL) {
        backend = &kernel_backend;
        ctx = gw_malloc(sizeof(struct io_uring));
        if ((*err = kernel_init(ctx)) != 0) {
            free(ctx);
            free(u);
            return NULL;
        }
    }
    *u = (gw_uring_t){
        .be = backend, .ctx = ctx, .done = done, .data = data, .stats = stats};
    u->msgs = gw_malloc(GW_URING_BATCH * sizeof(*u->msgs));
    u->iov = gw_malloc(URING_IOVS * sizeof(*u->iov));
    if ((*err = uring_watch(u, loop)) != 0) {
        gw_uring_free(u);
        return NULL;
    }
    return u;
}

void gw_uring_submit(gw_uring_t *u)
{
    int rc;

    if (u->queued == 0)
        return;
    do
        rc = u->be->submit(u->ctx);
    while (rc == -EINTR);
    if (rc < 0) { /* the queue stays: the next turn submits it again */
        gw_log_limited(&u->log, GW_LOG_ERROR, "io_uring: submit failed: %s",
                       strerror(-rc));
        return;
    }
    gw_stat_add(u->stats, GW_STAT_URING_SUBMITS, 1);
    u->queued = u->nslots = u->niov = 0;
}

/* Whether the batch takes one more send of up to GW_URING_IOV buffers. */
static int uring_room(const gw_uring_t *u)
{
    return u->nslots < GW_URING_BATCH && u->niov + GW_URING_IOV <= URING_IOVS;
}

struct iovec *gw_uring_iov(gw_uring_t *u)
{
    if (!uring_room(u))
        gw_uring_submit(u);
    if (!uring_room(u)) { /* the kernel refused it, logged */
        gw_error("io_uring: no room for a send");
        abort();
    }
    return &u->iov[u->niov];
}

/* Queues one operation, submitting the batch first when the backend's
 * queue is full. */
static void uring_queue(gw_uring_t *u, int fd, const struct msghdr *msg,
                        uint64_t user_data)
{
    int rc = msg != NULL ? u->be->sendmsg(u->ctx, fd, msg, user_data)
                         : u->be->cancel(u->ctx, user_data);

    if (rc == GW_EFULL) {
        gw_uring_submit(u);
        rc = msg != NULL ? u->be->sendmsg(u->ctx, fd, msg, user_data)
                         : u->be->cancel(u->ctx, user_data);
    }
    if (rc != 0) { /* the submission failed, and the queue stays full */
        gw_error("io_uring: no room for an operation");
        abort();
    }
    u->queued++;
}

void gw_uring_send(gw_uring_t *u, int fd, unsigned n, uint64_t user_data)
{
    struct msghdr *msg = &u->msgs[u->nslots++];

    *msg = (struct msghdr){.msg_iov = &u->iov[u->niov], .msg_iovlen = n};
    u->niov += n;
    uring_queue(u, fd, msg, user_data);
    u->inflight++;
    gw_stat_add(u->stats, GW_STAT_URING_SENDS, 1);
}

void gw_uring_cancel(gw_uring_t *u, uint64_t user_data)
{
    uring_queue(u, -1, NULL, user_data);
}

void gw_uring_reap(gw_uring_t *u)
{
    gw_uring_cqe_t cqes[URING_REAP];
    unsigned n;

    do {
        n = u->be->peek(u->ctx, cqes, URING_REAP);
        for (unsigned i = 0; i < n; i++) {
            if (cqes[i].user_data == 0) /* a cancellation's own */
                continue;
            u->inflight--;
            u->done(u->data, cqes[i].user_data, cqes[i].res);
        }
    } while (n == URING_REAP);
}

unsigned gw_uring_inflight(const gw_uring_t *u)
{
    return u->inflight;
}

void gw_uring_drain(gw_uring_t *u)
{
    int rc;

    gw_uring_submit(u);
    gw_uring_reap(u);
    if (u->inflight == 0)
        return;
    gw_uring_cancel(u, 0);
    gw_uring_submit(u);
    while (u->inflight > 0) {
        if ((rc = u->be->wait(u->ctx)) < 0 && rc != -EINTR) {
            gw_error("io_uring: waiting for %u sends failed: %s", u->inflight,
                     strerror(-rc));
            return;
        }
        gw_uring_reap(u);
    }
}

void gw_uring_free(gw_uring_t *u)
{
    if (u == NULL)
        return;
    gw_uring_drain(u);
    if (u->polled) {
        uv_close((uv_handle_t *)&u->poll, uring_close_cb);
        return;
    }
    u->poll.data = u;
    uring_close_cb((uv_handle_t *)&u->poll);
}
