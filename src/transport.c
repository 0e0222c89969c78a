#include "gw/transport.h"

#include "gw/addr.h"
#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TRANSPORT_IOV 64     /* buffers in one gathered write */
#define TRANSPORT_READ 65536 /* the loop's read buffer */

/* The ring describes its bytes as uv_buf_t, written as they are: on Unix
 * a uv_buf_t is laid out as a struct iovec (libuv relies on it too). */
_Static_assert(sizeof(uv_buf_t) == sizeof(struct iovec) &&
                   offsetof(uv_buf_t, base) ==
                       offsetof(struct iovec, iov_base) &&
                   offsetof(uv_buf_t, len) == offsetof(struct iovec, iov_len),
               "uv_buf_t is not an iovec");

void gw_transport_loop_init(gw_transport_loop_t *l, uv_loop_t *loop,
                            const gw_transport_cb_t *cb, gw_stats_t *stats,
                            unsigned max_free_chunks)
{
    *l = (gw_transport_loop_t){.loop = loop, .cb = cb, .stats = stats};
    l->ring_pool.max_free = max_free_chunks;
    l->rbuf_size = TRANSPORT_READ;
    l->rbuf = gw_malloc(l->rbuf_size);
}

void gw_transport_loop_free(gw_transport_loop_t *l)
{
    gw_ring_pool_free(&l->ring_pool);
    free(l->rbuf);
    l->rbuf = NULL;
}

/* Takes every transport off the flush list: writes it (flush), or only
 * reports the closes the list held back (the loop is stopping). */
static void transport_loop_pending(gw_transport_loop_t *l, int flush)
{
    while (l->pending != NULL) {
        gw_transport_t *t = l->pending;
        l->pending = t->next_pending;
        t->queued = 0;
        if (t->released)
            l->cb->on_close(t);
        else if (flush)
            gw_transport_flush(t);
    }
}

void gw_transport_loop_flush(gw_transport_loop_t *l)
{
    transport_loop_pending(l, 1);
}

void gw_transport_loop_stop(gw_transport_loop_t *l)
{
    transport_loop_pending(l, 0);
}

void gw_transport_loop_each(gw_transport_loop_t *l,
                            void (*fn)(gw_transport_t *, void *), void *arg)
{
    gw_transport_t *t, *next;

    /* fn may close t: closing unlinks only in the close callback. */
    for (t = l->all; t != NULL; t = next) {
        next = t->next;
        if (!t->closed)
            fn(t, arg);
    }
}

static void transport_unlink(gw_transport_t *t)
{
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        t->loop->all = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

/* Every resource is released here, never while a callback is running. */
static void transport_close_cb(uv_handle_t *h)
{
    gw_transport_t *t = h->data;
    gw_transport_loop_t *l = t->loop;

    if (t->ops->close != NULL)
        t->ops->close(t);
    if (!t->detached)
        close(t->fd);
    gw_ring_clear(&t->ring, &l->ring_pool);
    transport_unlink(t);
    gw_stat_add(l->stats, GW_STAT_CONNECTIONS, -1);
    gw_stat_add(l->stats, GW_STAT_CLOSES, 1);
    /* A transport still on the flush list is reported by the flush. */
    t->released = 1;
    if (!t->queued)
        l->cb->on_close(t);
}

void gw_transport_close(gw_transport_t *t)
{
    if (t->closed)
        return;
    t->closed = 1;
    uv_close((uv_handle_t *)&t->poll, transport_close_cb);
}

int gw_transport_detach(gw_transport_t *t, int *fd,
                        gw_transport_state_t **state)
{
    int rc;

    *state = NULL;
    if (t->closed || t->ring.count > 0)
        return GW_EAGAIN;
    /* The implementation's state goes with the socket, or neither goes. */
    if (t->ops->detach != NULL && (rc = t->ops->detach(t, state)) != 0)
        return rc;
    t->detached = 1;
    *fd = t->fd;
    gw_transport_close(t);
    return 0;
}

static void transport_poll_cb(uv_poll_t *p, int status, int events);

/* Polls for input, and for room to write while the socket is full. */
static void transport_poll(gw_transport_t *t)
{
    int events = UV_READABLE | (t->blocked ? UV_WRITABLE : 0);

    if (uv_poll_start(&t->poll, events, transport_poll_cb) != 0)
        gw_transport_close(t);
}

/* Reads once (the poll is level-triggered: more input fires again). */
static void transport_read(gw_transport_t *t)
{
    gw_transport_loop_t *l = t->loop;
    ssize_t n = t->ops->read(t, l->rbuf, l->rbuf_size);

    if (n == GW_EAGAIN)
        return;
    if (n <= 0) { /* end of stream, or a failure the ops logged */
        gw_transport_close(t);
        return;
    }
    gw_stat_add(l->stats, GW_STAT_BYTES_IN, n);
    if (!t->lingering)
        l->cb->on_data(t, l->rbuf, (size_t)n);
}

static void transport_poll_cb(uv_poll_t *p, int status, int events)
{
    gw_transport_t *t = p->data;

    if (status < 0) {
        gw_debug("transport fd %d: poll failed: %s", t->fd,
                 uv_strerror(status));
        gw_transport_close(t);
        return;
    }
    if ((events & UV_WRITABLE) && t->blocked) {
        t->blocked = 0;
        transport_poll(t);
        if (t->ops->writable != NULL)
            t->ops->writable(t);
        gw_transport_flush(t);
    }
    if ((events & (UV_READABLE | UV_DISCONNECT)) && !t->closed)
        transport_read(t);
}

int gw_transport_init(gw_transport_t *t, gw_transport_loop_t *l, int fd,
                      const gw_transport_ops_t *ops)
{
    int rc;

    *t = (gw_transport_t){.ops = ops, .loop = l, .fd = fd};
    if ((rc = uv_poll_init(l->loop, &t->poll, fd)) != 0) {
        close(fd);
        return rc;
    }
    t->poll.data = t;
    t->next = l->all;
    if (l->all != NULL)
        l->all->prev = t;
    l->all = t;
    gw_stat_add(l->stats, GW_STAT_CONNECTIONS, 1);
    gw_stat_add(l->stats, GW_STAT_CONNECTS, 1);
    if ((rc = uv_poll_start(&t->poll, UV_READABLE, transport_poll_cb)) != 0)
        gw_transport_close(t);
    return 0;
}

int gw_transport_adopt(gw_transport_t *t, gw_transport_loop_t *l, int fd,
                       gw_transport_state_t *state)
{
    int rc = gw_transport_init(t, l, fd, state->ops);

    /* No callback runs before the state is in: this is the loop's thread,
     * and the loop is not polling. */
    if (rc == 0)
        state->ops->adopt(t, state);
    else
        gw_transport_state_free(state);
    return rc;
}

void gw_transport_push_copy(gw_transport_t *t, const void *buf, size_t len)
{
    gw_frame_t *f = gw_frame_new(len);

    memcpy(f->data, buf, len);
    gw_transport_push(t, f, NULL, 0);
}

int gw_transport_admit(gw_transport_t *t, uint32_t room, uint32_t limit,
                       unsigned *dropped)
{
    *dropped = 0;
    if (t->ring.count < room)
        return 0;
    gw_transport_flush(t);
    if (t->closed)
        return GW_ECLOSED;
    if (t->ring.count < room)
        return 0;
    if (room < limit && ++t->shed < limit)
        return GW_EAGAIN;
    *dropped = gw_ring_discard_unsent(&t->ring, &t->loop->ring_pool, t->busy);
    return GW_EFULL;
}

/* The socket is full: wait until it can take more, then flush again. */
void gw_transport_wait_writable(gw_transport_t *t)
{
    if (t->blocked || t->closed)
        return;
    t->blocked = 1;
    transport_poll(t);
}

void gw_transport_flush(gw_transport_t *t)
{
    gw_transport_loop_t *l = t->loop;
    uv_buf_t iov[TRANSPORT_IOV];
    size_t nbytes;

    if (t->closed || t->blocked)
        return;
    while (t->ring.count > 0) {
        unsigned n = gw_ring_iov(&t->ring, iov, TRANSPORT_IOV, &nbytes);
        ssize_t r = t->ops->writev(t, (const struct iovec *)iov, n);
        if (r < 0) {
            if (r != GW_EAGAIN) /* a failure the ops logged */
                gw_transport_close(t);
            return;
        }
        gw_stat_add(l->stats, GW_STAT_BYTES_OUT, r);
        gw_ring_consume(&t->ring, &l->ring_pool, (size_t)r);
        if ((size_t)r < nbytes) {
            gw_transport_wait_writable(t);
            return;
        }
    }
    t->shed = 0; /* caught up */
    if (t->notify_drained)
        l->cb->on_drained(t);
}

void gw_transport_linger(gw_transport_t *t)
{
    if (t->lingering || t->closed)
        return;
    t->lingering = 1;
    if (t->ops->shutdown(t) != 0)
        gw_transport_close(t);
}

int gw_transport_peer(const gw_transport_t *t, struct sockaddr_storage *ss)
{
    socklen_t len = sizeof(*ss);

    return getpeername(t->fd, (struct sockaddr *)ss, &len) == 0 ? 0 : GW_EIO;
}

void gw_transport_peer_name(const gw_transport_t *t, char *out, size_t len)
{
    struct sockaddr_storage ss;

    if (gw_transport_peer(t, &ss) != 0)
        ss.ss_family = AF_UNSPEC;
    gw_addr_name((struct sockaddr *)&ss, 0, out, len);
}
