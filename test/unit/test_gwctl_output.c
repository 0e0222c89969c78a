/* What gwctl prints and decides from the gateway's answers: tail's lines
 * and its verdict on a close, the /stats table and /health fields, and
 * the envelope publish builds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "envelope.h"
#include "table.h"
#include "tail.h"

#include "gw/error.h"
#include "gw/json.h"

#include <stdlib.h>
#include <string.h>

static void expect_line(const char *msg, int json, const char *want)
{
    cJSON *m = gw_json_parse(msg, strlen(msg));
    gw_buf_t out = {0};

    assert_int_equal(ctl_tail_format(m, json, &out), want != NULL);
    if (want != NULL)
        assert_string_equal(out.data, want);
    free(out.data);
    cJSON_Delete(m);
}

static void test_tail_lines(void **state)
{
    (void)state;
    expect_line("{\"seq\":1,\"event\":\"message.create\",\"guildId\":\"g1\","
                "\"data\":{\"content\": \"hello\"}}",
                0, "1 message.create g1 {\"content\":\"hello\"}\n");
    expect_line("{\"seq\":12,\"event\":\"user.update\",\"data\":[1]}", 0,
                "12 user.update - [1]\n");
    /* A word that would break the line's columns is quoted. */
    expect_line("{\"seq\":3,\"event\":\"a b\\n\",\"guildId\":\"\"}", 0,
                "3 \"a b\\u000a\" \"\" {}\n");
    expect_line("{\"seq\":2,\"event\":\"e\",\"data\":{\"x\":\n1}}", 1,
                "{\"seq\":2,\"event\":\"e\",\"data\":{\"x\":1}}\n");
    /* Not dispatches: no seq, or no event. */
    expect_line("{\"event\":\"heartbeat\",\"data\":{}}", 0, NULL);
    expect_line("{\"seq\":\"1\",\"event\":\"e\"}", 0, NULL);
    expect_line("{\"seq\":1}", 0, NULL);
}

static void test_tail_verdicts(void **state)
{
    (void)state;
    /* Closes that another try would repeat. */
    assert_int_equal(ctl_tail_verdict(0, 0, 4004), CTL_TAIL_GIVE_UP);
    assert_int_equal(ctl_tail_verdict(0, 0, 4003), CTL_TAIL_GIVE_UP);
    assert_int_equal(ctl_tail_verdict(GW_EAUTH, 0, 1006), CTL_TAIL_GIVE_UP);
    assert_int_equal(ctl_tail_verdict(GW_EINVAL, 403, 1006), CTL_TAIL_GIVE_UP);
    /* Those that pass. */
    assert_int_equal(ctl_tail_verdict(0, 0, 4011), CTL_TAIL_RETRY);
    assert_int_equal(ctl_tail_verdict(0, 0, 4013), CTL_TAIL_RETRY);
    assert_int_equal(ctl_tail_verdict(0, 0, 1006), CTL_TAIL_RETRY);
    assert_int_equal(ctl_tail_verdict(GW_EIO, 0, 1006), CTL_TAIL_RETRY);
    assert_int_equal(ctl_tail_verdict(GW_EINVAL, 502, 1006), CTL_TAIL_RETRY);
    /* Limits: later. */
    assert_int_equal(ctl_tail_verdict(0, 0, 4008), CTL_TAIL_RETRY_SLOW);
    assert_int_equal(ctl_tail_verdict(GW_EINVAL, 503, 1006),
                     CTL_TAIL_RETRY_SLOW);
    assert_int_equal(ctl_tail_verdict(GW_EINVAL, 429, 1006),
                     CTL_TAIL_RETRY_SLOW);
    assert_string_equal(ctl_tail_code_name(4011), "server draining");
    assert_null(ctl_tail_code_name(4006));
}

static const char stats[] =
    "{\"workers\":["
    "{\"id\":0,\"connections\":2,\"sessions\":1,\"ring_drops\":0,"
    "\"closes_by_code\":{\"1000\":1}},"
    "{\"id\":1,\"connections\":1,\"sessions\":0,\"ring_drops\":0,"
    "\"closes_by_code\":{\"1000\":0}}],"
    "\"acceptor\":{\"thread\":\"acceptor\",\"accept_drops\":0},"
    "\"broker\":{\"thread\":\"broker\",\"events_http\":7,\"events_redis\":0},"
    "\"totals\":{\"connections\":3,\"sessions\":1,\"ring_drops\":0,"
    "\"closes_by_code\":{\"1000\":1,\"4004\":2,\"1006\":0}},"
    "\"fanout_latency\":{\"le_us\":[50,100,250],\"counts\":[1,1,8,0]}}";

static char *table(const char *json, int all)
{
    cJSON *s = gw_json_parse(json, strlen(json));
    gw_buf_t out = {0};

    assert_int_equal(ctl_table_stats(s, all, &out), 0);
    cJSON_Delete(s);
    return out.data;
}

static void expect_has(const char *text, const char *want)
{
    if (strstr(text, want) == NULL)
        fail_msg("'%s' not in:\n%s", want, text);
}

static void test_stats_table(void **state)
{
    char *t = table(stats, 0), *a = table(stats, 1);
    cJSON *bad = gw_json_parse("{\"workers\":{}}", 14);
    gw_buf_t out = {0};
    (void)state;

    expect_has(t, "   worker 0   worker 1      total\n");
    expect_has(t, "connections          2          1          3\n");
    expect_has(t, "sessions             1          0          1\n");
    /* Zero everywhere: counted, shown with --all. */
    assert_null(strstr(t, "ring_drops"));
    expect_has(t, "(1 counter at zero everywhere not shown; --all");
    expect_has(a, "ring_drops           0          0          0\n");
    expect_has(t, "closes by code: 1000 x1 4004 x2\n");
    expect_has(t, "acceptor: all zero\n");
    expect_has(t, "broker: events_http 7\n");
    expect_has(a, "broker: events_http 7 events_redis 0\n");
    /* 1 + 1 + 8 events: the median's bucket is the third. */
    expect_has(t, "fan-out latency: p50 <= 250 us, p99 <= 250 us (10 "
                  "events)\n");
    assert_int_equal(ctl_table_stats(bad, 0, &out), GW_EPARSE);
    assert_null(out.data);
    cJSON_Delete(bad);
    free(t);
    free(a);
}

/* Nine workers: too many to read across, so the least and the most. */
static void test_stats_many_workers(void **state)
{
    gw_buf_t json = {0};
    char *t;
    (void)state;

    gw_buf_printf(&json, "{\"workers\":[");
    for (int i = 0; i < 9; i++)
        gw_buf_printf(&json, "%s{\"id\":%d,\"connections\":%d}", i ? "," : "",
                      i, i + 1);
    gw_buf_printf(&json, "],\"totals\":{\"connections\":45}}");
    t = table(json.data, 0);
    expect_has(t, "  worker min worker max      total\n");
    expect_has(t, "connections          1          9         45\n");
    assert_null(strstr(t, "worker 8"));
    free(t);
    free(json.data);
}

static void test_quantile_and_span(void **state)
{
    const double le[] = {50, 100}, none[] = {0, 0, 0}, past[] = {1, 0, 3};
    char s[32];
    (void)state;

    assert_true(ctl_table_quantile(le, none, 2, 0.5) == 0);
    assert_true(ctl_table_quantile(le, past, 2, 0.25) == 50);
    assert_true(ctl_table_quantile(le, past, 2, 0.5) == -1);
    ctl_table_span(0, s, sizeof(s));
    assert_string_equal(s, "0s");
    ctl_table_span(59, s, sizeof(s));
    assert_string_equal(s, "59s");
    ctl_table_span(3600, s, sizeof(s));
    assert_string_equal(s, "1h");
    ctl_table_span(3 * 86400 + 4 * 3600 + 5, s, sizeof(s));
    assert_string_equal(s, "3d 4h");
    ctl_table_span(125, s, sizeof(s));
    assert_string_equal(s, "2m 5s");
}

static void test_health_fields(void **state)
{
    static const char h[] =
        "{\"status\":\"degraded\",\"instance\":\"vm\",\"version\":\"0.1.0\","
        "\"uptime\":3700,\"connections\":3,\"sessions\":2,"
        "\"links\":{\"redis\":\"down\",\"amqp\":\"disabled\"},"
        "\"links_since\":{\"redis\":1000,\"amqp\":0},\"time\":126000}";
    cJSON *j = gw_json_parse(h, strlen(h));
    gw_buf_t out = {0};
    (void)state;

    ctl_table_health(j, &out);
    assert_string_equal(out.data, "status       degraded\n"
                                  "instance     vm\n"
                                  "version      0.1.0\n"
                                  "uptime       1h 1m\n"
                                  "connections  3\n"
                                  "sessions     2\n"
                                  "redis        down for 2m 5s\n"
                                  "amqp         disabled\n");
    free(out.data);
    cJSON_Delete(j);
}

/* The envelope of the options, or the error's text. */
static void expect_envelope(ctl_opts_t *o, const char *data, const char *want)
{
    char *env, err[256] = "";
    int rc = ctl_envelope_build(o, data, data ? strlen(data) : 0, &env, err,
                                sizeof(err));

    if (rc == 0) {
        assert_string_equal(env, want);
        free(env);
    } else if (strstr(err, want) == NULL) {
        fail_msg("error '%s' should say '%s'", err, want);
    }
}

static void test_envelope(void **state)
{
    char *two[] = {"u1", "u2"}, *one[] = {"g1"};
    ctl_opts_t o = {.event = "message.create"};
    (void)state;

    expect_envelope(&o, NULL, "give one target");
    o.guilds = (ctl_list_t){one, 1};
    expect_envelope(&o, "{\"content\": \"hi\"}",
                    "{\"event\":\"message.create\",\"guildId\":\"g1\","
                    "\"data\":{\"content\":\"hi\"}}");
    expect_envelope(&o, "[1]", "--data: not a JSON object");
    expect_envelope(&o, "{\"a\":1} x", "--data: not a JSON object");
    o.broadcast = 1;
    expect_envelope(&o, NULL, "not several");
    o.guilds = (ctl_list_t){0};
    o.priority = 1;
    o.id = "evt-1";
    o.exclude_user = "u9";
    expect_envelope(
        &o, NULL,
        "{\"event\":\"message.create\",\"broadcast\":true,"
        "\"priority\":1,\"excludeUserId\":\"u9\",\"id\":\"evt-1\"}");
    o = (ctl_opts_t){.event = "e", .users = {two, 2}};
    expect_envelope(&o, NULL, "{\"event\":\"e\",\"userIds\":[\"u1\",\"u2\"]}");
    o.event = NULL;
    expect_envelope(&o, NULL, "--event NAME is needed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tail_lines),
        cmocka_unit_test(test_tail_verdicts),
        cmocka_unit_test(test_stats_table),
        cmocka_unit_test(test_stats_many_workers),
        cmocka_unit_test(test_quantile_and_span),
        cmocka_unit_test(test_health_fields),
        cmocka_unit_test(test_envelope),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
