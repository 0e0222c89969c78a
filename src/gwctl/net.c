#include "net.h"

#include "gw/alloc.h"
#include "gw/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long a closing connection waits for its last bytes to leave. */
#define NET_CLOSE_MS 1000
#define NET_READ_BUF 65536

typedef enum net_state {
    NET_RESOLVING,
    NET_CONNECTING,
    NET_HANDSHAKING, /* TLS */
    NET_OPEN,
    NET_CLOSING, /* shutting the write side down after the last bytes */
    NET_CLOSED,  /* handles closing; on_close when the last one has */
} net_state_t;

struct ctl_net {
    uv_loop_t *loop;
    uv_getaddrinfo_t gai;
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_shutdown_t sreq;
    uv_timer_t timer;             /* the current stage's deadline */
    const ctl_net_hooks_t *hooks; /* borrowed */
    void *data;                   /* the hooks' */
    ctl_tls_opts_t tls_opts;      /* ca_file borrowed */
    ctl_tlsc_t *tls;              /* owned; NULL for plain TCP */
    int want_tls;
    struct addrinfo *addrs; /* owned: what the name resolved to */
    struct addrinfo *next;  /* the address to try next */
    net_state_t state;
    int pending;   /* handles not closed, and the resolve in flight */
    int resolving; /* the resolve is in flight */
    int tcp_open;  /* tcp initialised and not being closed */
    int connected; /* TCP connected: shut down before closing */
    uint32_t timeout_ms;
    int status; /* what on_close reports */
    char why[384];
    char host[CTL_URL_HOST_MAX + 1];
    char port[6];
    char authority[CTL_URL_HOST_MAX + 9];
    char rbuf[NET_READ_BUF];
};

typedef struct net_write {
    uv_write_t req;
    char *data; /* owned */
} net_write_t;

static void net_close_handles(ctl_net_t *n);
static void net_connect_next(ctl_net_t *n);

static void net_why(ctl_net_t *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void net_why(ctl_net_t *n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(n->why, sizeof(n->why), fmt, ap);
    va_end(ap);
}

/* Called once every handle has closed: reports, then frees. */
static void net_maybe_done(ctl_net_t *n)
{
    if (n->pending > 0 || n->state != NET_CLOSED)
        return;
    n->hooks->on_close(n->data, n->status, n->why);
    if (n->tls != NULL)
        ctl_tlsc_free(n->tls);
    if (n->addrs != NULL)
        uv_freeaddrinfo(n->addrs);
    free(n);
}

static void net_closed_cb(uv_handle_t *h)
{
    ctl_net_t *n = h->data;

    n->pending--;
    net_maybe_done(n);
}

static void net_close_handles(ctl_net_t *n)
{
    if (n->state == NET_CLOSED)
        return;
    n->state = NET_CLOSED;
    /* A resolve that already runs cannot be cancelled: its callback
     * comes, sees NET_CLOSED and counts itself out. */
    if (n->resolving)
        uv_cancel((uv_req_t *)&n->gai);
    uv_close((uv_handle_t *)&n->timer, net_closed_cb);
    if (n->tcp_open) {
        n->tcp_open = 0;
        uv_close((uv_handle_t *)&n->tcp, net_closed_cb);
    }
}

static void net_write_cb(uv_write_t *req, int status)
{
    net_write_t *w = (net_write_t *)req;
    ctl_net_t *n = req->data;

    free(w->data);
    free(w);
    if (status < 0 && status != UV_ECANCELED && n->state < NET_CLOSING) {
        n->status = GW_EIO;
        net_why(n, "sending to %s: %s", n->authority, uv_strerror(status));
        net_close_handles(n);
    }
}

/* Queues data (owned, handed over) on the socket. */
static void net_send(ctl_net_t *n, char *data, size_t len)
{
    net_write_t *w = gw_malloc(sizeof(*w));
    uv_buf_t buf = uv_buf_init(data, (unsigned)len);
    int rc;

    w->data = data;
    w->req.data = n;
    if ((rc = uv_write(&w->req, (uv_stream_t *)&n->tcp, &buf, 1,
                       net_write_cb)) != 0) {
        free(data);
        free(w);
        if (n->state < NET_CLOSING) {
            n->status = GW_EIO;
            net_why(n, "sending to %s: %s", n->authority, uv_strerror(rc));
            net_close_handles(n);
        }
    }
}

static void net_flush_tls(ctl_net_t *n)
{
    size_t len;
    char *out = ctl_tlsc_take_output(n->tls, &len);

    if (out != NULL)
        net_send(n, out, len);
}

static void net_shutdown_cb(uv_shutdown_t *req, int status)
{
    (void)status;
    net_close_handles(req->data);
}

static void net_timeout_cb(uv_timer_t *t)
{
    ctl_net_t *n = t->data;
    static const char *const stage[] = {"resolving", "connecting to",
                                        "in the TLS handshake with"};

    if (n->state < NET_OPEN) {
        n->status = GW_EIO;
        net_why(n, "timed out after %.1f s %s %s", n->timeout_ms / 1000.0,
                stage[n->state], n->authority);
    }
    net_close_handles(n);
}

/* Ends the connection with status and why (unless it already ends):
 * in order (the write side shut down after the last bytes) when status
 * is 0 and it is connected, else at once. */
static void net_finish(ctl_net_t *n, int status, const char *why)
{
    if (n->state >= NET_CLOSING)
        return;
    n->status = status;
    net_why(n, "%s", why);
    if (n->connected)
        uv_read_stop((uv_stream_t *)&n->tcp);
    if (status == 0 && n->connected) {
        if (n->tls != NULL && n->state == NET_OPEN) {
            ctl_tlsc_close_notify(n->tls);
            net_flush_tls(n);
        }
        n->sreq.data = n;
        if (uv_shutdown(&n->sreq, (uv_stream_t *)&n->tcp, net_shutdown_cb) ==
            0) {
            n->state = NET_CLOSING;
            uv_timer_start(&n->timer, net_timeout_cb, NET_CLOSE_MS, 0);
            return;
        }
    }
    net_close_handles(n);
}

static void net_opened(ctl_net_t *n)
{
    n->state = NET_OPEN;
    uv_timer_stop(&n->timer);
    n->hooks->on_open(n->data);
}

/* Runs TLS over what arrived: the handshake, then the records. */
static void net_tls_step(ctl_net_t *n)
{
    char err[384];
    ssize_t got;
    int rc;

    if (n->state == NET_HANDSHAKING) {
        rc = ctl_tlsc_handshake(n->tls, err, sizeof(err));
        net_flush_tls(n);
        if (rc == GW_EAGAIN)
            return;
        if (rc != 0) {
            net_finish(n, rc, err);
            return;
        }
        net_opened(n);
    }
    while (n->state == NET_OPEN) {
        got = ctl_tlsc_read(n->tls, n->rbuf, sizeof(n->rbuf), err, sizeof(err));
        if (got == GW_EAGAIN)
            break;
        if (got <= 0) {
            net_finish(n, (int)got, got == 0 ? "closed by the server" : err);
            break;
        }
        n->hooks->on_data(n->data, n->rbuf, (size_t)got);
    }
}

static void net_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    ctl_net_t *n = h->data;
    (void)hint;

    *buf = uv_buf_init(n->rbuf, sizeof(n->rbuf));
}

static void net_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    ctl_net_t *n = s->data;

    if (nread == 0 || n->state >= NET_CLOSING)
        return;
    if (nread == UV_EOF && n->state == NET_OPEN)
        net_finish(n, 0, "closed by the server");
    else if (nread < 0)
        net_finish(n, nread == UV_EOF ? GW_ECLOSED : GW_EIO,
                   nread == UV_EOF ? "the server closed the connection"
                                   : uv_strerror((int)nread));
    else if (n->tls != NULL) {
        ctl_tlsc_feed(n->tls, buf->base, (size_t)nread);
        net_tls_step(n);
    } else
        n->hooks->on_data(n->data, buf->base, (size_t)nread);
}

static void net_connected(ctl_net_t *n)
{
    char err[384];

    n->connected = 1;
    uv_read_start((uv_stream_t *)&n->tcp, net_alloc_cb, net_read_cb);
    if (!n->want_tls) {
        net_opened(n);
        return;
    }
    n->tls = ctl_tlsc_new(n->host, &n->tls_opts, err, sizeof(err));
    if (n->tls == NULL) {
        net_finish(n, GW_EIO, err);
        return;
    }
    n->state = NET_HANDSHAKING;
    net_tls_step(n);
}

static void net_connect_cb(uv_connect_t *req, int status)
{
    ctl_net_t *n = req->data;

    if (n->state != NET_CONNECTING)
        return;
    if (status == 0) {
        net_connected(n);
        return;
    }
    net_why(n, "cannot connect to %s: %s", n->authority, uv_strerror(status));
    n->status = GW_EIO;
    net_connect_next(n);
}

/* The previous attempt's handle has closed: the next address. */
static void net_retry_cb(uv_handle_t *h)
{
    ctl_net_t *n = h->data;

    n->pending--;
    if (n->state == NET_CONNECTING)
        net_connect_next(n);
    else
        net_maybe_done(n);
}

/* Tries the next address, after closing the previous attempt's socket;
 * ends with the last failure when none is left. */
static void net_connect_next(ctl_net_t *n)
{
    struct addrinfo *ai = n->next;
    int rc;

    if (n->tcp_open) {
        n->tcp_open = 0;
        uv_close((uv_handle_t *)&n->tcp, net_retry_cb);
        return;
    }
    if (ai == NULL) {
        net_close_handles(n);
        return;
    }
    n->next = ai->ai_next;
    uv_tcp_init(n->loop, &n->tcp);
    n->tcp.data = n;
    n->tcp_open = 1;
    n->pending++;
    n->creq.data = n;
    rc = uv_tcp_connect(&n->creq, &n->tcp, ai->ai_addr, net_connect_cb);
    if (rc != 0) {
        net_why(n, "cannot connect to %s: %s", n->authority, uv_strerror(rc));
        n->status = GW_EIO;
        net_connect_next(n);
    }
}

static void net_resolved_cb(uv_getaddrinfo_t *req, int status,
                            struct addrinfo *res)
{
    ctl_net_t *n = req->data;

    n->pending--;
    n->resolving = 0;
    if (n->state == NET_CLOSED) {
        if (res != NULL)
            uv_freeaddrinfo(res);
        net_maybe_done(n);
        return;
    }
    if (status < 0) {
        n->status = GW_EIO;
        net_why(n, "cannot resolve %s: %s", n->host, uv_strerror(status));
        net_close_handles(n);
        return;
    }
    n->addrs = n->next = res;
    n->state = NET_CONNECTING;
    net_connect_next(n);
}

ctl_net_t *ctl_net_open(uv_loop_t *loop, const ctl_url_t *u,
                        const ctl_tls_opts_t *opts, uint32_t timeout_ms,
                        const ctl_net_hooks_t *hooks, void *data)
{
    ctl_net_t *n = gw_calloc(1, sizeof(*n));
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    int rc;

    n->loop = loop;
    n->hooks = hooks;
    n->data = data;
    n->tls_opts = *opts;
    n->want_tls = u->tls;
    n->timeout_ms = timeout_ms;
    strcpy(n->host, u->host);
    strcpy(n->port, u->port);
    strcpy(n->authority, u->authority);
    uv_timer_init(loop, &n->timer);
    n->timer.data = n;
    n->pending = 1;
    uv_timer_start(&n->timer, net_timeout_cb, timeout_ms, 0);
    n->gai.data = n;
    rc = uv_getaddrinfo(loop, &n->gai, net_resolved_cb, n->host, n->port,
                        &hints);
    if (rc == 0) {
        n->pending++;
        n->resolving = 1;
    } else {
        n->status = GW_EIO;
        net_why(n, "cannot resolve %s: %s", n->host, uv_strerror(rc));
        net_close_handles(n);
    }
    return n;
}

int ctl_net_write(ctl_net_t *n, const void *buf, size_t len)
{
    char err[384];

    if (n->state != NET_OPEN)
        return GW_ECLOSED;
    if (n->tls == NULL) {
        char *copy = gw_malloc(len);

        memcpy(copy, buf, len);
        net_send(n, copy, len);
        return 0;
    }
    if (ctl_tlsc_write(n->tls, buf, len, err, sizeof(err)) != 0) {
        net_finish(n, GW_EIO, err);
        return GW_ECLOSED;
    }
    net_flush_tls(n);
    return 0;
}

void ctl_net_close(ctl_net_t *n)
{
    net_finish(n, 0, "closed");
}
