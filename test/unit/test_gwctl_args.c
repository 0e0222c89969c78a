/* gwctl's command line: the option tables' parser, durations, URLs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "args.h"
#include "url.h"

#include "gw/error.h"

#include <string.h>

/* A command with an option of every type, as the real tables write them. */
static const ctl_opt_t opts[] = {
    CTL_OPT("user", 0, CTL_LIST, users, "USER", "who"),
    CTL_OPT("event", 0, CTL_STR, event, "NAME", "what"),
    CTL_OPT("json", 0, CTL_FLAG, json, NULL, "raw"),
    CTL_OPT_NUM("priority", CTL_INT, priority, 1, 4, "1-4", "how urgent"),
    CTL_OPT_NUM("ttl", CTL_SECONDS, ttl_s, 60, 86400, "DURATION", "how long"),
};
static const ctl_cmd_t cmd = {
    "try", "[options]", "A test.", NULL, opts, sizeof(opts) / sizeof(opts[0]),
    NULL,  NULL};
static const ctl_cmd_t cmd_arg = {"check", "TOKEN", "A test.", NULL,
                                  opts,    1,       "TOKEN",   NULL};

/* Parses the NULL-terminated words; the status, o kept for checks. */
static int parse(const ctl_cmd_t *c, ctl_opts_t *o, char *err,
                 const char *const *words)
{
    int n = 0;

    while (words[n] != NULL)
        n++;
    return ctl_args_parse(c, n, (char *const *)words, o, err, 256);
}

/* A refusal whose message contains want. */
static void expect_refused(const ctl_cmd_t *c, const char *const *words,
                           const char *want)
{
    ctl_opts_t o;
    char err[256] = "";

    assert_int_equal(parse(c, &o, err, words), GW_EINVAL);
    if (strstr(err, want) == NULL)
        fail_msg("error '%s' does not say '%s'", err, want);
    ctl_args_free(&o);
}

static void test_every_type(void **state)
{
    const char *words[] = {"--user",     "u1",      "--event=message.create",
                           "--json",     "--user",  " u2 , u3,,",
                           "--priority", "2",       "--ttl",
                           "1h30m",      "-c",      "x.toml",
                           "-s",         "a.b=1,2", NULL};
    ctl_opts_t o;
    char err[256];
    (void)state;

    assert_int_equal(parse(&cmd, &o, err, words), 0);
    assert_int_equal(o.users.n, 3);
    assert_string_equal(o.users.v[0], "u1");
    assert_string_equal(o.users.v[1], "u2");
    assert_string_equal(o.users.v[2], "u3");
    assert_string_equal(o.event, "message.create");
    assert_int_equal(o.json, 1);
    assert_int_equal(o.priority, 2);
    assert_int_equal(o.ttl_s, 5400);
    assert_string_equal(o.config, "x.toml");
    /* -s values keep their commas: they are whole assignments. */
    assert_int_equal(o.sets.n, 1);
    assert_string_equal(o.sets.v[0], "a.b=1,2");
    assert_null(o.arg);
    ctl_args_free(&o);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refused(&cmd, (const char *[]){"--nope", NULL}, "unknown option");
    expect_refused(&cmd, (const char *[]){"--use", "u", NULL},
                   "unknown option --use");
    expect_refused(&cmd, (const char *[]){"--user", NULL}, "needs a value");
    expect_refused(&cmd, (const char *[]){"--json=1", NULL}, "takes no value");
    expect_refused(&cmd, (const char *[]){"--priority", "5", NULL},
                   "out of range (1 to 4)");
    expect_refused(&cmd, (const char *[]){"--priority", "2x", NULL},
                   "not an integer");
    expect_refused(&cmd, (const char *[]){"--ttl", "59", NULL}, "out of range");
    expect_refused(&cmd, (const char *[]){"--ttl", "1 h", NULL},
                   "not a duration");
    expect_refused(&cmd, (const char *[]){"stray", NULL},
                   "unexpected argument 'stray'");
    expect_refused(&cmd_arg, (const char *[]){NULL}, "missing TOKEN");
    expect_refused(&cmd_arg, (const char *[]){"a", "b", NULL},
                   "unexpected argument 'b'");
}

static void test_positional(void **state)
{
    ctl_opts_t o;
    char err[256];
    (void)state;

    /* "-" is an argument (stdin), and "--" lets one start with a dash. */
    assert_int_equal(parse(&cmd_arg, &o, err, (const char *[]){"-", NULL}), 0);
    assert_string_equal(o.arg, "-");
    ctl_args_free(&o);
    assert_int_equal(
        parse(&cmd_arg, &o, err, (const char *[]){"--", "--user", NULL}), 0);
    assert_string_equal(o.arg, "--user");
    assert_int_equal(o.users.n, 0);
    ctl_args_free(&o);
    /* --help needs no argument. */
    assert_int_equal(parse(&cmd_arg, &o, err, (const char *[]){"-h", NULL}), 0);
    assert_int_equal(o.help, 1);
    ctl_args_free(&o);
}

static void test_list_bound(void **state)
{
    const char *words[2 * CTL_LIST_MAX + 3];
    ctl_opts_t o;
    char err[256];
    int n = 0;
    (void)state;

    for (int i = 0; i <= CTL_LIST_MAX; i++) {
        words[n++] = "--user";
        words[n++] = "u";
    }
    words[n] = NULL;
    assert_int_equal(parse(&cmd, &o, err, words), GW_EINVAL);
    assert_non_null(strstr(err, "more than 256"));
    ctl_args_free(&o);
}

static void expect_duration(const char *s, int64_t want)
{
    int64_t got = -1;

    if (ctl_args_duration(s, &got) != 0 || got != want)
        fail_msg("'%s': want %lld, got %lld", s, (long long)want,
                 (long long)got);
}

static void test_duration(void **state)
{
    static const char *const bad[] = {
        "",
        "h",
        "1x",
        "1.5h",
        "-1",
        "1h 2m",
        "30m1h",
        "1h1h",
        "1h2",
        "99999999999999999999",
        "9999999999999999d",
    };
    int64_t got;
    (void)state;

    expect_duration("90", 90);
    expect_duration("90s", 90);
    expect_duration("30m", 1800);
    expect_duration("1h", 3600);
    expect_duration("2d", 172800);
    expect_duration("1d2h3m4s", 93784);
    expect_duration("1h0m", 3600);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ctl_args_duration(bad[i], &got) != GW_EINVAL)
            fail_msg("'%s' should be refused", bad[i]);
}

static void expect_url(const char *s, int ws, int tls, const char *host,
                       const char *port, const char *path,
                       const char *authority)
{
    ctl_url_t u;

    if (ctl_url_parse(s, &u) != 0)
        fail_msg("'%s' refused", s);
    assert_int_equal(u.websocket, ws);
    assert_int_equal(u.tls, tls);
    assert_string_equal(u.host, host);
    assert_string_equal(u.port, port);
    assert_string_equal(u.path, path);
    assert_string_equal(u.authority, authority);
}

static void test_url(void **state)
{
    static const char *const bad[] = {
        "ftp://h/",  "ws//h",         "ws://",        "ws://:80/",
        "ws://h:0/", "ws://h:65536/", "ws://h:8x/",   "ws://u@h/",
        "ws://[::1", "ws://[]:80/",   "ws://[::1]x/", "ws://h/a b",
        "ws://h:/",  "http://h/\x01",
    };
    ctl_url_t u;
    (void)state;

    expect_url("ws://127.0.0.1:3005/", 1, 0, "127.0.0.1", "3005", "/",
               "127.0.0.1:3005");
    expect_url("WSS://gw.example.com", 1, 1, "gw.example.com", "443", "/",
               "gw.example.com:443");
    expect_url("http://h:3006/gw/?a=1#frag", 0, 0, "h", "3006", "/gw/?a=1",
               "h:3006");
    expect_url("https://h?x=1", 0, 1, "h", "443", "/?x=1", "h:443");
    expect_url("ws://[::1]:3005/p", 1, 0, "::1", "3005", "/p", "[::1]:3005");
    expect_url("ws://[::1]", 1, 0, "::1", "80", "/", "[::1]:80");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ctl_url_parse(bad[i], &u) != GW_EPARSE)
            fail_msg("'%s' should be refused", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_positional), cmocka_unit_test(test_list_bound),
        cmocka_unit_test(test_duration),   cmocka_unit_test(test_url),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
