/*
 * HTTP/1.1 as gwctl speaks it to the gateway's HTTP port: a response
 * parser over http-parser that takes input in pieces (pure; the WebSocket
 * upgrade reads its 101 with it too), and one request at a time over a
 * connection of net.c, run to completion on a loop of its own.
 */
#ifndef CTL_HTTPC_H
#define CTL_HTTPC_H

#include "tlsc.h"
#include "url.h"

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

/* The largest response body gwctl takes (a /stats of 256 workers is
 * about 1 MiB). */
#define CTL_HTTPC_MAX_BODY (16u << 20)

typedef struct ctl_httpc_resp {
    http_parser parser;
    const char *want;     /* borrowed: a header to keep, or NULL */
    char want_value[128]; /* its value ("" when absent or too long) */
    char name[64];        /* the header name being read */
    size_t name_len;      /* its length, even past name's size */
    int in_want;          /* the header being read is want */
    int header_done;      /* the last header callback was a value */
    int complete;         /* the whole response has arrived */
    int status;           /* once the headers are in */
    char *body;           /* owned, NUL-terminated; NULL when empty */
    size_t body_len;
    size_t body_cap;
} ctl_httpc_resp_t;

/* Prepares r to read one response, keeping the header want (may be NULL). */
void ctl_httpc_resp_init(ctl_httpc_resp_t *r, const char *want);
void ctl_httpc_resp_free(ctl_httpc_resp_t *r);

/*
 * Reads buf[0..len): 1 once the response is complete, with *used the bytes
 * of a 101 (what follows is the other protocol's), 0 when more is
 * needed, GW_EPARSE for what is not HTTP, GW_ETOOBIG for a body over
 * CTL_HTTPC_MAX_BODY. eof says the peer closed (len 0): 1 when that ends
 * the response (a body without a length), else GW_EPARSE (cut short).
 */
int ctl_httpc_resp_feed(ctl_httpc_resp_t *r, const char *buf, size_t len,
                        int eof, size_t *used);

/* A request; everything borrowed for the call. */
typedef struct ctl_httpc_req {
    const ctl_url_t *base; /* the gateway's HTTP address */
    const char *method;    /* "GET", "POST" */
    const char *path;      /* appended to base's path: "/stats" */
    const char *api_key;   /* sent as X-API-Key, or NULL */
    const char *body;      /* JSON, or NULL */
    size_t body_len;
    const ctl_tls_opts_t *tls; /* for https:// */
    uint32_t timeout_ms;       /* the connection's stages, and the answer */
} ctl_httpc_req_t;

/*
 * Sends req and reads its response into resp (ctl_httpc_resp_init'ed,
 * freed by the caller either way): 0, or GW_EIO (unreachable, timed out,
 * cut short), GW_EAUTH (the certificate), GW_EPARSE / GW_ETOOBIG (the
 * answer), GW_EINVAL (the key has control characters), with why in err.
 */
int ctl_httpc_fetch(const ctl_httpc_req_t *req, ctl_httpc_resp_t *resp,
                    char *err, size_t errlen);

#endif
