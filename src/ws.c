#include "gw/ws.h"

#include "gw/addr.h"
#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/frame.h"
#include "gw/origin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <wslay/wslay.h>

#define WS_POOL_MAX 64 /* idle contexts a loop keeps for reuse */
#define WS_TICK_MS 100 /* deadline resolution */
#define WS_RING_CHUNKS_KEPT 4096
/* How long a closing connection waits for its close frame to be written and
 * answered before the socket is closed regardless (RFC 6455 7.1.1). */
#define WS_CLOSE_TIMEOUT_MS 3000

/*
 * A pooled wslay context and what its callbacks need. wslay hands every
 * callback the user_data fixed when the context was made, so that is this
 * struct, which names the connection it is lent to: set when borrowed and
 * stable until it is given back.
 */
struct gw_ws_ctx {
    wslay_event_context_ptr wslay; /* owned */
    gw_ws_t *owner;                /* the borrower */
    const uint8_t *in;             /* the frame being fed to wslay */
    size_t in_len;                 /* its bytes wslay has not read yet */
    int in_recv;                   /* inside wslay_event_recv */
};

/*
 * Reads the header at p (avail bytes): 0 with the header and payload
 * lengths, GW_EAGAIN when the header is incomplete, or GW_EPARSE for the
 * frame-level violations wslay would not answer with 1002: a fragmented or
 * oversized control frame, a length not minimally encoded, a close frame
 * whose payload is one byte (a status code is two).
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
    if ((p[0] & 0x0f) == WSLAY_CONNECTION_CLOSE && len == 1)
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

/* ---- wslay's callbacks: user_data is the context's gw_ws_ctx_t ---- */

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                          int flags, void *user)
{
    gw_ws_ctx_t *x = user;
    (void)flags;

    if (x->in_len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (len > x->in_len)
        len = x->in_len;
    memcpy(buf, x->in, len);
    x->in += len;
    x->in_len -= len;
    return (ssize_t)len;
}

/* wslay's own output (pong, close) joins the ring as private frames. */
static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
                          size_t len, int flags, void *user)
{
    gw_ws_ctx_t *x = user;
    (void)ctx;
    (void)flags;

    gw_transport_push_copy(&x->owner->transport, data, len);
    return (ssize_t)len;
}

static void ws_msg_cb(wslay_event_context_ptr ctx,
                      const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    gw_ws_t *ws = ((gw_ws_ctx_t *)user)->owner;
    (void)ctx;

    if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
        return; /* wslay answers ping and close itself */
    gw_stat_add(gw_ws_loop_of(ws)->stats, GW_STAT_FRAMES_IN, 1);
    if (ws->state != GW_WS_OPEN)
        return;
    /* The protocol is JSON text; a binary message never reaches it. */
    if (arg->opcode == WSLAY_BINARY_FRAME) {
        gw_ws_close(ws, GW_WS_CLOSE_UNSUPPORTED_DATA,
                    "binary messages are not supported");
        return;
    }
    /* Text is valid UTF-8 here: wslay (1.1+) checks it as frames arrive and
     * fails the connection with 1007 itself. */
    gw_ws_loop_of(ws)->cb->on_message(ws->data, (const char *)arg->msg,
                                      arg->msg_length);
}

static const struct wslay_event_callbacks ws_wslay_callbacks = {
    .recv_callback = ws_recv_cb,
    .send_callback = ws_send_cb,
    .on_msg_recv_callback = ws_msg_cb,
};

/* ---- the context pool ---- */

static gw_ws_ctx_t *ws_borrow(gw_ws_t *ws)
{
    gw_ws_loop_t *l = gw_ws_loop_of(ws);
    gw_ws_ctx_t *x = ws->u.ctx;

    if (x != NULL)
        return x;
    if (l->pool_len > 0) {
        x = l->pool[--l->pool_len];
    } else {
        x = gw_calloc(1, sizeof(*x));
        if (wslay_event_context_server_init(&x->wslay, &ws_wslay_callbacks,
                                            x) != 0) {
            gw_error("out of memory for a wslay context");
            abort();
        }
    }
    wslay_event_config_set_max_recv_msg_length(x->wslay,
                                               l->cfg->max_message_size);
    x->owner = ws;
    ws->u.ctx = x;
    return x;
}

static void ws_ctx_free(gw_ws_ctx_t *x)
{
    wslay_event_context_free(x->wslay);
    free(x);
}

/* Returns the context to the pool when it holds no state of this peer. */
static void ws_maybe_return(gw_ws_t *ws)
{
    gw_ws_loop_t *l = gw_ws_loop_of(ws);
    gw_ws_ctx_t *x = ws->u.ctx;

    if (x == NULL || ws->state != GW_WS_OPEN || ws->frag ||
        ws->partial != NULL || wslay_event_want_write(x->wslay))
        return;
    x->owner = NULL;
    if (l->pool_len < WS_POOL_MAX)
        l->pool[l->pool_len++] = x;
    else
        ws_ctx_free(x);
    ws->u.ctx = NULL;
}

/* ---- output ---- */

void gw_ws_send_text(gw_ws_t *ws, const char *text, size_t len)
{
    uint8_t head[10];
    size_t hlen;
    gw_frame_t *f;

    if (ws->state != GW_WS_OPEN)
        return;
    hlen = gw_frame_header(head, WSLAY_TEXT_FRAME, len);
    f = gw_frame_new(hlen + len);
    memcpy(f->data, head, hlen);
    memcpy(f->data + hlen, text, len);
    gw_transport_push(&ws->transport, f, NULL, 0);
    gw_stat_add(gw_ws_loop_of(ws)->stats, GW_STAT_FRAMES_OUT, 1);
}

void gw_ws_send_shared(gw_ws_t *ws, char *prefix, size_t plen, gw_frame_t *body)
{
    uint64_t len = plen + body->len;
    size_t hlen = len < 126 ? 2 : len <= 0xffff ? 4 : 10;
    uint8_t *head = (uint8_t *)prefix - hlen;

    gw_frame_header(head, WSLAY_TEXT_FRAME, len);
    gw_transport_push(&ws->transport, gw_frame_ref(body), head, hlen + plen);
    gw_stat_add(gw_ws_loop_of(ws)->stats, GW_STAT_FRAMES_OUT, 1);
}

int gw_ws_admit(gw_ws_t *ws, uint32_t room, unsigned *dropped)
{
    return gw_transport_admit(&ws->transport, room,
                              gw_ws_loop_of(ws)->cfg->write_ring_size, dropped);
}

void gw_ws_flush(gw_ws_t *ws)
{
    gw_transport_flush(&ws->transport);
}

void gw_ws_abort(gw_ws_t *ws)
{
    if (ws->state == GW_WS_OPEN)
        ws->state = GW_WS_CLOSING;
    gw_transport_close(&ws->transport);
}

/* Lets wslay write what it queued (pong, close) into the ring; inside
 * wslay_event_recv that waits until it returns (ws_run). */
static void ws_send(gw_ws_t *ws)
{
    if (!ws->u.ctx->in_recv)
        wslay_event_send(ws->u.ctx->wslay);
}

void gw_ws_close(gw_ws_t *ws, uint16_t code, const char *reason)
{
    gw_ws_loop_t *l = gw_ws_loop_of(ws);
    gw_ws_ctx_t *x;

    if (ws->state == GW_WS_HANDSHAKE) {
        gw_ws_abort(ws);
        return;
    }
    if (ws->state != GW_WS_OPEN)
        return;
    if (code != 0) {
        gw_info("conn %" PRIu64 ": closing with %u (%s)", ws->id, code,
                reason ? reason : "");
        if (ws->recv_code == 0)
            ws->sent_code = code;
    }
    ws->state = GW_WS_CLOSING;
    gw_transport_notify_drained(&ws->transport);
    x = ws_borrow(ws);
    if (code != 0)
        wslay_event_queue_close(x->wslay, code, (const uint8_t *)reason,
                                reason ? strlen(reason) : 0);
    ws_send(ws);
    gw_wheel_add(&l->wheel, &ws->timer,
                 uv_now(l->io.loop) + WS_CLOSE_TIMEOUT_MS);
    gw_transport_want_flush(&ws->transport);
}

/* ---- input ---- */

/*
 * The peer sends faster than it reads what we answer (pongs, replies):
 * once its ring stays full, the owner hears of it and closes. Returns
 * whether that happened.
 */
static int ws_backlogged(gw_ws_t *ws)
{
    uint32_t size = gw_ws_loop_of(ws)->cfg->write_ring_size;
    unsigned dropped;

    if (ws->state != GW_WS_OPEN ||
        gw_transport_admit(&ws->transport, size, size, &dropped) != GW_EFULL)
        return 0;
    gw_ws_loop_of(ws)->cb->on_backlog(ws->data, dropped);
    return 1;
}

/*
 * Runs wslay over len bytes of whole frames, one frame at a time, sending
 * what wslay queued after each: a pong goes out before the reply to a
 * message that arrived after the ping.
 */
static size_t ws_run(gw_ws_t *ws, const uint8_t *data, size_t len)
{
    gw_ws_ctx_t *x = ws_borrow(ws);
    size_t pos = 0, hlen;
    uint64_t plen;
    int rc;

    /* A hand-off asked for by the message just run stops here: what
     * follows is the adopting loop's to run. */
    while (pos < len && !ws->transport.closed && !ws->handoff &&
           ws_header(data + pos, len - pos, &hlen, &plen) == 0) {
        x->in = data + pos;
        x->in_len = hlen + (size_t)plen;
        pos += x->in_len;
        x->in_recv = 1;
        rc = wslay_event_recv(x->wslay);
        x->in_recv = 0;
        x->in_len = 0;
        if (ws->recv_code == 0 && ws->sent_code == 0 &&
            wslay_event_get_close_received(x->wslay))
            ws->recv_code = wslay_event_get_status_code_received(x->wslay);
        if (rc != 0) {
            gw_ws_abort(ws);
            return pos;
        }
        ws_send(ws);
        /* Each frame adds at most a reply and a pong: bound them here. */
        if (ws_backlogged(ws))
            break;
    }
    /* wslay queues a close itself on a protocol error or a peer's close. */
    if (ws->state == GW_WS_OPEN && wslay_event_get_close_sent(x->wslay)) {
        gw_log(wslay_event_get_close_received(x->wslay) ? GW_LOG_DEBUG
                                                        : GW_LOG_INFO,
               "conn %" PRIu64 ": closed with %u by the WebSocket layer",
               ws->id, wslay_event_get_status_code_sent(x->wslay));
        if (ws->recv_code == 0) /* not an echo: wslay failed the peer */
            ws->sent_code = wslay_event_get_status_code_sent(x->wslay);
        gw_ws_close(ws, 0, NULL);
    }
    return pos;
}

/*
 * Fails the WebSocket connection (RFC 6455 7.1.7): the input is out of step
 * with the framing, so nothing more is read; the socket closes once the
 * close frame is written.
 */
static void ws_fail(gw_ws_t *ws, uint16_t code, const char *reason)
{
    gw_ws_close(ws, code, reason);
    if (ws->u.ctx != NULL)
        wslay_event_shutdown_read(ws->u.ctx->wslay);
}

struct gw_ws_partial {
    uint32_t len; /* bytes kept, more than 0 */
    uint32_t cap; /* room in data */
    uint8_t data[];
};

/* Grows the partial buffer (made empty when there is none) to hold want
 * bytes, keeping its contents. */
static gw_ws_partial_t *ws_reserve(gw_ws_t *ws, size_t want)
{
    gw_ws_partial_t *p = ws->partial;
    size_t cap = p != NULL ? p->cap : 256;

    if (p != NULL && p->cap >= want)
        return p;
    while (cap < want)
        cap *= 2;
    p = gw_realloc(p, sizeof(*p) + cap);
    if (ws->partial == NULL)
        p->len = 0;
    p->cap = (uint32_t)cap;
    ws->partial = p;
    return p;
}

/*
 * Keeps data[from..n), the start of an incomplete frame of `need` bytes (0
 * when its header is incomplete), for the next read. data is the read
 * buffer or the partial buffer itself.
 */
static void ws_keep(gw_ws_t *ws, const uint8_t *data, size_t from, size_t n,
                    size_t need)
{
    size_t left = n - from;
    gw_ws_partial_t *p = ws->partial;

    if (p != NULL && data == p->data) {
        memmove(p->data, p->data + from, left);
        p->len = (uint32_t)left;
        ws_reserve(ws, need);
        return;
    }
    p = ws_reserve(ws, need > left ? need : left);
    memcpy(p->data, data + from, left);
    p->len = (uint32_t)left;
}

static void ws_drop_partial(gw_ws_t *ws)
{
    free(ws->partial);
    ws->partial = NULL;
}

static void ws_hand_off_now(gw_ws_t *ws, const uint8_t *rest, size_t len);

/* WebSocket bytes from the peer, any split. */
static void ws_feed(gw_ws_t *ws, const uint8_t *buf, size_t len)
{
    const uint8_t *data = buf;
    size_t n = len, complete, need, ran = 0;
    int frag = ws->frag, rc;

    if (ws->partial != NULL) {
        gw_ws_partial_t *p = ws_reserve(ws, (size_t)ws->partial->len + len);
        memcpy(p->data + p->len, buf, len);
        p->len += (uint32_t)len;
        data = p->data;
        n = p->len;
    }
    rc = gw_ws_scan(data, n, gw_ws_loop_of(ws)->cfg->max_message_size, &frag,
                    &complete, &need);
    ws->frag = frag;
    if (complete > 0)
        ran = ws_run(ws, data, complete);
    if (ws->handoff) {
        ws_hand_off_now(ws, data + ran, n - ran);
        return;
    }
    if (rc == GW_ETOOBIG)
        ws_fail(ws, GW_WS_CLOSE_MESSAGE_TOO_BIG, "message too big");
    else if (rc == GW_EPARSE)
        ws_fail(ws, GW_WS_CLOSE_PROTOCOL_ERROR, "protocol error");
    if (rc != 0 || ws->state != GW_WS_OPEN || complete == n)
        ws_drop_partial(ws);
    else
        ws_keep(ws, data, complete, n, need);
    ws_maybe_return(ws);
}

/* True once our close frame is sent and either the peer's arrived or we
 * no longer read (wslay failed the connection itself, or ws_fail did). */
static int ws_close_done(const gw_ws_t *ws)
{
    wslay_event_context_ptr c = ws->u.ctx ? ws->u.ctx->wslay : NULL;

    return c != NULL && wslay_event_get_close_sent(c) &&
           (wslay_event_get_close_received(c) ||
            !wslay_event_get_read_enabled(c));
}

/* ---- the upgrade ---- */

/* Answers with an HTTP error and closes once it is written. */
static void ws_refuse(gw_ws_t *ws, int status)
{
    gw_ws_loop_t *l = gw_ws_loop_of(ws);
    char buf[512];
    size_t n = gw_handshake_reject(status, buf, sizeof(buf));

    gw_handshake_free(ws->u.hs);
    free(ws->u.hs);
    ws->u.hs = NULL;
    ws->state = GW_WS_REJECTED;
    gw_transport_notify_drained(&ws->transport);
    gw_transport_push_copy(&ws->transport, buf, n);
    gw_wheel_add(&l->wheel, &ws->timer,
                 uv_now(l->io.loop) + WS_CLOSE_TIMEOUT_MS);
}

static void ws_reject(gw_ws_t *ws, int status)
{
    gw_stat_add(gw_ws_loop_of(ws)->stats, GW_STAT_HANDSHAKE_FAILURES, 1);
    gw_log_limited(&gw_ws_loop_of(ws)->reject_log, GW_LOG_INFO,
                   "conn %" PRIu64 ": upgrade rejected with %d", ws->id,
                   status);
    ws_refuse(ws, status);
}

/* The upgrade was accepted: answer 101 and hand the connection up. */
static void ws_upgrade(gw_ws_t *ws)
{
    gw_ws_loop_t *l = gw_ws_loop_of(ws);
    gw_handshake_t *hs = ws->u.hs;
    char buf[256];
    size_t n = gw_handshake_accept(hs, buf, sizeof(buf));

    gw_transport_push_copy(&ws->transport, buf, n);
    ws->u.hs = NULL;
    ws->state = GW_WS_OPEN;
    gw_wheel_del(&ws->timer);
    l->cb->on_open(l->data, ws, hs->token);
    gw_handshake_free(hs);
    free(hs);
    if (ws->data == NULL)
        gw_ws_close(ws, GW_WS_CLOSE_NORMAL, NULL);
}

/*
 * A browser's upgrade from a page of another site (cross-site WebSocket
 * hijacking: the browser would send our cookies with it) is refused with
 * 403. Returns whether it was.
 */
static int ws_refuse_origin(gw_ws_t *ws)
{
    gw_ws_loop_t *l = gw_ws_loop_of(ws);
    const char *origin = ws->u.hs->origin;
    char peer[GW_ADDR_NAME_MAX] = "?", conn[24];

    if (gw_origin_allowed(l->cfg->allowed_origins, origin))
        return 0;
    gw_stat_add(l->stats, GW_STAT_ORIGIN_REFUSED, 1);
    if (gw_audit_on()) {
        gw_transport_peer_name(&ws->transport, peer, sizeof(peer));
        snprintf(conn, sizeof(conn), "%" PRIu64, ws->id);
        gw_audit(GW_LOG_WARN, "origin refused", "conn", conn, "peer", peer,
                 "origin", origin, NULL);
    }
    ws_refuse(ws, 403);
    return 1;
}

static void ws_handshake(gw_ws_t *ws, const uint8_t *buf, size_t len)
{
    size_t consumed = 0;
    int rc = gw_handshake_feed(ws->u.hs, (const char *)buf, len, &consumed);

    if (rc == GW_EAGAIN)
        return;
    if (rc != 0) {
        ws_reject(ws, ws->u.hs->status);
        return;
    }
    if (ws_refuse_origin(ws))
        return;
    ws_upgrade(ws);
    if (consumed < len && ws->state == GW_WS_OPEN)
        ws_feed(ws, buf + consumed, len - consumed);
}

/* ---- the transport's callbacks: data is the gw_ws_t ---- */

/* The transport is the first member of its connection. */
static gw_ws_t *ws_of(gw_transport_t *t)
{
    return (gw_ws_t *)t;
}

static void ws_data_cb(gw_transport_t *t, const uint8_t *buf, size_t len)
{
    gw_ws_t *ws = ws_of(t);

    switch (ws->state) {
    case GW_WS_HANDSHAKE: ws_handshake(ws, buf, len); break;
    case GW_WS_OPEN:
    case GW_WS_CLOSING: ws_feed(ws, buf, len); break;
    default: break;
    }
    /* A close may have completed without new output: let the flush decide. */
    if (ws->state == GW_WS_CLOSING)
        gw_transport_want_flush(&ws->transport);
}

/* All output is written: finish a rejection or a completed close. */
static void ws_drained_cb(gw_transport_t *t)
{
    gw_ws_t *ws = ws_of(t);
    wslay_event_context_ptr c = ws->u.ctx ? ws->u.ctx->wslay : NULL;

    if (ws->state == GW_WS_CLOSING && c != NULL &&
        wslay_event_get_close_received(c))
        gw_transport_close(&ws->transport); /* a clean close handshake */
    else if (ws->state == GW_WS_REJECTED ||
             (ws->state == GW_WS_CLOSING && ws_close_done(ws)))
        gw_transport_linger(&ws->transport);
}

/* Every resource is released here, never while a callback is running. */
static void ws_close_cb(gw_transport_t *t)
{
    gw_ws_t *ws = ws_of(t);
    gw_ws_loop_t *l = gw_ws_loop_of(ws);

    gw_wheel_del(&ws->timer);
    if (ws->state == GW_WS_HANDSHAKE) {
        gw_handshake_free(ws->u.hs);
        free(ws->u.hs);
    } else if (ws->u.ctx != NULL) { /* a rejection holds neither */
        ws_ctx_free(ws->u.ctx);     /* it may hold this peer's state */
    }
    ws_drop_partial(ws);
    if (ws->peer != NULL)
        gw_peers_release(l->peers, ws->peer);
    if (l->peers != NULL)
        gw_peers_leave(l->peers);
    /* The end of a WebSocket connection, by code: not an upgrade that
     * failed, nor a socket handed to another loop, where it goes on. */
    if ((ws->state == GW_WS_OPEN || ws->state == GW_WS_CLOSING) &&
        !ws->transport.detached)
        gw_stats_close(l->stats, ws->sent_code, ws->recv_code);
    if (ws->data != NULL)
        l->cb->on_close(ws->data, ws->sent_code, ws->recv_code);
    gw_slab_put(&l->slab, ws);
}

static void ws_count_address(gw_ws_t *ws, uint32_t limit);

/* The peer's address came after the accept (a proxy named it): it is
 * counted now, unless the upgrade was refused meanwhile. */
static void ws_peer_cb(gw_transport_t *t)
{
    gw_ws_t *ws = ws_of(t);

    if (ws->state == GW_WS_HANDSHAKE)
        ws_count_address(ws, gw_ws_loop_of(ws)->cfg->max_connections_per_ip);
}

static const gw_transport_cb_t ws_transport_cb = {
    .on_data = ws_data_cb,
    .on_drained = ws_drained_cb,
    .on_close = ws_close_cb,
    .on_peer = ws_peer_cb,
};

/* ---- handing a connection to another loop ---- */

void gw_ws_hand_off(gw_ws_t *ws)
{
    if (ws->state == GW_WS_OPEN)
        ws->handoff = 1;
}

/*
 * The message that asked is run: what is queued is written now, the socket
 * leaves this loop, and the owner gets it with the bytes read but not run
 * (frames after the request, and a partial one), to hand to the loop that
 * adopts it. If the output cannot all be written now the connection is
 * dropped instead (fd -1): the client reconnects.
 */
static void ws_hand_off_now(gw_ws_t *ws, const uint8_t *rest, size_t len)
{
    gw_ws_loop_t *l = gw_ws_loop_of(ws);
    gw_transport_state_t *state = NULL;
    void *data = ws->data;
    int fd = -1;

    ws_maybe_return(ws);
    gw_transport_flush(&ws->transport);
    ws->data = NULL; /* the owner is told here, not by on_close */
    if (gw_transport_detach(&ws->transport, &fd, &state) != 0) {
        gw_debug("conn %" PRIu64 ": cannot leave this loop: closed", ws->id);
        gw_ws_abort(ws);
        fd = -1;
    }
    /* rest may lie in the partial buffer: dropped only after the call. */
    l->cb->on_hand_off(data, fd, state, rest, fd >= 0 ? len : 0);
    ws_drop_partial(ws);
}

void gw_ws_input(gw_ws_t *ws, const uint8_t *buf, size_t len)
{
    if (len > 0 && ws->state == GW_WS_OPEN)
        ws_feed(ws, buf, len);
}

/* ---- the loop ---- */

void gw_ws_loop_init(gw_ws_loop_t *l, uv_loop_t *loop, const gw_ws_cb_t *cb,
                     void *data, const gw_config_t *cfg, gw_peers_t *peers,
                     gw_stats_t *stats, int id)
{
    *l = (gw_ws_loop_t){.cb = cb,
                        .data = data,
                        .cfg = cfg,
                        .peers = peers,
                        .stats = stats,
                        .id = id};
    gw_transport_loop_init(&l->io, loop, &ws_transport_cb, stats,
                           WS_RING_CHUNKS_KEPT);
    gw_wheel_init(&l->wheel, WS_TICK_MS, uv_now(loop));
    l->pool = gw_calloc(WS_POOL_MAX, sizeof(*l->pool));
    gw_slab_init(&l->slab, sizeof(gw_ws_t));
}

void gw_ws_loop_free(gw_ws_loop_t *l)
{
    size_t left;

    while (l->pool_len > 0)
        ws_ctx_free(l->pool[--l->pool_len]);
    free(l->pool);
    l->pool = NULL;
    left = gw_slab_free(&l->slab);
    if (left > 0)
        gw_error("worker %d: %zu connections were never freed", l->id, left);
    gw_transport_loop_free(&l->io);
}

static void ws_timer_fire(gw_wheel_node_t *node, void *data)
{
    gw_ws_t *ws = (gw_ws_t *)((char *)node - offsetof(gw_ws_t, timer));
    (void)data;

    if (ws->state == GW_WS_HANDSHAKE) {
        gw_stat_add(gw_ws_loop_of(ws)->stats, GW_STAT_HANDSHAKE_FAILURES, 1);
        gw_log_limited(&gw_ws_loop_of(ws)->reject_log, GW_LOG_INFO,
                       "conn %" PRIu64 ": handshake timed out", ws->id);
    }
    gw_ws_abort(ws);
}

void gw_ws_loop_tick(gw_ws_loop_t *l, uint64_t now_ms)
{
    gw_wheel_advance(&l->wheel, now_ms, ws_timer_fire, NULL);
}

typedef struct ws_each {
    void (*fn)(gw_ws_t *, void *);
    void *arg;
} ws_each_t;

static void ws_each_one(gw_transport_t *t, void *arg)
{
    ws_each_t *e = arg;

    e->fn(ws_of(t), e->arg);
}

void gw_ws_loop_each(gw_ws_loop_t *l, void (*fn)(gw_ws_t *, void *), void *arg)
{
    ws_each_t e = {fn, arg};

    gw_transport_loop_each(&l->io, ws_each_one, &e);
}

/*
 * Counts the connection against its address (server.max_connections_per_ip)
 * and refuses it with 429 when the address has its fill; the refusal is
 * written and the socket closed as for any rejected upgrade. An address
 * not known yet is counted when it is (ws_peer_cb).
 */
static void ws_count_address(gw_ws_t *ws, uint32_t limit)
{
    gw_ws_loop_t *l = gw_ws_loop_of(ws);
    struct sockaddr_storage ss;
    char name[GW_ADDR_NAME_MAX] = "?";

    if (limit == 0 || gw_transport_peer(&ws->transport, &ss) != 0 ||
        (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
        return;
    ws->peer = gw_peers_take(l->peers, (struct sockaddr *)&ss, limit);
    if (ws->peer != NULL)
        return;
    gw_stat_add(l->stats, GW_STAT_ADDRESS_LIMITED, 1);
    if (gw_log_on(GW_LOG_WARN))
        gw_addr_name((struct sockaddr *)&ss, 0, name, sizeof(name));
    gw_log_limited(&l->reject_log, GW_LOG_WARN,
                   "conn %" PRIu64 ": %s has %" PRIu32
                   " connections open (server.max_connections_per_ip); "
                   "refused with 429",
                   ws->id, name, limit);
    ws_refuse(ws, 429);
}

/* A connection on fd with its transport open, or adopted with the state
 * that came with fd; NULL on failure (fd closed, state freed). */
static gw_ws_t *ws_new(gw_ws_loop_t *l, int fd, gw_transport_state_t *state,
                       gw_ws_transport_open open)
{
    gw_ws_t *ws = gw_slab_alloc(&l->slab);
    int rc;

    ws->id = (l->next_id++ << 8) | (uint64_t)l->id;
    rc = state != NULL ? gw_transport_adopt(&ws->transport, &l->io, fd, state)
                       : open(&ws->transport, &l->io, fd);
    if (rc != 0) {
        gw_warn("worker %d: cannot adopt socket: %s", l->id, uv_strerror(rc));
        gw_slab_put(&l->slab, ws);
        return NULL;
    }
    return ws;
}

/*
 * Over server.max_connections the upgrade is answered 503 (the client
 * learns at once that it should try later or elsewhere, as a load balancer
 * would); the refusal holds its descriptor only until written. Returns
 * whether it was refused.
 */
static int ws_refuse_capacity(gw_ws_t *ws)
{
    gw_ws_loop_t *l = gw_ws_loop_of(ws);

    if (l->peers == NULL || !gw_peers_over_cap(l->peers))
        return 0;
    gw_stat_add(l->stats, GW_STAT_CAPACITY_REFUSED, 1);
    gw_log_limited(&l->reject_log, GW_LOG_WARN,
                   "conn %" PRIu64 ": %u connections open "
                   "(server.max_connections); refused with 503",
                   ws->id, gw_peers_open(l->peers));
    ws_refuse(ws, 503);
    return 1;
}

gw_ws_t *gw_ws_accept(gw_ws_loop_t *l, int fd, gw_ws_transport_open open)
{
    gw_ws_t *ws = ws_new(l, fd, NULL, open);

    if (ws == NULL) {
        if (l->peers != NULL) /* counted by the acceptor */
            gw_peers_leave(l->peers);
        return NULL;
    }
    ws->u.hs = gw_malloc(sizeof(*ws->u.hs));
    gw_handshake_init(ws->u.hs, l->cfg->max_header_size);
    gw_wheel_add(&l->wheel, &ws->timer,
                 uv_now(l->io.loop) + l->cfg->handshake_timeout_ms);
    if (!ws_refuse_capacity(ws))
        ws_count_address(ws, l->cfg->max_connections_per_ip);
    return ws;
}

gw_ws_t *gw_ws_adopt(gw_ws_loop_t *l, int fd, gw_transport_state_t *state,
                     gw_ws_transport_open open)
{
    gw_ws_t *ws = ws_new(l, fd, state, open);

    if (ws == NULL)
        return NULL;
    ws->state = GW_WS_OPEN;
    /* Counted again (the other loop let it go), never refused: it was
     * accepted already. */
    if (l->peers != NULL)
        gw_peers_count(l->peers);
    if (l->cfg->max_connections_per_ip != 0)
        ws_count_address(ws, UINT32_MAX);
    return ws;
}
