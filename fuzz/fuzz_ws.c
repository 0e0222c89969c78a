/*
 * The WebSocket layer on arbitrary client bytes after a valid upgrade:
 * wslay, the partial-frame buffer, the context pool and the close
 * handshake, fed in pieces whose sizes the input chooses, over a
 * transport that takes as much output as the input says. The connection
 * must end cleanly: its close reported once, nothing leaked.
 */
#include "gw/error.h"
#include "gw/ws.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t accept_bytes; /* what each writev takes */
static int opened, closed, messages;

static ssize_t fz_read(gw_transport_t *t, uint8_t *buf, size_t len)
{
    (void)t;
    (void)buf;
    (void)len;
    return GW_EAGAIN;
}

static ssize_t fz_writev(gw_transport_t *t, const struct iovec *iov, unsigned n)
{
    size_t total = 0;
    (void)t;

    for (unsigned i = 0; i < n; i++)
        total += iov[i].iov_len;
    return (ssize_t)(total < accept_bytes ? total : accept_bytes);
}

static int fz_shutdown(gw_transport_t *t)
{
    (void)t;
    return 0;
}

static const gw_transport_ops_t fz_ops = {
    .read = fz_read, .writev = fz_writev, .shutdown = fz_shutdown};

static int fz_open(gw_transport_t *t, gw_transport_loop_t *l, int fd)
{
    return gw_transport_init(t, l, fd, &fz_ops);
}

static void up_open(void *loop_data, gw_ws_t *ws, const char *token)
{
    (void)loop_data;
    (void)token;
    opened++;
    gw_ws_set_data(ws, ws);
}

static void up_message(void *data, const char *msg, size_t len)
{
    (void)msg;
    (void)len;
    messages++;
    if (messages % 7 == 0) /* the layer above answers some */
        gw_ws_send_text(data, "{\"event\":\"x\"}", 13);
}

static void up_backlog(void *data, unsigned dropped)
{
    (void)dropped;
    gw_ws_close(data, 4010, "slow consumer");
}

static void up_close(void *data, uint16_t sent, uint16_t received)
{
    (void)sent;
    (void)received;
    (void)data;
    closed++;
}

static const gw_ws_cb_t up_cb = {.on_open = up_open,
                                 .on_message = up_message,
                                 .on_backlog = up_backlog,
                                 .on_close = up_close};

static const char upgrade[] =
    "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uv_loop_t loop;
    static gw_ws_loop_t l;
    static gw_config_t cfg;
    static gw_stats_t stats;
    static int ready;
    gw_ws_t *ws;
    size_t pos = 0, step;
    int sv[2];

    if (!ready) {
        cfg.max_header_size = 8192;
        cfg.max_message_size = 4096;
        cfg.write_ring_size = 16;
        cfg.handshake_timeout_ms = 5000;
        uv_loop_init(&loop);
        gw_ws_loop_init(&l, &loop, &up_cb, NULL, &cfg, NULL, &stats, 0);
        gw_log_level = GW_LOG_ERROR;
        ready = 1;
    }
    if (size < 2 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return 0;
    opened = closed = messages = 0;
    step = 1 + data[0] % 64;      /* the size of each piece */
    accept_bytes = data[1] * 16u; /* 0: the socket never takes a byte */
    data += 2;
    size -= 2;
    ws = gw_ws_accept(&l, sv[0], fz_open);
    l.io.cb->on_data(&ws->transport, (const uint8_t *)upgrade,
                     sizeof(upgrade) - 1);
    /* A closed transport is released, and ws freed, at the flush after
     * its close: `closed` (the layer above told) says when ws is gone. */
    while (pos < size && closed == 0 && !ws->transport.closed) {
        size_t n = size - pos < step ? size - pos : step;
        l.io.cb->on_data(&ws->transport, data + pos, n);
        pos += n;
        gw_transport_loop_flush(&l.io);
    }
    if (closed == 0)
        gw_ws_abort(ws);
    gw_transport_loop_flush(&l.io);
    uv_run(&loop, UV_RUN_NOWAIT);
    if (opened != 1 || closed != 1)
        abort();
    close(sv[1]);
    return 0;
}
