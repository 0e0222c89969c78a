#include "httpc.h"

#include "net.h"

#include "gw/alloc.h"
#include "gw/buf.h"
#include "gw/error.h"
#include "gw/version.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

/* A header's name may come in pieces: they are gathered (up to the size
 * of want's, which is all a comparison needs). */
static int httpc_on_header_field(http_parser *p, const char *at, size_t len)
{
    ctl_httpc_resp_t *r = p->data;

    if (r->header_done) {
        r->name_len = 0;
        r->header_done = 0;
    }
    if (r->name_len + len < sizeof(r->name))
        memcpy(r->name + r->name_len, at, len);
    r->name_len += len;
    return 0;
}

static int httpc_on_header_value(http_parser *p, const char *at, size_t len)
{
    ctl_httpc_resp_t *r = p->data;
    size_t have;

    if (!r->header_done) {
        r->header_done = 1;
        r->in_want = r->want != NULL && r->name_len == strlen(r->want) &&
                     r->name_len < sizeof(r->name) &&
                     strncasecmp(r->want, r->name, r->name_len) == 0;
        /* The last of a repeated header wins. */
        if (r->in_want)
            r->want_value[0] = '\0';
    }
    have = strlen(r->want_value);
    if (r->in_want && have + len < sizeof(r->want_value)) {
        memcpy(r->want_value + have, at, len);
        r->want_value[have + len] = '\0';
    }
    return 0;
}

static int httpc_on_headers_complete(http_parser *p)
{
    ctl_httpc_resp_t *r = p->data;

    r->status = (int)p->status_code;
    return 0;
}

static int httpc_on_body(http_parser *p, const char *at, size_t len)
{
    ctl_httpc_resp_t *r = p->data;

    if (len > CTL_HTTPC_MAX_BODY - r->body_len)
        return -1;
    if (r->body_len + len + 1 > r->body_cap) {
        while (r->body_len + len + 1 > r->body_cap)
            r->body_cap = r->body_cap ? r->body_cap * 2 : 4096;
        r->body = gw_realloc(r->body, r->body_cap);
    }
    memcpy(r->body + r->body_len, at, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return 0;
}

static int httpc_on_message_complete(http_parser *p)
{
    ctl_httpc_resp_t *r = p->data;

    r->complete = 1;
    /* Stop here: bytes after the response are not ours to read. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings httpc_settings = {
    .on_header_field = httpc_on_header_field,
    .on_header_value = httpc_on_header_value,
    .on_headers_complete = httpc_on_headers_complete,
    .on_body = httpc_on_body,
    .on_message_complete = httpc_on_message_complete,
};

void ctl_httpc_resp_init(ctl_httpc_resp_t *r, const char *want)
{
    *r = (ctl_httpc_resp_t){.want = want};
    http_parser_init(&r->parser, HTTP_RESPONSE);
    r->parser.data = r;
}

void ctl_httpc_resp_free(ctl_httpc_resp_t *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = r->body_cap = 0;
}

int ctl_httpc_resp_feed(ctl_httpc_resp_t *r, const char *buf, size_t len,
                        int eof, size_t *used)
{
    size_t n;
    enum http_errno e;

    *used = 0;
    if (r->complete)
        return 1;
    n = http_parser_execute(&r->parser, &httpc_settings, eof ? NULL : buf,
                            eof ? 0 : len);
    e = HTTP_PARSER_ERRNO(&r->parser);
    if (r->complete) {
        /* Past the headers' last byte after a 101; for other answers,
         * which end the connection, it does not matter. */
        *used = n;
        return 1;
    }
    if (e == HPE_CB_body)
        return GW_ETOOBIG;
    if (e != HPE_OK || (!eof && n != len))
        return GW_EPARSE;
    return eof ? GW_EPARSE : 0;
}

/* ---- one request ------------------------------------------------------ */

typedef struct httpc_fetch {
    const ctl_httpc_req_t *req;
    ctl_httpc_resp_t *resp;
    ctl_net_t *net;
    uv_timer_t timer; /* the answer's deadline, once connected */
    char *request;    /* owned: the bytes to send */
    size_t request_len;
    int rc;    /* the outcome */
    char *err; /* borrowed: the caller's */
    size_t errlen;
} httpc_fetch_t;

static void httpc_timeout_cb(uv_timer_t *t)
{
    httpc_fetch_t *f = t->data;

    f->rc = GW_EIO;
    snprintf(f->err, f->errlen, "no answer from %s within %.1f s",
             f->req->base->authority, f->req->timeout_ms / 1000.0);
    ctl_net_close(f->net);
}

static void httpc_on_open(void *data)
{
    httpc_fetch_t *f = data;

    uv_timer_start(&f->timer, httpc_timeout_cb, f->req->timeout_ms, 0);
    ctl_net_write(f->net, f->request, f->request_len);
}

static void httpc_on_data(void *data, const char *buf, size_t len)
{
    httpc_fetch_t *f = data;
    size_t used;
    int rc = ctl_httpc_resp_feed(f->resp, buf, len, 0, &used);

    if (rc == 0)
        return;
    if (rc < 0) {
        f->rc = rc;
        snprintf(f->err, f->errlen, "%s answered %s", f->req->base->authority,
                 rc == GW_ETOOBIG ? "with a body over 16 MiB"
                                  : "with what is not HTTP");
    }
    ctl_net_close(f->net);
}

static void httpc_on_close(void *data, int status, const char *why)
{
    httpc_fetch_t *f = data;
    size_t used;

    uv_close((uv_handle_t *)&f->timer, NULL);
    if (f->rc != 0 || f->resp->complete)
        return;
    if (status == 0 && ctl_httpc_resp_feed(f->resp, NULL, 0, 1, &used) == 1)
        return;
    f->rc = status != 0 ? status : GW_EIO;
    snprintf(f->err, f->errlen, "%s",
             status != 0 ? why : "the answer was cut short");
}

/* The request's bytes, or GW_EINVAL when the key could break the header
 * block. */
static int httpc_request(const ctl_httpc_req_t *req, gw_buf_t *b)
{
    const char *base = req->base->path;
    size_t blen = strlen(base);

    for (const char *k = req->api_key; k != NULL && *k != '\0'; k++)
        if ((unsigned char)*k < ' ' || *k == 0x7f)
            return GW_EINVAL;
    /* "/gw/" + "/stats" is "/gw/stats". */
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    gw_buf_printf(b,
                  "%s %.*s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gwctl/%s\r\n"
                  "Accept: application/json\r\nConnection: close\r\n",
                  req->method, (int)blen, base, req->path, req->base->authority,
                  GW_VERSION);
    if (req->api_key != NULL)
        gw_buf_printf(b, "X-API-Key: %s\r\n", req->api_key);
    if (req->body != NULL)
        gw_buf_printf(b,
                      "Content-Type: application/json\r\n"
                      "Content-Length: %zu\r\n",
                      req->body_len);
    gw_buf_printf(b, "\r\n");
    if (req->body != NULL)
        gw_buf_append(b, req->body, req->body_len);
    return 0;
}

int ctl_httpc_fetch(const ctl_httpc_req_t *req, ctl_httpc_resp_t *resp,
                    char *err, size_t errlen)
{
    static const ctl_net_hooks_t hooks = {httpc_on_open, httpc_on_data,
                                          httpc_on_close};
    httpc_fetch_t f = {.req = req, .resp = resp, .err = err, .errlen = errlen};
    gw_buf_t b = {0};
    uv_loop_t loop;

    if (httpc_request(req, &b) != 0) {
        free(b.data);
        snprintf(err, errlen, "the API key has control characters");
        return GW_EINVAL;
    }
    f.request = gw_buf_steal(&b, &f.request_len);
    uv_loop_init(&loop);
    uv_timer_init(&loop, &f.timer);
    f.timer.data = &f;
    f.net =
        ctl_net_open(&loop, req->base, req->tls, req->timeout_ms, &hooks, &f);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(f.request);
    return f.rc;
}
