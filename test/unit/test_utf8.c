/*
 * gw_utf8_valid: boundaries of every sequence length, each class of
 * ill-formed input, the 8-byte ASCII fast path at every alignment, and a
 * cross-check against a deliberately different reference decoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gw/utf8.h"

#define VALID(lit) gw_utf8_valid((const uint8_t *)(lit), sizeof(lit) - 1)

/*
 * Reference: decode the code point first, then judge it. gw_utf8_valid
 * instead restricts the second byte by lead byte; the two agree only if
 * both are right.
 */
static int ref_valid(const uint8_t *s, size_t n)
{
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    size_t i = 0, len;
    uint32_t cp;

    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        if ((s[i] & 0xE0) == 0xC0) {
            len = 2, cp = s[i] & 0x1F;
        } else if ((s[i] & 0xF0) == 0xE0) {
            len = 3, cp = s[i] & 0x0F;
        } else if ((s[i] & 0xF8) == 0xF0) {
            len = 4, cp = s[i] & 0x07;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

/* Encodes a scalar value; returns its length. */
static size_t encode(uint32_t cp, uint8_t *out)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

static void test_empty_and_ascii(void **state)
{
    (void)state;
    assert_true(gw_utf8_valid(NULL, 0));
    assert_true(VALID(""));
    assert_true(VALID("a"));
    assert_true(VALID("{\"event\":\"heartbeat\",\"data\":{}}"));
    assert_true(VALID("\x00\x01\x7f"));
}

static void test_boundaries_valid(void **state)
{
    (void)state;
    assert_true(VALID("\x7f"));             /* U+007F */
    assert_true(VALID("\xc2\x80"));         /* U+0080 */
    assert_true(VALID("\xdf\xbf"));         /* U+07FF */
    assert_true(VALID("\xe0\xa0\x80"));     /* U+0800 */
    assert_true(VALID("\xed\x9f\xbf"));     /* U+D7FF */
    assert_true(VALID("\xee\x80\x80"));     /* U+E000 */
    assert_true(VALID("\xef\xbf\xbf"));     /* U+FFFF */
    assert_true(VALID("\xf0\x90\x80\x80")); /* U+10000 */
    assert_true(VALID("\xf4\x8f\xbf\xbf")); /* U+10FFFF */
    assert_true(VALID("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80!"));
}

/* Every scalar value, encoded by the test's own encoder, is accepted. */
static void test_all_scalar_values(void **state)
{
    uint8_t b[4];

    (void)state;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp == 0xD800)
            cp = 0xE000;
        if (!gw_utf8_valid(b, encode(cp, b)))
            fail_msg("U+%04X rejected", (unsigned)cp);
    }
}

static void test_overlong(void **state)
{
    (void)state;
    assert_false(VALID("\xc0\x80"));
    assert_false(VALID("\xc0\xaf"));
    assert_false(VALID("\xc1\xbf"));
    assert_false(VALID("\xe0\x80\x80"));
    assert_false(VALID("\xe0\x9f\xbf"));
    assert_false(VALID("\xf0\x80\x80\x80"));
    assert_false(VALID("\xf0\x8f\xbf\xbf"));
}

static void test_surrogates(void **state)
{
    (void)state;
    assert_false(VALID("\xed\xa0\x80")); /* U+D800 */
    assert_false(VALID("\xed\xaf\xbf")); /* U+DBFF */
    assert_false(VALID("\xed\xb0\x80")); /* U+DC00 */
    assert_false(VALID("\xed\xbf\xbf")); /* U+DFFF */
    /* CESU-8 style pair for U+10000. */
    assert_false(VALID("\xed\xa0\x80\xed\xb0\x80"));
}

static void test_above_max(void **state)
{
    (void)state;
    assert_false(VALID("\xf4\x90\x80\x80")); /* U+110000 */
    assert_false(VALID("\xf4\xbf\xbf\xbf"));
    for (unsigned c = 0xF5; c <= 0xFF; c++) {
        uint8_t b[4] = {(uint8_t)c, 0x80, 0x80, 0x80};
        assert_false(gw_utf8_valid(b, 1));
        assert_false(gw_utf8_valid(b, 4));
    }
}

static void test_stray_continuation(void **state)
{
    (void)state;
    for (unsigned c = 0x80; c <= 0xBF; c++) {
        uint8_t b[3] = {'a', (uint8_t)c, 'a'};
        assert_false(gw_utf8_valid(b, 3));
        assert_false(gw_utf8_valid(b + 1, 1));
    }
    assert_false(VALID("\xc3\xa9\xa9"));         /* one too many */
    assert_false(VALID("\xf0\x9f\x98\x80\x80")); /* after a 4-byte */
    assert_false(VALID("\xc3\x28"));             /* ASCII, not cont. */
    assert_false(VALID("\xe2\x82\xc3\xa9"));     /* lead, not cont. */
    assert_false(VALID("\xf0\x9f\x98\xf0\x9f\x98\x80"));
}

/* Every proper prefix of a multibyte character is refused, whether it ends
 * the buffer or is followed by ASCII. */
static void test_truncated(void **state)
{
    static const char *const chars[] = {
        "\xc2\x80",     "\xdf\xbf",         "\xe0\xa0\x80",     "\xed\x9f\xbf",
        "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf",
    };
    uint8_t b[32];

    (void)state;
    for (size_t i = 0; i < sizeof(chars) / sizeof(chars[0]); i++) {
        size_t n = strlen(chars[i]);
        for (size_t cut = 1; cut < n; cut++) {
            memcpy(b, "0123456789abcdef", 16);
            memcpy(b + 16, chars[i], cut);
            assert_false(gw_utf8_valid(b + 16, cut));
            assert_false(gw_utf8_valid(b, 16 + cut));
            memcpy(b + 16 + cut, "xyz", 3);
            assert_false(gw_utf8_valid(b, 16 + cut + 3));
        }
        memcpy(b + 16, chars[i], n);
        assert_true(gw_utf8_valid(b, 16 + n));
    }
}

/*
 * One bad byte at every offset (0..16 and on to 39) of ASCII runs of every
 * length up to 40: it lands in the 16-byte loop, the 8-byte loop or the
 * byte-wise tail of the ASCII skip, so no part of the fast path can miss it.
 */
static void test_fast_path_offsets(void **state)
{
    static const uint8_t bad[] = {0x80, 0xBF, 0xC0, 0xC1, 0xF5, 0xFF, 0xE0};
    uint8_t b[48];

    (void)state;
    for (size_t len = 1; len <= 40; len++) {
        for (size_t off = 0; off < len; off++) {
            for (size_t k = 0; k < sizeof(bad); k++) {
                memset(b, 'a', sizeof(b));
                b[off] = bad[k];
                assert_false(gw_utf8_valid(b, len));
            }
            /* A valid 2-byte character at the same place is accepted. */
            if (off + 2 <= len) {
                memset(b, 'a', sizeof(b));
                memcpy(b + off, "\xc3\xa9", 2);
                assert_true(gw_utf8_valid(b, len));
            }
        }
        memset(b, 'a', sizeof(b));
        assert_true(gw_utf8_valid(b, len));
    }
}

/* All two- and three-byte strings, and four-byte ones with every lead and
 * second byte and the edge values in the last two positions. */
static void test_exhaustive_short(void **state)
{
    static const uint8_t edge[] = {0x00, 0x7F, 0x80, 0x8F, 0x90,
                                   0xBF, 0xC0, 0xF4, 0xFF};
    uint8_t b[4];
    size_t accepted = 0;

    (void)state;
    for (uint32_t x = 0; x < 1u << 24; x++) {
        b[0] = (uint8_t)(x >> 16), b[1] = (uint8_t)(x >> 8), b[2] = (uint8_t)x;
        if (gw_utf8_valid(b, 3) != ref_valid(b, 3))
            fail_msg("mismatch on %02x %02x %02x", b[0], b[1], b[2]);
        if (x < 1u << 16 && gw_utf8_valid(b + 1, 2) != ref_valid(b + 1, 2))
            fail_msg("mismatch on %02x %02x", b[1], b[2]);
        accepted += (size_t)gw_utf8_valid(b, 3);
    }
    /* Sanity: both must accept something, or the loop proves nothing. */
    assert_true(accepted > 1000000);
    for (unsigned lead = 0xE0; lead <= 0xFF; lead++)
        for (unsigned c1 = 0; c1 <= 0xFF; c1++)
            for (size_t i = 0; i < sizeof(edge); i++)
                for (size_t j = 0; j < sizeof(edge); j++) {
                    b[0] = (uint8_t)lead, b[1] = (uint8_t)c1;
                    b[2] = edge[i], b[3] = edge[j];
                    if (gw_utf8_valid(b, 4) != ref_valid(b, 4))
                        fail_msg("mismatch on %02x %02x %02x %02x", b[0], b[1],
                                 b[2], b[3]);
                }
}

/* xorshift64*: a fixed seed makes any failure reproducible. */
static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint32_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Du) >> 32);
}

/* A random scalar value, biased toward ASCII and the edges of each range. */
static uint32_t random_scalar(void)
{
    static const uint32_t edges[] = {0x7F,   0x80,   0x7FF,   0x800,  0xD7FF,
                                     0xE000, 0xFFFF, 0x10000, 0xFFFD, 0x10FFFF};
    uint32_t cp;

    switch (rng() % 4) {
    case 0: return rng() % 0x80;
    case 1: return edges[rng() % (sizeof(edges) / sizeof(edges[0]))];
    default:
        cp = rng() % 0x110000;
        return cp >= 0xD800 && cp <= 0xDFFF ? cp - 0x800 : cp;
    }
}

/* Fills b with valid text of about `want` bytes; returns its length. */
static size_t random_text(uint8_t *b, size_t want)
{
    size_t n = 0;

    while (n + 4 <= want)
        n += encode(random_scalar(), b + n);
    return n;
}

/* Damages b in place: a random byte, a flipped bit, a cut or nothing. */
static size_t mutate(uint8_t *b, size_t n)
{
    switch (n == 0 ? 3 : rng() % 4) {
    case 0: b[rng() % n] = (uint8_t)rng(); return n;
    case 1: b[rng() % n] ^= (uint8_t)(1u << rng() % 8); return n;
    case 2: return rng() % n;
    default: return n;
    }
}

static void test_random_cross_check(void **state)
{
    uint8_t b[80];
    size_t n, valid = 0, rounds = 400000;

    (void)state;
    for (size_t r = 0; r < rounds; r++) {
        if (r % 8 == 0) {
            n = rng() % sizeof(b);
            for (size_t i = 0; i < n; i++)
                b[i] = (uint8_t)rng();
        } else {
            n = random_text(b, rng() % sizeof(b));
            for (uint32_t k = rng() % 3; k > 0; k--)
                n = mutate(b, n);
        }
        if (gw_utf8_valid(b, n) != ref_valid(b, n))
            fail_msg("mismatch in round %zu (len %zu)", r, n);
        valid += (size_t)ref_valid(b, n);
    }
    /* Both outcomes must be common for the comparison to mean anything. */
    assert_true(valid > rounds / 5 && valid < rounds * 4 / 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_ascii),
        cmocka_unit_test(test_boundaries_valid),
        cmocka_unit_test(test_all_scalar_values),
        cmocka_unit_test(test_overlong),
        cmocka_unit_test(test_surrogates),
        cmocka_unit_test(test_above_max),
        cmocka_unit_test(test_stray_continuation),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_fast_path_offsets),
        cmocka_unit_test(test_exhaustive_short),
        cmocka_unit_test(test_random_cross_check),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
