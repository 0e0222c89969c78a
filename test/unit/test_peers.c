/* Connections counted per client address, across threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/error.h"
#include "gw/peers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>

static struct sockaddr_storage addr(const char *text)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ss.ss_family = AF_INET;
    } else {
        assert_int_equal(
            inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)&ss)->sin6_addr),
            1);
        ss.ss_family = AF_INET6;
    }
    return ss;
}

static gw_peer_t *take(gw_peers_t *p, const char *text, uint32_t limit)
{
    struct sockaddr_storage ss = addr(text);

    return gw_peers_take(p, (struct sockaddr *)&ss, limit);
}

static void test_limit_per_address(void **state)
{
    gw_peers_t *p = gw_peers_new(100);
    gw_peer_t *held[3], *other;
    (void)state;

    for (int i = 0; i < 3; i++)
        assert_non_null(held[i] = take(p, "192.0.2.1", 3));
    assert_null(take(p, "192.0.2.1", 3));
    /* Another address has its own count. */
    assert_non_null(other = take(p, "192.0.2.2", 3));
    assert_int_equal(gw_peers_addresses(p), 2);
    /* One closes: one more may open. A limit lowered by a reload holds
     * the next connection to it. */
    gw_peers_release(p, held[0]);
    assert_null(take(p, "192.0.2.1", 2));
    assert_non_null(held[0] = take(p, "192.0.2.1", 3));
    for (int i = 0; i < 3; i++)
        gw_peers_release(p, held[i]);
    gw_peers_release(p, other);
    /* The last to close takes its address's entry with it. */
    assert_int_equal(gw_peers_addresses(p), 0);
    gw_peers_free(p);
}

static void test_ipv6_counts_by_64(void **state)
{
    gw_peers_t *p = gw_peers_new(100);
    gw_peer_t *a, *b, *c;
    (void)state;

    assert_non_null(a = take(p, "2001:db8:1:2::1", 2));
    assert_non_null(b = take(p, "2001:db8:1:2:ffff::9", 2));
    assert_null(take(p, "2001:db8:1:2:abcd::1", 2));
    assert_non_null(c = take(p, "2001:db8:1:3::1", 2));
    assert_int_equal(gw_peers_addresses(p), 2);
    gw_peers_release(p, a);
    gw_peers_release(p, b);
    gw_peers_release(p, c);
    gw_peers_free(p);
}

static void test_ipv4_mapped_is_ipv4(void **state)
{
    gw_peers_t *p = gw_peers_new(100);
    gw_peer_t *a;
    (void)state;

    assert_non_null(a = take(p, "192.0.2.7", 1));
    assert_null(take(p, "::ffff:192.0.2.7", 1));
    assert_int_equal(gw_peers_addresses(p), 1);
    gw_peers_release(p, a);
    gw_peers_free(p);
}

static void test_zero_and_other_families(void **state)
{
    gw_peers_t *p = gw_peers_new(100);
    struct sockaddr_storage unix_addr = {.ss_family = AF_UNIX};
    (void)state;

    assert_null(take(p, "192.0.2.1", 0));
    assert_null(gw_peers_take(p, (struct sockaddr *)&unix_addr, 5));
    assert_int_equal(gw_peers_addresses(p), 0);
    gw_peers_free(p);
}

#define THREAD_ROUNDS 20000

static void *churn(void *arg)
{
    gw_peers_t *p = arg;

    for (int i = 0; i < THREAD_ROUNDS; i++) {
        gw_peer_t *a = take(p, i % 2 ? "192.0.2.1" : "192.0.2.2", 1000);
        assert_non_null(a);
        gw_peers_release(p, a);
    }
    return NULL;
}

/* Workers take and release the same addresses at once. */
static void test_threads(void **state)
{
    gw_peers_t *p = gw_peers_new(100);
    pthread_t t[4];
    (void)state;

    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, churn, p), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(gw_peers_addresses(p), 0);
    gw_peers_free(p);
}

/* The total: 503 past the cap, closed at accept past the refusals. */
static void test_cap(void **state)
{
    gw_peers_t *p = gw_peers_new(3);
    (void)state;

    for (int i = 0; i < 3; i++)
        assert_int_equal(gw_peers_enter(p), 0);
    assert_false(gw_peers_over_cap(p));
    assert_int_equal(gw_peers_enter(p), 0);
    assert_true(gw_peers_over_cap(p));
    for (int i = 1; i < GW_PEERS_REFUSING; i++)
        assert_int_equal(gw_peers_enter(p), 0);
    assert_int_equal(gw_peers_enter(p), GW_EFULL);
    assert_int_equal(gw_peers_open(p), 3 + GW_PEERS_REFUSING);
    /* A handed-over connection counts whatever the total. */
    gw_peers_count(p);
    assert_int_equal(gw_peers_open(p), 4 + GW_PEERS_REFUSING);
    for (int i = 0; i < 1 + GW_PEERS_REFUSING; i++)
        gw_peers_leave(p);
    assert_false(gw_peers_over_cap(p));
    assert_int_equal(gw_peers_enter(p), 0);
    for (int i = 0; i < 4; i++)
        gw_peers_leave(p);
    assert_int_equal(gw_peers_open(p), 0);
    gw_peers_free(p);
}

static void test_default_cap_leaves_the_reserve(void **state)
{
    struct rlimit rl;
    uint32_t reserve, cap = gw_peers_default_cap(4, 256, &reserve);
    (void)state;

    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_true(reserve >= 256 + GW_PEERS_REFUSING + 64);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > reserve)
        assert_int_equal((uint64_t)cap + reserve, rl.rlim_cur);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_per_address),
        cmocka_unit_test(test_ipv6_counts_by_64),
        cmocka_unit_test(test_ipv4_mapped_is_ipv4),
        cmocka_unit_test(test_zero_and_other_families),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_default_cap_leaves_the_reserve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
