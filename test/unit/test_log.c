/* Log levels and the per-site rate limit of repeated messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "gw/log.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void test_parse_level(void **state)
{
    (void)state;
    assert_int_equal(gw_log_parse_level("debug"), GW_LOG_DEBUG);
    assert_int_equal(gw_log_parse_level("error"), GW_LOG_ERROR);
    assert_int_equal(gw_log_parse_level("verbose"), -1);
}

static void test_limited_suppresses_within_a_second(void **state)
{
    gw_log_limit_t rl = {0};
    (void)state;

    gw_log_level = GW_LOG_INFO;
    gw_log_limited(&rl, GW_LOG_WARN, "first %d", 1);
    assert_int_not_equal(rl.last_ms, 0);
    assert_int_equal(rl.suppressed, 0);
    for (int i = 0; i < 5; i++)
        gw_log_limited(&rl, GW_LOG_WARN, "again %d", i);
    assert_int_equal(rl.suppressed, 5);
    /* A second later the next line goes out and resets the count. */
    rl.last_ms -= 1000;
    gw_log_limited(&rl, GW_LOG_WARN, "later");
    assert_int_equal(rl.suppressed, 0);
}

static void test_limited_below_level_costs_nothing(void **state)
{
    gw_log_limit_t rl = {0};
    (void)state;

    gw_log_level = GW_LOG_ERROR;
    gw_log_limited(&rl, GW_LOG_INFO, "dropped");
    assert_int_equal(rl.last_ms, 0);
    assert_int_equal(rl.suppressed, 0);
    gw_log_level = GW_LOG_INFO;
}

static void test_json_escape(void **state)
{
    char out[64];
    (void)state;

    assert_int_equal(gw_log_json_escape(out, sizeof(out), "a\"b\\c\nd\x01"),
                     strlen("a\\\"b\\\\c\\nd\\u0001"));
    assert_string_equal(out, "a\\\"b\\\\c\\nd\\u0001");
    /* Bytes over 0x7f (UTF-8) pass as they are. */
    gw_log_json_escape(out, sizeof(out), "caf\xc3\xa9");
    assert_string_equal(out, "caf\xc3\xa9");
}

static void test_json_escape_never_splits_an_escape(void **state)
{
    char out[8];
    (void)state;

    /* "ab" then \u0001 (6 bytes) does not fit in 7 characters whole. */
    assert_int_equal(gw_log_json_escape(out, sizeof(out), "ab\x01c"), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(gw_log_json_escape(out, 1, "abc"), 0);
    assert_string_equal(out, "");
}

/* Runs fn with stderr going to a file; returns what it wrote (static). */
static const char *log_capture(void (*fn)(void))
{
    static char text[8192];
    FILE *f = tmpfile();
    int saved = dup(2);
    size_t n;

    assert_non_null(f);
    fflush(stderr);
    dup2(fileno(f), 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static void log_some_lines(void)
{
    gw_info("dropped at level error");
    gw_error("kept \"quoted\"\n");
    gw_audit(GW_LOG_INFO, "auth ok", "conn", "7", "peer", "127.0.0.1", "user",
             "u\"1", NULL);
}

static void test_audit_whatever_the_level(void **state)
{
    const char *text;
    (void)state;

    gw_log_level = GW_LOG_ERROR;
    text = log_capture(log_some_lines);
    assert_null(strstr(text, "dropped"));
    assert_non_null(strstr(text, "info  audit: auth ok conn=7 "
                                 "peer=127.0.0.1 user=u\"1\n"));
    gw_log_audit = 0;
    text = log_capture(log_some_lines);
    assert_null(strstr(text, "audit"));
    assert_non_null(strstr(text, "kept"));
    gw_log_audit = 1;
    gw_log_level = GW_LOG_INFO;
}

static void test_json_lines_parse(void **state)
{
    char *copy, *line, *save = NULL;
    int lines = 0;
    (void)state;

    gw_log_level = GW_LOG_ERROR;
    gw_log_format = GW_LOG_JSON;
    copy = strdup(log_capture(log_some_lines));
    gw_log_format = GW_LOG_TEXT;
    gw_log_level = GW_LOG_INFO;
    for (line = strtok_r(copy, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save), lines++) {
        cJSON *doc = cJSON_Parse(line);
        assert_non_null(doc);
        assert_non_null(cJSON_GetObjectItem(doc, "ts"));
        assert_non_null(cJSON_GetObjectItem(doc, "level"));
        assert_non_null(cJSON_GetObjectItem(doc, "msg"));
        if (lines == 0) {
            assert_string_equal(cJSON_GetObjectItem(doc, "msg")->valuestring,
                                "kept \"quoted\"\n");
        } else {
            assert_string_equal(cJSON_GetObjectItem(doc, "audit")->valuestring,
                                "auth ok");
            assert_string_equal(cJSON_GetObjectItem(doc, "user")->valuestring,
                                "u\"1");
            assert_string_equal(cJSON_GetObjectItem(doc, "level")->valuestring,
                                "info");
        }
        cJSON_Delete(doc);
    }
    assert_int_equal(lines, 2);
    free(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_level),
        cmocka_unit_test(test_limited_suppresses_within_a_second),
        cmocka_unit_test(test_limited_below_level_costs_nothing),
        cmocka_unit_test(test_json_escape),
        cmocka_unit_test(test_json_escape_never_splits_an_escape),
        cmocka_unit_test(test_audit_whatever_the_level),
        cmocka_unit_test(test_json_lines_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
