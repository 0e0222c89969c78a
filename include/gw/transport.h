/*
 * The transport: a byte stream to one client, beneath the WebSocket layer.
 *
 * A transport owns the socket and the connection's write ring; its loop
 * watches every socket in one epoll set. The layer above queues output into the
 * ring and asks for a flush; the transport writes each connection once per loop
 * turn (one vectored write), waits for the socket to become writable when it is
 * full, and reports back through the callbacks its loop's owner installed:
 * input, all output written, and the socket closed. It never names the
 * layer above.
 *
 * How bytes reach the wire is an implementation's: gw_transport_ops_t.
 * Plain TCP (tcp.c) writes the ring's bytes as they are; TLS (tls.c)
 * encrypts them into records, and has output of its own (the handshake)
 * that the writable op sends. Nothing above this file tells them apart.
 *
 * A loop may have an io_uring (uring.h, gw_transport_loop_uring): the
 * bytes of an implementation that writes them as they are (ops->plain)
 * then go out as one send per connection and loop turn, all of a turn's
 * in one submission, instead of through ops->writev. Such a connection has
 * at most one send in the kernel's hands (inflight), so bytes stay in
 * order; the ring keeps the entries it covers, referenced, until its
 * completion, which consumes what the kernel took and asks for another
 * flush for the rest; and a transport closed meanwhile is released only
 * after that completion (cancelled, if the peer does not read).
 *
 * An implementation with bytes of its own to send (ops->staged: TLS's
 * records) goes through the same ring: its writev stages them with
 * gw_transport_stage into the transport's output buffer (one from the
 * loop's pool, held while it has bytes), the ring's entries are consumed
 * as writev takes them, and the buffer goes out as that connection's one
 * send of the turn. The same rules hold: one send in flight, a short one
 * resumed at the next flush, the buffer kept until the completion, back
 * to the pool once all of it is sent.
 *
 * Behind a proxy that speaks the PROXY protocol (proxyproto.h), a socket
 * begins with a header naming the client the proxy relays: the transport
 * reads it first, beneath any implementation (a TLS ClientHello comes
 * after it), and from then on gw_transport_peer answers with the client's
 * address. Above this file nobody learns whether a header was read.
 *
 * The struct is embedded in its owner's (as a uv handle is), which frees it
 * in on_close, the last callback, and never before.
 *
 * The sockets are not libuv handles: a uv_poll_t each would cost 160 B of
 * every connection, and libuv's watcher array, indexed by fd, 8 B of every
 * fd number below the highest. Each loop has one epoll set instead, its fd
 * watched by one uv_poll_t, with the transport as each socket's
 * epoll_data; its callback takes a bounded batch of events (the set is
 * level-triggered: the rest come next turn) and dispatches them as a poll
 * handle's callback would. Closing is a flag, the socket taken off the set
 * at once and the transport queued for the flush, which releases it and
 * calls on_close (Redis's freeClientAsync): never on the stack of the
 * close, nor while the batch that may name it is being dispatched.
 */
#ifndef GW_TRANSPORT_H
#define GW_TRANSPORT_H

#include "gw/log.h"
#include "gw/ring.h"
#include "gw/stats.h"
#include "gw/uring.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <uv.h>

typedef struct gw_transport gw_transport_t;
typedef struct gw_transport_state gw_transport_state_t;
/* What a PROXY header said (transport.c). */
typedef struct gw_transport_proxy gw_transport_proxy_t;
/* Output an implementation staged for the io_uring (transport.c). */
typedef struct gw_transport_out gw_transport_out_t;

/*
 * The byte-level operations of one kind of transport, on a non-blocking
 * socket. read returns the bytes read, 0 at the peer's end of stream, or
 * GW_EAGAIN when nothing is there; writev the bytes taken (fewer than
 * given when the socket is full: the transport waits for writability), or
 * GW_EAGAIN when it cannot write yet and will ask for a flush itself. A
 * failure is GW_EIO, logged by the implementation, and closes the
 * transport.
 */
typedef struct gw_transport_ops {
    ssize_t (*read)(gw_transport_t *t, uint8_t *buf, size_t len);
    ssize_t (*writev)(gw_transport_t *t, const struct iovec *iov, unsigned n);
    int (*shutdown)(gw_transport_t *t); /* no more output (FIN) */
    /* The socket takes output again after gw_transport_wait_writable: an
     * implementation with output of its own sends it (NULL: none has). */
    void (*writable)(gw_transport_t *t);
    /* Frees t->impl, when the flush releases t (NULL: there is none). It may
     * be NULL by then: detach took it. */
    void (*close)(gw_transport_t *t);
    /* The socket is leaving for another loop (gw_transport_detach): the
     * implementation gives up its state to go with it, 0 with *state the
     * caller's and t->impl NULL, or refuses, GW_EAGAIN (logged), and t is
     * as it was. NULL: there is no state, the socket goes alone. */
    int (*detach)(gw_transport_t *t, gw_transport_state_t **state);
    /* Installs a state detach made, taken, into t: a transport of this
     * implementation just initialised on another loop. */
    void (*adopt)(gw_transport_t *t, gw_transport_state_t *state);
    /* Frees a state detach made that no loop adopted. */
    void (*free_state)(gw_transport_state_t *state);
    /* writev sends the ring's bytes as they are on t->fd, so that the
     * loop's io_uring may send them instead (plain TCP). */
    unsigned plain : 1;
    /* With the loop's io_uring, writev does not write: it stages what it
     * makes of the ring's bytes with gw_transport_stage, and takes fewer
     * than given once the staged buffer is full (TLS). */
    unsigned staged : 1;
} gw_transport_ops_t;

/*
 * What goes to another loop with a socket: an implementation's state
 * (TLS's session), opaque beyond the implementation, which embeds this
 * header, and the client's address a PROXY header named. A plain TCP
 * socket with such an address travels with a bare header (ops without
 * adopt nor free_state). Whoever holds it owns it, as they own the
 * socket; a holder that cannot pass it on frees it with
 * gw_transport_state_free.
 */
struct gw_transport_state {
    const gw_transport_ops_t *ops; /* the implementation it belongs to */
    gw_transport_proxy_t *proxy;   /* owned: the client's address, or NULL */
};

/* Frees a state in transit (NULL: nothing to free). Never touches the
 * socket it came with, which its holder closes. Any thread. */
void gw_transport_state_free(gw_transport_state_t *state);

/*
 * What the layer above is told. Every transport of a loop has the same
 * owner kind, so the table is the loop's; the owner embeds the transport
 * and finds itself from it (as libuv's handles are found).
 */
typedef struct gw_transport_cb {
    /* Input from the peer, any split; the bytes are valid during the call. */
    void (*on_data)(gw_transport_t *t, const uint8_t *buf, size_t len);
    /* Everything queued has been written (the ring is empty again), once
     * the owner asked with gw_transport_notify_drained. */
    void (*on_drained)(gw_transport_t *t);
    /* The socket is closed and off the loop: the last callback, after which
     * the owner may free the memory that holds the transport. */
    void (*on_close)(gw_transport_t *t);
    /* The peer's address, unknown when the transport opened
     * (gw_transport_peer said GW_EAGAIN), is known now: once, before any
     * on_data. NULL: the owner does not wait for it. */
    void (*on_peer)(gw_transport_t *t);
} gw_transport_cb_t;

/* The transports of one loop, and what they share. One thread only. */
typedef struct gw_transport_loop {
    uv_loop_t *loop;             /* borrowed */
    const gw_transport_cb_t *cb; /* the owner's callbacks */
    gw_stats_t *stats;           /* borrowed: bytes in and out, connections */
    gw_ring_pool_t ring_pool;    /* chunks of every transport's ring */
    gw_transport_t *all;         /* open transports */
    gw_transport_t *pending;     /* transports with output to write */
    uint8_t *rbuf;               /* owned: one read buffer, consumed at once */
    size_t rbuf_size;
    uint64_t turns; /* loop turns so far: one per gw_transport_loop_flush,
                       for implementations that bound their work per turn */
    void *ops_data; /* borrowed: the loop's share of implementations that
                       have one (TLS's gw_tls_loop_t), or NULL */
    gw_log_limit_t proxy_log; /* refused PROXY headers, rate-limited */
    gw_uring_t *uring;        /* owned: plain output goes through it, or NULL:
                                 every transport writes with ops->writev */
    gw_transport_out_t *out_free; /* owned: staged output buffers to reuse */
    unsigned out_nfree;           /* in out_free (a few: transport.c) */
    int epfd;        /* owned: the epoll set of the transports' sockets, made
                        with the first transport; -1 before */
    uv_poll_t epoll; /* on epfd, from then until gw_transport_loop_stop;
                        epoll.data = this */
} gw_transport_loop_t;

struct gw_transport {
    const gw_transport_ops_t *ops; /* the implementation */
    gw_transport_loop_t *loop;     /* borrowed */
    gw_transport_t *prev, *next;   /* in loop->all */
    gw_transport_t *next_pending;  /* in loop->pending while queued */
    gw_ring_t ring;                /* queued output */
    gw_transport_out_t *out;       /* owned: bytes staged and not yet sent
                                      (ops->staged), or NULL */
    void *impl;                    /* owned by the ops (TLS: the session) */
    /* Owned: the client's address a PROXY header named, or NULL for the
     * socket's own peer; while the header comes in pieces, those read. */
    gw_transport_proxy_t *proxy;
    uint32_t shed; /* frames refused since last caught up */
    /* Bytes at the head of the ring that the implementation has begun to
     * send and must send again as they are (a TLS record mbedtls built and
     * could not write whole), or that an io_uring send in flight covers:
     * they are not taken yet, and a shed keeps them. */
    uint32_t busy;
    int fd; /* owned: closed with the transport; in the loop's epoll set
               (epoll_data: this) from init until the close */
    unsigned queued : 1;         /* on loop->pending */
    unsigned blocked : 1;        /* socket full: waiting to be writable (the set
                                    watches it for EPOLLOUT too, else EPOLLIN) */
    unsigned lingering : 1;      /* FIN sent; input discarded until EOF */
    unsigned closed : 1;         /* off the epoll set; the flush releases it */
    unsigned notify_drained : 1; /* the owner waits for on_drained */
    unsigned detached : 1;       /* the fd was handed on: not closed */
    unsigned proxy_wait : 1;     /* the PROXY header is still to be read */
    unsigned inflight : 1;       /* an io_uring send holds `busy` bytes */
    unsigned parked : 1;         /* closed with a send in flight: its completion
                                    lets the flush release the transport */
};

/* Prepares a loop's transports; the read buffer is allocated here. */
void gw_transport_loop_init(gw_transport_loop_t *l, uv_loop_t *loop,
                            const gw_transport_cb_t *cb, gw_stats_t *stats,
                            unsigned max_free_chunks);

/*
 * Sends plain output through an io_uring from now on: the kernel's
 * (backend NULL), or the backend given, which takes ctx (uring.h). 0, or a
 * negative errno when the kernel gives no ring (nothing changes then).
 */
int gw_transport_loop_uring(gw_transport_loop_t *l,
                            const gw_uring_backend_t *backend, void *ctx);

/* Frees what the loop holds; its transports are gone, and
 * gw_transport_loop_stop ran while the loop did (it frees the ring and
 * closes the epoll set's handle; the set's fd is closed here). */
void gw_transport_loop_free(gw_transport_loop_t *l);

/*
 * Writes every transport that asked for a flush: called before the loop
 * polls (Redis's handleClientsWithPendingWrites), and it releases the
 * transports closed since, calling on_close (a closed transport with an
 * io_uring send in flight: once its completion came). With an io_uring,
 * the turn's sends go to the kernel in one submission here.
 */
void gw_transport_loop_flush(gw_transport_loop_t *l);

/*
 * The loop is stopping and will not flush again: the io_uring's sends are
 * completed or cancelled and the ring freed, every transport still queued
 * is taken off the flush list, the closed ones released (on_close), and
 * the epoll set's poll handle closed. Every transport is closed before
 * (a close after it is never released).
 */
void gw_transport_loop_stop(gw_transport_loop_t *l);

/* Calls fn(t, arg) for every open transport. */
void gw_transport_loop_each(gw_transport_loop_t *l,
                            void (*fn)(gw_transport_t *, void *), void *arg);

/*
 * Adopts the non-blocking socket fd with the given ops and starts reading.
 * Returns 0, or a libuv error (a negative errno: the loop's epoll set
 * cannot be made, or refuses fd) with fd closed and nothing to free.
 */
int gw_transport_init(gw_transport_t *t, gw_transport_loop_t *l, int fd,
                      const gw_transport_ops_t *ops);

/*
 * The socket, just opened on an accepted connection, begins with a PROXY
 * protocol header (proxyproto.h): it is read before anything reaches the
 * ops' read, the peer's address is the client's it names (on_peer tells
 * when), and a header that is malformed closes the transport, counted
 * (proxy_header_failures) and logged, rate-limited. The owner's upgrade
 * deadline bounds the wait for it, however it is split.
 */
void gw_transport_expect_proxy(gw_transport_t *t);

/* Asks for a flush before the loop next polls. */
static inline void gw_transport_want_flush(gw_transport_t *t)
{
    if (t->queued)
        return;
    t->queued = 1;
    t->next_pending = t->loop->pending;
    t->loop->pending = t;
}

/* Appends an entry to the ring (takes the caller's reference on frame) and
 * asks for a flush before the loop next polls. Inline: once per delivery. */
static inline void gw_transport_push(gw_transport_t *t, gw_frame_t *frame,
                                     const uint8_t *head, size_t hlen)
{
    gw_ring_push(&t->ring, &t->loop->ring_pool, frame, head, hlen);
    gw_transport_want_flush(t);
}

/* Entries queued and not yet written. */
static inline uint32_t gw_transport_queued(const gw_transport_t *t)
{
    return t->ring.count;
}

/* Queues a copy of len bytes that are already a complete wire unit. */
void gw_transport_push_copy(gw_transport_t *t, const void *buf, size_t len);

/*
 * Whether the ring can take one more frame when at most `room` of `limit`
 * entries may be queued: 0 when it can (written out first when it looks
 * full: it may be full only by this loop turn's count), GW_EAGAIN when the
 * frame is to be shed, or GW_EFULL once the ring stays at its limit or a
 * ring's worth of frames were shed: the unsent backlog is then dropped
 * (*dropped counts it) and the owner closes the connection.
 */
int gw_transport_admit(gw_transport_t *t, uint32_t room, uint32_t limit,
                       unsigned *dropped);

/*
 * Takes the socket off this loop without closing it, for another loop to
 * adopt. Its output must be all written, and an implementation with
 * state must give it up: GW_EAGAIN if not, and nothing is done. The
 * transport then closes as by gw_transport_close (on_close follows), but
 * the fd, returned in *fd, and the state, in *state, are the caller's:
 * NULL when the implementation has none and no PROXY header named the
 * client.
 */
int gw_transport_detach(gw_transport_t *t, int *fd,
                        gw_transport_state_t **state);

/*
 * Adopts a socket another loop detached, with the state that came with it
 * (taken), and starts reading: the transport carries on where it left
 * off. Same contract as gw_transport_init; the state is freed on failure.
 */
int gw_transport_adopt(gw_transport_t *t, gw_transport_loop_t *l, int fd,
                       gw_transport_state_t *state);

/* For implementations: whether writev is to stage its bytes now
 * (ops->staged, and the loop has an io_uring) rather than write them. */
static inline int gw_transport_staging(const gw_transport_t *t)
{
    return t->ops->staged && t->loop->uring != NULL;
}

/*
 * For implementations: appends up to len bytes to t's staged output, for
 * the flush to send. Returns the bytes taken: fewer, or 0, when the buffer
 * is full; the completion of the send in flight makes room, and asks for a
 * flush. Output staged outside a flush asks for one itself
 * (gw_transport_want_flush).
 */
size_t gw_transport_stage(gw_transport_t *t, const void *buf, size_t len);

/* Writes what is queued now (normally left to gw_transport_loop_flush). */
void gw_transport_flush(gw_transport_t *t);

/*
 * For implementations: the socket is full with output of their own; wait
 * until it can take more, then call ops->writable and flush.
 */
void gw_transport_wait_writable(gw_transport_t *t);

/*
 * Asks for on_drained at the end of every flush that leaves nothing
 * queued, from now on: a closing owner waits for it, and no one else pays
 * for the call.
 */
static inline void gw_transport_notify_drained(gw_transport_t *t)
{
    t->notify_drained = 1;
}

/*
 * Lingering close: sends FIN, then discards input until the peer's end of
 * stream closes the socket. A peer may still be sending (an upload past a
 * limit, the rest of a rejected request); closing with unread input would
 * make the kernel answer with a reset that can destroy our last bytes
 * before the peer reads them. The owner bounds the wait.
 */
void gw_transport_linger(gw_transport_t *t);

/* Closes the transport at once: only on_close follows, from the next
 * gw_transport_loop_flush. Harmless twice. */
void gw_transport_close(gw_transport_t *t);

/*
 * The peer's address into *ss: the client's, as a PROXY header named it,
 * or the socket's peer. 0, GW_EAGAIN while the PROXY header is still to
 * be read (on_peer follows), or GW_EIO.
 */
int gw_transport_peer(const gw_transport_t *t, struct sockaddr_storage *ss);

/* The peer's address as text ("?" when unknown) for log lines; the
 * proxy's while its PROXY header is still to be read. */
void gw_transport_peer_name(const gw_transport_t *t, char *out, size_t len);

#endif
