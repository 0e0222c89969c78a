/*
 * The WebSocket opening handshake (RFC 6455 section 4.2): a pure,
 * incremental parser of the client's HTTP/1.1 upgrade request built on
 * http-parser, and the server's answers. No I/O here.
 */
#ifndef GW_HANDSHAKE_H
#define GW_HANDSHAKE_H

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw_handshake {
    http_parser parser;         /* parser.data = this */
    uint32_t max_header_size;   /* request bytes allowed through the headers */
    uint32_t seen;              /* request bytes consumed so far */
    int status;                 /* HTTP status of a rejection, 0 until then */
    int err;                    /* gw_err_t returned with that rejection */
    unsigned upgrade_ok : 1;    /* "Upgrade" lists "websocket" */
    unsigned connection_ok : 1; /* "Connection" lists "upgrade" */
    unsigned version_ok : 1;    /* every "Sec-WebSocket-Version" is 13 */
    unsigned version_seen : 1;  /* a "Sec-WebSocket-Version" was present */
    unsigned key_seen : 1;      /* a "Sec-WebSocket-Key" was present */
    unsigned host_seen : 1;     /* a "Host" was present */
    unsigned host_dup : 1;      /* and another one after it */
    unsigned done : 1;          /* accepted; the parser has stopped */
    unsigned char elem;         /* what the parser last reported (private) */
    unsigned char cur_header;   /* which interesting header is being read */
    char key[32];               /* valid Sec-WebSocket-Key, NUL-terminated */
    size_t key_len;             /* 24 once a valid key was seen, else 0 */
    char *token;                /* owned: ?token= or "Authorization: Bearer" */
    char *path;                 /* owned: request path without the query */
    char *origin;               /* owned: the first "Origin", or NULL */
    char *scratch;              /* owned: the URL, header name or value being
                                   accumulated across split input */
    size_t scratch_len;         /* bytes used in scratch */
    size_t scratch_cap;         /* bytes allocated for scratch */
} gw_handshake_t;

void gw_handshake_init(gw_handshake_t *hs, uint32_t max_header_size);
void gw_handshake_free(gw_handshake_t *hs);

/*
 * Feeds len bytes. Returns GW_EAGAIN when more input is needed (all of it
 * was consumed), 0 when the request is complete and acceptable (*consumed
 * counts the bytes of buf that end the request, hs->seen the whole request;
 * bytes after them are WebSocket frames), or GW_EPARSE
 * / GW_EINVAL / GW_ETOOBIG with hs->status set to the HTTP status to answer
 * (400 malformed, missing key or Host, bad Upgrade/Connection; 426 wrong
 * version;
 * 431 headers over max_header_size; 405 not GET). Once a result is reached,
 * later calls return it again and consume nothing.
 */
int gw_handshake_feed(gw_handshake_t *hs, const char *buf, size_t len,
                      size_t *consumed);

/* Writes the 101 response for an accepted request; returns its length, or 0
 * if the request was not accepted or out is too small (256 bytes is enough).
 */
size_t gw_handshake_accept(const gw_handshake_t *hs, char *out, size_t outlen);

/*
 * Writes a complete error response for `status` (426 carries
 * "Sec-WebSocket-Version: 13", 405 "Allow: GET"), with "Connection: close";
 * returns its length, or 0 if out is too small (256 bytes is enough).
 */
size_t gw_handshake_reject(int status, char *out, size_t outlen);

#endif
