/* gwbench's client-side framing: masked frames out (through wslay), server
 * frames in however the reads split or coalesce them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "wsframe.h"

#include <stdlib.h>
#include <string.h>

#define MAX_MSG (1u << 20)

/* Writes an unmasked server frame of plen bytes of fill; returns its
 * length. */
static size_t server_frame(uint8_t *out, int fin, int opcode, size_t plen,
                           uint8_t fill)
{
    size_t h = 0;

    out[h++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    if (plen < 126) {
        out[h++] = (uint8_t)plen;
    } else if (plen <= 0xffff) {
        out[h++] = 126;
        out[h++] = (uint8_t)(plen >> 8);
        out[h++] = (uint8_t)plen;
    } else {
        out[h++] = 127;
        for (int i = 7; i >= 0; i--)
            out[h++] = (uint8_t)((uint64_t)plen >> (8 * i));
    }
    memset(out + h, fill, plen);
    return h + plen;
}

/* ---- encoding ---------------------------------------------------------- */

/* Decodes a client frame: checks FIN, the mask bit and the length field,
 * and unmasks the payload into out. Returns the payload length. */
static size_t unmask_frame(const uint8_t *f, size_t flen, unsigned opcode,
                           uint8_t *out, uint8_t key[4])
{
    size_t h = 2, plen = f[1] & 0x7f;

    assert_int_equal(f[0], 0x80 | opcode);
    assert_true(f[1] & 0x80);
    if (plen == 126) {
        plen = (size_t)f[2] << 8 | f[3];
        assert_true(plen >= 126);
        h = 4;
    } else if (plen == 127) {
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = plen << 8 | f[2 + i];
        assert_true(plen > 0xffff);
        h = 10;
    }
    memcpy(key, f + h, 4);
    h += 4;
    assert_int_equal(flen, h + plen);
    for (size_t i = 0; i < plen; i++)
        out[i] = f[h + i] ^ key[i % 4];
    return plen;
}

static void test_encode_masks_every_length_form(void **state)
{
    static const size_t lens[] = {0, 1, 5, 125, 126, 300, 65535, 65536, 70000};
    static uint8_t payload[70000], frame[70000 + WSFRAME_MAX_HEADER],
        back[70000];
    wsframe_enc_t *e = wsframe_enc_new(42);
    uint8_t key[4], prev[4] = {0, 0, 0, 0};
    int keys_differ = 0;
    (void)state;

    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 7 + 3);
    for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        ssize_t n = wsframe_encode(e, WSFRAME_TEXT, payload, lens[k], frame);

        assert_true(n > 0);
        assert_int_equal(
            unmask_frame(frame, (size_t)n, WSFRAME_TEXT, back, key), lens[k]);
        if (lens[k] > 0)
            assert_memory_equal(back, payload, lens[k]);
        keys_differ |= memcmp(key, prev, 4) != 0;
        memcpy(prev, key, 4);
    }
    /* Fresh masks: not a constant, not zero. */
    assert_true(keys_differ);
    wsframe_enc_free(e);
}

static void test_encode_control_frames(void **state)
{
    static uint8_t payload[200], frame[256], back[200];
    wsframe_enc_t *e = wsframe_enc_new(7);
    uint8_t key[4];
    ssize_t n;
    (void)state;

    memset(payload, 'p', sizeof(payload));
    n = wsframe_encode(e, WSFRAME_PONG, payload, 125, frame);
    assert_int_equal(unmask_frame(frame, (size_t)n, WSFRAME_PONG, back, key),
                     125);
    /* Over 125 bytes a control frame is refused, and the encoder stays
     * usable. */
    assert_int_equal(wsframe_encode(e, WSFRAME_PING, payload, 126, frame), -1);
    n = wsframe_encode(e, WSFRAME_CLOSE, (const uint8_t *)"\x03\xe8", 2, frame);
    assert_int_equal(unmask_frame(frame, (size_t)n, WSFRAME_CLOSE, back, key),
                     2);
    assert_memory_equal(back, "\x03\xe8", 2);
    wsframe_enc_free(e);
}

/* ---- reading ----------------------------------------------------------- */

#define MAX_SEEN 16

typedef struct seen {
    unsigned n;
    unsigned opcode[MAX_SEEN];
    size_t len[MAX_SEEN];
    uint64_t sum[MAX_SEEN]; /* of the payload bytes, position-weighted */
    unsigned stop_at;       /* return 1 once this many came; 0 never */
} seen_t;

static int record_cb(void *ud, unsigned opcode, const uint8_t *data, size_t len)
{
    seen_t *s = ud;
    uint64_t sum = 0;

    assert_true(s->n < MAX_SEEN);
    for (size_t i = 0; i < len; i++)
        sum += (uint64_t)data[i] * (i + 1);
    s->opcode[s->n] = opcode;
    s->len[s->n] = len;
    s->sum[s->n] = sum;
    s->n++;
    return s->stop_at > 0 && s->n >= s->stop_at;
}

/* A stream: a short text, a 16-bit length, a 64-bit length, a ping, and a
 * text fragmented in three with a ping in the middle. */
static size_t build_stream(uint8_t *buf, seen_t *expect)
{
    size_t o = 0;
    uint8_t joined[300];

    o += server_frame(buf + o, 1, WSFRAME_TEXT, 5, 'a');
    o += server_frame(buf + o, 1, WSFRAME_TEXT, 300, 'b');
    o += server_frame(buf + o, 1, WSFRAME_BINARY, 70000, 'c');
    o += server_frame(buf + o, 1, WSFRAME_PING, 3, 'd');
    o += server_frame(buf + o, 0, WSFRAME_TEXT, 100, 'e');
    o += server_frame(buf + o, 1, WSFRAME_PING, 0, 0);
    o += server_frame(buf + o, 0, WSFRAME_CONT, 150, 'f');
    o += server_frame(buf + o, 1, WSFRAME_CONT, 50, 'g');
    memset(expect, 0, sizeof(*expect));
    {
        static uint8_t tmp[70000];

        memset(tmp, 'a', 5);
        record_cb(expect, WSFRAME_TEXT, tmp, 5);
        memset(tmp, 'b', 300);
        record_cb(expect, WSFRAME_TEXT, tmp, 300);
        memset(tmp, 'c', 70000);
        record_cb(expect, WSFRAME_BINARY, tmp, 70000);
        memset(tmp, 'd', 3);
        record_cb(expect, WSFRAME_PING, tmp, 3);
        record_cb(expect, WSFRAME_PING, tmp, 0);
    }
    memset(joined, 'e', 100);
    memset(joined + 100, 'f', 150);
    memset(joined + 250, 'g', 50);
    record_cb(expect, WSFRAME_TEXT, joined, 300);
    return o;
}

static void assert_same(const seen_t *a, const seen_t *b)
{
    assert_int_equal(a->n, b->n);
    for (unsigned i = 0; i < a->n; i++) {
        assert_int_equal(a->opcode[i], b->opcode[i]);
        assert_int_equal(a->len[i], b->len[i]);
        assert_int_equal(a->sum[i], b->sum[i]);
    }
}

/* Feeds buf in pieces cut at the given offsets. */
static void feed_cut(const uint8_t *buf, size_t total, const size_t *cuts,
                     size_t ncuts, seen_t *got)
{
    wsframe_reader_t r;
    size_t from = 0;

    wsframe_reader_init(&r);
    memset(got, 0, sizeof(*got));
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : total;

        assert_int_equal(wsframe_reader_feed(&r, buf + from, to - from, MAX_MSG,
                                             record_cb, got),
                         0);
        from = to;
    }
    /* Everything was delivered: nothing stays buffered. */
    assert_null(r.tail);
    assert_null(r.msg);
    wsframe_reader_reset(&r);
}

static void test_read_coalesced(void **state)
{
    static uint8_t buf[72000];
    seen_t expect, got;
    size_t total = build_stream(buf, &expect);
    (void)state;

    feed_cut(buf, total, NULL, 0, &got);
    assert_same(&expect, &got);
}

static void test_read_every_split(void **state)
{
    static uint8_t buf[72000];
    seen_t expect, got;
    size_t total = build_stream(buf, &expect);
    (void)state;

    /* Every cut point near frame headers, a spread over the long payload,
     * and pairs of cuts so a frame can arrive in three pieces. */
    for (size_t cut = 0; cut <= total; cut += (cut < 400 ? 1 : 331)) {
        size_t cuts[2] = {cut, 0};

        feed_cut(buf, total, cuts, 1, &got);
        assert_same(&expect, &got);
        for (size_t second = cut; second <= total && second < cut + 20;
             second++) {
            cuts[1] = second;
            feed_cut(buf, total, cuts, 2, &got);
            assert_same(&expect, &got);
        }
    }
    for (size_t cut = total - 400; cut <= total; cut++) {
        size_t cuts[1] = {cut};

        feed_cut(buf, total, cuts, 1, &got);
        assert_same(&expect, &got);
    }
}

static void test_read_byte_by_byte(void **state)
{
    static uint8_t buf[72000];
    seen_t expect, got;
    size_t total = build_stream(buf, &expect);
    wsframe_reader_t r;
    (void)state;

    wsframe_reader_init(&r);
    memset(&got, 0, sizeof(got));
    for (size_t i = 0; i < total; i++)
        assert_int_equal(
            wsframe_reader_feed(&r, buf + i, 1, MAX_MSG, record_cb, &got), 0);
    assert_same(&expect, &got);
    wsframe_reader_reset(&r);
}

static int feed_all(const uint8_t *buf, size_t len, size_t max)
{
    wsframe_reader_t r;
    seen_t got;
    int rc;

    memset(&got, 0, sizeof(got));
    wsframe_reader_init(&r);
    rc = wsframe_reader_feed(&r, buf, len, max, record_cb, &got);
    wsframe_reader_reset(&r);
    return rc;
}

static void test_read_violations(void **state)
{
    uint8_t b[64];
    size_t n;
    (void)state;

    memcpy(b, "\x81\x85\x01\x02\x03\x04hello", 11); /* masked */
    assert_int_equal(feed_all(b, 11, MAX_MSG), WSFRAME_ERR_MASKED);
    n = server_frame(b, 1, WSFRAME_TEXT, 3, 'x');
    b[0] |= 0x40; /* RSV1 */
    assert_int_equal(feed_all(b, n, MAX_MSG), WSFRAME_ERR_RSV);
    n = server_frame(b, 1, 3, 3, 'x');
    assert_int_equal(feed_all(b, n, MAX_MSG), WSFRAME_ERR_OPCODE);
    n = server_frame(b, 1, 0xb, 3, 'x');
    assert_int_equal(feed_all(b, n, MAX_MSG), WSFRAME_ERR_OPCODE);
    n = server_frame(b, 0, WSFRAME_PING, 3, 'x');
    assert_int_equal(feed_all(b, n, MAX_MSG), WSFRAME_ERR_CONTROL);
    n = server_frame(b, 1, WSFRAME_CONT, 3, 'x');
    assert_int_equal(feed_all(b, n, MAX_MSG), WSFRAME_ERR_SEQUENCE);
    n = server_frame(b, 0, WSFRAME_TEXT, 3, 'x');
    n += server_frame(b + n, 1, WSFRAME_TEXT, 3, 'y');
    assert_int_equal(feed_all(b, n, MAX_MSG), WSFRAME_ERR_SEQUENCE);
}

static void test_read_too_big(void **state)
{
    static uint8_t b[300];
    size_t n;
    (void)state;

    /* Refused from the header alone, before the payload arrives. */
    b[0] = 0x81;
    b[1] = 127;
    memcpy(b + 2, "\x00\x00\x00\x00\x00\x10\x00\x01", 8);
    assert_int_equal(feed_all(b, 10, MAX_MSG), WSFRAME_ERR_TOO_BIG);
    /* A control frame's 125-byte limit holds even under a large max. */
    b[0] = 0x89;
    b[1] = 126;
    b[2] = 0;
    b[3] = 126;
    assert_int_equal(feed_all(b, 4 + 126, MAX_MSG), WSFRAME_ERR_CONTROL);
    /* Fragments are limited as a whole message. */
    n = server_frame(b, 0, WSFRAME_TEXT, 100, 'x');
    n += server_frame(b + n, 1, WSFRAME_CONT, 100, 'y');
    assert_int_equal(feed_all(b, n, 150), WSFRAME_ERR_TOO_BIG);
    assert_int_equal(feed_all(b, n, 200), 0);
}

static void test_read_callback_stops(void **state)
{
    uint8_t b[64];
    wsframe_reader_t r;
    seen_t got;
    size_t n = 0;
    (void)state;

    n += server_frame(b + n, 1, WSFRAME_TEXT, 2, 'a');
    n += server_frame(b + n, 1, WSFRAME_CLOSE, 2, 'b');
    n += server_frame(b + n, 1, WSFRAME_TEXT, 2, 'c');
    memset(&got, 0, sizeof(got));
    got.stop_at = 2; /* stop after the close */
    wsframe_reader_init(&r);
    assert_int_equal(wsframe_reader_feed(&r, b, n, MAX_MSG, record_cb, &got),
                     1);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.opcode[1], WSFRAME_CLOSE);
    wsframe_reader_reset(&r);
}

static void test_parse_reports_need(void **state)
{
    uint8_t b[400];
    wsframe_t f;
    size_t n = server_frame(b, 1, WSFRAME_TEXT, 300, 'z');
    (void)state;

    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(wsframe_parse(b, cut, MAX_MSG, &f), 0);
    assert_int_equal(wsframe_parse(b, n, MAX_MSG, &f), (ssize_t)n);
    assert_int_equal(f.len, 300);
    assert_int_equal(f.payload - b, 4);
    assert_int_equal(f.fin, 1);
    assert_int_equal(f.opcode, WSFRAME_TEXT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_masks_every_length_form),
        cmocka_unit_test(test_encode_control_frames),
        cmocka_unit_test(test_read_coalesced),
        cmocka_unit_test(test_read_every_split),
        cmocka_unit_test(test_read_byte_by_byte),
        cmocka_unit_test(test_read_violations),
        cmocka_unit_test(test_read_too_big),
        cmocka_unit_test(test_read_callback_stops),
        cmocka_unit_test(test_parse_reports_need),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
