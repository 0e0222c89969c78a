/* Lists of networks (server.proxy_trusted): parsing, and matching IPv4,
 * IPv6 and IPv4-mapped addresses against them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/cidr.h"
#include "gw/error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

/* An address as a socket would give it. */
static struct sockaddr_storage addr(const char *ip)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ss.ss_family = AF_INET;
        return ss;
    }
    assert_int_equal(
        inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
    ss.ss_family = AF_INET6;
    return ss;
}

static int in(const gw_cidr_t *list, int n, const char *ip)
{
    struct sockaddr_storage ss = addr(ip);

    return gw_cidr_match(list, (size_t)n, (struct sockaddr *)&ss);
}

static void test_parse_and_match(void **state)
{
    gw_cidr_t list[8];
    int n = gw_cidr_parse(" 10.0.0.0/8,192.168.1.7 , 2001:db8::/32,\t::1/128, "
                          "172.16.0.0/12, 0.0.0.0/0",
                          list, 5, NULL);
    (void)state;

    /* Six entries; room for five, the sixth (everything) not written. */
    assert_int_equal(n, 6);
    assert_int_equal(list[1].bits, 32);
    assert_true(in(list, 5, "10.0.0.1"));
    assert_true(in(list, 5, "10.255.255.255"));
    assert_false(in(list, 5, "11.0.0.0"));
    assert_true(in(list, 5, "192.168.1.7"));
    assert_false(in(list, 5, "192.168.1.8"));
    assert_true(in(list, 5, "172.31.255.1"));
    assert_false(in(list, 5, "172.32.0.1"));
    assert_true(in(list, 5, "2001:db8:ffff::1"));
    assert_false(in(list, 5, "2001:db9::1"));
    assert_true(in(list, 5, "::1"));
    assert_false(in(list, 5, "::2"));
    /* A dual-stack socket's IPv4 peer is its IPv4 address. */
    assert_true(in(list, 5, "::ffff:10.1.2.3"));
    assert_false(in(list, 5, "::ffff:11.1.2.3"));
    /* Prefixes that end inside a byte. */
    n = gw_cidr_parse("198.51.100.128/25, 2001:db8:8000::/33", list, 8, NULL);
    assert_int_equal(n, 2);
    assert_true(in(list, n, "198.51.100.200"));
    assert_false(in(list, n, "198.51.100.127"));
    assert_true(in(list, n, "2001:db8:8000::1"));
    assert_false(in(list, n, "2001:db8:7fff::1"));
}

static void test_zero_prefix_and_other_families(void **state)
{
    gw_cidr_t list[2];
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    int n = gw_cidr_parse("0.0.0.0/0, ::/0", list, 2, NULL);
    (void)state;

    assert_int_equal(n, 2);
    assert_true(in(list, n, "203.0.113.1"));
    assert_true(in(list, n, "2001:db8::1"));
    assert_false(gw_cidr_match(list, 2, (struct sockaddr *)&un));
    assert_false(in(list, 0, "203.0.113.1"));
}

static void test_bad_lists(void **state)
{
    static const char *const bad[] = {
        "10.0.0.0/33", "::/129",         "10.0.0.1/8",  "2001:db8::1/32",
        "10.0.0.0/",   "10.0.0.0/08",    "10.0.0/8",    "10.0.0.0/8/8",
        "10.0.0.0/-1", "example.com",    "10.0.0.0 /8", "a,,b",
        "10.0.0.0, x", "fe80::1%lo/128",
    };
    const char *where;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        where = NULL;
        if (gw_cidr_parse(bad[i], NULL, 0, &where) != GW_EPARSE)
            fail_msg("'%s' taken", bad[i]);
        assert_non_null(where);
    }
    assert_int_equal(gw_cidr_parse("10.0.0.0/8, nope", NULL, 0, &where),
                     GW_EPARSE);
    assert_string_equal(where, "nope");
    assert_int_equal(gw_cidr_parse("", NULL, 0, NULL), 0);
    assert_int_equal(gw_cidr_parse(" , ", NULL, 0, NULL), GW_EPARSE);
    assert_int_equal(gw_cidr_parse("10.0.0.0/8,", NULL, 0, NULL), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_match),
        cmocka_unit_test(test_zero_prefix_and_other_families),
        cmocka_unit_test(test_bad_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
