/*
 * gw_jwt_verify: tokens are built here (base64url by the test's own
 * encoder, HMAC by mbedtls), so each test states its header and payload in
 * plain JSON. One literal token signed by Python's hmac module checks the
 * implementation against a signer that shares no code with it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <mbedtls/md.h>

#include "gw/error.h"
#include "gw/jwt.h"

#define NOW INT64_C(1700000000)
#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define MAX_TOKEN 8192

static const char KEY[] = "unit-test-secret";
static const char B64URL[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* A token under construction. */
typedef struct token {
    char s[2 * MAX_TOKEN];
    size_t len;
} token_t;

static void tok_raw(token_t *t, const char *s)
{
    size_t n = strlen(s);

    assert_true(t->len + n < sizeof(t->s));
    memcpy(t->s + t->len, s, n + 1);
    t->len += n;
}

/* Appends base64url(data), unpadded. */
static void tok_b64(token_t *t, const void *data, size_t n)
{
    const uint8_t *p = data;
    uint32_t acc = 0;
    unsigned bits = 0;

    assert_true(t->len + n * 4 / 3 + 4 < sizeof(t->s));
    for (size_t i = 0; i < n; i++) {
        acc = acc << 8 | p[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            t->s[t->len++] = B64URL[acc >> bits & 63];
        }
    }
    if (bits > 0)
        t->s[t->len++] = B64URL[acc << (6 - bits) & 63];
    t->s[t->len] = '\0';
}

static void tok_json(token_t *t, const char *json)
{
    tok_b64(t, json, strlen(json));
}

/* Appends "." and the first n bytes of the MAC of everything before it
 * (zeros past its end), with bit `flip` inverted when flip >= 0. */
static void tok_sign_n(token_t *t, const char *key, mbedtls_md_type_t type,
                       int flip, size_t n)
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(type);
    uint8_t mac[80] = {0};

    assert_true(n <= sizeof(mac));
    assert_int_equal(mbedtls_md_hmac(md, (const uint8_t *)key, strlen(key),
                                     (const uint8_t *)t->s, t->len, mac),
                     0);
    if (flip >= 0)
        mac[flip / 8] ^= (uint8_t)(1u << flip % 8);
    tok_raw(t, ".");
    tok_b64(t, mac, n);
}

static void tok_sign(token_t *t, const char *key, mbedtls_md_type_t type,
                     int flip)
{
    tok_sign_n(t, key, type, flip,
               mbedtls_md_get_size(mbedtls_md_info_from_type(type)));
}

/* header.payload signed with KEY, HS256. */
static token_t *make(token_t *t, const char *hdr, const char *payload)
{
    t->len = 0;
    tok_json(t, hdr);
    tok_raw(t, ".");
    tok_json(t, payload);
    tok_sign(t, KEY, MBEDTLS_MD_SHA256, -1);
    return t;
}

static gw_jwt_verifier_t verifier(void)
{
    return (gw_jwt_verifier_t){
        .algs = GW_JWT_HS256,
        .secret = (const uint8_t *)KEY,
        .secret_len = sizeof(KEY) - 1,
    };
}

/* gw_jwt_verify with a copy of v prepared for this one call: the tests
 * change settings between calls, and each change needs an init. */
static int verify_raw(const gw_jwt_verifier_t *v, const char *tok, size_t len,
                      int64_t now, gw_jwt_claims_t *c)
{
    gw_jwt_verifier_t p = *v;
    int ret;

    gw_jwt_verifier_init(&p);
    ret = gw_jwt_verify(&p, tok, len, now, c);
    gw_jwt_verifier_free(&p);
    return ret;
}

/* Verifies t with v and checks that a failure leaves nothing in the
 * claims; a success is freed at once. */
static int verify_with(const gw_jwt_verifier_t *v, const token_t *t)
{
    static const gw_jwt_claims_t zero;
    gw_jwt_claims_t c;
    int ret;

    memset(&c, 0xA5, sizeof(c));
    ret = verify_raw(v, t->s, t->len, NOW, &c);
    if (ret != 0)
        assert_memory_equal(&c, &zero, sizeof(c));
    else
        gw_jwt_claims_free(&c);
    return ret;
}

static int verify(const token_t *t)
{
    gw_jwt_verifier_t v = verifier();

    return verify_with(&v, t);
}

/* The result for a well-signed HS256 token carrying `payload`. */
static int payload_result(const char *payload)
{
    token_t t;

    return verify(make(&t, HS256, payload));
}

/* Same, against a verifier with an audience and an issuer configured. */
static int payload_result_aud_iss(const char *payload)
{
    gw_jwt_verifier_t v = verifier();
    token_t t;

    v.audience = "gatewayd";
    v.issuer = "https://auth.example";
    return verify_with(&v, make(&t, HS256, payload));
}

static void test_valid(void **state)
{
    gw_jwt_verifier_t v = verifier();
    gw_jwt_claims_t c;
    token_t t;

    (void)state;
    make(&t, HS256,
         "{\"sub\":\"user-1\",\"exp\":1700000600,\"nbf\":1699999000}");
    assert_int_equal(verify_raw(&v, t.s, t.len, NOW, &c), 0);
    assert_string_equal(c.sub, "user-1");
    assert_int_equal(c.exp, 1700000600);
    assert_int_equal(c.nbf, 1699999000);
    assert_null(c.guilds);
    assert_int_equal(c.nguilds, 0);
    assert_true(gw_jwt_claims_allow_guild(&c, "any-guild"));
    gw_jwt_claims_free(&c);
    assert_null(c.sub);

    /* No exp, no nbf, no typ: all optional. */
    make(&t, "{\"alg\":\"HS256\"}", "{\"sub\":\"u\"}");
    assert_int_equal(verify_raw(&v, t.s, t.len, NOW, &c), 0);
    assert_int_equal(c.exp, 0);
    assert_int_equal(c.nbf, 0);
    gw_jwt_claims_free(&c);
}

static void test_guilds(void **state)
{
    gw_jwt_verifier_t v = verifier();
    gw_jwt_claims_t c;
    token_t t;

    (void)state;
    make(&t, HS256, "{\"sub\":\"u\",\"guilds\":[\"g1\",\"g2\",\"g3\"]}");
    assert_int_equal(verify_raw(&v, t.s, t.len, NOW, &c), 0);
    assert_int_equal(c.nguilds, 3);
    assert_string_equal(c.guilds[0], "g1");
    assert_string_equal(c.guilds[2], "g3");
    assert_true(gw_jwt_claims_allow_guild(&c, "g2"));
    assert_false(gw_jwt_claims_allow_guild(&c, "g4"));
    assert_false(gw_jwt_claims_allow_guild(&c, "g"));
    gw_jwt_claims_free(&c);
    assert_null(c.guilds);
    assert_int_equal(c.nguilds, 0);

    /* An empty list allows no guild; it must not read as "no claim". */
    make(&t, HS256, "{\"sub\":\"u\",\"guilds\":[]}");
    assert_int_equal(verify_raw(&v, t.s, t.len, NOW, &c), 0);
    assert_non_null(c.guilds);
    assert_int_equal(c.nguilds, 0);
    assert_false(gw_jwt_claims_allow_guild(&c, "g1"));
    gw_jwt_claims_free(&c);
}

static void test_guilds_not_array(void **state)
{
    (void)state;
    assert_int_equal(payload_result("{\"sub\":\"u\",\"guilds\":\"g1\"}"),
                     GW_EPARSE);
    assert_int_equal(payload_result("{\"sub\":\"u\",\"guilds\":{\"g\":1}}"),
                     GW_EPARSE);
    assert_int_equal(payload_result("{\"sub\":\"u\",\"guilds\":null}"),
                     GW_EPARSE);
    assert_int_equal(payload_result("{\"sub\":\"u\",\"guilds\":[\"g1\",2]}"),
                     GW_EPARSE);
}

static void test_expired(void **state)
{
    (void)state;
    assert_int_equal(payload_result("{\"sub\":\"u\",\"exp\":1699999999}"),
                     GW_EEXPIRED);
    assert_int_equal(payload_result("{\"sub\":\"u\",\"exp\":0}"), GW_EEXPIRED);
    /* Valid through the second named by exp. */
    assert_int_equal(payload_result("{\"sub\":\"u\",\"exp\":1700000000}"), 0);
}

static void test_not_yet_valid(void **state)
{
    (void)state;
    assert_int_equal(payload_result("{\"sub\":\"u\",\"nbf\":1700000001}"),
                     GW_ENOTYET);
    assert_int_equal(payload_result("{\"sub\":\"u\",\"nbf\":1700000000}"), 0);
}

static void test_leeway(void **state)
{
    gw_jwt_verifier_t v = verifier();
    token_t t;

    (void)state;
    v.leeway_s = 30;
    make(&t, HS256, "{\"sub\":\"u\",\"exp\":1699999970}");
    assert_int_equal(verify_with(&v, &t), 0);
    make(&t, HS256, "{\"sub\":\"u\",\"exp\":1699999969}");
    assert_int_equal(verify_with(&v, &t), GW_EEXPIRED);
    make(&t, HS256, "{\"sub\":\"u\",\"nbf\":1700000030}");
    assert_int_equal(verify_with(&v, &t), 0);
    make(&t, HS256, "{\"sub\":\"u\",\"nbf\":1700000031}");
    assert_int_equal(verify_with(&v, &t), GW_ENOTYET);
}

/* Fractions round to the strict side; out-of-range values saturate. */
static void test_numeric_date_edges(void **state)
{
    gw_jwt_verifier_t v = verifier();
    gw_jwt_claims_t c;
    token_t t;

    (void)state;
    /* Both parse to +-2^63 as doubles, one past the int64 range. */
    make(&t, HS256,
         "{\"sub\":\"u\",\"exp\":9223372036854775807,"
         "\"nbf\":-9223372036854775809}");
    assert_int_equal(verify_raw(&v, t.s, t.len, NOW, &c), 0);
    assert_true(c.exp == INT64_MAX);
    assert_true(c.nbf == INT64_MIN);
    gw_jwt_claims_free(&c);
    assert_int_equal(payload_result("{\"sub\":\"u\",\"exp\":1699999999.5}"),
                     GW_EEXPIRED);
    assert_int_equal(payload_result("{\"sub\":\"u\",\"nbf\":1700000000.5}"),
                     GW_ENOTYET);
    assert_int_equal(payload_result("{\"sub\":\"u\",\"exp\":1e400}"), 0);
    assert_int_equal(payload_result("{\"sub\":\"u\",\"exp\":-1e400}"),
                     GW_EEXPIRED);
    assert_int_equal(payload_result("{\"sub\":\"u\",\"nbf\":1e19}"),
                     GW_ENOTYET);
    assert_int_equal(payload_result("{\"sub\":\"u\",\"nbf\":-1e19}"), 0);
}

static void test_exp_nbf_not_numbers(void **state)
{
    (void)state;
    assert_int_equal(payload_result("{\"sub\":\"u\",\"exp\":\"1800000000\"}"),
                     GW_EPARSE);
    assert_int_equal(payload_result("{\"sub\":\"u\",\"exp\":null}"), GW_EPARSE);
    assert_int_equal(payload_result("{\"sub\":\"u\",\"exp\":[1800000000]}"),
                     GW_EPARSE);
    assert_int_equal(payload_result("{\"sub\":\"u\",\"nbf\":true}"), GW_EPARSE);
}

/* Every single-bit change of the MAC is caught. */
static void test_wrong_signature_bit(void **state)
{
    token_t t;

    (void)state;
    for (int bit = 0; bit < 256; bit++) {
        t.len = 0;
        tok_json(&t, HS256);
        tok_raw(&t, ".");
        tok_json(&t, "{\"sub\":\"u\"}");
        tok_sign(&t, KEY, MBEDTLS_MD_SHA256, bit);
        assert_int_equal(verify(&t), GW_EAUTH);
    }
}

static void test_wrong_key(void **state)
{
    token_t t;

    (void)state;
    t.len = 0;
    tok_json(&t, HS256);
    tok_raw(&t, ".");
    tok_json(&t, "{\"sub\":\"u\"}");
    tok_sign(&t, "unit-test-secreT", MBEDTLS_MD_SHA256, -1);
    assert_int_equal(verify(&t), GW_EAUTH);
}

/* A payload changed after signing fails, even if it is better JSON. */
/* Keys shorter than, as long as and longer than the digest's block (a
 * longer one is hashed first, RFC 2104), checked against mbedtls's
 * one-shot HMAC, for each algorithm. */
static void test_key_lengths(void **state)
{
    static const struct {
        const char *alg;
        mbedtls_md_type_t md;
    } algs[] = {{"HS256", MBEDTLS_MD_SHA256},
                {"HS384", MBEDTLS_MD_SHA384},
                {"HS512", MBEDTLS_MD_SHA512}};
    static const size_t lens[] = {1, 63, 64, 65, 127, 128, 129, 300};
    char key[301], hdr[64];
    token_t t;
    (void)state;

    for (size_t a = 0; a < sizeof(algs) / sizeof(algs[0]); a++) {
        for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
            gw_jwt_verifier_t v = verifier();
            for (size_t i = 0; i < lens[k]; i++)
                key[i] = (char)('a' + (i * 7 + k) % 26);
            key[lens[k]] = '\0';
            v.algs = gw_jwt_alg_bit(algs[a].alg);
            v.secret = (const uint8_t *)key;
            v.secret_len = lens[k];
            snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\"}", algs[a].alg);
            t.len = 0;
            tok_json(&t, hdr);
            tok_raw(&t, ".");
            tok_json(&t, "{\"sub\":\"alice\",\"exp\":1800000000}");
            tok_sign(&t, key, algs[a].md, -1);
            assert_int_equal(verify_with(&v, &t), 0);
            /* The same key one byte shorter signs differently. */
            v.secret_len = lens[k] - 1;
            assert_int_equal(verify_with(&v, &t), GW_EAUTH);
        }
    }
}

static void test_tampered_payload(void **state)
{
    token_t good, bad;
    const char *dot2;

    (void)state;
    make(&good, HS256, "{\"sub\":\"user-1\"}");
    dot2 = strrchr(good.s, '.');
    bad.len = 0;
    tok_json(&bad, HS256);
    tok_raw(&bad, ".");
    tok_json(&bad, "{\"sub\":\"admin\"}");
    tok_raw(&bad, dot2);
    assert_int_equal(verify(&bad), GW_EAUTH);
}

static void test_signature_shape(void **state)
{
    token_t t;

    (void)state;
    /* Empty signature. */
    make(&t, HS256, "{\"sub\":\"u\"}");
    t.len = (size_t)(strrchr(t.s, '.') - t.s) + 1;
    t.s[t.len] = '\0';
    assert_int_equal(verify(&t), GW_EAUTH);
    /* The good MAC one byte short, and with one byte more. */
    for (size_t n = 31; n <= 33; n += 2) {
        t.len = 0;
        tok_json(&t, HS256);
        tok_raw(&t, ".");
        tok_json(&t, "{\"sub\":\"u\"}");
        tok_sign_n(&t, KEY, MBEDTLS_MD_SHA256, -1, n);
        assert_int_equal(verify(&t), GW_EAUTH);
    }
    /* Far longer than any MAC. */
    make(&t, HS256, "{\"sub\":\"u\"}");
    for (int i = 0; i < 40; i++)
        tok_raw(&t, "AAAA");
    assert_int_equal(verify(&t), GW_EAUTH);
    /* A valid HS512 MAC does not pass for HS256. */
    t.len = 0;
    tok_json(&t, HS256);
    tok_raw(&t, ".");
    tok_json(&t, "{\"sub\":\"u\"}");
    tok_sign(&t, KEY, MBEDTLS_MD_SHA512, -1);
    assert_int_equal(verify(&t), GW_EAUTH);
}

static void test_alg_none(void **state)
{
    token_t t;

    (void)state;
    t.len = 0;
    tok_json(&t, "{\"alg\":\"none\",\"typ\":\"JWT\"}");
    tok_raw(&t, ".");
    tok_json(&t, "{\"sub\":\"u\"}");
    tok_raw(&t, ".");
    assert_int_equal(verify(&t), GW_EALG);
    /* Still refused with a correct HS256 MAC. */
    make(&t, "{\"alg\":\"none\"}", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&t), GW_EALG);
    make(&t, "{\"alg\":\"None\"}", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&t), GW_EALG);
}

static void test_alg_other(void **state)
{
    gw_jwt_verifier_t v = verifier();
    token_t t;

    (void)state;
    t.len = 0;
    tok_json(&t, "{\"alg\":\"HS512\",\"typ\":\"JWT\"}");
    tok_raw(&t, ".");
    tok_json(&t, "{\"sub\":\"u\"}");
    tok_sign(&t, KEY, MBEDTLS_MD_SHA512, -1);
    assert_int_equal(verify(&t), GW_EALG);
    /* The same token passes a verifier configured for HS512. */
    v.algs = GW_JWT_HS512;
    assert_int_equal(verify_with(&v, &t), 0);

    make(&t, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&t), GW_EALG);
    make(&t, "{\"alg\":\"hs256\"}", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&t), GW_EALG);
    make(&t, "{\"alg\":\"HS256 \"}", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&t), GW_EALG);
}

static void test_header_without_alg(void **state)
{
    token_t t;

    (void)state;
    make(&t, "{\"typ\":\"JWT\"}", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&t), GW_EALG);
    make(&t, "{}", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&t), GW_EALG);
    make(&t, "{\"alg\":256}", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&t), GW_EALG);
    make(&t, "{\"alg\":[\"HS256\"]}", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&t), GW_EALG);
    /* Member names are case-sensitive. */
    make(&t, "{\"ALG\":\"HS256\"}", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&t), GW_EALG);
}

/* A verifier that accepts an algorithm it has no key for, or none. */
static void test_verifier_misconfigured(void **state)
{
    gw_jwt_verifier_t v = verifier();
    token_t t;

    (void)state;
    make(&t, "{\"alg\":\"RS256\"}", "{\"sub\":\"u\"}");
    v.algs = GW_JWT_RS256;
    assert_int_equal(verify_with(&v, &t), GW_ENOKEY);
    v.algs = 0;
    assert_int_equal(verify_with(&v, &t), GW_EALG);

    v = verifier();
    v.secret_len = 0;
    t.len = 0;
    tok_json(&t, HS256);
    tok_raw(&t, ".");
    tok_json(&t, "{\"sub\":\"u\"}");
    tok_sign(&t, "", MBEDTLS_MD_SHA256, -1);
    assert_int_equal(verify_with(&v, &t), GW_EAUTH);
}

static void test_header_typ_crit(void **state)
{
    token_t t;

    (void)state;
    make(&t, "{\"alg\":\"HS256\",\"typ\":\"jwt\"}", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&t), 0);
    make(&t, "{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&t), GW_EPARSE);
    make(&t, "{\"alg\":\"HS256\",\"typ\":1}", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&t), GW_EPARSE);
    make(&t, "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&t), GW_EPARSE);
}

static void test_header_not_object(void **state)
{
    token_t t;

    (void)state;
    make(&t, "[\"HS256\"]", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&t), GW_EPARSE);
    make(&t, "{\"alg\":\"HS256\"", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&t), GW_EPARSE);
    make(&t, "\"HS256\"", "{\"sub\":\"u\"}");
    assert_int_equal(verify(&t), GW_EPARSE);
}

/* Header (16 bytes, so 22 characters with 4 unused bits at the end)
 * spelled by hand, then ".payload.MAC" appended and signed. */
static int with_header_b64(const char *hdr_b64)
{
    token_t t = {.len = 0};

    tok_raw(&t, hdr_b64);
    tok_raw(&t, ".");
    tok_json(&t, "{\"sub\":\"u\"}");
    tok_sign(&t, KEY, MBEDTLS_MD_SHA256, -1);
    return verify(&t);
}

static void test_malformed_base64(void **state)
{
    token_t t = {.len = 0};
    char b64[64];

    (void)state;
    tok_json(&t, "{\"alg\":\"HS256\"} ");
    assert_int_equal(t.len, 22);
    strcpy(b64, t.s);
    assert_int_equal(with_header_b64(b64), 0);

    b64[5] = '+';
    assert_int_equal(with_header_b64(b64), GW_EPARSE);
    b64[5] = '/';
    assert_int_equal(with_header_b64(b64), GW_EPARSE);
    b64[5] = ' ';
    assert_int_equal(with_header_b64(b64), GW_EPARSE);
    b64[5] = t.s[5];
    /* Padding, which base64url in JWS leaves out. */
    strcat(b64, "==");
    assert_int_equal(with_header_b64(b64), GW_EPARSE);
    /* A length of 1 mod 4 can encode nothing, even when the lone last
     * character is 'A', all zero bits. "og" adds "\n " to the JSON. */
    strcpy(b64, t.s);
    strcat(b64, "og");
    assert_int_equal(with_header_b64(b64), 0);
    strcat(b64, "A");
    assert_int_equal(with_header_b64(b64), GW_EPARSE);
    /* Nonzero unused bits: another spelling of the same bytes. */
    strcpy(b64, t.s);
    b64[21] = B64URL[(strchr(B64URL, b64[21]) - B64URL) | 1];
    assert_int_equal(with_header_b64(b64), GW_EPARSE);
}

static void test_malformed_base64_payload_signature(void **state)
{
    token_t t;
    size_t start;

    (void)state;
    /* Padded payload, correctly signed: the signature is checked, then the
     * payload fails to decode. */
    t.len = 0;
    tok_json(&t, HS256);
    tok_raw(&t, ".");
    start = t.len;
    tok_json(&t, "{\"sub\":\"abc\"}");
    assert_int_equal((t.len - start) % 4, 2);
    tok_raw(&t, "==");
    tok_sign(&t, KEY, MBEDTLS_MD_SHA256, -1);
    assert_int_equal(verify(&t), GW_EPARSE);
    /* Padded or standard-alphabet signature. */
    make(&t, HS256, "{\"sub\":\"u\"}");
    tok_raw(&t, "=");
    assert_int_equal(verify(&t), GW_EPARSE);
    make(&t, HS256, "{\"sub\":\"u\"}");
    t.s[t.len - 3] = '+';
    assert_int_equal(verify(&t), GW_EPARSE);
}

static int raw_result(const char *s)
{
    token_t t = {.len = 0};

    tok_raw(&t, s);
    return verify(&t);
}

static void test_part_count(void **state)
{
    token_t t;
    char buf[sizeof(t.s)];

    (void)state;
    make(&t, HS256, "{\"sub\":\"u\"}");
    strcpy(buf, t.s);
    /* Two parts: the signature dropped with its dot. */
    *strrchr(buf, '.') = '\0';
    assert_int_equal(raw_result(buf), GW_EPARSE);
    /* Four parts: an extra segment, before or after the signature. */
    strcpy(buf, t.s);
    strcat(buf, ".AAAA");
    assert_int_equal(raw_result(buf), GW_EPARSE);
    strcpy(buf, t.s);
    strcat(buf, ".");
    assert_int_equal(raw_result(buf), GW_EPARSE);
    assert_int_equal(raw_result(""), GW_EPARSE);
    assert_int_equal(raw_result("."), GW_EPARSE);
    assert_int_equal(raw_result(".."), GW_EPARSE);
    assert_int_equal(raw_result("..."), GW_EPARSE);
    assert_int_equal(raw_result("eyJhbGciOiJIUzI1NiJ9"), GW_EPARSE);
    {
        gw_jwt_verifier_t v = verifier();
        gw_jwt_claims_t c;

        assert_int_equal(verify_raw(&v, NULL, 0, NOW, &c), GW_EPARSE);
    }
}

static void test_empty_parts(void **state)
{
    token_t t;

    (void)state;
    /* Empty header, validly signed. */
    t.len = 0;
    tok_raw(&t, ".");
    tok_json(&t, "{\"sub\":\"u\"}");
    tok_sign(&t, KEY, MBEDTLS_MD_SHA256, -1);
    assert_int_equal(verify(&t), GW_EPARSE);
    /* Empty payload, validly signed. */
    t.len = 0;
    tok_json(&t, HS256);
    tok_raw(&t, ".");
    tok_sign(&t, KEY, MBEDTLS_MD_SHA256, -1);
    assert_int_equal(verify(&t), GW_EPARSE);
}

static void test_payload_not_json(void **state)
{
    token_t t;

    (void)state;
    assert_int_equal(payload_result("sub=u"), GW_EPARSE);
    assert_int_equal(payload_result("{\"sub\":\"u\""), GW_EPARSE);
    assert_int_equal(payload_result("{\"sub\":\"u\"}x"), GW_EPARSE);
    assert_int_equal(payload_result("{\"sub\":\"u\"}{}"), GW_EPARSE);
    assert_int_equal(payload_result(" {\"sub\":\"u\"}\n"), 0);
    /* A NUL, raw or escaped: cJSON takes either inside a string and cuts
     * the value there, so "user-1<NUL>x" would read as "user-1". */
    t.len = 0;
    tok_json(&t, HS256);
    tok_raw(&t, ".");
    tok_b64(&t, "{\"sub\":\"user-1\0x\"}", 18);
    tok_sign(&t, KEY, MBEDTLS_MD_SHA256, -1);
    assert_int_equal(verify(&t), GW_EPARSE);
    assert_int_equal(payload_result("{\"sub\":\"user-1\\u0000x\"}"), GW_EPARSE);
    assert_int_equal(payload_result("{\"sub\":\"user-1\\u0001x\"}"), 0);
    /* After the object, a NUL would hide trailing garbage. */
    t.len = 0;
    tok_json(&t, HS256);
    tok_raw(&t, ".");
    tok_b64(&t, "{\"sub\":\"u\"}\0garbage", 19);
    tok_sign(&t, KEY, MBEDTLS_MD_SHA256, -1);
    assert_int_equal(verify(&t), GW_EPARSE);
    /* JSON text must be UTF-8. */
    assert_int_equal(payload_result("{\"sub\":\"\xc0\xaf\"}"), GW_EPARSE);
    assert_int_equal(payload_result("{\"sub\":\"\xff\"}"), GW_EPARSE);
    assert_int_equal(payload_result("{\"sub\":\"\xc3\xa9\"}"), 0);
    /* What cJSON alone would take: bad hex, which it reads as U+0000 and
     * so as "user-1"; a raw control character; a leading zero. */
    assert_int_equal(payload_result("{\"sub\":\"user-1\\uzzzzx\"}"), GW_EPARSE);
    assert_int_equal(payload_result("{\"sub\":\"user\t1\"}"), GW_EPARSE);
    assert_int_equal(payload_result("{\"sub\":\"u\",\"exp\":01}"), GW_EPARSE);
}

static void test_payload_not_object(void **state)
{
    (void)state;
    assert_int_equal(payload_result("[{\"sub\":\"u\"}]"), GW_EPARSE);
    assert_int_equal(payload_result("\"u\""), GW_EPARSE);
    assert_int_equal(payload_result("42"), GW_EPARSE);
    assert_int_equal(payload_result("null"), GW_EPARSE);
}

static void test_sub(void **state)
{
    (void)state;
    assert_int_equal(payload_result("{\"exp\":1800000000}"), GW_EAUTH);
    assert_int_equal(payload_result("{\"sub\":\"\"}"), GW_EAUTH);
    assert_int_equal(payload_result("{\"sub\":42}"), GW_EAUTH);
    assert_int_equal(payload_result("{\"sub\":null}"), GW_EAUTH);
    assert_int_equal(payload_result("{\"sub\":[\"u\"]}"), GW_EAUTH);
    assert_int_equal(payload_result("{\"SUB\":\"u\"}"), GW_EAUTH);
}

static void test_aud(void **state)
{
    (void)state;
#define AUD_ISS(aud) "{\"sub\":\"u\",\"iss\":\"https://auth.example\"," aud "}"
    assert_int_equal(payload_result_aud_iss(AUD_ISS("\"aud\":\"gatewayd\"")),
                     0);
    assert_int_equal(payload_result_aud_iss(AUD_ISS("\"aud\":\"gateway\"")),
                     GW_EAUTH);
    assert_int_equal(payload_result_aud_iss(AUD_ISS("\"aud\":\"Gatewayd\"")),
                     GW_EAUTH);
    assert_int_equal(
        payload_result_aud_iss(AUD_ISS("\"aud\":[\"api\",\"gatewayd\"]")), 0);
    assert_int_equal(
        payload_result_aud_iss(AUD_ISS("\"aud\":[1,\"gatewayd\"]")), 0);
    assert_int_equal(
        payload_result_aud_iss(AUD_ISS("\"aud\":[\"api\",\"web\"]")), GW_EAUTH);
    assert_int_equal(payload_result_aud_iss(AUD_ISS("\"aud\":[]")), GW_EAUTH);
    assert_int_equal(payload_result_aud_iss(AUD_ISS("\"aud\":1")), GW_EAUTH);
    assert_int_equal(payload_result_aud_iss(AUD_ISS("\"x\":0")), GW_EAUTH);
    /* Not configured: aud is not looked at. */
    assert_int_equal(payload_result("{\"sub\":\"u\",\"aud\":\"other\"}"), 0);
    assert_int_equal(payload_result("{\"sub\":\"u\",\"aud\":7}"), 0);
#undef AUD_ISS
}

static void test_iss(void **state)
{
    gw_jwt_verifier_t v = verifier();
    token_t t;

    (void)state;
#define ISS(iss) "{\"sub\":\"u\",\"aud\":\"gatewayd\"," iss "}"
    assert_int_equal(
        payload_result_aud_iss(ISS("\"iss\":\"https://auth.example\"")), 0);
    assert_int_equal(
        payload_result_aud_iss(ISS("\"iss\":\"https://auth.example/\"")),
        GW_EAUTH);
    assert_int_equal(
        payload_result_aud_iss(ISS("\"iss\":[\"https://auth.example\"]")),
        GW_EAUTH);
    assert_int_equal(payload_result_aud_iss(ISS("\"x\":0")), GW_EAUTH);
#undef ISS
    /* An empty string means "not checked", like NULL. */
    v.issuer = "";
    v.audience = "";
    make(&t, HS256, "{\"sub\":\"u\",\"iss\":\"x\",\"aud\":\"y\"}");
    assert_int_equal(verify_with(&v, &t), 0);
}

/* The size cap holds at exactly 8 KiB: the largest token passes, one more
 * byte is refused before anything is parsed. */
static void test_too_long(void **state)
{
    static char payload[MAX_TOKEN];
    token_t t;
    size_t fill;

    (void)state;
    for (fill = 5000;; fill++) {
        snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"pad\":\"%0*d\"}",
                 (int)fill, 0);
        make(&t, HS256, payload);
        if (t.len >= MAX_TOKEN)
            break;
    }
    assert_int_equal(t.len, MAX_TOKEN);
    assert_int_equal(verify(&t), 0);
    tok_raw(&t, "A");
    assert_int_equal(t.len, MAX_TOKEN + 1);
    assert_int_equal(verify(&t), GW_ETOOBIG);
    {
        gw_jwt_verifier_t v = verifier();
        gw_jwt_claims_t c;

        assert_int_equal(verify_raw(&v, t.s, SIZE_MAX, NOW, &c), GW_ETOOBIG);
    }
}

/* Signed with Python 3 (hmac, hashlib, base64) with this key, claims
 * {"sub":"user-42","iat":1700000000,"nbf":1700000000,"exp":1700003600,
 * "aud":["gatewayd","other"],"iss":"auth.example","guilds":["g-100","g-200"]}.
 */
static void test_known_answer(void **state)
{
    static const char key[] = "python-independent-signer-key";
    static const char tok[] =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiJ1c2VyLTQyIiwiaWF0IjoxNzAwMDAwMDAwLCJuYmYiOjE3MDAwMDAwMDAs"
        "ImV4cCI6MTcwMDAwMzYwMCwiYXVkIjpbImdhdGV3YXlkIiwib3RoZXIiXSwiaXNzIjoi"
        "YXV0aC5leGFtcGxlIiwiZ3VpbGRzIjpbImctMTAwIiwiZy0yMDAiXX0."
        "56qkByaAwFvVdsYt9kvWqi8E22DmbZ21bgKoIC6Lto0";
    gw_jwt_verifier_t v = {
        .algs = GW_JWT_HS256,
        .secret = (const uint8_t *)key,
        .secret_len = sizeof(key) - 1,
        .audience = "gatewayd",
        .issuer = "auth.example",
    };
    gw_jwt_claims_t c;

    (void)state;
    assert_int_equal(verify_raw(&v, tok, sizeof(tok) - 1, 1700001000, &c), 0);
    assert_string_equal(c.sub, "user-42");
    assert_int_equal(c.exp, 1700003600);
    assert_int_equal(c.nbf, 1700000000);
    assert_int_equal(c.nguilds, 2);
    assert_string_equal(c.guilds[0], "g-100");
    assert_string_equal(c.guilds[1], "g-200");
    gw_jwt_claims_free(&c);
    /* And it expires when Python said it would. */
    assert_int_equal(verify_raw(&v, tok, sizeof(tok) - 1, 1700003601, &c),
                     GW_EEXPIRED);
    /* The key matters. */
    v.secret_len--;
    assert_int_equal(verify_raw(&v, tok, sizeof(tok) - 1, 1700001000, &c),
                     GW_EAUTH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_guilds),
        cmocka_unit_test(test_guilds_not_array),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_not_yet_valid),
        cmocka_unit_test(test_leeway),
        cmocka_unit_test(test_numeric_date_edges),
        cmocka_unit_test(test_exp_nbf_not_numbers),
        cmocka_unit_test(test_wrong_signature_bit),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_key_lengths),
        cmocka_unit_test(test_tampered_payload),
        cmocka_unit_test(test_signature_shape),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_alg_other),
        cmocka_unit_test(test_header_without_alg),
        cmocka_unit_test(test_verifier_misconfigured),
        cmocka_unit_test(test_header_typ_crit),
        cmocka_unit_test(test_header_not_object),
        cmocka_unit_test(test_malformed_base64),
        cmocka_unit_test(test_malformed_base64_payload_signature),
        cmocka_unit_test(test_part_count),
        cmocka_unit_test(test_empty_parts),
        cmocka_unit_test(test_payload_not_json),
        cmocka_unit_test(test_payload_not_object),
        cmocka_unit_test(test_sub),
        cmocka_unit_test(test_aud),
        cmocka_unit_test(test_iss),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_known_answer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
