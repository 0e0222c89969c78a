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
    http_parser parser;
    uint32_t max_header_size;  /* request bytes allowed before the body */
    uint32_t seen;             /* request bytes consumed so far */
    int status;                /* HTTP status of a rejection, 0 until then */
    unsigned upgrade_ok : 1;   /* "Upgrade: websocket" present */
    unsigned connection_ok : 1;/* "Connection" lists "upgrade" */
    unsigned version_ok : 1;   /* "Sec-WebSocket-Version: 13" */
    unsigned version_seen : 1;
    unsigned done : 1;
    int cur_header;            /* which interesting header is being read */
    char key[32];              /* Sec-WebSocket-Key, NUL-terminated */
    size_t key_len;
    char *token;               /* owned: ?token= or "Authorization: Bearer" */
    char *path;                /* owned: request path without the query */
    char *scratch;             /* owned: split header name/value pieces */
    size_t scratch_len;
} gw_handshake_t;

void gw_handshake_init(gw_handshake_t *hs, uint32_t max_header_size);
void gw_handshake_free(gw_handshake_t *hs);

/*
 * Feeds len bytes. Returns GW_EAGAIN when more input is needed (all of it
 * was consumed), 0 when the request is complete and acceptable (*consumed is
 * the request's length; bytes after it are WebSocket frames), or GW_EPARSE
 * / GW_EINVAL / GW_ETOOBIG with hs->status set to the HTTP status to answer
 * (400 malformed, missing key or bad Upgrade/Connection; 426 wrong version;
 * 431 headers over max_header_size; 405 not GET).
 */
int gw_handshake_feed(gw_handshake_t *hs, const char *buf, size_t len,
                      size_t *consumed);

/* Writes the 101 response for an accepted request; returns its length. */
size_t gw_handshake_accept(const gw_handshake_t *hs, char *out, size_t outlen);

/*
 * Writes a complete error response for `status` (426 carries
 * "Sec-WebSocket-Version: 13"), with "Connection: close"; returns its length.
 */
size_t gw_handshake_reject(int status, char *out, size_t outlen);

#endif
