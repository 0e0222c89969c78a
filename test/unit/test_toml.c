/* Unit tests of the TOML subset reader (src/toml.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/toml.h"

/* Parses text, which must succeed, into doc. */
static void parse_ok(const char *text, gw_toml_doc_t *doc)
{
    gw_toml_error_t err;
    int rc = gw_toml_parse(text, strlen(text), doc, &err);

    if (rc != 0)
        fail_msg("parse failed: line %u: %s\n--- input ---\n%s", err.line,
                 err.msg, text);
}

static const gw_toml_entry_t *entry(const gw_toml_doc_t *doc, size_t i,
                                    const char *key, gw_toml_type_t type)
{
    assert_true(i < doc->n);
    assert_string_equal(doc->entries[i].key, key);
    assert_int_equal(doc->entries[i].type, type);
    return &doc->entries[i];
}

static void test_empty_inputs(void **state)
{
    static const char *const inputs[] = {
        "",
        "\n",
        "\r\n",
        "   \t\n\n",
        "# only a comment",
        "# c\r\n\t# d\n",
        "\xef\xbb\xbf",
    };
    gw_toml_doc_t doc;
    (void)state;

    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        parse_ok(inputs[i], &doc);
        assert_int_equal(doc.n, 0);
        gw_toml_free(&doc);
    }
    /* A NULL buffer is a valid empty input. */
    gw_toml_error_t err;
    assert_int_equal(gw_toml_parse(NULL, 0, &doc, &err), 0);
    assert_int_equal(doc.n, 0);
}

static void test_every_type(void **state)
{
    gw_toml_doc_t doc;
    (void)state;

    parse_ok("top = 1\n"
             "[server]\n"
             "bind = \"0.0.0.0\"   # trailing comment\n"
             "path='C:\\dir\\'\n"
             "port=3005\n"
             "on = true\n"
             "off = false\n"
             "Key_with-dash9 = -7\n",
             &doc);
    assert_int_equal(doc.n, 8);
    assert_int_equal(entry(&doc, 0, "top", GW_TOML_INT)->v.i, 1);
    assert_int_equal(entry(&doc, 0, "top", GW_TOML_INT)->line, 1);
    assert_int_equal(entry(&doc, 1, "server", GW_TOML_TABLE)->line, 2);
    assert_string_equal(entry(&doc, 2, "server.bind", GW_TOML_STRING)->v.s.ptr,
                        "0.0.0.0");
    assert_int_equal(doc.entries[2].v.s.len, 7);
    assert_int_equal(doc.entries[2].line, 3);
    assert_string_equal(entry(&doc, 3, "server.path", GW_TOML_STRING)->v.s.ptr,
                        "C:\\dir\\");
    assert_int_equal(entry(&doc, 4, "server.port", GW_TOML_INT)->v.i, 3005);
    assert_true(entry(&doc, 5, "server.on", GW_TOML_BOOL)->v.b);
    assert_false(entry(&doc, 6, "server.off", GW_TOML_BOOL)->v.b);
    assert_int_equal(entry(&doc, 7, "server.Key_with-dash9", GW_TOML_INT)->v.i,
                     -7);
    assert_int_equal(doc.entries[7].line, 8);
    gw_toml_free(&doc);
    gw_toml_free(&doc); /* a freed doc is zeroed, so freeing twice is safe */
}

static void test_escapes(void **state)
{
    gw_toml_doc_t doc;
    (void)state;

    parse_ok("s = \"q\\\" b\\\\ \\b\\t\\n\\f\\r|\\u00e9\\u20AC\\U0001F600\"\n"
             "nul = \"a\\u0000b\"\n"
             "hash = \"# not a comment\" # a comment\n"
             "lit = '\\n stays \"raw\"'\n"
             "tab = \"a\tb\"\n"
             "empty = \"\"\n"
             "empty_lit = ''\n",
             &doc);
    assert_string_equal(
        entry(&doc, 0, "s", GW_TOML_STRING)->v.s.ptr,
        "q\" b\\ \b\t\n\f\r|\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    assert_int_equal(entry(&doc, 1, "nul", GW_TOML_STRING)->v.s.len, 3);
    assert_memory_equal(doc.entries[1].v.s.ptr, "a\0b", 4);
    assert_string_equal(entry(&doc, 2, "hash", GW_TOML_STRING)->v.s.ptr,
                        "# not a comment");
    assert_string_equal(entry(&doc, 3, "lit", GW_TOML_STRING)->v.s.ptr,
                        "\\n stays \"raw\"");
    assert_string_equal(entry(&doc, 4, "tab", GW_TOML_STRING)->v.s.ptr, "a\tb");
    assert_int_equal(entry(&doc, 5, "empty", GW_TOML_STRING)->v.s.len, 0);
    assert_int_equal(entry(&doc, 6, "empty_lit", GW_TOML_STRING)->v.s.len, 0);
    gw_toml_free(&doc);
}

static void test_integers(void **state)
{
    static const struct {
        const char *text;
        int64_t value;
    } cases[] = {
        {"0", 0},
        {"+0", 0},
        {"-0", 0},
        {"7", 7},
        {"+42", 42},
        {"1_000", 1000},
        {"65_536", 65536},
        {"9223372036854775807", INT64_MAX},
        {"-9223372036854775808", INT64_MIN},
        {"9_223_372_036_854_775_807", INT64_MAX},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[64];
        gw_toml_doc_t doc;
        int64_t v = 1;

        snprintf(text, sizeof(text), "n = %s\n", cases[i].text);
        parse_ok(text, &doc);
        assert_int_equal(entry(&doc, 0, "n", GW_TOML_INT)->v.i, cases[i].value);
        gw_toml_free(&doc);
        assert_int_equal(
            gw_toml_parse_int(cases[i].text, strlen(cases[i].text), &v), 0);
        assert_int_equal(v, cases[i].value);
    }
}

static void test_parse_int_errors(void **state)
{
    static const struct {
        const char *text;
        int rc;
    } cases[] = {
        {"", GW_EPARSE},
        {"+", GW_EPARSE},
        {"-", GW_EPARSE},
        {"012", GW_EPARSE},
        {"-01", GW_EPARSE},
        {"0_1", GW_EPARSE},
        {"_1", GW_EPARSE},
        {"1_", GW_EPARSE},
        {"1__0", GW_EPARSE},
        {"+_1", GW_EPARSE},
        {"12a", GW_EPARSE},
        {"0x10", GW_EPARSE},
        {" 1", GW_EPARSE},
        {"1 ", GW_EPARSE},
        {"9223372036854775808", GW_ETOOBIG},
        {"-9223372036854775809", GW_ETOOBIG},
        {"99999999999999999999999", GW_ETOOBIG},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t v = 12345;
        int rc = gw_toml_parse_int(cases[i].text, strlen(cases[i].text), &v);
        if (rc != cases[i].rc)
            fail_msg("'%s': got %d, want %d", cases[i].text, rc, cases[i].rc);
        assert_int_equal(v, 12345); /* untouched on error */
    }
}

static void test_tables(void **state)
{
    gw_toml_doc_t doc;
    (void)state;

    parse_ok("[ a . b ]  # spaces around the dots are allowed\n"
             "x = 1\n"
             "[a]\n" /* a parent declared after its child is legal */
             "x = 2\n"
             "[a.b.c]\n"
             "x = 3\n"
             "[\ta-b\t]\n",
             &doc);
    assert_int_equal(doc.n, 7);
    entry(&doc, 0, "a.b", GW_TOML_TABLE);
    assert_int_equal(entry(&doc, 1, "a.b.x", GW_TOML_INT)->v.i, 1);
    entry(&doc, 2, "a", GW_TOML_TABLE);
    assert_int_equal(entry(&doc, 3, "a.x", GW_TOML_INT)->v.i, 2);
    entry(&doc, 4, "a.b.c", GW_TOML_TABLE);
    assert_int_equal(entry(&doc, 5, "a.b.c.x", GW_TOML_INT)->v.i, 3);
    entry(&doc, 6, "a-b", GW_TOML_TABLE);
    gw_toml_free(&doc);
}

static void test_line_endings(void **state)
{
    gw_toml_doc_t doc;
    gw_toml_error_t err;
    const char *text = "# c\r\n\r\n[t]\r\nk = \"v\"\r\nn = 1 # x\r\nbad";
    (void)state;

    parse_ok("a = 1\r\nb = 'x'\r\n# c\r\nc = true", &doc);
    assert_int_equal(doc.n, 3);
    assert_int_equal(entry(&doc, 2, "c", GW_TOML_BOOL)->line, 4);
    gw_toml_free(&doc);

    assert_int_equal(gw_toml_parse(text, strlen(text), &doc, &err), GW_EPARSE);
    assert_int_equal(err.line, 6);
    assert_int_equal(doc.n, 0);
}

typedef struct bad_case {
    const char *input;
    int rc;
    unsigned line;
    const char *msg; /* the whole message */
} bad_case_t;

static const bad_case_t bad_cases[] = {
    /* duplicates and conflicts */
    {"a = 1\n# x\na = 2\n", GW_EPARSE, 3,
     "duplicate key 'a' (first set on line 1)"},
    {"[s]\nk = 1\n[t]\n[s]\n", GW_EPARSE, 4,
     "duplicate table [s] (first defined on line 1)"},
    {"[s]\nk = 1\n[s.k]\n", GW_EPARSE, 3,
     "table [s.k]: 's.k' is already a key (line 2)"},
    {"a = 1\n[a.b]\n", GW_EPARSE, 2,
     "table [a.b]: 'a' is already a key (line 1)"},
    {"[a.b]\n[a]\nb = 1\n", GW_EPARSE, 3,
     "key 'a.b' is already a table (line 1)"},
    {"[a.b.c]\n[a]\nb = 1\n", GW_EPARSE, 3,
     "key 'a.b' is already a table (line 1)"},
    /* strings */
    {"s = \"abc\n", GW_EPARSE, 1, "s: unterminated string"},
    {"\n[t]\ns = \"abc\\\"\n", GW_EPARSE, 3, "t.s: unterminated string"},
    {"s = \"abc\\", GW_EPARSE, 1, "s: unterminated string"},
    {"s = \"abc\r\n", GW_EPARSE, 1, "s: unterminated string"},
    {"s = 'abc\n", GW_EPARSE, 1, "s: unterminated string"},
    {"s = \"a\\xb\"\n", GW_EPARSE, 1, "s: invalid escape \\ followed by 'x'"},
    {"s = \"a\\ b\"\n", GW_EPARSE, 1,
     "s: invalid escape \\ followed by byte 0x20"},
    {"s = \"\\u12\"\n", GW_EPARSE, 1, "s: \\u escape needs 4 hex digits"},
    {"s = \"\\U0001F60\"\n", GW_EPARSE, 1, "s: \\U escape needs 8 hex digits"},
    {"s = \"\\ud800\"\n", GW_EPARSE, 1,
     "s: escape U+D800 is not a Unicode scalar value"},
    {"s = \"\\U00110000\"\n", GW_EPARSE, 1,
     "s: escape U+110000 is not a Unicode scalar value"},
    {"s = \"a\x01\"\n", GW_EPARSE, 1, "s: control character 0x01 in string"},
    {"s = 'a\x7f'\n", GW_EPARSE, 1, "s: control character 0x7f in string"},
    {"s = \"\"\"x\"\"\"\n", GW_EPARSE, 1,
     "s: unsupported value type (multi-line string)"},
    {"s = '''x'''\n", GW_EPARSE, 1,
     "s: unsupported value type (multi-line string)"},
    /* trailing garbage */
    {"n = 80 80\n", GW_EPARSE, 1, "unexpected '8' after value"},
    {"s = \"x\" y\n", GW_EPARSE, 1, "unexpected 'y' after value"},
    {"s = 'x''y'\n", GW_EPARSE, 1, "unexpected ''' after value"},
    {"b = true false\n", GW_EPARSE, 1, "unexpected 'f' after value"},
    {"[t] x\n", GW_EPARSE, 1, "unexpected 'x' after table header"},
    {"a = 1\r", GW_EPARSE, 1, "unexpected byte 0x0d after value"},
    {"\r\r\n", GW_EPARSE, 1, "unexpected byte 0x0d"},
    /* keys and headers */
    {"\"quoted\" = 1\n", GW_EPARSE, 1,
     "invalid key: unexpected '\"' (bare keys use A-Za-z0-9_- only)"},
    {"=1\n", GW_EPARSE, 1,
     "invalid key: unexpected '=' (bare keys use A-Za-z0-9_- only)"},
    {"k\xc3\xa9 = 1\n", GW_EPARSE, 1,
     "expected '=' after key 'k', got byte 0xc3"},
    {"a.b = 1\n", GW_EPARSE, 1,
     "dotted keys are not supported; put the key under a [table]"},
    {"key\n", GW_EPARSE, 1, "expected '=' after key 'key', got end of line"},
    {"key value\n", GW_EPARSE, 1, "expected '=' after key 'key', got 'v'"},
    {"[]\n", GW_EPARSE, 1,
     "invalid table name: unexpected ']' (bare keys use A-Za-z0-9_- only)"},
    {"[a..b]\n", GW_EPARSE, 1,
     "invalid table name: unexpected '.' (bare keys use A-Za-z0-9_- only)"},
    {"[a.]\n", GW_EPARSE, 1,
     "invalid table name: unexpected ']' (bare keys use A-Za-z0-9_- only)"},
    {"[a\n", GW_EPARSE, 1,
     "invalid table name: expected '.' or ']', got end "
     "of line"},
    {"[a b]\n", GW_EPARSE, 1,
     "invalid table name: expected '.' or ']', got 'b'"},
    {"[[a]]\n", GW_EPARSE, 1, "unsupported: arrays of tables [[...]]"},
    /* values */
    {"a =\n", GW_EPARSE, 1, "a: missing value"},
    {"a = # c\n", GW_EPARSE, 1, "a: missing value"},
    {"a = 3.14\n", GW_EPARSE, 1, "a: unsupported value type (float)"},
    {"a = 1e6\n", GW_EPARSE, 1, "a: unsupported value type (float)"},
    {"a = -inf\n", GW_EPARSE, 1, "a: unsupported value type (float)"},
    {"a = nan\n", GW_EPARSE, 1, "a: unsupported value type (float)"},
    {"a = 0x1F\n", GW_EPARSE, 1,
     "a: unsupported value type (non-decimal integer)"},
    {"a = 1979-05-27\n", GW_EPARSE, 1, "a: unsupported value type (date-time)"},
    {"a = 07:32:00\n", GW_EPARSE, 1, "a: unsupported value type (date-time)"},
    {"a = [1, 2]\n", GW_EPARSE, 1, "a: unsupported value type (array)"},
    {"a = { b = 1 }\n", GW_EPARSE, 1,
     "a: unsupported value type (inline table)"},
    {"a = hello\n", GW_EPARSE, 1,
     "a: invalid value 'hello' (strings must be quoted)"},
    {"a = True\n", GW_EPARSE, 1,
     "a: invalid value 'True' (strings must be quoted)"},
    {"a = 012\n", GW_EPARSE, 1,
     "a: invalid integer '012': leading zeros are not allowed"},
    {"a = 1__0\n", GW_EPARSE, 1,
     "a: invalid integer '1__0': underscores must sit between digits"},
    {"a = 12abc\n", GW_EPARSE, 1,
     "a: invalid integer '12abc': not a decimal integer"},
    {"a = 9223372036854775808\n", GW_ETOOBIG, 1,
     "a: invalid integer '9223372036854775808': does not fit in 64 bits"},
    /* comments */
    {"# ok\n# bad \x01 byte\n", GW_EPARSE, 2,
     "control character 0x01 in comment"},
};

static void test_errors(void **state)
{
    (void)state;

    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const bad_case_t *c = &bad_cases[i];
        gw_toml_doc_t doc;
        gw_toml_error_t err;
        int rc = gw_toml_parse(c->input, strlen(c->input), &doc, &err);

        if (rc != c->rc || err.line != c->line || strcmp(err.msg, c->msg) != 0)
            fail_msg("case %zu: input \"%s\"\n got %d line %u: %s\nwant %d "
                     "line %u: %s",
                     i, c->input, rc, err.line, err.msg, c->rc, c->line,
                     c->msg);
        assert_int_equal(doc.n, 0);
        assert_null(doc.entries);
    }
}

/* NUL bytes are input like any other, not terminators. */
static void test_nul_bytes(void **state)
{
    static const struct {
        const char input[16];
        size_t len;
        const char *msg;
    } cases[] = {
        {"a = 1 # \0\n", 10, "control character 0x00 in comment"},
        {"a = \"\0\"", 7, "a: control character 0x00 in string"},
        {"a\0= 1", 6, "expected '=' after key 'a', got byte 0x00"},
        {"a = 1\0", 6, "a: invalid integer '1\\x00': not a decimal integer"},
        {"a = 0\0", 6, "a: invalid integer '0\\x00': not a decimal integer"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gw_toml_doc_t doc;
        gw_toml_error_t err;
        int rc = gw_toml_parse(cases[i].input, cases[i].len, &doc, &err);

        assert_int_equal(rc, GW_EPARSE);
        assert_int_equal(err.line, 1);
        assert_string_equal(err.msg, cases[i].msg);
    }
}

/* The error names the whole of a long token only up to a bound. */
static void test_error_quotes_are_bounded(void **state)
{
    char text[300];
    gw_toml_doc_t doc;
    gw_toml_error_t err;
    (void)state;

    memset(text, 'x', sizeof(text));
    memcpy(text, "a = ", 4);
    assert_int_equal(gw_toml_parse(text, sizeof(text), &doc, &err), GW_EPARSE);
    assert_string_equal(err.msg, "a: invalid value "
                                 "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' "
                                 "(strings must be quoted)");
}

static void test_entry_limit(void **state)
{
    size_t cap = (GW_TOML_MAX_ENTRIES + 1) * 16;
    char *text = gw_malloc(cap);
    size_t len = 0;
    gw_toml_doc_t doc;
    gw_toml_error_t err;
    (void)state;

    for (int i = 0; i < GW_TOML_MAX_ENTRIES; i++)
        len += (size_t)snprintf(text + len, cap - len, "k%d = %d\n", i, i);
    parse_ok(text, &doc);
    assert_int_equal(doc.n, GW_TOML_MAX_ENTRIES);
    gw_toml_free(&doc);

    len += (size_t)snprintf(text + len, cap - len, "[one_more]\n");
    assert_int_equal(gw_toml_parse(text, len, &doc, &err), GW_ETOOBIG);
    assert_int_equal(err.line, GW_TOML_MAX_ENTRIES + 1);
    assert_string_equal(err.msg, "more than 1024 keys and tables");
    free(text);
}

/* Every byte of a valid file, cut short anywhere, parses or fails cleanly. */
static void test_every_prefix(void **state)
{
    const char *text = "# c\n[server]\nbind = \"a\\u00e9\\\"\" # x\n"
                       "port = -1_000\nlit = 'z'\nflag = false\n";
    size_t len = strlen(text);
    (void)state;

    for (size_t i = 0; i <= len; i++) {
        char *copy =
            gw_malloc(i ? i : 1); /* exact size, so ASan sees overreads */
        gw_toml_doc_t doc;
        gw_toml_error_t err;

        memcpy(copy, text, i);
        if (gw_toml_parse(copy, i, &doc, &err) == 0)
            gw_toml_free(&doc);
        else
            assert_true(err.line >= 1 && err.msg[0] != '\0');
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_inputs),
        cmocka_unit_test(test_every_type),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_parse_int_errors),
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_line_endings),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_error_quotes_are_bounded),
        cmocka_unit_test(test_entry_limit),
        cmocka_unit_test(test_every_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
