/* The response builder: appends, and JSON string literals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/buf.h"

#include <stdlib.h>
#include <string.h>

static void test_json_string(void **state)
{
    gw_buf_t b = {0};
    size_t len;
    char *s;
    (void)state;

    gw_buf_json_string(&b, "plain caf\xc3\xa9");
    gw_buf_append(&b, ",", 1);
    gw_buf_json_string(&b, "q\"b\\n\n\x01");
    gw_buf_append(&b, ",", 1);
    gw_buf_json_string(&b, "");
    s = gw_buf_steal(&b, &len);
    assert_string_equal(s,
                        "\"plain caf\xc3\xa9\",\"q\\\"b\\\\n\\u000a\\u0001\","
                        "\"\"");
    assert_int_equal(len, strlen(s));
    assert_null(b.data);
    free(s);
}

/* Appends past every doubling keep what came before. */
static void test_append_grows(void **state)
{
    gw_buf_t b = {0};
    (void)state;

    for (int i = 0; i < 3000; i++)
        gw_buf_append(&b, "ab", 2);
    gw_buf_printf(&b, "%d", 7);
    assert_int_equal(b.len, 6001);
    assert_memory_equal(b.data + 5998, "ab7", 4);
    free(b.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_string),
        cmocka_unit_test(test_append_grows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
