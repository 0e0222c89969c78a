/* gw_query_get: the first value of a named query parameter, decoded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/error.h"
#include "gw/query.h"

#include <stdlib.h>
#include <string.h>

static void expect_param(const char *q, const char *name, const char *want)
{
    char *got;

    assert_int_equal(gw_query_get(q, strlen(q), name, &got), 0);
    assert_string_equal(got, want);
    free(got);
}

static void expect_rc(const char *q, const char *name, int rc)
{
    char *got = (char *)"untouched";

    assert_int_equal(gw_query_get(q, strlen(q), name, &got), rc);
    assert_null(got);
}

static void test_found(void **state)
{
    (void)state;
    expect_param("userIds=a,b", "userIds", "a,b");
    expect_param("x=1&userIds=a%2Cb&userIds=c", "userIds", "a,b");
    expect_param("userIds=", "userIds", "");
    expect_param("a=1&b=2", "b", "2");
    expect_param("t=a+b%20c", "t", "a+b c"); /* RFC 3986: '+' stays */
}

static void test_absent_and_broken(void **state)
{
    (void)state;
    expect_rc("", "userIds", GW_EINVAL);
    expect_rc("userIdsX=1&user=2&userIds", "userIds", GW_EINVAL);
    expect_rc("&&", "a", GW_EINVAL);
    expect_rc("a=%2", "a", GW_EPARSE);
    expect_rc("a=%zz", "a", GW_EPARSE);
    expect_rc("a=x%00y", "a", GW_EPARSE); /* would cut the string short */
}

/* Only len bytes are read: the query need not be NUL-terminated. */
static void test_bounded(void **state)
{
    char *got;
    (void)state;

    assert_int_equal(gw_query_get("a=12345", 4, "a", &got), 0);
    assert_string_equal(got, "12");
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_found),
        cmocka_unit_test(test_absent_and_broken),
        cmocka_unit_test(test_bounded),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
