/*
 * The upgrade parser fed whole, byte by byte and split at every offset, and
 * each way a request is refused, with the answers checked byte for byte.
 */
#include "gw/error.h"
#include "gw/handshake.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MAX_HEADER 4096

/* RFC 6455 section 1.3's example key and its accept value. */
static const char valid_req[] =
    "GET /chat HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Origin: http://example.com\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

static const char valid_resp[] =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/* Feeds `req` in pieces of `step` bytes (0: whole); returns the last result
 * and the total consumed. */
static int feed_steps(gw_handshake_t *hs, const char *req, size_t len,
                      size_t step, size_t *total)
{
    int rc = GW_EAGAIN;
    size_t off = 0;

    *total = 0;
    while (off < len && rc == GW_EAGAIN) {
        size_t n = step == 0 || len - off < step ? len - off : step;
        size_t used = 0;

        rc = gw_handshake_feed(hs, req + off, n, &used);
        assert_true(used <= n);
        if (rc == GW_EAGAIN)
            assert_int_equal(used, n);
        *total += used;
        off += n;
    }
    return rc;
}

/* Parses the whole of `req`; returns the result, hs stays for inspection. */
static int parse(gw_handshake_t *hs, const char *req)
{
    size_t total;

    gw_handshake_init(hs, MAX_HEADER);
    return feed_steps(hs, req, strlen(req), 0, &total);
}

static void expect_reject(const char *req, int status, int err)
{
    gw_handshake_t hs;

    assert_int_equal(parse(&hs, req), err);
    assert_int_equal(hs.status, status);
    gw_handshake_free(&hs);
}

static void expect_valid(gw_handshake_t *hs)
{
    char out[256];
    size_t n = gw_handshake_accept(hs, out, sizeof(out));

    assert_int_equal(n, strlen(valid_resp));
    assert_memory_equal(out, valid_resp, n);
    assert_string_equal(hs->path, "/chat");
    assert_null(hs->token);
}

static void test_valid_whole(void **state)
{
    gw_handshake_t hs;
    size_t total;

    (void)state;
    gw_handshake_init(&hs, MAX_HEADER);
    assert_int_equal(feed_steps(&hs, valid_req, strlen(valid_req), 0, &total),
                     0);
    assert_int_equal(total, strlen(valid_req));
    expect_valid(&hs);
    gw_handshake_free(&hs);
}

static void test_valid_byte_by_byte(void **state)
{
    gw_handshake_t hs;
    size_t total;

    (void)state;
    gw_handshake_init(&hs, MAX_HEADER);
    assert_int_equal(feed_steps(&hs, valid_req, strlen(valid_req), 1, &total),
                     0);
    assert_int_equal(total, strlen(valid_req));
    assert_int_equal(hs.seen, strlen(valid_req));
    expect_valid(&hs);
    gw_handshake_free(&hs);
}

static void test_valid_split_everywhere(void **state)
{
    const size_t len = strlen(valid_req);

    (void)state;
    for (size_t cut = 1; cut < len; cut++) {
        gw_handshake_t hs;
        size_t a = 0, b = 0;

        gw_handshake_init(&hs, MAX_HEADER);
        assert_int_equal(gw_handshake_feed(&hs, valid_req, cut, &a), GW_EAGAIN);
        assert_int_equal(a, cut);
        assert_int_equal(gw_handshake_feed(&hs, valid_req + cut, len - cut, &b),
                         0);
        assert_int_equal(a + b, len);
        expect_valid(&hs);
        gw_handshake_free(&hs);
    }
}

static void test_leftover_frame_bytes(void **state)
{
    /* A masked text frame "hi" arrives in the same read as the request. */
    static const char frame[] = "\x81\x82\x01\x02\x03\x04\x69\x6b";
    char buf[sizeof(valid_req) + sizeof(frame)];
    const size_t rlen = strlen(valid_req), flen = sizeof(frame) - 1;
    gw_handshake_t hs;
    size_t used = 0;

    (void)state;
    memcpy(buf, valid_req, rlen);
    memcpy(buf + rlen, frame, flen);
    gw_handshake_init(&hs, MAX_HEADER);
    assert_int_equal(gw_handshake_feed(&hs, buf, rlen + flen, &used), 0);
    assert_int_equal(used, rlen);

    /* A later call is a no-op that keeps the result. */
    assert_int_equal(gw_handshake_feed(&hs, frame, flen, &used), 0);
    assert_int_equal(used, 0);
    gw_handshake_free(&hs);
}

static void test_token_query(void **state)
{
    gw_handshake_t hs;

    (void)state;
    assert_int_equal(parse(&hs,
                           "GET /gw/ws?v=1&token=a%2Eb%2fc+d%3D HTTP/1.1\r\n"
                           "Host: gw.example\r\n"
                           "Upgrade: websocket\r\n"
                           "Connection: Upgrade\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n"),
                     0);
    assert_string_equal(hs.path, "/gw/ws");
    assert_string_equal(hs.token, "a.b/c+d=");
    gw_handshake_free(&hs);
}

static void test_token_query_bad_escape(void **state)
{
    (void)state;
    expect_reject("GET /?token=ab%2 HTTP/1.1\r\n"
                  "Host: gw.example\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n",
                  400, GW_EPARSE);
}

static void test_token_bearer(void **state)
{
    gw_handshake_t hs;

    (void)state;
    assert_int_equal(parse(&hs,
                           "GET /ws?token=fromquery HTTP/1.1\r\n"
                           "Host: gw.example\r\n"
                           "Upgrade: websocket\r\n"
                           "Authorization: bearer   eyJ.abc.def  \r\n"
                           "Connection: Upgrade\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n"),
                     0);
    assert_string_equal(hs.path, "/ws");
    assert_string_equal(hs.token, "eyJ.abc.def");
    gw_handshake_free(&hs);
}

/* The first Origin is kept, trimmed, for websocket.allowed_origins. */
static void test_origin_kept(void **state)
{
    gw_handshake_t hs;

    (void)state;
    assert_int_equal(parse(&hs,
                           "GET /ws HTTP/1.1\r\n"
                           "Host: gw.example\r\n"
                           "Origin:  https://app.example.com \r\n"
                           "Upgrade: websocket\r\n"
                           "Connection: Upgrade\r\n"
                           "origin: https://second.example\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n"),
                     0);
    assert_string_equal(hs.origin, "https://app.example.com");
    gw_handshake_free(&hs);
    assert_int_equal(parse(&hs,
                           "GET /ws HTTP/1.1\r\n"
                           "Host: gw.example\r\n"
                           "Upgrade: websocket\r\n"
                           "Connection: Upgrade\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n"),
                     0);
    assert_null(hs.origin);
    gw_handshake_free(&hs);
}

static void test_token_other_scheme_ignored(void **state)
{
    gw_handshake_t hs;

    (void)state;
    assert_int_equal(parse(&hs,
                           "GET /ws?token=q HTTP/1.1\r\n"
                           "Host: gw.example\r\n"
                           "Upgrade: websocket\r\n"
                           "Authorization: Basic dXNlcjpwYXNz\r\n"
                           "Connection: Upgrade\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n"),
                     0);
    assert_string_equal(hs.token, "q");
    gw_handshake_free(&hs);
}

static void test_connection_token_list(void **state)
{
    gw_handshake_t hs;

    (void)state;
    assert_int_equal(parse(&hs,
                           "GET / HTTP/1.1\r\n"
                           "Host: gw.example\r\n"
                           "Upgrade: WebSocket\r\n"
                           "Connection: keep-alive, UPGRADE\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n"),
                     0);
    assert_string_equal(hs.path, "/");
    gw_handshake_free(&hs);
}

static void test_reject_method(void **state)
{
    (void)state;
    expect_reject("POST /chat HTTP/1.1\r\n"
                  "Host: gw.example\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n",
                  405, GW_EINVAL);
}

static void test_reject_http10(void **state)
{
    (void)state;
    expect_reject("GET /chat HTTP/1.0\r\n"
                  "Host: gw.example\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n",
                  400, GW_EINVAL);
}

static void test_reject_no_key(void **state)
{
    (void)state;
    expect_reject("GET /chat HTTP/1.1\r\n"
                  "Host: gw.example\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n",
                  400, GW_EINVAL);
}

/* RFC 7230 5.4: exactly one Host; RFC 6455 4.1 asks it of the handshake. */
static void test_reject_host_missing_or_twice(void **state)
{
    (void)state;
    expect_reject("GET /chat HTTP/1.1\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n",
                  400, GW_EINVAL);
    expect_reject("GET /chat HTTP/1.1\r\n"
                  "Host: gw.example\r\n"
                  "Upgrade: websocket\r\n"
                  "Host: other.example\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n",
                  400, GW_EINVAL);
}

static void test_reject_bad_key_length(void **state)
{
    (void)state;
    /* base64 of 15 bytes, and 24 characters that decode to fewer. */
    expect_reject("GET /chat HTTP/1.1\r\n"
                  "Host: gw.example\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n",
                  400, GW_EINVAL);
    expect_reject("GET /chat HTTP/1.1\r\n"
                  "Host: gw.example\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub2 jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n",
                  400, GW_EINVAL);
}

static void test_reject_duplicate_key(void **state)
{
    (void)state;
    expect_reject("GET /chat HTTP/1.1\r\n"
                  "Host: gw.example\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n",
                  400, GW_EINVAL);
}

static void test_reject_no_upgrade(void **state)
{
    (void)state;
    expect_reject("GET /chat HTTP/1.1\r\n"
                  "Host: gw.example\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n",
                  400, GW_EINVAL);
    expect_reject("GET /chat HTTP/1.1\r\n"
                  "Host: gw.example\r\n"
                  "Upgrade: h2c\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n",
                  400, GW_EINVAL);
}

static void test_reject_connection_without_upgrade(void **state)
{
    (void)state;
    expect_reject("GET /chat HTTP/1.1\r\n"
                  "Host: gw.example\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: keep-alive, upgrades\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n",
                  400, GW_EINVAL);
}

static void test_reject_version(void **state)
{
    (void)state;
    expect_reject("GET /chat HTTP/1.1\r\n"
                  "Host: gw.example\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 8\r\n\r\n",
                  426, GW_EINVAL);
    expect_reject("GET /chat HTTP/1.1\r\n"
                  "Host: gw.example\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                  426, GW_EINVAL);
    expect_reject("GET /chat HTTP/1.1\r\n"
                  "Host: gw.example\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Version: 8\r\n\r\n",
                  426, GW_EINVAL);
}

static void test_reject_body(void **state)
{
    (void)state;
    expect_reject("GET /chat HTTP/1.1\r\n"
                  "Host: gw.example\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Content-Length: 2\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\nhi",
                  400, GW_EINVAL);
    expect_reject("GET /chat HTTP/1.1\r\n"
                  "Host: gw.example\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Transfer-Encoding: chunked\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n",
                  400, GW_EINVAL);
}

static void test_content_length_zero(void **state)
{
    gw_handshake_t hs;

    (void)state;
    assert_int_equal(parse(&hs,
                           "GET /chat HTTP/1.1\r\n"
                           "Host: gw.example\r\n"
                           "Upgrade: websocket\r\n"
                           "Connection: Upgrade\r\n"
                           "Content-Length: 0\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n"),
                     0);
    gw_handshake_free(&hs);
}

static void test_reject_oversized(void **state)
{
    const size_t max = 128;
    const size_t len = strlen(valid_req);
    gw_handshake_t hs;
    size_t used = 0, off;
    int rc = GW_EAGAIN;

    (void)state;
    assert_true(len > max);

    /* Fed one byte at a time, the refusal comes with byte max + 1. */
    gw_handshake_init(&hs, max);
    for (off = 0; off < len && rc == GW_EAGAIN; off++)
        rc = gw_handshake_feed(&hs, valid_req + off, 1, &used);
    assert_int_equal(rc, GW_ETOOBIG);
    assert_int_equal(hs.status, 431);
    assert_int_equal(off, max + 1);
    gw_handshake_free(&hs);

    /* Fed whole, the parser never looks past the limit. */
    gw_handshake_init(&hs, max);
    assert_int_equal(gw_handshake_feed(&hs, valid_req, len, &used), GW_ETOOBIG);
    assert_int_equal(hs.status, 431);
    assert_true(hs.seen <= max);
    gw_handshake_free(&hs);

    /* Exactly at the limit is fine. */
    gw_handshake_init(&hs, (uint32_t)len);
    assert_int_equal(gw_handshake_feed(&hs, valid_req, len, &used), 0);
    gw_handshake_free(&hs);
}

static void test_reject_garbage(void **state)
{
    gw_handshake_t hs;
    size_t used;

    (void)state;
    expect_reject("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400,
                  GW_EPARSE);
    expect_reject("GET /chat HTTP/1.1\r\nUpgrade websocket\r\n\r\n", 400,
                  GW_EPARSE);
    expect_reject("GET /chat HTTP/1.1\r\nX: a\x01"
                  "b\r\n\r\n",
                  400, GW_EPARSE);

    /* The error sticks. */
    gw_handshake_init(&hs, MAX_HEADER);
    assert_int_equal(gw_handshake_feed(&hs, "BLAH\r\n", 6, &used), GW_EPARSE);
    assert_int_equal(
        gw_handshake_feed(&hs, valid_req, strlen(valid_req), &used), GW_EPARSE);
    assert_int_equal(used, 0);
    assert_int_equal(hs.status, 400);
    gw_handshake_free(&hs);
}

/* Checks the shape every error answer shares and returns its body. */
static const char *check_reject(int status, const char *reason, char *out,
                                size_t outlen)
{
    char line[64];
    const char *body;
    size_t n = gw_handshake_reject(status, out, outlen);

    assert_true(n > 0);
    assert_int_equal(n, strlen(out));
    snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, reason);
    assert_memory_equal(out, line, strlen(line));
    assert_non_null(strstr(out, "\r\nContent-Type: text/plain\r\n"));
    assert_non_null(strstr(out, "\r\nConnection: close\r\n"));
    body = strstr(out, "\r\n\r\n");
    assert_non_null(body);
    body += 4;
    snprintf(line, sizeof(line), "\r\nContent-Length: %zu\r\n", strlen(body));
    assert_non_null(strstr(out, line));
    return body;
}

static void test_reject_output(void **state)
{
    char out[256];

    (void)state;
    assert_string_equal(check_reject(426, "Upgrade Required", out, sizeof(out)),
                        "Upgrade Required\n");
    assert_non_null(strstr(out, "\r\nSec-WebSocket-Version: 13\r\n"));

    check_reject(400, "Bad Request", out, sizeof(out));
    assert_null(strstr(out, "Sec-WebSocket-Version"));
    check_reject(405, "Method Not Allowed", out, sizeof(out));
    assert_non_null(strstr(out, "\r\nAllow: GET\r\n"));
    check_reject(431, "Request Header Fields Too Large", out, sizeof(out));

    assert_int_equal(gw_handshake_reject(426, out, 16), 0);
}

static void test_accept_needs_valid_request(void **state)
{
    gw_handshake_t hs;
    char out[256];

    (void)state;
    parse(&hs, "GET /chat HTTP/1.1\r\n");
    assert_int_equal(gw_handshake_accept(&hs, out, sizeof(out)), 0);
    gw_handshake_free(&hs);

    parse(&hs, valid_req);
    assert_int_equal(gw_handshake_accept(&hs, out, 32), 0);
    gw_handshake_free(&hs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_whole),
        cmocka_unit_test(test_valid_byte_by_byte),
        cmocka_unit_test(test_valid_split_everywhere),
        cmocka_unit_test(test_leftover_frame_bytes),
        cmocka_unit_test(test_token_query),
        cmocka_unit_test(test_token_query_bad_escape),
        cmocka_unit_test(test_token_bearer),
        cmocka_unit_test(test_origin_kept),
        cmocka_unit_test(test_token_other_scheme_ignored),
        cmocka_unit_test(test_connection_token_list),
        cmocka_unit_test(test_reject_method),
        cmocka_unit_test(test_reject_http10),
        cmocka_unit_test(test_reject_no_key),
        cmocka_unit_test(test_reject_host_missing_or_twice),
        cmocka_unit_test(test_reject_bad_key_length),
        cmocka_unit_test(test_reject_duplicate_key),
        cmocka_unit_test(test_reject_no_upgrade),
        cmocka_unit_test(test_reject_connection_without_upgrade),
        cmocka_unit_test(test_reject_version),
        cmocka_unit_test(test_reject_body),
        cmocka_unit_test(test_content_length_zero),
        cmocka_unit_test(test_reject_oversized),
        cmocka_unit_test(test_reject_garbage),
        cmocka_unit_test(test_reject_output),
        cmocka_unit_test(test_accept_needs_valid_request),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
