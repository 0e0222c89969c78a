/*
 * The PROXY protocol header parser: version 1 lines and version 2 binary
 * headers built here, byte by byte as the specification lays them out;
 * every prefix of a good header, lies in its lengths, and headers too
 * long.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/error.h"
#include "gw/proxyproto.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* A version 2 head: signature, version 2 and cmd, fam, then len. */
static size_t v2_head(uint8_t *out, uint8_t cmd, uint8_t fam, size_t len)
{
    memcpy(out, sig, 12);
    out[12] = (uint8_t)(0x20 | cmd);
    out[13] = fam;
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    return 16;
}

/* A version 2 PROXY header of TCP over IPv4 from src:sport, followed by
 * `tlvs` bytes of TLVs (copied from tlv). */
static size_t v2_tcp4(uint8_t *out, const char *src, uint16_t sport,
                      const uint8_t *tlv, size_t tlvs)
{
    size_t n = v2_head(out, 1, 0x11, 12 + tlvs);

    assert_int_equal(inet_pton(AF_INET, src, out + n), 1);
    assert_int_equal(inet_pton(AF_INET, "192.0.2.1", out + n + 4), 1);
    out[n + 8] = (uint8_t)(sport >> 8);
    out[n + 9] = (uint8_t)sport;
    out[n + 10] = 0x01; /* destination port 443 */
    out[n + 11] = 0xbb;
    if (tlvs > 0)
        memcpy(out + n + 12, tlv, tlvs);
    return n + 12 + tlvs;
}

/* The same over IPv6 (36 bytes of addresses and ports). */
static size_t v2_tcp6(uint8_t *out, const char *src, uint16_t sport)
{
    size_t n = v2_head(out, 1, 0x21, 36);

    assert_int_equal(inet_pton(AF_INET6, src, out + n), 1);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::443", out + n + 16), 1);
    out[n + 32] = (uint8_t)(sport >> 8);
    out[n + 33] = (uint8_t)sport;
    out[n + 34] = 0x01;
    out[n + 35] = 0xbb;
    return n + 36;
}

static int parse(const void *buf, size_t len, size_t *used, gw_sockaddr_t *c)
{
    return gw_proxyproto_parse(buf, len, used, c);
}

static int parse_str(const char *s, size_t *used, gw_sockaddr_t *c)
{
    return parse(s, strlen(s), used, c);
}

static void assert_ipv4(const gw_sockaddr_t *c, const char *ip, uint16_t port)
{
    char text[INET_ADDRSTRLEN];

    assert_int_equal(c->sa.sa_family, AF_INET);
    assert_non_null(inet_ntop(AF_INET, &c->in.sin_addr, text, sizeof(text)));
    assert_string_equal(text, ip);
    assert_int_equal(ntohs(c->in.sin_port), port);
}

static void assert_ipv6(const gw_sockaddr_t *c, const char *ip, uint16_t port)
{
    char text[INET6_ADDRSTRLEN];

    assert_int_equal(c->sa.sa_family, AF_INET6);
    assert_non_null(inet_ntop(AF_INET6, &c->in6.sin6_addr, text, sizeof(text)));
    assert_string_equal(text, ip);
    assert_int_equal(ntohs(c->in6.sin6_port), port);
}

/* Every proper prefix of a whole header is "need more", with nothing
 * said about the client. */
static void assert_prefixes_wait(const uint8_t *buf, size_t len)
{
    for (size_t cut = 0; cut < len; cut++) {
        gw_sockaddr_t c;
        size_t used = 99;
        assert_int_equal(parse(buf, cut, &used, &c), GW_EAGAIN);
        assert_int_equal(used, 0);
        assert_int_equal(c.sa.sa_family, AF_UNSPEC);
    }
}

static void test_v1_tcp4(void **state)
{
    const char *line = "PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n";
    char buf[128];
    gw_sockaddr_t c;
    size_t used;
    (void)state;

    /* The relayed bytes that follow are not the header's. */
    snprintf(buf, sizeof(buf), "%sGET / HTTP/1.1\r\n", line);
    assert_int_equal(parse_str(buf, &used, &c), 0);
    assert_int_equal(used, strlen(line));
    assert_ipv4(&c, "203.0.113.7", 56324);
    assert_prefixes_wait((const uint8_t *)line, strlen(line));
    assert_int_equal(parse_str("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n", &used, &c),
                     0);
    assert_ipv4(&c, "0.0.0.0", 0);
}

static void test_v1_tcp6_and_unknown(void **state)
{
    /* The longest line the specification allows: 107 bytes. */
    static const char longest[] =
        "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    gw_sockaddr_t c;
    size_t used;
    (void)state;

    assert_int_equal(
        parse_str("PROXY TCP6 2001:db8::7 2001:db8::1 65535 443\r\n", &used,
                  &c),
        0);
    assert_ipv6(&c, "2001:db8::7", 65535);
    assert_int_equal(
        parse_str("PROXY TCP6 ::ffff:10.0.0.1 ::1 1 2\r\n", &used, &c), 0);
    assert_ipv6(&c, "::ffff:10.0.0.1", 1);
    /* UNKNOWN: the connection's own addresses, whatever follows it. */
    assert_int_equal(parse_str("PROXY UNKNOWN\r\n", &used, &c), 0);
    assert_int_equal(used, 15);
    assert_int_equal(c.sa.sa_family, AF_UNSPEC);
    assert_int_equal(sizeof(longest) - 1, GW_PROXYPROTO_V1_MAX);
    assert_int_equal(parse_str(longest, &used, &c), 0);
    assert_int_equal(used, GW_PROXYPROTO_V1_MAX);
    assert_int_equal(c.sa.sa_family, AF_UNSPEC);
}

static void test_v1_malformed(void **state)
{
    static const char *const bad[] = {
        "PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\n",     /* LF alone */
        "PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\r\n", /* CR twice */
        "PROXY TCP4 203.0.113.7  192.0.2.1 56324 443\r\n",  /* two spaces */
        "PROXY TCP4 203.0.113.7 192.0.2.1 56324 443 \r\n",  /* trailing */
        "PROXY TCP4 203.0.113.7 192.0.2.1 56324\r\n",       /* a field short */
        "PROXY TCP4 203.0.113.7 192.0.2.1 1 2 3\r\n",       /* one too many */
        "PROXY TCP4 203.0.113.07 192.0.2.1 1 2\r\n",        /* leading zero */
        "PROXY TCP4 203.0.113 192.0.2.1 1 2\r\n",           /* three parts */
        "PROXY TCP4 203.0.113.7 192.0.2.1 080 443\r\n",     /* leading zero */
        "PROXY TCP4 203.0.113.7 192.0.2.1 65536 443\r\n",   /* port range */
        "PROXY TCP4 203.0.113.7 192.0.2.1 -1 443\r\n",
        "PROXY TCP4 2001:db8::7 2001:db8::1 1 2\r\n", /* family mismatch */
        "PROXY TCP6 203.0.113.7 192.0.2.1 1 2\r\n",
        "PROXY TCP5 203.0.113.7 192.0.2.1 1 2\r\n",
        "PROXY UNKNOWNX\r\n",
        "PROXY \r\n",
        "PROXY\r\n",
        "proxy TCP4 203.0.113.7 192.0.2.1 1 2\r\n",
        "GET / HTTP/1.1\r\n",
    };
    gw_sockaddr_t c;
    size_t used;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse_str(bad[i], &used, &c);
        if (rc != GW_EPARSE)
            fail_msg("%s: %d", bad[i], rc);
        assert_int_equal(c.sa.sa_family, AF_UNSPEC);
    }
    /* A NUL inside the line. */
    assert_int_equal(parse("PROXY UNKNOWN\0\r\n", 16, &used, &c), GW_EPARSE);
    /* Refused as soon as a byte disagrees, not at the line's end. */
    assert_int_equal(parse("PRX", 3, &used, &c), GW_EPARSE);
    assert_int_equal(parse("\x16\x03\x01", 3, &used, &c), GW_EPARSE);
}

/* No CRLF within 107 bytes: the line is refused, not waited for. */
static void test_v1_without_end(void **state)
{
    char buf[GW_PROXYPROTO_MAX];
    gw_sockaddr_t c;
    size_t used;
    (void)state;

    memcpy(buf, "PROXY UNKNOWN ", 14);
    memset(buf + 14, 'a', sizeof(buf) - 14);
    assert_int_equal(parse(buf, GW_PROXYPROTO_V1_MAX - 1, &used, &c),
                     GW_EAGAIN);
    assert_int_equal(parse(buf, GW_PROXYPROTO_V1_MAX, &used, &c), GW_EPARSE);
    assert_int_equal(parse(buf, sizeof(buf), &used, &c), GW_EPARSE);
    /* The CRLF one byte too late. */
    memcpy(buf + GW_PROXYPROTO_V1_MAX - 1, "\r\n", 2);
    assert_int_equal(parse(buf, GW_PROXYPROTO_V1_MAX + 1, &used, &c),
                     GW_EPARSE);
}

static void test_v2_tcp4_and_tcp6(void **state)
{
    uint8_t buf[256];
    gw_sockaddr_t c;
    size_t n, used;
    (void)state;

    n = v2_tcp4(buf, "203.0.113.7", 56324, NULL, 0);
    assert_int_equal(n, 28);
    memcpy(buf + n, "\x16\x03\x01", 3); /* a ClientHello follows */
    assert_int_equal(parse(buf, n + 3, &used, &c), 0);
    assert_int_equal(used, 28);
    assert_ipv4(&c, "203.0.113.7", 56324);
    assert_prefixes_wait(buf, n);

    n = v2_tcp6(buf, "2001:db8::7", 1);
    assert_int_equal(parse(buf, n, &used, &c), 0);
    assert_int_equal(used, 52);
    assert_ipv6(&c, "2001:db8::7", 1);
    assert_prefixes_wait(buf, n);
}

/* TLVs are skipped: HAProxy's ALPN, authority and an SSL TLV with a sub-TLV
 * inside, and an empty NOOP. */
static void test_v2_tlvs_skipped(void **state)
{
    static const uint8_t tlvs[] = {
        0x01, 0x00, 0x08, 'h',  't', 't', 'p', '/', '1',  '.',  '1', /* ALPN */
        0x02, 0x00, 0x04, 'c',  'h', 'a', 't',                       /* SNI */
        0x20, 0x00, 0x0a, 0x01, 0,   0,   0,   0,   0x21, 0x00, 0x02,
        '1',  '3',        /* SSL */
        0x04, 0x00, 0x00, /* NOOP */
    };
    uint8_t buf[256];
    gw_sockaddr_t c;
    size_t n, used;
    (void)state;

    n = v2_tcp4(buf, "198.51.100.9", 7, tlvs, sizeof(tlvs));
    assert_int_equal(parse(buf, n, &used, &c), 0);
    assert_int_equal(used, n);
    assert_ipv4(&c, "198.51.100.9", 7);
    assert_prefixes_wait(buf, n);
}

/* LOCAL (a health check of the proxy's own), UNSPEC, UNIX sockets and UDP
 * name no client: the connection's own addresses stand. */
static void test_v2_without_client(void **state)
{
    static const uint8_t fams[] = {0x00, 0x01, 0x10, 0x12, 0x22, 0x31, 0x32};
    uint8_t buf[512];
    gw_sockaddr_t c;
    size_t n, used;
    (void)state;

    /* LOCAL skips what its length covers, whatever the family says. */
    n = v2_head(buf, 0, 0xff, 5);
    memset(buf + n, 0xee, 5);
    assert_int_equal(parse(buf, n + 5, &used, &c), 0);
    assert_int_equal(used, 21);
    assert_int_equal(c.sa.sa_family, AF_UNSPEC);
    n = v2_head(buf, 0, 0x00, 0);
    assert_int_equal(parse(buf, n, &used, &c), 0);
    assert_int_equal(used, 16);
    for (size_t i = 0; i < sizeof(fams); i++) {
        size_t len = (fams[i] >> 4) == 3 ? 216 : (fams[i] >> 4) == 2 ? 36 : 12;
        n = v2_head(buf, 1, fams[i], len);
        memset(buf + n, 0x7f, len);
        assert_int_equal(parse(buf, n + len, &used, &c), 0);
        assert_int_equal(used, n + len);
        assert_int_equal(c.sa.sa_family, AF_UNSPEC);
    }
}

/* Lengths that do not fit what the header says it holds. */
static void test_v2_lies(void **state)
{
    static const uint8_t overrun[] = {0x04, 0x00, 0x05, 1, 2, 3, 4};
    static const uint8_t stub[] = {0x04, 0x00};
    uint8_t buf[256];
    gw_sockaddr_t c;
    size_t n, used;
    (void)state;

    /* Addresses of TCP over IPv4 take 12 bytes, over IPv6 36. */
    n = v2_head(buf, 1, 0x11, 8);
    memset(buf + n, 1, 8);
    assert_int_equal(parse(buf, n + 8, &used, &c), GW_EPARSE);
    n = v2_head(buf, 1, 0x21, 12);
    memset(buf + n, 1, 12);
    assert_int_equal(parse(buf, n + 12, &used, &c), GW_EPARSE);
    n = v2_head(buf, 1, 0x31, 36);
    memset(buf + n, 1, 36);
    assert_int_equal(parse(buf, n + 36, &used, &c), GW_EPARSE);
    /* A TLV longer than the header leaves, and one cut in its head. */
    n = v2_tcp4(buf, "203.0.113.7", 1, overrun, sizeof(overrun));
    assert_int_equal(parse(buf, n, &used, &c), GW_EPARSE);
    n = v2_tcp4(buf, "203.0.113.7", 1, stub, sizeof(stub));
    assert_int_equal(parse(buf, n, &used, &c), GW_EPARSE);
    assert_int_equal(c.sa.sa_family, AF_UNSPEC);
}

/* Version, command, family and protocol each have their values; any other
 * is refused as soon as its byte is there. */
static void test_v2_bad_fields(void **state)
{
    static const struct {
        uint8_t ver_cmd, fam;
    } bad[] = {{0x11, 0x11}, {0x31, 0x11}, {0x22, 0x11}, {0x2f, 0x11},
               {0x21, 0x41}, {0x21, 0x13}, {0x21, 0xf1}};
    uint8_t buf[64];
    gw_sockaddr_t c;
    size_t used;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = v2_tcp4(buf, "203.0.113.7", 1, NULL, 0);
        buf[12] = bad[i].ver_cmd;
        buf[13] = bad[i].fam;
        assert_int_equal(parse(buf, n, &used, &c), GW_EPARSE);
    }
    /* A wrong signature byte, or version, before the rest arrives. */
    memcpy(buf, sig, 12);
    buf[5] = 0x0a;
    assert_int_equal(parse(buf, 6, &used, &c), GW_EPARSE);
    memcpy(buf, sig, 12);
    buf[12] = 0x11;
    assert_int_equal(parse(buf, 13, &used, &c), GW_EPARSE);
}

/* A header longer than GW_PROXYPROTO_MAX is refused once its length is
 * read; one of exactly that length (a NOOP TLV as padding) is taken. */
static void test_v2_oversize(void **state)
{
    static uint8_t buf[GW_PROXYPROTO_MAX + 64];
    size_t pad = GW_PROXYPROTO_MAX - 16 - 12 - 3, n, used;
    uint8_t noop[3] = {0x04, (uint8_t)(pad >> 8), (uint8_t)pad};
    gw_sockaddr_t c;
    (void)state;

    n = v2_tcp4(buf, "203.0.113.7", 9, noop, 3);
    n += pad;
    buf[14] = (uint8_t)((n - 16) >> 8);
    buf[15] = (uint8_t)(n - 16);
    assert_int_equal(n, GW_PROXYPROTO_MAX);
    assert_int_equal(parse(buf, n - 1, &used, &c), GW_EAGAIN);
    assert_int_equal(parse(buf, n, &used, &c), 0);
    assert_ipv4(&c, "203.0.113.7", 9);

    v2_head(buf, 1, 0x11, GW_PROXYPROTO_MAX - 15);
    assert_int_equal(parse(buf, 16, &used, &c), GW_ETOOBIG);
    v2_head(buf, 1, 0x11, 0xffff);
    assert_int_equal(parse(buf, 16, &used, &c), GW_ETOOBIG);
    assert_int_equal(parse(buf, sizeof(buf), &used, &c), GW_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4),
        cmocka_unit_test(test_v1_tcp6_and_unknown),
        cmocka_unit_test(test_v1_malformed),
        cmocka_unit_test(test_v1_without_end),
        cmocka_unit_test(test_v2_tcp4_and_tcp6),
        cmocka_unit_test(test_v2_tlvs_skipped),
        cmocka_unit_test(test_v2_without_client),
        cmocka_unit_test(test_v2_lies),
        cmocka_unit_test(test_v2_bad_fields),
        cmocka_unit_test(test_v2_oversize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
