/* Strict parsing, and finding a member's own text the way cJSON finds it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/error.h"
#include "gw/json.h"

#include <string.h>

/* The raw text of `key` in json, which must parse; NULL when absent. */
static char *member(const char *json, const char *key)
{
    static char out[256];
    cJSON *doc = gw_json_parse(json, strlen(json));
    const char *p;
    size_t n;

    assert_non_null(doc);
    cJSON_Delete(doc);
    if (gw_json_member_raw(json, strlen(json), key, &p, &n) != 0)
        return NULL;
    assert_true(n < sizeof(out));
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

static void test_strict_parse(void **state)
{
    static const char *bad[] = {"{} x", "{}{}", "", "{", "[1,]"};
    cJSON *doc;
    (void)state;

    doc = gw_json_parse("{\"a\":1} \r\n\t", 11);
    assert_non_null(doc);
    cJSON_Delete(doc);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_null(gw_json_parse(bad[i], strlen(bad[i])));
}

static void test_member_values(void **state)
{
    const char *json = " { \"s\" : \"a,}\\\"]\" , \"n\":-1.5e3 ,\"o\":{\"x\":"
                       "[1,{\"y\":\"}\"}],\"z\":null}, \"t\":true,\"a\":[ ] }";
    (void)state;

    assert_string_equal(member(json, "s"), "\"a,}\\\"]\"");
    assert_string_equal(member(json, "n"), "-1.5e3");
    assert_string_equal(member(json, "o"),
                        "{\"x\":[1,{\"y\":\"}\"}],\"z\":null}");
    assert_string_equal(member(json, "t"), "true");
    assert_string_equal(member(json, "a"), "[ ]");
    /* Only the top level counts. */
    assert_null(member(json, "x"));
    assert_null(member(json, "y"));
    assert_null(member("[1]", "a"));
    assert_null(member("{}", "a"));
}

/* Whichever member cJSON_GetObjectItemCaseSensitive takes, we take. */
static void test_member_matches_cjson(void **state)
{
    static const struct {
        const char *json, *key, *want;
    } cases[] = {
        {"{\"d\":1,\"d\":2}", "d", "1"},
        {"{\"\\u0064ata\":1,\"data\":2}", "data", "1"},
        {"{\"da\\u0074a\":{\"x\":1}}", "data", "{\"x\":1}"},
        {"{\"data\\u0000x\":3,\"data\":4}", "data", "3"},
        {"{\"dat\":1,\"datas\":2,\"Data\":3,\"data\":4}", "data", "4"},
        {"{\"d\\\"\":1,\"d\":2}", "d", "2"},
        {"{\"\\u00e9\":1,\"e\":2}", "e", "2"},
        {"{\"a\\nb\":5}", "a\nb", "5"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *doc = gw_json_parse(cases[i].json, strlen(cases[i].json));
        cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, cases[i].key);
        char *text = cJSON_PrintUnformatted(item);

        assert_string_equal(member(cases[i].json, cases[i].key), cases[i].want);
        assert_string_equal(text, cases[i].want);
        cJSON_free(text);
        cJSON_Delete(doc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strict_parse),
        cmocka_unit_test(test_member_values),
        cmocka_unit_test(test_member_matches_cjson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
