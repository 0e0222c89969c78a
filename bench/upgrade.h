/*
 * The client half of the WebSocket opening handshake (RFC 6455 section 4.1):
 * the request, and a pure parser of the server's answer.
 */
#ifndef BENCH_UPGRADE_H
#define BENCH_UPGRADE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Longest response header the parser waits for. */
#define UPGRADE_MAX_RESPONSE 8192

/* Length of a Sec-WebSocket-Accept value plus its NUL. */
#define UPGRADE_ACCEPT_SIZE 29

enum {
    UPGRADE_ERR_TOO_LONG = -1, /* no blank line within UPGRADE_MAX_RESPONSE */
    UPGRADE_ERR_STATUS = -2,   /* not "HTTP/1.1 101" */
    UPGRADE_ERR_ACCEPT = -3,   /* Sec-WebSocket-Accept missing or wrong */
};

/*
 * Writes the GET request for path on host (e.g. "127.0.0.1:3005") with the
 * 16-byte nonce key, and the Accept value the server must answer with.
 * Returns the request's length, or 0 when it does not fit in cap.
 */
size_t upgrade_request(char *out, size_t cap, const char *host,
                       const char *path, const uint8_t key[16],
                       char accept[UPGRADE_ACCEPT_SIZE]);

/*
 * Parses the response in buf[0..len). Returns the size of its header block
 * once complete and valid (the WebSocket stream starts right after it), 0
 * when more is needed, or an UPGRADE_ERR_*. *status gets the HTTP status
 * when the status line is complete.
 */
ssize_t upgrade_response(const char *buf, size_t len, const char *accept,
                         int *status);

#endif
