/* websocket.allowed_origins: exact origins, "*." patterns, no list, no
 * header, and the list's own check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/origin.h"

static void test_empty_list_or_no_header_passes(void **state)
{
    (void)state;
    assert_true(gw_origin_allowed("", "https://evil.example"));
    assert_true(gw_origin_allowed(" , ", "https://evil.example"));
    assert_true(gw_origin_allowed("https://app.example.com", NULL));
}

static void test_exact(void **state)
{
    const char *list = "https://app.example.com, http://localhost:8080";
    (void)state;

    assert_true(gw_origin_allowed(list, "https://app.example.com"));
    assert_true(gw_origin_allowed(list, "HTTPS://App.Example.COM"));
    assert_true(gw_origin_allowed(list, "http://localhost:8080"));
    assert_false(gw_origin_allowed(list, "http://app.example.com"));
    assert_false(gw_origin_allowed(list, "https://app.example.com:8443"));
    assert_false(gw_origin_allowed(list, "https://app.example.com.evil.io"));
    assert_false(gw_origin_allowed(list, "https://evilapp.example.com"));
    assert_false(gw_origin_allowed(list, "http://localhost"));
    assert_false(gw_origin_allowed(list, "null"));
    assert_false(gw_origin_allowed(list, ""));
}

static void test_wildcard(void **state)
{
    const char *list = "https://*.example.com";
    (void)state;

    assert_true(gw_origin_allowed(list, "https://a.example.com"));
    assert_true(gw_origin_allowed(list, "https://a.b.example.com"));
    assert_false(gw_origin_allowed(list, "https://example.com"));
    assert_false(gw_origin_allowed(list, "https://.example.com"));
    assert_false(gw_origin_allowed(list, "https://evilexample.com"));
    assert_false(gw_origin_allowed(list, "http://a.example.com"));
    assert_false(gw_origin_allowed(list, "https://a.example.com.evil.io"));
    assert_false(gw_origin_allowed(list, "https://a.example.com:444"));
}

static void test_entry_without_scheme(void **state)
{
    (void)state;
    assert_true(gw_origin_allowed("*.example.com", "http://a.example.com"));
    assert_true(gw_origin_allowed("*.example.com", "https://a.example.com"));
    assert_true(gw_origin_allowed("example.com", "https://example.com"));
    assert_false(gw_origin_allowed("example.com", "https://a.example.com"));
    assert_false(gw_origin_allowed("example.com", "null"));
    assert_true(gw_origin_allowed("null", "null"));
}

static void test_check_list(void **state)
{
    (void)state;
    assert_null(gw_origin_check_list(""));
    assert_null(gw_origin_check_list("https://a.com, *.b.com,null"));
    assert_null(gw_origin_check_list("https://*.b.com:8443,"));
    assert_non_null(gw_origin_check_list("https://a.com,,b.com"));
    assert_non_null(gw_origin_check_list("https://"));
    assert_non_null(gw_origin_check_list("https://a.com/path"));
    assert_non_null(gw_origin_check_list("https://a*.com"));
    assert_non_null(gw_origin_check_list("*://a.com"));
    assert_non_null(gw_origin_check_list("*."));
    assert_non_null(gw_origin_check_list("https://*.*.a.com"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_list_or_no_header_passes),
        cmocka_unit_test(test_exact),
        cmocka_unit_test(test_wildcard),
        cmocka_unit_test(test_entry_without_scheme),
        cmocka_unit_test(test_check_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
