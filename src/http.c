/*
 * The API port: a small HTTP/1.1 server on the caller's libuv loop.
 *
 * Each connection reads into its own buffer and runs http-parser over it.
 * When a request is complete the parser is paused and the handler answers,
 * at once or later (gw_http_defer, gw_http_answer); the response is written,
 * and only when that write has completed does parsing resume on the bytes
 * left over (pipelined requests) or reading start again. So a connection
 * holds at most one read buffer of input and one response, whatever the
 * client sends, and responses go out in request order without a queue.
 *
 * A deferred request is a small object of its own, owned by the handler:
 * the connection may be freed before the answer comes, and then only
 * clears the object's pointer to it.
 */
#include "gw/http.h"

#include "gw/addr.h"
#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/log.h"

#include <http_parser.h>
#include <limits.h>
#include <mbedtls/base64.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_HEAD_MAX 8192   /* request line and headers */
#define HTTP_READ_SIZE 16384 /* one read, parsed before the next one */
#define HTTP_IDLE_MS 60000   /* idle keep-alive, or sending one request */
#define HTTP_LINGER_MS 2000  /* draining input after the last response */
#define HTTP_BACKLOG 128

/* A growable string, NUL-terminated once anything was appended. */
typedef struct http_buf {
    char *base;
    size_t len;
    size_t cap;
} http_buf_t;

/* What the parser reported last, so that we know when an element ends. */
enum { HTTP_ELEM_NONE, HTTP_ELEM_URL, HTTP_ELEM_FIELD, HTTP_ELEM_VALUE };

/* The headers we look at; every other value is skipped, not buffered. */
enum { HTTP_HDR_OTHER, HTTP_HDR_API_KEY, HTTP_HDR_AUTH, HTTP_HDR_EXPECT };

typedef struct http_conn http_conn_t;

struct http_conn {
    uv_tcp_t tcp;                /* tcp.data = this */
    uv_timer_t timer;            /* idle keep-alive, then the lingering close */
    uv_write_t write_req;        /* the response in flight */
    uv_write_t continue_req;     /* an interim "100 Continue" */
    uv_shutdown_t shutdown_req;  /* FIN after the last response */
    http_parser parser;          /* parser.data = this */
    gw_http_server_t *srv;       /* holds a reference until we are freed */
    http_conn_t *prev, *next;    /* srv->conns */
    uint64_t id;                 /* for log lines */
    int handles;                 /* open libuv handles; freed when none is */
    unsigned closing : 1;        /* uv_close called */
    unsigned writing : 1;        /* a response is in flight; parser paused */
    unsigned close_after : 1;    /* the response in flight is the last one */
    unsigned lingering : 1;      /* shut down; dropping input until EOF */
    unsigned head_done : 1;      /* the current request's headers are parsed */
    unsigned expect_100 : 1;     /* "Expect: 100-continue" */
    unsigned elem : 2;           /* HTTP_ELEM_* */
    unsigned cur_header : 2;     /* HTTP_HDR_* */
    int err_status;              /* answer chosen by a callback that failed */
    size_t head_bytes;           /* bytes of the current request's head */
    http_buf_t scratch;          /* the URL, header name or value being read */
    http_buf_t body;             /* the current request's, up to max_body */
    char *path;                  /* current request, owned */
    char *query;                 /* current request, owned; NULL if none */
    char *api_key;               /* X-API-Key, owned */
    char *bearer;                /* Authorization: Bearer, owned */
    char *out_head;              /* the response in flight, owned */
    char *out_body;              /* the handler's, owned */
    gw_http_later_t *later;      /* deferred request, not owned; or NULL */
    size_t in_off;               /* in[in_off..in_len) is not parsed yet */
    size_t in_len;               /* bytes read into in[] */
    char peer[GW_ADDR_NAME_MAX]; /* "address:port" for log lines */
    char in[HTTP_READ_SIZE];     /* the read buffer */
};

struct gw_http_server {
    uv_tcp_t listener;     /* listener.data = this */
    uv_loop_t *loop;       /* the caller's */
    gw_http_handler_cb cb; /* answers every request */
    void *data;            /* passed to cb */
    size_t max_body;       /* larger bodies get 413 */
    http_conn_t *conns;    /* open connections */
    unsigned nconns;       /* length of conns */
    unsigned refs;         /* the listener and each connection; freed at 0 */
    uint64_t next_id;      /* id of the next connection */
    uint64_t full_log_ms;  /* last "too many connections" line */
    unsigned closing : 1;  /* gw_http_server_close was called */
};

/* What the handler is given for one request. res comes first, so that
 * gw_http_defer can find the rest from the pointer it is passed. */
typedef struct http_exchange {
    gw_http_response_t res; /* first; see above */
    http_conn_t *conn;      /* the request's */
    unsigned with_body : 1; /* not a HEAD request */
    unsigned deferred : 1;  /* gw_http_defer was called */
} http_exchange_t;

/* Owned by the handler, from gw_http_defer until gw_http_answer frees it.
 * The connection points back (c->later) only to clear conn when it is
 * freed first. */
struct gw_http_later {
    http_conn_t *conn;      /* NULL once the connection is gone */
    unsigned with_body : 1; /* not a HEAD request */
};

static int http_on_url(http_parser *p, const char *at, size_t len);
static int http_on_header_field(http_parser *p, const char *at, size_t len);
static int http_on_header_value(http_parser *p, const char *at, size_t len);
static int http_on_headers_complete(http_parser *p);
static int http_on_body(http_parser *p, const char *at, size_t len);
static int http_on_message_complete(http_parser *p);

static const http_parser_settings http_settings = {
    .on_url = http_on_url,
    .on_header_field = http_on_header_field,
    .on_header_value = http_on_header_value,
    .on_headers_complete = http_on_headers_complete,
    .on_body = http_on_body,
    .on_message_complete = http_on_message_complete,
};

static void http_conn_close(http_conn_t *c);
static void http_conn_parse(http_conn_t *c);

/* ---- small helpers ---- */

static void buf_append(http_buf_t *b, const char *at, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        b->cap = (b->len + len + 1) * 2;
        b->base = gw_realloc(b->base, b->cap);
    }
    memcpy(b->base + b->len, at, len);
    b->len += len;
    b->base[b->len] = '\0';
}

static void buf_free(http_buf_t *b)
{
    free(b->base);
    b->base = NULL;
    b->len = b->cap = 0;
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

/* Replaces *dst with a copy of s[0..len); an empty value counts as absent. */
static void set_str(char **dst, const char *s, size_t len)
{
    free(*dst);
    *dst = len > 0 ? gw_strndup(s, len) : NULL;
}

/* ---- parser callbacks ---- */

/* Records the answer to a request the callbacks refuse; returns -1 so that
 * a callback can stop the parser with `return http_conn_refuse(...)`. */
static int http_conn_refuse(http_conn_t *c, int status)
{
    c->err_status = status;
    return -1;
}

static int http_url_done(http_conn_t *c)
{
    struct http_parser_url u;

    /* Absolute-form targets are split the same way; "*" and CONNECT
     * authorities are no resource of ours and fail here. */
    http_parser_url_init(&u);
    if (http_parser_parse_url(c->scratch.base, c->scratch.len, 0, &u) != 0)
        return http_conn_refuse(c, 400);
    if (u.field_set & (1 << UF_PATH))
        set_str(&c->path, c->scratch.base + u.field_data[UF_PATH].off,
                u.field_data[UF_PATH].len);
    else
        set_str(&c->path, "/", 1);
    if (u.field_set & (1 << UF_QUERY))
        set_str(&c->query, c->scratch.base + u.field_data[UF_QUERY].off,
                u.field_data[UF_QUERY].len);
    return 0;
}

static unsigned http_header_id(const char *name, size_t len)
{
    if (len == 9 && strncasecmp(name, "x-api-key", len) == 0)
        return HTTP_HDR_API_KEY;
    if (len == 13 && strncasecmp(name, "authorization", len) == 0)
        return HTTP_HDR_AUTH;
    if (len == 6 && strncasecmp(name, "expect", len) == 0)
        return HTTP_HDR_EXPECT;
    return HTTP_HDR_OTHER;
}

/*
 * Authorization: Basic base64(user:password): the password stands for the
 * API key, so that a browser's own prompt can carry it (GET /dashboard).
 * The user name is ignored; what does not decode is no key.
 */
static void http_basic_password(http_conn_t *c, const char *v, size_t len)
{
    unsigned char plain[256];
    size_t n = 0;
    const char *colon;

    trim(&v, &len);
    if (mbedtls_base64_decode(plain, sizeof(plain) - 1, &n,
                              (const unsigned char *)v, len) != 0)
        return;
    colon = memchr(plain, ':', n);
    if (colon != NULL)
        set_str(&c->bearer, colon + 1, n - (size_t)(colon + 1 - (char *)plain));
}

static void http_header_done(http_conn_t *c)
{
    const char *v = c->scratch.base;
    size_t len = c->scratch.len;

    trim(&v, &len);
    switch (c->cur_header) {
    case HTTP_HDR_API_KEY: set_str(&c->api_key, v, len); break;
    case HTTP_HDR_AUTH:
        /* The scheme is case-insensitive (RFC 7235 section 2.1). */
        if (len > 7 && strncasecmp(v, "bearer ", 7) == 0) {
            v += 7;
            len -= 7;
            trim(&v, &len);
            set_str(&c->bearer, v, len);
        } else if (len > 6 && strncasecmp(v, "basic ", 6) == 0) {
            http_basic_password(c, v + 6, len - 6);
        }
        break;
    case HTTP_HDR_EXPECT:
        c->expect_100 = len == 12 && strncasecmp(v, "100-continue", len) == 0;
        break;
    }
}

/* Ends the element in scratch when the parser moves on to another kind. */
static int http_switch(http_conn_t *c, unsigned elem)
{
    int rc = 0;

    if (c->elem == elem)
        return 0;
    if (c->elem == HTTP_ELEM_URL)
        rc = http_url_done(c);
    else if (c->elem == HTTP_ELEM_FIELD)
        c->cur_header = http_header_id(c->scratch.base, c->scratch.len);
    else if (c->elem == HTTP_ELEM_VALUE)
        http_header_done(c);
    c->elem = elem;
    c->scratch.len = 0;
    return rc;
}

static int http_on_url(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;

    http_switch(c, HTTP_ELEM_URL);
    buf_append(&c->scratch, at, len);
    return 0;
}

static int http_on_header_field(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;

    if (http_switch(c, HTTP_ELEM_FIELD) != 0)
        return -1;
    buf_append(&c->scratch, at, len);
    return 0;
}

static int http_on_header_value(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;

    http_switch(c, HTTP_ELEM_VALUE);
    if (c->cur_header != HTTP_HDR_OTHER)
        buf_append(&c->scratch, at, len);
    return 0;
}

static void http_conn_continue_cb(uv_write_t *req, int status)
{
    if (status < 0)
        http_conn_close(req->handle->data);
}

/* RFC 7231 section 5.1.1: curl waits for this before sending a body of
 * more than 1 KiB. Only sent when the body is acceptable; the buffer is
 * static and at most one is in flight before the response it precedes. */
static void http_conn_continue(http_conn_t *c)
{
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_buf_t buf = uv_buf_init((char *)msg, sizeof(msg) - 1);

    if (uv_write(&c->continue_req, (uv_stream_t *)&c->tcp, &buf, 1,
                 http_conn_continue_cb) != 0)
        http_conn_close(c);
}

static int http_on_headers_complete(http_parser *p)
{
    http_conn_t *c = p->data;
    /* http-parser sets content_length to ULLONG_MAX when it is absent. */
    int sized = p->content_length != ULLONG_MAX;

    if (http_switch(c, HTTP_ELEM_NONE) != 0)
        return -1;
    /* Refuse a declared oversized body before reading any of it. */
    if (sized && p->content_length > c->srv->max_body)
        return http_conn_refuse(c, 413);
    c->head_done = 1;
    if (c->expect_100 &&
        ((p->flags & F_CHUNKED) || (sized && p->content_length > 0)))
        http_conn_continue(c);
    return 0;
}

static int http_on_body(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;

    /* Chunked bodies have no length up front: count as they come. */
    if (len > c->srv->max_body - c->body.len)
        return http_conn_refuse(c, 413);
    buf_append(&c->body, at, len);
    return 0;
}

/* ---- responses ---- */

static void http_conn_reset_request(http_conn_t *c)
{
    free(c->path);
    free(c->query);
    free(c->api_key);
    free(c->bearer);
    c->path = c->query = c->api_key = c->bearer = NULL;
    buf_free(&c->scratch);
    buf_free(&c->body);
    c->elem = HTTP_ELEM_NONE;
    c->cur_header = HTTP_HDR_OTHER;
    c->head_done = 0;
    c->expect_100 = 0;
    c->head_bytes = 0;
    c->err_status = 0;
}

static void http_conn_free_output(http_conn_t *c)
{
    free(c->out_head);
    free(c->out_body);
    c->out_head = c->out_body = NULL;
}

/* A request is being answered: its handler deferred it, or its response is
 * being written. Nothing more is parsed meanwhile. */
static int http_conn_busy(const http_conn_t *c)
{
    return c->writing || c->later != NULL;
}

/* Reads go into the whole buffer, so only once it is parsed to its end; and
 * not while a response is in flight, whose write callback reads again. A
 * deferred request does read, to notice a client that goes away. */
static int http_conn_can_read(const http_conn_t *c)
{
    return !c->writing && c->in_off == c->in_len;
}

static void http_conn_timeout_cb(uv_timer_t *timer)
{
    http_conn_close(timer->data);
}

static void http_conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    http_conn_t *c = h->data;

    /* Reading only happens once everything read before has been parsed. */
    (void)suggested;
    *buf = uv_buf_init(c->in, sizeof(c->in));
}

static void http_conn_read_cb(uv_stream_t *s, ssize_t nread,
                              const uv_buf_t *buf)
{
    http_conn_t *c = s->data;

    (void)buf;
    if (nread < 0) {
        if (nread != UV_EOF)
            gw_debug("http #%llu %s: read: %s", (unsigned long long)c->id,
                     c->peer, uv_strerror((int)nread));
        http_conn_close(c);
        return;
    }
    if (nread == 0 || c->lingering)
        return;
    c->in_off = 0;
    c->in_len = (size_t)nread;
    http_conn_parse(c);
    if (!http_conn_can_read(c))
        uv_read_stop(s);
}

static void http_conn_read_start(http_conn_t *c)
{
    int rc = uv_read_start((uv_stream_t *)&c->tcp, http_conn_alloc_cb,
                           http_conn_read_cb);

    if (rc != 0) {
        gw_debug("http #%llu %s: read: %s", (unsigned long long)c->id, c->peer,
                 uv_strerror(rc));
        http_conn_close(c);
    }
}

static void http_conn_shutdown_cb(uv_shutdown_t *req, int status)
{
    if (status < 0)
        http_conn_close(req->handle->data);
}

/*
 * After the last response: send FIN, then drop whatever the client still
 * sends until it closes too (or HTTP_LINGER_MS passes). Closing with unread
 * input would make the kernel answer with a reset, which can destroy the
 * response before the client has read it (a 413 sent while the client is
 * still uploading is the usual case).
 */
static void http_conn_linger(http_conn_t *c)
{
    c->lingering = 1;
    uv_timer_start(&c->timer, http_conn_timeout_cb, HTTP_LINGER_MS, 0);
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp,
                    http_conn_shutdown_cb) != 0) {
        http_conn_close(c);
        return;
    }
    http_conn_read_start(c);
}

static void http_conn_write_cb(uv_write_t *req, int status)
{
    http_conn_t *c = req->handle->data;

    http_conn_free_output(c);
    c->writing = 0;
    if (c->closing)
        return;
    if (status < 0) {
        gw_debug("http #%llu %s: write: %s", (unsigned long long)c->id, c->peer,
                 uv_strerror(status));
        http_conn_close(c);
        return;
    }
    if (c->close_after) {
        http_conn_linger(c);
        return;
    }
    uv_timer_start(&c->timer, http_conn_timeout_cb, HTTP_IDLE_MS, 0);
    http_parser_pause(&c->parser, 0);
    http_conn_parse(c);
    if (!c->closing && http_conn_can_read(c))
        http_conn_read_start(c);
}

/* Writes a response; takes ownership of body (heap or NULL). */
static void http_conn_send(http_conn_t *c, int status, const char *ctype,
                           const char *extra, char *body, size_t len,
                           int with_body)
{
    static const char fmt[] = "HTTP/1.1 %d %s\r\n"
                              "Content-Type: %s\r\n"
                              "Content-Length: %zu\r\n"
                              "%s"
                              "Connection: %s\r\n\r\n";
    const char *reason = http_status_str((enum http_status)status);
    const char *conn = c->close_after ? "close" : "keep-alive";
    uv_buf_t bufs[2];
    int n;

    if (ctype == NULL)
        ctype = "application/json";
    if (extra == NULL)
        extra = "";
    n = snprintf(NULL, 0, fmt, status, reason, ctype, len, extra, conn);
    c->out_head = gw_malloc((size_t)n + 1);
    snprintf(c->out_head, (size_t)n + 1, fmt, status, reason, ctype, len, extra,
             conn);
    c->out_body = body;
    bufs[0] = uv_buf_init(c->out_head, (unsigned)n);
    bufs[1] = uv_buf_init(body, (unsigned)len);
    /* A deferred answer finds the connection reading (http_conn_can_read);
     * the write callback starts again. */
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->writing = 1;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs,
                 with_body && len > 0 ? 2 : 1, http_conn_write_cb) != 0) {
        http_conn_free_output(c);
        c->writing = 0;
        http_conn_close(c);
    }
}

/* Answers a request refused by the server itself, and ends the
 * connection: after a malformed or oversized request the framing of what
 * follows cannot be trusted. */
static void http_conn_fail(http_conn_t *c, int status)
{
    const char *reason = http_status_str((enum http_status)status);
    size_t len = strlen(reason) + sizeof("{\"error\":\"\"}") - 1;
    char *body = gw_malloc(len + 1);

    gw_debug("http #%llu %s: %d %s (%s)", (unsigned long long)c->id, c->peer,
             status, reason, http_errno_name(HTTP_PARSER_ERRNO(&c->parser)));
    snprintf(body, len + 1, "{\"error\":\"%s\"}", reason);
    c->close_after = 1;
    http_conn_send(c, status, NULL, NULL, body, len, 1);
}

static int http_on_message_complete(http_parser *p)
{
    http_conn_t *c = p->data;
    gw_http_server_t *srv = c->srv;
    gw_http_request_t req = {
        .method = http_method_str((enum http_method)p->method),
        .path = c->path,
        .query = c->query ? c->query : "",
        .api_key = c->api_key ? c->api_key : c->bearer,
        .body = c->body.base ? c->body.base : "",
        .body_len = c->body.len,
    };
    http_exchange_t x = {
        .res = {.status = 200},
        .conn = c,
        .with_body = p->method != HTTP_HEAD,
    };

    /* http_parser_execute returns right after this request; parsing
     * resumes once its response has been written. */
    http_parser_pause(p, 1);
    c->close_after = !http_should_keep_alive(p);
    srv->cb(&req, &x.res, srv->data);
    http_conn_reset_request(c);
    /* A deferred request is answered by gw_http_answer. The handler may
     * also have closed the server, and with it this connection. */
    if (x.deferred || c->closing)
        free(x.res.body);
    else
        http_conn_send(c, x.res.status, x.res.content_type, x.res.headers,
                       x.res.body, x.res.body_len, x.with_body);
    return 0;
}

/*
 * Runs the parser over the unparsed input until it is used up, a request is
 * being answered, or the request is refused. While a request's head is being
 * read the parser is given no more than what is left of HTTP_HEAD_MAX, so
 * an oversized head is refused at its first byte past the limit.
 */
static void http_conn_parse(http_conn_t *c)
{
    while (c->in_off < c->in_len && !http_conn_busy(c) && !c->closing) {
        size_t n = c->in_len - c->in_off, used;
        enum http_errno err;

        if (!c->head_done) {
            if (c->head_bytes == HTTP_HEAD_MAX) {
                http_conn_fail(c, 431);
                return;
            }
            if (n > HTTP_HEAD_MAX - c->head_bytes)
                n = HTTP_HEAD_MAX - c->head_bytes;
        }
        used = http_parser_execute(&c->parser, &http_settings,
                                   c->in + c->in_off, n);
        err = HTTP_PARSER_ERRNO(&c->parser);
        if (err != HPE_OK && err != HPE_PAUSED) {
            http_conn_fail(c, c->err_status ? c->err_status : 400);
            return;
        }
        /* Once the head is done (or the request is being answered, and was
         * reset), the count starts again with the next request. */
        if (!c->head_done && !http_conn_busy(c))
            c->head_bytes += used;
        c->in_off += used;
    }
}

/* ---- connections ---- */

static void srv_unref(gw_http_server_t *srv)
{
    if (--srv->refs == 0)
        free(srv);
}

static void http_conn_close_cb(uv_handle_t *h)
{
    http_conn_t *c = h->data;
    gw_http_server_t *srv = c->srv;

    if (--c->handles > 0)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    /* An answer still to come finds no connection and is dropped. */
    if (c->later != NULL)
        c->later->conn = NULL;
    http_conn_reset_request(c);
    http_conn_free_output(c);
    free(c);
    srv_unref(srv);
}

/* Safe to call twice; memory goes in the close callbacks. */
static void http_conn_close(http_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, http_conn_close_cb);
    uv_close((uv_handle_t *)&c->timer, http_conn_close_cb);
}

static http_conn_t *http_conn_new(gw_http_server_t *srv)
{
    http_conn_t *c = gw_calloc(1, sizeof(*c));

    c->srv = srv;
    c->id = ++srv->next_id;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->next = srv->conns;
    if (c->next)
        c->next->prev = c;
    srv->conns = c;
    srv->nconns++;
    srv->refs++;
    return c;
}

static void http_conn_peer(http_conn_t *c)
{
    struct sockaddr_storage sa;
    int len = sizeof(sa);

    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &len) != 0)
        sa.ss_family = AF_UNSPEC;
    gw_addr_name((struct sockaddr *)&sa, 1, c->peer, sizeof(c->peer));
}

/* Refuses connections over GW_HTTP_MAX_CONNS, logging at most once a second. */
static int srv_full(gw_http_server_t *srv)
{
    uint64_t now = uv_now(srv->loop);

    if (srv->nconns <= GW_HTTP_MAX_CONNS)
        return 0;
    if (now - srv->full_log_ms >= 1000) {
        srv->full_log_ms = now;
        gw_warn("http: over %d connections, refusing new ones",
                GW_HTTP_MAX_CONNS);
    }
    return 1;
}

static void srv_connection_cb(uv_stream_t *listener, int status)
{
    gw_http_server_t *srv = listener->data;
    http_conn_t *c;
    int rc;

    if (status < 0) {
        gw_warn("http: accept: %s", uv_strerror(status));
        return;
    }
    c = http_conn_new(srv);
    rc = uv_accept(listener, (uv_stream_t *)&c->tcp);
    if (rc != 0) {
        gw_warn("http: accept: %s", uv_strerror(rc));
        http_conn_close(c);
        return;
    }
    if (srv_full(srv)) {
        http_conn_close(c);
        return;
    }
    http_conn_peer(c);
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_start(&c->timer, http_conn_timeout_cb, HTTP_IDLE_MS, 0);
    http_conn_read_start(c);
}

/* ---- server ---- */

static int srv_addr(const char *bind, int port, struct sockaddr_storage *sa)
{
    if (port < 0 || port > 65535)
        return -1;
    if (uv_ip4_addr(bind, port, (struct sockaddr_in *)sa) == 0)
        return 0;
    return uv_ip6_addr(bind, port, (struct sockaddr_in6 *)sa) == 0 ? 0 : -1;
}

static void srv_close_cb(uv_handle_t *h)
{
    srv_unref(h->data);
}

int gw_http_server_start(gw_http_server_t **out, uv_loop_t *loop,
                         const char *bind, int port, size_t max_body,
                         gw_http_handler_cb cb, void *data)
{
    struct sockaddr_storage sa;
    gw_http_server_t *srv;
    int rc;

    *out = NULL;
    if (srv_addr(bind, port, &sa) != 0) {
        gw_error("http: invalid listen address %s port %d", bind, port);
        return GW_EINVAL;
    }
    srv = gw_calloc(1, sizeof(*srv));
    srv->loop = loop;
    srv->cb = cb;
    srv->data = data;
    srv->max_body = max_body;
    srv->refs = 1;
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    /* libuv sets SO_REUSEADDR on every TCP bind, so a restarted daemon does
     * not wait for the previous one's connections in TIME_WAIT. */
    rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, HTTP_BACKLOG,
                       srv_connection_cb);
    if (rc != 0)
        goto Error;
    gw_info("http: listening on %s port %d", bind, port);
    *out = srv;
    return 0;

Error:
    gw_error("http: cannot listen on %s port %d: %s", bind, port,
             uv_strerror(rc));
    /* The loop knows the handle now: it is freed in its close callback,
     * the next time the caller runs the loop. */
    gw_http_server_close(srv);
    return GW_EIO;
}

void gw_http_server_close(gw_http_server_t *srv)
{
    if (srv == NULL || srv->closing)
        return;
    srv->closing = 1;
    uv_close((uv_handle_t *)&srv->listener, srv_close_cb);
    for (http_conn_t *c = srv->conns; c != NULL; c = c->next)
        http_conn_close(c);
}

/* ---- deferred answers ---- */

gw_http_later_t *gw_http_defer(gw_http_response_t *res)
{
    http_exchange_t *x = (http_exchange_t *)res;
    http_conn_t *c = x->conn;
    gw_http_later_t *l = gw_malloc(sizeof(*l));

    l->conn = c;
    l->with_body = x->with_body;
    c->later = l;
    x->deferred = 1;
    /* The answer gets a whole idle period, however long the request took
     * to arrive. A closing timer cannot be started. */
    if (!c->closing)
        uv_timer_start(&c->timer, http_conn_timeout_cb, HTTP_IDLE_MS, 0);
    return l;
}

void gw_http_answer(gw_http_later_t *l, int status, const char *content_type,
                    char *body, size_t body_len)
{
    http_conn_t *c = l->conn;

    /* A closing connection is freed later: it must not point to l then. */
    if (c != NULL)
        c->later = NULL;
    if (c != NULL && !c->closing)
        http_conn_send(c, status, content_type, NULL, body, body_len,
                       l->with_body);
    else
        free(body);
    free(l);
}
