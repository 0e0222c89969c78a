#include "gw/resp.h"

#include "gw/alloc.h"
#include "gw/buf.h"
#include "gw/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes read per callback; hiredis's reader copies them out at once. */
#define RESP_READ_SIZE 16384

/* A request command's callback, waiting for its reply. */
typedef struct resp_wait {
    gw_resp_reply_cb cb;
    void *data;
} resp_wait_t;

struct gw_resp {
    uv_loop_t *loop;         /* borrowed */
    gw_resp_hooks_t hooks;   /* the owner's */
    uv_tcp_t tcp;            /* the connection */
    uv_prepare_t flush;      /* writes the turn's output before the poll */
    uv_connect_t connect;    /* the connect in flight */
    uv_getaddrinfo_t lookup; /* resolves a host name off the loop */
    uv_write_t write;        /* the write in flight */
    redisReader *reader;     /* owned: replies read so far */
    gw_buf_t out;            /* owned: commands not yet handed to the socket */
    char *writing;           /* owned: the bytes of the write in flight */
    resp_wait_t *waits;      /* owned ring of request callbacks, in order */
    size_t head, nwaits, cap;
    int port;
    int auth;      /* AUTH's reply is the next one: ours, not a hook's */
    int connected; /* the connect succeeded */
    int resolving; /* lookup is in flight */
    int closing;   /* gw_resp_close, or a failure */
    int handles;   /* open libuv handles: tcp and flush */
    char in[RESP_READ_SIZE]; /* the read buffer */
};

/* Frees r once closed and nothing of it is left on the loop. */
static void resp_release(gw_resp_t *r)
{
    if (!r->closing || r->handles > 0 || r->resolving)
        return;
    redisReaderFree(r->reader);
    free(r->out.data);
    free(r->waits);
    free(r);
}

static void resp_close_cb(uv_handle_t *h)
{
    gw_resp_t *r = h->data;

    r->handles--;
    resp_release(r);
}

static void resp_wait_push(gw_resp_t *r, gw_resp_reply_cb cb, void *data)
{
    if (r->nwaits == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        resp_wait_t *w = gw_malloc(cap * sizeof(*w));
        for (size_t i = 0; i < r->nwaits; i++)
            w[i] = r->waits[(r->head + i) % r->cap];
        free(r->waits);
        r->waits = w;
        r->head = 0;
        r->cap = cap;
    }
    r->waits[(r->head + r->nwaits++) % r->cap] = (resp_wait_t){cb, data};
}

static resp_wait_t resp_wait_shift(gw_resp_t *r)
{
    resp_wait_t w = r->waits[r->head];

    r->head = (r->head + 1) % r->cap;
    r->nwaits--;
    return w;
}

/* Marks r closing, answers what waits with NULL, closes the handles. */
static void resp_shut(gw_resp_t *r)
{
    r->closing = 1;
    while (r->nwaits > 0) {
        resp_wait_t w = resp_wait_shift(r);
        w.cb(w.data, NULL);
    }
    uv_close((uv_handle_t *)&r->tcp, resp_close_cb);
    uv_close((uv_handle_t *)&r->flush, resp_close_cb);
    /* A lookup still queued is cancelled; one already running is not.
     * Either way its callback runs, and may be the one that frees r. */
    if (r->resolving)
        uv_cancel((uv_req_t *)&r->lookup);
}

void gw_resp_close(gw_resp_t *r)
{
    if (!r->closing)
        resp_shut(r);
}

/* A failure: closed, and the owner told once. */
static void resp_fail(gw_resp_t *r, const char *why)
{
    if (r->closing)
        return;
    resp_shut(r);
    r->hooks.closed(r->hooks.data, why);
}

static void resp_flush_cb(uv_prepare_t *p);

/* Writes the output once the turn's commands are all queued. */
static void resp_schedule(gw_resp_t *r)
{
    if (!r->closing && r->connected && r->out.len > 0 && r->writing == NULL)
        uv_prepare_start(&r->flush, resp_flush_cb);
}

static void resp_write_cb(uv_write_t *w, int status)
{
    gw_resp_t *r = w->data;

    free(r->writing);
    r->writing = NULL;
    if (r->closing)
        return;
    if (status < 0) {
        resp_fail(r, uv_strerror(status));
        return;
    }
    resp_schedule(r);
}

/* Just before the loop polls: everything queued, in one write. */
static void resp_flush_cb(uv_prepare_t *p)
{
    gw_resp_t *r = p->data;
    uv_buf_t b;
    size_t len;
    int rc;

    uv_prepare_stop(p);
    if (r->closing || r->writing != NULL || r->out.len == 0)
        return;
    r->writing = gw_buf_steal(&r->out, &len);
    b = uv_buf_init(r->writing, (unsigned)len);
    rc = uv_write(&r->write, (uv_stream_t *)&r->tcp, &b, 1, resp_write_cb);
    if (rc < 0) {
        free(r->writing);
        r->writing = NULL;
        resp_fail(r, uv_strerror(rc));
    }
}

/* One reply: AUTH's is ours; the others go to the push hook, or to the
 * callback of the command they answer. */
static void resp_dispatch(gw_resp_t *r, const redisReply *rep)
{
    char why[160];
    resp_wait_t w;

    if (r->auth) {
        r->auth = 0;
        if (rep->type == REDIS_REPLY_ERROR) {
            snprintf(why, sizeof(why), "AUTH: %s", rep->str);
            resp_fail(r, why);
        }
        return;
    }
    if (r->hooks.push != NULL) {
        r->hooks.push(r->hooks.data, rep);
        return;
    }
    if (r->nwaits == 0) {
        resp_fail(r, "a reply to no command");
        return;
    }
    w = resp_wait_shift(r);
    w.cb(w.data, rep);
}

/* Every whole reply read so far, until a hook closes the connection. */
static void resp_drain(gw_resp_t *r)
{
    void *reply;

    while (!r->closing) {
        if (redisReaderGetReply(r->reader, &reply) != REDIS_OK) {
            resp_fail(r, r->reader->errstr);
            return;
        }
        if (reply == NULL)
            return;
        resp_dispatch(r, reply);
        freeReplyObject(reply);
    }
}

static void resp_alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    gw_resp_t *r = h->data;

    (void)size;
    *buf = uv_buf_init(r->in, sizeof(r->in));
}

static void resp_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    gw_resp_t *r = s->data;

    if (nread == 0 || r->closing)
        return;
    if (nread < 0) {
        resp_fail(r, nread == UV_EOF ? "closed by the server"
                                     : uv_strerror((int)nread));
        return;
    }
    if (redisReaderFeed(r->reader, buf->base, (size_t)nread) != REDIS_OK) {
        resp_fail(r, r->reader->errstr);
        return;
    }
    resp_drain(r);
}

static void resp_connect_cb(uv_connect_t *req, int status)
{
    gw_resp_t *r = req->data;
    int rc;

    if (r->closing)
        return;
    if (status < 0) {
        resp_fail(r, uv_strerror(status));
        return;
    }
    r->connected = 1;
    uv_tcp_nodelay(&r->tcp, 1);
    uv_tcp_keepalive(&r->tcp, 1, 15); /* notices a vanished host */
    rc = uv_read_start((uv_stream_t *)&r->tcp, resp_alloc_cb, resp_read_cb);
    if (rc < 0) {
        resp_fail(r, uv_strerror(rc));
        return;
    }
    resp_schedule(r);
    if (r->hooks.connected != NULL)
        r->hooks.connected(r->hooks.data);
}

static int resp_connect(gw_resp_t *r, const struct sockaddr *sa)
{
    return uv_tcp_connect(&r->connect, &r->tcp, sa, resp_connect_cb);
}

/* The first IPv4 address of res, else its first: hiredis's preference,
 * since a "localhost" Redis often listens on 127.0.0.1 only. */
static const struct addrinfo *resp_pick(const struct addrinfo *res)
{
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
        if (ai->ai_family == AF_INET)
            return ai;
    return res;
}

static void resp_lookup_cb(uv_getaddrinfo_t *req, int status,
                           struct addrinfo *res)
{
    gw_resp_t *r = req->data;
    struct sockaddr_storage sa;
    const struct addrinfo *ai;
    int rc;

    r->resolving = 0;
    if (r->closing) {
        uv_freeaddrinfo(res);
        resp_release(r);
        return;
    }
    if (status < 0) {
        resp_fail(r, uv_strerror(status));
        return;
    }
    ai = resp_pick(res);
    memcpy(&sa, ai->ai_addr, ai->ai_addrlen);
    uv_freeaddrinfo(res);
    if (sa.ss_family == AF_INET)
        ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)r->port);
    else
        ((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)r->port);
    if ((rc = resp_connect(r, (struct sockaddr *)&sa)) < 0)
        resp_fail(r, uv_strerror(rc));
}

/* Appends one command to the output. */
static void resp_append(gw_resp_t *r, int argc, const char **argv,
                        const size_t *lens)
{
    char *cmd;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);

    if (len < 0)
        abort(); /* hiredis fails here only for want of memory */
    gw_buf_append(&r->out, cmd, (size_t)len);
    redisFreeCommand(cmd);
}

/* Connects at once to an address, or resolves a name first. */
static int resp_start(gw_resp_t *r, const char *host)
{
    struct addrinfo hints;
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } a;
    int rc;

    if (uv_ip4_addr(host, r->port, &a.in) == 0 ||
        uv_ip6_addr(host, r->port, &a.in6) == 0)
        return resp_connect(r, &a.sa);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc =
        uv_getaddrinfo(r->loop, &r->lookup, resp_lookup_cb, host, NULL, &hints);
    r->resolving = rc == 0;
    return rc;
}

gw_resp_t *gw_resp_open(uv_loop_t *loop, const char *host, int port,
                        const char *password, const gw_resp_hooks_t *hooks,
                        const char **why)
{
    gw_resp_t *r = gw_calloc(1, sizeof(*r));
    int rc;

    r->loop = loop;
    r->hooks = *hooks;
    r->port = port;
    r->reader = redisReaderCreate();
    if (r->reader == NULL)
        abort(); /* hiredis returns NULL only for want of memory */
    uv_tcp_init(loop, &r->tcp);
    uv_prepare_init(loop, &r->flush);
    r->handles = 2;
    r->tcp.data = r->flush.data = r->connect.data = r->lookup.data =
        r->write.data = r;
    if (password[0] != '\0') {
        resp_append(r, 2, (const char *[]){"AUTH", password},
                    (const size_t[]){4, strlen(password)});
        r->auth = 1;
    }
    if ((rc = resp_start(r, host)) < 0) {
        *why = uv_strerror(rc);
        resp_shut(r);
        return NULL;
    }
    return r;
}

int gw_resp_command(gw_resp_t *r, int argc, const char **argv,
                    const size_t *lens, gw_resp_reply_cb cb, void *data)
{
    if (r->closing)
        return GW_ECLOSED;
    resp_append(r, argc, argv, lens);
    if (r->hooks.push == NULL)
        resp_wait_push(r, cb, data);
    resp_schedule(r);
    return 0;
}

size_t gw_resp_pending(const gw_resp_t *r)
{
    return r->nwaits;
}
