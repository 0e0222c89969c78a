/*
 * The WebSocket layer alone (wslay's style): scripted client bytes fed in
 * pieces through the transport's data callback, the output captured by a
 * transport whose writev keeps what it is given, and the layer above
 * played by a recorder. Links ws, transport, handshake and what they use;
 * nothing of the protocol, the worker or the brokers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/error.h"
#include "gw/ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- a transport that captures its output ---- */

static struct {
    char out[65536];
    size_t len;
    size_t accept; /* bytes writev takes in one call */
    int shutdowns; /* FINs sent */
} io;

static ssize_t cap_read(gw_transport_t *t, uint8_t *buf, size_t len)
{
    (void)t;
    (void)buf;
    (void)len;
    return GW_EAGAIN; /* input is scripted through on_data */
}

static ssize_t cap_writev(gw_transport_t *t, const struct iovec *iov,
                          unsigned n)
{
    size_t took = 0;
    (void)t;

    for (unsigned i = 0; i < n && took < io.accept; i++) {
        size_t k = iov[i].iov_len;
        if (k > io.accept - took)
            k = io.accept - took;
        assert_true(io.len + k <= sizeof(io.out));
        memcpy(io.out + io.len, iov[i].iov_base, k);
        io.len += k;
        took += k;
    }
    return (ssize_t)took;
}

static int cap_shutdown(gw_transport_t *t)
{
    (void)t;
    io.shutdowns++;
    return 0;
}

static const gw_transport_ops_t cap_ops = {
    .read = cap_read, .writev = cap_writev, .shutdown = cap_shutdown};

static int cap_open(gw_transport_t *t, gw_transport_loop_t *l, int fd)
{
    return gw_transport_init(t, l, fd, &cap_ops);
}

/* ---- the layer above, recorded ---- */

static struct {
    gw_ws_t *ws;
    int opened, closed, backlog;
    uint16_t sent, received; /* what on_close said */
    unsigned dropped;
    char token[64];
    int nmsgs;
    char msg[4][256];
    size_t msg_len[4];
} up;

static void up_open(void *loop_data, gw_ws_t *ws, const char *token)
{
    (void)loop_data;
    up.opened++;
    up.ws = ws;
    snprintf(up.token, sizeof(up.token), "%s", token ? token : "(none)");
    gw_ws_set_data(ws, &up);
}

static void up_message(void *data, const char *msg, size_t len)
{
    assert_ptr_equal(data, &up);
    assert_true(up.nmsgs < 4 && len < 256);
    memcpy(up.msg[up.nmsgs], msg, len);
    up.msg_len[up.nmsgs++] = len;
}

static void up_backlog(void *data, unsigned dropped)
{
    (void)data;
    up.backlog++;
    up.dropped = dropped;
    gw_ws_close(up.ws, 4010, "slow consumer");
}

static void up_close(void *data, uint16_t sent, uint16_t received)
{
    assert_ptr_equal(data, &up);
    up.closed++;
    up.sent = sent;
    up.received = received;
}

static const gw_ws_cb_t up_cb = {up_open, up_message, up_backlog, NULL,
                                 up_close};

/* ---- fixture ---- */

typedef struct fx {
    uv_loop_t loop;
    gw_ws_loop_t l;
    gw_config_t cfg;
    gw_stats_t stats;
    gw_ws_t *ws;
    int peer; /* the other end of the socket pair */
} fx_t;

static int fx_setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    int sv[2];

    memset(&io, 0, sizeof(io));
    memset(&up, 0, sizeof(up));
    io.accept = SIZE_MAX;
    f->cfg.max_header_size = 8192;
    f->cfg.max_message_size = 1024;
    f->cfg.write_ring_size = 8;
    f->cfg.handshake_timeout_ms = 5000;
    uv_loop_init(&f->loop);
    gw_ws_loop_init(&f->l, &f->loop, &up_cb, NULL, &f->cfg, NULL, &f->stats, 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    f->peer = sv[1];
    f->ws = gw_ws_accept(&f->l, sv[0], cap_open);
    assert_non_null(f->ws);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *f = *state;

    if (!up.closed && f->ws != NULL)
        gw_ws_abort(f->ws);
    gw_transport_loop_flush(&f->l.io);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(up.closed, up.opened);
    gw_transport_loop_stop(&f->l.io);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    gw_ws_loop_free(&f->l);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    close(f->peer);
    free(f);
    return 0;
}

static void feed(fx_t *f, const void *buf, size_t len)
{
    f->l.io.cb->on_data(&f->ws->transport, buf, len);
}

/* Writes what is queued, as the worker does before it polls. */
static void flush(fx_t *f)
{
    gw_transport_loop_flush(&f->l.io);
}

static void expect_out(const void *bytes, size_t len)
{
    assert_int_equal(io.len, len);
    assert_memory_equal(io.out, bytes, len);
    io.len = 0;
}

static const char upgrade_req[] =
    "GET /chat?token=tk1 HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

static const char upgrade_resp[] =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

static void open_ws(fx_t *f)
{
    feed(f, upgrade_req, sizeof(upgrade_req) - 1);
    flush(f);
    expect_out(upgrade_resp, sizeof(upgrade_resp) - 1);
    assert_int_equal(up.opened, 1);
}

/* A masked client frame; returns its length. */
static size_t cframe(uint8_t *out, int fin, int opcode, const void *payload,
                     size_t len)
{
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t h = 0;

    out[h++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    if (len < 126) {
        out[h++] = (uint8_t)(0x80 | len);
    } else {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    }
    memcpy(out + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < len; i++)
        out[h + i] = ((const uint8_t *)payload)[i] ^ mask[i % 4];
    return h + len;
}

/* The server's close frame for code and reason, as it must appear. */
static size_t sclose(uint8_t *out, uint16_t code, const char *reason)
{
    size_t n = strlen(reason);

    out[0] = 0x88;
    out[1] = (uint8_t)(2 + n);
    out[2] = (uint8_t)(code >> 8);
    out[3] = (uint8_t)code;
    memcpy(out + 4, reason, n);
    return 4 + n;
}

static void expect_close_frame(uint16_t code, const char *reason)
{
    uint8_t want[128];

    expect_out(want, sclose(want, code, reason));
}

/* ---- tests ---- */

static void test_upgrade_byte_by_byte(void **state)
{
    fx_t *f = *state;

    for (size_t i = 0; i + 1 < sizeof(upgrade_req); i++) {
        assert_int_equal(up.opened, 0);
        feed(f, upgrade_req + i, 1);
    }
    flush(f);
    expect_out(upgrade_resp, sizeof(upgrade_resp) - 1);
    assert_int_equal(up.opened, 1);
    assert_string_equal(up.token, "tk1");
}

static void test_upgrade_without_host_is_400(void **state)
{
    static const char req[] = "GET / HTTP/1.1\r\n"
                              "Upgrade: websocket\r\n"
                              "Connection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
    fx_t *f = *state;

    feed(f, req, sizeof(req) - 1);
    flush(f);
    assert_true(io.len > 12);
    assert_memory_equal(io.out, "HTTP/1.1 400", 12);
    assert_int_equal(up.opened, 0);
    /* Written, then a lingering close: FIN, and input discarded. */
    assert_int_equal(io.shutdowns, 1);
    assert_int_equal(f->stats.v[GW_STAT_HANDSHAKE_FAILURES], 1);
}

/* A message and the upgrade in one read, then messages split at every
 * byte: each arrives once, whole. */
static void test_message_split_everywhere(void **state)
{
    fx_t *f = *state;
    uint8_t buf[1024];
    const char *msg = "{\"event\":\"heartbeat\"}";
    size_t n, ulen = sizeof(upgrade_req) - 1;

    memcpy(buf, upgrade_req, ulen);
    n = cframe(buf + ulen, 1, 1, msg, strlen(msg));
    feed(f, buf, ulen + n);
    assert_int_equal(up.nmsgs, 1);
    for (size_t k = 1; k < n; k++) {
        up.nmsgs = 0;
        feed(f, buf + ulen, k);
        assert_int_equal(up.nmsgs, 0);
        feed(f, buf + ulen + k, n - k);
        assert_int_equal(up.nmsgs, 1);
        assert_int_equal(up.msg_len[0], strlen(msg));
        assert_memory_equal(up.msg[0], msg, strlen(msg));
    }
    assert_null(f->ws->u.ctx); /* nothing half-read: back in the pool */
}

/* A ping between the fragments of a message is answered at once. */
static void test_fragments_with_ping_between(void **state)
{
    fx_t *f = *state;
    uint8_t buf[256];
    size_t n = 0;

    open_ws(f);
    n += cframe(buf + n, 0, 1, "hel", 3);
    n += cframe(buf + n, 1, 9, "p", 1);
    n += cframe(buf + n, 1, 0, "lo", 2);
    feed(f, buf, 5); /* a piece, then the rest */
    feed(f, buf + 5, n - 5);
    flush(f);
    expect_out("\x8a\x01p", 3);
    assert_int_equal(up.nmsgs, 1);
    assert_int_equal(up.msg_len[0], 5);
    assert_memory_equal(up.msg[0], "hello", 5);
}

/* The client closes: the server answers with its code, then closes the
 * socket once the answer is written. */
static void test_close_handshake(void **state)
{
    fx_t *f = *state;
    uint8_t buf[64];

    open_ws(f);
    feed(f, buf, cframe(buf, 1, 8, "\x03\xe8", 2));
    flush(f);
    expect_out("\x88\x02\x03\xe8", 4);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(up.closed, 1);
    assert_int_equal(io.shutdowns, 0); /* nothing more can come */
    /* The client closed first with 1000; our echo is not a code of ours. */
    assert_int_equal(up.received, 1000);
    assert_int_equal(up.sent, 0);
    assert_int_equal(f->stats.closes_by_code[gw_stats_close_slot(1000)], 1);
}

/* The server closes: its frame, then the client's answer ends it. */
static void test_server_close(void **state)
{
    fx_t *f = *state;
    uint8_t buf[64];

    open_ws(f);
    gw_ws_close(f->ws, 4000, "bye");
    gw_ws_close(f->ws, 4001, "twice"); /* harmless */
    flush(f);
    expect_close_frame(4000, "bye");
    assert_int_equal(up.closed, 0);
    feed(f, buf, cframe(buf, 1, 8, "\x0f\xa0", 2));
    flush(f);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(up.closed, 1);
    /* We closed first: the client's echo is not its own close. */
    assert_int_equal(up.sent, 4000);
    assert_int_equal(up.received, 0);
    assert_int_equal(f->stats.closes_by_code[gw_stats_close_slot(4000)], 1);
    assert_int_equal(f->stats.closes_by_code[gw_stats_close_slot(4001)], 0);
}

/* A connection that ends without a close frame counts as 1006; a failed
 * upgrade is no WebSocket close at all; unlisted codes share "other". */
static void test_closes_by_code(void **state)
{
    fx_t *f = *state;
    uint64_t sum = 0;

    open_ws(f);
    gw_ws_abort(f->ws);
    flush(f);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(up.closed, 1);
    assert_int_equal(f->stats.closes_by_code[gw_stats_close_slot(1006)], 1);
    for (int i = 0; i < GW_CLOSE_SLOTS; i++)
        sum += f->stats.closes_by_code[i];
    assert_int_equal(sum, 1);
    assert_int_equal(gw_stats_close_slot(4013), GW_CLOSE_SLOTS - 2);
    assert_int_equal(gw_stats_close_slot(4006), GW_CLOSE_SLOTS - 1);
    assert_int_equal(gw_stats_close_slot(1002), GW_CLOSE_SLOTS - 1);
    gw_stats_close(&f->stats, 0, 1005);
    assert_int_equal(f->stats.closes_by_code[GW_CLOSE_SLOTS - 1], 1);
}

static void test_failed_upgrade_is_no_close(void **state)
{
    fx_t *f = *state;
    static const char bad[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    feed(f, bad, sizeof(bad) - 1);
    flush(f);
    gw_ws_abort(f->ws);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    for (int i = 0; i < GW_CLOSE_SLOTS; i++)
        assert_int_equal(f->stats.closes_by_code[i], 0);
    f->ws = NULL;
}

/* RFC 6455 5.5.1: a close payload is empty or starts with a 2-byte code. */
static void test_close_with_one_byte_is_1002(void **state)
{
    fx_t *f = *state;
    uint8_t buf[64];

    open_ws(f);
    feed(f, buf, cframe(buf, 1, 8, "\x03", 1));
    flush(f);
    expect_close_frame(1002, "protocol error");
    assert_int_equal(io.shutdowns, 1); /* failed: no answer awaited */
}

/* The protocol is text: a binary message never reaches the layer above. */
static void test_binary_message_is_1003(void **state)
{
    fx_t *f = *state;
    uint8_t buf[256];
    const char *msg = "{\"event\":\"identify\",\"data\":{}}";

    open_ws(f);
    feed(f, buf, cframe(buf, 1, 2, msg, strlen(msg)));
    flush(f);
    expect_close_frame(1003, "binary messages are not supported");
    assert_int_equal(up.nmsgs, 0);
}

static void test_invalid_utf8_is_1007(void **state)
{
    fx_t *f = *state;
    uint8_t buf[64];

    open_ws(f);
    feed(f, buf, cframe(buf, 1, 1, "\"\xff\"", 3));
    flush(f);
    assert_true(io.len >= 4);
    assert_memory_equal(io.out, "\x88", 1);
    assert_memory_equal(io.out + 2, "\x03\xef", 2);
    assert_int_equal(up.nmsgs, 0);
}

/* Over server.max_message_size, refused from the header alone. */
static void test_too_big_is_1009(void **state)
{
    fx_t *f = *state;
    static uint8_t payload[2000], buf[2100];
    size_t n = cframe(buf, 1, 1, payload, sizeof(payload));

    open_ws(f);
    feed(f, buf, 8); /* the header is enough */
    flush(f);
    expect_close_frame(1009, "message too big");
    feed(f, buf + 8, n - 8); /* the rest is not read */
    assert_int_equal(up.nmsgs, 0);
}

static void test_fragmented_ping_is_1002(void **state)
{
    fx_t *f = *state;
    uint8_t buf[64];

    open_ws(f);
    feed(f, buf, cframe(buf, 0, 9, "p", 1));
    flush(f);
    expect_close_frame(1002, "protocol error");
}

/* A client that pings without reading the pongs fills its ring; the layer
 * above hears of it once and closes (4010 in gatewayd). */
static void test_ping_flood_without_reading(void **state)
{
    fx_t *f = *state;
    uint8_t buf[64 * 20];
    size_t n = 0;

    open_ws(f);
    io.accept = 0; /* the socket takes nothing */
    for (int i = 0; i < 20; i++)
        n += cframe(buf + n, 1, 9, "p", 1);
    feed(f, buf, n);
    assert_int_equal(up.backlog, 1);
    assert_true(up.dropped > 0);
    assert_int_equal(f->ws->state, GW_WS_CLOSING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_upgrade_byte_by_byte, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_without_host_is_400,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_message_split_everywhere, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_fragments_with_ping_between,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_close_handshake, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_server_close, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_close_with_one_byte_is_1002,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_closes_by_code, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_failed_upgrade_is_no_close,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_binary_message_is_1003, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_utf8_is_1007, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_too_big_is_1009, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_fragmented_ping_is_1002, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_ping_flood_without_reading,
                                        fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
