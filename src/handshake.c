/*
 * The WebSocket opening handshake (RFC 6455 section 4.2.1), parsed with
 * http-parser. The parser hands us the URL and every header name and value in
 * pieces that follow the input's arbitrary splits, so each element is
 * accumulated in hs->scratch until the next element starts; only then is it
 * judged. The checks of RFC 6455 are made once, when the headers are
 * complete, so that the answer does not depend on header order.
 */
#include "gw/handshake.h"

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/query.h"

#include <limits.h>
#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 6455 section 1.3: appended to the client's key before hashing. */
#define HS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* base64 of 16 bytes, padding included. */
#define HS_KEY_LEN 24

/* What the parser reported last, so that we know when an element ends. */
enum { HS_ELEM_NONE, HS_ELEM_URL, HS_ELEM_FIELD, HS_ELEM_VALUE };

/* The headers we look at; every other value is skipped, not buffered. */
enum {
    HS_HDR_OTHER,
    HS_HDR_UPGRADE,
    HS_HDR_CONNECTION,
    HS_HDR_KEY,
    HS_HDR_VERSION,
    HS_HDR_AUTHORIZATION,
    HS_HDR_HOST,
    HS_HDR_ORIGIN,
};

static const struct {
    const char *name;
    unsigned char id;
} hs_headers[] = {
    {"upgrade", HS_HDR_UPGRADE},
    {"connection", HS_HDR_CONNECTION},
    {"sec-websocket-key", HS_HDR_KEY},
    {"sec-websocket-version", HS_HDR_VERSION},
    {"authorization", HS_HDR_AUTHORIZATION},
    {"host", HS_HDR_HOST},
    {"origin", HS_HDR_ORIGIN},
};

static int hs_on_url(http_parser *p, const char *at, size_t len);
static int hs_on_header_field(http_parser *p, const char *at, size_t len);
static int hs_on_header_value(http_parser *p, const char *at, size_t len);
static int hs_on_headers_complete(http_parser *p);

static const http_parser_settings hs_settings = {
    .on_url = hs_on_url,
    .on_header_field = hs_on_header_field,
    .on_header_value = hs_on_header_value,
    .on_headers_complete = hs_on_headers_complete,
};

/* Records the answer to a rejected request; returns -1 so that a callback
 * can stop the parser with `return hs_reject(...)`. The first reason wins. */
static int hs_reject(gw_handshake_t *hs, int status, int err)
{
    if (hs->status == 0) {
        hs->status = status;
        hs->err = err;
    }
    return -1;
}

static void hs_scratch_append(gw_handshake_t *hs, const char *at, size_t len)
{
    /* Bounded by max_header_size: only request header bytes land here. */
    if (hs->scratch_len + len > hs->scratch_cap) {
        hs->scratch_cap = (hs->scratch_len + len) * 2;
        hs->scratch = gw_realloc(hs->scratch, hs->scratch_cap);
    }
    memcpy(hs->scratch + hs->scratch_len, at, len);
    hs->scratch_len += len;
}

static void hs_trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

/* Whether the comma-separated list s[0..len) holds `token`, ignoring case
 * (RFC 7230 section 7: "Connection: keep-alive, Upgrade" is common). */
static int hs_has_token(const char *s, size_t len, const char *token)
{
    size_t tlen = strlen(token);

    for (;;) {
        const char *comma = memchr(s, ',', len);
        size_t n = comma ? (size_t)(comma - s) : len;
        const char *item = s;
        size_t ilen = n;

        hs_trim(&item, &ilen);
        if (ilen == tlen && strncasecmp(item, token, tlen) == 0)
            return 1;
        if (comma == NULL)
            return 0;
        s += n + 1;
        len -= n + 1;
    }
}

static void hs_set_token(gw_handshake_t *hs, char *token)
{
    free(hs->token);
    hs->token = token;
}

/* Takes the first "token" parameter of the query; an empty one is absent. */
static int hs_query_token(gw_handshake_t *hs, const char *q, size_t len)
{
    char *token;
    int rc = gw_query_get(q, len, "token", &token);

    if (rc == GW_EPARSE)
        return hs_reject(hs, 400, GW_EPARSE);
    if (rc == 0 && token[0] != '\0')
        hs_set_token(hs, token);
    else
        free(token);
    return 0;
}

/* The request target is complete: keep its path, look for ?token=. */
static int hs_url_done(gw_handshake_t *hs)
{
    struct http_parser_url u;
    const char *url = hs->scratch;

    /* http_parser_url holds 16-bit offsets; a longer target cannot be split
     * reliably, and no client of ours sends one. */
    http_parser_url_init(&u);
    if (hs->scratch_len > UINT16_MAX ||
        http_parser_parse_url(url, hs->scratch_len, 0, &u) != 0)
        return hs_reject(hs, 400, GW_EPARSE);
    if (u.field_set & (1 << UF_PATH))
        hs->path = gw_strndup(url + u.field_data[UF_PATH].off,
                              u.field_data[UF_PATH].len);
    else
        hs->path = gw_strdup("/");
    if (u.field_set & (1 << UF_QUERY))
        return hs_query_token(hs, url + u.field_data[UF_QUERY].off,
                              u.field_data[UF_QUERY].len);
    return 0;
}

/* RFC 6455 section 4.2.1 item 5: base64 that decodes to exactly 16 bytes.
 * A duplicated key is ambiguous and makes the request invalid. */
static void hs_key(gw_handshake_t *hs, const char *v, size_t len)
{
    unsigned char raw[HS_KEY_LEN];
    size_t olen = 0;

    int dup = hs->key_seen;

    hs->key_seen = 1;
    hs->key_len = 0;
    if (dup || len != HS_KEY_LEN ||
        mbedtls_base64_decode(raw, sizeof(raw), &olen, (const unsigned char *)v,
                              len) != 0 ||
        olen != 16)
        return;
    memcpy(hs->key, v, len);
    hs->key[len] = '\0';
    hs->key_len = len;
}

/* "Authorization: Bearer <token>"; the scheme is case-insensitive (RFC
 * 7235 section 2.1). Other schemes are not ours and are ignored. */
static void hs_bearer(gw_handshake_t *hs, const char *v, size_t len)
{
    if (len <= 7 || strncasecmp(v, "bearer ", 7) != 0)
        return;
    v += 7;
    len -= 7;
    hs_trim(&v, &len);
    if (len > 0)
        hs_set_token(hs, gw_strndup(v, len));
}

static void hs_header_done(gw_handshake_t *hs)
{
    const char *v = hs->scratch;
    size_t len = hs->scratch_len;

    hs_trim(&v, &len);
    switch (hs->cur_header) {
    case HS_HDR_UPGRADE:
        hs->upgrade_ok |= hs_has_token(v, len, "websocket");
        break;
    case HS_HDR_CONNECTION:
        hs->connection_ok |= hs_has_token(v, len, "upgrade");
        break;
    case HS_HDR_KEY: hs_key(hs, v, len); break;
    case HS_HDR_VERSION:
        hs->version_ok = (!hs->version_seen || hs->version_ok) && len == 2 &&
                         memcmp(v, "13", 2) == 0;
        hs->version_seen = 1;
        break;
    case HS_HDR_AUTHORIZATION: hs_bearer(hs, v, len); break;
    case HS_HDR_HOST:
        hs->host_dup |= hs->host_seen;
        hs->host_seen = 1;
        break;
    case HS_HDR_ORIGIN:
        /* A browser sends one; the first is the one checked. */
        if (hs->origin == NULL)
            hs->origin = gw_strndup(v, len);
        break;
    }
}

static unsigned char hs_header_id(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(hs_headers) / sizeof(hs_headers[0]); i++)
        if (strlen(hs_headers[i].name) == len &&
            strncasecmp(hs_headers[i].name, name, len) == 0)
            return hs_headers[i].id;
    return HS_HDR_OTHER;
}

/* Ends the element in scratch when the parser moves on to another kind. */
static int hs_switch(gw_handshake_t *hs, unsigned char elem)
{
    int rc = 0;

    if (hs->elem == elem)
        return 0;
    if (hs->elem == HS_ELEM_URL)
        rc = hs_url_done(hs);
    else if (hs->elem == HS_ELEM_FIELD)
        hs->cur_header = hs_header_id(hs->scratch, hs->scratch_len);
    else if (hs->elem == HS_ELEM_VALUE)
        hs_header_done(hs);
    hs->elem = elem;
    hs->scratch_len = 0;
    return rc;
}

static int hs_on_url(http_parser *p, const char *at, size_t len)
{
    gw_handshake_t *hs = p->data;

    hs_switch(hs, HS_ELEM_URL);
    hs_scratch_append(hs, at, len);
    return 0;
}

static int hs_on_header_field(http_parser *p, const char *at, size_t len)
{
    gw_handshake_t *hs = p->data;

    if (hs_switch(hs, HS_ELEM_FIELD) != 0)
        return -1;
    hs_scratch_append(hs, at, len);
    return 0;
}

static int hs_on_header_value(http_parser *p, const char *at, size_t len)
{
    gw_handshake_t *hs = p->data;

    hs_switch(hs, HS_ELEM_VALUE);
    if (hs->cur_header != HS_HDR_OTHER)
        hs_scratch_append(hs, at, len);
    return 0;
}

/*
 * The checks of RFC 6455 section 4.2.1, in an order that gives the most
 * useful answer: the version is checked before the key because a client of
 * an older draft (hixie-76 has no Sec-WebSocket-Key) should learn from the
 * 426 which version we speak rather than get a bare 400.
 */
static int hs_check(gw_handshake_t *hs)
{
    const http_parser *p = &hs->parser;

    if (p->method != HTTP_GET)
        return hs_reject(hs, 405, GW_EINVAL);
    if (p->http_major < 1 || (p->http_major == 1 && p->http_minor < 1))
        return hs_reject(hs, 400, GW_EINVAL);
    /* RFC 7230 5.4: exactly one Host in an HTTP/1.1 request (RFC 6455
     * 4.1 requires it of an opening handshake too). */
    if (!hs->host_seen || hs->host_dup)
        return hs_reject(hs, 400, GW_EINVAL);
    /* http-parser sets content_length to ULLONG_MAX when it is absent. */
    if ((p->flags & F_CHUNKED) ||
        (p->content_length != ULLONG_MAX && p->content_length > 0))
        return hs_reject(hs, 400, GW_EINVAL);
    if (!hs->upgrade_ok || !hs->connection_ok)
        return hs_reject(hs, 400, GW_EINVAL);
    if (!hs->version_ok)
        return hs_reject(hs, 426, GW_EINVAL);
    if (hs->key_len == 0)
        return hs_reject(hs, 400, GW_EINVAL);
    return 0;
}

static int hs_on_headers_complete(http_parser *p)
{
    gw_handshake_t *hs = p->data;

    if (hs_switch(hs, HS_ELEM_NONE) != 0 || hs_check(hs) != 0)
        return -1;
    hs->done = 1;
    /* 2 tells http-parser that what follows is another protocol: it stops
     * right after the blank line even without "Connection: upgrade" as it
     * understands it. */
    return 2;
}

void gw_handshake_init(gw_handshake_t *hs, uint32_t max_header_size)
{
    memset(hs, 0, sizeof(*hs));
    http_parser_init(&hs->parser, HTTP_REQUEST);
    hs->parser.data = hs;
    hs->max_header_size = max_header_size;
}

void gw_handshake_free(gw_handshake_t *hs)
{
    free(hs->token);
    free(hs->path);
    free(hs->origin);
    free(hs->scratch);
    hs->token = hs->path = hs->origin = hs->scratch = NULL;
    hs->scratch_len = hs->scratch_cap = 0;
}

/*
 * The parser never sees more than max_header_size bytes: it is fed at most
 * what is left of the allowance, so an oversized request is refused as soon
 * as its first byte past the limit arrives and nothing grows unbounded.
 */
int gw_handshake_feed(gw_handshake_t *hs, const char *buf, size_t len,
                      size_t *consumed)
{
    size_t room, n, used;

    *consumed = 0;
    if (hs->status != 0)
        return hs->err;
    if (hs->done)
        return 0;
    /* http-parser reads an empty buffer as the end of the stream. */
    if (len == 0)
        return GW_EAGAIN;
    room = hs->max_header_size - hs->seen;
    if (room == 0) {
        hs_reject(hs, 431, GW_ETOOBIG);
        return hs->err;
    }
    n = len < room ? len : room;
    used = http_parser_execute(&hs->parser, &hs_settings, buf, n);
    hs->seen += (uint32_t)used;
    *consumed = used;
    /* A callback's own reason, recorded first, wins over these. */
    if (HTTP_PARSER_ERRNO(&hs->parser) == HPE_HEADER_OVERFLOW)
        hs_reject(hs, 431, GW_ETOOBIG);
    else if (HTTP_PARSER_ERRNO(&hs->parser) != HPE_OK)
        hs_reject(hs, 400, GW_EPARSE);
    else if (hs->done)
        return 0;
    else if (n < len)
        hs_reject(hs, 431, GW_ETOOBIG);
    else
        return GW_EAGAIN;
    return hs->err;
}

size_t gw_handshake_accept(const gw_handshake_t *hs, char *out, size_t outlen)
{
    char in[HS_KEY_LEN + sizeof(HS_GUID)];
    unsigned char digest[20];
    unsigned char accept[32];
    size_t alen;
    int n;

    if (!hs->done)
        return 0;
    memcpy(in, hs->key, HS_KEY_LEN);
    memcpy(in + HS_KEY_LEN, HS_GUID, sizeof(HS_GUID) - 1);
    if (mbedtls_sha1_ret((const unsigned char *)in,
                         HS_KEY_LEN + sizeof(HS_GUID) - 1, digest) != 0 ||
        mbedtls_base64_encode(accept, sizeof(accept), &alen, digest,
                              sizeof(digest)) != 0)
        return 0;
    n = snprintf(out, outlen,
                 "HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n\r\n",
                 (const char *)accept);
    return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
}

size_t gw_handshake_reject(int status, char *out, size_t outlen)
{
    const char *reason = http_status_str((enum http_status)status);
    const char *extra = "";
    int n;

    /* RFC 6455 section 4.4 names the version we speak; RFC 7231 section
     * 6.5.5 requires Allow on a 405. */
    if (status == 426)
        extra = "Sec-WebSocket-Version: 13\r\n";
    else if (status == 405)
        extra = "Allow: GET\r\n";
    n = snprintf(out, outlen,
                 "HTTP/1.1 %d %s\r\n"
                 "Content-Type: text/plain\r\n"
                 "Content-Length: %zu\r\n"
                 "%s"
                 "Connection: close\r\n\r\n"
                 "%s\n",
                 status, reason, strlen(reason) + 1, extra, reason);
    return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
}
