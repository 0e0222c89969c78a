/* gwctl's HTTP response parser, fed in pieces at every split (wslay's
 * way), as answers of the gateway's HTTP port and of the upgrade. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "httpc.h"

#include "gw/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Feeds text in two pieces split at `at`, then EOF if eof; returns the
 * parser's last status, the response in r and the bytes it took. */
static int feed_split(ctl_httpc_resp_t *r, const char *text, size_t at, int eof,
                      size_t *used)
{
    size_t len = strlen(text), u = 0;
    int rc;

    ctl_httpc_resp_init(r, "Sec-WebSocket-Accept");
    *used = 0;
    rc = ctl_httpc_resp_feed(r, text, at, 0, &u);
    if (rc == 1) {
        *used = u;
        return rc;
    }
    if (rc < 0)
        return rc;
    rc = ctl_httpc_resp_feed(r, text + at, len - at, 0, &u);
    *used = at + u;
    if (rc == 0 && eof)
        rc = ctl_httpc_resp_feed(r, NULL, 0, 1, &u);
    return rc;
}

static void expect_every_split(const char *text, int eof, int status,
                               const char *body)
{
    for (size_t at = 0; at <= strlen(text); at++) {
        ctl_httpc_resp_t r;
        size_t used;

        if (feed_split(&r, text, at, eof, &used) != 1)
            fail_msg("split at %zu: not complete", at);
        assert_int_equal(r.status, status);
        assert_string_equal(r.body ? r.body : "", body);
        ctl_httpc_resp_free(&r);
    }
}

static void test_bodies(void **state)
{
    (void)state;
    expect_every_split("HTTP/1.1 202 Accepted\r\nContent-Length: 30\r\n\r\n"
                       "{\"accepted\":true,\"workers\":4}\n",
                       0, 202, "{\"accepted\":true,\"workers\":4}\n");
    expect_every_split("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                       0, 200, "abcde");
    /* No length: the body ends with the connection. */
    expect_every_split("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall "
                       "of it",
                       1, 200, "all of it");
    expect_every_split("HTTP/1.1 204 No Content\r\n\r\n", 0, 204, "");
}

/* A 101 ends at its headers: what follows is the first frame. */
static void test_upgrade(void **state)
{
    static const char head[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZ"
                               "RbK+xOo=\r\n\r\n";
    char text[sizeof(head) + 8];
    (void)state;

    snprintf(text, sizeof(text), "%s\x81\x02hi", head);
    for (size_t at = 0; at <= strlen(text); at++) {
        ctl_httpc_resp_t r;
        size_t used;

        assert_int_equal(feed_split(&r, text, at, 0, &used), 1);
        assert_int_equal(r.status, 101);
        assert_int_equal(used, sizeof(head) - 1);
        assert_string_equal(r.want_value, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        ctl_httpc_resp_free(&r);
    }
}

static void test_broken(void **state)
{
    static const char cut[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    ctl_httpc_resp_t r;
    char *chunk = malloc(1 << 20);
    size_t used;
    int rc = 0;
    (void)state;

    assert_int_equal(feed_split(&r, cut, 5, 1, &used), GW_EPARSE);
    ctl_httpc_resp_free(&r);
    assert_int_equal(feed_split(&r, "SSH-2.0-OpenSSH_9.2\r\n", 3, 0, &used),
                     GW_EPARSE);
    ctl_httpc_resp_free(&r);
    /* A body over the limit stops the read. */
    ctl_httpc_resp_init(&r, NULL);
    assert_int_equal(ctl_httpc_resp_feed(
                         &r,
                         "HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n",
                         44, 0, &used),
                     0);
    memset(chunk, 'x', 1 << 20);
    for (int i = 0; i < 17 && rc == 0; i++)
        rc = ctl_httpc_resp_feed(&r, chunk, 1 << 20, 0, &used);
    assert_int_equal(rc, GW_ETOOBIG);
    ctl_httpc_resp_free(&r);
    free(chunk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_upgrade),
        cmocka_unit_test(test_broken),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
