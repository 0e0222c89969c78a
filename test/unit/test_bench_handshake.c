/* gwbench's opening handshake and identify tokens, against the published
 * examples of RFC 6455, RFC 4648 and RFC 7519 (the jwt.io token). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "publish.h"
#include "token.h"
#include "upgrade.h"

#include <stdio.h>
#include <string.h>

/* RFC 6455 section 1.3: the nonce "the sample nonce" and its answer. */
static const uint8_t rfc_key[16] = "the sample nonce";
static const char rfc_accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

static void test_request_and_accept(void **state)
{
    char req[512], accept[UPGRADE_ACCEPT_SIZE];
    size_t n;
    (void)state;

    n = upgrade_request(req, sizeof(req), "127.0.0.1:3005", "/", rfc_key,
                        accept);
    assert_true(n > 0);
    assert_int_equal(strlen(req), n);
    assert_string_equal(accept, rfc_accept);
    assert_non_null(strstr(req, "GET / HTTP/1.1\r\n"));
    assert_non_null(strstr(req, "Host: 127.0.0.1:3005\r\n"));
    assert_non_null(strstr(req, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
                                "\r\n"));
    assert_non_null(strstr(req, "Sec-WebSocket-Version: 13\r\n"));
    assert_int_equal(memcmp(req + n - 4, "\r\n\r\n", 4), 0);
    assert_int_equal(
        upgrade_request(req, 64, "127.0.0.1:3005", "/", rfc_key, accept), 0);
}

static void test_response_split_anywhere(void **state)
{
    char resp[256];
    int status = 0;
    int len = snprintf(resp, sizeof(resp),
                       "HTTP/1.1 101 Switching Protocols\r\n"
                       "upgrade: websocket\r\nConnection: Upgrade\r\n"
                       "sec-websocket-accept:  %s \r\n\r\n"
                       "\x81\x05ready",
                       rfc_accept);
    (void)state;

    /* Complete only with the blank line; the frame after it is not part of
     * the header block. */
    for (int cut = 0; cut < len - 7; cut++)
        assert_int_equal(
            upgrade_response(resp, (size_t)cut, rfc_accept, &status), 0);
    assert_int_equal(upgrade_response(resp, (size_t)len, rfc_accept, &status),
                     len - 7);
    assert_int_equal(status, 101);
}

static void test_response_refusals(void **state)
{
    static char big[UPGRADE_MAX_RESPONSE + 10];
    const char *bad_status = "HTTP/1.1 400 Bad Request\r\n\r\n";
    char wrong[256];
    int status = 0;
    (void)state;

    assert_int_equal(
        upgrade_response(bad_status, strlen(bad_status), rfc_accept, &status),
        UPGRADE_ERR_STATUS);
    assert_int_equal(status, 400);
    snprintf(wrong, sizeof(wrong),
             "HTTP/1.1 101 Switching Protocols\r\n"
             "Sec-WebSocket-Accept: %s\r\n\r\n",
             "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    assert_int_equal(
        upgrade_response(wrong, strlen(wrong), rfc_accept, &status),
        UPGRADE_ERR_ACCEPT);
    snprintf(wrong, sizeof(wrong), "HTTP/1.1 101 OK\r\nUpgrade: x\r\n\r\n");
    assert_int_equal(
        upgrade_response(wrong, strlen(wrong), rfc_accept, &status),
        UPGRADE_ERR_ACCEPT);
    memset(big, 'a', sizeof(big));
    assert_int_equal(upgrade_response(big, sizeof(big), rfc_accept, &status),
                     UPGRADE_ERR_TOO_LONG);
}

/* RFC 4648 section 10, without padding, plus the url-safe characters. */
static void test_b64url(void **state)
{
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *out[] = {"",       "Zg",      "Zm8",     "Zm9v",
                                "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    char buf[32];
    (void)state;

    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        assert_int_equal(
            token_b64url((const uint8_t *)in[i], strlen(in[i]), buf),
            strlen(out[i]));
        assert_string_equal(buf, out[i]);
    }
    token_b64url((const uint8_t *)"\xfb\xff", 2, buf);
    assert_string_equal(buf, "-_8");
}

static void test_hs256_known_token(void **state)
{
    char tok[512];
    (void)state;

    assert_true(token_hs256("your-256-bit-secret",
                            "{\"sub\":\"1234567890\",\"name\":\"John Doe\","
                            "\"iat\":1516239022}",
                            tok, sizeof(tok)) > 0);
    assert_string_equal(
        tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
             "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2"
             "MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c");
    assert_int_equal(token_hs256("k", "{\"sub\":\"u1\"}", tok, 40), 0);
}

/* Events carry their send time where clients look for it, and are padded
 * to the asked size. */
static void test_envelope(void **state)
{
    publish_conf_t pc = {.guilds = 50, .payload = 200};
    char buf[512];
    size_t n;
    (void)state;

    n = publish_envelope(&pc, 123, 987654321, buf, sizeof(buf));
    assert_int_equal(n, 200);
    assert_int_equal(strlen(buf), 200);
    assert_non_null(strstr(buf, "\"guildId\":\"g23\""));
    assert_non_null(strstr(buf, "\"bts\":987654321,"));
    assert_int_equal(memcmp(buf + n - 3, "\"}}", 3), 0);
    pc.payload = 10; /* smaller than the envelope: no padding */
    n = publish_envelope(&pc, 1, 5, buf, sizeof(buf));
    assert_true(n > 10);
    assert_int_equal(memcmp(buf + n - 3, "\"}}", 3), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_and_accept),
        cmocka_unit_test(test_response_split_anywhere),
        cmocka_unit_test(test_response_refusals),
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_hs256_known_token),
        cmocka_unit_test(test_envelope),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
