#include "upgrade.h"

#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char upgrade_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* base64(SHA-1(key_b64 + GUID)), the value RFC 6455 4.2.2 requires. */
static void upgrade_accept(const char *key_b64, char out[UPGRADE_ACCEPT_SIZE])
{
    char cat[64];
    uint8_t digest[20];
    size_t olen = 0;
    int n = snprintf(cat, sizeof(cat), "%s%s", key_b64, upgrade_guid);

    mbedtls_sha1_ret((const uint8_t *)cat, (size_t)n, digest);
    mbedtls_base64_encode((uint8_t *)out, UPGRADE_ACCEPT_SIZE, &olen, digest,
                          sizeof(digest));
    out[olen] = '\0';
}

size_t upgrade_request(char *out, size_t cap, const char *host,
                       const char *path, const uint8_t key[16],
                       char accept[UPGRADE_ACCEPT_SIZE])
{
    char key_b64[32];
    size_t olen = 0;
    int n;

    mbedtls_base64_encode((uint8_t *)key_b64, sizeof(key_b64), &olen, key, 16);
    key_b64[olen] = '\0';
    upgrade_accept(key_b64, accept);
    n = snprintf(out, cap,
                 "GET %s HTTP/1.1\r\n"
                 "Host: %s\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 path, host, key_b64);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Finds header name (without colon) in the block and returns its trimmed
 * value and length, or NULL. */
static const char *upgrade_header(const char *buf, const char *end,
                                  const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *line = memchr(buf, '\n', (size_t)(end - buf));

    while (line != NULL && ++line < end) {
        const char *eol = memchr(line, '\r', (size_t)(end - line));

        if (eol == NULL)
            break;
        if ((size_t)(eol - line) > nlen && line[nlen] == ':' &&
            strncasecmp(line, name, nlen) == 0) {
            const char *v = line + nlen + 1;

            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            while (eol > v && (eol[-1] == ' ' || eol[-1] == '\t'))
                eol--;
            *vlen = (size_t)(eol - v);
            return v;
        }
        line = memchr(eol, '\n', (size_t)(end - eol));
    }
    return NULL;
}

ssize_t upgrade_response(const char *buf, size_t len, const char *accept,
                         int *status)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    const char *v;
    size_t vlen;

    if (len >= 12 && memcmp(buf, "HTTP/1.", 7) == 0)
        *status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + buf[11] - '0';
    if (end == NULL)
        return len >= UPGRADE_MAX_RESPONSE ? UPGRADE_ERR_TOO_LONG : 0;
    if (len < 12 || memcmp(buf, "HTTP/1.1 101", 12) != 0)
        return UPGRADE_ERR_STATUS;
    v = upgrade_header(buf, end + 2, "Sec-WebSocket-Accept", &vlen);
    if (v == NULL || vlen != strlen(accept) || memcmp(v, accept, vlen) != 0)
        return UPGRADE_ERR_ACCEPT;
    return end + 4 - buf;
}
