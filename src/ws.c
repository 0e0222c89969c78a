#include "gw/ws.h"

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/log.h"
#include "gw/proto.h"

#include <stdlib.h>
#include <string.h>

#define WS_POOL_MAX 64 /* idle contexts a worker keeps for reuse */

/*
 * Reads the header at p (avail bytes): 0 with the header and payload
 * lengths, GW_EAGAIN when the header is incomplete, or GW_EPARSE for the
 * frame-level violations wslay would only answer with a status-less close:
 * a fragmented or oversized control frame, a length not minimally encoded.
 */
static int ws_header(const uint8_t *p, size_t avail, size_t *hlen,
                     uint64_t *plen)
{
    uint64_t len;

    if (avail < 2)
        return GW_EAGAIN;
    len = p[1] & 0x7f;
    *hlen = 2 + ((p[1] & 0x80) ? 4 : 0) + (len == 126 ? 2 : len == 127 ? 8 : 0);
    if (avail < *hlen)
        return GW_EAGAIN;
    if (len == 126) {
        len = (uint64_t)p[2] << 8 | p[3];
        if (len < 126)
            return GW_EPARSE;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        if (len <= 0xffff || len >> 63)
            return GW_EPARSE;
    }
    if ((p[0] & 0x08) && (!(p[0] & 0x80) || len > 125))
        return GW_EPARSE;
    *plen = len;
    return 0;
}

int gw_ws_scan(const uint8_t *buf, size_t len, uint64_t max_payload, int *frag,
               size_t *complete, size_t *need)
{
    size_t pos = 0, hlen;
    uint64_t plen;
    int rc;

    *need = 0;
    while ((rc = ws_header(buf + pos, len - pos, &hlen, &plen)) == 0) {
        if (plen > max_payload) {
            rc = GW_ETOOBIG;
            break;
        }
        if (len - pos < hlen + plen) {
            *need = hlen + (size_t)plen;
            break;
        }
        if ((buf[pos] & 0x0f) < 8) /* control frames never change it */
            *frag = !(buf[pos] & 0x80);
        pos += hlen + (size_t)plen;
    }
    *complete = pos;
    return rc == GW_EAGAIN ? 0 : rc;
}

static wslay_event_context_ptr ws_borrow(gw_conn_t *c)
{
    gw_worker_t *w = c->worker;

    if (c->ws != NULL)
        return c->ws;
    if (w->ws_pool_len > 0) {
        c->ws = w->ws_pool[--w->ws_pool_len];
        return c->ws;
    }
    if (wslay_event_context_server_init(&c->ws, &w->ws_callbacks, w) != 0) {
        gw_error("worker %d: out of memory for a wslay context", w->id);
        abort();
    }
    wslay_event_config_set_max_recv_msg_length(c->ws, w->cfg->max_message_size);
    return c->ws;
}

/* Returns the context to the pool when it holds no state of this peer. */
static void ws_maybe_return(gw_conn_t *c)
{
    gw_worker_t *w = c->worker;

    if (c->ws == NULL || c->state != GW_CONN_OPEN || c->frag ||
        c->partial_len > 0 || wslay_event_want_write(c->ws))
        return;
    if (w->ws_pool_len < WS_POOL_MAX)
        w->ws_pool[w->ws_pool_len++] = c->ws;
    else
        wslay_event_context_free(c->ws);
    c->ws = NULL;
}

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                          int flags, void *data)
{
    gw_worker_t *w = data;
    (void)flags;

    if (w->in_len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (len > w->in_len)
        len = w->in_len;
    memcpy(buf, w->in, len);
    w->in += len;
    w->in_len -= len;
    return (ssize_t)len;
}

/* wslay's own output (pong, close) joins the ring as private frames. */
static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
                          size_t len, int flags, void *user)
{
    gw_worker_t *w = user;
    gw_conn_t *c = w->cur;
    gw_frame_t *f = gw_frame_new(len);
    (void)ctx;
    (void)flags;

    memcpy(f->data, data, len);
    gw_ring_push(&c->ring, &w->ring_pool, f, NULL, 0);
    gw_worker_want_flush(w, c);
    return (ssize_t)len;
}

static void ws_msg_cb(wslay_event_context_ptr ctx,
                      const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    gw_worker_t *w = user;
    gw_conn_t *c = w->cur;

    if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
        return; /* wslay answers ping and close itself */
    gw_stat_add(&w->stats, GW_STAT_FRAMES_IN, 1);
    (void)ctx;
    /* Text is valid UTF-8 here: wslay (1.1+) checks it as frames arrive and
     * fails the connection with 1007 itself. */
    if (c->state == GW_CONN_OPEN)
        gw_proto_handle(c, (const char *)arg->msg, arg->msg_length);
}

void gw_ws_worker_init(gw_worker_t *w)
{
    w->ws_callbacks = (struct wslay_event_callbacks){
        .recv_callback = ws_recv_cb,
        .send_callback = ws_send_cb,
        .on_msg_recv_callback = ws_msg_cb,
    };
    w->ws_pool = gw_calloc(WS_POOL_MAX, sizeof(*w->ws_pool));
    w->ws_pool_len = 0;
}

void gw_ws_worker_free(gw_worker_t *w)
{
    while (w->ws_pool_len > 0)
        wslay_event_context_free(w->ws_pool[--w->ws_pool_len]);
    free(w->ws_pool);
    w->ws_pool = NULL;
}

/* Lets wslay write what it queued (pong, close) into the ring. */
static void ws_send(gw_conn_t *c)
{
    gw_worker_t *w = c->worker;
    gw_conn_t *saved = w->cur;

    w->cur = c;
    wslay_event_send(c->ws);
    w->cur = saved;
}

/*
 * Runs wslay over len bytes of whole frames, one frame at a time, sending
 * what wslay queued after each: a pong goes out before the reply to a
 * message that arrived after the ping.
 */
static void ws_run(gw_conn_t *c, const uint8_t *data, size_t len)
{
    gw_worker_t *w = c->worker;
    wslay_event_context_ptr ctx = ws_borrow(c);
    size_t pos = 0, hlen;
    uint64_t plen;

    while (pos < len && !c->closed &&
           ws_header(data + pos, len - pos, &hlen, &plen) == 0) {
        w->cur = c;
        w->in = data + pos;
        w->in_len = hlen + (size_t)plen;
        pos += w->in_len;
        if (wslay_event_recv(ctx) != 0) {
            w->cur = NULL;
            gw_conn_abort(c);
            return;
        }
        w->in_len = 0;
        w->cur = NULL;
        ws_send(c);
        /* Each frame adds at most a reply and a pong: bound them here. */
        if (c->state == GW_CONN_OPEN && !gw_conn_has_room(c))
            break;
    }
    /* wslay queues a close itself on a protocol error or a peer's close. */
    if (c->state == GW_CONN_OPEN && wslay_event_get_close_sent(ctx)) {
        gw_log(wslay_event_get_close_received(ctx) ? GW_LOG_DEBUG : GW_LOG_INFO,
               "conn %llu: closed with %u by the WebSocket layer",
               (unsigned long long)c->id,
               wslay_event_get_status_code_sent(ctx));
        gw_conn_close(c, 0, NULL);
    }
}

/*
 * Fails the WebSocket connection (RFC 6455 7.1.7): the input is out of step
 * with the framing, so nothing more is read; the socket closes once the
 * close frame is written.
 */
static void ws_fail(gw_conn_t *c, uint16_t code, const char *reason)
{
    gw_conn_close(c, code, reason);
    if (c->ws != NULL)
        wslay_event_shutdown_read(c->ws);
}

/* Grows the partial buffer to hold want bytes, keeping its contents. */
static void ws_reserve(gw_conn_t *c, size_t want)
{
    size_t cap = c->partial_cap ? c->partial_cap : 256;

    if (c->partial_cap >= want)
        return;
    while (cap < want)
        cap *= 2;
    c->partial = gw_realloc(c->partial, cap);
    c->partial_cap = (uint32_t)cap;
}

/*
 * Keeps data[from..n), the start of an incomplete frame of `need` bytes (0
 * when its header is incomplete), for the next read. data is the read
 * buffer or the partial buffer itself.
 */
static void ws_keep(gw_conn_t *c, const uint8_t *data, size_t from, size_t n,
                    size_t need)
{
    size_t left = n - from;

    if (data == c->partial) {
        memmove(c->partial, c->partial + from, left);
        c->partial_len = (uint32_t)left;
        ws_reserve(c, need);
        return;
    }
    ws_reserve(c, need > left ? need : left);
    memcpy(c->partial, data + from, left);
    c->partial_len = (uint32_t)left;
}

static void ws_drop_partial(gw_conn_t *c)
{
    free(c->partial);
    c->partial = NULL;
    c->partial_len = c->partial_cap = 0;
}

void gw_ws_feed(gw_conn_t *c, const uint8_t *buf, size_t len)
{
    const uint8_t *data = buf;
    size_t n = len, complete, need;
    int frag = c->frag, rc;

    if (c->partial_len > 0) {
        ws_reserve(c, (size_t)c->partial_len + len);
        memcpy(c->partial + c->partial_len, buf, len);
        c->partial_len += (uint32_t)len;
        data = c->partial;
        n = c->partial_len;
    }
    rc = gw_ws_scan(data, n, c->worker->cfg->max_message_size, &frag, &complete,
                    &need);
    c->frag = frag;
    if (complete > 0)
        ws_run(c, data, complete);
    if (rc == GW_ETOOBIG)
        ws_fail(c, WSLAY_CODE_MESSAGE_TOO_BIG, "message too big");
    else if (rc == GW_EPARSE)
        ws_fail(c, WSLAY_CODE_PROTOCOL_ERROR, "protocol error");
    if (rc != 0 || c->state != GW_CONN_OPEN || complete == n) {
        ws_drop_partial(c);
    } else {
        ws_keep(c, data, complete, n, need);
    }
    ws_maybe_return(c);
}

void gw_ws_close(gw_conn_t *c, uint16_t code, const char *reason)
{
    wslay_event_context_ptr ctx = ws_borrow(c);

    if (code != 0)
        wslay_event_queue_close(ctx, code, (const uint8_t *)reason,
                                reason ? strlen(reason) : 0);
    /* Inside wslay_event_recv the send happens when it returns (ws_run). */
    if (c->worker->cur != c)
        ws_send(c);
}

int gw_ws_close_done(const gw_conn_t *c)
{
    /* wslay stops reading when it fails a connection itself (1002, 1007),
     * and so do we (ws_fail): then no answer is awaited. */
    return c->ws != NULL && wslay_event_get_close_sent(c->ws) &&
           (wslay_event_get_close_received(c->ws) ||
            !wslay_event_get_read_enabled(c->ws));
}

void gw_ws_release(gw_conn_t *c)
{
    if (c->ws != NULL)
        wslay_event_context_free(c->ws);
    c->ws = NULL;
    ws_drop_partial(c);
}
