#include "gw/transport.h"

#include "gw/addr.h"
#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/log.h"
#include "gw/proxyproto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define TRANSPORT_IOV 64     /* buffers in one gathered write */
#define TRANSPORT_READ 65536 /* the loop's read buffer */
#define TRANSPORT_NOW 64     /* io_uring sends of one transport_flush_now */
/* A staged output buffer, its header included: four pages, a whole TLS
 * record of the largest size with room to spare (a record may also span
 * two buffers' sends: the implementation stages what fits). */
#define TRANSPORT_OUT 16384
/* Staged buffers a loop keeps for reuse. Few: a connection holds one only
 * from its flush to the send's completion, usually the next loop turn,
 * and those freed go back to the allocator, which hands them to the next
 * TLS session's record buffers (16 KiB each) rather than growing the heap
 * (gwbench idle, 2,000 TLS sessions: about 12.4 KB per session with a
 * pool of 4,096, 12.0-12.3 KB with this one, noisy). */
#define TRANSPORT_OUT_KEPT 64
/* Events taken from the epoll set in one loop turn, on the stack (6 KB):
 * bounded so that a turn still flushes and runs timers under a storm; the
 * set is level-triggered, so the rest come next turn. */
#define TRANSPORT_EVENTS 512

_Static_assert(TRANSPORT_READ >= GW_PROXYPROTO_MAX,
               "a PROXY header is read whole into the read buffer");

/*
 * What a PROXY header said: the client's address. While the header comes
 * in pieces, the pieces read so far follow it (a header read at once, the
 * usual case, never needs them).
 */
struct gw_transport_proxy {
    gw_sockaddr_t client;
    uint16_t len;   /* bytes of the header in part */
    uint8_t part[]; /* the header's first len bytes */
};

/*
 * Bytes an implementation staged (ops->staged), sent from `off`: the send
 * in flight covers `sending` bytes from there, and more may be staged
 * behind them meanwhile (the buffer never moves while the kernel holds
 * it). Back to the loop's pool once all is sent.
 */
struct gw_transport_out {
    gw_transport_out_t *next_free; /* in the loop's out_free */
    uint32_t off;                  /* bytes sent */
    uint32_t len;                  /* bytes staged */
    uint32_t sending;              /* bytes the send in flight covers */
    uint8_t data[];
};

#define TRANSPORT_OUT_CAP (TRANSPORT_OUT - sizeof(gw_transport_out_t))

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
    *l = (gw_transport_loop_t){
        .loop = loop, .cb = cb, .stats = stats, .epfd = -1};
    l->ring_pool.max_free = max_free_chunks;
    l->rbuf_size = TRANSPORT_READ;
    l->rbuf = gw_malloc(l->rbuf_size);
}

void gw_transport_loop_free(gw_transport_loop_t *l)
{
    while (l->out_free != NULL) {
        gw_transport_out_t *o = l->out_free;
        l->out_free = o->next_free;
        free(o);
    }
    l->out_nfree = 0;
    gw_ring_pool_free(&l->ring_pool);
    free(l->rbuf);
    l->rbuf = NULL;
    if (l->epfd >= 0)
        close(l->epfd);
    l->epfd = -1;
}

static void transport_closed(gw_transport_t *t);

/* Gives t's staged output buffer back to the loop's pool, or frees it. */
static void transport_out_drop(gw_transport_t *t)
{
    gw_transport_loop_t *l = t->loop;
    gw_transport_out_t *o = t->out;

    if (o == NULL)
        return;
    t->out = NULL;
    if (l->out_nfree >= TRANSPORT_OUT_KEPT) {
        free(o);
        return;
    }
    o->next_free = l->out_free;
    l->out_free = o;
    l->out_nfree++;
}

size_t gw_transport_stage(gw_transport_t *t, const void *buf, size_t len)
{
    gw_transport_loop_t *l = t->loop;
    gw_transport_out_t *o = t->out;
    size_t room;

    if (o == NULL) {
        if ((o = l->out_free) != NULL) {
            l->out_free = o->next_free;
            l->out_nfree--;
        } else
            o = gw_malloc(TRANSPORT_OUT);
        *o = (gw_transport_out_t){0};
        t->out = o;
    } else if (!t->inflight && o->off > 0) { /* what a short send left */
        memmove(o->data, o->data + o->off, o->len - o->off);
        o->len -= o->off;
        o->off = 0;
    }
    room = TRANSPORT_OUT_CAP - o->len;
    len = len < room ? len : room;
    memcpy(o->data + o->len, buf, len);
    o->len += (uint32_t)len;
    return len;
}

/* Takes every transport off the flush list: writes it (flush), or not
 * (the loop is stopping), and releases those closed since, a close
 * having queued them. */
static void transport_loop_pending(gw_transport_loop_t *l, int flush)
{
    while (l->pending != NULL) {
        gw_transport_t *t = l->pending;
        l->pending = t->next_pending;
        t->queued = 0;
        if (t->closed)
            transport_closed(t);
        else if (flush)
            gw_transport_flush(t);
    }
}

void gw_transport_loop_flush(gw_transport_loop_t *l)
{
    l->turns++;
    transport_loop_pending(l, 1);
    if (l->uring != NULL)
        gw_uring_submit(l->uring);
}

void gw_transport_loop_stop(gw_transport_loop_t *l)
{
    if (l->uring != NULL)
        gw_uring_drain(l->uring);
    transport_loop_pending(l, 0);
    gw_uring_free(l->uring);
    l->uring = NULL;
    if (l->epfd >= 0 && !uv_is_closing((uv_handle_t *)&l->epoll))
        uv_close((uv_handle_t *)&l->epoll, NULL);
}

void gw_transport_loop_each(gw_transport_loop_t *l,
                            void (*fn)(gw_transport_t *, void *), void *arg)
{
    gw_transport_t *t, *next;

    /* fn may close t: a closed transport is unlinked only at the flush. */
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

/* Every resource is released here, at the flush, never while a callback
 * is running. */
static void transport_release(gw_transport_t *t)
{
    gw_transport_loop_t *l = t->loop;

    if (t->ops->close != NULL)
        t->ops->close(t);
    if (!t->detached)
        close(t->fd);
    free(t->proxy);
    t->proxy = NULL;
    transport_out_drop(t);
    gw_ring_clear(&t->ring, &l->ring_pool);
    transport_unlink(t);
    gw_stat_add(l->stats, GW_STAT_CONNECTIONS, -1);
    gw_stat_add(l->stats, GW_STAT_CLOSES, 1);
    l->cb->on_close(t);
}

/* A closed transport at the flush: released, unless the kernel may still
 * read the ring's bytes and write the socket: the send is cancelled, and
 * its completion queues t for the flush again. */
static void transport_closed(gw_transport_t *t)
{
    if (!t->inflight) {
        transport_release(t);
        return;
    }
    if (!t->parked) {
        t->parked = 1;
        gw_uring_cancel(t->loop->uring, (uintptr_t)t);
    }
}

void gw_transport_close(gw_transport_t *t)
{
    if (t->closed)
        return;
    t->closed = 1;
    /* Off the set now rather than at close(2): a detached socket lives on
     * in another loop's set. It is in ours (init), so nothing can fail. */
    epoll_ctl(t->loop->epfd, EPOLL_CTL_DEL, t->fd, NULL);
    gw_transport_want_flush(t);
}

static void transport_flush_now(gw_transport_t *t);

int gw_transport_detach(gw_transport_t *t, int *fd,
                        gw_transport_state_t **state)
{
    int rc;

    *state = NULL;
    /* Through the io_uring, the owner's flush only queued the output. */
    if (t->loop->uring != NULL && (t->ops->plain || t->ops->staged) &&
        !t->closed)
        transport_flush_now(t);
    if (t->closed || t->ring.count > 0 || t->out != NULL || t->proxy_wait)
        return GW_EAGAIN;
    /* The implementation's state goes with the socket, or neither goes. */
    if (t->ops->detach != NULL && (rc = t->ops->detach(t, state)) != 0)
        return rc;
    /* And the client's address, in a bare state if there is no other. */
    if (t->proxy != NULL) {
        if (*state == NULL) {
            *state = gw_calloc(1, sizeof(**state));
            (*state)->ops = t->ops;
        }
        (*state)->proxy = t->proxy;
        t->proxy = NULL;
    }
    t->detached = 1;
    *fd = t->fd;
    gw_transport_close(t);
    return 0;
}

void gw_transport_state_free(gw_transport_state_t *state)
{
    if (state == NULL)
        return;
    free(state->proxy);
    state->proxy = NULL;
    if (state->ops->free_state != NULL)
        state->ops->free_state(state);
    else
        free(state); /* a bare one (gw_transport_detach) */
}

/* Polls for input, and for room to write while the socket is full. */
static void transport_poll(gw_transport_t *t)
{
    struct epoll_event ev = {.events = EPOLLIN | (t->blocked ? EPOLLOUT : 0u),
                             .data.ptr = t};

    if (epoll_ctl(t->loop->epfd, EPOLL_CTL_MOD, t->fd, &ev) != 0) {
        gw_debug("transport fd %d: epoll_ctl failed: %s", t->fd,
                 strerror(errno));
        gw_transport_close(t);
    }
}

/* ---- the PROXY header ---- */

void gw_transport_expect_proxy(gw_transport_t *t)
{
    t->proxy_wait = 1;
}

/* A header refused: counted, logged (rate-limited), and the socket
 * closed. rc is the parser's verdict, or GW_EIO for the socket's. */
static void transport_proxy_failed(gw_transport_t *t, int rc)
{
    gw_transport_loop_t *l = t->loop;
    char peer[GW_ADDR_NAME_MAX] = "?";

    gw_stat_add(l->stats, GW_STAT_PROXY_HEADER_FAILURES, 1);
    if (gw_log_on(GW_LOG_WARN))
        gw_transport_peer_name(t, peer, sizeof(peer));
    gw_log_limited(&l->proxy_log, GW_LOG_WARN,
                   "transport fd %d (from %s): PROXY protocol header refused: "
                   "%s; closed",
                   t->fd, peer,
                   rc == GW_ETOOBIG ? "longer than it may be"
                   : rc == GW_EIO   ? "the socket failed"
                                    : "malformed, or another protocol");
    gw_transport_close(t);
}

/* Keeps the header's first len bytes, at buf, for the next read. */
static void transport_proxy_keep(gw_transport_t *t, const uint8_t *buf,
                                 size_t len)
{
    t->proxy = gw_realloc(t->proxy, sizeof(*t->proxy) + len);
    memcpy(t->proxy->part, buf, len);
    t->proxy->len = (uint16_t)len;
}

/* The header is whole: what it said stays, its pieces go, and the owner
 * hears that the peer is known. */
static void transport_proxy_done(gw_transport_t *t, const gw_sockaddr_t *c)
{
    t->proxy_wait = 0;
    if (c->sa.sa_family == AF_UNSPEC) { /* the socket's own peer */
        free(t->proxy);
        t->proxy = NULL;
    } else {
        t->proxy = gw_realloc(t->proxy, sizeof(*t->proxy));
        t->proxy->client = *c;
        t->proxy->len = 0;
    }
    if (t->loop->cb->on_peer != NULL)
        t->loop->cb->on_peer(t);
}

/* Takes n bytes off the socket, into buf: bytes a peek has seen, all
 * there. 0 or GW_EIO. */
static int transport_proxy_take(gw_transport_t *t, uint8_t *buf, size_t n)
{
    ssize_t r;

    do
        r = recv(t->fd, buf, n, MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    return r == (ssize_t)n ? 0 : GW_EIO;
}

/* Looks at what the socket holds, leaving it there, into buf (room for
 * len): the bytes seen, 0 when none are there yet, or -1 at the end of
 * stream or a failure, with the transport closed. */
static ssize_t transport_proxy_peek(gw_transport_t *t, uint8_t *buf, size_t len)
{
    ssize_t n;

    do
        n = recv(t->fd, buf, len, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        return n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    gw_debug("transport fd %d: closed before its PROXY header", t->fd);
    gw_transport_close(t);
    return -1;
}

/*
 * Reads the PROXY header, and not one byte past it: what follows is the
 * implementation's (a TLS ClientHello that mbedtls reads from the socket
 * itself). So the socket is peeked at, behind the pieces kept before in
 * the loop's read buffer, and only the header's bytes are taken: all of
 * those peeked while it is incomplete (so that the level-triggered poll
 * does not fire again for them), else just its rest. Returns 1 once the
 * header is read and the transport still open, 0 while it waits or after
 * closing it.
 */
static int transport_proxy_read(gw_transport_t *t)
{
    uint8_t *buf = t->loop->rbuf;
    size_t have = t->proxy != NULL ? t->proxy->len : 0, used;
    gw_sockaddr_t client;
    ssize_t n;
    int rc;

    if (have > 0)
        memcpy(buf, t->proxy->part, have);
    if ((n = transport_proxy_peek(t, buf + have, GW_PROXYPROTO_MAX - have)) <=
        0)
        return 0;
    rc = gw_proxyproto_parse(buf, have + (size_t)n, &used, &client);
    if (rc != 0 && rc != GW_EAGAIN)
        goto Error;
    /* All that was peeked is the header's while it is incomplete. */
    if (rc == GW_EAGAIN)
        used = have + (size_t)n;
    if (transport_proxy_take(t, buf + have, used - have) != 0) {
        rc = GW_EIO;
        goto Error;
    }
    gw_stat_add(t->loop->stats, GW_STAT_BYTES_IN, (int64_t)(used - have));
    if (rc == GW_EAGAIN) {
        transport_proxy_keep(t, buf, used);
        return 0;
    }
    transport_proxy_done(t, &client);
    return !t->closed;
Error:
    transport_proxy_failed(t, rc);
    return 0;
}

/* Reads once (the poll is level-triggered: more input fires again). */
static void transport_read(gw_transport_t *t)
{
    gw_transport_loop_t *l = t->loop;
    ssize_t n;

    if (t->proxy_wait && !transport_proxy_read(t))
        return;
    n = t->ops->read(t, l->rbuf, l->rbuf_size);
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

/*
 * One socket's events, as a poll handle's callback has them from libuv: an
 * error closes (EPOLLERR: libuv's UV_EBADF), a hang-up is readable and
 * writable (the read or the write then learns how it ended). A transport
 * closed earlier in the batch is skipped: it is released only at the
 * flush, so its memory is still there.
 */
static void transport_event(gw_transport_t *t, uint32_t events)
{
    if (t->closed)
        return;
    if (events & EPOLLERR) {
        gw_debug("transport fd %d: socket error", t->fd);
        gw_transport_close(t);
        return;
    }
    if ((events & (EPOLLOUT | EPOLLHUP)) && t->blocked) {
        t->blocked = 0;
        transport_poll(t);
        if (t->ops->writable != NULL && !t->closed)
            t->ops->writable(t);
        gw_transport_flush(t);
    }
    if ((events & (EPOLLIN | EPOLLHUP)) && !t->closed)
        transport_read(t);
}

/* The epoll set is readable: a batch of its events, dispatched. */
static void transport_loop_poll_cb(uv_poll_t *p, int status, int events)
{
    gw_transport_loop_t *l = p->data;
    struct epoll_event ev[TRANSPORT_EVENTS];
    int n;

    (void)events;
    /* libuv stops a poll handle on an error; an epoll fd has none to
     * report, but if one came, watching again is all there is to do. */
    if (status < 0) {
        uv_poll_start(p, UV_READABLE, transport_loop_poll_cb);
        return;
    }
    do
        n = epoll_wait(l->epfd, ev, TRANSPORT_EVENTS, 0);
    while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++)
        transport_event(ev[i].data.ptr, ev[i].events);
}

/* The loop's epoll set and its poll handle, made with the first
 * transport: 0 or a libuv error. */
static int transport_loop_open(gw_transport_loop_t *l)
{
    int rc;

    if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return -errno;
    if ((rc = uv_poll_init(l->loop, &l->epoll, l->epfd)) != 0) {
        close(l->epfd);
        l->epfd = -1;
        return rc;
    }
    l->epoll.data = l;
    /* Starting a poll handle just made, for readability, cannot fail. */
    uv_poll_start(&l->epoll, UV_READABLE, transport_loop_poll_cb);
    return 0;
}

/* Puts fd in the loop's epoll set, for input: 0 or a libuv error. */
static int transport_watch(gw_transport_t *t)
{
    gw_transport_loop_t *l = t->loop;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = t};
    int rc;

    if (l->epfd < 0 && (rc = transport_loop_open(l)) != 0)
        return rc;
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, t->fd, &ev) == 0 ? 0 : -errno;
}

int gw_transport_init(gw_transport_t *t, gw_transport_loop_t *l, int fd,
                      const gw_transport_ops_t *ops)
{
    int rc;

    *t = (gw_transport_t){.ops = ops, .loop = l, .fd = fd};
    if ((rc = transport_watch(t)) != 0) {
        close(fd);
        return rc;
    }
    t->next = l->all;
    if (l->all != NULL)
        l->all->prev = t;
    l->all = t;
    gw_stat_add(l->stats, GW_STAT_CONNECTIONS, 1);
    gw_stat_add(l->stats, GW_STAT_CONNECTS, 1);
    return 0;
}

int gw_transport_adopt(gw_transport_t *t, gw_transport_loop_t *l, int fd,
                       gw_transport_state_t *state)
{
    int rc = gw_transport_init(t, l, fd, state->ops);

    if (rc != 0) {
        gw_transport_state_free(state);
        return rc;
    }
    /* No callback runs before the state is in: this is the loop's thread,
     * and the loop is not polling. */
    t->proxy = state->proxy;
    state->proxy = NULL;
    if (state->ops->adopt != NULL)
        state->ops->adopt(t, state);
    else
        free(state); /* a bare one (gw_transport_detach) */
    return 0;
}

void gw_transport_push_copy(gw_transport_t *t, const void *buf, size_t len)
{
    gw_frame_t *f = gw_frame_new(len);

    memcpy(f->data, buf, len);
    gw_transport_push(t, f, NULL, 0);
}

/*
 * Writes what is queued now and learns what was taken, as the sendmsg
 * loop of gw_transport_flush does: through the io_uring, each send is
 * submitted at once (with the turn's others) and reaped, and the next
 * follows while the kernel takes them whole. It stops when the kernel
 * holds a send (the socket is full) or everything is written; a full
 * ring is written in TRANSPORT_NOW sends at most.
 */
static void transport_flush_now(gw_transport_t *t)
{
    gw_uring_t *u = t->loop->uring;

    gw_transport_flush(t);
    for (int i = 0; u != NULL && t->inflight && i < TRANSPORT_NOW; i++) {
        gw_uring_submit(u);
        gw_uring_reap(u);
        if (t->inflight || t->closed || (t->ring.count == 0 && t->out == NULL))
            return;
        gw_transport_flush(t);
    }
}

int gw_transport_admit(gw_transport_t *t, uint32_t room, uint32_t limit,
                       unsigned *dropped)
{
    *dropped = 0;
    if (t->ring.count < room)
        return 0;
    transport_flush_now(t);
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

/* Everything queued is written: no shed owed, and the owner told if it
 * asked. */
static void transport_caught_up(gw_transport_t *t)
{
    t->shed = 0;
    if (t->notify_drained)
        t->loop->cb->on_drained(t);
}

/* One send of the ring's head through the loop's io_uring, unless one is
 * in flight: its completion asks for the next. */
static void transport_uring_flush(gw_transport_t *t)
{
    gw_uring_t *u = t->loop->uring;
    struct iovec *iov;
    size_t nbytes;
    unsigned n;

    if (t->inflight)
        return;
    if (t->ring.count == 0) {
        transport_caught_up(t);
        return;
    }
    iov = gw_uring_iov(u);
    n = gw_ring_iov(&t->ring, (uv_buf_t *)iov, GW_URING_IOV, &nbytes);
    t->busy = (uint32_t)nbytes; /* GW_URING_IOV frames: far below 4 GB */
    t->inflight = 1;
    gw_uring_send(u, t->fd, n, (uintptr_t)t);
}

/* What the kernel took of t's staged output is sent: the buffer goes back
 * to the pool once all of it is. */
static void transport_out_consume(gw_transport_t *t, size_t n)
{
    t->out->off += (uint32_t)n;
    if (t->out->off == t->out->len)
        transport_out_drop(t);
}

/*
 * A send completed (data is the loop): what the kernel took is consumed (of
 * the ring, or of the staged buffer),
 * a short send resumes from where it stopped at the next flush, and a
 * failure closes the transport. A closed transport only learns that the
 * kernel is done with its bytes.
 */
static void transport_sent_cb(void *data, uint64_t user_data, int32_t res)
{
    gw_transport_t *t = (gw_transport_t *)(uintptr_t)user_data;
    gw_transport_loop_t *l = data;
    int plain = t->ops->plain; /* else staged: its own buffer, its bytes
                                  counted as writev took them */
    size_t sent = plain ? t->busy : t->out->sending;

    t->inflight = 0;
    if (plain) {
        t->busy = 0;
        if (res > 0)
            gw_stat_add(l->stats, GW_STAT_BYTES_OUT, res);
    }
    if (t->closed) {
        if (t->parked) /* released by the flush, never inside a reap */
            gw_transport_want_flush(t);
        return;
    }
    if (res < 0) {
        gw_debug("transport fd %d: send failed: %s", t->fd, strerror(-res));
        gw_transport_close(t);
        return;
    }
    if (plain)
        gw_ring_consume(&t->ring, &l->ring_pool, (size_t)res);
    else
        transport_out_consume(t, (size_t)res);
    if ((size_t)res < sent)
        gw_stat_add(l->stats, GW_STAT_URING_PARTIAL, 1);
    if (t->ring.count > 0 || t->out != NULL)
        gw_transport_want_flush(t);
    else
        transport_caught_up(t);
}

int gw_transport_loop_uring(gw_transport_loop_t *l,
                            const gw_uring_backend_t *backend, void *ctx)
{
    int err = 0;

    l->uring = gw_uring_new(l->loop, l->stats, backend, ctx, transport_sent_cb,
                            l, &err);
    return l->uring != NULL ? 0 : err;
}

/*
 * Hands the ring's bytes to ops->writev until it has taken them all (0),
 * takes fewer than given (GW_EFULL), cannot write yet (GW_EAGAIN), or
 * fails (GW_EIO: the transport is closed).
 */
static int transport_writev(gw_transport_t *t)
{
    gw_transport_loop_t *l = t->loop;
    uv_buf_t iov[TRANSPORT_IOV];
    size_t nbytes;

    while (t->ring.count > 0) {
        unsigned n = gw_ring_iov(&t->ring, iov, TRANSPORT_IOV, &nbytes);
        ssize_t r = t->ops->writev(t, (const struct iovec *)iov, n);
        if (r < 0) {
            if (r == GW_EAGAIN)
                return GW_EAGAIN;
            gw_transport_close(t); /* a failure the ops logged */
            return GW_EIO;
        }
        gw_stat_add(l->stats, GW_STAT_BYTES_OUT, r);
        gw_ring_consume(&t->ring, &l->ring_pool, (size_t)r);
        if ((size_t)r < nbytes)
            return GW_EFULL;
    }
    return 0;
}

/*
 * An implementation's own output through the io_uring: writev stages what
 * it makes of the ring's bytes (until the buffer is full), and the staged
 * bytes go out as one send, unless one is in flight: its completion asks
 * for the next flush.
 */
static void transport_staged_flush(gw_transport_t *t)
{
    gw_uring_t *u = t->loop->uring;
    gw_transport_out_t *o;
    struct iovec *iov;
    int rc;

    if (t->inflight)
        return;
    if ((rc = transport_writev(t)) == GW_EIO)
        return;
    if ((o = t->out) == NULL) {
        if (rc == 0)
            transport_caught_up(t);
        return;
    }
    iov = gw_uring_iov(u);
    iov[0] = (struct iovec){o->data + o->off, o->len - o->off};
    o->sending = o->len - o->off;
    t->inflight = 1;
    gw_uring_send(u, t->fd, 1, (uintptr_t)t);
}

void gw_transport_flush(gw_transport_t *t)
{
    gw_transport_loop_t *l = t->loop;
    int rc;

    if (t->closed || t->blocked)
        return;
    if (l->uring != NULL && t->ops->plain) {
        transport_uring_flush(t);
        return;
    }
    if (gw_transport_staging(t)) {
        transport_staged_flush(t);
        return;
    }
    if ((rc = transport_writev(t)) == GW_EFULL)
        gw_transport_wait_writable(t);
    else if (rc == 0)
        transport_caught_up(t);
}

void gw_transport_linger(gw_transport_t *t)
{
    if (t->lingering || t->closed)
        return;
    t->lingering = 1;
    if (t->ops->shutdown(t) != 0)
        gw_transport_close(t);
}

/* The socket's own peer into *ss: 0 or GW_EIO. */
static int transport_socket_peer(const gw_transport_t *t,
                                 struct sockaddr_storage *ss)
{
    socklen_t len = sizeof(*ss);

    return getpeername(t->fd, (struct sockaddr *)ss, &len) == 0 ? 0 : GW_EIO;
}

int gw_transport_peer(const gw_transport_t *t, struct sockaddr_storage *ss)
{
    if (t->proxy_wait)
        return GW_EAGAIN;
    if (t->proxy == NULL)
        return transport_socket_peer(t, ss);
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &t->proxy->client, sizeof(t->proxy->client));
    return 0;
}

void gw_transport_peer_name(const gw_transport_t *t, char *out, size_t len)
{
    struct sockaddr_storage ss;
    int rc = gw_transport_peer(t, &ss);

    if (rc == GW_EAGAIN) /* the proxy, until its header names the client */
        rc = transport_socket_peer(t, &ss);
    if (rc != 0)
        ss.ss_family = AF_UNSPEC;
    gw_addr_name((struct sockaddr *)&ss, 0, out, len);
}
