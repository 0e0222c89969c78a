/* gwctl's tokens: what mint signs, the daemon's verifier takes; and
 * check-token's verdict names the reason of each refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mint.h"
#include "tokens.h"

#include "gw/error.h"
#include "gw/jwt.h"

#include <stdlib.h>
#include <string.h>

#define NOW 1800000000
#define SECRET "unit-secret-0123456789abcdef"

static char *guilds[] = {"g1", "g2"};

/* A verifier of SECRET (HMAC only), with aud and iss when given. */
static void verifier(gw_jwt_verifier_t *v, const char *secret, const char *aud,
                     const char *iss)
{
    *v = (gw_jwt_verifier_t){
        .algs = GW_JWT_ALL,
        .secret = (const uint8_t *)secret,
        .secret_len = strlen(secret),
        .audience = aud,
        .issuer = iss,
    };
    gw_jwt_verifier_init(v);
}

static char *mint(const char *secret, int64_t exp, const char *aud,
                  const char *iss)
{
    ctl_mint_t m = {.sub = "u1",
                    .guilds = guilds,
                    .nguilds = 2,
                    .aud = aud,
                    .iss = iss,
                    .iat = NOW - 10,
                    .exp = exp};

    return ctl_mint_hs256(&m, secret);
}

static void test_mint_verifies(void **state)
{
    gw_jwt_verifier_t v;
    gw_jwt_claims_t c;
    char *token = mint(SECRET, NOW + 3600, "app", "idp");
    ctl_mint_t bare = {.sub = "u2", .iat = NOW, .exp = NOW + 60};
    char *plain = ctl_mint_hs256(&bare, SECRET);
    (void)state;

    verifier(&v, SECRET, "app", "idp");
    assert_int_equal(gw_jwt_verify(&v, token, strlen(token), NOW, &c), 0);
    assert_string_equal(c.sub, "u1");
    assert_int_equal(c.exp, NOW + 3600);
    assert_int_equal(c.nguilds, 2);
    assert_string_equal(c.guilds[1], "g2");
    gw_jwt_claims_free(&c);
    /* No aud or iss claim where the gateway wants them. */
    assert_int_equal(gw_jwt_verify(&v, plain, strlen(plain), NOW, &c),
                     GW_EAUTH);
    gw_jwt_verifier_free(&v);
    /* Without a guilds claim every guild is allowed. */
    verifier(&v, SECRET, NULL, NULL);
    assert_int_equal(gw_jwt_verify(&v, plain, strlen(plain), NOW, &c), 0);
    assert_null(c.guilds);
    gw_jwt_claims_free(&c);
    gw_jwt_verifier_free(&v);
    free(token);
    free(plain);
}

/* check-token's verdict on token says want; returns its code. */
static int expect_verdict(const gw_jwt_verifier_t *v, const char *token,
                          const char *want)
{
    gw_buf_t out = {0};
    int rc = ctl_tokens_check(v, token, NOW, &out);
    const char *verdict = strstr(out.data, "verdict  ");

    if (verdict == NULL || strstr(verdict, want) == NULL)
        fail_msg("verdict on %s should say '%s':\n%s", token, want, out.data);
    free(out.data);
    return rc;
}

static void test_check_verdicts(void **state)
{
    gw_jwt_verifier_t v, strict, none;
    char *good = mint(SECRET, NOW + 3600, NULL, NULL);
    char *old = mint(SECRET, NOW - 1, NULL, NULL);
    char *other = mint("another-secret", NOW + 3600, NULL, NULL);
    char *aud = mint(SECRET, NOW + 3600, "web", "idp");
    (void)state;

    verifier(&v, SECRET, NULL, NULL);
    verifier(&strict, SECRET, "app", "idp");
    verifier(&none, "", NULL, NULL);
    assert_int_equal(expect_verdict(&v, good,
                                    "valid: the gateway takes it "
                                    "for user u1"),
                     0);
    assert_int_equal(expect_verdict(&v, old, "expired"), GW_EEXPIRED);
    assert_int_equal(expect_verdict(&v, other, "signature does not match"),
                     GW_EAUTH);
    assert_int_equal(expect_verdict(&strict, aud,
                                    "its aud is \"web\", the gateway wants "
                                    "\"app\""),
                     GW_EAUTH);
    assert_int_equal(expect_verdict(&strict, good, "its aud is missing"),
                     GW_EAUTH);
    assert_int_equal(expect_verdict(&none, good, "no secret to verify HS256"),
                     GW_EAUTH);
    assert_int_equal(expect_verdict(&v, "abc.def", "malformed: 2 parts"),
                     GW_EPARSE);
    assert_int_equal(expect_verdict(&v, "a.b.c", "the header is not"),
                     GW_EPARSE);
    /* {"alg":"none"} and {"alg":"HS256","kid":"k1"}, each with claims. */
    assert_int_equal(expect_verdict(&v, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.",
                                    "alg none is not accepted"),
                     GW_EALG);
    assert_int_equal(
        expect_verdict(&v,
                       "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1In0.x",
                       "no key has its kid \"k1\""),
        GW_ENOKEY);
    gw_jwt_verifier_free(&v);
    gw_jwt_verifier_free(&strict);
    gw_jwt_verifier_free(&none);
    free(good);
    free(old);
    free(other);
    free(aud);
}

static void test_check_iss(void **state)
{
    gw_jwt_verifier_t v;
    char *token = mint(SECRET, NOW + 3600, "app", "someone");
    (void)state;

    verifier(&v, SECRET, "app", "idp");
    assert_int_equal(expect_verdict(&v, token,
                                    "its iss is \"someone\", the gateway "
                                    "wants \"idp\""),
                     GW_EAUTH);
    gw_jwt_verifier_free(&v);
    free(token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mint_verifies),
        cmocka_unit_test(test_check_verdicts),
        cmocka_unit_test(test_check_iss),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
