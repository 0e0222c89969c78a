/*
 * The tls.sni_certs list and the names of certificates (sni.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/sni.h"

#include <stdio.h>
#include <string.h>

/* Reads every entry of list into "cert|key;" pairs, or "bad" at the first
 * that does not parse. */
static void sni_entries(const char *list, char *out, size_t len)
{
    gw_sni_entry_t e;
    size_t n = 0;
    int rc;

    out[0] = '\0';
    while ((rc = gw_sni_next(&list, &e)) == 1)
        n += (size_t)snprintf(out + n, len - n, "%.*s|%.*s;", (int)e.cert_len,
                              e.cert, (int)e.key_len, e.key);
    if (rc != 0)
        snprintf(out, len, "bad");
}

static void test_sni_list(void **state)
{
    static const struct {
        const char *list, *want;
    } cases[] = {
        {"", ""},
        {"  ", ""},
        {"a.crt:a.key", "a.crt|a.key;"},
        {" /e/a.crt:/e/a.key ,\t/e/b.crt:/e/b.key ", "/e/a.crt|/e/a.key;"
                                                     "/e/b.crt|/e/b.key;"},
        {"a.crt:a.key,", "a.crt|a.key;"},
        {"a.crt", "bad"},
        {"a.crt:", "bad"},
        {":a.key", "bad"},
        {"a:b:c", "bad"},
        {"a.crt:a.key,,b.crt:b.key", "bad"},
    };
    char got[256];
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sni_entries(cases[i].list, got, sizeof(got));
        assert_string_equal(got, cases[i].want);
    }
}

static int name_matches(const char *pattern, const char *host)
{
    return gw_sni_name_matches(pattern, strlen(pattern), host, strlen(host));
}

static void test_sni_names(void **state)
{
    (void)state;
    assert_true(name_matches("chat.example.com", "chat.example.com"));
    assert_true(name_matches("chat.example.com", "Chat.EXAMPLE.com"));
    assert_false(name_matches("chat.example.com", "chat.example.co"));
    assert_false(name_matches("chat.example.com", "xchat.example.com"));
    /* A wildcard is one whole first label. */
    assert_true(name_matches("*.example.com", "chat.example.com"));
    assert_true(name_matches("*.Example.com", "a.example.COM"));
    assert_false(name_matches("*.example.com", "example.com"));
    assert_false(name_matches("*.example.com", ".example.com"));
    assert_false(name_matches("*.example.com", "a.b.example.com"));
    assert_false(name_matches("*.example.com", "chat.example.org"));
    assert_false(name_matches("*", "chat"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sni_list),
        cmocka_unit_test(test_sni_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
