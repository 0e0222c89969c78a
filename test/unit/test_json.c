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

/* RFC 8259's grammar, which cJSON alone does not hold text to. */
static void test_rfc8259(void **state)
{
    static const char *good[] = {
        "0",
        "-0",
        "-0.0e+0",
        "1E-2",
        "123.456e789",
        "\"\"",
        "true",
        "null",
        "[]",
        "{}",
        " [ 1 , { \"a\" : [ ] } ] ",
        "\"\\u00e9\\uD83D\\uDE00\"",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
        "\"\\u0000\"",
        "\"\xc3\xa9\xf0\x9f\x98\x80\"",
        "{\"a\":1,\"a\":2}",
    };
    static const char *bad[] = {
        /* numbers strtod takes */
        "01",
        "-01",
        "1.",
        "-.5",
        ".5",
        "+1",
        "1e",
        "1e+",
        "0x1",
        "-",
        /* strings: raw controls, escapes, surrogates, UTF-8 */
        "\"a\tb\"",
        "\"\x01\"",
        "\"\\uzzzz\"",
        "\"\\u00z0\"",
        "\"\\u12\"",
        "\"\\x\"",
        "\"\\uD800\"",
        "\"\\uDC00\"",
        "\"\\uD800\\u0041\"",
        "\"\\uD800x\"",
        "\"\xff\"",
        "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"",
        "\"abc",
        /* structure */
        "[1,]",
        "{\"a\":1,}",
        "{,}",
        "[,1]",
        "{\"a\"}",
        "{\"a\" 1}",
        "{1:2}",
        "[1}",
        "{\"a\":1]",
        "[[]",
        "[]]",
        "tru",
        "nul",
        "truex",
        "[1 2]",
        "\f[]",
        "[]\v",
        "\x01",
    };
    char deep[2 * CJSON_NESTING_LIMIT + 3];
    (void)state;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cJSON *doc = gw_json_parse(good[i], strlen(good[i]));
        if (doc == NULL)
            fail_msg("refused: %s", good[i]);
        cJSON_Delete(doc);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (gw_json_parse(bad[i], strlen(bad[i])) != NULL)
            fail_msg("accepted: %s", bad[i]);
    /* A NUL anywhere, the length saying where the text ends. */
    assert_false(gw_json_valid("\"a\0b\"", 5));
    assert_false(gw_json_valid("[]\0", 3));
    /* cJSON's nesting limit, and one level past it. */
    memset(deep, '[', CJSON_NESTING_LIMIT);
    memset(deep + CJSON_NESTING_LIMIT, ']', CJSON_NESTING_LIMIT);
    assert_true(gw_json_valid(deep, 2 * CJSON_NESTING_LIMIT));
    memset(deep, '[', CJSON_NESTING_LIMIT + 1);
    memset(deep + CJSON_NESTING_LIMIT + 1, ']', CJSON_NESTING_LIMIT + 1);
    assert_false(gw_json_valid(deep, 2 * CJSON_NESTING_LIMIT + 2));
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
        cmocka_unit_test(test_rfc8259),
        cmocka_unit_test(test_member_values),
        cmocka_unit_test(test_member_matches_cjson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
