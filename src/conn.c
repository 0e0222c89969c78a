#include "gw/conn.h"

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/index.h"
#include "gw/log.h"
#include "gw/proto.h"
#include "gw/ws.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* How long a closing connection waits for its close frame to be written and
 * answered before the socket is closed regardless (RFC 6455 7.1.1). */
#define CONN_CLOSE_TIMEOUT_MS 3000
#define CONN_WRITE_IOV 64

/* conn_send() hands libuv's buffers to sendmsg as they are: on Unix a
 * uv_buf_t is laid out as a struct iovec (libuv relies on it too). */
_Static_assert(sizeof(uv_buf_t) == sizeof(struct iovec) &&
                   offsetof(uv_buf_t, base) ==
                       offsetof(struct iovec, iov_base) &&
                   offsetof(uv_buf_t, len) == offsetof(struct iovec, iov_len),
               "uv_buf_t is not an iovec");

static void conn_close_cb(uv_handle_t *h);

void gw_conn_session_hex(const gw_conn_t *c,
                         char out[2 * GW_SESSION_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";

    for (int i = 0; i < GW_SESSION_ID_LEN; i++) {
        out[2 * i] = hex[c->session[i] >> 4];
        out[2 * i + 1] = hex[c->session[i] & 15];
    }
    out[2 * GW_SESSION_ID_LEN] = '\0';
}

static void conn_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    gw_conn_t *c = h->data;
    (void)hint;

    *buf = uv_buf_init((char *)c->worker->rbuf, GW_READ_BUF);
}

/* Queues bytes that are already a complete wire unit (HTTP response). */
static void conn_send_raw(gw_conn_t *c, const void *data, size_t len)
{
    gw_frame_t *f = gw_frame_new(len);

    memcpy(f->data, data, len);
    gw_ring_push(&c->ring, &c->worker->ring_pool, f, NULL, 0);
    gw_worker_want_flush(c->worker, c);
}

void gw_conn_send_text(gw_conn_t *c, const char *json, size_t len)
{
    uint8_t head[10];
    size_t hlen;
    gw_frame_t *f;

    if (c->state != GW_CONN_OPEN || !gw_conn_has_room(c))
        return;
    hlen = gw_frame_header(head, WSLAY_TEXT_FRAME, len);
    f = gw_frame_new(hlen + len);
    memcpy(f->data, head, hlen);
    memcpy(f->data + hlen, json, len);
    gw_ring_push(&c->ring, &c->worker->ring_pool, f, NULL, 0);
    gw_stat_add(&c->worker->stats, GW_STAT_FRAMES_OUT, 1);
    gw_worker_want_flush(c->worker, c);
}

/* The ring is full: drop its backlog and close (SPEC 4010). */
static void conn_slow_consumer(gw_conn_t *c)
{
    gw_worker_t *w = c->worker;
    unsigned dropped =
        gw_ring_discard_unsent(&c->ring, &w->ring_pool, c->inflight);

    gw_stat_add(&w->stats, GW_STAT_RING_DROPS, dropped);
    gw_stat_add(&w->stats, GW_STAT_SLOW_CONSUMER_CLOSES, 1);
    gw_log_limited(&w->slow_log, GW_LOG_WARN,
                   "conn %" PRIu64 ": slow consumer, %u queued frames dropped",
                   c->id, dropped);
    gw_conn_close(c, GW_CLOSE_SLOW_CONSUMER, "slow consumer");
}

/*
 * Eighths of the ring at which an event of each priority is shed instead of
 * queued: low priorities go first under pressure (seed 002), critical ones
 * only meet the slow-consumer close.
 */
static const uint8_t conn_shed_eighths[5] = {8, 8, 7, 6, 4};
static const gw_stat_t conn_shed_stat[5] = {0, 0, GW_STAT_SHED_P2,
                                            GW_STAT_SHED_P3, GW_STAT_SHED_P4};

/*
 * Whether the ring can take an event of priority p: written out first when
 * it looks full (it may be full only by the count of this loop turn), then
 * shed or, at the limit or after a ring's worth of shedding, closed 4010.
 */
static int conn_admit(gw_conn_t *c, int p)
{
    uint32_t limit = c->worker->cfg->write_ring_size;
    uint32_t room = (uint32_t)((uint64_t)limit * conn_shed_eighths[p] / 8);

    if (c->ring.count < room)
        return 1;
    gw_conn_flush(c);
    if (c->state != GW_CONN_OPEN)
        return 0;
    if (c->ring.count < room)
        return 1;
    if (room < limit && ++c->shed < limit) {
        gw_stat_add(&c->worker->stats, conn_shed_stat[p], 1);
        return 0;
    }
    conn_slow_consumer(c);
    return 0;
}

int gw_conn_has_room(gw_conn_t *c)
{
    return conn_admit(c, 1);
}

/* Writes {"seq":N, into out (at least 28 bytes); returns its length. By
 * hand, because snprintf cost more than the rest of a dispatch. */
static size_t conn_seq_prefix(char *out, uint64_t seq)
{
    char digits[20];
    size_t n = 0, len = sizeof("{\"seq\":") - 1;

    do
        digits[n++] = (char)('0' + seq % 10);
    while ((seq /= 10) != 0);
    memcpy(out, "{\"seq\":", len);
    while (n > 0)
        out[len++] = digits[--n];
    out[len++] = ',';
    return len;
}

void gw_conn_dispatch(gw_conn_t *c, const gw_event_t *ev)
{
    uint8_t head[GW_RING_HEAD_MAX];
    char seq[32];
    size_t hlen, slen;

    if (c->state != GW_CONN_OPEN || !c->identified)
        return;
    if (ev->has_exclude &&
        memcmp(ev->exclude, c->session, GW_SESSION_ID_LEN) == 0)
        return;
    if (!conn_admit(c, ev->priority))
        return;
    /* The per-recipient part: frame header and {"seq":N, before the body
     * that every recipient shares. */
    slen = conn_seq_prefix(seq, ++c->seq);
    hlen = gw_frame_header(head, WSLAY_TEXT_FRAME, slen + ev->body->len);
    memcpy(head + hlen, seq, slen);
    gw_ring_push(&c->ring, &c->worker->ring_pool, gw_frame_ref(ev->body), head,
                 hlen + slen);
    gw_stat_add(&c->worker->stats, GW_STAT_FRAMES_OUT, 1);
    gw_worker_want_flush(c->worker, c);
}

void gw_conn_close(gw_conn_t *c, uint16_t code, const char *reason)
{
    gw_worker_t *w = c->worker;

    if (c->state == GW_CONN_HANDSHAKE) {
        gw_conn_abort(c);
        return;
    }
    if (c->state != GW_CONN_OPEN)
        return;
    if (code != 0)
        gw_info("conn %" PRIu64 ": closing with %u (%s)", c->id, code,
                reason ? reason : "");
    c->state = GW_CONN_CLOSING;
    gw_ws_close(c, code, reason);
    gw_wheel_add(&w->wheel, &c->timer,
                 gw_worker_now(w) + CONN_CLOSE_TIMEOUT_MS);
    gw_worker_want_flush(w, c);
}

void gw_conn_abort(gw_conn_t *c)
{
    if (c->closed)
        return;
    c->closed = 1;
    if (c->state == GW_CONN_OPEN)
        c->state = GW_CONN_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
}

/* Every resource is released here, never while a callback is running. */
static void conn_close_cb(uv_handle_t *h)
{
    gw_conn_t *c = h->data;
    gw_worker_t *w = c->worker;

    gw_wheel_del(&c->timer);
    if (c->identified)
        gw_stat_add(&w->stats, GW_STAT_SESSIONS, -1);
    gw_stat_add(&w->stats, GW_STAT_CONNECTIONS, -1);
    gw_index_remove(w, c);
    gw_ring_clear(&c->ring, &w->ring_pool);
    gw_ws_release(c);
    if (c->hs != NULL) {
        gw_handshake_free(c->hs);
        free(c->hs);
    }
    for (uint32_t i = 0; i < c->nallowed; i++)
        free(c->allowed[i]);
    free(c->allowed);
    if (c->peer != NULL)
        gw_peers_release(w->srv->peers, c->peer);
    /* A connection still on the flush list is freed by the flush. */
    c->released = 1;
    if (!c->queued)
        free(c);
}

static void conn_shutdown_cb(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

/*
 * Lingering close: the peer may still be sending (an upload past the limit,
 * the rest of a rejected request). Closing with unread input would make the
 * kernel answer with a reset that can destroy our last bytes before the peer
 * reads them, so send FIN, discard input until the peer's EOF, and let the
 * close deadline bound the wait.
 */
static void conn_linger(gw_conn_t *c)
{
    uv_shutdown_t *req;

    if (c->lingering)
        return;
    c->lingering = 1;
    req = gw_malloc(sizeof(*req));
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, conn_shutdown_cb) != 0) {
        free(req);
        gw_conn_abort(c);
    }
}

/* All output is written: finish a rejection or a completed close. */
static void conn_drained(gw_conn_t *c)
{
    if (c->state == GW_CONN_CLOSING && c->ws != NULL &&
        wslay_event_get_close_received(c->ws))
        gw_conn_abort(c); /* a clean close handshake: nothing more comes */
    else if (c->state == GW_CONN_REJECTED ||
             (c->state == GW_CONN_CLOSING && gw_ws_close_done(c)))
        conn_linger(c);
}

static void conn_write_cb(uv_write_t *req, int status)
{
    gw_conn_t *c = req->data;

    free(req);
    if (c->closed)
        return;
    if (status < 0) {
        gw_debug("conn %" PRIu64 ": write failed: %s", c->id,
                 uv_strerror(status));
        gw_conn_abort(c);
        return;
    }
    gw_stat_add(&c->worker->stats, GW_STAT_BYTES_OUT, (int64_t)c->inflight);
    gw_ring_consume(&c->ring, &c->worker->ring_pool, c->inflight);
    c->inflight = 0;
    gw_conn_flush(c);
}

/* The socket is full: hand what is left to libuv to write when it can. */
static void conn_write_rest(gw_conn_t *c)
{
    uv_buf_t iov[CONN_WRITE_IOV];
    uv_write_t *req = gw_malloc(sizeof(*req));
    unsigned n = gw_ring_iov(&c->ring, iov, CONN_WRITE_IOV, &c->inflight);

    req->data = c;
    if (uv_write(req, (uv_stream_t *)&c->tcp, iov, n, conn_write_cb) != 0) {
        free(req);
        c->inflight = 0;
        gw_conn_abort(c);
    }
}

/*
 * One gathered write straight to the socket; returns the bytes taken, 0 when
 * the socket is full, or a negative libuv error. sendmsg rather than
 * uv_try_write's writev: it skips the VFS write path (fdget_pos, vfs_writev,
 * sock_write_iter), 8 % of the server's CPU in a fan-out profile
 * (bench/README.md). Only called with nothing queued in libuv, so the bytes
 * stay in order.
 */
static ssize_t conn_send(gw_conn_t *c, uv_buf_t *iov, unsigned n)
{
    struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = n};
    uv_os_fd_t fd;
    ssize_t r;

    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
        return UV_EBADF;
    do
        r = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    if (r >= 0)
        return r;
    return errno == EAGAIN || errno == EWOULDBLOCK
               ? 0
               : uv_translate_sys_error(errno);
}

void gw_conn_flush(gw_conn_t *c)
{
    gw_worker_t *w = c->worker;
    uv_buf_t iov[CONN_WRITE_IOV];
    size_t nbytes;

    if (c->closed || c->inflight > 0)
        return;
    while (c->ring.count > 0) {
        unsigned n = gw_ring_iov(&c->ring, iov, CONN_WRITE_IOV, &nbytes);
        ssize_t r = conn_send(c, iov, n);
        if (r < 0) {
            gw_debug("conn %" PRIu64 ": write failed: %s", c->id,
                     uv_strerror((int)r));
            gw_conn_abort(c);
            return;
        }
        gw_stat_add(&w->stats, GW_STAT_BYTES_OUT, r);
        gw_ring_consume(&c->ring, &w->ring_pool, (size_t)r);
        if ((size_t)r < nbytes) {
            conn_write_rest(c);
            return;
        }
    }
    c->shed = 0; /* caught up */
    conn_drained(c);
}

/* Answers with an HTTP error and closes once it is written. */
static void conn_refuse(gw_conn_t *c, int status)
{
    char buf[512];
    size_t n = gw_handshake_reject(status, buf, sizeof(buf));

    c->state = GW_CONN_REJECTED;
    conn_send_raw(c, buf, n);
    gw_wheel_add(&c->worker->wheel, &c->timer,
                 gw_worker_now(c->worker) + CONN_CLOSE_TIMEOUT_MS);
}

static void conn_reject(gw_conn_t *c, int status)
{
    gw_stat_add(&c->worker->stats, GW_STAT_HANDSHAKE_FAILURES, 1);
    gw_log_limited(&c->worker->reject_log, GW_LOG_INFO,
                   "conn %" PRIu64 ": upgrade rejected with %d", c->id, status);
    conn_refuse(c, status);
}

/* The upgrade was accepted: answer 101, arm the heartbeat, send ready. */
static void conn_upgrade(gw_conn_t *c)
{
    gw_worker_t *w = c->worker;
    char buf[256];
    size_t n = gw_handshake_accept(c->hs, buf, sizeof(buf));
    char *token = c->hs->token;
    uint64_t now = gw_worker_now(w);

    c->hs->token = NULL;
    gw_handshake_free(c->hs);
    free(c->hs);
    c->hs = NULL;
    conn_send_raw(c, buf, n);
    c->state = GW_CONN_OPEN;
    gw_bucket_init(&c->events, now, w->cfg->event_burst);
    c->last_ack_ms = now;
    c->next_hb_ms = now + w->cfg->heartbeat_interval_ms;
    gw_wheel_add(&w->wheel, &c->timer, c->next_hb_ms);
    gw_proto_open(c, token);
    free(token);
}

static void conn_handshake(gw_conn_t *c, const uint8_t *buf, size_t len)
{
    size_t consumed = 0;
    int rc = gw_handshake_feed(c->hs, (const char *)buf, len, &consumed);

    if (rc == GW_EAGAIN)
        return;
    if (rc != 0) {
        conn_reject(c, c->hs->status);
        return;
    }
    conn_upgrade(c);
    if (consumed < len && c->state == GW_CONN_OPEN)
        gw_ws_feed(c, buf + consumed, len - consumed);
}

/*
 * Plaintext from the transport: the upgrade request, then WebSocket frames.
 * This and gw_conn_flush's write are the transport seam: TLS decrypts
 * before this call and encrypts the ring's bytes in the flush, and nothing
 * above (ws, proto) changes.
 */
static void conn_input(gw_conn_t *c, const uint8_t *buf, size_t len)
{
    switch (c->state) {
    case GW_CONN_HANDSHAKE: conn_handshake(c, buf, len); break;
    case GW_CONN_OPEN:
    case GW_CONN_CLOSING: gw_ws_feed(c, buf, len); break;
    default: break;
    }
    /* A close may have completed without new output: let the flush decide. */
    if (c->state == GW_CONN_CLOSING)
        gw_worker_want_flush(c->worker, c);
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    gw_conn_t *c = s->data;

    if (nread < 0) {
        gw_conn_abort(c);
        return;
    }
    gw_stat_add(&c->worker->stats, GW_STAT_BYTES_IN, nread);
    if (!c->lingering)
        conn_input(c, (const uint8_t *)buf->base, (size_t)nread);
}

/*
 * Counts the connection against its address (server.max_connections_per_ip)
 * and refuses it with 429 when the address has its fill; the refusal is
 * written and the socket closed as for any rejected upgrade.
 */
static void conn_count_address(gw_conn_t *c)
{
    gw_worker_t *w = c->worker;
    uint32_t limit = w->cfg->max_connections_per_ip;
    struct sockaddr_storage ss;
    char name[64] = "?";
    int len = sizeof(ss);

    if (limit == 0 ||
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0 ||
        (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
        return;
    c->peer = gw_peers_take(w->srv->peers, (struct sockaddr *)&ss, limit);
    if (c->peer != NULL)
        return;
    gw_stat_add(&w->stats, GW_STAT_ADDRESS_LIMITED, 1);
    if (gw_log_on(GW_LOG_WARN))
        uv_ip_name((struct sockaddr *)&ss, name, sizeof(name));
    gw_log_limited(&w->reject_log, GW_LOG_WARN,
                   "conn %" PRIu64 ": %s has %" PRIu32
                   " connections open (server.max_connections_per_ip); "
                   "refused with 429",
                   c->id, name, limit);
    conn_refuse(c, 429);
}

void gw_conn_accept(gw_worker_t *w, int fd)
{
    gw_conn_t *c = gw_calloc(1, sizeof(*c));
    int rc;

    c->worker = w;
    c->id = (w->next_conn_id++ << 8) | (uint64_t)w->id;
    c->tcp.data = c;
    uv_tcp_init(&w->loop, &c->tcp);
    if ((rc = uv_tcp_open(&c->tcp, fd)) != 0) {
        gw_warn("worker %d: cannot adopt socket: %s", w->id, uv_strerror(rc));
        close(fd);
        c->closed = 1;
        uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
        return;
    }
    gw_stat_add(&w->stats, GW_STAT_CONNECTIONS, 1);
    uv_tcp_nodelay(&c->tcp, 1);
    if (getrandom(c->session, sizeof(c->session), 0) != sizeof(c->session)) {
        gw_error("getrandom failed");
        abort();
    }
    c->hs = gw_malloc(sizeof(*c->hs));
    gw_handshake_init(c->hs, w->cfg->max_header_size);
    gw_wheel_add(&w->wheel, &c->timer,
                 gw_worker_now(w) + w->cfg->handshake_timeout_ms);
    uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb);
    conn_count_address(c);
}

/* Heartbeat bookkeeping of an open session (SPEC 3, step 5). */
static void conn_heartbeat(gw_conn_t *c, uint64_t now)
{
    uint64_t interval = c->worker->cfg->heartbeat_interval_ms;
    uint64_t dead = c->last_ack_ms + 2 * interval;

    if (now >= dead) {
        gw_conn_close(c, GW_CLOSE_SESSION_TIMEOUT, "session timed out");
        return;
    }
    if (now >= c->next_hb_ms) {
        gw_proto_heartbeat(c);
        c->next_hb_ms = now + interval;
    }
    gw_wheel_add(&c->worker->wheel, &c->timer,
                 c->next_hb_ms < dead ? c->next_hb_ms : dead);
}

void gw_conn_timeout(gw_conn_t *c)
{
    switch (c->state) {
    case GW_CONN_HANDSHAKE:
        gw_stat_add(&c->worker->stats, GW_STAT_HANDSHAKE_FAILURES, 1);
        gw_log_limited(&c->worker->reject_log, GW_LOG_INFO,
                       "conn %" PRIu64 ": handshake timed out", c->id);
        gw_conn_abort(c);
        break;
    case GW_CONN_OPEN:
        /* While draining, the deadline is this connection's drain slot. */
        if (c->worker->draining)
            gw_conn_close(c, GW_CLOSE_DRAINING, "server draining");
        else
            conn_heartbeat(c, gw_worker_now(c->worker));
        break;
    default: gw_conn_abort(c);
    }
}
