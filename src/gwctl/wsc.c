#include "wsc.h"

#include "httpc.h"
#include "net.h"

#include "gw/alloc.h"
#include "gw/buf.h"
#include "gw/error.h"
#include "gw/version.h"

#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <wslay/wslay.h>

/* How long a close waits for the server's close frame. */
#define WSC_CLOSE_MS 1000
/* The largest message taken: the gateway's are at most a few MiB. */
#define WSC_MAX_MESSAGE (16u << 20)
/* RFC 6455 section 1.3. */
#define WSC_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

typedef enum wsc_state {
    WSC_UPGRADING, /* connecting, or waiting for the 101 */
    WSC_OPEN,
    WSC_CLOSING, /* our close frame sent, or the connection ending */
} wsc_state_t;

struct ctl_wsc {
    ctl_net_t *net;               /* until its on_close */
    const ctl_wsc_hooks_t *hooks; /* borrowed */
    void *data;                   /* the hooks' */
    wslay_event_context_ptr ctx;  /* once upgraded */
    ctl_httpc_resp_t resp;        /* the upgrade's answer */
    uv_timer_t timer;             /* the close's wait */
    wsc_state_t state;
    const char *chunk; /* input being handed to wslay, borrowed */
    size_t chunk_len;
    int in_recv;     /* wslay_event_recv is on the stack: what the hooks
                        queue is sent once it returns, not from inside */
    int http_status; /* an upgrade refused with this answer */
    int status;      /* our verdict on the upgrade, before net's */
    char why[256];
    char path[CTL_URL_PATH_MAX + 1];      /* of the request line */
    char authority[CTL_URL_HOST_MAX + 9]; /* for Host: */
    char key[25];                         /* Sec-WebSocket-Key */
    char accept[29]; /* the Sec-WebSocket-Accept it calls for */
};

static void wsc_random(void *buf, size_t len)
{
    /* getrandom(2) without flags blocks only before the pool is seeded
     * at boot, and returns whole for up to 256 bytes. */
    if (getrandom(buf, len, 0) != (ssize_t)len)
        abort();
}

/* A fresh key and the accept value that answers it (RFC 6455 4.2.2). */
static void wsc_make_key(ctl_wsc_t *w)
{
    unsigned char nonce[16], digest[20];
    char both[sizeof(w->key) + sizeof(WSC_GUID)];
    size_t n;

    wsc_random(nonce, sizeof(nonce));
    (void)mbedtls_base64_encode((unsigned char *)w->key, sizeof(w->key), &n,
                                nonce, sizeof(nonce));
    snprintf(both, sizeof(both), "%s%s", w->key, WSC_GUID);
    (void)mbedtls_sha1_ret((const unsigned char *)both, strlen(both), digest);
    (void)mbedtls_base64_encode((unsigned char *)w->accept, sizeof(w->accept),
                                &n, digest, sizeof(digest));
}

static ssize_t wsc_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf,
                           size_t len, int flags, void *user_data)
{
    ctl_wsc_t *w = user_data;
    (void)flags;

    if (w->chunk_len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (len > w->chunk_len)
        len = w->chunk_len;
    memcpy(buf, w->chunk, len);
    w->chunk += len;
    w->chunk_len -= len;
    return (ssize_t)len;
}

static ssize_t wsc_send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
                           size_t len, int flags, void *user_data)
{
    ctl_wsc_t *w = user_data;
    (void)flags;

    if (ctl_net_write(w->net, data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static int wsc_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                          void *user_data)
{
    (void)ctx;
    (void)user_data;
    wsc_random(buf, len);
    return 0;
}

static void wsc_msg_cb(wslay_event_context_ptr ctx,
                       const struct wslay_event_on_msg_recv_arg *arg,
                       void *user_data)
{
    ctl_wsc_t *w = user_data;
    (void)ctx;

    if (arg->opcode == WSLAY_TEXT_FRAME && w->state == WSC_OPEN)
        w->hooks->on_message(w->data, (const char *)arg->msg, arg->msg_length);
}

static const struct wslay_event_callbacks wsc_callbacks = {
    .recv_callback = wsc_recv_cb,
    .send_callback = wsc_send_cb,
    .genmask_callback = wsc_genmask_cb,
    .on_msg_recv_callback = wsc_msg_cb,
};

/* Sends what wslay queued, and ends the connection once both close
 * frames have passed (or wslay gave up on the stream). */
static void wsc_pump(ctl_wsc_t *w)
{
    if (wslay_event_send(w->ctx) != 0 ||
        (wslay_event_get_close_sent(w->ctx) &&
         (wslay_event_get_close_received(w->ctx) ||
          !wslay_event_get_read_enabled(w->ctx)))) {
        w->state = WSC_CLOSING;
        ctl_net_close(w->net);
    }
}

static void wsc_feed(ctl_wsc_t *w, const char *buf, size_t len)
{
    int rc;

    w->chunk = buf;
    w->chunk_len = len;
    w->in_recv = 1;
    rc = wslay_event_recv(w->ctx);
    w->in_recv = 0;
    if (rc != 0) {
        w->state = WSC_CLOSING;
        ctl_net_close(w->net);
        return;
    }
    wsc_pump(w);
}

/* The server's answer to the upgrade, once whole. */
static int wsc_upgraded(ctl_wsc_t *w)
{
    if (w->resp.status == 101 && strcmp(w->resp.want_value, w->accept) == 0)
        return 1;
    w->status = GW_EINVAL;
    w->http_status = w->resp.status;
    if (w->resp.status == 101)
        snprintf(w->why, sizeof(w->why),
                 "the server's Sec-WebSocket-Accept is wrong: not a "
                 "WebSocket server");
    else
        snprintf(w->why, sizeof(w->why),
                 "the upgrade was answered HTTP %d%s%.160s", w->resp.status,
                 w->resp.body ? ": " : "", w->resp.body ? w->resp.body : "");
    return 0;
}

static void wsc_on_data(void *data, const char *buf, size_t len)
{
    ctl_wsc_t *w = data;
    size_t used;
    int rc;

    if (w->ctx != NULL) {
        wsc_feed(w, buf, len);
        return;
    }
    if (w->state != WSC_UPGRADING)
        return;
    rc = ctl_httpc_resp_feed(&w->resp, buf, len, 0, &used);
    if (rc == 0)
        return;
    if (rc < 0 || !wsc_upgraded(w)) {
        if (rc < 0) {
            w->status = GW_EPARSE;
            snprintf(w->why, sizeof(w->why),
                     "the upgrade's answer is not HTTP");
        }
        w->state = WSC_CLOSING;
        ctl_net_close(w->net);
        return;
    }
    wslay_event_context_client_init(&w->ctx, &wsc_callbacks, w);
    wslay_event_config_set_max_recv_msg_length(w->ctx, WSC_MAX_MESSAGE);
    w->state = WSC_OPEN;
    w->hooks->on_open(w->data);
    /* The first messages may have come with the 101. */
    if (w->state == WSC_OPEN && used < len)
        wsc_feed(w, buf + used, len - used);
}

static void wsc_on_open(void *data)
{
    ctl_wsc_t *w = data;
    gw_buf_t b = {0};

    gw_buf_printf(&b,
                  "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                  "Sec-WebSocket-Version: 13\r\nUser-Agent: gwctl/%s\r\n\r\n",
                  w->path, w->authority, w->key, GW_VERSION);
    ctl_net_write(w->net, b.data, b.len);
    free(b.data);
}

static void wsc_free_cb(uv_handle_t *h)
{
    ctl_wsc_t *w = h->data;

    if (w->ctx != NULL)
        wslay_event_context_free(w->ctx);
    ctl_httpc_resp_free(&w->resp);
    free(w);
}

static void wsc_on_close(void *data, int status, const char *why)
{
    ctl_wsc_t *w = data;
    unsigned code =
        w->ctx != NULL ? wslay_event_get_status_code_received(w->ctx) : 1006;

    if (w->status == 0 && w->ctx == NULL && status == 0) {
        w->status = GW_ECLOSED;
        snprintf(w->why, sizeof(w->why), "closed before the upgrade");
    }
    if (w->status == 0) {
        w->status = w->ctx != NULL ? 0 : status;
        snprintf(w->why, sizeof(w->why), "%s", why);
    }
    w->net = NULL;
    w->hooks->on_close(w->data, w->status, w->http_status, code, w->why);
    uv_close((uv_handle_t *)&w->timer, wsc_free_cb);
}

ctl_wsc_t *ctl_wsc_open(uv_loop_t *loop, const ctl_url_t *u,
                        const ctl_tls_opts_t *opts, uint32_t timeout_ms,
                        const ctl_wsc_hooks_t *hooks, void *data)
{
    static const ctl_net_hooks_t net_hooks = {wsc_on_open, wsc_on_data,
                                              wsc_on_close};
    ctl_wsc_t *w = gw_calloc(1, sizeof(*w));

    w->hooks = hooks;
    w->data = data;
    strcpy(w->path, u->path);
    strcpy(w->authority, u->authority);
    wsc_make_key(w);
    ctl_httpc_resp_init(&w->resp, "Sec-WebSocket-Accept");
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    w->net = ctl_net_open(loop, u, opts, timeout_ms, &net_hooks, w);
    return w;
}

int ctl_wsc_send(ctl_wsc_t *w, const char *text, size_t len)
{
    struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, (const uint8_t *)text, len};

    if (w->state != WSC_OPEN || wslay_event_queue_msg(w->ctx, &msg) != 0)
        return GW_ECLOSED;
    if (!w->in_recv)
        wsc_pump(w);
    return 0;
}

static void wsc_close_timeout_cb(uv_timer_t *t)
{
    ctl_wsc_t *w = t->data;

    if (w->net != NULL)
        ctl_net_close(w->net);
}

void ctl_wsc_close(ctl_wsc_t *w, unsigned code)
{
    if (w->net == NULL || w->state == WSC_CLOSING)
        return;
    if (w->state == WSC_UPGRADING) {
        w->state = WSC_CLOSING;
        ctl_net_close(w->net);
        return;
    }
    w->state = WSC_CLOSING;
    /* Fails only when a close was queued already, which is as good. */
    (void)wslay_event_queue_close(w->ctx, (uint16_t)code, NULL, 0);
    uv_timer_start(&w->timer, wsc_close_timeout_cb, WSC_CLOSE_MS, 0);
    if (!w->in_recv)
        wsc_pump(w);
}
