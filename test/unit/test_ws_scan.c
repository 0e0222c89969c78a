/* The frame-boundary scanner that decides what wslay is fed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gw/error.h"
#include "gw/ws.h"

#include <string.h>

/* Writes a masked client frame; returns its length. */
static size_t client_frame(uint8_t *out, int fin, int opcode, size_t plen)
{
    size_t h = 0;

    out[h++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    if (plen < 126) {
        out[h++] = (uint8_t)(0x80 | plen);
    } else if (plen <= 0xffff) {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(plen >> 8);
        out[h++] = (uint8_t)plen;
    } else {
        out[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            out[h++] = (uint8_t)((uint64_t)plen >> (8 * i));
    }
    memcpy(out + h, "\x01\x02\x03\x04", 4);
    h += 4;
    memset(out + h, 'x', plen);
    return h + plen;
}

static void test_whole_frames_every_split(void **state)
{
    static uint8_t buf[70000 + 600];
    size_t lens[3], total = 0;
    (void)state;

    lens[0] = client_frame(buf, 1, 1, 5);
    lens[1] = client_frame(buf + lens[0], 1, 1, 300);
    lens[2] = client_frame(buf + lens[0] + lens[1], 1, 2, 70000);
    total = lens[0] + lens[1] + lens[2];
    /* For every prefix length the scanner reports exactly the whole frames
     * inside it, and how long the first incomplete one will be. */
    for (size_t cut = 0; cut <= total; cut += (cut < 400 ? 1 : 997)) {
        size_t complete, need, expect = 0;
        int frag = 0;
        assert_int_equal(gw_ws_scan(buf, cut, 1 << 20, &frag, &complete, &need),
                         0);
        for (int i = 0; i < 3 && expect + lens[i] <= cut; i++)
            expect += lens[i];
        assert_int_equal(complete, expect);
        if (expect < total && cut - expect >= 14)
            assert_true(need == lens[expect == 0         ? 0
                                     : expect == lens[0] ? 1
                                                         : 2]);
    }
}

static void test_fragment_state(void **state)
{
    uint8_t buf[512];
    size_t n = 0, complete, need;
    int frag = 0;
    (void)state;

    n += client_frame(buf + n, 0, 1, 3); /* text, not final */
    n += client_frame(buf + n, 1, 9, 2); /* ping in between */
    assert_int_equal(gw_ws_scan(buf, n, 1000, &frag, &complete, &need), 0);
    assert_int_equal(complete, n);
    assert_int_equal(frag, 1);
    n = client_frame(buf, 0, 0, 3); /* continuation, not final */
    gw_ws_scan(buf, n, 1000, &frag, &complete, &need);
    assert_int_equal(frag, 1);
    n = client_frame(buf, 1, 0, 3); /* final continuation */
    gw_ws_scan(buf, n, 1000, &frag, &complete, &need);
    assert_int_equal(frag, 0);
}

static void test_too_big(void **state)
{
    static uint8_t buf[4096];
    size_t n = 0, complete, need;
    int frag = 0;
    (void)state;

    n += client_frame(buf, 1, 1, 10);
    n += client_frame(buf + n, 1, 1, 2000);
    assert_int_equal(gw_ws_scan(buf, n, 1024, &frag, &complete, &need),
                     GW_ETOOBIG);
    assert_int_equal(complete, 16); /* the frame before it */
    /* Only the declared length matters: a 64-bit length is refused from the
     * header alone, before any payload arrives. */
    n = client_frame(buf, 1, 2, 0);
    buf[1] = 0x80 | 127;
    memset(buf + 2, 0x7f, 8);
    assert_int_equal(gw_ws_scan(buf, 14, 1024, &frag, &complete, &need),
                     GW_ETOOBIG);
}

/* What wslay would only answer with a status-less close is a 1002 here. */
static void test_protocol_violations(void **state)
{
    uint8_t buf[512];
    size_t n, complete, need;
    int frag = 0;
    (void)state;

    n = client_frame(buf, 0, 9, 2); /* fragmented ping */
    assert_int_equal(gw_ws_scan(buf, n, 1024, &frag, &complete, &need),
                     GW_EPARSE);
    n = client_frame(buf, 1, 9, 126); /* ping over 125 bytes */
    assert_int_equal(gw_ws_scan(buf, n, 1024, &frag, &complete, &need),
                     GW_EPARSE);
    n = client_frame(buf, 1, 1, 200); /* 16-bit length holding 100 */
    buf[2] = 0;
    buf[3] = 100;
    assert_int_equal(gw_ws_scan(buf, n, 1024, &frag, &complete, &need),
                     GW_EPARSE);
    n = client_frame(buf, 1, 2, 0); /* 64-bit length with the top bit */
    buf[1] = 0x80 | 127;
    memset(buf + 2, 0, 8);
    buf[2] = 0x80;
    assert_int_equal(gw_ws_scan(buf, 14, 1024, &frag, &complete, &need),
                     GW_EPARSE);
    n = client_frame(buf, 1, 8, 1); /* close with a one-byte payload */
    assert_int_equal(gw_ws_scan(buf, n, 1024, &frag, &complete, &need),
                     GW_EPARSE);
    n = client_frame(buf, 1, 8, 0); /* an empty close is fine, */
    assert_int_equal(gw_ws_scan(buf, n, 1024, &frag, &complete, &need), 0);
    n = client_frame(buf, 1, 8, 2); /* and so is one with a code */
    assert_int_equal(gw_ws_scan(buf, n, 1024, &frag, &complete, &need), 0);
    /* The frames before a bad one still count as complete. */
    n = client_frame(buf, 1, 1, 3);
    n += client_frame(buf + n, 0, 10, 1); /* fragmented pong */
    assert_int_equal(gw_ws_scan(buf, n, 1024, &frag, &complete, &need),
                     GW_EPARSE);
    assert_int_equal(complete, 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_frames_every_split),
        cmocka_unit_test(test_fragment_state),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_protocol_violations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
